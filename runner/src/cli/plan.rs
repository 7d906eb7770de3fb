//! `rollout-runner plan`: what a release will do, before it starts.

use std::io::Write;

use clap::Args;

use crate::error::ExitStatus;
use crate::planning::{self, ReleasePlan};

use super::inputs::{Inputs, load_inputs};

/// Show what a release will do: replicas, traffic, analysis and durations, step by step.
///
/// Starting from a fully available stable version: per step the canary and stable replica
/// counts, the traffic weight and the traffic objects each router will write, pauses, analysis
/// runs with their queries, experiments, and the minimum and maximum total duration.
///
/// Times assume pods start at once (plus minReadySeconds) and every analysis passes; a step
/// that waits for a person adds nothing to the minimum and makes the maximum unbounded. Every
/// output ends with the plan's hash (`sha256:...`), which changes whenever what the release
/// does changes.
///
/// Exit codes: 0 planned, 2 invalid input.
///
/// Example: `rollout-runner plan examples/canary-analysis-passes --output markdown`
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// Plan only this Rollout (by default every Rollout among the inputs).
    #[arg(long, value_name = "NAME")]
    rollout: Option<String>,

    /// `table` for people, `json` for scripts (one plan: an object; several: an array),
    /// `markdown` for a pull-request comment.
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    output: PlanFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PlanFormat {
    Table,
    Json,
    Markdown,
}

/// The plans in a format, as printed.
pub(crate) fn format_plans(plans: &[ReleasePlan], format: PlanFormat) -> anyhow::Result<String> {
    Ok(match format {
        PlanFormat::Table => plans
            .iter()
            .map(planning::table)
            .collect::<Vec<_>>()
            .join("\n"),
        PlanFormat::Json => {
            let mut text = match plans {
                [one] => serde_json::to_string_pretty(one)?,
                many => serde_json::to_string_pretty(many)?,
            };
            text.push('\n');
            text
        }
        PlanFormat::Markdown => planning::markdown(plans),
    })
}

pub(crate) fn run(args: PlanArgs) -> anyhow::Result<ExitStatus> {
    // A `scenario.yaml` in a directory is for `simulate`, not a manifest.
    let set = match load_inputs(&args.inputs, &args.inputs.scenario_files())? {
        Ok(set) => set,
        Err(status) => return Ok(status),
    };
    let plans = match planning::plan_set(&set, args.rollout.as_deref()) {
        Ok(plans) => plans,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitStatus::Error);
        }
    };
    let text = format_plans(&plans, args.output)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(ExitStatus::Success)
}
