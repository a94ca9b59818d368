//! Paths inside a release, relative to DEST and `/`-separated.

/// A RECORD row's path (relative to site-packages, possibly `../../../bin/tool`) as a path
/// relative to DEST, given site-packages relative to DEST. `None` for a path that is absolute
/// or leaves DEST.
pub fn resolve_record_path(site_packages: &str, row: &str) -> Option<String> {
    if row.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = site_packages.split('/').filter(|p| !p.is_empty()).collect();
    for component in row.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Whether `path` (relative, `/`-separated) is inside a `__pycache__` directory, which the
/// interpreter writes at will.
pub fn in_pycache(path: &str) -> bool {
    path.split('/').any(|part| part == "__pycache__")
}

/// The most bytes [`read_regular`] reads: a receipt or a RECORD of a release is far smaller
/// (a receipt lists every app and static file, 190-380 bytes each: a million files make about
/// 300 MB). The bound is for a regular file planted beside DEST in place of one.
pub const MAX_READ: u64 = 1 << 30;

/// Opens the regular file at `path`, of at most `max` bytes, without following a symbolic
/// link at its last component or waiting on a FIFO or a device: a file beside DEST that
/// anyone with write access to the releases' directory may have planted can neither hang nor
/// exhaust the run that reads it.
pub fn open_regular(
    path: &std::path::Path,
    max: u64,
) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    open_file(path, false, max)
}

/// [`open_regular`], following a symbolic link at the last component when `follow` (a file
/// the user named: the packer's inputs, where a wheel given through a link is common).
pub fn open_file(
    path: &std::path::Path,
    follow: bool,
    max: u64,
) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let nofollow = if follow { 0 } else { nix::libc::O_NOFOLLOW };
    // O_NONBLOCK changes nothing in how a regular file reads.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        let kind = std::io::ErrorKind::InvalidInput;
        return Err(std::io::Error::new(kind, "not a regular file"));
    }
    if metadata.len() > max {
        let kind = std::io::ErrorKind::InvalidData;
        return Err(std::io::Error::new(kind, "larger than such a file may be"));
    }
    Ok((file, metadata))
}

/// The bytes of the regular file at `path`, of at most [`MAX_READ`] (see [`open_regular`]).
pub fn read_regular(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let (file, metadata) = open_regular(path, MAX_READ)?;
    read_opened(file, &metadata)
}

/// The bytes of a file [`open_regular`] opened, no more than it had then.
pub fn read_opened(file: std::fs::File, metadata: &std::fs::Metadata) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(metadata.len()).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The mount points at or below `tree` (`/proc/self/mountinfo`): a filesystem mounted inside a
/// release (shared uploads bind-mounted at `releases/1/media`) is not the release's to remove,
/// and removing the release would empty it. Empty when there is none, and when the mount
/// table cannot be read (no `/proc`).
pub fn mounts_below(tree: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(tree) = std::fs::canonicalize(tree) else {
        return Vec::new();
    };
    let Ok(table) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    table
        .split(|byte| *byte == b'\n')
        // The fifth field is the mount point, with space, tab, line break and backslash
        // written as octal escapes (`\040`).
        .filter_map(|line| line.split(|byte| *byte == b' ').nth(4))
        .map(unescape_octal)
        .filter(|point| point.starts_with(&tree))
        .collect()
}

/// A mount table's path: `\ooo` escapes replaced by their byte.
fn unescape_octal(field: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&first, tail)) = rest.split_first() {
        let octal = tail
            .get(..3)
            .filter(|digits| first == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |value, d| value * 8 + u32::from(d - b'0'));
                bytes.push(value as u8);
                rest = &tail[3..];
            }
            None => {
                bytes.push(first);
                rest = tail;
            }
        }
    }
    std::path::PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// Whether the open file carries file capabilities (`setcap`: the `security.capability`
/// extended attribute), which, like a setuid bit, give whoever runs it privileges. An install
/// never sets any: a file with some was changed since, and a hard link would carry them into
/// another release.
#[allow(unsafe_code)]
pub fn has_capabilities(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    const NAME: &[u8] = b"security.capability\0";
    // SAFETY: the descriptor is open for the call (`file` is borrowed), the name is a
    // NUL-terminated constant, and a null buffer of size 0 asks only for the value's size: the
    // kernel writes nothing. -1 (no such attribute, or none on this filesystem) is "none".
    let size = unsafe {
        nix::libc::fgetxattr(
            file.as_raw_fd(),
            NAME.as_ptr().cast(),
            std::ptr::null_mut(),
            0,
        )
    };
    size >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let work = tempfile::tempdir().expect("tempdir");
        // A receipt of a release with a hundred thousand static files is larger than 32 MiB.
        let large = work.path().join("large");
        let bytes = vec![b'x'; 40 << 20];
        std::fs::write(&large, &bytes).expect("write");
        assert_eq!(read_regular(&large).expect("read").len(), bytes.len());
        assert!(
            open_regular(&large, 1 << 20).is_err(),
            "over the bound given"
        );
        // A link (to a device that never ends), a FIFO, a directory: not read, and no wait.
        let link = work.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
        assert!(read_regular(&link).is_err());
        assert!(read_regular(std::path::Path::new("/dev/zero")).is_err());
        let fifo = work.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.expect("mkfifo").success());
        assert!(read_regular(&fifo).is_err());
        assert!(read_regular(work.path()).is_err());
    }

    #[test]
    fn record_paths_resolve_below_dest() {
        let site = "venv/lib/python3.11/site-packages";
        for (row, expected) in [
            (
                "pkg/mod.py",
                Some("venv/lib/python3.11/site-packages/pkg/mod.py"),
            ),
            ("../../../bin/tool", Some("venv/bin/tool")),
            (
                "./pkg/../x.py",
                Some("venv/lib/python3.11/site-packages/x.py"),
            ),
            ("../../../../app/x", Some("app/x")),
            ("../../../../../etc/passwd", None),
            ("/etc/passwd", None),
        ] {
            assert_eq!(resolve_record_path(site, row).as_deref(), expected, "{row}");
        }
    }

    #[test]
    fn pycache_anywhere() {
        assert!(in_pycache("venv/lib/x/__pycache__/a.pyc"));
        assert!(in_pycache("__pycache__"));
        assert!(!in_pycache("venv/lib/x/pycache/a.pyc"));
    }

    #[test]
    fn mount_points_are_read_from_the_mount_table() {
        assert_eq!(
            unescape_octal(br"/srv/a\040b\134c\0"),
            std::path::PathBuf::from("/srv/a b\\c\\0")
        );
        // /proc is a mount point wherever this runs; a fresh directory holds none.
        assert!(mounts_below(std::path::Path::new("/proc")).contains(&"/proc".into()));
        let temporary = tempfile::tempdir().expect("tempdir");
        assert!(mounts_below(temporary.path()).is_empty());
    }
}
