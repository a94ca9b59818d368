//! Marker evaluation as `packaging` does it: string and PEP 440 version comparisons, and
//! specifier containment with pre-releases.

use std::str::FromStr;

use pep440_rs::{Operator, Version, VersionSpecifier};

use super::environment::Values;
use super::marker::{Atom, Expression, MarkerOperator, Operand, OPERATORS};

/// The variables `packaging` compares as PEP 440 versions (`MARKERS_REQUIRING_VERSION`).
const VERSION_VARIABLES: [&str; 4] = [
    "implementation_version",
    "platform_release",
    "python_full_version",
    "python_version",
];

/// How two strings that are no versions compare under `<`, `<=`, `>=` and `>`: packaging 26
/// gives them no order (`<` and `>` false, `<=` and `>=` equality); every packaging before it,
/// in every pip a venv is bootstrapped with, compares them as Python compares strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strings {
    Unordered,
    Ordered,
}

/// Evaluates every comparison (as packaging does, so that one it cannot evaluate is an error
/// even where `or` has already decided) and combines them.
pub(super) fn evaluate_expression(
    expression: &Expression,
    values: &Values,
    strings: Strings,
) -> Result<bool, String> {
    let mut result = false;
    for group in &expression.0 {
        let mut all = true;
        for atom in group {
            let value = match atom {
                Atom::Group(inner) => evaluate_expression(inner, values, strings)?,
                Atom::Compare {
                    left,
                    operator,
                    right,
                } => evaluate_comparison(left, *operator, right, values, strings)?,
            };
            all &= value;
        }
        result |= all;
    }
    Ok(result)
}

/// packaging's `_evaluate_markers` for one comparison: the variable is looked up on the left
/// when the left is a variable, otherwise the right-hand text names it.
fn evaluate_comparison(
    left: &Operand,
    operator: MarkerOperator,
    right: &Operand,
    values: &Values,
    strings: Strings,
) -> Result<bool, String> {
    let lookup = |key: &str| {
        values
            .get(key)
            .ok_or_else(|| format!("no marker variable named {key:?} in package metadata"))
    };
    let (key, left, right) = match left {
        Operand::Variable(key) => (*key, lookup(key)?, right.text()),
        Operand::Value(value) => (right.text(), value.as_str(), lookup(right.text())?),
    };
    if VERSION_VARIABLES.contains(&key) {
        if let Some(result) = compare_versions(left, operator, right)? {
            return Ok(result);
        }
    }
    match operator {
        MarkerOperator::In => Ok(right.contains(left)),
        MarkerOperator::NotIn => Ok(!right.contains(left)),
        // Before packaging 26, Python's order of the strings (by code point, as `str`
        // compares UTF-8).
        MarkerOperator::Less if strings == Strings::Ordered => Ok(left < right),
        MarkerOperator::LessEqual if strings == Strings::Ordered => Ok(left <= right),
        MarkerOperator::GreaterEqual if strings == Strings::Ordered => Ok(left >= right),
        MarkerOperator::Greater if strings == Strings::Ordered => Ok(left > right),
        // packaging ≥ 26 gives strings no order: `<` and `>` are false, `<=` and `>=` equal.
        MarkerOperator::Less | MarkerOperator::Greater => Ok(false),
        MarkerOperator::Equal | MarkerOperator::LessEqual | MarkerOperator::GreaterEqual => {
            Ok(left == right)
        }
        MarkerOperator::NotEqual => Ok(left != right),
        MarkerOperator::Compatible | MarkerOperator::Arbitrary => Err(format!(
            "{} is undefined between {left:?} and {right:?}",
            operator_text(operator)
        )),
    }
}

