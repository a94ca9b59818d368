//! Releases beside DEST: the receipt each install leaves (`pysfx-receipt.json`), the link that
//! names the current release, and what an operator does with releases over time: `--check` one
//! against its records, `--status` of all, `--keep N` (prune), `--activate` (roll back).
//!
//! Everything here works on directories that hold installed releases; nothing installs, and
//! nothing writes outside the releases' directory and LINK. The stub maps [`ReleaseError`] to
//! its exit codes.

pub mod activate;
pub mod check;
pub mod digest;
pub mod link;
pub mod paths;
pub mod prune;
pub mod receipt;
pub mod release;
pub mod remove;
pub mod status;
#[cfg(test)]
mod testing;

use std::path::PathBuf;

/// What can go wrong with releases and links. Each variant says which exit code it means (the
/// stub's `failure.rs` maps them).
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// An I/O error: no space and no permission are the machine's (exit 4), anything else
    /// exit 1.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// LINK exists and is not a symlink (exit 5).
    #[error("--link {} exists and is not a symlink; refusing to replace it", link.display())]
    LinkNotSymlink { link: PathBuf },
    /// What LINK's parent would be is not a directory (exit 5).
    #[error("--link {}: {} is not a directory; refusing it", link.display(), parent.display())]
    LinkParentNotDirectory { link: PathBuf, parent: PathBuf },
    /// LINK does not exist (exit 1: there is nothing to show).
    #[error("{} does not exist; give the link that points at the current release", link.display())]
    NoLink { link: PathBuf },
    /// A directory that is not a complete pysfx release (exit 5, as any DEST conflict).
    #[error("{} {reason}; refusing it", path.display())]
    NotARelease { path: PathBuf, reason: String },
    /// A release of another app (exit 5).
    #[error("{} holds a release of {found:?}, not of {expected:?} (this artifact's app); refusing it", path.display())]
    OtherApp {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// A release whose receipt records no file digests (a stub before `--check`): exit 1.
    #[error("{} was installed by pysfx {version}, which recorded no file digests; reinstall it with --force to check it later", path.display())]
    NotCheckable { path: PathBuf, version: String },
}

impl ReleaseError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ReleaseError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
