//! `--check DEST`, `--status LINK`, `--activate DEST --link LINK`: releases already installed,
//! seen through any artifact of the same app (`pysfx_release` does the work; this is the
//! output).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use pysfx_format::{escape_control, escape_lines};
use serde_json::json;
use tracing::{error, info, warn};

use crate::artifact::open_self;
use crate::cli::Cli;
use crate::dest::absolute_path;
use crate::failure::{code, Failure};
use crate::output::print_stdout;

/// Runs the release command the command line names; `None` when it names none.
pub fn run(cli: &Cli) -> Result<Option<u8>, Failure> {
    if let Some(destination) = &cli.check {
        return check(cli, destination).map(Some);
    }
    if let Some(link) = &cli.status {
        return status(cli, link).map(Some);
    }
    if let Some(destination) = &cli.activate {
        return activate(cli, destination).map(|()| Some(0));
    }
    Ok(None)
}

/// The app of the running artifact: the releases it may look at are that app's.
fn app_name() -> Result<String, Failure> {
    Ok(open_self()?.manifest().app.name.clone())
}

fn check(cli: &Cli, destination: &Path) -> Result<u8, Failure> {
    let started = Instant::now();
    let mut destination = absolute_path(destination, "--check")?;
    // A link such as `current`: the check only reads, so it checks the release it points at.
    if std::fs::symlink_metadata(&destination).is_ok_and(|m| m.file_type().is_symlink()) {
        if let Ok(target) = std::fs::canonicalize(&destination) {
            info!(
                "{} points at {}: checking that release",
                destination.display(),
                target.display()
            );
            destination = target;
        }
    }
    let mut own = open_self()?;
    // Another run's `--force` may swap a new tree in while this one reads: the receipt of one
    // and the files of the other would differ. DEST is the same directory, not renamed since
    // (its ctime), before and after a check that stands; otherwise the check starts again, on
    // what DEST now is.
    let identity = |path: &Path| {
        std::fs::symlink_metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
    };
    let mut tries = 0;
    let (receipt, report, notes) = loop {
        let before = identity(&destination);
        let examined = examine(&mut own, &destination);
        if identity(&destination) == before {
            break examined?;
        }
        tries += 1;
        if tries == 3 {
            return Err(Failure::new(
                code::CONFLICT,
                format!(
                    "{} was replaced while --check read it, three times (another run's \
                     --force?); run --check again when it is done",
                    destination.display()
                ),
            ));
        }
        info!(
            "{} was replaced while --check read it; checking it again",
            destination.display()
        );
    };
    for note in notes {
        warn!("{}: {note}", destination.display());
    }
    let intact = report.intact();
    // The result is this run's report: a signal from now on is moot.
    crate::signals::report_or_wait();
    if cli.json {
        let object = json!({
            "intact": intact,
            "dest": destination,
            "app_version": receipt.app_version,
            "checked": report.checked,
            "missing": report.missing,
            "modified": report.modified.iter().map(|m| &m.path).collect::<Vec<_>>(),
            "differences": report.modified,
            "added": report.added,
            "unreadable": report.unreadable,
            "seconds": started.elapsed().as_secs_f64(),
        });
        print_stdout(&format!("{}\n", pysfx_format::json_text(&object, false)))?;
    } else {
        // Each line escaped on its own: a file's name may hold a line break.
        let text: String = report
            .lines()
            .iter()
            .map(|line| format!("{}\n", escape_control(line)))
            .collect();
        print_stdout(&text)?;
    }
    if intact {
        info!(
            "{} is intact ({} files checked)",
            destination.display(),
            report.checked
        );
        return Ok(0);
    }
    if !report.differs() {
        // Nothing seen differs, but not all could be seen: no verdict, and no reinstall to
        // suggest (exit 4, as for any file this run may not read).
        warn!(
            "{}: this user may not read {} of its recorded files (permission denied; the \
             first: {}), so it cannot tell whether they are intact; run --check as DEST's \
             owner or root",
            destination.display(),
            report.unreadable.len(),
            escape_control(report.unreadable.first().map_or("", String::as_str))
        );
        return Ok(code::MACHINE);
    }
    warn!(
        "{} differs from its records: {} missing, {} modified, {} added (reinstall it with -d {} --force)",
        destination.display(),
        report.missing.len(),
        report.modified.len(),
        report.added.len(),
        destination.display()
    );
    Ok(code::CORRUPT)
}

