//! DEST and its siblings: paths made absolute, what DEST holds, what `--force` may replace,
//! the temporary and replaced trees beside it, and the free space for a new release.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use pysfx_format::Payload;
use pysfx_venv::Interpreter;
use tracing::warn;

use crate::failure::{code, Failure};
use pysfx_release::receipt::{self, RECEIPT_NAME};

/// DEST (or LINK, named by `what`) made absolute and lexically normalised (it need not exist
/// yet).
pub(crate) fn absolute_path(path: &Path, what: &str) -> Result<PathBuf, Failure> {
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
            // `..` as the kernel takes it: the parent of what the path so far leads to, past
            // any link in it (`rl/../releases` with `rl -> real/app/releases` is
            // `real/app/releases`), not the text before it.
            Component::ParentDir => {
                if let Ok(real) = std::fs::canonicalize(&normal) {
                    normal = real;
                }
                normal.pop();
            }
            Component::Normal(part) => normal.push(part),
            _ => {}
        }
    }
    // The receipt records it, and scripts name it: a path that is not UTF-8 (a working
    // directory that is not, under a relative DEST) could not be recorded as it is.
    if normal.to_str().is_none() {
        return Err(Failure::new(
            code::USAGE,
            format!(
                "{what} {} is not UTF-8 (from the working directory); give an absolute path \
                 that is",
                normal.display()
            ),
        ));
    }
    if normal.parent().is_none() {
        return Err(Failure::new(
            code::USAGE,
            format!("{what} cannot be the root directory"),
        ));
    }
    Ok(normal)
}

/// What a deployment keeps in DEST that a `--force` replacing it removes with the old tree:
/// `environment.json`, and SQLite files (`pysfx_release::check::is_database`) at DEST's top
/// or at the top of the app's directory (where Django puts `db.sqlite3`).
pub(crate) fn deployment_data(destination: &Path, app: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for (directory, top) in [
        (destination.to_path_buf(), true),
        (destination.join(app), false),
    ] {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kept =
                (top && name == "environment.json") || pysfx_release::check::is_database(&name);
            if kept && entry.file_type().is_ok_and(|kind| kind.is_file()) {
                found.push(entry.path());
            }
        }
    }
    found
}

pub(crate) enum Existing {
    Absent,
    SameRelease,
    Conflict(String),
    /// This very release, with files changed since (what `--check` finds); `--force`
    /// reinstalls it.
    Modified(String),
}

/// With `--force`, a release that holds this payload is reinstalled if `--check` finds it
/// modified.
pub(crate) fn check_unmodified(destination: &Path, payload: &mut Payload) -> Existing {
    let Some(receipt) = receipt::read(destination) else {
        return Existing::Modified("holds this release without a readable receipt".into());
    };
    // The receipt and RECORDs as the payload has them, as `--check` holds them.
    if !pysfx_install::held_to_payload(payload, &receipt, destination).is_empty() {
        return Existing::Modified("holds this release, its records edited".into());
    }
    let Some(contents) = &receipt.contents else {
        return Existing::Modified("holds this release without recorded digests".into());
    };
    let report = pysfx_install::stamps::check_release(destination, contents);
    if report.intact() {
        return Existing::SameRelease;
    }
    if !report.differs() {
        return Existing::Modified(format!(
            "holds this release, {} of whose files this user may not read",
            report.unreadable.len()
        ));
    }
    Existing::Modified(format!(
        "holds this release, modified ({} missing, {} modified, {} added)",
        report.missing.len(),
        report.modified.len(),
        report.added.len()
    ))
}

