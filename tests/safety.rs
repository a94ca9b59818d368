//! Operators re-run deploys, kill them, run two at once, and fill disks: a release is either
//! absent or complete, nothing is left next to DEST but the lock file, and an existing release
//! is never lost.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pysfx_e2e::{
    bulky_wheel, evil_wheels, host_python, install, install_with, listing, make_app, pack,
    raw_artifact, run,
};

fn bulky_artifact(work: &Path) -> PathBuf {
    pack(
        &[
            OsStr::new("--app"),
            make_app(work, "demoapp").as_os_str(),
            OsStr::new("--wheels"),
            bulky_wheel().as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.join("bulky.sfx"),
    )
}

fn spawn_install(artifact: &Path, destination: &Path, extra: &[&str]) -> Child {
    Command::new(artifact)
        .arg("-d")
        .arg(destination)
        .arg("--python")
        .arg(host_python())
        .arg("--json")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the artifact")
}

/// Waits until the run has started building (its temporary sibling exists), then a little more.
fn wait_until_building(parent: &Path, child: &mut Child) {
    let started = Instant::now();
    loop {
        if listing(parent)
            .iter()
            .any(|name| name.contains(".pysfx-tmp-"))
        {
            std::thread::sleep(Duration::from_millis(300));
            return;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the install ended before it could be interrupted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the install never started building"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Only the lock file may stay next to DEST.
fn assert_no_litter(parent: &Path, case: &str) {
    let names = listing(parent);
    let litter: Vec<&String> = names
        .iter()
        .filter(|name| name.starts_with('.') && !name.ends_with(".pysfx-lock"))
        .collect();
    assert!(litter.is_empty(), "{case}: left next to DEST: {litter:?}");
}

fn assert_complete(destination: &Path) {
    assert!(
        destination.join("pysfx-receipt.json").is_file(),
        "no receipt in {}",
        destination.display()
    );
    let output = run(Command::new(destination.join("venv/bin/python"))
        .args(["-c", "import bulky.m00001 as m; print(m.VALUE_1_2)"]));
    assert!(
        output.status.success(),
        "the release does not work: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sigterm_and_sigint_mid_install_remove_the_unfinished_release() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = bulky_artifact(work.path());
    for (name, code) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let parent = work.path().join(format!("releases-{name}"));
        let destination = parent.join("1");
        let mut child = spawn_install(&artifact, &destination, &[]);
        wait_until_building(&parent, &mut child);
        signal(&child, name);
        let output = child.wait_with_output().expect("wait");
        assert_eq!(
            output.status.code(),
            Some(code),
            "SIG{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !destination.exists(),
            "SIG{name}: DEST exists after an interrupted install"
        );
        assert_no_litter(&parent, &format!("SIG{name}"));
        // --json still gets its one object, naming the DEST and the signal's exit code.
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
        assert_eq!(report["exit_code"], code, "SIG{name}");
        assert_eq!(report["changed"], false);
        // How long the run went on before the signal ended it.
        assert!(
            report["seconds"]
                .as_f64()
                .is_some_and(|seconds| seconds > 0.0),
            "SIG{name}: {report}"
        );
        assert_eq!(
            report["dest"].as_str(),
            Some(destination.to_str().expect("UTF-8")),
            "SIG{name}"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "interrupted by SIG{name}; removed the unfinished release"
            )),
            "SIG{name}: {stderr}"
        );
    }
}

/// A run stopped while it waits for another run's lock had nothing to remove, and says so.
#[test]
fn sigterm_while_waiting_for_the_lock_says_nothing_was_begun() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = bulky_artifact(work.path());
    let parent = work.path().join("releases");
    std::fs::create_dir(&parent).expect("mkdir");
    let lock = parent.join(".1.pysfx-lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "60"])
        .spawn()
        .expect("flock");
    let started = Instant::now();
    while !lock.exists() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let child = spawn_install(&artifact, &parent.join("1"), &[]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "TERM");
    let output = child.wait_with_output().expect("wait");
    let _ = holder.kill();
    let _ = holder.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGTERM before the install began; nothing was installed"),
        "{stderr}"
    );
    assert!(!parent.join("1").exists());
    assert_no_litter(&parent, "SIGTERM while waiting");
}

/// A signal while `--keep` removes an old release: the prune finishes, and the run ends with
/// one report — one JSON object on stdout whose exit code is the run's, naming what was
/// removed — never the success object and the signal's both.
#[test]
fn a_signal_during_the_prune_ends_the_run_with_one_report() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = bulky_artifact(work.path());
    let parent = work.path().join("releases");
    let current = work.path().join("current");
    let link = ["--link", current.to_str().expect("UTF-8")];
    for release in ["1", "2", "3"] {
        let (code, _, stderr) = install_with(
            &artifact,
            &parent.join(release),
            &host_python(),
            &[
                OsStr::new("--no-compile"),
                OsStr::new(link[0]),
                OsStr::new(link[1]),
            ],
        );
        assert_eq!(code, 0, "{stderr}");
    }
    // Release 4 keeps itself and release 3 (the one LINK served), and removes 1, then 2
    // (oldest first). What the deployment added to release 1 makes its removal take a while.
    let added = parent.join("1/media");
    for directory in 0..40 {
        let directory = added.join(format!("d{directory}"));
        std::fs::create_dir_all(&directory).expect("mkdir");
        for file in 0..500 {
            std::fs::write(directory.join(format!("f{file}")), b"x").expect("write");
        }
    }
    let mut child = spawn_install(
        &artifact,
        &parent.join("4"),
        &["--no-compile", link[0], link[1], "--keep", "1"],
    );
    let started = Instant::now();
    while !listing(&parent)
        .iter()
        .any(|name| name.starts_with(".1.pysfx-trash-"))
    {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before its prune could be interrupted"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no prune");
        std::thread::sleep(Duration::from_millis(1));
    }
    signal(&child, "TERM");
    let output = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("not one JSON object ({error}): {stdout}"));
    let code = output.status.code().expect("an exit code");
    // The signal came before the run reported: it ends the run, saying what was done.
    assert_eq!(code, 143, "{report}");
    assert_eq!(report["exit_code"], 143, "{report}");
    assert_eq!(report["changed"], true, "{report}");
    assert_eq!(report["link_moved"], true, "{report}");
    let pruned: Vec<&str> = report["pruned"]
        .as_array()
        .map(|list| list.iter().filter_map(|path| path.as_str()).collect())
        .unwrap_or_default();
    // The release being removed when the signal came is removed; the prune stops there, so
    // a stop request waits for one release, not for all of them, and the newer one stays.
    assert_eq!(
        pruned,
        [parent.join("1").to_str().expect("UTF-8")],
        "{report}"
    );
    assert!(!parent.join("1").exists());
    assert!(
        parent.join("2").exists(),
        "the prune went on after the signal"
    );
    assert_eq!(std::fs::read_link(&current).ok(), Some(parent.join("4")));
    assert_complete(&parent.join("4"));
    assert_no_litter(&parent, "a signal during the prune");
}

