//! `pysfx pack`: collect, check, and write the artifact.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use pysfx_format::{
    AppInfo, EntryOptions, Manifest, PayloadWriter, Target, WheelEntry, WheelSet, FORMAT_VERSION,
};
use pysfx_venv::Interpreter;
use tracing::{debug, info, warn};

use crate::appfiles::{self, Excludes, TreeFile, TreeKind};
use crate::bytecode;
use crate::collect::{self, ParsedTarget, PipSources, WheelInfo};
use crate::elf::{self, GlibcVersion};
use crate::floor;
use crate::requirements::Requirements;
use crate::{sbom, signing};
use crate::{PackArgs, UsageError};

/// Zip timestamps when `SOURCE_DATE_EPOCH` is unset: 1980-01-01, the zip epoch.
const DEFAULT_EPOCH: u64 = 315_532_800;

pub fn run(args: &PackArgs) -> Result<()> {
    let stub_path = stub_path(args)?;
    check_output_is_not_an_input(args, &stub_path)?;
    let max_glibc = GlibcVersion::parse(&args.max_glibc).ok_or_else(|| {
        UsageError(format!(
            "--max-glibc {:?}: expected a version such as 2.17",
            args.max_glibc
        ))
    })?;
    let targets = check_collection_options(args, &max_glibc)?;
    let app_name = app_name(args)?;
    let app_version = app_version(args)?;
    let (stub, stub_glibc) = read_stub(&stub_path, &max_glibc)?;
    // A wrong password fails the pack before any work.
    let signing_key = args
        .sign
        .as_deref()
        .map(signing::load_secret_key)
        .transpose()?;
    let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .map(|value| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"))
        })
        .transpose()?;

    let excludes = Excludes::new(&args.exclude)?;
    let app_files = appfiles::walk(&args.app, &format!("{app_name}/"), "--app", &excludes)?;
    let mut static_files = Vec::new();
    let mut static_dirs = Vec::new();
    for (index, directory) in args.static_dirs.iter().enumerate() {
        let prefix = format!("static.in/{index}/");
        static_files.extend(appfiles::walk(directory, &prefix, "--static", &excludes)?);
        static_dirs.push(format!("static.in/{index}"));
    }
    for pattern in excludes.unused() {
        warn!("--exclude {pattern:?} matched nothing");
    }
    let secrets: Vec<&str> = appfiles::secret_looking(&app_files)
        .into_iter()
        .chain(appfiles::secret_looking(&static_files))
        .collect();
    if !secrets.is_empty() {
        warn!(
            "packing {} that {} like local secrets: {} (leave them out with --exclude GLOB if \
             they are)",
            if secrets.len() == 1 {
                "a file"
            } else {
                "files"
            },
            if secrets.len() == 1 { "looks" } else { "look" },
            secrets.join(", ")
        );
    }

    let work = tempfile::Builder::new()
        .prefix("pysfx-pack-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    crate::interrupt::remove_on_signal(work.path().to_path_buf());
    let (sets, bootstrap_files) = collect_sets(args, &targets, work.path())?;

    // Every wheel file once, keyed by content.
    let mut infos: BTreeMap<String, (WheelInfo, PathBuf)> = BTreeMap::new();
    let mut payload_path = |path: &Path| -> Result<String> {
        let info = collect::read_wheel(path, Some(&app_name))?;
        let stored = format!("wheels/{}/{}", &info.sha256[..16], info.filename);
        infos
            .entry(stored.clone())
            .or_insert((info, path.to_path_buf()));
        Ok(stored)
    };
    let mut manifest_sets = Vec::new();
    let mut compile_plans = Vec::new();
    for set in &sets {
        let mut wheels = BTreeSet::new();
        for file in &set.files {
            wheels.insert(payload_path(file)?);
        }
        let wheels: Vec<String> = wheels.into_iter().collect();
        for wheel in &wheels {
            debug!("set {}: {wheel}", set.name);
        }
        for interpreter in &set.compile_with {
            compile_plans.push((interpreter, wheels.clone()));
        }
        manifest_sets.push(WheelSet {
            name: set.name.clone(),
            target: set.target.clone(),
            wheels,
        });
    }
    let mut bootstrap = BTreeSet::new();
    for file in &bootstrap_files {
        let path = payload_path(file)?;
        debug!("bootstrap: {path}");
        bootstrap.insert(path);
    }
    check_platform_floor(&manifest_sets, &bootstrap, &infos, &max_glibc)?;
    check_one_version_per_set(&manifest_sets, &infos)?;
    // The bootstrap wheels the stub will pick for each interpreter get byte-code too.
    for (interpreter, wheels) in &mut compile_plans {
        wheels.extend(bootstrap_for(interpreter, &bootstrap, &infos));
    }

    // Byte-code for the sets whose interpreter is at hand.
    let epoch = source_date_epoch.unwrap_or(DEFAULT_EPOCH);
    let mut bundles: BTreeMap<String, bytecode::Built> = BTreeMap::new();
    for (interpreter, wheels) in compile_plans {
        let wheels: Vec<(String, PathBuf, String)> = wheels
            .iter()
            .filter_map(|path| {
                infos
                    .get(path)
                    .map(|(info, file)| (path.clone(), file.clone(), info.sha256.clone()))
            })
            .collect();
        for built in bytecode::build_bundles(interpreter, &wheels, work.path(), epoch)? {
            bundles.entry(built.bundle.path.clone()).or_insert(built);
        }
    }

    let wheels: Vec<WheelEntry> = infos
        .iter()
        .map(|(path, (info, _))| WheelEntry {
            path: path.clone(),
            filename: info.filename.to_string(),
            name: info.name.clone(),
            version: info.version.clone(),
            sha256: info.sha256.clone(),
            size: info.size,
            unpacked_bytes: info.unpacked_bytes,
            members: info.members,
            requires_python: info.requires_python.clone(),
            requires_dist: info.requires_dist.clone(),
        })
        .collect();
    let app_bytes: u64 = app_files.iter().map(TreeFile::size).sum();
    let static_bytes: u64 = static_files.iter().map(TreeFile::size).sum();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        pysfx_version: env!("CARGO_PKG_VERSION").to_string(),
        created: source_date_epoch,
        app: AppInfo {
            name: app_name.clone(),
            version: app_version,
            files: app_files.len() as u64,
            bytes: app_bytes,
        },
        static_dirs,
        unpacked_bytes: app_bytes
            + static_bytes
            + wheels.iter().map(|wheel| wheel.unpacked_bytes).sum::<u64>()
            + bundles
                .values()
                .map(|built| std::fs::metadata(&built.file).map_or(0, |m| m.len()) * 3)
                .sum::<u64>(),
        wheels,
        sets: manifest_sets,
        bootstrap: bootstrap.into_iter().collect(),
        stub_glibc: stub_glibc.or_else(|| Some("none (static)".into())),
        bytecode: bundles.values().map(|built| built.bundle.clone()).collect(),
    };

    check_sets_complete(&manifest)?;
    let manifest_sha256 = <sha2::Sha256 as sha2::Digest>::digest(manifest.to_json()?);
    let sboms =
        sbom::payload_entries(&manifest, &manifest_sha256).context("cannot write the SBOMs")?;
    write_artifact(
        &args.output,
        &stub,
        &manifest,
        &Contents {
            app_files: &app_files,
            static_files: &static_files,
            wheels: &infos,
            bundles: &bundles,
            documents: &sboms,
        },
        epoch,
    )?;
    let size = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    info!(
        "wrote {} ({} bytes: stub {} bytes, {} wheels in {} sets, {} app files)",
        args.output.display(),
        size,
        stub.len(),
        manifest.wheels.len(),
        manifest.sets.len(),
        manifest.app.files
    );
    let signature = signing::signature_path(&args.output);
    match &signing_key {
        Some(key) => {
            let digest = pysfx_format::Payload::open(&args.output)?.digest();
            let comment = signing::trusted_comment(&manifest, &digest);
            signing::sign_artifact(key, &args.output, &comment)?;
        }
        None if signature.exists() => warn!(
            "{} is left from an earlier pack and does not sign this artifact; remove it (or \
             pack with --sign)",
            signature.display()
        ),
        None => {}
    }
    Ok(())
}