/// What DEST holds. `glance`: without looking for every recorded file (the first look, before
/// the lock, which only decides whether the payload must be hashed; the look under the lock
/// is whole).
pub(crate) fn inspect_destination(
    destination: &Path,
    digest: &str,
    interpreter: &Interpreter,
    glance: bool,
) -> Result<Existing, Failure> {
    let metadata = match std::fs::symlink_metadata(destination) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Absent),
        Err(error) => return Err(Failure::io("cannot read", destination, &error)),
    };
    if !metadata.is_dir() {
        return Ok(Existing::Conflict(
            match metadata.file_type().is_symlink() {
                true => "is a symbolic link, not a release directory".into(),
                false => "exists and is not a directory".into(),
            },
        ));
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
        // What `--activate` refuses: an incomplete release, one moved or copied here (its
        // scripts name another path), or one whose venv would not run this release's wheels.
        // Another user's tree in a directory anyone may write (a shared 1777 one) is theirs,
        // whatever its receipt says: never taken as installed, nor pointed at by LINK.
        Some(_) if !pysfx_release::release::may_be_taken(destination) => Ok(Existing::Conflict(
            pysfx_release::release::another_users(destination).into(),
        )),
        Some(receipt) => match unusable(destination, &receipt, glance) {
            Some(reason) => Ok(Existing::Conflict(format!(
                "holds an incomplete or broken install of this release: {reason}"
            ))),
            None => Ok(Existing::SameRelease),
        },
    }
}

/// Why the release in DEST cannot be taken as installed, [at a glance] or wholly.
///
/// [at a glance]: pysfx_release::release::unusable_at_a_glance
fn unusable(
    destination: &Path,
    receipt: &pysfx_release::receipt::Receipt,
    glance: bool,
) -> Option<String> {
    match glance {
        true => pysfx_release::release::unusable_at_a_glance(destination, receipt),
        false => pysfx_release::release::unusable(destination, receipt),
    }
}

/// What `--force` may replace: one release or a stray tree, never a directory that holds
/// releases (`-d releases/ --force`, from an empty shell variable) nor one that holds LINK's
/// target.
pub(crate) fn check_replaceable(destination: &Path, link: Option<&Path>) -> Result<(), Failure> {
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
        // (LINK serving DEST itself is fine: the release is replaced, and LINK serves the new.)
        if target != destination && target.starts_with(&destination) {
            return Err(refuse(format!(
                "holds the release --link points at ({})",
                target.display()
            )));
        }
    }
    let releases = releases_below(destination);
    if !releases.is_empty() {
        return Err(refuse(format!(
            "holds pysfx releases ({})",
            releases.join(", ")
        )));
    }
    Ok(())
}

/// What `--force` replaces must not hold the interpreter: the new release's venv would point
/// at a file the replacement removes (a Python unpacked into the release, `--python
/// DEST/py/bin/python`). Its executable, as the venv links it and as the kernel finds it, and
/// its installation's prefix are looked at; a venv's own `bin/python` is not this (its base
/// interpreter is what the new venv links).
pub(crate) fn check_interpreter_outside(
    destination: &Path,
    interpreter: &Interpreter,
) -> Result<(), Failure> {
    // A DEST that is a symbolic link is replaced as a link: what it leads to stays.
    let link = std::fs::symlink_metadata(destination).is_ok_and(|m| m.file_type().is_symlink());
    let Some(inside) = std::fs::canonicalize(destination).ok().filter(|_| !link) else {
        return Ok(());
    };
    let base = interpreter.base_executable();
    // Each link on the way from the name the venv links to the file itself, as the kernel
    // finds it (its directory's links resolved): one inside DEST goes with it.
    let mut hops = vec![base.clone()];
    let mut current = base.clone();
    for _ in 0..40 {
        let (Some(parent), Some(name)) = (current.parent(), current.file_name()) else {
            break;
        };
        let Ok(parent) = std::fs::canonicalize(parent) else {
            break;
        };
        let here = parent.join(name);
        hops.push(here.clone());
        match std::fs::read_link(&here) {
            Ok(target) => current = parent.join(target),
            Err(_) => break,
        }
    }
    hops.extend(std::fs::canonicalize(&interpreter.base_prefix));
    let held = (hops.iter()).any(|path| path.starts_with(destination) || path.starts_with(&inside));
    match held {
        true => Err(Failure::new(
            code::MACHINE,
            format!(
                "the interpreter {} lies inside {}, which --force replaces: the new release \
                 would lose it; use an interpreter outside DEST",
                base.display(),
                destination.display()
            ),
        )),
        false => Ok(()),
    }
}

