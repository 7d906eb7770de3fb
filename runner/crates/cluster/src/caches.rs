//! Watch caches: what a pass reads instead of asking the API server.
//!
//! One [`Caches`] per scope (a namespace, or the whole cluster) holds kube-runtime reflector
//! stores fed by the watches the runner or the controller runs anyway: Rollouts, their
//! ReplicaSets, Services, AnalysisRuns, Experiments and Leases. AnalysisTemplates and
//! ClusterAnalysisTemplates are watched only once a Rollout references one. A pass reads the
//! stores and never GETs or LISTs.
//!
//! A store shows a write only when its watch event arrives. So that a pass never plans from
//! an object older than its own last write, every write's answer (the object as the API server
//! stored it) is kept beside the store until the store catches up with it: a read takes
//! whichever of the two has the newer `resourceVersion`. Comparing resourceVersions as numbers
//! is what etcd-backed API servers allow in practice; a version that is not a number makes the
//! store win.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::{OnceCell, watch};

use rollout_runner_api::crd::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, POD_TEMPLATE_HASH_LABEL,
    Rollout,
};

use super::ClusterError;

/// How long a pass waits for a watch's first listing before it reports the API server
/// unavailable (the driver retries).
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// A watch's stream of changed objects, for a kube-runtime `Controller` to be triggered by.
pub type Feed<K> = BoxStream<'static, Result<K, watcher::Error>>;

/// A written object, or the version of one deleted, kept until the store catches up.
enum Written<K> {
    Object(Arc<K>),
    Deleted { version: Option<String> },
}

/// A reflector store and this process's own writes that it has not shown yet.
pub struct Cache<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    written: Mutex<HashMap<(String, String), Written<K>>>,
}

fn version(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<u64> {
    meta.resource_version.as_deref()?.parse().ok()
}

/// Whether `stored` shows a state at least as new as `written`.
fn caught_up(stored: Option<u64>, written: Option<u64>) -> bool {
    match (stored, written) {
        (Some(stored), Some(written)) => stored >= written,
        // Not comparable: the store is the authority.
        _ => true,
    }
}

impl<K> Cache<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    fn new(store: Store<K>) -> Self {
        Self {
            store,
            written: Mutex::new(HashMap::new()),
        }
    }

    /// The reflector store (without this process's unseen writes), for a kube-runtime
    /// `Controller`.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    fn written(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Written<K>>> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newer of the store's object and this process's last write of it.
    fn resolve(&self, key: &(String, String), stored: Option<Arc<K>>) -> Option<Arc<K>> {
        let mut written = self.written();
        let Some(mine) = written.get(key) else {
            return stored;
        };
        let stored_version = stored.as_ref().and_then(|s| version(s.meta()));
        match mine {
            Written::Object(object) => {
                if stored.is_some() && caught_up(stored_version, version(object.meta())) {
                    written.remove(key);
                    stored
                } else {
                    Some(Arc::clone(object))
                }
            }
            Written::Deleted { version: deleted } => {
                let deleted = deleted.as_deref().and_then(|v| v.parse().ok());
                match stored {
                    None => {
                        written.remove(key);
                        None
                    }
                    // Still the version that was deleted (or an older one): gone.
                    Some(_) if !caught_up(stored_version, deleted.map(|d: u64| d + 1)) => None,
                    Some(stored) => {
                        written.remove(key);
                        Some(stored)
                    }
                }
            }
        }
    }

    /// One object by namespace ("" for cluster-scoped kinds) and name.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let mut reference = ObjectRef::<K>::new(name);
        if !namespace.is_empty() {
            reference = reference.within(namespace);
        }
        let key = (namespace.to_string(), name.to_string());
        self.resolve(&key, self.store.get(&reference))
    }

    /// The objects of `namespace` (every namespace: `None`) that `keep` accepts.
    pub fn list(&self, namespace: Option<&str>, keep: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        let in_scope =
            |object: &K| namespace.is_none_or(|ns| object.meta().namespace.as_deref() == Some(ns));
        let mut seen = std::collections::HashSet::new();
        let mut objects = Vec::new();
        for stored in self.store.state() {
            if !in_scope(&stored) {
                continue;
            }
            let key = (stored.namespace().unwrap_or_default(), stored.name_any());
            let resolved = self.resolve(&key, Some(stored));
            seen.insert(key);
            if let Some(object) = resolved.filter(|o| keep(o)) {
                objects.push(object);
            }
        }
        // Created by this process, not in the store yet.
        let created: Vec<Arc<K>> = self
            .written()
            .iter()
            .filter(|(key, _)| !seen.contains(*key))
            .filter_map(|(_, written)| match written {
                Written::Object(object) => Some(Arc::clone(object)),
                Written::Deleted { .. } => None,
            })
            .filter(|object| in_scope(object) && keep(object))
            .collect();
        objects.extend(created);
        objects
    }

    /// Remember what the API server answered to this process's write.
    pub fn wrote(&self, object: K) {
        let key = (object.namespace().unwrap_or_default(), object.name_any());
        self.written()
            .insert(key, Written::Object(Arc::new(object)));
    }

    /// Remember that this process deleted an object.
    pub fn deleted(&self, namespace: &str, name: &str) {
        let version = self
            .get(namespace, name)
            .and_then(|o| o.meta().resource_version.clone());
        self.written().insert(
            (namespace.to_string(), name.to_string()),
            Written::Deleted { version },
        );
    }

    async fn synced(&self, what: &str) -> Result<(), ClusterError> {
        match tokio::time::timeout(SYNC_TIMEOUT, self.store.wait_until_ready()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ClusterError::Unavailable(format!(
                "the watch of {what} stopped"
            ))),
            Err(_) => Err(ClusterError::Unavailable(format!(
                "the watch of {what} has not listed them within {SYNC_TIMEOUT:?}"
            ))),
        }
    }
}

