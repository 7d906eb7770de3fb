//! AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun: metrics, providers, arguments and
//! measurements, shaped as Argo's `analysis_types.go`.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    DryRun, DurationString, FieldRef, IntOrString, MeasurementRetention, Time, int_value,
    preserve_unknown,
};

/// Phase of a measurement, a metric, an AnalysisRun or an Experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum AnalysisPhase {
    #[default]
    Pending,
    Running,
    Successful,
    Failed,
    Error,
    Inconclusive,
}

impl AnalysisPhase {
    /// Argo's spelling, as stored in status fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Successful => "Successful",
            Self::Failed => "Failed",
            Self::Error => "Error",
            Self::Inconclusive => "Inconclusive",
        }
    }

    /// Successful, Failed, Error and Inconclusive are final.
    pub fn is_completed(self) -> bool {
        matches!(
            self,
            Self::Successful | Self::Failed | Self::Error | Self::Inconclusive
        )
    }

    /// Rank from best to worst, as Argo's `analysisStatusOrder`:
    /// Successful < Running < Pending < Inconclusive < Error < Failed.
    pub fn severity(self) -> u8 {
        match self {
            Self::Successful => 0,
            Self::Running => 1,
            Self::Pending => 2,
            Self::Inconclusive => 3,
            Self::Error => 4,
            Self::Failed => 5,
        }
    }
}

impl std::fmt::Display for AnalysisPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metrics and arguments that AnalysisRuns are made from.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "argoproj.io",
    derive = "PartialEq",
    derive = "Default",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    namespaced,
    shortname = "at",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp","description":"Time since resource was created"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Other templates whose metrics and arguments this one includes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<AnalysisTemplateRef>,
}

/// A cluster-scoped AnalysisTemplate.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "argoproj.io",
    derive = "PartialEq",
    derive = "Default",
    version = "v1alpha1",
    kind = "ClusterAnalysisTemplate",
    shortname = "cat",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp","description":"Time since resource was created"}"#
)]
pub struct ClusterAnalysisTemplateSpec {
    #[serde(flatten)]
    pub template: AnalysisTemplateSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    pub template_name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster_scope: bool,
}

/// One instantiation of templates: the metrics being measured and their results.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "argoproj.io",
    derive = "PartialEq",
    derive = "Default",
    version = "v1alpha1",
    kind = "AnalysisRun",
    namespaced,
    status = "AnalysisRunStatus",
    shortname = "ar",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.phase","description":"AnalysisRun status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp","description":"Time since resource was created"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    /// Stop taking measurements; the run ends with what it has.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminate: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i32>,
}

/// A template or run argument. In templates `value` may be left out for the caller to supply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// Read from a Secret in the AnalysisRun's namespace, at measurement time. Its value is
    /// redacted everywhere it could be shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// An argument a Rollout (or an experiment step) passes to its AnalysisRuns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunArgument {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgumentValueFrom>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArgumentValueFrom {
    /// `Stable` or `Latest`: the pod-template hash of that ReplicaSet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_hash_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// A metric: what to measure, how often, and how to judge each measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    pub name: String,
    /// Time between measurements; empty means a single measurement.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: DurationString,
    /// Wait this long after the run starts before the first measurement.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initial_delay: DurationString,
    /// Number of measurements (errors don't count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub success_condition: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_condition: String,
    /// Failed measurements tolerated before the metric fails; -1 disables. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    /// Inconclusive measurements tolerated. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    /// Consecutive errors tolerated before the metric errors. Default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    /// The metric succeeds as soon as this many consecutive measurements succeed. 0 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_success_limit: Option<IntOrString>,
    #[serde(default)]
    pub provider: MetricProvider,
}

/// Default `consecutiveErrorLimit`.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i32 = 4;

impl Metric {
    /// The number of measurements to take: `Some(1)` without count and interval, `None`
    /// (until terminated) with only an interval, else the count. `None` also when the count
    /// is an unresolved template.
    pub fn effective_count(&self) -> Option<i32> {
        let count = self.count.as_ref().and_then(int_value).unwrap_or(0);
        if count == 0 {
            if self.interval.is_empty() {
                Some(1)
            } else {
                None
            }
        } else {
            Some(count)
        }
    }

    pub fn failure_limit_or_default(&self) -> i32 {
        self.failure_limit.as_ref().and_then(int_value).unwrap_or(0)
    }

    pub fn inconclusive_limit_or_default(&self) -> i32 {
        self.inconclusive_limit
            .as_ref()
            .and_then(int_value)
            .unwrap_or(0)
    }

