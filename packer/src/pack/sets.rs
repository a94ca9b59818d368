//! The wheel sets of a pack: collected with pip from the `-r` files (one per `--python` and
//! `--target`) or taken from `--wheels`, and the bootstrap wheels.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use pysfx_format::Target;
use pysfx_venv::Interpreter;
use tracing::{info, warn};

use super::inputs::check_output_is_not;
use crate::collect::{self, ParsedTarget, PipSources, WheelInfo};
use crate::requirements::Requirements;
use crate::PackArgs;

/// Whether two wheels stand for one distribution at one version and build, for at least
/// one tag: an interpreter that takes that tag ranks them equal.
fn same_slot(one: &pysfx_wheel::WheelFilename, other: &pysfx_wheel::WheelFilename) -> bool {
    one.name == other.name
        && one.version == other.version
        && one.build == other.build
        && one
            .tags()
            .any(|tag| other.tags().any(|theirs| theirs == tag))
}

/// A wheel set as collected.
pub(crate) struct CollectedSet {
    pub(crate) name: String,
    /// `None` for the set that serves every target (`--wheels` without `-r`).
    pub(crate) target: Option<Target>,
    pub(crate) files: Vec<PathBuf>,
    /// The `--python` interpreters it is for: the pack holds the set to install on each, and
    /// byte-compiles it with each (unless `--no-compile`).
    pub(crate) interpreters: Vec<Interpreter>,
    /// Its own requirements, for the stub to hold the chosen wheels to (the manifest's).
    pub(crate) requires: Vec<String>,
}

/// The wheel sets and the bootstrap wheels, collected into `work`.
/// `epoch` is the pack's zip time, given to pip for the wheels it builds.
pub(crate) fn collect_sets(
    args: &PackArgs,
    targets: &[ParsedTarget],
    work: &Path,
    epoch: u64,
) -> Result<(Vec<CollectedSet>, Vec<PathBuf>)> {
    let mut prebuilt = Vec::new();
    for directory in &args.wheels {
        let found = collect::wheels_in(directory)?;
        if found.is_empty() {
            bail!("--wheels {}: no .whl files in it", directory.display());
        }
        for file in found {
            let info = collect::read_wheel(&file, None)?;
            // Two contents for one distribution, version, build and tag: which one a host
            // gets would be a tie-break (the same file name twice, or names that differ in
            // spelling alone: `Alpha-1.0` and `alpha-1.0.0`).
            let clash = (prebuilt.iter()).find(|(_, other): &&(PathBuf, WheelInfo)| {
                other.sha256 != info.sha256 && same_slot(&other.filename, &info.filename)
            });
            if let Some((other, _)) = clash {
                bail!(
                    "{} and {} are two different wheels of one distribution, version and tag \
                     (an install could take either); keep one of them",
                    other.display(),
                    file.display()
                );
            }
            prebuilt.push((file, info));
        }
    }
    let mut host_python: Option<String> = None;
    let mut hashed = false;
    let sets = if args.requirements.is_empty() {
        // One set for every target: the --wheels, or nothing at all (an app without
        // dependencies gets a venv with the bootstrap wheels). Each --python must be able to
        // install it, `--no-compile` or not, and byte-compiles it.
        let mut interpreters = Vec::new();
        for python in &args.python {
            interpreters
                .push(Interpreter::query(python).with_context(|| format!("--python {python}"))?);
        }
        vec![CollectedSet {
            name: "wheels".into(),
            target: None,
            files: prebuilt.iter().map(|(path, _)| path.clone()).collect(),
            interpreters,
            requires: Vec::new(),
        }]
    } else {
        let (sets, checks_hashes) =
            requirement_sets(args, targets, &prebuilt, &mut host_python, work, epoch)?;
        hashed = checks_hashes;
        sets
    };

    let mut bootstrap = Vec::new();
    if !args.no_bootstrap {
        let given = args.bootstrap_dirs();
        // Where the directories were named, for the messages.
        let named_by = match args.bootstrap_wheels.is_empty() {
            true => "$PYSFX_BOOTSTRAP_WHEELS",
            false => "--bootstrap-wheels",
        };
        if !given.is_empty() {
            for directory in &given {
                let wheels = collect::wheels_in(directory)?;
                // Whatever lies there goes into every venv, marked as the installer's own in
                // the SBOM: only the distributions that bootstrap a venv may.
                for file in &wheels {
                    if !BOOTSTRAP_NAMES.contains(&collect::wheel_filename(file)?.name.as_str()) {
                        return Err(crate::UsageError(format!(
                            "{named_by}: {} is not a wheel of pip, setuptools or wheel, the \
                             only distributions that bootstrap a venv; give the app's wheels \
                             with --wheels",
                            crate::appfiles::shown(file)
                        ))
                        .into());
                    }
                }
                bootstrap.extend(wheels);
            }
            // The bootstrap wheels are what gives the venv a working pip (SPEC).
            let has_pip = bootstrap.iter().any(|file| {
                collect::wheel_filename(file).is_ok_and(|filename| filename.name == "pip")
            });
            if !has_pip {
                let directories: Vec<String> = (given.iter())
                    .map(|directory| directory.display().to_string())
                    .collect();
                return Err(crate::UsageError(format!(
                    "{named_by} {}: no pip wheel there, and the venv gets its pip from \
                     these; add pip's (and setuptools') wheels, or --no-bootstrap for a venv \
                     without pip",
                    directories.join(", ")
                ))
                .into());
            }
        } else {
            let versions: BTreeSet<String> = if sets.iter().any(|set| set.target.is_none()) {
                (6..=13).map(|minor| format!("3.{minor}")).collect()
            } else {
                sets.iter()
                    .filter_map(|set| set.target.as_ref().map(|t| t.python_version.clone()))
                    .collect()
            };
            if hashed {
                // pip's hashes cannot be known for wheels pysfx picks itself (SPEC, "Supply
                // chain"): say so rather than let a hash-checked pack look fully checked.
                warn!(
                    "the requirements are hash-checked (--hash), but the bootstrap wheels (pip, \
                     setuptools) are downloaded without hashes and are NOT hash-checked; \
                     --no-bootstrap leaves them out, --bootstrap-wheels DIR takes them from a \
                     directory you have checked"
                );
            }
            let out = work.join("bootstrap");
            std::fs::create_dir_all(&out)?;
            let host = host_python.unwrap_or_else(|| "python3".into());
            let tmp = collect::pip_tmpdir(work)?;
            bootstrap = collect::pip_download_bootstrap(&host, &by_minor(versions), &out, &tmp)?;
        }
    }
    Ok((sets, bootstrap))
}

