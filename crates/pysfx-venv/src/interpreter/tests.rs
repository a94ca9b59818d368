//! The query against misbehaving programs (sleeping, flooding, echoing) and real interpreters.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::run::timeout_from;
use super::*;
use crate::VenvError;

const PYENV: &str = "/root/.pyenv/versions";

/// Writes an executable shell script and returns its path.
fn script(directory: &Path, name: &str, body: &str) -> String {
    let path = directory.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");
    path.to_string_lossy().into_owned()
}

fn within(seconds: u64) -> Limits {
    Limits {
        timeout: Duration::from_secs(seconds),
        ..Limits::default()
    }
}

fn pyenv_python(version: &str) -> String {
    let python = format!("{PYENV}/{version}/bin/python");
    assert!(
        Path::new(&python).exists(),
        "{python} is missing: this test needs the pyenv interpreters"
    );
    python
}

/// An error message an operator can read at a glance.
fn assert_short(message: &str) {
    assert!(message.chars().count() < 400, "too long: {message}");
    assert!(!message.contains("import"), "echoes the query: {message}");
    assert!(!message.chars().any(char::is_control), "{message:?}");
}

#[test]
fn a_python_that_sleeps_is_stopped_at_the_timeout() {
    let directory = tempfile::tempdir().expect("temp dir");
    let sleeper = script(directory.path(), "sleeper", "exec sleep 1000\n");
    let started = Instant::now();
    let error = Interpreter::query_with(&sleeper, within(2))
        .expect_err("no answer")
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(error.contains("did not answer within 2 s"), "{error}");
    assert_short(&error);
}

#[test]
fn a_wrapper_whose_child_keeps_the_pipes_open_is_not_waited_for() {
    // The shell runs `sleep` as its child: killing the shell leaves `sleep` holding the
    // output pipes, so they do not close until it ends by itself.
    let directory = tempfile::tempdir().expect("temp dir");
    let wrapper = script(directory.path(), "wrapper", "sleep 6\n");
    let started = Instant::now();
    let error = Interpreter::query_with(&wrapper, within(1))
        .expect_err("no answer")
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(error.contains("did not answer within 1 s"), "{error}");
}

/// The stub blocks SIGINT, SIGTERM and SIGHUP in its threads; what it runs starts with none
/// blocked (the interpreter reports its own mask; a shell would clear it itself).
#[test]
fn a_run_starts_with_no_signal_blocked() {
    let python = pyenv_python("3.11.7");
    // On a thread of its own, so that no other test's thread has the mask.
    let run = std::thread::spawn(move || {
        let mut blocked = nix::sys::signal::SigSet::empty();
        blocked.add(nix::sys::signal::Signal::SIGTERM);
        blocked.add(nix::sys::signal::Signal::SIGHUP);
        blocked.thread_block().expect("block");
        let report = "import signal; print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))";
        run_bounded(&python, &["-c", report], within(30)).expect("runs")
    })
    .join()
    .expect("thread");
    let text = String::from_utf8_lossy(&run.stdout);
    assert_eq!(text.trim(), "[]", "{text}");
}

/// A script still open for writing somewhere (here, by this test for a moment) cannot be
/// executed yet: the run waits for it rather than failing.
#[test]
fn a_program_briefly_open_for_writing_is_run_once_it_is_closed() {
    let directory = tempfile::tempdir().expect("temp dir");
    let program = script(directory.path(), "busy", "echo ran\n");
    let writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&program)
        .expect("open for writing");
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(writer);
    });
    let run = run_bounded(&program, &[], within(30)).expect("runs once closed");
    closer.join().expect("thread");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "ran\n");
}

#[test]
fn endless_output_is_capped_and_stopped() {
    let directory = tempfile::tempdir().expect("temp dir");
    let limits = within(60);
    for (body, on_stdout) in [("exec yes\n", true), ("exec yes >&2\n", false)] {
        let program = script(directory.path(), "printer", body);
        let started = Instant::now();
        let run = run_bounded(&program, &[], limits).expect("runs");
        assert_eq!(
            run.ending,
            Ending::Overflowed { stdout: on_stdout },
            "{body}"
        );
        assert!(run.stdout.len() <= limits.stdout_cap);
        assert!(run.stderr.len() <= limits.stderr_cap);
        let error = Interpreter::query_with(&program, limits)
            .expect_err("no answer")
            .to_string();
        let stream = if on_stdout { "output" } else { "error" };
        assert!(error.contains("printed more than"), "{error}");
        assert!(error.contains(stream), "{error}");
        assert_short(&error);
        assert!(started.elapsed() < Duration::from_secs(20), "{body}");
    }
}

