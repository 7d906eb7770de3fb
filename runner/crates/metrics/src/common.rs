//! What every provider shares: judging a result with the metric's conditions (and keeping why),
//! error measurements, and Go's spelling of values (`encoding/json`, `fmt.Sprint`,
//! `strconv.FormatFloat`), so that `measurement.value` reads as Argo's.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use rollout_runner_api::crd::{AnalysisPhase, Measurement, Metric};
use rollout_runner_core::engine::conditions::meta_time;
use rollout_runner_expr::{Value, evaluate_result};

/// A measurement's status phase from the verdict of its conditions.
pub(crate) fn status_phase(verdict: rollout_runner_expr::AnalysisPhase) -> AnalysisPhase {
    match verdict {
        rollout_runner_expr::AnalysisPhase::Successful => AnalysisPhase::Successful,
        rollout_runner_expr::AnalysisPhase::Failed => AnalysisPhase::Failed,
        rollout_runner_expr::AnalysisPhase::Inconclusive => AnalysisPhase::Inconclusive,
        rollout_runner_expr::AnalysisPhase::Error => AnalysisPhase::Error,
    }
}

/// A measurement that could not produce a value: its message, as Argo words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<rollout_runner_expr::ConditionError> for Failure {
    fn from(value: rollout_runner_expr::ConditionError) -> Self {
        Self(value.to_string())
    }
}

impl From<super::settings::SecretError> for Failure {
    fn from(value: super::settings::SecretError) -> Self {
        Self(value.to_string())
    }
}

/// When a measurement started, and the time it took so far (the provider's clock is the
/// caller's `now`; the elapsed part is real).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) now: Timestamp,
    started: std::time::Instant,
}

impl Clock {
    pub(crate) fn start(now: Timestamp) -> Self {
        Self {
            now,
            started: std::time::Instant::now(),
        }
    }

    /// `now` plus the real time since [`Clock::start`].
    pub(crate) fn finished(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.started.elapsed()).unwrap_or_default();
        self.now.checked_add(elapsed).unwrap_or(self.now)
    }
}

/// An Error measurement with Argo's message.
pub(crate) fn failed(clock: &Clock, failure: Failure) -> Measurement {
    Measurement {
        phase: AnalysisPhase::Error,
        message: failure.0,
        started_at: Some(meta_time(clock.now)),
        finished_at: Some(meta_time(clock.finished())),
        ..Default::default()
    }
}

/// Judge `result` with the metric's conditions: phase, Argo's message for an Error, and in
/// `metadata` the conditions and why the phase is what it is (`explanation`).
pub(crate) fn judged(clock: &Clock, metric: &Metric, result: &Value, value: String) -> Measurement {
    let assessment = evaluate_result(
        result,
        Some(metric.success_condition.as_str()),
        Some(metric.failure_condition.as_str()),
        clock.now,
    );
    let mut metadata = conditions_metadata(metric);
    metadata.insert("explanation".to_string(), assessment.explanation);
    Measurement {
        phase: status_phase(assessment.phase),
        message: assessment.message.unwrap_or_default(),
        started_at: Some(meta_time(clock.now)),
        finished_at: Some(meta_time(clock.finished())),
        value,
        metadata,
        resume_at: None,
    }
}

