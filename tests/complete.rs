//! Complete (SPEC, Stub → Guarantees): exit 0 means every requirement of every installed
//! distribution, markers judged for the interpreter, is met; otherwise exit 4 before anything
//! is written, naming what is unmet and who needs it. (`install` in the support library runs
//! `pip check` after every successful install of the suite.)

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use pysfx_e2e::{complete_wheels, install_with, make_app, pack, python, Python};

/// Packs the named wheels (as one `--wheels` set, for any Python) with a small app.
fn artifact_of(work: &Path, names: &[&str]) -> PathBuf {
    let wheels = work.join(format!("wheels-{}", names.join("-")));
    std::fs::create_dir_all(&wheels).expect("mkdir");
    for name in names {
        let file = format!("{name}-1.0-py3-none-any.whl");
        std::fs::copy(complete_wheels().join(&file), wheels.join(&file)).expect("copy");
    }
    let app = make_app(work, "demoapp");
    pack(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.join(format!("{}.sfx", names.join("-"))),
    )
}

fn imports(destination: &Path, module: &str) -> bool {
    pysfx_e2e::run(
        std::process::Command::new(destination.join("venv/bin/python"))
            .args(["-c", &format!("import {module}")]),
    )
    .status
    .success()
}

fn refused(artifact: &Path, work: &Path, python: &Python, expected: &[&str]) {
    let destination = work.join(format!("refused-{}", python.version()));
    let (code, result, stderr) = install_with(artifact, &destination, &python.path, &[]);
    assert_eq!(code, 4, "{}: {stderr}", python.version());
    for text in expected {
        assert!(
            result["error"].as_str().unwrap_or_default().contains(text),
            "{}: the refusal should name {text:?}: {stderr}",
            python.version()
        );
    }
    assert!(!destination.exists(), "DEST was written");
}

#[test]
fn markers_are_judged_for_the_interpreter_that_installs() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = artifact_of(work.path(), &["needsold", "oldonly"]);
    // 3.6 needs oldonly (python_version < "3.7") and gets it.
    let old = python(6);
    let destination = work.path().join("releases/36");
    let (code, result, stderr) = install_with(&artifact, &destination, &old.path, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(imports(&destination, "oldonly"));
    assert_eq!(result["skipped"], serde_json::json!([]));
    // 3.11 does not need it; its only wheel wants Python < 3.7, so it is left out, with a
    // warning, and listed. The extra "z" is never requested, so extraonly is not needed.
    let new = python(11);
    let destination = work.path().join("releases/311");
    let (code, result, stderr) = install_with(&artifact, &destination, &new.path, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(imports(&destination, "needsold"));
    assert!(!imports(&destination, "oldonly"));
    assert_eq!(result["skipped"], serde_json::json!(["oldonly"]));
    assert!(
        stderr.contains("WARN") && stderr.contains("oldonly"),
        "the skip is a warning: {stderr}"
    );
}

#[test]
fn a_requirement_left_out_for_its_requires_python_is_refused_where_needed() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = artifact_of(work.path(), &["needsnew", "onlynew"]);
    refused(
        &artifact,
        work.path(),
        &python(6),
        &["needsnew 1.0", "onlynew", "Requires-Python >=3.8"],
    );
    let destination = work.path().join("releases/311");
    let (code, _, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(imports(&destination, "onlynew"));
}

#[test]
fn a_requirement_not_packed_or_at_another_version_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let missing = artifact_of(work.path(), &["needsmissing"]);
    refused(
        &missing,
        work.path(),
        &python(11),
        &[
            "needsmissing 1.0",
            "foo>=2",
            "not in the artifact",
            "pack the missing distributions",
        ],
    );
    let old_version = artifact_of(work.path(), &["needsv2", "verlib"]);
    refused(
        &old_version,
        work.path(),
        &python(13),
        &[
            "needsv2 1.0",
            "verlib (>=2)",
            "the set has verlib 1.0",
            "pack wheels that meet them",
        ],
    );
    // `===` compares the version's text: `===1.0` is met by verlib 1.0, `===foobar` (a valid
    // requirement that names no version) by nothing.
    let exact = artifact_of(work.path(), &["needsexact", "verlib"]);
    let destination = work.path().join("exact");
    let (code, _, stderr) = install_with(&exact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{stderr}");
    let arbitrary = artifact_of(work.path(), &["needsarbitrary", "verlib"]);
    refused(
        &arbitrary,
        work.path(),
        &python(11),
        &[
            "needsarbitrary 1.0",
            "verlib ===foobar",
            "the set has verlib 1.0",
        ],
    );
    // inspect --python and --info --python reach the same verdict, writing nothing.
    let output = pysfx_e2e::run(
        std::process::Command::new(&pysfx_e2e::binaries().pysfx)
            .arg("inspect")
            .arg(&missing)
            .arg("--python")
            .arg(&python(11).path),
    );
    assert_eq!(output.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&output.stderr).contains("foo>=2"));
    let output = pysfx_e2e::run(
        std::process::Command::new(&missing)
            .arg("--info")
            .arg("--python")
            .arg(&python(11).path),
    );
    assert_eq!(output.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&output.stderr).contains("foo>=2"));
    // What the artifact holds is printed all the same, with the reason.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("payload sha256:")
            && stdout.contains("python: ")
            && stdout.contains("foo>=2"),
        "{stdout}"
    );
    assert!(!stdout.contains("nothing was installed"), "{stdout}");
    // In JSON: the info, and the keys of any failed run's object (operator guide).
    let output = pysfx_e2e::run(
        std::process::Command::new(&missing)
            .args(["--info", "--json", "--python"])
            .arg(&python(11).path),
    );
    assert_eq!(output.status.code(), Some(4));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one object");
    assert!(value["payload_sha256"].is_string() && value["manifest"].is_object());
    assert_eq!(value["exit_code"], 4, "{value}");
    assert!(value["error"]
        .as_str()
        .is_some_and(|e| e.contains("foo>=2")));
    for (key, expected) in [
        ("changed", serde_json::json!(false)),
        ("link_moved", serde_json::json!(false)),
        ("dest", serde_json::json!("")),
        ("wheels_installed", serde_json::json!(0)),
        ("files", serde_json::json!(0)),
        ("bytes", serde_json::json!(0)),
        ("pruned", serde_json::json!([])),
    ] {
        assert_eq!(value[key], expected, "{key}: {value}");
    }
    let version = value["python_version"].as_str().unwrap_or_default();
    assert!(version.starts_with(&python(11).version()), "{value}");
}

