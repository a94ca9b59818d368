//! CycloneDX 1.5 SBOMs of an artifact (SPEC: "Supply chain"), built at pack time from the
//! manifest and stored in the payload (`pysfx_format::SBOM_NAME` for the whole artifact, one
//! per wheel set for the release that installs it), so the stub only copies them out.
//!
//! Hand-written serde structs for the few fields pysfx fills in: a full CycloneDX crate brings
//! XML, regex and much more. The tests validate the output against the official JSON schema.
//!
//! Deterministic: the same manifest gives the same bytes. The `serialNumber` is a name-based
//! UUID (version 5, RFC 4122) of the SHA-256 of the manifest entry — not of the payload, which
//! holds the SBOM itself — and the timestamp is the manifest's build time (`SOURCE_DATE_EPOCH`),
//! left out when none was recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use pep440_rs::Version;
use pysfx_format::sbom::{library, Bom, Component, Dependency, Metadata, Property, Tools};
use pysfx_format::{component_ref, Manifest, Target, WheelEntry, WheelSet};
use pysfx_wheel::{MarkerEnvironment, Requirement};
use sha1::Digest as _;

use crate::collect;

/// The RFC 4122 namespace for URLs, under which the serial numbers are named.
const NAMESPACE_URL: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
];

/// Every SBOM the payload carries, as `(payload name, JSON bytes)`: the whole artifact's, then
/// one per set in the manifest's order. `manifest_sha256` is the SHA-256 of the manifest entry
/// as stored.
pub fn payload_entries(
    manifest: &Manifest,
    manifest_sha256: &[u8],
) -> Result<Vec<(String, Vec<u8>)>, serde_json::Error> {
    let digest = pysfx_format::hex(manifest_sha256);
    let all: Vec<(&WheelSet, Vec<&WheelEntry>)> = manifest
        .sets
        .iter()
        .map(|set| (set, set_members(manifest, set)))
        .collect();
    let mut entries = vec![(
        pysfx_format::SBOM_NAME.to_string(),
        render(manifest, &digest, None, &all)?,
    )];
    for (index, members) in all.iter().enumerate() {
        // What a release of the set may get (the stub cuts it to what it installed).
        let bytes = render(
            manifest,
            &digest,
            Some(index),
            std::slice::from_ref(members),
        )?;
        entries.push((pysfx_format::set_sbom_name(index), bytes));
    }
    Ok(entries)
}

/// The SBOM of the whole artifact, made from its manifest (for artifacts packed before SBOMs
/// were stored in them).
pub fn whole(manifest: &Manifest, manifest_sha256: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let all: Vec<(&WheelSet, Vec<&WheelEntry>)> = manifest
        .sets
        .iter()
        .map(|set| (set, set_members(manifest, set)))
        .collect();
    render(manifest, &pysfx_format::hex(manifest_sha256), None, &all)
}

pub use pysfx_plan::sbom::set_members;

