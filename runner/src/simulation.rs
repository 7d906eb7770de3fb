//! Simulations: the real driver on the in-memory cluster, with scripted metrics and scheduled
//! interventions, on a virtual clock.
//!
//! A simulation starts from a fully available stable version of the Rollout (the same Rollout
//! with a previous pod template, rolled out by the engine itself), then releases the new
//! template and drives it to its end. Times in scenarios count from that release.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use crate::cluster::memory::{MemoryCluster, PodBehaviour, PodFault};
use crate::crd::{Rollout, duration::parse_go_duration};
use crate::driver::{Driver, DriverError, RunOptions};
use crate::manifest::ManifestSet;
use crate::metrics::scripted::{Script, Scripted};
use crate::observed::ServiceState;
use crate::operate::Operation;
use crate::report::{Outcome, Reporter, Silent};

/// Pod-template annotation that distinguishes the simulated previous version.
pub const PREVIOUS_REVISION_ANNOTATION: &str = "simulate.rollout-runner.io/revision";

/// Default start of the virtual clock: a fixed time, so simulations are reproducible.
pub const DEFAULT_START: &str = "2030-01-01T00:00:00Z";

/// A scenario: how pods behave, what the metrics say, and what people do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub pods: Pods,
    /// The image the stable version runs (first container). Default: the same image, with the
    /// pod template marked as the previous revision.
    #[serde(default)]
    pub previous_image: Option<String>,
    /// Values by metric name.
    #[serde(default)]
    pub metrics: BTreeMap<String, Script>,
    /// What people do, and when.
    #[serde(default)]
    pub interventions: Vec<Intervention>,
    /// Secrets the analysis reads: name, then key and value.
    #[serde(default)]
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Give up after this long (a Go duration). Default 24h.
    #[serde(default)]
    pub timeout: Option<String>,
    /// A pause waiting for promotion counts as success.
    #[serde(default)]
    pub success_on_pause: bool,
    /// When the virtual clock starts (RFC 3339).
    #[serde(default)]
    pub start: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pods {
    /// Time from a pod's creation to Ready (a Go duration). Default 5s.
    #[serde(default)]
    pub ready_delay: Option<String>,
    /// Faults by image.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    pub image: String,
    #[serde(default)]
    pub ready_delay: Option<String>,
    #[serde(default)]
    pub never_ready: bool,
    #[serde(default)]
    pub unready_after: Option<String>,
}

/// `- at: 15m` with one operation: `promote: {}`, `abort: {}`, `setImage: {...}`, ...
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Intervention {
    /// A Go duration since the release.
    pub at: String,
    #[serde(default)]
    pub promote: Option<Empty>,
    #[serde(default)]
    pub promote_full: Option<Empty>,
    #[serde(default)]
    pub abort: Option<Empty>,
    #[serde(default)]
    pub retry: Option<Empty>,
    #[serde(default)]
    pub pause: Option<Empty>,
    #[serde(default)]
    pub resume: Option<Empty>,
    #[serde(default)]
    pub set_image: Option<SetImage>,
}

/// `{}` (or nothing) after an operation's name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetImage {
    pub container: String,
    pub image: String,
}

impl Intervention {
    /// The one operation it names.
    pub fn operation(&self) -> Result<Operation, String> {
        let mut operations = Vec::new();
        if self.promote.is_some() {
            operations.push(Operation::Promote);
        }
        if self.promote_full.is_some() {
            operations.push(Operation::PromoteFull);
        }
        if self.abort.is_some() {
            operations.push(Operation::Abort);
        }
        if self.retry.is_some() {
            operations.push(Operation::Retry);
        }
        if self.pause.is_some() {
            operations.push(Operation::Pause);
        }
        if self.resume.is_some() {
            operations.push(Operation::Resume);
        }
        if let Some(set) = &self.set_image {
            operations.push(Operation::SetImage {
                container: set.container.clone(),
                image: set.image.clone(),
            });
        }
        match operations.len() {
            1 => Ok(operations.remove(0)),
            _ => Err(format!(
                "intervention at {}: give exactly one of promote, promoteFull, abort, retry, pause, resume, setImage",
                self.at
            )),
        }
    }
}

