//! The real API server.
//!
//! Children are created with an owner reference to their Rollout or Experiment; targeted
//! changes (scale, annotations, selectors, `spec.terminate`) are JSON merge patches with field
//! manager [`FIELD_MANAGER`], as Argo's controller patches them; statuses are written through
//! the status subresource as a merge patch of what changed since they were read, so a field
//! someone else owns is never dropped.
//!
//! Waiting is watch-driven: watchers on the namespace's Rollouts, ReplicaSets, Services,
//! AnalysisRuns and Experiments bump a change counter, and [`Cluster::wait`] returns on the
//! first change or when the engine's deadline passes. There is no polling interval.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{
    ObjectReference, Secret, Service, ServicePort as KubeServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

use rollout_runner_api::crd::{
    AnalysisRun, AnalysisRunStatus, AnalysisTemplate, ClusterAnalysisTemplate,
    DESIRED_REPLICAS_ANNOTATION, Experiment, ExperimentStatus, MANAGED_BY_ROLLOUTS_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, Rollout, RolloutStatus,
    SCALE_DOWN_DEADLINE_ANNOTATION,
};
use rollout_runner_api::observed::{ExperimentObserved, Observed, ReplicaSetState, ServiceState};
use rollout_runner_api::plan::{Action, Event, EventType, NewReplicaSet, ServicePort};
pub use rollout_runner_core::operate::merge_diff;
use rollout_runner_traffic::{Traffic, TrafficError};

use super::lease::LeaseFence;
use super::{Cluster, ClusterError, Owner, Wake};

pub use rollout_runner_api::FIELD_MANAGER;

/// Retries of a read on a transient error (back-off 0.4 s doubling: about 12 s in all).
const READ_RETRIES: u32 = 5;

/// Kubernetes rejects event notes longer than this.
const MAX_EVENT_NOTE: usize = 1024;

impl From<kube::Error> for ClusterError {
    fn from(error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) if status.is_conflict() || status.is_already_exists() => {
                ClusterError::Conflict {
                    kind: "object",
                    name: status.message.clone(),
                }
            }
            kube::Error::Api(status) if status.code == 429 || status.code >= 500 => {
                ClusterError::Unavailable(status.message.clone())
            }
            kube::Error::Api(status) => ClusterError::Api(status.message.clone()),
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => {
                ClusterError::Unavailable(error.to_string())
            }
            _ => ClusterError::Api(error.to_string()),
        }
    }
}

/// Map a kube error, naming the object it was about.
fn about(kind: &'static str, name: &str) -> impl FnOnce(kube::Error) -> ClusterError {
    let name = name.to_string();
    move |error| match &error {
        kube::Error::Api(status) if status.is_not_found() => ClusterError::NotFound { kind, name },
        kube::Error::Api(status) if status.is_conflict() || status.is_already_exists() => {
            ClusterError::Conflict { kind, name }
        }
        _ => {
            let mapped = ClusterError::from(error);
            match mapped {
                ClusterError::Api(message) => {
                    ClusterError::Api(format!("{kind} `{name}`: {message}"))
                }
                other => other,
            }
        }
    }
}

/// A router failure as a cluster error: API errors keep their kind (a conflict is retried).
fn traffic_error(error: TrafficError) -> ClusterError {
    match error {
        TrafficError::Api { kind, name, source } => about(kind, &name)(source),
        other => ClusterError::Api(other.to_string()),
    }
}

