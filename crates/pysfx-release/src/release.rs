//! One installed release: its receipt read and held to the app, and the quick completeness
//! check that `--activate` and `--status` use (`--check` is the deep one).

use std::path::Path;

use crate::receipt::{self, Receipt};
use crate::ReleaseError;

/// The receipt of the release in `destination`, which must be a real directory (not a link)
/// holding a readable receipt of `app`.
pub fn open(destination: &Path, app: &str) -> Result<Receipt, ReleaseError> {
    let not_a_release = |reason: &str| ReleaseError::NotARelease {
        path: destination.to_path_buf(),
        reason: reason.to_string(),
    };
    match std::fs::symlink_metadata(destination) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return Err(not_a_release("is a symbolic link, not a release directory"))
        }
        Ok(metadata) if !metadata.is_dir() => return Err(not_a_release("is not a directory")),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(not_a_release("does not exist"))
        }
        Err(error) => return Err(ReleaseError::io("cannot read", destination, error)),
    }
    let Some(receipt) = receipt::read(destination) else {
        // A receipt this user may not read (another user's release, hardened with `chmod -R
        // o-rwx`) is a missing permission (exit 4), not a missing release.
        let path = destination.join(receipt::RECEIPT_NAME);
        // (Never waiting on a FIFO planted there, nor following a link.)
        if let Err(error) = crate::paths::open_regular(&path, u64::MAX) {
            if error.kind() == std::io::ErrorKind::PermissionDenied {
                return Err(ReleaseError::io("cannot read", &path, error));
            }
        }
        return Err(not_a_release(&format!(
            "is not a pysfx release: it has no readable {}",
            receipt::RECEIPT_NAME
        )));
    };
    if receipt.manifest.app.name != app {
        return Err(ReleaseError::OtherApp {
            path: destination.to_path_buf(),
            found: receipt.manifest.app.name,
            expected: app.to_string(),
        });
    }
    Ok(receipt)
}

/// Why the venv's interpreter is no longer the Python the release was installed for (its
/// `X.Y`: the wheels, their byte-code and site-packages are that version's), e.g. another
/// version behind the same link after `alternatives` moved it, or none that runs. `None` when
/// it is — known without starting it when `bin/python` still leads to the very binary the
/// install ran.
pub fn interpreter_changed(destination: &Path, receipt: &Receipt) -> Option<String> {
    let python = destination.join("venv/bin/python");
    let python = python.to_str()?;
    let binary = pysfx_venv::BinaryIdentity::of(python).and_then(|binary| binary.text());
    if let (Some(installed), Some(binary)) = (&receipt.interpreter, binary) {
        if installed.binary == binary {
            return None;
        }
    }
    let mut parts = receipt.python_version.split('.');
    let wanted = format!("{}.{}", parts.next()?, parts.next()?);
    // Never run through the venv: its `pyvenv.cfg` and site-packages are the release's, which
    // another user (the service user it was `chown`ed to) may write, and `--status` or
    // `--check` run by root would run their code. The binary `bin/python` leads to is asked
    // directly, and only when no other user can change it.
    let binary = match std::fs::canonicalize(python) {
        Ok(binary) => binary,
        Err(error) => return Some(format!("venv/bin/python does not lead to a file: {error}")),
    };
    if !only_trusted_users_can_change(&binary) {
        return Some(format!(
            "venv/bin/python leads to {}, which another user can change: it is not run",
            binary.display()
        ));
    }
    match pysfx_venv::Interpreter::query(&binary.to_string_lossy()) {
        Ok(interpreter) => {
            let (major, minor) = interpreter.major_minor();
            (format!("{major}.{minor}") != wanted).then(|| {
                format!(
                    "venv/bin/python is now Python {}; the release was installed for {}",
                    interpreter.version(),
                    receipt.python_version
                )
            })
        }
        Err(error) => Some(format!("venv/bin/python does not run: {error}")),
    }
}

/// Whether only root and this user can change the file `path` or the directory it is in (each
/// owned by one of them, writable by no group or other user): a program there may be run.
fn only_trusted_users_can_change(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid().as_raw();
    let trusted = |path: &Path| {
        std::fs::metadata(path)
            .is_ok_and(|m| (m.uid() == 0 || m.uid() == euid) && m.mode() & 0o022 == 0)
    };
    trusted(path) && path.parent().is_some_and(trusted)
}

