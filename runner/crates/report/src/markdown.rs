//! Markdown (and plain text) of a release, for check runs, pull/merge request comments, job
//! summaries and logs: the verdict, the step table, each analysis metric with its values
//! against its condition, and mermaid charts of the weight and the metrics over time.
//!
//! Owns wording and layout. Refuses to decide verdicts (they come from [`Outcome`]) and to do
//! I/O. Output is deterministic for a given [`Release`]: times are shown relative to the start
//! of the drive, so snapshots of simulated releases are stable.

use std::fmt::Write;

use jiff::{SignedDuration, Timestamp};

use rollout_runner_api::crd::AnalysisPhase;
use rollout_runner_api::crd::duration::format_go_seconds;

use super::Outcome;
use super::release::{MetricRecord, Release};
use super::sources::display_value;

/// GitHub's limit on a check run's summary and text.
pub const MAX_CHECK_TEXT: usize = 65_535;

/// Stands for the check run's URL in comments rendered before the check run exists; the
/// worker replaces it.
pub const CHECK_URL_PLACEHOLDER: &str = "rollout-runner-check-url";

/// How a release ended, for every reporter alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    InProgress,
    Promoted,
    /// Paused awaiting promotion (with `--success-on-pause`, or nothing else would happen).
    Paused,
    Aborted,
    Degraded,
    Invalid,
    Superseded,
    TimedOut,
    Deleted,
}

impl Verdict {
    pub fn of(release: &Release) -> Self {
        match &release.outcome {
            None => Self::InProgress,
            Some(Outcome::Promoted { .. }) => Self::Promoted,
            Some(Outcome::Paused { .. } | Outcome::Idle { .. }) => Self::Paused,
            Some(Outcome::Aborted { .. }) => Self::Aborted,
            Some(Outcome::Degraded { .. }) => Self::Degraded,
            Some(Outcome::Invalid { .. }) => Self::Invalid,
            Some(Outcome::Superseded { .. }) => Self::Superseded,
            Some(Outcome::TimedOut { .. }) => Self::TimedOut,
            Some(Outcome::Deleted) => Self::Deleted,
        }
    }

    /// The word scripts read (`verdict` output): `promoted`, `aborted`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in-progress",
            Self::Promoted => "promoted",
            Self::Paused => "paused",
            Self::Aborted => "aborted",
            Self::Degraded => "degraded",
            Self::Invalid => "invalid",
            Self::Superseded => "superseded",
            Self::TimedOut => "timed-out",
            Self::Deleted => "deleted",
        }
    }

    pub fn icon(self) -> &'static str {
        match self {
            Self::InProgress => "⏳",
            Self::Promoted => "✅",
            Self::Paused => "⏸️",
            Self::Aborted | Self::Degraded | Self::Invalid => "❌",
            Self::Superseded => "⏭️",
            Self::TimedOut => "⌛",
            Self::Deleted => "🗑️",
        }
    }

    /// A check run's conclusion; `None` while in progress.
    pub fn conclusion(self) -> Option<&'static str> {
        match self {
            Self::InProgress => None,
            Self::Promoted => Some("success"),
            Self::Paused => Some("neutral"),
            Self::Aborted | Self::Degraded | Self::Invalid => Some("failure"),
            Self::Superseded | Self::Deleted => Some("cancelled"),
            Self::TimedOut => Some("timed_out"),
        }
    }

    /// The release failed: CI should show an error.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Aborted | Self::Degraded | Self::Invalid)
    }
}

/// Links shown in reports.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The check run (or [`CHECK_URL_PLACEHOLDER`]).
    pub check_url: Option<String>,
    /// The CI run.
    pub run_url: Option<String>,
    /// The HTML report and JUnit XML (CI artifacts).
    pub report_url: Option<String>,
    /// The commit, and its URL.
    pub commit: Option<String>,
    pub commit_url: Option<String>,
    /// The target environment.
    pub environment: Option<String>,
}

/// `00:06:10`.
pub fn clock(duration: SignedDuration) -> String {
    let seconds = duration.as_secs().max(0);
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds % 3600) / 60,
        seconds % 60
    )
}

fn took(from: Option<Timestamp>, to: Option<Timestamp>) -> String {
    match (from, to) {
        (Some(from), Some(to)) => format_go_seconds(to.duration_since(from).as_secs().max(0)),
        _ => String::new(),
    }
}

