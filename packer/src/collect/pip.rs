//! Running pip: `pip wheel` for a `--python` set, `pip download` for a `--target` set and for
//! the bootstrap wheels, with its failures explained.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use tracing::{debug, info};

use super::target::ParsedTarget;
use super::wheel::wheels_in;
use crate::pipfail::{self, PipRun};

/// Where pip finds wheels and keeps checkouts, besides its index, and the time it stamps on
/// the wheels it builds.
pub struct PipSources<'a> {
    /// The `--wheels` directories, offered as `--find-links`: a prebuilt wheel fills in for a
    /// distribution the index has no wheel of.
    pub find_links: &'a [PathBuf],
    /// `--src`: editable VCS checkouts go here, not into the current directory.
    pub src: &'a Path,
    /// The pack's zip time (`SOURCE_DATE_EPOCH`, else the packer's constant), given to pip as
    /// `SOURCE_DATE_EPOCH`.
    pub epoch: u64,
    /// pip's `TMPDIR` (see [`pip_tmpdir`]).
    pub tmp: &'a Path,
}

/// The times a zip entry can carry, 1980-01-01 to 2107-12-31 23:59:58, as the payload writer
/// clamps its own.
const ZIP_EPOCHS: std::ops::RangeInclusive<u64> = 315_532_800..=4_354_819_198;

impl PipSources<'_> {
    pub(crate) fn add_to(&self, command: &mut Command) {
        for directory in self.find_links {
            command.arg("--find-links").arg(directory);
        }
        // A wheel pip builds (a local project, an sdist, a VCS checkout) is stamped with the
        // build time unless SOURCE_DATE_EPOCH is set (setuptools' bdist_wheel, hatchling and
        // flit all read it), and two packs of the same inputs would differ. Clamped into the
        // zip range as the artifact's own entries are: backends differ on a time outside it
        // (some move it in, Python's zipfile refuses a year after 2107).
        let epoch = self.epoch.clamp(*ZIP_EPOCHS.start(), *ZIP_EPOCHS.end());
        command.env("SOURCE_DATE_EPOCH", epoch.to_string());
        command.env("TMPDIR", self.tmp);
    }
}

/// The directory pip gets as `TMPDIR`, made in the pack's work directory `work`: what pip
/// leaves of its builds and downloads when the pack is killed (SIGKILL stops pip with it)
/// is then inside that work directory, which the next pack removes, not beside it in
/// `$TMPDIR`.
pub fn pip_tmpdir(work: &Path) -> Result<PathBuf> {
    let tmp = work.join("tmp");
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(tmp)
}

/// `PY -m pip wheel -r FILE… -w OUT`: resolves and builds every requirement for that
/// interpreter, markers included (local projects, `-e`, VCS and sdist URLs too).
pub fn pip_wheel(
    python: &str,
    requirements: &[PathBuf],
    sources: &PipSources<'_>,
    out: &Path,
) -> Result<()> {
    let mut command = pip_wheel_command(python, sources, out);
    for requirement in requirements {
        command.arg("-r").arg(requirement);
    }
    info!("collecting wheels with {python} -m pip wheel");
    run_pip(
        command,
        &format!("{python} -m pip wheel"),
        PipRun::Wheel { python },
    )
}

/// `pip download --only-binary=:all:` for another Python/platform.
pub fn pip_download_target(
    host_python: &str,
    target: &ParsedTarget,
    requirements: &[PathBuf],
    sources: &PipSources<'_>,
    out: &Path,
) -> Result<()> {
    let (major, minor) = target
        .python_version
        .split_once('.')
        .unwrap_or((&target.python_version, "0"));
    // pip evaluates environment markers (`dataclasses; python_version < "3.7"`, and those in
    // dependencies' metadata) for the Python that runs pip, not for --python-version
    // (pypa/pip#11010). So pip runs with its marker environment set to the target's; it stays
    // the resolver.
    let environment = serde_json::json!({
        "implementation_name": "cpython",
        "implementation_version": format!("{major}.{minor}.{NEWEST_PATCH}"),
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": format!("{major}.{minor}.{NEWEST_PATCH}"),
        "python_version": format!("{major}.{minor}"),
        "sys_platform": "linux",
    });
    let mut command = Command::new(host_python);
    command.args([
        "-c",
        PIP_FOR_TARGET,
        &environment.to_string(),
        "download",
        "--disable-pip-version-check",
        "--no-input",
        pip_verbosity(),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        &format!("{major}.{minor}.{NEWEST_PATCH}"),
    ]);
    for abi in &target.abis {
        command.args(["--abi", abi]);
    }
    for platform in &target.platforms {
        command.args(["--platform", platform]);
    }
    command.arg("-d").arg(out);
    sources.add_to(&mut command);
    for requirement in requirements {
        command.arg("-r").arg(requirement);
    }
    info!("downloading binary wheels for {}", target.name);
    run_pip(
        command,
        &format!("pip download for {}", target.name),
        PipRun::Target {
            name: &target.name,
            version: &target.python_version,
        },
    )
}

