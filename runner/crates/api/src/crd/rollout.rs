//! The Rollout kind: spec, strategies, steps, traffic routing and status.
//!
//! Field names, shapes and defaults follow Argo Rollouts' `types.go`, so manifests written for
//! Argo parse unchanged. Defaults live in the `*_or_default` accessors (Argo's
//! `utils/defaults`), never in serde, so what a user wrote round-trips as written.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AnalysisPhase;
use super::analysis::AnalysisRunArgument;
use super::common::{
    AnalysisRunMetadata, DryRun, DurationString, IntOrString, MeasurementRetention,
    PodTemplateMetadata, Time, preserve_unknown,
};

/// Default `spec.replicas`.
pub const DEFAULT_REPLICAS: i32 = 1;
/// Default `spec.revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// Default `spec.progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// Default successful/unsuccessful AnalysisRun and Experiment history.
pub const DEFAULT_ANALYSIS_RUN_HISTORY_LIMIT: i32 = 5;
/// Default `scaleDownDelaySeconds` (blue-green, and canary with traffic routing).
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
/// Default `abortScaleDownDelaySeconds` (blue-green, and canary with traffic routing).
pub const DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS: i32 = 30;
/// Default `maxTrafficWeight`.
pub const DEFAULT_MAX_TRAFFIC_WEIGHT: i32 = 100;
/// Default NGINX annotation prefix.
pub const DEFAULT_NGINX_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io";
/// Default ALB annotation prefix.
pub const DEFAULT_ALB_ANNOTATION_PREFIX: &str = "alb.ingress.kubernetes.io";

/// A Rollout: a Deployment replacement with canary and blue-green strategies.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "argoproj.io",
    derive = "PartialEq",
    derive = "Default",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    status = "RolloutStatus",
    shortname = "ro",
    category = "all",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.HPAReplicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".spec.replicas","description":"Number of desired pods"}"#,
    printcolumn = r#"{"name":"Current","type":"integer","jsonPath":".status.replicas","description":"Total number of non-terminated pods targeted by this rollout"}"#,
    printcolumn = r#"{"name":"Up-to-date","type":"integer","jsonPath":".status.updatedReplicas","description":"Total number of non-terminated pods targeted by this rollout that have the desired template spec"}"#,
    printcolumn = r#"{"name":"Available","type":"integer","jsonPath":".status.availableReplicas","description":"Total number of available pods (ready for at least minReadySeconds) targeted by this rollout"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp","description":"Time since resource was created"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Desired pods; defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector for the pods; must match the template's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// The pods to run, as a Kubernetes PodTemplateSpec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub template: Option<PodTemplateSpec>,
    /// Take the pod template from a Deployment, ReplicaSet or PodTemplate instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<ObjectRef>,
    /// Seconds a new pod must be ready before it counts as available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<i32>,
    /// Rollbacks to at most this many revisions back skip steps and analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindowSpec>,
    /// Exactly one of `canary` or `blueGreen`.
    #[serde(default)]
    pub strategy: RolloutStrategy,
    /// Old ReplicaSets to keep; defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// Manual pause: halts scaling and service switching.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Seconds without progress before the rollout is Degraded; defaults to 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Abort the update when the progress deadline is exceeded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub progress_deadline_abort: bool,
    /// Restart every pod created before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_at: Option<Time>,
    /// History limits for AnalysisRuns and Experiments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisRunStrategy>,
}

/// A reference to the workload that provides the pod template (`spec.workloadRef`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `never` (default), `onsuccess` or `progressively`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scale_down: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackWindowSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revisions: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_run_history_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsuccessful_run_history_limit: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
}

