//! `pysfx pack`: collect, check, and write the artifact.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use pysfx_format::{
    AppInfo, EntryOptions, Manifest, PayloadWriter, Target, WheelEntry, WheelSet, FORMAT_VERSION,
};
use pysfx_venv::Interpreter;
use tracing::{info, warn};

use crate::bytecode;
use crate::collect::{self, WheelInfo};
use crate::elf::{self, GlibcVersion};
use crate::PackArgs;

/// Zip timestamps when `SOURCE_DATE_EPOCH` is unset: 1980-01-01, the zip epoch.
const DEFAULT_EPOCH: u64 = 315_532_800;

/// One file of the app or a static directory.
struct TreeFile {
    source: PathBuf,
    name: String,
    executable: bool,
    size: u64,
}

pub fn run(args: &PackArgs) -> Result<()> {
    let app_name = app_name(args)?;
    let (stub, stub_glibc) = read_stub(args)?;
    let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .map(|value| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"))
        })
        .transpose()?;

    let app_files = walk(&args.app, &format!("{app_name}/"))?;
    let mut static_files = Vec::new();
    let mut static_dirs = Vec::new();
    for (index, directory) in args.static_dirs.iter().enumerate() {
        let prefix = format!("static.in/{index}/");
        static_files.extend(walk(directory, &prefix)?);
        static_dirs.push(format!("static.in/{index}"));
    }

    let work = tempfile::Builder::new()
        .prefix("pysfx-pack-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    crate::interrupt::remove_on_signal(work.path().to_path_buf());
    let (sets, bootstrap_files) = collect_sets(args, work.path())?;

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
    for (name, target, files, compile_with) in &sets {
        let mut wheels = BTreeSet::new();
        for file in files {
            wheels.insert(payload_path(file)?);
        }
        let wheels: Vec<String> = wheels.into_iter().collect();
        for interpreter in compile_with {
            compile_plans.push((interpreter, wheels.clone()));
        }
        manifest_sets.push(WheelSet {
            name: name.clone(),
            target: target.clone(),
            wheels,
        });
    }
    let mut bootstrap = BTreeSet::new();
    for file in &bootstrap_files {
        bootstrap.insert(payload_path(file)?);
    }
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
    let app_bytes: u64 = app_files.iter().map(|file| file.size).sum();
    let static_bytes: u64 = static_files.iter().map(|file| file.size).sum();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        pysfx_version: env!("CARGO_PKG_VERSION").to_string(),
        created: source_date_epoch,
        app: AppInfo {
            name: app_name.clone(),
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
    write_artifact(
        &args.output,
        &stub,
        &manifest,
        &Contents {
            app_files: &app_files,
            static_files: &static_files,
            wheels: &infos,
            bundles: &bundles,
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

/// The stub's bytes and the highest glibc it needs; refuses one that needs more than
/// `--max-glibc` so nobody ships a CentOS 7-incompatible artifact by accident.
fn read_stub(args: &PackArgs) -> Result<(Vec<u8>, Option<String>)> {
    let path = match &args.stub {
        Some(path) => path.clone(),
        None => {
            let packer = std::env::current_exe().context("cannot find the pysfx executable")?;
            let beside = packer.with_file_name("pysfx-stub");
            if !beside.is_file() {
                bail!(
                    "no pysfx-stub next to {} ; build it (cargo build --release -p pysfx-stub) or give --stub PATH",
                    packer.display()
                );
            }
            beside
        }
    };
    let stub =
        std::fs::read(&path).with_context(|| format!("cannot read the stub {}", path.display()))?;
    if !stub.starts_with(b"\x7fELF") {
        bail!("the stub {} is not an ELF executable", path.display());
    }
    let mut file = File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if pysfx_format::locate(&mut file, &path).is_ok() {
        bail!(
            "the stub {} already carries a payload (is it an artifact?); give the bare pysfx-stub",
            path.display()
        );
    }
    let limit = GlibcVersion::parse(&args.max_glibc).ok_or_else(|| {
        anyhow!(
            "--max-glibc {:?}: expected a version such as 2.17",
            args.max_glibc
        )
    })?;
    let needed =
        elf::required_glibc(&stub).with_context(|| format!("the stub {}", path.display()))?;
    if let Some(needed) = &needed {
        if *needed > limit {
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

/// A wheel set as collected: its name, its target, its wheel files, and the interpreters to
/// byte-compile it with at pack time.
type Sets = Vec<(String, Option<Target>, Vec<PathBuf>, Vec<Interpreter>)>;

/// The wheel sets and the bootstrap wheels, collected into `work`.
fn collect_sets(args: &PackArgs, work: &Path) -> Result<(Sets, Vec<PathBuf>)> {
    let mut sets: Sets = Vec::new();
    if !args.wheels.is_empty() {
        let mut files = Vec::new();
        for directory in &args.wheels {
            let found = collect::wheels_in(directory)?;
            if found.is_empty() {
                bail!("--wheels {}: no .whl files in it", directory.display());
            }
            files.extend(found);
        }
        // --python without -r: the interpreters the --wheels set is byte-compiled for.
        let mut compile_with = Vec::new();
        if args.requirements.is_empty() && !args.no_compile {
            for python in &args.python {
                compile_with.push(
                    Interpreter::query(python).with_context(|| format!("--python {python}"))?,
                );
            }
        }
        sets.push(("wheels".into(), None, files, compile_with));
    }
    let mut pythons = if args.requirements.is_empty() {
        Vec::new()
    } else {
        args.python.clone()
    };
    if !args.requirements.is_empty() && pythons.is_empty() && args.target.is_empty() {
        pythons.push("python3".into());
    }
    if args.requirements.is_empty() && !args.target.is_empty() {
        bail!("--target collects the requirements of -r FILE; give -r");
    }
    if args.requirements.is_empty() && !args.python.is_empty() && args.wheels.is_empty() {
        bail!("--python collects the requirements of -r FILE (or byte-compiles --wheels); give -r");
    }
    for requirement in &args.requirements {
        if !requirement.is_file() {
            bail!("-r {}: no such file", requirement.display());
        }
    }
    // pip for --target and bootstrap downloads runs under the newest --python given (an old
    // one's pip may not know today's wheel tags), else python3.
    let mut host_python: Option<String> = None;
    let mut host_version = (0, 0, 0);
    for (index, python) in pythons.iter().enumerate() {
        let interpreter =
            Interpreter::query(python).with_context(|| format!("--python {python}"))?;
        if interpreter.version_info > host_version {
            host_version = interpreter.version_info;
            host_python = Some(python.clone());
        }
        let out = work.join(format!("python-{index}"));
        std::fs::create_dir_all(&out)?;
        collect::pip_wheel(python, &args.requirements, &out)?;
        let target = collect::target_of(&interpreter);
        let name = format!(
            "cp{}{}",
            interpreter.version_info.0, interpreter.version_info.1
        );
        if sets.iter().any(|(existing, _, _, _)| *existing == name) {
            warn!(
                "two interpreters of Python {}: both sets are kept",
                interpreter.version()
            );
        }
        let compile_with = if args.no_compile {
            Vec::new()
        } else {
            vec![interpreter]
        };
        sets.push((name, Some(target), collect::wheels_in(&out)?, compile_with));
    }
    for (index, text) in args.target.iter().enumerate() {
        let target = collect::parse_target(text)?;
        let out = work.join(format!("target-{index}"));
        std::fs::create_dir_all(&out)?;
        let host = host_python.get_or_insert_with(|| "python3".into()).clone();
        collect::pip_download_target(&host, &target, &args.requirements, &out)?;
        sets.push((
            target.name.clone(),
            Some(target.target.clone()),
            collect::wheels_in(&out)?,
            Vec::new(),
        ));
    }
    if sets.is_empty() {
        bail!(
            "no wheels to pack: give --wheels DIR, or -r FILE with --python PY or --target TARGET"
        );
    }

    let mut bootstrap = Vec::new();
    if !args.no_bootstrap {
        if !args.bootstrap_wheels.is_empty() {
            for directory in &args.bootstrap_wheels {
                bootstrap.extend(collect::wheels_in(directory)?);
            }
        } else {
            let versions: BTreeSet<String> =
                if sets.iter().any(|(_, target, _, _)| target.is_none()) {
                    (6..=13).map(|minor| format!("3.{minor}")).collect()
                } else {
                    sets.iter()
                        .filter_map(|(_, target, _, _)| {
                            target.as_ref().map(|t| t.python_version.clone())
                        })
                        .collect()
                };
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
        let full_version = target
            .full_version
            .clone()
            .unwrap_or_else(|| format!("{}.{}", target.python_version, collect::NEWEST_PATCH));
        let environment = pysfx_wheel::MarkerEnvironment {
            implementation_name: "cpython".into(),
            implementation_version: full_version.clone(),
            os_name: "posix".into(),
            platform_machine: "x86_64".into(),
            platform_python_implementation: "CPython".into(),
            platform_release: String::new(),
            platform_system: "Linux".into(),
            platform_version: String::new(),
            python_full_version: full_version,
            python_version: target.python_version.clone(),
            sys_platform: "linux".into(),
        };
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
        let unmet = pysfx_plan::unmet_requirements(&chosen, &[], &environment);
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

/// Every regular file under `root`, sorted, as `prefix` + relative `/`-path; `__pycache__`
/// directories are left out (byte-code is made for the target at install).
fn walk(root: &Path, prefix: &str) -> Result<Vec<TreeFile>> {
    let metadata =
        std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
    if !metadata.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let mut files = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((directory, relative)) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&directory)
            .with_context(|| format!("cannot read {}", directory.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot read {}", directory.display()))?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().into_string().map_err(|name| {
                anyhow!("{}: the name {name:?} is not UTF-8", directory.display())
            })?;
            let child = format!("{relative}{name}");
            let link = entry.file_type()?.is_symlink();
            let metadata = std::fs::metadata(&path)
                .with_context(|| format!("cannot read {} (a dangling link?)", path.display()))?;
            if metadata.is_dir() {
                if link {
                    bail!(
                        "{} is a link to a directory; pysfx stores files, copy it in instead",
                        path.display()
                    );
                }
                if name != "__pycache__" {
                    pending.push((path, format!("{child}/")));
                }
            } else if metadata.is_file() {
                let full = format!("{prefix}{child}");
                pysfx_wheel::validate_member_name(&full)
                    .map_err(|reason| anyhow!("{}: cannot be stored: {reason}", path.display()))?;
                files.push(TreeFile {
                    source: path,
                    name: full,
                    executable: metadata.permissions().mode() & 0o111 != 0,
                    size: metadata.len(),
                });
            }
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Everything that goes into the payload after the manifest.
struct Contents<'a> {
    app_files: &'a [TreeFile],
    static_files: &'a [TreeFile],
    wheels: &'a BTreeMap<String, (WheelInfo, PathBuf)>,
    bundles: &'a BTreeMap<String, bytecode::Built>,
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
    let temporary = output.with_file_name(format!(".{name}.pysfx-tmp-{}", std::process::id()));
    crate::interrupt::remove_on_signal(temporary.clone());
    let result = (|| -> Result<()> {
        let mut writer = PayloadWriter::create(&temporary, stub, epoch)?;
        writer.add_manifest(manifest)?;
        for file in app_files.iter().chain(static_files.iter()) {
            let mut source = File::open(&file.source)
                .with_context(|| format!("cannot read {}", file.source.display()))?;
            writer.add(
                &file.name,
                &mut source,
                EntryOptions {
                    compress: true,
                    executable: file.executable,
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

/// Adds a file stored, not deflated: the stub reads wheels and byte-code bundles in place.
fn add_stored(writer: &mut PayloadWriter, name: &str, source: &Path) -> Result<()> {
    let mut file =
        File::open(source).with_context(|| format!("cannot read {}", source.display()))?;
    let options = EntryOptions {
        compress: false,
        executable: false,
    };
    writer.add(name, &mut file, options)?;
    Ok(())
}

/// A bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar(total: u64, message: &'static str) -> indicatif::ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}
