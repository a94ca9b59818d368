//! Unpacking the app and static directories from the payload into the new release.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use pysfx_format::Payload;
use pysfx_wheel::{create_dirs_below, validate_member_name};

use crate::failure::{code, Failure};

/// Files and bytes written.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extracted {
    pub files: u64,
    pub bytes: u64,
}

/// Extracts every entry under `<app>/` and `static.in/` into `root`. Names, kinds and sizes are
/// checked for every entry before the first file is written.
pub fn extract_tree(payload: &mut Payload, root: &Path) -> Result<Extracted, Failure> {
    let app_prefix = format!("{}/", payload.manifest().app.name);
    let artifact = payload.path().display().to_string();
    let corrupt = |name: &str, reason: &str| {
        Failure::new(
            code::CORRUPT,
            format!("{artifact}: unsafe payload entry {name:?}: {reason}"),
        )
    };
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
        if entry.is_symlink() {
            return Err(corrupt(&name, "symbolic link"));
        }
        if entry.is_dir() {
            continue;
        }
        if entry.size() > 1 << 20 && entry.size() / entry.compressed_size().max(1) > 1000 {
            return Err(corrupt(&name, "implausible compression ratio (zip bomb?)"));
        }
        let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        wanted.push((index, name, entry.size(), executable));
    }

    let mut created = HashSet::new();
    let mut extracted = Extracted::default();
    let mut buffer = vec![0u8; 128 * 1024];
    for (index, name, declared, executable) in wanted {
        let destination = root.join(&name);
        if let Some((parent, _)) = name.rsplit_once('/') {
            if created.insert(parent.to_string()) {
                create_dirs_below(root, parent)
                    .map_err(|error| Failure::io("cannot create", &root.join(parent), &error))?;
            }
        }
        let entry = archive
            .by_index(index)
            .map_err(|error| Failure::new(code::CORRUPT, format!("{artifact}: {name}: {error}")))?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if executable { 0o755 } else { 0o644 })
            .open(&destination)
            .map_err(|error| Failure::io("cannot create", &destination, &error))?;
        let mut reader = entry.take(declared + 1);
        let mut size = 0u64;
        loop {
            let read = reader
                .read(&mut buffer)
                .map_err(|error| corrupt(&name, &error.to_string()))?;
            if read == 0 {
                break;
            }
            size += read as u64;
            file.write_all(&buffer[..read])
                .map_err(|error| Failure::io("cannot write", &destination, &error))?;
        }
        if size != declared {
            return Err(corrupt(&name, "its size differs from the zip header"));
        }
        extracted.files += 1;
        extracted.bytes += size;
    }
    Ok(extracted)
}
