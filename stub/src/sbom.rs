//! The SBOMs the packer stored in the payload, copied out: the whole artifact's for `--sbom`,
//! the installed set's into the release as `pysfx-sbom.cdx.json`. The stub never builds one
//! from nothing (its size: docs/stub.md); it reads each back as pysfx writes it and holds it
//! to the manifest (`pysfx_plan::sbom`), and cuts the set's to what was installed.

use std::path::Path;

use pysfx_format::{read_sbom, set_sbom_name, Payload, WheelEntry, SBOM_FILE, SBOM_NAME};

use crate::failure::{code, Failure};
use crate::print_stdout;

/// `--sbom`: the artifact's SBOM on stdout, after checking the payload digest (exit 3 when it
/// does not hold, as `--info`) and that it lists every wheel of the manifest as the packer
/// does.
pub fn print(payload: &mut Payload) -> Result<(), Failure> {
    payload.verify()?;
    all_stored(payload)?;
    match read_sbom(payload, SBOM_NAME)? {
        Some(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            match pysfx_plan::sbom::check_stored(payload.manifest(), None, &text) {
                Ok(_) => print_stdout(&text),
                Err(reason) => Err(corrupt(payload, SBOM_NAME, &reason)),
            }
        }
        None => Err(Failure::new(
            code::OTHER,
            format!(
                "this artifact holds no SBOM (packed by a pysfx {} from before SBOMs were \
                 stored, or taken out since); `pysfx inspect --sbom` makes one from its manifest",
                payload.manifest().pysfx_version
            ),
        )),
    }
}

/// An artifact stores all its SBOMs or none (packed before pysfx stored them): one missing
/// beside the others was taken out.
fn all_stored(payload: &mut Payload) -> Result<bool, Failure> {
    pysfx_plan::sbom::all_stored(payload).map_err(|reason| {
        Failure::new(
            code::CORRUPT,
            format!("{}: {reason}", payload.path().display()),
        )
    })
}

/// The SBOM a release of the plan's set gets, read before anything is written: the set's
/// stored SBOM cut to the plan's wheels, each of which it must list (exit 3 otherwise: a
/// release's SBOM never hides what is installed). `None` for an artifact packed before SBOMs
/// were stored: the release gets none.
pub fn for_set(payload: &mut Payload, plan: &pysfx_plan::Plan) -> Result<Option<Vec<u8>>, Failure> {
    let set_name = plan.set_name.as_str();
    let Some(index) = payload
        .manifest()
        .sets
        .iter()
        .position(|set| set.name == set_name)
    else {
        return Ok(None);
    };
    if !all_stored(payload)? {
        tracing::debug!("the artifact holds no SBOMs");
        return Ok(None);
    }
    // The whole artifact's too, which the release does not get: an artifact whose SBOM is not
    // its own is refused here as by `--sbom` and `verify`, whatever it installs.
    if let Some(bytes) = read_sbom(payload, SBOM_NAME)? {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(reason) = pysfx_plan::sbom::check_stored(payload.manifest(), None, &text) {
            return Err(corrupt(payload, SBOM_NAME, &reason));
        }
    }
    let name = set_sbom_name(index);
    let Some(bytes) = read_sbom(payload, &name)? else {
        return Ok(None);
    };
    // Only what this install puts there (not a wheel skipped for its Requires-Python, nor
    // another Python's build of a distribution).
    let installed: Vec<&WheelEntry> = plan.wheels.iter().collect();
    let text = String::from_utf8_lossy(&bytes);
    match pysfx_plan::sbom::for_release(payload.manifest(), index, &text, &installed) {
        Ok(text) => Ok(Some(text.into_bytes())),
        Err(reason) => Err(corrupt(payload, &name, &reason)),
    }
}

/// Writes a release's SBOM (from [`for_set`]) into the release being built at `root`.
pub fn write(sbom: Option<&[u8]>, root: &Path) -> Result<(), Failure> {
    let Some(bytes) = sbom else {
        return Ok(());
    };
    let path = root.join(SBOM_FILE);
    pysfx_tree::write_new(&path, bytes, 0o644)
        .map_err(|error| Failure::io("cannot write", &path, &error))
}

fn corrupt(payload: &Payload, name: &str, reason: &str) -> Failure {
    Failure::new(
        code::CORRUPT,
        format!(
            "{}: {name} is not the SBOM of this artifact: {reason}",
            payload.path().display()
        ),
    )
}
