//! The artifact as a file: a valid zip, inspectable without running it, reproducible, and
//! refused (exit 3, nothing written) when damaged.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{
    binaries, bootstrap_wheels, datapkg_wheel, host_python, install_with, listing, make_app, pack,
    python, run, test_stub,
};

fn small_artifact(work: &Path) -> PathBuf {
    let statics = work.join("static");
    std::fs::create_dir_all(&statics).expect("mkdir");
    std::fs::write(statics.join("robots.txt"), "User-agent: *\n").expect("write");
    pack(
        &[
            OsStr::new("--app"),
            make_app(work, "demoapp").as_os_str(),
            OsStr::new("--wheels"),
            datapkg_wheel().as_os_str(),
            OsStr::new("--static"),
            statics.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.join("site.sfx"),
    )
}

#[test]
fn the_artifact_is_a_zip_that_zip_tools_read() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint('\\n'.join(z.namelist()))";
    let output = run(Command::new(host_python())
        .args(["-c", script])
        .arg(&artifact));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names = String::from_utf8_lossy(&output.stdout).into_owned();
    for expected in [
        ".pysfx/manifest.json",
        "demoapp/appcore/__init__.py",
        "demoapp/manage.py",
        "static.in/0/robots.txt",
    ] {
        assert!(
            names.lines().any(|line| line == expected),
            "{expected} missing: {names}"
        );
    }
    assert!(names
        .lines()
        .any(|line| line.starts_with("wheels/")
            && line.ends_with("pysfx_datapkg-1.0-py3-none-any.whl")));
    if Command::new("unzip").arg("-v").output().is_ok() {
        let output = run(Command::new("unzip").arg("-l").arg(&artifact));
        assert!(
            output.status.success(),
            "unzip -l: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("demoapp/manage.py"));
    }
    let mode = std::fs::metadata(&artifact).expect("meta");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o755
    );
}

