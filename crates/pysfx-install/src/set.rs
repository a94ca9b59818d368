//! Installing a wheel set into a tree: wheels in batches (see [`crate::batch`]), each batch's
//! wheels checked against their manifest digests and planned in parallel, then all their
//! members (and byte-code) spread over the threads, biggest first, so one large wheel does not
//! leave the others idle.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use pysfx_format::{Payload, Section, WheelEntry};
use pysfx_tree::{Stamp, Tree};
use pysfx_wheel::{WheelError, WheelFilename};
use tracing::warn;
use zip::ZipArchive;

use crate::batch::{cut_batches, BatchLimits, WheelSize};
use crate::bytecode::{open_bundle, write_bytecode, OpenBundle};
use crate::parallel::{drain, lock, parallel_map};
use crate::pyc::BytecodeLink;
use crate::shared::{SharedPath, SharedPaths};
use crate::stamps::StampEntry;
use crate::wheel::prepare_spared;
use crate::wheel::{
    prepare_husk, InstallReport, Layout, LinkSource, LinkedPython, MemberId, MemberOutcome, Origin,
    PreparedWheel,
};
use crate::{check_entry, InstallError, Reporter, SparedWheel};

/// One wheel of a set: what the manifest says of it, where its bytes are in the artifact, and
/// the byte-code bundles compiled for it at pack time that this install writes.
pub struct WheelJob<'a> {
    pub entry: &'a WheelEntry,
    pub filename: WheelFilename,
    pub range: (u64, u64),
    pub bundles: Vec<BundleJob>,
    /// A release beside DEST that installed this very wheel, whose files are linked.
    pub source: Option<Arc<LinkSource>>,
    /// Whether the wheel's byte-code may be linked from `source` too (see
    /// [`crate::sources::bytecode_from`]).
    pub link_bytecode: bool,
    /// Whether the payload check left the wheel unread (`Payload::verify_sparing`): what the
    /// install reads of it is then checked as it goes (see [`SparedWheel`]).
    pub spared: bool,
}

/// A byte-code bundle: where it is, the mtime its `.pyc` files expect of their sources, and
/// its SHA-256 as the manifest gives it (empty when it gives none).
#[derive(Debug, Clone)]
pub struct BundleJob {
    pub source_mtime: u64,
    pub range: (u64, u64),
    pub sha256: String,
    /// The compiling interpreter's magic number (hex) and cache tag: every `.pyc` of the
    /// bundle must be named for that tag and start with that number.
    pub magic: String,
    pub cache_tag: String,
    /// Whether the payload check left the bundle unread (`Payload::verify_sparing`): it is
    /// then hashed whole before any `.pyc` of it is written.
    pub spared: bool,
}

