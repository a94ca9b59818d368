//! Linking byte-code: a `.pyc` file beside a source that was itself linked from a release
//! beside DEST is linked too when it was compiled for this interpreter. Hard links share the
//! source's mtime and size, so a timestamp-based `.pyc` of that release stays valid: its
//! header (magic number, flags, source mtime and size) is what the interpreter checks at
//! import.
//!
//! The header says which source the file was compiled from, nothing of the code in it. So a
//! `.pyc` is linked only when the release's stamps hold it unchanged since that release's
//! install put it there (see [`crate::stamps`]), with the header this interpreter expects;
//! never by reading its header alone. Otherwise it is unpacked from the bundle, or compiled,
//! like any file that is not linked.

use pysfx_tree::{Linked, Outside, Stamp, Tree, TreeError};
use pysfx_venv::PycFormat;

use crate::stamps::StampEntry;
use crate::wheel::{has_fresh_mode, is_ours, LinkSource};

/// Which byte-code may be linked: what this interpreter writes and accepts (none with
/// `--no-compile`). The install compiles wheels that came without byte-code, so their linked
/// sources' `.pyc` files are linked instead of compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytecodeLink {
    pub format: PycFormat,
}

/// Links the `.pyc` file at `destination` from the release `source` when its stamps hold it
/// unchanged, with the header this interpreter expects of the source `.py` as linked (of stamp
/// `python`). Returns its size and its stamps entry; `None` (nothing left at `destination`)
/// when it was not linked.
pub(crate) fn link_pyc(
    tree: &mut impl Tree,
    source: &LinkSource,
    destination: &str,
    python: &Stamp,
    link: &BytecodeLink,
) -> Result<Option<(u64, StampEntry)>, TreeError> {
    let expected = link.format.header(python.mtime.0 as u64, python.size);
    let Some(outside) = source.file(destination) else {
        return Ok(None);
    };
    link_stamped(tree, source, destination, outside, &expected)
}

/// The link without reading the file: when `source`'s stamps hold it unchanged since it was
/// written there with the `expected` header.
fn link_stamped(
    tree: &mut impl Tree,
    source: &LinkSource,
    destination: &str,
    outside: Outside<'_>,
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
    let fits = |file: &Linked| is_ours(file) && has_fresh_mode(file, false);
    let Some(after) = stamps.link_unchanged(entry, outside, destination, tree, fits)? else {
        return Ok(None);
    };
    let linked = StampEntry {
        stamp: after.stamp,
        ..*entry
    };
    Ok(Some((after.stamp.size, linked)))
}
