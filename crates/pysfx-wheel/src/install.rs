//! Installing one wheel into a virtualenv tree (PEP 427 "Installing a wheel"), as pip does:
//! the root to purelib or platlib by `Root-Is-Purelib`, each `.data/<key>/` to its scheme
//! directory, `#!python` rewritten, launchers for the entry points, and a RECORD that lists the
//! installed paths. Every member is checked (name, size, CRC, RECORD hash) as it is written,
//! and every write goes through [`TreeWriter`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek};
use std::path::PathBuf;
use std::str::FromStr;

use pep440_rs::Version;
use tracing::{debug, trace};
use zip::ZipArchive;

use crate::record::{format_hash, hash_digest};
use crate::tree::{Copied, CopyError, CopyOptions, Disposition, ReadHash, TreeWriter};
use crate::{
    dist_info_name, hash_bytes, launcher_script, normalize_name, relative_path,
    validate_member_name, EntryPoint, EntryPoints, Headers, Record, RecordEntry, WheelError,
    WheelFilename,
};

/// The largest metadata file (`METADATA`, `RECORD`, …) read into memory.
const MAX_METADATA_BYTES: u64 = 64 * 1024 * 1024;
/// How much of a `.data/scripts` file is read to find its `#!python` line; the rest streams.
const SHEBANG_PEEK: u64 = 64 * 1024;

/// The module that loads `environment.json` (`loadenv.py`) and the `.pth` file that imports
/// it: pysfx's hooks in site-packages, which no wheel may replace or shadow.
pub const HOOK_MODULE: &str = "loadenv";
pub const HOOK_PTH: &str = "loadenv-init.pth";

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
    /// The app, whose `<app>.pth` hook lives in site-packages; `None` when unknown (a wheel
    /// checked on its own).
    pub app_name: Option<String>,
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
    disposition: Disposition,
}

/// What RECORD says of a member.
#[derive(Debug, Clone)]
struct Expected {
    /// `algorithm=digest`, or empty.
    hash: String,
    size: Option<u64>,
}

/// An entry-point launcher to write into `bin/`.
#[derive(Debug, Clone)]
struct Launcher {
    destination: String,
    text: String,
    disposition: Disposition,
}

/// Which file of a prepared wheel: a member (by its number, as [`extract_member`] takes it)
/// or a generated launcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Member(usize),
    Launcher(usize),
}

/// A file a prepared wheel will put in the tree: where, and a fingerprint of its content
/// (RECORD's hash and size for a member, the text's hash for a launcher) by which two wheels
/// shipping one path are told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination<'a> {
    pub slot: Slot,
    pub path: &'a str,
    pub fingerprint: String,
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
/// It is the install itself with every file discarded, so an artifact that verifies also
/// installs. `app_name`, when known, protects the app's `.pth` hook too.
pub fn verify_wheel<R: Read + Seek>(
    reader: R,
    filename: &WheelFilename,
    app_name: Option<&str>,
) -> Result<PreparedWheel, WheelError> {
    let mut archive = ZipArchive::new(reader).map_err(|source| WheelError::Zip {
        wheel: filename.to_string(),
        source,
    })?;
    let layout = Layout {
        root: PathBuf::from("/nonexistent"),
        site_packages: "lib/python3/site-packages".into(),
        python_version: (3, 0),
        shebang_python: "/nonexistent/bin/python".into(),
        installer: "pysfx".into(),
        app_name: app_name.map(str::to_string),
    };
    let mut prepared = prepare_wheel(&mut archive, filename, &layout)?;
    prepared.discard_all();
    let mut writer = TreeWriter::new(&layout.root);
    for member in 0..prepared.members() {
        extract_member(&mut archive, &prepared, member, &layout, &mut writer)?;
    }
    Ok(prepared)
}

