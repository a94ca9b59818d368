//! SPEC "Releases over time", linked installs: when a complete release of the same app for the
//! same interpreter lies beside DEST (LINK's target first, else the newest), every file of a
//! distribution installed there from the very same wheel is hard-linked into the new release,
//! byte-code included; a file changed since it was installed is unpacked instead; per-release
//! files are always written fresh; another filesystem or `--copy` means plain unpacking; and
//! `--check` sees an edit of a shared file in every release that links it.
//!
//! Black-box: two artifacts of one app that share three wheels (chardet, pysfx-datapkg and, for
//! one interpreter, MarkupSafe) and differ in the app and in one wheel (tinylib 1.0 → 2.0),
//! installed side by side; the releases are compared by inode, content and `--check`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsStr;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{
    assert_pip_check, contained_wheels, datapkg_wheel, make_app, pack, python, pythons, run,
    run_json, test_wheels, tiny_wheel, tree, Python,
};

/// Distributions both artifacts carry from the same wheel files (by dist-info prefix);
/// MarkupSafe only where the artifacts were made for one interpreter.
const SHARED: [&str; 3] = ["chardet-", "pysfx_datapkg-", "markupsafe-"];

/// v1 and v2 of `demoapp`, and the wheels they share.
struct Artifacts {
    v1: PathBuf,
    v2: PathBuf,
    /// The shared wheel files, to read pristine members from.
    shared_wheels: Vec<PathBuf>,
}

/// Packs v1 (tinylib 1.0) and v2 (tinylib 2.0, another greeting in the app) under `root`. Both
/// carry the same chardet and pysfx-datapkg wheel files, and with `compiled_for = Some(minor)`
/// the same MarkupSafe wheel for CPython 3.minor (a compiled extension to link); without it the
/// wheels are pure and the artifacts serve every interpreter.
fn artifacts(root: &Path, compiled_for: Option<u32>) -> Artifacts {
    artifacts_packed_with(root, compiled_for, &[])
}

/// [`artifacts`], packed with `extra` options too (`--python PY`: byte-code compiled at pack
/// time).
/// CPython 3.11, a scratch directory, and artifacts v1 and v2 whose byte-code `pysfx pack`
/// compiled with it (bundles in the payload).
fn compiled_at_pack_time() -> (Python, tempfile::TempDir, Artifacts) {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts_packed_with(
        work.path(),
        Some(11),
        &[OsStr::new("--python"), python.path.as_os_str()],
    );
    (python, work, artifacts)
}

fn artifacts_packed_with(root: &Path, compiled_for: Option<u32>, extra: &[&OsStr]) -> Artifacts {
    let fetched = test_wheels(compiled_for.unwrap_or(11));
    let pick = |prefix: &str| -> PathBuf {
        std::fs::read_dir(&fetched)
            .expect("the fetched wheels")
            .flatten()
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .is_some_and(|name| name.to_string_lossy().to_lowercase().starts_with(prefix))
            })
            .unwrap_or_else(|| panic!("no {prefix}* wheel in {}", fetched.display()))
    };
    let mut shared_wheels = vec![pick("chardet-")];
    shared_wheels.extend(
        std::fs::read_dir(datapkg_wheel())
            .expect("the datapkg wheel")
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "whl")),
    );
    if compiled_for.is_some() {
        shared_wheels.push(pick("markupsafe-"));
    }
    let pack_version = |number: u32, tinylib: &str, greeting: &str| -> PathBuf {
        let wheels = root.join(format!("wheels-{number}"));
        std::fs::create_dir_all(&wheels).expect("create the wheel directory");
        for wheel in &shared_wheels {
            std::fs::copy(wheel, wheels.join(wheel.file_name().expect("a name")))
                .expect("copy a shared wheel");
        }
        tiny_wheel(&wheels, "tinylib", tinylib, &[]);
        let app = make_app(&root.join(format!("src-{number}")), "demoapp");
        std::fs::write(
            app.join("appcore/__init__.py"),
            format!("GREETING = {greeting:?}\n"),
        )
        .expect("write the app");
        let args = pysfx_e2e::app_and_wheels(&app, &wheels, extra);
        pack(&args, &root.join(format!("v{number}.sfx")))
    };
    let v1 = pack_version(1, "1.0", "hello from release 1");
    let v2 = pack_version(2, "2.0", "hello from release 2");
    Artifacts {
        v1,
        v2,
        shared_wheels,
    }
}

/// `ARTIFACT -d RELEASE --python PYTHON EXTRA… --json`; panics unless it installed. Returns the
/// JSON. (Without the suite's `pip check` after each install, 2 s each: the releases here are
/// of two small artifacts, and the test of linking checks the linked release with pip.)
fn deploy(artifact: &Path, release: &Path, python: &Path, extra: &[&OsStr]) -> serde_json::Value {
    deploy_logged(artifact, release, python, extra).0
}

/// `ARTIFACT -d RELEASE --python PYTHON EXTRA… --json`: exit code, JSON and stderr.
fn install_json(
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
    run_json(artifact, &args)
}

/// [`deploy`], also returning what the install logged (with `-v`, its debug lines).
fn deploy_logged(
    artifact: &Path,
    release: &Path,
    python: &Path,
    extra: &[&OsStr],
) -> (serde_json::Value, String) {
    let (code, result, stderr) = install_json(artifact, release, python, extra);
    assert_eq!(code, 0, "{}: {result}\n{stderr}", release.display());
    assert_eq!(result["changed"], true, "{}: {result}", release.display());
    (result, stderr)
}

/// How many linked files `-v` says were known unchanged by their stamps (not read).
fn stamped_links(log: &str) -> u64 {
    let line = log
        .lines()
        .find(|line| line.contains("stamped_links="))
        .unwrap_or_else(|| panic!("no stamped_links in the log:\n{log}"));
    let (_, count) = line.split_once("stamped_links=").expect("the field");
    count
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

/// `linked_files` and `linked_bytes` from an install's `--json` (integers, always present).
fn linked(result: &serde_json::Value) -> (u64, u64) {
    let number = |key: &str| {
        result[key]
            .as_u64()
            .unwrap_or_else(|| panic!("--json has no integer {key}: {result}"))
    };
    (number("linked_files"), number("linked_bytes"))
}

/// `ARTIFACT --check RELEASE --json`: exit code and the report.
fn check(artifact: &Path, release: &Path) -> (i32, serde_json::Value) {
    let (code, report, _) = run_json(artifact, &[OsStr::new("--check"), release.as_os_str()]);
    (code, report)
}

fn assert_intact(artifact: &Path, release: &Path) {
    let (code, report) = check(artifact, release);
    assert_eq!(
        (code, &report["intact"]),
        (0, &serde_json::json!(true)),
        "--check {}: {report}",
        release.display()
    );
}

/// The `modified` paths of a `--check` report.
fn modified(report: &serde_json::Value) -> Vec<String> {
    report["modified"]
        .as_array()
        .unwrap_or_else(|| panic!("--check lists no modified files: {report}"))
        .iter()
        .map(|path| path.as_str().expect("a path").to_string())
        .collect()
}

/// (st_dev, st_ino) of a path, links not followed.
fn inode(path: &Path) -> (u64, u64) {
    let metadata = std::fs::symlink_metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    (metadata.dev(), metadata.ino())
}

fn link_count(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .nlink()
}

/// A release's site-packages, relative to the release.
fn site_packages(minor: u32) -> PathBuf {
    PathBuf::from(format!("venv/lib/python3.{minor}/site-packages"))
}

/// `a/b/../c` → `a/c`, without touching the disk (RECORD rows of scripts and data climb out of
/// site-packages with `../../../`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The dist-info directories of the shared distributions in a release, relative to it.
fn shared_dist_infos(release: &Path, minor: u32) -> Vec<PathBuf> {
    let site = site_packages(minor);
    let mut found: Vec<PathBuf> = std::fs::read_dir(release.join(&site))
        .expect("site-packages")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            let lower = name.to_lowercase();
            lower.ends_with(".dist-info") && SHARED.iter().any(|prefix| lower.starts_with(prefix))
        })
        .map(|name| site.join(name))
        .collect();
    found.sort();
    found
}

/// The rows of a RECORD: path as written → (hash, size).
fn record_rows(record: &Path) -> BTreeMap<String, (String, String)> {
    std::fs::read_to_string(record)
        .unwrap_or_else(|error| panic!("{}: {error}", record.display()))
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            // `path,hash,size`; a path holding a comma is quoted.
            let mut fields = line.rsplitn(3, ',');
            let size = fields.next().unwrap_or_default().to_string();
            let hash = fields.next().unwrap_or_default().to_string();
            let path = fields
                .next()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string();
            (path, (hash, size))
        })
        .collect()
}

/// What the shared distributions' RECORDs list in `release`, relative to it, split into the
/// files that come from the wheels as they are, and the scripts that name the release (console
/// launchers, `#!python` scripts: per-release). The installer's own files (RECORD, INSTALLER,
/// REQUESTED, direct_url.json) are in neither.
fn shared_files(release: &Path, minor: u32) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let site = site_packages(minor);
    let release_path = release.to_string_lossy().into_owned();
    let (mut from_wheels, mut scripts) = (Vec::new(), Vec::new());
    for dist_info in shared_dist_infos(release, minor) {
        for (row, (hash, _)) in record_rows(&release.join(&dist_info).join("RECORD")) {
            // Rows without a hash: RECORD's own, and the byte-code the install compiled (linked
            // only from a release of the very same bundle: counted apart).
            if hash.is_empty() {
                continue;
            }
            let relative = normalize(&site.join(row));
            let name = relative.file_name().expect("a name").to_string_lossy();
            if relative.parent() == Some(dist_info.as_path())
                && ["RECORD", "INSTALLER", "REQUESTED", "direct_url.json"].contains(&name.as_ref())
            {
                continue;
            }
            let bytes = std::fs::read(release.join(&relative)).expect("a recorded file");
            if contains(&bytes, release_path.as_bytes()) {
                scripts.push(relative);
            } else {
                from_wheels.push(relative);
            }
        }
    }
    (from_wheels, scripts)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// The files every release gets fresh: pyvenv.cfg, the shared distributions' RECORD and
