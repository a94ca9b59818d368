//! The one scan of a zip's members: every name checked once, into a [`MemberName`] that every
//! writer takes, duplicates and encrypted entries refused, each member's kind and declared size
//! read from the central directory.

use std::collections::HashSet;
use std::io::{Read, Seek};

use zip::ZipArchive;

/// A zip member name that passed [`validate_member_name`]: relative, `/`-separated, no `.` or
/// `..` components, no empty ones, no backslash, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberName(String);

impl MemberName {
    /// Checks `name`; the error is the reason it is refused.
    pub fn new(name: &str) -> Result<MemberName, &'static str> {
        validate_member_name(name)?;
        Ok(MemberName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for MemberName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for MemberName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// What a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    File { executable: bool },
    Directory,
    Symlink,
}

/// One member of a zip, as its central directory describes it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its number in the archive.
    pub index: usize,
    pub name: MemberName,
    pub kind: MemberKind,
    /// The uncompressed size the central directory declares (a reader stops one byte past it).
    pub size: u64,
    /// Where its bytes must end: the next member's local header in the order of their
    /// offsets, or the central directory. Its local header's own lengths, read only when the
    /// member is, decide where its data starts ([`data_within`]).
    pub end: u64,
}

/// Whether a member's data, starting at `data_start` (as its local header puts it) and
/// `compressed` bytes long, ends by `end` ([`Member::end`]). Otherwise a long field in its
/// local header has moved its data into another member's bytes, which would be read twice (a
/// zip bomb's trick, or a file installed with another's bytes).
pub fn data_within(data_start: u64, compressed: u64, end: u64) -> bool {
    data_start
        .checked_add(compressed)
        .is_some_and(|data_end| data_end <= end)
}

/// What [`data_within`] says of a member that fails it.
pub const OVERLAP: &str = "its bytes overlap another member's (a zip bomb's trick)";

/// For each member of `archive` (by its number), its [`Member::end`], from the central
/// directory alone.
pub fn member_ends<R: Read + Seek>(
    archive: &ZipArchive<R>,
) -> Result<Vec<u64>, zip::result::ZipError> {
    let mut starts = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        starts.push((archive.by_index_data(index)?.header_start(), index));
    }
    Ok(ends_of(starts, archive.central_directory_start()))
}

/// [`member_ends`] of the members starting at `starts` (offset, number), the directory at
/// `directory`.
fn ends_of(mut starts: Vec<(u64, usize)>, directory: u64) -> Vec<u64> {
    let mut ends = vec![directory; starts.len()];
    starts.sort_unstable();
    for pair in starts.windows(2) {
        let ((_, index), (next, _)) = (pair[0], pair[1]);
        if let Some(end) = ends.get_mut(index) {
            *end = next;
        }
    }
    ends
}

/// Why a zip's members were refused.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("not a readable zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("unsafe member {member:?}: {reason}")]
    Unsafe {
        member: String,
        reason: &'static str,
    },
}

/// Reads every member's name, kind and size; refuses unsafe or non-UTF-8 names, duplicates
/// (also `a` beside `a/`) and encrypted entries. Nothing is decompressed.
pub fn scan_members<R: Read + Seek>(archive: &mut ZipArchive<R>) -> Result<Vec<Member>, ScanError> {
    scan_naming(archive, &|_| None)
}

/// [`scan_members`], naming an entry the directory lists twice: the zip reader keeps one entry
/// per name, so the name is read again from the directory, through a copy of the reader.
pub fn scan_members_named<R: Read + Seek + Clone>(
    archive: &mut ZipArchive<R>,
) -> Result<Vec<Member>, ScanError> {
    scan_naming(archive, &|archive| duplicated_entry(archive))
}

/// The first name `archive`'s directory lists twice, read again through a copy of its reader
/// (the zip reader keeps one entry per name); `None` when it lists none or can't be read.
pub(crate) fn duplicated_entry<R: Read + Seek + Clone>(archive: &ZipArchive<R>) -> Option<String> {
    let start = archive.central_directory_start();
    duplicate_name(&mut archive.clone().into_inner(), start)
}

