//! Installing one wheel into a virtualenv tree (PEP 427 "Installing a wheel"), as pip does:
//! the root to purelib or platlib by `Root-Is-Purelib`, each `.data/<key>/` to its scheme
//! directory, `#!python` rewritten, launchers for the entry points, and a RECORD that lists the
//! installed paths. Every member is checked (name, size, CRC, RECORD hash) as it is written,
//! and every write goes through a [`Tree`].
//!
//! [`prepare_wheel`] reads and checks everything that can be checked before writing;
//! [`PreparedWheel::extract`] writes one member; [`PreparedWheel::finish`] writes the
//! launchers, `INSTALLER`, `REQUESTED` and RECORD.

mod extract;
mod finish;
mod linked;
mod owned;
mod prepare;
mod scheme;

pub(crate) use linked::{has_fresh_mode, is_ours};

pub use linked::{LinkSource, Origin};
pub(crate) use prepare::cached_source;
pub(crate) use prepare::check_husk_members;
pub(crate) use prepare::check_husk_record_size;
pub(crate) use prepare::prepare_spared;
pub use prepare::{prepare_husk, prepare_wheel, MAX_BASE_RECORD_BYTES, MAX_HUSK_RECORD_BYTES};

use std::collections::HashMap;
use std::io::{Read, Seek};

use pysfx_format::MemberName;
use pysfx_tree::{Disposition, Tree};
use pysfx_wheel::{hash_bytes, WheelError, WheelFilename};
use zip::ZipArchive;

use crate::shared::fingerprint;
use crate::InstallError;

/// Holds the paths a thin artifact's husk names — the files it carries and the rows of its
/// RECORD skeleton, which the install takes from a release beside DEST — to what the install
/// holds every member to: a safe name, and a place in the venv that is none of the venv's own
/// files. (`verify` has no release to read the rest from; the install checks that too.)
pub(crate) fn check_husk_paths<'p>(
    paths: impl IntoIterator<Item = &'p str>,
    layout: &Layout,
    wheel: &WheelFilename,
    dist_info: &str,
) -> Result<(), String> {
    let scheme = scheme::Scheme::new(layout, &wheel.raw_name.replace('_', "-"), dist_info);
    for path in paths {
        MemberName::new(path).map_err(|reason| format!("{path:?}: {reason}"))?;
        if let scheme::Placement::File { destination, .. } = scheme::destination(path, &scheme)? {
            owned::check_venv_owned(&destination, layout, dist_info)
                .map_err(|reason| format!("{path:?}: {reason}"))?;
        }
    }
    Ok(())
}

/// The largest metadata file (`METADATA`, `RECORD`, …) read into memory.
pub const MAX_METADATA_BYTES: u64 = 64 * 1024 * 1024;
/// How much of a `.data/scripts` file is read to find its `#!python` line; the rest streams.
const SHEBANG_PEEK: u64 = 64 * 1024;

/// Where a wheel goes. Paths inside the venv are `/`-separated and relative to `root`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `lib/pythonX.Y/site-packages` (purelib and platlib are one directory in a venv).
    pub site_packages: String,
    /// `(major, minor)` of the interpreter, for `include/site/pythonX.Y` and `pipX.Y`.
    pub python_version: (u32, u32),
    /// The venv's python as scripts will find it once installed (the final, not temporary,
    /// path), for shebangs.
    pub shebang_python: String,
    /// Written to `INSTALLER`.
    pub installer: String,
    /// The app, whose `<app>.pth` hook lives in site-packages; `None` when unknown (a wheel
    /// checked on its own).
    pub app_name: Option<String>,
}

