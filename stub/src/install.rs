//! The install: check everything, build the release in a temporary sibling of DEST, rename it
//! into place.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pysfx_format::Payload;
use pysfx_install::stamps::Restamper;
use pysfx_install::{
    build_release, source_for, BatchLimits, Built, Candidate, InstallOptions, PassedOver,
};
use pysfx_plan::{self as plan, Plan};
use pysfx_release::prune::PruneReport;
use pysfx_venv::{BinaryIdentity, Interpreter};
use serde_json::json;
use tracing::{info, warn};

use crate::artifact::open_self;
use crate::dest::{
    absolute_path, check_free_space, check_path_lengths, check_replaceable, check_shared_symlinks,
    check_unmodified, check_unmounted, exchange, free_sibling, inspect_destination,
    remove_stale_siblings, sibling, Existing, Needed,
};
use crate::failure::{code, Failure};
use crate::held::HeldDirectory;
use crate::output::print_stdout;
use crate::progress::Progress;
use crate::{lock, signals};
use pysfx_release::link::{check_link, repoint_link};
use pysfx_release::receipt::{
    Contents, InstalledWheel, InstalledWith, Receipt, RecordedFile, RECEIPT_NAME,
};

/// What `./site.sfx -d DEST` was asked to do.
pub struct Request {
    pub destination: PathBuf,
    pub link: Option<PathBuf>,
    /// `--python`, `$PYSFX_PYTHON` or `python3`.
    pub python: String,
    pub force: bool,
    /// `--keep N`: releases of the app to keep beside DEST after the switch.
    pub keep: Option<usize>,
    pub no_compile: bool,
    /// `--copy`: never hard-link from a release beside DEST.
    pub copy: bool,
    pub json: bool,
    pub quiet: bool,
}

/// Seconds spent checking the payload, and the progress bar.
struct Phases {
    verify: f64,
    progress: Progress,
}

