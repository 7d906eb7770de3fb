//! Release plans: what a release of a Rollout will do, worked out before it starts.
//!
//! A [`ReleasePlan`] starts from a fully available stable version and follows the new version
//! through every canary step (or blue-green phase) to promotion: the canary and stable replica
//! counts each step settles at, the traffic weight, pauses, analysis runs with their queries
//! rendered, experiments, header and mirror routes, the traffic objects each router will write,
//! and how long it all takes at the least and at the most.
//!
//! The numbers come from the engine's own arithmetic ([`crate::engine::replicas`]) fed with the
//! status the rollout would have at each step, so the plan and a real release cannot drift
//! apart; a driver test checks them against the in-memory cluster step by step.
//!
//! Assumptions, all of them stated in the output: pods start the moment they are created
//! (plus `minReadySeconds` before they count as available), every analysis passes, nobody
//! intervenes. Minimum durations count no time for people: a step that waits for `promote`
//! adds nothing to the minimum and makes the maximum unbounded.
//!
//! This module refuses to touch a cluster or a clock; it reads a Rollout and its templates.

mod analysis;
mod bluegreen;
mod canary;
mod render;
#[cfg(test)]
mod tests;
mod traffic;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::analysis::build::TemplateSource;
use crate::manifest::{ManifestSet, namespaces_match};
use rollout_runner_api::crd::{
    AnalysisTemplate, ClusterAnalysisTemplate, Rollout, SetHeaderRoute, SetMirrorRoute,
};

pub use render::{format_seconds, format_span, markdown, table};

/// Version of the plan's JSON shape; part of the hash, so a new shape never matches an old hash.
pub const FORMAT_VERSION: u32 = 1;

/// What an analysis argument shows when its value is the new ReplicaSet's pod-template hash.
pub const NEW_POD_HASH_PLACEHOLDER: &str = "<new pod-template-hash>";
/// What an analysis argument shows when its value is the stable ReplicaSet's pod-template hash.
pub const STABLE_POD_HASH_PLACEHOLDER: &str = "<stable pod-template-hash>";

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no Rollout among the inputs")]
    NoRollout,
    #[error("no Rollout named `{0}` among the inputs")]
    RolloutNotFound(String),
    #[error(
        "rollout `{0}` has neither a canary nor a blue-green strategy\n\nhint: set `spec.strategy.canary` or `spec.strategy.blueGreen`"
    )]
    NoStrategy(String),
    #[error(
        "rollout `{rollout}` takes its pod template from {kind} `{name}` (`spec.workloadRef`), which is not among the inputs\n\nhint: pass the {kind}'s manifest along with the Rollout"
    )]
    WorkloadNotFound {
        rollout: String,
        kind: String,
        name: String,
    },
}

/// A span of time: at least `min_seconds`, at most `max_seconds` (`None`: no upper bound, the
/// release waits for a person or an analysis that never ends on its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub min_seconds: i64,
    pub max_seconds: Option<i64>,
}

impl Span {
    pub const ZERO: Span = Span {
        min_seconds: 0,
        max_seconds: Some(0),
    };

    /// Exactly this long.
    pub fn exact(seconds: i64) -> Self {
        Self {
            min_seconds: seconds,
            max_seconds: Some(seconds),
        }
    }

    /// At least `min_seconds`, with no upper bound.
    pub fn unbounded(min_seconds: i64) -> Self {
        Self {
            min_seconds,
            max_seconds: None,
        }
    }

    /// One after the other.
    pub fn then(self, other: Span) -> Self {
        Self {
            min_seconds: self.min_seconds.saturating_add(other.min_seconds),
            max_seconds: self
                .max_seconds
                .zip(other.max_seconds)
                .map(|(a, b)| a.saturating_add(b)),
        }
    }

    /// Side by side, done when both are.
    pub fn alongside(self, other: Span) -> Self {
        Self {
            min_seconds: self.min_seconds.max(other.min_seconds),
            max_seconds: self
                .max_seconds
                .zip(other.max_seconds)
                .map(|(a, b)| a.max(b)),
        }
    }

    pub fn is_bounded(&self) -> bool {
        self.max_seconds.is_some()
    }
}

/// The release strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    Canary,
    BlueGreen,
}

