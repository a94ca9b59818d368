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
            bail!(
                "set {} (CPython {}) does not meet {}: {}; add the missing distributions to the requirements (or a --wheels directory)",
                set.name,
                target.python_version,
                if unmet.len() == 1 { "a requirement" } else { "these requirements" },
                pysfx_plan::list_unmet(&unmet)
            );
        }
    }
    Ok(())
}

/// A `--wheels` set (for every target) packed with `--python PY` must install on PY, as the
/// stub would plan it there: a wheel for every distribution, every requirement met. (A set
/// resolved by pip for PY is held to that by `check_sets_complete`.) The interpreter was named
/// to the packer; an artifact that would exit 4 on it is refused, not written.
pub(crate) fn check_given_interpreters_fit(
    manifest: &Manifest,
    sets: &[super::sets::CollectedSet],
) -> Result<()> {
    let given = (sets.iter())
        .filter(|set| set.target.is_none())
        .flat_map(|set| set.interpreters.iter());
    for interpreter in given {
        if let Err(error) = pysfx_plan::choose(manifest, interpreter) {
            bail!(
                "--python {} (CPython {}) could not install this artifact: {}",
                interpreter.executable.display(),
                interpreter.version(),
                pysfx_format::escape_control(&error.to_string())
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
    // A bare `linux_x86_64` wheel was built here (a local project, an sdist): a manylinux
    // build of it is the fix that always applies; `--target` only for what the index has
    // manylinux wheels of (a local project it cannot collect at all).
    if bare {
        fixes.push(
            "build a local project in a manylinux2014 container, or repair its wheel with \
             `auditwheel repair --plat manylinux2014_x86_64`"
                .to_string(),
        );
    }
    if !versions.is_empty() {
        let targets: Vec<String> = versions
            .iter()
            .map(|version| format!("--target cp{version}-manylinux2014_x86_64"))
            .collect();
        fixes.push(format!(
            "collect the requirements with {} instead of --python (pip then takes wheels that \
             run on glibc {max_glibc}{})",
            targets.join(" "),
            match bare {
                true => ", for a distribution the index has them of",
                false => "",
            }
        ));
    }
    if prebuilt {
        fixes.push(format!(
            "put a manylinux wheel for glibc {max_glibc} or older in the wheel directory instead \
             (pip download --only-binary=:all: --platform manylinux2014_x86_64 --python-version \
             X.Y NAME)"
        ));
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

/// A `--wheels` set (for every target) may offer a distribution in several versions, one for
/// each range of Pythons; an install takes the highest version with a wheel its interpreter
/// accepts, so one fitting every Python another fits leaves that other unused. Said once per
/// distribution, so a set that was not meant to be mixed is noticed at pack time.
pub(crate) fn warn_several_versions(
    sets: &[WheelSet],
    infos: &BTreeMap<String, (WheelInfo, PathBuf)>,
) {
    for set in sets.iter().filter(|set| set.target.is_none()) {
        let mut versions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (info, _) in set.wheels.iter().filter_map(|path| infos.get(path)) {
            versions
                .entry(info.name.as_str())
                .or_default()
                .insert(info.version.as_str());
        }
        for (name, versions) in versions.iter().filter(|(_, versions)| versions.len() > 1) {
            let listed: Vec<&str> = versions.iter().copied().collect();
            warn!(
                "set {} offers {} in {} versions ({}): an install takes the highest one with a \
                 wheel its Python accepts, so a lower one is only for Pythons the higher does \
                 not fit",
                pysfx_format::escape_control(&set.name),
                pysfx_format::escape_control(name),
                listed.len(),
                pysfx_format::escape_control(&listed.join(", "))
            );
        }
    }
}

/// Refuses a set two of whose distributions cannot be installed together: one ships a file
/// where the other needs a directory (`shared/x` and `shared/x/y.py`), which every install
/// choosing both refuses (exit 3). Builds of one distribution (only one is installed) are not
/// compared; the bootstrap wheels are, with every set.
pub(crate) fn check_no_file_directory_clash(
    sets: &[WheelSet],
    bootstrap: &BTreeSet<String>,
    infos: &BTreeMap<String, (WheelInfo, PathBuf)>,
) -> Result<()> {
    for set in sets {
        let infos: Vec<&WheelInfo> = (set.wheels.iter().chain(bootstrap))
            .filter_map(|path| infos.get(path).map(|(info, _)| info))
            .collect();
        let wheels: Vec<pysfx_install::SetMember> = (infos.iter())
            .map(|info| pysfx_install::SetMember {
                name: &info.name,
                destinations: &info.destinations,
            })
            .collect();
        if let Some(clash) = pysfx_install::file_directory_clash(&wheels) {
            let shown = match clash.path.strip_prefix("lib/python3/site-packages/") {
                Some(module) => format!("{module} (in site-packages)"),
                None => format!("venv/{}", clash.path),
            };
            bail!(
                "set {}: {} ships the file {} and {} needs a directory there: the two cannot be \
                 installed together (an install that chooses both refuses them, exit 3)",
                set.name,
                infos[clash.file_wheel].filename,
                pysfx_format::escape_control(&shown),
                infos[clash.directory_wheel].filename
            );
        }
    }
    Ok(())
}

/// Warns when no CPython 3.6–3.13 on x86_64 Linux (glibc up to `max_glibc`) could install a
/// set made for every interpreter (`--wheels` alone), as the stub plans it: for each, either a
/// distribution has no wheel its tags and version take (`cp314` wheels only, say), or what it
/// would install does not meet its own requirements (Django without asgiref), so the
/// artifact would exit 4 on every server the stub supports, or it takes none of the set's
/// wheels (each declares a `Requires-Python` it fails: skipped, so it installs none). Names
/// what the closest version lacks. A warning, not an error: a newer CPython may take it.
pub(crate) fn warn_if_no_python_fits(manifest: &Manifest, max_glibc: &GlibcVersion) {
    let glibc = match max_glibc.0.as_slice() {
        [major, minor, ..] => Some((*major, *minor)),
        _ => None,
    };
    for set in manifest.sets.iter().filter(|set| set.target.is_none()) {
        // The set's wheels, then the bootstrap wheels of distributions it lacks, as the stub
        // plans them.
        let own: Vec<&WheelEntry> = (set.wheels.iter())
            .filter_map(|path| manifest.wheel(path))
            .collect();
        if own.is_empty() {
            continue;
        }
        let names: BTreeSet<&str> = own.iter().map(|entry| entry.name.as_str()).collect();
        let bootstrap = (manifest.bootstrap.iter())
            .filter_map(|path| manifest.wheel(path))
            .filter(|entry| !names.contains(entry.name.as_str()));
        let candidates: Vec<pysfx_wheel::Candidate<&WheelEntry>> = (own.iter().copied())
            .chain(bootstrap)
            .filter_map(|entry| {
                Some(pysfx_wheel::Candidate {
                    filename: entry.filename.parse().ok()?,
                    requires_python: entry.requires_python.clone(),
                    item: entry,
                })
            })
            .collect();
        // The version that comes closest: fewest distributions without a wheel, then fewest
        // requirements unmet; and what it lacks.
        let mut closest: Option<((usize, usize), u32, String)> = None;
        // Whether a version installs none of the set's wheels.
        let mut empty = false;
        for minor in 6..=13 {
            let facts = pysfx_wheel::PlatformFacts::linux_cpython(minor, glibc);
            let tags = pysfx_wheel::InterpreterTags::for_cpython(&facts);
            let Ok(python) = format!("3.{minor}.{}", crate::collect::NEWEST_PATCH).parse() else {
                continue;
            };
            let selection = pysfx_wheel::select(&candidates, &tags, &python);
            let takes_own =
                (selection.chosen.iter()).any(|entry| names.contains(entry.name.as_str()));
            let (score, lacking) = if selection.missing.is_empty() && !takes_own {
                // Every wheel of the set left out for its Requires-Python: the install skips
                // them all (nothing installed requires them) and succeeds with none.
                empty = true;
                continue;
            } else if selection.missing.is_empty() {
                let chosen: Vec<WheelEntry> = selection
                    .chosen
                    .iter()
                    .map(|entry| (*entry).clone())
                    .collect();
                let environment = sbom::target_environment(&pysfx_format::Target {
                    implementation: "cp".into(),
                    python_version: format!("3.{minor}"),
                    full_version: None,
                    abi: None,
                    platform: None,
                });
                let Ok(unmet) =
                    pysfx_plan::unmet_requirements(&chosen, &selection.skipped, &environment)
                else {
                    return;
                };
                if unmet.is_empty() {
                    return;
                }
                (
                    (0, unmet.len()),
                    format!("does not meet {}", pysfx_plan::list_unmet(&unmet)),
                )
            } else {
                let names: Vec<String> = selection.missing.into_iter().map(|m| m.name).collect();
                (
                    (names.len(), 0),
                    format!("has no wheel it takes for {}", names.join(", ")),
                )
            };
            if closest.as_ref().is_none_or(|(best, _, _)| score < *best) {
                closest = Some((score, minor, lacking));
            }
        }
        // The newest patch release of each version is what the plans above are for: a
        // Requires-Python only an older one meets (`<3.6.16`, `===3.7.16`) still installs on
        // some server.
        let an_older_patch_meets = || {
            candidates.iter().any(|candidate| {
                candidate.requires_python.as_deref().is_none_or(|requires| {
                    (6..=13).any(|minor| {
                        (0..=crate::collect::NEWEST_PATCH).any(|patch| {
                            format!("3.{minor}.{patch}").parse().is_ok_and(|python| {
                                pysfx_wheel::python_satisfies(requires, &python)
                            })
                        })
                    })
                })
            })
        };
        // An install that fails (exit 4) somewhere is what to say; else every version
        // installs none of the set's wheels.
        if closest.is_none() && empty && !an_older_patch_meets() {
            warn!(
                "no CPython 3.6-3.13 on x86_64 Linux (glibc {max_glibc}) installs any wheel of \
                 set {}: each declares a Requires-Python none of them meets, so each is \
                 skipped (the release gets the app and a venv without them)",
                set.name
            );
        } else if let Some((_, minor, lacking)) = closest {
            warn!(
                "no CPython 3.6-3.13 on x86_64 Linux (glibc {max_glibc}) can install set {}: \
                 even on CPython 3.{minor} it {lacking} (the artifact will exit 4 on such \
                 servers; pack the missing wheels, or -r with --python/--target)",
                set.name
            );
        }
    }
}

/// Warns of each set resolved for a Python (`-r`) whose venvs would get no pip: bootstrap
/// wheels are packed (SPEC: "so the venv has a working pip"), but none of pip's fits that
/// Python's tags and `Requires-Python`, and the set has no pip of its own. The default
/// bootstrap wheels are collected for each set's Python; those of `--bootstrap-wheels` (or
/// `$PYSFX_BOOTSTRAP_WHEELS`) are taken as they are, and the stub would skip them in silence.
pub(crate) fn warn_if_bootstrap_misses(manifest: &Manifest, max_glibc: &GlibcVersion) {
    let glibc = match max_glibc.0.as_slice() {
        [major, minor, ..] => Some((*major, *minor)),
        _ => None,
    };
    let pips: Vec<pysfx_wheel::Candidate<()>> = (manifest.bootstrap.iter())
        .filter_map(|path| manifest.wheel(path))
        .filter(|entry| entry.name == "pip")
        .filter_map(|entry| {
            Some(pysfx_wheel::Candidate {
                filename: entry.filename.parse().ok()?,
                requires_python: entry.requires_python.clone(),
                item: (),
            })
        })
        .collect();
    if manifest.bootstrap.is_empty() {
        return;
    }
    for set in &manifest.sets {
        let Some(target) = &set.target else {
            continue;
        };
        let own_pip = (set.wheels.iter())
            .filter_map(|path| manifest.wheel(path))
            .any(|entry| entry.name == "pip");
        let minor = target.python_version.strip_prefix("3.");
        let Some(minor) = minor.and_then(|minor| minor.parse::<u32>().ok()) else {
            continue;
        };
        let full = (target.full_version.clone())
            .unwrap_or_else(|| format!("3.{minor}.{}", crate::collect::NEWEST_PATCH));
        let Ok(version) = full.parse() else {
            continue;
        };
        let facts = pysfx_wheel::PlatformFacts::linux_cpython(minor, glibc);
        let tags = pysfx_wheel::InterpreterTags::for_cpython(&facts);
        if !own_pip
            && pysfx_wheel::select(&pips, &tags, &version)
                .chosen
                .is_empty()
        {
            warn!(
                "set {}: no bootstrap wheel of pip fits CPython 3.{minor} (its tags or its \
                 Requires-Python), so that Python's venvs will have no pip: add a pip for \
                 3.{minor} to --bootstrap-wheels, or leave them out with --no-bootstrap",
                set.name
            );
        }
    }
}
