//! Live progress for people: one line per milestone, timed from the start of the drive.

use std::io::Write;

use jiff::Timestamp;

use rollout_runner_api::crd::AnalysisPhase;
use rollout_runner_api::plan::Action;
use rollout_runner_core::engine::step_string;

use super::{Change, Reporter, Update, changes};

/// Writes progress lines to a writer (stdout for `simulate`, stderr for `apply --wait`).
pub struct Terminal<W: Write + Send> {
    out: W,
    start: Option<Timestamp>,
    /// Also print every Kubernetes-style event (scaling, service switches).
    pub verbose: bool,
}

impl<W: Write + Send> Terminal<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            start: None,
            verbose: false,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn elapsed(&mut self, at: Timestamp) -> String {
        let start = *self.start.get_or_insert(at);
        let seconds = at.duration_since(start).as_secs().max(0);
        format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600,
            (seconds % 3600) / 60,
            seconds % 60
        )
    }

    fn line(&mut self, at: Timestamp, text: &str) {
        let elapsed = self.elapsed(at);
        // A closed stdout (piped into `head`) must not fail the drive.
        let _ = writeln!(self.out, "{elapsed}  {text}");
    }
}

fn verdict(phase: AnalysisPhase) -> &'static str {
    match phase {
        AnalysisPhase::Successful => "✔ Successful",
        AnalysisPhase::Failed => "✖ Failed",
        AnalysisPhase::Error => "⚠ Error",
        AnalysisPhase::Inconclusive => "? Inconclusive",
        AnalysisPhase::Running => "◌ Running",
        AnalysisPhase::Pending => "◌ Pending",
    }
}

impl<W: Write + Send> Reporter for Terminal<W> {
    fn report(&mut self, update: &Update<'_>) {
        match *update {
            Update::Started { at, rollout } => {
                let strategy = if rollout.spec.blue_green().is_some() {
                    "blue-green".to_string()
                } else {
                    format!("canary, {} steps", rollout.spec.steps().len())
                };
                let text = format!(
                    "rollout {}/{}: {} replicas, {strategy}",
                    rollout.namespace_or_default(),
                    rollout.name(),
                    rollout.spec.replicas_or_default()
                );
                self.line(at, &text);
            }
            Update::Events { at, events, .. } => {
                if self.verbose {
                    for event in events {
                        let text = format!("{}: {}", event.reason, event.message);
                        self.line(at, &text);
                    }
                }
            }
            Update::Actions { at, actions, .. } => {
                // No event tells of a `workloadRef` Deployment being scaled (Argo only logs it).
                for action in actions {
                    if matches!(action, Action::ScaleDeployment { .. }) {
                        self.line(at, &action.describe());
                    }
                }
            }
            Update::Status {
                at,
                rollout,
                previous,
            } => {
                let status = rollout.status_or_default();
                for change in changes(rollout, previous) {
                    let text = match change {
                        Change::UpdateStarted { pod_hash } => format!("new revision {pod_hash}"),
                        Change::StepStarted { index, total } => {
                            let step = usize::try_from(index)
                                .ok()
                                .and_then(|i| rollout.spec.steps().get(i))
                                .map(step_string)
                                .unwrap_or_default();
                            format!("step {}/{total}: {step}", index + 1)
                        }
                        Change::StepsCompleted => "all steps completed".into(),
                        Change::WeightChanged { from, to } => {
                            format!("traffic weight {from}% -> {to}%")
                        }
                        Change::Paused { reason } => format!("paused ({reason})"),
                        Change::Resumed => "resumed".into(),
                        Change::Promoted { pod_hash } => format!("stable is now {pod_hash}"),
                        Change::Aborted { .. } => {
                            "aborting: traffic and pods go back to the stable version".into()
                        }
                        Change::ServiceSwitched { role, pod_hash } => {
                            format!("{role} service now selects {pod_hash}")
                        }
                        Change::Phase { .. } => continue,
                    };
                    self.line(at, &text);
                }
                let before =
                    previous.map(|p| (p.replicas, p.updated_replicas, p.available_replicas));
                let now = (
                    status.replicas,
                    status.updated_replicas,
                    status.available_replicas,
                );
                if before != Some(now) {
                    let text = format!(
                        "pods: {} current, {} updated, {} available (desired {})",
                        now.0,
                        now.1,
                        now.2,
                        rollout.spec.replicas_or_default()
                    );
                    self.line(at, &text);
                }
            }
            Update::Measurement {
                at,
                run,
                metric,
                measurement,
            } => {
                let kind = run
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(rollout_runner_api::crd::ROLLOUT_TYPE_LABEL))
                    .cloned()
                    .unwrap_or_else(|| "analysis".into());
                let mut text = format!(
                    "measurement {kind}/{metric} = {}: {}",
                    if measurement.value.is_empty() {
                        "-"
                    } else {
                        &measurement.value
                    },
                    verdict(measurement.phase)
                );
                if !measurement.message.is_empty() {
                    text.push_str(&format!(" ({})", measurement.message));
                }
                self.line(at, &text);
                // Why a measurement did not pass, in words (the condition and the values).
                if matches!(
                    measurement.phase,
                    AnalysisPhase::Failed | AnalysisPhase::Inconclusive | AnalysisPhase::Error
                ) && let Some(why) = measurement
                    .metadata
                    .get("explanation")
                    .filter(|e| !e.is_empty())
                {
                    let _ = writeln!(self.out, "          why: {why}");
                }
            }
            Update::AnalysisRunCompleted { at, run, status } => {
                let mut text = format!(
                    "analysis {} {}",
                    run.metadata.name.as_deref().unwrap_or(""),
                    verdict(status.phase)
                );
                if !status.message.is_empty() {
                    text.push_str(&format!(": {}", status.message));
                }
                self.line(at, &text);
            }
            Update::Finished { at, outcome } => {
                let text = outcome.describe();
                self.line(at, &text);
            }
        }
    }
}
