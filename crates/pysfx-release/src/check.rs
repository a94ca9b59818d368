//! `--check DEST`: an installed release against its receipt and its distributions' RECORDs,
//! as `rpm -V` and `debsums` check an installed package.
//!
//! Every file the receipt or a RECORD lists must be there, with its hash, size and executable
//! bit; nothing may be added inside the venv (its site-packages only, for a receipt that does
//! not record the venv's own files) or the static directories, and no file Python could
//! import inside the app directory. What a deployment adds is not a difference: nothing else
//! at DEST's top level is looked at (so `environment.json`, collected static files or a
//! database there are not), nor what the app directory gains that is not code (uploads,
//! logs), and `__pycache__` directories and SQLite database files are ignored wherever they
//! are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::digest::{executable, hash_file, record_hash};
use crate::paths::{in_pycache, resolve_record_path, MAX_READ};
use crate::receipt::Contents;

/// What differs between a release and its records.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    /// Files compared.
    pub checked: usize,
    /// Recorded files that are gone.
    pub missing: Vec<String>,
    /// Recorded files whose content, size, kind or executable bit changed.
    pub modified: Vec<Modified>,
    /// Files in site-packages that no record lists (a directory none of whose files are
    /// recorded is listed once, with a trailing `/`).
    pub added: Vec<String>,
    /// Recorded files this user may not read (permission denied: another user's release,
    /// hardened with `chmod -R o-rwx`): neither intact nor modified as far as this run can
    /// tell.
    pub unreadable: Vec<String>,
}

/// A recorded file that is there but differs, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Modified {
    pub path: String,
    /// `content`, `mode` (the executable bit), `kind` (no longer a file, or a link that
    /// points elsewhere), `owner` (not DEST's owner), `unreadable`.
    pub differs: Vec<&'static str>,
}

impl CheckReport {
    /// Whether the release was found as recorded, every file read.
    pub fn intact(&self) -> bool {
        !self.differs() && self.unreadable.is_empty()
    }

    /// Whether something differs from the records (missing, modified or added).
    pub fn differs(&self) -> bool {
        !(self.missing.is_empty() && self.modified.is_empty() && self.added.is_empty())
    }

    /// One line per difference, `missing  PATH`, `modified PATH (content, mode)`,
    /// `added    PATH`, for people (paths are escaped by the caller's printer).
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .missing
            .iter()
            .map(|path| format!("missing  {path}"))
            .collect();
        lines.extend(
            self.modified
                .iter()
                .map(|m| format!("modified {} ({})", m.path, m.differs.join(", "))),
        );
        lines.extend(self.added.iter().map(|path| format!("added    {path}")));
        lines.extend(
            (self.unreadable.iter()).map(|path| format!("unreadable {path} (permission denied)")),
        );
        lines
    }
}

/// What a recorded path must be.
#[derive(Debug, Default)]
struct Expected {
    /// `(hash, size)` rows: the file must match one (two wheels may ship one path).
    rows: Vec<(String, Option<u64>)>,
    executable: Option<bool>,
    link: Option<String>,
}

