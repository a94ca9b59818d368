//! A `Requires-Dist` value: the PEP 508 requirement grammar (name, extras, specifiers or URL,
//! marker) and whether an installed version meets it.

use std::fmt;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifier, VersionSpecifiers};

use super::cursor::{column, quote, Cursor};
use super::evaluate::specifier_contains;
use super::marker::{parse_marker_text, Marker};
use super::{MarkerEnvironment, RequirementError};
use crate::normalize_name;

/// A parsed `Requires-Dist` value: `name[extras] specifiers ; marker` or `name @ url ; marker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The distribution name, normalised as PEP 503 says.
    pub name: String,
    /// The extras asked of the distribution, normalised, in the order written.
    pub extras: Vec<String>,
    /// The version specifiers but `===`; empty for none and for a URL requirement.
    pub specifiers: VersionSpecifiers,
    /// What each `===` specifier (arbitrary equality, PEP 440) names, as written: text that
    /// need be no version (`===foobar`), compared with the version's own text.
    pub arbitrary: Vec<String>,
    /// The URL of a direct reference (`name @ url`), as written.
    pub url: Option<String>,
    /// When the requirement applies.
    pub marker: Option<Marker>,
}

impl Requirement {
    /// Parses a `Requires-Dist` value (PEP 508, including the old METADATA style with the
    /// specifiers in parentheses: `foo (>=1.0)`).
    pub fn parse(text: &str) -> Result<Requirement, RequirementError> {
        let fail = |position: usize, reason: &str| RequirementError::InvalidRequirement {
            text: quote(text),
            column: column(text, position),
            reason: reason.to_string(),
        };
        let mut cursor = Cursor::new(text);
        cursor.skip_whitespace();
        let name = cursor
            .identifier()
            .ok_or_else(|| fail(cursor.position, "expected a package name at the start"))?;
        cursor.skip_whitespace();
        let mut extras = Vec::new();
        if cursor.eat("[") {
            let open = cursor.position - 1;
            cursor.skip_whitespace();
            if let Some(extra) = cursor.identifier() {
                extras.push(normalize_name(extra));
                loop {
                    cursor.skip_whitespace();
                    if !cursor.eat(",") {
                        if cursor.identifier().is_some() {
                            return Err(fail(
                                cursor.position,
                                "expected a comma between extra names",
                            ));
                        }
                        break;
                    }
                    cursor.skip_whitespace();
                    let extra = cursor.identifier().ok_or_else(|| {
                        fail(cursor.position, "expected an extra name after the comma")
                    })?;
                    extras.push(normalize_name(extra));
                }
            }
            if !cursor.eat("]") {
                return Err(fail(open, "expected a matching ] after the extras"));
            }
            cursor.skip_whitespace();
        }

        let mut specifiers = VersionSpecifiers::empty();
        let mut arbitrary = Vec::new();
        let mut url = None;
        if cursor.eat("@") {
            cursor.skip_whitespace();
            // PEP 508: the URL runs to the next whitespace, so a marker needs a space before
            // its semicolon (`name @ url ; marker`).
            let rest = cursor.rest();
            let length = rest.find([' ', '\t']).unwrap_or(rest.len());
            if length == 0 {
                return Err(fail(cursor.position, "expected a URL after @"));
            }
            url = Some(rest[..length].to_string());
            cursor.position += length;
            cursor.skip_whitespace();
        } else {
            let open = cursor.position;
            let parenthesised = cursor.eat("(");
            let start = cursor.position;
            let rest = cursor.rest();
            let (length, after) = if parenthesised {
                let close = rest.find(')').ok_or_else(|| {
                    fail(open, "expected a matching ) after the version specifier")
                })?;
                (close, close + 1)
            } else {
                let end = rest.find(';').unwrap_or(rest.len());
                (end, end)
            };
            (specifiers, arbitrary) = parse_specifiers(&rest[..length])
                .map_err(|offset| fail(start + offset, "invalid version specifier"))?;
            cursor.position = start + after;
            cursor.skip_whitespace();
        }

        let marker = if cursor.done() {
            None
        } else if cursor.eat(";") {
            let start = cursor.position;
            let tree = parse_marker_text(&mut cursor)
                .map_err(|(position, reason)| fail(position, reason))?;
            Some(Marker {
                text: text[start..].trim_matches([' ', '\t']).to_string(),
                tree,
            })
        } else {
            let expected = if url.is_some() {
                "expected a semicolon after the URL"
            } else {
                "expected a comma, a semicolon or the end after the version specifier"
            };
            return Err(fail(cursor.position, expected));
        };
        Ok(Requirement {
            name: normalize_name(name),
            extras,
            specifiers,
            arbitrary,
            url,
            marker,
        })
    }

