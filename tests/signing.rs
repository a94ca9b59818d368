//! SPEC "Supply chain", signatures: `pysfx keygen`, `pack --sign` and `verify --pubkey`, held to
//! Debian's stock `minisign` both ways — it accepts pysfx's signatures and pysfx accepts its —
//! and every tampering refused by both: a flipped byte anywhere, a swapped `.minisig`, a wrong
//! key; a trusted comment from another artifact is refused by pysfx.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pysfx_e2e::tools::minisign;
use pysfx_e2e::{binaries, make_app, pack_command, run, tiny_wheel};

const PASSWORD: &str = "correct horse battery staple";

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `pysfx pack --app APP --no-bootstrap --sign KEY -o OUT`, to run.
fn signed_pack(app: &Path, key: &Path, out: &Path) -> Command {
    pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
            OsStr::new("--sign"),
            key.as_os_str(),
        ],
        out,
    )
}

/// `pysfx keygen -o DIR/NAME` with `PYSFX_SIGN_PASSWORD` (or `--unencrypted` when `None`).
fn keygen(directory: &Path, name: &str, password: Option<&str>) -> (PathBuf, PathBuf) {
    let mut command = Command::new(&binaries().pysfx);
    command.arg("keygen").arg("-o").arg(directory.join(name));
    match password {
        Some(password) => command.env("PYSFX_SIGN_PASSWORD", password),
        None => command.arg("--unencrypted"),
    };
    let output = run(&mut command);
    assert!(output.status.success(), "keygen: {}", text(&output));
    if let Some(password) = password {
        assert!(
            !text(&output).contains(password),
            "keygen printed the password"
        );
    }
    (
        directory.join(format!("{name}.key")),
        directory.join(format!("{name}.pub")),
    )
}

/// An app `demoapp` at `version` with one tiny wheel, packed into `DIR/NAME`, signed with `key`
/// when given (its password in `PYSFX_SIGN_PASSWORD`).
fn artifact(directory: &Path, name: &str, version: &str, key: Option<&Path>) -> PathBuf {
    let root = directory.join(format!("{name}.in"));
    let app = make_app(&root, "demoapp");
    let wheels = root.join("wheels");
    tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let mut args = vec![
        OsStr::new("--app"),
        app.as_os_str(),
        OsStr::new("--app-version"),
        OsStr::new(version),
        OsStr::new("--wheels"),
        wheels.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    if let Some(key) = key {
        args.extend([OsStr::new("--sign"), key.as_os_str()]);
    }
    let output_path = directory.join(name);
    let output = run(pack_command(&args, &output_path).env("PYSFX_SIGN_PASSWORD", PASSWORD));
    assert!(output.status.success(), "pack: {}", text(&output));
    assert!(
        !text(&output).contains(PASSWORD),
        "pack printed the password"
    );
    output_path
}

fn signature_of(artifact: &Path) -> PathBuf {
    PathBuf::from(format!("{}.minisig", artifact.display()))
}

fn pysfx_verify(artifact: &Path, keys: &[&Path], signature: Option<&Path>) -> Output {
    let mut command = Command::new(&binaries().pysfx);
    command.arg("verify").arg(artifact);
    for key in keys {
        command.arg("--pubkey").arg(key);
    }
    if let Some(signature) = signature {
        command.arg("--signature").arg(signature);
    }
    run(&mut command)
}

fn minisign_verify(artifact: &Path, public_key: &Path) -> Output {
    run(Command::new(minisign())
        .arg("-Vm")
        .arg(artifact)
        .arg("-p")
        .arg(public_key))
}

/// `minisign -S` with the password typed on its standard input (empty for an unencrypted key).
fn minisign_sign(artifact: &Path, secret_key: &Path, trusted_comment: &str, password: &str) {
    let mut child = Command::new(minisign())
        .arg("-S")
        .arg("-s")
        .arg(secret_key)
        .arg("-m")
        .arg(artifact)
        .arg("-t")
        .arg(trusted_comment)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run minisign -S");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write the password");
    let output = child.wait_with_output().expect("minisign -S");
    assert!(output.status.success(), "minisign -S: {}", text(&output));
}

