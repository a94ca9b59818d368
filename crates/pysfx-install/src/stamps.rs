//! A release's stamps file, `pysfx-stamps`: how a later release beside it knows, without
//! reading them, that the files it would hard-link are still what this install put there.
//!
//! For each wheel file the install wrote or linked into the venv, the file holds the SHA-256
//! of its bytes (hashed as they were written or checked), its first 16 bytes, and its
//! [`Stamp`] (inode, size, mtime and ctime, to nanoseconds) taken just after this install's
//! last change to it. A later install links such a file without reading it when `lstat` gives
//! the very same stamp and the recorded digest is the one its RECORD asks for: any write since
//! would have moved the ctime. A `.pyc` file of a linked source is linked the same way, only
//! by its stamp, when its recorded first bytes are the header this interpreter expects (its
//! digest, hashed as written, serves `--check`: no RECORD names a `.pyc`). Anything
//! else — no stamps file, no entry, another stamp — and the file is linked and hashed as
//! before (see `wheel::linked`), so a stale stamp costs time, never correctness.
//!
//! Two limits, both falling back to hashing:
//! - a change within the same tick of the filesystem's clock as the stamp is invisible to it.
//!   So the file is finished only once that clock has moved past every entry's ctime: the
//!   writer touches the stamps file until the ctime the kernel gives it is later than the
//!   newest entry's (a tick is at most 10 ms; it waits up to [`SETTLE_WAIT`]), and records
//!   that ctime in the trailer. Any later change to a stamped file gives it a ctime at least
//!   that late, so only entries older than it are trusted (on a filesystem that keeps whole
//!   seconds, those of the last second are not);
//! - a new hard link to the file, or one removed (another release linking it), moves its
//!   ctime too, so such a stamp no longer matches. `--keep` removing an older release would
//!   do that to every file the release shared with the new one; it removes those files
//!   through a [`Restamper`], which stamps the new release's files again as it goes.
//!
//! Layout (little-endian): entries of [`ENTRY_BYTES`] — path key (FNV-1a 64 of the path
//! relative to the venv), inode, size, mtime seconds and nanoseconds, ctime seconds and
//! nanoseconds, SHA-256, first 16 bytes — then a trailer: [`MAGIC`], the filesystem's time
//! when the file was finished (seconds, nanoseconds: see above) and the number of entries. A
//! file of any other shape is ignored.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::dir::{Dir, Type};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;
use pysfx_tree::{Linked, Outside, Stamp, Tree, TreeError};

/// The file's name in the release directory.
pub const STAMPS_FILE: &str = "pysfx-stamps";

/// A larger stamps file (of over 350,000 files; the 1.6 GB popular corpus has 79,000) is not
/// read, and the files are linked by reading them: memory stays bounded whatever lies beside
/// DEST.
const MAX_BYTES: u64 = 32 << 20;

const MAGIC: &[u8; 8] = b"PYSFXST3";
const ENTRY_BYTES: usize = 8 + 8 + 8 + 12 + 12 + 32 + 16;
const TRAILER_BYTES: usize = 8 + 12 + 8;

/// How long the writer waits, at most, for the filesystem's clock to pass the newest entry's
/// ctime (the kernel stamps files from a clock that moves in ticks of at most 10 ms; a
/// filesystem that keeps whole seconds is not waited for).
pub const SETTLE_WAIT: Duration = Duration::from_millis(30);

/// One file's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampEntry {
    pub key: u64,
    pub stamp: Stamp,
    /// Of the file's bytes; zeros when not known.
    pub sha256: [u8; 32],
    /// The file's first bytes, zero-padded.
    pub head: [u8; 16],
}

