//! One query of the target interpreter: a single `python -I -S -c …` that prints one JSON
//! object, run with a time limit and a cap on what it may print.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tracing::{debug, warn};

use pysfx_wheel::{InterpreterTags, MarkerEnvironment, PlatformFacts};

use crate::VenvError;

/// The first line of [`QUERY_SCRIPT`]. A program that prints its arguments back (`--python
/// /bin/ls`) would put the whole script into the error message; the excerpt stops here.
const SCRIPT_MARKER: &str = "pysfx interpreter query";

/// The query. It runs on every CPython from 3.6 (no f-strings with `=`, no walrus, no
/// `subprocess.run(text=…)`); `-I` keeps the caller's environment and working directory out.
/// The PEP 508 marker values are computed as `packaging.markers.default_environment()` does.
pub const QUERY_SCRIPT: &str = r#"# pysfx interpreter query
import json, os, platform, sys, sysconfig

def glibc_version():
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")
        if value:
            name, _, version = value.partition(" ")
            if name == "glibc":
                return version
    except (AttributeError, OSError, ValueError):
        pass
    try:
        import ctypes
        function = ctypes.CDLL(None).gnu_get_libc_version
        function.restype = ctypes.c_char_p
        return function().decode("ascii")
    except Exception:
        return None

def config_flag(name):
    value = sysconfig.get_config_var(name)
    return None if value is None else bool(value)

def full_version(info):
    # packaging.markers.format_full_version
    version = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version

import importlib.util
info = {
    "version_info": list(sys.version_info[:3]),
    "release_level": sys.version_info[3],
    "implementation": sys.implementation.name,
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "base_executable": getattr(sys, "_base_executable", None),
    "platform": sysconfig.get_platform(),
    "is_32bit": sys.maxsize <= 2 ** 32,
    "glibc": glibc_version(),
    "py_debug": config_flag("Py_DEBUG"),
    "has_refcount": hasattr(sys, "gettotalrefcount"),
    "with_pymalloc": config_flag("WITH_PYMALLOC"),
    "gil_disabled": config_flag("Py_GIL_DISABLED"),
    "cache_tag": sys.implementation.cache_tag,
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "os_name": os.name,
    "sys_platform": sys.platform,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_version": platform.version(),
    "platform_system": platform.system(),
    "platform_python_implementation": platform.python_implementation(),
    "python_full_version": platform.python_version(),
    "implementation_version": full_version(sys.implementation.version),
}
sys.stdout.write(json.dumps(info))
"#;

/// Environment variable: how many whole seconds the interpreter query may take.
pub const QUERY_TIMEOUT_VARIABLE: &str = "PYSFX_QUERY_TIMEOUT";

/// How long one run of the interpreter may take and how much of its output is kept. A
/// `--python` that sleeps, or prints without end, is stopped rather than waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The run is killed when it has not exited by then.
    pub timeout: Duration,
    /// The run is killed when it prints more than this on its standard output (the query's
    /// answer is a few kilobytes).
    pub stdout_cap: usize,
    /// The run is killed when it prints more than this on its standard error.
    pub stderr_cap: usize,
}

impl Limits {
    /// The default timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The defaults, with the timeout from `$PYSFX_QUERY_TIMEOUT` (whole seconds) when set.
    pub fn from_env() -> Limits {
        Limits {
            timeout: timeout_from(std::env::var_os(QUERY_TIMEOUT_VARIABLE).as_deref()),
            ..Limits::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Limits::DEFAULT_TIMEOUT,
            stdout_cap: 1 << 20,
            stderr_cap: 64 << 10,
        }
    }
}

/// The timeout a `$PYSFX_QUERY_TIMEOUT` value asks for: 1 to 86400 whole seconds; anything
/// else is reported (never echoed: it is the caller's environment) and the default used.
fn timeout_from(value: Option<&std::ffi::OsStr>) -> Duration {
    let Some(value) = value else {
        return Limits::DEFAULT_TIMEOUT;
    };
    match value
        .to_str()
        .and_then(|text| text.trim().parse::<u64>().ok())
    {
        Some(seconds @ 1..=86_400) => Duration::from_secs(seconds),
        _ => {
            warn!(
                "{QUERY_TIMEOUT_VARIABLE} is not a whole number of seconds from 1 to 86400; using {}",
                Limits::DEFAULT_TIMEOUT.as_secs()
            );
            Limits::DEFAULT_TIMEOUT
        }
    }
}