/// The first name that the zip directory starting at `start` in `reader` lists twice (`a`
/// and `a/` count as one); `None` when it lists none or can't be read.
fn duplicate_name(reader: &mut dyn ReadSeek, start: u64) -> Option<String> {
    let end = reader.seek(std::io::SeekFrom::End(0)).ok()?;
    let mut directory = vec![0u8; usize::try_from(end.checked_sub(start)?).ok()?];
    reader.seek(std::io::SeekFrom::Start(start)).ok()?;
    reader.read_exact(&mut directory).ok()?;
    let mut seen = HashSet::new();
    let mut rest = directory.as_slice();
    while rest.len() >= 46 && rest.starts_with(b"PK\x01\x02") {
        let field = |at: usize| usize::from(u16::from_le_bytes([rest[at], rest[at + 1]]));
        let (length, skip) = (field(28), field(30) + field(32));
        let name = String::from_utf8_lossy(rest.get(46..46 + length)?);
        if !seen.insert(name.trim_end_matches('/').to_string()) {
            return Some(name.into_owned());
        }
        rest = rest.get(46 + length + skip..)?;
    }
    None
}

/// A reader that seeks, as a trait object (one [`duplicate_name`] for every kind of reader).
trait ReadSeek: Read + Seek {}

impl<R: Read + Seek> ReadSeek for R {}

/// [`scan_members`], with `duplicate` to name an entry listed twice.
fn scan_naming<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    duplicate: &dyn Fn(&ZipArchive<R>) -> Option<String>,
) -> Result<Vec<Member>, ScanError> {
    let unsafe_member = |member: &[u8], reason| ScanError::Unsafe {
        member: String::from_utf8_lossy(member).into_owned(),
        reason,
    };
    // The zip reader keeps one entry per name, so a duplicate shows only in the count.
    if archive.has_duplicate_names() {
        let name = duplicate(archive).unwrap_or_else(|| "(central directory)".to_string());
        return Err(unsafe_member(name.as_bytes(), "duplicate entry"));
    }
    let mut members = Vec::with_capacity(archive.len());
    let mut seen = HashSet::with_capacity(archive.len());
    // Where each member's bytes lie: its local header, at least 30 bytes and its name, then
    // its compressed data.
    let mut extents = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        // The central directory's record only: no read of the member's local header.
        let entry = archive.by_index_data(index)?;
        let raw = entry.name_raw();
        let start = entry.header_start();
        let length = (30 + raw.len() as u64).saturating_add(entry.compressed_size());
        extents.push((start, start.saturating_add(length), index));
        let text = std::str::from_utf8(raw).map_err(|_| unsafe_member(raw, "name is not UTF-8"))?;
        let name = MemberName::new(text).map_err(|reason| unsafe_member(raw, reason))?;
        if !seen.insert(text.trim_end_matches('/').to_string()) {
            return Err(unsafe_member(raw, "duplicate entry"));
        }
        if entry.encrypted() {
            return Err(unsafe_member(raw, "encrypted entry"));
        }
        let kind = if entry.is_symlink() {
            MemberKind::Symlink
        } else if entry.is_dir() {
            MemberKind::Directory
        } else {
            MemberKind::File {
                executable: is_executable(entry.external_attributes()),
            }
        };
        members.push(Member {
            index,
            name,
            kind,
            size: entry.size(),
            end: 0,
        });
    }
    // Two members whose bytes overlap — several directory records naming one local entry,
    // or one member's data holding another's header — make a few bytes inflate many times
    // over (a zip bomb's trick, which no zip writer produces).
    extents.sort_unstable();
    for pair in extents.windows(2) {
        let ((_, end, _), (next, _, index)) = (pair[0], pair[1]);
        if next < end {
            let name = members
                .get(index)
                .map(|m| m.name.as_str())
                .unwrap_or_default();
            return Err(unsafe_member(name.as_bytes(), OVERLAP));
        }
    }
    // (In order already: `ends_of` sorts them again in one pass.)
    let starts = (extents.iter())
        .map(|&(start, _, index)| (start, index))
        .collect();
    for (member, end) in members
        .iter_mut()
        .zip(ends_of(starts, archive.central_directory_start()))
    {
        member.end = end;
    }
    Ok(members)
}

/// Whether a file member is executable: the top 16 bits of its external attributes are a
/// mode with an execute bit, of a regular file or of no file type, whichever system the zip
/// says made the entry. A wheel repacked on Windows keeps its Unix modes there, and pip
/// installs them (`unzip` would ignore them); a mode with no file type (`0o755 << 16`, as
/// wheels written by hand with `zipfile` have) keeps its execute bit too, as SPEC keeps the
/// executable bit (uv does, pip does not).
fn is_executable(external_attributes: u32) -> bool {
    let mode = external_attributes >> 16;
    matches!(mode & 0o170000, 0 | 0o100000) && mode & 0o111 != 0
}

