//! Complete (SPEC, Stub → Guarantees): every `Requires-Dist` of every distribution to be
//! installed, its marker evaluated for this interpreter, is met by the chosen wheels — what
//! `pip check` checks afterwards, checked here before anything is written. Extras count only
//! where something installed asks for them (`a` requiring `b[socks]` brings in `b`'s
//! `extra == "socks"` requirements), followed to a fixed point.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use pep440_rs::Version;
use pysfx_format::WheelEntry;
use pysfx_wheel::{MarkerEnvironment, Requirement, Skipped};

/// A requirement the chosen wheels do not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The requirement as the distribution's METADATA writes it.
    pub requirement: String,
    /// `name version` of the distribution that requires it.
    pub needed_by: String,
    /// What is wrong: not packed, skipped for its Requires-Python, or another version.
    pub reason: String,
}

impl std::fmt::Display for Unmet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} needs {:?}: {}",
            self.needed_by, self.requirement, self.reason
        )
    }
}

/// The most unmet requirements an error lists (a line of thousands helps no one).
const MAX_LISTED: usize = 20;

/// `unmet` as one error's list: `a needs "b": why; …`, the first [`MAX_LISTED`] of them and
/// how many more.
pub fn list_unmet(unmet: &[Unmet]) -> String {
    let mut lines: Vec<String> = unmet
        .iter()
        .take(MAX_LISTED)
        .map(ToString::to_string)
        .collect();
    if unmet.len() > MAX_LISTED {
        lines.push(format!("and {} more", unmet.len() - MAX_LISTED));
    }
    lines.join("; ")
}

/// Why a requirement is unmet when its distribution is in no wheel of the set.
pub const NOT_IN_SET: &str = "it is not in the artifact's wheel set";

/// Every `Requires-Dist` of `wheels`, parsed, or which one does not parse: the install refuses
/// it before writing (the set it planned cannot be checked), and `verify` refuses it in any
/// wheel of the artifact.
pub fn parse_requirements(
    wheels: &[WheelEntry],
) -> Result<Vec<(&WheelEntry, &str, Requirement)>, String> {
    let mut requirements = Vec::new();
    for wheel in wheels {
        for text in &wheel.requires_dist {
            match Requirement::parse(text) {
                Ok(requirement) => requirements.push((wheel, text.as_str(), requirement)),
                Err(error) => {
                    return Err(format!(
                        "{} {} has an invalid Requires-Dist \"{}\": {}",
                        wheel.name,
                        wheel.version,
                        pysfx_format::escape_control(text),
                        pysfx_format::escape_control(&error.to_string())
                    ))
                }
            }
        }
    }
    Ok(requirements)
}

/// The requirements of `chosen` that `chosen` does not meet for `environment`. A requirement
/// that cannot be parsed is an error (the wheel's metadata is invalid, and `pip check` would
/// fail on it): its text, escaped, and who has it.
pub fn unmet_requirements(
    chosen: &[WheelEntry],
    skipped: &[Skipped],
    environment: &MarkerEnvironment,
) -> Result<Vec<Unmet>, String> {
    let installed: HashMap<&str, (&WheelEntry, Option<Version>)> = chosen
        .iter()
        .map(|wheel| {
            (
                wheel.name.as_str(),
                (wheel, Version::from_str(&wheel.version).ok()),
            )
        })
        .collect();
    let requirements = parse_requirements(chosen)?;
    // The extras requested of each installed distribution, to a fixed point.
    let mut extras: HashMap<&str, BTreeSet<String>> = HashMap::new();
    loop {
        let mut grew = false;
        for (wheel, _, requirement) in &requirements {
            if requirement.extras.is_empty() || !installed.contains_key(requirement.name.as_str()) {
                continue;
            }
            if !requirement.applies_to(environment, &requested(&extras, &wheel.name)) {
                continue;
            }
            let Some((target, _)) = installed.get(requirement.name.as_str()) else {
                continue;
            };
            let wanted = extras.entry(target.name.as_str()).or_default();
            for extra in &requirement.extras {
                grew |= wanted.insert(extra.clone());
            }
        }
        if !grew {
            break;
        }
    }
    let mut unmet = Vec::new();
    for (wheel, text, requirement) in &requirements {
        if !requirement.applies_to(environment, &requested(&extras, &wheel.name)) {
            continue;
        }
        let reason = match installed.get(requirement.name.as_str()) {
            None => match skipped.iter().find(|s| s.name == requirement.name) {
                Some(skipped) => format!(
                    "it is left out, as no wheel of it supports Python {} (Requires-Python {})",
                    environment.python_full_version, skipped.requires_python
                ),
                None => NOT_IN_SET.to_string(),
            },
            Some((target, version)) => match version {
                Some(version) if requirement.is_met_by(version) => continue,
                Some(_) => format!("the set has {} {}", target.name, target.version),
                None if !requirement.has_specifiers() => continue,
                None => format!(
                    "the set has {} {}, which is not a PEP 440 version",
                    target.name, target.version
                ),
            },
        };
        unmet.push(Unmet {
            requirement: text.to_string(),
            needed_by: format!("{} {}", wheel.name, wheel.version),
            reason,
        });
    }
    Ok(unmet)
}

