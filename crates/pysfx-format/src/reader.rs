//! Reading a payload from an artifact file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zip::read::Config;
use zip::ZipArchive;

use crate::digest::{DigestScheme, Digested};
use crate::{
    locate, FirstRound, FormatError, Located, Manifest, WheelEntry, FORMAT_VERSION, MANIFEST_NAME,
};

/// A stored wheel's payload path and byte range, `(start, len)`, absolute.
pub(crate) type StoredWheel = (String, (u64, u64));

/// An opened artifact: its trailer, its zip directory and its manifest.
pub struct Payload {
    path: PathBuf,
    file: Arc<File>,
    located: Located,
    archive: ZipArchive<Section>,
    manifest: Manifest,
    /// Every stored wheel: the pieces of the payload digest that are whole wheels (see
    /// `digest.rs`).
    wheels: Vec<StoredWheel>,
    /// Every stored byte-code bundle, by the same kind of range.
    bundles: Vec<StoredWheel>,
    /// Where each entry's bytes must end, by its number ([`crate::member_ends`]).
    ends: Vec<u64>,
    /// Whether [`Payload::verify`] found the digest right on this handle.
    verified: std::sync::atomic::AtomicBool,
    /// The stored wheels (by path) [`Payload::verify_sparing`] left unread.
    spared: std::sync::Mutex<Vec<String>>,
    /// What each bundle asked of [`Payload::bundle_unpacked`] unpacks to.
    bundle_sizes: std::sync::Mutex<Vec<(String, u64)>>,
}

