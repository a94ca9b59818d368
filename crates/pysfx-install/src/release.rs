//! Building a release's tree: the app and static files, the venv, the hooks, the wheel set and
//! its byte-code, all under a root this run created (the stub's temporary sibling of DEST).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pysfx_format::Payload;
use pysfx_plan::Plan;
use pysfx_tree::{DiskTree, Disposition, Sink, Tree, TreeError};
use pysfx_venv::{
    create_venv, write_hooks, CompileJob, Compiler, Interpreter, PycFormat, VenvPaths,
};
use tracing::debug;

use crate::batch::BatchLimits;
use crate::pyc::BytecodeLink;
use crate::set::{install_set, SetOptions, WheelJob};
use crate::shared::SharedPath;
use crate::sources::{bytecode_from, candidate_for, Candidate};
use crate::stamps::{path_key, StampEntry, StampsWriter, STAMPS_FILE};
use crate::wheel::{InstallReport, Layout};
use crate::{extract_app, InstallError, Reporter};

/// How a release is built.
pub struct InstallOptions<'a> {
    /// Skip compiling byte-code at install.
    pub no_compile: bool,
    /// Threads that write files.
    pub threads: usize,
    pub limits: BatchLimits,
    /// Written to `pyvenv.cfg`.
    pub pysfx_version: &'a str,
    /// Called with the pid of every child process (the compilers), so the caller can stop them.
    pub on_child: &'a dyn Fn(u32),
    /// Releases beside DEST whose files may be linked (see [`crate::link_candidates`]).
    pub link_candidates: &'a [Candidate],
    /// `--copy`: never hard-link.
    pub copy: bool,
}

/// Seconds spent in each phase. Byte-code is compiled while the wheels unpack: `install` is
/// the unpacking, `compile` the wait for the compilers after it.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Phases {
    pub extract: f64,
    pub venv: f64,
    pub install: f64,
    pub compile: f64,
}

/// What building a release wrote.
#[derive(Debug, Default)]
pub struct Built {
    pub files: u64,
    pub bytes: u64,
    pub phases: Phases,
    /// Wheels whose byte-code came compiled from the pack.
    pub precompiled_wheels: usize,
    /// Paths two wheels ship with different content.
    pub shared_paths: Vec<SharedPath>,
    /// The app's and static directories' files as written (for the receipt).
    pub app_files: Vec<pysfx_release::receipt::RecordedFile>,
    /// The venv's site-packages, relative to the venv (`lib/pythonX.Y/site-packages`).
    pub site_packages: String,
    /// The installed distributions' `.dist-info` directories, by name.
    pub dist_infos: Vec<String>,
    /// The files the wheels wrote executable, relative to the venv.
    pub executables: Vec<String>,
    /// Files hard-linked from a release beside DEST, and their bytes.
    pub linked_files: u64,
    pub linked_bytes: u64,
    /// Of the linked files, those known unchanged by their stamps (not read).
    pub stamped_links: u64,
}

