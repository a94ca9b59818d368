//! The payload digest, in its three spellings (docs/format.md, "The trailer").
//!
//! - `pysfx-payload/1`: the SHA-256 of the payload's bytes. SHA-256 is one chain, so one core
//!   hashes the whole payload while the others wait: 0.22 s for a 305 MB payload on the
//!   benchmark machine, before anything may be written.
//! - `pysfx-payload/2`: the payload is cut into pieces — each stored wheel's bytes are one
//!   piece, and what lies between wheels is cut into pieces of at most 4 MiB — and the digest
//!   is the SHA-256 of each piece's length and SHA-256, in order. Each piece is hashed on its
//!   own, so every core takes a share and every byte is still hashed once; and a wheel's piece
//!   digest is the wheel's SHA-256, which the manifest also records, so checking the payload
//!   digest checks every wheel against the manifest for free.
//! - `pysfx-payload/3` (what the packer writes): the same with each byte-code bundle a piece
//!   too (under `/2` a bundle was hashed a second time, to be held to the manifest). The code
//!   here is the same for both: the caller says which ranges are pieces of their own.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::FormatError;

/// The most bytes of a piece between wheels.
pub const PIECE_BYTES: u64 = 4 * 1024 * 1024;

/// The most threads that hash one payload's pieces.
const MAX_THREADS: usize = 8;

/// Bytes read at a time.
const READ_BYTES: usize = 256 * 1024;

/// How a trailer's digest covers the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestScheme {
    /// `pysfx-payload/1`: the SHA-256 of the bytes.
    Whole,
    /// `pysfx-payload/2`: the SHA-256 of the lengths and SHA-256s of its pieces, each stored
    /// wheel one of them.
    Pieces,
    /// `pysfx-payload/3` (what the packer writes): the same, each stored wheel and each
    /// byte-code bundle one of the pieces (a bundle's digest is then hashed once, not twice).
    Entries,
}

/// A stretch of the payload hashed on its own: `[start, start + len)`, absolute offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    start: u64,
    len: u64,
    /// The wheel (by its index in the list the pieces were cut around) it is, if any.
    wheel: Option<usize>,
}

/// The payload digest, and each wheel's SHA-256 (in the order of the wheels the pieces were
/// cut around; empty for [`DigestScheme::Whole`]), and the SHA-256 of each extra range asked
/// for (byte-code bundles), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digested {
    pub root: [u8; 32],
    pub wheels: Vec<[u8; 32]>,
    pub extra: Vec<[u8; 32]>,
}

/// Cuts `[start, end)` into pieces around `wheels` (their byte ranges, `(start, len)`, which
/// must lie inside, in order, without overlapping).
pub(crate) fn cut_pieces(
    start: u64,
    end: u64,
    wheels: &[(u64, u64)],
) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let gap = |from: u64, to: u64, pieces: &mut Vec<Piece>| {
        let mut at = from;
        while at < to {
            let len = PIECE_BYTES.min(to - at);
            pieces.push(Piece {
                start: at,
                len,
                wheel: None,
            });
            at += len;
        }
    };
    let mut at = start;
    for (index, &(wheel_start, len)) in wheels.iter().enumerate() {
        let wheel_end = wheel_start
            .checked_add(len)
            .filter(|wheel_end| wheel_start >= at && *wheel_end <= end)
            .ok_or_else(|| {
                format!("a wheel at {wheel_start} overlaps another or lies outside the payload")
            })?;
        gap(at, wheel_start, &mut pieces);
        pieces.push(Piece {
            start: wheel_start,
            len,
            wheel: Some(index),
        });
        at = wheel_end;
    }
    gap(at, end, &mut pieces);
    Ok(pieces)
}

/// The digest of the pieces' lengths and digests, in order, and the wheels' digests.
fn combine(pieces: &[Piece], digests: &[[u8; 32]], wheels: usize) -> Digested {
    let mut root = Sha256::new();
    let mut by_wheel = vec![[0u8; 32]; wheels];
    for (piece, digest) in pieces.iter().zip(digests) {
        root.update(piece.len.to_le_bytes());
        root.update(digest);
        if let Some(wheel) = piece.wheel {
            by_wheel[wheel] = *digest;
        }
    }
    Digested {
        root: root.finalize().into(),
        wheels: by_wheel,
        extra: Vec::new(),
    }
}

/// The payload digest of the bytes `[start, end)` of `file`, whose wheels lie at `wheels`
/// (ignored by [`DigestScheme::Whole`]), and the SHA-256 of each `extra` range (`(start,
/// len)`, hashed besides: not part of the digest).
pub(crate) fn digest_range(
    file: &File,
    path: &Path,
    (start, end): (u64, u64),
    wheels: &[(u64, u64)],
    extra: &[(u64, u64)],
    scheme: DigestScheme,
) -> Result<Digested, FormatError> {
    let len = end.saturating_sub(start);
    if scheme == DigestScheme::Whole {
        let hashed = |(start, len): &(u64, u64)| hash_range(file, *start, *len);
        return hash_range(file, start, len)
            .and_then(|root| {
                Ok(Digested {
                    root,
                    wheels: Vec::new(),
                    extra: extra.iter().map(hashed).collect::<std::io::Result<_>>()?,
                })
            })
            .map_err(|error| FormatError::io(path, error));
    }
    let mut first = first_round(file, path, (start, end), wheels, extra)?;
    first.finish(file, path, &|_| None)
}