impl Payload {
    /// Opens `path`, finds the trailer and reads the zip directory and the manifest. Does not
    /// check the digest: call [`Payload::verify`] for that.
    pub fn open(path: &Path) -> Result<Payload, FormatError> {
        // Without blocking, so that a FIFO is refused below rather than waited on; reads of a
        // regular file ignore the flag.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
            .map_err(|error| FormatError::io(path, error))?;
        let metadata = file
            .metadata()
            .map_err(|error| FormatError::io(path, error))?;
        if !metadata.is_file() {
            let kind = match metadata.is_dir() {
                true => "a directory",
                false => "not a regular file",
            };
            return Err(FormatError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, kind),
            ));
        }
        let located = locate(&mut file, path)?;
        let file_len = metadata.len();
        let file = Arc::new(file);
        // One reader type for the payload, the wheels and the byte-code bundles: the zip code
        // is compiled once (the stub's size).
        let whole = Section::new(&file, 0, file_len);
        let mut archive = ZipArchive::with_config(Config::default(), whole).map_err(|source| {
            FormatError::Zip {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let ends = crate::member_ends(&archive).map_err(|source| FormatError::Zip {
            path: path.to_path_buf(),
            source,
        })?;
        let ranges = within_payload(&archive, &located)
            .and_then(|()| wheel_ranges(&mut archive, &located, &ends, b"wheels/"))
            .and_then(|wheels| {
                Ok((
                    wheels,
                    wheel_ranges(&mut archive, &located, &ends, b"bytecode/")?,
                ))
            })
            .map_err(|reason| FormatError::Malformed {
                path: path.to_path_buf(),
                reason,
            })?;
        let (wheels, bundles) = ranges;
        let mut payload = Payload {
            path: path.to_path_buf(),
            file,
            located,
            archive,
            manifest: empty_manifest(),
            wheels,
            bundles,
            ends,
            verified: std::sync::atomic::AtomicBool::new(false),
            spared: std::sync::Mutex::new(Vec::new()),
            bundle_sizes: std::sync::Mutex::new(Vec::new()),
        };
        payload.manifest = payload.read_manifest()?;
        payload.check_wheel_sizes()?;
        Ok(payload)
    }

    /// Each wheel (or husk) stored is as large as the manifest says.
    fn check_wheel_sizes(&mut self) -> Result<(), FormatError> {
        for index in 0..self.manifest.wheels.len() {
            let wheel = &self.manifest.wheels[index];
            let (path, size) = (wheel.path.clone(), wheel.size);
            let range = stored_range(&mut self.archive, &self.located, &self.ends, &path);
            if let Ok((_, stored)) = range {
                if stored != size {
                    return Err(FormatError::Malformed {
                        path: self.path.clone(),
                        reason: format!(
                            "{path}: the manifest gives its size as {size} bytes, the payload \
                             stores {stored}"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn read_manifest(&mut self) -> Result<Manifest, FormatError> {
        let bad = |reason: String| FormatError::Malformed {
            path: self.path.clone(),
            reason,
        };
        let mut text = Vec::new();
        if let Some(index) = self.archive.index_for_name(MANIFEST_NAME) {
            let differs = crate::local_header_differs(&mut self.archive, index);
            if let Some(reason) =
                differs.map_err(|error| bad(format!("{MANIFEST_NAME}: {error}")))?
            {
                return Err(bad(format!("{MANIFEST_NAME}: {reason}")));
            }
        }
        {
            let mut entry = self
                .archive
                .by_name(MANIFEST_NAME)
                .map_err(|error| bad(format!("{MANIFEST_NAME}: {error}")))?;
            if entry.size() > 64 * 1024 * 1024 {
                return Err(bad(format!("{MANIFEST_NAME} is implausibly large")));
            }
            entry
                .read_to_end(&mut text)
                .map_err(|error| bad(format!("{MANIFEST_NAME}: {error}")))?;
        }
        let manifest = crate::manifest::manifest_from_slice(&text)
            .map_err(|error| bad(format!("{MANIFEST_NAME}: {error}")))?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "{MANIFEST_NAME}: format version {} is not supported by this reader (it reads \
                 {FORMAT_VERSION})",
                manifest.format_version
            )));
        }
        manifest
            .validate()
            .map_err(|reason| bad(format!("{MANIFEST_NAME}: {reason}")))?;
        Ok(manifest)
    }

    /// Recomputes the payload digest and compares it with the trailer, and each wheel and
    /// byte-code bundle the manifest gives a digest with that digest (for a `pysfx-payload/3`
    /// digest, the digest of its own piece: no byte is hashed twice).
    pub fn verify(&self) -> Result<(), FormatError> {
        let plan = self.digest_plan()?;
        let digested = (self.located).verify(&self.file, &self.path, &plan.pieces, &plan.extra)?;
        self.check_digested(&plan, &digested)?;
        lock(&self.spared).clear();
        self.set_verified();
        Ok(())
    }

    /// The first round of [`Payload::verify_sparing`]: every piece of the payload but the
    /// stored wheels and bundles hashed (the app, the manifest, the stub), while the caller
    /// finds out which of them its install will not read. `None` for a `pysfx-payload/1`
    /// digest, which is one chain: [`Payload::verify_sparing`] then hashes it all.
    pub fn hash_besides_wheels(&self) -> Result<Option<FirstRound>, FormatError> {
        let plan = self.digest_plan()?;
        (self.located).first_round(&self.file, &self.path, &plan.pieces, &plan.extra)
    }

    /// [`Payload::verify`], finishing `first`, except that a stored wheel `spare_wheel` picks,
    /// or (for a `pysfx-payload/3` digest) a byte-code bundle `spare_bundle` picks, is not
    /// read: the SHA-256 the manifest gives it stands in for its bytes in the digest, so the
    /// digest still vouches for everything else, the manifest included. Such an entry is
    /// [`Payload::spared`]: whoever reads it must hold what it reads to the manifest first
    /// (a wheel's RECORD to the manifest's digest of it, each file to RECORD, or the whole
    /// entry to its SHA-256: see `pysfx_install`'s `SparedWheel`). Only a wheel whose manifest
    /// entry gives its RECORD's digest is spared. A digest that does not match is told by the
    /// whole check, which names what differs.
    pub fn verify_sparing(
        &self,
        first: Option<FirstRound>,
        spare_wheel: &dyn Fn(&WheelEntry) -> bool,
        spare_bundle: &dyn Fn(&crate::BytecodeBundle) -> bool,
    ) -> Result<(), FormatError> {
        let Some(mut first) = first else {
            return self.verify();
        };
        let plan = self.digest_plan()?;
        let manifest = &self.manifest;
        let spared: Vec<Option<[u8; 32]>> = (plan.kinds.iter())
            .map(|kind| match *kind {
                Stored::Wheel(index) => {
                    let path = &self.wheels[index].0;
                    let entry = (manifest.wheels.iter())
                        .find(|entry| entry.path == *path && !entry.from_base)?;
                    (entry.record_sha256.is_some() && spare_wheel(entry))
                        .then(|| unhex32(&entry.sha256))
                        .flatten()
                }
                Stored::Bundle(index) => {
                    let path = &self.bundles[index].0;
                    let bundle = (manifest.bytecode.iter()).find(|bundle| bundle.path == *path)?;
                    (!bundle.sha256.is_empty() && spare_bundle(bundle))
                        .then(|| unhex32(&bundle.sha256))
                        .flatten()
                }
                Stored::Stub => None,
            })
            .collect();
        let digested = first.finish(&self.file, &self.path, &|piece| spared[piece])?;
        let digested = match self.located.check_root(&self.path, digested) {
            Ok(digested) => digested,
            Err(mismatch) => return self.verify().and(Err(mismatch)),
        };
        self.check_digested(&plan, &digested)?;
        *lock(&self.spared) = (plan.kinds.iter().zip(&spared))
            .filter(|(_, spared)| spared.is_some())
            .filter_map(|(kind, _)| match *kind {
                Stored::Wheel(index) => Some(self.wheels[index].0.clone()),
                Stored::Bundle(index) => Some(self.bundles[index].0.clone()),
                Stored::Stub => None,
            })
            .collect();
        self.set_verified();
        Ok(())
    }

    /// Whether the stored wheel or bundle at `path` was left unread by
    /// [`Payload::verify_sparing`].
    pub fn spared(&self, path: &str) -> bool {
        lock(&self.spared).iter().any(|spared| spared == path)
    }

    /// What the digest takes as whole pieces, and what is hashed besides: the wheels (and
    /// for a `pysfx-payload/3` digest the bundles) as pieces, in payload order; the bundles the
    /// manifest gives a digest (of an older digest) and the stub, when the manifest gives its
    /// digest, besides.
    fn digest_plan(&self) -> Result<DigestPlan, FormatError> {
        // Each bundle the manifest gives a digest must be in the payload: a release records
        // that digest, and another release links byte-code from it by that digest alone.
        for bundle in (self.manifest.bytecode.iter()).filter(|b| !b.sha256.is_empty()) {
            if !self.bundles.iter().any(|(name, _)| *name == bundle.path) {
                return Err(FormatError::Malformed {
                    path: self.path.clone(),
                    reason: format!("{} is not in the payload", bundle.path),
                });
            }
        }
        let mut pieces: Vec<((u64, u64), Stored)> = (self.wheels.iter().enumerate())
            .map(|(index, (_, range))| (*range, Stored::Wheel(index)))
            .collect();
        let mut extra: Vec<((u64, u64), Stored)> = Vec::new();
        let bundles = (self.bundles.iter().enumerate())
            .map(|(index, (_, range))| (*range, Stored::Bundle(index)));
        if self.located.trailer.scheme == DigestScheme::Entries {
            pieces.extend(bundles);
        } else {
            let digested = |(_, kind): &((u64, u64), Stored)| match *kind {
                Stored::Bundle(index) => (self.manifest.bytecode.iter())
                    .any(|b| b.path == self.bundles[index].0 && !b.sha256.is_empty()),
                _ => false,
            };
            extra.extend(bundles.filter(digested));
        }
        if self.manifest.stub_sha256.is_some() {
            extra.push(((0, self.located.trailer.payload_offset), Stored::Stub));
        }
        // In payload order, whatever the order of the zip directory (docs/format.md).
        pieces.sort_unstable_by_key(|(range, _)| *range);
        let (pieces, kinds) = pieces.into_iter().unzip();
        let (extra, extra_kinds) = extra.into_iter().unzip();
        Ok(DigestPlan {
            pieces,
            kinds,
            extra,
            extra_kinds,
        })
    }

    /// The wheels, bundles and stub of a digest found right against the manifest.
    fn check_digested(&self, plan: &DigestPlan, digested: &Digested) -> Result<(), FormatError> {
        let mut wheels = Vec::new();
        let mut bundles: Vec<Option<[u8; 32]>> = vec![None; self.bundles.len()];
        let mut stub = None;
        let found = (plan.kinds.iter().zip(&digested.wheels))
            .chain(plan.extra_kinds.iter().zip(&digested.extra));
        if !digested.wheels.is_empty() {
            wheels = vec![[0u8; 32]; self.wheels.len()];
        }
        for (kind, digest) in found {
            match *kind {
                Stored::Wheel(index) => wheels[index] = *digest,
                Stored::Bundle(index) => bundles[index] = Some(*digest),
                Stored::Stub => stub = Some(*digest),
            }
        }
        self.check_wheels(&wheels)?;
        for bundle in (self.manifest.bytecode.iter()).filter(|b| !b.sha256.is_empty()) {
            let place = self
                .bundles
                .iter()
                .position(|(name, _)| *name == bundle.path);
            if let Some(actual) = place.and_then(|index| bundles[index]) {
                self.compare(&bundle.path, &bundle.sha256, &actual)?;
            }
        }
        if let (Some(expected), Some(actual)) = (self.manifest.stub_sha256.as_ref(), stub) {
            let what = format!(
                "the stub (its first {} bytes)",
                self.located.trailer.payload_offset
            );
            self.compare(&what, expected, &actual)?;
        }
        Ok(())
    }

    /// Whether [`Payload::verify`] found the payload right through this handle: every byte of
    /// the payload is then the bytes the trailer vouches for, and every wheel the manifest
    /// describes has the manifest's digest.
    pub fn verified(&self) -> bool {
        self.verified.load(std::sync::atomic::Ordering::Acquire)
    }

    fn set_verified(&self) {
        self.verified
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// [`Payload::verify`], then the SHA-256 of the whole file in hex (the file's digest, what
    /// `sha256sum` prints, as opposed to [`Payload::digest`]).
    pub fn verify_and_digest_file(&mut self) -> Result<String, FormatError> {
        self.verify()?;
        let len = self.located.file_len;
        let (digest, read) = crate::sha256_reader(Section::new(&self.file, 0, len))
            .map_err(|error| FormatError::io(&self.path, error))?;
        if read != len {
            let short = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
            return Err(FormatError::io(&self.path, short));
        }
        Ok(crate::hex(&digest))
    }

    /// Each wheel the manifest describes (a thin artifact's left-out ones aside) against the
    /// manifest's SHA-256: `digests` are the stored wheels' own, in payload order, or empty
    /// (a `pysfx-payload/1` digest), and the wheels are then hashed here.
    fn check_wheels(&self, digests: &[[u8; 32]]) -> Result<(), FormatError> {
        for entry in self.manifest.wheels.iter().filter(|entry| !entry.from_base) {
            let place = self.wheels.iter().position(|(name, _)| *name == entry.path);
            let Some(index) = place else {
                return Err(FormatError::Malformed {
                    path: self.path.clone(),
                    reason: format!("{} is not in the payload", entry.path),
                });
            };
            let actual = match digests.get(index) {
                Some(digest) => *digest,
                None => self.sha256_of(self.wheels[index].1)?,
            };
            self.compare(&entry.filename, &entry.sha256, &actual)?;
        }
        Ok(())
    }

    fn sha256_of(&self, (start, len): (u64, u64)) -> Result<[u8; 32], FormatError> {
        crate::sha256_reader(Section::new(&self.file, start, len))
            .map(|(digest, _)| digest)
            .map_err(|error| FormatError::io(&self.path, error))
    }

    /// `actual` (of the entry named `what`) against the manifest's hex `expected`.
    fn compare(&self, what: &str, expected: &str, actual: &[u8; 32]) -> Result<(), FormatError> {
        if crate::hex(actual) == expected {
            return Ok(());
        }
        Err(FormatError::WheelDigest {
            path: self.path.clone(),
            wheel: what.to_string(),
            expected: expected.to_string(),
            actual: crate::hex(actual),
        })
    }

    /// Checks that the manifest's `unpacked_bytes`, which the stub's free-space check trusts,
    /// is what the payload declares: the app and static entries' sizes from the zip
    /// directory, each wheel's unpacked size (each wheel is held to its own when installed) and
    /// the byte-code bundles. Every entry is then read no further than its declared size, so a
    /// payload of many large entries cannot fill the disk behind a small manifest figure.
    pub fn check_sizes(&self) -> Result<(), FormatError> {
        let mut declared: u64 = 0;
        // The app's files and bytes, which listings (`--info`, `inspect`) show.
        let (mut app_files, mut app_bytes) = (0u64, 0u64);
        let app = format!("{}/", self.manifest.app.name);
        for index in 0..self.archive.len() {
            // The central directory's record only: no read of each entry's local header.
            let entry = self
                .archive
                .by_index_data(index)
                .map_err(|source| FormatError::Zip {
                    path: self.path.clone(),
                    source,
                })?;
            let name = entry.name_raw();
            if name.starts_with(app.as_bytes()) || name.starts_with(b"static.in/") {
                declared = declared.saturating_add(entry.size());
            }
            if name.starts_with(app.as_bytes()) {
                app_files += 1;
                app_bytes = app_bytes.saturating_add(entry.size());
            }
        }
        if (app_files, app_bytes) != (self.manifest.app.files, self.manifest.app.bytes) {
            return Err(FormatError::Malformed {
                path: self.path.clone(),
                reason: format!(
                    "it says the app holds {} files of {} bytes, but the payload holds {app_files} of {app_bytes}",
                    self.manifest.app.files, self.manifest.app.bytes
                ),
            });
        }
        for wheel in &self.manifest.wheels {
            declared = declared.saturating_add(wheel.unpacked_bytes);
        }
        // A bundle is a stored zip of deflated `.pyc` files: what it unpacks to is what its
        // own members declare, each held to its size when written.
        let bundles: Vec<String> = (self.manifest.bytecode.iter())
            .map(|bundle| bundle.path.clone())
            .collect();
        for name in bundles {
            if self.bundles.iter().any(|(stored, _)| *stored == name) {
                declared = declared.saturating_add(self.bundle_unpacked(&name)?);
            }
        }
        // (The packer writes the very sum: a larger figure would have the stub ask for space
        // the payload does not need, and blame the machine.)
        if declared != self.manifest.unpacked_bytes {
            return Err(FormatError::Malformed {
                path: self.path.clone(),
                reason: format!(
                    "it says the payload unpacks to {} bytes, but its entries declare {declared}",
                    self.manifest.unpacked_bytes
                ),
            });
        }
        Ok(())
    }

    /// Names the payload `name` in messages and reports (it was opened by another path, such
    /// as `/proc/self/exe`).
    pub fn named(mut self, name: PathBuf) -> Payload {
        self.path = name;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn located(&self) -> &Located {
        &self.located
    }

    /// The payload digest recorded in the trailer, hex: the SHA-256 of the payload bytes (see
    /// docs/format.md), not of the file.
    pub fn digest(&self) -> String {
        crate::hex(&self.located.trailer.sha256)
    }

    /// The zip directory, to list and extract entries.
    pub fn archive(&mut self) -> &mut ZipArchive<Section> {
        &mut self.archive
    }

    /// The underlying file, for [`Section`] readers.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// What the byte-code bundle stored as `name` unpacks to: its members' declared sizes
    /// (each is held to its own when written), as `unpacked_bytes` counts it.
    pub fn bundle_unpacked(&self, name: &str) -> Result<u64, FormatError> {
        // Asked of every bundle twice (`check_sizes`, then a stub's free-space check), and a
        // bundle's directory has thousands of records.
        let known = lock(&self.bundle_sizes);
        if let Some((_, bytes)) = known.iter().find(|(known, _)| known == name) {
            return Ok(*bytes);
        }
        drop(known);
        let Some((_, (start, len))) = self.bundles.iter().find(|(stored, _)| stored == name) else {
            return Err(FormatError::Malformed {
                path: self.path.clone(),
                reason: format!("{name} is not a stored entry of the payload"),
            });
        };
        let bytes = bundle_unpacked_bytes(Section::with_directory(&self.file, *start, *len))
            .map_err(|reason| FormatError::Malformed {
                path: self.path.clone(),
                reason: format!("byte-code bundle {name}: {reason}"),
            })?;
        lock(&self.bundle_sizes).push((name.to_string(), bytes));
        Ok(bytes)
    }

    /// Where the bytes of each entry must end, by its number ([`crate::Member::end`]).
    pub fn entry_ends(&self) -> Vec<u64> {
        self.ends.clone()
    }

    /// The stored (uncompressed) entry `name` as a byte range `(start, len)` of the artifact,
    /// to be read in place with a [`Section`]. Fails when the entry is missing, compressed, or
    /// lies outside the payload.
    pub fn stored_range(&mut self, name: &str) -> Result<(u64, u64), FormatError> {
        stored_range(&mut self.archive, &self.located, &self.ends, name).map_err(|reason| {
            FormatError::Malformed {
                path: self.path.clone(),
                reason,
            }
        })
    }
}

/// What a byte-code bundle's members declare they unpack to, together.
pub fn bundle_unpacked_bytes<R: Read + Seek>(bundle: R) -> Result<u64, String> {
    let archive = ZipArchive::new(bundle).map_err(|error| error.to_string())?;
    let mut total: u64 = 0;
    // The directory's records alone, as for the payload's entries (a bundle has thousands).
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|error| error.to_string())?;
        total = total.saturating_add(entry.size());
    }
    Ok(total)
}

/// Every entry's local header, and the directory, start inside the payload (at or after the
/// offset the trailer names): the digest covers the payload only, so an entry starting before
/// it would be read partly from bytes no digest vouches for.
fn within_payload<R: Read + Seek + Clone>(
    archive: &ZipArchive<R>,
    located: &Located,
) -> Result<(), String> {
    let start = located.trailer.payload_offset;
    // The zip reader keeps one entry per name, so a duplicate shows only in the count; every
    // reader of the payload (the install, --sbom, --list, inspect) would see only the last.
    if archive.has_duplicate_names() {
        return Err(match crate::member::duplicated_entry(archive) {
            Some(name) => format!("it holds two entries named {name:?}"),
            None => "it holds two entries of one name".to_string(),
        });
    }
    if archive.central_directory_start() < start {
        return Err("the zip directory starts before the payload".to_string());
    }
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|error| error.to_string())?;
        if entry.header_start() < start {
            return Err(format!(
                "{} starts before the payload",
                String::from_utf8_lossy(entry.name_raw())
            ));
        }
    }
    Ok(())
}

/// Where the data of the stored entry `name` lies: `(start, len)`, absolute, inside the payload.
fn stored_range<R: Read + Seek + Clone + ReadAt>(
    archive: &mut ZipArchive<R>,
    located: &Located,
    ends: &[u64],
    name: &str,
) -> Result<(u64, u64), String> {
    let index = archive.index_for_name(name);
    let end = index
        .and_then(|index| ends.get(index).copied())
        .unwrap_or(0);
    if let Some(index) = index {
        let differs = crate::local_header_differs(archive, index);
        if let Some(reason) = differs.map_err(|error| format!("{name}: {error}"))? {
            return Err(format!("{name}: {reason}"));
        }
    }
    let (start, len) = {
        let entry = archive
            .by_name(name)
            .map_err(|error| format!("{name}: {error}"))?;
        if entry.compression() != zip::CompressionMethod::Stored
            || entry.compressed_size() != entry.size()
        {
            return Err(format!("{name} is not stored uncompressed"));
        }
        let start = entry
            .data_start()
            .ok_or_else(|| format!("{name}: no data offset"))?;
        (start, entry.size())
    };
    if !crate::data_within(start, len, end) {
        return Err(format!("{name}: {}", crate::OVERLAP));
    }
    start
        .checked_add(len)
        .filter(|end| *end <= located.digest_end && start >= located.trailer.payload_offset)
        .ok_or_else(|| format!("{name} lies outside the payload"))?;
    Ok((start, len))
}

/// Every entry under `prefix` (`wheels/`, `bytecode/`: all stored), with its byte range, in
/// the order of the zip's directory. The digest takes them in payload order (the pieces of a
/// `pysfx-payload/2` or `/3` digest that are whole entries); two that overlap are refused when
/// it is checked.
pub(crate) fn wheel_ranges<R: Read + Seek + Clone + ReadAt>(
    archive: &mut ZipArchive<R>,
    located: &Located,
    ends: &[u64],
    prefix: &[u8],
) -> Result<Vec<StoredWheel>, String> {
    let names: Vec<String> = archive
        .file_names_raw()
        .filter(|name| name.starts_with(prefix))
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    let mut wheels = Vec::with_capacity(names.len());
    for name in names {
        let range = stored_range(archive, located, ends, &name)?;
        wheels.push((name, range));
    }
    Ok(wheels)
}

fn empty_manifest() -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        pysfx_version: String::new(),
        created: None,
        app: crate::AppInfo {
            name: String::new(),
            version: None,
            files: 0,
            bytes: 0,
        },
        static_dirs: Vec::new(),
        wheels: Vec::new(),
        sets: Vec::new(),
        bootstrap: Vec::new(),
        unpacked_bytes: 0,
        stub_glibc: None,
        stub_sha256: None,
        thin_from: None,
        bytecode: Vec::new(),
        sboms: false,
    }
}

