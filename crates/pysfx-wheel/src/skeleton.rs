//! A RECORD's *skeleton*: the RECORD of a wheel that a thin artifact leaves out, as the thin
//! artifact carries it instead of the RECORD. At install, [`fill_hashes`] gives the RECORD back
//! from a release of that wheel's installed RECORD, and the result must be the wheel's RECORD
//! byte for byte (its SHA-256 is in the manifest), so the hashes the install checks the
//! release's files against are the wheel's own. Two things stand in for rows:
//!
//! - a *blank* row, `path,,size`: the row with its SHA-256 blanked, filled in from the
//!   release's row for the path the member is installed at;
//! - a *run* line, NUL, `start count`: `count` rows taken whole from the release's RECORD,
//!   from its `start`-th row inside site-packages ([`site_rows`]), each ending as the run line
//!   ends (`\n` or `\r\n`). The release writes its
//!   RECORD sorted by path, so the rows a wheel lists in the order of its own paths come back
//!   in a few runs, and the skeleton need not carry their paths at all.
//!
//! Only lines without a `"` are touched, so a line's path is everything before its first `,`
//! and its hash everything between the first and second `,`.

use std::fmt::Write;

use crate::record::{hash_digest, sha256_of_hash, RecordEntry};

/// The first character of a run line; no RECORD row a skeleton is made from starts with it
/// ([`skeleton`] keeps such a line as it is, and the fill then cannot match).
const RUN: char = '\0';

/// The skeleton of `record`: each unquoted row with a SHA-256 (as a release writes it) and a
/// size whose path `blank` accepts is blanked, or folded into a run when `site_index` gives its
/// place among a release's rows inside site-packages (where the row is the release's own,
/// path for path).
pub fn skeleton(
    record: &str,
    blank: impl Fn(&str) -> bool,
    site_index: impl Fn(&str) -> Option<usize>,
) -> String {
    let mut out = String::with_capacity(record.len());
    let mut run: Option<Run> = None;
    // A release's row comes back once at most (see `fill_hashes`): a path listed twice is
    // folded the first time only.
    let mut taken = std::collections::HashSet::new();
    for line in record.split_inclusive('\n') {
        let row = split_row(line)
            .filter(|(path, hash, rest)| is_release_hash(hash) && has_size(rest) && blank(path));
        let Some((path, _, rest)) = row else {
            end_run(&mut out, &mut run);
            out.push_str(line);
            continue;
        };
        // A run gives the row back as `path,hash,size` and its line end: only a row written
        // just so folds.
        let (size, end) = split_end(rest);
        let plain = size.parse::<u64>().is_ok_and(|n| n.to_string() == size);
        let place =
            (site_index(path)).filter(|index| plain && !end.is_empty() && taken.insert(*index));
        match (place, &mut run) {
            (Some(index), Some(run)) if run.start + run.count == index && run.end == end => {
                run.count += 1
            }
            (Some(index), _) => {
                end_run(&mut out, &mut run);
                run = Some(Run {
                    start: index,
                    count: 1,
                    end,
                });
            }
            (None, _) => {
                end_run(&mut out, &mut run);
                out.push_str(path);
                out.push_str(",,");
                out.push_str(rest);
            }
        }
    }
    end_run(&mut out, &mut run);
    out
}

/// A run of rows: from the `start`-th row inside site-packages, `count` rows, each ending in
/// `end`.
struct Run<'a> {
    start: usize,
    count: usize,
    end: &'a str,
}

fn end_run(out: &mut String, run: &mut Option<Run>) {
    if let Some(Run { start, count, end }) = run.take() {
        let _ = write!(out, "{RUN}{start} {count}{end}");
    }
}

/// A line's text and its end (`\n`, `\r\n` or none).
fn split_end(line: &str) -> (&str, &str) {
    let text = line.trim_end_matches(['\n', '\r']);
    match &line[text.len()..] {
        end @ ("\n" | "\r\n") => (text, end),
        _ => (line, ""),
    }
}

/// Whether a RECORD hash is a SHA-256 written as an install writes it (URL-safe base64, no
/// padding): only such a hash comes back from a release's RECORD as it was.
fn is_release_hash(hash: &str) -> bool {
    sha256_of_hash(hash).is_some_and(|digest| hash_digest(&digest) == hash)
}

