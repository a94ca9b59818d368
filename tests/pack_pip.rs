//! When pip fails at pack time, pysfx says what went wrong in one line and the fix for that
//! failure in another; pip's own text comes only with `-v`, which also shows pip's command
//! lines. With `--hash` lines, the bootstrap wheels (fetched without hashes) are named in a
//! warning. No network: the requirements say `--no-index` and find their wheels locally.

use std::ffi::OsStr;
use std::path::Path;

use pysfx_e2e::{make_app, pack_command, run, tiny_wheel, wheel_requiring_python};

/// The `error: …` line of a pack's stderr.
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .expect("an error line")
}

/// Packs `--target 3.6` for `requirements.txt` under `root`, with `extra` options; returns
/// (exit code, stderr).
fn pack_target(root: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let app = make_app(root, "demoapp");
    let mut args = vec![
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("-r"),
        OsStr::new("requirements.txt"),
        OsStr::new("--target"),
        OsStr::new("3.6"),
        OsStr::new("--no-bootstrap"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let output = run(pack_command(&args, &root.join("site.sfx")).current_dir(root));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_requires_python_miss_gets_its_own_hint_and_pips_text_only_with_v() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    wheel_requiring_python(&root.join("found"), "newdj", "4.2", ">=3.8");
    std::fs::write(
        root.join("requirements.txt"),
        "--no-index\n--find-links found\nnewdj\n",
    )
    .expect("write");
    let (code, stderr) = pack_target(root, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let error = error_line(&stderr);
    assert!(
        error.contains("no version for this Python (Requires-Python)")
            && error.contains("newdj")
            && error.contains(">=3.8"),
        "says what failed, naming the package: {stderr}"
    );
    let hint = stderr
        .lines()
        .find(|line| line.starts_with("hint: "))
        .expect("a hint line");
    assert!(
        hint.contains("Requires-Python that CPython 3.6 fails") && !hint.contains("binary wheel"),
        "the fix for this failure: {stderr}"
    );
    assert!(
        !stderr.contains("ERROR: ") && !stderr.contains("running "),
        "pip's own text only with -v: {stderr}"
    );

    let (code, stderr) = pack_target(root, &["-v"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("ERROR: Package 'newdj' requires a different Python"),
        "-v shows pip's output: {stderr}"
    );
    assert!(
        stderr.contains("running ") && stderr.contains("\"download\""),
        "-v shows pip's command: {stderr}"
    );
}

#[test]
fn a_hash_mismatch_is_not_called_a_missing_wheel() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    wheel_requiring_python(&root.join("found"), "newdj", "4.2", ">=3");
    std::fs::write(
        root.join("requirements.txt"),
        format!(
            "--no-index\n--find-links found\nnewdj==4.2 --hash=sha256:{}\n",
            "0".repeat(64)
        ),
    )
    .expect("write");
    let (code, stderr) = pack_target(root, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("does not match its --hash") && stderr.contains("newdj==4.2"),
        "{stderr}"
    );
    let hint = stderr
        .lines()
        .find(|line| line.starts_with("hint: "))
        .expect("a hint line");
    assert!(
        hint.contains("regenerate the hashes")
            && !hint.contains("binary wheel")
            && !hint.contains("Requires-Python"),
        "{stderr}"
    );
}

#[test]
fn hashed_requirements_warn_that_the_bootstrap_wheels_are_not_hash_checked() {
    use sha2::Digest;
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let wheel = wheel_requiring_python(&root.join("found"), "newdj", "4.2", ">=3");
    let digest = pysfx_format::hex(&sha2::Sha256::digest(
        std::fs::read(&wheel).expect("read the wheel"),
    ));
    std::fs::write(
        root.join("requirements.txt"),
        format!("--no-index\n--find-links found\nnewdj==4.2 --hash=sha256:{digest}\n"),
    )
    .expect("write");
    // The bootstrap download reads pip's environment: stand-ins, offline.
    let bootstrap = root.join("bootstrap");
    tiny_wheel(&bootstrap, "pip", "99.0", &[]);
    tiny_wheel(&bootstrap, "setuptools", "99.0", &[]);
    let app = make_app(root, "demoapp");
    let pack_with = |extra: &[&OsStr]| {
        let mut args = vec![
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("-r"),
            OsStr::new("requirements.txt"),
            OsStr::new("--target"),
            OsStr::new("3.11"),
        ];
        args.extend_from_slice(extra);
        let output = run(pack_command(&args, &root.join("site.sfx"))
            .current_dir(root)
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", &bootstrap));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    let stderr = pack_with(&[]);
    let warning = stderr
        .lines()
        .find(|line| line.contains("WARN"))
        .unwrap_or_default();
    assert!(
        warning.contains("bootstrap wheels")
            && warning.contains("NOT hash-checked")
            && warning.contains("--no-bootstrap")
            && warning.contains("--bootstrap-wheels DIR"),
        "{stderr}"
    );
    for extra in [
        vec![OsStr::new("--no-bootstrap")],
        vec![OsStr::new("--bootstrap-wheels"), bootstrap.as_os_str()],
    ] {
        let stderr = pack_with(&extra);
        assert!(!stderr.contains("hash-checked"), "{extra:?}: {stderr}");
    }
}

/// Bootstrap wheels given by hand are packed as they are: when no pip among them fits a set's
/// Python, the pack warns that its venvs will have no pip (the stub would pass over the wheel
/// in silence); a pip that fits says nothing.
#[test]
fn bootstrap_wheels_that_fit_no_set_are_warned_of() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    tiny_wheel(&root.join("found"), "tinylib", "1.0", &[]);
    std::fs::write(
        root.join("requirements.txt"),
        "--no-index\n--find-links found\ntinylib\n",
    )
    .expect("write");
    let app = make_app(root, "demoapp");
    let pack_with = |bootstrap: &Path| {
        let args = [
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("-r"),
            OsStr::new("requirements.txt"),
            OsStr::new("--target"),
            OsStr::new("3.8"),
            OsStr::new("--bootstrap-wheels"),
            bootstrap.as_os_str(),
        ];
        let output = run(pack_command(&args, &root.join("site.sfx")).current_dir(root));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        stderr
    };
    let newer = root.join("boot-newer");
    wheel_requiring_python(&newer, "pip", "99.0", ">=3.10");
    let stderr = pack_with(&newer);
    assert!(
        stderr.contains("no bootstrap wheel of pip fits CPython 3.8"),
        "{stderr}"
    );
    let fitting = root.join("boot-fitting");
    wheel_requiring_python(&fitting, "pip", "99.0", ">=3.6");
    let stderr = pack_with(&fitting);
    assert!(!stderr.contains("no bootstrap wheel of pip"), "{stderr}");
}

/// Two lines that ask for versions no one version meets: the error line is pip's that names
/// both, not the "ResolutionImpossible: for help visit …" after it, and the hint says what to do.
#[test]
fn conflicting_pins_are_named() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    wheel_requiring_python(&root.join("found"), "newdj", "4.2", ">=3");
    wheel_requiring_python(&root.join("found"), "newdj", "4.3", ">=3");
    std::fs::write(
        root.join("requirements.txt"),
        "--no-index\n--find-links found\nnewdj==4.2\nnewdj==4.3\n",
    )
    .expect("write");
    let (code, stderr) = pack_target(root, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let error = error_line(&stderr);
    assert!(
        error.contains("requirements that conflict")
            && error.contains("newdj==4.2")
            && error.contains("newdj==4.3"),
        "{stderr}"
    );
    assert!(stderr.contains("align or loosen the pins"), "{stderr}");
}

/// A local project whose build fails as pip asks it for its requirements (pip's stderr then
/// names no project), before another builds: the error says which one failed.
#[test]
fn a_local_project_that_does_not_build_is_named() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    for (name, setup) in [
        (
            "goodlib",
            "from setuptools import setup\nsetup(name='goodlib', version='1.0')\n",
        ),
        ("badlib", "raise SystemExit('badlib refuses to build')\n"),
    ] {
        std::fs::create_dir_all(root.join(name)).expect("mkdir");
        std::fs::write(root.join(name).join("setup.py"), setup).expect("write");
        // Offline: setuptools alone (not `wheel`) from the bootstrap wheels.
        std::fs::write(
            root.join(name).join("pyproject.toml"),
            "[build-system]\nrequires = [\"setuptools\"]\n\
             build-backend = \"setuptools.build_meta\"\n",
        )
        .expect("write");
    }
    std::fs::write(
        root.join("requirements.txt"),
        format!(
            "--no-index\n--find-links {}\n./badlib\n./goodlib\n",
            pysfx_e2e::bootstrap_wheels(11).display()
        ),
    )
    .expect("write");
    let app = make_app(root, "demoapp");
    let python = pysfx_e2e::python(11);
    let args = [
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("-r"),
        OsStr::new("requirements.txt"),
        OsStr::new("--python"),
        python.path.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    let output = run(pack_command(&args, &root.join("site.sfx")).current_dir(root));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let error = error_line(&stderr);
    assert!(
        error.contains("did not build") && error.contains("./badlib"),
        "{stderr}"
    );
    assert!(stderr.contains("fix the project's build"), "{stderr}");
}