/// `Specifier(op + right).contains(left, prereleases=True)`, or `None` when `op + right` is
/// no valid specifier (then packaging falls back to comparing strings).
fn compare_versions(
    left: &str,
    operator: MarkerOperator,
    right: &str,
) -> Result<Option<bool>, String> {
    if matches!(operator, MarkerOperator::In | MarkerOperator::NotIn) {
        return Ok(None);
    }
    // packaging joins the two and reads the operator back, so `==` before `"=1"` is `===`.
    let specifier = format!("{}{right}", operator_text(operator));
    if let Some(version) = specifier.strip_prefix("===") {
        // `===` compares the text, case-insensitively (ASCII, see the module's notes); its
        // "version" is anything without whitespace, `;` or `)`.
        let version = version.trim();
        if version.contains(|c: char| c.is_whitespace() || c == ';' || c == ')') {
            return Ok(None);
        }
        return Ok(Some(left.eq_ignore_ascii_case(version)));
    }
    let Ok(specifier) = VersionSpecifier::from_str(&specifier) else {
        return Ok(None);
    };
    match Version::from_str(left.trim()) {
        Ok(version) => Ok(Some(specifier_contains(&specifier, &version))),
        // A value that is no version (a kernel's `platform_release`, `3.10.0-1160.el7.x86_64`)
        // is in no specifier: so packaging 26 says, and packaging 21 (a LegacyVersion is in
        // none); packaging 22 to 25 (pip 23 to 25, as on Python 3.8) raise InvalidVersion,
        // which `pip check` passes over. No pip holds a release to such a requirement.
        Err(_) => Ok(Some(false)),
    }
}

/// `Specifier.contains(version, prereleases=True)` as packaging 26 decides it, from the
/// version ranges of its `_ranges.standard_ranges` and `wildcard_ranges`. pep440_rs 0.7's
/// `contains` differs at the edges of `<` (it refuses `2.0a0.dev0` for `<2.0a0`, and `2.0a1`
/// for `<1!2.0` or `<2.0.post1`), which would make a requirement pip accepts look unmet.
pub(crate) fn specifier_contains(specifier: &VersionSpecifier, version: &Version) -> bool {
    let bound = specifier.version();
    // The first version of a release (`1.2` → `1.2.dev0`) and of the release after a prefix
    // (`1.2` → `1.3.dev0`).
    let first_of = |release: &[u64]| {
        Version::new(release)
            .with_epoch(bound.epoch())
            .with_dev(Some(0))
    };
    let first_after = |prefix: &[u64]| {
        let mut release = prefix.to_vec();
        if let Some(last) = release.last_mut() {
            *last = last.saturating_add(1);
        }
        first_of(&release)
    };
    // `==V` without a local label matches every `V+local`.
    let equal = || {
        if bound.is_local() {
            version == bound
        } else {
            version.clone().without_local() == *bound
        }
    };
    let in_prefix =
        || version >= &first_of(bound.release()) && version < &first_after(bound.release());
    match specifier.operator() {
        Operator::Equal => equal(),
        Operator::NotEqual => !equal(),
        Operator::EqualStar => in_prefix(),
        Operator::NotEqualStar => !in_prefix(),
        Operator::TildeEqual => {
            let release = bound.release();
            version >= bound && version < &first_after(&release[..release.len().saturating_sub(1)])
        }
        Operator::GreaterThanEqual => version >= bound,
        Operator::LessThanEqual => version <= bound || version.clone().without_local() == *bound,
        // "<V excludes pre-releases of V when V is not a pre-release."
        Operator::LessThan if bound.any_prerelease() => version < bound,
        Operator::LessThan => version < &bound.clone().with_dev(Some(0)),
        // ">V" excludes V's post-releases and local versions unless V is a post-release.
        Operator::GreaterThan => match (bound.dev(), bound.post()) {
            (Some(dev), _) => version >= &bound.clone().with_dev(Some(dev.saturating_add(1))),
            (None, Some(post)) => {
                version
                    >= &bound
                        .clone()
                        .with_post(Some(post.saturating_add(1)))
                        .with_dev(Some(0))
            }
            (None, None) => {
                let family = Version::new(version.release())
                    .with_epoch(version.epoch())
                    .with_pre(version.pre());
                version > bound && family != *bound
            }
        },
        // `===` compares text; pep440_rs does that.
        _ => specifier.contains(version),
    }
}

fn operator_text(operator: MarkerOperator) -> &'static str {
    match operator {
        MarkerOperator::In => "in",
        MarkerOperator::NotIn => "not in",
        _ => OPERATORS
            .iter()
            .find(|(_, candidate)| *candidate == operator)
            .map_or("", |(spelling, _)| spelling),
    }
}

/// packaging's `canonicalize_name` for extra values: runs of `-`, `_`, `.` become `-`, then
/// lower case (ASCII only, see the module's notes). Unlike distribution names, marker values
/// may hold any character.
pub(super) fn canonical_extra(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_separator = false;
    for character in text.chars() {
        if matches!(character, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.push(character);
            in_separator = false;
        }
    }
    out.to_ascii_lowercase()
}
