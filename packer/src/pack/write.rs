//! Writing the artifact: the stub, the manifest and every entry into a temporary file beside
//! the output, renamed into place when complete.

use std::collections::BTreeMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use pysfx_format::{EntryOptions, Manifest, PayloadWriter};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::thin::Husk;
use crate::appfiles::{TreeFile, TreeKind};
use crate::bytecode;
use crate::collect::WheelInfo;

/// Everything that goes into the payload after the manifest.
pub(crate) struct Contents<'a> {
    pub(crate) app_files: &'a [TreeFile],
    pub(crate) static_files: &'a [TreeFile],
    pub(crate) wheels: &'a BTreeMap<String, (WheelInfo, PathBuf)>,
    /// The husks stored in place of the wheels a thin pack leaves out, by payload path.
    pub(crate) husks: &'a BTreeMap<String, Husk>,
    pub(crate) bundles: &'a BTreeMap<String, bytecode::Built>,
    /// Entries made by the packer (the SBOMs), stored right after the manifest.
    pub(crate) documents: &'a [(String, Vec<u8>)],
}

/// Writes the artifact beside `output`, as `.OUT.pysfx-tmp-PID` (removed on a signal or an
/// error), and returns that path: [`commit`] puts it in place.
pub(crate) fn write_artifact(
    output: &Path,
    stub: &[u8],
    manifest: &Manifest,
    contents: &Contents<'_>,
    epoch: u64,
) -> Result<PathBuf> {
    let Contents {
        app_files,
        static_files,
        wheels,
        husks,
        bundles,
        documents,
    } = contents;
    let name = output
        .file_name()
        .ok_or_else(|| anyhow!("-o {}: not a file name", output.display()))?
        .to_string_lossy()
        .into_owned();
    let directory = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    remove_stale_temporaries(directory, &name);
    remove_stale_temporaries(directory, &format!("{name}.minisig"));
    let temporary = output.with_file_name(temporary_name(&name));
    crate::interrupt::remove_on_signal(temporary.clone());
    let result = (|| -> Result<()> {
        // Created, never opened: a file or a link planted at the name (the process number is
        // no secret) is removed, not written through or into.
        let _ = std::fs::remove_file(&temporary);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)
            .with_context(|| format!("-o {}: cannot write beside it", output.display()))?;
        let mut writer = PayloadWriter::with_file(file, &temporary, stub, epoch)
            .with_context(|| format!("-o {}: cannot write beside it", output.display()))?;
        writer.add_manifest(manifest)?;
        for (name, bytes) in documents.iter() {
            // Deflated: JSON shrinks to a fifth, and every artifact, a thin one too, carries
            // the SBOMs of the whole set.
            let options = EntryOptions {
                compress: true,
                executable: false,
                size: bytes.len() as u64,
            };
            writer.add(name, &mut bytes.as_slice(), options)?;
        }
        for file in app_files.iter().chain(static_files.iter()) {
            let (executable, size) = match &file.kind {
                TreeKind::File { executable, size } => (*executable, *size),
                TreeKind::Link { target } => {
                    writer.add_symlink(&file.name, target)?;
                    continue;
                }
            };
            // Opened without following a link: a file swapped for one since the walk is not
            // read through.
            let mut source = crate::appfiles::open_regular(&file.source, false)
                .with_context(|| format!("cannot read {}", file.source.display()))?;
            writer.add(
                &file.name,
                &mut source,
                EntryOptions {
                    compress: true,
                    executable,
                    size,
                },
            )?;
        }
        let progress = progress_bar(wheels.len() as u64, "packing wheels");
        for (path, (info, wheel)) in wheels.iter() {
            progress.inc(1);
            match husks.get(path) {
                Some(husk) => add_stored(&mut writer, path, &husk.file, None)?,
                // A wheel is stored only as the bytes that were checked (its file may have
                // been replaced since: another job refreshing a wheel cache).
                None => add_stored(&mut writer, path, wheel, Some(&info.sha256))?,
            }
        }
        progress.finish_and_clear();
        for (path, built) in bundles.iter() {
            add_stored(&mut writer, path, &built.file, None)?;
        }
        writer.finish()?;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map(|()| temporary)
}

/// The directories a pack made for OUT (`-o` in a directory that did not exist yet),
/// shallowest first. When the pack ends without OUT in place (an error, or a signal: the
/// handler removes them too), those still empty are removed again, deepest first: never one
/// that something else (another pack's OUT) has been put in since.
pub(crate) struct MadeParents(Vec<PathBuf>);

impl MadeParents {
    /// Makes the missing directories above `output`, one at a time.
    pub(crate) fn make(output: &Path) -> Result<Self> {
        let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) else {
            return Ok(Self(Vec::new()));
        };
        let mut missing = Vec::new();
        for directory in parent.ancestors().filter(|p| !p.as_os_str().is_empty()) {
            match std::fs::metadata(directory) {
                Ok(metadata) if metadata.is_dir() => break,
                Ok(_) => bail!(
                    "-o {}: {} is not a directory",
                    output.display(),
                    directory.display()
                ),
                Err(_) => missing.push(directory.to_path_buf()),
            }
        }
        let mut made = Self(Vec::new());
        for directory in missing.into_iter().rev() {
            match std::fs::create_dir(&directory) {
                Ok(()) => {
                    crate::interrupt::remove_on_signal_if_empty(directory.clone());
                    made.0.push(directory);
                }
                // Made by another pack meanwhile: its to keep.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => {
                    return Err(anyhow::Error::new(error)
                        .context(format!("cannot create {}", directory.display())))
                }
            }
        }
        Ok(made)
    }
}

