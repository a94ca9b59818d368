//! Where an artifact keeps its software bills of materials (CycloneDX 1.5 JSON, written by the
//! packer): one for the whole artifact, printed by `pysfx inspect --sbom` and `./site.sfx
//! --sbom`, and one per wheel set, which the stub copies into the release it installs as
//! [`SBOM_FILE`]. The stub only copies them out; it never builds one.

use std::io::Read;

use crate::{FormatError, Payload, Section};

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
/// them). SBOMs are stored uncompressed and read in place as a byte range of the payload, as
/// the wheels are (the stub reuses that code: its size), bounded by the declared size; the
/// caller has checked the payload digest, which covers them. Refused when it is not UTF-8 text
/// without control characters other than line breaks and tabs (what the packer's JSON is), so
/// what is printed cannot move a terminal's cursor. (Not parsed as JSON: the stub only copies
/// it, and a parser for any JSON costs the stub's size.)
pub fn read_sbom(payload: &mut Payload, name: &str) -> Result<Option<Vec<u8>>, FormatError> {
    if payload.archive().index_for_name(name).is_none() {
        return Ok(None);
    }
    let (start, len) = payload.stored_range(name)?;
    let bad = |reason: &str| FormatError::BadManifest {
        path: payload.path().to_path_buf(),
        reason: format!("{name}: {reason}"),
    };
    if len > SBOM_LIMIT {
        return Err(bad("implausibly large for an SBOM"));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    Section::new(payload.file(), start, len)
        .read_to_end(&mut bytes)
        .map_err(|error| FormatError::io(payload.path(), error))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8"))?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(bad("it holds control characters"));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn artifact_with(directory: &Path, name: &str, content: &[u8]) -> Payload {
        let path = directory.join("a.sfx");
        let manifest: crate::Manifest = serde_json::from_str(
            r#"{"format_version": 1, "pysfx_version": "test", "app": {"name": "app", "files": 0,
                "bytes": 0}, "wheels": [], "sets": [], "unpacked_bytes": 0}"#,
        )
        .expect("manifest");
        let mut writer = crate::PayloadWriter::create(&path, b"stub", 0).expect("create");
        writer.add_manifest(&manifest).expect("manifest");
        let options = crate::EntryOptions {
            compress: false,
            executable: false,
            size: content.len() as u64,
        };
        writer.add(name, &mut &content[..], options).expect("add");
        writer.finish().expect("finish");
        Payload::open(&path).expect("open")
    }

    #[test]
    fn stored_sboms_are_read_and_text_with_escapes_is_refused() {
        let directory = tempfile::tempdir().expect("tempdir");
        let good = b"{\n\t\"bomFormat\": \"CycloneDX\"\r\n}\n";
        let mut payload = artifact_with(directory.path(), SBOM_NAME, good);
        assert_eq!(
            read_sbom(&mut payload, SBOM_NAME).expect("read"),
            Some(good.to_vec())
        );
        assert_eq!(
            read_sbom(&mut payload, &set_sbom_name(0)).expect("read"),
            None
        );
        for bad in [
            &b"{\"x\": \"\x1b[2J\"}"[..],
            b"\xff\xfe",
            "{\"\u{9b}\"}".as_bytes(),
        ] {
            let mut payload = artifact_with(directory.path(), SBOM_NAME, bad);
            assert!(read_sbom(&mut payload, SBOM_NAME).is_err(), "{bad:?}");
        }
    }
}
