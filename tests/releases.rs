//! SPEC "Releases over time": `--keep N` prunes by the install time in the receipts (never by
//! mtime) and never LINK's target, the release it replaced, a stray directory or another app's
//! release; a release that cannot be removed is a warning; `--check` lists what differs from
//! the receipt and the RECORDs and not what a deployment adds, and `--force` restores it;
//! `--status` and `--activate` work from any artifact of the app and refuse what is not a
//! complete release of it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{listing, make_app, nobody_python, pack, python, run, run_as_nobody, tiny_wheel};

/// An artifact of `app` (a package, an executable script) with one small wheel.
fn artifact(root: &Path, app: &str) -> PathBuf {
    let wheels = root.join(format!("wheels-{app}"));
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let source = make_app(&root.join(format!("src-{app}")), app);
    pack_app(&source, &wheels, &root.join(format!("{app}.sfx")))
}

/// `pysfx pack --app APP --wheels WHEELS --no-bootstrap -o OUT`.
fn pack_app(app: &Path, wheels: &Path, out: &Path) -> PathBuf {
    pack(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        out,
    )
}

/// Runs the artifact with `args` and `--json`: exit code, parsed stdout, stderr.
fn json_run(artifact: &Path, args: &[&OsStr]) -> (i32, serde_json::Value, String) {
    let output = run(Command::new(artifact).args(args).arg("--json"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not one JSON object ({error}): {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (output.status.code().unwrap_or(-1), value, stderr)
}

/// `ARTIFACT -d RELEASE --python PYTHON EXTRA… --json` (without the suite's `pip check` after
/// each install: these releases are all of one small artifact, and the tests are about them
/// as releases).
fn install_with(
    artifact: &Path,
    release: &Path,
    python: &Path,
    extra: &[&OsStr],
) -> (i32, serde_json::Value, String) {
    let mut args = vec![
        OsStr::new("-d"),
        release.as_os_str(),
        OsStr::new("--python"),
        python.as_os_str(),
    ];
    args.extend_from_slice(extra);
    json_run(artifact, &args)
}

/// Every key of `object` is named (in backticks) in the operator guide's "Releases over time".
fn assert_documented(object: &serde_json::Value) {
    let guide = std::fs::read_to_string(pysfx_e2e::workspace_root().join("docs/operator-guide.md"))
        .expect("the operator guide");
    let start = guide
        .find("## Releases over time")
        .expect("the releases section");
    let section = &guide[start..start + guide[start..].find("\n## Exit codes").unwrap_or(0)];
    for key in object.as_object().expect("an object").keys() {
        assert!(
            section.contains(&format!("`{key}`")),
            "docs/operator-guide.md does not name {key}"
        );
    }
}

fn names(value: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = value
        .as_array()
        .expect("an array")
        .iter()
        .map(|path| {
            Path::new(path.as_str().expect("a path"))
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// `artifact -d release --link link EXTRA…` on CPython 3.11, which must succeed: its `--json`.
fn install_linked(
    artifact: &Path,
    release: &Path,
    link: &Path,
    extra: &[&OsStr],
) -> serde_json::Value {
    let mut args = vec![OsStr::new("--link"), link.as_os_str()];
    args.extend_from_slice(extra);
    let (code, result, stderr) = install_with(artifact, release, &python(11).path, &args);
    assert_eq!(code, 0, "{}: {result}\n{stderr}", release.display());
    result
}

/// `artifact --activate RELEASE --link LINK --json`: exit code, JSON and stderr.
fn activate(artifact: &Path, release: &Path, link: &Path) -> (i32, serde_json::Value, String) {
    json_run(
        artifact,
        &[
            OsStr::new("--activate"),
            release.as_os_str(),
            OsStr::new("--link"),
            link.as_os_str(),
        ],
    )
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A tmpfs of `size` (`1m`) mounted at the directory `at`; `None`, with the reason printed
/// (the test is then skipped), where that takes root this run does not have.
fn mount_tmpfs(at: &Path, size: &str) -> Option<Mounted> {
    let mounted = run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at));
    if !mounted.status.success() {
        eprintln!(
            "skipped: cannot mount a tmpfs here: {}",
            String::from_utf8_lossy(&mounted.stderr).trim()
        );
        return None;
    }
    Some(Mounted(at.to_path_buf()))
}

#[test]
fn keep_prunes_by_receipt_time_and_status_and_activate_follow() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let site = artifact(root, "demoapp");
    let releases = root.join("releases");
    let current = root.join("current");
    for number in 1..=6 {
        install_linked(&site, &releases.join(format!("r{number}")), &current, &[]);
    }
    // A rollback to r2 before the next deploy: r2 is then the release r7 replaces.
    let (code, result, stderr) = activate(&site, &releases.join("r2"), &current);
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(true)),
        "{stderr}"
    );
    // r1 looks newest by mtime; a stray directory and a killed run's leftover lie beside.
    let touched = run(Command::new("touch")
        .args(["-d", "+1 hour"])
        .arg(releases.join("r1")));
    assert!(touched.status.success());
    std::fs::create_dir_all(releases.join("tmp")).expect("stray");
    std::fs::write(releases.join("tmp/notes"), "mine").expect("stray file");
    std::fs::create_dir(releases.join(".r3.pysfx-tmp-999999")).expect("leftover");
    let other = artifact(root, "otherapp");
    let (code, _, stderr) = install_with(&other, &releases.join("o1"), &python(11).path, &[]);
    assert_eq!(code, 0, "{stderr}");

    let (code, result, stderr) = install_with(
        &site,
        &releases.join("r7"),
        &python(11).path,
        &[
            OsStr::new("--link"),
            current.as_os_str(),
            OsStr::new("--keep"),
            OsStr::new("4"),
        ],
    );
    assert_eq!(code, 0, "{result}\n{stderr}");
    // Four remain: r7 and r2 (the release it replaced) among them, and the two newest of the
    // others; the oldest go.
    assert_eq!(names(&result["pruned"]), ["r1", "r3", "r4"], "{result}");
    assert_eq!(names(&result["kept"]), ["r2", "r5", "r6", "r7"], "{result}");
    assert_eq!(result["not_pruned"], serde_json::json!([]));
    for key in ["pruned", "kept", "not_pruned"] {
        assert_documented(&serde_json::json!({ key: null }));
    }
    assert_eq!(
        listing(&releases),
        [
            ".o1.pysfx-lock",
            ".r2.pysfx-lock",
            ".r5.pysfx-lock",
            ".r6.pysfx-lock",
            ".r7.pysfx-lock",
            "o1",
            "r2",
            "r5",
            "r6",
            "r7",
            "tmp"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(releases.join("tmp/notes")).expect("stray kept"),
        "mine"
    );

    status_lists_newest_first(&site, &other, &current);
    activate_refuses_what_is_not_a_complete_release(&site, &releases, &current);
}

/// A deploy run again as it was (an idempotent playbook) removes nothing more: the release
/// its first run replaced stays for a rollback, and the re-run reports no change. A run that
/// does remove a release reports a change.
#[test]
fn a_deploy_run_again_keeps_the_release_it_replaced() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let site = artifact(root, "demoapp");
    let releases = root.join("releases");
    let current = root.join("current");
    let keep_one = [
        OsStr::new("--link"),
        current.as_os_str(),
        OsStr::new("--keep"),
        OsStr::new("1"),
    ];
    install_linked(&site, &releases.join("r1"), &current, &[]);
    for run in ["first", "again"] {
        let (code, result, stderr) =
            install_with(&site, &releases.join("r2"), &python(11).path, &keep_one);
        assert_eq!(code, 0, "{run}: {result}\n{stderr}");
        assert_eq!(
            names(&result["pruned"]),
            Vec::<String>::new(),
            "{run}: {result}"
        );
        assert_eq!(names(&result["kept"]), ["r1", "r2"], "{run}: {result}");
        assert_eq!(
            result["changed"],
            serde_json::json!(run == "first"),
            "{run}: {result}"
        );
    }
    // A third release: r1 goes (r2 is the one r3 replaced), and that is a change.
    install_linked(&site, &releases.join("r3"), &current, &[]);
    let (code, result, stderr) =
        install_with(&site, &releases.join("r3"), &python(11).path, &keep_one);
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert_eq!(names(&result["pruned"]), ["r1"], "{result}");
    assert_eq!(result["changed"], serde_json::json!(true), "{result}");
    assert_eq!(result["link_moved"], serde_json::json!(false), "{result}");
    // `--check` through the link checks the release it points at (it only reads).
    let (code, result, stderr) = json_run(&site, &[OsStr::new("--check"), current.as_os_str()]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert_eq!(result["intact"], serde_json::json!(true), "{result}");
    assert!(
        result["dest"]
            .as_str()
            .is_some_and(|dest| dest.ends_with("/r3")),
        "{result}"
    );
    // A failed --check reports the path it was given, and no interpreter.
    let missing = releases.join("r9");
    let (code, result, _) = json_run(&site, &[OsStr::new("--check"), missing.as_os_str()]);
    assert_ne!(code, 0, "{result}");
    assert_eq!(result["dest"], serde_json::json!(missing), "{result}");
    assert_eq!(result["python"], serde_json::json!(""), "{result}");
}

/// A LINK that lies inside an older release (`--link releases/r1/current`) keeps that release:
/// pruning it would remove LINK after reporting that it moved.
#[test]
fn keep_never_removes_the_release_link_lies_in() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let site = artifact(root, "demoapp");
    let releases = root.join("releases");
    let elsewhere = root.join("elsewhere");
    install_linked(&site, &releases.join("r1"), &elsewhere.join("current"), &[]);
    install_linked(&site, &releases.join("r2"), &elsewhere.join("current"), &[]);
    install_linked(&site, &releases.join("r3"), &elsewhere.join("current"), &[]);
    let current = releases.join("r1").join("current");
    // r4 keeps itself and r1, which LINK lies in (a new LINK replaced no release).
    let (code, result, stderr) = install_with(
        &site,
        &releases.join("r4"),
        &python(11).path,
        &[
            OsStr::new("--link"),
            current.as_os_str(),
            OsStr::new("--keep"),
            OsStr::new("1"),
        ],
    );
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert_eq!(names(&result["pruned"]), ["r2", "r3"], "{result}");
    assert_eq!(
        std::fs::read_link(&current).ok(),
        Some(releases.join("r4")),
        "{result}"
    );
    assert!(releases.join("r1/pysfx-receipt.json").is_file());
}

/// A LINK inside DEST is refused (exit 2) however DEST is written: through a link to the
/// releases' directory too, nothing is installed.
#[test]
fn a_link_inside_dest_through_a_linked_parent_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let releases = work.path().join("releases");
    std::fs::create_dir(&releases).expect("mkdir");
    let alias = work.path().join("alias");
    std::os::unix::fs::symlink(&releases, &alias).expect("symlink");
    let inside = releases.join("1/current");
    let (code, result, stderr) = install_with(
        &site,
        &alias.join("1"),
        &python(11).path,
        &[OsStr::new("--link"), inside.as_os_str()],
    );
    assert_eq!(code, 2, "{result}\n{stderr}");
    assert!(!releases.join("1").exists());
    // `--activate` holds LINK to the same rule: a link into the release's own site-packages,
    // reached through a linked parent, is refused and not made.
    let current = work.path().join("current");
    let (code, _, stderr) = install_with(
        &site,
        &releases.join("1"),
        &python(11).path,
        &[OsStr::new("--link"), current.as_os_str()],
    );
    assert_eq!(code, 0, "{stderr}");
    let into = work.path().join("into");
    std::os::unix::fs::symlink(releases.join("1/demoapp"), &into).expect("symlink");
    let (code, result, stderr) = activate(&site, &releases.join("1"), &into.join("current"));
    assert_eq!(code, 2, "{result}\n{stderr}");
    assert!(std::fs::symlink_metadata(releases.join("1/demoapp/current")).is_err());
    // `--force` replaces the very release LINK serves with another artifact's (LINK then
    // serves the new one): only a directory holding LINK's target is refused.
    let wheels = work.path().join("wheels-2");
    tiny_wheel(&wheels, "tinylib", "2.0", &[]);
    let second = pack_app(
        &work.path().join("src-demoapp/demoapp"),
        &wheels,
        &work.path().join("second.sfx"),
    );
    let (code, result, stderr) = install_with(
        &second,
        &releases.join("1"),
        &python(11).path,
        &[
            OsStr::new("--force"),
            OsStr::new("--link"),
            current.as_os_str(),
        ],
    );
    assert_eq!(code, 0, "{result}\n{stderr}");
    let (code, result, stderr) = install_with(
        &site,
        &releases,
        &python(11).path,
        &[
            OsStr::new("--force"),
            OsStr::new("--link"),
            current.as_os_str(),
        ],
    );
    assert_eq!(code, 5, "{result}\n{stderr}");
    assert!(
        stderr.contains("holds the release --link points at"),
        "{stderr}"
    );
}

/// A DEST so long that a file of the release would have a path Linux does not take whole
/// (PATH_MAX, 4096 bytes): Python could not import it, so the install refuses (exit 4) —
/// before writing when it is one of the app's files, while planning the wheels otherwise —
/// and leaves nothing behind.
#[test]
fn a_dest_too_long_for_the_release_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let base = work.path().join("deep");
    // Each case: how far short of 4096 bytes DEST stops (the app's files, then the wheel's
    // with their byte-code, come to more).
    for (short_by, when) in [(20, "the app's files"), (70, "a wheel's files")] {
        let mut destination = deep_below(&base, 4096 - short_by);
        let last = 4096 - short_by - destination.as_os_str().len() - 1;
        destination.push("r".repeat(last));
        assert_eq!(destination.as_os_str().len(), 4096 - short_by);
        let (code, result, stderr) = install_with(&site, &destination, &python(11).path, &[]);
        assert_eq!(code, 4, "{when}: {result}\n{stderr}");
        assert!(stderr.contains("too long"), "{when}: {stderr}");
        assert!(!base.exists(), "{when}: the run left {}", base.display());
    }
    // A short DEST that reaches a deep directory through a link is as long as that.
    let deep = deep_below(&base, 4096 - 40);
    std::fs::create_dir_all(&deep).expect("mkdir");
    let short = work.path().join("short");
    std::os::unix::fs::symlink(&deep, &short).expect("symlink");
    let (code, result, stderr) = install_with(&site, &short.join("r1"), &python(11).path, &[]);
    assert_eq!(code, 4, "through a link: {result}\n{stderr}");
    assert!(!deep.join("r1").exists());
}