pub fn run(cli: &Request) -> Result<(), Failure> {
    let started = Instant::now();
    signals::install();
    let (destination, link) = request_paths(cli)?;
    // Before anything is read or written: an allocation failing midway aborts the run.
    crate::dest::check_address_space()?;

    // 1. The payload, before anything is written.
    let mut phases = Phases {
        verify: 0.0,
        progress: Progress::new(cli.quiet),
    };
    phases.progress.phase("verifying", 1);
    let mut payload = open_self()?;
    let digest = payload.digest();
    // A new DEST is always verified: the payload is hashed while the interpreter answers.
    let new_dest = std::fs::symlink_metadata(&destination).is_err();
    // Taken before the interpreter is asked: if the binary changes after, the receipt holds
    // the older identity, and the next run asks again.
    let binary = BinaryIdentity::of(&cli.python);
    let mut remembered = false;
    // Planned while the payload is hashed, on a new DEST: the wheels, and the releases beside
    // DEST to link from.
    let mut early = None;
    let (interpreter, hashed) = match new_dest {
        true => std::thread::scope(|scope| {
            let payload = &payload;
            // Without a thread to spare (`ulimit -u`), hashed after the interpreter answers,
            // as on a re-run.
            // The wheels last: those the install will link from a release beside DEST are
            // not read (`Payload::verify_sparing`), and which they are is known once the
            // interpreter has answered.
            // Then the stamps of the release beside DEST the install is likeliest to link
            // from, the most it reads of one: on the same thread, so that the interpreter,
            // whose answer everything waits for, has the other core to itself.
            let app = payload.manifest().app.name.as_str();
            let preferred = link
                .as_deref()
                .and_then(|link| served_by(link, &destination));
            let destination = destination.as_path();
            let hashing = std::thread::Builder::new()
                .spawn_scoped(scope, move || {
                    let phase = Instant::now();
                    let first = payload.hash_besides_wheels();
                    let took = phase.elapsed();
                    // The sizes the payload declares (read: the bundles' directories), told
                    // only once its digest holds.
                    let hashed = first.map(|first| (first, took, payload.check_sizes()));
                    let prefetched = (hashed.is_ok())
                        .then(|| {
                            pysfx_install::prefetch_stamps(destination, app, preferred.as_deref())
                        })
                        .flatten();
                    (hashed, prefetched)
                })
                .ok();
            let interpreter = Interpreter::query(&cli.python);
            let (hashed, prefetched) = match hashing.map(|hashing| hashing.join()) {
                Some(Ok((hashed, prefetched))) => (Some(hashed.map_err(Failure::from)), prefetched),
                Some(Err(_)) => (
                    Some(Err(Failure::new(code::OTHER, "the payload check stopped"))),
                    None,
                ),
                None => (None, None),
            };
            if let Ok(interpreter) = &interpreter {
                early = Some(plan_early(
                    payload,
                    interpreter,
                    destination,
                    (link.as_deref(), cli.copy),
                    prefetched,
                ));
            }
            (interpreter, hashed)
        }),
        // A re-run with the binary the release was installed with: its facts are in the
        // receipt. (The no-op's cost was mostly starting the interpreter.)
        false => match remembered_interpreter(&destination, &digest, &cli.python) {
            Some(interpreter) => {
                remembered = true;
                (Ok(interpreter), None)
            }
            None => (Interpreter::query(&cli.python), None),
        },
    };
    let mut interpreter = interpreter?;
    crate::failure::set_python_version(interpreter.version());
    // A re-run on a finished release writes nothing, so it need not hash the payload: the
    // trailer's digest identifies the release. Anything else is verified before writing.
    let unchanged = hashed.is_none()
        && matches!(
            inspect_destination(&destination, &digest, &interpreter, true),
            Ok(Existing::SameRelease)
        );
    if remembered && !unchanged {
        // Remembered, but something will be written: what is installed is planned from the
        // interpreter's own answer, as on a first install.
        interpreter = Interpreter::query(&cli.python)?;
        crate::failure::set_python_version(interpreter.version());
    }
    if !unchanged {
        // A wrapper answered: the binary the venv will run must start without it.
        interpreter.check_base_starts(binary.as_ref())?;
    }
    let mut verified = false;
    let parent = destination
        .parent()
        .ok_or_else(|| Failure::new(code::USAGE, "DEST cannot be the root directory"))?
        .to_path_buf();
    if !unchanged {
        match hashed {
            Some(hashed) => {
                let (first, took, sizes) = hashed?;
                let phase = Instant::now();
                // A wheel a release beside DEST installed, whose files will be linked from it.
                let candidates = match (&early, cli.copy) {
                    (Some(Ok((_, candidates))), false) => candidates.as_slice(),
                    _ => &[],
                };
                let spare_wheel = |entry: &pysfx_format::WheelEntry| {
                    (candidates.iter()).any(|candidate| candidate.wheels.contains(&entry.sha256))
                };
                // A bundle whose byte-code will be linked from a release its artifact carried.
                let spare_bundle = |bundle: &pysfx_format::BytecodeBundle| {
                    (candidates.iter()).any(|candidate| candidate.bundles.contains(&bundle.sha256))
                };
                payload.verify_sparing(first, &spare_wheel, &spare_bundle)?;
                phases.verify = (took + phase.elapsed()).as_secs_f64();
                sizes?;
            }
            None => verify(&mut payload, &mut phases)?,
        }
        verified = true;
    }

    // 2. The wheels the interpreter will get, and the releases beside DEST their files may be
    // linked from; a thin artifact's left-out wheels must be among those.
    let planned = match early {
        Some(early) => early.map_err(|failure| blame_fairly(&mut payload, failure)),
        None => (|| {
            let plan = plan::choose(payload.manifest(), &interpreter)
                .map_err(|error| blame_fairly(&mut payload, error.into()))?;
            let candidates = match unchanged {
                true => Vec::new(),
                false => link_candidates(
                    payload.manifest(),
                    &plan,
                    &destination,
                    (link.as_deref(), cli.copy),
                    &interpreter,
                    (&[], None),
                )?,
            };
            Ok((plan, candidates))
        })(),
    };
    // A thin artifact's base missing, at a DEST this run would refuse without `--force`
    // anyway: the refusal is the answer (exit 5), not a base it would not get to use.
    let (mut plan, mut candidates) = match planned {
        Err(failure)
            if failure.code == code::MACHINE
                && payload.manifest().thin_from.is_some()
                && !cli.force =>
        {
            match inspect_destination(&destination, &digest, &interpreter, false) {
                Ok(Existing::Conflict(reason)) => return Err(refused(&destination, &reason)),
                _ => return Err(failure),
            }
        }
        planned => planned?,
    };

    let mut sbom = None;
    if verified {
        // Before DEST's parents or the lock file are made.
        sbom = check_writable(
            &mut payload,
            (&plan, &interpreter, !cli.no_compile),
            (&candidates, cli.copy),
            &destination,
        )?;
        check_not_a_mount_point(&destination)?;
    }

    // 3. DEST: create its parents, lock, and see what is there. (The parents this run made
    // go again if it ends without DEST; `_made` is dropped after the lock.)
    let _made = MadeParents::make(&destination, &parent)?;
    let _lock = lock::acquire(&destination, cli.force)?;
    let restored = remove_stale_siblings(&destination);
    if restored {
        signals::mark_restored();
    }
    let mut existing = inspect_destination(&destination, &digest, &interpreter, false)?;
    if cli.force && matches!(existing, Existing::SameRelease) {
        existing = check_unmodified(&destination, &mut payload);
    }
    let report = match existing {
        Existing::SameRelease => {
            info!(
                "{} already holds this release; nothing to install",
                destination.display()
            );
            None
        }
        Existing::Conflict(reason) if !cli.force => return Err(refused(&destination, &reason)),
        existing => {
            let replace = matches!(existing, Existing::Conflict(_) | Existing::Modified(_));
            if let Existing::Modified(reason) = &existing {
                info!(
                    "{} {reason}; reinstalling it (--force)",
                    destination.display()
                );
            } else if replace {
                check_replaceable(&destination, link.as_deref())?;
            }
            if replace {
                check_unmounted(&destination)?;
                let app = payload.manifest().app.name.as_str();
                for file in crate::dest::deployment_data(&destination, app) {
                    warn!(
                        "{} goes with the tree --force replaces: keep a database outside DEST, \
                         and write environment.json again",
                        file.display()
                    );
                }
            }
            if !verified {
                // `--force`, or DEST changed between the first look and the lock.
                verify(&mut payload, &mut phases)?;
                verified = true;
                if remembered {
                    // What is installed is planned from the interpreter's own answer.
                    interpreter = Interpreter::query(&cli.python)?;
                    crate::failure::set_python_version(interpreter.version());
                    plan = plan::choose(payload.manifest(), &interpreter)
                        .map_err(|error| blame_fairly(&mut payload, error.into()))?;
                }
                // Not looked for when nothing was to be written: a thin artifact's left-out
                // wheels must be beside DEST before anything is.
                candidates = link_candidates(
                    payload.manifest(),
                    &plan,
                    &destination,
                    (link.as_deref(), cli.copy),
                    &interpreter,
                    (&[], None),
                )?;
                sbom = check_writable(
                    &mut payload,
                    (&plan, &interpreter, !cli.no_compile),
                    (&candidates, cli.copy),
                    &destination,
                )?;
            }
            if replace {
                crate::dest::check_interpreter_outside(&destination, &interpreter)?;
            }
            let mut passed_over = Vec::new();
            loop {
                let built = build(
                    cli,
                    &mut payload,
                    &Target {
                        interpreter: &interpreter,
                        binary: binary.as_ref(),
                        plan: &plan,
                        candidates: &candidates,
                        sbom: sbom.as_deref(),
                    },
                    &destination,
                    replace,
                    &mut phases,
                );
                // A thin artifact's left-out file changed in the release it was taken from
                // (the first beside DEST that holds its wheel): another release of the base
                // beside DEST may hold it intact. The failed build left nothing; it is tried
                // again without that release, while one is left.
                let failure = match built {
                    Err(failure) if failure.base_release.is_some() => {
                        // Unless the artifact is at fault (a crafted husk): exit 3.
                        let failure = blame_fairly(&mut payload, failure);
                        if failure.base_release.is_none() {
                            return Err(failure);
                        }
                        failure
                    }
                    built => break Some(built?),
                };
                let Some(dropped) = thin_source(&plan, &candidates) else {
                    return Err(failure);
                };
                passed_over.push(dropped.clone());
                let others = link_candidates(
                    payload.manifest(),
                    &plan,
                    &destination,
                    (link.as_deref(), cli.copy),
                    &interpreter,
                    (&passed_over, None),
                );
                match others {
                    Ok(others) => {
                        warn!(
                            "{}; trying the next release beside DEST instead of {}",
                            failure.message,
                            dropped.display()
                        );
                        candidates = others;
                    }
                    // Why no other release could serve, each that held a wheel named.
                    Err(none_left) => {
                        // (What the release's file was, without the failure's own "this thin
                        // artifact needs", which the message of none left says.)
                        let reason = failure.base_release.as_deref().unwrap_or_default();
                        let message = format!("{}; {reason}", none_left.message);
                        return Err(Failure::new(failure.code, message));
                    }
                }
            }
        }
    };
    // Their shared locks go before `--keep` looks at the releases (it skips a locked one).
    drop(candidates);
    // DEST is complete from here on (installed now or before): a signal says so.
    signals::with_registry(|_| signals::mark_installed(report.is_some()));
    let (link_moved, pruned) = switch(
        cli,
        &mut payload,
        &destination,
        link.as_deref(),
        verified,
        &mut phases,
    )?;

    phases.progress.finish();
    let outcome = Outcome {
        pruned,
        restored,
        destination: &destination,
        link: link.as_deref(),
        link_moved,
        interpreter: &interpreter,
        plan: &plan,
        built: report,
    };
    print_outcome(cli, &outcome, &phases, started)
}

/// The parent directories of DEST a run made: when the run ends without DEST (refused or
/// failed during the install, after they were made), they go again, empty, with DEST's lock
/// file, so a refusal leaves nothing it made. A run that installed DEST keeps them.
struct MadeParents {
    destination: PathBuf,
    parent: PathBuf,
    /// The highest of them.
    top: PathBuf,
}

