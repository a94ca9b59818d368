//! The packer's command line: every man page it names can be printed (`pysfx man PAGE`) or
//! written (`pysfx man --all DIR`), it does not colour its output under `NO_COLOR` or on a
//! `TERM=dumb` terminal, `-q` draws no progress bar, and `keygen -o` names keys, not a
//! directory.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use pysfx_e2e::{binaries, make_app, pack_command, run, tiny_wheel};

#[test]
fn every_man_page_named_can_be_printed_and_written() {
    let output = run(Command::new(&binaries().pysfx).arg("man"));
    assert!(output.status.success());
    let top = String::from_utf8_lossy(&output.stdout).replace("\\-", "-");
    let named: Vec<String> = top
        .split("pysfx-")
        .skip(1)
        .filter_map(|rest| rest.split_once("(1)").map(|(name, _)| name.to_string()))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    for expected in ["pack", "inspect", "verify", "keygen", "completions", "man"] {
        assert!(
            named.iter().any(|name| name == expected),
            "{expected}: {top}"
        );
    }
    let directory = tempfile::tempdir().expect("tempdir");
    let pages = directory.path().join("man1");
    let output = run(Command::new(&binaries().pysfx)
        .args(["man", "--all"])
        .arg(&pages));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(pages.join("pysfx.1").is_file());
    for name in &named {
        for spelling in [name.clone(), format!("pysfx-{name}")] {
            let output = run(Command::new(&binaries().pysfx).args(["man", &spelling]));
            assert!(output.status.success(), "pysfx man {spelling}");
            let page = String::from_utf8_lossy(&output.stdout);
            assert!(
                page.contains(&format!(".TH pysfx-{name} 1")),
                "pysfx man {spelling}: {page}"
            );
        }
        let written = std::fs::read_to_string(pages.join(format!("pysfx-{name}.1")))
            .unwrap_or_else(|_| panic!("pysfx-{name}.1 not written"));
        assert!(written.contains(&format!(".TH pysfx-{name} 1")));
    }
    let page =
        String::from_utf8_lossy(&run(Command::new(&binaries().pysfx).args(["man", "pack"])).stdout)
            .replace("\\-", "-");
    assert!(page.contains("--exclude") && page.contains("--app-version"));
    // Only `pysfx` itself takes --version: no subcommand's page offers it, and each still
    // names the version in its footer.
    assert!(
        !page.contains("-V, --version") && page.contains(env!("CARGO_PKG_VERSION")),
        "{page}"
    );
    let rejected = run(Command::new(&binaries().pysfx).args(["pack", "--version"]));
    assert_eq!(rejected.status.code(), Some(2));
    let top = String::from_utf8_lossy(&run(Command::new(&binaries().pysfx).arg("man")).stdout)
        .replace("\\-", "-");
    assert!(top.contains("--version"), "{top}");
    let output = run(Command::new(&binaries().pysfx).args(["man", "nope"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pack, inspect"));
}

/// Options that cannot both hold are usage errors (exit 2) before any work: `--no-bootstrap`
/// with `--bootstrap-wheels`, bootstrap wheels without pip (the venv's pip comes from them) or
/// with a wheel of another distribution (it would go into every venv), one target spelled
/// twice, one interpreter given twice.
#[test]
fn contradictory_collection_options_are_usage_errors() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    let no_pip = root.join("no-pip");
    tiny_wheel(&no_pip, "setuptools", "1.0", &[]);
    // pip, and a wheel that is no installer's, which would go into every venv.
    let not_bootstrap = root.join("not-bootstrap");
    tiny_wheel(&not_bootstrap, "pip", "1.0", &[]);
    tiny_wheel(&not_bootstrap, "six", "1.0", &[]);
    let requirements = root.join("requirements.txt");
    std::fs::write(&requirements, "six\n").expect("write");
    let python311 = pysfx_e2e::python(11).path;
    let linked = root.join("python-link");
    std::os::unix::fs::symlink(&python311, &linked).expect("link");
    let python_twice = |second| {
        vec![
            OsStr::new("-r"),
            requirements.as_os_str(),
            OsStr::new("--python"),
            python311.as_os_str(),
            OsStr::new("--python"),
            second,
        ]
    };
    let cases: Vec<(Vec<&OsStr>, &str)> = vec![
        (
            vec![
                OsStr::new("--no-bootstrap"),
                OsStr::new("--bootstrap-wheels"),
                no_pip.as_os_str(),
            ],
            "choose one",
        ),
        (
            vec![OsStr::new("--bootstrap-wheels"), no_pip.as_os_str()],
            "no pip wheel there",
        ),
        (
            vec![
                OsStr::new("-r"),
                requirements.as_os_str(),
                OsStr::new("--target"),
                OsStr::new("3.12"),
                OsStr::new("--target"),
                OsStr::new("cp312-manylinux2014_x86_64"),
            ],
            "the same target",
        ),
        (
            vec![
                OsStr::new("-r"),
                requirements.as_os_str(),
                OsStr::new("--target"),
                OsStr::new("cp311-manylinux2014_x86_64"),
                OsStr::new("--target"),
                OsStr::new("cp311-manylinux_2_17_x86_64"),
            ],
            "the same target",
        ),
        (
            vec![OsStr::new("--bootstrap-wheels"), not_bootstrap.as_os_str()],
            "is not a wheel of pip, setuptools or wheel",
        ),
        (
            vec![OsStr::new("--max-glibc"), OsStr::new("2.17.1")],
            "expected a glibc version 2.N",
        ),
        (
            vec![OsStr::new("--max-glibc"), OsStr::new("3.0")],
            "expected a glibc version 2.N",
        ),
        (
            vec![OsStr::new("--max-glibc"), OsStr::new("2.16")],
            "older than 2.17",
        ),
        (python_twice(python311.as_os_str()), "is given twice"),
        // One interpreter through a link: found the same before pip runs twice.
        (
            python_twice(linked.as_os_str()),
            "is the same interpreter as",
        ),
    ];
    // The variable is a default --no-bootstrap overrides, not a contradiction, set or empty;
    // without --no-bootstrap it is taken (here a directory without pip: refused).
    let with_variable = |value: &OsStr, extra: &[&OsStr]| {
        let mut args = vec![OsStr::new("--app"), app.as_os_str()];
        args.extend_from_slice(extra);
        run(pack_command(&args, &root.join("env.sfx")).env("PYSFX_BOOTSTRAP_WHEELS", value))
    };
    for value in [no_pip.as_os_str(), OsStr::new("")] {
        let output = with_variable(value, &[OsStr::new("--no-bootstrap")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{value:?}: {stderr}");
    }
    let output = with_variable(no_pip.as_os_str(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no pip wheel there"), "{stderr}");
    // The message names where the directory was given.
    assert!(stderr.contains("$PYSFX_BOOTSTRAP_WHEELS"), "{stderr}");
    for (extra, says) in cases {
        let mut args = vec![OsStr::new("--app"), app.as_os_str()];
        args.extend(extra);
        let output = run(&mut pack_command(&args, &root.join("site.sfx")));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!root.join("site.sfx").exists());
    }
}

/// Completions, man pages, help and the version that stdout cannot take (a full disk) are an
/// error, exit 1, not a panic nor a silent success.
#[test]
fn output_stdout_cannot_take_is_an_error_not_a_panic() {
    for args in [
        &["completions", "bash"][..],
        &["man"][..],
        &["--help"][..],
        &["pack", "--help"][..],
        &["--version"][..],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let output = run(Command::new(&binaries().pysfx).args(args).stdout(full));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn no_colour_under_no_color_or_a_dumb_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to run the packer on a terminal");
    }
    let work = tempfile::tempdir().expect("tempdir");
    let app = make_app(work.path(), "demoapp");
    let pack = pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("site.sfx"),
    );
    let pack_line = shell_line(&pack);
    let usage_line = format!("'{}' pack --bogus", binaries().pysfx.display());
    // On a plain terminal the log level is coloured: the test sees colour where there is some.
    let coloured = on_terminal(&pack_line, &[]);
    assert!(
        coloured.contains("wrote") && has_colour(&coloured),
        "{coloured:?}"
    );
    for environment in [[("NO_COLOR", "1")], [("TERM", "dumb")]] {
        for command in [&pack_line, &usage_line] {
            let shown = on_terminal(command, &environment);
            assert!(
                shown.contains("wrote") || shown.contains("--bogus"),
                "{environment:?}: {shown:?}"
            );
            assert!(!has_colour(&shown), "{environment:?}: {shown:?}");
        }
    }
}

/// What `command` (a shell line) shows when run on a terminal (`script`), with `environment`
/// added to a colour terminal's.
fn on_terminal(command: &str, environment: &[(&str, &str)]) -> String {
    let mut script = Command::new("script");
    script
        .args(["-qec", command, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR");
    for (name, value) in environment {
        script.env(name, value);
    }
    let output = run(&mut script);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A command as a shell line, each argument quoted.
fn shell_line(command: &Command) -> String {
    let line: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|arg| format!("'{}'", arg.to_string_lossy()))
        .collect();
    line.join(" ")
}

#[test]
fn quiet_draws_no_progress_bar_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to run the packer on a terminal");
    }
    let work = tempfile::tempdir().expect("tempdir");
    let app = make_app(work.path(), "demoapp");
    let wheels = work.path().join("wheels");
    // Wheels to count: a pack without any draws no bar anyway.
    for name in ["tinya", "tinyb", "tinyc"] {
        tiny_wheel(&wheels, name, "1.0", &[]);
    }
    let pack = |quiet: bool| {
        let flag = [OsStr::new("-q")];
        let args = pysfx_e2e::app_and_wheels(&app, &wheels, if quiet { &flag } else { &[] });
        on_terminal(
            &shell_line(&pack_command(&args, &work.path().join("site.sfx"))),
            &[],
        )
    };
    // The terminal shows the bar without -q: the check below could see one.
    let shown = pack(false);
    assert!(shown.contains("packing wheels"), "{shown:?}");
    let shown = pack(true);
    assert!(shown.trim().is_empty(), "-q: {shown:?}");
}

#[test]
fn keygen_refuses_a_directory_as_the_keys_name() {
    let work = tempfile::tempdir().expect("tempdir");
    let keys = work.path().join("keys");
    std::fs::create_dir(&keys).expect("mkdir");
    let keygen = |name: &Path| {
        run(Command::new(&binaries().pysfx)
            .args(["keygen", "--unencrypted", "-o"])
            .arg(name))
    };
    let slashed = format!("{}/", keys.display());
    let missing = format!("{}/", work.path().join("missing").display());
    for name in [keys.to_str().expect("UTF-8"), &slashed, &missing] {
        let output = keygen(Path::new(name));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "-o {name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains("writes NAME.key and NAME.pub"),
            "-o {name}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "-o {name}: {stderr}");
    }
    // Nothing written, in the directory or beside it.
    let mut written: Vec<String> = std::fs::read_dir(work.path())
        .expect("read_dir")
        .chain(std::fs::read_dir(&keys).expect("read_dir"))
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    written.sort();
    assert_eq!(written, ["keys"]);
    // A name in the directory is what -o takes.
    let output = keygen(&keys.join("release"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(keys.join("release.key").is_file() && keys.join("release.pub").is_file());
}

/// Whether `text` holds a colour escape (SGR, `ESC [ digits ; … m`); cursor movements of a
/// progress line are not colour.
fn has_colour(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|rest| {
            let parameters: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ';')
                .collect();
            rest[parameters.len()..].starts_with('m')
        })
    })
}

/// Two distributions of a set that cannot be installed together (one ships a file where the
/// other needs a directory) are refused at pack time, naming both, as every install that
/// chose both would refuse them (exit 3); either alone packs.
#[test]
fn a_file_where_another_wheel_needs_a_directory_is_refused_at_pack() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    let script = r#"
import base64, hashlib, os, sys, zipfile
def wheel(directory, name, files):
    os.makedirs(directory, exist_ok=True)
    info = "%s-1.0.dist-info" % name
    files = dict(files)
    files[info + "/METADATA"] = "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % name
    files[info + "/WHEEL"] = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    rows = []
    for path, text in sorted(files.items()):
        digest = hashlib.sha256(text.encode()).digest()
        b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        rows.append("%s,sha256=%s,%d" % (path, b64, len(text.encode())))
    rows.append(info + "/RECORD,,")
    files[info + "/RECORD"] = "\n".join(rows) + "\n"
    with zipfile.ZipFile(os.path.join(directory, name + "-1.0-py3-none-any.whl"), "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
wheel(sys.argv[1], "alpha", {"shared/x": "A\n"})
wheel(sys.argv[2], "beta", {"shared/x/y.py": "B = 1\n"})
"#;
    let (both, alone) = (root.join("both"), root.join("alone"));
    let output = run(Command::new(pysfx_e2e::host_python())
        .args(["-c", script])
        .arg(&both)
        .arg(&alone));
    assert!(output.status.success(), "{output:?}");
    for entry in std::fs::read_dir(&alone).expect("alone") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, both.join(path.file_name().expect("name"))).expect("copy");
    }
    let pack = |wheels: &Path, out: &str| {
        let args = [
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ];
        run(&mut pack_command(&args, &root.join(out)))
    };
    let output = pack(&both, "both.sfx");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("alpha-1.0-py3-none-any.whl ships the file shared/x")
            && stderr.contains("beta-1.0-py3-none-any.whl needs a directory there"),
        "{stderr}"
    );
    assert!(!root.join("both.sfx").exists());
    let output = pack(&alone, "alone.sfx");
    assert!(output.status.success(), "{output:?}");
}