fn payload_digest(artifact: &Path) -> String {
    let output = run(Command::new(&binaries().pysfx)
        .args(["inspect", "--json"])
        .arg(artifact));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("inspect JSON");
    value["payload_sha256"]
        .as_str()
        .expect("payload_sha256")
        .to_string()
}

/// The key ID a public key file's comment names (`minisign public key: 0123…`).
fn key_id(public_key: &Path) -> String {
    let text = std::fs::read_to_string(public_key).expect("read the public key");
    let first = text.lines().next().expect("a comment line");
    first.rsplit(' ').next().expect("an ID").to_string()
}

#[test]
fn a_signed_artifact_verifies_with_stock_minisign_and_with_pysfx() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (secret, public) = keygen(root, "release", Some(PASSWORD));
    let mode = std::fs::metadata(&secret)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the secret key's mode");
    let key_text = std::fs::read_to_string(&secret).expect("read the key");
    assert!(key_text.contains("encrypted") && !key_text.contains(PASSWORD));

    let site = artifact(root, "site.sfx", "2.0", Some(&secret));
    let signature = std::fs::read_to_string(signature_of(&site)).expect("site.sfx.minisig");
    let digest = payload_digest(&site);
    let comment = format!("app:demoapp\tversion:2.0\tpayload_sha256:{digest}");
    assert!(
        signature.contains(&format!("\ntrusted comment: {comment}\n")),
        "{signature}"
    );

    let output = minisign_verify(&site, &public);
    assert!(output.status.success(), "minisign -V: {}", text(&output));
    assert!(text(&output).contains(&format!("Trusted comment: {comment}")));

    let output = pysfx_verify(&site, &[&public], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let line = String::from_utf8_lossy(&output.stdout);
    assert!(
        line.contains(&format!("signed_by={}", key_id(&public))),
        "{line}"
    );
    // Without --pubkey, verify checks the contents only, as before.
    let output = pysfx_verify(&site, &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("signed_by"));
}

