//! The install: check everything, build the release in a temporary sibling of DEST, rename it
//! into place.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pysfx_format::{Payload, Section, WheelEntry};
use pysfx_venv::{compile, create_venv, write_hooks, CompileJob, Interpreter, VenvPaths};
use pysfx_wheel::{
    extract_member, finish_wheel, prepare_wheel, validate_member_name, CopyError, CopyOptions,
    Disposition, InstallReport, Layout, MemberOutcome, PreparedWheel, TreeWriter, WheelError,
    WheelFilename,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Read;
use tracing::{debug, info, warn};
use zip::ZipArchive;

use crate::cli::{open_self, Cli};
use crate::failure::{code, Failure};
use crate::progress::Progress;
use crate::receipt::{self, InstalledWheel, Receipt, RECEIPT_NAME};
use crate::shared::{SharedPath, SharedPaths};
use crate::{extract, lock, print_stdout, signals};
use pysfx_plan::{self as plan, Plan};

/// Seconds spent in each phase, for `--json`, and the progress bar that shows them.
struct Phases {
    verify: f64,
    extract: f64,
    venv: f64,
    install: f64,
    compile: f64,
    /// Wheels whose byte-code came compiled from the pack.
    precompiled_wheels: usize,
    /// Paths two wheels ship with different content (see `shared`).
    shared_paths: Vec<SharedPath>,
    progress: Progress,
}

pub fn run(cli: &Cli) -> Result<(), Failure> {
    let started = Instant::now();
    signals::install();
    let destination = absolute_path(cli.destination.as_deref().unwrap_or(Path::new("")), "DEST")?;
    let link = cli
        .link
        .as_deref()
        .map(|link| absolute_path(link, "--link"))
        .transpose()?;
    if let Some(link) = &link {
        if link.starts_with(&destination) {
            return Err(Failure::new(
                code::USAGE,
                format!(
                    "--link {} is DEST or inside it; the link goes beside the releases (e.g. /srv/app/current)",
                    link.display()
                ),
            ));
        }
        check_link(link)?;
    }

    // 1. The payload, before anything is written.
    let mut phases = Phases {
        verify: 0.0,
        extract: 0.0,
        venv: 0.0,
        install: 0.0,
        compile: 0.0,
        precompiled_wheels: 0,
        shared_paths: Vec::new(),
        progress: Progress::new(cli.quiet),
    };
    phases.progress.phase("verifying", 1);
    let mut payload = open_self()?;
    let digest = payload.digest();
    let python = cli.python();
    let interpreter = Interpreter::query(&python)?;
    crate::failure::set_python_version(interpreter.version());
    // A re-run on a finished release writes nothing, so it need not hash the payload: the
    // trailer's digest identifies the release. Anything else is verified before writing.
    let unchanged = matches!(
        inspect_destination(&destination, &digest, &interpreter),
        Ok(Existing::SameRelease)
    );
    let mut verified = false;
    let parent = destination
        .parent()
        .ok_or_else(|| Failure::new(code::USAGE, "DEST cannot be the root directory"))?
        .to_path_buf();
    if !unchanged {
        verify(&mut payload, &mut phases)?;
        // Before DEST's parents or the lock file are made.
        check_free_space(&parent, payload.manifest().unpacked_bytes)?;
        verified = true;
    }

    // 2. The wheels the interpreter will get.
    let plan = plan::choose(payload.manifest(), &interpreter)?;

    // 3. DEST: create its parents, lock, and see what is there.
    std::fs::create_dir_all(&parent)
        .map_err(|error| Failure::io("cannot create", &parent, &error))?;
    let _lock = lock::acquire(&destination)?;
    remove_stale_siblings(&destination);
    let existing = inspect_destination(&destination, &digest, &interpreter)?;
    let report = match existing {
        Existing::SameRelease => {
            info!(
                "{} already holds this release; nothing to do",
                destination.display()
            );
            None
        }
        Existing::Conflict(reason) if !cli.force => {
            return Err(Failure::new(
                code::CONFLICT,
                format!(
                    "{} {reason}; refusing to touch it (use --force to replace it)",
                    destination.display()
                ),
            ));
        }
        existing => {
            let replace = matches!(existing, Existing::Conflict(_));
            if replace {
                check_replaceable(&destination, link.as_deref())?;
            }
            if !verified {
                // DEST changed between the first look and the lock.
                verify(&mut payload, &mut phases)?;
                check_free_space(&parent, payload.manifest().unpacked_bytes)?;
                verified = true;
            }
            Some(build(
                cli,
                &mut payload,
                &interpreter,
                &plan,
                &destination,
                replace,
                &mut phases,
            )?)
        }
    };
    let link_moved = match &link {
        Some(link) => {
            // Moving the link is a write: only for a payload whose digest was checked.
            let already = std::fs::read_link(link).is_ok_and(|target| target == destination);
            if !verified && !already {
                verify(&mut payload, &mut phases)?;
            }
            repoint_link(link, &destination)?
        }
        None => false,
    };

    // A moved link is a change too: a rollback re-runs an installed release with --link.
    let installed = report.is_some();
    let changed = installed || link_moved;
    phases.progress.finish();
    let (files, bytes) = report.unwrap_or((0, 0));
    if cli.json {
        let object = json!({
            "changed": changed,
            "dest": destination,
            "python": interpreter.executable,
            "python_version": interpreter.version(),
            "wheels_installed": if installed { plan.wheels.len() } else { 0 },
            "precompiled_wheels": phases.precompiled_wheels,
            "files": files,
            "bytes": bytes,
            "seconds": started.elapsed().as_secs_f64(),
            "wheel_set": plan.set_name,
            "skipped": plan.skipped.iter().map(|s| &s.name).collect::<Vec<_>>(),
            "shared_paths": phases.shared_paths,
            "link": link,
            "link_moved": link_moved,
            "phases": {
                "verify": phases.verify,
                "extract": phases.extract,
                "venv": phases.venv,
                "install": phases.install,
                "compile": phases.compile,
            },
        });
        print_stdout(&format!("{object}\n"))?;
    }
    if installed {
        info!(
            "installed {} wheels into {} with Python {} in {:.2} s",
            plan.wheels.len(),
            destination.display(),
            interpreter.version(),
            started.elapsed().as_secs_f64()
        );
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

/// DEST (or LINK, named by `what`) made absolute and lexically normalised (it need not exist
/// yet).
fn absolute_path(path: &Path, what: &str) -> Result<PathBuf, Failure> {
    if path.as_os_str().is_empty() {
        return Err(Failure::new(code::USAGE, format!("{what} is empty")));
    }
    let text = path.to_string_lossy();
    if text.chars().any(char::is_control) {
        return Err(Failure::new(
            code::USAGE,
            format!("{what} contains a control character"),
        ));
    }
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|error| Failure::other(format!("cannot read the working directory: {error}")))?
            .join(path)
    };
    let mut normal = PathBuf::from("/");
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::Normal(part) => normal.push(part),
            _ => {}
        }
    }
    if normal.parent().is_none() {
        return Err(Failure::new(
            code::USAGE,
            format!("{what} cannot be the root directory"),
        ));
    }
    Ok(normal)
}

