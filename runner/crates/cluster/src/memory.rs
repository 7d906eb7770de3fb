//! An in-memory cluster on a virtual clock, for `simulate` and the driver's tests.
//!
//! ReplicaSets own pods that become ready after a delay and available after `minReadySeconds`;
//! pods honour the same fault annotations as the test control plane's fake kubelet
//! (`test.rollout-runner.io/ready-delay`, `never-ready`, `unready-after`). Waiting advances the
//! clock straight to the next thing that can happen (a pod becoming ready, a deadline), so an
//! hour-long canary simulates in milliseconds; `real_time` makes it wait for real instead.
//!
//! Scheduled interventions (promote, abort, ...) stand in for a person at a keyboard.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use rollout_runner_api::crd::{
    AnalysisRun, AnalysisRunStatus, AnalysisTemplate, ClusterAnalysisTemplate,
    DESIRED_REPLICAS_ANNOTATION, Experiment, ExperimentStatus, MANAGED_BY_ROLLOUTS_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, Rollout, RolloutStatus,
    SCALE_DOWN_DEADLINE_ANNOTATION, duration::parse_go_duration,
};
use rollout_runner_api::observed::{
    ExperimentObserved, Observed, ReplicaSetState, ServiceState, WorkloadState,
};
use rollout_runner_api::plan::{Action, Event, TrafficWeights};
use rollout_runner_core::operate::{self, Operation};

use super::{Cluster, ClusterError, Owner, Wake};

/// Pod-template annotation: become ready after this delay instead of the default.
pub const READY_DELAY_ANNOTATION: &str = "test.rollout-runner.io/ready-delay";
/// Pod-template annotation: run but never become ready.
pub const NEVER_READY_ANNOTATION: &str = "test.rollout-runner.io/never-ready";
/// Pod-template annotation: become unready this long after becoming ready.
pub const UNREADY_AFTER_ANNOTATION: &str = "test.rollout-runner.io/unready-after";

/// How pods behave when nothing in their template says otherwise.
#[derive(Debug, Clone)]
pub struct PodBehaviour {
    /// Time from creation to Ready.
    pub ready_delay: SignedDuration,
    /// Faults by container image (first container): applied as if the template carried the
    /// annotations, so a scenario can break a version without editing its manifests.
    pub image_faults: BTreeMap<String, PodFault>,
}

impl Default for PodBehaviour {
    fn default() -> Self {
        Self {
            ready_delay: SignedDuration::from_secs(5),
            image_faults: BTreeMap::new(),
        }
    }
}

/// A fault injected into the pods of an image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodFault {
    pub ready_delay: Option<SignedDuration>,
    pub never_ready: bool,
    pub unready_after: Option<SignedDuration>,
}

#[derive(Debug, Clone)]
struct Pod {
    /// When the pod becomes ready (`None`: never).
    ready_at: Option<Timestamp>,
    /// When a ready pod becomes unready again (`None`: never).
    unready_at: Option<Timestamp>,
}

impl Pod {
    fn ready(&self, now: Timestamp) -> bool {
        self.ready_at.is_some_and(|at| at <= now) && self.unready_at.is_none_or(|at| at > now)
    }

    fn available(&self, now: Timestamp, min_ready_seconds: i32) -> bool {
        self.ready(now)
            && self.ready_at.is_some_and(|at| {
                at.checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
                    .is_ok_and(|available_at| available_at <= now)
            })
    }
}

#[derive(Debug, Clone)]
struct ReplicaSet {
    owner: OwnerKey,
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    created_at: Timestamp,
    spec_replicas: i32,
    min_ready_seconds: i32,
    template: PodTemplateSpec,
    pods: Vec<Pod>,
}

/// The traffic a rollout's routers carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficState {
    pub weights: Option<TrafficWeights>,
    /// Every weight set, in order.
    pub history: Vec<TrafficWeights>,
    pub header_routes: Vec<String>,
    pub mirror_routes: Vec<String>,
    /// Number of router writes, for measuring.
    pub writes: u64,
}

