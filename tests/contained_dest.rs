//! Contained around DEST (see `contained.rs`): files planted beside it, its lock, `--force`
//! replacing a release, `--link`, and an interpreter that hangs or floods.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pysfx_e2e::{
    evil_wheels, host_python, install_with, listing, nobody_python, raw_artifact, run,
    run_as_nobody, snapshot,
};

fn good_wheel() -> PathBuf {
    evil_wheels().join("good-1.0-py3-none-any.whl")
}

/// `DIR/a.sfx`: the `good` wheel and an app of one file.
fn good_artifact(directory: &Path) -> PathBuf {
    raw_artifact(
        &directory.join("a.sfx"),
        &[good_wheel()],
        &[("demoapp/__init__.py", b"")],
        |_| {},
    )
}

#[test]
fn a_planted_lock_symlink_fifo_directory_or_hard_link_is_refused_not_followed() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let releases = work.path().join("releases");
    std::fs::create_dir_all(&releases).expect("mkdir");
    let target = work.path().join("nologin");
    let lock = releases.join(".1.pysfx-lock");
    std::os::unix::fs::symlink(&target, &lock).expect("plant the link");
    // As another user would plant it (the tests run as root; the owner is cosmetic here,
    // since the link is refused whoever owns it).
    let _ = run(Command::new("chown").args(["-h", "65534"]).arg(&lock));
    let destination = releases.join("1");
    let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(!target.exists(), "the lock link was followed");
    assert!(!destination.exists());

    std::fs::remove_file(&lock).expect("remove the link");
    let made = run(Command::new("mkfifo").arg(&lock));
    assert!(made.status.success(), "mkfifo");
    let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert!(!destination.exists());

    std::fs::remove_file(&lock).expect("remove the FIFO");
    std::fs::create_dir(&lock).expect("a directory");
    let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert!(!destination.exists());

    // A hard link of another file: what the run records in its lock would land there.
    std::fs::remove_dir(&lock).expect("remove the directory");
    let victim = work.path().join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    std::fs::hard_link(&victim, &lock).expect("plant the hard link");
    let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("other hard links"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious"
    );
    assert!(!destination.exists());
}

