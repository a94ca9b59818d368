//! SIGINT, SIGTERM and SIGHUP during a run: for an install, remove the temporary tree and stop
//! the byte-compile workers; for every run, say how it ended (one line, and with `--json` one
//! object) and exit 128 + N. The signals are blocked in every thread and received
//! by one thread with `sigwait`, so no code runs in a signal handler. (Child processes start
//! with none blocked: `pysfx_venv` unblocks them between fork and exec, since the standard
//! library's spawn leaves the mask as the spawning thread has it.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;

/// Trees to remove if a signal arrives, and child processes to stop.
static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// For a tree held by a descriptor, the path that reaches it (`/proc/self/fd/N`): it is
/// removed through that, never by its name (see `crate::held`).
static HELD: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// What the failure report of an interrupted run names (see [`set_failure_report`]).
static REPORT: OnceLock<FailureReport> = OnceLock::new();
/// Whether the release is in place (a signal then interrupts `--link` or `--keep`).
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Whether this run installed it, and whether it moved LINK: what `changed` then says.
static INSTALLED_NOW: AtomicBool = AtomicBool::new(false);
static LINK_MOVED: AtomicBool = AtomicBool::new(false);
/// The releases `--keep` removed, once it has.
static PRUNED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// What the run does when it is not an install (`--check`, `--status`, …): the message of a
/// signal that ends it names it.
static ACTIVITY: OnceLock<&'static str> = OnceLock::new();
/// Who reports how the run ended (stdout, exit code): [`NOBODY`] yet, the main thread as it
/// finishes ([`MAIN`]), or a signal as it ends the run ([`SIGNAL`]). Only one of them does.
static REPORTING: AtomicU8 = AtomicU8::new(NOBODY);
const NOBODY: u8 = 0;
const MAIN: u8 = 1;
const SIGNAL: u8 = 2;

struct FailureReport {
    json: bool,
    destination: Option<PathBuf>,
    python: String,
    /// When the run began (the report's `seconds`).
    started: std::time::Instant,
}

/// Records whether the run promised one JSON object on stdout (`--json`), and the DEST and
/// interpreter that object names if a signal ends the run.
pub fn set_failure_report(json: bool, destination: Option<PathBuf>, python: String) {
    let _ = REPORT.set(FailureReport {
        json,
        destination,
        python,
        started: std::time::Instant::now(),
    });
}

/// Sets the two dispositions a run depends on, whatever the parent left (they are inherited
/// across exec). SIGXFSZ, which the kernel sends a write past the file-size limit (`ulimit
/// -f`), is ignored, so that the write fails with EFBIG instead: reported and cleaned up like
/// a full disk. SIGCHLD gets its default back: ignored (some supervisors leave it so), the
/// kernel reaps each child at once and waiting for the interpreter's answer fails (ECHILD).
#[allow(unsafe_code)]
pub fn set_dispositions() {
    use nix::sys::signal::{signal, SigHandler};
    // SAFETY: SIG_IGN and SIG_DFL install no handler code; called once, before any thread
    // starts.
    let _ = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) };
    let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
}

/// Names what a run that is not an install does (`--check`), for the message of a signal
/// that ends it.
pub fn set_activity(activity: &'static str) {
    let _ = ACTIVITY.set(activity);
}

/// Blocks the signals in this thread (and the threads it starts) and starts the receiver,
/// which stops every bounded run under way (an interpreter's query, whatever the command).
/// Call before starting any other thread; later calls do nothing.
pub fn install() {
    static INSTALLED_ONCE: std::sync::Once = std::sync::Once::new();
    INSTALLED_ONCE.call_once(|| {
        pysfx_venv::on_child(track_run);
        receive_signals();
    });
}

