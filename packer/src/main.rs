//! `pysfx`: packs a Python web application and its wheels into one self-extracting executable
//! (`pack`), reads such an artifact without running it (`inspect`, `verify`), and makes the
//! minisign keys that sign artifacts (`keygen`).

mod appfiles;
mod bytecode;
mod collect;
mod elf;
mod floor;
mod inspect;
mod interrupt;
mod marshal;
mod pack;
mod pinned;
mod pipfail;
mod requirements;
mod sbom;
mod signing;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pysfx",
    version,
    about = "Pack a Python web app and its wheels into one self-extracting executable"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More detail on stderr
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build an artifact
    Pack(Box<PackArgs>),
    /// Show an artifact's manifest
    Inspect(InspectArgs),
    /// Check an artifact's integrity (digest, every entry, every wheel) and, with --pubkey, its
    /// signature
    Verify(VerifyArgs),
    /// Make a minisign key pair for `pack --sign`: NAME.key (secret) and NAME.pub
    Keygen(KeygenArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print a man page (roff): pysfx(1), or a subcommand's (`pysfx man pack` prints
    /// pysfx-pack(1)); --all DIR writes every page into DIR
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The page: pack, inspect, verify, keygen, completions or man (also spelled pysfx-pack, …)
    /// [default: pysfx(1) itself]
    #[arg(value_name = "PAGE", conflicts_with = "all")]
    pub page: Option<String>,
    /// Write every page, pysfx.1 and pysfx-SUBCOMMAND.1, into DIR (created if missing)
    #[arg(long, value_name = "DIR")]
    pub all: Option<PathBuf>,
}

/// Arguments of `pysfx pack` (SPEC.md, "Packer").
#[derive(Debug, Args)]
pub struct PackArgs {
    /// The project code, stored as <name>/
    #[arg(long, value_name = "DIR")]
    pub app: PathBuf,
    /// Name of the app directory in the release [default: the folder's name as given, not a
    /// link's target's]
    #[arg(long, value_name = "NAME")]
    pub app_name: Option<String>,
    /// The app's version, recorded in the manifest and the receipt [default: `git describe
    /// --always --dirty` when --app is in a git work tree, else none]
    #[arg(long, value_name = "TEXT")]
    pub app_version: Option<String>,
    /// Leave out the files and directories this gitignore-style glob matches, relative to
    /// --app and to each --static directory (repeatable); .git, .hg, .svn, __pycache__ and
    /// *.pyc are always left out
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Prebuilt .whl files, taken as they are: without -r, one wheel set for every target; with
    /// -r, offered to pip as --find-links and added to every set they fit (repeatable)
    #[arg(long, value_name = "DIR")]
    pub wheels: Vec<PathBuf>,
    /// Requirements to collect with pip (repeatable): with --python or --target, else with
    /// `python3 -m pip wheel`
    #[arg(short = 'r', long = "requirement", value_name = "FILE")]
    pub requirements: Vec<PathBuf>,
    /// Collect -r with `PY -m pip wheel`: one wheel set per interpreter, byte-compiled with it;
    /// without -r, the --wheels set must install on PY, and is byte-compiled (with the
    /// bootstrap wheels) for it (repeatable)
    #[arg(long, value_name = "PY")]
    pub python: Vec<String>,
    /// Collect -r as binary wheels for another Python/platform, e.g. cp36-manylinux2014_x86_64 (repeatable)
    #[arg(long, value_name = "TARGET")]
    pub target: Vec<String>,
    /// A static directory, stored as static.in/N/ (repeatable)
    #[arg(long = "static", value_name = "DIR")]
    pub static_dirs: Vec<PathBuf>,
    /// Do not byte-compile at pack time (the artifact then compiles at install)
    #[arg(long)]
    pub no_compile: bool,
    /// Leave out the bootstrap wheels (pip, setuptools)
    #[arg(long)]
    pub no_bootstrap: bool,
    /// Take the bootstrap wheels from this directory instead of collecting them with pip
    /// (repeatable) [default: the directories in $PYSFX_BOOTSTRAP_WHEELS, `:`-separated]
    #[arg(long, value_name = "DIR")]
    pub bootstrap_wheels: Vec<PathBuf>,
    /// The pysfx-stub to start the artifact with [default: pysfx-stub next to pysfx]
    #[arg(long, value_name = "PATH")]
    pub stub: Option<PathBuf>,
    /// The oldest glibc the artifact must run on (2.17 = CentOS 7): a stub that needs a newer
    /// one is refused, and so is a wheel whose platform tag does (manylinux_2_28)
    #[arg(long, value_name = "VERSION", default_value = "2.17")]
    pub max_glibc: String,
    /// Sign the artifact with this minisign secret key (from `pysfx keygen`) into OUT.minisig;
    /// an encrypted key's password comes from PYSFX_SIGN_PASSWORD, else the terminal
    #[arg(long, value_name = "SECRET_KEY")]
    pub sign: Option<PathBuf>,
    /// Make a thin artifact: leave out every wheel OLD.sfx (an artifact of the same app)
    /// already carries, byte for byte; at install they come from a release of OLD beside DEST.
    /// A wheel whose RECORD lacks a sha256 hash or size for a file is carried whole
    #[arg(long, value_name = "OLD.sfx")]
    pub thin_from: Option<PathBuf>,
    /// The artifact to write
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
}

