//! A directory held by a descriptor, and reached through it rather than by its name.
//!
//! The release is built in a temporary sibling of DEST. Whoever may write DEST's parent can
//! rename that sibling away while the install runs and put a symbolic link to anywhere in its
//! place: every path that starts with the sibling's name would then lead there. So the install
//! never writes through that name. It makes the directory, opens it once (`O_NOFOLLOW`), checks
//! that it is a directory of this user, and from then on reaches it as `/proc/self/fd/N`, which
//! the kernel resolves to the directory the descriptor holds, whatever its name is by then.
//! Below it, every name is one this run made, in a directory no one else may write.
//!
//! The descriptor is inherited by the byte-code workers (not close-on-exec), so the paths the
//! install gives them resolve the same way. Before the tree is renamed into place its name is
//! checked to still be the held directory, and DEST is checked again after the rename.
//!
//! Without `/proc` (a chroot without it), the directory is reached by its name, as before, and
//! a debug line says so.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

pub(crate) struct HeldDirectory {
    /// Kept open for as long as the tree is written: `path` names it.
    _fd: OwnedFd,
    /// `/proc/self/fd/N`, or the name when `/proc` cannot reach it.
    path: PathBuf,
    /// Device and inode of the directory.
    identity: (u64, u64),
}

impl HeldDirectory {
    /// Makes the directory `name` (it must not exist) and holds it.
    ///
    /// It is made private (0700): nobody else can reach into the tree while it is written,
    /// whatever the modes of what is made in it (a deploy group's umask 002 makes those
    /// group-writable, and a group member could otherwise swap a directory of it for a link
    /// between two writes). [`HeldDirectory::open_up`] gives it a release's mode when done.
    pub(crate) fn create(name: &Path) -> std::io::Result<HeldDirectory> {
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(name)?;
        // Gone, or a link, already: someone renamed it away the instant it was made.
        let held = HeldDirectory::open(name).map_err(|error| {
            std::io::Error::other(format!("it was replaced as it was made ({error})"))
        })?;
        let owner = std::fs::metadata(held.path()).map(|m| m.uid());
        if owner? != nix::unistd::geteuid().as_raw() {
            return Err(std::io::Error::other(
                "it was replaced by another user's directory as it was made",
            ));
        }
        Ok(held)
    }

    /// Holds the directory `name` (never through a link).
    pub(crate) fn open(name: &Path) -> std::io::Result<HeldDirectory> {
        // Not close-on-exec: the byte-code workers reach the tree through it.
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        let fd = nix::fcntl::open(name, flags, Mode::empty()).map_err(std::io::Error::from)?;
        let stat = nix::sys::stat::fstat(&fd).map_err(std::io::Error::from)?;
        let identity = (stat.st_dev, stat.st_ino);
        let proc = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let reached = std::fs::metadata(&proc).is_ok_and(|m| (m.dev(), m.ino()) == identity);
        let path = if reached {
            proc
        } else {
            tracing::debug!(
                "/proc/self/fd does not reach {}: it is written by its name",
                name.display()
            );
            name.to_path_buf()
        };
        Ok(HeldDirectory {
            _fd: fd,
            path,
            identity,
        })
    }

    /// Gives the held directory the mode a release's directories have (less the umask), once
    /// its tree is written. The setgid bit it took from a group's directory stays, as it
    /// stays on the directories below it (files written into DEST later get that group).
    pub(crate) fn open_up(&self) -> std::io::Result<()> {
        let inherited = nix::sys::stat::fstat(&self._fd)?.st_mode & nix::libc::S_ISGID;
        let mode = pysfx_tree::DIRECTORY_MODE & !pysfx_tree::umask() | inherited;
        nix::sys::stat::fchmod(&self._fd, Mode::from_bits_truncate(mode)).map_err(Into::into)
    }

    /// The path that reaches the held directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `name` is (still) the held directory itself, not a link to it or anything else.
    pub(crate) fn is_at(&self, name: &Path) -> bool {
        std::fs::symlink_metadata(name)
            .is_ok_and(|m| m.is_dir() && (m.dev(), m.ino()) == self.identity)
    }

    /// Removes the held directory, which was made (or last seen) at `name`: everything in it
    /// through the descriptor, wherever it is now, then `name` itself only if that is an empty
    /// directory. Whatever another user put at `name` meanwhile (a release of theirs renamed
    /// there) is not touched.
    pub(crate) fn remove(&self, name: &Path) {
        if self.is_at(name) {
            empty_and_remove(name, &self.path);
        } else {
            // Moved away: emptied where it is; the name is someone else's now.
            empty_and_remove(Path::new(""), &self.path);
        }
    }

    /// `text` with the held path spelled as `name` (for messages).
    pub(crate) fn spell(&self, text: &str, name: &Path) -> String {
        let held = self.path.to_string_lossy();
        let name = name.to_string_lossy();
        let mut spelled = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(held.as_ref()) {
            let after = &rest[at + held.len()..];
            spelled.push_str(&rest[..at]);
            // `/proc/self/fd/5` is not the start of `/proc/self/fd/51`.
            if after.starts_with(|c: char| c.is_ascii_digit()) {
                spelled.push_str(&held);
            } else {
                spelled.push_str(&name);
            }
            rest = after;
        }
        spelled.push_str(rest);
        spelled
    }
}

/// Empties the directory `reach` leads to, then removes `name` if it is an empty directory
/// (what the install made, emptied). Tries again for a second at most: a writer still running
/// may add a file meanwhile.
pub(crate) fn empty_and_remove(name: &Path, reach: &Path) {
    for _ in 0..100 {
        if let Ok(entries) = std::fs::read_dir(reach) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = match entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    // Never follows a link inside, whatever the depth.
                    true => pysfx_release::remove::remove_dir_all(&path),
                    false => std::fs::remove_file(&path),
                };
            }
        }
        match std::fs::remove_dir(name) {
            Ok(()) => return,
            // Nothing there, or not an empty directory of ours: left as it is.
            Err(error) if error.raw_os_error() != Some(nix::libc::ENOTEMPTY) => return,
            // Followed: `/proc/self/fd/N` is a link to the directory (a look at the link
            // itself ended this after one round, leaving what a writer added meanwhile).
            Err(_) if !std::fs::metadata(reach).is_ok_and(|m| m.is_dir()) => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Emptied through `/proc/self/fd/N` while another thread still adds to it (the install's
    /// main thread making the venv when a signal arrives): the directory still goes.
    #[test]
    fn a_held_directory_is_removed_while_a_writer_adds_to_it() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let name = temporary.path().join(".1.pysfx-tmp-1");
        let held = HeldDirectory::create(&name).expect("create");
        assert!(
            held.path().starts_with("/proc/self/fd"),
            "{:?}",
            held.path()
        );
        let reach = held.path().to_path_buf();
        // It writes for 100 ms (the main thread goes on making the venv until its next write
        // through the stopped tree fails), or until the directory is gone.
        let writer = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut index = 0;
            while started.elapsed() < std::time::Duration::from_millis(100) {
                let directory = reach.join(format!("d{index}"));
                if std::fs::create_dir(&directory).is_err()
                    || std::fs::write(directory.join("f"), "x").is_err()
                {
                    break;
                }
                index += 1;
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        held.remove(&name);
        writer.join().expect("writer");
        assert!(
            !name.exists(),
            "{:?} is left",
            std::fs::read_dir(&name).map(|d| d.count())
        );
    }
}