impl MadeParents {
    /// Makes DEST's missing parent directories; `None` when there were none to make.
    fn make(destination: &Path, parent: &Path) -> Result<Option<MadeParents>, Failure> {
        let top = parent
            .ancestors()
            .take_while(|directory| std::fs::symlink_metadata(directory).is_err())
            .last()
            .map(Path::to_path_buf);
        // 0775 less the umask, as a release's own directories: never writable by others,
        // even under umask 000.
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(builder.recursive(true), 0o775);
        builder.create(parent).map_err(|error| {
            // Something that is not a directory where one is needed: say which. A link that
            // leads nowhere (a volume not mounted yet) or in a loop is one too.
            let blocking = (parent.ancestors()).find_map(|directory| {
                match std::fs::metadata(directory) {
                    Ok(metadata) if !metadata.is_dir() => Some("not a directory"),
                    Err(_) if std::fs::symlink_metadata(directory).is_ok() => {
                        Some("a symbolic link that leads to no directory")
                    }
                    _ => None,
                }
                .map(|what| (directory, what))
            });
            match blocking {
                Some((file, what)) => Failure::new(
                    code::CONFLICT,
                    format!(
                        "{} is {what}, so DEST {} cannot be made below it",
                        file.display(),
                        destination.display()
                    ),
                ),
                // The first directory that could not be made (`/ro/a`, not `/ro/a/b`): the
                // highest missing one, if it is still missing.
                None => {
                    let failed = (parent.ancestors())
                        .take_while(|directory| std::fs::symlink_metadata(directory).is_err())
                        .last()
                        .unwrap_or(parent);
                    Failure::io("cannot create", failed, &error)
                }
            }
        })?;
        Ok(top.map(|top| MadeParents {
            destination: destination.to_path_buf(),
            parent: parent.to_path_buf(),
            top,
        }))
    }
}

impl Drop for MadeParents {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.destination).is_ok() {
            return;
        }
        let _ = std::fs::remove_file(lock::lock_path(&self.destination));
        for directory in self.parent.ancestors() {
            // Only empty directories go, and none above the highest this run made.
            if std::fs::remove_dir(directory).is_err() || directory == self.top {
                break;
            }
        }
    }
}

/// Whether `path` names the release `destination`, by its text or another spelling of it
/// (`srv/releases/5` where `srv -> data/app`, `releases/../releases/5`).
pub(crate) fn is_release(path: &Path, destination: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let identity = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    path == destination || identity(path).is_some_and(|found| Some(found) == identity(destination))
}

/// After the release is in place: LINK repointed at it (a write, so only for a payload whose
/// digest was checked), then `--keep`. Returns whether LINK moved, and what was pruned.
fn switch(
    cli: &Request,
    payload: &mut Payload,
    destination: &Path,
    link: Option<&Path>,
    verified: bool,
    phases: &mut Phases,
) -> Result<(bool, Option<PruneReport>), Failure> {
    // The release LINK named before: `--keep` keeps it. (Read and replaced under LINK's lock,
    // so that an `--activate` of LINK at the same time is either before or after both.)
    let link_lock = link.and_then(lock::hold_link);
    let previous = link.and_then(|link| served_by(link, destination));
    let link_moved = match link {
        Some(link) => {
            let already = pysfx_release::link::points_at(link, destination);
            if !verified && !already {
                verify(payload, phases)?;
            }
            // The release LINK serves is recorded before LINK leaves it.
            if let Some(previous) = previous
                .as_deref()
                .filter(|p| !already && !is_release(p, destination))
            {
                lock::record_replaced(destination, previous).map_err(|mut failure| {
                    failure.message = format!(
                        "{} is installed, but LINK was not moved: {}; fix that and run again",
                        destination.display(),
                        failure.message
                    );
                    failure
                })?;
            }
            // Under the registry lock: a signal waits for the link (and its temporary name)
            // to be settled, and then says whether it moved.
            signals::with_registry(|_| -> Result<bool, Failure> {
                let moved = repoint_link(link, destination).map_err(|error| {
                    // The release is in place: say so, and that only LINK is left to do.
                    let mut failure = Failure::from(error);
                    failure.message = format!(
                        "{} is installed, but --link failed: {}; fix that and run again",
                        destination.display(),
                        failure.message
                    );
                    failure
                })?;
                signals::mark_link_moved(moved);
                Ok(moved)
            })?
        }
        None => false,
    };
    drop(link_lock);
    let pruned = cli.keep.map(|keep| {
        let app = &payload.manifest().app.name;
        let mut protected = vec![destination.to_path_buf()];
        // The release LINK replaced stays, for a rollback. When LINK did not move (a deploy
        // run again), it replaced nothing now: the release it replaced when it moved to DEST
        // (recorded in DEST's lock file then) stays, so a re-run removes nothing more; with no
        // record (LINK set by other means), the newest release installed before DEST.
        let replaced = match previous.as_deref() {
            Some(previous) if !is_release(previous, destination) => Some(previous.to_path_buf()),
            // LINK made now: it replaced nothing.
            None if link_moved => None,
            _ => lock::recorded_replaced(destination)
                .or_else(|| pysfx_release::prune::installed_before(destination, app)),
        };
        protected.extend(replaced);
        // A release LINK itself lies in (`--link releases/1/current`) stays too: removing it
        // would remove LINK.
        protected.extend(link.and_then(|link| release_holding(link, destination)));
        let protected: Vec<&Path> = protected.iter().map(PathBuf::as_path).collect();
        // Removing a release moves the ctime of each file it shared with DEST: DEST's stamps
        // are kept true as they go (see `Restamper`), so the next release still links by them.
        let mut restamper = Restamper::new(destination);
        // Each release removed under the registry lock: a signal waits for that release (one
        // half moved aside, or half removed, would be left otherwise), not for the whole
        // prune, and the releases removed by then are in its report.
        let report = pysfx_release::prune::prune_with(
            destination,
            keep,
            app,
            &protected,
            link,
            pysfx_release::prune::PruneHooks {
                removing: &mut |tree| {
                    if let Some(restamper) = restamper.as_mut() {
                        restamper.unlink_shared(tree);
                    }
                },
                // A signal that came during a removal ends the prune there: the next one
                // does not begin, even if it takes the registry before the signal's thread.
                step: &|remove| {
                    signals::with_registry(|_| {
                        if !signals::ending() {
                            remove();
                        }
                    })
                },
                removed: &signals::add_pruned,
            },
        );
        // Under the registry lock: a signal waits for the new stamps file to be in place.
        if let Some(Err(error)) = restamper.map(|r| signals::with_registry(|_| r.finish())) {
            warn!(
                "could not write {}/pysfx-stamps again: {error}",
                destination.display()
            );
        }
        report
    });
    Ok((link_moved, pruned))
}

/// DEST holding what this run may not replace without `--force` (exit 5).
fn refused(destination: &Path, reason: &str) -> Failure {
    Failure::new(
        code::CONFLICT,
        format!(
            "{} {reason}; refusing to touch it (use --force to replace it)",
            destination.display()
        ),
    )
}

/// The release beside DEST that LINK serves: the end of LINK's chain of links, or the release
/// that end lies in (`current -> releases/4/mysite` serves `releases/4`).
pub(crate) fn served_by(link: &Path, destination: &Path) -> Option<PathBuf> {
    let end = pysfx_release::status::link_end(link).ok()?;
    Some(release_holding(&end, destination).unwrap_or(end))
}

