//! Requirement and marker parsing and evaluation, checked against `packaging`'s verdicts.

use std::str::FromStr;

use pep440_rs::Version;

use super::marker::MAX_NESTING;
use super::*;

fn linux_311() -> MarkerEnvironment {
    MarkerEnvironment {
        implementation_name: "cpython".into(),
        implementation_version: "3.11.7".into(),
        os_name: "posix".into(),
        platform_machine: "x86_64".into(),
        platform_python_implementation: "CPython".into(),
        platform_release: "5.15.0-91-generic".into(),
        platform_system: "Linux".into(),
        platform_version: "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023".into(),
        python_full_version: "3.11.7".into(),
        python_version: "3.11".into(),
        sys_platform: "linux".into(),
    }
}

#[test]
fn parses_requirements() {
    /// (text, name, extras, specifiers, url, marker)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [&'a str],
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
    );
    let cases: &[Case] = &[
        ("Django", "django", &[], "", None, None),
        ("  zope.interface  ", "zope-interface", &[], "", None, None),
        ("requests>=2.0,<3", "requests", &[], ">=2.0, <3", None, None),
        (
            "requests >= 2.0 , < 3",
            "requests",
            &[],
            ">=2.0, <3",
            None,
            None,
        ),
        ("six (>=1.5)", "six", &[], ">=1.5", None, None),
        ("six ( >=1.5 , <2 )", "six", &[], ">=1.5, <2", None, None),
        ("six ()", "six", &[], "", None, None),
        ("foo>=1.0,", "foo", &[], ">=1.0", None, None),
        (
            "foo[bar,baz] (>=1.0) ; sys_platform != \"win32\"",
            "foo",
            &["bar", "baz"],
            ">=1.0",
            None,
            Some("sys_platform != \"win32\""),
        ),
        (
            "Foo_Bar[ Test.Extra , Other ]",
            "foo-bar",
            &["test-extra", "other"],
            "",
            None,
            None,
        ),
        ("foo[]", "foo", &[], "", None, None),
        (
            "importlib-metadata>=4.6; python_version < \"3.10\"",
            "importlib-metadata",
            &[],
            ">=4.6",
            None,
            Some("python_version < \"3.10\""),
        ),
        (
            "cryptography @ https://example.com/c.whl",
            "cryptography",
            &[],
            "",
            Some("https://example.com/c.whl"),
            None,
        ),
        (
            "pip@https://example.com/p.whl ; os_name == 'posix'",
            "pip",
            &[],
            "",
            Some("https://example.com/p.whl"),
            Some("os_name == 'posix'"),
        ),
        // PEP 508: without whitespace the semicolon belongs to the URL.
        (
            "pip @ file:///p.whl;os_name=='posix'",
            "pip",
            &[],
            "",
            Some("file:///p.whl;os_name=='posix'"),
            None,
        ),
        ("name==1.0.*", "name", &[], "==1.0.*", None, None),
        (
            "name~=1.4.2;extra=='x'",
            "name",
            &[],
            "~=1.4.2",
            None,
            Some("extra=='x'"),
        ),
    ];
    for (text, name, extras, specifiers, url, marker) in cases {
        let requirement = Requirement::parse(text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(requirement.name, *name, "{text}");
        assert_eq!(requirement.extras, *extras, "{text}");
        assert_eq!(requirement.specifiers.to_string(), *specifiers, "{text}");
        assert_eq!(requirement.url.as_deref(), *url, "{text}");
        assert_eq!(
            requirement.marker.as_ref().map(Marker::as_str),
            *marker,
            "{text}"
        );
        // What is printed parses back to the same requirement.
        let again = Requirement::parse(&requirement.to_string())
            .unwrap_or_else(|error| panic!("{requirement}: {error}"));
        assert_eq!(again, requirement, "{text}");
    }
}

