//! Property tests (the fuzzing of docs/fuzzing.md): the parsers never panic on any input, what
//! they accept round-trips, and the installer, fed damaged wheels, never panics and never
//! writes outside its root. `PROPTEST_CASES=100000 cargo test -p pysfx-wheel --test properties`
//! runs them longer.

use std::io::{Cursor, Write};

use proptest::prelude::*;
use pysfx_wheel::{
    hash_bytes, install_wheel, validate_member_name, EntryPoints, Headers, Layout, Marker,
    MarkerEnvironment, Record, Requirement, WheelFilename,
};

proptest! {
    #[test]
    fn wheel_filenames_parse_or_fail_cleanly(text in ".{0,80}") {
        if let Ok(parsed) = text.parse::<WheelFilename>() {
            let again: WheelFilename = parsed.to_string().parse().expect("a printed filename parses");
            prop_assert_eq!(again, parsed);
        }
    }

    #[test]
    fn plausible_wheel_filenames_round_trip(
        name in "[A-Za-z][A-Za-z0-9_.]{0,12}",
        version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,2}",
        build in proptest::option::of("[0-9]{1,3}[a-z]{0,2}"),
        python in "(py3|cp3[0-9]{1,2})(\\.py2)?",
        platform in "(any|manylinux_2_17_x86_64|linux_x86_64)",
    ) {
        let build = build.map(|b| format!("-{b}")).unwrap_or_default();
        let filename = format!("{name}-{version}{build}-{python}-none-{platform}.whl");
        let parsed: WheelFilename = filename.parse().expect("valid");
        prop_assert_eq!(parsed.to_string(), filename);
    }

    #[test]
    fn record_parses_or_fails_cleanly(text in "(?s).{0,400}") {
        if let Ok(record) = Record::parse(&text) {
            let again = Record::parse(&record.to_text()).expect("a written RECORD parses");
            let mut a = again.entries;
            let mut b = record.entries;
            a.sort_by(|x, y| x.path.cmp(&y.path));
            b.sort_by(|x, y| x.path.cmp(&y.path));
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn headers_and_entry_points_never_panic(text in "(?s).{0,400}") {
        let _ = Headers::parse(&text).get("Name");
        if let Ok(points) = EntryPoints::parse(&text) {
            for script in points.scripts {
                prop_assert!(!script.name.contains('/'));
                prop_assert!(script.name != ".." && script.name != ".");
            }
        }
    }

    #[test]
    fn requirements_and_markers_parse_or_fail_cleanly(
        text in "(?s).{0,120}",
        shaped in "[A-Za-z0-9_.\\-]{1,8} ?(\\[[a-z, ]{0,8}\\])? ?[(]?([<>=!~]{1,3}[0-9.a-z*+]{0,6},?){0,3}[)]? ?(; ?(python_version|extra|os_name|'x') ?(<|==|~=|in|not in) ?[\"'][0-9a-z.* ]{0,6}[\"'] ?(and|or)? ?[()]?)?",
    ) {
        let environment = MarkerEnvironment::default();
        for candidate in [&text, &shaped] {
            if let Ok(requirement) = Requirement::parse(candidate) {
                let _ = requirement.applies_to(&environment, &["x".to_string()]);
                // What is printed parses back to the same requirement (except a name with a
                // trailing `_`, which packaging accepts and PEP 503 turns into a trailing `-`).
                if !requirement.name.ends_with('-') {
                    let again = Requirement::parse(&requirement.to_string());
                    prop_assert_eq!(again.as_ref(), Ok(&requirement));
                }
            }
            if let Ok(marker) = Marker::parse(candidate) {
                let _ = marker.evaluate_extra(&environment, "");
            }
        }
    }

    #[test]
    fn accepted_member_names_stay_below_the_root(name in "[a-z./\\\\\u{0}-\u{1f}]{0,24}") {
        if validate_member_name(&name).is_ok() {
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

/// A small valid wheel, built in memory.
fn sample_wheel() -> Vec<u8> {
    let members: Vec<(&str, &[u8])> = vec![
        ("sample/__init__.py", b"VALUE = 1\n"),
        ("sample/data.txt", b"some data\n"),
        ("sample-1.0.data/scripts/tool", b"#!python\nprint(1)\n"),
        (
            "sample-1.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: sample\nVersion: 1.0\n",
        ),
        (
            "sample-1.0.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n",
        ),
        (
            "sample-1.0.dist-info/entry_points.txt",
            b"[console_scripts]\nsample = sample:main\n",
        ),
    ];
    let mut record = String::new();
    for (name, data) in &members {
        record.push_str(&format!("{name},{},{}\n", hash_bytes(data), data.len()));
    }
    record.push_str("sample-1.0.dist-info/RECORD,,\n");
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in &members {
        writer.start_file(*name, options).expect("start");
        writer.write_all(data).expect("write");
    }
    writer
        .start_file("sample-1.0.dist-info/RECORD", options)
        .expect("start");
    writer.write_all(record.as_bytes()).expect("write");
    writer.finish().expect("finish").into_inner()
}

fn everything_under(root: &std::path::Path) -> Vec<std::path::PathBuf> {
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

/// A 3.11 venv layout rooted at `root`.
fn layout_at(root: &std::path::Path) -> Layout {
    Layout {
        root: root.to_path_buf(),
        site_packages: "lib/python3.11/site-packages".into(),
        python_version: (3, 11),
        shebang_python: "/final/venv/bin/python".into(),
        installer: "pysfx".into(),
        app_name: None,
    }
}

#[test]
fn the_sample_wheel_installs() {
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("venv");
    std::fs::create_dir(&root).expect("mkdir");
    let layout = layout_at(&root);
    let filename: WheelFilename = "sample-1.0-py3-none-any.whl".parse().expect("name");
    let report = install_wheel(Cursor::new(sample_wheel()), &filename, &layout).expect("install");
    assert_eq!(report.name, "sample");
    assert!(root.join("bin/sample").is_file() && root.join("bin/tool").is_file());
}

proptest! {
    // 512 cases by default (each installs a wheel for real); PROPTEST_CASES overrides.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn damaged_wheels_never_panic_or_escape(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = sample_wheel();
        for (position, value) in flips {
            let index = position % bytes.len();
            bytes[index] ^= value | 1;
        }
        let outer = tempfile::tempdir().expect("tempdir");
        let root = outer.path().join("venv");
        std::fs::create_dir(&root).expect("mkdir");
        let layout = layout_at(&root);
        let filename: WheelFilename = "sample-1.0-py3-none-any.whl".parse().expect("name");
        let _ = install_wheel(Cursor::new(bytes), &filename, &layout);
        for path in everything_under(outer.path()) {
            prop_assert!(path.starts_with(&root), "wrote outside the root: {}", path.display());
        }
    }
}