/// A DEST or LINK whose name leaves no room for its siblings' names (`.NAME.pysfx-trash-PID`,
/// `.NAME.pysfx-link-PID-RANDOM`, 255 bytes at most) is a usage error before anything is made,
/// whatever the process id.
#[test]
fn a_dest_or_link_name_too_long_for_its_siblings_is_a_usage_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let releases = work.path().join("releases");
    let long = "r".repeat(240);
    let (code, result, stderr) = install_with(&site, &releases.join(&long), &python(11).path, &[]);
    assert_eq!(code, 2, "{result}\n{stderr}");
    assert!(stderr.contains("its name is 240 bytes"), "{stderr}");
    assert!(!releases.exists(), "the run made {}", releases.display());
    let link = work.path().join(&long);
    let (code, result, stderr) = install_with(
        &site,
        &releases.join("1"),
        &python(11).path,
        &[OsStr::new("--link"), link.as_os_str()],
    );
    assert_eq!(code, 2, "{result}\n{stderr}");
    assert!(!releases.exists());
    // LINK's own sibling is longer (`.NAME.pysfx-link-PID-RANDOM`): 216 bytes are too many,
    // before anything is written.
    let link = work.path().join("l".repeat(216));
    let (code, result, stderr) = install_with(
        &site,
        &releases.join("1"),
        &python(11).path,
        &[OsStr::new("--link"), link.as_os_str()],
    );
    assert_eq!(code, 2, "{result}\n{stderr}");
    assert!(stderr.contains("at most 215"), "{stderr}");
    assert!(!releases.exists());
    // 231 bytes is the most for DEST, 215 for LINK, and both work.
    let link = work.path().join("l".repeat(215));
    let (code, result, stderr) = install_with(
        &site,
        &releases.join("r".repeat(231)),
        &python(11).path,
        &[OsStr::new("--link"), link.as_os_str()],
    );
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert_eq!(result["link_moved"], true, "{result}");
}

/// `base` with components of 200 bytes below it, as many as stay under `length` bytes.
fn deep_below(base: &Path, length: usize) -> PathBuf {
    let mut deep = base.to_path_buf();
    while deep.as_os_str().len() + 201 < length {
        deep.push("d".repeat(200));
    }
    deep
}

/// A release whose venv no longer runs it — `bin/python` moved to another Python, or its
/// `pyvenv.cfg` no longer a regular file (a FIFO would hang every start) — is neither
/// "already installed" for a re-run with `--link` nor activatable: exit 5, LINK stays.
#[test]
fn a_broken_release_is_not_linked_by_a_rerun_or_activate() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let releases = work.path().join("releases");
    let current = work.path().join("current");
    let release = releases.join("r1");
    let link = [OsStr::new("--link"), current.as_os_str()];
    let (code, _, stderr) = install_with(&site, &release, &python(11).path, &[]);
    assert_eq!(code, 0, "{stderr}");
    let venv_python = release.join("venv/bin/python");
    let installed = std::fs::read_link(&venv_python).expect("bin/python");
    std::fs::remove_file(&venv_python).expect("unlink");
    std::os::unix::fs::symlink(&python(12).path, &venv_python).expect("relink");
    // `--activate` refuses the release as the install did, and LINK is never made.
    let activate_refused = || {
        let activate = [
            OsStr::new("--activate"),
            release.as_os_str(),
            link[0],
            link[1],
        ];
        let (code, result, _) = json_run(&site, &activate);
        assert_eq!(code, 5, "{result}");
        assert!(std::fs::symlink_metadata(&current).is_err());
    };
    let (code, result, stderr) = install_with(&site, &release, &python(11).path, &link);
    assert_eq!(code, 5, "{result}\n{stderr}");
    assert!(stderr.contains("is now Python 3.12"), "{stderr}");
    activate_refused();
    // LINK made by hand: `--status` says the release it points at cannot be served.
    std::os::unix::fs::symlink(&release, &current).expect("link");
    let (code, status, stderr) = json_run(&site, &[OsStr::new("--status"), current.as_os_str()]);
    assert_eq!(code, 1, "{status}\n{stderr}");
    assert_eq!(status["releases"][0]["complete"], false, "{status}");
    assert!(stderr.contains("is now Python 3.12"), "{stderr}");
    std::fs::remove_file(&current).expect("unlink");
    // Mended, then its pyvenv.cfg made a FIFO.
    std::fs::remove_file(&venv_python).expect("unlink");
    std::os::unix::fs::symlink(&installed, &venv_python).expect("mend");
    let config = release.join("venv/pyvenv.cfg");
    let written = std::fs::read(&config).expect("pyvenv.cfg");
    std::fs::remove_file(&config).expect("remove");
    let made = run(Command::new("mkfifo").arg(&config));
    assert!(made.status.success());
    let (code, result, stderr) = install_with(&site, &release, &python(11).path, &link);
    assert_eq!(code, 5, "{result}\n{stderr}");
    activate_refused();
    // Mended, then a package directory swapped for a link to its copy outside the release:
    // every file is still found, but through the link, outside the release.
    std::fs::remove_file(&config).expect("remove");
    std::fs::write(&config, written).expect("pyvenv.cfg");
    let site_packages = only_child(&release.join("venv/lib")).join("site-packages");
    let package = (std::fs::read_dir(&site_packages).expect("site-packages"))
        .map(|entry| entry.expect("entry").path())
        .find(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            path.is_dir() && !name.ends_with(".dist-info") && name != "__pycache__"
        })
        .expect("a package directory");
    let outside = work.path().join("outside");
    std::fs::rename(&package, &outside).expect("move out");
    std::os::unix::fs::symlink(&outside, &package).expect("link in");
    let (code, result, stderr) = install_with(&site, &release, &python(11).path, &link);
    assert_eq!(code, 5, "{result}\n{stderr}");
    assert!(stderr.contains("incomplete or broken"), "{stderr}");
    activate_refused();
}

fn only_child(directory: &Path) -> PathBuf {
    let mut entries = std::fs::read_dir(directory).expect("read_dir");
    let child = entries.next().expect("one entry").expect("entry").path();
    assert!(entries.next().is_none(), "{}", directory.display());
    child
}

/// LINK that cannot be made once the release is in place: the failure says the release is
/// installed (it stays, `changed: true`, with what was installed), and a re-run once LINK
/// can be made switches it.
#[test]
fn a_link_that_fails_after_the_install_says_the_release_is_installed() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let release = work.path().join("releases/1");
    let blocker = work.path().join("srv");
    // A file where LINK's directory should be is refused before anything is written.
    std::fs::write(&blocker, "a file where LINK's directory should be").expect("write");
    let link = blocker.join("current");
    let args = [OsStr::new("--link"), link.as_os_str()];
    let (code, result, stderr) = install_with(&site, &release, &python(11).path, &args);
    assert_eq!(code, 5, "{result}\n{stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");
    assert!(!release.exists());
    std::fs::remove_file(&blocker).expect("remove");
    // A dangling link there is found only when LINK is made: after the install.
    std::os::unix::fs::symlink(work.path().join("nowhere"), &blocker).expect("symlink");
    let (code, result, stderr) = install_with(&site, &release, &python(11).path, &args);
    assert_eq!(code, 1, "{result}\n{stderr}");
    assert_eq!(result["changed"], true, "{result}");
    // What was installed, as a success would say it.
    assert_eq!(result["wheels_installed"], 1, "{result}");
    assert!(
        result["files"].as_u64().is_some_and(|files| files > 5),
        "{result}"
    );
    assert!(
        result["bytes"].as_u64().is_some_and(|bytes| bytes > 0),
        "{result}"
    );
    let said = format!("{} is installed, but --link failed", release.display());
    assert!(stderr.contains(&said), "{stderr}");
    std::fs::remove_file(&blocker).expect("remove");
    let (code, result, stderr) = install_with(&site, &release, &python(11).path, &args);
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(true)),
        "{stderr}"
    );
    assert_eq!(std::fs::read_link(&link).expect("LINK"), release);
}

