//! Hostile content, in the payload or inside a wheel, is refused (exit 3) before anything lands
//! in DEST, and nothing is ever written outside it.

use std::path::{Path, PathBuf};

use pysfx_e2e::{
    contained_wheels, evil_wheels, host_python, install_with, listing, raw_artifact, run,
};

/// Installs `artifact` into `work/releases/1` and checks the refusal.
fn assert_refused(work: &Path, artifact: &Path, case: &str, expected_in_message: &str) {
    let destination = work.join("releases/1");
    let python = host_python();
    let (code, result, stderr) = install_with(artifact, &destination, &python, &[]);
    assert_eq!(code, 3, "{case}: expected exit 3, got {code}: {stderr}");
    assert_eq!(result["exit_code"], 3, "{case}");
    assert!(
        stderr.contains(expected_in_message),
        "{case}: the message should say {expected_in_message:?}: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{case}: one line: {stderr}");
    assert!(!destination.exists(), "{case}: DEST exists");
    // DEST's parent did not exist before: the run made it, and took it away again.
    assert!(
        !work.join("releases").exists(),
        "{case}: litter next to DEST: {:?}",
        listing(&work.join("releases"))
    );
    for outside in [
        PathBuf::from("/tmp/pysfx-evil-absolute"),
        work.join("pysfx-evil-dotdot"),
        work.join("pysfx-evil-data"),
        work.join("releases/pysfx-evil-dotdot"),
    ] {
        assert!(!outside.exists(), "{case}: wrote {}", outside.display());
    }
}

#[test]
fn the_control_wheel_installs() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join("good.sfx"),
        &[
            evil_wheels().join("good-1.0-py3-none-any.whl"),
            // RECORD rows that claim no bytes (a directory's, a hashless one) are no ghost.
            evil_wheels().join("dirrow-1.0-py3-none-any.whl"),
        ],
        &[("demoapp/app.py", b"x = 1\n")],
        |_| {},
    );
    let destination = work.path().join("releases/1");
    let python = host_python();
    let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(destination.join("demoapp/app.py").is_file());
}

#[test]
fn hostile_wheels_are_refused() {
    let cases = [
        ("absolute", "absolute path"),
        ("dotdot", "'..' path component"),
        ("control", "control character"),
        ("backslash", "backslash"),
        ("symlink", "symbolic link"),
        ("duplicate", "\"duplicate/__init__.py\": duplicate entry"),
        ("notinrecord", "not listed in RECORD"),
        (
            "ghostrow",
            "listed in RECORD, but the wheel does not carry it",
        ),
        ("badscript", "replace the venv's interpreter"),
        ("escapingdata", "'..' path component"),
        ("datafile", "a file named as a .data directory"),
        ("crcstored", "does not match its RECORD entry"),
        ("duprow", "listed twice, with different hashes"),
        ("overlap", "its bytes overlap another member's"),
        (
            "localname",
            "its local header names another file than the central directory",
        ),
    ];
    for (case, message) in cases {
        let work = tempfile::tempdir().expect("tempdir");
        let wheel = evil_wheels().join(format!("{case}-1.0-py3-none-any.whl"));
        // The good wheel first, so a partly built tree exists when the hostile one is met.
        let artifact = raw_artifact(
            &work.path().join(format!("{case}.sfx")),
            &[evil_wheels().join("good-1.0-py3-none-any.whl"), wheel],
            &[("demoapp/app.py", b"x = 1\n")],
            |_| {},
        );
        assert_refused(work.path(), &artifact, case, message);
        assert_verify_refuses(&artifact, case);
    }
}

/// The app's files and bytes a manifest states (what `--info` and `inspect` show) are held
/// to the payload's entries: a manifest that miscounts them is refused, as verify reads it.
#[test]
fn a_manifest_that_miscounts_the_app_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let app: &[(&str, &[u8])] = &[("demoapp/app.py", b"x = 1\n")];
    type Tamper = fn(&mut pysfx_format::Manifest);
    let cases: [(&str, Tamper); 3] = [
        ("as packed", |_| {}),
        ("files", |manifest| manifest.app.files = 1_000_000),
        ("bytes", |manifest| manifest.app.bytes += 1),
    ];
    for (case, tamper) in cases {
        let artifact = raw_artifact(
            &work.path().join(format!("{case}.sfx")),
            &[evil_wheels().join("good-1.0-py3-none-any.whl")],
            app,
            tamper,
        );
        let destination = work.path().join(format!("release-{case}"));
        let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
        if case == "as packed" {
            assert_eq!(code, 0, "{stderr}");
            continue;
        }
        assert_eq!(code, 3, "{case}: {stderr}");
        assert!(stderr.contains("it says the app holds"), "{case}: {stderr}");
        assert!(!destination.exists(), "{case}: nothing written");
        assert_verify_refuses(&artifact, case);
    }
}

/// A wheel marked as left out of an artifact that names no base to take it from is refused
/// by `verify` and by the install.
#[test]
fn a_wheel_left_out_of_an_artifact_without_a_base_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join("from_base.sfx"),
        &[evil_wheels().join("good-1.0-py3-none-any.whl")],
        &[("demoapp/app.py", b"x = 1\n")],
        |manifest| {
            manifest.wheels[0].from_base = true;
            // A husk's RECORD digest, so that only the missing base is wrong.
            manifest.wheels[0].record_sha256 = Some("0".repeat(64));
        },
    );
    assert_verify_refuses(&artifact, "from_base");
    let (code, _, stderr) = install_with(&artifact, &work.path().join("2"), &host_python(), &[]);
    assert_eq!(code, 3, "{stderr}");
}