/// A cache started on first use, or known to be forbidden to this process.
struct LazyCache<K: Resource + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    cell: OnceCell<(Cache<K>, watch::Receiver<bool>)>,
}

impl<K: Resource + 'static> Default for LazyCache<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    fn default() -> Self {
        Self {
            cell: OnceCell::new(),
        }
    }
}

/// Bump the change counter after every event a watch delivers.
fn counted<K>(
    stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    changes: watch::Sender<u64>,
    what: &'static str,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Send + 'static,
{
    stream.inspect(move |event| match event {
        Ok(_) => changes.send_modify(|n| *n = n.wrapping_add(1)),
        Err(error) => tracing::debug!(%error, what, "watch interrupted; retrying"),
    })
}

/// A reflector over `api`: its store, and the stream of touched objects that feeds it.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    changes: &watch::Sender<u64>,
    what: &'static str,
) -> (Store<K>, Feed<K>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    let (store, writer) = reflector::store();
    let events = watcher(api, config)
        .default_backoff()
        // Never read by a pass; it is most of an object's size.
        .modify(|object: &mut K| object.meta_mut().managed_fields = None)
        .reflect(writer);
    let feed = counted(events, changes.clone(), what)
        .touched_objects()
        .boxed();
    (store, feed)
}

/// The watches of one Rollout's world.
pub struct Caches {
    client: Client,
    /// The namespace watched; `None`: every namespace.
    scope: Option<String>,
    pub rollouts: Cache<Rollout>,
    pub replica_sets: Cache<ReplicaSet>,
    pub services: Cache<Service>,
    pub analysis_runs: Cache<AnalysisRun>,
    pub experiments: Cache<Experiment>,
    pub leases: Cache<Lease>,
    analysis_templates: LazyCache<AnalysisTemplate>,
    cluster_analysis_templates: LazyCache<ClusterAnalysisTemplate>,
    changes: watch::Sender<u64>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The watch streams behind a [`Caches`]: a kube-runtime `Controller` runs them as its
/// triggers, or [`Caches::drain`] runs them in the background.
pub struct Feeds {
    pub rollouts: Feed<Rollout>,
    pub replica_sets: Feed<ReplicaSet>,
    pub services: Feed<Service>,
    pub analysis_runs: Feed<AnalysisRun>,
    pub experiments: Feed<Experiment>,
    pub leases: Feed<Lease>,
}

fn api<K>(client: &Client, scope: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match scope {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

impl Drop for Caches {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            task.abort();
        }
    }
}

impl Caches {
    /// The caches of `scope` (a namespace; `None`: the whole cluster), with Rollouts
    /// restricted to `rollout_labels` when given. Nothing is watched until the feeds run.
    pub fn new(
        client: Client,
        scope: Option<&str>,
        rollout_labels: Option<&str>,
    ) -> (Arc<Self>, Feeds) {
        let (changes, _) = watch::channel(0u64);
        let mut rollout_config = watcher::Config::default();
        if let Some(labels) = rollout_labels {
            rollout_config = rollout_config.labels(labels);
        }
        let (rollouts, rollout_feed) =
            reflect(api(&client, scope), rollout_config, &changes, "Rollouts");
        // Only ReplicaSets of Rollouts and Experiments carry this label: the cache stays small.
        let (replica_sets, replica_set_feed) = reflect(
            api(&client, scope),
            watcher::Config::default().labels(POD_TEMPLATE_HASH_LABEL),
            &changes,
            "ReplicaSets",
        );
        let (services, service_feed) = reflect(
            api(&client, scope),
            watcher::Config::default(),
            &changes,
            "Services",
        );
        let (analysis_runs, analysis_run_feed) = reflect(
            api(&client, scope),
            watcher::Config::default(),
            &changes,
            "AnalysisRuns",
        );
        let (experiments, experiment_feed) = reflect(
            api(&client, scope),
            watcher::Config::default(),
            &changes,
            "Experiments",
        );
        let (leases, lease_feed) = reflect(
            api(&client, scope),
            watcher::Config::default(),
            &changes,
            "Leases",
        );
        let caches = Arc::new(Self {
            client,
            scope: scope.map(str::to_string),
            rollouts: Cache::new(rollouts),
            replica_sets: Cache::new(replica_sets),
            services: Cache::new(services),
            analysis_runs: Cache::new(analysis_runs),
            experiments: Cache::new(experiments),
            leases: Cache::new(leases),
            analysis_templates: LazyCache::default(),
            cluster_analysis_templates: LazyCache::default(),
            changes,
            tasks: Mutex::new(Vec::new()),
        });
        let feeds = Feeds {
            rollouts: rollout_feed,
            replica_sets: replica_set_feed,
            services: service_feed,
            analysis_runs: analysis_run_feed,
            experiments: experiment_feed,
            leases: lease_feed,
        };
        (caches, feeds)
    }

