//! Reading one zip member's bytes as they were stored: inflated with this thread's one
//! decompressor, reset for each member, and checked against the member's CRC-32 at its end.
//!
//! A deflated member of at most [`WHOLE_BYTES`] is inflated in one call by libdeflate, from
//! this thread's buffer into the caller's when it has room (a copy into a tree reads 128 KiB
//! at a time), else into a second buffer of this thread's. A larger member is streamed through
//! zlib-rs, so no buffer grows with the largest member a wheel holds. libdeflate inflates the
//! popular corpus's members of up to 256 KiB in 60 % of zlib-rs's time (0.43 s against 0.71 s
//! for their 426 MB), and those members hold 42 % of the bytes that corpus inflates (55 % for
//! the Django corpus). Larger bounds gained little more (0.52 s against 0.87 s up to 1 MiB) and
//! cost each thread its buffers' size in peak RSS.
//!
//! libdeflate is more lenient than zlib on a few malformed streams (length symbols 286 and 287,
//! distance codes 30 and 31, oversized code counts), which zlib-rs and pip refuse: a small
//! member of such a stream is read, a large one refused. What it yields is still held to all
//! the install checks of a member — no more bytes than declared, its CRC-32, its hash in
//! RECORD — so a crafted stream gives nothing a valid one could not (found by a review that
//! compared both paths with zlib over 200,000 mutated streams).
//!
//! The zip crate's own reader allocates a 48 KB inflate state and an 8 KB buffer for every
//! member and frees them at its end. Over the 79,000 members of a large set, two threads doing
//! that cut their allocator heaps into fragments that the process keeps: the peak RSS of the
//! same install varied from 29 to 55 MiB for a heap that never held more than 17.6 MiB. One
//! state per thread, made once, keeps the peak at the heap's size.

use std::cell::RefCell;
use std::io::{self, Read, Seek};

use flate2::{Decompress, FlushDecompress, Status};
use pysfx_format::ReadAt;
use zip::read::ZipFile;
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

/// Compressed bytes read from the archive at a time.
const INPUT_BYTES: usize = 32 * 1024;

/// The largest member inflated whole, in one call: its inflated size as the zip directory
/// declares it. Each thread that reads such a member keeps a buffer this large for its output.
pub(crate) const WHOLE_BYTES: u64 = 256 * 1024;

/// The most compressed bytes a member inflated whole may have. A deflate stream of
/// [`WHOLE_BYTES`] bytes is shorter unless it pads itself out; a longer one is streamed.
const WHOLE_INPUT_BYTES: u64 = WHOLE_BYTES + WHOLE_BYTES / 8;

/// A raw-deflate decompressor and its input buffer.
struct Inflater {
    state: Decompress,
    input: Box<[u8]>,
    /// The part of `input` not yet consumed.
    start: usize,
    end: usize,
    /// The member's compressed bytes are all read.
    input_done: bool,
}

/// libdeflate's decompressor and the buffers of a member inflated whole.
struct Whole {
    decompressor: libdeflater::Decompressor,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The inflated bytes in `output`, once inflated.
    inflated: Option<usize>,
    /// How many of those were read.
    served: usize,
}

thread_local! {
    /// This thread's inflater between members.
    static INFLATER: RefCell<Option<Inflater>> = const { RefCell::new(None) };
    /// This thread's whole-member inflater between members.
    static WHOLE: RefCell<Option<Whole>> = const { RefCell::new(None) };
}

impl Whole {
    /// This thread's whole-member inflater, ready for a new member.
    fn take() -> Whole {
        match WHOLE.with(|cell| cell.borrow_mut().take()) {
            Some(mut whole) => {
                (whole.inflated, whole.served) = (None, 0);
                whole
            }
            None => Whole {
                decompressor: libdeflater::Decompressor::new(),
                input: Vec::new(),
                output: Vec::new(),
                inflated: None,
                served: 0,
            },
        }
    }

