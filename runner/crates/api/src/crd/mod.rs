//! The Argo Rollouts API (`argoproj.io/v1alpha1`): Rollout, AnalysisTemplate,
//! ClusterAnalysisTemplate, AnalysisRun and Experiment, with Argo's defaults.
//!
//! Plain data: serde and schema derives, accessors and defaults. No behaviour beyond that,
//! and nothing imported from the rest of the crate.

mod analysis;
mod common;
pub mod duration;
mod experiment;
mod rollout;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;

pub use analysis::*;
pub use common::*;
pub use experiment::*;
pub use rollout::*;

/// API group of every kind here.
pub const GROUP: &str = "argoproj.io";
/// `apiVersion` of every kind here.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Label on ReplicaSets, pods and Services: the pod-template hash of a revision.
pub const POD_TEMPLATE_HASH_LABEL: &str = "rollouts-pod-template-hash";
/// ReplicaSet and Rollout annotation: the revision number.
pub const REVISION_ANNOTATION: &str = "rollout.argoproj.io/revision";
/// ReplicaSet annotation: earlier revision numbers of a re-used ReplicaSet.
pub const REVISION_HISTORY_ANNOTATION: &str = "rollout.argoproj.io/revision-history";
/// ReplicaSet annotation: `spec.replicas` of the Rollout when the ReplicaSet was scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "rollout.argoproj.io/desired-replicas";
/// ReplicaSet annotation: when it may be scaled down (RFC 3339, UTC).
pub const SCALE_DOWN_DEADLINE_ANNOTATION: &str = "scale-down-deadline";
/// Service annotation: the Rollout that manages its selector.
pub const MANAGED_BY_ROLLOUTS_ANNOTATION: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
/// Label segregating objects between controller installations.
pub const CONTROLLER_INSTANCE_ID_LABEL: &str = "argo-rollouts.argoproj.io/controller-instance-id";
/// AnalysisRun label: how the rollout created it (`Background`, `Step`, ...).
pub const ROLLOUT_TYPE_LABEL: &str = "rollout-type";
/// AnalysisRun label: the step that created it.
pub const STEP_INDEX_LABEL: &str = "step-index";
/// Pod annotation set by a restart.
pub const RESTARTED_AFTER_ANNOTATION: &str = "argo-rollouts.argoproj.io/restarted-after";
/// ReplicaSet annotation: the Experiment that created it.
pub const EXPERIMENT_NAME_ANNOTATION: &str = "experiment.argoproj.io/name";
/// ReplicaSet annotation: the experiment template it runs.
pub const EXPERIMENT_TEMPLATE_NAME_ANNOTATION: &str = "experiment.argoproj.io/template-name";
/// Rollout annotation: the workload generation observed for `workloadRef`.
pub const WORKLOAD_GENERATION_ANNOTATION: &str = "rollout.argoproj.io/workload-generation";
/// Annotation remembering the ephemeral metadata injected into a ReplicaSet's pods.
pub const EPHEMERAL_METADATA_ANNOTATION: &str = "rollout.argoproj.io/ephemeral-metadata";

/// Every CRD rollout-runner serves, in the order `crds/` lists them.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        Rollout::crd(),
        AnalysisTemplate::crd(),
        ClusterAnalysisTemplate::crd(),
        AnalysisRun::crd(),
        Experiment::crd(),
    ]
}

/// A CRD as YAML, as `crds/<plural>.yaml` holds it.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(crd)
}
