//! What CPython's byte-code is named by: its cache tag (in every `.pyc` file's name) and its
//! magic number (the first bytes of each). Both come from outside, from an interpreter's
//! answer or an artifact's manifest, and a cache tag becomes part of a file name.

/// Whether `tag` is a CPython cache tag: `cpython-` and the version's digits (`cpython-36`,
/// `cpython-311`), as `sys.implementation.cache_tag` gives it. Nothing else may name a
/// `.pyc` file: a tag with a `/` or `..` in it would put byte-code anywhere.
pub fn is_cpython_cache_tag(tag: &str) -> bool {
    tag.strip_prefix("cpython-3").is_some_and(|minor| {
        (1..=3).contains(&minor.len()) && minor.bytes().all(|byte| byte.is_ascii_digit())
    })
}

/// The cache tag of CPython `major.minor`.
pub fn cpython_cache_tag(major: u32, minor: u32) -> String {
    format!("cpython-{major}{minor}")
}

/// Whether `hex` is a CPython magic number as `importlib.util.MAGIC_NUMBER.hex()` gives it:
/// four bytes in lowercase hex, the last two `\r\n`.
pub fn is_cpython_magic(hex: &str) -> bool {
    hex.len() == 8
        && hex.ends_with("0d0a")
        && (hex.bytes()).all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_tags_and_magic_numbers_are_cpythons_own() {
        for tag in ["cpython-36", "cpython-311", "cpython-313"] {
            assert!(is_cpython_cache_tag(tag), "{tag}");
        }
        for tag in [
            "",
            "cpython-",
            "cpython-3",
            "pypy39",
            "cpython-311/../../x",
            "../../evil",
            "cpython-3a1",
            "cpython-31111",
            "cpython-311\u{1b}",
        ] {
            assert!(!is_cpython_cache_tag(tag), "{tag:?}");
        }
        assert_eq!(cpython_cache_tag(3, 11), "cpython-311");
        // 3.6's, 3.11's and 3.13's.
        for magic in ["330d0d0a", "a70d0d0a", "f30d0d0a"] {
            assert!(is_cpython_magic(magic), "{magic}");
        }
        for magic in [
            "",
            "zz",
            "a70d0d0a00",
            "A70D0D0A",
            "a70d0000",
            "a70d0d0\u{1b}",
        ] {
            assert!(!is_cpython_magic(magic), "{magic:?}");
        }
    }
}
