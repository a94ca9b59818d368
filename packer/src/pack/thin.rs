//! Thin artifacts (SPEC "Thin artifacts"): `pack --thin-from OLD` leaves out every wheel OLD
//! already carries (same SHA-256). At install the left-out wheels' files are linked from a
//! release of OLD beside DEST, checked against RECORD. What such a release cannot give back
//! as shipped stays in the payload as the wheel's husk: `.data/scripts/` (whose `#!python` line
//! names the venv), `.data/headers/`, RECORD's signatures, and RECORD's skeleton — RECORD with
//! the hashes the release vouches for blanked, which the install fills in from the release's
//! RECORD and holds to the manifest's `record_sha256`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use pysfx_format::{MemberKind, Payload, ThinBase};
use pysfx_wheel::Record;
use tracing::{info, warn};

use crate::collect::{dist_info_directory, WheelInfo};
use crate::{ArtifactError, UsageError};

/// RECORD is read whole; no real one comes near this.
const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// The artifact a thin pack relies on (`--thin-from OLD`).
pub(crate) struct Base {
    /// What the manifest records of it.
    pub(crate) thin_from: ThinBase,
    /// The SHA-256 of every wheel OLD's manifest describes, carried or itself left out.
    wheels: HashSet<String>,
    /// The paths of a wheel of OLD that a release of OLD holds another wheel's bytes at, and
    /// that wheel's name, by the first wheel's SHA-256 ([`lost_paths`]).
    lost: HashMap<String, Vec<(String, String)>>,
    /// The Python `X.Y` of each of OLD's sets; `None` when one serves every Python.
    pythons: Option<Vec<String>>,
}

impl Base {
    /// Opens OLD and checks its payload digest, as `pysfx verify` does (an unreadable or
    /// corrupt OLD gives verify's message and exit code); OLD must be an artifact of `app_name`
    /// (exit 2 otherwise).
    pub(crate) fn read(path: &Path, app_name: &str) -> Result<Base> {
        let context = || format!("--thin-from {}", path.display());
        let mut payload = Payload::open(path)
            .map_err(ArtifactError::format)
            .with_context(context)?;
        payload
            .verify()
            .map_err(ArtifactError::format)
            .with_context(context)?;
        // And all `pysfx verify OLD` checks: a thin artifact relies on OLD's wheels as OLD
        // carries them.
        crate::inspect::verify_contents(&mut payload)
            .map_err(|(code, error)| ArtifactError::refused(code, &error))
            .with_context(context)?;
        let manifest = payload.manifest();
        if manifest.app.name != app_name {
            return Err(UsageError(format!(
                "--thin-from {}: it is an artifact of the app {:?}, and this pack is of the app \
                 {app_name:?}; a thin artifact relies on an earlier artifact of the same app",
                path.display(),
                manifest.app.name
            ))
            .into());
        }
        let mut base = Base {
            thin_from: ThinBase {
                app: manifest.app.name.clone(),
                version: manifest.app.version.clone(),
                payload_sha256: payload.digest(),
            },
            wheels: manifest
                .wheels
                .iter()
                .map(|wheel| wheel.sha256.clone())
                .collect(),
            lost: HashMap::new(),
            pythons: (manifest.sets.iter())
                .map(|set| Some(set.target.as_ref()?.python_version.clone()))
                .collect(),
        };
        base.lost = lost_paths(&mut payload).with_context(context)?;
        Ok(base)
    }

