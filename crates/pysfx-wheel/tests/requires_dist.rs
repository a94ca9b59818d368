//! `Requires-Dist` lines compared with `packaging`: those of every distribution installed in
//! the pyenv interpreters plus hand-written hard ones (the harness is in `packaging/mod.rs`).

mod packaging;

use std::str::FromStr;

use pep440_rs::Version;
use pysfx_wheel::Requirement;

use packaging::{ask_packaging, our_results, python_output};

/// Prints every `Requires-Dist` line of the distributions this interpreter and the pyenv
/// interpreters have installed.
const CORPUS: &str = r#"
import glob, importlib.metadata, sys
lines = set()
for distribution in importlib.metadata.distributions(path=sys.path + glob.glob(sys.argv[1])):
    lines.update(distribution.requires or [])
for line in sorted(lines):
    print(line)
"#;

/// Hand-written requirements that are hard to get right.
const HARD_REQUIREMENTS: &[&str] = &[
    "importlib-metadata>=4.6; python_version < \"3.10\"",
    "pywin32>=226; platform_system == \"Windows\"",
    "typing_extensions>=4.0; python_version<'3.11' and extra == 'test'",
    "foo[bar,baz] (>=1.0) ; sys_platform != \"win32\"",
    "cryptography @ https://example.com/c.whl",
    "cryptography @ https://example.com/c.whl ; os_name == 'posix'",
    "cryptography @ file:///c.whl;os_name=='posix'",
    "  Zope.Interface [ Test , Docs_Extra ]  ( >= 5.0 , < 7 )  ;  extra=='Test'  ",
    "foo>=1.0,",
    "foo (>=1.0,)",
    "foo ()",
    "foo[]",
    "foo_",
    "foo-",
    "foo.",
    "-foo",
    "foo bar",
    "foo>=1.0 <2",
    "foo (>=1.0",
    "foo >=1.0,,<2",
    "foo==1.0.*",
    "foo!=1.0.*,>=0.9",
    "foo>=1.0.*",
    "foo<1.0+local",
    "foo==1.0+local",
    "foo~=1",
    "foo~=1.4.2rc1",
    "foo>=1!2.0",
    "foo>=V1.0",
    "foo>= 1.0",
    "foo; os_name == 'posix' and",
    "foo<2.0a0",
    "foo<1!2.0",
    "foo<2.0.post1",
    "foo>2.0.post1",
    "foo>2.0.dev1",
    "foo>2.0a1",
    "foo<=2.0",
    "foo!=2.0",
    "foo~=2.0.post1",
    "foo==2.0+abc",
    "foo!=2.0+abc",
    "foo===2.0",
    "foo; (python_version >= '3.6' or python_version < '3') and os_name == 'posix'",
    "foo @ ",
    "foo @ https://x y",
    "backports-zstd>=1.0.0; (python_version < '3.14') and extra == 'zstd'",
    "foo[a,b c]",
    "foo;python_version<'3.8'",
    "foo ; extra == \"Sp-Ec_Ial..Name\"",
];

#[test]
fn requires_dist_lines_parse_and_evaluate_as_packaging_does() {
    let corpus = python_output(
        CORPUS,
        &["/root/.pyenv/versions/*/lib/python3*/site-packages"],
        "",
    );
    let mut requirements: Vec<String> = corpus.lines().map(str::to_string).collect();
    assert!(
        requirements.len() >= 50,
        "only {} Requires-Dist lines found",
        requirements.len()
    );
    requirements.extend(HARD_REQUIREMENTS.iter().map(|text| text.to_string()));
    let (_, answers) = ask_packaging(&[], &requirements);

    let mut mismatches = Vec::new();
    for (text, expected) in requirements.iter().zip(&answers) {
        let ours = match Requirement::parse(text) {
            Err(_) => "INVALID".to_string(),
            Ok(requirement) => describe(&requirement, expected),
        };
        if &ours != expected {
            mismatches.push(format!(
                "{text:?}:\n  packaging {expected}\n  ours      {ours}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} requirements differ:\n{}",
        mismatches.len(),
        requirements.len(),
        mismatches.join("\n")
    );
}

/// Our requirement in the harness's notation, checking the versions packaging checked.
fn describe(requirement: &Requirement, expected: &str) -> String {
    let mut extras = requirement.extras.clone();
    extras.sort();
    extras.dedup();
    let versions = expected.rsplit('\t').next().unwrap_or_default();
    let checks: Vec<String> = versions
        .split(',')
        .filter(|check| !check.is_empty())
        .map(|check| {
            let version = check.split('=').next().unwrap_or_default();
            let met = match Version::from_str(version) {
                Ok(parsed) => {
                    if requirement.is_met_by(&parsed) {
                        "T"
                    } else {
                        "F"
                    }
                }
                Err(_) => "unparsable",
            };
            format!("{version}={met}")
        })
        .collect();
    [
        "OK",
        &requirement.name,
        &extras.join(","),
        requirement.url.as_deref().unwrap_or("-"),
        &requirement
            .marker
            .as_ref()
            .map_or("-".to_string(), our_results),
        &checks.join(","),
    ]
    .join("\t")
}
