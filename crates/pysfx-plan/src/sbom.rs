//! What each SBOM an artifact stores lists, from its manifest: the packer writes them so
//! (`pysfx pack`), and every reader holds a stored one to it — the install before writing,
//! `--sbom`, `--verify`, `pysfx verify` and `pysfx inspect`.

use std::str::FromStr;

use pep440_rs::Version;
use pysfx_format::{Manifest, Payload, WheelEntry, WheelSet, SBOM_NAME};
use pysfx_wheel::python_satisfies;
use serde_json::Value;

/// What a set may install: its wheels, and the bootstrap wheels of the distributions it lacks
/// (as the stub chooses from them), each once, in no particular order. (Linear searches, not
/// sorts or maps: a few hundred wheels, and every generic sort costs the stub KBs.)
pub fn set_members<'a>(manifest: &'a Manifest, set: &WheelSet) -> Vec<&'a WheelEntry> {
    let mut members: Vec<&WheelEntry> = Vec::new();
    for wheel in set.wheels.iter().filter_map(|path| manifest.wheel(path)) {
        add_once(&mut members, wheel);
    }
    let own = members.len();
    for wheel in (manifest.bootstrap.iter()).filter_map(|path| manifest.wheel(path)) {
        if !members[..own]
            .iter()
            .any(|member| member.name == wheel.name)
        {
            add_once(&mut members, wheel);
        }
    }
    members
}

fn add_once<'a>(members: &mut Vec<&'a WheelEntry>, wheel: &'a WheelEntry) {
    if !members.iter().any(|member| member.path == wheel.path) {
        members.push(wheel);
    }
}

/// What a release of `set` gets: its wheels and, for a set resolved for one interpreter, the
/// bootstrap wheel of each distribution it lacks that the stub picks for that Python (the
/// newest whose `Requires-Python` admits it; bootstrap wheels are `py3-none-any`). A set
/// for any interpreter may get any of them: all are listed. In no particular order.
pub fn installed_members<'a>(manifest: &'a Manifest, set: &WheelSet) -> Vec<&'a WheelEntry> {
    let python = set.target.as_ref().and_then(|target| {
        Version::from_str(
            target
                .full_version
                .as_deref()
                .unwrap_or(&target.python_version),
        )
        .ok()
    });
    let Some(python) = python else {
        return set_members(manifest, set);
    };
    let mut members = Vec::new();
    // The newest bootstrap wheel of each distribution, with its version.
    let mut newest: Vec<(&WheelEntry, Version)> = Vec::new();
    for wheel in set_members(manifest, set) {
        if !manifest.bootstrap.contains(&wheel.path) || set.wheels.contains(&wheel.path) {
            members.push(wheel);
            continue;
        }
        let admits = wheel
            .requires_python
            .as_deref()
            .is_none_or(|spec| python_satisfies(spec, &python));
        let Some(version) = Version::from_str(&wheel.version).ok().filter(|_| admits) else {
            continue;
        };
        match newest.iter_mut().find(|(slot, _)| slot.name == wheel.name) {
            Some(slot) if slot.1 < version => *slot = (wheel, version),
            Some(_) => {}
            None => newest.push((wheel, version)),
        }
    }
    members.extend(newest.into_iter().map(|(wheel, _)| wheel));
    members
}

/// The wheels the stored SBOM of the whole artifact (`set` `None`) or of set `set` lists.
pub fn members(manifest: &Manifest, set: Option<usize>) -> Vec<&WheelEntry> {
    match set {
        None => (manifest.sets.iter())
            .flat_map(|set| set_members(manifest, set))
            .collect(),
        Some(index) => (manifest.sets.get(index))
            .map(|set| installed_members(manifest, set))
            .unwrap_or_default(),
    }
}

/// A stored SBOM read and held to the manifest ([`pysfx_format::sbom::check`]).
pub fn check_stored(manifest: &Manifest, set: Option<usize>, text: &str) -> Result<Value, String> {
    let document = pysfx_format::sbom::parse(text)?;
    pysfx_format::sbom::check(manifest, &document, &members(manifest, set))?;
    Ok(document)
}

/// The SBOM a release of set `set` gets: the set's stored SBOM, checked, cut to the wheels
/// one install of it put there, each of which it must list (but a bootstrap wheel).
pub fn for_release(
    manifest: &Manifest,
    set: usize,
    text: &str,
    installed: &[&WheelEntry],
) -> Result<String, String> {
    let document = check_stored(manifest, Some(set), text)?;
    let bootstrap = |wheel: &WheelEntry| manifest.bootstrap.contains(&wheel.path);
    let cut = pysfx_format::sbom::cut(document, installed, bootstrap)?;
    pysfx_format::sbom::to_text(&cut).map_err(|error| error.to_string())
}

/// The payload names of the SBOMs an artifact stores: the whole artifact's, then each set's.
pub fn names(manifest: &Manifest) -> Vec<String> {
    std::iter::once(SBOM_NAME.to_string())
        .chain((0..manifest.sets.len()).map(pysfx_format::set_sbom_name))
        .collect()
}

/// Whether the artifact stores its SBOMs: all of them (`Ok(true)`), or none, as an artifact
/// packed before pysfx stored them (`Ok(false)`); `Err` names one missing beside the others.
pub fn all_stored(payload: &mut Payload) -> Result<bool, String> {
    let names = names(payload.manifest());
    let stored: Vec<bool> = (names.iter())
        .map(|name| payload.archive().index_for_name(name).is_some())
        .collect();
    match stored.iter().position(|stored| !stored) {
        None => Ok(true),
        Some(_) if !stored.contains(&true) => Ok(false),
        Some(index) => Err(format!(
            "{} is missing, while the artifact holds its other SBOMs",
            names[index]
        )),
    }
}
