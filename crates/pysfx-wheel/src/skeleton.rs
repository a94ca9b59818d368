//! A RECORD's *skeleton*: the RECORD of a wheel that a thin artifact leaves out, with the
//! SHA-256 of the rows a release of that wheel can vouch for blanked (`path,,size`). The thin
//! artifact carries the skeleton instead of the RECORD; at install, [`fill_hashes`] puts the
//! hashes back from the release's installed RECORD, and the result must be the wheel's RECORD
//! byte for byte (its SHA-256 is in the manifest), so the hashes the install checks the
//! release's files against are the wheel's own.
//!
//! Only lines without a `"` are touched, so a line's path is everything before its first `,`
//! and its hash everything between the first and second `,`.

/// Blanks the `sha256=` hash of every unquoted row with a size whose path `blank` accepts.
pub fn blank_hashes(record: &str, blank: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(record.len());
    for line in record.split_inclusive('\n') {
        match split_row(line) {
            Some((path, hash, rest))
                if hash.starts_with("sha256=") && has_size(rest) && blank(path) =>
            {
                out.push_str(path);
                out.push_str(",,");
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Fills each blank hash of an unquoted row with a size from `hash_of(path)`; a row
/// `hash_of` knows nothing of stays blank (and the filled RECORD will not match its digest).
pub fn fill_hashes(skeleton: &str, hash_of: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(skeleton.len() + skeleton.len() / 2);
    for line in skeleton.split_inclusive('\n') {
        match split_row(line) {
            Some((path, "", rest)) if has_size(rest) => match hash_of(path) {
                Some(hash) => {
                    out.push_str(path);
                    out.push(',');
                    out.push_str(&hash);
                    out.push(',');
                    out.push_str(rest);
                }
                None => out.push_str(line),
            },
            _ => out.push_str(line),
        }
    }
    out
}

/// `path,hash,rest` of an unquoted line; `rest` keeps the size and the line end.
fn split_row(line: &str) -> Option<(&str, &str, &str)> {
    if line.contains('"') {
        return None;
    }
    let (path, after) = line.split_once(',')?;
    let (hash, rest) = after.split_once(',')?;
    (!path.is_empty()).then_some((path, hash, rest))
}

/// The size field (up to the line end) is a number.
fn has_size(rest: &str) -> bool {
    let size = rest.trim_end_matches(['\n', '\r']);
    !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = "pkg/__init__.py,sha256=AAA,10\r\npkg/a.py,sha256=BBB,20\n\"odd,name.py\",sha256=CCC,5\npkg-1.0.dist-info/RECORD,,\npkg/b.py,sha384=DDD,7\npkg/c.py,sha256=EEE,\n";

    #[test]
    fn blanking_and_filling_give_the_record_back() {
        let skeleton = blank_hashes(RECORD, |path| path != "pkg/a.py");
        assert_eq!(
            skeleton,
            "pkg/__init__.py,,10\r\npkg/a.py,sha256=BBB,20\n\"odd,name.py\",sha256=CCC,5\npkg-1.0.dist-info/RECORD,,\npkg/b.py,sha384=DDD,7\npkg/c.py,sha256=EEE,\n"
        );
        let filled = fill_hashes(&skeleton, |path| {
            (path == "pkg/__init__.py").then(|| "sha256=AAA".to_string())
        });
        assert_eq!(filled, RECORD);
        // A wrong or missing hash gives other bytes.
        assert_ne!(
            fill_hashes(&skeleton, |_| Some("sha256=ZZZ".into())),
            RECORD
        );
        assert_ne!(fill_hashes(&skeleton, |_| None), RECORD);
    }
}
