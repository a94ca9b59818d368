//! `--activate DEST --link LINK`: a rollback without the older artifact.

use std::path::Path;

use crate::link::{check_link, repoint_link};
use crate::{release, ReleaseError};

/// Points LINK at the release in `destination` after a quick check that it is a complete
/// release of `app` (its receipt, and the files `release::incomplete` looks for). Returns
/// whether LINK moved.
pub fn activate(destination: &Path, link: &Path, app: &str) -> Result<bool, ReleaseError> {
    check_link(link)?;
    let receipt = release::open(destination, app)?;
    if let Some(reason) = release::incomplete(destination, &receipt) {
        return Err(ReleaseError::NotARelease {
            path: destination.to_path_buf(),
            reason: format!("is an incomplete release ({reason})"),
        });
    }
    repoint_link(link, destination)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_release;

    #[test]
    fn repoints_only_to_complete_releases_of_the_app() {
        let temporary = tempfile::tempdir().expect("tempdir");
        let one = fake_release(temporary.path(), "1", "mysite", 1);
        let two = fake_release(temporary.path(), "2", "mysite", 2);
        let other = fake_release(temporary.path(), "3", "otherapp", 3);
        let link = temporary.path().join("current");
        std::os::unix::fs::symlink(&two, &link).expect("link");
        assert!(activate(&one, &link, "mysite").expect("activate"));
        assert_eq!(std::fs::read_link(&link).expect("read"), one);
        assert!(!activate(&one, &link, "mysite").expect("again"));
        assert!(matches!(
            activate(&other, &link, "mysite"),
            Err(ReleaseError::OtherApp { .. })
        ));
        std::fs::remove_file(two.join("venv/pyvenv.cfg")).expect("break");
        assert!(matches!(
            activate(&two, &link, "mysite"),
            Err(ReleaseError::NotARelease { .. })
        ));
        let stray = temporary.path().join("stray");
        std::fs::create_dir(&stray).expect("stray");
        assert!(matches!(
            activate(&stray, &link, "mysite"),
            Err(ReleaseError::NotARelease { .. })
        ));
        assert_eq!(std::fs::read_link(&link).expect("read"), one);
        let file = temporary.path().join("file");
        std::fs::write(&file, "").expect("file");
        assert!(matches!(
            activate(&one, &file, "mysite"),
            Err(ReleaseError::LinkNotSymlink { .. })
        ));
    }
}
