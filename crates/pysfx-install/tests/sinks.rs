//! The install library in-process, against both sinks: a hostile wheel table and a corpus of
//! damaged wheels are accepted or refused alike by `DiskTree` (a real directory) and
//! `NullTree` (a model), and nothing is ever written outside the root.

use std::io::{Cursor, Write};
use std::path::Path;

use proptest::prelude::*;
use pysfx_install::{install_wheel, verify_wheel, Fault, InstallError, Layout};
use pysfx_tree::DiskTree;
use pysfx_wheel::{hash_bytes, WheelFilename};

/// A wheel named `sample-1.0-py3-none-any.whl` holding `members`, with a RECORD listing each
/// (unless `record` is given) and RECORD itself.
fn wheel(members: &[(&str, &[u8])], record: Option<&str>) -> Vec<u8> {
    let mut text = String::new();
    for (name, data) in members {
        text.push_str(&format!("{name},{},{}\n", hash_bytes(data), data.len()));
    }
    text.push_str("sample-1.0.dist-info/RECORD,,\n");
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in members {
        writer.start_file(*name, options).expect("start");
        writer.write_all(data).expect("write");
    }
    writer
        .start_file("sample-1.0.dist-info/RECORD", options)
        .expect("start");
    writer
        .write_all(record.unwrap_or(&text).as_bytes())
        .expect("write");
    writer.finish().expect("finish").into_inner()
}

const METADATA: (&str, &[u8]) = (
    "sample-1.0.dist-info/METADATA",
    b"Metadata-Version: 2.1\nName: sample\nVersion: 1.0\n",
);
const WHEEL: (&str, &[u8]) = (
    "sample-1.0.dist-info/WHEEL",
    b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n",
);

fn sample() -> Vec<u8> {
    wheel(
        &[
            ("sample/__init__.py", b"VALUE = 1\n"),
            ("sample/data.txt", b"some data\n"),
            ("sample-1.0.data/scripts/tool", b"#!python\nprint(1)\n"),
            METADATA,
            WHEEL,
            (
                "sample-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\nsample = sample:main\n",
            ),
        ],
        None,
    )
}

fn with(extra: (&str, &'static [u8])) -> Vec<u8> {
    wheel(
        &[("sample/__init__.py", b"x = 1\n"), METADATA, WHEEL, extra],
        None,
    )
}

fn layout() -> Layout {
    Layout {
        site_packages: "lib/python3.11/site-packages".into(),
        python_version: (3, 11),
        shebang_python: "/final/venv/bin/python".into(),
        installer: "pysfx".into(),
        app_name: Some("mysite".into()),
    }
}

fn filename() -> WheelFilename {
    "sample-1.0-py3-none-any.whl".parse().expect("name")
}

fn everything_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory)
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(entry.path());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
    out
}

/// Installs `bytes` into a real venv-like directory (with `bin/python` as a link and
/// `pyvenv.cfg`, as the stub's venv has them) and into a `NullTree` through `verify_wheel`;
/// returns both outcomes after checking nothing was written outside the root.
fn both(bytes: &[u8]) -> (Result<(), Fault>, Result<(), Fault>) {
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("venv");
    for directory in ["bin", "include", layout().site_packages.as_str()] {
        std::fs::create_dir_all(root.join(directory)).expect("mkdir");
    }
    std::os::unix::fs::symlink("/usr/bin/python3", root.join("bin/python")).expect("link");
    std::fs::write(root.join("pyvenv.cfg"), "home = /usr/bin\n").expect("cfg");
    let mut disk = DiskTree::new(&root);
    let on_disk = install_wheel(Cursor::new(bytes), &filename(), &layout(), &mut disk)
        .map(|_| ())
        .map_err(|error| error.fault());
    for path in everything_under(outer.path()) {
        assert!(path.starts_with(&root), "wrote outside: {}", path.display());
    }
    assert_eq!(
        std::fs::read_link(root.join("bin/python")).expect("link"),
        Path::new("/usr/bin/python3")
    );
    let modelled = verify_wheel(Cursor::new(bytes), &filename(), Some("mysite"))
        .map(|_| ())
        .map_err(|error: InstallError| error.fault());
    (on_disk, modelled)
}