fn phase_icon(phase: AnalysisPhase) -> &'static str {
    match phase {
        AnalysisPhase::Successful => "✔",
        AnalysisPhase::Failed => "✖",
        AnalysisPhase::Error => "⚠",
        AnalysisPhase::Inconclusive => "?",
        AnalysisPhase::Running | AnalysisPhase::Pending => "…",
    }
}

/// Backticks around code, safe inside a table cell.
fn code(text: &str) -> String {
    let text = text.replace('\n', " ").replace('|', "\\|");
    let text = text.trim();
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// Plain text safe inside a table cell.
pub(crate) fn cell(text: &str) -> String {
    text.replace('\n', " ")
        .replace('|', "\\|")
        .trim()
        .to_string()
}

/// One line: what happened, e.g. `aborted at step 6/8: ...`.
pub fn title(release: &Release) -> String {
    let verdict = Verdict::of(release);
    let step = release
        .step_in_focus()
        .map(|(index, step)| format!("step {}/{} ({})", index + 1, release.steps.len(), step.text));
    let text = match verdict {
        Verdict::InProgress => match (&release.paused, step) {
            (Some(reason), Some(step)) => format!("paused at {step}: {reason}"),
            (None, Some(step)) => format!("{step}, canary weight {}%", release.weight),
            (Some(reason), None) => format!("paused: {reason}"),
            (None, None) => "starting".to_string(),
        },
        _ => release
            .outcome
            .as_ref()
            .map(Outcome::describe)
            .unwrap_or_default(),
    };
    let mut line = format!("{} {}: {text}", verdict.icon(), release.id());
    if line.chars().count() > 250 {
        line = line.chars().take(249).collect::<String>() + "…";
    }
    line
}

/// The headline verdict word for people.
fn headline(release: &Release) -> String {
    let verdict = Verdict::of(release);
    let at_step = release
        .step_in_focus()
        .map(|(index, _)| format!(" at step {}/{}", index + 1, release.steps.len()))
        .unwrap_or_default();
    match verdict {
        Verdict::InProgress if release.paused.is_some() => format!("paused{at_step}"),
        Verdict::InProgress => format!("in progress{at_step}"),
        Verdict::Promoted => "promoted".into(),
        Verdict::Paused => format!("paused awaiting promotion{at_step}"),
        Verdict::Aborted => format!("aborted{at_step}"),
        Verdict::Degraded => "degraded".into(),
        Verdict::Invalid => "invalid".into(),
        Verdict::Superseded => "superseded".into(),
        Verdict::TimedOut => format!("timed out{at_step}"),
        Verdict::Deleted => "deleted".into(),
    }
}

fn facts(release: &Release, links: &Links) -> String {
    let mut out = String::from("| | |\n|---|---|\n");
    let mut revision = if release.revision.is_empty() {
        "-".to_string()
    } else {
        release.revision.clone()
    };
    if !release.pod_hash.is_empty() {
        revision.push_str(&format!(" ({})", code(&release.pod_hash)));
    }
    let _ = writeln!(out, "| revision | {revision} |");
    if !release.image.is_empty() {
        let _ = writeln!(out, "| image | {} |", code(&release.image));
    }
    if let Some(commit) = &links.commit {
        let short: String = commit.chars().take(7).collect();
        match &links.commit_url {
            Some(url) => {
                let _ = writeln!(out, "| commit | [`{short}`]({url}) |");
            }
            None => {
                let _ = writeln!(out, "| commit | `{short}` |");
            }
        }
    }
    if let Some(environment) = &links.environment {
        let _ = writeln!(out, "| environment | {} |", cell(environment));
    }
    let _ = writeln!(
        out,
        "| strategy | {}, {} replicas |",
        release.strategy, release.desired_replicas
    );
    if let Some(now) = release.now {
        let _ = writeln!(
            out,
            "| elapsed | {} |",
            format_go_seconds(release.elapsed(now).as_secs())
        );
    }
    out
}

fn step_table(release: &Release) -> String {
    if release.steps.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "### Steps\n\n| # | step | started | took | weight | pods updated / available (of {}) | |\n|---|---|---|---|---|---|---|\n",
        release.desired_replicas
    );
    for (index, step) in release.steps.iter().enumerate() {
        let state = if step.aborted {
            "❌ aborted"
        } else if step.started_at.is_none() {
            "·"
        } else if step.finished_at.is_some() {
            "✔"
        } else if release.paused.is_some() {
            "⏸️ paused"
        } else {
            "▶ running"
        };
        let started = step
            .started_at
            .map(|at| clock(release.elapsed(at)))
            .unwrap_or_default();
        let duration = took(step.started_at, step.finished_at);
        let weight = step.weight.map(|w| format!("{w}%")).unwrap_or_default();
        let pods = if step.started_at.is_some() {
            format!("{} / {}", step.updated, step.available)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {started} | {duration} | {weight} | {pods} | {state} |",
            index + 1,
            code(&step.text)
        );
    }
    out
}

