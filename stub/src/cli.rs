//! Command line of the artifact (SPEC.md, "Stub").

use std::path::PathBuf;

use std::ffi::OsString;

use pysfx_format::{escape_control, escape_lines, Payload};

use crate::artifact::open_self;
use crate::failure::{code, Failure};
use crate::output::print_stdout;
use crate::{install, releases};
use pysfx_plan as plan;

/// What the command line asks for.
#[derive(Debug, Default)]
pub struct Cli {
    /// Release directory to create (`-d`, `--dest`).
    pub destination: Option<PathBuf>,
    /// Interpreter for the venv.
    pub python: Option<String>,
    pub force: bool,
    /// Symlink to point at DEST after success.
    pub link: Option<PathBuf>,
    pub no_compile: bool,
    /// Never hard-link files from a release beside DEST.
    pub copy: bool,
    pub json: bool,
    /// `-v` count.
    pub verbose: u8,
    pub quiet: bool,
    pub info: bool,
    pub list: bool,
    pub verify: bool,
    pub sbom: bool,
    /// `--keep N`: releases of the app to keep beside DEST after the switch.
    pub keep: Option<usize>,
    /// `--check DEST`: the release to compare with its records.
    pub check: Option<PathBuf>,
    /// `--status LINK`: the link whose releases to show.
    pub status: Option<PathBuf>,
    /// `--activate DEST`: the release to point `--link` at.
    pub activate: Option<PathBuf>,
}

/// The parsed command line: a run, or a request for help or the version.
#[derive(Debug)]
pub enum Command {
    Run(Cli),
    Help,
    Version,
}

const NOTHING_TO_DO: &str =
    "nothing to do: give -d DEST, --info, --list, --verify, --sbom, --check, --status or --activate";

/// The text of `--help`. The stub parses its few options with `lexopt` instead of clap: clap
/// alone is a sixth of the stub's size budget (docs/stub.md).
pub fn help(program: &str) -> String {
    format!(
        "Install this pysfx artifact: unpack the app, create a virtualenv and install its wheels

Usage: {program} -d DEST [--python PY] [--force] [--link LINK [--keep N]] [--no-compile] [--copy] [--json] [-v | -q]
       {program} --info [--python PY] [--json] | --list | --verify [--json] | --sbom | --version [--json] | --help
       {program} --check DEST [--json]
       {program} --status LINK [--json]
       {program} --activate DEST --link LINK [--json]

Options:
  -d, --dest <DEST>  Release directory to create (missing parents are created)
      --python <PY>  Interpreter for the venv: a path or a name on PATH
                     [default: $PYSFX_PYTHON, else python3]
      --force        Replace DEST if it holds something else (atomically)
      --link <LINK>  After success, atomically point this symlink at DEST
      --keep <N>     With --link: then remove the oldest releases of this app beside DEST
                     until N remain (by install time; LINK's target and the release it
                     replaced always stay, counted among the N)
      --no-compile   Do not byte-compile the installed packages
      --copy         Unpack every file, never hard-link one from a release beside DEST
      --json         Print one JSON object on stdout
  -v, --verbose      More detail on stderr (-vv for more); PYSFX_LOG=LEVEL sets it too
  -q, --quiet        Errors only on stderr
      --info         Show what this artifact holds, after checking the payload digest
                     (and, with --python or $PYSFX_PYTHON, what that interpreter would get)
      --list         List the payload's entries
      --verify       Check the payload's integrity and exit
      --sbom         Print the artifact's CycloneDX 1.5 SBOM (JSON) without installing
      --check <DEST>     Compare an installed release with its receipt and RECORDs
                         (exit 0 intact, 3 modified)
      --status <LINK>    Show the releases beside LINK's target, newest first
      --activate <DEST>  Point --link at this installed release (a rollback)
  -h, --help         Print help
  -V, --version      Print the stub's version, and the app's name and version (with --json,
                     as one object)

Exit codes: 0 installed or already installed, 1 failed (--status: LINK serves no complete
release), 2 usage, 3 artifact corrupt or unsafe (--check: the release was modified), 4 this
machine can't take it (interpreter, wheels, an unmet requirement, a thin artifact's base
release, space, permission), 5 DEST conflict or locked
(--activate, --check, --status: not a release of this app, or LINK not a symlink).
"
    )
}

