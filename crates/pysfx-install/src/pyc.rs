//! Linking byte-code: a `.pyc` file beside a source that was itself linked from a release
//! beside DEST is linked too when it was compiled for this interpreter. Hard links share the
//! source's mtime and size, so a timestamp-based `.pyc` of that release stays valid: its
//! header (magic number, flags, source mtime and size) is checked, as the interpreter checks
//! it at import — from the release's stamps when the file is unchanged since that release
//! wrote it (see [`crate::stamps`]), else by reading it.

use std::io::Read;

use pysfx_tree::{Stamp, Tree, TreeError};
use pysfx_venv::PycFormat;

use crate::stamps::{path_key, StampEntry};
use crate::wheel::{is_ours, LinkSource};

/// Which byte-code may be linked: what this interpreter writes and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytecodeLink {
    pub format: PycFormat,
    /// The install compiles wheels that came without byte-code (not `--no-compile`), so
    /// their linked sources' `.pyc` files are linked instead of compiled.
    pub compiling: bool,
}

/// Links the `.pyc` file at `destination` from the release `source` when its header matches
/// this interpreter and the source `.py` as linked (of stamp `python`). Returns its
/// size, its stamps entry and whether the stamps vouched for it (it was not read); `None`
/// (nothing left at `destination`) when it was not linked.
pub(crate) fn link_pyc(
    tree: &mut impl Tree,
    source: &LinkSource,
    destination: &str,
    python: &Stamp,
    link: &BytecodeLink,
) -> Result<Option<(u64, StampEntry, bool)>, TreeError> {
    let expected = link.format.header(python.mtime.0 as u64, python.size);
    let path = source.venv.join(destination);
    if let Some((size, entry)) = link_stamped(tree, source, destination, &path, &expected)? {
        return Ok(Some((size, entry, true)));
    }
    let Some((mut file, metadata)) = tree.link_from(destination, &path)? else {
        return Ok(None);
    };
    let mut header = vec![0u8; expected.len()];
    let valid = is_ours(&metadata) && file.read_exact(&mut header).is_ok() && header == expected;
    if valid {
        let mut head = [0u8; 16];
        head[..header.len().min(16)].copy_from_slice(&header[..header.len().min(16)]);
        // Its digest is not known: only its header was read.
        let entry = StampEntry {
            key: path_key(destination),
            stamp: Stamp::of(&metadata),
            sha256: [0; 32],
            head,
        };
        return Ok(Some((metadata.len(), entry, false)));
    }
    tree.unlink(destination)?;
    Ok(None)
}

/// The link without reading the file: when `source`'s stamps hold it unchanged since it was
/// written there with the `expected` header.
fn link_stamped(
    tree: &mut impl Tree,
    source: &LinkSource,
    destination: &str,
    path: &std::path::Path,
    expected: &[u8],
) -> Result<Option<(u64, StampEntry)>, TreeError> {
    let Some(stamps) = source.stamps.as_deref() else {
        return Ok(None);
    };
    let Some(entry) = stamps
        .entry(destination)
        .filter(|entry| entry.head.get(..expected.len()) == Some(expected))
    else {
        return Ok(None);
    };
    let Some(after) = stamps.link_unchanged(entry, path, destination, tree, is_ours)? else {
        return Ok(None);
    };
    let linked = StampEntry {
        stamp: Stamp::of(&after),
        ..*entry
    };
    Ok(Some((after.len(), linked)))
}
