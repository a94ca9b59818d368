//! End to end, against every CPython 3.6–3.13 here: pack real wheels, install with that
//! interpreter, then use the venv as a deployment would.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{
    bootstrap_wheels, datapkg_wheel, install, install_with, make_app, pack, pip_list, python,
    pythons, run, test_wheels, Python,
};

/// What the venv's interpreter reports about itself, checked in Python.
const PROBE: &str = r#"
import json, os, sys
import markupsafe, chardet, docutils, datapkg, appcore
from markupsafe import _speedups
report = {
    "app_on_path": os.path.realpath(os.path.join(sys.prefix, os.pardir, "demoapp")) in sys.path,
    "app_entries": sum(1 for p in sys.path if p.endswith("demoapp")),
    "speedups": _speedups.__file__,
    "greeting": appcore.GREETING,
    "prefix": sys.prefix,
    "env": dict((k, os.environ.get(k)) for k in ["STR", "NUM", "FLOAT", "YES", "NO", "INHERITED", "NESTED", "NULLED"]),
}
if sys.version_info >= (3, 8):
    from importlib import metadata
    report["metadata"] = dict((d, metadata.version(d)) for d in ["markupsafe", "chardet", "docutils", "pysfx-datapkg", "pip"])
    report["installer"] = metadata.distribution("chardet").read_text("INSTALLER")
    report["record_files"] = len(metadata.distribution("docutils").files)
sys.stdout.write(json.dumps(report))
"#;

/// Packs the test app with its wheels, installs it with `python` and checks every part of the
/// deployment: the probe, environment.json, scripts and data, pip.
fn check_interpreter(python: &Python, work: &Path) {
    let version = python.version();
    let destination = pack_and_install(python, work);
    let report = check_probe(python, &destination);
    check_environment_warnings(python, &destination);
    check_scripts_and_data(python, &destination);
    check_pip(python, &destination, &report);
    check_bytecode(python, &destination);
    eprintln!("ok: CPython {version} ({})", python.path.display());
}

/// Checks every `.pyc` the install compiled (pysfx's hook module's too), in the venv's
/// interpreter: the timestamp header `py_compile` writes (magic number, flags, the source's
/// mtime and size) and the code object that compiling the source at its final path gives; a
/// source that does not compile has none.
const BYTECODE_CHECK: &str = r#"
import importlib.util, marshal, os, sys
checked, bad = 0, []
for directory, _, files in os.walk(sys.argv[1]):
    for name in files:
        source = os.path.join(directory, name)
        if not name.endswith(".py"):
            continue
        pyc = importlib.util.cache_from_source(source)
        with open(source, "rb") as file:
            text = file.read()
        try:
            code = compile(text, source, "exec", dont_inherit=True)
        except Exception:
            if os.path.exists(pyc):
                bad.append("compiled though it does not compile: " + source)
            continue
        if not os.path.exists(pyc):
            bad.append("no .pyc: " + source)
            continue
        with open(pyc, "rb") as file:
            data = file.read()
        status = os.stat(source)
        head = importlib.util.MAGIC_NUMBER + (b"\0\0\0\0" if sys.version_info >= (3, 7) else b"")
        head += (int(status.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
        head += (status.st_size & 0xFFFFFFFF).to_bytes(4, "little")
        if not data.startswith(head):
            bad.append("header: " + pyc)
            continue
        loaded = marshal.loads(data[len(head):])
        # pysfx's hook module is compiled by the interpreter's query, before the release has
        # its path: the import system gives its code the file's name when it loads it.
        named = loaded.co_filename == source or name == "loadenv.py"
        if loaded != code or not named:
            bad.append("code: " + pyc)
        checked += 1
sys.stdout.write("%d\n%s" % (checked, "\n".join(bad)))
"#;

fn check_bytecode(python: &Python, destination: &Path) {
    let version = python.version();
    let venv = destination.join("venv");
    let site = venv.join(format!("lib/python{version}/site-packages"));
    let output = run(Command::new(venv.join("bin/python"))
        .args(["-I", "-B", "-c", BYTECODE_CHECK])
        .arg(&site));
    let text = String::from_utf8_lossy(&output.stdout);
    let (checked, bad) = text.split_once('\n').unwrap_or((&text, ""));
    assert!(
        output.status.success(),
        "{version}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(bad, "", "{version}: .pyc files unlike py_compile's");
    assert!(
        checked.parse::<u32>().unwrap_or(0) > 100,
        "{version}: {checked} .pyc files checked"
    );
}

/// Packs the test app and installs it under `work`; returns DEST.
fn pack_and_install(python: &Python, work: &Path) -> PathBuf {
    let version = python.version();
    let wheels = test_wheels(python.minor);
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work, "demoapp").as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--wheels"),
            datapkg_wheel().as_os_str(),
            OsStr::new("--bootstrap-wheels"),
            bootstrap_wheels(python.minor).as_os_str(),
        ],
        &work.join("site.sfx"),
    );
    let destination = work.join("releases/1");
    let (code, result, stderr) = install_with(&artifact, &destination, &python.path, &[]);
    assert_eq!(code, 0, "{version}: install failed: {stderr}");
    assert_eq!(result["changed"], true, "{version}");
    assert!(result["python_version"]
        .as_str()
        .unwrap_or_default()
        .starts_with(&format!("{version}.")));
    assert_eq!(result["wheels_installed"], 6, "{version}: {result}");
    assert!(
        result["files"].as_u64().unwrap_or(0) > 100,
        "{version}: {result}"
    );
    destination
}

