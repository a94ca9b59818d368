//! Paths Linux takes whole. The install writes relative to directory descriptors and would not
//! notice a path of PATH_MAX (4096 bytes, its NUL included) or more, but every program that
//! names such a file whole — Python's import among them — is refused it. So a DEST under which
//! a file of the release, or the byte-code compiled for it, would reach that length is refused.

use std::path::Path;

/// Linux's PATH_MAX: the NUL counts.
pub const PATH_MAX: usize = 4096;

/// What compiling a `.py` file adds to its path at most: `__pycache__/` and
/// `.cpython-3NNt` before its `.pyc`.
pub const PYC_GROWTH: usize = 32;

/// The length `path` has once its links are resolved: the real path of its deepest existing
/// ancestor, and what lies below that as written (DEST reached through a link to a deep
/// directory is as long as that directory).
pub fn real_length(path: &Path) -> usize {
    real_path(path).as_os_str().len()
}

/// `path` with its links resolved as far as it exists: the real path of its deepest existing
/// ancestor, and what lies below that as written. (An absolute path without `..`, as the stub
/// makes DEST and LINK.)
pub fn real_path(path: &Path) -> std::path::PathBuf {
    for ancestor in path.ancestors() {
        if let Ok(real) = std::fs::canonicalize(ancestor) {
            return match path.strip_prefix(ancestor) {
                Ok(below) if !below.as_os_str().is_empty() => real.join(below),
                _ => real,
            };
        }
    }
    path.to_path_buf()
}

/// The length of `relative` below a directory whose real path is `root` bytes long, its
/// byte-code counted when it is a `.py` file; `None` when Linux takes it.
pub fn too_long(root: usize, relative: &str) -> Option<usize> {
    let growth = if relative.ends_with(".py") {
        PYC_GROWTH
    } else {
        0
    };
    let length = root + 1 + relative.len() + growth;
    (length >= PATH_MAX).then_some(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_byte_code_count() {
        let work = tempfile::tempdir().expect("tempdir");
        let deep = work.path().join("d".repeat(200));
        std::fs::create_dir(&deep).expect("mkdir");
        let link = work.path().join("l");
        std::os::unix::fs::symlink(&deep, &link).expect("symlink");
        let missing = link.join("releases/1");
        assert_eq!(
            real_length(&missing),
            deep.as_os_str().len() + "/releases/1".len()
        );
        assert_eq!(too_long(4000, "a.txt"), None);
        assert_eq!(too_long(4090, "a.txt"), Some(4096));
        assert_eq!(too_long(4060, "a.py"), Some(4060 + 1 + 4 + PYC_GROWTH));
    }
}
