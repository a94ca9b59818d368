//! minisign signatures of artifacts (SPEC: "Supply chain"): `pysfx keygen`, `pack --sign` and
//! `verify --pubkey`.
//!
//! The files are minisign's own, so stock `minisign -Vm site.sfx -p KEY.pub` checks what pysfx
//! signs, and `pysfx verify` checks what `minisign -S` signs. The signature covers the whole
//! artifact file (pre-hashed with BLAKE2b-512, minisign's default); its trusted comment — signed
//! too — names the app, its version and the payload digest, so a validly signed older artifact
//! cannot pass for a newer one:
//!
//! ```text
//! trusted comment: app:mysite<TAB>version:1.4.0<TAB>payload_sha256:<64 hex>
//! ```
//!
//! Fields are tab-separated `key:value` pairs, as minisign's own default comment is; `version`
//! is left out when the artifact records none. Neither an app name nor an app version can hold
//! a tab (both refuse control characters).

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use minisign::{PublicKey, PublicKeyBox, SecretKey, SecretKeyBox, SignatureBox};
use pysfx_format::{escape_control, Manifest};
use tracing::info;

use crate::UsageError;

/// The environment variable holding the secret key's password, for `keygen` and `pack --sign`
/// where no one types it.
pub const PASSWORD_VARIABLE: &str = "PYSFX_SIGN_PASSWORD";

/// Key files and signatures are a few hundred bytes; anything much larger is not one.
const KEY_FILE_LIMIT: u64 = 64 * 1024;

/// A key ID as minisign prints it: the 8 bytes of the key number, little-endian, as 16
/// upper-case hex digits.
fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    let len = keynum.len().min(8);
    bytes[..len].copy_from_slice(&keynum[..len]);
    format!("{:016X}", u64::from_le_bytes(bytes))
}

/// Reads a small text file (a key or a signature), bounded. Opened without waiting (a FIFO
/// would block the open and the read for ever) and read only when it is a regular file.
fn read_small(path: &Path, what: &str) -> Result<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    let regular = file.metadata().is_ok_and(|metadata| metadata.is_file());
    if !regular {
        bail!(
            "cannot read the {what} {}: not a regular file",
            path.display()
        );
    }
    let mut text = String::new();
    file.take(KEY_FILE_LIMIT)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    Ok(text)
}

/// The password: `PYSFX_SIGN_PASSWORD`, else typed on the terminal (twice when `confirm`),
/// else an error saying how to give one. Never logged.
fn password(purpose: &str, confirm: bool) -> Result<String> {
    if let Some(value) = std::env::var_os(PASSWORD_VARIABLE) {
        return value
            .into_string()
            .map_err(|_| UsageError(format!("{PASSWORD_VARIABLE} is not valid UTF-8")).into());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "{purpose} needs a password: set {PASSWORD_VARIABLE}, or run on a terminal to type it"
        ))
        .into());
    }
    let first = rpassword::prompt_password(format!("Password for {purpose}: "))
        .context("cannot read the password from the terminal")?;
    if confirm {
        let second = rpassword::prompt_password("The same password again: ")
            .context("cannot read the password from the terminal")?;
        if first != second {
            bail!("the two passwords differ; nothing was written");
        }
    }
    Ok(first)
}