/// Why a simulation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    #[error("no Rollout among the inputs")]
    NoRollout,
    #[error("several Rollouts among the inputs ({0}); choose one with --rollout")]
    SeveralRollouts(String),
    #[error("no Rollout named `{0}` among the inputs")]
    RolloutNotFound(String),
    #[error("invalid scenario: {0}")]
    Scenario(String),
    #[error(
        "rollout `{rollout}` takes its pod template from {kind} `{name}` (`spec.workloadRef`), which is not among the inputs\n\nhint: pass the {kind}'s manifest along with the Rollout"
    )]
    WorkloadNotFound {
        rollout: String,
        kind: String,
        name: String,
    },
    #[error("could not reach the starting state (a fully available stable version): {0}")]
    Setup(String),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

fn duration(text: &str, what: &str) -> Result<SignedDuration, SimulationError> {
    parse_go_duration(text).map_err(|e| SimulationError::Scenario(format!("{what}: {e}")))
}

/// A prepared simulation: the cluster at the starting state, ready to release.
pub struct Simulation {
    pub cluster: MemoryCluster,
    pub metrics: Scripted,
    pub rollout: Rollout,
    /// When the new version was released (time zero of the scenario).
    pub released_at: Timestamp,
    pub timeout: SignedDuration,
    pub success_on_pause: bool,
    /// Services the rollout references that the inputs did not define, created for the run.
    pub created_services: Vec<String>,
}