/// A wheel checked and planned: every member's destination decided, nothing written yet.
#[derive(Debug, Clone)]
pub struct PreparedWheel {
    wheel: String,
    name: String,
    version: String,
    dist_info: String,
    planned: Vec<Planned>,
    launchers: Vec<Launcher>,
    source_mtime: Option<std::time::SystemTime>,
    /// Sum of the members' declared sizes.
    unpacked_bytes: u64,
    /// `Requires-Dist` of METADATA, as written.
    requires_dist: Vec<String>,
    /// `Requires-Python` of METADATA, as written.
    requires_python: Option<String>,
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

    /// The wheel's file name.
    pub fn wheel(&self) -> &str {
        &self.wheel
    }

    /// `Requires-Dist` of its METADATA, in order, as written: what the manifest must record for
    /// the install's completeness check.
    pub fn requires_dist(&self) -> &[String] {
        &self.requires_dist
    }

    /// The distribution's version as METADATA writes it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `Requires-Python` of its METADATA, as written.
    pub fn requires_python(&self) -> Option<&str> {
        self.requires_python.as_deref()
    }

    /// What the wheel unpacks to, by its zip directory's declared sizes.
    pub fn unpacked_bytes(&self) -> u64 {
        self.unpacked_bytes
    }

    /// Every file the wheel puts in the tree (members and launchers; not its `.dist-info`
    /// bookkeeping, which no other wheel shares).
    pub fn destinations(&self) -> Vec<Destination<'_>> {
        let members = self.planned.iter().enumerate().map(|(index, plan)| {
            let fingerprint = match &plan.expected {
                Some(expected) => format!("{} {}", expected.hash, plan.size),
                None => format!("unrecorded {}", plan.size),
            };
            Destination {
                slot: Slot::Member(index),
                path: plan.destination.as_str(),
                fingerprint,
            }
        });
        let launchers = self
            .launchers
            .iter()
            .enumerate()
            .map(|(index, launcher)| Destination {
                slot: Slot::Launcher(index),
                path: launcher.destination.as_str(),
                fingerprint: format!(
                    "{} {}",
                    hash_bytes(launcher.text.as_bytes()),
                    launcher.text.len()
                ),
            });
        members.chain(launchers).collect()
    }

    /// Sets how one file is put in place (see [`Disposition`]).
    pub fn set_disposition(&mut self, slot: Slot, disposition: Disposition) {
        let target = match slot {
            Slot::Member(index) => self.planned.get_mut(index).map(|p| &mut p.disposition),
            Slot::Launcher(index) => self.launchers.get_mut(index).map(|l| &mut l.disposition),
        };
        if let Some(target) = target {
            *target = disposition;
        }
    }

    /// The members not written as new files (shared paths), by destination: what byte-code
    /// compiled for one of them must follow.
    pub fn exceptions(&self) -> HashMap<&str, Disposition> {
        self.planned
            .iter()
            .filter(|plan| plan.disposition != Disposition::Create)
            .map(|plan| (plan.destination.as_str(), plan.disposition))
            .collect()
    }

    /// Reads and checks every file, writes none.
    fn discard_all(&mut self) {
        for plan in &mut self.planned {
            plan.disposition = Disposition::Discard;
        }
        for launcher in &mut self.launchers {
            launcher.disposition = Disposition::Discard;
        }
    }
}

/// What writing one member produced: the SHA-256 and size of the bytes written. Kept small,
/// since one is held for every member of every wheel in a batch.
#[derive(Debug, Clone)]
pub struct MemberOutcome {
    digest: [u8; 32],
    size: u64,
}

