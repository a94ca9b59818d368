//! [`prepare_wheel`]: everything about a wheel that can be checked before writing — member
//! names and kinds, sizes, the `.dist-info` metadata, RECORD, entry points, destinations.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::Version;
use pysfx_format::{scan_members_named, Member, MemberKind, MemberName, ReadAt, ScanError};
use pysfx_tree::Disposition;
use pysfx_wheel::{
    dist_info_name, launcher_script, normalize_name, EntryPoint, EntryPoints, Headers, Record,
    WheelError, WheelFilename,
};
use sha2::Digest;
use zip::ZipArchive;

use super::owned::check_venv_owned;
use super::scheme::{destination, is_versioned_directory, model_alias, Placement, Scheme};
use super::{Expected, Launcher, Layout, LinkSource, Planned, PreparedWheel, MAX_METADATA_BYTES};
use crate::member::open_member;
use crate::{InstallError, SparedWheel};

/// What a wheel's `.dist-info` says: its name, version, requirements, RECORD rows by path and
/// entry points.
struct DistInfo {
    directory: String,
    name: String,
    version: String,
    requires_dist: Vec<String>,
    requires_python: Option<String>,
    /// RECORD's rows by path (where a path is listed twice, the last row counts).
    record: HashMap<String, Expected>,
    /// Hex SHA-256 of RECORD as shipped.
    record_sha256: String,
    scripts: Vec<EntryPoint>,
}

/// Reads and checks everything about the wheel that can be checked before writing.
pub fn prepare_wheel<R: Read + Seek + Clone + ReadAt>(
    archive: &mut ZipArchive<R>,
    filename: &WheelFilename,
    layout: &Layout,
) -> Result<PreparedWheel, InstallError> {
    prepare(archive, filename, layout, None, None)
}

/// [`prepare_wheel`], and for a wheel the payload check left unread (`spared`): RECORD must
/// have the manifest's digest, and each other file read here the hash its RECORD row gives
/// (or, with none, the whole wheel is hashed first).
pub(crate) fn prepare_spared<R: Read + Seek + Clone + ReadAt>(
    archive: &mut ZipArchive<R>,
    filename: &WheelFilename,
    layout: &Layout,
    spared: Option<&SparedWheel>,
) -> Result<PreparedWheel, InstallError> {
    prepare(archive, filename, layout, None, spared)
}

/// Prepares a wheel a thin artifact left out, from its husk (`.data/scripts/` and the like, and
/// RECORD's skeleton) and the release `base` that installed the very same wheel: RECORD's
/// blanked hashes are filled in from the release's RECORD and the result must have the
/// manifest's `record_sha256`; every other file RECORD lists is planned as a member that is not
/// in the payload, to be linked or copied from the release and checked against its row.
/// METADATA, WHEEL and `entry_points.txt` are read from the release, checked the same way.
/// `executables` (the manifest's) are the left-out members the wheel marks executable: each
/// file taken from the release must have that executable bit, or is copied with it. `None`
/// (a thin artifact packed before they were recorded): the file's own bit is kept.
pub fn prepare_husk<R: Read + Seek + Clone + ReadAt>(
    archive: &mut ZipArchive<R>,
    filename: &WheelFilename,
    layout: &Layout,
    base: &LinkSource,
    record_sha256: &str,
    executables: Option<&[String]>,
) -> Result<PreparedWheel, InstallError> {
    let mut prepared = prepare(archive, filename, layout, Some((base, record_sha256)), None)?;
    if let Some(executables) = executables {
        for plan in prepared.planned.iter_mut().filter(|p| p.index.is_none()) {
            plan.executable = executables.iter().any(|name| *name == *plan.member);
        }
        prepared.left_out_modes = true;
    }
    Ok(prepared)
}

