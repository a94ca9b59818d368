//! `--keep N`: remove old releases of the app beside DEST.
//!
//! Unlike Capistrano's `keep_releases` (modification times; its issues #552 and #1810 pruned
//! the wrong release), the order is the install time each receipt records. Only real
//! directories holding a receipt of this app are candidates: a stray directory, a release of
//! another app, a symlink, are never touched. Removal never follows a link: a release is
//! renamed to a hidden trash name beside it, then removed with `remove::remove_dir_all`, which
//! removes symbolic links inside the tree and not what they point at. A release that cannot be
//! removed (files the app made as another user) is reported and the deploy goes on; its trash
//! is retried by the next prune. A leftover another user owns is not touched (except by
//! root); nor is another user's release, which is not counted either (root counts and prunes
//! one only in a directory no other user may write: `release::is_trusted`).

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::status::releases_in;

/// What a prune did.
#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    /// Releases removed.
    pub pruned: Vec<PathBuf>,
    /// Releases of the app that remain, newest first.
    pub kept: Vec<PathBuf>,
    /// Releases that could not be removed (fully), and why.
    pub not_pruned: Vec<NotPruned>,
    /// Leftovers of interrupted runs removed.
    pub leftovers: Vec<PathBuf>,
}

/// A release that stays, or stays in part, and why.
#[derive(Debug, Serialize)]
pub struct NotPruned {
    pub path: PathBuf,
    pub error: String,
}

/// Keeps the `keep` newest releases of `app` in DEST's directory, every release in
/// `protected` (LINK's target, the release it replaced), and whichever release `link` serves
/// when its removal begins (read again under that release's lock: another run may have moved
/// LINK back to it since, `--activate` holding the release's lock until LINK has moved);
/// removes the other releases of the app, leftovers of interrupted runs, and the lock files of
/// the releases it removed. `removing` is shown each tree about to be removed, moved aside
/// under its lock (the install unlinks the files it shares with DEST first: see
/// `pysfx_install::stamps::Restamper`).
pub fn prune(
    destination: &Path,
    keep: usize,
    app: &str,
    protected: &[&Path],
    link: Option<&Path>,
    removing: &mut dyn FnMut(&Path),
) -> PruneReport {
    prune_with(
        destination,
        keep,
        app,
        protected,
        link,
        PruneHooks {
            removing,
            step: &|remove| remove(),
            removed: &|_| {},
        },
    )
}

/// What [`prune_with`] tells its caller as it goes, and how it runs each removal.
pub struct PruneHooks<'a> {
    /// Shown each tree about to be removed, moved aside under its lock.
    pub removing: &'a mut dyn FnMut(&Path),
    /// Runs one removal (a release's, or the leftovers'): the stub runs it holding what a
    /// signal waits for, so a signal stops the prune between two releases, never within one.
    pub step: &'a dyn Fn(&mut dyn FnMut()),
    /// Told each release removed, within its step.
    pub removed: &'a dyn Fn(&Path),
}