/// One SBOM: the components of `sets` (a wheel in several sets once, a property for each),
/// their dependencies within each set, and the app depending on each set's roots.
fn render(
    manifest: &Manifest,
    manifest_digest: &str,
    set_index: Option<usize>,
    sets: &[(&WheelSet, Vec<&WheelEntry>)],
) -> Result<Vec<u8>, serde_json::Error> {
    // Components sorted by name, version and payload path, for people reading the file.
    let mut in_sets: BTreeMap<(&str, &str, &str), (&WheelEntry, Vec<&str>)> = BTreeMap::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let app_ref = format!("app:{}", manifest.app.name);
    for (set, members) in sets {
        for wheel in members {
            in_sets
                .entry((&wheel.name, &wheel.version, &wheel.path))
                .or_insert((wheel, Vec::new()))
                .1
                .push(set.name.as_str());
        }
        let set_edges = dependencies(set, members);
        let required: BTreeSet<&String> = set_edges.values().flatten().collect();
        let roots: Vec<String> = members
            .iter()
            .map(|wheel| component_ref(wheel))
            .filter(|reference| !required.contains(reference))
            .collect();
        edges.entry(app_ref.clone()).or_default().extend(roots);
        for (from, to) in set_edges {
            edges.entry(from).or_default().extend(to);
        }
    }
    let bootstrap: BTreeSet<&str> = manifest.bootstrap.iter().map(String::as_str).collect();
    let components: Vec<Component> = in_sets
        .values()
        .map(|(wheel, set_names)| {
            library(wheel, set_names, bootstrap.contains(wheel.path.as_str()))
        })
        .collect();
    let mut dependencies = vec![Dependency {
        reference: app_ref.clone(),
        depends_on: edges
            .remove(&app_ref)
            .unwrap_or_default()
            .into_iter()
            .collect(),
    }];
    dependencies.extend(in_sets.values().map(|(wheel, _)| {
        let reference = component_ref(wheel);
        Dependency {
            depends_on: edges
                .remove(&reference)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            reference,
        }
    }));
    let mut name = format!("pysfx-sbom:{manifest_digest}");
    let mut properties = vec![Property {
        name: "pysfx:manifest_sha256".into(),
        value: manifest_digest.to_string(),
    }];
    if let (Some(index), [(set, _)]) = (set_index, sets) {
        name.push_str(&format!(":set-{index}"));
        properties.push(Property {
            name: "pysfx:wheel_set".into(),
            value: set.name.clone(),
        });
    }
    let bom = Bom {
        bom_format: "CycloneDX".into(),
        spec_version: "1.5".into(),
        serial_number: format!("urn:uuid:{}", uuid_v5(&NAMESPACE_URL, name.as_bytes())),
        version: 1,
        metadata: Metadata {
            timestamp: manifest.created.map(rfc3339),
            tools: Tools {
                components: vec![application(
                    None,
                    "pysfx",
                    Some(manifest.pysfx_version.clone()),
                )],
            },
            component: application(
                Some(app_ref),
                &manifest.app.name,
                manifest.app.version.clone(),
            ),
            properties,
        },
        components,
        dependencies,
    };
    Ok(pysfx_format::sbom::to_text(&bom)?.into_bytes())
}

/// An application component (the app, or pysfx as the tool).
fn application(bom_ref: Option<String>, name: &str, version: Option<String>) -> Component {
    Component {
        kind: "application".into(),
        bom_ref,
        name: name.to_string(),
        version,
        purl: None,
        hashes: Vec::new(),
        properties: Vec::new(),
    }
}

/// The marker environment of a set resolved for `target`: CPython on x86_64 Linux (the only
/// platform the stub runs on), its `X.Y`, and its full version when recorded, else the newest
/// patch release.
pub fn target_environment(target: &Target) -> MarkerEnvironment {
    let full_version = target
        .full_version
        .clone()
        .unwrap_or_else(|| format!("{}.{}", target.python_version, collect::NEWEST_PATCH));
    MarkerEnvironment {
        implementation_name: "cpython".into(),
        implementation_version: full_version.clone(),
        os_name: "posix".into(),
        platform_machine: "x86_64".into(),
        platform_python_implementation: "CPython".into(),
        platform_release: String::new(),
        platform_system: "Linux".into(),
        platform_version: String::new(),
        python_full_version: full_version,
        python_version: target.python_version.clone(),
        sys_platform: "linux".into(),
    }
}

/// The environments a set may be installed in: its target's, or for a set without one (from
/// `--wheels`) every CPython the stub installs for, 3.6 to 3.13.
fn set_environments(set: &WheelSet) -> Vec<MarkerEnvironment> {
    match &set.target {
        Some(target) => vec![target_environment(target)],
        None => (6..=13)
            .map(|minor| {
                target_environment(&Target {
                    implementation: "cp".into(),
                    python_version: format!("3.{minor}"),
                    full_version: None,
                    abi: None,
                    platform: None,
                })
            })
            .collect(),
    }
}

