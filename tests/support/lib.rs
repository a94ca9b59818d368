//! Shared helpers for the end-to-end tests: the built binaries, the pyenv interpreters, and
//! real wheels fetched from PyPI once per machine into `target/pysfx-test-cache/`.

mod cache;
mod fixtures;
mod interpreters;
mod raw;
mod running;
pub mod tools;

use cache::cached;
pub use cache::{
    bootstrap_wheels, bulky_wheel, complete_wheels, contained_wheels, datapkg_wheel, evil_wheels,
    test_wheels,
};
pub use fixtures::{
    build_tiny, copy_tree, make_app, static_stub, tagged_wheel, tiny_project, tiny_wheel,
    wheel_requiring_python,
};
pub use interpreters::{
    binaries, host_python, python, pythons, sacrificial_python, test_stub, workspace_root,
    Binaries, Python,
};
pub use raw::{
    raw_artifact, raw_artifact_with_links, reseal, reseal_bytes, reseal_leaving_out,
    reseal_replacing,
};
pub use running::{
    app_and_wheels, assert_pip_check, install, install_with, listing, nobody_python, pack,
    pack_command, pack_version, pip_list, run, run_as_nobody, run_json, snapshot, tree,
};
