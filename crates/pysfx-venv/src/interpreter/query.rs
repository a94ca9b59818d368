//! The query itself: the script, running it within the limits, reading its JSON answer into an
//! [`Interpreter`], and a short excerpt of what a failed run said.

use tracing::debug;

use super::run::Run;
use super::{run_bounded, BinaryIdentity, Ending, Interpreter, Limits};
use crate::VenvError;

/// The first line of [`QUERY_SCRIPT`]. A program that prints its arguments back (`--python
/// /bin/ls`) would put the whole script into the error message; the excerpt stops here.
const SCRIPT_MARKER: &str = "pysfx interpreter query";

/// The query. It runs on every CPython from 3.6 (no f-strings with `=`, no walrus, no
/// `subprocess.run(text=…)`); `-I` keeps the caller's environment and working directory out.
/// The PEP 508 marker values are computed as `packaging.markers.default_environment()` does.
/// It imports only what the interpreter has loaded at start, `sysconfig`, and `site` (which
/// every start of the venv imports: an interpreter without it is refused here); `json`,
/// `platform` and `importlib.util` (each importing more) took half of its 18 ms. `dump`
/// writes JSON as `json.dumps` does (ASCII only, a character past U+FFFF as a surrogate
/// pair); `python_version` is `platform.python_version()` (the word characters, dots and
/// pluses `sys.version` begins with); `platform.machine()`, `release()`, `version()` and
/// `system()` are `os.uname()`'s fields on Linux, and `platform.python_implementation()` of
/// the one implementation supported is `CPython`.
pub const QUERY_SCRIPT: &str = r#"# pysfx interpreter query
import os, site, sys, sysconfig

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

def python_version():
    end = 0
    while end < len(sys.version) and (sys.version[end].isalnum() or sys.version[end] in "_.+"):
        end += 1
    return sys.version[:end]

def path(value):
    # As the bytes name it (a CPython 3.6 under the C locale decodes a non-ASCII path with
    # surrogate escapes); bytes that are not UTF-8, no release could record.
    if value is None:
        return None
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeDecodeError:
        sys.exit("its path is not valid UTF-8, which a release cannot record: %r" % os.fsencode(value))

