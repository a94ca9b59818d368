//! What each SBOM an artifact stores lists, from its manifest: the packer writes them so
//! (`pysfx pack`), and every reader holds a stored one to it — the install before writing,
//! `--sbom`, `--verify`, `pysfx verify` and `pysfx inspect`.

use pysfx_format::{Manifest, Payload, WheelEntry, WheelSet, SBOM_NAME};
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

/// The wheels the stored SBOM of the whole artifact (`set` `None`) or of set `set` lists.
pub fn members(manifest: &Manifest, set: Option<usize>) -> Vec<&WheelEntry> {
    match set {
        None => (manifest.sets.iter())
            .flat_map(|set| set_members(manifest, set))
            .collect(),
        Some(index) => (manifest.sets.get(index))
            .map(|set| set_members(manifest, set))
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
/// one install of it put there, each of which it lists (the set's SBOM lists every bootstrap
/// wheel the stub may choose from, whatever the patch release of the Python it runs).
pub fn for_release(
    manifest: &Manifest,
    set: usize,
    text: &str,
    installed: &[&WheelEntry],
) -> Result<String, String> {
    let document = check_stored(manifest, Some(set), text)?;
    let cut = pysfx_format::sbom::cut(document, installed)?;
    pysfx_format::sbom::to_text(&cut).map_err(|error| error.to_string())
}

/// The payload names of the SBOMs an artifact stores: the whole artifact's, then each set's.
pub fn names(manifest: &Manifest) -> Vec<String> {
    std::iter::once(SBOM_NAME.to_string())
        .chain((0..manifest.sets.len()).map(pysfx_format::set_sbom_name))
        .collect()
}

/// Whether the artifact stores its SBOMs: all of them (`Ok(true)`), or none, as an artifact
/// packed before pysfx stored them (`Ok(false)`); `Err` names one missing beside the others,
/// or the first one missing of an artifact whose manifest says it stores them.
pub fn all_stored(payload: &mut Payload) -> Result<bool, String> {
    let names = names(payload.manifest());
    let promised = payload.manifest().sboms;
    let stored: Vec<bool> = (names.iter())
        .map(|name| payload.archive().index_for_name(name).is_some())
        .collect();
    match stored.iter().position(|stored| !stored) {
        None => Ok(true),
        Some(index) if promised && !stored.contains(&true) => Err(format!(
            "{} is missing, though the manifest says the artifact stores its SBOMs",
            names[index]
        )),
        Some(_) if !stored.contains(&true) => Ok(false),
        Some(index) => Err(format!(
            "{} is missing, while the artifact holds its other SBOMs",
            names[index]
        )),
    }
}