/// Whether process `pid` blocks SIGTERM: the artifact blocks it in its first steps, before
/// its signal thread waits for it.
fn blocks_sigterm(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigBlk:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
}

/// `--check`, `--status` and `--verify` end on a signal as an install does: one line saying
/// what was interrupted, one JSON object with the signal's exit code, 128 + N. (Stopped as
/// soon as it blocks the signal, so the signal comes before the run can finish.)
#[test]
fn a_signal_ends_the_other_modes_with_one_report() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = bulky_artifact(work.path());
    let parent = work.path().join("releases");
    let current = work.path().join("current");
    let (code, _, stderr) = install_with(
        &artifact,
        &parent.join("1"),
        &host_python(),
        &[
            OsStr::new("--no-compile"),
            OsStr::new("--link"),
            current.as_os_str(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    for (mode, operand) in [
        ("--check", Some(parent.join("1"))),
        ("--status", Some(current.clone())),
        ("--verify", None),
    ] {
        let child = Command::new(&artifact)
            .arg(mode)
            .args(operand.iter())
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the artifact");
        let started = Instant::now();
        while !blocks_sigterm(child.id()) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{mode}: no mask"
            );
            std::thread::yield_now();
        }
        signal(&child, "STOP");
        signal(&child, "TERM");
        signal(&child, "CONT");
        let output = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(143), "{mode}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "interrupted by SIGTERM during {mode}; nothing was changed"
            )),
            "{mode}: {stderr}"
        );
        let report: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|error| panic!("{mode}: not one JSON object ({error}): {stdout}"));
        assert_eq!(report["exit_code"], 143, "{mode}: {report}");
    }
}

/// `--force` swaps the new release into DEST, then removes the one it replaced: a signal while
/// that goes on ends the run saying DEST is installed (`changed: true`, with what it
/// installed), as it is, not that nothing was.
#[test]
fn a_signal_while_force_removes_the_replaced_release_reports_it_installed() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = bulky_artifact(work.path());
    let second = pack(
        &[
            OsStr::new("--app"),
            work.path().join("demoapp").as_os_str(),
            OsStr::new("--app-version"),
            OsStr::new("2"),
            OsStr::new("--wheels"),
            bulky_wheel().as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("bulky-2.sfx"),
    );
    let parent = work.path().join("releases");
    let destination = parent.join("1");
    let (code, _, stderr) = install_with(
        &artifact,
        &destination,
        &host_python(),
        &[OsStr::new("--no-compile")],
    );
    assert_eq!(code, 0, "{stderr}");
    // What the deployment added makes the replaced release's removal take a while.
    for directory in 0..40 {
        let directory = destination.join(format!("media/d{directory}"));
        std::fs::create_dir_all(&directory).expect("mkdir");
        for file in 0..500 {
            std::fs::write(directory.join(format!("f{file}")), b"x").expect("write");
        }
    }
    let mut child = spawn_install(&second, &destination, &["--no-compile", "--force"]);
    // Swapped: the temporary sibling holds the replaced release, media and all.
    let started = Instant::now();
    while !listing(&parent)
        .iter()
        .any(|name| name.starts_with(".1.pysfx-tmp-") && parent.join(name).join("media").exists())
    {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before the replaced release's removal could be interrupted"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no swap");
        std::thread::sleep(Duration::from_millis(1));
    }
    signal(&child, "TERM");
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    assert_eq!(output.status.code(), Some(143), "{report}\n{stderr}");
    assert_eq!(report["changed"], true, "{report}");
    // And what it installed.
    assert_eq!(report["wheels_installed"], 1, "{report}");
    assert!(
        report["files"].as_u64().is_some_and(|files| files > 0),
        "{report}"
    );
    assert!(
        stderr.contains("after the release was installed in DEST"),
        "{stderr}"
    );
    let receipt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(destination.join("pysfx-receipt.json")).expect("receipt"),
    )
    .expect("JSON");
    assert_eq!(receipt["app_version"], "2", "DEST holds the new release");
    assert_complete(&destination);
    assert_no_litter(
        &parent,
        "a signal while --force removes the replaced release",
    );
}

