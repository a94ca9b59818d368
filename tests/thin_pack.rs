//! SPEC "Thin artifacts", the packer's side: `pysfx pack --thin-from OLD` leaves out every wheel
//! OLD carries (same SHA-256), storing its husk (`.dist-info/` and `.data/scripts/`) instead;
//! the manifest names OLD's payload digest; `inspect` and `verify` say what the artifact relies
//! on; an OLD of another app is a usage error, a corrupt one fails as `pysfx verify` fails.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pysfx_e2e::{
    binaries, bulky_wheel, datapkg_wheel, host_python, make_app, pack_command, pack_version, run,
    tiny_wheel,
};
use serde_json::Value;
use sha2::Digest;

/// A wheel whose RECORD gives its module a hash but no size (PEP 376 allows it): the install
/// could not check a linked file by size, so it is carried whole even when OLD has it.
fn sizeless_wheel(directory: &Path) -> PathBuf {
    const SCRIPT: &str = r#"
import base64, hashlib, os, sys, zipfile
path = os.path.join(sys.argv[1], "nosize-1.0-py3-none-any.whl")
files = [
    ("nosize/__init__.py", b"VALUE = 'nosize'\n"),
    ("nosize-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: nosize\nVersion: 1.0\n"),
    ("nosize-1.0.dist-info/WHEEL",
     b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
]
rows = []
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
    for name, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        size = "" if name.endswith(".py") else str(len(data))
        rows.append("%s,sha256=%s,%s" % (name, digest, size))
        archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    rows.append("nosize-1.0.dist-info/RECORD,,")
    archive.writestr(zipfile.ZipInfo("nosize-1.0.dist-info/RECORD", (1980, 1, 1, 0, 0, 0)),
                     "\n".join(rows) + "\n")
"#;
    let output = run(Command::new(host_python())
        .args(["-c", SCRIPT])
        .arg(directory));
    assert!(output.status.success(), "{output:?}");
    directory.join("nosize-1.0-py3-none-any.whl")
}

/// The wheels of v1 (`tinylib 1.0`) or v2 (`tinylib 1.1`): the rest are the same files.
fn wheel_directory(root: &Path, tinylib: &str) -> PathBuf {
    let directory = root.join(format!("wheels-{tinylib}"));
    std::fs::create_dir_all(&directory).expect("create");
    for shared in [bulky_wheel(), datapkg_wheel()] {
        for entry in std::fs::read_dir(shared).expect("read the cache") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|extension| extension == "whl") {
                std::fs::copy(&path, directory.join(path.file_name().expect("name")))
                    .expect("copy");
            }
        }
    }
    sizeless_wheel(&directory);
    tiny_wheel(&directory, "tinylib", tinylib, &[]);
    directory
}

fn pack_output(app: &Path, version: &str, wheels: &Path, extra: &[&OsStr], out: &Path) -> Output {
    pack_version(app, version, wheels, extra, out)
}

fn pack_ok(app: &Path, version: &str, wheels: &Path, extra: &[&OsStr], out: &Path) -> PathBuf {
    let result = pack_output(app, version, wheels, extra, out);
    assert!(
        result.status.success(),
        "pysfx pack: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    out.to_path_buf()
}

fn pysfx(args: &[&OsStr]) -> Output {
    run(Command::new(&binaries().pysfx).args(args))
}

fn inspect_json(artifact: &Path) -> Value {
    let output = pysfx(&[
        OsStr::new("inspect"),
        artifact.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("inspect --json prints JSON")
}

/// An entry of an artifact's payload, read whole.
fn payload_entry(artifact: &Path, name: &str) -> Vec<u8> {
    let mut payload = pysfx_format::Payload::open(artifact).expect("open the artifact");
    let mut entry = payload.archive().by_name(name).expect(name);
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).expect("read");
    bytes
}

/// (name, unix mode) of every member of a zip, in order.
fn members(bytes: &[u8]) -> Vec<(String, Option<u32>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..archive.len())
        .map(|index| {
            let entry = archive.by_index(index).expect("member");
            (entry.name().expect("a name").to_string(), entry.unix_mode())
        })
        .collect()
}

/// What a husk carries as the wheel has it: `.data/scripts/` and `.data/headers/` (RECORD
/// itself is carried as its skeleton, checked apart).
fn in_husk(name: &str) -> bool {
    let (top, rest) = name.split_once('/').unwrap_or((name, ""));
    top.ends_with(".data") && (rest.starts_with("scripts/") || rest.starts_with("headers/"))
}

/// A member's text.
fn member_text(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut archive.by_name(name).expect(name), &mut text)
        .expect("text");
    text
}

