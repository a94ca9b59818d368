//! Why pip failed, read from its stderr, and the one fix to print for it. pip's own text (often
//! kilobytes of it) is shown only with `-v`; without it the operator gets pip's telling line and
//! a hint that fits the failure.

/// What a failed pip run ran into, judged from its stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipFailure {
    /// A downloaded file's digest is not the `--hash` of its requirement line.
    HashMismatch,
    /// Hash-checking mode (a `--hash` on some line) needs every requirement pinned and hashed.
    HashesIncomplete,
    /// The index (or a find-links URL) could not be reached.
    IndexUnreachable,
    /// Every version that matches declares a `Requires-Python` the target Python fails.
    RequiresPython,
    /// No version of the distribution that pip may take: no binary wheel for the platform with
    /// `--only-binary=:all:`, or no such name or version on the index.
    NoMatchingDistribution,
    /// A VCS requirement (`git+…`) could not be fetched: the clone failed.
    CloneFailed,
    /// A source distribution did not build.
    BuildFailed,
    /// Two requirements (or a requirement and a constraint) ask for versions of one
    /// distribution that no one version meets.
    Conflict,
    /// A disk pip writes to (its downloads and builds in `$TMPDIR`, the wheels in the pack's
    /// work directory, also in `$TMPDIR`) is full.
    NoSpace,
    Other,
}

/// Substrings of pip's messages, by failure, in the order they are tested: a hash or network
/// failure also ends in "No matching distribution", so those come first. pip 18 (CPython 3.6's)
/// to pip 24 word them this way.
const SIGNS: [(PipFailure, &[&str]); 9] = [
    (
        PipFailure::NoSpace,
        &["No space left on device", "[Errno 28]"],
    ),
    (
        PipFailure::HashMismatch,
        &["THESE PACKAGES DO NOT MATCH THE HASHES"],
    ),
    (
        PipFailure::HashesIncomplete,
        &[
            "Hashes are required in --require-hashes mode",
            "In --require-hashes mode, all requirements must have their versions pinned",
        ],
    ),
    (
        PipFailure::IndexUnreachable,
        &[
            "Failed to establish a new connection",
            "NewConnectionError",
            "Max retries exceeded",
            "ConnectTimeoutError",
            "Temporary failure in name resolution",
            "Name or service not known",
            "Could not fetch URL",
            "There was a problem confirming the ssl certificate",
            "ProxyError",
            "Network is unreachable",
            "connection broken by",
        ],
    ),
    (
        PipFailure::RequiresPython,
        &[
            "requires a different Python",
            "require a different python version",
            "but the running Python is",
        ],
    ),
    // Before a build's signs: pip reports a failed clone as a subprocess that failed too.
    (
        PipFailure::CloneFailed,
        &[
            "× git clone",
            "git clone -q",
            "× hg clone",
            "× svn checkout",
        ],
    ),
    (
        PipFailure::BuildFailed,
        &[
            "Failed building wheel for",
            "Could not build wheels for",
            "subprocess-exited-with-error",
            "metadata-generation-failed",
            // pip 18's, for a project whose metadata could not be made.
            "python setup.py egg_info\" failed",
        ],
    ),
    (
        PipFailure::Conflict,
        &[
            "ResolutionImpossible",
            "conflicting dependencies",
            "Double requirement given",
        ],
    ),
    (
        PipFailure::NoMatchingDistribution,
        &[
            "No matching distribution found for",
            "Could not find a version that satisfies the requirement",
        ],
    ),
];

/// Classifies a failed pip run by its stderr.
pub fn classify(stderr: &str) -> PipFailure {
    for (failure, signs) in SIGNS {
        if signs.iter().any(|sign| stderr.contains(sign)) {
            if failure == PipFailure::RequiresPython && !any_ignored_version_fits(stderr) {
                return PipFailure::NoMatchingDistribution;
            }
            return failure;
        }
    }
    PipFailure::Other
}

