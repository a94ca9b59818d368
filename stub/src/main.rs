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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            // A closed stdout (`--help | head`) is not an error worth a panic.
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli);
    let json = cli.json;
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            tracing::error!("{}", failure.message);
            if json {
                let object = serde_json::json!({
                    "error": failure.message,
                    "exit_code": failure.code,
                    "changed": false,
                });
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{object}");
            }
            ExitCode::from(failure.code)
        }
    }
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