#[test]
fn a_program_that_echoes_its_arguments_is_not_quoted_back() {
    let directory = tempfile::tempdir().expect("temp dir");
    let echo = script(directory.path(), "echo", "echo \"$@\" >&2\nexit 3\n");
    for program in ["/bin/ls", echo.as_str()] {
        let error = Interpreter::query_with(program, within(10))
            .expect_err("not a Python")
            .to_string();
        assert!(error.contains("the interpreter query failed"), "{error}");
        assert!(error.ends_with('…'), "{error}");
        assert_short(&error);
    }
}

#[test]
fn a_directory_is_named_as_one() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().to_string_lossy().into_owned();
    let error = Interpreter::query_with(&path, within(10))
        .expect_err("a directory")
        .to_string();
    assert!(error.ends_with("it is a directory"), "{error}");
}

#[test]
fn a_bare_name_not_on_path_is_said_to_be_missing_there() {
    let error = Interpreter::query_with("pysfx-no-such-python", within(10))
        .expect_err("not on PATH")
        .to_string();
    assert!(error.ends_with("no such program on PATH"), "{error}");
}

#[test]
fn a_silent_failure_says_so() {
    let error = Interpreter::query_with("/bin/false", within(10))
        .expect_err("not a Python")
        .to_string();
    assert!(
        error.ends_with("the interpreter query failed (exit status: 1): it printed nothing"),
        "{error}"
    );
}

#[test]
fn what_a_failure_printed_is_cut_and_escaped() {
    let directory = tempfile::tempdir().expect("temp dir");
    let noisy = script(
        directory.path(),
        "noisy",
        "printf 'first line\\n\\033[31mred\\a %s\\n\\n' \"$(printf '%0300d' 0)\" >&2\nexit 1\n",
    );
    let error = Interpreter::query_with(&noisy, within(10))
        .expect_err("not a Python")
        .to_string();
    assert!(error.contains("\\u{1b}[31mred\\u{7} 000"), "{error}");
    // Its first line and its last (neither names an error).
    assert!(error.contains("first line … \\u{1b}"), "{error}");
    assert!(error.ends_with("0…"), "{error}");
    assert_short(&error);

    let chatty = script(directory.path(), "chatty", "echo 'Welcome!'\n");
    let error = Interpreter::query_with(&chatty, within(10))
        .expect_err("no JSON")
        .to_string();
    assert!(
        error.contains("unexpected answer to the interpreter query"),
        "{error}"
    );
    assert!(error.ends_with(": Welcome!"), "{error}");
}

#[test]
fn real_interpreters_answer_with_their_marker_environment() {
    for version in ["3.6.15", "3.13.0"] {
        let python = pyenv_python(version);
        let interpreter =
            Interpreter::query_with(&python, within(60)).unwrap_or_else(|error| panic!("{error}"));
        // pip's vendored packaging computes the same values on every pyenv interpreter.
        let output = Command::new(&python)
            .args([
                "-c",
                "import json; from pip._vendor.packaging.markers import default_environment as e; print(json.dumps(e()))",
            ])
            .output()
            .expect("run python");
        let expected: std::collections::BTreeMap<String, String> =
            serde_json::from_slice(&output.stdout).expect("pip's environment");
        let environment = interpreter.marker_environment();
        let ours = environment.fields();
        assert_eq!(ours.len(), expected.len(), "{expected:?}");
        for (key, value) in ours {
            assert_eq!(
                Some(value),
                expected.get(key).map(String::as_str),
                "{version}: {key}"
            );
        }
    }
}

/// An interpreter that cannot tell its own path (no PATH to find itself on) is refused: the
/// venv's `bin/python` would lead nowhere; so is one whose path holds a line break, which
/// pyvenv.cfg cannot hold.
#[test]
fn an_interpreter_without_its_own_path_is_refused() {
    let python = pyenv_python("3.11.7");
    let answer = Interpreter::query_with(&python, within(60))
        .expect("a good interpreter")
        .answer;
    assert!(Interpreter::from_answer(&python, &answer).is_some());
    let mut facts: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    for lost in [
        "",
        "python3",
        "/opt/py\nthon/bin/python3",
        "/opt/py\rthon/bin/python3",
    ] {
        facts["executable"] = serde_json::json!(lost);
        let answer = facts.to_string();
        assert!(
            Interpreter::from_answer(&python, &answer).is_none(),
            "sys.executable {lost:?} accepted"
        );
    }
}