/// pip lists every version of the distribution it passed over for its Requires-Python
/// ("Ignored the following versions that require a different python version: 6.0
/// Requires-Python >=3.12; …"), also when the requirement asks for none of them
/// (`Django==0.0.1`): the failure is then no such version, not the target's Python. False only
/// when pip's words say so for sure: every ignored version read, and none of them within the
/// requirement's specifiers. Any other Requires-Python message is about the version chosen.
fn any_ignored_version_fits(stderr: &str) -> bool {
    use std::str::FromStr;
    const IGNORED: &str = "Ignored the following versions that require a different python \
                           version: ";
    const WANTED: &str = "Could not find a version that satisfies the requirement ";
    if stderr.contains("requires a different Python") || stderr.contains("but the running Python") {
        return true;
    }
    let after = |sign: &str| {
        let at = stderr.find(sign)? + sign.len();
        stderr[at..].lines().next()
    };
    let (Some(ignored), Some(wanted)) = (after(IGNORED), after(WANTED)) else {
        return true;
    };
    // "django==4.2 (from versions: …)", "name[extra]>=1,<2 (from -r … (line 1)) (from …)".
    let requirement = wanted.split(" (from").next().unwrap_or(wanted);
    let requirement = requirement.split(';').next().unwrap_or(requirement);
    let specifiers = requirement
        .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || "._-".contains(c))
        .trim_start();
    let specifiers = match specifiers.strip_prefix('[') {
        Some(extras) => match extras.split_once(']') {
            Some((_, rest)) => rest,
            None => return true,
        },
        None => specifiers,
    };
    let Ok(specifiers) = pep440_rs::VersionSpecifiers::from_str(specifiers.trim()) else {
        return true;
    };
    let mut versions = ignored.split(';').map(|item| {
        item.split_whitespace()
            .next()
            .map(pep440_rs::Version::from_str)
    });
    !versions.all(|version| matches!(version, Some(Ok(version)) if !specifiers.contains(&version)))
}

/// The requirements files pip reads (pysfx's copies, next to each other in the work
/// directory) and the user's files they copy, for pip's messages.
static COPIES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Remembers that pip reads `original` as `copy`.
pub fn copied(copy: &std::path::Path, original: &std::path::Path) {
    let mut copies = COPIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    copies.push((
        copy.to_string_lossy().into_owned(),
        original.to_string_lossy().into_owned(),
    ));
}

/// `text` with each copy's path written as the user's file's.
/// A line of pip's as the user would write it: "(from line 3 of …/requirements/target/1.txt)"
/// names pysfx's copy, and so does the "(from -r …/requirements/target/0.txt (line 3))" tail,
/// which is cut.
pub fn without_copies(line: &str) -> String {
    let line = originals(line);
    match line.split_once(" (from -r ") {
        Some((before, _)) => before.to_string(),
        None => line,
    }
}

fn originals(text: &str) -> String {
    let copies = COPIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut text = text.to_string();
    // The longest first: `…/10.txt` is not `…/1.txt` followed by `0`.
    let mut sorted: Vec<&(String, String)> = copies.iter().collect();
    sorted.sort_by_key(|(copy, _)| std::cmp::Reverse(copy.len()));
    for (copy, original) in sorted {
        text = text.replace(copy.as_str(), original);
    }
    text
}