    /// Run `feed` in the background for as long as these caches live.
    pub fn drain<K: Send + 'static>(&self, feed: Feed<K>) {
        let task = tokio::spawn(feed.for_each(|_| async {}));
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    /// Run every feed in the background (a process without a kube-runtime `Controller`).
    pub fn drain_all(&self, feeds: Feeds) {
        self.drain(feeds.rollouts);
        self.drain(feeds.replica_sets);
        self.drain(feeds.services);
        self.drain(feeds.analysis_runs);
        self.drain(feeds.experiments);
        self.drain(feeds.leases);
    }

    /// Whether these caches hold `namespace`'s objects.
    pub fn covers(&self, namespace: &str) -> bool {
        self.scope.as_deref().is_none_or(|scope| scope == namespace)
    }

    /// Counts every event of every watch: changes when anything may have changed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Wait until the watches every pass reads have listed their objects once.
    pub async fn synced(&self) -> Result<(), ClusterError> {
        self.rollouts.synced("Rollouts").await?;
        self.replica_sets.synced("ReplicaSets").await?;
        self.services.synced("Services").await?;
        self.analysis_runs.synced("AnalysisRuns").await?;
        self.experiments.synced("Experiments").await?;
        self.leases.synced("Leases").await
    }

    /// The namespace's AnalysisTemplates, watched from the first call on.
    pub async fn analysis_templates(
        &self,
        namespace: &str,
    ) -> Result<Vec<Arc<AnalysisTemplate>>, ClusterError> {
        let api = api(&self.client, self.scope.as_deref());
        let cache = self
            .lazy(&self.analysis_templates, api, "AnalysisTemplates")
            .await?;
        Ok(cache.map_or_else(Vec::new, |cache| cache.list(Some(namespace), |_| true)))
    }

