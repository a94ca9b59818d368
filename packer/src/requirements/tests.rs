//! Tests of requirements-file reading, against what pip does with the same lines.

use super::lines::{expand_variables, logical_lines, parse_line, quote, shell_split};
use super::*;

#[test]
fn logical_lines_as_pip_joins_and_strips_them() {
    let text = "django>=4 # the framework\n\n# a comment\nrequests \\\n  [socks]\n\
                git+https://host/x.git#egg=x\na#b\n  -r other.txt  \nlast \\";
    assert_eq!(
        logical_lines(text),
        vec![
            (1, "django>=4".to_string()),
            (4, "requests   [socks]".to_string()),
            (6, "git+https://host/x.git#egg=x".to_string()),
            (7, "a#b".to_string()),
            (8, "-r other.txt".to_string()),
            (9, "last".to_string()),
        ]
    );
    // A comment line ends a continuation.
    assert_eq!(
        logical_lines("a \\\n# note\nb"),
        vec![(1, "a".to_string()), (3, "b".to_string())]
    );
}

#[test]
fn variables_expand_as_pip_expands_them() {
    let lookup = |name: &str| match name {
        "TOKEN" => Some("s3cret".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    let cases = [
        (
            "-i https://${TOKEN}@host/simple",
            "-i https://s3cret@host/simple",
        ),
        ("${UNSET}/x", "${UNSET}/x"),
        ("${EMPTY}", "${EMPTY}"),
        ("${lower}", "${lower}"),
        ("$TOKEN ${TOKEN", "$TOKEN ${TOKEN"),
    ];
    for (line, expected) in cases {
        assert_eq!(expand_variables(line, lookup), expected, "{line}");
    }
}

#[test]
fn lines_parse_into_requirements_nested_files_and_options() {
    let requirement = |spec: &str, editable: bool, options: Vec<LineOption>| Entry::Requirement {
        spec: spec.to_string(),
        editable,
        options,
    };
    let option = |name: &'static str, value: Option<&str>| LineOption {
        name,
        value: value.map(str::to_string),
    };
    let cases = [
        ("django>=4", requirement("django>=4", false, vec![])),
        (
            "requests ; python_version < \"3.8\"",
            requirement("requests ; python_version < \"3.8\"", false, vec![]),
        ),
        (
            "six==1.16.0 --hash=sha256:abc --hash sha256:def",
            requirement(
                "six==1.16.0",
                false,
                vec![
                    option("--hash", Some("sha256:abc")),
                    option("--hash", Some("sha256:def")),
                ],
            ),
        ),
        ("-e ./mylib", requirement("./mylib", true, vec![])),
        ("--editable=../x", requirement("../x", true, vec![])),
        (
            "-r other.txt",
            Entry::Nested {
                path: "other.txt".into(),
                constraint: false,
            },
        ),
        (
            "-rsub/more.txt",
            Entry::Nested {
                path: "sub/more.txt".into(),
                constraint: false,
            },
        ),
        (
            "--constraint 'c d.txt'",
            Entry::Nested {
                path: "c d.txt".into(),
                constraint: true,
            },
        ),
        (
            "-i https://host/simple --no-index",
            Entry::Options(vec![
                option("--index-url", Some("https://host/simple")),
                option("--no-index", None),
            ]),
        ),
        (
            "--find-links=wheels",
            Entry::Options(vec![option("--find-links", Some("wheels"))]),
        ),
        (
            "--extra-index https://host/simple --require-h",
            Entry::Options(vec![
                option("--extra-index-url", Some("https://host/simple")),
                option("--require-hashes", None),
            ]),
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(parse_line(line), Ok(expected), "{line}");
    }
    // "--p" is ambiguous: --pre, --prefer-binary.
    for bad in ["-r", "--bogus x", "--no-index=1", "-i 'unclosed", "--p"] {
        assert!(parse_line(bad).is_err(), "{bad}");
    }
}

#[test]
fn shell_split_and_quote_round_trip() {
    assert_eq!(
        shell_split(r#"a 'b c' "d \" e" f\ g"#),
        Ok(vec![
            "a".to_string(),
            "b c".to_string(),
            "d \" e".to_string(),
            "f g".to_string()
        ])
    );
    for value in ["plain/path.txt", "with space", "it's", "", "${VAR}"] {
        assert_eq!(shell_split(&quote(value)), Ok(vec![value.to_string()]));
    }
}

#[test]
fn requirement_sources_as_pip_tells_them_apart() {
    let is_dir = |path: &str| matches!(path, "./mylib" | "." | "../other" | "/abs/lib" | "sub/lib");
    let is_file = |path: &str| matches!(path, "./dist/x-1.0-py3-none-any.whl" | "./x-1.0.tar.gz");
    let build = |requirement: &str, extras: Option<&str>, marker: Option<&str>| {
        Source::Build(BuildSpec {
            requirement: requirement.to_string(),
            extras: extras.map(str::to_string),
            marker: marker.map(str::to_string),
        })
    };
    let cases = [
        ("django>=4.2", Source::Named("django".into())),
        (
            "Django[argon2]~=4.2; python_version>'3'",
            Source::Named("Django".into()),
        ),
        // A bare name is the index's, even when a directory of that name exists.
        ("mylib", Source::Named("mylib".into())),
        ("./mylib", build("./mylib", None, None)),
        (
            "./mylib[extra]",
            build("./mylib[extra]", Some("[extra]"), None),
        ),
        (".", build(".", None, None)),
        (
            "../other ; sys_platform == 'linux'",
            build("../other", None, Some("sys_platform == 'linux'")),
        ),
        ("/abs/lib", build("/abs/lib", None, None)),
        ("sub/lib", build("sub/lib", None, None)),
        ("./x-1.0.tar.gz", build("./x-1.0.tar.gz", None, None)),
        ("file:///abs/lib", build("file:///abs/lib", None, None)),
        (
            "git+https://host/x.git@v1#egg=x",
            build("git+https://host/x.git@v1#egg=x", None, None),
        ),
        (
            "https://host/x-1.0.tar.gz",
            build("https://host/x-1.0.tar.gz", None, None),
        ),
        (
            "x[a] @ git+https://host/x.git",
            build("x[a] @ git+https://host/x.git", Some("[a]"), None),
        ),
        (
            "x @ https://host/x-1.0.zip ; python_version<'4'",
            build(
                "x @ https://host/x-1.0.zip",
                None,
                Some("python_version<'4'"),
            ),
        ),
        (
            "./dist/x-1.0-py3-none-any.whl",
            Source::Wheel("./dist/x-1.0-py3-none-any.whl".into()),
        ),
        (
            "https://host/x-1.0-py3-none-any.whl",
            Source::Wheel("https://host/x-1.0-py3-none-any.whl".into()),
        ),
        (
            "x @ https://host/x-1.0-py3-none-any.whl",
            Source::Wheel("x @ https://host/x-1.0-py3-none-any.whl".into()),
        ),
    ];
    for (spec, expected) in cases {
        assert_eq!(classify(spec, is_dir, is_file), expected, "{spec}");
    }
}

#[test]
fn copies_keep_line_numbers_and_point_at_each_other() {
    let directory = tempfile::tempdir().expect("tempdir");
    let root = directory.path();
    std::fs::create_dir_all(root.join("sub/wheels")).expect("mkdir");
    std::fs::write(
        root.join("reqs.txt"),
        "# top\n-r sub/more.txt\ndjango \\\n  >=4\n-e ./mylib\n./other ; python_version>'3'\n",
    )
    .expect("write");
    std::fs::write(
        root.join("sub/more.txt"),
        "-f wheels\n--find-links elsewhere\n-c pins.txt\n",
    )
    .expect("write");
    std::fs::write(root.join("sub/pins.txt"), "django<5\n").expect("write");
    let requirements = Requirements::read(&[root.join("reqs.txt")]).expect("read");
    assert_eq!(requirements.files.len(), 3);
    assert!(requirements.files[2].constraint);
    let replace = std::collections::HashMap::from([(
        (0, 6),
        "/built/other.whl ; python_version>'3'".to_string(),
    )]);
    let out = root.join("copies");
    let top = requirements.write_copies(&out, &replace).expect("copies");
    assert_eq!(top, vec![out.join("0.txt")]);
    let copy = std::fs::read_to_string(out.join("0.txt")).expect("read");
    assert_eq!(
        copy,
        format!(
            "\n-r {}\ndjango   >=4\n\n./mylib\n/built/other.whl ; python_version>'3'\n",
            out.join("1.txt").display()
        )
    );
    let copy = std::fs::read_to_string(out.join("1.txt")).expect("read");
    assert_eq!(
        copy,
        format!(
            "--find-links={}\n--find-links elsewhere\n-c {}\n",
            std::path::absolute(root.join("sub"))
                .expect("absolute")
                .join("wheels")
                .display(),
            out.join("2.txt").display()
        )
    );
    // A file that names itself is refused, not followed for ever.
    std::fs::write(root.join("loop.txt"), "-r loop.txt\n").expect("write");
    let error = Requirements::read(&[root.join("loop.txt")]).expect_err("a cycle");
    assert!(error.to_string().contains("nested"), "{error:#}");
}

#[test]
fn hash_checking_mode_is_seen_in_nested_files_and_option_lines() {
    let directory = tempfile::tempdir().expect("tempdir");
    let root = directory.path();
    let read = |text: &str| {
        std::fs::write(root.join("reqs.txt"), text).expect("write");
        Requirements::read(&[root.join("reqs.txt")]).expect("read")
    };
    std::fs::write(root.join("hashed.txt"), "six==1.16 --hash=sha256:abc\n").expect("write");
    assert!(read("-r hashed.txt\n").checks_hashes());
    assert!(read("--require-hashes\nsix==1.16\n").checks_hashes());
    assert!(read("six==1.16 \\\n    --hash=sha256:abc\n").checks_hashes());
    assert!(!read("six==1.16\n# --hash=sha256:abc\n").checks_hashes());
}

#[test]
fn named_distributions_of_lines_that_need_no_build() {
    let cases = [
        ("django>=4", Some("django")),
        ("./dist/x_y-1.0-py3-none-any.whl", Some("x_y")),
        ("x @ https://host/x-1.0-py3-none-any.whl", Some("x")),
        ("git+https://host/x.git#egg=xpkg", Some("xpkg")),
        ("./mylib", None),
    ];
    let is_dir = |path: &str| path == "./mylib";
    for (spec, expected) in cases {
        let source = classify(spec, is_dir, |_: &str| false);
        assert_eq!(
            named_distribution(spec, &source).as_deref(),
            expected,
            "{spec}"
        );
    }
}

#[test]
fn file_urls_name_their_directories_as_pip_reads_them() {
    let table: &[(&str, Option<&str>)] = &[
        ("file:///srv/src/mylib", Some("/srv/src/mylib")),
        ("FILE://localhost/srv/my%20lib", Some("/srv/my lib")),
        ("file:./mylib", Some("./mylib")),
        ("mylib[extra] @ file:///srv/mylib", Some("/srv/mylib")),
        (
            "file:///srv/repo#egg=x&subdirectory=lib",
            Some("/srv/repo/lib"),
        ),
        ("file://elsewhere/srv/mylib", None),
        ("file:///srv/bad%zz", None),
        ("https://host/mylib.tar.gz", None),
        ("git+file:///srv/repo", None),
        ("./mylib", None),
    ];
    for (requirement, directory) in table {
        assert_eq!(
            file_url_path(requirement).as_deref(),
            *directory,
            "{requirement}"
        );
    }
}