#[test]
fn signatures_and_keys_of_stock_minisign_work_with_pysfx() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    // minisign -S with a key from pysfx keygen, the trusted comment pysfx writes.
    let (secret, public) = keygen(root, "release", Some(PASSWORD));
    let site = artifact(root, "site.sfx", "3.1", None);
    assert!(!signature_of(&site).exists());
    let comment = format!(
        "app:demoapp\tversion:3.1\tpayload_sha256:{}",
        payload_digest(&site)
    );
    minisign_sign(&site, &secret, &comment, PASSWORD);
    let output = pysfx_verify(&site, &[&public], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // A legacy signature (`minisign -S -l`, not prehashed) is refused as such.
    let legacy = root.join("legacy.minisig");
    let mut child = Command::new(minisign())
        .args(["-S", "-l", "-s"])
        .arg(&secret)
        .arg("-m")
        .arg(&site)
        .arg("-x")
        .arg(&legacy)
        .arg("-t")
        .arg(&comment)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run minisign -S -l");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("write the password");
    let output = child.wait_with_output().expect("minisign -S -l");
    assert!(output.status.success(), "minisign -S -l: {}", text(&output));
    let output = pysfx_verify(&site, &[&public], Some(&legacy));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).contains("legacy minisign signature"),
        "{}",
        text(&output)
    );

    // pack --sign with a key pair from minisign -G (unencrypted, -W).
    let stock_secret = root.join("stock.key");
    let stock_public = root.join("stock.pub");
    let output = run(Command::new(minisign())
        .args(["-G", "-W", "-p"])
        .arg(&stock_public)
        .arg("-s")
        .arg(&stock_secret));
    assert!(output.status.success(), "minisign -G: {}", text(&output));
    let other = artifact(root, "other.sfx", "3.2", Some(&stock_secret));
    let output = minisign_verify(&other, &stock_public);
    assert!(output.status.success(), "minisign -V: {}", text(&output));
    let output = pysfx_verify(&other, &[&stock_public], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// Copies `artifact` and its signature into `directory`, flipping the byte at `offset` (from
/// the end when negative) of the copy.
fn flipped_copy(artifact: &Path, directory: &Path, offset: i64) -> PathBuf {
    std::fs::create_dir_all(directory).expect("mkdir");
    let copy = directory.join("site.sfx");
    let mut bytes = std::fs::read(artifact).expect("read");
    let index = if offset < 0 {
        bytes.len() - offset.unsigned_abs() as usize
    } else {
        offset as usize
    };
    bytes[index] ^= 0x01;
    std::fs::write(&copy, &bytes).expect("write");
    std::fs::copy(signature_of(artifact), signature_of(&copy)).expect("copy the signature");
    copy
}

/// Where the data of the payload entry `name` starts in the artifact.
fn entry_offset(artifact: &Path, name_part: &str) -> i64 {
    let file = std::fs::File::open(artifact).expect("open");
    let mut archive = zip::ZipArchive::new(file).expect("zip");
    let names: Vec<String> = archive
        .file_names()
        .map(|name| name.expect("an entry name").into_owned())
        .collect();
    let name = names
        .iter()
        .find(|name| name.contains(name_part))
        .unwrap_or_else(|| panic!("no entry with {name_part}: {names:?}"));
    let entry = archive.by_name(name).expect("entry");
    entry.data_start().expect("data offset") as i64 + 10
}

#[test]
fn a_flipped_byte_anywhere_fails_both_verifiers() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (secret, public) = keygen(root, "release", Some(PASSWORD));
    let site = artifact(root, "site.sfx", "1.0", Some(&secret));
    let places = [
        ("the stub", 1000),
        ("a wheel", entry_offset(&site, "tinylib")),
        ("an app file", entry_offset(&site, "manage.py")),
        ("the trailer", -1),
    ];
    for (index, (place, offset)) in places.into_iter().enumerate() {
        let copy = flipped_copy(&site, &root.join(format!("flipped-{index}")), offset);
        let output = minisign_verify(&copy, &public);
        assert!(
            !output.status.success(),
            "minisign accepted a flipped byte in {place}"
        );
        let output = pysfx_verify(&copy, &[&public], None);
        assert_eq!(
            output.status.code(),
            Some(3),
            "pysfx verify, a flipped byte in {place}: {}",
            text(&output)
        );
        if place == "the stub" {
            // The signature is checked first, and covers the stub; without a key, the stub's
            // digest in the manifest (which the payload digest covers) finds it too.
            assert!(
                text(&output).contains("does not match"),
                "{}",
                text(&output)
            );
            let output = pysfx_verify(&copy, &[], None);
            assert_eq!(output.status.code(), Some(3), "{}", text(&output));
            assert!(text(&output).contains("the stub"), "{}", text(&output));
        }
    }
}

