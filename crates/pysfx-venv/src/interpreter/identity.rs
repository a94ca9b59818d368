//! [`BinaryIdentity`]: which file a `--python` runs, and whether it is still the same file. A
//! re-run on an installed release compares it with the one its receipt recorded, and when they
//! are equal takes the interpreter's facts from the receipt instead of starting the
//! interpreter (40–50 ms of a no-op's 60).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The executable a `--python` resolves to (symbolic links followed) and what `stat` says of
/// it. Replacing the binary (a package upgrade, a rebuild) changes its inode or its ctime;
/// repointing a link changes the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryIdentity {
    pub path: PathBuf,
    pub device: u64,
    pub inode: u64,
    pub size: u64,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

impl BinaryIdentity {
    /// The identity of the ELF executable `python` runs: a path, or a name looked up on
    /// `PATH` as `execvp` does. `None` for anything else, notably a script — a pyenv shim, a
    /// wrapper — which may run another Python tomorrow without changing itself: such an
    /// interpreter is always asked.
    pub fn of(python: &str) -> Option<BinaryIdentity> {
        let path = std::fs::canonicalize(resolve_command(python)?).ok()?;
        // Without blocking: a FIFO named as the interpreter is not waited on.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .ok()?;
        let metadata = file.metadata().ok()?;
        if !metadata.is_file() || metadata.mode() & 0o111 == 0 {
            return None;
        }
        let mut magic = [0u8; 4];
        file.read_exact(&mut magic).ok()?;
        if &magic != b"\x7fELF" {
            return None;
        }
        Some(BinaryIdentity {
            path,
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            mtime: (metadata.mtime(), metadata.mtime_nsec() as u32),
            ctime: (metadata.ctime(), metadata.ctime_nsec() as u32),
        })
    }
}

/// One line of text, as a receipt keeps it: device, inode, size, mtime and ctime (seconds and
/// nanoseconds), then the path. `None` for a path that is not UTF-8.
impl BinaryIdentity {
    pub fn text(&self) -> Option<String> {
        let path = self.path.to_str()?;
        Some(format!(
            "{} {} {} {}.{:09} {}.{:09} {path}",
            self.device,
            self.inode,
            self.size,
            self.mtime.0,
            self.mtime.1,
            self.ctime.0,
            self.ctime.1
        ))
    }
}

/// `python` itself when it holds a `/`, else the first executable file of that name in a
/// `PATH` directory (an empty entry is the current directory).
pub fn resolve_command(python: &str) -> Option<PathBuf> {
    if python.is_empty() {
        return None;
    }
    if python.contains('/') {
        return Some(PathBuf::from(python));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| match directory.as_os_str().is_empty() {
            true => Path::new(".").join(python),
            false => directory.join(python),
        })
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|metadata| metadata.is_file() && metadata.mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_binary_is_known_by_its_file_and_a_script_not_at_all() {
        let work = tempfile::tempdir().expect("tempdir");
        let binary = work.path().join("python");
        std::fs::copy("/bin/sh", &binary).expect("copy an ELF executable");
        let link = work.path().join("python3");
        std::os::unix::fs::symlink(&binary, &link).expect("symlink");
        let identity = BinaryIdentity::of(link.to_str().expect("utf-8")).expect("an ELF binary");
        assert_eq!(
            identity.path,
            std::fs::canonicalize(&binary).expect("real path")
        );
        assert_eq!(
            BinaryIdentity::of(binary.to_str().expect("utf-8")),
            Some(identity.clone())
        );

        // Rewritten in place with the same bytes: the ctime moves.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let bytes = std::fs::read(&binary).expect("read");
        std::fs::write(&binary, bytes).expect("rewrite");
        assert_ne!(
            BinaryIdentity::of(link.to_str().expect("utf-8")),
            Some(identity)
        );

        let script = work.path().join("shim");
        std::fs::write(&script, "#!/bin/sh\nexec python3 \"$@\"\n").expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(BinaryIdentity::of(script.to_str().expect("utf-8")), None);
        assert_eq!(
            BinaryIdentity::of(work.path().join("absent").to_str().expect("utf-8")),
            None
        );
        assert_eq!(BinaryIdentity::of(""), None);
    }
}
