//! Outside tools the supply-chain tests run: Debian's `minisign`, and Python tools from PyPI
//! installed once per machine into cached venvs.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{cached, host_python, run};

/// A venv holding `packages` (pip requirements), made once per machine under the test cache and
/// keyed by `key`; returns its `bin/` directory.
pub fn python_tools(key: &str, packages: &[&str]) -> PathBuf {
    let directory = cached(key, |directory| {
        let output = run(Command::new(host_python())
            .args(["-m", "venv"])
            .arg(directory.join("venv")));
        assert!(
            output.status.success(),
            "python -m venv: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let output = run(Command::new(directory.join("venv/bin/python"))
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(packages));
        assert!(
            output.status.success(),
            "pip install {packages:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    directory.join("venv/bin")
}

/// The `minisign` on `PATH` (Debian's package; `.ci/run` installs it). Panics when there is
/// none, so the interop tests are never skipped silently.
pub fn minisign() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|directory| directory.join("minisign"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("no minisign on PATH: apt-get install minisign (.ci/run installs it)")
    })
}

/// Validates CycloneDX documents against the vendored official 1.5 schema
/// (`tests/fixtures/cyclonedx`); returns the validator's exit code and output.
pub fn validate_cyclonedx(documents: &[&Path]) -> (i32, String) {
    let tools = python_tools(
        "cyclonedx-validator",
        &["jsonschema>=4.18", "rfc3339-validator"],
    );
    let output = run(Command::new(tools.join("python"))
        .arg(super::workspace_root().join("tests/fixtures/cyclonedx/validate.py"))
        .args(documents));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// `../shared/tools/kernel310.py` (runs a command as on CentOS 7's kernel 3.10: every later
/// system call fails `ENOSYS`), when it and Debian's python3-seccomp under `/usr/bin/python3`
/// are there (`.ci/run` installs python3-seccomp): the command line to put before a command.
pub fn kernel310() -> Option<[PathBuf; 2]> {
    let tool = super::workspace_root().join("../shared/tools/kernel310.py");
    let python = PathBuf::from("/usr/bin/python3");
    let seccomp = run(Command::new(&python).args(["-c", "import seccomp"]));
    (tool.is_file() && seccomp.status.success()).then_some([python, tool])
}