/// What `--check` finds in the release at `destination`: its receipt, how the release
/// differs from it and from the payload `own`, and the warnings to give if that stands.
fn examine(
    own: &mut pysfx_format::Payload,
    destination: &Path,
) -> Result<
    (
        pysfx_release::receipt::Receipt,
        pysfx_release::check::CheckReport,
        Vec<String>,
    ),
    Failure,
> {
    let mut notes = Vec::new();
    let app = own.manifest().app.name.clone();
    let receipt = pysfx_release::release::open(destination, &app)?;
    let contents =
        receipt
            .contents
            .as_ref()
            .ok_or_else(|| pysfx_release::ReleaseError::NotCheckable {
                path: destination.to_path_buf(),
                version: receipt.pysfx_version.clone(),
            })?;
    let mut report = pysfx_install::stamps::check_release(destination, contents);
    if let Some(reason) = pysfx_release::release::moved(destination, &receipt) {
        notes.push(reason);
        report.modified.push(pysfx_release::check::Modified {
            path: ".".into(),
            differs: vec!["moved"],
        });
    }
    // The receipt says what the release is (its version, shown by `--status`; its manifest):
    // one that contradicts itself, or this very payload, was edited; so was a RECORD that
    // contradicts the wheel's own in this payload (`pysfx_install::held_to_payload`).
    for modified in pysfx_install::held_to_payload(own, &receipt, destination) {
        if !(report.modified.iter()).any(|known| known.path == modified.path) {
            notes.push(format!(
                "{} contradicts the payload it names ({})",
                escape_control(&modified.path),
                modified.differs.join(", ")
            ));
            report.modified.push(modified);
        }
    }
    let python_missing = report.missing.iter().any(|path| path == "venv/bin/python");
    // An interpreter this user may not reach (another user's release, its Python below a
    // home directory closed to others) is not known to have changed.
    let python_denied = std::fs::canonicalize(destination.join("venv/bin/python"))
        .is_err_and(|error| error.kind() == std::io::ErrorKind::PermissionDenied);
    if python_denied && !python_missing {
        report.unreadable.push("venv/bin/python".into());
    }
    if let Some(reason) = (!python_missing && !python_denied)
        .then(|| pysfx_release::release::interpreter_changed(destination, &receipt))
        .flatten()
    {
        notes.push(reason);
        // One line for bin/python, which may differ as a link already (`kind`).
        match (report.modified.iter_mut()).find(|modified| modified.path == "venv/bin/python") {
            Some(modified) => modified.differs.push("python"),
            None => report.modified.push(pysfx_release::check::Modified {
                path: "venv/bin/python".into(),
                differs: vec!["python"],
            }),
        }
    }
    Ok((receipt, report, notes))
}

/// Exit 0 when LINK points at a complete release, else 1 (as for a LINK that does not exist):
/// a monitoring task sees that nothing is served, with the releases it could be pointed at.
fn status(cli: &Cli, link: &Path) -> Result<u8, Failure> {
    let link = absolute_path(link, "--status")?;
    let status = match pysfx_release::status::status(&link, &app_name()?) {
        Err(pysfx_release::ReleaseError::LinkNotSymlink { .. }) => {
            return Err(Failure::new(
                code::CONFLICT,
                format!(
                "{} is not a symlink; give --status the link that points at the current release",
                link.display()
            ),
            ))
        }
        status => status?,
    };
    let current = status.releases.iter().find(|release| release.current);
    // Why nothing is served, when it is not: printed as an error, and in `--json` as a failed
    // run's object says it (`error`, `exit_code`) besides the releases.
    let failure = match current.map(|release| &release.incomplete) {
        Some(None) => None,
        Some(Some(reason)) => Some(format!(
            "{} points at {}, which cannot be served: {reason}",
            link.display(),
            status.target.display()
        )),
        None if std::fs::symlink_metadata(&status.target).is_ok() => Some(format!(
            "{} points at {}, which is not a release of this app beside the others",
            link.display(),
            status.target.display()
        )),
        None => Some(format!(
            "{} points at {}, which does not exist: the link is broken",
            link.display(),
            status.target.display()
        )),
    };
    // The result is this run's report: a signal from now on is moot.
    crate::signals::report_or_wait();
    if cli.json {
        let mut object = json!(status);
        if let (Some(message), Some(fields)) = (&failure, object.as_object_mut()) {
            fields.insert("error".into(), json!(message));
            fields.insert("exit_code".into(), json!(code::OTHER));
        }
        print_stdout(&format!("{}\n", pysfx_format::json_text(&object, false)))?;
    } else {
        print_stdout(&escape_lines(&status.text()))?;
    }
    match failure {
        None => Ok(0),
        Some(message) => {
            error!("{message}");
            Ok(code::OTHER)
        }
    }
}

