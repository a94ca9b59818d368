//! Byte-compilation with the venv's own interpreter: a few long-lived workers, each fed source
//! paths on stdin and answering with the marshalled code object. The `.pyc` files are written
//! here, through a [`DiskTree`] (exclusive creates, no link followed), with the header
//! `py_compile` would give them, so they are byte for byte what `compileall` writes. Compile
//! errors are ignored, as pip ignores them (wheels ship Python 2-only test files); the `.pyc`
//! files are not added to RECORD (PEP 491 leaves `__pycache__` to uninstallers).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

use pysfx_tree::{CopyError, CopyOptions, DiskTree, Sink, Stamp, Tree, TreeError};

use crate::{Interpreter, VenvError};

/// The longest file name Linux takes, in bytes.
const NAME_MAX: usize = 255;

/// One source file to compile.
#[derive(Debug, Clone)]
pub struct CompileJob {
    /// The `.py` file, relative to the compiler's root (`/`-separated).
    pub source: String,
    /// The path to record as the file's location in the `.pyc` (its final place, so that
    /// tracebacks name the release, not the temporary directory).
    pub display: String,
}

/// What this interpreter's `.pyc` files are: where they go and how they start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PycFormat {
    /// `importlib.util.MAGIC_NUMBER`.
    pub magic: [u8; 4],
    /// `sys.implementation.cache_tag`, e.g. `cpython-311`.
    pub cache_tag: String,
    /// PEP 552's flags word is in the header (CPython 3.7+).
    pub has_flags: bool,
}

