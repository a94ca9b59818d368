//! The checks a pack makes of its wheel sets before writing: each set complete for its target,
//! every wheel within the platform floor, one version of a distribution per set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use pysfx_format::{Manifest, WheelEntry, WheelSet};

use crate::collect::WheelInfo;
use crate::elf::GlibcVersion;
use crate::{floor, sbom};
use tracing::warn;

/// Every set resolved for a target meets its own requirements there (what `pip check` would
/// say on that Python), the bootstrap wheels counting for the distributions a set lacks: a
/// requirement pip did not collect fails the pack, naming it, instead of an install that
/// refuses it later. A `--wheels` set for no particular target is checked at install, for the
/// interpreter that installs it.
pub(crate) fn check_sets_complete(manifest: &Manifest) -> Result<()> {
    for set in &manifest.sets {
        let Some(target) = &set.target else {
            continue;
        };
        let environment = sbom::target_environment(target);
        let mut chosen: Vec<WheelEntry> = set
            .wheels
            .iter()
            .filter_map(|path| manifest.wheel(path))
            .cloned()
            .collect();
        let mut names: BTreeSet<String> = chosen.iter().map(|wheel| wheel.name.clone()).collect();
        for path in &manifest.bootstrap {
            if let Some(wheel) = manifest.wheel(path) {
                if names.insert(wheel.name.clone()) {
                    chosen.push(wheel.clone());
                }
            }
        }
        let unmet = pysfx_plan::unmet_requirements(&chosen, &[], &environment)
            .map_err(|reason| anyhow!(reason))?;
        if !unmet.is_empty() {
            let lines: Vec<String> = unmet.iter().map(ToString::to_string).collect();
            bail!(
                "set {} (CPython {}) does not meet {}: {}; add the missing distributions to the requirements (or a --wheels directory)",
                set.name,
                target.python_version,
                if lines.len() == 1 { "a requirement" } else { "these requirements" },
                lines.join("; ")
            );
        }
    }
    Ok(())
}

/// The platform floor (SPEC: "The platform floor holds"): every wheel that ships — in any set,
/// from `--wheels` or collected, and the bootstrap wheels — must install on x86_64 Linux with
/// glibc `--max-glibc`, by at least one of its platform tags. Names each wheel that does not,
/// where it is, and the fix.
pub(crate) fn check_platform_floor(
    sets: &[WheelSet],
    bootstrap: &BTreeSet<String>,
    infos: &BTreeMap<String, (WheelInfo, PathBuf)>,
    max_glibc: &GlibcVersion,
) -> Result<()> {
    let mut lines = Vec::new();
    let mut newest: Option<GlibcVersion> = None;
    let mut versions = BTreeSet::new();
    let mut bare = false;
    let mut prebuilt = false;
    for (path, (info, _)) in infos {
        let why = match floor::wheel_need(&info.filename, max_glibc) {
            floor::WheelNeed::Fits(_) => continue,
            floor::WheelNeed::NewerGlibc(needed) => {
                let why = format!("needs glibc {needed}");
                if newest.as_ref().is_none_or(|newest| needed > *newest) {
                    newest = Some(needed);
                }
                why
            }
            floor::WheelNeed::Unfit(why) => {
                bare |= info
                    .filename
                    .platform
                    .iter()
                    .any(|p| p.starts_with("linux_"));
                why.to_string()
            }
        };
        let mut places: Vec<String> = Vec::new();
        for set in sets.iter().filter(|set| set.wheels.contains(path)) {
            places.push(format!("set {}", set.name));
            match &set.target {
                Some(target) => {
                    versions.insert(target.python_version.replace('.', ""));
                }
                None => prebuilt = true,
            }
        }
        if bootstrap.contains(path) {
            places.push("bootstrap".into());
            prebuilt = true;
        }
        lines.push(format!(
            "  {} ({}): {why}",
            info.filename,
            places.join(", ")
        ));
    }
    if lines.is_empty() {
        return Ok(());
    }
    let mut fixes = Vec::new();
    if !versions.is_empty() {
        let targets: Vec<String> = versions
            .iter()
            .map(|version| format!("--target cp{version}-manylinux2014_x86_64"))
            .collect();
        fixes.push(format!(
            "collect the requirements with {} instead of --python (pip then takes wheels that \
             run on glibc {max_glibc})",
            targets.join(" ")
        ));
    }
    if prebuilt {
        fixes.push(format!(
            "put a manylinux wheel for glibc {max_glibc} or older in the wheel directory instead \
             (pip download --only-binary=:all: --platform manylinux2014_x86_64 --python-version \
             X.Y NAME)"
        ));
    }
    if bare {
        fixes.push(
            "build a local project in a manylinux2014 container, or repair its wheel with \
             `auditwheel repair --plat manylinux2014_x86_64`"
                .to_string(),
        );
    }
    if let Some(newest) = newest {
        fixes.push(format!(
            "or pass --max-glibc {newest} on purpose, if no older system will run this artifact"
        ));
    }
    bail!(
        "{} {} not install on the platform floor (x86_64 Linux, glibc {max_glibc}, --max-glibc):\n{}\nhint: {}",
        lines.len(),
        if lines.len() == 1 { "wheel does" } else { "wheels do" },
        lines.join("\n"),
        fixes.join("; ")
    )
}

