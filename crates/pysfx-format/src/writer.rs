//! Writing a payload after the stub bytes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::digest::{digest_range, DigestScheme};
use crate::{locate, FormatError, Manifest, Trailer, MANIFEST_NAME};

/// How one payload entry is stored.
#[derive(Debug, Clone, Copy)]
pub struct EntryOptions {
    /// Deflate (app and static files) or store (wheels, so the stub reads them in place).
    pub compress: bool,
    pub executable: bool,
    /// The number of bytes the entry's reader yields. It decides whether the entry needs zip64
    /// sizes, and [`PayloadWriter::add`] fails when the reader yields another number (a file
    /// that changed while it was packed).
    pub size: u64,
}

/// Entries whose written size may reach 4 GiB - 1 (the zip32 size fields' limit, which marks
/// a zip64 value) get zip64 sizes; every other entry stays plain zip 2.0, so the artifact of
/// ordinary inputs does not change.
fn needs_zip64(entry: EntryOptions) -> bool {
    const LIMIT: u64 = u32::MAX as u64;
    let written = if entry.compress {
        // Deflate can grow incompressible data: by at most 5 bytes per 16 KiB block in
        // zlib's worst case (deflateBound); allow twice that and some.
        entry.size + entry.size / 1024 + 1024
    } else {
        entry.size
    };
    entry.size >= LIMIT || written >= LIMIT
}

/// Writes `stub ‖ zip payload ‖ trailer` into a file. Entries must be added in the order they
/// should appear (the packer sorts them), the manifest first.
pub struct PayloadWriter {
    zip: ZipWriter<Sink>,
    path: PathBuf,
    payload_offset: u64,
    time: DateTime,
}

