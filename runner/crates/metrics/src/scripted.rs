//! Scripted metric values for simulations: each metric's value is a function of the time since
//! the simulation started (constant, ramp, step, or a recorded series). Values are judged with
//! the metric's own conditions, exactly as a real provider's would be.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use rollout_runner_api::crd::{AnalysisPhase, Measurement, Metric, duration::parse_go_duration};
use rollout_runner_core::analysis::run::TaskKind;
use rollout_runner_core::engine::conditions::meta_time;
use rollout_runner_expr::{Value, evaluate_result};

use super::{MeasureContext, Metrics, error_measurement};

/// How a metric's value evolves, as written in a scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Script {
    /// The same value all the time.
    #[serde(default)]
    pub constant: Option<Number>,
    /// From `from` to `to`, linearly over `over`, then `to`.
    #[serde(default)]
    pub ramp: Option<Ramp>,
    /// `before` until `at`, then `after`.
    #[serde(default)]
    pub step: Option<Step>,
    /// Recorded `(seconds, value)` points; the latest point at or before now applies.
    #[serde(default)]
    pub series: Option<Vec<(f64, Number)>>,
    /// A JSON value (a web metric's body after its jsonPath), the same every time.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Skip the value and the conditions: every measurement ends in this phase (Job metrics).
    #[serde(default)]
    pub phase: Option<AnalysisPhase>,
    /// `vector` (a one-element list, as a Prometheus instant query returns) or `scalar`.
    /// Default: vector for Prometheus metrics, scalar otherwise.
    #[serde(default)]
    pub shape: Option<Shape>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Shape {
    Scalar,
    Vector,
}

/// A number, or one of the words Prometheus returns: `NaN`, `+Inf`, `-Inf`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "NumberText")]
pub struct Number(pub f64);

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberText {
    Number(f64),
    Text(String),
}

impl TryFrom<NumberText> for Number {
    type Error = String;

    fn try_from(value: NumberText) -> Result<Self, Self::Error> {
        match value {
            NumberText::Number(n) => Ok(Number(n)),
            NumberText::Text(text) => match text.as_str() {
                "NaN" => Ok(Number(f64::NAN)),
                "+Inf" | "Inf" => Ok(Number(f64::INFINITY)),
                "-Inf" => Ok(Number(f64::NEG_INFINITY)),
                other => other
                    .parse()
                    .map(Number)
                    .map_err(|_| format!("`{other}` is not a number (use NaN, +Inf or -Inf)")),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    pub from: Number,
    pub to: Number,
    /// A Go duration (`30m`).
    pub over: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A Go duration since the start (`12m`).
    pub at: String,
    pub before: Number,
    pub after: Number,
}

/// Why a script cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("metric `{0}`: give exactly one of constant, ramp, step, series, json or phase")]
    Ambiguous(String),
    #[error("metric `{metric}`: {message}")]
    Invalid { metric: String, message: String },
}

impl Script {
    /// Check the script once, before the simulation starts.
    pub fn validate(&self, metric: &str) -> Result<(), ScriptError> {
        let kinds = [
            self.constant.is_some(),
            self.ramp.is_some(),
            self.step.is_some(),
            self.series.is_some(),
            self.json.is_some(),
            self.phase.is_some(),
        ];
        if kinds.into_iter().filter(|k| *k).count() != 1 {
            return Err(ScriptError::Ambiguous(metric.to_string()));
        }
        if self.json.is_some() && self.shape.is_some() {
            return Err(ScriptError::Invalid {
                metric: metric.to_string(),
                message: "`shape` applies to numbers, not to `json`".into(),
            });
        }
        let invalid = |message: String| ScriptError::Invalid {
            metric: metric.to_string(),
            message,
        };
        if let Some(ramp) = &self.ramp {
            parse_go_duration(&ramp.over).map_err(|e| invalid(format!("ramp.over: {e}")))?;
        }
        if let Some(step) = &self.step {
            parse_go_duration(&step.at).map_err(|e| invalid(format!("step.at: {e}")))?;
        }
        if let Some(series) = &self.series
            && series.is_empty()
        {
            return Err(invalid("series is empty".into()));
        }
        Ok(())
    }

    /// The value `elapsed` after the start.
    pub fn value_at(&self, elapsed: SignedDuration) -> f64 {
        let seconds = elapsed.as_secs_f64();
        if let Some(constant) = self.constant {
            return constant.0;
        }
        if let Some(ramp) = &self.ramp {
            let over = parse_go_duration(&ramp.over)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            if over <= 0.0 || seconds >= over {
                return ramp.to.0;
            }
            let fraction = (seconds / over).max(0.0);
            return ramp.from.0 + (ramp.to.0 - ramp.from.0) * fraction;
        }
        if let Some(step) = &self.step {
            let at = parse_go_duration(&step.at)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            return if seconds >= at {
                step.after.0
            } else {
                step.before.0
            };
        }
        if let Some(series) = &self.series {
            return series
                .iter()
                .take_while(|(t, _)| *t <= seconds)
                .last()
                .or(series.first())
                .map_or(f64::NAN, |(_, v)| v.0);
        }
        f64::NAN
    }
}

/// Read a recorded series: CSV lines `seconds,value` (a header line is skipped), or a JSON
/// array of `[seconds, value]` pairs.
pub fn parse_series(text: &str) -> Result<Vec<(f64, Number)>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str::<Vec<(f64, serde_json::Value)>>(trimmed)
            .map_err(|e| format!("invalid JSON series: {e}"))?
            .into_iter()
            .map(|(t, v)| {
                let number = match v {
                    serde_json::Value::Number(n) => n.as_f64().map(Number),
                    serde_json::Value::String(s) => Number::try_from(NumberText::Text(s)).ok(),
                    _ => None,
                };
                number
                    .map(|n| (t, n))
                    .ok_or_else(|| format!("invalid value at {t}s"))
            })
            .collect();
    }
    let mut points = Vec::new();
    for (line_number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (Some(t), Some(v)) = (fields.next(), fields.next()) else {
            return Err(format!(
                "line {}: expected `seconds,value`",
                line_number + 1
            ));
        };
        let Ok(t) = t.parse::<f64>() else {
            if points.is_empty() {
                continue; // a header
            }
            return Err(format!(
                "line {}: `{t}` is not a number of seconds",
                line_number + 1
            ));
        };
        let v = Number::try_from(NumberText::Text(v.to_string()))
            .map_err(|e| format!("line {}: {e}", line_number + 1))?;
        points.push((t, v));
    }
    if points.is_empty() {
        return Err("the series has no points".into());
    }
    Ok(points)
}

