//! Projects, wheels, apps and stubs made on the spot in a test's own directory (no network).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{host_python, run, workspace_root};

/// A tiny pure-Python project that pip builds offline: `tests/fixtures/tinybackend.py` is its
/// in-tree PEP 517 backend, which needs no build requirements. The wheel holds the package
/// `<name>` (`-` spelled `_`) whose `VALUE` is `"<name> <version>"`, requiring `requires`.
pub fn tiny_project(directory: &Path, name: &str, version: &str, requires: &[&str]) -> PathBuf {
    std::fs::create_dir_all(directory).expect("create the project");
    std::fs::copy(
        workspace_root().join("tests/fixtures/tinybackend.py"),
        directory.join("tinybackend.py"),
    )
    .expect("copy tinybackend.py");
    std::fs::write(
        directory.join("pyproject.toml"),
        "[build-system]\nrequires = []\nbuild-backend = \"tinybackend\"\nbackend-path = [\".\"]\n",
    )
    .expect("write pyproject.toml");
    let config = serde_json::json!({"name": name, "version": version, "requires": requires});
    std::fs::write(directory.join("tiny.json"), config.to_string()).expect("write tiny.json");
    directory.to_path_buf()
}

/// The wheel of a [`tiny_project`], written into `out` by its backend (no pip, no network).
pub fn tiny_wheel(out: &Path, name: &str, version: &str, requires: &[&str]) -> PathBuf {
    let config = serde_json::json!({"name": name, "version": version, "requires": requires});
    build_tiny(out, &config)
}

/// A [`tiny_wheel`] tagged `tag` (`cp311-cp311-manylinux_2_28_x86_64`) in its file name and
/// its WHEEL file; its content stays pure Python.
pub fn tagged_wheel(out: &Path, name: &str, version: &str, tag: &str) -> PathBuf {
    let config = serde_json::json!({"name": name, "version": version, "tag": tag});
    build_tiny(out, &config)
}

/// A [`tiny_wheel`] that declares `Requires-Python: requires_python`.
pub fn wheel_requiring_python(
    out: &Path,
    name: &str,
    version: &str,
    requires_python: &str,
) -> PathBuf {
    let config = serde_json::json!({"name": name, "version": version,
        "requires_python": requires_python});
    build_tiny(out, &config)
}

/// A [`tiny_wheel`] as `config` describes it (`tests/fixtures/tinybackend.py`: `name`,
/// `version`, `requires`, `tag`, `requires_python`, `files`).
pub fn build_tiny(out: &Path, config: &serde_json::Value) -> PathBuf {
    let source = tempfile::tempdir().expect("tempdir");
    let project = tiny_project(source.path(), "unused", "0", &[]);
    std::fs::write(project.join("tiny.json"), config.to_string()).expect("write tiny.json");
    std::fs::create_dir_all(out).expect("create the wheel directory");
    let output = run(Command::new(host_python())
        .args([
            "-c",
            "import sys, tinybackend; print(tinybackend.build_wheel(sys.argv[1]))",
        ])
        .arg(std::path::absolute(out).expect("absolute"))
        .current_dir(&project));
    assert!(
        output.status.success(),
        "tinybackend: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out.join(String::from_utf8_lossy(&output.stdout).trim())
}

/// A stub stand-in that needs no glibc at all: a bare ELF header, which the packer's glibc
/// check reads as a static binary. For packs that are refused, or only inspected, with the
/// default `--max-glibc` (the debug stub needs this machine's glibc); it cannot run.
pub fn static_stub(directory: &Path) -> PathBuf {
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    header.resize(16, 0);
    header.extend_from_slice(&2u16.to_le_bytes()); // e_type: executable
    header.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: x86_64
    header.extend_from_slice(&1u32.to_le_bytes()); // e_version
    header.extend_from_slice(&[0; 24]); // e_entry, e_phoff, e_shoff
    header.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    header.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    header.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    header.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    header.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    header.extend_from_slice(&[0; 4]); // e_shnum, e_shstrndx
                                       // What the packer looks for in a pysfx-stub.
    header.extend_from_slice(b"pysfx-stub marker: the extractor of pysfx artifacts");
    let path = directory.join("static-stub");
    std::fs::write(&path, header).expect("write the stub");
    path
}

/// Copies a directory tree (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A small app directory: a package and an executable script.
pub fn make_app(root: &Path, name: &str) -> PathBuf {
    let app = root.join(name);
    std::fs::create_dir_all(app.join("appcore")).expect("create app");
    std::fs::write(
        app.join("appcore/__init__.py"),
        "GREETING = 'hello from the app'\n",
    )
    .expect("write");
    std::fs::write(
        app.join("manage.py"),
        "#!/usr/bin/env python\nprint('manage')\n",
    )
    .expect("write");
    let mut permissions = std::fs::metadata(app.join("manage.py"))
        .expect("meta")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(app.join("manage.py"), permissions).expect("chmod");
    app
}