/// CPython 3.6 under the C locale, reached through a path that is not ASCII: its answer still
/// names that path (it decodes it with surrogate escapes, which JSON cannot carry), and it is
/// refused by name: a venv of it would not start under that locale. Under a UTF-8 locale it is
/// used.
#[test]
fn a_non_ascii_path_under_the_c_locale_is_answered() {
    let directory = tempfile::tempdir().expect("temp dir");
    let place = directory.path().join("pyth\u{f6}n");
    std::fs::create_dir(&place).expect("mkdir");
    let python = place.join("python");
    std::os::unix::fs::symlink(pyenv_python("3.6.15"), &python).expect("symlink");
    let wrapper = script(
        directory.path(),
        "c-locale",
        &format!("LC_ALL=C exec {} \"$@\"\n", python.display()),
    );
    let error = Interpreter::query_with(&wrapper, within(60))
        .expect_err("refused")
        .to_string();
    assert!(error.contains("decodes file names as ASCII"), "{error}");
    assert!(error.contains("pyth\u{f6}n"), "{error}");
    let utf8 = script(
        directory.path(),
        "utf-8-locale",
        &format!("LC_ALL=C.UTF-8 exec {} \"$@\"\n", python.display()),
    );
    let interpreter = Interpreter::query_with(&utf8, within(60)).expect("answered");
    assert_eq!(interpreter.executable, python);
}

#[test]
fn python_2_is_named_unsupported() {
    let error = Interpreter::query_with(&pyenv_python("2.7.18"), within(60)).expect_err("too old");
    assert!(
        matches!(&error, VenvError::Unsupported { version, .. } if version == "2.7.18"),
        "{error}"
    );
}

#[test]
fn the_timeout_variable_takes_whole_seconds() {
    let cases = [
        (None, 30),
        (Some("5"), 5),
        (Some(" 7 "), 7),
        (Some("86400"), 86_400),
        (Some("0"), 30),
        (Some("86401"), 30),
        (Some("-1"), 30),
        (Some("2.5"), 30),
        (Some("abc"), 30),
        (Some(""), 30),
    ];
    for (value, seconds) in cases {
        let timeout = timeout_from(value.map(std::ffi::OsStr::new));
        assert_eq!(timeout, Duration::from_secs(seconds), "{value:?}");
    }
}

#[test]
fn an_old_receipt_still_gives_a_marker_environment() {
    let json = r#"{"version_info": [3, 8, 18], "release_level": "final",
        "implementation": "cpython", "executable": "/usr/bin/python3.8",
        "prefix": "/usr", "base_prefix": "/usr", "base_executable": null,
        "platform": "linux-x86_64", "is_32bit": false, "glibc": "2.17",
        "py_debug": false, "has_refcount": false, "with_pymalloc": true,
        "gil_disabled": null, "cache_tag": "cpython-38", "magic": "550d0d0a",
        "os_name": "posix"}"#;
    let interpreter: Interpreter = serde_json::from_str(json).expect("an old receipt");
    let environment = interpreter.marker_environment();
    assert_eq!(environment.python_version, "3.8");
    assert_eq!(environment.python_full_version, "3.8.18");
    assert_eq!(environment.implementation_version, "3.8.18");
    assert_eq!(environment.platform_python_implementation, "CPython");
    assert_eq!(environment.platform_machine, "");
}

/// `--python` naming an interpreter inside a venv (an earlier release's `venv/bin/python`):
/// the new venv links to the base interpreter the venv's `pyvenv.cfg` names, not through it,
/// although the query (run without `site`) sees no venv in `sys.prefix`.
#[test]
fn an_interpreter_inside_a_venv_gives_its_base() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let base_bin = temporary.path().join("base/bin");
    std::fs::create_dir_all(&base_bin).expect("base");
    std::fs::write(base_bin.join("python3.8"), "").expect("base python");
    let venv = temporary.path().join("release/venv");
    std::fs::create_dir_all(venv.join("bin")).expect("venv");
    std::fs::write(venv.join("bin/python"), "").expect("venv python");
    let executable = venv.join("bin/python");
    let json = serde_json::json!({"version_info": [3, 8, 18], "release_level": "final",
        "implementation": "cpython", "executable": executable,
        "prefix": temporary.path().join("base"), "base_prefix": temporary.path().join("base"),
        "base_executable": executable,
        "platform": "linux-x86_64", "is_32bit": false, "glibc": "2.17",
        "py_debug": false, "has_refcount": false, "with_pymalloc": true,
        "gil_disabled": null, "cache_tag": "cpython-38", "magic": "550d0d0a",
        "os_name": "posix"});
    let interpreter: Interpreter = serde_json::from_value(json).expect("facts");
    assert_eq!(
        interpreter.base_executable(),
        executable,
        "no pyvenv.cfg: itself"
    );
    std::fs::write(
        venv.join("pyvenv.cfg"),
        format!(
            "home = {}\ninclude-system-site-packages = false\n",
            base_bin.display()
        ),
    )
    .expect("pyvenv.cfg");
    assert_eq!(interpreter.base_executable(), base_bin.join("python3.8"));
}