/// The watchers of one namespace; they stop when the last handle is dropped.
struct Watchers {
    sender: watch::Sender<u64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A Kubernetes API server, seen from one namespace.
pub struct KubeCluster {
    client: Client,
    namespace: String,
    traffic: Arc<Traffic>,
    recorder: Recorder,
    watchers: Arc<Watchers>,
    changes: Mutex<watch::Receiver<u64>>,
    /// When set, every write first checks that this process holds the Rollout's Lease.
    fence: Option<Arc<Fence>>,
}

/// A Lease fence and until when its last check showed the Lease ours.
struct Fence {
    lease: LeaseFence,
    valid_until: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Fence {
    /// How long the Lease is ours: from the last check while it lasts, else read again.
    async fn remaining(&self, read_again: bool) -> Result<std::time::Duration, ClusterError> {
        let now = std::time::Instant::now();
        let cached = *self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        if !read_again && let Some(until) = cached.filter(|until| *until > now) {
            return Ok(until - now);
        }
        let checked = self.lease.remaining().await;
        let mut valid_until = self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        *valid_until = checked
            .as_ref()
            .ok()
            .map(|left| std::time::Instant::now() + *left);
        checked
    }
}

impl Clone for KubeCluster {
    /// Another handle on the same watchers, with its own notion of "changed since I looked".
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            traffic: Arc::clone(&self.traffic),
            recorder: self.recorder.clone(),
            watchers: Arc::clone(&self.watchers),
            changes: Mutex::new(self.watchers.sender.subscribe()),
            fence: self.fence.clone(),
        }
    }
}

impl KubeCluster {
    /// Start watching `namespace`. Must run inside a tokio runtime.
    pub fn new(client: Client, namespace: &str) -> Self {
        let (sender, receiver) = watch::channel(0u64);
        let tasks = vec![
            spawn_watch(
                Api::<Rollout>::namespaced(client.clone(), namespace),
                &sender,
            ),
            spawn_watch(
                Api::<ReplicaSet>::namespaced(client.clone(), namespace),
                &sender,
            ),
            spawn_watch(
                Api::<Service>::namespaced(client.clone(), namespace),
                &sender,
            ),
            spawn_watch(
                Api::<AnalysisRun>::namespaced(client.clone(), namespace),
                &sender,
            ),
            spawn_watch(
                Api::<Experiment>::namespaced(client.clone(), namespace),
                &sender,
            ),
        ];
        Self::with_watchers(client, namespace, Watchers { sender, tasks }, receiver)
    }

    /// A cluster without watchers of its own, for a caller that watches already (the
    /// controller's kube-runtime watches wake it instead): [`Cluster::wait`] only sleeps.
    pub fn unwatched(client: Client, namespace: &str) -> Self {
        let (sender, receiver) = watch::channel(0u64);
        let watchers = Watchers {
            sender,
            tasks: Vec::new(),
        };
        Self::with_watchers(client, namespace, watchers, receiver)
    }