    /// Whether OLD carries (or itself relies on) the wheel with this SHA-256, and a release of
    /// OLD holds its files. A path of the wheel that another wheel of one of OLD's sets won
    /// there (with other bytes, or bytes a husk's RECORD does not name) is not the wheel's in
    /// any release of OLD: the wheel is left out only when, in every set of this pack that has
    /// it (`sets`), a wheel after it in the install's order (normalised names) ships that path
    /// again, so the install writes that one there and asks the base for nothing. Otherwise it
    /// is carried whole, with a warning naming the path. `keys` caches each wheel file's
    /// release keys ([`wheel_release_keys`]).
    pub(crate) fn carries(
        &self,
        info: &WheelInfo,
        file: &Path,
        sets: &[&[PathBuf]],
        keys: &mut HashMap<PathBuf, HashSet<String>>,
    ) -> Result<bool> {
        if !self.wheels.contains(&info.sha256) {
            return Ok(false);
        }
        let Some(lost) = self.lost.get(&info.sha256) else {
            return Ok(true);
        };
        for set in sets.iter().filter(|set| set.iter().any(|f| f == file)) {
            let later: Vec<&PathBuf> = set
                .iter()
                .filter(|other| {
                    let name = other.file_name().and_then(|n| n.to_str());
                    let parsed = name.and_then(|n| n.parse::<pysfx_wheel::WheelFilename>().ok());
                    parsed.is_some_and(|parsed| parsed.name > info.name)
                })
                .collect();
            for (path, winner) in lost {
                let mut won_again = false;
                for other in &later {
                    won_again |= release_keys_of(keys, other)?.contains(path);
                }
                if !won_again {
                    warn!(
                        "{}: carried whole although --thin-from carries it too: a release of it \
                         holds {winner}'s {path} (or a file it cannot show is this wheel's), and \
                         no wheel after it in a set of this pack ships {path} again",
                        info.filename
                    );
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// A wheel's members, its `.dist-info` directory, and its RECORD's text and rows: what the
/// thin pack reads of each wheel (`label` names it in errors).
struct WheelRecord {
    members: Vec<pysfx_format::Member>,
    dist_info: String,
    text: String,
    rows: Rows,
}

fn wheel_record<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    label: &str,
    husk: bool,
) -> Result<WheelRecord> {
    let members = pysfx_format::scan_members(archive).with_context(|| label.to_string())?;
    let dist_info = dist_info_directory(members.iter().map(|member| member.name.as_str()))
        .ok_or_else(|| anyhow!("{label}: not exactly one .dist-info directory"))?;
    let (text, rows) = read_record(archive, &dist_info, husk).with_context(|| label.to_string())?;
    Ok(WheelRecord {
        members,
        dist_info,
        text,
        rows,
    })
}

/// The release keys of a wheel file, read once into `keys`.
fn release_keys_of<'k>(
    keys: &'k mut HashMap<PathBuf, HashSet<String>>,
    wheel: &Path,
) -> Result<&'k HashSet<String>> {
    match keys.entry(wheel.to_path_buf()) {
        std::collections::hash_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
        std::collections::hash_map::Entry::Vacant(entry) => {
            Ok(entry.insert(wheel_release_keys(wheel)?))
        }
    }
}

/// The release keys ([`release_key`]) of every file a wheel's RECORD lists.
fn wheel_release_keys(wheel: &Path) -> Result<HashSet<String>> {
    let context = || format!("cannot read {}", wheel.display());
    let file = crate::appfiles::open_regular(wheel, true).with_context(context)?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).with_context(context)?;
    let record = wheel_record(&mut archive, &wheel.display().to_string(), false)?;
    Ok(record
        .rows
        .keys()
        .filter_map(|path| release_key(path))
        .collect())
}

/// What a path of a wheel's RECORD is called in a release, for comparing two wheels' paths:
/// `.data/purelib/` and `.data/platlib/` files land in site-packages with the wheel's own;
/// another `.data` scheme's stay apart (a `.` before the scheme, which no module name has).
/// `None` for the `.dist-info` directory, each wheel's own.
fn release_key(path: &str) -> Option<String> {
    let (top, rest) = path.split_once('/')?;
    if top.ends_with(".dist-info") {
        return None;
    }
    if !top.ends_with(".data") {
        return Some(path.to_string());
    }
    let (scheme, inner) = rest.split_once('/')?;
    Some(match scheme {
        "purelib" | "platlib" => inner.to_string(),
        other => format!(".{other}/{inner}"),
    })
}

/// For each wheel of OLD (by SHA-256), the paths another wheel of one of its sets wins in a
/// release (the later one in normalised-name order, as the install decides) with other
/// bytes, or bytes a husk's RECORD skeleton does not name, and the winner's name.
fn lost_paths(payload: &mut Payload) -> Result<HashMap<String, Vec<(String, String)>>> {
    let manifest = payload.manifest().clone();
    // Each wheel's RECORD rows, by release key: the row's hash (blank in a husk's skeleton).
    let mut rows: HashMap<&str, HashMap<String, String>> = HashMap::new();
    for wheel in &manifest.wheels {
        let (start, len) = payload
            .stored_range(&wheel.path)
            .map_err(ArtifactError::format)?;
        let section = pysfx_format::Section::with_directory(payload.file(), start, len);
        let mut archive = zip::ZipArchive::new(section)
            .with_context(|| format!("{}: not a readable zip", wheel.filename))?;
        let by_key = (wheel_record(&mut archive, &wheel.filename, wheel.from_base)?.rows)
            .into_iter()
            .filter_map(|(path, (hash, _))| Some((release_key(&path)?, hash)))
            .collect();
        rows.insert(wheel.path.as_str(), by_key);
    }
    let by_path: HashMap<&str, &pysfx_format::WheelEntry> = manifest
        .wheels
        .iter()
        .map(|wheel| (wheel.path.as_str(), wheel))
        .collect();
    let mut lost: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for set in &manifest.sets {
        // The set's wheels in the install's order: the later one wins a path.
        let mut wheels: Vec<&pysfx_format::WheelEntry> = set
            .wheels
            .iter()
            .filter_map(|path| by_path.get(path.as_str()).copied())
            .collect();
        wheels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut winner: HashMap<&str, (&pysfx_format::WheelEntry, &str)> = HashMap::new();
        for wheel in wheels.iter().rev() {
            let Some(keys) = rows.get(wheel.path.as_str()) else {
                continue;
            };
            for (key, hash) in keys {
                match winner.get(key.as_str()) {
                    None => {
                        winner.insert(key, (wheel, hash));
                    }
                    Some((won_by, won_hash)) => {
                        if hash.is_empty() || won_hash.is_empty() || hash != won_hash {
                            let entry = lost.entry(wheel.sha256.clone()).or_default();
                            entry.push((key.clone(), won_by.name.clone()));
                        }
                    }
                }
            }
        }
    }
    for paths in lost.values_mut() {
        paths.sort();
        paths.dedup();
    }
    Ok(lost)
}

/// A left-out wheel's husk, written into the pack's work directory.
pub(crate) struct Husk {
    pub(crate) file: PathBuf,
    pub(crate) size: u64,
    /// The members left out that the wheel marks executable, sorted (the manifest's
    /// `executables`): the release they are taken from may have another mode for them.
    pub(crate) executables: Vec<String>,
}

/// Where a left-out wheel's husk is stored in the payload: `thin/<first 16 hex of its
/// SHA-256>.whl` (the manifest names the wheel; a thin artifact is mostly such names, twice
/// each in the zip).
pub(crate) fn husk_payload_path(info: &WheelInfo) -> String {
    format!("thin/{}.whl", &info.sha256[..16])
}

/// The husk of `wheel` (`info` read from it), written under `work`: the members
/// `pysfx_wheel::husk_carries` takes, raw-copied (names, compressed bytes, times and unix
/// permissions as they are, so the husk is deterministic), and RECORD's skeleton. `None`, with
/// a warning, when the wheel must be carried whole: its RECORD is too long for the install to
/// read back from a release, or a file outside the husk has no RECORD row with a sha256 hash
/// and a size, by which the install checks a file before linking it.
pub(crate) fn make_husk(
    wheel: &Path,
    info: &WheelInfo,
    work: &Path,
    shared: &HashSet<String>,
) -> Result<Option<Husk>> {
    let context = || format!("cannot make the husk of {}", wheel.display());
    let file = crate::appfiles::open_regular(wheel, true).with_context(context)?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).with_context(context)?;
    let WheelRecord {
        members,
        dist_info,
        text: record_text,
        rows: record,
    } = wheel_record(&mut archive, &wheel.display().to_string(), false).with_context(context)?;
    let unchecked = members.iter().find(|member| {
        let checkable = record
            .get(member.name.as_str())
            .is_some_and(|(hash, size)| hash.starts_with("sha256=") && size.is_some());
        let skeleton = *member.name == format!("{dist_info}/RECORD");
        member.kind != MemberKind::Directory
            && !pysfx_wheel::husk_carries(&member.name, &dist_info)
            && !skeleton
            && !checkable
    });
    // The install reads the release's RECORD of the wheel whole, up to a limit the installed
    // RECORD must stay within: a wheel whose RECORD is longer than a husk's may be is carried
    // whole (no real one comes near it).
    let longest = pysfx_install::MAX_HUSK_RECORD_BYTES;
    if record_text.len() as u64 > longest {
        warn!(
            "{}: carried whole although --thin-from carries it too: its RECORD is {} bytes, \
             more than an install reads from a release ({} MiB)",
            info.filename,
            record_text.len(),
            longest >> 20
        );
        return Ok(None);
    }
    if let Some(member) = unchecked {
        warn!(
            "{}: carried whole although --thin-from carries it too: RECORD has no sha256 hash \
             and size for {}, by which the install would check the file it links",
            info.filename, member.name
        );
        return Ok(None);
    }
    let output = work
        .join("thin")
        .join(&info.sha256[..16])
        .join(info.filename.to_string());
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent).with_context(context)?;
    }
    let mut writer = zip::ZipWriter::new(File::create(&output).with_context(context)?);
    for member in members
        .iter()
        .filter(|m| pysfx_wheel::husk_carries(&m.name, &dist_info))
    {
        let entry = archive.by_index_raw(member.index).with_context(context)?;
        writer.raw_copy_file(entry).with_context(context)?;
    }
    let skeleton = record_skeleton(&record_text, &members, &dist_info, shared);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    writer
        .start_file(format!("{dist_info}/RECORD"), options)
        .with_context(context)?;
    writer
        .write_all(skeleton.as_bytes())
        .with_context(context)?;
    writer.finish().with_context(context)?;
    let size = std::fs::metadata(&output).with_context(context)?.len();
    let mut executables: Vec<String> = members
        .iter()
        .filter(|m| m.kind == MemberKind::File { executable: true })
        .filter(|m| !pysfx_wheel::husk_carries(&m.name, &dist_info))
        .map(|m| m.name.to_string())
        .collect();
    executables.sort();
    Ok(Some(Husk {
        file: output,
        size,
        executables,
    }))
}