#[test]
fn after_sigkill_the_next_run_succeeds_and_cleans_up() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = bulky_artifact(work.path());
    let parent = work.path().join("releases");
    let destination = parent.join("1");
    let mut child = spawn_install(&artifact, &destination, &[]);
    wait_until_building(&parent, &mut child);
    signal(&child, "KILL");
    child.wait().expect("wait");
    assert!(!destination.exists(), "DEST exists after a killed install");
    let (code, result, stderr) = install_with(
        &artifact,
        &destination,
        &host_python(),
        &[OsStr::new("--no-compile")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(result["changed"], true);
    assert_complete(&destination);
    assert_no_litter(&parent, "after SIGKILL and a re-run");
}

#[test]
fn two_concurrent_installs_never_interleave() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = bulky_artifact(work.path());
    let parent = work.path().join("releases");
    let destination = parent.join("1");
    let first = spawn_install(&artifact, &destination, &["--no-compile"]);
    let second = spawn_install(&artifact, &destination, &["--no-compile"]);
    let mut changed = Vec::new();
    for child in [first, second] {
        let output = child.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let result: serde_json::Value =
            serde_json::from_str(stdout.trim()).expect("one JSON object");
        match output.status.code() {
            Some(0) => changed.push(result["changed"].as_bool().expect("changed")),
            Some(5) => changed.push(false),
            other => panic!(
                "unexpected exit {other:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
    changed.sort();
    assert_eq!(changed, vec![false, true], "exactly one run installs");
    assert_complete(&destination);
    assert_no_litter(&parent, "concurrent installs");
}

#[test]
fn link_is_repointed_and_rerunning_an_old_release_rolls_back() {
    let work = tempfile::tempdir().expect("tempdir");
    let good = evil_wheels().join("good-1.0-py3-none-any.whl");
    let first = raw_artifact(
        &work.path().join("first.sfx"),
        std::slice::from_ref(&good),
        &[("demoapp/v.py", b"V = 1\n")],
        |_| {},
    );
    let second = raw_artifact(
        &work.path().join("second.sfx"),
        &[good],
        &[("demoapp/v.py", b"V = 2\n")],
        |_| {},
    );
    let current = work.path().join("current");
    let python = host_python();
    let run_with_link = |artifact: &Path, release: &str| {
        let destination = work.path().join("releases").join(release);
        install_with(
            artifact,
            &destination,
            &python,
            &[
                OsStr::new("--link"),
                current.as_os_str(),
                OsStr::new("--no-compile"),
            ],
        )
    };
    let (code, result, stderr) = run_with_link(&first, "1");
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(true)),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_link(&current).expect("link"),
        work.path().join("releases/1")
    );
    let (code, _, stderr) = run_with_link(&second, "2");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read_link(&current).expect("link"),
        work.path().join("releases/2")
    );
    assert_eq!(
        std::fs::read_to_string(current.join("demoapp/v.py")).expect("read"),
        "V = 2\n"
    );
    // Rollback: the old artifact again; nothing is installed, only the link moves, and that is
    // a change (an Ansible handler must restart the service).
    let (code, result, stderr) = run_with_link(&first, "1");
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(true)),
        "{stderr}"
    );
    assert_eq!(result["wheels_installed"], 0);
    assert_eq!(result["link_moved"], true);
    assert_eq!(
        std::fs::read_link(&current).expect("link"),
        work.path().join("releases/1")
    );
    // Once more: nothing moves, nothing changed.
    let (code, result, stderr) = run_with_link(&first, "1");
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(false)),
        "{stderr}"
    );
    assert_no_litter(work.path(), "--link");
    // A LINK that is not a symlink is refused before anything is written.
    let blocker = work.path().join("blocker");
    std::fs::create_dir(&blocker).expect("mkdir");
    let destination = work.path().join("releases/3");
    let (code, _, stderr) = install_with(
        &second,
        &destination,
        &python,
        &[OsStr::new("--link"), blocker.as_os_str()],
    );
    assert_eq!(code, 5, "{stderr}");
    assert!(!destination.exists());
    assert!(blocker.is_dir());
}

