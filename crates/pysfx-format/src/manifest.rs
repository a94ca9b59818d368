//! The manifest: `.pysfx/manifest.json`, the first entry of every payload.

use serde::{Deserialize, Serialize};

/// Name of the manifest entry inside the payload.
pub const MANIFEST_NAME: &str = ".pysfx/manifest.json";
/// Version of the manifest schema this build writes and understands.
pub const FORMAT_VERSION: u32 = 1;

/// Deserializes a [`Manifest`]: the one place its deserializer is instantiated for JSON text,
/// whether it is read from an artifact or from a receipt (`#[serde(deserialize_with)]`). Left
/// out of line, the deserializer is compiled once into the stub rather than inlined into each
/// caller (the second copy was 48 KB).
#[inline(never)]
pub fn deserialize_manifest<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Manifest, D::Error> {
    Manifest::deserialize(deserializer)
}

/// The most strings (keys and values) a manifest's JSON may hold. A manifest of 1,000 wheels
/// holds about 30,000; each string costs a few dozen bytes once parsed, and a requirement far
/// more once the completeness check reads it, so 64 MiB of `"x",` would cost gigabytes.
pub const MAX_MANIFEST_STRINGS: usize = 1_000_000;

/// The most `Requires-Dist` lines of all a manifest's wheels together (a set of 1,000 wheels
/// with 100 each; the largest distributions on PyPI have a few hundred).
pub const MAX_REQUIRES_DIST: usize = 100_000;

