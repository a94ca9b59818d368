//! Symbolic links of the app and the static directories: the packer stores a link that stays
//! inside its directory as a zip symlink entry (unix mode `S_IFLNK`, content = target). Every
//! reader checks them again, since an artifact may not be what the packer wrote: a link must
//! belong to `<app>/` or a `static.in/N/`, and its target, followed through the other links of
//! that directory, must stay inside it. Wheels' symlink members stay refused.

use std::collections::HashMap;
use std::io::Read;

use pysfx_format::Payload;
use pysfx_wheel::resolve_link;

use crate::member::open_member;

/// A checked link entry.
#[derive(Debug, Clone)]
pub struct PayloadLink {
    /// Its index in the payload's zip directory.
    pub index: usize,
    /// Its entry name (`mysite/static/logo.svg`).
    pub name: String,
    /// The link's text, relative to the link's directory.
    pub target: String,
}

/// The unix mode of a symlink entry.
const LINK_MODE: u32 = 0o120777;

/// Reads and checks every symlink entry of the payload. `Err` holds the entry name and why it
/// is refused.
pub fn payload_links(payload: &mut Payload) -> Result<Vec<PayloadLink>, (String, String)> {
    let mut roots = vec![format!("{}/", payload.manifest().app.name)];
    roots.extend(
        payload
            .manifest()
            .static_dirs
            .iter()
            .map(|directory| format!("{directory}/")),
    );
    let ends = payload.entry_ends();
    let archive = payload.archive();
    let mut links = Vec::new();
    for (index, &end) in ends.iter().enumerate() {
        // The central directory says which entries are links; only those are opened.
        let record = archive
            .by_index_data(index)
            .map_err(|error| (format!("entry {index}"), error.to_string()))?;
        if !record.is_symlink() {
            continue;
        }
        // As `pysfx pack` and Info-ZIP write one (docs/format.md): `S_IFLNK | 0777`, stored.
        let written_so = record.unix_mode() == Some(LINK_MODE)
            && record.compression() == zip::CompressionMethod::Stored;
        drop(record);
        let mut entry = open_member(archive, index, end)
            .map_err(|error| (format!("entry {index}"), error.to_string()))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let refuse = |reason: &str| (name.clone(), reason.to_string());
        if !roots.iter().any(|root| name.starts_with(root.as_str())) {
            return Err(refuse(
                "symbolic link outside the app and the static directories",
            ));
        }
        if !written_so {
            return Err(refuse(
                "symbolic link entry not stored with mode S_IFLNK|0777",
            ));
        }
        let mut target = Vec::new();
        (&mut entry)
            .take(1025)
            .read_to_end(&mut target)
            .map_err(|error| refuse(&format!("unreadable link: {error}")))?;
        if target.len() > 1024 {
            return Err(refuse("its target is longer than 1024 bytes"));
        }
        let target = String::from_utf8(target).map_err(|_| refuse("its target is not UTF-8"))?;
        links.push(PayloadLink {
            index,
            name,
            target,
        });
    }
    let by_name: HashMap<&str, &str> = links
        .iter()
        .map(|link| (link.name.as_str(), link.target.as_str()))
        .collect();
    for link in &links {
        let Some(root) = roots
            .iter()
            .find(|root| link.name.starts_with(root.as_str()))
        else {
            continue;
        };
        let below = |path: &str| by_name.get(format!("{root}{path}").as_str()).copied();
        let relative = &link.name[root.len()..];
        resolve_link(relative, &link.target, &below).map_err(|reason| {
            (
                link.name.clone(),
                format!("symbolic link to {:?}: {reason}", link.target),
            )
        })?;
    }
    Ok(links)
}