#[test]
fn rerun_touches_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let good = evil_wheels().join("good-1.0-py3-none-any.whl");
    let artifact = raw_artifact(
        &work.path().join("a.sfx"),
        &[good],
        &[("demoapp/v.py", b"V = 1\n")],
        |_| {},
    );
    let destination = work.path().join("releases/1");
    let python = host_python();
    let args = [
        OsStr::new("-d"),
        destination.as_os_str(),
        OsStr::new("--python"),
        python.as_os_str(),
    ];
    let (code, _, stderr) = install(&artifact, &args);
    assert_eq!(code, 0, "{stderr}");
    let snapshot = |root: &Path| -> Vec<(String, std::time::SystemTime)> {
        pysfx_e2e::tree(root)
            .into_iter()
            .map(|path| {
                let modified = std::fs::symlink_metadata(root.join(&path))
                    .and_then(|m| m.modified())
                    .expect("mtime");
                (path, modified)
            })
            .collect()
    };
    let before = snapshot(&destination);
    std::thread::sleep(Duration::from_millis(20));
    let (code, result, stderr) = install(&artifact, &args);
    assert_eq!(
        (code, &result["changed"]),
        (0, &serde_json::json!(false)),
        "{stderr}"
    );
    assert_eq!(
        before,
        snapshot(&destination),
        "a no-op re-run changed DEST"
    );
}

/// A small tmpfs, mounted for the test (root only).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// `options` as `mount -o` takes them (`size=4m`).
    fn mount(path: &Path, options: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).ok()?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .output()
            .ok()?;
        if !output.status.success() {
            eprintln!(
                "skipped: cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn a_full_filesystem_is_refused_and_leaves_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let python = host_python();
    // 1. Too small for what the manifest says: refused before writing (exit 4).
    let artifact = bulky_artifact(work.path());
    let Some(small) = Tmpfs::mount(&work.path().join("small"), "size=4m") else {
        return;
    };
    let destination = small.path.join("releases/1");
    let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("not enough free space"), "{stderr}");
    assert!(!destination.exists());
    assert_no_litter(&small.path.join("releases"), "no space, preflight");

    // 2. A manifest that understates the size: refused before anything is written (exit 3),
    //    since every reader holds the payload's declared sizes to the manifest's total; a disk
    //    cannot be filled behind a small figure.
    let understated = raw_artifact(
        &work.path().join("understated.sfx"),
        &[bulky_wheel().join("bulky-1.0-py3-none-any.whl")],
        &[("demoapp/v.py", b"V = 1\n")],
        |manifest| manifest.unpacked_bytes = 0,
    );
    let Some(tight) = Tmpfs::mount(&work.path().join("tight"), "size=20m") else {
        return;
    };
    let destination = tight.path.join("releases/1");
    let (code, _, stderr) = install_with(&understated, &destination, &python, &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("unpacks to 0 bytes"), "{stderr}");
    assert!(!destination.exists());
    assert!(
        !tight.path.join("releases").exists(),
        "written before the check"
    );
    // A figure so large that half of it again wraps around u64: more than the entries
    // declare, so a lie (exit 3), refused before anything is written.
    let wrapping = pysfx_e2e::reseal(&artifact, &work.path().join("wrapping.sfx"), |manifest| {
        manifest.unpacked_bytes = 12_297_829_382_473_034_411;
    });
    let (code, _, stderr) = install_with(&wrapping, &destination, &python, &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("unpacks to 12297829382473034411 bytes"),
        "{stderr}"
    );
    assert!(
        !tight.path.join("releases").exists(),
        "written before the check"
    );
    let used = run(Command::new("du").arg("-s").arg(&tight.path));
    eprintln!(
        "tmpfs after the failed install: {}",
        String::from_utf8_lossy(&used.stdout).trim()
    );

    // A filesystem that reports no size (ramfs) has no limit: installed, not "0 MiB available".
    let ramfs = work.path().join("ramfs");
    std::fs::create_dir_all(&ramfs).expect("mkdir");
    if run(Command::new("mount")
        .args(["-t", "ramfs", "ramfs"])
        .arg(&ramfs))
    .status
    .success()
    {
        let destination = ramfs.join("releases/1");
        let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
        let _ = Command::new("umount").arg(&ramfs).status();
        assert_eq!(code, 0, "{stderr}");
    }

    // 3. Space enough, but too few inodes for one per file and directory (the bulky wheel has
    //    4,000 files in 81 directories): refused before writing (exit 4), saying how many.
    let Some(few) = Tmpfs::mount(&work.path().join("few"), "size=64m,nr_inodes=40") else {
        return;
    };
    let destination = few.path.join("releases/1");
    let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("not enough free inodes"), "{stderr}");
    assert!(
        !few.path.join("releases").exists(),
        "written before the check"
    );
    let needed: u64 = (stderr.split("at least ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stderr}"));
    drop(few);
    // That many free (the tmpfs's root takes one): the install without byte-code fits, and
    //    the count was no more than a few over what it took.
    let options = format!("size=64m,nr_inodes={}", needed + 1);
    let Some(enough) = Tmpfs::mount(&work.path().join("enough"), &options) else {
        return;
    };
    let destination = enough.path.join("releases/1");
    let (code, _, stderr) = install_with(
        &artifact,
        &destination,
        &python,
        &[OsStr::new("--no-compile")],
    );
    assert_eq!(code, 0, "{stderr}");
    let used = run(Command::new("df").arg("--output=iused").arg(&enough.path));
    let used: u64 = (String::from_utf8_lossy(&used.stdout).lines().nth(1))
        .and_then(|line| line.trim().parse().ok())
        .expect("df --output=iused");
    assert!(
        used <= needed + 1 && used + 32 >= needed,
        "{needed} counted, {used} used"
    );
    // A manifest that overstates a wheel's directories or members asks for inodes no disk
    //    has: the lie is the artifact's (exit 3, checked against the wheel before the
    //    machine is blamed), not a shortage (exit 4), and nothing is written.
    for (what, count) in [("directories", 20_000_000), ("members", 1 << 60)] {
        let lying = pysfx_e2e::reseal(&artifact, &work.path().join("lying.sfx"), |manifest| {
            for wheel in &mut manifest.wheels {
                match what {
                    "directories" => wheel.directories = count,
                    _ => wheel.members = count,
                }
            }
        });
        let destination = enough.path.join("releases/2");
        let (code, _, stderr) = install_with(&lying, &destination, &python, &[]);
        assert_eq!(code, 3, "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("the manifest counts {count} {what}")),
            "{stderr}"
        );
        assert!(!destination.exists(), "{what}: written");
        let output = run(Command::new(&lying).arg("--verify"));
        assert_eq!(output.status.code(), Some(3), "{what}: {output:?}");
    }
    drop(enough);
    // Byte-code compiled at install, which no bundle in this artifact counts: the install
    //    fails as it writes (exit 4), naming DEST as well as the file, and leaves nothing.
    let options = format!("size=64m,nr_inodes={}", needed + 200);
    let Some(fewer) = Tmpfs::mount(&work.path().join("fewer"), &options) else {
        return;
    };
    let destination = fewer.path.join("releases/1");
    let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 4, "{stderr}");
    let installing = format!("installing {}: ", destination.display());
    assert!(stderr.contains(&installing), "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    // The disk failed, not the interpreter: the compile worker's end (a broken pipe, once
    // this side stopped reading) is not given as the reason.
    assert!(
        !stderr.contains("ended with") && !stderr.contains("BrokenPipe"),
        "{stderr}"
    );
    assert!(
        !fewer.path.join("releases").exists(),
        "{:?}",
        listing(&fewer.path)
    );
}