#[test]
fn inspect_and_verify_read_the_artifact_without_running_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let output = run(Command::new(&binaries().pysfx)
        .args(["inspect", "--json"])
        .arg(&artifact));
    assert!(output.status.success());
    let value: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("inspect --json is JSON");
    assert_eq!(value["manifest"]["app"]["name"], "demoapp");
    assert_eq!(
        value["manifest"]["sets"][0]["wheels"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(value["manifest"]["static_dirs"][0], "static.in/0");
    let output = run(Command::new(&binaries().pysfx)
        .arg("inspect")
        .arg(&artifact));
    assert!(String::from_utf8_lossy(&output.stdout).contains("pysfx-datapkg 1.0"));
    let output = run(Command::new(&binaries().pysfx).arg("verify").arg(&artifact));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(Command::new(&artifact).arg("--verify"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(Command::new(&artifact).arg("--info"));
    assert!(String::from_utf8_lossy(&output.stdout).contains("demoapp"));
    // A FIFO where the artifact should be is refused, not waited on (`timeout` ends a hang).
    let fifo = work.path().join("fifo.sfx");
    assert!(run(Command::new("mkfifo").arg(&fifo)).status.success());
    for command in ["verify", "inspect"] {
        let output = run(Command::new("timeout")
            .arg("60")
            .arg(&binaries().pysfx)
            .arg(command)
            .arg(&fifo));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(4), "{command}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{command}: {stderr}");
    }
}

#[test]
fn packing_is_reproducible() {
    let work = tempfile::tempdir().expect("tempdir");
    let first = std::fs::read(small_artifact(work.path())).expect("read");
    std::fs::rename(work.path().join("site.sfx"), work.path().join("first.sfx")).expect("rename");
    let second = std::fs::read(small_artifact(work.path())).expect("read");
    assert!(first == second, "two packs of the same inputs differ");
}

/// Byte-code compiled at pack time is reproducible too, on the CPythons whose `marshal`
/// marks objects by their reference counts (before 3.12): pip and setuptools compiled twice
/// with CPython 3.8, by two workers each taking files as they come, give the same bytes.
#[test]
fn pack_time_byte_code_is_reproducible() {
    let work = tempfile::tempdir().expect("tempdir");
    let python = python(8);
    let app = make_app(work.path(), "demoapp");
    let pack_once = |name: &str| {
        std::fs::read(pack(
            &[
                OsStr::new("--app"),
                app.as_os_str(),
                OsStr::new("--bootstrap-wheels"),
                bootstrap_wheels(8).as_os_str(),
                OsStr::new("--python"),
                python.path.as_os_str(),
            ],
            &work.path().join(name),
        ))
        .expect("read")
    };
    let first = pack_once("first.sfx");
    let second = pack_once("second.sfx");
    assert!(
        first == second,
        "two packs with CPython 3.8 byte-code differ:\n{}",
        payload_differences(
            &work.path().join("first.sfx"),
            &work.path().join("second.sfx")
        )
    );
}

/// The members in which two artifacts differ (inside the byte-code bundles too), with their
/// sizes and the first differing byte: what a reproducibility failure reports.
fn payload_differences(first: &Path, second: &Path) -> String {
    let script = r#"
import io, sys, zipfile
def walk(archive, prefix, out):
    for info in archive.infolist():
        data = archive.read(info)
        if info.filename.endswith(".zip"):
            walk(zipfile.ZipFile(io.BytesIO(data)), prefix + info.filename + "!", out)
        out[prefix + info.filename] = data
a, b = {}, {}
walk(zipfile.ZipFile(sys.argv[1]), "", a)
walk(zipfile.ZipFile(sys.argv[2]), "", b)
for name in sorted(set(a) | set(b)):
    x, y = a.get(name, b""), b.get(name, b"")
    if x != y:
        at = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
        print(name, len(x), len(y), "first difference at", at)
"#;
    let output = run(Command::new(host_python())
        .args(["-c", script])
        .arg(first)
        .arg(second));
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A way to damage an artifact's bytes.
type Damage = Box<dyn FnOnce(&mut Vec<u8>)>;

/// Flip one byte at `offset` (from the end when negative) and expect exit 3 with nothing written.
fn damaged(work: &Path, artifact: &Path, name: &str, damage: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(artifact).expect("read");
    damage(&mut bytes);
    let path = work.join(name);
    std::fs::write(&path, bytes).expect("write");
    let mut permissions = std::fs::metadata(&path).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions).expect("chmod");
    path
}

#[test]
fn damaged_artifacts_are_refused_before_anything_is_written() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let stub_len = std::fs::metadata(test_stub().0).expect("stub").len() as usize;
    let size = std::fs::metadata(&artifact).expect("meta").len() as usize;
    let python = host_python();
    let cases: Vec<(&str, Damage)> = vec![
        (
            "flipped-in-wheel.sfx",
            Box::new(move |b: &mut Vec<u8>| b[size - 2000] ^= 0x01),
        ),
        (
            "flipped-in-manifest.sfx",
            Box::new(move |b: &mut Vec<u8>| b[stub_len + 100] ^= 0x20),
        ),
        (
            "flipped-in-trailer.sfx",
            Box::new(move |b: &mut Vec<u8>| b[size - 3] ^= 0x01),
        ),
        (
            "truncated.sfx",
            Box::new(move |b: &mut Vec<u8>| b.truncate(size - 700)),
        ),
        (
            "truncated-to-stub.sfx",
            Box::new(move |b: &mut Vec<u8>| b.truncate(stub_len)),
        ),
        // A word of the stub's usage text changed: the stub still runs, and finds itself
        // different from the digest its manifest records.
        (
            "changed-in-stub.sfx",
            Box::new(move |b: &mut Vec<u8>| {
                let text = b"Install this pysfx artifact";
                let at = b[..stub_len]
                    .windows(text.len())
                    .position(|window| window == text)
                    .expect("the usage text in the stub");
                b[at..at + 7].copy_from_slice(b"PWNED!!");
            }),
        ),
    ];
    for (name, damage) in cases {
        let path = damaged(work.path(), &artifact, name, damage);
        let destination = work.path().join("releases").join(name);
        let (code, result, stderr) = install_with(&path, &destination, &python, &[]);
        assert_eq!(code, 3, "{name}: {stderr}");
        assert_eq!(result["exit_code"], 3, "{name}");
        // SPEC's types hold on failure too: strings, empty when not known yet.
        for key in ["dest", "python", "python_version"] {
            assert!(result[key].is_string(), "{name}: {key}: {result}");
        }
        // What the run did before it failed, as the operator guide lists it: nothing.
        for (key, nothing) in [
            ("changed", serde_json::json!(false)),
            ("link_moved", serde_json::json!(false)),
            ("pruned", serde_json::json!([])),
        ] {
            assert_eq!(result[key], nothing, "{name}: {result}");
        }
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
        assert!(!destination.exists(), "{name}: DEST was created");
        assert!(
            listing(&work.path().join("releases")).is_empty(),
            "{name}: litter next to DEST"
        );
        let output = run(Command::new(&binaries().pysfx).arg("verify").arg(&path));
        assert_eq!(output.status.code(), Some(3), "{name}: pysfx verify");
        let output = run(Command::new(&path).arg("--verify"));
        assert_eq!(output.status.code(), Some(3), "{name}: --verify");
    }
    // The bare stub says it has no payload.
    let output = run(Command::new(&binaries().stub)
        .arg("-d")
        .arg(work.path().join("x")));
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no pysfx payload"));
}

#[test]
fn usage_errors_exit_2_and_a_closed_stdout_is_fine() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    for args in [
        vec![],
        vec!["--bogus"],
        vec!["--force"],
        vec!["-d"],
        vec!["--info", "--list"],
        vec!["-d", "x", "-v", "-q"],
        vec!["-d", "x", "y"],
        vec!["-d", "-q"],
        vec!["-d", ""],
    ] {
        let output = run(Command::new(&artifact).args(&args));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains("--help"),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
    let output = run(Command::new(&artifact).arg("--help"));
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("Usage: site.sfx -d DEST") && help.contains("--no-compile"),
        "{help}"
    );
    let output = run(Command::new(&artifact).arg("--version"));
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("pysfx-stub "));
    // With --json, a usage error is still one JSON object; so is a DEST that is not text
    // (refused: JSON and the receipt could not name it).
    let mut bytes = work.path().join("r").into_os_string().into_vec();
    bytes.push(0xff);
    let not_text = std::ffi::OsString::from_vec(bytes);
    for args in [
        vec![
            OsStr::new("-d"),
            OsStr::new("x"),
            OsStr::new("--json"),
            OsStr::new("--bogus"),
        ],
        vec![OsStr::new("-d"), not_text.as_os_str(), OsStr::new("--json")],
        vec![OsStr::new("-d"), OsStr::new("--json")],
        vec![OsStr::new("--list"), OsStr::new("--json")],
    ] {
        let output = run(Command::new(&artifact).args(&args));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let value: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("one JSON object");
        assert_eq!(value["exit_code"], 2);
    }
    assert!(!Path::new(&not_text).exists());
    for flag in ["--list", "--help"] {
        let output = run(Command::new("sh")
            .arg("-c")
            .arg(format!("'{}' {flag} | head -1", artifact.display())));
        assert!(output.status.success(), "{flag}");
        assert!(
            output.stderr.is_empty(),
            "{flag} | head: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn rerun_is_unchanged_and_a_foreign_dest_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let python = host_python();
    let destination = work.path().join("releases/7");
    let (code, first, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first["changed"], true);
    let manage = destination.join("demoapp/manage.py");
    let mode = std::fs::metadata(&manage).expect("manage.py");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o111,
        0o111,
        "exec bit kept"
    );
    std::fs::write(destination.join("environment.json"), "{}").expect("write");
    let (code, second, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(second["changed"], false);
    assert!(
        destination.join("environment.json").exists(),
        "what the deployment added stays"
    );

    let foreign = work.path().join("releases/foreign");
    std::fs::create_dir_all(&foreign).expect("mkdir");
    std::fs::write(foreign.join("precious.txt"), "keep me").expect("write");
    let (code, failure, stderr) = install_with(&artifact, &foreign, &python, &[]);
    assert_eq!(code, 5, "{stderr}");
    for key in [
        "changed",
        "dest",
        "python",
        "python_version",
        "wheels_installed",
        "files",
        "bytes",
        "seconds",
        "error",
        "exit_code",
    ] {
        assert!(
            failure.get(key).is_some(),
            "the failure JSON lacks {key}: {failure}"
        );
    }
    assert_eq!(listing(&foreign), vec!["precious.txt"]);
    // Named as the run names it, given as `DIR/.`: the directory itself.
    let (code, failure, stderr) = install_with(&artifact, &foreign.join("."), &python, &[]);
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(
        failure["dest"],
        foreign.to_string_lossy().as_ref(),
        "{failure}"
    );
    let (code, result, stderr) =
        install_with(&artifact, &foreign, &python, &[OsStr::new("--force")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result["changed"], true);
    assert!(!foreign.join("precious.txt").exists());
    assert!(foreign.join("venv/bin/python").exists());
    // --force over a plain file, then an incomplete release: neither leaves litter.
    let file_dest = work.path().join("releases/file");
    std::fs::write(&file_dest, "x").expect("write");
    let (code, _, stderr) = install_with(&artifact, &file_dest, &python, &[OsStr::new("--force")]);
    assert_eq!(code, 0, "{stderr}");
    std::fs::remove_file(destination.join("venv/pyvenv.cfg")).expect("damage the release");
    let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(
        code, 5,
        "an incomplete release is not 'already installed': {stderr}"
    );
    let siblings = listing(&work.path().join("releases"));
    assert!(
        siblings
            .iter()
            .all(|name| !name.starts_with('.') || name.ends_with(".pysfx-lock")),
        "litter next to DEST: {siblings:?}"
    );
}

/// A re-run with `--python` naming the binary the release was installed with takes the
/// interpreter's facts from the receipt instead of starting it (most of a no-op's time); once
/// the same `--python` names another binary, that interpreter is asked, and a release of
/// another Python is refused as before.
#[test]
fn a_rerun_asks_the_interpreter_again_only_when_its_binary_changed() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let destination = work.path().join("releases/1");
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let python = bin.join("python");
    let (eleven, twelve) = (pysfx_e2e::python(11), pysfx_e2e::python(12));
    std::os::unix::fs::symlink(&eleven.path, &python).expect("symlink");
    let (code, first, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(first["changed"], true);
    let receipt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(destination.join("pysfx-receipt.json")).expect("the receipt"),
    )
    .expect("json");
    // The binary behind the link: its identity ends with its real path.
    let binary = std::fs::canonicalize(&eleven.path).expect("the binary");
    let recorded = receipt["interpreter"]["binary"]
        .as_str()
        .unwrap_or_default();
    assert!(
        recorded.ends_with(&format!(" {}", binary.display())),
        "{}",
        receipt["interpreter"]
    );
    let remembered = "by its unchanged binary";

    let verbose = [OsStr::new("-v")];
    let (code, second, stderr) = install_with(&artifact, &destination, &python, &verbose);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(second["changed"], false);
    assert_eq!(second["python_version"], first["python_version"]);
    assert!(
        stderr.contains(remembered),
        "the interpreter was asked:\n{stderr}"
    );

    // The same `--python`, another binary behind it.
    std::fs::remove_file(&python).expect("unlink");
    std::os::unix::fs::symlink(&twelve.path, &python).expect("symlink");
    let (code, third, stderr) = install_with(&artifact, &destination, &python, &verbose);
    assert_eq!(code, 5, "{third}\n{stderr}");
    assert!(!stderr.contains(remembered), "{stderr}");
    assert!(
        third["error"]
            .as_str()
            .is_some_and(|error| error.contains("installed with Python 3.11")),
        "{third}"
    );
}

#[test]
fn a_stub_that_needs_a_newer_glibc_is_refused() {
    // The debug stub links against this machine's glibc (2.36 here), past CentOS 7's 2.17.
    let work = tempfile::tempdir().expect("tempdir");
    let output = run(Command::new(&binaries().pysfx)
        .arg("pack")
        .arg("--app")
        .arg(make_app(work.path(), "demoapp"))
        .arg("--wheels")
        .arg(datapkg_wheel())
        .arg("--no-bootstrap")
        .arg("--stub")
        .arg(&binaries().stub)
        .arg("-o")
        .arg(work.path().join("site.sfx")));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("newer than --max-glibc 2.17"), "{stderr}");
    assert!(
        stderr.contains("scripts/build-stub.sh"),
        "says how to build the right one: {stderr}"
    );
    assert!(!work.path().join("site.sfx").exists());
    // Another program as the stub (the packer itself, by mistake) is no stub at all.
    let output = run(Command::new(&binaries().pysfx)
        .arg("pack")
        .arg("--app")
        .arg(make_app(work.path(), "demoapp"))
        .arg("--no-bootstrap")
        .arg("--stub")
        .arg(&binaries().pysfx)
        .args(["--max-glibc", "2.99"])
        .arg("-o")
        .arg(work.path().join("site.sfx")));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a pysfx-stub"), "{stderr}");
    assert!(!work.path().join("site.sfx").exists());
}

