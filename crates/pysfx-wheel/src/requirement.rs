//! PEP 508 dependency specifiers as found in `Requires-Dist`, and their environment markers.
//!
//! Before installing, every `Requires-Dist` of every distribution must be met by the chosen
//! wheels, markers evaluated for the target interpreter — what `pip check` checks. The parser
//! and the evaluation follow `packaging` 26.3 (the copy pip 26.3 vendors), quirks included,
//! because pip's verdict is the one users compare with:
//!
//! - Only `python_version`, `python_full_version`, `implementation_version` and
//!   `platform_release` compare as PEP 440 versions (`Specifier(op + rhs).contains(lhs,
//!   prereleases=True)`); every other comparison is on strings, where `<` and `>` are false,
//!   `<=` and `>=` mean equal, and `~=`/`===` are undefined.
//! - The right-hand side of a comparison is always read as text: `os_name == sys_platform`
//!   compares `os_name` with the word `sys_platform`, and `"a" == "os_name"` looks up the
//!   variable named by the right-hand string.
//! - `extra` values are compared normalised (PEP 685).
//!
//! Deliberate differences, for the stub's size budget (this code runs in the stub) and because
//! METADATA never needs more: marker strings with a backslash are refused (PEP 508 allows none;
//! `packaging` would read them as Python escapes); letters are folded and told from other
//! characters as ASCII (Python's `str.lower()` and `\w` are Unicode-wide, and their tables cost
//! the stub 12 KB).

use std::fmt;
use std::str::FromStr;

use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};

use crate::normalize_name;

/// `packaging` refuses parentheses nested deeper than CPython's parser allows (200); so does
/// this parser, which also keeps the recursion bounded on hostile METADATA.
const MAX_NESTING: usize = 200;

/// Error texts quote the offending input up to this many characters.
const QUOTE_LIMIT: usize = 200;

/// A requirement or marker that cannot be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    /// The text is not a PEP 508 dependency specifier.
    #[error("invalid requirement {text:?}: {reason} (at column {column})")]
    InvalidRequirement {
        text: String,
        column: usize,
        reason: String,
    },
    /// The text is not a PEP 508 environment marker.
    #[error("invalid marker {text:?}: {reason} (at column {column})")]
    InvalidMarker {
        text: String,
        column: usize,
        reason: String,
    },
    /// The marker parses but `packaging` could not evaluate it (`UndefinedComparison`,
    /// `UndefinedEnvironmentName`).
    #[error("cannot evaluate the marker {text:?}: {reason}")]
    Undefined { text: String, reason: String },
}

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

/// The environment as one evaluation sees it: with packaging's repairs and the extra being
/// evaluated, normalised.
struct Values<'a> {
    environment: &'a MarkerEnvironment,
    python_full_version: String,
    extra: String,
}

impl<'a> Values<'a> {
    fn new(environment: &'a MarkerEnvironment, extra: &str) -> Self {
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
    fn get(&self, key: &str) -> Option<&str> {
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

/// A parsed `Requires-Dist` value: `name[extras] specifiers ; marker` or `name @ url ; marker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The distribution name, normalised as PEP 503 says.
    pub name: String,
    /// The extras asked of the distribution, normalised, in the order written.
    pub extras: Vec<String>,
    /// The version specifiers; empty for none and for a URL requirement.
    pub specifiers: VersionSpecifiers,
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
            specifiers = parse_specifiers(&rest[..length])
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
            url,
            marker,
        })
    }

    /// Whether an installed `version` of the distribution meets this requirement: the
    /// specifiers contain it, pre-releases included, as `pip check` asks
    /// (`req.specifier.contains(version, prereleases=True)`). A URL requirement is met by any
    /// version.
    pub fn is_met_by(&self, version: &Version) -> bool {
        self.url.is_some()
            || self
                .specifiers
                .iter()
                .all(|specifier| specifier_contains(specifier, version))
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
            None => write!(formatter, "{}", self.specifiers)?,
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
fn parse_specifiers(text: &str) -> Result<VersionSpecifiers, usize> {
    let trimmed = text.trim_end_matches([' ', '\t']);
    // packaging's grammar ends a specifier list at a comma that nothing follows.
    let list = match trimmed.strip_suffix(',') {
        Some(list) if !list.trim_matches([' ', '\t']).is_empty() => list,
        _ => trimmed,
    };
    if list.trim_start_matches([' ', '\t']).is_empty() {
        return Ok(VersionSpecifiers::empty());
    }
    // One specifier at a time: the error of a whole list renders a caret line with
    // unicode-width's tables, which the stub would carry for one message.
    let mut offset = 0;
    list.split(',')
        .map(|specifier| {
            let parsed = VersionSpecifier::from_str(specifier).map_err(|_| offset);
            offset += specifier.len() + 1;
            parsed
        })
        .collect()
}

/// A parsed environment marker (the part of a requirement after `;`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    text: String,
    tree: Expression,
}