/// Why the release in `destination` is not where it was installed: moved or copied (`mv`,
/// `cp -a`, a restore elsewhere) since, its console scripts' `#!` lines and `bin/activate`
/// still name the path its receipt records, which no longer leads to this directory. `None`
/// when it does (through whatever links its parents have gained since).
pub fn moved(destination: &Path, receipt: &Receipt) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let identity = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    let here = identity(destination);
    (here.is_none() || identity(Path::new(&receipt.destination)) != here).then(|| {
        format!(
            "it was installed as {} and moved or copied since: its scripts name that path",
            receipt.destination
        )
    })
}

/// Why a release could not serve as LINK's target, by the quick check `--activate`,
/// `--status` and a re-run make (no hashing): [`incomplete`], [`moved`] or its interpreter
/// [changed](interpreter_changed). `None` when none of these.
pub fn unusable(destination: &Path, receipt: &Receipt) -> Option<String> {
    not_complete(destination, receipt)
        .or_else(|| moved(destination, receipt))
        .or_else(|| interpreter_changed(destination, receipt))
}

/// [`unusable`] at a glance: its checks but for looking for every recorded file, which a
/// run makes again, under DEST's lock, before it takes the release as installed.
pub fn unusable_at_a_glance(destination: &Path, receipt: &Receipt) -> Option<String> {
    incomplete(destination, receipt)
        .or_else(|| moved(destination, receipt))
        .or_else(|| interpreter_changed(destination, receipt))
}

/// Why [`may_be_taken`] refuses a release in a directory others may write, as `--activate`
/// and `--status` say it (see [`another_users`]).
pub const ANOTHER_USERS: &str = "belongs to another user, in a directory other users may write";

/// Why [`may_be_taken`] refuses `release`: [`ANOTHER_USERS`] in a directory its group or
/// others may write, else only whose it is.
pub fn another_users(release: &Path) -> &'static str {
    use std::os::unix::fs::MetadataExt;
    let open = (release.parent())
        .and_then(|parent| std::fs::metadata(parent).ok())
        .is_some_and(|parent| parent.mode() & 0o022 != 0);
    match open {
        true => ANOTHER_USERS,
        false => "belongs to another user",
    }
}

/// Whether a release is one this user may take as installed (a re-run) or point LINK at
/// (`--activate`): one [`is_trusted`], or root's (no other user can have changed it).
pub fn may_be_taken(release: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    is_trusted(release) || std::fs::symlink_metadata(release).is_ok_and(|m| m.uid() == 0)
}

/// Whether a release beside DEST is one this user's deploys may count, prune and link from:
/// its directory is this user's, or (for root) another user's in a directory writable by
/// neither its group (unless that is root's group) nor others (a release `chown`ed to the
/// service user). In a directory others may write (a shared `1777` one, or a deploy group's
/// `2775` or `3775`), another user's release is theirs alone: a copy of a release with a
/// forged, newer install time would otherwise count towards `--keep N` and have this user's
/// own release removed, or be taken as installed. (The directory's owner is trusted as
/// its releases are: it can move any release in or out of the directory anyway.)
pub fn is_trusted(release: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid().as_raw();
    let Ok(metadata) = std::fs::symlink_metadata(release) else {
        return false;
    };
    if metadata.uid() == euid {
        return true;
    }
    let parent = release.parent().unwrap_or(release);
    let closed = |parent: std::fs::Metadata| {
        parent.mode() & 0o002 == 0 && (parent.mode() & 0o020 == 0 || parent.gid() == 0)
    };
    euid == 0 && std::fs::metadata(parent).is_ok_and(closed)
}

/// What is missing from a release by a quick look (no hashing): the app directory, the venv's
/// `pyvenv.cfg` and `bin/python`, each installed distribution's RECORD. `None` when nothing is.
pub fn incomplete(destination: &Path, receipt: &Receipt) -> Option<String> {
    missing_parts(destination, receipt, true)
}

/// [`incomplete`] for a release to link from, which needs no more: its files are read, its
/// scripts and interpreter are not used, so `venv/bin/python` need not lead anywhere (a
/// Python upgraded away since).
pub fn incomplete_to_link_from(destination: &Path, receipt: &Receipt) -> Option<String> {
    missing_parts(destination, receipt, false)
}

