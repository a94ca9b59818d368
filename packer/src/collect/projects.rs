//! Local projects that pip builds where they lie (`./mylib` in a requirements file: pip 21.3
//! and later build in the tree). setuptools leaves `build/` and `<name>.egg-info` there, and
//! takes what `build/` already holds into the next wheel it builds: a module deleted from the
//! project since would still be packed, and a second pack of the same project would differ
//! from the first. So what a pack's builds leave in a project is removed when the pack is
//! done, and a `build/` that was there before the pack is kept (it is the user's) and named
//! in a warning.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use crate::appfiles::shown;
use crate::requirements::{self, Entry, Requirements, Source};

/// The local projects of a pack's requirements, and what each held before pip ran.
pub struct ProjectLitter {
    projects: Vec<(PathBuf, BTreeSet<PathBuf>)>,
}

impl ProjectLitter {
    /// Notes what the local project directories `requirements` name hold of setuptools' build
    /// state, warning of a `build/` already there.
    pub fn watch(requirements: &Requirements) -> ProjectLitter {
        let mut projects: Vec<(PathBuf, BTreeSet<PathBuf>)> = Vec::new();
        for directory in local_projects(requirements) {
            if projects.iter().any(|(known, _)| *known == directory) {
                continue;
            }
            let before = build_state(&directory);
            let build = directory.join("build");
            if before.contains(&build) {
                warn!(
                    "{} exists: setuptools builds {} from what it holds as well, so a file \
                     deleted from the project since it was made may still be packed (remove \
                     it for a clean build)",
                    shown(&build),
                    shown(&directory)
                );
            }
            projects.push((directory, before));
        }
        ProjectLitter { projects }
    }
}

impl Drop for ProjectLitter {
    fn drop(&mut self) {
        for (directory, before) in &self.projects {
            for made in build_state(directory).difference(before) {
                debug!("removing {}, which building the project left", shown(made));
                // `remove_dir_all` does not follow links; a link made there is only unlinked.
                let removed = match std::fs::symlink_metadata(made) {
                    Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(made),
                    Ok(_) => std::fs::remove_file(made),
                    Err(error) => Err(error),
                };
                if let Err(error) = removed {
                    warn!("cannot remove {}: {error}", shown(made));
                }
            }
        }
    }
}

/// The directories the requirement lines of `requirements` name as local projects, as pip
/// reads them: relative to the current directory.
fn local_projects(requirements: &Requirements) -> Vec<PathBuf> {
    let mut projects = Vec::new();
    for file in requirements.files.iter().filter(|file| !file.constraint) {
        for line in &file.lines {
            let Entry::Requirement { spec, .. } = &line.entry else {
                continue;
            };
            let is_dir = |path: &str| Path::new(path).is_dir();
            let is_file = |path: &str| Path::new(path).is_file();
            let Source::Build(build) = requirements::classify(spec, is_dir, is_file) else {
                continue;
            };
            // `./mylib[extra]`, or a `file:` URL to it (`mylib @ file:///abs/mylib`).
            let path = match requirements::file_url_path(&build.requirement) {
                Some(path) => Some(path),
                None => match &build.extras {
                    Some(extras) => build.requirement.strip_suffix(extras.as_str()),
                    None => Some(build.requirement.as_str()),
                }
                .map(str::to_string),
            };
            if let Some(path) = path.filter(|path| is_dir(path)) {
                projects.push(PathBuf::from(path));
            }
        }
    }
    projects
}

/// setuptools' build state in `project`: `build/`, and `*.egg-info` at its top and in `src/`.
fn build_state(project: &Path) -> BTreeSet<PathBuf> {
    let mut state = BTreeSet::new();
    let build = project.join("build");
    if std::fs::symlink_metadata(&build).is_ok() {
        state.insert(build);
    }
    for directory in [project.to_path_buf(), project.join("src")] {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".egg-info") {
                state.insert(entry.path());
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_builds_left_is_removed() {
        let work = tempfile::tempdir().expect("tempdir");
        let project = work.path().join("mylib");
        std::fs::create_dir_all(project.join("src/old.egg-info")).expect("mkdir");
        std::fs::write(project.join("pyproject.toml"), "").expect("write");
        let requirements_file = work.path().join("r.txt");
        std::fs::write(
            &requirements_file,
            format!("{}[extra] ; python_version > '3'\n", project.display()),
        )
        .expect("write");
        let requirements = Requirements::read(&[requirements_file]).expect("read");
        assert_eq!(
            local_projects(&requirements),
            std::slice::from_ref(&project)
        );
        let litter = ProjectLitter::watch(&requirements);
        // What a build leaves.
        std::fs::create_dir_all(project.join("build/lib/mylib")).expect("mkdir");
        std::fs::create_dir_all(project.join("src/mylib.egg-info")).expect("mkdir");
        std::fs::create_dir_all(project.join("mylib.egg-info")).expect("mkdir");
        drop(litter);
        assert!(!project.join("build").exists());
        assert!(!project.join("src/mylib.egg-info").exists());
        assert!(!project.join("mylib.egg-info").exists());
        assert!(project.join("src/old.egg-info").is_dir());
        assert!(project.join("pyproject.toml").is_file());
        // A build/ that was there before is the user's: kept.
        std::fs::create_dir_all(project.join("build/lib")).expect("mkdir");
        drop(ProjectLitter::watch(&requirements));
        assert!(project.join("build/lib").is_dir());
    }
}
