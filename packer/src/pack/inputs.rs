//! The inputs of a pack, checked before any work: the app's name and version, the collection
//! options, the stub, and an `-o` that names no input.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use tracing::{debug, info, warn};

use crate::appfiles::shown;
use crate::collect::{self, ParsedTarget};
use crate::elf::{self, GlibcVersion};
use crate::floor;
use crate::{PackArgs, UsageError};

pub(crate) fn app_name(args: &PackArgs) -> Result<String> {
    let metadata = std::fs::metadata(&args.app).with_context(|| {
        format!(
            "--app {}: cannot read the app directory",
            args.app.display()
        )
    })?;
    if !metadata.is_dir() {
        bail!("--app {}: not a directory", args.app.display());
    }
    let name = match &args.app_name {
        Some(name) => name.clone(),
        // The folder's name as given (`--app mysite`, a link to `src-1a2b3c` a build made,
        // is `mysite`, build after build); `.` or `..` is the directory's own name.
        None => match args.app.components().next_back() {
            Some(std::path::Component::Normal(name)) => Some(name.to_os_string()),
            _ => std::fs::canonicalize(&args.app)
                .ok()
                .and_then(|path| path.file_name().map(|name| name.to_os_string())),
        }
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| {
            anyhow!(
                "--app {}: cannot tell its name; give --app-name",
                args.app.display()
            )
        })?,
    };
    // Whether given with --app-name or taken from --app's folder, the name comes from the
    // command line: a usage error (exit 2), as for --app-version.
    pysfx_format::check_app_name(&name).map_err(|reason| {
        let source = match args.app_name {
            Some(_) => "--app-name",
            None => "--app's folder name",
        };
        UsageError(format!("{source}: {reason}; give another --app-name"))
    })?;
    Ok(name)
}

/// What `git rev-parse --local-env-vars` lists, but for `GIT_CONFIG*`: the variables that
/// point git at another repository, work tree, index or object store than the one it finds.
const GIT_REPOSITORY_VARIABLES: [&str; 12] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_GRAFT_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
];

/// `--app-version`, else what `git describe --always --dirty` says in the app directory when it
/// lies in a git work tree (SPEC: "Identity"), else none.
pub(crate) fn app_version(args: &PackArgs) -> Result<Option<String>> {
    if let Some(version) = &args.app_version {
        pysfx_format::check_app_version(version)
            .map_err(|reason| UsageError(format!("--app-version: {reason}")))?;
        // Printed after "app NAME" and in columns: blanks around it would not show.
        if version.trim() != version {
            return Err(UsageError(format!(
                "--app-version: app version \"{}\" begins or ends with a space",
                version.escape_debug()
            ))
            .into());
        }
        return Ok(Some(version.clone()));
    }
    // What git printed on stdout, or (failing) the first line of its error (`None`: git could
    // not be run). The app's own
    // work tree, whatever repository the environment names (a git hook runs with `GIT_DIR`
    // set): git's per-repository variables (`git rev-parse --local-env-vars`, but for the
    // configuration ones, which may say `safe.directory`) are cleared.
    let git = |arguments: &[&str]| -> std::result::Result<String, Option<String>> {
        let mut command = std::process::Command::new("git");
        for variable in GIT_REPOSITORY_VARIABLES {
            command.env_remove(variable);
        }
        // The repository's own configuration runs no program of its: `core.fsmonitor` is a
        // command git starts to list changes (`--dirty`), from a tree that may be anyone's.
        let output = command
            .args(["-c", "core.fsmonitor=false", "-C"])
            .arg(&args.app)
            .args(arguments)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|_| None)?;
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&output.stderr);
        match output.status.success() {
            true => Ok(stdout),
            false => Err(Some(
                stderr.lines().next().unwrap_or_default().trim().to_string(),
            )),
        }
    };
    match git(&["rev-parse", "--is-inside-work-tree"]) {
        Ok(inside) if inside == "true" => {}
        // Not a work tree, or no git: nothing to say but at -v.
        Ok(_) => return Ok(None),
        // No git to ask: said when the app looks like a work tree (a `.git` in it or above).
        Err(None) => {
            let repository = (args.app.canonicalize().ok()).and_then(|app| {
                app.ancestors()
                    .map(|at| at.join(".git"))
                    .find(|git| git.exists())
            });
            match repository {
                Some(repository) => warn!(
                    "--app is in a git work tree ({}), but git cannot be run to tell its \
                     version; no app version recorded (install git, or give --app-version)",
                    shown(&repository)
                ),
                None => debug!("--app is not in a git work tree (and no git); no app version"),
            }
            return Ok(None);
        }
        Err(Some(error)) if error.is_empty() || error.contains("not a git repository") => {
            debug!("--app is not in a git work tree; no app version");
            return Ok(None);
        }
        // A work tree git refuses to read ("detected dubious ownership", in CI containers).
        Err(Some(error)) => {
            warn!(
                "git cannot tell the app's version ({}); no app version recorded (give \
                 --app-version)",
                pysfx_format::escape_control(&error)
            );
            return Ok(None);
        }
    }
    let Ok(version) = git(&["describe", "--always", "--dirty"]) else {
        warn!(
            "--app is in a git work tree, but git describe gave no version (no commit yet?); \
             give --app-version"
        );
        return Ok(None);
    };
    if let Err(reason) = pysfx_format::check_app_version(&version) {
        warn!("git describe: {reason}; no app version recorded");
        return Ok(None);
    }
    info!("app version {version} (git describe; --app-version sets another)");
    Ok(Some(version))
}