    /// The cluster's ClusterAnalysisTemplates, watched from the first call on (none when this
    /// process may not list them).
    pub async fn cluster_analysis_templates(
        &self,
    ) -> Result<Vec<Arc<ClusterAnalysisTemplate>>, ClusterError> {
        let api = Api::<ClusterAnalysisTemplate>::all(self.client.clone());
        let cache = self
            .lazy(
                &self.cluster_analysis_templates,
                api,
                "ClusterAnalysisTemplates",
            )
            .await?;
        Ok(cache.map_or_else(Vec::new, |cache| cache.list(None, |_| true)))
    }

    /// Start a watch on first use and wait for its first listing; `None` when the API server
    /// forbids it.
    async fn lazy<'a, K>(
        &self,
        cell: &'a LazyCache<K>,
        api: Api<K>,
        what: &'static str,
    ) -> Result<Option<&'a Cache<K>>, ClusterError>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Eq + Hash + Clone + Default,
    {
        let (cache, forbidden) = cell
            .cell
            .get_or_init(|| async {
                let (store, feed) = reflect(api, watcher::Config::default(), &self.changes, what);
                let (refused, forbidden) = watch::channel(false);
                let task = tokio::spawn(feed.for_each(move |item| {
                    if let Err(
                        watcher::Error::InitialListFailed(kube::Error::Api(status))
                        | watcher::Error::WatchStartFailed(kube::Error::Api(status)),
                    ) = &item
                        && status.is_forbidden()
                    {
                        refused.send_replace(true);
                    }
                    async {}
                }));
                self.tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(task);
                (Cache::new(store), forbidden)
            })
            .await;
        if *forbidden.borrow() {
            return Ok(None);
        }
        let mut refused = forbidden.clone();
        tokio::select! {
            synced = cache.synced(what) => synced.map(|()| Some(cache)),
            _ = refused.wait_for(|refused| *refused) => Ok(None),
        }
    }
}

/// The caches of every scope a process watches.
#[derive(Clone, Default)]
pub struct CacheSet(Vec<Arc<Caches>>);

impl CacheSet {
    pub fn new(caches: Vec<Arc<Caches>>) -> Self {
        Self(caches)
    }

    /// The caches holding `namespace`'s objects.
    pub fn of(&self, namespace: &str) -> Result<&Arc<Caches>, ClusterError> {
        self.0.iter().find(|c| c.covers(namespace)).ok_or_else(|| {
            ClusterError::Api(format!(
                "namespace `{namespace}` is not watched by this process"
            ))
        })
    }

    pub fn all(&self) -> &[Arc<Caches>] {
        &self.0
    }
}

/// A kind whose objects a [`Caches`] holds, so a write can be remembered in the right cache.
pub trait Cached: Resource + Clone + Sized + 'static
where
    Self::DynamicType: Eq + Hash + Clone + Default,
{
    fn cache(caches: &Caches) -> &Cache<Self>;
}

macro_rules! cached {
    ($($kind:ty => $field:ident),* $(,)?) => {$(
        impl Cached for $kind {
            fn cache(caches: &Caches) -> &Cache<Self> {
                &caches.$field
            }
        }
    )*};
}

cached!(
    Rollout => rollouts,
    ReplicaSet => replica_sets,
    Service => services,
    AnalysisRun => analysis_runs,
    Experiment => experiments,
    Lease => leases,
);
