//! Types shared by several Argo Rollouts kinds, and schema helpers for the CRDs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
pub use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A Go duration string such as `30s`, `5m` or `1h30m`.
pub type DurationString = String;

/// Schema for a field whose content the API server keeps as given (pod templates, job specs,
/// plugin configuration): an object with `x-kubernetes-preserve-unknown-fields`.
///
/// Embedding k8s-openapi's full PodTemplateSpec schema makes the Rollout CRD exceed the
/// 262,144-byte `last-applied-configuration` limit; Argo serves the template loosely too.
pub(crate) fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Labels and annotations added to the objects (pods, AnalysisRuns) a Rollout creates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl PodTemplateMetadata {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// Labels and annotations added to AnalysisRuns created by a Rollout or an Experiment.
pub type AnalysisRunMetadata = PodTemplateMetadata;

/// Run a metric without letting its result change the outcome. `metricName` is a Go regular
/// expression matched (unanchored) against metric names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    pub metric_name: String,
}

/// How many measurements to keep for metrics whose names match `metricName` (a regex).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementRetention {
    pub metric_name: String,
    pub limit: i32,
}

/// A path into an object, as in the downward API (`metadata.labels['app']`) or a dotted JSON
/// path into the Rollout (`spec.template.spec.containers[0].image`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    pub field_path: String,
}

/// `status` of a condition: `True`, `False` or `Unknown`.
pub mod condition_status {
    pub const TRUE: &str = "True";
    pub const FALSE: &str = "False";
    pub const UNKNOWN: &str = "Unknown";
}

/// Resolve an int-or-percent value against a total, as Kubernetes'
/// `GetScaledValueFromIntOrPercent` does: `"25%"` of 10 is 2.5, rounded up or down as asked.
/// A string without `%` is read as a percentage too, which is how Argo reads its default `"25"`.
/// Returns `None` for a string that is not a number.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Option<i32> {
    match value {
        IntOrString::Int(i) => Some(*i),
        IntOrString::String(s) => {
            let percent: i64 = s.trim_end_matches('%').parse().ok()?;
            let product = percent * i64::from(total);
            let scaled = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(scaled).ok()
        }
    }
}

/// The integer inside an int-or-string count or limit (`"3"` is 3), as Go's
/// `intstr.IntValue()`; `None` when the string is not an integer (templated values such as
/// `"{{args.limit}}"` resolve later).
pub fn int_value(value: &IntOrString) -> Option<i32> {
    match value {
        IntOrString::Int(i) => Some(*i),
        IntOrString::String(s) => s.trim().parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_value_rounds_like_kubernetes() {
        let pct = |s: &str| IntOrString::String(s.to_string());
        assert_eq!(scaled_value(&pct("25%"), 10, true), Some(3));
        assert_eq!(scaled_value(&pct("25%"), 10, false), Some(2));
        assert_eq!(scaled_value(&pct("25"), 4, true), Some(1));
        assert_eq!(scaled_value(&pct("0%"), 10, true), Some(0));
        assert_eq!(scaled_value(&pct("100%"), 7, false), Some(7));
        assert_eq!(scaled_value(&IntOrString::Int(3), 10, false), Some(3));
        assert_eq!(scaled_value(&pct("abc"), 10, false), None);
    }

    #[test]
    fn int_value_reads_numeric_strings() {
        assert_eq!(int_value(&IntOrString::String("3".into())), Some(3));
        assert_eq!(int_value(&IntOrString::String("{{args.n}}".into())), None);
        assert_eq!(int_value(&IntOrString::Int(-1)), Some(-1));
    }
}
