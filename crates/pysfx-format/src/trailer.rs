//! The fixed-length trailer stored as the zip's end-of-central-directory comment.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::digest::{digest_range, first_round, DigestScheme, Digested, FirstRound};
use crate::{hex, FormatError};

/// The trailer's first bytes, by digest scheme (both the same length).
const PREFIX_WHOLE: &str = "pysfx-payload/1 offset=";
const PREFIX_PIECES: &str = "pysfx-payload/2 offset=";
const PREFIX_ENTRIES: &str = "pysfx-payload/3 offset=";
const DIGEST_KEY: &str = " sha256=";
/// Length in bytes of the trailer text (the zip comment).
pub const TRAILER_LEN: usize = PREFIX_PIECES.len() + 20 + DIGEST_KEY.len() + 64;
/// Size of the classic end-of-central-directory record without its comment.
const EOCD_LEN: usize = 22;
const EOCD_SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];

/// Where the payload starts and the digest that covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Absolute offset of the payload's first byte (= the stub's length).
    pub payload_offset: u64,
    /// The payload digest of the bytes `[payload_offset, start of the trailer)`: every
    /// payload byte, the end-of-central-directory record included, but the trailer itself.
    pub sha256: [u8; 32],
    /// How [`Trailer::sha256`] covers those bytes: the packer writes [`DigestScheme::Entries`];
    /// artifacts of earlier builds have [`DigestScheme::Pieces`] or (pysfx 0.1)
    /// [`DigestScheme::Whole`], still read (a thin artifact's base, a release's artifact
    /// checked again).
    pub scheme: DigestScheme,
}

impl Trailer {
    /// The trailer as the zip comment text, always [`TRAILER_LEN`] bytes.
    pub fn encode(&self) -> String {
        let prefix = match self.scheme {
            DigestScheme::Whole => PREFIX_WHOLE,
            DigestScheme::Pieces => PREFIX_PIECES,
            DigestScheme::Entries => PREFIX_ENTRIES,
        };
        format!(
            "{prefix}{:020}{DIGEST_KEY}{}",
            self.payload_offset,
            hex(&self.sha256)
        )
    }

    /// Parses a zip comment written by [`Trailer::encode`].
    pub fn decode(text: &[u8]) -> Result<Trailer, String> {
        if text.len() != TRAILER_LEN {
            return Err(format!(
                "expected {TRAILER_LEN} bytes, found {}",
                text.len()
            ));
        }
        let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_string())?;
        let schemes = [
            (PREFIX_ENTRIES, DigestScheme::Entries),
            (PREFIX_PIECES, DigestScheme::Pieces),
            (PREFIX_WHOLE, DigestScheme::Whole),
        ];
        let (scheme, rest) = (schemes.iter())
            .find_map(|(prefix, scheme)| Some((*scheme, text.strip_prefix(prefix)?)))
            .ok_or_else(|| "unknown trailer version".to_string())?;
        let (offset, rest) = rest.split_at(20);
        let digest = rest
            .strip_prefix(DIGEST_KEY)
            .ok_or_else(|| "no sha256 field".to_string())?;
        if !offset.bytes().all(|b| b.is_ascii_digit()) {
            return Err("offset is not a number".into());
        }
        let payload_offset = offset
            .parse()
            .map_err(|_| "offset is not a number".to_string())?;
        let mut sha256 = [0u8; 32];
        // from_str_radix accepts a leading '+': check the digits first, so that exactly one
        // spelling of a digest is valid.
        if !crate::is_lower_hex(digest) {
            return Err("digest is not lower-case hex".into());
        }
        for (index, chunk) in digest.as_bytes().chunks(2).enumerate() {
            let pair = std::str::from_utf8(chunk).map_err(|_| "bad digest".to_string())?;
            sha256[index] =
                u8::from_str_radix(pair, 16).map_err(|_| "digest is not hex".to_string())?;
        }
        Ok(Trailer {
            payload_offset,
            sha256,
            scheme,
        })
    }
}

/// The payload's place in an artifact file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    pub trailer: Trailer,
    /// Absolute offset of the trailer (the zip comment): the end of the digested range.
    pub digest_end: u64,
    pub file_len: u64,
}

impl Located {
    /// Bytes covered by the digest.
    pub fn payload_len(&self) -> u64 {
        self.digest_end - self.trailer.payload_offset
    }

    /// Recomputes the payload digest, for a payload whose stored wheels lie at `wheels`, and
    /// compares it with the trailer's. Returns each wheel's SHA-256 (none for
    /// [`DigestScheme::Whole`]) and the SHA-256 of each `extra` range, hashed besides.
    pub(crate) fn verify(
        &self,
        file: &File,
        path: &Path,
        wheels: &[(u64, u64)],
        extra: &[(u64, u64)],
    ) -> Result<Digested, FormatError> {
        let range = (self.trailer.payload_offset, self.digest_end);
        let digested = digest_range(file, path, range, wheels, extra, self.trailer.scheme)?;
        self.check_root(path, digested)
    }