/// A deflate bomb (200 MiB of zeros in 200 KiB) is held to what the manifest declares: no ratio
/// heuristic refuses it, but a manifest that understates what its members declare is refused
/// before anything is written, and no member inflates past its declared size.
#[test]
fn a_bomb_is_held_to_the_declared_sizes() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join("bomb.sfx"),
        &[
            evil_wheels().join("good-1.0-py3-none-any.whl"),
            evil_wheels().join("bomb-1.0-py3-none-any.whl"),
        ],
        &[("demoapp/app.py", b"x = 1\n")],
        |manifest| {
            for wheel in &mut manifest.wheels {
                if wheel.name == "bomb" {
                    // The total told as the packer would sum it, so only the wheel lies.
                    manifest.unpacked_bytes -= wheel.unpacked_bytes - (1 << 20);
                    wheel.unpacked_bytes = 1 << 20;
                }
            }
        },
    );
    assert_refused(work.path(), &artifact, "bomb", "members declare");
    assert_verify_refuses(&artifact, "bomb");
}

/// `pysfx verify` and `--verify` refuse what the install would refuse.
fn assert_verify_refuses(artifact: &Path, case: &str) {
    let output = pysfx_e2e::run(
        std::process::Command::new(&pysfx_e2e::binaries().pysfx)
            .arg("verify")
            .arg(artifact),
    );
    assert_eq!(
        output.status.code(),
        Some(3),
        "{case}: pysfx verify passed a hostile artifact"
    );
    let named = artifact.file_name().expect("a file name").to_string_lossy();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&*named),
        "{case}: the artifact unnamed: {stderr}"
    );
    let output = pysfx_e2e::run(std::process::Command::new(artifact).arg("--verify"));
    assert_eq!(
        output.status.code(),
        Some(3),
        "{case}: --verify passed a hostile artifact"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&*named),
        "{case}: the artifact unnamed: {stderr}"
    );
}

#[test]
fn the_packer_refuses_wheels_the_stub_would_refuse() {
    for case in [
        "hashmismatch",
        "notinrecord",
        "ghostrow",
        "badscript",
        "datafile",
        "crcstored",
        "overlap",
        "hugerecord",
    ] {
        let work = tempfile::tempdir().expect("tempdir");
        let wheels = work.path().join("wheels");
        std::fs::create_dir(&wheels).expect("mkdir");
        let name = format!("{case}-1.0-py3-none-any.whl");
        std::fs::copy(evil_wheels().join(&name), wheels.join(&name)).expect("copy");
        let app = work.path().join("app");
        std::fs::create_dir(&app).expect("mkdir");
        std::fs::write(app.join("a.py"), "x = 1\n").expect("write");
        let (stub, max_glibc) = pysfx_e2e::test_stub();
        let mut command = std::process::Command::new(&pysfx_e2e::binaries().pysfx);
        command
            .arg("pack")
            .arg("--app")
            .arg(&app)
            .arg("--wheels")
            .arg(&wheels)
            .arg("--no-bootstrap")
            .arg("--stub")
            .arg(stub);
        if let Some(max_glibc) = max_glibc {
            command.args(["--max-glibc", max_glibc]);
        }
        let output = pysfx_e2e::run(command.arg("-o").arg(work.path().join("x.sfx")));
        assert_eq!(output.status.code(), Some(1), "{case}: packed");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid wheel"), "{case}: {stderr}");
        assert!(!work.path().join("x.sfx").exists());
    }
}