fn condition(metric: &MetricRecord) -> String {
    let mut parts = Vec::new();
    if !metric.success_condition.is_empty() {
        parts.push(format!("success: {}", code(&metric.success_condition)));
    }
    if !metric.failure_condition.is_empty() {
        parts.push(format!("failure: {}", code(&metric.failure_condition)));
    }
    if let Some(limit) = &metric.failure_limit {
        parts.push(format!("failureLimit {}", cell(limit)));
    }
    parts.join("<br>")
}

fn metric_verdict(metric: &MetricRecord) -> String {
    match metric.phase {
        Some(phase) => format!("{} {phase}", phase_icon(phase)),
        None => {
            let failed = metric.count(AnalysisPhase::Failed);
            if failed > 0 {
                format!("… running, {failed} failed")
            } else {
                "… running".to_string()
            }
        }
    }
}

/// The last `keep` values, e.g. `0.997 ✔ · 0.92 ✖`.
fn values(metric: &MetricRecord, keep: usize) -> String {
    let skip = metric.measurements.len().saturating_sub(keep);
    let mut parts: Vec<String> = metric
        .measurements
        .iter()
        .skip(skip)
        .map(|m| format!("{} {}", cell(display_value(&m.value)), phase_icon(m.phase)))
        .collect();
    if skip > 0 {
        parts.insert(0, format!("… {skip} earlier"));
    }
    parts.join(" · ")
}

fn analysis(release: &Release) -> String {
    if release.metrics.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "### Analysis\n\n| metric | condition | measurements | verdict |\n|---|---|---|---|\n",
    );
    for metric in release.metrics.values() {
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {} | {} |",
            code(&metric.name),
            cell(&metric.kind),
            condition(metric),
            values(metric, 12),
            metric_verdict(metric)
        );
    }
    for metric in release.failing_metrics() {
        out.push('\n');
        let _ = write!(out, "**Why {} did not pass:**", code(&metric.name));
        if let Some(last) = metric.last_failure() {
            let _ = write!(
                out,
                " at {}, the value was {}: {}",
                clock(release.elapsed(last.at)),
                code(display_value(&last.value)),
                last.explanation.trim()
            );
        }
        if !metric.message.is_empty() {
            let _ = write!(out, " {}", metric.message.trim());
        }
        out.push('\n');
    }
    out
}

/// Up to `max` points, evenly picked, always keeping the last.
fn thin<T: Clone>(points: &[T], max: usize) -> Vec<T> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let step = (points.len() - 1) as f64 / (max - 1) as f64;
    (0..max)
        .map(|i| points[((i as f64 * step).round() as usize).min(points.len() - 1)].clone())
        .collect()
}

fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Mermaid `xychart-beta` charts: the canary weight over time, then each numeric metric.
pub fn charts(release: &Release) -> String {
    let mut out = String::new();
    if release.weights.len() >= 2 && release.strategy == "canary" {
        // The weight at each change (the last one when several happen at once).
        let mut points: Vec<(SignedDuration, i32)> = Vec::new();
        for point in &release.weights {
            let at = release.elapsed(point.at);
            match points.last_mut() {
                Some(last) if last.0 == at => last.1 = point.weight,
                _ => points.push((at, point.weight)),
            }
        }
        let points = thin(&points, 40);
        let labels: Vec<String> = points
            .iter()
            .map(|(at, _)| format!("\"{}\"", short_clock(*at)))
            .collect();
        let values: Vec<String> = points.iter().map(|(_, w)| w.to_string()).collect();
        let _ = write!(
            out,
            "```mermaid\nxychart-beta\n    title \"canary weight (%)\"\n    x-axis [{}]\n    y-axis \"weight\" 0 --> 100\n    line [{}]\n```\n",
            labels.join(", "),
            values.join(", ")
        );
    }
    for metric in release.metrics.values().take(3) {
        let points: Vec<(SignedDuration, f64)> = metric
            .measurements
            .iter()
            .filter_map(|m| Some((release.elapsed(m.at), m.number()?)))
            .filter(|(_, v)| v.is_finite())
            .collect();
        if points.len() < 2 {
            continue;
        }
        let points = thin(&points, 40);
        let labels: Vec<String> = points
            .iter()
            .map(|(at, _)| format!("\"{}\"", short_clock(*at)))
            .collect();
        let values: Vec<String> = points.iter().map(|(_, v)| format_number(*v)).collect();
        let _ = write!(
            out,
            "```mermaid\nxychart-beta\n    title \"{}\"\n    x-axis [{}]\n    line [{}]\n```\n",
            metric.name.replace('"', "'"),
            labels.join(", "),
            values.join(", ")
        );
    }
    out
}