fn prepare<R: Read + Seek + Clone + ReadAt>(
    archive: &mut ZipArchive<R>,
    filename: &WheelFilename,
    layout: &Layout,
    husk: Option<(&LinkSource, &str)>,
    spared: Option<&SparedWheel>,
) -> Result<PreparedWheel, InstallError> {
    let wheel = filename.to_string();
    let files = scan(archive, &wheel)?;
    if husk.is_some() {
        let names: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
        check_husk_members(&wheel, &names)?;
    }
    // Every member's declared size, RECORD and skipped wrappers included.
    let unpacked = files
        .iter()
        .map(|file| file.size)
        .fold(0u64, u64::saturating_add);
    let mut info = read_dist_info(archive, &files, filename, layout, husk, spared)?;
    let scripts = versioned_scripts(std::mem::take(&mut info.scripts), layout.python_version);
    // Headers go under the name pip gives them: the wheel file's, `_` read as `-`.
    let mut scheme = Scheme::new(
        layout,
        &filename.raw_name.replace('_', "-"),
        &info.directory,
    );
    scheme.script_names = scripts.iter().map(|script| script.name.clone()).collect();
    let mut destinations = HashSet::with_capacity(files.len() + scripts.len());
    let mut planned = plan_members(&wheel, files, &mut info, &scheme, layout, &mut destinations)?;
    let mut unpacked = unpacked;
    if husk.is_some() {
        let left_out = plan_left_out(&wheel, &mut info, &scheme, layout, &mut destinations)?;
        unpacked = left_out
            .iter()
            .map(|plan| plan.size)
            .fold(unpacked, u64::saturating_add);
        planned.extend(left_out);
    } else {
        refuse_ghost_rows(&wheel, &info, &scheme)?;
    }
    refuse_foreign_bytecode(&wheel, &planned, &destinations)?;
    // The wheel's own byte-code is not installed: a `.pyc` shipped beside its source runs in
    // its place whenever its header matches the source (as the fixed mtime of sources whose
    // byte-code was compiled at pack time lets it), whatever the source says. pip's install
    // compiles over it; the release's byte-code is compiled from the sources it installs (at
    // pack time, or at install), or there is none (`--no-compile`).
    planned.retain(|plan| cached_source(&plan.destination).is_none());
    let launchers = plan_launchers(&wheel, &scripts, &info, layout, &mut destinations)?;
    let unpacked_bytes = unpacked;
    Ok(PreparedWheel {
        wheel,
        name: info.name,
        version: info.version,
        dist_info: info.directory,
        planned,
        launchers,
        source_mtime: None,
        unpacked_bytes,
        requires_dist: info.requires_dist,
        requires_python: info.requires_python,
        record_sha256: info.record_sha256,
        left_out_modes: false,
    })
}

/// The wheel's files (directories dropped), every name, kind and size checked by the one member
/// scan; a wheel may not hold symbolic links.
fn scan<R: Read + Seek + Clone>(
    archive: &mut ZipArchive<R>,
    wheel: &str,
) -> Result<Vec<Member>, WheelError> {
    let unsafe_member = |member: String, reason: &str| WheelError::UnsafeMember {
        wheel: wheel.to_string(),
        member,
        reason: reason.to_string(),
    };
    let members = scan_members_named(archive).map_err(|error| match error {
        ScanError::Zip(source) => WheelError::Zip {
            wheel: wheel.to_string(),
            source,
        },
        ScanError::Unsafe { member, reason } => unsafe_member(member, reason),
    })?;
    let mut files = Vec::with_capacity(members.len());
    for member in members {
        match member.kind {
            MemberKind::Symlink => {
                return Err(unsafe_member(member.name.into_string(), "symbolic link"))
            }
            MemberKind::Directory => {}
            // No ratio heuristic: a member never inflates past its declared size (the reader
            // stops one byte after it), and the caller bounds the declared total (the
            // manifest's size and the free space), so a file of zeros is data, not a bomb.
            MemberKind::File { .. } => files.push(member),
        }
    }
    Ok(files)
}

