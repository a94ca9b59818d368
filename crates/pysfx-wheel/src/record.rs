//! `RECORD` (PEP 376 / PEP 427): CSV rows `path,hash,size` with `hash = sha256=<urlsafe b64>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// One RECORD row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    pub path: String,
    /// `algorithm=urlsafe-b64-digest`, or empty (RECORD itself, signatures).
    pub hash: String,
    pub size: Option<u64>,
}

/// A whole RECORD file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub entries: Vec<RecordEntry>,
}

/// The RECORD hash of `bytes`: `sha256=` and the unpadded URL-safe base64 digest.
pub fn hash_bytes(bytes: &[u8]) -> String {
    hash_digest(&Sha256::digest(bytes))
}

/// Formats a finished SHA-256 digest as a RECORD hash.
pub fn hash_digest(digest: &[u8]) -> String {
    format_hash("sha256", digest)
}

/// The SHA-256 a RECORD hash `sha256=<urlsafe b64>` states; `None` for another algorithm or
/// a malformed one.
pub fn sha256_of_hash(hash: &str) -> Option<[u8; 32]> {
    let encoded = hash.strip_prefix("sha256=")?;
    let mut digest = [0u8; 32];
    match URL_SAFE_NO_PAD.decode_slice(encoded, &mut digest) {
        Ok(32) => Some(digest),
        _ => None,
    }
}

/// Formats a digest as a RECORD hash: `algorithm=` and the URL-safe base64 without padding.
pub fn format_hash(algorithm: &str, digest: &[u8]) -> String {
    let mut hash = String::with_capacity(algorithm.len() + 1 + digest.len().div_ceil(3) * 4);
    hash.push_str(algorithm);
    hash.push('=');
    URL_SAFE_NO_PAD.encode_string(digest, &mut hash);
    hash
}

impl Record {
    /// Parses RECORD text. Python's `csv` module wrote it, so fields may be quoted with `"`
    /// (a doubled `""` inside quotes is one `"`), and lines end in `\n` or `\r\n`. At most
    /// [`MAX_RECORD_ROWS`] rows.
    pub fn parse(text: &str) -> Result<Record, String> {
        Record::parse_at_most(text, MAX_RECORD_ROWS)
    }

    /// [`Record::parse`], refusing more than `most` rows (blank lines aside). Rows are read one
    /// at a time: what a RECORD costs to parse is its rows, never its blank lines.
    pub fn parse_at_most(text: &str, most: usize) -> Result<Record, String> {
        let mut entries = Vec::new();
        for_each_row(text, |number, row| {
            if row.iter().all(String::is_empty) {
                return Ok(());
            }
            if entries.len() >= most {
                return Err(format!(
                    "line {}: more rows than it may have ({most})",
                    number + 1
                ));
            }
            let mut fields = row.drain(..);
            let path = fields.next().unwrap_or_default();
            let hash = fields.next().unwrap_or_default();
            let size = fields.next().unwrap_or_default();
            if path.is_empty() {
                return Err(format!("line {}: empty path", number + 1));
            }
            let size =
                if size.is_empty() {
                    None
                } else {
                    Some(size.parse().map_err(|_| {
                        format!("line {}: size {size:?} is not a number", number + 1)
                    })?)
                };
            entries.push(RecordEntry { path, hash, size });
            Ok(())
        })?;
        // A path listed twice must be listed alike: which row would a reader take?
        let mut order: Vec<&RecordEntry> = entries.iter().collect();
        order.sort_by(|a, b| a.path.cmp(&b.path));
        for pair in order.windows(2) {
            if pair[0].path == pair[1].path && pair[0] != pair[1] {
                return Err(format!(
                    "{:?} is listed twice, with different hashes or sizes",
                    pair[0].path
                ));
            }
        }
        Ok(Record { entries })
    }

