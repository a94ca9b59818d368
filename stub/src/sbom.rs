//! The SBOMs the packer stored in the payload, copied out: the whole artifact's for `--sbom`,
//! the installed set's into the release as `pysfx-sbom.cdx.json`. The stub never builds one
//! (its size: docs/stub.md), and checks nothing beyond what the payload digest already covers.

use std::path::Path;

use pysfx_format::{installed_only, read_sbom, set_sbom_name, Payload, SBOM_FILE, SBOM_NAME};

use crate::failure::{code, Failure};
use crate::print_stdout;

/// `--sbom`: the artifact's SBOM on stdout, after checking the payload digest (exit 3 when it
/// does not hold, as `--info`).
pub fn print(payload: &mut Payload) -> Result<(), Failure> {
    payload.verify()?;
    match read_sbom(payload, SBOM_NAME)? {
        Some(bytes) => print_stdout(&String::from_utf8_lossy(&bytes)),
        None => Err(Failure::new(
            code::OTHER,
            format!(
                "this artifact holds no SBOM (packed by pysfx {}, before SBOMs were stored); \
                 `pysfx inspect --sbom` makes one from its manifest",
                payload.manifest().pysfx_version
            ),
        )),
    }
}

/// Writes the SBOM of the plan's set into the release being built at `root`, cut to the
/// plan's wheels. An artifact
/// packed before SBOMs were stored has none, and the release gets none.
pub fn write_for_set(
    payload: &mut Payload,
    plan: &pysfx_plan::Plan,
    root: &Path,
) -> Result<(), Failure> {
    let set_name = plan.set_name.as_str();
    let Some(index) = payload
        .manifest()
        .sets
        .iter()
        .position(|set| set.name == set_name)
    else {
        return Ok(());
    };
    let Some(bytes) = read_sbom(payload, &set_sbom_name(index))? else {
        tracing::debug!("the artifact holds no SBOM for set {set_name}");
        return Ok(());
    };
    // Only what this install put there (not a wheel skipped for its Requires-Python, nor
    // another Python's build of a distribution).
    let installed: Vec<&str> = plan.wheels.iter().map(|w| w.sha256.as_str()).collect();
    let bytes = match std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| installed_only(text, &installed))
    {
        Some(cut) => cut.into_bytes(),
        None => bytes,
    };
    let path = root.join(SBOM_FILE);
    pysfx_tree::write_new(&path, &bytes, 0o644)
        .map_err(|error| Failure::io("cannot write", &path, &error))
}