/// What one wheel installed.
#[derive(Debug, Clone)]
pub struct InstallReport {
    /// The name as `METADATA` spells it.
    pub name: String,
    pub version: String,
    pub files: u64,
    pub bytes: u64,
    /// The `.py` files written under site-packages, relative to the venv root.
    pub python_files: Vec<String>,
    /// Its `.dist-info` directory's name.
    pub dist_info: String,
    /// The files it wrote executable (members and launchers), relative to the venv root.
    pub executables: Vec<String>,
    /// Files hard-linked from another release, and their bytes.
    pub linked_files: u64,
    pub linked_bytes: u64,
    /// The `.py` files under site-packages that were linked: their byte-code may be linked
    /// too.
    pub linked_python: Vec<LinkedPython>,
    /// Of the linked files, those known unchanged by their stamp, not read.
    pub stamped_links: u64,
    /// The stamps of the files written or linked (see [`crate::stamps`]).
    pub stamps: Vec<crate::stamps::StampEntry>,
}

/// A `.py` file linked from a release beside DEST.
#[derive(Debug, Clone)]
pub struct LinkedPython {
    /// Relative to the venv root.
    pub path: String,
    /// Its stamp as linked.
    pub stamp: pysfx_tree::Stamp,
    /// Its place in [`InstallReport::python_files`].
    pub index: usize,
}

/// One member to write, after every check that can run before writing.
#[derive(Debug, Clone)]
struct Planned {
    /// Its place in the zip; `None` for a member a thin artifact left out, whose file comes
    /// from the release it is linked or copied from (see [`Origin`]).
    index: Option<usize>,
    /// Where its bytes must end in the zip ([`pysfx_format::Member::end`]).
    end: u64,
    member: MemberName,
    /// Destination relative to the venv root.
    destination: String,
    executable: bool,
    /// A `.data/scripts` file: its `#!python` line is rewritten.
    script: bool,
    /// Uncompressed size, as the zip directory declares it.
    size: u64,
    /// Its RECORD row's hash and size (none for a signature file, which RECORD omits).
    expected: Option<Expected>,
    disposition: Disposition,
}

/// What RECORD says of a member.
#[derive(Debug, Clone)]
struct Expected {
    /// `algorithm=digest`, or empty.
    hash: String,
    size: Option<u64>,
}

/// An entry-point launcher to write into `bin/`.
#[derive(Debug, Clone)]
struct Launcher {
    destination: String,
    text: String,
    disposition: Disposition,
}

/// Which file of a prepared wheel: a member (by its place in the wheel)
/// or a generated launcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Member(usize),
    Launcher(usize),
}

/// A file a prepared wheel will put in the tree: where, and a fingerprint of its content
/// (RECORD's hash and size for a member, the text's hash for a launcher) by which two wheels
/// shipping one path are told apart (see [`crate::shared::fingerprint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination<'a> {
    pub slot: Slot,
    pub path: &'a str,
    pub fingerprint: u64,
}

/// A wheel checked and planned: every member's destination decided, nothing written yet.
#[derive(Debug, Clone)]
pub struct PreparedWheel {
    wheel: String,
    name: String,
    version: String,
    dist_info: String,
    planned: Vec<Planned>,
    launchers: Vec<Launcher>,
    source_mtime: Option<std::time::SystemTime>,
    /// Sum of the members' declared sizes.
    unpacked_bytes: u64,
    /// `Requires-Dist` of METADATA, as written.
    requires_dist: Vec<String>,
    /// `Requires-Python` of METADATA, as written.
    requires_python: Option<String>,
    /// Hex SHA-256 of its RECORD as shipped.
    record_sha256: String,
    /// The executable bit of each member left out of a thin artifact is known (the manifest's
    /// `executables`), not taken from the file in the release beside DEST.
    left_out_modes: bool,
}

impl PreparedWheel {
    /// Gives every `.py` file written to site-packages this mtime, so that timestamp-based
    /// `.pyc` files compiled elsewhere for the same sources stay valid.
    pub fn set_source_mtime(&mut self, mtime: std::time::SystemTime) {
        self.source_mtime = Some(mtime);
    }

    /// Every member [`PreparedWheel::extract`] has to write, in the wheel's order.
    pub fn member_ids(&self) -> impl Iterator<Item = MemberId> {
        (0..self.planned.len()).map(MemberId)
    }