/// One file of the wheel's zip directory.
struct ZipFile {
    index: usize,
    name: String,
    executable: bool,
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
    let mut files: Vec<ZipFile> = Vec::new();
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
        // No ratio heuristic: a member never inflates past its declared size (the reader stops
        // one byte after it), and the caller bounds the declared total (the manifest's size
        // and the free space), so a file of zeros is data, not a bomb.
        let size = entry.size();
        total = total.saturating_add(size);
        let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        files.push(ZipFile {
            index,
            name,
            executable,
            size,
        });
    }

    // 2. The .dist-info directory and its metadata.
    let dist_infos: BTreeMap<&str, ()> = files
        .iter()
        .filter_map(|file| file.name.split_once('/').map(|(top, _)| top))
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
        .map(|file| (file.name.as_str(), file.index))
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
    let requires_dist: Vec<String> = metadata
        .get_all("Requires-Dist")
        .map(str::to_string)
        .collect();

    let wheel_headers = Headers::parse(&wheel_text);
    let wheel_version = wheel_headers
        .get("Wheel-Version")
        .ok_or_else(|| invalid("WHEEL has no Wheel-Version".into()))?;
    if wheel_version.split('.').next() != Some("1") {
        return Err(invalid(format!(
            "Wheel-Version {wheel_version} is not supported (only 1.x)"
        )));
    }
    // The filename's tags are what the installer chose the wheel by: each must be one the
    // wheel's own WHEEL file states (when it states any), so a renamed wheel is not installed
    // where it does not run.
    let stated: HashSet<&str> = wheel_headers.get_all("Tag").collect();
    if !stated.is_empty() {
        for (python, abi, platform) in filename.tags() {
            let tag = format!("{python}-{abi}-{platform}");
            if !stated.contains(tag.as_str()) {
                return Err(invalid(format!(
                    "the filename's tag {tag} is not among the tags its WHEEL file states"
                )));
            }
        }
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
    let mut destinations = HashSet::with_capacity(files.len());
    for file in &files {
        let member = &file.name;
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
        let unsafe_member = |reason: String| WheelError::UnsafeMember {
            wheel: wheel.clone(),
            member: member.clone(),
            reason,
        };
        check_venv_owned(&destination, layout, &dist_info).map_err(unsafe_member)?;
        if !destinations.insert(destination.clone()) {
            return Err(unsafe_member(format!(
                "another member of the wheel also installs to {destination}"
            )));
        }
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
        // PEP 427: every file but RECORD (and its signatures) has a hash in RECORD.
        if expected
            .as_ref()
            .is_some_and(|expected| expected.hash.is_empty())
        {
            return Err(WheelError::RecordMismatch {
                wheel: wheel.clone(),
                member: member.clone(),
                reason: "RECORD gives it no hash".into(),
            });
        }
        planned.push(Planned {
            index: file.index,
            member: member.clone(),
            destination,
            executable: file.executable || script,
            script,
            size: file.size,
            expected,
            disposition: Disposition::Create,
        });
    }
    let mut launchers = Vec::with_capacity(scripts_to_generate.len());
    for script in &scripts_to_generate {
        if script.name.len() > 255 {
            return Err(invalid(format!(
                "entry point name of {} bytes is longer than a file name may be",
                script.name.len()
            )));
        }
        let destination = format!("bin/{}", script.name);
        check_venv_owned(&destination, layout, &dist_info).map_err(|reason| {
            WheelError::Invalid {
                wheel: wheel.clone(),
                reason: format!("entry point {:?}: {reason}", script.name),
            }
        })?;
        if !destinations.insert(destination.clone()) {
            return Err(WheelError::Invalid {
                wheel: wheel.clone(),
                reason: format!(
                    "entry point {:?}: another file of the wheel also installs to {destination}",
                    script.name
                ),
            });
        }
        launchers.push(Launcher {
            destination,
            text: launcher_script(&layout.shebang_python, &script.module, &script.attribute),
            disposition: Disposition::Create,
        });
    }

    Ok(PreparedWheel {
        wheel,
        name,
        version,
        dist_info,
        planned,
        launchers,
        source_mtime: None,
        unpacked_bytes: total,
        requires_dist,
        requires_python: metadata.get("Requires-Python").map(str::to_string),
    })
}