enum Existing {
    Absent,
    SameRelease,
    Conflict(String),
}

fn inspect_destination(
    destination: &Path,
    digest: &str,
    interpreter: &Interpreter,
) -> Result<Existing, Failure> {
    let metadata = match std::fs::symlink_metadata(destination) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(error) => return Err(Failure::io("cannot read", destination, &error)),
    };
    if !metadata.is_dir() {
        return Ok(Existing::Conflict("exists and is not a directory".into()));
    }
    let empty = std::fs::read_dir(destination)
        .map_err(|error| Failure::io("cannot read", destination, &error))?
        .next()
        .is_none();
    if empty {
        return Ok(Existing::Absent);
    }
    match receipt::read(destination) {
        None => Ok(Existing::Conflict(
            "exists and is not a pysfx release".into(),
        )),
        Some(receipt) if receipt.payload_sha256 != digest => Ok(Existing::Conflict(format!(
            "holds another release (payload sha256 {})",
            receipt.payload_sha256
        ))),
        Some(receipt) if receipt.python_version != interpreter.version() => {
            Ok(Existing::Conflict(format!(
                "holds this release installed with Python {} ({})",
                receipt.python_version, receipt.python
            )))
        }
        Some(receipt) if !looks_complete(destination, &receipt) => Ok(Existing::Conflict(
            "holds an incomplete install of this release (files are missing)".into(),
        )),
        Some(_) => Ok(Existing::SameRelease),
    }
}

/// A cheap completeness check of an installed release: the app, the venv's interpreter and
/// one `.dist-info` directory per installed wheel are still there.
fn looks_complete(destination: &Path, receipt: &receipt::Receipt) -> bool {
    let venv = destination.join("venv");
    if !destination.join(&receipt.manifest.app.name).is_dir()
        || !venv.join("pyvenv.cfg").is_file()
        || !venv.join("bin/python").exists()
    {
        return false;
    }
    let Ok(versions) = std::fs::read_dir(venv.join("lib")) else {
        return false;
    };
    let dist_infos: usize = versions
        .flatten()
        .filter_map(|entry| std::fs::read_dir(entry.path().join("site-packages")).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".dist-info"))
        .count();
    dist_infos >= receipt.wheels.len()
}