    /// Serves the member's bytes into `out`, inflating all of them at the first call: the
    /// `compressed` bytes of `raw` into at most `declared` bytes. When `out` has room for all
    /// of them they are inflated straight into it (a copy of a file does that: see
    /// `pysfx_tree`'s buffer size); else into this thread's buffer, and served from there.
    fn read(
        &mut self,
        raw: &mut impl Read,
        compressed: u64,
        declared: u64,
        out: &mut [u8],
    ) -> io::Result<usize> {
        let declared = declared as usize;
        if self.inflated.is_none() {
            // Both sizes are at most the whole-member bounds (`open_member`).
            self.input.resize(compressed as usize, 0);
            raw.read_exact(&mut self.input)
                .map_err(|error| match error.kind() {
                    io::ErrorKind::UnexpectedEof => {
                        io::Error::new(io::ErrorKind::InvalidData, "the deflate stream ends early")
                    }
                    _ => error,
                })?;
            if out.len() >= declared {
                let inflated = inflate(&mut self.decompressor, &self.input, &mut out[..declared])?;
                // All served at once: the next read finds the end.
                (self.inflated, self.served) = (Some(inflated), inflated);
                return Ok(inflated);
            }
            if self.output.len() < declared {
                self.output.resize(declared, 0);
            }
            self.inflated = Some(inflate(
                &mut self.decompressor,
                &self.input,
                &mut self.output[..declared],
            )?);
        }
        let rest = match self.inflated {
            // Served from this thread's buffer.
            Some(inflated) if self.served < inflated => &self.output[self.served..inflated],
            _ => return Ok(0),
        };
        let count = out.len().min(rest.len());
        out[..count].copy_from_slice(&rest[..count]);
        self.served += count;
        Ok(count)
    }
}

/// Inflates `input`, a whole deflate stream, into `output`, which holds exactly the size the
/// zip header declares; the bytes inflated.
fn inflate(
    decompressor: &mut libdeflater::Decompressor,
    input: &[u8],
    output: &mut [u8],
) -> io::Result<usize> {
    let declared = output.len();
    match decompressor.deflate_decompress(input, output) {
        Ok(inflated) => Ok(inflated),
        Err(libdeflater::DecompressionError::InsufficientSpace) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a damaged deflate stream, or more bytes than the {declared} the zip header \
                 declares"
            ),
        )),
        Err(libdeflater::DecompressionError::BadData) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the deflate stream is damaged",
        )),
    }
}

impl Inflater {
    /// This thread's inflater, reset for a new member (or a new one).
    fn take() -> Inflater {
        match INFLATER.with(|cell| cell.borrow_mut().take()) {
            Some(mut inflater) => {
                inflater.state.reset(false);
                (inflater.start, inflater.end, inflater.input_done) = (0, 0, false);
                inflater
            }
            None => Inflater {
                state: Decompress::new(false),
                input: vec![0u8; INPUT_BYTES].into_boxed_slice(),
                start: 0,
                end: 0,
                input_done: false,
            },
        }
    }

    /// Inflates into `out` from `raw`; 0 once the deflate stream has ended.
    fn read(&mut self, raw: &mut impl Read, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.start == self.end && !self.input_done {
                let read = loop {
                    match raw.read(&mut self.input) {
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        other => break other?,
                    }
                };
                (self.start, self.end, self.input_done) = (0, read, read == 0);
            }
            let flush = match self.input_done {
                true => FlushDecompress::Finish,
                false => FlushDecompress::None,
            };
            let (read_before, written_before) = (self.state.total_in(), self.state.total_out());
            let status = self
                .state
                .decompress(&self.input[self.start..self.end], out, flush)
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            let consumed = (self.state.total_in() - read_before) as usize;
            let written = (self.state.total_out() - written_before) as usize;
            self.start += consumed;
            if written > 0 {
                return Ok(written);
            }
            match status {
                Status::StreamEnd => return Ok(0),
                // Input to spare and room to write, and nothing moved: a stream that cannot go
                // on. Or no input left before the stream's end.
                _ if consumed == 0 && (self.start < self.end || self.input_done) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the deflate stream ends early",
                    ));
                }
                _ => {}
            }
        }
    }
}

