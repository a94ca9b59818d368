//! The payload digest, in its two spellings (docs/format.md, "The trailer").
//!
//! - `pysfx-payload/1`: the SHA-256 of the payload's bytes. SHA-256 is one chain, so one core
//!   hashes the whole payload while the others wait: 0.22 s for a 305 MB payload on the
//!   benchmark machine, before anything may be written.
//! - `pysfx-payload/2` (what the packer writes): the SHA-256 of the SHA-256s of the payload's
//!   successive 4 MiB pieces (the last one shorter). Each piece is hashed on its own, so every
//!   core takes a share, and every byte is still hashed once. A streaming reader (the writer's
//!   check, `--info`'s one read of the file) gets the same digest piece by piece.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::FormatError;

/// The bytes of one piece of a `pysfx-payload/2` digest.
pub const PIECE_BYTES: u64 = 4 * 1024 * 1024;

/// The most threads that hash one payload's pieces.
const MAX_THREADS: usize = 8;

/// Bytes read at a time.
const READ_BYTES: usize = 256 * 1024;

/// The pieces one thread hashed: their numbers and digests.
type Hashed = std::io::Result<Vec<(usize, [u8; 32])>>;

/// How a trailer's digest covers the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestScheme {
    /// `pysfx-payload/1`: the SHA-256 of the bytes.
    Whole,
    /// `pysfx-payload/2`: the SHA-256 of the SHA-256s of its 4 MiB pieces.
    Pieces,
}

/// A payload digest computed from the bytes in order.
pub(crate) enum PayloadHasher {
    Whole(Sha256),
    Pieces {
        root: Sha256,
        piece: Sha256,
        /// Bytes in the current piece.
        filled: u64,
    },
}

impl PayloadHasher {
    pub(crate) fn new(scheme: DigestScheme) -> Self {
        match scheme {
            DigestScheme::Whole => PayloadHasher::Whole(Sha256::new()),
            DigestScheme::Pieces => PayloadHasher::Pieces {
                root: Sha256::new(),
                piece: Sha256::new(),
                filled: 0,
            },
        }
    }

    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        match self {
            PayloadHasher::Whole(hasher) => hasher.update(bytes),
            PayloadHasher::Pieces {
                root,
                piece,
                filled,
            } => {
                while !bytes.is_empty() {
                    let room = (PIECE_BYTES - *filled).min(bytes.len() as u64) as usize;
                    piece.update(&bytes[..room]);
                    *filled += room as u64;
                    bytes = &bytes[room..];
                    if *filled == PIECE_BYTES {
                        root.update(piece.finalize_reset());
                        *filled = 0;
                    }
                }
            }
        }
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        match self {
            PayloadHasher::Whole(hasher) => hasher.finalize().into(),
            PayloadHasher::Pieces {
                mut root,
                piece,
                filled,
            } => {
                if filled > 0 {
                    root.update(piece.finalize());
                }
                root.finalize().into()
            }
        }
    }
}

/// The payload digest of the bytes `[start, end)` of `file`. Pieces are hashed by as many
/// threads as there are cores (at most [`MAX_THREADS`]), each taking the next piece not yet
/// taken.
pub(crate) fn digest_range(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    scheme: DigestScheme,
) -> Result<[u8; 32], FormatError> {
    let len = end.saturating_sub(start);
    if scheme == DigestScheme::Whole {
        return hash_range(file, start, len, Sha256::new())
            .map(|hasher| hasher.finalize().into())
            .map_err(|error| FormatError::io(path, error));
    }
    let count = len.div_ceil(PIECE_BYTES) as usize;
    let threads = std::thread::available_parallelism()
        .map_or(1, |cores| cores.get())
        .clamp(1, MAX_THREADS)
        .min(count.max(1));
    let next = AtomicUsize::new(0);
    let hash_pieces = || -> Hashed {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= count {
                return Ok(done);
            }
            let offset = index as u64 * PIECE_BYTES;
            let piece_len = PIECE_BYTES.min(len - offset);
            let hasher = hash_range(file, start + offset, piece_len, Sha256::new())?;
            done.push((index, hasher.finalize().into()));
        }
    };
    let results: Vec<Hashed> =
        std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(hash_pieces)).collect();
            let mut results = vec![hash_pieces()];
            for helper in helpers {
                results.push(helper.join().unwrap_or_else(|_| {
                    Err(std::io::Error::other("a payload digest thread stopped"))
                }));
            }
            results
        });
    let mut pieces = vec![[0u8; 32]; count];
    for result in results {
        for (index, digest) in result.map_err(|error| FormatError::io(path, error))? {
            pieces[index] = digest;
        }
    }
    let mut root = Sha256::new();
    for piece in &pieces {
        root.update(piece);
    }
    Ok(root.finalize().into())
}

