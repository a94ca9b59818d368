//! Reading requirements files, each once and nested ones in turn, and writing the copies pip
//! reads instead.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::lines::{expand_variables, logical_lines, parse_line, quote};
use super::source::{is_remote_file, is_url};
use super::{Entry, Line, LineOption, Requirements, RequirementsFile};

/// A requirements file larger than this is refused (they are a few KiB).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Nested `-r`/`-c` deeper than this is taken for a cycle.
const MAX_DEPTH: usize = 32;

impl Requirements {
    /// Reads the `-r` files of the command line and every file they name, each once.
    pub fn read(paths: &[PathBuf]) -> Result<Requirements> {
        let mut requirements = Requirements::default();
        for path in paths {
            let index = requirements.read_file(path, false, 0)?;
            requirements.top.push(index);
        }
        Ok(requirements)
    }

    fn read_file(&mut self, path: &Path, constraint: bool, depth: usize) -> Result<usize> {
        let flag = if constraint { "-c" } else { "-r" };
        if depth > MAX_DEPTH {
            bail!(
                "{flag} {}: requirements files nested more than {MAX_DEPTH} deep (does one \
                 name itself?)",
                path.display()
            );
        }
        let content = read_text(path).with_context(|| format!("{flag} {}", path.display()))?;
        let mut lines = Vec::new();
        for (number, raw) in logical_lines(&content) {
            let expanded = expand_variables(&raw, |name| std::env::var(name).ok());
            let entry = parse_line(&expanded).map_err(|reason| {
                anyhow!("{flag} {} line {number}: {raw}: {reason}", path.display())
            })?;
            lines.push(Line { number, raw, entry });
        }
        let index = self.files.len();
        self.files.push(RequirementsFile {
            path: path.to_path_buf(),
            constraint,
            physical_lines: content.lines().count(),
            lines: lines.clone(),
            nested: Vec::new(),
        });
        let mut nested = Vec::new();
        for (position, line) in lines.iter().enumerate() {
            let Entry::Nested {
                path: named,
                constraint,
            } = &line.entry
            else {
                continue;
            };
            if is_remote_file(named) {
                nested.push((position, None));
                continue;
            }
            // pip: os.path.join(os.path.dirname(filename), req_path)
            let joined = path.parent().unwrap_or(Path::new("")).join(named);
            let child = self.read_file(&joined, *constraint, depth + 1)?;
            nested.push((position, Some(child)));
        }
        self.files[index].nested = nested;
        Ok(index)
    }

    /// The files whose lines pysfx cannot see (URLs named by `-r`/`-c`), as `file line N: URL`.
    pub fn remote_files(&self) -> Vec<String> {
        let mut remote = Vec::new();
        for file in &self.files {
            for (position, child) in &file.nested {
                if child.is_none() {
                    let line = &file.lines[*position];
                    remote.push(format!(
                        "{} line {}: {}",
                        file.path.display(),
                        line.number,
                        line.raw
                    ));
                }
            }
        }
        remote
    }

    /// Whether pip checks hashes: a `--hash` on any requirement line, or `--require-hashes`
    /// (pip's hash-checking mode).
    pub fn checks_hashes(&self) -> bool {
        self.files.iter().flat_map(|file| &file.lines).any(|line| {
            let options = match &line.entry {
                Entry::Requirement { options, .. } | Entry::Options(options) => options,
                Entry::Nested { .. } => return false,
            };
            options
                .iter()
                .any(|option| matches!(option.name, "--hash" | "--require-hashes"))
        })
    }

    /// The option lines of every file (index URLs, find-links, `--no-index`…), as pip should
    /// read them from a file in `directory` of copies: pip applies them wherever they stand.
    pub fn option_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for file in &self.files {
            for line in &file.lines {
                if let Entry::Options(options) = &line.entry {
                    out.push(option_line_text(file, line, options));
                }
            }
        }
        out
    }

    /// Writes a copy of every file into `directory` for pip to read, each line at its original
    /// number: nested `-r`/`-c` name the copies, a relative `--find-links` that exists beside
    /// the file is made absolute, and the lines in `replace` ((file, line number) → text) are
    /// replaced. Returns the copies of the command line's files, in order.
    pub fn write_copies(
        &self,
        directory: &Path,
        replace: &std::collections::HashMap<(usize, usize), String>,
    ) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
        let copy_path = |index: usize| directory.join(format!("{index}.txt"));
        for (index, file) in self.files.iter().enumerate() {
            let mut out = vec![String::new(); file.physical_lines.max(1)];
            for (position, line) in file.lines.iter().enumerate() {
                let text = if let Some(text) = replace.get(&(index, line.number)) {
                    text.clone()
                } else {
                    match &line.entry {
                        Entry::Nested { constraint, .. } => {
                            let child = file
                                .nested
                                .iter()
                                .find(|(at, _)| *at == position)
                                .and_then(|(_, child)| *child);
                            match child {
                                Some(child) => format!(
                                    "{} {}",
                                    if *constraint { "-c" } else { "-r" },
                                    quote(&copy_path(child).to_string_lossy())
                                ),
                                None => line.raw.clone(),
                            }
                        }
                        Entry::Options(options) => option_line_text(file, line, options),
                        // An artifact installs no project in editable mode: `-e X` is built as
                        // X (pip wheel would ask an editable-capable backend, PEP 660, for it).
                        Entry::Requirement {
                            spec,
                            editable: true,
                            options,
                        } => {
                            let mut text = spec.clone();
                            for option in options {
                                text.push(' ');
                                text.push_str(&option_text(option));
                            }
                            text
                        }
                        Entry::Requirement { .. } => line.raw.clone(),
                    }
                };
                if let Some(slot) = out.get_mut(line.number - 1) {
                    *slot = text;
                }
            }
            let path = copy_path(index);
            std::fs::write(&path, out.join("\n") + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::debug!("pip reads {} as {}", file.path.display(), path.display());
            crate::pipfail::copied(&path, &file.path);
        }
        Ok(self.top.iter().map(|index| copy_path(*index)).collect())
    }
}

/// An option line as pip should read it from a copy elsewhere: a relative `--find-links` that
/// exists next to the file (pip looks there first) made absolute, else the line as written.
fn option_line_text(file: &RequirementsFile, line: &Line, options: &[LineOption]) -> String {
    let directory = std::path::absolute(file.path.parent().unwrap_or(Path::new("")))
        .unwrap_or_else(|_| PathBuf::from("."));
    let mut changed = false;
    let mut tokens = Vec::new();
    for option in options {
        let mut value = option.value.clone();
        if option.name == "--find-links" {
            if let Some(link) = &value {
                let beside = directory.join(link);
                if !is_url(link) && Path::new(link).is_relative() && beside.exists() {
                    value = Some(beside.to_string_lossy().into_owned());
                    changed = true;
                }
            }
        }
        tokens.push(option_text(&LineOption {
            name: option.name,
            value,
        }));
    }
    if changed {
        tokens.join(" ")
    } else {
        line.raw.clone()
    }
}

/// `--name=VALUE`, quoted for pip's `shlex.split`, or `--name`.
pub fn option_text(option: &LineOption) -> String {
    match &option.value {
        Some(value) => format!("{}={}", option.name, quote(value)),
        None => option.name.to_string(),
    }
}

/// Reads a requirements file once, whatever it is (a regular file, a pipe, `/dev/fd/N`).
fn read_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).context("cannot read it")?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("cannot read it")?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!("larger than {MAX_FILE_BYTES} bytes; is it a requirements file?");
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    String::from_utf8(bytes.to_vec()).map_err(|_| anyhow!("not UTF-8 text"))
}
