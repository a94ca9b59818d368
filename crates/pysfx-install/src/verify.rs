//! The whole-artifact check behind `pysfx verify` and `./site.sfx --verify`: the install
//! itself, into [`NullTree`]s — the app and static directories into one, every wheel (with its
//! byte-code bundles) into a model of a venv — so an artifact that verifies also installs.

use std::collections::{HashMap, HashSet};

use pysfx_format::{Manifest, Payload, WheelEntry};
use pysfx_tree::{NullTree, Sink};
use pysfx_venv::{HOOK_MODULE, HOOK_PTH};
use pysfx_wheel::normalize_name;

use crate::batch::BatchLimits;
use crate::member::open_member;
use crate::set::{install_set, SetOptions, WheelJob};
use crate::shared::{file_directory_clash, SetMember};
use crate::wheel::{Layout, PreparedWheel};
use crate::{extract_app, InstallError, Silent};

/// Checks the payload digest and sizes; that the sets name only wheels the manifest describes;
/// every entry (read through, so sizes and CRCs are checked); the app and static directories
/// as the install extracts them; and every wheel as the install installs it, against its
/// manifest digest and entry. The error says what and where.
pub fn verify_contents(payload: &mut Payload) -> Result<(), InstallError> {
    payload.verify()?;
    payload.check_sizes()?;
    let path = payload.path().display().to_string();
    let manifest = payload.manifest().clone();
    for set in &manifest.sets {
        for wheel in set.wheels.iter().chain(&manifest.bootstrap) {
            if manifest.wheel(wheel).is_none() {
                return Err(InstallError::Corrupt(format!(
                    "{path}: set {} names a wheel the manifest does not describe: {wheel}",
                    set.name
                )));
            }
        }
    }
    // What the install plans by, and refuses before writing when it does not parse.
    pysfx_plan::parse_requirements(&manifest.wheels)
        .map_err(|reason| InstallError::Corrupt(format!("{path}: {reason}")))?;
    for set in &manifest.sets {
        for text in &set.requires {
            pysfx_wheel::Requirement::parse(text).map_err(|error| {
                InstallError::Corrupt(format!(
                    "{path}: set {} has an invalid requirement \"{}\": {}",
                    set.name,
                    pysfx_format::escape_control(text),
                    pysfx_format::escape_control(&error.to_string())
                ))
            })?;
        }
    }
    check_sboms(payload, &manifest, &path)?;
    check_outer_headers(payload, &path)?;
    for bundle in &manifest.bytecode {
        check_bundle_headers(payload, &bundle.path, &path)?;
    }
    extract_app(payload, &mut Sink::from(NullTree::new()))?;
    read_through(payload, &path)?;
    let layout = model_layout(&manifest);
    let options = SetOptions {
        threads: 1,
        limits: BatchLimits::default(),
        ..SetOptions::default()
    };
    // Where each wheel's install put its files (the model's paths but the venv's own).
    let seeded: HashSet<String> = venv_model(&layout).files().into_iter().collect();
    let mut destinations: HashMap<&str, Vec<String>> = HashMap::new();
    for entry in &manifest.wheels {
        check_local_headers(payload, entry, &path)?;
        // (A left-out wheel in an artifact that names no base is refused when it is opened:
        // `Manifest::validate`.)
        if entry.from_base {
            check_husk(payload, entry, &layout, &path)?;
            continue;
        }
        // Every bundle compiled for the wheel, whichever interpreter it is for.
        let job = WheelJob::new(payload, entry, |_| true)?;
        let model = venv_model(&layout);
        let tree = Sink::from(model.clone());
        install_set(
            payload.file(),
            &[job],
            &layout,
            &tree,
            options.clone(),
            &Silent,
            &mut |_, _| Ok(()),
        )
        .map_err(|error| match error {
            InstallError::Corrupt(reason) => InstallError::Corrupt(format!("{path}: {reason}")),
            InstallError::Wheel(error) => InstallError::Corrupt(format!("{path}: {error}")),
            other => other,
        })?;
        let mut files = model.files();
        files.retain(|file| !seeded.contains(file));
        destinations.insert(&entry.path, files);
    }
    check_no_clash(&manifest, &destinations, &path)?;
    // What the install holds the manifest to before it blames the machine (the directories
    // each wheel makes, for the free-inode check, among them).
    check_claims(payload)
}