#[test]
fn a_swapped_signature_a_wrong_key_and_a_missing_signature_are_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (secret, public) = keygen(root, "release", Some(PASSWORD));
    let (_, other_public) = keygen(root, "other", None);
    let old = artifact(root, "old.sfx", "1.0", Some(&secret));
    let new = artifact(root, "new.sfx", "1.1", Some(&secret));

    // The old artifact's signature beside the new artifact.
    let swapped = signature_of(&old);
    let output = run(Command::new(minisign())
        .arg("-Vm")
        .arg(&new)
        .arg("-x")
        .arg(&swapped)
        .arg("-p")
        .arg(&public));
    assert!(
        !output.status.success(),
        "minisign took a swapped signature"
    );
    let output = pysfx_verify(&new, &[&public], Some(&swapped));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).contains("does not match"),
        "{}",
        text(&output)
    );

    // Another key.
    let output = minisign_verify(&new, &other_public);
    assert!(!output.status.success(), "minisign took the wrong key");
    let output = pysfx_verify(&new, &[&other_public], None);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).contains(&key_id(&public)) && text(&output).contains(&key_id(&other_public)),
        "the refusal names both key IDs: {}",
        text(&output)
    );
    // Key rotation: the key the signature names is used, among several.
    let output = pysfx_verify(&new, &[&other_public, &public], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // A key made to carry the same key ID (anyone can: the ID is not the key) does not
    // shadow the real one, in either order; alone, it does not verify.
    let key_text = std::fs::read_to_string(&public).expect("read the public key");
    let other_text = std::fs::read_to_string(&other_public).expect("read the other key");
    let decode = |text: &str| {
        let encoded = text.lines().nth(1).expect("the key line");
        STANDARD.decode(encoded.trim()).expect("base64")
    };
    let mut same_id = decode(&key_text);
    same_id[10..].copy_from_slice(&decode(&other_text)[10..]);
    let comment = key_text.lines().next().expect("the comment line");
    let impostor = root.join("impostor.pub");
    std::fs::write(
        &impostor,
        format!("{comment}\n{}\n", STANDARD.encode(&same_id)),
    )
    .expect("write");
    for keys in [[impostor.as_path(), &public], [&public, impostor.as_path()]] {
        let output = pysfx_verify(&new, &keys, None);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }
    let output = pysfx_verify(&new, &[&impostor], None);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).contains("does not match"),
        "{}",
        text(&output)
    );

    // No signature at all.
    std::fs::remove_file(signature_of(&new)).expect("remove");
    let output = pysfx_verify(&new, &[&public], None);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("no signature"), "{}", text(&output));

    // A --pubkey that is no public key is a usage error.
    let output = pysfx_verify(&old, &[&secret], None);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("not a minisign public key"),
        "{}",
        text(&output)
    );
    // Nor is a key whose algorithm is not minisign's Ed25519, though its key ID matches.
    let key_text = std::fs::read_to_string(&public).expect("read the public key");
    let (comment, encoded) = key_text.split_once('\n').expect("two lines");
    let mut bytes = STANDARD.decode(encoded.trim()).expect("base64");
    bytes[..2].copy_from_slice(b"XX");
    let forged = root.join("forged.pub");
    std::fs::write(&forged, format!("{comment}\n{}\n", STANDARD.encode(&bytes))).expect("write");
    let output = pysfx_verify(&old, &[&forged], None);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("not a minisign public key (its algorithm is not Ed25519"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_trusted_comment_from_another_artifact_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (secret, public) = keygen(root, "release", Some(PASSWORD));
    let old = artifact(root, "old.sfx", "1.0", Some(&secret));
    let new = artifact(root, "new.sfx", "2.0", None);
    // The key holder signs the new file with the old one's trusted comment: the signature is
    // good (minisign cannot know better), the comment does not describe the file.
    let old_signature = std::fs::read_to_string(signature_of(&old)).expect("read");
    let old_comment = old_signature
        .lines()
        .find_map(|line| line.strip_prefix("trusted comment: "))
        .expect("a trusted comment")
        .to_string();
    minisign_sign(&new, &secret, &old_comment, PASSWORD);
    let output = minisign_verify(&new, &public);
    assert!(output.status.success(), "{}", text(&output));
    let output = pysfx_verify(&new, &[&public], None);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).contains("does not describe")
            && text(&output).contains("it is for version \"1.0\", the artifact is version \"2.0\""),
        "{}",
        text(&output)
    );
    // minisign's own default comment is no pysfx comment either.
    minisign_sign(&new, &secret, "timestamp:1\tfile:new.sfx\thashed", PASSWORD);
    let output = pysfx_verify(&new, &[&public], None);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("not a pysfx signature"));
}

/// `-o release.key` (or `.pub`) names the pair `release`, as the files `--sign` and
/// `--pubkey` then take: not `release.key.key` and `release.key.pub`.
#[test]
fn keygen_takes_the_pair_by_either_file_name() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    for (given, stem) in [("release.key", "release"), ("backup.pub", "backup")] {
        let output = run(Command::new(&binaries().pysfx)
            .args(["keygen", "--unencrypted", "-o"])
            .arg(root.join(given)));
        assert!(output.status.success(), "{given}: {}", text(&output));
        for extension in ["key", "pub"] {
            assert!(
                root.join(format!("{stem}.{extension}")).is_file(),
                "{given}"
            );
            assert!(
                !root.join(format!("{given}.{extension}")).exists(),
                "{given}"
            );
        }
    }
}

