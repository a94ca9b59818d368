//! Shared helpers for the end-to-end tests: the built binaries, the pyenv interpreters, and
//! real wheels fetched from PyPI once per machine into `target/pysfx-test-cache/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

pub mod tools;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
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

fn cache_dir() -> PathBuf {
    target_dir().join("pysfx-test-cache")
}

static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// Runs `fill` into a fresh directory once per machine, keyed by `key`; returns the directory.
fn cached(key: &str, fill: impl FnOnce(&Path)) -> PathBuf {
    let _guard = FETCH_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let directory = cache_dir().join(key);
    if directory.join(".complete").exists() {
        return directory;
    }
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("create the cache directory");
    fill(&directory);
    std::fs::write(directory.join(".complete"), "").expect("mark the cache complete");
    directory
}

fn pip(args: &[&str], directory: &Path) {
    let output = Command::new(host_python())
        .args(["-m", "pip"])
        .args(args)
        .arg("-d")
        .arg(directory)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .output()
        .expect("run pip");
    assert!(
        output.status.success(),
        "pip {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The platforms of the stub's target (glibc 2.17 x86_64) and older, for `pip download`.
const PLATFORMS: [&str; 8] = [
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
    "--platform",
    "manylinux2010_x86_64",
    "--platform",
    "manylinux1_x86_64",
];

/// Real wheels for CPython `3.minor` from PyPI: a compiled one (MarkupSafe), one with
/// console_scripts (chardet), one with `.data/scripts` `#!python` scripts (docutils 0.17.1).
pub fn test_wheels(minor: u32) -> PathBuf {
    cached(&format!("wheels-3.{minor}"), |directory| {
        let version = format!("3.{minor}");
        let mut args = vec![
            "download",
            "-q",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            &version,
        ];
        args.extend(PLATFORMS);
        args.extend(["markupsafe", "chardet==4.0.0", "docutils==0.17.1"]);
        pip(&args, directory);
    })
}

/// pip and setuptools for CPython `3.minor`.
pub fn bootstrap_wheels(minor: u32) -> PathBuf {
    cached(&format!("bootstrap-3.{minor}"), |directory| {
        let version = format!("3.{minor}");
        pip(
            &[
                "download",
                "-q",
                "--only-binary=:all:",
                "--no-deps",
                "--implementation",
                "cp",
                "--python-version",
                &version,
                "pip",
                "setuptools",
            ],
            directory,
        );
    })
}

/// The wheel built from `tests/fixtures/datapkg` with setuptools: console and GUI entry
/// points, `.data/scripts`, `.data/data` and `.data/headers`.
pub fn datapkg_wheel() -> PathBuf {
    cached("datapkg", |directory| {
        let source = tempfile::tempdir().expect("tempdir");
        copy_tree(
            &workspace_root().join("tests/fixtures/datapkg"),
            source.path(),
        );
        let output = Command::new(host_python())
            .args(["-m", "pip", "wheel", "-q", "--no-deps", "-w"])
            .arg(directory)
            .arg(source.path())
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .output()
            .expect("run pip wheel");
        assert!(
            output.status.success(),
            "building datapkg failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    })
}

/// A tiny pure-Python project that pip builds offline: `tests/fixtures/tinybackend.py` is its
/// in-tree PEP 517 backend, which needs no build requirements. The wheel holds the package
/// `<name>` (`-` spelled `_`) whose `VALUE` is `"<name> <version>"`, requiring `requires`.
pub fn tiny_project(directory: &Path, name: &str, version: &str, requires: &[&str]) -> PathBuf {
    std::fs::create_dir_all(directory).expect("create the project");
    std::fs::copy(
        workspace_root().join("tests/fixtures/tinybackend.py"),
        directory.join("tinybackend.py"),
    )
    .expect("copy tinybackend.py");
    std::fs::write(
        directory.join("pyproject.toml"),
        "[build-system]\nrequires = []\nbuild-backend = \"tinybackend\"\nbackend-path = [\".\"]\n",
    )
    .expect("write pyproject.toml");
    let config = serde_json::json!({"name": name, "version": version, "requires": requires});
    std::fs::write(directory.join("tiny.json"), config.to_string()).expect("write tiny.json");
    directory.to_path_buf()
}

/// The wheel of a [`tiny_project`], written into `out` by its backend (no pip, no network).
pub fn tiny_wheel(out: &Path, name: &str, version: &str, requires: &[&str]) -> PathBuf {
    let config = serde_json::json!({"name": name, "version": version, "requires": requires});
    build_tiny(out, &config)
}

/// A [`tiny_wheel`] tagged `tag` (`cp311-cp311-manylinux_2_28_x86_64`) in its file name and
/// its WHEEL file; its content stays pure Python.
pub fn tagged_wheel(out: &Path, name: &str, version: &str, tag: &str) -> PathBuf {
    let config = serde_json::json!({"name": name, "version": version, "tag": tag});
    build_tiny(out, &config)
}

/// A [`tiny_wheel`] that declares `Requires-Python: requires_python`.
pub fn wheel_requiring_python(
    out: &Path,
    name: &str,
    version: &str,
    requires_python: &str,
) -> PathBuf {
    let config = serde_json::json!({"name": name, "version": version,
        "requires_python": requires_python});
    build_tiny(out, &config)
}

fn build_tiny(out: &Path, config: &serde_json::Value) -> PathBuf {
    let source = tempfile::tempdir().expect("tempdir");
    let project = tiny_project(source.path(), "unused", "0", &[]);
    std::fs::write(project.join("tiny.json"), config.to_string()).expect("write tiny.json");
    std::fs::create_dir_all(out).expect("create the wheel directory");
    let output = run(Command::new(host_python())
        .args([
            "-c",
            "import sys, tinybackend; print(tinybackend.build_wheel(sys.argv[1]))",
        ])
        .arg(std::path::absolute(out).expect("absolute"))
        .current_dir(&project));
    assert!(
        output.status.success(),
        "tinybackend: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out.join(String::from_utf8_lossy(&output.stdout).trim())
}

/// A stub stand-in that needs no glibc at all: a bare ELF header, which the packer's glibc
/// check reads as a static binary. For packs that are refused, or only inspected, with the
/// default `--max-glibc` (the debug stub needs this machine's glibc); it cannot run.
pub fn static_stub(directory: &Path) -> PathBuf {
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    header.resize(16, 0);
    header.extend_from_slice(&2u16.to_le_bytes()); // e_type: executable
    header.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: x86_64
    header.extend_from_slice(&1u32.to_le_bytes()); // e_version
    header.extend_from_slice(&[0; 24]); // e_entry, e_phoff, e_shoff
    header.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    header.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    header.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    header.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    header.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    header.extend_from_slice(&[0; 4]); // e_shnum, e_shstrndx
    let path = directory.join("static-stub");
    std::fs::write(&path, header).expect("write the stub");
    path
}

/// Copies a directory tree (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A small app directory: a package and an executable script.
pub fn make_app(root: &Path, name: &str) -> PathBuf {
    let app = root.join(name);
    std::fs::create_dir_all(app.join("appcore")).expect("create app");
    std::fs::write(
        app.join("appcore/__init__.py"),
        "GREETING = 'hello from the app'\n",
    )
    .expect("write");
    std::fs::write(
        app.join("manage.py"),
        "#!/usr/bin/env python\nprint('manage')\n",
    )
    .expect("write");
    let mut permissions = std::fs::metadata(app.join("manage.py"))
        .expect("meta")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(app.join("manage.py"), permissions).expect("chmod");
    app
}

/// Runs a command, returning its output (never panics on a non-zero exit).
///
/// Tests run in parallel threads and write executables (artifacts): while one is being
/// written, another thread's fork briefly holds its descriptor, and executing it then fails
/// with ETXTBSY. That is retried.
pub fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null());
    let mut attempts = 0;
    loop {
        match command.output() {
            Ok(output) => return output,
            Err(error) if error.raw_os_error() == Some(26) && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => panic!("cannot run {command:?}: {error}"),
        }
    }
}

/// The stub artifacts are built with: `PYSFX_TEST_STUB` (CI sets it to the glibc 2.17 release
/// stub from scripts/build-stub.sh), else the debug stub, which needs this machine's glibc.
pub fn test_stub() -> (PathBuf, Option<&'static str>) {
    match std::env::var_os("PYSFX_TEST_STUB") {
        Some(path) if !path.is_empty() => (PathBuf::from(path), None),
        _ => (binaries().stub.clone(), Some("99.0")),
    }
}

/// `pysfx pack ARGS --stub STUB -o OUTPUT` with the test stub (unless ARGS name one), as a
/// command to run.
pub fn pack_command(args: &[&std::ffi::OsStr], output: &Path) -> Command {
    let binaries = binaries();
    let (stub, max_glibc) = test_stub();
    let mut command = Command::new(&binaries.pysfx);
    command.arg("pack").args(args);
    if !args.iter().any(|arg| *arg == "--stub") {
        command.arg("--stub").arg(&stub);
    }
    if let Some(max_glibc) = max_glibc.filter(|_| !args.iter().any(|arg| *arg == "--max-glibc")) {
        command.args(["--max-glibc", max_glibc]);
    }
    command.arg("-o").arg(output);
    command
}

/// Packs with the test stub; panics with pysfx's stderr on failure.
pub fn pack(args: &[&std::ffi::OsStr], output: &Path) -> PathBuf {
    let result = run(&mut pack_command(args, output));
    assert!(
        result.status.success(),
        "pysfx pack failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    output.to_path_buf()
}

/// Runs an artifact with `--json` and returns (exit code, parsed stdout, stderr).
pub fn install(artifact: &Path, args: &[&std::ffi::OsStr]) -> (i32, serde_json::Value, String) {
    let output = run(Command::new(artifact).args(args).arg("--json"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "--json printed no single JSON object ({error}):\nstdout: {stdout}\nstderr: {stderr}"
        )
    });
    let code = output.status.code().unwrap_or(-1);
    // Every successful install in the suite must pass `pip check` (SPEC, "Complete").
    let destination = args
        .windows(2)
        .find(|pair| pair[0] == "-d")
        .map(|pair| PathBuf::from(pair[1]));
    if let (0, Some(destination)) = (code, destination) {
        assert_pip_check(&destination.join("venv"));
    }
    (code, value, stderr)
}

/// `pip check` on a release's venv passes: with the venv's own pip when it has one, else with
/// the host's pip pointed at the venv (`pip --python`, pip 22.3+, for Python 3.7 and later).
pub fn assert_pip_check(venv: &Path) {
    let python = venv.join("bin/python");
    let has_pip = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| entry.path().join("site-packages/pip/__init__.py").is_file());
    let mut command = if has_pip {
        let mut command = Command::new(&python);
        command.args(["-m", "pip"]);
        command
    } else {
        let version =
            run(Command::new(&python).args(["-c", "import sys; print(sys.version_info[1])"]));
        let minor: u32 = String::from_utf8_lossy(&version.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if minor < 7 {
            return;
        }
        let mut command = Command::new(host_python());
        command.args(["-m", "pip", "--python"]).arg(&python);
        command
    };
    let output = run(command
        .args(["check", "--disable-pip-version-check"])
        .env("PIP_NO_INPUT", "1"));
    assert!(
        output.status.success(),
        "pip check fails in {}:\n{}{}",
        venv.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs an install, `ARTIFACT -d DESTINATION --python PYTHON EXTRA… --json`, and returns what
/// [`install`] returns.
pub fn install_with(
    artifact: &Path,
    destination: &Path,
    python: &Path,
    extra: &[&std::ffi::OsStr],
) -> (i32, serde_json::Value, String) {
    let mut args = vec![
        std::ffi::OsStr::new("-d"),
        destination.as_os_str(),
        std::ffi::OsStr::new("--python"),
        python.as_os_str(),
    ];
    args.extend_from_slice(extra);
    install(artifact, &args)
}

/// Every path under `root`, relative, sorted (symlinks not followed).
pub fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, directory: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(directory) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(
                path.strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned(),
            );
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(root, &path, out);
            }
        }
    }
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Entries of a directory, sorted (names only).
pub fn listing(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Parses `pip list --format=json` into name → version.
pub fn pip_list(venv: &Path) -> HashMap<String, String> {
    let output = run(Command::new(venv.join("bin/python")).args([
        "-m",
        "pip",
        "list",
        "--format=json",
        "--disable-pip-version-check",
    ]));
    assert!(
        output.status.success(),
        "pip list failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("pip list json");
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|item| {
            (
                item["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
                    .replace('_', "-"),
                item["version"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Hostile wheels from `tests/fixtures/evil_wheels.py`, plus `good-1.0` as a control.
pub fn evil_wheels() -> PathBuf {
    cached("evil-wheels", |directory| {
        let output = run(Command::new(host_python())
            .arg(workspace_root().join("tests/fixtures/evil_wheels.py"))
            .arg(directory));
        assert!(
            output.status.success(),
            "evil_wheels.py: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    })
}

/// Writes an artifact directly with the format crate, bypassing the packer's checks, so tests
/// can put content in it that `pysfx pack` would refuse. `app` entries go in as they are named.
pub fn raw_artifact(
    output: &Path,
    wheels: &[PathBuf],
    app: &[(&str, &[u8])],
    tamper: impl FnOnce(&mut pysfx_format::Manifest),
) -> PathBuf {
    raw_artifact_with_links(output, wheels, app, &[], tamper)
}

/// [`raw_artifact`] with symbolic link entries `(name, target)` after the app entries.
pub fn raw_artifact_with_links(
    output: &Path,
    wheels: &[PathBuf],
    app: &[(&str, &[u8])],
    links: &[(&str, &str)],
    tamper: impl FnOnce(&mut pysfx_format::Manifest),
) -> PathBuf {
    use sha2::Digest;
    let mut entries = Vec::new();
    let mut payload_wheels = Vec::new();
    for wheel in wheels {
        let bytes = std::fs::read(wheel).expect("read wheel");
        let filename = wheel
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let sha256 = pysfx_format::hex(&sha2::Sha256::digest(&bytes));
        let mut name = filename
            .split('-')
            .next()
            .expect("name")
            .to_ascii_lowercase();
        let mut version = "1.0".to_string();
        let mut requires_python = None;
        let path = format!("wheels/{}/{filename}", &sha256[..16]);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("a zip");
        let unpacked_bytes = (0..archive.len())
            .map(|index| archive.by_index_raw(index).expect("entry").size())
            .sum();
        let metadata_name = (0..archive.len())
            .map(|index| {
                let entry = archive.by_index_raw(index).expect("entry");
                String::from_utf8_lossy(entry.name_raw()).into_owned()
            })
            .find(|name| name.ends_with(".dist-info/METADATA") && name.matches('/').count() == 1);
        let mut requires_dist = Vec::new();
        if let Some(metadata_name) = metadata_name {
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut archive.by_name(&metadata_name).expect("METADATA"),
                &mut text,
            )
            .expect("METADATA text");
            let headers: Vec<(&str, &str)> = text
                .lines()
                .take_while(|line| !line.is_empty())
                .filter_map(|line| line.split_once(':'))
                .map(|(key, value)| (key.trim(), value.trim()))
                .collect();
            for (key, value) in headers {
                match key {
                    "Requires-Dist" => requires_dist.push(value.to_string()),
                    "Version" => version = value.to_string(),
                    "Requires-Python" => requires_python = Some(value.to_string()),
                    "Name" => name = normalize(value),
                    _ => {}
                }
            }
        }
        entries.push(pysfx_format::WheelEntry {
            path: path.clone(),
            filename,
            name,
            version,
            sha256,
            size: bytes.len() as u64,
            unpacked_bytes,
            members: 0,
            requires_python,
            requires_dist,
        });
        payload_wheels.push((path, bytes));
    }
    let mut manifest = pysfx_format::Manifest {
        format_version: pysfx_format::FORMAT_VERSION,
        pysfx_version: "test".into(),
        created: None,
        app: pysfx_format::AppInfo {
            name: "demoapp".into(),
            version: None,
            files: app.len() as u64,
            bytes: 0,
        },
        static_dirs: Vec::new(),
        sets: vec![pysfx_format::WheelSet {
            name: "wheels".into(),
            target: None,
            wheels: entries.iter().map(|entry| entry.path.clone()).collect(),
        }],
        wheels: entries,
        bootstrap: Vec::new(),
        unpacked_bytes: 0,
        stub_glibc: None,
        bytecode: Vec::new(),
    };
    // What the payload declares, as the packer records it; `tamper` may make it lie.
    manifest.unpacked_bytes = manifest
        .wheels
        .iter()
        .map(|wheel| wheel.unpacked_bytes)
        .chain(app.iter().map(|(_, bytes)| bytes.len() as u64))
        .chain(links.iter().map(|(_, target)| target.len() as u64))
        .sum();
    tamper(&mut manifest);
    let stub = std::fs::read(test_stub().0).expect("read stub");
    let mut writer =
        pysfx_format::PayloadWriter::create(output, &stub, 315_532_800).expect("create");
    writer.add_manifest(&manifest).expect("manifest");
    for (name, bytes) in app {
        let file = pysfx_format::EntryOptions {
            compress: true,
            executable: false,
            size: bytes.len() as u64,
        };
        writer.add(name, &mut &bytes[..], file).expect("app entry");
    }
    for (name, target) in links {
        writer.add_symlink(name, target).expect("link entry");
    }
    for (path, bytes) in &payload_wheels {
        let stored = pysfx_format::EntryOptions {
            compress: false,
            executable: false,
            size: bytes.len() as u64,
        };
        writer
            .add(path, &mut bytes.as_slice(), stored)
            .expect("wheel entry");
    }
    writer.finish().expect("finish");
    let mut permissions = std::fs::metadata(output).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(output, permissions).expect("chmod");
    output.to_path_buf()
}

/// A valid wheel of a few thousand small modules: an install of it takes long enough to
/// interrupt.
pub fn bulky_wheel() -> PathBuf {
    cached("bulky-wheel", |directory| {
        let output = run(Command::new(host_python())
            .arg(workspace_root().join("tests/fixtures/bulky_wheel.py"))
            .arg(directory)
            .arg("4000"));
        assert!(
            output.status.success(),
            "bulky_wheel.py: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    })
}

/// Wheels from `tests/fixtures/contained_wheels.py`: members aimed at the venv's own files
/// through every scheme, two wheels sharing paths, a 70 MiB script, RECORD rows in sha512 and
/// sha384, a 4 MiB member of zeros.
pub fn contained_wheels() -> PathBuf {
    cached("contained-wheels-v2", |directory| {
        let output = run(Command::new(host_python())
            .arg(workspace_root().join("tests/fixtures/contained_wheels.py"))
            .arg(directory));
        assert!(
            output.status.success(),
            "contained_wheels.py: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    })
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

/// Every path below `root` with its kind and content digest (symlinks by target), to show that
/// nothing in a tree changed.
pub fn snapshot(root: &Path) -> Vec<(String, String)> {
    use sha2::Digest;
    let mut out = Vec::new();
    for relative in tree(root) {
        let path = root.join(&relative);
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let state = if metadata.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(&path).ok())
        } else if metadata.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            format!("file {}", pysfx_format::hex(&sha2::Sha256::digest(&bytes)))
        } else {
            "directory".to_string()
        };
        out.push((relative, state));
    }
    out
}

/// Small pure wheels with requirements, from `tests/fixtures/complete_wheels.py`.
pub fn complete_wheels() -> PathBuf {
    cached("complete-wheels", |directory| {
        let output = run(Command::new(host_python())
            .arg(workspace_root().join("tests/fixtures/complete_wheels.py"))
            .arg(directory));
        assert!(
            output.status.success(),
            "complete_wheels.py: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    })
}

/// PEP 503's normalised name: lower case, runs of `-`, `_` and `.` as one `-`.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['-', '_', '.']).filter(|part| !part.is_empty()) {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&part.to_ascii_lowercase());
    }
    out
}