/// A [`Manifest`] from JSON text (trailing whitespace allowed, nothing else), of at most
/// [`MAX_MANIFEST_STRINGS`] strings (counted before it is parsed).
pub(crate) fn manifest_from_slice(text: &[u8]) -> Result<Manifest, serde_json::Error> {
    // Each string opens and closes with a quote; an escaped quote inside one counts too,
    // which only makes a text of many of them refused sooner.
    let quotes = text.iter().filter(|byte| **byte == b'"').count();
    if quotes / 2 > MAX_MANIFEST_STRINGS {
        return Err(serde::de::Error::custom(format!(
            "implausibly many entries ({} strings; at most {MAX_MANIFEST_STRINGS})",
            quotes / 2
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let manifest = deserialize_manifest(&mut deserializer)?;
    deserializer.end()?;
    Ok(manifest)
}

/// Everything the stub needs to know about a payload, and what `pysfx inspect` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Version of the pysfx that packed the artifact.
    pub pysfx_version: String,
    /// Build time in seconds since the epoch, taken from `SOURCE_DATE_EPOCH`; absent when it was
    /// not set (so that the same inputs give the same bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    pub app: AppInfo,
    /// Payload directories extracted as they are, e.g. `static.in/0`.
    #[serde(default)]
    pub static_dirs: Vec<String>,
    /// Every wheel file in the payload, once each, sorted by path.
    pub wheels: Vec<WheelEntry>,
    /// Wheel sets: the stub installs exactly one of them.
    pub sets: Vec<WheelSet>,
    /// Payload paths of the bootstrap wheels (pip, setuptools), offered to every set for the
    /// distributions the set does not have itself.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Sum of the uncompressed sizes of app and static files plus the unpacked wheels.
    pub unpacked_bytes: u64,
    /// Highest glibc version the stub needs, as read from its ELF by the packer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stub_glibc: Option<String>,
    /// The SHA-256 (hex) of the stub: the artifact's bytes before the payload. The payload
    /// digest does not cover them, so `verify` and `--verify` hold the stub to this (absent in
    /// artifacts packed before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stub_sha256: Option<String>,
    /// Byte-code compiled at pack time, per wheel and interpreter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bytecode: Vec<BytecodeBundle>,
    /// Set in a thin artifact (`pack --thin-from OLD`): the artifact its left-out wheels
    /// ([`WheelEntry::from_base`]) were taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thin_from: Option<ThinBase>,
    /// The payload stores its SBOMs (`.pysfx/sbom*.cdx.json`), as every artifact packed since
    /// pysfx stored them does: with this set, an artifact whose SBOMs were all taken out is
    /// corrupt, not one packed before. Absent (false) in artifacts packed before it was
    /// recorded.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sboms: bool,
}

/// The artifact a thin artifact relies on: at install, the wheels it left out come from a
/// release of it (or of any artifact that carried the same wheels) beside DEST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinBase {
    pub app: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Hex SHA-256 of OLD's payload (its trailer digest).
    pub payload_sha256: String,
}

impl Manifest {
    /// The wheels this payload leaves out (a thin artifact's), in manifest order.
    pub fn base_wheels(&self) -> impl Iterator<Item = &WheelEntry> {
        self.wheels.iter().filter(|wheel| wheel.from_base)
    }

    /// For a thin artifact, what it relies on, in one line (untrusted text: escape it).
    pub fn relies_on(&self) -> Option<String> {
        let base = self.thin_from.as_ref()?;
        let version = base
            .version
            .as_deref()
            .map(|version| format!(" {version}"))
            .unwrap_or_default();
        let count = self.base_wheels().count();
        Some(format!(
            "thin: relies on {count} wheel{} of {}{version} (payload {}), taken from a release beside DEST that installed {}",
            if count == 1 { "" } else { "s" },
            base.app,
            base.payload_sha256,
            if count == 1 { "it" } else { "them" },
        ))
    }
}

/// The `.pyc` files of one wheel for one interpreter, compiled at pack time: a stored zip whose
/// members are site-packages-relative paths (`pkg/__pycache__/mod.cpython-311.pyc`). They are
/// timestamp-based `.pyc` files for sources whose mtime is `source_mtime`, so the stub writes
/// the wheel's `.py` files with that mtime and the `.pyc` files stay valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BytecodeBundle {
    /// Payload path of the wheel the byte-code belongs to.
    pub wheel: String,
    /// Payload path of the bundle: `bytecode/<first 16 hex of the wheel's sha256>/<cache_tag>.zip`.
    pub path: String,
    /// `importlib.util.MAGIC_NUMBER` of the compiling interpreter, hex.
    pub magic: String,
    /// `sys.implementation.cache_tag`, e.g. `cpython-311`.
    pub cache_tag: String,
    /// Seconds since the epoch recorded in every `.pyc` as its source's mtime.
    pub source_mtime: u64,
    /// How many `.py` files the bundle covers.
    pub files: u64,
    /// The `__pycache__` directories its files go in, for the stub's free-inode check; 0 in
    /// artifacts packed before it was recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub directories: u64,
    /// Hex SHA-256 of the bundle as stored. A linked install links a wheel's byte-code only
    /// from a release that installed the very same bundle. Empty in artifacts packed before
    /// it was recorded.
    #[serde(default)]
    pub sha256: String,
}

impl BytecodeBundle {
    /// Whether an interpreter with this magic number and cache tag takes the bundle.
    pub fn fits(&self, magic: &str, cache_tag: Option<&str>) -> bool {
        self.magic == magic && cache_tag == Some(self.cache_tag.as_str())
    }
}

/// The application code stored as `<name>/` in the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub name: String,
    /// `--app-version`, or `git describe --always --dirty` of the app's work tree; absent when
    /// neither was there (and in artifacts packed before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub files: u64,
    pub bytes: u64,
}

impl AppInfo {
    /// `" version V"`, or nothing when no version was recorded: how listings name the app.
    pub fn version_suffix(&self) -> String {
        self.version
            .as_deref()
            .map(|version| format!(" version {version}"))
            .unwrap_or_default()
    }
}

