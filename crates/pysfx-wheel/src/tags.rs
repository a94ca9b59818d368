//! The ordered list of tags an interpreter accepts, as `packaging.tags.sys_tags()` yields it for
//! CPython on glibc Linux. A tag's position is its priority: earlier wins.

use std::collections::HashMap;
use std::fmt;

use crate::WheelFilename;

/// One `python-abi-platform` triple.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    pub python: String,
    pub abi: String,
    pub platform: String,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// What tag generation needs to know about an interpreter (all from the one interpreter query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFacts {
    pub major: u32,
    pub minor: u32,
    /// `Py_DEBUG`.
    pub debug: bool,
    /// `WITH_PYMALLOC` (only matters before 3.8); `None` when the config var is absent.
    pub pymalloc: Option<bool>,
    /// `Py_GIL_DISABLED` (3.13 free-threaded builds).
    pub gil_disabled: bool,
    /// `sysconfig.get_platform()`, e.g. `linux-x86_64`.
    pub platform: String,
    /// True for a 32-bit interpreter (`sys.maxsize <= 2**32`).
    pub is_32bit: bool,
    /// glibc `(major, minor)`, or `None` on a non-glibc system.
    pub glibc: Option<(u32, u32)>,
}

impl PlatformFacts {
    /// A standard (non-debug, GIL, 64-bit) CPython 3.`minor` on x86_64 Linux with glibc
    /// `glibc` (`None`: not glibc): what a `--target` names.
    pub fn linux_cpython(minor: u32, glibc: Option<(u32, u32)>) -> PlatformFacts {
        PlatformFacts {
            major: 3,
            minor,
            debug: false,
            pymalloc: Some(true),
            gil_disabled: false,
            platform: "linux-x86_64".into(),
            is_32bit: false,
            glibc,
        }
    }
}

/// The tags an interpreter accepts, best first, with a fast priority lookup.
#[derive(Debug, Clone)]
pub struct InterpreterTags {
    tags: Vec<Tag>,
    priority: HashMap<(String, String, String), usize>,
}

/// The last minor version of each glibc major before 2 (as in `packaging._manylinux`).
const LEGACY_MANYLINUX: [((u32, u32), &str); 3] = [
    ((2, 17), "manylinux2014"),
    ((2, 12), "manylinux2010"),
    ((2, 5), "manylinux1"),
];

impl InterpreterTags {
    /// Builds the list for a CPython interpreter.
    pub fn for_cpython(facts: &PlatformFacts) -> Self {
        let platforms = linux_platforms(facts);
        let version = format!("{}{}", facts.major, facts.minor);
        let interpreter = format!("cp{version}");
        let mut tags = Vec::new();
        let mut push = |python: &str, abi: &str, platform: &str| {
            tags.push(Tag {
                python: python.to_string(),
                abi: abi.to_string(),
                platform: platform.to_string(),
            })
        };

        // cpython_tags(): the interpreter's own ABIs, then abi3, then none, then older abi3.
        for abi in cpython_abis(facts) {
            for platform in &platforms {
                push(&interpreter, &abi, platform);
            }
        }
        let abi3 = facts.major == 3 && facts.minor >= 2 && !facts.gil_disabled;
        if abi3 {
            for platform in &platforms {
                push(&interpreter, "abi3", platform);
            }
        }
        for platform in &platforms {
            push(&interpreter, "none", platform);
        }
        if abi3 {
            for minor in (2..facts.minor).rev() {
                for platform in &platforms {
                    push(&format!("cp{}{minor}", facts.major), "abi3", platform);
                }
            }
        }

        // compatible_tags(): pyXY-none-<platform>, then <interpreter>-none-any, pyXY-none-any.
        let python_range = python_range(facts.major, facts.minor);
        for python in &python_range {
            for platform in &platforms {
                push(python, "none", platform);
            }
        }
        push(&interpreter, "none", "any");
        for python in &python_range {
            push(python, "none", "any");
        }

        let mut priority = HashMap::with_capacity(tags.len());
        for (index, tag) in tags.iter().enumerate() {
            priority
                .entry((tag.python.clone(), tag.abi.clone(), tag.platform.clone()))
                .or_insert(index);
        }
        InterpreterTags { tags, priority }
    }

    /// All tags, best first.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// The best (lowest) priority among the wheel's tags, or `None` when no tag is accepted.
    pub fn priority(&self, wheel: &WheelFilename) -> Option<usize> {
        wheel
            .tags()
            .filter_map(|(python, abi, platform)| {
                self.priority
                    .get(&(python.to_string(), abi.to_string(), platform.to_string()))
                    .copied()
            })
            .min()
    }

