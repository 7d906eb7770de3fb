//! The release as reporters tell it: the steps with their times, weights and pod counts, each
//! analysis metric with its condition and measurements, the weight and metric values over time,
//! and the outcome. Built from [`Update`]s (it is a [`Reporter`] itself), rendered by
//! [`crate::markdown`].
//!
//! Owns the bookkeeping only; it does no I/O and renders nothing.

use indexmap::IndexMap;
use jiff::Timestamp;

use rollout_runner_api::crd::{AnalysisPhase, AnalysisRun, Rollout, RolloutStatus};
use rollout_runner_core::engine::step_string;

use super::{Change, Outcome, Reporter, Update, changes};

/// One canary step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// As written: `setWeight: 20`, `pause: 2m`.
    pub text: String,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The canary weight while the step ran.
    pub weight: Option<i32>,
    /// Updated and available pods when the step ended (or now, while it runs).
    pub updated: i32,
    pub available: i32,
    /// The release was aborted during this step.
    pub aborted: bool,
}

/// One measurement of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementRecord {
    pub at: Timestamp,
    /// As Argo prints it: `0.97`, `[0.97]`.
    pub value: String,
    pub phase: AnalysisPhase,
    /// Why: the condition's explanation (`metadata.explanation`), else the message.
    pub explanation: String,
}

impl MeasurementRecord {
    /// The first number in the value, for charts.
    pub fn number(&self) -> Option<f64> {
        let text = self.value.trim_matches(|c| c == '[' || c == ']');
        text.split(',').next()?.trim().parse().ok()
    }
}

/// One metric of one kind of analysis (`Background`, `Step`, `BlueGreenPrePromotion`, ...).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricRecord {
    pub name: String,
    /// The kind of analysis (the AnalysisRun's `rollout-type` label).
    pub kind: String,
    pub success_condition: String,
    pub failure_condition: String,
    /// `failureLimit` as written.
    pub failure_limit: Option<String>,
    pub measurements: Vec<MeasurementRecord>,
    /// The metric's verdict, once its run completed.
    pub phase: Option<AnalysisPhase>,
    pub message: String,
}

impl MetricRecord {
    pub fn count(&self, phase: AnalysisPhase) -> usize {
        self.measurements
            .iter()
            .filter(|m| m.phase == phase)
            .count()
    }

    /// The last measurement that was not successful, for explanations.
    pub fn last_failure(&self) -> Option<&MeasurementRecord> {
        self.measurements
            .iter()
            .rev()
            .find(|m| m.phase != AnalysisPhase::Successful)
    }
}

/// An AnalysisRun's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub name: String,
    pub kind: String,
    pub phase: AnalysisPhase,
    pub message: String,
    /// Names of its metrics that failed, errored or were inconclusive.
    pub failed_metrics: Vec<String>,
}

/// A point of the weight chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightPoint {
    pub at: Timestamp,
    pub weight: i32,
}

/// Everything reporters say about one release.
#[derive(Debug, Clone, Default)]
pub struct Release {
    pub namespace: String,
    pub name: String,
    /// `canary` or `blue-green`.
    pub strategy: String,
    /// The `rollout.argoproj.io/revision` annotation.
    pub revision: String,
    /// The pod-template hash being released.
    pub pod_hash: String,
    /// The first container's image.
    pub image: String,
    pub desired_replicas: i32,
    pub started_at: Option<Timestamp>,
    /// The latest update's time.
    pub now: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub steps: Vec<StepRecord>,
    /// Index of the running step (from 0); `steps.len()` once all ran.
    pub current_step: Option<usize>,
    /// The canary weight now (traffic weight when routed, else the last `setWeight`).
    pub weight: i32,
    pub replicas: i32,
    pub updated: i32,
    pub available: i32,
    /// `Progressing`, `Paused`, `Healthy`, `Degraded`.
    pub phase: String,
    pub message: String,
    /// The reason of the current pause, if paused.
    pub paused: Option<String>,
    pub aborted: bool,
    /// By `kind/name`.
    pub metrics: IndexMap<String, MetricRecord>,
    pub runs: Vec<RunRecord>,
    pub weights: Vec<WeightPoint>,
    /// Milestones, in order, for timelines and webhooks.
    pub milestones: Vec<(Timestamp, Change)>,
    pub outcome: Option<Outcome>,
    /// `/rollout` commands given from the forge for this release (the Rollout's
    /// [`crate::approval::APPROVALS_ANNOTATION`]).
    pub approvals: Vec<crate::approval::Approval>,
}