/// A wheel whose local header names a member otherwise than its central directory (pip
/// refuses it; the two views of one zip differ) is refused at pack time, naming both.
#[test]
fn the_packer_refuses_a_wheel_whose_two_names_of_a_member_differ() {
    let work = tempfile::tempdir().expect("tempdir");
    let wheels = work.path().join("wheels");
    let wheel = pysfx_e2e::tiny_wheel(&wheels, "twonames", "1.0", &[]);
    let mut bytes = std::fs::read(&wheel).expect("read");
    // The first member's local header: its name starts at byte 30; change its first letter.
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    bytes[30] = if bytes[30] == b'x' { b'y' } else { b'x' };
    std::fs::write(&wheel, &bytes).expect("write");
    let app = work.path().join("app");
    std::fs::create_dir(&app).expect("mkdir");
    std::fs::write(app.join("a.py"), "x = 1\n").expect("write");
    let output = pysfx_e2e::run(&mut pysfx_e2e::pack_command(
        &[
            std::ffi::OsStr::new("--app"),
            app.as_os_str(),
            std::ffi::OsStr::new("--wheels"),
            wheels.as_os_str(),
            std::ffi::OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("x.sfx"),
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("its local header names"), "{stderr}");
    assert!(!work.path().join("x.sfx").exists());
}

#[test]
fn hostile_payload_entries_are_refused() {
    let cases: [(&str, &str, &str); 4] = [
        (
            "dotdot",
            "demoapp/../../pysfx-evil-dotdot",
            "'..' path component",
        ),
        ("absolute", "/tmp/pysfx-evil-absolute", "absolute path"),
        ("control", "demoapp/evil\u{7}.py", "control character"),
        ("backslash", "demoapp\\..\\evil", "backslash"),
    ];
    for (case, name, message) in cases {
        let work = tempfile::tempdir().expect("tempdir");
        let artifact = raw_artifact(
            &work.path().join(format!("{case}.sfx")),
            &[evil_wheels().join("good-1.0-py3-none-any.whl")],
            &[("demoapp/app.py", b"x = 1\n"), (name, b"evil")],
            |_| {},
        );
        assert_refused(work.path(), &artifact, case, message);
        assert_verify_refuses(&artifact, case);
    }
}

/// Entries the packer never writes, which the manifest does not account for, are refused
/// (exit 3, nothing written) by the install and both verifies: a file outside every group of
/// the format, a file of a static directory the manifest does not list, the SBOM of a set it
/// does not have, a directory entry; and an app file whose name no DEST could take is the
/// artifact's fault, not DEST's.
#[test]
fn entries_the_manifest_does_not_account_for_are_refused() {
    let long = format!("demoapp/{}.py", "x".repeat(300));
    let cases = [
        (
            "other",
            "other/file.txt",
            "an entry the manifest does not account for",
        ),
        (
            "static",
            "static.in/7/x.css",
            "an entry the manifest does not account for",
        ),
        (
            "sbom",
            ".pysfx/sbom/set-9.cdx.json",
            "an entry the manifest does not account for",
        ),
        ("directory", "demoapp/d/", "a directory entry"),
        (
            "long",
            long.as_str(),
            "a path component longer than 255 bytes",
        ),
    ];
    for (case, name, message) in cases {
        let work = tempfile::tempdir().expect("tempdir");
        let artifact = raw_artifact(
            &work.path().join(format!("{case}.sfx")),
            &[evil_wheels().join("good-1.0-py3-none-any.whl")],
            &[("demoapp/app.py", b"x = 1\n"), (name, b"")],
            |_| {},
        );
        assert_refused(work.path(), &artifact, case, message);
        assert_verify_refuses(&artifact, case);
    }
}

/// A manifest that lies about its wheels, re-sealed so every digest holds, is the artifact's
/// fault (exit 3), not the machine's (4): the stub decides from the manifest before it opens
/// a wheel (a requirement unmet, the space needed), and holds the manifest to the wheels
/// before it blames the machine. A set naming a wheel twice, or a wheel no set names, is
/// refused as the manifest is read.
#[test]
fn a_manifest_that_lies_about_its_wheels_is_the_artifacts_fault() {
    type Tamper = fn(&mut pysfx_format::Manifest);
    let cases: [(&str, Tamper, &str); 7] = [
        (
            "many strings",
            |manifest| manifest.wheels[0].requires_dist = vec!["x".into(); 1_500_000],
            "implausibly many entries (1500",
        ),
        (
            "many requirements",
            |manifest| manifest.wheels[0].requires_dist = vec!["x".into(); 150_000],
            "150000 Requires-Dist lines in all, implausibly many",
        ),
        (
            "requirement",
            |manifest| {
                manifest.wheels[0]
                    .requires_dist
                    .push("nonexistent-pkg>=1".into())
            },
            "Requires-Dist differs from its METADATA",
        ),
        (
            "wheel size",
            |manifest| {
                let wheel = &mut manifest.wheels[0];
                manifest.unpacked_bytes += (1 << 60) - wheel.unpacked_bytes;
                wheel.unpacked_bytes = 1 << 60;
            },
            "the manifest 1152921504606846976",
        ),
        (
            "total size",
            |manifest| manifest.unpacked_bytes = 1 << 62,
            "it says the payload unpacks to 4611686018427387904 bytes",
        ),
        (
            "twice",
            |manifest| {
                let wheel = manifest.sets[0].wheels[0].clone();
                manifest.sets[0].wheels.push(wheel);
            },
            "names wheels/",
        ),
        (
            "no set",
            |manifest| manifest.sets.clear(),
            "which no set and no bootstrap names",
        ),
    ];
    for (case, tamper, message) in cases {
        let work = tempfile::tempdir().expect("tempdir");
        let artifact = raw_artifact(
            &work.path().join("lies.sfx"),
            &[evil_wheels().join("good-1.0-py3-none-any.whl")],
            &[("demoapp/app.py", b"x = 1\n")],
            tamper,
        );
        assert_refused(work.path(), &artifact, case, message);
        assert_verify_refuses(&artifact, case);
    }
}

/// A manifest of millions of tiny strings (4 bytes of JSON each, 12 MB deflated to a few
/// kilobytes) is refused before it is parsed: a few megabytes of memory, not gigabytes.
#[test]
fn a_manifest_of_millions_of_strings_costs_no_memory_to_refuse() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join("strings.sfx"),
        &[evil_wheels().join("good-1.0-py3-none-any.whl")],
        &[("demoapp/app.py", b"x = 1\n")],
        |manifest| manifest.wheels[0].requires_dist = vec!["x".into(); 3_000_000],
    );
    let verify = |command: &mut std::process::Command| {
        let output = run(command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("implausibly many entries"), "{stderr}");
        let peak: u64 = (stderr.lines())
            .find_map(|line| line.strip_prefix("peak-kib "))
            .and_then(|kib| kib.trim().parse().ok())
            .expect("/usr/bin/time's line");
        assert!(peak < 100 * 1024, "peak {peak} KiB: {stderr}");
    };
    let timed = || {
        let mut command = std::process::Command::new("/usr/bin/time");
        command.args(["-f", "peak-kib %M"]);
        command
    };
    let destination = work.path().join("releases/1");
    verify(
        timed()
            .arg(&artifact)
            .arg("-d")
            .arg(&destination)
            .arg("--python")
            .arg(host_python()),
    );
    assert!(!destination.exists());
    verify(
        timed()
            .arg(&pysfx_e2e::binaries().pysfx)
            .arg("verify")
            .arg(&artifact),
    );
}

