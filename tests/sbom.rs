//! SPEC "Supply chain", SBOM: `pysfx inspect --sbom`, `./site.sfx --sbom` and the release's
//! `pysfx-sbom.cdx.json` are CycloneDX 1.5 documents that validate against the official schema
//! (vendored in tests/fixtures/cyclonedx), name every wheel with its real SHA-256 and its sets,
//! draw the dependencies of each set from Requires-Dist, and are byte-identical for two packs of
//! the same inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::tools::validate_cyclonedx;
use pysfx_e2e::{
    binaries, bootstrap_wheels, host_python, install_with, make_app, pack, pack_command, python,
    raw_artifact, run, tiny_wheel,
};
use serde_json::Value;
use sha2::Digest;

const EPOCH: &str = "1700000000";

/// The inputs: tinylib (requires tinydep) and tinyextra from a local index, collected for
/// CPython 3.11 and 3.12, and the bootstrap wheels (pip, setuptools).
struct Inputs {
    app: PathBuf,
    requirements: PathBuf,
    found: PathBuf,
    bootstrap: PathBuf,
}

fn inputs(root: &Path) -> Inputs {
    let found = root.join("found");
    tiny_wheel(&found, "tinylib", "1.0", &["tinydep>=1.0"]);
    tiny_wheel(&found, "tinydep", "1.2", &[]);
    tiny_wheel(&found, "tinyextra", "0.1", &[]);
    let requirements = root.join("requirements.txt");
    std::fs::write(
        &requirements,
        format!(
            "--no-index\n--find-links {}\ntinylib\ntinyextra\n",
            found.display()
        ),
    )
    .expect("write the requirements");
    Inputs {
        app: make_app(root, "demoapp"),
        requirements,
        found,
        bootstrap: bootstrap_wheels(11),
    }
}