#[test]
fn the_sample_wheel_installs_on_both() {
    assert_eq!(both(&sample()), (Ok(()), Ok(())));
    let outer = tempfile::tempdir().expect("tempdir");
    let mut disk = DiskTree::new(outer.path());
    let report =
        install_wheel(Cursor::new(sample()), &filename(), &layout(), &mut disk).expect("install");
    assert_eq!(report.name, "sample");
    let bin = outer.path().join("bin");
    assert!(bin.join("sample").is_file() && bin.join("tool").is_file());
    let tool = std::fs::read_to_string(bin.join("tool")).expect("tool");
    assert!(tool.starts_with("#!/final/venv/bin/python\n"), "{tool}");
}

/// The directories a wheel's install makes, as `PreparedWheel::directories_made` counts them
/// (what the manifest records for the free-inode check, and what the stub holds it to), are
/// the directories that appear when it is installed into a venv that has `bin/`, `include/`
/// and site-packages: here its package, a subpackage two deep, its `.dist-info`, and a data
/// file's `share/man/man1`.
#[test]
fn the_directories_counted_are_those_the_install_makes() {
    let bytes = wheel(
        &[
            ("sample/__init__.py", b"VALUE = 1\n"),
            ("sample/sub/deep/mod.py", b"x = 1\n"),
            ("sample/sub/other.py", b"y = 1\n"),
            ("top.py", b"z = 1\n"),
            ("sample-1.0.data/data/share/man/man1/tool.1", b".TH\n"),
            ("sample-1.0.data/scripts/tool", b"#!python\nprint(1)\n"),
            METADATA,
            WHEEL,
        ],
        None,
    );
    let outer = tempfile::tempdir().expect("tempdir");
    let site_packages = layout().site_packages;
    for directory in ["bin", "include", site_packages.as_str()] {
        std::fs::create_dir_all(outer.path().join(directory)).expect("mkdir");
    }
    let before = everything_under(outer.path());
    let mut disk = DiskTree::new(outer.path());
    install_wheel(Cursor::new(&bytes), &filename(), &layout(), &mut disk).expect("install");
    let made = (everything_under(outer.path()).into_iter())
        .filter(|path| path.is_dir() && !before.contains(path))
        .count() as u64;
    // sample, sample/sub, sample/sub/deep, sample-1.0.dist-info, share, share/man, share/man/man1.
    assert_eq!(made, 7);
    let prepared = verify_wheel(Cursor::new(&bytes), &filename(), None).expect("verify");
    assert_eq!(
        prepared.directories_made(pysfx_install::wheel::MODEL_SITE_PACKAGES),
        made
    );
}