/// INSTALLER, pysfx's hooks, the receipt, the stamps and the app's files (relative to the
/// release).
fn per_release_files(release: &Path, minor: u32) -> Vec<PathBuf> {
    let site = site_packages(minor);
    let mut files = vec![
        PathBuf::from("venv/pyvenv.cfg"),
        PathBuf::from("pysfx-receipt.json"),
        PathBuf::from("pysfx-stamps"),
        site.join("demoapp.pth"),
        site.join("loadenv-init.pth"),
        site.join("loadenv.py"),
    ];
    for dist_info in shared_dist_infos(release, minor) {
        files.push(dist_info.join("RECORD"));
        files.push(dist_info.join("INSTALLER"));
    }
    for relative in tree(&release.join("demoapp")) {
        let path = Path::new("demoapp").join(relative);
        if release.join(&path).is_file() {
            files.push(path);
        }
    }
    files
}

/// The regular files of `newer` that share an inode with a file of `older`: how many, and
/// their bytes (what `linked_files` and `linked_bytes` count).
fn shared_inodes(older: &Path, newer: &Path) -> (u64, u64) {
    let regular = |root: &Path| -> Vec<(PathBuf, std::fs::Metadata)> {
        tree(root)
            .into_iter()
            .map(|relative| root.join(relative))
            .filter_map(|path| {
                let metadata = std::fs::symlink_metadata(&path).ok()?;
                metadata.is_file().then_some((path, metadata))
            })
            .collect()
    };
    let older: HashSet<(u64, u64)> = regular(older)
        .into_iter()
        .map(|(_, metadata)| (metadata.dev(), metadata.ino()))
        .collect();
    regular(newer)
        .into_iter()
        .filter(|(_, metadata)| older.contains(&(metadata.dev(), metadata.ino())))
        .fold((0, 0), |(files, bytes), (_, metadata)| {
            (files + 1, bytes + metadata.len())
        })
}

/// A member's bytes from one of the shared wheels.
fn wheel_member(wheels: &[PathBuf], member: &str) -> Vec<u8> {
    for wheel in wheels {
        let file = std::fs::File::open(wheel).expect("open the wheel");
        let mut archive = zip::ZipArchive::new(file).expect("a zip");
        let mut bytes = Vec::new();
        if let Ok(mut entry) = archive.by_name(member) {
            entry.read_to_end(&mut bytes).expect("read the member");
            return bytes;
        };
    }
    panic!("no shared wheel holds {member}")
}

/// Release 1 of v1 and release 2 of v2 in `root/releases`, with CPython 3.`python.minor` and
/// `extra` options; returns release 2's `--json`.
fn two_releases(
    artifacts: &Artifacts,
    root: &Path,
    python: &Python,
    extra: &[&OsStr],
) -> (PathBuf, PathBuf, serde_json::Value) {
    let (first, second) = (root.join("releases/1"), root.join("releases/2"));
    let result = deploy(&artifacts.v1, &first, &python.path, extra);
    assert_eq!(
        linked(&result),
        (0, 0),
        "nothing lies beside release 1: {result}"
    );
    let result = deploy(&artifacts.v2, &second, &python.path, extra);
    (first, second, result)
}