    fn with_watchers(
        client: Client,
        namespace: &str,
        watchers: Watchers,
        changes: watch::Receiver<u64>,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: std::env::var("HOSTNAME").ok(),
            },
        );
        Self {
            traffic: Arc::new(Traffic::new(client.clone())),
            client,
            namespace: namespace.to_string(),
            recorder,
            watchers: Arc::new(watchers),
            changes: Mutex::new(changes),
            fence: None,
        }
    }

    /// The same cluster, writing only while `fence` shows this process holds the Lease.
    pub fn with_fence(&self, fence: LeaseFence) -> Self {
        let mut fenced = self.clone();
        fenced.fence = Some(Arc::new(Fence {
            lease: fence,
            valid_until: std::sync::Mutex::new(None),
        }));
        fenced
    }

    /// Runs `write` if this process holds the Lease, and gives it only until the Lease would
    /// expire: a write held up longer (a partition) is abandoned rather than landing late.
    async fn fenced<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, ClusterError>>,
    ) -> Result<T, ClusterError> {
        let Some(fence) = &self.fence else {
            return write.await;
        };
        let left = fence.remaining(false).await?;
        tokio::time::timeout(left, write).await.unwrap_or_else(|_| {
            Err(ClusterError::Fenced(format!(
                "a write did not finish within the {left:?} left on the Lease"
            )))
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn merge_patch<K>(
        &self,
        namespace: &str,
        kind: &'static str,
        name: &str,
        patch: Value,
    ) -> Result<(), ClusterError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        K::DynamicType: Default,
    {
        self.api::<K>(namespace)
            .patch(name, &patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(about(kind, name))?;
        Ok(())
    }

    async fn delete<K>(
        &self,
        namespace: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<(), ClusterError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        K::DynamicType: Default,
    {
        match self
            .api::<K>(namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            // Already gone: the action's goal is met.
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
            Err(error) => Err(about(kind, name)(error)),
        }
    }

    async fn create<K>(
        &self,
        namespace: &str,
        kind: &'static str,
        object: &K,
    ) -> Result<(), ClusterError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        K::DynamicType: Default,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        self.api::<K>(namespace)
            .create(&params, object)
            .await
            .map_err(about(kind, &name))?;
        Ok(())
    }

    /// Write `.status` as a merge patch of what changed since `old` was read.
    async fn patch_status<K>(
        &self,
        meta: &ObjectMeta,
        kind: &'static str,
        old: Option<&impl Serialize>,
        new: &impl Serialize,
    ) -> Result<(), ClusterError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
        K::DynamicType: Default,
    {
        let old = match old {
            Some(old) => serde_json::to_value(old),
            None => Ok(Value::Object(Default::default())),
        }
        .map_err(|e| ClusterError::Api(e.to_string()))?;
        let new = serde_json::to_value(new).map_err(|e| ClusterError::Api(e.to_string()))?;
        let Some(diff) = merge_diff(&old, &new) else {
            return Ok(());
        };
        let name = meta.name.clone().unwrap_or_default();
        let namespace = meta
            .namespace
            .clone()
            .unwrap_or_else(|| self.namespace.clone());
        self.api::<K>(&namespace)
            .patch_status(
                &name,
                &patch_params(),
                &Patch::Merge(&json!({ "status": diff })),
            )
            .await
            .map_err(about(kind, &name))?;
        Ok(())
    }
}

impl KubeCluster {
    /// One action, unfenced.
    async fn apply_action(&self, owner: Owner<'_>, action: &Action) -> Result<(), ClusterError> {
        let namespace = owner.namespace();
        let name = owner.name();
        match action {
            Action::SetRolloutReplicas { replicas } => {
                self.merge_patch::<Rollout>(
                    namespace,
                    "Rollout",
                    name,
                    json!({"spec": {"replicas": replicas}}),
                )
                .await
            }
            Action::SetRolloutRevision { revision } => {
                self.merge_patch::<Rollout>(
                    namespace,
                    "Rollout",
                    name,
                    json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision}}}),
                )
                .await
            }
            Action::CreateReplicaSet(new) => {
                self.create(namespace, "ReplicaSet", &new_replica_set(new, owner))
                    .await
            }
            Action::UpdateReplicaSetMetadata {
                name,
                annotations,
                min_ready_seconds,
            } => {
                self.merge_patch::<ReplicaSet>(
                    namespace,
                    "ReplicaSet",
                    name,
                    json!({
                        "metadata": {"annotations": annotations},
                        "spec": {"minReadySeconds": min_ready_seconds},
                    }),
                )
                .await
            }
            Action::ScaleReplicaSet {
                name,
                to,
                desired_replicas_annotation,
                remove_scale_down_deadline,
                ..
            } => {
                let mut annotations = serde_json::Map::new();
                annotations.insert(
                    DESIRED_REPLICAS_ANNOTATION.into(),
                    desired_replicas_annotation.to_string().into(),
                );
                if *remove_scale_down_deadline {
                    annotations.insert(SCALE_DOWN_DEADLINE_ANNOTATION.into(), Value::Null);
                }
                self.merge_patch::<ReplicaSet>(
                    namespace,
                    "ReplicaSet",
                    name,
                    json!({"metadata": {"annotations": annotations}, "spec": {"replicas": to}}),
                )
                .await
            }
            Action::SetScaleDownDeadline { name, deadline } => {
                let value = deadline.map(|at| at.to_string());
                self.merge_patch::<ReplicaSet>(
                    namespace,
                    "ReplicaSet",
                    name,
                    json!({"metadata": {"annotations": {SCALE_DOWN_DEADLINE_ANNOTATION: value}}}),
                )
                .await
            }
            Action::DeleteReplicaSet { name } => {
                self.delete::<ReplicaSet>(namespace, "ReplicaSet", name)
                    .await
            }
            Action::SwitchServiceSelector {
                service,
                to,
                add_managed_by,
                ..
            } => {
                let hash = (!to.is_empty()).then_some(to);
                let mut patch = json!({"spec": {"selector": {POD_TEMPLATE_HASH_LABEL: hash}}});
                if let Some(managed_by) = add_managed_by {
                    patch["metadata"] =
                        json!({"annotations": {MANAGED_BY_ROLLOUTS_ANNOTATION: managed_by}});
                }
                self.merge_patch::<Service>(namespace, "Service", service, patch)
                    .await
            }
            Action::SetTrafficWeight(_)
            | Action::UpdateTrafficHash { .. }
            | Action::SetHeaderRoute(_)
            | Action::SetMirrorRoute(_)
            | Action::RemoveManagedRoutes => {
                let Owner::Rollout(rollout) = owner else {
                    return Err(ClusterError::Api(format!(
                        "{} is planned for Rollouts only",
                        action.describe()
                    )));
                };
                self.traffic
                    .apply(rollout, action)
                    .await
                    .map_err(traffic_error)
            }
            Action::CreateAnalysisRun(run) => {
                let mut run = (**run).clone();
                run.metadata.namespace = Some(namespace.to_string());
                run.metadata.owner_references = Some(vec![owner.reference()]);
                self.create(namespace, "AnalysisRun", &run).await
            }
            Action::TerminateAnalysisRun { name } => {
                self.merge_patch::<AnalysisRun>(
                    namespace,
                    "AnalysisRun",
                    name,
                    json!({"spec": {"terminate": true}}),
                )
                .await
            }
            Action::DeleteAnalysisRun { name } => {
                self.delete::<AnalysisRun>(namespace, "AnalysisRun", name)
                    .await
            }
            Action::CreateExperiment(experiment) => {
                let mut experiment = (**experiment).clone();
                experiment.metadata.namespace = Some(namespace.to_string());
                experiment.metadata.owner_references = Some(vec![owner.reference()]);
                self.create(namespace, "Experiment", &experiment).await
            }
            Action::TerminateExperiment { name } => {
                self.merge_patch::<Experiment>(
                    namespace,
                    "Experiment",
                    name,
                    json!({"spec": {"terminate": true}}),
                )
                .await
            }
            Action::DeleteExperiment { name } => {
                self.delete::<Experiment>(namespace, "Experiment", name)
                    .await
            }
            Action::CreateService {
                name,
                selector,
                ports,
            } => {
                let service = new_service(name, selector, ports, owner);
                match self.create(namespace, "Service", &service).await {
                    // Created by an earlier runner that stopped before recording it.
                    Err(ClusterError::Conflict { .. }) => Ok(()),
                    other => other,
                }
            }
            Action::DeleteService { name } => {
                self.delete::<Service>(namespace, "Service", name).await
            }
        }
    }
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