fn pack_sets(inputs: &Inputs, output: &Path) -> PathBuf {
    let args = [
        OsStr::new("--app"),
        inputs.app.as_os_str(),
        OsStr::new("--app-version"),
        OsStr::new("4.2"),
        OsStr::new("-r"),
        inputs.requirements.as_os_str(),
        OsStr::new("--target"),
        OsStr::new("3.11"),
        OsStr::new("--target"),
        OsStr::new("3.12"),
        OsStr::new("--bootstrap-wheels"),
        inputs.bootstrap.as_os_str(),
    ];
    let result = run(pack_command(&args, output).env("SOURCE_DATE_EPOCH", EPOCH));
    assert!(
        result.status.success(),
        "pysfx pack: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    output.to_path_buf()
}

fn stdout_of(command: &mut Command) -> Vec<u8> {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn inspect_sbom(artifact: &Path) -> Vec<u8> {
    stdout_of(
        Command::new(&binaries().pysfx)
            .args(["inspect", "--sbom"])
            .arg(artifact),
    )
}

/// The payload entry `name`, as stored.
fn entry(artifact: &Path, name: &str) -> Vec<u8> {
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(artifact).expect("open")).expect("a zip");
    let mut bytes = Vec::new();
    archive
        .by_name(name)
        .unwrap_or_else(|error| panic!("{name}: {error}"))
        .read_to_end(&mut bytes)
        .expect("read");
    bytes
}

fn manifest(artifact: &Path) -> Value {
    serde_json::from_slice(&entry(artifact, ".pysfx/manifest.json")).expect("manifest")
}

fn sha256_file(path: &Path) -> String {
    pysfx_format::hex(&sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

fn property_values<'a>(component: &'a Value, name: &str) -> Vec<&'a str> {
    component["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|property| property["name"] == name)
        .filter_map(|property| property["value"].as_str())
        .collect()
}

/// The component of distribution `name`.
fn component<'a>(sbom: &'a Value, name: &str) -> &'a Value {
    sbom["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|component| component["name"] == name)
        .unwrap_or_else(|| panic!("no component {name}"))
}

/// The names of the components `reference` depends on.
fn depends_on(sbom: &Value, reference: &str) -> BTreeSet<String> {
    let names: BTreeMap<&str, &str> = sbom["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| Some((c["bom-ref"].as_str()?, c["name"].as_str()?)))
        .collect();
    let entry = sbom["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .find(|dependency| dependency["ref"] == reference)
        .unwrap_or_else(|| panic!("no dependencies of {reference}"));
    entry["dependsOn"]
        .as_array()
        .expect("dependsOn")
        .iter()
        .map(|target| names[target.as_str().expect("a ref")].to_string())
        .collect()
}

#[test]
fn the_sbom_names_every_wheel_validates_and_is_reproducible() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let inputs = inputs(root);
    let first = pack_sets(&inputs, &root.join("first/site.sfx"));
    let second = pack_sets(&inputs, &root.join("second/site.sfx"));

    let text = inspect_sbom(&first);
    assert_eq!(text, inspect_sbom(&second), "two packs, two SBOMs");
    let sets = manifest(&first)["sets"].as_array().expect("sets").len();
    assert_eq!(sets, 2);
    for index in 0..sets {
        let name = format!(".pysfx/sbom/set-{index}.cdx.json");
        assert_eq!(entry(&first, &name), entry(&second, &name), "{name}");
    }
    assert_eq!(text, entry(&first, ".pysfx/sbom.cdx.json"));

    let sbom: Value = serde_json::from_slice(&text).expect("JSON");
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.5");
    assert_eq!(sbom["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(sbom["metadata"]["component"]["name"], "demoapp");
    assert_eq!(sbom["metadata"]["component"]["version"], "4.2");
    assert_eq!(sbom["metadata"]["tools"]["components"][0]["name"], "pysfx");

    // The serial number: uuid5(NAMESPACE_URL, "pysfx-sbom:" + sha256 of the manifest entry),
    // as docs/format.md says, computed here by Python.
    let script = "import hashlib, sys, uuid, zipfile\n\
        digest = hashlib.sha256(zipfile.ZipFile(sys.argv[1]).read('.pysfx/manifest.json')).hexdigest()\n\
        print('urn:uuid:%s' % uuid.uuid5(uuid.NAMESPACE_URL, 'pysfx-sbom:' + digest))";
    let expected = stdout_of(Command::new(host_python()).args(["-c", script]).arg(&first));
    assert_eq!(
        sbom["serialNumber"],
        String::from_utf8_lossy(&expected).trim()
    );

    // One component per wheel file packed, with the file's real SHA-256.
    let mut packed: BTreeSet<(String, String)> = BTreeSet::new();
    for directory in [&inputs.found, &inputs.bootstrap] {
        for file in std::fs::read_dir(directory).expect("read_dir") {
            let path = file.expect("entry").path();
            if path.extension() == Some(OsStr::new("whl")) {
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                packed.insert((name, sha256_file(&path)));
            }
        }
    }
    let components = sbom["components"].as_array().expect("components");
    let listed: BTreeSet<(String, String)> = components
        .iter()
        .map(|component| {
            assert_eq!(component["type"], "library");
            assert_eq!(component["hashes"][0]["alg"], "SHA-256");
            let file = property_values(component, "pysfx:wheel_file")[0].to_string();
            let digest = component["hashes"][0]["content"].as_str().expect("digest");
            (file, digest.to_string())
        })
        .collect();
    assert_eq!(listed, packed);
    let tinylib = component(&sbom, "tinylib");
    assert_eq!(tinylib["purl"], "pkg:pypi/tinylib@1.0");
    let mut in_sets = property_values(tinylib, "pysfx:wheel_set");
    in_sets.sort_unstable();
    assert!(
        in_sets.len() == 2 && in_sets[0].starts_with("cp311") && in_sets[1].starts_with("cp312"),
        "{in_sets:?}"
    );
    assert_eq!(
        property_values(component(&sbom, "pip"), "pysfx:bootstrap"),
        ["true"]
    );

    // Requires-Dist within the sets; the app depends on what nothing else requires.
    let tinylib_ref = tinylib["bom-ref"].as_str().expect("bom-ref");
    assert_eq!(
        depends_on(&sbom, tinylib_ref),
        BTreeSet::from(["tinydep".into()])
    );
    let roots = depends_on(&sbom, "app:demoapp");
    for name in ["tinylib", "tinyextra", "pip", "setuptools"] {
        assert!(roots.contains(name), "{name} not under the app: {roots:?}");
    }
    assert!(!roots.contains("tinydep"), "{roots:?}");

    // Every stored SBOM validates against the official schema.
    let mut documents = vec![root.join("whole.cdx.json")];
    std::fs::write(&documents[0], &text).expect("write");
    for index in 0..sets {
        let path = root.join(format!("set-{index}.cdx.json"));
        std::fs::write(
            &path,
            entry(&first, &format!(".pysfx/sbom/set-{index}.cdx.json")),
        )
        .expect("write");
        documents.push(path);
    }
    let paths: Vec<&Path> = documents.iter().map(PathBuf::as_path).collect();
    let (code, report) = validate_cyclonedx(&paths);
    assert_eq!(code, 0, "{report}");
}

#[test]
fn the_validator_refuses_what_the_schema_refuses() {
    // The check above means something only if the validator fails a bad document, resolving
    // the schema's references to the SPDX schema offline.
    let work = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("no-format", r#"{"specVersion": "1.5"}"#),
        (
            "bad-serial",
            r#"{"bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": "1234"}"#,
        ),
        (
            "bad-license",
            r#"{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{"type":
            "library", "name": "x", "licenses": [{"license": {"id": "NOT-SPDX"}}]}]}"#,
        ),
        (
            "bad-time",
            r#"{"bomFormat": "CycloneDX", "specVersion": "1.5", "metadata": {"timestamp":
            "yesterday"}}"#,
        ),
    ];
    for (name, text) in cases {
        let path = work.path().join(format!("{name}.json"));
        std::fs::write(&path, text).expect("write");
        let (code, report) = validate_cyclonedx(&[&path]);
        assert_eq!(code, 1, "{name}: {report}");
    }
    let good = work.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{"type": "library",
        "name": "x", "licenses": [{"license": {"id": "MIT"}}]}]}"#,
    )
    .expect("write");
    let (code, report) = validate_cyclonedx(&[&good]);
    assert_eq!(code, 0, "{report}");
}

