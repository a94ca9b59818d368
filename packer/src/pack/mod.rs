//! `pysfx pack`: collect, check, and write the artifact. `run` is the pipeline; `inputs` are
//! checked before any work, `sets` collects the wheel sets, `checks` holds them to the rules
//! before `write` writes the artifact; `thin` leaves out what `--thin-from` already carries.

mod checks;
mod inputs;
mod sets;
mod thin;
mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use pysfx_format::{AppInfo, Manifest, WheelEntry, WheelSet, FORMAT_VERSION};
use pysfx_venv::Interpreter;
use tracing::{debug, info, warn};

use crate::appfiles::{self, Excludes, TreeFile};
use crate::bytecode;
use crate::collect::{self, WheelInfo};
use crate::elf::GlibcVersion;
use crate::signing;
use crate::{sbom, PackArgs, UsageError};
use checks::{
    check_one_version_per_set, check_platform_floor, check_sets_complete, warn_several_versions,
};
use inputs::{
    app_name, app_version, check_collection_options, check_output_is_not_an_input, read_stub,
    stub_path,
};
use sets::{bootstrap_for, collect_sets, CollectedSet};
use thin::{Base, Husk};
use write::{write_artifact, Contents};

/// Zip timestamps when `SOURCE_DATE_EPOCH` is unset: 1980-01-01, the zip epoch.
const DEFAULT_EPOCH: u64 = 315_532_800;