/// A byte range of a file, read with positioned reads so several threads can each read their own
/// range of one shared file handle.
#[derive(Debug, Clone)]
pub struct Section {
    file: Arc<File>,
    start: u64,
    len: u64,
    position: u64,
    /// The section's end from this offset on, read once (see [`Section::with_directory`]).
    end: Option<(u64, Arc<[u8]>)>,
}

/// How much of a section's end [`Section::with_directory`] reads to find the zip directory: its
/// end record with the longest comment a zip may have.
const TAIL_BYTES: u64 = 22 + 0xffff;
/// The largest zip directory [`Section::with_directory`] keeps in memory.
const DIRECTORY_BYTES: u64 = 16 << 20;

impl Section {
    pub fn new(file: &Arc<File>, start: u64, len: u64) -> Self {
        Section {
            file: Arc::clone(file),
            start,
            len,
            position: 0,
            end: None,
        }
    }

    /// A section holding a zip archive, whose directory (everything from the start of the
    /// central directory to the end) is read in one read and served from memory: parsing the
    /// directory then costs no read per entry. A section whose directory can't be found or is
    /// over 16 MiB, or that can't be read now, reads as [`Section::new`] does (a read error
    /// comes back from the read that meets it).
    pub fn with_directory(file: &Arc<File>, start: u64, len: u64) -> Self {
        let mut section = Section::new(file, start, len);
        let tail_from = len.saturating_sub(TAIL_BYTES);
        let Ok(tail) = section.read_range(tail_from, len) else {
            return section;
        };
        // Only the directory is kept: the batch holds every wheel's section at once.
        section.end = match find_directory(&tail) {
            Some(offset) if offset >= tail_from && offset <= len => {
                Some((offset, tail[(offset - tail_from) as usize..].into()))
            }
            Some(offset) if offset < tail_from && len - offset <= DIRECTORY_BYTES => section
                .read_range(offset, len)
                .ok()
                .map(|bytes| (offset, bytes.into())),
            _ => None,
        };
        section
    }