fn spawn_watch<K>(api: Api<K>, sender: &watch::Sender<u64>) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let sender = sender.clone();
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => sender.send_modify(|n| *n = n.wrapping_add(1)),
                Err(error) => tracing::debug!(%error, "watch interrupted; retrying"),
            }
        }
    })
}

pub(crate) fn owned_by(meta: &ObjectMeta, uid: Option<&str>) -> bool {
    uid.is_some_and(|uid| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|r| r.uid == uid && r.controller == Some(true))
    })
}

pub(crate) fn replica_set_state(rs: &ReplicaSet) -> ReplicaSetState {
    let spec = rs.spec.clone().unwrap_or_default();
    let status = rs.status.clone().unwrap_or_default();
    let replica_failure = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        });
    ReplicaSetState {
        name: rs.metadata.name.clone().unwrap_or_default(),
        labels: rs.metadata.labels.clone().unwrap_or_default(),
        annotations: rs.metadata.annotations.clone().unwrap_or_default(),
        created_at: rs
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
        spec_replicas: spec.replicas.unwrap_or(1),
        replicas: status.replicas,
        ready_replicas: status.ready_replicas.unwrap_or(0),
        available_replicas: status.available_replicas.unwrap_or(0),
        min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
        template: spec.template.unwrap_or_default(),
        deleting: rs.metadata.deletion_timestamp.is_some(),
        replica_failure,
    }
}

