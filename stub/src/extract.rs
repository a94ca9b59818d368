//! Unpacking the app and static directories from the payload into the new release: files, and
//! the symbolic links that stay inside their directory (`pysfx_plan::payload_links`).

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use pysfx_format::Payload;
use pysfx_release::receipt::RecordedFile;
use pysfx_wheel::{validate_member_name, CopyError, CopyOptions, TreeWriter};

use crate::failure::{code, Failure};

/// Files and bytes written, and each file's digest, size and mode for the receipt (`--check`).
#[derive(Debug, Default, Clone)]
pub struct Extracted {
    pub files: u64,
    pub bytes: u64,
    pub recorded: Vec<RecordedFile>,
}

/// Extracts every entry under `<app>/` and `static.in/` into `root`. Names and kinds are checked
/// for every entry before the first file is written; each is read no further than its declared
/// size (the declared sizes were held to the manifest's total before anything was written).
pub fn extract_tree(payload: &mut Payload, root: &Path) -> Result<Extracted, Failure> {
    let app_prefix = format!("{}/", payload.manifest().app.name);
    let artifact = payload.path().display().to_string();
    let corrupt = |name: &str, reason: &str| {
        Failure::new(
            code::CORRUPT,
            format!("{artifact}: unsafe payload entry {name:?}: {reason}"),
        )
    };
    // Links are checked (inside their directory, through the other links) before anything.
    let links =
        pysfx_plan::payload_links(payload).map_err(|(name, reason)| corrupt(&name, &reason))?;
    let archive = payload.archive();
    // The zip reader keeps one entry per name, so a duplicate shows only in the count.
    if archive.has_duplicate_names() {
        return Err(corrupt("(central directory)", "duplicate entry"));
    }
    let mut wanted = Vec::new();
    let mut seen = HashSet::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|error| {
            Failure::new(code::CORRUPT, format!("{artifact}: entry {index}: {error}"))
        })?;
        let name = std::str::from_utf8(entry.name_raw())
            .map_err(|_| {
                corrupt(
                    &String::from_utf8_lossy(entry.name_raw()),
                    "name is not UTF-8",
                )
            })?
            .to_string();
        validate_member_name(&name).map_err(|reason| corrupt(&name, reason))?;
        if !seen.insert(name.trim_end_matches('/').to_string()) {
            return Err(corrupt(&name, "duplicate entry"));
        }
        if !(name.starts_with(&app_prefix) || name.starts_with("static.in/")) {
            continue;
        }
        if entry.is_symlink() || entry.is_dir() {
            continue;
        }
        let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        wanted.push((index, name, entry.size(), executable));
    }

    let mut writer = TreeWriter::new(root);
    let mut extracted = Extracted::default();
    for (index, name, declared, executable) in wanted {
        let entry = archive
            .by_index(index)
            .map_err(|error| Failure::new(code::CORRUPT, format!("{artifact}: {name}: {error}")))?;
        let options = CopyOptions::new(if executable { 0o755 } else { 0o644 });
        let copied = writer
            .copy(&name, &mut entry.take(declared + 1), options)
            .map_err(|error| match error {
                CopyError::Read(error) => corrupt(&name, &error.to_string()),
                CopyError::Write(error) => Failure::from(error),
            })?;
        if copied.read_size != declared {
            return Err(corrupt(&name, "its size differs from the zip header"));
        }
        tracing::trace!("{name} ({declared} bytes)");
        extracted.recorded.push(RecordedFile::file(
            name,
            &copied.sha256,
            copied.size,
            executable,
        ));
        extracted.files += 1;
        extracted.bytes += declared;
    }
    for link in links {
        tracing::trace!("{} -> {} (link)", link.name, link.target);
        writer.symlink(&link.name, &link.target)?;
        extracted.files += 1;
        extracted.bytes += link.target.len() as u64;
        extracted
            .recorded
            .push(RecordedFile::link(link.name, link.target));
    }
    Ok(extracted)
}
