//! The target interpreter and the virtualenv built for it: one query of the interpreter
//! ([`Interpreter::query`]), a venv written natively ([`create_venv`]), the `.pth` hooks
//! ([`write_hooks`]) and byte-compilation with the venv's own interpreter ([`compile`]).

mod compile;
mod hooks;
mod interpreter;
mod venv;

pub use compile::{compile, CompileJob, Compiler, PycFormat, WrittenPyc, INTERPRETER_ENDED};
pub use hooks::{
    app_pth, from_hex, write_hooks, HOOK_MODULE, HOOK_PTH, LOADENV_INIT_PTH, LOADENV_PY,
};
pub use interpreter::{
    on_child, resolve_command, BinaryIdentity, Interpreter, Limits, QUERY_SCRIPT,
    QUERY_TIMEOUT_VARIABLE,
};
pub use venv::{create_venv, pyvenv_cfg, VenvPaths};

use std::path::PathBuf;
use std::process::Command;

/// Held while a child is started and made known (`on_child`, a compiler's `on_spawn`), so that
/// one whose start a signal interrupts is known to whoever stops the children on it.
static SPAWNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds back the start of children until the guard is dropped: the stub's signal receiver
/// holds it while it stops the children it knows and ends the process, so that no child
/// started meanwhile outlives it unknown.
pub fn hold_spawning() -> std::sync::MutexGuard<'static, ()> {
    SPAWNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes `command`'s process start with no signal blocked. The stub blocks SIGINT, SIGTERM and
/// SIGHUP in all its threads (one thread receives them), and a child inherits the mask of the
/// thread that starts it: an interpreter, or what a wrapper script starts before it execs one,
/// would otherwise ignore them for good.
#[allow(unsafe_code)]
pub(crate) fn unblock_signals(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec. It only fills a set on its
    // own stack and calls pthread_sigmask, both async-signal-safe; it allocates nothing and
    // touches no lock.
    unsafe {
        command.pre_exec(|| {
            let none = nix::sys::signal::SigSet::empty();
            nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&none),
                None,
            )
            .map_err(std::io::Error::from)
        })
    }
}

/// What can go wrong with the interpreter or the venv.
#[derive(Debug, thiserror::Error)]
pub enum VenvError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run the interpreter {python}: {source}")]
    NotRunnable {
        python: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{python} is Python {version}; pysfx needs CPython 3.6 or newer")]
    Unsupported { python: String, version: String },
    #[error("{python} is not a usable interpreter: {reason}")]
    BadInterpreter { python: String, reason: String },
    /// `machine`: the interpreter (it hung, ended or answered nonsense) or the machine (no
    /// space or threads left) is at fault, not the install.
    #[error("byte-compilation failed: {reason}")]
    Compile { reason: String, machine: bool },
}
