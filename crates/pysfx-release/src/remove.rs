//! Removing a tree whatever its depth and the descriptors left to the process.
//!
//! `std::fs::remove_dir_all` holds a descriptor for each level it is in: under a low
//! `ulimit -n` (the stub runs with 64) a tree a little deeper than that is left half removed
//! (`EMFILE`), and a failed install's temporary tree, a `--force`'s replaced release or a
//! pruned one would stay beside DEST. [`remove_dir_all`] then goes on with [`remove_deep`],
//! which holds three descriptors at most whatever the depth: it goes down one directory at a
//! time, each opened `O_NOFOLLOW | O_DIRECTORY` from the one above (so never through a link),
//! and back up through `..`, held to the identity the directory above had on the way down (a
//! tree moved meanwhile stops it). Each directory's entries are read once.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Removes the directory `path` and everything below it, never following a link. Tries the
/// standard library's removal first; when the process runs out of descriptors, finishes with
/// [`remove_deep`].
pub fn remove_dir_all(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(error) if error.raw_os_error() == Some(nix::libc::EMFILE) => remove_deep(path),
        removed => removed,
    }
}

/// A directory [`remove_deep`] is in: how it was reached from the one above (its name there,
/// and that one's identity), and its subdirectories still to remove.
struct Level {
    up: Option<(OsString, (u64, u64))>,
    below: Vec<OsString>,
}

/// [`remove_dir_all`] with at most three descriptors open at once, whatever the tree's depth.
pub fn remove_deep(path: &Path) -> std::io::Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut current = openat(AT_FDCWD, path, flags, Mode::empty())?;
    let mut levels = vec![Level {
        up: None,
        below: empty_of_files(&current)?,
    }];
    while let Some(level) = levels.last_mut() {
        if let Some(name) = level.below.pop() {
            let child = openat(&current, name.as_os_str(), flags, Mode::empty())?;
            let above = identity(&current)?;
            current = child;
            let below = empty_of_files(&current)?;
            levels.push(Level {
                up: Some((name, above)),
                below,
            });
            continue;
        }
        let Some((name, above)) = levels.pop().and_then(|level| level.up) else {
            break;
        };
        let parent = openat(&current, "..", flags, Mode::empty())?;
        if identity(&parent)? != above {
            return Err(std::io::Error::other(
                "the tree was moved while it was being removed",
            ));
        }
        current = parent;
        gone(unlinkat(
            &current,
            name.as_os_str(),
            UnlinkatFlags::RemoveDir,
        ))?;
    }
    drop(current);
    std::fs::remove_dir(path)
}

/// An unlink's result, a name already gone (another run removing the same tree) taken as
/// removed, as the standard library's removal takes it.
fn gone(unlinked: nix::Result<()>) -> nix::Result<()> {
    match unlinked {
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        unlinked => unlinked,
    }
}

/// A directory's device and inode.
fn identity(directory: &OwnedFd) -> std::io::Result<(u64, u64)> {
    let stat = fstat(directory)?;
    Ok((stat.st_dev, stat.st_ino))
}

/// Removes the entries of `directory` that are no directory; returns the names of those that
/// are.
fn empty_of_files(directory: &OwnedFd) -> std::io::Result<Vec<OsString>> {
    let at = directory.as_fd();
    // Read through a descriptor of its own, so that `directory` stays for the unlinks.
    let mut entries = Dir::openat(at, ".", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut directories = Vec::new();
    for entry in entries.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let is_directory = match entry.file_type() {
            Some(kind) => kind == Type::Directory,
            None => fstatat(at, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|stat| {
                SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
            }),
        };
        match is_directory {
            true => directories.push(std::ffi::OsStr::from_bytes(name.to_bytes()).to_owned()),
            false => gone(unlinkat(at, name, UnlinkatFlags::NoRemoveDir))?,
        }
    }
    Ok(directories)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree deeper than any descriptor limit a stub runs with, and than a path may name
    /// (3,000 levels), files at every level, a wide level, a link to a directory outside it:
    /// all removed, and nothing through the link.
    #[test]
    fn a_deep_tree_goes_with_three_descriptors_and_no_link_followed() {
        use nix::sys::stat::mkdirat;
        let temporary = tempfile::tempdir().expect("tempdir");
        let outside = temporary.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("keep"), "kept").expect("write");
        let top = temporary.path().join("tree");
        std::fs::create_dir(&top).expect("mkdir");
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut at = openat(AT_FDCWD, &top, flags, Mode::empty()).expect("open");
        let file = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
        for level in 0..3000 {
            let name = format!("f{level}");
            drop(openat(&at, name.as_str(), file, Mode::from_bits_truncate(0o644)).expect("file"));
            if level % 500 == 0 {
                nix::unistd::symlinkat(&outside, &at, "out").expect("link");
            }
            if level == 10 {
                for sibling in 0..500 {
                    let name = format!("s{sibling}");
                    mkdirat(&at, name.as_str(), Mode::from_bits_truncate(0o755)).expect("mkdir");
                }
            }
            mkdirat(&at, "d", Mode::from_bits_truncate(0o755)).expect("mkdir");
            at = openat(&at, "d", flags, Mode::empty()).expect("down");
        }
        drop(at);
        remove_deep(&top).expect("removed");
        assert!(!top.exists());
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).expect("kept"),
            "kept"
        );
    }

    /// A link where the top should be is not followed.
    #[test]
    fn a_link_at_the_top_is_refused() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let outside = temporary.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("keep"), "kept").expect("write");
        let top = temporary.path().join("tree");
        std::os::unix::fs::symlink(&outside, &top).expect("link");
        assert!(remove_deep(&top).is_err());
        assert!(outside.join("keep").is_file());
    }
}
