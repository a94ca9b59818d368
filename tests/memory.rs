//! Memory does not follow the largest file a wheel holds: a wheel whose `.data/scripts` file is
//! tens of MB installs with a bounded peak RSS, its `#!python` line rewritten and its RECORD
//! row describing the installed bytes.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use pysfx_e2e::{host_python, make_app, pack, python, run};

/// Size of the generated script.
const SCRIPT_BYTES: u64 = 64 << 20;
/// The stub's peak RSS must stay below this: a script read whole would pass it by itself.
const RSS_LIMIT_KIB: u64 = 48 << 10;

/// Writes `bigscript-1.0-py3-none-any.whl` into `out`: a `#!python` script of SCRIPT_BYTES in
/// `.data/scripts`, with a correct RECORD.
fn big_script_wheel(out: &Path) {
    let script = r##"
import base64, hashlib, sys, zipfile
out, size = sys.argv[1], int(sys.argv[2])
line = b"# " + b"pysfx " * 20 + b"\n"
body = b"#!python\nimport sys\nprint('big')\n" + line * ((size - 40) // len(line))
files = {
    "bigscript/__init__.py": b"",
    "bigscript-1.0.data/scripts/bigtool": body,
    "bigscript-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: bigscript\nVersion: 1.0\n",
    "bigscript-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
record = "".join("%s,%s,%d\n" % (name, digest(data), len(data)) for name, data in files.items())
record += "bigscript-1.0.dist-info/RECORD,,\n"
with zipfile.ZipFile(out + "/bigscript-1.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as wheel:
    for name, data in files.items():
        info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (0o755 if "scripts" in name else 0o644) << 16
        wheel.writestr(info, data)
    wheel.writestr("bigscript-1.0.dist-info/RECORD", record)
"##;
    let output = run(Command::new(host_python())
        .args(["-c", script])
        .arg(out)
        .arg(SCRIPT_BYTES.to_string()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_large_script_installs_in_bounded_memory() {
    let work = tempfile::tempdir().expect("tempdir");
    let wheels = work.path().join("wheels");
    std::fs::create_dir(&wheels).expect("mkdir");
    big_script_wheel(&wheels);
    let artifact = pack(
        &[
            OsStr::new("--app"),
            make_app(work.path(), "bigapp").as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("big.sfx"),
    );
    let interpreter = python(11);
    let destination = work.path().join("release");
    // The stub's peak RSS, from a parent that waits for it (RUSAGE_CHILDREN: the largest child
    // waited for, here the stub or the interpreter it queries, which is far smaller).
    let measure = r#"
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"#;
    let output = run(Command::new(host_python())
        .args(["-c", measure])
        .arg(&artifact)
        .arg("-q")
        .arg("-d")
        .arg(&destination)
        .arg("--python")
        .arg(&interpreter.path)
        .arg("--no-compile"));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace();
    let code: i32 = fields
        .next()
        .and_then(|f| f.parse().ok())
        .expect("exit code");
    let rss_kib: u64 = fields.next().and_then(|f| f.parse().ok()).expect("rss");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        rss_kib < RSS_LIMIT_KIB,
        "peak RSS {rss_kib} KiB installing a {SCRIPT_BYTES}-byte script (limit {RSS_LIMIT_KIB} KiB)"
    );
    eprintln!("peak RSS {rss_kib} KiB for a {SCRIPT_BYTES}-byte script");

    // The shebang names the venv's python; RECORD's row is the installed file's.
    let venv = destination.join("venv");
    let tool = venv.join("bin/bigtool");
    let check = r##"
import base64, csv, hashlib, pathlib, sys
venv, tool = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
data = tool.read_bytes()
first = data.split(b"\n", 1)[0].decode()
assert first == "#!" + str(venv / "bin/python"), first
record = next(venv.glob("lib/python*/site-packages/bigscript-1.0.dist-info/RECORD"))
rows = {row[0]: row for row in csv.reader(record.read_text().splitlines())}
row = rows["../../../bin/bigtool"]
digest = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
assert row[1] == digest and int(row[2]) == len(data), (row, digest, len(data))
print("ok")
"##;
    let output = run(Command::new(host_python())
        .args(["-c", check])
        .arg(&venv)
        .arg(&tool));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run_tool = run(&mut Command::new(&tool));
    assert_eq!(String::from_utf8_lossy(&run_tool.stdout).trim(), "big");
}