#[test]
fn requested_extras_bring_their_requirements() {
    let work = tempfile::tempdir().expect("tempdir");
    let without = artifact_of(work.path(), &["wantsextra", "hasextra"]);
    refused(
        &without,
        work.path(),
        &python(11),
        &["hasextra 1.0", "socksy; extra == 'socks'"],
    );
    let with = artifact_of(work.path(), &["wantsextra", "hasextra", "socksy"]);
    let destination = work.path().join("releases/with");
    let (code, _, stderr) = install_with(&with, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(imports(&destination, "socksy"));
    // Without anyone asking for the extra, hasextra alone needs nothing more.
    let alone = artifact_of(work.path(), &["hasextra"]);
    let destination = work.path().join("releases/alone");
    let (code, _, stderr) = install_with(&alone, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{stderr}");
}

/// A kernel release compared as a version (`platform_release < "3"`) is held as pip holds it:
/// a release that is no PEP 440 version (`6.18.44-fc-v1252`, as kernels of several
/// distributions are) is in no specifier, so the requirement does not apply — it made an
/// install exit 4 where `pip check` passes (`install` runs it after the install).
#[test]
fn a_kernel_release_that_is_no_version_does_not_make_a_requirement_apply() {
    let work = tempfile::tempdir().expect("tempdir");
    let wheels = work.path().join("wheels");
    pysfx_e2e::tiny_wheel(
        &wheels,
        "kernelpin",
        "1.0",
        &["zz ; platform_release < '3'"],
    );
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("kernel.sfx"),
    );
    let (code, result, stderr) = pysfx_e2e::install(
        &artifact,
        &[
            OsStr::new("-d"),
            work.path().join("releases/1").as_os_str(),
            OsStr::new("--python"),
            python(11).path.as_os_str(),
        ],
    );
    assert_eq!(code, 0, "{result}\n{stderr}");
}