/// `pysfx keygen -o NAME`: writes `NAME.key` (mode 0600, encrypted with a password unless
/// `unencrypted`) and `NAME.pub`. Refuses to replace either file.
pub fn keygen(name: &Path, unencrypted: bool) -> Result<()> {
    check_key_name(name)?;
    let file_name = name
        .file_name()
        .ok_or_else(|| anyhow!("-o {}: not a file name", name.display()))?
        .to_string_lossy()
        .into_owned();
    // `-o release.key` (or `.pub`) names the pair `release`, not `release.key.key`.
    let file_name = match file_name.rsplit_once('.') {
        Some((stem, "key" | "pub")) if !stem.is_empty() => stem.to_string(),
        _ => file_name,
    };
    let secret_path = name.with_file_name(format!("{file_name}.key"));
    let public_path = name.with_file_name(format!("{file_name}.pub"));
    for path in [&secret_path, &public_path] {
        if path.symlink_metadata().is_ok() {
            bail!(
                "{} already exists; keygen never replaces a key (remove it, or choose another -o)",
                path.display()
            );
        }
    }
    let pair = if unencrypted {
        minisign::KeyPair::generate_unencrypted_keypair()
    } else {
        let password = password(&format!("the new key {}", secret_path.display()), true)?;
        if password.is_empty() {
            return Err(UsageError(
                "an empty password does not protect the key; give one, or pass --unencrypted \
                 for a key kept in a secrets store; nothing was written"
                    .to_owned(),
            )
            .into());
        }
        minisign::KeyPair::generate_encrypted_keypair(Some(password))
    }
    .map_err(|error| anyhow!("cannot make a key pair: {error}"))?;
    let id = key_id(pair.pk.keynum());
    let comment = if unencrypted {
        format!("pysfx secret key {id}, unencrypted")
    } else {
        format!("pysfx secret key {id}, encrypted")
    };
    let secret = pair
        .sk
        .to_box(Some(&comment))
        .map_err(|error| anyhow!("cannot encode the secret key: {error}"))?;
    let public = pair
        .pk
        .to_box()
        .map_err(|error| anyhow!("cannot encode the public key: {error}"))?;
    // Both files or neither, as far as a signal goes: it waits for the two writes (and then
    // says they were made), or comes first and nothing is written.
    crate::interrupt::commit(&public_path, || {
        write_new(&secret_path, secret.to_string().as_bytes(), 0o600)?;
        if let Err(error) = write_new(&public_path, public.to_string().as_bytes(), 0o644) {
            let _ = std::fs::remove_file(&secret_path);
            return Err(error);
        }
        Ok(())
    })?;
    info!(
        "wrote {} (the secret key{}; keep it out of the repository) and {} (key ID {id})",
        secret_path.display(),
        if unencrypted { ", unencrypted" } else { "" },
        public_path.display()
    );
    Ok(())
}

/// `-o` names the keys, not a directory to put them in: `-o keys/` would otherwise write
/// `keys.key` and `keys.pub` beside the directory (`Path` drops a trailing `/`), where no one
/// looks for them. Exit 2, as any usage error.
fn check_key_name(name: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if name.as_os_str().as_bytes().ends_with(b"/") || name.is_dir() {
        return Err(UsageError(format!(
            "-o {} names a directory; -o is the keys' name (writes NAME.key and NAME.pub), \
             e.g. -o {}",
            name.display(),
            name.join("release").display()
        ))
        .into());
    }
    Ok(())
}

/// Creates `path` (never replacing anything) with `bytes` and `mode`.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A secret key, decrypted, ready to sign.
pub struct SigningKey {
    secret: SecretKey,
    public: PublicKey,
    pub(crate) id: String,
}

