//! The target interpreter and the virtualenv built for it: one query of the interpreter
//! ([`Interpreter::query`]), a venv written natively ([`create_venv`]), the `.pth` hooks
//! ([`write_hooks`]) and byte-compilation with the venv's own interpreter ([`compile`]).

mod compile;
mod hooks;
mod interpreter;
mod venv;

pub use compile::{compile, CompileJob, Compiler, PycFormat, WrittenPyc};
pub use hooks::{app_pth, write_hooks, HOOK_MODULE, HOOK_PTH, LOADENV_INIT_PTH, LOADENV_PY};
pub use interpreter::{
    on_child, BinaryIdentity, Interpreter, Limits, QUERY_SCRIPT, QUERY_TIMEOUT_VARIABLE,
};
pub use venv::{create_venv, pyvenv_cfg, VenvPaths};

use std::path::PathBuf;

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
    #[error("byte-compilation failed: {reason}")]
    Compile { reason: String },
}
