//! The artifact this process runs from.

use pysfx_format::Payload;

use crate::failure::Failure;

/// Opens the running executable's payload: through `/proc/self/exe`, which is the very file
/// this process runs (even once its name is removed or replaced, or when it has none: a
/// memfd), named by the path the kernel gives for it. Without `/proc`, by that path.
pub fn open_self() -> Result<Payload, Failure> {
    let path = std::env::current_exe()
        .map_err(|error| Failure::other(format!("cannot find the running artifact: {error}")))?;
    match Payload::open(std::path::Path::new("/proc/self/exe")) {
        Ok(payload) => Ok(payload.named(path)),
        Err(_) => Ok(Payload::open(&path)?),
    }
}
