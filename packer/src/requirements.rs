//! Requirements files read as pip reads them (`pip/_internal/req/req_file.py` and
//! `constructors.py`, pip 23), so that pysfx sees every requirement line before pip does:
//! `pip download --only-binary=:all:` (the `--target` collection) passes over a local project
//! or an sdist URL without a word, so those lines are built into wheels first and the files pip
//! reads are rewritten to name the wheels. A file is read once, so `-r <(…)` works.
//!
//! pip's rules mirrored here: continuation lines (a trailing `\`) are joined, then comments (a
//! `#` at the start or after whitespace) removed, then `${VAR}` expanded; the text before the
//! first token starting with `-` is the requirement, the rest options (`shlex`-split). A nested
//! `-r`/`-c` path is relative to the file that names it; a requirement's path (`./mylib`) is
//! relative to the current directory, as pip resolves it, and so is left as written; a
//! relative `--find-links` is relative to the file when it exists there.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// A requirements file larger than this is refused (they are a few KiB).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Nested `-r`/`-c` deeper than this is taken for a cycle.
const MAX_DEPTH: usize = 32;

/// One option of a line, by its long name (`--requirement`, `--hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOption {
    pub name: &'static str,
    pub value: Option<String>,
}

/// What a logical line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A requirement: the text before the options (or `-e`'s value), and the per-requirement
    /// options (`--hash`, `--config-settings`, `--global-option`).
    Requirement {
        spec: String,
        editable: bool,
        options: Vec<LineOption>,
    },
    /// `-r FILE` or `-c FILE`: pip reads that file in its place (other options on the line are
    /// ignored, as pip ignores them).
    Nested { path: String, constraint: bool },
    /// Options only (`-i`, `--extra-index-url`, `-f`, `--no-index`, `--pre`, …).
    Options(Vec<LineOption>),
}

/// A logical line: its first physical line number, its text as written (joined, comment
/// removed, variables not expanded) and what it says (variables expanded).
#[derive(Debug, Clone)]
pub struct Line {
    pub number: usize,
    pub raw: String,
    pub entry: Entry,
}

/// One requirements file as read.
#[derive(Debug, Clone)]
pub struct RequirementsFile {
    /// The path as given on the command line, or joined to its parent's directory.
    pub path: PathBuf,
    pub constraint: bool,
    /// Physical lines in the file: copies keep every line at its number, so pip's messages
    /// ("line 7") point into the original.
    pub physical_lines: usize,
    pub lines: Vec<Line>,
    /// For each nested line (by index in `lines`): the file it names, by index in
    /// [`Requirements::files`]; `None` for a URL (pip fetches it; pysfx does not look inside).
    pub nested: Vec<(usize, Option<usize>)>,
}

/// The `-r` files and everything they name.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub files: Vec<RequirementsFile>,
    /// The `-r` files of the command line, by index in `files`.
    pub top: Vec<usize>,
}

/// A requirement line that pip download cannot collect as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A name with a version specifier, for the index.
    Named(String),
    /// A wheel file or a URL of one: pip download takes it as it is.
    Wheel(String),
    /// A local project directory, an sdist or a VCS or sdist URL: built into a wheel first.
    Build(BuildSpec),
}

/// What to build, and what to keep of the line when it is replaced by the built wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The requirement without its environment marker (`./mylib[extra]`,
    /// `name @ git+https://…`): what `pip wheel` builds.
    pub requirement: String,
    /// `[extra,…]` as written, to request the same extras of the wheel.
    pub extras: Option<String>,
    pub marker: Option<String>,
}

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

/// pip's `join_lines` then `ignore_comments`: (first physical line number, text).
pub fn logical_lines(content: &str) -> Vec<(usize, String)> {
    let mut joined = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in content.lines().enumerate() {
        let number = index + 1;
        let comment = line.trim_start().starts_with('#');
        if !line.ends_with('\\') || comment {
            // A comment line ends a continuation; pip prefixes it with a space so the
            // comment is still removed after joining.
            let line = if comment {
                format!(" {line}")
            } else {
                line.to_string()
            };
            match pending.take() {
                Some((first, mut text)) => {
                    text.push_str(&line);
                    joined.push((first, text));
                }
                None => joined.push((number, line)),
            }
        } else {
            // line.strip("\\"): every backslash at either end goes.
            let part = line.trim_matches('\\');
            match &mut pending {
                Some((_, text)) => text.push_str(part),
                None => pending = Some((number, part.to_string())),
            }
        }
    }
    if let Some(last) = pending {
        joined.push(last);
    }
    joined
        .into_iter()
        .filter_map(|(number, line)| {
            let text = strip_comment(&line).trim().to_string();
            (!text.is_empty()).then_some((number, text))
        })
        .collect()
}

