//! What `get` and `list` show about Rollouts, as `kubectl argo rollouts get rollout` and `list
//! rollouts` show it: the phase with its icon, step and weights, images, replica counts, and the
//! tree of revisions, ReplicaSets, pods, AnalysisRuns and Experiments.
//!
//! Pure: [`RolloutInfo`] is built from objects already read (a
//! [`RolloutView`](rollout_runner_core::operate::RolloutView)) and rendered for a given `now`. It
//! reads nothing and prints nothing. The JSON form carries timestamps, not ages, so two
//! renderings of an unchanged rollout are equal.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use serde::Serialize;

use rollout_runner_api::crd::{
    AnalysisPhase, AnalysisRun, EXPERIMENT_TEMPLATE_NAME_ANNOTATION, Experiment,
    POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, Rollout, RolloutPhase,
    SCALE_DOWN_DEADLINE_ANNOTATION,
};
use rollout_runner_core::engine::phase::observed_phase;
use rollout_runner_core::engine::replicas::{current_set_weight, current_step};
use rollout_runner_core::operate::RolloutView;

/// Argo's icons (`pkg/kubectl-argo-rollouts/info`, `cmd/get`).
pub mod icons {
    pub const WAITING: &str = "◷";
    pub const PROGRESSING: &str = "◌";
    pub const WARNING: &str = "⚠";
    pub const UNKNOWN: &str = "?";
    pub const OK: &str = "✔";
    pub const BAD: &str = "✖";
    pub const PAUSED: &str = "॥";
    pub const NEUTRAL: &str = "•";
    pub const ROLLOUT: &str = "⟳";
    pub const REVISION: &str = "#";
    pub const REPLICA_SET: &str = "⧉";
    pub const POD: &str = "□";
    pub const EXPERIMENT: &str = "Σ";
    pub const ANALYSIS_RUN: &str = "α";
    pub const JOB: &str = "⊞";
}

/// Measurement metadata key naming the Job a job metric ran (Argo's `job.JobNameKey`).
const JOB_NAME_KEY: &str = "job-name";

/// A Rollout as `get` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutInfo {
    pub name: String,
    pub namespace: String,
    pub created_at: Option<Timestamp>,
    /// The phase as Argo's clients compute it (`GetRolloutPhase`).
    pub status: String,
    pub message: String,
    /// `Canary`, `BlueGreen`, or `unknown`.
    pub strategy: String,
    /// Canary only: `index/steps`, when the rollout has steps and a current index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Canary only: the weight the current step asks for (`GetCurrentSetWeight`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_weight: Option<i32>,
    /// Canary only: the weight the canary actually gets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_weight: Option<i32>,
    pub desired: i32,
    pub current: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub images: Vec<ImageInfo>,
    /// Newest first.
    pub revisions: Vec<RevisionInfo>,
}

/// An image that runs, with the roles of the ReplicaSets that run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub image: String,
    /// `canary`, `stable`, `active`, `preview`, `ping`, `pong`, or `Σ:<template>` for an
    /// experiment's; sorted.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionInfo {
    pub revision: i64,
    pub replica_sets: Vec<ReplicaSetInfo>,
    pub experiments: Vec<ExperimentInfo>,
    pub analysis_runs: Vec<AnalysisRunInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSetInfo {
    pub name: String,
    pub created_at: Option<Timestamp>,
    /// `Healthy`, `Progressing`, `ScaledDown` or `ReplicaFailure`.
    pub status: String,
    pub revision: i64,
    /// `stable`, `canary`, `active`, `preview`, `ping`, `pong`.
    pub tags: Vec<String>,
    /// The `scale-down-deadline` annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down_deadline: Option<String>,
    /// `status.replicas`.
    pub replicas: i32,
    pub available: i32,
    pub images: Vec<String>,
    /// The experiment template it runs, for an experiment's ReplicaSet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    pub pods: Vec<PodInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodInfo {
    pub name: String,
    pub created_at: Option<Timestamp>,
    /// As `kubectl get pods` shows it: `Running`, `Pending`, `ContainerCreating`,
    /// `CrashLoopBackOff`, `Terminating`, ...
    pub status: String,
    /// `ready/total` containers.
    pub ready: String,
    pub restarts: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunInfo {
    pub name: String,
    pub created_at: Option<Timestamp>,
    pub status: AnalysisPhase,
    pub revision: i64,
    pub successful: i32,
    pub failed: i32,
    pub inconclusive: i32,
    pub error: i32,
    pub jobs: Vec<JobInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    pub name: String,
    pub status: AnalysisPhase,
    pub started_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentInfo {
    pub name: String,
    pub created_at: Option<Timestamp>,
    /// `None` before the experiment is first reconciled.
    pub status: Option<AnalysisPhase>,
    pub message: String,
    pub revision: i64,
    pub replica_sets: Vec<ReplicaSetInfo>,
    pub analysis_runs: Vec<AnalysisRunInfo>,
}

fn created(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.creation_timestamp.as_ref().map(|t| t.0)
}

/// The revision annotation of an object, 0 when missing or not a number (as Argo's
/// `parseRevision`).
fn revision_of(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn owned_by(meta: &ObjectMeta, owner: &ObjectMeta) -> bool {
    owner.uid.as_ref().is_some_and(|uid| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|reference| &reference.uid == uid)
    })
}

fn strategy_name(rollout: &Rollout) -> &'static str {
    if rollout.spec.canary().is_some() {
        "Canary"
    } else if rollout.spec.blue_green().is_some() {
        "BlueGreen"
    } else {
        "unknown"
    }
}