/// No set's wheels (with the bootstrap wheels) clash, one shipping a file where another's
/// files need a directory: the install that chose both would refuse them. (Left-out wheels of
/// a thin artifact are checked at install, against the release they come from.)
fn check_no_clash(
    manifest: &Manifest,
    destinations: &HashMap<&str, Vec<String>>,
    path: &str,
) -> Result<(), InstallError> {
    for set in &manifest.sets {
        let entries: Vec<&WheelEntry> = (set.wheels.iter().chain(&manifest.bootstrap))
            .filter_map(|wheel| manifest.wheel(wheel))
            .filter(|entry| destinations.contains_key(entry.path.as_str()))
            .collect();
        let members: Vec<SetMember> = (entries.iter())
            .map(|entry| SetMember {
                name: &entry.name,
                destinations: &destinations[entry.path.as_str()],
            })
            .collect();
        if let Some(clash) = file_directory_clash(&members) {
            return Err(InstallError::Corrupt(format!(
                "{path}: set {}: {} ships the file {} and {} needs a directory there: the two \
                 cannot be installed together",
                set.name,
                entries[clash.file_wheel].filename,
                pysfx_format::escape_control(clash.path),
                entries[clash.directory_wheel].filename
            )));
        }
    }
    Ok(())
}

/// The layout of the venvs `verify` models: no interpreter's, so what depends on one (the
/// byte-code bundles, the shebangs) is checked for every interpreter alike.
fn model_layout(manifest: &Manifest) -> Layout {
    Layout {
        site_packages: crate::wheel::MODEL_SITE_PACKAGES.into(),
        python_version: (3, 0),
        shebang_python: "/nonexistent/venv/bin/python".into(),
        installer: "pysfx".into(),
        app_name: Some(manifest.app.name.clone()),
    }
}

/// Holds what the manifest says of each wheel it carries whole to the wheel itself
/// ([`check_entry`]: name, version, requirements, unpacked size), reading each one's zip
/// directory, METADATA and RECORD. The stub runs it before it blames the machine (exit 4) for
/// what it decided from the manifest alone — a requirement no wheel meets, no wheel for this
/// interpreter, more space than there is, a thin artifact's base release missing: a manifest
/// that lies about its wheels, or a husk no release could serve, is the artifact's fault
/// (exit 3).
pub fn check_claims(payload: &mut Payload) -> Result<(), InstallError> {
    check_claims_of(payload, &|_| true)
}

/// [`check_claims`] for the wheels `which` picks.
pub fn check_claims_of(
    payload: &mut Payload,
    which: &dyn Fn(&WheelEntry) -> bool,
) -> Result<(), InstallError> {
    let path = payload.path().display().to_string();
    let manifest = payload.manifest().clone();
    let layout = model_layout(&manifest);
    for entry in (manifest.wheels.iter()).filter(|entry| which(entry)) {
        if entry.from_base {
            check_husk(payload, entry, &layout, &path)?;
            continue;
        }
        let (start, len) = payload.stored_range(&entry.path)?;
        let filename = entry.filename.parse()?;
        let mut archive = zip::ZipArchive::new(pysfx_format::Section::with_directory(
            payload.file(),
            start,
            len,
        ))
        .map_err(|source| pysfx_wheel::WheelError::Zip {
            wheel: entry.filename.clone(),
            source,
        })?;
        let prepared = crate::wheel::prepare_wheel(&mut archive, &filename, &layout)?;
        let members = archive.len() as u64;
        check_entry(entry, &prepared, members)
            .and_then(|()| check_directories(entry, &prepared, &layout.site_packages))
            .map_err(|reason| InstallError::Corrupt(format!("{path}: {reason}")))?;
    }
    Ok(())
}

/// The SBOMs are printed (`--sbom`) and copied into releases: all stored or none, each read
/// back as pysfx writes it and listing what the manifest makes it list
/// (`pysfx_plan::sbom::check_stored`).
fn check_sboms(payload: &mut Payload, manifest: &Manifest, path: &str) -> Result<(), InstallError> {
    let corrupt = |reason: String| InstallError::Corrupt(format!("{path}: {reason}"));
    if !pysfx_plan::sbom::all_stored(payload).map_err(corrupt)? {
        return Ok(());
    }
    let sets = (0..manifest.sets.len()).map(Some);
    for set in std::iter::once(None).chain(sets) {
        let name = match set {
            None => pysfx_format::SBOM_NAME.to_string(),
            Some(index) => pysfx_format::set_sbom_name(index),
        };
        let Some(bytes) = pysfx_format::read_sbom(payload, &name)? else {
            continue;
        };
        pysfx_plan::sbom::check_stored(manifest, set, &String::from_utf8_lossy(&bytes)).map_err(
            |reason| corrupt(format!("{name} is not the SBOM of this artifact: {reason}")),
        )?;
    }
    Ok(())
}

