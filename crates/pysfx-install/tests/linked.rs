//! Linked installs in-process: a wheel's files are hard-linked from a release that installed
//! the same wheel only when each is still what RECORD says (and a regular file of ours, not
//! writable by others); anything else is unpacked, and a thin artifact's left-out file that
//! fails is an error of the machine's (exit 4).

use std::io::{Cursor, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use pysfx_install::wheel::Origin;
use pysfx_install::{prepare_husk, prepare_wheel, Fault, InstallError, Layout, LinkSource};
use pysfx_tree::DiskTree;
use pysfx_wheel::{hash_bytes, WheelFilename};
use zip::ZipArchive;

const MEMBERS: &[(&str, &[u8])] = &[
    ("sample/__init__.py", b"VALUE = 1\n"),
    ("sample/data.txt", b"some data\n"),
    ("sample/big.bin", &[7u8; 300_000]),
    ("sample-1.0.data/scripts/tool", b"#!python\nprint(1)\n"),
    (
        "sample-1.0.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: sample\nVersion: 1.0\n",
    ),
    (
        "sample-1.0.dist-info/WHEEL",
        b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n",
    ),
];

/// The sample wheel's RECORD.
fn record() -> String {
    let mut record = String::new();
    for (name, data) in MEMBERS {
        record.push_str(&format!("{name},{},{}\n", hash_bytes(data), data.len()));
    }
    record.push_str("sample-1.0.dist-info/RECORD,,\n");
    record
}

/// The sample wheel, or (`husk`) only its `.data/scripts/` member and RECORD's skeleton, as a
/// thin artifact carries it.
fn wheel(husk: bool) -> Vec<u8> {
    let is_script = |name: &str| name.contains(".data/scripts/");
    let members: Vec<(&str, &[u8])> = (MEMBERS.iter().copied())
        .filter(|(name, _)| !husk || is_script(name))
        .collect();
    // The skeleton as the packer makes it: the rows a release lists in order in runs.
    let site = site_paths();
    let index = |path: &str| site.iter().position(|p| p == path);
    let record = match husk {
        true => pysfx_wheel::skeleton(&record(), |path| !is_script(path), index),
        false => record(),
    };
    zip_of(&members, &record)
}

/// A zip of `members` and the sample wheel's RECORD member holding `record`.
fn zip_of(members: &[(&str, &[u8])], record: &str) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, data) in members {
        writer.start_file(*name, options).expect("start");
        writer.write_all(data).expect("write");
    }
    writer
        .start_file("sample-1.0.dist-info/RECORD", options)
        .expect("start");
    writer.write_all(record.as_bytes()).expect("write");
    writer.finish().expect("finish").into_inner()
}

/// The RECORD skeleton of the sample wheel's husk.
fn husk_skeleton() -> String {
    let mut husk = ZipArchive::new(Cursor::new(wheel(true))).expect("zip");
    let mut skeleton = String::new();
    std::io::Read::read_to_string(
        &mut husk.by_name("sample-1.0.dist-info/RECORD").expect("RECORD"),
        &mut skeleton,
    )
    .expect("read");
    skeleton
}

/// Where a release of the sample wheel lists its rows inside site-packages.
fn site_paths() -> Vec<String> {
    let members = MEMBERS.iter().map(|(name, _)| *name);
    pysfx_wheel::site_paths(members, "sample-1.0.dist-info").expect("site paths")
}

fn record_sha256() -> String {
    use sha2::Digest;
    pysfx_format::hex(&sha2::Sha256::digest(record().as_bytes()))
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

/// Installs the wheel (or its husk) into `release/venv`, linking from `source` when given.
fn install(
    release: &Path,
    husk: bool,
    source: Option<&LinkSource>,
    copy: bool,
) -> Result<(u64, u64), InstallError> {
    let venv = release.join("venv");
    std::fs::create_dir_all(&venv).expect("venv");
    let filename: WheelFilename = "sample-1.0-py3-none-any.whl".parse().expect("name");
    let mut archive = ZipArchive::new(Cursor::new(wheel(husk))).expect("zip");
    let layout = layout();
    let prepared = match (husk, source) {
        (true, Some(base)) => prepare_husk(
            &mut archive,
            &filename,
            &layout,
            base,
            &record_sha256(),
            None,
        )?,
        _ => prepare_wheel(&mut archive, &filename, &layout)?,
    };
    let origin = Origin {
        source,
        copy,
        spared: None,
    };
    let mut tree = DiskTree::new(&venv);
    let mut outcomes = Vec::new();
    for member in prepared.member_ids() {
        outcomes.push(prepared.place(&mut archive, member, &layout, &mut tree, &origin)?);
    }
    let report = prepared.finish(outcomes, &layout, &mut tree, None)?;
    Ok((report.linked_files, report.linked_bytes))
}

const SITE: &str = "venv/lib/python3.11/site-packages";

fn inode(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).expect("stat").ino()
}

