//! The observed world: a snapshot of everything the engine needs to decide the next step of one
//! Rollout (its ReplicaSets, Services, AnalysisRuns, Experiments and AnalysisTemplates).
//!
//! Plain data, filled in by a `cluster` implementation (the real API server or the in-memory
//! one). Nothing here fetches anything.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};

use crate::crd::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, EXPERIMENT_NAME_ANNOTATION, Experiment,
    POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, SCALE_DOWN_DEADLINE_ANNOTATION,
};

/// A ReplicaSet as the engine sees it: identity, template, desired and actual pod counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetState {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub created_at: Timestamp,
    /// `spec.replicas`.
    pub spec_replicas: i32,
    /// `status.replicas`: pods that exist.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// `status.availableReplicas`: ready for at least minReadySeconds.
    pub available_replicas: i32,
    pub min_ready_seconds: i32,
    pub template: PodTemplateSpec,
    /// Set while the ReplicaSet is being deleted.
    #[serde(default)]
    pub deleting: bool,
    /// A `ReplicaFailure` condition of the ReplicaSet, as (reason, message).
    #[serde(default)]
    pub replica_failure: Option<(String, String)>,
}

impl ReplicaSetState {
    /// The `rollouts-pod-template-hash` label ("" when missing).
    pub fn pod_hash(&self) -> &str {
        self.labels
            .get(POD_TEMPLATE_HASH_LABEL)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The `rollout.argoproj.io/revision` annotation, or 0 when missing or unparseable.
    pub fn revision(&self) -> i64 {
        self.annotations
            .get(REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0)
    }

    /// The revision annotation if it is a valid number.
    pub fn parsed_revision(&self) -> Option<i64> {
        self.annotations
            .get(REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok())
    }

    /// The `scale-down-deadline` annotation, if present ("" counts as absent).
    pub fn scale_down_deadline(&self) -> Option<&str> {
        self.annotations
            .get(SCALE_DOWN_DEADLINE_ANNOTATION)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Whether this ReplicaSet was created for an Experiment.
    pub fn is_experiment(&self) -> bool {
        self.annotations
            .get(EXPERIMENT_NAME_ANNOTATION)
            .is_some_and(|s| !s.is_empty())
    }

    /// Kubernetes' "active" ReplicaSet: it has, or ought to have, pods.
    pub fn is_active(&self) -> bool {
        self.spec_replicas > 0
    }
}

/// A Service the rollout references: its selector and annotations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceState {
    pub name: String,
    pub selector: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl ServiceState {
    /// The pod-template hash in the selector ("" when none).
    pub fn selected_hash(&self) -> &str {
        self.selector
            .get(POD_TEMPLATE_HASH_LABEL)
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// Everything the engine reads besides the Rollout itself.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// ReplicaSets owned by (or selected for adoption by) the rollout.
    pub replica_sets: Vec<ReplicaSetState>,
    /// Services referenced by the rollout, by name. A missing entry means it does not exist.
    pub services: BTreeMap<String, ServiceState>,
    /// AnalysisRuns owned by the rollout.
    pub analysis_runs: Vec<AnalysisRun>,
    /// Experiments owned by the rollout.
    pub experiments: Vec<Experiment>,
    /// AnalysisTemplates the rollout references, by name.
    pub analysis_templates: BTreeMap<String, AnalysisTemplate>,
    /// ClusterAnalysisTemplates the rollout references, by name.
    pub cluster_analysis_templates: BTreeMap<String, ClusterAnalysisTemplate>,
    /// Whether the traffic routers confirm the last weight (only routers that can verify do).
    pub traffic_weight_verified: Option<bool>,
    /// The `managedRoutes` (header and mirror routes) the traffic routers currently hold.
    pub traffic_managed_routes: Vec<String>,
    /// The workload `spec.workloadRef` names (`None`: no reference, or the workload does not
    /// exist; the engine tells the two apart by the Rollout).
    pub workload: Option<WorkloadState>,
}

/// The workload a Rollout's `workloadRef` names: where its pod template comes from, and (for a
/// Deployment) the replicas that `scaleDown` changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadState {
    /// `Deployment`, `ReplicaSet` or `PodTemplate`.
    pub kind: String,
    pub name: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// The pod template (`spec.template`, or `template` of a PodTemplate).
    pub template: Option<PodTemplateSpec>,
    /// `spec.selector` (a PodTemplate has none).
    pub selector: Option<LabelSelector>,
    /// `spec.replicas` (`None` for a PodTemplate; a Deployment without it has 1).
    pub replicas: Option<i32>,
    /// `status.availableReplicas`.
    pub available_replicas: i32,
}

impl WorkloadState {
    /// Where the pod template sits in an object of `kind` (Argo's `infoByGroupKind`).
    fn template_path(kind: &str) -> &'static [&'static str] {
        if kind == "PodTemplate" {
            &["template"]
        } else {
            &["spec", "template"]
        }
    }

    /// Read a workload from its JSON object (a manifest, or an object from the API server).
    pub fn from_object(kind: &str, object: &serde_json::Value) -> Self {
        let at = |path: &[&str]| {
            path.iter()
                .try_fold(object, |value, key| value.get(key))
                .filter(|value| !value.is_null())
        };
        fn parse<T: serde::de::DeserializeOwned>(value: Option<&serde_json::Value>) -> Option<T> {
            value.and_then(|v| serde_json::from_value(v.clone()).ok())
        }
        let pod_owner = kind != "PodTemplate";
        Self {
            kind: kind.to_string(),
            name: at(&["metadata", "name"])
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            generation: at(&["metadata", "generation"])
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
            template: parse(at(Self::template_path(kind))),
            selector: if pod_owner {
                parse(at(&["spec", "selector"]))
            } else {
                None
            },
            replicas: pod_owner.then(|| {
                at(&["spec", "replicas"])
                    .and_then(serde_json::Value::as_i64)
                    .and_then(|r| i32::try_from(r).ok())
                    .unwrap_or(1)
            }),
            available_replicas: at(&["status", "availableReplicas"])
                .and_then(serde_json::Value::as_i64)
                .and_then(|r| i32::try_from(r).ok())
                .unwrap_or(0),
        }
    }
}

impl Observed {
    pub fn replica_set(&self, name: &str) -> Option<&ReplicaSetState> {
        self.replica_sets.iter().find(|rs| rs.name == name)
    }

    pub fn replica_set_by_hash(&self, hash: &str) -> Option<&ReplicaSetState> {
        if hash.is_empty() {
            return None;
        }
        self.replica_sets.iter().find(|rs| rs.pod_hash() == hash)
    }

    pub fn analysis_run(&self, name: &str) -> Option<&AnalysisRun> {
        self.analysis_runs
            .iter()
            .find(|ar| ar.metadata.name.as_deref() == Some(name))
    }

    pub fn experiment(&self, name: &str) -> Option<&Experiment> {
        self.experiments
            .iter()
            .find(|ex| ex.metadata.name.as_deref() == Some(name))
    }
}

/// What an Experiment owns, as observed, and the templates its analyses reference.
#[derive(Debug, Clone, Default)]
pub struct ExperimentObserved {
    /// ReplicaSets owned by the experiment.
    pub replica_sets: Vec<ReplicaSetState>,
    /// AnalysisRuns owned by the experiment.
    pub analysis_runs: Vec<AnalysisRun>,
    pub analysis_templates: BTreeMap<String, AnalysisTemplate>,
    pub cluster_analysis_templates: BTreeMap<String, ClusterAnalysisTemplate>,
}
