//! [`DiskTree`]: the tree on disk, and the exclusive-create primitives it is made of.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{parent_of, Disposition, Stamp, Tree, TreeError, TreeFile};

/// Writes files under a root directory that this run created, creating each parent directory
/// once (one handle per thread, see [`Tree::fork`]; the handles share what they created).
pub struct DiskTree {
    root: PathBuf,
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

/// Distinguishes the temporary names of replacements made by one process.
static REPLACEMENTS: AtomicU64 = AtomicU64::new(0);

const BUFFER_BYTES: usize = 128 * 1024;

impl DiskTree {
    pub fn new(root: &Path) -> Self {
        DiskTree {
            root: root.to_path_buf(),
            created: HashSet::new(),
            shared: Arc::default(),
            buffer: Vec::new(),
        }
    }

    /// The root every destination is relative to.
    pub fn root(&self) -> &Path {
        &self.root
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

    /// Hard-links `source` to `destination`, creating its directories; the new path, or `None`
    /// when the kernel refused the link.
    fn hard_link(
        &mut self,
        destination: &str,
        source: &Path,
    ) -> Result<Option<PathBuf>, TreeError> {
        if let Some(parent) = parent_of(destination) {
            self.create_dirs(parent)?;
        }
        let path = self.root.join(destination);
        // linkat(2) with no flags: a symbolic link at `source` is linked as itself.
        match fs::hard_link(source, &path) {
            Ok(()) => Ok(Some(path)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(self.taken_or_io(destination, error))
            }
            // EXDEV, EPERM, EMLINK, ENOENT, EACCES…: the caller writes the file instead.
            Err(_) => Ok(None),
        }
    }

    /// Moves a replacement written under a temporary name over `destination`, which must be
    /// absent or a regular file (never a link or a directory).
    fn commit(&self, temporary: &Path, destination: &str) -> Result<(), TreeError> {
        let path = self.root.join(destination);
        match fs::symlink_metadata(&path) {
            Ok(metadata) if !metadata.file_type().is_file() => {
                let _ = fs::remove_file(temporary);
                return Err(TreeError::PathTaken {
                    path: destination.to_string(),
                });
            }
            _ => {}
        }
        fs::rename(temporary, &path).map_err(|source| {
            let _ = fs::remove_file(temporary);
            TreeError::Io { path, source }
        })
    }
}

impl Tree for DiskTree {
    type File = DiskFile;

    fn fork(&self) -> Self {
        DiskTree {
            shared: Arc::clone(&self.shared),
            ..DiskTree::new(&self.root)
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
        let name = match parent_of(relative) {
            Some(parent) => {
                self.create_dirs(parent)?;
                &relative[parent.len() + 1..]
            }
            None => relative,
        };
        let parent = &relative[..relative.len() - name.len()];
        create_dirs_below(&self.root.join(parent), name)
            .map_err(|source| self.taken_or_io(relative, source))?;
        lock(&self.shared).insert(relative.to_string());
        self.created.insert(relative.to_string());
        Ok(())
    }

    fn symlink(&mut self, destination: &str, target: &str) -> Result<(), TreeError> {
        if let Some(parent) = parent_of(destination) {
            self.create_dirs(parent)?;
        }
        std::os::unix::fs::symlink(target, self.root.join(destination))
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
        let path = match disposition {
            Disposition::Replace => {
                let name = format!(
                    ".pysfx-new-{}-{}",
                    std::process::id(),
                    REPLACEMENTS.fetch_add(1, Ordering::Relaxed)
                );
                match parent_of(destination) {
                    Some(parent) => self.root.join(parent).join(name),
                    None => self.root.join(name),
                }
            }
            _ => self.root.join(destination),
        };
        let file = create_exclusive(&path, mode)
            .map_err(|source| self.taken_or_io(destination, source))?;
        Ok(DiskFile { file, path })
    }

    fn close(
        &mut self,
        file: DiskFile,
        destination: &str,
        disposition: Disposition,
        mtime: Option<std::time::SystemTime>,
    ) -> Result<Option<Stamp>, TreeError> {
        let DiskFile { file, path } = file;
        if let Some(mtime) = mtime {
            if let Err(source) = file.set_modified(mtime) {
                if disposition == Disposition::Replace {
                    let _ = fs::remove_file(&path);
                }
                return Err(TreeError::Io { path, source });
            }
        }
        if disposition == Disposition::Replace {
            self.commit(&path, destination)?;
        }
        // After the last change this install makes to the file (a replacement's rename
        // included): a later one shows.
        let stamp = file.metadata().ok().map(|metadata| Stamp::of(&metadata));
        Ok(stamp)
    }

    fn abandon(&mut self, file: DiskFile) {
        let DiskFile { file, path } = file;
        drop(file);
        // Only a replacement's temporary name is this writer's to remove; a failed new file is
        // removed with the whole temporary tree.
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with(".pysfx-new-"))
        {
            let _ = fs::remove_file(&path);
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
        source: &Path,
    ) -> Result<Option<fs::Metadata>, TreeError> {
        let Some(path) = self.hard_link(destination, source)? else {
            return Ok(None);
        };
        match fs::symlink_metadata(&path) {
            Ok(metadata) => Ok(Some(metadata)),
            Err(_) => {
                self.unlink(destination)?;
                Ok(None)
            }
        }
    }

    fn link_from(
        &mut self,
        destination: &str,
        source: &Path,
    ) -> Result<Option<(File, fs::Metadata)>, TreeError> {
        let Some(path) = self.hard_link(destination, source)? else {
            return Ok(None);
        };
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&path)
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
        let path = self.root.join(destination);
        fs::remove_file(&path).map_err(|source| TreeError::Io { path, source })
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

/// Creates the directories of `relative` (a `/`-separated path) below `root`, which must exist.
/// Unlike `create_dir_all`, it never creates `root` or anything above it (once an interrupted
/// install has moved its tree away, a worker still running cannot bring the tree back), and a
/// component that exists must be a directory itself, not a symlink to one.
pub fn create_dirs_below(root: &Path, relative: &str) -> std::io::Result<()> {
    let mut path = root.to_path_buf();
    for component in relative.split('/').filter(|c| !c.is_empty()) {
        path.push(component);
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let is_directory =
                    fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_dir());
                if !is_directory {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "something other than a directory is in the way",
                    ));
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Locks the set of created directories, taking it even if another thread panicked holding it.
fn lock(shared: &Mutex<HashSet<String>>) -> MutexGuard<'_, HashSet<String>> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
