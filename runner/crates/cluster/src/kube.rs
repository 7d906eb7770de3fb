//! The real API server.
//!
//! Children are created with an owner reference to their Rollout or Experiment; targeted
//! changes (scale, annotations, selectors, `spec.terminate`) are JSON merge patches with field
//! manager [`FIELD_MANAGER`], as Argo's controller patches them; statuses are written through
//! the status subresource as a merge patch of what changed since they were read, so a field
//! someone else owns is never dropped.
//!
//! Reads come from watch caches ([`super::caches`]): a pass issues no GET or LIST, and after
//! its own write it sees the object the API server answered. Waiting is watch-driven too: every
//! watch event bumps a change counter, and [`Cluster::wait`] returns on the first change or
//! when the engine's deadline passes. There is no polling interval.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{
    ObjectReference, Secret, Service, ServicePort as KubeServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder, Reporter};
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
use rollout_runner_api::observed::{
    ExperimentObserved, Observed, ReplicaSetState, ServiceState, WorkloadState,
};
use rollout_runner_api::plan::{Action, Event, EventType, NewReplicaSet, ServicePort};
pub use rollout_runner_core::operate::merge_diff;
use rollout_runner_traffic::{Traffic, TrafficError};

use super::caches::{Cache, CacheSet, Cached, Caches};
use super::lease::LeaseFence;
use super::{Cluster, ClusterError, Owner, Wake};

pub use rollout_runner_api::FIELD_MANAGER;

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

/// A Kubernetes API server, seen from one namespace.
pub struct KubeCluster {
    client: Client,
    namespace: String,
    traffic: Arc<Traffic>,
    events: Arc<EventQueue>,
    caches: CacheSet,
    changes: Mutex<watch::Receiver<u64>>,
    /// When set, every write first checks that this process holds the Rollout's Lease.
    fence: Option<Arc<Fence>>,
}

/// A Lease fence and until when its last check showed the Lease ours.
struct Fence {
    lease: LeaseFence,
    /// The watch cache of the Lease's namespace.
    caches: Option<Arc<Caches>>,
    valid_until: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Fence {
    /// How long the Lease is ours: from the last check while it lasts, else from the Lease as
    /// the watch cache shows it, else read again.
    ///
    /// The cached Lease is as safe as a fresh read when it shows this process holding the
    /// Lease with time left: nobody may take a Lease before its latest renewal expires, and
    /// the cached renewal is that one or an earlier one, so it expires no later. Only a cache
    /// that does not show the Lease ours sends the fence to the API server.
    async fn remaining(&self, read_again: bool) -> Result<std::time::Duration, ClusterError> {
        let now = std::time::Instant::now();
        let cached = *self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        if !read_again && let Some(until) = cached.filter(|until| *until > now) {
            return Ok(until - now);
        }
        let from_cache = self.caches.as_ref().and_then(|caches| {
            let lease = caches
                .leases
                .get(self.lease.namespace(), self.lease.name())?;
            self.lease.left(&lease).ok()
        });
        let checked = match from_cache {
            Some(left) => Ok(left),
            None => self.lease.remaining().await,
        };
        let mut valid_until = self.valid_until.lock().unwrap_or_else(|e| e.into_inner());
        *valid_until = checked
            .as_ref()
            .ok()
            .map(|left| std::time::Instant::now() + *left);
        checked
    }
}

/// Events are published in order by a background task, as Argo's event broadcaster does:
/// a pass does not wait for them before its next action.
struct EventQueue {
    sender: tokio::sync::mpsc::UnboundedSender<Queued>,
    task: tokio::task::JoinHandle<()>,
}

enum Queued {
    Event(ObjectReference, KubeEvent),
    /// Answered once every event queued before it is published.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl EventQueue {
    fn start(recorder: Recorder) -> Self {
        let (sender, mut queue) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(queued) = queue.recv().await {
                match queued {
                    Queued::Event(reference, event) => {
                        // Events are a courtesy: a runner without the RBAC to write them still
                        // drives.
                        if let Err(error) = recorder.publish(&event, &reference).await {
                            tracing::debug!(%error, reason = %event.reason, "could not record an event");
                        }
                    }
                    Queued::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Self { sender, task }
    }

    fn publish(&self, reference: ObjectReference, event: KubeEvent) {
        let _ = self.sender.send(Queued::Event(reference, event));
    }

    async fn flush(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.sender.send(Queued::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Clone for KubeCluster {
    /// Another handle on the same watchers, with its own notion of "changed since I looked".
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            traffic: Arc::clone(&self.traffic),
            events: Arc::clone(&self.events),
            caches: self.caches.clone(),
            changes: Mutex::new(self.subscribe()),
            fence: self.fence.clone(),
        }
    }
}

impl KubeCluster {
    /// Start watching `namespace`. Must run inside a tokio runtime.
    pub fn new(client: Client, namespace: &str) -> Self {
        let (caches, feeds) = Caches::new(client.clone(), Some(namespace), None);
        caches.drain_all(feeds);
        Self::with_caches(client, namespace, CacheSet::new(vec![caches]))
    }

    /// A cluster reading the caches of a caller that runs their watches (the controller's
    /// kube-runtime `Controller` is triggered by the same watches).
    pub fn with_caches(client: Client, namespace: &str, caches: CacheSet) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: std::env::var("HOSTNAME").ok(),
            },
        );
        let changes = match caches.all().first() {
            Some(first) => first.changes(),
            None => watch::channel(0u64).1,
        };
        Self {
            traffic: Arc::new(Traffic::new(client.clone())),
            client,
            namespace: namespace.to_string(),
            events: Arc::new(EventQueue::start(recorder)),
            caches,
            changes: Mutex::new(changes),
            fence: None,
        }
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        match self.caches.all().first() {
            Some(first) => first.changes(),
            None => watch::channel(0u64).1,
        }
    }