/// [`prune`], each removal a step of `hooks`.
pub fn prune_with(
    destination: &Path,
    keep: usize,
    app: &str,
    protected: &[&Path],
    link: Option<&Path>,
    hooks: PruneHooks<'_>,
) -> PruneReport {
    let PruneHooks {
        removing,
        step,
        removed: told,
    } = hooks;
    let mut report = PruneReport::default();
    let Some(directory) = destination.parent() else {
        return report;
    };
    let mut protected: Vec<(u64, u64)> = protected
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    // Another link beside LINK or DEST (`staging` beside `current`) serves its release too.
    let mut beside = vec![directory];
    beside.extend(
        link.and_then(Path::parent)
            .filter(|parent| *parent != directory),
    );
    protected.extend(served_by_links(&beside));
    let mut releases = match releases_in(directory, app) {
        Ok(releases) => releases,
        Err(error) => {
            warn!("--keep: {error}");
            return report;
        }
    };
    releases.sort_by(|a, b| {
        (b.2.installed_at, b.2.installed_at_nanos, &b.0).cmp(&(
            a.2.installed_at,
            a.2.installed_at_nanos,
            &a.0,
        ))
    });
    // The oldest complete releases go until `keep` complete ones remain (SPEC), those always
    // kept counted among them: LINK's target, the release it replaced, one another link
    // serves — they stay even when they alone are more. Only complete releases are counted
    // and removed: one a quick look finds incomplete, or a copy of a release (`cp -a 1
    // 1.bak`, a directory holding a copy of a receipt), is kept and not counted, whatever its
    // age, as `--status` shows it ("no").
    let mut complete = 0usize;
    // Complete releases that may go, newest first.
    let mut removable = Vec::new();
    // What stays, by its place among the releases (newest first), as the report lists it.
    let mut kept = Vec::new();
    for (rank, (name, path, receipt)) in releases.into_iter().enumerate() {
        // Another user's release where anyone may write: not counted, not touched.
        if !crate::release::is_trusted(&path) {
            debug!("--keep: passing over {}: another user's", path.display());
            continue;
        }
        let metadata = std::fs::symlink_metadata(&path).ok();
        let identity = metadata.as_ref().map(|m| (m.dev(), m.ino()));
        let is_protected = identity.is_some_and(|id| protected.contains(&id));
        // One that stays in any case is counted by the look at a glance (the new release
        // itself was just made); one that may go has every recorded file looked for.
        let unfit = match is_protected {
            true => crate::release::incomplete(&path, &receipt),
            false => crate::release::not_complete(&path, &receipt)
                .or_else(|| crate::release::moved(&path, &receipt)),
        };
        match (unfit, is_protected) {
            (Some(reason), _) => {
                debug!(
                    "--keep: keeping {}, not counted (not a complete release: {reason})",
                    path.display()
                );
                kept.push((rank, path));
            }
            (None, true) => {
                complete += 1;
                debug!("--keep: keeping {} (always kept)", path.display());
                kept.push((rank, path));
            }
            (None, false) => {
                complete += 1;
                removable.push((rank, name, path));
            }
        }
    }
    let going = removable.split_off(
        removable
            .len()
            .saturating_sub(complete.saturating_sub(keep)),
    );
    for (rank, _, path) in removable {
        debug!("--keep: keeping {}", path.display());
        kept.push((rank, path));
    }
    // The oldest first: a prune cut short (a signal between two removals, a failure) leaves
    // the newer releases, the likelier rollback targets.
    for (rank, name, path) in going.into_iter().rev() {
        // (Another user's release never gets here: `is_trusted` passed over it above.)
        let mut outcome = None;
        step(&mut || {
            let removed = remove_release(directory, &name, link, &mut *removing);
            if let Ok(true) = removed {
                told(&path);
            }
            outcome = Some(removed);
        });
        let Some(removed) = outcome else {
            kept.push((rank, path));
            continue;
        };
        match removed {
            Ok(false) => {
                info!(
                    "kept {}: LINK was moved back to it while old releases were removed",
                    path.display()
                );
                kept.push((rank, path));
            }
            Ok(true) => {
                info!("removed the old release {}", path.display());
                report.pruned.push(path);
            }
            Err(error) => {
                warn!(
                    "could not remove the old release {}: {error}",
                    path.display()
                );
                report.not_pruned.push(NotPruned { path, error });
            }
        }
    }
    kept.sort_by_key(|(rank, _)| *rank);
    report.kept = kept.into_iter().map(|(_, path)| path).collect();
    step(&mut || {
        let (leftovers, finished) =
            remove_leftovers(directory, &mut *removing, &mut report.not_pruned);
        report.leftovers = leftovers;
        // Releases an earlier run began to remove: older than those removed now, so listed
        // before them (`pruned` is oldest first).
        for (at, release) in finished.into_iter().enumerate() {
            told(&release);
            info!("removed the rest of the old release {}", release.display());
            report.pruned.insert(at, release);
        }
        remove_orphan_locks(directory);
    });
    report
}

/// How many entries of a directory [`served_by_links`] looks at, at most.
const MAX_LINKS_SCANNED: usize = 10_000;

/// The identities (device, inode) of the directories the symbolic links in `directories`
/// lead to or into (`current -> releases/5`, or `python -> releases/5/venv/bin/python`): a
/// release one of them serves is kept whatever its age.
fn served_by_links(directories: &[&Path]) -> Vec<(u64, u64)> {
    let mut served = Vec::new();
    for directory in directories {
        let Ok(entries) = std::fs::read_dir(directory) else {
            continue;
        };
        for entry in entries.flatten().take(MAX_LINKS_SCANNED) {
            if !entry.file_type().is_ok_and(|kind| kind.is_symlink()) {
                continue;
            }
            debug!(
                "--keep: {} serves {:?}; it is kept",
                entry.path().display(),
                std::fs::read_link(entry.path()).unwrap_or_default()
            );
            served_along(&entry.path(), &mut served);
        }
    }
    served
}

/// How many links [`served_along`] follows from one, at most (the kernel's own limit).
const MAX_HOPS: usize = 40;

