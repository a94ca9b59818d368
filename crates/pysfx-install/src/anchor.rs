//! What `--check` holds a release's own records to when the artifact that installed it runs
//! the check (its payload verified by its digest): each installed wheel's RECORD rows of the
//! files the install copies unchanged. (The receipt's rows of the app's files: [`crate::app_rows`].)

use pysfx_format::Payload;
use pysfx_wheel::RecordEntry;

/// The largest wheel RECORD read here (no wheel's comes near it).
const MAX_RECORD_BYTES: u64 = 64 << 20;

/// The rows of the wheel `filename`'s RECORD in this payload (a wheel stored whole, not a
/// thin artifact's husk) that an install copies unchanged into the installed RECORD — files
/// outside `<name>.data/`, with a hash, but for the dist-info's own RECORD, INSTALLER,
/// REQUESTED and direct_url.json — and the name of its `.dist-info` directory. `None` when the
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
    crate::member::open_member(&mut archive, record.index)
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
            !row.hash.is_empty() && !data && !own.contains(&row.path)
        })
        .collect();
    Some((dist_info, rows))
}