/// A release moved or copied to another name keeps scripts that name its old path: `--check`
/// says so, `--status` calls it incomplete, and neither a re-run nor `--activate` points LINK
/// at it; `--force` rebuilds it where it now is, with scripts that run.
#[test]
fn a_moved_release_is_not_served_until_force_rebuilds_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let (site, release, python) = one_release(work.path());
    let moved = release.with_file_name("1-moved");
    std::fs::rename(&release, &moved).expect("move");
    let copied = release.with_file_name("1-copied");
    let copy = run(Command::new("cp").arg("-a").arg(&moved).arg(&copied));
    assert!(copy.status.success());
    std::fs::rename(&moved, &release).expect("move back");
    let current = work.path().join("current");
    let link = [OsStr::new("--link"), current.as_os_str()];

    let (code, result, stderr) = json_run(&site, &[OsStr::new("--check"), copied.as_os_str()]);
    assert_eq!(code, 3, "{result}\n{stderr}");
    assert_eq!(result["modified"], serde_json::json!(["."]), "{result}");
    assert!(stderr.contains("moved or copied since"), "{stderr}");
    let (code, result, stderr) = install_with(&site, &copied, &python, &link);
    assert_eq!(code, 5, "{result}\n{stderr}");
    assert!(stderr.contains("moved or copied since"), "{stderr}");
    let activate = [
        OsStr::new("--activate"),
        copied.as_os_str(),
        link[0],
        link[1],
    ];
    let (code, result, _) = json_run(&site, &activate);
    assert_eq!(code, 5, "{result}");
    assert!(std::fs::symlink_metadata(&current).is_err());

    // The original is intact and served; the copy beside it is listed as not complete.
    install_linked(&site, &release, &current, &[]);
    let (code, status, stderr) = json_run(&site, &[OsStr::new("--status"), current.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    let copy = status["releases"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["name"] == "1-copied"))
        .expect("the copy listed");
    assert_eq!(copy["complete"], false, "{status}");

    // --force rebuilds the copy in place: its console script runs from there.
    let (code, result, stderr) = install_with(&site, &copied, &python, &[OsStr::new("--force")]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    let (code, result, _) = json_run(&site, &[OsStr::new("--check"), copied.as_os_str()]);
    assert_eq!(code, 0, "{result}");
    let (code, _, stderr) = json_run(&site, &activate);
    assert_eq!(code, 0, "{stderr}");
    let (code, status, _) = json_run(&site, &[OsStr::new("--status"), current.as_os_str()]);
    assert_eq!(code, 0, "{status}");
}

/// The release LINK replaced is remembered (in DEST's lock file) when LINK moves, so a re-run
/// keeps it even when a release never linked was installed between the two; and a relative
/// link that already leads to DEST (made by a symlink task) is no move.
#[test]
fn a_re_run_keeps_the_release_link_replaced_even_past_an_unlinked_one() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let site = artifact(root, "demoapp");
    let releases = root.join("releases");
    let current = root.join("current");
    install_linked(&site, &releases.join("r1"), &current, &[]);
    let python = python(11).path;
    let (code, _, stderr) = install_with(&site, &releases.join("r2"), &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = install_with(&site, &releases.join("r3"), &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    let keep_two = [
        OsStr::new("--link"),
        current.as_os_str(),
        OsStr::new("--keep"),
        OsStr::new("2"),
    ];
    // Two remain: r3, and r1, the release LINK served before, older than r2, which goes.
    for (run, pruned) in [("first", vec!["r2"]), ("again", vec![])] {
        let (code, result, stderr) = install_with(&site, &releases.join("r3"), &python, &keep_two);
        assert_eq!(code, 0, "{run}: {stderr}");
        assert_eq!(names(&result["pruned"]), pruned, "{run}: {result}");
        assert!(
            releases.join("r1").is_dir(),
            "{run}: the rollback target went"
        );
    }
    // A relative link to DEST, as a symlink task makes it: no move, no change.
    std::fs::remove_file(&current).expect("rm link");
    std::os::unix::fs::symlink("releases/r3", &current).expect("relative link");
    let (code, result, stderr) = install_with(&site, &releases.join("r3"), &python, &keep_two);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result["link_moved"], serde_json::json!(false), "{result}");
    assert_eq!(
        std::fs::read_link(&current).expect("link"),
        Path::new("releases/r3")
    );
}

/// `--activate` records the release LINK served, as an install that moves LINK does: the
/// activated release deployed again with `--keep` keeps the release it was rolled back from,
/// not the one its first install replaced. A first `--link` replaces nothing: `--keep 1` then
/// keeps one release. A lock file that is a FIFO is refused at once, never waited on; a
/// release another run holds is waited for. LINK's missing directories are made for a release
/// that is activated, and only then.
#[test]
fn activate_records_what_it_replaced_and_never_waits_on_a_planted_lock() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let site = artifact(root, "demoapp");
    let releases = root.join("releases");
    let current = root.join("current");
    let python = python(11).path;
    for release in ["r1", "r2", "r3"] {
        let (code, _, stderr) = install_with(&site, &releases.join(release), &python, &[]);
        assert_eq!(code, 0, "{stderr}");
    }
    let keep_one = [
        OsStr::new("--link"),
        current.as_os_str(),
        OsStr::new("--keep"),
        OsStr::new("1"),
    ];
    let (code, result, stderr) = install_with(&site, &releases.join("r4"), &python, &keep_one);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(names(&result["pruned"]), ["r1", "r2", "r3"], "{result}");
    for release in ["r5", "r6", "r7"] {
        install_linked(&site, &releases.join(release), &current, &[]);
    }
    let activate = |release: &str| {
        let target = releases.join(release);
        let args = [
            OsStr::new("--activate"),
            target.as_os_str(),
            OsStr::new("--link"),
            current.as_os_str(),
        ];
        let output = run(Command::new("timeout")
            .arg("60")
            .arg(&site)
            .args(args)
            .arg("-q"));
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // current: r7 -> r4 -> r6.
    for release in ["r4", "r6"] {
        let (code, stderr) = activate(release);
        assert_eq!(code, Some(0), "{stderr}");
    }
    let (code, result, stderr) = install_with(&site, &releases.join("r6"), &python, &keep_one);
    assert_eq!(code, 0, "{stderr}");
    // One complete release is asked for, and the two always kept are more: r6 and r4 (which
    // it was rolled back from; not r5, which its first install replaced) stay, r5 and r7 go.
    assert_eq!(names(&result["pruned"]), ["r5", "r7"], "{result}");
    assert_eq!(names(&result["kept"]), ["r4", "r6"], "{result}");

    let lock = releases.join(".r4.pysfx-lock");
    std::fs::remove_file(&lock).expect("rm lock");
    let status = Command::new("mkfifo").arg(&lock).status().expect("mkfifo");
    assert!(status.success());
    let (code, stderr) = activate("r4");
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert_eq!(
        std::fs::read_link(&current).expect("link"),
        releases.join("r6")
    );

    // LINK moved: a report stdout cannot take (a full disk) is a warning, not a failure, as
    // after an install.
    std::fs::remove_file(&lock).expect("rm the FIFO");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let target = releases.join("r4");
    let output = run(Command::new(&site)
        .arg("--activate")
        .arg(&target)
        .arg("--link")
        .arg(&current)
        .arg("--json")
        .stdout(full));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("the run itself succeeded"), "{stderr}");
    assert_eq!(std::fs::read_link(&current).expect("link"), target);

    // A release another run holds (a re-run of its artifact, checking it) is waited for, as
    // an install waits for DEST's lock; with PYSFX_LOCK_TIMEOUT=0, refused at once.
    let lock = std::fs::File::open(releases.join(".r6.pysfx-lock")).expect("open the lock");
    lock.lock().expect("hold r6");
    let activate_r6 = |timeout: &str| {
        let mut command = Command::new("timeout");
        command
            .args(["60".as_ref(), site.as_os_str(), "--activate".as_ref()])
            .arg(releases.join("r6"))
            .arg("--link")
            .arg(&current)
            .env("PYSFX_LOCK_TIMEOUT", timeout);
        command
    };
    let output = run(&mut activate_r6("0"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("is in use"), "{stderr}");
    let mut waiting = activate_r6("60").spawn().expect("activate");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(waiting.try_wait().expect("poll").is_none(), "did not wait");
    assert_eq!(std::fs::read_link(&current).expect("link"), target);
    drop(lock);
    assert_eq!(waiting.wait().expect("wait").code(), Some(0));
    assert_eq!(
        std::fs::read_link(&current).expect("link"),
        releases.join("r6")
    );

    // A LINK whose directories are missing: they are made before LINK's directory is locked
    // (no warning of a switch without the lock), and not at all for a release refused.
    let deep = root.join("new/sub/current");
    let output = run(Command::new(&site)
        .arg("--activate")
        .arg(releases.join("r4"))
        .arg("--link")
        .arg(&deep));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("without the lock"), "{stderr}");
    assert_eq!(
        std::fs::read_link(&deep).expect("link"),
        releases.join("r4")
    );
    let output = run(Command::new(&site)
        .arg("--activate")
        .arg(releases.join("r1"))
        .arg("--link")
        .arg(root.join("other/current")));
    assert_eq!(output.status.code(), Some(5));
    assert!(!root.join("other").exists());
}