impl PycFormat {
    /// From the interpreter's hex magic number and cache tag; `None` when they are unknown (an
    /// interpreter without a cache tag writes no byte-code).
    pub fn new(magic_hex: &str, cache_tag: Option<&str>, version: (u32, u32)) -> Option<Self> {
        let bytes = (0..magic_hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(magic_hex.get(at..at + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(PycFormat {
            magic: bytes.try_into().ok()?,
            cache_tag: cache_tag?.to_string(),
            has_flags: version >= (3, 7),
        })
    }

    /// The format of `interpreter`'s byte-code.
    pub fn of(interpreter: &Interpreter) -> Option<Self> {
        PycFormat::new(
            &interpreter.magic,
            interpreter.cache_tag.as_deref(),
            interpreter.major_minor(),
        )
    }

    /// `pkg/mod.py` → `pkg/__pycache__/mod.<cache_tag>.pyc`; `None` when the `.pyc` file's
    /// name would be longer than Linux takes (NAME_MAX, 255 bytes: a module name of 240 or
    /// more). Python writes no byte-code for such a module either, and imports it from source.
    pub fn pyc_of(&self, source: &str) -> Option<String> {
        let (directory, file) = match source.rsplit_once('/') {
            Some((directory, file)) => (format!("{directory}/"), file),
            None => (String::new(), source),
        };
        let stem = file.strip_suffix(".py")?;
        let name = format!("{stem}.{}.pyc", self.cache_tag);
        (name.len() <= NAME_MAX).then(|| format!("{directory}__pycache__/{name}"))
    }

    /// The header of a timestamp-based `.pyc` of a source of this mtime and size (each taken
    /// modulo 2³², as `importlib` does).
    pub fn header(&self, mtime: u64, size: u64) -> Vec<u8> {
        let mut header = self.magic.to_vec();
        if self.has_flags {
            header.extend_from_slice(&0u32.to_le_bytes());
        }
        header.extend_from_slice(&(mtime as u32).to_le_bytes());
        header.extend_from_slice(&(size as u32).to_le_bytes());
        header
    }
}

/// Each worker reads `path<TAB>display-path` lines. For each it answers `-` (the file does
/// not compile: skipped) or `<length> <mtime> <size>` and then the marshalled code object of
/// that length. What it compiles and how is `py_compile`'s (the same `compile` call, the
/// source's mtime and size as `importlib` takes them), on every CPython from 3.6.
const WORKER: &str = r#"
import gc, marshal, os, sys
read, out = sys.stdin.buffer.readline, sys.stdout.buffer
# Compiling makes few reference cycles: collect now and then, not every few allocations.
gc.disable()
for done, line in enumerate(iter(read, b"")):
    if done % 1000 == 999:
        gc.collect()
    path, _, display = os.fsdecode(line.rstrip(b"\n")).partition("\t")
    try:
        with open(path, "rb") as source:
            status = os.fstat(source.fileno())
            code = compile(source.read(), display, "exec", dont_inherit=True)
        data = marshal.dumps(code)
    except Exception:
        out.write(b"-\n")
    else:
        out.write(b"%d %d %d\n" % (len(data), int(status.st_mtime), status.st_size))
        out.write(data)
    out.flush()
"#;

/// The workers' string hashes: random, as any interpreter's, or fixed so that set and
/// frozenset constants (marshalled in iteration order) come out the same in every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seed {
    Random,
    Fixed,
}

/// Files each worker holds at a time: it starts on the next while its answer is read.
const IN_FLIGHT: usize = 4;

/// Compiles `jobs` (sources below `root`) with `python` in `workers` processes, with a fixed
/// hash seed (the packer's byte-code: the same sources give the same bytes). `on_spawn` learns
/// each worker's pid (so a signal handler can stop it); `on_compiled` is called once per file
/// done.
pub fn compile(
    python: &Path,
    root: &Path,
    format: &PycFormat,
    jobs: &[CompileJob],
    workers: usize,
    on_spawn: &dyn Fn(u32),
    on_compiled: &(dyn Fn() + Sync),
) -> Result<(), VenvError> {
    if jobs.is_empty() {
        return Ok(());
    }
    std::thread::scope(|scope| {
        let compiler = Compiler::start_workers(
            scope,
            python,
            root,
            format,
            (workers.min(jobs.len()), Seed::Fixed),
            on_spawn,
            on_compiled,
        )?;
        compiler.submit(jobs.to_vec());
        compiler.finish().map(|_| ())
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

/// A `.pyc` file a worker's answer was written to: its path (relative to the compiler's
/// root), its stamp once closed, the SHA-256 of its bytes and its first 16 (the header).
#[derive(Debug, Clone)]
pub struct WrittenPyc {
    pub path: String,
    pub stamp: Stamp,
    pub sha256: [u8; 32],
    pub head: [u8; 16],
}

/// Long-lived compile workers that take files from one queue as they become free, so no
/// worker idles while another has a long list left. Files may be submitted while the workers
/// run.
pub struct Compiler<'scope> {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    handles: Vec<ScopedJoinHandle<'scope, (Option<Failed>, Vec<WrittenPyc>)>>,
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
    /// Starts `workers` (at least one) interpreters on threads of `scope`, compiling sources
    /// below `root` and writing their `.pyc` files there in `format`.
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        python: &Path,
        root: &Path,
        format: &PycFormat,
        workers: usize,
        on_spawn: &dyn Fn(u32),
        on_compiled: &'env (dyn Fn() + Sync),
    ) -> Result<Compiler<'scope>, VenvError> {
        Compiler::start_workers(
            scope,
            python,
            root,
            format,
            (workers, Seed::Random),
            on_spawn,
            on_compiled,
        )
    }

    fn start_workers<'env>(
        scope: &'scope Scope<'scope, 'env>,
        python: &Path,
        root: &Path,
        format: &PycFormat,
        (workers, seed): (usize, Seed),
        on_spawn: &dyn Fn(u32),
        on_compiled: &'env (dyn Fn() + Sync),
    ) -> Result<Compiler<'scope>, VenvError> {
        // Made first, so that a worker that cannot start drops it, which stops those started.
        let mut compiler = Compiler {
            queue: Arc::new((Mutex::new(Queue::default()), Condvar::new())),
            handles: Vec::new(),
        };
        // A `Sink`, as the install writes through: one copy of the tree's code in the stub.
        let tree = Sink::from(DiskTree::new(root));
        for _ in 0..workers.max(1) {
            let mut command = Command::new(python);
            match seed {
                // -I: no environment or user site; -S: no site (the hooks need not run here);
                // -B: the worker's own imports write no byte-code.
                Seed::Random => command.args(["-I", "-S", "-B", "-c", WORKER]),
                // -I would ignore PYTHONHASHSEED too: the environment's PYTHON* variables
                // are removed instead, and the worker's directory leaves sys.path (as -I).
                Seed::Fixed => {
                    for (name, _) in std::env::vars_os() {
                        if name.to_string_lossy().starts_with("PYTHON") {
                            command.env_remove(name);
                        }
                    }
                    let worker = format!("import sys; sys.path[:] = sys.path[1:]\n{WORKER}");
                    command
                        .env("PYTHONHASHSEED", "0")
                        .args(["-s", "-S", "-B", "-c", &worker])
                }
            };
            // Each worker leads a process group: one that hangs is stopped with whatever it
            // started (a wrapper script's own child), which would otherwise hold its pipes.
            let spawning = crate::hold_spawning();
            let child = std::os::unix::process::CommandExt::process_group(
                crate::unblock_signals(&mut command),
                0,
            )
            // Sources are named relative to the root: each open resolves from there, not
            // again through the root's own path (`/proc/self/fd/N` at install).
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| VenvError::Compile {
                reason: format!("cannot start {}: {error}", python.display()),
                machine: true,
            })?;
            on_spawn(child.id());
            drop(spawning);
            let worker = Worker {
                queue: Arc::clone(&compiler.queue),
                tree: tree.fork(),
                format: format.clone(),
                written: Vec::new(),
            };
            // A thread the system will not give (`ulimit -u`) is one worker fewer; its process
            // sees its stdin closed and exits.
            match std::thread::Builder::new()
                .spawn_scoped(scope, move || worker.run(child, on_compiled))
            {
                Ok(handle) => compiler.handles.push(handle),
                Err(error) if compiler.handles.is_empty() => {
                    return Err(VenvError::Compile {
                        reason: format!("cannot start a compile worker's thread: {error}"),
                        machine: true,
                    })
                }
                Err(_) => break,
            }
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

    /// Waits for every file submitted; the first worker's failure is the error. Returns the
    /// `.pyc` files written.
    pub fn finish(mut self) -> Result<Vec<WrittenPyc>, VenvError> {
        {
            let (queue, ready) = &*self.queue;
            lock(queue).closed = true;
            ready.notify_all();
        }
        let mut failure = None;
        let mut written = Vec::new();
        for handle in std::mem::take(&mut self.handles) {
            let (result, files) = handle
                .join()
                .unwrap_or((Some(("a worker thread panicked".into(), false)), Vec::new()));
            failure = failure.or(result);
            written.extend(files);
        }
        match failure {
            Some((reason, machine)) => Err(VenvError::Compile { reason, machine }),
            None => Ok(written),
        }
    }
}

fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The next job if one is waiting; `None` otherwise, or once the queue failed.
fn try_next_job(queue: &(Mutex<Queue>, Condvar)) -> Option<CompileJob> {
    let mut state = lock(&queue.0);
    match state.failed {
        true => None,
        false => state.jobs.pop_front(),
    }
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

/// One worker process and what its answers are written with.
struct Worker {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    tree: Sink,
    format: PycFormat,
    written: Vec<WrittenPyc>,
}

impl Worker {
    /// Runs the worker until the queue ends. Returns why it failed (and whether the machine is
    /// at fault: the interpreter, or no space left), and the files written.
    fn run(
        mut self,
        mut child: Child,
        on_compiled: &(dyn Fn() + Sync),
    ) -> (Option<Failed>, Vec<WrittenPyc>) {
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        // Errors are read on their own thread, so a full pipe cannot stall the worker; they
        // are handed over with a time limit, so that a child the worker left holding the pipe
        // (a wrapper's `setsid` daemon) cannot keep the install waiting for its end.
        let errors = child.stderr.take().and_then(|mut stderr| {
            let said: Said = Arc::default();
            let slot = Arc::clone(&said);
            std::thread::Builder::new()
                .spawn(move || {
                    // Only its last words are told: a worker that floods stderr is not kept.
                    let mut kept = Vec::new();
                    let mut buffer = [0u8; 8192];
                    while let Ok(read @ 1..) = stderr.read(&mut buffer) {
                        kept.extend_from_slice(&buffer[..read]);
                        if kept.len() > 2 * STDERR_KEPT {
                            kept.drain(..kept.len() - STDERR_KEPT);
                        }
                    }
                    let text = String::from_utf8_lossy(&kept).into_owned();
                    let (text_slot, ready) = &*slot;
                    *text_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
                    ready.notify_all();
                })
                .ok()
                .map(|_| said)
        });
        let fed = match (stdin, stdout) {
            (Some(stdin), Some(stdout)) => {
                let answers = Answers {
                    stdout,
                    deadline: std::time::Instant::now(),
                    timeout: answer_timeout(),
                };
                self.feed(stdin, BufReader::new(answers), on_compiled)
            }
            _ => Err(Stop::Worker("no pipe to the worker".into())),
        };
        // The worker exits once its stdin is closed (dropped by `feed`); stop it first if the
        // feeding failed, so it cannot wait on a pipe forever.
        // A worker fed to the end exits on the closed stdin; one that does not within the
        // answer timeout (it never read it: a wrapper's child hangs) is stopped like one that
        // failed, with its process group, whose members hold its pipes.
        // One whose feeding failed may have ended on its own (a crash, the OOM killer): its
        // status and last words say why, so it gets a moment to be reaped before it is
        // stopped.
        let exited = match fed.is_ok() {
            true => wait_bounded(&mut child, answer_timeout()),
            false => wait_bounded(&mut child, Duration::from_millis(500)),
        };
        if exited.is_none() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill();
        }
        let waited = match exited {
            Some(status) => Ok(status),
            None => child.wait(),
        };
        // Once the worker is gone its stderr ends, unless something it started holds it.
        let stderr = errors
            .and_then(|said| {
                let (text, ready) = &*said;
                let text = text.lock().unwrap_or_else(|p| p.into_inner());
                let (mut text, _) = ready
                    .wait_timeout_while(text, STDERR_GRACE, |text| text.is_none())
                    .unwrap_or_else(|p| p.into_inner());
                text.take()
            })
            .unwrap_or_default();
        let fed = match (fed, exited) {
            (Ok(()), None) => Err(Stop::Worker(format!(
                "a compile worker did not exit within {} s of being told there were no more \
                 files (the interpreter hangs; {COMPILE_TIMEOUT_VARIABLE} sets the time, in \
                 seconds)",
                answer_timeout().as_secs()
            ))),
            (fed, _) => fed,
        };
        let outcome = match (waited, fed) {
            // This side failed (a `.pyc` it could not write): how the worker ended once its
            // pipes closed (a broken pipe) is no part of the reason.
            (_, Err(Stop::Install(reason, machine))) => Some((reason, machine)),
            // It ended by itself, failing: the interpreter's fault, named as such.
            (Ok(status), Err(Stop::Worker(reason))) if exited.is_some() && !status.success() => {
                let last = stderr.trim().lines().last().unwrap_or("no message");
                Some((
                    format!("{reason}; {INTERPRETER_ENDED} with {status}: {last}"),
                    true,
                ))
            }
            // It hung, broke its pipes or answered nonsense: the interpreter's fault too.
            (_, Err(Stop::Worker(reason))) => Some((reason, true)),
            (Ok(status), Ok(())) if status.success() => None,
            (Ok(status), Ok(())) => Some((
                format!(
                    "{INTERPRETER_ENDED} with {status}: {}",
                    stderr.trim().lines().last().unwrap_or("no message")
                ),
                true,
            )),
            (Err(error), Ok(())) => Some((error.to_string(), false)),
        };
        if outcome.is_some() {
            let (state, ready) = &*self.queue;
            lock(state).failed = true;
            ready.notify_all();
        }
        (outcome, self.written)
    }

    /// Keeps up to [`IN_FLIGHT`] files with the worker until the queue ends, writing each
    /// answer's `.pyc`. Dropping stdin at the end lets the worker exit.
    fn feed(
        &mut self,
        mut stdin: ChildStdin,
        mut stdout: BufReader<Answers>,
        on_compiled: &(dyn Fn() + Sync),
    ) -> Result<(), Stop> {
        let mut in_flight: VecDeque<CompileJob> = VecDeque::new();
        let mut line = String::new();
        loop {
            while in_flight.len() < IN_FLIGHT {
                // Waits for a job only when the worker has nothing to do.
                let job = match in_flight.is_empty() {
                    true => next_job(&self.queue),
                    false => try_next_job(&self.queue),
                };
                let Some(job) = job else { break };
                let mut request = job.source.clone().into_bytes();
                if request.contains(&b'\n')
                    || request.contains(&b'\t')
                    || job.display.contains('\n')
                {
                    // A name the line protocol cannot carry (a DEST named so): no byte-code.
                    on_compiled();
                    continue;
                }
                request.push(b'\t');
                request.extend_from_slice(job.display.as_bytes());
                request.push(b'\n');
                stdin.write_all(&request).map_err(stopped)?;
                in_flight.push_back(job);
            }
            let Some(job) = in_flight.pop_front() else {
                return Ok(());
            };
            stdin.flush().map_err(stopped)?;
            line.clear();
            // The whole answer (its line and its code) within the time, from now.
            stdout.get_mut().deadline = std::time::Instant::now() + stdout.get_ref().timeout;
            match stdout.read_line(&mut line) {
                Ok(0) => return Err(stopped(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(error) => return Err(stopped(error)),
            }
            if let Some(answer) = read_answer(&line).map_err(stopped)? {
                self.write_pyc(&job, &answer, &mut stdout)?;
            }
            on_compiled();
        }
    }

    /// Writes the `.pyc` of `job`: its header, then the marshalled code streamed from the
    /// worker. One already there is one the wheel ships: it is kept as the wheel has it (the
    /// answer is read and dropped). The digest of the bytes written goes into the release's
    /// stamps, so that `--check` compares it while it is still the file written (a later
    /// release links it, and an edit in place would change both).
    fn write_pyc(
        &mut self,
        job: &CompileJob,
        answer: &Answer,
        stdout: &mut impl Read,
    ) -> Result<(), Stop> {
        let mut code = stdout.take(answer.length);
        let Some(pyc) = self.format.pyc_of(&job.source) else {
            return drain(&mut code, answer.length).map_err(stopped);
        };
        let header = self.format.header(answer.mtime as u64, answer.size);
        let options = CopyOptions::new(0o644);
        let expected = header.len() as u64 + answer.length;
        match self
            .tree
            .copy(&pyc, &mut header.as_slice().chain(&mut code), options)
        {
            Ok(copied) if copied.size != expected => {
                // The worker stopped mid-answer: the install fails, and its tree goes.
                Err(stopped(std::io::ErrorKind::UnexpectedEof.into()))
            }
            Ok(copied) => {
                if let Some(stamp) = copied.stamp {
                    self.written.push(WrittenPyc {
                        path: pyc,
                        stamp,
                        sha256: copied.sha256,
                        head: copied.head,
                    });
                }
                Ok(())
            }
            Err(CopyError::Write(TreeError::PathTaken { .. })) => {
                drain(&mut code, answer.length).map_err(stopped)
            }
            Err(CopyError::Write(error)) => {
                // No space (or quota) left is the machine's; anything else is this install's.
                let machine = matches!(
                    &error,
                    TreeError::Io { source, .. } if matches!(source.raw_os_error(), Some(28 | 122))
                );
                Err(Stop::Install(error.to_string(), machine))
            }
            Err(CopyError::Read(error)) => Err(stopped(error)),
        }
    }
}

/// Why a worker failed, and whether the machine is at fault (the interpreter, or no space).
type Failed = (String, bool);

/// Why feeding a worker stopped.
#[derive(Debug)]
enum Stop {
    /// The worker's side: its pipes broke, it stopped mid-answer or did not answer in time.
    Worker(String),
    /// This side: a `.pyc` could not be written (a full disk, say: the machine's fault, `.1`).
    Install(String, bool),
}

/// Environment variable: how many whole seconds a compile worker may take to answer for one
/// file (60 by default, as uv's; a worker that never answers would hang the install).
pub const COMPILE_TIMEOUT_VARIABLE: &str = "PYSFX_COMPILE_TIMEOUT";

/// `$PYSFX_COMPILE_TIMEOUT` (1 to 86400 whole seconds), else 60; read, and a bad value
/// reported, once per run.
fn answer_timeout() -> Duration {
    static TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        crate::interpreter::seconds_from(
            COMPILE_TIMEOUT_VARIABLE,
            std::env::var_os(COMPILE_TIMEOUT_VARIABLE).as_deref(),
            Duration::from_secs(60),
        )
    })
}

/// The worker's exit status once it exits, waiting `timeout` at most; `None` if it has not.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            _ => return None,
        }
    }
}

