//! The one place an install writes files: [`TreeWriter`].
//!
//! Every file is created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`), so nothing already at a
//! path — a planted symlink, the venv's `bin/python` link, another wheel's file — is ever written
//! through or truncated; every directory is created below a root this run made, and one found
//! in the way is used only when it is a real directory, never a symlink. A file that is meant to
//! replace another (a shared path whose later wheel wins) is written under a fresh exclusive
//! name and renamed over it, which replaces a regular file atomically and is refused for
//! anything else. So no member name, manifest field or planted file can make a write land
//! outside the tree, whatever a validation upstream misses.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::WheelError;

/// How one file is put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A new file; anything already at the path is an error.
    Create,
    /// A new file that takes the place of a regular file an earlier wheel wrote there.
    Replace,
    /// Read and checked, not written: a later wheel ships the same path and wins.
    Discard,
}

/// What copying one file through the writer produced: the SHA-256 and size of the bytes
/// written (or that would have been), the size of the bytes read, and their digest when the
/// caller asked for one ([`CopyOptions::read_hash`]).
pub struct Copied {
    pub sha256: [u8; 32],
    pub size: u64,
    pub read_size: u64,
    pub read_digest: Option<Vec<u8>>,
}

/// A digest of the bytes as read, as RECORD may state it (PEP 427: "sha256 or better").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadHash {
    Sha256,
    #[cfg(feature = "strong-record-hashes")]
    Sha384,
    #[cfg(feature = "strong-record-hashes")]
    Sha512,
}

/// Why a copy failed: reading the source (the wheel's content) or writing (the machine).
pub enum CopyError {
    Read(std::io::Error),
    Write(WheelError),
}

/// Writes files under a root directory that this run created, creating each parent directory
/// once per writer (one writer per thread).
pub struct TreeWriter<'a> {
    root: &'a Path,
    created: HashSet<String>,
    buffer: Vec<u8>,
}

/// Distinguishes the temporary names of replacements made by one process.
static REPLACEMENTS: AtomicU64 = AtomicU64::new(0);

impl<'a> TreeWriter<'a> {
    pub fn new(root: &'a Path) -> Self {
        TreeWriter {
            root,
            created: HashSet::new(),
            buffer: vec![0; 128 * 1024],
        }
    }

    /// The root every destination is relative to.
    pub fn root(&self) -> &Path {
        self.root
    }

    /// Creates the directories of `relative` (`/`-separated) below the root.
    pub fn create_dirs(&mut self, relative: &str) -> Result<(), WheelError> {
        if relative.is_empty() || self.created.contains(relative) {
            return Ok(());
        }
        create_dirs_below(self.root, relative).map_err(|source| WheelError::Io {
            path: self.root.join(relative),
            source,
        })?;
        self.created.insert(relative.to_string());
        Ok(())
    }