/// A member's bytes as stored: see [`open_member`].
pub(crate) struct MemberReader<'a, R: Read> {
    raw: ZipFile<'a, R>,
    body: Body,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    /// Bytes read so far, never more than the zip directory declares.
    read: u64,
    checked: bool,
}

/// How a member's bytes are read.
enum Body {
    Stored,
    /// Streamed through zlib-rs.
    Streamed(Inflater),
    /// Inflated in one call by libdeflate.
    Whole(Whole),
}

/// Opens member `index` of `archive` for reading its bytes as stored (inflated when deflated).
/// Only stored and deflated members of no encryption are read; reading past the size the zip
/// directory declares is an error (a deflate bomb inflates no further), and so is an end
/// before it; the CRC-32 is checked when the reader reaches the member's end. Its data, where
/// its local header puts it, must end by `end` ([`pysfx_format::Member::end`]): never in
/// another member's bytes. And its local header must say what the central directory says —
/// its name, compression method, CRC-32 and sizes — or another reader (`unzip`) would read
/// other bytes than the install writes.
pub(crate) fn open_member<R: Read + Seek + Clone + ReadAt>(
    archive: &mut ZipArchive<R>,
    index: usize,
    end: u64,
) -> Result<MemberReader<'_, R>, ZipError> {
    // The zip crate reads the local header's lengths alone: the rest is compared here.
    let differs = pysfx_format::local_header_differs(archive, index)?;
    if let Some(differs) = differs {
        return Err(ZipError::InvalidArchive(differs.into()));
    }
    let raw = archive.by_index_raw(index)?;
    let data_start = raw.data_start().unwrap_or(u64::MAX);
    if !pysfx_format::data_within(data_start, raw.compressed_size(), end) {
        return Err(ZipError::InvalidArchive(pysfx_format::OVERLAP.into()));
    }
    if raw.encrypted() {
        return Err(ZipError::UnsupportedArchive(ZipError::PASSWORD_REQUIRED));
    }
    let body = match raw.compression() {
        CompressionMethod::Stored => Body::Stored,
        CompressionMethod::Deflated
            if raw.size() <= WHOLE_BYTES && raw.compressed_size() <= WHOLE_INPUT_BYTES =>
        {
            Body::Whole(Whole::take())
        }
        CompressionMethod::Deflated => Body::Streamed(Inflater::take()),
        _ => {
            return Err(ZipError::UnsupportedArchive(
                "compression method other than stored or deflate",
            ))
        }
    };
    Ok(MemberReader {
        expected_crc: raw.crc32(),
        raw,
        body,
        crc: crc32fast::Hasher::new(),
        read: 0,
        checked: false,
    })
}

