//! The tags pysfx computes for an interpreter, from its one query, are the tags
//! `packaging.tags.sys_tags()` yields under that interpreter, entry for entry and in order.

use std::process::Command;

use pysfx_e2e::{datapkg_wheel, host_python, make_app, pack, pythons, run, workspace_root};

/// Pinned packaging wheels: 21.3 is the last for Python 3.6, 22.0 for 3.7; 24.2 is what pip 24
/// vendors.
fn packaging_wheel(minor: u32) -> std::path::PathBuf {
    let version = match minor {
        6 => "21.3",
        7 => "22.0",
        _ => "24.2",
    };
    let directory = workspace_root().join("target/pysfx-test-cache/packaging");
    let wheel = directory.join(format!("packaging-{version}-py3-none-any.whl"));
    if !wheel.exists() {
        let output = run(Command::new(host_python())
            .args([
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
            ])
            .arg(&directory)
            .arg(format!("packaging=={version}")));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    wheel
}

#[test]
fn tag_order_matches_packaging_on_every_python() {
    let work = tempfile::tempdir().expect("tempdir");
    let artifact = pack(
        &[
            std::ffi::OsStr::new("--app"),
            make_app(work.path(), "demoapp").as_os_str(),
            std::ffi::OsStr::new("--wheels"),
            datapkg_wheel().as_os_str(),
            std::ffi::OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("site.sfx"),
    );
    let mut tested = Vec::new();
    for python in pythons() {
        let script = "import sys; sys.path.insert(0, sys.argv[1]); from packaging import tags; print('\\n'.join(str(t) for t in tags.sys_tags()))";
        let output = run(Command::new(&python.path)
            .args(["-c", script])
            .arg(packaging_wheel(python.minor)));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut theirs: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if python.minor == 6 {
            // packaging 22 added `cpXY-none-any` right before `pyXY-none-any` (sys_tags passes
            // the interpreter to compatible_tags); 21.3, the last release for 3.6, lacks it.
            // pysfx follows current packaging, so the 3.6 reference gets exactly that entry.
            let at = theirs
                .iter()
                .position(|tag| tag == "py36-none-any")
                .expect("py36-none-any");
            theirs.insert(at, "cp36-none-any".to_string());
        }

        let output = run(Command::new(&artifact)
            .args(["--info", "--json", "--python"])
            .arg(&python.path));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let info: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        let ours: Vec<String> = info["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|tag| tag.as_str().expect("str").to_string())
            .collect();
        if let Some(index) =
            (0..theirs.len().max(ours.len())).find(|&i| theirs.get(i) != ours.get(i))
        {
            panic!(
                "3.{}: first difference at tag {index}: packaging {:?}, pysfx {:?} ({} vs {} tags)",
                python.minor,
                theirs.get(index),
                ours.get(index),
                theirs.len(),
                ours.len()
            );
        }
        tested.push(format!("3.{} ({} tags)", python.minor, ours.len()));
    }
    println!("tag order identical to packaging on: {}", tested.join(", "));
}