    pub fn consecutive_error_limit_or_default(&self) -> i32 {
        self.consecutive_error_limit
            .as_ref()
            .and_then(int_value)
            .unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT)
    }

    pub fn consecutive_success_limit_or_default(&self) -> i32 {
        self.consecutive_success_limit
            .as_ref()
            .and_then(int_value)
            .unwrap_or(0)
    }
}

/// Where a metric's values come from. Exactly one provider is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kayenta: Option<KayentaMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wavefront: Option<WavefrontMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_relic: Option<NewRelicMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch: Option<CloudWatchMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphite: Option<GraphiteMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub influxdb: Option<InfluxdbMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skywalking: Option<SkyWalkingMetric>,
    /// rollout-runner's built-in statistical judge (not an Argo provider): canary against
    /// baseline with Kayenta's method. See `docs/analysis.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeMetric>,
    /// Metric provider plugins by name, with raw config (not supported by rollout-runner).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "preserve_unknown")]
    pub plugin: BTreeMap<String, serde_json::Value>,
}

impl MetricProvider {
    /// Names of the providers that are set (valid metrics have exactly one).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        let mut add = |set: bool, name: &'static str| {
            if set {
                kinds.push(name)
            }
        };
        add(self.prometheus.is_some(), "prometheus");
        add(self.kayenta.is_some(), "kayenta");
        add(self.web.is_some(), "web");
        add(self.datadog.is_some(), "datadog");
        add(self.wavefront.is_some(), "wavefront");
        add(self.new_relic.is_some(), "newRelic");
        add(self.job.is_some(), "job");
        add(self.cloud_watch.is_some(), "cloudWatch");
        add(self.graphite.is_some(), "graphite");
        add(self.influxdb.is_some(), "influxdb");
        add(self.skywalking.is_some(), "skywalking");
        add(self.judge.is_some(), "judge");
        add(!self.plugin.is_empty(), "plugin");
        kinds
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// Query timeout in seconds; default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<WebMetricHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_query: Option<PrometheusRangeQueryArgs>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PrometheusRangeQueryArgs {
    /// An expression yielding a time, e.g. `now() - duration("1h")`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end: String,
    /// A duration string such as `1m`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<Sigv4Config>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Config>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sigv4Config {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Config {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_secret: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BasicAuth {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    /// `GET` (default), `POST` or `PUT`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<WebMetricHeader>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// Seconds; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// Kubernetes JSONPath selecting `result` from a JSON body; default `{$}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub json_path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown")]
    pub json_body: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebMetricHeader {
    pub key: String,
    pub value: String,
}

/// A Kubernetes Job per measurement: success or failure of the Job is the verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobMetric {
    #[serde(default)]
    #[schemars(schema_with = "preserve_unknown")]
    pub metadata: ObjectMeta,
    #[schemars(schema_with = "preserve_unknown")]
    pub spec: JobSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatadogMetric {
    /// `v1` (default) or `v2`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// v2: named queries combined by `formula`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub queries: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub formula: String,
    /// Look-back window; default 5m.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: DurationString,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub aggregator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub namespaced: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NewRelicMetric {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WavefrontMetric {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GraphiteMetric {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InfluxdbMetric {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SkyWalkingMetric {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: DurationString,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchMetric {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interval: DurationString,
    /// CloudWatch `MetricDataQuery` objects, kept as given.
    #[serde(default)]
    #[schemars(schema_with = "preserve_unknown_list")]
    pub metric_data_queries: Vec<serde_json::Value>,
}

fn preserve_unknown_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })
}

/// The built-in judge: each of its metrics queries a canary and a baseline series, the judge
/// classifies each pair and scores the groups (Kayenta's NetflixACAJudge, quirks fixed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JudgeMetric {
    pub metrics: Vec<JudgeMetricSpec>,
    /// Weight (percent) of each group in the score; unlisted groups share what is left.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_weights: BTreeMap<String, f64>,
    /// Score thresholds: `>= pass` is Successful, `>= marginal` Inconclusive, else Failed.
    #[serde(default)]
    pub thresholds: JudgeThresholds,
    /// Fewest points each side needs (after NaN and outlier removal) for a metric to be
    /// judged at all; below it the metric is NoData. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_points: Option<u32>,
    /// Seed of the noise added to constant series (Kayenta's was unseeded). Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Confidence level of the Mann-Whitney interval. Default 0.98 (Kayenta's, hard-coded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_level: Option<f64>,
    /// Fraction of the Hodges-Lehmann estimate the interval must clear. Default 0.25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JudgeThresholds {
    pub pass: f64,
    pub marginal: f64,
}