/// `6:10` (minutes:seconds), or `1:02:03` past an hour.
fn short_clock(duration: SignedDuration) -> String {
    let seconds = duration.as_secs().max(0);
    if seconds >= 3600 {
        format!(
            "{}:{:02}:{:02}",
            seconds / 3600,
            (seconds % 3600) / 60,
            seconds % 60
        )
    } else {
        format!("{}:{:02}", seconds / 60, seconds % 60)
    }
}

fn footer(links: &Links) -> String {
    let mut parts = Vec::new();
    if let Some(url) = &links.check_url {
        parts.push(format!("[details]({url})"));
    }
    if let Some(url) = &links.run_url {
        parts.push(format!("[CI run]({url})"));
    }
    if let Some(url) = &links.report_url {
        parts.push(format!("[HTML report and JUnit]({url})"));
    }
    parts.join(" · ")
}

/// Limit a text to `max` bytes on a char boundary, with a note when cut.
pub fn truncate(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    const NOTE: &str = "\n\n… (cut: too long)\n";
    let mut end = max.saturating_sub(NOTE.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{NOTE}", &text[..end])
}

/// The full report: check-run summary and job summary.
pub fn summary(release: &Release, links: &Links) -> String {
    let verdict = Verdict::of(release);
    let mut out = format!(
        "## {} Release `{}` {}\n\n",
        verdict.icon(),
        release.id(),
        headline(release)
    );
    if let Some(outcome) = &release.outcome {
        let _ = writeln!(out, "{}\n", outcome.describe());
    } else if !release.message.is_empty() {
        let _ = writeln!(out, "{}: {}\n", release.phase, release.message);
    }
    out.push_str(&facts(release, links));
    out.push('\n');
    let steps = step_table(release);
    if !steps.is_empty() {
        out.push_str(&steps);
        out.push('\n');
    }
    let analysis = analysis(release);
    if !analysis.is_empty() {
        out.push_str(&analysis);
        out.push('\n');
    }
    let approvals = super::approval::section(&release.approvals);
    if !approvals.is_empty() {
        out.push_str(&approvals);
        out.push('\n');
    }
    let charts = charts(release);
    if !charts.is_empty() {
        out.push_str("### Over time\n\n");
        out.push_str(&charts);
        out.push('\n');
    }
    let footer = footer(links);
    if !footer.is_empty() {
        let _ = writeln!(out, "{footer}");
    }
    truncate(out, MAX_CHECK_TEXT)
}

/// The timeline of milestones (check-run text).
pub fn timeline(release: &Release) -> String {
    let mut out = String::from("### Timeline\n\n");
    for (at, change) in &release.milestones {
        let text = match change {
            super::Change::UpdateStarted { pod_hash } => format!("new revision `{pod_hash}`"),
            super::Change::StepStarted { index, total } => {
                let step = usize::try_from(*index)
                    .ok()
                    .and_then(|i| release.steps.get(i))
                    .map(|s| s.text.clone())
                    .unwrap_or_default();
                format!("step {}/{total}: `{step}`", index + 1)
            }
            super::Change::StepsCompleted => "all steps completed".into(),
            super::Change::WeightChanged { from, to } => format!("weight {from}% → {to}%"),
            super::Change::Paused { reason } => format!("paused ({reason})"),
            super::Change::Resumed => "resumed".into(),
            super::Change::ServiceSwitched { role, pod_hash } => {
                format!("{role} service now selects `{pod_hash}`")
            }
            super::Change::Promoted { pod_hash } => format!("stable is now `{pod_hash}`"),
            super::Change::Aborted { message } => format!("aborted: {}", message.trim()),
            super::Change::Phase { .. } => continue,
        };
        let _ = writeln!(out, "- `{}` {text}", clock(release.elapsed(*at)));
    }
    if let (Some(outcome), Some(at)) = (&release.outcome, release.finished_at) {
        let _ = writeln!(
            out,
            "- `{}` {}",
            clock(release.elapsed(at)),
            outcome.describe()
        );
    }
    truncate(out, MAX_CHECK_TEXT)
}

/// The hidden marker that finds a release's comment again.
pub fn marker(key: &str) -> String {
    format!("<!-- rollout-runner:release {key} -->")
}

/// The short report: the sticky pull/merge request comment.
pub fn comment(release: &Release, links: &Links, key: &str) -> String {
    let verdict = Verdict::of(release);
    let mut out = format!("{}\n", marker(key));
    let _ = writeln!(
        out,
        "### {} Release `{}` {}\n",
        verdict.icon(),
        release.id(),
        headline(release)
    );
    let mut line = Vec::new();
    if let Some((index, step)) = release.step_in_focus() {
        line.push(format!(
            "step {}/{} {}",
            index + 1,
            release.steps.len(),
            code(&step.text)
        ));
    }
    if release.strategy == "canary" {
        line.push(format!("canary weight {}%", release.weight));
    }
    line.push(format!(
        "{}/{} pods updated",
        release.updated, release.desired_replicas
    ));
    if !release.revision.is_empty() {
        line.push(format!("revision {}", release.revision));
    }
    if let Some(commit) = &links.commit {
        line.push(format!(
            "commit `{}`",
            commit.chars().take(7).collect::<String>()
        ));
    }
    if let Some(environment) = &links.environment {
        line.push(format!("environment {}", cell(environment)));
    }
    let _ = writeln!(out, "{}\n", line.join(" · "));
    if let Some(outcome) = &release.outcome
        && verdict != Verdict::Promoted
    {
        let _ = writeln!(out, "> {}\n", cell(&outcome.describe()));
    }
    if !release.metrics.is_empty() {
        out.push_str("| metric | last values | verdict |\n|---|---|---|\n");
        for metric in release.metrics.values() {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                code(&metric.name),
                values(metric, 3),
                metric_verdict(metric)
            );
        }
        out.push('\n');
    }
    // Between markers, so `/rollout` comment commands can update it in place.
    let approvals = super::approval::marked_section(&release.approvals);
    if !approvals.is_empty() {
        let _ = writeln!(out, "{approvals}");
    }
    let footer = footer(links);
    if !footer.is_empty() {
        let _ = writeln!(out, "{footer}");
    }
    if let Some(now) = release.now {
        let _ = writeln!(
            out,
            "\n<sub>rollout-runner · {} after the release started</sub>",
            format_go_seconds(release.elapsed(now).as_secs())
        );
    }
    truncate(out, MAX_CHECK_TEXT)
}

