//! CloudWatch (behind the `provider-cloudwatch` feature): `GetMetricData` over the last
//! `interval` (default 5m) with the metric's `metricDataQueries`, as Argo's provider: `result`
//! is the list of `MetricDataResult`s with Go's field names (`result[0].Values[0]`), `value`
//! their values as Go's `%+v` prints them (`[[1 2] [3]]`). Credentials and region come from the
//! AWS SDK's default chain (environment, profile, web identity, instance metadata).
//!
//! API reference: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html>.

use aws_sdk_cloudwatch::error::DisplayErrorContext;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric as CwMetric, MetricDataQuery, MetricDataResult, MetricStat, StandardUnit,
};
use indexmap::IndexMap;
use serde::Deserialize;

use rollout_runner_api::crd::duration::parse_go_duration;
use rollout_runner_api::crd::{CloudWatchMetric, IntOrString, Measurement, Metric};
use rollout_runner_expr::Value;

use super::common::{Clock, Failure, judged, sprint_float};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Query {
    id: String,
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    metric_stat: Option<Stat>,
    #[serde(default)]
    period: Option<IntOrString>,
    #[serde(default)]
    return_data: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stat {
    metric: StatMetric,
    #[serde(default)]
    period: Option<IntOrString>,
    stat: String,
    #[serde(default)]
    unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatMetric {
    #[serde(default)]
    dimensions: Vec<NameValue>,
    metric_name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

fn int(value: &Option<IntOrString>) -> Option<i32> {
    value.as_ref().and_then(rollout_runner_api::crd::int_value)
}

fn queries(config: &CloudWatchMetric) -> Result<Vec<MetricDataQuery>, Failure> {
    let bad = |index: usize, e: &dyn std::fmt::Display| {
        Failure::new(format!("metricDataQueries[{index}]: {e}"))
    };
    config
        .metric_data_queries
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let q: Query = serde_json::from_value(raw.clone()).map_err(|e| bad(index, &e))?;
            let stat = q.metric_stat.map(|s| {
                let dimensions = s
                    .metric
                    .dimensions
                    .into_iter()
                    .map(|d| Dimension::builder().name(d.name).value(d.value).build())
                    .collect::<Vec<_>>();
                let metric = CwMetric::builder()
                    .set_namespace(s.metric.namespace)
                    .metric_name(s.metric.metric_name)
                    .set_dimensions(Some(dimensions))
                    .build();
                MetricStat::builder()
                    .metric(metric)
                    .set_period(int(&s.period))
                    .stat(s.stat)
                    .set_unit(s.unit.map(|u| StandardUnit::from(u.as_str())))
                    .build()
            });
            Ok(MetricDataQuery::builder()
                .id(q.id)
                .set_expression(q.expression)
                .set_label(q.label)
                .set_metric_stat(stat)
                .set_period(int(&q.period))
                .set_return_data(q.return_data)
                .build())
        })
        .collect()
}

/// A `MetricDataResult` as Argo's conditions see it (Go field names).
fn result_value(result: &MetricDataResult) -> Value {
    let mut map = IndexMap::new();
    let text = |s: Option<&str>| s.map_or(Value::Nil, Value::from);
    map.insert("Id".to_string(), text(result.id()));
    map.insert("Label".to_string(), text(result.label()));
    map.insert(
        "StatusCode".to_string(),
        text(result.status_code().map(|s| s.as_str())),
    );
    map.insert(
        "Timestamps".to_string(),
        Value::Array(
            result
                .timestamps()
                .iter()
                .map(|t| Value::String(t.to_string()))
                .collect(),
        ),
    );
    map.insert(
        "Values".to_string(),
        Value::Vector(result.values().to_vec()),
    );
    Value::Map(map)
}

pub(crate) async fn measure(
    clock: &Clock,
    metric: &Metric,
    config: &CloudWatchMetric,
) -> Result<Measurement, Failure> {
    let interval = if config.interval.is_empty() {
        300
    } else {
        parse_go_duration(&config.interval)
            .map_err(|e| Failure::new(format!("time: invalid duration: {e}")))?
            .as_secs()
    };
    let queries = queries(config)?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_cloudwatch::Client::new(&sdk);
    let end = clock.now.as_second();
    let output = client
        .get_metric_data()
        .start_time(DateTime::from_secs(end - interval))
        .end_time(DateTime::from_secs(end))
        .set_metric_data_queries(Some(queries))
        .send()
        .await
        .map_err(|e| Failure::new(DisplayErrorContext(&e).to_string()))?;
    let results: Vec<Value> = output
        .metric_data_results()
        .iter()
        .map(result_value)
        .collect();
    let text = format!(
        "[{}]",
        output
            .metric_data_results()
            .iter()
            .map(|r| format!(
                "[{}]",
                r.values()
                    .iter()
                    .map(|v| sprint_float(*v))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut measurement = judged(clock, metric, &Value::Array(results), text);
    let messages: Vec<String> = output
        .messages()
        .iter()
        .map(|m| {
            format!(
                "{{Code:{} Value:{}}}",
                m.code().unwrap_or(""),
                m.value().unwrap_or("")
            )
        })
        .collect();
    if !messages.is_empty() {
        tracing::warn!(metric = %metric.name, messages = %messages.join(" "), "CloudWatch returned messages");
        measurement
            .metadata
            .insert("messages".into(), format!("[{}]", messages.join(" ")));
    }
    Ok(measurement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_convert_to_sdk_types() {
        let config = CloudWatchMetric {
            interval: "5m".into(),
            metric_data_queries: vec![
                serde_json::json!({
                    "id": "rate",
                    "expression": "errors / requests",
                }),
                serde_json::json!({
                    "id": "errors",
                    "metricStat": {
                        "metric": {"namespace": "app", "metricName": "errors", "dimensions": [{"name": "svc", "value": "web"}]},
                        "period": 300,
                        "stat": "Sum",
                        "unit": "Count",
                    },
                    "returnData": false,
                }),
            ],
        };
        let converted = queries(&config).unwrap();
        assert_eq!(converted[0].expression(), Some("errors / requests"));
        let stat = converted[1].metric_stat().unwrap();
        assert_eq!(stat.period(), Some(300));
        assert_eq!(stat.metric().unwrap().dimensions()[0].value(), Some("web"));
    }
}
