//! The release record: everything one release did, as versioned JSON (`--record FILE`), for
//! replaying it under other templates (`simulate --replay`), JUnit and the HTML report.
//!
//! [`Recorder`] is a [`Reporter`]: it sees exactly what the driver reports (actions, status
//! transitions, measurements after redaction, events, the outcome), so a record never holds a
//! value that no other channel may show. The schema is `docs/schema/release-record.v1.json`;
//! [`SCHEMA_VERSION`] changes with any change a reader could notice.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use rollout_runner_api::crd::{AnalysisRun, Rollout, RolloutStatus};
use rollout_runner_api::plan::Action;

use super::{Change, Reporter, Update, changes};

pub const API_VERSION: &str = "rollout-runner.io/v1";
pub const KIND: &str = "ReleaseRecord";
pub const SCHEMA_VERSION: u32 = 1;

/// One release, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRecord {
    pub api_version: String,
    pub kind: String,
    pub schema_version: u32,
    /// The command that recorded it: `simulate`, `apply`, `status`.
    pub source: String,
    pub rollout: RolloutRef,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The manifests released (empty when the recorder only watched).
    pub manifests: Vec<ManifestHash>,
    /// `rollout-runner plan --output json` of the release, when its manifests were given.
    pub plan: Option<Value>,
    /// The canary steps (or blue-green), one label each, in order.
    pub steps: Vec<String>,
    pub actions: Vec<RecordedAction>,
    pub transitions: Vec<Transition>,
    pub statuses: Vec<StatusSample>,
    pub traffic: Vec<TrafficSample>,
    pub pods: Vec<PodSample>,
    pub measurements: Vec<RecordedMeasurement>,
    pub analysis_runs: Vec<RecordedRun>,
    pub events: Vec<RecordedEvent>,
    /// When and where the release was decided (aborted, promoted, degraded).
    pub decision: Option<Decision>,
    /// The outcome, as `--output json` prints it.
    pub outcome: Option<Value>,
    /// The outcome in one line.
    pub outcome_text: Option<String>,
    pub exit_code: Option<i32>,
    pub api_writes: ApiWrites,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRef {
    pub namespace: String,
    pub name: String,
    /// The `rollout.argoproj.io/revision` annotation at the start.
    pub revision: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestHash {
    pub file: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// `sha256:` of the document's JSON as written; `None` for Secrets.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedAction {
    pub at: Timestamp,
    pub elapsed_seconds: f64,
    pub description: String,
    /// The action as data (objects created are named, not copied).
    pub action: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub at: Timestamp,
    pub elapsed_seconds: f64,
    pub change: Value,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSample {
    pub at: Timestamp,
    pub elapsed_seconds: f64,
    pub phase: String,
    pub message: String,
    pub step: Option<i32>,
    pub abort: bool,
    pub paused: bool,
    pub current_pod_hash: String,
    pub stable_pod_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSample {
    pub at: Timestamp,
    pub elapsed_seconds: f64,
    pub canary_weight: i32,
    /// `status` when the routers report it, `step` when the weight is the step's (no
    /// traffic routing: the weight is approximated by replicas).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSample {
    pub at: Timestamp,
    pub elapsed_seconds: f64,
    pub replicas: i32,
    /// Pods of the new version.
    pub updated_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedMeasurement {
    pub at: Timestamp,
    pub elapsed_seconds: f64,
    pub run: String,
    pub metric: String,
    /// `Successful`, `Failed`, `Inconclusive`, `Error`.
    pub phase: String,
    /// The value as the provider returned it, secrets redacted.
    pub value: String,
    pub message: String,
    pub success_condition: String,
    pub failure_condition: String,
    /// The provider's kind (`prometheus`, `web`, ...).
    pub provider: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRun {
    pub at: Timestamp,
    pub elapsed_seconds: f64,
    pub run: String,
    pub phase: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedEvent {
    pub at: Timestamp,
    pub elapsed_seconds: f64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub at: Timestamp,
    pub elapsed_seconds: f64,
    /// `aborted`, `promoted` or `degraded`.
    pub verdict: String,
    /// The step index (from 0) the rollout was at.
    pub step: Option<i32>,
    pub steps: usize,
    pub message: String,
}

impl Decision {
    /// `aborted at 00:06:10, step 6/8`.
    pub fn describe(&self) -> String {
        let step = self
            .step
            .map(|s| format!(", step {}/{}", s + 1, self.steps))
            .unwrap_or_default();
        format!(
            "{} at {}{step}",
            self.verdict,
            ReleaseRecord::clock(self.elapsed_seconds)
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiWrites {
    /// Every write the driver made, when the cluster counts them (simulations).
    pub total: Option<u64>,
    /// Actions performed (each one or more writes).
    pub actions: usize,
    /// Rollout status writes.
    pub status: usize,
}

impl ReleaseRecord {
    pub fn new(source: &str) -> Self {
        Self {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            schema_version: SCHEMA_VERSION,
            source: source.into(),
            rollout: RolloutRef::default(),
            started_at: None,
            finished_at: None,
            manifests: Vec::new(),
            plan: None,
            steps: Vec::new(),
            actions: Vec::new(),
            transitions: Vec::new(),
            statuses: Vec::new(),
            traffic: Vec::new(),
            pods: Vec::new(),
            measurements: Vec::new(),
            analysis_runs: Vec::new(),
            events: Vec::new(),
            decision: None,
            outcome: None,
            outcome_text: None,
            exit_code: None,
            api_writes: ApiWrites::default(),
        }
    }

    /// Read a record, checking its kind and version.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let raw: Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e} (line {})", e.line()))?;
        let kind = raw.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind != KIND {
            return Err(format!(
                "`kind` is `{kind}`, not `{KIND}`: this is not a release record \
                 (write one with `--record FILE`)"
            ));
        }
        let version = raw.get("schemaVersion").and_then(Value::as_u64);
        if version != Some(u64::from(SCHEMA_VERSION)) {
            return Err(format!(
                "`schemaVersion` is {}, this rollout-runner reads version {SCHEMA_VERSION}",
                version.map_or("missing".to_string(), |v| v.to_string())
            ));
        }
        serde_json::from_value(raw).map_err(|e| format!("invalid release record: {e}"))
    }

    /// The metric names measured, in order of first measurement.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for m in &self.measurements {
            if !names.contains(&m.metric) {
                names.push(m.metric.clone());
            }
        }
        names
    }

    /// Seconds from the start to the end of the drive (0 when either is missing).
    pub fn duration_seconds(&self) -> f64 {
        self.finished_at
            .zip(self.started_at)
            .map_or(0.0, |(end, start)| end.duration_since(start).as_secs_f64())
    }

    /// `HH:MM:SS` since the start.
    pub fn clock(elapsed_seconds: f64) -> String {
        let total = elapsed_seconds.max(0.0).round() as i64;
        format!(
            "{:02}:{:02}:{:02}",
            total / 3600,
            (total / 60) % 60,
            total % 60
        )
    }
}

/// Builds a [`ReleaseRecord`] from the driver's updates.
#[derive(Debug)]
pub struct Recorder {
    pub record: ReleaseRecord,
    /// Step weights of the rollout (for rollouts without traffic routing).
    step_weights: Vec<Option<i32>>,
    has_routing: bool,
}

impl Recorder {
    pub fn new(record: ReleaseRecord) -> Self {
        Self {
            record,
            step_weights: Vec::new(),
            has_routing: false,
        }
    }

    fn elapsed(&mut self, at: Timestamp) -> f64 {
        let start = *self.record.started_at.get_or_insert(at);
        at.duration_since(start).as_secs_f64()
    }

    fn on_start(&mut self, at: Timestamp, rollout: &Rollout) {
        self.elapsed(at);
        self.record.rollout = RolloutRef {
            namespace: rollout.namespace_or_default().to_string(),
            name: rollout.name().to_string(),
            revision: rollout
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(rollout_runner_api::crd::REVISION_ANNOTATION))
                .cloned()
                .unwrap_or_default(),
        };
        let steps = serde_json::to_value(rollout.spec.steps()).unwrap_or(Value::Null);
        let steps = steps.as_array().cloned().unwrap_or_default();
        self.record.steps = steps.iter().map(step_label).collect();
        self.step_weights = steps
            .iter()
            .map(|s| {
                s.get("setWeight")
                    .and_then(Value::as_i64)
                    .and_then(|w| i32::try_from(w).ok())
            })
            .collect();
        self.has_routing = rollout
            .spec
            .canary()
            .is_some_and(|c| c.traffic_routing.is_some());
        if rollout.spec.blue_green().is_some() {
            self.record.steps = vec!["blue-green".into()];
        }
    }

    fn on_status(&mut self, at: Timestamp, rollout: &Rollout, previous: Option<&RolloutStatus>) {
        let elapsed = self.elapsed(at);
        let status = rollout.status_or_default();
        for change in changes(rollout, previous) {
            self.record.transitions.push(Transition {
                at,
                elapsed_seconds: elapsed,
                text: change_text(&change),
                change: serde_json::to_value(&change).unwrap_or(Value::Null),
            });
        }
        self.record.statuses.push(StatusSample {
            at,
            elapsed_seconds: elapsed,
            phase: status.phase.map(|p| p.to_string()).unwrap_or_default(),
            message: status.message.clone(),
            step: status.current_step_index,
            abort: status.abort,
            paused: !status.pause_conditions.is_empty(),
            current_pod_hash: status.current_pod_hash.clone(),
            stable_pod_hash: status.stable_rs.clone(),
        });
        self.record.api_writes.status += 1;
        let pods = PodSample {
            at,
            elapsed_seconds: elapsed,
            replicas: status.replicas,
            updated_replicas: status.updated_replicas,
            ready_replicas: status.ready_replicas,
            available_replicas: status.available_replicas,
        };
        let same_pods = |p: &PodSample| {
            (
                p.replicas,
                p.updated_replicas,
                p.ready_replicas,
                p.available_replicas,
            ) == (
                pods.replicas,
                pods.updated_replicas,
                pods.ready_replicas,
                pods.available_replicas,
            )
        };
        if !self.record.pods.last().is_some_and(same_pods) {
            self.record.pods.push(pods);
        }
        let weight = match status.canary.weights.as_ref() {
            Some(weights) => Some((weights.canary.weight, "status")),
            None if !self.has_routing => self.step_weight(&status).map(|w| (w, "step")),
            None => None,
        };
        if let Some((weight, source)) = weight
            && self.record.traffic.last().map(|t| t.canary_weight) != Some(weight)
        {
            self.record.traffic.push(TrafficSample {
                at,
                elapsed_seconds: elapsed,
                canary_weight: weight,
                source: source.into(),
            });
        }
        if self.record.decision.is_none() {
            let verdict = if status.abort {
                Some("aborted")
            } else {
                match status.phase.map(|p| p.to_string()).as_deref() {
                    Some("Healthy") if previous.is_some() => Some("promoted"),
                    Some("Degraded") => Some("degraded"),
                    _ => None,
                }
            };
            if let Some(verdict) = verdict {
                // The step it was decided at: the last one reached before this status (an
                // abort sends the step index back to 0).
                let step = previous
                    .and_then(|p| p.current_step_index)
                    .or_else(|| {
                        let before = self.record.statuses.len().saturating_sub(1);
                        self.record.statuses[..before]
                            .iter()
                            .rev()
                            .find_map(|s| s.step)
                    })
                    .or(status.current_step_index);
                self.record.decision = Some(Decision {
                    at,
                    elapsed_seconds: elapsed,
                    verdict: verdict.into(),
                    step,
                    steps: self.record.steps.len(),
                    message: status.message.clone(),
                });
            }
        }
    }

    /// The weight a rollout without traffic routing aims at: the last `setWeight` up to its
    /// step; 100 once every step ran; 0 once aborted.
    fn step_weight(&self, status: &RolloutStatus) -> Option<i32> {
        if self.step_weights.is_empty() {
            return None;
        }
        if status.abort {
            return Some(0);
        }
        let index = usize::try_from(status.current_step_index?).ok()?;
        if index >= self.step_weights.len() {
            return Some(100);
        }
        Some(
            self.step_weights[..=index]
                .iter()
                .rev()
                .find_map(|w| *w)
                .unwrap_or(0),
        )
    }

    fn on_measurement(
        &mut self,
        at: Timestamp,
        run: &AnalysisRun,
        metric: &str,
        measurement: &rollout_runner_api::crd::Measurement,
    ) {
        let elapsed = self.elapsed(at);
        let spec = run.spec.metrics.iter().find(|m| m.name == metric);
        let provider = spec
            .and_then(|m| serde_json::to_value(&m.provider).ok())
            .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
            .unwrap_or_default();
        self.record.measurements.push(RecordedMeasurement {
            at,
            elapsed_seconds: elapsed,
            run: run.metadata.name.clone().unwrap_or_default(),
            metric: metric.to_string(),
            phase: measurement.phase.to_string(),
            value: measurement.value.clone(),
            message: measurement.message.clone(),
            success_condition: spec
                .map(|m| m.success_condition.clone())
                .unwrap_or_default(),
            failure_condition: spec
                .map(|m| m.failure_condition.clone())
                .unwrap_or_default(),
            provider,
        });
    }
}

/// A short label for a canary step: `setWeight 20`, `pause 2m`, `analysis`, ...
fn step_label(step: &Value) -> String {
    let Some(object) = step.as_object() else {
        return "step".into();
    };
    let Some((name, value)) = object.iter().find(|(_, v)| !v.is_null()) else {
        return "step".into();
    };
    match (name.as_str(), value) {
        ("setWeight", weight) => format!("setWeight {weight}"),
        ("pause", pause) => match pause.get("duration") {
            Some(Value::String(d)) => format!("pause {d}"),
            Some(d) if !d.is_null() => format!("pause {d}s"),
            _ => "pause (until promoted)".into(),
        },
        (other, _) => other.to_string(),
    }
}

/// The action as data: what it did, without copying whole objects it created.
fn action_value(action: &Action) -> Value {
    match action {
        Action::CreateAnalysisRun(run) => serde_json::json!({
            "createAnalysisRun": {"name": run.metadata.name},
        }),
        Action::CreateExperiment(experiment) => serde_json::json!({
            "createExperiment": {"name": experiment.metadata.name},
        }),
        Action::CreateReplicaSet(rs) => serde_json::json!({
            "createReplicaSet": {"name": rs.name},
        }),
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}

fn change_text(change: &Change) -> String {
    match change {
        Change::UpdateStarted { pod_hash } => format!("update {pod_hash} started"),
        Change::StepStarted { index, total } => format!("step {}/{total}", index + 1),
        Change::StepsCompleted => "all steps completed".into(),
        Change::WeightChanged { from, to } => format!("weight {from}% -> {to}%"),
        Change::Paused { reason } => format!("paused ({reason})"),
        Change::Resumed => "resumed".into(),
        Change::ServiceSwitched { role, pod_hash } => format!("{role} service -> {pod_hash}"),
        Change::Promoted { pod_hash } => format!("promoted {pod_hash}"),
        Change::Aborted { message } => format!("aborted: {message}"),
        Change::Phase { phase, message } if message.is_empty() => format!("phase {phase}"),
        Change::Phase { phase, message } => format!("phase {phase}: {message}"),
    }
}

impl Reporter for Recorder {
    fn report(&mut self, update: &Update<'_>) {
        match *update {
            Update::Started { at, rollout } => self.on_start(at, rollout),
            Update::Actions { at, actions, .. } => {
                let elapsed = self.elapsed(at);
                for action in actions {
                    self.record.actions.push(RecordedAction {
                        at,
                        elapsed_seconds: elapsed,
                        description: action.describe(),
                        action: action_value(action),
                    });
                }
                self.record.api_writes.actions += actions.len();
            }
            Update::Events { at, events, .. } => {
                let elapsed = self.elapsed(at);
                for event in events {
                    self.record.events.push(RecordedEvent {
                        at,
                        elapsed_seconds: elapsed,
                        event_type: format!("{:?}", event.event_type),
                        reason: event.reason.clone(),
                        message: event.message.clone(),
                    });
                }
            }
            Update::Status {
                at,
                rollout,
                previous,
            } => self.on_status(at, rollout, previous),
            Update::Measurement {
                at,
                run,
                metric,
                measurement,
            } => self.on_measurement(at, run, metric, measurement),
            Update::AnalysisRunCompleted { at, run, status } => {
                let elapsed = self.elapsed(at);
                self.record.analysis_runs.push(RecordedRun {
                    at,
                    elapsed_seconds: elapsed,
                    run: run.metadata.name.clone().unwrap_or_default(),
                    phase: status.phase.to_string(),
                    message: status.message.clone(),
                });
            }
            Update::Finished { at, outcome } => {
                self.elapsed(at);
                self.record.finished_at = Some(at);
                self.record.outcome = serde_json::to_value(outcome).ok();
                self.record.outcome_text = Some(outcome.describe());
                self.record.exit_code = Some(i32::from(outcome.exit_status().code()));
            }
        }
    }
}
