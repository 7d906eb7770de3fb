//! Recorded metric values, for replaying a release record (`simulate --replay`): each
//! measurement takes the recorded value nearest in time (since the release started) and judges
//! it with the conditions of the metric as given now, so a changed template decides anew on
//! the same data. Nearest rather than latest-before: a replay's pods and measurements run on
//! a virtual clock that is a few seconds off the recorded wall clock either way.

use std::collections::BTreeMap;

use jiff::Timestamp;

use rollout_runner_api::crd::{AnalysisPhase, Measurement, Metric};
use rollout_runner_core::analysis::run::TaskKind;
use rollout_runner_core::engine::conditions::meta_time;
use rollout_runner_expr::{Value, evaluate_result};

use super::{MeasureContext, Metrics, error_measurement};

/// One recorded measurement of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedPoint {
    /// Seconds since the release started.
    pub elapsed_seconds: f64,
    /// The value as recorded (provider text: `[0.5]`, `0.5`, a JSON body); empty when the
    /// provider gives none (Job metrics).
    pub value: String,
    pub phase: AnalysisPhase,
    pub message: String,
    /// The provider's kind when recorded (`prometheus` values that look like `[..]` are
    /// vectors).
    pub provider: String,
}

/// The provider of a replay.
#[derive(Debug, Clone)]
pub struct Recorded {
    start: Timestamp,
    series: BTreeMap<String, Vec<RecordedPoint>>,
}

impl Recorded {
    pub fn new(start: Timestamp, series: BTreeMap<String, Vec<RecordedPoint>>) -> Self {
        Self { start, series }
    }

    /// The recorded point nearest to `elapsed` seconds (the earlier one on a tie).
    pub fn nearest(&self, metric: &str, elapsed: f64) -> Option<&RecordedPoint> {
        self.series.get(metric)?.iter().min_by(|a, b| {
            let da = (a.elapsed_seconds - elapsed).abs();
            let db = (b.elapsed_seconds - elapsed).abs();
            da.total_cmp(&db)
                .then(a.elapsed_seconds.total_cmp(&b.elapsed_seconds))
        })
    }
}

fn number(text: &str) -> Option<f64> {
    match text.trim() {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// The value a recorded text stood for, as the provider handed it to the conditions.
pub fn recorded_value(text: &str, provider: &str) -> Value {
    let trimmed = text.trim();
    if provider == "prometheus" {
        if let Some(inner) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let samples: Option<Vec<f64>> = if inner.trim().is_empty() {
                Some(Vec::new())
            } else {
                inner.split(',').map(number).collect()
            };
            if let Some(samples) = samples {
                return Value::Vector(samples);
            }
        }
        if let Some(n) = number(trimmed) {
            return Value::Float(n);
        }
    }
    match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(json) => Value::from(json),
        Err(_) => match number(trimmed) {
            Some(n) => Value::Float(n),
            None => Value::String(text.to_string()),
        },
    }
}

impl Metrics for Recorded {
    async fn measure(
        &self,
        context: MeasureContext<'_>,
        metric: &Metric,
        _task: &TaskKind,
    ) -> Measurement {
        let now = context.now;
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let Some(point) = self.nearest(&metric.name, elapsed) else {
            return error_measurement(
                now,
                format!(
                    "metric `{}` has no measurements in the release record",
                    metric.name
                ),
            );
        };
        let at = meta_time(now);
        if point.value.is_empty() {
            // Nothing to judge again (a Job metric, or a provider error): the recorded verdict.
            return Measurement {
                phase: point.phase,
                message: point.message.clone(),
                started_at: Some(at.clone()),
                finished_at: Some(at),
                ..Default::default()
            };
        }
        let assessment = evaluate_result(
            &recorded_value(&point.value, &point.provider),
            Some(metric.success_condition.as_str()),
            Some(metric.failure_condition.as_str()),
            now,
        );
        Measurement {
            phase: super::common::status_phase(assessment.phase),
            message: assessment.message.unwrap_or_default(),
            started_at: Some(at.clone()),
            finished_at: Some(at),
            value: point.value.clone(),
            metadata: BTreeMap::from([("explanation".to_string(), assessment.explanation)]),
            resume_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_texts_become_the_values_providers_gave() {
        assert_eq!(
            recorded_value("[0.92]", "prometheus"),
            Value::Vector(vec![0.92])
        );
        assert_eq!(recorded_value("0.5", "prometheus"), Value::Float(0.5));
        assert_eq!(recorded_value("0.5", "web"), Value::Float(0.5));
        assert!(matches!(recorded_value("[1, 2]", "web"), Value::Array(_)));
        assert!(matches!(
            recorded_value("{\"ok\": true}", "web"),
            Value::Map(_)
        ));
    }

    #[test]
    fn the_nearest_point_in_time_applies() {
        let point = |t: f64, v: &str| RecordedPoint {
            elapsed_seconds: t,
            value: v.into(),
            phase: AnalysisPhase::Successful,
            message: String::new(),
            provider: "web".into(),
        };
        let recorded = Recorded::new(
            Timestamp::UNIX_EPOCH,
            BTreeMap::from([("m".to_string(), vec![point(10.4, "1"), point(70.2, "2")])]),
        );
        assert_eq!(recorded.nearest("m", 9.0).unwrap().value, "1");
        assert_eq!(recorded.nearest("m", 68.0).unwrap().value, "2");
        assert!(recorded.nearest("other", 1.0).is_none());
    }
}
