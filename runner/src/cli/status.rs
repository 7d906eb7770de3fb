//! `rollout-runner status`: the phase of a rollout, and with `--watch` its changes until it ends.
//!
//! It only reads: it takes no Lease and writes nothing, so it can watch a rollout that another
//! runner (or an Argo Rollouts controller) drives.

use std::io::Write;

use clap::Args;
use jiff::Timestamp;
use serde_json::json;

use crate::cluster::kube::KubeCluster;
use crate::crd::Rollout;
use crate::driver::{Driver, RunOptions, evaluate, phase_line};
use crate::engine::phase::observed_phase;
use crate::error::ExitStatus;
use crate::metrics::scripted::Scripted;
use crate::report::sources::Sources;
use crate::report::{Fanout, Outcome, Reporter, Update};

use super::OutputFormat;
use super::operations::{RolloutArg, duration_flag, read_rollout, runtime};
use super::record_args::{RecordArgs, recorder};
use super::report_args::{ReportArgs, finish_reports, start_reporters};

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    target: RolloutArg,

    /// Follow the rollout, printing each new phase, until it is Healthy (exit 0) or Degraded
    /// (exit 1). A pause is waited through, as Argo does; see `--success-on-pause`.
    #[arg(long, short = 'w')]
    watch: bool,

    /// With `--watch`: give up after this long (exit 3); the rollout keeps going.
    #[arg(long, short = 't', value_name = "DURATION", requires = "watch")]
    timeout: Option<String>,

    /// With `--watch`: stop when the rollout pauses (a pause step, blue-green waiting for
    /// promotion, a manual pause), exit 0.
    #[arg(long, requires = "watch")]
    success_on_pause: bool,

    /// `text`: `Phase - message` lines. `json`: one document at the end.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,

    /// With `--watch`, the release is reported as `apply --wait` reports it (check run, sticky
    /// comment, statuses, webhooks), whoever drives it.
    /// With `--watch`: the record of what was seen (status transitions, traffic, pods, events
    /// and the outcome; measurements only when this process takes them, so none here).
    #[command(flatten)]
    records: RecordArgs,

    #[command(flatten)]
    report: ReportArgs,
}

/// Prints `Phase - message` each time it changes, and keeps the rollout as last seen.
struct PhaseLines {
    line: Option<String>,
    rollout: Option<Rollout>,
    print: bool,
}

impl Reporter for PhaseLines {
    fn report(&mut self, update: &Update<'_>) {
        let (Update::Started { rollout, .. } | Update::Status { rollout, .. }) = *update else {
            return;
        };
        let line = phase_line(rollout);
        if self.line.as_ref() != Some(&line) {
            if self.print {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            self.line = Some(line);
        }
        self.rollout = Some(rollout.clone());
    }
}

pub(crate) fn run(args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let timeout = args
        .timeout
        .as_deref()
        .map(|text| duration_flag(text, "--timeout"))
        .transpose()?
        // Argo's `--timeout 0` waits forever.
        .filter(|d| !d.is_zero());
    let text = args.output == OutputFormat::Text;
    runtime()?.block_on(async {
        let connection = args.target.connection.connect().await?;
        let name = &args.target.name;
        let namespace = &connection.namespace;
        let rollout = read_rollout(&connection, name).await?;
        let options = RunOptions {
            timeout,
            success_on_pause: args.success_on_pause,
            target_template: None,
        };
        let mut lines = PhaseLines {
            line: None,
            rollout: None,
            print: text,
        };
        if !args.watch && !args.report.report.is_empty() {
            eprintln!("warning: --report reports a release while it is watched: add --watch");
        }
        let (outcome, last) = if args.watch {
            let cluster = KubeCluster::new(connection.client.clone(), namespace);
            // Following never measures anything; the driver only needs some provider.
            let metrics = Scripted::new(Timestamp::now(), Default::default());
            let ci =
                crate::ci::CiContext::detect(crate::ci::process_env, &std::env::current_dir()?);
            // No manifests here: annotations cannot point at files.
            let mut reporters = start_reporters(&args.report, &ci, Sources::default())?;
            let mut recorder = recorder("status", None, None);
            let followed = {
                let mut fanout = Fanout(vec![
                    &mut lines as &mut dyn Reporter,
                    &mut reporters,
                    &mut recorder,
                ]);
                let mut driver = Driver::new(&cluster, &metrics, &mut fanout);
                tokio::select! {
                    outcome = driver.follow(namespace, name, &options) => Some(outcome),
                    signal = super::interrupted() => {
                        eprintln!("\n{signal}: stopped watching `{namespace}/{name}`");
                        None
                    }
                }
            };
            finish_reports(reporters).await;
            args.records.write(&recorder.record, false)?;
            let Some(outcome) = followed else {
                return Ok(ExitStatus::Interrupted);
            };
            let outcome = outcome?;
            (Some(outcome), lines.rollout.unwrap_or(rollout))
        } else {
            let line = phase_line(&rollout);
            if text {
                println!("{line}");
            }
            // Without --watch only a degraded rollout is a failure, as in Argo.
            let outcome = evaluate(&rollout, &RunOptions::default()).filter(|o| {
                matches!(
                    o,
                    Outcome::Aborted { .. } | Outcome::Degraded { .. } | Outcome::Invalid { .. }
                )
            });
            (outcome, rollout)
        };
        let status = outcome
            .as_ref()
            .map_or(ExitStatus::Success, Outcome::exit_status);
        if text {
            match &outcome {
                Some(
                    Outcome::Aborted { message }
                    | Outcome::Degraded { message }
                    | Outcome::Invalid { message },
                ) => eprintln!(
                    "error: rollout `{namespace}/{name}` is in a degraded state with message: \
                     {message}"
                ),
                Some(Outcome::TimedOut { .. }) => eprintln!(
                    "error: the status watch of rollout `{namespace}/{name}` exceeded its \
                     timeout; the rollout keeps going"
                ),
                Some(Outcome::Deleted) => {
                    eprintln!("error: rollout `{namespace}/{name}` was deleted")
                }
                _ => {}
            }
        } else {
            let status_now = last.status_or_default();
            let (phase, message) =
                observed_phase(last.metadata.generation, &last.spec, &status_now);
            let report = json!({
                "rollout": format!("{namespace}/{name}"),
                "phase": phase,
                "message": message,
                "outcome": outcome,
                "exitCode": status.code(),
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Ok(status)
    })
}