impl<'a> WheelJob<'a> {
    /// The job for `entry`, with the bundles `wanted` picks among the wheel's.
    pub fn new(
        payload: &mut Payload,
        entry: &'a WheelEntry,
        wanted: impl Fn(&pysfx_format::BytecodeBundle) -> bool,
    ) -> Result<WheelJob<'a>, InstallError> {
        let filename: WheelFilename = entry.filename.parse()?;
        let range = payload.stored_range(&entry.path)?;
        let bundles: Vec<_> = payload
            .manifest()
            .bytecode
            .iter()
            .filter(|bundle| bundle.wheel == entry.path && wanted(bundle))
            .cloned()
            .collect();
        let bundles = bundles
            .into_iter()
            .map(|bundle: pysfx_format::BytecodeBundle| {
                payload.stored_range(&bundle.path).map(|range| BundleJob {
                    source_mtime: bundle.source_mtime,
                    range,
                    spared: payload.spared(&bundle.path),
                    sha256: bundle.sha256,
                    magic: bundle.magic,
                    cache_tag: bundle.cache_tag,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(WheelJob {
            entry,
            filename,
            range,
            bundles,
            source: None,
            link_bytecode: false,
            spared: payload.spared(&entry.path),
        })
    }
}

/// How a set is installed.
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    pub threads: usize,
    pub limits: BatchLimits,
    /// `--copy`: never hard-link from a release beside DEST.
    pub copy: bool,
    /// Byte-code of linked sources is linked too when it was compiled for this interpreter.
    pub bytecode: Option<BytecodeLink>,
}

/// Called after each batch with its wheels' reports and whether each came with byte-code; it
/// takes the reports it keeps out of the vector.
pub type AfterBatch<'a> =
    &'a mut dyn FnMut(&mut Vec<InstallReport>, &[bool]) -> Result<(), InstallError>;

/// Installs `jobs` (in plan order) from the artifact `file` into `tree`. Returns the paths two
/// wheels ship with different content (one warning per pair is logged).
pub fn install_set<T: Tree>(
    file: &Arc<std::fs::File>,
    jobs: &[WheelJob<'_>],
    layout: &Layout,
    tree: &T,
    options: SetOptions,
    reporter: &dyn Reporter,
    after_batch: AfterBatch<'_>,
) -> Result<Vec<SharedPath>, InstallError> {
    let sizes: Vec<WheelSize> = jobs
        .iter()
        .map(|job| WheelSize {
            unpacked_bytes: job.entry.unpacked_bytes,
            members: job.entry.members,
        })
        .collect();
    let total = (sizes.iter().map(|size| size.unpacked_bytes)).fold(0, u64::saturating_add);
    let names: Vec<&str> = jobs.iter().map(|job| job.entry.filename.as_str()).collect();
    let mut shared = SharedPaths::default();
    let mut done = 0u64;
    // A wheel linked from a release beside DEST counts half its members, and none of its
    // bytes (it unpacks none, unless a file there changed): a linked install's batches are
    // twice as large. Each batch has phases on one thread between its rounds of links
    // (planning its shared paths, the tail of opening and finishing its largest wheel), and
    // they were a third of the time of a linked install in batches of 4,096 members; twice as
    // many members at once cost it 4 MiB (docs/operator-guide.md, "Memory").
    let cut: Vec<WheelSize> = (jobs.iter().zip(&sizes))
        .map(|(job, size)| match job.source.is_some() && !options.copy {
            true => WheelSize {
                unpacked_bytes: 0,
                members: size.members.div_ceil(2),
            },
            false => *size,
        })
        .collect();
    let batches = cut_batches(&cut, options.limits);
    let last = batches.len().saturating_sub(1);
    for (index, batch) in batches.into_iter().enumerate() {
        reporter.phase("installing", total);
        reporter.advance(done);
        let context = Batch {
            file,
            jobs: &jobs[batch.clone()],
            first_rank: batch.start,
            names: &names,
            layout,
            spared: (jobs[batch.clone()].iter())
                .map(|job| {
                    (job.spared && !job.entry.from_base)
                        .then(|| SparedWheel::new(file, job.range, job.entry))
                        .flatten()
                })
                .collect(),
        };
        let (mut reports, precompiled) =
            install_batch(&context, tree, &options, reporter, &mut shared)?;
        after_batch(&mut reports, &precompiled)?;
        // Not after the last: the process ends soon, its peak behind it.
        if index != last {
            release_free_memory();
        }
        done += sizes[batch]
            .iter()
            .map(|size| size.unpacked_bytes)
            .sum::<u64>();
    }
    report_shared_paths(&shared.found);
    Ok(shared.found)
}

/// One batch and what it is installed with.
struct Batch<'a> {
    file: &'a Arc<std::fs::File>,
    jobs: &'a [WheelJob<'a>],
    /// The plan position of the batch's first wheel.
    first_rank: usize,
    /// The plan's wheel file names, by position.
    names: &'a [&'a str],
    layout: &'a Layout,
    /// Of each wheel of the batch the payload check left unread, how what is read of it is
    /// checked.
    spared: Vec<Option<SparedWheel>>,
}

/// One unit of install work.
#[derive(Debug, Clone, Copy)]
enum Task {
    /// A member of wheel `.0`.
    Member(usize, MemberId),
    /// `.pyc` file `.1` of open bundle `.0`.
    Bytecode(usize, usize),
    /// Byte-code link `.0` of the batch (see [`PycLink`]).
    Pyc(usize),
}

/// A `.pyc` file to link from a release beside DEST, next to a source linked from it.
struct PycLink {
    wheel: usize,
    destination: String,
    /// The linked `.py`: its place in the wheel's `python_files`, and its stamp as linked.
    python_index: usize,
    source: Stamp,
    /// The bundle member written instead when the link can't be made.
    fallback: Option<(usize, usize)>,
    /// A bundle the payload check left unread whose directory lists no `.pyc` for this
    /// source: when the link can't be made, the bundle is hashed whole, so that a directory
    /// that leaves one out is found (the release beside installed the very same bundle).
    unlisted: Option<usize>,
}

