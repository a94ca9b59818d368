//! Wheel filenames (PEP 427): `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;

use crate::{normalize_name, WheelError};

/// The optional build tag: must start with a digit; sorts as (number, rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildTag {
    pub number: u64,
    pub suffix: String,
}

impl Ord for BuildTag {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.number, &self.suffix).cmp(&(other.number, &other.suffix))
    }
}

impl PartialOrd for BuildTag {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A parsed wheel filename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelFilename {
    /// The name as written in the filename.
    pub raw_name: String,
    /// PEP 503-normalised name.
    pub name: String,
    pub version: Version,
    pub raw_version: String,
    pub build: Option<BuildTag>,
    raw_build: Option<String>,
    /// Compressed tag sets, split on `.`.
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelFilename {
    /// Every `python-abi-platform` combination the filename declares.
    pub fn tags(&self) -> impl Iterator<Item = (&str, &str, &str)> + '_ {
        self.python.iter().flat_map(move |python| {
            self.abi.iter().flat_map(move |abi| {
                self.platform
                    .iter()
                    .map(move |platform| (python.as_str(), abi.as_str(), platform.as_str()))
            })
        })
    }

    /// The `{python}-{abi}-{platform}` part, as written.
    pub fn tag_string(&self) -> String {
        format!(
            "{}-{}-{}",
            self.python.join("."),
            self.abi.join("."),
            self.platform.join(".")
        )
    }
}

impl FromStr for WheelFilename {
    type Err = WheelError;

    fn from_str(filename: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| WheelError::InvalidFilename {
            filename: filename.to_string(),
            reason: reason.to_string(),
        };
        let stem = filename
            .strip_suffix(".whl")
            .ok_or_else(|| invalid("does not end in .whl"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, python, abi, platform) = match parts.as_slice() {
            [name, version, python, abi, platform] => {
                (*name, *version, None, *python, *abi, *platform)
            }
            [name, version, build, python, abi, platform] => {
                (*name, *version, Some(*build), *python, *abi, *platform)
            }
            _ => {
                return Err(invalid(
                    "expected name-version[-build]-python-abi-platform.whl",
                ))
            }
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
        {
            return Err(invalid("the name has characters a wheel name may not have"));
        }
        let parsed_version =
            Version::from_str(version).map_err(|_| invalid("the version is not PEP 440"))?;
        let build = match build {
            None => None,
            Some(text) => {
                let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
                if digits.is_empty() {
                    return Err(invalid("the build tag must start with a digit"));
                }
                let number = digits
                    .parse()
                    .map_err(|_| invalid("the build tag number is too large"))?;
                Some(BuildTag {
                    number,
                    suffix: text[digits.len()..].to_string(),
                })
            }
        };
        let split_tags = |field: &str, what: &str| -> Result<Vec<String>, WheelError> {
            let atoms: Vec<String> = field.split('.').map(str::to_string).collect();
            if atoms.iter().any(|atom| {
                atom.is_empty() || !atom.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }) {
                return Err(invalid(&format!("the {what} tag is malformed")));
            }
            Ok(atoms)
        };
        Ok(WheelFilename {
            raw_name: name.to_string(),
            name: normalize_name(name),
            version: parsed_version,
            raw_version: version.to_string(),
            raw_build: parts
                .get(2)
                .filter(|_| parts.len() == 6)
                .map(|s| s.to_string()),
            build,
            python: split_tags(python, "python")?,
            abi: split_tags(abi, "abi")?,
            platform: split_tags(platform, "platform")?,
        })
    }
}

impl fmt::Display for WheelFilename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.raw_name, self.raw_version)?;
        if let Some(build) = &self.raw_build {
            write!(f, "-{build}")?;
        }
        write!(f, "-{}.whl", self.tag_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (filename, name, version, build, python, abi, platform)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<u64>,
        &'a [&'a str],
        &'a [&'a str],
        &'a [&'a str],
    );

    #[test]
    fn parses_valid_filenames() {
        let cases: &[Case] = &[
            (
                "Django-4.2.16-py3-none-any.whl",
                "django",
                "4.2.16",
                None,
                &["py3"],
                &["none"],
                &["any"],
            ),
            (
                "MarkupSafe-2.1.5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "markupsafe",
                "2.1.5",
                None,
                &["cp311"],
                &["cp311"],
                &["manylinux_2_17_x86_64", "manylinux2014_x86_64"],
            ),
            (
                "six-1.16.0-py2.py3-none-any.whl",
                "six",
                "1.16.0",
                None,
                &["py2", "py3"],
                &["none"],
                &["any"],
            ),
            (
                "zope.interface-5.4.0-1-cp36-cp36m-linux_x86_64.whl",
                "zope-interface",
                "5.4.0",
                Some(1),
                &["cp36"],
                &["cp36m"],
                &["linux_x86_64"],
            ),
            (
                "pkg-1.0-12abc-py3-none-any.whl",
                "pkg",
                "1.0",
                Some(12),
                &["py3"],
                &["none"],
                &["any"],
            ),
            (
                "typing_extensions-4.1.1-py3-none-any.whl",
                "typing-extensions",
                "4.1.1",
                None,
                &["py3"],
                &["none"],
                &["any"],
            ),
        ];
        for (filename, name, version, build, python, abi, platform) in cases {
            let parsed: WheelFilename = filename.parse().expect(filename);
            assert_eq!(parsed.name, *name, "{filename}");
            assert_eq!(parsed.version.to_string(), *version, "{filename}");
            assert_eq!(
                parsed.build.as_ref().map(|b| b.number),
                *build,
                "{filename}"
            );
            assert_eq!(parsed.python, *python, "{filename}");
            assert_eq!(parsed.abi, *abi, "{filename}");
            assert_eq!(parsed.platform, *platform, "{filename}");
            assert_eq!(parsed.to_string(), *filename, "round trip");
        }
    }

    #[test]
    fn rejects_invalid_filenames() {
        let cases = [
            "pkg-1.0-py3-none-any.zip",
            "pkg-1.0-py3-none.whl",
            "pkg-1.0-a-b-c-d-e.whl",
            "pkg-notaversion!!-py3-none-any.whl",
            "pkg-1.0-abc-py3-none-any.whl",
            "pkg-1.0-py3-none-any..whl",
            "../evil-1.0-py3-none-any.whl",
            "pkg-1.0-py3-no/ne-any.whl",
            "-1.0-py3-none-any.whl",
        ];
        for filename in cases {
            assert!(filename.parse::<WheelFilename>().is_err(), "{filename}");
        }
    }

    #[test]
    fn build_tags_sort_numerically_then_by_suffix() {
        let tag = |number, suffix: &str| BuildTag {
            number,
            suffix: suffix.to_string(),
        };
        assert!(tag(2, "") < tag(10, ""));
        assert!(tag(1, "") < tag(1, "a"));
        assert!(tag(1, "b") > tag(1, "a"));
    }
}
