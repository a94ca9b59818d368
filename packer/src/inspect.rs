//! `pysfx inspect` and `pysfx verify`: read an artifact without running it.

use std::collections::HashMap;

use anyhow::anyhow;
use pysfx_format::{Manifest, Payload, ThinBase, WheelEntry};
use pysfx_plan::PlanError;
use pysfx_venv::Interpreter;
use pysfx_wheel::WheelFilename;

use crate::elf::GlibcVersion;
use crate::signing::{self, Refusal};
use crate::{artifact_error_code, InspectArgs, VerifyArgs};
use crate::{floor, pinned, sbom};

/// Exit code for a corrupt artifact, as the stub uses it.
const CORRUPT: u8 = 3;
/// Exit code for what this machine cannot do (an artifact it cannot read, an interpreter it
/// lacks), as the stub's 4 for what the machine cannot take.
const UNREADABLE: u8 = 4;

/// Opens the artifact: a file that cannot be read is exit 4, anything else wrong with it 3.
fn open(path: &std::path::Path) -> Result<Payload, (u8, anyhow::Error)> {
    Payload::open(path).map_err(|error| (artifact_error_code(&error), error.into()))
}

/// Checks the payload digest while reading the whole file once for its own digest: a corrupt
/// artifact is exit 3, whatever its manifest says. Returns the file's SHA-256.
fn file_digest(payload: &mut Payload) -> Result<String, (u8, anyhow::Error)> {
    payload
        .verify_and_digest_file()
        .map_err(|error| (artifact_error_code(&error), error.into()))
}

/// The exit code of a failed verify: the artifact's fault is 3, the machine's 4.
fn install_code(error: &pysfx_install::InstallError) -> u8 {
    match error.fault() {
        pysfx_install::Fault::Content => CORRUPT,
        pysfx_install::Fault::Machine => UNREADABLE,
        pysfx_install::Fault::Other => 1,
    }
}

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
    let mut payload = open(&args.artifact)?;
    let file_sha256 = file_digest(&mut payload)?;
    if let (true, Some(python)) = (args.sbom, &args.python) {
        let (_, plan) = dry_run(payload.manifest(), python)?;
        return print_release_sbom(&mut payload, &plan);
    }
    if args.sbom {
        return print_sbom(&mut payload);
    }
    if args.requirements && args.python.is_none() {
        return print_requirements(&payload, None);
    }
    let manifest = payload.manifest();
    let stub_bytes = payload.located().trailer.payload_offset;
    let plan = match &args.python {
        Some(python) => Some(dry_run(manifest, python)?),
        None => None,
    };
    if let (true, Some((_, plan))) = (args.requirements, &plan) {
        return print_requirements(&payload, Some(plan));
    }
    let glibc = glibc_needed(manifest);
    if args.json {
        return print_json(args, &payload, &file_sha256, &glibc, plan.as_ref());
    }
    let mut out = format!(
        "artifact:  {}\nsize:      {} bytes (stub {} bytes)\nfile sha256:    {file_sha256} \
         (the whole file, as sha256sum prints it)\npayload sha256: {} (the payload digest, \
         checked)\npysfx:     {}\n",
        pysfx_format::escape_control(&args.artifact.display().to_string()),
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
    if let Some(digest) = &manifest.stub_sha256 {
        out.push_str(&format!("stub sha256: {digest}\n"));
    }
    out.push_str(&format!(
        "app:       {}/{} ({} files, {} bytes)\nstatic:    {}\nunpacked:  {} bytes\n",
        manifest.app.name,
        manifest.app.version_suffix(),
        manifest.app.files,
        manifest.app.bytes,
        if manifest.static_dirs.is_empty() {
            "none".to_string()
        } else {
            manifest.static_dirs.join(", ")
        },
        manifest.unpacked_bytes,
    ));
    if let Some(base) = &manifest.thin_from {
        out.push_str(&format!(
            "thin:      {}; installs need a release of it beside DEST\n",
            relies_on(manifest, base)
        ));
    }
    out.push_str(&describe_wheels(manifest));
    if let Some((interpreter, plan)) = &plan {
        out.push_str(&plan.describe(interpreter));
    }
    // Manifest strings are the artifact's, not ours: no terminal escapes reach the screen.
    print(&pysfx_format::escape_lines(&out))
}

