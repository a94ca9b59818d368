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
        // Run as `ld-linux-x86-64.so.2 ./site.sfx`: the process runs the loader, which
        // carries no payload; no copy of the artifact is at fault.
        Err(_) if is_the_loader(&path) => Err(Failure::new(
            crate::failure::code::USAGE,
            format!(
                "this process runs {}, not the artifact: run the artifact itself (chmod +x it \
                 first if it lost its executable bit)",
                pysfx_format::escape_control(&path.display().to_string())
            ),
        )),
        Err(_) => Ok(Payload::open(&path)?),
    }
}

/// Whether `path` is the dynamic loader (`ld-linux-x86-64.so.2`, `ld-2.17.so`).
fn is_the_loader(path: &std::path::Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("ld-") && name.contains(".so"))
}
