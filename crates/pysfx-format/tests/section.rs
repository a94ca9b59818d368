//! `Section::with_directory` serves a zip's directory from memory: every read through it must
//! give exactly the bytes a plain `Section` reads from the file, zip or not.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use proptest::prelude::*;
use pysfx_format::Section;

/// A zip of `entries` (name, content), with `comment`.
fn zip_bytes(entries: &[(String, Vec<u8>)], comment: &str) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in entries {
        writer.start_file(name.as_str(), options).expect("start");
        writer.write_all(content).expect("write");
    }
    writer.set_comment(comment).expect("comment");
    writer.finish().expect("finish").into_inner()
}

/// `before` + `section` + `after` in a file; the section's range in it.
fn file_with(before: &[u8], section: &[u8], after: &[u8]) -> (Arc<std::fs::File>, u64, u64) {
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(before).expect("write");
    file.write_all(section).expect("write");
    file.write_all(after).expect("write");
    (Arc::new(file), before.len() as u64, section.len() as u64)
}

/// Reads `len` bytes at `at` through `section`, as many reads as it takes.
fn read_at(section: &mut Section, at: u64, len: usize) -> Vec<u8> {
    section.seek(SeekFrom::Start(at)).expect("seek");
    let mut bytes = Vec::new();
    section
        .take(len as u64)
        .read_to_end(&mut bytes)
        .expect("read");
    bytes
}

fn entries() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    proptest::collection::vec(
        (
            "[a-z]{1,12}(/[a-z]{1,8}){0,3}",
            proptest::collection::vec(any::<u8>(), 0..300),
        ),
        0..40,
    )
    .prop_map(|entries| {
        // A zip may not hold one name twice.
        let mut seen = std::collections::HashSet::new();
        entries
            .into_iter()
            .filter(|(name, _)| seen.insert(name.clone()))
            .collect()
    })
}

proptest! {
    #[test]
    fn a_zip_reads_the_same_with_its_directory_in_memory(
        entries in entries(),
        comment in "[ -~]{0,80}",
        before in proptest::collection::vec(any::<u8>(), 0..64),
        after in proptest::collection::vec(any::<u8>(), 0..64),
        reads in proptest::collection::vec((any::<u64>(), 0usize..5000), 1..20),
    ) {
        let bytes = zip_bytes(&entries, &comment);
        let (file, start, len) = file_with(&before, &bytes, &after);
        let mut plain = Section::new(&file, start, len);
        let mut held = Section::with_directory(&file, start, len);
        for (at, want) in reads {
            let at = at % (len + 1);
            prop_assert_eq!(read_at(&mut plain, at, want), read_at(&mut held, at, want));
        }
        // And a zip reader sees the same archive through it.
        let mut archive = zip::ZipArchive::new(held).expect("the zip reads");
        prop_assert_eq!(archive.len(), entries.len());
        for (name, content) in &entries {
            let mut read = Vec::new();
            archive.by_name(name).expect("entry").read_to_end(&mut read).expect("read");
            prop_assert_eq!(&read, content);
        }
    }

    #[test]
    fn any_bytes_read_the_same(
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
        planted in proptest::option::of((any::<usize>(), any::<u32>(), any::<u16>())),
        reads in proptest::collection::vec((any::<u64>(), 0usize..4000), 1..20),
    ) {
        // Perhaps a forged end record somewhere, naming any directory offset.
        let mut bytes = bytes;
        if let Some((at, offset, comment)) = planted {
            if bytes.len() >= 22 {
                let at = at % (bytes.len() - 21);
                bytes[at..at + 4].copy_from_slice(b"PK\x05\x06");
                bytes[at + 16..at + 20].copy_from_slice(&offset.to_le_bytes());
                bytes[at + 20..at + 22].copy_from_slice(&comment.to_le_bytes());
            }
        }
        let (file, start, len) = file_with(b"prefix", &bytes, b"suffix");
        let mut plain = Section::new(&file, start, len);
        let mut held = Section::with_directory(&file, start, len);
        for (at, want) in reads {
            let at = at % (len + 1);
            prop_assert_eq!(read_at(&mut plain, at, want), read_at(&mut held, at, want));
        }
    }
}

#[test]
fn a_large_directory_is_read_once() {
    // More entries than the tail a section reads first holds: the directory starts before it.
    let entries: Vec<(String, Vec<u8>)> = (0..3000)
        .map(|index| (format!("package/module_{index:05}.py"), b"x = 1\n".to_vec()))
        .collect();
    let bytes = zip_bytes(&entries, "");
    let (file, start, len) = file_with(b"", &bytes, b"");
    let held = Section::with_directory(&file, start, len);
    // The directory's first bytes, well before the last 64 KiB, are garbled in the file now:
    // only a reader that holds them already still sees the archive.
    let end = &bytes[bytes.len() - 22..];
    let directory = u64::from(u32::from_le_bytes([end[16], end[17], end[18], end[19]]));
    assert!(directory + 22 + 0xffff < len);
    std::os::unix::fs::FileExt::write_all_at(&*file, &[0u8; 64], directory).expect("garble");
    assert!(zip::ZipArchive::new(Section::new(&file, start, len)).is_err());
    let mut archive = zip::ZipArchive::new(held).expect("the zip reads");
    assert_eq!(archive.len(), 3000);
    let mut read = String::new();
    archive
        .by_name("package/module_02999.py")
        .expect("entry")
        .read_to_string(&mut read)
        .expect("read");
    assert_eq!(read, "x = 1\n");
}