fn record_sha256(wheel: &[u8]) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel)).expect("a zip");
    let name = (0..archive.len())
        .map(|index| {
            archive
                .by_index_raw(index)
                .expect("member")
                .name()
                .expect("a name")
                .to_string()
        })
        .find(|name| name.ends_with(".dist-info/RECORD"))
        .expect("RECORD");
    let mut bytes = Vec::new();
    archive
        .by_name(&name)
        .expect("RECORD")
        .read_to_end(&mut bytes)
        .expect("read");
    pysfx_format::hex(&sha2::Sha256::digest(&bytes))
}

/// The stored (compressed) bytes of a wheel's biggest member outside its husk, at most 4 KiB.
fn biggest_linked_member(wheel: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel)).expect("a zip");
    let biggest = (0..archive.len())
        .filter_map(|index| {
            let entry = archive.by_index_raw(index).expect("member");
            let name = entry.name().expect("a name").to_string();
            (!in_husk(&name)).then_some((entry.compressed_size(), index))
        })
        .max()
        .expect("a member outside the husk");
    let mut bytes = Vec::new();
    archive
        .by_index_raw(biggest.1)
        .expect("member")
        .take(4096)
        .read_to_end(&mut bytes)
        .expect("read");
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// v1, a full artifact, and v2, packed `--thin-from` v1 with tinylib 1.1 for 1.0.
struct Packed {
    _root: tempfile::TempDir,
    v1: PathBuf,
    v2: PathBuf,
    v1_json: Value,
    v2_json: Value,
    /// v2's wheel files, by file name.
    files: BTreeMap<String, Vec<u8>>,
}

fn pack_v1_and_thin_v2() -> Packed {
    let root = tempfile::tempdir().expect("tempdir");
    let app = make_app(root.path(), "demoapp");
    let v1_wheels = wheel_directory(root.path(), "1.0");
    let v2_wheels = wheel_directory(root.path(), "1.1");
    let v1 = pack_ok(&app, "1.0", &v1_wheels, &[], &root.path().join("v1.sfx"));
    let v2 = pack_ok(
        &app,
        "2.0",
        &v2_wheels,
        &[OsStr::new("--thin-from"), v1.as_os_str()],
        &root.path().join("v2.sfx"),
    );
    let files = std::fs::read_dir(&v2_wheels)
        .expect("read")
        .map(|entry| entry.expect("entry").path())
        .map(|path| {
            let name = path.file_name().expect("name").to_string_lossy();
            (
                name.into_owned(),
                std::fs::read(&path).expect("read the wheel"),
            )
        })
        .collect();
    Packed {
        v1_json: inspect_json(&v1),
        v2_json: inspect_json(&v2),
        _root: root,
        v1,
        v2,
        files,
    }
}

/// A wheel v2 left out: its file name, its size and its husk's.
struct LeftOut {
    filename: String,
    size: u64,
    husk: u64,
}