/// Runs [`PROBE`] in the venv with an environment.json; returns its report.
fn check_probe(python: &Python, destination: &Path) -> serde_json::Value {
    let version = python.version();
    let venv = destination.join("venv");
    let venv_python = venv.join("bin/python");
    std::fs::write(
        destination.join("environment.json"),
        r#"{"STR": "text", "NUM": 5, "FLOAT": 1.5, "YES": true, "NO": false, "INHERITED": "from-file", "NESTED": {"a": [1]}, "NULLED": null}"#,
    )
    .expect("write environment.json");
    let output = run(Command::new(&venv_python)
        .args(["-c", PROBE])
        .env("INHERITED", "from-parent")
        .env("NULLED", "kept"));
    assert!(
        output.status.success(),
        "{version}: probe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{version}: the probe printed to stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("probe json");
    assert_eq!(report["app_on_path"], true, "{version}: {report}");
    assert_eq!(
        report["app_entries"], 1,
        "{version}: the app is on sys.path once: {report}"
    );
    assert!(
        report["speedups"]
            .as_str()
            .unwrap_or_default()
            .ends_with(".so"),
        "{version}: {report}"
    );
    assert_eq!(report["greeting"], "hello from the app");
    let env = &report["env"];
    assert_eq!(env["STR"], "text");
    assert_eq!(env["NUM"], "5");
    assert_eq!(env["FLOAT"], "1.5");
    assert_eq!(env["YES"], "true");
    assert_eq!(env["NO"], "false");
    assert_eq!(
        env["INHERITED"], "from-file",
        "file values win over inherited ones"
    );
    assert_eq!(env["NESTED"], r#"{"a": [1]}"#);
    assert_eq!(env["NULLED"], "kept", "null leaves a variable alone");
    if python.minor >= 8 {
        assert_eq!(report["installer"], "pysfx\n");
        assert!(report["record_files"].as_u64().unwrap_or(0) > 100);
    }
    report
}

/// A malformed environment.json, and one with a name the OS refuses.
fn check_environment_warnings(python: &Python, destination: &Path) {
    let version = python.version();
    let venv = destination.join("venv");
    let venv_python = venv.join("bin/python");
    // A malformed environment.json: one warning line, and the interpreter still starts.
    std::fs::write(
        destination.join("environment.json"),
        "{\"SECRET\": \"hunter2\",",
    )
    .expect("write");
    let output = run(Command::new(&venv_python).args(["-c", "print('started')"]));
    assert!(
        output.status.success(),
        "{version}: a malformed environment.json stopped Python"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{version}: {stderr}");
    assert!(stderr.starts_with("loadenv:"), "{version}: {stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "{version}: a value was printed: {stderr}"
    );
    // A name the OS refuses (empty) is skipped with one warning on every Python; the rest
    // still loads, numbers as written.
    std::fs::write(
        destination.join("environment.json"),
        format!(
            r#"{{"": "x", "GREETING": "hi", "LIMIT": 1E5, "RATIO": 0.50, "BIG": 1{},
                "NESTED": {{"b": [1.50, true, null], "a": "x"}}}}"#,
            "0".repeat(5000)
        ),
    )
    .expect("write");
    // (An int of 5,000 digits is past what 3.11's int() takes from text: kept as written.)
    let output = run(Command::new(&venv_python).args([
        "-c",
        "import os; print(os.environ['GREETING'], os.environ['LIMIT'], os.environ['RATIO'], \
         len(os.environ['BIG']), os.environ['NESTED'])",
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{version}: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"hi 1E5 0.50 5001 {"a": "x", "b": [1.50, true, null]}"#,
        "{version}"
    );
    assert!(
        stderr.lines().count() == 1 && stderr.contains("invalid name or value"),
        "{version}: {stderr}"
    );
    // NaN is not JSON: the file is malformed (one line), nothing of it loaded.
    std::fs::write(
        destination.join("environment.json"),
        r#"{"GREETING": "hi", "LIMIT": NaN}"#,
    )
    .expect("write");
    let output = run(Command::new(&venv_python).args([
        "-c",
        "import os; print(os.environ.get('GREETING', 'unset'))",
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "unset",
        "{version}"
    );
    assert!(stderr.contains("not valid JSON"), "{version}: {stderr}");
    std::fs::remove_file(destination.join("environment.json")).expect("remove");
}

/// The installed scripts, `.data` files and byte-code.
fn check_scripts_and_data(python: &Python, destination: &Path) {
    let version = python.version();
    let venv = destination.join("venv");
    let venv_python = venv.join("bin/python");
    // Scripts: an entry point, a GUI entry point, a #!python .data script, docutils' scripts.
    for (script, args, expect) in [
        ("chardetect", vec!["--version"], "chardetect 4.0.0"),
        ("datapkg-cli", vec!["a", "b"], "datapkg-cli a b"),
        ("datapkg-gui", vec![], "datapkg-gui"),
        ("datapkg-hello", vec![], "hello from a .data script"),
        ("rst2html.py", vec!["--version"], "Docutils 0.17.1"),
    ] {
        let output = run(Command::new(venv.join("bin").join(script)).args(&args));
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && text.contains(expect),
            "{version}: {script}: {text}"
        );
    }
    let hello = std::fs::read_to_string(venv.join("bin/datapkg-hello")).expect("read");
    assert_eq!(
        hello.lines().next(),
        Some(format!("#!{}", venv_python.display()).as_str())
    );
    let site = venv.join(format!("lib/python{version}/site-packages"));
    assert!(
        venv.join("share/pysfx-datapkg/readme.txt").is_file(),
        "{version}: .data/data"
    );
    assert!(
        venv.join(format!(
            "include/site/python{version}/pysfx-datapkg/datapkg.h"
        ))
        .is_file(),
        "{version}: .data/headers"
    );
    assert!(
        site.join("markupsafe/__pycache__").is_dir(),
        "{version}: byte-code is compiled by default"
    );
    // Every source a wheel installed; pysfx's own hook (loadenv.py) is not a wheel's.
    let mut uncompiled = sources_without_bytecode(&site, &version);
    uncompiled.retain(|path| !path.ends_with("loadenv.py"));
    assert!(
        uncompiled.is_empty(),
        "{version}: sources without byte-code: {uncompiled:?}"
    );
    assert!(!destination.join("wheels").exists() && !destination.join("bootstrap_wheels").exists());
}

/// The bootstrap pip: `--version`, `pip check`, and `pip list` against the receipt and the probe.
fn check_pip(python: &Python, destination: &Path, report: &serde_json::Value) {
    let version = python.version();
    let venv = destination.join("venv");
    let venv_python = venv.join("bin/python");
    let site = venv.join(format!("lib/python{version}/site-packages"));
    // The bootstrap pip works, pip check passes, pip list shows every distribution.
    let output = run(Command::new(venv.join("bin/pip")).arg("--version"));
    assert!(
        output.status.success(),
        "{version}: pip --version: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&site.display().to_string()));
    let output =
        run(Command::new(&venv_python).args(["-m", "pip", "check", "--disable-pip-version-check"]));
    assert!(
        output.status.success(),
        "{version}: pip check: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let listed = pip_list(&venv);
    let receipt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(destination.join("pysfx-receipt.json")).expect("receipt"),
    )
    .expect("json");
    for wheel in receipt["wheels"].as_array().expect("wheels") {
        let name = wheel["name"].as_str().expect("name");
        assert_eq!(
            listed.get(name).map(String::as_str),
            wheel["version"].as_str(),
            "{version}: pip list and the receipt disagree on {name}: {listed:?}"
        );
    }
    if python.minor >= 8 {
        let metadata = &report["metadata"];
        assert_eq!(metadata["chardet"], "4.0.0");
        assert_eq!(metadata["pysfx-datapkg"], "1.0");
        assert_eq!(
            metadata["pip"].as_str(),
            listed.get("pip").map(String::as_str)
        );
    }
}

#[test]
fn installs_and_runs_on_every_python_3_6_to_3_13() {
    let pythons = pythons();
    let names: Vec<String> = pythons
        .iter()
        .map(|p| format!("{} ({})", p.version(), p.path.display()))
        .collect();
    eprintln!("testing against: {}", names.join(", "));
    for python in &pythons {
        let work = tempfile::tempdir().expect("tempdir");
        check_interpreter(python, work.path());
    }
    println!("interpreters tested: {}", names.join(", "));
}

#[test]
fn python_2_is_refused_before_anything_is_written() {
    let python2 = Path::new("/root/.pyenv/versions/2.7.18/bin/python");
    if !python2.exists() {
        panic!("no Python 2.7 at {} to test with", python2.display());
    }
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("--wheels"),
            datapkg_wheel().as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("site.sfx"),
    );
    let destination = work.path().join("releases/1");
    let (code, result, stderr) = install_with(&artifact, &destination, python2, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("2.7.18"),
        "the message names the version: {stderr}"
    );
    assert_eq!(result["exit_code"], 4);
    assert!(result["error"]
        .as_str()
        .unwrap_or_default()
        .contains("2.7.18"));
    assert!(!destination.exists());
    assert!(
        !work.path().join("releases").exists(),
        "nothing written, not even DEST's parent"
    );

    // A missing interpreter is the machine's problem too.
    let (code, _, stderr) = install(
        &artifact,
        &[
            OsStr::new("-d"),
            destination.as_os_str(),
            OsStr::new("--python"),
            OsStr::new("/nonexistent/python3"),
        ],
    );
    assert_eq!(code, 4, "{stderr}");
    assert!(!destination.exists());

    // Nor is a FIFO named as the interpreter waited on.
    let fifo = work.path().join("python-fifo");
    let made = run(Command::new("mkfifo").arg(&fifo));
    assert!(made.status.success(), "mkfifo");
    let output = run(Command::new("timeout")
        .arg("60")
        .arg(&artifact)
        .arg("-d")
        .arg(&destination)
        .arg("--python")
        .arg(&fifo));
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(!destination.exists());
    let _ = python(11);
}

/// Interpreters that answer the query but whose venv would not start are refused before
/// anything is written (exit 4): one whose standard library lacks `site` (every venv start
/// imports it), and a wrapper that makes the binary it runs work (as Software Collections'
/// set `LD_LIBRARY_PATH`), since the venv's `bin/python` runs that binary bare.
#[test]
fn interpreters_whose_venv_would_not_start_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("site.sfx"),
    );
    // 3.8 finds its standard library from where its binary is (3.11 from its libpython).
    let real = python(8);
    let home = real
        .path
        .parent()
        .and_then(Path::parent)
        .expect("the Python's home");
    // A copy of the interpreter whose standard library (links to the real one's) lacks site.py.
    let nosite = work.path().join("nosite");
    std::fs::create_dir_all(nosite.join("bin")).expect("mkdir");
    std::fs::create_dir_all(nosite.join("lib/python3.8")).expect("mkdir");
    std::fs::copy(&real.path, nosite.join("bin/python3.8")).expect("copy");
    for entry in std::fs::read_dir(home.join("lib/python3.8"))
        .expect("stdlib")
        .flatten()
    {
        let name = entry.file_name();
        if name != "site.py" && name != "__pycache__" {
            std::os::unix::fs::symlink(entry.path(), nosite.join("lib/python3.8").join(&name))
                .expect("link");
        }
    }
    // A "binary" that starts only with the variable its wrapper sets.
    let bare = work.path().join("scl/python3.8");
    std::fs::create_dir_all(bare.parent().expect("a parent")).expect("mkdir");
    std::fs::write(
        &bare,
        format!(
            "#!/bin/bash\n[ -n \"$SCL_READY\" ] || {{ echo 'libpython: not found' >&2; exit 127; }}\n\
             exec -a \"$0\" {} \"$@\"\n",
            real.path.display()
        ),
    )
    .expect("write");
    let wrapper = work.path().join("scl-python");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nSCL_READY=1 exec {} \"$@\"\n", bare.display()),
    )
    .expect("write");
    // A wrapper that runs 3.8 as `exec -a python3`: CPython looks its bare name up on PATH
    // for sys.executable, and finds 3.12's there, which the venv's bin/python would run.
    let other = python(12);
    let renamed = work.path().join("renamed-python");
    std::fs::write(
        &renamed,
        format!(
            "#!/bin/bash\nPATH={}:$PATH exec -a python3 {} \"$@\"\n",
            other.path.parent().expect("bin").display(),
            real.path.display()
        ),
    )
    .expect("write");
    // An answer whose cache tag is a path: byte-code named by it would go outside DEST.
    let lying = work.path().join("lying-python");
    std::fs::write(
        &lying,
        format!(
            "#!/bin/sh\n{} \"$@\" | sed 's#\"cpython-38\"#\"../../../../x\"#'\n",
            real.path.display()
        ),
    )
    .expect("write");
    for script in [&bare, &wrapper, &renamed, &lying] {
        std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    for (python, says) in [
        (nosite.join("bin/python3.8"), "No module named 'site'"),
        (wrapper, "does not start on its own"),
        (renamed, "exec -a"),
        (lying, "its answer is not CPython"),
    ] {
        let destination = work.path().join("releases/1");
        let (code, _, stderr) = install_with(&artifact, &destination, &python, &[]);
        assert_eq!(code, 4, "{}: {stderr}", python.display());
        assert!(stderr.contains(says), "{}: {stderr}", python.display());
        assert!(
            !work.path().join("releases").exists(),
            "{}",
            python.display()
        );
    }
}

/// The `.py` files below `directory` with no `__pycache__/<stem>.cpython-XY.pyc` beside them.
fn sources_without_bytecode(directory: &Path, version: &str) -> Vec<PathBuf> {
    let tag = format!("cpython-{}", version.replace('.', ""));
    let mut missing = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pending.push(path);
                continue;
            }
            let Some(stem) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".py"))
            else {
                continue;
            };
            if !directory
                .join(format!("__pycache__/{stem}.{tag}.pyc"))
                .is_file()
            {
                missing.push(path);
            }
        }
    }
    missing
}

