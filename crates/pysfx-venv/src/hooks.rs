//! The `.pth` hooks written into site-packages: `<app>.pth` puts the release's app directory on
//! `sys.path`; `loadenv-init.pth` and `loadenv.py` load `environment.json` into `os.environ`.
//!
//! CPython 3.6–3.8 scan both `lib/` and `lib64/` site-packages, and `lib64` links to `lib`, so
//! `site` may run each hook twice: both guard themselves to act once per interpreter start.

use std::path::Path;

use pysfx_wheel::{write_new, HOOK_MODULE, HOOK_PTH};

use crate::VenvError;

/// `loadenv-init.pth`: an `import` line, which `site` executes.
pub const LOADENV_INIT_PTH: &str = "import loadenv; loadenv.load()\n";

/// `loadenv.py`: runs on CPython 3.6 and later. Never prints a value.
pub const LOADENV_PY: &str = r#""""Load <release>/environment.json into os.environ at interpreter start.

Written by pysfx. The file sits next to the venv (sys.prefix/../environment.json) and holds one
JSON object; its values win over inherited variables. Strings are taken as they are; numbers and
booleans become their JSON text ("5", "1.5", "true", "false"); objects and arrays become their
JSON text too; null leaves the variable alone. A malformed file prints one warning line to
stderr and the interpreter starts anyway. Values are never printed.
"""
import errno
import json
import os
import sys

_loaded = False


def _as_text(value):
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def load():
    global _loaded
    if _loaded:
        return
    _loaded = True
    path = os.path.normpath(os.path.join(sys.prefix, os.pardir, "environment.json"))
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except (IOError, OSError) as error:
        # No file is the normal case; one that exists but cannot be read is worth a line.
        if getattr(error, "errno", None) != errno.ENOENT:
            sys.stderr.write("loadenv: ignoring %s: cannot read it (%s)\n" % (path, type(error).__name__))
        return
    try:
        data = json.loads(raw.decode("utf-8"))
    except Exception as error:
        sys.stderr.write("loadenv: ignoring %s: not valid JSON (%s)\n" % (path, type(error).__name__))
        return
    if not isinstance(data, dict):
        sys.stderr.write("loadenv: ignoring %s: not a JSON object\n" % path)
        return
    for key, value in data.items():
        if value is None:
            continue
        try:
            os.environ[str(key)] = _as_text(value)
        except Exception:
            # An empty name or one with "=" or NUL: the OS refuses it (OSError on 3.9+).
            sys.stderr.write("loadenv: ignoring the variable %r in %s: invalid name or value\n" % (key, path))
"#;

/// `<app>.pth`: appends `realpath(sys.prefix/../<app>)` to `sys.path`, once.
pub fn app_pth(app_name: &str) -> String {
    format!(
        "import os, sys; _pysfx_app = os.path.realpath(os.path.join(sys.prefix, os.pardir, {app:?})); _pysfx_app in sys.path or sys.path.append(_pysfx_app)\n",
        app = app_name
    )
}

/// Writes the three hook files into `site_packages`, each as a new file (a wheel that shipped
/// one of these names was refused before anything was written).
pub fn write_hooks(site_packages: &Path, app_name: &str) -> Result<(), VenvError> {
    for (name, text) in [
        (format!("{app_name}.pth"), app_pth(app_name)),
        (HOOK_PTH.to_string(), LOADENV_INIT_PTH.to_string()),
        (format!("{HOOK_MODULE}.py"), LOADENV_PY.to_string()),
    ] {
        let path = site_packages.join(name);
        write_new(&path, text.as_bytes(), 0o644)
            .map_err(|source| VenvError::Io { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_pth_quotes_the_name() {
        assert_eq!(
            app_pth("mysite"),
            "import os, sys; _pysfx_app = os.path.realpath(os.path.join(sys.prefix, os.pardir, \"mysite\")); _pysfx_app in sys.path or sys.path.append(_pysfx_app)\n"
        );
    }
}
