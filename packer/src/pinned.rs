//! `pysfx inspect --requirements`: a wheel set as hash-pinned requirements, one
//! `name==version --hash=sha256:<digest>` line per distribution, which
//! `pip install --require-hashes` and `pip-audit -r FILE --require-hashes --no-deps
//! --disable-pip` read.

use std::collections::BTreeMap;

use pysfx_format::{escape_control, Manifest, WheelEntry};

/// The lines for `wheels`, after a comment naming what they are. Wheels of one distribution
/// and version (for several platforms) share a line with a `--hash` each, as pip-compile
/// writes them; two versions of one distribution cannot be one requirements file, and are an
/// error naming them.
pub fn render(heading: &str, wheels: &[&WheelEntry]) -> Result<String, String> {
    let mut by_name: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for wheel in wheels {
        by_name
            .entry(wheel.name.as_str())
            .or_default()
            .entry(wheel.version.as_str())
            .or_default()
            .push(wheel.sha256.as_str());
    }
    let mut out = format!("# {}\n", escape_control(heading));
    for (name, versions) in &by_name {
        if versions.len() > 1 {
            let listed: Vec<&str> = versions.keys().copied().collect();
            return Err(format!(
                "the set offers {name} in {} versions ({}), of which an install takes the \
                 highest its Python accepts; give --python PY for the wheels that interpreter gets",
                listed.len(),
                listed.join(", ")
            ));
        }
        for (version, digests) in versions {
            let mut digests = digests.clone();
            digests.sort_unstable();
            digests.dedup();
            out.push_str(&escape_control(&format!("{name}=={version}")));
            for digest in digests {
                out.push_str(&format!(" --hash=sha256:{digest}"));
            }
            out.push('\n');
        }
    }
    Ok(out)
}

/// The heading of a set's requirements: app, version, set, payload digest.
pub fn heading(manifest: &Manifest, set: &str, payload_sha256: &str) -> String {
    format!(
        "{}{}, wheel set {set} (payload_sha256 {payload_sha256}), from pysfx inspect --requirements",
        manifest.app.name,
        manifest
            .app
            .version
            .as_deref()
            .map(|version| format!(" {version}"))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(name: &str, version: &str, sha256: &str) -> WheelEntry {
        WheelEntry {
            path: format!("wheels/{sha256}/{name}-{version}-py3-none-any.whl"),
            filename: format!("{name}-{version}-py3-none-any.whl"),
            name: name.into(),
            version: version.into(),
            sha256: sha256.into(),
            size: 1,
            unpacked_bytes: 1,
            members: 1,
            directories: 0,
            requires_python: None,
            requires_dist: Vec::new(),
            record_sha256: None,
            from_base: false,
            executables: None,
        }
    }

    #[test]
    fn one_line_per_distribution_with_every_hash() {
        let wheels = [
            wheel("markupsafe", "2.1.5", "bb"),
            wheel("django", "4.2.16", "cc"),
            wheel("markupsafe", "2.1.5", "aa"),
        ];
        let refs: Vec<&WheelEntry> = wheels.iter().collect();
        assert_eq!(
            render("site", &refs).expect("render"),
            "# site\ndjango==4.2.16 --hash=sha256:cc\nmarkupsafe==2.1.5 --hash=sha256:aa \
             --hash=sha256:bb\n"
        );
    }

    #[test]
    fn two_versions_of_one_distribution_are_an_error() {
        let wheels = [wheel("pip", "21.3.1", "aa"), wheel("pip", "24.2", "bb")];
        let refs: Vec<&WheelEntry> = wheels.iter().collect();
        let error = render("site", &refs).expect_err("two versions");
        assert!(
            error.contains("pip in 2 versions (21.3.1, 24.2)"),
            "{error}"
        );
    }
}
