//! Reading the text: a cursor over it, Python's word characters, and the quoting of inputs in
//! errors.

/// Error texts quote the offending input up to this many characters.
const QUOTE_LIMIT: usize = 200;

/// Python's `\w` (ASCII only, see the module's notes): what the tokenizer's `\b` looks at.
pub(super) fn is_word_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '_'
}

/// The input quoted in an error, cut to a readable length.
pub(super) fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The 1-based column of a byte position, in characters.
pub(super) fn column(text: &str, position: usize) -> usize {
    text.get(..position).map_or(0, |head| head.chars().count()) + 1
}

/// A position in the text being parsed.
pub(super) struct Cursor<'a> {
    text: &'a str,
    pub(super) position: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Cursor { text, position: 0 }
    }

    pub(super) fn rest(&self) -> &'a str {
        self.text.get(self.position..).unwrap_or("")
    }

    pub(super) fn done(&self) -> bool {
        self.position >= self.text.len()
    }

    /// PEP 508 whitespace is spaces and tabs; true when there was some.
    pub(super) fn skip_whitespace(&mut self) -> bool {
        let rest = self.rest();
        let length = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        self.position += length;
        length > 0
    }

    pub(super) fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.position += token.len();
        }
        found
    }

    /// A keyword (`and`, `or`, `in`, `not`) that no word character follows (regex `\b`).
    pub(super) fn eat_word(&mut self, word: &str) -> bool {
        let rest = self.rest();
        let found = rest.starts_with(word) && !rest[word.len()..].starts_with(is_word_character);
        if found {
            self.position += word.len();
        }
        found
    }

    /// A name or extra: `[A-Za-z0-9][A-Za-z0-9._-]*` that ends at a word boundary.
    /// packaging's regex would backtrack over a trailing `.` or `-`, but nothing can follow
    /// one, so the requirement fails either way.
    pub(super) fn identifier(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if !rest.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return None;
        }
        let length = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(rest.len());
        let identifier = &rest[..length];
        if identifier.ends_with(['.', '-']) || rest[length..].starts_with(is_word_character) {
            return None;
        }
        self.position += length;
        Some(identifier)
    }
}