/// Waits until the worker's answer can be read, for `timeout` at most.
fn wait_for_answer(stdout: &ChildStdout, timeout: Duration) -> Result<(), String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, wait) {
            Ok(0) if left.is_zero() => {
                return Err(format!(
                    "a compile worker gave no answer for {} s (the interpreter hangs; \
                     {COMPILE_TIMEOUT_VARIABLE} sets the time, in seconds)",
                    timeout.as_secs()
                ))
            }
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            // Readable, closed or failed: the read says which.
            _ => return Ok(()),
        }
    }
}

/// How a failure names a compile worker (the venv's interpreter) that ended on its own (the
/// machine's fault: [`VenvError::Compile`]'s `machine`).
pub const INTERPRETER_ENDED: &str = "the venv's interpreter, compiling, ended";

/// Why feeding a worker failed on its side: its pipes broke, it stopped mid-answer, or it
/// gave no whole answer in time (said as [`Answers`] says it).
fn stopped(error: std::io::Error) -> Stop {
    match error.kind() {
        std::io::ErrorKind::TimedOut => Stop::Worker(error.to_string()),
        _ => Stop::Worker(format!("a worker stopped answering: {error}")),
    }
}

/// What a worker's stderr held, handed over by the thread that read it.
type Said = Arc<(Mutex<Option<String>>, Condvar)>;