/// The longest member name a payload or a wheel may hold.
pub const MAX_NAME_BYTES: usize = 2048;

/// Checks a zip member name: non-empty, relative, `/`-separated, with no `.` or `..`
/// components, no empty components (a directory's trailing `/` aside), no backslash, and no
/// NUL or control characters. Returns the reason when it is refused.
pub fn validate_member_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.chars().any(char::is_control) {
        return Err("control character in name");
    }
    if name.contains('\\') {
        return Err("backslash in name");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    // PATH_MAX is 4096 with DEST and site-packages in front: longer fails only when written.
    if name.len() > MAX_NAME_BYTES {
        return Err("a path longer than 2048 bytes");
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    for component in trimmed.split('/') {
        match component {
            "" => return Err("empty path component"),
            "." => return Err("'.' path component"),
            ".." => return Err("'..' path component"),
            // NAME_MAX: longer fails only when written, after other files were.
            _ if component.len() > 255 => return Err("a path component longer than 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

/// The first member whose local header names it otherwise than the zip's central directory
/// does, as `(central name, local name)` (the local one empty when its header cannot be read):
/// Python's `zipfile`, and so pip, refuses such a zip, and the install, which goes by the
/// central directory alone, would write the member under the other name. `len` is the zip's
/// length and `read_at(offset, buffer)` reads its bytes from that offset.
pub fn local_name_mismatch<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    len: u64,
    read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
) -> Result<Option<(String, String)>, zip::result::ZipError> {
    for index in 0..archive.len() {
        let (central, header) = {
            let member = archive.by_index_raw(index)?;
            (member.name_raw().to_vec(), member.header_start())
        };
        // The fixed part of a local header is 30 bytes: its signature, then the name's length
        // at 26.
        let mut fixed = [0u8; 30];
        let local = read_at(header, &mut fixed)
            .ok()
            .filter(|()| fixed[..4] == *b"PK\x03\x04")
            .map(|()| usize::from(u16::from_le_bytes([fixed[26], fixed[27]])))
            .filter(|length| header.saturating_add(30 + *length as u64) <= len)
            .and_then(|length| {
                let mut name = vec![0u8; length];
                read_at(header + 30, &mut name).ok()?;
                Some(name)
            });
        if local.as_deref() != Some(central.as_slice()) {
            return Ok(Some((
                String::from_utf8_lossy(&central).into_owned(),
                String::from_utf8_lossy(local.as_deref().unwrap_or_default()).into_owned(),
            )));
        }
    }
    Ok(None)
}

/// The first member whose local header gives another compression method, CRC-32 or size than
/// the central directory, as `(name, what differs)`: `unzip` reports such a zip damaged. A
/// header whose flags say the CRC and sizes follow the data (bit 3), or whose sizes are in a
/// zip64 field, is held to its method alone. (For a zip of pysfx's writing, which has
/// neither: wheels are made by many tools, and pip reads none of these fields.)
pub fn local_fields_mismatch<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
) -> Result<Option<(String, &'static str)>, zip::result::ZipError> {
    for index in 0..archive.len() {
        let member = archive.by_index_raw(index)?;
        let name = String::from_utf8_lossy(member.name_raw()).into_owned();
        let mut fixed = [0u8; 30];
        let differs = match read_at(member.header_start(), &mut fixed) {
            Ok(()) => local_fields_differ(&fixed, &member),
            Err(_) => Some(UNREADABLE_LOCAL_HEADER),
        };
        if let Some(differs) = differs {
            return Ok(Some((name, differs)));
        }
    }
    Ok(None)
}

const UNREADABLE_LOCAL_HEADER: &str = "its local header cannot be read";

/// What member `index`'s local header says otherwise than the central directory — its name,
/// compression method, CRC-32 or sizes — for a reader about to read the member by the
/// directory: `unzip` reads by the local header, and would read other bytes. `None` when they
/// agree. Read through a copy of the archive's reader (one read, no position moved).
pub fn local_header_differs<R: Read + Seek + Clone + crate::ReadAt>(
    archive: &mut ZipArchive<R>,
    index: usize,
) -> Result<Option<&'static str>, zip::result::ZipError> {
    let reader = archive.clone().into_inner();
    let member = archive.by_index_raw(index)?;
    let name = member.name_raw();
    let mut local = vec![0u8; 30 + name.len()];
    if reader
        .read_exact_at(member.header_start(), &mut local)
        .is_err()
    {
        return Ok(Some(UNREADABLE_LOCAL_HEADER));
    }
    let (fixed, local_name) = local.split_at(30);
    let fixed: &[u8; 30] = fixed.try_into().unwrap_or(&[0; 30]);
    let named = usize::from(u16::from_le_bytes([fixed[26], fixed[27]]));
    Ok(match named == name.len() && local_name == name {
        true => local_fields_differ(fixed, &member),
        false => Some("its local header names another file than the central directory"),
    })
}

/// What the fixed part of `member`'s local header (its first 30 bytes) says otherwise than
/// the central directory: its compression method, encryption, CRC-32 or sizes (see
/// [`local_fields_mismatch`]); `None` when they agree.
pub fn local_fields_differ<R: Read>(
    fixed: &[u8; 30],
    member: &zip::read::ZipFile<'_, R>,
) -> Option<&'static str> {
    let field =
        |at: usize| u32::from_le_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]]);
    if fixed[..4] != *b"PK\x03\x04" {
        return Some(UNREADABLE_LOCAL_HEADER);
    }
    let method = match member.compression() {
        zip::CompressionMethod::Stored => 0,
        zip::CompressionMethod::Deflated => 8,
        _ => return Some("its compression method is neither stored nor deflate"),
    };
    if u16::from_le_bytes([fixed[8], fixed[9]]) != method {
        return Some(
            "its local header gives another compression method than the central directory",
        );
    }
    // Encrypted (flag bits 0 and 6): `unzip` would decrypt what the directory says is plain.
    if fixed[6] & 0x41 != 0 {
        return Some("its local header marks it encrypted");
    }
    let descriptor = fixed[6] & 0x08 != 0;
    let (compressed, size) = (field(18), field(22));
    if descriptor || compressed == u32::MAX || size == u32::MAX {
        return None;
    }
    if field(14) != member.crc32() {
        return Some("its local header gives another CRC-32 than the central directory");
    }
    if u64::from(compressed) != member.compressed_size() || u64::from(size) != member.size() {
        return Some("its local header gives other sizes than the central directory");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip of `a` and `b`, both stored, whose second directory record points at `a`'s local
    /// header when `alias` (and is otherwise untouched).
    fn two_members(alias: bool) -> Vec<u8> {
        use std::io::Write;
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for name in ["a", "b"] {
            writer.start_file(name, options).expect("start");
            writer.write_all(&[0u8; 1000]).expect("write");
        }
        let mut bytes = writer.finish().expect("finish").into_inner();
        if alias {
            let second = (bytes.windows(4))
                .enumerate()
                .filter(|(_, window)| *window == b"PK\x01\x02")
                .nth(1)
                .map(|(at, _)| at)
                .expect("a second directory record");
            bytes[second + 42..second + 46].copy_from_slice(&0u32.to_le_bytes());
        }
        bytes
    }

    /// Several directory records naming one local entry make its bytes count many times (an
    /// overlapping-entry zip bomb): refused, naming a member, before anything is inflated.
    #[test]
    fn members_whose_bytes_overlap_are_refused() {
        let mut good = ZipArchive::new(std::io::Cursor::new(two_members(false))).expect("zip");
        assert_eq!(scan_members(&mut good).expect("scan").len(), 2);
        let mut aliased = ZipArchive::new(std::io::Cursor::new(two_members(true))).expect("zip");
        let error = scan_members(&mut aliased).expect_err("overlap");
        assert!(error.to_string().contains("overlap"), "{error}");
    }

    /// Each member must end where the next one's local header begins, the last where the
    /// directory does; the scan and `member_ends` say the same. A member's data may end there
    /// and no further.
    #[test]
    fn each_member_ends_where_the_next_begins() {
        let bytes = two_members(false);
        let starts: Vec<u64> = (bytes.windows(4).enumerate())
            .filter(|(_, window)| *window == b"PK\x03\x04")
            .map(|(at, _)| at as u64)
            .collect();
        let mut archive = ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
        let directory = archive.central_directory_start();
        let members = scan_members(&mut archive).expect("scan");
        let ends: Vec<u64> = members.iter().map(|member| member.end).collect();
        assert_eq!(ends, [starts[1], directory]);
        assert_eq!(member_ends(&archive).expect("ends"), ends);
        assert!(data_within(starts[1] - 5, 5, starts[1]));
        assert!(!data_within(starts[1] - 5, 6, starts[1]));
        assert!(!data_within(u64::MAX, 1, u64::MAX));
    }

    /// The executable bit: a mode with an execute bit in the top of the external attributes,
    /// a regular file's or one with no file type, whichever system made the entry (MS-DOS
    /// here, as a wheel repacked on Windows says); not a directory's or a link's mode.
    #[test]
    fn the_executable_bit_is_read_as_pip_reads_it() {
        use std::io::Write;
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, mode) in [
            ("tool", 0o755),
            ("data", 0o644),
            ("bare", 0o755),
            ("dir", 0o755),
        ] {
            writer
                .start_file(name, options.unix_permissions(mode))
                .expect("start");
            writer.write_all(b"#!/bin/sh\n").expect("write");
        }
        let mut bytes = writer.finish().expect("finish").into_inner();
        let records: Vec<usize> = (0..bytes.len() - 4)
            .filter(|&at| &bytes[at..at + 4] == b"PK\x01\x02")
            .collect();
        assert_eq!(records.len(), 4);
        for &at in &records {
            bytes[at + 5] = 0; // made by: MS-DOS
        }
        // "bare": the mode alone, no file type; "dir": a directory's mode on a file's name.
        bytes[records[2] + 38..records[2] + 42].copy_from_slice(&(0o755u32 << 16).to_le_bytes());
        bytes[records[3] + 38..records[3] + 42].copy_from_slice(&(0o040755u32 << 16).to_le_bytes());
        let mut archive = ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
        let kinds: Vec<(String, MemberKind)> = scan_members(&mut archive)
            .expect("scan")
            .into_iter()
            .map(|member| (member.name.as_str().to_string(), member.kind))
            .collect();
        let file = |executable| MemberKind::File { executable };
        assert_eq!(
            kinds,
            [
                ("tool".to_string(), file(true)),
                ("data".to_string(), file(false)),
                ("bare".to_string(), file(true)),
                ("dir".to_string(), file(false)),
            ]
        );
    }

    /// The zip reader keeps one entry per name; the scan still names the one listed twice.
    #[test]
    fn an_entry_listed_twice_is_named() {
        use std::io::Write;
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for name in ["pkg/first.py", "pkg/other.py", "pkg/third.py"] {
            writer.start_file(name, options).expect("start");
            writer.write_all(b"x = 1\n").expect("write");
        }
        let mut bytes = writer.finish().expect("finish").into_inner();
        // The third entry renamed to the first's name, in its local header and its record.
        let (third, first) = (b"pkg/third.py", b"pkg/first.py");
        let at: Vec<usize> = (0..bytes.len() - third.len())
            .filter(|&at| &bytes[at..at + third.len()] == third)
            .collect();
        assert_eq!(at.len(), 2, "a local header and a directory record");
        for at in at {
            bytes[at..at + first.len()].copy_from_slice(first);
        }
        let mut archive = ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
        assert!(archive.has_duplicate_names());
        let error = scan_members_named(&mut archive).expect_err("a duplicate");
        assert_eq!(
            error.to_string(),
            ScanError::Unsafe {
                member: "pkg/first.py".into(),
                reason: "duplicate entry"
            }
            .to_string()
        );
        let error = scan_members(&mut archive).expect_err("a duplicate");
        assert!(error.to_string().contains("duplicate entry"), "{error}");
    }

    #[test]
    fn member_names() {
        let long = format!("pkg/{}.py", "x".repeat(253));
        let deep = format!("pkg/{}x.py", "d/".repeat(1100));
        let cases = [
            ("pkg/__init__.py", Ok(())),
            ("pkg/", Ok(())),
            ("pkg-1.0.data/scripts/tool", Ok(())),
            ("a/..b/c", Ok(())),
            (deep.as_str(), Err("a path longer than 2048 bytes")),
            ("", Err("empty name")),
            ("/etc/passwd", Err("absolute path")),
            ("../evil", Err("'..' path component")),
            ("pkg/../../evil", Err("'..' path component")),
            ("pkg/./x", Err("'.' path component")),
            ("pkg//x", Err("empty path component")),
            ("pkg\\..\\x", Err("backslash in name")),
            ("pkg/x\0.py", Err("control character in name")),
            ("pkg/x\n.py", Err("control character in name")),
            ("pkg/x\u{85}.py", Err("control character in name")),
            (&long, Err("a path component longer than 255 bytes")),
        ];
        for (name, expected) in cases {
            assert_eq!(validate_member_name(name), expected, "{name:?}");
        }
    }
}
