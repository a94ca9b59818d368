//! The one error type of the binary: a message for the operator and the exit code SPEC.md
//! assigns. Library errors are mapped here, at the edge.

use pysfx_format::FormatError;
use pysfx_install::{io_fault, venv_fault, Fault, InstallError};
use pysfx_venv::VenvError;
use pysfx_wheel::WheelError;

/// Exit codes (SPEC.md, "Exit codes").
pub mod code {
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const CORRUPT: u8 = 3;
    pub const MACHINE: u8 = 4;
    pub const CONFLICT: u8 = 5;
}

/// The interpreter's version once it has been queried, for the failure report of a run that
/// fails after the query.
static PYTHON_VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records the queried interpreter's version (`X.Y.Z`).
pub fn set_python_version(version: String) {
    let _ = PYTHON_VERSION.set(version);
}

/// The version recorded by [`set_python_version`], if any.
pub fn python_version() -> Option<&'static str> {
    PYTHON_VERSION.get().map(String::as_str)
}

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    /// A thin artifact's left-out file was not intact in the release it was taken from: what
    /// was wrong with it.
    pub base_release: Option<String>,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            base_release: None,
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        Failure::new(code::OTHER, message)
    }

    /// An I/O error while writing: no space and no permission are the machine's (4).
    pub fn io(what: &str, path: &std::path::Path, error: &std::io::Error) -> Self {
        Failure::new(
            io_code(error),
            format!("{what} {}: {error}", path.display()),
        )
    }
}

fn io_code(error: &std::io::Error) -> u8 {
    fault_code(io_fault(error))
}

impl From<FormatError> for Failure {
    fn from(error: FormatError) -> Self {
        let code = match &error {
            FormatError::Io { source, .. } => io_code(source),
            _ => code::CORRUPT,
        };
        Failure::new(code, error.to_string())
    }
}

impl From<WheelError> for Failure {
    fn from(error: WheelError) -> Self {
        Failure::new(code::CORRUPT, error.to_string())
    }
}

impl From<VenvError> for Failure {
    fn from(error: VenvError) -> Self {
        Failure::new(fault_code(venv_fault(&error)), error.to_string())
    }
}

impl From<InstallError> for Failure {
    fn from(error: InstallError) -> Self {
        let base_release = match &error {
            InstallError::BaseRelease(reason) => Some(reason.clone()),
            _ => None,
        };
        Failure {
            base_release,
            ..Failure::new(fault_code(error.fault()), error.to_string())
        }
    }
}

/// The exit code of a library error's fault.
fn fault_code(fault: Fault) -> u8 {
    match fault {
        Fault::Content => code::CORRUPT,
        Fault::Machine => code::MACHINE,
        Fault::Other => code::OTHER,
    }
}

impl From<pysfx_plan::PlanError> for Failure {
    fn from(error: pysfx_plan::PlanError) -> Self {
        let code = match &error {
            pysfx_plan::PlanError::NoCompatibleWheel(_)
            | pysfx_plan::PlanError::Unmet(_)
            | pysfx_plan::PlanError::BadInterpreter(_) => code::MACHINE,
            pysfx_plan::PlanError::BadManifest(_) => code::CORRUPT,
        };
        Failure::new(code, error.to_string())
    }
}

impl From<pysfx_release::ReleaseError> for Failure {
    fn from(error: pysfx_release::ReleaseError) -> Self {
        use pysfx_release::ReleaseError;
        let code = match &error {
            ReleaseError::Io { source, .. } => io_code(source),
            ReleaseError::LinkNotSymlink { .. }
            | ReleaseError::LinkParentNotDirectory { .. }
            | ReleaseError::NotARelease { .. }
            | ReleaseError::OtherApp { .. } => code::CONFLICT,
            ReleaseError::NoLink { .. } | ReleaseError::NotCheckable { .. } => code::OTHER,
        };
        Failure::new(code, error.to_string())
    }
}
