//! One run per DEST at a time: an exclusive `flock` on a persistent lock file beside DEST,
//! `.<name>.pysfx-lock`. A second run waits for the first (up to `PYSFX_LOCK_TIMEOUT` seconds,
//! default 600), then sees the finished install and reports it unchanged.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use tracing::info;

use crate::failure::{code, Failure};

pub struct DestinationLock {
    _lock: Flock<File>,
}

pub fn lock_path(destination: &Path) -> std::path::PathBuf {
    let name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    destination.with_file_name(format!(".{name}.pysfx-lock"))
}

pub fn acquire(destination: &Path) -> Result<DestinationLock, Failure> {
    let path = lock_path(destination);
    let timeout = lock_timeout();
    let started = Instant::now();
    let mut announced = false;
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| Failure::io("cannot create the lock file", &path, &error))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(DestinationLock { _lock: lock }),
            Err((_, Errno::EWOULDBLOCK)) => {
                if started.elapsed() >= timeout {
                    return Err(Failure::new(
                        code::CONFLICT,
                        format!(
                            "{} is locked by another pysfx run (waited {} s; lock file {})",
                            destination.display(),
                            timeout.as_secs(),
                            path.display()
                        ),
                    ));
                }
                if !announced {
                    info!(
                        "another pysfx run is installing {}; waiting for it",
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

/// `$PYSFX_LOCK_TIMEOUT` whole seconds, else 600.
fn lock_timeout() -> Duration {
    Duration::from_secs(crate::env_whole_number("PYSFX_LOCK_TIMEOUT", 600))
}