/// A `--python` reached through a directory and `..` (a relative path from where the deploy
/// ran, made absolute) gives paths that do not depend on that directory: the venv made from
/// them still works once it is gone. (CPython 3.6 answers such a path as it was given; 3.11
/// drops `work/..` itself.)
#[test]
fn a_path_through_a_directory_and_up_does_not_depend_on_it() {
    for version in ["3.6.15", "3.11.7"] {
        let temporary = tempfile::tempdir().expect("tempdir");
        let work = temporary.path().join("work");
        std::fs::create_dir(&work).expect("work");
        let bin = Path::new(&pyenv_python(version))
            .parent()
            .expect("bin")
            .to_path_buf();
        let link = temporary.path().join("bin");
        std::os::unix::fs::symlink(&bin, &link).expect("a link to the bin directory");
        let roundabout = work.join("../bin/python");
        let roundabout = roundabout.to_str().expect("utf-8");
        let interpreter = Interpreter::query(roundabout).expect("the query");
        let remembered = Interpreter::from_answer(roundabout, &interpreter.answer)
            .expect("the remembered answer");
        // Up from a link to a directory: the kernel goes up from where the link leads (the
        // pyenv prefix), where CPython 3.11 would take `lib/..` away by the name alone.
        let lib = temporary.path().join("lib");
        let prefix = bin.parent().expect("prefix");
        std::os::unix::fs::symlink(prefix.join("lib"), &lib).expect("a link to lib");
        let physical = lib.join("../bin/python");
        let physical = Interpreter::query(physical.to_str().expect("utf-8")).expect("the query");
        assert_eq!(physical.executable, bin.join("python"), "{version}");
        std::fs::remove_dir(&work).expect("remove the work directory");
        for facts in [&interpreter, &remembered, &physical] {
            let paths = [
                facts.executable.clone(),
                facts.prefix.clone(),
                facts.base_executable(),
            ];
            for path in paths {
                let through = path.starts_with(&work)
                    || path
                        .components()
                        .any(|part| part == std::path::Component::ParentDir);
                assert!(!through, "{version}: {}", path.display());
                assert!(path.exists(), "{version}: {}", path.display());
            }
            // The last name is kept as given: `python`, not the file it links to.
            assert_eq!(
                facts.executable.file_name(),
                Some(std::ffi::OsStr::new("python")),
                "{version}"
            );
        }
    }
}

/// An interpreter whose own path is not valid UTF-8 (run through a wrapper at a UTF-8 path)
/// is refused with that said, not with the JSON reader's complaint about the answer's
/// surrogate escapes; a path with a character past U+FFFF (a surrogate pair) is answered.
#[test]
fn an_interpreter_whose_path_is_not_utf8_is_refused_saying_so() {
    use std::os::unix::ffi::OsStrExt;
    let directory = tempfile::tempdir().expect("temp dir");
    for (name, answered) in [(&b"bad-\xff"[..], false), ("pair-😀".as_bytes(), true)] {
        let odd = directory.path().join(std::ffi::OsStr::from_bytes(name));
        std::fs::create_dir(&odd).expect("mkdir");
        let target = odd.join("python");
        std::os::unix::fs::symlink(pyenv_python("3.11.7"), &target).expect("link");
        let wrapper = directory.path().join(format!("wrapper-{answered}"));
        let mut body = b"#!/bin/sh\nexec '".to_vec();
        body.extend_from_slice(target.as_os_str().as_bytes());
        body.extend_from_slice(b"' \"$@\"\n");
        std::fs::write(&wrapper, body).expect("write the wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
        let wrapper = wrapper.to_string_lossy().into_owned();
        match Interpreter::query_with(&wrapper, within(20)) {
            Ok(interpreter) => assert!(answered, "{}", interpreter.answer),
            Err(error) => {
                let error = error.to_string();
                assert!(!answered, "{error}");
                assert!(error.contains("is not valid UTF-8"), "{error}");
                assert_short(&error);
            }
        }
    }
}