/// Runs `code` with a release's interpreter, byte-code writing allowed; returns stdout.
fn python_in(release: &Path, code: &str) -> String {
    let output = run(Command::new(release.join("venv/bin/python"))
        .args(["-c", code])
        .env_remove("PYTHONDONTWRITEBYTECODE"));
    assert!(
        output.status.success(),
        "{}: {}",
        release.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_release_beside_links_the_files_of_shared_wheels_and_writes_its_own_fresh() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let (first, second, result) = two_releases(&artifacts, work.path(), &python, &[]);
    assert_pip_check(&second.join("venv"));
    let (linked_files, linked_bytes) = linked(&result);
    assert!(linked_files > 0 && linked_bytes > 0, "{result}");

    // Every file of a shared wheel is the same inode in both releases.
    let (from_wheels, scripts) = shared_files(&first, 11);
    assert!(from_wheels.len() > 50, "{from_wheels:?}");
    for relative in &from_wheels {
        assert_eq!(
            inode(&first.join(relative)),
            inode(&second.join(relative)),
            "{} is not linked from release 1",
            relative.display()
        );
    }
    // The scripts that name their release are the launchers and the `#!python` script.
    let script_names: BTreeSet<String> = scripts
        .iter()
        .map(|path| {
            assert!(path.starts_with("venv/bin"), "{}", path.display());
            path.file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        script_names,
        ["chardetect", "datapkg-cli", "datapkg-gui", "datapkg-hello"]
            .map(String::from)
            .into(),
    );
    // Per-release files are new inodes, linked nowhere else.
    for relative in scripts.iter().chain(&per_release_files(&second, 11)) {
        let (older, newer) = (first.join(relative), second.join(relative));
        assert_ne!(
            inode(&older),
            inode(&newer),
            "{} is shared with release 1",
            relative.display()
        );
        assert_eq!(link_count(&newer), 1, "{}", relative.display());
    }
    // The wheel that changed is unpacked.
    let tinylib = second.join(site_packages(11)).join("tinylib/__init__.py");
    assert_eq!(link_count(&tinylib), 1);
    assert_eq!(
        std::fs::read_to_string(&tinylib).expect("tinylib"),
        "VALUE = 'tinylib 2.0'\n"
    );
    // The counts are what is shared on disk.
    assert_eq!(
        (linked_files, linked_bytes),
        shared_inodes(&first, &second),
        "linked_files and linked_bytes against the inodes release 2 shares with release 1"
    );

    // Both releases check intact, with either artifact.
    for artifact in [&artifacts.v1, &artifacts.v2] {
        for release in [&first, &second] {
            assert_intact(artifact, release);
        }
    }
    // Release 2 runs: its own app, the changed wheel, the linked modules, extension, launcher.
    let report = python_in(
        &second,
        "import json, appcore, chardet, datapkg, tinylib\nfrom markupsafe import _speedups\n\
         print(json.dumps([appcore.GREETING, tinylib.VALUE, chardet.__file__, _speedups.__file__,\n\
         chardet.detect(b'plain ascii')['encoding']]))",
    );
    let report: serde_json::Value = serde_json::from_str(&report).expect("json");
    assert_eq!(report[0], "hello from release 2");
    assert_eq!(report[1], "tinylib 2.0");
    for module in [&report[2], &report[3]] {
        assert!(
            Path::new(module.as_str().expect("a path")).starts_with(&second),
            "{report}"
        );
    }
    assert_eq!(report[4], "ascii");
    let launcher = run(Command::new(second.join("venv/bin/chardetect")).arg("--version"));
    assert!(
        String::from_utf8_lossy(&launcher.stdout).contains("chardetect 4.0.0"),
        "{}",
        String::from_utf8_lossy(&launcher.stderr)
    );
}

#[test]
fn an_edit_in_place_of_a_linked_file_shows_in_every_release_that_links_it() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let no_compile = [OsStr::new("--no-compile")];
    let (first, second, result) = two_releases(&artifacts, work.path(), &python, &no_compile);
    assert!(linked(&result).0 > 0, "{result}");
    let relative = site_packages(11).join("chardet/version.py");
    assert_eq!(
        inode(&first.join(&relative)),
        inode(&second.join(&relative))
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(second.join(&relative))
        .expect("open in place");
    file.write_all(b"EDITED = True\n").expect("append");
    drop(file);
    assert_modified_in_each(&artifacts.v2, [&first, &second], &relative);
}

/// `--check` of each of `releases` finds `relative` modified and nothing else: exit 3.
fn assert_modified_in_each(artifact: &Path, releases: [&Path; 2], relative: &Path) {
    for release in releases {
        let (code, report) = check(artifact, release);
        assert_eq!(code, 3, "--check {}: {report}", release.display());
        assert_eq!(
            modified(&report),
            [relative.to_string_lossy()],
            "{}",
            release.display()
        );
    }
}

/// Byte-code compiled at pack time is linked too, and so shared: one edited in place (the
/// code changed, the header kept, so the interpreter runs it) shows in `--check` of every
/// release that links it; one Python wrote again since (a new file) is no difference.
#[test]
fn an_edit_in_place_of_linked_byte_code_shows_in_every_release_that_links_it() {
    let (python, work, artifacts) = compiled_at_pack_time();
    edit_linked_byte_code_in_place(&python, work.path(), &artifacts, None);
}

/// The same of byte-code compiled at install: its digest is recorded as it is written.
#[test]
fn an_edit_in_place_of_byte_code_compiled_at_install_shows_too() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    edit_linked_byte_code_in_place(&python, work.path(), &artifacts, None);
}

/// The same with `--check` run as on CentOS 7's kernel, which gives no birth time (no
/// `statx`): the byte-code is still held to its bytes by its inode.
#[test]
fn an_edit_in_place_of_linked_byte_code_shows_on_a_kernel_without_birth_times() {
    let Some(kernel) = pysfx_e2e::tools::kernel310() else {
        eprintln!("skipped: needs ../shared/tools/kernel310.py and python3-seccomp");
        return;
    };
    let (python, work, artifacts) = compiled_at_pack_time();
    edit_linked_byte_code_in_place(&python, work.path(), &artifacts, Some(&kernel));
}

/// Root's `--check` of a release another user owns (deployed as root here, then given to uid
/// 65534 with its stamps) compares its byte-code as the owner's own check does: the stamps
/// are DEST's owner's.
#[test]
fn root_checks_the_byte_code_of_a_release_another_user_owns() {
    let root =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc"));
    if root != 0 {
        eprintln!("skipped: needs root (to give the release to another user)");
        return;
    }
    let (python, work, artifacts) = compiled_at_pack_time();
    let release = work.path().join("releases/1");
    deploy(&artifacts.v2, &release, &python.path, &[]);
    let given = run(Command::new("chown")
        .args(["-hR", "65534:65534"])
        .arg(&release));
    assert!(given.status.success());
    assert_intact(&artifacts.v2, &release);
    let pyc = site_packages(11).join("chardet/__pycache__/version.cpython-311.pyc");
    edit_last_byte_in_place(&release.join(&pyc));
    let (code, report) = check(&artifacts.v2, &release);
    assert_eq!(code, 3, "{report}");
    assert_eq!(modified(&report), [pyc.to_string_lossy()], "{report}");
}

/// [`check`], run through `kernel` ([`pysfx_e2e::tools::kernel310`]) when given.
fn check_under(
    kernel: Option<&[PathBuf; 2]>,
    artifact: &Path,
    release: &Path,
) -> (i32, serde_json::Value) {
    let Some([system_python, tool]) = kernel else {
        return check(artifact, release);
    };
    let output = run(Command::new(system_python)
        .arg(tool)
        .arg(artifact)
        .arg("--check")
        .arg(release)
        .arg("--json"));
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "--check --json printed no JSON object ({error}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

/// Two releases of `artifacts` linked under `root`; chardet's `version.pyc` edited in place in
/// the second shows in `--check` (run through `kernel` when given) of both; written again as
/// a new file it is no difference.
fn edit_linked_byte_code_in_place(
    python: &Python,
    root: &Path,
    artifacts: &Artifacts,
    kernel: Option<&[PathBuf; 2]>,
) {
    let (first, second, result) = two_releases(artifacts, root, python, &[]);
    assert!(linked(&result).0 > 0, "{result}");
    let pyc = site_packages(11).join("chardet/__pycache__/version.cpython-311.pyc");
    assert_eq!(inode(&first.join(&pyc)), inode(&second.join(&pyc)));
    let intact = |release: &Path| {
        let (code, report) = check_under(kernel, &artifacts.v2, release);
        assert_eq!(
            (code, &report["intact"]),
            (0, &serde_json::json!(true)),
            "{report}"
        );
        // As many files compared as where the kernel gives birth times: the byte-code too.
        let (_, here) = check(&artifacts.v2, release);
        assert_eq!(report["checked"], here["checked"], "{report}\n{here}");
    };
    for release in [&first, &second] {
        intact(release);
    }
    edit_last_byte_in_place(&second.join(&pyc));
    for release in [&first, &second] {
        let (code, report) = check_under(kernel, &artifacts.v2, release);
        assert_eq!(code, 3, "--check {}: {report}", release.display());
        assert_eq!(modified(&report), [pyc.to_string_lossy()], "{report}");
    }
    // Written again as a new file (as Python does, to a temporary name renamed over it), with
    // other bytes: no difference in the release that holds it.
    let fresh = second.join(&pyc).with_extension("new");
    std::fs::write(&fresh, b"not the install's byte-code").expect("write");
    std::fs::rename(&fresh, second.join(&pyc)).expect("rename");
    intact(&second);
}

/// Changes the last byte of the file at `path`, in place (the same inode; for a `.pyc`, the
/// code changed and the header kept, so the interpreter would run it).
fn edit_last_byte_in_place(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open in place");
    file.write_all(&bytes).expect("overwrite");
}

/// Edits two files of release 1 in place: appends a line to a module, and changes one byte of
/// a data file keeping its size and mtime (so only the content tells). Returns both paths.
fn edit_in_place(release: &Path, minor: u32) -> [PathBuf; 2] {
    let module = site_packages(minor).join("chardet/version.py");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(release.join(&module))
        .expect("open the module");
    file.write_all(b"EDITED = True\n").expect("append");
    drop(file);

    let data = PathBuf::from("venv/share/pysfx-datapkg/readme.txt");
    let path = release.join(&data);
    let before = std::fs::metadata(&path).expect("the data file");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open the data file");
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read");
    let first_letter = bytes
        .iter()
        .position(u8::is_ascii_alphabetic)
        .expect("a letter");
    bytes[first_letter] ^= 0x20; // its case
    file.rewind().expect("rewind");
    file.write_all(&bytes).expect("rewrite in place");
    file.set_times(std::fs::FileTimes::new().set_modified(before.modified().expect("mtime")))
        .expect("keep the mtime");
    drop(file);
    let after = std::fs::metadata(&path).expect("the data file");
    assert_eq!(
        (after.ino(), after.len(), after.mtime(), after.mtime_nsec()),
        (
            before.ino(),
            before.len(),
            before.mtime(),
            before.mtime_nsec()
        )
    );
    [module, data]
}

/// The two files [`edit_in_place`] edits, as their wheels ship them.
fn pristine_of_edited(artifacts: &Artifacts) -> [Vec<u8>; 2] {
    [
        wheel_member(&artifacts.shared_wheels, "chardet/version.py"),
        wheel_member(
            &artifacts.shared_wheels,
            "pysfx_datapkg-1.0.data/data/share/pysfx-datapkg/readme.txt",
        ),
    ]
}

#[test]
fn a_file_changed_since_it_was_installed_is_unpacked_not_linked() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let (first, second) = (
        work.path().join("releases/1"),
        work.path().join("releases/2"),
    );
    let no_compile = [OsStr::new("--no-compile")];
    deploy(&artifacts.v1, &first, &python.path, &no_compile);
    let edited = edit_in_place(&first, 11);
    // A file given capabilities (`setcap cap_net_bind_service+ep`), its bytes unchanged.
    let capable = site_packages(11).join("chardet/universaldetector.py");
    let set = run(Command::new(&python.path).arg("-c").arg(format!(
        "import os, struct; os.setxattr({:?}, 'security.capability', \
         struct.pack('<5I', 0x02000001, 1 << 10, 0, 0, 0))",
        first.join(&capable)
    )));
    let capabilities = set.status.success();
    if !capabilities {
        eprintln!(
            "not checked: cannot set file capabilities here: {}",
            String::from_utf8_lossy(&set.stderr).trim()
        );
    }
    let result = deploy(&artifacts.v2, &second, &python.path, &no_compile);
    assert!(linked(&result).0 > 0, "{result}");
    if capabilities {
        assert_ne!(inode(&first.join(&capable)), inode(&second.join(&capable)));
        let (code, report) = check(&artifacts.v2, &first);
        assert_eq!(code, 3, "{report}");
        assert!(
            modified(&report).contains(&capable.to_string_lossy().into_owned()),
            "{report}"
        );
    }

    let pristine = pristine_of_edited(&artifacts);
    for (relative, pristine) in edited.iter().zip(&pristine) {
        let (older, newer) = (first.join(relative), second.join(relative));
        assert_ne!(
            inode(&older),
            inode(&newer),
            "{} was linked though changed",
            relative.display()
        );
        assert_eq!(link_count(&newer), 1, "{}", relative.display());
        assert_eq!(
            &std::fs::read(&newer).expect("read"),
            pristine,
            "{} in release 2 is not the wheel's",
            relative.display()
        );
        assert_ne!(&std::fs::read(&older).expect("read"), pristine);
    }
    // Its unchanged neighbours are linked.
    let neighbour = site_packages(11).join("chardet/__init__.py");
    assert_eq!(
        inode(&first.join(&neighbour)),
        inode(&second.join(&neighbour))
    );
    assert_intact(&artifacts.v2, &second);
    let (code, report) = check(&artifacts.v2, &first);
    assert_eq!(code, 3, "{report}");
    let listed = modified(&report);
    for relative in &edited {
        assert!(
            listed.contains(&relative.to_string_lossy().into_owned()),
            "{} not reported: {report}",
            relative.display()
        );
    }
}

/// A shared wheel damaged in the artifact: the payload check does not read a wheel whose
/// files a release beside DEST serves (the manifest's SHA-256 of it stands in), so the damage
/// costs nothing there, and the release is the wheel's; `--verify` still finds it; and as soon
/// as a file of that wheel must be unpacked (no release beside DEST, or one whose copy was
/// edited), the wheel is held to its SHA-256 first: exit 3, nothing written.
#[test]
fn a_damaged_wheel_a_release_beside_serves_is_never_read_and_refused_once_needed() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let chardet = &artifacts.shared_wheels[0];
    let wheel = std::fs::read(chardet).expect("the chardet wheel");
    let bytes = std::fs::read(&artifacts.v2).expect("v2");
    let at = bytes
        .windows(wheel.len())
        .position(|window| window == wheel.as_slice())
        .expect("the chardet wheel stored in v2");
    // In its members' compressed bytes (the zip directory is at the end).
    let damaged = flipped(
        bytes,
        at + wheel.len() / 2,
        &work.path().join("damaged-v2.sfx"),
    );
    let no_compile = [OsStr::new("--no-compile")];

    // Beside an intact release 1: its files are linked, and the release is v2's.
    let (first, second) = (
        work.path().join("releases/1"),
        work.path().join("releases/2"),
    );
    deploy(&artifacts.v1, &first, &python.path, &no_compile);
    let result = deploy(&damaged, &second, &python.path, &no_compile);
    assert!(linked(&result).0 > 0, "{result}");
    let module = site_packages(11).join("chardet/universaldetector.py");
    assert_eq!(inode(&first.join(&module)), inode(&second.join(&module)));
    assert_intact(&artifacts.v2, &second);
    let output = run(Command::new(&damaged).arg("--verify"));
    assert_eq!(output.status.code(), Some(3), "--verify");

    // Needed: with no release beside DEST, and beside one whose copy of a file was edited.
    let alone = work.path().join("alone/2");
    let (code, result, stderr) = run_json(&damaged, &[OsStr::new("-d"), alone.as_os_str()]);
    assert_eq!(code, 3, "{result}\n{stderr}");
    assert!(!work.path().join("alone").exists());
    let stderr = refused_beside_edited(
        &work.path().join("edited"),
        (&artifacts.v1, &damaged),
        &python.path,
        &no_compile,
        |release| drop(edit_in_place(release, 11)),
    );
    let wheel_name = chardet.file_name().expect("a name").to_string_lossy();
    assert!(stderr.contains(wheel_name.as_ref()), "{stderr}");
}

