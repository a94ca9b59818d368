//! Byte-compilation with the venv's own interpreter: a few long-lived workers, each fed paths
//! on stdin. Compile errors are ignored, as pip ignores them (wheels ship Python 2-only test
//! files); the `.pyc` files are not added to RECORD (PEP 491 leaves `__pycache__` to
//! uninstallers).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

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
    std::thread::scope(|scope| {
        let compiler = Compiler::start(
            scope,
            python,
            workers.min(jobs.len()),
            on_spawn,
            on_compiled,
        )?;
        compiler.submit(jobs.to_vec());
        compiler.finish()
    })
}

/// Files waiting to be compiled, shared by the workers.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<CompileJob>,
    /// No more jobs will come.
    closed: bool,
    /// A worker failed: the others stop taking jobs.
    failed: bool,
}

/// Long-lived compile workers that take files from one queue as they become free, so the
/// compiling of one batch of wheels overlaps the unpacking of the next and no worker idles
/// while another has a long list left.
pub struct Compiler<'scope> {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    handles: Vec<ScopedJoinHandle<'scope, Option<String>>>,
}

/// A compiler dropped without [`Compiler::finish`] (the install failed) stops its workers:
/// they take no more files and exit, so the scope that runs them can end.
impl Drop for Compiler<'_> {
    fn drop(&mut self) {
        let (queue, ready) = &*self.queue;
        let mut state = lock(queue);
        state.closed = true;
        if !self.handles.is_empty() {
            state.failed = true;
        }
        ready.notify_all();
    }
}

impl<'scope> Compiler<'scope> {
    /// Starts `workers` (at least one) interpreters on threads of `scope`.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        python: &Path,
        workers: usize,
        on_spawn: &dyn Fn(u32),
        on_compiled: &'env (dyn Fn() + Sync),
    ) -> Result<Compiler<'scope>, VenvError> {
        // Made first, so that a worker that cannot start drops it, which stops those started.
        let mut compiler = Compiler {
            queue: Arc::new((Mutex::new(Queue::default()), Condvar::new())),
            handles: Vec::new(),
        };
        for _ in 0..workers.max(1) {
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
            let queue = Arc::clone(&compiler.queue);
            let handle = scope.spawn(move || run_worker(child, &queue, on_compiled));
            compiler.handles.push(handle);
        }
        Ok(compiler)
    }

    /// Adds files to compile.
    pub fn submit(&self, jobs: Vec<CompileJob>) {
        if jobs.is_empty() {
            return;
        }
        let (queue, ready) = &*self.queue;
        lock(queue).jobs.extend(jobs);
        ready.notify_all();
    }

    /// Waits for every file submitted; the first worker's failure is the error.
    pub fn finish(mut self) -> Result<(), VenvError> {
        {
            let (queue, ready) = &*self.queue;
            lock(queue).closed = true;
            ready.notify_all();
        }
        let mut failure = None;
        for handle in std::mem::take(&mut self.handles) {
            let result = handle
                .join()
                .unwrap_or(Some("a worker thread panicked".into()));
            failure = failure.or(result);
        }
        match failure {
            Some(reason) => Err(VenvError::Compile { reason }),
            None => Ok(()),
        }
    }
}

fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The next job, waiting for one; `None` once the queue is closed and empty, or failed.
fn next_job(queue: &(Mutex<Queue>, Condvar)) -> Option<CompileJob> {
    let (state, ready) = queue;
    let mut state = lock(state);
    loop {
        if state.failed {
            return None;
        }
        if let Some(job) = state.jobs.pop_front() {
            return Some(job);
        }
        if state.closed {
            return None;
        }
        state = ready
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

/// One worker: feeds it a file at a time and waits for its answer line. Returns why it failed.
fn run_worker(
    mut child: Child,
    queue: &(Mutex<Queue>, Condvar),
    on_compiled: &(dyn Fn() + Sync),
) -> Option<String> {
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    // Errors are read on their own thread, so a full pipe cannot stall the worker.
    let errors = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        })
    });
    let fed = match (stdin, stdout) {
        (Some(stdin), Some(stdout)) => feed(stdin, BufReader::new(stdout), queue, on_compiled),
        _ => false,
    };
    let stderr = errors
        .and_then(|thread| thread.join().ok())
        .unwrap_or_default();
    let outcome = match child.wait() {
        Ok(status) if status.success() && fed => None,
        Ok(status) => Some(format!(
            "a worker exited with {status}: {}",
            stderr.trim().lines().last().unwrap_or("no message")
        )),
        Err(error) => Some(error.to_string()),
    };
    if outcome.is_some() {
        let (state, ready) = queue;
        lock(state).failed = true;
        ready.notify_all();
    }
    outcome
}

/// Sends the worker one job at a time until the queue ends; false when the worker stopped
/// answering. Dropping stdin at the end lets the worker exit.
fn feed(
    mut stdin: ChildStdin,
    mut stdout: BufReader<ChildStdout>,
    queue: &(Mutex<Queue>, Condvar),
    on_compiled: &(dyn Fn() + Sync),
) -> bool {
    let mut answer = String::new();
    while let Some(job) = next_job(queue) {
        let line = format!(
            "{}\t{}\n",
            job.path.to_string_lossy(),
            job.display_directory
        );
        if stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return false;
        }
        answer.clear();
        match stdout.read_line(&mut answer) {
            Ok(read) if read > 0 => on_compiled(),
            _ => return false,
        }
    }
    true
}