/// A member whose bytes differ from its RECORD hash is refused by `pysfx pack` (above), by
/// `pysfx verify`, by `--verify`, and by the install itself: an artifact crafted around the
/// packer, with a payload digest of its own, is whole, not made by `pysfx pack`, so the install
/// hashes every member it writes (SPEC "Hostile content": RECORD hash mismatches are refused).
/// Nothing is left at DEST or beside it.
#[test]
fn a_member_that_differs_from_its_record_is_refused_by_verify_and_install() {
    // A sha512 row too (PEP 427: "sha256 or better"), which the stub once took unchecked.
    for case in ["hashmismatch", "hashmismatch512"] {
        a_member_that_differs_from_its_record(case);
    }
}

fn a_member_that_differs_from_its_record(case: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join(format!("{case}.sfx")),
        &[
            evil_wheels().join("good-1.0-py3-none-any.whl"),
            evil_wheels().join(format!("{case}-1.0-py3-none-any.whl")),
        ],
        &[("demoapp/app.py", b"x = 1\n")],
        |_| {},
    );
    assert_verify_refuses(&artifact, case);
    let output = pysfx_e2e::run(
        std::process::Command::new(&pysfx_e2e::binaries().pysfx)
            .arg("verify")
            .arg(&artifact),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("does not match its RECORD entry"),
        "{stderr}"
    );

    let releases = work.path().join("releases");
    let destination = releases.join("1");
    let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(&format!("{case}/__init__.py")) && stderr.contains("RECORD"),
        "names the member and RECORD: {stderr}"
    );
    assert!(!destination.exists(), "DEST was left behind");
    let beside: Vec<_> = std::fs::read_dir(&releases)
        .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
        .unwrap_or_default();
    assert!(
        beside
            .iter()
            .all(|name| name.to_string_lossy().ends_with(".lock")),
        "litter beside DEST: {beside:?}"
    );
}

/// Two wheels the manifest gives one digest, right for the first only: the payload digest's
/// pieces are the wheels themselves, so checking it compares each wheel with the manifest's
/// digest for it, and the second is refused before anything is written (and by both verifies).
#[test]
fn a_wheel_that_claims_another_wheels_digest_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join("borrowed.sfx"),
        &[
            evil_wheels().join("good-1.0-py3-none-any.whl"),
            contained_wheels().join("shipspyc-1.0-py3-none-any.whl"),
        ],
        &[("demoapp/app.py", b"x = 1\n")],
        |manifest| manifest.wheels[1].sha256 = manifest.wheels[0].sha256.clone(),
    );
    assert_refused(
        work.path(),
        &artifact,
        "borrowed digest",
        "differs from the manifest",
    );
    assert_verify_refuses(&artifact, "borrowed digest");
}

#[test]
fn a_wheel_that_differs_from_the_manifest_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join("digest.sfx"),
        &[evil_wheels().join("good-1.0-py3-none-any.whl")],
        &[("demoapp/app.py", b"x = 1\n")],
        |manifest| manifest.wheels[0].sha256 = "0".repeat(64),
    );
    assert_refused(
        work.path(),
        &artifact,
        "digest",
        "differs from the manifest",
    );
    assert_verify_refuses(&artifact, "digest");
}

/// The `good` wheel and an app packed into `DIR/compiled.sfx` with byte-code compiled by
/// `python` at pack time.
fn compiled_good_artifact(directory: &Path, python: &Path) -> PathBuf {
    let wheels = directory.join("wheels");
    std::fs::create_dir_all(&wheels).expect("mkdir");
    let wheel = "good-1.0-py3-none-any.whl";
    std::fs::copy(evil_wheels().join(wheel), wheels.join(wheel)).expect("copy the wheel");
    let app = pysfx_e2e::make_app(&directory.join("src"), "demoapp");
    pysfx_e2e::pack(
        &[
            std::ffi::OsStr::new("--app"),
            app.as_os_str(),
            std::ffi::OsStr::new("--wheels"),
            wheels.as_os_str(),
            std::ffi::OsStr::new("--no-bootstrap"),
            std::ffi::OsStr::new("--python"),
            python.as_os_str(),
        ],
        &directory.join("compiled.sfx"),
    )
}