/// The directory beside DEST that `link` lies inside, if any (its real path, links in LINK's
/// parents followed, as the `--link` inside DEST check resolves them).
fn release_holding(link: &Path, destination: &Path) -> Option<PathBuf> {
    let real = pysfx_install::path_max::real_path;
    let (releases, below) = (real(destination.parent()?), real(link.parent()?));
    let first = below.strip_prefix(&releases).ok()?.components().next()?;
    Some(releases.join(first))
}

/// DEST and LINK, absolute; LINK beside the releases, and a symlink if it exists.
fn request_paths(cli: &Request) -> Result<(PathBuf, Option<PathBuf>), Failure> {
    let destination = absolute_path(&cli.destination, "DEST")?;
    let link = cli
        .link
        .as_deref()
        .map(|link| absolute_path(link, "--link"))
        .transpose()?;
    check_name_length(&destination, "DEST")?;
    check_shared_symlinks(&destination, "DEST")?;
    if let Some(link) = &link {
        check_name_length(link, "--link")?;
        check_shared_symlinks(link, "LINK")?;
        check_link_outside(link, &destination)?;
        check_link(link)?;
    }
    Ok((destination, link))
}

/// The longest name a run gives a sibling of DEST beside its own: `.NAME` and
/// `.pysfx-trash-` and a process id of up to 10 digits.
const SIBLING_EXTRA: usize = ".".len() + ".pysfx-trash-".len() + 10;

/// The longest name a run gives LINK's new link beside it: `.NAME`, `.pysfx-link-`, a process
/// id of up to 10 digits, `-` and 16 hexadecimal digits.
const LINK_SIBLING_EXTRA: usize = ".".len() + ".pysfx-link-".len() + 10 + 1 + 16;

