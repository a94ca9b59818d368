//! Distribution names.

/// PEP 503 normalisation: lower case, every run of `-`, `_` and `.` becomes one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for character in name.chars() {
        if matches!(character, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.push(character.to_ascii_lowercase());
            in_separator = false;
        }
    }
    out
}

/// The name as written in `.dist-info` directory names and wheel filenames: normalised, with
/// `-` written as `_` (PEP 427, "escaped").
pub fn dist_info_name(name: &str) -> String {
    normalize_name(name).replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_as_pep_503() {
        let cases = [
            ("Django", "django"),
            ("zope.interface", "zope-interface"),
            ("Foo__Bar--baz..Qux", "foo-bar-baz-qux"),
            ("typing_extensions", "typing-extensions"),
            ("a-_.b", "a-b"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_name(input), expected, "{input}");
        }
        assert_eq!(dist_info_name("zope.interface"), "zope_interface");
    }
}
