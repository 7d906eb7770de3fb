//! Reporting: what the driver tells the outside world while it drives a rollout, and how a
//! rollout ended.
//!
//! Reporters receive [`Update`]s in order. They never change an outcome: a reporter that cannot
//! deliver (a forge API is down) logs and retries on its own; the trait has no error path on
//! purpose. [`changes`] turns two statuses into the milestones people care about (step
//! started, weight changed, paused, promoted, aborted), so every reporter words them alike.

pub mod approval;
pub mod delivery;
pub mod github;
pub mod gitlab;
pub mod html;
pub mod info;
pub mod junit;
pub mod markdown;
pub mod notify;
pub mod record;
pub mod release;
pub mod reporters;
pub mod sources;
pub mod terminal;
pub mod timeline;
pub mod webhook;

use jiff::Timestamp;
use serde::Serialize;

use rollout_runner_api::crd::{
    AnalysisRun, AnalysisRunStatus, Measurement, Rollout, RolloutStatus,
};
use rollout_runner_api::error::ExitStatus;
use rollout_runner_api::plan::{Action, Event};

/// How a drive ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    /// The release is stable and healthy.
    Promoted { revision: String },
    /// Paused waiting for a person, and `--success-on-pause` was given.
    Paused { message: String },
    /// Aborted (failed analysis, a person, or the progress deadline with abort).
    Aborted { message: String },
    /// Degraded without an abort (e.g. progress deadline exceeded).
    Degraded { message: String },
    /// The spec is invalid (InvalidSpec condition).
    Invalid { message: String },
    /// A newer release replaced this one before it finished.
    Superseded { by: String },
    /// `--timeout` passed while the rollout was still going; it keeps its state.
    TimedOut { phase: String },
    /// Nothing will happen without a person (a pause with no duration, in a simulation).
    Idle { phase: String },
    /// The Rollout was deleted.
    Deleted,
}

impl Outcome {
    /// The exit status CI sees (see `architecture.md`).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Self::Promoted { .. } | Self::Paused { .. } => ExitStatus::Success,
            Self::Aborted { .. }
            | Self::Degraded { .. }
            | Self::Superseded { .. }
            | Self::Deleted => ExitStatus::Failure,
            Self::Invalid { .. } => ExitStatus::Error,
            Self::TimedOut { .. } | Self::Idle { .. } => ExitStatus::TimedOut,
        }
    }

    /// Whether the rollout still has work to finish after this outcome (a rollback to complete,
    /// old pods to scale down) that the runner should see through before exiting.
    pub fn needs_settling(&self) -> bool {
        matches!(
            self,
            Self::Promoted { .. } | Self::Aborted { .. } | Self::Degraded { .. }
        )
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Self::Promoted { revision } if revision.is_empty() => "promoted".into(),
            Self::Promoted { revision } => format!("promoted: revision {revision} is stable"),
            Self::Paused { message } => format!("paused awaiting promotion ({message})"),
            Self::Aborted { message } => format!("aborted: {message}"),
            Self::Degraded { message } => format!("degraded: {message}"),
            Self::Invalid { message } => format!("invalid: {message}"),
            Self::Superseded { by } => format!("superseded by pod template {by}"),
            Self::TimedOut { phase } => format!("timed out while {phase}"),
            Self::Idle { phase } => {
                format!("waiting for a person: {phase} (promote it, or use --success-on-pause)")
            }
            Self::Deleted => "the rollout was deleted".into(),
        }
    }
}