/// DEST's and LINK's names must leave room for their siblings' (exit 2, before anything is
/// written): a name that fits only for short process ids would fail half the time, after the
/// lock file was made, or after the install.
pub(crate) fn check_name_length(path: &Path, what: &str) -> Result<(), Failure> {
    let length = path.file_name().map_or(0, |name| name.len());
    let (extra, sibling) = match what {
        "--link" => (LINK_SIBLING_EXTRA, ".NAME.pysfx-link-PID-RANDOM"),
        _ => (SIBLING_EXTRA, ".NAME.pysfx-trash-PID"),
    };
    let most = 255 - extra;
    if length > most {
        return Err(Failure::new(
            code::USAGE,
            format!(
                "{what} {}: its name is {length} bytes; pysfx needs at most {most} (a run names \
                 its siblings {sibling}, and Linux takes no name over 255 bytes)",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// LINK may not be DEST or lie inside it (exit 2): as written, and as the kernel resolves them
/// (either reached through a link). LINK's own name is not resolved: it is the link, which may
/// already point at DEST.
pub(crate) fn check_link_outside(link: &Path, destination: &Path) -> Result<(), Failure> {
    let real = pysfx_install::path_max::real_path;
    let real_link = match (link.parent(), link.file_name()) {
        (Some(parent), Some(name)) => real(parent).join(name),
        _ => link.to_path_buf(),
    };
    if link.starts_with(destination) || real_link.starts_with(real(destination)) {
        return Err(Failure::new(
            code::USAGE,
            format!(
                "--link {} is DEST or inside it; the link goes beside the releases (e.g. /srv/app/current)",
                link.display()
            ),
        ));
    }
    Ok(())
}

/// What a run did, for its report.
struct Outcome<'a> {
    destination: &'a Path,
    link: Option<&'a Path>,
    link_moved: bool,
    interpreter: &'a Interpreter,
    plan: &'a Plan,
    /// What was built; `None` when DEST already held the release.
    built: Option<Built>,
    /// What `--keep` removed and kept.
    pruned: Option<PruneReport>,
    /// DEST was put back from where an interrupted `--force` run had moved it.
    restored: bool,
}

/// The `--json` object, or the closing log line.
fn print_outcome(
    cli: &Request,
    outcome: &Outcome<'_>,
    phases: &Phases,
    started: Instant,
) -> Result<(), Failure> {
    // From here the run reports success, unless a signal is already ending it.
    signals::report_or_wait();
    let Outcome {
        destination,
        link,
        link_moved,
        interpreter,
        plan,
        ..
    } = *outcome;
    // A moved link is a change too: a rollback re-runs an installed release with --link.
    let installed = outcome.built.is_some();
    // So is a release `--keep` removed.
    let pruned = outcome
        .pruned
        .as_ref()
        .is_some_and(|report| !report.pruned.is_empty());
    let changed = installed || link_moved || pruned || outcome.restored;
    let empty = Built::default();
    let built = outcome.built.as_ref().unwrap_or(&empty);
    if cli.json {
        let mut object = json!({
            "changed": changed,
            "dest": destination,
            "python": interpreter.executable,
            "python_version": interpreter.version(),
            "wheels_installed": if installed { plan.wheels.len() } else { 0 },
            "precompiled_wheels": built.precompiled_wheels,
            "files": built.files,
            "bytes": built.bytes,
            "seconds": started.elapsed().as_secs_f64(),
            "wheel_set": plan.set_name,
            "skipped": plan.skipped.iter().map(|s| &s.name).collect::<Vec<_>>(),
            "shared_paths": built.shared_paths,
            "linked_files": built.linked_files,
            "linked_bytes": built.linked_bytes,
            "link": link,
            "link_moved": link_moved,
            "phases": {
                "verify": phases.verify,
                "extract": built.phases.extract,
                "venv": built.phases.venv,
                "install": built.phases.install,
                "compile": built.phases.compile,
            },
        });
        if let Some(pruned) = &outcome.pruned {
            object["pruned"] = json!(pruned.pruned);
            object["kept"] = json!(pruned.kept);
            object["not_pruned"] = json!(pruned.not_pruned);
        }
        // The release is in place and LINK moved: a report stdout cannot take (a full disk,
        // a closed descriptor) does not make the run a failed install.
        if let Err(failure) =
            print_stdout(&format!("{}\n", pysfx_format::json_text(&object, false)))
        {
            warn!("{}; the run itself succeeded", failure.message);
        }
    }
    if installed {
        info!(
            "installed {} wheel{} into {} with Python {} in {:.2} s",
            plan.wheels.len(),
            if plan.wheels.len() == 1 { "" } else { "s" },
            destination.display(),
            interpreter.version(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// A failure the machine is blamed for (exit 4) on what the manifest told — a requirement no
/// wheel meets, no wheel for this interpreter, the space the payload needs — once the
/// manifest is held to the wheels it describes (`pysfx_install::check_claims`, which reads
/// them, so only on this path): a manifest that lies about them makes it the artifact's
/// fault (exit 3), as `--verify` would say.
fn blame_fairly(payload: &mut Payload, failure: Failure) -> Failure {
    if failure.code != code::MACHINE {
        return failure;
    }
    if !payload.verified() {
        if let Err(error) = payload.verify() {
            return error.into();
        }
    }
    match pysfx_install::check_claims(payload) {
        Err(error) if error.fault() == pysfx_install::Fault::Content => error.into(),
        _ => failure,
    }
}

/// The wheels the plan passed over for the `Requires-Python` the manifest gives them are held
/// to that claim (read from each wheel): a manifest that lies about one would make the install
/// leave a distribution out, or take another wheel of it, and call the release complete.
fn check_passed_over(
    payload: &mut Payload,
    plan: &Plan,
    interpreter: &Interpreter,
) -> Result<(), Failure> {
    let passed_over = pysfx_plan::passed_over_for_python(payload.manifest(), plan, interpreter);
    if passed_over.is_empty() {
        return Ok(());
    }
    pysfx_install::check_claims_of(payload, &|entry| passed_over.contains(&entry.path))
        .map_err(Failure::from)
}

/// The byte-code bundles of the chosen wheels that this install does not write (another
/// interpreter's; every one under `--no-compile`) are held to what a bundle may hold by their
/// names, as `verify` holds them: an artifact that carries a hostile one is refused whatever
/// interpreter it meets. The one written is checked as it is opened.
fn check_unused_bundles(
    payload: &mut Payload,
    plan: &Plan,
    interpreter: &Interpreter,
    compile: bool,
) -> Result<(), Failure> {
    let unused: Vec<pysfx_format::BytecodeBundle> = (payload.manifest().bytecode.iter())
        .filter(|bundle| plan.wheels.iter().any(|entry| entry.path == bundle.wheel))
        .filter(|bundle| {
            !compile || !bundle.fits(&interpreter.magic, interpreter.cache_tag.as_deref())
        })
        .cloned()
        .collect();
    for bundle in &unused {
        pysfx_install::check_bundle_names(payload, bundle)?;
    }
    Ok(())
}

/// Checks the payload digest, timing it.
fn verify(payload: &mut Payload, phases: &mut Phases) -> Result<(), Failure> {
    let phase = Instant::now();
    payload.verify()?;
    payload.check_sizes()?;
    phases.verify = phase.elapsed().as_secs_f64();
    Ok(())
}

/// Builds the release in a temporary sibling and renames it into place.
fn build(
    cli: &Request,
    payload: &mut Payload,
    target: &Target<'_>,
    destination: &Path,
    replace: bool,
    phases: &mut Phases,
) -> Result<Built, Failure> {
    let temporary = free_sibling(destination, "tmp")?;
    // Where a replaced DEST goes on a kernel without an atomic exchange: taken before the tree
    // is built, so that no name in the way refuses a run after it built one.
    let old = match replace {
        true => free_sibling(destination, "old")?,
        false => sibling(destination, "old"),
    };
    signals::register(temporary.clone());
    // Removed, on failure, through its descriptor only (see `HeldDirectory::remove`): the
    // name may hold another user's directory by then.
    let held = match HeldDirectory::create(&temporary) {
        Ok(held) => held,
        Err(error) => {
            let _ = std::fs::remove_dir(&temporary);
            signals::unregister(&temporary);
            return Err(Failure::io("cannot create", &temporary, &error));
        }
    };
    signals::hold(&temporary, held.path());
    let failed = |failure: Failure| {
        held.remove(&temporary);
        signals::unregister(&temporary);
        Err(failure)
    };
    let totals = match build_tree(cli, payload, target, destination, held.path(), phases) {
        Ok(totals) => {
            // For the failure report of a run stopped once the release is in place (a
            // signal while the replaced release is removed, `--link` failing).
            signals::set_installed_totals(target.plan.wheels.len(), totals.files, totals.bytes);
            totals
        }
        Err(mut failure) => {
            failure.message = held.spell(&failure.message, &temporary);
            // A path in the temporary tree (no space, no permission) is named with DEST, the
            // name the operator knows.
            if failure.message.contains(&*temporary.to_string_lossy()) {
                failure.message =
                    format!("installing {}: {}", destination.display(), failure.message);
            }
            return failed(failure);
        }
    };
    // The tree was written through its descriptor; its name must still be it.
    let moved = |name: &Path| {
        Failure::other(format!(
            "{} was replaced while the release was built in it (someone else writes {}); \
             nothing was installed",
            name.display(),
            destination.parent().unwrap_or(destination).display()
        ))
    };
    let unmoved = pysfx_install::check_unmoved(target.candidates).map_err(|release| {
        Failure::other(format!(
            "{} was replaced while files were linked from it (someone else writes {}); \
             nothing was installed",
            release.display(),
            destination.parent().unwrap_or(destination).display()
        ))
    });
    if let Err(failure) = unmoved.and_then(|()| match held.is_at(&temporary) {
        true => Ok(()),
        false => Err(moved(&temporary)),
    }) {
        return failed(failure);
    }
    if let Err(error) = held.open_up() {
        return failed(Failure::io("cannot set the mode of", &temporary, &error));
    }
    // The release replaced, held as the new one is, so that only it is removed.
    let replaced_tree = replace
        .then(|| HeldDirectory::open(destination).ok())
        .flatten();
    // Into place. The registry lock holds off a signal while the trees move. A replacement is
    // one atomic exchange where the kernel has it (Linux 3.15+), so DEST never goes missing;
    // on older kernels (CentOS 7's 3.10) it is two renames, and a run killed between them
    // leaves `.<name>.pysfx-old-<pid>`, which the next run puts back (see
    // `remove_stale_siblings`).
    let renamed = signals::with_registry(|trees| -> Result<PathBuf, Failure> {
        if replace {
            match exchange(&temporary, destination) {
                Ok(true) if !held.is_at(destination) => {
                    let _ = exchange(&temporary, destination);
                    return Err(moved(&temporary));
                }
                // The temporary path now holds the replaced tree, still registered for removal:
                // a signal while it is removed reports DEST installed, as it is.
                Ok(true) => {
                    if let Some(tree) = &replaced_tree {
                        signals::hold(&temporary, tree.path());
                    }
                    signals::mark_installed(true);
                    return Ok(temporary.clone());
                }
                Ok(false) => {}
                Err(error) => {
                    return Err(Failure::io(
                        "cannot swap the release into",
                        destination,
                        &error,
                    ))
                }
            }
            std::fs::rename(destination, &old)
                .map_err(|error| Failure::io("cannot move aside", destination, &error))?;
            trees.push(old.clone());
            if let Some(tree) = &replaced_tree {
                signals::hold(&old, tree.path());
            }
        }
        if let Err(error) = std::fs::rename(&temporary, destination) {
            if replace {
                let _ = std::fs::rename(&old, destination);
                trees.retain(|tree| tree != &old);
            }
            return Err(Failure::io(
                "cannot rename the release into",
                destination,
                &error,
            ));
        }
        if !held.is_at(destination) {
            // Swapped in the instant between the look and the rename: what was renamed into
            // place goes back (a link is removed), and the run fails.
            let _ = std::fs::rename(destination, &temporary);
            if replace {
                let _ = std::fs::rename(&old, destination);
                trees.retain(|tree| tree != &old);
            }
            return Err(moved(&temporary));
        }
        trees.retain(|tree| tree != &temporary);
        signals::mark_installed(true);
        Ok(old.clone())
    });
    let replaced = match renamed {
        Ok(replaced) => replaced,
        Err(failure) => return failed(failure),
    };
    if replace {
        // What was replaced may be a file or a symlink, not only a tree: those go by name (a
        // directory put there since is not removed by that).
        let mounts = pysfx_release::paths::mounts_below(&replaced);
        match &replaced_tree {
            // Mounted on since the check before the build: left whole (removing would empty
            // what is mounted).
            Some(_) if !mounts.is_empty() => warn!(
                "the replaced release is left in {}: {}",
                replaced.display(),
                pysfx_release::prune::mounted(&mounts[0])
            ),
            Some(tree) => {
                tree.remove(&replaced);
                if std::fs::symlink_metadata(&replaced).is_ok() {
                    // Too deep to remove with the descriptors this process may open, say.
                    warn!(
                        "could not remove all of the replaced release, left in {}; remove it \
                         by hand (runs on this DEST retry it)",
                        replaced.display()
                    );
                }
            }
            None => {
                if let Err(error) = std::fs::remove_file(&replaced) {
                    warn!(
                        "could not remove the replaced {}: {error}; the next run removes it",
                        replaced.display()
                    );
                }
            }
        }
        signals::unregister(&replaced);
    }
    if let Some(parent) = destination.parent() {
        if let Ok(directory) = std::fs::File::open(parent) {
            let _ = directory.sync_all();
        }
    }
    Ok(totals)
}

/// What is installed: by which interpreter, which wheels, linked from which releases.
struct Target<'a> {
    interpreter: &'a Interpreter,
    /// The interpreter's binary as it was before the query (see `BinaryIdentity`).
    binary: Option<&'a BinaryIdentity>,
    plan: &'a Plan,
    candidates: &'a [Candidate],
    /// The SBOM the release gets, as `check_writable` read it.
    sbom: Option<&'a [u8]>,
}

/// The release in `temporary`: the install, then the receipt.
fn build_tree(
    cli: &Request,
    payload: &mut Payload,
    target: &Target<'_>,
    destination: &Path,
    temporary: &Path,
    phases: &mut Phases,
) -> Result<Built, Failure> {
    let options = InstallOptions {
        no_compile: cli.no_compile,
        threads: install_threads(),
        limits: BatchLimits {
            members: crate::settings::env_whole_number(
                "PYSFX_BATCH_MEMBERS",
                BatchLimits::default().members,
            )
            .max(1),
            ..BatchLimits::default()
        },
        pysfx_version: env!("CARGO_PKG_VERSION"),
        on_child: &signals::register_child,
        link_candidates: target.candidates,
        copy: cli.copy,
    };
    let Target {
        interpreter, plan, ..
    } = *target;
    let built = build_release(
        payload,
        interpreter,
        plan,
        temporary,
        destination,
        &options,
        &phases.progress,
    )?;
    // (Checked before anything was written.) Before the receipt, which records its hash:
    // `--check` reports it changed or gone, and `--force` writes it again.
    let has_sbom = target.sbom.is_some();
    crate::sbom::write(target.sbom, temporary)?;
    write_receipt(payload, target, destination, temporary, &built, has_sbom)?;
    Ok(built)
}

/// The interpreter DEST's release was installed with, from its receipt, when DEST holds this
/// very payload installed by this very stub and `python` names the same binary.
fn remembered_interpreter(destination: &Path, digest: &str, python: &str) -> Option<Interpreter> {
    let receipt = pysfx_release::receipt::read(destination)?;
    if receipt.payload_sha256 != digest || receipt.pysfx_version != env!("CARGO_PKG_VERSION") {
        return None;
    }
    let interpreter = receipt.same_interpreter(python)?;
    tracing::debug!(
        python,
        version = %interpreter.version(),
        "the interpreter of the release, by its unchanged binary"
    );
    Some(interpreter)
}

/// `DEST/pysfx-receipt.json`: what was installed, by which interpreter, when.
fn write_receipt(
    payload: &Payload,
    target: &Target<'_>,
    destination: &Path,
    temporary: &Path,
    built: &Built,
    has_sbom: bool,
) -> Result<(), Failure> {
    let Target {
        interpreter, plan, ..
    } = *target;
    // What `--check` compares the release with later.
    let site_packages = format!("venv/{}", built.site_packages);
    let app_name = &payload.manifest().app.name;
    // The files pysfx wrote that no RECORD lists: the hooks, and the venv's own files (its
    // `pyvenv.cfg` and activate scripts, its `bin/python*` and `lib64` links), which no wheel
    // may replace and a changed interpreter or configuration would change behind the release;
    // and the release's SBOM, which scanners read.
    let mut hooks = vec![
        format!("{site_packages}/{app_name}.pth"),
        format!("{site_packages}/{}", pysfx_venv::HOOK_PTH),
        format!("{site_packages}/{}.py", pysfx_venv::HOOK_MODULE),
        "venv/pyvenv.cfg".into(),
        "venv/bin/activate".into(),
        "venv/bin/activate.csh".into(),
        "venv/bin/activate.fish".into(),
    ];
    if has_sbom {
        hooks.push(pysfx_format::SBOM_FILE.into());
    }
    let mut files = built.app_files.clone();
    let (major, minor) = interpreter.major_minor();
    let links = [
        "venv/lib64".to_string(),
        "venv/bin/python".into(),
        format!("venv/bin/python{major}"),
        format!("venv/bin/python{major}.{minor}"),
        format!("venv/bin/python{major}.{minor}t"),
    ];
    for path in links {
        if let Ok(target) = std::fs::read_link(temporary.join(&path)) {
            files.push(RecordedFile::link(
                path,
                target.to_string_lossy().into_owned(),
            ));
        }
    }
    let dist_infos = built
        .dist_infos
        .iter()
        .map(|name| format!("{site_packages}/{name}"))
        .collect();
    let executables = built
        .executables
        .iter()
        .map(|path| format!("venv/{path}"))
        .collect();
    let contents = Contents::from_install(
        temporary,
        &site_packages,
        files,
        &hooks,
        dist_infos,
        executables,
    )
    .map_err(|error| Failure::io("cannot read back", temporary, &error))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let receipt = Receipt {
        pysfx_version: env!("CARGO_PKG_VERSION").to_string(),
        app_version: payload.manifest().app.version.clone(),
        payload_sha256: payload.digest(),
        artifact: payload.path().display().to_string(),
        installed_at: now.as_secs(),
        installed_at_nanos: now.subsec_nanos(),
        destination: destination.display().to_string(),
        python: interpreter.executable.display().to_string(),
        python_version: interpreter.version(),
        wheel_set: plan.set_name.clone(),
        wheels: plan
            .wheels
            .iter()
            .map(|wheel| InstalledWheel {
                name: wheel.name.clone(),
                version: wheel.version.clone(),
                filename: wheel.filename.clone(),
            })
            .collect(),
        files: built.files,
        bytes: built.bytes,
        manifest: payload.manifest().clone(),
        contents: Some(contents),
        // Only a binary that is the interpreter itself (not a launcher that picks one, like
        // a mise shim: the answer names the executable that ran).
        interpreter: target
            .binary
            .filter(|binary| {
                std::fs::canonicalize(&interpreter.executable).ok().as_ref() == Some(&binary.path)
            })
            .and_then(BinaryIdentity::text)
            .filter(|_| !interpreter.answer.is_empty())
            .map(|binary| InstalledWith {
                requested: interpreter.requested.clone(),
                binary,
                answer: interpreter.answer.clone(),
            }),
    };
    let text = serde_json::to_vec_pretty(&receipt)
        .map_err(|error| Failure::other(format!("cannot write the receipt: {error}")))?;
    let path = temporary.join(RECEIPT_NAME);
    pysfx_tree::write_new(&path, &text, 0o644)
        .map_err(|error| Failure::io("cannot write", &path, &error))
}

/// What is checked of DEST before the install of `plan` writes anything: free space and
/// inodes for what it writes (see [`planned_space`]; a shortage is the payload's fault when
/// it is damaged), the length of every path, the distributions passed over, the set's SBOM.
fn check_writable(
    payload: &mut Payload,
    (plan, interpreter, compile): (&Plan, &Interpreter, bool),
    sources: (&[Candidate], bool),
    destination: &Path,
) -> Result<Sbom, Failure> {
    let parent = destination.parent().unwrap_or(destination);
    let needed = planned_space(payload, (plan, interpreter, compile), sources, parent)?;
    check_free_space(parent, needed).map_err(|failure| blame_fairly(payload, failure))?;
    check_path_lengths(destination, payload)?;
    check_passed_over(payload, plan, interpreter)?;
    check_unused_bundles(payload, plan, interpreter, compile)?;
    // Kept for the release (a few KB).
    crate::sbom::for_set(payload, plan)
}

/// The SBOM of the release, `None` when the artifact stores none.
type Sbom = Option<Vec<u8>>;

/// What the install of `plan` writes, as the manifest tells: its `unpacked_bytes` (every set's
/// wheels, every bundle) less the wheels the plan leaves out and the byte-code bundles this
/// interpreter does not take (what their members declare, as the packer counts them), and
/// less what will be hard-linked from `candidates` (unless `copy`): a wheel a release on
/// DEST's filesystem installed costs only its directories and its per-release files, counted
/// as [`LINKED_MEMBER_BYTES`] a member, and no inode per file (but on tmpfs); a bundle that release's
/// artifact carried too costs nothing more. A linked file found changed is unpacked instead,
/// so such an install may still run out of space: it then fails as any write does (exit 4,
/// the temporary tree removed).
fn planned_space(
    payload: &mut Payload,
    (plan, interpreter, compile): (&Plan, &Interpreter, bool),
    (candidates, copy): (&[Candidate], bool),
    parent: &Path,
) -> Result<Needed, Failure> {
    let existing = crate::dest::existing_ancestor(parent);
    let device = existing.as_deref().and_then(device_of);
    // tmpfs counts every hard link against its inode limit (`nr_inodes`), as a new file.
    let links_take_inodes = existing.as_deref().is_some_and(|path| {
        nix::sys::statfs::statfs(path)
            .is_ok_and(|stat| stat.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
    });
    // The releases whose venv a hard link reaches: on DEST's filesystem, and through no mount
    // point of its own (a release bind-mounted from elsewhere on the same filesystem is
    // another mount, and the kernel links across none).
    let reachable: Vec<&Path> = candidates
        .iter()
        .filter(|candidate| !copy && device.is_some() && candidate.source.device() == device)
        .filter(|candidate| {
            let venv = std::fs::canonicalize(&candidate.source.venv);
            let points = pysfx_release::paths::mounts_below(&candidate.source.release);
            venv.is_ok_and(|venv| !points.iter().any(|point| venv.starts_with(point)))
        })
        .map(|candidate| candidate.source.release.as_path())
        .collect();
    let linked_from = |sha256: &str| {
        let candidate = pysfx_install::candidate_for(candidates, sha256)?;
        reachable
            .contains(&candidate.source.release.as_path())
            .then_some(candidate)
    };
    let app_files = app_inodes(payload);
    let manifest = payload.manifest();
    let chosen: Vec<&str> = plan
        .wheels
        .iter()
        .map(|entry| entry.path.as_str())
        .collect();
    let mut left_out: u64 = manifest
        .wheels
        .iter()
        .filter(|entry| !chosen.contains(&entry.path.as_str()))
        .map(|entry| entry.unpacked_bytes)
        .fold(0, u64::saturating_add);
    // Inodes: one for each file and directory made. The venv's own, the app's and the static
    // directories' (as the payload lists them), and for each wheel its directories and the
    // files written fresh (RECORD, INSTALLER, REQUESTED), with, unless they are linked (but
    // on tmpfs), its other files and its byte-code's. None known when a wheel's count is not.
    let mut files = Some(VENV_INODES.saturating_add(app_files));
    for entry in &plan.wheels {
        let linked = linked_from(&entry.sha256).is_some();
        if linked && entry.members > 0 {
            let costs = entry.members.saturating_mul(LINKED_MEMBER_BYTES);
            left_out = left_out.saturating_add(entry.unpacked_bytes.saturating_sub(costs));
        }
        let copied = !linked || links_take_inodes;
        // Its byte-code: the bundle this interpreter takes, or, compiled at install, as many
        // files as a bundle for another interpreter holds (the same sources).
        let bundles = || manifest.bytecode.iter().filter(|b| b.wheel == entry.path);
        let bytecode = bundles()
            .find(|bundle| bundle.fits(&interpreter.magic, interpreter.cache_tag.as_deref()))
            .or_else(|| bundles().next().filter(|_| compile))
            .map_or(0, |bundle| match copied {
                true => bundle.files.saturating_add(bundle.directories),
                false => bundle.directories,
            });
        let made = entry
            .directories
            .saturating_add(WHEEL_FRESH_FILES)
            .saturating_add(bytecode);
        files = match entry.members {
            0 => None,
            members if copied => files.map(|f| f.saturating_add(members).saturating_add(made)),
            _ => files.map(|files| files.saturating_add(made)),
        };
    }
    let bundles: Vec<String> = manifest
        .bytecode
        .iter()
        .filter(|bundle| {
            let linked = plan
                .wheels
                .iter()
                .find(|entry| entry.path == bundle.wheel)
                .and_then(|entry| linked_from(&entry.sha256))
                .is_some_and(|candidate| {
                    pysfx_install::bytecode_from(candidate, &[bundle.sha256.as_str()])
                });
            !chosen.contains(&bundle.wheel.as_str())
                || !bundle.fits(&interpreter.magic, interpreter.cache_tag.as_deref())
                || linked
        })
        .map(|bundle| bundle.path.clone())
        .collect();
    for bundle in bundles {
        left_out = left_out.saturating_add(payload.bundle_unpacked(&bundle)?);
    }
    Ok(Needed {
        bytes: payload.manifest().unpacked_bytes.saturating_sub(left_out),
        files,
    })
}

/// The inodes of a venv before its wheels (`pyvenv.cfg`, the interpreter's links, the
/// activate scripts, the hooks, `lib64`, the receipt, the SBOM, the lock file, and DEST's,
/// the venv's and its library directories), rounded up.
const VENV_INODES: u64 = 32;

/// The files a wheel's install writes fresh beside its members, or writes when it is linked:
/// RECORD (one of its members), INSTALLER and REQUESTED.
const WHEEL_FRESH_FILES: u64 = 3;

/// The app's and the static directories' files and directories, as the payload lists them.
fn app_inodes(payload: &mut Payload) -> u64 {
    let app = format!("{}/", payload.manifest().app.name);
    let archive = payload.archive();
    let names: Vec<std::borrow::Cow<'_, str>> = (0..archive.len())
        .filter_map(|index| archive.name_for_index(index)?.ok())
        .filter(|name| name.starts_with(&app) || name.starts_with("static.in/"))
        .collect();
    let files = names.iter().filter(|name| !name.ends_with('/')).count();
    let directories =
        pysfx_format::parent_directories(&mut names.iter().map(|name| name.as_ref())).len();
    (files + directories) as u64
}

/// What a member of a linked wheel costs on disk, for the free-space check: the directories
/// the new release makes for it (a block each, about one for every two files) and its share
/// of the RECORDs, stamps and receipt written fresh.
const LINKED_MEMBER_BYTES: u64 = 2048;

/// The filesystem a path is on (`lstat`'s device).
fn device_of(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|metadata| metadata.dev())
}

/// Threads that write files: one per core, at most MAX_INSTALL_THREADS (each holds buffers and
/// a malloc arena; past a few, the disk, not the CPU, bounds the install).
pub(crate) fn install_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(MAX_INSTALL_THREADS)
}

const MAX_INSTALL_THREADS: usize = 8;

/// The plan and the releases to link from, made while other threads check the payload digest
/// (reading only).
fn plan_early(
    payload: &Payload,
    interpreter: &Interpreter,
    destination: &Path,
    link_copy: (Option<&Path>, bool),
    prefetched: Option<pysfx_install::Prefetched>,
) -> Result<(Plan, Vec<Candidate>), Failure> {
    let plan = plan::choose(payload.manifest(), interpreter)?;
    let candidates = link_candidates(
        payload.manifest(),
        &plan,
        destination,
        link_copy,
        interpreter,
        (&[], prefetched),
    )?;
    Ok((plan, candidates))
}

/// The releases beside DEST whose files this install may link (none with `--copy`, except
/// for a thin artifact's left-out wheels, which are copied from them), each locked shared
/// while it is kept (`hold_sources`). Every left-out wheel of the plan must be in one of
/// them: else exit 4, before anything is written.
fn link_candidates(
    manifest: &pysfx_format::Manifest,
    plan: &Plan,
    destination: &Path,
    (link, copy): (Option<&Path>, bool),
    interpreter: &Interpreter,
    (passed_over, prefetched): (&[PathBuf], Option<pysfx_install::Prefetched>),
) -> Result<Vec<Candidate>, Failure> {
    let preferred = link.and_then(|link| served_by(link, destination));
    let left_out: Vec<(&str, &str)> = (plan.wheels.iter())
        .filter(|entry| entry.from_base)
        .filter_map(|entry| Some((entry.sha256.as_str(), entry.record_sha256.as_deref()?)))
        .collect();
    let (candidates, mut refused) = pysfx_install::link_candidates(
        destination,
        &manifest.app.name,
        interpreter.major_minor(),
        preferred.as_deref(),
        &left_out,
    );
    // The releases a try before this one found a left-out file changed in.
    let (dropped, candidates): (Vec<_>, Vec<_>) = (candidates.into_iter())
        .partition(|candidate| passed_over.contains(&candidate.source.release));
    refused.extend(dropped.into_iter().map(|candidate| {
        let reason = "a file of a left-out wheel there changed since it was installed";
        PassedOver::new(
            candidate.source.release.clone(),
            candidate.wheels,
            reason.into(),
        )
    }));
    let wanted: Vec<&str> = plan
        .wheels
        .iter()
        .filter(|entry| !copy || entry.from_base)
        .map(|entry| entry.sha256.as_str())
        .collect();
    // The left-out wheels no release holds: before the releases in use are passed over, and
    // after.
    let unheld = |candidates: &[Candidate]| -> Vec<&str> {
        plan.wheels
            .iter()
            .filter(|entry| entry.from_base && source_for(candidates, &entry.sha256).is_none())
            .map(|entry| entry.filename.as_str())
            .collect()
    };
    let (candidates, mut passed_over) =
        pysfx_install::hold_sources(candidates, &wanted, prefetched);
    let missing = unheld(&candidates);
    let Some(first) = missing.first() else {
        return Ok(candidates);
    };
    // The releases that hold a missing wheel but were passed over, and why.
    passed_over.extend(refused);
    let missing_sha256: Vec<&str> = (plan.wheels.iter())
        .filter(|entry| entry.from_base && missing.contains(&entry.filename.as_str()))
        .map(|entry| entry.sha256.as_str())
        .collect();
    let reasons: Vec<String> = passed_over
        .iter()
        .filter(|over| {
            missing_sha256
                .iter()
                .any(|sha256| over.wheels.contains(*sha256))
        })
        .map(|over| {
            format!(
                "{}: {}{}",
                pysfx_format::escape_control(&over.release.display().to_string()),
                pysfx_format::escape_control(&over.reason),
                match over.in_use {
                    true => ", try again once that run ends",
                    false => "",
                }
            )
        })
        .collect();
    // A manifest that leaves a wheel out names its base (`Manifest::validate`, at open).
    let Some(base) = &manifest.thin_from else {
        return Err(Failure::new(code::CORRUPT, "the manifest names no base"));
    };
    let (major, minor) = interpreter.major_minor();
    let version = base
        .version
        .as_deref()
        .map(|version| format!(" {}", pysfx_format::escape_control(version)))
        .unwrap_or_default();
    let more = match missing.len() {
        1 => String::new(),
        n => format!(" and {} more wheels", n - 1),
    };
    Err(Failure::new(
        code::MACHINE,
        format!(
            "this thin artifact needs a release of {}{version} (payload {}) beside {}, or the full artifact: no complete release there for Python {major}.{minor} holds {first}{more}{}",
            pysfx_format::escape_control(&base.app),
            base.payload_sha256,
            destination.parent().unwrap_or(destination).display(),
            match reasons.is_empty() {
                true => String::new(),
                false => format!(" that could be used (passed over: {})", reasons.join("; ")),
            },
        ) + match pysfx_release::receipt::read(destination).is_some() {
            // `--force` over a thin release whose base has since been removed.
            true => "; DEST itself, which this run would replace, is not taken from",
            false => "",
        },
    ))
}

/// The release the first left-out wheel of this thin artifact is taken from.
fn thin_source(plan: &Plan, candidates: &[Candidate]) -> Option<PathBuf> {
    plan.wheels
        .iter()
        .filter(|entry| entry.from_base)
        .find_map(|entry| source_for(candidates, &entry.sha256))
        .map(|source| source.release.clone())
}

/// DEST itself a mount point (an empty filesystem mounted for the release) cannot take the
/// release: it is built beside DEST and renamed into place, which the kernel refuses for a
/// mount point. Said before anything is written.
fn check_not_a_mount_point(destination: &Path) -> Result<(), Failure> {
    let Ok(real) = std::fs::canonicalize(destination) else {
        return Ok(());
    };
    if !pysfx_release::paths::mounts_below(&real).contains(&real) {
        return Ok(());
    }
    Err(Failure::new(
        code::CONFLICT,
        format!(
            "{} is a mount point: a release is built beside DEST and renamed into place, which \
             a mount point cannot take; give a directory below it as DEST",
            destination.display()
        ),
    ))
}
