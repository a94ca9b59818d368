//! The repository and its built binaries, the stub artifacts are built with, and the CPythons
//! to test against.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::run;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Paths of the `pysfx` and `pysfx-stub` binaries, built (debug) on first use.
pub struct Binaries {
    pub pysfx: PathBuf,
    pub stub: PathBuf,
}

pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "pysfx", "-p", "pysfx-stub"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build of pysfx and pysfx-stub failed"
        );
        let debug = target_dir().join("debug");
        Binaries {
            pysfx: debug.join("pysfx"),
            stub: debug.join("pysfx-stub"),
        }
    })
}

/// A CPython to test against.
#[derive(Debug, Clone)]
pub struct Python {
    pub path: PathBuf,
    pub major: u32,
    pub minor: u32,
}

impl Python {
    pub fn version(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// Every CPython 3.6–3.13 to test against: `PYSFX_TEST_PYTHONS` (colon-separated paths) if
/// set, else pyenv's under `/root/.pyenv/versions`. Panics when a minor version of 3.6–3.13
/// is missing from pyenv, so none is skipped silently.
pub fn pythons() -> Vec<Python> {
    let candidates: Vec<PathBuf> = match std::env::var("PYSFX_TEST_PYTHONS") {
        Ok(list) if !list.is_empty() => list.split(':').map(PathBuf::from).collect(),
        _ => {
            let root = Path::new("/root/.pyenv/versions");
            let mut found: Vec<PathBuf> = std::fs::read_dir(root)
                .unwrap_or_else(|error| {
                    panic!("{}: {error}; set PYSFX_TEST_PYTHONS", root.display())
                })
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.path().join("bin/python"))
                .filter(|path| path.exists())
                .collect();
            found.sort();
            found
        }
    };
    let mut pythons: Vec<Python> = candidates
        .into_iter()
        .filter_map(|path| {
            let output = Command::new(&path)
                .args(["-c", "import sys; print('%d %d' % sys.version_info[:2])"])
                .output()
                .ok()?;
            let text = String::from_utf8(output.stdout).ok()?;
            let mut parts = text.split_whitespace();
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next()?.parse().ok()?;
            (major == 3 && (6..=13).contains(&minor)).then_some(Python { path, major, minor })
        })
        .collect();
    pythons.sort_by_key(|python| python.minor);
    if std::env::var_os("PYSFX_TEST_PYTHONS").is_none() {
        let minors: Vec<u32> = pythons.iter().map(|python| python.minor).collect();
        for minor in 6..=13 {
            assert!(
                minors.contains(&minor),
                "no CPython 3.{minor} under /root/.pyenv/versions; every 3.6–3.13 must be tested"
            );
        }
    }
    pythons
}

/// The pyenv interpreter of `3.minor` (panics if absent).
pub fn python(minor: u32) -> Python {
    pythons()
        .into_iter()
        .find(|python| python.minor == minor)
        .unwrap_or_else(|| panic!("no CPython 3.{minor} to test with"))
}

/// The interpreter that runs pip for downloads: a pyenv 3.11 if there is one, else python3.
pub fn host_python() -> PathBuf {
    let pyenv = Path::new("/root/.pyenv/versions/3.11.7/bin/python");
    if pyenv.exists() {
        return pyenv.to_path_buf();
    }
    PathBuf::from("python3")
}

/// The stub artifacts are built with: `PYSFX_TEST_STUB` (CI sets it to the glibc 2.17 release
/// stub from scripts/build-stub.sh), else the debug stub, which needs this machine's glibc.
pub fn test_stub() -> (PathBuf, Option<&'static str>) {
    match std::env::var_os("PYSFX_TEST_STUB") {
        Some(path) if !path.is_empty() => (PathBuf::from(path), None),
        _ => (binaries().stub.clone(), Some("2.99")),
    }
}

/// A copy of CPython 3.11's executable in `root/bin/python3.11` (with `root/lib` linking to the
/// real standard library), to install against as the base interpreter: a write that follows
/// the venv's `bin/python` link would change this copy, never the machine's Python.
pub fn sacrificial_python(root: &Path) -> PathBuf {
    let real = python(11);
    let prefix = real
        .path
        .parent()
        .and_then(Path::parent)
        .expect("a pyenv prefix");
    std::fs::create_dir_all(root.join("bin")).expect("create bin");
    let copy = root.join("bin/python3.11");
    std::fs::copy(prefix.join("bin/python3.11"), &copy).expect("copy the interpreter");
    std::os::unix::fs::symlink(prefix.join("lib"), root.join("lib")).expect("link lib");
    let output = run(Command::new(&copy).args(["-c", "import sys; print(sys.prefix)"]));
    assert!(
        output.status.success(),
        "the copied interpreter does not run: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    copy
}
