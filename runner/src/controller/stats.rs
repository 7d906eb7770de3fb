//! What the controller counts, and its rendering in the Prometheus text exposition format.
//!
//! Plain counters behind one mutex, rendered by hand: the handful of series below do not
//! justify a metrics framework with global state, and the format is a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the reconcile duration histogram: a step is a few API calls,
/// an analysis measurement can take seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

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

#[derive(Debug, Default)]
struct Histogram {
    /// Cumulative counts, one per bucket of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    leader: bool,
    /// The phase of every Rollout in scope, by `namespace/name`.
    phases: BTreeMap<String, String>,
    reconciles: BTreeMap<ReconcileResult, u64>,
    duration: Histogram,
    /// Errors by kind (`conflict`, `unavailable`, `api`, ...).
    errors: BTreeMap<String, u64>,
    measurements: BTreeMap<String, u64>,
    requests: BTreeMap<String, u64>,
    responses: BTreeMap<String, u64>,
}

/// The controller's counters, shared by reconciles, the API client and the HTTP server.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

impl Stats {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while counting leaves plain numbers behind: keep serving them.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inner)
    }

    pub fn set_leader(&self, leader: bool) {
        self.with(|i| i.leader = leader);
    }

    pub fn is_leader(&self) -> bool {
        self.with(|i| i.leader)
    }

    /// Record the phase of a Rollout (`None`: it is gone or out of scope).
    pub fn set_phase(&self, key: &str, phase: Option<&str>) {
        self.with(|i| match phase {
            Some(phase) => {
                i.phases.insert(key.to_string(), phase.to_string());
            }
            None => {
                i.phases.remove(key);
            }
        });
    }

    /// Forget the phases of Rollouts for which `keep(namespace/name)` is false (deleted, or
    /// out of scope: no reconcile runs for those any more).
    pub fn retain_phases(&self, keep: impl Fn(&str) -> bool) {
        self.with(|i| i.phases.retain(|key, _| keep(key)));
    }

    pub fn reconciled(&self, result: ReconcileResult, took: Duration) {
        self.with(|i| {
            *i.reconciles.entry(result).or_default() += 1;
            let seconds = took.as_secs_f64();
            let histogram = &mut i.duration;
            histogram.count += 1;
            histogram.sum += seconds;
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets.iter_mut()) {
                if seconds <= *bound {
                    *count += 1;
                }
            }
        });
    }

    pub fn error(&self, kind: &str) {
        self.with(|i| *i.errors.entry(kind.to_string()).or_default() += 1);
    }

    /// A completed analysis measurement, by verdict (`Successful`, `Failed`, ...).
    pub fn measurement(&self, verdict: &str) {
        self.with(|i| *i.measurements.entry(verdict.to_string()).or_default() += 1);
    }

    pub fn request(&self, method: &str) {
        self.with(|i| *i.requests.entry(method.to_string()).or_default() += 1);
    }

    pub fn response(&self, code: u16) {
        self.with(|i| *i.responses.entry(code.to_string()).or_default() += 1);
    }

    /// Reconciles so far (all results), for the benchmark's CPU-per-reconcile figure.
    pub fn reconcile_count(&self) -> u64 {
        self.with(|i| i.reconciles.values().sum())
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        self.with(|i| {
            let mut out = String::new();
            family(
                &mut out,
                "rollout_runner_controller_leader",
                "gauge",
                "1 when this replica leads and drives Rollouts.",
            );
            let _ = writeln!(
                out,
                "rollout_runner_controller_leader {}",
                u8::from(i.leader)
            );

            family(
                &mut out,
                "rollout_runner_rollouts",
                "gauge",
                "Rollouts in scope by phase, as last reconciled.",
            );
            let mut by_phase: BTreeMap<&str, u64> =
                ["Progressing", "Paused", "Healthy", "Degraded"]
                    .into_iter()
                    .map(|p| (p, 0))
                    .collect();
            for phase in i.phases.values() {
                *by_phase.entry(phase.as_str()).or_default() += 1;
            }
            for (phase, count) in by_phase {
                let _ = writeln!(
                    out,
                    "rollout_runner_rollouts{{phase=\"{}\"}} {count}",
                    escape(phase)
                );
            }

            family(
                &mut out,
                "rollout_runner_reconcile_total",
                "counter",
                "Reconciles by result: driven (one driver step), skipped (a runner holds the \
                 Rollout's Lease), idle (settled: nothing to do, no request made), error.",
            );
            for result in [
                ReconcileResult::Driven,
                ReconcileResult::Skipped,
                ReconcileResult::Idle,
                ReconcileResult::Error,
            ] {
                let count = i.reconciles.get(&result).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "rollout_runner_reconcile_total{{result=\"{}\"}} {count}",
                    result.as_str()
                );
            }

            family(
                &mut out,
                "rollout_runner_reconcile_duration_seconds",
                "histogram",
                "Time a reconcile took, lease check and driver step included.",
            );
            for (bound, count) in BUCKETS.iter().zip(i.duration.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "rollout_runner_reconcile_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "rollout_runner_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {}",
                i.duration.count
            );
            let _ = writeln!(
                out,
                "rollout_runner_reconcile_duration_seconds_sum {}",
                i.duration.sum
            );
            let _ = writeln!(
                out,
                "rollout_runner_reconcile_duration_seconds_count {}",
                i.duration.count
            );

            labelled(
                &mut out,
                "rollout_runner_reconcile_errors_total",
                "Failed reconciles by kind of error.",
                "kind",
                &i.errors,
            );
            labelled(
                &mut out,
                "rollout_runner_analysis_measurements_total",
                "Completed analysis measurements by verdict.",
                "verdict",
                &i.measurements,
            );
            labelled(
                &mut out,
                "rollout_runner_kube_requests_total",
                "Requests sent to the Kubernetes API server, by HTTP method.",
                "method",
                &i.requests,
            );
            labelled(
                &mut out,
                "rollout_runner_kube_responses_total",
                "Responses from the Kubernetes API server, by HTTP status code.",
                "code",
                &i.responses,
            );
            out
        })
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn labelled(out: &mut String, name: &str, help: &str, label: &str, values: &BTreeMap<String, u64>) {
    family(out, name, "counter", help);
    for (value, count) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
        let text = stats.render();
        for line in [
            "rollout_runner_controller_leader 1",
            "rollout_runner_rollouts{phase=\"Healthy\"} 2",
            "rollout_runner_rollouts{phase=\"Paused\"} 0",
            "rollout_runner_reconcile_total{result=\"driven\"} 1",
            "rollout_runner_reconcile_total{result=\"skipped\"} 1",
            "rollout_runner_reconcile_duration_seconds_bucket{le=\"0.005\"} 1",
            "rollout_runner_reconcile_duration_seconds_bucket{le=\"0.05\"} 2",
            "rollout_runner_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2",
            "rollout_runner_reconcile_duration_seconds_count 2",
            "rollout_runner_reconcile_errors_total{kind=\"api \\\"x\\\"\"} 1",
            "rollout_runner_analysis_measurements_total{verdict=\"Successful\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        assert_eq!(stats.reconcile_count(), 2);
    }
}
