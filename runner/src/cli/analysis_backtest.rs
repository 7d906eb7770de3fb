//! `rollout-runner analysis backtest TEMPLATE`: run a template's metrics against past data
//! and report, per interval, what each measurement and the run's verdict would have been, and
//! what a run over the whole window would have decided. The judging is
//! [`crate::analysis::backtest`]'s; this file reads arguments, measures and prints.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::analysis::backtest;
use crate::analysis::run::{TaskKind, resolve_metric_args};
use crate::crd::{AnalysisPhase, AnalysisRun, Metric};
use crate::error::ExitStatus;
use crate::metrics::{MeasureContext, Metrics, ProviderSettings, Providers};

#[derive(Debug, Args)]
pub(crate) struct BacktestArgs {
    /// The AnalysisTemplate or ClusterAnalysisTemplate file.
    #[arg(value_name = "TEMPLATE")]
    template: std::path::PathBuf,

    /// Argument values, `name=value` (repeatable; `--args a=1 b=2` also works). Template
    /// arguments with a `value` need none.
    #[arg(long = "args", value_name = "NAME=VALUE", num_args = 1..)]
    args: Vec<String>,

    /// Start of the window: RFC 3339 (`2026-11-21T00:00:00Z`), `now`, or `now-24h`. With
    /// `--record`: the release's start unless given.
    #[arg(long, value_name = "TIME", required_unless_present = "record")]
    from: Option<String>,

    /// Take the values from a release record (`--record FILE` of simulate, apply --wait)
    /// instead of the providers: each measurement is the recorded one nearest in time, judged
    /// with this template's conditions. The window defaults to the release's.
    #[arg(long, value_name = "RECORD")]
    record: Option<std::path::PathBuf>,

    /// End of the window (included), in the same forms. Default: now.
    #[arg(long, value_name = "TIME", default_value = "now")]
    to: String,

    /// Time between evaluations (`1m`, `5m`). Default: the shortest metric interval, or 1m.
    #[arg(long, value_name = "DURATION")]
    step: Option<String>,

    /// Prometheus address for metrics that name none (also ARGO_ROLLOUTS_PROMETHEUS_ADDRESS).
    #[arg(long, value_name = "URL")]
    prometheus_address: Option<String>,

    /// `text`: a table per interval and the window's verdicts. `json`: the same as data.
    #[arg(long, value_enum, default_value_t = super::analysis::Output::Text)]
    output: super::analysis::Output,
}

#[derive(Debug, Serialize)]
struct Interval {
    time: String,
    verdict: AnalysisPhase,
    measurements: BTreeMap<String, Measured>,
}

#[derive(Debug, Serialize)]
struct Measured {
    phase: AnalysisPhase,
    value: String,
    why: String,
}

#[derive(Debug, Serialize)]
struct WindowMetric {
    phase: AnalysisPhase,
    count: i32,
    successful: i32,
    failed: i32,
    inconclusive: i32,
    error: i32,
}

#[derive(Debug, Serialize)]
struct Report {
    from: String,
    to: String,
    step: String,
    intervals: Vec<Interval>,
    metrics: BTreeMap<String, WindowMetric>,
    verdict: AnalysisPhase,
}

