//! Hashing installed files the way RECORD states them (`sha256=` and the URL-safe base64
//! digest without padding, PEP 376 / PEP 427).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The RECORD hash of a finished SHA-256 digest.
pub fn record_hash(digest: &[u8]) -> String {
    format!("sha256={}", URL_SAFE_NO_PAD.encode(digest))
}

/// The SHA-256 digest and size of the file at `path`, opened without following a link.
pub fn hash_file(path: &Path) -> std::io::Result<(Vec<u8>, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 128 * 1024];
    let mut size = 0u64;
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hasher.finalize().to_vec(), size))
}

/// Whether any executable bit is set (what the install keeps of a member's mode).
pub fn executable(metadata: &std::fs::Metadata) -> bool {
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_pip_writes_record() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let path = temporary.path().join("f");
        std::fs::write(&path, b"hello\n").expect("write");
        let (digest, size) = hash_file(&path).expect("hash");
        assert_eq!(size, 6);
        assert_eq!(
            record_hash(&digest),
            "sha256=WJG1tSLV3whtD_CxEPvZ0hu0_HFjrzTQgoai6Eb2vgM"
        );
        std::os::unix::fs::symlink(&path, temporary.path().join("link")).expect("link");
        assert!(hash_file(&temporary.path().join("link")).is_err());
    }
}
