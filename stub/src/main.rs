//! `pysfx-stub`: the extractor every pysfx artifact starts with. Run as `./site.sfx -d DEST`, it
//! checks its own payload, creates a virtualenv for the chosen Python in a temporary sibling of
//! DEST, installs the wheel set that fits that Python natively, writes the `.pth` hooks, and
//! renames the finished release into place.

mod cli;
mod extract;
mod failure;
mod install;
mod lock;
mod progress;
mod receipt;
mod signals;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::failure::Failure;

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            // A closed stdout (`--help | head`) is not an error worth a panic.
            let _ = error.print();
            if code == 2 && std::env::args().any(|arg| arg == "--json") {
                let message = error.to_string();
                let first = message.lines().next().unwrap_or("usage error");
                print_failure_json(first.trim_start_matches("error: "), 2, None, None, 0.0);
            }
            return ExitCode::from(code);
        }
    };
    init_logging(&cli);
    signals::set_json(cli.json);
    let json = cli.json;
    let destination = cli.destination.clone();
    let python = cli.python();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            tracing::error!("{}", failure.message);
            if json {
                print_failure_json(
                    &failure.message,
                    failure.code,
                    destination.as_deref(),
                    Some(&python),
                    started.elapsed().as_secs_f64(),
                );
            }
            ExitCode::from(failure.code)
        }
    }
}

/// The one JSON object of a failed `--json` run: SPEC's keys, nothing installed, and the error.
pub(crate) fn print_failure_json(
    message: &str,
    code: u8,
    destination: Option<&std::path::Path>,
    python: Option<&str>,
    seconds: f64,
) {
    let object = serde_json::json!({
        "changed": false,
        "dest": destination,
        "python": python,
        "python_version": null,
        "wheels_installed": 0,
        "files": 0,
        "bytes": 0,
        "seconds": seconds,
        "error": message,
        "exit_code": code,
    });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{object}");
}

/// Human logs go to stderr; `-q` keeps errors only, `-v` adds detail, `PYSFX_LOG` overrides.
fn init_logging(cli: &Cli) {
    use tracing::Level;
    let from_env = std::env::var("PYSFX_LOG").ok().and_then(|value| {
        match value.to_ascii_lowercase().as_str() {
            "error" => Some(Level::ERROR),
            "warn" => Some(Level::WARN),
            "info" => Some(Level::INFO),
            "debug" => Some(Level::DEBUG),
            "trace" => Some(Level::TRACE),
            _ => None,
        }
    });
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => from_env.unwrap_or(Level::INFO),
        (false, 1) => Level::DEBUG,
        (false, _) => Level::TRACE,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(ansi)
        .init();
}

/// Prints to stdout, treating a closed pipe as the end of output rather than an error.
pub(crate) fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::other(format!("cannot write to stdout: {error}"))),
    }
}
