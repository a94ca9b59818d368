//! DiskTree on a real directory: exclusive creates, no link followed, replacements of regular
//! files only.

use std::fs;
use std::path::Path;

use pysfx_tree::{
    create_dirs_below, CopyOptions, DiskTree, Disposition, ReadHash, Tree, TreeError,
};
use sha2::{Digest, Sha256};

#[test]
fn creates_below_an_existing_root_only() {
    let temporary = tempfile::tempdir().expect("tempdir");
    create_dirs_below(temporary.path(), "a/b/c").expect("create");
    assert!(temporary.path().join("a/b/c").is_dir());
    create_dirs_below(temporary.path(), "a/b/c").expect("again");
    let gone = temporary.path().join("gone");
    assert!(create_dirs_below(&gone, "x/y").is_err());
    assert!(!gone.exists(), "the root was created");
}

#[test]
fn never_writes_through_a_link() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let root = temporary.path().join("root");
    let outside = temporary.path().join("outside");
    fs::create_dir(&root).expect("root");
    fs::create_dir(&outside).expect("outside");
    fs::write(outside.join("target"), "precious").expect("target");
    std::os::unix::fs::symlink(outside.join("target"), root.join("file")).expect("link");
    std::os::unix::fs::symlink(&outside, root.join("dir")).expect("dir link");
    let mut tree = DiskTree::new(&root);
    for disposition in [Disposition::Create, Disposition::Replace] {
        assert!(tree.write_all("file", b"evil", 0o644, disposition).is_err());
        assert!(tree
            .write_all("dir/new", b"evil", 0o644, disposition)
            .is_err());
    }
    assert_eq!(
        fs::read_to_string(outside.join("target")).expect("read"),
        "precious"
    );
    assert!(!outside.join("new").exists());
    // Nothing is left behind by the refused replacement.
    let names: Vec<_> = fs::read_dir(&root)
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn symlinks_are_created_exclusively_below_real_directories() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let root = temporary.path().join("root");
    let outside = temporary.path().join("outside");
    fs::create_dir(&root).expect("root");
    fs::create_dir(&outside).expect("outside");
    let mut tree = DiskTree::new(&root);
    tree.write_all("a/file", b"x", 0o644, Disposition::Create)
        .expect("file");
    tree.symlink("a/b/link", "../file").expect("symlink");
    assert_eq!(
        fs::read_link(root.join("a/b/link")).expect("read_link"),
        Path::new("../file")
    );
    assert_eq!(fs::read(root.join("a/b/link")).expect("through"), b"x");
    // Nothing at the path is replaced: a file, a link, a directory.
    for taken in ["a/file", "a/b/link", "a"] {
        assert!(
            matches!(tree.symlink(taken, "x"), Err(TreeError::PathTaken { .. })),
            "{taken}"
        );
    }
    assert_eq!(fs::read(root.join("a/file")).expect("kept"), b"x");
    // No directory is made through a planted link to outside.
    std::os::unix::fs::symlink(&outside, root.join("dir")).expect("dir link");
    assert!(tree.symlink("dir/evil", "../x").is_err());
    assert!(!outside.join("evil").exists());
}

#[test]
fn creates_exclusively_and_replaces_regular_files() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut tree = DiskTree::new(temporary.path());
    tree.write_all("a/b.txt", b"one", 0o644, Disposition::Create)
        .expect("create");
    assert!(matches!(
        tree.write_all("a/b.txt", b"two", 0o644, Disposition::Create),
        Err(TreeError::PathTaken { .. })
    ));
    tree.write_all("a/b.txt", b"three", 0o644, Disposition::Replace)
        .expect("replace");
    tree.write_all("a/b.txt", b"four", 0o644, Disposition::Discard)
        .expect("discard");
    assert_eq!(
        fs::read_to_string(temporary.path().join("a/b.txt")).expect("read"),
        "three"
    );
    assert!(tree
        .write_all("a", b"x", 0o644, Disposition::Replace)
        .is_err());
    assert_eq!(
        fs::read_dir(temporary.path().join("a"))
            .expect("ls")
            .count(),
        1
    );
}

#[test]
fn copy_rewrites_the_head_and_hashes_both_ways() {
    let temporary = tempfile::tempdir().expect("tempdir");
    let mut tree = DiskTree::new(temporary.path());
    let source = b"#!python\nprint(1)\n".to_vec();
    let copied = tree
        .copy(
            "bin/tool",
            &mut &source[..],
            CopyOptions {
                head: Some((9, b"#!/venv/bin/python\n")),
                read_hash: Some(ReadHash::Sha512),
                ..CopyOptions::new(0o755)
            },
        )
        .expect("copy");
    let written = fs::read(temporary.path().join("bin/tool")).expect("read");
    assert_eq!(written, b"#!/venv/bin/python\nprint(1)\n");
    assert_eq!(copied.size, written.len() as u64);
    assert_eq!(copied.sha256.to_vec(), Sha256::digest(&written).to_vec());
    assert_eq!(copied.read_size, source.len() as u64);
    assert_eq!(
        copied.read_digest.expect("sha512"),
        sha2::Sha512::digest(&source).to_vec()
    );
}