/// Checks every wheel entry of v2 against its file: the carried ones stored whole, the others
/// left out, with their husks in their place.
fn check_wheels(packed: &Packed) -> Vec<LeftOut> {
    let v1_bytes = std::fs::read(&packed.v1).expect("read v1");
    let v2_bytes = std::fs::read(&packed.v2).expect("read v2");
    let mut left_out = Vec::new();
    let mut scripts_in_husks = false;
    let mut runs_in_husks = false;
    for wheel in packed.v2_json["manifest"]["wheels"]
        .as_array()
        .expect("wheels")
    {
        let filename = wheel["filename"].as_str().expect("filename");
        let sha256 = wheel["sha256"].as_str().expect("sha256");
        let path = wheel["path"].as_str().expect("path");
        let original = &packed.files[filename];
        assert_eq!(sha256, pysfx_format::hex(&sha2::Sha256::digest(original)));
        assert_eq!(wheel["record_sha256"], Value::from(record_sha256(original)));
        let whole = members(original);
        let member_count = whole.len() as u64;
        assert_eq!(wheel["members"], Value::from(member_count));
        let carried = filename.starts_with("tinylib-1.1") || filename.starts_with("nosize");
        if carried {
            assert_eq!(wheel.get("from_base"), None, "{filename} is carried");
            assert_eq!(path, format!("wheels/{}/{filename}", &sha256[..16]));
            assert_eq!(payload_entry(&packed.v2, path), *original);
            continue;
        }
        assert_eq!(wheel["from_base"], Value::Bool(true), "{filename}");
        assert_eq!(path, format!("thin/{}.whl", &sha256[..16]));
        let husk = payload_entry(&packed.v2, path);
        assert_eq!(wheel["size"], Value::from(husk.len() as u64));
        let record_name = whole
            .iter()
            .map(|(name, _)| name.clone())
            .find(|name| name.ends_with(".dist-info/RECORD"))
            .expect("RECORD");
        let expected: Vec<_> = whole
            .into_iter()
            .filter(|(name, _)| in_husk(name))
            .collect();
        let mut carried = members(&husk);
        let skeleton_at = carried
            .iter()
            .position(|(name, _)| *name == record_name)
            .expect("the husk carries RECORD's skeleton");
        carried.remove(skeleton_at);
        assert_eq!(carried, expected, "the husk of {filename}");
        // The skeleton names no hash of a file the husk does not carry, and gives RECORD back
        // filled in from the rows a release of the wheel lists.
        let record = member_text(original, &record_name);
        let skeleton = member_text(&husk, &record_name);
        // Its runs stand for no more rows than the wheel has members.
        let named = pysfx_wheel::named_rows(&skeleton, member_count).expect("runs");
        for row in pysfx_wheel::Record::parse(&named).expect("rows").entries {
            let unblanked = row.hash.starts_with("sha256=") && !in_husk(&row.path);
            assert!(!unblanked, "{filename}: {} keeps its hash", row.path);
        }
        assert!(named.len() < record.len(), "{filename}: {named:?}");
        runs_in_husks |= named != skeleton;
        let rows = pysfx_wheel::Record::parse(&record).expect("RECORD").entries;
        let row = |path: &str| rows.iter().find(|row| row.path == path);
        let files = (members(original).into_iter())
            .map(|(name, _)| name)
            .filter(|name| !name.ends_with('/'));
        let dist_info = record_name.trim_end_matches("/RECORD");
        let site: Vec<pysfx_wheel::RecordEntry> = pysfx_wheel::site_paths(
            files.collect::<Vec<_>>().iter().map(String::as_str),
            dist_info,
        )
        // None for a wheel with `.data/data/` members (datapkg): its skeleton has no runs.
        .unwrap_or_default()
        .into_iter()
        .map(|path| pysfx_wheel::RecordEntry {
            hash: row(&path).map_or(String::new(), |row| row.hash.clone()),
            size: row(&path).and_then(|row| row.size),
            path,
        })
        .collect();
        let hash_of = |path: &str| row(path).map(|row| row.hash.clone());
        let filled = pysfx_wheel::fill_hashes(&skeleton, hash_of, &site.iter().collect::<Vec<_>>());
        assert_eq!(filled, record, "{filename}");
        scripts_in_husks |= expected
            .iter()
            .any(|(name, _)| name.contains(".data/scripts/"));
        // The wheel's own bytes (its biggest member outside the husk, as stored) are in v1,
        // not in v2.
        let stored = biggest_linked_member(original);
        assert!(stored.len() >= 32, "{filename}: {} bytes", stored.len());
        assert!(contains(&v1_bytes, &stored), "{filename} is in v1");
        assert!(
            !contains(&v2_bytes, &stored),
            "{filename} is left out of v2"
        );
        left_out.push(LeftOut {
            filename: filename.to_string(),
            size: original.len() as u64,
            husk: husk.len() as u64,
        });
    }
    assert!(scripts_in_husks, "datapkg's husk keeps its .data/scripts");
    assert!(runs_in_husks, "a husk's rows come from the release in runs");
    left_out
}