/// A module whose byte-code's file name would be longer than Linux takes (a name of 240 bytes
/// or more: `.cpython-311.pyc` adds 16) installs without it, as pip installs it: from the
/// artifact, from one packed with its byte-code, and linked from a release before; the other
/// modules keep theirs, and the long one imports from source.
#[test]
fn a_module_too_long_to_have_byte_code_installs_without_it() {
    let python = python(11);
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let module = "m".repeat(240);
    let wheels = root.join("wheels");
    pysfx_e2e::build_tiny(
        &wheels,
        &serde_json::json!({"name": "longname", "version": "1.0",
            "files": {format!("longname/{module}.py"): "LONG = 'imported'\n"}}),
    );
    let app = make_app(root, "demoapp");
    let packed = |name: &str, extra: &[&OsStr]| {
        let args = pysfx_e2e::app_and_wheels(&app, &wheels, extra);
        pack(&args, &root.join(name))
    };
    let plain = packed("plain.sfx", &[]);
    let compiled = packed(
        "compiled.sfx",
        &[OsStr::new("--python"), python.path.as_os_str()],
    );
    let current = root.join("releases/current");
    let link = [OsStr::new("--link"), current.as_os_str()];
    for (number, artifact, extra) in [
        (1, &plain, &[][..]),
        (2, &compiled, &[][..]),
        (3, &plain, &link[..]),
        (4, &compiled, &link[..]),
    ] {
        let destination = root.join(format!("releases/{number}"));
        let (code, _, stderr) = install_with(artifact, &destination, &python.path, extra);
        assert_eq!(code, 0, "release {number}: {stderr}");
        let package = destination.join("venv/lib/python3.11/site-packages/longname");
        assert!(
            package
                .join("__pycache__/__init__.cpython-311.pyc")
                .is_file(),
            "release {number}"
        );
        let missing = sources_without_bytecode(&package, "3.11");
        assert_eq!(
            missing,
            [package.join(format!("{module}.py"))],
            "release {number}"
        );
        let output = run(Command::new(destination.join("venv/bin/python"))
            .args(["-B", "-c"])
            .arg(format!("import longname.{module} as m; print(m.LONG)")));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "imported",
            "release {number}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if number == 2 {
            // The next releases link from the one before.
            std::os::unix::fs::symlink(&destination, &current).expect("symlink");
        }
    }
}
