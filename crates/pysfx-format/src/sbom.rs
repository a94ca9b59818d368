//! Where an artifact keeps its software bills of materials (CycloneDX 1.5 JSON, written by the
//! packer): one for the whole artifact, printed by `pysfx inspect --sbom` and `./site.sfx
//! --sbom`, and one per wheel set, which the stub copies into the release it installs as
//! [`SBOM_FILE`]. The stub only copies them out; it never builds one.

use std::io::Read;

use crate::{FormatError, Manifest, Payload, WheelEntry};

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

/// A stored SBOM cut to what one install put in the release, or checked whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The document with the components of `installed` only, and the dependencies among them.
    pub text: String,
    /// How many components were dropped: those of wheels not installed (a set may hold wheels
    /// an interpreter does not get: one skipped for its `Requires-Python`, another build of a
    /// distribution for another Python).
    pub dropped: usize,
}

/// A stored SBOM cut to the components of the wheels in `installed` (by SHA-256), each of
/// whose first `required` it must list, and none of them twice, as the packer writes them:
/// its `bom-ref`, name, version and purl those of the manifest's wheel. So a release's SBOM
/// never hides an installed distribution nor names another one. (The rest of `installed` may
/// be missing: the bootstrap wheels, which the packer lists for the Python a set was resolved
/// for, where the stub picks them for the one it runs.) The packer writes the document
/// pretty-printed, each component and each dependency a block of lines from `    {` to
/// `    }`; the stub, which has no JSON parser for any document (its size), reads and drops
/// blocks and list items line by line. A document not laid out that way, or not listing a
/// wheel as the manifest describes it, is refused with the reason.
pub fn installed_only(
    text: &str,
    installed: &[&WheelEntry],
    required: usize,
) -> Result<Cut, String> {
    let mut out = String::with_capacity(text.len());
    // The `bom-ref`s of the components dropped, quoted as they appear.
    let mut removed: Vec<&str> = Vec::new();
    // The wheels whose component was kept, by their index in `installed`.
    let mut listed = vec![false; installed.len()];
    // 1: in the components, 2: in the dependencies; `sections` adds up those seen.
    let (mut section, mut sections) = (0, 0);
    // The block being read: where it starts in `out`, its fields (a dependency's `ref` in
    // `bom_ref`).
    let mut block: Option<(usize, Fields<'_>)> = None;
    for line in text.lines() {
        let item = line.trim().trim_end_matches(',');
        let top = line.trim_end_matches(',');
        if let Some(list) = top.strip_prefix("  \"components\": ") {
            sections += 1;
            section = if list == "[" { 1 } else { 0 };
        } else if let Some(list) = top.strip_prefix("  \"dependencies\": ") {
            sections += 2;
            section = if list == "[" { 2 } else { 0 };
        } else if section > 0 && line.starts_with("  ]") {
            section = 0;
            drop_last_comma(&mut out);
        } else if section > 0 && line == "    {" {
            block = Some((out.len(), Fields::default()));
        } else if let (Some((start, fields)), true) = (&block, line.starts_with("    }")) {
            let keep = match section {
                1 => component_of(fields, installed, &mut listed)?,
                _ => !removed.contains(&fields.bom_ref),
            };
            if keep {
                out.push_str("    },\n");
            } else {
                out.truncate(*start);
                if section == 1 {
                    removed.push(fields.bom_ref);
                }
            }
            block = None;
            continue;
        } else if let Some((_, fields)) = block.as_mut() {
            if let Some(sha) = item.strip_prefix("\"content\": ") {
                fields.sha256.push(unquote(sha));
            } else if let Some(value) = item.strip_prefix("\"bom-ref\": ") {
                fields.bom_ref = value;
            } else if let Some(value) = item.strip_prefix("\"ref\": ") {
                fields.bom_ref = value;
            } else if let Some(value) = line.strip_prefix("      \"name\": ") {
                fields.name = Some(unquote(value));
            } else if let Some(value) = line.strip_prefix("      \"version\": ") {
                fields.version = Some(unquote(value));
            } else if let Some(value) = line.strip_prefix("      \"purl\": ") {
                fields.purl = Some(unquote(value));
            } else if removed.contains(&item) {
                continue;
            } else if item.starts_with(']') {
                drop_last_comma(&mut out);
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    if sections != 3 || block.is_some() || section != 0 {
        return Err("it is not laid out as pysfx writes an SBOM".into());
    }
    if let Some(index) = listed.iter().take(required).position(|listed| !listed) {
        return Err(format!(
            "it lists no component for {}",
            installed[index].filename
        ));
    }
    if removed.is_empty() {
        return Ok(Cut {
            text: text.to_string(),
            dropped: 0,
        });
    }
    let digests: Vec<&str> = installed
        .iter()
        .map(|wheel| wheel.sha256.as_str())
        .collect();
    Ok(Cut {
        text: renamed(&out, &digests),
        dropped: removed.len(),
    })
}

/// Checks a stored SBOM against the manifest, as [`installed_only`] reads it: the whole
/// artifact's (`set` `None`) lists every wheel, a set's every wheel of the set and perhaps
/// bootstrap wheels; neither lists any other.
pub fn check_stored(manifest: &Manifest, set: Option<usize>, text: &str) -> Result<(), String> {
    let (mut wheels, required): (Vec<&WheelEntry>, usize) = match set {
        None => (manifest.wheels.iter().collect(), manifest.wheels.len()),
        Some(index) => {
            let own: Vec<&WheelEntry> = (manifest.sets.get(index).into_iter())
                .flat_map(|set| set.wheels.iter())
                .filter_map(|wheel| manifest.wheel(wheel))
                .collect();
            let required = own.len();
            (own, required)
        }
    };
    if set.is_some() {
        wheels.extend(
            manifest
                .bootstrap
                .iter()
                .filter_map(|path| manifest.wheel(path)),
        );
    }
    match installed_only(text, &wheels, required)? {
        Cut { dropped: 0, .. } => Ok(()),
        _ => Err("it lists a wheel the manifest does not give it".into()),
    }
}

/// The SBOM of set `set` of `manifest` ([`check_stored`]) cut to the wheels one install of it
/// put in the release ([`installed_only`]: each must be listed, but the bootstrap wheels).
pub fn cut_for(
    manifest: &Manifest,
    set: usize,
    text: &str,
    wheels: &[&WheelEntry],
) -> Result<Cut, String> {
    check_stored(manifest, Some(set), text)?;
    let bootstrap = |wheel: &&WheelEntry| manifest.bootstrap.contains(&wheel.path);
    let mut ordered: Vec<&WheelEntry> = wheels.iter().copied().filter(|w| !bootstrap(w)).collect();
    let required = ordered.len();
    ordered.extend(wheels.iter().copied().filter(bootstrap));
    installed_only(text, &ordered, required)
}

/// What a block of the SBOM says, as written (the reference quoted).
#[derive(Debug, Default)]
struct Fields<'a> {
    bom_ref: &'a str,
    name: Option<&'a str>,
    version: Option<&'a str>,
    purl: Option<&'a str>,
    sha256: Vec<&'a str>,
}

/// Whether a component block is one of an installed wheel (kept, and marked `listed`), or of
/// another (dropped); refused when it names an installed wheel otherwise than the packer does,
/// or a second time.
fn component_of(
    fields: &Fields<'_>,
    installed: &[&WheelEntry],
    listed: &mut [bool],
) -> Result<bool, String> {
    let Some(index) = installed
        .iter()
        .position(|wheel| fields.sha256.contains(&wheel.sha256.as_str()))
    else {
        return Ok(false);
    };
    let wheel = installed[index];
    let reference = format!("\"{}\"", component_ref(wheel));
    let purl = purl(&wheel.name, &wheel.version);
    if listed[index]
        || fields.sha256.len() != 1
        || fields.bom_ref != reference
        || fields.name != Some(wheel.name.as_str())
        || fields.version != Some(wheel.version.as_str())
        || fields.purl != Some(purl.as_str())
    {
        return Err(format!(
            "its component for {} is not the one pysfx writes for it",
            wheel.filename
        ));
    }
    listed[index] = true;
    Ok(true)
}

/// A JSON string's text between its quotes, as written (the names and versions compared with
/// it are never escaped).
fn unquote(value: &str) -> &str {
    let value = value.trim_end_matches(',');
    value
        .strip_prefix('"')
        .and_then(|value| value.strip_suffix('"'))
        .unwrap_or(value)
}

/// A wheel's `bom-ref`: `wheels/<first 16 hex digits of its SHA-256>/<file name>`, the path a
/// full artifact stores it at, so a wheel has the same reference in the SBOM of a thin artifact
/// (which leaves it out, at `thin/…`) as in a full one's.
pub fn component_ref(wheel: &WheelEntry) -> String {
    let digest = wheel.sha256.get(..16).unwrap_or(&wheel.sha256);
    format!("wheels/{digest}/{}", wheel.filename)
}

/// `pkg:pypi/<name>@<version>` (the purl spec's PyPI type: the name lower-cased with runs of
/// `-`, `_`, `.` as one `-`, which a manifest's PEP 503 name already is; the version
/// percent-encoded, so a local version's `+` is `%2B`).
pub fn purl(normalized_name: &str, version: &str) -> String {
    format!(
        "pkg:pypi/{}@{}",
        percent_encode(normalized_name),
        percent_encode(version)
    )
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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

    fn wheel(name: &str, sha: &str) -> WheelEntry {
        WheelEntry {
            path: format!("wheels/{sha}/{name}-1.0-py3-none-any.whl"),
            filename: format!("{name}-1.0-py3-none-any.whl"),
            name: name.into(),
            version: "1.0".into(),
            sha256: sha.into(),
            size: 1,
            unpacked_bytes: 1,
            members: 0,
            requires_python: None,
            requires_dist: Vec::new(),
            record_sha256: None,
            from_base: false,
        }
    }

    /// A component block as the packer writes it (`last`: no comma after it).
    fn component(wheel: &WheelEntry, last: bool) -> String {
        format!(
            "    {{\n      \"type\": \"library\",\n      \"bom-ref\": \"{}\",\n      \"name\": \"{}\",\n      \"version\": \"{}\",\n      \"purl\": \"{}\",\n      \"hashes\": [\n        {{\n          \"alg\": \"SHA-256\",\n          \"content\": \"{}\"\n        }}\n      ],\n      \"properties\": [\n        {{\n          \"name\": \"pysfx:wheel_file\",\n          \"value\": \"{}\"\n        }}\n      ]\n    }}{}\n",
            component_ref(wheel),
            wheel.name,
            wheel.version,
            purl(&wheel.name, &wheel.version),
            wheel.sha256,
            wheel.filename,
            if last { "" } else { "," }
        )
    }

    fn document(components: &[String], wheels: &[&WheelEntry]) -> String {
        let dependency = |wheel: &WheelEntry, last: bool| {
            format!(
                "    {{\n      \"ref\": \"{}\",\n      \"dependsOn\": []\n    }}{}\n",
                component_ref(wheel),
                if last { "" } else { "," }
            )
        };
        let refs: Vec<String> = (wheels.iter())
            .map(|wheel| format!("        \"{}\"", component_ref(wheel)))
            .collect();
        let dependencies: String = (wheels.iter().enumerate())
            .map(|(index, wheel)| dependency(wheel, index + 1 == wheels.len()))
            .collect();
        format!(
            "{{\n  \"bomFormat\": \"CycloneDX\",\n  \"serialNumber\": \"urn:uuid:6f1c1f4e-8a55-5b8e-9d0f-1e2d3c4b5a69\",\n  \"components\": [\n{}  ],\n  \"dependencies\": [\n    {{\n      \"ref\": \"app:mysite\",\n      \"dependsOn\": [\n{}\n      ]\n    }},\n{}  ]\n}}\n",
            components.concat(),
            refs.join(",\n"),
            dependencies,
        )
    }

    #[test]
    fn an_sbom_is_cut_to_the_installed_wheels() {
        let (a, b, c) = (wheel("a", "aaa"), wheel("b", "bbb"), wheel("c", "ccc"));
        let all = [&a, &b, &c];
        let components = [
            component(&a, false),
            component(&b, false),
            component(&c, true),
        ];
        let text = document(&components, &all);
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("the fixture is JSON");
        assert_eq!(parsed["components"].as_array().map(Vec::len), Some(3));
        let cut = installed_only(&text, &[&a, &b], 2).expect("cut");
        assert_eq!(cut.dropped, 1);
        let parsed: serde_json::Value = serde_json::from_str(&cut.text).expect("still JSON");
        let refs: Vec<&str> = parsed["components"]
            .as_array()
            .expect("components")
            .iter()
            .filter_map(|c| c["bom-ref"].as_str())
            .collect();
        assert_eq!(
            refs,
            [
                "wheels/aaa/a-1.0-py3-none-any.whl",
                "wheels/bbb/b-1.0-py3-none-any.whl"
            ]
        );
        assert_eq!(
            parsed["dependencies"][0]["dependsOn"],
            serde_json::json!([
                "wheels/aaa/a-1.0-py3-none-any.whl",
                "wheels/bbb/b-1.0-py3-none-any.whl"
            ])
        );
        assert_eq!(parsed["dependencies"].as_array().map(Vec::len), Some(3));
        // Another document than the set's: another serial, a UUID the schema takes, the same
        // for the same install.
        let serial = parsed["serialNumber"].as_str().expect("a serial");
        assert_ne!(serial, "urn:uuid:6f1c1f4e-8a55-5b8e-9d0f-1e2d3c4b5a69");
        assert_eq!(serial.len(), "urn:uuid:".len() + 36);
        assert_eq!(&serial[23..24], "4", "{serial}");
        assert!(matches!(&serial[28..29], "8" | "9" | "a" | "b"), "{serial}");
        assert_eq!(installed_only(&text, &[&b, &a], 2), Ok(cut.clone()));
        // Nothing cut: the set's own document.
        assert_eq!(
            installed_only(&text, &all, 3).map(|cut| cut.text),
            Ok(text.clone())
        );
        let cut = installed_only(&text, &[&c], 1).expect("cut");
        let parsed: serde_json::Value = serde_json::from_str(&cut.text).expect("still JSON");
        assert_eq!(parsed["components"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            parsed["dependencies"][0]["dependsOn"],
            serde_json::json!(["wheels/ccc/c-1.0-py3-none-any.whl"])
        );
        // Not required (a bootstrap wheel): absent is fine.
        let fewer = document(&[component(&a, true)], &[&a]);
        assert!(installed_only(&fewer, &[&a, &b], 1).is_ok());
    }

    #[test]
    fn an_sbom_that_hides_or_misnames_an_installed_wheel_is_refused() {
        let (a, b) = (wheel("a", "aaa"), wheel("b", "bbb"));
        let refused = |text: &str, expected: &str| {
            let reason = installed_only(text, &[&a, &b], 2).expect_err(text);
            assert!(reason.contains(expected), "{reason} / {expected} / {text}");
        };
        // `b` left out, or its components emptied.
        refused(
            &document(&[component(&a, true)], &[&a]),
            "lists no component for b-1.0",
        );
        refused(&document(&[], &[]), "lists no component for a-1.0");
        // Listed twice.
        let twice = [
            component(&a, false),
            component(&a, false),
            component(&b, true),
        ];
        refused(
            &document(&twice, &[&a, &b]),
            "its component for a-1.0-py3-none-any.whl is not",
        );
        // Listed under another name, version or purl, with `b`'s digest.
        let good = component(&b, true);
        for (from, to) in [
            ("\"name\": \"b\"", "\"name\": \"requests\""),
            ("\"version\": \"1.0\"", "\"version\": \"9.9\""),
            ("pkg:pypi/b@1.0", "pkg:pypi/requests@1.0"),
            ("\"bom-ref\": \"wheels/bbb/b", "\"bom-ref\": \"wheels/bbb/x"),
        ] {
            let lying = good.replacen(from, to, 1);
            assert_ne!(lying, good, "{from}");
            let text = document(&[component(&a, false), lying], &[&a, &b]);
            refused(&text, "its component for b-1.0-py3-none-any.whl is not");
        }
        // Not laid out as the packer writes it.
        for text in ["hello", "{}", "{\"components\": [], \"dependencies\": []}"] {
            refused(text, "not laid out as pysfx writes an SBOM");
        }
        // An empty set's document is fine.
        assert!(installed_only(&document(&[], &[]), &[], 0).is_ok());
        // A component of no installed wheel is dropped, and counted.
        let other = wheel("other", "ooo");
        let text = document(
            &[
                component(&a, false),
                component(&other, false),
                component(&b, true),
            ],
            &[&a, &other, &b],
        );
        let cut = installed_only(&text, &[&a, &b], 2).expect("cut");
        assert_eq!(cut.dropped, 1);
        assert!(!cut.text.contains("ooo"), "{}", cut.text);
    }
}