/// The rows of a release's RECORD (as written: sorted by path) that runs count in: those
/// inside site-packages (not `../`), without the installer's own rows of `dist_info` and of
/// the byte-code it compiled (a `__pycache__/*.pyc` row without a hash), which no wheel
/// member gives.
pub fn site_rows<'a>(rows: &'a [RecordEntry], dist_info: &str) -> Vec<&'a RecordEntry> {
    rows.iter()
        .filter(|row| !row.path.starts_with("../"))
        .filter(|row| !installers_own(&row.path, dist_info))
        .filter(|row| !(row.hash.is_empty() && is_compiled(&row.path)))
        .collect()
}

/// A `.pyc` in a `__pycache__` directory, where the installer puts what it compiles.
fn is_compiled(path: &str) -> bool {
    path.ends_with(".pyc")
        && path
            .rsplit_once('/')
            .is_some_and(|(directory, _)| directory.rsplit('/').next() == Some("__pycache__"))
}

/// What a husk carries of a wheel, beside RECORD's skeleton: what a release of the wheel
/// cannot give back as shipped — `.data/scripts/` (their `#!python` line is rewritten),
/// `.data/headers/` (whose place names the distribution as METADATA spells it), RECORD's
/// signatures (which RECORD does not list) and the byte-code the wheel ships in `__pycache__`
/// (never installed: a release holds its own).
pub fn husk_carries(member: &str, dist_info: &str) -> bool {
    if is_compiled(member) {
        return true;
    }
    let Some((top, rest)) = member.split_once('/') else {
        return false;
    };
    (top == dist_info && (rest == "RECORD.jws" || rest == "RECORD.p7s"))
        || (top.ends_with(".data")
            && (rest.starts_with("scripts/") || rest.starts_with("headers/")))
}

/// Whether a member is one of the files an installer writes of its own install in the
/// wheel's `.dist-info` (RECORD, INSTALLER, REQUESTED, `direct_url.json`): a release holds
/// the installer's, never the wheel's.
pub fn installers_own(member: &str, dist_info: &str) -> bool {
    let own = member
        .strip_prefix(dist_info)
        .and_then(|rest| rest.strip_prefix('/'));
    matches!(
        own,
        Some("RECORD" | "INSTALLER" | "REQUESTED" | "direct_url.json")
    )
}

/// Of a member in a wheel's `.data` directory (any top directory named `*.data`), the path
/// below that directory (`scheme/path`); `None` for any other member.
pub fn data_member(member: &str) -> Option<&str> {
    let (top, rest) = member.split_once('/')?;
    (top.ends_with(".data") && !rest.is_empty()).then_some(rest)
}

/// The paths [`site_rows`] of a release of a wheel holds, told from the wheel's file members
/// (but the byte-code it ships, never installed): where the install puts each one inside
/// site-packages (PEP 427's scheme: a member at the top,
/// or one under `.data/purelib/` or `.data/platlib/`), sorted as the release writes RECORD.
/// `None` when the names alone cannot tell: a `.data/data/` member (its place may be inside
/// site-packages, by the interpreter's version), another scheme than the four, a place twice.
pub fn site_paths<'a>(
    members: impl IntoIterator<Item = &'a str>,
    dist_info: &str,
) -> Option<Vec<String>> {
    let mut paths = Vec::new();
    // Nor the byte-code the wheel ships, which a release never holds (it holds its own).
    let shipped = |path: &str| is_compiled(path);
    for member in members {
        if installers_own(member, dist_info) {
            continue;
        }
        let Some(rest) = data_member(member) else {
            if !shipped(member) {
                paths.push(member.to_string());
            }
            continue;
        };
        match rest.split_once('/')? {
            ("purelib" | "platlib", path) if shipped(path) => {}
            ("purelib" | "platlib", path) => paths.push(path.to_string()),
            ("scripts" | "headers", _) => {}
            _ => return None,
        }
    }
    paths.sort();
    let before = paths.len();
    paths.dedup();
    (paths.len() == before).then_some(paths)
}

