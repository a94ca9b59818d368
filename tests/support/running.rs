//! Running commands, packs and artifacts, and looking at what they leave behind (trees, pip's
//! view of a venv).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::{binaries, host_python, test_stub};

/// The interpreter a run as uid 65534 uses (`/usr/bin/python3`), when this test runs as root
/// and it is there; `None`, with the reason printed, otherwise (the caller skips).
pub fn nobody_python() -> Option<&'static Path> {
    let uid = run(Command::new("id").arg("-u"));
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("skipped: needs root to run the artifact as another user");
        return None;
    }
    let system_python = Path::new("/usr/bin/python3");
    if !system_python.exists() {
        eprintln!("skipped: no /usr/bin/python3 that uid 65534 can run");
        return None;
    }
    Some(system_python)
}

/// `ARTIFACT ARGS…` run as uid and gid 65534, with no other groups.
pub fn run_as_nobody(artifact: &Path, args: &[&std::ffi::OsStr]) -> Output {
    run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(artifact)
        .args(args))
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

/// `pysfx pack` of `app` at `version` with the wheels in `wheels`, byte-code compiled by
/// CPython 3.11, `SOURCE_DATE_EPOCH` fixed, no bootstrap wheels, and `extra` arguments (e.g.
/// `--thin-from OLD`): the packs the thin-artifact tests compare.
pub fn pack_version(
    app: &Path,
    version: &str,
    wheels: &Path,
    extra: &[&std::ffi::OsStr],
    output: &Path,
) -> std::process::Output {
    use std::ffi::OsStr;
    let python = crate::python(11);
    let mut args = vec![
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--app-version"),
        OsStr::new(version),
        OsStr::new("--wheels"),
        wheels.as_os_str(),
        OsStr::new("--no-bootstrap"),
        OsStr::new("--python"),
        python.path.as_os_str(),
    ];
    args.extend_from_slice(extra);
    run(pack_command(&args, output).env("SOURCE_DATE_EPOCH", "1700000000"))
}

/// The arguments of a pack of `app` with the wheels in `wheels` and no bootstrap wheels,
/// then `extra`.
pub fn app_and_wheels<'a>(
    app: &'a Path,
    wheels: &'a Path,
    extra: &[&'a std::ffi::OsStr],
) -> Vec<&'a std::ffi::OsStr> {
    use std::ffi::OsStr;
    let mut args = vec![
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--wheels"),
        wheels.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    args.extend_from_slice(extra);
    args
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

/// Runs an artifact with `--json` and returns (exit code, parsed stdout, stderr); after a
/// successful install (`-d DEST`), checks the release with `pip check`.
pub fn install(artifact: &Path, args: &[&std::ffi::OsStr]) -> (i32, serde_json::Value, String) {
    let (code, value, stderr) = run_json(artifact, args);
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

/// Runs an artifact with ARGS and `--json` and returns (exit code, parsed stdout, stderr), without
/// the `pip check` that [`install`] adds (about 2 s a release).
pub fn run_json(artifact: &Path, args: &[&std::ffi::OsStr]) -> (i32, serde_json::Value, String) {
    let output = run(Command::new(artifact).args(args).arg("--json"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "--json printed no single JSON object ({error}):\nstdout: {stdout}\nstderr: {stderr}"
        )
    });
    (output.status.code().unwrap_or(-1), value, stderr)
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
