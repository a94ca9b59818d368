//! Where an artifact keeps its software bills of materials (CycloneDX 1.5 JSON, written by the
//! packer): one for the whole artifact, printed by `pysfx inspect --sbom` and `./site.sfx
//! --sbom`, and one per wheel set, which the stub copies into the release it installs as
//! [`SBOM_FILE`]. The stub only copies them out; it never builds one.

use std::io::Read;

use serde::Serialize;
use serde_json::Value;

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
    let bad = |reason: &str| FormatError::Malformed {
        path: path.clone(),
        reason: format!("{name}: {reason}"),
    };
    let Some(index) = payload.archive().index_for_name(name) else {
        return Ok(None);
    };
    // What `unzip` would read of it is what is read here.
    let differs = crate::local_header_differs(payload.archive(), index);
    if let Some(reason) = differs.map_err(|error| bad(&error.to_string()))? {
        return Err(bad(reason));
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

/// A CycloneDX 1.5 document as pysfx writes it (`pysfx pack` builds one from the manifest):
/// the fields it fills in, each object's keys in sorted order, as [`parse`] reads a document
/// back (the stub reads any JSON into a `serde_json::Value`, whose objects are sorted maps; a
/// typed reader would cost the stub tens of KB: docs/stub.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bom {
    #[serde(rename = "bomFormat")]
    pub bom_format: String,
    pub components: Vec<Component>,
    pub dependencies: Vec<Dependency>,
    pub metadata: Metadata,
    #[serde(rename = "serialNumber")]
    pub serial_number: String,
    #[serde(rename = "specVersion")]
    pub spec_version: String,
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub component: Component,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub tools: Tools,
}

/// CycloneDX 1.5's form of `metadata.tools`: the tools as components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tools {
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hash {
    pub alg: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Property {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    #[serde(rename = "dependsOn")]
    pub depends_on: Vec<String>,
    #[serde(rename = "ref")]
    pub reference: String,
}

/// The properties pysfx gives a wheel's component.
const WHEEL_SET: &str = "pysfx:wheel_set";
const WHEEL_FILE: &str = "pysfx:wheel_file";
const BOOTSTRAP: &str = "pysfx:bootstrap";

/// The component of a wheel file: a PyPI library with its purl and SHA-256, and properties
/// naming its sets, its file and whether it is a bootstrap wheel.
pub fn library(wheel: &WheelEntry, set_names: &[&str], bootstrap: bool) -> Component {
    let property = |name: &str, value: &str| Property {
        name: name.into(),
        value: value.into(),
    };
    let mut properties: Vec<Property> = (set_names.iter())
        .map(|name| property(WHEEL_SET, name))
        .collect();
    properties.push(property(WHEEL_FILE, &wheel.filename));
    if bootstrap {
        properties.push(property(BOOTSTRAP, "true"));
    }
    Component {
        kind: "library".into(),
        bom_ref: Some(component_ref(wheel)),
        name: wheel.name.clone(),
        version: Some(wheel.version.clone()),
        purl: Some(purl(&wheel.name, &wheel.version)),
        hashes: vec![Hash {
            alg: "SHA-256".into(),
            content: wheel.sha256.clone(),
        }],
        properties,
    }
}

/// A document's text as pysfx stores it: pretty-printed, ending in a line break.
pub fn to_text<T: Serialize>(document: &T) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(document)?;
    text.push('\n');
    Ok(text)
}

/// A stored SBOM read back: refused unless it is JSON that, written again as pysfx writes,
/// gives the very same text. So no key is given twice (a reader would take one or the
/// other), and nothing is laid out or escaped otherwise than [`check`] and [`cut`] expect.
pub fn parse(text: &str) -> Result<Value, String> {
    let document: Value = serde_json::from_str(text).map_err(|error| {
        format!(
            "it is not JSON ({})",
            crate::escape_control(&error.to_string())
        )
    })?;
    match to_text(&document) {
        Ok(again) if again == text => Ok(document),
        _ => Err("it is not laid out as pysfx writes an SBOM".into()),
    }
}

/// Whether `value` is an object of the keys `required` and perhaps `optional`, and no other.
fn has_keys(value: &Value, required: &[&str], optional: &[&str]) -> bool {
    value.as_object().is_some_and(|object| {
        required.iter().all(|key| object.contains_key(*key))
            && (object.keys())
                .all(|key| required.contains(&key.as_str()) || optional.contains(&key.as_str()))
    })
}

