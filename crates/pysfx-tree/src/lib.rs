//! The one place an install writes files: the [`Tree`] sink.
//!
//! Every write of an install — app files, wheel members, launchers, RECORD, byte-code, the
//! venv's files — goes through a `Tree`. [`DiskTree`] writes below a root this run created:
//! every file is created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`), so nothing already at a path
//! — a planted symlink, the venv's `bin/python` link, another wheel's file — is ever written
//! through or truncated; a directory in the way is used only when it is a real directory, never
//! a symlink; a replacement is written under a fresh exclusive name and renamed over a regular
//! file. So no member name, manifest field or planted file can make a write land outside the
//! tree, whatever a validation upstream misses.
//!
//! [`NullTree`] applies the same rules to a model of the tree and writes nothing: `verify` is
//! an install into a `NullTree`, so an artifact that verifies also installs.

mod disk;
mod null;
mod sha512;
mod sink;
mod stamp;

pub use disk::{
    create_dirs_below, create_exclusive, stop_writing, write_new, DiskTree, DIRECTORY_MODE,
};
pub use null::NullTree;
pub use sink::{Sink, SinkFile};
pub use stamp::{Linked, Outside, Stamp};

/// The process's umask, asked once. A program with threads should ask it first before they
/// start: asking sets it for an instant (`umask(2)` cannot only read it).
pub fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        let mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(mask);
        mask.bits() as u32
    })
}

use std::io::{Read, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// Why a write was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Something is already at the path (or in the way of its directories): the content asked
    /// for a second write of one path, or for a write through a link.
    #[error("{path} is already there; refusing to write it twice or over something else")]
    PathTaken { path: String },
    /// The machine refused: disk, permissions.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

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

/// What copying one file produced: the SHA-256 and size of the bytes written (or that would
/// have been), the size of the bytes read, and their digest when asked for
/// ([`CopyOptions::read_hash`]).
pub struct Copied {
    pub sha256: [u8; 32],
    pub size: u64,
    pub read_size: u64,
    pub read_digest: Option<Vec<u8>>,
    /// The first bytes written (up to 16; a `.pyc` file's header), zero-padded.
    pub head: [u8; 16],
    /// The new file's [`Stamp`] once closed: `None` for a model or a file not written.
    pub stamp: Option<Stamp>,
}

/// A digest of the bytes as read, as RECORD may state it (PEP 427: "sha256 or better").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadHash {
    Sha256,
    Sha384,
    Sha512,
}

/// Why a copy failed: reading the source (the content's fault) or writing.
#[derive(Debug)]
pub enum CopyError {
    Read(std::io::Error),
    Write(TreeError),
}

/// How [`Tree::copy`] writes one file.
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

/// A file opened by [`Tree::open`], written by [`Tree::copy`] and closed by [`Tree::close`].
pub trait TreeFile: Write {}

/// Where an install writes. Paths are `/`-separated and relative to the tree's root. The
/// implementations differ only in [`Tree::open`], [`Tree::close`], [`Tree::create_dirs`] and
/// [`Tree::symlink`]; reading, hashing and head rewriting ([`Tree::copy`]) are the same code.
pub trait Tree: Send + Sync + Sized {
    type File: TreeFile;

    /// Another handle on the same tree, for another thread.
    fn fork(&self) -> Self;

    /// Creates the directories of `relative` below the root.
    fn create_dirs(&mut self, relative: &str) -> Result<(), TreeError>;

    /// Creates a symbolic link at `destination` whose target is the text `target`, creating its
    /// directories. Nothing at the path is replaced; the target is not looked at (the caller
    /// checks it stays inside).
    fn symlink(&mut self, destination: &str, target: &str) -> Result<(), TreeError>;

    /// Opens `destination` as a new file (never [`Disposition::Discard`]), creating its
    /// directories.
    fn open(
        &mut self,
        destination: &str,
        mode: u32,
        disposition: Disposition,
    ) -> Result<Self::File, TreeError>;

    /// Closes a file written completely: sets its mtime, and moves a replacement into place.
    /// Returns the stamp of a new file on disk, taken after its last change.
    fn close(
        &mut self,
        file: Self::File,
        destination: &str,
        disposition: Disposition,
        mtime: Option<std::time::SystemTime>,
    ) -> Result<Option<Stamp>, TreeError>;

    /// Drops a file whose writing failed (a replacement's temporary name is removed).
    fn abandon(&mut self, file: Self::File);

    /// Where a write error happened, for its message.
    fn path_of(&self, destination: &str) -> PathBuf;

    /// A buffer for copying, kept between calls.
    fn buffer(&mut self) -> Vec<u8>;

    /// Gives the buffer back.
    fn restore_buffer(&mut self, buffer: Vec<u8>);

    /// Hard-links the file at `source` (outside the tree) to `destination`, a new name whose
    /// directories are created, and opens it through that new name for the caller to check.
    /// `Ok(None)` when no link was made — the tree does not link (a model), the source is
    /// gone, or the kernel refused (another filesystem, `fs.protected_hardlinks`, too many
    /// links): the caller writes the file instead. Something already at `destination` is
    /// an error, as for any write. A symbolic link at `source` is linked as itself, never
    /// followed, so the caller's check (a regular file) refuses it.
    fn link_from(
        &mut self,
        destination: &str,
        source: Outside<'_>,
    ) -> Result<Option<(std::fs::File, std::fs::Metadata)>, TreeError> {
        let _ = (destination, source);
        Ok(None)
    }

