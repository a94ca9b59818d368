//! Reading a wheel: found in a directory, named, and checked as the stub will check it at
//! install (`read_wheel`).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use pysfx_wheel::WheelFilename;
use sha2::{Digest, Sha256};

use crate::appfiles::shown;

pub(crate) fn wheel_filename(path: &Path) -> Result<WheelFilename> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| anyhow!("{}: not a UTF-8 file name", shown(path)))?;
    name.parse()
        .with_context(|| format!("invalid wheel {}", shown(path)))
}

/// The `.whl` files directly in `directory`, sorted. An entry named `*.whl` that is no file
/// (a directory, a FIFO, a link to nothing) is an error naming it, not passed over: the set
/// would lack that wheel, and say nothing of it.
pub fn wheels_in(directory: &Path) -> Result<Vec<PathBuf>> {
    let mut wheels = Vec::new();
    for entry in std::fs::read_dir(directory)
        .with_context(|| format!("cannot read the wheel directory {}", shown(directory)))?
    {
        let path = entry
            .with_context(|| format!("cannot read {}", shown(directory)))?
            .path();
        if path.extension().is_none_or(|extension| extension != "whl") {
            continue;
        }
        // Following a link: a link to a wheel is that wheel.
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => wheels.push(path),
            Ok(metadata) => {
                let kind = match metadata.is_dir() {
                    true => "a directory",
                    false => "not a regular file (a FIFO, socket or device)",
                };
                bail!("{}: {kind}, not a wheel file", shown(&path));
            }
            Err(error) if std::fs::symlink_metadata(&path).is_ok() => {
                bail!("{}: a link to nothing readable ({error})", shown(&path));
            }
            Err(error) => bail!("cannot read {}: {error}", shown(&path)),
        }
    }
    wheels.sort();
    Ok(wheels)
}

/// What the manifest records about a wheel, read and checked at pack time.
#[derive(Debug, Clone)]
pub struct WheelInfo {
    pub filename: WheelFilename,
    pub name: String,
    pub version: String,
    pub requires_python: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub unpacked_bytes: u64,
    /// Entries in the zip directory.
    pub members: u64,
    /// `Requires-Dist` of METADATA, as written.
    pub requires_dist: Vec<String>,
    /// Hex SHA-256 of the bytes of `<dist-info>/RECORD`.
    pub record_sha256: String,
    /// Where the install puts each of its files and launchers, relative to the venv (with
    /// `lib/python3/site-packages` for site-packages).
    pub destinations: Vec<String>,
    /// The directories its install makes in a venv (the stub's free-inode check, which holds
    /// the manifest's count to the wheel: `PreparedWheel::directories_made`).
    pub directories: u64,
}