#[test]
fn the_artifact_prints_its_sbom_and_a_release_gets_its_sets() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let inputs = inputs(root);
    let artifact = pack_sets(&inputs, &root.join("site.sfx"));

    let printed = stdout_of(Command::new(&artifact).arg("--sbom"));
    assert_eq!(printed, inspect_sbom(&artifact));

    let destination = root.join("releases/1");
    let (code, result, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    let set = result["wheel_set"].as_str().expect("wheel_set").to_string();
    assert!(set.starts_with("cp311"), "{set}");
    let sets = manifest(&artifact)["sets"].clone();
    let index = sets
        .as_array()
        .expect("sets")
        .iter()
        .position(|s| s["name"] == set.as_str())
        .expect("the installed set");
    let written = std::fs::read(destination.join("pysfx-sbom.cdx.json")).expect("the SBOM");
    assert_eq!(
        written,
        entry(&artifact, &format!(".pysfx/sbom/set-{index}.cdx.json"))
    );
    let sbom = assert_lists_what_was_installed(&destination);
    assert_eq!(sbom["metadata"]["properties"][1]["value"], set.as_str());
    let (code, report) = validate_cyclonedx(&[&destination.join("pysfx-sbom.cdx.json")]);
    assert_eq!(code, 0, "{report}");
}

#[test]
fn an_artifact_packed_without_sboms_gets_one_from_inspect_and_none_from_the_stub() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let wheel = tiny_wheel(&root.join("wheels"), "tinylib", "1.0", &[]);
    let artifact = raw_artifact(
        &root.join("old.sfx"),
        std::slice::from_ref(&wheel),
        &[],
        |_| {},
    );
    let output = run(Command::new(&binaries().pysfx)
        .args(["inspect", "--sbom"])
        .arg(&artifact));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sbom: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        component(&sbom, "tinylib")["hashes"][0]["content"],
        sha256_file(&wheel)
    );
    let output = run(Command::new(&artifact).arg("--sbom"));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds no SBOM"));
}

