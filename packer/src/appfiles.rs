//! What of `--app` and each `--static` directory goes into the payload (SPEC: "What goes in").
//! VCS metadata and byte-code caches stay out by default, `--exclude GLOB` leaves out more
//! (gitignore-style globs, matched against paths relative to the directory), a symbolic link
//! that stays inside its directory is stored as a link and one that leaves it is refused, and
//! files that look like local secrets are named in a warning.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use tracing::{debug, warn};

use crate::UsageError;

/// Left out of every app and static directory unless asked otherwise: VCS metadata (`.git` is a
/// file in a submodule or a worktree) and byte-code caches, which are the packing machine's
/// (`__pycache__` a link too: Python takes one to a directory elsewhere as the cache).
pub const DEFAULT_EXCLUDES: [&str; 6] = [".git", ".hg", ".svn", "__pycache__", "*.pyc", "*.pyo"];

/// One entry of the app or a static directory.
pub struct TreeFile {
    pub source: PathBuf,
    /// The payload name: the prefix (`mysite/`, `static.in/0/`) and the relative `/`-path.
    pub name: String,
    pub kind: TreeKind,
}

pub enum TreeKind {
    File {
        executable: bool,
        size: u64,
    },
    /// A symbolic link that stays inside its directory, stored as one.
    Link {
        target: String,
    },
}

impl TreeFile {
    /// Bytes it adds to the release: a file's size, a link's target text.
    pub fn size(&self) -> u64 {
        match &self.kind {
            TreeKind::File { size, .. } => *size,
            TreeKind::Link { target } => target.len() as u64,
        }
    }
}

/// Gitignore-style patterns: one without a `/` (other than a trailing one) matches a name at
/// any depth, one with a `/` is anchored to the directory, a trailing `/` matches only
/// directories, `*` and `?` do not cross `/`, `**` does. An excluded directory is not entered.
pub struct Excludes {
    any: GlobSet,
    directories: GlobSet,
    /// For each glob of `any` and `directories`: the `--exclude` it came from (`None` for a
    /// default), to warn about the ones that matched nothing.
    origins: Vec<Option<usize>>,
    split: usize,
    given: Vec<String>,
    used: RefCell<BTreeSet<usize>>,
}

impl Excludes {
    /// The defaults and the `--exclude` patterns; a pattern that is not a valid glob, or a
    /// negation (`!…`, which gitignore has and this does not), is a usage error.
    pub fn new(given: &[String]) -> Result<Excludes> {
        let mut any = Vec::new();
        let mut directories = Vec::new();
        let patterns = DEFAULT_EXCLUDES
            .iter()
            .map(|pattern| (None, pattern.to_string()))
            .chain(given.iter().cloned().enumerate().map(|(i, p)| (Some(i), p)));
        for (origin, pattern) in patterns {
            let usage = |why: &str| UsageError(format!("--exclude {pattern:?}: {why}"));
            if pattern.starts_with('!') {
                return Err(usage("negated patterns are not supported; leave the ! out").into());
            }
            let (body, directory_only) = match pattern.strip_suffix('/') {
                Some(body) => (body, true),
                None => (pattern.as_str(), false),
            };
            let anchored = body.contains('/');
            let body = body.trim_start_matches('/');
            if body.is_empty() {
                return Err(usage("matches nothing").into());
            }
            let glob = if anchored {
                body.to_string()
            } else {
                format!("**/{body}")
            };
            let glob = GlobBuilder::new(&glob)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|error| usage(&error.to_string()))?;
            if directory_only {
                directories.push((glob, origin));
            } else {
                any.push((glob, origin));
            }
        }
        let build = |globs: &[(globset::Glob, Option<usize>)]| {
            let mut builder = GlobSetBuilder::new();
            for (glob, _) in globs {
                builder.add(glob.clone());
            }
            builder
                .build()
                .map_err(|error| UsageError(format!("--exclude: {error}")))
        };
        let origins = any
            .iter()
            .chain(&directories)
            .map(|(_, origin)| *origin)
            .collect();
        Ok(Excludes {
            any: build(&any)?,
            directories: build(&directories)?,
            origins,
            split: any.len(),
            given: given.to_vec(),
            used: RefCell::new(BTreeSet::new()),
        })
    }

    /// Whether `relative` (a `/`-path below the directory being walked) is left out.
    fn excludes(&self, relative: &str, directory: bool) -> bool {
        let mut hits = self.any.matches(relative);
        if directory {
            hits.extend(
                self.directories
                    .matches(relative)
                    .into_iter()
                    .map(|index| index + self.split),
            );
        }
        let mut used = self.used.borrow_mut();
        for index in &hits {
            if let Some(Some(origin)) = self.origins.get(*index) {
                used.insert(*origin);
            }
        }
        !hits.is_empty()
    }

    /// The `--exclude` patterns that left nothing out.
    pub fn unused(&self) -> Vec<&str> {
        let used = self.used.borrow();
        self.given
            .iter()
            .enumerate()
            .filter(|(index, _)| !used.contains(index))
            .map(|(_, pattern)| pattern.as_str())
            .collect()
    }
}