/// One wheel file stored (uncompressed) in the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WheelEntry {
    /// Path inside the payload: `wheels/<first 16 hex of sha256>/<filename>`.
    pub path: String,
    pub filename: String,
    /// Distribution name, PEP 503-normalised.
    pub name: String,
    pub version: String,
    /// Hex SHA-256 of the wheel file.
    pub sha256: String,
    pub size: u64,
    /// Sum of the uncompressed sizes of the wheel's members.
    pub unpacked_bytes: u64,
    /// Entries in the wheel's zip directory, by which the stub sizes its install batches; 0 in
    /// artifacts packed before it was recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub members: u64,
    /// Directories an install of the wheel makes in the venv (the distinct parents of what it
    /// writes, the venv's own `bin/` and site-packages aside), for the stub's free-inode
    /// check; 0 in artifacts packed before it was recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub directories: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_python: Option<String>,
    /// `Requires-Dist` of the wheel's METADATA, as written, so the stub can check before
    /// writing that the set it chose meets every requirement (absent in artifacts packed
    /// before it was recorded, whose installs are not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_dist: Vec<String>,
    /// Hex SHA-256 of the wheel's `.dist-info/RECORD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_sha256: Option<String>,
    /// Left out of this (thin) payload: its files come from a release beside DEST that
    /// installed the very same wheel (`sha256`). `path` then names the wheel's husk: a zip of
    /// its `.dist-info/` and `.data/scripts/` members (what an install writes fresh), and
    /// `size` is the husk's; `sha256`, `unpacked_bytes` and `members` stay the whole wheel's.
    #[serde(default, skip_serializing_if = "is_false")]
    pub from_base: bool,
    /// For a wheel left out (`from_base`): the members outside its husk the wheel marks
    /// executable, by name, sorted, so that each file taken from the release beside DEST gets
    /// the wheel's mode, not the one it has there. Absent in thin artifacts packed before it
    /// was recorded (their left-out files keep the executable bit they have in that release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executables: Option<Vec<String>>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// A resolved set of wheels for one target (or for any target when `target` is absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WheelSet {
    /// Display name, e.g. `cp311-manylinux_2_17_x86_64`, `python3.6` or `wheels`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Payload paths of the wheels in this set.
    pub wheels: Vec<String>,
    /// The set's own requirements (PEP 508: the `-r` lines it was resolved from, each as its
    /// distribution, extras, version specifiers and marker), which the stub holds the chosen
    /// wheels to as it holds them to their `Requires-Dist`; absent for a `--wheels` set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
}

/// The interpreter a set was resolved for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// `cp` for CPython.
    pub implementation: String,
    /// `X.Y`.
    pub python_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

impl Manifest {
    /// The manifest entry's bytes, as the writer stores them: what the SBOMs' serial numbers
    /// are derived from (`pysfx_format::SBOM_NAME`).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        // Compact: it is read by programs (`inspect` prints it), and every artifact carries it.
        serde_json::to_vec(self)
    }

    /// The wheel entry stored at `path`.
    pub fn wheel(&self, path: &str) -> Option<&WheelEntry> {
        self.wheels.iter().find(|wheel| wheel.path == path)
    }
}

/// Names the release uses for itself (and the hook names of the venv), and the payload's own
/// directories, which the app may not take: `<app>/` sits beside `venv/` in DEST and beside
/// `wheels/`, `thin/` and `bytecode/` in the payload, and `<app>.pth` beside `loadenv.py` and
/// `loadenv-init.pth` in site-packages.
pub const RESERVED_APP_NAMES: [&str; 12] = [
    "venv",
    "pysfx-stamps",
    "static.in",
    "wheels",
    "thin",
    "bytecode",
    "environment.json",
    "pysfx-receipt.json",
    "pysfx-sbom.cdx.json",
    "loadenv",
    "loadenv-init",
    // `--check` leaves byte-code to Python and passes over `__pycache__` anywhere: an app of
    // that name would go unchecked.
    "__pycache__",
];

/// Checks an app name: letters, digits, `_`, `-` or `.`, not starting with `.` or `-`, at most
/// 100 characters, and not one of [`RESERVED_APP_NAMES`]. The packer checks it when packing,
/// and every reader of a manifest checks it again: an artifact may not be what the packer wrote.
pub fn check_app_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(format!(
            "app name \"{}\" must be 1 to 100 letters, digits, '_', '-' or '.', not starting with '.' or '-'",
            name.escape_debug()
        ));
    }
    if RESERVED_APP_NAMES.contains(&name) {
        return Err(format!(
            "app name {name:?} is reserved for the release layout or pysfx's hooks"
        ));
    }
    Ok(())
}

