//! What `pysfx pack` does with its inputs: `-o` never replaces one, leftovers of a killed
//! pack beside the output are cleared by the next pack, and a local project built into a wheel
//! packs the same bytes each time.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pysfx_e2e::{
    bootstrap_wheels, listing, make_app, pack, pack_command, run, test_stub, tiny_wheel,
};

/// An app, a `--wheels` directory with one tiny wheel, a `-r` file and a copy of the stub.
struct Inputs {
    app: PathBuf,
    wheels: PathBuf,
    wheel: PathBuf,
    requirements: PathBuf,
    stub: PathBuf,
}

fn inputs(root: &Path) -> Inputs {
    let wheels = root.join("wheels");
    let wheel = tiny_wheel(&wheels, "tinylib", "1.0", &[]);
    let requirements = root.join("requirements.txt");
    std::fs::write(&requirements, "tinylib\n").expect("write requirements");
    let stub = root.join("pysfx-stub");
    std::fs::copy(test_stub().0, &stub).expect("copy the stub");
    Inputs {
        app: make_app(root, "demoapp"),
        wheels,
        wheel,
        requirements,
        stub,
    }
}

#[test]
fn an_output_naming_an_input_is_a_usage_error_and_the_input_is_untouched() {
    let work = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(work.path());
    // -r with --python would run pip; the check comes first, so nothing is collected.
    // An interpreter --python names: packing would replace it with the artifact.
    let interpreter = work.path().join("python3.11");
    std::fs::write(&interpreter, "#!/bin/sh\nexit 1\n").expect("write");
    std::fs::set_permissions(&interpreter, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let cases: [(&str, PathBuf, Vec<&OsStr>); 6] = [
        ("a wheel of --wheels", inputs.wheel.clone(), vec![]),
        ("a file of --app", inputs.app.join("manage.py"), vec![]),
        ("--stub", inputs.stub.clone(), vec![]),
        (
            "a -r file",
            inputs.requirements.clone(),
            vec![
                OsStr::new("-r"),
                inputs.requirements.as_os_str(),
                OsStr::new("--python"),
                OsStr::new("python3"),
            ],
        ),
        (
            "the --python interpreter",
            interpreter.clone(),
            vec![OsStr::new("--python"), interpreter.as_os_str()],
        ),
        (
            "a wheel of --wheels, through a symlinked directory",
            work.path().join("linked/tinylib-1.0-py3-none-any.whl"),
            vec![],
        ),
    ];
    std::os::unix::fs::symlink(&inputs.wheels, work.path().join("linked")).expect("symlink");
    for (what, output, extra) in cases {
        let before = std::fs::read(&output).expect("read the input");
        let mut args = vec![
            OsStr::new("--app"),
            inputs.app.as_os_str(),
            OsStr::new("--wheels"),
            inputs.wheels.as_os_str(),
            OsStr::new("--stub"),
            inputs.stub.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ];
        args.extend(extra);
        let result = run(&mut pack_command(&args, &output));
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains(&output.display().to_string()) && stderr.contains("-o "),
            "{what}: names the output: {stderr}"
        );
        assert_eq!(
            std::fs::read(&output).expect("read the input"),
            before,
            "{what}: the input changed"
        );
    }
    let pack_to = |output: &Path| {
        run(&mut pack_command(
            &[
                OsStr::new("--app"),
                inputs.app.as_os_str(),
                OsStr::new("--wheels"),
                inputs.wheels.as_os_str(),
                OsStr::new("--no-bootstrap"),
            ],
            output,
        ))
    };
    // An output that is a FIFO (or a device, as `/dev/null`) is not replaced.
    let fifo = work.path().join("fifo");
    assert!(run(std::process::Command::new("mkfifo").arg(&fifo))
        .status
        .success());
    let result = pack_to(&fifo);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &std::fs::symlink_metadata(&fifo).expect("lstat").file_type()
    ));
    // An output inside an input directory that does not exist yet is refused too.
    let output = inputs.app.join("dist/site.sfx");
    let result = pack_to(&output);
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("inside the --app directory"), "{stderr}");
    assert!(!inputs.app.join("dist").exists());
}

/// A pid no process has now.
fn unused_pid() -> u32 {
    (999_999..)
        .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        .expect("a free pid")
}