impl Marker {
    /// Parses a marker expression.
    pub fn parse(text: &str) -> Result<Marker, RequirementError> {
        let mut cursor = Cursor::new(text);
        let tree = parse_marker_text(&mut cursor).map_err(|(position, reason)| {
            RequirementError::InvalidMarker {
                text: quote(text),
                column: column(text, position),
                reason: reason.to_string(),
            }
        })?;
        Ok(Marker {
            text: text.trim_matches([' ', '\t']).to_string(),
            tree,
        })
    }

    /// The marker as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the marker holds for `environment` with no extra requested or with any one of
    /// `extras` — pip evaluates a distribution's requirements with `{"extra": ""}` and once
    /// per requested extra. A marker `packaging` cannot evaluate (pip would stop with an
    /// error) counts as true, so that the requirement is checked rather than silently dropped.
    pub fn evaluate(&self, environment: &MarkerEnvironment, extras: &[String]) -> bool {
        std::iter::once("")
            .chain(extras.iter().map(String::as_str))
            .any(|extra| self.evaluate_extra(environment, extra).unwrap_or(true))
    }

    /// `packaging`'s `Marker.evaluate(environment | {"extra": extra})`: the value, or why the
    /// marker cannot be evaluated. `extra` is the one extra being evaluated, `""` for none.
    pub fn evaluate_extra(
        &self,
        environment: &MarkerEnvironment,
        extra: &str,
    ) -> Result<bool, RequirementError> {
        evaluate_expression(&self.tree, &Values::new(environment, extra)).map_err(|reason| {
            RequirementError::Undefined {
                text: quote(&self.text),
                reason,
            }
        })
    }
}

impl FromStr for Marker {
    type Err = RequirementError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Marker::parse(text)
    }
}