fn missing_parts(destination: &Path, receipt: &Receipt, interpreter: bool) -> Option<String> {
    let app = receipt.manifest.app.name.as_str();
    let mut required = vec![app.to_string(), "venv/pyvenv.cfg".to_string()];
    if interpreter {
        required.push("venv/bin/python".to_string());
    }
    match &receipt.contents {
        Some(contents) => required.extend(
            contents
                .dist_infos
                .iter()
                .map(|dist_info| format!("{dist_info}/RECORD")),
        ),
        None => {
            // A receipt from before `contents`: one `.dist-info` per installed wheel.
            let count = std::fs::read_dir(destination.join("venv/lib"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| std::fs::read_dir(entry.path().join("site-packages")).ok())
                .flat_map(|entries| entries.flatten())
                .filter(|entry| entry.file_name().to_string_lossy().ends_with(".dist-info"))
                .count();
            if count < receipt.wheels.len() {
                return Some(format!(
                    "{count} of {} distributions' metadata",
                    receipt.wheels.len()
                ));
            }
        }
    }
    // Each what it must be, not merely there: the app a directory, the files regular files
    // (a FIFO `pyvenv.cfg` would hang every interpreter start), `bin/python` a link that
    // leads to a file.
    let fits = |relative: &String| {
        let path = destination.join(relative);
        match relative.as_str() {
            "venv/bin/python" => std::fs::metadata(&path).is_ok_and(|m| m.is_file()),
            name if name == app => std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()),
            _ => std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()),
        }
    };
    let missing: Vec<String> = required.into_iter().filter(|r| !fits(r)).collect();
    missing_text(&missing)
}

/// What the quick look finds missing from a release ([`incomplete`]), or else which of the
/// files its receipt and RECORDs list are not there as written ([`recorded_but_missing`]):
/// what a complete release is for a re-run, `--activate`, `--status` and `--keep`. (A release
/// to link from needs only [`incomplete`]'s: a file changed there is not linked, it is
/// unpacked.)
pub fn not_complete(destination: &Path, receipt: &Receipt) -> Option<String> {
    incomplete(destination, receipt).or_else(|| {
        let contents = receipt.contents.as_ref()?;
        missing_text(&recorded_but_missing(destination, contents))
    })
}

fn missing_text(missing: &[String]) -> Option<String> {
    match missing {
        [] => None,
        [one] => Some(format!("{one} is missing or not what it should be")),
        [first, rest @ ..] => Some(format!(
            "{first} and {} more are missing or not what they should be",
            rest.len()
        )),
    }
}

