//! SPEC "Thin artifacts" and "Linked installs", the install side: a thin artifact installed
//! beside a release of its base takes the left-out wheels' files from that release (hard links,
//! or copies with `--copy`), each checked against the wheel's RECORD, and the release it builds
//! is the one the full artifact builds. Without an intact base release it exits 4 and leaves
//! nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pysfx_e2e::{
    binaries, datapkg_wheel, host_python, install_with, listing, make_app, pack_command, python,
    pythons, run, snapshot, tiny_wheel, tree, Python,
};
use serde_json::Value;

const EPOCH: &str = "1700000000";

/// The left-out wheel this file edits, imports and inspects: `sharedlib 1.0`, pure Python,
/// with an executable file and a data file besides its modules.
fn sharedlib_wheel(directory: &Path) -> PathBuf {
    const SCRIPT: &str = r##"
import base64, hashlib, os, sys, zipfile
path = os.path.join(sys.argv[1], "sharedlib-1.0-py3-none-any.whl")
files = [
    ("sharedlib/__init__.py", b"from .helpers import greet\nVALUE = 'sharedlib 1.0'\n", 0o644),
    ("sharedlib/helpers.py", b"def greet(name):\n    return 'hello ' + name\n", 0o644),
    ("sharedlib/tool.sh", b"#!/bin/sh\necho sharedlib tool\n", 0o755),
    ("sharedlib/data/table.json", b'{"rows": [1, 2, 3]}\n', 0o644),
    ("sharedlib-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: sharedlib\nVersion: 1.0\n",
     0o644),
    ("sharedlib-1.0.dist-info/WHEEL",
     b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n", 0o644),
]
rows = []
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
    for name, data, mode in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append("%s,sha256=%s,%d" % (name, digest, len(data)))
        info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, data)
    rows.append("sharedlib-1.0.dist-info/RECORD,,")
    archive.writestr(zipfile.ZipInfo("sharedlib-1.0.dist-info/RECORD", (1980, 1, 1, 0, 0, 0)),
                     "\n".join(rows) + "\n")
"##;
    std::fs::create_dir_all(directory).expect("create the wheel directory");
    let output = run(Command::new(host_python())
        .args(["-c", SCRIPT])
        .arg(directory));
    assert!(output.status.success(), "{output:?}");
    directory.join("sharedlib-1.0-py3-none-any.whl")
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
    let python = python(11);
    let mut args = vec![
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--app-version"),
        OsStr::new(version),
        OsStr::new("--wheels"),
        wheels.as_os_str(),
        OsStr::new("--no-bootstrap"),
        OsStr::new("--python"),
        python.path.as_os_str(),
    ];
    args.extend_from_slice(extra);
    let result = run(pack_command(&args, out).env("SOURCE_DATE_EPOCH", EPOCH));
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
        let v1 = pack_ok(&app, "1.0", &v1_wheels, &[], &root.path().join("v1.sfx"));
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
        if relative == "pysfx-receipt.json" || relative == "pysfx-sbom.cdx.json" {
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
        let site_packages = path
            .parent()
            .and_then(Path::parent)
            .expect("site-packages");
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
    receipt
}

/// The SBOM's app and components (the installed wheels: name, version, purl, SHA-256, …),
/// without their `bom-ref`: an identifier unique within one SBOM, which pysfx makes of the
/// wheel's path in the payload (`thin/…` for a left-out wheel, `wheels/…` for a carried one).
fn sbom_essentials(release: &Path) -> Value {
    let mut sbom = read_json(&release.join("pysfx-sbom.cdx.json"));
    let components = sbom["components"].as_array_mut().expect("components");
    assert!(!components.is_empty());
    for component in components.iter_mut() {
        let object = component.as_object_mut().expect("an object");
        assert!(object.remove("bom-ref").is_some(), "{object:?}");
    }
    serde_json::json!({
        "app": sbom["metadata"]["component"],
        "components": sbom["components"],
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

    let first = install_ok(&artifacts.v1, &v1, &python, &[]);
    assert_eq!(linked_files(&first), 0, "nothing beside v1: {first}");
    let thin = install_ok(&artifacts.thin, &v2, &python, &[]);
    assert!(linked_files(&thin) > 0, "{thin}");
    assert!(thin["linked_bytes"].as_u64().is_some_and(|b| b > 0), "{thin}");
    let full = install_ok(&artifacts.full, &full_v2, &python, &[]);
    assert_eq!(linked_files(&full), 0, "nothing beside vacant/2: {full}");

    let thin_view = release_view(&v2);
    let full_view = release_view(&full_v2);
    // Byte-code of a left-out wheel (linked from v1) and of the carried one are compared too.
    for pyc in ["sharedlib/__pycache__/helpers", "tinylib/__pycache__/__init__"] {
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
    for left_out in ["sharedlib/helpers.py", "sharedlib/tool.sh", "datapkg/cli.py"] {
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