impl Default for JudgeThresholds {
    fn default() -> Self {
        Self {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// One judged metric: a canary query, a baseline query, and how to compare them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JudgeMetricSpec {
    pub name: String,
    pub canary: JudgeQuery,
    pub baseline: JudgeQuery,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default)]
    pub direction: JudgeDirection,
    /// A critical metric that is High or Low (beyond its critical effect size) fails the
    /// whole judgement, and so does one that errs or has no data (Kayenta let those pass).
    #[serde(default)]
    pub critical: bool,
    /// No data counts as a failed metric instead of being left out of the score.
    #[serde(default)]
    pub must_have_data: bool,
    /// Classified and shown, but left out of the score.
    #[serde(default)]
    pub muted: bool,
    #[serde(default)]
    pub nan_strategy: NanStrategy,
    #[serde(default)]
    pub outliers: OutlierConfig,
    #[serde(default)]
    pub effect_size: EffectSizeConfig,
}

/// Where a series comes from: exactly one query provider (Prometheus range queries are the
/// usual choice; the others give the values their `result` would hold).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JudgeQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_relic: Option<NewRelicMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphite: Option<GraphiteMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub influxdb: Option<InfluxdbMetric>,
}

impl JudgeQuery {
    /// The query as a metric provider, so the ordinary providers can run it.
    pub fn provider(&self) -> MetricProvider {
        MetricProvider {
            prometheus: self.prometheus.clone(),
            web: self.web.clone(),
            datadog: self.datadog.clone(),
            new_relic: self.new_relic.clone(),
            graphite: self.graphite.clone(),
            influxdb: self.influxdb.clone(),
            ..Default::default()
        }
    }
}

/// Which change of the canary counts against it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum JudgeDirection {
    Increase,
    Decrease,
    #[default]
    Either,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NanStrategy {
    /// Drop NaN points.
    #[default]
    Remove,
    /// NaN counts as 0 (e.g. a rate with no traffic).
    Replace,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutlierConfig {
    #[serde(default)]
    pub strategy: OutlierStrategy,
    /// IQR multiple beyond which a point is an outlier. Default 3.
    #[serde(default = "default_outlier_factor")]
    pub outlier_factor: f64,
}

fn default_outlier_factor() -> f64 {
    3.0
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            strategy: OutlierStrategy::Keep,
            outlier_factor: default_outlier_factor(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OutlierStrategy {
    #[default]
    Keep,
    Remove,
}

/// How large a shift must be, beyond being statistically significant, to count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectSizeConfig {
    #[serde(default)]
    pub measure: EffectMeasure,
    /// Default 1.0 (meanRatio) or 0.5 (cles): no gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_increase: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_decrease: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_increase: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_decrease: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EffectMeasure {
    /// mean(canary) / mean(baseline).
    #[default]
    MeanRatio,
    /// Common-language effect size (Vargha-Delaney A): P(canary > baseline).
    Cles,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaMetric {
    pub address: String,
    pub application: String,
    pub canary_config_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metrics_account_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub configuration_account_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage_account_name: String,
    pub threshold: KayentaThreshold,
    #[serde(default)]
    pub scopes: Vec<KayentaScope>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KayentaThreshold {
    pub pass: i64,
    pub marginal: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KayentaScope {
    pub name: String,
    pub control_scope: ScopeDetail,
    pub experiment_scope: ScopeDetail,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScopeDetail {
    pub scope: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(default)]
    pub step: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end: String,
}

/// Progress and verdict of an AnalysisRun.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    #[serde(default)]
    pub phase: AnalysisPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_results: Vec<MetricResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    #[serde(default, skip_serializing_if = "RunSummary::is_empty")]
    pub run_summary: RunSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run_summary: Option<RunSummary>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub successful: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inconclusive: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error: i32,
}

impl RunSummary {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

/// The recent measurements of one metric, and counters over all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    pub name: String,
    #[serde(default)]
    pub phase: AnalysisPhase,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub successful: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inconclusive: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_error: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_success: i32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// One measurement: its value, its verdict and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    #[serde(default)]
    pub phase: AnalysisPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The value as Argo prints it: `"0.97"`, `"[0.97,0.99]"`, `"NaN"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// When to look at an in-flight measurement again (Job, Kayenta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<Time>,
}
