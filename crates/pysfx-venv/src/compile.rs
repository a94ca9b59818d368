//! Byte-compilation with the venv's own interpreter: a few long-lived workers, each fed paths
//! on stdin. Compile errors are ignored, as pip ignores them (wheels ship Python 2-only test
//! files); the `.pyc` files are not added to RECORD (PEP 491 leaves `__pycache__` to
//! uninstallers).

use std::io::Write;
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

/// Each worker reads `path<TAB>display-directory` lines. `compileall.compile_file` with
/// `force=True` exists with the same meaning on every CPython from 3.6 (uv's helper passes
/// `invalidation_mode`, which 3.6 lacks).
const WORKER: &str = r#"
import compileall, sys
for line in sys.stdin:
    path, _, directory = line.rstrip("\n").partition("\t")
    compileall.compile_file(path, ddir=directory or None, force=True, quiet=2)
"#;

/// Compiles `jobs` with `python` (the venv's interpreter) in `workers` processes;
/// `on_spawn` learns each worker's pid (so a signal handler can stop it).
pub fn compile(
    python: &Path,
    jobs: &[CompileJob],
    workers: usize,
    on_spawn: &dyn Fn(u32),
) -> Result<(), VenvError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let workers = workers.clamp(1, jobs.len());
    let mut children = Vec::new();
    for worker in 0..workers {
        let mut child = Command::new(python)
            // -I: no environment or user site; -S: no site (the hooks need not run here);
            // -B: the worker's own imports write no byte-code.
            .args(["-I", "-S", "-B", "-c", WORKER])
            .env_remove("SOURCE_DATE_EPOCH")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
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
        let mut stdin = child.stdin.take().ok_or_else(|| VenvError::Compile {
            reason: "no pipe to the worker".into(),
        })?;
        // Feed on a thread so a worker that fills its stderr cannot deadlock us.
        let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        children.push((child, feeder));
    }
    let mut failure = None;
    for (child, feeder) in children {
        let fed = feeder.join().map_err(|_| VenvError::Compile {
            reason: "the feeding thread panicked".into(),
        })?;
        let output = child
            .wait_with_output()
            .map_err(|error| VenvError::Compile {
                reason: error.to_string(),
            })?;
        if !output.status.success() || fed.is_err() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            failure.get_or_insert(format!(
                "a worker exited with {}: {}",
                output.status,
                stderr.trim().lines().last().unwrap_or("no message")
            ));
        }
    }
    if let Some(reason) = failure {
        return Err(VenvError::Compile { reason });
    }
    debug!(files = jobs.len(), workers, "byte-compiled");
    Ok(())
}
