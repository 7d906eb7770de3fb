//! Prometheus: an instant query (or a range query with `rangeQuery`) through the HTTP API
//! (<https://prometheus.io/docs/prometheus/latest/querying/api/>), shaped as Argo's provider:
//! a scalar is a float, a vector a list of floats (sample values in order), a matrix all the
//! series' samples flattened into one list. NaN and ±Inf are kept.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

use rollout_runner_api::crd::duration::parse_go_duration;
use rollout_runner_api::crd::{Measurement, Metric, PrometheusMetric};
use rollout_runner_expr::{Value, evaluate_time};

use super::common::{Clock, Failure, format_float, judged};
use super::http;

/// Argo's key for the resolved query in the metric result's metadata.
pub const RESOLVED_QUERY: &str = "ResolvedPrometheusQuery";
/// Default query timeout in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;

/// What a query returned, before judging.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// `result` for the conditions: a float (scalar) or a list of floats.
    pub result: Value,
    /// The labels of each series (vector and matrix), in the order of `result`'s samples
    /// (a matrix repeats a series' labels for each of its samples).
    pub series: Vec<BTreeMap<String, String>>,
    /// Prometheus' warnings.
    pub warnings: Vec<String>,
}

impl QueryResult {
    /// Argo's `measurement.value`: `10`, `[10,11]`, `NaN`.
    pub fn value_text(&self) -> String {
        match &self.result {
            Value::Float(f) => format_float(*f),
            Value::Vector(values) => {
                let parts: Vec<String> = values.iter().map(|v| format_float(*v)).collect();
                format!("[{}]", parts.join(","))
            }
            other => other.to_string(),
        }
    }

    /// The sample values, for checks on their range.
    pub fn samples(&self) -> Vec<f64> {
        match &self.result {
            Value::Float(f) => vec![*f],
            Value::Vector(v) => v.clone(),
            _ => Vec::new(),
        }
    }

    /// How many series the query returned (a scalar counts as one).
    pub fn series_count(&self) -> usize {
        match &self.result {
            Value::Float(_) => 1,
            _ => {
                let mut distinct: Vec<&BTreeMap<String, String>> = Vec::new();
                for labels in &self.series {
                    if !distinct.contains(&labels) {
                        distinct.push(labels);
                    }
                }
                distinct.len()
            }
        }
    }
}

/// Take one measurement.
pub(crate) async fn measure(
    clock: &Clock,
    metric: &Metric,
    config: &PrometheusMetric,
    default_address: Option<&str>,
) -> Result<Measurement, Failure> {
    let queried = query(config, default_address, clock.now).await?;
    let mut measurement = judged(clock, metric, &queried.result, queried.value_text());
    if !queried.warnings.is_empty() {
        let text: Vec<String> = queried
            .warnings
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect();
        let text = text.join(", ");
        tracing::warn!(metric = %metric.name, warnings = %text, "Prometheus returned warnings");
        measurement.metadata.insert("warnings".into(), text);
    }
    Ok(measurement)
}