impl Drop for MadeParents {
    fn drop(&mut self) {
        for directory in self.0.iter().rev() {
            // Holding OUT (or anything else), it stays.
            let _ = std::fs::remove_dir(directory);
        }
    }
}

/// Puts the artifact written at `temporary` in place as `output`, with its signature (`--sign`)
/// as `OUT.minisig`: both renamed into place at once, as far as a signal goes (its handler
/// waits for the two renames, and then says OUT was written; once it has begun, they are not
/// made), so OUT is never the new artifact beside the old signature, nor the old beside the
/// new. The signature goes first; when OUT then cannot be replaced (an immutable file, another
/// user's in a sticky directory), the old signature is put back. Two packs to one OUT put
/// their pairs in place one after the other (see [`lock_directory`]), never interleaved.
pub(crate) fn commit(temporary: &Path, output: &Path, signature: Option<&str>) -> Result<()> {
    // Before a signal's handler is held off: a signal while this waits writes nothing.
    let _turn = lock_directory(output);
    let renamed = crate::interrupt::commit(output, || -> Result<()> {
        let Some(text) = signature else {
            return std::fs::rename(temporary, output)
                .with_context(|| format!("cannot write {}", output.display()));
        };
        let path = crate::signing::signature_path(output);
        // Small, and read before it is replaced: put back if OUT cannot be.
        let old = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|metadata| metadata.is_file() && metadata.len() < 1 << 16)
            .and_then(|_| std::fs::read(&path).ok());
        put_in_place(&path, text.as_bytes())?;
        let result = std::fs::rename(temporary, output)
            .with_context(|| format!("cannot write {}", output.display()));
        if result.is_err() {
            let restored = match &old {
                Some(bytes) => put_in_place(&path, bytes),
                None => std::fs::remove_file(&path).map_err(Into::into),
            };
            if let Err(error) = restored {
                warn!(
                    "{} no longer signs {}: {error:#}",
                    path.display(),
                    output.display()
                );
            }
        }
        result
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(temporary);
    }
    renamed
}