/// A whole release, from the first step to the old version scaled down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleasePlan {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    pub namespace: String,
    pub name: String,
    pub strategy: Strategy,
    /// `spec.replicas` (default 1).
    pub replicas: i32,
    /// Images of the new pod template. Not part of the hash: a plan reviewed on a pull request
    /// still matches after the merge rebuilt the image under another tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    pub min_ready_seconds: i32,
    /// Basic canary: maxSurge and maxUnavailable in pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<i32>,
    /// Canary with traffic routing: the routers and services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRoutingPlan>,
    /// Canary: one entry per `spec.strategy.canary.steps` entry, same index. Blue-green: the
    /// phases before promotion, in order.
    pub steps: Vec<PlanStep>,
    /// The end: the new version takes everything and becomes stable, the old one is scaled
    /// down (after `scaleDownDelaySeconds` where that applies).
    pub promotion: PlanStep,
    /// Canary background analysis (`spec.strategy.canary.analysis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_analysis: Option<AnalysisPlan>,
    /// From the release to the old version scaled down.
    pub duration: Span,
    /// Where the pod template comes from when the Rollout has a `workloadRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadPlan>,
    /// What the plan could not work out (a template that is not among the inputs, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// `sha256:` and the hex digest of the canonical JSON of this plan without `hash` and
    /// `images` (see [`ReleasePlan::compute_hash`]).
    pub hash: String,
}

/// The workload a Rollout takes its pod template from, and what happens to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadPlan {
    pub kind: String,
    pub name: String,
    /// `never`, `onsuccess` or `progressively` (`never` when not set).
    pub scale_down: String,
}

/// One canary step, blue-green phase, or the promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    /// Canary: the step's index in `steps` (Argo's `currentStepIndex`); the promotion is
    /// `steps.len()`. Blue-green: the phase's position.
    pub index: usize,
    /// Canary: the step type as written (`setWeight`, `pause`, `analysis`, `experiment`,
    /// `setCanaryScale`, `setHeaderRoute`, `setMirrorRoute`, `plugin`). Blue-green: `preview`,
    /// `prePromotionAnalysis`, `pause`, `scaleUpPreview`, `switch`, `postPromotionAnalysis`.
    /// The promotion: `promote`.
    pub kind: String,
    /// Argo's description of the step (`setWeight: 20`, `pause: 1m`, ...).
    pub description: String,
    /// Pods of the new version once the step has settled (blue-green: the preview).
    pub canary_replicas: i32,
    /// Pods of the old version once the step has settled (blue-green: the active one).
    pub stable_replicas: i32,
    /// Canary with traffic routing: the weight the routers give the canary (out of
    /// `maxTrafficWeight`). Without routing: the share of pods that are canary, as Argo's
    /// `ActualWeight` (`canary * 100 / (canary + stable)`). Blue-green: 0 before the switch,
    /// 100 after.
    pub traffic_weight: i32,
    /// When the step starts, counted from the release.
    pub start: Span,
    /// How long the step takes.
    pub duration: Span,
    /// The step only ends when a person promotes the rollout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waits_for_promotion: bool,
    /// Pause steps: how long (`None`: until promoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PausePlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<ExperimentPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_route: Option<SetHeaderRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_route: Option<SetMirrorRoute>,
    /// The background analysis runs during this step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background_analysis: bool,
    /// The objects this step writes, with the values they will hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficObject>,
    /// Anything worth knowing about the step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PausePlan {
    /// `None`: until promoted.
    pub duration_seconds: Option<i64>,
}

/// The routers of a canary with traffic routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRoutingPlan {
    /// In Argo's reconcile order (`istio`, `nginx`, `alb`, `smi`, ..., `gatewayAPI`).
    pub routers: Vec<String>,
    pub max_traffic_weight: i32,
    pub canary_service: String,
    pub stable_service: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_routes: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic_stable_scale: bool,
}

/// An object a step writes: which router, which object, and the values it will hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficObject {
    /// `nginx`, `istio`, `smi`, `alb`, `gatewayAPI`, `traefik`, `ambassador`, `appMesh`,
    /// `apisix`, a plugin's name, or `service` for a Service selector.
    pub router: String,
    pub kind: String,
    pub name: String,
    /// When in the step the write happens, if not at its start (`promoted`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub when: String,
    pub fields: Vec<TrafficField>,
}

