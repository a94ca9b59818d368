//! Wheels, the pure parts: filenames, platform tags, RECORD, METADATA, entry points, script
//! text, requirements and markers, and which wheel of a set an interpreter takes. Nothing here
//! writes a file: installing is `pysfx-install`'s.

mod bytecode;
mod entry_points;
mod filename;
mod metadata;
mod name;
mod paths;
mod record;
mod requirement;
mod script;
mod select;
mod skeleton;
mod tags;

pub use bytecode::{cpython_cache_tag, is_cpython_cache_tag, is_cpython_magic};
pub use entry_points::{EntryPoint, EntryPoints};
pub use filename::{BuildTag, WheelFilename};
pub use metadata::Headers;
pub use name::{dist_info_name, normalize_name};
pub use paths::{relative_path, resolve_link};
pub use record::{
    format_hash, hash_bytes, hash_digest, sha256_of_hash, Record, RecordEntry, MAX_RECORD_ROWS,
};
pub use requirement::{Marker, MarkerEnvironment, Requirement, RequirementError};
pub use script::{
    format_shebang, launcher_script, python_shebang_end, rewrite_python_shebang, script_shebang,
};
pub use select::{
    python_satisfies, requires_python_specifiers, select, Candidate, Missing, Selection, Skipped,
};
pub use skeleton::{
    data_member, fill_hashes, husk_carries, installers_own, named_rows, site_paths, site_rows,
    skeleton,
};
pub use tags::{InterpreterTags, PlatformFacts, Tag};

/// What can be wrong with a wheel: every variant is about its content (corrupt or hostile).
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
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
    #[error("{wheel}: {member} does not match its RECORD entry ({reason})")]
    RecordMismatch {
        wheel: String,
        member: String,
        reason: String,
    },
}
