//! One artifact, many Pythons: a wheel set per interpreter or target, the right one chosen at
//! install, and a clear refusal when none fits.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use pysfx_e2e::{
    binaries, bootstrap_wheels, install_with, make_app, pack, python, run, workspace_root,
};

fn requirements() -> std::path::PathBuf {
    workspace_root().join("tests/fixtures/multi-requirements.txt")
}

/// Installs `artifact` with CPython 3.`minor` and returns (the JSON result, the venv).
fn install_on(artifact: &Path, work: &Path, minor: u32) -> (serde_json::Value, std::path::PathBuf) {
    let destination = work.join(format!("releases/3{minor}"));
    let python = python(minor);
    let (code, result, stderr) = install_with(artifact, &destination, &python.path, &[]);
    assert_eq!(code, 0, "3.{minor}: {stderr}");
    (result, destination.join("venv"))
}

/// Imports a package verbosely: its byte-code must load from the installed `.pyc` files,
/// which must be valid (not stale), as compiled when the artifact was packed.
fn assert_bytecode_is_used(venv: &Path, module: &str) {
    let output =
        run(Command::new(venv.join("bin/python")).args(["-v", "-c", &format!("import {module}")]));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    let package = format!("/{module}/__pycache__/");
    assert!(
        log.lines()
            .any(|line| line.contains("code object from") && line.contains(&package)),
        "{module} did not load from its .pyc"
    );
    assert!(
        !log.contains("bytecode is stale") && !log.contains("bad mtime"),
        "stale byte-code: {log}"
    );
}

/// The compiled module's file name and whether the dataclasses backport is installed.
fn probe(venv: &Path) -> (String, bool) {
    let script = "import os, glob, sys\nfrom markupsafe import _speedups\nsite = os.path.dirname(os.path.dirname(_speedups.__file__))\nprint(os.path.basename(_speedups.__file__))\nprint(bool(glob.glob(os.path.join(site, 'dataclasses-*.dist-info'))))";
    let output = run(Command::new(venv.join("bin/python")).args(["-c", script]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = text.lines();
    (
        lines.next().unwrap_or_default().to_string(),
        lines.next() == Some("True"),
    )
}

#[test]
fn one_artifact_with_sets_for_3_6_and_3_11() {
    let work = tempfile::tempdir().expect("tempdir");
    let (py36, py311) = (python(6), python(11));
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("-r"),
            requirements().as_os_str(),
            OsStr::new("--python"),
            py36.path.as_os_str(),
            OsStr::new("--python"),
            py311.path.as_os_str(),
            OsStr::new("--bootstrap-wheels"),
            bootstrap_wheels(6).as_os_str(),
            OsStr::new("--bootstrap-wheels"),
            bootstrap_wheels(11).as_os_str(),
        ],
        &work.path().join("site.sfx"),
    );
    let (result, venv) = install_on(&artifact, work.path(), 6);
    assert_eq!(result["wheel_set"], "cp36");
    // Packed with --python: byte-code compiled at pack time, valid at install.
    assert!(
        result["precompiled_wheels"].as_u64().unwrap_or(0) >= 3,
        "{result}"
    );
    assert_bytecode_is_used(&venv, "chardet");
    let (speedups, backport) = probe(&venv);
    assert!(speedups.contains("cpython-36m"), "3.6 got {speedups}");
    assert!(backport, "3.6 needs the dataclasses backport");

    let (result, venv) = install_on(&artifact, work.path(), 11);
    assert_eq!(result["wheel_set"], "cp311");
    assert!(
        result["precompiled_wheels"].as_u64().unwrap_or(0) >= 3,
        "{result}"
    );
    assert_bytecode_is_used(&venv, "markupsafe");
    let (speedups, backport) = probe(&venv);
    assert!(speedups.contains("cpython-311"), "3.11 got {speedups}");
    assert!(!backport, "3.11 must not get the dataclasses backport");

    // `--no-compile`: no byte-code in place, not even the pack's.
    let destination = work.path().join("releases/nocompile");
    let (code, result, stderr) = install_with(
        &artifact,
        &destination,
        &py311.path,
        &[OsStr::new("--no-compile")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result["precompiled_wheels"], 0, "{result}");
    let found = run(Command::new("find")
        .arg(&destination)
        .args(["-name", "*.pyc", "-print", "-quit"]));
    assert_eq!(
        String::from_utf8_lossy(&found.stdout),
        "",
        "a .pyc was written"
    );

    // The dry run names the same set, without writing anything.
    let output = run(Command::new(&binaries().pysfx)
        .arg("inspect")
        .arg(&artifact)
        .arg("--python")
        .arg(&py36.path));
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("would get set cp36") && text.contains("dataclasses-0.8"),
        "{text}"
    );
}