/// `re.sub(r"(^|\s+)#.*$", "", line)`: from the first `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (index, character) in line.char_indices() {
        if character == '#' && previous_is_space {
            return line[..index].trim_end();
        }
        previous_is_space = character.is_whitespace();
    }
    line
}

/// pip's `expand_env_variables`: `${NAME}` (upper-case letters, digits, `_`) becomes the
/// variable's value; an unset or empty variable leaves the text as it is.
pub fn expand_variables(line: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if name_len > 0 && after[name_len..].starts_with('}') {
            match lookup(name).filter(|value| !value.is_empty()) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&rest[start..start + 3 + name_len]),
            }
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The options pip accepts in a requirements file, by long name, with their short names and
/// whether they take a value.
const OPTIONS: [(&str, Option<&str>, bool); 17] = [
    ("--index-url", Some("-i"), true),
    ("--extra-index-url", None, true),
    ("--no-index", None, false),
    ("--constraint", Some("-c"), true),
    ("--requirement", Some("-r"), true),
    ("--editable", Some("-e"), true),
    ("--find-links", Some("-f"), true),
    ("--no-binary", None, true),
    ("--only-binary", None, true),
    ("--prefer-binary", None, false),
    ("--require-hashes", None, false),
    ("--pre", None, false),
    ("--trusted-host", None, true),
    ("--use-feature", None, true),
    ("--global-option", None, true),
    ("--hash", None, true),
    ("--config-settings", Some("-C"), true),
];

/// Parses one logical line (variables expanded) as pip's `break_args_options` and optparse do.
pub fn parse_line(line: &str) -> Result<Entry, String> {
    // break_args_options: tokens split on single spaces, up to the first starting with '-'.
    let tokens: Vec<&str> = line.split(' ').collect();
    let split = tokens
        .iter()
        .position(|token| token.starts_with('-'))
        .unwrap_or(tokens.len());
    let spec = tokens[..split].join(" ");
    let options = parse_options(&shell_split(&tokens[split..].join(" "))?)?;
    let value = |name: &str| {
        options
            .iter()
            .find(|option| option.name == name)
            .and_then(|option| option.value.clone())
    };
    let per_requirement = |options: &[LineOption]| {
        options
            .iter()
            .filter(|option| {
                matches!(
                    option.name,
                    "--hash" | "--config-settings" | "--global-option"
                )
            })
            .cloned()
            .collect()
    };
    if !spec.is_empty() {
        return Ok(Entry::Requirement {
            spec,
            editable: false,
            options: per_requirement(&options),
        });
    }
    if let Some(editable) = value("--editable") {
        return Ok(Entry::Requirement {
            spec: editable,
            editable: true,
            options: per_requirement(&options),
        });
    }
    if let Some(path) = value("--requirement") {
        return Ok(Entry::Nested {
            path,
            constraint: false,
        });
    }
    if let Some(path) = value("--constraint") {
        return Ok(Entry::Nested {
            path,
            constraint: true,
        });
    }
    Ok(Entry::Options(options))
}

/// optparse over pip's requirements-file options: `-rFILE`, `-r FILE`, `--requirement FILE`,
/// `--requirement=FILE`.
fn parse_options(tokens: &[String]) -> Result<Vec<LineOption>, String> {
    let mut options = Vec::new();
    let mut index = 0;
    while index < tokens.len() {
        let token = &tokens[index];
        index += 1;
        let (known, attached) = if let Some(long) = token.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            // optparse takes a unique prefix of a long option (`--extra-index`).
            let exact = OPTIONS
                .iter()
                .find(|(option, _, _)| option.get(2..) == Some(name));
            let prefixed: Vec<_> = OPTIONS
                .iter()
                .filter(|(option, _, _)| !name.is_empty() && option[2..].starts_with(name))
                .collect();
            let known = exact.or(match prefixed.as_slice() {
                [only] => Some(*only),
                _ => None,
            });
            (known, attached)
        } else if token.starts_with('-') && token.len() >= 2 {
            let (short, rest) = token.split_at(2);
            let known = OPTIONS.iter().find(|(_, option, _)| *option == Some(short));
            (known, (!rest.is_empty()).then(|| rest.to_string()))
        } else {
            return Err(format!("unexpected {token:?} among the options"));
        };
        let Some((name, _, takes_value)) = known else {
            return Err(format!("no such option: {token}"));
        };
        let value = if *takes_value {
            match attached {
                Some(value) => Some(value),
                None => {
                    let value = tokens
                        .get(index)
                        .cloned()
                        .ok_or_else(|| format!("{name} requires a value"))?;
                    index += 1;
                    Some(value)
                }
            }
        } else {
            if attached.is_some() {
                return Err(format!("{name} takes no value"));
            }
            None
        };
        options.push(LineOption { name, value });
    }
    Ok(options)
}