    /// The watch caches of `namespace`, once they have listed everything.
    async fn cache(&self, namespace: &str) -> Result<&Arc<Caches>, ClusterError> {
        let caches = self.caches.of(namespace)?;
        caches.synced().await?;
        Ok(caches)
    }

    /// Wait until every Event recorded so far is published (before a process exits).
    pub async fn flush_events(&self) {
        self.events.flush().await;
    }

    /// The caches this cluster reads.
    pub fn caches(&self) -> &CacheSet {
        &self.caches
    }

    /// The same cluster, writing only while `fence` shows this process holds the Lease.
    pub fn with_fence(&self, fence: LeaseFence) -> Self {
        let mut fenced = self.clone();
        let caches = self.caches.of(fence.namespace()).ok().cloned();
        fenced.fence = Some(Arc::new(Fence {
            lease: fence,
            caches,
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

    /// Keep the API server's answer to a write, for the passes that read before the watch
    /// shows it.
    fn wrote<K>(&self, namespace: &str, written: K)
    where
        K: Cached,
        K::DynamicType: Default + Eq + Hash + Clone,
    {
        if let Ok(caches) = self.caches.of(namespace) {
            K::cache(caches).wrote(written);
        }
    }

    async fn merge_patch<K>(
        &self,
        namespace: &str,
        kind: &'static str,
        name: &str,
        patch: Value,
    ) -> Result<(), ClusterError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Cached
            + Clone
            + DeserializeOwned
            + Debug,
        K::DynamicType: Default + Eq + Hash + Clone,
    {
        let written = self
            .api::<K>(namespace)
            .patch(name, &patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(about(kind, name))?;
        self.wrote(namespace, written);
        Ok(())
    }

    async fn delete<K>(
        &self,
        namespace: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<(), ClusterError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Cached
            + Clone
            + DeserializeOwned
            + Debug,
        K::DynamicType: Default + Eq + Hash + Clone,
    {
        match self
            .api::<K>(namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => {
                if let Ok(caches) = self.caches.of(namespace) {
                    K::cache(caches).deleted(namespace, name);
                }
                Ok(())
            }
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
            + Cached
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        K::DynamicType: Default + Eq + Hash + Clone,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let written = self
            .api::<K>(namespace)
            .create(&params, object)
            .await
            .map_err(about(kind, &name))?;
        self.wrote(namespace, written);
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
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Cached
            + Clone
            + DeserializeOwned
            + Debug,
        K::DynamicType: Default + Eq + Hash + Clone,
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
        let written = self
            .api::<K>(&namespace)
            .patch_status(
                &name,
                &patch_params(),
                &Patch::Merge(&json!({ "status": diff })),
            )
            .await
            .map_err(about(kind, &name))?;
        self.wrote(&namespace, written);
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
            Action::ScaleDeployment { name, to, .. } => {
                self.api::<Deployment>(namespace)
                    .patch(
                        name,
                        &patch_params(),
                        &Patch::Merge(json!({"spec": {"replicas": to}})),
                    )
                    .await
                    .map_err(about("Deployment", name))?;
                Ok(())
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

impl KubeCluster {
    /// The workload a `workloadRef` names, read from the API server on every observation (as
    /// Argo's informer would have it); `None` when it does not exist or its kind is unknown.
    async fn workload(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<WorkloadState>, ClusterError> {
        let object = match kind {
            "Deployment" => {
                self.read_json::<Deployment>(namespace, "Deployment", name)
                    .await?
            }
            "ReplicaSet" => {
                self.read_json::<ReplicaSet>(namespace, "ReplicaSet", name)
                    .await?
            }
            "PodTemplate" => {
                self.read_json::<k8s_openapi::api::core::v1::PodTemplate>(
                    namespace,
                    "PodTemplate",
                    name,
                )
                .await?
            }
            _ => None,
        };
        Ok(object.map(|object| WorkloadState::from_object(kind, &object)))
    }

    async fn read_json<K>(
        &self,
        namespace: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<Option<Value>, ClusterError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + Debug,
        K::DynamicType: Default,
    {
        let object = self
            .api::<K>(namespace)
            .get_opt(name)
            .await
            .map_err(about(kind, name))?;
        object
            .map(|o| serde_json::to_value(o).map_err(|e| ClusterError::Api(e.to_string())))
            .transpose()
    }
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
        let caches = self.cache(namespace).await?;
        Ok(caches.rollouts.get(namespace, name).map(|r| (*r).clone()))
    }

    async fn observe(&self, rollout: &Rollout) -> Result<Observed, ClusterError> {
        let namespace = rollout.namespace_or_default();
        let uid = rollout.metadata.uid.as_deref();
        let caches = self.cache(namespace).await?;
        let replica_sets = owned(&caches.replica_sets, namespace, uid)
            .iter()
            .map(|rs| replica_set_state(rs))
            .collect();
        let services = rollout
            .service_names()
            .into_iter()
            .filter_map(|name| {
                let service = caches.services.get(namespace, name)?;
                Some((name.to_string(), service_state(&service)))
            })
            .collect();
        let analysis_runs = owned(&caches.analysis_runs, namespace, uid)
            .into_iter()
            .map(|run| (*run).clone())
            .collect();
        let experiments = owned(&caches.experiments, namespace, uid)
            .into_iter()
            .map(|ex| (*ex).clone())
            .collect();
        let (analysis_templates, cluster_analysis_templates) =
            templates(caches, namespace, &rollout_template_refs(rollout)).await?;
        let (traffic_weight_verified, traffic_managed_routes) =
            if rollout.spec.traffic_routing().is_some() {
                self.traffic.observe(rollout).await.map_err(traffic_error)?
            } else {
                (None, Vec::new())
            };
        let workload = match &rollout.spec.workload_ref {
            Some(reference) => {
                self.workload(namespace, &reference.kind, &reference.name)
                    .await?
            }
            None => None,
        };
        Ok(Observed {
            workload,
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
        let caches = self.cache(&namespace).await?;
        let replica_sets = owned(&caches.replica_sets, &namespace, uid)
            .iter()
            .map(|rs| replica_set_state(rs))
            .collect();
        let analysis_runs = owned(&caches.analysis_runs, &namespace, uid)
            .into_iter()
            .map(|run| (*run).clone())
            .collect();
        let references: Vec<(String, bool)> = experiment
            .spec
            .analyses
            .iter()
            .map(|a| (a.template_name.clone(), a.cluster_scope))
            .collect();
        let (analysis_templates, cluster_analysis_templates) =
            templates(caches, &namespace, &references).await?;
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
            self.events.publish(
                reference.clone(),
                KubeEvent {
                    type_: match event.event_type {
                        EventType::Normal => KubeEventType::Normal,
                        EventType::Warning => KubeEventType::Warning,
                    },
                    reason: event.reason.clone(),
                    note: Some(truncate(&event.message, MAX_EVENT_NOTE)),
                    action: event.reason.clone(),
                    secondary: None,
                },
            );
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

/// The objects of `namespace` in `cache` that `uid` controls, by name (the order a LIST
/// returns them in).
fn owned<K>(cache: &Cache<K>, namespace: &str, uid: Option<&str>) -> Vec<Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    let mut objects = cache.list(Some(namespace), |o| owned_by(o.meta(), uid));
    objects.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    objects
}

/// The analysis templates a Rollout references, as (name, cluster-scoped).
fn rollout_template_refs(rollout: &Rollout) -> Vec<(String, bool)> {
    let strategy = &rollout.spec.strategy;
    let mut analyses = Vec::new();
    let mut references = Vec::new();
    if let Some(canary) = &strategy.canary {
        analyses.extend(canary.analysis.as_ref().map(|b| &b.analysis));
        for step in &canary.steps {
            analyses.extend(step.analysis.as_ref());
            for analysis in step.experiment.iter().flat_map(|e| &e.analyses) {
                references.push((analysis.template_name.clone(), analysis.cluster_scope));
            }
        }
    }
    if let Some(blue_green) = &strategy.blue_green {
        analyses.extend(blue_green.pre_promotion_analysis.as_ref());
        analyses.extend(blue_green.post_promotion_analysis.as_ref());
    }
    for analysis in analyses {
        for template in &analysis.templates {
            references.push((template.template_name.clone(), template.cluster_scope));
        }
    }
    references
}

/// The templates `references` may need, by name, from the watch caches: none are watched for
/// a Rollout without analysis, and ClusterAnalysisTemplates only when one is referenced
/// (directly or by a referenced AnalysisTemplate).
async fn templates(
    caches: &Caches,
    namespace: &str,
    references: &[(String, bool)],
) -> Result<
    (
        BTreeMap<String, AnalysisTemplate>,
        BTreeMap<String, ClusterAnalysisTemplate>,
    ),
    ClusterError,
> {
    if references.is_empty() {
        return Ok(Default::default());
    }
    let templates: BTreeMap<String, AnalysisTemplate> = if references.iter().any(|(_, c)| !c) {
        caches
            .analysis_templates(namespace)
            .await?
            .into_iter()
            .map(|t| (t.metadata.name.clone().unwrap_or_default(), (*t).clone()))
            .collect()
    } else {
        BTreeMap::new()
    };
    let cluster_scoped = references.iter().any(|(_, c)| *c)
        || templates
            .values()
            .any(|t| t.spec.templates.iter().any(|r| r.cluster_scope));
    let cluster_templates = if cluster_scoped {
        caches
            .cluster_analysis_templates()
            .await?
            .into_iter()
            .map(|t| (t.metadata.name.clone().unwrap_or_default(), (*t).clone()))
            .collect()
    } else {
        BTreeMap::new()
    };
    Ok((templates, cluster_templates))
}