impl RolloutInfo {
    pub fn new(view: &RolloutView) -> Self {
        let rollout = &view.rollout;
        let spec = &rollout.spec;
        let status = rollout.status_or_default();
        let replica_sets = replica_set_infos(&rollout.metadata, Some(rollout), view);
        let experiments = experiment_infos(view);
        let analysis_runs = analysis_run_infos(&rollout.metadata, &view.analysis_runs);
        let (phase, message) = observed_phase(rollout.metadata.generation, spec, &status);
        let mut info = Self {
            name: rollout.name().to_string(),
            namespace: rollout.namespace_or_default().to_string(),
            created_at: created(&rollout.metadata),
            status: phase.to_string(),
            message,
            strategy: strategy_name(rollout).to_string(),
            step: None,
            set_weight: None,
            actual_weight: None,
            desired: spec.replicas_or_default(),
            current: status.replicas,
            updated: status.updated_replicas,
            ready: status.ready_replicas,
            available: status.available_replicas,
            images: images(&replica_sets, &experiments),
            revisions: Vec::new(),
        };
        if let Some(canary) = spec.canary() {
            let steps = spec.steps().len();
            if let Some(index) = status.current_step_index.filter(|_| steps > 0) {
                info.step = Some(format!("{index}/{steps}"));
            }
            let set_weight = current_set_weight(spec, &status);
            let actual = if current_step(spec, &status).0.is_none() {
                spec.max_traffic_weight()
            } else if status.available_replicas <= 0 {
                0
            } else if canary.traffic_routing.is_none() {
                replica_sets
                    .iter()
                    .filter(|rs| rs.tags.iter().any(|t| t == "canary"))
                    .map(|rs| rs.available * 100 / status.available_replicas)
                    .next_back()
                    .unwrap_or(0)
            } else {
                status
                    .canary
                    .weights
                    .as_ref()
                    .map_or(set_weight, |w| w.canary.weight)
            };
            info.set_weight = Some(set_weight);
            info.actual_weight = Some(actual);
        }
        info.revisions = revisions(replica_sets, experiments, analysis_runs);
        info
    }

    /// The rollout's phase, parsed back.
    pub fn phase(&self) -> Option<RolloutPhase> {
        [
            RolloutPhase::Healthy,
            RolloutPhase::Degraded,
            RolloutPhase::Progressing,
            RolloutPhase::Paused,
        ]
        .into_iter()
        .find(|p| p.as_str() == self.status)
    }
}

/// Group everything by revision, newest first.
fn revisions(
    replica_sets: Vec<ReplicaSetInfo>,
    experiments: Vec<ExperimentInfo>,
    analysis_runs: Vec<AnalysisRunInfo>,
) -> Vec<RevisionInfo> {
    let numbers: BTreeSet<i64> = replica_sets
        .iter()
        .map(|rs| rs.revision)
        .chain(experiments.iter().map(|ex| ex.revision))
        .chain(analysis_runs.iter().map(|run| run.revision))
        .collect();
    numbers
        .into_iter()
        .rev()
        .map(|revision| RevisionInfo {
            revision,
            replica_sets: replica_sets
                .iter()
                .filter(|rs| rs.revision == revision)
                .cloned()
                .collect(),
            experiments: experiments
                .iter()
                .filter(|ex| ex.revision == revision)
                .cloned()
                .collect(),
            analysis_runs: analysis_runs
                .iter()
                .filter(|run| run.revision == revision)
                .cloned()
                .collect(),
        })
        .collect()
}

/// Argo's `getReplicaSetHealth`.
fn replica_set_health(rs: &ReplicaSet) -> &'static str {
    let spec_replicas = rs.spec.as_ref().and_then(|s| s.replicas);
    let status = rs.status.clone().unwrap_or_default();
    let observed = rs.metadata.generation.unwrap_or(0) <= status.observed_generation.unwrap_or(0);
    if !observed {
        return "Progressing";
    }
    let failure = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "ReplicaFailure" && c.status == "True");
    if failure {
        return "ReplicaFailure";
    }
    if spec_replicas.is_some_and(|r| status.available_replicas.unwrap_or(0) < r) {
        return "Progressing";
    }
    if spec_replicas == Some(0) {
        return "ScaledDown";
    }
    "Healthy"
}

/// The ReplicaSets `owner` owns, newest revision first, with their pods; `rollout` tags them
/// with their roles (none for an experiment's).
fn replica_set_infos(
    owner: &ObjectMeta,
    rollout: Option<&Rollout>,
    view: &RolloutView,
) -> Vec<ReplicaSetInfo> {
    let mut infos: Vec<(ReplicaSetInfo, &ReplicaSet)> = view
        .replica_sets
        .iter()
        .filter(|rs| owned_by(&rs.metadata, owner))
        .map(|rs| {
            let annotations = rs.annotations();
            let hash = rs.labels().get(POD_TEMPLATE_HASH_LABEL);
            let template = rs.spec.as_ref().and_then(|s| s.template.as_ref());
            let images = template
                .and_then(|t| t.spec.as_ref())
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.clone())
                        .collect()
                })
                .unwrap_or_default();
            let status = rs.status.clone().unwrap_or_default();
            let info = ReplicaSetInfo {
                name: rs.metadata.name.clone().unwrap_or_default(),
                created_at: created(&rs.metadata),
                status: replica_set_health(rs).to_string(),
                revision: revision_of(&rs.metadata),
                tags: rollout
                    .zip(hash)
                    .map(|(r, hash)| roles(r, hash))
                    .unwrap_or_default(),
                scale_down_deadline: annotations
                    .get(SCALE_DOWN_DEADLINE_ANNOTATION)
                    .filter(|d| !d.is_empty())
                    .cloned(),
                replicas: status.replicas,
                available: status.available_replicas.unwrap_or(0),
                images,
                template: annotations
                    .get(EXPERIMENT_TEMPLATE_NAME_ANNOTATION)
                    .filter(|t| !t.is_empty())
                    .cloned(),
                pods: Vec::new(),
            };
            (info, rs)
        })
        .collect();
    infos.sort_by(|(a, _), (b, _)| b.revision.cmp(&a.revision).then(a.name.cmp(&b.name)));
    infos
        .into_iter()
        .map(|(mut info, rs)| {
            let mut pods: Vec<&Pod> = view
                .pods
                .iter()
                .filter(|pod| owned_by(&pod.metadata, &rs.metadata))
                .collect();
            pods.sort_by(|a, b| {
                (created(&a.metadata), &a.metadata.name)
                    .cmp(&(created(&b.metadata), &b.metadata.name))
            });
            info.pods = pods.into_iter().map(pod_info).collect();
            info
        })
        .collect()
}

/// The roles of the ReplicaSet with pod-template hash `hash` (Argo's `GetReplicaSetInfo`).
fn roles(rollout: &Rollout, hash: &str) -> Vec<String> {
    let status = rollout.status_or_default();
    let mut tags = Vec::new();
    if let Some(canary) = rollout.spec.canary() {
        let stable_is_ping = status.canary.stable_ping_pong != "pong";
        let ping_pong = canary.ping_pong.is_some();
        if status.stable_rs == hash {
            tags.push("stable");
            if ping_pong {
                tags.push(if stable_is_ping { "ping" } else { "pong" });
            }
        } else if status.current_pod_hash == hash {
            tags.push("canary");
            if ping_pong {
                tags.push(if stable_is_ping { "pong" } else { "ping" });
            }
        }
    }
    if rollout.spec.blue_green().is_some() {
        if status.stable_rs == hash {
            tags.push("stable");
        }
        if status.blue_green.active_selector == hash {
            tags.push("active");
        } else if status.blue_green.preview_selector == hash {
            tags.push("preview");
        }
    }
    tags.into_iter().map(String::from).collect()
}