/// Adds the directories the link `link` leads into to `served`, hop by hop: each link's
/// target, its directory resolved, and that directory's ancestors. Resolving the whole chain
/// at once would miss a release it passes through: `python -> releases/5/venv/bin/python`
/// ends at the base interpreter, outside every release.
fn served_along(link: &Path, served: &mut Vec<(u64, u64)>) {
    let mut at = link.to_path_buf();
    for _ in 0..MAX_HOPS {
        let Ok(target) = std::fs::read_link(&at) else {
            return;
        };
        let target = match at.parent() {
            Some(parent) => parent.join(target),
            None => target,
        };
        // The directory the target's last name is in, resolved; a target ending in `..`
        // names a directory itself.
        let (directory, name) = match target.file_name() {
            Some(name) => (target.parent(), Some(name)),
            None => (Some(target.as_path()), None),
        };
        let Some(Ok(directory)) = directory.map(std::fs::canonicalize) else {
            return;
        };
        for ancestor in directory.ancestors() {
            let metadata = std::fs::metadata(ancestor).ok();
            if let Some(metadata) = metadata.filter(std::fs::Metadata::is_dir) {
                served.push((metadata.dev(), metadata.ino()));
            }
        }
        let Some(name) = name else {
            return;
        };
        at = directory.join(name);
        match std::fs::symlink_metadata(&at) {
            Ok(metadata) if metadata.file_type().is_symlink() => continue,
            Ok(metadata) if metadata.is_dir() => {
                served.push((metadata.dev(), metadata.ino()));
                return;
            }
            _ => return,
        }
    }
}

/// The release of `app` beside `destination` installed last before it (by the install times
/// in their receipts): the one LINK pointed at before DEST in a run of deploys, which
/// `--keep` keeps for a rollback when LINK did not move this time.
pub fn installed_before(destination: &Path, app: &str) -> Option<PathBuf> {
    let directory = destination.parent()?;
    let own = crate::receipt::read(destination)?;
    let own = (own.installed_at, own.installed_at_nanos);
    releases_in(directory, app)
        .ok()?
        .into_iter()
        .filter(|(_, path, receipt)| {
            path != destination && (receipt.installed_at, receipt.installed_at_nanos) < own
        })
        .max_by_key(|(name, _, receipt)| {
            (
                receipt.installed_at,
                receipt.installed_at_nanos,
                name.clone(),
            )
        })
        .map(|(_, path, _)| path)
}

/// Whether this run may remove `path`: its owner's, or root's to remove whatever it is.
fn is_ours(path: &Path) -> bool {
    let euid = nix::unistd::geteuid().as_raw();
    euid == 0 || std::fs::symlink_metadata(path).is_ok_and(|m| m.uid() == euid)
}

/// Removes release `name` under its lock: renamed to `.<name>.pysfx-trash-<pid>`, then that
/// tree removed, then the lock file. A run holding the lock (installing or re-running it)
/// keeps it; `Ok(false)`: `link` serves it now, and it stays.
fn remove_release(
    directory: &Path,
    name: &str,
    link: Option<&Path>,
    removing: &mut dyn FnMut(&Path),
) -> Result<bool, String> {
    let lock_path = directory.join(format!(".{name}.pysfx-lock"));
    let lock = try_lock(&lock_path, FlockArg::LockExclusiveNonblock)?;
    let identity = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let served = link.and_then(identity);
    if served.is_some() && served == identity(&directory.join(name)) {
        return Ok(false);
    }
    if let Some(point) = crate::paths::mounts_below(&directory.join(name)).first() {
        return Err(mounted(point));
    }
    let trash = directory.join(format!(".{name}.pysfx-trash-{}", std::process::id()));
    std::fs::rename(directory.join(name), &trash).map_err(|error| error.to_string())?;
    // The receipt first: what a killed prune leaves is then a leftover, not a release.
    let _ = std::fs::remove_file(trash.join(crate::receipt::RECEIPT_NAME));
    removing(&trash);
    remove_tree_saying_where(&trash).map_err(|error| {
        format!(
            "{error}; what remains is in {} (removed by a later --keep once it can be)",
            trash.display()
        )
    })?;
    if lock.is_some() {
        let _ = std::fs::remove_file(&lock_path);
    }
    Ok(true)
}

/// Why a tree with a filesystem mounted in it is not removed.
pub fn mounted(point: &Path) -> String {
    format!(
        "a filesystem is mounted at {} (in it, or on it), which removing it would empty; \
         unmount it first",
        point.display()
    )
}

/// [`remove_tree`], its error saying where in the tree the removal stopped ([`first_left`]).
fn remove_tree_saying_where(path: &Path) -> Result<(), String> {
    remove_tree(path).map_err(|error| match first_left(path, 0) {
        Some(left) => format!("{error} (at {})", left.display()),
        None => error.to_string(),
    })
}

/// How deep [`first_left`] looks (a path then still fits in `PATH_MAX`, a directory name a
/// few bytes long).
const MAX_DEPTH_SHOWN: usize = 1024;

