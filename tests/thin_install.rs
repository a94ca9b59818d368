//! SPEC "Thin artifacts" and "Linked installs", the install side: a thin artifact installed
//! beside a release of its base takes the left-out wheels' files from that release (hard links,
//! or copies with `--copy`), each checked against the wheel's RECORD, and the release it builds
//! is the one the full artifact builds. Without an intact base release it exits 4 and leaves
//! nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{
    binaries, datapkg_wheel, host_python, install_with, listing, make_app, pack_version, python,
    pythons, run, snapshot, tiny_wheel, tree, Python,
};
use serde_json::Value;

/// Writes `<name>-<version>-py3-none-any.whl` into `directory`, pure Python, with `files`
/// (path, bytes, mode) besides its METADATA, WHEEL and RECORD. Returns its path.
fn write_wheel(
    directory: &Path,
    name: &str,
    version: &str,
    files: &[(&str, &[u8], u32)],
) -> PathBuf {
    const SCRIPT: &str = r##"
import base64, hashlib, json, os, sys, zipfile
directory, name, version, listed = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
info_dir = "%s-%s.dist-info" % (name, version)
files = [(path, bytes(data), mode) for path, data, mode in listed] + [
    (info_dir + "/METADATA",
     ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version)).encode(), 0o644),
    (info_dir + "/WHEEL",
     b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n", 0o644),
]
rows = []
with zipfile.ZipFile(os.path.join(directory, "%s-%s-py3-none-any.whl" % (name, version)), "w") as archive:
    for path, data, mode in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append("%s,sha256=%s,%d" % (path, digest, len(data)))
        info = zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, data)
    rows.append(info_dir + "/RECORD,,")
    archive.writestr(zipfile.ZipInfo(info_dir + "/RECORD", (1980, 1, 1, 0, 0, 0)),
                     "\n".join(rows) + "\n")
"##;
    std::fs::create_dir_all(directory).expect("create the wheel directory");
    let listed: Vec<(&str, &[u8], u32)> = files.to_vec();
    let output = run(Command::new(host_python())
        .args(["-c", SCRIPT])
        .arg(directory)
        .args([name, version])
        .arg(serde_json::to_string(&listed).expect("JSON")));
    assert!(output.status.success(), "{output:?}");
    directory.join(format!("{name}-{version}-py3-none-any.whl"))
}

/// The left-out wheel this file edits, imports and inspects: `sharedlib 1.0`, pure Python,
/// with an executable file and a data file besides its modules.
fn sharedlib_wheel(directory: &Path) -> PathBuf {
    write_wheel(
        directory,
        "sharedlib",
        "1.0",
        &[
            (
                "sharedlib/__init__.py",
                b"from .helpers import greet\nVALUE = 'sharedlib 1.0'\n",
                0o644,
            ),
            (
                "sharedlib/helpers.py",
                b"def greet(name):\n    return 'hello ' + name\n",
                0o644,
            ),
            (
                "sharedlib/tool.sh",
                b"#!/bin/sh\necho sharedlib tool\n",
                0o755,
            ),
            (
                "sharedlib/data/table.json",
                b"{\"rows\": [1, 2, 3]}\n",
                0o644,
            ),
        ],
    )
}

/// The wheels of v1 (`tinylib 1.0`) or v2 (`tinylib 1.1`), all pure Python: tinylib, which
/// requires sharedlib, changes; sharedlib and datapkg (launchers, `.data/scripts`, data,
/// headers) are the same files in both, so a thin v2 leaves them out.
fn wheel_directory(root: &Path, tinylib: &str) -> PathBuf {
    let directory = root.join(format!("wheels-{tinylib}"));
    std::fs::create_dir_all(&directory).expect("create");
    let datapkg = datapkg_wheel().join("pysfx_datapkg-1.0-py3-none-any.whl");
    std::fs::copy(&datapkg, directory.join(datapkg.file_name().expect("name"))).expect("copy");
    sharedlib_wheel(&directory);
    tiny_wheel(&directory, "tinylib", tinylib, &["sharedlib"]);
    directory
}