#[test]
fn a_terminal_install_shows_progress_and_a_piped_one_does_not() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to run the artifact on a terminal");
    }
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = bulky_artifact(work.path());
    let python = host_python();
    let command = format!(
        "'{}' -d '{}' --python '{}' --no-compile",
        artifact.display(),
        work.path().join("releases/tty").display(),
        python.display()
    );
    let output = run(Command::new("script").args(["-qec", &command, "/dev/null"]));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{shown}");
    assert!(
        shown.contains("installing") && shown.contains('\r'),
        "no progress bar on a terminal: {shown:?}"
    );
    // With byte-code from the pack written beside the wheels' files, the bar still counts
    // the wheels' bytes only: it never goes back (as it did at the second batch, here a
    // second wheel past the first's 4,000 files), nor past its length.
    let wheels = work.path().join("two-bulky");
    std::fs::create_dir(&wheels).expect("mkdir");
    let bulky = bulky_wheel().join("bulky-1.0-py3-none-any.whl");
    std::fs::copy(&bulky, wheels.join("bulky-1.0-py3-none-any.whl")).expect("cp");
    let made = run(Command::new(&python)
        .arg(pysfx_e2e::workspace_root().join("tests/fixtures/bulky_wheel.py"))
        .arg(&wheels)
        .args(["400", "bulkier"]));
    assert!(made.status.success());
    let compiled = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--python"),
            python.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("compiled.sfx"),
    );
    let command = format!(
        "'{}' -d '{}' --python '{}'",
        compiled.display(),
        work.path().join("releases/compiled").display(),
        python.display()
    );
    let output = run(Command::new("script").args(["-qec", &command, "/dev/null"]));
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{shown}");
    let positions: Vec<(u64, u64)> = (shown.split("installing").skip(1))
        .filter_map(|rest| {
            let (done, rest) = rest.split_once('/')?;
            let done = done.rsplit(' ').next()?.parse().ok()?;
            let length = rest.split(' ').next()?.parse().ok()?;
            Some((done, length))
        })
        .collect();
    assert!(!positions.is_empty(), "{shown:?}");
    for pair in positions.windows(2) {
        assert!(pair[1].0 >= pair[0].0, "the bar went back: {positions:?}");
    }
    assert!(
        positions.iter().all(|(done, length)| done <= length),
        "{positions:?}"
    );

    let destination = work.path().join("releases/piped");
    let output = run(Command::new(&artifact)
        .arg("-d")
        .arg(&destination)
        .arg("--python")
        .arg(&python)
        .arg("--no-compile"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("installing  ") && !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "piped output has a progress bar: {stderr:?}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "one log line when piped: {stderr}"
    );
}

