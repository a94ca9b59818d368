//! Log levels mean something: the default says what was done; `-v` (`PYSFX_LOG=debug`) adds
//! each wheel's decision, with its set; `-vv` (`PYSFX_LOG=trace`) adds each file written.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{make_app, pack, python, run, tagged_wheel, tiny_wheel, wheel_requiring_python};

/// Installs `artifact` into a fresh DEST under `root`, returning stderr.
fn install_log(
    artifact: &Path,
    root: &Path,
    name: &str,
    args: &[&str],
    log: Option<&str>,
) -> String {
    let mut command = Command::new(artifact);
    command
        .arg("-d")
        .arg(root.join(name))
        .arg("--python")
        .arg(&python(11).path)
        .args(args)
        .env_remove("PYSFX_LOG");
    if let Some(level) = log {
        command.env("PYSFX_LOG", level);
    }
    let output = run(&mut command);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?} {log:?}: {stderr}");
    stderr
}

/// The lines of a log at `level`, with the level word.
fn lines_at<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|line| line.trim_start().starts_with(level))
        .collect()
}

/// `root/site.sfx`: the app `demoapp` and the wheels in `wheels`, no bootstrap wheels.
fn pack_demoapp(root: &Path, wheels: &Path) -> PathBuf {
    pack(
        &[
            OsStr::new("--app"),
            make_app(root, "demoapp").as_os_str(),
            OsStr::new("--wheels"),
            wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &root.join("site.sfx"),
    )
}

#[test]
fn debug_shows_each_wheels_decision_and_trace_each_file_written() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let wheels = root.join("wheels");
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    tagged_wheel(&wheels, "tinylib", "1.0", "cp27-cp27mu-manylinux1_x86_64");
    wheel_requiring_python(&wheels, "futurelib", "1.0", ">=3.99");
    let artifact = pack_demoapp(root, &wheels);
    let quiet = install_log(&artifact, root, "default", &[], None);
    assert!(lines_at(&quiet, "DEBUG").is_empty(), "{quiet}");
    assert!(lines_at(&quiet, "TRACE").is_empty(), "{quiet}");

    let debug = install_log(&artifact, root, "v", &["-v"], None);
    let decisions = lines_at(&debug, "DEBUG");
    for expected in [
        "set wheels: tinylib-1.0-py3-none-any.whl: chosen",
        "set wheels: tinylib-1.0-cp27-cp27mu-manylinux1_x86_64.whl: skipped: wrong",
        "set wheels: futurelib-1.0-py3-none-any.whl: skipped: Requires-Python >=3.99",
    ] {
        assert!(
            decisions.iter().any(|line| line.contains(expected)),
            "-v: {expected}: {debug}"
        );
    }
    assert!(lines_at(&debug, "TRACE").is_empty(), "-v: {debug}");
    let from_env = install_log(&artifact, root, "env-debug", &[], Some("debug"));
    assert_eq!(
        lines_at(&from_env, "DEBUG").len(),
        decisions.len(),
        "PYSFX_LOG=debug is -v: {from_env}"
    );

    let trace = install_log(&artifact, root, "vv", &["-vv"], None);
    let written = lines_at(&trace, "TRACE");
    for expected in [
        "tinylib/__init__.py -> lib/python3.11/site-packages/tinylib/__init__.py",
        "demoapp/manage.py",
    ] {
        assert!(
            written.iter().any(|line| line.contains(expected)),
            "-vv: {expected}: {trace}"
        );
    }
    assert!(
        lines_at(&trace, "DEBUG").len() >= decisions.len(),
        "-vv includes -v: {trace}"
    );
    let from_env = install_log(&artifact, root, "env-trace", &[], Some("trace"));
    assert_eq!(
        lines_at(&from_env, "TRACE").len(),
        written.len(),
        "PYSFX_LOG=trace is -vv: {from_env}"
    );
}

/// Every log line is escaped where it is written: a bidirectional override in a name (here
/// DEST's, in every line that names a file) shows as `\u{202e}`, at every level. And what the
/// run cannot use is said, never passed over: a `$PYSFX_PYTHON` that is not text is a usage
/// error (not `python3` instead), an open-file limit too low for any run is exit 4 (not a
/// release read as modified).
#[test]
fn logs_escape_what_they_quote_and_the_environment_is_not_passed_over() {
    use std::os::unix::ffi::OsStrExt;
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let wheels = root.join("wheels");
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let artifact = pack_demoapp(root, &wheels);
    let log = install_log(&artifact, root, "ev\u{202e}il", &["-vv"], None);
    assert!(!log.contains('\u{202e}'), "{log}");
    assert!(log.contains("ev\\u{202e}il"), "{log}");

    let destination = root.join("other");
    let output = run(Command::new(&artifact)
        .arg("-d")
        .arg(&destination)
        .env("PYSFX_PYTHON", OsStr::from_bytes(b"/usr/bin/python3\xff")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("$PYSFX_PYTHON is not valid UTF-8 (\"/usr/bin/python3\\xFF\")"),
        "the byte shown as --python's is: {stderr}"
    );
    assert!(!destination.exists());

    let release = root.join("ev\u{202e}il");
    let output = run(Command::new("bash")
        .arg("-c")
        .arg("ulimit -n 8; exec \"$0\" --check \"$1\"")
        .arg(&artifact)
        .arg(&release));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("the open-file limit (ulimit -n) is 8"),
        "{stderr}"
    );
}