/// SQLite files a deployment writes next to the code (`db.sqlite3` and its journals).
pub fn is_database(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = ["-journal", "-wal", "-shm"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    [".sqlite3", ".sqlite", ".db"]
        .iter()
        .any(|extension| stem.ends_with(extension))
}

/// Compares the release in `destination` with `contents` (from its receipt).
pub fn check(destination: &Path, contents: &Contents) -> CheckReport {
    check_with(destination, contents, &|_, _| None)
}

/// The byte-code an install put in place: given a `.pyc`'s path relative to DEST and its
/// `lstat`, the RECORD-style hash of the bytes the install wrote there, when it is still the
/// very file the install wrote (or linked).
pub type InstalledBytecode<'a> = &'a dyn Fn(&str, &std::fs::Metadata) -> Option<String>;

/// [`check`], and the byte-code of site-packages that `bytecode` knows: a `.pyc` still the
/// very file the install wrote must still hold the same bytes. Hard links share byte-code
/// between releases, so an edit in place changes every one of them. One written since
/// (Python compiling again makes a new file) is no difference, as no other `__pycache__`
/// content is.
pub fn check_with(
    destination: &Path,
    contents: &Contents,
    bytecode: InstalledBytecode<'_>,
) -> CheckReport {
    let mut report = CheckReport::default();
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    for file in &contents.files {
        let entry = expected.entry(file.path.clone()).or_default();
        match &file.link {
            Some(target) => entry.link = Some(target.clone()),
            None => {
                entry.rows.push((file.hash.clone(), Some(file.size)));
                entry.executable = Some(file.executable);
            }
        }
    }
    let executables: BTreeSet<&str> = contents.executables.iter().map(String::as_str).collect();
    for dist_info in &contents.dist_infos {
        let record = format!("{dist_info}/RECORD");
        // The receipt holds RECORD's size: a bigger file is not the install's (the receipt's
        // row reports it). One grown by a few rows is still read, so that the distribution's
        // files are held to its rows (and a row added for a file that is not there is
        // missing) rather than all listed as added; one much bigger is not read, since a
        // RECORD planted there would cost many times its size once parsed.
        let recorded = (expected.get(&record).into_iter())
            .flat_map(|entry| entry.rows.iter().filter_map(|(_, size)| *size))
            .max();
        let readable = recorded.map_or(MAX_READ, |size| {
            size.saturating_mul(2).max(size + (64 << 10)).min(MAX_READ)
        });
        let path = destination.join(&record);
        let text = match crate::paths::open_regular(&path, readable)
            .and_then(|(file, metadata)| crate::paths::read_opened(file, &metadata))
            .and_then(|bytes| String::from_utf8(bytes).map_err(std::io::Error::other))
        {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                report.missing.push(record);
                continue;
            }
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
                report.unreadable.push(record);
                continue;
            }
            Err(_) => {
                report.modified.push(Modified {
                    path: record,
                    differs: vec!["unreadable"],
                });
                continue;
            }
        };
        let Ok(parsed) = pysfx_wheel::Record::parse(&text) else {
            report.modified.push(Modified {
                path: record,
                differs: vec!["content"],
            });
            continue;
        };
        for row in parsed.entries {
            let Some(path) = resolve_record_path(&contents.site_packages, &row.path) else {
                continue;
            };
            let entry = expected.entry(path.clone()).or_default();
            entry.rows.push((row.hash, row.size));
            entry.executable = Some(executables.contains(path.as_str()));
        }
    }
    expected.retain(|path, _| !in_pycache(path) && !is_database(path));
    let directories = recorded_directories(&expected);
    report.modified = replaced_directories(destination, &directories);
    // A RECORD this user may not read lists files it cannot tell from added ones.
    let records_unreadable = !report.unreadable.is_empty();
    let (added, installed_pyc) = added(
        destination,
        &contents.site_packages,
        &expected,
        &directories,
        bytecode,
        &mut report.unreadable,
    );
    if !records_unreadable {
        report.added = added;
    }
    report.checked = expected.len() + installed_pyc.len();
    let mut items: Vec<(&String, &Expected)> = expected.iter().collect();
    items.extend(
        installed_pyc
            .iter()
            .map(|(path, expected)| (path, expected)),
    );
    for (path, finding) in compare_all(destination, &items) {
        match finding {
            Finding::Missing => report.missing.push(path),
            Finding::Modified(differs) => report.modified.push(Modified { path, differs }),
            Finding::Unreadable => report.unreadable.push(path),
        }
    }
    report.unreadable.sort();
    report.unreadable.dedup();
    report.missing.sort();
    // A RECORD that is gone is both a distribution's list and (since the receipt holds its
    // hash) a recorded file: one line.
    report.missing.dedup();
    report.modified.sort_by(|a, b| a.path.cmp(&b.path));
    report.modified.dedup_by(|a, b| a.path == b.path);
    report
}

/// Every directory that holds a recorded file, at any depth.
fn recorded_directories(expected: &BTreeMap<String, Expected>) -> BTreeSet<&str> {
    let mut directories: BTreeSet<&str> = BTreeSet::new();
    for path in expected.keys() {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            if !directories.insert(parent) {
                break;
            }
            at = parent;
        }
    }
    directories
}

/// The directories holding recorded files that are no longer directories (a link to a copy
/// elsewhere, say: every file would be checked through it, and whoever owns the copy owns the
/// release), each `modified DIR/ (kind)`, those others may write or their owner may not list
/// or enter, `modified DIR/ (mode)`, and those another user than DEST's owner owns (made in
/// its place by a member of a deploy group, who may then close it to the owner),
/// `modified DIR/ (owner)`.
fn replaced_directories(destination: &Path, directories: &BTreeSet<&str>) -> Vec<Modified> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let owner = std::fs::symlink_metadata(destination).map(|metadata| metadata.uid());
    directories
        .iter()
        .filter_map(|directory| {
            let metadata = std::fs::symlink_metadata(destination.join(directory)).ok()?;
            // Not a directory any more, or one anyone may add files to or replace them in,
            // or one its owner may not list or enter, where files could be added unseen (an
            // install makes none so).
            let mode = metadata.permissions().mode();
            let differs = match metadata.is_dir() {
                false => "kind",
                true if mode & 0o002 != 0 || mode & 0o500 != 0o500 => "mode",
                true if owner.as_ref().is_ok_and(|owner| *owner != metadata.uid()) => "owner",
                true => return None,
            };
            Some(Modified {
                path: format!("{directory}/"),
                differs: vec![differs],
            })
        })
        .collect()
}

