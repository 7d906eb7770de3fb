//! `rollout-runner report RECORD`: turn a release record into a self-contained HTML report
//! (`--html FILE`) or JUnit XML (`--junit FILE`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::error::ExitStatus;
use crate::report::record::ReleaseRecord;

/// Render a release record (written with `--record FILE` by `simulate`, `apply --wait` or
/// `status --watch`) as one self-contained HTML file: the timeline of steps, traffic weight
/// and replicas over time, each metric's values against its conditions with each
/// measurement's verdict, and the outcome with its explanation. Nothing is fetched when the
/// file is opened (inline CSS and SVG, no script).
///
/// Exit codes: 0 written, 2 unreadable or invalid record.
///
/// Example: `rollout-runner report release.json --html release.html`
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The release record (JSON).
    #[arg(value_name = "RECORD")]
    record: PathBuf,

    /// Write the HTML report here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,

    /// Write the release's steps and analyses as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

/// Read a record; errors name the file and say how to get a valid one.
pub(crate) fn read_record(path: &std::path::Path) -> anyhow::Result<ReleaseRecord> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the release record `{}`", path.display()))?;
    ReleaseRecord::from_json(&text).map_err(|e| {
        anyhow::anyhow!(
            "`{}`: {e}\n\nhint: pass a file written by `--record FILE` (simulate, apply --wait, status --watch)",
            path.display()
        )
    })
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitStatus> {
    if args.html.is_none() && args.junit.is_none() {
        anyhow::bail!("nothing to write\n\nhint: give --html FILE, --junit FILE, or both");
    }
    let record = read_record(&args.record)?;
    if let Some(path) = &args.html {
        let html = crate::report::html::to_html(&record)
            .map_err(|e| anyhow::anyhow!("cannot render the report: {e}"))?;
        std::fs::write(path, html).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, crate::report::junit::to_xml(&record))
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(ExitStatus::Success)
}
