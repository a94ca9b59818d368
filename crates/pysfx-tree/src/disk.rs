//! [`DiskTree`]: the tree on disk, and the exclusive-create primitives it is made of.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::fcntl::{openat, renameat, AtFlags, OFlag, AT_FDCWD};
use nix::libc::{S_IFDIR, S_IFMT, S_IFREG};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode};
use nix::unistd::{linkat, symlinkat, unlinkat, UnlinkatFlags};

use crate::{parent_of, Disposition, Linked, Outside, Stamp, Tree, TreeError, TreeFile};

/// Writes files under a root directory that this run created, creating each parent directory
/// once (one handle per thread, see [`Tree::fork`]; the handles share what they created).
pub struct DiskTree {
    root: PathBuf,
    /// The root, opened once: every name below it is reached from this descriptor (one
    /// lookup per component below the root, whatever path reaches the root). `None` when the
    /// root could not be opened (it does not exist yet): names are then reached by path.
    directory: Option<Arc<OwnedFd>>,
    /// The directories this handle made or saw made, and those of every handle of the tree.
    created: HashSet<String>,
    shared: Arc<Mutex<HashSet<String>>>,
    buffer: Vec<u8>,
}

/// A file being written: the open file and the path it was opened at (a temporary name for a
/// replacement).
pub struct DiskFile {
    file: File,
    path: PathBuf,
    /// The name it was opened at, relative to the tree's root.
    relative: String,
}

impl Write for DiskFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.file.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl TreeFile for DiskFile {}

impl DiskFile {
    /// Sets the file's mtime to now, which moves its ctime to the filesystem's clock; returns
    /// that ctime (seconds, nanoseconds).
    pub fn touch(&mut self) -> std::io::Result<(i64, u32)> {
        self.file.set_modified(std::time::SystemTime::now())?;
        Ok(Stamp::of(&self.file.metadata()?).ctime)
    }
}

/// Set by [`stop_writing`]: every tree of the process refuses to write from then on.
static STOPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every `DiskTree` of the process refuse to write (a signal's handler, before it
/// removes what they wrote: they write through descriptors, so moving the tree away would not
/// stop them).
pub fn stop_writing() {
    STOPPED.store(true, Ordering::SeqCst);
}

/// Distinguishes the temporary names of replacements made by one process.
static REPLACEMENTS: AtomicU64 = AtomicU64::new(0);

const BUFFER_BYTES: usize = 128 * 1024;

impl DiskTree {
    pub fn new(root: &Path) -> Self {
        // Not O_NOFOLLOW: the root may be reached through `/proc/self/fd/N`, a link by design;
        // the names below it are never followed.
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let directory = nix::fcntl::open(root, flags, Mode::empty())
            .ok()
            .map(Arc::new);
        DiskTree::with_directory(root, directory)
    }

    fn with_directory(root: &Path, directory: Option<Arc<OwnedFd>>) -> Self {
        DiskTree {
            root: root.to_path_buf(),
            directory,
            created: HashSet::new(),
            shared: Arc::default(),
            buffer: Vec::new(),
        }
    }

    /// The root every destination is relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory names below the root are reached from.
    fn at(&self) -> At<'_> {
        match &self.directory {
            Some(directory) => At::Directory(directory.as_fd()),
            None => At::Path(&self.root),
        }
    }

    fn taken_or_io(&self, destination: &str, source: std::io::Error) -> TreeError {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            TreeError::PathTaken {
                path: destination.to_string(),
            }
        } else {
            TreeError::Io {
                path: self.root.join(destination),
                source,
            }
        }
    }

    /// Hard-links `source` to `destination`, creating its directories; `false` when the kernel
    /// refused the link.
    fn hard_link(&mut self, destination: &str, source: Outside<'_>) -> Result<bool, TreeError> {
        if let Some(parent) = parent_of(destination) {
            self.create_dirs(parent)?;
        }
        // linkat(2) with no flags: a symbolic link at `source` is linked as itself.
        match self.at().link(source, destination) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(self.taken_or_io(destination, error))
            }
            // EXDEV, EPERM, EMLINK, ENOENT, EACCES…: the caller writes the file instead.
            Err(_) => Ok(false),
        }
    }

    /// Moves a replacement written under a temporary name over `destination`, which must be
    /// absent or a regular file (never a link or a directory).
    fn commit(&self, temporary: &str, destination: &str) -> Result<(), TreeError> {
        let at = self.at();
        match at.lstat(destination) {
            Ok(stat) if stat.st_mode & S_IFMT != S_IFREG => {
                let _ = at.unlink(temporary);
                return Err(TreeError::PathTaken {
                    path: destination.to_string(),
                });
            }
            _ => {}
        }
        at.rename(temporary, destination).map_err(|source| {
            let _ = at.unlink(temporary);
            TreeError::Io {
                path: self.root.join(destination),
                source,
            }
        })
    }
}

