//! Putting one member in place: hard-linked from a release beside DEST that installed the very
//! same wheel, copied from it (a thin artifact's left-out file, when no link can be made), or
//! unpacked from the payload.
//!
//! A linked file is read back through its new name and kept only when it is what the wheel's
//! RECORD says (SHA-256 and size), a regular file owned by this user and writable by no one
//! else, with the executable bit and mtime the install would give it. Anything else — an
//! edited file, a planted link, another owner — is removed and the member unpacked instead; a
//! left-out member that fails is an error (the release it needs is not intact).

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pysfx_tree::{CopyError, CopyOptions, Disposition, Linked, Outside, Stamp, Tree};
use pysfx_wheel::{hash_digest, sha256_of_hash};
use sha2::{Digest, Sha256};
use tracing::trace;
use zip::ZipArchive;

use super::extract::check_member;
use super::{Layout, MemberId, MemberOutcome, Planned, PreparedWheel};
use crate::stamps::Stamps;
use crate::{InstallError, SparedWheel};

/// An installed release whose files a new one may share: its directory, its venv (and that
/// directory open, each file looked up from it: none is linked when it can't be opened), and
/// the stamps its install left (see [`crate::stamps`]).
#[derive(Debug, Clone)]
pub struct LinkSource {
    pub release: PathBuf,
    pub venv: PathBuf,
    venv_directory: Option<Arc<OwnedFd>>,
    pub stamps: Option<Arc<Stamps>>,
}

impl PartialEq for LinkSource {
    fn eq(&self, other: &Self) -> bool {
        (&self.release, &self.venv, &self.stamps) == (&other.release, &other.venv, &other.stamps)
    }
}

impl Eq for LinkSource {}

impl LinkSource {
    pub fn new(release: &Path) -> Self {
        LinkSource::with_stamps(release, Stamps::read(release).map(Arc::new))
    }

    /// A release not yet chosen: its stamps are not read (see `hold_sources`).
    pub(crate) fn unstamped(release: &Path) -> Self {
        LinkSource::with_stamps(release, None)
    }

    pub(crate) fn with_stamps(release: &Path, stamps: Option<Arc<Stamps>>) -> Self {
        let venv = release.join("venv");
        // The venv itself, never a symbolic link to one.
        let venv_directory = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&venv)
            .ok()
            .map(|file| Arc::new(OwnedFd::from(file)));
        LinkSource {
            release: release.to_path_buf(),
            venv,
            venv_directory,
            stamps,
        }
    }

    /// The filesystem (device) of the venv files are linked from; `None` when none is (its
    /// venv could not be opened as a directory).
    pub fn device(&self) -> Option<u64> {
        let directory = self.venv_directory.as_deref()?;
        nix::sys::stat::fstat(directory)
            .ok()
            .map(|stat| stat.st_dev)
    }

    /// The file at `destination` (relative to the venv) in this release, to link from.
    pub(crate) fn file<'a>(&'a self, destination: &'a str) -> Option<Outside<'a>> {
        let directory = self.venv_directory.as_deref()?.as_fd();
        Some(Outside {
            directory,
            name: destination,
        })
    }
}

/// Where a wheel's files may come from besides the payload.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// A release that installed the very same wheel.
    pub source: Option<&'a LinkSource>,
    /// `--copy`: never hard-link (a thin artifact's left-out files are copied).
    pub copy: bool,
    /// The wheel, when the payload check left it unread: it is checked whole before any file
    /// of it is unpacked.
    pub spared: Option<&'a SparedWheel>,
}

impl PreparedWheel {
    /// Puts member `member` in place: linked from `origin`'s release when that is allowed and
    /// the file there is intact, else unpacked from `archive` (or, for a member the payload
    /// does not carry, copied from that release and checked).
    pub fn place<R: Read + std::io::Seek + Clone + pysfx_format::ReadAt>(
        &self,
        archive: &mut ZipArchive<R>,
        member: MemberId,
        layout: &Layout,
        tree: &mut impl Tree,
        origin: &Origin<'_>,
    ) -> Result<MemberOutcome, InstallError> {
        let plan = &self.planned[member.0];
        match origin.source {
            Some(source) => {
                if !origin.copy {
                    if let Some(outcome) = self.try_link(plan, source, layout, tree)? {
                        return Ok(outcome);
                    }
                }
                if plan.index.is_none() {
                    return self.copy_left_out(plan, source, tree);
                }
            }
            None if plan.index.is_none() => {
                return Err(self
                    .left_out_error(Path::new(&plan.destination), "is in no release beside DEST"));
            }
            None => {}
        }
        if let Some(spared) = origin.spared {
            spared.check()?;
        }
        self.extract(archive, member, layout, tree)
    }

