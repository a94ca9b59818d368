//! SIGINT, SIGTERM and SIGHUP while packing: pip is asked to stop (SIGINT, so it removes its
//! own temporary files), then the packer's work directory and half-written output go, and the
//! packer exits 128 + the signal. As in the stub, the signals are blocked everywhere and taken
//! by one thread with `sigwait`. What pip started in turn (a build backend, the `pip install`
//! of a build environment) is stopped too: the packer is its subreaper, so such a process
//! whose parent went is still the packer's descendant, and every descendant is killed before
//! the work directory, which pip's `TMPDIR` is in, is removed.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;

static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Gives SIGCHLD its default action back, whatever the parent left (it is inherited across
/// exec): ignored, the kernel reaps each child at once, and waiting for pip or an interpreter
/// fails (ECHILD). Called before any thread starts.
#[allow(unsafe_code)]
fn default_child_signal() {
    use nix::sys::signal::{signal, SigHandler};
    // SAFETY: SIG_DFL installs no handler code, and no other thread runs yet.
    let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Blocks the signals and starts the thread that handles them. Call first in `main`.
pub fn install() {
    default_child_signal();
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    if set.thread_block().is_err() {
        return;
    }
    // (Linux 3.4 and later; without it, an orphan of pip's is simply not found.)
    let _ = nix::sys::prctl::set_child_subreaper(true);
    std::thread::spawn(move || {
        let Ok(signal) = set.wait() else { return };
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        let children: Vec<u32> = lock(&CHILDREN).clone();
        for pid in &children {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGINT);
        }
        // Give pip a moment to clean up after itself.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && children
                .iter()
                .any(|pid| kill(Pid::from_raw(*pid as i32), None).is_ok())
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        // One still running (a slow machine) is stopped for good, and so is whatever it
        // started, so that nothing writes into the work directory while it goes.
        for pid in &children {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        for pid in descendants() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        // A commit under way (OUT and its signature renamed into place) finishes first; none
        // starts after this (both locks are held until the process ends), so what is said
        // below is what was done, and no file registered below is made after it went.
        let committed_guard = lock(&COMMITTED);
        let committed = committed_guard.clone();
        let paths = lock(&PATHS);
        for path in paths.iter() {
            // The main thread or a child pip did not see the signal yet may still add a file
            // while the tree goes: try again until it is gone (a second at most).
            for _ in 0..100 {
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                };
                if std::fs::symlink_metadata(path).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for directory in lock(&EMPTY_DIRECTORIES).iter().rev() {
            let _ = std::fs::remove_dir(directory);
        }
        match committed {
            Some(output) => eprintln!(
                "pysfx: interrupted by {signal} after {} was written; it is complete",
                output.display()
            ),
            None => eprintln!("pysfx: interrupted by {signal}; nothing was written"),
        }
        std::process::exit(128 + signal as i32);
    });
}

/// Every process descended from this one, by the parent each names in `/proc/PID/stat`.
fn descendants() -> Vec<Pid> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `PID (COMM) STATE PPID …`, where COMM may hold spaces and parentheses.
            let after = stat.rsplit_once(')')?.1;
            let parent = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, parent))
        })
        .collect();
    let mut found = vec![std::process::id() as i32];
    let mut next = 0;
    while let Some(&parent) = found.get(next) {
        next += 1;
        for (pid, _) in parents.iter().filter(|(_, of)| *of == parent) {
            if !found.contains(pid) {
                found.push(*pid);
            }
        }
    }
    found.into_iter().skip(1).map(Pid::from_raw).collect()
}

/// Set once a signal arrived: its handler is cleaning up and will end the process.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Waits for the handler to end the process when a signal arrived (so the main thread neither
/// starts more work, which could bring back what the handler removes, nor exits first).
pub fn checkpoint() {
    while INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `Some(OUT)` once the artifact is in place: a signal then says so, instead of "nothing was
/// written". Held while OUT and its signature are renamed into place.
static COMMITTED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Runs `rename` (putting `output` in place) with a signal's handler held off until it is done;
/// not at all once a signal arrived (the handler is then ending the process, saying nothing
/// was written).
pub fn commit<T>(
    output: &std::path::Path,
    rename: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut committed = loop {
        let guard = lock(&COMMITTED);
        if !INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            break guard;
        }
        drop(guard);
        // The handler ends the process.
        checkpoint();
    };
    let result = rename();
    if result.is_ok() {
        *committed = Some(output.to_path_buf());
    }
    result
}

/// Directories to remove, deepest (the last added) first, if a signal arrives and they are
/// empty then (after [`PATHS`] went).
static EMPTY_DIRECTORIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the directory `path` if a signal arrives and it is empty by then.
pub fn remove_on_signal_if_empty(path: PathBuf) {
    lock(&EMPTY_DIRECTORIES).push(path);
}

/// Removes `path` if a signal arrives.
pub fn remove_on_signal(path: PathBuf) {
    lock(&PATHS).push(path);
}

/// A child process to stop on a signal; forget it with [`child_done`].
pub fn child_started(pid: u32) {
    lock(&CHILDREN).push(pid);
    // Started as the signal came: the handler may have missed it.
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        checkpoint();
    }
}

pub fn child_done(pid: u32) {
    lock(&CHILDREN).retain(|child| *child != pid);
}
