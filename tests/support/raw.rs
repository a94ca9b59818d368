//! Artifacts written directly with the format crate, bypassing the packer's checks, so tests can
//! put in them what `pysfx pack` would refuse.

use std::path::{Path, PathBuf};

use crate::test_stub;

/// Writes an artifact directly with the format crate, bypassing the packer's checks, so tests
/// can put content in it that `pysfx pack` would refuse. `app` entries go in as they are named.
pub fn raw_artifact(
    output: &Path,
    wheels: &[PathBuf],
    app: &[(&str, &[u8])],
    tamper: impl FnOnce(&mut pysfx_format::Manifest),
) -> PathBuf {
    raw_artifact_with_links(output, wheels, app, &[], tamper)
}

/// [`raw_artifact`] with symbolic link entries `(name, target)` after the app entries.
pub fn raw_artifact_with_links(
    output: &Path,
    wheels: &[PathBuf],
    app: &[(&str, &[u8])],
    links: &[(&str, &str)],
    tamper: impl FnOnce(&mut pysfx_format::Manifest),
) -> PathBuf {
    let mut entries = Vec::new();
    let mut payload_wheels = Vec::new();
    for wheel in wheels {
        let (entry, bytes) = raw_wheel_entry(wheel);
        payload_wheels.push((entry.path.clone(), bytes));
        entries.push(entry);
    }
    let mut manifest = raw_manifest(app.len() as u64, entries);
    // The app's files and links, and their bytes, as the packer counts them.
    let in_app = |name: &str| name.starts_with("demoapp/");
    let app_sizes = (app.iter())
        .filter(|(name, _)| in_app(name))
        .map(|(_, bytes)| bytes.len() as u64)
        .chain(
            (links.iter())
                .filter(|(name, _)| in_app(name))
                .map(|(_, target)| target.len() as u64),
        );
    (manifest.app.files, manifest.app.bytes) =
        app_sizes.fold((0, 0), |(files, bytes), size| (files + 1, bytes + size));
    // What the payload declares, as the packer records it; `tamper` may make it lie.
    manifest.unpacked_bytes = manifest
        .wheels
        .iter()
        .map(|wheel| wheel.unpacked_bytes)
        .chain(
            (app.iter())
                .filter(|(name, _)| name.starts_with("demoapp/") || name.starts_with("static.in/"))
                .map(|(_, bytes)| bytes.len() as u64),
        )
        .chain(
            (links.iter())
                .filter(|(name, _)| name.starts_with("demoapp/") || name.starts_with("static.in/"))
                .map(|(_, target)| target.len() as u64),
        )
        .sum();
    tamper(&mut manifest);
    write_raw(output, &manifest, app, links, &payload_wheels);
    output.to_path_buf()
}

/// A wheel's manifest record, as the packer would make it (name, version and requirements from
/// its METADATA when it has one), and its bytes.
fn raw_wheel_entry(wheel: &Path) -> (pysfx_format::WheelEntry, Vec<u8>) {
    use sha2::Digest;
    let bytes = std::fs::read(wheel).expect("read wheel");
    let filename = wheel
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let sha256 = pysfx_format::hex(&sha2::Sha256::digest(&bytes));
    let mut name = filename
        .split('-')
        .next()
        .expect("name")
        .to_ascii_lowercase();
    let mut version = "1.0".to_string();
    let mut requires_python = None;
    let path = format!("wheels/{}/{filename}", &sha256[..16]);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("a zip");
    let unpacked_bytes = (0..archive.len())
        .map(|index| archive.by_index_raw(index).expect("entry").size())
        .sum();
    let metadata_name = (0..archive.len())
        .map(|index| {
            let entry = archive.by_index_raw(index).expect("entry");
            String::from_utf8_lossy(entry.name_raw()).into_owned()
        })
        .find(|name| name.ends_with(".dist-info/METADATA") && name.matches('/').count() == 1);
    let mut requires_dist = Vec::new();
    if let Some(metadata_name) = metadata_name {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut archive.by_name(&metadata_name).expect("METADATA"),
            &mut text,
        )
        .expect("METADATA text");
        let headers: Vec<(&str, &str)> = text
            .lines()
            .take_while(|line| !line.is_empty())
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.trim(), value.trim()))
            .collect();
        for (key, value) in headers {
            match key {
                "Requires-Dist" => requires_dist.push(value.to_string()),
                "Version" => version = value.to_string(),
                "Requires-Python" => requires_python = Some(value.to_string()),
                "Name" => name = normalize(value),
                _ => {}
            }
        }
    }
    let entry = pysfx_format::WheelEntry {
        path,
        filename,
        name,
        version,
        sha256,
        size: bytes.len() as u64,
        unpacked_bytes,
        members: 0,
        directories: 0,
        requires_python,
        requires_dist,
        record_sha256: None,
        from_base: false,
        executables: None,
    };
    (entry, bytes)
}