impl PayloadWriter {
    /// Creates `path`, writes the stub bytes into it, and prepares the zip that follows.
    /// `epoch` is the fixed timestamp given to every entry.
    pub fn create(path: &Path, stub: &[u8], epoch: u64) -> Result<Self, FormatError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|error| FormatError::io(path, error))?;
        PayloadWriter::with_file(file, path, stub, epoch)
    }

    /// [`PayloadWriter::create`] into `file`, opened (for reading and writing, empty) by the
    /// caller as it sees fit; `path` names it in errors.
    pub fn with_file(
        mut file: std::fs::File,
        path: &Path,
        stub: &[u8],
        epoch: u64,
    ) -> Result<Self, FormatError> {
        file.write_all(stub)
            .map_err(|error| FormatError::io(path, error))?;
        Ok(PayloadWriter {
            zip: ZipWriter::new(Sink { file, failed: None }),
            path: path.to_path_buf(),
            payload_offset: stub.len() as u64,
            time: zip_time(epoch),
        })
    }

    fn options(&self, entry: EntryOptions) -> SimpleFileOptions {
        SimpleFileOptions::default()
            .compression_method(if entry.compress {
                CompressionMethod::Deflated
            } else {
                CompressionMethod::Stored
            })
            .last_modified_time(self.time)
            .unix_permissions(if entry.executable { 0o755 } else { 0o644 })
            .large_file(needs_zip64(entry))
    }

    /// Adds the manifest; call it before any other entry.
    pub fn add_manifest(&mut self, manifest: &Manifest) -> Result<(), FormatError> {
        let text = manifest.to_json().map_err(|error| FormatError::Malformed {
            path: self.path.clone(),
            reason: error.to_string(),
        })?;
        self.add(
            MANIFEST_NAME,
            &mut text.as_slice(),
            EntryOptions {
                compress: true,
                executable: false,
                size: text.len() as u64,
            },
        )
    }

    /// Adds one file entry, copying its content from `reader`.
    pub fn add(
        &mut self,
        name: &str,
        reader: &mut dyn Read,
        entry: EntryOptions,
    ) -> Result<(), FormatError> {
        let options = self.options(entry);
        let path = self.path.clone();
        self.zip
            .start_file(name, options)
            .map_err(|source| FormatError::Zip {
                path: path.clone(),
                source,
            })?;
        let copied =
            std::io::copy(reader, &mut self.zip).map_err(|error| FormatError::io(&path, error))?;
        if copied != entry.size {
            return Err(FormatError::io(
                &path,
                std::io::Error::other(format!(
                    "{name}: expected {} bytes, read {copied} (did it change while packing?)",
                    entry.size
                )),
            ));
        }
        Ok(())
    }

    /// Adds a symbolic link entry: unix mode `S_IFLNK | 0777`, its content the target, stored
    /// (as Info-ZIP writes links, so `unzip` recreates them).
    pub fn add_symlink(&mut self, name: &str, target: &str) -> Result<(), FormatError> {
        let options = SimpleFileOptions::default()
            .last_modified_time(self.time)
            .unix_permissions(0o777);
        self.zip
            .add_symlink(name, target, options)
            .map_err(|source| FormatError::Zip {
                path: self.path.clone(),
                source,
            })
    }

    /// Writes the central directory and the trailer, whose digest covers everything written
    /// after the stub. Returns the trailer.
    pub fn finish(mut self) -> Result<Trailer, FormatError> {
        let path = self.path.clone();
        // A placeholder of the right length; patched below once the digest is known.
        let placeholder = Trailer {
            payload_offset: self.payload_offset,
            sha256: [0; 32],
            scheme: DigestScheme::Entries,
        };
        self.zip
            .set_comment(placeholder.encode())
            .map_err(|source| FormatError::Zip {
                path: path.clone(),
                source,
            })?;
        let sink = self.zip.finish().map_err(|source| FormatError::Zip {
            path: path.clone(),
            source,
        })?;
        if sink.failed.is_some() {
            // (`add` returned that error already; a caller that went on gets it again.)
            let error = std::io::Error::other("an earlier write to it failed");
            return Err(FormatError::io(&path, error));
        }
        let mut file = sink.file;
        let located = locate(&mut file, &path)?;
        // The wheels and the byte-code bundles, each a piece of the digest, in payload order.
        let mut ranges: Vec<(u64, u64)> = {
            let mut archive = zip::ZipArchive::new(&file).map_err(|source| FormatError::Zip {
                path: path.clone(),
                source,
            })?;
            let ends = crate::member_ends(&archive).map_err(|source| FormatError::Zip {
                path: path.clone(),
                source,
            })?;
            let mut stored = |prefix: &[u8]| {
                crate::reader::wheel_ranges(&mut archive, &located, &ends, prefix).map_err(
                    |reason| FormatError::Malformed {
                        path: path.clone(),
                        reason,
                    },
                )
            };
            let mut entries = stored(b"wheels/")?;
            entries.extend(stored(b"bytecode/")?);
            entries.into_iter().map(|(_, range)| range).collect()
        };
        ranges.sort_unstable();
        let range = (self.payload_offset, located.digest_end);
        let digested = digest_range(&file, &path, range, &ranges, &[], DigestScheme::Entries)?;
        let trailer = Trailer {
            payload_offset: self.payload_offset,
            sha256: digested.root,
            scheme: DigestScheme::Entries,
        };
        let comment_start = located.file_len - crate::TRAILER_LEN as u64;
        file.seek(SeekFrom::Start(comment_start))
            .and_then(|_| file.write_all(trailer.encode().as_bytes()))
            .and_then(|_| file.sync_all())
            .map_err(|error| FormatError::io(&path, error))?;
        Ok(trailer)
    }
}

/// The artifact's file as the zip writer sees it: after its first failed write (a full disk),
/// writes are dropped and reported done, at a position kept here as if they had been made. A
/// `ZipWriter` dropped unfinished — the pack failed — writes its central directory once more,
/// and prints to stderr, unasked, when that fails too; the file is removed by the caller.
/// [`PayloadWriter::finish`] refuses a file that failed.
struct Sink {
    file: File,
    /// After a failure: the position and the end the dropped writes would have given.
    failed: Option<(u64, u64)>,
}

impl Sink {
    fn failing(&mut self, error: std::io::Error) -> std::io::Error {
        if error.kind() != std::io::ErrorKind::Interrupted && self.failed.is_none() {
            let position = self.file.stream_position().unwrap_or(0);
            let end = self.file.metadata().map_or(0, |metadata| metadata.len());
            self.failed = Some((position, end.max(position)));
        }
        error
    }
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match &mut self.failed {
            Some((position, end)) => {
                *position = position.saturating_add(bytes.len() as u64);
                *end = (*end).max(*position);
                Ok(bytes.len())
            }
            None => self.file.write(bytes).map_err(|error| self.failing(error)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.failed {
            Some(_) => Ok(()),
            None => self.file.flush().map_err(|error| self.failing(error)),
        }
    }
}

impl Seek for Sink {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let Some((position, end)) = &mut self.failed else {
            return self.file.seek(to);
        };
        let new = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::Current(delta) => position.checked_add_signed(delta),
            SeekFrom::End(delta) => end.checked_add_signed(delta),
        };
        *position = new.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        Ok(*position)
    }
}

