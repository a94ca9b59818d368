//! Byte-code compiled at pack time: one stored zip per wheel and interpreter whose members are
//! site-packages-relative `.pyc` paths, written beside the wheel's sources.

use pysfx_format::{scan_members_named, MemberKind, Section};
use pysfx_tree::{CopyError, CopyOptions, Disposition, Tree};
use zip::ZipArchive;

use crate::member::open_member;
use crate::set::BundleJob;
use crate::stamps::{path_key, StampEntry};
use crate::wheel::{Layout, PreparedWheel};
use crate::InstallError;

/// A byte-code bundle's archive and its members.
pub(crate) struct OpenBundle {
    pub archive: ZipArchive<Section>,
    pub members: Vec<BundleMember>,
    /// The wheel's file name, for messages.
    pub wheel: String,
    /// The magic number every `.pyc` starts with.
    pub magic: Vec<u8>,
}

/// One `.pyc` file of a bundle: its number and name in the bundle, its size, and how it is
/// written (as its source `.py` is, when another wheel ships the same path).
pub(crate) struct BundleMember {
    index: usize,
    /// Where its bytes must end ([`pysfx_format::Member::end`]).
    end: u64,
    name: String,
    pub size: u64,
    disposition: Disposition,
}

/// Opens a byte-code bundle and checks every member: a `.pyc` file in a `__pycache__`
/// directory, under a safe name, once, of a `.py` file the wheel itself installs into
/// site-packages (so a bundle cannot put byte-code where another wheel's module, or the
/// venv's own hook, would import it). Each follows its source's disposition in `prepared`.
pub(crate) fn open_bundle(
    section: Section,
    prepared: &PreparedWheel,
    site_packages: &str,
    job: &BundleJob,
) -> Result<OpenBundle, InstallError> {
    let wheel = prepared.wheel().to_string();
    let corrupt = |reason: String| InstallError::Corrupt(format!("byte-code of {wheel}: {reason}"));
    let magic = (0..job.magic.len())
        .step_by(2)
        .map(|at| {
            job.magic
                .get(at..at + 2)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .filter(|magic| magic.len() == 4)
        .ok_or_else(|| {
            corrupt(format!(
                "its magic number {:?} is not 4 bytes in hex",
                job.magic
            ))
        })?;
    let suffix = format!(".{}.pyc", job.cache_tag);
    let mut archive = ZipArchive::new(section).map_err(|error| corrupt(error.to_string()))?;
    let scanned = scan_members_named(&mut archive).map_err(|error| corrupt(error.to_string()))?;
    let exceptions = prepared.exceptions();
    // The bundle's copy of a `.pyc` the wheel ships itself is not written.
    let shipped = prepared.shipped_pyc();
    let sources = prepared.shipped_sources();
    let mut members = Vec::with_capacity(scanned.len());
    for member in scanned {
        let name = member.name.into_string();
        if shipped.contains(format!("{site_packages}/{name}").as_str()) {
            continue;
        }
        let source = pyc_source(&name).filter(|_| matches!(member.kind, MemberKind::File { .. }));
        let Some(source) = source else {
            return Err(corrupt(format!(
                "{name:?} is not a .pyc file in __pycache__"
            )));
        };
        // Named for the bundle's interpreter, and long enough for a header (12 bytes on 3.6).
        if !name.ends_with(&suffix) || member.size < 12 {
            return Err(corrupt(format!(
                "{name:?} is no .pyc file of {} byte-code",
                job.cache_tag
            )));
        }
        let source = format!("{site_packages}/{source}");
        if !sources.contains(source.as_str()) {
            return Err(corrupt(format!(
                "{name:?} is the byte-code of {source:?}, which the wheel does not install"
            )));
        }
        let disposition = exceptions
            .get(source.as_str())
            .copied()
            .unwrap_or(Disposition::Create);
        members.push(BundleMember {
            index: member.index,
            end: member.end,
            name,
            size: member.size,
            disposition,
        });
    }
    Ok(OpenBundle {
        archive,
        members,
        wheel,
        magic,
    })
}

impl OpenBundle {
    /// Each member's destination and its source's, relative to the venv, in member order.
    pub fn destinations(&self, site_packages: &str) -> Vec<(String, String)> {
        self.members
            .iter()
            .map(|member| {
                let source = pyc_source(&member.name).unwrap_or_default();
                (
                    format!("{site_packages}/{}", member.name),
                    format!("{site_packages}/{source}"),
                )
            })
            .collect()
    }
}

/// `pkg/__pycache__/mod.cpython-311.pyc` → `pkg/mod.py`; `None` for anything else.
/// Holds the names of a byte-code bundle the install will not write (another interpreter's,
/// or any under `--no-compile`) to what a bundle may hold, as `verify` holds every bundle's
/// and as [`open_bundle`] holds the one written: regular `.pyc` files in `__pycache__`,
/// named for its cache tag, with a source time a `.pyc` header holds. (Whether each one's
/// source is a module the wheel installs is known only from the wheel: `open_bundle` and
/// `verify` check that.) An artifact with such a bundle is refused (exit 3) whatever
/// interpreter it meets.
pub fn check_bundle_names(
    payload: &mut pysfx_format::Payload,
    bundle: &pysfx_format::BytecodeBundle,
) -> Result<(), InstallError> {
    let corrupt =
        |reason: String| InstallError::Corrupt(format!("byte-code {}: {reason}", bundle.path));
    if bundle.source_mtime > u64::from(u32::MAX) {
        return Err(corrupt(format!(
            "its source_mtime {} is beyond what a .pyc header holds",
            bundle.source_mtime
        )));
    }
    let (start, len) = payload.stored_range(&bundle.path)?;
    let section = Section::with_directory(payload.file(), start, len);
    let mut archive = ZipArchive::new(section).map_err(|error| corrupt(error.to_string()))?;
    let scanned = scan_members_named(&mut archive).map_err(|error| corrupt(error.to_string()))?;
    let suffix = format!(".{}.pyc", bundle.cache_tag);
    for member in scanned {
        let name = member.name.as_str();
        let file = matches!(member.kind, MemberKind::File { .. });
        if !file || pyc_source(name).is_none() || !name.ends_with(&suffix) {
            return Err(corrupt(format!(
                "{:?} is no .pyc file of {} byte-code in __pycache__",
                pysfx_format::escape_control(name),
                bundle.cache_tag
            )));
        }
    }
    Ok(())
}

fn pyc_source(name: &str) -> Option<String> {
    let (directory, file) = name.rsplit_once("__pycache__/")?;
    if !(directory.is_empty() || directory.ends_with('/')) || file.contains('/') {
        return None;
    }
    let stem = file.strip_suffix(".pyc")?.split('.').next()?;
    (!stem.is_empty()).then(|| format!("{directory}{stem}.py"))
}

/// Writes one `.pyc` file of a bundle into site-packages, streamed, never past its declared
/// size. Returns its stamps entry (none in a model).
pub(crate) fn write_bytecode(
    archive: &mut ZipArchive<Section>,
    member: &BundleMember,
    layout: &Layout,
    tree: &mut impl Tree,
    (wheel, magic): (&str, &[u8]),
) -> Result<Option<StampEntry>, InstallError> {
    let name = &member.name;
    let corrupt =
        |reason: String| InstallError::Corrupt(format!("byte-code of {wheel}: {name}: {reason}"));
    // The reader holds the member to its declared size.
    let mut entry = open_member(archive, member.index, member.end)
        .map_err(|error| corrupt(error.to_string()))?;
    let options = CopyOptions {
        disposition: member.disposition,
        ..CopyOptions::new(0o644)
    };
    let destination = format!("{}/{name}", layout.site_packages);
    let copied = tree
        .copy(&destination, &mut entry, options)
        .map_err(|error| match error {
            CopyError::Read(error) => corrupt(error.to_string()),
            CopyError::Write(error) => InstallError::Tree(error),
        })?;
    // The release is removed on this error, the file with it.
    if !copied.head.starts_with(magic) {
        return Err(corrupt(
            "it does not start with its interpreter's magic number".into(),
        ));
    }
    Ok(copied.stamp.map(|stamp| StampEntry {
        key: path_key(&destination),
        stamp,
        sha256: copied.sha256,
        head: copied.head,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyc_files_name_their_source() {
        for (name, expected) in [
            ("__pycache__/mod.cpython-311.pyc", Some("mod.py")),
            (
                "pkg/__pycache__/mod.cpython-311.opt-1.pyc",
                Some("pkg/mod.py"),
            ),
            ("pkg/mod.pyc", None),
            ("pkg/__pycache__/sub/mod.cpython-311.pyc", None),
            ("pkgx__pycache__/mod.cpython-311.pyc", None),
            ("pkg/__pycache__/.cpython-311.pyc", None),
            ("pkg/__pycache__/mod.py", None),
        ] {
            assert_eq!(pyc_source(name).as_deref(), expected, "{name}");
        }
    }
}