/// A target names a minor version; it stands for that version's newest patch release, so a
/// `Requires-Python: >=3.6.8` does not rule a wheel out for "3.6" (pip would take 3.6.0).
pub(crate) const NEWEST_PATCH: u32 = 99;

/// Runs pip with `packaging.markers.default_environment()` answering for the target. The
/// first argument is the target's marker environment as JSON; the rest are pip's.
const PIP_FOR_TARGET: &str = r#"
import json, runpy, sys
target = json.loads(sys.argv.pop(1))
from pip._vendor.packaging import markers
default_environment = markers.default_environment
def target_environment():
    environment = default_environment()
    environment.update(target)
    return environment
markers.default_environment = target_environment
sys.argv[0] = "pip"
runpy.run_module("pip", run_name="__main__", alter_sys=True)
"#;

/// pip and setuptools for each Python version, so every venv gets a working pip.
pub fn pip_download_bootstrap(
    host_python: &str,
    versions: &[String],
    out: &Path,
    tmp: &Path,
) -> Result<Vec<PathBuf>> {
    let mut wheels = Vec::new();
    for version in versions {
        // One directory per version: pip takes a file already in -d as satisfying "pip", so a
        // shared one would give every version the first version's pip.
        let out = out.join(version);
        crate::interrupt::checkpoint();
        std::fs::create_dir_all(&out)?;
        let mut command = Command::new(host_python);
        command
            .env("TMPDIR", tmp)
            .args([
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-input",
                pip_verbosity(),
                "--only-binary=:all:",
                "--no-deps",
                "--implementation",
                "cp",
                "--python-version",
                version,
                "-d",
            ])
            .arg(&out)
            .args(["pip", "setuptools"]);
        info!("collecting bootstrap wheels (pip, setuptools) for Python {version}");
        run_pip(
            command,
            &format!("pip download of pip and setuptools for Python {version}"),
            PipRun::Bootstrap { version },
        )?;
        wheels.extend(wheels_in(&out)?);
    }
    wheels.sort();
    wheels.dedup_by(|a, b| a.file_name() == b.file_name());
    Ok(wheels)
}

/// `PYTHON -m pip wheel … -w OUT --src …` with the sources' index options: the base of every
/// pip wheel the packer runs.
pub(crate) fn pip_wheel_command(python: &str, sources: &PipSources<'_>, out: &Path) -> Command {
    let mut command = Command::new(python);
    with_umask_022(&mut command);
    command
        .args([
            "-m",
            "pip",
            "wheel",
            "--disable-pip-version-check",
            "--no-input",
            pip_verbosity(),
            "-w",
        ])
        .arg(out)
        .arg("--src")
        .arg(sources.src);
    sources.add_to(&mut command);
    command
}

/// Runs `command` with the umask 022: the wheels pip builds take their members' modes from
/// the files the backend writes, so a packer run under another umask (077) would build other
/// bytes from the same project.
#[allow(unsafe_code)]
fn with_umask_022(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls may be made: umask(2) is one, and it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
            Ok(())
        });
    }
}

/// pip's verbosity: its own (`-vv`: pip's `-v` too). Its output is shown only with `-v`; without,
/// its stdout is still read for the project it was working on when it failed (`Processing
/// ./mylib`), which `-q` would not print.
pub(crate) fn pip_verbosity() -> &'static str {
    if tracing::enabled!(tracing::Level::TRACE) {
        "-v"
    } else {
        "--progress-bar=off"
    }
}

/// What pip's stdout says it was working on when a step first failed: the line of the step
/// that failed when it names its project (`Building wheel for badlib (pyproject.toml):
/// finished with status 'error'`, pip 18's `Running setup.py bdist_wheel for badlib ...
/// error`), else the last line before it that names one (`Processing ./badlib`): pip's
/// stderr, when a project's metadata cannot be made, names none.
#[derive(Default)]
struct FirstFailure {
    at: Option<String>,
    failed: Option<String>,
}

impl FirstFailure {
    fn read(&mut self, line: &str) {
        if self.failed.is_some() {
            return;
        }
        let names = |starts: &[&str]| starts.iter().any(|start| line.starts_with(start));
        // pip 18 prints a failed command's output after "Complete output from command …".
        let failed = line.contains("status 'error'")
            || line.ends_with("... error")
            || line.starts_with("Complete output from command");
        if failed {
            let step = names(&["Building wheel for ", "Running setup.py "]);
            self.failed = match step {
                true => Some(line.chars().take(300).collect()),
                false => self.at.take(),
            };
        } else if names(&["Processing ", "Collecting ", "Obtaining "]) {
            self.at = Some(line.chars().take(300).collect());
        }
    }
}