    /// Whether an installed `version` of the distribution meets this requirement: the
    /// specifiers contain it, pre-releases included, as `pip check` asks
    /// (`req.specifier.contains(version, prereleases=True)`). A URL requirement is met by any
    /// version.
    pub fn is_met_by(&self, version: &Version) -> bool {
        // `===` as packaging compares it: the version's own (normalised) text against what
        // the specifier names, case aside.
        let text = || version.to_string();
        self.url.is_some()
            || (self.specifiers.iter()).all(|specifier| specifier_contains(specifier, version))
                && (self.arbitrary.iter()).all(|named| named.eq_ignore_ascii_case(&text()))
    }

    /// Whether the requirement holds to any version at all (`name` alone, or a URL, does
    /// not).
    pub fn has_specifiers(&self) -> bool {
        !self.specifiers.is_empty() || !self.arbitrary.is_empty()
    }

    /// The version specifiers as a requirement line writes them (`>=1.0, <2, ===foobar`).
    pub fn specifier_text(&self) -> String {
        let mut parts: Vec<String> = self.specifiers.iter().map(ToString::to_string).collect();
        parts.extend(self.arbitrary.iter().map(|named| format!("==={named}")));
        parts.join(", ")
    }

    /// Whether the requirement applies to `environment` when `extras` of its distribution are
    /// requested: no marker, or one that [`Marker::evaluate`] finds true.
    pub fn applies_to(&self, environment: &MarkerEnvironment, extras: &[String]) -> bool {
        self.marker
            .as_ref()
            .is_none_or(|marker| marker.evaluate(environment, extras))
    }
}

impl FromStr for Requirement {
    type Err = RequirementError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Requirement::parse(text)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.name)?;
        if !self.extras.is_empty() {
            write!(formatter, "[{}]", self.extras.join(","))?;
        }
        match &self.url {
            Some(url) => write!(formatter, " @ {url}")?,
            None => write!(formatter, "{}", self.specifier_text())?,
        }
        if let Some(marker) = &self.marker {
            let space = if self.url.is_some() { " " } else { "" };
            write!(formatter, "{space}; {marker}")?;
        }
        Ok(())
    }
}

/// The specifier list of a requirement, bare or from inside its parentheses; on failure, the
/// offset of the specifier that is invalid.
fn parse_specifiers(text: &str) -> Result<(VersionSpecifiers, Vec<String>), usize> {
    let trimmed = text.trim_end_matches([' ', '\t']);
    // packaging's grammar ends a specifier list at a comma that nothing follows.
    let list = match trimmed.strip_suffix(',') {
        Some(list) if !list.trim_matches([' ', '\t']).is_empty() => list,
        _ => trimmed,
    };
    if list.trim_start_matches([' ', '\t']).is_empty() {
        return Ok((VersionSpecifiers::empty(), Vec::new()));
    }
    // One specifier at a time: the error of a whole list renders a caret line with
    // unicode-width's tables, which the stub would carry for one message.
    let mut offset = 0;
    let mut specifiers = Vec::new();
    let mut arbitrary = Vec::new();
    for specifier in list.split(',') {
        let at = offset;
        offset += specifier.len() + 1;
        // `===` names anything without whitespace, `;` or `)` (packaging's grammar).
        if let Some(named) = specifier.trim_matches([' ', '\t']).strip_prefix("===") {
            let named = named.trim_start_matches([' ', '\t']);
            if named.contains(|c: char| c.is_whitespace() || c == ';' || c == ')') {
                return Err(at);
            }
            arbitrary.push(named.to_string());
            continue;
        }
        specifiers.push(VersionSpecifier::from_str(specifier).map_err(|_| at)?);
    }
    Ok((specifiers.into_iter().collect(), arbitrary))
}
