//! `rollout-runner analysis get RUN`: an AnalysisRun's verdict, explained. For each metric its
//! phase and counters, a sparkline of its measured values, and a table of measurements with
//! the reason each was judged so (the `explanation` the providers keep, or Argo's message).

use anyhow::Context;
use clap::Args;
use comfy_table::{ContentArrangement, Table, presets};
use kube::Api;

use crate::crd::{AnalysisRun, Measurement};
use crate::error::ExitStatus;

use super::connection::ConnectionArgs;

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The AnalysisRun's name in the cluster (ignored with `--file`).
    #[arg(value_name = "RUN", required_unless_present = "file")]
    name: Option<String>,

    /// Read the AnalysisRun from a YAML or JSON file (`kubectl get ar NAME -o yaml`) instead
    /// of the cluster.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<std::path::PathBuf>,

    /// `text`: tables and sparklines. `json`: the AnalysisRun's status.
    #[arg(long, value_enum, default_value_t = super::analysis::Output::Text)]
    output: super::analysis::Output,

    #[command(flatten)]
    connection: ConnectionArgs,
}

pub(crate) fn get(args: GetArgs) -> anyhow::Result<ExitStatus> {
    let run: AnalysisRun = match (&args.file, &args.name) {
        (Some(path), _) => {
            let text = crate::render::input::read_text(path)?;
            serde_saphyr::from_str(&text)
                .with_context(|| format!("`{}` does not hold an AnalysisRun", path.display()))?
        }
        (None, Some(name)) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let connection = args.connection.connect().await?;
                let api: Api<AnalysisRun> =
                    Api::namespaced(connection.client, &connection.namespace);
                api.get(name).await.with_context(|| {
                    format!(
                        "cannot get AnalysisRun `{name}` in namespace `{}`",
                        connection.namespace
                    )
                })
            })?
        }
        (None, None) => anyhow::bail!("name an AnalysisRun or pass --file"),
    };
    match args.output {
        super::analysis::Output::Text => print!("{}", render(&run)),
        super::analysis::Output::Json => {
            println!("{}", serde_json::to_string_pretty(&run.status)?)
        }
    }
    Ok(ExitStatus::Success)
}

/// The run as text: a header, then per metric a summary line, a sparkline and a table.
pub(crate) fn render(run: &AnalysisRun) -> String {
    let name = run.metadata.name.as_deref().unwrap_or("(unnamed)");
    let mut out = String::new();
    let status = run.status.clone().unwrap_or_default();
    out.push_str(&format!("AnalysisRun {name}: {}\n", status.phase));
    if !status.message.is_empty() {
        out.push_str(&format!("  {}\n", status.message));
    }
    for metric in &status.metric_results {
        out.push_str(&format!(
            "\nMetric {}: {} (count {}, successful {}, failed {}, inconclusive {}, error {}){}\n",
            metric.name,
            metric.phase,
            metric.count,
            metric.successful,
            metric.failed,
            metric.inconclusive,
            metric.error,
            if metric.dry_run { ", dry run" } else { "" }
        ));
        if !metric.message.is_empty() {
            out.push_str(&format!("  {}\n", metric.message));
        }
        let values: Vec<f64> = metric
            .measurements
            .iter()
            .map(|m| first_number(&m.value))
            .collect();
        if values.iter().any(|v| v.is_finite()) {
            let finite = values.iter().copied().filter(|v| v.is_finite());
            let min = finite.clone().fold(f64::INFINITY, f64::min);
            let max = finite.fold(f64::NEG_INFINITY, f64::max);
            out.push_str(&format!("  {}  min {min} max {max}\n", sparkline(&values)));
        }
        let mut table = Table::new();
        table
            .load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(120)
            .set_header(vec!["#", "phase", "value", "finished", "why"]);
        for (i, m) in metric.measurements.iter().enumerate() {
            table.add_row(vec![
                (i + 1).to_string(),
                m.phase.to_string(),
                m.value.clone(),
                m.finished_at
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
                why(m),
            ]);
        }
        if !metric.measurements.is_empty() {
            out.push_str(&format!("{table}\n"));
        }
    }
    out
}

/// Why a measurement is what it is: the provider's explanation (judge lines included), or
/// Argo's message.
fn why(m: &Measurement) -> String {
    let mut lines: Vec<String> = Vec::new();
    if let Some(explanation) = m.metadata.get("explanation") {
        lines.push(explanation.clone());
    } else if !m.message.is_empty() {
        lines.push(m.message.clone());
    }
    lines.extend(
        m.metadata
            .iter()
            .filter(|(k, _)| k.starts_with("judge."))
            .map(|(k, v)| format!("{}: {v}", &k["judge.".len()..])),
    );
    lines.join("\n")
}

/// The first number in a measurement value (`0.97`, `[0.97,0.99]`, `NaN`), NaN if none.
pub(crate) fn first_number(value: &str) -> f64 {
    let trimmed = value.trim().trim_start_matches('[');
    let first = trimmed.split([',', ']']).next().unwrap_or("").trim();
    match first {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        text => text.parse().unwrap_or(f64::NAN),
    }
}

/// Eight levels between the smallest and largest finite value; a gap for the rest.
pub(crate) fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|v| {
            if !v.is_finite() {
                ' '
            } else if max == min {
                BARS[3]
            } else {
                let level = ((v - min) / (max - min) * 7.0).round() as usize;
                BARS[level.min(7)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_between_min_and_max() {
        assert_eq!(sparkline(&[0.0, 0.5, 1.0]), "▁▅█");
        assert_eq!(sparkline(&[2.0, 2.0]), "▄▄");
        assert_eq!(sparkline(&[1.0, f64::NAN, 3.0]), "▁ █");
    }

    #[test]
    fn first_numbers_of_values() {
        assert_eq!(first_number("[0.97,0.99]"), 0.97);
        assert_eq!(first_number("12"), 12.0);
        assert!(first_number("NaN").is_nan());
        assert!(first_number("[]").is_nan());
        assert_eq!(first_number("+Inf"), f64::INFINITY);
    }
}