/// A `pysfx-payload/2` or `/3` digest half done: every piece but the stored entries' hashed
/// (the pieces between them and the extra ranges), so that the wheels and bundles the
/// install will not read can be left out of the second round (see [`FirstRound::finish`]).
#[derive(Debug)]
pub struct FirstRound {
    pieces: Vec<Piece>,
    /// How many of `pieces` are the payload's (the extra ranges follow).
    cut: usize,
    wheels: usize,
    digests: Vec<Option<[u8; 32]>>,
}

/// Cuts the payload `[start, end)` into its pieces, the `extra` ranges as pieces of their own
/// after them, and hashes every piece but the wheels'.
pub(crate) fn first_round(
    file: &File,
    path: &Path,
    (start, end): (u64, u64),
    wheels: &[(u64, u64)],
    extra: &[(u64, u64)],
) -> Result<FirstRound, FormatError> {
    let mut pieces = cut_pieces(start, end, wheels).map_err(|reason| FormatError::BadTrailer {
        path: path.to_path_buf(),
        reason,
    })?;
    let cut = pieces.len();
    pieces.extend(extra.iter().map(|&(start, len)| Piece {
        start,
        len,
        wheel: None,
    }));
    let mut first = FirstRound {
        digests: vec![None; pieces.len()],
        pieces,
        cut,
        wheels: wheels.len(),
    };
    first
        .hash(file, &|piece| piece.wheel.is_none())
        .map_err(|error| FormatError::io(path, error))?;
    Ok(first)
}

impl FirstRound {
    /// Hashes the wheels' pieces, but those `known` gives a digest for (by the wheel's index),
    /// which stands in for the wheel's bytes, unread; returns the digest and the SHA-256s.
    pub(crate) fn finish(
        &mut self,
        file: &File,
        path: &Path,
        known: &dyn Fn(usize) -> Option<[u8; 32]>,
    ) -> Result<Digested, FormatError> {
        for (piece, digest) in self.pieces.iter().zip(self.digests.iter_mut()) {
            if let Some(wheel) = piece.wheel {
                *digest = digest.or_else(|| known(wheel));
            }
        }
        self.hash(file, &|_| true)
            .map_err(|error| FormatError::io(path, error))?;
        let digests: Vec<[u8; 32]> = self.digests.iter().map(|d| d.unwrap_or_default()).collect();
        let mut digested = combine(&self.pieces[..self.cut], &digests[..self.cut], self.wheels);
        digested.extra = digests[self.cut..].to_vec();
        Ok(digested)
    }

    /// Hashes the pieces `wanted` takes that have no digest yet, by as many threads as there
    /// are cores (at most [`MAX_THREADS`]), each thread taking the next one not yet taken.
    fn hash(&mut self, file: &File, wanted: &dyn Fn(&Piece) -> bool) -> std::io::Result<()> {
        let pieces = &self.pieces;
        let todo = |index: &usize| self.digests[*index].is_none() && wanted(&pieces[*index]);
        // The pieces longer than the others (large wheels) first, so that no core is left
        // with one of them at the end.
        let long = |index: &usize| pieces[*index].len > PIECE_BYTES;
        let order: Vec<usize> = (0..pieces.len())
            .filter(|index| todo(index) && long(index))
            .chain((0..pieces.len()).filter(|index| todo(index) && !long(index)))
            .collect();
        if order.is_empty() {
            return Ok(());
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |cores| cores.get())
            .clamp(1, MAX_THREADS)
            .min(order.len());
        let next = AtomicUsize::new(0);
        let hashed: std::sync::Mutex<Vec<Hashed>> = std::sync::Mutex::new(Vec::new());
        on_threads(threads, &|| {
            let mut done = Vec::new();
            let mut result = Ok(());
            while let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                let piece = pieces[index];
                match hash_range(file, piece.start, piece.len) {
                    Ok(digest) => done.push((index, digest)),
                    Err(error) => {
                        result = Err(error);
                        break;
                    }
                }
            }
            let mut hashed = hashed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            hashed.push(result.map(|()| done));
        });
        let results = hashed
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for result in results {
            for (index, digest) in result? {
                self.digests[index] = Some(digest);
            }
        }
        Ok(())
    }
}

/// The pieces one thread hashed: their numbers and digests.
type Hashed = std::io::Result<Vec<(usize, [u8; 32])>>;

/// The SHA-256 of `len` bytes of `file` from `offset`; fails on a short file.
fn hash_range(file: &File, offset: u64, len: u64) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; READ_BYTES.min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buffer.len() as u64) as usize;
        file.read_exact_at(&mut buffer[..want], offset + done)?;
        hasher.update(&buffer[..want]);
        done += want as u64;
    }
    Ok(hasher.finalize().into())
}

