//! SPEC "What goes in": VCS metadata and byte-code caches stay out of the payload, `--exclude`
//! leaves out more, files that look like secrets are named in a warning, and symbolic links are
//! stored as links when they stay inside their directory, refused when they leave it — by the
//! packer, and again by the stub and `--verify` for a crafted artifact.

use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{
    binaries, install_with, make_app, pack, pack_command, python, raw_artifact_with_links,
    reseal_bytes, run,
};

/// The entry names of an artifact's payload, as zip readers see them.
fn entries(artifact: &Path) -> Vec<String> {
    let file = std::fs::File::open(artifact).expect("open");
    let mut archive = zip::ZipArchive::new(file).expect("a zip");
    let mut names: Vec<String> = (0..archive.len())
        .map(|index| {
            let entry = archive.by_index_raw(index).expect("entry");
            String::from_utf8_lossy(entry.name_raw()).into_owned()
        })
        .collect();
    names.sort();
    names
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn vcs_metadata_and_byte_code_stay_out_and_exclude_leaves_out_more() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = make_app(root, "demoapp");
    write(&app.join(".git/config"), "[core]\n");
    write(&app.join(".git/objects/ab/cdef"), "blob");
    write(
        &app.join("vendor/lib/.git"),
        "gitdir: ../../.git/modules/lib\n",
    );
    write(&app.join("vendor/lib/lib.py"), "X = 1\n");
    write(&app.join(".hg/store/data"), "hg");
    write(
        &app.join("appcore/__pycache__/__init__.cpython-311.pyc"),
        "pyc",
    );
    write(&app.join("appcore/stale.pyc"), "pyc");
    // A cache kept elsewhere, linked in: left out as the directory would be.
    write(&root.join("cache/x.cpython-311.pyc"), "pyc");
    symlink("../../cache", app.join("vendor/__pycache__")).expect("link");
    write(&app.join("db.sqlite3"), "sqlite");
    write(&app.join("media/upload.png"), "png");
    write(
        &app.join("appcore/media/keep.txt"),
        "kept: /media is anchored",
    );
    write(&app.join(".gitignore"), "*.pyc\n");
    write(&app.join(".env"), "SECRET_KEY=x\n");
    write(&app.join("certs/server.key"), "key");
    write(&app.join("loadenv.py"), "def load(): pass\n");
    let static_dir = root.join("assets");
    write(&static_dir.join(".svn/entries"), "svn");
    write(&static_dir.join("drafts/wip.css"), "wip");
    write(&static_dir.join("site.css"), "body {}");
    let artifact = root.join("site.sfx");
    let output = run(&mut pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--static"),
            static_dir.as_os_str(),
            OsStr::new("--exclude"),
            OsStr::new("*.sqlite3"),
            OsStr::new("--exclude"),
            OsStr::new("/media"),
            OsStr::new("--exclude"),
            OsStr::new("drafts/"),
            OsStr::new("--exclude"),
            OsStr::new("nothing-matches-*"),
            OsStr::new("--no-bootstrap"),
        ],
        &artifact,
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let names: Vec<String> = entries(&artifact)
        .into_iter()
        .filter(|name| !name.starts_with(".pysfx/"))
        .collect();
    assert_eq!(
        names,
        [
            "demoapp/.env",
            "demoapp/.gitignore",
            "demoapp/appcore/__init__.py",
            "demoapp/appcore/media/keep.txt",
            "demoapp/certs/server.key",
            "demoapp/loadenv.py",
            "demoapp/manage.py",
            "demoapp/vendor/lib/lib.py",
            "static.in/0/site.css",
        ]
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("WARN"))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|line| line.contains("look like local secrets")
                && line.contains("demoapp/.env")
                && line.contains("demoapp/certs/server.key")
                && line.contains("--exclude")),
        "{stderr}"
    );
    assert!(
        warnings
            .iter()
            .any(|line| line.contains("\"nothing-matches-*\" matched nothing")),
        "{stderr}"
    );
    assert!(
        warnings.iter().any(|line| line
            .contains("the app's demoapp/loadenv.py would be imported as `loadenv` instead")),
        "{stderr}"
    );

    // Excluded, a secret is no longer named.
    let output = run(&mut pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--exclude"),
            OsStr::new(".env"),
            OsStr::new("--exclude"),
            OsStr::new("certs/"),
            OsStr::new("--no-bootstrap"),
        ],
        &artifact,
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("secrets"), "{stderr}");
    assert!(!entries(&artifact).iter().any(|name| name.contains(".env")));

    // A negation is a usage error.
    let output = run(&mut pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--exclude"),
            OsStr::new("!keep"),
        ],
        &artifact,
    ));
    assert_eq!(output.status.code(), Some(2));
}

