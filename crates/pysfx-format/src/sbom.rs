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
/// them). SBOMs are stored uncompressed and read in place as a byte range of the payload, as
/// the wheels are (the stub reuses that code: its size), bounded by the declared size; the
/// caller has checked the payload digest, which covers them. Refused when it is not UTF-8 text
/// without control characters other than line breaks and tabs (what the packer's JSON is), so
/// what is printed cannot move a terminal's cursor. (Not parsed as JSON: the stub only copies
/// it, and a parser for any JSON costs the stub's size.)
pub fn read_sbom(payload: &mut Payload, name: &str) -> Result<Option<Vec<u8>>, FormatError> {
    let path = payload.path().to_path_buf();
    let bad = |reason: &str| FormatError::BadManifest {
        path: path.clone(),
        reason: format!("{name}: {reason}"),
    };
    if payload.archive().index_for_name(name).is_none() {
        return Ok(None);
    }
    // Deflated (stored in artifacts packed before), as the manifest is read.
    let mut entry = (payload.archive().by_name(name)).map_err(|error| bad(&error.to_string()))?;
    if entry.size() > SBOM_LIMIT {
        return Err(bad("implausibly large for an SBOM"));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|error| bad(&error.to_string()))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8"))?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(bad("it holds control characters"));
    }
    Ok(Some(bytes))
}

