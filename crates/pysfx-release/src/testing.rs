//! A release tree as the install leaves it, small enough for unit tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::hash_file;
use crate::receipt::{Contents, InstalledWheel, Receipt, RecordedFile, RECEIPT_NAME};

pub const SITE: &str = "venv/lib/python3.11/site-packages";

/// A CPython 3.11 (pyenv's, as on the machines that run the tests).
pub const PYTHON_311: &str = "/root/.pyenv/versions/3.11.7/bin/python3.11";

/// `parent/name`: app `app` (a module and a link), a venv with one distribution (`pkg`, with
/// a script in `bin/`), a hook, and a receipt saying it was installed at `installed_at`.
pub fn fake_release(parent: &Path, name: &str, app: &str, installed_at: u64) -> PathBuf {
    let release = parent.join(name);
    let write = |relative: &str, text: &str| {
        let path = release.join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        &format!("{app}/views.py"),
        "def index():\n    return 'ok'\n",
    );
    std::os::unix::fs::symlink("views.py", release.join(format!("{app}/latest"))).expect("link");
    write("venv/pyvenv.cfg", "home = /usr/bin\n");
    std::fs::create_dir_all(release.join("venv/bin")).expect("bin");
    // The Python the receipt names (3.11): `--activate` and `--check` ask it its version.
    std::os::unix::fs::symlink(PYTHON_311, release.join("venv/bin/python")).expect("python");
    write(&format!("{SITE}/pkg/__init__.py"), "VALUE = 1\n");
    write(&format!("{SITE}/pkg/util.py"), "def helper():\n    pass\n");
    write(&format!("{SITE}/pkg-1.0.dist-info/METADATA"), "Name: pkg\n");
    write("venv/bin/tool", "#!/bin/sh\necho tool\n");
    std::fs::set_permissions(
        release.join("venv/bin/tool"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    write(&format!("{SITE}/{app}.pth"), "import sys\n");
    let mut record = String::new();
    for row in [
        "pkg/__init__.py",
        "pkg/util.py",
        "pkg-1.0.dist-info/METADATA",
        "../../../bin/tool",
    ] {
        let relative = crate::paths::resolve_record_path(SITE, row).expect("inside");
        let (digest, size) = hash_file(&release.join(relative)).expect("hash");
        record.push_str(&format!(
            "{row},{},{size}\n",
            crate::digest::record_hash(&digest)
        ));
    }
    record.push_str("pkg-1.0.dist-info/RECORD,,\n");
    write(&format!("{SITE}/pkg-1.0.dist-info/RECORD"), &record);
    let views = format!("{app}/views.py");
    let (digest, size) = hash_file(&release.join(&views)).expect("hash");
    let files = vec![
        RecordedFile::file(views, &digest, size, false),
        RecordedFile::link(format!("{app}/latest"), "views.py".into()),
    ];
    let contents =
        Contents::collect(&release, SITE, files, &[format!("{SITE}/{app}.pth")]).expect("collect");
    let manifest = serde_json::from_value(serde_json::json!({
        "format_version": 1, "pysfx_version": "test",
        "app": {"name": app, "version": format!("v{installed_at}"), "files": 2, "bytes": 30},
        "wheels": [], "sets": [], "unpacked_bytes": 100,
    }))
    .expect("a manifest");
    let receipt = Receipt {
        pysfx_version: "test".into(),
        app_version: Some(format!("v{installed_at}")),
        payload_sha256: "0".repeat(64),
        artifact: "/tmp/site.sfx".into(),
        installed_at,
        installed_at_nanos: 0,
        destination: release.display().to_string(),
        python: "/usr/bin/python3.11".into(),
        python_version: "3.11.7".into(),
        wheel_set: "wheels".into(),
        wheels: vec![InstalledWheel {
            name: "pkg".into(),
            version: "1.0".into(),
            filename: "pkg-1.0-py3-none-any.whl".into(),
        }],
        files: 8,
        bytes: 100,
        manifest,
        contents: Some(contents),
        interpreter: None,
    };
    std::fs::write(
        release.join(RECEIPT_NAME),
        serde_json::to_vec_pretty(&receipt).expect("json"),
    )
    .expect("receipt");
    release
}

/// The names in `directory`.
pub fn listing(directory: &Path) -> Vec<String> {
    std::fs::read_dir(directory)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}