/// The key of a path relative to the venv (FNV-1a, 64 bits: the same in every process). Two
/// paths with one key can only make a lookup find the other file's entry, whose inode differs.
pub fn path_key(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes a stamps file as the wheels finish: entries first, the trailer last.
pub struct StampsWriter<W: Write> {
    out: W,
    count: u64,
    /// The newest ctime of the entries written.
    newest: (i64, u32),
}

impl<W: Write> StampsWriter<W> {
    pub fn new(out: W) -> Self {
        StampsWriter {
            out,
            count: 0,
            newest: (i64::MIN, 0),
        }
    }

    /// Writes the entries of one wheel, in one write.
    pub fn add(&mut self, entries: &[StampEntry]) -> std::io::Result<()> {
        let mut all = Vec::with_capacity(entries.len() * ENTRY_BYTES);
        for entry in entries {
            self.newest = self.newest.max(entry.stamp.ctime);
            let mut bytes = [0u8; ENTRY_BYTES];
            bytes[..8].copy_from_slice(&entry.key.to_le_bytes());
            bytes[8..16].copy_from_slice(&entry.stamp.inode.to_le_bytes());
            bytes[16..24].copy_from_slice(&entry.stamp.size.to_le_bytes());
            put_time(&mut bytes[24..36], entry.stamp.mtime);
            put_time(&mut bytes[36..48], entry.stamp.ctime);
            bytes[48..80].copy_from_slice(&entry.sha256);
            bytes[80..].copy_from_slice(&entry.head);
            all.extend_from_slice(&bytes);
        }
        self.count += entries.len() as u64;
        self.out.write_all(&all)
    }

    /// Writes the trailer; returns the output. `touch` changes the output's ctime and returns
    /// the new one (the filesystem's clock): it is called until that clock is past the newest
    /// entry's ctime, or [`SETTLE_WAIT`] has passed, and its last answer is recorded.
    pub fn finish(
        mut self,
        touch: impl FnMut(&mut W) -> std::io::Result<(i64, u32)>,
    ) -> std::io::Result<W> {
        self.seal(touch)?;
        Ok(self.out)
    }

    /// [`StampsWriter::finish`], keeping the output (to remove it on failure).
    fn seal(
        &mut self,
        mut touch: impl FnMut(&mut W) -> std::io::Result<(i64, u32)>,
    ) -> std::io::Result<()> {
        let mut now = touch(&mut self.out)?;
        let deadline = std::time::Instant::now() + SETTLE_WAIT;
        while now <= self.newest && now.1 != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
            now = touch(&mut self.out)?;
        }
        let mut trailer = [0u8; TRAILER_BYTES];
        trailer[..8].copy_from_slice(MAGIC);
        put_time(&mut trailer[8..20], now);
        trailer[20..].copy_from_slice(&self.count.to_le_bytes());
        self.out.write_all(&trailer)
    }
}

/// Whether `path` is on a local filesystem known to keep an honest ctime (moved by the kernel
/// on every change): ext2/3/4, XFS, Btrfs, tmpfs, overlayfs, F2FS, ZFS. A network or FUSE
/// filesystem may report a ctime the server or the daemon chose (sshfs reports the mtime),
/// so there the stamps are not trusted and every linked file is read.
fn keeps_ctime(path: &Path) -> bool {
    const LOCAL: [i64; 7] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // XFS
        0x9123_683E, // Btrfs
        0x0102_1994, // tmpfs
        0x794C_7630, // overlayfs
        0xF2F5_2010, // F2FS
        0x2FC1_2FC1, // ZFS
    ];
    nix::sys::statfs::statfs(path).is_ok_and(|stat| LOCAL.contains(&stat.filesystem_type().0))
}

fn put_time(bytes: &mut [u8], (seconds, nanos): (i64, u32)) {
    bytes[..8].copy_from_slice(&seconds.to_le_bytes());
    bytes[8..12].copy_from_slice(&nanos.to_le_bytes());
}

fn get_time(bytes: &[u8]) -> (i64, u32) {
    let mut seconds = [0u8; 8];
    let mut nanos = [0u8; 4];
    seconds.copy_from_slice(&bytes[..8]);
    nanos.copy_from_slice(&bytes[8..12]);
    (i64::from_le_bytes(seconds), u32::from_le_bytes(nanos))
}

/// A release's stamps, read, with an index of them by key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stamps {
    index: Index,
    entries: Vec<StampEntry>,
    finished: (i64, u32),
}

/// The entries' places by key: an open-addressing table (linear probing) at most two thirds
/// full. The keys are FNV-1a hashes already, so a key's low bits are its first slot. Built in
/// one pass, where a sorted vector cost a sort of 21,000 entries before the first link and a
/// binary search per file (the stub's size-optimised sort is a heapsort).
#[derive(Debug, Default, PartialEq, Eq)]
struct Index {
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    key: u64,
    entry: u32,
}

const EMPTY: u32 = u32::MAX;