impl PipFailure {
    /// A few words for the error line.
    pub fn summary(self) -> &'static str {
        match self {
            PipFailure::HashMismatch => "a file does not match its --hash",
            PipFailure::HashesIncomplete => "hash-checking mode needs every requirement hashed",
            PipFailure::IndexUnreachable => "the package index could not be reached",
            PipFailure::RequiresPython => "no version for this Python (Requires-Python)",
            PipFailure::NoMatchingDistribution => "no matching distribution",
            PipFailure::CloneFailed => "a VCS requirement could not be fetched",
            PipFailure::BuildFailed => "a source distribution did not build",
            PipFailure::Conflict => "requirements that conflict",
            PipFailure::NoSpace => "no space left on a disk pip writes to",
            PipFailure::Other => "pip reported an error",
        }
    }

    /// The line of pip's stderr that says the most about this failure: the one naming the
    /// package, cut to 300 characters.
    pub fn telling_line(self, stderr: &str) -> Option<String> {
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect();
        let line = match self {
            // The line after the banner names the package and where it came from.
            PipFailure::HashMismatch | PipFailure::HashesIncomplete => lines
                .iter()
                .position(|line| line.contains("--require-hashes mode") || line.contains("HASHES"))
                .and_then(|at| lines.get(at + 1))
                .copied(),
            PipFailure::IndexUnreachable => lines
                .iter()
                .find(|line| SIGNS[3].1.iter().any(|sign| line.contains(sign)))
                .copied(),
            PipFailure::NoSpace => lines
                .iter()
                .find(|line| SIGNS[0].1.iter().any(|sign| line.contains(sign)))
                .copied(),
            // "Could not find a version that satisfies the requirement idna==3.20" names the
            // package; the Requires-Python line before it lists versions only.
            PipFailure::RequiresPython => lines
                .iter()
                .find(|line| line.contains("Could not find a version"))
                .or_else(|| {
                    (lines.iter()).find(|line| SIGNS[4].1.iter().any(|sign| line.contains(sign)))
                })
                .copied(),
            PipFailure::NoMatchingDistribution => lines
                .iter()
                .find(|line| line.contains("Could not find a version"))
                .or_else(|| lines.iter().find(|line| line.contains("No matching")))
                .copied(),
            // git's own line ("fatal: unable to access …", "fatal: '…' does not appear to be
            // a git repository"), else the command pip ran.
            PipFailure::CloneFailed => lines
                .iter()
                .find(|line| line.starts_with("fatal:"))
                .or_else(|| {
                    (lines.iter()).find(|line| SIGNS[5].1.iter().any(|sign| line.contains(sign)))
                })
                .copied(),
            // "Cannot install six==1.16.0 and six==1.17.0 because these package versions have
            // conflicting dependencies" (pip 20.3 and later), "Double requirement given: …"
            // (pip 18); not the "ResolutionImpossible: for help visit …" after it.
            PipFailure::Conflict => lines
                .iter()
                .find(|line| line.contains("Cannot install") || line.contains("Double requirement"))
                .or_else(|| {
                    lines
                        .iter()
                        .find(|line| line.contains("ResolutionImpossible"))
                })
                .copied(),
            // pip's line naming what did not build, else its last error line.
            PipFailure::BuildFailed => lines
                .iter()
                .find(|line| {
                    line.contains("Failed building wheel for")
                        || line.contains("Could not build wheels for")
                })
                .or_else(|| {
                    (lines.iter().rev())
                        .find(|line| line.starts_with("ERROR:") || line.starts_with("error:"))
                })
                .or(lines.last())
                .copied(),
            PipFailure::Other => lines
                .iter()
                .rev()
                .find(|line| line.starts_with("ERROR:") || line.starts_with("error:"))
                .or(lines.last())
                .copied(),
        }?;
        let line = line.strip_prefix("ERROR: ").unwrap_or(line);
        let line = without_copies(line);
        let line = line.as_str();
        let mut cut: String = line.chars().take(300).collect();
        if line.chars().count() > 300 {
            cut.push('…');
        }
        Some(cut)
    }

    /// What to do about it. `target` is the `--target` name (`cp36-manylinux2014_x86_64`) and
    /// `python` the version (`3.6`) or interpreter the run collected for.
    pub fn hint(self, run: &PipRun<'_>) -> String {
        let python = run.python();
        match (self, run) {
            (PipFailure::HashMismatch, _) => "a downloaded file is not what the --hash on its \
                 requirement line says: if the version or its files changed on purpose, \
                 regenerate the hashes (pip-compile --generate-hashes); otherwise the file was \
                 tampered with"
                .into(),
            (PipFailure::HashesIncomplete, _) => "a --hash on any line puts pip in \
                 hash-checking mode: every requirement, dependencies included, needs ==VERSION \
                 and --hash (pip-compile --generate-hashes writes them)"
                .into(),
            (PipFailure::IndexUnreachable, _) => "check the network, the proxy (HTTPS_PROXY) \
                 and --index-url / PIP_INDEX_URL; to pack offline, give the wheels with --wheels \
                 DIR and put --no-index in the requirements"
                .into(),
            // pip weighs Requires-Python only for files it could take: under
            // --only-binary=:all:, versions with no wheel for the target are passed over in
            // silence, so they may exist and suit the target once built.
            (PipFailure::RequiresPython, PipRun::Target { name, .. }) => format!(
                "each wheel for {name} that fits the requirement declares a Requires-Python \
                 that {python} fails (versions with no wheel for {name} are not counted): pin a \
                 version that has one (name<X ; python_version < \"...\"), pack with --python \
                 pointing at a real {python} (pip then builds from source), or drop that Python"
            ),
            (PipFailure::RequiresPython, _) => format!(
                "every version that matches declares a Requires-Python that {python} fails: pin \
                 an older version for it (name<X ; python_version < \"...\") or drop that Python"
            ),
            (PipFailure::NoMatchingDistribution, PipRun::Target { name, .. }) => format!(
                "no binary wheel for {name} (or no such name or version): pack with --python \
                 pointing at a real {python} (pip then builds it), or build the wheel yourself \
                 and give its directory with --wheels"
            ),
            (PipFailure::NoMatchingDistribution, _) => "no version of it matches on the index: \
                 check the name, the version and --index-url"
                .into(),
            (PipFailure::CloneFailed, _) => "check the requirement's URL, and that git (or \
                 hg, svn) is installed and can reach it from this machine (network, \
                 credentials); or build its wheel elsewhere and give it with --wheels DIR"
                .into(),
            (PipFailure::BuildFailed, PipRun::Target { name, .. }) => {
                format!("a local project or sdist did not build for {name}: pip's output says why")
            }
            (PipFailure::BuildFailed, _) => format!(
                "a local project, or an sdist pip took for want of a wheel for {python}, did \
                 not build: fix the project's build, or install the sdist's build dependencies \
                 (a compiler, headers) or collect with --target cpXY-manylinux2014_x86_64 to \
                 take binary wheels only"
            ),
            (PipFailure::Conflict, _) => "no one version meets every requirement on that \
                 distribution (lines of -r files, a -c constraint, or what another requires): \
                 align or loosen the pins pip's line names"
                .into(),
            (PipFailure::NoSpace, _) => "free space where pip writes: $TMPDIR (its downloads, \
                 builds and the pack's work directory; df -h \"${TMPDIR:-/tmp}\"), or point \
                 TMPDIR at a larger disk"
                .into(),
            (PipFailure::Other, _) => "pip's output says what went wrong".into(),
        }
    }
}

