//! `rollout-runner analysis ...`: analysis metrics, offline.
//!
//! `analysis check` evaluates a metric's conditions against a result you provide, so that a
//! condition can be tried before a release depends on it. The evaluation itself lives in
//! [`crate::expr`]; this file parses arguments and prints.

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::error::ExitStatus;
use crate::expr::{self, Value};

#[derive(Debug, Subcommand)]
pub(crate) enum AnalysisCommand {
    /// Judge a result with a metric's successCondition and failureCondition, as Argo would
    ///
    /// Prints the measurement phase (`Successful`, `Failed`, `Inconclusive` or `Error`) on
    /// the first line and the reason on the next. Argo's rules apply: with only a
    /// successCondition a false one is `Failed`; with only a failureCondition a false one is
    /// `Successful`; with both, a true failureCondition wins and neither being true is
    /// `Inconclusive`; with neither, every measurement is `Successful`. A condition that does
    /// not compile for this result (an unknown name, mismatched types) or fails while running
    /// is `Error`, as in Argo.
    ///
    /// Exits 0 whatever the phase, and 2 when the arguments are unusable.
    ///
    /// Examples:
    ///
    ///   rollout-runner analysis check --result '[0.91]' --success 'result[0] >= 0.95'
    ///
    ///   rollout-runner analysis check --result=NaN --success 'result >= 0.9 || isNaN(result)'
    ///
    ///   rollout-runner analysis check --result '{"ok": true, "p95": 0.21}' \
    ///       --success 'result.ok && result.p95 < 0.3' --failure 'result.p95 > 1' --output json
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),

    /// Show an AnalysisRun's measurements and why each was judged so
    ///
    /// Per metric: its phase and counters, a sparkline of the measured values (the first
    /// number of each), and a table of measurements with the reason for each phase ("result
    /// 0.91 did not satisfy result[0] >= 0.95"; the judge's per-metric classifications).
    /// Reads the run from the cluster, or from a file with `--file`.
    ///
    /// Examples:
    ///
    ///   rollout-runner analysis get my-app-6d4f9-3 -n shop
    ///
    ///   kubectl get ar my-app-6d4f9-3 -o yaml > run.yaml && rollout-runner analysis get -f run.yaml
    #[command(verbatim_doc_comment)]
    Get(super::analysis_get::GetArgs),

    /// Run a template's metrics against past data and report what they would have decided
    ///
    /// For each time from `--from` to `--to`, every `--step`: each metric's measurement as if
    /// it had been taken then (Prometheus queries at that time; range queries relative to
    /// it), and the worst phase among them. Then, per metric, the verdict of a run that took
    /// all those measurements (failureLimit, inconclusiveLimit and consecutiveErrorLimit
    /// applied). Use it to check, before a release, that thresholds would have caught a known
    /// incident and passed a known-good day. Reads Prometheus metrics and judge metrics with
    /// Prometheus queries. Exits 0 whatever the verdict.
    ///
    /// Examples:
    ///
    ///   rollout-runner analysis backtest success-rate.yaml --args service=web \
    ///       --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z --step 1m
    ///
    ///   rollout-runner analysis backtest success-rate.yaml --from now-6h --output json
    #[command(verbatim_doc_comment)]
    Backtest(super::analysis_backtest::BacktestArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The measurement result: any JSON value, or `NaN`, `+Inf`, `-Inf` (also inside
    /// arrays, as in `[1, NaN]`). `null` means no data. Numbers are float64, as in Argo; a
    /// top-level array of numbers is a Prometheus vector (`[]float64`), any other JSON what
    /// the web provider would return. Write negative numbers as `--result=-1.5`.
    #[arg(long, value_name = "JSON", allow_hyphen_values = true)]
    result: String,

    /// The successCondition, e.g. `result[0] >= 0.95`.
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true)]
    success: Option<String>,

    /// The failureCondition, e.g. `result[0] < 0.9`.
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true)]
    failure: Option<String>,

    /// `text`: the phase, then the reason. `json`: `{"phase", "message", "explanation"}`,
    /// where `message` is Argo's measurement message for `Error` and the explanation
    /// otherwise.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

#[derive(Serialize)]
struct Report<'a> {
    phase: &'a str,
    message: &'a str,
    explanation: &'a str,
}

pub(crate) fn run(command: AnalysisCommand) -> anyhow::Result<ExitStatus> {
    match command {
        AnalysisCommand::Check(args) => check(args),
        AnalysisCommand::Get(args) => super::analysis_get::get(args),
        AnalysisCommand::Backtest(args) => super::analysis_backtest::backtest(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitStatus> {
    let result = Value::parse(&args.result).map_err(|e| {
        anyhow::anyhow!(
            "`--result {}` is not a result: {e}\n\nhint: pass JSON (`0.95`, `[0.91, 0.97]`, `{{\"ok\": true}}`), `null` for no data, or `NaN`, `+Inf`, `-Inf`",
            args.result
        )
    })?;
    let assessment = expr::evaluate_result(
        &result,
        args.success.as_deref(),
        args.failure.as_deref(),
        jiff::Timestamp::now(),
    );
    let message = assessment
        .message
        .as_deref()
        .unwrap_or(&assessment.explanation);
    match args.output {
        Output::Text => {
            println!("{}", assessment.phase);
            println!("{message}");
            if assessment.message.is_some() {
                println!("{}", assessment.explanation);
            }
        }
        Output::Json => {
            let report = Report {
                phase: assessment.phase.as_str(),
                message,
                explanation: &assessment.explanation,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(ExitStatus::Success)
}
