//! [`Stamp`]: what `lstat` says of a file that changes whenever its bytes do.

use std::os::unix::fs::MetadataExt;

/// A file's inode, size, mtime and inode change time (ctime), to nanoseconds. Writing to a
/// file changes its mtime and ctime; putting an mtime back changes the ctime, which no
/// unprivileged call sets; replacing the file changes the inode. So a file whose stamp is the
/// one recorded just after it was written holds the bytes written then — unless it was
/// changed within the same tick of the filesystem's clock (see the readers of stamps). A new
/// hard link, or removing one, changes the ctime too: the stamp then no longer matches,
/// although the bytes are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub inode: u64,
    pub size: u64,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

impl Stamp {
    pub fn of(metadata: &std::fs::Metadata) -> Stamp {
        Stamp {
            inode: metadata.ino(),
            size: metadata.size(),
            mtime: (metadata.mtime(), metadata.mtime_nsec() as u32),
            ctime: (metadata.ctime(), metadata.ctime_nsec() as u32),
        }
    }
}

impl Stamp {
    /// The stamp of what `fstatat` says.
    pub fn of_stat(stat: &nix::sys::stat::FileStat) -> Stamp {
        Stamp {
            inode: stat.st_ino,
            size: stat.st_size as u64,
            mtime: (stat.st_mtime, stat.st_mtime_nsec as u32),
            ctime: (stat.st_ctime, stat.st_ctime_nsec as u32),
        }
    }
}

/// What `lstat` says of a file to link, or of the name a hard link made: its stamp, mode,
/// type and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linked {
    pub stamp: Stamp,
    /// The permission bits and type (`st_mode`).
    pub mode: u32,
    pub uid: u32,
}

impl Linked {
    pub fn of(stat: &nix::sys::stat::FileStat) -> Linked {
        Linked {
            stamp: Stamp::of_stat(stat),
            mode: stat.st_mode,
            uid: stat.st_uid,
        }
    }

    pub fn of_metadata(metadata: &std::fs::Metadata) -> Linked {
        Linked {
            stamp: Stamp::of(metadata),
            mode: metadata.mode(),
            uid: metadata.uid(),
        }
    }

    pub fn is_file(&self) -> bool {
        self.mode & nix::libc::S_IFMT == nix::libc::S_IFREG
    }
}

/// A file outside the tree to link from: a name below a directory opened once, so that each
/// file's lookup starts there rather than at `/`.
#[derive(Debug, Clone, Copy)]
pub struct Outside<'a> {
    pub directory: std::os::fd::BorrowedFd<'a>,
    /// Relative to `directory`.
    pub name: &'a str,
}

impl Outside<'_> {
    /// What `lstat` says of it.
    pub fn lstat(&self) -> std::io::Result<Linked> {
        let stat = nix::sys::stat::fstatat(
            self.directory,
            self.name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        Ok(Linked::of(&stat))
    }
}
