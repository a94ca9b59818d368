//! Generated markers compared with `packaging`: a few hundred of them, over several
//! environments and extras (the harness is in `packaging/mod.rs`).

mod packaging;

use pysfx_wheel::Marker;

use packaging::{ask_packaging, our_results};

/// A small deterministic generator (xorshift64): the same markers on every run.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const VARIABLE_SPELLINGS: &[&str] = &[
    "python_version",
    "python_version",
    "python_version",
    "python_full_version",
    "python_full_version",
    "implementation_version",
    "platform_release",
    "platform_release",
    "os_name",
    "os.name",
    "sys_platform",
    "sys.platform",
    "platform_system",
    "platform_version",
    "platform.version",
    "platform_machine",
    "platform.machine",
    "platform_python_implementation",
    "platform.python_implementation",
    "python_implementation",
    "implementation_name",
    "extra",
    "extra",
    "extra",
];

/// Variables that parse but have no value in METADATA (lock-file ones): used rarely.
const LOCK_FILE_VARIABLES: &[&str] = &["extras", "dependency_groups"];

const VALUES: &[&str] = &[
    "3.6",
    "3.10",
    "3.11",
    "3.11.7",
    "3.12",
    "3.13",
    "3",
    "2.7",
    "3.11.*",
    "3.*",
    "3.1*",
    "3.12.0rc1",
    "3.12.0rc2",
    "3.12.0b1",
    "3.12.0a1.dev0",
    "3.12.0",
    "3.11.7.post1",
    "3.11.7+local",
    "3.11.7.dev0",
    "1!3.6",
    "3.13.0",
    "3.11.7+",
    "3.13.0+local",
    "3.11.post1",
    "3.11.dev0",
    "3.11a1",
    "v3.11",
    "V3.11",
    "1!3.11",
    " 3.11 ",
    "=3.11",
    "3.11;",
    "abc",
    "5",
    "5.15",
    "6.1",
    "3.10.0-1160.el7.x86_64",
    "5.15.0-91-generic",
    "10",
    "posix",
    "nt",
    "POSIX",
    "linux",
    "lin",
    "win32",
    "darwin",
    "x86_64",
    "aarch64",
    "AMD64",
    "CPython",
    "cpython",
    "PyPy",
    "pypy",
    "Linux",
    "Windows",
    "Darwin",
    "#1",
    "#1 SMP",
    "test",
    "Test_Suite",
    "test-suite",
    "TEST",
    "docs",
    "te",
    "",
    " ",
    "os_name",
    "python_version",
    "extra",
    "7.3.13",
    "3.6.15",
];

/// Weighted towards the operators METADATA uses; `~=` and `===` on strings cannot be evaluated.
const OPERATOR_SPELLINGS: &[&str] = &[
    "==", "==", "==", "==", "==", "==", "!=", "!=", "!=", "<", "<", "<=", "<=", ">", ">", ">=",
    ">=", "in", "in", "not in", "not in", "~=", "===",
];

const SPACES: &[&str] = &["", " ", " ", " ", "  ", "\t"];

fn quoted(generator: &mut Generator, value: &str) -> String {
    if value.contains('"') || generator.below(2) == 0 && !value.contains('\'') {
        format!("'{value}'")
    } else {
        format!("\"{value}\"")
    }
}

fn variable(generator: &mut Generator) -> &'static str {
    if generator.below(40) == 0 {
        generator.pick(LOCK_FILE_VARIABLES)
    } else {
        generator.pick(VARIABLE_SPELLINGS)
    }
}

fn comparison(generator: &mut Generator) -> String {
    let variable = variable(generator);
    let value = generator.pick(VALUES);
    let value = quoted(generator, value);
    let operator = generator.pick(OPERATOR_SPELLINGS);
    // Mostly what METADATA holds; now and then the forms packaging reads oddly.
    let (left, right) = match generator.below(20) {
        0..=13 => (variable.to_string(), value),
        14..=17 => (value, variable.to_string()),
        18 => (variable.to_string(), self::variable(generator).to_string()),
        _ => {
            let other = generator.pick(VALUES);
            (value, quoted(generator, other))
        }
    };
    // Words next to words need a space; around symbols the space is optional.
    let before = if operator.starts_with(char::is_alphabetic) {
        " "
    } else {
        generator.pick(SPACES)
    };
    let after = if operator.starts_with(char::is_alphabetic) {
        " "
    } else {
        generator.pick(SPACES)
    };
    format!("{left}{before}{operator}{after}{right}")
}

fn expression(generator: &mut Generator, depth: usize) -> String {
    let atom = |generator: &mut Generator| {
        if depth < 3 && generator.below(5) == 0 {
            let space = generator.pick(SPACES);
            format!("({space}{}{space})", expression(generator, depth + 1))
        } else {
            comparison(generator)
        }
    };
    let mut text = atom(generator);
    for _ in 0..generator.below(3) {
        let join = if generator.below(2) == 0 { "and" } else { "or" };
        let space = generator.pick(&[" ", " ", "  ", "\t"]);
        text = format!("{text}{space}{join}{space}{}", atom(generator));
    }
    text
}

fn generated_markers() -> Vec<String> {
    let mut generator = Generator(0x9e37_79b9_7f4a_7c15);
    let mut markers = Vec::new();
    for index in 0..800 {
        let mut marker = expression(&mut generator, 0);
        // One in ten is cut short somewhere, to compare what is refused.
        if index % 10 == 9 {
            let cuts: Vec<usize> = marker.char_indices().map(|(cut, _)| cut).collect();
            let cut = cuts[generator.below(cuts.len())];
            marker.truncate(cut);
        }
        markers.push(marker);
    }
    markers
}

#[test]
fn generated_markers_evaluate_as_packaging_does() {
    let markers = generated_markers();
    let (answers, _) = ask_packaging(&markers, &[]);
    let mut mismatches = Vec::new();
    let (mut valid, mut errors, mut invalid) = (0, 0, 0);
    let (mut trues, mut falses) = (0, 0);
    for (marker, expected) in markers.iter().zip(&answers) {
        let ours = match Marker::parse(marker) {
            Ok(parsed) => our_results(&parsed),
            Err(_) => "INVALID".to_string(),
        };
        if ours == "INVALID" {
            invalid += 1;
        } else {
            valid += 1;
            errors += usize::from(ours.contains('E'));
            trues += ours.matches('T').count();
            falses += ours.matches('F').count();
        }
        if &ours != expected {
            mismatches.push(format!("{marker:?}: packaging {expected}, ours {ours}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} markers differ:\n{}",
        mismatches.len(),
        markers.len(),
        mismatches.join("\n")
    );
    // The generator must exercise both outcomes, or the comparison says little.
    eprintln!(
        "{valid} valid markers ({errors} not evaluable), {invalid} invalid; {trues} true and \
         {falses} false verdicts"
    );
    assert!(valid > 500, "only {valid} generated markers are valid");
    assert!(invalid > 40, "only {invalid} generated markers are invalid");
    assert!(
        trues > 2000 && falses > 2000,
        "{trues} true, {falses} false"
    );
    assert!(
        errors > 20 && errors < valid / 3,
        "{errors} of {valid} cannot be evaluated"
    );
}
