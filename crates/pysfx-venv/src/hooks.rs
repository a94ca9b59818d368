//! The `.pth` hooks written into site-packages: `<app>.pth` puts the release's app directory on
//! `sys.path`; `loadenv-init.pth` and `loadenv.py` load `environment.json` into `os.environ`.
//!
//! CPython 3.6–3.8 scan both `lib/` and `lib64/` site-packages, and `lib64` links to `lib`, so
//! `site` may run each hook twice: both guard themselves to act once per interpreter start.

use std::path::Path;

use pysfx_tree::write_new;

/// The module that loads `environment.json` (`loadenv.py`) and the `.pth` file that imports
/// it: pysfx's hooks in site-packages, which no wheel may replace or shadow.
pub const HOOK_MODULE: &str = "loadenv";
pub const HOOK_PTH: &str = "loadenv-init.pth";

use crate::{PycFormat, VenvError};

/// `loadenv-init.pth`: an `import` line, which `site` executes.
pub const LOADENV_INIT_PTH: &str = "import loadenv; loadenv.load()\n";

/// `loadenv.py`: runs on CPython 3.6 and later. Never prints a value.
pub const LOADENV_PY: &str = r#""""Load <release>/environment.json into os.environ at interpreter start.

Written by pysfx. The file sits next to the venv (sys.prefix/../environment.json) and holds one
JSON object; its values win over inherited variables. Strings are taken as they are; numbers and
booleans become their JSON text ("5", "1.5", "true", "false"); objects and arrays become their
JSON text too; null leaves the variable alone. A malformed file, or one that is not a regular
file (a FIFO), prints one warning line to stderr and the interpreter starts anyway. A UTF-8 byte
order mark is allowed. Values are never printed.
"""
import errno
import json
import os
import stat
import sys

_loaded = False


class _Number(str):
    """A JSON number, kept as written (1E5 stays 1E5; no 4300-digit limit on ints)."""


def _as_text(value):
    if isinstance(value, str):
        return str(value)
    return _dump(value)


def _dump(value):
    # json.dumps(value, sort_keys=True), but numbers as written.
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join("%s: %s" % (json.dumps(key), _dump(value[key])) for key in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(item) for item in value) + "]"
    return json.dumps(value)


def _warn(message):
    # Best effort, straight to descriptor 2: a closed, full or broken stderr must neither stop
    # the interpreter nor the other variables, nor leave a line buffered to fail at exit.
    try:
        os.write(2, message.encode("utf-8", "backslashreplace"))
    except Exception:
        pass


def _not_json(constant):
    raise ValueError("%s is not JSON" % constant)


def load():
    global _loaded
    if _loaded:
        return
    _loaded = True
    # The release's directory as the kernel finds it: a venv reached through a link to it
    # (/opt/x/venv -> DEST/venv) is still DEST's, as for <app>.pth.
    path = os.path.join(os.path.realpath(os.path.join(sys.prefix, os.pardir)), "environment.json")
    try:
        # O_NONBLOCK: opening a FIFO for reading waits for a writer, which would hang every
        # interpreter start; the check below then refuses anything but a regular file.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        # No file is the normal case; one that exists but cannot be read is worth a line.
        if error.errno != errno.ENOENT:
            _warn("loadenv: ignoring %s: cannot read it (%s)\n" % (path, type(error).__name__))
        return
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            _warn("loadenv: ignoring %s: not a regular file\n" % path)
            return
        # O_NONBLOCK does not affect reading a regular file.
        with os.fdopen(descriptor, "rb") as handle:
            descriptor = None
            raw = handle.read()
    except OSError as error:
        _warn("loadenv: ignoring %s: cannot read it (%s)\n" % (path, type(error).__name__))
        return
    finally:
        if descriptor is not None:
            os.close(descriptor)
    try:
        # utf-8-sig: editors on Windows save JSON with a byte order mark. NaN and Infinity
        # are not JSON. A number keeps its text.
        data = json.loads(
            raw.decode("utf-8-sig"), parse_constant=_not_json, parse_int=_Number, parse_float=_Number
        )
    except Exception as error:
        _warn("loadenv: ignoring %s: not valid JSON (%s)\n" % (path, type(error).__name__))
        return
    if not isinstance(data, dict):
        _warn("loadenv: ignoring %s: not a JSON object\n" % path)
        return
    for key, value in data.items():
        if value is None:
            continue
        try:
            name, text = str(key), _as_text(value)
        except Exception as error:
            # Nested deeper than the recursion limit (RecursionError): that variable only.
            _warn("loadenv: ignoring the variable %r in %s: its value cannot be made text (%s)\n" % (key, path, type(error).__name__))
            continue
        if not name or "=" in name or "\0" in name or "\0" in text:
            # What the OS cannot hold: every Python refuses it alike (3.6-3.8 would not).
            _warn("loadenv: ignoring the variable %r in %s: invalid name or value\n" % (key, path))
            continue
        try:
            try:
                os.environ[name] = text
            except UnicodeEncodeError:
                # CPython 3.6 under the C locale encodes os.environ as ASCII: the variable
                # gets its UTF-8 bytes, as under a UTF-8 locale.
                os.environb[name.encode("utf-8")] = text.encode("utf-8")
        except Exception:
            # An empty name or one with "=" or NUL: the OS refuses it (OSError on 3.9+).
            _warn("loadenv: ignoring the variable %r in %s: invalid name or value\n" % (key, path))
"#;

/// `<app>.pth`: appends `realpath(sys.prefix/../<app>)` to `sys.path`, once.
pub fn app_pth(app_name: &str) -> String {
    format!(
        "import os, sys; _pysfx_app = os.path.realpath(os.path.join(sys.prefix, os.pardir, {app:?})); _pysfx_app in sys.path or sys.path.append(_pysfx_app)\n",
        app = app_name
    )
}

/// The hook module's mtime: 1980-01-01, the zip format's first day.
const HOOK_MTIME: u64 = 315_532_800;

/// Writes the three hook files into `site_packages`, each as a new file (a wheel that shipped
/// one of these names was refused before anything was written), and with `bytecode` (the
/// interpreter's format and the hook module's marshalled code, from its query) the hook
/// module's `.pyc`, so that a release's byte-code is all in place.
pub fn write_hooks(
    site_packages: &Path,
    app_name: &str,
    bytecode: Option<(&PycFormat, &[u8])>,
) -> Result<(), VenvError> {
    for (name, text) in [
        (format!("{app_name}.pth"), app_pth(app_name)),
        (HOOK_PTH.to_string(), LOADENV_INIT_PTH.to_string()),
        (format!("{HOOK_MODULE}.py"), LOADENV_PY.to_string()),
    ] {
        let path = site_packages.join(name);
        write_new(&path, text.as_bytes(), 0o644)
            .map_err(|source| VenvError::Io { path, source })?;
    }
    let Some((format, code)) = bytecode else {
        return Ok(());
    };
    let source = site_packages.join(format!("{HOOK_MODULE}.py"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VenvError::Io { path, source }
    };
    // The module's mtime, which its `.pyc` records, is fixed: every release of an artifact
    // then holds the same bytes (as the sources of byte-code compiled at pack time).
    {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&source)
            .map_err(io(&source))?;
        let fixed = std::time::UNIX_EPOCH + std::time::Duration::from_secs(HOOK_MTIME);
        file.set_modified(fixed).map_err(io(&source))?;
    }
    let metadata = std::fs::symlink_metadata(&source).map_err(io(&source))?;
    let Some(pyc) = format.pyc_of(&format!("{HOOK_MODULE}.py")) else {
        return Ok(());
    };
    pysfx_tree::create_dirs_below(site_packages, "__pycache__")
        .map_err(io(&site_packages.join("__pycache__")))?;
    let pyc = site_packages.join(pyc);
    let mtime = std::os::unix::fs::MetadataExt::mtime(&metadata).max(0) as u64;
    let mut bytes = format.header(mtime, metadata.len());
    bytes.extend_from_slice(code);
    write_new(&pyc, &bytes, 0o644).map_err(io(&pyc))
}

/// Bytes from hex (the query's `hook_code`); `None` for anything else.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use crate::interpreter::{run_bounded, Ending};
    use crate::Limits;

    const PYENV: &str = "/root/.pyenv/versions";

    /// Runs `loadenv.load()` with `python` for a release at `release` (sys.prefix is set to
    /// `release/venv`, as in a real release), and returns what the hook put into
    /// `LOADENV_TEST`, and what it printed on stderr.
    fn load_with(python: &str, release: &Path, module_directory: &Path) -> (String, String) {
        let code = "import os, sys\n\
                    sys.prefix = sys.argv[1]\n\
                    sys.path.insert(0, sys.argv[2])\n\
                    import loadenv\n\
                    loadenv.load()\n\
                    loadenv.load()\n\
                    sys.stdout.write(os.environ.get('LOADENV_TEST', '<unset>'))\n";
        let prefix = release.join("venv");
        let started = Instant::now();
        let run = run_bounded(
            python,
            &[
                "-I",
                "-S",
                "-c",
                code,
                &prefix.to_string_lossy(),
                &module_directory.to_string_lossy(),
            ],
            Limits {
                timeout: Duration::from_secs(20),
                ..Limits::default()
            },
        )
        .expect("run python");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{python}: the hook took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(run.ending, Ending::Exited(status) if status.success()),
            "{python}: {:?} {}",
            run.ending,
            String::from_utf8_lossy(&run.stderr)
        );
        (
            String::from_utf8_lossy(&run.stdout).into_owned(),
            String::from_utf8_lossy(&run.stderr).into_owned(),
        )
    }

    /// Every pyenv CPython 3, 3.6 and 3.13 required.
    fn pythons() -> Vec<String> {
        let mut pythons: Vec<String> = fs::read_dir(PYENV)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.starts_with("3."))
                    .map(|name| format!("{PYENV}/{name}/bin/python"))
                    .collect()
            })
            .unwrap_or_default();
        pythons.sort();
        for needed in ["/3.6.", "/3.13."] {
            assert!(
                pythons.iter().any(|python| python.contains(needed)),
                "no pyenv Python{needed}x in {PYENV}: {pythons:?}"
            );
        }
        pythons
    }

    /// A site-packages holding the hook, and a release beside it whose environment.json is
    /// `json`: their paths.
    fn release_with(directory: &Path, json: &str) -> (PathBuf, PathBuf) {
        let modules = directory.join("site-packages");
        fs::create_dir(&modules).expect("site-packages");
        fs::write(modules.join("loadenv.py"), LOADENV_PY).expect("loadenv.py");
        let release = directory.join("release");
        fs::create_dir_all(release.join("venv")).expect("venv");
        fs::write(release.join("environment.json"), json).expect("write");
        (modules, release)
    }

    /// A venv reached through a link to it (`/opt/x/venv -> DEST/venv`) loads DEST's
    /// environment.json, as `<app>.pth` finds DEST's app.
    #[test]
    fn loadenv_follows_a_link_to_the_venv() {
        let directory = tempfile::tempdir().expect("temp dir");
        let (modules, release) = release_with(directory.path(), "{\"LOADENV_TEST\": \"linked\"}");
        let elsewhere = directory.path().join("elsewhere");
        fs::create_dir(&elsewhere).expect("mkdir");
        std::os::unix::fs::symlink(release.join("venv"), elsewhere.join("venv")).expect("link");
        let python = pythons().into_iter().last().expect("a python");
        let (value, stderr) = load_with(&python, &elsewhere, &modules);
        assert_eq!(value, "linked", "{stderr}");
    }

    /// Under the C locale (CentOS 7's CPython 3.6 then encodes `os.environ` as ASCII), a
    /// value that is not ASCII still reaches the environment, as its UTF-8 bytes.
    #[test]
    fn loadenv_sets_non_ascii_values_under_the_c_locale() {
        let directory = tempfile::tempdir().expect("temp dir");
        let (modules, release) = release_with(
            directory.path(),
            "{\"LOADENV_TEST\": \"h\u{e9}llo \u{2603}\"}",
        );
        let code = "import os, sys\n\
                    sys.prefix = sys.argv[1]\n\
                    sys.path.insert(0, sys.argv[2])\n\
                    import loadenv\n\
                    loadenv.load()\n\
                    sys.stdout.flush()\n\
                    os.execv('/usr/bin/env', ['env'])\n";
        for python in pythons() {
            let run = run_bounded(
                "/usr/bin/env",
                &[
                    "LC_ALL=C",
                    &python,
                    "-I",
                    "-S",
                    "-c",
                    code,
                    &release.join("venv").to_string_lossy(),
                    &modules.to_string_lossy(),
                ],
                Limits::default(),
            )
            .expect("run python");
            let environment = String::from_utf8_lossy(&run.stdout);
            assert!(
                environment
                    .lines()
                    .any(|line| line == "LOADENV_TEST=h\u{e9}llo \u{2603}"),
                "{python}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            assert!(
                run.stderr.is_empty(),
                "{python}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }

    #[test]
    fn loadenv_reads_regular_files_and_refuses_the_rest() {
        let directory = tempfile::tempdir().expect("temp dir");
        let modules = directory.path().join("site-packages");
        fs::create_dir(&modules).expect("site-packages");
        fs::write(modules.join("loadenv.py"), LOADENV_PY).expect("write loadenv.py");
        let release = directory.path().join("release");
        fs::create_dir(&release).expect("release");
        let environment = release.join("environment.json");
        let secret = "s3cr3t-value";

        for python in pythons() {
            let _ = fs::remove_file(&environment);
            let (value, warning) = load_with(&python, &release, &modules);
            assert_eq!(
                (value.as_str(), warning.as_str()),
                ("<unset>", ""),
                "{python}: none"
            );

            fs::write(&environment, b"{\"LOADENV_TEST\": \"plain\"}").expect("write");
            let (value, warning) = load_with(&python, &release, &modules);
            assert_eq!(
                (value.as_str(), warning.as_str()),
                ("plain", ""),
                "{python}: plain"
            );

            fs::write(&environment, b"\xef\xbb\xbf{\"LOADENV_TEST\": 5}").expect("write");
            let (value, warning) = load_with(&python, &release, &modules);
            assert_eq!(
                (value.as_str(), warning.as_str()),
                ("5", ""),
                "{python}: BOM"
            );

            fs::write(&environment, format!("{{\"LOADENV_TEST\": \"{secret}\"")).expect("write");
            let (value, warning) = load_with(&python, &release, &modules);
            assert_eq!(value, "<unset>", "{python}: malformed");
            assert!(warning.contains("not valid JSON"), "{python}: {warning}");
            assert!(!warning.contains(secret), "{python}: {warning}");

            // A FIFO with no writer: opening it for reading would wait for ever.
            fs::remove_file(&environment).expect("remove");
            let made = std::process::Command::new("mkfifo")
                .arg(&environment)
                .status()
                .expect("run mkfifo");
            assert!(made.success(), "mkfifo failed");
            let (value, warning) = load_with(&python, &release, &modules);
            assert_eq!(value, "<unset>", "{python}: FIFO");
            assert_eq!(warning.lines().count(), 1, "{python}: {warning}");
            assert!(
                warning.contains("not a regular file"),
                "{python}: {warning}"
            );

            fs::remove_file(&environment).expect("remove");
            fs::create_dir(&environment).expect("a directory");
            let (value, warning) = load_with(&python, &release, &modules);
            assert_eq!(value, "<unset>", "{python}: directory");
            assert!(
                warning.contains("not a regular file"),
                "{python}: {warning}"
            );
            fs::remove_dir(&environment).expect("remove");

            // Valid JSON nested deeper than the recursion limit allows to write back as text
            // (and under what `json` itself reads): one line, and the other variables load.
            let deep = format!("{}1{}", "[".repeat(600), "]".repeat(600));
            let text = format!("{{\"DEEP\": {deep}, \"LOADENV_TEST\": \"after\"}}");
            fs::write(&environment, text).expect("write");
            let (value, warning) = load_with(&python, &release, &modules);
            assert_eq!(warning.lines().count(), 1, "{python}: {warning}");
            if warning.contains("not valid JSON") {
                // The interpreter's own reader refused it (3.6-3.8 at some depths): the
                // whole file, as for any file it cannot read.
                assert_eq!(value, "<unset>", "{python}: deep");
            } else {
                assert!(warning.contains("'DEEP'"), "{python}: {warning}");
                assert_eq!(value, "after", "{python}: deep");
            }
        }
    }

    /// A warning that cannot be written (stderr full, or closed) neither stops the interpreter
    /// nor the variables after the one warned about.
    #[test]
    fn loadenv_warns_at_best_and_loads_the_rest() {
        use std::process::{Command, Stdio};
        let directory = tempfile::tempdir().expect("temp dir");
        let (modules, release) = release_with(
            directory.path(),
            "{\"A=B\": \"x\", \"LOADENV_TEST\": \"after\"}",
        );
        let code = "import os, sys\n\
                    sys.prefix = sys.argv[1]\n\
                    sys.path.insert(0, sys.argv[2])\n\
                    import loadenv\n\
                    loadenv.load()\n\
                    print(os.environ.get('LOADENV_TEST', '<unset>'))\n";
        for python in pythons() {
            for closed in [false, true] {
                let mut command = Command::new(&python);
                command
                    .args(["-I", "-S", "-c", code])
                    .arg(release.join("venv"))
                    .arg(&modules)
                    .stdout(Stdio::piped());
                let output = if closed {
                    // Descriptor 2 closed in the child (sys.stderr is None).
                    command.stderr(Stdio::null());
                    // SAFETY: only close(2), async-signal-safe, between fork and exec.
                    #[allow(unsafe_code)]
                    unsafe {
                        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                            nix::unistd::close(2).map_err(std::io::Error::from)
                        });
                    }
                    command.output()
                } else {
                    let full = fs::OpenOptions::new().write(true).open("/dev/full");
                    command.stderr(full.expect("/dev/full")).output()
                }
                .expect("run python");
                assert!(
                    output.status.success(),
                    "{python} (closed: {closed}): {output:?}"
                );
                assert_eq!(
                    String::from_utf8_lossy(&output.stdout).trim(),
                    "after",
                    "{python} (closed: {closed})"
                );
            }
        }
    }

    #[test]
    fn app_pth_quotes_the_name() {
        assert_eq!(
            app_pth("mysite"),
            "import os, sys; _pysfx_app = os.path.realpath(os.path.join(sys.prefix, os.pardir, \"mysite\")); _pysfx_app in sys.path or sys.path.append(_pysfx_app)\n"
        );
    }
}