#[test]
fn a_target_set_is_built_without_that_python_and_installs_on_it() {
    let work = tempfile::tempdir().expect("tempdir");
    // pip runs under the host Python (3.11 here), downloading for CPython 3.6.
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("-r"),
            requirements().as_os_str(),
            OsStr::new("--target"),
            OsStr::new("cp36-manylinux2014_x86_64"),
            OsStr::new("--bootstrap-wheels"),
            bootstrap_wheels(6).as_os_str(),
        ],
        &work.path().join("site36.sfx"),
    );
    let (result, venv) = install_on(&artifact, work.path(), 6);
    assert_eq!(result["wheel_set"], "cp36-manylinux2014_x86_64");
    // No interpreter at pack time: compiled at install instead, and just as valid.
    assert_eq!(result["precompiled_wheels"], 0, "{result}");
    assert_bytecode_is_used(&venv, "chardet");
    let (speedups, backport) = probe(&venv);
    assert!(speedups.contains("cpython-36m"), "{speedups}");
    assert!(
        backport,
        "the marker was evaluated for 3.6, not for the packing Python"
    );
    let output = run(Command::new(venv.join("bin/chardetect")).arg("--version"));
    assert!(output.status.success());
}

#[test]
fn a_cp311_only_artifact_is_refused_by_3_6() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("-r"),
            requirements().as_os_str(),
            OsStr::new("--python"),
            python(11).path.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("site311.sfx"),
    );
    let destination = work.path().join("releases/1");
    let (code, result, stderr) = install_with(&artifact, &destination, &python(6).path, &[]);
    assert_eq!(code, 4, "{stderr}");
    let message = result["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("markupsafe"),
        "names the distribution: {message}"
    );
    assert!(
        message.contains("cp36-cp36m-manylinux"),
        "names the tags 3.6 accepts: {message}"
    );
    assert!(!destination.exists());
}

