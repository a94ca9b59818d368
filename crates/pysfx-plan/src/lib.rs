//! Choosing the wheel set for the interpreter, and within it one wheel per distribution: what
//! the stub installs, and what `pysfx inspect --python` and `--info --python` show.

mod complete;
pub mod sbom;

pub use complete::{list_unmet, parse_requirements, unmet_requirements, Unmet};

use std::collections::HashSet;

use pep440_rs::Version;
use pysfx_format::{Manifest, WheelEntry, WheelSet};
use pysfx_venv::Interpreter;
use pysfx_wheel::{
    python_satisfies, select, Candidate, Missing, Selection, Skipped, WheelFilename,
};
use tracing::{debug, warn};

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Some distribution has no wheel this interpreter accepts (the machine's problem).
    #[error("{0}")]
    NoCompatibleWheel(String),
    /// A requirement of a distribution to install is not met by the chosen wheels, markers
    /// judged for this interpreter (the artifact does not fit this machine).
    #[error("{0}")]
    Unmet(String),
    /// The manifest contradicts itself (the artifact's problem).
    #[error("{0}")]
    BadManifest(String),
    /// The interpreter reported something unusable (the machine's problem).
    #[error("{0}")]
    BadInterpreter(String),
}

/// What will be installed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub set_name: String,
    pub wheels: Vec<WheelEntry>,
    pub skipped: Vec<Skipped>,
}

impl Plan {
    /// The plan as `pysfx inspect --python` and `--info --python` print it: the interpreter,
    /// the set, each wheel, and each distribution skipped for its `Requires-Python`.
    pub fn describe(&self, interpreter: &Interpreter) -> String {
        let mut out = format!(
            "{} (CPython {}) would get set {}:\n",
            interpreter.executable.display(),
            interpreter.version(),
            self.set_name
        );
        for wheel in &self.wheels {
            out.push_str(&format!("  {}\n", wheel.filename));
        }
        for skipped in &self.skipped {
            out.push_str(&format!(
                "  (skipped {}: Requires-Python {})\n",
                skipped.name, skipped.requires_python
            ));
        }
        out
    }
}

/// The sets this interpreter may use, in the order they are tried: those resolved for its
/// `X.Y`, then those for any target (`--wheels`). A set resolved for another version is never
/// used: its environment markers were judged for that version, so it may lack a dependency
/// this one needs (`typing-extensions; python_version < "3.11"`).
fn usable_sets<'a>(manifest: &'a Manifest, interpreter: &Interpreter) -> Vec<&'a WheelSet> {
    let (major, minor) = interpreter.major_minor();
    let own = format!("{major}.{minor}");
    let mut sets: Vec<&WheelSet> = manifest
        .sets
        .iter()
        .filter(|set| {
            // A set resolved for CPython X.Y (the stub installs with CPython only).
            set.target
                .as_ref()
                .is_none_or(|target| target.python_version == own && target.implementation == "cp")
        })
        .collect();
    sets.sort_by_key(|set| set.target.is_none());
    sets
}

/// The wheels of the plan's set that the interpreter was kept from by their `Requires-Python`
/// as the manifest gives it: a distribution left out, or another wheel of it chosen. The
/// install holds those claims to the wheels themselves before it writes (a manifest that lies
/// about them is a corrupt artifact, not a distribution quietly left out).
pub fn passed_over_for_python(
    manifest: &Manifest,
    plan: &Plan,
    interpreter: &Interpreter,
) -> Vec<String> {
    let (Ok(python), Some(set)) = (
        interpreter.version().parse::<Version>(),
        manifest.sets.iter().find(|set| set.name == plan.set_name),
    ) else {
        return Vec::new();
    };
    (set.wheels.iter())
        .filter_map(|path| manifest.wheel(path))
        .filter(|entry| {
            (entry.requires_python.as_deref()).is_some_and(|spec| !python_satisfies(spec, &python))
        })
        .map(|entry| entry.path.clone())
        .collect()
}