/// `--status`: newest first by receipt, LINK's target marked, the other app's release left out.
fn status_lists_newest_first(site: &Path, other: &Path, current: &Path) {
    let status_args = [OsStr::new("--status"), current.as_os_str()];
    let (code, status, stderr) = json_run(site, &status_args);
    assert_eq!(code, 0, "{stderr}");
    let listed: Vec<&str> = status["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|release| release["name"].as_str().expect("name"))
        .collect();
    assert_eq!(listed, ["r7", "r6", "r5", "r2"]);
    assert_documented(&status);
    // Through a chain of links (`live -> current -> r7`): the same releases, r7 served.
    let live = current.with_file_name("live");
    std::os::unix::fs::symlink(current, &live).expect("link");
    let (code, chained, stderr) = json_run(site, &[OsStr::new("--status"), live.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(chained["releases"], status["releases"], "{chained}");
    std::fs::remove_file(&live).expect("unlink");
    let first = &status["releases"][0];
    assert_documented(first);
    assert_eq!(first["current"], true);
    assert_eq!(first["complete"], true);
    // Every key the guide lists is there for a complete release too.
    assert_eq!(
        first.get("incomplete"),
        Some(&serde_json::Value::Null),
        "{first}"
    );
    assert_eq!(
        first["python_version"]
            .as_str()
            .map(|v| v.starts_with("3.11")),
        Some(true)
    );
    assert!(first["bytes"].as_u64().expect("bytes") > 1000, "{first}");
    let text = run(Command::new(site).args(status_args));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|line| line.starts_with('*') && line.contains("r7")),
        "{text}"
    );

    // The other app's artifact sees LINK as another app's.
    let (code, _, stderr) = json_run(other, &status_args);
    assert_eq!(code, 5, "{stderr}");

    // A directory where the link should be: refused as no link, not as a replacement.
    let releases = current.parent().expect("a parent").join("releases");
    let (code, _, stderr) = json_run(site, &[OsStr::new("--status"), releases.as_os_str()]);
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("is not a symlink; give --status"),
        "{stderr}"
    );
    // A link to a release since removed: listed, and said to be broken.
    let dangling = current.with_file_name("dangling");
    std::os::unix::fs::symlink(releases.join("gone"), &dangling).expect("link");
    let (code, status, stderr) = json_run(site, &[OsStr::new("--status"), dangling.as_os_str()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        status["releases"].as_array().is_some_and(|r| !r.is_empty()),
        "{status}"
    );
    assert!(stderr.contains("the link is broken"), "{stderr}");
    // `--json` says why nothing is served, as a failed run's object does.
    assert_eq!(status["exit_code"], 1, "{status}");
    assert!(
        status["error"]
            .as_str()
            .is_some_and(|error| error.contains("the link is broken")),
        "{status}"
    );
    // A link to a directory that is no release: not called broken.
    let foreign = releases.join("foreign");
    std::fs::create_dir_all(&foreign).expect("mkdir");
    let elsewhere = current.with_file_name("elsewhere");
    std::os::unix::fs::symlink(&foreign, &elsewhere).expect("link");
    let (code, status, stderr) = json_run(site, &[OsStr::new("--status"), elsewhere.as_os_str()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("which is not a release of this app") && !stderr.contains("broken"),
        "{stderr}"
    );
    assert_eq!(status["exit_code"], 1, "{status}");
    std::fs::remove_dir(&foreign).expect("rmdir");

    // A failure before anything was looked at still carries each mode's own keys.
    let nowhere = current.with_file_name("nowhere");
    let (code, status, stderr) = json_run(site, &[OsStr::new("--status"), nowhere.as_os_str()]);
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(status["releases"], serde_json::json!([]), "{status}");
    assert_eq!(
        status["link"],
        nowhere.to_string_lossy().as_ref(),
        "{status}"
    );
    let (code, check, stderr) = json_run(site, &[OsStr::new("--check"), nowhere.as_os_str()]);
    assert_ne!(code, 0, "{stderr}");
    assert_eq!(check["intact"], false, "{check}");
    assert!(check["error"].is_string(), "{check}");
}

/// `--activate`: a rollback to r5 with any artifact of the app, then refusals.
fn activate_refuses_what_is_not_a_complete_release(site: &Path, releases: &Path, current: &Path) {
    let activate = |release: &Path| activate(&other_or(site), release, current);
    let (code, result, stderr) = activate(&releases.join("r5"));
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(true)),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_link(current).expect("link"),
        releases.join("r5")
    );
    let (code, result, _) = activate(&releases.join("r5"));
    assert_eq!((code, &result["changed"]), (0, &serde_json::json!(false)));
    std::fs::remove_file(releases.join("r6/venv/pyvenv.cfg")).expect("break r6");
    for (release, expected) in [
        (
            releases.join("tmp"),
            "is not a pysfx release: it has no readable pysfx-receipt.json",
        ),
        (
            releases.join("r6"),
            "is not a release LINK can point at: venv/pyvenv.cfg is missing",
        ),
        (releases.join("o1"), "holds a release of \"otherapp\""),
        (releases.join("r4"), "does not exist"),
    ] {
        let (code, result, stderr) = activate(&release);
        assert_eq!(code, 5, "{}: {result}\n{stderr}", release.display());
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(result["exit_code"], 5, "{result}");
    }
    assert_eq!(
        std::fs::read_link(current).expect("link"),
        releases.join("r5")
    );
    let status_args = [OsStr::new("--status"), current.as_os_str()];
    let (code, status, _) = json_run(site, &status_args);
    assert_eq!(code, 0);
    let r6 = status["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .find(|release| release["name"] == "r6")
        .expect("r6 listed");
    assert_eq!(r6["complete"], false, "{r6}");
}

/// Appends to a wheel's module, deletes a dist-info's METADATA, adds a module to
/// site-packages, changes an app file and drops the executable bit of `manage.py`. Returns the
/// three site-packages paths (METADATA, the module, the added one).
fn tamper(release: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let site_packages = std::fs::read_dir(release.join("venv/lib"))
        .expect("lib")
        .flatten()
        .next()
        .expect("a python dir")
        .path()
        .join("site-packages");
    let module = site_packages.join("tinylib/__init__.py");
    let mut text = std::fs::read_to_string(&module).expect("module");
    text.push_str("print('tampered')\n");
    std::fs::write(&module, text).expect("append");
    let metadata = std::fs::read_dir(&site_packages)
        .expect("site-packages")
        .flatten()
        .find(|entry| entry.file_name().to_string_lossy().ends_with(".dist-info"))
        .expect("a dist-info")
        .path()
        .join("METADATA");
    std::fs::remove_file(&metadata).expect("delete");
    std::fs::write(site_packages.join("evil.py"), "import os\n").expect("add");
    std::fs::write(
        release.join("demoapp/appcore/__init__.py"),
        "GREETING = 'x'\n",
    )
    .expect("app");
    let chmod = run(Command::new("chmod")
        .arg("0644")
        .arg(release.join("demoapp/manage.py")));
    assert!(chmod.status.success());

    (metadata, module, site_packages.join("evil.py"))
}

/// The artifact the activations run with: a copy of `site` (any artifact of the app will do).
fn other_or(site: &Path) -> PathBuf {
    let copy = site.with_file_name("copy-of-site.sfx");
    if !copy.exists() {
        std::fs::copy(site, &copy).expect("copy the artifact");
    }
    copy
}

/// The app's artifact under `root`, and its release 1 installed with CPython 3.11: the
/// artifact, the release and the interpreter.
fn one_release(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let site = artifact(root, "demoapp");
    let release = root.join("releases/1");
    let python = python(11).path;
    let (code, _, stderr) = install_with(&site, &release, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    (site, release, python)
}

/// The RECORD hash of `bytes` (`sha256=`, unpadded URL-safe base64).
fn record_hash(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    format!(
        "sha256={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

/// Rewrites the receipt's row of `path` (relative to DEST) to say `bytes`.
fn forge_receipt_row(release: &Path, path: &str, bytes: &[u8]) {
    let receipt_path = release.join("pysfx-receipt.json");
    let mut receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&receipt_path).expect("receipt")).expect("JSON");
    let row = (receipt["contents"]["files"].as_array_mut().expect("files"))
        .iter_mut()
        .find(|row| row["path"] == path)
        .unwrap_or_else(|| panic!("no row of {path}"));
    row["hash"] = serde_json::json!(record_hash(bytes));
    row["size"] = serde_json::json!(bytes.len());
    std::fs::write(&receipt_path, receipt.to_string()).expect("write receipt");
}

/// The release's owner can write its receipt and RECORDs as well as its files: an app file or
/// a wheel's file edited, with its row (and the receipt's hash of that RECORD) edited to
/// agree, is still modified to the artifact that installed the release, which holds those
/// rows to its own payload; and `--force` rebuilds it.
#[test]
fn check_holds_edited_records_to_the_payload() {
    let work = tempfile::tempdir().expect("tempdir");
    let (site, release, python) = one_release(work.path());
    let check_args = [OsStr::new("--check"), release.as_os_str()];
    let force = || {
        let (code, result, stderr) =
            install_with(&site, &release, &python, &[OsStr::new("--force")]);
        assert_eq!(
            (code, &result["changed"]),
            (0, &serde_json::json!(true)),
            "{stderr}"
        );
        let (code, result, stderr) = json_run(&site, &check_args);
        assert_eq!(code, 0, "{result}\n{stderr}");
    };

    // An app file.
    let receipt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(release.join("pysfx-receipt.json")).expect("receipt"),
    )
    .expect("JSON");
    let app_file = (receipt["contents"]["files"].as_array().expect("files"))
        .iter()
        .filter_map(|row| row["path"].as_str())
        .find(|path| path.starts_with("demoapp/") && path.ends_with(".py"))
        .expect("an app file")
        .to_string();
    let mut bytes = std::fs::read(release.join(&app_file)).expect("read");
    bytes.splice(0..0, b"import os\n".iter().copied());
    std::fs::write(release.join(&app_file), &bytes).expect("edit");
    forge_receipt_row(&release, &app_file, &bytes);
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 3, "{result}\n{stderr}");
    assert_eq!(
        result["modified"],
        serde_json::json!(["pysfx-receipt.json"]),
        "{result}"
    );
    force();

    // A wheel's file, its RECORD row, and the receipt's hash of that RECORD.
    let site_packages = "venv/lib/python3.11/site-packages";
    let record = format!("{site_packages}/tinylib-1.0.dist-info/RECORD");
    let text = std::fs::read_to_string(release.join(&record)).expect("RECORD");
    let module = text
        .lines()
        .filter_map(|line| line.split(',').next())
        .find(|path| path.ends_with(".py"))
        .expect("a module")
        .to_string();
    let mut bytes = std::fs::read(release.join(site_packages).join(&module)).expect("read");
    bytes.extend_from_slice(b"import os\n");
    std::fs::write(release.join(site_packages).join(&module), &bytes).expect("edit");
    let edited: String = text
        .lines()
        .map(|line| match line.starts_with(&format!("{module},")) {
            true => format!("{module},{},{}\n", record_hash(&bytes), bytes.len()),
            false => format!("{line}\n"),
        })
        .collect();
    std::fs::write(release.join(&record), &edited).expect("edit RECORD");
    forge_receipt_row(&release, &record, edited.as_bytes());
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 3, "{result}\n{stderr}");
    assert_eq!(result["modified"], serde_json::json!([record]), "{result}");
    force();
}

#[test]
fn check_lists_each_difference_but_not_deployment_additions_and_force_restores() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (site, release, python) = one_release(root);
    let check_args = [OsStr::new("--check"), release.as_os_str()];

    // What a deployment adds is no difference.
    std::fs::write(release.join("environment.json"), r#"{"A": "1"}"#).expect("env");
    std::fs::create_dir_all(release.join("static/css")).expect("static");
    std::fs::write(release.join("static/css/site.css"), "body {}").expect("collected");
    let venv_python = release.join("venv/bin/python");
    let made = run(Command::new(&venv_python)
        .args([
            "-c",
            "import sqlite3, sys, appcore, tinylib; sqlite3.connect(sys.argv[1]).execute('create table t (x)')",
        ])
        .arg(release.join("demoapp/db.sqlite3"))
        .env_remove("PYTHONDONTWRITEBYTECODE"));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(release.join("demoapp/appcore/__pycache__").is_dir());
    // Uploads and logs in the app directory: not code, so no difference.
    std::fs::create_dir_all(release.join("demoapp/media/2026")).expect("uploads");
    std::fs::write(release.join("demoapp/media/2026/avatar.png"), "png").expect("upload");
    std::fs::write(release.join("demoapp/app.log"), "started\n").expect("log");
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert_eq!(result["intact"], true);
    assert!(
        result["checked"].as_u64().expect("checked") >= 8,
        "{result}"
    );

    let (metadata, module, evil) = tamper(&release);
    // Code added to the app directory, which is on `sys.path`: a `sitecustomize` there runs
    // in every interpreter the venv starts.
    std::fs::write(
        release.join("demoapp/sitecustomize.py"),
        "print('planted')\n",
    )
    .expect("plant");
    let planted = run(Command::new(&venv_python).args(["-c", "pass"]));
    assert_eq!(String::from_utf8_lossy(&planted.stdout), "planted\n");
    let relative = |path: &Path| {
        path.strip_prefix(&release)
            .expect("inside")
            .to_string_lossy()
            .into_owned()
    };
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 3, "{result}\n{stderr}");
    assert_eq!(result["intact"], false);
    assert_documented(&result);
    assert_eq!(result["missing"], serde_json::json!([relative(&metadata)]));
    assert_eq!(
        result["modified"],
        serde_json::json!([
            "demoapp/appcore/__init__.py",
            "demoapp/manage.py",
            relative(&module)
        ]),
        "{result}"
    );
    assert_eq!(
        result["added"],
        serde_json::json!(["demoapp/sitecustomize.py", relative(&evil)])
    );
    let text = run(Command::new(&site).args(check_args));
    assert_eq!(text.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("modified demoapp/manage.py (mode)"),
        "{stdout}"
    );
    assert!(stdout.contains("added    venv/"), "{stdout}");
    assert!(String::from_utf8_lossy(&text.stderr).contains("differs from its records"));

    // A re-run does not take it for installed: a recorded file (METADATA) is gone, so it is
    // not a complete release (exit 5, naming the file). --force reinstalls it, and it checks
    // clean.
    let (code, result, stderr) = install_with(&site, &release, &python, &[]);
    assert_eq!(
        (code, &result["changed"]),
        (5, &serde_json::json!(false)),
        "{stderr}"
    );
    assert!(stderr.contains(&relative(&metadata)), "{stderr}");
    let (code, result, stderr) = install_with(&site, &release, &python, &[OsStr::new("--force")]);
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(true)),
        "{stderr}"
    );
    // The deployment's environment.json and database went with the old tree: said, each.
    for file in ["environment.json", "demoapp/db.sqlite3"] {
        let warned = format!(
            "{} goes with the tree --force replaces",
            release.join(file).display()
        );
        assert!(stderr.contains(&warned), "{file}: {stderr}");
        assert!(!release.join(file).exists(), "{file}");
    }
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(
        (code, &result["intact"]),
        (0, &serde_json::json!(true)),
        "{result}\n{stderr}"
    );
    // --force on an intact release changes nothing.
    let (code, result, _) = install_with(&site, &release, &python, &[OsStr::new("--force")]);
    assert_eq!((code, &result["changed"]), (0, &serde_json::json!(false)));
    // Not a release, another app's: refused.
    let (code, _, stderr) = json_run(&site, &[OsStr::new("--check"), root.as_os_str()]);
    assert_eq!(code, 5, "{stderr}");
}