impl Simulation {
    /// Build the cluster, roll out the previous version, release the new one.
    pub async fn prepare(
        set: &ManifestSet,
        scenario: &Scenario,
        rollout_name: Option<&str>,
        real_time: bool,
    ) -> Result<Self, SimulationError> {
        let rollout = pick_rollout(set, rollout_name)?;
        let namespace = rollout.namespace_or_default().to_string();
        let mut behaviour = PodBehaviour::default();
        if let Some(delay) = &scenario.pods.ready_delay {
            behaviour.ready_delay = duration(delay, "pods.readyDelay")?;
        }
        for fault in &scenario.pods.faults {
            let parse = |d: &Option<String>, what: &str| {
                d.as_deref().map(|text| duration(text, what)).transpose()
            };
            behaviour.image_faults.insert(
                fault.image.clone(),
                PodFault {
                    ready_delay: parse(&fault.ready_delay, "pods.faults.readyDelay")?,
                    never_ready: fault.never_ready,
                    unready_after: parse(&fault.unready_after, "pods.faults.unreadyAfter")?,
                },
            );
        }
        for (name, script) in &scenario.metrics {
            script
                .validate(name)
                .map_err(|e| SimulationError::Scenario(e.to_string()))?;
        }
        let operations: Vec<(SignedDuration, Operation)> = scenario
            .interventions
            .iter()
            .map(|i| {
                Ok((
                    duration(&i.at, "interventions.at")?,
                    i.operation().map_err(SimulationError::Scenario)?,
                ))
            })
            .collect::<Result<_, SimulationError>>()?;
        let timeout = duration(scenario.timeout.as_deref().unwrap_or("24h"), "timeout")?;
        if timeout.is_negative() {
            return Err(SimulationError::Scenario(format!(
                "timeout `{}` must not be negative",
                scenario.timeout.as_deref().unwrap_or_default()
            )));
        }
        let start = match (real_time, scenario.start) {
            (true, _) => Timestamp::now(),
            (false, Some(start)) => start,
            (false, None) => DEFAULT_START.parse().unwrap_or(Timestamp::UNIX_EPOCH),
        };

        let cluster = MemoryCluster::new(start, behaviour).with_real_time(false);
        for document in set.documents() {
            if document.kind == "Service" && document.api_version == "v1" {
                cluster.add_service(
                    document.namespace.as_deref().unwrap_or(&namespace),
                    service_state(&document.name, &document.raw),
                );
            }
        }
        let workload = match &rollout.spec.workload_ref {
            Some(reference) => {
                let found = set
                    .rollout(rollout.metadata.namespace.as_deref(), rollout.name())
                    .and_then(|(document, r)| set.workload(document, r));
                let Some(workload) = found else {
                    return Err(SimulationError::WorkloadNotFound {
                        rollout: rollout.name().to_string(),
                        kind: reference.kind.clone(),
                        name: reference.name.clone(),
                    });
                };
                if scenario.previous_image.is_some() {
                    return Err(SimulationError::Scenario(
                        "previousImage does not apply to a Rollout with a workloadRef: the simulation starts from the running workload".into(),
                    ));
                }
                Some(workload)
            }
            None => None,
        };
        for document in set.documents() {
            if matches!(
                (document.api_version.as_str(), document.kind.as_str()),
                ("apps/v1", "Deployment" | "ReplicaSet") | ("v1", "PodTemplate")
            ) {
                cluster.add_workload(
                    document.namespace.as_deref().unwrap_or(&namespace),
                    &document.kind,
                    &document.raw,
                );
            }
        }
        let resolved = match &workload {
            Some(workload) => crate::engine::workload::resolve(&rollout, workload),
            None => rollout.clone(),
        };
        let created_services = add_missing_services(&cluster, &resolved, &namespace);
        for (_, template) in set.analysis_templates() {
            let mut template = template.clone();
            template.metadata.namespace.get_or_insert(namespace.clone());
            cluster.add_analysis_template(template);
        }
        for (_, template) in set.cluster_analysis_templates() {
            cluster.add_cluster_analysis_template(template.clone());
        }
        for (name, data) in &scenario.secrets {
            cluster.add_secret(&namespace, name, data.clone());
        }

        // The starting state: the previous version, rolled out by the engine (an initial
        // deploy skips steps and analysis, as in Argo). A Rollout with a workloadRef starts
        // from the running workload instead: the release is its migration to the Rollout.
        if workload.is_none() {
            let previous = previous_version(&rollout, scenario.previous_image.as_deref());
            cluster.apply_rollout(&previous);
            let warm_up = Scripted::new(start, BTreeMap::new());
            let mut silent = Silent;
            let outcome = Driver::new(&cluster, &warm_up, &mut silent)
                .run(
                    &namespace,
                    rollout.name(),
                    &RunOptions {
                        timeout: Some(SignedDuration::from_hours(24)),
                        ..Default::default()
                    },
                )
                .await?;
            if !matches!(outcome, Outcome::Promoted { .. }) {
                return Err(SimulationError::Setup(outcome.describe()));
            }
        }

        let released_at = cluster_now(&cluster);
        for (at, operation) in operations {
            let when = released_at.checked_add(at).unwrap_or(released_at);
            cluster.schedule(when, &namespace, rollout.name(), operation);
        }
        cluster.apply_rollout(&rollout);
        let cluster = cluster.with_real_time(real_time);
        Ok(Self {
            metrics: Scripted::new(released_at, scenario.metrics.clone()),
            cluster,
            rollout,
            released_at,
            timeout,
            success_on_pause: scenario.success_on_pause,
            created_services,
        })
    }

    /// The workload a `workloadRef` names, as it is now (after the run: as `scaleDown` left it).
    pub fn workload(&self) -> Option<crate::observed::WorkloadState> {
        let reference = self.rollout.spec.workload_ref.as_ref()?;
        self.cluster.workload(
            self.rollout.namespace_or_default(),
            &reference.kind,
            &reference.name,
        )
    }