#[test]
fn a_non_root_rerun_can_lock_what_root_made() {
    let Some(system_python) = nobody_python() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let destination = work.path().join("releases/1");
    let (code, _, stderr) = install_with(&artifact, &destination, system_python, &[]);
    assert_eq!(code, 0, "{stderr}");
    let opened = run(Command::new("chmod").args(["-R", "a+rX"]).arg(work.path()));
    assert!(opened.status.success());
    let output = run_as_nobody(
        &artifact,
        &[
            OsStr::new("-d"),
            destination.as_os_str(),
            OsStr::new("--python"),
            system_python.as_os_str(),
            OsStr::new("--json"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(result["changed"], false, "{result}");
}

/// A user who may not write where DEST's missing parents go is told which directory could
/// not be made — the highest missing one, not DEST's parent — with exit 4, and nothing made.
#[test]
fn a_parent_that_cannot_be_made_is_named() {
    let Some(system_python) = nobody_python() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let closed = work.path().join("closed");
    std::fs::create_dir(&closed).expect("mkdir");
    let opened = run(Command::new("chmod").args(["-R", "a+rX"]).arg(work.path()));
    assert!(opened.status.success());
    let destination = closed.join("a/b/releases/1");
    let output = run_as_nobody(
        &artifact,
        &[
            OsStr::new("-d"),
            destination.as_os_str(),
            OsStr::new("--python"),
            system_python.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    let named = format!("cannot create {}:", closed.join("a").display());
    assert!(stderr.contains(&named), "{stderr}");
    assert!(listing(&closed).is_empty());
}

/// DEST's parent a link that leads nowhere (`releases -> /mnt/app/releases` before that
/// volume is mounted) or in a loop, or a file: each is named as what DEST cannot be made below,
/// exit 5, and nothing is made.
#[test]
fn a_parent_that_is_no_directory_is_named() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let python = host_python();
    std::os::unix::fs::symlink("nowhere", work.path().join("dangling")).expect("link");
    std::os::unix::fs::symlink("loop-b", work.path().join("loop-a")).expect("link");
    std::os::unix::fs::symlink("loop-a", work.path().join("loop-b")).expect("link");
    std::fs::write(work.path().join("file"), "x").expect("file");
    for parent in ["dangling", "loop-a", "file"] {
        let parent = work.path().join(parent);
        let before = listing(work.path());
        let destination = parent.join("releases/1");
        let (code, json, stderr) = install_with(&artifact, &destination, &python, &[]);
        assert_eq!(code, 5, "{json}\n{stderr}");
        let named = format!("{} is ", parent.display());
        assert!(stderr.contains(&named), "{stderr}");
        assert!(stderr.contains("cannot be made below it"), "{stderr}");
        assert_eq!(listing(work.path()), before);
    }
}

/// A leftover named with this run's own process id (each deploy in a fresh PID namespace gets
/// the killed one's id) that the run may not remove — a copy of a release installed
/// elsewhere, here — is left, and the run builds its tree under another free name beside it
/// rather than failing on "File exists".
#[test]
fn a_leftover_under_the_runs_own_name_does_not_block_it() {
    if !is_root()
        || run(Command::new("unshare").args(["-pf", "--mount-proc", "true"]))
            .status
            .code()
            != Some(0)
    {
        println!("skipped: needs root and unshare(1) for a PID namespace");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let python = host_python();
    let elsewhere = work.path().join("elsewhere/1");
    let (code, _, stderr) = install_with(&artifact, &elsewhere, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    let releases = work.path().join("releases");
    std::fs::create_dir_all(&releases).expect("mkdir");
    // Copies of the release installed elsewhere under each of `names` beside the releases.
    let plant = |names: &mut dyn Iterator<Item = String>| {
        for name in names {
            let copied = run(Command::new("cp")
                .arg("-a")
                .arg(&elsewhere)
                .arg(releases.join(name)));
            assert!(copied.status.success(), "{copied:?}");
        }
    };
    // `artifact -d releases/RELEASE --python PY EXTRA…` as process 1 of a new PID namespace:
    // its exit code and stderr.
    let install_as_pid_1 = |artifact: &Path, release: &str, extra: &[&str]| {
        let output = run(Command::new("unshare")
            .args(["-pf", "--mount-proc"])
            .arg(artifact)
            .arg("-d")
            .arg(releases.join(release))
            .arg("--python")
            .arg(&python)
            .args(extra));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    let leftover = releases.join(".1.pysfx-tmp-1");
    plant(&mut std::iter::once(".1.pysfx-tmp-1".to_string()));
    let (code, stderr) = install_as_pid_1(&artifact, "1", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(releases.join("1/pysfx-receipt.json").is_file());
    assert!(leftover.join("pysfx-receipt.json").is_file(), "left alone");
    // All ten names this run may build under taken so: refused, naming them (exit 5).
    let all_ten = |kind: &str, release: &str| {
        let first = format!(".{release}.pysfx-{kind}-1");
        std::iter::once(first)
            .chain((1..=9).map(move |n| format!(".{release}.pysfx-{kind}-{n}-1")))
            .collect::<Vec<String>>()
    };
    plant(&mut all_ten("tmp", "2").into_iter());
    let (code, stderr) = install_as_pid_1(&artifact, "2", &[]);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(
        stderr.contains(".2.pysfx-tmp-1 and the nine names after it"),
        "{stderr}"
    );
    assert!(!releases.join("2").exists());
    // The names a replaced DEST would be moved to all taken: refused before the tree is built,
    // and nothing of it left (every container's entrypoint is process 1).
    let (_, second) = two_releases(work.path());
    plant(&mut all_ten("old", "1").into_iter());
    let before = listing(&releases);
    let (code, stderr) = install_as_pid_1(&second, "1", &["--force"]);
    assert_eq!(code, Some(5), "{stderr}");
    assert!(
        stderr.contains(".1.pysfx-old-1 and the nine names after it"),
        "{stderr}"
    );
    assert_eq!(listing(&releases), before, "{stderr}");
    // Those names matter only to a run that replaces DEST: a new release installs.
    plant(&mut all_ten("old", "3").into_iter());
    let (code, stderr) = install_as_pid_1(&artifact, "3", &[]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// Two artifacts of one app with different payloads.
fn two_releases(work: &Path) -> (PathBuf, PathBuf) {
    let first = raw_artifact(
        &work.join("first.sfx"),
        &[good_wheel()],
        &[("demoapp/version.py", b"VERSION = 1\n")],
        |_| {},
    );
    let second = raw_artifact(
        &work.join("second.sfx"),
        &[good_wheel()],
        &[("demoapp/version.py", b"VERSION = 2\n")],
        |_| {},
    );
    (first, second)
}

/// [`two_releases`], and the first installed at `releases/1` with the host's Python: the two
/// artifacts, that release and the Python.
fn first_installed(work: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let (first, second) = two_releases(work);
    let destination = work.join("releases/1");
    let python = host_python();
    let (code, _, stderr) = install_with(&first, &destination, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    (first, second, destination, python)
}

#[test]
fn force_replaces_a_release_without_dest_ever_missing() {
    let work = tempfile::tempdir().expect("tempdir");
    let (first, second, destination, python) = first_installed(work.path());
    let done = AtomicBool::new(false);
    let missing = AtomicUsize::new(0);
    let looks = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if std::fs::symlink_metadata(&destination).is_err() {
                    missing.fetch_add(1, Ordering::Relaxed);
                }
                looks.fetch_add(1, Ordering::Relaxed);
            }
        });
        for round in 0..10 {
            let artifact = if round % 2 == 0 { &second } else { &first };
            let (code, result, stderr) =
                install_with(artifact, &destination, &python, &[OsStr::new("--force")]);
            assert_eq!(code, 0, "round {round}: {stderr}");
            assert_eq!(result["changed"], true);
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(
        looks.load(Ordering::Relaxed) > 1000,
        "the watcher hardly ran"
    );
    assert_eq!(
        missing.load(Ordering::Relaxed),
        0,
        "DEST was missing while --force replaced it"
    );
    assert_eq!(
        std::fs::read_to_string(destination.join("demoapp/version.py")).expect("read"),
        "VERSION = 1\n"
    );
    assert_eq!(
        listing(&work.path().join("releases")),
        vec![".1.pysfx-lock", "1"]
    );
}

#[test]
fn a_force_run_killed_between_its_renames_loses_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let (first, second) = two_releases(work.path());
    let releases = work.path().join("releases");
    let destination = releases.join("1");
    let python = host_python();
    let (code, _, stderr) = install_with(&first, &destination, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    std::fs::write(
        destination.join("environment.json"),
        r#"{"SECRET_KEY": "s"}"#,
    )
    .expect("environment.json");
    // What a SIGKILL between `DEST → .old` and `tmp → DEST` leaves (kernels before 3.15): the
    // new release complete, its receipt written, beside the old one moved aside.
    let built = releases.join(".1.pysfx-tmp-999999");
    let copied = run(Command::new("cp").arg("-a").arg(&destination).arg(&built));
    assert!(copied.status.success(), "{copied:?}");
    std::fs::remove_file(built.join("environment.json")).expect("not the new release's");
    std::fs::rename(&destination, releases.join(".1.pysfx-old-999999")).expect("move aside");
    let (code, result, stderr) = install_with(&first, &destination, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    // Put back, not installed again (its environment.json is there): DEST did not exist
    // before the run and does after, which is a change.
    assert_eq!(result["changed"], true, "{result}");
    assert!(stderr.contains("put back"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(destination.join("environment.json")).expect("kept"),
        r#"{"SECRET_KEY": "s"}"#
    );
    assert_eq!(listing(&releases), vec![".1.pysfx-lock", "1"]);
    // Put back by a run that then refuses (another payload, no --force): still a change, and
    // the refusal's JSON says so.
    std::fs::rename(&destination, releases.join(".1.pysfx-old-999999")).expect("move aside");
    let (code, result, stderr) = install_with(&second, &destination, &python, &[]);
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(result["changed"], true, "{result}");
    assert!(stderr.contains("put back"), "{stderr}");
    assert!(destination.join("environment.json").is_file());
    // A tree of that name holding a release, of a process that still runs, may be a release
    // someone put there: left alone, with a warning.
    let alive = releases.join(format!(".1.pysfx-tmp-{}", std::process::id()));
    let copied = run(Command::new("cp").arg("-a").arg(&destination).arg(&alive));
    assert!(copied.status.success(), "{copied:?}");
    let (code, _, stderr) = install_with(&first, &destination, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("holds a release, and the process its name ends with runs: left alone"),
        "{stderr}"
    );
    assert!(alive.join("pysfx-receipt.json").is_file());
    // A copy of another release planted as what a killed `--force` of DEST moved aside is not
    // put back as DEST: its receipt names where it was installed.
    std::fs::remove_dir_all(&alive).expect("rm");
    let seven = releases.join("7");
    let planted = releases.join(".7.pysfx-old-999999");
    let copied = run(Command::new("cp").arg("-a").arg(&destination).arg(&planted));
    assert!(copied.status.success(), "{copied:?}");
    let (code, _, stderr) = install_with(&second, &seven, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("put back"), "{stderr}");
    assert!(!seven.join("environment.json").exists());
    assert!(planted.join("environment.json").is_file());
    // DEST's own leftover is put back however DEST is spelled (here through a link to its
    // parent).
    let via = work.path().join("via");
    std::os::unix::fs::symlink(&releases, &via).expect("symlink");
    std::fs::rename(&destination, releases.join(".1.pysfx-old-999999")).expect("move aside");
    let (code, _, stderr) = install_with(&first, &via.join("1"), &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("put back"), "{stderr}");
    assert!(destination.join("environment.json").is_file());
}

/// The lock file a refused run leaves (`-d foreign/x` where x is a file) is no release: it
/// does not make `-d foreign --force` refuse `foreign` as a directory of releases.
#[test]
fn a_lock_file_without_its_release_does_not_block_force() {
    let work = tempfile::tempdir().expect("tempdir");
    let (first, _) = two_releases(work.path());
    let foreign = work.path().join("foreign");
    std::fs::create_dir(&foreign).expect("mkdir");
    std::fs::write(foreign.join("x"), "a file").expect("write");
    let python = host_python();
    let (code, _, stderr) = install_with(&first, &foreign.join("x"), &python, &[]);
    assert_eq!(code, 5, "{stderr}");
    assert!(foreign.join(".x.pysfx-lock").exists());
    let (code, result, stderr) = install_with(&first, &foreign, &python, &[OsStr::new("--force")]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert!(foreign.join("pysfx-receipt.json").is_file());
}

#[test]
fn force_refuses_a_directory_of_releases() {
    let work = tempfile::tempdir().expect("tempdir");
    let (first, second) = two_releases(work.path());
    let releases = work.path().join("releases");
    let python = host_python();
    let (code, _, stderr) = install_with(&first, &releases.join("1"), &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    let before = snapshot(&releases);
    // `-d releases/$N --force` with an empty N.
    let (code, _, stderr) = install_with(&second, &releases, &python, &[OsStr::new("--force")]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("holds pysfx releases"), "{stderr}");
    assert_eq!(snapshot(&releases), before, "the releases changed");

    // A tree that holds LINK's target.
    let app = work.path().join("app");
    std::fs::create_dir_all(app.join("releases")).expect("mkdir");
    std::fs::rename(&releases, app.join("releases/all")).expect("move");
    let current = work.path().join("current");
    std::os::unix::fs::symlink(app.join("releases/all/1"), &current).expect("link");
    let link = [
        OsStr::new("--force"),
        OsStr::new("--link"),
        current.as_os_str(),
    ];
    let (code, _, stderr) = install_with(&second, &app.join("releases"), &python, &link);
    assert_eq!(code, 5, "{stderr}");
    assert!(app.join("releases/all/1/pysfx-receipt.json").is_file());

    // The app's root, its releases two levels down (`-d /srv/app --force`, the release
    // number forgotten), and without --link.
    std::fs::write(app.join("uploads.db"), "data").expect("data");
    let before = snapshot(&app);
    let (code, _, stderr) = install_with(&second, &app, &python, &[OsStr::new("--force")]);
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("holds pysfx releases (releases/all/1)"),
        "{stderr}"
    );
    assert_eq!(snapshot(&app), before, "the app's root changed");
}

/// `--force` over a release that holds the interpreter (a Python unpacked into it, reached
/// by a link, or named through a link that leads into it) is exit 4 and leaves the release
/// as it was: the new venv would point at an interpreter the replacement removes. The
/// release's own venv python is fine: the new venv links its base interpreter.
#[test]
fn force_refuses_an_interpreter_inside_dest() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_, second, destination, python) = first_installed(work.path());
    let real = std::fs::canonicalize(&python).expect("the host python");
    std::fs::create_dir(destination.join("py")).expect("mkdir");
    std::os::unix::fs::symlink(&real, destination.join("py/python")).expect("symlink");
    let outside = work.path().join("python-here");
    std::os::unix::fs::symlink(destination.join("py/python"), &outside).expect("symlink");
    let before = snapshot(&destination);
    for given in [destination.join("py/python"), outside] {
        let (code, json, stderr) =
            install_with(&second, &destination, &given, &[OsStr::new("--force")]);
        assert_eq!(code, 4, "{}: {json}\n{stderr}", given.display());
        assert!(
            stderr.contains("lies inside") && stderr.contains("which --force replaces"),
            "{stderr}"
        );
        assert_eq!(snapshot(&destination), before, "{}", given.display());
    }
    // A DEST that is a link to the release is replaced as a link: the release, and the
    // Python in it, stay.
    let linked = work.path().join("releases/linked");
    std::os::unix::fs::symlink(&destination, &linked).expect("symlink");
    let inside = destination.join("py/python");
    let (code, json, stderr) = install_with(&second, &linked, &inside, &[OsStr::new("--force")]);
    assert_eq!(code, 0, "{json}\n{stderr}");
    assert!(linked.join("pysfx-receipt.json").is_file() && !linked.is_symlink());
    assert_eq!(snapshot(&destination), before);
    std::fs::remove_dir_all(&linked).expect("rm");
    let own = destination.join("venv/bin/python");
    let (code, json, stderr) = install_with(&second, &destination, &own, &[OsStr::new("--force")]);
    assert_eq!(code, 0, "{json}\n{stderr}");
    let output = run(Command::new(destination.join("venv/bin/python")).args(["-c", "print(1)"]));
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_link_at_or_inside_dest_is_a_usage_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let (first, _) = two_releases(work.path());
    let destination = work.path().join("releases/1");
    for link in [
        destination.clone(),
        destination.join("current"),
        PathBuf::from("/"),
    ] {
        let (code, _, stderr) = install_with(
            &first,
            &destination,
            &host_python(),
            &[OsStr::new("--link"), link.as_os_str()],
        );
        assert_eq!(code, 2, "{}: {stderr}", link.display());
        assert!(!destination.exists(), "{}", link.display());
    }
}

#[test]
fn a_failure_report_names_dest_absolutely_and_the_python_it_queried() {
    let work = tempfile::tempdir().expect("tempdir");
    let (first, _) = two_releases(work.path());
    std::fs::create_dir_all(work.path().join("taken")).expect("mkdir");
    std::fs::write(work.path().join("taken/file"), "not a release").expect("write");
    let output = run(Command::new(&first)
        .current_dir(work.path())
        .args(["-d", "taken", "--python"])
        .arg(host_python())
        .arg("--json"));
    assert_eq!(output.status.code(), Some(5));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let dest = result["dest"].as_str().unwrap_or_default();
    assert!(Path::new(dest).is_absolute(), "{result}");
    assert!(dest.ends_with("/taken"), "{result}");
    assert!(
        result["python_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "{result}"
    );
}

#[test]
fn force_on_a_kernel_without_rename_exchange_falls_back_to_two_renames() {
    let Some([system_python, tool]) = pysfx_e2e::tools::kernel310() else {
        eprintln!("skipped: needs ../shared/tools/kernel310.py and python3-seccomp");
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    let (first, second) = two_releases(work.path());
    let destination = work.path().join("releases/1");
    let python = host_python();
    for (artifact, version) in [(&first, "1"), (&second, "2")] {
        let output = run(Command::new(&system_python)
            .arg(&tool)
            .arg(artifact)
            .arg("-d")
            .arg(&destination)
            .arg("--python")
            .arg(&python)
            .arg("--force")
            .arg("--json"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(destination.join("demoapp/version.py")).expect("read"),
            format!("VERSION = {version}\n")
        );
    }
    assert_eq!(
        listing(&work.path().join("releases")),
        vec![".1.pysfx-lock", "1"]
    );
}

#[test]
fn an_interpreter_that_hangs_or_floods_is_bounded() {
    let work = tempfile::tempdir().expect("tempdir");
    let (first, _) = two_releases(work.path());
    let hangs = work.path().join("hangs");
    let floods = work.path().join("floods");
    std::fs::write(&hangs, "#!/bin/sh\nsleep 1000\n").expect("write");
    std::fs::write(&floods, "#!/bin/sh\nexec yes 'not python'\n").expect("write");
    for script in [&hangs, &floods] {
        let chmod = run(Command::new("chmod").arg("755").arg(script));
        assert!(chmod.status.success());
        let destination = work.path().join("releases/1");
        let started = std::time::Instant::now();
        let output = run(Command::new("/usr/bin/time")
            .args(["-f", "peak-kib %M"])
            .arg(&first)
            .arg("-d")
            .arg(&destination)
            .arg("--python")
            .arg(script)
            .env("PYSFX_QUERY_TIMEOUT", "3"));
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(4),
            "{}: {stderr}",
            script.display()
        );
        assert!(
            elapsed.as_secs() < 30,
            "{}: took {elapsed:?}",
            script.display()
        );
        let error = stderr.lines().next().unwrap_or_default();
        assert!(
            error.len() < 600,
            "{}: a long message: {error}",
            script.display()
        );
        if let Some(peak) = stderr
            .lines()
            .find_map(|line| line.strip_prefix("peak-kib "))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
        {
            assert!(peak < 100 * 1024, "{}: peak {peak} KiB", script.display());
        }
        assert!(!destination.exists());
    }
}

#[test]
fn a_planted_old_sibling_is_not_put_back() {
    let work = tempfile::tempdir().expect("tempdir");
    let (first, _) = two_releases(work.path());
    let releases = work.path().join("releases");
    std::fs::create_dir_all(&releases).expect("mkdir");
    let victim = work.path().join("victim");
    std::fs::create_dir_all(&victim).expect("mkdir");
    std::os::unix::fs::symlink(&victim, releases.join(".1.pysfx-old-999999")).expect("plant");
    let destination = releases.join("1");
    let (code, _, stderr) = install_with(&first, &destination, &host_python(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!std::fs::symlink_metadata(&destination)
        .expect("DEST")
        .file_type()
        .is_symlink());
    assert!(
        victim.is_dir() && listing(&victim).is_empty(),
        "the victim changed"
    );
    assert_eq!(listing(&releases), vec![".1.pysfx-lock", "1"]);
}

/// Whoever may write DEST's parent renames the temporary tree away while the install runs and
/// puts a link to a directory of theirs in its place: the install writes nothing there (it
/// writes the tree through a descriptor, not its name), and DEST never becomes that link.
#[test]
fn a_temporary_tree_swapped_for_a_link_is_not_followed() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let releases = work.path().join("releases");
    let outside = work.path().join("outside");
    std::fs::create_dir_all(&releases).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let stop = AtomicBool::new(false);
    let swaps = AtomicUsize::new(0);
    /// Stops the racer however the rounds end (a failed assertion included).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    // Every other swap puts a directory of someone else's (a file in it) at the name: the
    // install's cleanup must not remove it.
    let victims = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut swapped = std::collections::HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let Ok(entries) = std::fs::read_dir(&releases) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let path = entry.path();
                    if !name.contains(".pysfx-tmp-") || !swapped.insert(name) {
                        continue;
                    }
                    let n = swaps.fetch_add(1, Ordering::Relaxed);
                    if std::fs::rename(&path, releases.join(format!("stolen-{n}"))).is_err() {
                        continue;
                    }
                    if n.is_multiple_of(2) {
                        let _ = std::os::unix::fs::symlink(&outside, &path);
                    } else {
                        let victim = work.path().join(format!("victim-{n}"));
                        std::fs::create_dir(&victim).expect("victim");
                        std::fs::write(victim.join("keep.txt"), "mine").expect("victim file");
                        if std::fs::rename(&victim, &path).is_ok() {
                            victims.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
        let _stop = Stop(&stop);
        for round in 0..8 {
            let destination = releases.join(round.to_string());
            let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
            assert!(
                std::fs::read_dir(&outside).expect("ls").next().is_none(),
                "round {round}: written outside DEST: {:?} ({stderr})",
                listing(&outside)
            );
            let dest = std::fs::symlink_metadata(&destination);
            assert!(
                dest.as_ref().map_or(true, |m| m.is_dir()),
                "round {round}: DEST is not a directory of its own"
            );
            if code != 0 {
                assert!(stderr.contains("was replaced"), "round {round}: {stderr}");
            }
        }
    });
    assert!(swaps.load(Ordering::Relaxed) > 0, "the race never ran");
    let kept = run(Command::new("find")
        .arg(&releases)
        .args(["-name", "keep.txt"]));
    assert_eq!(
        String::from_utf8_lossy(&kept.stdout).lines().count(),
        victims.load(Ordering::Relaxed),
        "a directory put at the temporary name was removed"
    );
}

/// The tree a release is built in is private while it is written (0700): with a deploy
/// group's umask 002 its directories are group-writable, and a group member who could reach
/// them could swap one for a link to a directory of root's between two writes. Once built,
/// the release gets a release's mode (0775 less the umask).
#[test]
fn the_tree_being_built_is_private_until_it_is_a_release() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let releases = work.path().join("releases");
    std::fs::create_dir_all(&releases).expect("mkdir");
    let stop = AtomicBool::new(false);
    let modes = std::sync::Mutex::new(std::collections::BTreeSet::new());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let Ok(entries) = std::fs::read_dir(&releases) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !name.contains(".pysfx-tmp-") {
                        continue;
                    }
                    if let Ok(metadata) = std::fs::symlink_metadata(entry.path()) {
                        let mode = metadata.permissions().mode() & 0o7777;
                        modes.lock().expect("modes").insert(mode);
                    }
                }
            }
        });
        for round in 0..20 {
            let destination = releases.join(round.to_string());
            let output = run(Command::new("sh")
                .args(["-c", "umask 002; exec \"$0\" \"$@\""])
                .arg(&artifact)
                .arg("-d")
                .arg(&destination)
                .arg("--python")
                .arg(host_python())
                .arg("-q"));
            assert!(output.status.success(), "round {round}: {output:?}");
            let mode = std::fs::metadata(&destination)
                .expect("DEST")
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o775, "round {round}: DEST's mode");
            if modes.lock().expect("modes").contains(&0o700) && round >= 3 {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    // (0775 only in the instant between the tree's last write and its rename into place.)
    let modes = modes.into_inner().expect("modes");
    assert!(modes.contains(&0o700), "never seen private: {modes:?}");
    assert!(
        modes.iter().all(|mode| [0o700, 0o775].contains(mode)),
        "modes of the tree being built: {modes:?}"
    );
}

/// A file-size limit (`ulimit -f`) makes the install fail like a full disk: exit 4, one JSON
/// object, nothing left beside DEST — not a silent death by SIGXFSZ with its tree left behind.
/// Nor when the tree is deeper than the descriptors the run may open (`ulimit -n 64`, the
/// least the stub runs with, and an app directory 100 levels deep).
#[test]
fn a_file_size_limit_fails_cleanly() {
    let work = tempfile::tempdir().expect("tempdir");
    let big = vec![b'x'; 1 << 20];
    let deep = format!("demoapp/{}leaf.txt", "d/".repeat(100));
    let artifact = raw_artifact(
        &work.path().join("big.sfx"),
        &[good_wheel()],
        &[
            ("demoapp/__init__.py", b""),
            (deep.as_str(), b"x"),
            ("demoapp/big.txt", &big),
        ],
        |_| {},
    );
    let releases = work.path().join("releases");
    std::fs::create_dir_all(&releases).expect("mkdir");
    let destination = releases.join("1");
    let output = run(Command::new("sh")
        .args(["-c", "ulimit -n 64; ulimit -f 100; exec \"$0\" \"$@\""])
        .arg(&artifact)
        .arg("-d")
        .arg(&destination)
        .arg("--python")
        .arg(host_python())
        .arg("--json"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(result["exit_code"], 4, "{result}");
    assert!(!destination.exists());
    let left: Vec<String> = listing(&releases)
        .into_iter()
        .filter(|name| !name.ends_with(".pysfx-lock"))
        .collect();
    assert!(left.is_empty(), "litter: {left:?}");
}

/// Whether this test runs as root (only root can give a file to another user).
fn is_root() -> bool {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc/self")) == 0
}

/// Entries beside DEST named like a killed run's leftovers but owned by another user (who may
/// write a shared releases directory) are theirs: not put back as DEST, not removed.
#[test]
fn another_users_leftovers_are_neither_put_back_nor_removed() {
    if !is_root() {
        eprintln!("skipped: only root can plant another user's files");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let releases = work.path().join("releases");
    let old = releases.join(".1.pysfx-old-99999");
    let temporary = releases.join(".1.pysfx-tmp-99998");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::create_dir_all(&temporary).expect("mkdir");
    std::fs::write(old.join("pysfx-receipt.json"), "{}").expect("receipt");
    std::fs::write(old.join("planted"), "theirs").expect("marker");
    std::fs::write(temporary.join("notes"), "theirs").expect("file");
    let given = run(Command::new("chown")
        .args(["-R", "65534"])
        .arg(&old)
        .arg(&temporary));
    assert!(given.status.success());
    let destination = releases.join("1");
    let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !destination.join("planted").exists(),
        "their tree became DEST"
    );
    assert!(old.join("planted").is_file() && temporary.join("notes").is_file());
    assert!(!stderr.contains("put back"), "{stderr}");
}

/// A symbolic link another user planted in a sticky, world-writable directory (as `/tmp`) is
/// not followed to DEST or LINK, whatever `fs.protected_symlinks` says: `--force` would
/// otherwise replace the data it leads to. Exit 5, nothing touched.
#[test]
fn a_symlink_another_user_planted_in_a_shared_directory_is_not_followed() {
    if !is_root() {
        eprintln!("skipped: only root can plant another user's link");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let shared = work.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    let opened = run(Command::new("chmod").arg("1777").arg(&shared));
    assert!(opened.status.success());
    let victim = work.path().join("victim");
    std::fs::create_dir_all(victim.join("data")).expect("mkdir");
    std::fs::write(victim.join("data/notes.txt"), "important").expect("write");
    let planted = shared.join("newq");
    std::os::unix::fs::symlink(&victim, &planted).expect("plant");
    let given = run(Command::new("chown").args(["-h", "65534"]).arg(&planted));
    assert!(given.status.success());

    let destination = planted.join("data");
    let (code, _, stderr) = install_with(
        &artifact,
        &destination,
        &host_python(),
        &[OsStr::new("--force")],
    );
    assert_eq!(code, 5, "{stderr}");
    assert!(
        stderr.contains("symbolic link") && stderr.contains("newq"),
        "{stderr}"
    );
    assert_eq!(listing(&victim.join("data")), vec!["notes.txt"]);

    let link = planted.join("current");
    let (code, _, stderr) = install_with(
        &artifact,
        &work.path().join("releases/1"),
        &host_python(),
        &[OsStr::new("--link"), link.as_os_str()],
    );
    assert_eq!(code, 5, "{stderr}");
    assert_eq!(listing(&victim), vec!["data"]);
    assert!(!work.path().join("releases/1").exists());

    // `--activate` of an installed release, to a LINK through the planted link.
    let release = work.path().join("releases/2");
    let (code, _, stderr) = install_with(&artifact, &release, &host_python(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let output = run(Command::new(&artifact)
        .arg("--activate")
        .arg(&release)
        .arg("--link")
        .arg(&link));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(listing(&victim), vec!["data"]);
}

/// The lock file is not readable by others (`flock` needs only read access: a user who could
/// open it could hold the lock and block every deploy), and DEST keeps the setgid bit of a
/// group's releases directory, as the directories below it do.
#[test]
fn the_lock_is_closed_to_others_and_dest_keeps_its_setgid_bit() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = good_artifact(work.path());
    let releases = work.path().join("releases");
    std::fs::create_dir(&releases).expect("mkdir");
    std::fs::set_permissions(&releases, std::fs::Permissions::from_mode(0o2775)).expect("chmod");
    let destination = releases.join("1");
    let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
    assert_eq!(code, 0, "{stderr}");
    let mode = |path: &Path| {
        std::fs::symlink_metadata(path)
            .expect("lstat")
            .permissions()
            .mode()
    };
    assert_eq!(
        mode(&releases.join(".1.pysfx-lock")) & 0o007,
        0,
        "others may open the lock"
    );
    assert_ne!(mode(&destination) & 0o2000, 0, "DEST lost its setgid bit");
    assert_ne!(mode(&destination.join("venv")) & 0o2000, 0);
}
