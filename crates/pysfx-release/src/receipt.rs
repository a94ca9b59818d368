//! `DEST/pysfx-receipt.json`: what was installed, and how a re-run recognises its own release.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use pysfx_format::Manifest;
use serde::{Deserialize, Serialize};

use crate::digest::{executable, hash_file};
use crate::paths::resolve_record_path;

pub const RECEIPT_NAME: &str = "pysfx-receipt.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    pub pysfx_version: String,
    /// The app's version (`manifest.app.version`), when the artifact recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Hex SHA-256 of the payload (the artifact trailer's digest).
    pub payload_sha256: String,
    pub artifact: String,
    pub installed_at: u64,
    /// The install time's fraction of a second, so that releases installed within one second
    /// still have an order (`--keep`). 0 in receipts written before it was recorded.
    #[serde(default)]
    pub installed_at_nanos: u32,
    pub destination: String,
    pub python: String,
    pub python_version: String,
    pub wheel_set: String,
    pub wheels: Vec<InstalledWheel>,
    pub files: u64,
    pub bytes: u64,
    #[serde(deserialize_with = "pysfx_format::deserialize_manifest")]
    pub manifest: Manifest,
    /// What `--check` compares the release with. Absent in receipts of stubs before 0.1's
    /// `--check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<Contents>,
    /// The interpreter as the install found it, for a re-run with the same binary. Absent
    /// when it was a script (a shim, a wrapper), and in receipts of earlier stubs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<InstalledWith>,
}

/// What a re-run needs to know that `--python` still names the interpreter of the install,
/// and what that interpreter said of itself then.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstalledWith {
    /// `--python` (or `$PYSFX_PYTHON`, or `python3`) as given.
    pub requested: String,
    /// The binary it ran, taken before the interpreter was asked
    /// ([`pysfx_venv::BinaryIdentity::text`]).
    pub binary: String,
    /// The query's answer, as the interpreter printed it.
    pub answer: String,
}

impl Receipt {
    /// Whether the receipt was edited so that it contradicts itself (its app version, which
    /// `--status` shows, against its manifest's) or the artifact that reads it, when it names
    /// that artifact's payload (`digest`, `manifest`): `--check` reports it modified, and
    /// `--force` writes it again.
    pub fn contradicts(&self, digest: &str, manifest: &Manifest) -> bool {
        self.app_version != self.manifest.app.version
            || (self.payload_sha256 == digest && self.manifest != *manifest)
    }