/// Properties as pysfx writes them: `{"name", "value"}` strings, names from `allowed`.
fn properties_are(value: Option<&Value>, allowed: &[&str]) -> bool {
    match value {
        None => true,
        Some(value) => value.as_array().is_some_and(|properties| {
            properties.iter().all(|property| {
                has_keys(property, &["name", "value"], &[])
                    && property["value"].is_string()
                    && (property["name"].as_str()).is_some_and(|name| allowed.contains(&name))
            })
        }),
    }
}

/// The component pysfx writes for `wheel` (its properties name its sets as well).
fn describes(component: &Value, wheel: &WheelEntry) -> bool {
    let fields = [
        "bom-ref",
        "hashes",
        "name",
        "properties",
        "purl",
        "type",
        "version",
    ];
    let files: Vec<&Value> = (component["properties"].as_array().into_iter().flatten())
        .filter(|property| property["name"] == WHEEL_FILE)
        .map(|property| &property["value"])
        .collect();
    has_keys(component, &fields, &[])
        && component["type"] == "library"
        && component["bom-ref"] == component_ref(wheel).as_str()
        && component["name"] == wheel.name.as_str()
        && component["version"] == wheel.version.as_str()
        && component["purl"] == purl(&wheel.name, &wheel.version).as_str()
        && component["hashes"] == serde_json::json!([{"alg": "SHA-256", "content": wheel.sha256}])
        && files == [wheel.filename.as_str()]
        && properties_are(
            component.get("properties"),
            &[WHEEL_SET, WHEEL_FILE, BOOTSTRAP],
        )
}

/// The SHA-256 a component's first hash gives, if any.
fn digest_of(component: &Value) -> &str {
    component["hashes"][0]["content"]
        .as_str()
        .unwrap_or_default()
}