/// The free-space check counts what this install writes: a wheel of the payload that the set
/// installed leaves out (here a bulky one in no set) needs no room.
#[test]
fn the_free_space_check_counts_only_what_is_installed() {
    let work = tempfile::tempdir().expect("tempdir");
    let python = host_python();
    let artifact = raw_artifact(
        &work.path().join("extra.sfx"),
        &[
            evil_wheels().join("good-1.0-py3-none-any.whl"),
            bulky_wheel().join("bulky-1.0-py3-none-any.whl"),
        ],
        &[("demoapp/app.py", b"x = 1\n")],
        |manifest| {
            // The bulky wheel only in a set for another Python (every wheel is in a set).
            let bulky: Vec<String> = (manifest.sets[0].wheels.iter())
                .filter(|path| path.contains("bulky"))
                .cloned()
                .collect();
            manifest.sets[0]
                .wheels
                .retain(|path| !path.contains("bulky"));
            manifest.sets.push(pysfx_format::WheelSet {
                name: "other".into(),
                target: Some(pysfx_format::Target {
                    implementation: "cp".into(),
                    python_version: "3.99".into(),
                    full_version: None,
                    abi: None,
                    platform: None,
                }),
                wheels: bulky,
                requires: Vec::new(),
            });
        },
    );
    let payload = pysfx_format::Payload::open(&artifact).expect("open");
    let bulky = payload
        .manifest()
        .wheels
        .iter()
        .find(|entry| entry.filename.starts_with("bulky"))
        .expect("the bulky wheel")
        .unpacked_bytes;
    // Room for the release and the check's margin (16 MiB), not for the bulky wheel too.
    let room = (16 << 20) + (4 << 20);
    assert!(
        bulky + bulky / 2 > 4 << 20,
        "the bulky wheel is {bulky} bytes"
    );
    let Some(small) = Tmpfs::mount(&work.path().join("small"), &room.to_string()) else {
        return;
    };
    let destination = small.path.join("releases/1");
    let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
}

/// Whether a process whose command line is `sleep SECONDS` is running.
fn sleeping(seconds: &str) -> bool {
    let wanted = format!("sleep\0{seconds}\0");
    std::fs::read_dir("/proc").is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            std::fs::read(entry.path().join("cmdline")).is_ok_and(|line| line == wanted.as_bytes())
        })
    })
}

/// `DIRECTORY/small.sfx`: one small pure wheel and an app file.
fn small_artifact(directory: &Path) -> PathBuf {
    raw_artifact(
        &directory.join("small.sfx"),
        &[evil_wheels().join("good-1.0-py3-none-any.whl")],
        &[("demoapp/app.py", b"x = 1\n")],
        |_| {},
    )
}