/// An exclusive `flock` on the directory OUT is put in, held while a pack puts OUT and its
/// signature in place: a directory, so no lock file is left beside OUT. `None` where the
/// directory cannot be locked (a filesystem without `flock`): the pair is then put in place
/// unguarded, as a single pack always is.
fn lock_directory(output: &Path) -> Option<nix::fcntl::Flock<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let directory = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
        .open(directory)
        .ok()?;
    use nix::fcntl::{Flock, FlockArg};
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Some(lock),
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
            // Another pack putting its pair in place takes a moment; anything longer is some
            // other process's lock, and the operator should see what this waits for.
            info!(
                "waiting for the lock on {} (another pysfx pack writing there)",
                directory.display()
            );
            Flock::lock(file, FlockArg::LockExclusive).ok()
        }
        Err(_) => None,
    }
}

/// Writes `bytes` as `path` through a new temporary file beside it, renamed over it.
fn put_in_place(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = path.with_file_name(temporary_name(&name));
    let _ = std::fs::remove_file(&staged);
    crate::signing::write_new(&staged, bytes, 0o644)?;
    std::fs::rename(&staged, path).map_err(|error| {
        let _ = std::fs::remove_file(&staged);
        anyhow::Error::new(error).context(format!("cannot write {}", path.display()))
    })
}

/// What a file `name` (OUT, or OUT.minisig) is written as beside itself before it is renamed
/// into place: `.NAME.pysfx-tmp-PID`, which the next pack removes once PID is gone.
fn temporary_name(name: &str) -> String {
    format!("{}{}", temporary_prefix(name), std::process::id())
}

fn temporary_prefix(name: &str) -> String {
    format!(".{name}.pysfx-tmp-")
}

/// A pack killed by SIGKILL leaves its `.OUT.pysfx-tmp-PID` beside OUT (the whole artifact so
/// far). The next pack of OUT removes those whose process is gone; one whose process still runs
/// may be a concurrent pack and is left alone.
fn remove_stale_temporaries(directory: &Path, name: &str) {
    let prefix = temporary_prefix(name);
    let pid_of = |file_name: &str| process_number(file_name.strip_prefix(&prefix)?);
    remove_left_by_gone_packs(directory, pid_of, |metadata| metadata.is_file(), |_| true);
}

/// `digits` as a process number: all digits, no leading zero, above 0.
pub(crate) fn process_number(digits: &str) -> Option<i32> {
    // As the packer writes it: no sign, no leading zero.
    let canonical = !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit());
    let number = (canonical && !digits.is_empty()).then(|| digits.parse::<i32>().ok())??;
    (number > 0).then_some(number)
}

/// Removes what a pack that is gone left in `directory`: each entry whose name `pid_of` takes
/// a process number from ([`process_number`]), that `fits` (its `lstat`), whose process is
/// gone, and that is `free` (asked last, just before the removal).
pub(crate) fn remove_left_by_gone_packs(
    directory: &Path,
    pid_of: impl Fn(&str) -> Option<i32>,
    fits: impl Fn(&std::fs::Metadata) -> bool,
    free: impl Fn(&Path) -> bool,
) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    let names: Vec<std::ffi::OsString> = entries.flatten().map(|entry| entry.file_name()).collect();
    for file_name in &names {
        let Some(pid) = file_name.to_str().and_then(&pid_of) else {
            continue;
        };
        let path = directory.join(file_name);
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|metadata| fits(&metadata));
        if !ours || process_exists(pid) || !free(&path) {
            continue;
        }
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        match removed {
            Ok(()) => info!(
                "removed {}, left by an interrupted pack (process {pid} is gone)",
                path.display()
            ),
            Err(error) => warn!("cannot remove {}: {error}", path.display()),
        }
    }
}

/// `kill(pid, 0)`: only ESRCH says there is no such process (EPERM: it runs as another user).
fn process_exists(pid: i32) -> bool {
    let result = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None);
    !matches!(result, Err(nix::errno::Errno::ESRCH))
}