    /// Bytes `from..to` of the section, read from the file.
    fn read_range(&self, from: u64, to: u64) -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0u8; (to - from) as usize];
        self.file.read_exact_at(&mut bytes, self.start + from)?;
        Ok(bytes)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Reads bytes at an offset without moving a reader's position: how a member's local header
/// is read beside the zip crate's reading of the member ([`Section`], or a zip in memory).
pub trait ReadAt {
    /// Exactly `buffer.len()` bytes from `offset`, or an error (`UnexpectedEof` past the end).
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> std::io::Result<()>;
}

impl ReadAt for Section {
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> std::io::Result<()> {
        let end = offset.checked_add(buffer.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        std::os::unix::fs::FileExt::read_exact_at(&*self.file, buffer, self.start + offset)
    }
}

impl ReadAt for &File {
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(*self, buffer, offset)
    }
}

impl<T: AsRef<[u8]>> ReadAt for std::io::Cursor<T> {
    fn read_exact_at(&self, offset: u64, buffer: &mut [u8]) -> std::io::Result<()> {
        let bytes = self.get_ref().as_ref();
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        let held = (from.checked_add(buffer.len()))
            .and_then(|to| bytes.get(from..to))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buffer.copy_from_slice(held);
        Ok(())
    }
}

impl Read for Section {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let remaining = self.len.saturating_sub(self.position);
        let want = (buffer.len() as u64).min(remaining) as usize;
        if want == 0 {
            return Ok(0);
        }
        if let Some((offset, bytes)) = &self.end {
            if let Some(at) = self.position.checked_sub(*offset) {
                let held = &bytes[at as usize..];
                let read = want.min(held.len());
                buffer[..read].copy_from_slice(&held[..read]);
                self.position += read as u64;
                return Ok(read);
            }
        }
        let read = self
            .file
            .read_at(&mut buffer[..want], self.start + self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for Section {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        match target {
            Some(position) => {
                self.position = position;
                Ok(position)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the section",
            )),
        }
    }
}