/// What a failed removal left first in the tree at `directory`, depth first: where the
/// removal stopped (a file it could not remove, or in a directory it could not empty), for
/// the operator to look at. Only reads; a directory is entered by its `lstat` alone.
fn first_left(directory: &Path, depth: usize) -> Option<PathBuf> {
    let entry = std::fs::read_dir(directory).ok()?.flatten().next()?;
    let path = entry.path();
    match entry.file_type() {
        Ok(kind) if kind.is_dir() && depth < MAX_DEPTH_SHOWN => {
            first_left(&path, depth + 1).or(Some(path))
        }
        _ => Some(path),
    }
}

/// Removes a tree, or the link or file at `path`, never following a link.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => crate::remove::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Why [`try_lock`] took no lock.
#[derive(Debug)]
pub enum LockRefused {
    /// The lock file cannot be opened (no permission to read it, …).
    Open(PathBuf, std::io::Error),
    /// Anything but a regular file is there (a FIFO, a directory, a link).
    NotAFile(PathBuf),
    /// Another run holds it, or removed it meanwhile.
    Held,
}

impl std::fmt::Display for LockRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockRefused::Open(path, error) => {
                write!(f, "cannot open its lock {}: {error}", path.display())
            }
            LockRefused::NotAFile(path) => {
                write!(f, "its lock {} is not a regular file", path.display())
            }
            LockRefused::Held => f.write_str("another pysfx run holds its lock"),
        }
    }
}

impl From<LockRefused> for String {
    fn from(refused: LockRefused) -> String {
        refused.to_string()
    }
}

/// Takes the lock file at `path` (`kind`: exclusive or shared) without waiting, never through
/// a link or from a FIFO, and never making it. `Ok(None)`: there is no lock file (no run ever
/// locked it, or its lock was removed); `Err`: a run holds it, or the file is no regular file.
pub fn try_lock(path: &Path, kind: FlockArg) -> Result<Option<Flock<File>>, LockRefused> {
    use nix::libc::{O_CLOEXEC, O_NOFOLLOW, O_NONBLOCK};
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(LockRefused::NotAFile(path.to_path_buf()))
        }
        Err(error) => return Err(LockRefused::Open(path.to_path_buf(), error)),
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(LockRefused::NotAFile(path.to_path_buf()));
    }
    let lock = Flock::lock(file, kind).map_err(|_| LockRefused::Held)?;
    // A lock file a prune removed between the open and the lock protects nothing: the next
    // run makes another at the name. Taken as held: whoever removed it was working there.
    if !still_names(path, &lock) {
        return Err(LockRefused::Held);
    }
    Ok(Some(lock))
}

/// Whether `path` still names the file `file` has open (a lock file is removed with its
/// release, and one opened just before is then a lock on nothing).
pub fn still_names(path: &Path, file: &File) -> bool {
    match (std::fs::symlink_metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => named.dev() == open.dev() && named.ino() == open.ino(),
        _ => false,
    }
}

/// Removes what killed runs left beside the releases: `.<name>.pysfx-tmp-*`, `-old-*` and
/// `-trash-*` trees, each only when no run holds `<name>`'s lock. An `-old-` tree holding a
/// release while `<name>` is missing is a release an interrupted `--force` moved aside; the
/// next run on `<name>` puts it back, so it stays. Returns the trees removed, and the
/// releases whose removal that finished: a `-trash-` tree is the rest of a release an earlier
/// `--keep` could not remove (its `not_pruned`) or was stopped removing, when the release's
/// lock file is still there (a removal takes it last) and no release of the name stands
/// there since.
fn remove_leftovers(
    directory: &Path,
    removing: &mut dyn FnMut(&Path),
    not_removed: &mut Vec<NotPruned>,
) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut removed = Vec::new();
    let mut finished = Vec::new();
    let Ok(entries) = std::fs::read_dir(directory) else {
        return (removed, finished);
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some((name, kind)) = leftover(&file_name) else {
            continue;
        };
        // This run's own trash: what is left of a release it could not remove, already
        // reported (`not_pruned`) and left for a later `--keep`.
        if file_name.ends_with(&format!(".pysfx-trash-{}", std::process::id())) {
            continue;
        }
        if !is_ours(&entry.path()) {
            continue;
        }
        let lock_path = directory.join(format!(".{name}.pysfx-lock"));
        let Ok(lock) = try_lock(&lock_path, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        let release = directory.join(name);
        if kind == "old"
            && std::fs::symlink_metadata(&release).is_err()
            && entry.path().join(crate::receipt::RECEIPT_NAME).is_file()
        {
            continue;
        }
        if holds_a_release(&entry.path()) {
            continue;
        }
        if let Some(point) = crate::paths::mounts_below(&entry.path()).first() {
            warn!("{} is left: {}", entry.path().display(), mounted(point));
            continue;
        }
        // Said once: a leftover that cannot be removed is the warning (a `-trash-` one is
        // what an earlier --keep could not remove, and is tried again).
        info!(
            "removing {}, left by an earlier run",
            entry.path().display()
        );
        removing(&entry.path());
        match remove_tree_saying_where(&entry.path()) {
            Ok(()) => {
                if kind == "trash" && lock.is_some() && std::fs::symlink_metadata(&release).is_err()
                {
                    finished.push(release.clone());
                }
                removed.push(entry.path());
            }
            // Reported in `--json` (`not_pruned`) on every run that tries again, not only
            // the first.
            Err(error) => {
                warn!("could not remove {}: {error}", entry.path().display());
                not_removed.push(NotPruned {
                    path: entry.path(),
                    error,
                });
            }
        }
        // A lock with no release left to guard goes too.
        if lock.is_some() && std::fs::symlink_metadata(&release).is_err() {
            let _ = std::fs::remove_file(directory.join(format!(".{name}.pysfx-lock")));
        }
    }
    (removed, finished)
}

