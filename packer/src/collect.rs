//! Collecting wheels with pip (pip is the resolver; pysfx never resolves), and reading what the
//! packer needs to know about each wheel.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use pysfx_format::Target;
use pysfx_venv::Interpreter;
use pysfx_wheel::{Candidate, InterpreterTags, PlatformFacts, WheelFilename};
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use crate::pipfail::{self, PipRun};
use crate::requirements::{self, Entry, Requirements, Source};

/// Where pip finds wheels and keeps checkouts, besides its index.
pub struct PipSources<'a> {
    /// The `--wheels` directories, offered as `--find-links`: a prebuilt wheel fills in for a
    /// distribution the index has no wheel of.
    pub find_links: &'a [PathBuf],
    /// `--src`: editable VCS checkouts go here, not into the current directory.
    pub src: &'a Path,
}

impl PipSources<'_> {
    fn add_to(&self, command: &mut Command) {
        for directory in self.find_links {
            command.arg("--find-links").arg(directory);
        }
    }
}

/// `PY -m pip wheel -r FILE… -w OUT`: resolves and builds every requirement for that
/// interpreter, markers included (local projects, `-e`, VCS and sdist URLs too).
pub fn pip_wheel(
    python: &str,
    requirements: &[PathBuf],
    sources: &PipSources<'_>,
    out: &Path,
) -> Result<()> {
    let mut command = Command::new(python);
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
            let mut command = Command::new(host_python);
            command
                .args([
                    "-m",
                    "pip",
                    "wheel",
                    "--disable-pip-version-check",
                    "--no-input",
                    pip_verbosity(),
                    "--no-deps",
                    "-w",
                ])
                .arg(&out)
                .arg("--src")
                .arg(sources.src);
            sources.add_to(&mut command);
            command.arg("-r").arg(&listing);
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

fn wheel_filename(path: &Path) -> Result<WheelFilename> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| anyhow!("{}: not a UTF-8 file name", path.display()))?;
    name.parse()
        .with_context(|| format!("invalid wheel {}", path.display()))
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
             collects for interpreters pysfx cannot build for, so pack it with --python PY (a \
             real interpreter of each target version) instead"
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
    let facts = PlatformFacts {
        major: 3,
        minor,
        debug: false,
        pymalloc: Some(true),
        gil_disabled: false,
        platform: "linux-x86_64".into(),
        is_32bit: false,
        glibc: glibc_of_platform(platform),
    };
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
    let present: HashSet<String> = files
        .iter()
        .filter_map(|file| wheel_filename(file).ok())
        .map(|filename| filename.name)
        .collect();
    for (file_index, file) in requirements.files.iter().enumerate() {
        if file.constraint {
            continue;
        }
        for line in &file.lines {
            let Entry::Requirement { spec, .. } = &line.entry else {
                continue;
            };
            let source = requirements::classify(
                spec,
                |path| Path::new(path).is_dir(),
                |path| Path::new(path).is_file(),
            );
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
            if !present.contains(&pysfx_wheel::normalize_name(&name)) {
                bail!(
                    "-r {} line {}: {}: pip collected no wheel of {name} for the wheel set \
                     {set_name}; every requirement must reach the artifact",
                    file.path.display(),
                    line.number,
                    line.raw
                );
            }
        }
    }
    Ok(())
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
) -> Result<Vec<PathBuf>> {
    let mut wheels = Vec::new();
    for version in versions {
        // One directory per version: pip takes a file already in -d as satisfying "pip", so a
        // shared one would give every version the first version's pip.
        let out = out.join(version);
        std::fs::create_dir_all(&out)?;
        let mut command = Command::new(host_python);
        command
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

/// pip's verbosity: quiet unless `-v` asked for pip's full output (`-vv`: pip's `-v` too).
fn pip_verbosity() -> &'static str {
    if tracing::enabled!(tracing::Level::TRACE) {
        "-v"
    } else if tracing::enabled!(tracing::Level::DEBUG) {
        "--progress-bar=off"
    } else {
        "-q"
    }
}

/// What is kept of pip's stderr to classify a failure: its last 1 MiB.
const STDERR_KEPT: usize = 1024 * 1024;

/// Runs pip. With `-v` its command line is logged and its whole output goes to stderr as it
/// comes; without, its output is held back and a failure is reported as one line saying what
/// went wrong (pip's telling line) and one with the fix for that failure (`pipfail`).
fn run_pip(mut command: Command, what: &str, run: PipRun<'_>) -> Result<()> {
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
    let forwarder = std::thread::spawn(move || {
        let Some(mut stdout) = stdout else { return };
        let mut buffer = [0u8; 8192];
        while let Ok(read) = stdout.read(&mut buffer) {
            if read == 0 {
                break;
            }
            if verbose {
                let _ = std::io::stderr().write_all(&buffer[..read]);
            }
        }
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
    let _ = forwarder.join();
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

/// The set's target as recorded in the manifest, from a real interpreter.
pub fn target_of(interpreter: &Interpreter) -> Target {
    let tags = interpreter.tags();
    let first = tags.tags().first();
    Target {
        implementation: "cp".into(),
        python_version: format!(
            "{}.{}",
            interpreter.version_info.0, interpreter.version_info.1
        ),
        full_version: Some(interpreter.version()),
        abi: first.map(|tag| tag.abi.clone()),
        platform: first.map(|tag| tag.platform.clone()),
    }
}

/// A `--target`: `cp36-manylinux2014_x86_64`, `cp311-manylinux_2_17_x86_64`, or `3.12` (CPython
/// 3.12 on x86_64 glibc 2.17, the stub's platform).
#[derive(Debug, Clone)]
pub struct ParsedTarget {
    pub name: String,
    pub python_version: String,
    pub abis: Vec<String>,
    pub platforms: Vec<String>,
    pub target: Target,
}

/// What `--target` accepts, for its usage errors.
pub const TARGETS_ACCEPTED: &str = "a CPython 3.6 to 3.13 (cp36 … cp313, or 3.6 … 3.13 for \
     manylinux2014_x86_64) on x86_64 Linux with glibc: cpXY-manylinux2014_x86_64, \
     cpXY-manylinux2010_x86_64, cpXY-manylinux1_x86_64 or cpXY-manylinux_2_N_x86_64, e.g. \
     cp36-manylinux2014_x86_64, cp311-manylinux_2_17_x86_64 or 3.12";

/// Parses a `--target`. Only what an artifact of this stub can install is accepted: CPython
/// 3.6 to 3.13 (the interpreters the stub supports) on x86_64 Linux with glibc (the stub's
/// platform). Whether its glibc is within `--max-glibc` is the caller's to check.
pub fn parse_target(text: &str) -> Result<ParsedTarget> {
    let refuse = |why: &str| anyhow!("--target {text:?}: {why}; accepted: {TARGETS_ACCEPTED}");
    let (python, platform) = match text.split_once('-') {
        Some((python, platform)) => (python.to_string(), platform.to_string()),
        None => {
            let (major, minor) = text.split_once('.').ok_or_else(|| refuse("not a target"))?;
            (
                format!("cp{major}{minor}"),
                "manylinux2014_x86_64".to_string(),
            )
        }
    };
    let digits = python
        .strip_prefix("cp")
        .filter(|digits| digits.len() >= 2 && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            refuse(&format!(
                "{python:?} is not a CPython version such as cp311"
            ))
        })?;
    let (major, minor) = digits.split_at(1);
    let minor: u32 = minor
        .parse()
        .map_err(|_| refuse(&format!("{python:?} is not a CPython version")))?;
    if major != "3" || !(6..=13).contains(&minor) {
        return Err(refuse(&format!(
            "CPython {major}.{minor} is not one the stub installs with (3.6 to 3.13)"
        )));
    }
    match crate::floor::tag_need(&platform) {
        crate::floor::TagNeed::Glibc(_) => {}
        _ => {
            return Err(refuse(&format!(
                "{platform:?} is not a platform the stub runs on (x86_64 Linux with glibc, a \
                 manylinux tag)"
            )))
        }
    }
    let python_version = format!("3.{minor}");
    let abi = if minor < 8 {
        format!("cp3{minor}m")
    } else {
        format!("cp3{minor}")
    };
    let mut platforms = vec![platform.clone()];
    // pip matches --platform exactly: give both spellings of the same glibc floor.
    let aliases = [
        ("manylinux2014_", "manylinux_2_17_"),
        ("manylinux2010_", "manylinux_2_12_"),
        ("manylinux1_", "manylinux_2_5_"),
    ];
    for (legacy, modern) in aliases {
        if let Some(arch) = platform.strip_prefix(legacy) {
            platforms.push(format!("{modern}{arch}"));
        } else if let Some(arch) = platform.strip_prefix(modern) {
            platforms.push(format!("{legacy}{arch}"));
        }
    }
    if platform.starts_with("manylinux2014_") || platform.starts_with("manylinux_2_17_") {
        let arch = platform.rsplit_once("_x86_64").map(|_| "x86_64");
        if let Some(arch) = arch {
            for older in ["manylinux2010", "manylinux1"] {
                platforms.push(format!("{older}_{arch}"));
            }
        }
    }
    let name = format!("{python}-{platform}");
    Ok(ParsedTarget {
        name: name.clone(),
        python_version: python_version.clone(),
        abis: vec![abi.clone(), "abi3".into(), "none".into()],
        platforms,
        target: Target {
            implementation: "cp".into(),
            python_version,
            full_version: None,
            abi: Some(abi),
            platform: Some(platform),
        },
    })
}

/// The `.whl` files directly in `directory`, sorted.
pub fn wheels_in(directory: &Path) -> Result<Vec<PathBuf>> {
    let mut wheels = Vec::new();
    for entry in std::fs::read_dir(directory)
        .with_context(|| format!("cannot read the wheel directory {}", directory.display()))?
    {
        let path = entry
            .with_context(|| format!("cannot read {}", directory.display()))?
            .path();
        if path.extension().is_some_and(|extension| extension == "whl") && path.is_file() {
            wheels.push(path);
        }
    }
    wheels.sort();
    Ok(wheels)
}

/// What the manifest records about a wheel, read and checked at pack time.
#[derive(Debug, Clone)]
pub struct WheelInfo {
    pub filename: WheelFilename,
    pub name: String,
    pub version: String,
    pub requires_python: Option<String>,
    pub sha256: String,
    pub size: u64,
    pub unpacked_bytes: u64,
    /// Entries in the zip directory.
    pub members: u64,
    /// `Requires-Dist` of METADATA, as written.
    pub requires_dist: Vec<String>,
}

/// Reads a wheel: its digest, and everything the stub checks at install, by the install's own
/// code (refusing what the stub would refuse, the app's `.pth` hook included when `app_name`
/// is given).
pub fn read_wheel(path: &Path, app_name: Option<&str>) -> Result<WheelInfo> {
    let context = || format!("invalid wheel {}", path.display());
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| anyhow!("{}: not a UTF-8 file name", path.display()))?;
    let filename: WheelFilename = file_name.parse().with_context(context)?;
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let sha256 = pysfx_format::hex(&Sha256::digest(&bytes));
    // Everything the stub will check at install, checked now: a wheel that would be refused
    // there is refused here.
    let prepared = pysfx_install::verify_wheel(std::io::Cursor::new(&bytes), &filename, app_name)
        .map_err(|error| anyhow!("invalid wheel {}: {error}", path.display()))?;
    let members = zip::ZipArchive::new(std::io::Cursor::new(&bytes))
        .with_context(context)?
        .len() as u64;
    // The stub refuses a wheel whose requirements it cannot read (it could not tell the
    // release is complete): refuse it here.
    for text in prepared.requires_dist() {
        pysfx_wheel::Requirement::parse(text).map_err(|error| {
            anyhow!(
                "invalid wheel {}: Requires-Dist {:?}: {}",
                path.display(),
                pysfx_format::escape_control(text),
                pysfx_format::escape_control(&error.to_string())
            )
        })?;
    }
    Ok(WheelInfo {
        name: filename.name.clone(),
        version: prepared.version().to_string(),
        requires_python: prepared.requires_python().map(str::to_string),
        filename,
        sha256,
        size: bytes.len() as u64,
        unpacked_bytes: prepared.unpacked_bytes(),
        members,
        requires_dist: prepared.requires_dist().to_vec(),
    })
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn targets() {
        let t = parse_target("cp36-manylinux2014_x86_64").expect("parse");
        assert_eq!(t.python_version, "3.6");
        assert_eq!(t.abis, ["cp36m", "abi3", "none"]);
        assert_eq!(
            t.platforms,
            [
                "manylinux2014_x86_64",
                "manylinux_2_17_x86_64",
                "manylinux2010_x86_64",
                "manylinux1_x86_64"
            ]
        );
        let t = parse_target("3.12").expect("parse");
        assert_eq!(t.name, "cp312-manylinux2014_x86_64");
        assert_eq!(t.abis[0], "cp312");
        let t = parse_target("3.13").expect("parse");
        assert_eq!(t.python_version, "3.13");
        for bad in [
            "py3-any",
            "cp2-x",
            "cp27-manylinux1_x86_64",
            "cp35-manylinux2014_x86_64",
            "cp35",
            "3",
            "3.5",
            "3.14",
            "cp314-manylinux2014_x86_64",
            "cpxy-linux",
            "cp311-macosx_11_0_arm64",
            "cp311-manylinux2014_aarch64",
            "cp311-manylinux_2_17_aarch64",
            "cp311-linux_x86_64",
            "cp311-musllinux_1_2_x86_64",
            "cp311-win_amd64",
            "cp313t-manylinux2014_x86_64",
        ] {
            let error = parse_target(bad).expect_err(bad).to_string();
            assert!(
                error.contains(bad) && error.contains("accepted: ") && error.contains("cp313"),
                "{bad}: {error}"
            );
        }
    }
}