/// With bootstrap wheels for several Pythons (pip and setuptools for 3.6 and for 3.11 here),
/// a release's SBOM lists the ones its interpreter got, not every one on offer.
#[test]
fn a_release_sbom_lists_the_bootstrap_wheels_it_got() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let mut inputs = inputs(root);
    let bootstrap = root.join("bootstrap");
    std::fs::create_dir_all(&bootstrap).expect("mkdir");
    for minor in [6, 11] {
        for wheel in std::fs::read_dir(bootstrap_wheels(minor)).expect("bootstrap wheels") {
            let wheel = wheel.expect("entry").path();
            std::fs::copy(&wheel, bootstrap.join(wheel.file_name().expect("a name")))
                .expect("copy");
        }
    }
    inputs.bootstrap = bootstrap;
    let artifact = pack_sets(&inputs, &root.join("site.sfx"));
    let pips = manifest(&artifact)["wheels"]
        .as_array()
        .expect("wheels")
        .iter()
        .filter(|wheel| wheel["name"] == "pip")
        .count();
    assert_eq!(pips, 2, "pip for 3.6 and for 3.11 on offer");
    let destination = root.join("releases/1");
    let (code, result, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert_lists_what_was_installed(&destination);
}

/// The release's SBOM lists exactly the wheels its receipt says were installed; returns it.
fn assert_lists_what_was_installed(destination: &Path) -> Value {
    let sbom: Value = serde_json::from_slice(
        &std::fs::read(destination.join("pysfx-sbom.cdx.json")).expect("the SBOM"),
    )
    .expect("JSON");
    let receipt: Value = serde_json::from_slice(
        &std::fs::read(destination.join("pysfx-receipt.json")).expect("receipt"),
    )
    .expect("receipt JSON");
    let installed: BTreeSet<&str> = receipt["wheels"]
        .as_array()
        .expect("wheels")
        .iter()
        .filter_map(|wheel| wheel["filename"].as_str())
        .collect();
    let listed: BTreeSet<&str> = sbom["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|component| property_values(component, "pysfx:wheel_file")[0])
        .collect();
    assert_eq!(listed, installed);
    sbom
}

/// A wheel the interpreter does not get (left out for its `Requires-Python`) is in the set's
/// SBOM in the artifact, and not in the SBOM of the release that went without it.
#[test]
fn a_release_sbom_leaves_out_a_wheel_skipped_for_its_requires_python() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let wheels = root.join("wheels");
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    pysfx_e2e::wheel_requiring_python(&wheels, "newpy", "1.0", ">=3.12");
    let app = make_app(root, "demoapp");
    let artifact = root.join("site.sfx");
    let args = [
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--wheels"),
        wheels.as_os_str(),
    ];
    let result = run(&mut pack_command(&args, &artifact));
    assert!(
        result.status.success(),
        "pysfx pack: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let whole: Value = serde_json::from_slice(&entry(&artifact, ".pysfx/sbom/set-0.cdx.json"))
        .expect("the set's SBOM");
    assert_eq!(component(&whole, "newpy")["name"], "newpy");
    let destination = root.join("releases/1");
    let (code, result, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert_eq!(result["skipped"], serde_json::json!(["newpy"]), "{result}");
    let sbom = assert_lists_what_was_installed(&destination);
    let (code, report) = validate_cyclonedx(&[&destination.join("pysfx-sbom.cdx.json")]);
    assert_eq!(code, 0, "{report}");
    assert!(depends_on(&sbom, "app:demoapp")
        .iter()
        .all(|reference| !reference.contains("newpy")));
    // Cut, it is another document than the set's: its own serial number.
    assert_ne!(sbom["serialNumber"], whole["serialNumber"], "{sbom}");
    // `inspect --sbom --python` prints that very SBOM without installing.
    let inspected = run(Command::new(&binaries().pysfx)
        .args(["inspect", "--sbom", "--python"])
        .arg(&python(11).path)
        .arg(&artifact));
    assert!(
        inspected.status.success(),
        "{}",
        String::from_utf8_lossy(&inspected.stderr)
    );
    assert_eq!(
        inspected.stdout,
        std::fs::read(destination.join("pysfx-sbom.cdx.json")).expect("the release's SBOM")
    );
}

/// An artifact of the demo app with one wheel, tinylib 1.0, in `root`.
fn tinylib_artifact(root: &Path) -> PathBuf {
    let wheels = root.join("wheels");
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let app = make_app(&root.join("src"), "demoapp");
    pack(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &root.join("site.sfx"),
    )
}

/// `pysfx verify` makes the SBOMs again from the manifest: a stored SBOM that lists another
/// version than the artifact carries (re-sealed, so every digest holds) is refused (exit 3),
/// and the SBOMs are deflated in the payload, as the manifest is.
#[test]
fn verify_refuses_an_sbom_that_is_not_the_manifests() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let artifact = tinylib_artifact(root);
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&artifact).expect("open")).expect("a zip");
    let stored = archive.by_name(pysfx_format::SBOM_NAME).expect("the SBOM");
    assert_eq!(stored.compression(), zip::CompressionMethod::Deflated);
    drop(stored);
    let verify = |artifact: &Path| run(Command::new(&binaries().pysfx).arg("verify").arg(artifact));
    assert!(verify(&artifact).status.success());
    let sbom = String::from_utf8(entry(&artifact, pysfx_format::SBOM_NAME)).expect("text");
    assert!(sbom.contains("tinylib@1.0"), "{sbom}");
    let lie = sbom.replace("tinylib@1.0", "tinylib@9.9");
    let crafted = pysfx_e2e::reseal_replacing(
        &artifact,
        &root.join("lie.sfx"),
        |_| {},
        &[(pysfx_format::SBOM_NAME, lie.as_bytes())],
    );
    // Saying the artifact is of another pysfx version does not excuse the lie: the layout
    // may differ then, the components may not.
    let other_version = pysfx_e2e::reseal_replacing(
        &artifact,
        &root.join("lie-old.sfx"),
        |manifest| manifest.pysfx_version = "0.0.9".into(),
        &[(pysfx_format::SBOM_NAME, lie.as_bytes())],
    );
    for crafted in [crafted, other_version] {
        let output = verify(&crafted);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{stderr}");
        // (The install's own check, or the packer's against the SBOM it makes again.)
        assert!(stderr.contains("is not the SBOM of"), "{stderr}");
    }
    // Whatever version the manifest claims, an SBOM is read only as pysfx writes it: one laid
    // out otherwise, with the same components, is refused too.
    let relaid: serde_json::Value = serde_json::from_str(&sbom).expect("JSON");
    let relaid = serde_json::to_vec(&relaid).expect("JSON");
    let other_layout = pysfx_e2e::reseal_replacing(
        &artifact,
        &root.join("relaid-old.sfx"),
        |manifest| manifest.pysfx_version = "0.0.9".into(),
        &[(pysfx_format::SBOM_NAME, relaid.as_slice())],
    );
    let output = verify(&other_layout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("not laid out as pysfx writes"), "{stderr}");
    // An SBOM holding a terminal's escape (which `--sbom` refuses to print): both verifiers
    // refuse it, as the install and `--sbom` do.
    let escaped = sbom.replace("tinylib", "tiny\u{1b}[2Jlib");
    // (Of another pysfx version, so that only the text is wrong, not the layout.)
    for name in [pysfx_format::SBOM_NAME, ".pysfx/sbom/set-0.cdx.json"] {
        let crafted = pysfx_e2e::reseal_replacing(
            &artifact,
            &root.join("escaped.sfx"),
            |manifest| manifest.pysfx_version = "0.0.9".into(),
            &[(name, escaped.as_bytes())],
        );
        assert_eq!(verify(&crafted).status.code(), Some(3), "{name}");
        let output = run(Command::new(&crafted).arg("--verify"));
        assert_eq!(output.status.code(), Some(3), "{name}");
    }
}