/// `relies on N wheels from APP VERSION (payload sha256 DIGEST)`: what a thin artifact needs.
fn relies_on(manifest: &Manifest, base: &ThinBase) -> String {
    let count = manifest.base_wheels().count();
    format!(
        "relies on {count} wheel{} from {} {} (payload sha256 {})",
        if count == 1 { "" } else { "s" },
        base.app,
        base.version.as_deref().unwrap_or("(no version recorded)"),
        base.payload_sha256
    )
}

/// One wheel of a listing: name, version, stored size and file name; a wheel a thin artifact
/// left out is marked, its stored size being its husk's.
fn wheel_line(wheel: &WheelEntry) -> String {
    let (size, mark) = if wheel.from_base {
        (
            format!("{} husk", wheel.size),
            "  (from base: expected in a release beside DEST)",
        )
    } else {
        (wheel.size.to_string(), "")
    };
    format!(
        "  {:<40} {:>15}  {}{mark}\n",
        format!("{} {}", wheel.name, wheel.version),
        size,
        wheel.filename
    )
}

/// The wheel sets and the bootstrap wheels, each wheel on its line.
fn describe_wheels(manifest: &Manifest) -> String {
    let by_path: HashMap<&str, _> = manifest
        .wheels
        .iter()
        .map(|w| (w.path.as_str(), w))
        .collect();
    // In a thin artifact, how many wheels of a list it carries and how many it relies on.
    let split = |paths: &[String]| {
        if manifest.thin_from.is_none() {
            return String::new();
        }
        let from_base = paths
            .iter()
            .filter(|path| by_path.get(path.as_str()).is_some_and(|w| w.from_base))
            .count();
        format!(
            " ({} carried, {from_base} from base)",
            paths.len() - from_base
        )
    };
    let mut out = String::new();
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
                        // (pip's platform when it collected the set: the pack machine's
                        // for --python, not what the wheels need, said after it)
                        .map(|p| format!(", resolved for {p}"))
                        .unwrap_or_default(),
                )
            })
            .unwrap_or_else(|| " (any target)".to_string());
        out.push_str(&format!(
            "set {}{}: {} wheel{}{}, {}\n",
            set.name,
            target,
            set.wheels.len(),
            if set.wheels.len() == 1 { "" } else { "s" },
            split(&set.wheels),
            describe_need(&need_of(manifest, &set.wheels))
        ));
        for path in &set.wheels {
            if let Some(wheel) = by_path.get(path.as_str()) {
                out.push_str(&wheel_line(wheel));
            }
        }
    }
    if !manifest.bootstrap.is_empty() {
        out.push_str(&format!(
            "bootstrap: {} wheel{}{}, {}\n",
            manifest.bootstrap.len(),
            if manifest.bootstrap.len() == 1 {
                ""
            } else {
                "s"
            },
            split(&manifest.bootstrap),
            describe_need(&need_of(manifest, &manifest.bootstrap))
        ));
        for path in &manifest.bootstrap {
            if let Some(wheel) = by_path.get(path.as_str()) {
                let mark = if wheel.from_base { "  (from base)" } else { "" };
                out.push_str(&format!("  {}{mark}\n", wheel.filename));
            }
        }
    }
    out
}