/// The manifest of a raw artifact: one set, "wheels", of every wheel, for the app "demoapp".
fn raw_manifest(app_files: u64, entries: Vec<pysfx_format::WheelEntry>) -> pysfx_format::Manifest {
    pysfx_format::Manifest {
        format_version: pysfx_format::FORMAT_VERSION,
        pysfx_version: "test".into(),
        created: None,
        app: pysfx_format::AppInfo {
            name: "demoapp".into(),
            version: None,
            files: app_files,
            bytes: 0,
        },
        static_dirs: Vec::new(),
        sets: vec![pysfx_format::WheelSet {
            name: "wheels".into(),
            target: None,
            wheels: entries.iter().map(|entry| entry.path.clone()).collect(),
            requires: Vec::new(),
        }],
        wheels: entries,
        bootstrap: Vec::new(),
        unpacked_bytes: 0,
        stub_glibc: None,
        stub_sha256: None,
        thin_from: None,
        bytecode: Vec::new(),
        // A raw artifact stores no SBOMs.
        sboms: false,
    }
}

/// Writes the stub, `manifest`, the app entries, the links and the wheels to `output`, and
/// makes it executable.
fn write_raw(
    output: &Path,
    manifest: &pysfx_format::Manifest,
    app: &[(&str, &[u8])],
    links: &[(&str, &str)],
    payload_wheels: &[(String, Vec<u8>)],
) {
    let stub = std::fs::read(test_stub().0).expect("read stub");
    let mut writer =
        pysfx_format::PayloadWriter::create(output, &stub, 315_532_800).expect("create");
    writer.add_manifest(manifest).expect("manifest");
    for (name, bytes) in app {
        let file = pysfx_format::EntryOptions {
            compress: true,
            executable: false,
            size: bytes.len() as u64,
        };
        writer.add(name, &mut &bytes[..], file).expect("app entry");
    }
    for (name, target) in links {
        writer.add_symlink(name, target).expect("link entry");
    }
    for (path, bytes) in payload_wheels {
        let stored = pysfx_format::EntryOptions {
            compress: false,
            executable: false,
            size: bytes.len() as u64,
        };
        writer
            .add(path, &mut bytes.as_slice(), stored)
            .expect("wheel entry");
    }
    writer.finish().expect("finish");
    let mut permissions = std::fs::metadata(output).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(output, permissions).expect("chmod");
}

/// PEP 503's normalised name: lower case, runs of `-`, `_` and `.` as one `-`.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['-', '_', '.']).filter(|part| !part.is_empty()) {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&part.to_ascii_lowercase());
    }
    out
}

/// Writes `artifact`'s payload again as `output` with the stub the tests use, after `tamper`
/// has changed its manifest: every other entry as it was (stored or deflated alike), the
/// digest recomputed. What someone who re-seals an artifact can make.
pub fn reseal(
    artifact: &Path,
    output: &Path,
    tamper: impl FnOnce(&mut pysfx_format::Manifest),
) -> PathBuf {
    reseal_replacing(artifact, output, tamper, &[])
}