/// A release's SBOM may not hide what is installed, nor name what is not: a set's stored SBOM
/// (re-sealed, so every digest holds) whose components are emptied, that lists another
/// package, or that is no SBOM at all is refused (exit 3) by `pysfx verify`, `--verify` and
/// the install, which writes nothing; `--sbom` refuses a whole-artifact SBOM that hides a wheel.
#[test]
fn an_sbom_that_hides_or_adds_a_package_is_refused_everywhere() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let artifact = tinylib_artifact(root);
    let python = python(11);
    let set_sbom = ".pysfx/sbom/set-0.cdx.json";
    let sbom = String::from_utf8(entry(&artifact, set_sbom)).expect("text");
    let parsed: Value = serde_json::from_str(&sbom).expect("JSON");
    // Its components emptied, and the dependencies on them.
    let mut emptied = parsed.clone();
    emptied["components"] = serde_json::json!([]);
    emptied["dependencies"] = serde_json::json!([]);
    // Another package added, with a digest no wheel has.
    let mut added = parsed.clone();
    let mut fake = parsed["components"][0].clone();
    fake["bom-ref"] = "wheels/0000000000000000/fakepkg-6.6.6-py3-none-any.whl".into();
    fake["name"] = "fakepkg".into();
    fake["version"] = "6.6.6".into();
    fake["purl"] = "pkg:pypi/fakepkg@6.6.6".into();
    fake["hashes"][0]["content"] = "0".repeat(64).into();
    added["components"]
        .as_array_mut()
        .expect("a list")
        .push(fake);
    let pretty = |value: &Value| serde_json::to_string_pretty(value).expect("JSON") + "\n";
    assert_eq!(pretty(&parsed), sbom, "pysfx writes its SBOMs so");
    // A component added on one line, which a reader line by line would not see.
    let one_line = sbom.replacen(
        "  \"components\": [\n",
        "  \"components\": [\n    {\"type\": \"library\", \"name\": \"fakepkg\", \"version\": \"6.6.6\"},\n",
        1,
    );
    // tinylib's name given twice: JSON readers take the last, and list no tinylib.
    let twice = sbom.replacen(
        "      \"name\": \"tinylib\",\n",
        "      \"name\": \"tinylib\",\n      \"name\": \"fakepkg\",\n",
        1,
    );
    assert!(one_line != sbom && twice != sbom);
    let cases = [
        (
            "emptied",
            pretty(&emptied),
            "lists no component for tinylib-1.0",
        ),
        (
            "added",
            pretty(&added),
            "lists a component the manifest does not give it: fakepkg 6.6.6",
        ),
        ("one line", one_line, "not laid out as pysfx writes"),
        ("twice", twice, "not laid out as pysfx writes"),
        ("not JSON", "hello\n".to_string(), "not JSON"),
    ];
    for (case, text, message) in cases {
        let crafted = pysfx_e2e::reseal_replacing(
            &artifact,
            &root.join("crafted.sfx"),
            |_| {},
            &[(set_sbom, text.as_bytes())],
        );
        let verify = run(Command::new(&binaries().pysfx).arg("verify").arg(&crafted));
        let stderr = String::from_utf8_lossy(&verify.stderr);
        assert_eq!(verify.status.code(), Some(3), "{case}: {stderr}");
        assert!(stderr.contains(message), "{case}: {stderr}");
        let own = run(Command::new(&crafted).arg("--verify"));
        let stderr = String::from_utf8_lossy(&own.stderr);
        assert_eq!(own.status.code(), Some(3), "{case}: {stderr}");
        assert!(stderr.contains(message), "{case}: {stderr}");
        let destination = root.join("releases/1");
        let (code, _, stderr) = install_with(&crafted, &destination, &python.path, &[]);
        assert_eq!(code, 3, "{case}: {stderr}");
        assert!(stderr.contains(message), "{case}: {stderr}");
        assert!(!destination.exists(), "{case}: DEST was written");
    }
    // The whole artifact's SBOM, emptied: `--sbom` does not print it.
    let whole = String::from_utf8(entry(&artifact, pysfx_format::SBOM_NAME)).expect("text");
    let mut emptied: Value = serde_json::from_str(&whole).expect("JSON");
    emptied["components"] = serde_json::json!([]);
    emptied["dependencies"] = serde_json::json!([]);
    let crafted = pysfx_e2e::reseal_replacing(
        &artifact,
        &root.join("crafted.sfx"),
        |_| {},
        &[(pysfx_format::SBOM_NAME, pretty(&emptied).as_bytes())],
    );
    let printed = run(Command::new(&crafted).arg("--sbom"));
    assert_eq!(printed.status.code(), Some(3));
    assert!(printed.stdout.is_empty());
    // Nor does an install take the artifact, though its release gets the set's SBOM alone.
    let destination = root.join("releases/4");
    let (code, _, stderr) = install_with(&crafted, &destination, &python.path, &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("is not the SBOM of this artifact"),
        "{stderr}"
    );
    assert!(!destination.exists());
    // Nor does `pysfx inspect --sbom`, which prints the same document or none.
    let printed = run(Command::new(&binaries().pysfx)
        .arg("inspect")
        .arg(&crafted)
        .arg("--sbom"));
    assert_eq!(printed.status.code(), Some(3));
    assert!(printed.stdout.is_empty());
    // An artifact stores all its SBOMs or none: the set's taken out is refused, as by
    // `pysfx verify` and `--verify`.
    let crafted = pysfx_e2e::reseal_leaving_out(&artifact, &root.join("no-set.sfx"), &[set_sbom]);
    let destination = root.join("releases/3");
    let (code, _, stderr) = install_with(&crafted, &destination, &python.path, &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("while the artifact holds its other SBOMs"),
        "{stderr}"
    );
    assert!(!destination.exists());
    for check in ["--verify", "--sbom"] {
        let output = run(Command::new(&crafted).arg(check));
        assert_eq!(output.status.code(), Some(3), "{check}");
    }
    let output = run(Command::new(&binaries().pysfx).arg("verify").arg(&crafted));
    assert_eq!(output.status.code(), Some(3));
    // All of them taken out: the manifest says the artifact stores them (no artifact packed
    // before SBOMs were stored says so), so it is refused alike, and `inspect --sbom` makes
    // none up from the manifest.
    let sets = manifest(&artifact)["sets"].as_array().map_or(0, Vec::len);
    let names: Vec<String> = std::iter::once(pysfx_format::SBOM_NAME.to_string())
        .chain((0..sets).map(pysfx_format::set_sbom_name))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let crafted = pysfx_e2e::reseal_leaving_out(&artifact, &root.join("no-sboms.sfx"), &names);
    let destination = root.join("releases/5");
    let (code, _, stderr) = install_with(&crafted, &destination, &python.path, &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("the manifest says the artifact stores its SBOMs"),
        "{stderr}"
    );
    assert!(!destination.exists());
    for check in ["--verify", "--sbom"] {
        let output = run(Command::new(&crafted).arg(check));
        assert_eq!(output.status.code(), Some(3), "{check}");
    }
    for command in [&["verify"][..], &["inspect", "--sbom"][..]] {
        let output = run(Command::new(&binaries().pysfx)
            .args(&command[..1])
            .arg(&crafted)
            .args(&command[1..]));
        assert_eq!(output.status.code(), Some(3), "{command:?}");
    }
    // The genuine artifact installs, its release's SBOM listing tinylib.
    let destination = root.join("releases/2");
    let (code, _, stderr) = install_with(&artifact, &destination, &python.path, &[]);
    assert_eq!(code, 0, "{stderr}");
    let release: Value = serde_json::from_slice(
        &std::fs::read(destination.join("pysfx-sbom.cdx.json")).expect("the release's SBOM"),
    )
    .expect("JSON");
    assert_eq!(release["components"][0]["name"], "tinylib");
}