impl<R: Read> MemberReader<'_, R> {
    /// The member's size as the zip directory declares it.
    pub(crate) fn size(&self) -> u64 {
        self.raw.size()
    }

    /// The member's name as the zip directory stores it.
    pub(crate) fn name_raw(&self) -> &[u8] {
        self.raw.name_raw()
    }

    /// The whole member, or its first `most` bytes when it declares more (as `take(most)`
    /// reads), into a buffer of the size the zip directory declares: a deflated member is
    /// inflated straight into it, not into the inflater's own buffer and copied out in
    /// growing pieces.
    pub(crate) fn read_whole(&mut self, most: u64) -> io::Result<Vec<u8>> {
        let cut = self.size() > most;
        let mut bytes = vec![0; self.size().min(most) as usize];
        let mut filled = 0;
        loop {
            // Past the declared size, the read that finds the end checks the sizes and the
            // CRC-32 (a member longer than it declares fails there).
            let read = match bytes.get_mut(filled..).filter(|rest| !rest.is_empty()) {
                Some(rest) => self.read(rest),
                None if cut => break,
                None => self.read(&mut [0; 1]),
            };
            match read {
                Ok(0) => break,
                Ok(count) => filled += count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        bytes.truncate(filled);
        Ok(bytes)
    }
}

impl<R: Read> Read for MemberReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.checked {
            return Ok(0);
        }
        let count = match &mut self.body {
            Body::Stored => self.raw.read(out)?,
            Body::Streamed(inflater) => inflater.read(&mut self.raw, out)?,
            Body::Whole(whole) => {
                let (compressed, declared) = (self.raw.compressed_size(), self.raw.size());
                whole.read(&mut self.raw, compressed, declared, out)?
            }
        };
        if count > 0 {
            self.read = self.read.saturating_add(count as u64);
            if self.read > self.raw.size() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "more bytes than the {} the zip header declares",
                        self.raw.size()
                    ),
                ));
            }
            self.crc.update(&out[..count]);
            return Ok(count);
        }
        if self.read != self.raw.size() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} bytes where the zip header declares {}",
                    self.read,
                    self.raw.size()
                ),
            ));
        }
        if self.crc.clone().finalize() != self.expected_crc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "its CRC-32 differs from the zip header's",
            ));
        }
        self.checked = true;
        Ok(0)
    }
}