/// Installs one batch: each wheel checked and planned, then all members (and byte-code) spread
/// over the threads, biggest first, then each wheel finished. Byte-code of wheels linked from
/// a release beside DEST follows in a second round, once it is known which sources were
/// linked.
fn install_batch<T: Tree>(
    batch: &Batch<'_>,
    tree: &T,
    options: &SetOptions,
    reporter: &dyn Reporter,
    shared: &mut SharedPaths,
) -> Result<(Vec<InstallReport>, Vec<bool>), InstallError> {
    let (archives, mut prepared) = open_wheels(batch, options)?;
    shared
        .plan_batch(&mut prepared, batch.first_rank, batch.names)
        .map_err(InstallError::Corrupt)?;
    let wanted: Vec<(usize, &BundleJob)> = (batch.jobs.iter().enumerate())
        .flat_map(|(wheel, job)| job.bundles.iter().map(move |bundle| (wheel, bundle)))
        .collect();
    // Of each bundle the payload check left unread, how it is checked before it is read.
    let bundle_gates: Vec<Option<SparedWheel>> = (wanted.iter())
        .map(|&(wheel, bundle)| {
            let filename = &batch.jobs[wheel].entry.filename;
            (bundle.spared).then(|| SparedWheel::bundle(batch.file, bundle, filename))
        })
        .collect();
    // On the threads, the largest first (a large wheel's bundle is most of a batch's).
    let size = |&(_, bundle): &(usize, &BundleJob)| bundle.range.1;
    let opened = parallel_map(&wanted, options.threads, size, |&(wheel, bundle)| {
        let (start, len) = bundle.range;
        let section = Section::with_directory(batch.file, start, len);
        let site_packages = &batch.layout.site_packages;
        open_bundle(section, &prepared[wheel], site_packages, bundle).map(|open| (wheel, open))
    });
    let bundles: Vec<(usize, OpenBundle)> = opened.into_iter().collect::<Result<_, _>>()?;
    let pyc_link = options.bytecode.as_ref().filter(|_| !options.copy);
    let deferred = |wheel: usize| {
        let job = &batch.jobs[wheel];
        pyc_link.is_some() && job.source.is_some() && job.link_bytecode
    };
    let member_tasks = prepared.iter().enumerate().flat_map(|(wheel, p)| {
        p.member_ids()
            .map(move |member| (Task::Member(wheel, member), p.member_size(member)))
    });
    let bytecode_tasks = bundle_tasks(&bundles).filter(|(task, _)| match task {
        Task::Bytecode(bundle, _) => !deferred(bundles[*bundle].0),
        _ => true,
    });
    let run = Run {
        batch,
        archives: &archives,
        prepared: &prepared,
        bundles: &bundles,
        bundle_gates: &bundle_gates,
        options,
        reporter,
    };
    let (outcomes, _, pyc_stamps) =
        run.tasks(member_tasks.chain(bytecode_tasks).collect(), tree, &[])?;
    // Each wheel's RECORD and launchers, on the threads too (the first error in plan order).
    let outcomes: Vec<Mutex<Vec<(MemberId, MemberOutcome)>>> =
        outcomes.into_iter().map(Mutex::new).collect();
    let wheels: Vec<usize> = (0..prepared.len()).collect();
    let weight = |wheel: &usize| prepared[*wheel].unpacked_bytes();
    let finished = parallel_map(&wheels, options.threads, weight, |&wheel| {
        let members = std::mem::take(&mut *lock(&outcomes[wheel]));
        let bytecode = options.bytecode.as_ref().map(|link| &link.format);
        prepared[wheel].finish(
            in_member_order(members),
            batch.layout,
            &mut tree.fork(),
            bytecode,
        )
    });
    let mut reports = finished.into_iter().collect::<Result<Vec<_>, _>>()?;
    let tree = tree.fork();
    for (wheel, entry) in pyc_stamps {
        reports[wheel].stamps.push(entry);
    }
    if let Some(link) = pyc_link {
        let site = batch.layout.site_packages.as_str();
        let spared = |bundle: usize| bundle_gates[bundle].is_some();
        let links = pyc_links(
            site,
            &reports,
            &prepared,
            &bundles,
            link,
            (&deferred, &spared),
            options.threads,
        );
        // Which `.pyc` files a source unpacked rather than linked gets is the bundle's own
        // directory's word: a spared bundle is held to its digest first.
        for (gate, (wheel, _)) in bundle_gates.iter().zip(&bundles) {
            let report = &reports[*wheel];
            if let Some(spared) = gate.as_ref() {
                if report.python_files.len() > report.linked_python.len() {
                    spared.check()?;
                }
            }
        }
        // A bundle's `.pyc` that a link stands for is written only when that link fails.
        let mut covered: Vec<Vec<bool>> = bundles
            .iter()
            .map(|(_, open)| vec![false; open.members.len()])
            .collect();
        for (bundle, member) in links.iter().filter_map(|link| link.fallback) {
            covered[bundle][member] = true;
        }
        let tasks = bundle_tasks(&bundles)
            .filter(|(task, _)| {
                matches!(task, Task::Bytecode(b, m) if deferred(bundles[*b].0) && !covered[*b][*m])
            })
            .chain((0..links.len()).map(|index| (Task::Pyc(index), 0)))
            .collect();
        let (_, linked, pyc_stamps) = run.tasks(tasks, &tree, &links)?;
        // A source whose byte-code was linked is not compiled again.
        let mut has_pyc: Vec<Vec<bool>> = reports
            .iter()
            .map(|report| vec![false; report.python_files.len()])
            .collect();
        for (index, size, stamped) in linked {
            let link = &links[index];
            let report = &mut reports[link.wheel];
            report.linked_files += 1;
            report.linked_bytes += size;
            report.stamped_links += u64::from(stamped);
            has_pyc[link.wheel][link.python_index] = true;
        }
        for (report, has_pyc) in reports.iter_mut().zip(has_pyc) {
            let mut has_pyc = has_pyc.into_iter();
            report
                .python_files
                .retain(|_| has_pyc.next() == Some(false));
        }
        for (wheel, entry) in pyc_stamps {
            reports[wheel].stamps.push(entry);
        }
    }
    let precompiled = batch
        .jobs
        .iter()
        .map(|job| !job.bundles.is_empty())
        .collect();
    Ok((reports, precompiled))
}

