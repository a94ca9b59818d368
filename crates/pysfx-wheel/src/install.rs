//! Installing one wheel into a virtualenv tree (PEP 427 "Installing a wheel"), as pip does:
//! the root to purelib or platlib by `Root-Is-Purelib`, each `.data/<key>/` to its scheme
//! directory, `#!python` rewritten, launchers for the entry points, and a RECORD that lists the
//! installed paths. Every member is checked (name, size, CRC, RECORD hash) as it is written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::Version;
use sha2::{Digest, Sha256};
use tracing::{debug, trace};
use zip::ZipArchive;

use crate::record::hash_digest;
use crate::{
    create_dirs_below, dist_info_name, hash_bytes, launcher_script, normalize_name, relative_path,
    rewrite_python_shebang, validate_member_name, EntryPoint, EntryPoints, Headers, Record,
    RecordEntry, WheelError, WheelFilename,
};

/// The largest metadata file (`METADATA`, `RECORD`, …) read into memory.
const MAX_METADATA_BYTES: u64 = 64 * 1024 * 1024;
/// The largest `.data/scripts` file, which is read into memory for `#!python` rewriting.
const MAX_SCRIPT_BYTES: u64 = 64 * 1024 * 1024;
/// A member that inflates more than this many times over is treated as a decompression bomb.
const MAX_RATIO: u64 = 1000;
/// The largest single member, and the largest total, a wheel may unpack to.
const MAX_MEMBER_BYTES: u64 = 4 << 30;
const MAX_WHEEL_BYTES: u64 = 16 << 30;

/// Where a wheel goes. Paths inside the venv are `/`-separated and relative to `root`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The venv root as it is being written (possibly a temporary directory).
    pub root: PathBuf,
    /// `lib/pythonX.Y/site-packages` (purelib and platlib are one directory in a venv).
    pub site_packages: String,
    /// `(major, minor)` of the interpreter, for `include/site/pythonX.Y` and `pipX.Y`.
    pub python_version: (u32, u32),
    /// The venv's python as scripts will find it once installed (the final, not temporary,
    /// path), for shebangs.
    pub shebang_python: String,
    /// Written to `INSTALLER`.
    pub installer: String,
}

/// What one wheel installed.
#[derive(Debug, Clone)]
pub struct InstallReport {
    /// The name as `METADATA` spells it.
    pub name: String,
    pub version: String,
    pub files: u64,
    pub bytes: u64,
    /// The `.py` files written under site-packages, relative to the venv root.
    pub python_files: Vec<String>,
}

/// One member to write, after every check that can run before writing.
#[derive(Debug, Clone)]
struct Planned {
    index: usize,
    member: String,
    /// Destination relative to the venv root.
    destination: String,
    executable: bool,
    /// A `.data/scripts` file: its `#!python` line is rewritten.
    script: bool,
    /// Uncompressed size, as the zip directory declares it.
    size: u64,
    /// Its RECORD row's hash and size (none for a signature file, which RECORD omits).
    expected: Option<Expected>,
}

/// What RECORD says of a member.
#[derive(Debug, Clone)]
struct Expected {
    /// `algorithm=digest`, or empty.
    hash: String,
    size: Option<u64>,
}

/// Installs the wheel read from `reader` (named `filename`) into `layout`, one member after
/// another. [`prepare_wheel`], [`extract_member`] and [`finish_wheel`] are the same steps for a
/// caller that spreads the members of many wheels over several threads.
pub fn install_wheel<R: Read + Seek>(
    reader: R,
    filename: &WheelFilename,
    layout: &Layout,
) -> Result<InstallReport, WheelError> {
    let mut archive = ZipArchive::new(reader).map_err(|source| WheelError::Zip {
        wheel: filename.to_string(),
        source,
    })?;
    let prepared = prepare_wheel(&mut archive, filename, layout)?;
    let mut writer = TreeWriter::new(&layout.root);
    let mut outcomes = Vec::with_capacity(prepared.members());
    for member in 0..prepared.members() {
        outcomes.push(extract_member(
            &mut archive,
            &prepared,
            member,
            layout,
            &mut writer,
        )?);
    }
    finish_wheel(&prepared, outcomes, layout, &mut writer)
}