/// Each member's local header names it as the wheel's central directory does, as Python's
/// `zipfile` (and so pip) requires: directory entries included, which no install opens (the
/// members it reads are held to their local headers whole when opened, `open_member`).
fn check_local_headers(
    payload: &mut Payload,
    entry: &WheelEntry,
    path: &str,
) -> Result<(), InstallError> {
    let range = payload.stored_range(&entry.path)?;
    stored_headers_agree(payload, range, false)
        .map_err(|reason| InstallError::Corrupt(format!("{path}: {}: {reason}", entry.filename)))
}

/// The artifact's own local headers agree with its central directory (names, methods, CRCs,
/// sizes), as `pysfx pack` writes them: the artifact stays a zip that `unzip` and Python's
/// `zipfile` read. (The install holds each entry it reads to its local header when it opens
/// it; this looks at every entry.)
fn check_outer_headers(payload: &mut Payload, path: &str) -> Result<(), InstallError> {
    use std::os::unix::fs::FileExt;
    let corrupt = |reason: String| InstallError::Corrupt(format!("{path}: {reason}"));
    let file = payload.file().clone();
    let len = file
        .metadata()
        .map_err(|error| corrupt(error.to_string()))?
        .len();
    let read_at = |offset: u64, buffer: &mut [u8]| file.read_exact_at(buffer, offset);
    headers_agree(payload.archive(), len, &read_at, "entry", true).map_err(corrupt)
}

/// A byte-code bundle's local headers agree with its central directory, as the artifact's
/// own do ([`check_outer_headers`]): pysfx wrote both.
fn check_bundle_headers(
    payload: &mut Payload,
    bundle: &str,
    path: &str,
) -> Result<(), InstallError> {
    let range = payload.stored_range(bundle)?;
    stored_headers_agree(payload, range, true)
        .map_err(|reason| InstallError::Corrupt(format!("{path}: {bundle}: {reason}")))
}

/// [`headers_agree`] of the zip stored in the payload at `(start, len)` (a wheel, a bundle).
fn stored_headers_agree(
    payload: &Payload,
    (start, len): (u64, u64),
    fields: bool,
) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let file = payload.file();
    let mut archive = zip::ZipArchive::new(pysfx_format::Section::with_directory(file, start, len))
        .map_err(|error| error.to_string())?;
    let read_at = |offset: u64, buffer: &mut [u8]| file.read_exact_at(buffer, start + offset);
    headers_agree(&mut archive, len, &read_at, "member", fields)
}

/// Whether each local header of `archive` (`len` bytes, read by `read_at`) gives the name
/// its directory record gives, and with `fields` the method, CRC and sizes too; what differs
/// otherwise, naming the `kind` of entry.
fn headers_agree(
    archive: &mut zip::ZipArchive<pysfx_format::Section>,
    len: u64,
    read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
    kind: &str,
    fields: bool,
) -> Result<(), String> {
    let escaped = |text: String| pysfx_format::escape_control(&text).into_owned();
    match pysfx_format::local_name_mismatch(archive, len, read_at) {
        Ok(None) => {}
        Ok(Some((central, local))) => {
            return Err(escaped(format!(
                "{kind} {central:?}: its local header names {local:?}, the central directory \
                 {central:?}"
            )))
        }
        Err(error) => return Err(error.to_string()),
    }
    if !fields {
        return Ok(());
    }
    match pysfx_format::local_fields_mismatch(archive, read_at) {
        Ok(None) => Ok(()),
        Ok(Some((name, reason))) => {
            Err(format!("{kind} {}: {reason}", escaped(format!("{name:?}"))))
        }
        Err(error) => Err(error.to_string()),
    }
}