/// Releases 1 and 2 of `demoapp` in ROOT/releases, installed by root with LINK ROOT/current,
/// then all of ROOT given to uid 65534. Returns the artifact, the releases' directory and LINK.
fn releases_for_nobody(root: &Path, python: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let site = artifact(root, "demoapp");
    let releases = root.join("releases");
    let current = root.join("current");
    for name in ["1", "2"] {
        let (code, _, stderr) = install_with(
            &site,
            &releases.join(name),
            python,
            &[OsStr::new("--link"), current.as_os_str()],
        );
        assert_eq!(code, 0, "{stderr}");
    }
    let owned = run(Command::new("chown").args(["-hR", "65534:65534"]).arg(root));
    assert!(owned.status.success());
    let opened = run(Command::new("chmod").arg("0755").arg(root));
    assert!(opened.status.success());
    (site, releases, current)
}

/// Release 3 deployed as uid 65534 with `--link LINK --keep 1`: it succeeds, keeps release
/// 2 (the one it replaced) and prunes nothing, and lists release 1 in `not_pruned` when
/// `not_pruned` (else nothing). Returns what it logged.
fn keep_one_as_nobody(
    site: &Path,
    releases: &Path,
    current: &Path,
    python: &Path,
    not_pruned: bool,
) -> String {
    let output = run_as_nobody(
        site,
        &[
            OsStr::new("-d"),
            releases.join("3").as_os_str(),
            OsStr::new("--python"),
            python.as_os_str(),
            OsStr::new("--link"),
            current.as_os_str(),
            OsStr::new("--keep"),
            OsStr::new("1"),
            OsStr::new("--json"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(result["pruned"], serde_json::json!([]), "{result}");
    if not_pruned {
        assert_eq!(
            result["not_pruned"][0]["path"],
            releases.join("1").to_string_lossy().as_ref(),
            "{result}"
        );
        assert!(
            stderr.contains("could not remove the old release"),
            "{stderr}"
        );
    } else {
        assert_eq!(result["not_pruned"], serde_json::json!([]), "{result}");
    }
    assert_eq!(
        std::fs::read_link(current).expect("link"),
        releases.join("3")
    );
    stderr
}

#[test]
fn a_release_that_cannot_be_removed_is_a_warning_not_a_failed_deploy() {
    let Some(python) = nobody_python() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let (site, releases, current) = releases_for_nobody(work.path(), python);
    // The deploy user owns everything but what the app made as root in release 1.
    let uploads = releases.join("1/demoapp/uploads");
    std::fs::create_dir(&uploads).expect("uploads");
    std::fs::write(uploads.join("photo.jpg"), "root's").expect("root's file");

    let stderr = keep_one_as_nobody(&site, &releases, &current, python, true);
    assert!(stderr.contains("Permission denied"), "{stderr}");
    // Where the removal stopped is named, for the operator to look at.
    assert!(
        stderr.contains("demoapp/uploads/photo.jpg); what remains is in"),
        "{stderr}"
    );
    // One warning for it, not a second calling its remains a killed run's leftover.
    assert!(!stderr.contains("left by an interrupted run"), "{stderr}");
    // What root made is untouched.
    let trash: Vec<String> = listing(&releases)
        .into_iter()
        .filter(|name| name.starts_with(".1.pysfx-trash-"))
        .collect();
    assert_eq!(trash.len(), 1, "{:?}", listing(&releases));
    assert_eq!(
        std::fs::read_to_string(releases.join(&trash[0]).join("demoapp/uploads/photo.jpg"))
            .expect("root's file"),
        "root's"
    );
}

/// In a releases directory several deploy users share, `--keep` leaves another user's
/// release where it is (moving it aside would break that user's link), without counting it
/// among the N it keeps, and the deploy succeeds.
#[test]
fn keep_leaves_another_users_release_in_place() {
    let Some(python) = nobody_python() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let (site, releases, current) = releases_for_nobody(work.path(), python);
    // The deploy user owns the directory and release 2; release 1 is root's.
    let rooted = run(Command::new("chown")
        .args(["-hR", "0:0"])
        .arg(releases.join("1")));
    assert!(rooted.status.success());
    let before = listing(&releases);

    let stderr = keep_one_as_nobody(&site, &releases, &current, python, false);
    assert!(!stderr.contains("could not remove"), "{stderr}");
    // Release 3 came; release 1 is where it was, and nothing else changed.
    let after: Vec<String> = listing(&releases)
        .into_iter()
        .filter(|name| name != "3" && name != ".3.pysfx-lock")
        .collect();
    assert_eq!(after, before, "{stderr}");
    let (code, result, stderr) = json_run(
        &site,
        &[OsStr::new("--check"), releases.join("1").as_os_str()],
    );
    assert_eq!(code, 0, "{result}\n{stderr}");
    // `--activate` of root's release whose lock the deploy user may not open: a permission
    // problem (exit 4), not a release in use, and LINK stays.
    let lock = releases.join(".1.pysfx-lock");
    let owned = run(Command::new("chown").arg("0:0").arg(&lock));
    let closed = run(Command::new("chmod").arg("0600").arg(&lock));
    assert!(owned.status.success() && closed.status.success());
    let output = run_as_nobody(
        &site,
        &[
            OsStr::new("--activate"),
            releases.join("1").as_os_str(),
            OsStr::new("--link"),
            current.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert_eq!(
        std::fs::read_link(&current).expect("link"),
        releases.join("3")
    );
}

/// Another user's release in a shared `1777` directory, its lock file closed to this user:
/// installing over it and `--activate` of it are conflicts (exit 5), as they are once the lock
/// opens, not a missing permission (exit 4); nothing beside it changes.
#[test]
fn another_users_release_with_a_closed_lock_is_a_conflict() {
    let Some(python) = nobody_python() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let shared = work.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    let site = artifact(work.path(), "demoapp");
    let release = shared.join("5");
    let (code, _, stderr) = install_with(&site, &release, python, &[]);
    assert_eq!(code, 0, "{stderr}");
    // Another user's (uid 65533, no account needed), its lock readable by that user alone.
    let lock = shared.join(".5.pysfx-lock");
    for command in [
        Command::new("chmod").arg("0755").arg(work.path()),
        Command::new("chmod").arg("1777").arg(&shared),
        Command::new("chown")
            .args(["-hR", "65533:65533"])
            .arg(&release),
        Command::new("chown").arg("65533:65533").arg(&lock),
        Command::new("chmod").arg("0600").arg(&lock),
    ] {
        assert!(run(command).status.success(), "{command:?}");
    }
    let before = listing(&shared);
    // What uid 65534 is told: its exit code and what it logged.
    let as_nobody = |args: &[&OsStr]| {
        let output = run_as_nobody(&site, args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    let install = [
        OsStr::new("-d"),
        release.as_os_str(),
        OsStr::new("--python"),
        python.as_os_str(),
    ];
    let (code, stderr) = as_nobody(&install);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("belongs to another user"), "{stderr}");
    // `--force` would replace a conflict: what stops it is the lock it may not open (exit 4).
    let (code, stderr) = as_nobody(&[&install[..], &[OsStr::new("--force")]].concat());
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");

    let current = shared.join("current");
    let activate = [
        OsStr::new("--activate"),
        release.as_os_str(),
        OsStr::new("--link"),
        current.as_os_str(),
    ];
    let (code, stderr) = as_nobody(&activate);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(stderr.contains("belongs to another user"), "{stderr}");
    assert_eq!(listing(&shared), before);
}

/// A release whose venv was moved elsewhere and replaced by a link to it: every file is still
/// there through the link, but whoever owns the copy owns the release. `--check` reports it
/// modified, and `--force` builds it again in place.
#[test]
fn a_venv_replaced_by_a_link_is_modified_and_force_rebuilds_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (site, release, python) = one_release(root);
    let elsewhere = root.join("elsewhere");
    std::fs::rename(release.join("venv"), &elsewhere).expect("move the venv");
    std::os::unix::fs::symlink(&elsewhere, release.join("venv")).expect("link it");
    let check_args = [OsStr::new("--check"), release.as_os_str()];
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 3, "{result}\n{stderr}");
    assert_eq!(result["modified"], serde_json::json!(["venv/"]), "{result}");

    let (code, result, stderr) = install_with(&site, &release, &python, &[OsStr::new("--force")]);
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(true)),
        "{stderr}"
    );
    assert!(std::fs::symlink_metadata(release.join("venv"))
        .expect("venv")
        .is_dir());
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert!(
        elsewhere.join("pyvenv.cfg").is_file(),
        "the copy is not the release's to remove"
    );
}

/// The venv's own files are held to what the install wrote: `--check` reports an edited
/// `pyvenv.cfg` or activate script and a `bin/python` link pointed elsewhere, and `--force`
/// puts them back.
#[test]
fn check_holds_the_venvs_own_files() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (site, release, python) = one_release(root);
    let check_args = [OsStr::new("--check"), release.as_os_str()];
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 0, "{result}\n{stderr}");

    // Anything added in the venv changes what runs as much as an edit: a `pyvenv.cfg` in
    // `bin/` (which Python reads before the venv's own), a `.pth` in a `dist-packages`
    // directory a Debian Python reads too. Added, each; and gone again, intact.
    let planted = [
        release.join("venv/bin/pyvenv.cfg"),
        release.join("venv/local/lib/python3.11/dist-packages/evil.pth"),
    ];
    for path in &planted {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, "import os\n").expect("plant");
    }
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 3, "{result}\n{stderr}");
    assert_eq!(
        result["added"],
        serde_json::json!(["venv/bin/pyvenv.cfg", "venv/local/"]),
        "{result}"
    );
    std::fs::remove_file(&planted[0]).expect("unplant");
    std::fs::remove_dir_all(release.join("venv/local")).expect("unplant");
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 0, "{result}\n{stderr}");

    // bin/python removed: one line, missing (not also "modified (python)").
    let link = release.join("venv/bin/python");
    let target = std::fs::read_link(&link).expect("bin/python");
    std::fs::remove_file(&link).expect("unlink");
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 3, "{result}\n{stderr}");
    assert_eq!(
        result["missing"],
        serde_json::json!(["venv/bin/python"]),
        "{result}"
    );
    assert_eq!(result["modified"], serde_json::json!([]), "{result}");
    std::os::unix::fs::symlink(&target, &link).expect("put back");

    let cfg = release.join("venv/pyvenv.cfg");
    let text = std::fs::read_to_string(&cfg).expect("pyvenv.cfg");
    std::fs::write(
        &cfg,
        text.replace(
            "include-system-site-packages = false",
            "include-system-site-packages = true",
        ),
    )
    .expect("edit pyvenv.cfg");
    let mut activate = std::fs::OpenOptions::new()
        .append(true)
        .open(release.join("venv/bin/activate"))
        .expect("activate");
    std::io::Write::write_all(&mut activate, b"export EVIL=1\n").expect("append");
    let link = release.join("venv/bin/python");
    std::fs::remove_file(&link).expect("unlink");
    std::os::unix::fs::symlink("/bin/sh", &link).expect("relink");
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 3, "{result}\n{stderr}");
    let modified: Vec<String> = result["modified"]
        .as_array()
        .expect("modified")
        .iter()
        .filter_map(|path| path.as_str().map(str::to_string))
        .collect();
    for path in ["venv/pyvenv.cfg", "venv/bin/activate", "venv/bin/python"] {
        assert!(modified.contains(&path.to_string()), "{path}: {result}");
    }
    // bin/python, a link elsewhere that runs no Python of the release's: one entry, saying both.
    assert_eq!(modified.len(), 3, "{result}");
    let python_differs = result["differences"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["path"] == "venv/bin/python"))
        .map(|d| d["differs"].clone());
    assert_eq!(
        python_differs,
        Some(serde_json::json!(["target", "python"])),
        "{result}"
    );

    let (code, result, stderr) = install_with(&site, &release, &python, &[OsStr::new("--force")]);
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(true)),
        "{stderr}"
    );
    let (code, result, stderr) = json_run(&site, &check_args);
    assert_eq!(code, 0, "{result}\n{stderr}");
}