/// Everything pysfx needs to know about the target interpreter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Interpreter {
    /// What the user asked for (`python3`, a path), for messages.
    #[serde(default)]
    pub requested: String,
    pub version_info: (u32, u32, u32),
    pub release_level: String,
    pub implementation: String,
    pub executable: PathBuf,
    pub prefix: PathBuf,
    pub base_prefix: PathBuf,
    pub base_executable: Option<PathBuf>,
    pub platform: String,
    pub is_32bit: bool,
    pub glibc: Option<String>,
    pub py_debug: Option<bool>,
    pub has_refcount: bool,
    pub with_pymalloc: Option<bool>,
    pub gil_disabled: Option<bool>,
    pub cache_tag: Option<String>,
    pub magic: String,
    pub os_name: String,
    /// `sys.platform`. This and the fields below are PEP 508 marker values; they are empty
    /// in a receipt written before pysfx asked for them.
    #[serde(default)]
    pub sys_platform: String,
    /// `platform.machine()`.
    #[serde(default)]
    pub platform_machine: String,
    /// `platform.release()`.
    #[serde(default)]
    pub platform_release: String,
    /// `platform.version()`.
    #[serde(default)]
    pub platform_version: String,
    /// `platform.system()`.
    #[serde(default)]
    pub platform_system: String,
    /// `platform.python_implementation()`.
    #[serde(default)]
    pub platform_python_implementation: String,
    /// `platform.python_version()` (`3.13.0+` for an untagged build).
    #[serde(default)]
    pub python_full_version: String,
    /// `sys.implementation.version` as packaging formats it (`3.12.0rc1`).
    #[serde(default)]
    pub implementation_version: String,
}

impl Interpreter {
    /// Runs the query against `python` (a path, or a name looked up on `PATH`) within the
    /// default [`Limits`] (the timeout from `$PYSFX_QUERY_TIMEOUT`). Python 2 and anything
    /// older than 3.6 is refused with its version named.
    pub fn query(python: &str) -> Result<Interpreter, VenvError> {
        Interpreter::query_with(python, Limits::from_env())
    }

    /// [`Interpreter::query`] within `limits`.
    pub fn query_with(python: &str, limits: Limits) -> Result<Interpreter, VenvError> {
        let bad = |reason: String| VenvError::BadInterpreter {
            python: python.to_string(),
            reason,
        };
        // -I: no environment, user site or working directory; -S: no site (its .pth files
        // can cost more than the query).
        let run =
            run_bounded(python, &["-I", "-S", "-c", QUERY_SCRIPT], limits).map_err(|source| {
                VenvError::NotRunnable {
                    python: python.to_string(),
                    source,
                }
            })?;
        let status = match run.ending {
            Ending::Exited(status) => status,
            ending => return Err(bad(ending.describe(&limits))),
        };
        if !status.success() {
            // `-I` is new in 3.4: an older Python says "Unknown option". Ask it its version
            // (without -I) only to name it in the message.
            if let Some(version) = old_python_version(python, limits) {
                return Err(VenvError::Unsupported {
                    python: python.to_string(),
                    version,
                });
            }
            return Err(bad(format!(
                "the interpreter query failed ({status}): {}",
                excerpt(&run)
            )));
        }
        let mut interpreter: Interpreter =
            serde_json::from_slice(&run.stdout).map_err(|error| {
                bad(format!(
                    "unexpected answer to the interpreter query ({error}): {}",
                    excerpt(&run)
                ))
            })?;
        interpreter.requested = python.to_string();
        debug!(
            python,
            version = %interpreter.version(),
            executable = %interpreter.executable.display(),
            "queried the interpreter"
        );
        interpreter.check_supported()?;
        Ok(interpreter)
    }

