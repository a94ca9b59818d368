//! `RECORD` (PEP 376 / PEP 427): CSV rows `path,hash,size` with `hash = sha256=<urlsafe b64>`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

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
    format!("{algorithm}={}", URL_SAFE_NO_PAD.encode(digest))
}

impl Record {
    /// Parses RECORD text. Python's `csv` module wrote it, so fields may be quoted with `"`
    /// (a doubled `""` inside quotes is one `"`), and lines end in `\n` or `\r\n`.
    pub fn parse(text: &str) -> Result<Record, String> {
        let mut entries = Vec::new();
        for (number, row) in parse_csv(text)?.into_iter().enumerate() {
            if row.iter().all(String::is_empty) {
                continue;
            }
            let mut fields = row.into_iter();
            let path = fields.next().unwrap_or_default();
            let hash = fields.next().unwrap_or_default();
            let size = fields.next().unwrap_or_default();
            if fields.next().is_some() {
                return Err(format!("line {}: more than three fields", number + 1));
            }
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
        }
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
        let mut out = String::new();
        for entry in entries {
            out.push_str(&quote(&entry.path));
            out.push(',');
            out.push_str(&quote(&entry.hash));
            out.push(',');
            if let Some(size) = entry.size {
                out.push_str(&size.to_string());
            }
            out.push('\n');
        }
        out
    }
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut line = 1;
    while let Some(character) = chars.next() {
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
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                line += 1;
            }
            _ => field.push(character),
        }
    }
    if in_quotes {
        return Err(format!("line {line}: unterminated quoted field"));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

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