/// Writes member number `member` of a prepared wheel, checking its size, CRC and RECORD hash.
/// A `.data/scripts` file streams like any other: only its first line is looked at, for the
/// `#!python` that PEP 427 says to rewrite.
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
    let is_source = plan.destination.ends_with(".py") && plan.destination.starts_with(site);
    // Never more than one byte past the declared size: a lying zip header cannot make a member
    // inflate without bound.
    let mut reader = entry.take(declared + 1);
    let mut first = Vec::new();
    let mut rewrite: Option<(usize, Vec<u8>)> = None;
    if plan.script {
        (&mut reader)
            .take(SHEBANG_PEEK)
            .read_to_end(&mut first)
            .map_err(|error| mismatch(format!("unreadable: {error}")))?;
        let complete = (first.len() as u64) < SHEBANG_PEEK;
        if let Some(end) = crate::python_shebang_end(&first, complete) {
            let mut line = crate::format_shebang(&layout.shebang_python).into_bytes();
            line.push(b'\n');
            rewrite = Some((end, line));
        }
    }
    let head = rewrite.as_ref().map(|(end, line)| (*end, line.as_slice()));
    // The bytes as read need a digest of their own when RECORD uses another algorithm than
    // the SHA-256 of the bytes written, or when the first line is rewritten.
    let algorithm = expected.and_then(|expected| expected.hash.split('=').next());
    let read_hash = match algorithm {
        #[cfg(feature = "strong-record-hashes")]
        Some("sha384") => Some(ReadHash::Sha384),
        #[cfg(feature = "strong-record-hashes")]
        Some("sha512") => Some(ReadHash::Sha512),
        Some("sha256") if head.is_some() => Some(ReadHash::Sha256),
        _ => None,
    };
    let options = CopyOptions {
        mode,
        disposition: plan.disposition,
        mtime: prepared.source_mtime.filter(|_| is_source),
        head,
        read_hash,
    };
    let copied = writer
        .copy(
            &plan.destination,
            &mut first.as_slice().chain(reader),
            options,
        )
        .map_err(|error| match error {
            CopyError::Read(error) => mismatch(format!("unreadable: {error}")),
            CopyError::Write(error) => error,
        })?;
    check_member(expected, &copied, declared).map_err(mismatch)?;
    // `-vv`: one line per member. tracing checks the level first, so this costs nothing
    // when it is off.
    trace!(
        "{}: {} -> {} ({} bytes{})",
        wheel,
        plan.member,
        plan.destination,
        copied.size,
        match plan.disposition {
            Disposition::Discard => ", not written: a later wheel's copy wins",
            Disposition::Replace => ", replacing an earlier wheel's copy",
            Disposition::Create => "",
        }
    );
    Ok(MemberOutcome {
        digest: copied.sha256,
        size: copied.size,
    })
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
    let mut rows = Vec::with_capacity(outcomes.len() + prepared.launchers.len() + 3);
    let mut python_files = Vec::new();
    let mut bytes_written = 0u64;
    for (plan, outcome) in prepared.planned.iter().zip(outcomes) {
        bytes_written += outcome.size;
        rows.push(RecordEntry {
            path: relative_path(site, &plan.destination),
            hash: hash_digest(&outcome.digest),
            size: Some(outcome.size),
        });
        if plan.disposition != Disposition::Discard
            && plan.destination.ends_with(".py")
            && plan.destination.starts_with(site)
        {
            python_files.push(plan.destination.clone());
        }
    }
    // Launchers, INSTALLER, REQUESTED, RECORD.
    for launcher in &prepared.launchers {
        trace!(
            "{}: entry point -> {}",
            prepared.wheel,
            launcher.destination
        );
        writer.write_all(
            &launcher.destination,
            launcher.text.as_bytes(),
            0o755,
            launcher.disposition,
        )?;
        rows.push(RecordEntry {
            path: relative_path(site, &launcher.destination),
            hash: hash_bytes(launcher.text.as_bytes()),
            size: Some(launcher.text.len() as u64),
        });
    }
    for (file, content) in [
        ("INSTALLER", format!("{}\n", layout.installer)),
        ("REQUESTED", String::new()),
    ] {
        let destination = format!("{site}/{dist_info}/{file}");
        writer.write_all(&destination, content.as_bytes(), 0o644, Disposition::Create)?;
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
        Disposition::Create,
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

/// Compares a member as read with its zip header and its RECORD row (whose hash describes the
/// bytes as shipped, before any `#!python` rewriting).
fn check_member(expected: Option<&Expected>, copied: &Copied, declared: u64) -> Result<(), String> {
    if copied.read_size != declared {
        return Err(format!(
            "{} bytes where the zip header declares {declared}",
            copied.read_size
        ));
    }
    let Some(expected) = expected else {
        return Ok(());
    };
    if let Some(recorded_size) = expected.size {
        if recorded_size != copied.read_size {
            return Err(format!(
                "{} bytes where RECORD says {recorded_size}",
                copied.read_size
            ));
        }
    }
    if expected.hash.is_empty() {
        return Ok(());
    }
    let algorithm = expected.hash.split('=').next().unwrap_or_default();
    let digest: &[u8] = match (&copied.read_digest, algorithm) {
        (Some(digest), _) => digest,
        (None, "sha256") => &copied.sha256,
        // Built without them (the stub), the rarer hashes PEP 427 allows are accepted unchecked:
        // pysfx pack and pysfx verify check them, and the manifest's SHA-256 of the whole wheel,
        // checked before its members are read, covers these bytes at install.
        (None, "sha384" | "sha512") if !cfg!(feature = "strong-record-hashes") => return Ok(()),
        _ => {
            return Err(format!(
                "RECORD uses an unsupported hash {algorithm:?} (sha256, sha384 and sha512 are)"
            ))
        }
    };
    let actual = format_hash(algorithm, digest);
    if expected.hash != actual {
        return Err(format!("hash {actual} where RECORD says {}", expected.hash));
    }
    Ok(())
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

/// The venv's own files, which no wheel may replace (SPEC, "Contained"): `pyvenv.cfg`, the
/// interpreter links in `bin/` (any `python`, `python3`, `python3.N`, `python3.Nt`, not only
/// this interpreter's, so the check does not depend on which Python installs), the activate
/// scripts, anything under the `lib64` link, and pysfx's hooks in site-packages: `loadenv.py`
/// (nor a `loadenv` package or extension, which `import loadenv` would pick first),
/// `loadenv-init.pth` and the app's `<app>.pth`.
///
/// `layout` names the app; the site-packages directory is recognised by its shape.
fn check_venv_owned(destination: &str, layout: &Layout, dist_info: &str) -> Result<(), String> {
    let taken = |what: &str| {
        Err(format!(
            "it would replace the venv's {what} ({destination})"
        ))
    };
    if destination == "pyvenv.cfg" {
        return taken("configuration");
    }
    if destination == "lib64" || destination.starts_with("lib64/") {
        return taken("lib64 link");
    }
    if let Some(name) = destination.strip_prefix("bin/") {
        if is_interpreter_name(name) {
            return taken("interpreter");
        }
        if matches!(
            name,
            "activate" | "activate.csh" | "activate.fish" | "Activate.ps1"
        ) {
            return taken("activate script");
        }
    }
    // Any `lib/pythonX.Y[t]/site-packages`, not only this interpreter's: `verify` checks a
    // wheel without knowing which Python will install it.
    let mut parts = destination.splitn(4, '/');
    let in_site_packages = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("lib"), Some(version), Some("site-packages"), Some(path))
            if version.starts_with("python") =>
        {
            Some(path)
        }
        _ => None,
    };
    if let Some(path) = in_site_packages {
        let mut components = path.split('/');
        let top = components.next().unwrap_or_default();
        let module = top.split('.').next().unwrap_or_default();
        let app_pth = layout.app_name.as_ref().map(|app| format!("{app}.pth"));
        if module == HOOK_MODULE || top == HOOK_PTH || app_pth.as_deref() == Some(top) {
            return taken("pysfx hook");
        }
        // Byte-code of the hook module (`__pycache__/loadenv.cpython-311.pyc`, which an
        // unchecked-hash .pyc lets Python load without its source).
        if top == "__pycache__"
            && components.next().and_then(|file| file.split('.').next()) == Some(HOOK_MODULE)
        {
            return taken("pysfx hook");
        }
        // Another distribution's metadata: `pip check` and `importlib.metadata` read it.
        let metadata = top.ends_with(".dist-info") || top.ends_with(".egg-info");
        if metadata && top != dist_info {
            return Err(format!(
                "it would write another distribution's metadata ({destination})"
            ));
        }
    }
    Ok(())
}