/// Run the metric's query once, at `now`.
pub async fn query(
    config: &PrometheusMetric,
    default_address: Option<&str>,
    now: Timestamp,
) -> Result<QueryResult, Failure> {
    let address = if !config.address.is_empty() {
        config.address.as_str()
    } else {
        default_address
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Failure::new("prometheus address is not configured"))?
    };
    let base = http::parse_url(address, "prometheus address")?;
    if base
        .host_str()
        .is_some_and(|h| h.contains("aps-workspaces"))
    {
        return Err(Failure::new(
            "Amazon Managed Prometheus (SigV4) is not supported by rollout-runner yet",
        ));
    }
    let timeout = match config.timeout {
        Some(t) if t < 0 => return Err(Failure::new("prometheus timeout should not be negative")),
        Some(t) if t > 0 => std::time::Duration::from_secs(t.unsigned_abs()),
        _ => std::time::Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
    };
    let mut form: Vec<(&str, String)> = vec![("query", config.query.clone())];
    let endpoint = match &config.range_query {
        Some(range) => {
            let start = evaluate_time(&range.start, now)
                .map_err(|e| Failure::new(format!("rangeQuery.start: {e}")))?;
            let end = evaluate_time(&range.end, now)
                .map_err(|e| Failure::new(format!("rangeQuery.end: {e}")))?;
            let step = parse_go_duration(&range.step)
                .map_err(|e| Failure::new(format!("rangeQuery.step: {e}")))?;
            form.push(("start", unix_seconds(start)));
            form.push(("end", unix_seconds(end)));
            form.push(("step", format_float(step.as_secs_f64())));
            "api/v1/query_range"
        }
        None => {
            form.push(("time", unix_seconds(now)));
            "api/v1/query"
        }
    };
    let url = join(&base, endpoint);
    let client = http::client(timeout, config.insecure)?;
    let mut headers = http::headers(&config.headers)?;
    if let Some(auth) =
        http::authorization(config.authentication.as_ref(), timeout, config.insecure).await?
    {
        headers.insert(reqwest::header::AUTHORIZATION, auth);
    }
    // client_golang POSTs the form and falls back to GET on 405 (read-only proxies).
    let mut response = client
        .post(url.clone())
        .headers(headers.clone())
        .form(&form)
        .send()
        .await
        .map_err(|e| http::request_error("POST", &url, e))?;
    if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
        response = client
            .get(url.clone())
            .headers(headers)
            .query(&form)
            .send()
            .await
            .map_err(|e| http::request_error("GET", &url, e))?;
    }
    let status = response.status();
    let body = response.bytes().await.map_err(|e| {
        Failure::new(format!(
            "reading the Prometheus response: {}",
            http::chain(&e)
        ))
    })?;
    parse_response(status.as_u16(), &body)
}

/// `base` + `path`, keeping a path prefix in the address (`http://host/prometheus`).
fn join(base: &url::Url, path: &str) -> url::Url {
    let mut url = base.clone();
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}/{path}"));
    url
}

fn unix_seconds(t: Timestamp) -> String {
    let nanos = t.as_nanosecond();
    let seconds = nanos.div_euclid(1_000_000_000);
    let rest = nanos.rem_euclid(1_000_000_000);
    if rest == 0 {
        seconds.to_string()
    } else {
        let frac = format!("{rest:09}");
        format!("{seconds}.{}", frac.trim_end_matches('0'))
    }
}

#[derive(Deserialize)]
struct ApiResponse {
    #[serde(default)]
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// A sample value: Prometheus sends numbers as strings, with `NaN`, `+Inf` and `-Inf`.
fn sample(text: &str) -> Result<f64, Failure> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        other => other
            .parse()
            .map_err(|_| Failure::new(format!("invalid sample value {other:?}"))),
    }
}

