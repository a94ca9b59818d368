//! Linking byte-code: a `.pyc` file beside a source that was itself linked from a release
//! beside DEST is linked too when it was compiled for this interpreter. Hard links share the
//! source's mtime and size, so a timestamp-based `.pyc` of that release stays valid: its
//! header (magic number, flags, source mtime and size) is checked, as the interpreter checks
//! it at import.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use pysfx_tree::{Tree, TreeError};

use crate::wheel::is_ours;

/// Which byte-code may be linked: what this interpreter writes and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytecodeLink {
    /// `importlib.util.MAGIC_NUMBER`.
    pub magic: [u8; 4],
    /// `sys.implementation.cache_tag`, e.g. `cpython-311`.
    pub cache_tag: String,
    /// PEP 552's flags word is in the header (CPython 3.7+).
    pub has_flags: bool,
    /// The install compiles wheels that came without byte-code (not `--no-compile`), so
    /// their linked sources' `.pyc` files are linked instead of compiled.
    pub compiling: bool,
}

impl BytecodeLink {
    /// From the interpreter's hex magic number and cache tag; `None` when they are unknown.
    pub fn new(
        magic_hex: &str,
        cache_tag: Option<&str>,
        version: (u32, u32),
        compiling: bool,
    ) -> Option<Self> {
        let bytes = (0..magic_hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(magic_hex.get(at..at + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(BytecodeLink {
            magic: bytes.try_into().ok()?,
            cache_tag: cache_tag?.to_string(),
            has_flags: version >= (3, 7),
            compiling,
        })
    }

    /// `pkg/mod.py` → `pkg/__pycache__/mod.<cache_tag>.pyc`.
    pub fn pyc_of(&self, source: &str) -> Option<String> {
        let (directory, file) = match source.rsplit_once('/') {
            Some((directory, file)) => (format!("{directory}/"), file),
            None => (String::new(), source),
        };
        let stem = file.strip_suffix(".py")?;
        Some(format!(
            "{directory}__pycache__/{stem}.{}.pyc",
            self.cache_tag
        ))
    }
}

/// Links the `.pyc` file at `destination` from the release `source_venv` when its header
/// matches this interpreter and the source `.py` as linked (at `python`, in the tree).
/// Returns its size; `None` (nothing left at `destination`) when it was not linked.
pub(crate) fn link_pyc(
    tree: &mut impl Tree,
    source_venv: &Path,
    destination: &str,
    python: &str,
    link: &BytecodeLink,
) -> Result<Option<u64>, TreeError> {
    let Ok(source) = std::fs::symlink_metadata(tree.path_of(python)) else {
        return Ok(None);
    };
    let Some((mut file, metadata)) = tree.link_from(destination, &source_venv.join(destination))?
    else {
        return Ok(None);
    };
    let mut header = [0u8; 16];
    let length = if link.has_flags { 16 } else { 12 };
    let valid = is_ours(&metadata)
        && file.read_exact(&mut header[..length]).is_ok()
        && header_matches(&header[..length], link, &source);
    if valid {
        return Ok(Some(metadata.len()));
    }
    tree.unlink(destination)?;
    Ok(None)
}

/// A timestamp-based `.pyc` header for this interpreter and `source`'s mtime and size.
fn header_matches(header: &[u8], link: &BytecodeLink, source: &std::fs::Metadata) -> bool {
    let word = |at: usize| {
        header
            .get(at..at + 4)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (flags, rest) = match link.has_flags {
        true => (word(4), 8),
        false => (Some(0), 4),
    };
    header.get(..4) == Some(&link.magic[..])
        && flags == Some(0)
        && word(rest) == Some(source.mtime() as u32)
        && word(rest + 4) == Some(source.size() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_magic() {
        let link = BytecodeLink::new("a70d0d0a", Some("cpython-311"), (3, 11), true).expect("ok");
        assert_eq!(link.magic, [0xa7, 0x0d, 0x0d, 0x0a]);
        assert_eq!(
            link.pyc_of("lib/python3.11/site-packages/pkg/mod.py")
                .as_deref(),
            Some("lib/python3.11/site-packages/pkg/__pycache__/mod.cpython-311.pyc")
        );
        assert_eq!(
            link.pyc_of("mod.py").as_deref(),
            Some("__pycache__/mod.cpython-311.pyc")
        );
        assert_eq!(link.pyc_of("pkg/data.txt"), None);
        assert!(BytecodeLink::new("a70d0d", Some("cpython-311"), (3, 11), true).is_none());
        assert!(BytecodeLink::new("zz0d0d0a", Some("cpython-311"), (3, 11), true).is_none());
        assert!(BytecodeLink::new("a70d0d0a", None, (3, 11), true).is_none());
    }
}
