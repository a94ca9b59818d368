//! The marker variables of one interpreter, and the view of them that one evaluation sees.

use super::evaluate::canonical_extra;

/// The values of the PEP 508 marker variables for one interpreter, as
/// `packaging.markers.default_environment()` computes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkerEnvironment {
    /// `sys.implementation.name` (`cpython`).
    pub implementation_name: String,
    /// `sys.implementation.version` as `X.Y.Z`, plus `{releaselevel[0]}{serial}` when not final.
    pub implementation_version: String,
    /// `os.name` (`posix`).
    pub os_name: String,
    /// `platform.machine()` (`x86_64`).
    pub platform_machine: String,
    /// `platform.python_implementation()` (`CPython`).
    pub platform_python_implementation: String,
    /// `platform.release()` (`5.15.0-91-generic`).
    pub platform_release: String,
    /// `platform.system()` (`Linux`).
    pub platform_system: String,
    /// `platform.version()` (`#101-Ubuntu SMP …`).
    pub platform_version: String,
    /// `platform.python_version()` (`3.11.7`).
    pub python_full_version: String,
    /// `X.Y` (`3.11`).
    pub python_version: String,
    /// `sys.platform` (`linux`).
    pub sys_platform: String,
}

impl MarkerEnvironment {
    /// Every marker variable but `extra`, by its PEP 508 name, as packaging's
    /// `default_environment()` names them.
    pub fn fields(&self) -> [(&'static str, &str); 11] {
        [
            ("implementation_name", &self.implementation_name),
            ("implementation_version", &self.implementation_version),
            ("os_name", &self.os_name),
            ("platform_machine", &self.platform_machine),
            (
                "platform_python_implementation",
                &self.platform_python_implementation,
            ),
            ("platform_release", &self.platform_release),
            ("platform_system", &self.platform_system),
            ("platform_version", &self.platform_version),
            ("python_full_version", &self.python_full_version),
            ("python_version", &self.python_version),
            ("sys_platform", &self.sys_platform),
        ]
    }
}

/// The environment as one evaluation sees it: with packaging's repairs and the extra being
/// evaluated, normalised.
pub(super) struct Values<'a> {
    environment: &'a MarkerEnvironment,
    python_full_version: String,
    extra: String,
}

impl<'a> Values<'a> {
    pub(super) fn new(environment: &'a MarkerEnvironment, extra: &str) -> Self {
        let mut python_full_version = environment.python_full_version.clone();
        // packaging's `_repair_python_full_version`: an untagged build reports `3.11.7+`,
        // which is no PEP 440 version; `3.11.7+local` is.
        if python_full_version.ends_with('+') {
            python_full_version.push_str("local");
        }
        Values {
            environment,
            python_full_version,
            extra: canonical_extra(extra),
        }
    }

    /// The value of the variable named `key`, as `packaging`'s environment dict spells it.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        let environment = self.environment;
        Some(match key {
            "implementation_name" => &environment.implementation_name,
            "implementation_version" => &environment.implementation_version,
            "os_name" => &environment.os_name,
            "platform_machine" => &environment.platform_machine,
            "platform_python_implementation" => &environment.platform_python_implementation,
            "platform_release" => &environment.platform_release,
            "platform_system" => &environment.platform_system,
            "platform_version" => &environment.platform_version,
            "python_full_version" => &self.python_full_version,
            "python_version" => &environment.python_version,
            "sys_platform" => &environment.sys_platform,
            "extra" => &self.extra,
            _ => return None,
        })
    }
}