impl Release {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Time since the drive started.
    pub fn elapsed(&self, at: Timestamp) -> jiff::SignedDuration {
        self.started_at
            .map(|start| at.duration_since(start))
            .unwrap_or_default()
    }

    /// The step people should look at: the running one, or the one the release was aborted in.
    pub fn step_in_focus(&self) -> Option<(usize, &StepRecord)> {
        let index = self.current_step?;
        self.steps.get(index).map(|step| (index, step))
    }

    /// Metrics that did not pass (failed, error or inconclusive verdicts, or failed
    /// measurements while running).
    pub fn failing_metrics(&self) -> impl Iterator<Item = &MetricRecord> {
        self.metrics.values().filter(|metric| match metric.phase {
            Some(phase) => matches!(
                phase,
                AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
            ),
            None => metric.count(AnalysisPhase::Failed) > 0,
        })
    }

    fn start(&mut self, at: Timestamp, rollout: &Rollout) {
        self.namespace = rollout.namespace_or_default().to_string();
        self.name = rollout.name().to_string();
        self.strategy = if rollout.spec.blue_green().is_some() {
            "blue-green".into()
        } else {
            "canary".into()
        };
        self.revision = revision(rollout);
        self.image = rollout
            .spec
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        self.desired_replicas = rollout.spec.replicas_or_default();
        self.started_at = Some(at);
        self.steps = rollout
            .spec
            .steps()
            .iter()
            .map(|step| StepRecord {
                text: step_string(step),
                started_at: None,
                finished_at: None,
                weight: None,
                updated: 0,
                available: 0,
                aborted: false,
            })
            .collect();
        let status = rollout.status_or_default();
        self.take_status(&status, rollout);
        // The status still describes the previous release: nothing of this one is live yet.
        self.weight = 0;
        self.approvals.clear();
    }

    /// The canary weight a status implies.
    fn weight_of(&self, status: &RolloutStatus, rollout: &Rollout) -> i32 {
        if let Some(weights) = &status.canary.weights {
            return weights.canary.weight;
        }
        if self.strategy == "blue-green" {
            let active = &status.blue_green.active_selector;
            return if !active.is_empty() && *active == status.current_pod_hash {
                100
            } else {
                0
            };
        }
        if status.abort {
            return 0;
        }
        if !status.stable_rs.is_empty() && status.stable_rs == status.current_pod_hash {
            return 100;
        }
        let steps = rollout.spec.steps();
        let upto = status
            .current_step_index
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(0)
            .min(steps.len().saturating_sub(1));
        if status
            .current_step_index
            .is_some_and(|i| i as usize >= steps.len())
        {
            return 100;
        }
        steps
            .iter()
            .take(upto + 1)
            .filter_map(|s| s.set_weight)
            .next_back()
            .unwrap_or(0)
    }

    fn take_status(&mut self, status: &RolloutStatus, rollout: &Rollout) {
        if !status.current_pod_hash.is_empty() {
            self.pod_hash = status.current_pod_hash.clone();
        }
        let revision = revision(rollout);
        if !revision.is_empty() {
            self.revision = revision;
        }
        self.replicas = status.replicas;
        self.updated = status.updated_replicas;
        self.available = status.available_replicas;
        self.phase = status.phase.map(|p| p.to_string()).unwrap_or_default();
        self.message = status.message.clone();
        self.paused = status
            .pause_conditions
            .last()
            .map(|p| p.reason.as_str().to_string());
        self.aborted = status.abort;
        self.weight = self.weight_of(status, rollout);
        self.approvals = crate::approval::approvals(rollout, &self.pod_hash);
    }

    fn record_weight(&mut self, at: Timestamp) {
        if self.weights.last().map(|p| p.weight) != Some(self.weight) {
            self.weights.push(WeightPoint {
                at,
                weight: self.weight,
            });
        }
    }

    fn status(&mut self, at: Timestamp, rollout: &Rollout, previous: Option<&RolloutStatus>) {
        let status = rollout.status_or_default();
        self.take_status(&status, rollout);
        for change in changes(rollout, previous) {
            match &change {
                Change::StepStarted { index, .. } => {
                    let index = usize::try_from(*index).unwrap_or(0);
                    self.end_step(at);
                    if let Some(step) = self.steps.get_mut(index) {
                        step.started_at = Some(at);
                        step.finished_at = None;
                    }
                    self.current_step = Some(index);
                }
                Change::StepsCompleted => {
                    self.end_step(at);
                    self.current_step = Some(self.steps.len());
                }
                Change::Aborted { .. } => {
                    if let Some(step) = self.current_step.and_then(|i| self.steps.get_mut(i)) {
                        step.aborted = true;
                        step.finished_at = Some(at);
                    }
                }
                _ => {}
            }
            self.milestones.push((at, change));
        }
        if let Some(step) = self
            .current_step
            .and_then(|i| self.steps.get_mut(i))
            .filter(|s| s.finished_at.is_none())
        {
            step.weight = Some(self.weight);
            step.updated = status.updated_replicas;
            step.available = status.available_replicas;
        }
        self.record_weight(at);
    }

