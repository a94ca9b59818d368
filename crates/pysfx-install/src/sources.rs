//! Which release beside DEST a new one links its wheels' files from: complete releases of the
//! same app for the same Python `X.Y`, LINK's target first, then the newest (by the install
//! time in their receipts); for each wheel, the first of them that installed the very same
//! wheel (same SHA-256).

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};
use pysfx_format::{Manifest, WheelEntry};
use pysfx_release::receipt::Receipt;

use crate::stamps::Stamps;
use crate::wheel::LinkSource;

/// A release that may be linked from, the SHA-256 of every wheel it installed, and of every
/// byte-code bundle its artifact carried; once [`hold_sources`] chose it, a shared lock on its
/// lock file, held as long as the candidate is.
#[derive(Debug)]
pub struct Candidate {
    pub source: Arc<LinkSource>,
    pub wheels: HashSet<String>,
    pub bundles: HashSet<String>,
    lock: Option<Flock<File>>,
    /// The release as it was when chosen (see [`check_unmoved`]).
    held: Option<HeldRelease>,
}

/// The releases of `app` beside `destination` for Python `version`, complete by a quick look,
/// `preferred` (LINK's target) first, then newest first. `destination` itself is never one.
/// The other releases of `app` there come second, each with why it is not a candidate (for a
/// thin artifact's message, when one of them held a wheel it needs). `left_out` are a thin
/// artifact's left-out wheels, each by its SHA-256 and its RECORD's: a release whose receipt
/// gives such a wheel another RECORD does not serve it (the husk's rows are filled in from the
/// release and must come out the wheel's own RECORD, every row of it).
pub fn link_candidates(
    destination: &Path,
    app: &str,
    version: (u32, u32),
    preferred: Option<&Path>,
    left_out: &[(&str, &str)],
) -> (Vec<Candidate>, Vec<PassedOver>) {
    let mut refused = Vec::new();
    let Some(parent) = destination.parent() else {
        return (Vec::new(), refused);
    };
    let Ok(releases) = pysfx_release::status::releases_in(parent, app) else {
        return (Vec::new(), refused);
    };
    let preferred = preferred.and_then(identity);
    let mut found = Vec::new();
    for (name, path, receipt) in releases {
        let reason = if path.as_path() == destination {
            continue;
        } else if std::fs::symlink_metadata(&path).is_err() {
            // Removed (a `--keep` of another deploy) since the directory was listed.
            Some("it was removed while this install looked".to_string())
        } else if !pysfx_release::release::is_trusted(&path) {
            Some("it is another user's".to_string())
        } else if python_x_y(&receipt.python_version) != Some(version) {
            Some(format!(
                "it was installed for Python {}",
                receipt.python_version
            ))
        } else {
            pysfx_release::release::incomplete_to_link_from(&path, &receipt)
        };
        if let Some(reason) = reason {
            refused.push(PassedOver::new(
                path,
                installed_wheels(&receipt, &|_| true),
                reason,
            ));
            continue;
        }
        let other_record = |entry: &WheelEntry| {
            (left_out.iter()).any(|(sha256, record)| {
                entry.sha256 == *sha256 && entry.record_sha256.as_ref().is_some_and(|r| r != record)
            })
        };
        let others = installed_wheels(&receipt, &other_record);
        if !others.is_empty() {
            let reason = "its receipt gives a wheel another RECORD than this artifact does";
            refused.push(PassedOver::new(path.clone(), others, reason.into()));
        }
        let wheels = installed_wheels(&receipt, &|entry| !other_record(entry));
        let first = preferred.is_some() && identity(&path) == preferred;
        found.push((first, name, path, receipt, wheels));
    }
    found.sort_by(|a, b| link_order((b.0, &b.1, &b.3), (a.0, &a.1, &a.3)));
    let candidates = found
        .into_iter()
        .map(|(_, _, path, receipt, wheels)| Candidate {
            // Its stamps are read once it is held (see `hold_sources`).
            source: Arc::new(LinkSource::unstamped(&path)),
            wheels,
            bundles: receipt
                .manifest
                .bytecode
                .iter()
                .filter(|bundle| !bundle.sha256.is_empty())
                .map(|bundle| bundle.sha256.clone())
                .collect(),
            lock: None,
            held: None,
        })
        .collect();
    (candidates, refused)
}