/// An app with links that stay inside: to a file, to a directory, through another link.
fn app_with_inner_links(root: &Path) -> PathBuf {
    let app = make_app(root, "demoapp");
    write(&app.join("settings/prod.py"), "DEBUG = False\n");
    write(&app.join("static/v2/app.css"), "body {}");
    symlink("../settings/prod.py", app.join("appcore/settings.py")).expect("link");
    symlink("v2", app.join("static/current")).expect("link");
    symlink("current/app.css", app.join("static/latest.css")).expect("link");
    app
}

#[test]
fn links_inside_the_app_are_stored_and_installed_as_links() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = app_with_inner_links(root);
    let artifact = pack(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &root.join("site.sfx"),
    );
    let output = run(Command::new(&artifact).arg("--verify"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(Command::new(&binaries().pysfx).arg("verify").arg(&artifact));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let destination = root.join("release");
    let (code, result, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    let app = destination.join("demoapp");
    for (link, target) in [
        ("appcore/settings.py", "../settings/prod.py"),
        ("static/current", "v2"),
        ("static/latest.css", "current/app.css"),
    ] {
        let read = std::fs::read_link(app.join(link)).unwrap_or_else(|_| panic!("{link}"));
        assert_eq!(read, Path::new(target), "{link}");
    }
    assert_eq!(
        std::fs::read_to_string(app.join("static/latest.css")).expect("read through"),
        "body {}"
    );
    let output = run(Command::new(destination.join("venv/bin/python"))
        .args(["-c", "import appcore.settings as s; print(s.DEBUG)"]));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "False\n");
}

#[test]
fn links_that_leave_the_app_are_refused_naming_them() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let outside = root.join("outside");
    write(&outside.join("secret.txt"), "the packing machine's");
    let cases: [(&str, PathBuf); 4] = [
        ("passwd", PathBuf::from("/etc/passwd")),
        ("up", PathBuf::from("../outside/secret.txt")),
        ("appcore/deep", PathBuf::from("../../outside")),
        // Inside lexically, outside once `here` (a link to the app itself) is followed.
        ("sneaky", PathBuf::from("here/../outside/secret.txt")),
    ];
    for (name, target) in &cases {
        let app_root = root.join(format!("case-{}", name.replace('/', "-")));
        let app = make_app(&app_root, "demoapp");
        symlink(".", app.join("here")).expect("link");
        symlink(target, app.join(name)).expect("link");
        let output = run(&mut pack_command(
            &[
                OsStr::new("--app"),
                app.as_os_str(),
                OsStr::new("--no-bootstrap"),
            ],
            &app_root.join("site.sfx"),
        ));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{} -> {}",
                app.join(name).display(),
                target.display()
            )) && stderr.contains("cannot be stored"),
            "{name}: names the link: {stderr}"
        );
        assert!(!app_root.join("site.sfx").exists());
    }
}

#[test]
fn a_crafted_link_that_escapes_is_refused_by_the_stub_and_verify() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let file: (&str, &[u8]) = ("demoapp/app.py", b"X = 1\n");
    let cases: [(&str, &[(&str, &str)]); 5] = [
        ("climbs", &[("demoapp/evil", "../../../../etc")]),
        ("absolute", &[("demoapp/evil", "/etc/passwd")]),
        (
            "through a link",
            &[("demoapp/self", "."), ("demoapp/evil", "self/../x")],
        ),
        ("outside the app", &[("wheels/evil", "x")]),
        ("empty", &[("demoapp/evil", "")]),
    ];
    for (what, links) in cases {
        let artifact = raw_artifact_with_links(
            &root.join(format!("{}.sfx", what.replace(' ', "-"))),
            &[],
            &[file],
            links,
            |_| {},
        );
        let destination = root.join(format!("release-{}", what.replace(' ', "-")));
        let (code, result, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
        assert_eq!(code, 3, "{what}: {result}\n{stderr}");
        let error = result["error"].as_str().unwrap_or_default();
        let evil = links.last().map(|(name, _)| *name).unwrap_or_default();
        assert!(error.contains(evil), "{what}: names the entry: {error}");
        assert!(!destination.exists(), "{what}: nothing written");
        let output = run(Command::new(&artifact).arg("--verify"));
        assert_eq!(output.status.code(), Some(3), "{what}: --verify");
        let output = run(Command::new(&binaries().pysfx).arg("verify").arg(&artifact));
        assert_eq!(output.status.code(), Some(3), "{what}: pysfx verify");
    }
    // The same kind of entry, staying inside, installs.
    let artifact = raw_artifact_with_links(
        &root.join("fine.sfx"),
        &[],
        &[file],
        &[("demoapp/alias.py", "app.py")],
        |_| {},
    );
    let destination = root.join("release-fine");
    let (code, result, stderr) = install_with(&artifact, &destination, &python(11).path, &[]);
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert_eq!(
        std::fs::read_link(destination.join("demoapp/alias.py")).expect("a link"),
        Path::new("app.py")
    );
}