/// Checks a stored SBOM ([`parse`]) against the manifest: it lists exactly the wheels of
/// `expected` (the whole artifact's, or one set's: `pysfx_plan::sbom::members` says which;
/// a wheel may be given twice), each once and as pysfx describes it, and nothing else; its application is the manifest's and its one tool this pysfx version;
/// its dependencies are one entry for the application and one for each component, naming only
/// components. So a document that passes neither hides a wheel nor names another distribution.
pub fn check(
    manifest: &Manifest,
    document: &Value,
    expected: &[&WheelEntry],
) -> Result<(), String> {
    let top = [
        "bomFormat",
        "components",
        "dependencies",
        "metadata",
        "serialNumber",
        "specVersion",
        "version",
    ];
    if !has_keys(document, &top, &[])
        || document["bomFormat"] != "CycloneDX"
        || document["specVersion"] != "1.5"
        || !document["serialNumber"].is_string()
        || document["version"] != 1
    {
        return Err("it is not a CycloneDX 1.5 document as pysfx writes one".into());
    }
    let components = document["components"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    // Each expected wheel listed once, as pysfx describes it (in whatever order: the packer
    // sorts them for people, which changes nothing a reader takes from them).
    for wheel in expected {
        let mut listing = components.iter().filter(|c| digest_of(c) == wheel.sha256);
        match (listing.next(), listing.next()) {
            (None, _) => return Err(format!("it lists no component for {}", wheel.filename)),
            (Some(component), None) if describes(component, wheel) => {}
            _ => {
                return Err(format!(
                    "its component for {} is not the one pysfx writes for it",
                    wheel.filename
                ))
            }
        }
    }
    let listed = |component: &&Value| expected.iter().any(|w| w.sha256 == digest_of(component));
    if let Some(extra) = components.iter().find(|component| !listed(component)) {
        return Err(format!(
            "it lists a component the manifest does not give it: {} {}",
            crate::escape_control(extra["name"].as_str().unwrap_or_default()),
            crate::escape_control(extra["version"].as_str().unwrap_or_default())
        ));
    }
    let app_ref = format!("app:{}", manifest.app.name);
    let metadata = &document["metadata"];
    let app = &metadata["component"];
    let tool = serde_json::json!([{
        "type": "application", "name": "pysfx", "version": manifest.pysfx_version
    }]);
    let app_version = match &manifest.app.version {
        Some(version) => {
            has_keys(app, &["bom-ref", "name", "type", "version"], &[])
                && app["version"] == version.as_str()
        }
        None => has_keys(app, &["bom-ref", "name", "type"], &[]),
    };
    if !has_keys(
        metadata,
        &["component", "tools"],
        &["properties", "timestamp"],
    ) || (metadata.get("timestamp")).is_some_and(|time| !time.is_string())
        || !properties_are(
            metadata.get("properties"),
            &["pysfx:manifest_sha256", WHEEL_SET],
        )
        || !has_keys(&metadata["tools"], &["components"], &[])
        || metadata["tools"]["components"] != tool
        || !app_version
        || app["type"] != "application"
        || app["bom-ref"] != app_ref.as_str()
        || app["name"] != manifest.app.name.as_str()
    {
        return Err("its metadata are not the artifact's".into());
    }
    let dependencies = document["dependencies"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let references: Vec<&str> = std::iter::once(app_ref.as_str())
        .chain(
            components
                .iter()
                .map(|c| c["bom-ref"].as_str().unwrap_or_default()),
        )
        .collect();
    let names_components = |dependency: &Value| {
        (dependency["dependsOn"].as_array()).is_some_and(|on| {
            on.iter()
                .all(|to| to.as_str().is_some_and(|to| references[1..].contains(&to)))
        })
    };
    let in_order = dependencies.len() == references.len()
        && (dependencies.iter().zip(&references)).all(|(dependency, reference)| {
            has_keys(dependency, &["dependsOn", "ref"], &[])
                && dependency["ref"] == *reference
                && names_components(dependency)
        });
    if !in_order {
        return Err("its dependencies are not between the components it lists".into());
    }
    Ok(())
}

/// A checked SBOM cut to the wheels one install put in the release (by SHA-256): the
/// components of the others dropped (a set may hold wheels an interpreter does not get: one
/// skipped for its `Requires-Python`, another build of a distribution for another Python, the
/// bootstrap wheels it did not choose), with their dependencies, under a serial number of its
/// own. Each wheel of `installed` must be listed.
pub fn cut(mut document: Value, installed: &[&WheelEntry]) -> Result<Value, String> {
    let Some(components) = document["components"].as_array_mut() else {
        return Err("it lists no components".into());
    };
    if let Some(missing) =
        (installed.iter()).find(|wheel| !components.iter().any(|c| digest_of(c) == wheel.sha256))
    {
        return Err(format!("it lists no component for {}", missing.filename));
    }
    let mut gone: Vec<Value> = Vec::new();
    components.retain(|component| {
        let kept = installed
            .iter()
            .any(|wheel| wheel.sha256 == digest_of(component));
        if !kept {
            gone.push(component["bom-ref"].clone());
        }
        kept
    });
    if gone.is_empty() {
        return Ok(document);
    }
    if let Some(dependencies) = document["dependencies"].as_array_mut() {
        dependencies.retain(|dependency| !gone.contains(&dependency["ref"]));
        for dependency in dependencies {
            if let Some(on) = dependency["dependsOn"].as_array_mut() {
                on.retain(|reference| !gone.contains(reference));
            }
        }
    }
    let digests: Vec<&str> = installed
        .iter()
        .map(|wheel| wheel.sha256.as_str())
        .collect();
    let serial = renamed(
        document["serialNumber"].as_str().unwrap_or_default(),
        &digests,
    );
    document["serialNumber"] = Value::String(serial);
    Ok(document)
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

/// A serial number of its own for a cut document: CycloneDX wants one serial per document. A
/// UUID from the SHA-256 of the set document's `serial` and the installed wheels' digests
/// (version bits 4, which the schema accepts; the stub has no SHA-1 for a version 5), so the
/// same install gets the same serial.
fn renamed(serial: &str, installed: &[&str]) -> String {
    use sha2::Digest;
    let mut digests = installed.to_vec();
    digests.sort_unstable();
    let mut hasher = sha2::Sha256::new();
    hasher.update(serial.strip_prefix("urn:uuid:").unwrap_or(serial));
    for digest in digests {
        hasher.update(b":");
        hasher.update(digest);
    }
    let mut bytes: [u8; 16] = hasher.finalize()[..16].try_into().unwrap_or_default();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::hex(&bytes);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..],
    )
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
            directories: 0,
            requires_python: None,
            requires_dist: Vec::new(),
            record_sha256: None,
            from_base: false,
            executables: None,
        }
    }

    fn manifest() -> Manifest {
        serde_json::from_str(
            r#"{"format_version": 1, "pysfx_version": "0.1.0", "app": {"name": "mysite",
                "files": 0, "bytes": 0}, "wheels": [], "sets": [], "unpacked_bytes": 0}"#,
        )
        .expect("manifest")
    }

    /// The document the packer writes for `wheels` (sorted by name), `a` depending on `b`.
    fn document(wheels: &[&WheelEntry]) -> Bom {
        let refs: Vec<String> = wheels.iter().map(|wheel| component_ref(wheel)).collect();
        let mut dependencies = vec![Dependency {
            reference: "app:mysite".into(),
            depends_on: refs.clone(),
        }];
        dependencies.extend(refs.iter().map(|reference| Dependency {
            reference: reference.clone(),
            depends_on: match reference.contains("/a-") {
                true => refs.iter().filter(|r| r.contains("/b-")).cloned().collect(),
                false => Vec::new(),
            },
        }));
        Bom {
            bom_format: "CycloneDX".into(),
            spec_version: "1.5".into(),
            serial_number: "urn:uuid:6f1c1f4e-8a55-5b8e-9d0f-1e2d3c4b5a69".into(),
            version: 1,
            metadata: Metadata {
                timestamp: None,
                tools: Tools {
                    components: vec![Component {
                        kind: "application".into(),
                        bom_ref: None,
                        name: "pysfx".into(),
                        version: Some("0.1.0".into()),
                        purl: None,
                        hashes: Vec::new(),
                        properties: Vec::new(),
                    }],
                },
                component: Component {
                    kind: "application".into(),
                    bom_ref: Some("app:mysite".into()),
                    name: "mysite".into(),
                    version: None,
                    purl: None,
                    hashes: Vec::new(),
                    properties: Vec::new(),
                },
                properties: Vec::new(),
            },
            components: (wheels.iter())
                .map(|wheel| library(wheel, &["cp311"], false))
                .collect(),
            dependencies,
        }
    }

    fn value(bom: &Bom) -> Value {
        serde_json::to_value(bom).expect("value")
    }

    /// Read back only as written: another layout, a key twice, an escape where pysfx
    /// writes none are each refused; what pysfx writes is read as it is.
    #[test]
    fn a_stored_sbom_is_read_back_only_as_pysfx_writes_it() {
        let (a, b) = (wheel("a", "aaa"), wheel("b", "bbb"));
        let text = to_text(&document(&[&a, &b])).expect("text");
        assert_eq!(parse(&text), Ok(value(&document(&[&a, &b]))));
        let duplicate = text.replacen(
            "      \"name\": \"b\",\n",
            "      \"name\": \"b\",\n      \"name\": \"evil\",\n",
            1,
        );
        assert_ne!(duplicate, text);
        let one_line = text.replacen(
            "  \"components\": [\n",
            "  \"components\": [\n    {\"type\": \"library\", \"name\": \"evil\"},\n",
            1,
        );
        assert_ne!(one_line, text);
        let escaped = text.replacen("\"name\": \"b\"", "\"name\": \"\\u0062\"", 1);
        assert_ne!(escaped, text);
        let compact = serde_json::to_string(&document(&[&a, &b])).expect("compact");
        for bad in [
            duplicate,
            one_line,
            escaped,
            compact,
            text.replace('\n', "\r\n"),
        ] {
            let error = parse(&bad).expect_err(&bad);
            assert!(error.contains("not laid out"), "{error}");
        }
        let error = parse("{\"a\": ").expect_err("not JSON");
        assert!(error.contains("not JSON"), "{error}");
    }

    #[test]
    fn a_stored_sbom_lists_exactly_what_the_manifest_makes_it_list() {
        let manifest = manifest();
        let (a, b, c) = (wheel("a", "aaa"), wheel("b", "bbb"), wheel("c", "ccc"));
        let good = value(&document(&[&a, &b]));
        assert_eq!(check(&manifest, &good, &[&b, &a]), Ok(()));
        let refused = |document: &Value, expected: &[&WheelEntry], reason: &str| {
            let error = check(&manifest, document, expected).expect_err(reason);
            assert!(error.contains(reason), "{error} / {reason}");
        };
        refused(
            &value(&document(&[&a])),
            &[&a, &b],
            "lists no component for b-1.0",
        );
        refused(
            &value(&document(&[&a, &b, &c])),
            &[&a, &b],
            "lists a component the manifest does not give it: c 1.0",
        );
        let mut twice = document(&[&a, &b]);
        twice.components.push(twice.components[1].clone());
        refused(
            &value(&twice),
            &[&a, &b],
            "its component for b-1.0-py3-none-any.whl is not",
        );
        for change in [
            |c: &mut Component| c.name = "requests".into(),
            |c: &mut Component| c.version = Some("9.9".into()),
            |c: &mut Component| c.purl = Some("pkg:pypi/requests@1.0".into()),
            |c: &mut Component| c.bom_ref = Some("wheels/bbb/x".into()),
            |c: &mut Component| c.properties[1].value = "x-1.0-py3-none-any.whl".into(),
            |c: &mut Component| c.properties[0].name = "license".into(),
            |c: &mut Component| c.hashes.push(c.hashes[0].clone()),
        ] {
            let mut lying = document(&[&a, &b]);
            change(&mut lying.components[1]);
            refused(
                &value(&lying),
                &[&a, &b],
                "its component for b-1.0-py3-none-any.whl is not",
            );
        }
        // A field pysfx does not write, anywhere: a nested component is a package to a scanner.
        let mut nested = good.clone();
        nested["components"][1]["components"] = serde_json::json!([{"name": "evil"}]);
        refused(
            &nested,
            &[&a, &b],
            "its component for b-1.0-py3-none-any.whl is not",
        );
        let mut extra = good.clone();
        extra["services"] = serde_json::json!([]);
        refused(&extra, &[&a, &b], "not a CycloneDX 1.5 document");
        let mut tools = good.clone();
        tools["metadata"]["tools"]["components"][0]["name"] = "evil".into();
        refused(&tools, &[&a, &b], "metadata");
        let mut other_app = document(&[&a, &b]);
        other_app.metadata.component.name = "other".into();
        refused(&value(&other_app), &[&a, &b], "metadata");
        let mut dangling = document(&[&a, &b]);
        dangling.dependencies[1]
            .depends_on
            .push("wheels/zzz/evil".into());
        refused(&value(&dangling), &[&a, &b], "dependencies");
        let mut missing = document(&[&a, &b]);
        missing.dependencies.pop();
        refused(&value(&missing), &[&a, &b], "dependencies");
        // An empty set's document is fine.
        assert_eq!(check(&manifest, &value(&document(&[])), &[]), Ok(()));
    }

    #[test]
    fn an_sbom_is_cut_to_the_installed_wheels() {
        let (a, b, c) = (wheel("a", "aaa"), wheel("b", "bbb"), wheel("c", "ccc"));
        let whole = value(&document(&[&a, &b, &c]));
        let cut_ab = cut(whole.clone(), &[&a, &b]).expect("cut");
        let names: Vec<&str> = (cut_ab["components"].as_array().into_iter().flatten())
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(cut_ab["dependencies"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            cut_ab["dependencies"][0]["dependsOn"],
            serde_json::json!([component_ref(&a), component_ref(&b)])
        );
        assert_eq!(
            cut_ab["dependencies"][1]["dependsOn"],
            serde_json::json!([component_ref(&b)])
        );
        // Another document than the set's: another serial, a UUID the schema takes, the same
        // for the same install.
        let serial = cut_ab["serialNumber"].as_str().expect("serial").to_string();
        assert_ne!(serial, whole["serialNumber"]);
        assert_eq!(serial.len(), "urn:uuid:".len() + 36);
        assert_eq!(&serial[23..24], "4", "{serial}");
        assert!(matches!(&serial[28..29], "8" | "9" | "a" | "b"), "{serial}");
        assert_eq!(cut(whole.clone(), &[&b, &a]), Ok(cut_ab));
        // Nothing cut: the set's own document.
        assert_eq!(cut(whole.clone(), &[&a, &b, &c]), Ok(whole.clone()));
        let only_a = cut(whole.clone(), &[&a]).expect("cut");
        assert_eq!(
            only_a["dependencies"][1]["dependsOn"],
            serde_json::json!([])
        );
        // A wheel installed but not listed: refused.
        let other = wheel("other", "ooo");
        let error = cut(whole.clone(), &[&a, &other]).expect_err("not listed");
        assert!(
            error.contains("lists no component for other-1.0"),
            "{error}"
        );
    }
}