    /// The RECORD text, sorted by path, `\n` line ends, fields quoted only where needed.
    pub fn to_text(&self) -> String {
        let mut entries: Vec<&RecordEntry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let length = (entries.iter())
            .map(|entry| entry.path.len() + entry.hash.len() + 24)
            .sum();
        let mut out = String::with_capacity(length);
        for entry in entries {
            push_quoted(&mut out, &entry.path);
            out.push(',');
            push_quoted(&mut out, &entry.hash);
            out.push(',');
            if let Some(size) = entry.size {
                // Writing to a String cannot fail.
                let _ = write!(out, "{size}");
            }
            out.push('\n');
        }
        out
    }
}

/// Appends `field` to `out`, quoted as Python's `csv` quotes it when it must be.
fn push_quoted(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// The most rows a RECORD may have: the largest wheels list tens of thousands of files.
pub const MAX_RECORD_ROWS: usize = 1_000_000;

/// The longest field a RECORD row may have: no file's path is longer (PATH_MAX), and a hash
/// or a size is far shorter.
const MAX_FIELD_BYTES: usize = 4096;

/// Calls `row` with each CSV row's number (from 0) and fields, which it may take; a row has
/// at most three fields, each at most [`MAX_FIELD_BYTES`] long, so a crafted line costs no
/// more than a real one.
///
/// The text between the bytes that matter (`,`, `"`, `\r`, `\n`) is copied in runs: each
/// field is one allocation, not one per doubling of its length.
fn for_each_row(
    text: &str,
    mut row: impl FnMut(usize, &mut Vec<String>) -> Result<(), String>,
) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut fields = Vec::with_capacity(3);
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut number = 0;
    let mut at = 0;
    while at < bytes.len() {
        if field.len() > MAX_FIELD_BYTES {
            return Err(format!(
                "line {line}: a field longer than {MAX_FIELD_BYTES} bytes"
            ));
        }
        let next = bytes.get(at + 1).copied();
        if in_quotes {
            match bytes[at] {
                b'"' if next == Some(b'"') => {
                    field.push('"');
                    at += 2;
                }
                b'"' => {
                    in_quotes = false;
                    at += 1;
                }
                b'\n' => {
                    line += 1;
                    field.push('\n');
                    at += 1;
                }
                _ => at = push_run(text, at, &mut field, |byte| matches!(byte, b'"' | b'\n')),
            }
            continue;
        }
        match bytes[at] {
            b'"' if field.is_empty() => in_quotes = true,
            b',' if fields.len() == 2 => {
                return Err(format!("line {}: more than three fields", number + 1))
            }
            b',' => fields.push(std::mem::take(&mut field)),
            b'\r' if next == Some(b'\n') => {}
            b'\n' => {
                fields.push(std::mem::take(&mut field));
                row(number, &mut fields)?;
                fields.clear();
                number += 1;
                line += 1;
            }
            b'\r' => field.push('\r'),
            // Outside quotes a `"` is text once the field has begun.
            _ => {
                let end = push_run(text, at, &mut field, |byte| {
                    matches!(byte, b',' | b'\r' | b'\n')
                });
                at = end;
                continue;
            }
        }
        at += 1;
    }
    if in_quotes {
        return Err(format!("line {line}: unterminated quoted field"));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        row(number, &mut fields)?;
    }
    Ok(())
}