pub fn run(args: &PackArgs) -> Result<()> {
    let stub_path = stub_path(args)?;
    check_output_is_not_an_input(args, &stub_path)?;
    let max_glibc = max_glibc(args)?;
    let targets = check_collection_options(args, &max_glibc)?;
    let app_name = app_name(args)?;
    let app_version = app_version(args)?;
    // Before any work: OLD must be a readable artifact of this app.
    let base = args
        .thin_from
        .as_deref()
        .map(|old| Base::read(old, &app_name))
        .transpose()?;
    let (stub, stub_glibc) = read_stub(&stub_path, &max_glibc)?;
    // A wrong password fails the pack before any work.
    let signing_key = args
        .sign
        .as_deref()
        .map(signing::load_secret_key)
        .transpose()?;
    let source_date_epoch = source_date_epoch()?;
    // The zip entries' time, the artifact's and the wheels pip builds for it.
    let epoch = source_date_epoch.unwrap_or(DEFAULT_EPOCH);

    let walked = walk_files(args, &app_name)?;
    if let Some(key) = args.sign.as_deref() {
        refuse_to_ship_the_key(key, &walked)?;
    }

    remove_stale_work_directories(&std::env::temp_dir());
    let work = tempfile::Builder::new()
        .prefix(&format!("pysfx-pack-{}-", std::process::id()))
        .tempdir()
        .context("cannot create a temporary directory")?;
    // Held until the pack ends: another pack, maybe in another PID namespace (a container
    // sharing $TMPDIR) where this one's PID names no process, sees the directory in use.
    let _work_lock = std::fs::File::open(work.path())
        .ok()
        .and_then(|file| Flock::lock(file, FlockArg::LockExclusiveNonblock).ok());
    crate::interrupt::remove_on_signal(work.path().to_path_buf());
    let (sets, bootstrap_files) = collect_sets(args, &targets, work.path(), epoch)?;

    let Placed {
        infos,
        sets: manifest_sets,
        mut compile_plans,
        bootstrap,
        husks,
    } = place_wheels(
        &sets,
        &bootstrap_files,
        &app_name,
        base.as_ref(),
        work.path(),
    )?;
    check_platform_floor(&manifest_sets, &bootstrap, &infos, &max_glibc)?;
    check_one_version_per_set(&manifest_sets, &infos)?;
    warn_several_versions(&manifest_sets, &infos);
    checks::check_no_file_directory_clash(&manifest_sets, &bootstrap, &infos)?;
    if args.no_compile {
        compile_plans.clear();
    }
    // The bootstrap wheels the stub will pick for each interpreter get byte-code too.
    // A left-out wheel's byte-code is linked from the base release with its files.
    for (interpreter, wheels) in &mut compile_plans {
        wheels.extend(bootstrap_for(interpreter, &bootstrap, &infos));
        wheels.retain(|wheel| !husks.contains_key(wheel));
    }

    // Byte-code for the sets whose interpreter is at hand. Its sources' mtime is one fixed
    // epoch whatever SOURCE_DATE_EPOCH says, so releases of different artifacts that installed
    // the same wheel have the same sources and byte-code, and a linked install can share them
    // (a source's mtime is part of what its `.pyc` is checked against).
    let bundles = compile_bytecode(compile_plans, &infos, work.path(), DEFAULT_EPOCH)?;

    let wheels = wheel_entries(&infos, &husks);
    let Walked {
        app_files,
        static_files,
        static_dirs,
    } = walked;
    // What the bundles' `.pyc` files declare, as every reader counts them.
    let mut bundles_unpacked: u64 = 0;
    for built in bundles.values() {
        let file = std::fs::File::open(&built.file)
            .with_context(|| format!("cannot read {}", built.file.display()))?;
        let unpacked = pysfx_format::bundle_unpacked_bytes(std::io::BufReader::new(file))
            .map_err(|reason| anyhow::anyhow!("{}: {reason}", built.file.display()))?;
        bundles_unpacked = bundles_unpacked.saturating_add(unpacked);
    }
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
            + bundles_unpacked,
        wheels,
        sets: manifest_sets,
        bootstrap: bootstrap.into_iter().collect(),
        stub_glibc: stub_glibc.or_else(|| Some("none (static)".into())),
        stub_sha256: Some(pysfx_format::hex(&<sha2::Sha256 as sha2::Digest>::digest(
            &stub,
        ))),
        // Nothing left out: a full artifact, which needs no release of OLD.
        thin_from: base
            .filter(|_| !husks.is_empty())
            .map(|base| base.thin_from),
        bytecode: bundles.values().map(|built| built.bundle.clone()).collect(),
        // (Written with the payload: `sbom::payload_entries`.)
        sboms: true,
    };

    // What the stub would refuse (implausibly many requirements, say): refused here.
    manifest
        .validate()
        .map_err(|reason| anyhow::anyhow!("the manifest this pack would write: {reason}"))?;
    check_sets_complete(&manifest)?;
    checks::check_given_interpreters_fit(&manifest, &sets)?;
    checks::warn_if_no_python_fits(&manifest, &max_glibc);
    checks::warn_if_bootstrap_misses(&manifest, &max_glibc);
    let manifest_sha256 = <sha2::Sha256 as sha2::Digest>::digest(manifest.to_json()?);
    let sboms =
        sbom::payload_entries(&manifest, &manifest_sha256).context("cannot write the SBOMs")?;
    // Removed again, when empty, unless OUT is put in place.
    let _made = write::MadeParents::make(&args.output)?;
    let written = write_artifact(
        &args.output,
        &stub,
        &manifest,
        &Contents {
            app_files: &app_files,
            static_files: &static_files,
            wheels: &infos,
            husks: &husks,
            bundles: &bundles,
            documents: &sboms,
        },
        epoch,
    )?;
    // Signed before it is in place: OUT and OUT.minisig then go in together.
    let signature = match signing_key.as_ref() {
        Some(key) => {
            let digest = pysfx_format::Payload::open(&written)?.digest();
            let comment = signing::trusted_comment(&manifest, &digest);
            Some(signing::signature_text(key, &written, &comment)?)
        }
        None => None,
    };
    // An earlier pack's signature still signs OUT when this pack wrote the very same bytes
    // (packs are reproducible): then it is no stale one to warn of.
    let old_signature = signing::signature_path(&args.output);
    let still_signed = signing_key.is_none()
        && old_signature.exists()
        && same_bytes(&written, &args.output).unwrap_or(false);
    write::commit(&written, &args.output, signature.as_deref())?;
    report_written(args, &stub, &manifest);
    if let Some(key) = signing_key.as_ref() {
        info!(
            "signed {} with key ID {} into {}",
            args.output.display(),
            key.id,
            signing::signature_path(&args.output).display()
        );
    } else if old_signature.exists() && !still_signed {
        warn!(
            "{} is left from an earlier pack and does not sign this artifact; remove it (or \
             pack with --sign)",
            signing::signature_path(&args.output).display()
        );
    }
    Ok(())
}

