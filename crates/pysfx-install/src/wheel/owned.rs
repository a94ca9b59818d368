//! The venv's own files, which no wheel may replace (SPEC, "Contained").

use pysfx_venv::{HOOK_MODULE, HOOK_PTH};

use super::Layout;

/// The venv's own files, which no wheel may replace (SPEC, "Contained"): `pyvenv.cfg`, the
/// interpreter links in `bin/` (any `python`, `python3`, `python3.N`, `python3.Nt`, not only
/// this interpreter's, so the check does not depend on which Python installs), the activate
/// scripts, anything under the `lib64` link, and pysfx's hooks in site-packages: `loadenv.py`
/// (nor a `loadenv` package or extension, which `import loadenv` would pick first),
/// `loadenv-init.pth` and the app's `<app>.pth`.
///
/// `layout` names the app; the site-packages directory is recognised by its shape.
pub(super) fn check_venv_owned(
    destination: &str,
    layout: &Layout,
    dist_info: &str,
) -> Result<(), String> {
    let taken = |what: &str| {
        Err(format!(
            "it would replace the venv's {what} ({destination})"
        ))
    };
    // In any case: on a filesystem that ignores it, `BIN/PYTHON` is `bin/python`.
    let named = destination;
    let lower = destination.to_ascii_lowercase();
    let destination = lower.as_str();
    if destination == "pyvenv.cfg" {
        return taken("configuration");
    }
    if destination == "lib64" || destination.starts_with("lib64/") {
        return taken("lib64 link");
    }
    // `bin/python3/x` (a `.data/scripts/` subdirectory) would need the interpreter's link
    // to be a directory: the first name below `bin/` is what is taken.
    if let Some(name) = destination.strip_prefix("bin/") {
        let name = name.split('/').next().unwrap_or(name);
        if is_interpreter_name(name) {
            return taken("interpreter");
        }
        if matches!(
            name,
            "activate" | "activate.csh" | "activate.fish" | "activate.ps1"
        ) {
            return taken("activate script");
        }
    }
    // Any `lib/pythonX.Y[t]/site-packages`, not only this interpreter's: `verify` checks a
    // wheel without knowing which Python will install it.
    let mut parts = destination.splitn(4, '/');
    let in_site_packages = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("lib"), Some(version), Some("site-packages"), Some(path))
            if version.starts_with("python") =>
        {
            Some(path)
        }
        _ => None,
    };
    if let Some(path) = in_site_packages {
        let mut components = path.split('/');
        let top = components.next().unwrap_or_default();
        let module = top.split('.').next().unwrap_or_default();
        let app_pth = |app: &String| {
            let stem = top.strip_suffix(".pth").unwrap_or_default();
            stem.len() == app.len() && stem.eq_ignore_ascii_case(app)
        };
        if layout.app_name.as_ref().is_some_and(app_pth) {
            // The app's name chose it: another name (`pysfx pack --app-name`) frees it.
            return Err(format!(
                "it would replace the app's path hook {top}, named after the app (another \
                 --app-name avoids it)"
            ));
        }
        if module == HOOK_MODULE || top == HOOK_PTH {
            return taken("pysfx hook");
        }
        // Byte-code of the hook module (`__pycache__/loadenv.cpython-311.pyc`, which an
        // unchecked-hash .pyc lets Python load without its source).
        if top == "__pycache__"
            && components.next().and_then(|file| file.split('.').next()) == Some(HOOK_MODULE)
        {
            return taken("pysfx hook");
        }
        // Another distribution's metadata: `pip check` and `importlib.metadata` read it. Only
        // the wheel's own directory is its own, spelt as the wheel spells it: `FOO-1.0.DIST-INFO`
        // beside `foo-1.0.dist-info` would be a second one where case matters (the lowercase
        // copy has the original's byte offsets).
        let metadata = top.ends_with(".dist-info") || top.ends_with(".egg-info");
        let start = destination.len() - path.len();
        let spelt = named.get(start..start + top.len()).unwrap_or_default();
        if metadata && spelt != dist_info {
            return Err(format!(
                "it would write another distribution's metadata ({named})"
            ));
        }
    }
    Ok(())
}