def dump(value):
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(dump(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(dump(k) + ": " + dump(v) for k, v in value.items()) + "}"
    out = []
    for character in value:
        code = ord(character)
        if character in "\"\\":
            out.append("\\" + character)
        elif 0x20 <= code < 0x7f:
            out.append(character)
        elif code > 0xffff:
            code -= 0x10000
            out.append("\\u%04x\\u%04x" % (0xd800 | code >> 10, 0xdc00 | code & 0x3ff))
        else:
            out.append("\\u%04x" % code)
    return "\"" + "".join(out) + "\""

import _frozen_importlib_external
uname = os.uname()
info = {
    "version_info": list(sys.version_info[:3]),
    "release_level": sys.version_info[3],
    "implementation": sys.implementation.name,
    "executable": path(sys.executable),
    "prefix": path(sys.prefix),
    "base_prefix": path(getattr(sys, "base_prefix", sys.prefix)),
    "base_executable": path(getattr(sys, "_base_executable", None)),
    "platform": sysconfig.get_platform(),
    "is_32bit": sys.maxsize <= 2 ** 32,
    "glibc": glibc_version(),
    "py_debug": config_flag("Py_DEBUG"),
    "has_refcount": hasattr(sys, "gettotalrefcount"),
    "with_pymalloc": config_flag("WITH_PYMALLOC"),
    "gil_disabled": config_flag("Py_GIL_DISABLED"),
    "cache_tag": sys.implementation.cache_tag,
    "magic": _frozen_importlib_external.MAGIC_NUMBER.hex(),
    "filesystem_encoding": sys.getfilesystemencoding(),
    "os_name": os.name,
    "sys_platform": sys.platform,
    "platform_machine": uname.machine,
    "platform_release": uname.release,
    "platform_version": uname.version,
    "platform_system": uname.sysname,
    "platform_python_implementation": "CPython" if sys.implementation.name == "cpython"
        else sys.implementation.name,
    "python_full_version": python_version(),
    "implementation_version": full_version(sys.implementation.version),
}
sys.stdout.write(dump(info))
if len(sys.argv) > 1:
    # On a line of its own after the answer (which a receipt keeps): the byte-code of pysfx's
    # hook module, whose source is the argument, so that a release has it in place; the
    # import system gives it the file's name when it loads it.
    import marshal
    sys.stdout.write("\n" + marshal.dumps(compile(sys.argv[1], "loadenv.py", "exec")).hex())
"#;

/// `path` with the real path of its directory when it goes up through `..` (a directory's
/// path ending in `..` resolved whole); `None` when it does not, or cannot be resolved. A
/// relative path is resolved from the working directory, as the kernel runs it.
fn settled(path: &std::path::Path) -> Option<std::path::PathBuf> {
    let bytes = path.as_os_str().as_encoded_bytes();
    if !bytes.starts_with(b"..") && !bytes.windows(3).any(|three| three == b"/..") {
        return None;
    }
    match path.file_name() {
        Some(name) => Some(std::fs::canonicalize(path.parent()?).ok()?.join(name)),
        None => std::fs::canonicalize(path).ok(),
    }
}

impl Interpreter {
    /// Runs the query against `python` (a path, or a name looked up on `PATH`) within the
    /// default [`Limits`] (the timeout from `$PYSFX_QUERY_TIMEOUT`). Python 2 and anything
    /// older than 3.6 is refused with its version named.
    pub fn query(python: &str) -> Result<Interpreter, VenvError> {
        Interpreter::query_with(python, Limits::from_env())
    }

    /// Whether the binary the venv's `bin/python` will run ([`Interpreter::base_executable`])
    /// starts on its own, in this environment, when `--python` was not that binary itself
    /// (`binary`: what it resolves to, `None` for a script). A wrapper that sets
    /// `LD_LIBRARY_PATH` before running the real binary (as Software Collections' do) answers
    /// the query, but a venv linking the bare binary would not start. A pyenv shim or a link
    /// to the binary passes; only such a `--python` costs this one more start.
    pub fn check_base_starts(&self, binary: Option<&BinaryIdentity>) -> Result<(), VenvError> {
        let base = self.base_executable();
        let canonical = std::fs::canonicalize(&base).unwrap_or_else(|_| base.clone());
        if binary.is_some_and(|binary| binary.path == canonical) {
            return Ok(());
        }
        let text = base.to_string_lossy().into_owned();
        let bad = |reason: String| VenvError::BadInterpreter {
            python: self.requested.clone(),
            reason,
        };
        let limits = Limits::from_env();
        // It must be the Python that answered, too: a wrapper that runs 3.11 as `exec -a
        // python3` gets the `python3` on PATH as sys.executable, which may be a 3.12 — whose
        // venv would find none of the 3.11 packages installed.
        let script = "import sys, importlib.util\n\
                      sys.stdout.write('%d.%d.%d ' % sys.version_info[:3])\n\
                      sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())";
        let run = run_bounded(&text, &["-I", "-S", "-c", script], limits).map_err(|source| {
            bad(format!(
                "the binary it runs, {text}, which the venv's bin/python would run, cannot be \
                 started: {source}"
            ))
        })?;
        match run.ending {
            Ending::Exited(status) if status.success() => {
                let (major, minor, micro) = self.version_info;
                let expected = format!("{major}.{minor}.{micro} {}", self.magic);
                let answer = String::from_utf8_lossy(&run.stdout);
                if answer == expected {
                    return Ok(());
                }
                let (version, magic) = answer.split_once(' ').unwrap_or((&answer, ""));
                // (Whatever it printed: a few characters of it. The log escapes them.)
                let cut = |text: &str| text.chars().take(40).collect::<String>();
                Err(bad(format!(
                    "it answers as CPython {} (magic number {}), but the binary it names as \
                     sys.executable, {text}, which the venv's bin/python would run, is {} \
                     (magic number {}): a wrapper that runs its Python as `exec -a NAME`? give \
                     --python the binary itself",
                    self.version(),
                    self.magic,
                    cut(version),
                    cut(magic)
                )))
            }
            Ending::Exited(status) => Err(bad(format!(
                "the binary it runs, {text}, which the venv's bin/python would run, does not \
                 start on its own ({status}): {}; a wrapper that sets LD_LIBRARY_PATH? give \
                 --python a binary that starts alone",
                excerpt(&run)
            ))),
            ending => Err(bad(format!(
                "the binary it runs, {text}, which the venv's bin/python would run: {}",
                ending.describe(&limits)
            ))),
        }
    }

    /// [`Interpreter::query`] within `limits`.
    pub fn query_with(python: &str, limits: Limits) -> Result<Interpreter, VenvError> {
        let bad = |reason: String| VenvError::BadInterpreter {
            python: python.to_string(),
            reason,
        };
        // A path through `..` is run by its directory's real path, as the kernel resolves it:
        // CPython 3.11 and later take `link/..` in it lexically for `sys.executable`, which may
        // then name no file, or another one (see `settled`).
        let settled = settled(std::path::Path::new(python));
        let program = settled
            .as_deref()
            .and_then(|path| path.to_str())
            .unwrap_or(python);
        // -I: no environment, user site or working directory; -S: no site (its .pth files
        // can cost more than the query).
        let run = run_bounded(
            program,
            &["-I", "-S", "-c", QUERY_SCRIPT, crate::LOADENV_PY],
            limits,
        )
        .map_err(|source| {
            // A directory cannot be run: "Permission denied" would not say why; a bare name
            // is looked for on PATH, and "No such file or directory" would not say where.
            let bare = !python.contains('/');
            let source = match std::path::Path::new(python).is_dir() {
                true => std::io::Error::other("it is a directory"),
                false if bare && source.kind() == std::io::ErrorKind::NotFound => {
                    std::io::Error::other("no such program on PATH")
                }
                // A limit of this run, not a fault of the interpreter: say which.
                false
                    if matches!(
                        source.raw_os_error(),
                        Some(nix::libc::EMFILE | nix::libc::ENFILE)
                    ) =>
                {
                    std::io::Error::other(format!(
                        "{source}: the open-file limit (ulimit -n) is too low"
                    ))
                }
                false if source.raw_os_error() == Some(nix::libc::EAGAIN) => {
                    std::io::Error::other(format!(
                        "{source}: no room for another process or thread (ulimit -u, ulimit -v)"
                    ))
                }
                false => source,
            };
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
            if let Some(version) = old_python_version(program, limits) {
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
        let (answer, hook_code) = match run.stdout.iter().position(|byte| *byte == b'\n') {
            Some(end) => (&run.stdout[..end], Some(&run.stdout[end + 1..])),
            None => (&run.stdout[..], None),
        };
        let mut interpreter: Interpreter = serde_json::from_slice(answer).map_err(|error| {
            bad(format!(
                "unexpected answer to the interpreter query ({error}): {}",
                excerpt(&run)
            ))
        })?;
        interpreter.requested = python.to_string();
        interpreter.settle_paths();
        interpreter.answer = String::from_utf8_lossy(answer).into_owned();
        interpreter.hook_code = hook_code.map(|code| String::from_utf8_lossy(code).into_owned());
        debug!(
            python,
            version = %interpreter.version(),
            executable = %interpreter.executable.display(),
            "queried the interpreter"
        );
        interpreter.check_supported()?;
        Ok(interpreter)
    }

    /// The facts a query answered (its JSON, [`Interpreter::answer`]), for `python`; `None`
    /// when they do not read as an answer.
    pub fn from_answer(python: &str, answer: &str) -> Option<Interpreter> {
        let mut interpreter: Interpreter = serde_json::from_slice(answer.as_bytes()).ok()?;
        interpreter.requested = python.to_string();
        interpreter.settle_paths();
        interpreter.answer = answer.to_string();
        interpreter.check_supported().ok()?;
        Some(interpreter)
    }

    /// An interpreter started by a path through `..` (`--python ../../usr/bin/python3`, which
    /// the query no longer does, or a receipt's answer from a run before it) answers paths
    /// such as `/srv/deploy/../../usr/bin/python3`, which lead somewhere only while that
    /// directory exists: the venv's `bin/python` and `home` would break once it goes. Each
    /// such path gets its directory's real path; its last name stays as given (a `python3 ->
    /// python3.11` link is kept, as the venv module keeps it).
    fn settle_paths(&mut self) {
        let paths = [
            &mut self.executable,
            &mut self.prefix,
            &mut self.base_prefix,
        ];
        for path in paths.into_iter().chain(self.base_executable.as_mut()) {
            if let Some(settled) = settled(path) {
                *path = settled;
            }
        }
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
        // Byte-code is named by the cache tag (`mod.cpython-311.pyc`) and held to the magic
        // number: an answer's own, from whatever answered, must be CPython's for its version,
        // or a tag such as `../../x` would put `.pyc` files outside the release.
        let tag = pysfx_wheel::cpython_cache_tag(major, minor);
        if self.cache_tag.as_deref() != Some(tag.as_str())
            || !pysfx_wheel::is_cpython_magic(&self.magic)
        {
            return Err(VenvError::BadInterpreter {
                python: self.requested.clone(),
                reason: format!(
                    "its answer is not CPython {}'s: cache tag {:?} and magic number {:?}, \
                     where CPython {major}.{minor} has the tag {tag:?} and a 4-byte magic \
                     number ending in 0d0a",
                    self.version(),
                    self.cache_tag.as_deref().unwrap_or_default(),
                    self.magic
                ),
            });
        }
        if self.os_name != "posix" {
            return Err(VenvError::BadInterpreter {
                python: self.requested.clone(),
                reason: format!("os.name is {:?}, not posix", self.os_name),
            });
        }
        // CPython leaves sys.executable empty when it cannot find itself (no PATH in the
        // environment, or a PATH of relative directories): the venv's bin/python would lead
        // nowhere.
        if !self.executable.is_absolute() {
            return Err(VenvError::BadInterpreter {
                python: self.requested.clone(),
                reason: format!(
                    "it cannot tell where it is (sys.executable is {:?}; is PATH unset or \
                     relative?): give --python its absolute path",
                    self.executable.display().to_string()
                ),
            });
        }
        // pyvenv.cfg is lines of `key = value`: a path with a line break in it cannot be one.
        let base = self.base_executable();
        let paths = [self.executable.as_os_str(), base.as_os_str()];
        if paths
            .iter()
            .any(|path| path.as_encoded_bytes().iter().any(|b| b.is_ascii_control()))
        {
            return Err(VenvError::BadInterpreter {
                python: self.requested.clone(),
                reason: "its path holds a control character (a line break, say), which a venv's \
                         pyvenv.cfg cannot hold: give --python a path without one"
                    .into(),
            });
        }
        // CPython 3.6 under the C locale decodes file names as ASCII; a venv whose `home` is
        // not ASCII then fails at every start (in `site`), as `python3.6 -m venv` does.
        let ascii = self
            .filesystem_encoding
            .as_deref()
            .is_some_and(|encoding| encoding.eq_ignore_ascii_case("ascii"));
        let home = self.base_executable();
        if ascii && !home.as_os_str().is_ascii() {
            return Err(VenvError::BadInterpreter {
                python: self.requested.clone(),
                reason: format!(
                    "CPython {} decodes file names as ASCII under this locale (C or POSIX), and \
                     a venv of {} would not start: run with a UTF-8 locale (LC_ALL=en_US.UTF-8) \
                     or give --python a path that is ASCII",
                    self.version(),
                    home.display()
                ),
            });
        }
        Ok(())
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

/// Excerpt limit, in characters.
const EXCERPT_LIMIT: usize = 200;

/// A short, printable excerpt of what a failed run said: the first and the last line of its
/// standard error (else of its standard output) that name an error, or the first and the last
/// line when none does, before any echo of the query script, control characters escaped, at
/// most [`EXCERPT_LIMIT`] characters. A traceback ends with its error; CPython's "Fatal Python
/// error: …" comes after its path configuration and before the `ModuleNotFoundError` that
/// says why; a wrapper's message (a pyenv shim's "command not found") comes first, followed
/// by advice.
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
            // The script starts with `# `: drop it with the rest of the echo.
            text = &text[..position];
            text = text.strip_suffix(b"# ").unwrap_or(text);
            true
        }
        None => false,
    };
    let lines: Vec<&[u8]> = text
        .split(|byte| *byte == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|line| !line.is_empty())
        .collect();
    // The lines that name an error, when some do; else all.
    let errors: Vec<&[u8]> = (lines.iter().copied())
        .filter(|line| line.windows(4).any(|window| window == b"rror"))
        .collect();
    let said = if errors.is_empty() { &lines } else { &errors };
    let (Some(first), Some(last)) = (said.first(), said.last()) else {
        return "it printed nothing".to_string();
    };
    let mut out = String::new();
    if said.len() == 1 {
        push_printable(&mut out, first, cut, EXCERPT_LIMIT);
        return out;
    }
    push_printable(&mut out, first, false, EXCERPT_LIMIT / 2);
    out.push_str(" … ");
    push_printable(&mut out, last, cut, EXCERPT_LIMIT / 2);
    out
}

/// Appends `line` to `out`, control characters escaped, at most `limit` characters (then `…`);
/// `cut`: the line ends where the echo of the query script began (then `…` too).
fn push_printable(out: &mut String, line: &[u8], cut: bool, limit: usize) {
    for (length, character) in String::from_utf8_lossy(line).chars().enumerate() {
        if length >= limit {
            out.push('…');
            return;
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
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;

    fn failed(stdout: &str, stderr: &str) -> Run {
        Run {
            ending: Ending::Exited(ExitStatus::from_raw(1 << 8)),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn an_excerpt_quotes_the_first_and_the_last_line() {
        // pyenv's shim says what is wrong first, then advice.
        let shim = "pyenv: python3.9: command not found\n\nThe `python3.9' command exists in \
                    these Python versions:\n  3.9.18\n\nNote: See 'pyenv help global' for tips\n";
        assert_eq!(
            excerpt(&failed("", shim)),
            "pyenv: python3.9: command not found … Note: See 'pyenv help global' for tips"
        );
        // A traceback ends with its error.
        let traceback = "Traceback (most recent call last):\n  File \"<string>\", line 2\n\
                         ModuleNotFoundError: No module named 'json'\n";
        assert_eq!(
            excerpt(&failed("", traceback)),
            "ModuleNotFoundError: No module named 'json'"
        );
        // CPython 3.8 without its standard library: the fatal error and the reason, not the
        // path configuration before them or the stack after.
        let fatal = "Python path configuration:\n  PYTHONHOME = (not set)\n\
                     Fatal Python error: init_fs_encoding: failed to get the Python codec\n\
                     Python runtime state: core initialized\n\
                     ModuleNotFoundError: No module named 'encodings'\n\n\
                     Current thread 0x00007f (most recent call first):\n<no Python frame>\n";
        assert_eq!(
            excerpt(&failed("", fatal)),
            "Fatal Python error: init_fs_encoding: failed to get the Python codec … \
             ModuleNotFoundError: No module named 'encodings'"
        );
        assert_eq!(excerpt(&failed("", "  one line\n\n")), "one line");
        assert_eq!(excerpt(&failed("from stdout\n", " \n")), "from stdout");
        assert_eq!(excerpt(&failed("", "")), "it printed nothing");
    }

    #[test]
    fn an_excerpt_stops_at_an_echo_of_the_script_and_escapes_control_characters() {
        let echo = format!("usage: -I -S -c {QUERY_SCRIPT}");
        assert_eq!(excerpt(&failed(&echo, "")), "usage: -I -S -c…");
        let long = "x".repeat(300);
        let said = excerpt(&failed("", &format!("a\tb\u{1b}[31m\n{long}\n")));
        assert_eq!(said, format!("a\\tb\\u{{1b}}[31m … {}…", "x".repeat(100)));
    }
}
