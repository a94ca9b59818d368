//! Paths that two wheels of one set both ship (pymongo and bson both ship `bson/`; many wheels
//! ship a top-level `tests/`). pip installs wheels one after another, so the later one's file
//! silently wins; pysfx writes members of many wheels at once, so it decides before writing:
//!
//! - the wheel that comes later in the plan (distributions sorted by normalised name) wins;
//! - the earlier wheel's file is read and checked like any member, but not written;
//! - a path an earlier batch already wrote is replaced atomically (a new file renamed over it);
//! - the same bytes in both (by RECORD's hash and size) are no event; different bytes are a
//!   warning naming both wheels, and `--json` lists them under `shared_paths`.
//!
//! Every file is still created exclusively, so a path this planning missed fails loudly
//! instead of mixing two files.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use pysfx_tree::Disposition;

use crate::wheel::{PreparedWheel, Slot};

/// Who wrote each path so far: keyed by a hash of the path (8 bytes, not the path, so the map
/// stays small for payloads of hundreds of thousands of files), the writer's place in the plan
/// and a hash of the content's fingerprint. Two paths with one hash (about one chance in 2^64
/// per pair) would only cost a needless atomic replace and a wrong warning line.
#[derive(Default)]
pub struct SharedPaths {
    owners: KeyMap<(u32, u64)>,
    /// The directories the files so far are in, by the same key: the first wheel to need each
    /// (the map's type is the owners', so the stub carries one map's code).
    directories: KeyMap<(u32, u64)>,
    /// Paths shipped with different content by two wheels, in the order found.
    pub found: Vec<SharedPath>,
}

/// A path two wheels ship with different content.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SharedPath {
    /// Relative to the venv.
    pub path: String,
    /// The wheel whose file is installed.
    pub kept: String,
    /// The wheel whose file is not.
    pub replaced: String,
}

/// A map by [`key`]: the key is a hash already, and is its own hash (hashing it again cost a
/// third of planning a batch of 4,096 members).
type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// The hasher of a [`KeyMap`]: a `u64` key is the hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not called for a `u64` key; any other input still hashes.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