/// Argo's `newPodInfo`, which follows `kubectl get pods`' STATUS column.
fn pod_info(pod: &Pod) -> PodInfo {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let mut reason = status
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .or(status.phase.clone())
        .unwrap_or_default();
    let mut restarts = 0;
    let mut ready = 0;
    let sidecars: BTreeMap<&str, bool> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            (
                c.name.as_str(),
                c.restart_policy.as_deref() == Some("Always"),
            )
        })
        .collect();
    let init_count = spec.init_containers.as_ref().map_or(0, Vec::len);
    let mut initializing = false;
    for (i, container) in status.init_container_statuses.iter().flatten().enumerate() {
        restarts += container.restart_count;
        let state = container.state.clone().unwrap_or_default();
        if let Some(terminated) = &state.terminated {
            if terminated.exit_code == 0 {
                continue;
            }
            reason = match terminated.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => match terminated.signal.filter(|s| *s != 0) {
                    Some(signal) => format!("Init:Signal:{signal}"),
                    None => format!("Init:ExitCode:{}", terminated.exit_code),
                },
            };
        } else if sidecars.get(container.name.as_str()) == Some(&true)
            && container.started == Some(true)
        {
            if container.ready {
                continue;
            }
        } else if let Some(waiting) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{waiting}");
        } else {
            reason = format!("Init:{i}/{init_count}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        restarts = 0;
        let mut running = false;
        for container in status.container_statuses.iter().flatten().rev() {
            restarts += container.restart_count;
            let state = container.state.clone().unwrap_or_default();
            let waiting = state.waiting.as_ref().and_then(|w| w.reason.clone());
            let terminated = state.terminated.as_ref();
            if let Some(waiting) = waiting.filter(|r| !r.is_empty()) {
                reason = waiting;
            } else if let Some(terminated) = terminated {
                reason = match terminated.reason.clone().filter(|r| !r.is_empty()) {
                    Some(r) => r,
                    None => match terminated.signal.filter(|s| *s != 0) {
                        Some(signal) => format!("Signal:{signal}"),
                        None => format!("ExitCode:{}", terminated.exit_code),
                    },
                };
            } else if container.ready && state.running.is_some() {
                running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && running {
            reason = "Running".into();
        }
    }
    if pod.metadata.deletion_timestamp.is_some() {
        reason = if status.reason.as_deref() == Some("NodeLost") {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    PodInfo {
        name: pod.metadata.name.clone().unwrap_or_default(),
        created_at: created(&pod.metadata),
        status: reason,
        ready: format!("{ready}/{}", spec.containers.len()),
        restarts,
    }
}

fn analysis_run_infos(owner: &ObjectMeta, runs: &[AnalysisRun]) -> Vec<AnalysisRunInfo> {
    let mut infos: Vec<AnalysisRunInfo> = runs
        .iter()
        .filter(|run| owned_by(&run.metadata, owner))
        .map(|run| {
            let status = run.status.clone().unwrap_or_default();
            let mut info = AnalysisRunInfo {
                name: run.metadata.name.clone().unwrap_or_default(),
                created_at: created(&run.metadata),
                status: status.phase,
                revision: revision_of(&run.metadata),
                successful: 0,
                failed: 0,
                inconclusive: 0,
                error: 0,
                jobs: Vec::new(),
            };
            for result in &status.metric_results {
                info.successful += result.successful;
                info.failed += result.failed;
                info.inconclusive += result.inconclusive;
                info.error += result.error;
                for measurement in &result.measurements {
                    if let Some(job) = measurement.metadata.get(JOB_NAME_KEY) {
                        info.jobs.push(JobInfo {
                            name: job.clone(),
                            status: measurement.phase,
                            started_at: measurement.started_at.as_ref().map(|t| t.0),
                        });
                    }
                }
            }
            info
        })
        .collect();
    infos.sort_by(|a, b| {
        b.revision
            .cmp(&a.revision)
            .then(a.created_at.cmp(&b.created_at))
            .then(b.name.cmp(&a.name))
    });
    infos
}

fn experiment_infos(view: &RolloutView) -> Vec<ExperimentInfo> {
    let mut infos: Vec<ExperimentInfo> = view
        .experiments
        .iter()
        .filter(|ex| owned_by(&ex.metadata, &view.rollout.metadata))
        .map(|ex: &Experiment| {
            let status = ex.status.clone().unwrap_or_default();
            ExperimentInfo {
                name: ex.metadata.name.clone().unwrap_or_default(),
                created_at: created(&ex.metadata),
                status: status.phase,
                message: status.message,
                revision: revision_of(&ex.metadata),
                replica_sets: replica_set_infos(&ex.metadata, None, view),
                analysis_runs: analysis_run_infos(&ex.metadata, &view.analysis_runs),
            }
        })
        .collect();
    infos.sort_by(|a, b| {
        b.revision
            .cmp(&a.revision)
            .then(a.created_at.cmp(&b.created_at))
    });
    infos
}

/// Images of ReplicaSets that have pods, with their roles, sorted by image (Argo's `Images`).
fn images(replica_sets: &[ReplicaSetInfo], experiments: &[ExperimentInfo]) -> Vec<ImageInfo> {
    let mut images: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rs in replica_sets.iter().filter(|rs| rs.replicas > 0) {
        for image in &rs.images {
            images
                .entry(image.clone())
                .or_default()
                .extend(rs.tags.iter().cloned());
        }
    }
    for rs in experiments
        .iter()
        .flat_map(|ex| &ex.replica_sets)
        .filter(|rs| rs.replicas > 0)
    {
        for image in &rs.images {
            let tags = images.entry(image.clone()).or_default();
            if let Some(template) = &rs.template {
                tags.insert(format!("Σ:{template}"));
            }
        }
    }
    images
        .into_iter()
        .map(|(image, tags)| ImageInfo {
            image,
            tags: tags.into_iter().collect(),
        })
        .collect()
}

/// Kubernetes' `duration.HumanDuration`, as `kubectl` and Argo print ages.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age(created_at: Option<Timestamp>, now: Timestamp) -> String {
    created_at.map_or_else(String::new, |at| {
        human_duration(now.duration_since(at).as_secs())
    })
}

// --- Rendering -------------------------------------------------------------------------

/// ANSI colours Argo gives icons, roles and analysis phases (`cmd/get/get.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Color {
    Red = 31,
    Green = 32,
    Yellow = 33,
    HiBlue = 94,
}

fn color_of(word: &str) -> Option<Color> {
    match word {
        icons::WAITING | icons::UNKNOWN | "canary" => Some(Color::Yellow),
        icons::PROGRESSING | "preview" | "Pending" | "Running" => Some(Color::HiBlue),
        icons::WARNING | icons::BAD => Some(Color::Red),
        icons::OK | "stable" | "active" => Some(Color::Green),
        _ => None,
    }
}

/// A piece of a cell: text, and the word that picks its colour.
#[derive(Debug, Clone)]
struct Piece {
    text: String,
    color: Option<Color>,
}

/// A cell of a table: pieces written one after the other.
#[derive(Debug, Clone, Default)]
struct Cell(Vec<Piece>);

impl Cell {
    fn plain(text: impl Into<String>) -> Self {
        Self(vec![Piece {
            text: text.into(),
            color: None,
        }])
    }

    /// A piece coloured as Argo colours `key` (the text itself, an icon, a role, a phase).
    fn push(mut self, text: impl Into<String>, key: &str) -> Self {
        self.0.push(Piece {
            text: text.into(),
            color: color_of(key),
        });
        self
    }

    fn push_plain(mut self, text: impl Into<String>) -> Self {
        self.0.push(Piece {
            text: text.into(),
            color: None,
        });
        self
    }

    fn width(&self) -> usize {
        self.0.iter().map(|p| p.text.chars().count()).sum()
    }

    fn write(&self, out: &mut String, color: bool) {
        for piece in &self.0 {
            match piece.color.filter(|_| color) {
                Some(c) => out.push_str(&format!("\x1b[{}m{}\x1b[0m", c as u8, piece.text)),
                None => out.push_str(&piece.text),
            }
        }
    }
}

/// Align rows as Go's `tabwriter` with padding 2 does: every column but the last as wide as its
/// widest cell plus two spaces. Trailing spaces are trimmed.
fn align(rows: &[Vec<Cell>], color: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(Cell::width)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            cell.write(&mut line, color);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - cell.width() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn rollout_icon(status: &str) -> &'static str {
    match status {
        "Progressing" => icons::PROGRESSING,
        "Error" | "InvalidSpec" => icons::WARNING,
        "Paused" => icons::PAUSED,
        "Healthy" => icons::OK,
        "Degraded" => icons::BAD,
        "Unknown" => icons::UNKNOWN,
        "ScaledDown" => icons::NEUTRAL,
        _ => " ",
    }
}

fn replica_set_icon(status: &str) -> &'static str {
    match status {
        "Progressing" => icons::PROGRESSING,
        "Healthy" => icons::OK,
        "ReplicaFailure" => icons::BAD,
        "ScaledDown" => icons::NEUTRAL,
        _ => " ",
    }
}

fn analysis_icon(phase: Option<AnalysisPhase>) -> &'static str {
    match phase {
        Some(AnalysisPhase::Successful) => icons::OK,
        Some(AnalysisPhase::Inconclusive) => icons::UNKNOWN,
        Some(AnalysisPhase::Failed) => icons::BAD,
        Some(AnalysisPhase::Error) => icons::WARNING,
        Some(AnalysisPhase::Running) => icons::PROGRESSING,
        Some(AnalysisPhase::Pending) => icons::WAITING,
        None => " ",
    }
}

