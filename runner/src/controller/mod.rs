//! The in-cluster controller: a kube-runtime [`Controller`] over Rollouts whose reconcile is
//! one [`Driver::reconcile`] pass, the same pass `apply --wait` loops over. It holds no
//! rollout logic of its own; it decides only *whether* to drive (leadership, scope, the
//! Rollout's Lease) and *when* to look again (the pass's next deadline).
//!
//! - Replicas elect a leader with a Lease; only the leader runs the watches and reconciles.
//! - Scope: `--namespace` (repeatable, default all) and Argo's instance-id label.
//! - A Rollout is driven only while the controller holds its `rollout-runner-<rollout>`
//!   Lease ([`claim`]); while a CI runner holds it the controller only looks, and a runner
//!   that finds the controller holding it follows instead of driving.
//!
//! It refuses to interpret plans, statuses or analysis results: that is the driver's and the
//! engine's business.

pub mod claim;
pub mod serve;
pub mod stats;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use crate::cluster::caches::{CacheSet, Caches, Feeds};
use crate::cluster::kube::KubeCluster;
use crate::cluster::lease::{ARGO_INSTANCE_ID_LABEL, LEASE_PREFIX};
use crate::cluster::{Cluster, ClusterError, Owner};
use crate::crd::Rollout;
use crate::driver::{Driver, DriverError};
use crate::engine::phase::observed_phase;
use crate::metrics::Metrics;
use crate::observed::Observed;
use crate::plan::{Event, EventType};
use crate::report::notify::Notifier;
use crate::report::{Reporter, Update};

