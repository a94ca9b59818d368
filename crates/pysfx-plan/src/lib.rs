//! Choosing the wheel set for the interpreter, and within it one wheel per distribution: what
//! the stub installs, and what `pysfx inspect --python` and `--info --python` show.

use std::collections::HashSet;

use pep440_rs::Version;
use pysfx_format::{Manifest, WheelEntry, WheelSet};
use pysfx_venv::Interpreter;
use pysfx_wheel::{select, Candidate, Missing, Skipped, WheelFilename};
use tracing::{info, warn};

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Some distribution has no wheel this interpreter accepts (the machine's problem).
    #[error("{0}")]
    NoCompatibleWheel(String),
    /// The manifest contradicts itself (the artifact's problem).
    #[error("{0}")]
    BadManifest(String),
}

/// What will be installed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub set_name: String,
    pub wheels: Vec<WheelEntry>,
    pub skipped: Vec<Skipped>,
}

/// Sets in the order they are tried: resolved for this Python version first, then sets for any
/// target, then the others from the nearest version.
fn ranked_sets<'a>(manifest: &'a Manifest, interpreter: &Interpreter) -> Vec<&'a WheelSet> {
    let (major, minor) = interpreter.major_minor();
    let own = format!("{major}.{minor}");
    let rank = |set: &WheelSet| -> (u32, u32) {
        match &set.target {
            Some(target) if target.python_version == own => (0, 0),
            None => (1, 0),
            Some(target) => {
                let other_minor = target
                    .python_version
                    .split('.')
                    .nth(1)
                    .and_then(|m| m.parse::<u32>().ok())
                    .unwrap_or(u32::MAX);
                (2, other_minor.abs_diff(minor))
            }
        }
    };
    let mut sets: Vec<&WheelSet> = manifest.sets.iter().collect();
    sets.sort_by_key(|set| rank(set));
    sets
}

/// Picks the set and its wheels, or explains (exit 4) which distributions have no wheel this
/// interpreter accepts.
pub fn choose(manifest: &Manifest, interpreter: &Interpreter) -> Result<Plan, PlanError> {
    let tags = interpreter.tags();
    let python: Version = interpreter.version().parse().map_err(|_| {
        PlanError::BadManifest(format!(
            "cannot parse Python version {}",
            interpreter.version()
        ))
    })?;
    let mut first_failure: Option<(String, Vec<Missing>)> = None;
    let sets = ranked_sets(manifest, interpreter);
    let own_version = format!(
        "{}.{}",
        interpreter.version_info.0, interpreter.version_info.1
    );
    if sets.is_empty() {
        return Ok(Plan {
            set_name: "none".into(),
            wheels: Vec::new(),
            skipped: Vec::new(),
        });
    }
    for set in sets {
        let mut candidates = Vec::new();
        let mut names = HashSet::new();
        for path in &set.wheels {
            let entry = wheel_entry(manifest, path)?;
            names.insert(entry.name.clone());
            candidates.push(candidate(entry)?);
        }
        for path in &manifest.bootstrap {
            let entry = wheel_entry(manifest, path)?;
            if !names.contains(&entry.name) {
                candidates.push(candidate(entry)?);
            }
        }
        let mut selection = select(&candidates, &tags, &python);
        // A set resolved for another Python version may lack what this one needs (markers were
        // evaluated for that version): a distribution it would have to skip disqualifies it.
        let foreign = set
            .target
            .as_ref()
            .is_some_and(|target| target.python_version != own_version);
        if foreign {
            let skipped = std::mem::take(&mut selection.skipped);
            selection
                .missing
                .extend(skipped.into_iter().map(|skipped| Missing {
                    name: skipped.name,
                    offered: vec![(
                        format!("Requires-Python {}", skipped.requires_python),
                        "Python version",
                    )],
                }));
        }
        if selection.missing.is_empty() {
            for skipped in &selection.skipped {
                info!(
                    distribution = %skipped.name,
                    requires_python = %skipped.requires_python,
                    "skipped: no wheel of it supports Python {}",
                    interpreter.version()
                );
            }
            if set.target.as_ref().is_some_and(|target| {
                target.python_version
                    != format!(
                        "{}.{}",
                        interpreter.version_info.0, interpreter.version_info.1
                    )
            }) {
                warn!(
                    set = %set.name,
                    "no wheel set was resolved for Python {}; using the set {} whose wheels it accepts",
                    interpreter.version(),
                    set.name
                );
            }
            return Ok(Plan {
                set_name: set.name.clone(),
                wheels: selection.chosen,
                skipped: selection.skipped,
            });
        }
        first_failure.get_or_insert((set.name.clone(), selection.missing));
    }
    let (set_name, missing) = first_failure.unwrap_or_default();
    let best: Vec<String> = tags
        .tags()
        .iter()
        .take(3)
        .map(ToString::to_string)
        .collect();
    let names: Vec<String> = missing
        .iter()
        .map(|missing| {
            let offered: Vec<String> = missing
                .offered
                .iter()
                .map(|(file, why)| format!("{file} [wrong {why}]"))
                .collect();
            format!("{} (has {})", missing.name, offered.join(", "))
        })
        .collect();
    Err(PlanError::NoCompatibleWheel(
        format!(
            "no compatible wheel for {} in set {set_name}: {}; CPython {} here accepts {} … py3-none-any (pack a set for it with --python or --target)",
            if missing.len() == 1 { "1 distribution" } else { "these distributions" },
            names.join("; "),
            interpreter.version(),
            best.join(", "),
        ),
    ))
}

fn wheel_entry<'a>(manifest: &'a Manifest, path: &str) -> Result<&'a WheelEntry, PlanError> {
    manifest.wheel(path).ok_or_else(|| {
        PlanError::BadManifest(format!(
            "the manifest names a wheel it does not describe: {path}"
        ))
    })
}

fn candidate(entry: &WheelEntry) -> Result<Candidate<WheelEntry>, PlanError> {
    let filename: WheelFilename =
        entry
            .filename
            .parse()
            .map_err(|error: pysfx_wheel::WheelError| {
                PlanError::BadManifest(format!("in the manifest: {error}"))
            })?;
    Ok(Candidate {
        filename,
        requires_python: entry.requires_python.clone(),
        item: entry.clone(),
    })
}