/// The metric's conditions, as measurement metadata.
pub(crate) fn conditions_metadata(metric: &Metric) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    if !metric.success_condition.is_empty() {
        metadata.insert(
            "successCondition".to_string(),
            metric.success_condition.clone(),
        );
    }
    if !metric.failure_condition.is_empty() {
        metadata.insert(
            "failureCondition".to_string(),
            metric.failure_condition.clone(),
        );
    }
    metadata
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`, which Prometheus' `SampleValue.String` and Argo's
/// Datadog provider use: `10`, `0.5`, `NaN`, `+Inf`.
pub(crate) fn format_float(value: f64) -> String {
    super::scripted::format_value(value)
}

/// `fmt.Sprintf("%f", f)`: six decimals (Argo's Graphite values).
pub(crate) fn format_float_6(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value:.6}")
    }
}

/// `fmt.Sprint` of a float (`%v`): shortest digits, exponent from 1e+06 and below 1e-04.
pub(crate) fn sprint_float(value: f64) -> String {
    rollout_runner_expr::go_format_float(value)
}

/// `fmt.Sprint` of a list of values, as Argo's InfluxDB provider prints its result: `[1 6.6]`.
pub(crate) fn sprint_list(values: &[Value]) -> String {
    let items: Vec<String> = values.iter().map(sprint_value).collect();
    format!("[{}]", items.join(" "))
}

fn sprint_value(value: &Value) -> String {
    match value {
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => sprint_float(*f),
        Value::String(s) => s.clone(),
        Value::Array(items) => sprint_list(items),
        Value::Vector(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|f| sprint_float(*f))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Map(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", sprint_value(&map[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `json.Marshal` of a value decoded into `interface{}`: object keys sorted, numbers as
/// float64 (`1`, `1.5`, `1e+21`, `1e-7`), `<`, `>` and `&` escaped.
pub(crate) fn go_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_go_json(&mut out, value);
    out
}

fn write_go_json(out: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Null => out.push_str("null"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => out.push_str(&go_json_float(n.as_f64().unwrap_or(0.0))),
        serde_json::Value::String(s) => write_go_string(out, s),
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(out, item);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(out, key);
                out.push(':');
                write_go_json(out, &map[key]);
            }
            out.push('}');
        }
    }
}

/// `encoding/json`'s float64 encoding.
pub(crate) fn go_json_float(f: f64) -> String {
    if !f.is_finite() {
        // json.Marshal fails on these; Argo never gets here with JSON input.
        return format_float(f);
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = format!("{f:e}");
        let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        // Go prints at least two exponent digits, then trims `e-07` to `e-7`.
        let digits = if exp < 0 && exp > -10 {
            format!("{}", -exp)
        } else {
            format!("{:02}", exp.abs())
        };
        format!("{mantissa}e{sign}{digits}")
    } else {
        format!("{f}")
    }
}

fn write_go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Replace every secret in every text field of a measurement by `*****`.
pub(crate) fn scrub(measurement: &mut Measurement, secrets: &[String]) {
    use rollout_runner_core::analysis::run::redact;
    if secrets.iter().all(String::is_empty) {
        return;
    }
    measurement.message = redact(&measurement.message, secrets);
    measurement.value = redact(&measurement.value, secrets);
    measurement.metadata = std::mem::take(&mut measurement.metadata)
        .into_iter()
        .map(|(k, v)| (redact(&k, secrets), redact(&v, secrets)))
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_sorts_keys_and_spells_numbers_like_go() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"num":1.2,"bool":true,"mapfield":{"foo":"bar"},"n":1.0}"#)
                .unwrap();
        assert_eq!(
            go_json(&v),
            r#"{"bool":true,"mapfield":{"foo":"bar"},"n":1,"num":1.2}"#
        );
        assert_eq!(go_json_float(1e21), "1e+21");
        assert_eq!(go_json_float(1e-7), "1e-7");
        assert_eq!(go_json_float(1.5e-12), "1.5e-12");
        assert_eq!(go_json_float(0.000001), "0.000001");
        assert_eq!(go_json_float(-3.0), "-3");
        assert_eq!(go_json(&serde_json::json!("a<b&c")), r#""a\u003cb\u0026c""#);
    }

    #[test]
    fn sprint_matches_fmt() {
        let values = vec![Value::Float(1.0), Value::Float(6.6), Value::Int(3)];
        assert_eq!(sprint_list(&values), "[1 6.6 3]");
        assert_eq!(sprint_list(&[Value::Float(1e6)]), "[1e+06]");
        assert_eq!(format_float_6(10.0), "10.000000");
    }

    #[test]
    fn scrub_redacts_every_field() {
        let mut m = Measurement {
            message: "token abc".into(),
            value: "{\"h\":\"abc\"}".into(),
            metadata: BTreeMap::from([("k".to_string(), "abc".to_string())]),
            ..Default::default()
        };
        scrub(&mut m, &["abc".to_string()]);
        assert!(!format!("{m:?}").contains("abc"));
    }
}
