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
            _ => {}
        }
    }
    Ok(())
}

/// Creates the directories of `relative` (a `/`-separated path) below `root`, which must exist.
/// Unlike `create_dir_all`, it never creates `root` or anything above it: once an interrupted
/// install has moved its tree away, a worker still running cannot bring the tree back.
pub fn create_dirs_below(root: &std::path::Path, relative: &str) -> std::io::Result<()> {
    let mut path = root.to_path_buf();
    for component in relative.split('/').filter(|c| !c.is_empty()) {
        path.push(component);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(error) => return Err(error),
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
        ];
        for (name, expected) in cases {
            assert_eq!(validate_member_name(name), expected, "{name:?}");
        }
    }

    #[test]
    fn creates_below_an_existing_root_only() {
        let temporary = tempfile::tempdir().expect("tempdir");
        create_dirs_below(temporary.path(), "a/b/c").expect("create");
        assert!(temporary.path().join("a/b/c").is_dir());
        create_dirs_below(temporary.path(), "a/b/c").expect("again");
        let gone = temporary.path().join("gone");
        assert!(create_dirs_below(&gone, "x/y").is_err());
        assert!(!gone.exists(), "the root was created");
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