    /// Why a wheel is not accepted, naming the first part that fails.
    pub fn incompatibility(&self, wheel: &WheelFilename) -> &'static str {
        let pythons: Vec<&Tag> = self
            .tags
            .iter()
            .filter(|tag| wheel.python.contains(&tag.python))
            .collect();
        if pythons.is_empty() {
            return "Python version or implementation";
        }
        if !pythons.iter().any(|tag| wheel.abi.contains(&tag.abi)) {
            // `cp311-cp311` on CPython 3.12 matches the `cp311-abi3` tag's Python: its ABI is
            // another version's, which is the thing to fix.
            fn version(abi: &str) -> Option<&str> {
                let digits = abi.strip_prefix("cp")?;
                let digits = digits.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
            }
            let ours = || self.tags.iter().filter_map(|tag| version(&tag.abi));
            let another_version = (wheel.abi.iter().filter_map(|abi| version(abi)))
                .any(|built_for| !ours().any(|our| our == built_for));
            if another_version && ours().next().is_some() {
                return "Python version or implementation";
            }
            return "ABI";
        }
        "platform"
    }
}

fn python_range(major: u32, minor: u32) -> Vec<String> {
    let mut range = vec![format!("py{major}{minor}"), format!("py{major}")];
    for older in (0..minor).rev() {
        range.push(format!("py{major}{older}"));
    }
    range
}

/// `_cpython_abis()` of packaging: `cp3X` plus `d` (debug), `m` (pymalloc, before 3.8) and
/// `t` (free-threaded, 3.13+); a debug build from 3.8 also accepts the non-debug ABI.
fn cpython_abis(facts: &PlatformFacts) -> Vec<String> {
    let version = format!("{}{}", facts.major, facts.minor);
    let threading = if (facts.major, facts.minor) >= (3, 13) && facts.gil_disabled {
        "t"
    } else {
        ""
    };
    let debug = if facts.debug { "d" } else { "" };
    let mut abis = Vec::new();
    let mut pymalloc = "";
    if (facts.major, facts.minor) < (3, 8) {
        if facts.pymalloc.unwrap_or(true) {
            pymalloc = "m";
        }
    } else if facts.debug {
        abis.push(format!("cp{version}{threading}"));
    }
    abis.insert(0, format!("cp{version}{threading}{debug}{pymalloc}"));
    abis
}

