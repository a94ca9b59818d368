//! Releases beside DEST: the receipt each install leaves (`pysfx-receipt.json`) and the link
//! that names the current release.
//!
//! Everything here works on directories that hold installed releases; nothing installs. The
//! stub maps [`ReleaseError`] to its exit codes.

pub mod link;
pub mod receipt;

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
