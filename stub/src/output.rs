//! What the stub prints on stdout: results, and the failure report of `--json`.

use std::io::Write;

use crate::failure::{self, Failure};

/// What a failed run had done before it failed: nothing, unless a signal stopped `--link`
/// or `--keep` after the release was in place.
#[derive(Default)]
pub struct Done {
    pub changed: bool,
    pub link_moved: bool,
    /// The releases `--keep` removed.
    pub pruned: Vec<std::path::PathBuf>,
    /// What this run installed, when the release was in place before it failed.
    pub wheels_installed: usize,
    pub files: u64,
    pub bytes: u64,
}

/// The keys of the mode run besides SPEC's (`--check`'s `intact`, `--status`'s `link`,
/// `target` and `releases`, `--activate`'s `link`), with what they say when it failed.
static MODE_FIELDS: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> =
    std::sync::OnceLock::new();

/// Sets the keys of the run's mode that its failure report carries too (once).
pub fn set_mode_fields(fields: serde_json::Map<String, serde_json::Value>) {
    let _ = MODE_FIELDS.set(fields);
}

/// Prints the one JSON object of a failed `--json` run ([`failure_object`]).
pub fn print_failure_json(object: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", pysfx_format::json_text(object, false));
}

/// The one JSON object of a failed `--json` run: SPEC's keys, the mode's own (see
/// [`set_mode_fields`]), what was `done`, and the error.
pub fn failure_object(
    message: &str,
    code: u8,
    destination: Option<&std::path::Path>,
    python: Option<&str>,
    seconds: f64,
    done: Done,
) -> serde_json::Value {
    let mut object = serde_json::json!({
        "changed": done.changed,
        "link_moved": done.link_moved,
        // SPEC types these as strings: empty when the run failed before it knew them.
        "dest": destination.map(|path| path.to_string_lossy()).unwrap_or_default(),
        "python": python.unwrap_or_default(),
        "python_version": failure::python_version().unwrap_or_default(),
        "wheels_installed": done.wheels_installed,
        "files": done.files,
        "bytes": done.bytes,
        "seconds": seconds,
        "error": message,
        "exit_code": code,
        "pruned": done.pruned,
    });
    if let (Some(fields), Some(object)) = (MODE_FIELDS.get(), object.as_object_mut()) {
        for (key, value) in fields {
            object.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    object
}

/// Prints to stdout, treating a closed pipe as the end of output rather than an error.
pub fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::other(format!("cannot write to stdout: {error}"))),
    }
}
