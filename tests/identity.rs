//! SPEC "Identity": the app's version goes into the manifest and the receipt and is shown by
//! `inspect`, `--info` and `--version`; every digest is named for what it is — the artifact
//! file's SHA-256 (what `sha256sum` prints) or the payload digest — and `--info` and `inspect`
//! check the payload digest. A file that cannot be read is not "corrupt".

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{binaries, install_with, make_app, pack, pack_command, python, run};
use sha2::Digest;

fn pack_app(root: &Path, app: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    pack(&args, &root.join("site.sfx"))
}

fn stdout_of(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json_of(command: &mut Command) -> serde_json::Value {
    serde_json::from_str(&stdout_of(command)).expect("JSON")
}

fn inspect(artifact: &Path, json: bool) -> Command {
    let mut command = Command::new(&binaries().pysfx);
    command.arg("inspect").arg(artifact);
    if json {
        command.arg("--json");
    }
    command
}

#[test]
fn the_app_version_reaches_manifest_receipt_inspect_info_and_version() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    let artifact = pack_app(root, &app, &["--app-version", "1.2.3+build.7"]);

    let text = stdout_of(&mut inspect(&artifact, false));
    assert!(
        text.contains("app:       demoapp/ version 1.2.3+build.7"),
        "{text}"
    );
    let value = json_of(&mut inspect(&artifact, true));
    assert_eq!(value["app_version"], "1.2.3+build.7");
    assert_eq!(value["manifest"]["app"]["version"], "1.2.3+build.7");

    let version = stdout_of(Command::new(&artifact).arg("--version"));
    assert_eq!(
        version,
        format!(
            "pysfx-stub {}\napp demoapp 1.2.3+build.7\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    // `--json`, before or after: one object.
    for args in [["--version", "--json"], ["--json", "-V"]] {
        let value = json_of(Command::new(&artifact).args(args));
        assert_eq!(value["pysfx_stub"], env!("CARGO_PKG_VERSION"), "{value}");
        assert_eq!(value["app"], "demoapp", "{value}");
        assert_eq!(value["app_version"], "1.2.3+build.7", "{value}");
    }
    // Help is text: with `--json`, a usage error, itself one object.
    let output = run(Command::new(&artifact).args(["--help", "--json"]));
    assert_eq!(output.status.code(), Some(2));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one object");
    assert_eq!(value["exit_code"], 2, "{value}");
    let info = stdout_of(Command::new(&artifact).arg("--info"));
    assert!(info.contains("demoapp version 1.2.3+build.7"), "{info}");
    let value = json_of(Command::new(&artifact).args(["--info", "--json"]));
    assert_eq!(value["app_version"], "1.2.3+build.7");

    let destination = root.join("release");
    let (code, result, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    let receipt: serde_json::Value = serde_json::from_slice(
        &std::fs::read(destination.join("pysfx-receipt.json")).expect("receipt"),
    )
    .expect("JSON");
    assert_eq!(receipt["app_version"], "1.2.3+build.7");
    assert_eq!(receipt["manifest"]["app"]["version"], "1.2.3+build.7");

    // A version with control characters, or blank, or with blanks around it, is a usage
    // error.
    for version in ["1.0\x1b[2J", " ", "1.0 "] {
        let output = run(&mut pysfx_e2e::pack_command(
            &[
                OsStr::new("--app"),
                app.as_os_str(),
                OsStr::new("--app-version"),
                OsStr::new(version),
            ],
            &root.join("other.sfx"),
        ));
        assert_eq!(output.status.code(), Some(2), "{version:?}");
    }
}

#[test]
fn the_app_version_defaults_to_git_describe_in_a_work_tree() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    // Not in a work tree: no version, and --version names the app alone.
    let artifact = pack_app(root, &app, &[]);
    let value = json_of(&mut inspect(&artifact, true));
    assert!(value["app_version"].is_null(), "{value}");
    assert!(value["manifest"]["app"].get("version").is_none(), "{value}");
    let version = stdout_of(Command::new(&artifact).arg("--version"));
    assert!(version.ends_with("\napp demoapp\n"), "{version}");

    let git_in = |directory: &Path, args: &[&str]| {
        let output = run(Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .arg("-C")
            .arg(directory)
            .args(args));
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    // Another repository that the environment names (a git hook runs with GIT_DIR set): not
    // the app's version, with or without a work tree of its own.
    let other = root.join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    git_in(&other, &["init", "-q"]);
    git_in(&other, &["commit", "-q", "--allow-empty", "-m", "other"]);
    git_in(&other, &["tag", "other-1"]);
    let with_git_dir = |name: &str| {
        let artifact = root.join(name);
        let args = [
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ];
        let output = run(pack_command(&args, &artifact).env("GIT_DIR", other.join(".git")));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        json_of(&mut inspect(&artifact, true))["app_version"].clone()
    };
    assert!(with_git_dir("outside.sfx").is_null());
    let git = |args: &[&str]| git_in(&app, args);
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "first"]);
    git(&["tag", "-a", "v4.5", "-m", "release 4.5"]);
    let artifact = pack_app(root, &app, &[]);
    let value = json_of(&mut inspect(&artifact, true));
    assert_eq!(value["app_version"], "v4.5");
    assert_eq!(with_git_dir("inside.sfx"), "v4.5");
    std::fs::write(app.join("manage.py"), "changed\n").expect("write");
    let artifact = pack_app(root, &app, &[]);
    let value = json_of(&mut inspect(&artifact, true));
    assert_eq!(value["app_version"], "v4.5-dirty");
    // .git itself never reaches the payload.
    let listing = stdout_of(Command::new(&artifact).arg("--list"));
    assert!(!listing.contains(".git/"), "{listing}");
    // --app-version wins.
    let artifact = pack_app(root, &app, &["--app-version", "2024.06"]);
    assert_eq!(
        json_of(&mut inspect(&artifact, true))["app_version"],
        "2024.06"
    );
    // A work tree, but no git on PATH to read it: a warning saying so, not silence.
    let no_git = root.join("no-git-here");
    std::fs::create_dir_all(&no_git).expect("mkdir");
    let output = run(pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &root.join("no-git.sfx"),
    )
    .env("PATH", &no_git));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--app is in a git work tree") && stderr.contains("git cannot be run"),
        "{stderr}"
    );
    // A work tree git refuses to read (another user's, "dubious ownership", as in CI
    // containers): a warning quoting git, not silence.
    let chowned = run(Command::new("chown").args(["-R", "65534"]).arg(&app));
    let refused = run(Command::new("git")
        .arg("-C")
        .arg(&app)
        .args(["rev-parse", "HEAD"]));
    if chowned.status.success() && !refused.status.success() {
        let output = run(&mut pack_command(
            &[
                OsStr::new("--app"),
                app.as_os_str(),
                OsStr::new("--no-bootstrap"),
            ],
            &root.join("refused.sfx"),
        ));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains("git cannot tell the app's version"),
            "{stderr}"
        );
        assert!(stderr.contains("dubious ownership"), "{stderr}");
    }
}

