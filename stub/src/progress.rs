//! A progress line on stderr, only when stderr is a terminal and the run is not quiet: piped
//! output (Ansible, CI logs) stays plain lines. A ticker thread redraws it; log lines clear it
//! first (see `log`), so the two never share a line.
//!
//! This is the stub's own small line rather than `indicatif`, which would take a twentieth of
//! the stub's size budget (docs/stub.md).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether a progress line is on screen; the log writer clears it before writing.
static SHOWN: AtomicBool = AtomicBool::new(false);

/// The line's state, shared with the ticker.
struct Shared {
    message: Mutex<&'static str>,
    position: AtomicU64,
    length: AtomicU64,
    done: AtomicBool,
    started: Instant,
}

/// The progress line, or nothing.
pub struct Progress {
    shared: Option<Arc<Shared>>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        if quiet || !fancy_terminal() {
            return Progress {
                shared: None,
                ticker: Mutex::new(None),
            };
        }
        let shared = Arc::new(Shared {
            message: Mutex::new(""),
            position: AtomicU64::new(0),
            length: AtomicU64::new(0),
            done: AtomicBool::new(false),
            started: Instant::now(),
        });
        let state = Arc::clone(&shared);
        let ticker = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let mut frame = 0usize;
                while !state.done.load(Ordering::Relaxed) {
                    draw(&state, frame);
                    frame = frame.wrapping_add(1);
                    std::thread::park_timeout(Duration::from_millis(120));
                }
            })
            .ok();
        Progress {
            shared: Some(shared),
            ticker: Mutex::new(ticker),
        }
    }

    /// Starts a phase of `total` steps.
    pub fn phase(&self, message: &'static str, total: u64) {
        if let Some(shared) = &self.shared {
            *shared
                .message
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = message;
            shared.length.store(total, Ordering::Relaxed);
            shared.position.store(0, Ordering::Relaxed);
        }
    }

    pub fn advance(&self, amount: u64) {
        if let Some(shared) = &self.shared {
            shared.position.fetch_add(amount, Ordering::Relaxed);
        }
    }

    pub fn step(&self) {
        self.advance(1);
    }

    /// Stops the ticker and clears the line.
    pub fn finish(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        shared.done.store(true, Ordering::Relaxed);
        let ticker = self
            .ticker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(ticker) = ticker {
            ticker.thread().unpark();
            let _ = ticker.join();
        }
        clear(&mut std::io::stderr().lock());
    }
}

impl pysfx_install::Reporter for Progress {
    fn phase(&self, name: &'static str, total: u64) {
        Progress::phase(self, name, total);
    }

    fn advance(&self, amount: u64) {
        Progress::advance(self, amount);
    }

    fn step(&self) {
        Progress::step(self);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether stderr is a terminal that takes cursor movement (not `TERM=dumb`).
pub fn fancy_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
}

/// Columns of the terminal on stderr, if it says.
#[allow(unsafe_code)]
fn terminal_width() -> Option<usize> {
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a live,
    // writable `winsize`; on failure it writes nothing and returns -1.
    let result = unsafe { nix::libc::ioctl(2, nix::libc::TIOCGWINSZ, &mut size) };
    (result == 0 && size.ws_col > 0).then_some(size.ws_col as usize)
}

/// Clears the progress line if one is shown (the caller holds stderr's lock).
pub fn clear(stderr: &mut impl Write) {
    if SHOWN.swap(false, Ordering::Relaxed) {
        let _ = stderr.write_all(b"\r\x1b[2K");
    }
}

fn draw(state: &Shared, frame: usize) {
    const SPINNER: [char; 4] = ['|', '/', '-', '\\'];
    let message = *state
        .message
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if message.is_empty() {
        return;
    }
    let length = state.length.load(Ordering::Relaxed);
    let position = state.position.load(Ordering::Relaxed).min(length);
    let elapsed = state.started.elapsed().as_secs();
    let spinner = SPINNER[frame % SPINNER.len()];
    let head = format!("{spinner} {message:<12} [");
    let tail = format!("] {position}/{length} {}:{:02}", elapsed / 60, elapsed % 60);
    // One row, never wrapped: a wrapped line cannot be redrawn in place.
    let columns = terminal_width().unwrap_or(80).saturating_sub(1);
    let width = columns.saturating_sub(head.len() + tail.len()).min(30);
    let mut line = if width >= 5 {
        let filled = (position * width as u64).checked_div(length).unwrap_or(0) as usize;
        let mut bar = "=".repeat(filled);
        if filled < width {
            bar.push('>');
            bar.push_str(&" ".repeat(width - filled - 1));
        }
        format!("{head}{bar}{tail}")
    } else {
        format!("{spinner} {message} {position}/{length}")
    };
    if let Some((end, _)) = line.char_indices().nth(columns) {
        line.truncate(end);
    }
    let line = format!("\r\x1b[2K{line}");
    let mut stderr = std::io::stderr().lock();
    if stderr.write_all(line.as_bytes()).is_ok() {
        SHOWN.store(true, Ordering::Relaxed);
    }
    let _ = stderr.flush();
}
