//! NullTree and DiskTree accept and refuse exactly the same sequences of writes: a table of
//! hostile sequences, then random ones.

use std::fs;

use proptest::prelude::*;
use pysfx_tree::{CopyOptions, DiskTree, Disposition, NullTree, Tree};

#[derive(Debug, Clone)]
enum Op {
    Create(String),
    Replace(String),
    Discard(String),
    Link(String),
    Dirs(String),
}

fn apply(tree: &mut impl Tree, op: &Op) -> Result<[u8; 32], String> {
    let write = |tree: &mut _, path: &str, disposition| -> Result<[u8; 32], String> {
        Tree::copy(
            tree,
            path,
            &mut &b"content\n"[..],
            CopyOptions {
                disposition,
                ..CopyOptions::new(0o644)
            },
        )
        .map(|copied| copied.sha256)
        .map_err(|error| format!("{error:?}"))
    };
    match op {
        Op::Create(path) => write(tree, path, Disposition::Create),
        Op::Replace(path) => write(tree, path, Disposition::Replace),
        Op::Discard(path) => write(tree, path, Disposition::Discard),
        Op::Link(path) => tree
            .symlink(path, "target")
            .map(|()| [0; 32])
            .map_err(|error| error.to_string()),
        Op::Dirs(path) => tree
            .create_dirs(path)
            .map(|()| [0; 32])
            .map_err(|error| error.to_string()),
    }
}

/// Runs `ops` on both trees (each with a fresh handle per op, as threads would) and returns
/// which were accepted.
/// Per op: the SHA-256 of what was written, or `None` when it was refused.
type Outcomes = Vec<Option<[u8; 32]>>;

fn outcomes(ops: &[Op]) -> (Outcomes, Outcomes) {
    let temporary = tempfile::tempdir().expect("tempdir");
    let root = temporary.path().join("root");
    fs::create_dir(&root).expect("root");
    let disk = DiskTree::new(&root);
    let null = NullTree::new();
    let on_disk = ops
        .iter()
        .map(|op| apply(&mut disk.fork(), op).ok())
        .collect();
    let in_model = ops
        .iter()
        .map(|op| apply(&mut null.fork(), op).ok())
        .collect();
    (on_disk, in_model)
}

fn create(path: &str) -> Op {
    Op::Create(path.into())
}

#[test]
fn the_hostile_table_is_refused_alike() {
    let table: Vec<Vec<Op>> = vec![
        vec![create("a"), create("a")],
        vec![create("a"), create("a/b")],
        vec![Op::Link("a".into()), create("a/b")],
        vec![Op::Link("a".into()), create("a")],
        vec![Op::Link("a".into()), Op::Replace("a".into())],
        vec![Op::Dirs("a/b".into()), Op::Replace("a/b".into())],
        vec![Op::Dirs("a/b".into()), create("a")],
        vec![create("a/b"), Op::Link("a/b".into())],
        vec![
            create("a/b"),
            Op::Replace("a/b".into()),
            Op::Discard("a/b".into()),
            Op::Link("a/b".into()),
        ],
        vec![Op::Replace("new".into()), create("new")],
        vec![create("x/y/z"), Op::Dirs("x/y/z/w".into())],
        vec![Op::Link("l".into()), Op::Dirs("l/m".into())],
    ];
    for ops in table {
        let (disk, null) = outcomes(&ops);
        assert_eq!(disk, null, "{ops:?}");
        assert!(disk.iter().any(Option::is_none), "nothing refused: {ops:?}");
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let path = prop::sample::select(vec!["a", "b", "a/b", "a/c", "b/a", "a/b/c", "c/d/e"])
        .prop_map(str::to_string);
    prop_oneof![
        path.clone().prop_map(Op::Create),
        path.clone().prop_map(Op::Replace),
        path.clone().prop_map(Op::Discard),
        path.clone().prop_map(Op::Link),
        path.prop_map(Op::Dirs),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_sequences_are_accepted_and_refused_alike(ops in prop::collection::vec(op_strategy(), 1..8)) {
        let (disk, null) = outcomes(&ops);
        prop_assert_eq!(disk, null, "{:?}", ops);
    }
}
