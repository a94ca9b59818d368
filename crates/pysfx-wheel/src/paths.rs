//! Member names: the one check every zip member (payload or wheel) passes before it may be
//! written anywhere.

/// Checks a zip member name: non-empty, relative, `/`-separated, with no `.` or `..`
/// components, no empty components (a directory's trailing `/` aside), no backslash, and no
/// NUL or control characters. Returns the reason when it is refused.
pub fn validate_member_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.chars().any(char::is_control) {
        return Err("control character in name");
    }
    if name.contains('\\') {
        return Err("backslash in name");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    for component in trimmed.split('/') {
        match component {
            "" => return Err("empty path component"),
            "." => return Err("'.' path component"),
            ".." => return Err("'..' path component"),
            // NAME_MAX: longer fails only when written, after other files were.
            _ if component.len() > 255 => return Err("a path component longer than 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

/// The relative path from directory `from` to `to`, both given relative to one common root
/// as `/`-separated strings (`lib/python3.11/site-packages` → `bin/x` is
/// `../../../bin/x`).
pub fn relative_path(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|c| !c.is_empty()).collect();
    let to: Vec<&str> = to.split('/').filter(|c| !c.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        let long = format!("pkg/{}.py", "x".repeat(253));
        let cases = [
            ("pkg/__init__.py", Ok(())),
            ("pkg/", Ok(())),
            ("pkg-1.0.data/scripts/tool", Ok(())),
            ("a/..b/c", Ok(())),
            ("", Err("empty name")),
            ("/etc/passwd", Err("absolute path")),
            ("../evil", Err("'..' path component")),
            ("pkg/../../evil", Err("'..' path component")),
            ("pkg/./x", Err("'.' path component")),
            ("pkg//x", Err("empty path component")),
            ("pkg\\..\\x", Err("backslash in name")),
            ("pkg/x\0.py", Err("control character in name")),
            ("pkg/x\n.py", Err("control character in name")),
            ("pkg/x\u{85}.py", Err("control character in name")),
            (&long, Err("a path component longer than 255 bytes")),
        ];
        for (name, expected) in cases {
            assert_eq!(validate_member_name(name), expected, "{name:?}");
        }
    }

    #[test]
    fn relative_paths() {
        let cases = [
            (
                "lib/python3.11/site-packages",
                "bin/pip",
                "../../../bin/pip",
            ),
            (
                "lib/python3.11/site-packages",
                "lib/python3.11/site-packages/a/b.py",
                "a/b.py",
            ),
            (
                "lib/python3.11/site-packages",
                "share/man/x.1",
                "../../../share/man/x.1",
            ),
            (
                "lib/python3.11/site-packages",
                "include/site/python3.11/p/h.h",
                "../../../include/site/python3.11/p/h.h",
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(relative_path(from, to), expected);
        }
    }
}