/// A field of a traffic object and its value after the write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficField {
    /// Where in the object, e.g. `spec.http[name=primary].route[host=web-canary].weight`.
    pub path: String,
    pub value: String,
}

/// An AnalysisRun the release creates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisPlan {
    /// Template names; `cluster:NAME` for a ClusterAnalysisTemplate.
    pub templates: Vec<String>,
    /// The arguments after merging the templates' defaults with the Rollout's values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<PlanArgument>,
    /// Background analysis: the first step it runs at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<usize>,
    pub metrics: Vec<MetricPlan>,
    /// From the run's start until it is Successful.
    pub duration: Span,
    /// Some metric measures until the run is stopped: the run never succeeds on its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub runs_until_stopped: bool,
    /// Why the run could not be worked out (its metrics are then unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanArgument {
    pub name: String,
    pub value: String,
}

/// One metric of a run, with its arguments substituted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricPlan {
    pub name: String,
    /// `prometheus`, `web`, `datadog`, `job`, ...
    pub provider: String,
    /// The provider's address or URL, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// What is asked of the provider: the query, the request, the job's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// Measurements to take (`None`: until the run is stopped).
    pub count: Option<i32>,
    pub failure_limit: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_success_limit: Option<i32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Until the metric is Successful: `initialDelay + (needed - 1) * interval`, where the
    /// minimum needs `consecutiveSuccessLimit` measurements and the maximum `count`.
    pub duration: Span,
}

/// An experiment step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentPlan {
    /// As written (`None`: until its analyses end or it is stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    pub templates: Vec<ExperimentTemplatePlan>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analyses: Vec<ExperimentAnalysisPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentTemplatePlan {
    pub name: String,
    /// `canary` or `stable`: whose pod template it runs.
    pub spec_ref: String,
    pub replicas: i32,
    /// Traffic weight for its pods (traffic routing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentAnalysisPlan {
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required_for_completion: bool,
    pub analysis: AnalysisPlan,
}

/// The templates a rollout's analyses may use, by name.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub templates: BTreeMap<String, AnalysisTemplate>,
    pub cluster_templates: BTreeMap<String, ClusterAnalysisTemplate>,
}

impl Templates {
    /// The templates among `set` that a rollout in `namespace` can use (the first of each name).
    pub fn from_set(set: &ManifestSet, namespace: Option<&str>) -> Self {
        let mut templates = BTreeMap::new();
        for (document, template) in set.analysis_templates() {
            if namespaces_match(document.namespace.as_deref(), namespace) {
                templates
                    .entry(document.name.clone())
                    .or_insert_with(|| template.clone());
            }
        }
        let mut cluster_templates = BTreeMap::new();
        for (document, template) in set.cluster_analysis_templates() {
            cluster_templates
                .entry(document.name.clone())
                .or_insert_with(|| template.clone());
        }
        Self {
            templates,
            cluster_templates,
        }
    }

    fn source(&self) -> TemplateSource<'_> {
        TemplateSource {
            templates: Some(&self.templates),
            cluster_templates: Some(&self.cluster_templates),
        }
    }
}

/// Plan the release of one Rollout.
pub fn plan_rollout(rollout: &Rollout, templates: &Templates) -> Result<ReleasePlan, PlanError> {
    let spec = &rollout.spec;
    let mut plan = ReleasePlan {
        format_version: FORMAT_VERSION,
        namespace: rollout.namespace_or_default().to_string(),
        name: rollout.name().to_string(),
        strategy: Strategy::Canary,
        replicas: spec.replicas_or_default(),
        images: images(rollout),
        min_ready_seconds: spec.min_ready_seconds_or_default(),
        max_surge: None,
        max_unavailable: None,
        traffic_routing: None,
        steps: Vec::new(),
        promotion: canary::empty_step(0, "promote"),
        background_analysis: None,
        duration: Span::ZERO,
        workload: None,
        warnings: Vec::new(),
        hash: String::new(),
    };
    let context = analysis::Context::new(rollout, templates);
    if let Some(canary) = spec.canary() {
        canary::plan(rollout, canary, &context, &mut plan);
    } else if let Some(bg) = spec.blue_green() {
        plan.strategy = Strategy::BlueGreen;
        bluegreen::plan(rollout, bg, &context, &mut plan);
    } else {
        return Err(PlanError::NoStrategy(rollout.name().to_string()));
    }
    plan.warnings.extend(context.into_warnings());
    plan.warnings.dedup();
    plan.hash = plan.compute_hash();
    Ok(plan)
}

