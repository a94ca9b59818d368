//! Linking byte-code: a `.pyc` file beside a source that was itself linked from a release
//! beside DEST is linked too when it was compiled for this interpreter. Hard links share the
//! source's mtime and size, so a timestamp-based `.pyc` of that release stays valid: its
//! header (magic number, flags, source mtime and size) is checked, as the interpreter checks
//! it at import.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use pysfx_tree::{Tree, TreeError};
use pysfx_venv::PycFormat;

use crate::wheel::is_ours;

/// Which byte-code may be linked: what this interpreter writes and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytecodeLink {
    pub format: PycFormat,
    /// The install compiles wheels that came without byte-code (not `--no-compile`), so
    /// their linked sources' `.pyc` files are linked instead of compiled.
    pub compiling: bool,
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
    let expected = link.format.header(source.mtime() as u64, source.size());
    let mut header = vec![0u8; expected.len()];
    let valid = is_ours(&metadata) && file.read_exact(&mut header).is_ok() && header == expected;
    if valid {
        return Ok(Some(metadata.len()));
    }
    tree.unlink(destination)?;
    Ok(None)
}