impl<R: Read> Drop for MemberReader<'_, R> {
    fn drop(&mut self) {
        // Not while the thread's locals are torn down: then the inflater is just dropped.
        match std::mem::replace(&mut self.body, Body::Stored) {
            Body::Stored => {}
            Body::Streamed(inflater) => {
                let _ = INFLATER.try_with(|cell| *cell.borrow_mut() = Some(inflater));
            }
            Body::Whole(whole) => {
                let _ = WHOLE.try_with(|cell| *cell.borrow_mut() = Some(whole));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use zip::write::SimpleFileOptions;

    fn archive(members: &[(&str, &[u8], CompressionMethod)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes, method) in members {
            writer
                .start_file(
                    *name,
                    SimpleFileOptions::default().compression_method(*method),
                )
                .expect("start a member");
            writer.write_all(bytes).expect("write a member");
        }
        writer.finish().expect("finish the zip").into_inner()
    }

    /// `bytes` (a zip of one member) with the member's declared size in the central directory
    /// set to `size`.
    fn declaring(mut bytes: Vec<u8>, size: u32) -> Vec<u8> {
        let central = bytes
            .windows(4)
            .position(|window| window == [0x50, 0x4b, 0x01, 0x02])
            .expect("a central directory entry");
        bytes[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
        // The local header says the same (the one member's, at 0): what is read is held to it.
        bytes[22..26].copy_from_slice(&size.to_le_bytes());
        bytes
    }

    /// A local header that says otherwise than the central directory — the name, method,
    /// CRC-32 or sizes `unzip` would read by — is refused when the member is opened; with
    /// its CRC and sizes after the data (flag bit 3), its method and name still count.
    #[test]
    fn a_local_header_that_disagrees_with_the_directory_is_refused() {
        let bytes = archive(&[("m.py", b"print('m')\n", CompressionMethod::Deflated)]);
        assert!(read_all(&bytes, 0).is_ok());
        let cases: [(usize, u8, &str); 8] = [
            (6, 0x01, "marks it encrypted"),
            (6, 0x40, "marks it encrypted"),
            (8, 8, "another compression method"),
            (14, 1, "another CRC-32"),
            (18, 1, "other sizes"),
            (22, 1, "other sizes"),
            (30, 1, "names another file"),
            (26, 1, "names another file"),
        ];
        for (at, flip, says) in cases {
            let mut crafted = bytes.clone();
            crafted[at] ^= flip;
            let error = read_all(&crafted, 0).expect_err(says);
            assert!(error.to_string().contains(says), "byte {at}: {error}");
        }
        let mut described = bytes.clone();
        described[6] |= 0x08;
        described[14..26].fill(0);
        assert!(read_all(&described, 0).is_ok());
        described[8] ^= 8;
        let error = read_all(&described, 0).expect_err("the method still counts");
        assert!(
            error.to_string().contains("another compression method"),
            "{error}"
        );
    }

    fn read_all(bytes: &[u8], index: usize) -> io::Result<Vec<u8>> {
        let mut archive = ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        let end = pysfx_format::member_ends(&archive).expect("ends")[index];
        let mut member = open_member(&mut archive, index, end).map_err(io::Error::other)?;
        let mut out = Vec::new();
        member.read_to_end(&mut out)?;
        Ok(out)
    }

    fn read_whole(bytes: &[u8], index: usize, most: u64) -> io::Result<Vec<u8>> {
        let mut archive = ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        let end = pysfx_format::member_ends(&archive).expect("ends")[index];
        let mut member = open_member(&mut archive, index, end).map_err(io::Error::other)?;
        member.read_whole(most)
    }

    /// As a copy into a tree reads: into a buffer of `buffer` bytes at a time.
    fn read_by(bytes: &[u8], index: usize, buffer: usize) -> io::Result<Vec<u8>> {
        let mut archive = ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        let end = pysfx_format::member_ends(&archive).expect("ends")[index];
        let mut member = open_member(&mut archive, index, end).map_err(io::Error::other)?;
        let (mut out, mut chunk) = (Vec::new(), vec![0u8; buffer]);
        loop {
            match member.read(&mut chunk)? {
                0 => return Ok(out),
                read => out.extend_from_slice(&chunk[..read]),
            }
        }
    }

    /// A member whose local header's extra field reaches over the next member's header, so
    /// that its data is that member's bytes (its directory record given their CRC-32), is
    /// refused when opened: it would be installed with another file's bytes, or, inflated
    /// many times over, be a zip bomb. The member it reaches into still reads.
    #[test]
    fn a_member_whose_local_header_reaches_into_the_next_is_refused() {
        let stored = CompressionMethod::Stored;
        let honest = archive(&[("a.txt", b"AAAA", stored), ("b.txt", b"BBBB", stored)]);
        assert_eq!(read_all(&honest, 0).expect("a.txt"), b"AAAA");
        let field =
            |bytes: &[u8], at: usize| usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
        let headers: Vec<usize> = (honest.windows(4).enumerate())
            .filter(|(_, window)| *window == b"PK\x03\x04")
            .map(|(at, _)| at)
            .collect();
        let (first, second) = (headers[0], headers[1]);
        let second_data = second + 30 + field(&honest, second + 26) + field(&honest, second + 28);
        let mut crafted = honest.clone();
        let extra = second_data - first - 30 - field(&honest, first + 26);
        crafted[first + 28..first + 30].copy_from_slice(&(extra as u16).to_le_bytes());
        let central = (crafted.windows(4))
            .position(|window| window == b"PK\x01\x02")
            .expect("a.txt's directory record");
        crafted[central + 16..central + 20]
            .copy_from_slice(&crc32fast::hash(b"BBBB").to_le_bytes());
        crafted[first + 14..first + 18].copy_from_slice(&crc32fast::hash(b"BBBB").to_le_bytes());
        let error = read_all(&crafted, 0).expect_err("a.txt reaches into b.txt");
        assert!(error.to_string().contains("overlap"), "{error}");
        assert_eq!(read_all(&crafted, 1).expect("b.txt"), b"BBBB");
        // Without the bound, the reader gives b.txt's bytes as a.txt's.
        let mut zip = ZipArchive::new(Cursor::new(&crafted)).expect("a zip");
        let mut unbounded = open_member(&mut zip, 0, u64::MAX).expect("open");
        let mut bytes = Vec::new();
        unbounded.read_to_end(&mut bytes).expect("read");
        assert_eq!(bytes, b"BBBB");
    }

    #[test]
    fn members_read_as_the_zip_crate_reads_them_one_state_after_another() {
        let big: Vec<u8> = (0..300_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
            .collect();
        // Past the bound of members inflated whole: streamed.
        let streamed: Vec<u8> = (0..WHOLE_BYTES as u32 + 70_000)
            .map(|i| (i % 253) as u8 ^ (i >> 11) as u8)
            .collect();
        let members: [(&str, &[u8], CompressionMethod); 6] = [
            ("a.py", b"print('a')\n", CompressionMethod::Deflated),
            ("big.bin", &big, CompressionMethod::Deflated),
            ("streamed.bin", &streamed, CompressionMethod::Deflated),
            ("b.py", b"print('b')\n", CompressionMethod::Deflated),
            ("empty", b"", CompressionMethod::Deflated),
            ("stored.txt", b"stored as is", CompressionMethod::Stored),
        ];
        let bytes = archive(&members);
        // Twice over: the second round reuses the thread's inflaters after every kind of
        // member; read into a buffer that holds all of a small member (inflated straight into
        // it), whole, and into a buffer that does not (served from the thread's buffer).
        for _ in 0..2 {
            for (index, (_, content, _)) in members.iter().enumerate() {
                let read = [
                    read_by(&bytes, index, WHOLE_BYTES as usize),
                    read_all(&bytes, index),
                    read_by(&bytes, index, 4096),
                    read_whole(&bytes, index, u64::MAX),
                ];
                for (way, read) in read.into_iter().enumerate() {
                    assert_eq!(read.expect("read"), *content, "member {index}, way {way}");
                }
                // Cut as `take` cuts: the first bytes only.
                let cut = read_whole(&bytes, index, 7).expect("read the first bytes");
                assert_eq!(cut, content[..content.len().min(7)], "member {index}");
            }
        }
    }

    #[test]
    fn a_damaged_member_is_an_error_not_other_bytes() {
        // Inflated whole, and streamed.
        for content in [
            b"the same line again and again\n".repeat(50),
            b"the same line again and again\n".repeat(40_000),
        ] {
            damaged_members_are_errors(&content);
        }
    }

    fn damaged_members_are_errors(content: &[u8]) {
        for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
            let mut bytes = archive(&[("m", content, method)]);
            // The member's data starts after the 30-byte local header and its one-byte name.
            bytes[30 + 1 + 3] ^= 0x55;
            assert!(read_all(&bytes, 0).is_err(), "{method:?}");
            assert!(read_whole(&bytes, 0, u64::MAX).is_err(), "{method:?}");
        }
        // A member larger than its central directory entry declares stops there.
        let lying = declaring(archive(&[("m", content, CompressionMethod::Deflated)]), 100);
        let error = read_all(&lying, 0).expect_err("read past the declared size");
        assert!(error.to_string().contains("declares"), "{error}");
        let error = read_whole(&lying, 0, u64::MAX).expect_err("read past the declared size");
        assert!(error.to_string().contains("declares"), "{error}");
        // And one that ends before it is short, whatever its CRC says.
        let longer = content.len() as u32 + 10;
        let short = declaring(
            archive(&[("m", content, CompressionMethod::Deflated)]),
            longer,
        );
        let error = read_all(&short, 0).expect_err("an end before the declared size");
        assert!(error.to_string().contains("declares"), "{error}");
        let error = read_whole(&short, 0, u64::MAX).expect_err("an end before the declared size");
        assert!(error.to_string().contains("declares"), "{error}");
        // A good member read after a failed one still reads right.
        let good = archive(&[("m", content, CompressionMethod::Deflated)]);
        assert_eq!(read_all(&good, 0).expect("read"), content);
    }
}
