//! The targets of wheel sets: a `--target` parsed, and the target of a real interpreter, as
//! the manifest records them.

use anyhow::{anyhow, Result};
use pysfx_format::Target;
use pysfx_venv::Interpreter;

/// The set's target as recorded in the manifest, from a real interpreter.
pub fn target_of(interpreter: &Interpreter) -> Target {
    let tags = interpreter.tags();
    let first = tags.tags().first();
    Target {
        implementation: "cp".into(),
        python_version: format!(
            "{}.{}",
            interpreter.version_info.0, interpreter.version_info.1
        ),
        full_version: Some(interpreter.version()),
        abi: first.map(|tag| tag.abi.clone()),
        platform: first.map(|tag| tag.platform.clone()),
    }
}

/// A `--target`: `cp36-manylinux2014_x86_64`, `cp311-manylinux_2_17_x86_64`, or `3.12` (CPython
/// 3.12 on x86_64 glibc 2.17, the stub's platform).
#[derive(Debug, Clone)]
pub struct ParsedTarget {
    pub name: String,
    pub python_version: String,
    pub abis: Vec<String>,
    pub platforms: Vec<String>,
    pub target: Target,
}

/// What `--target` accepts, for its usage errors.
pub const TARGETS_ACCEPTED: &str = "a CPython 3.6 to 3.13 (cp36 … cp313, or 3.6 … 3.13 for \
     manylinux2014_x86_64) on x86_64 Linux with glibc: cpXY-manylinux2014_x86_64, \
     cpXY-manylinux2010_x86_64, cpXY-manylinux1_x86_64 or cpXY-manylinux_2_N_x86_64, e.g. \
     cp36-manylinux2014_x86_64, cp311-manylinux_2_17_x86_64 or 3.12";

/// Parses a `--target`. Only what an artifact of this stub can install is accepted: CPython
/// 3.6 to 3.13 (the interpreters the stub supports) on x86_64 Linux with glibc (the stub's
/// platform). Whether its glibc is within `--max-glibc` is the caller's to check.
pub fn parse_target(text: &str) -> Result<ParsedTarget> {
    let refuse = |why: &str| anyhow!("--target {text:?}: {why}; accepted: {TARGETS_ACCEPTED}");
    let (python, platform) = match text.split_once('-') {
        Some((python, platform)) => (python.to_string(), platform.to_string()),
        None => {
            let (major, minor) = text.split_once('.').ok_or_else(|| refuse("not a target"))?;
            let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            if !digits(major) || !minor.split('.').all(digits) {
                return Err(refuse("not a Python version X.Y (such as 3.12) nor a tag"));
            }
            if minor.contains('.') {
                return Err(refuse(&format!(
                    "a target names a Python X.Y, not a release ({major}.{})",
                    minor.split('.').next().unwrap_or_default()
                )));
            }
            (
                format!("cp{major}{minor}"),
                "manylinux2014_x86_64".to_string(),
            )
        }
    };
    let digits = python
        .strip_prefix("cp")
        .filter(|digits| digits.len() >= 2 && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            refuse(&format!(
                "{python:?} is not a CPython version such as cp311"
            ))
        })?;
    let (major, minor) = digits.split_at(1);
    let minor: u32 = minor
        .parse()
        .map_err(|_| refuse(&format!("{python:?} is not a CPython version")))?;
    if major != "3" || !(6..=13).contains(&minor) {
        return Err(refuse(&format!(
            "CPython {major}.{minor} is not one pysfx packs for (3.6 to 3.13)"
        )));
    }
    match crate::floor::tag_need(&platform) {
        crate::floor::TagNeed::Glibc(_) => {}
        _ => {
            return Err(refuse(&format!(
                "{platform:?} is not a platform the stub runs on (x86_64 Linux with glibc, a \
                 manylinux tag)"
            )))
        }
    }
    let python_version = format!("3.{minor}");
    let abi = if minor < 8 {
        format!("cp3{minor}m")
    } else {
        format!("cp3{minor}")
    };
    let mut platforms = vec![platform.clone()];
    // pip matches --platform exactly: give both spellings of the same glibc floor.
    let aliases = [
        ("manylinux2014_", "manylinux_2_17_"),
        ("manylinux2010_", "manylinux_2_12_"),
        ("manylinux1_", "manylinux_2_5_"),
    ];
    for (legacy, modern) in aliases {
        if let Some(arch) = platform.strip_prefix(legacy) {
            platforms.push(format!("{modern}{arch}"));
        } else if let Some(arch) = platform.strip_prefix(modern) {
            platforms.push(format!("{legacy}{arch}"));
        }
    }
    if platform.starts_with("manylinux2014_") || platform.starts_with("manylinux_2_17_") {
        let arch = platform.rsplit_once("_x86_64").map(|_| "x86_64");
        if let Some(arch) = arch {
            for older in ["manylinux2010", "manylinux1"] {
                platforms.push(format!("{older}_{arch}"));
            }
        }
    }
    let name = format!("{python}-{platform}");
    Ok(ParsedTarget {
        name: name.clone(),
        python_version: python_version.clone(),
        abis: vec![abi.clone(), "abi3".into(), "none".into()],
        platforms,
        target: Target {
            implementation: "cp".into(),
            python_version,
            full_version: None,
            abi: Some(abi),
            platform: Some(platform),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = parse_target("cp36-manylinux2014_x86_64").expect("parse");
        assert_eq!(t.python_version, "3.6");
        assert_eq!(t.abis, ["cp36m", "abi3", "none"]);
        assert_eq!(
            t.platforms,
            [
                "manylinux2014_x86_64",
                "manylinux_2_17_x86_64",
                "manylinux2010_x86_64",
                "manylinux1_x86_64"
            ]
        );
        let t = parse_target("3.12").expect("parse");
        assert_eq!(t.name, "cp312-manylinux2014_x86_64");
        assert_eq!(t.abis[0], "cp312");
        let t = parse_target("3.13").expect("parse");
        assert_eq!(t.python_version, "3.13");
        let error = parse_target("3.11.4").expect_err("a release").to_string();
        assert!(
            error.contains("names a Python X.Y, not a release (3.11)"),
            "{error}"
        );
        // Named as typed, never as a tag made of it ("cpcp36").
        for typo in ["cp3.6", " 3.12", "3.x", "3.", ".12"] {
            let error = parse_target(typo).expect_err(typo).to_string();
            assert!(
                error.contains(&format!("{typo:?}: not a Python version X.Y")),
                "{error}"
            );
            assert!(!error.contains("cpcp"), "{error}");
        }
        for bad in [
            "py3-any",
            "cp2-x",
            "cp27-manylinux1_x86_64",
            "cp35-manylinux2014_x86_64",
            "cp35",
            "3",
            "3.5",
            "3.14",
            "cp314-manylinux2014_x86_64",
            "cpxy-linux",
            "cp311-macosx_11_0_arm64",
            "cp311-manylinux2014_aarch64",
            "cp311-manylinux_2_17_aarch64",
            "cp311-linux_x86_64",
            "cp311-musllinux_1_2_x86_64",
            "cp311-win_amd64",
            "cp313t-manylinux2014_x86_64",
        ] {
            let error = parse_target(bad).expect_err(bad).to_string();
            assert!(
                error.contains(bad) && error.contains("accepted: ") && error.contains("cp313"),
                "{bad}: {error}"
            );
        }
    }
}