enum Finding {
    Missing,
    Modified(Vec<&'static str>),
    /// This user may not look (permission denied), and nothing it could see differs.
    Unreadable,
}

/// Compares every item with the disk, hashing on a few threads.
fn compare_all(destination: &Path, items: &[(&String, &Expected)]) -> Vec<(String, Finding)> {
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    // Who may change a release's files: its owner, DEST's.
    let owner = std::fs::symlink_metadata(destination)
        .ok()
        .map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata));
    let worker = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some((path, expected)) = items.get(index) else {
            break;
        };
        if let Some(finding) = compare(&destination.join(path), expected, owner) {
            found
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(((*path).clone(), finding));
        }
    };
    // The calling thread works too: a thread the system will not give (`ulimit -u`) is one
    // fewer, not a failure.
    pysfx_format::on_threads(threads.min(items.len()), &worker);
    found
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn compare(path: &PathBuf, expected: &Expected, owner: Option<u32>) -> Option<Finding> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        // Gone, or a directory above it no longer one (`modified DIR/ (kind)` says which).
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Some(Finding::Missing)
        }
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            return Some(Finding::Unreadable)
        }
        Err(_) => return Some(Finding::Modified(vec!["unreadable"])),
    };
    if let Some(target) = &expected.link {
        if !metadata.file_type().is_symlink() {
            return Some(Finding::Modified(vec!["kind"]));
        }
        // Still a link, pointing elsewhere.
        let same = std::fs::read_link(path).is_ok_and(|found| found.as_os_str() == target.as_str());
        return (!same).then(|| Finding::Modified(vec!["target"]));
    }
    if !metadata.is_file() {
        return Some(Finding::Modified(vec!["kind"]));
    }
    let mut differs = Vec::new();
    let mut denied = false;
    let hashed: Vec<&(String, Option<u64>)> = expected
        .rows
        .iter()
        .filter(|(hash, _)| hash.starts_with("sha256="))
        .collect();
    let size_fits = expected
        .rows
        .iter()
        .any(|(_, size)| size.is_none_or(|size| size == metadata.len()));
    if !size_fits {
        differs.push("content");
    } else if !hashed.is_empty() {
        match hash_file(path) {
            Ok((digest, _)) => {
                let actual = record_hash(&digest);
                if !hashed.iter().any(|(hash, _)| *hash == actual) {
                    differs.push("content");
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => denied = true,
            Err(_) => differs.push("unreadable"),
        }
    }
    // An install never leaves a file setuid, setgid or writable by others, nor with file
    // capabilities (`setcap`), nor unreadable to its owner. (Read bits taken from the group
    // and others are a deployment's to choose: `chmod -R o-rwx` hardens a release.)
    let capabilities = crate::paths::open_regular(path, u64::MAX)
        .is_ok_and(|(file, _)| crate::paths::has_capabilities(&file));
    let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions());
    let unsafe_mode = capabilities || mode & 0o7022 != 0 || mode & 0o400 == 0;
    if unsafe_mode
        || expected
            .executable
            .is_some_and(|wanted| wanted != executable(&metadata))
    {
        differs.push("mode");
    }
    // A file another user owns is theirs to change at will: one put in an installed file's
    // place by a member of a deploy group, whose umask 002 leaves the directories writable
    // to it (the same bytes, so that its content still matches).
    if owner.is_some_and(|owner| owner != std::os::unix::fs::MetadataExt::uid(&metadata)) {
        differs.push("owner");
    }
    match differs.is_empty() {
        false => Some(Finding::Modified(differs)),
        true => denied.then_some(Finding::Unreadable),
    }
}

/// What a walk for additions reports of what nothing recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// Each file and directory (the venv, where nothing is added but by hand): an added
    /// directory is one line, not entered.
    Everything,
    /// Each file, at any depth (the static directories, which a deployment never writes to:
    /// it collects their files elsewhere).
    Files,
    /// Each file Python could import, and each link, at any depth (the app directory, which
    /// is on `sys.path`: an added `sitecustomize.py` there, or a link so named to a package
    /// anywhere, runs in every interpreter the venv starts; uploads, logs or collected static
    /// files often live there too, and are not looked at).
    Code,
}