    /// The interpreter of the install, when `python` names the very binary it ran (a re-run
    /// then need not start it to learn its version, tags and marker values).
    pub fn same_interpreter(&self, python: &str) -> Option<pysfx_venv::Interpreter> {
        let installed = self.interpreter.as_ref()?;
        let binary = pysfx_venv::BinaryIdentity::of(python)?.text()?;
        if installed.requested != python || installed.binary != binary {
            return None;
        }
        pysfx_venv::Interpreter::from_answer(python, &installed.answer)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstalledWheel {
    pub name: String,
    pub version: String,
    pub filename: String,
}

/// The files of a release as installed, paths relative to DEST (`/`-separated).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Contents {
    /// Files pysfx wrote that no RECORD lists: the app, the static directories, the venv's
    /// hooks.
    pub files: Vec<RecordedFile>,
    /// The venv's site-packages, where additions are looked for.
    pub site_packages: String,
    /// Each installed distribution's `.dist-info` directory; its RECORD lists its files.
    pub dist_infos: Vec<String>,
    /// The files those RECORDs list that were installed executable.
    pub executables: Vec<String>,
}

/// One file as written: its RECORD-style hash (`sha256=…`), size and executable bit, or a
/// symbolic link's target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedFile {
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub executable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl RecordedFile {
    /// A regular file written with SHA-256 `digest`.
    pub fn file(path: String, digest: &[u8], size: u64, executable: bool) -> Self {
        RecordedFile {
            path,
            hash: crate::digest::record_hash(digest),
            size,
            executable,
            link: None,
        }
    }

    /// A symbolic link to `target`.
    pub fn link(path: String, target: String) -> Self {
        RecordedFile {
            path,
            hash: String::new(),
            size: 0,
            executable: false,
            link: Some(target),
        }
    }
}

impl Contents {
    /// What `--check` needs of a release just built in `root` (its final name does not
    /// matter: paths are relative): `files` as the extraction wrote them, each of `extra` (the
    /// hooks, relative to `root`) hashed, every `.dist-info` directory in `site_packages` and
    /// the executable files their RECORDs list (a stat each, no hashing).
    pub fn collect(
        root: &Path,
        site_packages: &str,
        files: Vec<RecordedFile>,
        extra: &[String],
    ) -> std::io::Result<Contents> {
        let mut dist_infos = Vec::new();
        let mut executables = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(root.join(site_packages))?
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".dist-info"))
            .collect();
        entries.sort();
        for name in entries {
            let dist_info = format!("{site_packages}/{name}");
            let Ok(text) = crate::paths::read_regular(&root.join(&dist_info).join("RECORD"))
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            else {
                continue;
            };
            let Ok(record) = pysfx_wheel::Record::parse(&text) else {
                continue;
            };
            for entry in &record.entries {
                let Some(relative) = resolve_record_path(site_packages, &entry.path) else {
                    continue;
                };
                if std::fs::symlink_metadata(root.join(&relative)).is_ok_and(|m| executable(&m)) {
                    executables.push(relative);
                }
            }
            dist_infos.push(dist_info);
        }
        Contents::from_install(root, site_packages, files, extra, dist_infos, executables)
    }

    /// The same from what the install reports (no RECORD parsed, no stat but of `extra` and
    /// the RECORDs, which are hashed): `dist_infos` and `executables` relative to `root`.
    pub fn from_install(
        root: &Path,
        site_packages: &str,
        mut files: Vec<RecordedFile>,
        extra: &[String],
        mut dist_infos: Vec<String>,
        mut executables: Vec<String>,
    ) -> std::io::Result<Contents> {
        // Each RECORD as installed is held to its hash too: a RECORD edited to agree with an
        // edited file (or a `pip install --force-reinstall` over the release) is a difference.
        let records: Vec<String> = dist_infos
            .iter()
            .map(|dist_info| format!("{dist_info}/RECORD"))
            .filter(|record| root.join(record).is_file())
            .collect();
        // On a few threads: the install waits for its receipt (82 RECORDs, 1.7 MB, for the
        // Django/Wagtail corpus).
        let paths: Vec<&String> = extra.iter().chain(&records).collect();
        let next = AtomicUsize::new(0);
        let hashed = Mutex::new(Vec::with_capacity(paths.len()));
        let worker = || loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(relative) = paths.get(index) else {
                break;
            };
            let path = root.join(relative);
            let file = hash_file(&path).and_then(|(digest, size)| {
                let mode = std::fs::symlink_metadata(&path)?;
                Ok(RecordedFile::file(
                    relative.to_string(),
                    &digest,
                    size,
                    executable(&mode),
                ))
            });
            (hashed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()))
            .push((index, file));
        };
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        pysfx_format::on_threads(threads.min(paths.len()), &worker);
        let mut hashed = hashed
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The first failure in the order of `extra`, then the RECORDs.
        hashed.sort_by_key(|(index, _)| *index);
        for (_, file) in hashed {
            files.push(file?);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        dist_infos.sort();
        executables.sort();
        executables.dedup();
        Ok(Contents {
            files,
            site_packages: site_packages.to_string(),
            dist_infos,
            executables,
        })
    }
}

/// Reads the receipt of an installed release; `None` if there is none or it is unreadable.
/// A file planted in a receipt's place (a sparse gigabyte of zeros costs no disk) is given up
/// at its first kilobytes when they begin no JSON object, not after reading all of it into
/// memory. (Parsed from memory, by the one deserializer of the manifest the stub carries:
/// `serde_json::from_reader` would compile a second one, 50 KB of stub.)
pub fn read(destination: &Path) -> Option<Receipt> {
    use std::io::Read;
    let path = destination.join(RECEIPT_NAME);
    let (file, metadata) = crate::paths::open_regular(&path, crate::paths::MAX_READ).ok()?;
    let mut reader = file.take(metadata.len());
    let mut text = vec![0; 4096.min(metadata.len() as usize)];
    reader.read_exact(&mut text).ok()?;
    let first = text.iter().find(|byte| !byte.is_ascii_whitespace());
    if first.is_some_and(|byte| *byte != b'{') {
        return None;
    }
    reader.read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}
