//! The artifact this process runs from.

use pysfx_format::Payload;

use crate::failure::Failure;

/// Opens the running executable's payload.
pub fn open_self() -> Result<Payload, Failure> {
    let path = std::env::current_exe()
        .map_err(|error| Failure::other(format!("cannot find the running artifact: {error}")))?;
    Ok(Payload::open(&path)?)
}
