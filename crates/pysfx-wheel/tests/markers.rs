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
use std::str::FromStr;
use std::sync::OnceLock;

use pep440_rs::Version;
use pysfx_wheel::{Marker, MarkerEnvironment, Requirement};

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

/// Prints every `Requires-Dist` line of the distributions this interpreter and the pyenv
/// interpreters have installed.
const CORPUS: &str = r#"
import glob, importlib.metadata, sys
lines = set()
for distribution in importlib.metadata.distributions(path=sys.path + glob.glob(sys.argv[1])):
    lines.update(distribution.requires or [])
for line in sorted(lines):
    print(line)
"#;

/// Hand-written requirements that are hard to get right.
const HARD_REQUIREMENTS: &[&str] = &[
    "importlib-metadata>=4.6; python_version < \"3.10\"",
    "pywin32>=226; platform_system == \"Windows\"",
    "typing_extensions>=4.0; python_version<'3.11' and extra == 'test'",
    "foo[bar,baz] (>=1.0) ; sys_platform != \"win32\"",
    "cryptography @ https://example.com/c.whl",
    "cryptography @ https://example.com/c.whl ; os_name == 'posix'",
    "cryptography @ file:///c.whl;os_name=='posix'",
    "  Zope.Interface [ Test , Docs_Extra ]  ( >= 5.0 , < 7 )  ;  extra=='Test'  ",
    "foo>=1.0,",
    "foo (>=1.0,)",
    "foo ()",
    "foo[]",
    "foo_",
    "foo-",
    "foo.",
    "-foo",
    "foo bar",
    "foo>=1.0 <2",
    "foo (>=1.0",
    "foo >=1.0,,<2",
    "foo==1.0.*",
    "foo!=1.0.*,>=0.9",
    "foo>=1.0.*",
    "foo<1.0+local",
    "foo==1.0+local",
    "foo~=1",
    "foo~=1.4.2rc1",
    "foo>=1!2.0",
    "foo>=V1.0",
    "foo>= 1.0",
    "foo; os_name == 'posix' and",
    "foo<2.0a0",
    "foo<1!2.0",
    "foo<2.0.post1",
    "foo>2.0.post1",
    "foo>2.0.dev1",
    "foo>2.0a1",
    "foo<=2.0",
    "foo!=2.0",
    "foo~=2.0.post1",
    "foo==2.0+abc",
    "foo!=2.0+abc",
    "foo===2.0",
    "foo; (python_version >= '3.6' or python_version < '3') and os_name == 'posix'",
    "foo @ ",
    "foo @ https://x y",
    "backports-zstd>=1.0.0; (python_version < '3.14') and extra == 'zstd'",
    "foo[a,b c]",
    "foo;python_version<'3.8'",
    "foo ; extra == \"Sp-Ec_Ial..Name\"",
];

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
fn python_output(script: &str, arguments: &[&str], input: &str) -> String {
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
    let fields = [
        ("implementation_name", &environment.implementation_name),
        (
            "implementation_version",
            &environment.implementation_version,
        ),
        ("os_name", &environment.os_name),
        ("platform_machine", &environment.platform_machine),
        (
            "platform_python_implementation",
            &environment.platform_python_implementation,
        ),
        ("platform_release", &environment.platform_release),
        ("platform_system", &environment.platform_system),
        ("platform_version", &environment.platform_version),
        ("python_full_version", &environment.python_full_version),
        ("python_version", &environment.python_version),
        ("sys_platform", &environment.sys_platform),
    ];
    let fields: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{}", json_string(key), json_string(value)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// Asks the harness about `markers` and `requirements`; returns its lines keyed by kind and
/// index.
fn ask_packaging(markers: &[String], requirements: &[String]) -> (Vec<String>, Vec<String>) {
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
fn our_results(marker: &Marker) -> String {
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

/// A small deterministic generator (xorshift64): the same markers on every run.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const VARIABLE_SPELLINGS: &[&str] = &[
    "python_version",
    "python_version",
    "python_version",
    "python_full_version",
    "python_full_version",
    "implementation_version",
    "platform_release",
    "platform_release",
    "os_name",
    "os.name",
    "sys_platform",
    "sys.platform",
    "platform_system",
    "platform_version",
    "platform.version",
    "platform_machine",
    "platform.machine",
    "platform_python_implementation",
    "platform.python_implementation",
    "python_implementation",
    "implementation_name",
    "extra",
    "extra",
    "extra",
];

/// Variables that parse but have no value in METADATA (lock-file ones): used rarely.
const LOCK_FILE_VARIABLES: &[&str] = &["extras", "dependency_groups"];

const VALUES: &[&str] = &[
    "3.6",
    "3.10",
    "3.11",
    "3.11.7",
    "3.12",
    "3.13",
    "3",
    "2.7",
    "3.11.*",
    "3.*",
    "3.1*",
    "3.12.0rc1",
    "3.12.0rc2",
    "3.12.0b1",
    "3.12.0a1.dev0",
    "3.12.0",
    "3.11.7.post1",
    "3.11.7+local",
    "3.11.7.dev0",
    "1!3.6",
    "3.13.0",
    "3.11.7+",
    "3.13.0+local",
    "3.11.post1",
    "3.11.dev0",
    "3.11a1",
    "v3.11",
    "V3.11",
    "1!3.11",
    " 3.11 ",
    "=3.11",
    "3.11;",
    "abc",
    "5",
    "5.15",
    "6.1",
    "3.10.0-1160.el7.x86_64",
    "5.15.0-91-generic",
    "10",
    "posix",
    "nt",
    "POSIX",
    "linux",
    "lin",
    "win32",
    "darwin",
    "x86_64",
    "aarch64",
    "AMD64",
    "CPython",
    "cpython",
    "PyPy",
    "pypy",
    "Linux",
    "Windows",
    "Darwin",
    "#1",
    "#1 SMP",
    "test",
    "Test_Suite",
    "test-suite",
    "TEST",
    "docs",
    "te",
    "",
    " ",
    "os_name",
    "python_version",
    "extra",
    "7.3.13",
    "3.6.15",
];

/// Weighted towards the operators METADATA uses; `~=` and `===` on strings cannot be evaluated.
const OPERATOR_SPELLINGS: &[&str] = &[
    "==", "==", "==", "==", "==", "==", "!=", "!=", "!=", "<", "<", "<=", "<=", ">", ">", ">=",
    ">=", "in", "in", "not in", "not in", "~=", "===",
];

const SPACES: &[&str] = &["", " ", " ", " ", "  ", "\t"];

fn quoted(generator: &mut Generator, value: &str) -> String {
    if value.contains('"') || generator.below(2) == 0 && !value.contains('\'') {
        format!("'{value}'")
    } else {
        format!("\"{value}\"")
    }
}

fn variable(generator: &mut Generator) -> &'static str {
    if generator.below(40) == 0 {
        generator.pick(LOCK_FILE_VARIABLES)
    } else {
        generator.pick(VARIABLE_SPELLINGS)
    }
}

fn comparison(generator: &mut Generator) -> String {
    let variable = variable(generator);
    let value = generator.pick(VALUES);
    let value = quoted(generator, value);
    let operator = generator.pick(OPERATOR_SPELLINGS);
    // Mostly what METADATA holds; now and then the forms packaging reads oddly.
    let (left, right) = match generator.below(20) {
        0..=13 => (variable.to_string(), value),
        14..=17 => (value, variable.to_string()),
        18 => (variable.to_string(), self::variable(generator).to_string()),
        _ => {
            let other = generator.pick(VALUES);
            (value, quoted(generator, other))
        }
    };
    // Words next to words need a space; around symbols the space is optional.
    let before = if operator.starts_with(char::is_alphabetic) {
        " "
    } else {
        generator.pick(SPACES)
    };
    let after = if operator.starts_with(char::is_alphabetic) {
        " "
    } else {
        generator.pick(SPACES)
    };
    format!("{left}{before}{operator}{after}{right}")
}

fn expression(generator: &mut Generator, depth: usize) -> String {
    let atom = |generator: &mut Generator| {
        if depth < 3 && generator.below(5) == 0 {
            let space = generator.pick(SPACES);
            format!("({space}{}{space})", expression(generator, depth + 1))
        } else {
            comparison(generator)
        }
    };
    let mut text = atom(generator);
    for _ in 0..generator.below(3) {
        let join = if generator.below(2) == 0 { "and" } else { "or" };
        let space = generator.pick(&[" ", " ", "  ", "\t"]);
        text = format!("{text}{space}{join}{space}{}", atom(generator));
    }
    text
}

fn generated_markers() -> Vec<String> {
    let mut generator = Generator(0x9e37_79b9_7f4a_7c15);
    let mut markers = Vec::new();
    for index in 0..800 {
        let mut marker = expression(&mut generator, 0);
        // One in ten is cut short somewhere, to compare what is refused.
        if index % 10 == 9 {
            let cuts: Vec<usize> = marker.char_indices().map(|(cut, _)| cut).collect();
            let cut = cuts[generator.below(cuts.len())];
            marker.truncate(cut);
        }
        markers.push(marker);
    }
    markers
}

#[test]
fn generated_markers_evaluate_as_packaging_does() {
    let markers = generated_markers();
    let (answers, _) = ask_packaging(&markers, &[]);
    let mut mismatches = Vec::new();
    let (mut valid, mut errors, mut invalid) = (0, 0, 0);
    let (mut trues, mut falses) = (0, 0);
    for (marker, expected) in markers.iter().zip(&answers) {
        let ours = match Marker::parse(marker) {
            Ok(parsed) => our_results(&parsed),
            Err(_) => "INVALID".to_string(),
        };
        if ours == "INVALID" {
            invalid += 1;
        } else {
            valid += 1;
            errors += usize::from(ours.contains('E'));
            trues += ours.matches('T').count();
            falses += ours.matches('F').count();
        }
        if &ours != expected {
            mismatches.push(format!("{marker:?}: packaging {expected}, ours {ours}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} markers differ:\n{}",
        mismatches.len(),
        markers.len(),
        mismatches.join("\n")
    );
    // The generator must exercise both outcomes, or the comparison says little.
    eprintln!(
        "{valid} valid markers ({errors} not evaluable), {invalid} invalid; {trues} true and \
         {falses} false verdicts"
    );
    assert!(valid > 500, "only {valid} generated markers are valid");
    assert!(invalid > 40, "only {invalid} generated markers are invalid");
    assert!(
        trues > 2000 && falses > 2000,
        "{trues} true, {falses} false"
    );
    assert!(
        errors > 20 && errors < valid / 3,
        "{errors} of {valid} cannot be evaluated"
    );
}

#[test]
fn requires_dist_lines_parse_and_evaluate_as_packaging_does() {
    let corpus = python_output(
        CORPUS,
        &["/root/.pyenv/versions/*/lib/python3*/site-packages"],
        "",
    );
    let mut requirements: Vec<String> = corpus.lines().map(str::to_string).collect();
    assert!(
        requirements.len() >= 50,
        "only {} Requires-Dist lines found",
        requirements.len()
    );
    requirements.extend(HARD_REQUIREMENTS.iter().map(|text| text.to_string()));
    let (_, answers) = ask_packaging(&[], &requirements);

    let mut mismatches = Vec::new();
    for (text, expected) in requirements.iter().zip(&answers) {
        let ours = match Requirement::parse(text) {
            Err(_) => "INVALID".to_string(),
            Ok(requirement) => describe(&requirement, expected),
        };
        if &ours != expected {
            mismatches.push(format!(
                "{text:?}:\n  packaging {expected}\n  ours      {ours}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} requirements differ:\n{}",
        mismatches.len(),
        requirements.len(),
        mismatches.join("\n")
    );
}

/// Our requirement in the harness's notation, checking the versions packaging checked.
fn describe(requirement: &Requirement, expected: &str) -> String {
    let mut extras = requirement.extras.clone();
    extras.sort();
    extras.dedup();
    let versions = expected.rsplit('\t').next().unwrap_or_default();
    let checks: Vec<String> = versions
        .split(',')
        .filter(|check| !check.is_empty())
        .map(|check| {
            let version = check.split('=').next().unwrap_or_default();
            let met = match Version::from_str(version) {
                Ok(parsed) => {
                    if requirement.is_met_by(&parsed) {
                        "T"
                    } else {
                        "F"
                    }
                }
                Err(_) => "unparsable",
            };
            format!("{version}={met}")
        })
        .collect();
    [
        "OK",
        &requirement.name,
        &extras.join(","),
        requirement.url.as_deref().unwrap_or("-"),
        &requirement
            .marker
            .as_ref()
            .map_or("-".to_string(), our_results),
        &checks.join(","),
    ]
    .join("\t")
}
