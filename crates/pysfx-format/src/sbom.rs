//! Where an artifact keeps its software bills of materials (CycloneDX 1.5 JSON, written by the
//! packer): one for the whole artifact, printed by `pysfx inspect --sbom` and `./site.sfx
//! --sbom`, and one per wheel set, which the stub copies into the release it installs as
//! [`SBOM_FILE`]. The stub only copies them out; it never builds one.

use std::io::Read;

use crate::{FormatError, Payload};

/// The SBOM of every wheel of every set.
pub const SBOM_NAME: &str = ".pysfx/sbom.cdx.json";

/// The file a release gets for what was installed there: `DEST/pysfx-sbom.cdx.json`, a name
/// directory scanners (osv-scanner, trivy) pick up.
pub const SBOM_FILE: &str = "pysfx-sbom.cdx.json";

/// A stored SBOM is a small JSON document; anything larger is not one the packer wrote.
const SBOM_LIMIT: u64 = 64 * 1024 * 1024;

/// The payload name of the SBOM of the set at `index` in the manifest's `sets`.
pub fn set_sbom_name(index: usize) -> String {
    format!(".pysfx/sbom/set-{index}.cdx.json")
}

/// The stored SBOM `name`, or `None` when the artifact has none (packed before pysfx wrote
/// them). Read no further than its declared size; refused when it is not JSON, so what is
/// printed or copied cannot carry raw control characters.
pub fn read_sbom(payload: &mut Payload, name: &str) -> Result<Option<Vec<u8>>, FormatError> {
    let path = payload.path().to_path_buf();
    let bad = |reason: String| FormatError::BadManifest {
        path: path.clone(),
        reason: format!("{name}: {reason}"),
    };
    let mut entry = match payload.archive().by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(error) => return Err(bad(error.to_string())),
    };
    let size = entry.size();
    if size > SBOM_LIMIT {
        return Err(bad("implausibly large for an SBOM".into()));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    (&mut entry)
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|error| bad(error.to_string()))?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|error| bad(format!("not JSON: {error}")))?;
    Ok(Some(bytes))
}
