//! `DEST/pysfx-receipt.json`: what was installed, and how a re-run recognises its own release.

use std::path::Path;

use pysfx_format::Manifest;
use serde::{Deserialize, Serialize};

pub const RECEIPT_NAME: &str = "pysfx-receipt.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    pub pysfx_version: String,
    /// The app's version (`manifest.app.version`), when the artifact recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Hex SHA-256 of the payload (the artifact trailer's digest).
    pub payload_sha256: String,
    pub artifact: String,
    pub installed_at: u64,
    pub destination: String,
    pub python: String,
    pub python_version: String,
    pub wheel_set: String,
    pub wheels: Vec<InstalledWheel>,
    pub files: u64,
    pub bytes: u64,
    pub manifest: Manifest,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstalledWheel {
    pub name: String,
    pub version: String,
    pub filename: String,
}

/// Reads the receipt of an installed release; `None` if there is none or it is unreadable.
pub fn read(destination: &Path) -> Option<Receipt> {
    let text = std::fs::read(destination.join(RECEIPT_NAME)).ok()?;
    serde_json::from_slice(&text).ok()
}