/// A link entry must be as the format says (`S_IFLNK | 0777`, stored): one of another mode,
/// sealed again with a digest that matches, is refused by the install and both verifies.
#[test]
fn a_link_entry_of_another_mode_is_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let name = "demoapp/alias.py";
    let artifact = raw_artifact_with_links(
        &root.join("fine.sfx"),
        &[],
        &[("demoapp/app.py", b"X = 1\n")],
        &[(name, "app.py")],
        |_| {},
    );
    // The central directory's record of the link: its external attributes' mode.
    let set_mode = |mode: u32| {
        move |payload: &mut [u8]| {
            let record = (0..payload.len().saturating_sub(46))
                .find(|&at| {
                    payload[at..].starts_with(b"PK\x01\x02")
                        && payload[at + 46..].starts_with(name.as_bytes())
                })
                .expect("the link's directory record");
            let attributes = (mode << 16).to_le_bytes();
            payload[record + 38..record + 42].copy_from_slice(&attributes);
        }
    };
    for (what, mode, code) in [("0777", 0o120777, 0), ("0755", 0o120755, 3)] {
        let resealed = reseal_bytes(&artifact, &root.join(format!("{what}.sfx")), set_mode(mode));
        let destination = root.join(format!("release-{what}"));
        let (got, result, stderr) = install_with(&resealed, &destination, &python(11).path, &[]);
        assert_eq!(got, code, "{what}: {result}\n{stderr}");
        let output = run(Command::new(&resealed).arg("--verify"));
        assert_eq!(output.status.code(), Some(code), "{what}: --verify");
        let output = run(Command::new(&binaries().pysfx).arg("verify").arg(&resealed));
        assert_eq!(output.status.code(), Some(code), "{what}: pysfx verify");
        if code == 3 {
            let error = result["error"].as_str().unwrap_or_default();
            assert!(error.contains(name) && error.contains("S_IFLNK"), "{error}");
            assert!(!destination.exists(), "{what}: nothing written");
        }
    }
}

/// An app file whose name cannot be stored is named in one line, its line break escaped.
#[test]
fn a_name_with_a_line_break_is_refused_in_one_line() {
    let work = tempfile::tempdir().expect("tempdir");
    let app = make_app(work.path(), "demoapp");
    write(&app.join("new\nline.py"), "x = 1\n");
    let output = run(&mut pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("site.sfx"),
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("new\\nline.py: cannot be stored"),
        "{stderr}"
    );
}

/// A name that is not UTF-8 is refused only when it would be stored: one `--exclude` leaves
/// out (or that is byte-code, always left out) packs.
#[test]
fn a_name_that_is_not_utf8_is_refused_unless_left_out() {
    use std::os::unix::ffi::OsStrExt;
    let work = tempfile::tempdir().expect("tempdir");
    let app = make_app(work.path(), "demoapp");
    let logs = app.join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    write(&logs.join(OsStr::from_bytes(b"bad\xff.log")), "x\n");
    write(&app.join(OsStr::from_bytes(b"old\xff.pyc")), "x\n");
    let pack = |extra: &[&OsStr]| {
        let mut args = vec![
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ];
        args.extend_from_slice(extra);
        run(&mut pack_command(&args, &work.path().join("site.sfx")))
    };
    let output = pack(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not UTF-8") && stderr.contains(".log"),
        "{stderr}"
    );
    let output = pack(&[OsStr::new("--exclude"), OsStr::new("*.log")]);
    assert!(output.status.success(), "{output:?}");
}

/// A link to what the pack leaves out (an `--exclude`d directory, `.git`) is stored, as any
/// link that stays inside, but said to dangle, as one to nothing is; links to what is stored,
/// through other links too, are not.
#[test]
fn a_link_to_what_is_left_out_is_said_to_dangle() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let app = app_with_inner_links(root);
    write(&app.join("logs/today.log"), "x\n");
    symlink("logs/today.log", app.join("latest.log")).expect("link");
    // Through a link to the left-out directory, back to a stored file: resolved in the
    // source tree, dangling in the release, where `logs/` is not.
    symlink("logs", app.join("logdir")).expect("link");
    symlink("logdir/../appcore/__init__.py", app.join("init.py")).expect("link");
    let output = run(&mut pack_command(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--no-bootstrap"),
            OsStr::new("--exclude"),
            OsStr::new("logs/"),
        ],
        &root.join("site.sfx"),
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let dangling: Vec<&str> = stderr.lines().filter(|l| l.contains("dangling")).collect();
    assert_eq!(dangling.len(), 3, "{stderr}");
    assert!(
        stderr.contains("latest.log -> logs/today.log points at nothing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("init.py -> logdir/../appcore/__init__.py goes through"),
        "{stderr}"
    );
}