/// Removes the lock files of releases that are not there and have no leftover (a run refused
/// before it wrote anything, say a thin artifact without its base, leaves its lock): each
/// only when this run can take it (no run holds it; one that opens it meanwhile opens the
/// name again, see [`still_names`]).
fn remove_orphan_locks(directory: &Path) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    for file_name in &names {
        let Some(name) = (file_name.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(".pysfx-lock"))
            .filter(|name| !name.is_empty())
        else {
            continue;
        };
        let leftover = format!(".{name}.pysfx-");
        let kept = names
            .iter()
            .any(|other| other == name || (other.starts_with(&leftover) && other != file_name));
        let path = directory.join(file_name);
        let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if kept || !regular || !is_ours(&path) {
            continue;
        }
        if let Ok(Some(_lock)) = try_lock(&path, FlockArg::LockExclusiveNonblock) {
            if std::fs::symlink_metadata(directory.join(name)).is_err() {
                let _ = std::fs::remove_file(&path);
                debug!("removed {}, the lock of no release", path.display());
            }
        }
    }
}

/// Whether a leftover's name holds a whole release (a receipt in it) that may not be removed.
/// A run killed between writing its receipt and renaming its tree into place leaves one
/// (`-tmp-`), and so does one killed between a `--force`'s renames (the replaced release, as
/// `-tmp-` or `-old-`): when the process its name ends with is gone, it is that, and goes.
/// So it is when that process is this one: a run killed in another PID namespace (each deploy
/// in a fresh container) had this run's id, and this run has made no such tree yet. Otherwise
/// (another process of that id runs, or no id) it may be a release someone renamed there,
/// and removing it would destroy it: left alone, with a warning. (Callers hold the lock of
/// the release the leftover is named for, which every run on it holds.)
pub fn holds_a_release(path: &Path) -> bool {
    let holds = std::fs::symlink_metadata(path.join(crate::receipt::RECEIPT_NAME))
        .is_ok_and(|metadata| metadata.is_file());
    let pid = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.rsplit('-').next())
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<i32>().ok())
        .filter(|pid| *pid > 0);
    let gone = pid.is_some_and(|pid| {
        u32::try_from(pid) == Ok(std::process::id())
            || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH)
    });
    if holds && gone {
        debug!(
            "{} holds the release a killed run left; removed",
            path.display()
        );
        return false;
    }
    if holds {
        warn!(
            "{} is named as a leftover of an interrupted run but holds a release, and the \
             process its name ends with runs: left alone (if that process is no pysfx run, \
             remove it yourself)",
            path.display()
        );
    }
    holds
}