/// Reads and decrypts the secret key at `path` (`pack --sign`), before anything is packed: a
/// wrong password fails the pack at once.
pub fn load_secret_key(path: &Path) -> Result<SigningKey> {
    let text = read_small(path, "secret key (--sign)")?;
    let not_a_key = |reason: &str| {
        anyhow!(
            "--sign {}: not a minisign secret key ({reason})",
            path.display()
        )
    };
    let encoded = text
        .lines()
        .nth(1)
        .ok_or_else(|| not_a_key("no key line"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| not_a_key("its key line is not base64"))?;
    // A public key: algorithm (2 bytes), key number (8), key (32).
    if bytes.len() == 42 {
        return Err(not_a_key(
            "it is a public key: --sign takes the secret key, NAME.key",
        ));
    }
    // Signature algorithm (2 bytes), then the key derivation: "Sc" (scrypt) or none.
    let encrypted = match bytes.get(2..4) {
        Some(b"Sc") => true,
        Some([0, 0]) => false,
        _ => return Err(not_a_key("unknown key derivation")),
    };
    let key_box =
        SecretKeyBox::from_string(&text).map_err(|error| not_a_key(&error.to_string()))?;
    let secret = if encrypted {
        let password = password(&format!("the secret key {}", path.display()), false)?;
        SecretKey::from_box(key_box, Some(password)).map_err(|error| {
            if error.to_string().contains("Wrong password") {
                anyhow!(
                    "--sign {}: wrong password (from {})",
                    path.display(),
                    if std::env::var_os(PASSWORD_VARIABLE).is_some() {
                        PASSWORD_VARIABLE
                    } else {
                        "the terminal"
                    }
                )
            } else {
                not_a_key(&error.to_string())
            }
        })?
    } else {
        // The last 32 bytes are a BLAKE2b checksum of the key, which stock `minisign -G -W`
        // (0.11) leaves zero. Such a key is taken as it is: signing checks the signature it
        // makes against the key's public half, so a damaged key still fails.
        let unchecked = bytes.len() == 158 && bytes[126..].iter().all(|byte| *byte == 0);
        match SecretKey::from_unencrypted_box(key_box) {
            Ok(secret) => secret,
            Err(_) if unchecked => {
                SecretKey::from_bytes(&bytes).map_err(|error| not_a_key(&error.to_string()))?
            }
            Err(error) => return Err(not_a_key(&error.to_string())),
        }
    };
    let public =
        PublicKey::from_secret_key(&secret).map_err(|error| not_a_key(&error.to_string()))?;
    let id = key_id(secret.keynum());
    Ok(SigningKey { secret, public, id })
}

/// The trusted comment of an artifact's signature.
pub fn trusted_comment(manifest: &Manifest, payload_sha256: &str) -> String {
    let mut comment = format!("app:{}", manifest.app.name);
    if let Some(version) = &manifest.app.version {
        comment.push_str(&format!("\tversion:{version}"));
    }
    comment.push_str(&format!("\tpayload_sha256:{payload_sha256}"));
    comment
}

/// The signature file beside an artifact: `OUT.minisig`, as minisign names it.
pub fn signature_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

/// The minisign signature of `artifact` with `key`, its trusted comment `comment`, as the text
/// of an `OUT.minisig` file.
pub fn signature_text(key: &SigningKey, artifact: &Path, comment: &str) -> Result<String> {
    let file =
        File::open(artifact).with_context(|| format!("cannot read {}", artifact.display()))?;
    let untrusted = format!("pysfx artifact signature, key ID {}", key.id);
    let signature = minisign::sign(
        Some(&key.public),
        &key.secret,
        std::io::BufReader::new(file),
        Some(comment),
        Some(&untrusted),
    )
    .map_err(|error| anyhow!("cannot sign {}: {error}", artifact.display()))?;
    Ok(signature.to_string())
}

/// Why `verify --pubkey` refused: a bad or missing signature (exit 3), or a `--pubkey` that is
/// no public key (exit 2).
pub enum Refusal {
    BadSignature(anyhow::Error),
    BadKey(anyhow::Error),
}

/// Reads the public keys given with `--pubkey`.
fn read_public_keys(paths: &[PathBuf]) -> Result<Vec<(PathBuf, PublicKey)>> {
    let mut keys = Vec::new();
    for path in paths {
        let text = read_small(path, "public key (--pubkey)")?;
        // The minisign crate takes any two bytes as the algorithm; minisign's keys say "Ed".
        let algorithm = text
            .lines()
            .nth(1)
            .and_then(|line| {
                base64::engine::general_purpose::STANDARD
                    .decode(line.trim())
                    .ok()
            })
            .and_then(|bytes| bytes.get(..2).map(<[u8]>::to_vec));
        if algorithm.is_some_and(|algorithm| algorithm != b"Ed") {
            bail!(
                "--pubkey {}: not a minisign public key (its algorithm is not Ed25519, \"Ed\")",
                path.display()
            );
        }
        let key = PublicKeyBox::from_string(&text)
            .and_then(PublicKeyBox::into_public_key)
            .map_err(|error| {
                anyhow!(
                    "--pubkey {}: not a minisign public key ({error})",
                    path.display()
                )
            })?;
        keys.push((path.clone(), key));
    }
    Ok(keys)
}

/// Checks `signature` (a minisign signature file) of `artifact` against the keys at
/// `public_keys` (the one whose key ID the signature names), then its trusted comment against
/// the artifact's manifest and payload digest. Returns the key ID and the trusted comment.
pub fn verify_signature(
    artifact: &Path,
    signature: &Path,
    public_keys: &[PathBuf],
    manifest: &Manifest,
    payload_sha256: &str,
) -> Result<(String, String), Refusal> {
    let keys = read_public_keys(public_keys).map_err(Refusal::BadKey)?;
    let bad = |error: anyhow::Error| Refusal::BadSignature(error);
    if signature.symlink_metadata().is_err() {
        return Err(bad(anyhow!(
            "no signature: {} does not exist (sign with `pysfx pack --sign KEY`, or name the \
             signature file with --signature)",
            signature.display()
        )));
    }
    let text = read_small(signature, "signature").map_err(bad)?;
    check_signature_lines(&text).map_err(|reason| {
        bad(anyhow!(
            "{}: not a minisign signature ({reason})",
            signature.display()
        ))
    })?;
    let signature_box = SignatureBox::from_string(&text).map_err(|error| {
        bad(anyhow!(
            "{}: not a minisign signature ({})",
            signature.display(),
            escape_control(&error.to_string())
        ))
    })?;
    let id = key_id(signature_box.keynum());
    // Every --pubkey of that key ID is tried (a key ID names a key, but anyone can make a key
    // of any ID): the signature holds when one of them verifies it, whatever their order.
    let candidates: Vec<&(PathBuf, PublicKey)> = (keys.iter())
        .filter(|(_, key)| key_id(key.keynum()) == id)
        .collect();
    if candidates.is_empty() {
        let known: Vec<String> = keys
            .iter()
            .map(|(path, key)| format!("{} is {}", path.display(), key_id(key.keynum())))
            .collect();
        return Err(bad(anyhow!(
            "{} was made with key ID {id}, which no --pubkey has ({})",
            signature.display(),
            known.join(", ")
        )));
    }
    if !signature_box.is_prehashed() {
        return Err(bad(anyhow!(
            "{} is a legacy minisign signature (`minisign -S -l`), which pysfx does not accept: \
             sign the artifact again with `minisign -S` (prehashed) or `pysfx pack --sign`",
            signature.display()
        )));
    }
    let mut failed = None;
    for (key_path, key) in candidates {
        let file = File::open(artifact)
            .map_err(|error| bad(anyhow!("cannot read {}: {error}", artifact.display())))?;
        match minisign::verify(
            key,
            &signature_box,
            std::io::BufReader::new(file),
            true,
            false,
            false,
        ) {
            Ok(()) => {
                failed = None;
                break;
            }
            Err(error) => failed = Some((key_path, error)),
        }
    }
    if let Some((key_path, error)) = failed {
        return Err(bad(anyhow!(
            "{} does not match {} with key {} ({error}): the file changed since it was \
                 signed, or the signature is another file's",
            signature.display(),
            artifact.display(),
            key_path.display()
        )));
    }
    let comment = signature_box
        .trusted_comment()
        .map_err(|error| bad(anyhow!("{}: {error}", signature.display())))?;
    check_trusted_comment(&comment, manifest, payload_sha256).map_err(|reason| {
        bad(anyhow!(
            "{}: the signed trusted comment \"{}\" does not describe {}: {reason}",
            signature.display(),
            escape_control(&comment),
            artifact.display()
        ))
    })?;
    Ok((id, comment))
}

/// The shape of a signature file, checked before the minisign crate reads it (it indexes the
/// decoded signatures by their expected lengths): an untrusted comment, the signature (2 bytes
/// of algorithm, 8 of key number, 64 of signature), the trusted comment, the global signature
/// (64 bytes). Each line is taken as minisign takes it, whole but for its line break: the
/// crate trims white space around each, which minisign does not, so a line that has any is
/// refused (else a comment signed with a trailing space would verify with minisign and not
/// here, and one given a space since the other way round).
fn check_signature_lines(text: &str) -> Result<(), &'static str> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < 4 {
        return Err("fewer than four lines");
    }
    let decoded = |line: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(line)
            .map(|bytes| bytes.len())
            .ok()
    };
    if decoded(lines[1]) != Some(74) {
        return Err("its second line is not a signature");
    }
    let Some(comment) = lines[2].strip_prefix("trusted comment: ") else {
        return Err("its third line is not a trusted comment");
    };
    if comment.trim() != comment {
        return Err(
            "its trusted comment begins or ends with white space, which minisign reads \
                    as part of it and pysfx cannot: sign again without it",
        );
    }
    if decoded(lines[3]) != Some(64) {
        return Err("its fourth line is not a global signature");
    }
    Ok(())
}