#[derive(Default)]
struct State {
    now: Option<Timestamp>,
    rollouts: BTreeMap<(String, String), Rollout>,
    replica_sets: Vec<ReplicaSet>,
    services: BTreeMap<(String, String), ServiceState>,
    analysis_runs: BTreeMap<(String, String), AnalysisRun>,
    experiments: BTreeMap<(String, String), Experiment>,
    templates: BTreeMap<(String, String), AnalysisTemplate>,
    cluster_templates: BTreeMap<String, ClusterAnalysisTemplate>,
    secrets: BTreeMap<(String, String), BTreeMap<String, String>>,
    traffic: BTreeMap<(String, String), TrafficState>,
    /// Workloads a `workloadRef` may name, by kind, namespace and name, as JSON objects. A
    /// Deployment's pods live in a ReplicaSet entry it owns.
    workloads: BTreeMap<(String, String, String), serde_json::Value>,
    events: Vec<(Timestamp, String, Event)>,
    interventions: Vec<(Timestamp, String, String, Operation)>,
    uid: u64,
    api_writes: u64,
}

/// Runs before each write (actions and status writes); an error fails the write, as a runner
/// killed at that point would.
pub type WriteHook = Arc<dyn Fn() -> Result<(), ClusterError> + Send + Sync>;
/// Runs after each observation of a Rollout, with the time, the Rollout and what was observed.
pub type ObserveHook = Arc<dyn Fn(Timestamp, &Rollout, &Observed) + Send + Sync>;
/// Runs each time the driver is about to wait: the place to check invariants.
pub type WaitHook = Arc<dyn Fn(&MemoryCluster) + Send + Sync>;

/// Code run at chosen points of the driver's conversation with the cluster, for tests: check
/// invariants, record what the engine saw, kill the runner after a number of writes.
#[derive(Clone, Default)]
pub struct Hooks {
    pub before_write: Option<WriteHook>,
    pub after_observe: Option<ObserveHook>,
    pub before_wait: Option<WaitHook>,
}

/// The in-memory cluster.
pub struct MemoryCluster {
    state: Mutex<State>,
    behaviour: PodBehaviour,
    real_time: bool,
    hooks: Mutex<Hooks>,
}

/// The owner of a ReplicaSet: kind, namespace, name.
type OwnerKey = (&'static str, String, String);

fn owner_key(owner: Owner<'_>) -> OwnerKey {
    (
        owner.kind(),
        owner.namespace().to_string(),
        owner.name().to_string(),
    )
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_string(), name.to_string())
}

fn namespace_of(meta: &ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_else(|| "default".into())
}

/// The stored object with this metadata's namespace and name.
fn stored_mut<'a, T>(
    objects: &'a mut BTreeMap<(String, String), T>,
    kind: &'static str,
    meta: &ObjectMeta,
) -> Result<&'a mut T, ClusterError> {
    let name = meta.name.clone().unwrap_or_default();
    objects
        .get_mut(&key(&namespace_of(meta), &name))
        .ok_or(ClusterError::NotFound { kind, name })
}

fn template_annotation<'a>(template: &'a PodTemplateSpec, key: &str) -> Option<&'a str> {
    template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn first_image(template: &PodTemplateSpec) -> Option<&str> {
    template.spec.as_ref()?.containers.first()?.image.as_deref()
}

impl MemoryCluster {
    /// An empty cluster whose clock starts at `start`.
    pub fn new(start: Timestamp, behaviour: PodBehaviour) -> Self {
        Self {
            state: Mutex::new(State {
                now: Some(start),
                ..Default::default()
            }),
            behaviour,
            real_time: false,
            hooks: Mutex::new(Hooks::default()),
        }
    }

    /// Install test hooks (replacing any installed before).
    pub fn set_hooks(&self, hooks: Hooks) {
        *self.hooks.lock().unwrap_or_else(|e| e.into_inner()) = hooks;
    }

