//! The plan: what the engine wants done, as data.
//!
//! A [`Plan`] is the engine's whole answer for one reconcile: actions to perform in order, the
//! status to persist after them, events to report, and when to look again. Being data, a plan
//! can be printed, snapshot-tested and replayed against any cluster implementation.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;

use crate::crd::{AnalysisRun, Experiment, RolloutStatus, SetHeaderRoute, SetMirrorRoute};

/// One change to make in the cluster. Actions are idempotent with respect to the snapshot they
/// were planned from: after a crash, re-observing and re-planning gives the remaining ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Write `spec.replicas` (Argo defaults a missing value to 1 in the object, for HPAs).
    #[serde(rename_all = "camelCase")]
    SetRolloutReplicas {
        replicas: i32,
    },
    /// Set the Rollout's `rollout.argoproj.io/revision` annotation.
    #[serde(rename_all = "camelCase")]
    SetRolloutRevision {
        revision: String,
    },
    /// Create a ReplicaSet (always with 0 replicas; scaling is a separate action).
    CreateReplicaSet(NewReplicaSet),
    /// Replace labels/annotations/minReadySeconds of an existing ReplicaSet's metadata
    /// (revision sync of a re-used ReplicaSet).
    #[serde(rename_all = "camelCase")]
    UpdateReplicaSetMetadata {
        name: String,
        /// Annotations to set (a `None` value removes the key).
        annotations: BTreeMap<String, Option<String>>,
        min_ready_seconds: i32,
    },
    /// Scale a ReplicaSet and record `desired-replicas`.
    #[serde(rename_all = "camelCase")]
    ScaleReplicaSet {
        name: String,
        from: i32,
        to: i32,
        /// `rollout.argoproj.io/desired-replicas`: the Rollout's `spec.replicas`.
        desired_replicas_annotation: i32,
        /// Remove `scale-down-deadline` at the same time (full scale-down).
        remove_scale_down_deadline: bool,
    },
    /// Set (or, with `None`, remove) the `scale-down-deadline` annotation.
    #[serde(rename_all = "camelCase")]
    SetScaleDownDeadline {
        name: String,
        deadline: Option<Timestamp>,
    },
    /// Delete a ReplicaSet past the revision history limit.
    #[serde(rename_all = "camelCase")]
    DeleteReplicaSet {
        name: String,
    },
    /// Point a Service's selector at a pod-template hash.
    #[serde(rename_all = "camelCase")]
    SwitchServiceSelector {
        service: String,
        from: String,
        to: String,
        /// Also set `argo-rollouts.argoproj.io/managed-by-rollouts` to this rollout name.
        add_managed_by: Option<String>,
    },
    /// Set traffic weights on every configured router.
    SetTrafficWeight(TrafficWeights),
    /// Point router subsets (Istio DestinationRule, ...) at the canary and stable hashes.
    #[serde(rename_all = "camelCase")]
    UpdateTrafficHash {
        canary_hash: String,
        stable_hash: String,
        additional: Vec<WeightedDestination>,
    },
    SetHeaderRoute(SetHeaderRoute),
    SetMirrorRoute(SetMirrorRoute),
    /// Remove every route listed in `managedRoutes`.
    RemoveManagedRoutes,
    CreateAnalysisRun(Box<AnalysisRun>),
    /// Set `spec.terminate` on a run.
    #[serde(rename_all = "camelCase")]
    TerminateAnalysisRun {
        name: String,
    },
    #[serde(rename_all = "camelCase")]
    DeleteAnalysisRun {
        name: String,
    },
    CreateExperiment(Box<Experiment>),
    /// Set `spec.terminate` on an experiment.
    #[serde(rename_all = "camelCase")]
    TerminateExperiment {
        name: String,
    },
    #[serde(rename_all = "camelCase")]
    DeleteExperiment {
        name: String,
    },
    /// Create a ClusterIP Service (an experiment template's `service`).
    #[serde(rename_all = "camelCase")]
    CreateService {
        name: String,
        selector: BTreeMap<String, String>,
        ports: Vec<ServicePort>,
    },
    #[serde(rename_all = "camelCase")]
    DeleteService {
        name: String,
    },
    /// Set `spec.replicas` of the Deployment `workloadRef` names (its `scaleDown`).
    #[serde(rename_all = "camelCase")]
    ScaleDeployment {
        name: String,
        from: i32,
        to: i32,
    },
}