fn service_state(service: &Service) -> ServiceState {
    ServiceState {
        name: service.metadata.name.clone().unwrap_or_default(),
        selector: service
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default(),
        annotations: service.metadata.annotations.clone().unwrap_or_default(),
    }
}

fn new_replica_set(new: &NewReplicaSet, owner: Owner<'_>) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(new.name.clone()),
            namespace: Some(owner.namespace().to_string()),
            labels: Some(new.labels.clone()),
            annotations: Some(new.annotations.clone()),
            owner_references: Some(vec![owner.reference()]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: Some(new.min_ready_seconds),
            selector: new.selector.clone(),
            template: Some(new.template.clone()),
        }),
        status: None,
    }
}

fn new_service(
    name: &str,
    selector: &BTreeMap<String, String>,
    ports: &[ServicePort],
    owner: Owner<'_>,
) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(owner.namespace().to_string()),
            owner_references: Some(vec![owner.reference()]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(selector.clone()),
            ports: Some(
                ports
                    .iter()
                    .map(|p| KubeServicePort {
                        name: p.name.clone(),
                        port: p.port,
                        protocol: p.protocol.clone(),
                        target_port: Some(IntOrString::Int(p.port)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

fn object_reference(owner: Owner<'_>) -> ObjectReference {
    ObjectReference {
        api_version: Some(rollout_runner_api::crd::API_VERSION.into()),
        kind: Some(owner.kind().into()),
        name: Some(owner.name().to_string()),
        namespace: Some(owner.namespace().to_string()),
        uid: owner.metadata().uid.clone(),
        resource_version: None,
        field_path: None,
    }
}

fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl Cluster for KubeCluster {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn get_rollout(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Rollout>, ClusterError> {
        // A read is safe to repeat: ride out a short outage (5xx, 429, a reset connection)
        // here, so that every caller (the first read of a release, a follower's loop) does.
        let mut failures = 0u32;
        loop {
            match self
                .api::<Rollout>(namespace)
                .get_opt(name)
                .await
                .map_err(about("Rollout", name))
            {
                Err(ClusterError::Unavailable(error)) if failures < READ_RETRIES => {
                    failures += 1;
                    tracing::debug!(%error, failures, "reading the rollout failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200 << failures)).await;
                }
                result => return result,
            }
        }
    }

    async fn observe(&self, rollout: &Rollout) -> Result<Observed, ClusterError> {
        let namespace = rollout.namespace_or_default();
        let uid = rollout.metadata.uid.as_deref();
        let all = ListParams::default();
        let replica_sets = self
            .api::<ReplicaSet>(namespace)
            .list(&all)
            .await?
            .items
            .iter()
            .filter(|rs| owned_by(&rs.metadata, uid))
            .map(replica_set_state)
            .collect();
        let services_api = self.api::<Service>(namespace);
        let mut services = BTreeMap::new();
        for name in rollout.service_names() {
            if let Some(service) = services_api.get_opt(name).await? {
                services.insert(name.to_string(), service_state(&service));
            }
        }
        let analysis_runs = self
            .api::<AnalysisRun>(namespace)
            .list(&all)
            .await?
            .items
            .into_iter()
            .filter(|run| owned_by(&run.metadata, uid))
            .collect();
        let experiments = self
            .api::<Experiment>(namespace)
            .list(&all)
            .await?
            .items
            .into_iter()
            .filter(|ex| owned_by(&ex.metadata, uid))
            .collect();
        let (analysis_templates, cluster_analysis_templates) = self.templates(namespace).await?;
        let (traffic_weight_verified, traffic_managed_routes) =
            if rollout.spec.traffic_routing().is_some() {
                self.traffic.observe(rollout).await.map_err(traffic_error)?
            } else {
                (None, Vec::new())
            };
        Ok(Observed {
            replica_sets,
            services,
            analysis_runs,
            experiments,
            analysis_templates,
            cluster_analysis_templates,
            traffic_weight_verified,
            traffic_managed_routes,
        })
    }

    async fn observe_experiment(
        &self,
        experiment: &Experiment,
    ) -> Result<ExperimentObserved, ClusterError> {
        let namespace = experiment
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| self.namespace.clone());
        let uid = experiment.metadata.uid.as_deref();
        let all = ListParams::default();
        let replica_sets = self
            .api::<ReplicaSet>(&namespace)
            .list(&all)
            .await?
            .items
            .iter()
            .filter(|rs| owned_by(&rs.metadata, uid))
            .map(replica_set_state)
            .collect();
        let analysis_runs = self
            .api::<AnalysisRun>(&namespace)
            .list(&all)
            .await?
            .items
            .into_iter()
            .filter(|run| owned_by(&run.metadata, uid))
            .collect();
        let (analysis_templates, cluster_analysis_templates) = self.templates(&namespace).await?;
        Ok(ExperimentObserved {
            replica_sets,
            analysis_runs,
            analysis_templates,
            cluster_analysis_templates,
        })
    }

    async fn may_write(&self) -> Result<(), ClusterError> {
        match &self.fence {
            Some(fence) => fence.remaining(true).await.map(|_| ()),
            None => Ok(()),
        }
    }

    async fn apply(&self, owner: Owner<'_>, action: &Action) -> Result<(), ClusterError> {
        self.fenced(self.apply_action(owner, action)).await
    }

    async fn write_status(
        &self,
        rollout: &Rollout,
        status: &RolloutStatus,
    ) -> Result<(), ClusterError> {
        self.fenced(self.patch_status::<Rollout>(
            &rollout.metadata,
            "Rollout",
            rollout.status.as_ref(),
            status,
        ))
        .await
    }

    async fn write_experiment_status(
        &self,
        experiment: &Experiment,
        status: &ExperimentStatus,
    ) -> Result<(), ClusterError> {
        self.fenced(self.patch_status::<Experiment>(
            &experiment.metadata,
            "Experiment",
            experiment.status.as_ref(),
            status,
        ))
        .await
    }

    async fn write_analysis_run_status(
        &self,
        run: &AnalysisRun,
        status: &AnalysisRunStatus,
    ) -> Result<(), ClusterError> {
        self.fenced(self.patch_status::<AnalysisRun>(
            &run.metadata,
            "AnalysisRun",
            run.status.as_ref(),
            status,
        ))
        .await
    }
    async fn read_secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<String, ClusterError> {
        let secret = self
            .api::<Secret>(namespace)
            .get(name)
            .await
            .map_err(about("Secret", name))?;
        let bytes = secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .map(|value| value.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|data| data.get(key))
                    .map(|value| value.clone().into_bytes())
            })
            .ok_or_else(|| {
                ClusterError::Api(format!("key '{key}' does not exist in secret '{name}'"))
            })?;
        String::from_utf8(bytes).map_err(|_| {
            ClusterError::Api(format!("key '{key}' of secret '{name}' is not UTF-8 text"))
        })
    }

    async fn record_events(&self, owner: Owner<'_>, events: &[Event]) {
        if let Some(fence) = &self.fence
            && let Err(error) = fence.remaining(false).await
        {
            tracing::debug!(%error, "not recording events");
            return;
        }
        let reference = object_reference(owner);
        for event in events {
            let published = self
                .recorder
                .publish(
                    &KubeEvent {
                        type_: match event.event_type {
                            EventType::Normal => KubeEventType::Normal,
                            EventType::Warning => KubeEventType::Warning,
                        },
                        reason: event.reason.clone(),
                        note: Some(truncate(&event.message, MAX_EVENT_NOTE)),
                        action: event.reason.clone(),
                        secondary: None,
                    },
                    &reference,
                )
                .await;
            // Events are a courtesy: a runner without the RBAC to write them still drives.
            if let Err(error) = published {
                tracing::debug!(%error, reason = %event.reason, "could not record an event");
            }
        }
    }

    async fn wait(&self, deadline: Option<Timestamp>, limit: Option<Timestamp>) -> Wake {
        let until = match (deadline, limit) {
            (Some(d), Some(l)) => Some(d.min(l)),
            (d, l) => d.or(l),
        };
        let sleep = async {
            match until {
                Some(at) => {
                    let span = at.duration_since(Timestamp::now());
                    if let Ok(span) = std::time::Duration::try_from(span) {
                        tokio::time::sleep(span).await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(sleep);
        let mut changes = self.changes.lock().await;
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    // The watchers are gone (the runtime is shutting down): fall back to time.
                    (&mut sleep).await;
                }
                Wake::Change
            }
            () = &mut sleep => {
                if until.is_some() && until == limit && limit != deadline {
                    Wake::Limit
                } else {
                    Wake::Deadline
                }
            }
        }
    }
}

/// Provider credentials from Kubernetes Secrets (Datadog, New Relic, InfluxDB).
pub struct KubeSecrets(pub Client);

impl rollout_runner_metrics::SecretSource for KubeSecrets {
    fn read<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        key: &'a str,
    ) -> futures::future::BoxFuture<
        'a,
        Result<Option<String>, rollout_runner_metrics::settings::SecretError>,
    > {
        Box::pin(async move {
            let api: Api<Secret> = Api::namespaced(self.0.clone(), namespace);
            let secret = api.get_opt(name).await.map_err(|e| {
                rollout_runner_metrics::settings::SecretError(format!("Secret `{name}`: {e}"))
            })?;
            Ok(secret
                .and_then(|s| s.data)
                .and_then(|data| data.get(key).cloned())
                .and_then(|value| String::from_utf8(value.0).ok()))
        })
    }
}

impl KubeCluster {
    /// The namespace's AnalysisTemplates and the cluster's ClusterAnalysisTemplates (none when
    /// the runner may not list them).
    async fn templates(
        &self,
        namespace: &str,
    ) -> Result<
        (
            BTreeMap<String, AnalysisTemplate>,
            BTreeMap<String, ClusterAnalysisTemplate>,
        ),
        ClusterError,
    > {
        let all = ListParams::default();
        let templates = self
            .api::<AnalysisTemplate>(namespace)
            .list(&all)
            .await?
            .items
            .into_iter()
            .map(|t| (t.metadata.name.clone().unwrap_or_default(), t))
            .collect();
        let cluster_templates = match Api::<ClusterAnalysisTemplate>::all(self.client.clone())
            .list(&all)
            .await
        {
            Ok(list) => list
                .items
                .into_iter()
                .map(|t| (t.metadata.name.clone().unwrap_or_default(), t))
                .collect(),
            Err(kube::Error::Api(status)) if status.is_forbidden() => BTreeMap::new(),
            Err(error) => return Err(error.into()),
        };
        Ok((templates, cluster_templates))
    }
}
