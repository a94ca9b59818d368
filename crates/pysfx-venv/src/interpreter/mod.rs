//! One query of the target interpreter: a single `python -I -S -c …` that prints one JSON
//! object, run with a time limit and a cap on what it may print.

mod facts;
mod identity;
mod query;
mod run;
#[cfg(test)]
mod tests;

pub use facts::Interpreter;
pub use identity::{resolve_command, BinaryIdentity};
pub use query::QUERY_SCRIPT;
pub use run::{on_child, Limits, QUERY_TIMEOUT_VARIABLE};
pub(crate) use run::{run_bounded, seconds_from, Ending};
