//! Writing one member of a prepared wheel, checked against its zip header and RECORD.

use std::io::{Read, Seek};

use pysfx_tree::{Copied, CopyError, CopyOptions, Disposition, ReadHash, Tree, TreeError};
use pysfx_wheel::{format_hash, python_shebang_end, script_shebang, WheelError};
use tracing::trace;
use zip::ZipArchive;

use super::{Expected, Layout, MemberId, MemberOutcome, PreparedWheel, SHEBANG_PEEK};
use crate::member::open_member;
use crate::InstallError;

impl PreparedWheel {
    /// Writes member number `member` of a prepared wheel, checking its size, CRC and RECORD hash
    /// (by the SHA-256 of the bytes written, or of the bytes read when RECORD uses another
    /// algorithm or the `#!python` line is rewritten).
    /// A `.data/scripts` file streams like any other: only its first line is looked at, for the
    /// `#!python` that PEP 427 says to rewrite.
    pub(super) fn extract<R: Read + Seek + Clone + pysfx_format::ReadAt>(
        &self,
        archive: &mut ZipArchive<R>,
        member: MemberId,
        layout: &Layout,
        tree: &mut impl Tree,
    ) -> Result<MemberOutcome, InstallError> {
        let prepared = self;
        let wheel = &prepared.wheel;
        let site = layout.site_packages.as_str();
        let plan = &prepared.planned[member.0];
        let index = plan.index.ok_or_else(|| {
            InstallError::Internal(format!("{wheel}: {} is not in the payload", plan.member))
        })?;
        let entry = open_member(archive, index, plan.end).map_err(|source| WheelError::Zip {
            wheel: wheel.clone(),
            source,
        })?;
        let declared = entry.size();
        let expected = plan.expected.as_ref();
        let mismatch = |reason: String| WheelError::RecordMismatch {
            wheel: wheel.clone(),
            member: plan.member.to_string(),
            reason,
        };
        let mode = if plan.executable { 0o755 } else { 0o644 };
        let is_source = plan.destination.ends_with(".py") && plan.destination.starts_with(site);
        // The reader holds the member to its declared size: a lying zip header cannot make a
        // member inflate without bound.
        let mut reader = entry;
        let mut first = Vec::new();
        let mut rewrite: Option<(usize, Vec<u8>)> = None;
        if plan.script {
            (&mut reader)
                .take(SHEBANG_PEEK)
                .read_to_end(&mut first)
                .map_err(|error| mismatch(format!("unreadable: {error}")))?;
            let complete = (first.len() as u64) < SHEBANG_PEEK;
            if let Some(end) = python_shebang_end(&first, complete) {
                let limit = kernel_shebang_limit();
                let line = script_shebang(&layout.shebang_python, limit, &first[end..]);
                let mut line = line.into_bytes();
                line.push(b'\n');
                rewrite = Some((end, line));
            }
        }
        let head = rewrite.as_ref().map(|(end, line)| (*end, line.as_slice()));
        // The bytes as read need a digest of their own when RECORD uses another algorithm than
        // the SHA-256 of the bytes written, or when the first line is rewritten.
        let algorithm = expected.and_then(|expected| expected.hash.split('=').next());
        let read_hash = match algorithm {
            Some("sha384") => Some(ReadHash::Sha384),
            Some("sha512") => Some(ReadHash::Sha512),
            Some("sha256") if head.is_some() => Some(ReadHash::Sha256),
            _ => None,
        };
        let options = CopyOptions {
            disposition: plan.disposition,
            mtime: prepared.source_mtime.filter(|_| is_source),
            head,
            read_hash,
            ..CopyOptions::new(mode)
        };
        let copied = tree
            .copy(
                &plan.destination,
                &mut first.as_slice().chain(reader),
                options,
            )
            .map_err(|error| match error {
                CopyError::Read(error) => {
                    InstallError::Wheel(mismatch(format!("unreadable: {error}")))
                }
                // Say which wheel and member meant to write there (another of its members, a
                // file the install writes itself).
                CopyError::Write(TreeError::PathTaken { path }) => {
                    InstallError::Tree(TreeError::PathTaken {
                        path: format!("{path} (member {} of {wheel})", plan.member),
                    })
                }
                CopyError::Write(error) => InstallError::Tree(error),
            })?;
        // Every member is held to its RECORD hash as it is written, whatever the payload
        // digest says: that digest shows the artifact is whole, not that `pysfx pack` made it.
        check_member(expected, &copied, declared).map_err(mismatch)?;
        // `-vv`: one line per member. tracing checks the level first, so this costs nothing
        // when it is off.
        trace!(
            "{}: {} -> {} ({} bytes{})",
            wheel,
            plan.member,
            plan.destination,
            copied.size,
            match plan.disposition {
                Disposition::Discard => ", not written: a later wheel's copy wins",
                Disposition::Replace => ", replacing an earlier wheel's copy",
                Disposition::Create => "",
            }
        );
        Ok(MemberOutcome {
            digest: copied.sha256,
            size: copied.size,
            linked: false,
            executable: plan.executable,
            stamp: copied.stamp,
            stamped: false,
        })
    }
}

/// Compares a member as read with its zip header and its RECORD row (whose hash describes the
/// bytes as shipped, before any `#!python` rewriting).
pub(super) fn check_member(
    expected: Option<&Expected>,
    copied: &Copied,
    declared: u64,
) -> Result<(), String> {
    check_sizes(expected, copied, declared)?;
    let Some(expected) = expected else {
        return Ok(());
    };
    if expected.hash.is_empty() {
        return Ok(());
    }
    let algorithm = expected.hash.split('=').next().unwrap_or_default();
    let digest: &[u8] = match (&copied.read_digest, algorithm) {
        (Some(digest), _) => digest,
        (None, "sha256") => &copied.sha256,
        _ => {
            return Err(format!(
                "RECORD uses an unsupported hash {algorithm:?} (sha256, sha384 and sha512 are)"
            ))
        }
    };
    let actual = format_hash(algorithm, digest);
    if expected.hash != actual {
        return Err(format!("hash {actual} where RECORD says {}", expected.hash));
    }
    Ok(())
}

/// Compares the size of a member as read with its zip header and its RECORD row.
fn check_sizes(expected: Option<&Expected>, copied: &Copied, declared: u64) -> Result<(), String> {
    if copied.read_size != declared {
        return Err(format!(
            "{} bytes where the zip header declares {declared}",
            copied.read_size
        ));
    }
    let Some(expected) = expected else {
        return Ok(());
    };
    if let Some(recorded_size) = expected.size {
        if recorded_size != copied.read_size {
            return Err(format!(
                "{} bytes where RECORD says {recorded_size}",
                copied.read_size
            ));
        }
    }
    Ok(())
}

/// How many bytes of a `#!` line the running kernel reads, newline included: 256 since Linux
/// 5.1, 128 before (CentOS 7's 3.10), less the terminating zero. Read for each `#!python`
/// script (a few per set; cheaper in the stub's size than a cache).
fn kernel_shebang_limit() -> usize {
    let release = std::fs::read("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release.split(|byte| !byte.is_ascii_digit()).map(|part| {
        (part.iter()).fold(0u32, |n, d| {
            n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
        })
    });
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if version >= (5, 1) {
        255
    } else {
        127
    }
}
