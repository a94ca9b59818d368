//! `entry_points.txt`: an INI file whose `[console_scripts]` and `[gui_scripts]` sections name
//! the launchers to generate.

/// One launcher to generate: `name = module:attr.attr [extras]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    pub name: String,
    pub module: String,
    /// Attribute path inside the module, e.g. `cli.main`.
    pub attribute: String,
    pub gui: bool,
}

/// The scripts declared by a wheel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryPoints {
    pub scripts: Vec<EntryPoint>,
}

fn is_dotted_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || c == '_')
        })
}

impl EntryPoints {
    /// Parses the text; sections other than the two script sections are ignored.
    pub fn parse(text: &str) -> Result<EntryPoints, String> {
        let mut scripts = Vec::new();
        let mut section: Option<bool> = None;
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = match name.trim() {
                    "console_scripts" => Some(false),
                    "gui_scripts" => Some(true),
                    _ => None,
                };
                continue;
            }
            let Some(gui) = section else { continue };
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected name = module:function", number + 1))?;
            let name = name.trim();
            // Drop extras: `module:attr [extra1,extra2]`.
            let value = value.split('[').next().unwrap_or_default().trim();
            let (module, attribute) = value
                .split_once(':')
                .ok_or_else(|| format!("line {}: {value:?} is not module:function", number + 1))?;
            let (module, attribute) = (module.trim(), attribute.trim());
            if !is_dotted_identifier(module) || !is_dotted_identifier(attribute) {
                return Err(format!(
                    "line {}: {value:?} is not module:function",
                    number + 1
                ));
            }
            // A file name in bin/, as member names are held: no control characters either.
            if name.is_empty()
                || name.contains(['/', '\\'])
                || name.chars().any(char::is_control)
                || name == "."
                || name == ".."
                || name.len() > 255
            {
                return Err(format!("line {}: invalid script name {name:?}", number + 1));
            }
            scripts.push(EntryPoint {
                name: name.to_string(),
                module: module.to_string(),
                attribute: attribute.to_string(),
                gui,
            });
        }
        // pip writes the console launchers, then the GUI ones over them: a name in both
        // sections is the GUI entry point's.
        // (A scan, not a set: a wheel declares a handful, and the stub's size counts.)
        let shadowed: Vec<bool> = (scripts.iter())
            .map(|script| !script.gui && scripts.iter().any(|o| o.gui && o.name == script.name))
            .collect();
        let mut index = 0;
        scripts.retain(|_| {
            index += 1;
            !shadowed[index - 1]
        });
        Ok(EntryPoints { scripts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_in_both_sections_is_the_gui_entry_point() {
        let text = "[console_scripts]\ndup = a.cli:main\nonly = a.cli:other\n[gui_scripts]\ndup = a.gui:main\n";
        let parsed = EntryPoints::parse(text).expect("parse");
        let got: Vec<(&str, &str, bool)> = (parsed.scripts.iter())
            .map(|s| (s.name.as_str(), s.module.as_str(), s.gui))
            .collect();
        assert_eq!(got, [("only", "a.cli", false), ("dup", "a.gui", true)]);
    }

    #[test]
    fn parses_script_sections() {
        let text = "[console_scripts]\nchardetect = chardet.cli.chardetect:main\npip3 = pip._internal.cli.main:main [extra]\n\n[gui_scripts]\nviewer=app.gui:App.run\n[other]\nx = y:z\n";
        let parsed = EntryPoints::parse(text).expect("parse");
        let got: Vec<(&str, &str, &str, bool)> = parsed
            .scripts
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.module.as_str(),
                    s.attribute.as_str(),
                    s.gui,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("chardetect", "chardet.cli.chardetect", "main", false),
                ("pip3", "pip._internal.cli.main", "main", false),
                ("viewer", "app.gui", "App.run", true),
            ]
        );
    }

    #[test]
    fn rejects_unsafe_or_malformed_entries() {
        let cases = [
            "[console_scripts]\n../evil = a:b\n",
            "[console_scripts]\nsub/evil = a:b\n",
            "[console_scripts]\nx = a\n",
            "[console_scripts]\nx = a:b; import os\n",
            "[console_scripts]\nx = os.system('id'):b\n",
            "[console_scripts]\nnoequals\n",
            "[console_scripts]\na\u{1}b = a:b\n",
            "[console_scripts]\nbell\u{7} = a:b\n",
        ];
        for text in cases {
            assert!(EntryPoints::parse(text).is_err(), "{text:?}");
        }
    }
}
