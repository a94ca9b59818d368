//! The whole-artifact check behind `pysfx verify` and `./site.sfx --verify`: everything the
//! stub would check while installing, with nothing written, so an artifact that verifies also
//! installs.

use std::io::Read;

use pysfx_format::WheelEntry;
use pysfx_format::{Payload, Section};
use pysfx_wheel::{
    normalize_name, validate_member_name, verify_wheel, PreparedWheel, WheelFilename,
};
use sha2::{Digest, Sha256};

use crate::payload_links;

/// Checks the payload digest; every entry (read through, so sizes and CRCs are checked), its
/// name and kind; every wheel against its manifest digest and as the installer would check it;
/// and that the sets name only wheels the manifest describes. The error says what and where.
pub fn verify_contents(payload: &mut Payload) -> Result<(), String> {
    payload.verify().map_err(|error| error.to_string())?;
    payload.check_sizes().map_err(|error| error.to_string())?;
    let path = payload.path().display().to_string();
    // Links of the app and the static directories, checked; any other is refused.
    payload_links(payload)
        .map_err(|(name, reason)| format!("{path}: unsafe entry {name:?}: {reason}"))?;
    let archive = payload.archive();
    if archive.has_duplicate_names() {
        return Err(format!("{path}: duplicate entries"));
    }
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|error| format!("{path}: entry {index}: {error}"))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        validate_member_name(&name)
            .map_err(|reason| format!("{path}: unsafe entry {name:?}: {reason}"))?;
        std::io::copy(&mut entry, &mut std::io::sink())
            .map_err(|error| format!("{path}: {name}: {error}"))?;
    }
    let manifest = payload.manifest().clone();
    let mut buffer = vec![0u8; 256 * 1024];
    for wheel in &manifest.wheels {
        let (start, len) = payload
            .stored_range(&wheel.path)
            .map_err(|error| error.to_string())?;
        let mut section = Section::new(payload.file(), start, len);
        let mut hasher = Sha256::new();
        loop {
            let read = section
                .read(&mut buffer)
                .map_err(|error| format!("{path}: {}: {error}", wheel.path))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        let actual = pysfx_format::hex(&hasher.finalize());
        if actual != wheel.sha256 {
            return Err(format!(
                "{path}: {} has sha256 {actual}, the manifest says {}",
                wheel.path, wheel.sha256
            ));
        }
        let filename: WheelFilename = wheel
            .filename
            .parse()
            .map_err(|error: pysfx_wheel::WheelError| format!("{path}: {error}"))?;
        let prepared = verify_wheel(
            Section::new(payload.file(), start, len),
            &filename,
            Some(&manifest.app.name),
        )
        .map_err(|error| format!("{path}: {error}"))?;
        check_entry(wheel, &prepared).map_err(|reason| format!("{path}: {reason}"))?;
    }
    for set in &manifest.sets {
        for wheel in set.wheels.iter().chain(&manifest.bootstrap) {
            if manifest.wheel(wheel).is_none() {
                return Err(format!(
                    "{path}: set {} names a wheel the manifest does not describe: {wheel}",
                    set.name
                ));
            }
        }
    }
    Ok(())
}

/// What the manifest says of a wheel against the wheel itself, once opened: what the stub
/// decided from the manifest before writing (its choice by name, version and Requires-Python,
/// the completeness check by Requires-Dist, the free-space check by size) must be what it
/// installs. The install and `verify` both run it; a difference is a corrupt artifact.
pub fn check_entry(entry: &WheelEntry, prepared: &PreparedWheel) -> Result<(), String> {
    let wheel = &entry.filename;
    if prepared.unpacked_bytes() > entry.unpacked_bytes {
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
    Ok(())
}