/// The files the receipt and the RECORDs list that are not there as what they were written
/// (a regular file, or a link), by `lstat` alone (a file edited is `--check`'s to find): a distribution deleted
/// from site-packages (`rm -r`, `pip uninstall`) leaves an incomplete release, which a re-run,
/// `--activate` and `--status` must not take for a complete one. Byte-code and SQLite files,
/// which Python and the deployment change, are not looked at. Every directory on the way to
/// them must be a directory too: a package directory swapped for a symbolic link to a copy
/// elsewhere would have the files found there, outside the release.
fn recorded_but_missing(destination: &Path, contents: &crate::receipt::Contents) -> Vec<String> {
    use crate::paths::{in_pycache, resolve_record_path};
    let mut expected: Vec<(String, Kind)> = (contents.files.iter())
        .map(|file| match file.link {
            Some(_) => (file.path.clone(), Kind::Link),
            None => (file.path.clone(), Kind::File),
        })
        .collect();
    for dist_info in &contents.dist_infos {
        let text = crate::paths::read_regular(&destination.join(dist_info).join("RECORD"))
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some(record) = text.and_then(|text| pysfx_wheel::Record::parse(&text).ok()) else {
            expected.push((format!("{dist_info}/RECORD"), Kind::File));
            continue;
        };
        for row in record.entries {
            if let Some(path) = resolve_record_path(&contents.site_packages, &row.path) {
                expected.push((path, Kind::File));
            }
        }
    }
    // Looked up from site-packages and from DEST, opened once each (links on the way followed,
    // as a path would be): the kernel then walks two or three names per file, not ten.
    use std::os::unix::fs::OpenOptionsExt;
    let directory = |path: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
            .open(path)
            .ok()
    };
    let root = directory(destination);
    let site_prefix = format!("{}/", contents.site_packages);
    let site = directory(&destination.join(&contents.site_packages));
    let present = |path: &str, kind: Kind| {
        let (from, relative) = match (path.strip_prefix(&site_prefix), &site, &root) {
            (Some(relative), Some(site), _) => (site, relative),
            (_, _, Some(root)) => (root, path),
            _ => return false,
        };
        let Ok(status) =
            nix::sys::stat::fstatat(from, relative, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        else {
            return false;
        };
        status.st_mode & nix::libc::S_IFMT
            == match kind {
                Kind::File => nix::libc::S_IFREG,
                Kind::Link => nix::libc::S_IFLNK,
                Kind::Directory => nix::libc::S_IFDIR,
            }
    };
    expected.retain(|(path, _)| !in_pycache(path) && !crate::check::is_database(path));
    // Each directory by `lstat`, as the files are: a link on the way to one is found at its
    // own name (site-packages and those above it looked at from DEST).
    let mut directories: Vec<String> =
        pysfx_format::parent_directories(&mut expected.iter().map(|(path, _)| path.as_str()))
            .into_iter()
            .map(str::to_string)
            .collect();
    // (In order, so that what a run says is missing first is the same each time.)
    directories.sort_unstable();
    expected.extend((directories.into_iter()).map(|directory| (directory, Kind::Directory)));
    // On a few threads: a re-run that finds the release installed does little else.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let chunk = expected.len().div_ceil(threads).max(1);
    let look = |part: &[(String, Kind)]| -> Vec<(String, Kind)> {
        (part.iter())
            .filter(|(path, kind)| !present(path, *kind))
            .cloned()
            .collect()
    };
    let missing: Vec<(String, Kind)> = std::thread::scope(|scope| {
        let looks: Vec<_> = expected
            .chunks(chunk)
            .map(|part| {
                // A thread that cannot start (a process limit): this one looks itself.
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || look(part))
                    .map_err(|_| look(part))
            })
            .collect();
        looks
            .into_iter()
            .flat_map(|look| match look {
                Ok(thread) => thread.join().unwrap_or_else(|_| {
                    vec![("(a look at the release failed)".into(), Kind::File)]
                }),
                Err(missing) => missing,
            })
            .collect()
    });
    // The files, as `--check` counts them; the directories only when every file is there (a
    // directory made a link, its files found through it): a package deleted is its files
    // missing, not its files and directories.
    let files: Vec<String> = (missing.iter())
        .filter(|(_, kind)| !matches!(kind, Kind::Directory))
        .map(|(path, _)| path.clone())
        .collect();
    if !files.is_empty() {
        return files;
    }
    missing.into_iter().map(|(path, _)| path).collect()
}

/// What a path a release records must be.
#[derive(Clone, Copy)]
enum Kind {
    File,
    Link,
    Directory,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_release;

