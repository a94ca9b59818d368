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

mod cursor;
mod dependency;
mod environment;
mod evaluate;
mod marker;
#[cfg(test)]
mod tests;

pub use dependency::Requirement;
pub use environment::MarkerEnvironment;
pub use marker::Marker;

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