/// A thin artifact's husk, which is all of a left-out wheel it carries: a zip whose members
/// have safe names, and a RECORD skeleton that parses (the rows it names; its runs of rows
/// are taken from the release at install). The rest is checked at install, against
/// the release the wheel is taken from.
fn check_husk(
    payload: &mut Payload,
    entry: &WheelEntry,
    layout: &Layout,
    path: &str,
) -> Result<(), InstallError> {
    let corrupt = |reason: String| {
        InstallError::Corrupt(format!("{path}: the husk of {}: {reason}", entry.filename))
    };
    if entry.record_sha256.is_none() {
        return Err(corrupt("the manifest gives no digest of its RECORD".into()));
    }
    let (start, len) = payload.stored_range(&entry.path)?;
    let mut archive = zip::ZipArchive::new(pysfx_format::Section::with_directory(
        payload.file(),
        start,
        len,
    ))
    .map_err(|error| corrupt(error.to_string()))?;
    let members = pysfx_format::scan_members_named(&mut archive)
        .map_err(|error| corrupt(error.to_string()))?;
    let record = members
        .iter()
        .find(|member| member.name.ends_with(".dist-info/RECORD"))
        .ok_or_else(|| corrupt("it has no RECORD".into()))?;
    let record_index = record.index;
    let record_name = record.name.as_str().to_string();
    crate::wheel::check_husk_record_size(record.size)
        .map_err(|reason| corrupt(format!("RECORD: {reason}")))?;
    let longest = crate::wheel::MAX_HUSK_RECORD_BYTES;
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            open_member(&mut archive, record.index, record.end)
                .map_err(|error| corrupt(error.to_string()))?,
            longest,
        ),
        &mut text,
    )
    .map_err(|error| corrupt(error.to_string()))?;
    // The rows it names; a run's rows are the release's own, checked at install, and no more
    // of them than the wheel has members (its count unknown in artifacts packed before it
    // was recorded).
    let most_rows = match entry.members {
        0 => u64::MAX,
        members => members,
    };
    let record = pysfx_wheel::named_rows(&text, most_rows)
        .and_then(|named| {
            let most = usize::try_from(most_rows).map_or(pysfx_wheel::MAX_RECORD_ROWS, |most| {
                most.min(pysfx_wheel::MAX_RECORD_ROWS)
            });
            pysfx_wheel::Record::parse_at_most(&named, most)
        })
        .map_err(|reason| corrupt(format!("RECORD: {reason}")))?;
    let wheel: pysfx_wheel::WheelFilename = entry.filename.parse()?;
    let dist_info = record_name
        .strip_suffix("/RECORD")
        .unwrap_or_default()
        .to_string();
    let paths = (record.entries.iter().map(|row| row.path.as_str()))
        .chain(members.iter().map(|member| member.name.as_str()));
    crate::wheel::check_husk_paths(paths, layout, &wheel, &dist_info)
        .map_err(|reason| corrupt(pysfx_format::escape_control(&reason).into_owned()))?;
    let files: Vec<&str> = (members.iter())
        .filter(|member| !matches!(member.kind, pysfx_format::MemberKind::Directory))
        .map(|member| member.name.as_str())
        .collect();
    crate::wheel::check_husk_members(&entry.filename, &files)?;
    // What the husk carries (`.data/scripts/` and the like, installed from it) is held to its
    // RECORD row, as the install holds it.
    let carried = members.iter().filter(|member| {
        member.index != record_index && !matches!(member.kind, pysfx_format::MemberKind::Directory)
    });
    for member in carried {
        let row = record
            .entries
            .iter()
            .find(|row| row.path == member.name.as_str());
        let expected =
            row.and_then(|row| Some((pysfx_wheel::sha256_of_hash(&row.hash)?, row.size?)));
        let Some((digest, size)) = expected else {
            return Err(corrupt(format!(
                "{}: its RECORD gives no SHA-256 and size of it",
                member.name.as_str()
            )));
        };
        let reader = open_member(&mut archive, member.index, member.end)
            .map_err(|error| corrupt(error.to_string()))?;
        let (found, read) =
            pysfx_format::sha256_reader(std::io::Read::take(reader, size.saturating_add(1)))
                .map_err(|error| corrupt(format!("{}: {error}", member.name.as_str())))?;
        if read != size || found != digest {
            return Err(corrupt(format!(
                "{} does not match its RECORD entry",
                member.name.as_str()
            )));
        }
    }
    Ok(())
}