use claim::{Claim, Claims};
use serve::Health;
use stats::ReconcileResult;

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the API server does not answer: {0}")]
    Unreachable(kube::Error),
    #[error("leader election on Lease `{name}` failed: {message}")]
    LeaderElection { name: String, message: String },
}

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespaces to watch; empty: the whole cluster.
    pub namespaces: Vec<String>,
    /// Handle only Rollouts labelled with this instance id; `None`: only unlabelled ones.
    pub instance_id: Option<String>,
    /// Where the leader-election Lease lives.
    pub lease_namespace: String,
    /// Lease duration, for leader election and for the per-Rollout Leases.
    pub lease_duration: Duration,
    /// `holderIdentity` of this replica in every Lease.
    pub identity: String,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None`: not served.
    pub metrics_addr: Option<SocketAddr>,
    /// Reconciles running at once (per namespace in scope); 0: no limit.
    pub workers: u16,
    /// Where the Rollouts' events are notified (subscriptions, GitHub Deployments).
    pub notifier: Option<Arc<Notifier>>,
}

/// The leader-election Lease. A dot keeps it apart from every `rollout-runner-<rollout>`
/// Lease, whatever the Rollout's name.
pub fn leader_lease_name(instance_id: Option<&str>) -> String {
    match instance_id {
        Some(id) => format!("rollout-runner.controller-{id}"),
        None => "rollout-runner.controller".into(),
    }
}

/// The label selector of the Rollouts an instance handles (Argo's rule: no id, no label).
pub fn instance_selector(instance_id: Option<&str>) -> String {
    match instance_id {
        Some(id) => format!("{ARGO_INSTANCE_ID_LABEL}={id}"),
        None => format!("!{ARGO_INSTANCE_ID_LABEL}"),
    }
}

/// A client that counts its requests and their answers in `health`'s statistics.
pub fn counted_client(config: kube::Config, health: &Arc<Health>) -> Result<Client, kube::Error> {
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&crate::cluster::retry_after::RetryAfterLayer)
        .with_layer(&crate::cluster::requests::RequestCounts::default().layer())
        .with_layer(&CountLayer(Arc::clone(health)))
        .build())
}

/// Counts every API request with its status code (see [`stats::Stats::request`]).
#[derive(Clone)]
struct CountLayer(Arc<Health>);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            health: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
struct Counted<S> {
    inner: S,
    health: Arc<Health>,
}

impl<S, B> tower::Service<http::Request<kube::client::Body>> for Counted<S>
where
    S: tower::Service<http::Request<kube::client::Body>, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<kube::client::Body>) -> Self::Future {
        let method = request.method().to_string();
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let health = Arc::clone(&self.health);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let code = result.as_ref().map_or(0, |r| r.status().as_u16());
            health.stats.request(&method, &path, code);
            result
        })
    }
}

/// What every reconcile shares.
struct Context<M> {
    /// Reads the caches of the current leadership term's watches.
    cluster: Mutex<Arc<KubeCluster>>,
    providers: M,
    claims: Claims,
    health: Arc<Health>,
    workers: u16,
    notifier: Option<Arc<Notifier>>,
    /// The last other holder seen per Rollout, so its Event is recorded once, not per look.
    holders: Mutex<HashMap<String, String>>,
}

/// Run until `shutdown` resolves: serve the endpoints, stand by until elected, then drive.
pub async fn run<M: Metrics + 'static>(
    client: Client,
    providers: M,
    settings: Settings,
    health: Arc<Health>,
    shutdown: impl Future<Output = &'static str>,
) -> Result<(), ControllerError> {
    if let Some(addr) = settings.metrics_addr {
        let listener = serve::bind(addr)
            .await
            .map_err(|source| ControllerError::Listen { addr, source })?;
        tokio::spawn(serve::serve(listener, Arc::clone(&health)));
    }
    client
        .apiserver_version()
        .await
        .map_err(ControllerError::Unreachable)?;
    health.ready.store(true, Ordering::Relaxed);

    let lease = leader_lease_name(settings.instance_id.as_deref());
    let seconds = settings.lease_duration.as_secs().max(1);
    let elector = LeaseManagerBuilder::new(client.clone(), &lease)
        .with_namespace(&settings.lease_namespace)
        .with_identity(&settings.identity)
        .with_duration(seconds)
        .with_grace((seconds / 3).max(1))
        .with_field_manager(claim::LEASE_FIELD_MANAGER)
        .build()
        .await
        .map_err(|e| ControllerError::LeaderElection {
            name: lease.clone(),
            message: e.to_string(),
        })?;
    let (mut leading, election) = elector.watch().await;
    let context = Arc::new(Context {
        cluster: Mutex::new(Arc::new(KubeCluster::with_caches(
            client.clone(),
            &settings.lease_namespace,
            CacheSet::default(),
        ))),
        providers,
        claims: Claims::new(
            client.clone(),
            settings.identity.clone(),
            settings.lease_duration,
        ),
        health: Arc::clone(&health),
        workers: settings.workers,
        notifier: settings.notifier.clone(),
        holders: Mutex::new(HashMap::new()),
    });
    tracing::info!(
        identity = %settings.identity,
        lease = %format!("{}/{lease}", settings.lease_namespace),
        namespaces = ?settings.namespaces,
        selector = %instance_selector(settings.instance_id.as_deref()),
        "standing by for leadership"
    );
    tokio::pin!(shutdown);
    let mut failure = None;
    loop {
        tokio::select! {
            elected = leading.wait_for(|held| *held) => if elected.is_err() {
                failure = Some("the leader election stopped".to_string());
                break;
            },
            signal = &mut shutdown => {
                tracing::info!(signal, "shutting down while standing by");
                break;
            }
        }
        tracing::info!(identity = %settings.identity, "elected leader; driving Rollouts");
        health.stats.set_leader(true);
        let (stop, stopped) = watch::channel(false);
        let controllers = run_controllers(client.clone(), Arc::clone(&context), &settings, stopped);
        tokio::pin!(controllers);
        let mut quit = false;
        tokio::select! {
            () = &mut controllers => {
                failure = Some("the watches ended".to_string());
                quit = true;
            }
            _ = leading.wait_for(|held| !*held) => {
                tracing::warn!("lost leadership; stopping and standing by");
                let _ = stop.send(true);
                controllers.await;
            }
            signal = &mut shutdown => {
                tracing::info!(signal, "shutting down: finishing the reconciles in flight");
                let _ = stop.send(true);
                controllers.await;
                quit = true;
            }
        }
        // Whoever leads next need not wait for these to expire.
        context.claims.release_all().await;
        health.stats.set_leader(false);
        if quit {
            break;
        }
    }
    if let Some(notifier) = &settings.notifier {
        notifier.finish().await;
    }
    // Dropping the receiver makes the manager give the leader Lease up.
    drop(leading);
    let _ = tokio::time::timeout(Duration::from_secs(5), election).await;
    match failure {
        Some(message) => Err(ControllerError::LeaderElection {
            name: lease,
            message,
        }),
        None => Ok(()),
    }
}

/// One kube-runtime Controller per namespace in scope (one for the whole cluster when none is
/// given), until `stop` turns true.
async fn run_controllers<M: Metrics + 'static>(
    client: Client,
    context: Arc<Context<M>>,
    settings: &Settings,
    stop: watch::Receiver<bool>,
) {
    let scopes: Vec<Option<String>> = if settings.namespaces.is_empty() {
        vec![None]
    } else {
        settings.namespaces.iter().cloned().map(Some).collect()
    };
    let selector = instance_selector(settings.instance_id.as_deref());
    let watched: Vec<_> = scopes
        .into_iter()
        .map(|namespace| {
            let (caches, feeds) =
                Caches::new(client.clone(), namespace.as_deref(), Some(&selector));
            (namespace, caches, feeds)
        })
        .collect();
    let caches = CacheSet::new(watched.iter().map(|(_, c, _)| Arc::clone(c)).collect());
    *context.cluster.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(
        KubeCluster::with_caches(client.clone(), &settings.lease_namespace, caches.clone()),
    );
    context.claims.set_caches(Some(caches));
    let runs = watched.into_iter().map(|(namespace, caches, feeds)| {
        run_scope(namespace, caches, feeds, Arc::clone(&context), stop.clone())
    });
    futures::future::join_all(runs).await;
    // The watches stopped: what the caches show goes stale from here.
    context.claims.set_caches(None);
}

/// One kube-runtime Controller, triggered by the watches that feed `caches` (which every pass
/// reads instead of the API server).
async fn run_scope<M: Metrics + 'static>(
    namespace: Option<String>,
    caches: Arc<Caches>,
    feeds: Feeds,
    context: Arc<Context<M>>,
    mut stop: watch::Receiver<bool>,
) {
    let workers = context.workers;
    let identity = context.claims.identity().to_string();
    let controller = Controller::for_stream(feeds.rollouts, caches.rollouts.store());
    let store = controller.store();
    let known = controller.store();
    // Argo's object gauges read the same caches the passes read.
    context.health.stats.add_caches(
        controller.store(),
        caches.analysis_runs.store(),
        caches.experiments.store(),
    );
    let health = Arc::clone(&context.health);
    let scope = namespace.clone();
    // Deleted Rollouts get no reconcile: drop their phase from the gauge from time to time.
    // (A phase is recorded only by a reconcile, which needs the Rollout in the store first,
    // so a store that is still filling prunes nothing that it should keep.)
    let pruning = tokio::spawn(async move {
        loop {
            tokio::time::sleep(PRUNE_PHASES_EVERY).await;
            let keys: std::collections::HashSet<String> = known
                .state()
                .iter()
                .map(|r| format!("{}/{}", r.namespace_or_default(), r.name()))
                .collect();
            health.stats.retain_phases(|key| {
                let in_scope = scope
                    .as_deref()
                    .is_none_or(|ns| key.split_once('/').is_some_and(|(n, _)| n == ns));
                !in_scope || keys.contains(key)
            });
        }
    });
    controller
        .owns_stream(feeds.replica_sets)
        .owns_stream(feeds.analysis_runs)
        .owns_stream(feeds.experiments)
        // A Lease someone else wrote (a runner took, renewed or released it): look again at
        // its Rollout. The controller's own writes wake nothing.
        .watches_stream(feeds.leases, move |lease: Lease| {
            let held_by_us = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(identity.as_str());
            let rollout = lease
                .name_any()
                .strip_prefix(LEASE_PREFIX)
                .map(str::to_string);
            match (rollout, lease.namespace()) {
                (Some(rollout), Some(namespace)) if !held_by_us => {
                    Some(ObjectRef::<Rollout>::new(&rollout).within(&namespace))
                }
                _ => None,
            }
        })
        // Services are the user's, not owned: map one to the Rollouts that name it.
        .watches_stream(feeds.services, move |service: Service| {
            let namespace = service.namespace();
            let name = service.name_any();
            store
                .state()
                .into_iter()
                .filter(|rollout| {
                    rollout.metadata.namespace == namespace
                        && rollout.service_names().contains(&name.as_str())
                })
                .map(|rollout| ObjectRef::from_obj(&*rollout))
                .collect::<Vec<_>>()
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(workers))
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
    pruning.abort();
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("cannot take the Rollout's Lease: {0}")]
    Lease(#[from] kube::Error),
}

impl ReconcileError {
    /// The `kind` label of the error counter.
    fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Lease(_) => "lease",
            ReconcileError::Driver(DriverError::Cluster(error)) => match error {
                ClusterError::Conflict { .. } => "conflict",
                ClusterError::Unavailable(_) => "unavailable",
                ClusterError::NotFound { .. } => "not_found",
                ClusterError::Api(_) => "api",
                ClusterError::Fenced(_) => "fenced",
            },
            ReconcileError::Driver(DriverError::RolloutNotFound { .. }) => "not_found",
            ReconcileError::Driver(DriverError::NoConvergence(_)) => "no_convergence",
        }
    }

    fn is_transient(&self) -> bool {
        match self {
            ReconcileError::Driver(DriverError::Cluster(error)) => error.is_transient(),
            ReconcileError::Lease(_) => true,
            ReconcileError::Driver(_) => false,
        }
    }
}

async fn reconcile<M: Metrics + 'static>(
    rollout: Arc<Rollout>,
    context: Arc<Context<M>>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let _running = context.health.stats.begin_reconcile(format!(
        "{}/{}",
        rollout.namespace_or_default(),
        rollout.name()
    ));
    let result = step(&rollout, &context).await;
    let stats = &context.health.stats;
    match &result {
        Ok((kind, _)) => stats.reconciled(*kind, started.elapsed()),
        Err(error) => {
            stats.reconciled(ReconcileResult::Error, started.elapsed());
            stats.error(error.kind());
        }
    }
    result.map(|(_, action)| action)
}

fn error_policy<M>(rollout: Arc<Rollout>, error: &ReconcileError, _: Arc<Context<M>>) -> Action {
    tracing::warn!(
        rollout = %format!("{}/{}", rollout.namespace_or_default(), rollout.name()),
        %error,
        "reconcile failed; retrying"
    );
    // Transient errors (conflicts, an overloaded API server) clear up quickly; others need
    // someone to change something, which the watch sees anyway.
    if error.is_transient() {
        Action::requeue(Duration::from_secs(1))
    } else {
        Action::requeue(Duration::from_secs(30))
    }
}

/// How often the phase gauge forgets Rollouts that are gone.
const PRUNE_PHASES_EVERY: Duration = Duration::from_secs(10);

/// Passes one reconcile may run while each changes something, before it yields to the other
/// Rollouts (a rollout takes a handful; the driver's own oscillation guard is 200).
const MAX_PASSES_PER_RECONCILE: usize = 20;

/// How long until `at`, at least a little (a zero requeue would spin).
fn until(at: Timestamp) -> Duration {
    let left = at.duration_since(Timestamp::now());
    Duration::try_from(left)
        .unwrap_or_default()
        .max(Duration::from_millis(100))
}

fn phase_of(rollout: &Rollout) -> Option<String> {
    let status = rollout.status.as_ref()?;
    let (phase, _) = observed_phase(rollout.metadata.generation, &rollout.spec, status);
    Some(phase.to_string())
}

async fn step<M: Metrics + 'static>(
    rollout: &Rollout,
    context: &Context<M>,
) -> Result<(ReconcileResult, Action), ReconcileError> {
    let namespace = rollout.namespace_or_default();
    let name = rollout.name();
    let key = format!("{namespace}/{name}");
    let stats = &context.health.stats;
    if rollout.metadata.deletion_timestamp.is_some() {
        context.claims.release(rollout).await;
        stats.set_phase(&key, None);
        return Ok((ReconcileResult::Driven, Action::await_change()));
    }
    let cluster = Arc::clone(&context.cluster.lock().unwrap_or_else(|e| e.into_inner()));
    let check = |rollout: &Rollout, observed: &Observed| {
        crate::validate::cluster::missing_reference(rollout, observed)
    };
    // A settled Rollout that this controller does not hold costs nothing: the caches show
    // that a pass would change nothing, so there is no Lease to take and nothing to write.
    if !context.claims.holds(rollout) {
        let mut silent = Silent;
        let mut driver =
            Driver::new(&*cluster, &context.providers, &mut silent).with_spec_check(&check);
        if driver.is_settled(namespace, name).await? {
            stats.set_phase(&key, phase_of(rollout).as_deref());
            return Ok((ReconcileResult::Idle, Action::await_change()));
        }
    }
    match context.claims.claim(rollout).await? {
        Claim::Elsewhere {
            holder,
            until: expiry,
        } => {
            stats.set_phase(&key, phase_of(rollout).as_deref());
            let first = context
                .holders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.clone(), holder.clone())
                .as_ref()
                != Some(&holder);
            if first {
                tracing::info!(rollout = %key, %holder, "driven elsewhere; observing");
                let event = Event {
                    event_type: EventType::Normal,
                    reason: "DrivenElsewhere".into(),
                    message: format!(
                        "{holder} holds the Rollout's Lease; the controller observes until it is \
                         released or expires"
                    ),
                };
                cluster
                    .record_events(Owner::Rollout(rollout), &[event])
                    .await;
            }
            return Ok((ReconcileResult::Skipped, Action::requeue(until(expiry))));
        }
        Claim::Held { took_from } => {
            let previous = context
                .holders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            if let Some(previous) = took_from.or(previous) {
                tracing::info!(rollout = %key, %previous, "took over");
                let event = Event {
                    event_type: EventType::Normal,
                    reason: "TookOver".into(),
                    message: format!(
                        "{previous} no longer holds the Rollout's Lease; {} drives it",
                        context.claims.identity()
                    ),
                };
                cluster
                    .record_events(Owner::Rollout(rollout), &[event])
                    .await;
            }
        }
    }
    let mut decisions = Decisions {
        stats: &context.health,
        key: &key,
        notifier: context.notifier.as_deref(),
        unnotified: None,
    };
    let mut driver =
        Driver::new(&*cluster, &context.providers, &mut decisions).with_spec_check(&check);
    // Passes follow each other without delay while they change something, as in
    // `Driver::run`: a plan may take a safe state through two passes (scale the old version
    // down, then move the Service), and the gap between them must stay as short as a
    // runner's.
    let mut passes = 0;
    let pass = loop {
        let Some(pass) = driver.reconcile(namespace, name).await? else {
            context.claims.release(rollout).await;
            stats.set_phase(&key, None);
            return Ok((ReconcileResult::Driven, Action::await_change()));
        };
        passes += 1;
        if !pass.changed || passes >= MAX_PASSES_PER_RECONCILE {
            break pass;
        }
    };
    stats.set_phase(&key, phase_of(&pass.rollout).as_deref());
    if pass.changed {
        // Still changing: let the other Rollouts have a turn, then go on.
        return Ok((ReconcileResult::Driven, Action::requeue(Duration::ZERO)));
    }
    let Some(next) = pass.next_at else {
        // Settled: nothing is due until someone changes something, which the watches see.
        // Free the Lease so a runner can take the next release without waiting.
        context.claims.release(rollout).await;
        return Ok((ReconcileResult::Driven, Action::await_change()));
    };
    let wait = until(next).min(context.claims.renew_every());
    Ok((ReconcileResult::Driven, Action::requeue(wait)))
}

/// A reporter for a look that acts on nothing.
struct Silent;

impl Reporter for Silent {
    fn report(&mut self, _: &Update<'_>) {}
}

/// The controller's reporter: every decision goes to the log (Events are written by the
/// cluster already) and to the notifier, measurements to the counters.
struct Decisions<'a> {
    stats: &'a Health,
    key: &'a str,
    notifier: Option<&'a Notifier>,
    /// Events not notified yet, with the Rollout they happened on: they go out with the
    /// status the pass writes, so a notification shows the phase the event led to.
    unnotified: Option<(Rollout, Vec<Event>)>,
}

impl Decisions<'_> {
    fn notify(&mut self, after: Option<&Rollout>) {
        if let (Some(notifier), Some((before, events))) = (self.notifier, self.unnotified.take()) {
            notifier.notify(after.unwrap_or(&before), &events);
        }
    }
}

impl Drop for Decisions<'_> {
    fn drop(&mut self) {
        self.notify(None);
    }
}

impl Reporter for Decisions<'_> {
    fn report(&mut self, update: &Update<'_>) {
        let rollout = self.key;
        match update {
            Update::Actions { actions, .. } => {
                for action in *actions {
                    tracing::info!(rollout, action = %action.describe(), "performed");
                }
            }
            Update::Events {
                events,
                rollout: subject,
                ..
            } => {
                if self.notifier.is_some() {
                    let (_, pending) = self
                        .unnotified
                        .get_or_insert_with(|| ((*subject).clone(), Vec::new()));
                    pending.extend(events.iter().cloned());
                }
                for event in *events {
                    tracing::info!(
                        rollout,
                        reason = %event.reason,
                        // Not `message`: that is the log line's own field.
                        note = %event.message,
                        "decision"
                    );
                }
            }
            Update::Status { rollout: after, .. } => {
                self.notify(Some(after));
                tracing::info!(
                    rollout,
                    phase = %crate::driver::phase_line(after),
                    "status"
                );
            }
            Update::Measurement {
                metric,
                measurement,
                run,
                ..
            } => {
                let verdict = measurement.phase.as_str();
                self.stats.stats.measurement(verdict);
                tracing::info!(
                    rollout,
                    analysis_run = %run.metadata.name.as_deref().unwrap_or(""),
                    metric = %metric,
                    verdict,
                    "measured"
                );
            }
            Update::AnalysisRunCompleted { run, status, .. } => {
                tracing::info!(
                    rollout,
                    analysis_run = %run.metadata.name.as_deref().unwrap_or(""),
                    phase = %status.phase.as_str(),
                    "analysis finished"
                );
            }
            Update::Started { .. } | Update::Finished { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_scoping_follows_argo() {
        assert_eq!(
            instance_selector(None),
            "!argo-rollouts.argoproj.io/controller-instance-id"
        );
        assert_eq!(
            instance_selector(Some("blue")),
            "argo-rollouts.argoproj.io/controller-instance-id=blue"
        );
        // Never the name of a Rollout's Lease, whatever the Rollout is called.
        assert!(!leader_lease_name(None).starts_with(crate::cluster::lease::LEASE_PREFIX));
        assert_eq!(
            leader_lease_name(Some("blue")),
            "rollout-runner.controller-blue"
        );
    }
}