/// RECORD without what a release of the wheel gives back (`pysfx_wheel::skeleton`): the
/// install fills it in from that release's RECORD and holds the result to the manifest's
/// `record_sha256`. A row whose path another wheel of one of this pack's sets also ships
/// (`shared`) is named, never in a run, so that a thin pack from this one sees who ships it
/// ([`lost_paths`]). The skeleton is filled in here from the rows such a release writes, and
/// must give RECORD back; if it would not, only hashes are blanked.
fn record_skeleton(
    record_text: &str,
    members: &[pysfx_format::Member],
    dist_info: &str,
    shared: &HashSet<String>,
) -> String {
    // A file the husk carries keeps its hash; so does one the installer writes its own of
    // (INSTALLER, …), which no release gives back as the wheel ships it.
    let blank = |path: &str| {
        !pysfx_wheel::husk_carries(path, dist_info) && !pysfx_wheel::installers_own(path, dist_info)
    };
    let names_every_row = || pysfx_wheel::skeleton(record_text, blank, |_| None);
    let files = members
        .iter()
        .filter(|member| member.kind != MemberKind::Directory)
        .map(|member| member.name.as_str());
    let Some(site) = pysfx_wheel::site_paths(files, dist_info) else {
        return names_every_row();
    };
    let index: HashMap<&str, usize> = site
        .iter()
        .enumerate()
        .map(|(index, path)| (path.as_str(), index))
        .collect();
    let in_run = |path: &str| index.get(path).copied().filter(|_| !shared.contains(path));
    let skeleton = pysfx_wheel::skeleton(record_text, blank, in_run);
    // Filled in from the rows a release writes inside site-packages, as far as runs take
    // them: each member's own path, hash and size (the install writes a file's row from the
    // bytes RECORD holds it to).
    let Ok(record) = Record::parse(record_text) else {
        return names_every_row();
    };
    let by_path: HashMap<&str, &pysfx_wheel::RecordEntry> = (record.entries.iter())
        .map(|row| (row.path.as_str(), row))
        .collect();
    let rows: Vec<pysfx_wheel::RecordEntry> = (site.iter())
        .map(|path| pysfx_wheel::RecordEntry {
            path: path.clone(),
            hash: by_path
                .get(path.as_str())
                .map_or("", |row| &row.hash)
                .into(),
            size: by_path.get(path.as_str()).and_then(|row| row.size),
        })
        .collect();
    let hash_of = |path: &str| by_path.get(path).map(|row| row.hash.clone());
    if pysfx_wheel::fill_hashes(&skeleton, hash_of, &rows.iter().collect::<Vec<_>>()) == record_text
    {
        skeleton
    } else {
        warn!("{dist_info}: RECORD's skeleton names every row (its runs would not give it back)");
        names_every_row()
    }
}