    /// Hard-links the file at `source` (outside the tree) to `destination`, a new name whose
    /// directories are created, and returns what `lstat` says of the new name; as
    /// [`Tree::link_from`] but nothing is opened.
    fn link(
        &mut self,
        destination: &str,
        source: Outside<'_>,
    ) -> Result<Option<Linked>, TreeError> {
        let _ = (destination, source);
        Ok(None)
    }

    /// Removes a name [`Tree::link_from`] made whose file the caller refused.
    fn unlink(&mut self, destination: &str) -> Result<(), TreeError> {
        let _ = destination;
        Ok(())
    }

    /// Writes `content` to `destination`.
    fn write_all(
        &mut self,
        destination: &str,
        content: &[u8],
        mode: u32,
        disposition: Disposition,
    ) -> Result<(), TreeError> {
        let options = CopyOptions {
            disposition,
            ..CopyOptions::new(mode)
        };
        self.copy(destination, &mut &content[..], options)
            .map(|_| ())
            .map_err(|error| match error {
                CopyError::Write(error) => error,
                CopyError::Read(source) => TreeError::Io {
                    path: self.path_of(destination),
                    source,
                },
            })
    }

    /// Streams `reader` into `destination`, returning the SHA-256 and size of what was written
    /// (and the digest of what was read, when asked). `head` is written in place of the first
    /// `skip` bytes read (a rewritten `#!python` line). A [`Disposition::Discard`] file is read
    /// and hashed, not written.
    fn copy(
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
        let mut buffer = self.buffer();
        let mut copier = Copier::new(head, read_hash);
        let result = loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => break Err(CopyError::Read(error)),
            };
            let chunk = copier.transform(&buffer[..read]);
            if let Some(file) = &mut target {
                if let Err(source) = file.write_all(&chunk) {
                    let path = self.path_of(destination);
                    break Err(CopyError::Write(TreeError::Io { path, source }));
                }
            }
        };
        self.restore_buffer(buffer);
        match (result, target) {
            (Err(error), Some(file)) => {
                self.abandon(file);
                Err(error)
            }
            (Err(error), None) => Err(error),
            (Ok(()), Some(file)) => {
                let stamp = self
                    .close(file, destination, disposition, mtime)
                    .map_err(CopyError::Write)?;
                Ok(Copied {
                    stamp,
                    ..copier.finish()
                })
            }
            (Ok(()), None) => Ok(copier.finish()),
        }
    }
}

/// The bytes of one copy: the head rewritten, both digests kept.
struct Copier<'h> {
    pending_head: Option<(usize, &'h [u8])>,
    written: Sha256,
    read_hasher: Option<ReadHasher>,
    size: u64,
    read_size: u64,
    head: [u8; 16],
}

impl<'h> Copier<'h> {
    fn new(head: Option<(usize, &'h [u8])>, read_hash: Option<ReadHash>) -> Self {
        Copier {
            pending_head: head,
            written: Sha256::new(),
            read_hasher: read_hash.map(ReadHasher::new),
            size: 0,
            read_size: 0,
            head: [0; 16],
        }
    }

    /// Takes a chunk as read, returns it as written.
    fn transform<'c>(&mut self, chunk: &'c [u8]) -> std::borrow::Cow<'c, [u8]> {
        self.read_size += chunk.len() as u64;
        if let Some(hasher) = &mut self.read_hasher {
            hasher.update(chunk);
        }
        let mut out = std::borrow::Cow::Borrowed(chunk);
        if let Some((skip, text)) = self.pending_head.as_mut() {
            // The first `skip` bytes are replaced by `text`.
            let dropped = (*skip).min(chunk.len());
            *skip -= dropped;
            out = std::borrow::Cow::Borrowed(&chunk[dropped..]);
            if *skip == 0 {
                let mut replaced = text.to_vec();
                replaced.extend_from_slice(&chunk[dropped..]);
                out = std::borrow::Cow::Owned(replaced);
                self.pending_head = None;
            }
        }
        self.written.update(&out);
        if let Some(room) = self.head.get_mut(self.size as usize..) {
            let take = room.len().min(out.len());
            room[..take].copy_from_slice(&out[..take]);
        }
        self.size += out.len() as u64;
        out
    }

    fn finish(self) -> Copied {
        Copied {
            sha256: self.written.finalize().into(),
            size: self.size,
            read_size: self.read_size,
            read_digest: self.read_hasher.map(ReadHasher::finalize),
            head: self.head,
            stamp: None,
        }
    }
}

enum ReadHasher {
    Sha256(Sha256),
    /// SHA-384 or SHA-512.
    Wide(sha512::Sha512Family),
}

impl ReadHasher {
    fn new(kind: ReadHash) -> Self {
        match kind {
            ReadHash::Sha256 => ReadHasher::Sha256(Sha256::new()),
            ReadHash::Sha384 => ReadHasher::Wide(sha512::Sha512Family::sha384()),
            ReadHash::Sha512 => ReadHasher::Wide(sha512::Sha512Family::sha512()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            ReadHasher::Sha256(hasher) => hasher.update(bytes),
            ReadHasher::Wide(hasher) => hasher.update(bytes),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            ReadHasher::Sha256(hasher) => hasher.finalize().to_vec(),
            ReadHasher::Wide(hasher) => hasher.finalize(),
        }
    }
}

/// The parent directory of a `/`-separated path, if it has one.
fn parent_of(destination: &str) -> Option<&str> {
    destination.rsplit_once('/').map(|(parent, _)| parent)
}
