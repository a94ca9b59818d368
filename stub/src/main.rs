//! `pysfx-stub`: the extractor every pysfx artifact starts with. Run as `./site.sfx -d DEST`, it
//! checks its own payload, creates a virtualenv for the chosen Python in a temporary sibling of
//! DEST, installs the wheel set that fits that Python natively, writes the `.pth` hooks, and
//! renames the finished release into place.

mod artifact;
mod cli;
mod dest;
mod failure;
mod held;
mod install;
mod lock;
mod log;
mod output;
mod progress;
mod releases;
mod sbom;
mod settings;
mod signals;

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::output::print_stdout;

/// What `pysfx pack` looks for in a stub it is given: no other program carries it.
#[used]
static STUB_MARKER: [u8; 51] = *b"pysfx-stub marker: the extractor of pysfx artifacts";

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    limit_malloc_arenas(install::install_threads() + 1);
    // Asked before any thread starts (asking sets it for an instant).
    pysfx_tree::umask();
    // A file-size limit (`ulimit -f`) makes a write past it fail (EFBIG, exit 4, the tree
    // removed) rather than kill the run with SIGXFSZ, which would leave the tree and say
    // nothing; a SIGCHLD the parent ignored would make every child's exit unknowable.
    signals::set_dispositions();
    let program = std::env::args_os()
        .next()
        .map(|arg0| {
            std::path::Path::new(&arg0).file_name().map_or_else(
                || "pysfx-stub".into(),
                |name| name.to_string_lossy().into_owned(),
            )
        })
        .unwrap_or_else(|| "pysfx-stub".into());
    let json = std::env::args_os().any(|arg| arg == "--json");
    let parsed = match cli::parse(std::env::args_os().skip(1)) {
        // `--json` promises one object on stdout: the help text is none.
        Ok(Command::Help) if json => Err(
            "--json goes with -d DEST, --info, --verify, --check, --status, --activate or --version, not with --help"
                .to_string(),
        ),
        // Only an install and --info ask an interpreter.
        Ok(Command::Run(cli)) if cli.destination.is_some() || cli.info => {
            cli.check_python_variable().map(|()| Command::Run(cli))
        }
        parsed => parsed,
    };
    let cli = match parsed {
        Ok(Command::Run(cli)) => cli,
        Ok(Command::Help) => return exit_after_print(&cli::help(&program)),
        Ok(Command::Version) if json => return exit_after_print(&cli::version_json()),
        Ok(Command::Version) => return exit_after_print(&cli::version_text()),
        Err(message) => {
            let _ = std::io::stderr().write_all(cli::usage_error(&program, &message).as_bytes());
            if json {
                output::print_failure_json(&output::failure_object(
                    &message,
                    failure::code::USAGE,
                    None,
                    None,
                    0.0,
                    output::Done::default(),
                ));
            }
            return ExitCode::from(failure::code::USAGE);
        }
    };
    init_logging(&cli);
    let json = cli.json;
    // Failure reports name DEST as success does: absolute (for --check, --status and
    // --activate, the release or link given). Only an install names an interpreter.
    let installs = cli.destination.is_some();
    let destination = (cli.destination.as_ref())
        .or(cli.check.as_ref())
        .or(cli.activate.as_ref())
        .or(cli.status.as_ref())
        .map(|path| {
            // As the run itself names it (`-d .` is the directory, not `DIR/.`).
            dest::absolute_path(path, "DEST").unwrap_or_else(|_| {
                std::env::current_dir()
                    .map(|directory| directory.join(path))
                    .unwrap_or_else(|_| path.clone())
            })
        });
    let python = cli.python();
    // Only an install names an interpreter.
    let reported_python = if installs {
        python.clone()
    } else {
        String::new()
    };
    signals::set_failure_report(json, destination.clone(), reported_python);
    output::set_mode_fields(mode_fields(&cli, destination.as_deref()));
    // Every run says how a signal ended it: the signals are blocked before any thread starts,
    // once the logs, the report and what the run does are known.
    if let Some(activity) = cli.activity() {
        signals::set_activity(activity);
    }
    signals::install();
    match dest::check_open_files().and_then(|()| cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            signals::report_or_wait();
            // One line, whatever text from the artifact or the interpreter the message quotes.
            tracing::error!("{}", pysfx_format::escape_control(&failure.message));
            if json {
                output::print_failure_json(&output::failure_object(
                    &failure.message,
                    failure.code,
                    destination.as_deref(),
                    installs.then_some(python.as_str()),
                    started.elapsed().as_secs_f64(),
                    signals::done(),
                ));
            }
            ExitCode::from(failure.code)
        }
    }
}

