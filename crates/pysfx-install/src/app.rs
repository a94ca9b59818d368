//! Unpacking the app and static directories from the payload into the new release: files, and
//! the symbolic links that stay inside their directory ([`crate::payload_links`]).

use pysfx_format::{scan_members_named, MemberKind, Payload};
use pysfx_release::receipt::RecordedFile;
use pysfx_tree::{CopyError, CopyOptions, NullTree, Sink, Tree};

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
    let manifest = payload.manifest().clone();
    let accounted = accounted_for(&manifest);
    let archive = payload.archive();
    let members = scan_members_named(archive)
        .map_err(|error| InstallError::Corrupt(format!("{artifact}: {error}")))?;
    for member in &members {
        let name = member.name.as_str();
        if matches!(member.kind, MemberKind::Directory) {
            return Err(corrupt(name, "a directory entry (the format has none)"));
        }
        if !accounted(name) {
            return Err(corrupt(name, "an entry the manifest does not account for"));
        }
    }
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
        let mut entry = open_member(archive, member.index, member.end)
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
    tree.create_dirs(&manifest.app.name)?;
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

/// The receipt rows an install of `payload` writes for the app's and the static directories'
/// files and links, by path (each file's hash read from the payload, nothing written): what
/// `--check` holds the receipt of a release of this payload to, so that an edited file and
/// its row edited to agree are still found.
pub fn app_rows(payload: &mut Payload) -> Result<Vec<RecordedFile>, InstallError> {
    let mut rows = extract_app(payload, &mut Sink::from(NullTree::new()))?.recorded;
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(rows)
}

/// Whether the manifest accounts for a payload entry of this name: the manifest, its SBOMs
/// (one per set), the app's files, a static directory it lists, a wheel, husk or byte-code
/// bundle it describes (docs/format.md, "Entries"). Anything else was not put there by the
/// packer.
fn accounted_for(manifest: &pysfx_format::Manifest) -> impl Fn(&str) -> bool + '_ {
    let app = format!("{}/", manifest.app.name);
    let stored: std::collections::HashSet<&str> = (manifest.wheels.iter())
        .map(|wheel| wheel.path.as_str())
        .chain(manifest.bytecode.iter().map(|bundle| bundle.path.as_str()))
        .collect();
    move |name: &str| {
        if name.starts_with(&app) || stored.contains(name) {
            return true;
        }
        if let Some(rest) = name.strip_prefix("static.in/") {
            let directory = rest.split_once('/').map_or(rest, |(number, _)| number);
            return (manifest.static_dirs.iter())
                .any(|listed| listed.strip_prefix("static.in/") == Some(directory));
        }
        if name == pysfx_format::SBOM_NAME || name == pysfx_format::MANIFEST_NAME {
            return true;
        }
        let set = (name.strip_prefix(".pysfx/sbom/set-"))
            .and_then(|rest| rest.strip_suffix(".cdx.json"))
            .and_then(|number| number.parse::<usize>().ok());
        set.is_some_and(|set| set < manifest.sets.len() && name == pysfx_format::set_sbom_name(set))
    }
}