/// Packs with byte-code compiled by CPython 3.11 (as tests/thin_pack.rs does), so 3.11 gets
/// the `.pyc` files from the artifact and every other version compiles at install.
fn pack_ok(app: &Path, version: &str, wheels: &Path, extra: &[&OsStr], out: &Path) -> PathBuf {
    let result = pack_version(app, version, wheels, extra, out);
    assert!(
        result.status.success(),
        "pysfx pack: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    out.to_path_buf()
}

/// v1 (full), v2 packed `--thin-from` v1, and v2 packed full from the same inputs.
struct Artifacts {
    root: tempfile::TempDir,
    v1: PathBuf,
    thin: PathBuf,
    full: PathBuf,
}

impl Artifacts {
    fn pack() -> Artifacts {
        let root = tempfile::tempdir().expect("tempdir");
        let app = make_app(root.path(), "demoapp");
        let v1_wheels = wheel_directory(root.path(), "1.0");
        let v2_wheels = wheel_directory(root.path(), "1.1");
        let v1 = pack_v1(&app, &v1_wheels, root.path());
        let thin = pack_ok(
            &app,
            "2.0",
            &v2_wheels,
            &[OsStr::new("--thin-from"), v1.as_os_str()],
            &root.path().join("v2-thin.sfx"),
        );
        let full = pack_ok(&app, "2.0", &v2_wheels, &[], &root.path().join("v2.sfx"));
        let thin_json = inspect_json(&thin);
        let left_out: BTreeSet<&str> = thin_json["manifest"]["wheels"]
            .as_array()
            .expect("wheels")
            .iter()
            .filter(|wheel| wheel["from_base"] == Value::Bool(true))
            .filter_map(|wheel| wheel["filename"].as_str())
            .collect();
        // The premise of every test here: the two shared wheels are left out, tinylib is not.
        assert_eq!(
            left_out,
            BTreeSet::from([
                "pysfx_datapkg-1.0-py3-none-any.whl",
                "sharedlib-1.0-py3-none-any.whl"
            ])
        );
        Artifacts {
            root,
            v1,
            thin,
            full,
        }
    }

    /// A new directory under the test's root, to install releases into.
    fn parent(&self, name: &str) -> PathBuf {
        let parent = self.root.path().join(name);
        std::fs::create_dir_all(&parent).expect("create the parent");
        parent
    }
}

fn inspect_json(artifact: &Path) -> Value {
    let output = run(Command::new(&binaries().pysfx)
        .arg("inspect")
        .arg(artifact)
        .arg("--json"));
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("inspect --json prints JSON")
}

/// Installs `artifact` into `destination` with `python`; panics unless it exits 0. Returns the
/// `--json` object.
fn install_ok(artifact: &Path, destination: &Path, python: &Python, extra: &[&OsStr]) -> Value {
    let (code, json, stderr) = install_with(artifact, destination, &python.path, extra);
    assert_eq!(
        code,
        0,
        "{} -d {}: {json}\n{stderr}",
        artifact.display(),
        destination.display()
    );
    json
}

/// Installs a release to link from, or to compare with: panics unless the artifact exits 0.
/// Unlike [`install_ok`] it runs no `pip check` (seconds per release, and these releases are
/// not what the tests here are about: tests/install.rs checks full installs).
fn install_base(artifact: &Path, destination: &Path, python: &Python) -> Value {
    let output = run(Command::new(artifact)
        .arg("-d")
        .arg(destination)
        .arg("--python")
        .arg(&python.path)
        .arg("--json"));
    assert!(
        output.status.success(),
        "{} -d {}: {}",
        artifact.display(),
        destination.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

fn linked_files(json: &Value) -> u64 {
    json["linked_files"].as_u64().expect("linked_files")
}

/// `ARTIFACT --check RELEASE`: panics unless the release is intact (exit 0).
fn assert_intact(artifact: &Path, release: &Path) {
    let output = run(Command::new(artifact).arg("--check").arg(release));
    assert_eq!(
        output.status.code(),
        Some(0),
        "--check {}: {}{}",
        release.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The release's interpreter imports the left-out wheels and the carried one, and runs a
/// left-out wheel's console script.
fn assert_imports(release: &Path) {
    let python = release.join("venv/bin/python");
    let script = "import sharedlib, sharedlib.helpers, datapkg, tinylib, appcore\n\
                  print(sharedlib.VALUE, tinylib.VALUE, sharedlib.helpers.greet('thin'))";
    let output = run(Command::new(&python).args(["-c", script]));
    assert!(output.status.success(), "{python:?}: {output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "sharedlib 1.0 tinylib 1.1 hello thin"
    );
    let cli = run(&mut Command::new(release.join("venv/bin/datapkg-cli")));
    assert!(cli.status.success(), "datapkg-cli in {release:?}: {cli:?}");
}

fn site_packages(release: &Path, python: &Python) -> PathBuf {
    release.join(format!("venv/lib/python{}/site-packages", python.version()))
}

/// What a release holds, path by path, with its DEST written `{DEST}` wherever it appears in
/// a file (shebangs, launchers, activate scripts) or a link's target; RECORD rows of files
/// whose content names DEST keep their path only. The receipt and the SBOM are left out (they
/// name DEST and the artifact by design): compare them with [`receipt_essentials`] and
/// [`sbom_essentials`].
fn release_view(release: &Path) -> BTreeMap<String, String> {
    let destination = release.to_str().expect("UTF-8");
    let normalise = |bytes: &[u8]| -> (Vec<u8>, bool) {
        let text = String::from_utf8_lossy(bytes);
        match text.contains(destination) {
            true => (text.replace(destination, "{DEST}").into_bytes(), true),
            false => (bytes.to_vec(), false),
        }
    };
    let mut view = BTreeMap::new();
    let mut names_dest = BTreeSet::new();
    let mut records = Vec::new();
    for relative in tree(release) {
        if ["pysfx-receipt.json", "pysfx-sbom.cdx.json", "pysfx-stamps"]
            .contains(&relative.as_str())
        {
            continue;
        }
        let path = release.join(&relative);
        let metadata = std::fs::symlink_metadata(&path).expect("stat");
        let state = if metadata.file_type().is_symlink() {
            let target = std::fs::read_link(&path).expect("readlink");
            let target = target.to_string_lossy().replace(destination, "{DEST}");
            format!("link -> {target}")
        } else if metadata.is_dir() {
            "directory".to_string()
        } else if relative.ends_with(".dist-info/RECORD") {
            records.push(relative.clone());
            continue;
        } else {
            let (content, changed) = normalise(&std::fs::read(&path).expect("read"));
            if changed {
                names_dest.insert(path.canonicalize().expect("canonical"));
            }
            let mode = if metadata.mode() & 0o111 != 0 {
                "executable"
            } else {
                "file"
            };
            format!(
                "{mode} {}",
                pysfx_format::hex(&<sha2::Sha256 as sha2::Digest>::digest(&content))
            )
        };
        view.insert(relative, state);
    }
    for relative in records {
        let path = release.join(&relative);
        let site_packages = path.parent().and_then(Path::parent).expect("site-packages");
        let text = std::fs::read_to_string(&path).expect("read RECORD");
        let mut rows: Vec<String> = text
            .lines()
            .map(|row| {
                let file = row.split(',').next().unwrap_or_default();
                let names = site_packages
                    .join(file)
                    .canonicalize()
                    .is_ok_and(|file| names_dest.contains(&file));
                match names {
                    true => format!("{file},{{names DEST}}"),
                    false => row.to_string(),
                }
            })
            .collect();
        rows.sort();
        view.insert(relative, format!("RECORD\n{}", rows.join("\n")));
    }
    view
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
}

/// The fields of a receipt that two installs of the same wheels by the same interpreter share,
/// whichever artifact (thin or full) they came from: everything but where, when and from
/// which payload.
fn receipt_essentials(release: &Path) -> Value {
    let mut receipt = read_json(&release.join("pysfx-receipt.json"));
    let object = receipt.as_object_mut().expect("an object");
    for key in [
        "artifact",
        "destination",
        "installed_at",
        "installed_at_nanos",
        "payload_sha256",
        "manifest",
    ] {
        assert!(object.remove(key).is_some(), "the receipt has no {key}");
    }
    // The activate scripts name DEST, and so do the RECORDs of distributions with scripts
    // (their launchers' hashes): their digests differ from release to release (the RECORDs
    // are compared row by row, DEST left aside, in `release_view`). The SBOM names its
    // artifact's payload (its essentials are compared in `sbom_essentials`).
    let files = receipt["contents"]["files"]
        .as_array_mut()
        .expect("the receipt's files");
    files.retain(|file| {
        !file["path"].as_str().is_some_and(|path| {
            path.starts_with("venv/bin/activate")
                || path.ends_with(".dist-info/RECORD")
                || path == "pysfx-sbom.cdx.json"
        })
    });
    receipt
}

/// The SBOM's app and components (the installed wheels: name, version, purl, SHA-256, their
/// `bom-ref`, which is the same for a wheel a thin artifact leaves out as for a carried one).
fn sbom_essentials(release: &Path) -> Value {
    let sbom = read_json(&release.join("pysfx-sbom.cdx.json"));
    let components = sbom["components"].as_array().expect("components");
    assert!(!components.is_empty());
    serde_json::json!({
        "app": sbom["metadata"]["component"],
        "components": sbom["components"],
        "dependencies": sbom["dependencies"],
    })
}

/// (device, inode) of every regular file under `root`.
fn inodes(root: &Path) -> BTreeMap<(u64, u64), String> {
    tree(root)
        .into_iter()
        .filter_map(|relative| {
            let metadata = std::fs::symlink_metadata(root.join(&relative)).ok()?;
            metadata
                .is_file()
                .then(|| ((metadata.dev(), metadata.ino()), relative))
        })
        .collect()
}

/// A thin v2 installed beside v1 is the full v2's release, file for file and RECORD for
/// RECORD; the left-out files are hard links to v1's, and the release checks and imports.
#[test]
fn thin_release_beside_its_base_is_the_full_release() {
    let artifacts = Artifacts::pack();
    let python = python(11);
    let parent = artifacts.parent("parent");
    let (v1, v2) = (parent.join("1"), parent.join("2"));
    // Beside nothing; a name as long as "parent", so that DEST, which launchers and activate
    // scripts name, takes as many bytes in both releases.
    let full_v2 = artifacts.parent("vacant").join("2");

    let first = install_base(&artifacts.v1, &v1, &python);
    assert_eq!(linked_files(&first), 0, "nothing beside v1: {first}");
    let thin = install_ok(&artifacts.thin, &v2, &python, &[]);
    assert!(linked_files(&thin) > 0, "{thin}");
    assert!(
        thin["linked_bytes"].as_u64().is_some_and(|b| b > 0),
        "{thin}"
    );
    let full = install_base(&artifacts.full, &full_v2, &python);
    assert_eq!(linked_files(&full), 0, "nothing beside vacant/2: {full}");

    let thin_view = release_view(&v2);
    let full_view = release_view(&full_v2);
    // Byte-code of a left-out wheel (linked from v1) and of the carried one are compared too.
    for pyc in [
        "sharedlib/__pycache__/helpers",
        "tinylib/__pycache__/__init__",
    ] {
        let path = format!("venv/lib/python3.11/site-packages/{pyc}.cpython-311.pyc");
        assert!(thin_view.contains_key(&path), "{path} in {thin_view:#?}");
    }
    let only_thin: Vec<_> = thin_view
        .iter()
        .filter(|(path, state)| full_view.get(*path) != Some(state))
        .collect();
    let only_full: Vec<_> = full_view
        .iter()
        .filter(|(path, state)| thin_view.get(*path) != Some(state))
        .collect();
    assert!(
        only_thin.is_empty() && only_full.is_empty(),
        "the thin and the full v2 releases differ:\nthin: {only_thin:#?}\nfull: {only_full:#?}"
    );
    assert_eq!(receipt_essentials(&v2), receipt_essentials(&full_v2));
    assert_eq!(sbom_essentials(&v2), sbom_essentials(&full_v2));

    // The left-out files are v1's (hard links), the carried wheel's and the per-release files
    // are not.
    let site = site_packages(&v2, &python);
    let v1_inodes = inodes(&v1);
    let shares = |path: &Path| {
        let metadata = std::fs::metadata(path).expect("stat");
        v1_inodes.contains_key(&(metadata.dev(), metadata.ino()))
    };
    for left_out in [
        "sharedlib/helpers.py",
        "sharedlib/tool.sh",
        "datapkg/cli.py",
    ] {
        assert!(shares(&site.join(left_out)), "{left_out} is linked from v1");
    }
    for fresh in [
        "tinylib/__init__.py",
        "sharedlib-1.0.dist-info/RECORD",
        "demoapp.pth",
    ] {
        assert!(!shares(&site.join(fresh)), "{fresh} is written fresh");
    }
    assert!(!shares(&v2.join("venv/bin/datapkg-cli")));

    assert_intact(&artifacts.thin, &v2);
    assert_intact(&artifacts.full, &full_v2);
    assert_imports(&v2);
}

/// The number of names of every regular file under `root`, by path: a failed install that
/// left a link to one of them anywhere would raise its count.
fn link_counts(root: &Path) -> BTreeMap<String, u64> {
    tree(root)
        .into_iter()
        .filter_map(|relative| {
            let metadata = std::fs::symlink_metadata(root.join(&relative)).ok()?;
            metadata.is_file().then(|| (relative, metadata.nlink()))
        })
        .collect()
}

/// Without a release of its base beside DEST (none at all, a missing parent, or one for
/// another Python X.Y), a thin artifact exits 4 naming the base and the full artifact, before
/// it writes anything: not DEST, not its parents, not even the lock file beside it.
/// Two wheels of the set ship one path with different bytes, and the later one in name order
/// wins it (SPEC "Contained"). When the earlier wheel is left out of the thin artifact and the
/// later one changes, the base release holds the later wheel's file at that path, not the
/// left-out wheel's: the thin install does not ask the base for a file it would not write,
/// and builds the release the full artifact builds.
#[test]
fn a_path_a_carried_wheel_wins_is_not_asked_of_the_base() {
    let root = tempfile::tempdir().expect("tempdir");
    let app = make_app(root.path(), "demoapp");
    let wheels = |zzz: &str| {
        let directory = root.path().join(format!("wheels-{zzz}"));
        write_wheel(
            &directory,
            "aaa",
            "1.0",
            &[("common/x.py", b"A = 'aaa'\n", 0o644)],
        );
        let winner = format!("Z = 'zzz {zzz}'\n");
        write_wheel(
            &directory,
            "zzz",
            zzz,
            &[("common/x.py", winner.as_bytes(), 0o644)],
        );
        directory
    };
    let v1 = pack_v1(&app, &wheels("1.0"), root.path());
    let thin_from = [OsStr::new("--thin-from"), v1.as_os_str()];
    let wheels2 = wheels("1.1");
    let thin = pack_ok(
        &app,
        "2.0",
        &wheels2,
        &thin_from,
        &root.path().join("thin.sfx"),
    );
    let full = pack_ok(&app, "2.0", &wheels2, &[], &root.path().join("full.sfx"));
    assert_eq!(left_out(&thin), ["aaa-1.0-py3-none-any.whl"]);
    assert_thin_release_is_the_full_one(root.path(), [&v1, &thin, &full], "Z = 'zzz 1.1'\n");
}

/// `ROOT/v1.sfx`: version 1.0 of `app` with the wheels in `wheels`, full.
fn pack_v1(app: &Path, wheels: &Path, root: &Path) -> PathBuf {
    pack_ok(app, "1.0", wheels, &[], &root.join("v1.sfx"))
}

/// `ROOT/thin.sfx`: version 2.0 of `app` with the wheels in `wheels`, packed `--thin-from
/// v1`; panics unless the pack succeeds. Returns it and what the pack said.
fn pack_thin(app: &Path, v1: &Path, wheels: &Path, root: &Path) -> (PathBuf, String) {
    let thin = root.join("thin.sfx");
    let thin_from = [OsStr::new("--thin-from"), v1.as_os_str()];
    let packed = pack_version(app, "2.0", wheels, &thin_from, &thin);
    let stderr = String::from_utf8_lossy(&packed.stderr).into_owned();
    assert!(packed.status.success(), "{stderr}");
    (thin, stderr)
}

/// The file names of the wheels a thin artifact leaves out.
fn left_out(artifact: &Path) -> Vec<String> {
    inspect_json(artifact)["manifest"]["wheels"]
        .as_array()
        .expect("wheels")
        .iter()
        .filter(|wheel| wheel["from_base"] == Value::Bool(true))
        .filter_map(|wheel| wheel["filename"].as_str().map(str::to_string))
        .collect()
}

/// v1's release, then the thin v2's beside it and the full v2's alone, by CPython 3.11: the
/// two v2 releases are alike, `common/x.py` holds `x_py`, and the thin one checks intact.
fn assert_thin_release_is_the_full_one(root: &Path, [v1, thin, full]: [&Path; 3], x_py: &str) {
    let python = python(11);
    let releases = root.join("releases");
    install_base(v1, &releases.join("1"), &python);
    install_ok(thin, &releases.join("2"), &python, &[]);
    let fresh = root.join("fresh/2");
    install_base(full, &fresh, &python);
    let site = site_packages(&releases.join("2"), &python);
    assert_eq!(
        std::fs::read_to_string(site.join("common/x.py")).expect("x.py"),
        x_py
    );
    assert_eq!(release_view(&releases.join("2")), release_view(&fresh));
    assert_intact(thin, &releases.join("2"));
}

/// Two wheels of v1 ship one path with different bytes, and the later one (zzz) wins it in a
/// release of v1. v2 drops zzz, or has a zzz 2.0 that no longer ships the path: its install
/// writes aaa's file there, which no release of v1 holds, so the thin v2 carries aaa whole
/// (with a warning naming the path) instead of leaving it out, and installs beside v1 as the
/// full v2 does.
#[test]
fn a_wheel_that_lost_a_path_in_the_base_is_carried_when_nothing_wins_it_again() {
    for zzz_2 in [false, true] {
        let root = tempfile::tempdir().expect("tempdir");
        let app = make_app(root.path(), "demoapp");
        let v1_wheels = root.path().join("wheels-1");
        let v2_wheels = root.path().join("wheels-2");
        for directory in [&v1_wheels, &v2_wheels] {
            let aaa = [("common/x.py", &b"A = 'aaa'\n"[..], 0o644)];
            write_wheel(directory, "aaa", "1.0", &aaa);
            sharedlib_wheel(directory);
        }
        let zzz = [("common/x.py", &b"Z = 'zzz'\n"[..], 0o644)];
        write_wheel(&v1_wheels, "zzz", "1.0", &zzz);
        if zzz_2 {
            let moved = [("zzz/x.py", &b"Z = 'zzz 2'\n"[..], 0o644)];
            write_wheel(&v2_wheels, "zzz", "2.0", &moved);
        }
        let v1 = pack_v1(&app, &v1_wheels, root.path());
        let (thin_path, stderr) = pack_thin(&app, &v1, &v2_wheels, root.path());
        assert!(
            stderr.contains("aaa-1.0-py3-none-any.whl: carried whole")
                && stderr.contains("common/x.py"),
            "zzz 2.0: {zzz_2}: {stderr}"
        );
        assert_eq!(left_out(&thin_path), ["sharedlib-1.0-py3-none-any.whl"]);
        let full = pack_ok(&app, "2.0", &v2_wheels, &[], &root.path().join("full.sfx"));
        let artifacts = [&*v1, &*thin_path, &*full];
        assert_thin_release_is_the_full_one(root.path(), artifacts, "A = 'aaa'\n");
    }
}

/// A wheel that ships byte-code beside a source (numpy does), left out of the thin v2: no
/// release holds that byte-code (the release's is its own), so the husk carries it, and the
/// thin release beside v1 is the full one.
#[test]
fn a_left_out_wheel_that_ships_byte_code_installs_beside_its_base() {
    let root = tempfile::tempdir().expect("tempdir");
    let app = make_app(root.path(), "demoapp");
    let v1_wheels = root.path().join("wheels-1");
    let v2_wheels = root.path().join("wheels-2");
    let wheel = "shipspyc-1.0-py3-none-any.whl";
    for (directory, aaa) in [(&v1_wheels, "1.0"), (&v2_wheels, "1.1")] {
        let x_py = format!("A = 'aaa {aaa}'\n");
        write_wheel(
            directory,
            "aaa",
            aaa,
            &[("common/x.py", x_py.as_bytes(), 0o644)],
        );
        std::fs::copy(
            pysfx_e2e::contained_wheels().join(wheel),
            directory.join(wheel),
        )
        .expect("copy the wheel");
    }
    let v1 = pack_v1(&app, &v1_wheels, root.path());
    let (thin, _) = pack_thin(&app, &v1, &v2_wheels, root.path());
    assert_eq!(left_out(&thin), [wheel]);
    let full = pack_ok(&app, "2.0", &v2_wheels, &[], &root.path().join("full.sfx"));
    assert_thin_release_is_the_full_one(root.path(), [&v1, &thin, &full], "A = 'aaa 1.1'\n");
}

#[test]
fn thin_without_its_base_exits_4_and_writes_nothing() {
    let artifacts = Artifacts::pack();
    let python = python(11);
    let v1_digest = inspect_json(&artifacts.v1)["payload_sha256"]
        .as_str()
        .expect("payload_sha256")
        .to_string();
    let refused = |destination: &Path, python: &Python, extra: &[&OsStr]| -> String {
        let (code, json, stderr) = install_with(&artifacts.thin, destination, &python.path, extra);
        assert_eq!(code, 4, "{json}\n{stderr}");
        assert_eq!(json["exit_code"], Value::from(4), "{json}");
        assert_eq!(json["changed"], Value::Bool(false), "{json}");
        let parent = destination.parent().expect("a parent");
        let needs = format!(
            "this thin artifact needs a release of demoapp 1.0 (payload {v1_digest}) beside {}, \
             or the full artifact",
            parent.display()
        );
        assert!(stderr.contains(&needs), "{stderr}");
        stderr
    };

    let empty = artifacts.parent("empty");
    refused(&empty.join("2"), &python, &[]);
    assert_eq!(listing(&empty), Vec::<String>::new(), "nothing written");

    let missing = artifacts.root.path().join("missing");
    refused(&missing.join("releases/2"), &python, &[]);
    assert!(!missing.exists(), "DEST's parents are not created");

    // v1 installed by another Python X.Y: files are linked only within one X.Y, so it does not
    // count.
    let other = artifacts.parent("other-python");
    let other_python = python_other_than(11);
    install_base(&artifacts.v1, &other.join("1"), &other_python);
    let before = snapshot(&other);
    let stderr = refused(&other.join("2"), &python, &[]);
    assert!(stderr.contains("for Python 3.11"), "{stderr}");
    // The release is named, with why it could not be used.
    assert!(
        stderr.contains(&format!(
            "{}: it was installed for Python 3.{}",
            other.join("1").display(),
            other_python.minor
        )),
        "{stderr}"
    );
    assert_eq!(
        snapshot(&other),
        before,
        "nothing written beside the other v1"
    );

    // A base another run holds (its lock taken, as `--keep` removing it would): refused the
    // same way, saying so.
    let locked = artifacts.parent("locked");
    install_base(&artifacts.v1, &locked.join("1"), &python);
    let holder = std::fs::File::open(locked.join(".1.pysfx-lock")).expect("the lock file");
    holder.lock().expect("lock it");
    let stderr = refused(&locked.join("2"), &python, &[]);
    assert!(
        stderr.contains("another pysfx run holds its lock, try again once that run ends"),
        "{stderr}"
    );
    drop(holder);

    // A base passed over for what it is, not for a lock, says why, and not to try again: its
    // venv moved and replaced by a link; then its lock file a FIFO.
    let moved = artifacts.parent("moved");
    install_base(&artifacts.v1, &moved.join("1"), &python);
    std::fs::rename(moved.join("1/venv"), moved.join("venv1")).expect("move the venv");
    std::os::unix::fs::symlink("../venv1", moved.join("1/venv")).expect("link it");
    let stderr = refused(&moved.join("2"), &python, &[]);
    assert!(
        stderr.contains("no longer a directory of its own") && !stderr.contains("try again"),
        "{stderr}"
    );
    let fifo = artifacts.parent("fifo");
    install_base(&artifacts.v1, &fifo.join("1"), &python);
    std::fs::remove_file(fifo.join(".1.pysfx-lock")).expect("remove the lock file");
    let made = run(Command::new("mkfifo").arg(fifo.join(".1.pysfx-lock")));
    assert!(made.status.success(), "mkfifo");
    let stderr = refused(&fifo.join("2"), &python, &[]);
    assert!(
        stderr.contains("is not a regular file") && !stderr.contains("try again"),
        "{stderr}"
    );

    // A base missing a part a release must have (its venv's pyvenv.cfg) is named, with it.
    let partial = artifacts.parent("partial");
    install_base(&artifacts.v1, &partial.join("1"), &python);
    std::fs::remove_file(partial.join("1/venv/pyvenv.cfg")).expect("remove pyvenv.cfg");
    let stderr = refused(&partial.join("2"), &python, &[]);
    assert!(
        stderr.contains(&format!(
            "{}: venv/pyvenv.cfg is missing",
            partial.join("1").display()
        )),
        "{stderr}"
    );

    // A base whose receipt gives a left-out wheel another RECORD than the thin manifest (a
    // crafted husk, renamed rows and all, would need exactly that) does not serve it.
    let other_record = artifacts.parent("other-record");
    install_base(&artifacts.v1, &other_record.join("1"), &python);
    let receipt_path = other_record.join("1/pysfx-receipt.json");
    let mut receipt = read_json(&receipt_path);
    let wheels = receipt["manifest"]["wheels"]
        .as_array_mut()
        .expect("the receipt's wheels");
    let left = left_out(&artifacts.thin);
    let wheel = (wheels.iter_mut())
        .find(|wheel| left.contains(&wheel["filename"].as_str().unwrap_or_default().to_string()))
        .expect("a left-out wheel in v1's receipt");
    let filename = wheel["filename"].as_str().unwrap_or_default().to_string();
    wheel["record_sha256"] = Value::from("0".repeat(64));
    std::fs::write(&receipt_path, receipt.to_string()).expect("write the receipt");
    let stderr = refused(&other_record.join("2"), &python, &[]);
    assert!(
        stderr.contains(&filename)
            && stderr.contains(&format!(
                "{}: its receipt gives a wheel another RECORD than this artifact does",
                other_record.join("1").display()
            )),
        "{stderr}"
    );

    // `--force` on a modified thin release whose base is gone: refused the same way, before
    // anything is written, and the release is left as it was.
    let forced = artifacts.parent("forced");
    install_base(&artifacts.v1, &forced.join("1"), &python);
    install_base(&artifacts.thin, &forced.join("2"), &python);
    std::fs::remove_dir_all(forced.join("1")).expect("remove the base");
    let views = forced.join("2/demoapp/appcore/__init__.py");
    let mut edited = std::fs::read(&views).expect("the app file");
    edited.extend_from_slice(b"# edited\n");
    std::fs::write(&views, &edited).expect("edit");
    let before = snapshot(&forced);
    let stderr = refused(&forced.join("2"), &python, &[OsStr::new("--force")]);
    assert!(
        stderr.contains("DEST itself, which this run would replace, is not taken from"),
        "{stderr}"
    );
    assert_eq!(snapshot(&forced), before, "nothing written");

    // DEST holding the only base, without `--force`: the thin artifact would not replace it,
    // so that is the refusal (exit 5), not a base it could not use anyway.
    let only = artifacts.parent("only-base");
    install_base(&artifacts.v1, &only.join("1"), &python);
    let before = snapshot(&only);
    let (code, json, stderr) = install_with(&artifacts.thin, &only.join("1"), &python.path, &[]);
    assert_eq!(code, 5, "{json}\n{stderr}");
    assert!(stderr.contains("use --force to replace it"), "{stderr}");
    assert_eq!(snapshot(&only), before, "nothing written");
}

/// A crafted thin artifact whose husk is unsafe (its RECORD skeleton names `../../../pyvenv.cfg`,
/// a file outside the venv) or corrupt (a run of rows past any row number, or of more rows
/// than the wheel has members) is the artifact's fault, exit 3 naming the row, as `pysfx
/// verify` says — not exit 4 sending the operator to look for a base release — with or
/// without one.
#[test]
fn a_thin_artifact_whose_husk_is_unsafe_is_refused_as_unsafe() {
    let artifacts = Artifacts::pack();
    let python = python(11);
    let cases: [(&str, Vec<u8>, &str); 7] = [
        (
            "unsafe",
            b"../../../pyvenv.cfg,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n".to_vec(),
            "../../../pyvenv.cfg",
        ),
        (
            "past-any-row",
            b"\x0018446744073709551615 2\n".to_vec(),
            "a malformed run of rows",
        ),
        (
            "too-many-rows",
            // (sharedlib has 7 members: each run ends within them, together they pass it.)
            b"\x000 6\n\x000 6\n".to_vec(),
            "more rows than the wheel has members",
        ),
        (
            "past-the-last-member",
            b"\x001000000 1\n".to_vec(),
            "a run of rows that ends past the wheel's last member",
        ),
        // A few kilobytes deflated: refused for its length before it is read, not after it
        // has cost gigabytes (one row per line parsed).
        (
            "bomb",
            vec![b'\n'; 9 << 20],
            "longer than a husk's RECORD may be (8 MiB)",
        ),
        (
            "fields",
            [&b"x"[..], &vec![b','; 1 << 20], b"\n"].concat(),
            "more than three fields",
        ),
        (
            "long-path",
            [&vec![b'x'; 1 << 20][..], b",,\n"].concat(),
            "a field longer than 4096 bytes",
        ),
    ];
    for (name, row, says) in cases {
        let resealed = husk_with_row(&artifacts, name, &row);
        let verify = run(Command::new(&binaries().pysfx).arg("verify").arg(&resealed));
        assert_eq!(
            verify.status.code(),
            Some(3),
            "{name}: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        for with_base in [false, true] {
            let parent = artifacts.parent(&format!("{name}-husk-{with_base}"));
            if with_base {
                install_base(&artifacts.v1, &parent.join("1"), &python);
            }
            let before = snapshot(&parent);
            let (code, json, stderr) =
                install_with(&resealed, &parent.join("2"), &python.path, &[]);
            assert_eq!(code, 3, "{name}, base {with_base}: {json}\n{stderr}");
            assert!(
                stderr.contains(says) && !stderr.contains("needs a release"),
                "{name}, base {with_base}: {stderr}"
            );
            assert!(stderr.len() < 2000, "{name}: {} bytes", stderr.len());
            // (The persistent lock file of DEST aside: the run with a base got that far.)
            let mut after = snapshot(&parent);
            after.retain(|(name, _)| name != ".2.pysfx-lock");
            assert_eq!(
                after, before,
                "{name}, base {with_base}: something was written"
            );
        }
    }
}

/// The thin artifact with `row` put first in the RECORD skeleton of sharedlib's husk, resealed
/// as `<name>-husk.sfx`.
fn husk_with_row(artifacts: &Artifacts, name: &str, row: &[u8]) -> PathBuf {
    use std::io::{Read, Write};
    let mut payload = pysfx_format::Payload::open(&artifacts.thin).expect("open the thin one");
    let manifest = payload.manifest().clone();
    let entry = (manifest.wheels.iter())
        .find(|wheel| wheel.from_base && wheel.filename.starts_with("sharedlib"))
        .expect("the husk of sharedlib")
        .clone();
    let mut husk = Vec::new();
    (payload.archive().by_name(&entry.path))
        .expect("the husk")
        .read_to_end(&mut husk)
        .expect("read the husk");
    let mut original = zip::ZipArchive::new(std::io::Cursor::new(husk)).expect("a zip");
    let mut crafted = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for index in 0..original.len() {
        let mut member = original.by_index(index).expect("a member");
        let member_name = member.name().expect("a name").to_string();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).expect("read");
        if member_name.ends_with(".dist-info/RECORD") {
            let mut first = row.to_vec();
            first.extend_from_slice(&bytes);
            bytes = first;
        }
        crafted
            .start_file(member_name, zip::write::SimpleFileOptions::default())
            .expect("start");
        crafted.write_all(&bytes).expect("write");
    }
    let crafted = crafted.finish().expect("finish").into_inner();
    let path = entry.path.clone();
    pysfx_e2e::reseal_replacing(
        &artifacts.thin,
        &artifacts.root.path().join(format!("{name}-husk.sfx")),
        |manifest| {
            for wheel in &mut manifest.wheels {
                if wheel.path == path {
                    wheel.size = crafted.len() as u64;
                }
            }
        },
        &[(path.as_str(), &crafted[..])],
    )
}

/// A base release whose interpreter is gone (its `bin/python` a dangling link, as after the
/// Python it was installed with was upgraded away) still serves a thin artifact: its files are
/// linked, not its interpreter used.
#[test]
fn a_base_whose_python_is_gone_still_serves_a_thin_artifact() {
    let artifacts = Artifacts::pack();
    let python = python(11);
    let parent = artifacts.parent("parent");
    install_base(&artifacts.v1, &parent.join("1"), &python);
    let interpreter = parent.join("1/venv/bin/python");
    std::fs::remove_file(&interpreter).expect("remove bin/python");
    std::os::unix::fs::symlink("/nonexistent/python3.11", &interpreter).expect("dangling link");
    let json = install_ok(&artifacts.thin, &parent.join("2"), &python, &[]);
    assert!(linked_files(&json) > 0, "{json}");
    assert_intact(&artifacts.thin, &parent.join("2"));
    assert_imports(&parent.join("2"));
}

/// A CPython to test with other than 3.`minor`.
fn python_other_than(minor: u32) -> Python {
    pythons()
        .into_iter()
        .find(|python| python.minor != minor)
        .expect("a second CPython to test with")
}

/// A left-out file edited in place in the base release (a hot fix appended to a module) can
/// be neither linked nor unpacked: the install exits 4 naming the file, DEST is not created,
/// nothing is left beside it but its lock file, and the base release is as it was — with and
/// without `--copy`.
#[test]
fn thin_beside_an_edited_base_fails_naming_the_file() {
    let artifacts = Artifacts::pack();
    let python = python(11);
    let parent = artifacts.parent("parent");
    let (v1, v2) = (parent.join("1"), parent.join("2"));
    install_base(&artifacts.v1, &v1, &python);
    let edited = "sharedlib/helpers.py";
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(site_packages(&v1, &python).join(edited))
        .expect("open the module");
    std::io::Write::write_all(&mut file, b"HOT_FIX = True\n").expect("append");
    drop(file);
    let check = run(Command::new(&artifacts.v1).arg("--check").arg(&v1));
    assert_eq!(check.status.code(), Some(3), "the edit shows: {check:?}");
    let before = snapshot(&parent);
    let counts = link_counts(&v1);

    for extra in [&[][..], &[OsStr::new("--copy")][..]] {
        let (code, json, stderr) = install_with(&artifacts.thin, &v2, &python.path, extra);
        assert_eq!(code, 4, "{extra:?}: {json}\n{stderr}");
        assert!(
            stderr.contains(&format!("site-packages/{edited}")) && stderr.contains("full artifact"),
            "{extra:?}: {stderr}"
        );
        // And no other release could serve: this one is named among those passed over.
        let passed_over = format!(
            "{}: a file of a left-out wheel there changed since it was installed",
            v1.display()
        );
        assert!(stderr.contains(&passed_over), "{extra:?}: {stderr}");
        assert!(!v2.exists(), "{extra:?}: DEST was created");
        assert_eq!(
            listing(&parent),
            [".1.pysfx-lock", ".2.pysfx-lock", "1"],
            "{extra:?}: only the lock file is left beside DEST"
        );
        let lock = std::fs::symlink_metadata(parent.join(".2.pysfx-lock")).expect("the lock");
        assert!(lock.is_file() && lock.len() == 0);
        let after: Vec<_> = snapshot(&parent)
            .into_iter()
            .filter(|(path, _)| path != ".2.pysfx-lock")
            .collect();
        assert_eq!(after, before, "{extra:?}: v1 changed");
        assert_eq!(link_counts(&v1), counts, "{extra:?}: a link to v1 was left");
    }
}

/// A FIFO put in the base release in place of a file a new release links, or of the
/// metadata a thin artifact's husk reads from it (by anyone who may write there), neither
/// hangs an install nor is linked: the thin artifact, linking or copying, fails naming it
/// (exit 4); the full artifact unpacks the file instead.
#[test]
fn a_fifo_in_the_base_neither_hangs_nor_is_linked() {
    let artifacts = Artifacts::pack();
    let python = python(11);
    let planted_files = ["sharedlib/helpers.py", "sharedlib-1.0.dist-info/METADATA"];
    for (index, planted) in planted_files.into_iter().enumerate() {
        let parent = artifacts.parent(&format!("parent{index}"));
        let (v1, v2) = (parent.join("1"), parent.join("2"));
        install_base(&artifacts.v1, &v1, &python);
        let path = site_packages(&v1, &python).join(planted);
        let pristine = std::fs::read(&path).expect("the file");
        std::fs::remove_file(&path).expect("rm");
        assert!(run(Command::new("mkfifo").arg(&path)).status.success());
        let install = |artifact: &Path, extra: &[&str]| {
            let output = run(Command::new("timeout")
                .arg("120")
                .arg(artifact)
                .arg("-d")
                .arg(&v2)
                .arg("--python")
                .arg(&python.path)
                .args(extra));
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        for extra in [&[][..], &["--copy"][..]] {
            let (code, stderr) = install(&artifacts.thin, extra);
            assert_eq!(code, Some(4), "{planted} {extra:?}: {stderr}");
            assert!(stderr.contains(planted), "{planted} {extra:?}: {stderr}");
            assert!(!v2.exists(), "{planted} {extra:?}: DEST was created");
        }
        let (code, stderr) = install(&artifacts.full, &[]);
        assert_eq!(code, Some(0), "{planted}: {stderr}");
        let installed = site_packages(&v2, &python).join(planted);
        assert!(std::fs::symlink_metadata(&installed)
            .expect("installed")
            .is_file());
        assert_eq!(std::fs::read(&installed).expect("read"), pristine);
        assert_intact(&artifacts.full, &v2);
    }
}

/// Two releases of the base beside DEST, the newer edited: the thin artifact takes the
/// left-out files from the intact older one (with a warning naming the edited), and the
/// release is complete and checks clean.
#[test]
fn thin_beside_an_edited_and_an_intact_base_takes_the_intact_one() {
    let artifacts = Artifacts::pack();
    let python = python(11);
    let parent = artifacts.parent("parent");
    let (intact, edited, v2) = (parent.join("1"), parent.join("2"), parent.join("3"));
    install_base(&artifacts.v1, &intact, &python);
    install_ok(&artifacts.v1, &edited, &python, &[OsStr::new("--copy")]);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(site_packages(&edited, &python).join("sharedlib/helpers.py"))
        .expect("open the module");
    std::io::Write::write_all(&mut file, b"HOT_FIX = True\n").expect("append");
    drop(file);
    let (code, json, stderr) = install_with(&artifacts.thin, &v2, &python.path, &[]);
    assert_eq!(code, 0, "{json}\n{stderr}");
    assert!(
        stderr.contains(&format!("instead of {}", edited.display())),
        "{stderr}"
    );
    assert_intact(&artifacts.thin, &v2);
    assert_imports(&v2);
    assert_eq!(
        listing(&parent),
        [
            ".1.pysfx-lock",
            ".2.pysfx-lock",
            ".3.pysfx-lock",
            "1",
            "2",
            "3"
        ]
    );
}

/// `--copy`: the left-out files are copied from the base release, checked, and share no inode
/// with it; the release is complete.
#[test]
fn copy_shares_no_file_with_the_base() {
    let artifacts = Artifacts::pack();
    let python = python(11);
    let parent = artifacts.parent("parent");
    let (v1, v2) = (parent.join("1"), parent.join("2"));
    install_base(&artifacts.v1, &v1, &python);
    let json = install_ok(&artifacts.thin, &v2, &python, &[OsStr::new("--copy")]);
    assert_eq!(linked_files(&json), 0, "{json}");
    assert_eq!(json["linked_bytes"], Value::from(0), "{json}");
    let v1_inodes = inodes(&v1);
    let v2_inodes = inodes(&v2);
    assert!(v2_inodes
        .values()
        .any(|path| path.ends_with("sharedlib/helpers.py")));
    let shared: Vec<_> = v2_inodes
        .iter()
        .filter(|(inode, _)| v1_inodes.contains_key(inode))
        .map(|(_, path)| path)
        .collect();
    assert!(shared.is_empty(), "shared with v1: {shared:?}");
    assert_intact(&artifacts.thin, &v2);
    assert_imports(&v2);
}

/// A left-out file gets the wheel's executable bit, not the one it was given since in the base
/// release (`chmod` there), and a copied source file the mtime a full install gives it (which
/// its byte-code is stamped with), linked or copied: the release is the full artifact's.
#[test]
fn a_mode_changed_in_the_base_is_not_carried_into_the_thin_release() {
    let artifacts = Artifacts::pack();
    let python = python(11);
    let full = artifacts.parent("vacant").join("2");
    install_base(&artifacts.full, &full, &python);
    let full_site = site_packages(&full, &python);
    let state = |path: &Path| {
        let metadata = std::fs::metadata(path).expect("stat");
        (metadata.mode() & 0o777, metadata.modified().expect("mtime"))
    };
    for extra in [&[][..], &[OsStr::new("--copy")][..]] {
        let parent = artifacts.parent(&format!("parent{}", extra.len()));
        let (v1, v2) = (parent.join("1"), parent.join("2"));
        install_base(&artifacts.v1, &v1, &python);
        let v1_site = site_packages(&v1, &python);
        let modes = [
            ("sharedlib/helpers.py", 0o755),
            ("sharedlib/tool.sh", 0o644),
        ];
        for (file, mode) in modes {
            let path = v1_site.join(file);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect(file);
        }
        install_ok(&artifacts.thin, &v2, &python, extra);
        for (file, _) in modes {
            let (thin, full) = (
                state(&site_packages(&v2, &python).join(file)),
                state(&full_site.join(file)),
            );
            assert_eq!(thin.0, full.0, "{extra:?}: {file}'s mode");
            // A source file's mtime is fixed (its byte-code's stamp); another's is when written.
            if file.ends_with(".py") {
                assert_eq!(thin.1, full.1, "{extra:?}: {file}'s mtime");
            }
        }
        assert_intact(&artifacts.thin, &v2);
    }
}

/// On every CPython 3.6–3.13, a thin v2 installs beside v1 installed by the same interpreter:
/// the left-out files and their byte-code (compiled at install by all but 3.11) are linked,
/// and the release checks and imports.
#[test]
fn thin_installs_beside_its_base_on_every_cpython() {
    let artifacts = Artifacts::pack();
    for python in pythons() {
        let version = python.version();
        let parent = artifacts.parent(&format!("python{version}"));
        let (v1, v2) = (parent.join("1"), parent.join("2"));
        install_base(&artifacts.v1, &v1, &python);
        let json = install_ok(&artifacts.thin, &v2, &python, &[]);
        assert!(linked_files(&json) > 0, "{version}: {json}");
        let pyc = format!(
            "sharedlib/__pycache__/helpers.cpython-{}{}.pyc",
            python.major, python.minor
        );
        let base = std::fs::metadata(site_packages(&v1, &python).join(&pyc)).expect(&pyc);
        let linked = std::fs::metadata(site_packages(&v2, &python).join(&pyc)).expect(&pyc);
        assert_eq!(
            (linked.dev(), linked.ino()),
            (base.dev(), base.ino()),
            "{version}: {pyc} is linked from v1"
        );
        assert_intact(&artifacts.thin, &v2);
        assert_imports(&v2);
    }
}

/// `DIRECTORY/python`: `python` under the wrapper's name (so that the venv runs the wrapper),
/// which makes `marker` when it is started as a byte-compile worker (`-B`).
fn marking_wrapper(directory: &Path, python: &Python, marker: &Path) -> PathBuf {
    let wrapper = directory.join("python");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\ncase \" $* \" in *\" -B \"*) : > '{}';; esac\nexec -a \"$0\" '{}' \"$@\"\n",
            marker.display(),
            python.path.display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&wrapper, PermissionsExt::from_mode(0o755)).expect("chmod");
    wrapper
}

/// The interpreter is started to compile only when a source is left without byte-code: not
/// for a thin release 2 whose carried wheel has the artifact's byte-code and whose left-out
/// wheels have their base's (CPython 3.11, which the artifact was compiled for), but when the
/// carried wheel has none for the interpreter (3.12).
#[test]
fn compile_workers_start_only_for_sources_left_without_byte_code() {
    let artifacts = Artifacts::pack();
    for (minor, compiles) in [(11, false), (12, true)] {
        let directory = artifacts.parent(&format!("python3{minor}"));
        let marker = directory.join("a compile worker started");
        let wrapper = marking_wrapper(&directory, &python(minor), &marker);
        let wrapped = Python {
            path: wrapper,
            ..python(minor)
        };
        install_base(&artifacts.v1, &directory.join("1"), &wrapped);
        let _ = std::fs::remove_file(&marker);
        let json = install_ok(&artifacts.thin, &directory.join("2"), &wrapped, &[]);
        assert!(linked_files(&json) > 0, "3.{minor}: {json}");
        assert_eq!(marker.exists(), compiles, "3.{minor}: {json}");
        let pyc = format!("tinylib/__pycache__/__init__.cpython-3{minor}.pyc");
        let site = site_packages(&directory.join("2"), &wrapped);
        assert!(site.join(&pyc).is_file(), "3.{minor}: {pyc}");
    }
}

/// Writes `oddrows-1.0-py3-none-any.whl` into `directory`: its RECORD ends its lines in CRLF
/// (as Python's `csv` writes them), lists the wheel's own `INSTALLER` (which an install
/// replaces with its own) and a byte-code row without a hash (which claims no file).
fn oddrows_wheel(directory: &Path) {
    const SCRIPT: &str = r##"
import base64, hashlib, os, sys, zipfile
files = [
    ("oddrows/__init__.py", b"VALUE = 'odd'\n"),
    ("oddrows/more.py", b"MORE = 2\n"),
    ("oddrows-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: oddrows\nVersion: 1.0\n"),
    ("oddrows-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
    ("oddrows-1.0.dist-info/INSTALLER", b"pip\n"),
]
rows = []
with zipfile.ZipFile(os.path.join(sys.argv[1], "oddrows-1.0-py3-none-any.whl"), "w") as archive:
    for path, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append("%s,sha256=%s,%d" % (path, digest, len(data)))
        archive.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)
    rows.append("oddrows/__pycache__/more.cpython-311.pyc,,")
    rows.append("oddrows-1.0.dist-info/RECORD,,")
    archive.writestr(zipfile.ZipInfo("oddrows-1.0.dist-info/RECORD", (1980, 1, 1, 0, 0, 0)),
                     "\r\n".join(rows) + "\r\n")
"##;
    let output = run(Command::new(host_python())
        .args(["-c", SCRIPT])
        .arg(directory));
    assert!(output.status.success(), "{output:?}");
}

/// A wheel whose RECORD lists rows no release gives back as the wheel has them (its own
/// `INSTALLER`, a byte-code row without a hash), in CRLF lines, is left out of a thin artifact
/// and installs beside its base as from the full artifact.
#[test]
fn a_wheel_with_rows_no_release_gives_back_installs_thin() {
    let root = tempfile::tempdir().expect("tempdir");
    let app = make_app(root.path(), "demoapp");
    let (v1_wheels, v2_wheels) = (
        wheel_directory(root.path(), "1.0"),
        wheel_directory(root.path(), "1.1"),
    );
    oddrows_wheel(&v1_wheels);
    oddrows_wheel(&v2_wheels);
    let v1 = pack_v1(&app, &v1_wheels, root.path());
    let thin_from = [OsStr::new("--thin-from"), v1.as_os_str()];
    let thin = root.path().join("v2-thin.sfx");
    let thin = pack_ok(&app, "2.0", &v2_wheels, &thin_from, &thin);
    let full = pack_ok(&app, "2.0", &v2_wheels, &[], &root.path().join("v2.sfx"));
    assert!(left_out(&thin).contains(&"oddrows-1.0-py3-none-any.whl".to_string()));
    let python = python(11);
    let releases = root.path().join("releases");
    install_base(&v1, &releases.join("1"), &python);
    install_ok(&thin, &releases.join("2"), &python, &[]);
    install_ok(&full, &root.path().join("full"), &python, &[]);
    assert_intact(&thin, &releases.join("2"));
    let record = |release: &Path| {
        let dist_info = site_packages(release, &python).join("oddrows-1.0.dist-info");
        let read = |name: &str| std::fs::read_to_string(dist_info.join(name)).expect(name);
        (read("RECORD"), read("INSTALLER"))
    };
    assert_eq!(
        record(&releases.join("2")),
        record(&root.path().join("full"))
    );
}

/// A wheel whose RECORD is more than half of what an install reads of a base release's RECORD
/// (16 MiB: the installed RECORD can be longer than the wheel's) is carried whole by a thin
/// pack, which says so, and not left out: the thin artifact installs beside its base. (Its
/// RECORD here is 9.4 MB: 5,000 files of 1,800-byte paths.)
#[test]
fn a_wheel_whose_record_is_too_long_to_take_from_a_release_is_carried_whole() {
    const SCRIPT: &str = r#"
import base64, hashlib, os, sys, zipfile
digest = base64.urlsafe_b64encode(hashlib.sha256(b"x").digest()).rstrip(b"=").decode()
deep = "bigrecord/" + "/".join(["d" * 200] * 8)
files = [("bigrecord/__init__.py", b"")] + [
    ("%s/%05d%s.txt" % (deep, n, "f" * 180), b"x") for n in range(5000)]
files += [
    ("bigrecord-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: bigrecord\nVersion: 1.0\n"),
    ("bigrecord-1.0.dist-info/WHEEL",
     b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
]
rows = []
with zipfile.ZipFile(os.path.join(sys.argv[1], "bigrecord-1.0-py3-none-any.whl"), "w") as archive:
    for name, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append("%s,sha256=%s,%d" % (name, digest, len(data)))
        archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    rows.append("bigrecord-1.0.dist-info/RECORD,,")
    archive.writestr(zipfile.ZipInfo("bigrecord-1.0.dist-info/RECORD", (1980, 1, 1, 0, 0, 0)),
                     "\n".join(rows) + "\n")
"#;
    let python = python(11);
    let root = tempfile::tempdir().expect("tempdir");
    let app = make_app(root.path(), "demoapp");
    let wheels = |tinylib: &str| {
        let directory = root.path().join(format!("wheels-{tinylib}"));
        std::fs::create_dir_all(&directory).expect("create");
        let output = run(Command::new(host_python())
            .args(["-c", SCRIPT])
            .arg(&directory));
        assert!(output.status.success(), "{output:?}");
        let datapkg = datapkg_wheel().join("pysfx_datapkg-1.0-py3-none-any.whl");
        std::fs::copy(&datapkg, directory.join(datapkg.file_name().expect("name"))).expect("copy");
        tiny_wheel(&directory, "tinylib", tinylib, &[]);
        directory
    };
    let v1 = pack_v1(&app, &wheels("1.0"), root.path());
    let (thin, stderr) = pack_thin(&app, &v1, &wheels("1.1"), root.path());
    assert!(
        stderr.contains("bigrecord-1.0-py3-none-any.whl: carried whole")
            && stderr.contains("its RECORD is"),
        "{stderr}"
    );
    assert_eq!(left_out(&thin), ["pysfx_datapkg-1.0-py3-none-any.whl"]);
    let releases = root.path().join("releases");
    install_base(&v1, &releases.join("1"), &python);
    let json = install_base(&thin, &releases.join("2"), &python);
    assert!(linked_files(&json) > 0, "{json}");
    let site = site_packages(&releases.join("2"), &python);
    assert_eq!(
        listing(&site.join(format!("bigrecord/{}", vec!["d".repeat(200); 8].join("/")))).len(),
        5000
    );
}
