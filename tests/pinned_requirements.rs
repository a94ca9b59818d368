//! SPEC "Supply chain": `pysfx inspect --requirements` prints a set as hash-pinned requirements
//! that pip takes with `--require-hashes` against the very wheels packed (what pip-audit
//! reads), and refuses to guess between several sets.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use pysfx_e2e::{
    binaries, bootstrap_wheels, make_app, pack, python, raw_artifact, run, test_wheels, tiny_wheel,
};

fn requirements(artifact: &Path, python: Option<&Path>) -> std::process::Output {
    let mut command = Command::new(&binaries().pysfx);
    command.args(["inspect", "--requirements"]).arg(artifact);
    if let Some(python) = python {
        command.arg("--python").arg(python);
    }
    run(&mut command)
}

/// `pip install --dry-run --ignore-installed --no-index --require-hashes -r FILE` with pyenv's
/// 3.11 (pip 23), finding wheels only in `wheel_directories`; returns pip's exit status, its
/// output, and the names it would install (from `--report`).
fn pip_dry_run(
    file: &Path,
    wheel_directories: &[&Path],
    report: &Path,
) -> (bool, String, Vec<String>) {
    let mut command = Command::new(&python(11).path);
    command.args([
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--disable-pip-version-check",
        "--no-index",
        "--require-hashes",
        "--no-deps",
        "--report",
    ]);
    command.arg(report);
    for directory in wheel_directories {
        command.arg("--find-links").arg(directory);
    }
    command.arg("-r").arg(file);
    let output = run(&mut command);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names = Vec::new();
    if output.status.success() {
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(report).expect("the report")).expect("JSON");
        for item in value["install"].as_array().expect("install") {
            let name = item["metadata"]["name"].as_str().expect("name");
            names.push(name.to_ascii_lowercase().replace('_', "-"));
        }
        names.sort();
    }
    (output.status.success(), text, names)
}

#[test]
fn pip_installs_the_requirements_against_the_very_wheels_packed() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let wheels = test_wheels(11);
    let bootstrap = bootstrap_wheels(11);
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(root, "demoapp").as_os_str(),
            OsStr::new("--app-version"),
            OsStr::new("7.0"),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--bootstrap-wheels"),
            bootstrap.as_os_str(),
        ],
        &root.join("site.sfx"),
    );
    let output = requirements(&artifact, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        text.starts_with("# demoapp 7.0, wheel set wheels (payload_sha256 "),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
    assert_eq!(lines.len(), 5, "{text}");
    for line in &lines {
        let (pin, hash) = line.split_once(" --hash=sha256:").expect("a hash");
        assert!(pin.contains("=="), "{line}");
        assert_eq!(hash.len(), 64, "{line}");
    }
    let file = root.join("requirements.txt");
    std::fs::write(&file, &text).expect("write");
    let (ok, log, names) = pip_dry_run(&file, &[&wheels, &bootstrap], &root.join("report.json"));
    assert!(ok, "pip refused the requirements:\n{text}\n{log}");
    assert_eq!(
        names,
        ["chardet", "docutils", "markupsafe", "pip", "setuptools"],
        "{log}"
    );

    // --python: the wheels that interpreter gets, the same here.
    let output = requirements(&artifact, Some(&python(11).path));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), text);

    // The hashes are what pip checks: one digit changed and pip refuses.
    let first_hash = text.find("--hash=sha256:").expect("a hash") + "--hash=sha256:".len();
    let mut wrong = text.clone().into_bytes();
    wrong[first_hash] = if wrong[first_hash] == b'0' {
        b'1'
    } else {
        b'0'
    };
    std::fs::write(&file, &wrong).expect("write");
    let (ok, log, _) = pip_dry_run(&file, &[&wheels, &bootstrap], &root.join("report2.json"));
    assert!(!ok, "pip took a wrong hash:\n{log}");
    assert!(log.contains("HASHES"), "{log}");
}

#[test]
fn several_sets_need_python_to_choose() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let wheel = tiny_wheel(&root.join("wheels"), "tinylib", "1.0", &[]);
    let artifact = raw_artifact(&root.join("two.sfx"), &[wheel], &[], |manifest| {
        let mut second = manifest.sets[0].clone();
        second.name = "second".into();
        manifest.sets.push(second);
    });
    let output = requirements(&artifact, None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("2 wheel sets") && stderr.contains("give --python PY"),
        "{stderr}"
    );
}

/// A `--wheels` directory holding two versions of one distribution that fit the same Pythons:
/// the pack warns that the higher one is what an install takes, `--requirements` cannot make
/// one requirements file of the set (and does not claim the versions are for different
/// Pythons), and with `--python` it pins the version an install takes there.
#[test]
fn two_versions_of_one_distribution_are_named_at_pack_and_by_requirements() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let wheels = root.join("wheels");
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    tiny_wheel(&wheels, "tinylib", "2.0", &[]);
    let app = make_app(root, "demoapp");
    let output = root.join("two.sfx");
    let packed = run(&mut pysfx_e2e::pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &output,
    ));
    let stderr = String::from_utf8_lossy(&packed.stderr);
    assert!(packed.status.success(), "{stderr}");
    assert!(
        stderr.contains("offers tinylib in 2 versions (1.0, 2.0)")
            && stderr.contains("an install takes the highest"),
        "{stderr}"
    );
    let listed = requirements(&output, None);
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert_eq!(listed.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tinylib in 2 versions") && !stderr.contains("different Pythons"),
        "{stderr}"
    );
    let chosen = requirements(&output, Some(&python(11).path));
    let stdout = String::from_utf8_lossy(&chosen.stdout);
    assert!(chosen.status.success(), "{stdout}");
    assert!(
        stdout.contains("tinylib==2.0 ") && !stdout.contains("tinylib==1.0"),
        "{stdout}"
    );
}
