//! What glibc a stub needs, read from its ELF version-needs section (`.gnu.version_r`), the
//! same facts `readelf -V` and `shared/tools/check-glibc.sh` show.

use anyhow::{anyhow, Result};
use goblin::elf::Elf;

/// A glibc version such as `2.17` or `2.2.5`, compared component by component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion(pub Vec<u32>);

impl GlibcVersion {
    pub fn parse(text: &str) -> Option<GlibcVersion> {
        let parts: Option<Vec<u32>> = text.split('.').map(|part| part.parse().ok()).collect();
        parts.filter(|parts| parts.len() >= 2).map(GlibcVersion)
    }
}

impl std::fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text: Vec<String> = self.0.iter().map(u32::to_string).collect();
        write!(f, "{}", text.join("."))
    }
}

/// The highest `GLIBC_x.y` the ELF requires, or `None` when it requires none (a static or
/// musl binary).
pub fn required_glibc(bytes: &[u8]) -> Result<Option<GlibcVersion>> {
    let elf = Elf::parse(bytes).map_err(|error| anyhow!("not a readable ELF file: {error}"))?;
    let mut highest: Option<GlibcVersion> = None;
    if let Some(verneed) = &elf.verneed {
        for need in verneed.iter() {
            for aux in need.iter() {
                let Some(name) = elf.dynstrtab.get_at(aux.vna_name) else {
                    continue;
                };
                let Some(version) = name.strip_prefix("GLIBC_").and_then(GlibcVersion::parse)
                else {
                    continue;
                };
                if highest.as_ref().is_none_or(|current| version > *current) {
                    highest = Some(version);
                }
            }
        }
    }
    Ok(highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let parse = |text| GlibcVersion::parse(text).expect(text);
        assert!(parse("2.17") < parse("2.34"));
        assert!(parse("2.2.5") < parse("2.17"));
        assert!(parse("2.9") < parse("2.10"));
        assert_eq!(parse("2.17").to_string(), "2.17");
        assert!(GlibcVersion::parse("2").is_none());
        assert!(GlibcVersion::parse("x.y").is_none());
    }

    #[test]
    fn reads_this_test_binary() {
        // The test binary is linked against the build machine's glibc: it needs some version.
        let bytes = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        let version = required_glibc(&bytes).expect("parse");
        assert!(version.is_some_and(|v| v >= GlibcVersion(vec![2, 2])));
        assert!(required_glibc(b"not an elf").is_err());
    }
}