#[test]
fn completions_and_man_page_are_generated() {
    for args in [
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["man"],
    ] {
        let output = run(Command::new(&binaries().pysfx).args(&args));
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("pysfx") && text.contains("inspect"),
            "{args:?}: {text}"
        );
    }
}

/// The artifact reads its payload from the very file it runs from: run through a descriptor
/// after its name was removed (as a deploy that replaces the file while it runs leaves it), it
/// still verifies and installs.
#[test]
fn an_artifact_whose_name_is_gone_still_reads_itself() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let destination = work.path().join("releases/1");
    let script = "exec 7<\"$0\"; rm \"$0\"; /proc/self/fd/7 --verify && \
                  /proc/self/fd/7 -d \"$1\" --python \"$2\" -q";
    let output = run(Command::new("sh")
        .args(["-c", script])
        .arg(&artifact)
        .arg(&destination)
        .arg(host_python()));
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("OK "),
        "{output:?}"
    );
    assert!(destination.join("venv/bin/python").exists());
}

/// An artifact run through the dynamic loader (`ld-linux-x86-64.so.2 ./site.sfx`, as one
/// copied without its executable bit might be) is told to run the artifact itself: a usage
/// error (exit 2), not a corrupt artifact, since the process runs the loader, not the file.
#[test]
fn run_through_the_loader_is_a_usage_error() {
    let loader = Path::new("/lib64/ld-linux-x86-64.so.2");
    if !loader.exists() {
        eprintln!("skipped: no {}", loader.display());
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let output = run(Command::new(loader).arg(&artifact).arg("--verify"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not the artifact"), "{stderr}");
    assert!(!stderr.contains("  "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Run itself, it verifies.
    let output = run(Command::new(&artifact).arg("--verify"));
    assert_eq!(output.status.code(), Some(0));
}