/// Installs `artifacts.1` as `RELEASES/2`, beside `RELEASES/1`, a release of `artifacts.0`
/// that `edit` changes first, and expects it refused (exit 3) with nothing but release 1 left
/// there (its lock file aside). Returns what it printed.
fn refused_beside_edited(
    releases: &Path,
    (first, second): (&Path, &Path),
    python: &Path,
    extra: &[&OsStr],
    edit: impl FnOnce(&Path),
) -> String {
    deploy(first, &releases.join("1"), python, extra);
    edit(&releases.join("1"));
    let (code, result, stderr) = install_json(second, &releases.join("2"), python, extra);
    assert_eq!(code, 3, "{result}\n{stderr}");
    let left: Vec<String> = (pysfx_e2e::listing(releases).into_iter())
        .filter(|name| !name.ends_with(".pysfx-lock"))
        .collect();
    assert_eq!(left, ["1"], "nothing but release 1 beside DEST");
    stderr
}

/// The same for a byte-code bundle (compiled at pack time): a damaged bundle whose `.pyc`
/// files are linked from a release beside DEST is never read, and once one of them must be
/// written from it (the release's copy edited), the bundle is held to its SHA-256 first.
#[test]
fn a_damaged_bundle_whose_byte_code_is_linked_is_never_read_and_refused_once_needed() {
    let (python, work, artifacts) = compiled_at_pack_time();
    // The stored bundle of chardet's byte-code in v2: its data's offset and length.
    let script = r#"
import json, struct, sys, zipfile
path = sys.argv[1]
archive = zipfile.ZipFile(path)
manifest = json.loads(archive.read(".pysfx/manifest.json"))
wheel = next(w["path"] for w in manifest["wheels"] if w["filename"].lower().startswith("chardet-"))
bundle = next(b["path"] for b in manifest["bytecode"] if b["wheel"] == wheel)
info = archive.getinfo(bundle)
data = open(path, "rb").read()
name, extra = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
print(info.header_offset + 30 + name + extra, info.compress_size)
"#;
    let output = run(Command::new(&python.path)
        .args(["-c", script])
        .arg(&artifacts.v2));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let numbers: Vec<usize> = (text.split_whitespace())
        .map(|number| number.parse().expect("a number"))
        .collect();
    let [start, length] = numbers[..] else {
        panic!("no bundle of chardet in v2: {text}")
    };
    let bytes = std::fs::read(&artifacts.v2).expect("v2");
    // In the middle of its members' bytes (its zip directory is at its end).
    let damaged = flipped(
        bytes,
        start + length / 3,
        &work.path().join("damaged-v2.sfx"),
    );
    let (_, second, version_pyc) =
        linked_chardet_pyc(work.path(), &python, &artifacts.v1, &damaged);
    assert_intact(&artifacts.v2, &second);
    let output = run(Command::new(&damaged).arg("--verify"));
    assert_eq!(output.status.code(), Some(3), "--verify");

    let stderr = refused_beside_edited(
        &work.path().join("edited"),
        (&artifacts.v1, &damaged),
        &python.path,
        &[],
        |release| edit_last_byte_in_place(&release.join(&version_pyc)),
    );
    assert!(stderr.contains("byte-code"), "{stderr}");
}

/// Release 1 of `v1` and release 2 of `second` under `work/releases`, and chardet's
/// `version.py` byte-code (relative to a release), which release 2 linked from release 1.
fn linked_chardet_pyc(
    work: &Path,
    python: &Python,
    v1: &Path,
    second: &Path,
) -> (PathBuf, PathBuf, PathBuf) {
    let version_pyc = site_packages(11).join("chardet/__pycache__/version.cpython-311.pyc");
    let (one, two) = (work.join("releases/1"), work.join("releases/2"));
    deploy(v1, &one, &python.path, &[]);
    deploy(second, &two, &python.path, &[]);
    assert_eq!(
        inode(&one.join(&version_pyc)),
        inode(&two.join(&version_pyc))
    );
    (one, two, version_pyc)
}

/// `bytes` with the byte at `at` flipped, written to `target` as an executable artifact.
fn flipped(mut bytes: Vec<u8>, at: usize, target: &Path) -> PathBuf {
    bytes[at] ^= 0x01;
    std::fs::write(target, &bytes).expect("write");
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    target.to_path_buf()
}

/// `tests/fixtures/craft_payload.py IN OUT ARGS…` (see its docstring); the crafted artifact.
fn crafted(source: &Path, target: &Path, args: &[&str]) -> PathBuf {
    let output = run(Command::new(pysfx_e2e::host_python())
        .arg(pysfx_e2e::workspace_root().join("tests/fixtures/craft_payload.py"))
        .arg(source)
        .arg(target)
        .args(args));
    assert!(
        output.status.success(),
        "craft_payload.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    target.to_path_buf()
}

/// A crafted artifact whose byte-code bundle (left unread beside a release that installed it)
/// lists in its own zip directory only one of its `.pyc` files: the install does not take that
/// directory's word for which byte-code the release gets. Each linked source's `.pyc` is linked
/// all the same, and when one can't be (release 1's copy edited), the bundle is hashed whole:
/// exit 3, nothing written. (It exited 0 with those `.pyc` files missing: a review.)
#[test]
fn a_spared_bundle_whose_directory_leaves_byte_code_out_still_gets_all_of_it() {
    let (python, work, artifacts) = compiled_at_pack_time();
    let damaged = crafted(
        &artifacts.v2,
        &work.path().join("dropped.sfx"),
        &["drop-pyc", "chardet-"],
    );
    let (first, second, version_pyc) =
        linked_chardet_pyc(work.path(), &python, &artifacts.v1, &damaged);
    let chardet = |pyc: Vec<String>| -> Vec<String> {
        (pyc.into_iter())
            .filter(|path| path.contains("/chardet/"))
            .collect()
    };
    let all = chardet(shared_pyc(&first, &first));
    assert!(all.len() > 1, "{all:?}");
    assert_eq!(chardet(shared_pyc(&first, &second)), all);

    refused_beside_edited(
        &work.path().join("edited"),
        (&artifacts.v1, &damaged),
        &python.path,
        &[],
        |release| edit_last_byte_in_place(&release.join(&version_pyc)),
    );
    // A source edited in the release beside is unpacked, and its `.pyc` would come from the
    // directory alone. (It exited 0 without that `.pyc`: a review.)
    refused_beside_edited(
        &work.path().join("edited-source"),
        (&artifacts.v1, &damaged),
        &python.path,
        &[],
        |release| drop(edit_in_place(release, 11)),
    );
}

/// A `pysfx-payload/2` artifact (the digest of builds before session 44) whose zip directory
/// lists its wheels in another order than their bytes lie: the digest takes them in payload
/// order (docs/format.md), so it verifies and installs. (It was refused as overlapping: a
/// review.)
#[test]
fn a_wheels_only_digest_is_read_whatever_the_order_of_the_zip_directory() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), None);
    let swapped = crafted(
        &artifacts.v1,
        &work.path().join("swapped.sfx"),
        &["swap-directory-v2"],
    );
    let output = run(Command::new(&swapped).arg("--verify"));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    deploy(&swapped, &work.path().join("releases/1"), &python.path, &[]);
}

/// The stamps a release leaves (`pysfx-stamps`): the next release links the files, and the
/// byte-code of linked sources, whose stamp is unchanged without reading them; a file edited
/// since (one keeping its size and mtime, so only its ctime tells) is unpacked; and once
/// another release's links have moved the ctime of the shared files, the stamps no longer
/// vouch for them: they are read, and still linked.
#[test]
fn files_are_linked_by_their_stamps_until_the_stamps_move() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    // Byte-code compiled at pack time: release 1 writes it and stamps it.
    let artifacts = artifacts(work.path(), Some(11));
    let release = |number: u32| work.path().join(format!("releases/{number}"));
    let verbose = [OsStr::new("-v")];
    let (result, _) = deploy_logged(&artifacts.v1, &release(1), &python.path, &verbose);
    assert_eq!(
        linked(&result),
        (0, 0),
        "nothing beside release 1: {result}"
    );
    // Edited right after the install: the stamps were finished once the filesystem's clock
    // had passed every stamp, so even an edit this quick shows in the ctime.
    let edited = edit_in_place(&release(1), 11);

    let (result, log) = deploy_logged(&artifacts.v2, &release(2), &python.path, &verbose);
    let (linked_files, _) = linked(&result);
    let pyc_linked = shared_pyc(&release(1), &release(2)).len();
    assert!(pyc_linked > 0, "no byte-code linked: {result}");
    // Every file linked was vouched for by its stamp: none was read.
    assert_eq!(stamped_links(&log), linked_files, "{result}\n{log}");
    let pristine = pristine_of_edited(&artifacts);
    for (relative, pristine) in edited.iter().zip(&pristine) {
        let newer = release(2).join(relative);
        assert_ne!(
            inode(&release(1).join(relative)),
            inode(&newer),
            "{}",
            relative.display()
        );
        assert_eq!(
            &std::fs::read(&newer).expect("read"),
            pristine,
            "{}",
            relative.display()
        );
    }
    assert_intact(&artifacts.v2, &release(2));
    assert_pip_check(&release(2).join("venv"));

    // Release 2's links, and now their removal, moved the ctime of every file it shared with
    // release 1: those are read again before they are linked into release 3. Byte-code is
    // linked only by its stamps (its header says nothing of its code): it is compiled again.
    std::fs::remove_dir_all(release(2)).expect("remove release 2");
    let (result, log) = deploy_logged(&artifacts.v2, &release(3), &python.path, &verbose);
    assert_eq!(stamped_links(&log), 0, "{log}");
    assert_eq!(
        linked(&result).0,
        linked_files - pyc_linked as u64,
        "{result}"
    );
    assert_eq!(
        shared_pyc(&release(1), &release(3)),
        Vec::<String>::new(),
        "byte-code linked without its stamps"
    );
    assert_intact(&artifacts.v2, &release(3));
}