/// A filesystem mounted inside an old release (shared uploads bind-mounted at
/// `releases/1/demoapp/media`) is never emptied: `--keep` leaves that release (listed in
/// `not_pruned`), `--force` refuses to replace it (exit 5), and what is mounted stays. Needs
/// root to mount a tmpfs; skipped with a printed reason otherwise.
#[test]
fn keep_and_force_never_empty_a_filesystem_mounted_in_a_release() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let releases = work.path().join("releases");
    let current = work.path().join("current");
    install_linked(&site, &releases.join("1"), &current, &[]);
    let media = releases.join("1/demoapp/media");
    std::fs::create_dir(&media).expect("mkdir");
    let Some(_unmount) = mount_tmpfs(&media, "1m") else {
        return;
    };
    std::fs::write(media.join("photo.jpg"), "an upload").expect("write");

    install_linked(&site, &releases.join("2"), &current, &[]);
    let keep = [OsStr::new("--keep"), OsStr::new("1")];
    let (code, result, stderr) = install_with(
        &site,
        &releases.join("3"),
        &python(11).path,
        &[&[OsStr::new("--link"), current.as_os_str()][..], &keep[..]].concat(),
    );
    assert_eq!(code, 0, "{result}\n{stderr}");
    // Release 2, which LINK pointed at, is kept for a rollback; release 1 would go.
    assert!(names(&result["pruned"]).is_empty(), "{result}");
    assert!(
        result["not_pruned"].to_string().contains("is mounted at"),
        "{result}"
    );
    assert_eq!(
        std::fs::read_to_string(media.join("photo.jpg")).expect("kept"),
        "an upload"
    );
    assert!(releases.join("1/pysfx-receipt.json").is_file());

    std::fs::write(releases.join("1/demoapp/appcore/__init__.py"), "edited").expect("edit");
    let (code, result, stderr) = install_with(
        &site,
        &releases.join("1"),
        &python(11).path,
        &[OsStr::new("--force")],
    );
    assert_eq!(code, 5, "{result}\n{stderr}");
    assert!(stderr.contains("is mounted at"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(media.join("photo.jpg")).expect("kept"),
        "an upload"
    );
    assert_eq!(
        std::fs::read_to_string(releases.join("1/demoapp/appcore/__init__.py")).expect("left"),
        "edited"
    );

    // DEST itself an (empty) mount point: refused before writing, not a failed rename.
    let mount_point = releases.join("9");
    std::fs::create_dir(&mount_point).expect("mkdir");
    let _unmount_dest = mount_tmpfs(&mount_point, "1m").expect("a tmpfs at DEST");
    let (code, result, stderr) = install_with(&site, &mount_point, &python(11).path, &[]);
    assert_eq!(code, 5, "{result}\n{stderr}");
    assert!(stderr.contains("is a mount point"), "{stderr}");
    assert_eq!(std::fs::read_dir(&mount_point).expect("list").count(), 0);
}

/// LINK reaching its release through another link (`current -> releases/live -> 2`): the
/// release it served is what DEST's lock file records, not the link in between, so a re-run
/// with `--keep` once that link is gone still keeps the release LINK replaced.
#[test]
fn keep_holds_to_the_release_a_chain_of_links_served() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let releases = work.path().join("releases");
    let current = work.path().join("current");
    install_linked(&site, &releases.join("1"), &current, &[]);
    install_linked(&site, &releases.join("2"), &current, &[]);
    std::os::unix::fs::symlink("2", releases.join("live")).expect("live");
    std::fs::remove_file(&current).expect("rm");
    std::os::unix::fs::symlink(releases.join("live"), &current).expect("through live");
    let keep = [OsStr::new("--keep"), OsStr::new("1")];
    let result = install_linked(&site, &releases.join("3"), &current, &keep);
    assert_eq!(names(&result["pruned"]), ["1"], "{result}");
    // The staging link retired; the same deploy again: LINK does not move.
    std::fs::remove_file(releases.join("live")).expect("rm live");
    let result = install_linked(&site, &releases.join("3"), &current, &keep);
    assert!(names(&result["pruned"]).is_empty(), "{result}");
    assert!(releases.join("2/pysfx-receipt.json").is_file());
}

/// LINK leading into a release rather than to it (`current -> releases/1/demoapp`, set by
/// hand): that release is the one LINK serves. `--status` lists the releases beside it with
/// release 1 current, and a deploy with `--keep 1` keeps release 1 as the one it replaced.
#[test]
fn a_link_into_a_release_serves_that_release() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let releases = work.path().join("releases");
    for number in ["1", "2"] {
        let (code, result, stderr) =
            install_with(&site, &releases.join(number), &python(11).path, &[]);
        assert_eq!(code, 0, "{result}\n{stderr}");
    }
    let current = work.path().join("current");
    std::os::unix::fs::symlink(releases.join("1/demoapp"), &current).expect("current");
    let (code, status, stderr) = json_run(&site, &[OsStr::new("--status"), current.as_os_str()]);
    assert_eq!(code, 0, "{status}\n{stderr}");
    let listed: Vec<(&str, bool)> = (status["releases"].as_array().expect("releases").iter())
        .map(|release| {
            (
                release["name"].as_str().unwrap_or_default(),
                release["current"] == true,
            )
        })
        .collect();
    assert_eq!(listed, [("2", false), ("1", true)], "{status}");
    let keep = [OsStr::new("--keep"), OsStr::new("1")];
    let result = install_linked(&site, &releases.join("3"), &current, &keep);
    assert_eq!(names(&result["pruned"]), ["2"], "{result}");
    assert!(releases.join("1/pysfx-receipt.json").is_file(), "{result}");
}

/// LINK in another directory, to its release by `..` (`www/current -> ../releases/3`, as an
/// operator writes it): the record names that release as DEST's directory does, so a re-run
/// with `--keep 1` keeps the release rolled back from.
#[test]
fn keep_holds_to_the_release_a_relative_link_served() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let releases = work.path().join("releases");
    for number in ["1", "2", "3"] {
        let (code, result, stderr) =
            install_with(&site, &releases.join(number), &python(11).path, &[]);
        assert_eq!(code, 0, "{result}\n{stderr}");
    }
    let www = work.path().join("www");
    std::fs::create_dir(&www).expect("mkdir");
    let current = www.join("current");
    std::os::unix::fs::symlink("../releases/3", &current).expect("current");
    for keep in ["3", "1"] {
        let keep = [OsStr::new("--keep"), OsStr::new(keep)];
        install_linked(&site, &releases.join("1"), &current, &keep);
        assert!(releases.join("3/pysfx-receipt.json").is_file(), "{keep:?}");
    }
    assert!(!releases.join("2").exists(), "release 2 goes");
}

/// DEST spelled another way on a re-run (through the directory a link `srv -> data/app`
/// names, or with `..`) is still the release LINK serves: LINK does not move, and the release
/// it replaced when it moved there stays under `--keep`.
#[test]
fn keep_knows_dest_however_it_is_spelled() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let real = work.path().join("data/app");
    std::fs::create_dir_all(&real).expect("mkdir");
    let srv = work.path().join("srv");
    std::os::unix::fs::symlink(&real, &srv).expect("srv");
    let current = srv.join("current");
    for number in ["1", "2", "3"] {
        install_linked(&site, &srv.join("releases").join(number), &current, &[]);
    }
    // Release 1 served again (a rollback), then release 3 deployed: it replaced release 1.
    let (code, result, stderr) = activate(&site, &srv.join("releases/1"), &current);
    assert_eq!(code, 0, "{result}\n{stderr}");
    install_linked(&site, &srv.join("releases/3"), &current, &[]);
    for spelled in [real.join("releases/3"), srv.join("releases/../releases/3")] {
        let keep = [OsStr::new("--keep"), OsStr::new("1")];
        let result = install_linked(&site, &spelled, &current, &keep);
        assert_eq!(result["link_moved"], false, "{result}");
        assert!(
            real.join("releases/1/pysfx-receipt.json").is_file(),
            "{}: {result}",
            spelled.display()
        );
    }
    assert!(!real.join("releases/2").exists(), "release 2 goes");
}

/// A rollback on a full filesystem cannot record, in DEST's lock file, the release LINK
/// served: LINK then stays where it is (exit 4, saying so), since a later `--keep` on DEST
/// keeps that release by the record. Once there is room, the same run moves LINK, and a
/// re-run with `--keep 1` keeps the release rolled back from. Needs root to mount a tmpfs;
/// skipped with a printed reason otherwise.
#[test]
fn a_rollback_that_cannot_record_what_link_served_leaves_link() {
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let disk = work.path().join("disk");
    std::fs::create_dir(&disk).expect("mkdir");
    let Some(_unmount) = mount_tmpfs(&disk, "64m") else {
        return;
    };
    let (releases, current) = (disk.join("releases"), disk.join("current"));
    install_linked(&site, &releases.join("1"), &current, &[]);
    install_linked(&site, &releases.join("2"), &current, &[]);
    // Every page of the filesystem taken.
    let filler = disk.join("filler");
    let _ = std::fs::write(&filler, vec![b'x'; 64 << 20]);
    let rollback = [
        OsStr::new("--link"),
        current.as_os_str(),
        OsStr::new("--keep"),
        OsStr::new("1"),
    ];
    let (code, result, stderr) =
        install_with(&site, &releases.join("1"), &python(11).path, &rollback);
    assert_eq!(code, 4, "{result}\n{stderr}");
    assert!(stderr.contains("LINK was not moved"), "{stderr}");
    assert_eq!(result["link_moved"], false, "{result}");
    assert_eq!(
        std::fs::read_link(&current).expect("LINK"),
        releases.join("2")
    );
    assert!(releases.join("2/pysfx-receipt.json").is_file());

    std::fs::remove_file(&filler).expect("room again");
    for run in ["the rollback", "its re-run"] {
        let keep = [OsStr::new("--keep"), OsStr::new("1")];
        let result = install_linked(&site, &releases.join("1"), &current, &keep);
        assert!(names(&result["pruned"]).is_empty(), "{run}: {result}");
        assert_eq!(
            std::fs::read_link(&current).expect("LINK"),
            releases.join("1")
        );
        assert!(releases.join("2/pysfx-receipt.json").is_file(), "{run}");
    }
}