/// The options that say how wheels are collected, checked before any work (exit 2); returns
/// the parsed `--target`s. A target whose platform needs a newer glibc than `--max-glibc`
/// would only collect wheels the floor refuses.
pub(crate) fn check_collection_options(
    args: &PackArgs,
    max_glibc: &GlibcVersion,
) -> Result<Vec<ParsedTarget>> {
    if args.requirements.is_empty() && !args.target.is_empty() {
        return Err(
            UsageError("--target collects the requirements of -r FILE; give -r".into()).into(),
        );
    }
    // PYSFX_BOOTSTRAP_WHEELS (a CI job's default) gives way to --no-bootstrap; only both on
    // the command line contradict each other.
    if args.no_bootstrap && !args.bootstrap_wheels.is_empty() {
        return Err(UsageError(
            "--no-bootstrap leaves pip and setuptools out, --bootstrap-wheels gives them: \
             choose one"
                .into(),
        )
        .into());
    }
    for (index, python) in args.python.iter().enumerate() {
        // The same interpreter twice would collect one set twice, under one name.
        if args.python[..index].contains(python) {
            return Err(UsageError(format!("--python {python} is given twice")).into());
        }
    }
    let mut targets = Vec::new();
    for (index, text) in args.target.iter().enumerate() {
        // The same target twice would make two sets of one name.
        if args.target[..index].contains(text) {
            return Err(UsageError(format!("--target {text} is given twice")).into());
        }
        let target = collect::parse_target(text).map_err(|error| UsageError(error.to_string()))?;
        // Two spellings of one target (`3.12`, `cp312-manylinux2014_x86_64`,
        // `cp312-manylinux_2_17_x86_64`: one Python, one glibc floor): two sets, the second
        // never chosen.
        let platform_need = |target: &ParsedTarget| {
            floor::tag_need(target.target.platform.as_deref().unwrap_or_default())
        };
        if let Some((spelled, _)) =
            (args.target.iter().zip(&targets)).find(|(_, other): &(&String, &ParsedTarget)| {
                other.python_version == target.python_version
                    && platform_need(other) == platform_need(&target)
            })
        {
            return Err(UsageError(format!(
                "--target {text} is the same target as --target {spelled} ({}); give it once",
                target.name
            ))
            .into());
        }
        let platform = target.target.platform.as_deref().unwrap_or_default();
        if let floor::TagNeed::Glibc(needed) = floor::tag_need(platform) {
            if needed > *max_glibc {
                return Err(UsageError(format!(
                    "--target {text}: {platform} needs glibc {needed}, newer than --max-glibc \
                     {max_glibc}; use cp{}-manylinux2014_x86_64, or pass --max-glibc {needed} \
                     on purpose if no older system will run this artifact",
                    target.python_version.replace('.', "")
                ))
                .into());
            }
        }
        targets.push(target);
    }
    Ok(targets)
}