/// Finds the one `.dist-info` directory and reads METADATA, WHEEL, RECORD and entry points
/// (for a husk, RECORD filled in and those files read from the base release).
fn read_dist_info<R: Read + Seek + Clone + ReadAt>(
    archive: &mut ZipArchive<R>,
    files: &[Member],
    filename: &WheelFilename,
    layout: &Layout,
    husk: Option<(&LinkSource, &str)>,
    spared: Option<&SparedWheel>,
) -> Result<DistInfo, InstallError> {
    let wheel = filename.to_string();
    let invalid = |reason: String| WheelError::Invalid {
        wheel: wheel.clone(),
        reason,
    };
    let directories: BTreeSet<&str> = files
        .iter()
        .filter_map(|file| file.name.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    let directory = match directories.into_iter().collect::<Vec<_>>().as_slice() {
        [one] => one.to_string(),
        [] => return Err(invalid("no .dist-info directory".into()).into()),
        many => {
            return Err(invalid(format!(
                "more than one .dist-info directory: {}",
                many.join(", ")
            ))
            .into())
        }
    };
    let mut reader = MetadataReader {
        archive,
        wheel: &wheel,
        index_of: (files.iter())
            .map(|f| (f.name.as_str(), (f.index, f.end)))
            .collect(),
        base: None,
        spared: None,
    };
    let missing = |member: &str| WheelError::Invalid {
        wheel: wheel.clone(),
        reason: format!("{member} is missing"),
    };
    let record_name = format!("{directory}/RECORD");
    let mut record_text = reader
        .read(&record_name)?
        .ok_or_else(|| missing(&record_name))?;
    if let Some((base, expected)) = husk {
        record_text = fill_record(&wheel, &record_text, &directory, layout, base)?;
        if pysfx_format::hex(&sha2::Sha256::digest(record_text.as_bytes())) != expected {
            return Err(InstallError::BaseRelease(format!(
                "{wheel}: RECORD filled in from {} is not the wheel's",
                base.release.display()
            )));
        }
    }
    let record_sha256 = pysfx_format::hex(&sha2::Sha256::digest(record_text.as_bytes()));
    if spared.is_some_and(|spared| spared.record_sha256() != Some(record_sha256.as_str())) {
        return Err(InstallError::Corrupt(format!(
            "{wheel}: its RECORD differs from the one the manifest names"
        )));
    }
    // A wheel's RECORD lists each of its files once (some tools list one twice, alike): far
    // more rows than files is a crafted RECORD, refused before it costs memory. (A husk's
    // is filled in from the release, and held to the manifest's digest above.)
    let most_rows = match husk {
        None => files.len().saturating_mul(2).saturating_add(16),
        Some(_) => pysfx_wheel::MAX_RECORD_ROWS,
    };
    let record: HashMap<String, Expected> = Record::parse_at_most(&record_text, most_rows)
        .map_err(|reason| invalid(format!("{directory}/RECORD: {reason}")))?
        .entries
        .into_iter()
        .map(|entry| {
            let expected = Expected {
                hash: entry.hash,
                size: entry.size,
            };
            (entry.path, expected)
        })
        .collect();
    if let Some((base, _)) = husk {
        let site = base.venv.join(&layout.site_packages).join(&directory);
        reader.base = Some((site, &record, directory.as_str()));
    }
    reader.spared = spared.map(|spared| (spared, &record));
    let metadata_name = format!("{directory}/METADATA");
    let metadata = Headers::parse(
        &reader
            .read(&metadata_name)?
            .ok_or_else(|| missing(&metadata_name))?,
    );
    let wheel_name = format!("{directory}/WHEEL");
    let wheel_file = reader
        .read(&wheel_name)?
        .ok_or_else(|| missing(&wheel_name))?;
    check_wheel_file(&Headers::parse(&wheel_file), filename).map_err(&invalid)?;
    let entry_points = reader.read(&format!("{directory}/entry_points.txt"))?;

    let field = |name: &str| {
        metadata
            .get(name)
            .map(str::to_string)
            .ok_or_else(|| invalid(format!("METADATA has no {name}")))
    };
    let (name, version) = (field("Name")?, field("Version")?);
    check_name_and_version(filename, &directory, &name, &version).map_err(&invalid)?;
    let scripts = match &entry_points {
        Some(text) => {
            EntryPoints::parse(text)
                .map_err(|reason| invalid(format!("{directory}/entry_points.txt: {reason}")))?
                .scripts
        }
        None => Vec::new(),
    };
    Ok(DistInfo {
        requires_dist: metadata
            .get_all("Requires-Dist")
            .map(str::to_string)
            .collect(),
        requires_python: metadata.get("Requires-Python").map(str::to_string),
        directory,
        name,
        version,
        record,
        record_sha256,
        scripts,
    })
}

/// Reads the small metadata files of a wheel as text: from the zip, or (a husk's) from the
/// base release, checked against the wheel's RECORD.
struct MetadataReader<'a, R> {
    archive: &'a mut ZipArchive<R>,
    wheel: &'a str,
    /// Each member's number and end ([`pysfx_format::Member::end`]), by name.
    index_of: HashMap<&'a str, (usize, u64)>,
    /// The base release's `.dist-info` directory, RECORD's rows, and the directory's name.
    base: Option<(PathBuf, &'a HashMap<String, Expected>, &'a str)>,
    /// A wheel the payload check left unread, and RECORD's rows (held to the manifest) that
    /// what is read of it must match.
    spared: Option<(&'a SparedWheel, &'a HashMap<String, Expected>)>,
}