    /// Creates a symbolic link at `destination` (relative to the root) whose target is the text
    /// `target`, creating its directories. `symlink(2)` fails when anything, a link included,
    /// is already at the path, and never follows one; the target is not looked at here (it is
    /// only text until something reads through the link): the caller checks it stays inside.
    pub fn symlink(&mut self, destination: &str, target: &str) -> Result<(), WheelError> {
        if let Some((parent, _)) = destination.rsplit_once('/') {
            self.create_dirs(parent)?;
        }
        let path = self.root.join(destination);
        std::os::unix::fs::symlink(target, &path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                WheelError::PathTaken {
                    path: destination.to_string(),
                }
            } else {
                WheelError::Io { path, source }
            }
        })
    }

    /// Opens `destination` (relative to the root) as a new file, creating its directories.
    /// With [`Disposition::Replace`] the file is opened under a temporary name in the same
    /// directory; [`TreeWriter::commit`] moves it into place.
    fn open(
        &mut self,
        destination: &str,
        mode: u32,
        disposition: Disposition,
    ) -> Result<(File, PathBuf), WheelError> {
        if let Some((parent, _)) = destination.rsplit_once('/') {
            self.create_dirs(parent)?;
        }
        let path = match disposition {
            Disposition::Replace => {
                let name = format!(
                    ".pysfx-new-{}-{}",
                    std::process::id(),
                    REPLACEMENTS.fetch_add(1, Ordering::Relaxed)
                );
                match destination.rsplit_once('/') {
                    Some((parent, _)) => self.root.join(parent).join(name),
                    None => self.root.join(name),
                }
            }
            _ => self.root.join(destination),
        };
        let file = create_exclusive(&path, mode).map_err(|source| {
            let path = self.root.join(destination);
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                WheelError::PathTaken {
                    path: destination.to_string(),
                }
            } else {
                WheelError::Io { path, source }
            }
        })?;
        Ok((file, path))
    }

    /// Moves a replacement written under a temporary name over `destination`, which must be
    /// absent or a regular file (never a link or a directory).
    fn commit(&self, temporary: &Path, destination: &str) -> Result<(), WheelError> {
        let path = self.root.join(destination);
        match fs::symlink_metadata(&path) {
            Ok(metadata) if !metadata.file_type().is_file() => {
                let _ = fs::remove_file(temporary);
                return Err(WheelError::PathTaken {
                    path: destination.to_string(),
                });
            }
            _ => {}
        }
        fs::rename(temporary, &path).map_err(|source| {
            let _ = fs::remove_file(temporary);
            WheelError::Io { path, source }
        })
    }

    /// Writes `content` to `destination` (relative to the root).
    pub fn write_all(
        &mut self,
        destination: &str,
        content: &[u8],
        mode: u32,
        disposition: Disposition,
    ) -> Result<(), WheelError> {
        if disposition == Disposition::Discard {
            return Ok(());
        }
        let (mut file, path) = self.open(destination, mode, disposition)?;
        file.write_all(content).map_err(|source| WheelError::Io {
            path: path.clone(),
            source,
        })?;
        drop(file);
        if disposition == Disposition::Replace {
            self.commit(&path, destination)?;
        }
        Ok(())
    }

    /// Streams `reader` into `destination`, returning the SHA-256 and size of what was written
    /// (and of what was read, in `other`, when RECORD uses another algorithm). `head` is
    /// written first in place of the first `skip` bytes read (a rewritten `#!python` line);
    /// `other` hashes the bytes as read. `mtime` is set on the file when given.
    pub fn copy(
        &mut self,
        destination: &str,
        reader: &mut dyn Read,
        options: CopyOptions<'_>,
    ) -> Result<Copied, CopyError> {
        let CopyOptions {
            mode,
            disposition,
            mtime,
            head,
            read_hash,
        } = options;
        let mut target = match disposition {
            Disposition::Discard => None,
            _ => Some(
                self.open(destination, mode, disposition)
                    .map_err(CopyError::Write)?,
            ),
        };
        let mut written = Sha256::new();
        let mut read_hasher = read_hash.map(ReadHasher::new);
        let mut size = 0u64;
        let mut read_size = 0u64;
        let mut buffer = std::mem::take(&mut self.buffer);
        let mut pending_head = head;
        let result = loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => break Err(CopyError::Read(error)),
            };
            read_size += read as u64;
            if let Some(hasher) = &mut read_hasher {
                hasher.update(&buffer[..read]);
            }
            let mut chunk = &buffer[..read];
            let mut replaced: Vec<u8> = Vec::new();
            if let Some((skip, text)) = pending_head.as_mut() {
                // The first `skip` bytes are replaced by `text`.
                let dropped = (*skip).min(chunk.len());
                *skip -= dropped;
                chunk = &chunk[dropped..];
                if *skip == 0 {
                    replaced.extend_from_slice(text);
                    replaced.extend_from_slice(chunk);
                    chunk = &replaced;
                    pending_head = None;
                }
            }
            written.update(chunk);
            size += chunk.len() as u64;
            if let Some((file, path)) = &mut target {
                if let Err(source) = file.write_all(chunk) {
                    break Err(CopyError::Write(WheelError::Io {
                        path: path.clone(),
                        source,
                    }));
                }
            }
        };
        self.buffer = buffer;
        if let Err(error) = result {
            if let (Some((_, path)), Disposition::Replace) = (&target, disposition) {
                let _ = fs::remove_file(path);
            }
            return Err(error);
        }
        if let Some((file, path)) = target {
            if let Some(mtime) = mtime {
                file.set_modified(mtime).map_err(|source| {
                    CopyError::Write(WheelError::Io {
                        path: path.clone(),
                        source,
                    })
                })?;
            }
            drop(file);
            if disposition == Disposition::Replace {
                self.commit(&path, destination).map_err(CopyError::Write)?;
            }
        }
        Ok(Copied {
            sha256: written.finalize().into(),
            size,
            read_size,
            read_digest: read_hasher.map(ReadHasher::finalize),
        })
    }
}

