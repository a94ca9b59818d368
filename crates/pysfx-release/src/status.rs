//! `--status LINK`: the releases of the app beside LINK's target, newest first, from their
//! receipts and a quick look at their files (no hashing).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use pysfx_format::escape_control;
use serde::Serialize;

use crate::{receipt, release, ReleaseError};

/// LINK, where it points, and the releases beside that.
#[derive(Debug, Serialize)]
pub struct Status {
    pub link: PathBuf,
    pub target: PathBuf,
    pub releases: Vec<ReleaseInfo>,
}

/// One release of the app, as its receipt describes it.
#[derive(Debug, Serialize)]
pub struct ReleaseInfo {
    pub name: String,
    pub path: PathBuf,
    pub app_version: Option<String>,
    pub python: String,
    pub python_version: String,
    /// Seconds since the epoch, from the receipt.
    pub installed_at: u64,
    pub complete: bool,
    /// What the quick look found missing, when not complete (`null` in JSON when complete).
    pub incomplete: Option<String>,
    /// Bytes of the release's files on disk (each hard-linked file once).
    pub bytes: u64,
    /// LINK points at it.
    pub current: bool,
}

/// Where LINK points, made absolute (a relative target is relative to LINK's directory).
pub fn link_target(link: &Path) -> Result<PathBuf, ReleaseError> {
    match std::fs::symlink_metadata(link) {
        Ok(metadata) if metadata.file_type().is_symlink() => {}
        Ok(_) => {
            return Err(ReleaseError::LinkNotSymlink {
                link: link.to_path_buf(),
            })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReleaseError::NoLink {
                link: link.to_path_buf(),
            })
        }
        Err(error) => return Err(ReleaseError::io("cannot read", link, error)),
    }
    let target =
        std::fs::read_link(link).map_err(|error| ReleaseError::io("cannot read", link, error))?;
    Ok(match link.parent() {
        Some(parent) if target.is_relative() => parent.join(target),
        _ => target,
    })
}

/// Where LINK leads: [`link_target`], and through a chain of links (`current -> live ->
/// releases/2`) to its end, as the kernel follows it (at most 40 links, as it does): the
/// release LINK serves, which a link in between (`live`) may stop naming.
pub fn link_end(link: &Path) -> Result<PathBuf, ReleaseError> {
    let mut target = link_target(link)?;
    for _ in 0..40 {
        match std::fs::symlink_metadata(&target) {
            Ok(metadata) if metadata.file_type().is_symlink() => target = link_target(&target)?,
            _ => break,
        }
    }
    Ok(target)
}

/// The releases of `app` beside LINK's target, newest first by the install time in their
/// receipts. LINK must point at a release of `app` (or at nothing that exists any more).
pub fn status(link: &Path, app: &str) -> Result<Status, ReleaseError> {
    let target = link_end(link)?;
    // A link into a release (`current -> releases/4/mysite`) serves that release.
    let served = match release::open(&target, app) {
        Err(error @ ReleaseError::OtherApp { .. }) => return Err(error),
        Ok(_) => target.clone(),
        Err(_) => (target.ancestors().skip(1))
            .find(|at| at.parent().is_some() && release::open(at, app).is_ok())
            .unwrap_or(&target)
            .to_path_buf(),
    };
    let directory = served.parent().unwrap_or(Path::new("/"));
    if !directory.is_dir() {
        // The error below names the directory; say where it comes from.
        tracing::warn!("{} points at {}", link.display(), target.display());
    }
    let current = std::fs::metadata(&served).ok().map(|m| (m.dev(), m.ino()));
    let mut releases = Vec::new();
    for (name, path, receipt) in releases_in(directory, app)? {
        // Complete as `--activate` would take it: another user's release where others may
        // write is none LINK should serve, whatever it holds.
        let incomplete = match release::may_be_taken(&path) {
            true => release::unusable(&path, &receipt),
            false => Some(release::another_users(&path).to_string()),
        };
        let identity = std::fs::symlink_metadata(&path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        releases.push((
            (receipt.installed_at, receipt.installed_at_nanos),
            ReleaseInfo {
                bytes: disk_bytes(&path),
                name,
                path,
                app_version: receipt.app_version,
                python: receipt.python,
                python_version: receipt.python_version,
                installed_at: receipt.installed_at,
                complete: incomplete.is_none(),
                incomplete,
                current: identity.is_some() && identity == current,
            },
        ));
    }
    releases.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.name.cmp(&a.1.name)));
    Ok(Status {
        link: link.to_path_buf(),
        target,
        releases: releases.into_iter().map(|(_, info)| info).collect(),
    })
}

/// Every release of `app` in `directory`: real directories (not links, not the hidden trees
/// of runs in progress) holding a readable receipt of that app.
pub fn releases_in(
    directory: &Path,
    app: &str,
) -> Result<Vec<(String, PathBuf, receipt::Receipt)>, ReleaseError> {
    let entries = std::fs::read_dir(directory).map_err(|error| {
        ReleaseError::io("cannot read the releases' directory", directory, error)
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        let path = entry.path();
        if let Some(receipt) = receipt::read(&path).filter(|r| r.manifest.app.name == app) {
            found.push((name, path, receipt));
        }
    }
    Ok(found)
}

/// The bytes of the regular files under `root`, each inode once, links not followed.
fn disk_bytes(root: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.is_file() && seen.insert((metadata.dev(), metadata.ino())) {
                total += metadata.len();
            }
        }
    }
    total
}

