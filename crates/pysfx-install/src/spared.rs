//! A stored wheel (or byte-code bundle) the payload check left unread
//! (`Payload::verify_sparing`): its files are linked from a release beside DEST that installed
//! the very same wheel, so the install need not read its bytes. What it does read of it is
//! held to the manifest on the way: a wheel's RECORD to the manifest's digest of it and
//! METADATA, WHEEL and `entry_points.txt` to RECORD (see `wheel::prepare`); and before any
//! file of it is unpacked (one the release beside no longer holds intact, or on another
//! filesystem), the whole wheel or bundle to its SHA-256, once.

use std::fs::File;
use std::sync::{Arc, Mutex};

use pysfx_format::{Section, WheelEntry};

use crate::{BundleJob, InstallError};

/// A wheel or bundle left unread by the payload check, and whether its bytes were found right
/// since.
#[derive(Debug)]
pub struct SparedWheel {
    file: Arc<File>,
    range: (u64, u64),
    wheel: String,
    sha256: String,
    /// A wheel's RECORD's (none for a bundle).
    record_sha256: Option<String>,
    /// What hashing it found, once it was hashed.
    checked: Mutex<Option<Result<(), Failed>>>,
}

impl SparedWheel {
    /// The wheel `entry` describes, stored at `range` of `file`; `None` when the manifest
    /// gives no digest of its RECORD (such a wheel is never spared).
    pub(crate) fn new(file: &Arc<File>, range: (u64, u64), entry: &WheelEntry) -> Option<Self> {
        entry.record_sha256.as_ref()?;
        Some(SparedWheel {
            file: Arc::clone(file),
            range,
            wheel: entry.filename.clone(),
            sha256: entry.sha256.clone(),
            record_sha256: entry.record_sha256.clone(),
            checked: Mutex::new(None),
        })
    }

    /// The byte-code bundle `job` of wheel `wheel`.
    pub(crate) fn bundle(file: &Arc<File>, job: &BundleJob, wheel: &str) -> Self {
        SparedWheel {
            file: Arc::clone(file),
            range: job.range,
            wheel: format!("the byte-code of {wheel}"),
            sha256: job.sha256.clone(),
            record_sha256: None,
            checked: Mutex::new(None),
        }
    }

    /// The manifest's digest of the wheel's RECORD (hex).
    pub(crate) fn record_sha256(&self) -> Option<&str> {
        self.record_sha256.as_deref()
    }

    /// Hashes the whole wheel, the first time, and fails when it is not the manifest's.
    pub(crate) fn check(&self) -> Result<(), InstallError> {
        // Held while the wheel is hashed: another thread wanting it waits for the answer.
        let mut checked = (self.checked.lock()).unwrap_or_else(|poisoned| poisoned.into_inner());
        let checked = checked.get_or_insert_with(|| {
            let (start, len) = self.range;
            match pysfx_format::sha256_reader(Section::new(&self.file, start, len)) {
                Ok((digest, read)) if read == len => match pysfx_format::hex(&digest) {
                    actual if actual == self.sha256 => Ok(()),
                    actual => Err(Failed::Differs(actual)),
                },
                Ok(_) => Err(Failed::Read(
                    std::io::ErrorKind::UnexpectedEof,
                    String::new(),
                )),
                Err(error) => Err(Failed::Read(error.kind(), error.to_string())),
            }
        });
        match checked {
            Ok(()) => Ok(()),
            Err(Failed::Differs(actual)) => Err(InstallError::Corrupt(format!(
                "{}: its SHA-256 in the payload is {actual}, the manifest says {}",
                self.wheel, self.sha256
            ))),
            Err(Failed::Read(kind, text)) => Err(InstallError::Read {
                path: self.wheel.clone().into(),
                source: match text.is_empty() {
                    true => std::io::Error::from(*kind),
                    false => std::io::Error::new(*kind, text.clone()),
                },
            }),
        }
    }
}

/// Why a spared wheel was found wrong.
#[derive(Debug)]
enum Failed {
    /// Its SHA-256 (hex) is another than the manifest's.
    Differs(String),
    Read(std::io::ErrorKind, String),
}