impl<R: Read + Seek + Clone + ReadAt> MetadataReader<'_, R> {
    /// The member as UTF-8 text (at most MAX_METADATA_BYTES), `None` when the wheel has none.
    fn read(&mut self, member: &str) -> Result<Option<String>, InstallError> {
        let invalid = |reason: String| WheelError::Invalid {
            wheel: self.wheel.to_string(),
            reason,
        };
        let bytes;
        match self.index_of.get(member) {
            Some(&(index, end)) => {
                let mut entry =
                    open_member(self.archive, index, end).map_err(|source| WheelError::Zip {
                        wheel: self.wheel.to_string(),
                        source,
                    })?;
                bytes = entry
                    .read_whole(MAX_METADATA_BYTES)
                    .map_err(|error| invalid(format!("{member}: {error}")))?;
                if let Some((spared, record)) = self.spared {
                    // A row in SHA-256 is checked here; any other (sha384, sha512, none) by
                    // the whole wheel.
                    match record.get(member) {
                        Some(expected) if expected.hash.starts_with("sha256=") => {
                            let size = bytes.len() as u64;
                            if pysfx_wheel::hash_bytes(&bytes) != expected.hash
                                || expected.size.is_some_and(|expected| expected != size)
                            {
                                return Err(InstallError::Corrupt(format!(
                                    "{}: {member} differs from its RECORD",
                                    self.wheel
                                )));
                            }
                        }
                        _ => spared.check()?,
                    }
                }
            }
            None => match &self.base {
                Some((site, record, directory)) => {
                    let Some(expected) = record.get(member) else {
                        return Ok(None);
                    };
                    let file = member
                        .strip_prefix(&format!("{directory}/"))
                        .unwrap_or(member);
                    bytes = read_checked(&site.join(file), expected).map_err(|reason| {
                        InstallError::BaseRelease(format!("{}: {member} {reason}", self.wheel))
                    })?;
                }
                None => return Ok(None),
            },
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| invalid(format!("{member} is not UTF-8")).into())
    }
}

