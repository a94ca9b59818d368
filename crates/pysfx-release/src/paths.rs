//! Paths inside a release, relative to DEST and `/`-separated.

/// A RECORD row's path (relative to site-packages, possibly `../../../bin/tool`) as a path
/// relative to DEST, given site-packages relative to DEST. `None` for a path that is absolute
/// or leaves DEST.
pub fn resolve_record_path(site_packages: &str, row: &str) -> Option<String> {
    if row.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = site_packages.split('/').filter(|p| !p.is_empty()).collect();
    for component in row.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Whether `path` (relative, `/`-separated) is inside a `__pycache__` directory, which the
/// interpreter writes at will.
pub fn in_pycache(path: &str) -> bool {
    path.split('/').any(|part| part == "__pycache__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_paths_resolve_below_dest() {
        let site = "venv/lib/python3.11/site-packages";
        for (row, expected) in [
            (
                "pkg/mod.py",
                Some("venv/lib/python3.11/site-packages/pkg/mod.py"),
            ),
            ("../../../bin/tool", Some("venv/bin/tool")),
            (
                "./pkg/../x.py",
                Some("venv/lib/python3.11/site-packages/x.py"),
            ),
            ("../../../../app/x", Some("app/x")),
            ("../../../../../etc/passwd", None),
            ("/etc/passwd", None),
        ] {
            assert_eq!(resolve_record_path(site, row).as_deref(), expected, "{row}");
        }
    }

    #[test]
    fn pycache_anywhere() {
        assert!(in_pycache("venv/lib/x/__pycache__/a.pyc"));
        assert!(in_pycache("__pycache__"));
        assert!(!in_pycache("venv/lib/x/pycache/a.pyc"));
    }
}