fn receive_signals() {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    if set.thread_block().is_err() {
        return;
    }
    // Without a thread to take them (`ulimit -u`), the signals keep their default action.
    let receiver = std::thread::Builder::new().spawn(move || {
        let Ok(signal) = set.wait() else { return };
        // The run is already reporting how it ended: it finishes, and the signal is moot.
        if REPORTING
            .compare_exchange(NOBODY, SIGNAL, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        // Holding the lock keeps a rename into place from racing with the removal.
        let trees = CLEANUP
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Held until the process ends: a child being started now is known before it is
        // stopped, and none starts after.
        let _spawning = pysfx_venv::hold_spawning();
        for pid in CHILDREN
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            // A bounded run (the interpreter's query) leads a process group of its own.
            let _ = nix::sys::signal::killpg(Pid::from_raw(*pid as i32), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
        }
        // The install's writers write through descriptors: they are stopped, not outrun.
        pysfx_tree::stop_writing();
        let held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (index, tree) in trees.iter().enumerate() {
            if let Some((_, reach)) = held.iter().find(|(name, _)| name == tree) {
                crate::held::empty_and_remove(tree, reach);
                continue;
            }
            // Move the tree out of the way first: install threads still running can then no
            // longer add to it (they create directories only below the tree's root).
            let trash = trash_name(tree, index);
            let doomed = if std::fs::rename(tree, &trash).is_ok() {
                trash
            } else {
                tree.clone()
            };
            // A write already under way when the tree moved may still land in it; try again
            // until it is gone (bounded: a second at most).
            for _ in 0..100 {
                if pysfx_release::remove::remove_dir_all(&doomed).is_ok() || !doomed.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        let message = match (INSTALLED.load(Ordering::SeqCst), trees.is_empty()) {
            (true, _) => format!(
                "interrupted by {signal} after the release was installed in DEST; what \
                 follows (the replaced release's removal, --link, --keep) may not have \
                 finished: run it again to finish it"
            ),
            (false, false) => format!(
                "interrupted by {signal}; removed the unfinished release, nothing was installed"
            ),
            // Before the install began (the lock, the interpreter's query, the checks).
            (false, true) => match ACTIVITY.get() {
                None => format!(
                    "interrupted by {signal} before the install began; nothing was installed"
                ),
                Some(activity) if LINK_MOVED.load(Ordering::SeqCst) => {
                    format!("interrupted by {signal} during {activity}, once LINK was moved")
                }
                Some(activity) => {
                    format!("interrupted by {signal} during {activity}; nothing was changed")
                }
            },
        };
        tracing::error!("{message}");
        let code = 128 + signal as i32;
        if let Some(report) = REPORT.get().filter(|report| report.json) {
            crate::output::print_failure_json(&crate::output::failure_object(
                &message,
                code as u8,
                report.destination.as_deref(),
                Some(&report.python),
                report.started.elapsed().as_secs_f64(),
                done(),
            ));
        }
        std::process::exit(code);
    });
    if receiver.is_err() {
        let _ = set.thread_unblock();
    }
}

/// Whether a signal is ending the run: its thread then waits for the registry (see
/// [`with_registry`]), which the lock does not hand it first; a step that begins after it
/// (the next release `--keep` removes) is not to begin.
pub fn ending() -> bool {
    REPORTING.load(Ordering::SeqCst) == SIGNAL
}

/// Runs `action` while holding the cleanup registry, so a signal cannot interleave with it.
pub fn with_registry<T>(action: impl FnOnce(&mut Vec<PathBuf>) -> T) -> T {
    let mut trees = CLEANUP
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    action(&mut trees)
}

/// Records that the release is in place, installed by this run (`now`) or before it: call
/// holding the registry (see [`with_registry`]).
pub fn mark_installed(now: bool) {
    INSTALLED.store(true, Ordering::SeqCst);
    if now {
        INSTALLED_NOW.store(true, Ordering::SeqCst);
    }
}

/// What this run installed (wheels, files, bytes), for a failure report after the release
/// is in place (`--link` or `--keep` failing, or a signal then).
static INSTALLED_TOTALS: Mutex<(usize, u64, u64)> = Mutex::new((0, 0, 0));

/// Records [`INSTALLED_TOTALS`].
pub fn set_installed_totals(wheels: usize, files: u64, bytes: u64) {
    *INSTALLED_TOTALS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = (wheels, files, bytes);
}

/// Set when the run put back a release an interrupted `--force` had moved aside: DEST changed
/// (missing before), whatever the run does next.
static RESTORED: AtomicBool = AtomicBool::new(false);

/// Records that the run put DEST's release back ([`RESTORED`]).
pub fn mark_restored() {
    RESTORED.store(true, Ordering::SeqCst);
}

/// What the run changed before it failed or a signal stopped it.
pub fn done() -> crate::output::Done {
    let link_moved = LINK_MOVED.load(Ordering::SeqCst);
    let pruned = PRUNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let installed_now = INSTALLED_NOW.load(Ordering::SeqCst);
    let (wheels_installed, files, bytes) = match installed_now {
        true => *INSTALLED_TOTALS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
        false => (0, 0, 0),
    };
    crate::output::Done {
        wheels_installed,
        files,
        bytes,
        changed: INSTALLED_NOW.load(Ordering::SeqCst)
            || RESTORED.load(Ordering::SeqCst)
            || link_moved
            || !pruned.is_empty(),
        link_moved,
        pruned,
    }
}

/// Records one release `--keep` removed, as it is removed: call holding the registry.
pub fn add_pruned(release: &std::path::Path) {
    PRUNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(release.to_path_buf());
}

/// Claims the closing report for the main thread, which then prints its result and exits
/// with its code. A signal that claimed it first is ending the run with its own report: this
/// thread waits for that exit.
pub fn report_or_wait() {
    match REPORTING.compare_exchange(NOBODY, MAIN, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) | Err(MAIN) => {}
        Err(_) => loop {
            std::thread::park();
        },
    }
}

/// Records that LINK was repointed at DEST.
pub fn mark_link_moved(moved: bool) {
    LINK_MOVED.store(moved, Ordering::SeqCst);
}

/// Registers a tree to remove on a signal.
pub fn register(tree: PathBuf) {
    with_registry(|trees| trees.push(tree));
}

/// Forgets a tree (it has been renamed into place or removed).
pub fn unregister(tree: &std::path::Path) {
    with_registry(|trees| trees.retain(|registered| registered != tree));
    HELD.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .retain(|(name, _)| name != tree);
}

/// Says that the registered tree `name` is held by a descriptor that `reach` leads to.
pub fn hold(name: &std::path::Path, reach: &std::path::Path) {
    let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    held.retain(|(held, _)| held != name);
    held.push((name.to_path_buf(), reach.to_path_buf()));
}

/// Registers a bounded run's process group to stop on a signal (`running`), or forgets it once
/// reaped (its pid may then be reused).
pub fn track_run(pid: u32, running: bool) {
    let mut children = CHILDREN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match running {
        true => children.push(pid),
        false => children.retain(|child| *child != pid),
    }
}

/// Registers a child process to stop on a signal.
pub fn register_child(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(pid);
}

/// `.<name>.pysfx-tmp-<pid>` → `.<name>.pysfx-tmp-<pid>-trash<index>`: still recognisably
/// ours, so the next run removes it if this one dies before it has.
fn trash_name(tree: &std::path::Path, index: usize) -> PathBuf {
    let name = tree
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    tree.with_file_name(format!("{name}-trash{index}"))
}