/// `_linux_platforms()`: manylinux tags from the running glibc down, each legacy alias right
/// after its `manylinux_2_N`, then `linux_<arch>`.
fn linux_platforms(facts: &PlatformFacts) -> Vec<String> {
    let normalized = facts.platform.replace(['-', '.', ' '], "_");
    let mut linux = normalized.clone();
    if facts.is_32bit {
        linux = match normalized.as_str() {
            "linux_x86_64" => "linux_i686".to_string(),
            "linux_aarch64" => "linux_armv8l".to_string(),
            _ => normalized,
        };
    }
    let arch = linux
        .split_once('_')
        .map(|(_, arch)| arch.to_string())
        .unwrap_or_default();
    let archs: Vec<String> = if arch == "armv8l" {
        vec!["armv8l".into(), "armv7l".into()]
    } else {
        vec![arch]
    };
    let mut platforms = Vec::new();
    if let Some((glibc_major, glibc_minor)) = facts.glibc {
        let has_compatible_abi = archs.iter().any(|arch| {
            matches!(
                arch.as_str(),
                "x86_64"
                    | "i686"
                    | "aarch64"
                    | "armv7l"
                    | "ppc64"
                    | "ppc64le"
                    | "s390x"
                    | "loongarch64"
                    | "riscv64"
            )
        });
        if has_compatible_abi && glibc_major == 2 {
            for arch in &archs {
                // glibc 2.5 is the oldest manylinux for x86; 2.17 for the others.
                let oldest = if matches!(arch.as_str(), "x86_64" | "i686") {
                    5
                } else {
                    17
                };
                for minor in (oldest..=glibc_minor).rev() {
                    platforms.push(format!("manylinux_2_{minor}_{arch}"));
                    if let Some((_, legacy)) = LEGACY_MANYLINUX
                        .iter()
                        .find(|(version, _)| *version == (2, minor))
                    {
                        platforms.push(format!("{legacy}_{arch}"));
                    }
                }
            }
        }
    }
    for arch in &archs {
        platforms.push(format!("linux_{arch}"));
    }
    platforms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(minor: u32, glibc: Option<(u32, u32)>) -> PlatformFacts {
        PlatformFacts::linux_cpython(minor, glibc)
    }

    fn strings(tags: &InterpreterTags) -> Vec<String> {
        tags.tags().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn cpython_311_order_starts_and_ends_as_packaging() {
        let tags = InterpreterTags::for_cpython(&facts(11, Some((2, 17))));
        let all = strings(&tags);
        assert_eq!(
            &all[..4],
            [
                "cp311-cp311-manylinux_2_17_x86_64",
                "cp311-cp311-manylinux2014_x86_64",
                "cp311-cp311-manylinux_2_16_x86_64",
                "cp311-cp311-manylinux_2_15_x86_64",
            ]
        );
        // 2_17..2_5 is 13 tags, plus three legacy aliases and linux_x86_64.
        let platforms = 13 + 3 + 1;
        assert_eq!(all[platforms], "cp311-abi3-manylinux_2_17_x86_64");
        assert_eq!(all[2 * platforms], "cp311-none-manylinux_2_17_x86_64");
        assert_eq!(all[3 * platforms], "cp310-abi3-manylinux_2_17_x86_64");
        assert_eq!(
            &all[all.len() - 4..],
            ["py32-none-any", "py31-none-any", "py30-none-any"]
                .iter()
                .fold(vec!["py33-none-any".to_string()], |mut v, s| {
                    v.push(s.to_string());
                    v
                })
        );
        let any_start = all.iter().position(|t| t == "cp311-none-any").expect("any");
        assert_eq!(all[any_start + 1], "py311-none-any");
        assert_eq!(all[any_start + 2], "py3-none-any");
        assert_eq!(all[any_start + 3], "py310-none-any");
    }

    #[test]
    fn abi_flags_per_version() {
        let cases = [
            (6, false, false, vec!["cp36m"]),
            (7, true, false, vec!["cp37dm"]),
            (8, false, false, vec!["cp38"]),
            (9, true, false, vec!["cp39d", "cp39"]),
            (13, false, true, vec!["cp313t"]),
        ];
        for (minor, debug, gil_disabled, expected) in cases {
            let mut f = facts(minor, None);
            f.debug = debug;
            f.gil_disabled = gil_disabled;
            assert_eq!(cpython_abis(&f), expected, "3.{minor}");
        }
    }

    #[test]
    fn free_threaded_gets_no_abi3() {
        let mut f = facts(13, Some((2, 17)));
        f.gil_disabled = true;
        let tags = InterpreterTags::for_cpython(&f);
        assert!(tags.tags().iter().all(|tag| tag.abi != "abi3"));
    }

    #[test]
    fn no_glibc_means_only_linux_platform() {
        let tags = InterpreterTags::for_cpython(&facts(11, None));
        assert!(tags
            .tags()
            .iter()
            .all(|tag| !tag.platform.starts_with("manylinux")));
        assert_eq!(tags.tags()[0].to_string(), "cp311-cp311-linux_x86_64");
    }

    #[test]
    fn priority_picks_the_best_of_compressed_tags() {
        let tags = InterpreterTags::for_cpython(&facts(6, Some((2, 17))));
        let cases = [
            (
                "m-2.0.1-cp36-cp36m-manylinux1_x86_64.manylinux2010_x86_64.whl",
                true,
            ),
            ("m-2.1.5-cp311-cp311-manylinux_2_17_x86_64.whl", false),
            ("m-1.0-py2.py3-none-any.whl", true),
            ("m-1.0-cp37-abi3-manylinux2014_x86_64.whl", false),
            ("m-1.0-cp36-abi3-manylinux_2_28_x86_64.whl", false),
            ("m-1.0-cp35-abi3-manylinux2014_x86_64.whl", true),
        ];
        for (filename, accepted) in cases {
            let wheel: WheelFilename = filename.parse().expect(filename);
            assert_eq!(tags.priority(&wheel).is_some(), accepted, "{filename}");
        }
        let legacy: WheelFilename = "m-1-cp36-cp36m-manylinux2010_x86_64.whl".parse().expect("");
        let newer: WheelFilename = "m-1-cp36-cp36m-manylinux2014_x86_64.whl".parse().expect("");
        assert!(tags.priority(&newer) < tags.priority(&legacy));
    }

    #[test]
    fn incompatibility_names_the_part_to_fix() {
        let tags = InterpreterTags::for_cpython(&facts(12, Some((2, 17))));
        for (wheel, why) in [
            (
                "m-1-cp311-cp311-manylinux2014_x86_64.whl",
                "Python version or implementation",
            ),
            (
                "m-1-cp313-cp313-manylinux2014_x86_64.whl",
                "Python version or implementation",
            ),
            (
                "m-1-pp310-pypy310_pp73-manylinux2014_x86_64.whl",
                "Python version or implementation",
            ),
            ("m-1-cp312-cp312d-manylinux2014_x86_64.whl", "ABI"),
            ("m-1-cp312-cp312-macosx_11_0_arm64.whl", "platform"),
            ("m-1-cp312-cp312-manylinux_2_28_x86_64.whl", "platform"),
        ] {
            let wheel: WheelFilename = wheel.parse().expect("a wheel name");
            assert_eq!(tags.priority(&wheel), None, "{wheel}");
            assert_eq!(tags.incompatibility(&wheel), why, "{wheel}");
        }
    }
}
