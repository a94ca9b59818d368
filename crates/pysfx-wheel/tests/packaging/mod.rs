//! Requirements and markers compared with Python's `packaging`, the library pip checks
//! installs with: a few hundred generated markers over several environments, and the
//! `Requires-Dist` lines of every distribution installed in the pyenv interpreters plus
//! hand-written hard ones.
//!
//! Needs `/root/.pyenv/versions/3.11.7/bin/python` and, the first time, PyPI: `packaging` is
//! installed once into a venv cached under the target directory. Without the interpreter the
//! tests fail rather than pass without checking anything.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use pysfx_wheel::{Marker, MarkerEnvironment};

const PYTHON: &str = "/root/.pyenv/versions/3.11.7/bin/python";

/// The version pip 26.3 vendors; pinned so that a new release cannot change the verdict.
const PACKAGING: &str = "26.3";

/// The extras each marker is evaluated with (`""`: none requested).
const EXTRAS: [&str; 4] = ["", "test", "Test_Suite", "docs"];

/// Prints one line per case: `M <index> <results>` for markers, `R <index> <fields…>` for
/// requirements, where results hold `T`, `F` or `E` (cannot be evaluated) per environment
/// and extra, or `INVALID`.
const HARNESS: &str = r#"
import json, sys
import packaging
from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

assert packaging.__version__ == sys.argv[1], packaging.__version__
cases = json.load(sys.stdin)

def results(marker):
    out = []
    for environment in cases["environments"]:
        for extra in cases["extras"]:
            values = dict(environment)
            values["extra"] = extra
            try:
                out.append("T" if marker.evaluate(values) else "F")
            except (UndefinedComparison, UndefinedEnvironmentName):
                out.append("E")
    return "".join(out)

def valid_version(text):
    try:
        Version(text)
        return True
    except InvalidVersion:
        return False

for index, text in enumerate(cases["markers"]):
    try:
        marker = Marker(text)
    except InvalidMarker:
        print("M\t%d\tINVALID" % index)
        continue
    print("M\t%d\t%s" % (index, results(marker)))

for index, text in enumerate(cases["requirements"]):
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        print("R\t%d\tINVALID" % index)
        continue
    versions = set(cases["versions"])
    for specifier in requirement.specifier:
        base = specifier.version.replace(".*", "")
        versions.update([base, base + ".post1", base + "a1", base + ".dev0", base + "+local", base + ".1"])
        if valid_version(base):
            parsed = Version(base)
            release = list(parsed.release)
            release[-1] += 1
            bumped = ".".join(str(part) for part in release)
            epoch = "%d!" % parsed.epoch if parsed.epoch else ""
            for text in [parsed.base_version, epoch + bumped]:
                versions.update([text, text + "a1", text + "rc1", text + ".dev0", text + ".post1", text + ".post1.dev0", text + "+local"])
    checks = ",".join(
        "%s=%s" % (version, "T" if requirement.specifier.contains(version, prereleases=True) else "F")
        for version in sorted(versions) if valid_version(version)
    )
    print("\t".join([
        "R", str(index), "OK",
        canonicalize_name(requirement.name),
        ",".join(sorted(canonicalize_name(extra) for extra in requirement.extras)),
        requirement.url or "-",
        results(requirement.marker) if requirement.marker else "-",
        checks,
    ]))
"#;

/// Versions every requirement is checked against (each also gets versions around its own).
const VERSIONS: &[&str] = &[
    "0.1",
    "0.9",
    "1.0",
    "1.0.0",
    "1.0a1",
    "1.0.post1",
    "1.0.dev0",
    "1.5",
    "2.0",
    "2.0rc1",
    "3.0",
    "3.0.3",
    "5.1",
    "10.0",
    "2024.1",
    "1!1.0",
];

fn environments() -> Vec<MarkerEnvironment> {
    let make = |values: [&str; 11]| MarkerEnvironment {
        implementation_name: values[0].into(),
        implementation_version: values[1].into(),
        os_name: values[2].into(),
        platform_machine: values[3].into(),
        platform_python_implementation: values[4].into(),
        platform_release: values[5].into(),
        platform_system: values[6].into(),
        platform_version: values[7].into(),
        python_full_version: values[8].into(),
        python_version: values[9].into(),
        sys_platform: values[10].into(),
    };
    vec![
        make([
            "cpython",
            "3.11.7",
            "posix",
            "x86_64",
            "CPython",
            "5.15.0-91-generic",
            "Linux",
            "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023",
            "3.11.7",
            "3.11",
            "linux",
        ]),
        // CentOS 7.
        make([
            "cpython",
            "3.6.15",
            "posix",
            "x86_64",
            "CPython",
            "3.10.0-1160.el7.x86_64",
            "Linux",
            "#1 SMP Mon Oct 19 16:18:59 UTC 2020",
            "3.6.15",
            "3.6",
            "linux",
        ]),
        // An untagged build (`3.13.0+`) with a release that is a PEP 440 version.
        make([
            "cpython",
            "3.13.0",
            "posix",
            "aarch64",
            "CPython",
            "6.1",
            "Linux",
            "#1 SMP PREEMPT_DYNAMIC",
            "3.13.0+",
            "3.13",
            "linux",
        ]),
        // A release candidate.
        make([
            "cpython",
            "3.12.0rc1",
            "posix",
            "x86_64",
            "CPython",
            "6.5.0",
            "Linux",
            "#1",
            "3.12.0rc1",
            "3.12",
            "linux",
        ]),
        make([
            "cpython",
            "3.10.11",
            "nt",
            "AMD64",
            "CPython",
            "10",
            "Windows",
            "10.0.19041",
            "3.10.11",
            "3.10",
            "win32",
        ]),
        make([
            "pypy",
            "7.3.13",
            "posix",
            "arm64",
            "PyPy",
            "23.1.0",
            "Darwin",
            "Darwin Kernel Version 23.1.0",
            "3.9.18",
            "3.9",
            "darwin",
        ]),
    ]
}