impl Tree for DiskTree {
    type File = DiskFile;

    fn fork(&self) -> Self {
        DiskTree {
            shared: Arc::clone(&self.shared),
            ..DiskTree::with_directory(&self.root, self.directory.clone())
        }
    }

    fn create_dirs(&mut self, relative: &str) -> Result<(), TreeError> {
        if relative.is_empty() || self.created.contains(relative) {
            return Ok(());
        }
        if lock(&self.shared).contains(relative) {
            self.created.insert(relative.to_string());
            return Ok(());
        }
        // Parent first, then this one directory: each directory of the tree costs one mkdir
        // per handle, not one per file below it.
        if let Some(parent) = parent_of(relative) {
            self.create_dirs(parent)?;
        }
        self.at()
            .make_directory(relative)
            .map_err(|source| self.taken_or_io(relative, source))?;
        lock(&self.shared).insert(relative.to_string());
        self.created.insert(relative.to_string());
        Ok(())
    }

    fn symlink(&mut self, destination: &str, target: &str) -> Result<(), TreeError> {
        if let Some(parent) = parent_of(destination) {
            self.create_dirs(parent)?;
        }
        self.at()
            .symlink(target, destination)
            .map_err(|source| self.taken_or_io(destination, source))
    }

    fn open(
        &mut self,
        destination: &str,
        mode: u32,
        disposition: Disposition,
    ) -> Result<DiskFile, TreeError> {
        if let Some(parent) = parent_of(destination) {
            self.create_dirs(parent)?;
        }
        let relative = match disposition {
            Disposition::Replace => {
                let name = format!(
                    ".pysfx-new-{}-{}",
                    std::process::id(),
                    REPLACEMENTS.fetch_add(1, Ordering::Relaxed)
                );
                match parent_of(destination) {
                    Some(parent) => format!("{parent}/{name}"),
                    None => name,
                }
            }
            _ => destination.to_string(),
        };
        let file = self
            .at()
            .create(&relative, mode)
            .map_err(|source| self.taken_or_io(destination, source))?;
        Ok(DiskFile {
            file,
            path: self.root.join(&relative),
            relative,
        })
    }

    fn close(
        &mut self,
        file: DiskFile,
        destination: &str,
        disposition: Disposition,
        mtime: Option<std::time::SystemTime>,
    ) -> Result<Option<Stamp>, TreeError> {
        let DiskFile {
            file,
            path,
            relative,
        } = file;
        if let Some(mtime) = mtime {
            if let Err(source) = file.set_modified(mtime) {
                if disposition == Disposition::Replace {
                    let _ = self.at().unlink(&relative);
                }
                return Err(TreeError::Io { path, source });
            }
        }
        if disposition == Disposition::Replace {
            self.commit(&relative, destination)?;
        }
        // After the last change this install makes to the file (a replacement's rename
        // included): a later one shows.
        let stamp = file.metadata().ok().map(|metadata| Stamp::of(&metadata));
        Ok(stamp)
    }

    fn abandon(&mut self, file: DiskFile) {
        let DiskFile { file, relative, .. } = file;
        drop(file);
        // Only a replacement's temporary name is this writer's to remove; a failed new file is
        // removed with the whole temporary tree.
        let name = relative.rsplit('/').next().unwrap_or_default();
        if name.starts_with(".pysfx-new-") {
            let _ = self.at().unlink(&relative);
        }
    }