/// Whether the regular file `b` holds the same bytes as `a` (`false` when either can't be
/// read; `b` is not opened unless it is a regular file).
fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut a = std::fs::File::open(a)?;
    let mut b = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
        .open(b)?;
    let kind = b.metadata()?;
    if !kind.is_file() || a.metadata()?.len() != kind.len() {
        return Ok(false);
    }
    let (mut left, mut right) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let read = a.read(&mut left)?;
        if read == 0 {
            return Ok(b.read(&mut right[..1])? == 0);
        }
        b.read_exact(&mut right[..read])?;
        if left[..read] != right[..read] {
            return Ok(false);
        }
    }
}

/// `--max-glibc`, parsed (exit 2 when it is no version).
fn max_glibc(args: &PackArgs) -> Result<GlibcVersion> {
    // glibc's versions, and the manylinux tags that name them (`manylinux_2_28`), are 2.N
    // (an older 1.N is refused below as older than 2.17).
    let max_glibc = GlibcVersion::parse(&args.max_glibc)
        .filter(|version| matches!(version.0.as_slice(), [0..=2, _]))
        .ok_or_else(|| {
            UsageError(format!(
                "--max-glibc {}: expected a glibc version 2.N, such as 2.17",
                pysfx_format::escape_control(&args.max_glibc)
            ))
        })?;
    // The stub itself needs 2.17 (CentOS 7's); no artifact starts on an older glibc.
    if max_glibc.0.as_slice() < [2, 17].as_slice() {
        return Err(UsageError(format!(
            "--max-glibc {}: no artifact starts on a glibc older than 2.17 (CentOS 7's), \
             which the stub needs",
            args.max_glibc
        ))
        .into());
    }
    Ok(max_glibc)
}

/// `SOURCE_DATE_EPOCH`, when set: the time recorded in the manifest and the zip entries.
fn source_date_epoch() -> Result<Option<u64>> {
    let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .map(|value| {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"))
        })
        .transpose()?;
    Ok(source_date_epoch)
}

/// Refuses (exit 2) a `--sign` key that is one of the files to be stored (by any name,
/// through a link, or as a file holding its secret line, below `--app` or a `--static`
/// directory): the secret would reach every server, and whoever has the artifact could sign
/// releases with it.
fn refuse_to_ship_the_key(key: &Path, walked: &Walked) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(secret) = std::fs::metadata(key) else {
        return Ok(());
    };
    // The key's secret line (minisign's base64 of the key, encrypted or not): a file that
    // holds it — a copy of the key, with other line endings, or pasted into a settings file —
    // ships the key. Files larger than any such are not read.
    let secret_line = (secret.len() <= MAX_KEY_BYTES)
        .then(|| std::fs::read(key).ok())
        .flatten()
        .and_then(|bytes| {
            (bytes.split(|&byte| byte == b'\n'))
                .map(<[u8]>::trim_ascii)
                .find(|line| line.len() >= 64 && !line.starts_with(b"untrusted comment:"))
                .map(<[u8]>::to_vec)
        });
    let holds_the_line = |path: &Path| {
        (secret_line.as_ref()).is_some_and(|line| {
            std::fs::read(path).is_ok_and(|bytes| {
                bytes
                    .windows(line.len())
                    .any(|window| window == line.as_slice())
            })
        })
    };
    let files = walked.app_files.iter().chain(&walked.static_files);
    let stored = files
        .filter_map(|file| match file.kind {
            appfiles::TreeKind::File { size, .. } => Some((file, size)),
            appfiles::TreeKind::Link { .. } => None,
        })
        .find(|(file, size)| {
            let same_file = std::fs::metadata(&file.source)
                .is_ok_and(|found| (found.dev(), found.ino()) == (secret.dev(), secret.ino()));
            same_file || (*size <= MAX_HOLDER_BYTES && holds_the_line(&file.source))
        })
        .map(|(file, _)| file);
    match stored {
        Some(file) => Err(UsageError(format!(
            "--sign {}: the secret key is among the files to pack (as {}) and would ship in \
             the artifact; move it out of the app, or leave it out with --exclude",
            appfiles::shown(key),
            pysfx_format::escape_control(&file.name)
        ))
        .into()),
        None => Ok(()),
    }
}