/// The usage error's text as printed: the error, the usage lines, where to look.
pub fn usage_error(program: &str, message: &str) -> String {
    format!(
        "error: {message}\n\nUsage: {program} -d DEST [OPTIONS]\n       {program} --info | --list | --verify | --sbom | --version | --help\n       {program} --check DEST | --status LINK | --activate DEST --link LINK\n\nFor more information, try '--help'.\n"
    )
}

/// Parses the arguments after the program name. `Err` holds a usage error's message.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut cli = Cli::default();
    let (mut version, mut help) = (false, false);
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(|error| error.to_string())? {
        match arg {
            Short('d') | Long("dest") => {
                let value = option_value(&mut parser, "-d")?;
                once(&cli.destination, "-d")?;
                cli.destination = Some(PathBuf::from(value));
            }
            Long("python") => {
                let value = option_value(&mut parser, "--python")?;
                once(&cli.python, "--python")?;
                cli.python = Some(value);
            }
            Long("link") => {
                let value = option_value(&mut parser, "--link")?;
                once(&cli.link, "--link")?;
                cli.link = Some(PathBuf::from(value));
            }
            Long("keep") => {
                let value = option_value(&mut parser, "--keep")?;
                once(&cli.keep, "--keep")?;
                let number = value.strip_prefix('+').unwrap_or(&value);
                let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
                cli.keep = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|keep| *keep >= 1)
                        .ok_or_else(|| {
                            match digits && number.trim_start_matches('0').len() > 1 {
                                true => format!(
                                "--keep {value} is more releases than can be counted (at most {})",
                                usize::MAX
                            ),
                                false => format!(
                                "--keep needs a whole number of releases, at least 1, not {value:?}"
                            ),
                            }
                        })?,
                );
            }
            Long("check") => set_path(&mut cli.check, &mut parser, "--check")?,
            Long("status") => set_path(&mut cli.status, &mut parser, "--status")?,
            Long("activate") => set_path(&mut cli.activate, &mut parser, "--activate")?,
            Long("force") => cli.force = true,
            Long("no-compile") => cli.no_compile = true,
            Long("copy") => cli.copy = true,
            Long("json") => cli.json = true,
            Short('v') | Long("verbose") => cli.verbose = cli.verbose.saturating_add(1),
            Short('q') | Long("quiet") => cli.quiet = true,
            Long("info") => cli.info = true,
            Long("list") => cli.list = true,
            Long("verify") => cli.verify = true,
            Long("sbom") => cli.sbom = true,
            // Read on: an option the stub does not know is an error even beside it.
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") => version = true,
            Value(value) => {
                let hint = if cli.destination.is_none() {
                    " (DEST goes after -d)"
                } else {
                    ""
                };
                return Err(format!(
                    "unexpected argument {:?}{hint}",
                    value.to_string_lossy()
                ));
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    // `--help` wins over every other valid option, as it always may.
    if help {
        return Ok(Command::Help);
    }
    let modes: Vec<&str> = cli.modes().collect();
    // A mode, though, is not passed over, nor an install's option: `-d DEST --version` (or
    // `--version --force`, a deploy command's options) would report success with nothing
    // installed.
    if version {
        let install_only = [
            (cli.force, "--force"),
            (cli.link.is_some(), "--link"),
            (cli.keep.is_some(), "--keep"),
            (cli.python.is_some(), "--python"),
            (cli.no_compile, "--no-compile"),
            (cli.copy, "--copy"),
        ];
        let option = install_only
            .iter()
            .find(|(given, _)| *given)
            .map(|(_, flag)| *flag);
        return match modes.first().copied().or(option) {
            Some(other) => Err(format!("{other} cannot be used with --version")),
            None => Ok(Command::Version),
        };
    }
    match modes.as_slice() {
        [] => return Err(NOTHING_TO_DO.into()),
        [_] => {}
        [first, second, ..] => return Err(format!("{first} cannot be used with {second}")),
    }
    if cli.keep.is_some() && (cli.destination.is_none() || cli.link.is_none()) {
        return Err("--keep goes with -d DEST --link LINK (it prunes after the switch)".into());
    }
    if cli.activate.is_some() && cli.link.is_none() {
        return Err("--activate DEST needs --link LINK, the link to point at it".into());
    }
    if cli.destination.is_none() {
        let install_only = [
            (cli.force, "--force"),
            (cli.link.is_some() && cli.activate.is_none(), "--link"),
            (cli.no_compile, "--no-compile"),
            (cli.copy, "--copy"),
        ];
        if let Some((_, flag)) = install_only.iter().find(|(given, _)| *given) {
            return Err(format!(
                "{flag} goes with -d DEST (an install), not with {}",
                modes[0]
            ));
        }
    }
    // Only an install and --info ask an interpreter (--check asks the release's own).
    if cli.python.is_some() && cli.destination.is_none() && !cli.info {
        return Err(format!(
            "--python goes with -d DEST or --info, not with {}",
            modes[0]
        ));
    }
    if cli.verbose > 0 && cli.quiet {
        return Err("-v cannot be used with -q".into());
    }
    if cli.json && (cli.list || cli.sbom) {
        return Err(format!(
            "--json goes with -d DEST, --info, --verify, --check, --status, --activate or --version, not with {}",
            if cli.list {
                "--list"
            } else {
                "--sbom (JSON already)"
            }
        ));
    }
    Ok(Command::Run(cli))
}