/// The offset of the central directory that the zip end record in `tail` (a section's last
/// bytes) names, if `tail` has one whose comment ends the section. Zip64 archives (the record
/// says `0xffffffff`) get `None`.
fn find_directory(tail: &[u8]) -> Option<u64> {
    let last = tail.len().checked_sub(22)?;
    (0..=last).rev().find_map(|at| {
        let record = &tail[at..];
        let comment = u16::from_le_bytes([record[20], record[21]]);
        let offset = u32::from_le_bytes([record[16], record[17], record[18], record[19]]);
        let fits = record.starts_with(b"PK\x05\x06") && usize::from(comment) == record.len() - 22;
        (fits && offset != u32::MAX).then_some(u64::from(offset))
    })
}

/// What a payload digest takes as whole pieces and hashes besides ([`Payload::digest_plan`]).
struct DigestPlan {
    pieces: Vec<(u64, u64)>,
    /// What each piece is.
    kinds: Vec<Stored>,
    extra: Vec<(u64, u64)>,
    extra_kinds: Vec<Stored>,
}

/// A stored entry the digest hashes on its own: a wheel or a bundle (by its place in
/// [`Payload`]'s lists), or the stub.
#[derive(Debug, Clone, Copy)]
enum Stored {
    Wheel(usize),
    Bundle(usize),
    Stub,
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// 64 hex digits as 32 bytes.
fn unhex32(text: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(bytes)
}