/// A resolved set has one version of each distribution; two would be ambiguous.
pub(crate) fn check_one_version_per_set(
    sets: &[WheelSet],
    infos: &BTreeMap<String, (WheelInfo, PathBuf)>,
) -> Result<()> {
    for set in sets.iter().filter(|set| set.target.is_some()) {
        let mut versions: BTreeMap<&str, &str> = BTreeMap::new();
        for path in &set.wheels {
            let Some((info, _)) = infos.get(path) else {
                continue;
            };
            if let Some(other) = versions.insert(&info.name, &info.version) {
                if other != info.version {
                    bail!(
                        "set {} has {} twice ({other} and {})",
                        set.name,
                        info.name,
                        info.version
                    );
                }
            }
        }
    }
    Ok(())
}

/// Warns when no CPython 3.6–3.13 on x86_64 Linux (glibc up to `max_glibc`) could install a
/// set made for every interpreter (`--wheels` alone): each has a distribution without a wheel
/// its tags and version take (`cp314` wheels only, say), so the artifact would exit 4 on every
/// server the stub supports. Names the distributions the closest version lacks. A warning, not
/// an error: a newer CPython may take it.
pub(crate) fn warn_if_no_python_fits(
    sets: &[WheelSet],
    infos: &BTreeMap<String, (WheelInfo, PathBuf)>,
    max_glibc: &GlibcVersion,
) {
    let glibc = match max_glibc.0.as_slice() {
        [major, minor, ..] => Some((*major, *minor)),
        _ => None,
    };
    for set in sets.iter().filter(|set| set.target.is_none()) {
        let candidates: Vec<pysfx_wheel::Candidate<&str>> = set
            .wheels
            .iter()
            .filter_map(|path| infos.get(path).map(|(info, _)| (path, info)))
            .map(|(path, info)| pysfx_wheel::Candidate {
                filename: info.filename.clone(),
                requires_python: info.requires_python.clone(),
                item: path.as_str(),
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let mut closest: Option<(u32, Vec<String>)> = None;
        for minor in 6..=13 {
            let facts = pysfx_wheel::PlatformFacts::linux_cpython(minor, glibc);
            let tags = pysfx_wheel::InterpreterTags::for_cpython(&facts);
            let Ok(python) = format!("3.{minor}.{}", crate::collect::NEWEST_PATCH).parse() else {
                continue;
            };
            let selection = pysfx_wheel::select(&candidates, &tags, &python);
            if selection.missing.is_empty() {
                return;
            }
            let lacking: Vec<String> = selection.missing.into_iter().map(|m| m.name).collect();
            if closest
                .as_ref()
                .is_none_or(|(_, fewest)| lacking.len() < fewest.len())
            {
                closest = Some((minor, lacking));
            }
        }
        if let Some((minor, lacking)) = closest {
            warn!(
                "no CPython 3.6-3.13 on x86_64 Linux (glibc {max_glibc}) can install set {}: \
                 even CPython 3.{minor} has no wheel it takes for {} (the artifact will exit 4 \
                 on such servers; pack wheels for them, or -r with --python/--target)",
                set.name,
                lacking.join(", ")
            );
        }
    }
}
