//! Script text: shebangs, `#!python` rewriting, and entry-point launchers.

/// The shebang line (without its newline) that runs `python`. Linux reads at most 127 bytes of
/// a `#!` line and splits it at spaces, so a long path or one with a space gets the `/bin/sh`
/// trampoline that distlib and uv use: `sh` runs the `exec` line, Python sees a string literal.
/// The path is quoted for both: a `'` closes sh's quotes around a double-quoted one, and a
/// backslash is written as sh's `"\\"` — to Python an escaped backslash, where a bare one
/// (`\N`, `\x`, `\u`) would make the literal, and so every script, a syntax error.
pub fn format_shebang(python: &str) -> String {
    shebang_within(python, 127)
}

/// [`format_shebang`] for a kernel that reads `limit` bytes of a `#!` line (127 before Linux
/// 5.1, 255 since): the plain line when it fits, newline included, and the path has no space.
fn shebang_within(python: &str, limit: usize) -> String {
    if python.len() + 3 > limit || python.contains([' ', '\t']) {
        let escaped = python.replace('\'', "'\"'\"'").replace('\\', "'\"\\\\\"'");
        format!("#!/bin/sh\n'''exec' '{escaped}' \"$0\" \"$@\"\n' '''")
    } else {
        format!("#!{python}")
    }
}

/// The line a `.data/scripts/` file's `#!python` line becomes; `rest` is the script after that
/// line. pip writes `#!PYTHON` however long the path, and the trampoline changes what the
/// script means (its string becomes the module's docstring, and only one may come before a
/// `from __future__` import), so it is used only when the kernel could not run the plain line:
/// longer than `limit` (the running kernel's, [`format_shebang`]) or split at a space. Python
/// reads an encoding declaration only on line 1 or 2, so the script's own, on the line after
/// `#!python`, is then copied as the trampoline's second line (to sh, a comment).
pub fn script_shebang(python: &str, limit: usize, rest: &[u8]) -> String {
    let line = shebang_within(python, limit);
    let Some(tail) = line.strip_prefix("#!/bin/sh\n") else {
        return line;
    };
    let next = rest.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let next = next.strip_suffix(b"\r").unwrap_or(next);
    match std::str::from_utf8(next) {
        Ok(cookie) if is_encoding_declaration(cookie) => format!("#!/bin/sh\n{cookie}\n{tail}"),
        _ => line,
    }
}

/// PEP 263's `^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)`.
fn is_encoding_declaration(line: &str) -> bool {
    let Some(comment) = line
        .trim_start_matches([' ', '\t', '\x0c'])
        .strip_prefix('#')
    else {
        return false;
    };
    comment.match_indices("coding").any(|(at, _)| {
        let after = &comment[at + "coding".len()..];
        let Some(value) = after.strip_prefix([':', '=']) else {
            return false;
        };
        value
            .trim_start_matches([' ', '\t'])
            .starts_with(|c: char| c.is_alphanumeric() || "-_.".contains(c))
    })
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
    fn a_script_keeps_a_plain_line_the_kernel_can_run_and_its_encoding_declaration() {
        let long = format!("/{}/venv/bin/python", "d".repeat(150));
        let latin = b"# -*- coding: latin-1 -*-\r\nprint('\xe9')\n";
        // Linux 5.1 and later read 255 bytes of the line: pip's plain line, as pip writes it.
        assert_eq!(script_shebang(&long, 255, latin), format!("#!{long}"));
        // Before, 127: the trampoline, with the declaration Python must see on line 2.
        let wrapped = script_shebang(&long, 127, latin);
        assert!(
            wrapped.starts_with("#!/bin/sh\n# -*- coding: latin-1 -*-\n'''exec' '/"),
            "{wrapped}"
        );
        assert_eq!(
            script_shebang(&long, 127, b"print(1)\n"),
            format_shebang(&long)
        );
        assert!(script_shebang("/my dir/bin/python", 255, b"").starts_with("#!/bin/sh\n'''exec'"));
        for (line, declares) in [
            ("# -*- coding: utf-8 -*-", true),
            ("#coding=latin-1", true),
            ("  # vim: set fileencoding=cp1252 :", true),
            ("# coding latin-1", false),
            ("print('coding: x')", false),
            ("# coding: ", false),
        ] {
            assert_eq!(is_encoding_declaration(line), declares, "{line}");
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