/// Every `.pyc` file of the open bundles, as tasks.
fn bundle_tasks(bundles: &[(usize, OpenBundle)]) -> impl Iterator<Item = (Task, u64)> + '_ {
    bundles.iter().enumerate().flat_map(|(bundle, (_, open))| {
        open.members
            .iter()
            .enumerate()
            .map(move |(member, pyc)| (Task::Bytecode(bundle, member), pyc.size))
    })
}

/// The byte-code to link for the linked sources of `deferred` wheels: a bundle's `.pyc`
/// files (the bundle's copy written when a link fails), or, for a wheel the install
/// compiles, the `.pyc` the compiler would write — unless the wheel ships that `.pyc` itself
/// (it is then one of its members, installed as the wheel has it, as the compiler keeps it).
fn pyc_links(
    site_packages: &str,
    reports: &[InstallReport],
    prepared: &[PreparedWheel],
    bundles: &[(usize, OpenBundle)],
    link: &BytecodeLink,
    (deferred, spared): (&dyn Fn(usize) -> bool, &(dyn Fn(usize) -> bool + Sync)),
    threads: usize,
) -> Vec<PycLink> {
    let wheels: Vec<usize> = (0..reports.len())
        .filter(|&wheel| deferred(wheel) && !reports[wheel].linked_python.is_empty())
        .collect();
    // On the threads, the wheels with the most linked sources first.
    let weight = |wheel: &usize| reports[*wheel].linked_python.len() as u64;
    let links = parallel_map(&wheels, threads, weight, |&wheel| {
        let report = &reports[wheel];
        let mut links = Vec::new();
        let linked: std::collections::HashMap<&str, &LinkedPython> = report
            .linked_python
            .iter()
            .map(|python| (python.path.as_str(), python))
            .collect();
        let mut bundled = false;
        let mut listed: HashSet<String> = HashSet::new();
        let mut unlisted = None;
        for (bundle, (owner, open)) in bundles.iter().enumerate() {
            if *owner != wheel {
                continue;
            }
            bundled = true;
            if spared(bundle) {
                unlisted = Some(bundle);
            }
            for (member, (destination, python)) in
                open.destinations(site_packages).into_iter().enumerate()
            {
                if let Some(source) = linked.get(python.as_str()) {
                    listed.insert(python);
                    links.push(PycLink {
                        wheel,
                        destination,
                        python_index: source.index,
                        source: source.stamp,
                        fallback: Some((bundle, member)),
                        unlisted: None,
                    });
                }
            }
        }
        // The `.pyc` the compiler would write, for a wheel the install compiles, or for each
        // linked source a spared bundle's (unchecked) directory does not list.
        if !bundled || unlisted.is_some() {
            let shipped = prepared[wheel].shipped_pyc();
            for python in (report.linked_python.iter()).filter(|p| !listed.contains(&p.path)) {
                let destination = link
                    .format
                    .pyc_of(&python.path)
                    .filter(|destination| !shipped.contains(destination.as_str()));
                if let Some(destination) = destination {
                    links.push(PycLink {
                        wheel,
                        destination,
                        python_index: python.index,
                        source: python.stamp,
                        fallback: None,
                        unlisted,
                    });
                }
            }
        }
        links
    });
    links.into_iter().flatten().collect()
}