/// Turn a `/api/v1/query` or `/api/v1/query_range` answer into a result, or the error
/// client_golang would report (`bad_data: ...`, `server_error: server error: 502`).
pub(crate) fn parse_response(status: u16, body: &[u8]) -> Result<QueryResult, Failure> {
    let parsed: Option<ApiResponse> = serde_json::from_slice(body).ok();
    let success = (200..300).contains(&status);
    let api = match parsed {
        Some(api) if api.status == "error" || !success => {
            if api.error_type.is_empty() && api.error.is_empty() {
                return Err(status_error(status));
            }
            return Err(Failure::new(format!("{}: {}", api.error_type, api.error)));
        }
        Some(api) => api,
        None if !success => return Err(status_error(status)),
        None => {
            return Err(Failure::new(format!(
                "bad_response: invalid response from Prometheus: {}",
                http::truncate(&String::from_utf8_lossy(body), 200)
            )));
        }
    };
    let Some(data) = api.data else {
        return Err(Failure::new("Prometheus metric type not supported"));
    };
    let mut result = QueryResult {
        result: Value::Nil,
        series: Vec::new(),
        warnings: api.warnings,
    };
    match data.result_type.as_str() {
        "scalar" => {
            let (_, text): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| Failure::new(format!("bad_response: {e}")))?;
            result.result = Value::Float(sample(&text)?);
        }
        "vector" => {
            let series: Vec<Series> = serde_json::from_value(data.result)
                .map_err(|e| Failure::new(format!("bad_response: {e}")))?;
            let mut values = Vec::with_capacity(series.len());
            for s in series {
                // Native histogram samples carry no float value; Argo skips nothing but gets 0.
                if let Some((_, text)) = &s.value {
                    values.push(sample(text)?);
                    result.series.push(s.metric);
                }
            }
            result.result = Value::Vector(values);
        }
        "matrix" => {
            let series: Vec<Series> = serde_json::from_value(data.result)
                .map_err(|e| Failure::new(format!("bad_response: {e}")))?;
            let mut values = Vec::new();
            for s in series {
                for (_, text) in &s.values {
                    values.push(sample(text)?);
                    result.series.push(s.metric.clone());
                }
            }
            result.result = Value::Vector(values);
        }
        _ => return Err(Failure::new("Prometheus metric type not supported")),
    }
    Ok(result)
}

fn status_error(status: u16) -> Failure {
    if status / 100 == 5 {
        Failure::new(format!("server_error: server error: {status}"))
    } else {
        Failure::new(format!("client_error: client error: {status}"))
    }
}

/// Argo's `GetMetadata`: the query after argument substitution.
pub(crate) fn metadata(config: &PrometheusMetric) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !config.query.is_empty() {
        out.insert(RESOLVED_QUERY.to_string(), config.query.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<QueryResult, Failure> {
        parse_response(200, body.as_bytes())
    }

    #[test]
    fn scalars_vectors_and_matrices_have_argo_shapes() {
        let scalar =
            parse(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"10"]}}"#)
                .unwrap();
        assert_eq!(scalar.result, Value::Float(10.0));
        assert_eq!(scalar.value_text(), "10");
        let vector = parse(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"a":"1"},"value":[1,"10"]},{"metric":{"a":"2"},"value":[1,"11"]}]}}"#,
        )
        .unwrap();
        assert_eq!(vector.value_text(), "[10,11]");
        assert_eq!(vector.series_count(), 2);
        let empty =
            parse(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#).unwrap();
        assert_eq!(empty.value_text(), "[]");
        let matrix = parse(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{},"values":[[1,"1"],[2,"NaN"]]},{"metric":{"b":"x"},"values":[[1,"+Inf"]]}]}}"#,
        )
        .unwrap();
        assert_eq!(matrix.value_text(), "[1,NaN,+Inf]");
        assert_eq!(matrix.series_count(), 2);
        let nan =
            parse(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#)
                .unwrap();
        assert_eq!(nan.value_text(), "NaN");
    }

    #[test]
    fn errors_read_as_client_golang() {
        let e = parse_response(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        )
        .unwrap_err();
        assert_eq!(e.0, "bad_data: parse error");
        assert_eq!(
            parse_response(502, b"<html>").unwrap_err().0,
            "server_error: server error: 502"
        );
        assert_eq!(
            parse(r#"{"status":"success","data":{"resultType":"string","result":[1,"a"]}}"#)
                .unwrap_err()
                .0,
            "Prometheus metric type not supported"
        );
    }

    #[test]
    fn times_are_unix_seconds() {
        assert_eq!(
            unix_seconds(Timestamp::from_second(1_700_000_000).unwrap()),
            "1700000000"
        );
        assert_eq!(
            unix_seconds(Timestamp::from_millisecond(1_700_000_000_500).unwrap()),
            "1700000000.5"
        );
    }
}