/// Builds the release of `plan` under `root` (which must exist and be empty), to be renamed
/// to `destination` afterwards: paths baked into the tree (shebangs, activate scripts, `.pyc`
/// file names) name `destination`.
pub fn build_release(
    payload: &mut Payload,
    interpreter: &Interpreter,
    plan: &Plan,
    root: &Path,
    destination: &Path,
    options: &InstallOptions<'_>,
    reporter: &dyn Reporter,
) -> Result<Built, InstallError> {
    if !payload.verified() {
        return Err(InstallError::Internal(
            "a release is built only from a payload whose digest was checked".into(),
        ));
    }
    let mut phases = Phases::default();
    let mut precompiled_wheels = 0;
    let phase = Instant::now();
    let extracted = extract_app(payload, &mut Sink::from(DiskTree::new(root)))?;
    phases.extract = phase.elapsed().as_secs_f64();
    debug!(
        files = extracted.files,
        "extracted the app and static files"
    );

    let phase = Instant::now();
    let app_name = payload.manifest().app.name.clone();
    let (venv, layout) = make_venv(interpreter, root, destination, &app_name, options)?;
    phases.venv = phase.elapsed().as_secs_f64();

    // Byte-code compiled at pack time by this very interpreter version (same magic number and
    // cache tag); any other wheel is compiled after its batch.
    let jobs = plan
        .wheels
        .iter()
        .map(|entry| {
            // `--no-compile`: no byte-code at all, neither the pack's nor compiled here.
            let mut job = WheelJob::new(payload, entry, |bundle| {
                !options.no_compile
                    && bundle.fits(&interpreter.magic, interpreter.cache_tag.as_deref())
            })?;
            if let Some(candidate) = candidate_for(options.link_candidates, &entry.sha256) {
                job.source = Some(Arc::clone(&candidate.source));
                let bundles: Vec<&str> = job
                    .bundles
                    .iter()
                    .map(|bundle| bundle.sha256.as_str())
                    .collect();
                job.link_bytecode = bytecode_from(candidate, &bundles);
            }
            Ok::<_, InstallError>(job)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Byte-code of the wheels that came without it is compiled by the venv's interpreter once
    // every batch is unpacked. The unpacking keeps every core busy by itself; compiling beside
    // it made both slower (they share the caches): on the popular corpus the install took
    // 0.6 s more CPU and 0.1-0.3 s more time.
    let format = PycFormat::of(interpreter);
    let compiling = match &format {
        Some(format) if !options.no_compile && jobs.iter().any(|job| job.bundles.is_empty()) => {
            Some(format)
        }
        _ => None,
    };
    let compiled = AtomicU64::new(0);
    let tail = AtomicBool::new(false);
    let on_compiled = || {
        compiled.fetch_add(1, Ordering::Relaxed);
        if tail.load(Ordering::Relaxed) {
            reporter.step();
        }
    };
    let mut reports: Vec<InstallReport> = Vec::with_capacity(jobs.len());
    // The sources to compile, batch by batch (as many as the compile queue would hold).
    let mut sources = Vec::new();
    let started = Instant::now();
    let set_options = SetOptions {
        threads: options.threads,
        limits: options.limits,
        copy: options.copy,
        bytecode: format
            .clone()
            .filter(|_| !options.no_compile)
            .map(|format| BytecodeLink { format }),
    };
    // One install code for the disk and the model (verify): see `Sink`.
    let tree = Sink::from(DiskTree::new(&venv.root));
    // The stamps a later release beside this one links by (see `crate::stamps`).
    let mut top = DiskTree::new(root);
    let mut stamps = StampsWriter::new(top.open(STAMPS_FILE, 0o644, Disposition::Create)?);
    let stamps_failed = |source: std::io::Error| {
        InstallError::Tree(TreeError::Io {
            path: root.join(STAMPS_FILE),
            source,
        })
    };
    let python = venv.root.join("bin/python");
    let shared_paths = std::thread::scope(|scope| -> Result<_, InstallError> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Started with the first batch that leaves sources to compile, so that the workers
        // start while the later batches install, and not at all when every source came with
        // its byte-code (a thin artifact's left-out wheels have no bundle, but their
        // byte-code is linked with them).
        let mut compiler = None;
        let shared_paths = install_set(
            payload.file(),
            &jobs,
            &layout,
            &tree,
            set_options,
            reporter,
            &mut |batch_reports, precompiled| {
                if let Some(format) = compiling {
                    let batch_sources =
                        compile_jobs(batch_reports, precompiled, options.no_compile, &venv);
                    if compiler.is_none() && !batch_sources.is_empty() {
                        compiler = Some(Compiler::start(
                            scope,
                            &python,
                            &venv.root,
                            format,
                            workers,
                            options.on_child,
                            &on_compiled,
                        )?);
                    }
                    sources.extend(batch_sources);
                }
                precompiled_wheels += precompiled.iter().filter(|p| **p).count();
                for report in batch_reports.iter_mut() {
                    stamps
                        .add(&std::mem::take(&mut report.stamps))
                        .map_err(stamps_failed)?;
                }
                reports.append(batch_reports);
                Ok(())
            },
        )?;
        phases.install = started.elapsed().as_secs_f64();
        if let Some(compiler) = compiler {
            let submitted = sources.len() as u64;
            compiler.submit(std::mem::take(&mut sources));
            let waiting = Instant::now();
            reporter.phase("compiling", submitted);
            reporter.advance(compiled.load(Ordering::Relaxed));
            tail.store(true, Ordering::Relaxed);
            let written = compiler.finish()?;
            phases.compile = waiting.elapsed().as_secs_f64();
            let entries: Vec<StampEntry> = written
                .into_iter()
                .map(|pyc| StampEntry {
                    key: path_key(&pyc.path),
                    stamp: pyc.stamp,
                    sha256: pyc.sha256,
                    head: pyc.head,
                })
                .collect();
            stamps.add(&entries).map_err(stamps_failed)?;
        }
        Ok(shared_paths)
    })?;
    let stamps = stamps.finish(|file| file.touch()).map_err(stamps_failed)?;
    top.close(stamps, STAMPS_FILE, Disposition::Create, None)?;
    let stamped_links = reports.iter().map(|r| r.stamped_links).sum();
    let linked_files = reports.iter().map(|r| r.linked_files).sum();
    if linked_files > 0 {
        debug!(
            linked_files,
            stamped_links, "linked files (those of known stamp not read)"
        );
    }
    Ok(Built {
        files: extracted.files + reports.iter().map(|r| r.files).sum::<u64>(),
        bytes: extracted.bytes + reports.iter().map(|r| r.bytes).sum::<u64>(),
        phases,
        precompiled_wheels,
        shared_paths,
        app_files: extracted.recorded,
        site_packages: venv.site_packages,
        dist_infos: reports.iter().map(|r| r.dist_info.clone()).collect(),
        linked_files,
        stamped_links,
        linked_bytes: reports.iter().map(|r| r.linked_bytes).sum(),
        executables: still_executable(&venv.root, &mut reports),
    })
}

/// The files the wheels wrote executable that still are: a later wheel may have replaced one
/// (a shared path) with a file that is not. One stat per candidate, not per file.
fn still_executable(venv: &Path, reports: &mut [InstallReport]) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut paths: Vec<String> = reports
        .iter_mut()
        .flat_map(|report| std::mem::take(&mut report.executables))
        .collect();
    paths.sort();
    paths.dedup();
    paths.retain(|path| {
        std::fs::symlink_metadata(venv.join(path))
            .is_ok_and(|metadata| metadata.permissions().mode() & 0o111 != 0)
    });
    paths
}

