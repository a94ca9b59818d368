//! The documented Ansible rollout (examples/ansible), run for real with ansible-core from PyPI
//! against this machine: the example site packed from its requirements, deployed twice (the
//! second run reports changed=0), upgraded, and a failing deploy reported from the JSON; then
//! the same artifact rolled out to a fleet of six local "hosts", two at a time, one of which
//! fails its health check and goes back to its previous release (tests/ansible-fleet.sh).

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
    // One ansible-core install for both scripts.
    let venv = work.path().join("ansible-venv");
    let output = run(Command::new("bash")
        .arg(root.join("tests/ansible.sh"))
        .arg(&artifact)
        .env("PYTHON", &python.path)
        .env("ANSIBLE_VENV", &venv));
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

    let output = run(Command::new("bash")
        .arg(root.join("tests/ansible-fleet.sh"))
        .arg(&artifact)
        .env("PYTHON", &python.path)
        .env("ANSIBLE_VENV", &venv));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The per-host outcome table, in the test's output.
    println!("{stdout}");
    assert!(
        output.status.success(),
        "tests/ansible-fleet.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("web3 rolled back to release 1, the others on release 2"),
        "{stdout}\n{stderr}"
    );
}