/// What `--force` may replace: one release or a stray tree, never a directory that holds
/// releases (`-d releases/ --force`, from an empty shell variable) nor one that holds LINK's
/// target.
fn check_replaceable(destination: &Path, link: Option<&Path>) -> Result<(), Failure> {
    let refuse = |why: String| {
        Failure::new(
            code::CONFLICT,
            format!(
                "{} {why}; --force replaces one release, not that (did a variable in -d come out empty?)",
                destination.display()
            ),
        )
    };
    if let Some(target) = link.and_then(|link| std::fs::canonicalize(link).ok()) {
        let destination = std::fs::canonicalize(destination).unwrap_or(destination.to_path_buf());
        if target.starts_with(&destination) {
            return Err(refuse(format!(
                "holds the release --link points at ({})",
                target.display()
            )));
        }
    }
    let releases: Vec<String> = std::fs::read_dir(destination)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .filter(|entry| entry.path().join(RECEIPT_NAME).is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .take(3)
        .collect();
    if !releases.is_empty() {
        return Err(refuse(format!(
            "holds pysfx releases ({})",
            releases.join(", ")
        )));
    }
    Ok(())
}

/// A LINK that exists must be a symlink.
fn check_link(link: &Path) -> Result<(), Failure> {
    match std::fs::symlink_metadata(link) {
        Ok(metadata) if !metadata.file_type().is_symlink() => Err(Failure::new(
            code::CONFLICT,
            format!(
                "--link {} exists and is not a symlink; refusing to replace it",
                link.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Points LINK at DEST atomically: a new link beside it, renamed over it.
/// Returns whether the link moved (false when it already pointed at DEST).
fn repoint_link(link: &Path, destination: &Path) -> Result<bool, Failure> {
    check_link(link)?;
    if std::fs::read_link(link).is_ok_and(|target| target == destination) {
        debug!(
            "{} already points at {}",
            link.display(),
            destination.display()
        );
        return Ok(false);
    }
    let name = link
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = link.with_file_name(format!(".{name}.pysfx-link-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| Failure::io("cannot create", parent, &error))?;
    }
    std::os::unix::fs::symlink(destination, &temporary)
        .map_err(|error| Failure::io("cannot create the link", &temporary, &error))?;
    std::fs::rename(&temporary, link).map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        Failure::io("cannot repoint", link, &error)
    })?;
    info!("{} now points at {}", link.display(), destination.display());
    Ok(true)
}

fn sibling(destination: &Path, kind: &str) -> PathBuf {
    let name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    destination.with_file_name(format!(".{name}.pysfx-{kind}-{}", std::process::id()))
}

/// Swaps two paths atomically with `renameat2(RENAME_EXCHANGE)`. `Ok(false)` when the kernel
/// (before 3.15) or the filesystem cannot: the caller falls back to two renames. glibc 2.17 has
/// no wrapper, so it is the raw system call (x86_64 number 316).
#[allow(unsafe_code)]
fn exchange(first: &Path, second: &Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    const RENAME_EXCHANGE: nix::libc::c_uint = 2;
    let text = |path: &Path| {
        std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (first, second) = (text(first)?, text(second)?);
    // SAFETY: both pointers are NUL-terminated strings that outlive the call; renameat2 reads
    // them and touches no other memory of this process.
    let result = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_renameat2,
            nix::libc::AT_FDCWD,
            first.as_ptr(),
            nix::libc::AT_FDCWD,
            second.as_ptr(),
            RENAME_EXCHANGE,
        )
    };
    if result == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(nix::libc::ENOSYS) | Some(nix::libc::EINVAL) => Ok(false),
        _ => Err(error),
    }
}

/// Temporary trees left by a run that was killed (SIGKILL, power loss): everything named
/// `.<name>.pysfx-…` beside DEST but the lock file. The caller holds the lock, so no live run
/// owns them. One exception: a run killed between the two renames of a replacement (kernels
/// without `RENAME_EXCHANGE`) left DEST missing and the previous release under
/// `.<name>.pysfx-old-<pid>`; that release is put back, not removed.
fn remove_stale_siblings(destination: &Path) {
    let Some(parent) = destination.parent() else {
        return;
    };
    let Some(name) = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let prefix = format!(".{name}.pysfx-");
    let lock = format!(".{name}.pysfx-lock");
    let old = format!(".{name}.pysfx-old-");
    let mut entries: Vec<_> = entries.flatten().collect();
    if std::fs::symlink_metadata(destination).is_err() {
        // Only a real directory holding a release: never a planted link, file or foreign tree.
        let restorable = entries.iter().position(|entry| {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            file_name.starts_with(&old)
                && !file_name.contains("-trash")
                && entry.file_type().is_ok_and(|kind| kind.is_dir())
                && std::fs::symlink_metadata(entry.path().join(RECEIPT_NAME))
                    .is_ok_and(|metadata| metadata.is_file())
        });
        if let Some(index) = restorable {
            let entry = entries.swap_remove(index);
            match std::fs::rename(entry.path(), destination) {
                Ok(()) => warn!(
                    "put back the release {} that an interrupted --force run had moved to {}",
                    destination.display(),
                    entry.path().display()
                ),
                Err(error) => warn!(
                    "cannot put back {} as {}: {error}",
                    entry.path().display(),
                    destination.display()
                ),
            }
        }
    }
    for entry in entries {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !file_name.starts_with(&prefix) || file_name == lock {
            continue;
        }
        warn!(
            "removing {} left by an interrupted run",
            entry.path().display()
        );
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        let _ = if is_dir {
            std::fs::remove_dir_all(entry.path())
        } else {
            std::fs::remove_file(entry.path())
        };
    }
}

/// Free space on DEST's filesystem for the unpacked size plus byte-code and a margin.
/// DEST's parent need not exist yet: its nearest existing ancestor is on the same filesystem
/// unless a mount point is created in between, which no install does.
fn check_free_space(parent: &Path, unpacked: u64) -> Result<(), Failure> {
    let existing = parent
        .ancestors()
        .find(|path| path.is_dir())
        .unwrap_or(parent);
    let Ok(stats) = nix::sys::statvfs::statvfs(existing) else {
        return Ok(());
    };
    let available = stats
        .blocks_available()
        .saturating_mul(stats.fragment_size());
    let needed = unpacked + unpacked / 2 + (16 << 20);
    if available < needed {
        return Err(Failure::new(
            code::MACHINE,
            format!(
                "not enough free space on {}: {} MiB available, about {} MiB needed",
                parent.display(),
                available >> 20,
                needed >> 20
            ),
        ));
    }
    Ok(())
}

/// Builds the release in a temporary sibling and renames it into place. Returns files and
/// bytes written.
fn build(
    cli: &Cli,
    payload: &mut Payload,
    interpreter: &Interpreter,
    plan: &Plan,
    destination: &Path,
    replace: bool,
    phases: &mut Phases,
) -> Result<(u64, u64), Failure> {
    let temporary = sibling(destination, "tmp");
    signals::register(temporary.clone());
    let result = build_tree(
        cli,
        payload,
        interpreter,
        plan,
        destination,
        &temporary,
        phases,
    );
    let totals = match result {
        Ok(totals) => totals,
        Err(failure) => {
            let _ = std::fs::remove_dir_all(&temporary);
            signals::unregister(&temporary);
            return Err(failure);
        }
    };
    // Into place. The registry lock holds off a signal while the trees move. A replacement is
    // one atomic exchange where the kernel has it (Linux 3.15+), so DEST never goes missing;
    // on older kernels (CentOS 7's 3.10) it is two renames, and a run killed between them
    // leaves `.<name>.pysfx-old-<pid>`, which the next run puts back (see
    // `remove_stale_siblings`).
    let old = sibling(destination, "old");
    let renamed = signals::with_registry(|trees| -> Result<PathBuf, Failure> {
        if replace {
            match exchange(&temporary, destination) {
                // The temporary path now holds the replaced tree, still registered for removal.
                Ok(true) => return Ok(temporary.clone()),
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
        trees.retain(|tree| tree != &temporary);
        Ok(old.clone())
    });
    let replaced = match renamed {
        Ok(replaced) => replaced,
        Err(failure) => {
            let _ = std::fs::remove_dir_all(&temporary);
            signals::unregister(&temporary);
            return Err(failure);
        }
    };
    if replace {
        // What was replaced may be a file or a symlink, not only a tree.
        let is_dir = std::fs::symlink_metadata(&replaced).is_ok_and(|m| m.is_dir());
        let removed = if is_dir {
            std::fs::remove_dir_all(&replaced)
        } else {
            std::fs::remove_file(&replaced)
        };
        if let Err(error) = removed {
            warn!(
                "could not remove the replaced {}: {error}; the next run removes it",
                replaced.display()
            );
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

fn build_tree(
    cli: &Cli,
    payload: &mut Payload,
    interpreter: &Interpreter,
    plan: &Plan,
    destination: &Path,
    temporary: &Path,
    phases: &mut Phases,
) -> Result<(u64, u64), Failure> {
    std::fs::create_dir(temporary)
        .map_err(|error| Failure::io("cannot create", temporary, &error))?;
    let app_name = payload.manifest().app.name.clone();

    let phase = Instant::now();
    let extracted = extract::extract_tree(payload, temporary)?;
    phases.extract = phase.elapsed().as_secs_f64();
    debug!(
        files = extracted.files,
        "extracted the app and static files"
    );

    let phase = Instant::now();
    let venv = VenvPaths {
        root: temporary.join("venv"),
        final_root: destination.join("venv"),
        site_packages: interpreter.site_packages(),
    };
    create_venv(&venv, interpreter, env!("CARGO_PKG_VERSION"))?;
    write_hooks(&venv.root.join(&venv.site_packages), &app_name)?;
    phases.venv = phase.elapsed().as_secs_f64();

    // Wheels go in batches; each batch's byte-code is compiled before the next batch starts,
    // so the list of files to compile never spans the whole payload.
    let mut reports = Vec::with_capacity(plan.wheels.len());
    let mut install_seconds = 0.0;
    let mut compile_seconds = 0.0;
    let mut precompiled_wheels = 0;
    let progress = &phases.progress;
    let mut phase = Instant::now();
    let mut shared_paths = Vec::new();
    install_all(
        payload,
        interpreter,
        plan,
        &venv,
        progress,
        &mut shared_paths,
        &mut |batch_reports, precompiled| {
            install_seconds += phase.elapsed().as_secs_f64();
            phase = Instant::now();
            let jobs = compile_jobs(batch_reports, precompiled, cli.no_compile, &venv);
            precompiled_wheels += precompiled.iter().filter(|p| **p).count();
            reports.append(batch_reports);
            if !jobs.is_empty() {
                let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
                progress.phase("compiling", jobs.len() as u64);
                compile(
                    &venv.root.join("bin/python"),
                    &jobs,
                    workers,
                    &signals::register_child,
                    &|| progress.step(),
                )?;
            }
            compile_seconds += phase.elapsed().as_secs_f64();
            phase = Instant::now();
            Ok(())
        },
    )?;
    phases.install = install_seconds;
    phases.compile = compile_seconds;
    phases.precompiled_wheels = precompiled_wheels;
    phases.shared_paths = shared_paths;

    let files = extracted.files + reports.iter().map(|r| r.files).sum::<u64>();
    let bytes = extracted.bytes + reports.iter().map(|r| r.bytes).sum::<u64>();
    let receipt = Receipt {
        pysfx_version: env!("CARGO_PKG_VERSION").to_string(),
        app_version: payload.manifest().app.version.clone(),
        payload_sha256: payload.digest(),
        artifact: payload.path().display().to_string(),
        installed_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
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
        files,
        bytes,
        manifest: payload.manifest().clone(),
    };
    let text = serde_json::to_vec_pretty(&receipt)
        .map_err(|error| Failure::other(format!("cannot write the receipt: {error}")))?;
    let path = temporary.join(RECEIPT_NAME);
    pysfx_wheel::write_new(&path, &text, 0o644)
        .map_err(|error| Failure::io("cannot write", &path, &error))?;
    crate::sbom::write_for_set(payload, &plan.set_name, temporary)?;
    Ok((files, bytes))
}

/// The `.py` files of a batch to compile at install: those of wheels that came without
/// byte-code, unless `--no-compile`. Takes the file lists out of the reports.
fn compile_jobs(
    reports: &mut [InstallReport],
    precompiled: &[bool],
    no_compile: bool,
    venv: &VenvPaths,
) -> Vec<CompileJob> {
    let mut jobs = Vec::new();
    for (report, precompiled) in reports.iter_mut().zip(precompiled) {
        let python_files = std::mem::take(&mut report.python_files);
        if *precompiled || no_compile {
            continue;
        }
        jobs.extend(python_files.into_iter().map(|relative| {
            // The `.pyc` records the file's final place, so tracebacks name the release.
            let display = Path::new(&relative)
                .parent()
                .map(|parent| venv.final_root.join(parent))
                .unwrap_or_else(|| venv.final_root.clone());
            CompileJob {
                path: venv.root.join(&relative),
                display_directory: display.to_string_lossy().into_owned(),
            }
        }));
    }
    jobs
}

/// Installs the plan's wheels, each read in place from the artifact, in batches (see
/// BATCH_MEMBERS), calling `after_batch` after each. Within a batch the members of all wheels
/// are spread over the threads (biggest first), so one large wheel does not leave the others
/// idle; each wheel is checked against its manifest digest and planned before any member is
/// written.
fn install_all(
    payload: &mut Payload,
    interpreter: &Interpreter,
    plan: &Plan,
    venv: &VenvPaths,
    progress: &Progress,
    shared_paths: &mut Vec<SharedPath>,
    after_batch: AfterBatch<'_>,
) -> Result<(), Failure> {
    let layout = Layout {
        root: venv.root.clone(),
        site_packages: venv.site_packages.clone(),
        python_version: interpreter.major_minor(),
        shebang_python: venv
            .final_root
            .join("bin/python")
            .to_string_lossy()
            .into_owned(),
        installer: "pysfx".into(),
        app_name: Some(payload.manifest().app.name.clone()),
    };
    let mut ranges = Vec::new();
    for wheel in &plan.wheels {
        let range = payload.stored_range(&wheel.path)?;
        let filename: WheelFilename = wheel.filename.parse()?;
        ranges.push((filename, range, wheel.sha256.as_str()));
    }
    // Byte-code compiled at pack time by this very interpreter version (same magic number and
    // cache tag); any other wheel is compiled after the install.
    let matching: Vec<Option<(u64, String)>> = plan
        .wheels
        .iter()
        .map(|wheel| {
            payload
                .manifest()
                .bytecode
                .iter()
                .find(|bundle| {
                    bundle.wheel == wheel.path
                        && bundle.magic == interpreter.magic
                        && interpreter.cache_tag.as_deref() == Some(bundle.cache_tag.as_str())
                })
                .map(|bundle| (bundle.source_mtime, bundle.path.clone()))
        })
        .collect();
    let mut bundles: Vec<Option<(u64, (u64, u64))>> = Vec::with_capacity(plan.wheels.len());
    for bundle in matching {
        bundles.push(match bundle {
            Some((mtime, path)) => Some((mtime, payload.stored_range(&path)?)),
            None => None,
        });
    }
    let file = payload.file();
    let threads = install_threads();

    // Wheels go in batches (see BATCH_MEMBERS), so the zip directories and plans held at once,
    // and so the memory, stay bounded however large the payload is.
    let total: u64 = plan.wheels.iter().map(|wheel| wheel.unpacked_bytes).sum();
    let mut done = 0u64;
    let batch_limit = batch_members_limit();
    let mut batch = Vec::new();
    let mut batch_bytes = 0u64;
    let mut batch_members = 0u64;
    let mut shared = SharedPaths::default();
    let names: Vec<&str> = plan.wheels.iter().map(|w| w.filename.as_str()).collect();
    for index in 0..plan.wheels.len() {
        let wheel = &plan.wheels[index];
        batch.push(index);
        batch_bytes += wheel.unpacked_bytes;
        batch_members += wheel.members;
        let last = index + 1 == plan.wheels.len();
        let next_members = plan.wheels.get(index + 1).map_or(0, |next| next.members);
        if last || batch_bytes >= BATCH_BYTES || batch_members + next_members > batch_limit {
            let ranges: Vec<_> = batch.iter().map(|&i| ranges[i].clone()).collect();
            let bundles: Vec<_> = batch.iter().map(|&i| bundles[i]).collect();
            let wheels: Vec<&WheelEntry> = batch.iter().map(|&i| &plan.wheels[i]).collect();
            progress.phase("installing", total);
            progress.advance(done);
            let batch_plan = BatchPlan {
                ranges: &ranges,
                bundles: &bundles,
                wheels: &wheels,
                first_rank: batch[0],
                names: &names,
            };
            let (mut batch_reports, batch_precompiled) =
                install_batch(file, &batch_plan, &layout, threads, progress, &mut shared)?;
            after_batch(&mut batch_reports, &batch_precompiled)?;
            release_free_memory();
            done += batch_bytes;
            batch.clear();
            batch_bytes = 0;
            batch_members = 0;
        }
    }
    report_shared_paths(&shared.found);
    *shared_paths = shared.found;
    Ok(())
}

/// One warning per pair of wheels that ship paths with different content.
fn report_shared_paths(found: &[SharedPath]) {
    let mut pairs: Vec<(&str, &str, usize, &str)> = Vec::new();
    for shared in found {
        match pairs
            .iter_mut()
            .find(|(kept, replaced, _, _)| *kept == shared.kept && *replaced == shared.replaced)
        {
            Some(pair) => pair.2 += 1,
            None => pairs.push((&shared.kept, &shared.replaced, 1, &shared.path)),
        }
    }
    for (kept, replaced, count, first) in pairs {
        warn!(
            "{kept} and {replaced} both ship {count} path(s) with different content (first: {first}); {kept}'s are installed, as the later distribution in name order"
        );
    }
}

/// Called after each batch with its wheels' reports and whether each came with byte-code; it
/// takes the reports it keeps out of the vector.
type AfterBatch<'a> = &'a mut dyn FnMut(&mut Vec<InstallReport>, &[bool]) -> Result<(), Failure>;

/// Hands memory freed by a finished batch back to the system. Each batch's threads allocate
/// in their own malloc arenas, which glibc does not shrink by itself, so without this the
/// resident size grows with the payload even though the live heap stays bounded.
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: malloc_trim only returns unused memory of the allocator to the system; it has no
    // preconditions and touches no memory the program owns. glibc has it since 2.0.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Threads that write files: one per core, at most MAX_INSTALL_THREADS (each holds buffers and
/// a malloc arena; past a few, the disk, not the CPU, bounds the install).
fn install_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(MAX_INSTALL_THREADS)
}

const MAX_INSTALL_THREADS: usize = 8;

/// Wheels installed together add up to at most BATCH_BYTES unpacked or BATCH_MEMBERS members
/// (one wheel larger than that makes a batch of its own). What a batch holds in memory (zip
/// directories, plans, one outcome per member) grows with its members, so these bound the
/// memory of an install whatever the payload's size.
const BATCH_BYTES: u64 = 64 << 20;
const BATCH_MEMBERS: u64 = 4096;

/// BATCH_MEMBERS, or `$PYSFX_BATCH_MEMBERS` (at least 1) for a machine short of memory.
fn batch_members_limit() -> u64 {
    crate::env_whole_number("PYSFX_BATCH_MEMBERS", BATCH_MEMBERS).max(1)
}

/// A wheel's name, its byte range in the artifact, and its manifest digest.
type WheelRange<'a> = (WheelFilename, (u64, u64), &'a str);

/// One batch: its wheels' ranges, byte-code bundles and manifest entries, all in plan order,
/// the plan position of its first wheel, and the plan's wheel names by position.
struct BatchPlan<'a> {
    ranges: &'a [WheelRange<'a>],
    bundles: &'a [Option<(u64, (u64, u64))>],
    wheels: &'a [&'a WheelEntry],
    first_rank: usize,
    names: &'a [&'a str],
}

/// Installs one batch of wheels: each checked and planned, then all their members (and
/// byte-code) spread over the threads, biggest first, then each finished.
fn install_batch(
    file: &std::sync::Arc<std::fs::File>,
    batch: &BatchPlan<'_>,
    layout: &Layout,
    threads: usize,
    progress: &Progress,
    shared: &mut SharedPaths,
) -> Result<(Vec<InstallReport>, Vec<bool>), Failure> {
    let BatchPlan {
        ranges,
        bundles,
        wheels,
        ..
    } = *batch;
    // 1. Digest, central directory and plan of every wheel, in parallel.
    let opened: Vec<Result<(ZipArchive<Section>, PreparedWheel), Failure>> =
        parallel_map(ranges, threads, |(filename, (start, len), sha256)| {
            check_digest(Section::new(file, *start, *len), filename, sha256)?;
            let mut archive =
                ZipArchive::new(Section::new(file, *start, *len)).map_err(|source| {
                    WheelError::Zip {
                        wheel: filename.to_string(),
                        source,
                    }
                })?;
            let prepared = prepare_wheel(&mut archive, filename, layout)?;
            Ok((archive, prepared))
        });
    let mut archives = Vec::with_capacity(opened.len());
    let mut prepared = Vec::with_capacity(opened.len());
    for ((result, bundle), entry) in opened.into_iter().zip(bundles).zip(wheels) {
        let (archive, mut wheel) = result?;
        // What was decided from the manifest before writing must be what is installed.
        pysfx_plan::check_entry(entry, &wheel)
            .map_err(|reason| Failure::new(code::CORRUPT, reason))?;
        if let Some((mtime, _)) = bundle {
            wheel.set_source_mtime(UNIX_EPOCH + std::time::Duration::from_secs(*mtime));
        }
        archives.push(archive);
        prepared.push(wheel);
    }
    shared.plan_batch(&mut prepared, batch.first_rank, batch.names);
    let mut bytecode: Vec<(usize, OpenBundle)> = Vec::new();
    for (wheel, bundle) in bundles.iter().enumerate() {
        let Some((_, (start, len))) = bundle else {
            continue;
        };
        let opened = open_bundle(
            Section::new(file, *start, *len),
            &wheels[wheel].filename,
            &prepared[wheel],
            &layout.site_packages,
        )?;
        bytecode.push((wheel, opened));
    }

    // 2. Every member of every wheel, biggest first.
    let mut tasks: Vec<(Task, u64)> = prepared
        .iter()
        .enumerate()
        .flat_map(|(wheel, p)| {
            (0..p.members()).map(move |member| (Task::Member(wheel, member), p.member_size(member)))
        })
        .chain(
            bytecode
                .iter()
                .enumerate()
                .flat_map(|(bundle, (_, (_, members)))| {
                    members
                        .iter()
                        .enumerate()
                        .map(move |(member, pyc)| (Task::Bytecode(bundle, member), pyc.size))
                }),
        )
        .collect();
    tasks.sort_by_key(|task| std::cmp::Reverse(task.1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let outcomes: Mutex<Vec<Vec<(usize, MemberOutcome)>>> =
        Mutex::new(prepared.iter().map(|_| Vec::new()).collect());
    let first_error: Mutex<Option<Failure>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(tasks.len().max(1)) {
            scope.spawn(|| {
                // Each thread reads through its own copies of the archives (they share the
                // parsed central directories) and keeps its own directory cache.
                let mut local: Vec<Option<ZipArchive<Section>>> =
                    archives.iter().map(|_| None).collect();
                let mut local_bytecode: Vec<Option<ZipArchive<Section>>> =
                    bytecode.iter().map(|_| None).collect();
                let mut writer = TreeWriter::new(&layout.root);
                let mut done = Vec::new();
                while !failed.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((task, _)) = tasks.get(index) else {
                        break;
                    };
                    let result = match *task {
                        Task::Member(wheel, member) => {
                            let archive =
                                local[wheel].get_or_insert_with(|| archives[wheel].clone());
                            extract_member(archive, &prepared[wheel], member, layout, &mut writer)
                                .map(|outcome| done.push((wheel, member, outcome)))
                                .map_err(Failure::from)
                        }
                        Task::Bytecode(bundle, member) => {
                            let (wheel, (archive, members)) = &bytecode[bundle];
                            let archive =
                                local_bytecode[bundle].get_or_insert_with(|| archive.clone());
                            write_bytecode(
                                archive,
                                &members[member],
                                layout,
                                &mut writer,
                                &wheels[*wheel].filename,
                            )
                        }
                    };
                    if let Err(error) = result {
                        failed.store(true, Ordering::Relaxed);
                        lock(&first_error).get_or_insert(error);
                        break;
                    }
                    progress.advance(tasks[index].1);
                }
                let mut outcomes = lock(&outcomes);
                for (wheel, member, outcome) in done {
                    outcomes[wheel].push((member, outcome));
                }
            });
        }
    });
    if let Some(failure) = lock(&first_error).take() {
        return Err(failure);
    }

    // 3. Launchers, INSTALLER, REQUESTED and RECORD of each wheel.
    let mut writer = TreeWriter::new(&layout.root);
    let mut reports = Vec::with_capacity(prepared.len());
    let outcomes = outcomes
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for (wheel, mut members) in prepared.iter().zip(outcomes) {
        members.sort_by_key(|(member, _)| *member);
        let members = members.into_iter().map(|(_, outcome)| outcome).collect();
        reports.push(finish_wheel(wheel, members, layout, &mut writer)?);
    }
    let precompiled = bundles.iter().map(Option::is_some).collect();
    Ok((reports, precompiled))
}

/// One unit of install work.
#[derive(Debug, Clone, Copy)]
enum Task {
    /// Member `.1` of wheel `.0`.
    Member(usize, usize),
    /// `.pyc` file `.1` of byte-code bundle `.0`.
    Bytecode(usize, usize),
}

/// A byte-code bundle's archive and its members.
type OpenBundle = (ZipArchive<Section>, Vec<BundleMember>);

/// One `.pyc` file of a bundle: its number and name in the bundle, its size, and how it is
/// written (as its source `.py` is, when another wheel ships the same path).
struct BundleMember {
    index: usize,
    name: String,
    size: u64,
    disposition: Disposition,
}

/// Opens a byte-code bundle and checks every member: a `.pyc` file in a `__pycache__`
/// directory, under a safe name, once. Each follows its source's disposition in `prepared`.
fn open_bundle(
    section: Section,
    wheel: &str,
    prepared: &PreparedWheel,
    site_packages: &str,
) -> Result<OpenBundle, Failure> {
    let corrupt =
        |reason: String| Failure::new(code::CORRUPT, format!("byte-code of {wheel}: {reason}"));
    let mut archive = ZipArchive::new(section).map_err(|error| corrupt(error.to_string()))?;
    if archive.has_duplicate_names() {
        return Err(corrupt("duplicate entry".into()));
    }
    let exceptions = prepared.exceptions();
    let mut members = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|error| corrupt(error.to_string()))?;
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| corrupt("a name is not UTF-8".into()))?
            .to_string();
        validate_member_name(&name).map_err(|reason| corrupt(format!("{name:?}: {reason}")))?;
        let Some(source) = pyc_source(&name).filter(|_| !entry.is_symlink()) else {
            return Err(corrupt(format!(
                "{name:?} is not a .pyc file in __pycache__"
            )));
        };
        let disposition = exceptions
            .get(format!("{site_packages}/{source}").as_str())
            .copied()
            .unwrap_or(Disposition::Create);
        members.push(BundleMember {
            index,
            name,
            size: entry.size(),
            disposition,
        });
    }
    Ok((archive, members))
}