/// The venv skeleton and hooks under `root/venv`, and the layout its wheels go into.
fn make_venv(
    interpreter: &Interpreter,
    root: &Path,
    destination: &Path,
    app_name: &str,
    options: &InstallOptions<'_>,
) -> Result<(VenvPaths, Layout), InstallError> {
    let venv = VenvPaths {
        root: root.join("venv"),
        final_root: destination.join("venv"),
        site_packages: interpreter.site_packages(),
    };
    create_venv(&venv, interpreter, options.pysfx_version)?;
    // The hook module's byte-code, as the query compiled it, unless --no-compile.
    let format = PycFormat::of(interpreter).filter(|_| !options.no_compile);
    let code = (interpreter.hook_code.as_deref()).and_then(pysfx_venv::from_hex);
    let bytecode = format.as_ref().zip(code.as_deref());
    write_hooks(&venv.root.join(&venv.site_packages), app_name, bytecode)?;
    let layout = Layout {
        site_packages: venv.site_packages.clone(),
        python_version: interpreter.major_minor(),
        shebang_python: venv
            .final_root
            .join("bin/python")
            .to_string_lossy()
            .into_owned(),
        installer: "pysfx".into(),
        app_name: Some(app_name.to_string()),
    };
    Ok((venv, layout))
}

/// The `.py` files of a batch to compile at install: those of wheels that came without
/// byte-code, unless `--no-compile`. Takes the file lists out of the reports.
fn compile_jobs(
    reports: &mut [InstallReport],
    precompiled: &[bool],
    no_compile: bool,
    venv: &VenvPaths,
) -> Vec<CompileJob> {
    let mut jobs = Vec::new();
    for (report, precompiled) in reports.iter_mut().zip(precompiled) {
        let python_files = std::mem::take(&mut report.python_files);
        if *precompiled || no_compile {
            continue;
        }
        jobs.extend(python_files.into_iter().map(|relative| {
            CompileJob {
                // The `.pyc` records the file's final place, so tracebacks name the release.
                display: venv
                    .final_root
                    .join(&relative)
                    .to_string_lossy()
                    .into_owned(),
                source: relative,
            }
        }));
    }
    jobs
}
