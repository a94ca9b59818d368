//! SPEC "The platform floor holds": a wheel that needs more than the stub's platform (x86_64
//! Linux, glibc `--max-glibc`) is refused at pack time, naming it and the fix, in every set and
//! among the bootstrap wheels; a `--target` no artifact of this stub can install is a usage
//! error; `inspect` shows what each set needs. No network: the wheels are built locally, their
//! file names and WHEEL tags set to the platform under test.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use pysfx_e2e::{
    binaries, make_app, pack_command, python, run, static_stub, tagged_wheel, tiny_project,
    tiny_wheel,
};

/// Packs `args` with a stub that needs no glibc and `--max-glibc max`; returns (code, stderr).
fn pack_with_floor(root: &Path, args: &[&OsStr], max: &str) -> (Option<i32>, String) {
    let stub = static_stub(root);
    let mut all = vec![
        OsStr::new("--stub"),
        stub.as_os_str(),
        OsStr::new("--max-glibc"),
        OsStr::new(max),
    ];
    all.extend_from_slice(args);
    let output = run(pack_command(&all, &root.join("site.sfx")).current_dir(root));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A `--wheels` set no CPython 3.6–3.13 can install (its only wheel of a distribution is for
/// CPython 3.14) packs with a warning naming it; a set they can install packs without one.
#[test]
fn a_set_no_supported_python_can_install_is_named_at_pack_time() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    let wheels = root.join("wheels");
    tiny_wheel(&wheels, "purelib", "1.0", &[]);
    let args = |wheels: &Path| {
        vec![
            OsStr::new("--app").to_os_string(),
            app.as_os_str().to_os_string(),
            OsStr::new("--wheels").to_os_string(),
            wheels.as_os_str().to_os_string(),
            OsStr::new("--no-bootstrap").to_os_string(),
        ]
    };
    let fits = args(&wheels);
    let fits: Vec<&OsStr> = fits.iter().map(|arg| arg.as_os_str()).collect();
    let (code, stderr) = pack_with_floor(root, &fits, "2.17");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("no CPython 3.6-3.13"), "{stderr}");
    tagged_wheel(&wheels, "future", "1.0", "cp314-cp314-manylinux2014_x86_64");
    let (code, stderr) = pack_with_floor(root, &fits, "2.17");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("no CPython 3.6-3.13 on x86_64 Linux (glibc 2.17) can install set wheels")
            && stderr.contains("no wheel it takes for future"),
        "{stderr}"
    );
    // Wheels every CPython takes, but one needs a distribution none of them carries: every
    // install would stop at the completeness check.
    let incomplete = root.join("incomplete");
    tiny_wheel(&incomplete, "needy", "1.0", &["helper>=2"]);
    // Packed (exit 0 always: a warning), with what it said.
    let warned = |wheels: &Path| {
        let args = args(wheels);
        let args: Vec<&OsStr> = args.iter().map(|arg| arg.as_os_str()).collect();
        let (code, stderr) = pack_with_floor(root, &args, "2.17");
        assert_eq!(code, Some(0), "{stderr}");
        stderr
    };
    let stderr = warned(&incomplete);
    assert!(
        stderr.contains("can install set wheels")
            && stderr.contains("does not meet needy 1.0 needs"),
        "{stderr}"
    );
    // Skipped on the oldest Pythons (its Requires-Python), chosen on the others and unmet
    // there: the warning says what those lack, not that none is installed.
    let newer = root.join("needy-newer");
    let config = serde_json::json!({"name": "needy", "version": "1.0",
        "requires": ["helper>=2"], "requires_python": ">=3.8"});
    pysfx_e2e::build_tiny(&newer, &config);
    let stderr = warned(&newer);
    assert!(
        stderr.contains("can install set wheels")
            && stderr.contains("does not meet needy 1.0 needs")
            && !stderr.contains("installs any wheel"),
        "{stderr}"
    );
    // Its only wheel for Pythons 3.14 and up: every install skips it (nothing requires it)
    // and succeeds without it (SPEC, "Complete"), which the warning says, not an exit 4.
    let later = root.join("later");
    pysfx_e2e::wheel_requiring_python(&later, "later", "1.0", ">=3.14");
    let stderr = warned(&later);
    assert!(
        stderr.contains("installs any wheel of set wheels")
            && stderr.contains("declares a Requires-Python none of them meets")
            && !stderr.contains("exit 4"),
        "{stderr}"
    );
    // One only an older patch release meets (3.6.0 to 3.6.15) is met on some server: no
    // warning that none is.
    let older = root.join("older");
    pysfx_e2e::wheel_requiring_python(&older, "older", "1.0", "<3.6.16");
    let stderr = warned(&older);
    assert!(!stderr.contains("installs any wheel"), "{stderr}");
}

