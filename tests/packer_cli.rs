//! The packer's command line: every man page it names can be printed (`pysfx man PAGE`) or
//! written (`pysfx man --all DIR`), and it does not colour its output under `NO_COLOR` or on a
//! `TERM=dumb` terminal.

use std::ffi::OsStr;
use std::process::Command;

use pysfx_e2e::{binaries, make_app, pack_command, run};

#[test]
fn every_man_page_named_can_be_printed_and_written() {
    let output = run(Command::new(&binaries().pysfx).arg("man"));
    assert!(output.status.success());
    let top = String::from_utf8_lossy(&output.stdout).replace("\\-", "-");
    let named: Vec<String> = top
        .split("pysfx-")
        .skip(1)
        .filter_map(|rest| rest.split_once("(1)").map(|(name, _)| name.to_string()))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    for expected in ["pack", "inspect", "verify", "keygen", "completions", "man"] {
        assert!(
            named.iter().any(|name| name == expected),
            "{expected}: {top}"
        );
    }
    let directory = tempfile::tempdir().expect("tempdir");
    let pages = directory.path().join("man1");
    let output = run(Command::new(&binaries().pysfx)
        .args(["man", "--all"])
        .arg(&pages));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(pages.join("pysfx.1").is_file());
    for name in &named {
        for spelling in [name.clone(), format!("pysfx-{name}")] {
            let output = run(Command::new(&binaries().pysfx).args(["man", &spelling]));
            assert!(output.status.success(), "pysfx man {spelling}");
            let page = String::from_utf8_lossy(&output.stdout);
            assert!(
                page.contains(&format!(".TH pysfx-{name} 1")),
                "pysfx man {spelling}: {page}"
            );
        }
        let written = std::fs::read_to_string(pages.join(format!("pysfx-{name}.1")))
            .unwrap_or_else(|_| panic!("pysfx-{name}.1 not written"));
        assert!(written.contains(&format!(".TH pysfx-{name} 1")));
    }
    let page =
        String::from_utf8_lossy(&run(Command::new(&binaries().pysfx).args(["man", "pack"])).stdout)
            .replace("\\-", "-");
    assert!(page.contains("--exclude") && page.contains("--app-version"));
    let output = run(Command::new(&binaries().pysfx).args(["man", "nope"]));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pack, inspect"));
}

#[test]
fn no_colour_under_no_color_or_a_dumb_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to run the packer on a terminal");
    }
    let work = tempfile::tempdir().expect("tempdir");
    let app = make_app(work.path(), "demoapp");
    let pack = pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("site.sfx"),
    );
    let line: Vec<String> = std::iter::once(pack.get_program())
        .chain(pack.get_args())
        .map(|arg| format!("'{}'", arg.to_string_lossy()))
        .collect();
    let on_terminal = |command: &str, environment: &[(&str, &str)]| {
        let mut script = Command::new("script");
        script
            .args(["-qec", command, "/dev/null"])
            .env("TERM", "xterm")
            .env_remove("NO_COLOR");
        for (name, value) in environment {
            script.env(name, value);
        }
        let output = run(&mut script);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let pack_line = line.join(" ");
    let usage_line = format!("'{}' pack --bogus", binaries().pysfx.display());
    // On a plain terminal the log level is coloured: the test sees colour where there is some.
    let coloured = on_terminal(&pack_line, &[]);
    assert!(
        coloured.contains("wrote") && has_colour(&coloured),
        "{coloured:?}"
    );
    for environment in [[("NO_COLOR", "1")], [("TERM", "dumb")]] {
        for command in [&pack_line, &usage_line] {
            let shown = on_terminal(command, &environment);
            assert!(
                shown.contains("wrote") || shown.contains("--bogus"),
                "{environment:?}: {shown:?}"
            );
            assert!(!has_colour(&shown), "{environment:?}: {shown:?}");
        }
    }
}

/// Whether `text` holds a colour escape (SGR, `ESC [ digits ; … m`); cursor movements of a
/// progress line are not colour.
fn has_colour(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|rest| {
            let parameters: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ';')
                .collect();
            rest[parameters.len()..].starts_with('m')
        })
    })
}
