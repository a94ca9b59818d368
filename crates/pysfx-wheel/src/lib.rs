//! Wheels: the pure parts (filenames, platform tags, RECORD, METADATA, entry points, script
//! text) and a native installer that writes a wheel into a virtualenv as PEP 427 says and as
//! pip does, checking every member against the wheel's RECORD on the way.

mod entry_points;
mod filename;
mod install;
mod metadata;
mod name;
mod paths;
mod record;
mod requirement;
mod script;
mod select;
mod tags;
mod tree;

pub use entry_points::{EntryPoint, EntryPoints};
pub use filename::{BuildTag, WheelFilename};
pub use install::{
    extract_member, finish_wheel, install_wheel, prepare_wheel, verify_wheel, Destination,
    InstallReport, Layout, MemberOutcome, PreparedWheel, Slot, HOOK_MODULE, HOOK_PTH,
};
pub use metadata::Headers;
pub use name::{dist_info_name, normalize_name};
pub use paths::{relative_path, resolve_link, validate_member_name};
pub use record::{hash_bytes, Record, RecordEntry};
pub use requirement::{Marker, MarkerEnvironment, Requirement, RequirementError};
pub use script::{format_shebang, launcher_script, python_shebang_end, rewrite_python_shebang};
pub use select::{python_satisfies, select, Candidate, Missing, Selection, Skipped};
pub use tags::{InterpreterTags, PlatformFacts, Tag};
pub use tree::{
    create_dirs_below, create_exclusive, write_new, Copied, CopyError, CopyOptions, Disposition,
    ReadHash, TreeWriter,
};

use std::path::PathBuf;

/// What can go wrong with a wheel. Variants other than [`WheelError::Io`] mean the wheel itself
/// is invalid or unsafe.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid wheel filename {filename:?}: {reason}")]
    InvalidFilename { filename: String, reason: String },
    #[error("{wheel}: not a readable zip: {source}")]
    Zip {
        wheel: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{wheel}: unsafe member {member:?}: {reason}")]
    UnsafeMember {
        wheel: String,
        member: String,
        reason: String,
    },
    #[error("{wheel}: {reason}")]
    Invalid { wheel: String, reason: String },
    #[error("{path} is already there; refusing to write it twice or over something else")]
    PathTaken { path: String },
    #[error("{wheel}: {member} does not match its RECORD entry ({reason})")]
    RecordMismatch {
        wheel: String,
        member: String,
        reason: String,
    },
}

impl WheelError {
    /// True when the error is about the wheel's content (corrupt or hostile) rather than about
    /// the machine (disk, permissions).
    pub fn is_content_error(&self) -> bool {
        !matches!(self, WheelError::Io { .. })
    }
}