/// Checks a wheel as the installer would, writing nothing: member names and kinds, metadata,
/// RECORD (every member listed, every hash and size right), entry points and destinations.
/// The packer and `verify` run it so that an artifact that verifies also installs.
pub fn verify_wheel<R: Read + Seek>(reader: R, filename: &WheelFilename) -> Result<(), WheelError> {
    let mut archive = ZipArchive::new(reader).map_err(|source| WheelError::Zip {
        wheel: filename.to_string(),
        source,
    })?;
    let layout = Layout {
        root: std::path::PathBuf::from("/nonexistent"),
        site_packages: "lib/python3/site-packages".into(),
        python_version: (3, 0),
        shebang_python: "/nonexistent/bin/python".into(),
        installer: "pysfx".into(),
    };
    let prepared = prepare_wheel(&mut archive, filename, &layout)?;
    let mut buffer = vec![0u8; 64 * 1024];
    for plan in &prepared.planned {
        let entry = archive
            .by_index(plan.index)
            .map_err(|source| WheelError::Zip {
                wheel: prepared.wheel.clone(),
                source,
            })?;
        let declared = entry.size();
        let mismatch = |reason: String| WheelError::RecordMismatch {
            wheel: prepared.wheel.clone(),
            member: plan.member.clone(),
            reason,
        };
        let mut reader = entry.take(declared + 1);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let read = reader
                .read(&mut buffer)
                .map_err(|error| mismatch(format!("unreadable: {error}")))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
        }
        check_member(plan.expected.as_ref(), &hasher.finalize(), size, declared)
            .map_err(mismatch)?;
    }
    Ok(())
}

/// A wheel checked and planned: every member's destination decided, nothing written yet.
#[derive(Debug, Clone)]
pub struct PreparedWheel {
    wheel: String,
    name: String,
    version: String,
    dist_info: String,
    planned: Vec<Planned>,
    scripts: Vec<EntryPoint>,
    source_mtime: Option<std::time::SystemTime>,
}

impl PreparedWheel {
    /// Gives every `.py` file written to site-packages this mtime, so that timestamp-based
    /// `.pyc` files compiled elsewhere for the same sources stay valid.
    pub fn set_source_mtime(&mut self, mtime: std::time::SystemTime) {
        self.source_mtime = Some(mtime);
    }

    /// How many members [`extract_member`] has to write.
    pub fn members(&self) -> usize {
        self.planned.len()
    }

    /// The uncompressed size of a member, to schedule big ones first.
    pub fn member_size(&self, member: usize) -> u64 {
        self.planned.get(member).map_or(0, |plan| plan.size)
    }