/// `inspect --json`: the manifest and both digests, with `--python` the dry run's choice.
fn print_json(
    args: &InspectArgs,
    payload: &Payload,
    file_sha256: &str,
    glibc: &GlibcNeeded,
    plan: Option<&(Interpreter, pysfx_plan::Plan)>,
) -> Outcome {
    let manifest = payload.manifest();
    let mut object = serde_json::json!({
        "artifact": args.artifact,
        "payload_sha256": payload.digest(),
        "file_sha256": file_sha256,
        "app_version": manifest.app.version,
        "size": payload.located().file_len,
        "stub_bytes": payload.located().trailer.payload_offset,
        "manifest": manifest,
        "glibc_needed": {
            "sets": glibc
                .sets
                .iter()
                .map(|(set, need)| serde_json::json!({"set": set, "glibc": need}))
                .collect::<Vec<_>>(),
            "bootstrap": glibc.bootstrap,
        },
    });
    if let Some((interpreter, plan)) = plan {
        object["python"] = serde_json::json!(interpreter.executable);
        object["python_version"] = serde_json::json!(interpreter.version());
        object["set"] = serde_json::json!(plan.set_name);
        object["wheels"] =
            serde_json::json!(plan.wheels.iter().map(|w| &w.filename).collect::<Vec<_>>());
        object["skipped"] =
            serde_json::json!(plan.skipped.iter().map(|s| &s.name).collect::<Vec<_>>());
    }
    print(&format!("{}\n", pysfx_format::json_text(&object, true)))
}

/// A dry run of the stub's choice for the interpreter `python`.
fn dry_run(
    manifest: &Manifest,
    python: &str,
) -> Result<(Interpreter, pysfx_plan::Plan), (u8, anyhow::Error)> {
    let interpreter = Interpreter::query(python).map_err(|error| (4, error.into()))?;
    let plan = pysfx_plan::choose(manifest, &interpreter).map_err(|error| {
        let code = match error {
            PlanError::NoCompatibleWheel(_)
            | PlanError::Unmet(_)
            | PlanError::BadInterpreter(_) => 4,
            PlanError::BadManifest(_) => CORRUPT,
        };
        (code, anyhow!(error))
    })?;
    Ok((interpreter, plan))
}

/// `inspect --sbom --python PY`: the SBOM a release installed by PY gets (`pysfx-sbom.cdx.json`):
/// its set's, cut to the wheels the stub would install, as the stub cuts it.
fn print_release_sbom(payload: &mut Payload, plan: &pysfx_plan::Plan) -> Outcome {
    check_all_stored(payload)?;
    let index = (payload.manifest().sets.iter()).position(|set| set.name == plan.set_name);
    let stored = match index {
        Some(index) => pysfx_format::read_sbom(payload, &pysfx_format::set_sbom_name(index))
            .map_err(|error| (CORRUPT, error.into()))?,
        None => None,
    };
    let Some(bytes) = stored else {
        return Err((
            1,
            anyhow!(
                "the artifact holds no SBOM for set {} (packed by pysfx {})",
                pysfx_format::escape_control(&plan.set_name),
                pysfx_format::escape_control(&payload.manifest().pysfx_version)
            ),
        ));
    };
    let installed: Vec<&WheelEntry> = plan.wheels.iter().collect();
    let text = String::from_utf8_lossy(&bytes);
    let index = index.unwrap_or_default();
    match pysfx_plan::sbom::for_release(payload.manifest(), index, &text, &installed) {
        Ok(text) => print(&text),
        Err(reason) => Err((
            CORRUPT,
            anyhow!(
                "{}: the SBOM of set {} is not one pysfx writes: {reason}",
                payload.path().display(),
                pysfx_format::escape_control(&plan.set_name)
            ),
        )),
    }
}

/// An artifact stores all its SBOMs or none (packed before pysfx stored them): one taken out
/// beside the others is refused (exit 3), as by the stub.
fn check_all_stored(payload: &mut Payload) -> Result<(), (u8, anyhow::Error)> {
    pysfx_plan::sbom::all_stored(payload)
        .map(|_| ())
        .map_err(|reason| (CORRUPT, anyhow!("{}: {reason}", payload.path().display())))
}