/// Zip timestamps run from 1980-01-01 to 2107-12-31 23:59:58; an epoch outside is clamped to
/// the nearer end, as a whole.
fn zip_time(epoch: u64) -> DateTime {
    let epoch = epoch.clamp(315_532_800, 4_354_819_198);
    let days = epoch / 86_400;
    let seconds = epoch % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for the Gregorian calendar.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    DateTime::from_date_and_time(
        year,
        month,
        day,
        (seconds / 3600) as u8,
        ((seconds % 3600) / 60) as u8,
        (seconds % 60) as u8,
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip64_only_for_entries_that_may_reach_4_gib() {
        const GIB: u64 = 1 << 30;
        let limit = u64::from(u32::MAX);
        let cases = [
            (0, false, false),
            (0, true, false),
            (100 * 1024 * 1024, true, false),
            (limit - 1, false, false),
            (limit, false, true),
            (4 * GIB + 1, false, true),
            (4 * GIB + 1, true, true),
            // Deflate may grow it past the limit.
            (limit - 1, true, true),
            (limit - 4_000_000, true, true),
            (limit - 5 * 1024 * 1024, true, false),
        ];
        for (size, compress, expected) in cases {
            let entry = EntryOptions {
                compress,
                executable: false,
                size,
            };
            assert_eq!(
                needs_zip64(entry),
                expected,
                "{size} bytes, compress {compress}"
            );
        }
    }

    /// Writes `bytes` to `path` with `trailer` in place of the one ending at `digest_end`, and
    /// verifies the result.
    fn verify_with(
        path: &Path,
        bytes: &[u8],
        digest_end: u64,
        trailer: Trailer,
    ) -> Result<(), FormatError> {
        let mut rewritten = bytes[..digest_end as usize].to_vec();
        rewritten.extend_from_slice(trailer.encode().as_bytes());
        std::fs::write(path, &rewritten).expect("write");
        crate::Payload::open(path).expect("open").verify()
    }

    fn manifest() -> Manifest {
        serde_json::from_str(
            r#"{"format_version": 1, "pysfx_version": "test", "app": {"name": "app", "files": 0,
                "bytes": 0}, "wheels": [], "sets": [], "unpacked_bytes": 0}"#,
        )
        .expect("manifest")
    }

    #[test]
    fn a_payload_with_zip64_end_records_is_located_read_and_verified() {
        // More than 65,535 entries need the zip64 end-of-central-directory record and locator;
        // the classic record with the trailer still ends the file.
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("many.sfx");
        let mut writer = PayloadWriter::create(&path, b"stub bytes", 0).expect("create");
        writer.add_manifest(&manifest()).expect("manifest");
        let count = 70_000;
        for index in 0..count {
            let options = EntryOptions {
                compress: false,
                executable: false,
                size: 1,
            };
            writer
                .add(&format!("app/{index:05}"), &mut &b"x"[..], options)
                .expect("add");
        }
        let trailer = writer.finish().expect("finish");
        let bytes = std::fs::read(&path).expect("read");
        let zip64_end = [0x50, 0x4b, 0x06, 0x06];
        assert!(
            bytes.windows(4).any(|window| window == zip64_end),
            "no zip64 end record"
        );
        let mut payload = crate::Payload::open(&path).expect("open");
        assert_eq!(payload.located().trailer, trailer);
        payload.verify().expect("verify");
        assert_eq!(payload.archive().len(), count + 1);
        let mut entry = payload.archive().by_name("app/69999").expect("entry");
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("read");
        assert_eq!(text, "x");
    }

    #[test]
    fn a_write_that_failed_fails_the_payload_and_nothing_is_written_after_it() {
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let path = Path::new("/dev/full");
        let mut writer = PayloadWriter::create(path, b"", 0).expect("open /dev/full");
        let error = writer.add_manifest(&manifest()).expect_err("a full disk");
        assert!(error.to_string().contains("No space left"), "{error}");
        assert!(writer
            .zip
            .get_ref()
            .is_some_and(|sink| sink.failed.is_some()));
        // What the zip writer still writes (its directory, when dropped unfinished) is
        // dropped, and finishing fails.
        let error = writer.finish().expect_err("finished after a failed write");
        assert!(error.to_string().contains("an earlier write"), "{error}");
    }

    #[test]
    fn a_payload_with_two_entries_of_one_name_is_refused_at_open() {
        // The zip reader keeps the last of two entries of one name: every reader (the install,
        // --sbom, --list, inspect) would see that one, so none may open such a payload.
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("twice.sfx");
        let mut writer = PayloadWriter::create(&path, b"stub bytes", 0).expect("create");
        writer.add_manifest(&manifest()).expect("manifest");
        for (name, text) in [(".pysfx/a.json", b"{}"), (".pysfx/b.json", b"[]")] {
            let options = EntryOptions {
                compress: false,
                executable: false,
                size: 2,
            };
            writer.add(name, &mut &text[..], options).expect("add");
        }
        writer.finish().expect("finish");
        crate::Payload::open(&path).expect("two names: opens");
        // The second entry renamed as the first, in its local header and the directory.
        let mut bytes = std::fs::read(&path).expect("read");
        let mut renamed = 0;
        for at in 0..bytes.len() - 13 {
            if &bytes[at..at + 13] == b".pysfx/b.json" {
                bytes[at + 7] = b'a';
                renamed += 1;
            }
        }
        assert_eq!(renamed, 2);
        std::fs::write(&path, &bytes).expect("write");
        match crate::Payload::open(&path) {
            Err(error @ FormatError::Malformed { .. }) => {
                assert!(
                    error
                        .to_string()
                        .contains("two entries named \".pysfx/a.json\""),
                    "{error}"
                )
            }
            Err(error) => panic!("refused for another reason: {error}"),
            Ok(_) => panic!("a payload with two entries of one name opened"),
        }
    }

    #[test]
    fn the_file_digest_and_the_payload_digest_are_two_things() {
        use sha2::{Digest, Sha256};
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("a.sfx");
        let mut writer = PayloadWriter::create(&path, b"stub bytes", 0).expect("create");
        writer.add_manifest(&manifest()).expect("manifest");
        writer.add_symlink("app/link", "target").expect("link");
        writer.finish().expect("finish");
        let bytes = std::fs::read(&path).expect("read");
        let mut payload = crate::Payload::open(&path).expect("open");
        let file = payload.verify_and_digest_file().expect("verify");
        assert_eq!(file, crate::hex(&Sha256::digest(&bytes)));
        assert_ne!(file, payload.digest());
        // One payload byte flipped: the payload digest no longer holds.
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        std::fs::write(&path, &damaged).expect("write");
        let mut payload = crate::Payload::open(&path).expect("open");
        assert!(matches!(
            payload.verify_and_digest_file(),
            Err(FormatError::DigestMismatch { .. })
        ));
        // A stub byte is not the payload's.
        let mut stub_damaged = bytes;
        stub_damaged[0] ^= 1;
        std::fs::write(&path, &stub_damaged).expect("write");
        let mut payload = crate::Payload::open(&path).expect("open");
        assert!(payload.verify_and_digest_file().is_ok());
    }

    /// An artifact of pysfx 0.1 (`pysfx-payload/1`, the plain SHA-256 of the payload) is still
    /// read and checked; the same bytes under a `/2` trailer are not, since the two digests
    /// differ.
    #[test]
    fn a_whole_payload_digest_of_pysfx_0_1_is_still_checked() {
        use sha2::{Digest, Sha256};
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("old.sfx");
        let mut writer = PayloadWriter::create(&path, b"stub bytes", 0).expect("create");
        writer.add_manifest(&manifest()).expect("manifest");
        let pieces = writer.finish().expect("finish");
        assert_eq!(pieces.scheme, DigestScheme::Entries);
        let bytes = std::fs::read(&path).expect("read");
        let located = crate::Payload::open(&path)
            .expect("open")
            .located()
            .to_owned();
        let payload_bytes = &bytes[pieces.payload_offset as usize..located.digest_end as usize];
        let rewrite = |trailer| verify_with(&path, &bytes, located.digest_end, trailer);
        let whole = Trailer {
            sha256: Sha256::digest(payload_bytes).into(),
            scheme: DigestScheme::Whole,
            ..pieces
        };
        rewrite(whole).expect("a /1 trailer with the payload's SHA-256");
        assert!(matches!(
            rewrite(Trailer {
                scheme: DigestScheme::Entries,
                ..whole
            }),
            Err(FormatError::DigestMismatch { .. })
        ));
        assert!(matches!(
            rewrite(Trailer {
                scheme: DigestScheme::Whole,
                ..pieces
            }),
            Err(FormatError::DigestMismatch { .. })
        ));
        rewrite(pieces).expect("the packer's own trailer");
    }

    /// The packer's digest (`pysfx-payload/3`) takes each stored wheel and byte-code bundle
    /// as a piece of its own; an artifact of the earlier `/2` digest (the wheels whole, the
    /// bundles cut with what lies between) is still read and checked; and neither digest
    /// passes under the other's name.
    #[test]
    fn bundles_are_pieces_of_the_digest_and_a_wheels_only_digest_is_still_checked() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("a.sfx");
        let mut writer = PayloadWriter::create(&path, b"stub bytes", 0).expect("create");
        writer.add_manifest(&manifest()).expect("manifest");
        let stored = |size: u64| EntryOptions {
            compress: false,
            executable: false,
            size,
        };
        let wheel: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let bundle: Vec<u8> = (0..7000u32).map(|i| (i % 241) as u8).collect();
        let (wheel_name, bundle_name) = ("wheels/aa/w-1.0-py3-none-any.whl", "bytecode/aa/c.zip");
        (writer.add(wheel_name, &mut wheel.as_slice(), stored(5000))).expect("wheel");
        (writer.add("app/x.py", &mut &b"x = 1\n"[..], stored(6))).expect("app");
        (writer.add(bundle_name, &mut bundle.as_slice(), stored(7000))).expect("bundle");
        let entries = writer.finish().expect("finish");
        assert_eq!(entries.scheme, DigestScheme::Entries);
        let mut payload = crate::Payload::open(&path).expect("open");
        payload.verify().expect("the packer's own trailer");
        let located = payload.located().to_owned();
        let ranges = [
            payload.stored_range(wheel_name).expect("wheel"),
            payload.stored_range(bundle_name).expect("bundle"),
        ];
        let file = std::fs::File::open(&path).expect("open");
        let range = (entries.payload_offset, located.digest_end);
        let digest = |ranges: &[(u64, u64)]| {
            let scheme = DigestScheme::Pieces;
            (digest_range(&file, &path, range, ranges, &[], scheme).expect("digest")).root
        };
        assert_eq!(
            digest(&ranges),
            entries.sha256,
            "the bundle a piece of its own"
        );
        let wheels_only = digest(&ranges[..1]);
        assert_ne!(wheels_only, entries.sha256);
        let bytes = std::fs::read(&path).expect("read");
        let rewrite = |trailer| verify_with(&path, &bytes, located.digest_end, trailer);
        let pieces = Trailer {
            sha256: wheels_only,
            scheme: DigestScheme::Pieces,
            ..entries
        };
        rewrite(pieces).expect("a /2 trailer with the wheels-only digest");
        for (label, trailer) in [
            (
                "/3 over wheels only",
                Trailer {
                    scheme: DigestScheme::Entries,
                    ..pieces
                },
            ),
            (
                "/2 over wheels and bundles",
                Trailer {
                    scheme: DigestScheme::Pieces,
                    ..entries
                },
            ),
        ] {
            assert!(
                matches!(rewrite(trailer), Err(FormatError::DigestMismatch { .. })),
                "{label}"
            );
        }
    }

    #[test]
    fn an_entry_whose_reader_yields_another_size_is_refused() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("a.sfx");
        let mut writer = PayloadWriter::create(&path, b"stub", 0).expect("create");
        let options = EntryOptions {
            compress: true,
            executable: false,
            size: 10,
        };
        let error = writer
            .add("app/grown.py", &mut &b"eleven byte"[..], options)
            .expect_err("a size mismatch");
        assert!(error.to_string().contains("app/grown.py"), "{error}");
    }

    #[test]
    fn zip_time_from_epoch() {
        let cases = [
            (0u64, (1980, 1, 1, 0, 0, 0)),
            (315_532_800, (1980, 1, 1, 0, 0, 0)),
            (1_700_000_000, (2023, 11, 14, 22, 13, 20)),
            (951_782_400, (2000, 2, 29, 0, 0, 0)),
            (315_532_799, (1980, 1, 1, 0, 0, 0)),
            (99_999_999_999, (2107, 12, 31, 23, 59, 58)),
        ];
        for (epoch, (y, mo, d, h, mi, s)) in cases {
            let time = zip_time(epoch);
            assert_eq!(
                (
                    time.year(),
                    time.month(),
                    time.day(),
                    time.hour(),
                    time.minute(),
                    time.second()
                ),
                (y, mo, d, h, mi, s),
                "epoch {epoch}"
            );
        }
    }
}