/// `option`'s value, a path, into `slot` (once).
fn set_path(
    slot: &mut Option<PathBuf>,
    parser: &mut lexopt::Parser,
    option: &str,
) -> Result<(), String> {
    let value = option_value(parser, option)?;
    once(slot, option)?;
    *slot = Some(PathBuf::from(value));
    Ok(())
}

fn once<T>(value: &Option<T>, option: &str) -> Result<(), String> {
    match value {
        Some(_) => Err(format!("{option} cannot be given twice")),
        None => Ok(()),
    }
}

/// The value of `option`: attached (`--dest=X`, `-dX`) or the next argument, which must not
/// look like an option (`-d --json` is a missing DEST, not a directory named `--json`). Paths
/// must be text, since `--json` and the receipt report them; none may be empty.
fn option_value(parser: &mut lexopt::Parser, option: &str) -> Result<String, String> {
    let value = match parser.optional_value() {
        Some(value) => value,
        None => {
            let value = parser
                .value()
                .map_err(|_| format!("{option} needs a value"))?;
            if value.to_string_lossy().starts_with('-') {
                return Err(format!(
                    "{option} needs a value, not the option {:?} (write {option}=VALUE for a value that starts with -)",
                    value.to_string_lossy()
                ));
            }
            value
        }
    };
    let value = value
        .into_string()
        .map_err(|value| format!("{option} {value:?} is not valid UTF-8"))?;
    if value.is_empty() {
        return Err(format!("{option} needs a value, not an empty string"));
    }
    Ok(value)
}

impl Cli {
    /// The interpreter to use: `--python`, else `$PYSFX_PYTHON`, else `python3`.
    pub fn python(&self) -> String {
        self.python
            .clone()
            .or_else(|| std::env::var("PYSFX_PYTHON").ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "python3".to_string())
    }

    /// `$PYSFX_PYTHON` that is not text: refused as `--python` would be (a path the receipt
    /// and `--json` cannot report), rather than passed over for `python3`.
    pub fn check_python_variable(&self) -> Result<(), String> {
        match std::env::var("PYSFX_PYTHON") {
            Err(std::env::VarError::NotUnicode(value)) if self.python.is_none() => Err(format!(
                "$PYSFX_PYTHON is not valid UTF-8 ({value:?}); give --python a path that is"
            )),
            _ => Ok(()),
        }
    }