    /// The first round of a digest some wheels of which may be left unread (see
    /// [`FirstRound`]); `None` for a [`DigestScheme::Whole`] digest, which has no pieces.
    pub(crate) fn first_round(
        &self,
        file: &File,
        path: &Path,
        wheels: &[(u64, u64)],
        extra: &[(u64, u64)],
    ) -> Result<Option<FirstRound>, FormatError> {
        if self.trailer.scheme == DigestScheme::Whole {
            return Ok(None);
        }
        let range = (self.trailer.payload_offset, self.digest_end);
        first_round(file, path, range, wheels, extra).map(Some)
    }

    /// `digested` if its root is the trailer's digest.
    pub(crate) fn check_root(
        &self,
        path: &Path,
        digested: Digested,
    ) -> Result<Digested, FormatError> {
        if digested.root != self.trailer.sha256 {
            return Err(FormatError::DigestMismatch {
                path: path.to_path_buf(),
                expected: hex(&self.trailer.sha256),
                actual: hex(&digested.root),
            });
        }
        Ok(digested)
    }
}

/// Finds the trailer at the end of `file`. Fails with [`FormatError::NoPayload`] when the file
/// does not end with a pysfx end-of-central-directory record (a bare stub, a truncated file).
pub fn locate(file: &mut File, path: &Path) -> Result<Located, FormatError> {
    let file_len = file
        .metadata()
        .map_err(|error| FormatError::io(path, error))?
        .len();
    let tail_len = (EOCD_LEN + TRAILER_LEN) as u64;
    if file_len < tail_len {
        return Err(FormatError::NoPayload {
            path: path.to_path_buf(),
        });
    }
    let mut tail = vec![0u8; tail_len as usize];
    file.seek(SeekFrom::Start(file_len - tail_len))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|error| FormatError::io(path, error))?;
    let comment_len = u16::from_le_bytes([tail[20], tail[21]]) as usize;
    if tail[..4] != EOCD_SIGNATURE || comment_len != TRAILER_LEN {
        return Err(FormatError::NoPayload {
            path: path.to_path_buf(),
        });
    }
    let trailer = Trailer::decode(&tail[EOCD_LEN..]).map_err(|reason| FormatError::BadTrailer {
        path: path.to_path_buf(),
        reason,
    })?;
    // The end-of-central-directory record is digested too: a damaged entry count or directory
    // offset must not pass as a smaller, still readable zip.
    let digest_end = file_len - TRAILER_LEN as u64;
    if trailer.payload_offset > digest_end {
        return Err(FormatError::BadTrailer {
            path: path.to_path_buf(),
            reason: format!(
                "payload offset {} is past the end of the payload ({digest_end})",
                trailer.payload_offset
            ),
        });
    }
    Ok(Located {
        trailer,
        digest_end,
        file_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_length_is_the_documented_one() {
        // docs/format.md: "The zip comment is exactly 115 ASCII bytes".
        assert_eq!(TRAILER_LEN, 115);
    }

    #[test]
    fn trailer_round_trips_at_fixed_length() {
        for offset in [0u64, 1, 873_421, u64::MAX] {
            for scheme in [
                DigestScheme::Whole,
                DigestScheme::Pieces,
                DigestScheme::Entries,
            ] {
                let trailer = Trailer {
                    payload_offset: offset,
                    sha256: [0xab; 32],
                    scheme,
                };
                let text = trailer.encode();
                assert_eq!(text.len(), TRAILER_LEN);
                assert_eq!(Trailer::decode(text.as_bytes()), Ok(trailer));
            }
        }
    }

    #[test]
    fn trailer_rejects_damage() {
        let good = Trailer {
            payload_offset: 5,
            sha256: [1; 32],
            scheme: DigestScheme::Pieces,
        }
        .encode();
        let cases: Vec<(String, &str)> = vec![
            (
                good.replacen("pysfx-payload/2", "pysfx-payload/9", 1),
                "version",
            ),
            (good.replacen("sha256=", "sha512=", 1), "sha256"),
            (good[..good.len() - 1].to_string(), "length"),
            (good.replacen("0000000005", "000000000x", 1), "number"),
            (format!("{}zz", &good[..good.len() - 2]), "hex"),
            (format!("{}+1", &good[..good.len() - 2]), "sign"),
            (format!("{}AB", &good[..good.len() - 2]), "upper case"),
        ];
        for (text, what) in cases {
            assert!(Trailer::decode(text.as_bytes()).is_err(), "{what}: {text}");
        }
    }
}