/// The release's SBOM is what scanners read of it: `--check` reports it edited or gone
/// (exit 3), and `--force` writes it again.
#[test]
fn check_reports_a_release_sbom_edited_or_gone_and_force_restores_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let artifact = tinylib_artifact(root);
    let destination = root.join("releases/1");
    let (code, result, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    let sbom = destination.join("pysfx-sbom.cdx.json");
    let written = std::fs::read(&sbom).expect("the SBOM");
    let check = || {
        let output = run(Command::new(&artifact).arg("--check").arg(&destination));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    };
    assert_eq!(check().0, Some(0), "{}", check().1);
    for (change, line) in [
        ("edited", "modified pysfx-sbom.cdx.json"),
        ("gone", "missing"),
    ] {
        match change {
            "edited" => std::fs::write(&sbom, "{}").expect("write"),
            _ => std::fs::remove_file(&sbom).expect("rm"),
        }
        let (code, text) = check();
        assert_eq!(code, Some(3), "{change}: {text}");
        assert!(
            text.lines()
                .any(|l| l.contains(line) && l.contains("pysfx-sbom.cdx.json")),
            "{change}: {text}"
        );
        let (code, result, stderr) = install_with(
            &artifact,
            &destination,
            &python(11).path,
            &[OsStr::new("--force")],
        );
        assert_eq!(code, 0, "{result}\n{stderr}");
        assert_eq!(result["changed"], true, "{result}");
        assert_eq!(std::fs::read(&sbom).expect("the SBOM again"), written);
        assert_eq!(check().0, Some(0), "{}", check().1);
    }
}