fn key(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// The fingerprint of a file's content by which two wheels shipping one path are told apart:
/// its RECORD hash (none for a member RECORD does not hash) and its size.
pub(crate) fn fingerprint(hash: Option<&str>, size: u64) -> u64 {
    let mut hasher = DefaultHasher::new();
    hash.hash(&mut hasher);
    size.hash(&mut hasher);
    hasher.finish()
}

impl SharedPaths {
    /// Sets the disposition of every shared path of one batch. `prepared` are the batch's
    /// wheels in plan order; `first_rank` is the plan position of the first of them (batches
    /// cover the plan in order, so a lower rank belongs to an earlier batch, whose files are
    /// on disk already); `names` are the plan's wheel file names, by rank.
    ///
    /// A path one wheel ships as a file and another needs as a directory (`shared` and
    /// `shared/x.py`) can't be installed both ways: the error names both wheels.
    pub fn plan_batch(
        &mut self,
        prepared: &mut [PreparedWheel],
        first_rank: usize,
        names: &[&str],
    ) -> Result<(), String> {
        let name = |rank: u32| names.get(rank as usize).copied().unwrap_or_default();
        let mut decisions: Vec<(usize, Slot, Disposition)> = Vec::new();
        {
            // Path → the wheel (in this batch) that writes it, which file of it, the content's
            // fingerprint, and whether an earlier batch wrote the path already.
            let destinations: Vec<_> = prepared.iter().map(|p| p.destinations()).collect();
            let count = destinations.iter().map(Vec::len).sum();
            // Sized once: a map that grows hashes every key again.
            let mut in_batch: HashMap<&str, (usize, Slot, bool)> = HashMap::with_capacity(count);
            self.owners.reserve(count);
            for (wheel, destinations) in destinations.into_iter().enumerate() {
                let rank = first_rank + wheel;
                for destination in destinations {
                    let path_key = key(destination.path);
                    let fingerprint = destination.fingerprint;
                    // The wheel that ships the file, the one that needs a directory there.
                    let clash = |file: u32, directory: u32, path: &str| {
                        format!(
                            "{} ships the file {path} and {} needs a directory there: the two cannot be installed together",
                            name(file),
                            name(directory)
                        )
                    };
                    if let Some(&(other, _)) = self.directories.get(&path_key) {
                        if other as usize != rank {
                            return Err(clash(rank as u32, other, destination.path));
                        }
                    }
                    let mut at = destination.path;
                    while let Some((parent, _)) = at.rsplit_once('/') {
                        let parent_key = key(parent);
                        if let Some(&(other, _)) = self.owners.get(&parent_key) {
                            if other as usize != rank {
                                return Err(clash(other, rank as u32, parent));
                            }
                        }
                        if self.directories.contains_key(&parent_key) {
                            break;
                        }
                        self.directories.insert(parent_key, (rank as u32, 0));
                        at = parent;
                    }
                    let previous = self.owners.insert(path_key, (rank as u32, fingerprint));
                    let mut on_disk =
                        previous.is_some_and(|(owner, _)| (owner as usize) < first_rank);
                    if let Some((loser, slot, loser_on_disk)) = in_batch.get(destination.path) {
                        decisions.push((*loser, *slot, Disposition::Discard));
                        on_disk |= *loser_on_disk;
                    }
                    in_batch.insert(destination.path, (wheel, destination.slot, on_disk));
                    if on_disk {
                        decisions.push((wheel, destination.slot, Disposition::Replace));
                    }
                    if let Some((owner, owner_fingerprint)) = previous {
                        if owner_fingerprint != fingerprint {
                            self.found.push(SharedPath {
                                path: destination.path.to_string(),
                                kept: names.get(rank).copied().unwrap_or_default().to_string(),
                                replaced: names
                                    .get(owner as usize)
                                    .copied()
                                    .unwrap_or_default()
                                    .to_string(),
                            });
                        }
                    }
                }
            }
        }
        for (wheel, slot, disposition) in decisions {
            prepared[wheel].set_disposition(slot, disposition);
        }
        Ok(())
    }
}

/// One wheel of a set, for [`file_directory_clash`]: its distribution's normalised name and
/// where the install puts each of its files (relative to the venv).
pub struct SetMember<'a> {
    pub name: &'a str,
    pub destinations: &'a [String],
}

/// A path one wheel of a set ships as a file where another distribution's wheel needs a
/// directory; the wheels by their place in the list.
#[derive(Debug, PartialEq, Eq)]
pub struct FileDirectoryClash<'a> {
    pub file_wheel: usize,
    pub path: &'a str,
    pub directory_wheel: usize,
}

/// The first path one distribution of `wheels` ships as a file and another needs as a
/// directory (`shared` and `shared/x.py`): an install choosing both refuses them
/// ([`SharedPaths::plan_batch`]), so `pysfx pack` and `verify` refuse the set. Builds of one
/// distribution are not compared (one of them is installed).
pub fn file_directory_clash<'a>(wheels: &[SetMember<'a>]) -> Option<FileDirectoryClash<'a>> {
    // Each directory the files need, and the first wheel that needs it.
    let mut directories: HashMap<&str, usize> = HashMap::new();
    for (index, wheel) in wheels.iter().enumerate() {
        for path in wheel.destinations {
            let mut at = path.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                directories.entry(parent).or_insert(index);
                at = parent;
            }
        }
    }
    for (index, wheel) in wheels.iter().enumerate() {
        for path in wheel.destinations {
            match directories.get(path.as_str()) {
                Some(&other) if wheels[other].name != wheel.name => {
                    return Some(FileDirectoryClash {
                        file_wheel: index,
                        path,
                        directory_wheel: other,
                    })
                }
                _ => {}
            }
        }
    }
    None
}
