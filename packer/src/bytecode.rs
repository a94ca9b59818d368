//! Byte-code compiled at pack time, when a set's interpreter is at hand: the stub then writes
//! the `.pyc` files instead of running the compiler, which is most of an install's time.
//!
//! The `.pyc` files are the default, timestamp-based kind every CPython from 3.6 reads: they
//! record the source's size and mtime. Sources are compiled with their mtime set to a fixed
//! epoch, and the stub gives the installed sources that same mtime, so the `.pyc` files are
//! valid where they land. The path compiled into them is a placeholder; importlib replaces a
//! code object's file name with the real source path when it loads a `.pyc`
//! (`_imp._fix_co_filename`), so tracebacks name the installed files.
//!
//! The bundles are reproducible: the workers run with a fixed hash seed (set and frozenset
//! constants are marshalled in their iteration order, which follows the string hashes), and
//! each `.pyc` is made independent of what its worker compiled before (see
//! [`crate::marshal`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use pysfx_format::BytecodeBundle;
use pysfx_venv::{compile, CompileJob, Interpreter, PycFormat};
use tracing::{info, warn};
use zip::write::SimpleFileOptions;

/// A bundle made for one wheel: the manifest record and the file to store.
pub struct Built {
    pub bundle: BytecodeBundle,
    pub file: PathBuf,
}

/// The site-packages-relative path a wheel member is installed to, when it is a module source
/// that pip would byte-compile (the root and `.data/purelib|platlib`).
fn source_destination(member: &str) -> Option<&str> {
    // A file whose name is no module name (`.hidden.py`, `a.b.py`) is never imported, and its
    // `.pyc` name would map back to another source (importlib's `source_from_cache`).
    let file = member.rsplit('/').next().unwrap_or(member);
    let stem = file.strip_suffix(".py")?;
    if stem.is_empty() || stem.contains('.') {
        return None;
    }
    let (top, rest) = member.split_once('/').unwrap_or(("", member));
    if top.ends_with(".data") {
        return rest
            .strip_prefix("purelib/")
            .or_else(|| rest.strip_prefix("platlib/"));
    }
    Some(member)
}

/// Compiles every module source of `wheels` (payload path, file, sha256) with `interpreter`
/// and packs each wheel's `.pyc` files into a bundle under `work`.
pub fn build_bundles(
    interpreter: &Interpreter,
    wheels: &[(String, PathBuf, String)],
    work: &Path,
    epoch: u64,
) -> Result<Vec<Built>> {
    let cache_tag = interpreter
        .cache_tag
        .clone()
        .ok_or_else(|| anyhow!("{} has no byte-code cache tag", interpreter.requested))?;
    let mtime = UNIX_EPOCH + Duration::from_secs(epoch);
    let root = work.join(format!("bytecode-{cache_tag}"));
    let mut jobs = Vec::new();
    let mut sources: BTreeMap<String, u64> = BTreeMap::new();
    for (_, file, sha256) in wheels {
        let key = sha256[..16].to_string();
        if sources.contains_key(&key) {
            continue;
        }
        let tree = root.join(&key);
        let mut archive = zip::ZipArchive::new(
            crate::appfiles::open_regular(file, true)
                .with_context(|| format!("cannot read {}", file.display()))?,
        )
        .with_context(|| format!("{}: not a readable zip", file.display()))?;
        let mut count = 0;
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index)?;
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            let Some(relative) = source_destination(&name) else {
                continue;
            };
            pysfx_format::validate_member_name(relative)
                .map_err(|reason| anyhow!("{}: {name:?}: {reason}", file.display()))?;
            let path = tree.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut content = Vec::new();
            entry.read_to_end(&mut content)?;
            let mut output = File::create(&path)?;
            output.write_all(&content)?;
            output.set_modified(mtime)?;
            jobs.push(CompileJob {
                source: format!("{key}/{relative}"),
                display: format!("/pysfx-bytecode/{key}/{relative}"),
            });
            count += 1;
        }
        sources.insert(key, count);
    }
    info!(
        "compiling {} module{} with {} (CPython {})",
        jobs.len(),
        if jobs.len() == 1 { "" } else { "s" },
        interpreter.executable.display(),
        interpreter.version()
    );
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let format = PycFormat::of(interpreter)
        .ok_or_else(|| anyhow!("{}: no byte-code format", interpreter.requested))?;
    compile(
        &interpreter.executable,
        &root,
        &format,
        &jobs,
        workers,
        &crate::interrupt::child_started,
        &|| {},
    )?;

    let mut built = Vec::new();
    for (payload_path, _, sha256) in wheels {
        let key = &sha256[..16];
        let tree = root.join(key);
        let bundle_file = work.join(format!("bytecode-{key}-{cache_tag}.zip"));
        let mut pyc_files = Vec::new();
        collect_pyc(&tree, &tree, &mut pyc_files)?;
        if pyc_files.is_empty() {
            continue;
        }
        pyc_files.sort();
        let mut writer = zip::ZipWriter::new(File::create(&bundle_file)?);
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        for relative in &pyc_files {
            let mut pyc = std::fs::read(tree.join(relative))?;
            let header = if format.has_flags { 16 } else { 12 };
            if let Some(code) = pyc.get_mut(header..) {
                if let Err(error) = crate::marshal::canonical_refs(code, interpreter.major_minor())
                {
                    // Still valid byte-code; only its bytes may differ from another pack's.
                    warn!("{relative}: left as compiled ({error}); the artifact may not be reproducible");
                }
            }
            writer.start_file(relative.as_str(), options)?;
            writer.write_all(&pyc)?;
        }
        writer.finish()?;
        built.push(Built {
            bundle: BytecodeBundle {
                wheel: payload_path.clone(),
                path: format!("bytecode/{key}/{cache_tag}.zip"),
                magic: interpreter.magic.clone(),
                cache_tag: cache_tag.clone(),
                source_mtime: epoch,
                files: sources.get(key).copied().unwrap_or(0),
                // Each file's parent (its `__pycache__`), in the wheel's own directories.
                directories: (pyc_files.iter())
                    .filter_map(|pyc| pyc.rsplit_once('/').map(|(parent, _)| parent))
                    .collect::<std::collections::BTreeSet<_>>()
                    .len() as u64,
                sha256: sha256_file(&bundle_file)?,
            },
            file: bundle_file,
        });
    }
    Ok(built)
}

/// The hex SHA-256 of the file at `path`.
fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(pysfx_format::hex(&sha2::Sha256::digest(bytes)))
}

/// Every `.pyc` under `directory`, relative to `root`, `/`-separated.
fn collect_pyc(root: &Path, directory: &Path, out: &mut Vec<String>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_pyc(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "pyc") {
            let relative = path.strip_prefix(root)?.to_string_lossy().into_owned();
            out.push(relative);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_sources_and_where_they_go() {
        let cases = [
            ("pkg/mod.py", Some("pkg/mod.py")),
            ("pkg-1.0.data/purelib/extra/x.py", Some("extra/x.py")),
            ("pkg-1.0.data/platlib/fast.py", Some("fast.py")),
            ("pkg-1.0.data/scripts/tool.py", None),
            ("pkg-1.0.data/data/share/x.py", None),
            ("pkg/data.txt", None),
            ("pkg-1.0.dist-info/METADATA", None),
            (".hidden.py", None),
            ("pkg/a.b.py", None),
            ("pkg/.py", None),
        ];
        for (member, expected) in cases {
            assert_eq!(source_destination(member), expected, "{member}");
        }
    }
}