/// A venv with `packaging` installed, made once and cached under the target directory.
fn packaging_python() -> &'static Path {
    static PYTHON_WITH_PACKAGING: OnceLock<PathBuf> = OnceLock::new();
    PYTHON_WITH_PACKAGING.get_or_init(|| {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: these tests compare with packaging on that interpreter"
        );
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target tmp dir has a parent")
            .join("pysfx-test-cache");
        let venv = target.join(format!("packaging-{PACKAGING}-venv"));
        let python = venv.join("bin/python");
        if has_packaging(&python) {
            return python;
        }
        // Built beside and renamed into place, so that an interrupted run or a concurrent one
        // never leaves a half-made venv behind the final name.
        std::fs::create_dir_all(&target).expect("create the test cache");
        let building = target.join(format!("packaging-venv.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&building);
        run(Command::new(PYTHON).arg("-m").arg("venv").arg(&building));
        run(Command::new(building.join("bin/python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("packaging=={PACKAGING}"),
        ]));
        if std::fs::rename(&building, &venv).is_err() {
            // Another run got there first.
            let _ = std::fs::remove_dir_all(&building);
        }
        assert!(
            has_packaging(&python),
            "packaging is not importable from {venv:?}"
        );
        python
    })
}

fn has_packaging(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args([
                "-c",
                &format!("import packaging; assert packaging.__version__ == {PACKAGING:?}"),
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

fn run(command: &mut Command) {
    let status = command.status().expect("run a command");
    assert!(status.success(), "{command:?} failed: {status}");
}

/// Runs `script` with the packaging venv's Python, feeding `input` on stdin.
pub(crate) fn python_output(script: &str, arguments: &[&str], input: &str) -> String {
    let mut child = Command::new(packaging_python())
        .arg("-c")
        .arg(script)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_string();
    // Written on a thread: the harness answers while it reads.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("python output");
    writer
        .join()
        .expect("the writer thread")
        .expect("write to python");
    assert!(output.status.success(), "the harness failed");
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(json_string).collect();
    format!("[{}]", items.join(","))
}

fn environment_json(environment: &MarkerEnvironment) -> String {
    let fields = environment.fields();
    let fields: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{}", json_string(key), json_string(value)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Asks the harness about `markers` and `requirements`; returns its lines keyed by kind and
/// index.
pub(crate) fn ask_packaging(
    markers: &[String],
    requirements: &[String],
) -> (Vec<String>, Vec<String>) {
    let environments: Vec<String> = environments().iter().map(environment_json).collect();
    let input = format!(
        "{{\"environments\":[{}],\"extras\":{},\"versions\":{},\"markers\":{},\"requirements\":{}}}",
        environments.join(","),
        json_list(EXTRAS),
        json_list(VERSIONS.iter().copied()),
        json_list(markers.iter().map(String::as_str)),
        json_list(requirements.iter().map(String::as_str)),
    );
    let output = python_output(HARNESS, &[PACKAGING], &input);
    let mut marker_lines = vec![String::new(); markers.len()];
    let mut requirement_lines = vec![String::new(); requirements.len()];
    for line in output.lines() {
        let mut fields = line.splitn(3, '\t');
        let kind = fields.next().unwrap_or_default();
        let index: usize = fields
            .next()
            .and_then(|index| index.parse().ok())
            .expect("an index");
        let rest = fields.next().unwrap_or_default().to_string();
        match kind {
            "M" => marker_lines[index] = rest,
            "R" => requirement_lines[index] = rest,
            other => panic!("unexpected harness line kind {other:?}"),
        }
    }
    (marker_lines, requirement_lines)
}

/// Our verdicts in the harness's notation.
pub(crate) fn our_results(marker: &Marker) -> String {
    let mut out = String::new();
    for environment in environments() {
        for extra in EXTRAS {
            out.push(match marker.evaluate_extra(&environment, extra) {
                Ok(true) => 'T',
                Ok(false) => 'F',
                Err(_) => 'E',
            });
        }
    }
    out
}