/// A set's stored SBOM cut to what one install put in the release: the components of the
/// wheels whose SHA-256 is in `installed` (a set may hold wheels an interpreter does not get:
/// one skipped for its `Requires-Python`, another build of a distribution for another Python),
/// and the dependencies among them. The packer writes the document pretty-printed, each
/// component and each dependency a block of lines from `    {` to `    }`; the stub, which has
/// no JSON parser for any document (its size), drops blocks and list items line by line.
/// `None` when the text is not laid out that way (the caller keeps it whole).
pub fn installed_only(text: &str, installed: &[&str]) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    // The `bom-ref`s of the components dropped, quoted as they appear.
    let mut removed: Vec<&str> = Vec::new();
    // 1: in the components, 2: in the dependencies; `sections` adds up those seen.
    let (mut section, mut sections) = (0, 0);
    // The block being read: where it starts in `out`, whether it stays, its reference.
    let mut block: Option<(usize, bool, &str)> = None;
    for line in text.lines() {
        let item = line.trim().trim_end_matches(',');
        if line == "  \"components\": [" {
            (section, sections) = (1, sections + 1);
        } else if line == "  \"dependencies\": [" {
            (section, sections) = (2, sections + 2);
        } else if section > 0 && line.starts_with("  ]") {
            section = 0;
            drop_last_comma(&mut out);
        } else if section > 0 && line == "    {" {
            block = Some((out.len(), section == 2, ""));
        } else if let (Some((start, keep, reference)), true) = (block, line.starts_with("    }")) {
            block = None;
            if keep {
                out.push_str("    },\n");
            } else {
                out.truncate(start);
                removed.push(reference);
            }
            continue;
        } else if let Some((_, keep, reference)) = block.as_mut() {
            if let Some(sha) = item.strip_prefix("\"content\": \"") {
                *keep |= section == 1 && installed.contains(&sha.trim_end_matches('"'));
            } else if let Some(value) = item.strip_prefix("\"bom-ref\": ") {
                *reference = value;
            } else if let Some(value) = item.strip_prefix("\"ref\": ") {
                *keep &= !removed.contains(&value);
            } else if removed.contains(&item) {
                continue;
            } else if item.starts_with(']') {
                drop_last_comma(&mut out);
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    if sections != 3 || block.is_some() {
        return None;
    }
    if removed.is_empty() {
        return Some(out);
    }
    Some(renamed(&out, installed))
}

/// `text` with a serial number of its own: a cut SBOM is another document than the set's, and
/// CycloneDX wants one serial per document. A UUID from the SHA-256 of the set's serial and
/// the installed wheels' digests (version bits 4, which the schema accepts; the stub has no
/// SHA-1 for a version 5), so the same install gets the same serial.
fn renamed(text: &str, installed: &[&str]) -> String {
    use sha2::Digest;
    const KEY: &str = "  \"serialNumber\": \"urn:uuid:";
    let Some(start) = text.find(KEY).map(|at| at + KEY.len()) else {
        return text.to_string();
    };
    let Some(length) = text[start..].find('"') else {
        return text.to_string();
    };
    let mut digests = installed.to_vec();
    digests.sort_unstable();
    let mut hasher = sha2::Sha256::new();
    hasher.update(&text[start..start + length]);
    for digest in digests {
        hasher.update(b":");
        hasher.update(digest);
    }
    let mut bytes: [u8; 16] = hasher.finalize()[..16].try_into().unwrap_or_default();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::hex(&bytes);
    format!(
        "{}{}-{}-{}-{}-{}{}",
        &text[..start],
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..],
        &text[start + length..]
    )
}

/// Removes the comma ending the last line written, if any.
fn drop_last_comma(out: &mut String) {
    if out.ends_with(",\n") {
        out.truncate(out.len() - 2);
        out.push('\n');
    }
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

    #[test]
    fn an_sbom_is_cut_to_the_installed_wheels() {
        let component = |name: &str, sha: &str, last: bool| {
            format!(
                "    {{\n      \"type\": \"library\",\n      \"bom-ref\": \"wheels/{name}.whl\",\n      \"hashes\": [\n        {{\n          \"alg\": \"SHA-256\",\n          \"content\": \"{sha}\"\n        }}\n      ]\n    }}{}\n",
                if last { "" } else { "," }
            )
        };
        let dependency = |name: &str, last: bool| {
            format!(
                "    {{\n      \"ref\": \"wheels/{name}.whl\",\n      \"dependsOn\": []\n    }}{}\n",
                if last { "" } else { "," }
            )
        };
        let text = format!(
            "{{\n  \"bomFormat\": \"CycloneDX\",\n  \"serialNumber\": \"urn:uuid:6f1c1f4e-8a55-5b8e-9d0f-1e2d3c4b5a69\",\n  \"components\": [\n{}{}{}  ],\n  \"dependencies\": [\n    {{\n      \"ref\": \"app:mysite\",\n      \"dependsOn\": [\n        \"wheels/a.whl\",\n        \"wheels/b.whl\",\n        \"wheels/c.whl\"\n      ]\n    }},\n{}{}{}  ]\n}}\n",
            component("a", "aaa", false),
            component("b", "bbb", false),
            component("c", "ccc", true),
            dependency("a", false),
            dependency("b", false),
            dependency("c", true),
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("the fixture is JSON");
        assert_eq!(parsed["components"].as_array().map(Vec::len), Some(3));
        let cut = installed_only(&text, &["aaa", "bbb"]).expect("cut");
        let parsed: serde_json::Value = serde_json::from_str(&cut).expect("still JSON");
        let refs: Vec<&str> = parsed["components"]
            .as_array()
            .expect("components")
            .iter()
            .filter_map(|c| c["bom-ref"].as_str())
            .collect();
        assert_eq!(refs, ["wheels/a.whl", "wheels/b.whl"]);
        assert_eq!(
            parsed["dependencies"][0]["dependsOn"],
            serde_json::json!(["wheels/a.whl", "wheels/b.whl"])
        );
        assert_eq!(parsed["dependencies"].as_array().map(Vec::len), Some(3));
        // Another document than the set's: another serial, a UUID the schema takes, the same
        // for the same install.
        let serial = parsed["serialNumber"].as_str().expect("a serial");
        assert_ne!(serial, "urn:uuid:6f1c1f4e-8a55-5b8e-9d0f-1e2d3c4b5a69");
        assert_eq!(serial.len(), "urn:uuid:".len() + 36);
        assert_eq!(&serial[23..24], "4", "{serial}");
        assert!(matches!(&serial[28..29], "8" | "9" | "a" | "b"), "{serial}");
        assert_eq!(
            installed_only(&text, &["bbb", "aaa"]).as_deref(),
            Some(cut.as_str())
        );
        // Nothing cut: the set's own document.
        assert_eq!(
            installed_only(&text, &["aaa", "bbb", "ccc"]).as_deref(),
            Some(text.as_str())
        );
        let cut = installed_only(&text, &["ccc"]).expect("cut");
        let parsed: serde_json::Value = serde_json::from_str(&cut).expect("still JSON");
        assert_eq!(parsed["components"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            parsed["dependencies"][0]["dependsOn"],
            serde_json::json!(["wheels/c.whl"])
        );
        assert!(installed_only("{}", &["aaa"]).is_none(), "another layout");
    }
}