/// The keys a failed `--check`, `--status` or `--activate` reports besides SPEC's, as its
/// success does: a monitor reading `.intact` or `.releases` finds them, saying nothing is
/// intact or served.
fn mode_fields(
    cli: &cli::Cli,
    named: Option<&std::path::Path>,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    let named = named.map(|path| path.to_string_lossy().into_owned());
    let fields = if cli.check.is_some() {
        json!({ "intact": false })
    } else if cli.status.is_some() {
        json!({ "link": named, "target": null, "releases": [] })
    } else if cli.activate.is_some() {
        let link = cli.link.as_ref().map(|link| {
            dest::absolute_path(link, "--link")
                .unwrap_or_else(|_| link.clone())
                .to_string_lossy()
                .into_owned()
        });
        json!({ "link": link })
    } else {
        json!({})
    };
    match fields {
        serde_json::Value::Object(fields) => fields,
        _ => serde_json::Map::new(),
    }
}

/// Caps glibc's malloc arenas at one per install thread and one more, before any thread
/// starts. By itself glibc gives a thread that finds its arena locked another one, up to
/// eight per core, and each arena keeps what was freed into it: over five installs of the
/// popular corpus with pack-time byte-code (2 cores) the peak RSS varied from 27.8 to 30.9
/// MiB for the same work. With two arenas it was 25.2-25.6 MiB, in the same time (one arena
/// was 7 % slower). The one more: the calling thread is one of a pool's workers
/// ([`pysfx_format::on_threads`]) and keeps the main arena, and a thread that lives through
/// the run (the signal receiver) may hold another; with arenas only for the install threads,
/// glibc handed each new worker one of those two in turn, and half the pools ran their two
/// workers on the main arena's one lock (2,000 futex calls in an install of the popular
/// corpus instead of 200, and about 9 % more wall time for the same CPU). The peak RSS with
/// the third arena: 26.3-27.1 MiB instead of 25.7-26.1.
///
/// Under an address-space limit (`ulimit -v`) one arena: each other one reserves 64 MiB of
/// address space, which counts against the limit, and an allocation that then fails aborts
/// the run (exit 134, its tree left) where the main arena had room.
#[allow(unsafe_code)]
fn limit_malloc_arenas(arenas: usize) {
    let arenas = match dest::address_space_limit().is_some() {
        true => 1,
        false => std::ffi::c_int::try_from(arenas).unwrap_or(8),
    };
    // SAFETY: mallopt only sets a parameter of the allocator, which reads it when it next
    // makes an arena; it touches no memory the program owns. glibc has had M_ARENA_MAX since
    // 2.10.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, arenas);
    }
}

/// Prints `--help` or `--version` text; a closed stdout is not an error.
fn exit_after_print(text: &str) -> ExitCode {
    match print_stdout(text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Human logs go to stderr; `-q` keeps errors only, `-v` adds detail, `PYSFX_LOG` overrides.
fn init_logging(cli: &Cli) {
    use tracing::Level;
    // (Not text is not a level either: warned of below.)
    let setting = std::env::var_os("PYSFX_LOG")
        .map(|value| value.to_string_lossy().into_owned())
        .filter(|value| !value.is_empty());
    let from_env = setting
        .as_deref()
        .and_then(|value| match value.to_ascii_lowercase().as_str() {
            "error" => Some(Level::ERROR),
            "warn" => Some(Level::WARN),
            "info" => Some(Level::INFO),
            "debug" => Some(Level::DEBUG),
            "trace" => Some(Level::TRACE),
            _ => None,
        });
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => from_env.unwrap_or(Level::INFO),
        (false, 1) => Level::DEBUG,
        (false, _) => Level::TRACE,
    };
    let ansi =
        progress::fancy_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing::subscriber::set_global_default(log::StderrLog::new(level, ansi));
    if setting.is_some() && from_env.is_none() {
        tracing::warn!("PYSFX_LOG is not one of error, warn, info, debug, trace; ignoring it");
    }
}
