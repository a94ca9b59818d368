//! Collecting wheels with pip (pip is the resolver; pysfx never resolves), and reading what the
//! packer needs to know about each wheel.

mod build;
mod pip;
mod projects;
mod sets;
mod target;
mod wheel;

pub use build::{build_for_targets, BuiltLines};
pub(crate) use pip::NEWEST_PATCH;
pub use pip::{pip_download_bootstrap, pip_download_target, pip_tmpdir, pip_wheel, PipSources};
pub use projects::ProjectLitter;
pub use sets::{
    check_requirements_present, interpreter_fit, join_prebuilt, root_requirements, target_fit,
};
pub use target::{parse_target, target_of, ParsedTarget};
pub(crate) use wheel::{dist_info_directory, wheel_filename};
pub use wheel::{read_wheel, wheels_in, WheelInfo};