    /// The modes the command line names (one, once parsed): `-d DEST`, `--info`, ….
    fn modes(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.destination.is_some(), "-d DEST"),
            (self.info, "--info"),
            (self.list, "--list"),
            (self.verify, "--verify"),
            (self.sbom, "--sbom"),
            (self.check.is_some(), "--check"),
            (self.status.is_some(), "--status"),
            (self.activate.is_some(), "--activate"),
        ]
        .into_iter()
        .filter_map(|(given, name)| given.then_some(name))
    }

    /// What the run does when it is not an install, as a signal's message names it.
    pub fn activity(&self) -> Option<&'static str> {
        self.modes().find(|mode| *mode != "-d DEST")
    }
}

/// `--version`: the stub's version, and the app's name and version when the artifact's
/// payload can be read. It never fails for the payload: a bare stub, or an artifact whose
/// payload is damaged, still says which stub it is.
pub fn version_text() -> String {
    let mut text = format!("pysfx-stub {}\n", env!("CARGO_PKG_VERSION"));
    if let Ok(payload) = open_self() {
        let app = &payload.manifest().app;
        let line = match &app.version {
            Some(version) => format!("app {} {version}", app.name),
            None => format!("app {}", app.name),
        };
        text.push_str(&escape_control(&line));
        text.push('\n');
    }
    text
}

/// `--version --json`: the same as one object — `pysfx_stub`, and `app` and `app_version`
/// (null when the payload can't be read, or the app has no version).
pub fn version_json() -> String {
    let app = open_self()
        .ok()
        .map(|payload| payload.manifest().app.clone());
    let object = serde_json::json!({
        "pysfx_stub": env!("CARGO_PKG_VERSION"),
        "app": app.as_ref().map(|app| app.name.clone()),
        "app_version": app.and_then(|app| app.version),
    });
    format!("{}\n", pysfx_format::json_text(&object, false))
}

/// Runs what the command line asks; `Ok` holds the exit code (`--check` exits 3 for a modified
/// release after printing what differs).
pub fn run(cli: Cli) -> Result<u8, Failure> {
    if let Some(code) = releases::run(&cli)? {
        return Ok(code);
    }
    if cli.info {
        return info(&cli);
    }
    run_artifact(cli).map(|()| 0)
}

fn run_artifact(cli: Cli) -> Result<(), Failure> {
    if cli.list {
        return list();
    }
    if cli.sbom {
        return crate::sbom::print(&mut open_self()?);
    }
    if cli.verify {
        let mut payload = open_self()?;
        let file_sha256 = payload.verify_and_digest_file()?;
        verify_all(&mut payload)?;
        let manifest = payload.manifest();
        // The result is this run's report: a signal from now on is moot.
        crate::signals::report_or_wait();
        if cli.json {
            let relied_on: Vec<&str> = manifest
                .base_wheels()
                .map(|wheel| wheel.filename.as_str())
                .collect();
            print_stdout(&format!(
                "{}\n",
                pysfx_format::json_text(
                    &serde_json::json!({
                        "ok": true,
                        "payload_sha256": payload.digest(),
                        "file_sha256": file_sha256,
                        "thin_from": manifest.thin_from,
                        "relies_on": relied_on,
                    }),
                    false
                )
            ))?;
        } else {
            let mut out = format!(
                "OK {} payload_sha256={} file_sha256={file_sha256}\n",
                escape_control(&payload.path().display().to_string()),
                payload.digest()
            );
            if let Some(line) = manifest.relies_on() {
                out.push_str(&format!("{line}\n"));
            }
            print_stdout(&escape_lines(&out))?;
        }
        return Ok(());
    }
    match &cli.destination {
        Some(destination) => install::run(&install::Request {
            destination: destination.clone(),
            link: cli.link.clone(),
            python: cli.python(),
            force: cli.force,
            keep: cli.keep,
            no_compile: cli.no_compile,
            copy: cli.copy,
            json: cli.json,
            quiet: cli.quiet,
        }),
        None => Err(Failure::new(code::USAGE, NOTHING_TO_DO)),
    }
}