/// Reads every entry but the wheels and their byte-code (whose digests and members the
/// install checks) through to its end, so each entry's size and CRC are checked.
fn read_through(payload: &mut Payload, path: &str) -> Result<(), InstallError> {
    let manifest = payload.manifest();
    let skipped: HashSet<String> = manifest
        .wheels
        .iter()
        .map(|wheel| wheel.path.clone())
        .chain(manifest.bytecode.iter().map(|bundle| bundle.path.clone()))
        .collect();
    let ends = payload.entry_ends();
    let archive = payload.archive();
    for (index, &end) in ends.iter().enumerate() {
        let mut entry = open_member(archive, index, end)
            .map_err(|error| InstallError::Corrupt(format!("{path}: entry {index}: {error}")))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if skipped.contains(&name) {
            continue;
        }
        std::io::copy(&mut entry, &mut std::io::sink())
            .map_err(|error| InstallError::Corrupt(format!("{path}: {name}: {error}")))?;
    }
    Ok(())
}

/// A model of a fresh venv for `layout`: the files no wheel may replace are there already.
pub(crate) fn venv_model(layout: &Layout) -> NullTree {
    let tree = NullTree::new();
    let (major, minor) = layout.python_version;
    for link in [
        "bin/python".to_string(),
        format!("bin/python{major}"),
        format!("bin/python{major}.{minor}"),
        "lib64".into(),
    ] {
        tree.seed_symlink(&link);
    }
    for file in [
        "pyvenv.cfg",
        "bin/activate",
        "bin/activate.csh",
        "bin/activate.fish",
        "bin/Activate.ps1",
    ] {
        tree.seed_file(file);
    }
    tree.seed_directory("include");
    let site = &layout.site_packages;
    tree.seed_file(&format!("{site}/{HOOK_MODULE}.py"));
    tree.seed_file(&format!("{site}/{HOOK_PTH}"));
    if let Some(app) = &layout.app_name {
        tree.seed_file(&format!("{site}/{app}.pth"));
    }
    tree
}

/// What the manifest says of a wheel against the wheel itself, once opened: what the stub
/// decided from the manifest before writing (its choice by name, version and Requires-Python,
/// the completeness check by Requires-Dist, the free-space check by size) must be what it
/// installs. The install and `verify` both run it; a difference is a corrupt artifact.
/// The wheel's `members`, its zip directory's entries, must be what the manifest counts too,
/// where it counts them (a husk's count is the whole wheel's; artifacts packed before it was
/// recorded have 0): the stub sizes its batches and its free-inode check by it.
pub fn check_entry(
    entry: &WheelEntry,
    prepared: &PreparedWheel,
    members: u64,
) -> Result<(), String> {
    let wheel = &entry.filename;
    if !entry.from_base && entry.members != 0 && entry.members != members {
        return Err(format!(
            "{wheel}: the manifest counts {} members, its zip directory {members}",
            entry.members
        ));
    }
    // (A husk's figure is the whole wheel's, its members only part of them.)
    let declared = prepared.unpacked_bytes();
    if declared > entry.unpacked_bytes || (!entry.from_base && declared != entry.unpacked_bytes) {
        return Err(format!(
            "{wheel}: its members declare {} bytes, the manifest {}",
            prepared.unpacked_bytes(),
            entry.unpacked_bytes
        ));
    }
    let differs = |what: &str| {
        Err(format!(
            "{wheel}: the manifest's {what} differs from its METADATA"
        ))
    };
    if normalize_name(prepared.name()) != entry.name {
        return differs("name");
    }
    if prepared.version() != entry.version {
        return differs("version");
    }
    if prepared.requires_python() != entry.requires_python.as_deref() {
        return differs("Requires-Python");
    }
    if prepared.requires_dist() != entry.requires_dist.as_slice() {
        return differs("Requires-Dist");
    }
    if entry
        .record_sha256
        .as_deref()
        .is_some_and(|digest| digest != prepared.record_sha256())
    {
        return Err(format!(
            "{wheel}: its RECORD differs from the one the manifest names"
        ));
    }
    Ok(())
}

/// The directories the wheel's install makes in a venv whose site-packages is
/// `site_packages` must be what the manifest counts (where it counts them, as for its
/// members): the free-inode check before writing goes by that count, and a manifest that
/// overstates it would have the install blame the machine (exit 4). Checked where the
/// manifest is held to its wheels (`check_claims`, `verify`), not as each batch opens its
/// wheels: by then the count has served its one purpose.
fn check_directories(
    entry: &WheelEntry,
    prepared: &PreparedWheel,
    site_packages: &str,
) -> Result<(), String> {
    if entry.from_base || entry.directories == 0 {
        return Ok(());
    }
    let made = prepared.directories_made(site_packages);
    if entry.directories != made {
        return Err(format!(
            "{}: the manifest counts {} directories its install makes, its members {made}",
            entry.filename, entry.directories
        ));
    }
    Ok(())
}