fn same_file(a: &Path, b: &Path, relative: &str) -> bool {
    inode(&a.join(relative)) == inode(&b.join(relative))
}

#[test]
fn intact_files_are_linked_and_per_release_files_written() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let (one, two) = (temporary.path().join("1"), temporary.path().join("2"));
    assert_eq!(install(&one, false, None, false).expect("one"), (0, 0));
    let (files, bytes) = install(&two, false, Some(&LinkSource::new(&one)), false).expect("two");
    // The three package files and METADATA and WHEEL (the same bytes in every release).
    assert_eq!(files, 5);
    let metadata_bytes = (MEMBERS[4].1.len() + MEMBERS[5].1.len()) as u64;
    assert_eq!(bytes, 10 + 10 + 300_000 + metadata_bytes);
    for relative in ["sample/__init__.py", "sample/data.txt", "sample/big.bin"] {
        assert!(
            same_file(&one, &two, &format!("{SITE}/{relative}")),
            "{relative}"
        );
    }
    // The rewritten script and the bookkeeping are the release's own.
    for relative in [
        "venv/bin/tool".to_string(),
        format!("{SITE}/sample-1.0.dist-info/RECORD"),
        format!("{SITE}/sample-1.0.dist-info/INSTALLER"),
    ] {
        assert!(!same_file(&one, &two, &relative), "{relative}");
    }
    // The RECORDs list the same paths and hashes.
    let record = |release: &Path| {
        std::fs::read_to_string(release.join(SITE).join("sample-1.0.dist-info/RECORD"))
            .expect("RECORD")
    };
    assert_eq!(record(&one), record(&two));
    // --copy links nothing.
    let three = temporary.path().join("3");
    assert_eq!(
        install(&three, false, Some(&LinkSource::new(&one)), true).expect("three"),
        (0, 0)
    );
    assert!(!same_file(&one, &three, &format!("{SITE}/sample/big.bin")));
}

#[test]
fn changed_files_are_unpacked_not_linked() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let one = temporary.path().join("1");
    install(&one, false, None, false).expect("one");
    let site = one.join(SITE);
    // Same size, same mtime, other content.
    let init = site.join("sample/__init__.py");
    let mtime = std::fs::metadata(&init)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(&init, b"VALUE = 2\n").expect("edit");
    std::fs::File::options()
        .write(true)
        .open(&init)
        .and_then(|file| file.set_modified(mtime))
        .expect("mtime");
    // A link planted where a file was, to a file with the right content.
    let outside = temporary.path().join("outside.txt");
    std::fs::write(&outside, b"some data\n").expect("outside");
    std::fs::remove_file(site.join("sample/data.txt")).expect("remove");
    std::os::unix::fs::symlink(&outside, site.join("sample/data.txt")).expect("symlink");
    // Writable by the group.
    let big = site.join("sample/big.bin");
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o664)).expect("chmod");

    let two = temporary.path().join("2");
    let (files, _) = install(&two, false, Some(&LinkSource::new(&one)), false).expect("two");
    assert_eq!(files, 2, "only METADATA and WHEEL are intact");
    let site_two = two.join(SITE);
    assert_eq!(
        std::fs::read(site_two.join("sample/__init__.py")).expect("read"),
        b"VALUE = 1\n"
    );
    let data = std::fs::symlink_metadata(site_two.join("sample/data.txt")).expect("stat");
    assert!(data.is_file() && data.nlink() == 1);
    assert_ne!(inode(&big), inode(&site_two.join("sample/big.bin")));
    assert_eq!(std::fs::read(&outside).expect("outside"), b"some data\n");
}