#[test]
fn the_hostile_table_is_refused_by_both_as_content() {
    let table: Vec<(&str, Vec<u8>)> = vec![
        ("traversal", with(("../evil.py", b"x"))),
        ("absolute", with(("/etc/evil", b"x"))),
        ("interpreter", with(("sample-1.0.data/data/bin/python", b"x"))),
        ("pyvenv.cfg", with(("sample-1.0.data/data/pyvenv.cfg", b"x"))),
        ("activate", with(("sample-1.0.data/scripts/activate", b"x"))),
        ("lib64", with(("sample-1.0.data/data/lib64/x.py", b"x"))),
        ("hook module", with(("loadenv.py", b"x"))),
        ("hook pth", with(("loadenv-init.pth", b"x"))),
        ("app pth", with(("mysite.pth", b"x"))),
        ("other metadata", with(("other-1.0.dist-info/METADATA", b"x"))),
        ("unknown data key", with(("sample-1.0.data/lib/x", b"x"))),
        ("include as a file", with(("sample-1.0.data/data/include", b"x"))),
        (
            "lib/python3.11 as a file",
            with(("sample-1.0.data/data/lib/python3.11", b"x")),
        ),
        (
            "one file twice, through site-packages by name",
            with((
                "sample-1.0.data/data/lib/python3.11/site-packages/sample/__init__.py",
                b"x = 1\n",
            )),
        ),
        (
            "RECORD through site-packages by name",
            with((
                "sample-1.0.data/data/lib/python3.11/site-packages/sample-1.0.dist-info/RECORD",
                b"x\n",
            )),
        ),
        (
            "a file through site-packages where a package is",
            with((
                "sample-1.0.data/data/lib/python3.11/site-packages/sample",
                b"x\n",
            )),
        ),
        (
            "a package through site-packages where a module is",
            wheel(
                &[
                    ("sample/__init__.py", b"x = 1\n"),
                    ("mod.py", b"y = 1\n"),
                    METADATA,
                    WHEEL,
                    (
                        "sample-1.0.data/data/lib/python3.11/site-packages/mod.py/x.py",
                        b"z = 1\n",
                    ),
                ],
                None,
            ),
        ),
        (
            "a file where the headers go",
            wheel(
                &[
                    ("sample/__init__.py", b"x = 1\n"),
                    METADATA,
                    WHEEL,
                    ("sample-1.0.data/headers/a.h", b"int a;\n"),
                    ("sample-1.0.data/data/include/site/python3.11", b"x\n"),
                ],
                None,
            ),
        ),
        (
            "one header twice, through the headers by name",
            wheel(
                &[
                    ("sample/__init__.py", b"x = 1\n"),
                    METADATA,
                    WHEEL,
                    ("sample-1.0.data/headers/a.h", b"int a;\n"),
                    ("sample-1.0.data/data/include/site/python3.11/sample/a.h", b"int a;\n"),
                ],
                None,
            ),
        ),
        (
            "record mismatch",
            wheel(
                &[("sample/__init__.py", b"x = 1\n"), METADATA, WHEEL],
                Some(
                    "sample/__init__.py,sha256=AAAA,6\nsample-1.0.dist-info/METADATA,,\nsample-1.0.dist-info/WHEEL,,\n",
                ),
            ),
        ),
        (
            "not in RECORD",
            wheel(
                &[("sample/__init__.py", b"x = 1\n"), METADATA, WHEEL],
                Some("sample-1.0.dist-info/RECORD,,\n"),
            ),
        ),
        ("no metadata", wheel(&[("sample/__init__.py", b"x"), WHEEL], None)),
        (
            "script over a launcher",
            wheel(
                &[
                    ("sample/__init__.py", b"x"),
                    METADATA,
                    WHEEL,
                    ("sample-1.0.data/data/bin/sample", b"x"),
                    (
                        "sample-1.0.dist-info/entry_points.txt",
                        b"[console_scripts]\nsample = sample:main\n",
                    ),
                ],
                None,
            ),
        ),
    ];
    for (what, bytes) in table {
        assert_eq!(
            both(&bytes),
            (Err(Fault::Content), Err(Fault::Content)),
            "{what}"
        );
    }
}

/// What lands in a version's own directories for each Python, as pip installs it: per-version
/// `.pth` files and data, a file where no supported Python's venv has a directory, headers
/// under another name.
#[test]
fn versioned_data_installs_on_both() {
    let bytes = wheel(
        &[
            ("sample/__init__.py", b"x = 1\n"),
            METADATA,
            WHEEL,
            (
                "sample-1.0.data/data/lib/python3.6/site-packages/a.pth",
                b"import os\n",
            ),
            (
                "sample-1.0.data/data/lib/python3.12/site-packages/a.pth",
                b"import os\n",
            ),
            ("sample-1.0.data/data/lib/python3.6/x.txt", b"x\n"),
            ("sample-1.0.data/data/lib/python3.12/x.txt", b"x\n"),
            ("sample-1.0.data/data/lib/python3.14", b"x\n"),
            (
                "sample-1.0.data/data/include/site/python3.12/other/a.h",
                b"int a;\n",
            ),
            ("sample-1.0.data/headers/a.h", b"int a;\n"),
        ],
        None,
    );
    assert_eq!(both(&bytes), (Ok(()), Ok(())));
}

proptest! {
    // 256 cases by default (each installs a wheel for real); PROPTEST_CASES overrides.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn damaged_wheels_are_accepted_and_refused_alike(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = sample();
        for (position, value) in flips {
            let index = position % bytes.len();
            bytes[index] ^= value | 1;
        }
        let (on_disk, modelled) = both(&bytes);
        prop_assert_eq!(on_disk.is_ok(), modelled.is_ok());
    }

    #[test]
    fn accepted_member_names_stay_below_the_root(name in "[a-z./\\\\\u{0}-\u{1f}]{0,24}") {
        if pysfx_format::validate_member_name(&name).is_ok() {
            let path = std::path::Path::new("/root-dir").join(&name);
            let mut depth = 0i32;
            for component in path.components().skip(2) {
                match component {
                    std::path::Component::ParentDir => depth -= 1,
                    std::path::Component::Normal(_) => depth += 1,
                    _ => prop_assert!(false, "unexpected component in {:?}", name),
                }
                prop_assert!(depth >= 0, "{:?} escapes", name);
            }
        }
    }
}