/// Blue-green: run the new version beside the old one, then switch the active Service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// Service switched to the new ReplicaSet on promotion.
    #[serde(default)]
    pub active_service: String,
    /// Service pointed at the new ReplicaSet as soon as it exists.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preview_service: String,
    /// Replicas of the new version before promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_replica_count: Option<i32>,
    /// Promote without waiting for a person; defaults to true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_enabled: Option<bool>,
    /// Wait this long after the preview is available before promoting automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_seconds: Option<i32>,
    /// Used for restarts only; defaults to 25%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Keep the old ReplicaSet up this long after the switch; defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    /// How many old ReplicaSets may wait for their scale-down deadline at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Analysis that must succeed before the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<RolloutAnalysis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    /// Analysis that must succeed after the switch for the new version to become stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<RolloutAnalysis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_metadata: Option<PodTemplateMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_metadata: Option<PodTemplateMetadata>,
    /// Scale the preview down this long after an abort; 0 never scales it down. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
}

/// Pod anti-affinity injected between the new and the stable pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AntiAffinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_during_scheduling_ignored_during_execution:
        Option<PreferredDuringSchedulingIgnoredDuringExecution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_during_scheduling_ignored_during_execution:
        Option<RequiredDuringSchedulingIgnoredDuringExecution>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreferredDuringSchedulingIgnoredDuringExecution {
    pub weight: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequiredDuringSchedulingIgnoredDuringExecution {}

/// Canary: move to the new version in steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Service whose selector is pointed at the canary (new) ReplicaSet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub canary_service: String,
    /// Service whose selector is pointed at the stable ReplicaSet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable_service: String,
    /// The steps; none means a rolling update governed by maxSurge and maxUnavailable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CanaryStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<RolloutTrafficRouting>,
    /// Defaults to 25% (rounded down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Defaults to 25% (rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    /// Background analysis for the whole update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysisBackground>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<AntiAffinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_metadata: Option<PodTemplateMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_metadata: Option<PodTemplateMetadata>,
    /// Traffic routing only: keep the previous stable this long after the switch; default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_revision_limit: Option<i32>,
    /// Traffic routing only: scale the canary down this long after an abort; 0 never. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay_seconds: Option<i32>,
    /// Traffic routing only: scale the stable down as the canary weight grows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic_stable_scale: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_pong: Option<PingPongSpec>,
    /// Traffic routing only: a non-zero ReplicaSet has at least this many pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pods_per_replica_set: Option<i32>,
    /// A step may advance once this many canary pods are available (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_progress_threshold: Option<ReplicaProgressThreshold>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PingPongSpec {
    #[serde(default)]
    pub ping_service: String,
    #[serde(default)]
    pub pong_service: String,
}

/// When a step may advance before every canary pod is available.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaProgressThreshold {
    /// `Percent` or `Pods`.
    #[serde(rename = "type")]
    pub type_: String,
    pub value: i32,
}