#[test]
fn version_never_fails_for_the_payload() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let expected = format!("pysfx-stub {}\n", env!("CARGO_PKG_VERSION"));
    // The bare stub has no payload.
    let bare = root.join("pysfx-stub");
    std::fs::copy(&binaries().stub, &bare).expect("copy");
    assert_eq!(stdout_of(Command::new(&bare).arg("--version")), expected);
    let value = json_of(Command::new(&bare).args(["--version", "--json"]));
    assert_eq!(value["app"], serde_json::Value::Null, "{value}");
    // A truncated artifact has none either.
    let artifact = pack_app(root, &make_app(root, "demoapp"), &["--app-version", "9"]);
    let bytes = std::fs::read(&artifact).expect("read");
    let truncated = root.join("truncated.sfx");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).expect("write");
    let mut permissions = std::fs::metadata(&truncated).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&truncated, permissions).expect("chmod");
    assert_eq!(
        stdout_of(Command::new(&truncated).arg("--version")),
        expected
    );
}

/// The payload digest as the trailer records it (the zip comment).
fn trailer_digest(artifact: &Path) -> String {
    let bytes = std::fs::read(artifact).expect("read");
    let comment = String::from_utf8_lossy(&bytes[bytes.len() - 115..]).into_owned();
    comment
        .split_once(" sha256=")
        .expect("a trailer")
        .1
        .to_string()
}

