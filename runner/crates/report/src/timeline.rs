//! The full event timeline as data, for `--output json`.

use jiff::Timestamp;
use serde::Serialize;

use rollout_runner_api::crd::{AnalysisPhase, RolloutStatus};
use rollout_runner_api::plan::{Action, Event};

use super::{Change, Outcome, Reporter, Update, changes};

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub at: Timestamp,
    /// Seconds since the drive started.
    pub elapsed_seconds: f64,
    #[serde(flatten)]
    pub item: Item,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Item {
    Started {
        rollout: String,
        revision: String,
    },
    Action {
        action: Action,
    },
    Event {
        event: Event,
    },
    Change {
        change: Change,
    },
    #[serde(rename_all = "camelCase")]
    Status {
        phase: String,
        message: String,
        current_step_index: Option<i32>,
        canary_weight: Option<i32>,
        replicas: i32,
        updated_replicas: i32,
        available_replicas: i32,
    },
    #[serde(rename_all = "camelCase")]
    Measurement {
        run: String,
        metric: String,
        value: String,
        phase: AnalysisPhase,
        message: String,
    },
    #[serde(rename_all = "camelCase")]
    AnalysisRun {
        run: String,
        phase: AnalysisPhase,
        message: String,
    },
    Finished {
        outcome: Outcome,
    },
}

/// Records every update.
#[derive(Debug, Default)]
pub struct Timeline {
    start: Option<Timestamp>,
    pub entries: Vec<Entry>,
}

impl Timeline {
    fn push(&mut self, at: Timestamp, item: Item) {
        let start = *self.start.get_or_insert(at);
        let elapsed_seconds = at.duration_since(start).as_secs_f64();
        self.entries.push(Entry {
            at,
            elapsed_seconds,
            item,
        });
    }
}

fn status_item(status: &RolloutStatus) -> Item {
    Item::Status {
        phase: status.phase.map(|p| p.to_string()).unwrap_or_default(),
        message: status.message.clone(),
        current_step_index: status.current_step_index,
        canary_weight: status.canary.weights.as_ref().map(|w| w.canary.weight),
        replicas: status.replicas,
        updated_replicas: status.updated_replicas,
        available_replicas: status.available_replicas,
    }
}

impl Reporter for Timeline {
    fn report(&mut self, update: &Update<'_>) {
        match *update {
            Update::Started { at, rollout } => {
                let revision = rollout
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(rollout_runner_api::crd::REVISION_ANNOTATION))
                    .cloned()
                    .unwrap_or_default();
                self.push(
                    at,
                    Item::Started {
                        rollout: format!("{}/{}", rollout.namespace_or_default(), rollout.name()),
                        revision,
                    },
                );
            }
            Update::Actions { at, actions, .. } => {
                for action in actions {
                    self.push(
                        at,
                        Item::Action {
                            action: action.clone(),
                        },
                    );
                }
            }
            Update::Events { at, events, .. } => {
                for event in events {
                    self.push(
                        at,
                        Item::Event {
                            event: event.clone(),
                        },
                    );
                }
            }
            Update::Status {
                at,
                rollout,
                previous,
            } => {
                for change in changes(rollout, previous) {
                    self.push(at, Item::Change { change });
                }
                self.push(at, status_item(&rollout.status_or_default()));
            }
            Update::Measurement {
                at,
                run,
                metric,
                measurement,
            } => self.push(
                at,
                Item::Measurement {
                    run: run.metadata.name.clone().unwrap_or_default(),
                    metric: metric.to_string(),
                    value: measurement.value.clone(),
                    phase: measurement.phase,
                    message: measurement.message.clone(),
                },
            ),
            Update::AnalysisRunCompleted { at, run, status } => self.push(
                at,
                Item::AnalysisRun {
                    run: run.metadata.name.clone().unwrap_or_default(),
                    phase: status.phase,
                    message: status.message.clone(),
                },
            ),
            Update::Finished { at, outcome } => self.push(
                at,
                Item::Finished {
                    outcome: outcome.clone(),
                },
            ),
        }
    }
}