#[test]
fn thin_pack_leaves_out_what_the_base_carries() {
    let packed = pack_v1_and_thin_v2();
    let (v1_json, v2_json) = (&packed.v1_json, &packed.v2_json);
    assert_eq!(v1_json["manifest"].get("thin_from"), None, "v1 is full");
    assert_eq!(
        v2_json["manifest"]["thin_from"],
        serde_json::json!({"app": "demoapp", "version": "1.0",
            "payload_sha256": v1_json["payload_sha256"]}),
    );
    for wheel in v1_json["manifest"]["wheels"].as_array().expect("wheels") {
        assert!(wheel["record_sha256"].is_string(), "{wheel}");
    }
    let left_out = check_wheels(&packed);
    // The manifest lists wheels by payload path (`thin/<digest>/…`), an order of digests.
    let mut names: Vec<&str> = left_out.iter().map(|l| l.filename.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "bulky-1.0-py3-none-any.whl",
            "pysfx_datapkg-1.0-py3-none-any.whl"
        ]
    );

    // No byte-code for a left-out wheel; the carried ones have theirs.
    let bytecode = v2_json["manifest"]["bytecode"]
        .as_array()
        .expect("bytecode");
    assert!(!bytecode.is_empty());
    for bundle in bytecode {
        let wheel = bundle["wheel"].as_str().expect("wheel");
        assert!(wheel.starts_with("wheels/"), "byte-code of {wheel}");
    }

    // The artifact shrank by the left-out wheels, less their husks, at least.
    let saved: u64 = left_out.iter().map(|l| l.size - l.husk).sum();
    let v1_size = std::fs::metadata(&packed.v1).expect("v1").len();
    let v2_size = std::fs::metadata(&packed.v2).expect("v2").len();
    assert!(
        v2_size + saved <= v1_size + 64 * 1024,
        "v1 {v1_size} bytes, v2 {v2_size} bytes, {saved} bytes left out"
    );
    // The whole set is still described: unpacked bytes count the whole wheels.
    let wheels_unpacked: u64 = v2_json["manifest"]["wheels"]
        .as_array()
        .expect("wheels")
        .iter()
        .filter_map(|wheel| wheel["unpacked_bytes"].as_u64())
        .sum();
    let unpacked = v2_json["manifest"]["unpacked_bytes"].as_u64();
    assert!(unpacked.is_some_and(|unpacked| unpacked >= wheels_unpacked));
    check_listings(&packed, &left_out);
}

/// `inspect` says what v2 relies on and marks those wheels; its SBOM and pinned requirements
/// still describe every wheel, by its whole digest.
fn check_listings(packed: &Packed, left_out: &[LeftOut]) {
    let v2 = packed.v2.as_os_str();
    let output = pysfx(&[OsStr::new("inspect"), v2]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let digest = packed.v1_json["payload_sha256"].as_str().expect("digest");
    let relies = format!("relies on 2 wheels from demoapp 1.0 (payload sha256 {digest})");
    assert!(text.contains(&relies), "{text}");
    assert!(text.contains("4 wheels (2 carried, 2 from base)"), "{text}");
    for wheel in left_out {
        let line = text.lines().find(|line| line.contains(&wheel.filename));
        assert!(
            line.is_some_and(|line| line.contains("from base")),
            "{text}"
        );
    }
    let carried = text.lines().find(|line| line.contains("tinylib-1.1"));
    assert!(
        carried.is_some_and(|line| !line.contains("from base")),
        "{text}"
    );

    let sbom = pysfx(&[OsStr::new("inspect"), v2, OsStr::new("--sbom")]);
    assert!(sbom.status.success(), "{sbom:?}");
    let requirements = pysfx(&[OsStr::new("inspect"), v2, OsStr::new("--requirements")]);
    assert!(requirements.status.success(), "{requirements:?}");
    let sbom = String::from_utf8_lossy(&sbom.stdout);
    let requirements = String::from_utf8_lossy(&requirements.stdout);
    for original in packed.files.values() {
        let digest = pysfx_format::hex(&sha2::Sha256::digest(original));
        assert!(sbom.contains(&digest), "the SBOM names {digest}");
        assert!(
            requirements.contains(&digest),
            "--requirements names {digest}"
        );
    }
}

/// `pysfx verify` of a thin artifact names the wheels it relies on and the base.
#[test]
fn verify_names_what_a_thin_artifact_relies_on() {
    let packed = pack_v1_and_thin_v2();
    let output = pysfx(&[OsStr::new("verify"), packed.v2.as_os_str()]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let digest = packed.v1_json["payload_sha256"].as_str().expect("digest");
    let relies = format!("relies on 2 wheels from demoapp 1.0 (payload sha256 {digest}):");
    assert!(text.contains(&relies), "{text}");
    assert!(
        text.contains("  bulky-1.0-py3-none-any.whl sha256="),
        "{text}"
    );
    // A husk whose script differs from its RECORD row (re-sealed, so every digest holds):
    // both verifies refuse it, as the install does.
    let manifest = pysfx_format::Payload::open(&packed.v2)
        .expect("open")
        .manifest()
        .clone();
    let entry = (manifest.wheels.iter())
        .find(|wheel| wheel.from_base && wheel.name == "pysfx-datapkg")
        .expect("datapkg's husk");
    let husk = payload_entry(&packed.v2, &entry.path);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&husk)).expect("a zip");
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut changed = false;
    for index in 0..archive.len() {
        let mut member = archive.by_index(index).expect("member");
        let name = member.name().expect("a name").to_string();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).expect("read");
        if name.contains(".data/scripts/") && !changed {
            let last = bytes.len() - 2;
            bytes[last] ^= 0x20;
            changed = true;
        }
        writer
            .start_file(name, zip::write::SimpleFileOptions::default())
            .expect("member");
        std::io::Write::write_all(&mut writer, &bytes).expect("write");
    }
    assert!(changed, "the husk carries a script");
    let crafted_husk = writer.finish().expect("finish").into_inner();
    let crafted = pysfx_e2e::reseal_replacing(
        &packed.v2,
        &packed.v2.with_file_name("crafted.sfx"),
        |manifest| {
            for wheel in &mut manifest.wheels {
                if wheel.path == entry.path {
                    wheel.size = crafted_husk.len() as u64;
                }
            }
        },
        &[(entry.path.as_str(), &crafted_husk)],
    );
    for output in [
        pysfx(&[OsStr::new("verify"), crafted.as_os_str()]),
        run(Command::new(&crafted).arg("--verify")),
    ] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains("does not match its RECORD entry"),
            "{stderr}"
        );
    }
}

