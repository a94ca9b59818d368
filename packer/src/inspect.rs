//! `pysfx inspect` and `pysfx verify`: read an artifact without running it.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{anyhow, Context};
use pysfx_format::{Payload, Section};
use pysfx_plan::PlanError;
use pysfx_venv::Interpreter;
use sha2::{Digest, Sha256};

use crate::{InspectArgs, VerifyArgs};

/// Exit code for a corrupt artifact, as the stub uses it.
const CORRUPT: u8 = 3;

type Outcome = Result<(), (u8, anyhow::Error)>;

fn print(text: &str) -> Outcome {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err((1, anyhow!("cannot write to stdout: {error}")))
        }
        _ => Ok(()),
    }
}

pub fn inspect(args: &InspectArgs) -> Outcome {
    let payload = Payload::open(&args.artifact).map_err(|error| (CORRUPT, error.into()))?;
    let manifest = payload.manifest();
    let stub_bytes = payload.located().trailer.payload_offset;
    // A dry run of the stub's choice for an interpreter.
    let plan = match &args.python {
        Some(python) => {
            let interpreter = Interpreter::query(python).map_err(|error| (4, error.into()))?;
            let plan = pysfx_plan::choose(manifest, &interpreter).map_err(|error| {
                let code = match error {
                    PlanError::NoCompatibleWheel(_) => 4,
                    PlanError::BadManifest(_) => CORRUPT,
                };
                (code, anyhow!(error))
            })?;
            Some((interpreter, plan))
        }
        None => None,
    };
    if args.json {
        let mut object = serde_json::json!({
            "artifact": args.artifact,
            "sha256": payload.digest(),
            "size": payload.located().file_len,
            "stub_bytes": stub_bytes,
            "manifest": manifest,
        });
        if let Some((interpreter, plan)) = &plan {
            object["python"] = serde_json::json!(interpreter.executable);
            object["python_version"] = serde_json::json!(interpreter.version());
            object["set"] = serde_json::json!(plan.set_name);
            object["wheels"] =
                serde_json::json!(plan.wheels.iter().map(|w| &w.filename).collect::<Vec<_>>());
            object["skipped"] =
                serde_json::json!(plan.skipped.iter().map(|s| &s.name).collect::<Vec<_>>());
        }
        return print(&format!("{object:#}\n"));
    }
    let by_path: HashMap<&str, _> = manifest
        .wheels
        .iter()
        .map(|w| (w.path.as_str(), w))
        .collect();
    let mut out = format!(
        "artifact:  {}\nsize:      {} bytes (stub {} bytes)\nsha256:    {}\npysfx:     {}\n",
        args.artifact.display(),
        payload.located().file_len,
        stub_bytes,
        payload.digest(),
        manifest.pysfx_version,
    );
    match manifest.created {
        Some(created) => out.push_str(&format!("built:     {created} (seconds since the epoch)\n")),
        None => out.push_str("built:     not recorded (set SOURCE_DATE_EPOCH when packing)\n"),
    }
    if let Some(glibc) = &manifest.stub_glibc {
        out.push_str(&format!("stub glibc: {glibc}\n"));
    }
    out.push_str(&format!(
        "app:       {}/ ({} files, {} bytes)\nstatic:    {}\nunpacked:  {} bytes\n",
        manifest.app.name,
        manifest.app.files,
        manifest.app.bytes,
        if manifest.static_dirs.is_empty() {
            "none".to_string()
        } else {
            manifest.static_dirs.join(", ")
        },
        manifest.unpacked_bytes,
    ));
    for set in &manifest.sets {
        let target = set
            .target
            .as_ref()
            .map(|t| {
                format!(
                    " (CPython {}{}{})",
                    t.full_version.as_deref().unwrap_or(&t.python_version),
                    t.abi
                        .as_deref()
                        .map(|a| format!(", {a}"))
                        .unwrap_or_default(),
                    t.platform
                        .as_deref()
                        .map(|p| format!(", {p}"))
                        .unwrap_or_default(),
                )
            })
            .unwrap_or_else(|| " (any target)".to_string());
        out.push_str(&format!(
            "set {}{}: {} wheels\n",
            set.name,
            target,
            set.wheels.len()
        ));
        for path in &set.wheels {
            if let Some(wheel) = by_path.get(path.as_str()) {
                out.push_str(&format!(
                    "  {:<40} {:>10}  {}\n",
                    format!("{} {}", wheel.name, wheel.version),
                    wheel.size,
                    wheel.filename
                ));
            }
        }
    }
    if !manifest.bootstrap.is_empty() {
        out.push_str(&format!("bootstrap: {} wheels\n", manifest.bootstrap.len()));
        for path in &manifest.bootstrap {
            if let Some(wheel) = by_path.get(path.as_str()) {
                out.push_str(&format!("  {}\n", wheel.filename));
            }
        }
    }
    if let Some((interpreter, plan)) = &plan {
        out.push_str(&format!(
            "{} (CPython {}) would get set {}:\n",
            interpreter.executable.display(),
            interpreter.version(),
            plan.set_name
        ));
        for wheel in &plan.wheels {
            out.push_str(&format!("  {}\n", wheel.filename));
        }
        for skipped in &plan.skipped {
            out.push_str(&format!(
                "  (skipped {}: Requires-Python {})\n",
                skipped.name, skipped.requires_python
            ));
        }
    }
    print(&out)
}

