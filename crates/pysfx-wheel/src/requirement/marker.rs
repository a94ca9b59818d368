//! Environment markers: the `Marker` type, its syntax tree, the spellings of variables and
//! operators, and the parser that builds the tree.

use std::fmt;
use std::str::FromStr;

use super::cursor::{column, is_word_character, quote, Cursor};
use super::environment::{MarkerEnvironment, Values};
use super::evaluate::{canonical_extra, evaluate_expression, Strings};
use super::RequirementError;

/// `packaging` refuses parentheses nested deeper than CPython's parser allows (200); so does
/// this parser, which also keeps the recursion bounded on hostile METADATA.
pub(super) const MAX_NESTING: usize = 200;

/// A parsed environment marker (the part of a requirement after `;`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub(super) text: String,
    pub(super) tree: Expression,
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
    /// error) counts as true, so that the requirement is checked rather than silently dropped;
    /// so does one that holds for packaging before 26 only (a version compared with text
    /// that is no version, `python_version < "3.1O"`), which the venv's own pip, of those
    /// years, would hold the release to.
    pub fn evaluate(&self, environment: &MarkerEnvironment, extras: &[String]) -> bool {
        std::iter::once("")
            .chain(extras.iter().map(String::as_str))
            .any(|extra| {
                let values = Values::new(environment, extra);
                [Strings::Unordered, Strings::Ordered]
                    .into_iter()
                    .any(|strings| {
                        evaluate_expression(&self.tree, &values, strings).unwrap_or(true)
                    })
            })
    }

    /// `packaging`'s `Marker.evaluate(environment | {"extra": extra})`: the value, or why the
    /// marker cannot be evaluated. `extra` is the one extra being evaluated, `""` for none.
    pub fn evaluate_extra(
        &self,
        environment: &MarkerEnvironment,
        extra: &str,
    ) -> Result<bool, RequirementError> {
        evaluate_expression(
            &self.tree,
            &Values::new(environment, extra),
            Strings::Unordered,
        )
        .map_err(|reason| RequirementError::Undefined {
            text: quote(&self.text),
            reason,
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
pub(super) struct Expression(pub(super) Vec<Vec<Atom>>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Atom {
    Group(Expression),
    Compare {
        left: Operand,
        operator: MarkerOperator,
        right: Operand,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Operand {
    /// A variable, by the name packaging's environment dict uses.
    Variable(&'static str),
    Value(String),
}

impl Operand {
    /// The operand as text: a value's string, a variable's name (packaging reads the
    /// right-hand side of `VAR op VAR` this way).
    pub(super) fn text(&self) -> &str {
        match self {
            Operand::Variable(name) => name,
            Operand::Value(value) => value,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkerOperator {
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
pub(super) const OPERATORS: [(&str, MarkerOperator); 8] = [
    ("===", MarkerOperator::Arbitrary),
    ("==", MarkerOperator::Equal),
    ("~=", MarkerOperator::Compatible),
    ("!=", MarkerOperator::NotEqual),
    ("<=", MarkerOperator::LessEqual),
    (">=", MarkerOperator::GreaterEqual),
    ("<", MarkerOperator::Less),
    (">", MarkerOperator::Greater),
];

/// A parse failure: the byte position and the reason. Static reasons keep the stub small.
type ParseFailure = (usize, &'static str);

/// Parses a whole marker from the cursor to the end of its text.
pub(super) fn parse_marker_text(cursor: &mut Cursor) -> Result<Expression, ParseFailure> {
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