/// Runs `worker` on up to `count` threads, the calling thread one of them. A thread the
/// system will not give (`ulimit -u`, a container's or a systemd unit's task limit) is one
/// worker fewer, not a failure: each worker takes tasks until none is left. (One function for
/// every pool of the stub: its thread code is compiled once.)
pub fn on_threads(count: usize, worker: &(dyn Fn() + Sync)) {
    std::thread::scope(|scope| {
        for _ in 1..count {
            if std::thread::Builder::new()
                .spawn_scoped(scope, worker)
                .is_err()
            {
                break;
            }
        }
        worker();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LEAD: u64 = 1_234;

    /// The digest of `bytes` (placed after [`LEAD`] other bytes) with wheels at `wheels`
    /// (offsets within `bytes`).
    fn digest(bytes: &[u8], wheels: &[(u64, u64)]) -> Digested {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&vec![7u8; LEAD as usize]).expect("write");
        file.write_all(bytes).expect("write");
        let range = (LEAD, LEAD + bytes.len() as u64);
        let wheels: Vec<(u64, u64)> = wheels.iter().map(|&(at, len)| (LEAD + at, len)).collect();
        digest_range(
            &file,
            Path::new("test"),
            range,
            &wheels,
            &[],
            DigestScheme::Pieces,
        )
        .expect("digest")
    }

    /// The digest as docs/format.md defines it, from the bytes and the wheels' ranges.
    fn by_definition(bytes: &[u8], wheels: &[(u64, u64)]) -> [u8; 32] {
        let mut root = Sha256::new();
        let mut piece = |slice: &[u8]| {
            root.update((slice.len() as u64).to_le_bytes());
            root.update(Sha256::digest(slice));
        };
        let mut at = 0usize;
        for &(start, len) in wheels {
            for gap in bytes[at..start as usize].chunks(PIECE_BYTES as usize) {
                piece(gap);
            }
            piece(&bytes[start as usize..(start + len) as usize]);
            at = (start + len) as usize;
        }
        for gap in bytes[at..].chunks(PIECE_BYTES as usize) {
            piece(gap);
        }
        root.finalize().into()
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn pieces_hashed_in_parallel_agree_with_the_definition() {
        let piece = PIECE_BYTES as usize;
        for len in [0, 1, piece - 1, piece, piece + 1, 3 * piece + 12_345] {
            let bytes = bytes(len);
            assert_eq!(
                digest(&bytes, &[]).root,
                by_definition(&bytes, &[]),
                "{len} bytes"
            );
        }
        // Wheels at the start, back to back, across a 4 MiB mark, empty, and at the end.
        let len = 3 * piece + 100;
        let wheels = [
            (0, 10),
            (10, 5),
            (piece as u64 - 3, piece as u64 + 7),
            (2 * piece as u64 + 50, 0),
            (len as u64 - 20, 20),
        ];
        let bytes = bytes(len);
        let parallel = digest(&bytes, &wheels);
        assert_eq!(parallel.root, by_definition(&bytes, &wheels));
        for (index, &(start, len)) in wheels.iter().enumerate() {
            let wheel = &bytes[start as usize..(start + len) as usize];
            assert_eq!(
                parallel.wheels[index],
                <[u8; 32]>::from(Sha256::digest(wheel))
            );
        }
    }

    #[test]
    fn every_byte_and_every_boundary_counts() {
        let len = 2 * PIECE_BYTES as usize + 10;
        let bytes = bytes(len);
        let wheels = [(100, 1_000)];
        let whole = digest(&bytes, &wheels);
        assert_ne!(whole.root, <[u8; 32]>::from(Sha256::digest(&bytes)));
        for at in [0, 100, 1_099, PIECE_BYTES as usize, len - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1;
            assert_ne!(digest(&damaged, &wheels).root, whole.root, "byte {at}");
        }
        // The same bytes cut around other wheels give another digest.
        for other in [
            vec![],
            vec![(100, 999)],
            vec![(101, 999)],
            vec![(100, 500), (600, 500)],
        ] {
            assert_ne!(digest(&bytes, &other).root, whole.root, "{other:?}");
        }
    }

    #[test]
    fn wheels_that_overlap_or_leave_the_payload_are_refused() {
        for wheels in [
            vec![(10, 20), (25, 5)],
            vec![(90, 20)],
            vec![(20, 5), (10, 5)],
        ] {
            assert!(cut_pieces(0, 100, &wheels).is_err(), "{wheels:?}");
        }
        assert!(cut_pieces(0, 100, &[(10, 20), (30, 70)]).is_ok());
    }

    #[test]
    fn a_short_file_is_an_error() {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&[1u8; 100]).expect("write");
        let path = Path::new("short");
        for scheme in [DigestScheme::Whole, DigestScheme::Pieces] {
            assert!(
                digest_range(&file, path, (0, 200), &[], &[], scheme).is_err(),
                "{scheme:?}"
            );
        }
    }
}
