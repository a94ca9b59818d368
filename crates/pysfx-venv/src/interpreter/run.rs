//! Running a program within [`Limits`]: a time limit and caps on its output, its pipes read
//! on their own threads, the child killed and reaped when it outlives them.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::warn;

/// Environment variable: how many whole seconds the interpreter query may take.
pub const QUERY_TIMEOUT_VARIABLE: &str = "PYSFX_QUERY_TIMEOUT";

/// How long one run of the interpreter may take and how much of its output is kept. A
/// `--python` that sleeps, or prints without end, is stopped rather than waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The run is killed when it has not exited by then.
    pub timeout: Duration,
    /// The run is killed when it prints more than this on its standard output (the query's
    /// answer is a few kilobytes).
    pub stdout_cap: usize,
    /// The run is killed when it prints more than this on its standard error.
    pub stderr_cap: usize,
}

impl Limits {
    /// The default timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The defaults, with the timeout from `$PYSFX_QUERY_TIMEOUT` (whole seconds) when set.
    pub fn from_env() -> Limits {
        Limits {
            timeout: timeout_from(std::env::var_os(QUERY_TIMEOUT_VARIABLE).as_deref()),
            ..Limits::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Limits::DEFAULT_TIMEOUT,
            stdout_cap: 1 << 20,
            stderr_cap: 64 << 10,
        }
    }
}

/// The timeout a `$PYSFX_QUERY_TIMEOUT` value asks for (see [`seconds_from`]).
pub(super) fn timeout_from(value: Option<&std::ffi::OsStr>) -> Duration {
    seconds_from(QUERY_TIMEOUT_VARIABLE, value, Limits::DEFAULT_TIMEOUT)
}

/// The time the environment variable `variable`, holding `value`, asks for: 1 to 86400 whole
/// seconds; anything else is reported (never echoed: it is the caller's environment) and
/// `default` used.
pub(crate) fn seconds_from(
    variable: &str,
    value: Option<&std::ffi::OsStr>,
    default: Duration,
) -> Duration {
    let Some(value) = value else {
        return default;
    };
    match value
        .to_str()
        .and_then(|text| text.trim().parse::<u64>().ok())
    {
        Some(seconds @ 1..=86_400) => Duration::from_secs(seconds),
        _ => {
            warn!(
                "{variable} is not a whole number of seconds from 1 to 86400; using {}",
                default.as_secs()
            );
            default
        }
    }
}

/// How a bounded run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Exited(ExitStatus),
    /// Killed: still running at the timeout.
    TimedOut,
    /// Killed: printed more than the cap on its standard output (`true`) or error (`false`).
    Overflowed {
        stdout: bool,
    },
}

impl Ending {
    /// Why a run that did not exit is no answer.
    pub(super) fn describe(&self, limits: &Limits) -> String {
        match self {
            Ending::Exited(status) => format!("it exited ({status})"),
            Ending::TimedOut => format!("did not answer within {} s", limits.timeout.as_secs_f64()),
            Ending::Overflowed { stdout: true } => format!(
                "printed more than {} on its standard output",
                size(limits.stdout_cap)
            ),
            Ending::Overflowed { stdout: false } => format!(
                "printed more than {} on its standard error",
                size(limits.stderr_cap)
            ),
        }
    }
}

fn size(bytes: usize) -> String {
    match bytes {
        0 => "0 bytes".to_string(),
        _ if bytes.is_multiple_of(1 << 20) => format!("{} MiB", bytes >> 20),
        _ if bytes.is_multiple_of(1 << 10) => format!("{} KiB", bytes >> 10),
        _ => format!("{bytes} bytes"),
    }
}

/// What a bounded run printed (at most the caps) and how it ended.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) ending: Ending,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// One output pipe, read on its own thread into a buffer of at most `cap` bytes; when the
/// thread stops (the pipe closed, or the cap was passed) it counts itself in `ended` and wakes
/// the thread that started it.
struct Capture {
    buffer: Arc<Mutex<Vec<u8>>>,
    overflowed: Arc<AtomicBool>,
}

impl Capture {
    /// Takes the pipe as a `File` so that one reader serves both streams (the stub's size).
    fn start(
        mut pipe: std::fs::File,
        cap: usize,
        ended: &Arc<AtomicUsize>,
    ) -> std::io::Result<Capture> {
        let (ended, waiting) = (Arc::clone(ended), std::thread::current());
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let overflowed = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (Arc::clone(&buffer), Arc::clone(&overflowed));
        // Not joined: a grandchild may hold the pipe open (see `run_bounded`).
        std::thread::Builder::new()
            .name("pysfx-python-output".into())
            .spawn(move || {
                read_capped(&mut pipe, cap, &shared, &flag);
                ended.fetch_add(1, Ordering::SeqCst);
                waiting.unpark();
            })?;
        Ok(Capture { buffer, overflowed })
    }

    fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// What was read. The reader may still be blocked (a grandchild holding the pipe open);
    /// it is left to finish on its own.
    fn take(self) -> Vec<u8> {
        let mut buffer = self
            .buffer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        std::mem::take(&mut *buffer)
    }
}

