//! `--activate DEST --link LINK`: a rollback without the older artifact.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::link::{check_link, repoint_link};
use crate::prune::{try_lock, LockRefused};
use crate::{release, ReleaseError};

/// A release `--activate` may point LINK at, held (a shared lock on it, so `--keep` passes
/// over it) until dropped.
pub struct Activatable {
    _lock: Option<Flock<File>>,
}

/// Checks that `destination` is a complete release of `app` (its receipt, and
/// `release::unusable`'s quick check) that LINK may point at, and holds it. A run holding it
/// exclusively (an install of it, `--keep` removing it) is waited for, up to `wait`.
pub fn check(
    destination: &Path,
    link: &Path,
    app: &str,
    wait: Duration,
) -> Result<Activatable, ReleaseError> {
    check_link(link)?;
    // Held shared until LINK points at the release: `--keep` (which locks a release
    // exclusively to remove it) passes over it meanwhile, so LINK is never left dangling.
    let lock = match destination.file_name() {
        Some(name) => {
            let lock =
                destination.with_file_name(format!(".{}.pysfx-lock", name.to_string_lossy()));
            let started = Instant::now();
            let held = loop {
                match try_lock(&lock, FlockArg::LockSharedNonblock) {
                    Err(LockRefused::Held) if started.elapsed() < wait => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    held => break held,
                }
            };
            held.map_err(|refused| {
                // A lock this user may not open is no release in use: beside another
                // user's release this user may not take, that release is refused as it would
                // be once locked; otherwise exit 4, as any file the run may not read.
                match refused {
                    LockRefused::Open(..)
                        if destination.symlink_metadata().is_ok()
                            && !release::may_be_taken(destination) =>
                    {
                        ReleaseError::NotARelease {
                            path: destination.to_path_buf(),
                            reason: release::another_users(destination).into(),
                        }
                    }
                    LockRefused::Open(path, source)
                        if source.kind() == std::io::ErrorKind::PermissionDenied =>
                    {
                        ReleaseError::Io {
                            what: "cannot open the lock",
                            path,
                            source,
                        }
                    }
                    LockRefused::Held => ReleaseError::NotARelease {
                        path: destination.to_path_buf(),
                        reason: format!(
                            "is in use ({}, waited {} s)",
                            LockRefused::Held,
                            wait.as_secs()
                        ),
                    },
                    refused => ReleaseError::NotARelease {
                        path: destination.to_path_buf(),
                        reason: format!("is in use ({refused})"),
                    },
                }
            })?
        }
        None => None,
    };
    let receipt = release::open(destination, app)?;
    if !release::may_be_taken(destination) {
        return Err(ReleaseError::NotARelease {
            path: destination.to_path_buf(),
            reason: release::another_users(destination).into(),
        });
    }
    if let Some(reason) = release::unusable(destination, &receipt) {
        return Err(ReleaseError::NotARelease {
            path: destination.to_path_buf(),
            reason: format!("is not a release LINK can point at: {reason}"),
        });
    }
    Ok(Activatable { _lock: lock })
}

/// [`check`], then LINK pointed at the release. Returns whether LINK moved.
pub fn activate(
    destination: &Path,
    link: &Path,
    app: &str,
    wait: Duration,
) -> Result<bool, ReleaseError> {
    let _held = check(destination, link, app, wait)?;
    repoint_link(link, destination)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_release;

    #[test]
    fn repoints_only_to_complete_releases_of_the_app() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let one = fake_release(temporary.path(), "1", "mysite", 1);
        let two = fake_release(temporary.path(), "2", "mysite", 2);
        let other = fake_release(temporary.path(), "3", "otherapp", 3);
        let link = temporary.path().join("current");
        std::os::unix::fs::symlink(&two, &link).expect("link");
        assert!(activate(&one, &link, "mysite", Duration::ZERO).expect("activate"));
        assert_eq!(std::fs::read_link(&link).expect("read"), one);
        assert!(!activate(&one, &link, "mysite", Duration::ZERO).expect("again"));
        assert!(matches!(
            activate(&other, &link, "mysite", Duration::ZERO),
            Err(ReleaseError::OtherApp { .. })
        ));
        // A release whose interpreter is now another Python (`alternatives` moved a link)
        // would not run: refused, naming both versions.
        std::fs::remove_file(two.join("venv/bin/python")).expect("unlink");
        std::os::unix::fs::symlink(
            "/root/.pyenv/versions/3.12.1/bin/python3.12",
            two.join("venv/bin/python"),
        )
        .expect("relink");
        match activate(&two, &link, "mysite", Duration::ZERO) {
            Err(ReleaseError::NotARelease { reason, .. }) => {
                assert!(reason.contains("Python 3.12.1"), "{reason}");
                assert!(reason.contains("3.11.7"), "{reason}");
            }
            other => panic!("activated a release of another Python: {other:?}"),
        }
        assert_eq!(std::fs::read_link(&link).expect("read"), one);
        std::fs::remove_file(two.join("venv/bin/python")).expect("unlink");
        std::os::unix::fs::symlink(crate::testing::PYTHON_311, two.join("venv/bin/python"))
            .expect("mend");
        std::fs::remove_file(two.join("venv/pyvenv.cfg")).expect("break");
        assert!(matches!(
            activate(&two, &link, "mysite", Duration::ZERO),
            Err(ReleaseError::NotARelease { .. })
        ));
        let stray = temporary.path().join("stray");
        std::fs::create_dir(&stray).expect("stray");
        assert!(matches!(
            activate(&stray, &link, "mysite", Duration::ZERO),
            Err(ReleaseError::NotARelease { .. })
        ));
        assert_eq!(std::fs::read_link(&link).expect("read"), one);
        // A release another run holds (`--keep` removing it, an install of it) is not
        // activated.
        let lock = std::fs::File::create(temporary.path().join(".2.pysfx-lock")).expect("lock");
        let held = nix::fcntl::Flock::lock(lock, FlockArg::LockExclusiveNonblock).expect("held");
        std::fs::write(two.join("venv/pyvenv.cfg"), "home = /usr/bin\n").expect("mend");
        assert!(matches!(
            activate(&two, &link, "mysite", Duration::ZERO),
            Err(ReleaseError::NotARelease { reason, .. }) if reason.contains("holds its lock")
        ));
        assert_eq!(std::fs::read_link(&link).expect("read"), one);
        // Given time, it waits for the run to let go.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let waited = Instant::now();
        assert!(activate(&two, &link, "mysite", Duration::from_secs(30)).expect("waited"));
        assert!(waited.elapsed() >= Duration::from_millis(250));
        releaser.join().expect("join");
        assert_eq!(std::fs::read_link(&link).expect("read"), two);
        let file = temporary.path().join("file");
        std::fs::write(&file, "").expect("file");
        assert!(matches!(
            activate(&one, &file, "mysite", Duration::ZERO),
            Err(ReleaseError::LinkNotSymlink { .. })
        ));
    }
}