/// `--stub`, else the `pysfx-stub` next to the packer.
pub(crate) fn stub_path(args: &PackArgs) -> Result<PathBuf> {
    if let Some(path) = &args.stub {
        return Ok(path.clone());
    }
    let packer = std::env::current_exe().context("cannot find the pysfx executable")?;
    let beside = packer.with_file_name("pysfx-stub");
    if !beside.is_file() {
        bail!(
            "no pysfx-stub next to {} ; build it (cargo build --release -p pysfx-stub) or give --stub PATH",
            packer.display()
        );
    }
    Ok(beside)
}

/// Refuses (exit 2, before any work) an `-o` that names an input file or lies inside an input
/// directory: the final rename would replace that wheel, `-r` file or stub with the artifact,
/// or leave the artifact where the next pack would pick it up. Paths are compared with their
/// symbolic links resolved; the output's own name is not (the rename replaces a link, not its
/// target), and the output need not exist yet.
pub(crate) fn check_output_is_not_an_input(args: &PackArgs, stub: &Path) -> Result<()> {
    let output = &args.output;
    if output.file_name().is_none() {
        return Err(UsageError(format!("-o {}: not a file name", output.display())).into());
    }
    let resolved = resolve_parent(output)
        .with_context(|| format!("-o {}: cannot resolve its directory", output.display()))?;
    let mut directories: Vec<(&str, &Path)> = vec![("--app", &args.app)];
    directories.extend(args.wheels.iter().map(|d| ("--wheels", d.as_path())));
    directories.extend(args.static_dirs.iter().map(|d| ("--static", d.as_path())));
    let bootstrap = args.bootstrap_dirs();
    directories.extend(
        bootstrap
            .iter()
            .map(|d| ("--bootstrap-wheels", d.as_path())),
    );
    let mut files: Vec<(&str, &Path)> = vec![("--stub", stub)];
    files.extend(args.requirements.iter().map(|f| ("-r", f.as_path())));
    // A thin artifact replacing its base would leave new hosts without the full artifact.
    files.extend(args.thin_from.iter().map(|f| ("--thin-from", f.as_path())));
    // The signing key: replacing it with the artifact would lose the key for good.
    files.extend(args.sign.iter().map(|f| ("--sign", f.as_path())));
    // An interpreter (a path, or a name found on PATH): packing would replace it.
    let interpreters: Vec<PathBuf> = args
        .python
        .iter()
        .filter_map(|python| pysfx_venv::resolve_command(python))
        .collect();
    files.extend(interpreters.iter().map(|f| ("--python", f.as_path())));
    for (flag, directory) in directories {
        if spellings(directory)
            .iter()
            .any(|spelling| resolved.starts_with(spelling))
        {
            return Err(UsageError(format!(
                "-o {} lies inside the {flag} directory {}: the artifact would land among the \
                 inputs; write it somewhere else",
                output.display(),
                directory.display()
            ))
            .into());
        }
    }
    for (flag, file) in &files {
        check_output_is_not(output, file, flag)?;
    }
    check_replaceable_file(output, "-o")?;
    if args.sign.is_some() {
        // The signature is written after the artifact: a place it cannot go is refused before
        // the artifact is.
        let signature = crate::signing::signature_path(output);
        for (flag, file) in &files {
            check_written_is_not(&signature, "the signature", file, flag)?;
        }
        check_replaceable_file(&signature, "the signature")?;
    }
    Ok(())
}

/// Refuses (exit 2) an output that exists and is not a regular file: the final rename would
/// replace a device such as `/dev/null`, a FIFO, a socket or a directory with the artifact, and
/// a symbolic link (`/dev/stdout`, a `latest.sfx` link) with a file where it was, not writing
/// where it leads; nor is `-` standard output.
fn check_replaceable_file(output: &Path, what: &str) -> Result<()> {
    if output.as_os_str() == "-" {
        return Err(UsageError(format!(
            "{what} -: the artifact is written to a file, not to standard output; name the file"
        ))
        .into());
    }
    let Ok(metadata) = std::fs::symlink_metadata(output) else {
        return Ok(());
    };
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    if kind.is_symlink() {
        let target = std::fs::read_link(output).unwrap_or_default();
        return Err(UsageError(format!(
            "{what} {} is a symbolic link (to {}): packing would replace the link with a file, \
             not write where it leads; name the file itself, or remove the link",
            output.display(),
            target.display()
        ))
        .into());
    }
    let found = if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file (a device, FIFO or socket)"
    };
    Err(UsageError(format!(
        "{what} {} exists and is {found}: packing would replace it; write the artifact \
         somewhere else",
        output.display()
    ))
    .into())
}