    /// Where each member goes, relative to the venv.
    pub fn member_destinations(&self) -> impl Iterator<Item = &str> {
        self.planned.iter().map(|plan| plan.destination.as_str())
    }

    /// The uncompressed size of a member, to schedule big ones first.
    pub fn member_size(&self, member: MemberId) -> u64 {
        self.planned[member.0].size
    }

    /// The distribution's name as METADATA spells it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wheel's file name.
    pub fn wheel(&self) -> &str {
        &self.wheel
    }

    /// `Requires-Dist` of its METADATA, in order, as written: what the manifest must record for
    /// the install's completeness check.
    pub fn requires_dist(&self) -> &[String] {
        &self.requires_dist
    }

    /// The distribution's version as METADATA writes it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `Requires-Python` of its METADATA, as written.
    pub fn requires_python(&self) -> Option<&str> {
        self.requires_python.as_deref()
    }

    /// Hex SHA-256 of its `.dist-info/RECORD` as shipped.
    pub fn record_sha256(&self) -> &str {
        &self.record_sha256
    }

    /// What the wheel unpacks to, by its zip directory's declared sizes.
    pub fn unpacked_bytes(&self) -> u64 {
        self.unpacked_bytes
    }

    /// How many directories its install makes in a venv whose site-packages is
    /// `site_packages`: the distinct parents of its [destinations](Self::destinations), but
    /// for those the venv has before any wheel (`bin/`, `include/`, site-packages and the
    /// directories above it). What the manifest records as the wheel's `directories`.
    pub fn directories_made(&self, site_packages: &str) -> u64 {
        let mut existing = vec!["bin", "include", site_packages];
        let mut at = site_packages;
        while let Some((parent, _)) = at.rsplit_once('/') {
            existing.push(parent);
            at = parent;
        }
        let destinations = self.destinations();
        let mut paths = destinations.iter().map(|destination| destination.path);
        (pysfx_format::parent_directories(&mut paths).iter())
            .filter(|directory| !existing.contains(directory))
            .count() as u64
    }

    /// Every file the wheel puts in the tree (members and launchers; not its `.dist-info`
    /// bookkeeping, which no other wheel shares).
    pub fn destinations(&self) -> Vec<Destination<'_>> {
        let members = self.planned.iter().enumerate().map(|(index, plan)| {
            let hash = plan
                .expected
                .as_ref()
                .map(|expected| expected.hash.as_str());
            Destination {
                slot: Slot::Member(index),
                path: plan.destination.as_str(),
                fingerprint: fingerprint(hash, plan.size),
            }
        });
        let launchers = self
            .launchers
            .iter()
            .enumerate()
            .map(|(index, launcher)| Destination {
                slot: Slot::Launcher(index),
                path: launcher.destination.as_str(),
                fingerprint: fingerprint(
                    Some(&hash_bytes(launcher.text.as_bytes())),
                    launcher.text.len() as u64,
                ),
            });
        members.chain(launchers).collect()
    }

    /// The `.pyc` files the wheel ships itself among its members (some do, e.g. numpy 2.2's
    /// `distutils/__pycache__`): installed as the wheel has them, as pip does, never replaced
    /// by byte-code compiled at pack time, linked or compiled at install.
    pub fn shipped_pyc(&self) -> std::collections::HashSet<&str> {
        self.shipped_ending(".pyc")
    }

    /// The wheel's `.py` files, by destination: the only sources its byte-code may be of.
    pub fn shipped_sources(&self) -> std::collections::HashSet<&str> {
        self.shipped_ending(".py")
    }

    fn shipped_ending(&self, suffix: &str) -> std::collections::HashSet<&str> {
        self.planned
            .iter()
            .map(|plan| plan.destination.as_str())
            .filter(|path| path.ends_with(suffix))
            .collect()
    }

    /// Sets how one file is put in place (see [`Disposition`]).
    pub fn set_disposition(&mut self, slot: Slot, disposition: Disposition) {
        let target = match slot {
            Slot::Member(index) => self.planned.get_mut(index).map(|p| &mut p.disposition),
            Slot::Launcher(index) => self.launchers.get_mut(index).map(|l| &mut l.disposition),
        };
        if let Some(target) = target {
            *target = disposition;
        }
    }

    /// The members not written as new files (shared paths), by destination: what byte-code
    /// compiled for one of them must follow.
    pub fn exceptions(&self) -> HashMap<&str, Disposition> {
        self.planned
            .iter()
            .filter(|plan| plan.disposition != Disposition::Create)
            .map(|plan| (plan.destination.as_str(), plan.disposition))
            .collect()
    }
}