/// Everything the install would check, writing nothing: the install into a `NullTree`
/// (`pysfx_install::verify_contents`).
pub fn verify_all(payload: &mut Payload) -> Result<(), Failure> {
    Ok(pysfx_install::verify_contents(payload)?)
}

/// `--list`: the payload's entries, from an intact payload only (exit 3 otherwise, as
/// `--info`): a listing of a damaged one would show what the install refuses.
fn list() -> Result<(), Failure> {
    let mut payload = open_self()?;
    payload.verify()?;
    let path = payload.path().to_path_buf();
    let archive = payload.archive();
    let mut out = String::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|error| {
            Failure::new(
                code::CORRUPT,
                format!("{}: entry {index}: {error}", path.display()),
            )
        })?;
        out.push_str(&format!(
            "{:>12}  {}\n",
            entry.size(),
            escape_control(&String::from_utf8_lossy(entry.name_raw()))
        ));
    }
    print_stdout(&out)
}

/// `--info`: what the artifact holds, and with `--python` (or `$PYSFX_PYTHON`) what that
/// interpreter would get. An interpreter that cannot take it does not hide the rest: the
/// info is printed, with the reason, and the exit code is the install's (4).
fn info(cli: &Cli) -> Result<u8, Failure> {
    let mut payload = open_self()?;
    // What --info shows is only worth reading from an intact payload (exit 3 otherwise); the
    // same read gives the file's own digest.
    let file_sha256 = payload.verify_and_digest_file()?;
    let manifest = payload.manifest();
    let mut refused = None;
    let chosen = if cli.python.is_some() || std::env::var_os("PYSFX_PYTHON").is_some() {
        let chose = pysfx_venv::Interpreter::query(&cli.python())
            .map_err(Failure::from)
            .and_then(|interpreter| {
                crate::failure::set_python_version(interpreter.version());
                Ok((plan::choose(manifest, &interpreter)?, interpreter))
            });
        // Nothing is installed by --info: its messages need not say so.
        chose
            .map_err(|mut failure| {
                failure.message = failure.message.replace("; nothing was installed", "");
                refused = Some(failure);
            })
            .ok()
    } else {
        None
    };
    let code = match &refused {
        Some(failure) => {
            tracing::error!("{}", escape_control(&failure.message));
            failure.code
        }
        None => 0,
    };
    // The result is this run's report: a signal from now on is moot.
    crate::signals::report_or_wait();
    if cli.json {
        let mut object = serde_json::json!({
            "artifact": payload.path().to_string_lossy(),
            "payload_sha256": payload.digest(),
            "file_sha256": file_sha256,
            "app_version": manifest.app.version,
            "manifest": manifest,
        });
        if let Some((plan, interpreter)) = &chosen {
            object["python"] = serde_json::json!(interpreter.executable.to_string_lossy());
            object["python_version"] = serde_json::json!(interpreter.version());
            object["set"] = serde_json::json!(plan.set_name);
            object["wheels"] = serde_json::json!(plan
                .wheels
                .iter()
                .map(|wheel| wheel.filename.clone())
                .collect::<Vec<_>>());
            object["skipped"] = serde_json::json!(plan
                .skipped
                .iter()
                .map(|skipped| skipped.name.clone())
                .collect::<Vec<_>>());
            // Every tag the interpreter accepts, best first (packaging.tags.sys_tags() order).
            object["tags"] = serde_json::json!(interpreter
                .tags()
                .tags()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>());
        }
        if let (Some(failure), Some(fields)) = (&refused, object.as_object_mut()) {
            // The keys of any failed run's object (docs/operator-guide.md), besides the info.
            let failed = crate::output::failure_object(
                &failure.message,
                failure.code,
                None,
                Some(&cli.python()),
                0.0,
                crate::output::Done::default(),
            );
            for (key, value) in failed.as_object().into_iter().flatten() {
                fields.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        return print_stdout(&format!("{}\n", pysfx_format::json_text(&object, true)))
            .map(|()| code);
    }
    let mut out = format!(
        "artifact: {}\nfile sha256:    {file_sha256}\npayload sha256: {}\npacked by pysfx {}\napp:      {}{} ({} files, {} bytes)\nunpacked: {} bytes\n",
        escape_control(&payload.path().display().to_string()),
        payload.digest(),
        manifest.pysfx_version,
        manifest.app.name,
        manifest.app.version_suffix(),
        manifest.app.files,
        manifest.app.bytes,
        manifest.unpacked_bytes,
    );
    for set in &manifest.sets {
        let left_out = set
            .wheels
            .iter()
            .filter(|path| manifest.wheel(path).is_some_and(|wheel| wheel.from_base))
            .count();
        let thin = match left_out {
            0 => String::new(),
            n => format!(" ({n} left out, from the base release)"),
        };
        out.push_str(&format!(
            "set {}: {} wheel{}{thin}\n",
            set.name,
            set.wheels.len(),
            if set.wheels.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(line) = manifest.relies_on() {
        out.push_str(&format!("{line}\n"));
    }
    if !manifest.bootstrap.is_empty() {
        let count = manifest.bootstrap.len();
        let plural = if count == 1 { "" } else { "s" };
        out.push_str(&format!("bootstrap: {count} wheel{plural}\n"));
    }
    if let Some((plan, interpreter)) = &chosen {
        out.push_str(&plan.describe(interpreter));
    }
    if let Some(failure) = &refused {
        out.push_str(&format!("python: {}\n", failure.message));
    }
    print_stdout(&escape_lines(&out)).map(|()| code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(OsString::from))
    }

    fn run_of(line: &str) -> Cli {
        match parse_line(line) {
            Ok(Command::Run(cli)) => cli,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn installs_and_their_options() {
        let cli =
            run_of("-d /srv/r/1 --python /usr/bin/python3 --force --link /srv/cur --json -vv");
        assert_eq!(cli.destination, Some(PathBuf::from("/srv/r/1")));
        assert_eq!(cli.python.as_deref(), Some("/usr/bin/python3"));
        assert!(cli.force && cli.json && !cli.no_compile && !cli.quiet);
        assert_eq!(cli.link, Some(PathBuf::from("/srv/cur")));
        assert_eq!(cli.verbose, 2);
        let cli = run_of("--dest=/srv/r/2 --no-compile -q");
        assert_eq!(cli.destination, Some(PathBuf::from("/srv/r/2")));
        assert!(cli.no_compile && cli.quiet);
        assert_eq!(run_of("-d/x").destination, Some(PathBuf::from("/x")));
        assert_eq!(run_of("--dest=-x").destination, Some(PathBuf::from("-x")));
        assert!(run_of("--info --python python3.11 --json").info);
        assert!(run_of("--list").list);
        assert!(run_of("--verify --json").verify);
        assert_eq!(run_of("-d x --link l --keep 3").keep, Some(3));
        assert_eq!(
            run_of("--check r/1 --json").check,
            Some(PathBuf::from("r/1"))
        );
        assert_eq!(run_of("--status cur").status, Some(PathBuf::from("cur")));
        let cli = run_of("--activate r/1 --link cur --json");
        assert_eq!(cli.activate, Some(PathBuf::from("r/1")));
        assert_eq!(cli.link, Some(PathBuf::from("cur")));
    }

    #[test]
    fn help_wins_and_version_alone_is_the_version() {
        assert!(matches!(parse_line("--help"), Ok(Command::Help)));
        assert!(matches!(parse_line("-d x -h"), Ok(Command::Help)));
        assert!(matches!(parse_line("-V"), Ok(Command::Version)));
        assert!(matches!(
            parse_line("--version --json"),
            Ok(Command::Version)
        ));
        assert!(matches!(parse_line("--version --help"), Ok(Command::Help)));
        // Over every valid option; an unknown one is an error wherever it stands.
        assert!(matches!(parse_line("--info --list -h"), Ok(Command::Help)));
        for line in ["--help --bogus", "--bogus --help", "-h --nope=1"] {
            assert!(parse_line(line).is_err(), "{line}");
        }
    }

    /// `--version` is a mode of its own: with another one (an install above all), the run
    /// would report success and do nothing.
    #[test]
    fn version_with_another_mode_is_a_usage_error() {
        for (line, expected) in [
            (
                "-d x --python py --version",
                "-d DEST cannot be used with --version",
            ),
            ("--version -d x", "-d DEST cannot be used with --version"),
            ("--info --version", "--info cannot be used with --version"),
            ("--version --bogus", "--bogus"),
            // An install's options: a deploy command that says --version installs nothing.
            ("--version --force", "--force cannot be used with --version"),
            ("--link l --version", "--link cannot be used with --version"),
            (
                "--version --python p",
                "--python cannot be used with --version",
            ),
            (
                "--version --no-compile",
                "--no-compile cannot be used with --version",
            ),
        ] {
            let error = parse_line(line).expect_err(line);
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn usage_errors() {
        for (line, expected) in [
            ("", "nothing to do"),
            ("--json", "nothing to do"),
            ("--force", "nothing to do"),
            ("--bogus", "--bogus"),
            ("-x", "-x"),
            ("-d", "-d needs a value"),
            ("--python", "--python needs a value"),
            ("-d --json", "-d needs a value, not the option \"--json\""),
            ("--link --force -d x", "--link needs a value"),
            ("--python -v -d x", "--python needs a value"),
            ("--dest=", "-d needs a value, not an empty string"),
            ("-d x --python=", "--python needs a value"),
            ("--list --json", "--json goes with"),
            ("--sbom --json", "not with --sbom"),
            ("--sbom --info", "--info cannot be used with --sbom"),
            ("-d a -d b", "-d cannot be given twice"),
            ("-d a extra", "unexpected argument \"extra\""),
            ("extra", "(DEST goes after -d)"),
            ("--info --list", "--info cannot be used with --list"),
            ("-d x --verify", "-d DEST cannot be used with --verify"),
            ("--info --force", "--force goes with -d DEST"),
            ("--list --link l", "--link goes with -d DEST"),
            ("--verify --no-compile", "--no-compile goes with -d DEST"),
            ("-d x -v -q", "-v cannot be used with -q"),
            ("--force=yes -d x", "--force"),
            (
                "--check x --python p",
                "--python goes with -d DEST or --info",
            ),
            ("--list --python p", "not with --list"),
        ] {
            match parse_line(line) {
                Err(message) => assert!(message.contains(expected), "{line:?}: {message}"),
                Ok(other) => panic!("{line:?} parsed: {other:?}"),
            }
        }
    }

    #[test]
    fn paths_must_be_text() {
        use std::os::unix::ffi::OsStringExt;
        for option in ["-d", "--link"] {
            let args = vec![
                OsString::from("-d"),
                OsString::from("/srv/ok"),
                OsString::from(option),
                OsString::from_vec(b"/srv/bad\xff".to_vec()),
            ];
            let args = if option == "-d" {
                args[2..].to_vec()
            } else {
                args
            };
            match parse(args) {
                Err(message) => assert!(message.contains("not valid UTF-8"), "{message}"),
                Ok(other) => panic!("{option}: {other:?}"),
            }
        }
        match parse_line("-d a extra") {
            Err(message) => assert!(!message.contains("DEST goes after"), "{message}"),
            Ok(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_names_every_option() {
        let text = help("site.sfx");
        for option in [
            "--dest",
            "--python",
            "--force",
            "--link",
            "--no-compile",
            "--json",
            "--verbose",
            "--quiet",
            "--info",
            "--list",
            "--verify",
            "--sbom",
            "--keep",
            "--check",
            "--status",
            "--activate",
            "--help",
            "--version",
            "Exit codes",
        ] {
            assert!(text.contains(option), "{option} missing from --help");
        }
        assert!(text.contains("Usage: site.sfx -d DEST"));
    }
}
