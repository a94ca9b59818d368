//! A virtualenv written natively, laid out as CPython's `venv` lays it out.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use pysfx_tree::{create_dirs_below, write_new};

use crate::{Interpreter, VenvError};

/// Paths of a venv: where it is written now and where it will live.
#[derive(Debug, Clone)]
pub struct VenvPaths {
    /// Where the venv is written (a temporary sibling of the final place).
    pub root: PathBuf,
    /// Where it will be after the rename: baked into activate scripts and shebangs.
    pub final_root: PathBuf,
    /// `lib/pythonX.Y/site-packages`, relative.
    pub site_packages: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VenvError + '_ {
    move |source| VenvError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `pyvenv.cfg`: read by the interpreter at start (`home`, `include-system-site-packages`) and
/// by tools (`version`, `version_info`, `executable`).
pub fn pyvenv_cfg(
    interpreter: &Interpreter,
    base_executable: &Path,
    pysfx_version: &str,
) -> String {
    let home = base_executable
        .parent()
        .map(|parent| parent.display().to_string())
        .unwrap_or_default();
    let executable =
        fs::canonicalize(base_executable).unwrap_or_else(|_| base_executable.to_path_buf());
    format!(
        "home = {home}\ninclude-system-site-packages = false\nversion = {version}\nversion_info = {version}\nimplementation = CPython\nexecutable = {executable}\npysfx = {pysfx_version}\n",
        version = interpreter.version(),
        executable = executable.display(),
    )
}

/// Creates the venv skeleton under `paths.root`: `pyvenv.cfg`, `bin/python*` links, activate
/// scripts, `include/`, site-packages and the `lib64 → lib` link.
pub fn create_venv(
    paths: &VenvPaths,
    interpreter: &Interpreter,
    pysfx_version: &str,
) -> Result<(), VenvError> {
    let root = &paths.root;
    let base = interpreter.base_executable();
    let (major, minor) = interpreter.major_minor();
    // The venv's own directory, then everything below it; never anything above (see
    // `create_dirs_below`).
    std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), pysfx_tree::DIRECTORY_MODE)
        .create(root)
        .map_err(io(root))?;
    for directory in [paths.site_packages.as_str(), "bin", "include"] {
        create_dirs_below(root, directory).map_err(io(&root.join(directory)))?;
    }
    let bin = root.join("bin");
    if !interpreter.is_32bit {
        // CPython's venv does the same on 64-bit POSIX; distributions whose platlib is lib64
        // then find the same site-packages.
        let lib64 = root.join("lib64");
        symlink("lib", &lib64).map_err(io(&lib64))?;
    }
    let cfg = root.join("pyvenv.cfg");
    write_new(
        &cfg,
        pyvenv_cfg(interpreter, &base, pysfx_version).as_bytes(),
        0o644,
    )
    .map_err(io(&cfg))?;

    let python = bin.join("python");
    symlink(&base, &python).map_err(io(&python))?;
    let mut names = vec![format!("python{major}"), format!("python{major}.{minor}")];
    if interpreter.free_threaded() {
        names.push(format!("python{major}.{minor}t"));
    }
    for name in names {
        let link = bin.join(name);
        symlink("python", &link).map_err(io(&link))?;
    }
    let prompt = paths
        .final_root
        .parent()
        .and_then(|release| release.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "venv".into());
    for (name, text) in activate_scripts(&paths.final_root, &prompt) {
        let path = bin.join(name);
        write_new(&path, text.as_bytes(), 0o644).map_err(io(&path))?;
    }
    Ok(())
}