/// A port of a Service created by the runner: the container port, exposed as itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: i32,
    pub protocol: Option<String>,
}

impl Action {
    /// A short human description, for logs and timelines.
    pub fn describe(&self) -> String {
        match self {
            Action::SetRolloutReplicas { replicas } => format!("set spec.replicas to {replicas}"),
            Action::SetRolloutRevision { revision } => format!("set revision to {revision}"),
            Action::CreateReplicaSet(rs) => format!("create ReplicaSet {}", rs.name),
            Action::UpdateReplicaSetMetadata { name, .. } => {
                format!("update metadata of ReplicaSet {name}")
            }
            Action::ScaleReplicaSet { name, from, to, .. } => {
                let direction = if to > from { "up" } else { "down" };
                format!("scale {direction} ReplicaSet {name} from {from} to {to}")
            }
            Action::SetScaleDownDeadline { name, deadline } => match deadline {
                Some(at) => format!("set scale-down deadline of {name} to {at}"),
                None => format!("remove scale-down deadline of {name}"),
            },
            Action::DeleteReplicaSet { name } => format!("delete ReplicaSet {name}"),
            Action::SwitchServiceSelector {
                service, from, to, ..
            } => format!("switch service {service} from '{from}' to '{to}'"),
            Action::SetTrafficWeight(w) => format!(
                "set traffic weight: canary {}, stable {}",
                w.canary.weight, w.stable.weight
            ),
            Action::UpdateTrafficHash {
                canary_hash,
                stable_hash,
                ..
            } => format!("point traffic subsets at canary {canary_hash}, stable {stable_hash}"),
            Action::SetHeaderRoute(r) => format!("set header route {}", r.name),
            Action::SetMirrorRoute(r) => format!("set mirror route {}", r.name),
            Action::RemoveManagedRoutes => "remove managed routes".to_string(),
            Action::CreateAnalysisRun(ar) => format!(
                "create AnalysisRun {}",
                ar.metadata.name.as_deref().unwrap_or("")
            ),
            Action::TerminateAnalysisRun { name } => format!("terminate AnalysisRun {name}"),
            Action::DeleteAnalysisRun { name } => format!("delete AnalysisRun {name}"),
            Action::CreateExperiment(ex) => format!(
                "create Experiment {}",
                ex.metadata.name.as_deref().unwrap_or("")
            ),
            Action::TerminateExperiment { name } => format!("terminate Experiment {name}"),
            Action::DeleteExperiment { name } => format!("delete Experiment {name}"),
            Action::CreateService { name, .. } => format!("create Service {name}"),
            Action::DeleteService { name } => format!("delete Service {name}"),
            Action::ScaleDeployment { name, from, to } => {
                let direction = if to > from { "up" } else { "down" };
                format!("scale {direction} Deployment {name} from {from} to {to}")
            }
        }
    }
}

/// A ReplicaSet to create for a new pod template.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewReplicaSet {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub selector: LabelSelector,
    pub template: PodTemplateSpec,
    pub min_ready_seconds: i32,
}

/// Weights for the canary, the stable and any additional (experiment) destinations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    pub canary: WeightedDestination,
    pub stable: WeightedDestination,
    pub additional: Vec<WeightedDestination>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedDestination {
    pub service_name: String,
    pub pod_template_hash: String,
    pub weight: i32,
}

/// Normal or Warning, as Kubernetes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    Normal,
    Warning,
}

/// Something worth telling people about, with Argo's event reason and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_type: EventType,
    /// Argo's reason, e.g. `RolloutStepCompleted`.
    pub reason: String,
    pub message: String,
}

/// The engine's answer for one reconcile.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Changes to make, in order. Stop at the first failure and re-plan.
    pub actions: Vec<Action>,
    /// Status to write after the actions (the whole status; the writer diffs it).
    pub status: Option<RolloutStatus>,
    /// Events, in the order they happened.
    pub events: Vec<Event>,
    /// Look again at this time even if nothing changes (pause end, deadlines).
    pub requeue_at: Option<Timestamp>,
}

impl Plan {
    /// Ask to be woken no later than `at`.
    pub fn requeue_no_later_than(&mut self, at: Timestamp) {
        self.requeue_at = Some(match self.requeue_at {
            Some(current) if current <= at => current,
            _ => at,
        });
    }
}
