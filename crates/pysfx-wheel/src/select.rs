//! Choosing one wheel per distribution for an interpreter: `Requires-Python` first, then the
//! tags, then the highest version, the best tag priority and the highest build tag.

use std::collections::BTreeMap;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};

use crate::{InterpreterTags, WheelFilename};

/// A wheel on offer, with whatever the caller wants back when it is chosen.
#[derive(Debug, Clone)]
pub struct Candidate<T> {
    pub filename: WheelFilename,
    pub requires_python: Option<String>,
    pub item: T,
}

/// A distribution left out because every wheel of it declares a `Requires-Python` the
/// interpreter fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub requires_python: String,
}

/// A distribution that has wheels, none of which the interpreter accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub name: String,
    /// The wheels on offer, with the first tag part that failed.
    pub offered: Vec<(String, &'static str)>,
}

/// The outcome: the chosen items sorted by distribution name, and what was left out.
#[derive(Debug, Clone)]
pub struct Selection<T> {
    pub chosen: Vec<T>,
    pub skipped: Vec<Skipped>,
    pub missing: Vec<Missing>,
}

/// Does `python` satisfy the `Requires-Python` specifier? An unparseable specifier is taken as
/// satisfied, as pip does with a warning for legacy metadata.
pub fn python_satisfies(requires_python: &str, python: &Version) -> bool {
    match requires_python_specifiers(requires_python) {
        Ok(specifiers) => specifiers.contains(python),
        Err(_) => true,
    }
}

/// A `Requires-Python` read as pip reads it (packaging's `SpecifierSet`): its comma-separated
/// specifiers, an empty one (`>=3.8,`, `>=3.8,,<4`) skipped.
pub fn requires_python_specifiers(
    requires_python: &str,
) -> Result<VersionSpecifiers, pep440_rs::VersionSpecifiersParseError> {
    let mut text = String::with_capacity(requires_python.len());
    for part in requires_python.split(',').map(str::trim) {
        if !part.is_empty() {
            text.push_str(part);
            text.push(',');
        }
    }
    text.pop();
    VersionSpecifiers::from_str(&text)
}

/// Picks the best wheel of each distribution among `candidates`.
pub fn select<T: Clone>(
    candidates: &[Candidate<T>],
    tags: &InterpreterTags,
    python: &Version,
) -> Selection<T> {
    let mut by_name: BTreeMap<&str, Vec<&Candidate<T>>> = BTreeMap::new();
    for candidate in candidates {
        by_name
            .entry(candidate.filename.name.as_str())
            .or_default()
            .push(candidate);
    }
    let mut selection = Selection {
        chosen: Vec::new(),
        skipped: Vec::new(),
        missing: Vec::new(),
    };
    for (name, wheels) in by_name {
        let runnable: Vec<&&Candidate<T>> = wheels
            .iter()
            .filter(|candidate| {
                candidate
                    .requires_python
                    .as_deref()
                    .is_none_or(|spec| python_satisfies(spec, python))
            })
            .collect();
        if runnable.is_empty() {
            selection.skipped.push(Skipped {
                name: name.to_string(),
                requires_python: wheels
                    .iter()
                    .filter_map(|candidate| candidate.requires_python.clone())
                    .collect::<Vec<_>>()
                    .join(" | "),
            });
            continue;
        }
        let best = runnable
            .iter()
            .filter_map(|candidate| {
                tags.priority(&candidate.filename)
                    .map(|priority| (candidate, priority))
            })
            .max_by(|(a, a_priority), (b, b_priority)| {
                a.filename
                    .version
                    .cmp(&b.filename.version)
                    .then(b_priority.cmp(a_priority))
                    .then(a.filename.build.cmp(&b.filename.build))
            });
        match best {
            Some((candidate, _)) => selection.chosen.push(candidate.item.clone()),
            None => selection.missing.push(Missing {
                name: name.to_string(),
                offered: runnable
                    .iter()
                    .map(|candidate| {
                        (
                            candidate.filename.to_string(),
                            tags.incompatibility(&candidate.filename),
                        )
                    })
                    .collect(),
            }),
        }
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PlatformFacts;

    /// As packaging's `SpecifierSet` reads them: an empty specifier between commas is
    /// skipped, and text that is no specifier at all is taken as met (pip, with a warning).
    #[test]
    fn requires_python_is_read_as_pip_reads_it() {
        let version = |text: &str| Version::from_str(text).expect("a version");
        for (requires, python, met) in [
            (">=3.8,", "3.7.16", false),
            (">=3.8,", "3.8.0", true),
            (", >=3.8", "3.7.16", false),
            (">=3.8,,<4", "3.9.1", true),
            (">=3.8,,<4", "4.0", false),
            (" >= 3.8 ", "3.7", false),
            ("3.6", "2.7", true),
            ("", "3.6", true),
        ] {
            assert_eq!(
                python_satisfies(requires, &version(python)),
                met,
                "{requires:?} on {python}"
            );
        }
    }

    fn tags(minor: u32) -> InterpreterTags {
        InterpreterTags::for_cpython(&PlatformFacts::linux_cpython(minor, Some((2, 17))))
    }

    fn candidate(filename: &str, requires_python: Option<&str>) -> Candidate<String> {
        Candidate {
            filename: filename.parse().expect(filename),
            requires_python: requires_python.map(str::to_string),
            item: filename.to_string(),
        }
    }

    #[test]
    fn picks_per_distribution() {
        let candidates = vec![
            candidate("pip-21.3.1-py3-none-any.whl", Some(">=3.6")),
            candidate("pip-24.0-py3-none-any.whl", Some(">=3.7")),
            candidate("MarkupSafe-2.0.1-cp36-cp36m-manylinux2010_x86_64.whl", None),
            candidate("MarkupSafe-2.0.1-cp36-cp36m-manylinux2014_x86_64.whl", None),
            candidate(
                "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.whl",
                Some(">=3.7"),
            ),
            candidate("dataclasses-0.8-py3-none-any.whl", Some(">=3.6, <3.7")),
            candidate("numpy-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", None),
        ];
        let python36: Version = "3.6.15".parse().expect("version");
        let chosen = select(&candidates, &tags(6), &python36);
        assert_eq!(
            chosen.chosen,
            vec![
                "dataclasses-0.8-py3-none-any.whl",
                "MarkupSafe-2.0.1-cp36-cp36m-manylinux2014_x86_64.whl",
                "pip-21.3.1-py3-none-any.whl",
            ]
        );
        assert_eq!(chosen.missing.len(), 1);
        assert_eq!(chosen.missing[0].name, "numpy");
        assert_eq!(
            chosen.missing[0].offered[0].1,
            "Python version or implementation"
        );

        let python311: Version = "3.11.7".parse().expect("version");
        let chosen = select(&candidates, &tags(11), &python311);
        assert_eq!(
            chosen.chosen,
            vec![
                "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.whl",
                "numpy-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                "pip-24.0-py3-none-any.whl",
            ]
        );
        assert_eq!(
            chosen.skipped,
            vec![Skipped {
                name: "dataclasses".into(),
                requires_python: ">=3.6, <3.7".into()
            }]
        );
        assert!(chosen.missing.is_empty());
    }

    #[test]
    fn build_tag_breaks_ties() {
        let candidates = vec![
            candidate("a-1.0-1-py3-none-any.whl", None),
            candidate("a-1.0-2-py3-none-any.whl", None),
        ];
        let python: Version = "3.11.0".parse().expect("version");
        assert_eq!(
            select(&candidates, &tags(11), &python).chosen,
            vec!["a-1.0-2-py3-none-any.whl"]
        );
    }
}