/// `.<name>.pysfx-<kind>-<pid…>` → `(name, kind)` for the kinds a run leaves: `tmp`, `old`,
/// `trash`.
fn leftover(file_name: &str) -> Option<(&str, &str)> {
    let rest = file_name.strip_prefix('.')?;
    let (name, tail) = rest.rsplit_once(".pysfx-")?;
    let (kind, _) = tail.split_once('-')?;
    (["tmp", "old", "trash"].contains(&kind) && !name.is_empty()).then_some((name, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file names of `paths`, in order.
    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect()
    }
    use crate::testing::fake_release;

    /// A leftover holding a release, named with a live process's id, is left alone (it may be
    /// a release renamed there); named with this process's own id, it is a leftover of a run
    /// killed in another PID namespace (each deploy in a fresh container gets the same id),
    /// which would otherwise be in the way of this run's own temporary tree for good.
    #[test]
    fn a_leftover_named_with_this_process_id_is_no_live_run() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let ours = format!(".2.pysfx-tmp-{}", std::process::id());
        let ours = fake_release(temporary.path(), &ours, "mysite", 1);
        assert!(!holds_a_release(&ours));
        // Process 1 runs in every PID namespace.
        let live = fake_release(temporary.path(), ".3.pysfx-tmp-1", "mysite", 1);
        assert!(holds_a_release(&live));
    }

    /// A lock file removed (its release pruned) after a run opened it is a lock on nothing:
    /// the run must see that the name no longer leads to it, and one made again there.
    #[test]
    fn a_lock_file_removed_after_it_was_opened_is_no_lock() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let path = temporary.path().join(".1.pysfx-lock");
        std::fs::write(&path, "").expect("lock file");
        let opened = File::open(&path).expect("open");
        assert!(still_names(&path, &opened));
        std::fs::remove_file(&path).expect("prune");
        assert!(!still_names(&path, &opened));
        std::fs::write(&path, "").expect("made again");
        assert!(!still_names(&path, &opened));
        let held = try_lock(&path, FlockArg::LockExclusiveNonblock).expect("free");
        assert!(matches!(
            try_lock(&path, FlockArg::LockSharedNonblock),
            Err(LockRefused::Held)
        ));
        drop(held);
        std::fs::remove_file(&path).expect("rm");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).expect("fifo");
        assert!(matches!(
            try_lock(&path, FlockArg::LockSharedNonblock),
            Err(LockRefused::NotAFile(_))
        ));
    }

    #[test]
    fn leftover_names() {
        for (name, expected) in [
            (".42.pysfx-tmp-123", Some(("42", "tmp"))),
            (".42.pysfx-old-9", Some(("42", "old"))),
            (".a.b.pysfx-trash-9", Some(("a.b", "trash"))),
            (".42.pysfx-lock", None),
            (".42.pysfx-link-3", None),
            ("42", None),
            (".pysfx-tmp-1", None),
        ] {
            assert_eq!(leftover(name), expected, "{name}");
        }
    }

    #[test]
    fn keeps_the_newest_by_receipt_and_the_protected_ones() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path().join("releases");
        std::fs::create_dir(&releases).expect("mkdir");
        // Names sort against install order; mtimes are whatever creation gave them.
        for (name, at) in [
            ("g", 1),
            ("f", 2),
            ("e", 3),
            ("d", 4),
            ("c", 5),
            ("b", 6),
            ("a", 7),
        ] {
            fake_release(&releases, name, "mysite", at);
            std::fs::write(releases.join(format!(".{name}.pysfx-lock")), "").expect("lock");
        }
        fake_release(&releases, "other", "otherapp", 0);
        std::fs::create_dir(releases.join("stray")).expect("stray");
        std::fs::create_dir(releases.join(".x.pysfx-tmp-1")).expect("leftover");
        std::fs::write(releases.join(".x.pysfx-tmp-1/file"), "x").expect("leftover file");
        // A link inside a release to something outside: removal must not follow it.
        let outside = temporary.path().join("outside");
        std::fs::create_dir(&outside).expect("outside");
        std::fs::write(outside.join("precious"), "keep me").expect("precious");
        std::os::unix::fs::symlink(&outside, releases.join("e/mysite/data")).expect("link");
        // A symlink that looks like a release is not one; it serves `g`, which stays.
        std::os::unix::fs::symlink(releases.join("g"), releases.join("alias")).expect("alias");

        // LINK moved back to `d` after the protected releases were worked out (a rollback
        // racing the prune, as the first removal, of the oldest, `e`, begins): `d` stays.
        let link = temporary.path().join("current");
        std::os::unix::fs::symlink("releases/a", &link).expect("link");
        // Five complete releases stay, `a`, `f` (LINK's target and the one it replaced) and
        // `g` (which `alias` serves) among them: the two oldest of the others go.
        let report = prune(
            &releases.join("a"),
            5,
            "mysite",
            &[&releases.join("a"), &releases.join("f")],
            Some(&link),
            &mut |_| {
                if std::fs::read_link(&link).is_ok_and(|target| target.ends_with("a")) {
                    std::fs::remove_file(&link).expect("rm link");
                    std::os::unix::fs::symlink("releases/d", &link).expect("link");
                }
            },
        );
        // Newest first, those the removals passed over (`d`) in their place too.
        assert_eq!(names(&report.kept), ["a", "b", "c", "d", "f", "g"]);
        assert_eq!(names(&report.pruned), ["e"]);
        assert!(report.not_pruned.is_empty());
        assert_eq!(names(&report.leftovers), [".x.pysfx-tmp-1"]);
        let mut left = crate::testing::listing(&releases);
        left.sort();
        assert_eq!(
            left,
            [
                ".a.pysfx-lock",
                ".b.pysfx-lock",
                ".c.pysfx-lock",
                ".d.pysfx-lock",
                ".f.pysfx-lock",
                ".g.pysfx-lock",
                "a",
                "alias",
                "b",
                "c",
                "d",
                "f",
                "g",
                "other",
                "stray"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(outside.join("precious")).expect("still there"),
            "keep me"
        );
    }

    /// The oldest release goes first: a prune a signal stops between two removals has left
    /// the newer ones, which a rollback would want.
    #[test]
    fn the_oldest_releases_are_removed_first() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path().join("releases");
        std::fs::create_dir(&releases).expect("mkdir");
        for (name, at) in [("r3", 3), ("r1", 1), ("r5", 5), ("r2", 2), ("r4", 4)] {
            fake_release(&releases, name, "mysite", at);
        }
        let order = std::cell::RefCell::new(Vec::new());
        // A signal after the second removal: the steps after it do nothing.
        let steps = std::cell::Cell::new(0);
        let report = prune_with(
            &releases.join("r5"),
            1,
            "mysite",
            &[&releases.join("r5")],
            None,
            PruneHooks {
                removing: &mut |_| {},
                step: &|remove| {
                    steps.set(steps.get() + 1);
                    if steps.get() <= 2 {
                        remove();
                    }
                },
                removed: &|path| order.borrow_mut().push(path.to_path_buf()),
            },
        );
        assert_eq!(names(&order.into_inner()), ["r1", "r2"]);
        assert_eq!(names(&report.pruned), ["r1", "r2"]);
        let mut left = crate::testing::listing(&releases);
        left.sort();
        assert_eq!(left, ["r3", "r4", "r5"]);
    }

    /// A rollback deploy (LINK moved back to an older release) keeps N releases all the same,
    /// LINK's target and the release it replaced among them: the others go, the newer ones too.
    #[test]
    fn a_rollback_keeps_n_releases_counting_the_ones_always_kept() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path().join("releases");
        std::fs::create_dir(&releases).expect("mkdir");
        for (name, at) in [("1", 1), ("2", 2), ("3", 3), ("4", 4)] {
            fake_release(&releases, name, "mysite", at);
        }
        // LINK went from 4 back to 2.
        let (two, four) = (releases.join("2"), releases.join("4"));
        let protected: [&Path; 2] = [&two, &four];
        let keep = |n| prune(&two, n, "mysite", &protected, None, &mut |_| {});
        let report = keep(2);
        assert_eq!(names(&report.pruned), ["1", "3"]);
        assert_eq!(names(&report.kept), ["4", "2"]);
        // Fewer than the ones always kept: those stay, and nothing else.
        fake_release(&releases, "5", "mysite", 5);
        let report = keep(1);
        assert_eq!(names(&report.pruned), ["5"]);
        assert_eq!(names(&report.kept), ["4", "2"]);
    }

    /// `staging` beside `current`: a deploy to one, with `--keep`, keeps what the other serves.
    #[test]
    fn a_release_another_link_serves_stays() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path().join("releases");
        std::fs::create_dir(&releases).expect("mkdir");
        for (name, at) in [("1", 1), ("2", 2), ("3", 3), ("4", 4)] {
            fake_release(&releases, name, "mysite", at);
        }
        let current = temporary.path().join("current");
        let staging = temporary.path().join("staging");
        std::os::unix::fs::symlink("releases/1", &current).expect("current");
        std::os::unix::fs::symlink(releases.join("4"), &staging).expect("staging");
        // A link to a file, or to nothing, serves nothing.
        std::fs::write(temporary.path().join("notes"), "").expect("notes");
        std::os::unix::fs::symlink("notes", temporary.path().join("to-file")).expect("to-file");
        std::os::unix::fs::symlink("releases/9", temporary.path().join("dangling"))
            .expect("dangling");
        let report = prune(
            &releases.join("4"),
            1,
            "mysite",
            &[&releases.join("4"), &releases.join("3")],
            Some(&staging),
            &mut |_| {},
        );
        assert_eq!(names(&report.pruned), ["2"]);
        assert!(releases.join("1/venv/pyvenv.cfg").exists());
    }

    /// A link into a release (to its venv's interpreter, say) serves that release too.
    #[test]
    fn a_release_a_link_leads_into_stays() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path().join("releases");
        std::fs::create_dir(&releases).expect("mkdir");
        for (name, at) in [("1", 1), ("2", 2), ("3", 3)] {
            fake_release(&releases, name, "mysite", at);
        }
        let current = temporary.path().join("current");
        std::os::unix::fs::symlink("releases/3", &current).expect("current");
        // To the venv's interpreter, itself a link out of the release (to the base Python).
        let python = temporary.path().join("python");
        std::os::unix::fs::symlink("releases/1/venv/bin/python", &python).expect("python");
        // And through another link to it (`staging -> current`-like chains).
        std::os::unix::fs::symlink("releases/2/venv/pyvenv.cfg", temporary.path().join("cfg"))
            .expect("cfg");
        std::os::unix::fs::symlink("cfg", temporary.path().join("cfg-too")).expect("chain");
        let report = prune(
            &releases.join("3"),
            1,
            "mysite",
            &[&releases.join("3")],
            Some(&current),
            &mut |_| {},
        );
        assert!(report.pruned.is_empty(), "{:?}", report.pruned);
        assert!(releases.join("1/venv/pyvenv.cfg").exists());
        assert!(releases.join("2/venv/pyvenv.cfg").exists());
    }

    #[test]
    fn an_incomplete_release_is_neither_counted_nor_removed() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path();
        for (name, at) in [("1", 1), ("2", 2), ("3", 3), ("4", 4), ("5", 5), ("6", 6)] {
            fake_release(releases, name, "mysite", at);
        }
        // 4 and 3 are broken (`--status` says "no"), 1 as well.
        for name in ["4", "3", "1"] {
            std::fs::remove_file(releases.join(name).join("venv/pyvenv.cfg")).expect("rm");
        }
        let report = prune(
            &releases.join("6"),
            3,
            "mysite",
            &[&releases.join("6")],
            None,
            &mut |_| {},
        );
        // Three complete ones (6, 5, 2) kept to roll back to; 4, 3 and 1 are not complete
        // releases: kept, not counted, never removed.
        assert_eq!(names(&report.kept), ["6", "5", "4", "3", "2", "1"]);
        assert!(report.pruned.is_empty(), "{:?}", report.pruned);
    }

    /// The lock of a release that is not there (a run refused before writing) goes; a held
    /// one, and those of releases that are there, stay.
    /// What a stopped or failed removal left (`.<name>.pysfx-trash-<pid>`), removed by a later
    /// prune, is that release's removal done: reported in `pruned`. A `-tmp-` leftover is no
    /// release, nor a `-trash-` one beside a release of that name installed since, nor one
    /// with no lock file of its name (a removal takes the lock last: no release left it).
    #[test]
    fn the_rest_of_a_release_removed_later_is_pruned() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path();
        for (name, at) in [("1", 1), ("2", 2)] {
            fake_release(releases, name, "mysite", at);
        }
        for leftover in [
            ".0.pysfx-trash-99999/mysite/uploads",
            ".1.pysfx-trash-99998/venv",
            ".3.pysfx-tmp-99997/venv",
            ".9.pysfx-trash-99996/venv",
        ] {
            std::fs::create_dir_all(releases.join(leftover)).expect("mkdir");
        }
        // The locks a removal leaves until it is done; `9` has none (no release made it).
        for name in ["0", "1", "3"] {
            std::fs::write(releases.join(format!(".{name}.pysfx-lock")), "").expect("lock");
        }
        let report = prune(&releases.join("2"), 5, "mysite", &[], None, &mut |_| {});
        assert_eq!(report.pruned, [releases.join("0")]);
        assert_eq!(report.leftovers.len(), 4, "{:?}", report.leftovers);
        assert_eq!(names(&report.kept), ["2", "1"]);
    }

    #[test]
    fn locks_of_no_release_go() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path();
        for (name, at) in [("1", 1), ("2", 2)] {
            fake_release(releases, name, "mysite", at);
            std::fs::write(releases.join(format!(".{name}.pysfx-lock")), "").expect("lock");
        }
        std::fs::write(releases.join(".5.pysfx-lock"), "").expect("orphan");
        let held = releases.join(".6.pysfx-lock");
        std::fs::write(&held, "").expect("held");
        let file = std::fs::File::open(&held).expect("open");
        let _held = Flock::lock(file, FlockArg::LockExclusiveNonblock).expect("lock");
        prune(&releases.join("2"), 5, "mysite", &[], None, &mut |_| {});
        assert!(!releases.join(".5.pysfx-lock").exists());
        assert!(held.exists());
        assert!(releases.join(".1.pysfx-lock").exists());
        assert!(releases.join(".2.pysfx-lock").exists());
    }

    #[test]
    fn a_locked_release_stays() {
        let temporary = tempfile::tempdir().expect("tempdir");
        for (name, at) in [("1", 1), ("2", 2)] {
            fake_release(temporary.path(), name, "mysite", at);
        }
        let lock_path = temporary.path().join(".1.pysfx-lock");
        let file = std::fs::File::create(&lock_path).expect("lock file");
        let _held = Flock::lock(file, FlockArg::LockExclusiveNonblock).expect("lock");
        let report = prune(
            &temporary.path().join("2"),
            1,
            "mysite",
            &[],
            None,
            &mut |_| {},
        );
        assert!(report.pruned.is_empty());
        assert_eq!(report.not_pruned.len(), 1);
        assert!(report.not_pruned[0].error.contains("holds its lock"));
        assert!(temporary.path().join("1/pysfx-receipt.json").is_file());
    }
}