/// `kubectl get pods`' reasons, with Argo's icons.
fn pod_icon(status: &str) -> &'static str {
    if status.starts_with("Init:") {
        return icons::PROGRESSING;
    }
    if status.starts_with("Signal:") || status.starts_with("ExitCode:") {
        return icons::BAD;
    }
    if status.ends_with("Error") || status.starts_with("Err") {
        return icons::WARNING;
    }
    match status {
        "Pending" | "Terminating" | "ContainerCreating" => icons::PROGRESSING,
        "Running" | "Completed" => icons::OK,
        "Failed" | "InvalidImageName" | "CrashLoopBackOff" => icons::BAD,
        "ImagePullBackOff" | "RegistryUnavailable" => icons::WARNING,
        "Unknown" => icons::UNKNOWN,
        _ => " ",
    }
}

/// The tree prefixes of a child: its own, and the one its children continue with.
fn prefixes(last: bool, parent: &str) -> (String, String) {
    if last {
        (format!("{parent}└──"), format!("{parent}   "))
    } else {
        (format!("{parent}├──"), format!("{parent}│  "))
    }
}

fn status_cell(icon: &str, status: &str) -> Cell {
    Cell::default()
        .push(icon, icon)
        .push_plain(format!(" {status}"))
}

/// Renders a rollout as `kubectl argo rollouts get rollout --no-color` does (with `color`, its
/// colours too).
pub fn render(info: &RolloutInfo, now: Timestamp, color: bool) -> String {
    let mut out = String::new();
    let field = |out: &mut String, label: &str, value: &str| {
        let line = format!("{label:<17}{value}");
        out.push_str(line.trim_end());
        out.push('\n');
    };
    field(&mut out, "Name:", &info.name);
    field(&mut out, "Namespace:", &info.namespace);
    let mut status = String::new();
    status_cell(rollout_icon(&info.status), &info.status).write(&mut status, color);
    field(&mut out, "Status:", &status);
    if !info.message.is_empty() {
        field(&mut out, "Message:", &info.message);
    }
    field(&mut out, "Strategy:", &info.strategy);
    if info.strategy == "Canary" {
        field(&mut out, "  Step:", info.step.as_deref().unwrap_or(""));
        let weight = |w: Option<i32>| w.map(|w| w.to_string()).unwrap_or_default();
        field(&mut out, "  SetWeight:", &weight(info.set_weight));
        field(&mut out, "  ActualWeight:", &weight(info.actual_weight));
    }
    for (i, image) in info.images.iter().enumerate() {
        let mut text = String::new();
        let mut cell = Cell::plain(image.image.clone());
        if !image.tags.is_empty() {
            cell = cell.push_plain(" (");
            for (t, tag) in image.tags.iter().enumerate() {
                if t > 0 {
                    cell = cell.push_plain(", ");
                }
                cell = cell.push(tag.clone(), tag);
            }
            cell = cell.push_plain(")");
        }
        cell.write(&mut text, color);
        field(&mut out, if i == 0 { "Images:" } else { "" }, &text);
    }
    out.push_str("Replicas:\n");
    for (label, value) in [
        ("  Desired:", info.desired),
        ("  Current:", info.current),
        ("  Updated:", info.updated),
        ("  Ready:", info.ready),
        ("  Available:", info.available),
    ] {
        field(&mut out, label, &value.to_string());
    }
    out.push('\n');
    out.push_str(&align(&tree_rows(info, now), color));
    out
}