/// The largest key file whose secret [`refuse_to_ship_the_key`] looks for in the files.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// The largest file [`refuse_to_ship_the_key`] reads for the key's secret line (a settings
/// file, a copy of the key; not the app's media).
const MAX_HOLDER_BYTES: u64 = 4 << 20;

/// The files of `--app` and of each `--static` directory, as they will be stored.
struct Walked {
    app_files: Vec<TreeFile>,
    static_files: Vec<TreeFile>,
    /// `static.in/N`, one per `--static`.
    static_dirs: Vec<String>,
}

/// Walks `--app` and the `--static` directories (leaving out `--exclude`), and warns of an
/// exclude that matched nothing and of files that look like local secrets.
fn walk_files(args: &PackArgs, app_name: &str) -> Result<Walked> {
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
    let shadowing = appfiles::shadowing_the_hook(&app_files, &format!("{app_name}/"));
    if !shadowing.is_empty() {
        warn!(
            "the app's {} would be imported as `{}` instead of pysfx's environment hook by a \
             process whose PYTHONPATH names the app directory (environment.json would not be \
             loaded there): rename it",
            shadowing.join(", "),
            pysfx_venv::HOOK_MODULE
        );
    }
    Ok(Walked {
        app_files,
        static_files,
        static_dirs,
    })
}

/// The collected wheels placed in the payload.
struct Placed<'a> {
    /// Every wheel file once, keyed by content: payload path → (what it is, the file).
    infos: BTreeMap<String, (WheelInfo, PathBuf)>,
    /// The sets as the manifest records them.
    sets: Vec<WheelSet>,
    /// The interpreters to byte-compile with, and the wheels (payload paths) for each.
    compile_plans: Vec<(&'a Interpreter, Vec<String>)>,
    /// The bootstrap wheels' payload paths.
    bootstrap: BTreeSet<String>,
    /// The husks of the wheels left out of a thin pack, by payload path (`thin/…`).
    husks: BTreeMap<String, Husk>,
}

/// The pack's work directory in `$TMPDIR` is `pysfx-pack-PID-XXXXXX`. A pack killed by SIGKILL
/// leaves its own (the collected wheels and byte-code: hundreds of MB); the next pack removes
/// each that is a directory of this user's (not a link) whose process is gone and that no pack
/// holds locked (its process may run in another PID namespace). One whose process still runs
/// may be a concurrent pack and is left alone.
fn remove_stale_work_directories(temporary: &Path) {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let euid = nix::unistd::geteuid().as_raw();
    let unlocked = |path: &Path| {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
            .open(path);
        file.is_ok_and(|file| Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok())
    };
    let pid_of = |name: &str| {
        let digits = name.strip_prefix("pysfx-pack-")?.split_once('-')?.0;
        write::process_number(digits)
    };
    let ours = |metadata: &std::fs::Metadata| metadata.is_dir() && metadata.uid() == euid;
    write::remove_left_by_gone_packs(temporary, pid_of, ours, unlocked);
}