/// Something that happened while driving.
#[derive(Debug, Clone, Copy)]
pub enum Update<'a> {
    /// Driving starts.
    Started { at: Timestamp, rollout: &'a Rollout },
    /// Actions performed in one pass.
    Actions {
        at: Timestamp,
        rollout: &'a Rollout,
        actions: &'a [Action],
    },
    /// Events of one pass (Argo's event reasons and messages).
    Events {
        at: Timestamp,
        rollout: &'a Rollout,
        events: &'a [Event],
    },
    /// The status changed; `rollout` carries the new one.
    Status {
        at: Timestamp,
        rollout: &'a Rollout,
        previous: Option<&'a RolloutStatus>,
    },
    /// A measurement finished.
    Measurement {
        at: Timestamp,
        run: &'a AnalysisRun,
        metric: &'a str,
        measurement: &'a Measurement,
    },
    /// An AnalysisRun reached its verdict.
    AnalysisRunCompleted {
        at: Timestamp,
        run: &'a AnalysisRun,
        status: &'a AnalysisRunStatus,
    },
    /// Driving ended.
    Finished { at: Timestamp, outcome: &'a Outcome },
}

/// Receives updates. Implementations must not fail the drive.
pub trait Reporter: Send {
    fn report(&mut self, update: &Update<'_>);

    /// The driver has nothing to do before `until` (a pause, the next measurement): a good
    /// moment to send what accumulated. Reporters that send as they go ignore it.
    fn waiting(&mut self, _at: Timestamp, _until: Option<Timestamp>) {}
}

/// Ignores everything.
pub struct Silent;

impl Reporter for Silent {
    fn report(&mut self, _: &Update<'_>) {}
}

/// Several reporters, in order.
pub struct Fanout<'a>(pub Vec<&'a mut dyn Reporter>);

impl Reporter for Fanout<'_> {
    fn report(&mut self, update: &Update<'_>) {
        for reporter in &mut self.0 {
            reporter.report(update);
        }
    }

    fn waiting(&mut self, at: Timestamp, until: Option<Timestamp>) {
        for reporter in &mut self.0 {
            reporter.waiting(at, until);
        }
    }
}

/// A milestone derived from two statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "camelCase")]
pub enum Change {
    /// A new revision started rolling out.
    UpdateStarted {
        pod_hash: String,
    },
    /// A canary step started (index from 0).
    StepStarted {
        index: i32,
        total: usize,
    },
    /// Every step has run.
    StepsCompleted,
    /// The canary traffic weight changed.
    WeightChanged {
        from: i32,
        to: i32,
    },
    Paused {
        reason: String,
    },
    Resumed,
    /// A blue-green service now selects this pod-template hash.
    #[serde(rename_all = "camelCase")]
    ServiceSwitched {
        role: String,
        pod_hash: String,
    },
    /// The new revision became the stable one.
    Promoted {
        pod_hash: String,
    },
    Aborted {
        message: String,
    },
    /// The phase changed.
    Phase {
        phase: String,
        message: String,
    },
}

/// The milestones between two statuses of a rollout.
pub fn changes(rollout: &Rollout, previous: Option<&RolloutStatus>) -> Vec<Change> {
    let default = RolloutStatus::default();
    let old = previous.unwrap_or(&default);
    let new = rollout.status_or_default();
    let mut out = Vec::new();
    if new.current_pod_hash != old.current_pod_hash
        && !new.current_pod_hash.is_empty()
        && !old.current_pod_hash.is_empty()
    {
        out.push(Change::UpdateStarted {
            pod_hash: new.current_pod_hash.clone(),
        });
    }
    let resumed = new.pause_conditions.is_empty() && !old.pause_conditions.is_empty() && !new.abort;
    if resumed {
        out.push(Change::Resumed);
    }
    let total = rollout.spec.steps().len();
    if new.current_step_index != old.current_step_index
        && !new.abort
        && let Some(index) = new.current_step_index
    {
        if usize::try_from(index).is_ok_and(|i| i < total) {
            out.push(Change::StepStarted { index, total });
        } else if total > 0 {
            out.push(Change::StepsCompleted);
        }
    }
    let weight = |s: &RolloutStatus| s.canary.weights.as_ref().map(|w| w.canary.weight);
    if let Some(to) = weight(&new) {
        let from = weight(old).unwrap_or(0);
        if weight(old) != Some(to) && from != to {
            out.push(Change::WeightChanged { from, to });
        }
    }
    for (role, before, after) in [
        (
            "preview",
            &old.blue_green.preview_selector,
            &new.blue_green.preview_selector,
        ),
        (
            "active",
            &old.blue_green.active_selector,
            &new.blue_green.active_selector,
        ),
    ] {
        if before != after && !after.is_empty() {
            out.push(Change::ServiceSwitched {
                role: role.into(),
                pod_hash: after.clone(),
            });
        }
    }
    if new.pause_conditions.len() > old.pause_conditions.len()
        && let Some(pause) = new.pause_conditions.last()
    {
        out.push(Change::Paused {
            reason: pause.reason.as_str().into(),
        });
    }
    if new.stable_rs != old.stable_rs && !new.stable_rs.is_empty() && !old.stable_rs.is_empty() {
        out.push(Change::Promoted {
            pod_hash: new.stable_rs.clone(),
        });
    }
    if new.abort && !old.abort {
        out.push(Change::Aborted {
            message: new.message.clone(),
        });
    }
    if (new.phase != old.phase || new.message != old.message)
        && let Some(phase) = new.phase
    {
        out.push(Change::Phase {
            phase: phase.to_string(),
            message: new.message.clone(),
        });
    }
    out
}