fn tree_rows(info: &RolloutInfo, now: Timestamp) -> Vec<Vec<Cell>> {
    let mut rows = vec![
        ["NAME", "KIND", "STATUS", "AGE", "INFO"]
            .map(Cell::plain)
            .to_vec(),
        vec![
            Cell::plain(format!("{} {}", icons::ROLLOUT, info.name)),
            Cell::plain("Rollout"),
            status_cell(rollout_icon(&info.status), &info.status),
            Cell::plain(age(info.created_at, now)),
            Cell::default(),
        ],
    ];
    for (i, revision) in info.revisions.iter().enumerate() {
        let (prefix, sub) = prefixes(i + 1 == info.revisions.len(), "");
        rows.push(vec![
            Cell::plain(format!(
                "{prefix}{} revision:{}",
                icons::REVISION,
                revision.revision
            )),
            Cell::default(),
            Cell::default(),
            Cell::default(),
            Cell::default(),
        ]);
        let total =
            revision.replica_sets.len() + revision.experiments.len() + revision.analysis_runs.len();
        let mut n = 0;
        let mut next = || {
            n += 1;
            prefixes(n == total, &sub)
        };
        for rs in &revision.replica_sets {
            let (prefix, sub) = next();
            replica_set_rows(&mut rows, rs, &prefix, &sub, now);
        }
        for experiment in &revision.experiments {
            let (prefix, sub) = next();
            experiment_rows(&mut rows, experiment, &prefix, &sub, now);
        }
        for run in &revision.analysis_runs {
            let (prefix, sub) = next();
            analysis_run_rows(&mut rows, run, &prefix, &sub, now);
        }
    }
    rows
}

fn replica_set_rows(
    rows: &mut Vec<Vec<Cell>>,
    rs: &ReplicaSetInfo,
    prefix: &str,
    sub: &str,
    now: Timestamp,
) {
    let role = rs.tags.first().map_or("", String::as_str);
    let mut info = Cell::default();
    for (i, tag) in rs.tags.iter().enumerate() {
        if i > 0 {
            info = info.push_plain(",");
        }
        info = info.push(tag.clone(), tag);
    }
    if let Some(deadline) = &rs.scale_down_deadline {
        let delay = match deadline.parse::<Timestamp>() {
            Ok(at) if at < now => "passed".to_string(),
            Ok(at) => human_duration(at.duration_since(now).as_secs()),
            Err(_) => String::new(),
        };
        if !info.0.is_empty() {
            info = info.push_plain(",");
        }
        info = info.push_plain(format!("delay:{delay}"));
    }
    rows.push(vec![
        Cell::plain(format!("{prefix}{} ", icons::REPLICA_SET)).push(rs.name.clone(), role),
        Cell::plain("ReplicaSet"),
        status_cell(replica_set_icon(&rs.status), &rs.status),
        Cell::plain(age(rs.created_at, now)),
        info,
    ]);
    for (i, pod) in rs.pods.iter().enumerate() {
        let (prefix, _) = prefixes(i + 1 == rs.pods.len(), sub);
        let mut info = format!("ready:{}", pod.ready);
        if pod.restarts > 0 {
            info.push_str(&format!(",restarts:{}", pod.restarts));
        }
        rows.push(vec![
            Cell::plain(format!("{prefix}{} {}", icons::POD, pod.name)),
            Cell::plain("Pod"),
            status_cell(pod_icon(&pod.status), &pod.status),
            Cell::plain(age(pod.created_at, now)),
            Cell::plain(info),
        ]);
    }
}

fn analysis_run_rows(
    rows: &mut Vec<Vec<Cell>>,
    run: &AnalysisRunInfo,
    prefix: &str,
    sub: &str,
    now: Timestamp,
) {
    let mut info = Cell::default();
    for (icon, count) in [
        (icons::OK, run.successful),
        (icons::BAD, run.failed),
        (icons::UNKNOWN, run.inconclusive),
        (icons::WARNING, run.error),
    ] {
        if count > 0 {
            if !info.0.is_empty() {
                info = info.push_plain(",");
            }
            info = info.push(icon, icon).push_plain(format!(" {count}"));
        }
    }
    let phase = run.status.as_str();
    rows.push(vec![
        Cell::plain(format!("{prefix}{} ", icons::ANALYSIS_RUN)).push(run.name.clone(), phase),
        Cell::plain("AnalysisRun"),
        status_cell(analysis_icon(Some(run.status)), phase),
        Cell::plain(age(run.created_at, now)),
        info,
    ]);
    for (i, job) in run.jobs.iter().enumerate() {
        let (prefix, _) = prefixes(i + 1 == run.jobs.len(), sub);
        let phase = job.status.as_str();
        rows.push(vec![
            Cell::plain(format!("{prefix}{} ", icons::JOB)).push(job.name.clone(), phase),
            Cell::plain("Job"),
            status_cell(analysis_icon(Some(job.status)), phase),
            Cell::plain(age(job.started_at, now)),
            Cell::default(),
        ]);
    }
}

fn experiment_rows(
    rows: &mut Vec<Vec<Cell>>,
    experiment: &ExperimentInfo,
    prefix: &str,
    sub: &str,
    now: Timestamp,
) {
    let phase = experiment.status.map_or("", AnalysisPhase::as_str);
    rows.push(vec![
        Cell::plain(format!("{prefix}{} ", icons::EXPERIMENT)).push(experiment.name.clone(), phase),
        Cell::plain("Experiment"),
        status_cell(analysis_icon(experiment.status), phase),
        Cell::plain(age(experiment.created_at, now)),
        Cell::default(),
    ]);
    let total = experiment.replica_sets.len() + experiment.analysis_runs.len();
    let mut n = 0;
    for rs in &experiment.replica_sets {
        n += 1;
        let (prefix, child) = prefixes(n == total, sub);
        replica_set_rows(rows, rs, &prefix, &child, now);
    }
    for run in &experiment.analysis_runs {
        n += 1;
        let (prefix, child) = prefixes(n == total, sub);
        analysis_run_rows(rows, run, &prefix, &child, now);
    }
}