#[test]
fn refuses_invalid_requirements_with_a_reason() {
    let cases = [
        ("", "expected a package name"),
        ("-foo", "expected a package name"),
        ("foo-", "expected a package name"),
        ("foo bar", "invalid version specifier"),
        ("foo >=", "invalid version specifier"),
        ("foo (>=1.0", "expected a matching )"),
        ("foo[bar", "expected a matching ]"),
        ("foo[bar baz]", "expected a comma between extra names"),
        ("foo[bar,]", "expected an extra name"),
        ("foo @", "expected a URL"),
        ("foo @ https://x y", "expected a semicolon after the URL"),
        ("foo (>=1) bar", "expected a comma, a semicolon"),
        ("foo; ", "expected a marker variable"),
        ("foo; python_version", "expected a marker operator"),
        ("foo >=1.0,,<2", "invalid version specifier"),
        ("foo >1.0.*", "invalid version specifier"),
        ("foo; os_name == 'posix' and", "expected a marker variable"),
    ];
    for (text, reason) in cases {
        let error = Requirement::parse(text).expect_err(text).to_string();
        assert!(error.contains(reason), "{text:?}: {error}");
        assert!(error.starts_with("invalid requirement"), "{error}");
    }
}

#[test]
fn an_invalid_specifier_is_pointed_at() {
    for (text, column) in [("foo>=1.0,>2.0.*", 10), ("foo ( >=1 , ~=2 )", 12)] {
        let error = Requirement::parse(text).expect_err(text);
        assert!(
            matches!(&error, RequirementError::InvalidRequirement { column: found, .. } if *found == column),
            "{text}: {error}"
        );
    }
}

#[test]
fn requirement_is_met_by_versions_with_prereleases() {
    let cases = [
        ("foo>=1.0", "1.0", true),
        ("foo>=1.0", "0.9", false),
        ("foo>=1.0", "2.0a1", true),
        ("foo<2", "2.0rc1", false),
        ("foo<2", "1.9", true),
        ("foo==1.*", "1.4.post1", true),
        ("foo!=1.5", "1.5", false),
        ("foo~=1.4.2", "1.4.9", true),
        ("foo~=1.4.2", "1.5", false),
        ("foo", "0.0.1", true),
        ("foo==1.0", "1.0+local", true),
        ("foo @ https://example.com/foo.whl", "0.1", true),
        // `===` compares the version's own text with what it names, case aside, as
        // packaging does; what it names need be no version at all.
        ("foo===1.0", "1.0", true),
        ("foo===1.00", "1.0", false),
        ("foo===1.0A1", "1.0a1", true),
        ("foo ===foobar", "1.0", false),
        ("foo===1.0.0-final", "1.0.0", false),
        ("foo>=1, ===1.0", "1.0", true),
        ("foo>=2, ===1.0", "1.0", false),
        ("foo (===1.0)", "1.0", true),
    ];
    for (text, version, met) in cases {
        let requirement = Requirement::parse(text).unwrap_or_else(|error| panic!("{error}"));
        let version = Version::from_str(version).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(requirement.is_met_by(&version), met, "{text} by {version}");
    }
}

