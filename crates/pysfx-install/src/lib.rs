//! Installing an artifact into a tree: the app and static directories ([`extract_app`]), one
//! wheel ([`wheel`]), a wheel set in parallel batches ([`install_set`]), a whole release
//! ([`build_release`]) — and `verify`, which is the same install into a
//! [`pysfx_tree::NullTree`] ([`verify_contents`]).
//!
//! Every write goes through a [`pysfx_tree::Tree`]; progress goes to a [`Reporter`]; errors
//! say whose fault they are ([`InstallError::fault`]).

mod anchor;
mod app;
mod batch;
mod bytecode;
mod error;
mod links;
mod member;
mod parallel;
pub mod path_max;
mod pyc;
mod release;
mod reporter;
mod set;
mod shared;
mod sources;
mod spared;
pub mod stamps;
mod verify;
pub mod wheel;

pub use anchor::{held_to_payload, kept_record_rows};
pub use app::{app_rows, extract_app, Extracted};
pub use batch::{cut_batches, BatchLimits, WheelSize};
pub use bytecode::check_bundle_names;
pub use error::{io_fault, venv_fault, Fault, InstallError};
pub use links::{payload_links, PayloadLink};
pub use pyc::BytecodeLink;
pub use release::{build_release, Built, InstallOptions, Phases};
pub use reporter::{Reporter, Silent};
pub use set::{install_set, AfterBatch, BundleJob, SetOptions, WheelJob};
pub use shared::{file_directory_clash, FileDirectoryClash, SetMember, SharedPath};
pub use sources::{
    bytecode_from, candidate_for, check_unmoved, hold_sources, link_candidates, prefetch_stamps,
    source_for, Candidate, PassedOver, Prefetched,
};
pub use spared::SparedWheel;
pub use verify::{check_claims, check_claims_of, check_entry, verify_contents};
pub use wheel::{
    install_wheel, prepare_husk, prepare_wheel, verify_wheel, InstallReport, Layout, LinkSource,
    PreparedWheel, MAX_BASE_RECORD_BYTES, MAX_HUSK_RECORD_BYTES, MAX_METADATA_BYTES,
};