/// How [`TreeWriter::copy`] writes one file.
pub struct CopyOptions<'h> {
    pub mode: u32,
    pub disposition: Disposition,
    pub mtime: Option<std::time::SystemTime>,
    /// `(skip, text)`: the first `skip` bytes read are written as `text`.
    pub head: Option<(usize, &'h [u8])>,
    /// A digest of the bytes as read, besides the SHA-256 of the bytes written.
    pub read_hash: Option<ReadHash>,
}

impl CopyOptions<'_> {
    /// A plain new file with `mode`.
    pub fn new(mode: u32) -> Self {
        CopyOptions {
            mode,
            disposition: Disposition::Create,
            mtime: None,
            head: None,
            read_hash: None,
        }
    }
}

enum ReadHasher {
    Sha256(Sha256),
    #[cfg(feature = "strong-record-hashes")]
    Sha384(sha2::Sha384),
    #[cfg(feature = "strong-record-hashes")]
    Sha512(sha2::Sha512),
}

impl ReadHasher {
    fn new(kind: ReadHash) -> Self {
        match kind {
            ReadHash::Sha256 => ReadHasher::Sha256(Sha256::new()),
            #[cfg(feature = "strong-record-hashes")]
            ReadHash::Sha384 => ReadHasher::Sha384(sha2::Sha384::new()),
            #[cfg(feature = "strong-record-hashes")]
            ReadHash::Sha512 => ReadHasher::Sha512(sha2::Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            ReadHasher::Sha256(hasher) => hasher.update(bytes),
            #[cfg(feature = "strong-record-hashes")]
            ReadHasher::Sha384(hasher) => hasher.update(bytes),
            #[cfg(feature = "strong-record-hashes")]
            ReadHasher::Sha512(hasher) => hasher.update(bytes),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            ReadHasher::Sha256(hasher) => hasher.finalize().to_vec(),
            #[cfg(feature = "strong-record-hashes")]
            ReadHasher::Sha384(hasher) => hasher.finalize().to_vec(),
            #[cfg(feature = "strong-record-hashes")]
            ReadHasher::Sha512(hasher) => hasher.finalize().to_vec(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_below_an_existing_root_only() {
        let temporary = tempfile::tempdir().expect("tempdir");
        create_dirs_below(temporary.path(), "a/b/c").expect("create");
        assert!(temporary.path().join("a/b/c").is_dir());
        create_dirs_below(temporary.path(), "a/b/c").expect("again");
        let gone = temporary.path().join("gone");
        assert!(create_dirs_below(&gone, "x/y").is_err());
        assert!(!gone.exists(), "the root was created");
    }

    #[test]
    fn never_writes_through_a_link() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let root = temporary.path().join("root");
        let outside = temporary.path().join("outside");
        fs::create_dir(&root).expect("root");
        fs::create_dir(&outside).expect("outside");
        fs::write(outside.join("target"), "precious").expect("target");
        std::os::unix::fs::symlink(outside.join("target"), root.join("file")).expect("link");
        std::os::unix::fs::symlink(&outside, root.join("dir")).expect("dir link");
        let mut writer = TreeWriter::new(&root);
        for disposition in [Disposition::Create, Disposition::Replace] {
            assert!(writer
                .write_all("file", b"evil", 0o644, disposition)
                .is_err());
            assert!(writer
                .write_all("dir/new", b"evil", 0o644, disposition)
                .is_err());
        }
        assert_eq!(
            fs::read_to_string(outside.join("target")).expect("read"),
            "precious"
        );
        assert!(!outside.join("new").exists());
        // Nothing is left behind by the refused replacement.
        let names: Vec<_> = fs::read_dir(&root)
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn symlinks_are_created_exclusively_below_real_directories() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let root = temporary.path().join("root");
        let outside = temporary.path().join("outside");
        fs::create_dir(&root).expect("root");
        fs::create_dir(&outside).expect("outside");
        let mut writer = TreeWriter::new(&root);
        writer
            .write_all("a/file", b"x", 0o644, Disposition::Create)
            .expect("file");
        writer.symlink("a/b/link", "../file").expect("symlink");
        assert_eq!(
            fs::read_link(root.join("a/b/link")).expect("read_link"),
            Path::new("../file")
        );
        assert_eq!(fs::read(root.join("a/b/link")).expect("through"), b"x");
        // Nothing at the path is replaced: a file, a link, a directory.
        for taken in ["a/file", "a/b/link", "a"] {
            assert!(
                matches!(
                    writer.symlink(taken, "x"),
                    Err(WheelError::PathTaken { .. })
                ),
                "{taken}"
            );
        }
        assert_eq!(fs::read(root.join("a/file")).expect("kept"), b"x");
        // No directory is made through a planted link to outside.
        std::os::unix::fs::symlink(&outside, root.join("dir")).expect("dir link");
        assert!(writer.symlink("dir/evil", "../x").is_err());
        assert!(!outside.join("evil").exists());
    }

    #[test]
    fn creates_exclusively_and_replaces_regular_files() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let mut writer = TreeWriter::new(temporary.path());
        writer
            .write_all("a/b.txt", b"one", 0o644, Disposition::Create)
            .expect("create");
        assert!(matches!(
            writer.write_all("a/b.txt", b"two", 0o644, Disposition::Create),
            Err(WheelError::PathTaken { .. })
        ));
        writer
            .write_all("a/b.txt", b"three", 0o644, Disposition::Replace)
            .expect("replace");
        writer
            .write_all("a/b.txt", b"four", 0o644, Disposition::Discard)
            .expect("discard");
        assert_eq!(
            fs::read_to_string(temporary.path().join("a/b.txt")).expect("read"),
            "three"
        );
        assert!(writer
            .write_all("a", b"x", 0o644, Disposition::Replace)
            .is_err());
        assert_eq!(
            fs::read_dir(temporary.path().join("a"))
                .expect("ls")
                .count(),
            1
        );
    }

    #[cfg(feature = "strong-record-hashes")]
    #[test]
    fn copy_rewrites_the_head_and_hashes_both_ways() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let mut writer = TreeWriter::new(temporary.path());
        let source = b"#!python\nprint(1)\n".to_vec();
        let copied = writer
            .copy(
                "bin/tool",
                &mut &source[..],
                CopyOptions {
                    head: Some((9, b"#!/venv/bin/python\n")),
                    read_hash: Some(ReadHash::Sha512),
                    ..CopyOptions::new(0o755)
                },
            )
            .ok()
            .expect("copy");
        let written = fs::read(temporary.path().join("bin/tool")).expect("read");
        assert_eq!(written, b"#!/venv/bin/python\nprint(1)\n");
        assert_eq!(copied.size, written.len() as u64);
        assert_eq!(copied.sha256.to_vec(), Sha256::digest(&written).to_vec());
        assert_eq!(copied.read_size, source.len() as u64);
        assert_eq!(
            copied.read_digest.expect("sha512"),
            sha2::Sha512::digest(&source).to_vec()
        );
    }
}