/// A name Python imports a module from (`importlib.machinery.all_suffixes()` on Linux: source,
/// sourceless byte-code, extension modules).
fn importable(name: &str) -> bool {
    name.ends_with(".py") || name.ends_with(".pyc") || name.ends_with(".so")
}

/// A name Python imports a package from when it is a directory (or a link to one): an
/// identifier, any character beyond ASCII taken for a letter. (`base.css`, linked by
/// `collectstatic --link`, is none.)
fn identifier(name: &str) -> bool {
    let letter = |byte: u8| byte == b'_' || byte.is_ascii_alphabetic() || !byte.is_ascii();
    let mut bytes = name.bytes();
    bytes.next().is_some_and(letter) && bytes.all(|byte| letter(byte) || byte.is_ascii_digit())
}

/// What nothing recorded, `__pycache__` and databases aside: in the venv, each file and
/// directory; in the static directories, each file; in the app directory, each file Python
/// could import ([`Watch`]). And the byte-code in the venv that `bytecode` knows, still the
/// file the install wrote, with what it must hold.
fn added(
    destination: &Path,
    site_packages: &str,
    expected: &BTreeMap<String, Expected>,
    directories: &BTreeSet<&str>,
    bytecode: InstalledBytecode<'_>,
    unreadable: &mut Vec<String>,
) -> (Vec<String>, Vec<(String, Expected)>) {
    let mut added = Vec::new();
    let mut installed_pyc = Vec::new();
    // The whole venv when the receipt records its own files (`pyvenv.cfg`, the activate
    // scripts, the `bin/python*` links): a `pyvenv.cfg` added in `bin/`, or a `.pth` in a
    // `dist-packages` directory a Debian Python also reads, changes what runs as much as one
    // in site-packages.
    let venv = site_packages.split('/').next().unwrap_or(site_packages);
    let whole_venv = expected.contains_key(&format!("{venv}/pyvenv.cfg"));
    // The venv's directories its creation makes, recorded or not (`include/` stays empty
    // unless a wheel ships headers).
    let made = [format!("{venv}/include")];
    // The static directories whether or not any was packed: files added there are no
    // deployment's.
    let mut pending = vec![
        ("static.in".to_string(), Watch::Files),
        (
            match whole_venv {
                true => venv.to_string(),
                false => site_packages.to_string(),
            },
            Watch::Everything,
        ),
    ];
    // The app's top, as its recorded files name it.
    for path in expected.keys() {
        let Some((top, _)) = path.split_once('/') else {
            continue;
        };
        if top != venv && !pending.iter().any(|(seen, _)| seen == top) {
            pending.push((top.to_string(), Watch::Code));
        }
    }
    while let Some((directory, watch)) = pending.pop() {
        let entries = match list(&destination.join(&directory)) {
            Ok(entries) => entries,
            // Gone, or no longer a directory (then reported as modified if recorded).
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                continue
            }
            // What was added there this user cannot see: no verdict on it, never "intact".
            Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
                unreadable.push(format!("{directory}/"));
                continue;
            }
            // One that cannot be listed otherwise (a path too long to name: no install makes
            // one) is itself an addition; a recorded one gives no verdict.
            Err(_) => {
                match directories.contains(directory.as_str()) {
                    true => unreadable.push(format!("{directory}/")),
                    false => added.push(format!("{directory}/")),
                }
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = format!("{directory}/{name}");
            // Not followed: a link is a file here.
            let kind = entry.file_type();
            let is_directory = kind.as_ref().is_ok_and(|kind| kind.is_dir());
            if name == "__pycache__" {
                if is_directory && watch == Watch::Everything {
                    installed_pyc.extend(still_installed(destination, &relative, bytecode));
                }
                continue;
            }
            // A database is a file: a directory so named may hold code.
            if !is_directory && is_database(&relative) {
                continue;
            }
            // In the app, a link added under a module's name is code as much as a module is:
            // Python imports a package through a link named `sitecustomize` to any directory.
            let link = kind.is_ok_and(|kind| kind.is_symlink()) && identifier(&name);
            if is_directory {
                let recorded = directories.contains(relative.as_str()) || made.contains(&relative);
                match watch == Watch::Everything && !recorded {
                    true => added.push(format!("{relative}/")),
                    false => pending.push((relative, watch)),
                }
            } else if !expected.contains_key(&relative)
                // A recorded directory no longer one: `replaced_directories` says so.
                && !directories.contains(relative.as_str())
                && (watch != Watch::Code || link || importable(&name))
            {
                added.push(relative);
            }
        }
    }
    added.sort();
    (added, installed_pyc)
}

