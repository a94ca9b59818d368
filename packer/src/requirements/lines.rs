//! Requirements-file lines as pip reads them: continuation lines joined, comments stripped,
//! `${VAR}` expanded, then the requirement split from its options (`shlex`-style).

use super::{Entry, LineOption};

/// pip's `join_lines` then `ignore_comments`: (first physical line number, text).
pub fn logical_lines(content: &str) -> Vec<(usize, String)> {
    let mut joined = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in content.lines().enumerate() {
        let number = index + 1;
        let comment = line.trim_start().starts_with('#');
        if !line.ends_with('\\') || comment {
            // A comment line ends a continuation; pip prefixes it with a space so the
            // comment is still removed after joining.
            let line = if comment {
                format!(" {line}")
            } else {
                line.to_string()
            };
            match pending.take() {
                Some((first, mut text)) => {
                    text.push_str(&line);
                    joined.push((first, text));
                }
                None => joined.push((number, line)),
            }
        } else {
            // line.strip("\\"): every backslash at either end goes.
            let part = line.trim_matches('\\');
            match &mut pending {
                Some((_, text)) => text.push_str(part),
                None => pending = Some((number, part.to_string())),
            }
        }
    }
    if let Some(last) = pending {
        joined.push(last);
    }
    joined
        .into_iter()
        .filter_map(|(number, line)| {
            let text = strip_comment(&line).trim().to_string();
            (!text.is_empty()).then_some((number, text))
        })
        .collect()
}

/// `re.sub(r"(^|\s+)#.*$", "", line)`: from the first `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (index, character) in line.char_indices() {
        if character == '#' && previous_is_space {
            return line[..index].trim_end();
        }
        previous_is_space = character.is_whitespace();
    }
    line
}

/// pip's `expand_env_variables`: `${NAME}` (upper-case letters, digits, `_`) becomes the
/// variable's value; an unset or empty variable leaves the text as it is.
pub fn expand_variables(line: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if name_len > 0 && after[name_len..].starts_with('}') {
            match lookup(name).filter(|value| !value.is_empty()) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&rest[start..start + 3 + name_len]),
            }
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The options pip accepts in a requirements file, by long name, with their short names and
/// whether they take a value.
const OPTIONS: [(&str, Option<&str>, bool); 17] = [
    ("--index-url", Some("-i"), true),
    ("--extra-index-url", None, true),
    ("--no-index", None, false),
    ("--constraint", Some("-c"), true),
    ("--requirement", Some("-r"), true),
    ("--editable", Some("-e"), true),
    ("--find-links", Some("-f"), true),
    ("--no-binary", None, true),
    ("--only-binary", None, true),
    ("--prefer-binary", None, false),
    ("--require-hashes", None, false),
    ("--pre", None, false),
    ("--trusted-host", None, true),
    ("--use-feature", None, true),
    ("--global-option", None, true),
    ("--hash", None, true),
    ("--config-settings", Some("-C"), true),
];

/// Parses one logical line (variables expanded) as pip's `break_args_options` and optparse do.
pub fn parse_line(line: &str) -> Result<Entry, String> {
    // break_args_options: tokens split on single spaces, up to the first starting with '-'.
    let tokens: Vec<&str> = line.split(' ').collect();
    let split = tokens
        .iter()
        .position(|token| token.starts_with('-'))
        .unwrap_or(tokens.len());
    let spec = tokens[..split].join(" ");
    let options = parse_options(&shell_split(&tokens[split..].join(" "))?)?;
    let value = |name: &str| {
        options
            .iter()
            .find(|option| option.name == name)
            .and_then(|option| option.value.clone())
    };
    let per_requirement = |options: &[LineOption]| {
        options
            .iter()
            .filter(|option| {
                matches!(
                    option.name,
                    "--hash" | "--config-settings" | "--global-option"
                )
            })
            .cloned()
            .collect()
    };
    if !spec.is_empty() {
        return Ok(Entry::Requirement {
            spec,
            editable: false,
            options: per_requirement(&options),
        });
    }
    if let Some(editable) = value("--editable") {
        return Ok(Entry::Requirement {
            spec: editable,
            editable: true,
            options: per_requirement(&options),
        });
    }
    if let Some(path) = value("--requirement") {
        return Ok(Entry::Nested {
            path,
            constraint: false,
        });
    }
    if let Some(path) = value("--constraint") {
        return Ok(Entry::Nested {
            path,
            constraint: true,
        });
    }
    Ok(Entry::Options(options))
}

/// optparse over pip's requirements-file options: `-rFILE`, `-r FILE`, `--requirement FILE`,
/// `--requirement=FILE`.
fn parse_options(tokens: &[String]) -> Result<Vec<LineOption>, String> {
    let mut options = Vec::new();
    let mut index = 0;
    while index < tokens.len() {
        let token = &tokens[index];
        index += 1;
        let (known, attached) = if let Some(long) = token.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            // optparse takes a unique prefix of a long option (`--extra-index`).
            let exact = OPTIONS
                .iter()
                .find(|(option, _, _)| option.get(2..) == Some(name));
            let prefixed: Vec<_> = OPTIONS
                .iter()
                .filter(|(option, _, _)| !name.is_empty() && option[2..].starts_with(name))
                .collect();
            let known = exact.or(match prefixed.as_slice() {
                [only] => Some(*only),
                _ => None,
            });
            (known, attached)
        } else if token.starts_with('-') && token.len() >= 2 {
            let (short, rest) = token.split_at(2);
            let known = OPTIONS.iter().find(|(_, option, _)| *option == Some(short));
            (known, (!rest.is_empty()).then(|| rest.to_string()))
        } else {
            return Err(format!("unexpected {token:?} among the options"));
        };
        let Some((name, _, takes_value)) = known else {
            return Err(format!("no such option: {token}"));
        };
        let value = if *takes_value {
            match attached {
                Some(value) => Some(value),
                None => {
                    let value = tokens
                        .get(index)
                        .cloned()
                        .ok_or_else(|| format!("{name} requires a value"))?;
                    index += 1;
                    Some(value)
                }
            }
        } else {
            if attached.is_some() {
                return Err(format!("{name} takes no value"));
            }
            None
        };
        options.push(LineOption { name, value });
    }
    Ok(options)
}

/// `shlex.split` (POSIX mode): whitespace separates, `'…'` is literal, `"…"` takes `\"` and
/// `\\`, a backslash outside quotes escapes the next character.
pub fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                in_token = true;
                loop {
                    match characters.next() {
                        Some('\'') => break,
                        Some(inner) => current.push(inner),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_token = true;
                loop {
                    match characters.next() {
                        Some('"') => break,
                        Some('\\') => match characters.next() {
                            Some(escaped @ ('"' | '\\')) => current.push(escaped),
                            Some(other) => {
                                current.push('\\');
                                current.push(other);
                            }
                            None => return Err("no closing quotation".into()),
                        },
                        Some(inner) => current.push(inner),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '\\' => {
                in_token = true;
                match characters.next() {
                    Some(escaped) => current.push(escaped),
                    None => return Err("no escaped character".into()),
                }
            }
            space if space.is_whitespace() => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            other => {
                in_token = true;
                current.push(other);
            }
        }
    }
    if in_token {
        tokens.push(current);
    }
    Ok(tokens)
}

/// Quotes a value for [`shell_split`] when it needs it.
pub fn quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if safe {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r#"'"'"'"#))
    }
}
