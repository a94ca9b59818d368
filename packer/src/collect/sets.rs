//! What a wheel set accepts (its interpreter's tags and version), the `--wheels` wheels that
//! join it, and the check that every requirement line reached it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use pysfx_venv::Interpreter;
use pysfx_wheel::{Candidate, InterpreterTags, PlatformFacts};

use super::build::BuiltLines;
use super::pip::NEWEST_PATCH;
use super::target::ParsedTarget;
use super::wheel::{wheel_filename, WheelInfo};
use crate::requirements::{self, Entry, Line, Requirements, RequirementsFile, Source};

/// What a wheel set's interpreter accepts: its tags, best first, and its version for
/// `Requires-Python`.
pub struct SetFit {
    pub tags: InterpreterTags,
    pub python: String,
}

/// A `--target`'s fit, as the stub will compute it on such an interpreter: CPython 3.X's tags
/// on x86_64 with the target platform's glibc, and the newest patch release of 3.X.
pub fn target_fit(target: &ParsedTarget) -> Result<SetFit> {
    let minor = target
        .python_version
        .strip_prefix("3.")
        .and_then(|minor| minor.parse().ok())
        .ok_or_else(|| anyhow!("--target {}: no Python version", target.name))?;
    let platform = target.target.platform.as_deref().unwrap_or_default();
    let facts = PlatformFacts::linux_cpython(minor, glibc_of_platform(platform));
    Ok(SetFit {
        tags: InterpreterTags::for_cpython(&facts),
        python: format!("3.{minor}.{NEWEST_PATCH}"),
    })
}

/// A real interpreter's fit.
pub fn interpreter_fit(interpreter: &Interpreter) -> SetFit {
    SetFit {
        tags: interpreter.tags(),
        python: interpreter.version(),
    }
}

/// The glibc a manylinux x86_64 platform tag stands for.
fn glibc_of_platform(platform: &str) -> Option<(u32, u32)> {
    match crate::floor::tag_need(platform) {
        crate::floor::TagNeed::Glibc(version) => match version.0.as_slice() {
            [major, minor, ..] => Some((*major, *minor)),
            _ => None,
        },
        _ => None,
    }
}

/// Adds to a resolved set the best `--wheels` wheel of each distribution the set lacks, among
/// those whose tags and `Requires-Python` fit it. Returns what joined.
pub fn join_prebuilt(
    files: &mut Vec<PathBuf>,
    fit: &SetFit,
    prebuilt: &[(PathBuf, WheelInfo)],
) -> Result<Vec<PathBuf>> {
    let present: HashSet<String> = files
        .iter()
        .filter_map(|file| wheel_filename(file).ok())
        .map(|filename| filename.name)
        .collect();
    let candidates: Vec<Candidate<PathBuf>> = prebuilt
        .iter()
        .filter(|(_, info)| !present.contains(&info.filename.name))
        .map(|(path, info)| Candidate {
            filename: info.filename.clone(),
            requires_python: info.requires_python.clone(),
            item: path.clone(),
        })
        .collect();
    let python = fit
        .python
        .parse()
        .map_err(|_| anyhow!("cannot parse Python version {}", fit.python))?;
    let chosen = pysfx_wheel::select(&candidates, &fit.tags, &python).chosen;
    files.extend(chosen.iter().cloned());
    Ok(chosen)
}