/// Feeds `len` bytes of `file` from `offset` into `hasher`; fails on a short file.
fn hash_range(file: &File, offset: u64, len: u64, mut hasher: Sha256) -> std::io::Result<Sha256> {
    let mut buffer = vec![0u8; READ_BYTES.min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buffer.len() as u64) as usize;
        file.read_exact_at(&mut buffer[..want], offset + done)?;
        hasher.update(&buffer[..want]);
        done += want as u64;
    }
    Ok(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn digest_both_ways(bytes: &[u8], lead: usize) -> ([u8; 32], [u8; 32]) {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&vec![7u8; lead]).expect("write");
        file.write_all(bytes).expect("write");
        let path = Path::new("test");
        let end = (lead + bytes.len()) as u64;
        let parallel =
            digest_range(&file, path, lead as u64, end, DigestScheme::Pieces).expect("digest");
        let mut streamed = PayloadHasher::new(DigestScheme::Pieces);
        // Uneven chunks, so pieces are filled across calls.
        for chunk in bytes.chunks(1_000_003) {
            streamed.update(chunk);
        }
        (parallel, streamed.finish())
    }

    /// The digest as defined: the SHA-256 of the concatenated SHA-256s of the 4 MiB pieces.
    fn by_definition(bytes: &[u8]) -> [u8; 32] {
        let mut root = Sha256::new();
        for piece in bytes.chunks(PIECE_BYTES as usize) {
            root.update(Sha256::digest(piece));
        }
        root.finalize().into()
    }

    #[test]
    fn pieces_hashed_in_parallel_and_streamed_agree_with_the_definition() {
        let piece = PIECE_BYTES as usize;
        for len in [
            0,
            1,
            piece - 1,
            piece,
            piece + 1,
            3 * piece,
            3 * piece + 12_345,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let (parallel, streamed) = digest_both_ways(&bytes, 1_234);
            let expected = by_definition(&bytes);
            assert_eq!(parallel, expected, "parallel, {len} bytes");
            assert_eq!(streamed, expected, "streamed, {len} bytes");
        }
    }

    #[test]
    fn the_two_schemes_differ_and_every_piece_counts() {
        let bytes: Vec<u8> = (0..(2 * PIECE_BYTES as usize + 10))
            .map(|i| i as u8)
            .collect();
        let (pieces, _) = digest_both_ways(&bytes, 0);
        assert_ne!(pieces, <[u8; 32]>::from(Sha256::digest(&bytes)));
        for at in [0, PIECE_BYTES as usize, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1;
            assert_ne!(digest_both_ways(&damaged, 0).0, pieces, "byte {at}");
        }
    }

    #[test]
    fn a_short_file_is_an_error() {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&[1u8; 100]).expect("write");
        let path = Path::new("short");
        for scheme in [DigestScheme::Whole, DigestScheme::Pieces] {
            assert!(
                digest_range(&file, path, 0, 200, scheme).is_err(),
                "{scheme:?}"
            );
        }
    }
}