/// `inspect --sbom`: the SBOM stored in the artifact, as it is (what `./site.sfx --sbom`
/// prints); for an artifact packed before SBOMs were stored, one made from its manifest.
fn print_sbom(payload: &mut Payload) -> Outcome {
    check_all_stored(payload)?;
    if let Some(bytes) = pysfx_format::read_sbom(payload, pysfx_format::SBOM_NAME)
        .map_err(|e| (CORRUPT, e.into()))?
    {
        // Held to the manifest, as `./site.sfx --sbom` holds it: the same document or none.
        let text = String::from_utf8_lossy(&bytes);
        return match pysfx_plan::sbom::check_stored(payload.manifest(), None, &text) {
            Ok(_) => print(&text),
            Err(reason) => Err((
                CORRUPT,
                anyhow!(
                    "{}: {} is not the SBOM of this artifact: {reason}",
                    payload.path().display(),
                    pysfx_format::SBOM_NAME
                ),
            )),
        };
    }
    tracing::info!(
        "{} holds no SBOM (packed by pysfx {}); made one from its manifest",
        payload.path().display(),
        pysfx_format::escape_control(&payload.manifest().pysfx_version)
    );
    let mut text = Vec::new();
    {
        use std::io::Read;
        let entry = payload
            .archive()
            .by_name(pysfx_format::MANIFEST_NAME)
            .map_err(|error| (CORRUPT, anyhow!("{}: {error}", pysfx_format::MANIFEST_NAME)))?;
        entry
            .take(64 * 1024 * 1024)
            .read_to_end(&mut text)
            .map_err(|error| (CORRUPT, anyhow!("{}: {error}", pysfx_format::MANIFEST_NAME)))?;
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&text);
    let bytes = sbom::whole(payload.manifest(), &digest)
        .map_err(|error| (1, anyhow!("cannot write the SBOM: {error}")))?;
    print(&String::from_utf8_lossy(&bytes))
}

/// `inspect --requirements`: the wheels `plan` chose (with `--python`), else those of the
/// artifact's one set (and the bootstrap wheels it would be offered).
fn print_requirements(payload: &Payload, plan: Option<&pysfx_plan::Plan>) -> Outcome {
    let manifest = payload.manifest();
    let digest = payload.digest();
    let (set_name, wheels) = match plan {
        Some(plan) => (plan.set_name.clone(), plan.wheels.iter().collect()),
        None => match manifest.sets.as_slice() {
            [set] => {
                let mut members = sbom::set_members(manifest, set);
                members.sort_by(|a, b| a.path.cmp(&b.path));
                (set.name.clone(), members)
            }
            [] => return Err((CORRUPT, anyhow!("the artifact has no wheel set"))),
            sets => {
                let names: Vec<&str> = sets.iter().map(|set| set.name.as_str()).collect();
                return Err((
                    2,
                    anyhow!(
                        "the artifact has {} wheel sets ({}); give --python PY for the set that interpreter gets",
                        sets.len(),
                        pysfx_format::escape_control(&names.join(", "))
                    ),
                ));
            }
        },
    };
    let heading = pinned::heading(manifest, &set_name, &digest);
    let text = pinned::render(&heading, &wheels).map_err(|reason| (2, anyhow!(reason)))?;
    print(&text)
}

/// The highest glibc each set's wheels need, by set name, and the bootstrap wheels'.
struct GlibcNeeded {
    sets: Vec<(String, serde_json::Value)>,
    bootstrap: serde_json::Value,
}

fn glibc_needed(manifest: &Manifest) -> GlibcNeeded {
    let json = |need: Option<GlibcVersion>| match need {
        Some(version) => serde_json::json!(version.to_string()),
        None => serde_json::Value::Null,
    };
    GlibcNeeded {
        sets: manifest
            .sets
            .iter()
            .map(|set| (set.name.clone(), json(need_of(manifest, &set.wheels))))
            .collect(),
        bootstrap: json(need_of(manifest, &manifest.bootstrap)),
    }
}

/// The highest glibc the wheels at `paths` need, by their filenames' platform tags.
fn need_of(manifest: &Manifest, paths: &[String]) -> Option<GlibcVersion> {
    let filenames: Vec<WheelFilename> = paths
        .iter()
        .filter_map(|path| manifest.wheel(path))
        .filter_map(|wheel| wheel.filename.parse().ok())
        .collect();
    floor::highest_need(&filenames)
}