    /// Hard-links the member's file from `source` and checks it; `None` (and nothing left at
    /// the destination) when it can't be linked or is not the file RECORD describes.
    fn try_link(
        &self,
        plan: &Planned,
        source: &LinkSource,
        layout: &Layout,
        tree: &mut impl Tree,
    ) -> Result<Option<MemberOutcome>, InstallError> {
        // Only a new file whose content is exactly the shipped bytes (no `#!python` line to
        // rewrite) and whose RECORD row says what those bytes must be.
        let Some(expected) = plan.expected.as_ref() else {
            return Ok(None);
        };
        if plan.disposition != Disposition::Create
            || plan.script
            || !expected.hash.starts_with("sha256=")
            || expected.size.is_some_and(|size| size != plan.size)
        {
            return Ok(None);
        }
        let Some(outside) = source.file(&plan.destination) else {
            return Ok(None);
        };
        if let Some(outcome) =
            self.link_stamped(plan, &expected.hash, source, outside, layout, tree)?
        {
            return Ok(Some(outcome));
        }
        let Some((mut file, metadata)) = tree.link_from(&plan.destination, outside)? else {
            return Ok(None);
        };
        let executable = metadata.mode() & 0o100 != 0;
        // File capabilities are set after an install, so a file trusted by its stamp has none
        // (`setcap` moves the ctime); one read here is asked.
        let fits = self.fits(plan, layout, &Linked::of_metadata(&metadata))
            && !pysfx_release::paths::has_capabilities(&file);
        let digest = match fits {
            true => hash_open(&mut file, tree),
            false => None,
        };
        match digest {
            Some(digest) if hash_digest(&digest) == expected.hash => {
                self.trace_linked(plan, source);
                Ok(Some(MemberOutcome {
                    digest,
                    size: plan.size,
                    linked: true,
                    executable,
                    stamp: Some(Stamp::of(&metadata)),
                    stamped: false,
                }))
            }
            _ => {
                tree.unlink(&plan.destination)?;
                Ok(None)
            }
        }
    }

    /// Links the member's file from `source` without reading it, when the stamps of that
    /// release show it is still the file with the digest RECORD asks for (`hash`); `None`
    /// (and nothing left at the destination) otherwise, and the caller links and hashes it.
    fn link_stamped(
        &self,
        plan: &Planned,
        hash: &str,
        source: &LinkSource,
        outside: Outside<'_>,
        layout: &Layout,
        tree: &mut impl Tree,
    ) -> Result<Option<MemberOutcome>, InstallError> {
        let (Some(stamps), Some(digest)) = (source.stamps.as_deref(), sha256_of_hash(hash)) else {
            return Ok(None);
        };
        // Zeros stand for a digest not known (byte-code linked by its header), never matched.
        let Some(entry) = stamps
            .entry(&plan.destination)
            .filter(|entry| entry.sha256 == digest && digest != [0; 32])
        else {
            return Ok(None);
        };
        let fits = |file: &Linked| self.fits(plan, layout, file);
        let Some(after) = stamps.link_unchanged(entry, outside, &plan.destination, tree, fits)?
        else {
            return Ok(None);
        };
        self.trace_linked(plan, source);
        Ok(Some(MemberOutcome {
            digest,
            size: plan.size,
            linked: true,
            executable: after.mode & 0o100 != 0,
            stamp: Some(after.stamp),
            stamped: true,
        }))
    }

    /// `-vv`: one line per file, linked ones too.
    fn trace_linked(&self, plan: &Planned, source: &LinkSource) {
        trace!(
            "{}: {} -> {} ({} bytes, linked from {})",
            self.wheel,
            plan.member,
            plan.destination,
            plan.size,
            source.release.display()
        );
    }

    /// Whether a linked file is one the install could keep: a regular file this user owns
    /// and no one else may write, of the member's size, with its executable bit and the
    /// mtime extract would give it (see `PreparedWheel::set_source_mtime`).
    fn fits(&self, plan: &Planned, layout: &Layout, file: &Linked) -> bool {
        let executable = file.mode & 0o100 != 0;
        let mtime = self.source_mtime.filter(|_| {
            plan.destination.ends_with(".py")
                && plan.destination.starts_with(layout.site_packages.as_str())
        });
        is_ours(file)
            && file.stamp.size == plan.size
            && ((plan.index.is_none() && !self.left_out_modes) || executable == plan.executable)
            && has_fresh_mode(file, executable)
            && mtime.is_none_or(|mtime| Some(file.stamp.mtime) == seconds_and_nanos(mtime))
    }