/// A small file of the base release, not through a link, if it is what `expected` says.
fn read_checked(path: &Path, expected: &Expected) -> Result<Vec<u8>, String> {
    // One byte more than RECORD says shows a bigger file for what it is.
    let limit = expected.size.map_or(0, |size| size.saturating_add(1));
    let bytes = read_small(path, limit.min(MAX_METADATA_BYTES))?;
    let hash = pysfx_wheel::hash_bytes(&bytes);
    if Some(bytes.len() as u64) != expected.size || hash != expected.hash {
        return Err(format!(
            "in the base release ({}) differs from RECORD",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Reads at most `limit` bytes of a file, without following a link at its name.
fn read_small(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    // A regular file only, opened without waiting: a FIFO planted in the release is refused,
    // not waited on.
    let (file, _) = pysfx_release::paths::open_regular(path, u64::MAX)
        .map_err(|error| format!("cannot be read from {}: {error}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot be read from {}: {error}", path.display()))?;
    Ok(bytes)
}

/// The largest RECORD read from a base release.
pub const MAX_BASE_RECORD_BYTES: u64 = 16 << 20;

/// The largest RECORD skeleton a husk may carry: `pysfx pack --thin-from` carries whole a
/// wheel whose RECORD is longer, since the release's RECORD can be longer than the wheel's
/// (its headers' rows name their place in the venv) and must stay within
/// [`MAX_BASE_RECORD_BYTES`].
pub const MAX_HUSK_RECORD_BYTES: u64 = MAX_BASE_RECORD_BYTES / 2;

/// Refuses a husk's RECORD skeleton of `bytes` bytes when it is longer than
/// [`MAX_HUSK_RECORD_BYTES`] (verify and install say it alike).
pub(crate) fn check_husk_record_size(bytes: u64) -> Result<(), String> {
    match bytes > MAX_HUSK_RECORD_BYTES {
        true => Err(format!(
            "{bytes} bytes, longer than a husk's RECORD may be ({} MiB)",
            MAX_HUSK_RECORD_BYTES >> 20
        )),
        false => Ok(()),
    }
}

/// The husk's RECORD skeleton filled in from the base release's RECORD
/// (`pysfx_wheel::fill_hashes`): each blank row's member goes where the install puts it, and
/// that path's row in the release gives the hash; each run's rows are the release's own.
fn fill_record(
    wheel: &str,
    skeleton: &str,
    directory: &str,
    layout: &Layout,
    base: &LinkSource,
) -> Result<String, InstallError> {
    let path = base
        .venv
        .join(&layout.site_packages)
        .join(directory)
        .join("RECORD");
    // A malformed skeleton is the artifact's fault, whatever the release holds. (Its runs'
    // rows are held to the wheel's members where the manifest is held to the husk:
    // `check_claims`, before a missing base release is blamed.)
    let malformed = |reason: String| WheelError::Invalid {
        wheel: wheel.to_string(),
        reason: format!("{directory}/RECORD in its husk: {reason}"),
    };
    check_husk_record_size(skeleton.len() as u64).map_err(malformed)?;
    pysfx_wheel::named_rows(skeleton, u64::MAX).map_err(malformed)?;
    let failed = |reason: String| InstallError::BaseRelease(format!("{wheel}: RECORD {reason}"));
    // No wheel's RECORD comes near this (the largest of 300 popular wheels: 0.9 MB); a bigger
    // one planted there would cost many times its size once parsed.
    let bytes = read_small(&path, MAX_BASE_RECORD_BYTES + 1).map_err(&failed)?;
    if bytes.len() as u64 > MAX_BASE_RECORD_BYTES {
        return Err(failed(format!(
            "of {} is larger than {} MiB",
            path.display(),
            MAX_BASE_RECORD_BYTES >> 20
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| failed(format!("of {} is not UTF-8", path.display())))?;
    let rows = Record::parse(&text)
        .map_err(|reason| failed(format!("of {}: {reason}", path.display())))?
        .entries;
    let installed: HashMap<&str, &str> = rows
        .iter()
        .map(|row| (row.path.as_str(), row.hash.as_str()))
        .collect();
    // Only the rows of plain files are blank or in runs; headers, whose place needs
    // METADATA's name, and scripts are carried in the husk with their hashes.
    let scheme = Scheme::new(layout, "", directory);
    let site = layout.site_packages.as_str();
    Ok(pysfx_wheel::fill_hashes(
        skeleton,
        |member| match destination(member, &scheme) {
            Ok(Placement::File { destination, .. }) => installed
                .get(pysfx_wheel::relative_path(site, &destination).as_str())
                .map(|hash| hash.to_string()),
            _ => None,
        },
        &pysfx_wheel::site_rows(&rows, directory),
    ))
}

/// The WHEEL file: a 1.x Wheel-Version, a valid Root-Is-Purelib, and the filename's tags among
/// those it states.
fn check_wheel_file(headers: &Headers, filename: &WheelFilename) -> Result<(), String> {
    let wheel_version = headers
        .get("Wheel-Version")
        .ok_or("WHEEL has no Wheel-Version")?;
    if wheel_version.split('.').next() != Some("1") {
        return Err(format!(
            "Wheel-Version {wheel_version} is not supported (only 1.x)"
        ));
    }
    // The filename's tags are what the installer chose the wheel by: each must be one the
    // wheel's own WHEEL file states (when it states any), so a renamed wheel is not installed
    // where it does not run.
    // A Tag line may itself be a compressed tag set (maturin writes
    // `cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64`): each is expanded.
    let stated: HashSet<String> = headers.get_all("Tag").flat_map(expand_tag).collect();
    if !stated.is_empty() {
        for (python, abi, platform) in filename.tags() {
            let tag = format!("{python}-{abi}-{platform}");
            if !stated.contains(&tag) {
                return Err(format!(
                    "the filename's tag {tag} is not among the tags its WHEEL file states"
                ));
            }
        }
    }
    // In a venv purelib and platlib are the same directory, so Root-Is-Purelib only has to be
    // valid, not acted on.
    match headers.get("Root-Is-Purelib").map(str::to_ascii_lowercase) {
        Some(value) if value == "true" || value == "false" => Ok(()),
        other => Err(format!("WHEEL has an invalid Root-Is-Purelib: {other:?}")),
    }
}

/// `py3.py2-none-any` → `py3-none-any`, `py2-none-any`: every tag of a compressed tag set.
fn expand_tag(text: &str) -> Vec<String> {
    let parts: Vec<&str> = text.trim().splitn(3, '-').collect();
    let [python, abi, platform] = parts.as_slice() else {
        return vec![text.trim().to_string()];
    };
    let mut tags = Vec::new();
    for python in python.split('.') {
        for abi in abi.split('.') {
            for platform in platform.split('.') {
                tags.push(format!("{python}-{abi}-{platform}"));
            }
        }
    }
    tags
}

/// Each member's destination, checked against the venv's own files, the wheel's other
/// members and RECORD.
fn plan_members(
    wheel: &str,
    files: Vec<Member>,
    info: &mut DistInfo,
    scheme: &Scheme<'_>,
    layout: &Layout,
    destinations: &mut HashSet<String>,
) -> Result<Vec<Planned>, WheelError> {
    let mut planned = Vec::with_capacity(files.len());
    // In the model venv: where the `.data/data/` members under a version's directories land on
    // that version (see `model_alias`), and which member each is.
    let mut aliases = Vec::new();
    for file in files {
        let member = file.name;
        let invalid = |reason: String| WheelError::Invalid {
            wheel: wheel.to_string(),
            reason,
        };
        let (destination, script) = match destination(&member, scheme).map_err(invalid)? {
            Placement::File {
                destination,
                script,
            } => (destination, script),
            Placement::Skipped => continue,
        };
        let unsafe_member = |reason: String| WheelError::UnsafeMember {
            wheel: wheel.to_string(),
            member: member.to_string(),
            reason,
        };
        check_venv_owned(&destination, layout, &info.directory).map_err(unsafe_member)?;
        if !destinations.insert(destination.clone()) {
            return Err(unsafe_member(format!(
                "another member of the wheel also installs to {destination}"
            )));
        }
        // The model venv is every interpreter's: a `.data/data/` member lands on 3.N where
        // site-packages or the headers are (held to the other members once all are planned),
        // or is a file where the venv of a supported Python has its own directory.
        let data = pysfx_wheel::data_member(member.as_str()).is_some_and(|rest| {
            rest.starts_with("data/") && scheme.site_packages == super::MODEL_SITE_PACKAGES
        });
        if data {
            if is_versioned_directory(&destination) {
                return Err(unsafe_member(format!(
                    "it is a file where the venv of some Python has a directory ({destination})"
                )));
            }
            if let Some(alias) = model_alias(&destination, scheme) {
                aliases.push((alias, member.to_string()));
            }
        }
        let mismatch = |reason: &str| WheelError::RecordMismatch {
            wheel: wheel.to_string(),
            member: member.to_string(),
            reason: reason.to_string(),
        };
        // RECORD's signatures, beside it in the .dist-info directory, are not listed in it;
        // everything else must be, with a hash (PEP 427).
        let signature = member
            .as_str()
            .strip_prefix(info.directory.as_str())
            .is_some_and(|rest| rest == "/RECORD.jws" || rest == "/RECORD.p7s");
        let expected = info.record.remove(member.as_str());
        match &expected {
            None if !signature => return Err(mismatch("not listed in RECORD")),
            Some(expected) if expected.hash.is_empty() => {
                return Err(mismatch("RECORD gives it no hash"))
            }
            _ => {}
        }
        // A script keeps the mode the wheel gives it, as pip installs it: one shipped without
        // its executable bit is installed without it.
        let executable = matches!(file.kind, MemberKind::File { executable: true });
        planned.push(Planned {
            index: Some(file.index),
            end: file.end,
            member,
            destination,
            executable,
            script,
            size: file.size,
            expected,
            disposition: Disposition::Create,
        });
    }
    check_model_aliases(wheel, &aliases, destinations, scheme)?;
    Ok(planned)
}

/// In the model venv, each `.data/data/` member's place on its own Python (`aliases`, see
/// `model_alias`) held to what the wheel's other members and the install's own files of the
/// wheel make there, as the install on that Python holds it: the same file, a file where the
/// other needs a directory, or the reverse.
fn check_model_aliases(
    wheel: &str,
    aliases: &[(String, String)],
    destinations: &HashSet<String>,
    scheme: &Scheme<'_>,
) -> Result<(), WheelError> {
    if aliases.is_empty() {
        return Ok(());
    }
    let site = scheme.site_packages;
    let own = ["RECORD", "INSTALLER", "REQUESTED"]
        .map(|name| format!("{site}/{}/{name}", scheme.dist_info));
    let mut files: Vec<&str> = (destinations.iter().chain(&own))
        .map(String::as_str)
        .collect();
    files.sort_unstable();
    let is_file = |path: &str| files.binary_search(&path).is_ok();
    let mut directories = Vec::new();
    for file in &files {
        let mut at = *file;
        while let Some((parent, _)) = at.rsplit_once('/') {
            directories.push(parent);
            at = parent;
        }
    }
    directories.sort_unstable();
    for (alias, member) in aliases {
        let mut clash = is_file(alias) || directories.binary_search(&alias.as_str()).is_ok();
        let mut at = alias.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            clash |= is_file(parent);
            at = parent;
        }
        if clash {
            return Err(WheelError::UnsafeMember {
                wheel: wheel.to_string(),
                member: member.clone(),
                reason: format!(
                    "on some Python it lands at {alias} (as the model venv spells it), where \
                     another member of the wheel or the install's own files are, or need a \
                     directory"
                ),
            });
        }
    }
    Ok(())
}

/// A `.pyc` file in a `__pycache__` directory is what Python runs in place of the source of
/// its name beside that directory, unchecked when the file says so: a wheel may ship one only
/// for a source it ships itself. One for another distribution's module would run instead of
/// that module's code (and collide with the byte-code compiled for it).
fn refuse_foreign_bytecode(
    wheel: &str,
    planned: &[Planned],
    destinations: &HashSet<String>,
) -> Result<(), WheelError> {
    for plan in planned {
        let Some(source) = cached_source(&plan.destination) else {
            continue;
        };
        if !destinations.contains(&source) {
            return Err(WheelError::UnsafeMember {
                wheel: wheel.to_string(),
                member: plan.member.to_string(),
                reason: format!(
                    "byte-code of {source}, which the wheel does not ship (Python would run it \
                     in place of that module)"
                ),
            });
        }
    }
    Ok(())
}

/// The source whose byte-code `destination` would be: `x/__pycache__/m.cpython-311.pyc` (or
/// `….opt-1.pyc`) → `x/m.py`.
pub(crate) fn cached_source(destination: &str) -> Option<String> {
    let (directory, file) = destination.rsplit_once('/')?;
    let parent = directory.strip_suffix("__pycache__")?;
    if !(parent.is_empty() || parent.ends_with('/')) {
        return None;
    }
    let (module, _) = file.strip_suffix(".pyc")?.split_once('.')?;
    Some(format!("{parent}{module}.py"))
}

/// Whether a RECORD row vouches for bytes: a directory's row (`pkg/,,`) or one without a hash
/// (an absent `RECORD.jws`, a `.pyc` row) claims nothing, as pip reads them.
fn claims_a_file(name: &str, expected: &Expected) -> bool {
    !expected.hash.is_empty() && !name.ends_with('/')
}

/// A whole wheel must carry every file its RECORD lists (what is left of `info.record` once its
/// members are planned): a row without its member is a wheel truncated or put together wrong,
/// and installing it would leave the distribution without that file.
fn refuse_ghost_rows(wheel: &str, info: &DistInfo, scheme: &Scheme<'_>) -> Result<(), WheelError> {
    let mut ghosts: Vec<&String> = info
        .record
        .iter()
        .filter(|(name, expected)| claims_a_file(name, expected))
        .map(|(name, _)| name)
        .filter(|name| {
            // RECORD itself, and `.data/scripts` wrappers pysfx writes launchers for, are not
            // installed from the wheel: their rows need no member.
            MemberName::new(name).map_or(true, |member| {
                !matches!(destination(&member, scheme), Ok(Placement::Skipped))
            })
        })
        .collect();
    ghosts.sort();
    match ghosts.first() {
        None => Ok(()),
        Some(first) => Err(WheelError::RecordMismatch {
            wheel: wheel.to_string(),
            member: first.to_string(),
            reason: match ghosts.len() {
                1 => "listed in RECORD, but the wheel does not carry it".to_string(),
                n => format!(
                    "listed in RECORD, but the wheel does not carry it (nor {} more it lists)",
                    n - 1
                ),
            },
        }),
    }
}

/// A husk carries RECORD's skeleton and what `pysfx_wheel::husk_carries`, nothing else (`names`:
/// its files' names).
pub(crate) fn check_husk_members(wheel: &str, names: &[&str]) -> Result<(), WheelError> {
    let dist_info = (names.iter())
        .filter_map(|name| name.strip_suffix("/RECORD"))
        .find(|top| top.ends_with(".dist-info") && !top.contains('/'))
        .unwrap_or_default();
    let stray = names.iter().find(|name| {
        **name != format!("{dist_info}/RECORD") && !pysfx_wheel::husk_carries(name, dist_info)
    });
    match stray {
        Some(name) => Err(WheelError::UnsafeMember {
            wheel: wheel.to_string(),
            member: name.to_string(),
            reason: "a thin artifact's husk carries only RECORD, its signatures, \
                     .data/scripts/ and .data/headers/"
                .into(),
        }),
        None => Ok(()),
    }
}

/// The files RECORD lists that a husk does not carry, planned like members (name, destination,
/// the venv's own files, the wheel's other members), in RECORD path order; RECORD itself is
/// not among them.
fn plan_left_out(
    wheel: &str,
    info: &mut DistInfo,
    scheme: &Scheme<'_>,
    layout: &Layout,
    destinations: &mut HashSet<String>,
) -> Result<Vec<Planned>, WheelError> {
    let mut rows: Vec<(String, Expected)> = (info.record.drain())
        .filter(|(name, expected)| claims_a_file(name, expected))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut planned = Vec::with_capacity(rows.len());
    for (name, expected) in rows {
        let unsafe_member = |reason: String| WheelError::UnsafeMember {
            wheel: wheel.to_string(),
            member: name.clone(),
            reason,
        };
        let member = MemberName::new(&name).map_err(|reason| unsafe_member(reason.into()))?;
        let invalid = |reason: String| WheelError::Invalid {
            wheel: wheel.to_string(),
            reason,
        };
        let destination = match destination(&member, scheme).map_err(invalid)? {
            Placement::File {
                script: true,
                destination,
            } => {
                return Err(WheelError::Invalid {
                    wheel: wheel.to_string(),
                    reason: format!("its husk lacks {member}, which installs as {destination}"),
                })
            }
            Placement::File { destination, .. } => destination,
            Placement::Skipped => continue,
        };
        check_venv_owned(&destination, layout, &info.directory).map_err(unsafe_member)?;
        if !destinations.insert(destination.clone()) {
            return Err(unsafe_member(format!(
                "another member of the wheel also installs to {destination}"
            )));
        }
        let (true, Some(size)) = (expected.hash.starts_with("sha256="), expected.size) else {
            return Err(WheelError::RecordMismatch {
                wheel: wheel.to_string(),
                member: name.clone(),
                reason: "left out of a thin artifact without a sha256 hash and size in RECORD"
                    .into(),
            });
        };
        planned.push(Planned {
            index: None,
            end: 0,
            member,
            destination,
            executable: false,
            script: false,
            size,
            expected: Some(expected),
            disposition: Disposition::Create,
        });
    }
    Ok(planned)
}

/// The entry points' launchers in `bin/`, checked like members.
fn plan_launchers(
    wheel: &str,
    scripts: &[EntryPoint],
    info: &DistInfo,
    layout: &Layout,
    destinations: &mut HashSet<String>,
) -> Result<Vec<Launcher>, WheelError> {
    let mut launchers = Vec::with_capacity(scripts.len());
    for script in scripts {
        let invalid = |reason: String| WheelError::Invalid {
            wheel: wheel.to_string(),
            reason: format!("entry point {:?}: {reason}", script.name),
        };
        if script.name.len() > 255 {
            return Err(invalid(format!(
                "a name of {} bytes is longer than a file name may be",
                script.name.len()
            )));
        }
        let destination = format!("bin/{}", script.name);
        check_venv_owned(&destination, layout, &info.directory).map_err(invalid)?;
        if !destinations.insert(destination.clone()) {
            return Err(invalid(format!(
                "another file of the wheel also installs to {destination}"
            )));
        }
        launchers.push(Launcher {
            destination,
            text: launcher_script(
                &layout.shebang_python,
                &script.module,
                &script.attribute,
                layout.python_version,
            ),
            disposition: Disposition::Create,
        });
    }
    Ok(launchers)
}

/// PEP 427: the `.dist-info` name and `METADATA` must agree with the filename.
fn check_name_and_version(
    filename: &WheelFilename,
    dist_info: &str,
    name: &str,
    version: &str,
) -> Result<(), String> {
    // PEP 508: letters and digits, with `.`, `-` and `_` only between them (a name of `..`
    // would put its `.data/headers` one level up).
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = ends(name.chars().next())
        && ends(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !valid {
        return Err(format!(
            "METADATA names {name:?}, which is not a valid distribution name"
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distribution_name_must_be_pep_508() {
        let filename: WheelFilename = "good.name_2-1.0-py3-none-any.whl".parse().expect("name");
        let check = |name: &str| check_name_and_version(&filename, "x-1.0.dist-info", name, "1.0");
        assert!(check_name_and_version(
            &filename,
            "good.name_2-1.0.dist-info",
            "good.name-2",
            "1.0"
        )
        .is_ok());
        for bad in ["..", ".x", "x-", "a b", "x/y", ""] {
            let refused = check(bad).expect_err(bad);
            assert!(
                refused.contains("not a valid distribution name"),
                "{refused}"
            );
        }
    }

    #[test]
    fn byte_code_in_pycache_is_of_the_source_beside_it() {
        let site = "lib/python3.11/site-packages";
        for (destination, source) in [
            (
                "zzz/__pycache__/__init__.cpython-311.pyc",
                Some("zzz/__init__.py"),
            ),
            ("__pycache__/m.cpython-311.opt-1.pyc", Some("m.py")),
            ("zzz/m.pyc", None),
            ("zzz/__pycache__/m.pyc", None),
            ("zzz/not__pycache__/m.cpython-311.pyc", None),
            ("zzz/__pycache__/m.cpython-311.py", None),
        ] {
            let found = cached_source(&format!("{site}/{destination}"));
            let expected = source.map(|source| format!("{site}/{source}"));
            assert_eq!(found, expected, "{destination}");
        }
    }

    fn ep(name: &str) -> EntryPoint {
        EntryPoint {
            name: name.into(),
            module: "m".into(),
            attribute: "f".into(),
            gui: false,
        }
    }

    #[test]
    fn compressed_tag_sets_in_wheel_files_are_expanded() {
        assert_eq!(
            expand_tag("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"),
            vec![
                "cp311-cp311-manylinux_2_17_x86_64",
                "cp311-cp311-manylinux2014_x86_64"
            ]
        );
        assert_eq!(
            expand_tag(" py2.py3-none-any"),
            vec!["py2-none-any", "py3-none-any"]
        );
        assert_eq!(expand_tag("odd"), vec!["odd"]);
        let headers = Headers::parse(
            "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64\n",
        );
        let filename: WheelFilename =
            "x-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
                .parse()
                .expect("name");
        assert_eq!(check_wheel_file(&headers, &filename), Ok(()));
        let renamed: WheelFilename = "x-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
            .parse()
            .expect("name");
        assert!(check_wheel_file(&headers, &renamed).is_err());
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
}