fn app_name(args: &PackArgs) -> Result<String> {
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
        None => std::fs::canonicalize(&args.app)
            .ok()
            .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or_else(|| {
                anyhow!(
                    "--app {}: cannot tell its name; give --app-name",
                    args.app.display()
                )
            })?,
    };
    pysfx_format::check_app_name(&name)
        .map_err(|reason| anyhow!("{reason}; give another --app-name"))?;
    Ok(name)
}

/// `--app-version`, else what `git describe --always --dirty` says in the app directory when it
/// lies in a git work tree (SPEC: "Identity"), else none.
fn app_version(args: &PackArgs) -> Result<Option<String>> {
    if let Some(version) = &args.app_version {
        pysfx_format::check_app_version(version)
            .map_err(|reason| UsageError(format!("--app-version: {reason}")))?;
        return Ok(Some(version.clone()));
    }
    let git = |arguments: &[&str]| -> Option<String> {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(&args.app)
            .args(arguments)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        output.status.success().then(|| text.trim().to_string())
    };
    if git(&["rev-parse", "--is-inside-work-tree"]).as_deref() != Some("true") {
        debug!("--app is not in a git work tree; no app version");
        return Ok(None);
    }
    let Some(version) = git(&["describe", "--always", "--dirty"]) else {
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
fn check_collection_options(
    args: &PackArgs,
    max_glibc: &GlibcVersion,
) -> Result<Vec<ParsedTarget>> {
    if args.requirements.is_empty() && !args.target.is_empty() {
        return Err(
            UsageError("--target collects the requirements of -r FILE; give -r".into()).into(),
        );
    }
    let mut targets = Vec::new();
    for text in &args.target {
        let target = collect::parse_target(text).map_err(|error| UsageError(error.to_string()))?;
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
fn stub_path(args: &PackArgs) -> Result<PathBuf> {
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
fn check_output_is_not_an_input(args: &PackArgs, stub: &Path) -> Result<()> {
    let output = &args.output;
    if output.file_name().is_none() {
        return Err(UsageError(format!("-o {}: not a file name", output.display())).into());
    }
    let resolved = resolve_parent(output)
        .with_context(|| format!("-o {}: cannot resolve its directory", output.display()))?;
    let mut directories: Vec<(&str, &Path)> = vec![("--app", &args.app)];
    directories.extend(args.wheels.iter().map(|d| ("--wheels", d.as_path())));
    directories.extend(args.static_dirs.iter().map(|d| ("--static", d.as_path())));
    directories.extend(
        args.bootstrap_wheels
            .iter()
            .map(|d| ("--bootstrap-wheels", d.as_path())),
    );
    let mut files: Vec<(&str, &Path)> = vec![("--stub", stub)];
    files.extend(args.requirements.iter().map(|f| ("-r", f.as_path())));
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
    for (flag, file) in files {
        check_output_is_not(output, file, flag)?;
    }
    Ok(())
}

/// Refuses (exit 2) an `-o` that is the input file `file`.
fn check_output_is_not(output: &Path, file: &Path, flag: &str) -> Result<()> {
    let resolved = resolve_parent(output)
        .with_context(|| format!("-o {}: cannot resolve its directory", output.display()))?;
    if spellings(file).contains(&resolved) {
        return Err(UsageError(format!(
            "-o {} is the {flag} input {}: packing would overwrite it; write the artifact \
             somewhere else",
            output.display(),
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
fn read_stub(path: &Path, limit: &GlibcVersion) -> Result<(Vec<u8>, Option<String>)> {
    let stub =
        std::fs::read(path).with_context(|| format!("cannot read the stub {}", path.display()))?;
    if !stub.starts_with(b"\x7fELF") {
        bail!("the stub {} is not an ELF executable", path.display());
    }
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
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

/// A wheel set as collected.
struct CollectedSet {
    name: String,
    /// `None` for the set that serves every target (`--wheels` without `-r`).
    target: Option<Target>,
    files: Vec<PathBuf>,
    /// The interpreters to byte-compile it with at pack time.
    compile_with: Vec<Interpreter>,
}

/// The wheel sets and the bootstrap wheels, collected into `work`.
fn collect_sets(
    args: &PackArgs,
    targets: &[ParsedTarget],
    work: &Path,
) -> Result<(Vec<CollectedSet>, Vec<PathBuf>)> {
    let mut prebuilt = Vec::new();
    for directory in &args.wheels {
        let found = collect::wheels_in(directory)?;
        if found.is_empty() {
            bail!("--wheels {}: no .whl files in it", directory.display());
        }
        for file in found {
            let info = collect::read_wheel(&file, None)?;
            prebuilt.push((file, info));
        }
    }
    let mut host_python: Option<String> = None;
    let mut hashed = false;
    let sets = if args.requirements.is_empty() {
        // One set for every target: the --wheels, or nothing at all (an app without
        // dependencies gets a venv with the bootstrap wheels). --python byte-compiles it.
        let mut compile_with = Vec::new();
        if !args.no_compile {
            for python in &args.python {
                compile_with.push(
                    Interpreter::query(python).with_context(|| format!("--python {python}"))?,
                );
            }
        }
        vec![CollectedSet {
            name: "wheels".into(),
            target: None,
            files: prebuilt.iter().map(|(path, _)| path.clone()).collect(),
            compile_with,
        }]
    } else {
        let (sets, checks_hashes) =
            requirement_sets(args, targets, &prebuilt, &mut host_python, work)?;
        hashed = checks_hashes;
        sets
    };

    let mut bootstrap = Vec::new();
    if !args.no_bootstrap {
        if !args.bootstrap_wheels.is_empty() {
            for directory in &args.bootstrap_wheels {
                bootstrap.extend(collect::wheels_in(directory)?);
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
            bootstrap = collect::pip_download_bootstrap(
                &host,
                &versions.into_iter().collect::<Vec<_>>(),
                &out,
            )?;
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
) -> Result<(Vec<CollectedSet>, bool)> {
    let requirements = Requirements::read(&args.requirements)?;
    for file in &requirements.files {
        check_output_is_not(&args.output, &file.path, "-r")?;
    }
    let remote = requirements.remote_files();
    if !remote.is_empty() && !targets.is_empty() {
        warn!(
            "pysfx cannot look into requirements files named by URL; their local projects and \
             URLs will be missing from --target sets: {}",
            remote.join("; ")
        );
    }
    let src = work.join("src");
    let sources = PipSources {
        find_links: &args.wheels,
        src: &src,
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
        for (index, python) in pythons.iter().enumerate() {
            let interpreter =
                Interpreter::query(python).with_context(|| format!("--python {python}"))?;
            if interpreter.version_info > host_version {
                host_version = interpreter.version_info;
                *host_python = Some(python.clone());
            }
            let out = work.join(format!("python-{index}"));
            std::fs::create_dir_all(&out)?;
            collect::pip_wheel(python, &copies, &sources, &out)?;
            let files = collect::wheels_in(&out)?;
            let name = format!(
                "cp{}{}",
                interpreter.version_info.0, interpreter.version_info.1
            );
            if sets.iter().any(|set: &CollectedSet| set.name == name) {
                warn!(
                    "two interpreters of Python {}: both sets are kept",
                    interpreter.version()
                );
            }
            fits.push(collect::interpreter_fit(&interpreter));
            sets.push(CollectedSet {
                name,
                target: Some(collect::target_of(&interpreter)),
                files,
                compile_with: if args.no_compile {
                    Vec::new()
                } else {
                    vec![interpreter]
                },
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
                compile_with: Vec::new(),
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
    }
    // pip copies a --wheels wheel it picks into the set: the same file name.
    let used: HashSet<&std::ffi::OsStr> = sets
        .iter()
        .flat_map(|set| set.files.iter().filter_map(|file| file.file_name()))
        .collect();
    for (path, info) in prebuilt {
        if !path.file_name().is_some_and(|name| used.contains(name)) {
            warn!(
                "--wheels {}: in none of the wheel sets (it fits none, or each has another \
                 wheel of {}); left out",
                path.display(),
                info.name
            );
        }
    }
    Ok((sets, requirements.checks_hashes()))
}

/// The bootstrap wheels (payload paths) the stub would choose for `interpreter`.
fn bootstrap_for(
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

/// Every set resolved for a target meets its own requirements there (what `pip check` would
/// say on that Python), the bootstrap wheels counting for the distributions a set lacks: a
/// requirement pip did not collect fails the pack, naming it, instead of an install that
/// refuses it later. A `--wheels` set for no particular target is checked at install, for the
/// interpreter that installs it.
fn check_sets_complete(manifest: &Manifest) -> Result<()> {
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
fn check_platform_floor(
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
fn check_one_version_per_set(
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

/// Everything that goes into the payload after the manifest.
struct Contents<'a> {
    app_files: &'a [TreeFile],
    static_files: &'a [TreeFile],
    wheels: &'a BTreeMap<String, (WheelInfo, PathBuf)>,
    bundles: &'a BTreeMap<String, bytecode::Built>,
    /// Entries made by the packer (the SBOMs), stored right after the manifest.
    documents: &'a [(String, Vec<u8>)],
}

fn write_artifact(
    output: &Path,
    stub: &[u8],
    manifest: &Manifest,
    contents: &Contents<'_>,
    epoch: u64,
) -> Result<()> {
    let Contents {
        app_files,
        static_files,
        wheels,
        bundles,
        documents,
    } = contents;
    let name = output
        .file_name()
        .ok_or_else(|| anyhow!("-o {}: not a file name", output.display()))?
        .to_string_lossy()
        .into_owned();
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let directory = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    remove_stale_temporaries(directory, &name);
    let temporary = output.with_file_name(format!(".{name}.pysfx-tmp-{}", std::process::id()));
    crate::interrupt::remove_on_signal(temporary.clone());
    let result = (|| -> Result<()> {
        let mut writer = PayloadWriter::create(&temporary, stub, epoch)?;
        writer.add_manifest(manifest)?;
        for (name, bytes) in documents.iter() {
            // Stored, so the stub copies them out as byte ranges, as it reads wheels.
            let options = EntryOptions {
                compress: false,
                executable: false,
                size: bytes.len() as u64,
            };
            writer.add(name, &mut bytes.as_slice(), options)?;
        }
        for file in app_files.iter().chain(static_files.iter()) {
            let (executable, size) = match &file.kind {
                TreeKind::File { executable, size } => (*executable, *size),
                TreeKind::Link { target } => {
                    writer.add_symlink(&file.name, target)?;
                    continue;
                }
            };
            // Opened without following a link: a file swapped for one since the walk is not
            // read through.
            let mut source = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&file.source)
                .with_context(|| format!("cannot read {}", file.source.display()))?;
            writer.add(
                &file.name,
                &mut source,
                EntryOptions {
                    compress: true,
                    executable,
                    size,
                },
            )?;
        }
        let progress = progress_bar(wheels.len() as u64, "packing wheels");
        for (path, (_, source)) in wheels.iter() {
            progress.inc(1);
            add_stored(&mut writer, path, source)?;
        }
        progress.finish_and_clear();
        for (path, built) in bundles.iter() {
            add_stored(&mut writer, path, &built.file)?;
        }
        writer.finish()?;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&temporary, output)
            .with_context(|| format!("cannot write {}", output.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// A pack killed by SIGKILL leaves its `.OUT.pysfx-tmp-PID` beside OUT (the whole artifact so
/// far). The next pack of OUT removes those whose process is gone; one whose process still runs
/// may be a concurrent pack and is left alone.
fn remove_stale_temporaries(directory: &Path, name: &str) {
    let prefix = format!(".{name}.pysfx-tmp-");
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|file_name| file_name.strip_prefix(&prefix))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<i32>().ok())
        else {
            continue;
        };
        let regular = entry.file_type().is_ok_and(|kind| kind.is_file());
        if !regular || pid <= 0 || process_exists(pid) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => info!(
                "removed {}, left by an interrupted pack (process {pid} is gone)",
                path.display()
            ),
            Err(error) => warn!("cannot remove {}: {error}", path.display()),
        }
    }
}

/// `kill(pid, 0)`: only ESRCH says there is no such process (EPERM: it runs as another user).
fn process_exists(pid: i32) -> bool {
    let result = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
    !matches!(result, Err(nix::errno::Errno::ESRCH))
}

/// Adds a file stored, not deflated: the stub reads wheels and byte-code bundles in place.
fn add_stored(writer: &mut PayloadWriter, name: &str, source: &Path) -> Result<()> {
    let mut file =
        File::open(source).with_context(|| format!("cannot read {}", source.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot read {}", source.display()))?
        .len();
    let options = EntryOptions {
        compress: false,
        executable: false,
        size,
    };
    writer.add(name, &mut file, options)?;
    Ok(())
}

/// A bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar(total: u64, message: &'static str) -> indicatif::ProgressBar {
    let dumb = std::env::var_os("TERM").is_some_and(|term| term == "dumb");
    if total == 0 || dumb || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}