    fn check_supported(&self) -> Result<(), VenvError> {
        let (major, minor, _) = self.version_info;
        if self.implementation != "cpython" {
            return Err(VenvError::BadInterpreter {
                python: self.requested.clone(),
                reason: format!(
                    "it is {} {}; pysfx supports CPython only",
                    self.implementation,
                    self.version()
                ),
            });
        }
        if (major, minor) < (3, 6) {
            return Err(VenvError::Unsupported {
                python: self.requested.clone(),
                version: self.version(),
            });
        }
        if self.os_name != "posix" {
            return Err(VenvError::BadInterpreter {
                python: self.requested.clone(),
                reason: format!("os.name is {:?}, not posix", self.os_name),
            });
        }
        Ok(())
    }

    /// `X.Y.Z`.
    pub fn version(&self) -> String {
        let (major, minor, micro) = self.version_info;
        format!("{major}.{minor}.{micro}")
    }

    /// `(X, Y)`.
    pub fn major_minor(&self) -> (u32, u32) {
        (self.version_info.0, self.version_info.1)
    }

    /// True for a free-threaded (3.13t) build.
    pub fn free_threaded(&self) -> bool {
        self.gil_disabled.unwrap_or(false)
    }

    /// The interpreter the venv links to: the base interpreter when `python` is itself inside
    /// a venv (`sys._base_executable` from 3.7.3; derived from `sys.base_prefix` before).
    pub fn base_executable(&self) -> PathBuf {
        if self.prefix == self.base_prefix {
            return self.executable.clone();
        }
        if let Some(base) = &self.base_executable {
            if base.is_absolute() && base.exists() {
                return base.clone();
            }
        }
        let (major, minor) = self.major_minor();
        for name in [format!("python{major}.{minor}"), format!("python{major}")] {
            let candidate = self.base_prefix.join("bin").join(name);
            if candidate.exists() {
                return candidate;
            }
        }
        self.executable.clone()
    }

    /// glibc `(major, minor)`, if the interpreter runs on glibc.
    pub fn glibc_version(&self) -> Option<(u32, u32)> {
        let text = self.glibc.as_deref()?;
        let mut parts = text.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts
            .next()?
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()?;
        Some((major, minor))
    }

    /// The facts tag generation needs.
    pub fn platform_facts(&self) -> PlatformFacts {
        PlatformFacts {
            major: self.version_info.0,
            minor: self.version_info.1,
            debug: self.py_debug.unwrap_or(self.has_refcount),
            pymalloc: self.with_pymalloc,
            gil_disabled: self.free_threaded(),
            platform: self.platform.clone(),
            is_32bit: self.is_32bit,
            glibc: self.glibc_version(),
        }
    }

    /// The tags this interpreter accepts, best first.
    pub fn tags(&self) -> InterpreterTags {
        InterpreterTags::for_cpython(&self.platform_facts())
    }

    /// The PEP 508 marker values of this interpreter, for evaluating `Requires-Dist` markers.
    /// A receipt from before the query gathered them lacks the `platform` values; the
    /// versions then come from `version_info`.
    pub fn marker_environment(&self) -> MarkerEnvironment {
        let (major, minor) = self.major_minor();
        let or_else = |value: &str, fallback: &dyn Fn() -> String| {
            if value.is_empty() {
                fallback()
            } else {
                value.to_string()
            }
        };
        MarkerEnvironment {
            implementation_name: self.implementation.clone(),
            implementation_version: or_else(&self.implementation_version, &|| self.version()),
            os_name: self.os_name.clone(),
            platform_machine: self.platform_machine.clone(),
            platform_python_implementation: or_else(&self.platform_python_implementation, &|| {
                // Only CPython passes `check_supported`.
                "CPython".to_string()
            }),
            platform_release: self.platform_release.clone(),
            platform_system: self.platform_system.clone(),
            platform_version: self.platform_version.clone(),
            python_full_version: or_else(&self.python_full_version, &|| self.version()),
            python_version: format!("{major}.{minor}"),
            sys_platform: self.sys_platform.clone(),
        }
    }

    /// `lib/pythonX.Y[t]/site-packages`, relative to the venv root.
    pub fn site_packages(&self) -> String {
        let (major, minor) = self.major_minor();
        let suffix = if self.free_threaded() { "t" } else { "" };
        format!("lib/python{major}.{minor}{suffix}/site-packages")
    }
}