    /// Drive the release to its end.
    pub async fn run(&self, reporter: &mut dyn Reporter) -> Result<Outcome, DriverError> {
        self.run_with(&self.metrics, reporter).await
    }

    /// Drive the release to its end with another metrics provider (a replay's recorded
    /// values).
    pub async fn run_with<M: crate::metrics::Metrics>(
        &self,
        metrics: &M,
        reporter: &mut dyn Reporter,
    ) -> Result<Outcome, DriverError> {
        Driver::new(&self.cluster, metrics, reporter)
            .run(
                self.rollout.namespace_or_default(),
                self.rollout.name(),
                &RunOptions {
                    timeout: Some(self.timeout),
                    success_on_pause: self.success_on_pause,
                    target_template: None,
                },
            )
            .await
    }
}

fn cluster_now(cluster: &MemoryCluster) -> Timestamp {
    use crate::cluster::Cluster;
    cluster.now()
}

fn pick_rollout(set: &ManifestSet, name: Option<&str>) -> Result<Rollout, SimulationError> {
    let rollouts: Vec<&Rollout> = set.rollouts().map(|(_, r)| r).collect();
    match name {
        Some(name) => rollouts
            .into_iter()
            .find(|r| r.name() == name)
            .cloned()
            .ok_or_else(|| SimulationError::RolloutNotFound(name.into())),
        None => match rollouts.as_slice() {
            [] => Err(SimulationError::NoRollout),
            [one] => Ok((*one).clone()),
            many => Err(SimulationError::SeveralRollouts(
                many.iter().map(|r| r.name()).collect::<Vec<_>>().join(", "),
            )),
        },
    }
}

/// The Service of a manifest, as the in-memory cluster keeps it.
fn service_state(name: &str, raw: &serde_json::Value) -> ServiceState {
    let map = |value: &serde_json::Value| -> BTreeMap<String, String> {
        value
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    ServiceState {
        name: name.to_string(),
        selector: map(&raw["spec"]["selector"]),
        annotations: map(&raw["metadata"]["annotations"]),
    }
}

/// Services a rollout names but the inputs lack: create them selecting the rollout's pods, as
/// they would exist in a real cluster. Returns their names.
fn add_missing_services(
    cluster: &MemoryCluster,
    rollout: &Rollout,
    namespace: &str,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if let Some(canary) = rollout.spec.canary() {
        names.extend([canary.canary_service.clone(), canary.stable_service.clone()]);
        if let Some(ping_pong) = &canary.ping_pong {
            names.extend([
                ping_pong.ping_service.clone(),
                ping_pong.pong_service.clone(),
            ]);
        }
    }
    if let Some(bg) = rollout.spec.blue_green() {
        names.extend([bg.active_service.clone(), bg.preview_service.clone()]);
    }
    let selector = rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    let mut created = Vec::new();
    for name in names.into_iter().filter(|n| !n.is_empty()) {
        if cluster.service(namespace, &name).is_none() {
            cluster.add_service(
                namespace,
                ServiceState {
                    name: name.clone(),
                    selector: selector.clone(),
                    annotations: BTreeMap::new(),
                },
            );
            created.push(name);
        }
    }
    created
}

/// The rollout with its previous pod template: another image, or the same one marked.
fn previous_version(rollout: &Rollout, image: Option<&str>) -> Rollout {
    let mut previous = rollout.clone();
    let template = previous.spec.template.get_or_insert_with(Default::default);
    match image {
        Some(image) => {
            if let Some(container) = template
                .spec
                .as_mut()
                .and_then(|s| s.containers.first_mut())
            {
                container.image = Some(image.to_string());
            }
        }
        None => {
            template
                .metadata
                .get_or_insert_with(Default::default)
                .annotations
                .get_or_insert_with(Default::default)
                .insert(PREVIOUS_REVISION_ANNOTATION.into(), "previous".into());
        }
    }
    previous
}