pub fn verify(args: &VerifyArgs) -> Outcome {
    let corrupt = |error: anyhow::Error| (CORRUPT, error);
    let mut payload = Payload::open(&args.artifact).map_err(|error| corrupt(error.into()))?;
    payload.verify().map_err(|error| corrupt(error.into()))?;
    let path = args.artifact.display().to_string();
    let archive = payload.archive();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .with_context(|| format!("{path}: entry {index}"))
            .map_err(corrupt)?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        std::io::copy(&mut entry, &mut std::io::sink())
            .with_context(|| format!("{path}: {name}"))
            .map_err(corrupt)?;
    }
    // The names the stub would refuse.
    let archive = payload.archive();
    if archive.has_duplicate_names() {
        return Err(corrupt(anyhow!("{path}: duplicate entries")));
    }
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .with_context(|| format!("{path}: entry {index}"))
            .map_err(corrupt)?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        pysfx_wheel::validate_member_name(&name)
            .map_err(|reason| corrupt(anyhow!("{path}: unsafe entry {name:?}: {reason}")))?;
        if entry.is_symlink() {
            return Err(corrupt(anyhow!(
                "{path}: unsafe entry {name:?}: symbolic link"
            )));
        }
    }
    let manifest = payload.manifest().clone();
    for wheel in &manifest.wheels {
        let (start, len) = payload
            .stored_range(&wheel.path)
            .map_err(|error| corrupt(error.into()))?;
        let filename: pysfx_wheel::WheelFilename = wheel
            .filename
            .parse()
            .map_err(|error: pysfx_wheel::WheelError| corrupt(error.into()))?;
        pysfx_wheel::verify_wheel(Section::new(payload.file(), start, len), &filename)
            .map_err(|error| corrupt(anyhow!("{path}: {error}")))?;
    }
    for wheel in &manifest.wheels {
        let (start, len) = payload
            .stored_range(&wheel.path)
            .map_err(|error| corrupt(error.into()))?;
        let mut section = Section::new(payload.file(), start, len);
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = section
                .read(&mut buffer)
                .with_context(|| format!("{path}: {}", wheel.path))
                .map_err(corrupt)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        let actual = pysfx_format::hex(&hasher.finalize());
        if actual != wheel.sha256 {
            return Err(corrupt(anyhow!(
                "{path}: {} has sha256 {actual}, the manifest says {}",
                wheel.path,
                wheel.sha256
            )));
        }
    }
    for set in &manifest.sets {
        for wheel in set.wheels.iter().chain(&manifest.bootstrap) {
            if manifest.wheel(wheel).is_none() {
                return Err(corrupt(anyhow!(
                    "{path}: set {} names a wheel the manifest does not describe: {wheel}",
                    set.name
                )));
            }
        }
    }
    print(&format!("OK {path} sha256={}\n", payload.digest()))
}