/// Checks an app version: 1 to 200 characters, none of them a control character nor an
/// invisible one that reorders or hides text (it is printed by `--version`, `--info` and
/// `inspect`, recorded in the receipt, and stock minisign prints it raw in the signature's
/// trusted comment, where U+202E would make "1.0\u{202e}0.2" read as "1.02.0").
pub fn check_app_version(version: &str) -> Result<(), String> {
    if version.is_empty()
        || version.chars().count() > 200
        || version
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err(format!(
            "app version \"{}\" must be 1 to 200 characters, without control, bidirectional or \
             invisible characters",
            version.escape_debug()
        ));
    }
    Ok(())
}

/// Unicode's invisible format characters (category Cf) a terminal may act on: the
/// bidirectional marks, embeddings, overrides and isolates, zero-width characters, the soft
/// hyphen and the byte order mark; and the characters that show as nothing or break a line
/// though they are not controls: the combining grapheme joiner, the Hangul fillers, the line
/// and paragraph separators, the tag characters.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

impl Manifest {
    /// Checks the fields that name places in the release: the app name and the static
    /// directories (`static.in/N`). Wheels and byte-code bundles are read in place by their
    /// payload paths, never written by them.
    pub fn validate(&self) -> Result<(), String> {
        check_app_name(&self.app.name)?;
        let requirements: usize = self.wheels.iter().map(|w| w.requires_dist.len()).sum();
        if requirements > MAX_REQUIRES_DIST {
            return Err(format!(
                "its wheels have {requirements} Requires-Dist lines in all, implausibly many (at \
                 most {MAX_REQUIRES_DIST})"
            ));
        }
        // A set's own requirement lines name distributions and versions, never a URL (PEP
        // 508's `name @ url`, before any marker): the install holds wheels to them by name.
        for set in &self.sets {
            let url = (set.requires.iter())
                .find(|line| line.split(';').next().is_some_and(|r| r.contains('@')));
            if let Some(line) = url {
                return Err(format!(
                    "set \"{}\": the requirement \"{}\" is a URL, which a set's requirements never are",
                    set.name.escape_debug(),
                    line.escape_debug()
                ));
            }
        }
        if let Some(version) = &self.app.version {
            check_app_version(version)?;
        }
        // Printed by inspect, --info and the reports: no control characters.
        let texts = [Some(&self.pysfx_version), self.stub_glibc.as_ref()]
            .into_iter()
            .flatten()
            .chain(self.sets.iter().map(|set| &set.name))
            .chain(self.thin_from.iter().map(|base| &base.app))
            .chain(
                self.thin_from
                    .iter()
                    .filter_map(|base| base.version.as_ref()),
            );
        for text in texts {
            if text.chars().any(char::is_control) || text.len() > 200 {
                // Shown cut: the text may be of any length.
                let shown: String = text.chars().take(60).collect();
                return Err(format!(
                    "\"{}{}\" holds control characters or is too long",
                    shown.escape_debug(),
                    if shown.len() < text.len() { "…" } else { "" }
                ));
            }
        }
        // Printed by inspect, verify and --info, and compared with other artifacts' digests.
        let digests = [
            ("stub_sha256", self.stub_sha256.as_ref()),
            (
                "thin_from.payload_sha256",
                self.thin_from.as_ref().map(|base| &base.payload_sha256),
            ),
        ];
        for (field, digest) in digests {
            if digest.is_some_and(|digest| digest.len() != 64 || !crate::is_lower_hex(digest)) {
                return Err(format!("its {field} is not a SHA-256 in lowercase hex"));
            }
        }
        // A bundle's cache tag names every `.pyc` file it writes, and its magic number is
        // what an interpreter's must be to take it: CPython's own, or the bundle is no one's.
        for bundle in &self.bytecode {
            if !pysfx_wheel::is_cpython_cache_tag(&bundle.cache_tag)
                || !pysfx_wheel::is_cpython_magic(&bundle.magic)
            {
                return Err(format!(
                    "the byte-code {} has the cache tag \"{}\" and magic number \"{}\": no \
                     CPython's",
                    bundle.path.escape_debug(),
                    bundle.cache_tag.escape_debug(),
                    bundle.magic.escape_debug()
                ));
            }
        }
        // A wheel left out is taken from a release of the base the artifact names; its
        // byte-code comes with its files from there, never from this payload.
        for wheel in &self.wheels {
            let Some(executables) = &wheel.executables else {
                continue;
            };
            let filename = wheel.filename.escape_debug();
            if !wheel.from_base {
                return Err(format!(
                    "it lists executable members of {filename}, which it carries whole"
                ));
            }
            // Sorted, once each, and member names (what the packer writes).
            let ordered = executables.windows(2).all(|pair| pair[0] < pair[1]);
            let named = (executables.iter()).all(|name| crate::MemberName::new(name).is_ok());
            if !ordered || !named {
                return Err(format!(
                    "its executable members of {filename} are not sorted member names"
                ));
            }
        }
        for wheel in self.wheels.iter().filter(|wheel| wheel.from_base) {
            if self.thin_from.is_none() {
                return Err(format!(
                    "it leaves {} out of the payload but names no artifact it relies on",
                    wheel.filename.escape_debug()
                ));
            }
            if let Some(bundle) = self.bytecode.iter().find(|b| b.wheel == wheel.path) {
                return Err(format!(
                    "it carries byte-code ({}) for {}, which it leaves out",
                    bundle.path.escape_debug(),
                    wheel.filename.escape_debug()
                ));
            }
        }
        if let Some(base) = self
            .thin_from
            .as_ref()
            .filter(|base| base.app != self.app.name)
        {
            return Err(format!(
                "it is thin from a release of another app ({:?})",
                base.app
            ));
        }
        // Each wheel is in a set or among the bootstrap wheels, and a set names it once.
        let mut named: std::collections::HashSet<&str> =
            self.bootstrap.iter().map(String::as_str).collect();
        for set in &self.sets {
            let mut once = std::collections::HashSet::new();
            for wheel in &set.wheels {
                if !once.insert(wheel.as_str()) {
                    return Err(format!(
                        "set \"{}\" names {} twice",
                        set.name.escape_debug(),
                        wheel.escape_debug()
                    ));
                }
                named.insert(wheel);
            }
        }
        if let Some(wheel) = (self.wheels.iter()).find(|wheel| !named.contains(wheel.path.as_str()))
        {
            return Err(format!(
                "it describes {}, which no set and no bootstrap names",
                wheel.filename.escape_debug()
            ));
        }
        for directory in &self.static_dirs {
            let valid = directory.strip_prefix("static.in/").is_some_and(|n| {
                !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit())
            });
            if !valid {
                return Err(format!(
                    "static directory \"{}\" is not static.in/<number>",
                    directory.escape_debug()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control character is shown escaped once (`\t`), not twice (`\\t`).
    #[test]
    fn refusals_escape_control_characters_once() {
        let error = check_app_version("1\t2").expect_err("a tab");
        assert!(error.contains("\"1\\t2\""), "{error}");
        let error = check_app_name("my\tsite").expect_err("a tab");
        assert!(error.contains("\"my\\tsite\""), "{error}");
    }

    /// A version that would read differently from what it is (U+202E reverses what follows it
    /// on a terminal) is refused; other non-ASCII text is a version like any other.
    #[test]
    fn versions_with_bidirectional_or_invisible_characters_are_refused() {
        for version in [
            "1.0\u{202e}0.2",
            "1.0\u{2066}",
            "1\u{200b}.0",
            "\u{feff}1.0",
            "1.0\u{e0041}",
            "1.0\u{115f}",
            "1.0\u{3164}",
            "1\u{34f}.0",
            "1.0\u{2028}2.0",
        ] {
            let error = check_app_version(version).expect_err(version);
            assert!(error.contains("bidirectional or invisible"), "{error}");
        }
        assert_eq!(check_app_version("1.0-été"), Ok(()));
    }

    /// A small manifest of many tiny strings (a few bytes of JSON each, tens of bytes once
    /// parsed, far more once a requirement is read) is refused before it is parsed; so are
    /// implausibly many requirements.
    #[test]
    fn implausibly_many_entries_are_refused() {
        let manifest = |requires: usize| {
            let requires_dist = vec!["x"; requires];
            serde_json::json!({"format_version": 1, "pysfx_version": "0.1.0",
                "app": {"name": "site", "files": 0, "bytes": 0},
                "sets": [{"name": "wheels", "wheels": ["wheels/x.whl"]}],
                "wheels": [{"path": "wheels/x.whl", "filename": "x-1.0-py3-none-any.whl",
                    "name": "x", "version": "1.0", "sha256": "0".repeat(64), "size": 1,
                    "unpacked_bytes": 1, "requires_dist": requires_dist}],
                "unpacked_bytes": 0})
            .to_string()
        };
        let fits = manifest_from_slice(manifest(MAX_REQUIRES_DIST).as_bytes()).expect("parsed");
        assert_eq!(fits.validate(), Ok(()));
        let over = manifest_from_slice(manifest(MAX_REQUIRES_DIST + 1).as_bytes()).expect("parsed");
        let error = over.validate().expect_err("too many requirements");
        assert!(error.contains("implausibly many"), "{error}");
        let error = manifest_from_slice(manifest(MAX_MANIFEST_STRINGS).as_bytes())
            .expect_err("too many strings")
            .to_string();
        assert!(error.contains("implausibly many entries"), "{error}");
    }

    #[test]
    fn a_sets_requirements_are_never_urls() {
        let manifest: Manifest = serde_json::from_str(
            r#"{"format_version": 1, "pysfx_version": "0.1.0",
                "app": {"name": "site", "files": 0, "bytes": 0},
                "sets": [{"name": "wheels", "wheels": [],
                          "requires": ["django>=5; python_version >= \"3.10\"", "six==1.16.0"]}],
                "wheels": [], "unpacked_bytes": 0}"#,
        )
        .expect("a manifest");
        assert_eq!(manifest.validate(), Ok(()));
        let mut bad = manifest.clone();
        bad.sets[0]
            .requires
            .push("evil @ https://example.com/evil.whl".into());
        let error = bad.validate().expect_err("a URL");
        assert!(error.contains("is a URL"), "{error}");
    }

    /// A bundle's cache tag names the `.pyc` files it writes: only CPython's own (never a
    /// path), with CPython's kind of magic number.
    #[test]
    fn byte_code_is_named_as_cpython_names_it() {
        let manifest: Manifest = serde_json::from_str(
            r#"{"format_version": 1, "pysfx_version": "0.1.0",
                "app": {"name": "site", "files": 0, "bytes": 0},
                "sets": [{"name": "wheels", "wheels": ["wheels/six-1.0-py3-none-any.whl"]}],
                "wheels": [{"path": "wheels/six-1.0-py3-none-any.whl",
                            "filename": "six-1.0-py3-none-any.whl", "name": "six",
                            "version": "1.0", "sha256": "00", "size": 1,
                            "unpacked_bytes": 1}],
                "bytecode": [{"wheel": "wheels/six-1.0-py3-none-any.whl",
                              "path": "bytecode/0000000000000000/cpython-311.zip",
                              "magic": "a70d0d0a", "cache_tag": "cpython-311",
                              "source_mtime": 0, "files": 1}],
                "unpacked_bytes": 1}"#,
        )
        .expect("a manifest");
        assert_eq!(manifest.validate(), Ok(()));
        for (cache_tag, magic) in [
            ("../../../tmp/x", "a70d0d0a"),
            ("cpython-311/../../x", "a70d0d0a"),
            ("cpython-311\u{1b}", "a70d0d0a"),
            ("cpython-311", "zz"),
        ] {
            let mut bad = manifest.clone();
            bad.bytecode[0].cache_tag = cache_tag.into();
            bad.bytecode[0].magic = magic.into();
            let error = bad.validate().expect_err(cache_tag);
            assert!(error.contains("no CPython's"), "{error}");
        }
    }

    #[test]
    fn printed_fields_hold_no_control_characters() {
        let manifest: Manifest = serde_json::from_str(
            r#"{"format_version": 1, "pysfx_version": "0.1.0",
                "app": {"name": "site", "files": 0, "bytes": 0},
                "sets": [{"name": "wheels", "wheels": []}], "wheels": [], "unpacked_bytes": 0}"#,
        )
        .expect("a manifest");
        assert_eq!(manifest.validate(), Ok(()));
        let mut bad = manifest.clone();
        bad.pysfx_version = "0.1\n0".into();
        assert!(bad.validate().is_err());
        let mut bad = manifest.clone();
        bad.sets[0].name = "a\u{1b}[2J".into();
        assert!(bad.validate().is_err());
        let mut bad = manifest.clone();
        bad.thin_from = Some(ThinBase {
            app: "other".into(),
            version: None,
            payload_sha256: "0".repeat(64),
        });
        assert!(bad
            .validate()
            .expect_err("another app")
            .contains("another app"));
        // The base's digest is printed and compared: lowercase hex, 64 digits, nothing else.
        for digest in ["ab\n\u{1b}[2Jcd".to_string(), "zz".into(), "A".repeat(64)] {
            let mut bad = manifest.clone();
            bad.thin_from = Some(ThinBase {
                app: "site".into(),
                version: None,
                payload_sha256: digest.clone(),
            });
            let error = bad.validate().expect_err("a digest that is no SHA-256");
            assert!(
                error.contains("thin_from.payload_sha256"),
                "{digest:?}: {error}"
            );
        }
    }

    #[test]
    fn executable_members_are_a_left_out_wheels_sorted_member_names() {
        let manifest: Manifest = serde_json::from_str(
            r#"{"format_version": 1, "pysfx_version": "0.1.0",
                "app": {"name": "site", "files": 0, "bytes": 0},
                "thin_from": {"app": "site", "payload_sha256": "0000000000000000000000000000000000000000000000000000000000000000"},
                "sets": [{"name": "wheels", "wheels": ["thin/0/a-1.0-py3-none-any.whl"]}],
                "wheels": [{"path": "thin/0/a-1.0-py3-none-any.whl",
                    "filename": "a-1.0-py3-none-any.whl", "name": "a", "version": "1.0",
                    "sha256": "00", "size": 1, "unpacked_bytes": 1, "from_base": true,
                    "executables": ["a/run", "a/tool"]}],
                "unpacked_bytes": 1}"#,
        )
        .expect("a manifest");
        assert_eq!(manifest.validate(), Ok(()));
        for executables in [
            vec!["a/tool", "a/run"],
            vec!["a/run", "a/run"],
            vec!["../../etc/passwd"],
            vec!["/abs"],
        ] {
            let mut bad = manifest.clone();
            bad.wheels[0].executables = Some(executables.iter().map(|n| n.to_string()).collect());
            assert!(bad.validate().is_err(), "{executables:?}");
        }
        let mut whole = manifest.clone();
        whole.wheels[0].from_base = false;
        assert!(whole.validate().is_err());
    }

    #[test]
    fn app_names() {
        for name in ["mysite", "my_site-2.0", "A", "site.sfx"] {
            assert!(check_app_name(name).is_ok(), "{name}");
        }
        let long = "x".repeat(101);
        for name in [
            "",
            ".",
            "..",
            ".hidden",
            "-x",
            "a/b",
            "/tmp/x/planted",
            "../../../x",
            "venv",
            "loadenv",
            "loadenv-init",
            "static.in",
            "bad\u{1b}[2J",
            "tab\tname",
            "caf\u{e9}",
            long.as_str(),
        ] {
            assert!(check_app_name(name).is_err(), "{name:?}");
        }
    }
}