#[test]
fn keys_are_never_replaced_and_passwords_are_asked_for_not_guessed() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    // No PYSFX_SIGN_PASSWORD and no terminal: a usage error, nothing written.
    let output = run(Command::new(&binaries().pysfx)
        .arg("keygen")
        .arg("-o")
        .arg(root.join("k"))
        .env_remove("PYSFX_SIGN_PASSWORD"));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("PYSFX_SIGN_PASSWORD"));
    assert!(!root.join("k.key").exists() && !root.join("k.pub").exists());
    // An empty password protects nothing: a usage error too.
    let output = run(Command::new(&binaries().pysfx)
        .arg("keygen")
        .arg("-o")
        .arg(root.join("k"))
        .env("PYSFX_SIGN_PASSWORD", ""));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("empty password"),
        "{}",
        text(&output)
    );
    assert!(!root.join("k.key").exists() && !root.join("k.pub").exists());

    let (secret, _) = keygen(root, "k", Some(PASSWORD));
    let before = std::fs::read(&secret).expect("read");
    let output = run(Command::new(&binaries().pysfx)
        .args(["keygen", "--unencrypted", "-o"])
        .arg(root.join("k")));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("already exists"),
        "{}",
        text(&output)
    );
    assert_eq!(std::fs::read(&secret).expect("read"), before);

    // A wrong password fails the pack before anything is written.
    let app = make_app(root, "demoapp");
    let out = root.join("site.sfx");
    let output =
        run(signed_pack(&app, &secret, &out).env("PYSFX_SIGN_PASSWORD", "not the password"));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("wrong password"),
        "{}",
        text(&output)
    );
    assert!(!text(&output).contains("not the password"));
    assert!(!out.exists() && !signature_of(&out).exists());

    // An unencrypted key needs no password.
    let (plain, plain_public) = keygen(root, "ci", None);
    assert!(std::fs::read_to_string(&plain)
        .expect("read")
        .contains("unencrypted"));
    let output = run(signed_pack(&app, &plain, &out).env_remove("PYSFX_SIGN_PASSWORD"));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = minisign_verify(&out, &plain_public);
    assert!(output.status.success(), "{}", text(&output));

    // The public key given to --sign: named as such.
    let output = run(signed_pack(&app, &plain_public, &out).env_remove("PYSFX_SIGN_PASSWORD"));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("it is a public key"),
        "{}",
        text(&output)
    );

    // The key as -o: a usage error, the key untouched.
    let key = std::fs::read(&plain).expect("read");
    {
        let output = &plain;
        let result = run(signed_pack(&app, &plain, output).env_remove("PYSFX_SIGN_PASSWORD"));
        assert_eq!(result.status.code(), Some(2), "{}", text(&result));
        assert!(text(&result).contains("--sign input"), "{}", text(&result));
        assert_eq!(std::fs::read(&plain).expect("read"), key);
    }
    // A signature that cannot be written is refused before the artifact is written.
    std::fs::create_dir(root.join("d.sfx.minisig")).expect("mkdir");
    let result =
        run(signed_pack(&app, &plain, &root.join("d.sfx")).env_remove("PYSFX_SIGN_PASSWORD"));
    assert_eq!(result.status.code(), Some(2), "{}", text(&result));
    assert!(!root.join("d.sfx").exists());
}