/// Plain text for logs (the GitLab job log section).
pub fn plain(release: &Release) -> String {
    let verdict = Verdict::of(release);
    let mut out = format!("release {}: {}\n", release.id(), headline(release));
    if let Some(outcome) = &release.outcome {
        let _ = writeln!(out, "  {}", outcome.describe());
    }
    let _ = writeln!(
        out,
        "  revision {} · {} replicas · verdict {}",
        if release.revision.is_empty() {
            "-"
        } else {
            &release.revision
        },
        release.desired_replicas,
        verdict.as_str()
    );
    for (index, step) in release.steps.iter().enumerate() {
        let state = if step.aborted {
            "aborted"
        } else if step.started_at.is_none() {
            "not reached"
        } else if step.finished_at.is_some() {
            "done"
        } else {
            "running"
        };
        let _ = writeln!(
            out,
            "  step {}/{} {:<20} {:>8} {:>5} {state}",
            index + 1,
            release.steps.len(),
            step.text,
            took(step.started_at, step.finished_at),
            step.weight.map(|w| format!("{w}%")).unwrap_or_default(),
        );
    }
    for metric in release.metrics.values() {
        let _ = writeln!(
            out,
            "  metric {} ({}): {} -> {}",
            metric.name,
            metric.kind,
            values(metric, 6),
            metric_verdict(metric)
        );
        if let Some(last) = metric.last_failure() {
            let _ = writeln!(out, "    why: {}", last.explanation.trim());
        }
    }
    out
}