/// Holds a trusted comment to the artifact: its app, version and payload digest must be the
/// manifest's and the trailer's. Unknown fields (a `timestamp:` that `minisign -S -t` users
/// may add) are allowed.
fn check_trusted_comment(
    comment: &str,
    manifest: &Manifest,
    payload_sha256: &str,
) -> Result<(), String> {
    let mut app = None;
    let mut version = None;
    let mut digest = None;
    for field in comment.split('\t') {
        let (key, value) = field.split_once(':').unwrap_or((field, ""));
        let slot = match key {
            "app" => &mut app,
            "version" => &mut version,
            "payload_sha256" => &mut digest,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(format!("it names {key} twice"));
        }
    }
    let (Some(app), Some(digest)) = (app, digest) else {
        return Err(
            "it names no app or no payload_sha256 (not a pysfx signature; its fields are \
             tab-separated)"
                .into(),
        );
    };
    if app != manifest.app.name {
        return Err(format!(
            "it is for app \"{}\", the artifact is app {:?}",
            escape_control(app),
            manifest.app.name
        ));
    }
    if version != manifest.app.version.as_deref() {
        return Err(format!(
            "it is for version {}, the artifact is version {}",
            version.map_or("(none)".into(), |v| format!("\"{}\"", escape_control(v))),
            manifest
                .app
                .version
                .as_deref()
                .map_or("(none)".into(), |v| format!("{v:?}"))
        ));
    }
    if digest != payload_sha256 {
        return Err(format!(
            "it is for payload_sha256 {}, the artifact's is {payload_sha256}",
            escape_control(digest)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(version: Option<&str>) -> Manifest {
        let mut value = serde_json::json!({"format_version": 1, "pysfx_version": "test",
            "app": {"name": "mysite", "files": 0, "bytes": 0}, "wheels": [], "sets": [],
            "unpacked_bytes": 0});
        if let Some(version) = version {
            value["app"]["version"] = serde_json::json!(version);
        }
        serde_json::from_value(value).expect("manifest")
    }

    #[test]
    fn trusted_comments_round_trip_and_mismatches_are_named() {
        let digest = "ab".repeat(32);
        let with = manifest(Some("1.4.0 rc"));
        let without = manifest(None);
        let comment = trusted_comment(&with, &digest);
        assert_eq!(
            comment,
            format!("app:mysite\tversion:1.4.0 rc\tpayload_sha256:{digest}")
        );
        assert!(check_trusted_comment(&comment, &with, &digest).is_ok());
        let bare = trusted_comment(&without, &digest);
        assert!(check_trusted_comment(&bare, &without, &digest).is_ok());
        let cases = [
            (comment.as_str(), &without, digest.as_str(), "version"),
            (bare.as_str(), &with, digest.as_str(), "version"),
            (comment.as_str(), &with, "cd", "payload_sha256"),
            ("app:other\tpayload_sha256:x", &without, "x", "app"),
            (
                "timestamp:1\tfile:site.sfx\thashed",
                &without,
                "x",
                "not a pysfx",
            ),
            (
                "app:mysite\tapp:mysite\tpayload_sha256:x",
                &without,
                "x",
                "twice",
            ),
        ];
        for (comment, manifest, digest, expected) in cases {
            let error = check_trusted_comment(comment, manifest, digest).expect_err(comment);
            assert!(error.contains(expected), "{comment:?}: {error}");
        }
        let timestamped = format!("timestamp:1700000000\t{bare}");
        assert!(check_trusted_comment(&timestamped, &without, &digest).is_ok());
    }

    #[test]
    fn malformed_signature_files_are_refused_before_they_are_parsed() {
        let signature = base64::engine::general_purpose::STANDARD.encode([0u8; 74]);
        let global = base64::engine::general_purpose::STANDARD.encode([0u8; 64]);
        let short = base64::engine::general_purpose::STANDARD.encode([0u8; 10]);
        let good = format!("untrusted comment: x\n{signature}\ntrusted comment: y\n{global}\n");
        assert!(check_signature_lines(&good).is_ok());
        // Line breaks as a Windows editor leaves them are no white space to minisign either.
        assert!(check_signature_lines(&good.replace('\n', "\r\n")).is_ok());
        for text in [
            // White space minisign reads as part of a line (the crate would trim it).
            format!("untrusted comment: x\n{signature}\ntrusted comment: y \n{global}\n"),
            format!("untrusted comment: x\n{signature}\ntrusted comment:  y\n{global}\n"),
            format!("untrusted comment: x\n {signature}\ntrusted comment: y\n{global}\n"),
            format!("untrusted comment: x\n{signature}\ntrusted comment: y\n{global}\t\n"),
            String::new(),
            "untrusted comment: x\n".to_string(),
            format!("untrusted comment: x\n{short}\ntrusted comment: y\n{global}\n"),
            format!("untrusted comment: x\n{signature}\ntrusted comment: y\n{short}\n"),
            format!("untrusted comment: x\n{signature}\ny\n{global}\n"),
            format!("untrusted comment: x\n{signature}{signature}\ntrusted comment: y\n{global}\n"),
        ] {
            assert!(check_signature_lines(&text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn key_ids_are_printed_as_minisign_prints_them() {
        assert_eq!(
            key_id(&[0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]),
            "0123456789ABCDEF"
        );
    }

    #[test]
    fn a_directory_is_no_key_name() {
        let work = tempfile::tempdir().expect("tempdir");
        let keys = work.path().join("keys");
        std::fs::create_dir(&keys).expect("mkdir");
        let keys_slash = format!("{}/", keys.display());
        let missing_slash = format!("{}/", work.path().join("missing").display());
        for name in [
            keys.as_os_str(),
            keys_slash.as_ref(),
            missing_slash.as_ref(),
        ] {
            let error = check_key_name(Path::new(name)).expect_err(&name.to_string_lossy());
            let text = error.to_string();
            assert!(error.downcast_ref::<UsageError>().is_some(), "{text}");
            assert!(
                text.contains(&*name.to_string_lossy()) && text.contains("NAME.key and NAME.pub"),
                "{text}"
            );
        }
        for name in [keys.join("release"), PathBuf::from("release")] {
            assert!(check_key_name(&name).is_ok(), "{}", name.display());
        }
    }

    #[test]
    fn signature_path_appends_minisig() {
        assert_eq!(
            signature_path(Path::new("out/site.sfx")),
            PathBuf::from("out/site.sfx.minisig")
        );
    }
}
