//! What `--check` (and `--force`'s look before it decides nothing needs rebuilding) holds a
//! release's own records to, beyond the records themselves: the receipt to itself, to the
//! manifest it names and to its owner, and, when the artifact that installed the release runs
//! the check (its payload verified by its digest), the receipt's rows of the app's files and
//! each installed wheel's RECORD rows of the files the install copies unchanged. The
//! release's owner can write its receipt and RECORDs as well as its files: an edited file
//! with its rows edited to agree is found here.

use std::path::Path;

use pysfx_format::Payload;
use pysfx_release::check::Modified;
use pysfx_release::receipt::{Receipt, RecordedFile, RECEIPT_NAME};
use pysfx_wheel::RecordEntry;

/// What differs in the records of the release in `destination` (whose receipt is `receipt`)
/// against `payload` (the running artifact's): `pysfx-receipt.json` (`content` when it
/// contradicts itself or this payload, `owner` when another user than DEST's owns it), and
/// each installed RECORD that contradicts the wheel's own (`content`).
pub fn held_to_payload(
    payload: &mut Payload,
    receipt: &Receipt,
    destination: &Path,
) -> Vec<Modified> {
    use std::os::unix::fs::MetadataExt;
    let mut modified: Vec<Modified> = records_contradicting(payload, receipt, destination)
        .into_iter()
        .map(|path| Modified {
            path,
            differs: vec!["content"],
        })
        .collect();
    let mut differs = Vec::new();
    if receipt.contradicts(&payload.digest(), payload.manifest())
        || !app_rows_hold(payload, receipt)
    {
        differs.push("content");
    }
    // Written by the install as the release's owner: another user's receipt (put in its
    // place by a member of a deploy group) says whatever that user wants.
    let owner = |path: &Path| std::fs::symlink_metadata(path).map(|m| m.uid());
    if let (Ok(release), Ok(written)) = (owner(destination), owner(&destination.join(RECEIPT_NAME)))
    {
        if release != written {
            differs.push("owner");
        }
    }
    if !differs.is_empty() {
        modified.push(Modified {
            path: RECEIPT_NAME.into(),
            differs,
        });
    }
    modified
}

/// The largest wheel RECORD read here (no wheel's comes near it).
const MAX_RECORD_BYTES: u64 = 64 << 20;

/// The rows of the wheel `filename`'s RECORD in this payload (a wheel stored whole, not a
/// thin artifact's husk) that an install copies unchanged into the installed RECORD — files
/// outside `<name>.data/`, with a hash, but for the dist-info's own RECORD, INSTALLER,
/// REQUESTED and direct_url.json, and the byte-code the wheel ships (never installed) — and
/// the name of its `.dist-info` directory. `None` when the
/// payload holds no such wheel or its RECORD cannot be read.
pub fn kept_record_rows(
    payload: &mut Payload,
    filename: &str,
) -> Option<(String, Vec<RecordEntry>)> {
    use std::io::Read;
    let entry = (payload.manifest().wheels.iter())
        .find(|wheel| wheel.filename == filename && !wheel.from_base)?
        .clone();
    let (start, len) = payload.stored_range(&entry.path).ok()?;
    let file = payload.file().clone();
    let mut archive =
        zip::ZipArchive::new(pysfx_format::Section::with_directory(&file, start, len)).ok()?;
    // Read as the install reads a wheel's members (one inflater in the stub, not the zip
    // crate's own).
    let members = pysfx_format::scan_members(&mut archive).ok()?;
    let records: Vec<&pysfx_format::Member> = (members.iter())
        .filter(|member| {
            (member.name.as_str().split_once('/')).is_some_and(|(directory, rest)| {
                directory.ends_with(".dist-info") && rest == "RECORD"
            })
        })
        .collect();
    let [record] = records.as_slice() else {
        return None;
    };
    if record.size > MAX_RECORD_BYTES {
        return None;
    }
    let dist_info = record.name.as_str().strip_suffix("/RECORD")?.to_string();
    let mut bytes = Vec::new();
    crate::member::open_member(&mut archive, record.index, record.end)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let own = ["RECORD", "INSTALLER", "REQUESTED", "direct_url.json"]
        .map(|name| format!("{dist_info}/{name}"));
    let rows = pysfx_wheel::Record::parse(&text)
        .ok()?
        .entries
        .into_iter()
        .filter(|row| {
            let data = (row.path.split_once('/')).is_some_and(|(top, _)| top.ends_with(".data"));
            let shipped_pyc = crate::wheel::cached_source(&row.path).is_some();
            !row.hash.is_empty() && !data && !own.contains(&row.path) && !shipped_pyc
        })
        .collect();
    Some((dist_info, rows))
}

