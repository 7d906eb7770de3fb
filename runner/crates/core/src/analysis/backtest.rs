//! Backtesting: what a template's metrics would have measured, and what its run would have
//! decided, at past times. The measuring is the caller's (the providers, with `now` set to
//! each past time); this module only picks the times and judges the measurements, as the
//! AnalysisRun lifecycle would.
//!
//! Two verdicts per window:
//! - per interval: the worst phase among the metrics' measurements at that time (a run that
//!   took one measurement of each metric then);
//! - for the whole window: each metric's measurements counted as Argo counts them, then
//!   `assessMetricStatus` with the metric's failureLimit, inconclusiveLimit and
//!   consecutiveErrorLimit, as for a run that took every one of them.

use jiff::{SignedDuration, Timestamp};

use rollout_runner_api::crd::{AnalysisPhase, Measurement, Metric, MetricResult};

use super::run::{assess_metric, count};

/// Argo's order of phases, best to worst (`analysisStatusOrder`).
fn severity(phase: AnalysisPhase) -> u8 {
    match phase {
        AnalysisPhase::Successful => 0,
        AnalysisPhase::Running => 1,
        AnalysisPhase::Pending => 2,
        AnalysisPhase::Inconclusive => 3,
        AnalysisPhase::Error => 4,
        AnalysisPhase::Failed => 5,
    }
}

/// The worst of `phases` (Successful when there are none).
pub fn worst(phases: impl IntoIterator<Item = AnalysisPhase>) -> AnalysisPhase {
    phases
        .into_iter()
        .max_by_key(|p| severity(*p))
        .unwrap_or(AnalysisPhase::Successful)
}

/// `from`, `from + step`, ... up to and including `to`.
pub fn times(from: Timestamp, to: Timestamp, step: SignedDuration) -> Vec<Timestamp> {
    let mut out = Vec::new();
    if step <= SignedDuration::ZERO {
        return out;
    }
    let mut t = from;
    while t <= to {
        out.push(t);
        match t.checked_add(step) {
            Ok(next) => t = next,
            Err(_) => break,
        }
    }
    out
}

/// The metric's result after `measurements`, counted as the AnalysisRun reconciler counts
/// them, and its phase once the run ends.
pub fn assess(metric: &Metric, measurements: &[Measurement]) -> (MetricResult, AnalysisPhase) {
    let mut result = MetricResult {
        name: metric.name.clone(),
        ..Default::default()
    };
    for m in measurements {
        count(&mut result, m.phase);
        result.measurements.push(m.clone());
    }
    let phase = assess_metric(metric, &result, true);
    result.phase = phase;
    (result, phase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(phase: AnalysisPhase) -> Measurement {
        Measurement {
            phase,
            ..Default::default()
        }
    }

    #[test]
    fn times_include_both_ends() {
        let from: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let to: Timestamp = "2026-01-01T00:03:00Z".parse().unwrap();
        assert_eq!(times(from, to, SignedDuration::from_mins(1)).len(), 4);
        assert_eq!(times(from, to, SignedDuration::ZERO), vec![]);
    }

    #[test]
    fn the_window_verdict_uses_the_limits() {
        use AnalysisPhase::*;
        let metric: Metric = serde_json::from_value(serde_json::json!({
            "name": "m", "failureLimit": 1, "provider": {"prometheus": {"query": "up"}},
        }))
        .unwrap();
        let one_failure = [Successful, Failed, Successful].map(measurement);
        assert_eq!(assess(&metric, &one_failure).1, Successful);
        let two = [Failed, Successful, Failed].map(measurement);
        assert_eq!(assess(&metric, &two).1, Failed);
        let errors = [Error; 5].map(measurement);
        assert_eq!(assess(&metric, &errors).1, Error);
        assert_eq!(worst([Successful, Inconclusive, Error]), Error);
    }
}