/// Which pip run failed, for its hint.
#[derive(Debug, Clone, Copy)]
pub enum PipRun<'a> {
    /// `PY -m pip wheel` for a `--python` set, or to build a local project.
    Wheel { python: &'a str },
    /// `pip download` for a `--target`.
    Target { name: &'a str, version: &'a str },
    /// `pip download` of the bootstrap wheels for Python `version`.
    Bootstrap { version: &'a str },
}

impl PipRun<'_> {
    fn python(&self) -> String {
        match self {
            PipRun::Wheel { python } => (*python).to_string(),
            PipRun::Target { version, .. } | PipRun::Bootstrap { version } => {
                format!("CPython {version}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // pip's exact words, captured from pip 23.2 (CPython 3.11), 24.2 (3.13) and 18.1 (3.6)
    // runs against local find-links and an unreachable index.
    const NO_BINARY: &str = "ERROR: Could not find a version that satisfies the requirement \
        newpil (from versions: none)\nERROR: No matching distribution found for newpil\n";
    const NO_VERSION: &str = "ERROR: Could not find a version that satisfies the requirement \
        newdj==5.0 (from versions: 4.2)\nERROR: No matching distribution found for newdj==5.0\n";
    const HASH: &str = "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS \
        FILE. If you have updated the package versions, please update the hashes. Otherwise, \
        examine the package contents carefully; someone may have tampered with them.\n    \
        newpil==0.1 from file:///tmp/fl2/newpil-0.1-cp311-cp311-manylinux_2_28_x86_64.whl (from \
        -r r.txt (line 1)):\n        Expected sha256 \
        0000000000000000000000000000000000000000000000000000000000000000\n             Got        \
        89c0b6b01e5ad438898244db410ec1d679f806f374c5232d41f63ab833734dd7\n\n";
    const UNPINNED: &str = "ERROR: In --require-hashes mode, all requirements must have their \
        versions pinned with ==. These do not:\n    newpil from \
        file:///tmp/fl2/newpil-0.1-cp311-cp311-manylinux_2_28_x86_64.whl (from -r r3.txt (line \
        2))\n";
    const MISSING_HASHES: &str = "ERROR: Hashes are required in --require-hashes mode, but they \
        are missing from some requirements. Here is a list of those requirements along with the \
        hashes their downloaded archives actually had. You can add lines like these to your \
        requirements files to prevent tampering.\n    six==1.16.0 \
        --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n";
    const UNREACHABLE: &str = "WARNING: Retrying (Retry(total=0, connect=None, read=None, \
        redirect=None, status=None)) after connection broken by \
        'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at \
        0x7efddce49fd0>: Failed to establish a new connection: [Errno 111] Connection \
        refused')': /simple/django/\nERROR: Could not find a version that satisfies the \
        requirement django (from versions: none)\nERROR: No matching distribution found for \
        django\n";
    const REQUIRES_PYTHON: &str =
        "ERROR: Package 'newdj' requires a different Python: 3.6.99 not in '>=3.8'\n";
    const REQUIRES_PYTHON_PIP18: &str =
        "newdj requires Python '>=3.8' but the running Python is 3.6.15\n";
    const REQUIRES_PYTHON_INDEX: &str = "ERROR: Ignored the following versions that require a \
        different python version: 4.2 Requires-Python >=3.8; 5.0 Requires-Python >=3.10\n\
        ERROR: Could not find a version that satisfies the requirement django==4.2 (from \
        versions: 1.11, 2.2, 3.2.25)\nERROR: No matching distribution found for django==4.2\n";
    const NO_SUCH_VERSION: &str = "ERROR: Ignored the following versions that require a \
        different python version: 6.0 Requires-Python >=3.12; 6.0.1 Requires-Python >=3.12\n\
        ERROR: Could not find a version that satisfies the requirement Django==0.0.1 (from \
        versions: 1.1.3, 5.2.8)\nERROR: No matching distribution found for Django==0.0.1\n";
    const BUILD: &str = "  error: subprocess-exited-with-error\n  \n  × Building wheel for \
        cext (pyproject.toml) did not run successfully.\n  │ exit code: 1\n  ╰─> [1 lines of \
        output]\n      gcc: not found\n  note: This error originates from a subprocess.\n  \
        ERROR: Failed building wheel for cext\nFailed to build cext\nERROR: Could not build \
        wheels for cext, which is required to install pyproject.toml-based projects\n";

    #[test]
    fn pip_failures_are_told_apart() {
        // pip 24's words for a clone that failed, and pip 18's.
        const CLONE: &str = "  Running command git clone --filter=blob:none --quiet \
            file:///nowhere/repo.git /tmp/pip-wheel-x/foo\n  fatal: '/nowhere/repo.git' does \
            not appear to be a git repository\n  error: subprocess-exited-with-error\n  \n  × \
            git clone --filter=blob:none --quiet file:///nowhere/repo.git /tmp/pip-wheel-x/foo \
            did not run successfully.\n";
        const CLONE_PIP18: &str = "fatal: Could not read from remote repository.\nCommand \
            \"git clone -q file:///nowhere/repo.git /tmp/pip-wheel-x/foo\" failed with error \
            code 128 in None\n";
        let cases = [
            (
                CLONE,
                PipFailure::CloneFailed,
                "does not appear to be a git repository",
            ),
            (
                CLONE_PIP18,
                PipFailure::CloneFailed,
                "Could not read from remote",
            ),
            (NO_BINARY, PipFailure::NoMatchingDistribution, "newpil"),
            (NO_VERSION, PipFailure::NoMatchingDistribution, "newdj==5.0"),
            (HASH, PipFailure::HashMismatch, "newpil==0.1"),
            (UNPINNED, PipFailure::HashesIncomplete, "newpil from"),
            (MISSING_HASHES, PipFailure::HashesIncomplete, "six==1.16.0"),
            (
                UNREACHABLE,
                PipFailure::IndexUnreachable,
                "Connection refused",
            ),
            (REQUIRES_PYTHON, PipFailure::RequiresPython, "'>=3.8'"),
            (REQUIRES_PYTHON_PIP18, PipFailure::RequiresPython, "'>=3.8'"),
            (
                REQUIRES_PYTHON_INDEX,
                PipFailure::RequiresPython,
                "the requirement django==4.2",
            ),
            (
                NO_SUCH_VERSION,
                PipFailure::NoMatchingDistribution,
                "the requirement Django==0.0.1",
            ),
            (
                &NO_SUCH_VERSION.replace("Django==0.0.1 (", "django[argon2]>=6 ("),
                PipFailure::RequiresPython,
                "django[argon2]>=6",
            ),
            (
                &NO_SUCH_VERSION.replace("Django==0.0.1 (", "Django (from -r r.txt (line 1)) ("),
                PipFailure::RequiresPython,
                "the requirement Django",
            ),
            (BUILD, PipFailure::BuildFailed, "cext"),
            (
                "Command \"python setup.py egg_info\" failed with error code 1 in /tmp/p/\n",
                PipFailure::BuildFailed,
                "egg_info",
            ),
            (
                "ERROR: Cannot install six==1.16.0 and six==1.17.0 because these package \
                 versions have conflicting dependencies.\nThe conflict is caused by:\n    The \
                 user requested six==1.16.0\nERROR: ResolutionImpossible: for help visit \
                 https://pip.pypa.io/en/latest/topics/dependency-resolution/\n",
                PipFailure::Conflict,
                "six==1.16.0 and six==1.17.0",
            ),
            (
                "Double requirement given: six==1.17.0 (from -r r.txt (line 2)) (already in \
                 six==1.16.0 (from -r r.txt (line 1)), name='six')\n",
                PipFailure::Conflict,
                "six==1.17.0",
            ),
            (
                "ERROR: Could not install packages due to an OSError: [Errno 28] No space left \
                 on device\n",
                PipFailure::NoSpace,
                "[Errno 28]",
            ),
            (
                "Traceback (most recent call last):\nKeyError: 'x'\n",
                PipFailure::Other,
                "KeyError",
            ),
        ];
        for (stderr, expected, telling) in cases {
            let failure = classify(stderr);
            assert_eq!(failure, expected, "{stderr}");
            let line = failure.telling_line(stderr).expect("a line");
            assert!(line.contains(telling), "{expected:?}: {line}");
            assert!(!line.starts_with("ERROR:"), "{line}");
        }
    }

    #[test]
    fn hints_fit_the_failure_and_the_run() {
        let target = PipRun::Target {
            name: "cp36-manylinux2014_x86_64",
            version: "3.6",
        };
        let wheel = PipRun::Wheel {
            python: "python3.11",
        };
        let hint = PipFailure::RequiresPython.hint(&target);
        assert!(
            hint.contains("Requires-Python that CPython 3.6 fails"),
            "{hint}"
        );
        assert!(!hint.contains("binary"), "{hint}");
        // Versions with no wheel for the target never reach pip's Requires-Python test.
        assert!(
            hint.contains("versions with no wheel for cp36-manylinux2014_x86_64")
                && hint.contains("--python"),
            "{hint}"
        );
        let hint = PipFailure::RequiresPython.hint(&wheel);
        assert!(
            hint.contains("python3.11 fails") && !hint.contains("no wheel"),
            "{hint}"
        );
        let hint = PipFailure::NoMatchingDistribution.hint(&target);
        assert!(
            hint.contains("no binary wheel for cp36-manylinux2014_x86_64")
                && hint.contains("--python"),
            "{hint}"
        );
        let hint = PipFailure::NoMatchingDistribution.hint(&wheel);
        assert!(!hint.contains("binary"), "{hint}");
        let hint = PipFailure::HashMismatch.hint(&target);
        assert!(
            hint.contains("--hash") && !hint.contains("binary"),
            "{hint}"
        );
        assert!(PipFailure::IndexUnreachable.hint(&wheel).contains("proxy"));
        for failure in [
            PipFailure::HashMismatch,
            PipFailure::HashesIncomplete,
            PipFailure::IndexUnreachable,
            PipFailure::RequiresPython,
            PipFailure::NoMatchingDistribution,
            PipFailure::CloneFailed,
            PipFailure::BuildFailed,
            PipFailure::Conflict,
            PipFailure::NoSpace,
            PipFailure::Other,
        ] {
            let hint = failure.hint(&PipRun::Bootstrap { version: "3.6" });
            assert!(hint.len() < 300, "one or two lines: {hint}");
            for run in [&target, &wheel] {
                let hint = failure.hint(run);
                assert!(!hint.contains("  "), "{failure:?}: {hint}");
            }
            assert!(!failure.summary().contains("  "), "{failure:?}");
        }
    }
}