/// `--keep` removing an older release drops a link of every file it shared with the new one,
/// which moves their ctime. The new release's stamps are written again as that happens, so
/// the release after it still links every shared file by its stamp, byte-code included,
/// without reading it; and the old release it shared them with is gone, its files with it.
#[test]
fn keep_leaves_the_new_release_stamped() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let release = |number: u32| work.path().join(format!("releases/{number}"));
    let current = work.path().join("releases/current");
    let extra = [
        OsStr::new("-v"),
        OsStr::new("--link"),
        current.as_os_str(),
        OsStr::new("--keep"),
        OsStr::new("1"),
    ];
    deploy_logged(&artifacts.v1, &release(1), &python.path, &extra);
    // Release 1 is the release LINK named before: kept.
    deploy_logged(&artifacts.v2, &release(2), &python.path, &extra);
    // Release 3 links every file from release 2; release 1, which shared the wheels both
    // artifacts carry with both, is removed after the switch.
    let (result, _) = deploy_logged(&artifacts.v2, &release(3), &python.path, &extra);
    assert!(!release(1).exists(), "release 1 not pruned: {result}");

    let (result, log) = deploy_logged(&artifacts.v2, &release(4), &python.path, &extra);
    assert!(!release(2).exists(), "release 2 not pruned: {result}");
    let (linked_files, _) = linked(&result);
    assert!(linked_files > 0, "{result}");
    assert_eq!(stamped_links(&log), linked_files, "{result}\n{log}");
    let pyc = shared_pyc(&release(3), &release(4));
    // Every `.pyc` of the wheels (the hook module's is the release's own, written fresh).
    let shipped = tree(&release(4))
        .into_iter()
        .filter(|relative| relative.starts_with("venv/") && relative.ends_with(".pyc"))
        .filter(|relative| !relative.contains("/__pycache__/loadenv."))
        .count();
    assert_eq!(pyc.len(), shipped, "byte-code not linked: {pyc:?}");
    for number in [3, 4] {
        assert_intact(&artifacts.v2, &release(number));
        let litter: Vec<String> = tree(&release(number))
            .into_iter()
            .filter(|relative| relative.contains(".pysfx-"))
            .collect();
        assert!(litter.is_empty(), "{litter:?}");
    }
}

/// LINK's target elsewhere (`--link` to a release in another directory) is no release beside
/// DEST, whatever its name: release 2 links from the newest release beside it, not from the
/// one that happens to share the target's name.
#[test]
fn a_link_target_elsewhere_is_not_taken_for_a_release_of_its_name() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), None);
    let releases = work.path().join("releases");
    deploy(&artifacts.v1, &releases.join("1"), &python.path, &[]);
    // Release 5, the newest, shares no file with release 1.
    let copy = [OsStr::new("--copy")];
    deploy(&artifacts.v1, &releases.join("5"), &python.path, &copy);
    let elsewhere = work.path().join("elsewhere/1");
    deploy(&artifacts.v1, &elsewhere, &python.path, &copy);
    let current = work.path().join("current");
    std::os::unix::fs::symlink(&elsewhere, &current).expect("current");
    let second = releases.join("2");
    let link = [OsStr::new("--link"), current.as_os_str()];
    let result = deploy(&artifacts.v2, &second, &python.path, &link);
    assert!(linked(&result).0 > 0, "{result}");
    assert_eq!(shared_inodes(&releases.join("1"), &second), (0, 0));
    assert_eq!(shared_inodes(&releases.join("5"), &second), linked(&result));
}

#[test]
fn copy_links_nothing() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let (first, second) = (
        work.path().join("releases/1"),
        work.path().join("releases/2"),
    );
    deploy(&artifacts.v1, &first, &python.path, &[]);
    let result = deploy(
        &artifacts.v2,
        &second,
        &python.path,
        &[OsStr::new("--copy")],
    );
    assert_eq!(linked(&result), (0, 0), "{result}");
    assert_eq!(shared_inodes(&first, &second), (0, 0));
    assert_intact(&artifacts.v2, &second);
}

/// Mounts made by a test, unmounted (last first) when it ends, even by a panic.
struct Mounts(Vec<PathBuf>);