/// Asks an interpreter that refused the query for its version, without `-I`.
fn old_python_version(python: &str, limits: Limits) -> Option<String> {
    let run = run_bounded(
        python,
        &[
            "-E",
            "-s",
            "-c",
            "import sys; sys.stdout.write('%d.%d.%d' % tuple(sys.version_info[:3]))",
        ],
        limits,
    )
    .ok()?;
    if !matches!(run.ending, Ending::Exited(status) if status.success()) {
        return None;
    }
    let version = String::from_utf8(run.stdout).ok()?;
    let major: u32 = version.split('.').next()?.parse().ok()?;
    let minor: u32 = version.split('.').nth(1)?.parse().ok()?;
    ((major, minor) < (3, 6)).then_some(version)
}

/// How a bounded run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Exited(ExitStatus),
    /// Killed: still running at the timeout.
    TimedOut,
    /// Killed: printed more than the cap on its standard output (`true`) or error (`false`).
    Overflowed {
        stdout: bool,
    },
}

impl Ending {
    /// Why a run that did not exit is no answer.
    fn describe(&self, limits: &Limits) -> String {
        match self {
            Ending::Exited(status) => format!("it exited ({status})"),
            Ending::TimedOut => format!("did not answer within {} s", limits.timeout.as_secs_f64()),
            Ending::Overflowed { stdout: true } => format!(
                "printed more than {} on its standard output",
                size(limits.stdout_cap)
            ),
            Ending::Overflowed { stdout: false } => format!(
                "printed more than {} on its standard error",
                size(limits.stderr_cap)
            ),
        }
    }
}

fn size(bytes: usize) -> String {
    match bytes {
        0 => "0 bytes".to_string(),
        _ if bytes.is_multiple_of(1 << 20) => format!("{} MiB", bytes >> 20),
        _ if bytes.is_multiple_of(1 << 10) => format!("{} KiB", bytes >> 10),
        _ => format!("{bytes} bytes"),
    }
}

/// What a bounded run printed (at most the caps) and how it ended.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) ending: Ending,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// One output pipe, read on its own thread into a buffer of at most `cap` bytes.
struct Capture {
    buffer: Arc<Mutex<Vec<u8>>>,
    overflowed: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Capture {
    /// Takes the pipe as a `File` so that one reader serves both streams (the stub's size).
    fn start(mut pipe: std::fs::File, cap: usize) -> std::io::Result<Capture> {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let overflowed = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (Arc::clone(&buffer), Arc::clone(&overflowed));
        let thread = std::thread::Builder::new()
            .name("pysfx-python-output".into())
            .spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    let count = match pipe.read(&mut chunk) {
                        Ok(0) => return,
                        Ok(count) => count,
                        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => return,
                    };
                    let mut buffer = shared.lock().unwrap_or_else(|poison| poison.into_inner());
                    let room = cap - buffer.len();
                    if count > room {
                        buffer.extend_from_slice(&chunk[..room]);
                        // Returning closes our end of the pipe; the caller kills the child.
                        flag.store(true, Ordering::Relaxed);
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..count]);
                }
            })?;
        Ok(Capture {
            buffer,
            overflowed,
            thread,
        })
    }

    fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// What was read. The reader may still be blocked (a grandchild holding the pipe open);
    /// it is left to finish on its own.
    fn take(self) -> Vec<u8> {
        let mut buffer = self
            .buffer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        std::mem::take(&mut *buffer)
    }
}