/// Reads a wheel: its digest, and everything the stub checks at install, by the install's own
/// code (refusing what the stub would refuse, the app's `.pth` hook included when `app_name`
/// is given).
pub fn read_wheel(path: &Path, app_name: Option<&str>) -> Result<WheelInfo> {
    let context = || format!("invalid wheel {}", shown(path));
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| anyhow!("{}: not a UTF-8 file name", shown(path)))?;
    let filename: WheelFilename = file_name.parse().with_context(context)?;
    let mut bytes = Vec::new();
    crate::appfiles::open_regular(path, true)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", shown(path)))?;
    let sha256 = pysfx_format::hex(&Sha256::digest(&bytes));
    // Everything the stub will check at install, checked now: a wheel that would be refused
    // there is refused here.
    let prepared = pysfx_install::verify_wheel(std::io::Cursor::new(&bytes), &filename, app_name)
        .map_err(|error| anyhow!("invalid wheel {}: {error}", shown(path)))?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).with_context(context)?;
    let members = archive.len() as u64;
    // Each member's local header names it as the central directory does (pip refuses a
    // wheel whose two names differ; the install goes by the directory's).
    let reader = std::io::Cursor::new(&bytes);
    let read_at = |offset: u64, buffer: &mut [u8]| {
        pysfx_format::ReadAt::read_exact_at(&reader, offset, buffer)
    };
    if let Some((central, local)) =
        pysfx_format::local_name_mismatch(&mut archive, bytes.len() as u64, &read_at)
            .with_context(context)?
    {
        bail!(
            "invalid wheel {}: {}",
            shown(path),
            pysfx_format::escape_control(&format!(
                "member {central:?}: its local header names {local:?}, the central directory \
                 {central:?}"
            ))
        );
    }
    let record_sha256 = record_digest(&mut archive).with_context(context)?;
    // The stub refuses a manifest of more requirements than this (each costs it memory to
    // check): refuse the wheel here.
    let requirements = prepared.requires_dist().len();
    if requirements > pysfx_format::MAX_REQUIRES_DIST {
        bail!(
            "invalid wheel {}: {requirements} Requires-Dist lines, implausibly many (an \
             artifact holds at most {} in all)",
            shown(path),
            pysfx_format::MAX_REQUIRES_DIST
        );
    }
    // The stub refuses a wheel whose requirements it cannot read (it could not tell the
    // release is complete): refuse it here.
    for text in prepared.requires_dist() {
        pysfx_wheel::Requirement::parse(text).map_err(|error| {
            anyhow!(
                "invalid wheel {}: Requires-Dist \"{}\": {}",
                shown(path),
                pysfx_format::escape_control(text),
                pysfx_format::escape_control(&error.to_string())
            )
        })?;
    }
    // pip takes a Requires-Python it cannot read as met, with a warning; so does the stub.
    // (Told once: when the wheel is read for the payload, with the app's name; the sets
    // read each wheel before.)
    if let Some(spec) = prepared.requires_python().filter(|_| app_name.is_some()) {
        if pysfx_wheel::requires_python_specifiers(spec).is_err() {
            tracing::warn!(
                "{}: its Requires-Python \"{}\" is not a version specifier; every Python is \
                 taken to meet it",
                shown(path),
                pysfx_format::escape_control(spec)
            );
        }
    }
    Ok(WheelInfo {
        name: filename.name.clone(),
        version: prepared.version().to_string(),
        requires_python: prepared.requires_python().map(str::to_string),
        filename,
        sha256,
        size: bytes.len() as u64,
        unpacked_bytes: prepared.unpacked_bytes(),
        members,
        requires_dist: prepared.requires_dist().to_vec(),
        record_sha256,
        destinations: (prepared.destinations().iter())
            .map(|destination| destination.path.to_string())
            .collect(),
        directories: prepared.directories_made(pysfx_install::wheel::MODEL_SITE_PACKAGES),
    })
}

/// The wheel's one `.dist-info` directory (a top-level directory named `*.dist-info`), as
/// the install finds it; `None` when there is not exactly one.
pub(crate) fn dist_info_directory<'a>(names: impl Iterator<Item = &'a str>) -> Option<String> {
    let directories: std::collections::BTreeSet<&str> = names
        .filter_map(|name| name.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    match directories.into_iter().collect::<Vec<_>>().as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    }
}

/// Hex SHA-256 of the bytes of the wheel's `<dist-info>/RECORD`.
fn record_digest<R: Read + std::io::Seek>(archive: &mut zip::ZipArchive<R>) -> Result<String> {
    let members = pysfx_format::scan_members(archive)?;
    let directory = dist_info_directory(members.iter().map(|member| member.name.as_str()))
        .ok_or_else(|| anyhow!("not exactly one .dist-info directory"))?;
    let name = format!("{directory}/RECORD");
    let entry = archive
        .by_name(&name)
        .with_context(|| format!("{name} is missing"))?;
    // The install reads RECORD whole, up to a limit: past it, the wheel could never install.
    let most = pysfx_install::MAX_METADATA_BYTES;
    if entry.size() > most {
        bail!(
            "{name} is {} bytes, more than an install reads ({} MiB)",
            entry.size(),
            most >> 20
        );
    }
    let (digest, _) =
        pysfx_format::sha256_reader(entry).with_context(|| format!("cannot read {name}"))?;
    Ok(pysfx_format::hex(&digest))
}
