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
        _ => Ok(()),
    }
}

/// Points LINK at DEST atomically: a new link beside it, renamed over it.
/// Returns whether the link moved (false when it already pointed at DEST).
/// Whether the symlink `link` leads to the directory `destination`: its text names it, or it
/// resolves to that very directory (a relative link a playbook made, `current -> releases/42`).
pub fn points_at(link: &Path, destination: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::read_link(link) else {
        return false;
    };
    if target == destination {
        return true;
    }
    let identity = |path: &Path| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    identity(link).is_some() && identity(link) == identity(destination)
}

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
    let temporary = link.with_file_name(format!(".{name}.pysfx-link-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| ReleaseError::io("cannot create", parent, error))?;
    }
    std::os::unix::fs::symlink(destination, &temporary)
        .map_err(|error| ReleaseError::io("cannot create the link", &temporary, error))?;
    std::fs::rename(&temporary, link).map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        ReleaseError::io("cannot repoint", link, error)
    })?;
    info!("{} now points at {}", link.display(), destination.display());
    Ok(true)
}