/// After the child has ended, how long its output may still take to drain. The pipes close
/// when it exits, unless a process it started still holds them: that one is not our child to
/// kill, so it is not waited for either.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Runs `program arguments` with no stdin, killing (and reaping) it when it outlives
/// `limits.timeout` or prints more than the caps. Only spawning can fail.
pub(crate) fn run_bounded(
    program: &str,
    arguments: &[&str],
    limits: Limits,
) -> std::io::Result<Run> {
    let mut child = Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let captures = (|| {
        let stdout = child
            .stdout
            .take()
            .map(|pipe| Capture::start(OwnedFd::from(pipe).into(), limits.stdout_cap));
        let stderr = child
            .stderr
            .take()
            .map(|pipe| Capture::start(OwnedFd::from(pipe).into(), limits.stderr_cap));
        Ok::<_, std::io::Error>((stdout.transpose()?, stderr.transpose()?))
    })();
    let (stdout, stderr) = match captures {
        Ok(captures) => captures,
        Err(error) => {
            stop(&mut child);
            return Err(error);
        }
    };
    // A reader that passed its cap closes its pipe, so the child may die of SIGPIPE before
    // it is killed: the overflow is still the reason it ended.
    let overflow = || {
        if stdout.as_ref().is_some_and(Capture::overflowed) {
            Some(Ending::Overflowed { stdout: true })
        } else if stderr.as_ref().is_some_and(Capture::overflowed) {
            Some(Ending::Overflowed { stdout: false })
        } else {
            None
        }
    };
    let deadline = Instant::now().checked_add(limits.timeout);
    let mut pause = Duration::from_millis(1);
    let ending = loop {
        match child.try_wait() {
            Ok(Some(status)) => break overflow().unwrap_or(Ending::Exited(status)),
            Ok(None) => {}
            Err(error) => {
                stop(&mut child);
                return Err(error);
            }
        }
        let timed_out = || deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if let Some(ending) = overflow().or_else(|| timed_out().then_some(Ending::TimedOut)) {
            stop(&mut child);
            break ending;
        }
        // Short first, as the query usually answers within a few tens of milliseconds.
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(25));
    };
    let drained_by = Instant::now() + DRAIN_GRACE;
    for capture in [&stdout, &stderr].into_iter().flatten() {
        while !capture.thread.is_finished() && Instant::now() < drained_by {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(Run {
        ending,
        stdout: stdout.map(Capture::take).unwrap_or_default(),
        stderr: stderr.map(Capture::take).unwrap_or_default(),
    })
}

/// Kills and reaps the child (it may have exited meanwhile: both errors are then moot).
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Excerpt limit, in characters.
const EXCERPT_LIMIT: usize = 200;

/// A short, printable excerpt of what a failed run said: the last line of its standard error
/// (else of its standard output) before any echo of the query script, control characters
/// escaped, at most [`EXCERPT_LIMIT`] characters.
fn excerpt(run: &Run) -> String {
    // Bytes rather than text until the end: the stub's size budget (docs/stub.md).
    let said = |bytes: &[u8]| bytes.iter().any(|byte| !byte.is_ascii_whitespace());
    let mut text: &[u8] = if said(&run.stderr) {
        &run.stderr
    } else {
        &run.stdout
    };
    let marker = SCRIPT_MARKER.as_bytes();
    let cut = match text
        .windows(marker.len())
        .position(|window| window == marker)
    {
        Some(position) => {
            text = &text[..position];
            true
        }
        None => false,
    };
    let Some(line) = text
        .split(|byte| *byte == b'\n')
        .map(<[u8]>::trim_ascii)
        .rfind(|line| !line.is_empty())
    else {
        return "no message".to_string();
    };
    // The script starts with `# `: drop what of it is left before the cut.
    let line = if cut {
        line.strip_suffix(b"#").unwrap_or(line)
    } else {
        line
    };
    let mut out = String::new();
    for (length, character) in String::from_utf8_lossy(line).chars().enumerate() {
        if length >= EXCERPT_LIMIT {
            out.push('…');
            return out;
        }
        if character.is_control() {
            out.extend(character.escape_default());
        } else {
            out.push(character);
        }
    }
    if cut {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

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
    fn a_silent_failure_says_so() {
        let error = Interpreter::query_with("/bin/false", within(10))
            .expect_err("not a Python")
            .to_string();
        assert!(
            error.ends_with("the interpreter query failed (exit status: 1): no message"),
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
        assert!(!error.contains("first line"), "{error}");
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
            let interpreter = Interpreter::query_with(&python, within(60))
                .unwrap_or_else(|error| panic!("{error}"));
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
            let ours = [
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
            assert_eq!(ours.len(), expected.len(), "{expected:?}");
            for (key, value) in ours {
                assert_eq!(Some(value), expected.get(key), "{version}: {key}");
            }
        }
    }

    #[test]
    fn python_2_is_named_unsupported() {
        let error =
            Interpreter::query_with(&pyenv_python("2.7.18"), within(60)).expect_err("too old");
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
}