/// One line of `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRow {
    pub namespace: String,
    pub name: String,
    pub strategy: String,
    pub status: String,
    /// `index/steps`, or `-`.
    pub step: String,
    /// The set weight, or `-` for blue-green.
    pub set_weight: String,
    /// `ready/current`.
    pub ready: String,
    pub desired: i32,
    pub up_to_date: i32,
    pub available: i32,
}

impl ListRow {
    /// Argo's `newRolloutInfo` (`cmd/list/rollloutinfo.go`).
    pub fn new(rollout: &Rollout) -> Self {
        let spec = &rollout.spec;
        let status = rollout.status_or_default();
        let (phase, _) = observed_phase(rollout.metadata.generation, spec, &status);
        let steps = spec.steps().len();
        let canary = spec.canary().is_some();
        Self {
            namespace: rollout.namespace_or_default().to_string(),
            name: rollout.name().to_string(),
            strategy: strategy_name(rollout).to_string(),
            status: phase.to_string(),
            step: match status.current_step_index {
                Some(index) if canary && steps > 0 => format!("{index}/{steps}"),
                _ => "-".into(),
            },
            set_weight: if canary {
                current_set_weight(spec, &status).to_string()
            } else {
                "-".into()
            },
            ready: format!("{}/{}", status.ready_replicas, status.replicas),
            desired: spec.replicas_or_default(),
            up_to_date: status.updated_replicas,
            available: status.available_replicas,
        }
    }
}

