//! Property tests (the fuzzing of docs/fuzzing.md): the parsers never panic on any input and
//! what they accept round-trips. (The installer's are in pysfx-install's tests.)
//! `PROPTEST_CASES=100000 cargo test -p pysfx-wheel --test properties` runs them longer.

use proptest::prelude::*;
use pysfx_wheel::{
    EntryPoints, Headers, Marker, MarkerEnvironment, Record, Requirement, WheelFilename,
};

proptest! {
    #[test]
    fn wheel_filenames_parse_or_fail_cleanly(text in ".{0,80}") {
        if let Ok(parsed) = text.parse::<WheelFilename>() {
            let again: WheelFilename = parsed.to_string().parse().expect("a printed filename parses");
            prop_assert_eq!(again, parsed);
        }
    }

    #[test]
    fn plausible_wheel_filenames_round_trip(
        name in "[A-Za-z][A-Za-z0-9_.]{0,12}",
        version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,2}",
        build in proptest::option::of("[0-9]{1,3}[a-z]{0,2}"),
        python in "(py3|cp3[0-9]{1,2})(\\.py2)?",
        platform in "(any|manylinux_2_17_x86_64|linux_x86_64)",
    ) {
        let build = build.map(|b| format!("-{b}")).unwrap_or_default();
        let filename = format!("{name}-{version}{build}-{python}-none-{platform}.whl");
        let parsed: WheelFilename = filename.parse().expect("valid");
        prop_assert_eq!(parsed.to_string(), filename);
    }

    #[test]
    fn record_parses_or_fails_cleanly(text in "(?s).{0,400}") {
        if let Ok(record) = Record::parse(&text) {
            let again = Record::parse(&record.to_text()).expect("a written RECORD parses");
            let mut a = again.entries;
            let mut b = record.entries;
            a.sort_by(|x, y| x.path.cmp(&y.path));
            b.sort_by(|x, y| x.path.cmp(&y.path));
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn headers_and_entry_points_never_panic(text in "(?s).{0,400}") {
        let _ = Headers::parse(&text).get("Name");
        if let Ok(points) = EntryPoints::parse(&text) {
            for script in points.scripts {
                prop_assert!(!script.name.contains('/'));
                prop_assert!(script.name != ".." && script.name != ".");
            }
        }
    }

    #[test]
    fn requirements_and_markers_parse_or_fail_cleanly(
        text in "(?s).{0,120}",
        shaped in "[A-Za-z0-9_.\\-]{1,8} ?(\\[[a-z, ]{0,8}\\])? ?[(]?([<>=!~]{1,3}[0-9.a-z*+]{0,6},?){0,3}[)]? ?(; ?(python_version|extra|os_name|'x') ?(<|==|~=|in|not in) ?[\"'][0-9a-z.* ]{0,6}[\"'] ?(and|or)? ?[()]?)?",
    ) {
        let environment = MarkerEnvironment::default();
        for candidate in [&text, &shaped] {
            if let Ok(requirement) = Requirement::parse(candidate) {
                let _ = requirement.applies_to(&environment, &["x".to_string()]);
                // What is printed parses back to the same requirement (except a name with a
                // trailing `_`, which packaging accepts and PEP 503 turns into a trailing `-`).
                if !requirement.name.ends_with('-') {
                    let again = Requirement::parse(&requirement.to_string());
                    prop_assert_eq!(again.as_ref(), Ok(&requirement));
                }
            }
            if let Ok(marker) = Marker::parse(candidate) {
                let _ = marker.evaluate_extra(&environment, "");
            }
        }
    }
}
