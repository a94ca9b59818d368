//! What a requirement line names, as pip tells it apart: a name for the index, a wheel, or a
//! local project, sdist or VCS URL to build first.

use super::{BuildSpec, Source};

/// A nested file named by URL (pip's `SCHEME_RE`): pip fetches it.
pub(crate) fn is_remote_file(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    ["http:", "https:", "file:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// pip's `is_url`: a scheme pip downloads from or checks out.
pub(crate) fn is_url(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    matches!(scheme.as_str(), "http" | "https" | "file" | "ftp") || is_vcs_scheme(&scheme)
}

fn is_vcs_scheme(scheme: &str) -> bool {
    ["git+", "hg+", "svn+", "bzr+"]
        .iter()
        .any(|prefix| scheme.starts_with(prefix))
}

/// pip's `_looks_like_path`.
fn looks_like_path(text: &str) -> bool {
    text.contains('/') || text.starts_with('.')
}

/// pip's archive extensions (`is_archive_file`), wheels included.
fn is_archive(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        ".whl",
        ".zip",
        ".tar.bz2",
        ".tbz",
        ".tar.xz",
        ".txz",
        ".tlz",
        ".tar.lz",
        ".tar.lzma",
        ".tar.gz",
        ".tgz",
        ".tar",
    ]
    .iter()
    .any(|extension| lower.ends_with(extension))
}

/// A URL's path ends in `.whl` (pip's `Link.is_wheel`).
fn url_is_wheel(url: &str) -> bool {
    let path = url.split(['#', '?']).next().unwrap_or(url);
    path.ends_with(".whl")
}

/// The name at the start of a PEP 508 requirement.
fn leading_name(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(text.len());
    let name = &text[..end];
    let valid = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    valid.then_some(name)
}

/// The local directory a `file:` URL names, as pip reads one (`file:///abs/mylib`,
/// `file://localhost/abs/mylib`, `file:./mylib`, percent-escapes decoded, a
/// `#subdirectory=` fragment joined on), alone or in a direct reference (`mylib @
/// file:///abs/mylib`); `None` for anything else.
pub fn file_url_path(requirement: &str) -> Option<String> {
    let url = match requirement.split_once('@') {
        Some((name, url)) if leading_name(name.trim()).is_some() => url.trim(),
        _ => requirement.trim(),
    };
    let scheme_end = url.find(':')?;
    if !url[..scheme_end].eq_ignore_ascii_case("file") {
        return None;
    }
    let (rest, fragment) = match url[scheme_end + 1..].split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (&url[scheme_end + 1..], None),
    };
    let rest = rest.split('?').next().unwrap_or(rest);
    let path = match rest.strip_prefix("//") {
        Some(authority_and_path) => {
            let slash = authority_and_path
                .find('/')
                .unwrap_or(authority_and_path.len());
            let (host, path) = authority_and_path.split_at(slash);
            if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                return None;
            }
            path
        }
        None => rest,
    };
    let mut path = percent_decoded(path)?;
    let subdirectory = (fragment
        .into_iter()
        .flat_map(|fragment| fragment.split('&')))
    .find_map(|pair| pair.strip_prefix("subdirectory="));
    if let Some(subdirectory) = subdirectory {
        path = format!(
            "{}/{}",
            path.trim_end_matches('/'),
            percent_decoded(subdirectory)?
        );
    }
    (!path.is_empty()).then_some(path)
}

/// `%XX` escapes decoded; `None` for a bad escape or a result that is no UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Says where a requirement comes from, as pip's `parse_req_from_line` decides it. `is_dir` and
/// `is_file` answer for paths relative to the current directory.
pub fn classify(
    spec: &str,
    is_dir: impl Fn(&str) -> bool,
    is_file: impl Fn(&str) -> bool,
) -> Source {
    // A URL's marker must follow "; " (a ';' may be part of the URL).
    let separator = if is_url(spec) { "; " } else { ";" };
    let (requirement, marker) = match spec.split_once(separator) {
        Some((requirement, marker)) => (
            requirement.trim(),
            Some(marker.trim().to_string()).filter(|marker| !marker.is_empty()),
        ),
        None => (spec.trim(), None),
    };
    let build = |extras: Option<String>| {
        Source::Build(BuildSpec {
            requirement: requirement.to_string(),
            extras,
            marker: marker.clone(),
        })
    };
    let from_url = |url: &str, extras: Option<String>| {
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !is_vcs_scheme(&scheme) && url_is_wheel(url) {
            Source::Wheel(spec.to_string())
        } else {
            build(extras)
        }
    };
    if is_url(requirement) {
        return from_url(requirement, None);
    }
    // _strip_extras: "path[extra]".
    let (path, extras) = match requirement
        .strip_suffix(']')
        .and_then(|r| r.rsplit_once('['))
    {
        Some((path, extras)) if !path.is_empty() && !extras.is_empty() && !extras.contains(']') => {
            (path, Some(format!("[{extras}]")))
        }
        _ => (requirement, None),
    };
    if looks_like_path(requirement) && is_dir(path) {
        return build(extras);
    }
    // An archive name that is no file, with an '@' after something that is no path, is a
    // PEP 508 URL requirement.
    let direct_reference = requirement
        .split_once('@')
        .is_some_and(|(before, _)| !looks_like_path(before));
    if is_archive(path) && (is_file(path) || !direct_reference) {
        return if path.ends_with(".whl") {
            Source::Wheel(spec.to_string())
        } else {
            build(extras)
        };
    }
    // PEP 508 direct reference: "name[extras] @ url".
    if let Some((name, url)) = requirement.split_once('@') {
        let url = url.trim();
        if let Some(bare) = leading_name(name.trim()) {
            if url.contains(':') {
                let extras = name.trim()[bare.len()..].trim();
                let extras = (!extras.is_empty()).then(|| extras.to_string());
                return from_url(url, extras);
            }
        }
    }
    Source::Named(leading_name(requirement).unwrap_or(requirement).to_string())
}

/// The distribution a requirement line names, when the line says it without building
/// anything: a name, a `name @ url`, a wheel's file name, a URL's `#egg=name`.
pub fn named_distribution(spec: &str, source: &Source) -> Option<String> {
    match source {
        Source::Named(name) => Some(name.clone()),
        Source::Wheel(text) => {
            let requirement = text.split(';').next().unwrap_or(text).trim();
            if let Some((name, _)) = requirement.split_once('@') {
                if let Some(name) = leading_name(name.trim()) {
                    return Some(name.to_string());
                }
            }
            let file = requirement
                .split(['#', '?'])
                .next()
                .unwrap_or(requirement)
                .rsplit('/')
                .next()
                .unwrap_or(requirement);
            file.split('-').next().map(str::to_string)
        }
        Source::Build(_) => spec
            .split_once("#egg=")
            .and_then(|(_, egg)| leading_name(egg))
            .map(str::to_string),
    }
}