/// The candidates the wheels with SHA-256s `wanted` are to come from — for each wheel the first
/// that installed it — each holding a shared lock on its release's lock file while it is kept
/// (see [`share_lock`]); the others are let go. One whose lock another run holds, or whose
/// `venv` is not a directory of its own once locked (gone, or a link: its files are reached
/// only through its own `venv`), is passed over for the next, and listed with the reason.
/// A release's stamps, read ahead by [`prefetch_stamps`], are taken for it rather than read
/// again.
pub fn hold_sources(
    candidates: Vec<Candidate>,
    wanted: &[&str],
    mut prefetched: Option<Prefetched>,
) -> (Vec<Candidate>, Vec<PassedOver>) {
    let mut left: Vec<&str> = wanted.to_vec();
    let mut held = Vec::new();
    let mut passed_over = Vec::new();
    for mut candidate in candidates {
        if !left.iter().any(|sha256| candidate.wheels.contains(*sha256)) {
            continue;
        }
        let release = candidate.source.release.clone();
        let lock = match share_lock(&release) {
            Ok(lock) => lock,
            Err(refused) => {
                passed_over.push(PassedOver {
                    in_use: matches!(refused, pysfx_release::prune::LockRefused::Held),
                    reason: refused.to_string(),
                    wheels: candidate.wheels,
                    release,
                });
                continue;
            }
        };
        let Some(opened) = HeldRelease::open(&release) else {
            let reason = "it or its venv is no longer a directory of its own (gone, or a link)";
            passed_over.push(PassedOver::new(release, candidate.wheels, reason.into()));
            continue;
        };
        candidate.held = Some(opened);
        candidate.lock = lock;
        let stamps = match prefetched.take() {
            Some(ahead) if ahead.release == release => ahead.stamps,
            other => {
                prefetched = other;
                Stamps::read(&release).map(Arc::new)
            }
        };
        candidate.source = Arc::new(LinkSource::with_stamps(&release, stamps));
        left.retain(|sha256| !candidate.wheels.contains(*sha256));
        held.push(candidate);
    }
    (held, passed_over)
}

/// The stamps of the release beside DEST an install is likeliest to link from, read ahead
/// (while the interpreter answers, say: see [`prefetch_stamps`]).
#[derive(Debug)]
pub struct Prefetched {
    release: PathBuf,
    stamps: Option<Arc<Stamps>>,
}

/// Reads ahead the stamps (the largest thing a linked install reads of a release beside DEST)
/// of the release of `app` that [`link_candidates`] puts first whatever the Python: `preferred`
/// (LINK's target), else the newest. Only a guess: [`hold_sources`] reads the stamps of any
/// other release it holds, and a wrong guess costs the read.
pub fn prefetch_stamps(
    destination: &Path,
    app: &str,
    preferred: Option<&Path>,
) -> Option<Prefetched> {
    let releases = pysfx_release::status::releases_in(destination.parent()?, app).ok()?;
    let preferred = preferred.and_then(identity);
    let first = |path: &Path| preferred.is_some() && identity(path) == preferred;
    let (_, release, _) = (releases.into_iter())
        .filter(|(_, path, _)| path.as_path() != destination)
        .max_by(|a, b| link_order((first(&a.1), &a.0, &a.2), (first(&b.1), &b.0, &b.2)))?;
    let stamps = Stamps::read(&release).map(Arc::new);
    Some(Prefetched { release, stamps })
}

/// A release by device and inode: LINK's target is found by identity (a release elsewhere of
/// the same name is not it).
fn identity(path: &Path) -> Option<(u64, u64)> {
    (std::fs::symlink_metadata(path).ok()).map(|metadata| (metadata.dev(), metadata.ino()))
}

/// The order releases are linked from, greatest first: LINK's target (`.0`), then the newest
/// by its receipt's install time, then by name.
fn link_order(a: (bool, &String, &Receipt), b: (bool, &String, &Receipt)) -> std::cmp::Ordering {
    (a.0.cmp(&b.0))
        .then_with(|| {
            (a.2.installed_at, a.2.installed_at_nanos)
                .cmp(&(b.2.installed_at, b.2.installed_at_nanos))
        })
        .then_with(|| a.1.cmp(b.1))
}

/// A release [`hold_sources`] or [`link_candidates`] did not take, the wheels it installed
/// (that it could have served), and why.
#[derive(Debug)]
pub struct PassedOver {
    pub release: PathBuf,
    pub wheels: HashSet<String>,
    /// Another run holds its lock: trying again once that run ends may find it.
    pub in_use: bool,
    pub reason: String,
}

