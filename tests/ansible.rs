//! The documented Ansible rollout (examples/ansible), run for real with ansible-core from PyPI
//! against this machine: the example site packed from its requirements, deployed twice (the
//! second run reports changed=0), upgraded, and a failing deploy reported from the JSON.

use std::ffi::OsStr;
use std::process::Command;

use pysfx_e2e::{pack, python, run, workspace_root};

#[test]
fn the_ansible_example_deploys_the_site_twice() {
    let root = workspace_root();
    let work = tempfile::tempdir().expect("tempdir");
    let python = python(11);
    let artifact = pack(
        &[
            OsStr::new("--app"),
            root.join("examples/site/mysite").as_os_str(),
            OsStr::new("-r"),
            root.join("examples/site/requirements.txt").as_os_str(),
            OsStr::new("--python"),
            python.path.as_os_str(),
            OsStr::new("--static"),
            root.join("examples/site/extra-static").as_os_str(),
        ],
        &work.path().join("site.sfx"),
    );
    let output = run(Command::new("bash")
        .arg(root.join("tests/ansible.sh"))
        .arg(&artifact)
        .env("PYTHON", &python.path));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "tests/ansible.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("first run changed, second run unchanged")
            || stdout.contains("first run changed, second run unchanged"),
        "{stdout}\n{stderr}"
    );
}