fn requested(extras: &HashMap<&str, BTreeSet<String>>, name: &str) -> Vec<String> {
    extras
        .get(name)
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(name: &str, version: &str, requires: &[&str]) -> WheelEntry {
        WheelEntry {
            path: format!("wheels/x/{name}-{version}-py3-none-any.whl"),
            filename: format!("{name}-{version}-py3-none-any.whl"),
            name: name.into(),
            version: version.into(),
            sha256: String::new(),
            size: 0,
            unpacked_bytes: 0,
            members: 0,
            directories: 0,
            requires_python: None,
            requires_dist: requires.iter().map(|r| r.to_string()).collect(),
            record_sha256: None,
            from_base: false,
            executables: None,
        }
    }

    fn environment(python: &str) -> MarkerEnvironment {
        let mut parts = python.split('.');
        let short = format!(
            "{}.{}",
            parts.next().unwrap_or("3"),
            parts.next().unwrap_or("0")
        );
        MarkerEnvironment {
            implementation_name: "cpython".into(),
            implementation_version: python.into(),
            os_name: "posix".into(),
            platform_machine: "x86_64".into(),
            platform_python_implementation: "CPython".into(),
            platform_release: "5.10.0".into(),
            platform_system: "Linux".into(),
            platform_version: "#1 SMP".into(),
            python_full_version: python.into(),
            python_version: short,
            sys_platform: "linux".into(),
        }
    }

    fn reasons(chosen: &[WheelEntry], python: &str) -> Vec<String> {
        unmet_requirements(chosen, &[], &environment(python))
            .expect("valid requirements")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn markers_are_judged_for_the_interpreter() {
        let app = wheel(
            "app",
            "1.0",
            &[
                "dataclasses; python_version < \"3.7\"",
                "pywin32>=226; platform_system == \"Windows\"",
                "idna>=2",
            ],
        );
        let idna = wheel("idna", "3.4", &[]);
        assert_eq!(
            reasons(&[app.clone(), idna.clone()], "3.11.7"),
            Vec::<String>::new()
        );
        assert_eq!(
            reasons(&[app.clone(), idna.clone()], "3.6.15"),
            vec!["app 1.0 needs \"dataclasses; python_version < \\\"3.7\\\"\": it is not in the artifact's wheel set"]
        );
        let dataclasses = wheel("dataclasses", "0.8", &[]);
        assert!(reasons(&[app, idna, dataclasses], "3.6.15").is_empty());
    }

    #[test]
    fn versions_must_match() {
        let app = wheel("app", "1.0", &["idna (>=3,<4)", "b[socks]"]);
        let idna = wheel("idna", "2.10", &[]);
        let b = wheel(
            "b",
            "1",
            &["pysocks; extra == 'socks'", "other; extra == 'unused'"],
        );
        let found = reasons(&[app.clone(), idna, b.clone()], "3.11.0");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("the set has idna 2.10"), "{found:?}");
        assert!(
            found[1].contains("b 1 needs \"pysocks; extra == 'socks'\""),
            "{found:?}"
        );
        let idna = wheel("idna", "3.4", &[]);
        let pysocks = wheel("pysocks", "1.7.1", &[]);
        assert!(reasons(&[app, idna, b, pysocks], "3.11.0").is_empty());
    }

    #[test]
    fn extras_apply_only_when_requested() {
        let b = wheel("b", "1", &["pysocks; extra == 'socks'"]);
        assert!(reasons(&[b], "3.11.0").is_empty());
    }

    #[test]
    fn invalid_requirements_are_errors() {
        let app = wheel("app", "1.0", &["gamma >>>= 1"]);
        let error = unmet_requirements(&[app], &[], &environment("3.11.0")).expect_err("invalid");
        assert!(
            error.contains("app 1.0 has an invalid Requires-Dist"),
            "{error}"
        );
        let app = wheel("app", "1.0", &["gamma\u{1b}]0;PWNED\u{7}"]);
        let error = unmet_requirements(&[app], &[], &environment("3.11.0")).expect_err("invalid");
        assert!(!error.contains('\u{1b}'), "{error}");
    }

    #[test]
    fn skipped_distributions_are_named() {
        let app = wheel("app", "1.0", &["old"]);
        let skipped = [Skipped {
            name: "old".into(),
            requires_python: "<3".into(),
        }];
        let found = unmet_requirements(&[app], &skipped, &environment("3.11.0")).expect("valid");
        assert_eq!(found.len(), 1);
        assert!(found[0].reason.contains("Requires-Python <3"), "{found:?}");
    }

    /// An error lists twenty unmet requirements and counts the rest.
    #[test]
    fn a_long_list_is_cut() {
        let requires: Vec<String> = (0..10_000).map(|n| format!("missing{n:05}")).collect();
        let requires: Vec<&str> = requires.iter().map(String::as_str).collect();
        let app = wheel("app", "1.0", &requires);
        let unmet = unmet_requirements(&[app], &[], &environment("3.11.0")).expect("valid");
        assert_eq!(unmet.len(), 10_000);
        let listed = list_unmet(&unmet);
        assert!(listed.contains("\"missing00019\""), "{listed}");
        assert!(!listed.contains("missing00020"), "{listed}");
        assert!(listed.ends_with("; and 9980 more"), "{listed}");
        assert_eq!(list_unmet(&unmet[..2]).matches("; ").count(), 1);
    }
}