    /// The hooks, cloned so that none runs under a lock (a hook may call the cluster).
    fn hooks(&self) -> Hooks {
        self.hooks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn before_write(&self) -> Result<(), ClusterError> {
        match self.hooks().before_write {
            Some(hook) => hook(),
            None => Ok(()),
        }
    }

    /// Wait for real: the clock follows the wall clock while waiting.
    pub fn with_real_time(mut self, real_time: bool) -> Self {
        self.real_time = real_time;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update; the data is still
        // the best we have.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current_time(state: &State) -> Timestamp {
        state.now.unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn next_uid(state: &mut State) -> String {
        state.uid += 1;
        format!("00000000-0000-4000-8000-{:012x}", state.uid)
    }

    /// Create or replace a Rollout as `kubectl apply` would: a changed spec bumps generation.
    pub fn apply_rollout(&self, rollout: &Rollout) {
        let mut state = self.state();
        let now = Self::current_time(&state);
        let k = key(&namespace_of(&rollout.metadata), rollout.name());
        let uid = Self::next_uid(&mut state);
        let mut next = rollout.clone();
        match state.rollouts.get(&k) {
            Some(existing) => {
                next.metadata.uid = existing.metadata.uid.clone();
                next.metadata.creation_timestamp = existing.metadata.creation_timestamp.clone();
                next.status = existing.status.clone();
                let mut annotations = existing.metadata.annotations.clone().unwrap_or_default();
                annotations.extend(rollout.metadata.annotations.clone().unwrap_or_default());
                next.metadata.annotations = Some(annotations);
                let generation = existing.metadata.generation.unwrap_or(1);
                next.metadata.generation = Some(if existing.spec != rollout.spec {
                    generation + 1
                } else {
                    generation
                });
            }
            None => {
                next.metadata.uid = Some(uid);
                next.metadata.namespace = Some(k.0.clone());
                next.metadata.generation = Some(1);
                next.metadata.creation_timestamp = Some(Time(now));
                next.status = None;
            }
        }
        state.rollouts.insert(k, next);
        state.api_writes += 1;
    }

    /// Add a Service (selector and annotations as given).
    pub fn add_service(&self, namespace: &str, service: ServiceState) {
        let mut state = self.state();
        state
            .services
            .insert(key(namespace, &service.name), service);
    }

    /// Add a workload (Deployment, ReplicaSet or PodTemplate) from its JSON object. A
    /// Deployment starts with all its pods available, as one that has been running for a while.
    pub fn add_workload(&self, namespace: &str, kind: &str, object: &serde_json::Value) {
        let mut guard = self.state();
        let state = &mut *guard;
        let now = Self::current_time(state);
        let workload = WorkloadState::from_object(kind, object);
        if kind == "Deployment" {
            let owner: OwnerKey = ("Deployment", namespace.to_string(), workload.name.clone());
            state.replica_sets.retain(|rs| rs.owner != owner);
            let long_ago = now
                .checked_sub(SignedDuration::from_hours(24))
                .unwrap_or(now);
            let replicas = workload.replicas.unwrap_or(1);
            let pods = (0..replicas)
                .map(|_| Pod {
                    ready_at: Some(long_ago),
                    unready_at: None,
                })
                .collect();
            state.replica_sets.push(ReplicaSet {
                owner,
                name: workload.name.clone(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                created_at: long_ago,
                spec_replicas: replicas,
                min_ready_seconds: 0,
                template: workload.template.clone().unwrap_or_default(),
                pods,
            });
        }
        state.workloads.insert(
            (kind.to_string(), namespace.to_string(), workload.name),
            object.clone(),
        );
    }

    /// A workload as a `workloadRef` would see it now (a Deployment's replicas and available
    /// pods as its pods are).
    pub fn workload(&self, namespace: &str, kind: &str, name: &str) -> Option<WorkloadState> {
        Self::workload_locked(&self.state(), namespace, kind, name)
    }

    fn workload_locked(
        state: &State,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Option<WorkloadState> {
        let object =
            state
                .workloads
                .get(&(kind.to_string(), namespace.to_string(), name.to_string()))?;
        let mut workload = WorkloadState::from_object(kind, object);
        let owner: OwnerKey = ("Deployment", namespace.to_string(), name.to_string());
        if let Some(pods) = state.replica_sets.iter().find(|rs| rs.owner == owner) {
            let now = Self::current_time(state);
            workload.replicas = Some(pods.spec_replicas);
            workload.available_replicas = Self::observe_replica_set(pods, now).available_replicas;
        }
        Some(workload)
    }

    pub fn add_analysis_template(&self, template: AnalysisTemplate) {
        let mut state = self.state();
        let k = key(
            &namespace_of(&template.metadata),
            template.metadata.name.as_deref().unwrap_or(""),
        );
        state.templates.insert(k, template);
    }

    pub fn add_cluster_analysis_template(&self, template: ClusterAnalysisTemplate) {
        let mut state = self.state();
        let name = template.metadata.name.clone().unwrap_or_default();
        state.cluster_templates.insert(name, template);
    }

    pub fn add_secret(&self, namespace: &str, name: &str, data: BTreeMap<String, String>) {
        self.state().secrets.insert(key(namespace, name), data);
    }

    /// Perform `operation` on the Rollout when the clock reaches `at`.
    pub fn schedule(&self, at: Timestamp, namespace: &str, name: &str, operation: Operation) {
        self.state()
            .interventions
            .push((at, namespace.to_string(), name.to_string(), operation));
    }

    /// Perform an operation now, as the CLI would.
    pub fn operate(
        &self,
        namespace: &str,
        name: &str,
        operation: &Operation,
    ) -> Result<String, String> {
        let mut state = self.state();
        Self::operate_locked(&mut state, namespace, name, operation)
    }

    fn operate_locked(
        state: &mut State,
        namespace: &str,
        name: &str,
        operation: &Operation,
    ) -> Result<String, String> {
        let k = key(namespace, name);
        let rollout = state
            .rollouts
            .get(&k)
            .ok_or_else(|| format!("rollout `{namespace}/{name}` not found"))?;
        let (changed, message) = operate::perform(rollout, operation)?;
        let spec_changed = changed.spec != rollout.spec;
        let generation = rollout.metadata.generation.unwrap_or(1);
        let mut changed = changed;
        if spec_changed {
            changed.metadata.generation = Some(generation + 1);
        }
        state.rollouts.insert(k, changed);
        Ok(message)
    }

    /// The traffic state of a rollout's routers.
    pub fn traffic(&self, namespace: &str, rollout: &str) -> TrafficState {
        self.state()
            .traffic
            .get(&key(namespace, rollout))
            .cloned()
            .unwrap_or_default()
    }

    /// All events recorded so far, with their time and rollout.
    pub fn events(&self) -> Vec<(Timestamp, String, Event)> {
        self.state().events.clone()
    }

    /// A service's current state.
    pub fn service(&self, namespace: &str, name: &str) -> Option<ServiceState> {
        self.state().services.get(&key(namespace, name)).cloned()
    }

    /// Every AnalysisRun, for inspection.
    pub fn analysis_runs(&self) -> Vec<AnalysisRun> {
        self.state().analysis_runs.values().cloned().collect()
    }

    /// The ReplicaSets of a rollout as observed now.
    pub fn replica_sets(&self, namespace: &str, rollout: &str) -> Vec<ReplicaSetState> {
        let state = self.state();
        let now = Self::current_time(&state);
        let owner = ("Rollout", namespace.to_string(), rollout.to_string());
        state
            .replica_sets
            .iter()
            .filter(|rs| rs.owner == owner)
            .map(|rs| Self::observe_replica_set(rs, now))
            .collect()
    }

    /// Every Experiment, for inspection.
    pub fn experiments(&self) -> Vec<Experiment> {
        self.state().experiments.values().cloned().collect()
    }

    /// The ReplicaSets of an experiment as observed now.
    pub fn experiment_replica_sets(
        &self,
        namespace: &str,
        experiment: &str,
    ) -> Vec<ReplicaSetState> {
        let state = self.state();
        let now = Self::current_time(&state);
        let owner = ("Experiment", namespace.to_string(), experiment.to_string());
        state
            .replica_sets
            .iter()
            .filter(|rs| rs.owner == owner)
            .map(|rs| Self::observe_replica_set(rs, now))
            .collect()
    }

    /// How many writes the driver made (API calls, in a real cluster).
    pub fn api_writes(&self) -> u64 {
        self.state().api_writes
    }

    fn observe_replica_set(rs: &ReplicaSet, now: Timestamp) -> ReplicaSetState {
        let ready = rs.pods.iter().filter(|p| p.ready(now)).count();
        let available = rs
            .pods
            .iter()
            .filter(|p| p.available(now, rs.min_ready_seconds))
            .count();
        ReplicaSetState {
            name: rs.name.clone(),
            labels: rs.labels.clone(),
            annotations: rs.annotations.clone(),
            created_at: rs.created_at,
            spec_replicas: rs.spec_replicas,
            replicas: i32::try_from(rs.pods.len()).unwrap_or(i32::MAX),
            ready_replicas: i32::try_from(ready).unwrap_or(i32::MAX),
            available_replicas: i32::try_from(available).unwrap_or(i32::MAX),
            min_ready_seconds: rs.min_ready_seconds,
            template: rs.template.clone(),
            deleting: false,
            replica_failure: None,
        }
    }

    fn fault_for(&self, template: &PodTemplateSpec) -> PodFault {
        let mut fault = first_image(template)
            .and_then(|image| self.behaviour.image_faults.get(image))
            .cloned()
            .unwrap_or_default();
        if let Some(delay) = template_annotation(template, READY_DELAY_ANNOTATION)
            .and_then(|d| parse_go_duration(d).ok())
        {
            fault.ready_delay = Some(delay);
        }
        if template_annotation(template, NEVER_READY_ANNOTATION) == Some("true") {
            fault.never_ready = true;
        }
        if let Some(after) = template_annotation(template, UNREADY_AFTER_ANNOTATION)
            .and_then(|d| parse_go_duration(d).ok())
        {
            fault.unready_after = Some(after);
        }
        fault
    }

    fn new_pod(&self, template: &PodTemplateSpec, now: Timestamp) -> Pod {
        let fault = self.fault_for(template);
        let delay = fault.ready_delay.unwrap_or(self.behaviour.ready_delay);
        let ready_at = if fault.never_ready {
            None
        } else {
            now.checked_add(delay).ok()
        };
        let unready_at = match (ready_at, fault.unready_after) {
            (Some(ready), Some(after)) => ready.checked_add(after).ok(),
            _ => None,
        };
        Pod {
            ready_at,
            unready_at,
        }
    }

    fn scale(&self, rs: &mut ReplicaSet, to: i32, now: Timestamp) {
        rs.spec_replicas = to;
        let target = usize::try_from(to).unwrap_or(0);
        while rs.pods.len() < target {
            let pod = self.new_pod(&rs.template, now);
            rs.pods.push(pod);
        }
        if rs.pods.len() > target {
            // Like the ReplicaSet controller: unready pods go first, then the youngest.
            rs.pods
                .sort_by_key(|p| (p.ready(now), std::cmp::Reverse(p.ready_at)));
            let excess = rs.pods.len() - target;
            rs.pods.drain(..excess);
        }
    }

    fn observe_locked(&self, rollout: &Rollout) -> Observed {
        let state = self.state();
        let now = Self::current_time(&state);
        let namespace = rollout.namespace_or_default().to_string();
        let owner = owner_key(Owner::Rollout(rollout));
        let uid = rollout.metadata.uid.as_deref();
        Observed {
            replica_sets: state
                .replica_sets
                .iter()
                .filter(|rs| rs.owner == owner)
                .map(|rs| Self::observe_replica_set(rs, now))
                .collect(),
            services: state
                .services
                .iter()
                .filter(|((ns, _), _)| *ns == namespace)
                .map(|((_, name), svc)| (name.clone(), svc.clone()))
                .collect(),
            analysis_runs: state
                .analysis_runs
                .values()
                .filter(|ar| Self::owned_by(&ar.metadata, uid))
                .cloned()
                .collect(),
            experiments: state
                .experiments
                .values()
                .filter(|ex| Self::owned_by(&ex.metadata, uid))
                .cloned()
                .collect(),
            analysis_templates: state
                .templates
                .iter()
                .filter(|((ns, _), _)| *ns == namespace)
                .map(|((_, name), t)| (name.clone(), t.clone()))
                .collect(),
            cluster_analysis_templates: state.cluster_templates.clone(),
            traffic_weight_verified: None,
            workload: rollout.spec.workload_ref.as_ref().and_then(|reference| {
                Self::workload_locked(&state, &namespace, &reference.kind, &reference.name)
            }),
            traffic_managed_routes: state
                .traffic
                .get(&key(&namespace, rollout.name()))
                .map(|t| {
                    t.header_routes
                        .iter()
                        .chain(&t.mirror_routes)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The next moment a pod changes state, after `now`.
    fn next_pod_change(state: &State, now: Timestamp) -> Option<Timestamp> {
        state
            .replica_sets
            .iter()
            .flat_map(|rs| {
                let min_ready = SignedDuration::from_secs(i64::from(rs.min_ready_seconds));
                rs.pods.iter().flat_map(move |pod| {
                    let available = pod.ready_at.and_then(|at| at.checked_add(min_ready).ok());
                    [pod.ready_at, available, pod.unready_at]
                })
            })
            .flatten()
            .filter(|at| *at > now)
            .min()
    }

    fn owned_by(meta: &ObjectMeta, owner_uid: Option<&str>) -> bool {
        meta.owner_references
            .iter()
            .flatten()
            .any(|r| Some(r.uid.as_str()) == owner_uid)
    }
}

impl Cluster for MemoryCluster {
    fn now(&self) -> Timestamp {
        Self::current_time(&self.state())
    }

    async fn get_rollout(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Rollout>, ClusterError> {
        Ok(self.state().rollouts.get(&key(namespace, name)).cloned())
    }

    async fn observe(&self, rollout: &Rollout) -> Result<Observed, ClusterError> {
        let observed = self.observe_locked(rollout);
        if let Some(hook) = self.hooks().after_observe {
            hook(self.now(), rollout, &observed);
        }
        Ok(observed)
    }

    async fn observe_experiment(
        &self,
        experiment: &Experiment,
    ) -> Result<ExperimentObserved, ClusterError> {
        let state = self.state();
        let now = Self::current_time(&state);
        let namespace = namespace_of(&experiment.metadata);
        let owner = owner_key(Owner::Experiment(experiment));
        let uid = experiment.metadata.uid.as_deref();
        Ok(ExperimentObserved {
            replica_sets: state
                .replica_sets
                .iter()
                .filter(|rs| rs.owner == owner)
                .map(|rs| Self::observe_replica_set(rs, now))
                .collect(),
            analysis_runs: state
                .analysis_runs
                .values()
                .filter(|ar| Self::owned_by(&ar.metadata, uid))
                .cloned()
                .collect(),
            analysis_templates: state
                .templates
                .iter()
                .filter(|((ns, _), _)| *ns == namespace)
                .map(|((_, name), t)| (name.clone(), t.clone()))
                .collect(),
            cluster_analysis_templates: state.cluster_templates.clone(),
        })
    }

    async fn apply(&self, owner: Owner<'_>, action: &Action) -> Result<(), ClusterError> {
        self.before_write()?;
        let mut guard = self.state();
        let state = &mut *guard;
        let now = Self::current_time(state);
        let namespace = owner.namespace().to_string();
        let rollout_key = key(&namespace, owner.name());
        let owner_reference = owner.reference();
        let owner = owner_key(owner);
        state.api_writes += 1;
        let find_rs = |state: &mut State, name: &str| -> Result<usize, ClusterError> {
            state
                .replica_sets
                .iter()
                .position(|rs| rs.owner == owner && rs.name == name)
                .ok_or_else(|| ClusterError::NotFound {
                    kind: "ReplicaSet",
                    name: name.to_string(),
                })
        };
        match action {
            Action::SetRolloutReplicas { replicas } => {
                if let Some(r) = state.rollouts.get_mut(&rollout_key) {
                    r.spec.replicas = Some(*replicas);
                    r.metadata.generation = Some(r.metadata.generation.unwrap_or(1) + 1);
                }
            }
            Action::SetRolloutRevision { revision } => {
                if let Some(r) = state.rollouts.get_mut(&rollout_key) {
                    r.metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(REVISION_ANNOTATION.into(), revision.clone());
                }
            }
            Action::CreateReplicaSet(new) => {
                if state
                    .replica_sets
                    .iter()
                    .any(|rs| rs.name == new.name && rs.owner == owner)
                {
                    return Err(ClusterError::Conflict {
                        kind: "ReplicaSet",
                        name: new.name.clone(),
                    });
                }
                state.replica_sets.push(ReplicaSet {
                    owner: owner.clone(),
                    name: new.name.clone(),
                    labels: new.labels.clone(),
                    annotations: new.annotations.clone(),
                    created_at: now,
                    spec_replicas: 0,
                    min_ready_seconds: new.min_ready_seconds,
                    template: new.template.clone(),
                    pods: Vec::new(),
                });
            }
            Action::UpdateReplicaSetMetadata {
                name,
                annotations,
                min_ready_seconds,
            } => {
                let index = find_rs(state, name)?;
                let rs = &mut state.replica_sets[index];
                for (k, v) in annotations {
                    match v {
                        Some(v) => rs.annotations.insert(k.clone(), v.clone()),
                        None => rs.annotations.remove(k),
                    };
                }
                rs.min_ready_seconds = *min_ready_seconds;
            }
            Action::ScaleReplicaSet {
                name,
                to,
                desired_replicas_annotation,
                remove_scale_down_deadline,
                ..
            } => {
                let index = find_rs(state, name)?;
                let mut rs = state.replica_sets[index].clone();
                rs.annotations.insert(
                    DESIRED_REPLICAS_ANNOTATION.into(),
                    desired_replicas_annotation.to_string(),
                );
                if *remove_scale_down_deadline {
                    rs.annotations.remove(SCALE_DOWN_DEADLINE_ANNOTATION);
                }
                self.scale(&mut rs, *to, now);
                state.replica_sets[index] = rs;
            }
            Action::SetScaleDownDeadline { name, deadline } => {
                let index = find_rs(state, name)?;
                let rs = &mut state.replica_sets[index];
                match deadline {
                    Some(at) => rs
                        .annotations
                        .insert(SCALE_DOWN_DEADLINE_ANNOTATION.into(), at.to_string()),
                    None => rs.annotations.remove(SCALE_DOWN_DEADLINE_ANNOTATION),
                };
            }
            Action::DeleteReplicaSet { name } => {
                state
                    .replica_sets
                    .retain(|rs| !(rs.owner == owner && rs.name == *name));
            }
            Action::SwitchServiceSelector {
                service,
                to,
                add_managed_by,
                ..
            } => {
                let svc = state
                    .services
                    .get_mut(&key(&namespace, service))
                    .ok_or_else(|| ClusterError::NotFound {
                        kind: "Service",
                        name: service.clone(),
                    })?;
                svc.selector
                    .insert(POD_TEMPLATE_HASH_LABEL.into(), to.clone());
                if let Some(managed_by) = add_managed_by {
                    svc.annotations
                        .insert(MANAGED_BY_ROLLOUTS_ANNOTATION.into(), managed_by.clone());
                }
            }
            Action::SetTrafficWeight(weights) => {
                let traffic = state.traffic.entry(rollout_key.clone()).or_default();
                traffic.weights = Some(weights.clone());
                traffic.history.push(weights.clone());
                traffic.writes += 1;
            }
            Action::UpdateTrafficHash { .. } => {
                state.traffic.entry(rollout_key.clone()).or_default().writes += 1;
            }
            Action::SetHeaderRoute(route) => {
                let traffic = state.traffic.entry(rollout_key.clone()).or_default();
                traffic.header_routes.retain(|r| *r != route.name);
                if route.r#match.is_some() {
                    traffic.header_routes.push(route.name.clone());
                }
                traffic.writes += 1;
            }
            Action::SetMirrorRoute(route) => {
                let traffic = state.traffic.entry(rollout_key.clone()).or_default();
                traffic.mirror_routes.retain(|r| *r != route.name);
                if route.r#match.is_some() {
                    traffic.mirror_routes.push(route.name.clone());
                }
                traffic.writes += 1;
            }
            Action::RemoveManagedRoutes => {
                let traffic = state.traffic.entry(rollout_key.clone()).or_default();
                traffic.header_routes.clear();
                traffic.mirror_routes.clear();
                traffic.writes += 1;
            }
            Action::CreateAnalysisRun(run) => {
                let name = run.metadata.name.clone().unwrap_or_default();
                let k = key(&namespace, &name);
                if state.analysis_runs.contains_key(&k) {
                    return Err(ClusterError::Conflict {
                        kind: "AnalysisRun",
                        name,
                    });
                }
                let mut run = (**run).clone();
                run.metadata.namespace = Some(namespace.clone());
                run.metadata.uid = Some(Self::next_uid(state));
                run.metadata.creation_timestamp = Some(Time(now));
                run.metadata.owner_references = Some(vec![owner_reference]);
                state.analysis_runs.insert(k, run);
            }
            Action::TerminateAnalysisRun { name } => {
                if let Some(run) = state.analysis_runs.get_mut(&key(&namespace, name)) {
                    run.spec.terminate = true;
                }
            }
            Action::DeleteAnalysisRun { name } => {
                state.analysis_runs.remove(&key(&namespace, name));
            }
            Action::CreateExperiment(experiment) => {
                let name = experiment.metadata.name.clone().unwrap_or_default();
                let mut experiment = (**experiment).clone();
                experiment.metadata.namespace = Some(namespace.clone());
                experiment.metadata.uid = Some(Self::next_uid(state));
                experiment.metadata.creation_timestamp = Some(Time(now));
                experiment.metadata.owner_references = Some(vec![owner_reference]);
                state.experiments.insert(key(&namespace, &name), experiment);
            }
            Action::TerminateExperiment { name } => {
                if let Some(ex) = state.experiments.get_mut(&key(&namespace, name)) {
                    ex.spec.terminate = true;
                }
            }
            Action::DeleteExperiment { name } => {
                state.experiments.remove(&key(&namespace, name));
            }
            Action::CreateService { name, selector, .. } => {
                let service = ServiceState {
                    name: name.clone(),
                    selector: selector.clone(),
                    annotations: BTreeMap::new(),
                };
                state.services.insert(key(&namespace, name), service);
            }
            Action::DeleteService { name } => {
                state.services.remove(&key(&namespace, name));
            }
            Action::ScaleDeployment { name, to, .. } => {
                let deployment: OwnerKey = ("Deployment", namespace.clone(), name.clone());
                let object = state
                    .workloads
                    .get_mut(&("Deployment".to_string(), namespace.clone(), name.clone()))
                    .ok_or_else(|| ClusterError::NotFound {
                        kind: "Deployment",
                        name: name.clone(),
                    })?;
                object["spec"]["replicas"] = (*to).into();
                if let Some(index) = state
                    .replica_sets
                    .iter()
                    .position(|rs| rs.owner == deployment)
                {
                    let mut pods = state.replica_sets[index].clone();
                    self.scale(&mut pods, *to, now);
                    state.replica_sets[index] = pods;
                }
            }
        }
        Ok(())
    }

    async fn write_status(
        &self,
        rollout: &Rollout,
        status: &RolloutStatus,
    ) -> Result<(), ClusterError> {
        self.before_write()?;
        let mut state = self.state();
        let k = key(rollout.namespace_or_default(), rollout.name());
        let stored = state
            .rollouts
            .get_mut(&k)
            .ok_or_else(|| ClusterError::NotFound {
                kind: "Rollout",
                name: rollout.name().to_string(),
            })?;
        // Round-trip through JSON as the API server would, so both worlds see the same data.
        let json = serde_json::to_value(status).map_err(|e| ClusterError::Api(e.to_string()))?;
        stored.status =
            Some(serde_json::from_value(json).map_err(|e| ClusterError::Api(e.to_string()))?);
        state.api_writes += 1;
        Ok(())
    }

    async fn write_experiment_status(
        &self,
        experiment: &Experiment,
        status: &ExperimentStatus,
    ) -> Result<(), ClusterError> {
        self.before_write()?;
        let mut guard = self.state();
        let state = &mut *guard;
        let stored = stored_mut(&mut state.experiments, "Experiment", &experiment.metadata)?;
        stored.status = Some(status.clone());
        state.api_writes += 1;
        Ok(())
    }

    async fn write_analysis_run_status(
        &self,
        run: &AnalysisRun,
        status: &AnalysisRunStatus,
    ) -> Result<(), ClusterError> {
        self.before_write()?;
        let mut guard = self.state();
        let state = &mut *guard;
        let stored = stored_mut(&mut state.analysis_runs, "AnalysisRun", &run.metadata)?;
        stored.status = Some(status.clone());
        state.api_writes += 1;
        Ok(())
    }

    async fn read_secret(
        &self,
        namespace: &str,
        name: &str,
        secret_key: &str,
    ) -> Result<String, ClusterError> {
        let state = self.state();
        let secret =
            state
                .secrets
                .get(&key(namespace, name))
                .ok_or_else(|| ClusterError::NotFound {
                    kind: "Secret",
                    name: name.to_string(),
                })?;
        secret.get(secret_key).cloned().ok_or_else(|| {
            ClusterError::Api(format!(
                "key '{secret_key}' does not exist in secret '{name}'"
            ))
        })
    }

    async fn record_events(&self, owner: Owner<'_>, events: &[Event]) {
        let mut state = self.state();
        let now = Self::current_time(&state);
        for event in events {
            state
                .events
                .push((now, owner.name().to_string(), event.clone()));
        }
    }

    async fn wait(&self, deadline: Option<Timestamp>, limit: Option<Timestamp>) -> Wake {
        if let Some(hook) = self.hooks().before_wait {
            hook(self);
        }
        let (now, next_pod, next_intervention) = {
            let state = self.state();
            let now = Self::current_time(&state);
            let intervention = state.interventions.iter().map(|(at, ..)| *at).min();
            (now, Self::next_pod_change(&state, now), intervention)
        };
        let Some(natural) = [deadline, next_pod, next_intervention]
            .into_iter()
            .flatten()
            .min()
        else {
            return Wake::Idle;
        };
        let next = limit.map_or(natural, |limit| natural.min(limit));
        if next > now {
            if self.real_time
                && let Ok(span) = std::time::Duration::try_from(next.duration_since(now))
            {
                tokio::time::sleep(span).await;
            }
            self.state().now = Some(next);
        }
        if next < natural && Some(next) == limit {
            return Wake::Limit;
        }
        let mut state = self.state();
        let due: Vec<(Timestamp, String, String, Operation)> = state
            .interventions
            .iter()
            .filter(|(at, ..)| *at <= next)
            .cloned()
            .collect();
        state.interventions.retain(|(at, ..)| *at > next);
        for (_, namespace, name, operation) in &due {
            let message = Self::operate_locked(&mut state, namespace, name, operation);
            let event = Event {
                event_type: rollout_runner_api::plan::EventType::Normal,
                reason: "Intervention".into(),
                message: message.unwrap_or_else(|e| e),
            };
            state.events.push((next, name.clone(), event));
        }
        if Some(next) == deadline && due.is_empty() {
            Wake::Deadline
        } else {
            Wake::Change
        }
    }
}
