//! Unpacking the app and static directories from the payload into the new release: files, and
//! the symbolic links that stay inside their directory ([`crate::payload_links`]).

use pysfx_format::{scan_members, MemberKind, Payload};
use pysfx_release::receipt::RecordedFile;
use pysfx_tree::{CopyError, CopyOptions, Tree};

use crate::member::open_member;
use crate::InstallError;

/// Files and bytes written, and each file's digest, size and mode (or link target) for the
/// receipt, which `--check` compares the release with.
#[derive(Debug, Default, Clone)]
pub struct Extracted {
    pub files: u64,
    pub bytes: u64,
    pub recorded: Vec<RecordedFile>,
}

/// Extracts every entry under `<app>/` and `static.in/` into `tree`. Names and kinds of every
/// entry are checked before the first file is written; each is read no further than its
/// declared size (the declared sizes were held to the manifest's total before anything was
/// written).
pub fn extract_app(payload: &mut Payload, tree: &mut impl Tree) -> Result<Extracted, InstallError> {
    let app_prefix = format!("{}/", payload.manifest().app.name);
    let artifact = payload.path().display().to_string();
    let corrupt = |name: &str, reason: &str| {
        InstallError::Corrupt(format!(
            "{artifact}: unsafe payload entry {name:?}: {reason}"
        ))
    };
    // Links are checked (inside their directory, through the other links) before anything.
    let links = crate::payload_links(payload).map_err(|(name, reason)| corrupt(&name, &reason))?;
    let archive = payload.archive();
    let members = scan_members(archive)
        .map_err(|error| InstallError::Corrupt(format!("{artifact}: {error}")))?;
    let mut extracted = Extracted::default();
    for member in members {
        let name = member.name.as_str();
        let MemberKind::File { executable } = member.kind else {
            continue;
        };
        if !(name.starts_with(&app_prefix) || name.starts_with("static.in/")) {
            continue;
        }
        let declared = member.size;
        // The reader holds the member to its declared size, one byte more or less is an error.
        let mut entry = open_member(archive, member.index)
            .map_err(|error| InstallError::Corrupt(format!("{artifact}: {name}: {error}")))?;
        let options = CopyOptions::new(if executable { 0o755 } else { 0o644 });
        let copied = tree
            .copy(name, &mut entry, options)
            .map_err(|error| match error {
                CopyError::Read(error) => corrupt(name, &error.to_string()),
                CopyError::Write(error) => InstallError::Tree(error),
            })?;
        tracing::trace!("{name} ({declared} bytes)");
        extracted.recorded.push(RecordedFile::file(
            name.to_string(),
            &copied.sha256,
            copied.size,
            executable,
        ));
        extracted.files += 1;
        extracted.bytes += declared;
    }
    // `DEST/<app>/` is there even for an app of no files (the release's quick check, and
    // so a re-run, `--status` and `--activate`, look for it).
    tree.create_dirs(&payload.manifest().app.name)?;
    for link in links {
        tracing::trace!("{} -> {} (link)", link.name, link.target);
        tree.symlink(&link.name, &link.target)?;
        extracted.files += 1;
        extracted.bytes += link.target.len() as u64;
        extracted
            .recorded
            .push(RecordedFile::link(link.name, link.target));
    }
    Ok(extracted)
}