impl PassedOver {
    pub fn new(release: PathBuf, wheels: HashSet<String>, reason: String) -> Self {
        PassedOver {
            release,
            wheels,
            in_use: false,
            reason,
        }
    }
}

/// A release linked from, as it was when chosen: its directory and its `venv` (never links),
/// by device and inode. Its files are reached by name, the cheapest way; [`check_unmoved`]
/// then tells whether those names still led there once the install is done.
#[derive(Debug)]
struct HeldRelease {
    release: (u64, u64),
    venv: (u64, u64),
}

impl HeldRelease {
    /// `None` when `release` or its `venv` is no directory of its own (gone, or a link).
    fn open(release: &Path) -> Option<HeldRelease> {
        let directory = std::fs::symlink_metadata(release).ok()?;
        let venv = std::fs::symlink_metadata(release.join("venv")).ok()?;
        if !directory.is_dir() || !venv.is_dir() {
            return None;
        }
        Some(HeldRelease {
            release: (directory.dev(), directory.ino()),
            venv: (venv.dev(), venv.ino()),
        })
    }
}

/// Checks, once the install is done and before it is renamed into place, that each release it
/// linked from is still the directory it was when chosen: a release renamed away and replaced
/// by a link to elsewhere while the install ran would have led the links there. Returns the
/// first that moved.
pub fn check_unmoved(candidates: &[Candidate]) -> Result<(), PathBuf> {
    for candidate in candidates {
        let Some(held) = &candidate.held else {
            continue;
        };
        let release = &candidate.source.release;
        let identity = |path: &Path| {
            std::fs::symlink_metadata(path)
                .ok()
                .filter(|metadata| metadata.is_dir())
                .map(|metadata| (metadata.dev(), metadata.ino()))
        };
        if identity(release) != Some(held.release)
            || identity(&release.join("venv")) != Some(held.venv)
        {
            return Err(release.clone());
        }
    }
    Ok(())
}

/// A shared `flock` on the lock file of `release` (`.<name>.pysfx-lock` beside it, which its
/// install left), held while an install links from it. `--keep` and `--force` lock a release
/// exclusively, without waiting, before they remove or replace it: so they leave alone a
/// release an install is linking from (`--keep` warns and keeps it), and an install does not
/// link from one being removed. `Ok(None)` when there is no lock file; `Err` when another run
/// holds the lock exclusively, or it is no regular file.
fn share_lock(release: &Path) -> Result<Option<Flock<File>>, pysfx_release::prune::LockRefused> {
    let name = release.file_name().unwrap_or_default().to_string_lossy();
    let path = release.with_file_name(format!(".{name}.pysfx-lock"));
    pysfx_release::prune::try_lock(&path, FlockArg::LockSharedNonblock)
}

/// The first candidate that installed the wheel with `sha256`.
pub fn source_for(candidates: &[Candidate], sha256: &str) -> Option<Arc<LinkSource>> {
    candidate_for(candidates, sha256).map(|candidate| Arc::clone(&candidate.source))
}

/// The first candidate that installed the wheel with `sha256`.
pub fn candidate_for<'c>(candidates: &'c [Candidate], sha256: &str) -> Option<&'c Candidate> {
    candidates
        .iter()
        .find(|candidate| candidate.wheels.contains(sha256))
}

/// Whether the byte-code of a wheel that `candidate` installed may be linked from it, given
/// the SHA-256s of the bundles this artifact carries for the wheel: only from a release
/// whose artifact carried the very same bundles (the header of a `.pyc` says which source it
/// was compiled from, nothing of the code in it, so byte-code compiled from the same source by
/// another packer is not the same). A wheel with no bundle here is compiled at install (or is
/// a thin artifact's left-out wheel): the release's byte-code for the same source is taken.
pub fn bytecode_from(candidate: &Candidate, bundles: &[&str]) -> bool {
    bundles
        .iter()
        .all(|sha256| !sha256.is_empty() && candidate.bundles.contains(*sha256))
}

/// `3.11.7` → `(3, 11)`.
fn python_x_y(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The SHA-256 of every wheel a receipt says was installed (of those `keep` keeps), from the
/// manifest it recorded (the wheels of the set it installed, and the bootstrap wheels offered
/// to every set).
fn installed_wheels(receipt: &Receipt, keep: &dyn Fn(&WheelEntry) -> bool) -> HashSet<String> {
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
                .filter(|entry| keep(entry))
                .map(|entry| entry.sha256.clone())
        })
        .collect()
}
