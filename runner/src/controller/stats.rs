//! What the controller counts, exposed with the `prometheus-client` crate in the Prometheus
//! text format (version 0.0.4).
//!
//! Two sets of families:
//! - `rollout_runner_*`: the controller's own (leadership, reconciles, errors, measurements,
//!   API requests);
//! - the families Argo Rollouts' controller exposes and dashboards read (`rollout_info`,
//!   `rollout_info_replicas_*`, `analysis_run_info`, `analysis_run_metric_phase`,
//!   `experiment_info`, `controller_clientset_k8s_request_total`), with Argo's names, labels
//!   and label values (`controller/metrics/` of argo-rollouts; [`argo`] says how each is
//!   computed, and a test reads Argo's definitions so that the names cannot drift).
//!
//! The object gauges are computed at scrape time from the controller's watch caches, as Argo's
//! collectors read its informers.

pub mod argo;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::crd::{AnalysisRun, Experiment, Rollout};

/// Upper bounds (seconds) of the reconcile duration histogram: a step is a few API calls,
/// an analysis measurement can take seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The phases `rollout_runner_rollouts` always has a series for.
const PHASES: [&str; 4] = ["Progressing", "Paused", "Healthy", "Degraded"];

/// How a reconcile ended, as the `result` label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReconcileResult {
    /// The driver ran one step.
    Driven,
    /// Someone else (a CI runner) holds the Rollout's Lease: the controller only looked.
    Skipped,
    /// The Rollout is settled: the caches showed nothing to do, no request was made.
    Idle,
    /// The step failed; retried with backoff.
    Error,
}

impl ReconcileResult {
    fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Driven => "driven",
            ReconcileResult::Skipped => "skipped",
            ReconcileResult::Idle => "idle",
            ReconcileResult::Error => "error",
        }
    }
}

type Labels = Vec<(&'static str, String)>;

/// The watch caches the object gauges are computed from, one set per namespace in scope.
#[derive(Debug, Default)]
struct Caches {
    rollouts: Vec<Store<Rollout>>,
    analysis_runs: Vec<Store<AnalysisRun>>,
    experiments: Vec<Store<Experiment>>,
}

/// Scrape-time families: the phase gauge and Argo's object gauges.
#[derive(Debug, Default)]
struct State {
    /// The phase of every Rollout in scope, by `namespace/name`.
    phases: Mutex<BTreeMap<String, String>>,
    caches: Mutex<Caches>,
}

impl Collector for State {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut by_phase: BTreeMap<String, i64> =
            PHASES.iter().map(|p| (p.to_string(), 0)).collect();
        for phase in lock(&self.phases).values() {
            *by_phase.entry(phase.clone()).or_default() += 1;
        }
        let family = encoder.encode_descriptor(
            "rollout_runner_rollouts",
            "Rollouts in scope by phase, as last reconciled.",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        );
        let mut family = family?;
        for (phase, count) in by_phase {
            let labels = vec![("phase", phase)];
            ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
        }
        let caches = lock(&self.caches);
        let rollouts: Vec<_> = caches.rollouts.iter().flat_map(Store::state).collect();
        let runs: Vec<_> = caches.analysis_runs.iter().flat_map(Store::state).collect();
        let experiments: Vec<_> = caches.experiments.iter().flat_map(Store::state).collect();
        drop(caches);
        argo::encode(&mut encoder, &rollouts, &runs, &experiments)
    }
}

/// Reconciles in flight, for the liveness check.
#[derive(Debug, Default)]
struct InFlight {
    next: AtomicU64,
    started: Mutex<HashMap<u64, (String, Instant)>>,
}

/// Held while a reconcile runs; dropping it marks the reconcile done.
pub struct ReconcileGuard {
    in_flight: Arc<InFlight>,
    id: u64,
}

impl Drop for ReconcileGuard {
    fn drop(&mut self) {
        lock(&self.in_flight.started).remove(&self.id);
    }
}

/// The controller's counters, shared by reconciles, the API client and the HTTP server.
#[derive(Debug)]
pub struct Stats {
    registry: Registry,
    leader: Gauge,
    reconciles: Family<Labels, Counter>,
    duration: Histogram,
    errors: Family<Labels, Counter>,
    measurements: Family<Labels, Counter>,
    requests: Family<Labels, Counter>,
    responses: Family<Labels, Counter>,
    k8s_requests: Family<Labels, Counter>,
    reconcile_count: AtomicU64,
    state: Arc<State>,
    in_flight: Arc<InFlight>,
}