    fn path_of(&self, destination: &str) -> PathBuf {
        self.root.join(destination)
    }

    fn buffer(&mut self) -> Vec<u8> {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.resize(BUFFER_BYTES, 0);
        buffer
    }

    fn restore_buffer(&mut self, buffer: Vec<u8>) {
        self.buffer = buffer;
    }

    fn link(
        &mut self,
        destination: &str,
        source: Outside<'_>,
    ) -> Result<Option<Linked>, TreeError> {
        if !self.hard_link(destination, source)? {
            return Ok(None);
        }
        match self.at().lstat(destination) {
            Ok(stat) => Ok(Some(Linked::of(&stat))),
            Err(_) => {
                self.unlink(destination)?;
                Ok(None)
            }
        }
    }

    fn link_from(
        &mut self,
        destination: &str,
        source: Outside<'_>,
    ) -> Result<Option<(File, fs::Metadata)>, TreeError> {
        if !self.hard_link(destination, source)? {
            return Ok(None);
        }
        let opened = (self.at().open_read(destination))
            .and_then(|file| file.metadata().map(|metadata| (file, metadata)));
        match opened {
            Ok(opened) => Ok(Some(opened)),
            Err(_) => {
                // A symbolic link (O_NOFOLLOW) or an unreadable file: not one to keep.
                self.unlink(destination)?;
                Ok(None)
            }
        }
    }

    fn unlink(&mut self, destination: &str) -> Result<(), TreeError> {
        self.at()
            .unlink(destination)
            .map_err(|source| TreeError::Io {
                path: self.root.join(destination),
                source,
            })
    }
}

/// The longest name (with its NUL) a system call of the tree takes from the stack.
const NAME_ON_STACK: usize = 512;

