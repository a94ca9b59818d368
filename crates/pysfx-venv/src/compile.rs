//! Byte-compilation with the venv's own interpreter: a few long-lived workers, each fed paths
//! on stdin. Compile errors are ignored, as pip ignores them (wheels ship Python 2-only test
//! files); the `.pyc` files are not added to RECORD (PEP 491 leaves `__pycache__` to
//! uninstallers).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tracing::debug;

use crate::VenvError;

/// One source file to compile.
#[derive(Debug, Clone)]
pub struct CompileJob {
    /// Where the file is now.
    pub path: PathBuf,
    /// The directory to record as the file's location in the `.pyc` (its final place, so that
    /// tracebacks name the release, not the temporary directory).
    pub display_directory: String,
}

/// Each worker reads `path<TAB>display-directory` lines and answers each with a line when the
/// file is done (for progress). `compileall.compile_file` with `force=True` exists with the same
/// meaning on every CPython from 3.6 (uv's helper passes `invalidation_mode`, which 3.6 lacks).
const WORKER: &str = r#"
import compileall, sys
for line in sys.stdin:
    path, _, directory = line.rstrip("\n").partition("\t")
    compileall.compile_file(path, ddir=directory or None, force=True, quiet=2)
    sys.stdout.write("\n")
    sys.stdout.flush()
"#;

/// Compiles `jobs` with `python` (the venv's interpreter) in `workers` processes.
/// `on_spawn` learns each worker's pid (so a signal handler can stop it); `on_compiled` is
/// called once per file done.
pub fn compile(
    python: &Path,
    jobs: &[CompileJob],
    workers: usize,
    on_spawn: &dyn Fn(u32),
    on_compiled: &(dyn Fn() + Sync),
) -> Result<(), VenvError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let workers = workers.clamp(1, jobs.len());
    let mut children = Vec::new();
    for worker in 0..workers {
        let child = Command::new(python)
            // -I: no environment or user site; -S: no site (the hooks need not run here);
            // -B: the worker's own imports write no byte-code.
            .args(["-I", "-S", "-B", "-c", WORKER])
            .env_remove("SOURCE_DATE_EPOCH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| VenvError::Compile {
                reason: format!("cannot start {}: {error}", python.display()),
            })?;
        on_spawn(child.id());
        let mut input = String::new();
        for job in jobs.iter().skip(worker).step_by(workers) {
            input.push_str(&job.path.to_string_lossy());
            input.push('\t');
            input.push_str(&job.display_directory);
            input.push('\n');
        }
        children.push((child, input));
    }
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = children
            .into_iter()
            .map(|(mut child, input)| {
                let stdin = child.stdin.take();
                let stdout = child.stdout.take();
                let stderr = child.stderr.take();
                // Feed, read progress and read errors on their own threads, so no pipe can
                // fill up and stall the worker.
                let feeder = scope.spawn(move || match stdin {
                    Some(mut stdin) => stdin.write_all(input.as_bytes()).is_ok(),
                    None => false,
                });
                let reader = scope.spawn(move || {
                    if let Some(stdout) = stdout {
                        for line in BufReader::new(stdout).lines() {
                            if line.is_err() {
                                break;
                            }
                            on_compiled();
                        }
                    }
                });
                let errors = scope.spawn(move || {
                    let mut text = String::new();
                    if let Some(mut stderr) = stderr {
                        let _ = stderr.read_to_string(&mut text);
                    }
                    text
                });
                scope.spawn(move || {
                    let fed = feeder.join().unwrap_or(false);
                    let _ = reader.join();
                    let stderr = errors.join().unwrap_or_default();
                    match child.wait() {
                        Ok(status) if status.success() && fed => None,
                        Ok(status) => Some(format!(
                            "a worker exited with {status}: {}",
                            stderr.trim().lines().last().unwrap_or("no message")
                        )),
                        Err(error) => Some(error.to_string()),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| {
                handle
                    .join()
                    .unwrap_or(Some("a worker thread panicked".into()))
            })
            .collect()
    });
    if let Some(reason) = failures.into_iter().next() {
        return Err(VenvError::Compile { reason });
    }
    debug!(files = jobs.len(), workers, "byte-compiled");
    Ok(())
}
