//! `--record FILE` and `--junit FILE`, shared by `simulate`, `apply --wait` and
//! `status --watch`: a [`Recorder`] rides along the driver's other reporters and its record
//! is written (with the JUnit XML made from it) when the drive ends.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::manifest::ManifestSet;
use crate::report::record::{ManifestHash, Recorder, ReleaseRecord};

/// What a release leaves behind for replays and test reports.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Records")]
pub(crate) struct RecordArgs {
    /// Write the release record (JSON, schema `docs/schema/release-record.v1.json`): actions,
    /// status transitions, measurements, traffic, pods, events, outcome. Replay it with
    /// `simulate --replay FILE`; render it with `report FILE --html OUT`. With several
    /// Rollouts, each gets `FILE` with `-NAMESPACE-NAME` before its extension.
    #[arg(long, value_name = "FILE")]
    pub(crate) record: Option<PathBuf>,

    /// Write the release's steps and analyses as JUnit XML test cases (for GitHub and GitLab
    /// test reports).
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
}

impl RecordArgs {
    /// Write what was recorded. `name` tells several Rollouts' files apart.
    pub(crate) fn write(&self, record: &ReleaseRecord, several: bool) -> anyhow::Result<()> {
        let suffix = format!("{}-{}", record.rollout.namespace, record.rollout.name);
        if let Some(path) = &self.record {
            let path = if several {
                suffixed(path, &suffix)
            } else {
                path.clone()
            };
            let mut text = serde_json::to_string_pretty(record)?;
            text.push('\n');
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write the record `{}`", path.display()))?;
        }
        if let Some(path) = &self.junit {
            let path = if several {
                suffixed(path, &suffix)
            } else {
                path.clone()
            };
            std::fs::write(&path, crate::report::junit::to_xml(record))
                .with_context(|| format!("cannot write the JUnit XML `{}`", path.display()))?;
        }
        Ok(())
    }
}

/// `dir/name-SUFFIX.ext`.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{suffix}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{suffix}"),
    };
    path.with_file_name(name)
}

/// A recorder for a release of `set` (manifests and plan filled in) by `source`.
pub(crate) fn recorder(source: &str, set: Option<&ManifestSet>, rollout: Option<&str>) -> Recorder {
    let mut record = ReleaseRecord::new(source);
    if let Some(set) = set {
        record.manifests = manifest_hashes(set);
        record.plan = crate::planning::plan_set(set, rollout)
            .ok()
            .and_then(|plans| plans.into_iter().next())
            .and_then(|plan| serde_json::to_value(plan).ok());
    }
    Recorder::new(record)
}

/// Each document's `sha256:` over its JSON as written.
pub(crate) fn manifest_hashes(set: &ManifestSet) -> Vec<ManifestHash> {
    set.documents()
        .iter()
        .map(|document| {
            // A Secret's hash would let anyone holding the record test guesses of its
            // values: it is named, not hashed.
            let sha256 = (document.kind != "Secret").then(|| {
                let bytes = serde_json::to_vec(&document.raw).unwrap_or_default();
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
                let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                format!("sha256:{hex}")
            });
            ManifestHash {
                file: document.file.clone(),
                kind: document.kind.clone(),
                name: document.name.clone(),
                namespace: document.namespace.clone(),
                sha256,
            }
        })
        .collect()
}