/// A pack whose only wheel OLD shares must be carried whole (RECORD gives a file no size)
/// says so, and that the artifact is a full one; one sharing no wheel says that instead.
#[test]
fn a_thin_pack_that_can_leave_nothing_out_says_why() {
    let root = tempfile::tempdir().expect("tempdir");
    let (shared, other) = (root.path().join("shared"), root.path().join("other"));
    std::fs::create_dir_all(&shared).expect("create");
    sizeless_wheel(&shared);
    tiny_wheel(&other, "tinylib", "1.0", &[]);
    let app = make_app(root.path(), "demoapp");
    let old = pack_ok(&app, "1.0", &shared, &[], &root.path().join("v1.sfx"));
    let thin_from = [OsStr::new("--thin-from"), old.as_os_str()];
    for (wheels, says) in [
        (
            &shared,
            "none of the wheels it shares with this pack could be left out",
        ),
        (&other, "it carries none of this pack's wheels"),
    ] {
        let out = root.path().join("v2.sfx");
        let packed = pack_output(&app, "2.0", wheels, &thin_from, &out);
        let stderr = String::from_utf8_lossy(&packed.stderr);
        assert!(packed.status.success(), "{stderr}");
        assert!(
            stderr.contains(says) && stderr.contains("the artifact is a full one"),
            "{stderr}"
        );
        let manifest = inspect_json(&out)["manifest"].clone();
        let wheels = manifest["wheels"].as_array().expect("wheels");
        assert!(
            wheels.iter().all(|wheel| wheel.get("from_base").is_none()),
            "{manifest}"
        );
    }
}

/// `--thin-from` an artifact whose sets are all for another Python `X.Y` than this pack's:
/// no release of it can ever serve the thin artifact (files are linked within one `X.Y`), and
/// the packer says so; packed for the same `X.Y`, it does not.
#[test]
fn thin_from_an_artifact_for_another_python_is_warned_of() {
    let root = tempfile::tempdir().expect("tempdir");
    let wheels = root.path().join("wheels");
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let requirements = root.path().join("requirements.txt");
    let text = format!(
        "--no-index\n--find-links {}\ntinylib==1.0\n",
        wheels.display()
    );
    std::fs::write(&requirements, text).expect("write requirements");
    let app = make_app(root.path(), "demoapp");
    let pack = |version: &str, python: &str, extra: &[&OsStr], out: &Path| {
        let mut args = vec![
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--app-version"),
            OsStr::new(version),
            OsStr::new("-r"),
            requirements.as_os_str(),
            OsStr::new("--target"),
            OsStr::new(python),
            OsStr::new("--no-bootstrap"),
            OsStr::new("--no-compile"),
        ];
        args.extend_from_slice(extra);
        let packed = run(&mut pack_command(&args, out));
        let stderr = String::from_utf8_lossy(&packed.stderr).into_owned();
        assert!(packed.status.success(), "{stderr}");
        stderr
    };
    let old = root.path().join("v1.sfx");
    pack("1.0", "3.12", &[], &old);
    let thin_from = [OsStr::new("--thin-from"), old.as_os_str()];
    let warning = "its wheel sets are for Python 3.12, this pack's for 3.11";
    let stderr = pack("2.0", "3.11", &thin_from, &root.path().join("v2.sfx"));
    assert!(stderr.contains(warning), "{stderr}");
    let stderr = pack("2.0", "3.12", &thin_from, &root.path().join("v2b.sfx"));
    assert!(!stderr.contains("its wheel sets are for"), "{stderr}");
}