/// The entries of the directory at `path`, not through a link put in its place
/// ([`replaced_directories`] reports that): one to `/` would walk the whole filesystem.
fn list(path: &Path) -> std::io::Result<std::fs::ReadDir> {
    match std::fs::symlink_metadata(path)?.is_dir() {
        true => std::fs::read_dir(path),
        false => Err(std::io::ErrorKind::NotADirectory.into()),
    }
}

/// The files of the `__pycache__` directory `directory` that `bytecode` knows as still the
/// files the install wrote, each with the bytes it must hold.
fn still_installed(
    destination: &Path,
    directory: &str,
    bytecode: InstalledBytecode<'_>,
) -> Vec<(String, Expected)> {
    let Ok(entries) = std::fs::read_dir(destination.join(directory)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let relative = format!("{directory}/{}", entry.file_name().to_string_lossy());
            let hash = bytecode(&relative, &entry.metadata().ok()?)?;
            let expected = Expected {
                rows: vec![(hash, None)],
                executable: Some(false),
                link: None,
            };
            Some((relative, expected))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_release;
    use std::os::unix::fs::PermissionsExt;

    fn contents(release: &Path) -> Contents {
        crate::receipt::read(release)
            .and_then(|receipt| receipt.contents)
            .expect("contents")
    }

    #[test]
    fn an_untouched_release_is_intact() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 1);
        let report = check(&release, &contents(&release));
        assert!(report.intact(), "{:?}", report.lines());
        assert!(report.checked >= 6, "{}", report.checked);
    }

    #[test]
    fn lists_every_difference_and_ignores_deployment_additions() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 1);
        let site = "venv/lib/python3.11/site-packages";
        let append = |relative: &str| {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(release.join(relative))
                .expect("open");
            file.write_all(b"# tampered\n").expect("append");
        };
        append(&format!("{site}/pkg/__init__.py"));
        std::fs::remove_file(release.join(format!("{site}/pkg/util.py"))).expect("delete");
        std::fs::write(release.join(format!("{site}/pkg/evil.py")), "x").expect("add");
        std::fs::create_dir(release.join(format!("{site}/intruder"))).expect("mkdir");
        std::fs::write(release.join(format!("{site}/intruder/a.py")), "x").expect("add");
        std::fs::write(release.join("mysite/views.py"), "changed\n").expect("app");
        std::fs::set_permissions(
            release.join("venv/bin/tool"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        // Unreadable even to its owner: no install makes a file so, and nothing can use it.
        std::fs::set_permissions(
            release.join(format!("{site}/pkg-1.0.dist-info/METADATA")),
            std::fs::Permissions::from_mode(0o000),
        )
        .expect("chmod");
        // What a deployment adds.
        std::fs::write(release.join("environment.json"), "{}").expect("env");
        std::fs::create_dir_all(release.join("static/admin")).expect("static");
        std::fs::write(release.join("static/admin/x.css"), "x").expect("static file");
        std::fs::write(release.join("mysite/db.sqlite3"), "db").expect("db");
        std::fs::write(release.join("mysite/db.sqlite3-journal"), "j").expect("journal");
        std::fs::create_dir_all(release.join(format!("{site}/pkg/__pycache__"))).expect("pyc");
        std::fs::write(
            release.join(format!("{site}/pkg/__pycache__/x.cpython-311.pyc")),
            "x",
        )
        .expect("pyc file");
        std::fs::create_dir_all(release.join("mysite/__pycache__")).expect("app pyc");
        std::fs::write(release.join("mysite/__pycache__/x.cpython-311.pyc"), "x").expect("pyc");
        std::fs::create_dir_all(release.join("mysite/media/2026")).expect("uploads");
        std::fs::write(release.join("mysite/media/2026/avatar.png"), "png").expect("upload");
        std::fs::write(release.join("mysite/server.log"), "log").expect("log");
        // What is code in the app directory, which is on `sys.path`.
        std::fs::write(release.join("mysite/sitecustomize.py"), "x").expect("code");
        std::fs::write(release.join("mysite/media/2026/shell.so"), "x").expect("code");
        // A link is imported as a package whatever its name; a directory named like a
        // database is no database; static.in/ is looked at though no static was packed.
        std::fs::create_dir_all(release.join("mysite/media/__pycache__")).expect("mkdir");
        std::os::unix::fs::symlink("media/__pycache__", release.join("mysite/sitecustomize"))
            .expect("link");
        std::os::unix::fs::symlink("/srv/static/base.css", release.join("mysite/base.css"))
            .expect("collectstatic --link");
        std::fs::create_dir_all(release.join("mysite/uploads.db")).expect("mkdir");
        std::fs::write(release.join("mysite/uploads.db/evil.py"), "x").expect("code");
        std::fs::create_dir_all(release.join("static.in/0")).expect("mkdir");
        std::fs::write(release.join("static.in/0/evil.js"), "x").expect("static");
        let report = check(&release, &contents(&release));
        assert_eq!(report.missing, vec![format!("{site}/pkg/util.py")]);
        assert_eq!(
            report.modified,
            vec![
                Modified {
                    path: "mysite/views.py".into(),
                    differs: vec!["content"]
                },
                Modified {
                    path: "venv/bin/tool".into(),
                    differs: vec!["mode"]
                },
                Modified {
                    path: format!("{site}/pkg-1.0.dist-info/METADATA"),
                    differs: vec!["mode"]
                },
                Modified {
                    path: format!("{site}/pkg/__init__.py"),
                    differs: vec!["content"]
                },
            ]
        );
        assert_eq!(
            report.added,
            vec![
                "mysite/media/2026/shell.so".to_string(),
                "mysite/sitecustomize".to_string(),
                "mysite/sitecustomize.py".to_string(),
                "mysite/uploads.db/evil.py".to_string(),
                "static.in/0/evil.js".to_string(),
                format!("{site}/intruder/"),
                format!("{site}/pkg/evil.py"),
            ]
        );
        assert!(!report.intact());
    }

    /// A directory too deep to name in one path (a tree planted below the app, reached from
    /// a link with a short name) is an addition: no install makes one.
    #[test]
    fn a_directory_too_deep_to_list_is_added() {
        use nix::fcntl::{openat, OFlag};
        use nix::sys::stat::Mode;
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 1);
        let name = "d".repeat(250);
        let mut directory = nix::fcntl::open(
            &release.join("mysite"),
            OFlag::O_DIRECTORY | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .expect("open");
        for _ in 0..18 {
            nix::sys::stat::mkdirat(&directory, name.as_str(), Mode::from_bits_truncate(0o755))
                .expect("mkdirat");
            directory = openat(
                &directory,
                name.as_str(),
                OFlag::O_DIRECTORY | OFlag::O_RDONLY,
                Mode::empty(),
            )
            .expect("openat");
        }
        let file = openat(
            &directory,
            "evil.py",
            OFlag::O_CREAT | OFlag::O_WRONLY,
            Mode::from_bits_truncate(0o644),
        )
        .expect("create");
        drop(file);
        let report = check(&release, &contents(&release));
        assert!(report.unreadable.is_empty(), "{:?}", report.lines());
        assert_eq!(report.added.len(), 1, "{:?}", report.lines());
        assert!(report.added[0].starts_with("mysite/ddd") && report.added[0].ends_with('/'));
        assert!(report.differs());
    }

    #[test]
    fn identifiers_are_told() {
        for name in ["sitecustomize", "_x", "média", "a1"] {
            assert!(identifier(name), "{name}");
        }
        for name in ["", "1a", "base.css", "a-b", "a b"] {
            assert!(!identifier(name), "{name}");
        }
    }

    /// Nothing is added to the static directories but by hand (a deployment collects their
    /// files elsewhere): any file there, at any depth, is a difference; a directory the
    /// artifact made empty is not.
    #[test]
    fn a_file_added_to_a_static_directory_is_listed() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 1);
        let mut contents = contents(&release);
        std::fs::create_dir_all(release.join("static.in/0/css")).expect("mkdir");
        std::fs::create_dir_all(release.join("static.in/0/empty")).expect("mkdir");
        std::fs::write(release.join("static.in/0/css/site.css"), "body {}\n").expect("write");
        let (digest, size) = hash_file(&release.join("static.in/0/css/site.css")).expect("hash");
        contents.files.push(crate::receipt::RecordedFile::file(
            "static.in/0/css/site.css".into(),
            &digest,
            size,
            false,
        ));
        assert!(check(&release, &contents).intact());
        std::fs::create_dir_all(release.join("static.in/0/js/x")).expect("mkdir");
        std::fs::write(release.join("static.in/0/js/x/miner.js"), "x").expect("plant");
        std::fs::write(release.join("static.in/0/db.sqlite3"), "db").expect("db");
        let report = check(&release, &contents);
        assert_eq!(report.added, vec!["static.in/0/js/x/miner.js".to_string()]);
        assert!(!report.intact());
    }

    /// A RECORD rewritten to agree with an edited file, or to blank its hash, or to drop a
    /// deleted file and list an added one: the RECORD itself differs from the install's.
    #[test]
    fn a_record_edited_to_hide_a_change_is_itself_modified() {
        let site = crate::testing::SITE;
        let record = format!("{site}/pkg-1.0.dist-info/RECORD");
        let edits: [&dyn Fn(&str) -> String; 3] = [
            &|text| text.replace("pkg/__init__.py,sha256=", "pkg/__init__.py,sha256=AAAA"),
            &|text| {
                text.lines()
                    .map(|line| match line.starts_with("pkg/util.py,") {
                        true => "pkg/util.py,,\n".to_string(),
                        false => format!("{line}\n"),
                    })
                    .collect()
            },
            &|text| format!("{text}pkg/backdoor.py,,\n"),
        ];
        for (case, edit) in edits.iter().enumerate() {
            let temporary = tempfile::tempdir().expect("tempdir");
            let release = fake_release(temporary.path(), "1", "mysite", 1);
            let text = std::fs::read_to_string(release.join(&record)).expect("RECORD");
            std::fs::write(release.join(&record), edit(&text)).expect("edit");
            std::fs::write(release.join(format!("{site}/pkg/backdoor.py")), "x").expect("add");
            let report = check(&release, &contents(&release));
            assert!(
                report.modified.iter().any(|m| m.path == record),
                "case {case}: {:?}",
                report.lines()
            );
        }
    }

    /// A RECORD grown by a row is modified, and read: the row's file, not there, is missing,
    /// and the distribution's files are still held to their rows (none is "added"). One grown
    /// far past what the receipt says is modified and not read.
    #[test]
    fn a_record_grown_past_its_receipt_is_read_only_when_a_little_bigger() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 1);
        let record = format!("{}/pkg-1.0.dist-info/RECORD", crate::testing::SITE);
        let text = std::fs::read_to_string(release.join(&record)).expect("RECORD");
        let grown = format!("{text}pkg/ghost.py,sha256=AAAA,3\n");
        std::fs::write(release.join(&record), grown).expect("grow");
        let report = check(&release, &contents(&release));
        let modified: Vec<(&str, &[&str])> = (report.modified.iter())
            .map(|m| (m.path.as_str(), m.differs.as_slice()))
            .collect();
        assert_eq!(modified, [(record.as_str(), &["content"][..])]);
        let ghost = format!("{}/pkg/ghost.py", crate::testing::SITE);
        assert_eq!(report.missing, [ghost], "{:?}", report.lines());
        assert!(report.added.is_empty(), "{:?}", report.lines());

        let huge = format!("{text}{}", "pkg/ghost.py,sha256=AAAA,3\n".repeat(4000));
        std::fs::write(release.join(&record), huge).expect("grow more");
        let report = check(&release, &contents(&release));
        assert!(
            report.modified.iter().any(|m| m.path == record),
            "{:?}",
            report.lines()
        );
        assert!(report.missing.is_empty(), "{:?}", report.lines());
    }

    /// A distribution's RECORD removed (`pip uninstall` takes the whole `.dist-info`) is one
    /// `missing` line, though it is both the list of the distribution's files and a file the
    /// receipt holds the hash of.
    #[test]
    fn a_removed_record_is_one_difference() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 1);
        let record = format!("{}/pkg-1.0.dist-info/RECORD", crate::testing::SITE);
        std::fs::remove_file(release.join(&record)).expect("remove");
        let report = check(&release, &contents(&release));
        assert_eq!(report.missing, vec![record]);
    }

    /// A directory of the release moved elsewhere and replaced by a link to it: every file
    /// is still there through the link, and the release is still modified.
    #[test]
    fn a_directory_replaced_by_a_link_is_modified() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 1);
        let site = release.join(crate::testing::SITE);
        let elsewhere = temporary.path().join("elsewhere");
        std::fs::rename(&site, &elsewhere).expect("move site-packages");
        std::os::unix::fs::symlink(&elsewhere, &site).expect("link site-packages");
        std::fs::rename(release.join("mysite"), temporary.path().join("app")).expect("move");
        std::os::unix::fs::symlink(temporary.path().join("app"), release.join("mysite"))
            .expect("link the app");
        let report = check(&release, &contents(&release));
        assert!(report.missing.is_empty(), "{:?}", report.lines());
        assert_eq!(
            report.modified,
            vec![
                Modified {
                    path: "mysite/".into(),
                    differs: vec!["kind"]
                },
                Modified {
                    path: format!("{}/", crate::testing::SITE),
                    differs: vec!["kind"]
                },
            ]
        );
    }

    /// A package's directory replaced, in a site-packages that is still one: one
    /// difference, where the directory was, not also an addition (the link or file is listed
    /// there). Through a link its files are still there; below a file they are missing (not
    /// unreadable).
    #[test]
    fn a_package_replaced_by_a_link_or_a_file_is_one_difference() {
        for by_a_link in [true, false] {
            let temporary = tempfile::tempdir().expect("tempdir");
            let release = fake_release(temporary.path(), "1", "mysite", 1);
            let package = release.join(crate::testing::SITE).join("pkg");
            let elsewhere = temporary.path().join("pkg");
            std::fs::rename(&package, &elsewhere).expect("move the package");
            match by_a_link {
                true => std::os::unix::fs::symlink(&elsewhere, &package).expect("link"),
                false => std::fs::write(&package, "a file").expect("a file in its place"),
            }
            let report = check(&release, &contents(&release));
            assert_eq!(
                report.modified,
                vec![Modified {
                    path: format!("{}/pkg/", crate::testing::SITE),
                    differs: vec!["kind"]
                }]
            );
            assert!(report.added.is_empty(), "{:?}", report.lines());
            assert!(report.unreadable.is_empty(), "{:?}", report.lines());
            assert_eq!(report.missing.is_empty(), by_a_link, "{:?}", report.lines());
            assert!(
                (report.missing.iter()).all(|path| path.contains("/pkg/")),
                "{:?}",
                report.lines()
            );
        }
    }

    #[test]
    fn a_directory_others_may_write_is_modified() {
        use std::os::unix::fs::PermissionsExt;
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 1);
        let package = release.join(crate::testing::SITE).join("pkg");
        std::fs::set_permissions(&package, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let report = check(&release, &contents(&release));
        assert_eq!(
            report.modified,
            vec![Modified {
                path: format!("{}/pkg/", crate::testing::SITE),
                differs: vec!["mode"]
            }]
        );
        // Group-writable (umask 002) is what an install may make.
        std::fs::set_permissions(&package, std::fs::Permissions::from_mode(0o775)).expect("chmod");
        assert!(check(&release, &contents(&release)).intact());
        // One its owner may not list (`chmod 311`), where a file could be added unseen by
        // anyone but root, is modified too; so is one only others may read.
        for mode in [0o311, 0o075] {
            std::fs::set_permissions(&package, std::fs::Permissions::from_mode(mode))
                .expect("chmod");
            let report = check(&release, &contents(&release));
            assert_eq!(
                report.modified,
                vec![Modified {
                    path: format!("{}/pkg/", crate::testing::SITE),
                    differs: vec!["mode"]
                }],
                "{mode:o}"
            );
        }
        std::fs::set_permissions(&package, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// A recorded directory another user made in its place (a member of a deploy group, who
    /// may then close it to the owner), or a recorded file with the same bytes but another
    /// user's, is modified (owner): its owner can change it at will. (Root changes the owner
    /// here; skipped for another user, who cannot.)
    #[test]
    fn a_directory_or_file_another_user_owns_is_modified() {
        let package = format!("{}/pkg", crate::testing::SITE);
        for (path, reported) in [
            (package.as_str(), format!("{package}/")),
            ("mysite/views.py", "mysite/views.py".to_string()),
        ] {
            let temporary = tempfile::tempdir().expect("tempdir");
            let release = fake_release(temporary.path(), "1", "mysite", 1);
            let owner = Some(nix::unistd::Uid::from_raw(65534));
            if nix::unistd::chown(&release.join(path), owner, None).is_err() {
                eprintln!("skipped: only root can give a file to another user");
                return;
            }
            let report = check(&release, &contents(&release));
            assert_eq!(
                report.modified,
                vec![Modified {
                    path: reported,
                    differs: vec!["owner"]
                }],
                "{path}"
            );
        }
    }

    #[test]
    fn same_size_content_and_links_are_compared() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let release = fake_release(temporary.path(), "1", "mysite", 1);
        let original = std::fs::read(release.join("mysite/views.py")).expect("read");
        let mut changed = original.clone();
        changed[0] ^= 1;
        std::fs::write(release.join("mysite/views.py"), changed).expect("write");
        std::fs::remove_file(release.join("mysite/latest")).expect("unlink");
        std::os::unix::fs::symlink("/etc/passwd", release.join("mysite/latest")).expect("relink");
        let report = check(&release, &contents(&release));
        let paths: Vec<&str> = report.modified.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, vec!["mysite/latest", "mysite/views.py"]);
    }

    #[test]
    fn databases_are_recognised() {
        for (path, database) in [
            ("a/db.sqlite3", true),
            ("db.sqlite3-wal", true),
            ("x.db", true),
            ("x.db-shm", true),
            ("x.dbx", false),
            ("sqlite3.py", false),
        ] {
            assert_eq!(is_database(path), database, "{path}");
        }
    }
}
