//! One query of the target interpreter: a single `python -I -c …` that prints one JSON object.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::Deserialize;
use tracing::debug;

use pysfx_wheel::{InterpreterTags, PlatformFacts};

use crate::VenvError;

/// The query. It runs on every CPython from 3.6 (no f-strings with `=`, no walrus, no
/// `subprocess.run(text=…)`); `-I` keeps the caller's environment and working directory out.
pub const QUERY_SCRIPT: &str = r#"
import json, os, sys, sysconfig

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
}
sys.stdout.write(json.dumps(info))
"#;

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
}

impl Interpreter {
    /// Runs the query against `python` (a path, or a name looked up on `PATH`). Python 2 and
    /// anything older than 3.6 is refused with its version named.
    pub fn query(python: &str) -> Result<Interpreter, VenvError> {
        let output = Command::new(python)
            // -I: no environment, user site or working directory; -S: no site (its .pth files
            // can cost more than the query).
            .args(["-I", "-S", "-c", QUERY_SCRIPT])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| VenvError::NotRunnable {
                python: python.to_string(),
                source,
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            // `-I` is new in 3.4: an older Python says "Unknown option". Ask it its version
            // (without -I) only to name it in the message.
            if let Some(version) = old_python_version(python) {
                return Err(VenvError::Unsupported {
                    python: python.to_string(),
                    version,
                });
            }
            return Err(VenvError::BadInterpreter {
                python: python.to_string(),
                reason: format!(
                    "the interpreter query failed ({}): {}",
                    output.status,
                    stderr.trim().lines().last().unwrap_or("no message")
                ),
            });
        }
        let mut interpreter: Interpreter =
            serde_json::from_slice(&output.stdout).map_err(|error| VenvError::BadInterpreter {
                python: python.to_string(),
                reason: format!("unexpected answer to the interpreter query: {error}"),
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

    /// `lib/pythonX.Y[t]/site-packages`, relative to the venv root.
    pub fn site_packages(&self) -> String {
        let (major, minor) = self.major_minor();
        let suffix = if self.free_threaded() { "t" } else { "" };
        format!("lib/python{major}.{minor}{suffix}/site-packages")
    }
}

/// Asks an interpreter that refused the query for its version, without `-I`.
fn old_python_version(python: &str) -> Option<String> {
    let output = Command::new(python)
        .args([
            "-E",
            "-s",
            "-c",
            "import sys; sys.stdout.write('%d.%d.%d' % tuple(sys.version_info[:3]))",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    let major: u32 = version.split('.').next()?.parse().ok()?;
    let minor: u32 = version.split('.').nth(1)?.parse().ok()?;
    ((major, minor) < (3, 6)).then_some(version)
}