impl Default for Stats {
    fn default() -> Self {
        let mut registry = Registry::default();
        let leader = Gauge::default();
        registry.register(
            "rollout_runner_controller_leader",
            "1 when this replica leads and drives Rollouts.",
            leader.clone(),
        );
        let reconciles = Family::<Labels, Counter>::default();
        registry.register(
            "rollout_runner_reconcile",
            "Reconciles by result: driven (one driver step), skipped (a runner holds the \
             Rollout's Lease), idle (settled: nothing to do, no request made), error.",
            reconciles.clone(),
        );
        for result in [
            ReconcileResult::Driven,
            ReconcileResult::Skipped,
            ReconcileResult::Idle,
            ReconcileResult::Error,
        ] {
            // Every result has a series from the start, so rates work from the first scrape.
            let _ = reconciles.get_or_create(&vec![("result", result.as_str().to_string())]);
        }
        let duration = Histogram::new(BUCKETS);
        registry.register(
            "rollout_runner_reconcile_duration_seconds",
            "Time a reconcile took, lease check and driver step included.",
            duration.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        registry.register(
            "rollout_runner_reconcile_errors",
            "Failed reconciles by kind of error.",
            errors.clone(),
        );
        let measurements = Family::<Labels, Counter>::default();
        registry.register(
            "rollout_runner_analysis_measurements",
            "Completed analysis measurements by verdict.",
            measurements.clone(),
        );
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "rollout_runner_kube_requests",
            "Requests sent to the Kubernetes API server, by HTTP method.",
            requests.clone(),
        );
        let responses = Family::<Labels, Counter>::default();
        registry.register(
            "rollout_runner_kube_responses",
            "Responses from the Kubernetes API server, by HTTP status code.",
            responses.clone(),
        );
        let k8s_requests = Family::<Labels, Counter>::default();
        registry.register(
            argo::K8S_REQUEST_COUNTER,
            argo::K8S_REQUEST_HELP,
            k8s_requests.clone(),
        );
        let state = Arc::new(State::default());
        registry.register_collector(Box::new(Arc::clone(&state)));
        Self {
            registry,
            leader,
            reconciles,
            duration,
            errors,
            measurements,
            requests,
            responses,
            k8s_requests,
            reconcile_count: AtomicU64::new(0),
            state,
            in_flight: Arc::default(),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while counting leaves plain numbers behind: keep serving them.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stats {
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
        if !leader {
            // The caches belong to the watches that just stopped.
            *lock(&self.state.caches) = Caches::default();
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader.get() == 1
    }

    /// Record the phase of a Rollout (`None`: it is gone or out of scope).
    pub fn set_phase(&self, key: &str, phase: Option<&str>) {
        let mut phases = lock(&self.state.phases);
        match phase {
            Some(phase) => {
                phases.insert(key.to_string(), phase.to_string());
            }
            None => {
                phases.remove(key);
            }
        }
    }

    /// Forget the phases of Rollouts for which `keep(namespace/name)` is false (deleted, or
    /// out of scope: no reconcile runs for those any more).
    pub fn retain_phases(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.state.phases).retain(|key, _| keep(key));
    }

    /// Compute Argo's object gauges from these watch caches (until leadership is lost).
    pub fn add_caches(
        &self,
        rollouts: Store<Rollout>,
        analysis_runs: Store<AnalysisRun>,
        experiments: Store<Experiment>,
    ) {
        let mut caches = lock(&self.state.caches);
        caches.rollouts.push(rollouts);
        caches.analysis_runs.push(analysis_runs);
        caches.experiments.push(experiments);
    }

    /// Mark a reconcile of `key` as running until the guard is dropped.
    pub fn begin_reconcile(&self, key: String) -> ReconcileGuard {
        let id = self.in_flight.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.in_flight.started).insert(id, (key, Instant::now()));
        ReconcileGuard {
            in_flight: Arc::clone(&self.in_flight),
            id,
        }
    }

    /// The reconcile that has been running the longest, when it has run longer than `limit`:
    /// the reconcile loop is stuck on it.
    pub fn stuck_reconcile(&self, limit: Duration) -> Option<(String, Duration)> {
        lock(&self.in_flight.started)
            .values()
            .map(|(key, started)| (key.clone(), started.elapsed()))
            .filter(|(_, running)| *running > limit)
            .max_by_key(|(_, running)| *running)
    }

    pub fn reconciled(&self, result: ReconcileResult, took: Duration) {
        self.reconciles
            .get_or_create(&vec![("result", result.as_str().to_string())])
            .inc();
        self.duration.observe(took.as_secs_f64());
        self.reconcile_count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&vec![("kind", kind.to_string())])
            .inc();
    }