/// Every file and link under `root` that is not excluded, sorted by payload name (`prefix` +
/// relative `/`-path). `flag` names the option `root` came from, for messages.
pub fn walk(root: &Path, prefix: &str, flag: &str, excludes: &Excludes) -> Result<Vec<TreeFile>> {
    let metadata = std::fs::metadata(root)
        .with_context(|| format!("{flag} {}: cannot read the directory", shown(root)))?;
    if !metadata.is_dir() {
        bail!("{flag} {}: not a directory", shown(root));
    }
    let mut files = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((directory, relative)) = pending.pop() {
        let unreadable = || format!("{flag} {}: cannot read {}", shown(root), shown(&directory));
        let mut entries: Vec<_> = std::fs::read_dir(&directory)
            .with_context(unreadable)?
            .collect::<Result<_, _>>()
            .with_context(unreadable)?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let path = entry.path();
            // The entry itself: a link is judged as a link, never followed.
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot read {}", shown(&path)))?;
            // What is left out needs no UTF-8 name (`--exclude '*.log'` leaves out a log of
            // any name): judged by its name with invalid bytes replaced.
            let lossy = format!("{relative}{}", entry.file_name().to_string_lossy());
            if excludes.excludes(&lossy, kind.is_dir()) {
                debug!("left out {}", shown(&path));
                continue;
            }
            let name = entry
                .file_name()
                .into_string()
                .map_err(|name| anyhow!("{}: the name {name:?} is not UTF-8", shown(&directory)))?;
            let child = format!("{relative}{name}");
            let full = format!("{prefix}{child}");
            let storable = |full: &str| {
                pysfx_format::validate_member_name(full)
                    .map_err(|reason| anyhow!("{}: cannot be stored: {reason}", shown(&path)))
            };
            if kind.is_dir() {
                pending.push((path, format!("{child}/")));
            } else if kind.is_symlink() {
                storable(&full)?;
                let target = std::fs::read_link(&path)
                    .with_context(|| format!("cannot read the link {}", shown(&path)))?;
                let target = target.into_os_string().into_string().map_err(|target| {
                    anyhow!("{}: its target {target:?} is not UTF-8", shown(&path))
                })?;
                files.push(TreeFile {
                    source: path,
                    name: full,
                    kind: TreeKind::Link { target },
                });
            } else if kind.is_file() {
                storable(&full)?;
                let metadata = entry
                    .metadata()
                    .with_context(|| format!("cannot read {}", shown(&path)))?;
                files.push(TreeFile {
                    source: path,
                    name: full,
                    kind: TreeKind::File {
                        executable: metadata.permissions().mode() & 0o111 != 0,
                        size: metadata.len(),
                    },
                });
            } else {
                warn!(
                    "{}: not a file, a directory or a symbolic link; left out",
                    shown(&path)
                );
            }
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    check_links(&files, prefix, flag, root)?;
    Ok(files)
}

/// Refuses the links that leave `root` (absolute, or `..` above it once the links on the way
/// are followed), naming each: nothing outside the directory is shipped or pointed at by
/// accident. The stub checks the same again at install.
fn check_links(files: &[TreeFile], prefix: &str, flag: &str, root: &Path) -> Result<()> {
    let links: HashMap<&str, &str> = files
        .iter()
        .filter_map(|file| match &file.kind {
            TreeKind::Link { target } => Some((&file.name[prefix.len()..], target.as_str())),
            TreeKind::File { .. } => None,
        })
        .collect();
    let lookup = |path: &str| links.get(path).copied();
    // What the release will hold: each stored entry, and the directories they are in.
    let mut stored: HashSet<&str> = HashSet::new();
    for file in files {
        let mut at = &file.name[prefix.len()..];
        stored.insert(at);
        while let Some((parent, _)) = at.rsplit_once('/') {
            stored.insert(parent);
            at = parent;
        }
    }
    // Whether a link resolves to nothing the release holds.
    let dangles = |name: &str, target: &str| {
        pysfx_wheel::resolve_link(name, target, &lookup)
            .is_ok_and(|resolved| !resolved.is_empty() && !stored.contains(resolved.as_str()))
    };
    let mut refused = Vec::new();
    for file in files {
        let TreeKind::Link { target } = &file.kind else {
            continue;
        };
        // The links its resolution goes through: one of them dangling in the release (to a
        // directory left out, or empty, which no entry keeps) leaves this one dangling too.
        let through = std::cell::RefCell::new(Vec::new());
        let looking = |path: &str| {
            let found = lookup(path);
            if found.is_some() {
                through.borrow_mut().push(path.to_string());
            }
            found
        };
        let resolved = pysfx_wheel::resolve_link(&file.name[prefix.len()..], target, &looking);
        let broken = (through.borrow().iter())
            .find(|name| {
                links
                    .get(name.as_str())
                    .is_some_and(|next| dangles(name, next))
            })
            .cloned();
        match resolved {
            Err(reason) => refused.push(format!(
                "  {} -> {}: {reason}",
                shown(&file.source),
                pysfx_format::escape_control(target)
            )),
            // Inside, but to nothing the release will hold (nothing there, or what this pack
            // leaves out): stored as it is (it may be made at deploy), and said.
            Ok(resolved) if !resolved.is_empty() && !stored.contains(resolved.as_str()) => {
                warn!(
                    "{} -> {target} points at nothing this pack stores (nothing there, or left \
                     out); stored as a dangling link",
                    shown(&file.source)
                )
            }
            Ok(_) => {
                if let Some(broken) = broken {
                    warn!(
                        "{} -> {target} goes through {prefix}{broken}, which points at nothing \
                         this pack stores; stored, and dangling in the release",
                        shown(&file.source)
                    )
                }
            }
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    bail!(
        "{} symbolic {} in {flag} {} cannot be stored: pysfx stores links that stay inside it \
         and end (copy the file in instead, make the link relative, or leave it out with \
         --exclude):\n{}",
        refused.len(),
        if refused.len() == 1 { "link" } else { "links" },
        shown(root),
        refused.join("\n")
    )
}

/// The files that look like local secrets (`.env`, `.env.*`, `*.pem`, `*.key`, and SSH's
/// private keys `id_rsa`, `id_dsa`, `id_ecdsa`, `id_ed25519` and their `-sk` kinds), by
/// payload name: packed, but named in a warning. Links too: `.env` linked to `envs/prod` is read as
/// `.env` once installed.
pub fn secret_looking(files: &[TreeFile]) -> Vec<&str> {
    files
        .iter()
        .filter(|file| {
            // Case aside: `SERVER.PEM` and `Deploy.Key` are the same kind of file.
            let base = file
                .name
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            base == ".env"
                || base.starts_with(".env.")
                || base.ends_with(".pem")
                || base.ends_with(".key")
                || SSH_PRIVATE_KEYS.contains(&base.as_str())
        })
        .map(|file| file.name.as_str())
        .collect()
}

/// The names ssh-keygen gives private keys (their `.pub` halves are public).
const SSH_PRIVATE_KEYS: [&str; 6] = [
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
];

/// The app's files Python would import as `loadenv` from the app directory (`loadenv.py`, a
/// `loadenv/` package, an extension module): with the app directory on `PYTHONPATH`, ahead of
/// site-packages, such a module is what `loadenv-init.pth` imports at every interpreter start
/// instead of pysfx's hook, and environment.json is not loaded. Packed, but warned of.
pub fn shadowing_the_hook<'f>(files: &'f [TreeFile], app_prefix: &str) -> Vec<&'f str> {
    files
        .iter()
        .map(|file| file.name.as_str())
        .filter(|name| {
            let Some(below) = name.strip_prefix(app_prefix) else {
                return false;
            };
            let module = pysfx_venv::HOOK_MODULE;
            let top = below.split('/').next().unwrap_or_default();
            let Some(rest) = top.strip_prefix(module) else {
                return false;
            };
            (rest.is_empty() && below.len() > top.len())
                || rest == ".py"
                || (rest.starts_with('.') && rest.ends_with(".so"))
        })
        .collect()
}

/// A path of the inputs as a message names it: control characters, line breaks included,
/// escaped, so the message stays one line per thing it says; quoted with its bytes escaped
/// when it is not UTF-8 (a wheel's file name), rather than with those bytes replaced.
pub fn shown(path: &Path) -> String {
    match path.to_str() {
        Some(text) => pysfx_format::escape_control(text).into_owned(),
        None => format!("{path:?}"),
    }
}

/// Opens an input file of the pack for reading: a regular file only, and without waiting on
/// one that is none (a FIFO or a device swapped in for a wheel or an app file after it was
/// listed would otherwise block the pack in `open`). `follow: false` refuses a symbolic link
/// in the last component as well. (The stub's reader of files beside DEST, with no bound.)
pub fn open_regular(path: &Path, follow: bool) -> std::io::Result<std::fs::File> {
    pysfx_release::paths::open_file(path, follow, u64::MAX).map(|(file, _)| file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_match_as_gitignore_does() {
        let excludes = Excludes::new(&[
            "*.log".to_string(),
            "/media".to_string(),
            "docs/*.md".to_string(),
            "build/".to_string(),
            "node_modules".to_string(),
            "never-there".to_string(),
        ])
        .expect("valid");
        let cases = [
            // Defaults.
            (".git", true, true),
            (".git", false, true),
            ("vendor/lib/.git", true, true),
            (".hg", true, true),
            ("a/.svn", true, true),
            ("pkg/__pycache__", true, true),
            ("pkg/__pycache__", false, true),
            ("pkg/mod.pyc", false, true),
            ("mod.pyo", false, true),
            (".gitignore", false, false),
            ("pkg/mod.py", false, false),
            // Given.
            ("debug.log", false, true),
            ("a/b/debug.log", false, true),
            ("media", true, true),
            ("app/media", true, false),
            ("docs/a.md", false, true),
            ("docs/sub/a.md", false, false),
            ("other/docs/a.md", false, false),
            ("build", true, true),
            ("x/build", true, true),
            ("build", false, false),
            ("node_modules", true, true),
            ("web/node_modules", false, true),
        ];
        for (path, directory, expected) in cases {
            assert_eq!(
                excludes.excludes(path, directory),
                expected,
                "{path} (directory: {directory})"
            );
        }
        assert_eq!(excludes.unused(), ["never-there"]);
        for bad in ["!keep.txt", "/", "a[b"] {
            let Err(error) = Excludes::new(&[bad.to_string()]) else {
                panic!("{bad} accepted");
            };
            assert!(error.downcast_ref::<UsageError>().is_some(), "{bad}");
        }
    }

    /// A file of the tree named `name` (its source and its size unused).
    fn file(name: &str) -> TreeFile {
        TreeFile {
            source: PathBuf::from(name),
            name: name.to_string(),
            kind: TreeKind::File {
                executable: false,
                size: 1,
            },
        }
    }

    #[test]
    fn secrets_are_told_by_their_names() {
        let files = [
            file("app/.env"),
            file("app/.env.production"),
            file("app/certs/server.pem"),
            file("app/certs/server.key"),
            file("app/certs/OTHER.PEM"),
            file("app/certs/Deploy.Key"),
            file("app/deploy/id_ed25519"),
            file("app/deploy/id_ed25519.pub"),
            file("app/settings.py"),
            file("app/environment"),
            file("app/keys.txt"),
            TreeFile {
                source: PathBuf::from("app/.env"),
                name: "app/linked/.env".into(),
                kind: TreeKind::Link {
                    target: "../envs/prod".into(),
                },
            },
        ];
        assert_eq!(
            secret_looking(&files),
            [
                "app/.env",
                "app/.env.production",
                "app/certs/server.pem",
                "app/certs/server.key",
                "app/certs/OTHER.PEM",
                "app/certs/Deploy.Key",
                "app/deploy/id_ed25519",
                "app/linked/.env"
            ]
        );
    }

    #[test]
    fn modules_named_like_the_hook_are_found() {
        let files: Vec<TreeFile> = [
            "app/loadenv.py",
            "app/loadenv/__init__.py",
            "app/loadenv.cpython-311-x86_64-linux-gnu.so",
            "app/loadenv.txt",
            "app/loadenvx.py",
            "app/sub/loadenv.py",
            "other/loadenv.py",
        ]
        .into_iter()
        .map(file)
        .collect();
        assert_eq!(
            shadowing_the_hook(&files, "app/"),
            [
                "app/loadenv.py",
                "app/loadenv/__init__.py",
                "app/loadenv.cpython-311-x86_64-linux-gnu.so"
            ]
        );
    }

    #[test]
    fn only_a_regular_file_opens_and_a_fifo_does_not_block() {
        let work = tempfile::tempdir().expect("tempdir");
        let file = work.path().join("a.whl");
        std::fs::write(&file, b"bytes").expect("write");
        let fifo = work.path().join("fifo.whl");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let link = work.path().join("link.whl");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");

        let mut read = String::new();
        std::io::Read::read_to_string(&mut open_regular(&file, false).expect("a file"), &mut read)
            .expect("read");
        assert_eq!(read, "bytes");
        // Nothing writes to the FIFO: a blocking open would never return.
        for path in [&fifo, &work.path().to_path_buf()] {
            let error = open_regular(path, true).expect_err("not a file");
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{path:?}");
        }
        assert!(open_regular(&link, true).is_ok());
        assert!(open_regular(&link, false).is_err());
    }
}