/// A byte-code bundle is held to the manifest's SHA-256 for it by `pysfx verify` and
/// `--verify` (a linked install links byte-code only from a release whose artifact carried the
/// very same bundle, by that digest).
#[test]
fn a_bundle_that_differs_from_the_manifest_is_found_by_verify() {
    let work = tempfile::tempdir().expect("tempdir");
    let python = pysfx_e2e::python(11);
    let artifact = compiled_good_artifact(work.path(), &python.path);
    // Re-sealed as it was: it verifies.
    let same = pysfx_e2e::reseal(&artifact, &work.path().join("same.sfx"), |manifest| {
        assert!(
            !manifest.bytecode.is_empty(),
            "no byte-code compiled at pack time"
        );
        assert!(manifest
            .bytecode
            .iter()
            .all(|bundle| bundle.sha256.len() == 64));
    });
    let output = pysfx_e2e::run(
        std::process::Command::new(&pysfx_e2e::binaries().pysfx)
            .arg("verify")
            .arg(&same),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let other = pysfx_e2e::reseal(&artifact, &work.path().join("other.sfx"), |manifest| {
        manifest.bytecode[0].sha256 = "0".repeat(64);
    });
    assert_verify_refuses(&other, "bundle digest");
    // A bundle member whose local header names another file than the bundle's directory
    // (re-sealed, every digest holding): refused as the artifact's own entries and the
    // wheels' members are.
    let mut payload = pysfx_format::Payload::open(&artifact).expect("open");
    let bundle = payload.manifest().bytecode[0].path.clone();
    let (start, len) = payload.stored_range(&bundle).expect("the bundle");
    let bytes = std::fs::read(&artifact).expect("read");
    let mut bundle_bytes = bytes[start as usize..(start + len) as usize].to_vec();
    let local = (bundle_bytes.windows(4))
        .position(|window| window == b"PK\x03\x04")
        .expect("a local header");
    // The first byte of its name, in the local header only.
    bundle_bytes[local + 30] ^= 0x20;
    let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
        &bundle_bytes,
    ));
    let renamed = pysfx_e2e::reseal_replacing(
        &artifact,
        &work.path().join("renamed.sfx"),
        |manifest| manifest.bytecode[0].sha256 = pysfx_format::hex(&digest),
        &[(bundle.as_str(), &bundle_bytes)],
    );
    assert_verify_refuses(&renamed, "a bundle member's local name");
}

/// A byte-code bundle (re-sealed, so every digest holds) may hold only the byte-code of the
/// wheel's own modules, and may not unpack to more than the manifest counts for it: a `.pyc`
/// for the venv's hook, or for a module the wheel does not ship, and a `.pyc` that inflates
/// far past `unpacked_bytes`, are each refused (exit 3) with nothing written.
#[test]
fn a_bundle_holds_only_its_wheels_byte_code_and_no_more_than_it_declares() {
    use std::io::Write;
    let work = tempfile::tempdir().expect("tempdir");
    let python = pysfx_e2e::python(11);
    let artifact = compiled_good_artifact(work.path(), &python.path);
    let manifest = pysfx_format::Payload::open(&artifact)
        .expect("open")
        .manifest()
        .clone();
    let bundle = manifest.bytecode.first().expect("a bundle").clone();
    let old_unpacked = pysfx_format::Payload::open(&artifact)
        .and_then(|payload| payload.bundle_unpacked(&bundle.path))
        .expect("the bundle's size");
    let tag = &bundle.cache_tag;
    // A bundle of one deflated member, `name`, of `size` bytes.
    let bundle_of = |name: &str, size: usize| -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(size > u32::MAX as usize / 2);
        writer.start_file(name, options).expect("member");
        let chunk = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let now = left.min(chunk.len());
            writer.write_all(&chunk[..now]).expect("write");
            left -= now;
        }
        writer.finish().expect("finish").into_inner()
    };
    // (The first two with the manifest's total told for them, as a crafter would; the bomb's
    // is what the packer counted.)
    let cases = [
        (
            "the hook's byte-code",
            bundle_of(&format!("__pycache__/loadenv.{tag}.pyc"), 64),
            true,
            "which the wheel does not install",
        ),
        (
            "another module's byte-code",
            bundle_of(&format!("other/__pycache__/__init__.{tag}.pyc"), 64),
            true,
            "which the wheel does not install",
        ),
        (
            "a bomb",
            bundle_of(&format!("good/__pycache__/__init__.{tag}.pyc"), 200 << 20),
            false,
            "unpacks to",
        ),
    ];
    // The artifact with the bundle's bytes replaced by `bytes` (its digest in the manifest
    // too, and, when `told`, the manifest's total).
    let crafted_with = |bytes: &[u8], told: bool| {
        let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(bytes));
        let unpacked = pysfx_format::bundle_unpacked_bytes(std::io::Cursor::new(bytes))
            .expect("the crafted bundle's size");
        pysfx_e2e::reseal_replacing(
            &artifact,
            &work.path().join("crafted.sfx"),
            |manifest| {
                manifest.bytecode[0].sha256 = pysfx_format::hex(&digest);
                if told {
                    manifest.unpacked_bytes = manifest.unpacked_bytes - old_unpacked + unpacked;
                }
            },
            &[(bundle.path.as_str(), bytes)],
        )
    };
    for (case, bytes, told, message) in cases {
        let crafted = crafted_with(&bytes, told);
        let destination = work.path().join("releases/1");
        let (code, _, stderr) = install_with(&crafted, &destination, &python.path, &[]);
        assert_eq!(code, 3, "{case}: {stderr}");
        assert!(stderr.contains(message), "{case}: {stderr}");
        assert!(!destination.exists(), "{case}: DEST exists");
    }
    // A bundle this install does not write (another interpreter meets the artifact, or
    // --no-compile) is held to what a bundle may hold all the same, as verify holds it.
    let other = pysfx_e2e::python(12);
    for (case, name) in [
        (
            "a name outside the tree",
            format!("../../../../evil.{tag}.pyc"),
        ),
        ("no __pycache__", format!("good/evil.{tag}.pyc")),
    ] {
        let crafted = crafted_with(&bundle_of(&name, 64), true);
        let no_compile = [std::ffi::OsStr::new("--no-compile")];
        for (interpreter, extra) in [(&other.path, &[][..]), (&python.path, &no_compile[..])] {
            let destination = work.path().join("releases/1");
            let (code, _, stderr) = install_with(&crafted, &destination, interpreter, extra);
            assert_eq!(code, 3, "{case}, {}: {stderr}", interpreter.display());
            assert!(!destination.exists(), "{case}: DEST exists");
        }
    }
}