    /// Copies a member the payload does not carry from `source`, checked against RECORD.
    fn copy_left_out(
        &self,
        plan: &Planned,
        source: &LinkSource,
        tree: &mut impl Tree,
    ) -> Result<MemberOutcome, InstallError> {
        // A path a later wheel of the set wins is not written, and the release beside holds
        // that wheel's file there, not this one's: this wheel's RECORD row (which the thin
        // manifest carries, under the payload digest) stands for it.
        if plan.disposition == Disposition::Discard && !plan.script {
            if let Some(digest) = plan.expected.as_ref().and_then(|e| sha256_of_hash(&e.hash)) {
                return Ok(MemberOutcome {
                    digest,
                    size: plan.size,
                    linked: false,
                    executable: false,
                    stamp: None,
                    stamped: false,
                });
            }
        }
        let path = source.venv.join(&plan.destination);
        let failed = |reason: &str| self.left_out_error(&path, reason);
        // O_NONBLOCK: a FIFO put there opens at once, and is refused below.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
            .open(&path)
            .and_then(|file| file.metadata().map(|metadata| (file, metadata)));
        let (file, metadata) = match opened {
            Ok((file, metadata)) if metadata.is_file() => (file, metadata),
            Ok(_) => return Err(failed("is not a regular file")),
            Err(error) => return Err(failed(&format!("cannot be read: {error}"))),
        };
        if metadata.len() != plan.size {
            return Err(failed(&format!(
                "has {} bytes where the wheel's RECORD says {}",
                metadata.len(),
                plan.size
            )));
        }
        // The wheel's executable bit (known in thin artifacts since pysfx recorded it), and
        // the file's mtime, as a link would have it: the byte-code taken from the same
        // release is stamped with its source's mtime.
        let executable = match self.left_out_modes {
            true => plan.executable,
            false => metadata.mode() & 0o100 != 0,
        };
        let options = CopyOptions {
            disposition: plan.disposition,
            mtime: metadata.modified().ok(),
            ..CopyOptions::new(if executable { 0o755 } else { 0o644 })
        };
        let copied = tree
            .copy(
                &plan.destination,
                &mut file.take(plan.size.saturating_add(1)),
                options,
            )
            .map_err(|error| match error {
                CopyError::Read(error) => failed(&format!("cannot be read: {error}")),
                CopyError::Write(error) => InstallError::Tree(error),
            })?;
        check_member(plan.expected.as_ref(), &copied, plan.size)
            .map_err(|_| failed("differs from what the wheel's RECORD says"))?;
        trace!(
            "{}: {} -> {} ({} bytes, copied from {})",
            self.wheel,
            plan.member,
            plan.destination,
            copied.size,
            source.release.display()
        );
        Ok(MemberOutcome {
            digest: copied.sha256,
            size: copied.size,
            linked: false,
            executable,
            stamp: copied.stamp,
            stamped: false,
        })
    }

    fn left_out_error(&self, path: &Path, reason: &str) -> InstallError {
        InstallError::BaseRelease(format!(
            "{}: {} (a file left out of this thin artifact) {reason}",
            self.wheel,
            path.display()
        ))
    }
}

/// Whether a file has the permissions a new file of the install gets (0644 or 0755, less the
/// umask): a mode changed in the release it comes from (`chmod 000`, `chmod 600`) is a change
/// like any other, and a hard link would carry it into the new release.
pub(crate) fn has_fresh_mode(file: &Linked, executable: bool) -> bool {
    let mode = if executable { 0o755 } else { 0o644 };
    file.mode & 0o7777 == mode & !pysfx_tree::umask()
}

/// A file this user owns that no one else may write, neither setuid nor setgid: one an
/// earlier install made.
pub(crate) fn is_ours(file: &Linked) -> bool {
    file.is_file() && file.uid == euid() && file.mode & 0o7022 == 0
}

/// A time as `lstat` gives it: seconds and nanoseconds since the epoch.
fn seconds_and_nanos(time: std::time::SystemTime) -> Option<(i64, u32)> {
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((i64::try_from(since.as_secs()).ok()?, since.subsec_nanos()))
}

/// This process's effective user id, asked once.
fn euid() -> u32 {
    static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *EUID.get_or_init(|| nix::unistd::geteuid().as_raw())
}

/// The SHA-256 of an open file, read through the tree's buffer; `None` if it can't be read.
fn hash_open(file: &mut std::fs::File, tree: &mut impl Tree) -> Option<[u8; 32]> {
    let mut buffer = tree.buffer();
    let mut hasher = Sha256::new();
    let result = loop {
        match file.read(&mut buffer) {
            Ok(0) => break Some(hasher.finalize().into()),
            Ok(read) => hasher.update(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break None,
        }
    };
    tree.restore_buffer(buffer);
    result
}