/// Every requirement line ends up in the set, or the pack fails naming it (SPEC: "Every
/// requirement is present"). A line with an environment marker is pip's to judge; a line
/// whose distribution cannot be told without building it (a local project for `--python`,
/// which pip wheel builds itself) is taken on trust.
pub fn check_requirements_present(
    set_name: &str,
    files: &[PathBuf],
    requirements: &Requirements,
    built: Option<&BuiltLines>,
) -> Result<()> {
    let present: HashMap<String, pysfx_wheel::WheelFilename> = files
        .iter()
        .filter_map(|file| wheel_filename(file).ok())
        .map(|filename| (filename.name.clone(), filename))
        .collect();
    for (file_index, file, line, spec, source) in requirement_lines(requirements) {
        let has_marker = match &source {
            Source::Build(build) => build.marker.is_some(),
            _ => spec.contains(';'),
        };
        if has_marker {
            continue;
        }
        let name = built
            .and_then(|built| built.names.get(&(file_index, line.number)).cloned())
            .or_else(|| requirements::named_distribution(spec, &source));
        let Some(name) = name else { continue };
        let Some(collected) = present.get(&pysfx_wheel::normalize_name(&name)) else {
            bail!(
                "-r {} line {}: {}: pip collected no wheel of {name} for the wheel set \
                     {set_name}; every requirement must reach the artifact",
                file.path.display(),
                line.number,
                line.raw
            );
        };
        // And of a version the line takes: pip 18's resolver lets a -c constraint win over a
        // pin without a word, and every install of the artifact would then refuse the set.
        let requirement = match &source {
            Source::Named(_) => pysfx_wheel::Requirement::parse(spec).ok(),
            _ => None,
        };
        if let Some(requirement) = requirement.filter(|r| r.url.is_none() && r.has_specifiers()) {
            if !requirement.is_met_by(&collected.version) {
                bail!(
                    "-r {} line {}: {}: pip collected {name} {} for the wheel set {set_name}, \
                     which the line does not take (a -c constraint, or another requirement, \
                     asks for that one); every requirement must reach the artifact",
                    file.path.display(),
                    line.number,
                    line.raw,
                    collected.raw_version
                );
            }
        }
    }
    Ok(())
}

/// Every requirement line of `requirements` (constraint files aside): its file's index, the
/// file, the line, its requirement text and where that comes from.
fn requirement_lines(
    requirements: &Requirements,
) -> impl Iterator<Item = (usize, &RequirementsFile, &Line, &String, Source)> {
    (requirements.files.iter().enumerate())
        .filter(|(_, file)| !file.constraint)
        .flat_map(|(index, file)| file.lines.iter().map(move |line| (index, file, line)))
        .filter_map(|(index, file, line)| {
            let Entry::Requirement { spec, .. } = &line.entry else {
                return None;
            };
            let source = requirements::classify(
                spec,
                |path| Path::new(path).is_dir(),
                |path| Path::new(path).is_file(),
            );
            Some((index, file, line, spec, source))
        })
}