/// What `--force` replaces must hold no mounted filesystem (shared uploads bind-mounted into
/// the release): removing the replaced tree would empty it.
pub(crate) fn check_unmounted(destination: &Path) -> Result<(), Failure> {
    match pysfx_release::paths::mounts_below(destination).first() {
        Some(point) => Err(Failure::new(
            code::CONFLICT,
            format!(
                "{}: --force would replace it, but {}",
                destination.display(),
                pysfx_release::prune::mounted(point)
            ),
        )),
        None => Ok(()),
    }
}

/// Directories below `destination`, down to [`RELEASES_DEPTH`] levels, that hold a pysfx
/// release (its receipt) or the lock files of releases: the first three, relative. An app's
/// root (`-d /srv/app --force`, its `releases/` one level down) is one; looking stops after
/// [`RELEASES_LOOKED_AT`] entries, so a large foreign tree costs a bounded look. Links are not
/// followed.
fn releases_below(destination: &Path) -> Vec<String> {
    let (mut found, mut locked) = (Vec::new(), Vec::new());
    let mut queue = vec![(PathBuf::new(), 0)];
    let mut looked_at = 0;
    'walk: while let Some((relative, depth)) = queue.pop() {
        let Ok(entries) = std::fs::read_dir(destination.join(&relative)) else {
            continue;
        };
        for entry in entries.flatten() {
            looked_at += 1;
            if looked_at > RELEASES_LOOKED_AT || found.len() == 3 {
                break 'walk;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let shown = || match depth {
                0 => ".".to_string(),
                _ => relative.to_string_lossy().into_owned(),
            };
            if kind.is_file() && depth > 0 && name == RECEIPT_NAME {
                found.push(shown());
            } else if kind.is_file() && name.starts_with('.') && name.ends_with(".pysfx-lock") {
                // Only the lock of a directory still there: a lock file outlives a refused
                // run (`-d foreign/x` where x is a file), and is no release.
                let release = name
                    .strip_prefix('.')
                    .and_then(|n| n.strip_suffix(".pysfx-lock"));
                let beside = release.map(|release| destination.join(&relative).join(release));
                if beside.is_some_and(|beside| {
                    std::fs::symlink_metadata(beside).is_ok_and(|m| m.is_dir())
                }) {
                    locked.push(shown());
                }
            } else if kind.is_dir() && depth < RELEASES_DEPTH {
                queue.push((relative.join(&*name), depth + 1));
            }
        }
    }
    // The releases themselves name it best; else the directories their lock files are in.
    if found.is_empty() {
        locked.dedup();
        locked.truncate(3);
        return locked;
    }
    found.truncate(3);
    found
}

const RELEASES_DEPTH: usize = 3;
const RELEASES_LOOKED_AT: usize = 20_000;

pub(crate) fn sibling(destination: &Path, kind: &str) -> PathBuf {
    numbered_sibling(destination, kind, "")
}

/// [`sibling`], or, when something is already there (what a run killed in another PID
/// namespace left under this run's own id, and the next run could not remove: a release
/// installed elsewhere, a mount below it), the first of `.<name>.pysfx-<kind>-<n>-<pid>` (`n`
/// from 1 to 9) that is free; with all ten taken, a refusal naming the first (exit 5). The
/// process id stays last, where readers of leftovers' names look for it. (Callers hold
/// DEST's lock: no other run makes these names meanwhile.)
pub(crate) fn free_sibling(destination: &Path, kind: &str) -> Result<PathBuf, Failure> {
    let first = sibling(destination, kind);
    std::iter::once(first.clone())
        .chain((1..=9).map(|n| numbered_sibling(destination, kind, &format!("{n}-"))))
        .find(|name| std::fs::symlink_metadata(name).is_err())
        .ok_or_else(|| {
            Failure::new(
                code::CONFLICT,
                format!(
                    "{} and the nine names after it (…-1-{pid} to …-9-{pid}) are taken by what \
                     killed runs left and this run may not remove: remove them",
                    first.display(),
                    pid = std::process::id()
                ),
            )
        })
}

fn numbered_sibling(destination: &Path, kind: &str, number: &str) -> PathBuf {
    let name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    destination.with_file_name(format!(".{name}.pysfx-{kind}-{number}{pid}"))
}