pub(crate) fn backtest(args: BacktestArgs) -> anyhow::Result<ExitStatus> {
    let text = crate::render::input::read_text(&args.template)?;
    let template: crate::crd::AnalysisTemplate =
        serde_saphyr::from_str(&text).with_context(|| {
            format!(
                "`{}` does not hold an AnalysisTemplate",
                args.template.display()
            )
        })?;
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for arg in &template.spec.args {
        if let Some(value) = &arg.value {
            values.insert(arg.name.clone(), value.clone());
        }
    }
    for pair in &args.args {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("`--args {pair}` is not NAME=VALUE");
        };
        values.insert(name.to_string(), value.to_string());
    }
    for arg in &template.spec.args {
        if !values.contains_key(&arg.name) {
            bail!(
                "args.{} was not resolved\nhint: pass --args {}=VALUE",
                arg.name,
                arg.name
            );
        }
    }
    let metrics: Vec<Metric> = template
        .spec
        .metrics
        .iter()
        .map(|m| resolve_metric_args(m, &values).map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<anyhow::Result<_>>()?;
    let record = match &args.record {
        Some(path) => Some(super::report::read_record(path)?),
        None => None,
    };
    if let Some(record) = &record {
        let recorded = record.metric_names();
        let missing: Vec<&str> = metrics
            .iter()
            .filter(|m| !recorded.contains(&m.name))
            .map(|m| m.name.as_str())
            .collect();
        if !missing.is_empty() {
            bail!(
                "metrics {} have no measurements in the record (it has: {})\nhint: backtest a record with the metrics it measured, by name",
                missing.join(", "),
                recorded.join(", ")
            );
        }
    }
    let unsupported: Vec<&str> = metrics
        .iter()
        .filter(|m| record.is_none() && !past_data(m))
        .map(|m| m.name.as_str())
        .collect();
    if !unsupported.is_empty() {
        bail!(
            "metrics {} cannot be measured in the past\nhint: backtest reads Prometheus (and judge metrics whose queries are Prometheus queries)",
            unsupported.join(", ")
        );
    }
    let now = Timestamp::now();
    let recorded_window = record
        .as_ref()
        .and_then(|r| r.started_at.zip(r.finished_at));
    let from = match (&args.from, recorded_window) {
        (Some(text), _) => parse_time(text, now).context("--from")?,
        (None, Some((start, _))) => start,
        (None, None) => bail!("--from is required (the record has no start time)"),
    };
    let to = match recorded_window {
        Some((_, end)) if args.to == "now" => end,
        _ => parse_time(&args.to, now).context("--to")?,
    };
    let step = match &args.step {
        Some(text) => crate::crd::duration::parse_go_duration(text)
            .map_err(|e| anyhow::anyhow!("--step {text}: {e}"))?,
        None => metrics
            .iter()
            .filter_map(|m| crate::crd::duration::parse_go_duration(&m.interval).ok())
            .filter(|d| *d > SignedDuration::ZERO)
            .min()
            .unwrap_or(SignedDuration::from_mins(1)),
    };
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    let times = backtest::times(from, to, step);
    if times.is_empty() {
        bail!("--step must be positive");
    }
    let mut settings = ProviderSettings::from_process_env();
    if args.prometheus_address.is_some() {
        settings.prometheus_address = args.prometheus_address.clone();
    }
    let providers = Providers::new(settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let measured = match &record {
        Some(record) => {
            let start = record.started_at.unwrap_or(from);
            let recorded = crate::replay::recorded_metrics(record, start);
            runtime.block_on(measure_all(&recorded, &metrics, &times))
        }
        None => runtime.block_on(measure_all(&providers, &metrics, &times)),
    };
    let mut intervals = Vec::with_capacity(times.len());
    for (t, at) in times.iter().zip(&measured) {
        let verdict = backtest::worst(at.iter().map(|m| m.phase));
        let measurements = metrics
            .iter()
            .zip(at)
            .map(|(metric, m)| {
                let why = m
                    .metadata
                    .get("explanation")
                    .cloned()
                    .unwrap_or_else(|| m.message.clone());
                (
                    metric.name.clone(),
                    Measured {
                        phase: m.phase,
                        value: m.value.clone(),
                        why,
                    },
                )
            })
            .collect();
        intervals.push(Interval {
            time: t.to_string(),
            verdict,
            measurements,
        });
    }
    let mut window = BTreeMap::new();
    for (i, metric) in metrics.iter().enumerate() {
        let series: Vec<_> = measured.iter().map(|at| at[i].clone()).collect();
        let (result, phase) = backtest::assess(metric, &series);
        window.insert(
            metric.name.clone(),
            WindowMetric {
                phase,
                count: result.count,
                successful: result.successful,
                failed: result.failed,
                inconclusive: result.inconclusive,
                error: result.error,
            },
        );
    }
    let report = Report {
        from: from.to_string(),
        to: to.to_string(),
        step: format!("{step:#}"),
        verdict: backtest::worst(window.values().map(|m| m.phase)),
        intervals,
        metrics: window,
    };
    match args.output {
        super::analysis::Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        super::analysis::Output::Text => print!("{}", render(&report, &metrics)),
    }
    Ok(ExitStatus::Success)
}

/// Each metric measured at each time, through `provider`.
async fn measure_all<M: Metrics>(
    provider: &M,
    metrics: &[Metric],
    times: &[Timestamp],
) -> Vec<Vec<crate::crd::Measurement>> {
    let run = AnalysisRun::new("backtest", Default::default());
    let run = &run;
    futures::stream::iter(times.iter().copied())
        .map(|t| async move {
            let mut out = Vec::with_capacity(metrics.len());
            for metric in metrics {
                let context = MeasureContext {
                    run,
                    now: t,
                    secrets: &[],
                };
                out.push(provider.measure(context, metric, &TaskKind::Run).await);
            }
            out
        })
        .buffered(8)
        .collect()
        .await
}

/// Whether a metric's measurement depends on `now` (so can be taken in the past).
fn past_data(metric: &Metric) -> bool {
    let p = &metric.provider;
    p.prometheus.is_some()
        || p.judge.as_ref().is_some_and(|j| {
            j.metrics
                .iter()
                .all(|m| m.canary.prometheus.is_some() && m.baseline.prometheus.is_some())
        })
}

/// `now`, `now-24h`, or an RFC 3339 time.
fn parse_time(text: &str, now: Timestamp) -> anyhow::Result<Timestamp> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix("now-") {
        let d = crate::crd::duration::parse_go_duration(ago)
            .map_err(|e| anyhow::anyhow!("{ago}: {e}"))?;
        return now
            .checked_sub(d)
            .map_err(|e| anyhow::anyhow!("{text}: {e}"));
    }
    text.parse().map_err(|e| {
        anyhow::anyhow!("`{text}` is not `now`, `now-DURATION` or an RFC 3339 time: {e}")
    })
}

fn render(report: &Report, metrics: &[Metric]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    let mut header = vec!["time".to_string()];
    header.extend(metrics.iter().map(|m| m.name.clone()));
    header.push("verdict".into());
    table.set_header(header);
    for interval in &report.intervals {
        let mut row = vec![interval.time.clone()];
        for metric in metrics {
            let m = &interval.measurements[&metric.name];
            row.push(format!("{} {}", m.phase, m.value));
        }
        row.push(interval.verdict.to_string());
        table.add_row(row);
    }
    let mut out = format!(
        "Backtest from {} to {} every {}: {} intervals\n{table}\n",
        report.from,
        report.to,
        report.step,
        report.intervals.len()
    );
    for (name, m) in &report.metrics {
        out.push_str(&format!(
            "Metric {name} over the window: {} (count {}, successful {}, failed {}, inconclusive {}, error {})\n",
            m.phase, m.count, m.successful, m.failed, m.inconclusive, m.error
        ));
        if let Some(first) = report
            .intervals
            .iter()
            .find(|i| i.measurements[name].phase != AnalysisPhase::Successful)
        {
            let m = &first.measurements[name];
            out.push_str(&format!(
                "  first non-Successful at {}: {} {} ({})\n",
                first.time, m.phase, m.value, m.why
            ));
        }
    }
    out.push_str(&format!(
        "Verdict of a run over the window: {}\n",
        report.verdict
    ));
    out
}