#[test]
fn wheels_above_the_floor_are_refused_naming_each_and_the_fix() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    let wheels = root.join("wheels");
    tiny_wheel(&wheels, "purelib", "1.0", &[]);
    tagged_wheel(&wheels, "old", "1.0", "cp311-cp311-manylinux2014_x86_64");
    // Several platform tags: it fits when any of them does.
    tagged_wheel(
        &wheels,
        "dual",
        "1.0",
        "cp311-cp311-manylinux_2_28_x86_64.manylinux_2_17_x86_64",
    );
    let refused = [
        ("newpil", "cp311-cp311-manylinux_2_28_x86_64"),
        ("cext", "cp311-cp311-linux_x86_64"),
        ("muslonly", "cp311-cp311-musllinux_1_2_x86_64"),
        ("macos", "cp311-cp311-macosx_11_0_arm64"),
    ];
    for (name, tag) in refused {
        tagged_wheel(&wheels, name, "0.1", tag);
    }
    let args = [
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--wheels"),
        wheels.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    let (code, stderr) = pack_with_floor(root, &args, "2.17");
    assert_eq!(code, Some(1), "{stderr}");
    for (name, tag) in refused {
        assert!(
            stderr.contains(&format!("{name}-0.1-{tag}.whl (set wheels)")),
            "names {name}: {stderr}"
        );
    }
    assert!(
        stderr.contains("needs glibc 2.28")
            && stderr.contains("linux_*")
            && stderr.contains("musllinux"),
        "says why: {stderr}"
    );
    assert!(
        stderr.contains("--max-glibc 2.28 on purpose") && stderr.contains("manylinux2014_x86_64"),
        "gives the fix: {stderr}"
    );
    for fits in ["purelib-1.0", "old-1.0", "dual-1.0"] {
        assert!(!stderr.contains(fits), "{fits} fits: {stderr}");
    }
    assert!(!root.join("site.sfx").exists());

    // A higher --max-glibc on purpose lets manylinux_2_28 through, never a bare linux wheel.
    let (code, stderr) = pack_with_floor(root, &args, "2.28");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("newpil"), "{stderr}");
    assert!(stderr.contains("cext-0.1-cp311-cp311-linux_x86_64.whl"));
    // A wheel built here: a manylinux build of it is the first fix.
    assert!(
        stderr.contains("hint: build a local project in a manylinux2014 container"),
        "{stderr}"
    );
    for (name, _) in &refused[1..] {
        std::fs::remove_file(
            std::fs::read_dir(&wheels)
                .expect("list")
                .flatten()
                .find(|entry| entry.file_name().to_string_lossy().starts_with(name))
                .expect("the wheel")
                .path(),
        )
        .expect("remove");
    }
    let (code, stderr) = pack_with_floor(root, &args, "2.28");
    assert_eq!(code, Some(0), "{stderr}");

    // inspect shows each set's highest need, in text and JSON.
    let output = run(Command::new(&binaries().pysfx)
        .arg("inspect")
        .arg(root.join("site.sfx")));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("set wheels (any target): 4 wheels, needs glibc 2.28"),
        "{text}"
    );
    let output = run(Command::new(&binaries().pysfx)
        .args(["inspect", "--json"])
        .arg(root.join("site.sfx")));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        value["glibc_needed"]["sets"],
        serde_json::json!([{"set": "wheels", "glibc": "2.28"}])
    );
    assert_eq!(value["glibc_needed"]["bootstrap"], serde_json::Value::Null);
}