/// Edges between the wheels of one set, by payload path: a wheel depends on every wheel of the
/// set whose distribution one of its `Requires-Dist` names and whose version the specifiers
/// allow, when the requirement applies — its marker true in one of the set's environments,
/// extras counting only where something in the set asks for them (followed to a fixed point,
/// as the stub's completeness check does). A requirement that cannot be parsed draws no edge
/// (the pack has refused such wheels already).
fn dependencies(set: &WheelSet, members: &[&WheelEntry]) -> BTreeMap<String, BTreeSet<String>> {
    let environments = set_environments(set);
    let mut by_name: BTreeMap<&str, Vec<&WheelEntry>> = BTreeMap::new();
    for wheel in members {
        by_name.entry(wheel.name.as_str()).or_default().push(wheel);
    }
    let requirements: Vec<(&WheelEntry, Requirement)> = members
        .iter()
        .flat_map(|wheel| {
            wheel
                .requires_dist
                .iter()
                .filter_map(|text| Requirement::parse(text).ok())
                .map(move |requirement| (*wheel, requirement))
        })
        .filter(|(_, requirement)| by_name.contains_key(requirement.name.as_str()))
        .collect();
    let mut extras: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let applies =
        |wheel: &WheelEntry, requirement: &Requirement, extras: &BTreeMap<&str, Vec<String>>| {
            let requested = extras.get(wheel.name.as_str()).cloned().unwrap_or_default();
            environments
                .iter()
                .any(|environment| requirement.applies_to(environment, &requested))
        };
    loop {
        let mut grew = false;
        for (wheel, requirement) in &requirements {
            if requirement.extras.is_empty() || !applies(wheel, requirement, &extras) {
                continue;
            }
            let wanted = extras.entry(requirement.name.as_str()).or_default();
            for extra in &requirement.extras {
                if !wanted.contains(extra) {
                    wanted.push(extra.clone());
                    grew = true;
                }
            }
        }
        if !grew {
            break;
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = members
        .iter()
        .map(|wheel| (component_ref(wheel), BTreeSet::new()))
        .collect();
    for (wheel, requirement) in &requirements {
        if !applies(wheel, requirement, &extras) {
            continue;
        }
        for candidate in by_name.get(requirement.name.as_str()).into_iter().flatten() {
            let allowed = match Version::from_str(&candidate.version) {
                Ok(version) => requirement.is_met_by(&version),
                Err(_) => !requirement.has_specifiers(),
            };
            if allowed && candidate.path != wheel.path {
                edges
                    .entry(component_ref(wheel))
                    .or_default()
                    .insert(component_ref(candidate));
            }
        }
    }
    edges
}

/// A name-based UUID, version 5 (SHA-1), as RFC 4122 section 4.3 and Python's `uuid.uuid5`
/// make it.
fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(namespace);
    hasher.update(name);
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = pysfx_format::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Seconds since the epoch as RFC 3339 UTC (`2023-11-14T22:13:20Z`).
fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let seconds = epoch % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), the Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        (seconds % 3600) / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v5_matches_pythons() {
        // python3 -c 'import uuid; print(uuid.uuid5(uuid.NAMESPACE_URL, "pysfx"))'
        assert_eq!(
            uuid_v5(&NAMESPACE_URL, b"pysfx"),
            "aaa3c134-c958-5986-8a1a-059d135e244a"
        );
    }

    #[test]
    fn purls() {
        let cases = [
            ("django", "4.2.16", "pkg:pypi/django@4.2.16"),
            ("Zope.Interface", "6.0", "pkg:pypi/zope-interface@6.0"),
            (
                "typing_extensions",
                "4.7.1",
                "pkg:pypi/typing-extensions@4.7.1",
            ),
            ("mylib", "1.0+local.2", "pkg:pypi/mylib@1.0%2Blocal.2"),
            ("a--b__c", "1!2.0", "pkg:pypi/a-b-c@1%212.0"),
        ];
        for (name, version, expected) in cases {
            // The manifest's names are PEP 503-normalised; the purl takes them so.
            let name = pysfx_wheel::normalize_name(name);
            assert_eq!(
                pysfx_format::purl(&name, version),
                expected,
                "{name} {version}"
            );
        }
    }

    fn wheel(name: &str, version: &str, requires: &[&str]) -> WheelEntry {
        WheelEntry {
            path: format!("wheels/{name}/{name}-{version}-py3-none-any.whl"),
            filename: format!("{name}-{version}-py3-none-any.whl"),
            name: name.into(),
            version: version.into(),
            sha256: "00".repeat(32),
            size: 1,
            unpacked_bytes: 1,
            members: 1,
            directories: 0,
            requires_python: None,
            requires_dist: requires.iter().map(ToString::to_string).collect(),
            record_sha256: None,
            from_base: false,
            executables: None,
        }
    }

    fn edges_of(target: Option<&str>, wheels: &[WheelEntry]) -> BTreeSet<(String, String)> {
        let set = WheelSet {
            name: "s".into(),
            target: target.map(|version| Target {
                implementation: "cp".into(),
                python_version: version.into(),
                full_version: None,
                abi: None,
                platform: None,
            }),
            wheels: Vec::new(),
            requires: Vec::new(),
        };
        let members: Vec<&WheelEntry> = wheels.iter().collect();
        let names: std::collections::HashMap<String, String> = wheels
            .iter()
            .map(|wheel| (component_ref(wheel), wheel.name.clone()))
            .collect();
        let name = |reference: &str| names[reference].clone();
        dependencies(&set, &members)
            .into_iter()
            .flat_map(|(from, to)| to.into_iter().map(move |to| (name(&from), name(&to))))
            .collect()
    }

    /// A set's SBOM lists every bootstrap wheel the stub may choose from: one whose
    /// `Requires-Python` admits only a later patch release than the set's `X.Y` is the one a
    /// server's CPython 3.10.13 installs, and its release's SBOM lists it.
    #[test]
    fn a_release_sbom_lists_the_bootstrap_wheel_any_patch_release_chose() {
        let mut app = wheel("app", "1.0", &[]);
        app.sha256 = "aa".repeat(32);
        let mut old = wheel("setuptools", "75.3.4", &[]);
        old.sha256 = "bb".repeat(32);
        let mut new = wheel("setuptools", "99.0", &[]);
        new.sha256 = "cc".repeat(32);
        new.requires_python = Some(">3.10".into());
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "format_version": 1, "pysfx_version": "0.1.0",
            "app": {"name": "mysite", "files": 0, "bytes": 0},
            "wheels": [app, old, new],
            "sets": [{"name": "cp310", "target": {"implementation": "cp", "python_version": "3.10"},
                      "wheels": [app.path]}],
            "bootstrap": [old.path, new.path],
            "unpacked_bytes": 3,
        }))
        .expect("manifest");
        let entries = payload_entries(&manifest, &[0; 32]).expect("SBOMs");
        let (_, set_sbom) = &entries[1];
        let text = String::from_utf8(set_sbom.clone()).expect("text");
        for chosen in [&old, &new] {
            let installed = [&manifest.wheels[0], chosen];
            let release = pysfx_plan::sbom::for_release(&manifest, 0, &text, &installed)
                .expect("the release's SBOM");
            assert!(release.contains(&chosen.sha256), "{release}");
            let other = if chosen.version == old.version {
                &new
            } else {
                &old
            };
            assert!(!release.contains(&other.sha256), "{release}");
        }
    }

    #[test]
    fn dependencies_follow_requires_dist_markers_extras_and_versions() {
        let edge = |from: &str, to: &str| (from.to_string(), to.to_string());
        let wheels = [
            wheel(
                "app-lib",
                "1.0",
                &["dep>=1", "old<1", "tests; extra == \"test\""],
            ),
            wheel("dep", "1.5", &["socks; extra == \"socks\""]),
            wheel("old", "2.0", &[]),
            wheel("tests", "1.0", &[]),
            wheel("socks", "1.0", &[]),
            wheel(
                "user",
                "1.0",
                &["dep[socks]", "compat; python_version < \"3.8\""],
            ),
            wheel("compat", "1.0", &[]),
        ];
        let expected = BTreeSet::from([
            edge("app-lib", "dep"),
            edge("user", "dep"),
            edge("dep", "socks"),
            edge("user", "compat"),
        ]);
        // Without a target, a marker true on any CPython 3.6-3.13 draws the edge.
        assert_eq!(edges_of(None, &wheels), expected);
        // A set for 3.11: python_version < "3.8" is false there.
        let mut for_311 = expected.clone();
        for_311.remove(&edge("user", "compat"));
        assert_eq!(edges_of(Some("3.11"), &wheels), for_311);
    }

    #[test]
    fn timestamps() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (315_532_800, "1980-01-01T00:00:00Z"),
        ];
        for (epoch, expected) in cases {
            assert_eq!(rfc3339(epoch), expected);
        }
    }
}