/// [`reseal`], with the entries named in `replacements` given new bytes (stored).
pub fn reseal_replacing(
    artifact: &Path,
    output: &Path,
    tamper: impl FnOnce(&mut pysfx_format::Manifest),
    replacements: &[(&str, &[u8])],
) -> PathBuf {
    reseal_editing(artifact, output, tamper, replacements, &[])
}

/// [`reseal`], without the entries named in `left_out`.
pub fn reseal_leaving_out(artifact: &Path, output: &Path, left_out: &[&str]) -> PathBuf {
    reseal_editing(artifact, output, |_| {}, &[], left_out)
}

fn reseal_editing(
    artifact: &Path,
    output: &Path,
    tamper: impl FnOnce(&mut pysfx_format::Manifest),
    replacements: &[(&str, &[u8])],
    left_out: &[&str],
) -> PathBuf {
    let mut payload = pysfx_format::Payload::open(artifact).expect("open the artifact");
    let mut manifest = payload.manifest().clone();
    tamper(&mut manifest);
    let archive = payload.archive();
    let stub = std::fs::read(test_stub().0).expect("read stub");
    let mut writer =
        pysfx_format::PayloadWriter::create(output, &stub, 315_532_800).expect("create");
    writer.add_manifest(&manifest).expect("manifest");
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).expect("an entry");
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if name == pysfx_format::MANIFEST_NAME || left_out.contains(&name.as_str()) {
            continue;
        }
        if let Some((_, bytes)) = replacements.iter().find(|(replaced, _)| *replaced == name) {
            let stored = pysfx_format::EntryOptions {
                compress: false,
                executable: false,
                size: bytes.len() as u64,
            };
            writer
                .add(&name, &mut &bytes[..], stored)
                .expect("an entry");
            continue;
        }
        if entry.is_symlink() {
            let mut target = String::new();
            std::io::Read::read_to_string(&mut entry, &mut target).expect("a link");
            writer.add_symlink(&name, &target).expect("link entry");
            continue;
        }
        let options = pysfx_format::EntryOptions {
            compress: entry.compression() != zip::CompressionMethod::Stored,
            executable: entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0),
            size: entry.size(),
        };
        writer.add(&name, &mut entry, options).expect("an entry");
    }
    writer.finish().expect("finish");
    let mut permissions = std::fs::metadata(output).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(output, permissions).expect("chmod");
    output.to_path_buf()
}

/// `artifact` with its payload's bytes edited by `edit` (given the payload, from the stub's
/// end to the trailer), written as `output` under a `pysfx-payload/1` trailer whose digest
/// matches the edited bytes: what someone who edits an artifact's zip in place and seals it
/// again can make, where the packer's writer would not write such bytes.
pub fn reseal_bytes(artifact: &Path, output: &Path, edit: impl FnOnce(&mut [u8])) -> PathBuf {
    use sha2::Digest;
    let mut file = std::fs::File::open(artifact).expect("open the artifact");
    let located = pysfx_format::locate(&mut file, artifact).expect("a trailer");
    let mut bytes = std::fs::read(artifact).expect("read the artifact");
    let (start, end) = (
        located.trailer.payload_offset as usize,
        located.digest_end as usize,
    );
    edit(&mut bytes[start..end]);
    let trailer = pysfx_format::Trailer {
        payload_offset: located.trailer.payload_offset,
        sha256: sha2::Sha256::digest(&bytes[start..end]).into(),
        scheme: pysfx_format::DigestScheme::Whole,
    };
    bytes.truncate(end);
    bytes.extend_from_slice(trailer.encode().as_bytes());
    std::fs::write(output, &bytes).expect("write the artifact");
    let mut permissions = std::fs::metadata(output).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(output, permissions).expect("chmod");
    output.to_path_buf()
}