/// `pkg/__pycache__/mod.cpython-311.pyc` → `pkg/mod.py`; `None` for anything else.
fn pyc_source(name: &str) -> Option<String> {
    let (directory, file) = name.rsplit_once("__pycache__/")?;
    if !(directory.is_empty() || directory.ends_with('/')) || file.contains('/') {
        return None;
    }
    let stem = file.strip_suffix(".pyc")?.split('.').next()?;
    (!stem.is_empty()).then(|| format!("{directory}{stem}.py"))
}

/// Writes one `.pyc` file of a bundle into site-packages, streamed, never past its declared
/// size.
fn write_bytecode(
    archive: &mut ZipArchive<Section>,
    member: &BundleMember,
    layout: &Layout,
    writer: &mut TreeWriter,
    wheel: &str,
) -> Result<(), Failure> {
    let name = &member.name;
    let corrupt = |reason: String| {
        Failure::new(
            code::CORRUPT,
            format!("byte-code of {wheel}: {name}: {reason}"),
        )
    };
    let entry = archive
        .by_index(member.index)
        .map_err(|error| corrupt(error.to_string()))?;
    let declared = entry.size();
    let options = CopyOptions {
        disposition: member.disposition,
        ..CopyOptions::new(0o644)
    };
    let copied = writer
        .copy(
            &format!("{}/{name}", layout.site_packages),
            &mut entry.take(declared + 1),
            options,
        )
        .map_err(|error| match error {
            CopyError::Read(error) => corrupt(error.to_string()),
            CopyError::Write(error) => Failure::from(error),
        })?;
    if copied.read_size != declared {
        return Err(corrupt("its size differs from the zip header".into()));
    }
    Ok(())
}

/// Locks a mutex, taking its data even if another thread panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `items.iter().map(work)` on `threads` threads, results in order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads.min(items.len()).max(1) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { break };
                let result = work(item);
                lock(&results).push((index, result));
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// The wheel's bytes against the manifest's SHA-256 for it.
fn check_digest(
    mut section: Section,
    filename: &WheelFilename,
    expected: &str,
) -> Result<(), Failure> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = std::io::Read::read(&mut section, &mut buffer)
            .map_err(|error| Failure::new(code::CORRUPT, format!("{filename}: {error}")))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    let actual = pysfx_format::hex(&hasher.finalize());
    if actual != expected {
        return Err(Failure::new(
            code::CORRUPT,
            format!("{filename}: sha256 {actual} differs from the manifest's {expected}"),
        ));
    }
    Ok(())
}
