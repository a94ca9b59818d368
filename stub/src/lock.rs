//! One run per DEST at a time: an exclusive `flock` on a persistent lock file beside DEST,
//! `.<name>.pysfx-lock`. A second run waits for the first (up to `PYSFX_LOCK_TIMEOUT` seconds,
//! default 600), then sees the finished install and reports it unchanged.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use tracing::info;

use crate::failure::{code, Failure};

pub struct DestinationLock {
    _lock: Flock<File>,
}

/// Writes into DEST's lock file (held by this run) the release LINK points at, before LINK is
/// moved to DEST: `--keep` keeps that one for a rollback whenever DEST is deployed again
/// without LINK moving. A lock file this user cannot open for writing (another user's)
/// records nothing; a write that fails (no space left) is an error, and LINK must then stay
/// where it is, or a later `--keep` would remove the release it served.
pub fn record_replaced(destination: &Path, replaced: &Path) -> Result<(), Failure> {
    use std::io::Write;
    // Spelled beside DEST as DEST is (`www/../releases/4`, or a path through a linked
    // directory, names `releases/4` too), so that [`recorded_replaced`] takes it.
    let beside = (replaced.file_name())
        .zip(destination.parent())
        .map(|(name, parent)| parent.join(name))
        .filter(|beside| crate::install::is_release(beside, replaced));
    let replaced = beside.as_deref().unwrap_or(replaced);
    let path = lock_path(destination);
    let flags = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC;
    let opened = OpenOptions::new()
        .write(true)
        .custom_flags(flags)
        .open(&path);
    let Ok((mut file, metadata)) = opened.and_then(|file| file.metadata().map(|m| (file, m)))
    else {
        return Ok(());
    };
    if !metadata.is_file() || std::os::unix::fs::MetadataExt::nlink(&metadata) != 1 {
        return Ok(());
    }
    (file.set_len(0))
        .and_then(|()| file.write_all(replaced.as_os_str().as_encoded_bytes()))
        .map_err(|error| {
            let what = format!(
                "cannot record that LINK pointed at {} (a later --keep keeps it by that) in",
                replaced.display()
            );
            Failure::io(&what, &path, &error)
        })
}

/// What [`record_replaced`] wrote for DEST, if anything.
pub fn recorded_replaced(destination: &Path) -> Option<std::path::PathBuf> {
    let bytes = pysfx_release::paths::read_regular(&lock_path(destination)).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let path = std::path::PathBuf::from(text);
    // Beside DEST however either was spelled (`srv/releases` where `srv -> data/app`).
    let (name, parent) = (path.file_name()?, destination.parent()?);
    let beside = path
        .parent()
        .is_some_and(|at| crate::install::is_release(at, parent));
    (path.is_absolute() && beside).then(|| parent.join(name))
}

/// Held while a run reads what LINK points at and repoints it: an exclusive `flock` on LINK's
/// directory (no file of its own is made there; its missing parents are made first, as the
/// switch makes them). A deploy and an `--activate` of one LINK at once then each see the
/// release the other left, so `--keep` keeps the one LINK really replaced. Waits up to 10
/// seconds for another run's switch; past that (the directory locked by something else), or
/// when the directory cannot be opened, the switch goes on unlocked, with a warning.
pub fn hold_link(link: &Path) -> Option<Flock<File>> {
    let parent = link.parent()?;
    let flags = nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC;
    let open = || {
        OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(parent)
    };
    let opened = match open() {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            // What cannot be made is the switch's to report.
            let _ = pysfx_release::link::make_parent(link);
            open()
        }
        opened => opened,
    };
    let directory = match opened {
        Ok(directory) => directory,
        Err(error) => {
            tracing::warn!(
                "cannot lock {} ({error}): switching {} without the lock",
                parent.display(),
                link.display()
            );
            return None;
        }
    };
    let started = Instant::now();
    let mut directory = directory;
    loop {
        match Flock::lock(directory, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Some(lock),
            Err((file, Errno::EWOULDBLOCK)) if started.elapsed() < Duration::from_secs(10) => {
                directory = file;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((_, errno)) => {
                if errno == Errno::EWOULDBLOCK {
                    tracing::warn!(
                        "{} stayed locked for 10 s: switching {} without the lock",
                        parent.display(),
                        link.display()
                    );
                }
                return None;
            }
        }
    }
}

pub fn lock_path(destination: &Path) -> std::path::PathBuf {
    let name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    destination.with_file_name(format!(".{name}.pysfx-lock"))
}