/// A batch's opened wheels and bundles, and how to run tasks over them.
struct Run<'r> {
    batch: &'r Batch<'r>,
    archives: &'r [ZipArchive<Section>],
    prepared: &'r [PreparedWheel],
    bundles: &'r [(usize, OpenBundle)],
    bundle_gates: &'r [Option<SparedWheel>],
    options: &'r SetOptions,
    reporter: &'r dyn Reporter,
}

/// Per wheel, its members' outcomes; the byte-code links made, with their sizes and whether
/// the stamps vouched for them; and the
/// stamps entries of the `.pyc` files written or linked, by wheel.
type RunOutcomes = (
    Vec<Vec<(MemberId, MemberOutcome)>>,
    Vec<(usize, u64, bool)>,
    Vec<(usize, StampEntry)>,
);

impl Run<'_> {
    /// Runs `tasks` over the threads, biggest first.
    fn tasks<T: Tree>(
        &self,
        tasks: Vec<(Task, u64)>,
        tree: &T,
        links: &[PycLink],
    ) -> Result<RunOutcomes, InstallError> {
        let collected: Mutex<RunOutcomes> = Mutex::new((
            self.prepared.iter().map(|_| Vec::new()).collect(),
            Vec::new(),
            Vec::new(),
        ));
        drain(
            tasks,
            self.options.threads,
            // Each thread reads through its own copies of the archives (they share the parsed
            // central directories) and writes through its own handle on the tree.
            || Worker {
                wheels: self.archives.iter().map(|_| None).collect(),
                bundles: self.bundles.iter().map(|_| None).collect(),
                tree: tree.fork(),
                done: Vec::new(),
                linked: Vec::new(),
                stamps: Vec::new(),
                writes: 0,
            },
            |worker: &mut Worker<T>, task: &Task| -> Result<(), InstallError> {
                let (size, wrote) = self.task(worker, *task, links)?;
                // The bar counts the wheels' bytes (its length); byte-code is beside them.
                if let Task::Member(..) = task {
                    self.reporter.advance(size);
                }
                // A hard link allocates next to nothing: only writes count toward a trim.
                if wrote {
                    worker.writes += 1;
                    if worker.writes.is_multiple_of(TRIM_EVERY) {
                        release_free_memory();
                    }
                }
                Ok(())
            },
            |worker| {
                let mut collected = lock(&collected);
                for (wheel, member, outcome) in worker.done {
                    collected.0[wheel].push((member, outcome));
                }
                collected.1.extend(worker.linked);
                collected.2.extend(worker.stamps);
            },
        )?;
        Ok(collected
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Runs one task; returns the bytes it accounts for, and whether it wrote them (rather
    /// than link them).
    fn task<T: Tree>(
        &self,
        worker: &mut Worker<T>,
        task: Task,
        links: &[PycLink],
    ) -> Result<(u64, bool), InstallError> {
        let layout = self.batch.layout;
        match task {
            Task::Member(wheel, member) => {
                let archive =
                    worker.wheels[wheel].get_or_insert_with(|| self.archives[wheel].clone());
                let origin = Origin {
                    source: self.batch.jobs[wheel].source.as_deref(),
                    copy: self.options.copy,
                    spared: self.batch.spared[wheel].as_ref(),
                };
                let prepared = &self.prepared[wheel];
                let outcome = prepared.place(archive, member, layout, &mut worker.tree, &origin)?;
                let wrote = !outcome.is_linked();
                worker.done.push((wheel, member, outcome));
                Ok((prepared.member_size(member), wrote))
            }
            Task::Bytecode(bundle, member) => Ok((self.write_pyc(worker, bundle, member)?, true)),
            Task::Pyc(index) => {
                let link = &links[index];
                let (Some(source), Some(bytecode)) = (
                    self.batch.jobs[link.wheel].source.as_deref(),
                    self.options.bytecode.as_ref(),
                ) else {
                    return Ok((0, false));
                };
                let linked = crate::pyc::link_pyc(
                    &mut worker.tree,
                    source,
                    &link.destination,
                    &link.source,
                    bytecode,
                )?;
                match (linked, link.fallback) {
                    (Some((size, entry)), _) => {
                        // Byte-code is only ever linked by its stamps.
                        worker.linked.push((index, size, true));
                        worker.stamps.push((link.wheel, entry));
                        Ok((size, false))
                    }
                    (None, Some((bundle, member))) => {
                        Ok((self.write_pyc(worker, bundle, member)?, true))
                    }
                    (None, None) => {
                        let gate = link
                            .unlisted
                            .and_then(|bundle| self.bundle_gates[bundle].as_ref());
                        if let Some(spared) = gate {
                            spared.check()?;
                        }
                        Ok((0, false))
                    }
                }
            }
        }
    }

    fn write_pyc<T: Tree>(
        &self,
        worker: &mut Worker<T>,
        bundle: usize,
        member: usize,
    ) -> Result<u64, InstallError> {
        let (wheel, open) = &self.bundles[bundle];
        if let Some(spared) = &self.bundle_gates[bundle] {
            spared.check()?;
        }
        let archive = worker.bundles[bundle].get_or_insert_with(|| open.archive.clone());
        let pyc = &open.members[member];
        let entry = write_bytecode(
            archive,
            pyc,
            self.batch.layout,
            &mut worker.tree,
            (&open.wheel, &open.magic),
        )?;
        worker.stamps.extend(entry.map(|entry| (*wheel, entry)));
        Ok(pyc.size)
    }
}

/// What one install thread holds.
struct Worker<T> {
    wheels: Vec<Option<ZipArchive<Section>>>,
    bundles: Vec<Option<ZipArchive<Section>>>,
    tree: T,
    done: Vec<(usize, MemberId, MemberOutcome)>,
    /// Byte-code links made, with their sizes and whether by stamp.
    linked: Vec<(usize, u64, bool)>,
    /// Stamps entries of the `.pyc` files written or linked, by wheel.
    stamps: Vec<(usize, StampEntry)>,
    /// Tasks this thread has run that wrote a file's bytes.
    writes: usize,
}

/// How many files a thread writes between two returns of freed memory to the system: each
/// thread frees into its own malloc arena, which keeps what it freed, scattered between
/// what is still in use, until trimmed.
const TRIM_EVERY: usize = 512;

/// The outcomes of one wheel's members in the order of its member ids.
fn in_member_order(mut members: Vec<(MemberId, MemberOutcome)>) -> Vec<MemberOutcome> {
    members.sort_by_key(|(member, _)| *member);
    members.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Central directory and plan of every wheel of the batch, in parallel; what the manifest said
/// of each (and so what was decided before writing) must be what it holds.
fn open_wheels(
    batch: &Batch<'_>,
    options: &SetOptions,
) -> Result<(Vec<ZipArchive<Section>>, Vec<PreparedWheel>), InstallError> {
    let indexed: Vec<(usize, &WheelJob<'_>)> = batch.jobs.iter().enumerate().collect();
    let weight = |(_, job): &(usize, &WheelJob<'_>)| job.entry.unpacked_bytes;
    let opened = parallel_map(&indexed, options.threads, weight, |&(index, job)| {
        let (start, len) = job.range;
        // Each wheel was held to the manifest's digest by `Payload::verify`, which every
        // caller runs first (`build_release` refuses a payload it did not check). A husk has
        // no digest of its own: the payload digest covers it, and its RECORD is held to the
        // manifest's (`check_entry`).
        let mut archive = ZipArchive::new(Section::with_directory(batch.file, start, len))
            .map_err(|source| WheelError::Zip {
                wheel: job.filename.to_string(),
                source,
            })?;
        let prepared = match (job.entry.from_base, &job.source, &job.entry.record_sha256) {
            (false, _, _) => {
                let spared = batch.spared[index].as_ref();
                prepare_spared(&mut archive, &job.filename, batch.layout, spared)?
            }
            (true, Some(base), Some(record)) => {
                let executables = job.entry.executables.as_deref();
                prepare_husk(
                    &mut archive,
                    &job.filename,
                    batch.layout,
                    base,
                    record,
                    executables,
                )?
            }
            (true, None, _) => {
                return Err(InstallError::BaseRelease(format!(
                    "{}: left out of this thin artifact, and no release beside DEST holds it",
                    job.filename
                )))
            }
            (true, Some(_), None) => {
                return Err(InstallError::Corrupt(format!(
                    "{}: left out of the payload without the digest of its RECORD",
                    job.filename
                )))
            }
        };
        Ok::<_, InstallError>((archive, prepared))
    });
    let mut archives = Vec::with_capacity(opened.len());
    let mut prepared = Vec::with_capacity(opened.len());
    let shebang = &batch.layout.shebang_python;
    let venv = shebang.strip_suffix("/bin/python").unwrap_or(shebang);
    let venv_length = crate::path_max::real_length(std::path::Path::new(venv));
    for (result, job) in opened.into_iter().zip(batch.jobs) {
        let (archive, mut wheel) = result?;
        let members = archive.len() as u64;
        check_entry(job.entry, &wheel, members).map_err(InstallError::Corrupt)?;
        check_path_lengths(&wheel, venv_length)?;
        if let Some(bundle) = job.bundles.first() {
            // A `.pyc` header holds the source's mtime in 32 bits: a larger one is no time the
            // packer wrote (and no `SystemTime` may hold it).
            if bundle.source_mtime > u64::from(u32::MAX) {
                return Err(InstallError::Corrupt(format!(
                    "{}: the byte-code's source_mtime {} is beyond what a .pyc header holds",
                    job.entry.filename, bundle.source_mtime
                )));
            }
            let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(bundle.source_mtime);
            wheel.set_source_mtime(mtime);
        }
        archives.push(archive);
        prepared.push(wheel);
    }
    Ok((archives, prepared))
}

/// Refuses a wheel one of whose files (or its byte-code) would have a path Linux does not take
/// in the final venv, whose real path is `venv` bytes long (see [`crate::path_max`]).
fn check_path_lengths(wheel: &PreparedWheel, venv: usize) -> Result<(), InstallError> {
    for destination in wheel.member_destinations() {
        if let Some(length) = crate::path_max::too_long(venv, destination) {
            return Err(InstallError::PathTooLong(format!(
                "DEST is too long for this artifact: venv/{destination} (or its byte-code) \
                 would have a path of {length} bytes, and Linux takes none of {} or more; \
                 choose a shorter DEST",
                crate::path_max::PATH_MAX
            )));
        }
    }
    Ok(())
}

/// One warning per pair of wheels that ship paths with different content.
fn report_shared_paths(found: &[SharedPath]) {
    let mut pairs: Vec<(&str, &str, usize, &str)> = Vec::new();
    for shared in found {
        match pairs
            .iter_mut()
            .find(|(kept, replaced, _, _)| *kept == shared.kept && *replaced == shared.replaced)
        {
            Some(pair) => pair.2 += 1,
            None => pairs.push((&shared.kept, &shared.replaced, 1, &shared.path)),
        }
    }
    for (kept, replaced, count, first) in pairs {
        warn!(
            "{kept} and {replaced} both ship {count} path(s) with different content (first: {first}); {kept}'s are installed, as the later distribution in name order"
        );
    }
}

/// Hands memory freed by a finished batch back to the system. Each batch's threads allocate
/// in their own malloc arenas, which glibc does not shrink by itself, so without this the
/// resident size grows with the payload even though the live heap stays bounded.
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: malloc_trim only returns unused memory of the allocator to the system; it has no
    // preconditions and touches no memory the program owns. glibc has it since 2.0.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