impl fmt::Display for Marker {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// `or` of `and`s: the marker holds when every atom of any one group does (`and` binds
/// tighter, as in packaging's `any(all(group) for group in groups)`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expression(Vec<Vec<Atom>>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Group(Expression),
    Compare {
        left: Operand,
        operator: MarkerOperator,
        right: Operand,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    /// A variable, by the name packaging's environment dict uses.
    Variable(&'static str),
    Value(String),
}

impl Operand {
    /// The operand as text: a value's string, a variable's name (packaging reads the
    /// right-hand side of `VAR op VAR` this way).
    fn text(&self) -> &str {
        match self {
            Operand::Variable(name) => name,
            Operand::Value(value) => value,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerOperator {
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Compatible,
    Arbitrary,
    In,
    NotIn,
}

/// The spellings packaging's tokenizer accepts (`os.name` and `python_implementation` are
/// the legacy ones), each with the environment key it stands for, in the tokenizer's order.
const VARIABLES: [(&str, &str); 20] = [
    ("python_version", "python_version"),
    ("python_full_version", "python_full_version"),
    ("os_name", "os_name"),
    ("os.name", "os_name"),
    ("sys_platform", "sys_platform"),
    ("sys.platform", "sys_platform"),
    ("platform_release", "platform_release"),
    ("platform_system", "platform_system"),
    ("platform_version", "platform_version"),
    ("platform.version", "platform_version"),
    ("platform_machine", "platform_machine"),
    ("platform.machine", "platform_machine"),
    (
        "platform_python_implementation",
        "platform_python_implementation",
    ),
    (
        "platform.python_implementation",
        "platform_python_implementation",
    ),
    ("python_implementation", "platform_python_implementation"),
    ("implementation_name", "implementation_name"),
    ("implementation_version", "implementation_version"),
    ("extra", "extra"),
    // Lock-file variables (PEP 751): they parse, but METADATA has no value for them.
    ("extras", "extras"),
    ("dependency_groups", "dependency_groups"),
];

/// Operators in the order the tokenizer tries them (longest first).
const OPERATORS: [(&str, MarkerOperator); 8] = [
    ("===", MarkerOperator::Arbitrary),
    ("==", MarkerOperator::Equal),
    ("~=", MarkerOperator::Compatible),
    ("!=", MarkerOperator::NotEqual),
    ("<=", MarkerOperator::LessEqual),
    (">=", MarkerOperator::GreaterEqual),
    ("<", MarkerOperator::Less),
    (">", MarkerOperator::Greater),
];

/// The variables `packaging` compares as PEP 440 versions (`MARKERS_REQUIRING_VERSION`).
const VERSION_VARIABLES: [&str; 4] = [
    "implementation_version",
    "platform_release",
    "python_full_version",
    "python_version",
];

/// A parse failure: the byte position and the reason. Static reasons keep the stub small.
type ParseFailure = (usize, &'static str);

/// Parses a whole marker from the cursor to the end of its text.
fn parse_marker_text(cursor: &mut Cursor) -> Result<Expression, ParseFailure> {
    let expression = parse_expression(cursor, 0)?;
    if !cursor.done() {
        return Err((
            cursor.position,
            "expected `and`, `or` or the end of the marker",
        ));
    }
    Ok(expression)
}

/// `marker = atom (("and" | "or") atom)*`
fn parse_expression(cursor: &mut Cursor, depth: usize) -> Result<Expression, ParseFailure> {
    let mut groups = vec![vec![parse_atom(cursor, depth)?]];
    loop {
        if cursor.eat_word("or") {
            groups.push(vec![parse_atom(cursor, depth)?]);
        } else if cursor.eat_word("and") {
            let atom = parse_atom(cursor, depth)?;
            if let Some(group) = groups.last_mut() {
                group.push(atom);
            }
        } else {
            return Ok(Expression(groups));
        }
    }
}

/// `atom = WS? ("(" marker ")" | item) WS?`
fn parse_atom(cursor: &mut Cursor, depth: usize) -> Result<Atom, ParseFailure> {
    cursor.skip_whitespace();
    let atom = if cursor.rest().starts_with('(') {
        if depth >= MAX_NESTING {
            return Err((cursor.position, "parentheses nested more than 200 deep"));
        }
        let open = cursor.position;
        cursor.position += 1;
        let inner = parse_expression(cursor, depth + 1)?;
        if !cursor.eat(")") {
            return Err((open, "expected a matching ) in the marker"));
        }
        Atom::Group(inner)
    } else {
        parse_comparison(cursor)?
    };
    cursor.skip_whitespace();
    Ok(atom)
}

/// `item = operand WS? operator WS? operand`
fn parse_comparison(cursor: &mut Cursor) -> Result<Atom, ParseFailure> {
    let mut left = parse_operand(cursor)?;
    cursor.skip_whitespace();
    let operator = parse_operator(cursor)?;
    cursor.skip_whitespace();
    let mut right = parse_operand(cursor)?;
    // PEP 685: extra names compare normalised. packaging normalises the literal next to an
    // `extra` variable when it parses (and the environment's extra when it evaluates).
    match (&mut left, &mut right) {
        (Operand::Variable("extra"), Operand::Value(value))
        | (Operand::Value(value), Operand::Variable("extra")) => *value = canonical_extra(value),
        _ => {}
    }
    Ok(Atom::Compare {
        left,
        operator,
        right,
    })
}

fn parse_operand(cursor: &mut Cursor) -> Result<Operand, ParseFailure> {
    let rest = cursor.rest();
    for (spelling, key) in VARIABLES {
        if rest.starts_with(spelling) && !rest[spelling.len()..].starts_with(is_word_character) {
            cursor.position += spelling.len();
            return Ok(Operand::Variable(key));
        }
    }
    let start = cursor.position;
    let Some(quote_character) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
        return Err((start, "expected a marker variable or a quoted string"));
    };
    let Some(length) = rest[1..].find(quote_character) else {
        return Err((start, "the quoted string is not closed"));
    };
    let value = &rest[1..1 + length];
    // packaging reads the string with `ast.literal_eval`: a newline ends a Python string
    // literal early and NUL is refused. A backslash would start a Python escape; PEP 508
    // allows none, and no real METADATA has one, so it is refused rather than interpreted.
    if value.contains('\\') {
        return Err((start, "backslashes are not allowed in marker strings"));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err((start, "invalid quoted string"));
    }
    cursor.position += length + 2;
    Ok(Operand::Value(value.to_string()))
}

fn parse_operator(cursor: &mut Cursor) -> Result<MarkerOperator, ParseFailure> {
    if cursor.eat_word("in") {
        return Ok(MarkerOperator::In);
    }
    if cursor.eat_word("not") {
        if !cursor.skip_whitespace() {
            return Err((cursor.position, "expected whitespace after `not`"));
        }
        if !cursor.eat_word("in") {
            return Err((cursor.position, "expected `in` after `not`"));
        }
        return Ok(MarkerOperator::NotIn);
    }
    for (spelling, operator) in OPERATORS {
        if cursor.eat(spelling) {
            return Ok(operator);
        }
    }
    Err((
        cursor.position,
        "expected a marker operator, one of <=, <, !=, ==, >=, >, ~=, ===, in, not in",
    ))
}

/// Evaluates every comparison (as packaging does, so that one it cannot evaluate is an error
/// even where `or` has already decided) and combines them.
fn evaluate_expression(expression: &Expression, values: &Values) -> Result<bool, String> {
    let mut result = false;
    for group in &expression.0 {
        let mut all = true;
        for atom in group {
            let value = match atom {
                Atom::Group(inner) => evaluate_expression(inner, values)?,
                Atom::Compare {
                    left,
                    operator,
                    right,
                } => evaluate_comparison(left, *operator, right, values)?,
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
        if let Some(result) = compare_versions(left, operator, right) {
            return Ok(result);
        }
    }
    match operator {
        MarkerOperator::In => Ok(right.contains(left)),
        MarkerOperator::NotIn => Ok(!right.contains(left)),
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
fn compare_versions(left: &str, operator: MarkerOperator, right: &str) -> Option<bool> {
    if matches!(operator, MarkerOperator::In | MarkerOperator::NotIn) {
        return None;
    }
    // packaging joins the two and reads the operator back, so `==` before `"=1"` is `===`.
    let specifier = format!("{}{right}", operator_text(operator));
    if let Some(version) = specifier.strip_prefix("===") {
        // `===` compares the text, case-insensitively (ASCII, see the module's notes); its
        // "version" is anything without whitespace, `;` or `)`.
        let version = version.trim();
        if version.contains(|c: char| c.is_whitespace() || c == ';' || c == ')') {
            return None;
        }
        return Some(left.eq_ignore_ascii_case(version));
    }
    let specifier = VersionSpecifier::from_str(&specifier).ok()?;
    // Since packaging 26 a string that is no version is simply not contained.
    Some(
        Version::from_str(left.trim())
            .is_ok_and(|version| specifier_contains(&specifier, &version)),
    )
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
fn canonical_extra(text: &str) -> String {
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

/// Python's `\w` (ASCII only, see the module's notes): what the tokenizer's `\b` looks at.
fn is_word_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '_'
}

/// The input quoted in an error, cut to a readable length.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The 1-based column of a byte position, in characters.
fn column(text: &str, position: usize) -> usize {
    text.get(..position).map_or(0, |head| head.chars().count()) + 1
}

/// A position in the text being parsed.
struct Cursor<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, position: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.position..).unwrap_or("")
    }

    fn done(&self) -> bool {
        self.position >= self.text.len()
    }

    /// PEP 508 whitespace is spaces and tabs; true when there was some.
    fn skip_whitespace(&mut self) -> bool {
        let rest = self.rest();
        let length = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        self.position += length;
        length > 0
    }

    fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.position += token.len();
        }
        found
    }

    /// A keyword (`and`, `or`, `in`, `not`) that no word character follows (regex `\b`).
    fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        let found = rest.starts_with(word) && !rest[word.len()..].starts_with(is_word_character);
        if found {
            self.position += word.len();
        }
        found
    }

    /// A name or extra: `[A-Za-z0-9][A-Za-z0-9._-]*` that ends at a word boundary.
    /// packaging's regex would backtrack over a trailing `.` or `-`, but nothing can follow
    /// one, so the requirement fails either way.
    fn identifier(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if !rest.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return None;
        }
        let length = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(rest.len());
        let identifier = &rest[..length];
        if identifier.ends_with(['.', '-']) || rest[length..].starts_with(is_word_character) {
            return None;
        }
        self.position += length;
        Some(identifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux_311() -> MarkerEnvironment {
        MarkerEnvironment {
            implementation_name: "cpython".into(),
            implementation_version: "3.11.7".into(),
            os_name: "posix".into(),
            platform_machine: "x86_64".into(),
            platform_python_implementation: "CPython".into(),
            platform_release: "5.15.0-91-generic".into(),
            platform_system: "Linux".into(),
            platform_version: "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023".into(),
            python_full_version: "3.11.7".into(),
            python_version: "3.11".into(),
            sys_platform: "linux".into(),
        }
    }

    #[test]
    fn parses_requirements() {
        /// (text, name, extras, specifiers, url, marker)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [&'a str],
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            ("Django", "django", &[], "", None, None),
            ("  zope.interface  ", "zope-interface", &[], "", None, None),
            ("requests>=2.0,<3", "requests", &[], ">=2.0, <3", None, None),
            (
                "requests >= 2.0 , < 3",
                "requests",
                &[],
                ">=2.0, <3",
                None,
                None,
            ),
            ("six (>=1.5)", "six", &[], ">=1.5", None, None),
            ("six ( >=1.5 , <2 )", "six", &[], ">=1.5, <2", None, None),
            ("six ()", "six", &[], "", None, None),
            ("foo>=1.0,", "foo", &[], ">=1.0", None, None),
            (
                "foo[bar,baz] (>=1.0) ; sys_platform != \"win32\"",
                "foo",
                &["bar", "baz"],
                ">=1.0",
                None,
                Some("sys_platform != \"win32\""),
            ),
            (
                "Foo_Bar[ Test.Extra , Other ]",
                "foo-bar",
                &["test-extra", "other"],
                "",
                None,
                None,
            ),
            ("foo[]", "foo", &[], "", None, None),
            (
                "importlib-metadata>=4.6; python_version < \"3.10\"",
                "importlib-metadata",
                &[],
                ">=4.6",
                None,
                Some("python_version < \"3.10\""),
            ),
            (
                "cryptography @ https://example.com/c.whl",
                "cryptography",
                &[],
                "",
                Some("https://example.com/c.whl"),
                None,
            ),
            (
                "pip@https://example.com/p.whl ; os_name == 'posix'",
                "pip",
                &[],
                "",
                Some("https://example.com/p.whl"),
                Some("os_name == 'posix'"),
            ),
            // PEP 508: without whitespace the semicolon belongs to the URL.
            (
                "pip @ file:///p.whl;os_name=='posix'",
                "pip",
                &[],
                "",
                Some("file:///p.whl;os_name=='posix'"),
                None,
            ),
            ("name==1.0.*", "name", &[], "==1.0.*", None, None),
            (
                "name~=1.4.2;extra=='x'",
                "name",
                &[],
                "~=1.4.2",
                None,
                Some("extra=='x'"),
            ),
        ];
        for (text, name, extras, specifiers, url, marker) in cases {
            let requirement = Requirement::parse(text).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(requirement.name, *name, "{text}");
            assert_eq!(requirement.extras, *extras, "{text}");
            assert_eq!(requirement.specifiers.to_string(), *specifiers, "{text}");
            assert_eq!(requirement.url.as_deref(), *url, "{text}");
            assert_eq!(
                requirement.marker.as_ref().map(Marker::as_str),
                *marker,
                "{text}"
            );
            // What is printed parses back to the same requirement.
            let again = Requirement::parse(&requirement.to_string())
                .unwrap_or_else(|error| panic!("{requirement}: {error}"));
            assert_eq!(again, requirement, "{text}");
        }
    }

    #[test]
    fn refuses_invalid_requirements_with_a_reason() {
        let cases = [
            ("", "expected a package name"),
            ("-foo", "expected a package name"),
            ("foo-", "expected a package name"),
            ("foo bar", "invalid version specifier"),
            ("foo >=", "invalid version specifier"),
            ("foo (>=1.0", "expected a matching )"),
            ("foo[bar", "expected a matching ]"),
            ("foo[bar baz]", "expected a comma between extra names"),
            ("foo[bar,]", "expected an extra name"),
            ("foo @", "expected a URL"),
            ("foo @ https://x y", "expected a semicolon after the URL"),
            ("foo (>=1) bar", "expected a comma, a semicolon"),
            ("foo; ", "expected a marker variable"),
            ("foo; python_version", "expected a marker operator"),
            ("foo >=1.0,,<2", "invalid version specifier"),
            ("foo >1.0.*", "invalid version specifier"),
            ("foo; os_name == 'posix' and", "expected a marker variable"),
        ];
        for (text, reason) in cases {
            let error = Requirement::parse(text).expect_err(text).to_string();
            assert!(error.contains(reason), "{text:?}: {error}");
            assert!(error.starts_with("invalid requirement"), "{error}");
        }
    }

    #[test]
    fn an_invalid_specifier_is_pointed_at() {
        for (text, column) in [("foo>=1.0,>2.0.*", 10), ("foo ( >=1 , ~=2 )", 12)] {
            let error = Requirement::parse(text).expect_err(text);
            assert!(
                matches!(&error, RequirementError::InvalidRequirement { column: found, .. } if *found == column),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn requirement_is_met_by_versions_with_prereleases() {
        let cases = [
            ("foo>=1.0", "1.0", true),
            ("foo>=1.0", "0.9", false),
            ("foo>=1.0", "2.0a1", true),
            ("foo<2", "2.0rc1", false),
            ("foo<2", "1.9", true),
            ("foo==1.*", "1.4.post1", true),
            ("foo!=1.5", "1.5", false),
            ("foo~=1.4.2", "1.4.9", true),
            ("foo~=1.4.2", "1.5", false),
            ("foo", "0.0.1", true),
            ("foo==1.0", "1.0+local", true),
            ("foo @ https://example.com/foo.whl", "0.1", true),
        ];
        for (text, version, met) in cases {
            let requirement = Requirement::parse(text).unwrap_or_else(|error| panic!("{error}"));
            let version = Version::from_str(version).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(requirement.is_met_by(&version), met, "{text} by {version}");
        }
    }

    #[test]
    fn evaluates_markers_as_packaging_does() {
        let environment = linux_311();
        // (marker, extra, expected)
        let cases = [
            ("python_version < \"3.10\"", "", Ok(false)),
            ("python_version >= '3.6'", "", Ok(true)),
            ("python_version > '3.9'", "", Ok(true)),
            ("python_version == '3.11.*'", "", Ok(true)),
            ("python_full_version >= '3.11.7'", "", Ok(true)),
            ("python_full_version < '3.11.7rc1'", "", Ok(false)),
            ("'3.6' < python_version", "", Ok(true)),
            ("platform_system == \"Windows\"", "", Ok(false)),
            ("sys_platform != 'win32'", "", Ok(true)),
            ("sys.platform == 'linux'", "", Ok(true)),
            ("os.name == 'posix'", "", Ok(true)),
            ("python_implementation == 'CPython'", "", Ok(true)),
            ("platform.python_implementation != 'PyPy'", "", Ok(true)),
            ("'linux' in sys_platform", "", Ok(true)),
            (
                "'lin' in sys_platform and 'win' not in sys_platform",
                "",
                Ok(true),
            ),
            ("sys_platform in 'linux2 darwin'", "", Ok(true)),
            // Strings have no order since packaging 26.
            ("os_name < 'zzz'", "", Ok(false)),
            ("os_name <= 'posix'", "", Ok(true)),
            ("os_name >= 'a'", "", Ok(false)),
            // A release that is no PEP 440 version is contained in no specifier.
            ("platform_release >= '5'", "", Ok(false)),
            ("platform_release == '5.15.0-91-generic'", "", Ok(true)),
            // No valid specifier: packaging compares strings.
            ("python_version < 'abc'", "", Ok(false)),
            ("python_version <= '3.11 '", "", Ok(true)),
            ("python_version === '3.11'", "", Ok(true)),
            ("os_name ~= 'posix'", "", Err(())),
            ("os_name === 'posix'", "", Err(())),
            ("python_version ~= '3'", "", Err(())),
            // `and` binds tighter than `or`; parentheses group.
            (
                "os_name == 'nt' and python_version > '3' or sys_platform == 'linux'",
                "",
                Ok(true),
            ),
            (
                "os_name == 'nt' and (python_version > '3' or sys_platform == 'linux')",
                "",
                Ok(false),
            ),
            ("((os_name == 'posix'))", "", Ok(true)),
            // Extras: normalised on both sides, false without the extra.
            ("extra == 'test'", "", Ok(false)),
            ("extra == 'test'", "test", Ok(true)),
            ("extra == 'Test_Suite'", "test.suite", Ok(true)),
            ("'Test' == extra", "TEST", Ok(true)),
            ("extra != 'test'", "", Ok(true)),
            (
                "python_version<'3.11' and extra == 'test'",
                "test",
                Ok(false),
            ),
            (
                "python_version<'3.12' and extra == 'test'",
                "test",
                Ok(true),
            ),
            ("python_version == '=3.11'", "", Ok(true)),
            // packaging reads the right-hand variable of `VAR op VAR` as its name, and the
            // right-hand string of `VALUE op VALUE` as a variable name.
            ("os_name == sys_platform", "", Ok(false)),
            ("sys_platform == os_name", "", Ok(false)),
            ("'posix' == 'os_name'", "", Ok(true)),
            ("'posix' == 'posix'", "", Err(())),
            ("extras == 'x'", "", Err(())),
            ("os_name == 'posix' or 'a' == 'b'", "", Err(())),
        ];
        for (text, extra, expected) in cases {
            let Ok(marker) = Marker::parse(text) else {
                assert!(expected.is_err(), "{text} should parse");
                continue;
            };
            let result = marker.evaluate_extra(&environment, extra).map_err(|_| ());
            assert_eq!(result, expected, "{text} with extra {extra:?}");
        }
    }

    #[test]
    fn python_full_version_of_an_untagged_build_is_repaired() {
        let environment = MarkerEnvironment {
            python_full_version: "3.13.0+".into(),
            ..linux_311()
        };
        let marker = Marker::parse("python_full_version >= '3.13'").expect("valid");
        assert_eq!(marker.evaluate_extra(&environment, ""), Ok(true));
    }

    #[test]
    fn requirement_applies_with_any_requested_extra() {
        let environment = linux_311();
        let cases: &[(&str, &[&str], bool)] = &[
            ("pytest; extra == 'test'", &[], false),
            ("pytest; extra == 'test'", &["docs", "test"], true),
            ("pytest; extra == 'test'", &["docs"], false),
            ("pywin32>=226; platform_system == \"Windows\"", &[], false),
            ("colorama; extra != 'x'", &["x"], true),
            ("django", &[], true),
            // Cannot be evaluated: counts as applying, so it is checked.
            ("odd; os_name ~= 'posix'", &[], true),
        ];
        for (text, extras, applies) in cases {
            let requirement = Requirement::parse(text).unwrap_or_else(|error| panic!("{error}"));
            let extras: Vec<String> = extras.iter().map(|extra| extra.to_string()).collect();
            assert_eq!(
                requirement.applies_to(&environment, &extras),
                *applies,
                "{text} {extras:?}"
            );
        }
    }

    #[test]
    fn refuses_invalid_markers() {
        let cases = [
            ("", "expected a marker variable"),
            ("python_version", "expected a marker operator"),
            ("python_version <", "expected a marker variable"),
            ("python_versionx < '3'", "expected a marker variable"),
            ("python_version < '3", "not closed"),
            ("python_version < \"3\\n\"", "backslashes"),
            ("os_name == 'posix' and", "expected a marker variable"),
            (
                "os_name == 'posix' nand os_name == 'x'",
                "expected `and`, `or`",
            ),
            (
                "os_name == 'posix'andos_name == 'x'",
                "expected `and`, `or`",
            ),
            ("(os_name == 'posix'", "expected a matching )"),
            ("os_name notin 'posix'", "expected a marker operator"),
            ("os_name not'in' 'posix'", "expected whitespace after `not`"),
            ("os_name = 'posix'", "expected a marker operator"),
            ("platform.release == '1'", "expected a marker variable"),
            ("os_name == 'a\nb'", "invalid quoted string"),
        ];
        for (text, reason) in cases {
            let error = Marker::parse(text).expect_err(text).to_string();
            assert!(error.contains(reason), "{text:?}: {error}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |levels: usize| {
            format!(
                "{}os_name == 'posix'{}",
                "(".repeat(levels),
                ")".repeat(levels)
            )
        };
        assert!(Marker::parse(&deep(MAX_NESTING)).is_ok());
        let error = Marker::parse(&deep(MAX_NESTING + 1)).expect_err("too deep");
        assert!(
            error.to_string().contains("nested more than 200"),
            "{error}"
        );
    }

    #[test]
    fn errors_quote_a_bounded_excerpt() {
        let long = format!("foo; os_name == '{}", "x".repeat(10_000));
        let error = Requirement::parse(&long).expect_err("unclosed").to_string();
        assert!(error.len() < 400, "{} bytes", error.len());
        assert!(error.contains("(at column 17)"), "{error}");
    }

    #[test]
    fn whitespace_is_tolerated_where_pep_508_allows_it() {
        let environment = linux_311();
        for text in [
            "os_name=='posix'",
            "  os_name  ==  'posix'  ",
            "\tos_name\t==\t'posix'",
            "( os_name == 'posix' )and( python_version>'3' )",
            "'posix'==os_name",
        ] {
            let marker = Marker::parse(text).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(marker.evaluate_extra(&environment, ""), Ok(true), "{text}");
        }
    }
}