/// Where the names below a tree's root are reached from: its descriptor, or its path.
#[derive(Clone, Copy)]
enum At<'a> {
    Directory(BorrowedFd<'a>),
    Path(&'a Path),
}

impl<'a> At<'a> {
    /// The directory descriptor and the name relative to it of `relative`, with its NUL: the
    /// root's descriptor and `relative` (in `buffer`, on the caller's stack, when it fits:
    /// a call through a descriptor then allocates nothing), or the current directory and the
    /// whole path. A name holding a NUL is refused.
    fn name<'b>(
        self,
        relative: &str,
        buffer: &'b mut [u8; NAME_ON_STACK],
    ) -> std::io::Result<(BorrowedFd<'a>, Cow<'b, CStr>)> {
        if STOPPED.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "the install was interrupted",
            ));
        }
        let bytes = relative.as_bytes();
        match self {
            At::Directory(directory) if bytes.len() < NAME_ON_STACK => {
                buffer[..bytes.len()].copy_from_slice(bytes);
                buffer[bytes.len()] = 0;
                let name = CStr::from_bytes_with_nul(&buffer[..=bytes.len()])
                    .map_err(|_| std::io::ErrorKind::InvalidInput)?;
                Ok((directory, Cow::Borrowed(name)))
            }
            At::Directory(directory) => {
                let name = CString::new(bytes).map_err(|_| std::io::ErrorKind::InvalidInput)?;
                Ok((directory, Cow::Owned(name)))
            }
            At::Path(root) => {
                let path = root.join(relative).into_os_string().into_vec();
                let name = CString::new(path).map_err(|_| std::io::ErrorKind::InvalidInput)?;
                Ok((AT_FDCWD, Cow::Owned(name)))
            }
        }
    }

    fn open(self, relative: &str, flags: OFlag, mode: u32) -> std::io::Result<File> {
        let mut buffer = [0; NAME_ON_STACK];
        let (at, name) = self.name(relative, &mut buffer)?;
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(mode as nix::libc::mode_t);
        Ok(File::from(openat(at, name.as_ref(), flags, mode)?))
    }

    fn create(self, relative: &str, mode: u32) -> std::io::Result<File> {
        self.open(
            relative,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
            mode,
        )
    }

    /// Never waits: a FIFO linked from a release beside DEST opens at once (and is then
    /// refused as no regular file); a regular file reads as without the flag.
    fn open_read(self, relative: &str) -> std::io::Result<File> {
        self.open(relative, OFlag::O_RDONLY | OFlag::O_NONBLOCK, 0)
    }

    fn lstat(self, relative: &str) -> std::io::Result<FileStat> {
        let mut buffer = [0; NAME_ON_STACK];
        let (at, name) = self.name(relative, &mut buffer)?;
        Ok(fstatat(at, name.as_ref(), AtFlags::AT_SYMLINK_NOFOLLOW)?)
    }

    fn link(self, source: Outside<'_>, relative: &str) -> std::io::Result<()> {
        let mut buffer = [0; NAME_ON_STACK];
        let (at, name) = self.name(relative, &mut buffer)?;
        // No flags: a symbolic link at `source` is linked as itself.
        let flags = AtFlags::empty();
        Ok(linkat(
            source.directory,
            source.name,
            at,
            name.as_ref(),
            flags,
        )?)
    }

    fn symlink(self, target: &str, relative: &str) -> std::io::Result<()> {
        let mut buffer = [0; NAME_ON_STACK];
        let (at, name) = self.name(relative, &mut buffer)?;
        let target = CString::new(target).map_err(|_| std::io::ErrorKind::InvalidInput)?;
        Ok(symlinkat(target.as_c_str(), at, name.as_ref())?)
    }

    fn rename(self, from: &str, to: &str) -> std::io::Result<()> {
        let (mut from_buffer, mut to_buffer) = ([0; NAME_ON_STACK], [0; NAME_ON_STACK]);
        let (at, from) = self.name(from, &mut from_buffer)?;
        let (_, to) = self.name(to, &mut to_buffer)?;
        Ok(renameat(at, from.as_ref(), at, to.as_ref())?)
    }

    fn unlink(self, relative: &str) -> std::io::Result<()> {
        let mut buffer = [0; NAME_ON_STACK];
        let (at, name) = self.name(relative, &mut buffer)?;
        Ok(unlinkat(at, name.as_ref(), UnlinkatFlags::NoRemoveDir)?)
    }

    /// Makes the directory `relative`, whose parent exists, never writable by others whatever
    /// the umask (`--check` reports a directory that is). One that exists must be a directory
    /// itself, not a symlink to one.
    fn make_directory(self, relative: &str) -> std::io::Result<()> {
        let mut buffer = [0; NAME_ON_STACK];
        let (at, name) = self.name(relative, &mut buffer)?;
        match mkdirat(at, name.as_ref(), Mode::from_bits_truncate(DIRECTORY_MODE)) {
            Err(nix::errno::Errno::EEXIST) => {
                let is_directory = self
                    .lstat(relative)
                    .is_ok_and(|stat| stat.st_mode & S_IFMT == S_IFDIR);
                if is_directory {
                    Ok(())
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "something other than a directory is in the way",
                    ))
                }
            }
            made => Ok(made?),
        }
    }
}

/// Opens `path` as a new file: fails if anything, a symlink included, is already there.
pub fn create_exclusive(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// Writes `content` to a new file at `path` (see [`create_exclusive`]).
pub fn write_new(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    create_exclusive(path, mode)?.write_all(content)
}

/// The mode a new directory of a release is made with (less the umask): group-writable where
/// the umask allows it (a deploy group's 002), never writable by others.
pub const DIRECTORY_MODE: u32 = 0o775;

/// Creates the directories of `relative` (a `/`-separated path) below `root`, which must exist.
/// Unlike `create_dir_all`, it never creates `root` or anything above it (once an interrupted
/// install has moved its tree away, a worker still running cannot bring the tree back), and a
/// component that exists must be a directory itself, not a symlink to one.
pub fn create_dirs_below(root: &Path, relative: &str) -> std::io::Result<()> {
    let mut made = String::new();
    for component in relative.split('/').filter(|c| !c.is_empty()) {
        if !made.is_empty() {
            made.push('/');
        }
        made.push_str(component);
        At::Path(root).make_directory(&made)?;
    }
    Ok(())
}

/// Locks the set of created directories, taking it even if another thread panicked holding it.
fn lock(shared: &Mutex<HashSet<String>>) -> MutexGuard<'_, HashSet<String>> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
