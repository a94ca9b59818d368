//! The documents say what the programs do: the README's artifact synopsis is the artifact's own
//! usage, the operator guide lists every key of `--json` and says when the hooks run, and the
//! docker README's claims about a 3.6-only artifact and `--target 3.6 --target 3.8` hold.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use pysfx_e2e::{
    binaries, install_with, make_app, pack, pack_command, python, run, tiny_wheel, workspace_root,
};

fn read(relative: &str) -> String {
    std::fs::read_to_string(workspace_root().join(relative)).expect("read the document")
}

/// An app without dependencies, packed.
fn small_artifact(root: &Path) -> std::path::PathBuf {
    pack(
        &[
            OsStr::new("--app"),
            make_app(root, "demoapp").as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &root.join("site.sfx"),
    )
}

#[test]
fn the_readme_synopsis_is_the_artifacts_usage() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let output = run(Command::new(&artifact).arg("--help"));
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    let readme = read("README.md");
    let usage: Vec<String> = help
        .lines()
        .filter_map(|line| {
            let line = line.strip_prefix("Usage: ").unwrap_or(line).trim();
            line.strip_prefix("site.sfx ")
                .map(|rest| format!("./site.sfx {rest}"))
        })
        .collect();
    assert_eq!(usage.len(), 5, "{help}");
    for line in &usage {
        assert!(readme.contains(line.as_str()), "README lacks {line:?}");
    }
}

#[test]
fn the_operator_guide_lists_every_json_key() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let (code, result, stderr) = install_with(
        &artifact,
        &work.path().join("release"),
        &python(11).path,
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let guide = read("docs/operator-guide.md");
    let start = guide
        .find("With `--json` the artifact prints exactly one JSON object")
        .expect("the --json paragraph");
    let paragraph = &guide[start..start + guide[start..].find("\n\n").unwrap_or(0)];
    for key in result.as_object().expect("an object").keys() {
        assert!(
            paragraph.contains(&format!("`{key}`")),
            "the operator guide's --json list lacks {key}: {paragraph}"
        );
    }
}

#[test]
fn the_hooks_run_under_isolated_mode_as_the_operator_guide_says() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let destination = work.path().join("release");
    let (code, _, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{stderr}");
    std::fs::write(
        destination.join("environment.json"),
        r#"{"PYSFX_DOC_CHECK": "loaded"}"#,
    )
    .expect("write");
    let script = "import os, appcore; print(os.environ.get('PYSFX_DOC_CHECK'))";
    let python = destination.join("venv/bin/python");
    let output = run(Command::new(&python).args(["-I", "-c", script]));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "loaded\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(Command::new(&python).args([
        "-S",
        "-c",
        "import os; print(os.environ.get('PYSFX_DOC_CHECK'))",
    ]));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "None\n");
    let guide = read("docs/operator-guide.md");
    assert!(
        !guide.contains("not with `-S` or `-I`"),
        "the guide says -I skips the hooks"
    );
    assert!(guide.contains("including `python -I`"));
}

#[test]
fn a_set_for_36_only_is_refused_by_38_as_the_docker_readme_says() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    tiny_wheel(&root.join("found"), "tinylib", "1.0", &[]);
    std::fs::write(
        root.join("requirements.txt"),
        "--no-index\n--find-links found\ntinylib\n",
    )
    .expect("write");
    let output = run(pack_command(
        &[
            OsStr::new("--app"),
            make_app(root, "demoapp").as_os_str(),
            OsStr::new("-r"),
            OsStr::new("requirements.txt"),
            OsStr::new("--target"),
            OsStr::new("3.6"),
            OsStr::new("--no-bootstrap"),
        ],
        &root.join("site.sfx"),
    )
    .current_dir(root));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (code, result, stderr) = install_with(
        &root.join("site.sfx"),
        &root.join("r"),
        &python(8).path,
        &[],
    );
    assert_eq!(code, 4, "{result}\n{stderr}");
    let readme = read("docker/README.md");
    assert!(
        !readme.contains("installs the same set"),
        "docker/README.md"
    );
    assert!(readme.contains("refused with exit 4"), "docker/README.md");
}

#[test]
fn the_example_site_packs_for_36_and_38_with_targets() {
    // Downloads the example site's pinned wheels from PyPI (pip's cache makes reruns cheap).
    let work = tempfile::tempdir().expect("tempdir");
    let site = workspace_root().join("examples/site");
    let artifact = work.path().join("site.sfx");
    let output = run(pack_command(
        &[
            OsStr::new("--app"),
            site.join("mysite").as_os_str(),
            OsStr::new("-r"),
            site.join("requirements.txt").as_os_str(),
            OsStr::new("--target"),
            OsStr::new("3.6"),
            OsStr::new("--target"),
            OsStr::new("3.8"),
            OsStr::new("--no-bootstrap"),
        ],
        &artifact,
    )
    .current_dir(work.path()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(Command::new(&binaries().pysfx)
        .args(["inspect"])
        .arg(&artifact));
    let text = String::from_utf8_lossy(&output.stdout);
    let set36 = text
        .split("set cp36-")
        .nth(1)
        .and_then(|rest| rest.split("set cp38-").next())
        .expect("a 3.6 set");
    let set38 = text.split("set cp38-").nth(1).expect("a 3.8 set");
    assert!(
        set36.contains("django 3.2.25") && !set36.contains("django 4"),
        "{text}"
    );
    assert!(
        set38.contains("django 4.2.16") && set38.contains("backports-zoneinfo"),
        "{text}"
    );
    let readme = read("docker/README.md");
    assert!(!readme.contains("does not work for the example site"));
}