#[test]
fn a_pack_removes_leftovers_of_killed_packs_but_not_of_running_ones() {
    let work = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(work.path());
    let out = work.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let dead = out.join(format!(".site.sfx.pysfx-tmp-{}", unused_pid()));
    let alive = out.join(format!(".site.sfx.pysfx-tmp-{}", std::process::id()));
    let other = out.join(format!(".other.sfx.pysfx-tmp-{}", unused_pid()));
    for path in [&dead, &alive, &other] {
        std::fs::write(path, b"half an artifact").expect("plant");
    }
    pack(
        &[
            OsStr::new("--app"),
            inputs.app.as_os_str(),
            OsStr::new("--wheels"),
            inputs.wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &out.join("site.sfx"),
    );
    assert!(!dead.exists(), "the killed pack's leftover is still there");
    assert!(alive.exists(), "a running pack's file was removed");
    assert!(other.exists(), "another output's leftover was touched");
    assert!(out.join("site.sfx").exists());
}

/// The packer writes its temporary file `.OUT.pysfx-tmp-PID` as a new file: a symbolic link
/// planted at that name (a process number is easy to guess) is removed, never written
/// through, and what it points at is untouched.
#[test]
fn a_link_planted_at_the_packs_temporary_name_is_not_written_through() {
    let work = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(work.path());
    let out = work.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let victim = work.path().join("victim");
    std::fs::write(&victim, b"precious\n").expect("write");
    let output = out.join("site.sfx");
    let pack = pack_command(
        &[
            OsStr::new("--app"),
            inputs.app.as_os_str(),
            OsStr::new("--wheels"),
            inputs.wheels.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &output,
    );
    // The link is made by the very process that then becomes the packer, under its PID.
    let mut planted = std::process::Command::new("sh");
    planted
        .arg("-c")
        .arg(r#"victim=$1 out=$2; shift 2; ln -s "$victim" "$out/.site.sfx.pysfx-tmp-$$" && exec "$@""#)
        .arg("sh")
        .arg(&victim)
        .arg(&out)
        .arg(pack.get_program())
        .args(pack.get_args());
    let result = run(&mut planted);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious\n");
    let written = std::fs::symlink_metadata(&output).expect("the artifact");
    assert!(written.is_file(), "the artifact is not a file of its own");
    assert_eq!(listing(&out), ["site.sfx"]);
}

/// Bytes free in the filesystem of `path`, from `df`.
fn free_bytes(path: &Path) -> Option<u64> {
    let output = run(std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

#[test]
fn an_app_file_of_4_gib_and_more_is_packed_as_zip64_and_installed() {
    const SIZE: u64 = (4 << 30) + 1;
    let work = tempfile::tempdir().expect("tempdir");
    // The sparse source costs nothing; the installed copy is written out in full.
    match free_bytes(work.path()) {
        Some(free) if free >= 12 << 30 => {}
        free => {
            eprintln!(
                "skipped: {} has {free:?} bytes free, this test needs 12 GiB",
                work.path().display()
            );
            return;
        }
    }
    let app = make_app(work.path(), "demoapp");
    let big = app.join("big.bin");
    let mut file = std::fs::File::create(&big).expect("create");
    // 8 MiB of noise up front: 4 GiB of zeros alone deflates more than 1000:1, which the
    // stub refuses as a decompression bomb.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..8 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    use std::io::{Read, Seek, SeekFrom, Write};
    file.write_all(&noise).expect("write");
    file.set_len(SIZE).expect("set_len");
    file.seek(SeekFrom::Start(SIZE - 1)).expect("seek");
    file.write_all(b"!").expect("write");
    drop(file);

    let artifact = pack(
        &[
            OsStr::new("--app"),
            app.as_os_str(),
            OsStr::new("--wheels"),
            pysfx_e2e::test_wheels(11).as_os_str(),
            OsStr::new("--no-bootstrap"),
        ],
        &work.path().join("big.sfx"),
    );
    // An ordinary zip reader sees the zip64 entry at its full size.
    let output = run(std::process::Command::new(pysfx_e2e::host_python())
        .args([
            "-c",
            "import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo('demoapp/big.bin').file_size)",
        ])
        .arg(&artifact));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        SIZE.to_string(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let destination = work.path().join("release");
    let (code, result, stderr) = pysfx_e2e::install_with(
        &artifact,
        &destination,
        &pysfx_e2e::python(11).path,
        &[OsStr::new("--no-compile")],
    );
    assert_eq!(code, 0, "{result}\n{stderr}");
    let installed = destination.join("demoapp/big.bin");
    assert_eq!(std::fs::metadata(&installed).expect("stat").len(), SIZE);
    let mut file = std::fs::File::open(&installed).expect("open");
    let mut head = vec![0u8; noise.len()];
    file.read_exact(&mut head).expect("read");
    assert!(head == noise, "the first 8 MiB differ");
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(SIZE - 1)).expect("seek");
    file.read_exact(&mut last).expect("read");
    assert_eq!(&last, b"!");
}

/// SPEC: artifacts are reproducible ("fixed times from SOURCE_DATE_EPOCH or a constant"). A
/// local project in `-r` is built by its backend (here setuptools, the most common), which
/// stamps the wheel with the build time unless SOURCE_DATE_EPOCH is set: the packer sets it
/// for pip to its own zip time, so two packs without it, seconds apart and with the project's
/// files touched in between, are the same bytes. The same under another umask (the wheel's
/// modes follow it), and after a pack of a module since deleted: setuptools packs what its
/// `build/` holds, so a pack leaves no `build/` or `.egg-info` in the project, and names a
/// `build/` that was there before it.
#[test]
fn a_local_project_packs_reproducibly_without_source_date_epoch() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    let project = root.join("mylib");
    std::fs::create_dir_all(project.join("mylib")).expect("create the project");
    std::fs::write(
        project.join("pyproject.toml"),
        "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
         [project]\nname = \"mylib\"\nversion = \"1.0\"\n",
    )
    .expect("write pyproject.toml");
    let module = project.join("mylib/__init__.py");
    std::fs::write(&module, "VALUE = 'mylib 1.0'\n").expect("write the module");
    // Offline: setuptools for the isolated build comes from the bootstrap wheels.
    std::fs::write(
        root.join("requirements.txt"),
        format!(
            "--no-index\n--find-links {}\n./mylib\n",
            bootstrap_wheels(11).display()
        ),
    )
    .expect("write requirements");
    let app = make_app(root, "demoapp");
    let pack_logged = |output: &Path, umask: &str| {
        let mut command = pack_command(
            &[
                OsStr::new("--app"),
                app.as_os_str(),
                OsStr::new("-r"),
                OsStr::new("requirements.txt"),
                OsStr::new("--target"),
                OsStr::new("3.11"),
                OsStr::new("--no-bootstrap"),
            ],
            output,
        );
        command.current_dir(root).env_remove("SOURCE_DATE_EPOCH");
        let result = run(&mut with_umask(&command, umask));
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        assert!(result.status.success(), "{stderr}");
        (std::fs::read(output).expect("read the artifact"), stderr)
    };
    let pack = |output: &Path| pack_logged(output, "022").0;
    let first = pack(&root.join("first.sfx"));
    // Zip times count in steps of two seconds.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .append(true)
        .open(&module)
        .and_then(|file| file.set_modified(later))
        .expect("touch the module");
    let second = pack(&root.join("second.sfx"));
    assert!(
        first == second,
        "two packs of the same inputs differ ({} and {} bytes)",
        first.len(),
        second.len()
    );
    let litter = |project: &Path| -> Vec<String> {
        let names = pysfx_e2e::listing(project).into_iter();
        names
            .filter(|name| name == "build" || name.ends_with(".egg-info"))
            .collect()
    };
    assert_eq!(litter(&project), Vec::<String>::new());
    // A module packed once and deleted since is not packed again.
    let old = project.join("mylib/old.py");
    std::fs::write(&old, "OLD = 1\n").expect("write");
    let with_old = pack(&root.join("with-old.sfx"));
    assert!(with_old != first);
    std::fs::remove_file(&old).expect("delete");
    let (third, _) = pack_logged(&root.join("third.sfx"), "077");
    assert!(
        first == third,
        "a pack under umask 077, after a pack of a module since deleted, differs"
    );
    // A build/ the user left is theirs: kept, and named.
    std::fs::create_dir_all(project.join("build/lib")).expect("mkdir");
    let (_, stderr) = pack_logged(&root.join("fourth.sfx"), "022");
    assert!(stderr.contains("mylib/build exists"), "{stderr}");
    assert_eq!(litter(&project), ["build"]);
    // The project named by a `file:` URL is the same project: nothing left there either.
    std::fs::remove_dir_all(project.join("build")).expect("remove build/");
    for line in [
        format!("mylib @ file://{}", project.display()),
        "file:./mylib".into(),
    ] {
        std::fs::write(
            root.join("requirements.txt"),
            format!(
                "--no-index\n--find-links {}\n{line}\n",
                bootstrap_wheels(11).display()
            ),
        )
        .expect("write requirements");
        let (url, _) = pack_logged(&root.join("url.sfx"), "022");
        assert_eq!(litter(&project), Vec::<String>::new(), "{line}");
        assert!(url == first, "{line}: another artifact than ./mylib's");
    }
}

/// `command` run by `sh` under `umask` (the test process's own umask is every test's).
fn with_umask(command: &Command, umask: &str) -> Command {
    let mut wrapped = Command::new("sh");
    wrapped
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(directory) = command.get_current_dir() {
        wrapped.current_dir(directory);
    }
    wrapped
}

/// The app's name is its folder's name as given: `--app mysite`, a link to the directory a
/// build checked out (`src-1a2b3c`), packs `mysite/` build after build; `--app .` is the
/// directory's own name.
#[test]
fn the_app_is_named_by_the_folder_given_not_a_links_target() {
    let work = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(work.path());
    let checkout = work.path().join("src-1a2b3c");
    std::fs::rename(&inputs.app, &checkout).expect("move");
    std::os::unix::fs::symlink("src-1a2b3c", work.path().join("mysite")).expect("link");
    let name_of = |app: &Path, directory: &Path, output: &str| {
        let output = work.path().join(output);
        let mut command = pack_command(
            &[
                OsStr::new("--app"),
                app.as_os_str(),
                OsStr::new("--wheels"),
                inputs.wheels.as_os_str(),
                OsStr::new("--no-bootstrap"),
            ],
            &output,
        );
        let result = run(command.current_dir(directory));
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        let inspected = run(std::process::Command::new(&pysfx_e2e::binaries().pysfx)
            .arg("inspect")
            .arg("--json")
            .arg(&output));
        let manifest: serde_json::Value =
            serde_json::from_slice(&inspected.stdout).expect("inspect --json");
        manifest["manifest"]["app"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        name_of(Path::new("mysite/"), work.path(), "a.sfx"),
        "mysite"
    );
    assert_eq!(name_of(Path::new("."), &checkout, "b.sfx"), "src-1a2b3c");
}

/// Two different wheels of one distribution, version and tag — the same file name in two
/// `--wheels` directories, or names spelled differently (`1.0` and `1.0.0` are one version)
/// — would leave the install a tie-break: refused, naming both. Two versions are not a tie.
#[test]
fn two_wheels_of_one_version_and_tag_are_refused_naming_both() {
    let work = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(work.path());
    let pack_with = |directories: &[&Path]| {
        let mut args = vec![
            OsStr::new("--app"),
            inputs.app.as_os_str(),
            OsStr::new("--no-bootstrap"),
        ];
        for directory in directories {
            args.extend([OsStr::new("--wheels"), directory.as_os_str()]);
        }
        run(&mut pack_command(&args, &work.path().join("out.sfx")))
    };
    let respelled = work.path().join("respelled");
    let other = tiny_wheel(&respelled, "tinylib", "1.0.0", &[]);
    let result = pack_with(&[&inputs.wheels, &respelled]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&*inputs.wheel.to_string_lossy())
            && stderr.contains(&*other.to_string_lossy())
            && stderr.contains("two different wheels of one distribution, version and tag"),
        "{stderr}"
    );
    // The same file name, other bytes.
    let renamed = work.path().join("renamed");
    std::fs::create_dir(&renamed).expect("mkdir");
    std::fs::copy(
        &other,
        renamed.join(inputs.wheel.file_name().expect("name")),
    )
    .expect("cp");
    let result = pack_with(&[&inputs.wheels, &renamed]);
    assert_eq!(result.status.code(), Some(1));
    // The same bytes twice, or another version: packed.
    let again = work.path().join("again");
    std::fs::create_dir(&again).expect("mkdir");
    std::fs::copy(&inputs.wheel, again.join("tinylib-1.0-py3-none-any.whl")).expect("cp");
    let newer = work.path().join("newer");
    tiny_wheel(&newer, "tinylib", "1.1", &[]);
    let result = pack_with(&[&inputs.wheels, &again, &newer]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// An entry of a `--wheels` directory named like a wheel that is no file — a link to nothing,
/// a FIFO, a directory — is an error naming it: the set would lack that wheel (it was passed
/// over in silence while another wheel was there). A wheel's name is escaped in messages.
#[test]
fn a_wheel_entry_that_is_no_file_is_refused_naming_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(work.path());
    let pack_with = |directory: &Path| {
        let args = [
            OsStr::new("--app"),
            inputs.app.as_os_str(),
            OsStr::new("--no-bootstrap"),
            OsStr::new("--wheels"),
            directory.as_os_str(),
        ];
        run(&mut pack_command(&args, &work.path().join("out.sfx")))
    };
    type Make = fn(&Path);
    let cases: [(&str, &str, Make); 3] = [
        ("dangling", "a link to nothing", |path| {
            std::os::unix::fs::symlink("/nonexistent/gone.whl", path).expect("symlink")
        }),
        ("fifo", "not a regular file", |path| {
            let made = std::process::Command::new("mkfifo").arg(path).status();
            assert!(made.expect("mkfifo").success(), "mkfifo")
        }),
        ("directory", "a directory", |path| {
            std::fs::create_dir(path).expect("mkdir")
        }),
    ];
    for (case, what, make) in cases {
        let directory = work.path().join(case);
        std::fs::create_dir(&directory).expect("mkdir");
        std::fs::copy(
            &inputs.wheel,
            directory.join("tinylib-1.0-py3-none-any.whl"),
        )
        .expect("cp");
        let entry = directory.join("other-2.0-py3-none-any.whl");
        make(&entry);
        let result = pack_with(&directory);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            stderr.contains(&*entry.to_string_lossy()) && stderr.contains(what),
            "{case}: {stderr}"
        );
        assert!(!work.path().join("out.sfx").exists(), "{case}");
    }
    // A line break in a wheel's name stays on the error's one line.
    let odd = work.path().join("odd");
    std::fs::create_dir(&odd).expect("mkdir");
    std::fs::write(odd.join("ev\nil-1.0-py3-none-any.whl"), b"not a zip").expect("write");
    let result = pack_with(&odd);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|line| line.contains("ev\\nil-1.0"))
        .unwrap_or_else(|| panic!("the name escaped on one line: {stderr}"));
    assert!(line.contains("invalid wheel"), "{stderr}");
}

/// `-o` in directories that do not exist yet: the pack makes them, and a pack interrupted
/// while it writes the artifact removes them again (SPEC "No litter", as the stub does for
/// DEST's parents). A parent of `-o` that is a file is named.
#[test]
fn an_interrupted_pack_removes_the_directories_it_made_for_out() {
    use std::io::Write as _;
    let work = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(work.path());
    // Enough incompressible bytes that the artifact takes a while to write.
    let mut noise = std::fs::File::open("/dev/urandom").expect("urandom");
    for index in 0..16 {
        let mut file =
            std::fs::File::create(inputs.app.join(format!("blob{index}.bin"))).expect("create");
        let mut chunk = vec![0u8; 8 << 20];
        std::io::Read::read_exact(&mut noise, &mut chunk).expect("read");
        file.write_all(&chunk).expect("write");
    }
    let made = work.path().join("made");
    let out = made.join("below/site.sfx");
    let args = [
        OsStr::new("--app"),
        inputs.app.as_os_str(),
        OsStr::new("--wheels"),
        inputs.wheels.as_os_str(),
        OsStr::new("--no-bootstrap"),
    ];
    let mut pack = pack_command(&args, &out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pack");
    let staged = out.with_file_name(format!(".site.sfx.pysfx-tmp-{}", pack.id()));
    let started = std::time::Instant::now();
    while !staged.exists() {
        assert!(pack.try_wait().expect("wait").is_none(), "the pack ended");
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let killed = run(std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pack.id().to_string()));
    assert!(killed.status.success());
    let output = pack.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!made.exists(), "left: {:?}", listing(&made));
    // A file where a parent should be.
    std::fs::write(&made, b"").expect("write");
    let result = run(&mut pack_command(&args, &out));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is not a directory", made.display())),
        "{stderr}"
    );
}
