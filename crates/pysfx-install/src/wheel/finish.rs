//! What follows the members of a wheel: launchers, `INSTALLER`, `REQUESTED` and RECORD.

use pysfx_tree::{Disposition, Tree, TreeError};
use pysfx_wheel::{hash_bytes, hash_digest, relative_path, Record, RecordEntry};
use tracing::{debug, trace};

use crate::stamps::{path_key, StampEntry};

use super::{InstallReport, Layout, LinkedPython, MemberOutcome, PreparedWheel};
use crate::InstallError;

impl PreparedWheel {
    /// Writes what follows the members: the entry-point launchers, `INSTALLER`, `REQUESTED` and
    /// the RECORD of the installed paths — with, when the release gets byte-code in this
    /// `bytecode` format, a row without a hash for each source's `.pyc`, as pip lists what it
    /// compiles.
    /// `outcomes` holds one outcome per member, in the order of [`PreparedWheel::member_ids`].
    pub fn finish(
        &self,
        outcomes: Vec<MemberOutcome>,
        layout: &Layout,
        tree: &mut impl Tree,
        bytecode: Option<&pysfx_venv::PycFormat>,
    ) -> Result<InstallReport, InstallError> {
        let prepared = self;
        let site = layout.site_packages.as_str();
        // A path already written by a member (a `.data/data/` file naming one of these) is the
        // wheel's fault: say which wheel.
        let taken = |error: TreeError| match error {
            TreeError::PathTaken { path } => TreeError::PathTaken {
                path: format!("{path} (which the install writes for {})", prepared.wheel),
            },
            other => other,
        };
        let dist_info = &prepared.dist_info;
        if outcomes.len() != prepared.planned.len() {
            return Err(InstallError::Internal(format!(
                "{}: {} outcomes for {} members",
                prepared.wheel,
                outcomes.len(),
                prepared.planned.len()
            )));
        }
        let mut rows = Vec::with_capacity(outcomes.len() + prepared.launchers.len() + 3);
        let mut python_files = Vec::new();
        let mut executables = Vec::new();
        let mut bytes_written = 0u64;
        let (mut linked_files, mut linked_bytes) = (0u64, 0u64);
        let mut linked_python = Vec::new();
        let mut stamped_links = 0u64;
        let mut stamps = Vec::new();
        for (plan, outcome) in prepared.planned.iter().zip(outcomes) {
            bytes_written += outcome.size;
            if outcome.linked {
                linked_files += 1;
                linked_bytes += outcome.size;
            }
            stamped_links += u64::from(outcome.stamped);
            if let Some(stamp) = outcome
                .stamp
                .filter(|_| plan.disposition != Disposition::Discard)
            {
                stamps.push(StampEntry {
                    key: path_key(&plan.destination),
                    stamp,
                    sha256: outcome.digest,
                    head: [0; 16],
                });
            }
            rows.push(RecordEntry {
                path: relative_path(site, &plan.destination),
                hash: hash_digest(&outcome.digest),
                size: Some(outcome.size),
            });
            if plan.disposition != Disposition::Discard
                && plan.destination.ends_with(".py")
                && plan.destination.starts_with(site)
            {
                if let Some(stamp) = outcome.stamp.filter(|_| outcome.linked) {
                    linked_python.push(LinkedPython {
                        path: plan.destination.clone(),
                        stamp,
                        index: python_files.len(),
                    });
                }
                python_files.push(plan.destination.clone());
            }
            if plan.disposition != Disposition::Discard && outcome.executable {
                executables.push(plan.destination.clone());
            }
        }
        // Launchers, INSTALLER, REQUESTED, RECORD.
        for launcher in &prepared.launchers {
            trace!(
                "{}: entry point -> {}",
                prepared.wheel,
                launcher.destination
            );
            tree.write_all(
                &launcher.destination,
                launcher.text.as_bytes(),
                0o755,
                launcher.disposition,
            )
            .map_err(taken)?;
            if launcher.disposition != Disposition::Discard {
                executables.push(launcher.destination.clone());
            }
            rows.push(RecordEntry {
                path: relative_path(site, &launcher.destination),
                hash: hash_bytes(launcher.text.as_bytes()),
                size: Some(launcher.text.len() as u64),
            });
        }
        for (file, content) in [
            ("INSTALLER", format!("{}\n", layout.installer)),
            ("REQUESTED", String::new()),
        ] {
            let destination = format!("{site}/{dist_info}/{file}");
            tree.write_all(&destination, content.as_bytes(), 0o644, Disposition::Create)
                .map_err(taken)?;
            rows.push(RecordEntry {
                path: format!("{dist_info}/{file}"),
                hash: hash_bytes(content.as_bytes()),
                size: Some(content.len() as u64),
            });
        }
        rows.push(RecordEntry {
            path: format!("{dist_info}/RECORD"),
            hash: String::new(),
            size: None,
        });
        let files_written = rows.len() as u64;
        // The byte-code each source gets (from a bundle, a release beside DEST or the
        // compiler), unless the wheel ships that `.pyc` itself: one rule for every way it
        // comes, so that releases of one wheel list the same rows.
        if let Some(format) = bytecode {
            let shipped = prepared.shipped_pyc();
            for source in &python_files {
                if let Some(pyc) = format.pyc_of(source) {
                    if !shipped.contains(pyc.as_str()) {
                        rows.push(RecordEntry {
                            path: relative_path(site, &pyc),
                            hash: String::new(),
                            size: None,
                        });
                    }
                }
            }
        }
        let record_text = Record { entries: rows }.to_text();
        tree.write_all(
            &format!("{site}/{dist_info}/RECORD"),
            record_text.as_bytes(),
            0o644,
            Disposition::Create,
        )
        .map_err(taken)?;
        debug!(wheel = %prepared.wheel, files = files_written, "finished");
        Ok(InstallReport {
            name: prepared.name.clone(),
            version: prepared.version.clone(),
            files: files_written,
            bytes: bytes_written + record_text.len() as u64,
            python_files,
            dist_info: dist_info.clone(),
            executables,
            linked_files,
            linked_bytes,
            linked_python,
            stamped_links,
            stamps,
        })
    }
}