/// Refuses (exit 2) an `-o` that is the input file `file`.
pub(crate) fn check_output_is_not(output: &Path, file: &Path, flag: &str) -> Result<()> {
    check_written_is_not(output, "-o", file, flag)
}

/// [`check_output_is_not`] of what the pack writes, named `what` (`-o`, the signature).
fn check_written_is_not(written: &Path, what: &str, file: &Path, flag: &str) -> Result<()> {
    let resolved = resolve_parent(written)
        .with_context(|| format!("{what} {}: cannot resolve its directory", written.display()))?;
    if spellings(file).contains(&resolved) {
        return Err(UsageError(format!(
            "{what} {} is the {flag} input {}: packing would overwrite it; write the artifact \
             somewhere else",
            written.display(),
            file.display()
        ))
        .into());
    }
    Ok(())
}

/// The ways an input path may be met: with its directory resolved, and fully resolved.
fn spellings(path: &Path) -> Vec<PathBuf> {
    let mut spellings = Vec::new();
    if let Ok(resolved) = resolve_parent(path) {
        spellings.push(resolved);
    }
    if let Ok(canonical) = std::fs::canonicalize(path) {
        spellings.push(canonical);
    }
    spellings
}

/// `path` made absolute with symbolic links resolved in the part of its directory that exists;
/// the rest (directories still to be created, and the last component) is taken as written,
/// with `.` and `..` applied.
fn resolve_parent(path: &Path) -> std::io::Result<PathBuf> {
    use std::path::Component;
    let absolute = std::path::absolute(path)?;
    let components: Vec<Component> = absolute.components().collect();
    // The longest existing directory above the last component (a `..` after a directory that
    // does not exist does not exist either).
    let mut split = components.len().saturating_sub(1).max(1);
    while split > 1 {
        let prefix: PathBuf = components[..split].iter().collect();
        if std::fs::symlink_metadata(&prefix).is_ok() {
            break;
        }
        split -= 1;
    }
    let existing: PathBuf = components[..split].iter().collect();
    let mut resolved = std::fs::canonicalize(existing)?;
    for component in &components[split..] {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => resolved.push(name),
            _ => {}
        }
    }
    Ok(resolved)
}

/// The stub's bytes and the highest glibc it needs; refuses one that needs more than
/// `--max-glibc` so nobody ships a CentOS 7-incompatible artifact by accident.
pub(crate) fn read_stub(path: &Path, limit: &GlibcVersion) -> Result<(Vec<u8>, Option<String>)> {
    let mut stub = Vec::new();
    crate::appfiles::open_regular(path, true)
        .and_then(|mut file| std::io::Read::read_to_end(&mut file, &mut stub))
        .with_context(|| format!("cannot read the stub {}", path.display()))?;
    if !stub.starts_with(b"\x7fELF") {
        bail!("the stub {} is not an ELF executable", path.display());
    }
    // Another program (the packer itself, /bin/true) would make an artifact that installs
    // nothing and says so nowhere. Every pysfx-stub carries a marker (`STUB_MARKER` in the
    // stub's main.rs); the needle is put together here, so the packer does not carry it whole.
    let marker = [
        b"pysfx-stub marker: ".as_slice(),
        b"the extractor of pysfx artifacts",
    ]
    .concat();
    if !stub.windows(marker.len()).any(|window| window == marker) {
        bail!(
            "the stub {} is not a pysfx-stub; give the one scripts/build-stub.sh builds",
            path.display()
        );
    }
    let mut file = crate::appfiles::open_regular(path, true)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if pysfx_format::locate(&mut file, path).is_ok() {
        bail!(
            "the stub {} already carries a payload (is it an artifact?); give the bare pysfx-stub",
            path.display()
        );
    }
    let needed =
        elf::required_glibc(&stub).with_context(|| format!("the stub {}", path.display()))?;
    if let Some(needed) = &needed {
        if needed > limit {
            bail!(
                "the stub {} needs glibc {needed}, newer than --max-glibc {limit}: it would not \
                 start on older systems such as CentOS 7. Build the release stub with \
                 scripts/build-stub.sh (cargo zigbuild --target x86_64-unknown-linux-gnu.2.17), \
                 or pass --max-glibc {needed} if no older system will run this artifact",
                path.display()
            );
        }
    }
    Ok((stub, needed.map(|version| version.to_string())))
}