/// OUT that the packer may not replace (root's, in a sticky directory, packed by another
/// user) fails the signed pack, and leaves the old pair as it was: the new signature is not
/// left beside the old artifact.
#[test]
fn a_pack_that_cannot_replace_out_leaves_the_old_pair() {
    if pysfx_e2e::nobody_python().is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (secret, public) = keygen(root, "release", None);
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let app = make_app(root, "demoapp");
    let shared = root.join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let out = shared.join("site.sfx");
    let output = run(&mut signed_pack(&app, &secret, &out));
    assert!(output.status.success(), "{}", text(&output));
    // The signature is the deploy user's; the artifact stays root's.
    std::os::unix::fs::chown(signature_of(&out), Some(65534), Some(65534)).expect("chown");
    let before = (
        std::fs::read(&out).expect("read"),
        std::fs::read(signature_of(&out)).expect("read"),
    );
    let pack = pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--app-version"),
            OsStr::new("2.0"),
            OsStr::new("--no-bootstrap"),
            OsStr::new("--sign"),
            secret.as_os_str(),
        ],
        &out,
    );
    let output = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(pack.get_program())
        .args(pack.get_args()));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("cannot write"), "{}", text(&output));
    let after = (
        std::fs::read(&out).expect("read"),
        std::fs::read(signature_of(&out)).expect("read"),
    );
    assert!(after == before, "the pair changed");
    let output = pysfx_verify(&out, &[&public], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let litter: Vec<_> = std::fs::read_dir(&shared)
        .expect("list")
        .flatten()
        .map(|entry| entry.file_name())
        .filter(|name| name.to_string_lossy().starts_with('.'))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
}

/// A pack without `--sign` warns of a signature an earlier pack left beside OUT only when that
/// signature no longer signs OUT: a pack of the same inputs writes the same bytes, which the
/// old signature still signs (stock minisign says so too).
#[test]
fn an_unsigned_repack_warns_of_the_old_signature_only_when_out_changed() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (secret, public) = keygen(root, "release", None);
    let app = make_app(root, "demoapp");
    let out = root.join("site.sfx");
    let output = run(&mut signed_pack(&app, &secret, &out));
    assert!(output.status.success(), "{}", text(&output));
    let unsigned = |version: Option<&str>| {
        let mut args = vec![
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ];
        if let Some(version) = version {
            args.extend([OsStr::new("--app-version"), OsStr::new(version)]);
        }
        run(&mut pack_command(&args, &out))
    };
    let before = std::fs::read(&out).expect("read");
    let output = unsigned(None);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        std::fs::read(&out).expect("read"),
        before,
        "not reproducible"
    );
    assert!(
        !text(&output).contains("does not sign"),
        "{}",
        text(&output)
    );
    assert_eq!(pysfx_verify(&out, &[&public], None).status.code(), Some(0));
    let output = unsigned(Some("9.9"));
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("does not sign"), "{}", text(&output));
    assert_ne!(pysfx_verify(&out, &[&public], None).status.code(), Some(0));
}

/// The secret key must never ship: `--sign KEY` where KEY is one of the files the pack would
/// store — in the app under any name, or reached through a link from a `--static` directory —
/// is a usage error (exit 2) naming where it would go, and nothing is written. The same key
/// outside the app signs.
#[test]
fn a_signing_key_inside_the_app_or_a_static_directory_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (secret, _) = keygen(root, "release", None);
    let app = make_app(root, "demoapp");
    let hidden = app.join("conf/signing");
    std::fs::create_dir_all(hidden.parent().expect("parent")).expect("mkdir");
    std::fs::copy(&secret, &hidden).expect("copy the key into the app");
    let out = root.join("site.sfx");
    let output = run(&mut signed_pack(&app, &hidden, &out));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("demoapp/conf/signing") && text(&output).contains("secret key"),
        "{}",
        text(&output)
    );
    assert!(!out.exists() && !signature_of(&out).exists());
    std::fs::remove_file(&hidden).expect("rm");

    let static_dir = root.join("static");
    std::fs::create_dir_all(&static_dir).expect("mkdir");
    std::fs::hard_link(&secret, static_dir.join("robots.txt")).expect("link");
    let mut command = signed_pack(&app, &secret, &out);
    command.arg("--static").arg(&static_dir);
    let output = run(&mut command);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("static.in/0/robots.txt"),
        "{}",
        text(&output)
    );
    assert!(!out.exists());
    std::fs::remove_file(static_dir.join("robots.txt")).expect("rm");

    // A copy of its bytes by another name is the key as much, and so is its secret line
    // with other line endings, or pasted into a settings file.
    let key_text = std::fs::read_to_string(&secret).expect("read the key");
    let secret_line = key_text.lines().nth(1).expect("the secret line");
    for (name, content) in [
        ("signing.txt", key_text.clone()),
        ("signing.crlf", key_text.replace('\n', "\r\n")),
        (
            "local_settings.py",
            format!("X = 1\nKEY = '{secret_line}'\n"),
        ),
    ] {
        std::fs::write(app.join(name), content).expect("a copy of the key");
        let output = run(&mut signed_pack(&app, &secret, &out));
        assert_eq!(output.status.code(), Some(2), "{name}: {}", text(&output));
        assert!(
            text(&output).contains(&format!("demoapp/{name}")),
            "{}",
            text(&output)
        );
        assert!(!out.exists());
        std::fs::remove_file(app.join(name)).expect("rm");
    }

    let output = run(&mut signed_pack(&app, &secret, &out));
    assert!(output.status.success(), "{}", text(&output));
    assert!(out.exists() && signature_of(&out).exists());
}

