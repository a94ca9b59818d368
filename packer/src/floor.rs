//! The platform floor: what a wheel's platform tags need of the machine, held to what the stub
//! itself needs (x86_64 Linux, glibc `--max-glibc`, 2.17 by default). A wheel that needs more
//! is refused at pack time instead of failing to import on a CentOS 7 host.

use pysfx_wheel::WheelFilename;

use crate::elf::GlibcVersion;

/// What one platform tag asks of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagNeed {
    /// `any`: nothing.
    Any,
    /// A manylinux tag for x86_64: this glibc or newer.
    Glibc(GlibcVersion),
    /// `linux_x86_64`: built on some machine for that machine's glibc and libraries (PEP 513:
    /// "linux_* wheels … are not suitable for distribution"); nothing says what it needs.
    BareLinux,
    /// `musllinux_*`: musl libc, which the stub's hosts do not have.
    Musl,
    /// Another operating system or another CPU (`macosx_11_0_arm64`, `manylinux2014_aarch64`).
    Elsewhere,
}

/// The need of one platform tag (PEP 600 `manylinux_X_Y_ARCH`, and the legacy aliases of
/// PEP 513, 571 and 599).
pub fn tag_need(platform: &str) -> TagNeed {
    if platform == "any" {
        return TagNeed::Any;
    }
    if platform.starts_with("musllinux_") {
        return TagNeed::Musl;
    }
    let Some(floor) = platform.strip_suffix("_x86_64") else {
        return TagNeed::Elsewhere;
    };
    let legacy = [
        ("manylinux2014", [2, 17]),
        ("manylinux2010", [2, 12]),
        ("manylinux1", [2, 5]),
    ];
    for (name, glibc) in legacy {
        if floor == name {
            return TagNeed::Glibc(GlibcVersion(glibc.to_vec()));
        }
    }
    if floor == "linux" {
        return TagNeed::BareLinux;
    }
    let version = floor
        .strip_prefix("manylinux_")
        .and_then(|rest| rest.split_once('_'))
        .and_then(|(major, minor)| Some(vec![major.parse().ok()?, minor.parse().ok()?]));
    match version {
        Some(version) => TagNeed::Glibc(GlibcVersion(version)),
        None => TagNeed::Elsewhere,
    }
}

/// What a whole wheel needs: the least of its tags that the floor allows, or why none does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WheelNeed {
    /// It installs on the floor; `Some` is the glibc its best fitting tag needs.
    Fits(Option<GlibcVersion>),
    /// Its oldest x86_64 manylinux tag needs this newer glibc.
    NewerGlibc(GlibcVersion),
    /// Its tags are bare `linux_*`, musl, or for another OS or CPU.
    Unfit(&'static str),
}

/// Judges a wheel against `max_glibc`: a wheel with several platform tags fits when any of
/// them does (pip takes any tag a machine supports).
pub fn wheel_need(filename: &WheelFilename, max_glibc: &GlibcVersion) -> WheelNeed {
    let needs: Vec<TagNeed> = filename.platform.iter().map(|p| tag_need(p)).collect();
    if needs.contains(&TagNeed::Any) {
        return WheelNeed::Fits(None);
    }
    let oldest = needs
        .iter()
        .filter_map(|need| match need {
            TagNeed::Glibc(version) => Some(version),
            _ => None,
        })
        .min();
    match oldest {
        Some(version) if version <= max_glibc => WheelNeed::Fits(Some(version.clone())),
        Some(version) => WheelNeed::NewerGlibc(version.clone()),
        None if needs.contains(&TagNeed::BareLinux) => WheelNeed::Unfit(
            "a bare linux_* wheel, built for the machine that built it (no manylinux promise)",
        ),
        None if needs.contains(&TagNeed::Musl) => {
            WheelNeed::Unfit("a musllinux wheel; the stub's hosts run glibc")
        }
        None => WheelNeed::Unfit("for another operating system or CPU (the stub is x86_64 Linux)"),
    }
}

/// The glibc a wheel needs on the oldest system it installs on: its oldest x86_64 manylinux
/// tag's, or `None` for a pure wheel and one with no such tag.
pub fn oldest_glibc(filename: &WheelFilename) -> Option<GlibcVersion> {
    let needs: Vec<TagNeed> = filename.platform.iter().map(|p| tag_need(p)).collect();
    if needs.contains(&TagNeed::Any) {
        return None;
    }
    needs
        .into_iter()
        .filter_map(|need| match need {
            TagNeed::Glibc(version) => Some(version),
            _ => None,
        })
        .min()
}