/// The requirement lines as the stub holds a set's wheels to them ("Complete"): each line's
/// distribution with its extras, version specifiers and marker, as PEP 508. A direct
/// reference's URL is left out (it may hold credentials; the wheel pip made of it is the
/// set's), and so is a line whose distribution cannot be told without building it (a local
/// project of a `--python` set, which pip wheel builds itself).
pub fn root_requirements(requirements: &Requirements, built: Option<&BuiltLines>) -> Vec<String> {
    let mut roots = Vec::new();
    for (file_index, _, line, spec, source) in requirement_lines(requirements) {
        let text = match (&source, pysfx_wheel::Requirement::parse(spec)) {
            (Source::Named(_), Ok(requirement)) => Some(requirement),
            _ => {
                let name = built
                    .and_then(|built| built.names.get(&(file_index, line.number)).cloned())
                    .or_else(|| requirements::named_distribution(spec, &source));
                let (extras, marker) = match &source {
                    Source::Build(build) => (build.extras.clone(), build.marker.clone()),
                    _ => (
                        None,
                        spec.split_once("; ").map(|(_, m)| m.trim().to_string()),
                    ),
                };
                name.and_then(|name| {
                    let mut text = name;
                    text.push_str(extras.as_deref().unwrap_or_default());
                    if let Some(marker) = marker {
                        text.push_str(&format!(" ; {marker}"));
                    }
                    pysfx_wheel::Requirement::parse(&text).ok()
                })
            }
        };
        let Some(requirement) = text else { continue };
        let mut root = requirement.name.clone();
        if !requirement.extras.is_empty() {
            root.push_str(&format!("[{}]", requirement.extras.join(",")));
        }
        if requirement.url.is_none() {
            root.push_str(&requirement.specifier_text());
        }
        if let Some(marker) = &requirement.marker {
            root.push_str(&format!(" ; {marker}"));
        }
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    roots
}

#[cfg(test)]
mod tests {
    use pysfx_wheel::WheelFilename;

    use super::super::target::parse_target;
    use super::*;

    #[test]
    fn a_requirement_missing_from_a_set_is_named() {
        let directory = tempfile::tempdir().expect("tempdir");
        let file = directory.path().join("requirements.txt");
        std::fs::write(
            &file,
            "Django>=4\nwinlib ; sys_platform == 'win32'\n./dist/x_y-1.0-py3-none-any.whl\n",
        )
        .expect("write");
        let requirements = Requirements::read(std::slice::from_ref(&file)).expect("read");
        let set = |names: &[&str]| -> Vec<PathBuf> { names.iter().map(PathBuf::from).collect() };
        let complete = set(&[
            "/w/django-4.2-py3-none-any.whl",
            "/w/x_y-1.0-py3-none-any.whl",
        ]);
        check_requirements_present("cp311", &complete, &requirements, None).expect("complete");
        let lacking = set(&["/w/x_y-1.0-py3-none-any.whl"]);
        let error = check_requirements_present("cp311", &lacking, &requirements, None)
            .expect_err("django is missing");
        let message = error.to_string();
        assert!(
            message.contains("requirements.txt line 1: Django>=4") && message.contains("cp311"),
            "{message}"
        );
    }

    /// pip 18's resolver lets a `-c` constraint win over a pin without a word: the set's wheel
    /// of the pinned distribution must be of a version the line takes.
    #[test]
    fn a_requirement_the_sets_version_does_not_meet_is_named() {
        let directory = tempfile::tempdir().expect("tempdir");
        let file = directory.path().join("requirements.txt");
        std::fs::write(&file, "six==1.16.0\nidna>=3,<4\n").expect("write");
        let requirements = Requirements::read(std::slice::from_ref(&file)).expect("read");
        let set = |names: &[&str]| -> Vec<PathBuf> { names.iter().map(PathBuf::from).collect() };
        let met = set(&[
            "/w/six-1.16.0-py2.py3-none-any.whl",
            "/w/idna-3.7-py3-none-any.whl",
        ]);
        check_requirements_present("cp36", &met, &requirements, None).expect("met");
        let constrained = set(&[
            "/w/six-1.17.0-py2.py3-none-any.whl",
            "/w/idna-3.7-py3-none-any.whl",
        ]);
        let error = check_requirements_present("cp36", &constrained, &requirements, None)
            .expect_err("six 1.17.0 is no 1.16.0");
        let message = error.to_string();
        assert!(
            message.contains("line 1: six==1.16.0: pip collected six 1.17.0"),
            "{message}"
        );
    }

    #[test]
    fn target_fits_accept_what_the_stub_would() {
        let fit =
            target_fit(&parse_target("cp36-manylinux2014_x86_64").expect("parse")).expect("fit");
        assert_eq!(fit.python, "3.6.99");
        for accepted in [
            "x-1.0-cp36-cp36m-manylinux2014_x86_64.whl",
            "x-1.0-cp36-cp36m-manylinux1_x86_64.whl",
            "x-1.0-cp35-abi3-manylinux_2_17_x86_64.whl",
            "x-1.0-py3-none-any.whl",
        ] {
            let filename: WheelFilename = accepted.parse().expect("wheel name");
            assert!(fit.tags.priority(&filename).is_some(), "{accepted}");
        }
        for refused in [
            "x-1.0-cp36-cp36m-manylinux_2_28_x86_64.whl",
            "x-1.0-cp311-cp311-manylinux2014_x86_64.whl",
            "x-1.0-cp36-cp36m-macosx_10_9_x86_64.whl",
        ] {
            let filename: WheelFilename = refused.parse().expect("wheel name");
            assert!(fit.tags.priority(&filename).is_none(), "{refused}");
        }
        let cases = [
            ("manylinux2014_x86_64", Some((2, 17))),
            ("manylinux2010_x86_64", Some((2, 12))),
            ("manylinux1_x86_64", Some((2, 5))),
            ("manylinux_2_28_x86_64", Some((2, 28))),
            ("linux_x86_64", None),
        ];
        for (platform, glibc) in cases {
            assert_eq!(glibc_of_platform(platform), glibc, "{platform}");
        }
    }
}