impl Mounts {
    /// `mount ARGS… TARGET`; false (and a line saying why) when it fails.
    fn mount(&mut self, args: &[&OsStr], target: &Path) -> bool {
        let output = run(Command::new("mount").args(args).arg(target));
        if !output.status.success() {
            eprintln!(
                "skipped: mount {args:?} {} failed: {}",
                target.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return false;
        }
        self.0.push(target.to_path_buf());
        true
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let output = run(Command::new("umount").arg(target));
            if !output.status.success() {
                eprintln!(
                    "umount {}: {}",
                    target.display(),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
}

/// Whether this test may mount filesystems (root); says why not when it may not.
fn may_mount() -> bool {
    let uid = run(Command::new("id").arg("-u"));
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if !root {
        eprintln!("skipped: mounting a tmpfs needs root");
    }
    root
}

#[test]
fn a_release_on_another_filesystem_is_unpacked_plainly() {
    if !may_mount() {
        return;
    }
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let artifacts = artifacts(root, Some(11));
    // Release 1 is installed on this disk, at releases/1. Then a tmpfs is mounted over
    // releases/ (the parent release 2 goes into) and release 1 is bind-mounted back at its own
    // path: release 1 lies beside DEST, unchanged and where its receipt says, but on another
    // filesystem than DEST. LINK points at it too.
    let releases = root.join("releases");
    let (first, second) = (releases.join("1"), releases.join("2"));
    let current = root.join("current");
    deploy(
        &artifacts.v1,
        &first,
        &python.path,
        &[
            OsStr::new("--link"),
            current.as_os_str(),
            OsStr::new("--no-compile"),
        ],
    );
    let holder = root.join("release-1-on-disk");
    std::fs::create_dir(&holder).expect("create the holder");
    let mut mounts = Mounts(Vec::new());
    if !mounts.mount(&[OsStr::new("--bind"), first.as_os_str()], &holder)
        || !mounts.mount(
            &[OsStr::new("-t"), OsStr::new("tmpfs"), OsStr::new("none")],
            &releases,
        )
    {
        return;
    }
    std::fs::create_dir(&first).expect("create release 1's mount point");
    if !mounts.mount(&[OsStr::new("--bind"), holder.as_os_str()], &first) {
        return;
    }
    assert_ne!(inode(&releases).0, inode(&first).0, "not two filesystems");
    assert_intact(&artifacts.v1, &first);

    let result = deploy(
        &artifacts.v2,
        &second,
        &python.path,
        &[
            OsStr::new("--link"),
            current.as_os_str(),
            OsStr::new("--no-compile"),
        ],
    );
    assert_eq!(linked(&result), (0, 0), "{result}");
    assert_eq!(
        inode(&second).0,
        inode(&releases).0,
        "release 2 is on tmpfs"
    );
    assert_intact(&artifacts.v2, &second);
    assert_intact(&artifacts.v2, &first);
    assert_eq!(std::fs::read_link(&current).expect("LINK"), second);
    let report = python_in(&second, "import chardet, tinylib; print(tinylib.VALUE)");
    assert_eq!(report.trim(), "tinylib 2.0");
}

/// Replaces a release's own path in `bytes` (shebangs, pyvenv.cfg, the SBOM) with `<DEST>`.
fn without_release(bytes: &[u8], release: &Path) -> Vec<u8> {
    let needle = release.to_string_lossy();
    let needle = needle.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(needle) {
            out.extend_from_slice(b"<DEST>");
            rest = &rest[needle.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// A RECORD row's hash and size for a file: `sha256=<urlsafe base64, unpadded>`, byte count.
fn record_row_of(path: &Path) -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let digest = sha2::Sha256::digest(&bytes);
    (
        format!(
            "sha256={}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        ),
        bytes.len().to_string(),
    )
}

/// `linked` and `fresh`, two installs of one artifact, hold the same paths, kinds, modes and
/// link targets; the same bytes in every file but the byte-code (which names the release it
/// was compiled in), the receipt and the stamps (inodes and times of its own files), their own
/// path aside; the same RECORD rows, where a row
/// may differ only for a file that names its release, each row then describing its own file;
/// and receipts of the same payload, wheels and interpreter.
fn assert_same_release(linked: &Path, fresh: &Path) {
    let paths = tree(linked);
    assert_eq!(paths, tree(fresh), "the two releases hold different paths");
    let mut compared = 0;
    for relative in &paths {
        let (ours, theirs) = (linked.join(relative), fresh.join(relative));
        let (a, b) = (
            std::fs::symlink_metadata(&ours).expect("stat"),
            std::fs::symlink_metadata(&theirs).expect("stat"),
        );
        assert_eq!(
            (a.file_type().is_dir(), a.file_type().is_symlink()),
            (b.file_type().is_dir(), b.file_type().is_symlink()),
            "{relative}: not the same kind"
        );
        if a.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&ours).expect("readlink"),
                std::fs::read_link(&theirs).expect("readlink"),
                "{relative}"
            );
            continue;
        }
        assert_eq!(
            a.permissions().mode() & 0o7777,
            b.permissions().mode() & 0o7777,
            "{relative}: mode"
        );
        if a.is_dir()
            || relative.ends_with(".pyc")
            || relative == "pysfx-receipt.json"
            || relative == "pysfx-stamps"
        {
            continue;
        }
        if relative.ends_with(".dist-info/RECORD") {
            let (rows, fresh_rows) = (record_rows(&ours), record_rows(&theirs));
            assert_eq!(
                rows.keys().collect::<Vec<_>>(),
                fresh_rows.keys().collect::<Vec<_>>(),
                "{relative}: rows for other files"
            );
            let directory = Path::new(relative).parent().and_then(Path::parent);
            let directory = directory.expect("in site-packages");
            for (path, row) in &rows {
                if *row == fresh_rows[path] {
                    continue;
                }
                let file = normalize(&directory.join(path));
                for (release, row) in [(linked, row), (fresh, &fresh_rows[path])] {
                    let bytes = std::fs::read(release.join(&file)).expect("a recorded file");
                    assert!(
                        contains(&bytes, release.to_string_lossy().as_bytes()),
                        "{relative}: the row of {path} differs, yet the file does not name its release"
                    );
                    assert_eq!(
                        row,
                        &record_row_of(&release.join(&file)),
                        "{relative}: {path}"
                    );
                }
            }
        } else {
            let (bytes, fresh_bytes) = (
                std::fs::read(&ours).expect("read"),
                std::fs::read(&theirs).expect("read"),
            );
            assert!(
                without_release(&bytes, linked) == without_release(&fresh_bytes, fresh),
                "{relative}: the contents differ"
            );
        }
        compared += 1;
    }
    let receipt = |release: &Path| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(release.join("pysfx-receipt.json")).expect("the receipt"),
        )
        .expect("json")
    };
    let (ours, theirs) = (receipt(linked), receipt(fresh));
    for key in [
        "payload_sha256",
        "python",
        "python_version",
        "wheel_set",
        "wheels",
        "manifest",
    ] {
        assert_eq!(ours[key], theirs[key], "the receipts' {key}");
    }
    assert!(compared > 80, "{compared} files compared");
}

#[test]
fn a_linked_release_is_the_release_a_fresh_install_makes() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let (_, second, result) = two_releases(&artifacts, work.path(), &python, &[]);
    assert!(linked(&result).0 > 0, "{result}");
    let alone = work.path().join("alone/2");
    let result = deploy(&artifacts.v2, &alone, &python.path, &[]);
    assert_eq!(linked(&result), (0, 0), "nothing lies beside: {result}");
    assert_same_release(&second, &alone);
}

/// Byte-code compiled at install in release 1 is linked into release 2 with its sources, and
/// stays valid there: the pyc headers match the linked sources, so importing in release 2
/// uses them and rewrites none.
fn byte_code_is_linked(artifacts: &Artifacts, root: &Path, python: &Python) {
    let minor = python.minor;
    let (first, second, result) = two_releases(artifacts, root, python, &[]);
    assert!(linked(&result).0 > 0, "3.{minor}: {result}");
    let (from_wheels, _) = shared_files(&first, minor);
    let mut byte_code = Vec::new();
    for source in from_wheels
        .iter()
        .filter(|path| path.extension() == Some(OsStr::new("py")))
    {
        let stem = source.file_stem().expect("a stem").to_string_lossy();
        let compiled = source
            .parent()
            .expect("a directory")
            .join(format!("__pycache__/{stem}.cpython-3{minor}.pyc"));
        assert!(
            first.join(&compiled).is_file(),
            "3.{minor}: {} was not compiled",
            source.display()
        );
        byte_code.push(compiled);
    }
    assert!(byte_code.len() > 30, "3.{minor}: {byte_code:?}");
    let compare = |when: &str| {
        for compiled in &byte_code {
            assert_eq!(
                inode(&first.join(compiled)),
                inode(&second.join(compiled)),
                "3.{minor}, {when}: {} is not linked from release 1",
                compiled.display()
            );
        }
    };
    compare("after the install");
    let changed = second
        .join(site_packages(minor))
        .join(format!("tinylib/__pycache__/__init__.cpython-3{minor}.pyc"));
    assert_eq!(link_count(&changed), 1, "3.{minor}");

    // Each pyc's header against its source in release 2 (PEP 552; 3.6 has no flags word).
    let stale = python_in(
        &second,
        r#"
import importlib.util, os, struct, sys, chardet, datapkg.cli
stale = []
for package in (chardet, datapkg.cli):
    top = os.path.dirname(package.__file__)
    for directory, _, names in os.walk(top):
        for name in names:
            if not name.endswith(".py"):
                continue
            source = os.path.join(directory, name)
            with open(importlib.util.cache_from_source(source), "rb") as handle:
                header = handle.read(16)
            fields = header[4:12] if sys.version_info < (3, 7) else header[8:16]
            flags = 0 if sys.version_info < (3, 7) else struct.unpack("<I", header[4:8])[0]
            status = os.stat(source)
            if header[:4] != importlib.util.MAGIC_NUMBER or (
                flags == 0 and struct.unpack("<II", fields) != (int(status.st_mtime) & 0xFFFFFFFF, status.st_size & 0xFFFFFFFF)):
                stale.append(source)
print("\n".join(stale))
"#,
    );
    assert_eq!(stale.trim(), "", "3.{minor}: stale byte-code in release 2");
    compare("after importing");
}

#[test]
fn byte_code_is_linked_on_every_interpreter() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), None);
    let pythons = pythons();
    let minors: Vec<u32> = pythons.iter().map(|python| python.minor).collect();
    assert!(
        minors.contains(&6) && minors.contains(&13),
        "3.6 and 3.13 must be among {minors:?}"
    );
    std::thread::scope(|scope| {
        for python in &pythons {
            let root = work.path().join(python.version());
            let artifacts = &artifacts;
            scope.spawn(move || byte_code_is_linked(artifacts, &root, python));
        }
    });
}

#[test]
fn link_targets_first_else_the_newest_release() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let releases = work.path().join("releases");
    let current = work.path().join("current");
    let link = [
        OsStr::new("--link"),
        current.as_os_str(),
        OsStr::new("--no-compile"),
    ];
    // 1 is LINK's target; 2, newer, was copied, so 1 and 2 share no inode.
    deploy(&artifacts.v1, &releases.join("1"), &python.path, &link);
    deploy(
        &artifacts.v1,
        &releases.join("2"),
        &python.path,
        &[OsStr::new("--copy"), OsStr::new("--no-compile")],
    );
    assert_eq!(
        shared_inodes(&releases.join("1"), &releases.join("2")),
        (0, 0)
    );
    let (from_wheels, _) = shared_files(&releases.join("1"), 11);
    let sources = |release: &str| -> Vec<(u64, u64)> {
        from_wheels
            .iter()
            .map(|relative| inode(&releases.join(release).join(relative)))
            .collect()
    };

    // Without --link: from the newest release, 2.
    let result = deploy(
        &artifacts.v2,
        &releases.join("3"),
        &python.path,
        &[OsStr::new("--no-compile")],
    );
    assert!(linked(&result).0 > 0, "{result}");
    assert_eq!(sources("3"), sources("2"), "release 3 is not linked from 2");
    // With --link: from its target, 1, though 3 and 2 are newer.
    let result = deploy(&artifacts.v2, &releases.join("4"), &python.path, &link);
    assert!(linked(&result).0 > 0, "{result}");
    assert_eq!(sources("4"), sources("1"), "release 4 is not linked from 1");
    assert_eq!(
        std::fs::read_link(&current).expect("LINK"),
        releases.join("4")
    );
    for release in ["1", "2", "3", "4"] {
        assert_intact(&artifacts.v2, &releases.join(release));
    }
}

/// A wheel that ships its own `.pyc` beside a source (numpy 2.2 does), installed with
/// byte-code compiled at install beside a release of it: the source is linked, and its
/// byte-code is the install's own, compiled in release 1 and linked into release 2 — never the
/// wheel's, which would run in place of the source (as pip compiles over it). (Release 2 used
/// to fail with "… is already there" on the popular corpus's numpy.)
#[test]
fn a_pyc_the_wheel_ships_gives_way_to_its_linked_sources_byte_code() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    // `shipspyc` ships `shipspyc/__pycache__/helper.cpython-311.pyc` (tests/fixtures).
    let shipped = b"the wheel's own bytes, not this interpreter's byte-code\n";
    let wheels = work.path().join("wheels");
    std::fs::create_dir_all(&wheels).expect("create the wheel directory");
    let wheel = "shipspyc-1.0-py3-none-any.whl";
    std::fs::copy(contained_wheels().join(wheel), wheels.join(wheel)).expect("copy the wheel");
    let app = make_app(&work.path().join("src"), "demoapp");
    // Without --python: byte-code is compiled at install.
    let artifact = pack(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("shipspyc.sfx"),
    );
    let (first, second) = (
        work.path().join("releases/1"),
        work.path().join("releases/2"),
    );
    deploy(&artifact, &first, &python.path, &[]);
    let result = deploy(&artifact, &second, &python.path, &[]);
    assert!(linked(&result).0 > 0, "{result}");
    let package = site_packages(11).join("shipspyc");
    let pyc = package.join("__pycache__/helper.cpython-311.pyc");
    for release in [&first, &second] {
        let bytes = std::fs::read(release.join(&pyc)).expect("the .pyc");
        assert!(
            bytes != shipped,
            "{}: the wheel's own .pyc",
            release.display()
        );
        let helped = python_in(release, "import shipspyc.helper as h; print(h.HELPED)");
        assert_eq!(helped, "2\n", "{}", release.display());
    }
    assert_eq!(inode(&first.join(&pyc)), inode(&second.join(&pyc)));
    assert_eq!(
        inode(&first.join(package.join("helper.py"))),
        inode(&second.join(package.join("helper.py")))
    );
    // The other source's byte-code was compiled in release 1 and linked into release 2.
    let compiled = package.join("__pycache__/__init__.cpython-311.pyc");
    assert_eq!(
        inode(&first.join(&compiled)),
        inode(&second.join(&compiled))
    );
    assert_intact(&artifact, &second);
}