fn describe_need(need: &Option<GlibcVersion>) -> String {
    match need {
        Some(version) => format!("needs glibc {version}"),
        None => "needs no particular glibc".to_string(),
    }
}

/// The SBOMs an artifact carries are what its manifest makes them (`sbom::payload_entries`):
/// the install's own check (in `verify_contents`) holds each to the manifest's wheels; for
/// artifacts of this pysfx version they must also be those very bytes.
fn check_stored_sboms(payload: &mut Payload) -> Result<(), (u8, anyhow::Error)> {
    let manifest = payload.manifest().clone();
    if manifest.pysfx_version != env!("CARGO_PKG_VERSION") {
        return Ok(());
    }
    let corrupt = |error: anyhow::Error| (CORRUPT, error);
    let mut stored = Vec::new();
    std::io::Read::read_to_end(
        &mut payload
            .archive()
            .by_name(pysfx_format::MANIFEST_NAME)
            .map_err(|error| corrupt(anyhow!(error)))?,
        &mut stored,
    )
    .map_err(|error| corrupt(anyhow!(error)))?;
    let manifest_sha256 = <sha2::Sha256 as sha2::Digest>::digest(&stored);
    let expected = sbom::payload_entries(&manifest, &manifest_sha256)
        .map_err(|error| corrupt(anyhow!(error)))?;
    for (name, bytes) in expected {
        let found =
            pysfx_format::read_sbom(payload, &name).map_err(|error| corrupt(anyhow!(error)))?;
        if found.is_some_and(|found| found != bytes) {
            return Err(corrupt(anyhow!(
                "{}: {name} is not the SBOM of the manifest (it lists what the artifact \
                 carries, but is not the text this pysfx version writes for it)",
                payload.path().display()
            )));
        }
    }
    Ok(())
}

/// What `pysfx verify` checks past the payload digest: the install's own checks of every
/// entry, and the SBOMs the artifact stores.
pub(crate) fn verify_contents(payload: &mut Payload) -> Outcome {
    pysfx_install::verify_contents(payload)
        .map_err(|error| (install_code(&error), anyhow!(error)))?;
    check_stored_sboms(payload)
}

pub fn verify(args: &VerifyArgs) -> Outcome {
    let mut payload = open(&args.artifact)?;
    // The signature first: with --pubkey, a file not signed by one of the keys is refused
    // whatever its contents (its stub, its payload).
    let signed = if args.pubkey.is_empty() {
        None
    } else {
        let signature = args
            .signature
            .clone()
            .unwrap_or_else(|| signing::signature_path(&args.artifact));
        let digest = payload.digest();
        let checked = signing::verify_signature(
            &args.artifact,
            &signature,
            &args.pubkey,
            payload.manifest(),
            &digest,
        )
        .map_err(|refusal| match refusal {
            Refusal::BadSignature(error) => (CORRUPT, error),
            Refusal::BadKey(error) => (2, error),
        })?;
        Some(checked)
    };
    let file_sha256 = file_digest(&mut payload)?;
    verify_contents(&mut payload)?;
    let path = pysfx_format::escape_control(&args.artifact.display().to_string()).into_owned();
    let signature = signed
        .map(|(id, _)| format!(" signed_by={id}"))
        .unwrap_or_default();
    let mut out = format!(
        "OK {path} payload_sha256={} file_sha256={file_sha256}{signature}\n",
        payload.digest()
    );
    // A thin artifact's left-out wheels were not checked (it does not hold them): say which
    // they are and where they must come from.
    let manifest = payload.manifest();
    if let Some(base) = &manifest.thin_from {
        let mut thin = format!("{}:\n", relies_on(manifest, base));
        for wheel in manifest.base_wheels() {
            thin.push_str(&format!("  {} sha256={}\n", wheel.filename, wheel.sha256));
        }
        // Manifest strings are the artifact's: no terminal escapes reach the screen.
        out.push_str(&pysfx_format::escape_lines(&thin));
    }
    print(&out)
}
