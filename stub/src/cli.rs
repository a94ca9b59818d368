//! Command line of the artifact (SPEC.md, "Stub").

use std::path::PathBuf;

use clap::{ArgGroup, Parser};
use pysfx_format::Payload;

use crate::failure::{code, Failure};
use crate::{install, print_stdout};
use pysfx_plan as plan;

#[derive(Debug, Parser)]
#[command(
    name = "pysfx-stub",
    version,
    about = "Install this pysfx artifact: unpack the app, create a virtualenv and install its wheels",
    after_help = "Exit codes: 0 installed or already installed, 1 failed, 2 usage, 3 artifact corrupt or unsafe,\n4 this machine can't take it (interpreter, wheels, space, permission), 5 DEST conflict or locked.",
    group(ArgGroup::new("mode").args(["destination", "info", "list", "verify"]).required(true))
)]
pub struct Cli {
    /// Release directory to create (missing parents are created)
    #[arg(short = 'd', long = "dest", value_name = "DEST")]
    pub destination: Option<PathBuf>,
    /// Interpreter for the venv: a path or a name on PATH [default: $PYSFX_PYTHON, else python3]
    #[arg(long, value_name = "PY")]
    pub python: Option<String>,
    /// Replace DEST if it holds something else (atomically)
    #[arg(long, requires = "destination")]
    pub force: bool,
    /// After success, atomically point this symlink at DEST
    #[arg(long, value_name = "LINK", requires = "destination")]
    pub link: Option<PathBuf>,
    /// Do not byte-compile the installed packages
    #[arg(long, requires = "destination")]
    pub no_compile: bool,
    /// Print one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// More detail on stderr (-vv for more)
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Errors only on stderr
    #[arg(short, long)]
    pub quiet: bool,
    /// Show what this artifact holds (and, with --python, what that interpreter would get)
    #[arg(long)]
    pub info: bool,
    /// List the payload's entries
    #[arg(long)]
    pub list: bool,
    /// Check the payload's integrity and exit
    #[arg(long)]
    pub verify: bool,
}

impl Cli {
    /// The interpreter to use: `--python`, else `$PYSFX_PYTHON`, else `python3`.
    pub fn python(&self) -> String {
        self.python
            .clone()
            .or_else(|| std::env::var("PYSFX_PYTHON").ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "python3".to_string())
    }
}

/// The artifact this process runs from.
pub fn open_self() -> Result<Payload, Failure> {
    let path = std::env::current_exe()
        .map_err(|error| Failure::other(format!("cannot find the running artifact: {error}")))?;
    Ok(Payload::open(&path)?)
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    if cli.destination.is_none() {
        let install_only = [
            (cli.force, "--force"),
            (cli.link.is_some(), "--link"),
            (cli.no_compile, "--no-compile"),
        ];
        if let Some((_, flag)) = install_only.iter().find(|(given, _)| *given) {
            return Err(Failure::new(
                code::USAGE,
                format!(
                    "{flag} goes with -d DEST (an install), not with --info, --list or --verify"
                ),
            ));
        }
    }
    if cli.list {
        return list();
    }
    if cli.verify {
        let mut payload = open_self()?;
        verify_all(&mut payload)?;
        if cli.json {
            print_stdout(&format!(
                "{}\n",
                serde_json::json!({"ok": true, "sha256": payload.digest()})
            ))?;
        } else {
            print_stdout(&format!(
                "OK {} sha256={}\n",
                payload.path().display(),
                payload.digest()
            ))?;
        }
        return Ok(());
    }
    if cli.info {
        return info(&cli);
    }
    match &cli.destination {
        Some(_) => install::run(&cli),
        None => Err(Failure::new(code::USAGE, "nothing to do: give -d DEST")),
    }
}

/// Everything the install would check, writing nothing (`pysfx_plan::verify_contents`).
pub fn verify_all(payload: &mut Payload) -> Result<(), Failure> {
    plan::verify_contents(payload).map_err(|message| Failure::new(code::CORRUPT, message))
}

fn list() -> Result<(), Failure> {
    let mut payload = open_self()?;
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
            String::from_utf8_lossy(entry.name_raw())
        ));
    }
    print_stdout(&out)
}

fn info(cli: &Cli) -> Result<(), Failure> {
    let payload = open_self()?;
    let manifest = payload.manifest();
    let chosen = if cli.python.is_some() || std::env::var_os("PYSFX_PYTHON").is_some() {
        let interpreter = pysfx_venv::Interpreter::query(&cli.python())?;
        Some((plan::choose(manifest, &interpreter)?, interpreter))
    } else {
        None
    };
    if cli.json {
        let mut object = serde_json::json!({
            "artifact": payload.path(),
            "sha256": payload.digest(),
            "manifest": manifest,
        });
        if let Some((plan, interpreter)) = &chosen {
            object["python"] = serde_json::json!(interpreter.executable);
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
        return print_stdout(&format!("{object:#}\n"));
    }
    let mut out = format!(
        "artifact: {}\nsha256:   {}\npacked by pysfx {}\napp:      {} ({} files, {} bytes)\nunpacked: {} bytes\n",
        payload.path().display(),
        payload.digest(),
        manifest.pysfx_version,
        manifest.app.name,
        manifest.app.files,
        manifest.app.bytes,
        manifest.unpacked_bytes,
    );
    for set in &manifest.sets {
        out.push_str(&format!("set {}: {} wheels\n", set.name, set.wheels.len()));
    }
    if !manifest.bootstrap.is_empty() {
        out.push_str(&format!("bootstrap: {} wheels\n", manifest.bootstrap.len()));
    }
    if let Some((plan, interpreter)) = &chosen {
        out.push_str(&format!(
            "{} (Python {}) would get set {}:\n",
            interpreter.executable.display(),
            interpreter.version(),
            plan.set_name
        ));
        for wheel in &plan.wheels {
            out.push_str(&format!("  {}\n", wheel.filename));
        }
    }
    print_stdout(&out)
}