/// Single-quotes a string for POSIX shells.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Single-quotes a string for csh and tcsh, where a quote is `'\''` as in POSIX shells, but
/// `!` (history, even in a sourced file) and a newline must each be escaped by a backslash.
fn csh_quote(text: &str) -> String {
    let mut quoted = String::from("'");
    for character in text.chars() {
        match character {
            '\'' => quoted.push_str("'\\''"),
            '!' => quoted.push_str("\\!"),
            '\n' => quoted.push_str("\\\n"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

/// Single-quotes a string for fish, where only `\\` and `\'` are escapes inside quotes.
fn fish_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn activate_scripts(venv: &Path, prompt: &str) -> Vec<(&'static str, String)> {
    let venv_text = venv.display().to_string();
    let quoted = shell_quote(&venv_text);
    let quoted_prompt = shell_quote(&format!("({prompt}) "));
    let bash = format!(
        r#"# Source this file from bash or zsh: `. bin/activate`. Written by pysfx.
deactivate () {{
    if [ -n "${{_OLD_VIRTUAL_PATH:-}}" ]; then
        PATH="$_OLD_VIRTUAL_PATH"; export PATH; unset _OLD_VIRTUAL_PATH
    fi
    if [ -n "${{_OLD_VIRTUAL_PYTHONHOME:-}}" ]; then
        PYTHONHOME="$_OLD_VIRTUAL_PYTHONHOME"; export PYTHONHOME; unset _OLD_VIRTUAL_PYTHONHOME
    fi
    if [ -n "${{_OLD_VIRTUAL_PS1-}}" ]; then
        PS1="$_OLD_VIRTUAL_PS1"; export PS1; unset _OLD_VIRTUAL_PS1
    fi
    unset VIRTUAL_ENV VIRTUAL_ENV_PROMPT
    hash -r 2>/dev/null
    if [ "${{1:-}}" != "nondestructive" ]; then unset -f deactivate; fi
}}
deactivate nondestructive
VIRTUAL_ENV={quoted}
export VIRTUAL_ENV
_OLD_VIRTUAL_PATH="$PATH"
PATH="$VIRTUAL_ENV/bin:$PATH"
export PATH
if [ -n "${{PYTHONHOME:-}}" ]; then
    _OLD_VIRTUAL_PYTHONHOME="$PYTHONHOME"; unset PYTHONHOME
fi
if [ -z "${{VIRTUAL_ENV_DISABLE_PROMPT:-}}" ]; then
    _OLD_VIRTUAL_PS1="${{PS1:-}}"
    PS1={quoted_prompt}"${{PS1:-}}"
    export PS1
fi
VIRTUAL_ENV_PROMPT={quoted_prompt}
export VIRTUAL_ENV_PROMPT
hash -r 2>/dev/null
"#
    );
    let csh = format!(
        r#"# Source this file from csh or tcsh: `source bin/activate.csh`. Written by pysfx.
alias deactivate 'test $?_OLD_VIRTUAL_PATH != 0 && setenv PATH "$_OLD_VIRTUAL_PATH:q" && unset _OLD_VIRTUAL_PATH; rehash; unsetenv VIRTUAL_ENV; unsetenv VIRTUAL_ENV_PROMPT; test "\!:*" != "nondestructive" && unalias deactivate'
deactivate nondestructive
setenv VIRTUAL_ENV {venv}
set _OLD_VIRTUAL_PATH="$PATH:q"
setenv PATH "$VIRTUAL_ENV:q/bin:$PATH:q"
setenv VIRTUAL_ENV_PROMPT {prompt}
rehash
"#,
        venv = csh_quote(&venv_text),
        prompt = csh_quote(&format!("({prompt}) ")),
    );
    let fish = format!(
        r#"# Source this file from fish: `source bin/activate.fish`. Written by pysfx.
function deactivate -d 'Leave the virtual environment'
    if set -q _OLD_VIRTUAL_PATH
        set -gx PATH $_OLD_VIRTUAL_PATH
        set -e _OLD_VIRTUAL_PATH
    end
    if set -q _OLD_VIRTUAL_PYTHONHOME
        set -gx PYTHONHOME $_OLD_VIRTUAL_PYTHONHOME
        set -e _OLD_VIRTUAL_PYTHONHOME
    end
    set -e VIRTUAL_ENV
    set -e VIRTUAL_ENV_PROMPT
    if test "$argv[1]" != nondestructive
        functions -e deactivate
    end
end
deactivate nondestructive
set -gx VIRTUAL_ENV {venv}
set -gx _OLD_VIRTUAL_PATH $PATH
set -gx PATH "$VIRTUAL_ENV/bin" $PATH
if set -q PYTHONHOME
    set -gx _OLD_VIRTUAL_PYTHONHOME $PYTHONHOME
    set -e PYTHONHOME
end
set -gx VIRTUAL_ENV_PROMPT {prompt}
"#,
        venv = fish_quote(&venv_text),
        prompt = fish_quote(&format!("({prompt}) ")),
    );
    vec![
        ("activate", bash),
        ("activate.csh", csh),
        ("activate.fish", fish),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interpreter(version: (u32, u32, u32)) -> Interpreter {
        Interpreter {
            requested: "python3".into(),
            version_info: version,
            release_level: "final".into(),
            implementation: "cpython".into(),
            executable: "/opt/py/bin/python3".into(),
            prefix: "/opt/py".into(),
            base_prefix: "/opt/py".into(),
            base_executable: None,
            platform: "linux-x86_64".into(),
            is_32bit: false,
            glibc: Some("2.17".into()),
            py_debug: Some(false),
            has_refcount: false,
            with_pymalloc: Some(true),
            gil_disabled: None,
            cache_tag: Some("cpython-36".into()),
            magic: "330d0d0a".into(),
            filesystem_encoding: None,
            os_name: "posix".into(),
            sys_platform: "linux".into(),
            platform_machine: "x86_64".into(),
            platform_release: "3.10.0-1160.el7.x86_64".into(),
            platform_version: "#1 SMP Mon Oct 19 16:18:59 UTC 2020".into(),
            platform_system: "Linux".into(),
            platform_python_implementation: "CPython".into(),
            python_full_version: format!("{}.{}.{}", version.0, version.1, version.2),
            implementation_version: format!("{}.{}.{}", version.0, version.1, version.2),
            hook_code: None,
            answer: String::new(),
        }
    }

    #[test]
    fn pyvenv_cfg_lines() {
        let cases = [
            ((3, 6, 15), "/usr/bin/python3", "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.6.15\nversion_info = 3.6.15\nimplementation = CPython\nexecutable = /usr/bin/python3\npysfx = 0.1.0\n"),
            ((3, 13, 0), "/opt/python 3/bin/python3.13", "home = /opt/python 3/bin\ninclude-system-site-packages = false\nversion = 3.13.0\nversion_info = 3.13.0\nimplementation = CPython\nexecutable = /opt/python 3/bin/python3.13\npysfx = 0.1.0\n"),
        ];
        for (version, base, expected) in cases {
            // canonicalize fails for paths that do not exist here, leaving them as given; the
            // first case exists on most machines but may be a link, so compare the stable lines.
            let text = pyvenv_cfg(&interpreter(version), Path::new(base), "0.1.0");
            let stable = |t: &str| {
                t.lines()
                    .filter(|l| !l.starts_with("executable"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(stable(&text), stable(expected));
            assert!(text.lines().any(|l| l.starts_with("executable = /")));
        }
    }

    #[test]
    fn site_packages_per_build() {
        let mut python = interpreter((3, 13, 0));
        assert_eq!(python.site_packages(), "lib/python3.13/site-packages");
        python.gil_disabled = Some(true);
        assert_eq!(python.site_packages(), "lib/python3.13t/site-packages");
        assert_eq!(
            interpreter((3, 6, 15)).site_packages(),
            "lib/python3.6/site-packages"
        );
    }

    #[test]
    fn activate_quotes_the_path() {
        let scripts = activate_scripts(Path::new("/srv/it's here/venv"), "42");
        let bash = &scripts[0].1;
        assert!(
            bash.contains("VIRTUAL_ENV='/srv/it'\\''s here/venv'"),
            "{bash}"
        );
        assert!(bash.contains("PS1='(42) '\"${PS1:-}\""));
    }

    /// A shell on `PATH`; panics when it is missing, so no activate script goes untested
    /// (`.ci/run` installs tcsh and fish).
    fn shell(name: &str) -> std::path::PathBuf {
        std::env::var_os("PATH")
            .and_then(|path| {
                std::env::split_paths(&path)
                    .map(|directory| directory.join(name))
                    .find(|candidate| candidate.is_file())
            })
            .unwrap_or_else(|| panic!("no {name} on PATH: apt-get install {name}"))
    }

    /// Each activate script, sourced by its shell, sets `VIRTUAL_ENV` to the venv's exact path
    /// — quotes, `$`, backquotes, backslashes, `!` and a newline in it are not interpreted —
    /// puts its `bin` first on `PATH`, clears `PYTHONHOME` where venv's does, and `deactivate`
    /// puts both back.
    #[test]
    fn activate_scripts_give_the_exact_path_in_each_shell() {
        let directory = tempfile::tempdir().expect("temp dir");
        let venv =
            "/srv/it's $HOME `touch /tmp/pysfx-activate-ran` \"q\" a\\'b\\\\c \\ !x!!\nnext/venv";
        let scripts = activate_scripts(Path::new(venv), "42");
        let cases = [
            ("bash", "activate", "sh", true),
            ("tcsh", "activate.csh", "csh", false),
            ("fish", "activate.fish", "fish", true),
        ];
        for (shell_name, script_name, flavour, clears_home) in cases {
            let script = directory.path().join(script_name);
            let text = &scripts
                .iter()
                .find(|(name, _)| *name == script_name)
                .expect("script")
                .1;
            fs::write(&script, text).expect("write");
            let source = format!("source '{}'", script.display());
            let (show, after) = match flavour {
                "csh" => (
                    "printenv VIRTUAL_ENV; printenv PATH".to_string(),
                    "deactivate; printenv PATH; if ($?VIRTUAL_ENV) echo still".to_string(),
                ),
                "fish" => (
                    "printf '%s\\n' \"$VIRTUAL_ENV\" \"$PATH[1]\" \"PYTHONHOME=[$PYTHONHOME]\"".to_string(),
                    "deactivate; printf '%s\\n' \"$PATH[1]\" \"PYTHONHOME=[$PYTHONHOME]\"; set -q VIRTUAL_ENV; and echo still; true".to_string(),
                ),
                _ => (
                    "printf '%s\\n' \"$VIRTUAL_ENV\" \"${PATH%%:*}\" \"PYTHONHOME=[${PYTHONHOME:-}]\"".to_string(),
                    "deactivate; printf '%s\\n' \"${PATH%%:*}\" \"PYTHONHOME=[${PYTHONHOME:-}]\"; [ -n \"${VIRTUAL_ENV+x}\" ] && echo still; true".to_string(),
                ),
            };
            let output = std::process::Command::new(shell(shell_name))
                .args(match flavour {
                    "csh" => vec!["-f", "-c"],
                    "fish" => vec!["--no-config", "-c"],
                    _ => vec!["--norc", "--noprofile", "-c"],
                })
                .arg(format!("{source}\n{show}\n{after}"))
                .env("PATH", "/usr/bin:/bin")
                .env("PYTHONHOME", "/elsewhere")
                .output()
                .expect("run the shell");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{shell_name}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let bin = format!("{venv}/bin");
            let expected = if flavour == "csh" {
                // csh prints PATH whole; PYTHONHOME is venv's csh script's to leave alone.
                format!("{venv}\n{bin}:/usr/bin:/bin\n/usr/bin:/bin\n")
            } else {
                let home = if clears_home { "" } else { "/elsewhere" };
                format!("{venv}\n{bin}\nPYTHONHOME=[{home}]\n/usr/bin\nPYTHONHOME=[/elsewhere]\n")
            };
            assert_eq!(stdout, expected, "{shell_name}");
        }
        assert!(
            !Path::new("/tmp/pysfx-activate-ran").exists(),
            "a backquoted command in the path ran"
        );
    }
}