/// Plan every Rollout among `set`, or only the one named.
pub fn plan_set(set: &ManifestSet, rollout: Option<&str>) -> Result<Vec<ReleasePlan>, PlanError> {
    let rollouts: Vec<(&crate::manifest::Document, &Rollout)> = set
        .rollouts()
        .filter(|(_, r)| rollout.is_none_or(|name| r.name() == name))
        .collect();
    if rollouts.is_empty() {
        return Err(match rollout {
            Some(name) => PlanError::RolloutNotFound(name.to_string()),
            None => PlanError::NoRollout,
        });
    }
    rollouts
        .into_iter()
        .map(|(document, r)| {
            let namespace = document
                .namespace
                .as_deref()
                .or(r.metadata.namespace.as_deref());
            let templates = Templates::from_set(set, namespace);
            let Some(reference) = &r.spec.workload_ref else {
                return plan_rollout(r, &templates);
            };
            let Some(workload) = set.workload(document, r) else {
                return Err(PlanError::WorkloadNotFound {
                    rollout: r.name().to_string(),
                    kind: reference.kind.clone(),
                    name: reference.name.clone(),
                });
            };
            let mut plan =
                plan_rollout(&crate::engine::workload::resolve(r, &workload), &templates)?;
            plan.workload = Some(WorkloadPlan {
                kind: reference.kind.clone(),
                name: reference.name.clone(),
                scale_down: if reference.scale_down.is_empty() {
                    crate::engine::workload::SCALE_DOWN_NEVER.to_string()
                } else {
                    reference.scale_down.clone()
                },
            });
            plan.hash = plan.compute_hash();
            Ok(plan)
        })
        .collect()
}

impl ReleasePlan {
    /// `sha256:` and the hex SHA-256 of the plan's canonical JSON (compact, fields in
    /// declaration order) without `hash` and `images`. Stable across runs and machines; it
    /// changes when anything the release will do changes.
    pub fn compute_hash(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.remove("hash");
            object.remove("images");
        }
        let canonical = serde_json::to_vec(&value).unwrap_or_default();
        format!("sha256:{}", hex(&Sha256::digest(&canonical)))
    }

    /// `namespace/name`.
    pub fn rollout(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Every analysis of the release: background, per step and per experiment.
    pub fn analyses(&self) -> Vec<(String, &AnalysisPlan)> {
        let mut out: Vec<(String, &AnalysisPlan)> = Vec::new();
        if let Some(background) = &self.background_analysis {
            out.push(("background".to_string(), background));
        }
        for step in self.steps.iter().chain([&self.promotion]) {
            let label = step_label(self, step);
            if let Some(analysis) = &step.analysis {
                out.push((label.clone(), analysis));
            }
            if let Some(experiment) = &step.experiment {
                for run in &experiment.analyses {
                    out.push((format!("{label}, experiment `{}`", run.name), &run.analysis));
                }
            }
        }
        out
    }
}

/// How people refer to a step: `step 3` (1-based, as `simulate` prints it) or the phase.
pub(crate) fn step_label(plan: &ReleasePlan, step: &PlanStep) -> String {
    if step.kind == "promote" {
        return "promotion".to_string();
    }
    match plan.strategy {
        Strategy::Canary => format!("step {}", step.index + 1),
        Strategy::BlueGreen => step.description.clone(),
    }
}

/// One hash for several plans: the plan's own hash for one, else the SHA-256 of the sorted
/// `namespace/name hash` lines.
pub fn combined_hash(plans: &[ReleasePlan]) -> String {
    if let [one] = plans {
        return one.hash.clone();
    }
    let mut lines: Vec<String> = plans
        .iter()
        .map(|p| format!("{} {}\n", p.rollout(), p.hash))
        .collect();
    lines.sort();
    format!("sha256:{}", hex(&Sha256::digest(lines.concat().as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

fn images(rollout: &Rollout) -> Vec<String> {
    rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .map(|pod| {
            pod.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}