/// Appends to `field` the text from `at` (which holds no byte `stop` takes) up to the first
/// byte `stop` takes, and no further than a field may grow past its limit; returns where it
/// stopped. The bytes `stop` takes are ASCII, so the text is cut between characters.
fn push_run(text: &str, at: usize, field: &mut String, stop: impl Fn(u8) -> bool) -> usize {
    let room = (MAX_FIELD_BYTES + 1).saturating_sub(field.len()).max(1);
    let limit = text.len().min(at.saturating_add(room));
    let mut end = (at + 1..limit)
        .find(|&index| stop(text.as_bytes()[index]))
        .unwrap_or(limit);
    while !text.is_char_boundary(end) {
        end += 1;
    }
    field.push_str(&text[at..end]);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser as it was, one character at a time: what [`for_each_row`] must agree with.
    fn for_each_row_by_character(
        text: &str,
        mut row: impl FnMut(usize, &mut Vec<String>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut fields = Vec::with_capacity(3);
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut in_quotes = false;
        let mut line = 1;
        let mut number = 0;
        while let Some(character) = chars.next() {
            if field.len() > MAX_FIELD_BYTES {
                return Err(format!(
                    "line {line}: a field longer than {MAX_FIELD_BYTES} bytes"
                ));
            }
            if in_quotes {
                match character {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => in_quotes = false,
                    '\n' => {
                        line += 1;
                        field.push(character);
                    }
                    _ => field.push(character),
                }
                continue;
            }
            match character {
                '"' if field.is_empty() => in_quotes = true,
                ',' if fields.len() == 2 => {
                    return Err(format!("line {}: more than three fields", number + 1))
                }
                ',' => fields.push(std::mem::take(&mut field)),
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    fields.push(std::mem::take(&mut field));
                    row(number, &mut fields)?;
                    fields.clear();
                    number += 1;
                    line += 1;
                }
                _ => field.push(character),
            }
        }
        if in_quotes {
            return Err(format!("line {line}: unterminated quoted field"));
        }
        if !field.is_empty() || !fields.is_empty() {
            fields.push(field);
            row(number, &mut fields)?;
        }
        Ok(())
    }

    #[test]
    fn sha256_hashes_decode_to_their_digest() {
        let digest: [u8; 32] = Sha256::digest(b"hello").into();
        assert_eq!(sha256_of_hash(&hash_digest(&digest)), Some(digest));
        assert_eq!(sha256_of_hash(&format_hash("sha512", &digest)), None);
        assert_eq!(sha256_of_hash("sha256=AAAA"), None, "too short");
        assert_eq!(
            sha256_of_hash(&format!("{}AA", hash_digest(&digest))),
            None,
            "too long"
        );
        assert_eq!(sha256_of_hash("sha256=!!"), None);
    }

    #[test]
    fn parses_rows() {
        let text = "a/__init__.py,sha256=abc,12\r\n\"we,ird \"\"name\"\".py\",sha256=x,3\na-1.0.dist-info/RECORD,,\n";
        let record = Record::parse(text).expect("parse");
        assert_eq!(
            record.entries,
            vec![
                RecordEntry {
                    path: "a/__init__.py".into(),
                    hash: "sha256=abc".into(),
                    size: Some(12)
                },
                RecordEntry {
                    path: "we,ird \"name\".py".into(),
                    hash: "sha256=x".into(),
                    size: Some(3)
                },
                RecordEntry {
                    path: "a-1.0.dist-info/RECORD".into(),
                    hash: String::new(),
                    size: None
                },
            ]
        );
    }

    /// What a crafted RECORD costs is bounded by its rows, which are counted: blank lines
    /// cost nothing, a row has three fields at most and a field 4 KiB.
    #[test]
    fn crafted_records_cost_little() {
        let blank = format!("{}a.py,sha256=x,1\n", "\n".repeat(10_000_000));
        assert_eq!(Record::parse(&blank).expect("parse").entries.len(), 1);
        let rows = "x,,\n".repeat(5);
        assert_eq!(
            Record::parse_at_most(&rows, 5)
                .expect("parse")
                .entries
                .len(),
            5
        );
        let error = Record::parse_at_most(&rows, 4).expect_err("too many rows");
        assert!(
            error.contains("line 5: more rows than it may have (4)"),
            "{error}"
        );
        let commas = format!("a{}\n", ",".repeat(10_000_000));
        let error = Record::parse(&commas).expect_err("too many fields");
        assert!(error.contains("more than three fields"), "{error}");
        let long = format!("{},,\n", "x".repeat(5000));
        let error = Record::parse(&long).expect_err("too long");
        assert!(error.contains("a field longer than 4096 bytes"), "{error}");
        assert!(error.len() < 100, "{error}");
        let path = "x".repeat(4000);
        assert!(Record::parse(&format!("{path},,\n")).is_ok());
    }

    /// A row parser: [`for_each_row`] or the reference.
    type RowParser = fn(
        &str,
        &mut dyn FnMut(usize, &mut Vec<String>) -> Result<(), String>,
    ) -> Result<(), String>;

    /// Every row of `text`, or the first error, as `parse` gives them.
    fn rows_of(text: &str, parse: RowParser) -> Result<Vec<(usize, Vec<String>)>, String> {
        let mut rows = Vec::new();
        parse(text, &mut |number, fields| {
            rows.push((number, fields.clone()));
            Ok(())
        })?;
        Ok(rows)
    }

    proptest::proptest! {
        /// The parser that copies runs of text reads every text as the one that took a
        /// character at a time: the same rows, the same errors.
        #[test]
        fn runs_parse_as_characters_do(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "b/c.py", "é", "€", ",", "\"", "\"\"", "\r", "\n", "\r\n",
                    "sha256=x", "12",
                ]),
                0..40,
            ),
            long in 0usize..3,
        ) {
            let mut text: String = pieces.concat();
            // Fields about the limit's length, cut inside a character or not.
            if long > 0 {
                let filler = if long == 1 { "x" } else { "é" };
                let at = text.len() / 2;
                let at = (0..=at).rev().find(|at| text.is_char_boundary(*at)).unwrap_or(0);
                text.insert_str(at, &filler.repeat(MAX_FIELD_BYTES / filler.len() + 1));
            }
            let by_runs = rows_of(&text, |text, row| for_each_row(text, row));
            let by_characters = rows_of(&text, |text, row| for_each_row_by_character(text, row));
            proptest::prop_assert_eq!(by_runs, by_characters);
        }
    }

    #[test]
    fn takes_a_path_listed_twice_alike() {
        let record = Record::parse("a/b.py,sha256=x,1\na/b.py,sha256=x,1\n").expect("parse");
        assert_eq!(record.entries.len(), 2);
    }

    #[test]
    fn rejects_bad_rows() {
        let cases = [
            "a,b,c,d\n",
            "a,sha256=x,notanumber\n",
            ",sha256=x,1\n",
            "\"open,x,1\n",
            // One path twice, unalike (either order).
            "a/b.py,sha256=x,1\nc.py,,\na/b.py,sha256=y,1\n",
            "a/b.py,sha256=y,1\na/b.py,sha256=x,1\n",
            "a/b.py,sha256=x,1\na/b.py,sha256=x,2\n",
        ];
        for text in cases {
            assert!(Record::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn writes_sorted_and_quoted_and_round_trips() {
        let record = Record {
            entries: vec![
                RecordEntry {
                    path: "z.py".into(),
                    hash: "sha256=1".into(),
                    size: Some(1),
                },
                RecordEntry {
                    path: "a,b.py".into(),
                    hash: "sha256=2".into(),
                    size: Some(2),
                },
                RecordEntry {
                    path: "x.dist-info/RECORD".into(),
                    hash: String::new(),
                    size: None,
                },
            ],
        };
        let text = record.to_text();
        assert_eq!(
            text,
            "\"a,b.py\",sha256=2,2\nx.dist-info/RECORD,,\nz.py,sha256=1,1\n"
        );
        let mut reparsed = Record::parse(&text).expect("reparse").entries;
        let mut original = record.entries.clone();
        reparsed.sort_by(|a, b| a.path.cmp(&b.path));
        original.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(reparsed, original);
    }

    #[test]
    fn hash_matches_pip() {
        // python -c "import hashlib,base64;print(base64.urlsafe_b64encode(hashlib.sha256(b'hello\n').digest()).rstrip(b'='))"
        assert_eq!(
            hash_bytes(b"hello\n"),
            "sha256=WJG1tSLV3whtD_CxEPvZ0hu0_HFjrzTQgoai6Eb2vgM"
        );
        assert_eq!(
            hash_bytes(b""),
            "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}