/// Reads every collected wheel (refusing what the stub would refuse) and gives each its
/// payload path, `wheels/<digest>/<file name>`; with `--thin-from`, a wheel the base carries
/// is left out and its husk made, at `thin/<digest>.whl`.
fn place_wheels<'a>(
    sets: &'a [CollectedSet],
    bootstrap_files: &[PathBuf],
    app_name: &str,
    base: Option<&Base>,
    work: &Path,
) -> Result<Placed<'a>> {
    // Every wheel file once, keyed by content.
    let mut infos: BTreeMap<String, (WheelInfo, PathBuf)> = BTreeMap::new();
    let mut husks: BTreeMap<String, Husk> = BTreeMap::new();
    // Every set's wheel files, and each one's release keys as read (`Base::carries`).
    let set_files: Vec<&[PathBuf]> = sets.iter().map(|set| set.files.as_slice()).collect();
    let mut release_keys = std::collections::HashMap::new();
    let shared = match base {
        Some(_) => thin::shared_paths(&set_files, &mut release_keys)?,
        None => Default::default(),
    };
    let mut payload_path = |path: &Path| -> Result<String> {
        let info = collect::read_wheel(path, Some(app_name))?;
        let whole = format!("wheels/{}/{}", &info.sha256[..16], info.filename);
        let husk_path = thin::husk_payload_path(&info);
        if let Some((other, _)) = infos.get(&husk_path) {
            if other.sha256 != info.sha256 {
                bail!(
                    "{} and {}: their SHA-256s begin alike, which a thin artifact cannot tell \
                     apart; pack without --thin-from",
                    other.filename,
                    info.filename
                );
            }
            return Ok(husk_path);
        }
        if infos.contains_key(&whole) {
            return Ok(whole);
        }
        let husk = match base {
            Some(base) if base.carries(&info, path, &set_files, &mut release_keys)? => {
                thin::make_husk(path, &info, work, &shared)?
            }
            _ => None,
        };
        let stored = match husk {
            Some(husk) => {
                husks.insert(husk_path.clone(), husk);
                husk_path
            }
            None => whole,
        };
        infos.insert(stored.clone(), (info, path.to_path_buf()));
        Ok(stored)
    };
    let mut manifest_sets = Vec::new();
    let mut compile_plans = Vec::new();
    for set in sets {
        let mut wheels = BTreeSet::new();
        for file in &set.files {
            wheels.insert(payload_path(file)?);
        }
        let wheels: Vec<String> = wheels.into_iter().collect();
        for wheel in &wheels {
            debug!("set {}: {wheel}", set.name);
        }
        for interpreter in &set.interpreters {
            compile_plans.push((interpreter, wheels.clone()));
        }
        manifest_sets.push(WheelSet {
            name: set.name.clone(),
            target: set.target.clone(),
            wheels,
            requires: set.requires.clone(),
        });
    }
    let mut bootstrap = BTreeSet::new();
    for file in bootstrap_files {
        let path = payload_path(file)?;
        debug!("bootstrap: {path}");
        bootstrap.insert(path);
    }
    if let Some(base) = base {
        let pythons = (sets.iter())
            .map(|set| Some(set.target.as_ref()?.python_version.as_str()))
            .collect();
        thin::report(base, pythons, &infos, &husks);
    }
    Ok(Placed {
        infos,
        sets: manifest_sets,
        compile_plans,
        bootstrap,
        husks,
    })
}

/// The byte-code bundles of each plan's wheels, by payload path (one per wheel and cache tag).
fn compile_bytecode(
    compile_plans: Vec<(&Interpreter, Vec<String>)>,
    infos: &BTreeMap<String, (WheelInfo, PathBuf)>,
    work: &Path,
    epoch: u64,
) -> Result<BTreeMap<String, bytecode::Built>> {
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
        for built in bytecode::build_bundles(interpreter, &wheels, work, epoch)? {
            bundles.entry(built.bundle.path.clone()).or_insert(built);
        }
    }
    Ok(bundles)
}

/// The manifest's record of each wheel: a left-out one is described as the whole wheel (its
/// digest, members, sizes and requirements), but for `size`, its husk's.
fn wheel_entries(
    infos: &BTreeMap<String, (WheelInfo, PathBuf)>,
    husks: &BTreeMap<String, Husk>,
) -> Vec<WheelEntry> {
    infos
        .iter()
        .map(|(path, (info, _))| WheelEntry {
            path: path.clone(),
            filename: info.filename.to_string(),
            name: info.name.clone(),
            version: info.version.clone(),
            sha256: info.sha256.clone(),
            size: husks.get(path).map_or(info.size, |husk| husk.size),
            unpacked_bytes: info.unpacked_bytes,
            members: info.members,
            directories: info.directories,
            requires_python: info.requires_python.clone(),
            requires_dist: info.requires_dist.clone(),
            record_sha256: Some(info.record_sha256.clone()),
            from_base: husks.contains_key(path),
            executables: husks.get(path).map(|husk| husk.executables.clone()),
        })
        .collect()
}

/// Says what was written.
fn report_written(args: &PackArgs, stub: &[u8], manifest: &Manifest) {
    let size = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    let from_base = match manifest.base_wheels().count() {
        0 => String::new(),
        count => format!(" ({count} of them from base)"),
    };
    let count =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    info!(
        "wrote {} ({} bytes: stub {} bytes, {}{from_base} in {}, {})",
        args.output.display(),
        size,
        stub.len(),
        count(manifest.wheels.len(), "wheel", "wheels"),
        count(manifest.sets.len(), "set", "sets"),
        count(manifest.app.files as usize, "app file", "app files"),
    );
}
