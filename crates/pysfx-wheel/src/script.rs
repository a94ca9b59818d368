//! Script text: shebangs, `#!python` rewriting, and entry-point launchers.

/// The shebang line (without its newline) that runs `python`. Linux reads at most 127 bytes of
/// a `#!` line and splits it at spaces, so a long path or one with a space gets the `/bin/sh`
/// trampoline that distlib and uv use: `sh` runs the `exec` line, Python sees a string literal.
/// The path is quoted for both: a `'` closes sh's quotes around a double-quoted one, and a
/// backslash is written as sh's `"\\"` — to Python an escaped backslash, where a bare one
/// (`\N`, `\x`, `\u`) would make the literal, and so every script, a syntax error.
pub fn format_shebang(python: &str) -> String {
    if python.len() + 3 > 127 || python.contains([' ', '\t']) {
        let escaped = python.replace('\'', "'\"'\"'").replace('\\', "'\"\\\\\"'");
        format!("#!/bin/sh\n'''exec' '{escaped}' \"$0\" \"$@\"\n' '''")
    } else {
        format!("#!{python}")
    }
}

/// If `content` starts with `#!python` (PEP 427: "must be rewritten"), returns it with the
/// first line replaced by the shebang for `python`; otherwise `None`.
pub fn rewrite_python_shebang(content: &[u8], python: &str) -> Option<Vec<u8>> {
    let end = python_shebang_end(content, true)?;
    let mut out = format_shebang(python).into_bytes();
    out.push(b'\n');
    out.extend_from_slice(&content[end..]);
    Some(out)
}

/// The length of the `#!python` line (its newline included) that `start` — the first bytes of
/// a script, all of it when `complete` — begins with, or `None` when there is none to rewrite
/// (or its end is not within `start`).
pub fn python_shebang_end(start: &[u8], complete: bool) -> Option<usize> {
    if !start.starts_with(b"#!python") {
        return None;
    }
    match start.iter().position(|&byte| byte == b'\n') {
        Some(position) => Some(position + 1),
        None => complete.then_some(start.len()),
    }
}

/// The launcher for `module:attribute`, as the pip for that Python writes it: pip 26 (CPython
/// 3.9 and later) without `re`; distlib's template, as pip up to 25.0 writes it, before 3.9
/// (`str.removesuffix` is 3.9's).
pub fn launcher_script(
    python: &str,
    module: &str,
    attribute: &str,
    (major, minor): (u32, u32),
) -> String {
    let import_name = attribute.split('.').next().unwrap_or(attribute);
    let shebang = format_shebang(python);
    if (major, minor) >= (3, 9) {
        format!(
            "{shebang}\nimport sys\nfrom {module} import {import_name}\nif __name__ == '__main__':\n    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n    sys.exit({attribute}())\n"
        )
    } else {
        format!(
            "{shebang}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {import_name}\nif __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    sys.exit({attribute}())\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_forms() {
        let long = format!("/srv/{}/venv/bin/python", "x".repeat(120));
        let cases = [
            (
                "/srv/app/releases/42/venv/bin/python".to_string(),
                "#!/srv/app/releases/42/venv/bin/python".to_string(),
            ),
            (
                "/srv/my app/venv/bin/python".to_string(),
                "#!/bin/sh\n'''exec' '/srv/my app/venv/bin/python' \"$0\" \"$@\"\n' '''"
                    .to_string(),
            ),
            (
                "/srv/it's/venv/bin/py thon".to_string(),
                "#!/bin/sh\n'''exec' '/srv/it'\"'\"'s/venv/bin/py thon' \"$0\" \"$@\"\n' '''"
                    .to_string(),
            ),
            (
                long.clone(),
                format!("#!/bin/sh\n'''exec' '{long}' \"$0\" \"$@\"\n' '''"),
            ),
        ];
        for (python, expected) in cases {
            assert_eq!(format_shebang(&python), expected, "{python}");
        }
        // 124 bytes + "#!" + newline = 127: still a plain shebang.
        let edge = format!("/{}", "p".repeat(123));
        assert_eq!(format_shebang(&edge), format!("#!{edge}"));
        let over = format!("/{}", "p".repeat(124));
        assert!(format_shebang(&over).starts_with("#!/bin/sh\n"));
    }

    /// A trampoline for an interpreter whose path holds a space, quotes and backslashes that
    /// Python would read as escapes: sh finds the interpreter, and Python reads the script
    /// without a syntax error or warning.
    #[test]
    fn the_trampoline_survives_quotes_and_backslashes() {
        let python = "/root/.pyenv/versions/3.12.1/bin/python3.12";
        let directory = tempfile::tempdir().expect("tempdir");
        let odd = directory.path().join("a \\N b \\x 'c' \\\\ \\u");
        std::fs::create_dir(&odd).expect("mkdir");
        let link = odd.join("python");
        std::os::unix::fs::symlink(python, &link).expect("symlink");
        let script = directory.path().join("tool");
        let text = format!(
            "{}\nimport sys\nprint(sys.argv[1])\n",
            format_shebang(link.to_str().expect("UTF-8"))
        );
        std::fs::write(&script, text).expect("write");
        let output = std::process::Command::new("sh")
            .arg(&script)
            .arg("ran")
            .output()
            .expect("sh");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "ran\n",
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn rewrites_only_hash_bang_python() {
        let python = "/d/venv/bin/python";
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (
                b"#!python\nprint(1)\n",
                Some(b"#!/d/venv/bin/python\nprint(1)\n"),
            ),
            (b"#!pythonw\r\nx\n", Some(b"#!/d/venv/bin/python\nx\n")),
            (b"#!python", Some(b"#!/d/venv/bin/python\n")),
            (b"#!/usr/bin/env python\nx\n", None),
            (b"print(1)\n", None),
            (b"", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                rewrite_python_shebang(input, python).as_deref(),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn launcher_text() {
        let text = launcher_script("/d/venv/bin/python", "pkg.cli", "Main.run", (3, 11));
        assert_eq!(
            text,
            "#!/d/venv/bin/python\nimport sys\nfrom pkg.cli import Main\nif __name__ == '__main__':\n    sys.argv[0] = sys.argv[0].removesuffix('.exe')\n    sys.exit(Main.run())\n"
        );
        let old = launcher_script("/d/venv/bin/python", "pkg.cli", "Main.run", (3, 8));
        assert_eq!(
            old,
            "#!/d/venv/bin/python\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom pkg.cli import Main\nif __name__ == '__main__':\n    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    sys.exit(Main.run())\n"
        );
        let spaced = launcher_script("/my dir/bin/python", "m", "f", (3, 6));
        assert!(spaced.starts_with(
            "#!/bin/sh\n'''exec' '/my dir/bin/python' \"$0\" \"$@\"\n' '''\n# -*- coding"
        ));
    }
}