impl PackArgs {
    /// Where the bootstrap wheels come from: `--bootstrap-wheels`, else `$PYSFX_BOOTSTRAP_WHEELS`
    /// (a CI job's default: empty parts and an empty variable name none), none with
    /// `--no-bootstrap`.
    pub fn bootstrap_dirs(&self) -> Vec<PathBuf> {
        if self.no_bootstrap {
            return Vec::new();
        }
        if !self.bootstrap_wheels.is_empty() {
            return self.bootstrap_wheels.clone();
        }
        let variable = std::env::var_os("PYSFX_BOOTSTRAP_WHEELS").unwrap_or_default();
        std::env::split_paths(&variable)
            .filter(|path| !path.as_os_str().is_empty())
            .collect()
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    pub artifact: PathBuf,
    /// Print the manifest as JSON
    #[arg(long, conflicts_with_all = ["sbom", "requirements"])]
    pub json: bool,
    /// Print the artifact's CycloneDX 1.5 SBOM (JSON): the app, and every wheel of every set
    /// with its purl and SHA-256; with --python PY, the SBOM a release installed by PY gets
    #[arg(long, conflicts_with_all = ["requirements"])]
    pub sbom: bool,
    /// Print a wheel set as `name==version --hash=sha256:…` lines (for pip-audit
    /// --require-hashes): the one set, or the set and wheels --python PY gets
    #[arg(long)]
    pub requirements: bool,
    /// Also show which wheel set and wheels this interpreter would get (nothing is written)
    #[arg(long, value_name = "PY")]
    pub python: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub artifact: PathBuf,
    /// Also check ARTIFACT.minisig with this minisign public key; repeatable (key rotation):
    /// the key whose ID the signature names is used. A bad or missing signature is exit 3
    #[arg(long, value_name = "KEY.pub")]
    pub pubkey: Vec<PathBuf>,
    /// The signature to check with --pubkey [default: ARTIFACT.minisig]
    #[arg(long, value_name = "FILE", requires = "pubkey")]
    pub signature: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write NAME.key (the secret key, mode 0600) and NAME.pub (the public key); neither may
    /// exist
    #[arg(short, long, value_name = "NAME")]
    pub output: PathBuf,
    /// Leave the secret key unencrypted (for a CI secrets store); otherwise it is encrypted
    /// with a password from PYSFX_SIGN_PASSWORD, else typed on the terminal
    #[arg(long)]
    pub unencrypted: bool,
}

/// A mistake in the command line that clap cannot see (an output that would overwrite an
/// input, a `--target` no artifact can install): exit 2, as clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// An artifact that another command reads (`pack --thin-from OLD`) is unreadable or corrupt:
/// the same message and exit code `pysfx verify OLD` gives (3 corrupt, 4 unreadable).
#[derive(Debug)]
pub struct ArtifactError {
    code: u8,
    message: String,
}

impl ArtifactError {
    /// What `pysfx verify` says of an artifact it cannot open or whose payload is corrupt.
    pub fn format(error: pysfx_format::FormatError) -> Self {
        ArtifactError {
            code: artifact_error_code(&error),
            message: error.to_string(),
        }
    }

    /// What `pysfx verify` says of an artifact whose contents it refuses, with its exit code.
    pub fn refused(code: u8, error: &anyhow::Error) -> Self {
        ArtifactError {
            code,
            message: format!("{error:#}"),
        }
    }

    /// The exit code `pysfx verify` gives for this error.
    pub fn code(&self) -> u8 {
        self.code
    }
}

impl std::fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArtifactError {}

/// The exit code of an artifact that cannot be opened or read: 4 when the file cannot be read
/// (missing, no permission: this machine cannot give it, as the stub's 4 for what the machine
/// cannot take), 3 when it is corrupt.
pub fn artifact_error_code(error: &pysfx_format::FormatError) -> u8 {
    match error {
        pysfx_format::FormatError::Io { .. } => 4,
        _ => 3,
    }
}

/// Colour only where it is wanted: not with `NO_COLOR` set to anything (no-color.org) nor on a
/// `TERM=dumb` terminal; the stub follows the same rule.
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
        && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
}