#[test]
fn evaluates_markers_as_packaging_does() {
    let environment = linux_311();
    // (marker, extra, expected)
    let cases = [
        ("python_version < \"3.10\"", "", Ok(false)),
        ("python_version >= '3.6'", "", Ok(true)),
        ("python_version > '3.9'", "", Ok(true)),
        ("python_version == '3.11.*'", "", Ok(true)),
        ("python_full_version >= '3.11.7'", "", Ok(true)),
        ("python_full_version < '3.11.7rc1'", "", Ok(false)),
        ("'3.6' < python_version", "", Ok(true)),
        ("platform_system == \"Windows\"", "", Ok(false)),
        ("sys_platform != 'win32'", "", Ok(true)),
        ("sys.platform == 'linux'", "", Ok(true)),
        ("os.name == 'posix'", "", Ok(true)),
        ("python_implementation == 'CPython'", "", Ok(true)),
        ("platform.python_implementation != 'PyPy'", "", Ok(true)),
        ("'linux' in sys_platform", "", Ok(true)),
        (
            "'lin' in sys_platform and 'win' not in sys_platform",
            "",
            Ok(true),
        ),
        ("sys_platform in 'linux2 darwin'", "", Ok(true)),
        // Strings have no order since packaging 26.
        ("os_name < 'zzz'", "", Ok(false)),
        ("os_name <= 'posix'", "", Ok(true)),
        ("os_name >= 'a'", "", Ok(false)),
        // A release that is no PEP 440 version is contained in no specifier.
        ("platform_release >= '5'", "", Ok(false)),
        ("platform_release == '5.15.0-91-generic'", "", Ok(true)),
        // No valid specifier: packaging compares strings.
        ("python_version < 'abc'", "", Ok(false)),
        ("python_version <= '3.11 '", "", Ok(true)),
        ("python_version === '3.11'", "", Ok(true)),
        ("os_name ~= 'posix'", "", Err(())),
        ("os_name === 'posix'", "", Err(())),
        ("python_version ~= '3'", "", Err(())),
        // `and` binds tighter than `or`; parentheses group.
        (
            "os_name == 'nt' and python_version > '3' or sys_platform == 'linux'",
            "",
            Ok(true),
        ),
        (
            "os_name == 'nt' and (python_version > '3' or sys_platform == 'linux')",
            "",
            Ok(false),
        ),
        ("((os_name == 'posix'))", "", Ok(true)),
        // Extras: normalised on both sides, false without the extra.
        ("extra == 'test'", "", Ok(false)),
        ("extra == 'test'", "test", Ok(true)),
        ("extra == 'Test_Suite'", "test.suite", Ok(true)),
        ("'Test' == extra", "TEST", Ok(true)),
        ("extra != 'test'", "", Ok(true)),
        (
            "python_version<'3.11' and extra == 'test'",
            "test",
            Ok(false),
        ),
        (
            "python_version<'3.12' and extra == 'test'",
            "test",
            Ok(true),
        ),
        ("python_version == '=3.11'", "", Ok(true)),
        // packaging reads the right-hand variable of `VAR op VAR` as its name, and the
        // right-hand string of `VALUE op VALUE` as a variable name.
        ("os_name == sys_platform", "", Ok(false)),
        ("sys_platform == os_name", "", Ok(false)),
        ("'posix' == 'os_name'", "", Ok(true)),
        ("'posix' == 'posix'", "", Err(())),
        ("extras == 'x'", "", Err(())),
        ("os_name == 'posix' or 'a' == 'b'", "", Err(())),
    ];
    for (text, extra, expected) in cases {
        let Ok(marker) = Marker::parse(text) else {
            assert!(expected.is_err(), "{text} should parse");
            continue;
        };
        let result = marker.evaluate_extra(&environment, extra).map_err(|_| ());
        assert_eq!(result, expected, "{text} with extra {extra:?}");
    }
}

#[test]
fn python_full_version_of_an_untagged_build_is_repaired() {
    let environment = MarkerEnvironment {
        python_full_version: "3.13.0+".into(),
        ..linux_311()
    };
    let marker = Marker::parse("python_full_version >= '3.13'").expect("valid");
    assert_eq!(marker.evaluate_extra(&environment, ""), Ok(true));
}

#[test]
fn requirement_applies_with_any_requested_extra() {
    let environment = linux_311();
    let cases: &[(&str, &[&str], bool)] = &[
        ("pytest; extra == 'test'", &[], false),
        ("pytest; extra == 'test'", &["docs", "test"], true),
        ("pytest; extra == 'test'", &["docs"], false),
        ("pywin32>=226; platform_system == \"Windows\"", &[], false),
        ("colorama; extra != 'x'", &["x"], true),
        ("django", &[], true),
        // Cannot be evaluated: counts as applying, so it is checked.
        ("odd; os_name ~= 'posix'", &[], true),
        // A version compared with text that is no version: packaging 26 gives strings no
        // order, every packaging before it (the venv's pip) compares them as Python does
        // ("3.11" < "3.1O"); it applies when either says so, so it is checked.
        ("typo; python_version < \"3.1O\"", &[], true),
        ("typo; python_version > \"3.1O\"", &[], false),
        ("typo; os_name > 'a'", &[], true),
        ("typo; os_name <= 'a'", &[], false),
    ];
    for (text, extras, applies) in cases {
        let requirement = Requirement::parse(text).unwrap_or_else(|error| panic!("{error}"));
        let extras: Vec<String> = extras.iter().map(|extra| extra.to_string()).collect();
        assert_eq!(
            requirement.applies_to(&environment, &extras),
            *applies,
            "{text} {extras:?}"
        );
    }
}

/// pip 18.1 to 24.2 (packaging before 26) on CPython 3.6 hold `python_version > "3.1O"`
/// true: "3.6" > "3.1O" as strings. The requirement applies there, not on 3.11.
#[test]
fn a_version_compared_with_no_version_applies_where_older_packaging_orders_the_text() {
    let requirement = Requirement::parse("typo; python_version > \"3.1O\"")
        .unwrap_or_else(|error| panic!("{error}"));
    let mut environment = linux_311();
    assert!(!requirement.applies_to(&environment, &[]));
    environment.python_version = "3.6".into();
    environment.python_full_version = "3.6.15".into();
    assert!(requirement.applies_to(&environment, &[]));
}