/// A release hardened against other users (`chmod o-r`, `o-rx`) is no modified release to
/// one of them: `--check` run as another user says which files it may not read, gives no
/// verdict and exits 4 (as for any file it may not read), not 3 with a `--force` to run;
/// what it can see differ still makes it exit 3.
#[test]
fn check_as_another_user_tells_unreadable_from_modified() {
    // A Python the other user may run, so that only what the test closes is closed.
    let Some(python) = nobody_python() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let release = work.path().join("releases/1");
    let (code, _, stderr) = install_with(&site, &release, python, &[]);
    assert_eq!(code, 0, "{stderr}");
    let opened = run(Command::new("chmod").arg("0755").arg(work.path()));
    assert!(opened.status.success());
    let lib = std::fs::read_dir(release.join("venv/lib"))
        .expect("venv/lib")
        .flatten()
        .find(|entry| entry.file_name().to_string_lossy().starts_with("python3"))
        .expect("lib/python3.X")
        .file_name();
    let dist_info = format!(
        "venv/lib/{}/site-packages/tinylib-1.0.dist-info",
        lib.to_string_lossy()
    );
    let dist_info = dist_info.as_str();
    let check = || {
        let output = run_as_nobody(
            &site,
            &[
                OsStr::new("--check"),
                release.as_os_str(),
                OsStr::new("--json"),
            ],
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let result: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("one JSON object");
        (output.status.code(), result, stderr)
    };
    let (code, result, stderr) = check();
    assert_eq!(code, Some(0), "{result}\n{stderr}");

    let chmod = |mode: &str, path: &str| {
        let changed = run(Command::new("chmod").arg(mode).arg(release.join(path)));
        assert!(changed.status.success());
    };
    chmod("o-r", &format!("{dist_info}/METADATA"));
    let (code, result, stderr) = check();
    assert_eq!(code, Some(4), "{result}\n{stderr}");
    assert_eq!(
        result["unreadable"],
        serde_json::json!([format!("{dist_info}/METADATA")]),
        "{result}"
    );
    assert_eq!(result["modified"], serde_json::json!([]), "{result}");
    assert_eq!(result["intact"], serde_json::json!(false), "{result}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(!stderr.contains("--force"), "{stderr}");
    // Root reads it: intact.
    let (code, result, stderr) = json_run(&site, &[OsStr::new("--check"), release.as_os_str()]);
    assert_eq!(code, 0, "{result}\n{stderr}");

    // The whole distribution's metadata closed: its RECORD too.
    chmod("o-rx", dist_info);
    let (code, result, stderr) = check();
    assert_eq!(code, Some(4), "{result}\n{stderr}");
    let unreadable = result["unreadable"].as_array().expect("unreadable");
    assert!(
        unreadable.contains(&serde_json::json!(format!("{dist_info}/RECORD"))),
        "{result}"
    );

    // A directory of the release its owner may not list, where a file was added: modified
    // (its mode), to everyone, not "intact" nor unreadable only.
    chmod("o+rx", dist_info);
    let package = release.join(dist_info).with_file_name("tinylib");
    std::fs::write(package.join("planted.py"), "import os\n").expect("plant");
    let closed = run(Command::new("chmod").arg("0311").arg(&package));
    assert!(closed.status.success());
    let (code, result, stderr) = check();
    assert_eq!(code, Some(3), "{result}\n{stderr}");
    let modified = result["modified"].as_array().expect("modified");
    let tinylib = format!("{}/", package.strip_prefix(&release).expect("in").display());
    assert!(modified.contains(&serde_json::json!(tinylib)), "{result}");
    let (code, result, stderr) = json_run(&site, &[OsStr::new("--check"), release.as_os_str()]);
    assert_eq!(code, 3, "{result}\n{stderr}");
    assert!(
        (result["added"].as_array().expect("added").iter()).any(|added| added
            .as_str()
            .is_some_and(|path| path.ends_with("planted.py"))),
        "{result}"
    );
    let opened = run(Command::new("chmod").arg("0755").arg(&package));
    std::fs::remove_file(package.join("planted.py")).expect("unplant");
    assert!(opened.status.success());

    // And a difference it can see is one.
    let config = release.join("venv/pyvenv.cfg");
    let mut text = std::fs::read_to_string(&config).expect("pyvenv.cfg");
    text.push_str("include-system-site-packages = true\n");
    std::fs::write(&config, text).expect("edit");
    let (code, result, stderr) = check();
    assert_eq!(code, Some(3), "{result}\n{stderr}");
    assert_eq!(
        result["modified"],
        serde_json::json!(["venv/pyvenv.cfg"]),
        "{result}"
    );

    // The whole release closed to others (`chmod -R o-rwx`): its receipt unreadable is a
    // missing permission too (exit 4), not "no pysfx release" (exit 5).
    let closed = run(Command::new("chmod").arg("-R").arg("o-rwx").arg(&release));
    assert!(closed.status.success());
    let (code, result, stderr) = check();
    assert_eq!(code, Some(4), "{result}\n{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
}

/// Under umask 000 an install makes no file or directory writable by others, DEST's and
/// LINK's missing parents included, so `--check` finds the fresh release intact.
#[test]
fn a_release_made_under_umask_000_is_intact() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let release = work.path().join("srv/releases/1");
    let link = work.path().join("links/app/current");
    let installed = run(Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" -q -d \"$1\" --python \"$2\" --link \"$3\"")
        .arg(&site)
        .arg(&release)
        .arg(&python(11).path)
        .arg(&link));
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    for directory in [
        work.path().join("srv"),
        work.path().join("srv/releases"),
        work.path().join("links"),
        work.path().join("links/app"),
        release.clone(),
        release.join("venv"),
        release.join("demoapp/appcore"),
    ] {
        let mode = std::fs::metadata(&directory)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o002, 0, "{} is {mode:o}", directory.display());
    }
    let (code, result, stderr) = json_run(&site, &[OsStr::new("--check"), release.as_os_str()]);
    assert_eq!(code, 0, "{result}\n{stderr}");
}

/// DEST is resolved as the kernel resolves it: `..` after a link goes to the link target's
/// parent (where `ls` would look), not back along the text; and a DEST whose absolute path is
/// not UTF-8 (a relative DEST in such a working directory), which no receipt could record as
/// it is, is a usage error (exit 2) before anything is written.
#[test]
fn dest_is_the_directory_the_kernel_names() {
    use std::os::unix::ffi::OsStrExt;
    let work = tempfile::tempdir().expect("tempdir");
    let site = artifact(work.path(), "demoapp");
    let real = work.path().join("real/app/releases");
    std::fs::create_dir_all(&real).expect("mkdir");
    std::os::unix::fs::symlink(&real, work.path().join("rl")).expect("link");
    let dest = std::path::PathBuf::from("rl/../releases/5");
    let installed = run(Command::new(&site)
        .args(["-q", "-d"])
        .arg(&dest)
        .arg("--python")
        .arg(&python(11).path)
        .current_dir(work.path()));
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    assert!(work
        .path()
        .join("real/app/releases/5/pysfx-receipt.json")
        .is_file());
    assert!(!work.path().join("releases").exists());

    let odd = work.path().join(std::ffi::OsStr::from_bytes(b"d\xff"));
    std::fs::create_dir(&odd).expect("mkdir");
    let refused = run(Command::new(&site)
        .args(["-q", "-d", "r/1", "--python"])
        .arg(&python(11).path)
        .current_dir(&odd));
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!odd.join("r").exists());
}

/// In a releases directory others may write (mode 1777, or a deploy group's 3775 with the
/// other user in the group), another user's copies of a release with forged, newer install
/// times are neither counted towards `--keep N` nor removed: root's deploy keeps its own N
/// (here every one of its three) and links nothing from the copies.
#[test]
fn forged_releases_of_another_user_do_not_count_towards_keep() {
    if nobody_python().is_none() {
        return;
    }
    forged_releases_in("1777");
    forged_releases_in("3775");
}

/// [`forged_releases_of_another_user_do_not_count_towards_keep`] with the releases directory
/// given `mode` and nobody's group (65534).
fn forged_releases_in(mode: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let opened = run(Command::new("chmod").arg("0755").arg(root));
    assert!(opened.status.success());
    let site = artifact(root, "demoapp");
    let releases = root.join("releases");
    let current = root.join("current");
    let python = python(11).path;
    for name in ["1", "2"] {
        let (code, _, stderr) = install_with(
            &site,
            &releases.join(name),
            &python,
            &[OsStr::new("--link"), current.as_os_str()],
        );
        assert_eq!(code, 0, "{stderr}");
    }
    let shared = run(Command::new("chmod").arg(mode).arg(&releases));
    assert!(shared.status.success());
    let grouped = run(Command::new("chgrp").arg("65534").arg(&releases));
    assert!(grouped.status.success());
    for forged in ["8", "9"] {
        let copied = run(Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "cp",
                "-r",
            ])
            .arg(releases.join("1"))
            .arg(releases.join(forged)));
        assert!(copied.status.success(), "{copied:?}");
        let receipt = releases.join(forged).join("pysfx-receipt.json");
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&receipt).expect("receipt")).expect("json");
        let at = value["installed_at"].as_u64().expect("installed_at");
        value["installed_at"] = serde_json::json!(at + 1_000_000);
        value["destination"] = serde_json::json!(releases.join(forged));
        // Written into the copy's own file: still the other user's.
        std::fs::write(&receipt, serde_json::to_vec(&value).expect("json")).expect("forge");
    }
    let (code, result, stderr) = install_with(
        &site,
        &releases.join("3"),
        &python,
        &[
            OsStr::new("--link"),
            current.as_os_str(),
            OsStr::new("--keep"),
            OsStr::new("3"),
        ],
    );
    assert_eq!(code, 0, "{mode}: {stderr}");
    assert_eq!(result["pruned"], serde_json::json!([]), "{mode}: {result}");
    for name in ["1", "2", "3", "8", "9"] {
        assert!(
            releases.join(name).join("pysfx-receipt.json").is_file(),
            "{name}"
        );
    }
    // Linked from root's own release 2, never from the copies: no file of theirs gained a link.
    assert!(
        result["linked_files"].as_u64().expect("linked_files") > 0,
        "{result}"
    );
    let mut pending = vec![releases.join("8"), releases.join("9")];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("list").flatten() {
            let metadata = std::fs::symlink_metadata(entry.path()).expect("lstat");
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.is_file() {
                use std::os::unix::fs::MetadataExt;
                assert_eq!(metadata.nlink(), 1, "{}", entry.path().display());
            }
        }
    }
}

/// In a releases directory anyone may write (1777), a release another user installed (and may
/// have changed since) is not root's: root's re-run of the same artifact on it is a conflict
/// (exit 5, LINK not made), and `--activate` refuses to point LINK at it.
#[test]
fn another_users_release_in_a_shared_directory_is_not_taken_as_installed() {
    let Some(nobody) = nobody_python() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let opened = run(Command::new("chmod").arg("0755").arg(root));
    assert!(opened.status.success());
    let site = artifact(root, "demoapp");
    let opened = run(Command::new("chmod").arg("0755").arg(&site));
    assert!(opened.status.success());
    let releases = root.join("releases");
    std::fs::create_dir(&releases).expect("mkdir");
    let shared = run(Command::new("chmod").arg("1777").arg(&releases));
    assert!(shared.status.success());
    let release = releases.join("1");
    let output = run_as_nobody(
        &site,
        &[
            OsStr::new("-d"),
            release.as_os_str(),
            OsStr::new("--python"),
            nobody.as_os_str(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let current = root.join("current");
    let (code, _, stderr) = install_with(
        &site,
        &release,
        nobody,
        &[OsStr::new("--link"), current.as_os_str()],
    );
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("belongs to another user"), "{stderr}");
    assert!(
        std::fs::symlink_metadata(&current).is_err(),
        "LINK was made"
    );
    let output = run(Command::new(&site)
        .arg("--activate")
        .arg(&release)
        .arg("--link")
        .arg(&current));
    assert_ne!(output.status.code(), Some(0), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("belongs to another user"),
        "{output:?}"
    );
    assert!(
        std::fs::symlink_metadata(&current).is_err(),
        "LINK was made"
    );
}

/// A receipt edited to show another app version (what `--status` lists to pick a rollback by)
/// contradicts its own manifest: `--check` reports it modified (exit 3), and `--force` writes
/// it again. Its own manifest edited likewise, against the payload it names.
#[test]
fn an_edited_receipt_is_found_and_restored() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let site = artifact(root, "demoapp");
    let release = root.join("releases/1");
    let python = python(11).path;
    let (code, _, stderr) = install_with(&site, &release, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    let receipt = release.join("pysfx-receipt.json");
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&receipt).expect("receipt")).expect("json");
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 2] = [
        ("app version", |value| {
            value["app_version"] = serde_json::json!("9.9")
        }),
        ("manifest", |value| {
            value["manifest"]["app"]["version"] = serde_json::json!("9.9");
            value["app_version"] = serde_json::json!("9.9");
        }),
    ];
    for (case, edit) in edits {
        let mut value = original.clone();
        edit(&mut value);
        std::fs::write(&receipt, serde_json::to_vec(&value).expect("json")).expect("edit");
        let (code, result, stderr) = json_run(&site, &[OsStr::new("--check"), release.as_os_str()]);
        assert_eq!(code, 3, "{case}: {result}\n{stderr}");
        assert!(
            result["modified"]
                .to_string()
                .contains("pysfx-receipt.json"),
            "{case}: {result}"
        );
        let (code, result, stderr) =
            install_with(&site, &release, &python, &[OsStr::new("--force")]);
        assert_eq!(
            (code, &result["changed"]),
            (0, &serde_json::json!(true)),
            "{case}: {stderr}"
        );
        let restored: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&receipt).expect("receipt")).expect("json");
        assert_eq!(restored["app_version"], original["app_version"], "{case}");
        let (code, _, stderr) = json_run(&site, &[OsStr::new("--check"), release.as_os_str()]);
        assert_eq!(code, 0, "{case}: {stderr}");
    }
}

