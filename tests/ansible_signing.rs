//! The Ansible role's `pysfx_release_pubkey` (examples/ansible): the controller checks the
//! artifact's signature with `pysfx verify --pubkey` before anything reaches a host. A wrong
//! key, a tampered artifact and a missing signature each fail the play with nothing created on
//! the host; a good signature passes. Runs ansible-core from PyPI (a cached venv).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pysfx_e2e::tools::python_tools;
use pysfx_e2e::{binaries, make_app, pack_command, python, run, workspace_root};

fn ansible_playbook(work: &Path, playbook: &Path, extra: &[(&str, &Path)]) -> Output {
    let tools = python_tools("ansible-core-2.18", &["ansible-core==2.18.*"]);
    let examples = workspace_root().join("examples/ansible");
    let home = work.join("ansible-home");
    let mut command = Command::new(tools.join("ansible-playbook"));
    command
        .current_dir(&examples)
        .arg("-i")
        .arg(examples.join("inventory.ini"))
        .arg(playbook)
        .args(["-e", "pysfx_secret_key=not-a-secret"])
        .arg("-e")
        .arg(format!("pysfx_packer={}", binaries().pysfx.display()))
        .arg("-e")
        .arg(format!("pysfx_python={}", python(11).path.display()))
        .env("ANSIBLE_CONFIG", examples.join("ansible.cfg"))
        .env("ANSIBLE_ROLES_PATH", examples.join("roles"))
        .env("ANSIBLE_HOME", &home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_REMOTE_TEMP", home.join("remote-tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env_remove("ANSIBLE_INVENTORY");
    for (name, value) in extra {
        command.arg("-e").arg(format!("{name}={}", value.display()));
    }
    run(&mut command)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn keygen(root: &Path, name: &str) -> PathBuf {
    let output = run(Command::new(&binaries().pysfx)
        .args(["keygen", "--unencrypted", "-o"])
        .arg(root.join(name)));
    assert!(output.status.success(), "{}", text(&output));
    root.join(name)
}

#[test]
fn the_role_refuses_a_badly_signed_artifact_before_copying_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let key = keygen(root, "release");
    let other = keygen(root, "other");
    let app = make_app(root, "demoapp");
    let artifact = root.join("site.sfx");
    let secret = key.with_extension("key");
    let output = run(&mut pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
            OsStr::new("--sign"),
            secret.as_os_str(),
        ],
        &artifact,
    ));
    assert!(output.status.success(), "{}", text(&output));
    let deploy = workspace_root().join("examples/ansible/deploy.yml");
    let site_root = root.join("srv");

    // The right key: the check alone passes.
    let check_only = root.join("check.yml");
    std::fs::write(
        &check_only,
        "- hosts: pysfx\n  connection: local\n  gather_facts: false\n  tasks:\n    - \
         ansible.builtin.include_role:\n        name: pysfx_release\n        tasks_from: \
         verify_signature.yml\n",
    )
    .expect("write the playbook");
    let public = key.with_extension("pub");
    let output = ansible_playbook(
        root,
        &check_only,
        &[
            ("pysfx_artifact", &artifact),
            ("pysfx_release_pubkey", &public),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));

    // Another key, then a tampered artifact, then no signature: the whole deploy fails at the
    // check, naming why, and the host gets nothing (not even pysfx_root).
    let other_public = other.with_extension("pub");
    let tampered = root.join("tampered.sfx");
    let mut bytes = std::fs::read(&artifact).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&tampered, bytes).expect("write");
    std::fs::copy(
        root.join("site.sfx.minisig"),
        root.join("tampered.sfx.minisig"),
    )
    .expect("copy");
    let unsigned = root.join("unsigned.sfx");
    std::fs::copy(&artifact, &unsigned).expect("copy");
    let cases: [(&Path, &Path, &str); 3] = [
        (&artifact, &other_public, "which no --pubkey has"),
        (&tampered, &public, "does not match"),
        (&unsigned, &public, "no signature"),
    ];
    for (artifact, key, reason) in cases {
        let output = ansible_playbook(
            root,
            &deploy,
            &[
                ("pysfx_artifact", artifact),
                ("pysfx_release_pubkey", key),
                ("pysfx_root", &site_root),
            ],
        );
        let log = text(&output);
        assert!(!output.status.success(), "{}: {log}", artifact.display());
        assert!(
            log.contains("is not signed by") && log.contains(reason),
            "{}: {log}",
            artifact.display()
        );
        assert!(!site_root.exists(), "the play reached the host: {log}");
    }
}