/// The `.pyc` files of release `newer` that are hard links of release `older`'s.
fn shared_pyc(older: &Path, newer: &Path) -> Vec<String> {
    tree(newer)
        .into_iter()
        .filter(|relative| relative.ends_with(".pyc"))
        .filter(|relative| {
            let path = older.join(relative);
            path.exists() && inode(&path) == inode(&newer.join(relative))
        })
        .collect()
}

/// Byte-code compiled at pack time is linked only when the release beside DEST got it from the
/// very same bundle and it is unchanged since (its stamps vouch for it); the header of a
/// `.pyc` (which source it was compiled from) says nothing of the code in it. A `.pyc` whose
/// code was replaced behind an intact header, or one of a release whose artifact carried
/// other byte-code for the same wheel, is unpacked from this artifact's bundle; and a file
/// made setuid is not linked either, and `--check` reports its mode.
#[test]
fn byte_code_is_linked_only_unchanged_and_from_the_same_bundle() {
    let (python, work, artifacts) = compiled_at_pack_time();
    let release = |number: u32| work.path().join(format!("releases/{number}"));
    deploy(&artifacts.v1, &release(1), &python.path, &[]);
    let result = deploy(&artifacts.v2, &release(2), &python.path, &[]);
    assert!(result["precompiled_wheels"].as_u64() > Some(0), "{result}");
    let linked_pyc = shared_pyc(&release(1), &release(2));
    let version_pyc = site_packages(11)
        .join("chardet/__pycache__/version.cpython-311.pyc")
        .to_string_lossy()
        .into_owned();
    assert!(linked_pyc.contains(&version_pyc), "{linked_pyc:?}");

    // Code replaced behind the header (the same size, mtime and 16 bytes), in the file both
    // releases share; a linked source made setuid.
    let tampered = release(2).join(&version_pyc);
    let status = run(Command::new(&python.path)
        .arg("-c")
        .arg(
            r#"
import marshal, os, sys
path = sys.argv[1]
before = os.stat(path)
with open(path, "rb") as handle:
    data = handle.read()
body = marshal.dumps(compile("print('PWNED'); __version__ = VERSION = ''", "version", "exec"))
data = data[:16] + body + b"\0" * (len(data) - 16 - len(body))
with open(path, "r+b") as handle:
    handle.write(data[: before.st_size])
os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
"#,
        )
        .arg(&tampered));
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(
        python_in(&release(2), "import chardet.version").trim(),
        "PWNED",
        "the tampered byte-code runs in release 2"
    );
    let setuid = site_packages(11).join("chardet/__init__.py");
    let mode = std::fs::metadata(release(2).join(&setuid))
        .expect("stat")
        .mode();
    std::fs::set_permissions(
        release(2).join(&setuid),
        std::fs::Permissions::from_mode((mode & 0o777) | 0o4000),
    )
    .expect("chmod u+s");
    // A mode narrowed in place (`chmod 600`): linked, it would narrow release 3's file too.
    let narrowed = site_packages(11).join("chardet/version.py");
    std::fs::set_permissions(
        release(2).join(&narrowed),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod 600");

    let result = deploy(&artifacts.v2, &release(3), &python.path, &[]);
    assert!(linked(&result).0 > 0, "{result}");
    assert_ne!(inode(&tampered), inode(&release(3).join(&version_pyc)));
    assert_eq!(python_in(&release(3), "import chardet.version").trim(), "");
    assert_ne!(
        inode(&release(2).join(&setuid)),
        inode(&release(3).join(&setuid))
    );
    assert_eq!(
        std::fs::metadata(release(3).join(&setuid))
            .expect("stat")
            .mode()
            & 0o7000,
        0
    );
    assert_ne!(
        inode(&release(2).join(&narrowed)),
        inode(&release(3).join(&narrowed))
    );
    assert_eq!(
        std::fs::metadata(release(3).join(&narrowed))
            .expect("stat")
            .mode()
            & 0o777,
        0o644 & !umask()
    );
    assert_intact(&artifacts.v2, &release(3));
    let (code, report) = check(&artifacts.v2, &release(2));
    assert_eq!(code, 3, "{report}");
    assert!(
        modified(&report).contains(&setuid.to_string_lossy().into_owned()),
        "{report}"
    );

    // Release 3 as if its artifact had carried other byte-code for the shared wheels: its
    // `.py` files are still linked, none of its `.pyc` files.
    let receipt_path = release(3).join("pysfx-receipt.json");
    let mut receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&receipt_path).expect("read the receipt"))
            .expect("a receipt");
    for bundle in receipt["manifest"]["bytecode"]
        .as_array_mut()
        .expect("bundles")
    {
        bundle["sha256"] = serde_json::Value::String("0".repeat(64));
    }
    std::fs::write(&receipt_path, receipt.to_string()).expect("write the receipt");
    let result = deploy(&artifacts.v2, &release(4), &python.path, &[]);
    assert!(linked(&result).0 > 0, "{result}");
    assert_eq!(shared_pyc(&release(3), &release(4)), Vec::<String>::new());
    assert!(!shared_pyc(&release(3), &release(2)).is_empty());
    assert_intact(&artifacts.v2, &release(4));
}

/// Whatever lies beside the releases — a FIFO or a link to `/dev/zero` named like a receipt
/// in a directory of its own, a FIFO for release 1's stamps — neither hangs nor exhausts an
/// install, `--status` or `--keep`: such files are not read.
#[test]
fn files_planted_beside_the_releases_are_not_read() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let releases = work.path().join("releases");
    let link = work.path().join("current");
    let with_link = [OsStr::new("--link"), link.as_os_str()];
    deploy(&artifacts.v1, &releases.join("1"), &python.path, &with_link);
    for (name, plant) in [("fifo", "fifo"), ("zero", "zero")] {
        let stray = releases.join(name);
        std::fs::create_dir_all(&stray).expect("mkdir");
        let receipt = stray.join("pysfx-receipt.json");
        match plant {
            "fifo" => assert!(run(Command::new("mkfifo").arg(&receipt)).status.success()),
            _ => std::os::unix::fs::symlink("/dev/zero", &receipt).expect("symlink"),
        }
    }
    let stamps = releases.join("1/pysfx-stamps");
    std::fs::remove_file(&stamps).expect("remove the stamps");
    assert!(run(Command::new("mkfifo").arg(&stamps)).status.success());

    let bounded = |args: &[&OsStr]| -> (i32, String) {
        let mut child = Command::new(&artifacts.v2)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the artifact");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().expect("wait").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{args:?} hangs");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("output");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let second = releases.join("2");
    let (code, output) = bounded(&[
        OsStr::new("-d"),
        second.as_os_str(),
        OsStr::new("--python"),
        python.path.as_os_str(),
        OsStr::new("--link"),
        link.as_os_str(),
        OsStr::new("--keep"),
        OsStr::new("2"),
        OsStr::new("--json"),
    ]);
    assert_eq!(code, 0, "{output}");
    let result: serde_json::Value =
        serde_json::from_str(output.lines().next().unwrap_or_default()).expect("--json");
    // Linked from release 1, its files read since its stamps are not.
    assert!(linked(&result).0 > 0, "{result}");
    assert_intact(&artifacts.v2, &second);
    let (code, output) = bounded(&[OsStr::new("--status"), link.as_os_str()]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains(&*second.to_string_lossy()), "{output}");
}

/// An install holds a shared lock on each release it may link from, and does not link from
/// one whose lock another run holds exclusively (`--keep` removing it, `--force` replacing
/// it): here a process holding release 1's lock stands for such a run.
#[test]
fn a_release_locked_by_another_run_is_not_linked_from() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifacts = artifacts(work.path(), Some(11));
    let releases = work.path().join("releases");
    deploy(&artifacts.v1, &releases.join("1"), &python.path, &[]);
    let lock = releases.join(".1.pysfx-lock");
    assert!(lock.is_file(), "release 1 left no lock file");
    let mut holder = Command::new(&python.path)
        .args([
            "-c",
            "import fcntl, sys, time\n\
             handle = open(sys.argv[1], 'a')\n\
             fcntl.flock(handle, fcntl.LOCK_EX)\n\
             print('locked', flush=True)\n\
             sys.stdin.read()",
        ])
        .arg(&lock)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the lock holder");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("read");
    assert_eq!(line.trim(), "locked");
    let result = deploy(&artifacts.v2, &releases.join("2"), &python.path, &[]);
    assert_eq!(
        linked(&result),
        (0, 0),
        "linked from a locked release: {result}"
    );
    drop(holder.stdin.take());
    holder.wait().expect("the lock holder ends");
    // Unlocked, it is linked from again; without its lock file too, and none is made for it
    // (beside a release of another user's, say).
    std::fs::remove_file(&lock).expect("remove the lock file");
    let result = deploy(&artifacts.v2, &releases.join("3"), &python.path, &[]);
    assert!(linked(&result).0 > 0, "{result}");
    assert!(!lock.exists(), "a lock file was made beside release 1");
    assert_intact(&artifacts.v2, &releases.join("3"));
}