#[test]
fn every_digest_is_named_for_what_it_is() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let artifact = pack_app(root, &make_app(root, "demoapp"), &[]);
    let file_sha256 = pysfx_format::hex(&sha2::Sha256::digest(
        std::fs::read(&artifact).expect("read"),
    ));
    let payload_sha256 = trailer_digest(&artifact);
    assert_ne!(file_sha256, payload_sha256);
    if let Ok(output) = Command::new("sha256sum").arg(&artifact).output() {
        assert!(String::from_utf8_lossy(&output.stdout).starts_with(&file_sha256));
    }
    let jsons = [
        json_of(&mut inspect(&artifact, true)),
        json_of(Command::new(&artifact).args(["--info", "--json"])),
        json_of(Command::new(&artifact).args(["--verify", "--json"])),
    ];
    for value in &jsons {
        assert_eq!(value["file_sha256"], file_sha256.as_str(), "{value}");
        assert_eq!(value["payload_sha256"], payload_sha256.as_str(), "{value}");
        assert!(value.get("sha256").is_none(), "no unnamed digest: {value}");
    }
    let texts = [
        stdout_of(&mut inspect(&artifact, false)),
        stdout_of(Command::new(&artifact).arg("--info")),
        stdout_of(Command::new(&artifact).arg("--verify")),
        stdout_of(Command::new(&binaries().pysfx).arg("verify").arg(&artifact)),
    ];
    for text in &texts {
        let file_named = text.contains(&format!("file sha256:    {file_sha256}"))
            || text.contains(&format!("file_sha256={file_sha256}"));
        let payload_named = text.contains(&format!("payload sha256: {payload_sha256}"))
            || text.contains(&format!("payload_sha256={payload_sha256}"));
        assert!(file_named && payload_named, "{text}");
        assert!(!text.contains(" sha256="), "no unnamed digest: {text}");
    }
}

#[test]
fn info_and_inspect_refuse_a_corrupt_payload_and_a_missing_file_is_not_corrupt() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let artifact = pack_app(root, &make_app(root, "demoapp"), &[]);
    // One byte of an app file's data flipped: the manifest still reads, the digest fails.
    let offset = {
        let file = std::fs::File::open(&artifact).expect("open");
        let mut archive = zip::ZipArchive::new(file).expect("zip");
        let entry = archive.by_name("demoapp/manage.py").expect("entry");
        entry.data_start().expect("data offset")
    };
    let mut bytes = std::fs::read(&artifact).expect("read");
    bytes[offset as usize] ^= 0x55;
    let corrupt = root.join("corrupt.sfx");
    std::fs::write(&corrupt, &bytes).expect("write");
    let mut permissions = std::fs::metadata(&corrupt).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&corrupt, permissions).expect("chmod");
    for args in [vec!["--info"], vec!["--info", "--json"]] {
        let output = run(Command::new(&corrupt).args(&args));
        assert_eq!(output.status.code(), Some(3), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("digest mismatch"), "{args:?}: {stderr}");
    }
    let output = run(&mut inspect(&corrupt, false));
    assert_eq!(output.status.code(), Some(3));

    let missing = root.join("missing.sfx");
    for command in ["inspect", "verify"] {
        let output = run(Command::new(&binaries().pysfx).arg(command).arg(&missing));
        assert_eq!(output.status.code(), Some(4), "{command} of a missing file");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("missing.sfx"), "{stderr}");
    }
    // Not an artifact at all is corrupt, as before.
    let output = run(Command::new(&binaries().pysfx)
        .arg("inspect")
        .arg(root.join("demoapp/manage.py")));
    assert_eq!(output.status.code(), Some(3));
}