/// The `list` table (with a NAMESPACE column for `--all-namespaces`). Cells are padded to
/// Argo's minimum widths before aligning, so the columns look the same.
pub fn render_list(rows: &[ListRow], all_namespaces: bool) -> String {
    let header = [
        "NAME",
        "STRATEGY",
        "STATUS",
        "STEP",
        "SET-WEIGHT",
        "READY",
        "DESIRED",
        "UP-TO-DATE",
        "AVAILABLE",
    ];
    let mut table = vec![header.iter().map(|h| Cell::plain(*h)).collect::<Vec<_>>()];
    for row in rows {
        table.push(vec![
            Cell::plain(format!("{:<10}", row.name)),
            Cell::plain(format!("{:<9}", row.strategy)),
            Cell::plain(format!("{:<12}", row.status)),
            Cell::plain(format!("{:<4}", row.step)),
            Cell::plain(format!("{:<10}", row.set_weight)),
            Cell::plain(format!("{:<5}", row.ready)),
            Cell::plain(format!("{:<7}", row.desired)),
            Cell::plain(format!("{:<10}", row.up_to_date)),
            Cell::plain(row.available.to_string()),
        ]);
    }
    if all_namespaces {
        for (i, row) in table.iter_mut().enumerate() {
            let namespace = match i {
                0 => "NAMESPACE".to_string(),
                _ => format!("{:<9}", rows[i - 1].namespace),
            };
            row.insert(0, Cell::plain(namespace));
        }
    }
    align(&table, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn now() -> Timestamp {
        "2025-03-01T12:00:00Z".parse().unwrap()
    }

    /// `seconds` before [`now`], as Kubernetes writes timestamps.
    fn ago(seconds: i64) -> String {
        (now() - SignedDuration::from_secs(seconds)).to_string()
    }

    use jiff::SignedDuration;

    fn owner(kind: &str, name: &str, uid: &str) -> Value {
        json!([{"apiVersion": "v1", "kind": kind, "name": name, "uid": uid, "controller": true}])
    }

    fn replica_set(
        owner_name: &str,
        owner_uid: &str,
        hash: &str,
        revision: &str,
        images: &[&str],
        (spec, available): (i32, i32),
        extra_annotations: Value,
    ) -> ReplicaSet {
        let mut annotations = json!({REVISION_ANNOTATION: revision});
        rollout_runner_core::operate::merge(&mut annotations, &extra_annotations);
        let containers: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
            .collect();
        serde_json::from_value(json!({
            "metadata": {
                "name": format!("{owner_name}-{hash}"),
                "namespace": "shop",
                "uid": format!("rs-{hash}"),
                "generation": 2,
                "creationTimestamp": ago(3600 * 24 * 7),
                "labels": {POD_TEMPLATE_HASH_LABEL: hash},
                "annotations": annotations,
                "ownerReferences": owner("Rollout", owner_name, owner_uid),
            },
            "spec": {
                "replicas": spec,
                "selector": {"matchLabels": {POD_TEMPLATE_HASH_LABEL: hash}},
                "template": {"spec": {"containers": containers}},
            },
            "status": {
                "replicas": spec.max(available),
                "availableReplicas": available,
                "readyReplicas": available,
                "observedGeneration": 2,
            },
        }))
        .unwrap()
    }

    fn pod(rs: &ReplicaSet, suffix: &str, age: i64, status: Value) -> Pod {
        let name = rs.metadata.name.clone().unwrap();
        serde_json::from_value(json!({
            "metadata": {
                "name": format!("{name}-{suffix}"),
                "namespace": "shop",
                "creationTimestamp": ago(age),
                "ownerReferences": owner("ReplicaSet", &name, rs.metadata.uid.as_deref().unwrap()),
            },
            "spec": {"containers": [{"name": "c0", "image": "x"}]},
            "status": status,
        }))
        .unwrap()
    }

    fn running() -> Value {
        json!({"phase": "Running", "containerStatuses": [{
            "name": "c0", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
            "state": {"running": {}}
        }]})
    }

    fn waiting(reason: &str, restarts: i32) -> Value {
        json!({"phase": "Pending", "containerStatuses": [{
            "name": "c0", "image": "x", "imageID": "", "ready": false,
            "restartCount": restarts, "state": {"waiting": {"reason": reason}}
        }]})
    }

    /// A canary paused at its second step: revision 3 is the canary, 2 is stable, 1 is
    /// scaled down; a step analysis ran for revision 3 and failed once.
    fn canary_view() -> RolloutView {
        let rollout: Rollout = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {
                "name": "canary-demo", "namespace": "shop", "uid": "ro-1", "generation": 4,
                "creationTimestamp": ago(3600 * 24 * 7),
            },
            "spec": {
                "replicas": 5,
                "selector": {"matchLabels": {"app": "demo"}},
                "template": {"spec": {"containers": [{"name": "c0", "image": "demo:blue"}]}},
                "strategy": {"canary": {"steps": [
                    {"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {"duration": "10s"}}
                ]}},
            },
            "status": {
                "observedGeneration": "4",
                "currentPodHash": "h3", "stableRS": "h2", "currentStepIndex": 1,
                "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": ago(60)}],
                "controllerPause": true,
                "phase": "Paused", "message": "CanaryPauseStep",
                "replicas": 6, "updatedReplicas": 1, "readyReplicas": 5, "availableReplicas": 5,
            },
        }))
        .unwrap();
        let canary = replica_set(
            "canary-demo",
            "ro-1",
            "h3",
            "3",
            &["demo:blue"],
            (1, 1),
            json!({}),
        );
        let stable = replica_set(
            "canary-demo",
            "ro-1",
            "h2",
            "2",
            &["demo:green"],
            (4, 4),
            json!({}),
        );
        let old = replica_set(
            "canary-demo",
            "ro-1",
            "h1",
            "1",
            &["demo:red"],
            (0, 0),
            json!({}),
        );
        let stranger = replica_set("other", "ro-2", "h9", "9", &["other:1"], (1, 1), json!({}));
        let pods = vec![
            pod(&canary, "9wf5r", 30, waiting("ImagePullBackOff", 0)),
            pod(&stable, "6jfpt", 3600, running()),
            pod(&stable, "7kqvw", 3590, running()),
            pod(&stable, "bbbbb", 600, waiting("CrashLoopBackOff", 3)),
            pod(&stable, "aaaaa", 600, running()),
        ];
        let run: AnalysisRun = serde_json::from_value(json!({
            "metadata": {
                "name": "canary-demo-h3-3-1", "namespace": "shop",
                "creationTimestamp": ago(90),
                "annotations": {REVISION_ANNOTATION: "3"},
                "ownerReferences": owner("Rollout", "canary-demo", "ro-1"),
            },
            "spec": {"metrics": []},
            "status": {"phase": "Failed", "metricResults": [
                {"name": "success-rate", "phase": "Failed", "successful": 2, "failed": 1, "measurements": []},
                {"name": "smoke", "phase": "Successful", "successful": 1, "measurements": [
                    {"phase": "Successful", "startedAt": ago(80), "metadata": {JOB_NAME_KEY: "smoke-job-1"}}
                ]},
            ]},
        }))
        .unwrap();
        RolloutView {
            rollout,
            replica_sets: vec![old, stable, canary, stranger],
            pods,
            analysis_runs: vec![run],
            experiments: Vec::new(),
        }
    }

    #[test]
    fn canary_tree_as_argo_prints_it() {
        let info = RolloutInfo::new(&canary_view());
        assert_eq!(info.step.as_deref(), Some("1/4"));
        assert_eq!(info.set_weight, Some(20));
        // Basic canary: canary available / all available = 1/5.
        assert_eq!(info.actual_weight, Some(20));
        insta::assert_snapshot!("canary_tree", render(&info, now(), false));
    }

    #[test]
    fn canary_json_has_timestamps_not_ages() {
        let info = RolloutInfo::new(&canary_view());
        insta::assert_json_snapshot!("canary_json", info);
    }

    #[test]
    fn colour_wraps_icons_and_roles_without_moving_columns() {
        let info = RolloutInfo::new(&canary_view());
        let plain = render(&info, now(), false);
        let coloured = render(&info, now(), true);
        assert!(coloured.contains("\x1b[32m✔\x1b[0m Running"), "{coloured}");
        assert!(coloured.contains("\x1b[33mcanary\x1b[0m"), "{coloured}");
        let stripped = regex::Regex::new("\x1b\\[[0-9]+m")
            .unwrap()
            .replace_all(&coloured, "");
        assert_eq!(stripped, plain);
    }

    /// Blue-green with an experiment-free preview: revision 2 is previewed, 1 active and stable,
    /// with a scale-down deadline on an older one.
    #[test]
    fn blue_green_tree_marks_active_and_preview() {
        let rollout: Rollout = serde_json::from_value(json!({
            "metadata": {
                "name": "bg", "namespace": "shop", "uid": "ro-bg", "generation": 2,
                "creationTimestamp": ago(7200),
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "bg"}},
                "strategy": {"blueGreen": {"activeService": "bg-active", "previewService": "bg-preview",
                    "autoPromotionEnabled": false}},
            },
            "status": {
                "observedGeneration": "2",
                "currentPodHash": "p2", "stableRS": "p1",
                "blueGreen": {"activeSelector": "p1", "previewSelector": "p2"},
                "pauseConditions": [{"reason": "BlueGreenPause", "startTime": ago(30)}],
                "controllerPause": true,
                "phase": "Paused", "message": "BlueGreenPause",
                "replicas": 4, "updatedReplicas": 2, "readyReplicas": 4, "availableReplicas": 4,
            },
        }))
        .unwrap();
        let preview = replica_set("bg", "ro-bg", "p2", "3", &["app:2"], (2, 2), json!({}));
        let active = replica_set("bg", "ro-bg", "p1", "2", &["app:1"], (2, 2), json!({}));
        let leaving = replica_set(
            "bg",
            "ro-bg",
            "p0",
            "1",
            &["app:0"],
            (2, 2),
            json!({SCALE_DOWN_DEADLINE_ANNOTATION: (now() + SignedDuration::from_secs(25)).to_string()}),
        );
        let view = RolloutView {
            rollout,
            replica_sets: vec![active, preview, leaving],
            ..Default::default()
        };
        let info = RolloutInfo::new(&view);
        assert_eq!(info.set_weight, None);
        insta::assert_snapshot!("blue_green_tree", render(&info, now(), false));
    }

    /// A routed ping-pong canary in an experiment step: the weight comes from the router's
    /// record, the experiment's ReplicaSet and AnalysisRun sit under it.
    #[test]
    fn routed_canary_with_an_experiment() {
        let rollout: Rollout = serde_json::from_value(json!({
            "metadata": {
                "name": "exp", "namespace": "shop", "uid": "ro-x", "generation": 1,
                "creationTimestamp": ago(600),
            },
            "spec": {
                "replicas": 4,
                "strategy": {"canary": {
                    "pingPong": {"pingService": "ping", "pongService": "pong"},
                    "trafficRouting": {"istio": {"virtualService": {"name": "vs"}}},
                    "steps": [{"setWeight": 25}, {"experiment": {"templates": [
                        {"name": "baseline", "specRef": "stable"}
                    ]}}],
                }},
            },
            "status": {
                "observedGeneration": "1",
                "currentPodHash": "n2", "stableRS": "n1", "currentStepIndex": 1,
                "canary": {
                    "stablePingPong": "pong",
                    "weights": {"canary": {"weight": 10}, "stable": {"weight": 90}},
                },
                "replicas": 6, "updatedReplicas": 1, "readyReplicas": 6, "availableReplicas": 6,
            },
        }))
        .unwrap();
        let experiment: Experiment = serde_json::from_value(json!({
            "metadata": {
                "name": "exp-n2-2-1", "namespace": "shop", "uid": "ex-1",
                "creationTimestamp": ago(20),
                "annotations": {REVISION_ANNOTATION: "2"},
                "ownerReferences": owner("Rollout", "exp", "ro-x"),
            },
            "spec": {"templates": []},
            "status": {"phase": "Running"},
        }))
        .unwrap();
        let mut baseline = replica_set(
            "exp-n2-2-1",
            "ex-1",
            "b1",
            "",
            &["app:1"],
            (1, 1),
            json!({EXPERIMENT_TEMPLATE_NAME_ANNOTATION: "baseline"}),
        );
        baseline.metadata.name = Some("exp-n2-2-1-baseline".into());
        let run: AnalysisRun = serde_json::from_value(json!({
            "metadata": {
                "name": "exp-n2-2-1-smoke", "namespace": "shop", "creationTimestamp": ago(10),
                "ownerReferences": owner("Experiment", "exp-n2-2-1", "ex-1"),
            },
            "spec": {"metrics": []},
            "status": {"phase": "Pending"},
        }))
        .unwrap();
        let view = RolloutView {
            rollout,
            replica_sets: vec![
                replica_set("exp", "ro-x", "n1", "1", &["app:1"], (4, 4), json!({})),
                replica_set("exp", "ro-x", "n2", "2", &["app:2"], (1, 1), json!({})),
                baseline,
            ],
            analysis_runs: vec![run],
            experiments: vec![experiment],
            ..Default::default()
        };
        let info = RolloutInfo::new(&view);
        assert_eq!((info.set_weight, info.actual_weight), (Some(25), Some(10)));
        insta::assert_snapshot!(
            "routed_canary_with_an_experiment",
            render(&info, now(), false)
        );
    }

    #[test]
    fn list_columns_as_argo_pads_them() {
        let view = canary_view();
        let mut healthy = view.rollout.clone();
        healthy.metadata.name = Some("a-very-long-rollout-name".into());
        healthy.metadata.namespace = Some("payments".into());
        let status = healthy.status.as_mut().unwrap();
        status.pause_conditions.clear();
        status.controller_pause = false;
        status.phase = Some(RolloutPhase::Healthy);
        status.message.clear();
        status.current_step_index = Some(4);
        let rows = [ListRow::new(&view.rollout), ListRow::new(&healthy)];
        assert_eq!(rows[1].set_weight, "100");
        insta::assert_snapshot!("list", render_list(&rows, false));
        insta::assert_snapshot!("list_all_namespaces", render_list(&rows, true));
    }

    #[test]
    fn list_shows_an_unobserved_spec_as_progressing() {
        let mut rollout = canary_view().rollout;
        rollout.metadata.generation = Some(5);
        let row = ListRow::new(&rollout);
        assert_eq!(row.status, "Progressing");
        assert_eq!(row.step, "1/4");
        assert_eq!(row.ready, "5/6");
    }

    #[test]
    fn human_durations_match_kubernetes() {
        for (seconds, text) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (50 * 3600, "2d2h"),
            (8 * 24 * 3600, "8d"),
            (2 * 365 * 24 * 3600, "2y"),
            (2 * 365 * 24 * 3600 + 3 * 24 * 3600, "2y3d"),
            (9 * 365 * 24 * 3600, "9y"),
        ] {
            assert_eq!(human_duration(seconds), text, "{seconds}s");
        }
    }

    #[test]
    fn pod_status_follows_kubectl() {
        let rs = replica_set("r", "u", "h", "1", &["x"], (1, 1), json!({}));
        let status = |value: Value| pod_info(&pod(&rs, "p", 0, value));
        assert_eq!(status(running()).status, "Running");
        assert_eq!(status(running()).ready, "1/1");
        let crash = status(waiting("CrashLoopBackOff", 4));
        assert_eq!(
            (crash.status.as_str(), crash.restarts),
            ("CrashLoopBackOff", 4)
        );
        assert_eq!(status(json!({"phase": "Pending"})).status, "Pending");
        let exited = json!({"phase": "Failed", "containerStatuses": [{
            "name": "c0", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 2}}
        }]});
        assert_eq!(status(exited).status, "ExitCode:2");
        let init = json!({"phase": "Pending", "initContainerStatuses": [{
            "name": "i0", "image": "x", "imageID": "", "ready": false, "restartCount": 1,
            "state": {"running": {}}
        }]});
        let mut initializing = pod(&rs, "p", 0, init);
        initializing.spec.as_mut().unwrap().init_containers =
            Some(vec![serde_json::from_value(json!({"name": "i0"})).unwrap()]);
        assert_eq!(pod_info(&initializing).status, "Init:0/1");
        let mut terminating = pod(&rs, "p", 0, running());
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
        assert_eq!(pod_info(&terminating).status, "Terminating");
        assert_eq!(pod_icon("Terminating"), icons::PROGRESSING);
        assert_eq!(pod_icon("ErrImagePull"), icons::WARNING);
        assert_eq!(pod_icon("Init:0/1"), icons::PROGRESSING);
    }

    #[test]
    fn replica_set_health_as_argo() {
        let healthy = replica_set("r", "u", "h", "1", &["x"], (2, 2), json!({}));
        assert_eq!(replica_set_health(&healthy), "Healthy");
        let scaling = replica_set("r", "u", "h", "1", &["x"], (2, 1), json!({}));
        assert_eq!(replica_set_health(&scaling), "Progressing");
        let down = replica_set("r", "u", "h", "1", &["x"], (0, 0), json!({}));
        assert_eq!(replica_set_health(&down), "ScaledDown");
        let mut unobserved = healthy.clone();
        unobserved.metadata.generation = Some(3);
        assert_eq!(replica_set_health(&unobserved), "Progressing");
        let mut failing = healthy;
        failing.status.as_mut().unwrap().conditions = Some(vec![
            serde_json::from_value(json!({
                "type": "ReplicaFailure", "status": "True"
            }))
            .unwrap(),
        ]);
        assert_eq!(replica_set_health(&failing), "ReplicaFailure");
    }
}