#[test]
fn a_husk_takes_its_left_out_files_from_the_release() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let one = temporary.path().join("1");
    install(&one, false, None, false).expect("one");
    let source = LinkSource::new(&one);
    // The release lists its rows inside site-packages where the packer counts on them, and
    // the husk names none of the package's files: their rows come in a run.
    let installed_record = one.join(SITE).join("sample-1.0.dist-info/RECORD");
    let pristine = std::fs::read_to_string(&installed_record).expect("RECORD");
    let rows = pysfx_wheel::Record::parse(&pristine)
        .expect("parse")
        .entries;
    let listed: Vec<&str> = pysfx_wheel::site_rows(&rows, "sample-1.0.dist-info")
        .iter()
        .map(|row| row.path.as_str())
        .collect();
    assert_eq!(listed, site_paths());
    let skeleton = husk_skeleton();
    assert!(
        skeleton.contains('\0') && !skeleton.contains("sample/"),
        "{skeleton:?}"
    );

    let two = temporary.path().join("2");
    let (files, _) = install(&two, true, Some(&source), false).expect("linked");
    assert_eq!(files, 5);
    assert!(same_file(&one, &two, &format!("{SITE}/sample/big.bin")));
    let record = |release: &Path| {
        std::fs::read_to_string(release.join(SITE).join("sample-1.0.dist-info/RECORD"))
            .expect("RECORD")
    };
    assert_eq!(record(&one), record(&two));

    // --copy: copied and checked, not linked.
    let three = temporary.path().join("3");
    assert_eq!(
        install(&three, true, Some(&source), true).expect("copied"),
        (0, 0)
    );
    assert!(!same_file(&one, &three, &format!("{SITE}/sample/big.bin")));
    assert_eq!(record(&one), record(&three));

    // The release's RECORD differs (a row's hash edited): the filled-in RECORD is not the
    // wheel's, an error of the machine's.
    let data_hash = hash_bytes(b"some data\n");
    std::fs::write(
        &installed_record,
        pristine.replace(&data_hash, &hash_bytes(b"x")),
    )
    .expect("edit");
    let error =
        install(&temporary.path().join("4"), true, Some(&source), false).expect_err("record");
    assert_eq!(error.fault(), Fault::Machine, "{error}");
    assert!(error.to_string().contains("RECORD"), "{error}");
    // Its rows in another order: the runs take other rows.
    let mut lines: Vec<&str> = pristine.lines().collect();
    lines.reverse();
    std::fs::write(&installed_record, lines.join("\n") + "\n").expect("edit");
    let error =
        install(&temporary.path().join("4r"), true, Some(&source), false).expect_err("order");
    assert_eq!(error.fault(), Fault::Machine, "{error}");
    std::fs::write(&installed_record, pristine).expect("restore");

    // A changed left-out file is neither linked nor copied.
    std::fs::write(one.join(SITE).join("sample/data.txt"), b"other data\n").expect("edit");
    for copy in [false, true] {
        let error = install(
            &temporary.path().join(format!("5{copy}")),
            true,
            Some(&source),
            copy,
        )
        .expect_err("changed");
        assert_eq!(error.fault(), Fault::Machine, "{error}");
        assert!(error.to_string().contains("sample/data.txt"), "{error}");
    }
}

/// Prepares a hand-made husk of the sample wheel (`members` besides the skeleton) against the
/// release `one`.
fn prepare_crafted(
    one: &Path,
    skeleton: &str,
    members: &[(&str, &[u8])],
) -> Result<pysfx_install::wheel::PreparedWheel, InstallError> {
    let bytes = zip_of(members, skeleton);
    let filename: WheelFilename = "sample-1.0-py3-none-any.whl".parse().expect("name");
    let mut archive = ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let source = LinkSource::new(one);
    prepare_husk(
        &mut archive,
        &filename,
        &layout(),
        &source,
        &record_sha256(),
        None,
    )
}

#[test]
fn a_crafted_husk_or_a_bloated_release_record_is_refused() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let one = temporary.path().join("1");
    install(&one, false, None, false).expect("one");
    let script = ("sample-1.0.data/scripts/tool", MEMBERS[3].1);
    let skeleton = husk_skeleton();
    assert!(prepare_crafted(&one, &skeleton, &[script]).is_ok());
    // A malformed run line, or a member a husk never carries: the artifact's fault (exit 3).
    let malformed = format!("\0-1 2\n{skeleton}");
    let stray = ("sample/__init__.py", MEMBERS[0].1);
    for (what, result) in [
        ("malformed", prepare_crafted(&one, &malformed, &[script])),
        ("stray", prepare_crafted(&one, &skeleton, &[script, stray])),
    ] {
        let error = result.err().unwrap_or_else(|| panic!("{what}: prepared"));
        assert_eq!(error.fault(), Fault::Content, "{what}: {error}");
    }
    // A release RECORD grown past any wheel's is not read: the machine's fault (exit 4).
    let installed_record = one.join(SITE).join("sample-1.0.dist-info/RECORD");
    let mut bloated = std::fs::read_to_string(&installed_record).expect("RECORD");
    bloated.push_str(&"a,,1\n".repeat(4 << 20));
    std::fs::write(&installed_record, bloated).expect("bloat");
    let error = prepare_crafted(&one, &skeleton, &[script]).expect_err("bloated");
    assert_eq!(error.fault(), Fault::Machine, "{error}");
    assert!(error.to_string().contains("larger than 16 MiB"), "{error}");
}