    /// The distribution's name as METADATA spells it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What writing one member produced: the SHA-256 and size of the bytes written. Kept small,
/// since one is held for every member of every wheel in a batch.
#[derive(Debug, Clone)]
pub struct MemberOutcome {
    digest: [u8; 32],
    size: u64,
}

/// Reads and checks everything about the wheel that can be checked before writing: member
/// names and kinds, sizes, the `.dist-info` metadata, RECORD, entry points, destinations.
pub fn prepare_wheel<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    filename: &WheelFilename,
    layout: &Layout,
) -> Result<PreparedWheel, WheelError> {
    let wheel = filename.to_string();
    let invalid = |reason: String| WheelError::Invalid {
        wheel: wheel.clone(),
        reason,
    };

    // 1. Every member name, kind and size, before anything is written. The zip reader keeps
    // one entry per name, so a duplicate shows only in the count.
    if archive.has_duplicate_names() {
        return Err(WheelError::UnsafeMember {
            wheel: wheel.clone(),
            member: "(central directory)".into(),
            reason: "duplicate entry".into(),
        });
    }
    let mut files: Vec<(usize, String, bool, u64)> = Vec::new();
    let mut seen = HashSet::new();
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|source| WheelError::Zip {
                wheel: wheel.clone(),
                source,
            })?;
        let unsafe_member = |reason: &str| WheelError::UnsafeMember {
            wheel: wheel.clone(),
            member: String::from_utf8_lossy(entry.name_raw()).into_owned(),
            reason: reason.to_string(),
        };
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| unsafe_member("name is not UTF-8"))?
            .to_string();
        validate_member_name(&name).map_err(unsafe_member)?;
        if !seen.insert(name.trim_end_matches('/').to_string()) {
            return Err(unsafe_member("duplicate entry"));
        }
        if entry.is_symlink() {
            return Err(unsafe_member("symbolic link"));
        }
        if entry.encrypted() {
            return Err(unsafe_member("encrypted entry"));
        }
        if entry.is_dir() {
            continue;
        }
        let size = entry.size();
        if size > MAX_MEMBER_BYTES
            || (size > 1 << 20 && size / entry.compressed_size().max(1) > MAX_RATIO)
        {
            return Err(unsafe_member(
                "implausible compression ratio or size (zip bomb?)",
            ));
        }
        total = total.saturating_add(size);
        if total > MAX_WHEEL_BYTES {
            return Err(unsafe_member(
                "the wheel unpacks to more than 16 GiB (zip bomb?)",
            ));
        }
        let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        files.push((index, name, executable, size));
    }

    // 2. The .dist-info directory and its metadata.
    let dist_infos: BTreeMap<&str, ()> = files
        .iter()
        .filter_map(|(_, name, _, _)| name.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(".dist-info"))
        .map(|top| (top, ()))
        .collect();
    let dist_info = match dist_infos.keys().collect::<Vec<_>>().as_slice() {
        [one] => one.to_string(),
        [] => return Err(invalid("no .dist-info directory".into())),
        many => {
            return Err(invalid(format!(
                "more than one .dist-info directory: {}",
                many.iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    let index_of: HashMap<&str, usize> = files
        .iter()
        .map(|(index, name, _, _)| (name.as_str(), *index))
        .collect();
    let mut read_text = |member: &str| -> Result<Option<String>, WheelError> {
        let Some(&index) = index_of.get(member) else {
            return Ok(None);
        };
        let entry = archive.by_index(index).map_err(|source| WheelError::Zip {
            wheel: wheel.clone(),
            source,
        })?;
        let mut bytes = Vec::new();
        entry
            .take(MAX_METADATA_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|error| WheelError::Invalid {
                wheel: wheel.clone(),
                reason: format!("{member}: {error}"),
            })?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| WheelError::Invalid {
                wheel: wheel.clone(),
                reason: format!("{member} is not UTF-8"),
            })
    };
    let metadata_text = read_text(&format!("{dist_info}/METADATA"))?
        .ok_or_else(|| invalid(format!("{dist_info}/METADATA is missing")))?;
    let wheel_text = read_text(&format!("{dist_info}/WHEEL"))?
        .ok_or_else(|| invalid(format!("{dist_info}/WHEEL is missing")))?;
    let record_text = read_text(&format!("{dist_info}/RECORD"))?
        .ok_or_else(|| invalid(format!("{dist_info}/RECORD is missing")))?;
    let entry_points_text = read_text(&format!("{dist_info}/entry_points.txt"))?;

    let metadata = Headers::parse(&metadata_text);
    let name = metadata
        .get("Name")
        .ok_or_else(|| invalid("METADATA has no Name".into()))?
        .to_string();
    let version = metadata
        .get("Version")
        .ok_or_else(|| invalid("METADATA has no Version".into()))?
        .to_string();
    check_name_and_version(filename, &dist_info, &name, &version).map_err(invalid)?;

    let wheel_headers = Headers::parse(&wheel_text);
    let wheel_version = wheel_headers
        .get("Wheel-Version")
        .ok_or_else(|| invalid("WHEEL has no Wheel-Version".into()))?;
    if wheel_version.split('.').next() != Some("1") {
        return Err(invalid(format!(
            "Wheel-Version {wheel_version} is not supported (only 1.x)"
        )));
    }
    // In a venv purelib and platlib are the same directory, so Root-Is-Purelib only has to be
    // valid, not acted on.
    match wheel_headers
        .get("Root-Is-Purelib")
        .map(str::to_ascii_lowercase)
    {
        Some(value) if value == "true" || value == "false" => {}
        other => {
            return Err(invalid(format!(
                "WHEEL has an invalid Root-Is-Purelib: {other:?}"
            )))
        }
    }

    let mut record = Record::parse(&record_text)
        .map_err(|reason| invalid(format!("{dist_info}/RECORD: {reason}")))?;
    drop(record_text);
    // Where a path is listed twice, the last row counts.
    let recorded: HashMap<String, usize> = record
        .entries
        .iter_mut()
        .enumerate()
        .map(|(row, entry)| (std::mem::take(&mut entry.path), row))
        .collect();
    let entry_points = match &entry_points_text {
        Some(text) => EntryPoints::parse(text)
            .map_err(|reason| invalid(format!("{dist_info}/entry_points.txt: {reason}")))?,
        None => EntryPoints::default(),
    };
    let scripts_to_generate = versioned_scripts(entry_points.scripts, layout.python_version);
    let script_names: HashSet<&str> = scripts_to_generate
        .iter()
        .map(|script| script.name.as_str())
        .collect();

    // 3. Where each member goes.
    let site = layout.site_packages.as_str();
    let headers_dir = format!(
        "include/site/python{}.{}/{}",
        layout.python_version.0, layout.python_version.1, name
    );
    let record_member = format!("{dist_info}/RECORD");
    let mut planned = Vec::with_capacity(files.len());
    for (index, member, executable, size) in &files {
        if *member == record_member {
            continue;
        }
        let top = member.split('/').next().unwrap_or_default();
        let (destination, script) = if top.ends_with(".data") && member.len() > top.len() + 1 {
            let rest = &member[top.len() + 1..];
            let (key, path) = rest.split_once('/').ok_or_else(|| {
                invalid(format!("{member}: a file directly in the .data directory"))
            })?;
            match key {
                "purelib" | "platlib" => (format!("{site}/{path}"), false),
                "scripts" => {
                    if path.contains('/') {
                        return Err(invalid(format!("{member}: a directory in .data/scripts")));
                    }
                    if is_entry_point_wrapper(path, &script_names) {
                        trace!(member, "skipping a script replaced by an entry point");
                        continue;
                    }
                    check_reserved_script(path, layout.python_version).map_err(|reason| {
                        WheelError::UnsafeMember {
                            wheel: wheel.clone(),
                            member: member.clone(),
                            reason,
                        }
                    })?;
                    (format!("bin/{path}"), true)
                }
                "headers" => (format!("{headers_dir}/{path}"), false),
                "data" => (path.to_string(), false),
                other => {
                    return Err(invalid(format!(
                        "{member}: unknown wheel data type {other:?}"
                    )))
                }
            }
        } else {
            (format!("{site}/{member}"), false)
        };
        // Signatures are not listed in RECORD; everything else must be.
        let signature = member.ends_with("/RECORD.jws") || member.ends_with("/RECORD.p7s");
        let expected = recorded.get(member.as_str()).map(|&row| {
            let entry = &mut record.entries[row];
            Expected {
                hash: std::mem::take(&mut entry.hash),
                size: entry.size,
            }
        });
        if !signature && expected.is_none() {
            return Err(WheelError::RecordMismatch {
                wheel: wheel.clone(),
                member: member.clone(),
                reason: "not listed in RECORD".into(),
            });
        }
        planned.push(Planned {
            index: *index,
            member: member.clone(),
            destination,
            executable: *executable || script,
            script,
            size: *size,
            expected,
        });
    }
    for script in &scripts_to_generate {
        check_reserved_script(&script.name, layout.python_version).map_err(|reason| {
            WheelError::Invalid {
                wheel: wheel.clone(),
                reason: format!("entry point {:?}: {reason}", script.name),
            }
        })?;
    }

    let script_names: Vec<EntryPoint> = scripts_to_generate;
    Ok(PreparedWheel {
        wheel,
        name,
        version,
        dist_info,
        planned,
        scripts: script_names,
        source_mtime: None,
    })
}

/// Writes member number `member` of a prepared wheel, checking its size, CRC and RECORD hash.
pub fn extract_member<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    prepared: &PreparedWheel,
    member: usize,
    layout: &Layout,
    writer: &mut TreeWriter,
) -> Result<MemberOutcome, WheelError> {
    let wheel = &prepared.wheel;
    let site = layout.site_packages.as_str();
    let Some(plan) = prepared.planned.get(member) else {
        return Err(WheelError::Invalid {
            wheel: wheel.clone(),
            reason: format!("no member number {member}"),
        });
    };
    let entry = archive
        .by_index(plan.index)
        .map_err(|source| WheelError::Zip {
            wheel: wheel.clone(),
            source,
        })?;
    let declared = entry.size();
    let expected = plan.expected.as_ref();
    let mismatch = |reason: String| WheelError::RecordMismatch {
        wheel: wheel.clone(),
        member: plan.member.clone(),
        reason,
    };
    let mode = if plan.executable { 0o755 } else { 0o644 };
    let (digest, size) = if plan.script {
        let mut content = Vec::new();
        entry
            .take(MAX_SCRIPT_BYTES.min(declared + 1))
            .read_to_end(&mut content)
            .map_err(|error| mismatch(format!("unreadable: {error}")))?;
        check_member(
            expected,
            &Sha256::digest(&content),
            content.len() as u64,
            declared,
        )
        .map_err(mismatch)?;
        let content = rewrite_python_shebang(&content, &layout.shebang_python).unwrap_or(content);
        writer.write_all(&plan.destination, &content, mode)?;
        (Sha256::digest(&content).into(), content.len() as u64)
    } else {
        let is_source = plan.destination.ends_with(".py") && plan.destination.starts_with(site);
        let mtime = prepared.source_mtime.filter(|_| is_source);
        let (digest, size) = writer
            .copy(&plan.destination, entry.take(declared + 1), mode, mtime)
            .map_err(|error| match error {
                CopyError::Read(error) => mismatch(format!("unreadable: {error}")),
                CopyError::Write(error) => error,
            })?;
        check_member(expected, &digest, size, declared).map_err(mismatch)?;
        (digest, size)
    };
    Ok(MemberOutcome { digest, size })
}

/// Writes what follows the members: the entry-point launchers, `INSTALLER`, `REQUESTED` and
/// the RECORD of the installed paths.
pub fn finish_wheel(
    prepared: &PreparedWheel,
    outcomes: Vec<MemberOutcome>,
    layout: &Layout,
    writer: &mut TreeWriter,
) -> Result<InstallReport, WheelError> {
    let site = layout.site_packages.as_str();
    let dist_info = &prepared.dist_info;
    if outcomes.len() != prepared.planned.len() {
        return Err(WheelError::Invalid {
            wheel: prepared.wheel.clone(),
            reason: format!(
                "{} of {} members written",
                outcomes.len(),
                prepared.planned.len()
            ),
        });
    }
    let mut rows = Vec::with_capacity(outcomes.len() + prepared.scripts.len() + 3);
    let mut python_files = Vec::new();
    let mut bytes_written = 0u64;
    for (plan, outcome) in prepared.planned.iter().zip(outcomes) {
        bytes_written += outcome.size;
        rows.push(RecordEntry {
            path: relative_path(site, &plan.destination),
            hash: hash_digest(&outcome.digest),
            size: Some(outcome.size),
        });
        if plan.destination.ends_with(".py") && plan.destination.starts_with(site) {
            python_files.push(plan.destination.clone());
        }
    }
    let scripts_to_generate = &prepared.scripts;
    // 5. Launchers, INSTALLER, REQUESTED, RECORD.
    for script in scripts_to_generate {
        let text = launcher_script(&layout.shebang_python, &script.module, &script.attribute);
        let destination = format!("bin/{}", script.name);
        writer.write_all(&destination, text.as_bytes(), 0o755)?;
        rows.push(RecordEntry {
            path: relative_path(site, &destination),
            hash: hash_bytes(text.as_bytes()),
            size: Some(text.len() as u64),
        });
    }
    for (file, content) in [
        ("INSTALLER", format!("{}\n", layout.installer)),
        ("REQUESTED", String::new()),
    ] {
        let destination = format!("{site}/{dist_info}/{file}");
        writer.write_all(&destination, content.as_bytes(), 0o644)?;
        rows.push(RecordEntry {
            path: format!("{dist_info}/{file}"),
            hash: hash_bytes(content.as_bytes()),
            size: Some(content.len() as u64),
        });
    }
    rows.push(RecordEntry {
        path: format!("{dist_info}/RECORD"),
        hash: String::new(),
        size: None,
    });
    let files_written = rows.len() as u64;
    let record_text = Record { entries: rows }.to_text();
    writer.write_all(
        &format!("{site}/{dist_info}/RECORD"),
        record_text.as_bytes(),
        0o644,
    )?;
    debug!(wheel = %prepared.wheel, files = files_written, "installed");
    Ok(InstallReport {
        name: prepared.name.clone(),
        version: prepared.version.clone(),
        files: files_written,
        bytes: bytes_written + record_text.len() as u64,
        python_files,
    })
}

/// Compares a written member with its RECORD row and its zip header.
fn check_member(
    expected: Option<&Expected>,
    digest: &[u8],
    size: u64,
    declared: u64,
) -> Result<(), String> {
    if size != declared {
        return Err(format!(
            "{size} bytes where the zip header declares {declared}"
        ));
    }
    let Some(expected) = expected else {
        return Ok(());
    };
    if let Some(recorded_size) = expected.size {
        if recorded_size != size {
            return Err(format!("{size} bytes where RECORD says {recorded_size}"));
        }
    }
    if expected.hash.is_empty() {
        return Ok(());
    }
    if expected.hash.starts_with("sha256=") {
        let hash = hash_digest(digest);
        if expected.hash != hash {
            return Err(format!("hash {hash} where RECORD says {}", expected.hash));
        }
        return Ok(());
    }
    Err(format!(
        "RECORD uses an unsupported hash {:?}",
        expected.hash.split('=').next().unwrap_or_default()
    ))
}

/// PEP 427: the `.dist-info` name and `METADATA` must agree with the filename.
fn check_name_and_version(
    filename: &WheelFilename,
    dist_info: &str,
    name: &str,
    version: &str,
) -> Result<(), String> {
    if normalize_name(name) != filename.name {
        return Err(format!(
            "METADATA names {name:?}, the filename {:?}",
            filename.raw_name
        ));
    }
    let stem = dist_info.trim_end_matches(".dist-info");
    let dist_name = stem.rsplit_once('-').map(|(name, _)| name).unwrap_or(stem);
    if dist_info_name(dist_name) != dist_info_name(name) {
        return Err(format!("{dist_info} does not belong to {name}"));
    }
    let metadata_version = Version::from_str(version)
        .map_err(|_| format!("METADATA version {version:?} is not PEP 440"))?;
    if metadata_version.without_local() != filename.version.clone().without_local() {
        return Err(format!(
            "METADATA says version {version}, the filename {}",
            filename.raw_version
        ));
    }
    Ok(())
}

/// pip's rule: `pip` gets `pipX` and `pipX.Y` for the installing interpreter (and other
/// versioned pip launchers are dropped); `easy_install` gets `easy_install-X.Y`.
fn versioned_scripts(scripts: Vec<EntryPoint>, (major, minor): (u32, u32)) -> Vec<EntryPoint> {
    let is_versioned_pip = |name: &str| {
        name.strip_prefix("pip").is_some_and(|rest| {
            !rest.is_empty()
                && rest.split('.').count() <= 2
                && rest
                    .split('.')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let is_versioned_easy_install = |name: &str| {
        name.strip_prefix("easy_install-").is_some_and(|rest| {
            let parts: Vec<&str> = rest.split('.').collect();
            parts.len() == 2
                && parts
                    .iter()
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let has_pip = scripts
        .iter()
        .any(|script| !script.gui && script.name == "pip");
    let has_easy_install = scripts
        .iter()
        .any(|script| !script.gui && script.name == "easy_install");
    let mut out = Vec::new();
    for script in scripts {
        if !script.gui && has_pip && is_versioned_pip(&script.name) {
            continue;
        }
        if !script.gui && has_easy_install && is_versioned_easy_install(&script.name) {
            continue;
        }
        if !script.gui && script.name == "pip" {
            for name in [format!("pip{major}"), format!("pip{major}.{minor}")] {
                out.push(EntryPoint {
                    name,
                    ..script.clone()
                });
            }
        }
        if !script.gui && script.name == "easy_install" {
            out.push(EntryPoint {
                name: format!("easy_install-{major}.{minor}"),
                ..script.clone()
            });
        }
        out.push(script);
    }
    out
}

/// pip's `is_entrypoint_wrapper`: `EP`, `EP.exe`, `EP-script.py` and `EP.pya` in
/// `.data/scripts` are setuptools' own wrappers for entry point `EP`, replaced by ours.
fn is_entry_point_wrapper(file: &str, script_names: &HashSet<&str>) -> bool {
    let lower = file.to_ascii_lowercase();
    let stem = if lower.ends_with(".exe") || lower.ends_with(".pya") {
        &file[..file.len() - 4]
    } else if lower.ends_with("-script.py") {
        &file[..file.len() - 10]
    } else {
        file
    };
    script_names.contains(stem)
}

/// A script may not replace the venv's interpreter links (uv's `ValidatedWheel` rule).
fn check_reserved_script(name: &str, (major, minor): (u32, u32)) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    let stem = lower
        .strip_suffix(".exe")
        .or_else(|| lower.strip_suffix(".py"))
        .unwrap_or(&lower);
    let reserved = [
        "python".to_string(),
        "pythonw".to_string(),
        format!("python{major}"),
        format!("python{major}.{minor}"),
        format!("python{major}.{minor}t"),
        "pypy".to_string(),
        "pypy2".to_string(),
        "pypy3".to_string(),
        "graalpy".to_string(),
    ];
    if reserved.iter().any(|name| name == stem) {
        return Err(format!(
            "the script {name:?} would replace the venv's interpreter"
        ));
    }
    Ok(())
}

enum CopyError {
    Read(std::io::Error),
    Write(WheelError),
}

/// Writes files under a root, creating each parent directory once (per writer; one writer per
/// thread).
pub struct TreeWriter<'a> {
    root: &'a Path,
    created: HashSet<String>,
    buffer: Vec<u8>,
}

impl<'a> TreeWriter<'a> {
    pub fn new(root: &'a Path) -> Self {
        TreeWriter {
            root,
            created: HashSet::new(),
            buffer: vec![0; 128 * 1024],
        }
    }

    fn open(&mut self, destination: &str, mode: u32) -> Result<(fs::File, PathBuf), WheelError> {
        let path = self.root.join(destination);
        if let Some((parent, _)) = destination.rsplit_once('/') {
            if !self.created.contains(parent) {
                create_dirs_below(self.root, parent).map_err(|source| WheelError::Io {
                    path: self.root.join(parent),
                    source,
                })?;
                self.created.insert(parent.to_string());
            }
        }
        // A file another wheel already wrote is replaced, as pip does.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .map_err(|source| WheelError::Io {
                path: path.clone(),
                source,
            })?;
        Ok((file, path))
    }

    /// Writes `content` to `destination` (relative to the root), creating its directories.
    pub fn write_all(
        &mut self,
        destination: &str,
        content: &[u8],
        mode: u32,
    ) -> Result<(), WheelError> {
        let (mut file, path) = self.open(destination, mode)?;
        file.write_all(content)
            .map_err(|source| WheelError::Io { path, source })
    }

    /// Streams `reader` into the file, returning its RECORD hash and size.
    fn copy(
        &mut self,
        destination: &str,
        mut reader: impl Read,
        mode: u32,
        mtime: Option<std::time::SystemTime>,
    ) -> Result<([u8; 32], u64), CopyError> {
        let (mut file, path) = self.open(destination, mode).map_err(CopyError::Write)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buffer = std::mem::take(&mut self.buffer);
        let result = loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break Ok(()),
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => break Err(CopyError::Read(error)),
            };
            hasher.update(&buffer[..read]);
            size += read as u64;
            if let Err(source) = file.write_all(&buffer[..read]) {
                break Err(CopyError::Write(WheelError::Io {
                    path: path.clone(),
                    source,
                }));
            }
        };
        self.buffer = buffer;
        result?;
        if let Some(mtime) = mtime {
            file.set_modified(mtime).map_err(|source| {
                CopyError::Write(WheelError::Io {
                    path: path.clone(),
                    source,
                })
            })?;
        }
        Ok((hasher.finalize().into(), size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str) -> EntryPoint {
        EntryPoint {
            name: name.into(),
            module: "m".into(),
            attribute: "f".into(),
            gui: false,
        }
    }

    #[test]
    fn pip_launchers_follow_the_interpreter() {
        let scripts = vec![ep("pip"), ep("pip3"), ep("pip3.9"), ep("pipx-tool")];
        let names: Vec<String> = versioned_scripts(scripts, (3, 11))
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, vec!["pip3", "pip3.11", "pip", "pipx-tool"]);
        let names: Vec<String> =
            versioned_scripts(vec![ep("easy_install"), ep("easy_install-3.6")], (3, 8))
                .into_iter()
                .map(|s| s.name)
                .collect();
        assert_eq!(names, vec!["easy_install-3.8", "easy_install"]);
    }

    #[test]
    fn reserved_scripts() {
        for name in [
            "python",
            "Python3",
            "python3.11",
            "python3.11t.exe",
            "pythonw.py",
            "pypy3",
        ] {
            assert!(check_reserved_script(name, (3, 11)).is_err(), "{name}");
        }
        for name in ["python-config", "python3.12", "pip", "ipython"] {
            assert!(check_reserved_script(name, (3, 11)).is_ok(), "{name}");
        }
    }

    #[test]
    fn entry_point_wrappers() {
        let names: HashSet<&str> = ["tool"].into_iter().collect();
        for (file, expected) in [
            ("tool", true),
            ("tool.exe", true),
            ("tool-script.py", true),
            ("tool.pya", true),
            ("tool2", false),
            ("tool.py", false),
        ] {
            assert_eq!(is_entry_point_wrapper(file, &names), expected, "{file}");
        }
    }
}