/// `python`, `pythonw`, `python3`, `python3.11`, `python3.13t` (also with `.exe` or `.py`), and
/// the other implementations' launchers uv refuses in `.data/scripts`.
fn is_interpreter_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let stem = lower
        .strip_suffix(".exe")
        .or_else(|| lower.strip_suffix(".py"))
        .unwrap_or(&lower);
    if matches!(stem, "pythonw" | "pypy" | "pypy2" | "pypy3" | "graalpy") {
        return true;
    }
    let Some(version) = stem.strip_prefix("python") else {
        return false;
    };
    let version = version.strip_suffix('t').unwrap_or(version);
    version.is_empty()
        || version
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            && version.split('.').count() <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thin artifact's husk names files the install takes from a release beside DEST, and
    /// `verify` (which has none) holds those names as the install does: a skeleton row that
    /// climbs out, or a carried script named like the interpreter, is refused.
    /// The layout of a venv for app `mysite` whose site-packages is `site_packages`.
    fn layout(site_packages: &str) -> Layout {
        Layout {
            site_packages: site_packages.into(),
            python_version: (3, 11),
            shebang_python: "/r/bin/python".into(),
            installer: "pysfx".into(),
            app_name: Some("mysite".into()),
        }
    }

    #[test]
    fn husk_paths_are_held_as_members_are() {
        // verify's model venv.
        let layout = layout("lib/python3/site-packages");
        let wheel: pysfx_wheel::WheelFilename =
            "beta-1.0-py3-none-any.whl".parse().expect("a wheel name");
        let check = |paths: &[&str]| {
            super::super::check_husk_paths(
                paths.iter().copied(),
                &layout,
                &wheel,
                "beta-1.0.dist-info",
            )
        };
        assert_eq!(
            check(&[
                "beta/__init__.py",
                "beta-1.0.dist-info/RECORD",
                "beta-1.0.data/scripts/beta"
            ]),
            Ok(())
        );
        for (paths, says) in [
            (&["../../../../PWNED"][..], "'..'"),
            (&["/etc/passwd"][..], "\"/etc/passwd\""),
            (&["beta-1.0.data/scripts/python"][..], "interpreter"),
            (&["beta-1.0.data/data/PYVENV.CFG"][..], "configuration"),
            (&["loadenv.py"][..], "hook"),
        ] {
            let error = check(paths).expect_err(paths[0]);
            assert!(error.contains(says), "{paths:?}: {error}");
        }
    }

    #[test]
    fn venv_owned_paths() {
        let layout = layout("lib/python3.11/site-packages");
        for destination in [
            "bin/python",
            "bin/Python3",
            "bin/python3.11",
            "bin/python3.6",
            "bin/python3.13t",
            "bin/pythonw.exe",
            "bin/pypy3",
            "bin/activate",
            "bin/activate.fish",
            "bin/python3/x",
            "pyvenv.cfg",
            "lib64",
            "lib64/python3.11/site-packages/x.py",
            "lib/python3.11/site-packages/loadenv.py",
            "lib/python3.11/site-packages/loadenv/__init__.py",
            "lib/python3.11/site-packages/loadenv.cpython-311-x86_64-linux-gnu.so",
            "lib/python3.11/site-packages/loadenv-init.pth",
            "lib/python3.11/site-packages/mysite.pth",
            "lib/python3.11/site-packages/__pycache__/loadenv.cpython-311.pyc",
            "lib/python3.11/site-packages/other-1.0.dist-info/METADATA",
            "lib/python3.11/site-packages/zzz-1.0.egg-info/PKG-INFO",
            "lib/python3.11/site-packages/zzz.egg-info",
            // The wheel's own metadata directory in another case is a second one.
            "lib/python3.11/site-packages/X-1.0.dist-info/LICENSE",
            "lib/python3.11/site-packages/x-1.0.DIST-INFO/LICENSE",
            "lib/python3.11/site-packages/X-1.0.Dist-Info/METADATA",
            // On a filesystem that ignores case, these are the venv's own files.
            "BIN/PYTHON",
            "Bin/activate",
            "bin/ACTIVATE",
            "PYVENV.CFG",
            "LIB64/x",
            "lib/python3.11/site-packages/LOADENV.py",
            "LIB/Python3.11/Site-Packages/MySite.pth",
        ] {
            assert!(
                check_venv_owned(destination, &layout, "x-1.0.dist-info").is_err(),
                "{destination}"
            );
        }
        for destination in [
            "bin/python-config",
            "bin/pip",
            "bin/ipython",
            "bin/python3.x",
            "bin/activate-global",
            "bin/include/google/protobuf/any.proto",
            "lib/python3.11/site-packages/loadenvx.py",
            "lib/python3.11/site-packages/other.pth",
            "lib/python3.11/site-packages/pkg/loadenv.py",
            "share/lib64/x",
            "include/site/python3.11/x/pyvenv.cfg",
            "lib/python3.11/site-packages/x-1.0.dist-info/LICENSE",
            "LIB/Python3.11/site-packages/x-1.0.dist-info/LICENSE",
            "lib/python3.11/site-packages/__pycache__/loadenvx.cpython-311.pyc",
            "lib/python3.11/site-packages/pkg/__pycache__/loadenv.cpython-311.pyc",
        ] {
            assert!(
                check_venv_owned(destination, &layout, "x-1.0.dist-info").is_ok(),
                "{destination}"
            );
        }
    }
}