/// A signature or a public key that is a FIFO is refused at once (exit 3 for the signature,
/// 2 for the key, as for any unreadable one), never waited on: a deploy controller's play
/// fails instead of stalling.
#[test]
fn a_fifo_for_the_signature_or_the_key_is_refused_without_waiting() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (secret, public) = keygen(root, "release", None);
    let signed = artifact(root, "site.sfx", "1.0", Some(&secret));
    let fifo = root.join("fifo");
    let made = run(Command::new("mkfifo").arg(&fifo));
    assert!(made.status.success(), "mkfifo: {}", text(&made));
    let verify = |key: &Path, signature: &Path| {
        run(Command::new("timeout")
            .arg("60")
            .arg(&binaries().pysfx)
            .arg("verify")
            .arg(&signed)
            .arg("--pubkey")
            .arg(key)
            .arg("--signature")
            .arg(signature))
    };
    let output = verify(&public, &fifo);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).contains("not a regular file"),
        "{}",
        text(&output)
    );
    let output = verify(&fifo, &signature_of(&signed));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("not a regular file"),
        "{}",
        text(&output)
    );
    let output = verify(&public, &signature_of(&signed));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// Two packs to one OUT put their artifact and signature in place one pack after the other,
/// never interleaved (OUT from one, OUT.minisig from the other): each holds a lock on OUT's
/// directory while it does. Seen from outside, a pack whose artifact is written waits while
/// another holds that lock, and then puts a pair in place that verifies.
#[test]
fn a_pack_puts_its_pair_in_place_only_when_no_other_pack_is() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let (secret, public) = keygen(root, "release", None);
    let app = make_app(root, "demoapp");
    let out_directory = root.join("out");
    std::fs::create_dir(&out_directory).expect("mkdir");
    let out = out_directory.join("site.sfx");
    // A process of its own holds the lock, and says so once it does.
    let mut holder = Command::new(pysfx_e2e::host_python())
        .args([
            "-c",
            "import fcntl, os, sys, time\n\
             fd = os.open(sys.argv[1], os.O_RDONLY)\n\
             fcntl.flock(fd, fcntl.LOCK_EX)\n\
             print('held', flush=True)\n\
             time.sleep(600)",
        ])
        .arg(&out_directory)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the lock's holder");
    let mut said = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().expect("stdout")),
        &mut said,
    )
    .expect("read");
    assert_eq!(said.trim(), "held");
    let mut pack = signed_pack(&app, &secret, &out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("pack");
    let staged = format!(".site.sfx.pysfx-tmp-{}", pack.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !out_directory.join(&staged).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pack wrote nothing"
        );
        assert!(pack.try_wait().expect("wait").is_none(), "the pack ended");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        pack.try_wait().expect("wait").is_none(),
        "the pack did not wait"
    );
    assert!(!out.exists() && !signature_of(&out).exists());
    holder.kill().expect("kill the lock's holder");
    holder.wait().expect("wait");
    let output = pack.wait_with_output().expect("pack");
    assert!(output.status.success(), "{}", text(&output));
    // The operator sees what the pack waited for.
    assert!(
        text(&output).contains(&format!(
            "waiting for the lock on {}",
            out_directory.display()
        )),
        "{}",
        text(&output)
    );
    let output = pysfx_verify(&out, &[&public], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}