/// `-o` naming a symbolic link (`/dev/stdout`, a `latest.sfx` link) is refused (exit 2) and
/// the link left as it is: the final rename would replace the link with a file instead of
/// writing where it leads; `-o -` is no standard output either.
#[test]
fn output_that_is_a_link_or_a_dash_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    let real = root.join("real");
    std::fs::create_dir(&real).expect("mkdir");
    let link = root.join("latest.sfx");
    std::os::unix::fs::symlink(&real, &link).expect("link");
    let args = [
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    let output = run(&mut pack_command(&args, &link));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_link(&link).expect("still a link"), real);
    let output = run(pack_command(&args, Path::new("-")).current_dir(root));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!root.join("-").exists());
}

/// A path given with a line break in it (`$'a\nERROR: …'`) is spelled escaped in the error:
/// one line, which no second line can be forged into.
#[test]
fn an_argument_with_a_line_break_stays_on_one_line() {
    let work = tempfile::tempdir().expect("tempdir");
    let forged = work.path().join("nope\nERROR: forged line");
    for args in [
        vec![
            OsStr::new("pack"),
            OsStr::new("--app"),
            forged.as_os_str(),
            OsStr::new("-o"),
            work.path().join("site.sfx").as_os_str(),
        ],
        vec![OsStr::new("inspect"), forged.as_os_str()],
    ] {
        let output = run(Command::new(&binaries().pysfx).args(&args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("nope\\nERROR: forged line"), "{stderr}");
    }
}
