//! Removing a tree whatever its depth and the descriptors left to the process.
//!
//! `std::fs::remove_dir_all` holds a descriptor for each level it is in: under a low
//! `ulimit -n` (the stub runs with 64) a tree a little deeper than that is left half removed
//! (`EMFILE`), and a failed install's temporary tree, a `--force`'s replaced release or a
//! pruned one would stay beside DEST. [`remove_dir_all`] then goes on with at most two
//! descriptors: it walks from the top to the first directory that holds no directory, by name,
//! each step `openat(O_NOFOLLOW | O_DIRECTORY)` from the last (so never through a link),
//! removes its files, then the directory, and starts again from the top.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{fstatat, Mode, SFlag};
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

/// [`remove_dir_all`] with at most two descriptors open at once, whatever the tree's depth:
/// each round opens the path from the top again (so it costs the depth in opens per directory
/// removed; it is only for what the fast removal could not do).
pub fn remove_deep(path: &Path) -> std::io::Result<()> {
    let mut trail: Vec<OsString> = Vec::new();
    loop {
        let directory = open_along(path, &trail)?;
        match first_directory_emptying(&directory)? {
            Some(below) => trail.push(below),
            None => {
                drop(directory);
                let Some(name) = trail.pop() else {
                    return std::fs::remove_dir(path);
                };
                let parent = open_along(path, &trail)?;
                unlinkat(&parent, name.as_os_str(), UnlinkatFlags::RemoveDir)?;
            }
        }
    }
}

/// The directory at `top` then each name of `trail` below it, holding at most two
/// descriptors; none of them may be a link.
fn open_along(top: &Path, trail: &[OsString]) -> std::io::Result<Dir> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut at = openat(AT_FDCWD, top, flags, Mode::empty())?;
    for name in trail {
        at = openat(&at, name.as_os_str(), flags, Mode::empty())?;
    }
    Ok(Dir::from_fd(at)?)
}

/// Removes the entries of `directory` that are no directory, until it meets one: its name.
fn first_directory_emptying(directory: &Dir) -> std::io::Result<Option<OsString>> {
    let at = directory.as_fd();
    // Read through a second descriptor, so that `directory` stays for the unlinks.
    let mut entries = Dir::openat(at, ".", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    for entry in entries.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let is_directory = match entry.file_type() {
            Some(kind) => kind == Type::Directory,
            None => fstatat(at, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|stat| {
                SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
            }),
        };
        if is_directory {
            return Ok(Some(
                std::ffi::OsStr::from_bytes(name.to_bytes()).to_owned(),
            ));
        }
        unlinkat(at, name, UnlinkatFlags::NoRemoveDir)?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree deeper than any descriptor limit a stub runs with, files at every level, a
    /// link to a directory outside it: all removed, and nothing through the link.
    #[test]
    fn a_deep_tree_goes_with_two_descriptors_and_no_link_followed() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let outside = temporary.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("keep"), "kept").expect("write");
        let top = temporary.path().join("tree");
        let mut at = top.clone();
        for level in 0..300 {
            at.push("d");
            std::fs::create_dir_all(&at).expect("mkdir");
            std::fs::write(at.join(format!("f{level}")), "x").expect("write");
            if level % 50 == 0 {
                std::os::unix::fs::symlink(&outside, at.join("out")).expect("link");
                std::fs::create_dir(at.join("e")).expect("an empty directory");
            }
        }
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
