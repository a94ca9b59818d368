//! Paths inside a tree: symbolic links resolved through the tree's other links, and relative
//! paths between directories. (Member names are checked once, by `pysfx_format::MemberName`.)

/// Links followed while resolving one symbolic link before giving up (Linux's `ELOOP` limit).
const MAX_LINK_HOPS: usize = 40;

/// Where the symbolic link `link` (a `/`-separated path below a root) with the text `target`
/// leads, as a `/`-separated path below the same root (`""` for the root itself), following
/// through the other links of the tree (`links` gives a link's target by its path below the
/// root). `..` that would climb above the root, an absolute target, an empty one or one with
/// control characters, and a chain of more than 40 links are refused with the reason. Links are
/// followed, not merely joined, because `a -> b/../..` stays inside lexically yet leaves when
/// `b` is itself a link to `x/y/z`... or to `.`; a tree made only of these entries resolves the
/// same on disk.
pub fn resolve_link<'a>(
    link: &str,
    target: &str,
    links: &dyn Fn(&str) -> Option<&'a str>,
) -> Result<String, &'static str> {
    check_link_target(target)?;
    let mut current: Vec<String> = link
        .split('/')
        .filter(|component| !component.is_empty())
        .map(str::to_string)
        .collect();
    current.pop();
    let mut pending: Vec<String> = target.split('/').rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "" | "." => {}
            ".." => {
                if current.pop().is_none() {
                    return Err("its target leaves the directory it belongs to");
                }
            }
            _ => {
                current.push(component);
                let here = current.join("/");
                if let Some(next) = links(&here) {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err("too many levels of symbolic links");
                    }
                    check_link_target(next)?;
                    current.pop();
                    pending.extend(next.split('/').rev().map(str::to_string));
                }
            }
        }
    }
    Ok(current.join("/"))
}

/// A link target must be relative, non-empty, at most 1,024 bytes, without control characters.
fn check_link_target(target: &str) -> Result<(), &'static str> {
    if target.is_empty() {
        return Err("empty link target");
    }
    if target.starts_with('/') {
        return Err("its target is an absolute path");
    }
    if target.len() > 1024 {
        return Err("its target is longer than 1024 bytes");
    }
    if target.chars().any(char::is_control) {
        return Err("control character in its target");
    }
    Ok(())
}

/// The relative path from directory `from` to `to`, both given relative to one common root
/// as `/`-separated strings (`lib/python3.11/site-packages` → `bin/x` is
/// `../../../bin/x`).
pub fn relative_path(from: &str, to: &str) -> String {
    // Most paths (a RECORD's rows) lie below `from`.
    let below = to
        .strip_prefix(from)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !from.is_empty() && !from.ends_with('/') && !rest.starts_with('/'));
    if let Some(rest) = below.filter(|rest| !rest.split('/').any(str::is_empty)) {
        return rest.to_string();
    }
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
    fn links_resolve_through_links_and_never_above_the_root() {
        let tree: std::collections::HashMap<&str, &str> = [
            ("d", "x/y/z"),
            ("self", "."),
            ("up", ".."),
            ("loop", "loop"),
            ("sub/back", "../d"),
        ]
        .into_iter()
        .collect();
        let links = |path: &str| tree.get(path).copied();
        let cases = [
            ("l", "a/b", Ok("a/b")),
            ("a/b/l", "../../c", Ok("c")),
            ("a/l", "./b/./c", Ok("a/b/c")),
            ("l", ".", Ok("")),
            ("l", "d/..", Ok("x/y")),
            ("l", "d/../../..", Ok("")),
            ("l", "sub/back/..", Ok("x/y")),
            (
                "a/l",
                "../../x",
                Err("its target leaves the directory it belongs to"),
            ),
            ("l", "/etc/passwd", Err("its target is an absolute path")),
            ("l", "", Err("empty link target")),
            ("l", "a\nb", Err("control character in its target")),
            // Lexically inside, outside once the links on the way are followed.
            (
                "l",
                "self/..",
                Err("its target leaves the directory it belongs to"),
            ),
            (
                "l",
                "d/../../../..",
                Err("its target leaves the directory it belongs to"),
            ),
            (
                "l",
                "up",
                Err("its target leaves the directory it belongs to"),
            ),
            ("l", "loop", Err("too many levels of symbolic links")),
        ];
        for (link, target, expected) in cases {
            let resolved = resolve_link(link, target, &links);
            let expected: Result<String, &str> = expected.map(str::to_string);
            assert_eq!(resolved, expected, "{link} -> {target}");
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
            // A sibling whose name starts with the directory's.
            (
                "lib/python3.11/site-packages",
                "lib/python3.11/site-packages-x/a.py",
                "../site-packages-x/a.py",
            ),
            ("a", "a//b", "b"),
            ("a/b", "a/b/", ""),
            ("", "a/b", "a/b"),
        ];
        for (from, to, expected) in cases {
            assert_eq!(relative_path(from, to), expected);
        }
    }
}
