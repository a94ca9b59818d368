//! The install's one error type. Each variant says whose fault it is, so the binaries map it to
//! an exit code without reading its text (see [`InstallError::fault`]).

use std::path::PathBuf;

use pysfx_format::FormatError;
use pysfx_tree::TreeError;
use pysfx_venv::VenvError;
use pysfx_wheel::WheelError;

/// Whose fault an error is: SPEC.md's exit codes 3, 4 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The artifact is corrupt or its content unsafe (exit 3).
    Content,
    /// This machine can't take it: no space, no permission, no usable interpreter (exit 4).
    Machine,
    /// Anything else (exit 1).
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A wheel is invalid or unsafe.
    #[error(transparent)]
    Wheel(#[from] WheelError),
    /// A write was refused (a path taken: the content's fault) or failed (the machine's).
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The payload could not be read or is corrupt.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The interpreter, the venv's files or byte-compiling failed.
    #[error(transparent)]
    Venv(#[from] VenvError),
    /// The payload's content is corrupt or unsafe; the text says what and where.
    #[error("{0}")]
    Corrupt(String),
    /// A thin artifact's left-out file could not be taken from the release beside DEST: it is
    /// missing or changed there (exit 4: this machine lacks what the artifact needs).
    #[error("{0}; this thin artifact needs an intact release holding it beside DEST, or the full artifact")]
    BaseRelease(String),
    /// A file would have a path longer than Linux takes (PATH_MAX) under this DEST (exit 4).
    #[error("{0}")]
    PathTooLong(String),
    /// A bug: the install's own parts disagree.
    #[error("internal error: {0}")]
    Internal(String),
    /// Reading the artifact failed.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl InstallError {
    pub fn fault(&self) -> Fault {
        match self {
            InstallError::Wheel(_) | InstallError::Corrupt(_) => Fault::Content,
            InstallError::Tree(TreeError::PathTaken { .. }) => Fault::Content,
            InstallError::Tree(TreeError::Io { source, .. })
            | InstallError::Read { source, .. } => io_fault(source),
            InstallError::Format(FormatError::Io { source, .. }) => io_fault(source),
            InstallError::Format(_) => Fault::Content,
            InstallError::Venv(error) => venv_fault(error),
            InstallError::BaseRelease(_) | InstallError::PathTooLong(_) => Fault::Machine,
            InstallError::Internal(_) => Fault::Other,
        }
    }
}

/// An I/O error: no space and no permission are the machine's.
pub fn io_fault(error: &std::io::Error) -> Fault {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::PermissionDenied | ErrorKind::StorageFull | ErrorKind::ReadOnlyFilesystem => {
            Fault::Machine
        }
        // ENOSPC, EDQUOT, EFBIG (a file-size limit: `ulimit -f`)
        _ if matches!(error.raw_os_error(), Some(28) | Some(122) | Some(27)) => Fault::Machine,
        _ => Fault::Other,
    }
}

/// The interpreter's errors are the machine's; so is a failed compile whose interpreter hung,
/// ended or answered nonsense, or that ran out of space or threads (the compiler says which).
pub fn venv_fault(error: &VenvError) -> Fault {
    match error {
        VenvError::Io { source, .. } => io_fault(source),
        VenvError::NotRunnable { .. }
        | VenvError::Unsupported { .. }
        | VenvError::BadInterpreter { .. } => Fault::Machine,
        VenvError::Compile { machine: true, .. } => Fault::Machine,
        VenvError::Compile { .. } => Fault::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compile_the_machine_failed_is_the_machines() {
        let error = |machine| VenvError::Compile {
            reason: "writing lib/x/__pycache__/y.cpython-311.pyc".into(),
            machine,
        };
        assert_eq!(venv_fault(&error(true)), Fault::Machine);
        assert_eq!(venv_fault(&error(false)), Fault::Other);
    }
}