/// The sets resolved by pip from the `-r` files: one per `--python` (pip wheel), one per
/// `--target` (pip download, after the lines it cannot take are built into wheels). Each
/// `--wheels` wheel joins every set it fits that lacks its distribution, and every
/// requirement line must be in every set. Sets `host_python` to the interpreter that ran pip
/// for targets. Also returns whether the requirements are hash-checked (`--hash`).
fn requirement_sets(
    args: &PackArgs,
    targets: &[ParsedTarget],
    prebuilt: &[(PathBuf, WheelInfo)],
    host_python: &mut Option<String>,
    work: &Path,
    epoch: u64,
) -> Result<(Vec<CollectedSet>, bool)> {
    let requirements = Requirements::read(&args.requirements)?;
    for file in &requirements.files {
        check_output_is_not(&args.output, &file.path, "-r")?;
    }
    // Until the sets are collected, whether or not that succeeds.
    let _litter = collect::ProjectLitter::watch(&requirements);
    let remote = requirements.remote_files();
    if !remote.is_empty() && !targets.is_empty() {
        warn!(
            "pysfx cannot look into requirements files named by URL; their local projects and \
             URLs will be missing from --target sets: {}",
            remote.join("; ")
        );
    }
    let src = work.join("src");
    let tmp = collect::pip_tmpdir(work)?;
    let sources = PipSources {
        find_links: &args.wheels,
        src: &src,
        epoch,
        tmp: &tmp,
    };
    let mut pythons = args.python.clone();
    if pythons.is_empty() && targets.is_empty() {
        pythons.push("python3".into());
    }
    let mut sets = Vec::new();
    let mut fits = Vec::new();
    // pip for --target and bootstrap downloads runs under the newest --python given (an old
    // one's pip may not know today's wheel tags), else python3.
    let mut host_version = (0, 0, 0);
    if !pythons.is_empty() {
        let copies =
            requirements.write_copies(&work.join("requirements/python"), &HashMap::new())?;
        let mut queried: Vec<(&String, std::path::PathBuf)> = Vec::new();
        for (index, python) in pythons.iter().enumerate() {
            let interpreter =
                Interpreter::query(python).with_context(|| format!("--python {python}"))?;
            // Two spellings of one interpreter (`python3.11`, its full path, a link to it).
            let executable = std::fs::canonicalize(&interpreter.executable)
                .unwrap_or_else(|_| interpreter.executable.clone());
            if let Some((spelled, _)) = queried.iter().find(|(_, other)| *other == executable) {
                return Err(crate::UsageError(format!(
                    "--python {python} is the same interpreter as --python {spelled} ({}); give \
                     it once",
                    interpreter.executable.display()
                ))
                .into());
            }
            queried.push((python, executable));
            if interpreter.version_info > host_version {
                host_version = interpreter.version_info;
                *host_python = Some(python.clone());
            }
            let out = work.join(format!("python-{index}"));
            std::fs::create_dir_all(&out)?;
            collect::pip_wheel(python, &copies, &sources, &out)?;
            let files = collect::wheels_in(&out)?;
            let mut name = format!(
                "cp{}{}",
                interpreter.version_info.0, interpreter.version_info.1
            );
            // Another interpreter of the same X.Y (another build, another platform): its set
            // gets a name of its own, so a receipt says which one a release got.
            let taken = |name: &str| sets.iter().any(|set: &CollectedSet| set.name == name);
            if taken(&name) {
                let first = name.clone();
                let mut number = 2;
                while taken(&format!("{first}-{number}")) {
                    number += 1;
                }
                name = format!("{first}-{number}");
                warn!(
                    "two interpreters of Python {}: both sets are kept, the second as {name}",
                    interpreter.version()
                );
            }
            fits.push(collect::interpreter_fit(&interpreter));
            sets.push(CollectedSet {
                name,
                target: Some(collect::target_of(&interpreter)),
                files,
                interpreters: vec![interpreter],
                requires: Vec::new(),
            });
        }
    }
    let python_sets = sets.len();
    let mut built = collect::BuiltLines::default();
    if !targets.is_empty() {
        let host = host_python.get_or_insert_with(|| "python3".into()).clone();
        built = collect::build_for_targets(&host, &requirements, targets, &sources, work)?;
        let copies =
            requirements.write_copies(&work.join("requirements/target"), &built.replacements)?;
        for (index, target) in targets.iter().enumerate() {
            let out = work.join(format!("target-{index}"));
            std::fs::create_dir_all(&out)?;
            collect::pip_download_target(&host, target, &copies, &sources, &out)?;
            let files = collect::wheels_in(&out)?;
            fits.push(collect::target_fit(target)?);
            sets.push(CollectedSet {
                name: target.name.clone(),
                target: Some(target.target.clone()),
                files,
                interpreters: Vec::new(),
                requires: Vec::new(),
            });
        }
    }
    for (index, (set, fit)) in sets.iter_mut().zip(&fits).enumerate() {
        for wheel in collect::join_prebuilt(&mut set.files, fit, prebuilt)? {
            info!("set {}: {} from --wheels", set.name, wheel.display());
        }
        // pip wheel builds the local projects of --python sets itself; pysfx built those of
        // --target sets and knows what they are.
        let built = (index >= python_sets).then_some(&built);
        collect::check_requirements_present(&set.name, &set.files, &requirements, built)?;
        set.requires = collect::root_requirements(&requirements, built);
    }
    // pip copies a --wheels wheel it picks into the set: the same file name, and the same
    // bytes (a wheel of that name from the index, when pip refused this one against a
    // `--hash` pin, is not it).
    let digest = |path: &Path| {
        crate::appfiles::open_regular(path, true)
            .and_then(pysfx_format::sha256_reader)
            .map(|(digest, _)| digest)
            .ok()
    };
    let used: HashSet<(&std::ffi::OsStr, Option<[u8; 32]>)> = sets
        .iter()
        .flat_map(|set| set.files.iter())
        .filter_map(|file| {
            let name = file.file_name()?;
            let named = prebuilt
                .iter()
                .any(|(path, _)| path.file_name() == Some(name));
            named.then(|| (name, digest(file)))
        })
        .collect();
    for (path, info) in prebuilt {
        let taken = path
            .file_name()
            .is_some_and(|name| used.contains(&(name, digest(path))));
        if !taken {
            warn!(
                "--wheels {}: in none of the wheel sets (it fits none, or each has another \
                 wheel of {}, such as one that matches a --hash pin); left out",
                path.display(),
                info.name
            );
        }
    }
    Ok((sets, requirements.checks_hashes()))
}