/// An interpreter that hangs in what it started (a wrapper script whose child never ends):
/// stopped at the query's timeout, or when the install is interrupted, with everything it
/// started — nothing of it runs on after the install.
#[test]
fn a_hanging_interpreter_leaves_nothing_running() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let hang = |seconds: &str| -> PathBuf {
        let script = work.path().join(format!("hang-{seconds}"));
        std::fs::write(&script, format!("#!/bin/sh\nsleep {seconds}\n")).expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        script
    };

    // 1. The query's timeout.
    let output = run(Command::new(&artifact)
        .arg("-d")
        .arg(work.path().join("releases/1"))
        .arg("--python")
        .arg(hang("1007"))
        .env("PYSFX_QUERY_TIMEOUT", "1"));
    assert_eq!(output.status.code(), Some(4));
    assert!(
        !sleeping("1007"),
        "the wrapper's child runs on after the timeout"
    );

    // 2. SIGTERM while the interpreter is asked.
    let mut child = Command::new(&artifact)
        .arg("-d")
        .arg(work.path().join("releases/2"))
        .arg("--python")
        .arg(hang("1008"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sleeping("1008") {
        assert!(Instant::now() < deadline, "the wrapper never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let term = run(Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string()));
    assert!(term.status.success());
    let status = child.wait().expect("wait");
    assert!(!status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleeping("1008") {
        assert!(
            Instant::now() < deadline,
            "the wrapper's child runs on after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // 3. An interpreter whose byte-compile workers (and only they: `-B`) hang in a child of
    // the wrapper, which holds the worker's pipes: given up on at the compile timeout, with
    // what the wrapper started, and the install fails cleanly.
    let wrapper = compile_wrapper(work.path(), "compile-hangs", "sleep 1009");
    let started = Instant::now();
    let destination = work.path().join("releases/3");
    let output = run(Command::new("timeout")
        .arg("100")
        .arg(&artifact)
        .arg("-d")
        .arg(&destination)
        .arg("--python")
        .arg(&wrapper)
        .env("PYSFX_COMPILE_TIMEOUT", "2"));
    // The interpreter's fault (exit 4), whichever worker's failure is told: the one that
    // gave no answer, or one that did not exit once there were no more files.
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(90), "{output:?}");
    assert!(!destination.exists());
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleeping("1009") {
        assert!(
            Instant::now() < deadline,
            "the worker's child runs on after the timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An interpreter that starts a child holding its output and exits without a usable answer:
/// the query fails (exit 4) and the child, in the query's process group, does not run on.
#[test]
fn what_a_failed_query_started_does_not_run_on() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let script = work.path().join("starts-a-daemon");
    std::fs::write(&script, "#!/bin/sh\nsleep 1011 &\necho started\n").expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let destination = work.path().join("releases/1");
    let (code, _, stderr) = install_with(&artifact, &destination, &script, &[]);
    assert_eq!(code, 4, "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleeping("1011") {
        assert!(Instant::now() < deadline, "the query's child runs on");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `DIRECTORY/NAME`: an interpreter (CPython 3.11 under the wrapper's name, so that the venv
/// runs the wrapper) that runs `worker` (shell) instead when started as a byte-compile worker
/// (`-B`).
fn compile_wrapper(directory: &Path, name: &str, worker: &str) -> PathBuf {
    let wrapper = directory.join(name);
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\ncase \" $* \" in *\" -B \"*) {worker};; esac\nexec -a \"$0\" {} \"$@\"\n",
            pysfx_e2e::python(11).path.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    wrapper
}

/// An interpreter whose byte-compile workers (and only they: `-B`) die, saying why: the
/// install fails as the machine's (exit 4, as for one that hangs), naming the exit status and
/// the interpreter's last words, and leaves nothing.
#[test]
fn a_compile_worker_that_dies_is_named_with_its_last_words() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    let wrapper = compile_wrapper(
        work.path(),
        "compile-dies",
        "echo 'Traceback: boom' >&2; exit 3",
    );
    let destination = work.path().join("releases/1");
    let (code, result, stderr) = install_with(&artifact, &destination, &wrapper, &[]);
    assert_eq!(code, 4, "{result}\n{stderr}");
    assert!(
        stderr.contains("ended with exit status: 3") && stderr.contains("Traceback: boom"),
        "{stderr}"
    );
    assert!(!destination.exists());
    assert_no_litter(&work.path().join("releases"), "a compile worker that dies");
}

/// A compile worker that stalls part-way through an answer (half its line, or its line and
/// fewer bytes of code than it announced) is given up on at the compile timeout as one that
/// never answers is (exit 4); and a worker that compiles and exits but leaves a `setsid`
/// child holding its stderr does not keep the install waiting for that child.
#[test]
fn a_compile_worker_that_stalls_mid_answer_or_leaves_a_daemon_holds_nothing_up() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = small_artifact(work.path());
    // The install with `wrapper` as the interpreter, given up on after 100 s.
    let install = |wrapper: &Path, destination: &Path| {
        run(Command::new("timeout")
            .arg("100")
            .arg(&artifact)
            .arg("-d")
            .arg(destination)
            .arg("--python")
            .arg(wrapper)
            .env("PYSFX_COMPILE_TIMEOUT", "2"))
    };
    for (name, worker) in [
        ("half-a-line", "read line; printf 10; sleep 1013"),
        (
            "short-code",
            "read line; echo '100 0 0'; printf abc; sleep 1013",
        ),
    ] {
        let wrapper = compile_wrapper(work.path(), name, worker);
        let destination = work.path().join("releases").join(name);
        let started = Instant::now();
        let output = install(&wrapper, &destination);
        // (Or, from the worker that had no file to answer for, its end by SIGPIPE once
        // its pipes closed: the interpreter's fault too.)
        assert_eq!(output.status.code(), Some(4), "{name}: {output:?}");
        assert!(started.elapsed() < Duration::from_secs(60), "{name}");
        assert!(!destination.exists(), "{name}");
    }
    let wrapper = compile_wrapper(
        work.path(),
        "leaves-a-daemon",
        "setsid sleep 1014 >/dev/null 2>&2 </dev/null &",
    );
    let destination = work.path().join("releases/daemon");
    let started = Instant::now();
    let output = install(&wrapper, &destination);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(60), "{output:?}");
    let _ = Command::new("pkill").args(["-f", "sleep 1014"]).status();
    // One whose child floods its stderr for as long as the run lasts: only the end of it is
    // kept (the run succeeds within 256 MiB of address space). (Not beside the release above,
    // which it would link its byte-code from, compiling nothing.)
    let wrapper = compile_wrapper(work.path(), "floods", "(yes flood-1015 >&2 &)");
    let destination = work.path().join("elsewhere/floods");
    let output = run(Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 262144 && exec timeout 100 \"$0\" -d \"$1\" --python \"$2\"")
        .arg(&artifact)
        .arg(&destination)
        .arg(&wrapper));
    let _ = Command::new("pkill")
        .args(["-f", "yes flood-1015"])
        .status();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    // One that dies after a last line of 100 KB: the message gives its end, not all of it.
    let wrapper = compile_wrapper(
        work.path(),
        "long-last-words",
        "head -c 100000 /dev/zero | tr '\\0' y >&2; echo ' LAST-WORDS' >&2; exit 7",
    );
    let destination = work.path().join("apart/long");
    let (code, _, stderr) = install_with(&artifact, &destination, &wrapper, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("LAST-WORDS") && stderr.len() < 2000,
        "{stderr}"
    );
    assert_no_litter(
        &work.path().join("releases"),
        "a compile worker that stalls",
    );
}

/// An address-space limit (`ulimit -v`): one too small for any install is refused before
/// anything is written (exit 4, naming it), where an allocation failing midway would abort
/// the run and leave its tree; 96 MiB is enough (the allocator keeps to one arena under such
/// a limit: each other arena reserves 64 MiB of address space).
#[test]
fn an_address_space_limit_is_refused_when_too_small_and_enough_at_96_mib() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = bulky_artifact(work.path());
    let parent = work.path().join("releases");
    let under_limit = |kib: u32, name: &str| {
        run(Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {kib} && exec \"$0\" -d \"$1\" --python \"$2\" --no-compile --json"
            ))
            .arg(&artifact)
            .arg(parent.join(name))
            .arg(host_python()))
    };
    let small = under_limit(16 * 1024, "small");
    let stderr = String::from_utf8_lossy(&small.stderr);
    assert_eq!(small.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("ulimit -v"), "{stderr}");
    assert!(!parent.join("small").exists());
    let enough = under_limit(96 * 1024, "enough");
    let stderr = String::from_utf8_lossy(&enough.stderr);
    assert_eq!(enough.status.code(), Some(0), "{stderr}");
    assert_complete(&parent.join("enough"));
    assert_no_litter(&parent, "an address-space limit");
}

/// A process and thread limit (`ulimit -u`: a container's pids limit, systemd's `TasksMax`)
/// never makes the artifact panic: as a user of its own, under limits from none to spare to
/// enough, every run either installs (exit 0) or is refused as the machine's (exit 4), prints
/// one JSON object, and leaves no tree beside DEST. Threads it cannot have are work done on
/// fewer; an interpreter or a compile worker it cannot start is exit 4.
#[test]
fn a_process_limit_never_panics_nor_leaves_a_tree() {
    let Some(python) = pysfx_e2e::nobody_python() else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    // Byte-code compiled at install: the compile workers are started too.
    let wheels = work.path().join("wheels");
    pysfx_e2e::tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    pysfx_e2e::tiny_wheel(&wheels, "otherlib", "2.0", &[]);
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("site.sfx"),
    );
    let parent = work.path().join("releases");
    std::fs::create_dir(&parent).expect("mkdir");
    for path in [work.path(), parent.as_path()] {
        let opened = run(Command::new("chmod").arg("0777").arg(path));
        assert!(opened.status.success());
    }
    let mut installed = 0;
    for limit in [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 64] {
        let destination = parent.join(format!("u{limit}"));
        // A uid of its own: the limit counts that user's processes only.
        let output = run(Command::new("setpriv")
            .args([
                "--reuid=61234",
                "--regid=61234",
                "--clear-groups",
                "bash",
                "-c",
            ])
            .arg(format!(
                "ulimit -u {limit} && exec \"$0\" -d \"$1\" --python \"$2\" --json -q"
            ))
            .arg(&artifact)
            .arg(&destination)
            .arg(python));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let code = output.status.code();
        assert!(
            matches!(code, Some(0 | 4)),
            "ulimit -u {limit}: {code:?} {stderr}"
        );
        assert!(!stderr.contains("panicked"), "ulimit -u {limit}: {stderr}");
        let result: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("ulimit -u {limit}: {error}: {stderr}"));
        assert!(result.is_object(), "ulimit -u {limit}: {result}");
        if code == Some(0) {
            let imported = run(Command::new(destination.join("venv/bin/python"))
                .args(["-c", "import tinylib, otherlib"]));
            assert!(imported.status.success(), "ulimit -u {limit}: {imported:?}");
            assert!(destination.join("pysfx-receipt.json").is_file());
            installed += 1;
        } else {
            assert!(!destination.exists(), "ulimit -u {limit}: DEST exists");
        }
        assert_no_litter(&parent, &format!("ulimit -u {limit}"));
    }
    assert!(installed > 0, "no limit was enough to install");
}

/// A command run the way a parent that ignores SIGCHLD runs it: the disposition is inherited
/// across exec (some supervisors and daemons leave it so).
fn with_sigchld_ignored(command: &Command) -> Command {
    let mut wrapped = Command::new(host_python());
    wrapped.args([
        "-c",
        "import os, signal, sys\n\
         signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
         os.execv(sys.argv[1], sys.argv[1:])",
    ]);
    wrapped.arg(command.get_program()).args(command.get_args());
    wrapped
}

/// With SIGCHLD ignored the kernel reaps each child at once, and waiting for one fails
/// (ECHILD): the packer and the stub set its default back before they start any, so the pack
/// (its interpreter asked, its byte-code compiled) and the install (the interpreter's answer,
/// byte-code compiled by workers) work as under any parent.
#[test]
fn a_parent_that_ignores_sigchld_changes_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let wheels = work.path().join("wheels");
    pysfx_e2e::tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let python = host_python();
    let app = make_app(work.path(), "demoapp");
    let with = [OsStr::new("--python"), python.as_os_str()];
    let pack_args = |with_python: bool| {
        pysfx_e2e::app_and_wheels(&app, &wheels, if with_python { &with } else { &[] })
    };
    // Byte-code compiled at pack time by the interpreter the packer asks.
    let packed = work.path().join("packed.sfx");
    let output = run(&mut with_sigchld_ignored(&pysfx_e2e::pack_command(
        &pack_args(true),
        &packed,
    )));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // And an artifact whose byte-code the install compiles.
    let plain = pack(&pack_args(false), &work.path().join("plain.sfx"));
    for (artifact, name) in [(&packed, "packed"), (&plain, "plain")] {
        let destination = work.path().join("releases").join(name);
        let mut command = Command::new(artifact);
        command
            .arg("-d")
            .arg(&destination)
            .arg("--python")
            .arg(&python)
            .arg("--json");
        let output = run(&mut with_sigchld_ignored(&command));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{name}: {stderr}");
        let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(result["changed"], true, "{name}: {result}");
        let imported = run(Command::new(destination.join("venv/bin/python"))
            .args(["-c", "import tinylib, appcore"]));
        assert!(imported.status.success(), "{name}: {imported:?}");
        let cached = std::fs::read_dir(destination.join("venv/lib"))
            .expect("lib")
            .flatten()
            .any(|entry| {
                let pycache = entry.path().join("site-packages/tinylib/__pycache__");
                std::fs::read_dir(pycache).is_ok_and(|mut files| files.next().is_some())
            });
        assert!(cached, "{name}: no byte-code for tinylib");
    }
}