/// Picks the set and its wheels, or explains (exit 4) which distributions have no wheel this
/// interpreter accepts.
pub fn choose(manifest: &Manifest, interpreter: &Interpreter) -> Result<Plan, PlanError> {
    let tags = interpreter.tags();
    let python: Version = interpreter.version().parse().map_err(|_| {
        PlanError::BadInterpreter(format!(
            "{} reports Python version {}, which is not a PEP 440 version",
            interpreter.executable.display(),
            interpreter.version()
        ))
    })?;
    let mut first_failure: Option<(String, Vec<Missing>)> = None;
    let mut first_unmet: Option<(String, Vec<Unmet>)> = None;
    let environment = interpreter.marker_environment();
    let sets = usable_sets(manifest, interpreter);
    if sets.is_empty() && !manifest.sets.is_empty() {
        // Say which distributions of the nearest set this interpreter could not use anyway.
        let names: Vec<&str> = manifest.sets.iter().map(|set| set.name.as_str()).collect();
        let mut detail = String::new();
        // The set made for the nearest version (3.12's for a 3.11, not 3.6's).
        let (major, minor) = interpreter.major_minor();
        let distance = |set: &&WheelSet| {
            let version = set.target.as_ref().map(|t| t.python_version.as_str());
            let (set_major, set_minor) = version
                .and_then(|v| v.split_once('.'))
                .map_or((0, 0), |(a, b)| {
                    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
                });
            (major.abs_diff(set_major), minor.abs_diff(set_minor))
        };
        if let Some(nearest) = manifest.sets.iter().min_by_key(distance) {
            let candidates = set_candidates(manifest, nearest)?;
            let selection = select(&candidates, &tags, &python);
            let names = |names: Vec<&str>| names.join(", ");
            let missing = names(selection.missing.iter().map(|m| m.name.as_str()).collect());
            let skipped = names(selection.skipped.iter().map(|s| s.name.as_str()).collect());
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("has no wheel it accepts for {missing}"));
            }
            if !skipped.is_empty() {
                parts.push(format!(
                    "holds {skipped} only for other Pythons (Requires-Python)"
                ));
            }
            if !parts.is_empty() {
                detail = format!("; set {} {}", nearest.name, parts.join(" and "));
            }
        }
        let best = best_tags(&tags);
        return Err(PlanError::NoCompatibleWheel(format!(
            "this artifact has no wheel set for CPython {} (it has {}){detail}; CPython {} here accepts {} (pack a set for it with --python or --target)",
            interpreter.version(),
            names.join(", "),
            interpreter.version(),
            best,
        )));
    }
    if sets.is_empty() {
        return Ok(Plan {
            set_name: "none".into(),
            wheels: Vec::new(),
            skipped: Vec::new(),
        });
    }
    for set in sets {
        let candidates = set_candidates(manifest, set)?;
        let selection = select(&candidates, &tags, &python);
        if tracing::enabled!(tracing::Level::DEBUG) {
            log_decisions(&set.name, &candidates, &selection, &tags, &python);
        }
        if selection.missing.is_empty() {
            // The set's own requirements are held to the chosen wheels as theirs are.
            let mut held = selection.chosen.clone();
            held.extend(own_requirements(set));
            let unmet = unmet_requirements(&held, &selection.skipped, &environment)
                .map_err(PlanError::BadManifest)?;
            if !unmet.is_empty() {
                first_unmet.get_or_insert((set.name.clone(), unmet));
                continue;
            }
            for skipped in &selection.skipped {
                warn!(
                    "left out {} (Requires-Python {}): no wheel of it supports Python {}, and nothing installed needs it",
                    skipped.name,
                    skipped.requires_python,
                    interpreter.version()
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
    if let (None, Some((set_name, unmet))) = (&first_failure, first_unmet) {
        // What to do differs: a distribution the set lacks is packed; one at a version that
        // does not meet the requirement, or left out for its Requires-Python, needs other
        // wheels (or another Python).
        let missing_only = unmet
            .iter()
            .all(|unmet| unmet.reason == complete::NOT_IN_SET);
        let hint = match missing_only {
            true => "pack the missing distributions into the artifact",
            false => "pack wheels that meet them (for this Python), or use a Python they support",
        };
        return Err(PlanError::Unmet(format!(
            "set {set_name} does not meet {} for CPython {}: {}; {hint}",
            if unmet.len() == 1 {
                "a requirement"
            } else {
                "these requirements"
            },
            interpreter.version(),
            complete::list_unmet(&unmet)
        )));
    }
    let (set_name, missing) = first_failure.unwrap_or_default();
    let best = best_tags(&tags);
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
            "no compatible wheel for {} in set {set_name}: {}; CPython {} here accepts {} (pack a set for it with --python or --target)",
            if missing.len() == 1 { "1 distribution" } else { "these distributions" },
            names.join("; "),
            interpreter.version(),
            best,
        ),
    ))
}

/// A set's own requirements (the `-r` lines it was resolved from) as the requirements of a
/// distribution no wheel can be (its name is not a PEP 508 name), so the completeness check
/// holds the chosen wheels to them: a line's distribution left out for its Requires-Python on
/// this patch release, or one whose marker holds here but did not for the version pack
/// resolved for, is unmet (exit 4), never silently missing.
fn own_requirements(set: &WheelSet) -> Option<WheelEntry> {
    (!set.requires.is_empty()).then(|| WheelEntry {
        path: String::new(),
        filename: String::new(),
        name: "the app".into(),
        version: "(its requirement lines)".into(),
        sha256: String::new(),
        size: 0,
        unpacked_bytes: 0,
        members: 0,
        directories: 0,
        requires_python: None,
        requires_dist: set.requires.clone(),
        record_sha256: None,
        from_base: false,
        executables: None,
    })
}

/// `-v`: what became of each wheel of a set tried, one line each (the stub's debug level).
fn log_decisions(
    set: &str,
    candidates: &[Candidate<WheelEntry>],
    selection: &Selection<WheelEntry>,
    tags: &pysfx_wheel::InterpreterTags,
    python: &Version,
) {
    for candidate in candidates {
        let wheel = &candidate.item.filename;
        let chosen = selection
            .chosen
            .iter()
            .any(|entry| entry.path == candidate.item.path);
        let decision = if chosen {
            "chosen".to_string()
        } else if let Some(spec) = candidate
            .requires_python
            .as_deref()
            .filter(|spec| !python_satisfies(spec, python))
        {
            format!("skipped: Requires-Python {spec}")
        } else if tags.priority(&candidate.filename).is_none() {
            format!(
                "skipped: wrong {} tag",
                tags.incompatibility(&candidate.filename)
            )
        } else {
            "skipped: another wheel of it is preferred".to_string()
        };
        debug!("set {set}: {wheel}: {decision}");
    }
}

/// The interpreter's three best tags and its most general one, for messages./// The interpreter's three best tags and its most general one, for messages.
fn best_tags(tags: &pysfx_wheel::InterpreterTags) -> String {
    let best: Vec<String> = tags
        .tags()
        .iter()
        .take(3)
        .map(ToString::to_string)
        .collect();
    format!("{} … py3-none-any", best.join(", "))
}

/// A set's wheels plus the bootstrap wheels of the distributions it lacks.
fn set_candidates(
    manifest: &Manifest,
    set: &WheelSet,
) -> Result<Vec<Candidate<WheelEntry>>, PlanError> {
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
    Ok(candidates)
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