/// `shlex.split` (POSIX mode): whitespace separates, `'…'` is literal, `"…"` takes `\"` and
/// `\\`, a backslash outside quotes escapes the next character.
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                in_token = true;
                loop {
                    match characters.next() {
                        Some('\'') => break,
                        Some(inner) => current.push(inner),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match characters.next() {
                        Some('"') => break,
                        Some('\\') => match characters.next() {
                            Some(escaped @ ('"' | '\\')) => current.push(escaped),
                            Some(other) => {
                                current.push('\\');
                                current.push(other);
                            }
                            None => return Err("no closing quotation".into()),
                        },
                        Some(inner) => current.push(inner),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '\\' => {
                in_token = true;
                match characters.next() {
                    Some(escaped) => current.push(escaped),
                    None => return Err("no escaped character".into()),
                }
            }
            space if space.is_whitespace() => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            other => {
                in_token = true;
                current.push(other);
            }
        }
    }
    if in_token {
        tokens.push(current);
    }
    Ok(tokens)
}

/// Quotes a value for [`shell_split`] when it needs it.
pub fn quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if safe {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r#"'"'"'"#))
    }
}

/// A nested file named by URL (pip's `SCHEME_RE`): pip fetches it.
fn is_remote_file(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    ["http:", "https:", "file:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// pip's `is_url`: a scheme pip downloads from or checks out.
fn is_url(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    matches!(scheme.as_str(), "http" | "https" | "file" | "ftp") || is_vcs_scheme(&scheme)
}

fn is_vcs_scheme(scheme: &str) -> bool {
    ["git+", "hg+", "svn+", "bzr+"]
        .iter()
        .any(|prefix| scheme.starts_with(prefix))
}

/// pip's `_looks_like_path`.
fn looks_like_path(text: &str) -> bool {
    text.contains('/') || text.starts_with('.')
}

/// pip's archive extensions (`is_archive_file`), wheels included.
fn is_archive(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        ".whl",
        ".zip",
        ".tar.bz2",
        ".tbz",
        ".tar.xz",
        ".txz",
        ".tlz",
        ".tar.lz",
        ".tar.lzma",
        ".tar.gz",
        ".tgz",
        ".tar",
    ]
    .iter()
    .any(|extension| lower.ends_with(extension))
}

/// A URL's path ends in `.whl` (pip's `Link.is_wheel`).
fn url_is_wheel(url: &str) -> bool {
    let path = url.split(['#', '?']).next().unwrap_or(url);
    path.ends_with(".whl")
}

/// The name at the start of a PEP 508 requirement.
fn leading_name(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(text.len());
    let name = &text[..end];
    let valid = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    valid.then_some(name)
}

/// Says where a requirement comes from, as pip's `parse_req_from_line` decides it. `is_dir` and
/// `is_file` answer for paths relative to the current directory.
pub fn classify(
    spec: &str,
    is_dir: impl Fn(&str) -> bool,
    is_file: impl Fn(&str) -> bool,
) -> Source {
    // A URL's marker must follow "; " (a ';' may be part of the URL).
    let separator = if is_url(spec) { "; " } else { ";" };
    let (requirement, marker) = match spec.split_once(separator) {
        Some((requirement, marker)) => (
            requirement.trim(),
            Some(marker.trim().to_string()).filter(|marker| !marker.is_empty()),
        ),
        None => (spec.trim(), None),
    };
    let build = |extras: Option<String>| {
        Source::Build(BuildSpec {
            requirement: requirement.to_string(),
            extras,
            marker: marker.clone(),
        })
    };
    let from_url = |url: &str, extras: Option<String>| {
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !is_vcs_scheme(&scheme) && url_is_wheel(url) {
            Source::Wheel(spec.to_string())
        } else {
            build(extras)
        }
    };
    if is_url(requirement) {
        return from_url(requirement, None);
    }
    // _strip_extras: "path[extra]".
    let (path, extras) = match requirement
        .strip_suffix(']')
        .and_then(|r| r.rsplit_once('['))
    {
        Some((path, extras)) if !path.is_empty() && !extras.is_empty() && !extras.contains(']') => {
            (path, Some(format!("[{extras}]")))
        }
        _ => (requirement, None),
    };
    if looks_like_path(requirement) && is_dir(path) {
        return build(extras);
    }
    // An archive name that is no file, with an '@' after something that is no path, is a
    // PEP 508 URL requirement.
    let direct_reference = requirement
        .split_once('@')
        .is_some_and(|(before, _)| !looks_like_path(before));
    if is_archive(path) && (is_file(path) || !direct_reference) {
        return if path.ends_with(".whl") {
            Source::Wheel(spec.to_string())
        } else {
            build(extras)
        };
    }
    // PEP 508 direct reference: "name[extras] @ url".
    if let Some((name, url)) = requirement.split_once('@') {
        let url = url.trim();
        if let Some(bare) = leading_name(name.trim()) {
            if url.contains(':') {
                let extras = name.trim()[bare.len()..].trim();
                let extras = (!extras.is_empty()).then(|| extras.to_string());
                return from_url(url, extras);
            }
        }
    }
    Source::Named(leading_name(requirement).unwrap_or(requirement).to_string())
}

/// The distribution a requirement line names, when the line says it without building
/// anything: a name, a `name @ url`, a wheel's file name, a URL's `#egg=name`.
pub fn named_distribution(spec: &str, source: &Source) -> Option<String> {
    match source {
        Source::Named(name) => Some(name.clone()),
        Source::Wheel(text) => {
            let requirement = text.split(';').next().unwrap_or(text).trim();
            if let Some((name, _)) = requirement.split_once('@') {
                if let Some(name) = leading_name(name.trim()) {
                    return Some(name.to_string());
                }
            }
            let file = requirement
                .split(['#', '?'])
                .next()
                .unwrap_or(requirement)
                .rsplit('/')
                .next()
                .unwrap_or(requirement);
            file.split('-').next().map(str::to_string)
        }
        Source::Build(_) => spec
            .split_once("#egg=")
            .and_then(|(_, egg)| leading_name(egg))
            .map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_lines_as_pip_joins_and_strips_them() {
        let text = "django>=4 # the framework\n\n# a comment\nrequests \\\n  [socks]\n\
                    git+https://host/x.git#egg=x\na#b\n  -r other.txt  \nlast \\";
        assert_eq!(
            logical_lines(text),
            vec![
                (1, "django>=4".to_string()),
                (4, "requests   [socks]".to_string()),
                (6, "git+https://host/x.git#egg=x".to_string()),
                (7, "a#b".to_string()),
                (8, "-r other.txt".to_string()),
                (9, "last".to_string()),
            ]
        );
        // A comment line ends a continuation.
        assert_eq!(
            logical_lines("a \\\n# note\nb"),
            vec![(1, "a".to_string()), (3, "b".to_string())]
        );
    }

    #[test]
    fn variables_expand_as_pip_expands_them() {
        let lookup = |name: &str| match name {
            "TOKEN" => Some("s3cret".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let cases = [
            (
                "-i https://${TOKEN}@host/simple",
                "-i https://s3cret@host/simple",
            ),
            ("${UNSET}/x", "${UNSET}/x"),
            ("${EMPTY}", "${EMPTY}"),
            ("${lower}", "${lower}"),
            ("$TOKEN ${TOKEN", "$TOKEN ${TOKEN"),
        ];
        for (line, expected) in cases {
            assert_eq!(expand_variables(line, lookup), expected, "{line}");
        }
    }

    #[test]
    fn lines_parse_into_requirements_nested_files_and_options() {
        let requirement =
            |spec: &str, editable: bool, options: Vec<LineOption>| Entry::Requirement {
                spec: spec.to_string(),
                editable,
                options,
            };
        let option = |name: &'static str, value: Option<&str>| LineOption {
            name,
            value: value.map(str::to_string),
        };
        let cases = [
            ("django>=4", requirement("django>=4", false, vec![])),
            (
                "requests ; python_version < \"3.8\"",
                requirement("requests ; python_version < \"3.8\"", false, vec![]),
            ),
            (
                "six==1.16.0 --hash=sha256:abc --hash sha256:def",
                requirement(
                    "six==1.16.0",
                    false,
                    vec![
                        option("--hash", Some("sha256:abc")),
                        option("--hash", Some("sha256:def")),
                    ],
                ),
            ),
            ("-e ./mylib", requirement("./mylib", true, vec![])),
            ("--editable=../x", requirement("../x", true, vec![])),
            (
                "-r other.txt",
                Entry::Nested {
                    path: "other.txt".into(),
                    constraint: false,
                },
            ),
            (
                "-rsub/more.txt",
                Entry::Nested {
                    path: "sub/more.txt".into(),
                    constraint: false,
                },
            ),
            (
                "--constraint 'c d.txt'",
                Entry::Nested {
                    path: "c d.txt".into(),
                    constraint: true,
                },
            ),
            (
                "-i https://host/simple --no-index",
                Entry::Options(vec![
                    option("--index-url", Some("https://host/simple")),
                    option("--no-index", None),
                ]),
            ),
            (
                "--find-links=wheels",
                Entry::Options(vec![option("--find-links", Some("wheels"))]),
            ),
            (
                "--extra-index https://host/simple --require-h",
                Entry::Options(vec![
                    option("--extra-index-url", Some("https://host/simple")),
                    option("--require-hashes", None),
                ]),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_line(line), Ok(expected), "{line}");
        }
        // "--p" is ambiguous: --pre, --prefer-binary.
        for bad in ["-r", "--bogus x", "--no-index=1", "-i 'unclosed", "--p"] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shell_split_and_quote_round_trip() {
        assert_eq!(
            shell_split(r#"a 'b c' "d \" e" f\ g"#),
            Ok(vec![
                "a".to_string(),
                "b c".to_string(),
                "d \" e".to_string(),
                "f g".to_string()
            ])
        );
        for value in ["plain/path.txt", "with space", "it's", "", "${VAR}"] {
            assert_eq!(shell_split(&quote(value)), Ok(vec![value.to_string()]));
        }
    }

    #[test]
    fn requirement_sources_as_pip_tells_them_apart() {
        let is_dir =
            |path: &str| matches!(path, "./mylib" | "." | "../other" | "/abs/lib" | "sub/lib");
        let is_file =
            |path: &str| matches!(path, "./dist/x-1.0-py3-none-any.whl" | "./x-1.0.tar.gz");
        let build = |requirement: &str, extras: Option<&str>, marker: Option<&str>| {
            Source::Build(BuildSpec {
                requirement: requirement.to_string(),
                extras: extras.map(str::to_string),
                marker: marker.map(str::to_string),
            })
        };
        let cases = [
            ("django>=4.2", Source::Named("django".into())),
            (
                "Django[argon2]~=4.2; python_version>'3'",
                Source::Named("Django".into()),
            ),
            // A bare name is the index's, even when a directory of that name exists.
            ("mylib", Source::Named("mylib".into())),
            ("./mylib", build("./mylib", None, None)),
            (
                "./mylib[extra]",
                build("./mylib[extra]", Some("[extra]"), None),
            ),
            (".", build(".", None, None)),
            (
                "../other ; sys_platform == 'linux'",
                build("../other", None, Some("sys_platform == 'linux'")),
            ),
            ("/abs/lib", build("/abs/lib", None, None)),
            ("sub/lib", build("sub/lib", None, None)),
            ("./x-1.0.tar.gz", build("./x-1.0.tar.gz", None, None)),
            ("file:///abs/lib", build("file:///abs/lib", None, None)),
            (
                "git+https://host/x.git@v1#egg=x",
                build("git+https://host/x.git@v1#egg=x", None, None),
            ),
            (
                "https://host/x-1.0.tar.gz",
                build("https://host/x-1.0.tar.gz", None, None),
            ),
            (
                "x[a] @ git+https://host/x.git",
                build("x[a] @ git+https://host/x.git", Some("[a]"), None),
            ),
            (
                "x @ https://host/x-1.0.zip ; python_version<'4'",
                build(
                    "x @ https://host/x-1.0.zip",
                    None,
                    Some("python_version<'4'"),
                ),
            ),
            (
                "./dist/x-1.0-py3-none-any.whl",
                Source::Wheel("./dist/x-1.0-py3-none-any.whl".into()),
            ),
            (
                "https://host/x-1.0-py3-none-any.whl",
                Source::Wheel("https://host/x-1.0-py3-none-any.whl".into()),
            ),
            (
                "x @ https://host/x-1.0-py3-none-any.whl",
                Source::Wheel("x @ https://host/x-1.0-py3-none-any.whl".into()),
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(classify(spec, is_dir, is_file), expected, "{spec}");
        }
    }

    #[test]
    fn copies_keep_line_numbers_and_point_at_each_other() {
        let directory = tempfile::tempdir().expect("tempdir");
        let root = directory.path();
        std::fs::create_dir_all(root.join("sub/wheels")).expect("mkdir");
        std::fs::write(
            root.join("reqs.txt"),
            "# top\n-r sub/more.txt\ndjango \\\n  >=4\n-e ./mylib\n./other ; python_version>'3'\n",
        )
        .expect("write");
        std::fs::write(
            root.join("sub/more.txt"),
            "-f wheels\n--find-links elsewhere\n-c pins.txt\n",
        )
        .expect("write");
        std::fs::write(root.join("sub/pins.txt"), "django<5\n").expect("write");
        let requirements = Requirements::read(&[root.join("reqs.txt")]).expect("read");
        assert_eq!(requirements.files.len(), 3);
        assert!(requirements.files[2].constraint);
        let replace = std::collections::HashMap::from([(
            (0, 6),
            "/built/other.whl ; python_version>'3'".to_string(),
        )]);
        let out = root.join("copies");
        let top = requirements.write_copies(&out, &replace).expect("copies");
        assert_eq!(top, vec![out.join("0.txt")]);
        let copy = std::fs::read_to_string(out.join("0.txt")).expect("read");
        assert_eq!(
            copy,
            format!(
                "\n-r {}\ndjango   >=4\n\n./mylib\n/built/other.whl ; python_version>'3'\n",
                out.join("1.txt").display()
            )
        );
        let copy = std::fs::read_to_string(out.join("1.txt")).expect("read");
        assert_eq!(
            copy,
            format!(
                "--find-links={}\n--find-links elsewhere\n-c {}\n",
                std::path::absolute(root.join("sub"))
                    .expect("absolute")
                    .join("wheels")
                    .display(),
                out.join("2.txt").display()
            )
        );
        // A file that names itself is refused, not followed for ever.
        std::fs::write(root.join("loop.txt"), "-r loop.txt\n").expect("write");
        let error = Requirements::read(&[root.join("loop.txt")]).expect_err("a cycle");
        assert!(error.to_string().contains("nested"), "{error:#}");
    }

    #[test]
    fn hash_checking_mode_is_seen_in_nested_files_and_option_lines() {
        let directory = tempfile::tempdir().expect("tempdir");
        let root = directory.path();
        let read = |text: &str| {
            std::fs::write(root.join("reqs.txt"), text).expect("write");
            Requirements::read(&[root.join("reqs.txt")]).expect("read")
        };
        std::fs::write(root.join("hashed.txt"), "six==1.16 --hash=sha256:abc\n").expect("write");
        assert!(read("-r hashed.txt\n").checks_hashes());
        assert!(read("--require-hashes\nsix==1.16\n").checks_hashes());
        assert!(read("six==1.16 \\\n    --hash=sha256:abc\n").checks_hashes());
        assert!(!read("six==1.16\n# --hash=sha256:abc\n").checks_hashes());
    }

    #[test]
    fn named_distributions_of_lines_that_need_no_build() {
        let cases = [
            ("django>=4", Some("django")),
            ("./dist/x_y-1.0-py3-none-any.whl", Some("x_y")),
            ("x @ https://host/x-1.0-py3-none-any.whl", Some("x")),
            ("git+https://host/x.git#egg=xpkg", Some("xpkg")),
            ("./mylib", None),
        ];
        let is_dir = |path: &str| path == "./mylib";
        for (spec, expected) in cases {
            let source = classify(spec, is_dir, |_: &str| false);
            assert_eq!(
                named_distribution(spec, &source).as_deref(),
                expected,
                "{spec}"
            );
        }
    }
}