/// An app of no files still gets `DEST/<app>/`: the release is complete, so a re-run does
/// nothing (exit 0), and `--status` and `--activate` take it.
#[test]
fn an_app_of_no_files_makes_a_complete_release() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = root.join("emptyapp");
    std::fs::create_dir(&app).expect("mkdir");
    let wheels = root.join("wheels");
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let site = pack_app(&app, &wheels, &root.join("site.sfx"));
    let (release, current) = (root.join("releases/1"), root.join("current"));
    let python = python(11).path;
    let link = [OsStr::new("--link"), current.as_os_str()];
    let (code, result, stderr) = install_with(&site, &release, &python, &link);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result["changed"], true, "{result}");
    assert!(release.join("emptyapp").is_dir());
    let (code, result, stderr) = install_with(&site, &release, &python, &link);
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(false)),
        "{stderr}"
    );
    let (code, _, stderr) = json_run(&site, &[OsStr::new("--status"), current.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = activate(&site, &release, &current);
    assert_eq!(code, 0, "{stderr}");
}

/// A receipt planted beside the releases as a sparse gigabyte (no disk used) is no receipt,
/// and costs `--status`, a deploy with `--keep` and a linked install nothing: each runs with
/// its address space limited to 512 MiB, where reading the file whole would fail.
#[test]
fn a_planted_gigabyte_receipt_is_not_read_whole() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let site = artifact(root, "demoapp");
    let releases = root.join("releases");
    let current = root.join("current");
    let python = python(11).path;
    let link = [OsStr::new("--link"), current.as_os_str()];
    let (code, _, stderr) = install_with(&site, &releases.join("1"), &python, &link);
    assert_eq!(code, 0, "{stderr}");
    let planted = releases.join("big");
    std::fs::create_dir(&planted).expect("mkdir");
    let receipt = std::fs::File::create(planted.join("pysfx-receipt.json")).expect("create");
    receipt.set_len(1 << 30).expect("truncate");
    let limited = |args: &[&OsStr]| {
        let output = run(Command::new("prlimit")
            .arg(format!("--as={}", 512u64 << 20))
            .arg(&site)
            .args(args)
            .arg("--json"));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let value: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("not one JSON object ({error}): {stderr}"));
        (output.status.code(), value, stderr)
    };
    let (code, status, stderr) = limited(&[OsStr::new("--status"), current.as_os_str()]);
    assert_eq!(code, Some(0), "{status}\n{stderr}");
    let release_two = releases.join("2");
    let (code, result, stderr) = limited(&[
        OsStr::new("-d"),
        release_two.as_os_str(),
        OsStr::new("--python"),
        python.as_os_str(),
        link[0],
        link[1],
        OsStr::new("--keep"),
        OsStr::new("1"),
    ]);
    assert_eq!(code, Some(0), "{result}\n{stderr}");
    assert!(result["linked_files"].as_u64() > Some(0), "{result}");
    assert!(
        planted.join("pysfx-receipt.json").is_file(),
        "not a release: left"
    );
}

/// SPEC "Releases over time", `--check`: exit 0 intact, 3 modified — of one release. Another
/// run's `--force` swaps a new tree in at DEST (atomically) while `--check` may be reading:
/// the receipt of one release held against the files of the other reported an intact
/// release modified. Here DEST is swapped with a release of another payload of the app, over
/// and over, while `--check` reads it: it may find one release or the other intact, or say
/// it was replaced while it read (exit 5), never modified, nor warn of what a pass it did not
/// keep found (the payload's rows held to the other release's). Once the swapping stops, it
/// is intact.
#[test]
fn check_of_a_release_swapped_while_it_reads_never_mixes_two() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (site, release, python) = one_release(root);
    // The same app with its wheel at another version: another payload, files that differ.
    let wheels = root.join("wheels-2");
    tiny_wheel(&wheels, "tinylib", "2.0", &[]);
    let source = make_app(&root.join("src-2"), "demoapp");
    let site2 = pack_app(&source, &wheels, &root.join("demoapp-2.sfx"));
    // Both trees made for DEST's name, as `--force` makes its new one: release 1 moved
    // aside, and the other payload's release installed at DEST.
    let other = root.join("releases/aside");
    std::fs::rename(&release, &other).expect("move release 1 aside");
    let (code, _, stderr) = install_with(&site2, &release, &python, &[]);
    assert_eq!(code, 0, "{stderr}");

    // renameat2(RENAME_EXCHANGE), as `--force` swaps, until the file `stop` appears.
    let stop = root.join("stop");
    let started = root.join("started");
    let swapper = "import ctypes, os, sys\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        a, b, stop, started = (os.fsencode(p) for p in sys.argv[1:5])\n\
        swaps = 0\n\
        while not os.path.exists(stop):\n\
        \x20   if libc.syscall(316, -100, a, -100, b, 2) != 0:\n\
        \x20       sys.exit('renameat2: errno %d' % ctypes.get_errno())\n\
        \x20   swaps += 1\n\
        \x20   if swaps == 1:\n\
        \x20       open(started, 'w').close()\n\
        if swaps % 2:\n\
        \x20   libc.syscall(316, -100, a, -100, b, 2)\n";
    /// Stops the swapper however the test ends.
    struct Swapping(std::process::Child);
    impl Drop for Swapping {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut swapping = Swapping(
        Command::new(&python)
            .args(["-c", swapper])
            .args([&release, &other, &stop, &started])
            .spawn()
            .expect("start the swapper"),
    );
    let waited = std::time::Instant::now();
    while !started.exists() && waited.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(started.exists(), "the swapper did not start");
    let check_args = [OsStr::new("--check"), release.as_os_str()];
    let mut codes = Vec::new();
    // Six checks at least, and more (up to 60) until one caught a swap: on a loaded machine
    // the swapper may not run during a few of them.
    for attempt in 0..60 {
        if attempt >= 6 && codes.contains(&5) {
            break;
        }
        let (code, result, stderr) = json_run(&site, &check_args);
        assert!(
            code == 0 || code == 5,
            "--check of a release swapped while it read: exit {code}\n{result}\n{stderr}"
        );
        if code == 5 {
            assert!(
                stderr.contains("was replaced while --check read it"),
                "{stderr}"
            );
        }
        // What a pass that did not stand found is not told.
        assert!(!stderr.contains("contradicts"), "{stderr}");
        codes.push(code);
    }
    std::fs::write(&stop, "").expect("stop the swapper");
    let ended = swapping.0.wait().expect("the swapper ends");
    assert!(ended.success(), "the swapper failed");
    assert!(codes.contains(&5), "never caught a swap: {codes:?}");
    // Back where each began (an even number of swaps): the other payload's release at DEST.
    let (code, result, stderr) = json_run(&site2, &check_args);
    assert_eq!(code, 0, "{result}\n{stderr}");
}

/// A FIFO planted as a release's receipt (by anyone who may write the releases' directory)
/// is no release: `--activate` and `--check` refuse it at once (exit 5) and `--status` says
/// what LINK points at, rather than waiting for a writer that never comes (`--activate`
/// could then be stopped only by SIGKILL).
#[test]
fn a_fifo_planted_as_a_receipt_hangs_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let (site, release, _) = one_release(work.path());
    let planted = work.path().join("releases/x");
    std::fs::create_dir(&planted).expect("mkdir");
    let made = run(Command::new("mkfifo").arg(planted.join("pysfx-receipt.json")));
    assert!(made.status.success(), "{made:?}");
    let current = work.path().join("current");
    std::os::unix::fs::symlink(&release, &current).expect("symlink");
    let pointing = work.path().join("lx");
    std::os::unix::fs::symlink(&planted, &pointing).expect("symlink");
    for (args, code) in [
        (
            vec![
                OsStr::new("--activate"),
                planted.as_os_str(),
                OsStr::new("--link"),
                current.as_os_str(),
            ],
            5,
        ),
        (vec![OsStr::new("--check"), planted.as_os_str()], 5),
        (vec![OsStr::new("--status"), pointing.as_os_str()], 1),
    ] {
        let output = run(Command::new("timeout")
            .args(["-k", "5", "60"])
            .arg(&site)
            .args(&args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains("releases/x"), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read_link(&current).expect("link"), release);
}

/// A deploy's switch and an `--activate` of one LINK take turns: each reads what LINK points
/// at and repoints it under a lock on LINK's directory, so `--keep` keeps the release LINK
/// really replaced. Here the lock is held by another process: `--activate` waits for it
/// before LINK moves.
#[test]
fn activate_waits_for_another_switch_of_its_link() {
    use std::io::BufRead;
    let work = tempfile::tempdir().expect("tempdir");
    let (site, first, python) = one_release(work.path());
    let second = work.path().join("releases/2");
    let (code, _, stderr) = install_with(&site, &second, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    let current = work.path().join("current");
    std::os::unix::fs::symlink(&first, &current).expect("symlink");
    const HOLD: &str = "import fcntl, os, sys, time\n\
        fd = os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY)\n\
        fcntl.flock(fd, fcntl.LOCK_EX)\n\
        print('locked', flush=True)\n\
        time.sleep(2)\n\
        print(os.readlink(sys.argv[1]), flush=True)\n";
    let mut holder = Command::new(pysfx_e2e::host_python())
        .args(["-c", HOLD])
        .arg(&current)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = std::io::BufReader::new(holder.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("locked"));
    let activate = Command::new(&site)
        .arg("--activate")
        .arg(&second)
        .arg("--link")
        .arg(&current)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("activate");
    let seen = lines
        .next()
        .and_then(Result::ok)
        .expect("the holder's last line");
    assert_eq!(
        Path::new(&seen),
        first,
        "LINK moved while its directory was locked"
    );
    assert!(holder.wait().expect("wait").success());
    let output = activate.wait_with_output().expect("wait");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read_link(&current).expect("link"), second);
}

/// `--check` of a release whose `venv/bin/python` is no longer the interpreter it was
/// installed with asks that program; a signal that ends the check stops it too, as it stops an
/// install's query (it was left running, adopted by init, until its own end).
#[test]
fn a_signal_during_checks_query_stops_the_interpreter() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let site = artifact(root, "demoapp");
    let release = root.join("releases/1");
    let (code, _, stderr) = install_with(&site, &release, &python(11).path, &[]);
    assert_eq!(code, 0, "{stderr}");
    let pid_file = root.join("query.pid");
    let interpreter = release.join("venv/bin/python");
    std::fs::remove_file(&interpreter).expect("unlink the interpreter");
    std::fs::write(
        &interpreter,
        format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 600\n",
            pid_file.display()
        ),
    )
    .expect("a slow interpreter");
    std::fs::set_permissions(
        &interpreter,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let mut check = Command::new(&site)
        .arg("--check")
        .arg(&release)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("--check");
    let started = std::time::Instant::now();
    let pid = loop {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<u32>() {
            break pid;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "the interpreter was never asked"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let alive = |pid: u32| {
        Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .expect("kill -0")
            .success()
    };
    assert!(alive(pid));
    let sent = Command::new("kill")
        .args(["-TERM", &check.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = check.wait().expect("wait");
    assert_eq!(status.code(), Some(143));
    let ended = std::time::Instant::now();
    while alive(pid) && ended.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let still = alive(pid);
    if still {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    assert!(!still, "the interpreter outlived the check");
}