/// Format a float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` and Prometheus do.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value}")
    }
}

/// The scripted provider of a simulation.
#[derive(Debug, Clone)]
pub struct Scripted {
    start: Timestamp,
    scripts: BTreeMap<String, Script>,
}

impl Scripted {
    pub fn new(start: Timestamp, scripts: BTreeMap<String, Script>) -> Self {
        Self { start, scripts }
    }
}

impl Metrics for Scripted {
    async fn measure(
        &self,
        context: MeasureContext<'_>,
        metric: &Metric,
        _task: &TaskKind,
    ) -> Measurement {
        let now = context.now;
        let Some(script) = self.scripts.get(&metric.name) else {
            return error_measurement(
                now,
                format!(
                    "no scripted value for metric `{}`: add it under `metrics:` in the scenario",
                    metric.name
                ),
            );
        };
        let at = meta_time(now);
        if let Some(phase) = script.phase {
            return Measurement {
                phase,
                started_at: Some(at.clone()),
                finished_at: Some(at),
                ..Default::default()
            };
        }
        if let Some(json) = &script.json {
            let assessment = evaluate_result(
                &Value::from(json),
                Some(metric.success_condition.as_str()),
                Some(metric.failure_condition.as_str()),
                now,
            );
            return Measurement {
                phase: super::common::status_phase(assessment.phase),
                message: assessment.message.unwrap_or_default(),
                started_at: Some(at.clone()),
                finished_at: Some(at),
                value: json.to_string(),
                metadata: BTreeMap::from([("explanation".to_string(), assessment.explanation)]),
                resume_at: None,
            };
        }
        let value = script.value_at(now.duration_since(self.start));
        let shape = script
            .shape
            .unwrap_or(if metric.provider.prometheus.is_some() {
                Shape::Vector
            } else {
                Shape::Scalar
            });
        let (result, text) = match shape {
            Shape::Vector => (
                Value::Vector(vec![value]),
                format!("[{}]", format_value(value)),
            ),
            Shape::Scalar => (Value::Float(value), format_value(value)),
        };
        let assessment = evaluate_result(
            &result,
            Some(metric.success_condition.as_str()),
            Some(metric.failure_condition.as_str()),
            now,
        );
        let mut metadata = BTreeMap::new();
        metadata.insert("explanation".to_string(), assessment.explanation);
        Measurement {
            phase: super::common::status_phase(assessment.phase),
            message: assessment.message.unwrap_or_default(),
            started_at: Some(at.clone()),
            finished_at: Some(at),
            value: text,
            metadata,
            resume_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(yaml: &str) -> Script {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn scripts_follow_time() {
        let minutes = |m: i64| SignedDuration::from_secs(m * 60);
        let step = script("step: {at: 10m, before: 0.01, after: 0.2}");
        assert_eq!(step.value_at(minutes(9)), 0.01);
        assert_eq!(step.value_at(minutes(10)), 0.2);
        let ramp = script("ramp: {from: 0, to: 1, over: 10m}");
        assert!((ramp.value_at(minutes(5)) - 0.5).abs() < 1e-9);
        assert_eq!(ramp.value_at(minutes(20)), 1.0);
        let series = script("series: [[0, 1], [60, 2], [120, NaN]]");
        assert_eq!(series.value_at(minutes(0)), 1.0);
        assert_eq!(series.value_at(SignedDuration::from_secs(90)), 2.0);
        assert!(series.value_at(minutes(5)).is_nan());
        assert!(script("constant: +Inf").value_at(minutes(1)).is_infinite());
    }

    #[test]
    fn a_script_needs_exactly_one_kind() {
        assert!(script("constant: 1").validate("m").is_ok());
        assert!(script("constant: 1\nphase: Failed").validate("m").is_err());
        assert!(script("shape: vector").validate("m").is_err());
        assert!(
            script("ramp: {from: 0, to: 1, over: 10x}")
                .validate("m")
                .is_err()
        );
    }

    #[test]
    fn series_from_csv_and_json() {
        let csv = parse_series("seconds,value\n0,0.5\n60, NaN\n").unwrap();
        assert_eq!(csv.len(), 2);
        assert!(csv[1].1.0.is_nan());
        let json = parse_series("[[0, 0.1], [30, \"+Inf\"]]").unwrap();
        assert!(json[1].1.0.is_infinite());
        assert!(parse_series("0,abc").is_err());
        assert!(parse_series("").is_err());
    }

    #[test]
    fn values_print_like_go() {
        assert_eq!(format_value(0.01), "0.01");
        assert_eq!(format_value(10.0), "10");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    }
}