/// Whether the receipt's rows for the app's and static directories' files are the ones an
/// install of this payload writes, when the receipt names this very payload (another's
/// cannot be compared): an app file edited, with its row edited to agree, is a receipt that
/// contradicts the payload it names. A payload that cannot be read for it says nothing.
fn app_rows_hold(own: &mut Payload, receipt: &Receipt) -> bool {
    let (Some(contents), true) = (&receipt.contents, receipt.payload_sha256 == own.digest()) else {
        return true;
    };
    let Ok(rows) = crate::app_rows(own) else {
        return true;
    };
    let app = format!("{}/", own.manifest().app.name);
    let mut recorded: Vec<&RecordedFile> = (contents.files.iter())
        .filter(|file| file.path.starts_with(&app) || file.path.starts_with("static.in/"))
        .collect();
    recorded.sort_by(|a, b| a.path.cmp(&b.path));
    recorded.len() == rows.len() && recorded.iter().zip(&rows).all(|(a, b)| *a == b)
}

/// The installed RECORDs (paths relative to DEST) whose rows of the files the install copies
/// unchanged are not the wheel's own, when the receipt names this very payload: a file edited
/// in site-packages with its RECORD row, and the receipt's hash of that RECORD, edited to
/// agree. Rows are compared by their SHA-256 digests (a row of another algorithm, or padded,
/// is not compared); a path two installed wheels ship with different bytes (one wins) is not
/// compared either.
fn records_contradicting(own: &mut Payload, receipt: &Receipt, destination: &Path) -> Vec<String> {
    let (Some(contents), true) = (&receipt.contents, receipt.payload_sha256 == own.digest()) else {
        return Vec::new();
    };
    let wheels: Vec<(String, Vec<RecordEntry>)> = (receipt.wheels.iter())
        .filter_map(|wheel| kept_record_rows(own, &wheel.filename))
        .collect();
    // Rows of a SHA-256 only (a wheel may use a stronger one: not compared), and the paths
    // two wheels ship with different bytes (one wins).
    let sha256 = |row: &RecordEntry| pysfx_wheel::sha256_of_hash(&row.hash);
    let mut all: Vec<(&str, [u8; 32])> = (wheels.iter().flat_map(|(_, rows)| rows))
        .filter_map(|row| Some((row.path.as_str(), sha256(row)?)))
        .collect();
    all.sort_unstable();
    all.dedup();
    let contested: Vec<&str> = (all.windows(2))
        .filter(|pair| pair[0].0 == pair[1].0)
        .map(|pair| pair[0].0)
        .collect();
    let mut contradicting = Vec::new();
    for (dist_info, rows) in &wheels {
        let record = format!("{}/{dist_info}/RECORD", contents.site_packages);
        let Some(installed) = pysfx_release::paths::read_regular(&destination.join(&record))
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| pysfx_wheel::Record::parse(&text).ok())
        else {
            // Missing or unreadable: `--check` itself says so.
            continue;
        };
        let mut installed: Vec<(&str, Option<[u8; 32]>)> = (installed.entries.iter())
            .map(|row| (row.path.as_str(), sha256(row)))
            .collect();
        installed.sort_unstable();
        // A row the installed RECORD lacks leaves its file unrecorded: `added`, if there.
        let differs = rows.iter().any(|row| {
            let (path, Some(digest)) = (row.path.as_str(), sha256(row)) else {
                return false;
            };
            let at = installed.partition_point(|(other, _)| *other < path);
            let found = installed.get(at).filter(|(other, _)| *other == path);
            contested.binary_search(&path).is_err()
                && found.is_some_and(|(_, hash)| *hash != Some(digest))
        });
        if differs {
            contradicting.push(record);
        }
    }
    contradicting
}