impl Index {
    /// The index of `entries` (every key's first entry), and the keys found more than once.
    fn build(entries: &[StampEntry]) -> (Index, Vec<u64>) {
        let size = (entries.len() + entries.len() / 2 + 1).next_power_of_two();
        let mask = size - 1;
        let mut slots = vec![
            Slot {
                key: 0,
                entry: EMPTY
            };
            size
        ];
        let mut twice = Vec::new();
        for (at, entry) in entries.iter().enumerate() {
            let mut slot = entry.key as usize & mask;
            loop {
                if slots[slot].entry == EMPTY {
                    // At most `MAX_BYTES / ENTRY_BYTES` entries: the place fits.
                    slots[slot] = Slot {
                        key: entry.key,
                        entry: at as u32,
                    };
                    break;
                }
                if slots[slot].key == entry.key {
                    twice.push(entry.key);
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        (Index { slots }, twice)
    }

    /// The place of the entry of `key`.
    fn find(&self, key: u64) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut slot = key as usize & mask;
        loop {
            let found = self.slots[slot];
            if found.entry == EMPTY {
                return None;
            }
            if found.key == key {
                return Some(found.entry as usize);
            }
            slot = (slot + 1) & mask;
        }
    }
}

impl Stamps {
    /// The stamps file of `release`, or `None` when there is none this user wrote, or it is not
    /// one.
    pub fn read(release: &Path) -> Option<Stamps> {
        Stamps::read_written_by(release, None)
    }

    /// [`Stamps::read`], of a stamps file this user or `owner` wrote.
    fn read_written_by(release: &Path, owner: Option<u32>) -> Option<Stamps> {
        let (file, metadata) =
            pysfx_release::paths::open_regular(&release.join(STAMPS_FILE), MAX_BYTES).ok()?;
        let uid = metadata.uid();
        let trusted = uid == nix::unistd::geteuid().as_raw() || Some(uid) == owner;
        if !trusted || metadata.mode() & 0o022 != 0 || !keeps_ctime(release) {
            return None;
        }
        Stamps::parse(&pysfx_release::paths::read_opened(file, &metadata).ok()?)
    }

    fn parse(bytes: &[u8]) -> Option<Stamps> {
        let body = bytes.len().checked_sub(TRAILER_BYTES)?;
        let trailer = &bytes[body..];
        if &trailer[..8] != MAGIC {
            return None;
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&trailer[20..]);
        if u64::from_le_bytes(count).checked_mul(ENTRY_BYTES as u64)? != body as u64 {
            return None;
        }
        let mut entries = Vec::with_capacity(body / ENTRY_BYTES);
        for chunk in bytes[..body].chunks_exact(ENTRY_BYTES) {
            let word = |at: usize| {
                let mut word = [0u8; 8];
                word.copy_from_slice(&chunk[at..at + 8]);
                u64::from_le_bytes(word)
            };
            let stamp = Stamp {
                inode: word(8),
                size: word(16),
                mtime: get_time(&chunk[24..36]),
                ctime: get_time(&chunk[36..48]),
            };
            let mut sha256 = [0u8; 32];
            sha256.copy_from_slice(&chunk[48..80]);
            let mut head = [0u8; 16];
            head.copy_from_slice(&chunk[80..]);
            entries.push(StampEntry {
                key: word(0),
                stamp,
                sha256,
                head,
            });
        }
        let (mut index, twice) = Index::build(&entries);
        // A path written twice (a later wheel's file replacing an earlier one's) has an entry
        // per write: none of them is trusted, since the first may name an inode since freed
        // and reused.
        if !twice.is_empty() {
            let mut twice = twice;
            twice.sort_unstable();
            entries.retain(|entry| twice.binary_search(&entry.key).is_err());
            index = Index::build(&entries).0;
        }
        Some(Stamps {
            index,
            entries,
            finished: get_time(&trailer[8..20]),
        })
    }

    /// The entry of `path` (relative to the venv).
    pub fn entry(&self, path: &str) -> Option<&StampEntry> {
        self.entries.get(self.index.find(path_key(path))?)
    }

    /// Whether the file whose `lstat` says `metadata` is the one `entry` stamped, stamped
    /// before the filesystem's clock moved on (no later change can keep its ctime).
    pub fn holds(&self, entry: &StampEntry, metadata: &std::fs::Metadata) -> bool {
        self.holds_stamp(entry, &Stamp::of(metadata))
    }

    /// [`Stamps::holds`], of a file whose stamp is `stamp`.
    pub fn holds_stamp(&self, entry: &StampEntry, stamp: &Stamp) -> bool {
        entry.stamp == *stamp && self.settled(&entry.stamp)
    }

    /// Hard-links `path` (a file of the release these stamps are of) to `destination` in
    /// `tree` without reading it, when `entry` holds it unchanged and `fits` accepts it (its
    /// owner, mode, size…). Returns what `lstat` says of the new name; `None`, and nothing
    /// left at `destination`, otherwise (the caller reads the file instead).
    pub(crate) fn link_unchanged(
        &self,
        entry: &StampEntry,
        source: Outside<'_>,
        destination: &str,
        tree: &mut impl Tree,
        fits: impl Fn(&Linked) -> bool,
    ) -> Result<Option<Linked>, TreeError> {
        let Ok(before) = source.lstat() else {
            return Ok(None);
        };
        if !self.holds_stamp(entry, &before.stamp) || !fits(&before) {
            return Ok(None);
        }
        let Some(after) = tree.link(destination, source)? else {
            return Ok(None);
        };
        // The name linked must still be the inode stamped (not one put there since the look).
        let (was, is) = (before.stamp, after.stamp);
        if !after.is_file() || (is.inode, is.size, is.mtime) != (was.inode, was.size, was.mtime) {
            tree.unlink(destination)?;
            return Ok(None);
        }
        Ok(Some(after))
    }

    fn settled(&self, stamp: &Stamp) -> bool {
        stamp.ctime < self.finished
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `--check` of the release in `release` (see [`pysfx_release::check::check_with`]), its
/// byte-code included: each `.pyc` its stamps give a digest for (written from the artifact's
/// bundle or compiled at install, or linked from a release that had) and that is still the
/// file stamped must hold those bytes. Still the file stamped: the same inode, born no later
/// than the stamp's ctime (a filesystem hands a freed inode's number to the next file made,
/// so Python writing a `.pyc` again may well get the old number); where the kernel gives no
/// birth time (before Linux 4.11, as on CentOS 7, or a filesystem that keeps none), the same
/// inode. Byte-code compiled at install by an earlier stub is stamped without a digest and
/// is not compared. The stamps are read when this user or DEST's owner wrote them (root
/// checking a deploy user's release: `--check` holds the release to what its owner's
/// receipt and RECORDs say, and the stamps are no less the owner's); without such stamps
/// (see [`Stamps::read`]), no byte-code is compared.
pub fn check_release(
    release: &Path,
    contents: &pysfx_release::receipt::Contents,
) -> pysfx_release::check::CheckReport {
    let owner = std::fs::symlink_metadata(release).map(|metadata| metadata.uid());
    let stamps = Stamps::read_written_by(release, owner.ok());
    let bytecode = |path: &str, metadata: &std::fs::Metadata| -> Option<String> {
        let entry = stamps.as_ref()?.entry(path.strip_prefix("venv/")?)?;
        let known = entry.sha256 != [0; 32];
        (known && still_stamped(entry, metadata)).then(|| pysfx_wheel::hash_digest(&entry.sha256))
    };
    pysfx_release::check::check_with(release, contents, &bytecode)
}

/// Whether the file of `metadata` is still the one `entry` stamped, changed or not: the same
/// inode, born no later than the stamp's ctime.
///
/// Where the kernel gives no birth time, the same inode: a file made since that was given
/// the freed number of the one stamped is then held to its bytes too, and shows as modified
/// unless it holds them (after its source changed, which shows itself, or its `__pycache__`
/// was removed and written again). Not comparing at all would leave a `.pyc` edited in place
/// unreported, and a linked one is shared by every release that links it.
fn still_stamped(entry: &StampEntry, metadata: &std::fs::Metadata) -> bool {
    let born = metadata.created().ok();
    let born = born.and_then(|born| born.duration_since(std::time::UNIX_EPOCH).ok());
    let born = born.map(|born| (born.as_secs() as i64, born.subsec_nanos()));
    still_stamped_born(entry, metadata.ino(), born)
}

/// [`still_stamped`] of the file with inode `inode`, born at `born` when the kernel says.
fn still_stamped_born(entry: &StampEntry, inode: u64, born: Option<(i64, u32)>) -> bool {
    inode == entry.stamp.inode && born.is_none_or(|born| born <= entry.stamp.ctime)
}

/// Keeps a release's stamps true while `--keep` removes older releases beside it.
///
/// Removing a release drops a hard link of every file it shared with this one, which moves
/// their ctime: the stamps would stop vouching for them, and the next install would read and
/// hash each one and unpack its byte-code again (every other deploy, with `--keep`). So such
/// a file is unlinked here, one at a time, with a look at this release's name of it just
/// before and just after — the same look a linked install takes around each link. A file its
/// stamp held before, and that has the same inode, size and mtime after, gets its new stamp;
/// anything else keeps the old stamp, which then no longer matches (the file is read by the
/// next install, as before). When a stamp moved, the stamps file is written again, settled
/// the same way, without the entries the old file did not trust (stamped in its last tick).
/// It is written through a descriptor of the release's directory opened first, so a name
/// swapped for a link since is not followed.
pub struct Restamper {
    directory: std::os::fd::OwnedFd,
    venv: PathBuf,
    stamps: Stamps,
    /// Which entries have their new stamp: such an entry holds only by equality (it is this
    /// run's own look, not yet settled by a finished file).
    moved: Vec<bool>,
}

/// Directories deeper than this below a removed release's venv are left to the caller's
/// removal (a venv is a dozen levels deep; a planted tree may be thousands).
const MAX_DEPTH: usize = 64;

const DIRECTORY_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Restamper {
    /// For `release`: `None` when it has no stamps this user wrote.
    pub fn new(release: &Path) -> Option<Restamper> {
        let directory = nix::fcntl::open(release, DIRECTORY_FLAGS, Mode::empty()).ok()?;
        let stamps = Stamps::read(release)?;
        Some(Restamper {
            directory,
            venv: release.join("venv"),
            moved: vec![false; stamps.len()],
            stamps,
        })
    }

    /// Unlinks, from the venv of `removed` (a release being removed, already moved aside),
    /// each file that is a hard link of the file of the same path in this release, and
    /// restamps that file. The walk opens each directory below the last without following
    /// links; what it leaves, the caller removes.
    pub fn unlink_shared(&mut self, removed: &Path) {
        let Ok(removed) = Dir::open(removed, DIRECTORY_FLAGS, Mode::empty()) else {
            return;
        };
        if let Ok(venv) = Dir::openat(&removed, "venv", DIRECTORY_FLAGS, Mode::empty()) {
            self.unlink_shared_in(venv, &mut String::new(), 0);
        }
    }

    fn unlink_shared_in(&mut self, mut directory: Dir, relative: &mut String, depth: usize) {
        let mut files = Vec::new();
        let mut directories = Vec::new();
        for entry in directory.iter().flatten() {
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            match entry.file_type() {
                Some(Type::File) => files.push((name.to_owned(), entry.ino())),
                Some(Type::Directory) if depth < MAX_DEPTH => directories.push(name.to_owned()),
                _ => {}
            }
        }
        let length = relative.len();
        for (name, inode) in files {
            if let Ok(name_text) = name.to_str() {
                relative.push_str(name_text);
                self.unlink_if_shared(&directory, &name, relative, inode);
                relative.truncate(length);
            }
        }
        for name in directories {
            let (Ok(name_text), Ok(below)) = (
                name.to_str(),
                Dir::openat(&directory, name.as_c_str(), DIRECTORY_FLAGS, Mode::empty()),
            ) else {
                continue;
            };
            relative.push_str(name_text);
            relative.push('/');
            self.unlink_shared_in(below, relative, depth + 1);
            relative.truncate(length);
        }
    }

    fn unlink_if_shared(&mut self, directory: &Dir, name: &CString, relative: &str, inode: u64) {
        let Some(found) = self.stamps.index.find(path_key(relative)) else {
            return;
        };
        let entry = self.stamps.entries[found];
        if entry.stamp.inode != inode {
            return;
        }
        let ours = self.venv.join(relative);
        let Ok(before) = std::fs::symlink_metadata(&ours) else {
            return;
        };
        let holds = match self.moved[found] {
            true => entry.stamp == Stamp::of(&before),
            false => self.stamps.holds(&entry, &before),
        };
        if !holds
            || nix::unistd::unlinkat(directory, name.as_c_str(), UnlinkatFlags::NoRemoveDir)
                .is_err()
        {
            return;
        }
        let Ok(after) = std::fs::symlink_metadata(&ours) else {
            return;
        };
        let (was, is) = (Stamp::of(&before), Stamp::of(&after));
        if after.is_file() && (is.inode, is.size, is.mtime) == (was.inode, was.size, was.mtime) {
            self.stamps.entries[found].stamp = is;
            self.moved[found] = true;
        }
    }

    /// Writes the stamps file again when a stamp moved: a new file beside it, renamed over
    /// it, both through the release's directory descriptor. Returns how many moved.
    pub fn finish(self) -> std::io::Result<usize> {
        const NEW: &str = ".pysfx-stamps.new";
        let moved = self.moved.iter().filter(|moved| **moved).count();
        if moved == 0 {
            return Ok(0);
        }
        let entries: Vec<StampEntry> = (self.stamps.entries.iter().zip(&self.moved))
            .filter(|(entry, moved)| **moved || self.stamps.settled(&entry.stamp))
            .map(|(entry, _)| *entry)
            .collect();
        let directory = &self.directory;
        // A file a killed run left under the new name goes first.
        let _ = nix::unistd::unlinkat(directory, NEW, UnlinkatFlags::NoRemoveDir);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let file = nix::fcntl::openat(directory, NEW, flags, Mode::from_bits_truncate(0o644))?;
        let mut writer = StampsWriter::new(std::fs::File::from(file));
        let written = writer
            .add(&entries)
            .and_then(|()| {
                writer.seal(|file| {
                    file.set_modified(std::time::SystemTime::now())?;
                    Ok(Stamp::of(&file.metadata()?).ctime)
                })
            })
            .and_then(|()| {
                nix::fcntl::renameat(directory, NEW, directory, STAMPS_FILE).map_err(Into::into)
            });
        if let Err(error) = written {
            let _ = nix::unistd::unlinkat(directory, NEW, UnlinkatFlags::NoRemoveDir);
            return Err(error);
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u64, ctime: (i64, u32)) -> StampEntry {
        StampEntry {
            key,
            stamp: Stamp {
                inode: 7,
                size: 12,
                mtime: (1_700_000_000, 5),
                ctime,
            },
            sha256: [key as u8; 32],
            head: [(key as u8).wrapping_add(1); 16],
        }
    }

    #[test]
    fn stamps_read_back_as_written() {
        let mut writer = StampsWriter::new(Vec::new());
        writer
            .add(&[entry(1, (1_000, 1)), entry(2, (1_000, 0))])
            .expect("add");
        let bytes = writer.finish(|_| Ok((1_000, 2))).expect("finish");
        assert_eq!(bytes.len(), 2 * ENTRY_BYTES + TRAILER_BYTES);
        let stamps = Stamps::parse(&bytes).expect("parsed");
        assert_eq!(stamps.len(), 2);
        assert_eq!(stamps.entries[0], entry(1, (1_000, 1)));
        // Finished by the filesystem's clock after either ctime.
        assert_eq!(stamps.finished, (1_000, 2));
        assert!(stamps.settled(&entry(1, (1_000, 1)).stamp));
        assert!(stamps.settled(&entry(2, (1_000, 0)).stamp));
    }

    #[test]
    fn the_writer_waits_for_the_clock_to_pass_the_newest_stamp() {
        let mut writer = StampsWriter::new(Vec::new());
        writer
            .add(&[entry(1, (1_000, 5)), entry(2, (1_000, 9))])
            .expect("add");
        // The clock stays on the newest entry's tick twice, then moves.
        let mut ticks = [(1_000, 9), (1_000, 9), (1_000, 13)].into_iter();
        let mut touched = 0;
        let bytes = writer
            .finish(|_| {
                touched += 1;
                Ok(ticks.next().unwrap_or((1_000, 13)))
            })
            .expect("finish");
        assert_eq!(touched, 3);
        let stamps = Stamps::parse(&bytes).expect("parsed");
        assert_eq!(stamps.finished, (1_000, 13));
        assert!(stamps.settled(&entry(2, (1_000, 9)).stamp));
    }

    #[test]
    fn a_stamp_of_the_last_tick_is_not_trusted() {
        let mut writer = StampsWriter::new(Vec::new());
        writer.add(&[entry(1, (1_000, 0))]).expect("add");
        // A filesystem of whole seconds is not waited for: its last second is not trusted.
        let mut touched = 0;
        let bytes = writer
            .finish(|_| {
                touched += 1;
                Ok((1_000, 0))
            })
            .expect("finish");
        assert_eq!(touched, 1);
        let stamps = Stamps::parse(&bytes).expect("parsed");
        assert!(!stamps.settled(&entry(1, (1_000, 0)).stamp));
        assert!(stamps.settled(&entry(1, (999, 0)).stamp));
        // A clock that never moves is waited for no longer than SETTLE_WAIT.
        let mut writer = StampsWriter::new(Vec::new());
        writer.add(&[entry(1, (1_000, 7))]).expect("add");
        let bytes = writer.finish(|_| Ok((1_000, 7))).expect("finish");
        let stamps = Stamps::parse(&bytes).expect("parsed");
        assert!(!stamps.settled(&entry(1, (1_000, 7)).stamp));
        assert!(stamps.settled(&entry(1, (1_000, 6)).stamp));
    }

    #[test]
    fn every_entry_is_found_by_its_key_whatever_the_collisions() {
        // Keys sharing their low bits probe past each other; a key written twice is in none.
        let keys: Vec<u64> = (0..600u64)
            .map(|k| (k << 20) | 7)
            .chain(1000..1300)
            .collect();
        let mut all: Vec<StampEntry> = keys.iter().map(|key| entry(*key, (1, 1))).collect();
        all.push(entry(7 | (5 << 20), (2, 2)));
        all.push(entry(1042, (2, 2)));
        let mut writer = StampsWriter::new(Vec::new());
        writer.add(&all).expect("add");
        let stamps =
            Stamps::parse(&writer.finish(|_| Ok((9, 9))).expect("finish")).expect("parsed");
        assert_eq!(stamps.len(), keys.len() - 2);
        for key in keys {
            let found = stamps.index.find(key).map(|at| stamps.entries[at].key);
            let twice = key == 7 | (5 << 20) || key == 1042;
            assert_eq!(found, (!twice).then_some(key), "{key:#x}");
        }
        for absent in [1300, 8, (600 << 20) | 7, u64::MAX] {
            assert_eq!(stamps.index.find(absent), None, "{absent:#x}");
        }
        assert_eq!(Stamps::default().index.find(0), None);
    }

    /// A file `--check` compares with its stamp: the stamped inode, born before the stamp was
    /// taken; a file made since (a freed inode's number given again) is not.
    #[test]
    fn only_the_file_stamped_is_held_to_its_stamp() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("a.pyc");
        std::fs::write(&path, b"pyc").expect("write");
        let metadata = std::fs::symlink_metadata(&path).expect("lstat");
        if metadata.created().is_err() {
            eprintln!("skipped: this kernel or filesystem gives no birth time");
            return;
        }
        let stamp = Stamp::of(&metadata);
        let entry = |inode: u64, ctime: (i64, u32)| StampEntry {
            key: path_key("a.pyc"),
            stamp: Stamp {
                inode,
                ctime,
                ..stamp
            },
            sha256: [1; 32],
            head: [0; 16],
        };
        assert!(still_stamped(&entry(stamp.inode, stamp.ctime), &metadata));
        let earlier = (stamp.ctime.0 - 1, stamp.ctime.1);
        assert!(!still_stamped(&entry(stamp.inode, earlier), &metadata));
        assert!(!still_stamped(
            &entry(stamp.inode + 1, stamp.ctime),
            &metadata
        ));
    }

    /// Without a birth time (CentOS 7's kernel), the stamped inode is held to its stamp
    /// whenever it is there: an edit in place must not go unreported.
    #[test]
    fn without_a_birth_time_the_stamped_inode_is_held_to_its_stamp() {
        let stamp = |inode: u64| StampEntry {
            key: path_key("a.pyc"),
            stamp: Stamp {
                inode,
                size: 3,
                mtime: (5, 0),
                ctime: (5, 0),
            },
            sha256: [1; 32],
            head: [0; 16],
        };
        assert!(still_stamped_born(&stamp(7), 7, None));
        assert!(!still_stamped_born(&stamp(8), 7, None));
        assert!(still_stamped_born(&stamp(7), 7, Some((4, 9))));
        assert!(!still_stamped_born(&stamp(7), 7, Some((5, 1))));
    }

    #[test]
    fn a_path_written_twice_is_not_trusted() {
        let mut writer = StampsWriter::new(Vec::new());
        writer
            .add(&[
                entry(3, (1, 1)),
                entry(5, (1, 1)),
                entry(3, (2, 2)),
                entry(3, (3, 3)),
            ])
            .expect("add");
        let stamps =
            Stamps::parse(&writer.finish(|_| Ok((9, 9))).expect("finish")).expect("parsed");
        assert_eq!(stamps.len(), 1);
        assert_eq!(stamps.entries[0].key, 5);
    }

    #[test]
    fn files_of_another_shape_are_ignored() {
        let bytes = {
            let mut writer = StampsWriter::new(Vec::new());
            writer.add(&[entry(1, (1, 1))]).expect("add");
            writer.finish(|_| Ok((9, 9))).expect("finish")
        };
        assert!(Stamps::parse(&bytes[1..]).is_none(), "one byte short");
        assert!(
            Stamps::parse(&bytes[..bytes.len() - 1]).is_none(),
            "no trailer"
        );
        let mut wrong = bytes.clone();
        wrong[ENTRY_BYTES] ^= 1;
        assert!(Stamps::parse(&wrong).is_none(), "another magic");
        let mut count = bytes.clone();
        count[ENTRY_BYTES + 20] = 2;
        assert!(Stamps::parse(&count).is_none(), "a count that does not fit");
        assert!(Stamps::parse(b"").is_none());
    }

    /// The stamps of `release` for `paths` (relative to its venv) as `lstat` gives them now,
    /// finished at `finished`.
    fn stamp_release(release: &Path, paths: &[&str], finished: (i64, u32)) {
        let entries: Vec<StampEntry> = paths
            .iter()
            .map(|path| StampEntry {
                key: path_key(path),
                stamp: Stamp::of(
                    &std::fs::symlink_metadata(release.join("venv").join(path)).expect("lstat"),
                ),
                sha256: [1; 32],
                head: [0; 16],
            })
            .collect();
        let mut writer = StampsWriter::new(Vec::new());
        writer.add(&entries).expect("add");
        let bytes = writer.finish(|_| Ok(finished)).expect("finish");
        std::fs::write(release.join(STAMPS_FILE), bytes).expect("write stamps");
    }

    fn ctime(path: &Path) -> (i64, u32) {
        Stamp::of(&std::fs::symlink_metadata(path).expect("lstat")).ctime
    }

    /// Removing releases that share files with this one keeps its stamps true: each shared
    /// file is unlinked from the removed trees with a look before and after (twice for a file
    /// two trees share), an entry the old file did not trust is left out, and a tree deeper
    /// than any venv is walked no deeper than [`MAX_DEPTH`].
    #[test]
    fn removing_shared_files_moves_their_stamps() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let root = temporary.path();
        let release = root.join("release");
        let venv = release.join("venv");
        std::fs::create_dir_all(venv.join("pkg")).expect("mkdir");
        let removed = [root.join("old1"), root.join("old2")];
        for old in &removed {
            std::fs::create_dir_all(old.join("venv/pkg")).expect("mkdir");
        }
        std::fs::write(venv.join("pkg/a.py"), "a").expect("a");
        std::fs::write(venv.join("pkg/own.py"), "own").expect("own");
        for old in &removed {
            std::fs::hard_link(venv.join("pkg/a.py"), old.join("venv/pkg/a.py")).expect("link");
        }
        std::thread::sleep(Duration::from_millis(20));
        // b.py is stamped in the old file's last tick: not trusted, then or after.
        std::fs::write(venv.join("pkg/b.py"), "b").expect("b");
        std::fs::hard_link(venv.join("pkg/b.py"), removed[0].join("venv/pkg/b.py")).expect("link");
        let last_tick = ctime(&venv.join("pkg/b.py"));
        stamp_release(&release, &["pkg/a.py", "pkg/b.py", "pkg/own.py"], last_tick);
        let mut deep = removed[1].join("venv");
        for _ in 0..MAX_DEPTH + 40 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).expect("deep");

        let before = ctime(&venv.join("pkg/a.py"));
        let mut restamper = Restamper::new(&release).expect("stamps read");
        for old in &removed {
            restamper.unlink_shared(old);
        }
        assert!(!removed[0].join("venv/pkg/a.py").exists());
        assert!(!removed[1].join("venv/pkg/a.py").exists());
        // Not vouched for: left to the caller's removal.
        assert!(removed[0].join("venv/pkg/b.py").exists());
        assert_eq!(restamper.finish().expect("written"), 1);

        let stamps = Stamps::read(&release).expect("stamps read back");
        assert_eq!(stamps.len(), 2, "b.py's entry is left out");
        assert!(stamps.entry("pkg/b.py").is_none());
        for path in ["pkg/a.py", "pkg/own.py"] {
            let entry = stamps.entry(path).expect("entry");
            let metadata = std::fs::symlink_metadata(venv.join(path)).expect("lstat");
            assert!(stamps.holds(entry, &metadata), "{path}");
        }
        assert_ne!(
            ctime(&venv.join("pkg/a.py")),
            before,
            "a.py's links were removed"
        );
        assert_eq!(
            std::fs::symlink_metadata(venv.join("pkg/a.py"))
                .expect("a")
                .nlink(),
            1
        );
        let litter: Vec<_> = std::fs::read_dir(&release)
            .expect("list")
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(litter.len(), 2, "{litter:?}");
    }

    #[test]
    fn path_keys_are_fnv_1a() {
        // The FNV-1a 64 test vectors: the key must not change between releases of pysfx.
        assert_eq!(path_key(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(path_key("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(path_key("a/b.py"), path_key("a/c.py"));
    }
}