/// Reads `pipe` into `shared` until it closes, or until it holds `cap` bytes and more come
/// (`overflowed` is then set; returning closes our end of the pipe, and the caller kills the
/// child).
fn read_capped(
    pipe: &mut std::fs::File,
    cap: usize,
    shared: &Mutex<Vec<u8>>,
    overflowed: &AtomicBool,
) {
    let mut chunk = [0u8; 8192];
    loop {
        let count = match pipe.read(&mut chunk) {
            Ok(0) => return,
            Ok(count) => count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut buffer = shared.lock().unwrap_or_else(|poison| poison.into_inner());
        let room = cap - buffer.len();
        if count > room {
            buffer.extend_from_slice(&chunk[..room]);
            overflowed.store(true, Ordering::Relaxed);
            return;
        }
        buffer.extend_from_slice(&chunk[..count]);
    }
}

/// After the child has ended, how long its output may still take to drain. The pipes close
/// when it exits, unless a process it started still holds them: that one is not our child to
/// kill, so it is not waited for either.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Told of each run's process group as it starts (`true`) and once it is reaped (`false`): the
/// stub kills the groups of runs under way on a signal.
static ON_CHILD: std::sync::OnceLock<fn(u32, bool)> = std::sync::OnceLock::new();

/// Sets what is told of each bounded run: its pid, which is also its process group's, when it
/// starts and when it has been reaped (once; later calls are ignored).
pub fn on_child(hook: fn(u32, bool)) {
    let _ = ON_CHILD.set(hook);
}

fn tell(child: &Child, running: bool) {
    if let Some(hook) = ON_CHILD.get() {
        hook(child.id(), running);
    }
}

/// Spawns `command`, retrying for up to a second while its program is busy (ETXTBSY): a file
/// still open for writing somewhere cannot be executed, and a script just written is, for a
/// moment, also open in any process another thread forked meanwhile (until it execs); so is an
/// interpreter in the middle of being replaced.
fn spawn_past_busy(command: &mut Command) -> std::io::Result<Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(error)
                if error.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32)
                    && attempts < 50 =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            spawned => return spawned,
        }
    }
}

/// Runs `program arguments` with no stdin, in a process group of its own, killing that group
/// (a wrapper script and what it started too) and reaping the child when it outlives
/// `limits.timeout` or prints more than the caps. Only spawning can fail.
pub(crate) fn run_bounded(
    program: &str,
    arguments: &[&str],
    limits: Limits,
) -> std::io::Result<Run> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    crate::unblock_signals(&mut command)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = {
        let _spawning = crate::hold_spawning();
        let child = spawn_past_busy(&mut command)?;
        tell(&child, true);
        child
    };
    let ended = Arc::new(AtomicUsize::new(0));
    let captures = (|| {
        let stdout = child
            .stdout
            .take()
            .map(|pipe| Capture::start(OwnedFd::from(pipe).into(), limits.stdout_cap, &ended));
        let stderr = child
            .stderr
            .take()
            .map(|pipe| Capture::start(OwnedFd::from(pipe).into(), limits.stderr_cap, &ended));
        Ok::<_, std::io::Error>((stdout.transpose()?, stderr.transpose()?))
    })();
    let (stdout, stderr) = match captures {
        Ok(captures) => captures,
        Err(error) => {
            stop(&mut child);
            return Err(error);
        }
    };
    // A reader that passed its cap closes its pipe, so the child may die of SIGPIPE before
    // it is killed: the overflow is still the reason it ended.
    let overflow = || {
        if stdout.as_ref().is_some_and(Capture::overflowed) {
            Some(Ending::Overflowed { stdout: true })
        } else if stderr.as_ref().is_some_and(Capture::overflowed) {
            Some(Ending::Overflowed { stdout: false })
        } else {
            None
        }
    };
    let deadline = Instant::now().checked_add(limits.timeout);
    let mut waiter = Waiter {
        ended,
        seen: 0,
        pipes: usize::from(stdout.is_some()) + usize::from(stderr.is_some()),
        pause: Duration::from_millis(1),
    };
    let ending = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                tell(&child, false);
                break overflow().unwrap_or(Ending::Exited(status));
            }
            Ok(None) => {}
            Err(error) => {
                stop(&mut child);
                return Err(error);
            }
        }
        let timed_out = || deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if let Some(ending) = overflow().or_else(|| timed_out().then_some(Ending::TimedOut)) {
            stop(&mut child);
            break ending;
        }
        waiter.wait();
    };
    // Each reader counts itself once it has read all it will (and wakes this thread): a
    // reader's own end is not waited for (looking every 5 ms whether its thread had finished
    // cost the query that much, most times).
    let drained_by = Instant::now() + DRAIN_GRACE;
    let drained = || waiter.ended.load(Ordering::SeqCst) >= waiter.pipes;
    while !drained() && Instant::now() < drained_by {
        std::thread::park_timeout(Duration::from_millis(5));
    }
    // A pipe still open after the grace is held by what the child started (a wrapper's
    // daemon), in its process group: that goes too, answer or not.
    if !drained() {
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    Ok(Run {
        ending,
        stdout: stdout.map(Capture::take).unwrap_or_default(),
        stderr: stderr.map(Capture::take).unwrap_or_default(),
    })
}

/// Waits between two looks at a running child: until one of its pipes closes (it closes them
/// as it exits), or a pause passes, short first and doubling (the query usually answers within
/// a few tens of milliseconds).
struct Waiter {
    /// How many pipes have closed, counted by their readers (which wake this thread).
    ended: Arc<AtomicUsize>,
    seen: usize,
    pipes: usize,
    pause: Duration,
}

impl Waiter {
    fn wait(&mut self) {
        if self.seen < self.pipes {
            // A wake-up from before the park is kept: it returns at once.
            std::thread::park_timeout(self.pause);
        } else {
            std::thread::sleep(self.pause);
        }
        let ended = self.ended.load(Ordering::SeqCst);
        if ended > self.seen {
            // The child is exiting: it is looked at again at once, then soon.
            self.seen = ended;
            self.pause = Duration::from_millis(1);
        } else {
            self.pause = (self.pause * 2).min(Duration::from_millis(25));
        }
    }
}

/// Kills the child's process group and reaps the child (it may have exited meanwhile: the
/// errors are then moot).
fn stop(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    tell(child, false);
}
