//! Which release beside DEST a new one links its wheels' files from: complete releases of the
//! same app for the same Python `X.Y`, LINK's target first, then the newest (by the install
//! time in their receipts); for each wheel, the first of them that installed the very same
//! wheel (same SHA-256).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use pysfx_format::Manifest;
use pysfx_release::receipt::Receipt;

use crate::wheel::LinkSource;

/// A release that may be linked from, and the SHA-256 of every wheel it installed.
#[derive(Debug)]
pub struct Candidate {
    pub source: Arc<LinkSource>,
    pub wheels: HashSet<String>,
}

/// The releases of `app` beside `destination` for Python `version`, complete by a quick look,
/// `preferred` (LINK's target) first, then newest first. `destination` itself is never one.
pub fn link_candidates(
    destination: &Path,
    app: &str,
    version: (u32, u32),
    preferred: Option<&Path>,
) -> Vec<Candidate> {
    let Some(parent) = destination.parent() else {
        return Vec::new();
    };
    let Ok(releases) = pysfx_release::status::releases_in(parent, app) else {
        return Vec::new();
    };
    let preferred = preferred.and_then(|path| path.file_name());
    let mut found: Vec<_> = releases
        .into_iter()
        .filter(|(_, path, receipt)| {
            path.as_path() != destination
                && python_x_y(&receipt.python_version) == Some(version)
                && pysfx_release::release::incomplete(path, receipt).is_none()
        })
        .collect();
    found.sort_by(|a, b| {
        let first = |name: &str| Some(std::ffi::OsStr::new(name)) == preferred;
        first(&b.0)
            .cmp(&first(&a.0))
            .then_with(|| {
                (b.2.installed_at, b.2.installed_at_nanos)
                    .cmp(&(a.2.installed_at, a.2.installed_at_nanos))
            })
            .then_with(|| b.0.cmp(&a.0))
    });
    found
        .into_iter()
        .map(|(_, path, receipt)| Candidate {
            source: Arc::new(LinkSource::new(&path)),
            wheels: installed_wheels(&receipt),
        })
        .collect()
}

/// The first candidate that installed the wheel with `sha256`.
pub fn source_for(candidates: &[Candidate], sha256: &str) -> Option<Arc<LinkSource>> {
    candidates
        .iter()
        .find(|candidate| candidate.wheels.contains(sha256))
        .map(|candidate| Arc::clone(&candidate.source))
}

/// `3.11.7` → `(3, 11)`.
fn python_x_y(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The SHA-256 of every wheel a receipt says was installed, from the manifest it recorded
/// (the wheels of the set it installed, and the bootstrap wheels offered to every set).
fn installed_wheels(receipt: &Receipt) -> HashSet<String> {
    let manifest: &Manifest = &receipt.manifest;
    let offered: Vec<&String> = manifest
        .sets
        .iter()
        .filter(|set| set.name == receipt.wheel_set)
        .flat_map(|set| &set.wheels)
        .chain(&manifest.bootstrap)
        .collect();
    receipt
        .wheels
        .iter()
        .filter_map(|installed| {
            offered
                .iter()
                .filter_map(|path| manifest.wheel(path))
                .find(|entry| entry.filename == installed.filename)
                .map(|entry| entry.sha256.clone())
        })
        .collect()
}