/// The highest glibc a group of wheels needs (each on the oldest system it installs on), `None`
/// when none needs one.
pub fn highest_need<'a>(
    filenames: impl IntoIterator<Item = &'a WheelFilename>,
) -> Option<GlibcVersion> {
    filenames.into_iter().filter_map(oldest_glibc).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glibc(text: &str) -> GlibcVersion {
        GlibcVersion::parse(text).expect(text)
    }

    #[test]
    fn tags() {
        let cases = [
            ("any", TagNeed::Any),
            ("manylinux1_x86_64", TagNeed::Glibc(glibc("2.5"))),
            ("manylinux2010_x86_64", TagNeed::Glibc(glibc("2.12"))),
            ("manylinux2014_x86_64", TagNeed::Glibc(glibc("2.17"))),
            ("manylinux_2_17_x86_64", TagNeed::Glibc(glibc("2.17"))),
            ("manylinux_2_28_x86_64", TagNeed::Glibc(glibc("2.28"))),
            ("linux_x86_64", TagNeed::BareLinux),
            ("musllinux_1_2_x86_64", TagNeed::Musl),
            ("manylinux2014_aarch64", TagNeed::Elsewhere),
            ("manylinux_2_17_i686", TagNeed::Elsewhere),
            ("linux_aarch64", TagNeed::Elsewhere),
            ("macosx_11_0_arm64", TagNeed::Elsewhere),
            ("macosx_10_9_x86_64", TagNeed::Elsewhere),
            ("win_amd64", TagNeed::Elsewhere),
            ("manylinux_x_y_x86_64", TagNeed::Elsewhere),
        ];
        for (platform, expected) in cases {
            assert_eq!(tag_need(platform), expected, "{platform}");
        }
    }

    #[test]
    fn wheels_fit_when_any_tag_does() {
        let floor = glibc("2.17");
        let need = |name: &str| {
            let filename: WheelFilename = name.parse().expect(name);
            wheel_need(&filename, &floor)
        };
        assert_eq!(need("x-1.0-py3-none-any.whl"), WheelNeed::Fits(None));
        assert_eq!(
            need("x-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            WheelNeed::Fits(Some(glibc("2.17")))
        );
        assert_eq!(
            need("x-1.0-cp311-cp311-manylinux_2_28_x86_64.manylinux_2_12_x86_64.whl"),
            WheelNeed::Fits(Some(glibc("2.12")))
        );
        assert_eq!(
            need("x-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"),
            WheelNeed::NewerGlibc(glibc("2.28"))
        );
        assert_eq!(
            need("x-1.0-cp311-cp311-manylinux_2_34_x86_64.manylinux_2_28_x86_64.whl"),
            WheelNeed::NewerGlibc(glibc("2.28"))
        );
        assert_eq!(
            need("x-1.0-cp311-cp311-musllinux_1_2_x86_64.manylinux_2_17_x86_64.whl"),
            WheelNeed::Fits(Some(glibc("2.17")))
        );
        for unfit in [
            "cext-0.1-cp311-cp311-linux_x86_64.whl",
            "x-1.0-cp311-cp311-musllinux_1_2_x86_64.whl",
            "x-1.0-cp311-cp311-macosx_11_0_arm64.whl",
            "x-1.0-cp311-cp311-manylinux2014_aarch64.whl",
            "x-1.0-cp311-cp311-win_amd64.whl",
        ] {
            assert!(matches!(need(unfit), WheelNeed::Unfit(_)), "{unfit}");
        }
        let raised = glibc("2.28");
        let filename: WheelFilename = "x-1.0-cp311-cp311-manylinux_2_28_x86_64.whl"
            .parse()
            .expect("name");
        assert_eq!(
            wheel_need(&filename, &raised),
            WheelNeed::Fits(Some(glibc("2.28")))
        );
    }

    #[test]
    fn the_highest_need_of_a_set() {
        let names = [
            "a-1.0-py3-none-any.whl",
            "b-1.0-cp311-cp311-manylinux2014_x86_64.whl",
            "c-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        ];
        let filenames: Vec<WheelFilename> =
            names.iter().map(|name| name.parse().expect(name)).collect();
        assert_eq!(highest_need(&filenames), Some(glibc("2.28")));
        assert_eq!(highest_need(&filenames[..2]), Some(glibc("2.17")));
        assert_eq!(highest_need(&filenames[..1]), None);
    }
}
