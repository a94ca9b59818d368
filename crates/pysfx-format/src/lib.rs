//! The pysfx artifact format, shared by the packer (writer) and the stub (reader) so the two
//! cannot drift.
//!
//! An artifact is `stub bytes ‖ zip payload`. The zip's local headers and central directory use
//! *absolute* offsets (counted from the first byte of the file), so `unzip -l` and Python's
//! `zipfile` read the artifact as an ordinary zip. The zip's end-of-central-directory comment is
//! a fixed-length [`Trailer`] naming where the payload starts and the digest of every payload
//! byte before the trailer (of its pieces: each wheel whole, at most 4 MiB of the rest). `docs/format.md` describes it byte by byte.

mod digest;
mod hash;
mod manifest;
mod member;
mod reader;
pub mod sbom;
mod trailer;
mod writer;

pub use digest::{on_threads, DigestScheme, FirstRound, PIECE_BYTES};
pub use hash::sha256_reader;
pub use manifest::{
    check_app_name, check_app_version, deserialize_manifest, AppInfo, BytecodeBundle, Manifest,
    Target, ThinBase, WheelEntry, WheelSet, FORMAT_VERSION, MANIFEST_NAME, MAX_MANIFEST_STRINGS,
    MAX_REQUIRES_DIST, RESERVED_APP_NAMES,
};
pub use member::{
    data_within, local_fields_differ, local_fields_mismatch, local_header_differs,
    local_name_mismatch, member_ends, scan_members, scan_members_named, validate_member_name,
    Member, MemberKind, MemberName, ScanError, OVERLAP,
};
pub use reader::{bundle_unpacked_bytes, Payload, ReadAt, Section};
pub use sbom::{component_ref, purl, read_sbom, set_sbom_name, Bom, SBOM_FILE, SBOM_NAME};
pub use trailer::{locate, Located, Trailer, TRAILER_LEN};
pub use writer::{EntryOptions, PayloadWriter};

use std::path::PathBuf;

/// What can go wrong reading or writing an artifact.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no pysfx payload found (a bare stub, a truncated artifact, or bytes appended after one)")]
    NoPayload { path: PathBuf },
    #[error("{path}: the payload trailer is malformed: {reason}")]
    BadTrailer { path: PathBuf, reason: String },
    #[error("{path}: payload digest mismatch (expected sha256 {expected}, found {actual}): the artifact is corrupt")]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: {wheel}: sha256 {actual} differs from the manifest's {expected}: the artifact is corrupt")]
    WheelDigest {
        path: PathBuf,
        wheel: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: the payload is not a readable zip: {source}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    /// The payload's manifest, directory or entries do not hold together (damaged or crafted).
    #[error("{path}: the artifact is corrupt: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

impl FormatError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Lower-case hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[(byte >> 4) as usize] as char);
        out.push(DIGITS[(byte & 0xf) as usize] as char);
    }
    out
}

/// Whether `text` is lowercase hex digits only (the one spelling [`hex`] writes).
pub(crate) fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// `text` with every control character (and the escape that starts terminal sequences), and
/// every character that reorders or hides text ([`hidden`]), written as a Rust-style escape
/// (`\u{1b}`), so untrusted text from an artifact — entry names, manifest strings — cannot
/// fake output lines, move a terminal's cursor or show a name other than its own.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The directories above `paths` (relative, `/`-separated): each distinct parent, and its
/// parents. What the packer counts a wheel's directories by, the stub an install's inodes,
/// and the quick check of a release the directories to `lstat`.
/// (One copy of the code for every caller: `dyn`, not generic, for the stub's size.)
pub fn parent_directories<'a>(
    paths: &mut dyn Iterator<Item = &'a str>,
) -> std::collections::HashSet<&'a str> {
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        let mut rest = path.trim_end_matches('/');
        // Up to the first directory seen before: those above it were, too.
        while let Some((parent, _)) = rest.rsplit_once('/') {
            if !seen.insert(parent) {
                break;
            }
            rest = parent;
        }
    }
    seen
}

/// A control character, or a format character that reorders or hides text where it is shown
/// (the bidirectional overrides and isolates, zero-width characters, the byte-order mark).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A JSON document as text, with the characters a terminal may act on even inside a string
/// escaped as `\uXXXX`: the C1 controls (U+0080–U+009F) and the bidirectional overrides and
/// isolates (serde_json escapes only those below U+0020). The same JSON, one line unless
/// `pretty`.
pub fn json_text(value: &serde_json::Value, pretty: bool) -> String {
    let text = match pretty {
        true => format!("{value:#}"),
        false => value.to_string(),
    };
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '\u{80}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.push_str(&format!("\\u{:04x}", u32::from(character)));
        } else {
            out.push(character);
        }
    }
    out
}

/// [`escape_control`] for each line of a report, its line breaks kept.
pub fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(escape_control)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_escapes_what_a_terminal_acts_on() {
        let value = serde_json::json!({"name": "a\u{9b}2J\u{202e}b", "plain": "é"});
        let text = json_text(&value, false);
        assert_eq!(text, r#"{"name":"a\u009b2J\u202eb","plain":"é"}"#);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).expect("JSON"),
            value
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_lines("a\r\nb\u{7}\n"), "a\\r\nb\\u{7}\n");
        assert_eq!(escape_control("plain name.whl"), "plain name.whl");
        assert_eq!(escape_control("a\nb"), "a\\nb");
        assert_eq!(escape_control("x\u{1b}[2Jy"), "x\\u{1b}[2Jy");
        assert_eq!(escape_control("caf\u{e9}"), "caf\u{e9}");
        assert_eq!(escape_control("evil\u{202e}txt.py"), "evil\\u{202e}txt.py");
    }
}