/// `pysfx man`: one page on stdout, or every page into a directory.
fn man(args: &ManArgs) -> Result<(), (u8, anyhow::Error)> {
    // Each page's footer names pysfx's version, a subcommand's too; but only `pysfx` itself
    // takes `-V`/`--version`, so no subcommand's page lists it.
    let mut command = Cli::command()
        .disable_help_subcommand(true)
        .mut_subcommands(|sub| {
            sub.version(env!("CARGO_PKG_VERSION"))
                .disable_version_flag(true)
        });
    command.build();
    if let Some(directory) = &args.all {
        return std::fs::create_dir_all(directory)
            .and_then(|()| clap_mangen::generate_to(command, directory))
            .map_err(|error| {
                (
                    1,
                    anyhow::anyhow!(
                        "cannot write the man pages into {}: {error}",
                        directory.display()
                    ),
                )
            });
    }
    let page = match &args.page {
        None => command,
        Some(page) => {
            let name = page.strip_prefix("pysfx-").unwrap_or(page);
            let name = name.strip_suffix(".1").unwrap_or(name);
            let found = command
                .get_subcommands()
                .find(|sub| sub.get_name() == name)
                .cloned();
            match found {
                Some(sub) => sub,
                None => {
                    let pages: Vec<String> = command
                        .get_subcommands()
                        .map(|sub| sub.get_name().to_string())
                        .collect();
                    return Err((
                        2,
                        anyhow::anyhow!(
                            "no man page {page:?}; there are pysfx and {}",
                            pages.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    match clap_mangen::Man::new(page).render(&mut std::io::stdout()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err((1, anyhow::anyhow!("cannot write the man page: {error}")))
        }
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    interrupt::install();
    let colour = if colour_allowed() {
        clap::ColorChoice::Auto
    } else {
        clap::ColorChoice::Never
    };
    let cli = match Cli::command()
        .color(colour)
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => {
            let _ = error.print();
            return ExitCode::from(2);
        }
        // `--help` and `--version`: printed to stdout, which may fail (a full disk, as
        // `/dev/full`): exit 1 then, as for any output that cannot be written; a reader that
        // has gone (`| head`) is no failure.
        Err(error) => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            let styled = error.render();
            let text = match std::io::IsTerminal::is_terminal(&stdout) && colour_allowed() {
                true => styled.ansi().to_string(),
                false => styled.to_string(),
            };
            return match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(failure) if failure.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: cannot write to stdout: {failure}");
                    ExitCode::from(1)
                }
                _ => ExitCode::SUCCESS,
            };
        }
    };
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::INFO,
        (false, 1) => tracing::Level::DEBUG,
        (false, _) => tracing::Level::TRACE,
    };
    // Each log line escaped, whatever path or name it quotes (an `-o` given as `$'a\nb'`): a
    // line break or another control character shows as `\n`, never starts a line of its own.
    let escaped = tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        let text = pysfx_format::escape_control(&text);
        match field.name() {
            "message" => write!(writer, "{text}"),
            name => write!(writer, " {name}={text}"),
        }
    });
    tracing_subscriber::fmt()
        .fmt_fields(escaped)
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && colour_allowed())
        .init();
    let result = match cli.command {
        Command::Pack(args) => pack::run(&args).map_err(|error| {
            let code = if error.downcast_ref::<UsageError>().is_some() {
                2
            } else if let Some(artifact) = error.downcast_ref::<ArtifactError>() {
                artifact.code()
            } else {
                1
            };
            (code, error)
        }),
        Command::Inspect(args) => inspect::inspect(&args),
        Command::Verify(args) => inspect::verify(&args),
        Command::Keygen(args) => signing::keygen(&args.output, args.unencrypted).map_err(|error| {
            let code = if error.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            };
            (code, error)
        }),
        Command::Completions { shell } => {
            // Made in memory first: clap_complete panics when its writer fails (a full disk).
            let mut command = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "pysfx", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err((1, anyhow::anyhow!("cannot write the completions: {error}")))
                }
                _ => Ok(()),
            }
        }
        Command::Man(args) => man(&args),
    };
    // A failure a signal caused (pip stopped by it) is the signal's to report, once its
    // handler has removed what the pack made.
    interrupt::checkpoint();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, error)) => {
            let mut message = format!("error: {error}");
            for cause in error.chain().skip(1) {
                // Library errors already include their source in their own text.
                let cause = cause.to_string();
                if !message.contains(&cause) {
                    message.push_str(&format!(": {cause}"));
                }
            }
            // Paths and names in it come from the inputs (its line breaks are its own: a hint,
            // a list; a name's are escaped where it is named, as `appfiles` does, and so is
            // each argument's: a path given as `$'a\nb'` does not break the line).
            for argument in std::env::args_os().skip(1) {
                let argument = argument.to_string_lossy();
                let value = match argument.split_once('=') {
                    Some((flag, value)) if flag.starts_with("--") => value,
                    _ => &argument,
                };
                if value.chars().any(char::is_control) {
                    message = message.replace(value, &pysfx_format::escape_control(value));
                }
            }
            eprintln!("{}", pysfx_format::escape_lines(&message));
            ExitCode::from(code)
        }
    }
}