/// `force`: the run may replace what DEST holds (`--force`), so a DEST it may not lock is no
/// conflict to it, only a missing permission.
pub fn acquire(destination: &Path, force: bool) -> Result<DestinationLock, Failure> {
    let path = lock_path(destination);
    let timeout = lock_timeout();
    let started = Instant::now();
    let mut announced = false;
    loop {
        let file = open_lock_file(&path).map_err(|failure| match force {
            true => failure,
            false => another_users(destination, failure),
        })?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            // A prune removes a release's lock file with the release: one opened just before
            // is a lock on nothing, and the next run makes another. Open the name again.
            Ok(lock) if !pysfx_release::prune::still_names(&path, &lock) => continue,
            Ok(lock) => return Ok(DestinationLock { _lock: lock }),
            Err((_, Errno::EWOULDBLOCK)) => {
                if started.elapsed() >= timeout {
                    return Err(Failure::new(
                        code::CONFLICT,
                        format!(
                            "{} is locked by another pysfx run (waited {} s, PYSFX_LOCK_TIMEOUT \
                             sets how long; lock file {})",
                            destination.display(),
                            timeout.as_secs(),
                            path.display()
                        ),
                    ));
                }
                if !announced {
                    info!(
                        "another pysfx run holds the lock of {} (installing it, or linking from it); waiting for it",
                        destination.display()
                    );
                    announced = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err((_, errno)) => {
                return Err(Failure::new(
                    code::OTHER,
                    format!("cannot lock {}: {errno}", path.display()),
                ))
            }
        }
    }
}

/// A lock file this user may not open or make, beside a DEST of another user's it may not take
/// (see `pysfx_release::release::may_be_taken`): without `--force` that DEST is a conflict
/// (exit 5), as it is once its lock is held, not a missing permission.
fn another_users(destination: &Path, failure: Failure) -> Failure {
    use std::os::unix::fs::MetadataExt;
    let Ok(metadata) = std::fs::symlink_metadata(destination) else {
        return failure;
    };
    if failure.code != code::MACHINE || pysfx_release::release::may_be_taken(destination) {
        return failure;
    }
    Failure::new(
        code::CONFLICT,
        format!(
            "{} belongs to another user (uid {}), and this user may not open its lock file {}; \
             refusing",
            destination.display(),
            metadata.uid(),
            lock_path(destination).display()
        ),
    )
}

/// Opens the lock file without ever following a link at its path (a user who can write the
/// releases directory could plant one pointing at `/etc/nologin`), without blocking on a planted
/// FIFO, and read-only when another user (root) made it: `flock` needs no write permission, so a
/// re-run by a user of its group (or one it was opened to) can still lock it. Anything but a regular file there is refused.
fn open_lock_file(path: &Path) -> Result<File, Failure> {
    use nix::libc::{O_CLOEXEC, O_NOFOLLOW, O_NONBLOCK};
    let flags = O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    let refuse = |what: &str| {
        Failure::new(
            code::CONFLICT,
            format!(
                "the lock file {} {what}; refusing to use it (remove it if you did not make it)",
                path.display()
            ),
        )
    };
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        // Not readable by others: flock(2) needs only read access, so a user who could
        // open the file could hold the lock and block every deploy of DEST.
        .mode(0o640)
        .custom_flags(flags)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(error) if error.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(refuse("is a symbolic link"))
        }
        Err(error) if error.raw_os_error() == Some(nix::libc::EISDIR) => {
            return Err(refuse("is a directory"))
        }
        Err(error)
            if error.kind() == std::io::ErrorKind::PermissionDenied
                || error.raw_os_error() == Some(nix::libc::EROFS) =>
        {
            match OpenOptions::new().read(true).custom_flags(flags).open(path) {
                Ok(file) => file,
                // A link another user planted in a sticky directory: EACCES for the create
                // under fs.protected_regular, ELOOP for the plain open.
                Err(again) if again.raw_os_error() == Some(nix::libc::ELOOP) => {
                    return Err(refuse("is a symbolic link"))
                }
                Err(_) if std::fs::symlink_metadata(path).is_ok() => {
                    return Err(Failure::io("cannot open the lock file", path, &error))
                }
                Err(_) => return Err(Failure::io("cannot create the lock file", path, &error)),
            }
        }
        Err(error) => return Err(Failure::io("cannot create the lock file", path, &error)),
    };
    let metadata = file
        .metadata()
        .map_err(|error| Failure::io("cannot read", path, &error))?;
    if !metadata.file_type().is_file() {
        return Err(refuse("is not a regular file"));
    }
    // A hard link of another file (planted by a user who can write the releases directory):
    // what `record_replaced` writes would land in that file.
    if std::os::unix::fs::MetadataExt::nlink(&metadata) > 1 {
        return Err(refuse("has other hard links"));
    }
    Ok(file)
}

/// `$PYSFX_LOCK_TIMEOUT` whole seconds, else 600.
pub fn lock_timeout() -> Duration {
    Duration::from_secs(crate::settings::env_whole_number("PYSFX_LOCK_TIMEOUT", 600))
}
