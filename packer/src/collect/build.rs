//! The requirement lines `pip download` cannot take (local projects, sdists, VCS and sdist
//! URLs), built into wheels for the `--target` sets.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use pysfx_wheel::WheelFilename;
use sha2::{Digest, Sha256};
use tracing::info;

use super::pip::{pip_wheel_command, run_pip, PipSources};
use super::sets::target_fit;
use super::target::ParsedTarget;
use super::wheel::{wheel_filename, wheels_in};
use crate::pipfail::PipRun;
use crate::requirements::{self, Entry, Requirements, Source};

/// The wheels built from the requirement lines pip download cannot take (local projects,
/// sdists, VCS and sdist URLs), for the `--target` sets.
#[derive(Debug, Default)]
pub struct BuiltLines {
    /// The line pip download reads instead, by (file index, line number).
    pub replacements: HashMap<(usize, usize), String>,
    /// The distribution each built line provides.
    pub names: HashMap<(usize, usize), String>,
}

/// Builds every local-project, sdist and VCS line of `requirements` with
/// `HOST -m pip wheel --no-deps` (under the file's own index options) and checks that the
/// wheel serves every target: only a pure-Python wheel can.
pub fn build_for_targets(
    host_python: &str,
    requirements: &Requirements,
    targets: &[ParsedTarget],
    sources: &PipSources<'_>,
    work: &Path,
) -> Result<BuiltLines> {
    let mut built = BuiltLines::default();
    let option_lines = requirements.option_lines();
    for (file_index, file) in requirements.files.iter().enumerate() {
        if file.constraint {
            continue;
        }
        for line in &file.lines {
            let Entry::Requirement { spec, options, .. } = &line.entry else {
                continue;
            };
            let source = requirements::classify(
                spec,
                |path| Path::new(path).is_dir(),
                |path| Path::new(path).is_file(),
            );
            let Source::Build(build) = source else {
                continue;
            };
            let place = format!(
                "-r {} line {}: {}",
                file.path.display(),
                line.number,
                line.raw
            );
            let out = work.join(format!("built/{}", built.replacements.len()));
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            // The file's option lines (index, find-links) apply to the build as they would
            // to pip install; the marker is judged later, by pip download, for each target.
            let mut text = option_lines.join("\n");
            text.push('\n');
            text.push_str(&build.requirement);
            for option in options.iter().filter(|option| option.name != "--hash") {
                text.push(' ');
                text.push_str(&requirements::option_text(option));
            }
            text.push('\n');
            let listing = out.with_extension("txt");
            std::fs::write(&listing, text)
                .with_context(|| format!("cannot write {}", listing.display()))?;
            let mut command = pip_wheel_command(host_python, sources, &out);
            command.arg("--no-deps").arg("-r").arg(&listing);
            info!(
                "building {} into a wheel with {host_python} -m pip wheel",
                build.requirement
            );
            run_pip(
                command,
                &format!("{host_python} -m pip wheel"),
                PipRun::Wheel {
                    python: host_python,
                },
            )
            .with_context(|| format!("{place}: cannot build it into a wheel"))?;
            let wheel = match wheels_in(&out)?.as_slice() {
                [wheel] => wheel.clone(),
                other => bail!(
                    "{place}: pip wheel built {} wheels from it, not one",
                    other.len()
                ),
            };
            let filename = wheel_filename(&wheel)?;
            check_serves_targets(&place, &filename, targets)?;
            let mut replacement = std::path::absolute(&wheel)
                .with_context(|| format!("cannot resolve {}", wheel.display()))?
                .to_string_lossy()
                .into_owned();
            replacement.push_str(build.extras.as_deref().unwrap_or_default());
            if let Some(marker) = &build.marker {
                replacement.push_str(&format!(" ; {marker}"));
            }
            // With hashes on the line, pip is in hash-checking mode: the wheel needs one too.
            if options.iter().any(|option| option.name == "--hash") {
                let bytes = std::fs::read(&wheel)
                    .with_context(|| format!("cannot read {}", wheel.display()))?;
                let digest = pysfx_format::hex(&Sha256::digest(&bytes));
                replacement.push_str(&format!(" --hash=sha256:{digest}"));
            }
            info!("{place}: built {}", filename);
            let key = (file_index, line.number);
            built.names.insert(key, filename.name.clone());
            built.replacements.insert(key, replacement);
        }
    }
    Ok(built)
}

/// A wheel built on this machine serves a `--target` only when it is pure Python and its
/// Python tag fits the target's version.
fn check_serves_targets(
    place: &str,
    filename: &WheelFilename,
    targets: &[ParsedTarget],
) -> Result<()> {
    let pure = filename.abi.iter().all(|abi| abi == "none")
        && filename.platform.iter().all(|platform| platform == "any");
    if !pure {
        bail!(
            "{place}: it builds {filename}, a wheel for one Python and platform; --target \
             collects for interpreters pysfx cannot build for: build it in a manylinux2014 \
             container (or `auditwheel repair` its wheel) and give it with --wheels DIR, or pack \
             with --python PY, a real interpreter of each target version, in such a container"
        );
    }
    for target in targets {
        if target_fit(target)?.tags.priority(filename).is_none() {
            bail!(
                "{place}: it builds {filename}, which CPython {} does not install (--target {})",
                target.python_version,
                target.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::target::parse_target;
    use super::*;

    #[test]
    fn built_wheels_serve_targets_only_when_pure() {
        let targets = [
            parse_target("3.6").expect("parse"),
            parse_target("cp312-manylinux_2_28_x86_64").expect("parse"),
        ];
        let serves = |name: &str| {
            let filename: WheelFilename = name.parse().expect("wheel name");
            check_serves_targets("-r r.txt line 1: ./x", &filename, &targets)
        };
        for pure in ["x-1.0-py3-none-any.whl", "x-1.0-py2.py3-none-any.whl"] {
            assert!(serves(pure).is_ok(), "{pure}");
        }
        let error = serves("x-1.0-cp311-cp311-linux_x86_64.whl").expect_err("a platform wheel");
        let message = error.to_string();
        assert!(
            message.contains("-r r.txt line 1: ./x") && message.contains("--python"),
            "{message}"
        );
        let error = serves("x-1.0-py311-none-any.whl").expect_err("not for 3.6");
        assert!(error.to_string().contains("CPython 3.6"), "{error}");
    }
}