/// The paths that two wheels of one set ship (their release keys, [`release_key`]): what a
/// later thin pack from this one must see in every husk's RECORD ([`lost_paths`]). `keys`
/// caches each wheel file's keys.
pub(crate) fn shared_paths(
    sets: &[&[PathBuf]],
    keys: &mut HashMap<PathBuf, HashSet<String>>,
) -> Result<HashSet<String>> {
    let mut shared = HashSet::new();
    for set in sets {
        let mut seen: HashSet<String> = HashSet::new();
        for file in set.iter().collect::<HashSet<_>>() {
            for key in release_keys_of(keys, file)? {
                if !seen.insert(key.clone()) {
                    shared.insert(key.clone());
                }
            }
        }
    }
    Ok(shared)
}

/// RECORD's rows by path: (hash, size).
type Rows = HashMap<String, (String, Option<u64>)>;

/// RECORD's text, and its rows (of a `husk`'s skeleton, the rows it names: a run's rows are
/// paths no other wheel of its sets ships, see [`shared_paths`]).
fn read_record<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    dist_info: &str,
    husk: bool,
) -> Result<(String, Rows)> {
    let name = format!("{dist_info}/RECORD");
    let entry = archive
        .by_name(&name)
        .with_context(|| format!("{name} is missing"))?;
    let mut text = String::new();
    entry
        .take(MAX_RECORD_BYTES)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {name}"))?;
    let record = match husk {
        true => pysfx_wheel::named_rows(&text, u64::MAX).and_then(|named| Record::parse(&named)),
        false => Record::parse(&text),
    }
    .map_err(|reason| anyhow!("{name}: {reason}"))?;
    let rows = record
        .entries
        .into_iter()
        .map(|row| (row.path, (row.hash, row.size)))
        .collect();
    Ok((text, rows))
}