/// The distributions `--bootstrap-wheels` may hold (normalised names).
const BOOTSTRAP_NAMES: [&str; 3] = ["pip", "setuptools", "wheel"];

/// The bootstrap wheels (payload paths) the stub would choose for `interpreter`.
pub(crate) fn bootstrap_for(
    interpreter: &Interpreter,
    bootstrap: &BTreeSet<String>,
    infos: &BTreeMap<String, (WheelInfo, PathBuf)>,
) -> Vec<String> {
    let Ok(version) = interpreter.version().parse() else {
        return Vec::new();
    };
    let candidates: Vec<pysfx_wheel::Candidate<String>> = bootstrap
        .iter()
        .filter_map(|path| {
            infos.get(path).map(|(info, _)| pysfx_wheel::Candidate {
                filename: info.filename.clone(),
                requires_python: info.requires_python.clone(),
                item: path.clone(),
            })
        })
        .collect();
    pysfx_wheel::select(&candidates, &interpreter.tags(), &version).chosen
}

/// Python `X.Y` versions in numeric order (3.6 before 3.10), for the log's sake.
fn by_minor(versions: BTreeSet<String>) -> Vec<String> {
    let mut versions: Vec<String> = versions.into_iter().collect();
    versions.sort_by_key(|version| {
        let mut parts = version
            .split('.')
            .map(|part| part.parse::<u32>().unwrap_or(0));
        (parts.next(), parts.next())
    });
    versions
}
