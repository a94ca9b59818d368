//! The link that names the current release (`--link LINK`), switched atomically.

use std::path::Path;

use tracing::{debug, info};

use crate::ReleaseError;

/// A LINK that exists must be a symlink.
pub fn check_link(link: &Path) -> Result<(), ReleaseError> {
    match std::fs::symlink_metadata(link) {
        Ok(metadata) if !metadata.file_type().is_symlink() => Err(ReleaseError::LinkNotSymlink {
            link: link.to_path_buf(),
        }),
        Ok(_) => Ok(()),
        // Its parents, as far as they exist, must be directories (links to them followed): a
        // file there would fail the switch only after the install.
        Err(_) => match link.ancestors().skip(1).find(|parent| parent.exists()) {
            Some(parent) if !parent.is_dir() => Err(ReleaseError::LinkParentNotDirectory {
                link: link.to_path_buf(),
                parent: parent.to_path_buf(),
            }),
            _ => Ok(()),
        },
    }
}

/// Whether the symlink `link` leads to the directory `destination` itself: its text names it,
/// or names that very directory another way (a relative link a playbook made, `current ->
/// releases/42`). A link to another link that leads there (`current -> staging ->
/// releases/42`) does not: it would follow `staging` wherever that is moved next.
pub fn points_at(link: &Path, destination: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::read_link(link) else {
        return false;
    };
    if target == destination {
        return true;
    }
    let target = match link.parent() {
        Some(parent) => parent.join(target),
        None => target,
    };
    // The target's own last name not followed: a link there is another link.
    let leads = std::fs::symlink_metadata(&target)
        .ok()
        .filter(|m| m.is_dir());
    let identity = std::fs::metadata(destination).ok();
    match (leads, identity) {
        (Some(leads), Some(identity)) => {
            (leads.dev(), leads.ino()) == (identity.dev(), identity.ino())
        }
        _ => false,
    }
}

/// Makes LINK's missing parent directories, 0775 less the umask, as a release's directories:
/// never writable by others.
pub fn make_parent(link: &Path) -> Result<(), ReleaseError> {
    if let Some(parent) = link.parent() {
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(builder.recursive(true), 0o775);
        builder
            .create(parent)
            .map_err(|error| ReleaseError::io("cannot create", parent, error))?;
    }
    Ok(())
}

/// Points LINK at DEST atomically: a new link beside it, renamed over it.
/// Returns whether the link moved (false when it already pointed at DEST).
pub fn repoint_link(link: &Path, destination: &Path) -> Result<bool, ReleaseError> {
    check_link(link)?;
    if points_at(link, destination) {
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
    make_parent(link)?;
    // The pid, and a random part: two runs of one pid (each the first process of its own
    // container) or a name planted there never meet.
    let mut attempt = 0;
    let temporary = loop {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let temporary = link.with_file_name(format!(
            ".{name}.pysfx-link-{}-{random:016x}",
            std::process::id()
        ));
        match std::os::unix::fs::symlink(destination, &temporary) {
            Ok(()) => break temporary,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                attempt += 1;
            }
            Err(error) => {
                return Err(ReleaseError::io(
                    "cannot create the link",
                    &temporary,
                    error,
                ))
            }
        }
    };
    std::fs::rename(&temporary, link).map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        ReleaseError::io("cannot repoint", link, error)
    })?;
    info!("{} now points at {}", link.display(), destination.display());
    remove_stale_temporaries(link, &name);
    Ok(true)
}

/// Removes the new links runs killed between making one and renaming it over LINK left
/// beside it (`.<name>.pysfx-link-<pid>-<random>`, or `…-<pid>` of earlier runs): each only when
/// it is a symlink and no process of
/// that pid lives (a live one may be a run switching LINK now).
fn remove_stale_temporaries(link: &Path, name: &str) {
    let Some(parent) = link.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let prefix = format!(".{name}.pysfx-link-");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|text| text.strip_prefix(&prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let dead = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH);
        let symlink = entry.file_type().is_ok_and(|kind| kind.is_symlink());
        if pid > 0 && dead && symlink && std::fs::remove_file(entry.path()).is_ok() {
            debug!(
                "removed {}, left by a run killed while it switched the link",
                entry.path().display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pid of a process that has ended.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        pid
    }

    /// LINK leads to DEST when it names it, by its path or another (`current ->
    /// releases/42`), not when it names a link that leads there today.
    #[test]
    fn a_link_through_another_link_is_repointed() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path().join("releases");
        let release = releases.join("42");
        std::fs::create_dir_all(&release).expect("mkdir");
        let link = temporary.path().join("current");
        std::os::unix::fs::symlink("releases/42", &link).expect("relative");
        assert!(points_at(&link, &release));
        assert!(!repoint_link(&link, &release).expect("left alone"));
        std::fs::remove_file(&link).expect("rm");
        let staging = temporary.path().join("staging");
        std::os::unix::fs::symlink(&release, &staging).expect("staging");
        std::os::unix::fs::symlink("staging", &link).expect("through staging");
        assert!(!points_at(&link, &release));
        assert!(repoint_link(&link, &release).expect("switched"));
        assert_eq!(std::fs::read_link(&link).expect("link"), release);
        // A link to a file, or to nothing, leads to no release.
        std::fs::write(temporary.path().join("notes"), "").expect("notes");
        std::fs::remove_file(&link).expect("rm");
        std::os::unix::fs::symlink("notes", &link).expect("to a file");
        assert!(!points_at(&link, &release));
    }

    /// A name planted where a run of this pid would make its new link (a directory, as a
    /// run of the same pid in another container could leave) does not stop the switch.
    #[test]
    fn a_name_planted_for_the_new_link_does_not_stop_the_switch() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = temporary.path().join("1");
        std::fs::create_dir(&release).expect("mkdir");
        let link = temporary.path().join("current");
        let planted = temporary
            .path()
            .join(format!(".current.pysfx-link-{}", std::process::id()));
        std::fs::create_dir(&planted).expect("plant");
        assert!(repoint_link(&link, &release).expect("switched"));
        assert_eq!(std::fs::read_link(&link).expect("link"), release);
        assert!(
            planted.is_dir(),
            "the planted directory is not the run's to remove"
        );
    }

    #[test]
    fn a_switch_removes_new_links_killed_runs_left_but_not_a_live_runs() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let (one, two) = (temporary.path().join("1"), temporary.path().join("2"));
        std::fs::create_dir(&one).expect("mkdir");
        std::fs::create_dir(&two).expect("mkdir");
        let link = temporary.path().join("current");
        let stale = temporary
            .path()
            .join(format!(".current.pysfx-link-{}", dead_pid()));
        let live = temporary.path().join(".current.pysfx-link-1");
        let not_a_link = temporary
            .path()
            .join(format!(".current.pysfx-link-{}", dead_pid()));
        std::os::unix::fs::symlink(&one, &stale).expect("plant");
        std::os::unix::fs::symlink(&one, &live).expect("plant");
        std::fs::write(&not_a_link, "x").expect("plant");
        assert!(repoint_link(&link, &two).expect("switch"));
        assert_eq!(std::fs::read_link(&link).expect("link"), two);
        assert!(std::fs::symlink_metadata(&stale).is_err());
        assert!(std::fs::symlink_metadata(&live).is_ok());
        assert!(not_a_link.is_file());
        assert!(one.is_dir());
    }
}
