//! Requirements files read as pip reads them (`pip/_internal/req/req_file.py` and
//! `constructors.py`, pip 23), so that pysfx sees every requirement line before pip does:
//! `pip download --only-binary=:all:` (the `--target` collection) passes over a local project
//! or an sdist URL without a word, so those lines are built into wheels first and the files pip
//! reads are rewritten to name the wheels. A file is read once, so `-r <(…)` works.
//!
//! pip's rules mirrored here: continuation lines (a trailing `\`) are joined, then comments (a
//! `#` at the start or after whitespace) removed, then `${VAR}` expanded; the text before the
//! first token starting with `-` is the requirement, the rest options (`shlex`-split). A nested
//! `-r`/`-c` path is relative to the file that names it; a requirement's path (`./mylib`) is
//! relative to the current directory, as pip resolves it, and so is left as written; a
//! relative `--find-links` is relative to the file when it exists there.

mod lines;
mod read;
mod source;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use read::option_text;
pub use source::{classify, file_url_path, named_distribution};

/// One option of a line, by its long name (`--requirement`, `--hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOption {
    pub name: &'static str,
    pub value: Option<String>,
}

/// What a logical line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A requirement: the text before the options (or `-e`'s value), and the per-requirement
    /// options (`--hash`, `--config-settings`, `--global-option`).
    Requirement {
        spec: String,
        editable: bool,
        options: Vec<LineOption>,
    },
    /// `-r FILE` or `-c FILE`: pip reads that file in its place (other options on the line are
    /// ignored, as pip ignores them).
    Nested { path: String, constraint: bool },
    /// Options only (`-i`, `--extra-index-url`, `-f`, `--no-index`, `--pre`, …).
    Options(Vec<LineOption>),
}

/// A logical line: its first physical line number, its text as written (joined, comment
/// removed, variables not expanded) and what it says (variables expanded).
#[derive(Debug, Clone)]
pub struct Line {
    pub number: usize,
    pub raw: String,
    pub entry: Entry,
}

/// One requirements file as read.
#[derive(Debug, Clone)]
pub struct RequirementsFile {
    /// The path as given on the command line, or joined to its parent's directory.
    pub path: PathBuf,
    pub constraint: bool,
    /// Physical lines in the file: copies keep every line at its number, so pip's messages
    /// ("line 7") point into the original.
    pub physical_lines: usize,
    pub lines: Vec<Line>,
    /// For each nested line (by index in `lines`): the file it names, by index in
    /// [`Requirements::files`]; `None` for a URL (pip fetches it; pysfx does not look inside).
    pub nested: Vec<(usize, Option<usize>)>,
}

/// The `-r` files and everything they name.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub files: Vec<RequirementsFile>,
    /// The `-r` files of the command line, by index in `files`.
    pub top: Vec<usize>,
}

/// A requirement line that pip download cannot collect as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A name with a version specifier, for the index.
    Named(String),
    /// A wheel file or a URL of one: pip download takes it as it is.
    Wheel(String),
    /// A local project directory, an sdist or a VCS or sdist URL: built into a wheel first.
    Build(BuildSpec),
}

/// What to build, and what to keep of the line when it is replaced by the built wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The requirement without its environment marker (`./mylib[extra]`,
    /// `name @ git+https://…`): what `pip wheel` builds.
    pub requirement: String,
    /// `[extra,…]` as written, to request the same extras of the wheel.
    pub extras: Option<String>,
    pub marker: Option<String>,
}