#[test]
fn refuses_invalid_markers() {
    let cases = [
        ("", "expected a marker variable"),
        ("python_version", "expected a marker operator"),
        ("python_version <", "expected a marker variable"),
        ("python_versionx < '3'", "expected a marker variable"),
        ("python_version < '3", "not closed"),
        ("python_version < \"3\\n\"", "backslashes"),
        ("os_name == 'posix' and", "expected a marker variable"),
        (
            "os_name == 'posix' nand os_name == 'x'",
            "expected `and`, `or`",
        ),
        (
            "os_name == 'posix'andos_name == 'x'",
            "expected `and`, `or`",
        ),
        ("(os_name == 'posix'", "expected a matching )"),
        ("os_name notin 'posix'", "expected a marker operator"),
        ("os_name not'in' 'posix'", "expected whitespace after `not`"),
        ("os_name = 'posix'", "expected a marker operator"),
        ("platform.release == '1'", "expected a marker variable"),
        ("os_name == 'a\nb'", "invalid quoted string"),
    ];
    for (text, reason) in cases {
        let error = Marker::parse(text).expect_err(text).to_string();
        assert!(error.contains(reason), "{text:?}: {error}");
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = |levels: usize| {
        format!(
            "{}os_name == 'posix'{}",
            "(".repeat(levels),
            ")".repeat(levels)
        )
    };
    assert!(Marker::parse(&deep(MAX_NESTING)).is_ok());
    let error = Marker::parse(&deep(MAX_NESTING + 1)).expect_err("too deep");
    assert!(
        error.to_string().contains("nested more than 200"),
        "{error}"
    );
}

#[test]
fn errors_quote_a_bounded_excerpt() {
    let long = format!("foo; os_name == '{}", "x".repeat(10_000));
    let error = Requirement::parse(&long).expect_err("unclosed").to_string();
    assert!(error.len() < 400, "{} bytes", error.len());
    assert!(error.contains("(at column 17)"), "{error}");
}

#[test]
fn whitespace_is_tolerated_where_pep_508_allows_it() {
    let environment = linux_311();
    for text in [
        "os_name=='posix'",
        "  os_name  ==  'posix'  ",
        "\tos_name\t==\t'posix'",
        "( os_name == 'posix' )and( python_version>'3' )",
        "'posix'==os_name",
    ] {
        let marker = Marker::parse(text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(marker.evaluate_extra(&environment, ""), Ok(true), "{text}");
    }
}

/// A kernel release that is no PEP 440 version is in no specifier: packaging 21 and 26 say
/// false, packaging 22 to 25 raise, which `pip check` passes over. So the requirement does not
/// apply (it made an install exit 4 where every pip's check passes).
#[test]
fn a_release_that_is_no_version_is_in_no_specifier() {
    let environment = linux_311();
    for text in [
        "platform_release >= '5'",
        "platform_release < '5'",
        "platform_release > '1'",
    ] {
        let marker = Marker::parse(text).expect("a marker");
        assert_eq!(marker.evaluate_extra(&environment, ""), Ok(false), "{text}");
        assert!(!marker.evaluate(&environment, &[]), "{text}");
    }
    let valid = MarkerEnvironment {
        platform_release: "6.1".into(),
        ..linux_311()
    };
    let older = Marker::parse("platform_release < '5'").expect("a marker");
    assert!(!older.evaluate(&valid, &[]));
}

#[test]
fn arbitrary_equality_names_any_text_without_whitespace() {
    for (text, named, shown) in [
        ("b ===foobar", "foobar", "b===foobar"),
        ("b===1.0.0-final", "1.0.0-final", "b===1.0.0-final"),
        ("b===", "", "b==="),
        (
            "b>=1,=== x1 ; os_name == 'posix'",
            "x1",
            "b>=1, ===x1; os_name == 'posix'",
        ),
    ] {
        let requirement = Requirement::parse(text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(requirement.arbitrary, [named], "{text}");
        assert!(requirement.has_specifiers(), "{text}");
        assert_eq!(requirement.to_string(), shown, "{text}");
    }
    for text in ["b ===foo bar", "b ===foo)"] {
        assert!(Requirement::parse(text).is_err(), "{text}");
    }
    assert!(!Requirement::parse("b").expect("plain").has_specifiers());
}