/// Re-seals the artifact `argv[1]` after `argv[2]` (Python statements) changed its bytes
/// (`data`, with `T` the trailer's offset and `S` the payload's, which they may move): the
/// payload digest recomputed as docs/format.md says.
const RESEAL: &str = r#"
import hashlib, io, struct, sys, zipfile
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
T = len(data) - 115
S = int(bytes(data[T:]).decode().split("offset=")[1].split()[0])
exec(sys.argv[2])
wheels = []
for info in zipfile.ZipFile(io.BytesIO(bytes(data))).infolist():
    if info.filename.startswith("wheels/"):
        at = info.header_offset
        name, extra = struct.unpack("<HH", data[at + 26:at + 30])
        wheels.append((at + 30 + name + extra, info.compress_size))
root = hashlib.sha256()
def piece(a, b):
    root.update((b - a).to_bytes(8, "little"))
    root.update(hashlib.sha256(data[a:b]).digest())
def stretch(a, b):
    for at in range(a, b, 4 << 20):
        piece(at, min(at + (4 << 20), b))
at = S
for start, length in sorted(wheels):
    stretch(at, start)
    piece(start, start + length)
    at = start + length
stretch(at, T)
trailer = "pysfx-payload/2 offset=%020d sha256=%s" % (S, root.hexdigest())
data[T:] = trailer.encode()
open(path, "wb").write(data)
"#;

/// A trailer whose payload offset points inside the first entry, with a digest recomputed
/// from there: the start of that entry's local header lies outside what the digest covers, so
/// the payload is unreadable (exit 3), for the install and both verifies.
#[test]
fn an_offset_inside_the_first_entry_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join("offset.sfx"),
        &[evil_wheels().join("good-1.0-py3-none-any.whl")],
        &[("demoapp/app.py", b"x = 1\n")],
        |_| {},
    );
    reseal_bytes(&artifact, "S += 100");
    assert_refused(
        work.path(),
        &artifact,
        "offset",
        "starts before the payload",
    );
    assert_verify_refuses(&artifact, "offset");
}

/// A set resolved for another implementation (`pp`, PyPy) is not installed by CPython of the
/// same X.Y: no set fits (exit 4), nothing written.
#[test]
fn a_set_for_another_implementation_is_not_used() {
    let work = tempfile::tempdir().expect("tempdir");
    let python = host_python();
    let version = run(std::process::Command::new(&python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]));
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let artifact = raw_artifact(
        &work.path().join("pypy.sfx"),
        &[evil_wheels().join("good-1.0-py3-none-any.whl")],
        &[("demoapp/app.py", b"x = 1\n")],
        |manifest| {
            manifest.sets[0].target = Some(pysfx_format::Target {
                implementation: "pp".into(),
                python_version: version.clone(),
                full_version: None,
                abi: None,
                platform: None,
            })
        },
    );
    let destination = work.path().join("releases/1");
    let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("no wheel set for CPython"), "{stderr}");
    assert!(!work.path().join("releases").exists());
}

/// Text from an artifact that a terminal may act on even inside a JSON string (a C1 control,
/// a bidirectional override) is escaped in `--json` output: still the same JSON.
#[test]
fn json_output_escapes_c1_controls_and_bidi_overrides() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join("c1.sfx"),
        &[evil_wheels().join("good-1.0-py3-none-any.whl")],
        &[("demoapp/app.py", b"x = 1\n")],
        |manifest| {
            manifest.wheels[0]
                .requires_dist
                .push("evil\u{9b}2J\u{202e}".into())
        },
    );
    for command in [vec!["--info", "--json"], vec!["inspect", "--json"]] {
        let output = if command[0] == "inspect" {
            run(std::process::Command::new(&pysfx_e2e::binaries().pysfx)
                .args(&command)
                .arg(&artifact))
        } else {
            run(std::process::Command::new(&artifact).args(&command))
        };
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("\\u009b2J\\u202e"), "{command:?}: {text}");
        assert!(
            !text.contains('\u{9b}') && !text.contains('\u{202e}'),
            "{command:?}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
        assert!(parsed.to_string().contains("evil"), "{command:?}");
    }
}