/// What writing one member produced: the SHA-256 and size of the bytes written. Kept small,
/// since one is held for every member of every wheel in a batch.
#[derive(Debug, Clone)]
pub struct MemberOutcome {
    digest: [u8; 32],
    size: u64,
    /// Hard-linked from another release rather than written.
    linked: bool,
    /// Installed executable (for a linked or copied file, as the file is).
    executable: bool,
    /// The file's stamp once in place (see [`crate::stamps`]).
    stamp: Option<pysfx_tree::Stamp>,
    /// Linked and known unchanged by its stamp in the release it came from.
    stamped: bool,
}

impl MemberOutcome {
    /// Whether the member was hard-linked from another release rather than written.
    pub(crate) fn is_linked(&self) -> bool {
        self.linked
    }
}

/// A member of a prepared wheel, by its place in the wheel: only [`PreparedWheel::member_ids`]
/// makes one, so it always names a member of that wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemberId(usize);

/// Installs the wheel read from `reader` (named `filename`) into `tree`, one member after
/// another: the steps a caller that spreads the members of many wheels over threads takes too.
pub fn install_wheel<R: Read + Seek + Clone + pysfx_format::ReadAt>(
    reader: R,
    filename: &WheelFilename,
    layout: &Layout,
    tree: &mut impl Tree,
) -> Result<InstallReport, InstallError> {
    let mut archive = ZipArchive::new(reader).map_err(|source| WheelError::Zip {
        wheel: filename.to_string(),
        source,
    })?;
    let prepared = prepare_wheel(&mut archive, filename, layout)?;
    let mut outcomes = Vec::new();
    for member in prepared.member_ids() {
        outcomes.push(prepared.place(&mut archive, member, layout, tree, &Origin::default())?);
    }
    prepared.finish(outcomes, layout, tree, None)
}

/// The site-packages of the venv a wheel is checked against without an interpreter
/// ([`verify_wheel`], `check_claims`): what [`PreparedWheel::directories_made`] counts in.
pub const MODEL_SITE_PACKAGES: &str = "lib/python3/site-packages";

/// Checks a wheel as the installer would, writing nothing: it is the install itself into a
/// `NullTree` holding the venv's own files, so a wheel that verifies also installs.
/// `app_name`, when known, protects the app's `.pth` hook too.
pub fn verify_wheel<R: Read + Seek + Clone + pysfx_format::ReadAt>(
    reader: R,
    filename: &WheelFilename,
    app_name: Option<&str>,
) -> Result<PreparedWheel, InstallError> {
    let mut archive = ZipArchive::new(reader).map_err(|source| WheelError::Zip {
        wheel: filename.to_string(),
        source,
    })?;
    let layout = Layout {
        site_packages: MODEL_SITE_PACKAGES.into(),
        python_version: (3, 0),
        shebang_python: "/nonexistent/bin/python".into(),
        installer: "pysfx".into(),
        app_name: app_name.map(str::to_string),
    };
    let mut tree = crate::verify::venv_model(&layout);
    let prepared = prepare_wheel(&mut archive, filename, &layout)?;
    let mut outcomes = Vec::new();
    for member in prepared.member_ids() {
        outcomes.push(prepared.place(
            &mut archive,
            member,
            &layout,
            &mut tree,
            &Origin::default(),
        )?);
    }
    prepared.finish(outcomes, &layout, &mut tree, None)?;
    Ok(prepared)
}