/// The most of a worker's stderr kept (its end): its last line is told, at most this long (a
/// line of megabytes is no message).
const STDERR_KEPT: usize = 256;

/// How long a worker's stderr is waited for once the worker is gone.
const STDERR_GRACE: Duration = Duration::from_secs(2);

/// A worker's stdout, each read waiting only until the deadline of the answer being read: an
/// answer must come whole within the timeout, not only its first byte (a worker that stalls
/// mid-answer would hang the install).
struct Answers {
    stdout: ChildStdout,
    deadline: std::time::Instant,
    timeout: Duration,
}

impl Read for Answers {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let left = self
            .deadline
            .saturating_duration_since(std::time::Instant::now());
        wait_for_answer(&self.stdout, left).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "a compile worker gave no answer for {} s (the interpreter hangs; \
                     {COMPILE_TIMEOUT_VARIABLE} sets the time, in seconds)",
                    self.timeout.as_secs()
                ),
            )
        })?;
        self.stdout.read(buffer)
    }
}

/// Reads and drops the `length` bytes of an answer not written.
fn drain(code: &mut impl Read, length: u64) -> std::io::Result<()> {
    match std::io::copy(code, &mut std::io::sink())? == length {
        true => Ok(()),
        false => Err(std::io::ErrorKind::UnexpectedEof.into()),
    }
}