#[test]
fn each_python_gets_a_pip_that_runs_on_it() {
    // Regression: bootstrap wheels downloaded for 3.6 first were reused for 3.12, whose venv
    // then had pip 21.3 (which fails on 3.12: no pkgutil.ImpImporter).
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("-r"),
            requirements().as_os_str(),
            OsStr::new("--python"),
            python(6).path.as_os_str(),
            OsStr::new("--python"),
            python(12).path.as_os_str(),
        ],
        &work.path().join("site.sfx"),
    );
    for minor in [6, 12] {
        let (_, venv) = install_on(&artifact, work.path(), minor);
        let output = run(Command::new(venv.join("bin/python")).args(["-m", "pip", "--version"]));
        assert!(
            output.status.success(),
            "3.{minor}: pip does not run: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn an_interrupted_pack_leaves_nothing_in_tmpdir() {
    // Early (pip collecting the requirements) and later (pip fetching the bootstrap wheels,
    // where the packer once went on to the next pip before the handler had cleaned up).
    for delay in [300, 2500] {
        interrupt_pack_after(delay);
    }
}

/// A pack killed by SIGKILL (with pip, its whole process group) leaves its work directory,
/// `pysfx-pack-PID-…`, in `$TMPDIR`; the next pack removes it, and leaves alone one whose
/// process still runs (PID 1's), one another pack holds locked, and a name it never writes.
#[test]
fn a_killed_packs_work_directory_is_removed_by_the_next_pack() {
    use std::os::unix::process::CommandExt;
    let work = tempfile::tempdir().expect("tempdir");
    let tmpdir = work.path().join("tmp");
    std::fs::create_dir(&tmpdir).expect("mkdir");
    let alive = tmpdir.join("pysfx-pack-1-alive");
    std::fs::create_dir(&alive).expect("mkdir");
    let app = make_app(work.path(), "demoapp");
    let (stub, max_glibc) = pysfx_e2e::test_stub();
    let pack_command = |extra: &[&OsStr], output: &Path| {
        let mut command = Command::new(&binaries().pysfx);
        command
            .arg("pack")
            .arg("--app")
            .arg(&app)
            .args(extra)
            .arg("--stub")
            .arg(&stub)
            .arg("-o")
            .arg(output)
            .env("TMPDIR", &tmpdir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(max_glibc) = max_glibc {
            command.args(["--max-glibc", max_glibc]);
        }
        command
    };
    let (requirements, python) = (requirements(), python(11).path);
    let killed = [
        OsStr::new("-r"),
        requirements.as_os_str(),
        OsStr::new("--python"),
        python.as_os_str(),
    ];
    let mut child = pack_command(&killed, &work.path().join("killed.sfx"))
        .process_group(0)
        .spawn()
        .expect("spawn pysfx");
    let prefix = format!("pysfx-pack-{}-", child.id());
    let started = std::time::Instant::now();
    while !pysfx_e2e::listing(&tmpdir)
        .iter()
        .any(|name| name.starts_with(&prefix))
    {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "pack ended too soon"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-KILL", "--"])
        .arg(format!("-{}", child.id()))
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait().expect("wait");
    let left = pysfx_e2e::listing(&tmpdir);
    assert!(
        left.iter().any(|name| name.starts_with(&prefix)),
        "{left:?}"
    );

    // A dead PID's directory that a pack in another PID namespace holds locked, and a name
    // the packer never writes (a leading zero), stay too.
    let locked = tmpdir.join("pysfx-pack-999999-locked");
    let odd = tmpdir.join("pysfx-pack-0999999-odd");
    for directory in [&locked, &odd] {
        std::fs::create_dir(directory).expect("mkdir");
    }
    let mut holder = Command::new("flock")
        .arg(&locked)
        .args(["sleep", "60"])
        .spawn()
        .expect("flock");
    std::thread::sleep(std::time::Duration::from_millis(300));

    let wheels = work.path().join("wheels");
    pysfx_e2e::tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let quick = [
        OsStr::new("--wheels"),
        wheels.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    let output = pack_command(&quick, &work.path().join("quick.sfx"))
        .output()
        .expect("run pysfx");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("left by an interrupted pack"), "{stderr}");
    assert_eq!(
        pysfx_e2e::listing(&tmpdir),
        [
            "pysfx-pack-0999999-odd",
            "pysfx-pack-1-alive",
            "pysfx-pack-999999-locked"
        ],
        "the killed pack's work directory is removed, the others kept"
    );
}

fn interrupt_pack_after(delay: u64) {
    let work = tempfile::tempdir().expect("tempdir");
    let tmpdir = work.path().join("tmp");
    std::fs::create_dir(&tmpdir).expect("mkdir");
    let (stub, max_glibc) = pysfx_e2e::test_stub();
    let mut command = Command::new(&binaries().pysfx);
    command
        .arg("pack")
        .arg("--app")
        .arg(make_app(work.path(), "demoapp"))
        .arg("-r")
        .arg(requirements())
        .arg("--python")
        .arg(&python(11).path)
        .arg("--stub")
        .arg(stub)
        .arg("-o")
        .arg(work.path().join("site.sfx"))
        .env("TMPDIR", &tmpdir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(max_glibc) = max_glibc {
        command.args(["--max-glibc", max_glibc]);
    }
    let mut child = command.spawn().expect("spawn pysfx");
    let started = std::time::Instant::now();
    while pysfx_e2e::listing(&tmpdir).is_empty() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "pack ended before it could be interrupted"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(delay));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let status = child.wait().expect("wait");
    if status.code() == Some(0) {
        // Done before the signal came: nothing to look at.
        return;
    }
    assert_eq!(status.code(), Some(143), "after {delay} ms");
    assert!(
        pysfx_e2e::listing(&tmpdir).is_empty(),
        "left in TMPDIR: {:?}",
        pysfx_e2e::listing(&tmpdir)
    );
    assert!(!work.path().join("site.sfx").exists());
}