/// No set for this X.Y: the error names the sets there are, and what the one for the nearest
/// version lacks (nothing here: a newer CPython's set holds only wheels this one accepts), not
/// another version's distribution left out by its Requires-Python as a wheel it cannot accept.
#[test]
fn no_set_for_this_python_names_the_nearest_sets_lack() {
    let work = tempfile::tempdir().expect("tempdir");
    let python = host_python();
    let version =
        run(std::process::Command::new(&python)
            .args(["-c", "import sys; print(sys.version_info[1])"]));
    let minor: u32 = String::from_utf8_lossy(&version.stdout)
        .trim()
        .parse()
        .expect("minor");
    let old_only = pysfx_e2e::wheel_requiring_python(work.path(), "oldonly", "1.0", "<3.7");
    let good = evil_wheels().join("good-1.0-py3-none-any.whl");
    let artifact = raw_artifact(
        &work.path().join("sets.sfx"),
        &[good, old_only],
        &[("demoapp/app.py", b"x = 1\n")],
        |manifest| {
            let target = |minor: u32| {
                Some(pysfx_format::Target {
                    implementation: "cp".into(),
                    python_version: format!("3.{minor}"),
                    full_version: None,
                    abi: None,
                    platform: None,
                })
            };
            let all = manifest.sets[0].wheels.clone();
            let good: Vec<String> = all.iter().filter(|w| w.contains("good")).cloned().collect();
            manifest.sets = vec![
                pysfx_format::WheelSet {
                    name: "old".into(),
                    target: target(6),
                    wheels: all,
                    requires: Vec::new(),
                },
                pysfx_format::WheelSet {
                    name: "next".into(),
                    target: target(minor + 1),
                    wheels: good,
                    requires: Vec::new(),
                },
            ];
        },
    );
    let destination = work.path().join("releases/1");
    let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("no wheel set for CPython"), "{stderr}");
    assert!(stderr.contains("(it has old, next)"), "{stderr}");
    assert!(!stderr.contains("no wheel it accepts for"), "{stderr}");
    assert!(!work.path().join("releases").exists());
}

/// Runs [`RESEAL`] on `artifact` with `edit`.
fn reseal_bytes(artifact: &Path, edit: &str) {
    let output = pysfx_e2e::run(
        std::process::Command::new(host_python())
            .args(["-c", RESEAL])
            .arg(artifact)
            .arg(edit),
    );
    assert!(output.status.success(), "{output:?}");
}

/// The artifact stays a zip `unzip` and Python's `zipfile` read: an entry whose local header
/// names another file, or gives another compression method, CRC-32 or size, than the central
/// directory (re-sealed, so the payload digest holds) is refused by both verifies and by the
/// install, before anything is written: `unzip` reads by the local header, and would show
/// other bytes than the install writes. For an app file, a wheel and the manifest.
#[test]
fn every_reader_holds_the_artifacts_local_headers_to_its_directory() {
    // The local header of the entry whose name starts so: its name at +30, its method at +8,
    // its CRC-32 at +14, its compressed size at +18.
    let find = |name: &str| {
        format!(
            "at = [i for i in range(S, T) if data[i:i+4] == b'PK\\x03\\x04' \
             and data[i+30:i+30+{}] == b'{name}'][0]\n",
            name.len()
        )
    };
    let cases = [
        (
            "name",
            "demoapp/app.py",
            "data[at+30:at+44] = b'demoapp/apq.py'",
            "its local header names",
        ),
        (
            "method",
            "demoapp/app.py",
            "data[at+8:at+10] = b'\\x00\\x00'",
            "another compression method",
        ),
        (
            "crc",
            "demoapp/app.py",
            "data[at+14] ^= 1",
            "another CRC-32",
        ),
        ("wheel-size", "wheels/", "data[at+18] ^= 1", "other sizes"),
        (
            "manifest-crc",
            ".pysfx/manifest.json",
            "data[at+14] ^= 1",
            "another CRC-32",
        ),
        (
            "sbom-size",
            ".pysfx/sbom.cdx.json",
            "data[at+22] ^= 1",
            "other sizes",
        ),
    ];
    for (case, entry, edit, message) in cases {
        let work = tempfile::tempdir().expect("tempdir");
        let artifact = if entry.starts_with(".pysfx/sbom") {
            // Packed (a crafted artifact carries no SBOM).
            let app = pysfx_e2e::make_app(work.path(), "demoapp");
            let wheels = work.path().join("wheels");
            pysfx_e2e::tiny_wheel(&wheels, "tinylib", "1.0", &[]);
            let args = pysfx_e2e::app_and_wheels(&app, &wheels, &[]);
            pysfx_e2e::pack(&args, &work.path().join("headers.sfx"))
        } else {
            raw_artifact(
                &work.path().join("headers.sfx"),
                &[evil_wheels().join("good-1.0-py3-none-any.whl")],
                &[("demoapp/app.py", b"x = 1\n")],
                |_| {},
            )
        };
        reseal_bytes(&artifact, &format!("{}{edit}", find(entry)));
        let destination = work.path().join("releases/1");
        for output in [
            run(std::process::Command::new(&pysfx_e2e::binaries().pysfx)
                .arg("verify")
                .arg(&artifact)),
            run(std::process::Command::new(&artifact).arg("--verify")),
            run(std::process::Command::new(&artifact)
                .arg("-d")
                .arg(&destination)
                .arg("--python")
                .arg(host_python())),
        ] {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(3), "{case}: {stderr}");
            assert!(stderr.contains(message), "{case}: {stderr}");
        }
        assert!(!destination.exists(), "{case}");
    }
}