/// Says what a thin pack left out and what it carries, and warns when no release of OLD can
/// ever serve it: OLD's sets and this pack's (`pythons`, `None` when one serves every Python)
/// share no Python `X.Y`, and files are linked only within one.
pub(crate) fn report(
    base: &Base,
    pythons: Option<Vec<&str>>,
    infos: &BTreeMap<String, (WheelInfo, PathBuf)>,
    husks: &BTreeMap<String, Husk>,
) {
    let ThinBase {
        app,
        version,
        payload_sha256,
    } = &base.thin_from;
    let version = version.as_deref().unwrap_or("(no version recorded)");
    if husks.is_empty() {
        let shared = (infos.values()).any(|(info, _)| base.wheels.contains(&info.sha256));
        match shared {
            true => warn!(
                "--thin-from {app} {version}: none of the wheels it shares with this pack could \
                 be left out (see above); the artifact is a full one"
            ),
            false => warn!(
                "--thin-from {app} {version}: it carries none of this pack's wheels; the \
                 artifact is a full one"
            ),
        }
        return;
    }
    if let (Some(ours), Some(theirs)) = (pythons, &base.pythons) {
        if !ours
            .iter()
            .any(|python| theirs.iter().any(|their| their == python))
        {
            warn!(
                "--thin-from {app} {version}: its wheel sets are for Python {}, this pack's for \
                 {}: no release of it can serve this artifact, whose left-out wheels must come \
                 from a release for the same Python (of another artifact carrying them)",
                theirs.join(", "),
                ours.join(", ")
            );
        }
    }
    let left_out: u64 = husks
        .keys()
        .filter_map(|path| infos.get(path))
        .map(|(info, _)| info.size)
        .sum();
    let husk_bytes: u64 = husks.values().map(|husk| husk.size).sum();
    info!(
        "thin: {} of {} wheels ({left_out} bytes) left out, to be linked from a release of \
         {app} {version} (payload sha256 {payload_sha256}) beside DEST; their husks take \
         {husk_bytes} bytes",
        husks.len(),
        infos.len()
    );
}