/// Adds a file stored, not deflated: the stub reads wheels and byte-code bundles in place.
/// With `expected` (hex SHA-256), what was stored must be those bytes.
fn add_stored(
    writer: &mut PayloadWriter,
    name: &str,
    source: &Path,
    expected: Option<&str>,
) -> Result<()> {
    let shown = || crate::appfiles::shown(source);
    let file = crate::appfiles::open_regular(source, true)
        .with_context(|| format!("cannot read {}", shown()))?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot read {}", shown()))?
        .len();
    let options = EntryOptions {
        compress: false,
        executable: false,
        size,
    };
    let mut reader = Hashing {
        inner: file,
        sha256: Sha256::new(),
    };
    writer.add(name, &mut reader, options)?;
    let stored = pysfx_format::hex(&reader.sha256.finalize());
    if let Some(expected) = expected.filter(|expected| **expected != stored) {
        bail!(
            "{} changed while packing: its SHA-256 was {expected} when it was checked, and is \
             {stored} now; pack again once nothing writes to it",
            shown()
        );
    }
    Ok(())
}

/// A reader that hashes what is read through it.
struct Hashing<R> {
    inner: R,
    sha256: Sha256,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.sha256.update(&buffer[..read]);
        Ok(read)
    }
}

/// A bar on stderr when [`progress_shown`] says so; hidden otherwise.
fn progress_bar(total: u64, message: &'static str) -> indicatif::ProgressBar {
    let shown = progress_shown(&Console {
        steps: total,
        // `-q` sets the level to errors: the bar is info, so it goes with the info lines.
        info_shown: tracing::enabled!(tracing::Level::INFO),
        terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        dumb: std::env::var_os("TERM").is_some_and(|term| term == "dumb"),
    });
    if !shown {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// What decides whether a progress bar is drawn.
struct Console {
    /// The bar's length: nothing to count, no bar.
    steps: u64,
    /// Whether info messages are logged (not under `-q`, which means errors only).
    info_shown: bool,
    /// Whether stderr is a terminal (a bar in a piped log is noise).
    terminal: bool,
    /// `TERM=dumb`: a terminal that cannot redraw a line.
    dumb: bool,
}

/// A bar is drawn on a terminal that can redraw it, when there is something to count and info
/// messages are shown.
fn progress_shown(console: &Console) -> bool {
    console.steps > 0 && console.info_shown && console.terminal && !console.dumb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wheel_is_stored_only_as_the_bytes_checked() {
        let work = tempfile::tempdir().expect("tempdir");
        let wheel = work.path().join("w-1.0-py3-none-any.whl");
        std::fs::write(&wheel, b"the bytes checked").expect("write");
        let checked = pysfx_format::hex(&Sha256::digest(b"the bytes checked"));
        let mut writer =
            PayloadWriter::create(&work.path().join("out"), b"stub", 0).expect("writer");
        add_stored(&mut writer, "wheels/a.whl", &wheel, Some(&checked)).expect("unchanged");
        // Replaced by other bytes of the same size after the check.
        std::fs::write(&wheel, b"the bytes swapped").expect("write");
        let error =
            add_stored(&mut writer, "wheels/b.whl", &wheel, Some(&checked)).expect_err("changed");
        let message = error.to_string();
        assert!(message.contains("changed while packing"), "{message}");
        assert!(message.contains(&checked), "{message}");
    }

    #[test]
    fn no_progress_bar_under_quiet_off_a_terminal_or_on_a_dumb_one() {
        let shown = Console {
            steps: 3,
            info_shown: true,
            terminal: true,
            dumb: false,
        };
        assert!(progress_shown(&shown));
        for (what, console) in [
            ("no steps", Console { steps: 0, ..shown }),
            (
                "-q",
                Console {
                    info_shown: false,
                    ..shown
                },
            ),
            (
                "piped",
                Console {
                    terminal: false,
                    ..shown
                },
            ),
            (
                "TERM=dumb",
                Console {
                    dumb: true,
                    ..shown
                },
            ),
        ] {
            assert!(!progress_shown(&console), "{what}");
        }
    }
}