/// An artifact whose payload lists one name twice (the zip reader would see only one of the
/// two) is refused before anything is written, naming the entry.
#[test]
fn an_artifact_listing_one_name_twice_is_refused_naming_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = raw_artifact(
        &work.path().join("twice.sfx"),
        &[evil_wheels().join("good-1.0-py3-none-any.whl")],
        &[
            ("demoapp/app.py", b"x = 1\n"),
            ("demoapp/bpp.py", b"x = 2\n"),
        ],
        |_| {},
    );
    // The second entry renamed to the first's name, wherever its name is written (the zip
    // writer refuses to write two entries of one name).
    let mut bytes = std::fs::read(&artifact).expect("read the artifact");
    let (second, first) = (b"demoapp/bpp.py", b"demoapp/app.py");
    let mut renamed = 0;
    for at in 0..bytes.len() - second.len() {
        if &bytes[at..at + second.len()] == second {
            bytes[at..at + first.len()].copy_from_slice(first);
            renamed += 1;
        }
    }
    assert!(renamed >= 2, "a local header and a directory record");
    std::fs::write(&artifact, bytes).expect("write the artifact");
    let destination = work.path().join("releases/1");
    let (code, _, stderr) = install_with(&artifact, &destination, &host_python(), &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("two entries named \"demoapp/app.py\""),
        "{stderr}"
    );
    assert!(
        !work.path().join("releases").exists(),
        "written before the check"
    );
    assert_verify_refuses(&artifact, "twice");
}

/// Byte-code a wheel ships beside its source (`foo/__pycache__/mod.cpython-311.pyc`, its
/// header naming the fixed mtime sources get when byte-code is compiled at pack time, and the
/// source's size) is what Python would run in place of the source, whatever the source says,
/// hidden from a review of the source. pip's install compiles over it; the release's byte-code
/// is likewise compiled from its sources (at pack time, or at install), or there is none
/// (`--no-compile`): the source runs.
#[test]
fn byte_code_a_wheel_ships_never_runs_in_place_of_its_source() {
    let work = tempfile::tempdir().expect("tempdir");
    let python = pysfx_e2e::python(11);
    let wheels = work.path().join("wheels");
    std::fs::create_dir_all(&wheels).expect("mkdir");
    let script = r#"
import base64, hashlib, importlib.util, marshal, struct, sys, zipfile
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
source = b'print("the source")\n'
code = marshal.dumps(compile('print("the shipped byte-code")\n', "mod.py", "exec"))
header = importlib.util.MAGIC_NUMBER + struct.pack("<III", 0, 315532800, len(source))
files = {
    "foo/__init__.py": b"",
    "foo/mod.py": source,
    "foo/__pycache__/mod.cpython-311.pyc": header + code,
    "foo/__pycache__/mod.cpython-311.opt-1.pyc": header + code,
    "foo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n",
    "foo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = "".join(f"{name},{digest(data)},{len(data)}\n" for name, data in files.items())
with zipfile.ZipFile(sys.argv[1] + "/foo-1.0-py3-none-any.whl", "w") as wheel:
    for name, data in files.items():
        wheel.writestr(name, data)
    wheel.writestr("foo-1.0-dist-info/RECORD".replace("-dist", ".dist"), record + "foo-1.0.dist-info/RECORD,,\n")
"#;
    let made = run(std::process::Command::new(&python.path)
        .args(["-c", script])
        .arg(&wheels));
    assert!(made.status.success(), "{made:?}");
    let app = pysfx_e2e::make_app(&work.path().join("src"), "demoapp");
    let pack = |name: &str, compiled: bool| {
        let mut args = vec![
            std::ffi::OsStr::new("--app"),
            app.as_os_str(),
            std::ffi::OsStr::new("--wheels"),
            wheels.as_os_str(),
            std::ffi::OsStr::new("--no-bootstrap"),
        ];
        if compiled {
            args.extend([std::ffi::OsStr::new("--python"), python.path.as_os_str()]);
        }
        pysfx_e2e::pack(&args, &work.path().join(name))
    };
    let compiled = pack("compiled.sfx", true);
    let plain = pack("plain.sfx", false);
    let no_compile = [std::ffi::OsStr::new("--no-compile")];
    for (artifact, release, extra) in [
        (&compiled, "1", &[][..]),
        (&compiled, "2", &no_compile[..]),
        (&plain, "3", &[][..]),
    ] {
        let destination = work.path().join("releases").join(release);
        let (code, json, stderr) = install_with(artifact, &destination, &python.path, extra);
        assert_eq!(code, 0, "{json}\n{stderr}");
        for flags in [&[][..], &["-O"][..]] {
            let output = run(
                std::process::Command::new(destination.join("venv/bin/python"))
                    .args(flags)
                    .args(["-c", "import foo.mod"]),
            );
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                "the source\n",
                "release {release} {flags:?}: {output:?}"
            );
        }
        let check = [std::ffi::OsStr::new("--check"), destination.as_os_str()];
        let (code, report, _) = pysfx_e2e::run_json(artifact, &check);
        assert_eq!(code, 0, "release {release}: {report}");
    }
}