/// Gives the RECORD back: each blank row's hash from `hash_of(path)` (a row it knows nothing
/// of stays blank), each run's rows from `site_rows` (a run beyond them, or beyond as many
/// rows in all as `site_rows` has, stays as it is: a crafted skeleton cannot make RECORD
/// bigger than the release's). A wrong or missing row gives other bytes, which the caller's
/// digest check refuses; so does a malformed run line, which stays as it is ([`named_rows`]
/// names it).
pub fn fill_hashes(
    skeleton: &str,
    hash_of: impl Fn(&str) -> Option<String>,
    site_rows: &[&RecordEntry],
) -> String {
    let mut out = String::with_capacity(skeleton.len() + skeleton.len() / 2);
    let mut budget = site_rows.len();
    for line in skeleton.split_inclusive('\n') {
        if let Some(Run { start, count, end }) = run_line(line) {
            let rows = site_rows.get(start..start.saturating_add(count));
            match rows.filter(|_| count <= budget) {
                Some(rows) => {
                    budget -= count;
                    for row in rows {
                        out.push_str(&row.path);
                        out.push(',');
                        out.push_str(&row.hash);
                        out.push(',');
                        if let Some(size) = row.size {
                            let _ = write!(out, "{size}");
                        }
                        out.push_str(end);
                    }
                }
                None => out.push_str(line),
            }
            continue;
        }
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

/// The skeleton's rows without its run lines (the rows it names), for a reader that checks
/// what it names; the error names a malformed run line (one that starts with NUL and is no
/// run line): the skeleton's fault, whatever a release holds.
///
/// Its runs stand for at most `members` rows in all, and none ends past the `members`-th row:
/// each row a run gives back is a member of the wheel (the wheel's RECORD lists each once, and
/// the release's rows of the wheel are no more than its members), so more is a corrupt husk,
/// not a release that lacks the rows.
pub fn named_rows(skeleton: &str, members: u64) -> Result<String, String> {
    let mut out = String::with_capacity(skeleton.len());
    let mut rows: u64 = 0;
    for (number, line) in skeleton.split_inclusive('\n').enumerate() {
        if !line.starts_with(RUN) {
            out.push_str(line);
            continue;
        }
        let run = run_line(line).filter(|run| run.start.checked_add(run.count).is_some());
        let Some(run) = run else {
            return Err(format!("line {}: a malformed run of rows", number + 1));
        };
        rows = rows.saturating_add(run.count as u64);
        // A run's rows are the wheel's own: none lies past its last member.
        if (run.start + run.count) as u64 > members {
            return Err(format!(
                "line {}: a run of rows that ends past the wheel's last member ({members})",
                number + 1
            ));
        }
        if rows > members {
            return Err(format!(
                "line {}: its runs stand for more rows than the wheel has members ({members})",
                number + 1
            ));
        }
    }
    Ok(out)
}

/// A run line's run.
fn run_line(line: &str) -> Option<Run<'_>> {
    let (text, end) = split_end(line.strip_prefix(RUN)?);
    let (start, count) = text.split_once(' ')?;
    let (start, count) = (start.parse().ok()?, count.parse().ok()?);
    (!end.is_empty()).then_some(Run { start, count, end })
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
    use crate::record::{hash_bytes, Record};

    /// A RECORD as a build tool writes it: its own order, a CRLF line, a quoted path, rows
    /// without a SHA-256 or a size, a padded hash.
    fn record() -> String {
        let h = |text: &str| hash_bytes(text.as_bytes());
        let padded = format!("{}=", h("p"));
        [
            format!("pkg/z.py,{},1\n", h("z")),
            format!("pkg/__init__.py,{},10\r\n", h("i")),
            format!("pkg/a.py,{},20\n", h("a")),
            format!("pkg/b.py,{},21\n", h("b")),
            format!("\"odd,name.py\",{},5\n", h("o")),
            format!("pkg/c.py,{padded},7\n"),
            "pkg/d.py,sha384=DDD,7\n".to_string(),
            format!("pkg/e.py,{},\n", h("e")),
            format!("pkg/f.py,{},07\n", h("f")),
            format!("pkg-1.0.data/scripts/run,{},3\n", h("r")),
            "pkg-1.0.dist-info/RECORD,,\n".to_string(),
        ]
        .concat()
    }

    /// The installed RECORD of that wheel: sorted, `\n` ends, the installer's own rows and a
    /// launcher outside site-packages.
    fn installed() -> Vec<RecordEntry> {
        let text = record()
            .replace("\r\n", "\n")
            .replace("pkg-1.0.data/scripts/run", "../../../bin/run")
            .replace(",07\n", ",7\n");
        let mut rows = Record::parse(&text).expect("test data").entries;
        for own in ["INSTALLER", "REQUESTED"] {
            rows.push(RecordEntry {
                path: format!("pkg-1.0.dist-info/{own}"),
                hash: hash_bytes(b""),
                size: Some(0),
            });
        }
        // The byte-code the install compiled, listed without a hash as pip lists it.
        let compiled: Vec<RecordEntry> = (rows.iter())
            .filter_map(|row| {
                let source = row.path.strip_suffix(".py")?;
                let (directory, stem) = source.rsplit_once('/').unwrap_or(("", source));
                let directory = match directory {
                    "" => String::new(),
                    directory => format!("{directory}/"),
                };
                (!row.path.starts_with("../")).then(|| RecordEntry {
                    path: format!("{directory}__pycache__/{stem}.cpython-311.pyc"),
                    hash: String::new(),
                    size: None,
                })
            })
            .collect();
        assert!(!compiled.is_empty(), "test data without sources");
        rows.extend(compiled);
        // Written sorted, as the install writes it, and read back.
        Record::parse(&Record { entries: rows }.to_text())
            .expect("test data")
            .entries
    }

    fn hash_in(rows: &[RecordEntry]) -> impl Fn(&str) -> Option<String> + '_ {
        move |path: &str| {
            let path = path.replace("pkg-1.0.data/scripts/", "../../../bin/");
            rows.iter()
                .find(|row| row.path == path)
                .map(|row| row.hash.clone())
        }
    }

    #[test]
    fn blanking_and_filling_give_the_record_back() {
        let rows = installed();
        let skeleton = skeleton(&record(), |path| path != "pkg/a.py", |_| None);
        // Only a SHA-256 as an install writes it is blanked.
        assert!(skeleton.starts_with("pkg/z.py,,1\npkg/__init__.py,,10\r\npkg/a.py,sha256="));
        assert!(skeleton.contains("pkg/c.py,sha256=") && skeleton.contains("pkg/f.py,,07\n"));
        let site = site_rows(&rows, "pkg-1.0.dist-info");
        assert_eq!(fill_hashes(&skeleton, hash_in(&rows), &site), record());
        // A wrong or missing hash gives other bytes.
        let wrong = |_: &str| Some(hash_bytes(b"other"));
        assert_ne!(fill_hashes(&skeleton, wrong, &site), record());
        assert_ne!(fill_hashes(&skeleton, |_| None, &site), record());
    }

    #[test]
    fn runs_take_the_rows_from_the_release() {
        let rows = installed();
        let site = site_rows(&rows, "pkg-1.0.dist-info");
        let paths: Vec<&str> = site.iter().map(|row| row.path.as_str()).collect();
        // The release's own rows and the launcher are not counted.
        assert!(!paths
            .iter()
            .any(|p| p.starts_with("../") || p.ends_with("/INSTALLER")));
        let index = |path: &str| paths.iter().position(|p| *p == path);
        let skeleton = skeleton(&record(), |_| true, index);
        // pkg/a.py and pkg/b.py are neighbours in both orders: one run; pkg/z.py its own, and
        // pkg/__init__.py too, whose line ends in CRLF.
        let runs: Vec<&str> = (skeleton.split_inclusive('\n'))
            .filter(|l| l.starts_with(RUN))
            .collect();
        let (a, z) = (
            index("pkg/a.py").expect("test data"),
            index("pkg/z.py").expect("test data"),
        );
        let runs_expected = [
            format!("\0{z} 1\n"),
            format!("\0{} 1\r\n", a - 1),
            format!("\0{a} 2\n"),
        ];
        assert_eq!(runs, runs_expected);
        // A size written `07` stays a blank row.
        assert!(skeleton.contains("pkg/f.py,,07") && !skeleton.contains("pkg/a.py"));
        assert_eq!(fill_hashes(&skeleton, hash_in(&rows), &site), record());
        // Other rows at the run's place give other bytes; a run beyond the rows stays.
        let mut swapped = site.clone();
        swapped.swap(a, a + 1);
        assert_ne!(fill_hashes(&skeleton, hash_in(&rows), &swapped), record());
        assert_ne!(
            fill_hashes(&skeleton, hash_in(&rows), &site[..a + 1]),
            record()
        );
        // Runs that would take more rows in all than the release has stay as they are.
        let repeated = skeleton.clone() + &format!("\0{a} 2\n").repeat(site.len());
        let filled = fill_hashes(&repeated, hash_in(&rows), &site);
        assert!(filled.ends_with(&format!("\0{a} 2\n")), "{filled:?}");
        // A path listed twice is in a run once.
        let twice = record() + &record();
        let twice_skeleton = super::skeleton(&twice, |_| true, index);
        assert_eq!(fill_hashes(&twice_skeleton, hash_in(&rows), &site), twice);
        // What the skeleton names is every row but the runs'.
        let named = named_rows(&skeleton, 100).expect("test data");
        assert!(!named.contains(RUN) && named.contains("pkg/f.py,,07"));
        assert!(Record::parse(&named).is_ok());
        assert!(named_rows("pkg/x,,1\n\0 1 2\n", 100).is_err());
        assert!(named_rows("\x003\n", 100).is_err());
        // Runs of more rows than the wheel has members, or past any row number: corrupt.
        assert!(named_rows("\x000 2\n\x002 2\n", 4).is_ok());
        assert!(named_rows("\x000 2\n\x004 2\n", 6).is_ok());
        assert!(named_rows("\x004 2\n", 5).is_err());
        assert!(named_rows("\x000 2\n\x004 3\n", 4).is_err());
        assert!(named_rows("\x0018446744073709551615 2\n", 4).is_err());
        // A malformed run line is the skeleton's fault, whatever the release holds.
        for bad in [
            "\0-1 2\n",
            "\0 0 4\n",
            "\x000  4\n",
            "\x000 4 \n",
            "\0\n",
            "\x000 4",
        ] {
            assert!(named_rows(bad, 100).is_err(), "{bad:?}");
            assert_eq!(fill_hashes(bad, hash_in(&rows), &site), bad);
        }
    }

    #[test]
    fn site_paths_are_where_a_release_lists_its_rows() {
        // The installed RECORD's rows inside site-packages, told from the members' names.
        let record = Record::parse(&record()).expect("test data");
        let members = record.entries.iter().map(|row| row.path.as_str());
        let rows = installed();
        let listed: Vec<&str> = site_rows(&rows, "pkg-1.0.dist-info")
            .iter()
            .map(|row| row.path.as_str())
            .collect();
        assert_eq!(
            site_paths(members, "pkg-1.0.dist-info").expect("test data"),
            listed
        );
        let members = [
            "b/x.py",
            "t-1.0.data/purelib/a/y.py",
            "t-1.0.data/platlib/c.so",
            "t-1.0.data/scripts/run",
            "t-1.0.data/headers/t.h",
            "t-1.0.dist-info/METADATA",
            "t-1.0.dist-info/INSTALLER",
            "t-1.0.dist-info/RECORD",
            "top.data",
        ];
        assert_eq!(
            site_paths(members, "t-1.0.dist-info").expect("test data"),
            [
                "a/y.py",
                "b/x.py",
                "c.so",
                "t-1.0.dist-info/METADATA",
                "top.data"
            ]
        );
        // A data file may land inside site-packages; a place given twice is no release's.
        assert_eq!(
            site_paths(["t-1.0.data/data/lib/x"], "t-1.0.dist-info"),
            None
        );
        assert_eq!(site_paths(["t-1.0.data/other/x"], "t-1.0.dist-info"), None);
        assert_eq!(
            site_paths(["a.py", "t-1.0.data/purelib/a.py"], "t-1.0.dist-info"),
            None
        );
    }

    #[test]
    fn what_a_husk_holds() {
        let dist_info = "tool-1.0.dist-info";
        let cases = [
            ("tool-1.0.dist-info/RECORD", false),
            ("tool-1.0.dist-info/RECORD.jws", true),
            ("tool-1.0.dist-info/METADATA", false),
            ("tool-1.0.dist-info/licenses/LICENSE", false),
            ("tool-1.0.data/scripts/run", true),
            ("tool-1.0.data/headers/tool.h", true),
            ("tool-1.0.data/scripts/", true),
            ("tool-1.0.data/purelib/tool/x.py", false),
            ("tool-1.0.data/data/share/x", false),
            ("tool/__init__.py", false),
            ("tool-1.0.dist-info", false),
            ("other-2.0.dist-info/METADATA", false),
            ("tool/scripts/run", false),
            ("tool/__pycache__/x.cpython-311.pyc", true),
            ("tool/__pycache__/x.cpython-311.opt-1.pyc", true),
            ("tool/x.pyc", false),
            ("README", false),
        ];
        for (member, expected) in cases {
            assert_eq!(husk_carries(member, dist_info), expected, "{member}");
        }
    }
}