#[test]
fn a_bare_linux_wheel_built_by_pip_for_a_python_set_is_refused_with_the_target_fix() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let project = tiny_project(&root.join("cext"), "cext", "0.1", &[]);
    std::fs::write(
        project.join("tiny.json"),
        r#"{"name": "cext", "version": "0.1", "tag": "cp311-cp311-linux_x86_64"}"#,
    )
    .expect("write");
    std::fs::write(root.join("requirements.txt"), "--no-index\n./cext\n").expect("write");
    let python = python(11);
    let app = make_app(root, "demoapp");
    let args = [
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("-r"),
        OsStr::new("requirements.txt"),
        OsStr::new("--python"),
        python.path.as_os_str(),
        OsStr::new("--no-bootstrap"),
        OsStr::new("--no-compile"),
    ];
    let (code, stderr) = pack_with_floor(root, &args, "2.17");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cext-0.1-cp311-cp311-linux_x86_64.whl (set cp311)")
            && stderr.contains("--target cp311-manylinux2014_x86_64")
            && stderr.contains("auditwheel"),
        "names the wheel, its set and the fixes: {stderr}"
    );
}

#[test]
fn bootstrap_wheels_are_held_to_the_floor_too() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let bootstrap = root.join("bootstrap");
    tagged_wheel(&bootstrap, "pip", "99.0", "py3-none-manylinux_2_34_x86_64");
    let (code, stderr) = pack_with_floor(
        root,
        &[
            OsStr::new("--app"),
            make_app(root, "demoapp").as_os_str(),
            OsStr::new("--bootstrap-wheels"),
            bootstrap.as_os_str(),
        ],
        "2.17",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("pip-99.0-py3-none-manylinux_2_34_x86_64.whl (bootstrap)")
            && stderr.contains("needs glibc 2.34"),
        "{stderr}"
    );
}

#[test]
fn a_target_no_artifact_can_install_is_a_usage_error_listing_what_is_accepted() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    std::fs::write(root.join("requirements.txt"), "--no-index\n").expect("write");
    for target in [
        "cp311-macosx_11_0_arm64",
        "cp311-manylinux2014_aarch64",
        "cp311-linux_x86_64",
        "3.14",
        "cp35",
        "cp35-manylinux2014_x86_64",
        "cp311-manylinux_2_28_x86_64",
    ] {
        let (code, stderr) = pack_with_floor(
            root,
            &[
                OsStr::new("--app"),
                app.as_os_str(),
                OsStr::new("-r"),
                OsStr::new("requirements.txt"),
                OsStr::new("--target"),
                OsStr::new(target),
            ],
            "2.17",
        );
        assert_eq!(code, Some(2), "{target}: {stderr}");
        assert!(stderr.contains(target), "{target}: {stderr}");
        let lists = stderr.contains("accepted: ") && stderr.contains("cp36-manylinux2014_x86_64");
        let floor = stderr.contains("--max-glibc 2.28 on purpose");
        assert!(lists || floor, "{target}: says what works: {stderr}");
    }
}

/// A `--max-glibc` below 2.17 (CentOS 7's, which the stub itself needs) is a usage error: no
/// artifact starts there, and no stub build would change that.
#[test]
fn a_max_glibc_below_the_stubs_own_is_a_usage_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    let args = [
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    for max in ["2.16", "2.5", "1.99"] {
        let (code, stderr) = pack_with_floor(root, &args, max);
        assert_eq!(code, Some(2), "{max}: {stderr}");
        assert!(stderr.contains("older than 2.17"), "{max}: {stderr}");
    }
    let (code, stderr) = pack_with_floor(root, &args, "2.17");
    assert_eq!(code, Some(0), "{stderr}");
}