    /// A completed analysis measurement, by verdict (`Successful`, `Failed`, ...).
    pub fn measurement(&self, verdict: &str) {
        self.measurements
            .get_or_create(&vec![("verdict", verdict.to_string())])
            .inc();
    }

    /// A request to the API server and its status code (0: no answer).
    pub fn request(&self, method: &str, path_and_query: &str, code: u16) {
        self.requests
            .get_or_create(&vec![("method", method.to_string())])
            .inc();
        if code != 0 {
            self.responses
                .get_or_create(&vec![("code", code.to_string())])
                .inc();
        }
        let info = argo::request_info(method, path_and_query);
        self.k8s_requests
            .get_or_create(&vec![
                ("kind", info.kind),
                ("namespace", info.namespace),
                ("name", info.name),
                ("verb", info.verb.to_string()),
                ("status_code", code.to_string()),
            ])
            .inc();
    }

    /// Reconciles so far (all results), for the benchmark's CPU-per-reconcile figure.
    pub fn reconcile_count(&self) -> u64 {
        self.reconcile_count.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(error) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::warn!(%error, "cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_phases_histogram_and_escaped_labels() {
        let stats = Stats::default();
        stats.set_leader(true);
        stats.set_phase("a/one", Some("Healthy"));
        stats.set_phase("a/two", Some("Paused"));
        stats.set_phase("a/three", Some("Healthy"));
        stats.set_phase("a/two", None);
        stats.reconciled(ReconcileResult::Driven, Duration::from_millis(30));
        stats.reconciled(ReconcileResult::Skipped, Duration::from_millis(2));
        stats.error("api \"x\"");
        stats.measurement("Successful");
        stats.request(
            "GET",
            "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/web",
            200,
        );
        let text = stats.render();
        for line in [
            "rollout_runner_controller_leader 1",
            "rollout_runner_rollouts{phase=\"Healthy\"} 2",
            "rollout_runner_rollouts{phase=\"Paused\"} 0",
            "rollout_runner_reconcile_total{result=\"driven\"} 1",
            "rollout_runner_reconcile_total{result=\"skipped\"} 1",
            "rollout_runner_reconcile_total{result=\"idle\"} 0",
            "rollout_runner_reconcile_total{result=\"error\"} 0",
            "rollout_runner_reconcile_duration_seconds_bucket{le=\"0.005\"} 1",
            "rollout_runner_reconcile_duration_seconds_bucket{le=\"0.05\"} 2",
            "rollout_runner_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2",
            "rollout_runner_reconcile_duration_seconds_count 2",
            "rollout_runner_reconcile_errors_total{kind=\"api \\\"x\\\"\"} 1",
            "rollout_runner_analysis_measurements_total{verdict=\"Successful\"} 1",
            "rollout_runner_kube_requests_total{method=\"GET\"} 1",
            "rollout_runner_kube_responses_total{code=\"200\"} 1",
            "controller_clientset_k8s_request_total{kind=\"rollouts\",namespace=\"shop\",\
             name=\"web\",verb=\"Get\",status_code=\"200\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        assert_eq!(stats.reconcile_count(), 2);
    }

    #[test]
    fn a_reconcile_running_too_long_is_reported_stuck() {
        let stats = Stats::default();
        let guard = stats.begin_reconcile("shop/web".into());
        let other = stats.begin_reconcile("shop/api".into());
        drop(other);
        assert_eq!(stats.stuck_reconcile(Duration::from_secs(60)), None);
        std::thread::sleep(Duration::from_millis(20));
        let (key, running) = stats
            .stuck_reconcile(Duration::from_millis(10))
            .expect("stuck");
        assert_eq!(key, "shop/web");
        assert!(running >= Duration::from_millis(20));
        drop(guard);
        assert_eq!(stats.stuck_reconcile(Duration::from_millis(10)), None);
    }
}