/// Traffic routing configuration: one or more routers, reconciled in sequence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTrafficRouting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<IstioTrafficRouting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxTrafficRouting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alb: Option<AlbTrafficRouting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smi: Option<SmiTrafficRouting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambassador: Option<AmbassadorTrafficRouting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_mesh: Option<AppMeshTrafficRouting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traefik: Option<TraefikTrafficRouting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apisix: Option<ApisixTrafficRouting>,
    /// Gateway API, natively: an HTTPRoute (or GRPCRoute) whose stable and canary backendRefs
    /// get the weights. Argo's plugin form (`plugins["argoproj-labs/gatewayAPI"]`) is accepted
    /// too and means the same thing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_api: Option<GatewayApiTrafficRouting>,
    /// Traffic router plugins by name (`argoproj-labs/gatewayAPI`, ...), with raw config.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "preserve_unknown")]
    pub plugins: BTreeMap<String, serde_json::Value>,
    /// Routes rollout-runner manages, in precedence order (needed by header and mirror steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_routes: Vec<ManagedRoute>,
    /// Total weight; defaults to 100. NGINX and plugins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_traffic_weight: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManagedRoute {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioTrafficRouting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<IstioVirtualService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_rule: Option<IstioDestinationRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_services: Vec<IstioVirtualService>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioVirtualService {
    /// Name, or `namespace/name`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_routes: Vec<IstioTlsRoute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp_routes: Vec<IstioTcpRoute>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioTlsRoute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni_hosts: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioTcpRoute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioDestinationRule {
    pub name: String,
    pub canary_subset_name: String,
    pub stable_subset_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_subset_names: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NginxTrafficRouting {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub annotation_prefix: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable_ingress: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stable_ingresses: Vec<String>,
    /// Added to the canary Ingress, prefixed with the annotation prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_ingress_annotations: BTreeMap<String, String>,
    /// Added to the canary Ingress verbatim; they win on collision.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub canary_ingress_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbTrafficRouting {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ingress: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingresses: Vec<String>,
    #[serde(default)]
    pub service_port: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root_service: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub annotation_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness_config: Option<StickinessConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StickinessConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub duration_seconds: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmiTrafficRouting {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root_service: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub traffic_split_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AmbassadorTrafficRouting {
    #[serde(default)]
    pub mappings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshTrafficRouting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<AppMeshVirtualService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_node_group: Option<AppMeshVirtualNodeGroup>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppMeshVirtualService {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMeshVirtualNodeGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_virtual_node_ref: Option<NameRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_virtual_node_ref: Option<NameRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NameRef {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraefikTrafficRouting {
    pub weighted_traefik_service_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApisixTrafficRouting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<ApisixRoute>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApisixRoute {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

/// Gateway API routes whose stable/canary backendRefs carry the weights. Field names follow
/// the `argoproj-labs/gatewayAPI` plugin's configuration, so the plugin block can be read
/// into this type unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiTrafficRouting {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub http_route: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_routes: Vec<GatewayApiRouteRef>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub grpc_route: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grpc_routes: Vec<GatewayApiRouteRef>,
    /// Namespace of the routes; defaults to the Rollout's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiRouteRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_header_routes: bool,
}

/// The plugin name Argo users configure Gateway API routing under.
pub const GATEWAY_API_PLUGIN: &str = "argoproj-labs/gatewayAPI";

/// One canary step. Exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStep {
    /// Percentage of traffic (or replicas, without traffic routing) for the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    /// Pause for a duration, or until promoted when no duration is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<RolloutPause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<RolloutExperimentStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<RolloutAnalysis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_canary_scale: Option<SetCanaryScale>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<SetHeaderRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_mirror_route: Option<SetMirrorRoute>,
    /// A step plugin (not supported by rollout-runner: lint reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginStep>,
}

impl CanaryStep {
    /// The step's kind as written in YAML, e.g. `setWeight`.
    pub fn kind(&self) -> &'static str {
        if self.set_weight.is_some() {
            "setWeight"
        } else if self.pause.is_some() {
            "pause"
        } else if self.experiment.is_some() {
            "experiment"
        } else if self.analysis.is_some() {
            "analysis"
        } else if self.set_canary_scale.is_some() {
            "setCanaryScale"
        } else if self.set_header_route.is_some() {
            "setHeaderRoute"
        } else if self.set_mirror_route.is_some() {
            "setMirrorRoute"
        } else if self.plugin.is_some() {
            "plugin"
        } else {
            "empty"
        }
    }

    /// How many of setWeight, pause, experiment and analysis are set (Argo allows one at most;
    /// the other kinds may be combined with them).
    pub fn exclusive_kinds_set(&self) -> usize {
        [
            self.set_weight.is_some(),
            self.pause.is_some(),
            self.experiment.is_some(),
            self.analysis.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
    }

    /// How many step kinds are set (a valid step has at least one).
    pub fn kinds_set(&self) -> usize {
        [
            self.set_weight.is_some(),
            self.pause.is_some(),
            self.experiment.is_some(),
            self.analysis.is_some(),
            self.set_canary_scale.is_some(),
            self.set_header_route.is_some(),
            self.set_mirror_route.is_some(),
            self.plugin.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PluginStep {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub config: Option<serde_json::Value>,
}

/// `pause: {}` or `pause: {duration: 30s}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RolloutPause {
    /// Seconds as an integer, or a Go duration string (`"10"`, `"30s"`, `"1h"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<IntOrString>,
}

impl RolloutPause {
    /// Pause length in whole seconds, as Argo's `DurationSeconds`: `None` for an indefinite
    /// pause, `Some(-1)` for a duration string that does not parse.
    pub fn duration_seconds(&self) -> Option<i64> {
        let duration = self.duration.as_ref()?;
        Some(match duration {
            IntOrString::Int(seconds) => i64::from(*seconds),
            IntOrString::String(text) => match text.parse::<i64>() {
                Ok(seconds) => seconds,
                Err(_) => super::duration::parse_go_duration(text)
                    .map(|d| d.as_secs())
                    .unwrap_or(-1),
            },
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_traffic_weight: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SetHeaderRoute {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// No match removes the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Vec<HeaderRoutingMatch>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderRoutingMatch {
    pub header_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value: Option<StringMatch>,
}

/// Exactly one of `exact`, `prefix` or `regex`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exact: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regex: String,
}

impl StringMatch {
    /// How many of exact/prefix/regex are set (valid matches have exactly one).
    pub fn kinds_set(&self) -> usize {
        [&self.exact, &self.prefix, &self.regex]
            .iter()
            .filter(|s| !s.is_empty())
            .count()
    }

    /// The match as a regular expression: exact and prefix values escaped (routers that only
    /// take regexes, such as ingress-nginx's `canary-by-header-pattern`).
    pub fn as_regex(&self) -> String {
        if !self.exact.is_empty() {
            format!("^{}$", regex::escape(&self.exact))
        } else if !self.prefix.is_empty() {
            format!("^{}.*", regex::escape(&self.prefix))
        } else {
            self.regex.clone()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SetMirrorRoute {
    pub name: String,
    /// Blocks are OR-ed; the conditions inside a block are AND-ed. No match removes the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Vec<RouteMatch>>,
    /// Percentage of matching traffic to mirror; defaults to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<StringMatch>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
}

/// An experiment step: run ReplicaSets side by side for a while, with their analyses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStep {
    #[serde(default)]
    pub templates: Vec<RolloutExperimentTemplate>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub duration: DurationString,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analyses: Vec<RolloutExperimentStepAnalysisTemplateRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    #[serde(default, skip_serializing_if = "AnalysisRunMetadata::is_empty")]
    pub analysis_run_metadata: AnalysisRunMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay_seconds: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentStepAnalysisTemplateRef {
    pub name: String,
    pub template_name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster_scope: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisRunArgument>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required_for_completion: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutExperimentTemplate {
    pub name: String,
    /// `canary` or `stable`: which ReplicaSet's pod template to copy.
    pub spec_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "PodTemplateMetadata::is_empty")]
    pub metadata: PodTemplateMetadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Traffic percentage for this template's pods (traffic routing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<TemplateService>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateService {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Background analysis: a RolloutAnalysis that may start at a later step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisBackground {
    #[serde(flatten)]
    pub analysis: RolloutAnalysis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<i32>,
}

/// Which AnalysisTemplates to run and with which arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysis {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<RolloutAnalysisTemplate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisRunArgument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    #[serde(default, skip_serializing_if = "AnalysisRunMetadata::is_empty")]
    pub analysis_run_metadata: AnalysisRunMetadata,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisTemplate {
    #[serde(default)]
    pub template_name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster_scope: bool,
}

/// Why a rollout paused itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PauseReason {
    /// An analysis run ended Inconclusive.
    #[serde(rename = "InconclusiveAnalysisRun")]
    InconclusiveAnalysis,
    #[serde(rename = "InconclusiveExperiment")]
    InconclusiveExperiment,
    /// A canary `pause` step.
    CanaryPauseStep,
    /// Blue-green waiting for promotion.
    BlueGreenPause,
}

impl PauseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InconclusiveAnalysis => "InconclusiveAnalysisRun",
            Self::InconclusiveExperiment => "InconclusiveExperiment",
            Self::CanaryPauseStep => "CanaryPauseStep",
            Self::BlueGreenPause => "BlueGreenPause",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    pub reason: PauseReason,
    pub start_time: Time,
}

/// The rollout's phase, computed as Argo's `CalculateRolloutPhase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RolloutPhase {
    Healthy,
    Degraded,
    Progressing,
    Paused,
}

impl RolloutPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Degraded => "Degraded",
            Self::Progressing => "Progressing",
            Self::Paused => "Paused",
        }
    }
}

impl std::fmt::Display for RolloutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that records a rollout's progress. Any process can resume from it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_conditions: Vec<PauseCondition>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub controller_pause: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<Time>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_pod_hash: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_step_hash: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub updated_replicas: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ready_replicas: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub available_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// `metadata.generation`, as a string (Argo's spelling).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub observed_generation: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RolloutCondition>,
    #[serde(default, skip_serializing_if = "CanaryStatus::is_empty")]
    pub canary: CanaryStatus,
    #[serde(default, skip_serializing_if = "BlueGreenStatus::is_empty")]
    pub blue_green: BlueGreenStatus,
    #[serde(rename = "HPAReplicas", default, skip_serializing_if = "is_zero")]
    pub hpa_replicas: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Pod-template hash of the ReplicaSet that rolled out successfully.
    #[serde(rename = "stableRS", default, skip_serializing_if = "String::is_empty")]
    pub stable_rs: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<Time>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promote_full: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RolloutPhase>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workload_observed_generation: String,
    /// Timing of the current or last update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<RolloutDuration>,
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_background_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_experiment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<TrafficWeights>,
    /// `ping` or `pong`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stable_ping_pong: String,
}

impl CanaryStatus {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preview_selector: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub active_selector: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scale_up_preview_check_point: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis_run_status: Option<RolloutAnalysisRunStatus>,
}

impl BlueGreenStatus {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The traffic split last written to the routers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    pub canary: WeightDestination,
    pub stable: WeightDestination,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional: Vec<WeightDestination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeightDestination {
    pub weight: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_template_hash: String,
}

/// Name, phase and message of an AnalysisRun the rollout is waiting on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAnalysisRunStatus {
    pub name: String,
    pub status: AnalysisPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutCondition {
    /// `Available`, `Progressing`, `Paused`, `Healthy`, `Completed`, `InvalidSpec`,
    /// `ReplicaFailure`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub last_update_time: Time,
    pub last_transition_time: Time,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

/// Timing of an update (Argo 1.10's `status.duration`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutDuration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_pause_started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_manual_pause_duration_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// `Promoted`, `FastPromoted`, `Aborted`, `Superseded`, `RolledBack`, `FastRolledBack`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub completion_status: String,
}

impl RolloutSpec {
    pub fn replicas_or_default(&self) -> i32 {
        self.replicas.unwrap_or(DEFAULT_REPLICAS)
    }

    pub fn revision_history_limit_or_default(&self) -> i32 {
        self.revision_history_limit
            .unwrap_or(DEFAULT_REVISION_HISTORY_LIMIT)
    }

    pub fn progress_deadline_seconds_or_default(&self) -> i32 {
        self.progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
    }

    pub fn min_ready_seconds_or_default(&self) -> i32 {
        self.min_ready_seconds.unwrap_or(0)
    }

    /// The canary strategy, if that is the strategy.
    pub fn canary(&self) -> Option<&CanaryStrategy> {
        self.strategy.canary.as_ref()
    }

    /// The blue-green strategy, if that is the strategy.
    pub fn blue_green(&self) -> Option<&BlueGreenStrategy> {
        self.strategy.blue_green.as_ref()
    }

    /// Canary steps (empty for blue-green or a canary without steps).
    pub fn steps(&self) -> &[CanaryStep] {
        self.canary().map(|c| c.steps.as_slice()).unwrap_or(&[])
    }

    pub fn traffic_routing(&self) -> Option<&RolloutTrafficRouting> {
        self.canary().and_then(|c| c.traffic_routing.as_ref())
    }

    /// `maxTrafficWeight`, defaulting to 100.
    pub fn max_traffic_weight(&self) -> i32 {
        self.traffic_routing()
            .and_then(|t| t.max_traffic_weight)
            .unwrap_or(DEFAULT_MAX_TRAFFIC_WEIGHT)
    }

    pub fn successful_run_history_limit(&self) -> i32 {
        self.analysis
            .as_ref()
            .and_then(|a| a.successful_run_history_limit)
            .unwrap_or(DEFAULT_ANALYSIS_RUN_HISTORY_LIMIT)
    }

    pub fn unsuccessful_run_history_limit(&self) -> i32 {
        self.analysis
            .as_ref()
            .and_then(|a| a.unsuccessful_run_history_limit)
            .unwrap_or(DEFAULT_ANALYSIS_RUN_HISTORY_LIMIT)
    }
}

impl BlueGreenStrategy {
    pub fn auto_promotion_enabled_or_default(&self) -> bool {
        self.auto_promotion_enabled.unwrap_or(true)
    }

    pub fn scale_down_delay_seconds_or_default(&self) -> i32 {
        self.scale_down_delay_seconds
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
    }

    pub fn abort_scale_down_delay_seconds_or_default(&self) -> i32 {
        self.abort_scale_down_delay_seconds
            .unwrap_or(DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS)
    }
}

impl CanaryStrategy {
    /// maxSurge, defaulting to `"25"` (read as a percentage, as Argo's default literal is).
    pub fn max_surge_or_default(&self) -> IntOrString {
        self.max_surge
            .clone()
            .unwrap_or_else(|| IntOrString::String("25".into()))
    }

    /// maxUnavailable, defaulting to `"25"` (a percentage).
    pub fn max_unavailable_or_default(&self) -> IntOrString {
        self.max_unavailable
            .clone()
            .unwrap_or_else(|| IntOrString::String("25".into()))
    }

    /// The scale-down delay after the stable switch: 30 s by default with traffic routing,
    /// 0 for a replica-weighted canary.
    pub fn scale_down_delay_seconds_or_default(&self) -> i32 {
        if self.traffic_routing.is_none() {
            return 0;
        }
        self.scale_down_delay_seconds
            .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS)
    }

    /// The abort scale-down delay: 30 s by default with traffic routing, `None` (scale down
    /// right away, honouring maxSurge/maxUnavailable) for a replica-weighted canary.
    pub fn abort_scale_down_delay_seconds_or_default(&self) -> Option<i32> {
        self.traffic_routing.as_ref()?;
        Some(
            self.abort_scale_down_delay_seconds
                .unwrap_or(DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS),
        )
    }
}

impl NginxTrafficRouting {
    /// `stableIngress` and `stableIngresses`.
    pub fn stable_ingress_names(&self) -> Vec<&str> {
        std::iter::once(self.stable_ingress.as_str())
            .filter(|name| !name.is_empty())
            .chain(self.stable_ingresses.iter().map(String::as_str))
            .collect()
    }

    /// `annotationPrefix`, defaulted.
    pub fn annotation_prefix_or_default(&self) -> &str {
        if self.annotation_prefix.is_empty() {
            DEFAULT_NGINX_ANNOTATION_PREFIX
        } else {
            &self.annotation_prefix
        }
    }

    /// Argo's `GetCanaryIngressName`: `<rollout>-<stable ingress>-canary`, the prefix cut so
    /// the whole fits in a Kubernetes name (253 characters).
    pub fn canary_ingress_name(rollout: &str, stable_ingress: &str) -> String {
        const MAX_NAME: usize = 253;
        let suffix = "-canary";
        let mut prefix = format!("{rollout}-{stable_ingress}");
        let mut cut = MAX_NAME - suffix.len();
        if prefix.len() > cut {
            while !prefix.is_char_boundary(cut) {
                cut -= 1;
            }
            prefix.truncate(cut);
        }
        format!("{prefix}{suffix}")
    }
}

impl AlbTrafficRouting {
    /// `ingress` and `ingresses`.
    pub fn ingress_names(&self) -> Vec<&str> {
        std::iter::once(self.ingress.as_str())
            .filter(|name| !name.is_empty())
            .chain(self.ingresses.iter().map(String::as_str))
            .collect()
    }

    /// `annotationPrefix`, defaulted.
    pub fn annotation_prefix_or_default(&self) -> &str {
        if self.annotation_prefix.is_empty() {
            DEFAULT_ALB_ANNOTATION_PREFIX
        } else {
            &self.annotation_prefix
        }
    }
}

impl IstioTrafficRouting {
    /// `virtualService` and `virtualServices`.
    pub fn all_virtual_services(&self) -> impl Iterator<Item = &IstioVirtualService> {
        self.virtual_service.iter().chain(&self.virtual_services)
    }
}

/// A Gateway API route a configuration names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayApiRoute {
    /// `HTTPRoute` or `GRPCRoute`.
    pub kind: &'static str,
    pub name: String,
    /// Whether header and mirror routes go there (the single `httpRoute`/`grpcRoute` form, or
    /// `useHeaderRoutes: true` in the lists, as with Argo's plugin).
    pub header_routes: bool,
}

impl GatewayApiTrafficRouting {
    /// The routes, HTTPRoutes first.
    pub fn routes(&self) -> Vec<GatewayApiRoute> {
        let single = |kind, name: &String| {
            (!name.is_empty()).then(|| GatewayApiRoute {
                kind,
                name: name.clone(),
                header_routes: true,
            })
        };
        let listed = |kind, refs: &[GatewayApiRouteRef]| -> Vec<GatewayApiRoute> {
            refs.iter()
                .map(|r| GatewayApiRoute {
                    kind,
                    name: r.name.clone(),
                    header_routes: r.use_header_routes,
                })
                .collect()
        };
        single("HTTPRoute", &self.http_route)
            .into_iter()
            .chain(listed("HTTPRoute", &self.http_routes))
            .chain(single("GRPCRoute", &self.grpc_route))
            .chain(listed("GRPCRoute", &self.grpc_routes))
            .collect()
    }
}

impl RolloutTrafficRouting {
    /// The Gateway API configuration, native or in Argo's plugin form.
    pub fn gateway_api_config(&self) -> Option<Result<GatewayApiTrafficRouting, String>> {
        if let Some(native) = &self.gateway_api {
            return Some(Ok(native.clone()));
        }
        let raw = self.plugins.get(GATEWAY_API_PLUGIN)?;
        Some(serde_json::from_value(raw.clone()).map_err(|e| e.to_string()))
    }

    /// Names of the configured routers, in Argo's reconcile order.
    pub fn router_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.istio.is_some() {
            names.push("istio");
        }
        if self.nginx.is_some() {
            names.push("nginx");
        }
        if self.alb.is_some() {
            names.push("alb");
        }
        if self.smi.is_some() {
            names.push("smi");
        }
        if self.ambassador.is_some() {
            names.push("ambassador");
        }
        if self.app_mesh.is_some() {
            names.push("appMesh");
        }
        if self.traefik.is_some() {
            names.push("traefik");
        }
        if self.apisix.is_some() {
            names.push("apisix");
        }
        if self.gateway_api_config().is_some() {
            names.push("gatewayAPI");
        }
        names
    }
}

impl RolloutStatus {
    /// A condition by type.
    pub fn condition(&self, type_: &str) -> Option<&RolloutCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

impl Rollout {
    /// The rollout's namespace, or `default`.
    pub fn namespace_or_default(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// The rollout's name ("" if unnamed, which validation reports).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    pub fn status_or_default(&self) -> RolloutStatus {
        self.status.clone().unwrap_or_default()
    }

    /// The names of the Services the strategy references (stable, canary, ping, pong, active,
    /// preview), without duplicates.
    pub fn service_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        if let Some(canary) = &self.spec.strategy.canary {
            names.extend([
                canary.stable_service.as_str(),
                canary.canary_service.as_str(),
            ]);
            if let Some(ping_pong) = &canary.ping_pong {
                names.extend([
                    ping_pong.ping_service.as_str(),
                    ping_pong.pong_service.as_str(),
                ]);
            }
        }
        if let Some(blue_green) = &self.spec.strategy.blue_green {
            names.push(blue_green.active_service.as_str());
            names.push(blue_green.preview_service.as_str());
        }
        names.retain(|name| !name.is_empty());
        names.sort_unstable();
        names.dedup();
        names
    }
}