/// Swaps two paths atomically with `renameat2(RENAME_EXCHANGE)`. `Ok(false)` when the kernel
/// (before 3.15) or the filesystem cannot: the caller falls back to two renames. glibc 2.17 has
/// no wrapper, so it is the raw system call (x86_64 number 316).
#[allow(unsafe_code)]
pub(crate) fn exchange(first: &Path, second: &Path) -> std::io::Result<bool> {
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

/// Refuses a path (DEST, LINK) that leads through a symbolic link another user planted in a
/// shared directory — sticky and writable by everyone, as `/tmp` — unless that user owns the
/// directory: following it would write where they chose (`-d /tmp/app/releases/1` with their
/// `/tmp/app -> /home/you/data`, and `--force` would replace that data). This is the rule of
/// the kernel's `fs.protected_symlinks`, which some systems leave off. Exit 5.
pub(crate) fn check_shared_symlinks(path: &Path, what: &str) -> Result<(), Failure> {
    let euid = nix::unistd::geteuid().as_raw();
    let mut reached = PathBuf::from("/");
    for component in path.components().skip(1) {
        let directory = reached.clone();
        reached.push(component);
        let Ok(metadata) = std::fs::symlink_metadata(&reached) else {
            return Ok(());
        };
        if !metadata.file_type().is_symlink() || metadata.uid() == euid {
            continue;
        }
        let Ok(shared) = std::fs::metadata(&directory) else {
            continue;
        };
        let sticky_and_open = shared.mode() & 0o1002 == 0o1002;
        if sticky_and_open && metadata.uid() != shared.uid() {
            return Err(Failure::new(
                code::CONFLICT,
                format!(
                    "{what} {} leads through {}, a symbolic link user {} made in the shared \
                     directory {}; refusing to follow it (give a path without it)",
                    path.display(),
                    reached.display(),
                    metadata.uid(),
                    directory.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Temporary trees left by a run that was killed (SIGKILL, power loss): everything of this
/// user's named `.<name>.pysfx-…` beside DEST but the lock file. The caller holds the lock,
/// so no live run owns them. One exception: a run killed between the two renames of a replacement (kernels
/// without `RENAME_EXCHANGE`) left DEST missing and the previous release under
/// `.<name>.pysfx-old-<pid>`; that release is put back, not removed. Returns whether one was
/// (DEST changed: the run reports it).
pub(crate) fn remove_stale_siblings(destination: &Path) -> bool {
    let Some(parent) = destination.parent() else {
        return false;
    };
    let Some(name) = destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return false;
    };
    let mut restored = false;
    let prefix = format!(".{name}.pysfx-");
    let lock = format!(".{name}.pysfx-lock");
    let old = format!(".{name}.pysfx-old-");
    // Only this user's own entries are leftovers of its runs: in a directory others may write
    // (a group's 2775, a 1777), another user's entry named like one is theirs, neither put
    // back nor removed.
    let euid = nix::unistd::geteuid().as_raw();
    let mut entries: Vec<_> = entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            name.as_encoded_bytes().starts_with(prefix.as_bytes())
                && entry
                    .metadata()
                    .is_ok_and(|metadata| metadata.uid() == euid)
        })
        .collect();
    if std::fs::symlink_metadata(destination).is_err() {
        // Only a real directory holding a release installed at DEST: never a planted link,
        // file or foreign tree, nor a copy of another release (its receipt names where it was
        // installed).
        let restorable = entries.iter().position(|entry| {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            file_name.starts_with(&old)
                && !file_name.contains("-trash")
                && entry.file_type().is_ok_and(|kind| kind.is_dir())
                && installed_at(&entry.path()) == Some(true)
        });
        if let Some(index) = restorable {
            let entry = entries.swap_remove(index);
            match std::fs::rename(entry.path(), destination) {
                Ok(()) => {
                    restored = true;
                    warn!(
                        "put back the release {} that an interrupted --force run had moved to {}",
                        destination.display(),
                        entry.path().display()
                    )
                }
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
        if file_name == lock {
            continue;
        }
        // A release installed elsewhere, named as DEST's leftover, is no leftover of DEST's.
        if installed_at(&entry.path()) == Some(false) {
            warn!(
                "{} is named as a leftover of {} but holds a release installed elsewhere: left \
                 alone",
                entry.path().display(),
                destination.display()
            );
            continue;
        }
        if pysfx_release::prune::holds_a_release(&entry.path()) {
            continue;
        }
        if let Some(point) = pysfx_release::paths::mounts_below(&entry.path()).first() {
            let mounted = pysfx_release::prune::mounted(point);
            warn!("{} is left: {mounted}", entry.path().display());
            continue;
        }
        warn!(
            "removing {} left by an interrupted run",
            entry.path().display()
        );
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        let removed = if is_dir {
            pysfx_release::remove::remove_dir_all(&entry.path())
        } else {
            std::fs::remove_file(entry.path())
        };
        if let Err(error) = removed {
            warn!("could not remove {}: {error}", entry.path().display());
        }
    }
    restored
}

/// Whether the release in `tree` (a directory named as DEST's leftover: `.<DEST's
/// name>.pysfx-…`) was installed at DEST, by its receipt; `None` when it holds no readable
/// receipt.
fn installed_at(tree: &Path) -> Option<bool> {
    let name = tree.file_name()?.to_str()?.strip_prefix('.')?;
    let name = name.split(".pysfx-").next()?;
    let parent = std::fs::canonicalize(tree.parent()?).ok()?;
    // The place, not its spelling: DEST reached through a link to its parent is DEST.
    let recorded = receipt::read(tree)?.destination;
    let recorded = Path::new(&recorded);
    let same = recorded
        .file_name()
        .is_some_and(|recorded| recorded == name)
        && recorded
            .parent()
            .and_then(|parent| std::fs::canonicalize(parent).ok())
            .is_some_and(|recorded| recorded == parent);
    Some(same)
}

/// The address space an install needs at least: its threads' stacks and its buffers (its
/// resident memory stays under 32 MiB, bench/run.sh).
const MIN_ADDRESS_SPACE: u64 = 32 << 20;

/// The address-space limit (`ulimit -v`, the soft one) in bytes, if there is one.
#[allow(unsafe_code)]
pub(crate) fn address_space_limit() -> Option<u64> {
    let mut limit = nix::libc::rlimit {
        rlim_cur: nix::libc::RLIM_INFINITY,
        rlim_max: nix::libc::RLIM_INFINITY,
    };
    // SAFETY: getrlimit writes the struct it is given, which lives on this stack frame.
    let read = unsafe { nix::libc::getrlimit(nix::libc::RLIMIT_AS, &mut limit) };
    (read == 0 && limit.rlim_cur != nix::libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// The open files every mode may need at once (the artifact, a release's directories, a
/// thread's handles, the lock, the interpreter's pipes).
const MIN_OPEN_FILES: u64 = 64;

/// An open-file limit (`ulimit -n`) too low for any run: raised to the hard limit when that
/// allows (as far as 1,024), else refused (exit 4) before anything is read or written — a
/// file that cannot be opened would otherwise look unreadable, and a release modified.
#[allow(unsafe_code)]
pub(crate) fn check_open_files() -> Result<(), Failure> {
    use nix::libc::{getrlimit, rlimit, setrlimit, RLIMIT_NOFILE};
    let mut limit = rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given, which lives on this stack frame.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= MIN_OPEN_FILES {
        return Ok(());
    }
    let raised = rlimit {
        rlim_cur: limit.rlim_max.min(1024),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given, which lives on this stack frame.
    if raised.rlim_cur >= MIN_OPEN_FILES && unsafe { setrlimit(RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(());
    }
    Err(Failure::new(
        code::MACHINE,
        format!(
            "the open-file limit (ulimit -n) is {}; pysfx needs at least {MIN_OPEN_FILES}: raise it",
            limit.rlim_cur
        ),
    ))
}

/// An address-space limit (`ulimit -v`) too small for an install: refused before anything is
/// written, rather than an allocation failing midway, which aborts the run.
pub(crate) fn check_address_space() -> Result<(), Failure> {
    match address_space_limit() {
        Some(limit) if limit < MIN_ADDRESS_SPACE => Err(Failure::new(
            code::MACHINE,
            format!(
                "the address-space limit (ulimit -v) is {} KiB; an install needs at least {} \
                 MiB: raise it",
                limit >> 10,
                MIN_ADDRESS_SPACE >> 20
            ),
        )),
        _ => Ok(()),
    }
}

/// What an install will write on DEST's filesystem (see `install::planned_space`).
pub(crate) struct Needed {
    /// The bytes of the files it writes (not those it links).
    pub bytes: u64,
    /// The new inodes its files and directories take (a hard link takes none, but on tmpfs);
    /// `None` when the artifact does not count a wheel's members. A lower bound for artifacts
    /// packed before the manifest counted each wheel's directories.
    pub files: Option<u64>,
}

/// The nearest existing ancestor of `path` (itself included): DEST's parent need not exist
/// yet, and that ancestor is on the same filesystem unless a mount point is created in
/// between, which no install does.
pub(crate) fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|path| path.is_dir())
        .map(Path::to_path_buf)
}

/// Free space on DEST's filesystem for what the install writes plus byte-code and a margin,
/// and a free inode for every file and directory it creates.
pub(crate) fn check_free_space(parent: &Path, needed: Needed) -> Result<(), Failure> {
    let existing = existing_ancestor(parent).unwrap_or_else(|| parent.to_path_buf());
    let Ok(stats) = nix::sys::statvfs::statvfs(&existing) else {
        return Ok(());
    };
    // A filesystem that reports no inode count (Btrfs) makes them as it goes.
    let inodes = stats.files_available();
    match needed.files {
        Some(files) if stats.files() != 0 && inodes < files => {
            return Err(Failure::new(
                code::MACHINE,
                format!(
                    "not enough free inodes on {} (for {}): {inodes} available, at least \
                     {files} needed (one for each file and directory it makes; df -i shows them)",
                    existing.display(),
                    parent.display(),
                ),
            ));
        }
        _ => {}
    }
    // A filesystem that reports no size at all (ramfs) has no limit to check against.
    if stats.blocks() == 0 {
        return Ok(());
    }
    let available = stats
        .blocks_available()
        .saturating_mul(stats.fragment_size());
    let unpacked = needed.bytes;
    let needed = unpacked
        .saturating_add(unpacked / 2)
        .saturating_add(16 << 20);
    if available < needed {
        return Err(Failure::new(
            code::MACHINE,
            format!(
                "not enough free space on {} (for {}): {} MiB available, about {} MiB needed",
                existing.display(),
                parent.display(),
                available >> 20,
                // Rounded up: never "70 MiB available, about 70 MiB needed".
                needed.div_ceil(1 << 20)
            ),
        ));
    }
    Ok(())
}

/// Refuses a DEST under which one of the payload's own files (the app, the static
/// directories), or its byte-code, would have a path longer than Linux takes
/// (`pysfx_install::path_max`): before anything is written. DEST's length is its real one
/// (reached through a link to a deep directory, it is that long). The wheels' files are held
/// to the same limit as each wheel is planned.
pub(crate) fn check_path_lengths(destination: &Path, payload: &mut Payload) -> Result<(), Failure> {
    use pysfx_install::path_max::{real_length, too_long, PATH_MAX};
    let app = format!("{}/", payload.manifest().app.name);
    let root = real_length(destination);
    let artifact = payload.path().display().to_string();
    let archive = payload.archive();
    let names = (0..archive.len())
        .filter_map(|index| archive.name_for_index(index))
        .filter_map(Result::ok)
        .filter(|name| name.starts_with(&app) || name.starts_with("static.in/"));
    let mut too_long_path = None;
    for name in names {
        // A name no DEST could take (a component of over 255 bytes, a path of over 2,048) is
        // the artifact's fault, as its extraction would say.
        if let Err(reason) = pysfx_format::validate_member_name(&name) {
            return Err(Failure::new(
                code::CORRUPT,
                format!("{artifact}: unsafe payload entry {name:?}: {reason}"),
            ));
        }
        too_long_path = too_long_path.or_else(|| too_long(root, &name));
    }
    match too_long_path {
        None => Ok(()),
        Some(length) => Err(Failure::new(
            code::MACHINE,
            format!(
                "DEST {} is too long for this artifact: a file of its app would have a path of \
                 {length} bytes, and Linux takes none of {PATH_MAX} or more; choose a shorter DEST",
                destination.display()
            ),
        )),
    }
}