/// What is kept of pip's stderr to classify a failure: its last 1 MiB.
const STDERR_KEPT: usize = 1024 * 1024;

/// Runs pip. With `-v` its command line is logged and its whole output goes to stderr as it
/// comes; without, its output is held back and a failure is reported as one line saying what
/// went wrong (pip's telling line) and one with the fix for that failure (`pipfail`).
pub(crate) fn run_pip(mut command: Command, what: &str, run: PipRun<'_>) -> Result<()> {
    use std::io::Write;
    let verbose = tracing::enabled!(tracing::Level::DEBUG);
    debug!("running {command:?}");
    let mut child = command
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    crate::interrupt::child_started(child.id());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let forwarder = std::thread::spawn(move || -> Option<String> {
        let mut first = FirstFailure::default();
        let mut stdout = std::io::BufReader::new(stdout?);
        let mut line = Vec::new();
        while let Ok(read) = std::io::BufRead::read_until(&mut stdout, b'\n', &mut line) {
            if read == 0 {
                break;
            }
            if verbose {
                let _ = std::io::stderr().write_all(&line);
            }
            first.read(String::from_utf8_lossy(&line).trim());
            line.clear();
        }
        first.failed
    });
    let mut kept: Vec<u8> = Vec::new();
    if let Some(mut stderr) = stderr {
        let mut buffer = [0u8; 8192];
        while let Ok(read) = stderr.read(&mut buffer) {
            if read == 0 {
                break;
            }
            if verbose {
                let _ = std::io::stderr().write_all(&buffer[..read]);
            }
            kept.extend_from_slice(&buffer[..read]);
            if kept.len() > 2 * STDERR_KEPT {
                kept.drain(..kept.len() - STDERR_KEPT);
            }
        }
    }
    let working_on: Option<String> = forwarder.join().ok().flatten();
    let status = child.wait();
    crate::interrupt::child_done(child.id());
    let status = status.with_context(|| format!("cannot run {what}"))?;
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&kept);
    let failure = pipfail::classify(&text);
    let told = failure
        .telling_line(&text)
        .map(|line| format!(": {line}"))
        .unwrap_or_default();
    // What it was building when a step first failed.
    let told = match (failure, working_on) {
        (pipfail::PipFailure::BuildFailed, Some(at)) => {
            let at = pipfail::without_copies(&at);
            format!(" (pip was at: {at}){told}")
        }
        _ => told,
    };
    let more = if verbose {
        "pip's output is above"
    } else {
        "-v shows pip's output"
    };
    bail!(
        "{what} failed ({status}), {}{told}\nhint: {} ({more})",
        failure.summary(),
        failure.hint(&run)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_failure(lines: &[&str]) -> Option<String> {
        let mut first = FirstFailure::default();
        for line in lines {
            first.read(line);
        }
        first.failed
    }

    #[test]
    fn the_first_step_that_failed_names_what_did_not_build() {
        // Each row: what pip printed, and the line that names what failed.
        let table: [(&str, &[&str], Option<&str>); 5] = [
            (
                "pip 23: a project's requirements could not be had; another was processed before",
                &[
                    "Processing ./goodlib",
                    "Preparing metadata (pyproject.toml): finished with status 'done'",
                    "Processing ./badlib",
                    "Getting requirements to build wheel: finished with status 'error'",
                ],
                Some("Processing ./badlib"),
            ),
            (
                "pip 23: the failed build is not the last one pip ran",
                &[
                    "Processing ./badbuild",
                    "Processing ./goodlib",
                    "Building wheel for badbuild (pyproject.toml): finished with status 'error'",
                    "Building wheel for goodlib (pyproject.toml): finished with status 'done'",
                ],
                Some("Building wheel for badbuild (pyproject.toml): finished with status 'error'"),
            ),
            (
                "pip 18: a project whose metadata could not be made",
                &[
                    "Processing ./goodlib",
                    "Processing ./badmeta",
                    "Complete output from command python setup.py egg_info:",
                ],
                Some("Processing ./badmeta"),
            ),
            (
                "pip 18: a download after the project, then its build failing",
                &[
                    "Processing ./needsix",
                    "Collecting six==1.16.0",
                    "Running setup.py bdist_wheel for needsix ... error",
                ],
                Some("Running setup.py bdist_wheel for needsix ... error"),
            ),
            (
                "nothing failed",
                &["Collecting six", "Saved ./six.whl"],
                None,
            ),
        ];
        for (case, lines, expected) in table {
            assert_eq!(first_failure(lines).as_deref(), expected, "{case}");
        }
    }
}