fn activate(cli: &Cli, destination: &Path) -> Result<(), Failure> {
    let destination = absolute_path(destination, "--activate")?;
    let link = absolute_path(cli.link.as_deref().unwrap_or(Path::new("")), "--link")?;
    crate::install::check_link_outside(&link, &destination)?;
    crate::install::check_name_length(&link, "--link")?;
    crate::dest::check_shared_symlinks(&link, "LINK")?;
    let app = app_name()?;
    // The release is held (a run that holds it, such as a re-run of its artifact, is waited
    // for as an install waits for DEST's lock) and checked before LINK's lock is taken, so a
    // refused release leaves LINK's directory as it was.
    let wait = crate::lock::lock_timeout();
    let _held = pysfx_release::activate::check(&destination, &link, &app, wait)?;
    // The release LINK served before: a later `--keep` on DEST keeps it, as after an install
    // that moved LINK (the record in DEST's lock file). Read and replaced under LINK's lock,
    // as a deploy's switch is.
    let link_lock = crate::lock::hold_link(&link);
    let previous = crate::install::served_by(&link, &destination);
    // Recorded before LINK leaves it (LINK stays where it is when it cannot be).
    let already = pysfx_release::link::points_at(&link, &destination);
    if let Some(previous) = (previous.as_deref())
        .filter(|previous| !already && !crate::install::is_release(previous, &destination))
    {
        crate::lock::record_replaced(&destination, previous)?;
    }
    // Under the registry: a signal then waits for the link's switch, and says whether LINK
    // moved.
    let moved = crate::signals::with_registry(|_| {
        let moved = pysfx_release::link::repoint_link(&link, &destination)?;
        crate::signals::mark_link_moved(moved);
        Ok::<_, Failure>(moved)
    })?;
    drop(link_lock);
    if !moved {
        info!(
            "{} already points at {}",
            link.display(),
            destination.display()
        );
    }
    // The result is this run's report: a signal from now on is moot.
    crate::signals::report_or_wait();
    if cli.json {
        let object = json!({
            "changed": moved,
            "dest": destination,
            "link": link,
            "link_moved": moved,
        });
        // LINK moved (or was right already): a report stdout cannot take does not make the
        // run a failure, as after an install.
        if let Err(failure) =
            print_stdout(&format!("{}\n", pysfx_format::json_text(&object, false)))
        {
            warn!("{}; the run itself succeeded", failure.message);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::{parse, Command};
    use std::ffi::OsString;

    fn parse_line(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(OsString::from))
    }

    #[test]
    fn release_commands_and_their_usage_errors() {
        for (line, expected) in [
            ("-d x --keep 3", "--keep goes with -d DEST --link LINK"),
            (
                "--status l --keep 3",
                "--keep goes with -d DEST --link LINK",
            ),
            ("-d x --link l --keep 0", "at least 1"),
            ("-d x --link l --keep many", "at least 1"),
            ("-d x --link l --keep 00", "at least 1"),
            (
                "-d x --link l --keep 99999999999999999999",
                "more releases than can be counted",
            ),
            (
                "-d x --link l --keep +99999999999999999999",
                "more releases than can be counted",
            ),
            ("--activate r", "--activate DEST needs --link LINK"),
            ("--check r --force", "--force goes with -d DEST"),
            ("--status l --link m", "--link goes with -d DEST"),
            (
                "--check a --status b",
                "--check cannot be used with --status",
            ),
            (
                "-d x --activate y --link l",
                "-d DEST cannot be used with --activate",
            ),
            ("--check", "--check needs a value"),
        ] {
            match parse_line(line) {
                Err(message) => assert!(message.contains(expected), "{line:?}: {message}"),
                Ok(other) => panic!("{line:?} parsed: {other:?}"),
            }
        }
    }
}