/// This process's umask (the install's files get 0644 less it), from /proc (Linux 4.7+), else
/// the usual 022.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Umask:"))
                .and_then(|value| u32::from_str_radix(value.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// A byte-code bundle whose bytes are not the ones the manifest's `sha256` names (a valid zip
/// with a rogue `.pyc` behind an intact header, the payload digest made to match) is refused
/// by the install before anything is written (exit 3), not installed: a release records that
/// digest, and another release links byte-code from it by the digest alone.
#[test]
fn a_bundle_that_is_not_the_manifests_is_refused_by_the_install() {
    let (python, work, artifacts) = compiled_at_pack_time();
    let payload = pysfx_format::Payload::open(&artifacts.v1).expect("open");
    let bundle = payload
        .manifest()
        .bytecode
        .iter()
        .find(|bundle| !bundle.sha256.is_empty())
        .expect("a bundle with a digest")
        .path
        .clone();
    drop(payload);
    let genuine = work.path().join("bundle.zip");
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&artifacts.v1).expect("open")).expect("a zip");
    let mut bytes = Vec::new();
    archive
        .by_name(&bundle)
        .and_then(|mut entry| Ok(entry.read_to_end(&mut bytes)?))
        .expect("the bundle");
    std::fs::write(&genuine, &bytes).expect("write");
    let releases = work.path().join("releases");
    // Each case a change to every .pyc of the bundle (Python, `name` and `data` in hand), and
    // whether the manifest then vouches for the new bundle's digest:
    // - every .pyc's code replaced, its 16-byte header kept, the manifest's digest the genuine
    //   bundle's;
    // - .pyc files that are not byte-code of the bundle's interpreter: named for another
    //   (cpython-312 in a cpython-311 bundle), or without its magic number, vouched for.
    // Each is refused (exit 3), nothing left.
    for (case, change, vouched, says) in [
        (
            "rogue",
            "data = data[:16] + marshal.dumps(compile(\"PWNED = 'yes'\", 'rogue', 'exec'))",
            false,
            bundle.as_str(),
        ),
        (
            "tag",
            "name = name.replace('cpython-311', 'cpython-312')",
            true,
            "is no .pyc file of cpython-311 byte-code",
        ),
        (
            "magic",
            "data = b'\\0\\0\\r\\n' + data[4:]",
            true,
            "magic number",
        ),
    ] {
        let odd = work.path().join(format!("{case}.zip"));
        let script = format!(
            "import marshal, sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1]) as source, zipfile.ZipFile(sys.argv[2], 'w') as out:\n\
             \x20   for info in source.infolist():\n\
             \x20       name, data = info.filename, source.read(info)\n\
             \x20       if name.endswith('.pyc'):\n\
             \x20           {change}\n\
             \x20       out.writestr(name, data)\n"
        );
        let made = run(Command::new(&python.path)
            .arg("-c")
            .arg(&script)
            .arg(&genuine)
            .arg(&odd));
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let odd_bytes = std::fs::read(&odd).expect("the bundle");
        let digest = pysfx_format::hex(&<sha2::Sha256 as sha2::Digest>::digest(&odd_bytes));
        let crafted = pysfx_e2e::reseal_replacing(
            &artifacts.v1,
            &work.path().join(format!("{case}.sfx")),
            |manifest| {
                for entry in manifest.bytecode.iter_mut().filter(|_| vouched) {
                    if entry.path == bundle {
                        entry.sha256 = digest.clone();
                    }
                }
            },
            &[(bundle.as_str(), odd_bytes.as_slice())],
        );
        let (code, result, stderr) =
            pysfx_e2e::install_with(&crafted, &releases.join("1"), &python.path, &[]);
        assert_eq!(code, 3, "{case}: {result}\n{stderr}");
        assert!(stderr.contains(says), "{case}: {stderr}");
        assert!(!releases.exists(), "{case}");
    }

    // A source time no `.pyc` header holds: refused (exit 3, one JSON object), not a panic.
    let far = pysfx_e2e::reseal(&artifacts.v1, &work.path().join("far.sfx"), |manifest| {
        for bundle in &mut manifest.bytecode {
            bundle.source_mtime = 1 << 63;
        }
    });
    let (code, result, stderr) =
        pysfx_e2e::install_with(&far, &releases.join("1"), &python.path, &[]);
    assert_eq!(
        (code, &result["exit_code"]),
        (3, &serde_json::json!(3)),
        "{stderr}"
    );
    assert!(
        stderr.contains("beyond what a .pyc header holds"),
        "{stderr}"
    );
    let verified = run(Command::new(&far).arg("--verify"));
    assert_eq!(
        verified.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

/// Writes `bigdata-1.0-py3-none-any.whl` into `out`: a pure wheel whose one data file is
/// `megabytes` MiB of zeros (it compresses to almost nothing; on disk it is that big).
fn big_wheel(out: &Path, megabytes: usize) -> PathBuf {
    use base64::Engine as _;
    use sha2::Digest as _;
    std::fs::create_dir_all(out).expect("create the wheel directory");
    let path = out.join("bigdata-1.0-py3-none-any.whl");
    let file = std::fs::File::create(&path).expect("create the wheel");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let blob = vec![0u8; megabytes << 20];
    let members: [(&str, &[u8]); 4] = [
        ("bigdata/__init__.py", b"SIZE = 1\n"),
        ("bigdata/blob.bin", &blob),
        (
            "bigdata-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: bigdata\nVersion: 1.0\n",
        ),
        (
            "bigdata-1.0.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ];
    let mut record = String::new();
    for (name, bytes) in members {
        zip.start_file(name, options).expect("start a member");
        zip.write_all(bytes).expect("write a member");
        let digest =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes));
        record.push_str(&format!("{name},sha256={digest},{}\n", bytes.len()));
    }
    record.push_str("bigdata-1.0.dist-info/RECORD,,\n");
    zip.start_file("bigdata-1.0.dist-info/RECORD", options)
        .expect("start RECORD");
    zip.write_all(record.as_bytes()).expect("write RECORD");
    zip.finish().expect("finish the wheel");
    path
}

#[test]
fn a_linked_install_needs_room_only_for_what_it_writes() {
    if !may_mount() {
        return;
    }
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    // Two releases sharing a wheel of 40 MiB; v2 changes the app and tinylib.
    let shared = big_wheel(&root.join("big"), 40);
    let pack_version = |number: u32, tinylib: &str| -> PathBuf {
        let wheels = root.join(format!("wheels-{number}"));
        std::fs::create_dir_all(&wheels).expect("create the wheel directory");
        std::fs::copy(&shared, wheels.join("bigdata-1.0-py3-none-any.whl")).expect("copy");
        tiny_wheel(&wheels, "tinylib", tinylib, &[]);
        let app = make_app(&root.join(format!("src-{number}")), "demoapp");
        std::fs::write(app.join("appcore/v.py"), format!("V = {number}\n")).expect("app");
        let args = [
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ];
        pack(&args, &root.join(format!("v{number}.sfx")))
    };
    let (v1, v2) = (pack_version(1, "1.0"), pack_version(2, "2.0"));
    // 100 MiB: room for one release (the check asks 1.5 times what it unpacks, plus 16 MiB),
    // not for a second one unpacked, but for one that links the 40 MiB it shares.
    let releases = root.join("releases");
    std::fs::create_dir(&releases).expect("create releases");
    let mut mounts = Mounts(Vec::new());
    let options = [
        OsStr::new("-t"),
        OsStr::new("tmpfs"),
        OsStr::new("-o"),
        OsStr::new("size=100m"),
        OsStr::new("none"),
    ];
    if !mounts.mount(&options, &releases) {
        return;
    }
    let (first, second) = (releases.join("1"), releases.join("2"));
    deploy(&v1, &first, &python.path, &[OsStr::new("--no-compile")]);

    // Unpacked (--copy), release 2 does not fit: refused before writing, nothing left.
    let args = [
        OsStr::new("-d"),
        second.as_os_str(),
        OsStr::new("--python"),
        python.path.as_os_str(),
        OsStr::new("--no-compile"),
        OsStr::new("--copy"),
    ];
    let (code, result, stderr) = run_json(&v2, &args);
    assert_eq!(code, 4, "{result}\n{stderr}");
    assert!(stderr.contains("not enough free space"), "{stderr}");
    let left: Vec<String> = std::fs::read_dir(&releases)
        .expect("read releases")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with("-lock"))
        .collect();
    assert_eq!(left, ["1"], "only release 1 (and lock files) beside DEST");

    // Linked, it fits: the shared blob is the same inode in both releases.
    let result = deploy(&v2, &second, &python.path, &[OsStr::new("--no-compile")]);
    assert!(linked(&result).1 >= 40 << 20, "{result}");
    let blob = |release: &Path| inode(&release.join(site_packages(11)).join("bigdata/blob.bin"));
    assert_eq!(blob(&first), blob(&second));
    assert_intact(&v1, &first);
    assert_intact(&v2, &second);

    // Release 1 bind-mounted into another directory of the same filesystem: another mount,
    // which no hard link crosses, so a release 2 beside it is counted as unpacked and refused
    // before writing (where counting it as linked would let it start, and unpack it all).
    let other = releases.join("other");
    std::fs::create_dir_all(other.join("1")).expect("create the mount point");
    if !mounts.mount(&[OsStr::new("--bind"), first.as_os_str()], &other.join("1")) {
        return;
    }
    let beside_the_mount = other.join("2");
    let args = [
        OsStr::new("-d"),
        beside_the_mount.as_os_str(),
        OsStr::new("--python"),
        python.path.as_os_str(),
        OsStr::new("--no-compile"),
    ];
    let (code, result, stderr) = run_json(&v2, &args);
    assert_eq!(code, 4, "{result}\n{stderr}");
    assert!(stderr.contains("not enough free space"), "{stderr}");
    assert!(!beside_the_mount.exists());
}