impl Status {
    /// The table people read: LINK, then one line per release, `*` marking LINK's target.
    pub fn text(&self) -> String {
        let mut rows = vec![[
            String::new(),
            "RELEASE".to_string(),
            "APP VERSION".to_string(),
            "PYTHON".to_string(),
            "INSTALLED (UTC)".to_string(),
            "COMPLETE".to_string(),
            "SIZE".to_string(),
        ]];
        for release in &self.releases {
            rows.push(
                [
                    if release.current { "*" } else { "" }.to_string(),
                    release.name.clone(),
                    release.app_version.clone().unwrap_or_else(|| "-".into()),
                    release.python_version.clone(),
                    utc(release.installed_at),
                    match &release.incomplete {
                        None => "yes".to_string(),
                        Some(reason) => format!("no: {reason}"),
                    },
                    human_bytes(release.bytes),
                ]
                // A directory's name (or a receipt's text) may hold a line break: one row a line.
                .map(|cell| escape_control(&cell).into_owned()),
            );
        }
        let mut widths = [0usize; 7];
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = format!(
            "{} -> {}\n",
            escape_control(&self.link.to_string_lossy()),
            escape_control(&self.target.to_string_lossy())
        );
        for row in rows {
            let mut line = String::new();
            for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
                if index + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if self.releases.is_empty() {
            out.push_str("(no releases of this app beside it)\n");
        }
        out
    }
}

/// `12.3 MiB`, `4.0 KiB`, `1.2 GiB`, in whole-number arithmetic (float formatting would
/// cost the stub some 20 KB).
fn human_bytes(bytes: u64) -> String {
    let (unit, shift) = match bytes {
        0..=1_048_575 => ("KiB", 10),
        1_048_576..=1_073_741_823 => ("MiB", 20),
        _ => ("GiB", 30),
    };
    let tenths = (u128::from(bytes) * 10 + (1u128 << (shift - 1))) >> shift;
    format!("{}.{} {unit}", tenths / 10, tenths % 10)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC (Howard Hinnant's civil-from-days).
pub fn utc(seconds: u64) -> String {
    let days = (seconds / 86400) as i64;
    let rest = seconds % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_release;

    #[test]
    fn formats_sizes() {
        assert_eq!(human_bytes(0), "0.0 KiB");
        assert_eq!(human_bytes(4096), "4.0 KiB");
        assert_eq!(human_bytes(1_572_864), "1.5 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_764_495_123), "2025-11-30 09:32:03");
    }

    /// Another user's release in a directory anyone may write is not complete to `--status`,
    /// as `--activate` refuses it (root only: the test hands a release to another user).
    #[test]
    fn another_users_release_where_others_may_write_is_not_complete() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to hand a release to another user");
            return;
        }
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path().join("releases");
        std::fs::create_dir(&releases).expect("mkdir");
        fake_release(&releases, "1", "mysite", 10);
        let planted = fake_release(&releases, "2", "mysite", 20);
        let link = temporary.path().join("current");
        std::os::unix::fs::symlink("releases/2", &link).expect("link");
        let uid = Some(nix::unistd::Uid::from_raw(12345));
        // Root's own directory, closed: a release handed to the service user is still one.
        nix::unistd::chown(&planted, uid, None).expect("chown");
        let taken = status(&link, "mysite").expect("status");
        assert!(taken.releases.iter().all(|release| release.complete));
        // A shared directory (`1777`): the other user's release is theirs alone.
        std::fs::set_permissions(&releases, std::fs::Permissions::from_mode(0o1777))
            .expect("chmod");
        let shared = status(&link, "mysite").expect("status");
        let names: Vec<(&str, bool)> = (shared.releases.iter())
            .map(|release| (release.name.as_str(), release.complete))
            .collect();
        assert_eq!(names, [("2", false), ("1", true)]);
        assert_eq!(
            shared.releases[0].incomplete.as_deref(),
            Some(release::ANOTHER_USERS)
        );
        assert!(
            crate::activate::activate(&planted, &link, "mysite", std::time::Duration::ZERO)
                .is_err()
        );
    }

    #[test]
    fn lists_the_apps_releases_newest_first() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let releases = temporary.path().join("releases");
        std::fs::create_dir(&releases).expect("mkdir");
        fake_release(&releases, "a", "mysite", 30);
        fake_release(&releases, "b", "mysite", 10);
        let current = fake_release(&releases, "c", "mysite", 20);
        fake_release(&releases, "other", "otherapp", 40);
        // A name with a line break keeps to its row.
        fake_release(&releases, "d\nforged  line", "mysite", 5);
        std::fs::create_dir(releases.join("stray")).expect("stray");
        std::fs::remove_file(releases.join("b/venv/pyvenv.cfg")).expect("break b");
        let link = temporary.path().join("current");
        std::os::unix::fs::symlink("releases/c", &link).expect("link");
        let status = status(&link, "mysite").expect("status");
        let names: Vec<&str> = status.releases.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "b", "d\nforged  line"]);
        assert!(status.releases[1].current && !status.releases[0].current);
        assert!(!status.releases[2].complete);
        assert!(status.releases[0].bytes > 50);
        assert_eq!(status.target, current);
        let text = status.text();
        assert!(text.contains("*  c "), "{text}");
        assert!(text.contains(" KiB"), "{text}");
        assert!(text.contains("no: venv/pyvenv.cfg is missing"), "{text}");
        assert!(text.contains("d\\nforged  line"), "{text}");
        assert!(
            !text.lines().any(|line| line.starts_with("forged")),
            "{text}"
        );
        assert!(matches!(
            super::status(&link, "otherapp"),
            Err(ReleaseError::OtherApp { .. })
        ));
        assert!(matches!(
            super::status(&temporary.path().join("none"), "mysite"),
            Err(ReleaseError::NoLink { .. })
        ));
        assert!(matches!(
            super::status(&releases, "mysite"),
            Err(ReleaseError::LinkNotSymlink { .. })
        ));
    }
}