    #[test]
    fn opens_releases_of_the_app_only() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 10);
        assert!(open(&release, "mysite").is_ok());
        assert!(matches!(
            open(&release, "other"),
            Err(ReleaseError::OtherApp { .. })
        ));
        let stray = temporary.path().join("stray");
        std::fs::create_dir(&stray).expect("stray");
        assert!(matches!(
            open(&stray, "mysite"),
            Err(ReleaseError::NotARelease { .. })
        ));
        let link = temporary.path().join("link");
        std::os::unix::fs::symlink(&release, &link).expect("link");
        assert!(matches!(
            open(&link, "mysite"),
            Err(ReleaseError::NotARelease { .. })
        ));
        assert!(matches!(
            open(&temporary.path().join("absent"), "mysite"),
            Err(ReleaseError::NotARelease { .. })
        ));
    }

    #[test]
    fn a_missing_record_makes_it_incomplete() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 10);
        let receipt = open(&release, "mysite").expect("open");
        assert_eq!(incomplete(&release, &receipt), None);
        let contents = receipt.contents.as_ref().expect("contents");
        std::fs::remove_file(release.join(&contents.dist_infos[0]).join("RECORD")).expect("remove");
        let reason = incomplete(&release, &receipt).expect("incomplete");
        assert!(reason.contains("RECORD is missing"), "{reason}");
    }

    /// A release whose interpreter is gone (a Python upgraded away) is incomplete as a
    /// release to serve, not as one to link from: its files are all there.
    #[test]
    fn a_release_without_its_interpreter_may_still_be_linked_from() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 10);
        let receipt = open(&release, "mysite").expect("open");
        let python = release.join("venv/bin/python");
        std::fs::remove_file(&python).expect("rm");
        std::os::unix::fs::symlink("/nonexistent/python3.11", &python).expect("symlink");
        let reason = incomplete(&release, &receipt).expect("incomplete");
        assert!(reason.contains("venv/bin/python"), "{reason}");
        assert_eq!(incomplete_to_link_from(&release, &receipt), None);
        std::fs::remove_file(release.join("venv/pyvenv.cfg")).expect("rm");
        let reason = incomplete_to_link_from(&release, &receipt).expect("incomplete");
        assert!(reason.contains("venv/pyvenv.cfg"), "{reason}");
    }

    /// A distribution's files deleted (its RECORD kept) make the release incomplete by the
    /// quick look; a deleted `__pycache__` or an edited file does not.
    #[test]
    fn a_deleted_package_makes_it_incomplete() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 10);
        let receipt = open(&release, "mysite").expect("open");
        let site = release.join(crate::testing::SITE);
        std::fs::create_dir(site.join("pkg/__pycache__")).expect("mkdir");
        std::fs::remove_dir(site.join("pkg/__pycache__")).expect("rmdir");
        assert_eq!(not_complete(&release, &receipt), None);
        // A file edited is `--check`'s to find, not the quick look's.
        std::fs::write(site.join("pkg/util.py"), "").expect("truncate");
        assert_eq!(not_complete(&release, &receipt), None);
        std::fs::remove_file(site.join("pkg/util.py")).expect("rm");
        let reason = not_complete(&release, &receipt).expect("incomplete");
        assert!(reason.contains("pkg/util.py"), "{reason}");
        // (A release to link from: its other files may still be linked.)
        assert_eq!(incomplete(&release, &receipt), None);
        std::fs::remove_dir_all(site.join("pkg")).expect("rm -r");
        let reason = not_complete(&release, &receipt).expect("incomplete");
        // Its two files (as `--check` counts them), not the directory they were in too.
        assert!(reason.contains("pkg/__init__.py and 1 more"), "{reason}");
    }

    #[test]
    fn a_package_directory_swapped_for_a_link_makes_it_incomplete() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 10);
        let receipt = open(&release, "mysite").expect("open");
        let site = release.join(crate::testing::SITE);
        // Every file still found through the link, outside the release.
        let outside = temporary.path().join("outside");
        std::fs::rename(site.join("pkg"), &outside).expect("mv");
        std::os::unix::fs::symlink(&outside, site.join("pkg")).expect("ln -s");
        let reason = not_complete(&release, &receipt).expect("incomplete");
        assert!(
            reason.starts_with(&format!("{}/pkg is missing", crate::testing::SITE)),
            "{reason}"
        );
        // The same for a directory above site-packages.
        std::fs::remove_file(site.join("pkg")).expect("rm");
        std::fs::rename(&outside, site.join("pkg")).expect("mv back");
        assert_eq!(not_complete(&release, &receipt), None);
        let lib = release.join("venv/lib");
        std::fs::rename(&lib, &outside).expect("mv");
        std::os::unix::fs::symlink(&outside, &lib).expect("ln -s");
        let reason = not_complete(&release, &receipt).expect("incomplete");
        assert!(reason.starts_with("venv/lib is missing"), "{reason}");
    }

    /// The venv's interpreter is asked its version only when no other user can change the
    /// binary it leads to: root's `--status` and `--check` never run a program the release's
    /// owner (or anyone) planted. Asked through the venv, it would also read the release's
    /// `pyvenv.cfg`.
    #[test]
    fn a_planted_interpreter_is_not_run() {
        use std::os::unix::fs::PermissionsExt;
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 10);
        let receipt = open(&release, "mysite").expect("open");
        assert_eq!(interpreter_changed(&release, &receipt), None);
        let open_to_all = temporary.path().join("anyone");
        std::fs::create_dir(&open_to_all).expect("mkdir");
        std::fs::set_permissions(&open_to_all, std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let marker = temporary.path().join("ran");
        let script = open_to_all.join("python");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ntouch {}\nexec {} \"$@\"\n",
                marker.display(),
                crate::testing::PYTHON_311
            ),
        )
        .expect("script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let python = release.join("venv/bin/python");
        std::fs::remove_file(&python).expect("unlink");
        std::os::unix::fs::symlink(&script, &python).expect("link");
        let reason = interpreter_changed(&release, &receipt).expect("refused");
        assert!(reason.contains("another user can change"), "{reason}");
        assert!(!marker.exists(), "the planted interpreter ran");
    }
}
