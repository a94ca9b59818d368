//! RFC 822-style header files: `METADATA` and `WHEEL`.

/// Header fields in order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    /// Parses the header block (up to the first empty line; the body, if any, is ignored).
    /// Continuation lines (starting with a space or tab) extend the previous value.
    pub fn parse(text: &str) -> Headers {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                fields.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        Headers { fields }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every value of `name`, in order (`Requires-Dist` is repeated).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_case_insensitively_and_stops_at_body() {
        let text = "Metadata-Version: 2.1\nName: Django\nVersion: 4.2.16\nRequires-Python: >=3.8\nSummary: A high-level\n  Python web framework\nWheel-Version: 1.0\nwheel-version: 2.0\n\nName: NotThis\n";
        let headers = Headers::parse(text);
        assert_eq!(headers.get("name"), Some("Django"));
        assert_eq!(headers.get("VERSION"), Some("4.2.16"));
        assert_eq!(headers.get("Requires-Python"), Some(">=3.8"));
        assert_eq!(
            headers.get("Summary"),
            Some("A high-level\nPython web framework")
        );
        assert_eq!(
            headers.get("Wheel-Version"),
            Some("1.0"),
            "first value wins"
        );
        assert_eq!(headers.get("Missing"), None);
    }
}
