//! What the query found: the [`Interpreter`] and what follows from it (version, base
//! executable, glibc, wheel tags, PEP 508 marker values, site-packages).

use std::path::PathBuf;

use serde::Deserialize;

use pysfx_wheel::{InterpreterTags, MarkerEnvironment, PlatformFacts};

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
    /// `sys.getfilesystemencoding()`: `ascii` for CPython 3.6 under the C locale. Absent from
    /// a receipt written before pysfx asked for it.
    #[serde(default)]
    pub filesystem_encoding: Option<String>,
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
    /// The marshalled code of pysfx's hook module (`loadenv.py`), compiled by the query, in
    /// hex (the line after its answer); not kept in a receipt (a release is installed from the
    /// interpreter's own answer).
    #[serde(skip)]
    pub hook_code: Option<String>,
    /// The query's answer as the interpreter printed it (JSON), which these facts were read
    /// from: what a receipt keeps to read them again.
    #[serde(skip)]
    pub answer: String,
}

impl Interpreter {
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
    /// a venv (an earlier release's `venv/bin/python`, say), as `python -m venv` does — else
    /// the new venv would lead through the other one, and break when that one is removed (or
    /// loop, reached through the link it replaces). The query runs without `site` (`-S`), so
    /// `sys.prefix` does not show a venv: it is known by the `pyvenv.cfg` beside or above the
    /// executable, as CPython's own start-up finds it, and its `home`; or by
    /// `sys._base_executable` (3.7.3 on) where it differs from `sys.executable`.
    pub fn base_executable(&self) -> PathBuf {
        let (major, minor) = self.major_minor();
        let names = [
            format!("python{major}.{minor}"),
            format!("python{major}"),
            "python".to_string(),
        ];
        if let Some(base) = &self.base_executable {
            if base.is_absolute() && base != &self.executable && base.exists() {
                return base.clone();
            }
        }
        if let Some(home) = self.venv_home() {
            if let Some(base) = names
                .iter()
                .map(|name| home.join(name))
                .find(|p| p.exists())
            {
                return base;
            }
        }
        if self.prefix != self.base_prefix {
            let bin = self.base_prefix.join("bin");
            if let Some(base) = names[..2]
                .iter()
                .map(|name| bin.join(name))
                .find(|p| p.exists())
            {
                return base;
            }
        }
        self.executable.clone()
    }

    /// The `home` of the `pyvenv.cfg` next to the executable's directory or one above it, when
    /// the executable is a venv's.
    fn venv_home(&self) -> Option<PathBuf> {
        let bin = self.executable.parent()?;
        [Some(bin), bin.parent()]
            .into_iter()
            .flatten()
            .filter_map(|directory| std::fs::read_to_string(directory.join("pyvenv.cfg")).ok())
            .find_map(|text| {
                text.lines().find_map(|line| {
                    let (key, value) = line.split_once('=')?;
                    (key.trim() == "home")
                        .then(|| PathBuf::from(value.trim()))
                        .filter(|home| home.is_absolute())
                })
            })
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