    fn end_step(&mut self, at: Timestamp) {
        let weight = self.weight;
        if let Some(step) = self.current_step.and_then(|i| self.steps.get_mut(i))
            && step.finished_at.is_none()
        {
            step.finished_at = Some(at);
            step.weight.get_or_insert(weight);
        }
    }

    fn metric_entry(&mut self, run: &AnalysisRun, name: &str) -> &mut MetricRecord {
        let kind = run_kind(run);
        let key = format!("{kind}/{name}");
        self.metrics.entry(key).or_insert_with(|| {
            let spec = run.spec.metrics.iter().find(|m| m.name == name);
            MetricRecord {
                name: name.to_string(),
                kind,
                success_condition: spec
                    .map(|m| m.success_condition.clone())
                    .unwrap_or_default(),
                failure_condition: spec
                    .map(|m| m.failure_condition.clone())
                    .unwrap_or_default(),
                failure_limit: spec
                    .and_then(|m| m.failure_limit.as_ref())
                    .map(|l| match l {
                        rollout_runner_api::crd::IntOrString::Int(n) => n.to_string(),
                        rollout_runner_api::crd::IntOrString::String(s) => s.clone(),
                    }),
                ..Default::default()
            }
        })
    }
}

/// The revision annotation of a rollout.
fn revision(rollout: &Rollout) -> String {
    rollout
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(rollout_runner_api::crd::REVISION_ANNOTATION))
        .cloned()
        .unwrap_or_default()
}

/// `Background`, `Step`, `BlueGreenPrePromotion`...: the AnalysisRun's `rollout-type` label.
pub fn run_kind(run: &AnalysisRun) -> String {
    run.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(rollout_runner_api::crd::ROLLOUT_TYPE_LABEL))
        .cloned()
        .unwrap_or_else(|| "Analysis".into())
}

impl Reporter for Release {
    fn report(&mut self, update: &Update<'_>) {
        match *update {
            Update::Started { at, rollout } => {
                self.start(at, rollout);
                self.now = Some(at);
                self.record_weight(at);
            }
            Update::Status {
                at,
                rollout,
                previous,
            } => {
                self.now = Some(at);
                self.status(at, rollout, previous);
            }
            Update::Measurement {
                at,
                run,
                metric,
                measurement,
            } => {
                self.now = Some(at);
                let explanation = measurement
                    .metadata
                    .get("explanation")
                    .filter(|e| !e.is_empty())
                    .cloned()
                    .unwrap_or_else(|| measurement.message.clone());
                self.metric_entry(run, metric)
                    .measurements
                    .push(MeasurementRecord {
                        at,
                        value: measurement.value.clone(),
                        phase: measurement.phase,
                        explanation,
                    });
            }
            Update::AnalysisRunCompleted { at, run, status } => {
                self.now = Some(at);
                let mut failed = Vec::new();
                for result in &status.metric_results {
                    let record = self.metric_entry(run, &result.name);
                    record.phase = Some(result.phase);
                    record.message = result.message.clone();
                    if matches!(
                        result.phase,
                        AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
                    ) {
                        failed.push(result.name.clone());
                    }
                }
                self.runs.push(RunRecord {
                    name: run.metadata.name.clone().unwrap_or_default(),
                    kind: run_kind(run),
                    phase: status.phase,
                    message: status.message.clone(),
                    failed_metrics: failed,
                });
            }
            Update::Finished { at, outcome } => {
                self.now = Some(at);
                self.finished_at = Some(at);
                if let Some(step) = self.current_step.and_then(|i| self.steps.get_mut(i))
                    && step.finished_at.is_none()
                    && !matches!(
                        outcome,
                        Outcome::TimedOut { .. } | Outcome::Idle { .. } | Outcome::Paused { .. }
                    )
                {
                    step.finished_at = Some(at);
                }
                self.outcome = Some(outcome.clone());
                self.record_weight(at);
            }
            Update::Actions { .. } | Update::Events { .. } => {}
        }
    }
}
