//! Property tests of the payload reader (docs/fuzzing.md): any damage to an artifact is either
//! detected by the digest or harmless, and the reader never panics.

use std::io::Write;

use proptest::prelude::*;
use pysfx_format::{EntryOptions, Manifest, Payload, PayloadWriter, Trailer};

fn manifest() -> Manifest {
    serde_json::from_str(
        r#"{"format_version": 1, "pysfx_version": "test", "app": {"name": "app", "files": 1, "bytes": 5},
            "wheels": [], "sets": [], "unpacked_bytes": 5}"#,
    )
    .expect("manifest")
}

fn artifact(directory: &std::path::Path) -> std::path::PathBuf {
    let path = directory.join("a.sfx");
    let mut writer = PayloadWriter::create(&path, b"\x7fELF-not-really-a-stub", 0).expect("create");
    writer.add_manifest(&manifest()).expect("manifest");
    let options = EntryOptions {
        compress: true,
        executable: false,
        size: 5,
    };
    writer
        .add("app/a.py", &mut &b"x = 1"[..], options)
        .expect("add");
    writer.finish().expect("finish");
    path
}

#[test]
fn a_written_artifact_reads_back_and_verifies() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = artifact(directory.path());
    let payload = Payload::open(&path).expect("open");
    payload.verify().expect("verify");
    assert_eq!(payload.manifest(), &manifest());
}

proptest! {
    #[test]
    fn trailers_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..140)) {
        let _ = Trailer::decode(&bytes);
    }

    #[test]
    fn damage_is_detected_or_harmless(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in 0usize..3000) {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = artifact(directory.path());
        let mut bytes = std::fs::read(&path).expect("read");
        let stub_len = b"\x7fELF-not-really-a-stub".len();
        // Two flips of one byte may cancel out: judge the damage by the bytes that changed.
        let original = bytes.clone();
        for (position, value) in flips {
            let index = position % bytes.len();
            bytes[index] ^= value | 1;
        }
        let mut damaged_payload = bytes
            .iter()
            .zip(&original)
            .enumerate()
            .any(|(index, (now, was))| now != was && index >= stub_len);
        if cut % 3 == 0 {
            let keep = bytes.len().saturating_sub(cut / 3 + 1);
            bytes.truncate(keep);
            damaged_payload = true;
        }
        std::fs::File::create(&path).and_then(|mut file| file.write_all(&bytes)).expect("write");
        match Payload::open(&path) {
            Ok(payload) => {
                let verified = payload.verify();
                if damaged_payload {
                    prop_assert!(verified.is_err(), "damage in the payload went unnoticed");
                } else {
                    prop_assert!(verified.is_ok(), "damage to the stub alone failed the digest");
                    prop_assert_eq!(payload.manifest(), &manifest());
                }
            }
            Err(_) => prop_assert!(damaged_payload, "undamaged payload refused"),
        }
    }
}