/// `--thin-from` an artifact of another app is a usage error naming both; an unreadable or
/// corrupt one fails as `pysfx verify` fails on it (3 corrupt, 4 unreadable).
#[test]
fn thin_from_must_be_a_sound_artifact_of_the_same_app() {
    let root = tempfile::tempdir().expect("tempdir");
    let wheels = root.path().join("wheels");
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let pack = |app: &Path, old: &Path, out: &str| {
        let args = [
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
            OsStr::new("--thin-from"),
            old.as_os_str(),
        ];
        run(&mut pack_command(&args, &root.path().join(out)))
    };
    let app = make_app(root.path(), "demoapp");
    let other = make_app(root.path(), "otherapp");
    let old = root.path().join("other.sfx");
    let args = [
        OsStr::new("--app"),
        other.as_os_str(),
        OsStr::new("--wheels"),
        wheels.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    let packed = run(&mut pack_command(&args, &old));
    assert!(packed.status.success(), "{packed:?}");

    let refused = pack(&app, &old, "thin.sfx");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"otherapp\"") && stderr.contains("\"demoapp\""),
        "{stderr}"
    );
    assert!(!root.path().join("thin.sfx").exists());

    // One byte of the stored wheel flipped: verify's message and exit code.
    let corrupt = root.path().join("corrupt.sfx");
    let mut payload = pysfx_format::Payload::open(&old).expect("open");
    let wheel = payload.manifest().wheels[0].path.clone();
    let (start, len) = payload.stored_range(&wheel).expect("the stored wheel");
    let mut bytes = std::fs::read(&old).expect("read");
    bytes[usize::try_from(start + len / 2).expect("offset")] ^= 0xff;
    std::fs::write(&corrupt, bytes).expect("write");
    let verified = pysfx(&[OsStr::new("verify"), corrupt.as_os_str()]);
    let refused = pack(&other, &corrupt, "thin.sfx");
    assert_eq!(refused.status.code(), verified.status.code());
    assert_eq!(refused.status.code(), Some(3));
    let verify_error = String::from_utf8_lossy(&verified.stderr);
    let verify_error = verify_error.trim().trim_start_matches("error: ");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(verify_error), "{stderr} / {verify_error}");

    // Whole as its digest says, but lying about a wheel (resealed): what `pysfx verify` says
    // of it, not a thin artifact relying on it.
    let lying = pysfx_e2e::reseal_replacing(
        &old,
        &root.path().join("lying.sfx"),
        |manifest| manifest.wheels[0].version = "9.9".into(),
        &[],
    );
    let verified = pysfx(&[OsStr::new("verify"), lying.as_os_str()]);
    assert_eq!(verified.status.code(), Some(3), "{verified:?}");
    let refused = pack(&other, &lying, "thin.sfx");
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let verify_error = String::from_utf8_lossy(&verified.stderr);
    let verify_error = verify_error.trim().trim_start_matches("error: ");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(verify_error), "{stderr} / {verify_error}");
    assert!(!root.path().join("thin.sfx").exists());

    // -o OLD would replace the base with the thin artifact: an input, refused.
    let refused = pack(&other, &old, "other.sfx");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--thin-from"), "{stderr}");

    let missing = root.path().join("missing.sfx");
    let verified = pysfx(&[OsStr::new("verify"), missing.as_os_str()]);
    let refused = pack(&other, &missing, "thin.sfx");
    assert_eq!(refused.status.code(), verified.status.code());
    assert_eq!(refused.status.code(), Some(4));
}