/// A worker's answer for one file: the length of its marshalled code, which follows, and its
/// source's mtime and size.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    length: u64,
    mtime: i64,
    size: u64,
}

/// Parses the line an answer starts with: `None` for a file that does not compile. The code
/// itself is streamed to its file, never held whole: the length is the worker's word, and an
/// interpreter that prints something else must not make the stub allocate it.
fn read_answer(line: &str) -> std::io::Result<Option<Answer>> {
    let line = line.trim_end();
    if line == "-" {
        return Ok(None);
    }
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "an unreadable answer");
    let mut fields = line.split(' ');
    let mut field = || fields.next().ok_or_else(bad);
    let length: u64 = field()?.parse().map_err(|_| bad())?;
    let mtime: i64 = field()?.parse().map_err(|_| bad())?;
    let size: u64 = field()?.parse().map_err(|_| bad())?;
    Ok(Some(Answer {
        length,
        mtime,
        size,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyc_names_and_headers() {
        let link = PycFormat::new("a70d0d0a", Some("cpython-311"), (3, 11)).expect("ok");
        assert_eq!(link.magic, [0xa7, 0x0d, 0x0d, 0x0a]);
        assert_eq!(
            link.pyc_of("lib/python3.11/site-packages/pkg/mod.py")
                .as_deref(),
            Some("lib/python3.11/site-packages/pkg/__pycache__/mod.cpython-311.pyc")
        );
        assert_eq!(
            link.pyc_of("mod.py").as_deref(),
            Some("__pycache__/mod.cpython-311.pyc")
        );
        assert_eq!(link.pyc_of("pkg/data.txt"), None);
        // `.cpython-311.pyc` is 16 bytes: a stem of 239 makes a name of 255, one of 240 none.
        let longest = format!("pkg/{}.py", "m".repeat(239));
        let name = link.pyc_of(&longest).expect("a name of 255 bytes");
        assert_eq!(name.rsplit('/').next().map(str::len), Some(255));
        assert_eq!(link.pyc_of(&format!("pkg/{}.py", "m".repeat(240))), None);
        assert!(PycFormat::new("a70d0d", Some("cpython-311"), (3, 11)).is_none());
        assert!(PycFormat::new("zz0d0d0a", Some("cpython-311"), (3, 11)).is_none());
        assert!(PycFormat::new("a70d0d0a", None, (3, 11)).is_none());
        // The header: magic, PEP 552 flags (3.7+), mtime and size modulo 2³².
        assert_eq!(
            link.header(0x1_0000_0002, 7),
            [0xa7, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0]
        );
        let old = PycFormat::new("330d0d0a", Some("cpython-36"), (3, 6)).expect("ok");
        assert_eq!(
            old.header(u64::MAX, 1),
            [0x33, 0x0d, 0x0d, 0x0a, 255, 255, 255, 255, 1, 0, 0, 0]
        );
    }

    /// A worker that never answers is given up on (the install fails, it does not hang); one
    /// that answers, or exits, is read at once.
    #[test]
    fn a_worker_that_never_answers_is_given_up_on() {
        let spawn = |script: &str| {
            Command::new("sh")
                .args(["-c", script])
                .stdout(Stdio::piped())
                .spawn()
                .expect("sh")
        };
        let mut silent = spawn("sleep 30");
        let started = std::time::Instant::now();
        let stdout = silent.stdout.take().expect("stdout");
        let error = wait_for_answer(&stdout, Duration::from_secs(1)).expect_err("no answer");
        assert!(error.contains("gave no answer for 1 s"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let _ = silent.kill();
        let _ = silent.wait();
        for script in ["echo answer", "exit 0"] {
            let mut child = spawn(script);
            let stdout = child.stdout.take().expect("stdout");
            assert_eq!(wait_for_answer(&stdout, Duration::from_secs(20)), Ok(()));
            let _ = child.wait();
        }
    }

    #[test]
    fn answers_are_streamed_as_they_come() {
        assert_eq!(
            read_answer("3 -1 7\n").expect("read"),
            Some(Answer {
                length: 3,
                mtime: -1,
                size: 7
            })
        );
        assert_eq!(read_answer("-\n").expect("read"), None);
        assert!(read_answer("Python 3.11.7\n").is_err());
        assert!(read_answer("3 1\n").is_err());

        let mut short: &[u8] = b"abc";
        assert!(drain(&mut (&mut short).take(5), 5).is_err());
    }

    #[test]
    fn a_pyc_is_its_header_and_exactly_its_answer() {
        let root = tempfile::tempdir().expect("tempdir");
        let format = PycFormat::new("a70d0d0a", Some("cpython-311"), (3, 11)).expect("format");
        let mut worker = Worker {
            queue: Arc::default(),
            tree: Sink::from(DiskTree::new(root.path())),
            format: format.clone(),
            written: Vec::new(),
        };
        let job = |source: &str| CompileJob {
            source: source.into(),
            display: source.into(),
        };
        let answer = |length| Answer {
            length,
            mtime: 0x1_0000_0005,
            size: 9,
        };
        // The answer's bytes, and no more: what follows is the next answer's.
        let mut stdout: &[u8] = b"CODE-BYTESnext";
        worker
            .write_pyc(&job("pkg/mod.py"), &answer(10), &mut stdout)
            .expect("written");
        assert_eq!(stdout, b"next");
        let pyc = root.path().join("pkg/__pycache__/mod.cpython-311.pyc");
        let mut expected = format.header(0x1_0000_0005, 9);
        expected.extend_from_slice(b"CODE-BYTES");
        assert_eq!(std::fs::read(&pyc).expect("read"), expected);
        assert_eq!(worker.written.len(), 1);
        assert_eq!(worker.written[0].head[..], expected[..16]);
        // Hashed as written: the release's stamps carry it for `--check`.
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&expected).into();
        assert_eq!(worker.written[0].sha256, digest);

        // A `.pyc` the wheel ships is kept, and the answer read past.
        let mut stdout: &[u8] = b"OTHER-CODEnext";
        worker
            .write_pyc(&job("pkg/mod.py"), &answer(10), &mut stdout)
            .expect("kept");
        assert_eq!(stdout, b"next");
        assert_eq!(std::fs::read(&pyc).expect("read"), expected);

        // A worker that stops mid-answer is an error, never a short `.pyc` taken as done.
        let mut stdout: &[u8] = b"SHORT";
        assert!(worker
            .write_pyc(&job("pkg/other.py"), &answer(10), &mut stdout)
            .is_err());
        assert_eq!(worker.written.len(), 1);
    }
}