/// `python`, `pythonw`, `python3`, `python3.11`, `python3.13t` (also with `.exe` or `.py`), and
/// the other implementations' launchers uv refuses in `.data/scripts`.
fn is_interpreter_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let stem = lower
        .strip_suffix(".exe")
        .or_else(|| lower.strip_suffix(".py"))
        .unwrap_or(&lower);
    if matches!(stem, "pythonw" | "pypy" | "pypy2" | "pypy3" | "graalpy") {
        return true;
    }
    let Some(version) = stem.strip_prefix("python") else {
        return false;
    };
    let version = version.strip_suffix('t').unwrap_or(version);
    version.is_empty()
        || version
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            && version.split('.').count() <= 2
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
    fn venv_owned_paths() {
        let layout = Layout {
            root: PathBuf::from("/r"),
            site_packages: "lib/python3.11/site-packages".into(),
            python_version: (3, 11),
            shebang_python: "/r/bin/python".into(),
            installer: "pysfx".into(),
            app_name: Some("mysite".into()),
        };
        for destination in [
            "bin/python",
            "bin/Python3",
            "bin/python3.11",
            "bin/python3.6",
            "bin/python3.13t",
            "bin/pythonw.exe",
            "bin/pypy3",
            "bin/activate",
            "bin/activate.fish",
            "pyvenv.cfg",
            "lib64",
            "lib64/python3.11/site-packages/x.py",
            "lib/python3.11/site-packages/loadenv.py",
            "lib/python3.11/site-packages/loadenv/__init__.py",
            "lib/python3.11/site-packages/loadenv.cpython-311-x86_64-linux-gnu.so",
            "lib/python3.11/site-packages/loadenv-init.pth",
            "lib/python3.11/site-packages/mysite.pth",
            "lib/python3.11/site-packages/__pycache__/loadenv.cpython-311.pyc",
            "lib/python3.11/site-packages/other-1.0.dist-info/METADATA",
            "lib/python3.11/site-packages/zzz-1.0.egg-info/PKG-INFO",
            "lib/python3.11/site-packages/zzz.egg-info",
        ] {
            assert!(
                check_venv_owned(destination, &layout, "x-1.0.dist-info").is_err(),
                "{destination}"
            );
        }
        for destination in [
            "bin/python-config",
            "bin/pip",
            "bin/ipython",
            "bin/python3.x",
            "bin/activate-global",
            "lib/python3.11/site-packages/loadenvx.py",
            "lib/python3.11/site-packages/other.pth",
            "lib/python3.11/site-packages/pkg/loadenv.py",
            "share/lib64/x",
            "include/site/python3.11/x/pyvenv.cfg",
            "lib/python3.11/site-packages/x-1.0.dist-info/LICENSE",
            "lib/python3.11/site-packages/__pycache__/loadenvx.cpython-311.pyc",
            "lib/python3.11/site-packages/pkg/__pycache__/loadenv.cpython-311.pyc",
        ] {
            assert!(
                check_venv_owned(destination, &layout, "x-1.0.dist-info").is_ok(),
                "{destination}"
            );
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
