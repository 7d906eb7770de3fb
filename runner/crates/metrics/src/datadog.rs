//! Datadog: API v1 `GET /api/v1/query` (the last point of the first series) or v2
//! `POST /api/v2/query/scalar` (one value per formula, or per group of a `by {tag}` query),
//! as Argo's provider. Credentials: `secretRef`, then `DD_API_KEY`/`DD_APP_KEY`, then the
//! Secret `datadog` in the provider namespace (keys `api-key`, `app-key`, `address`).
//!
//! API references: <https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points>
//! (v1) and <https://docs.datadoghq.com/api/latest/metrics/#query-scalar-data-across-multiple-products>
//! (v2).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use rollout_runner_api::crd::duration::parse_go_duration;
use rollout_runner_api::crd::{DatadogMetric, Measurement, Metric};
use rollout_runner_expr::Value;

use super::common::{Clock, Failure, format_float, go_json, judged};
use super::http;
use super::settings::{DatadogSettings, ProviderSettings, SecretString};

/// Where requests go when neither the settings nor the Secret name an address.
pub const DEFAULT_ADDRESS: &str = "https://api.datadoghq.com";
/// The Secret Argo reads credentials from.
pub const SECRET_NAME: &str = "datadog";
/// Request timeout (Argo's default `requestTimeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Groups kept in `metadata.groups` (the highest values).
const MAX_GROUPS: usize = 100;

/// The credentials for this metric, in Argo's order.
pub(crate) async fn credentials(
    config: &DatadogMetric,
    settings: &ProviderSettings,
    run_namespace: &str,
) -> Result<DatadogSettings, Failure> {
    let keys = ["api-key", "app-key", "address"];
    let from_secret = |data: BTreeMap<String, String>| DatadogSettings {
        api_key: SecretString::new(data.get("api-key").cloned().unwrap_or_default()),
        app_key: SecretString::new(data.get("app-key").cloned().unwrap_or_default()),
        address: data.get("address").cloned().unwrap_or_default(),
    };
    let mut found = None;
    if let Some(reference) = config.secret_ref.as_ref().filter(|r| !r.name.is_empty()) {
        let namespace = if reference.namespaced {
            run_namespace
        } else {
            settings.namespace()
        };
        found = settings
            .read_secret(namespace, &reference.name, &keys)
            .await?
            .map(from_secret);
    }
    if found.is_none() {
        found = settings.datadog.clone();
    }
    if found.is_none() {
        found = settings
            .read_secret(settings.namespace(), SECRET_NAME, &keys)
            .await?
            .map(from_secret);
    }
    match found {
        Some(c) if !c.api_key.is_empty() && !c.app_key.is_empty() => Ok(c),
        _ => Err(Failure::new(
            "API or App token not found: set DD_API_KEY and DD_APP_KEY, or the Secret `datadog` (keys `api-key`, `app-key`)",
        )),
    }
}

pub(crate) async fn measure(
    clock: &Clock,
    metric: &Metric,
    config: &DatadogMetric,
    credentials: &DatadogSettings,
) -> Result<Measurement, Failure> {
    let version = if config.api_version.is_empty() {
        "v1"
    } else {
        config.api_version.as_str()
    };
    let address = if credentials.address.is_empty() {
        DEFAULT_ADDRESS
    } else {
        credentials.address.trim_end_matches('/')
    };
    let interval = if config.interval.is_empty() {
        300
    } else {
        parse_go_duration(&config.interval)
            .map_err(|e| Failure::new(format!("time: invalid duration: {e}")))?
            .as_secs()
    };
    let now = clock.now.as_second();
    let client = http::client(REQUEST_TIMEOUT, false)?;
    let mut headers = reqwest::header::HeaderMap::new();
    let mut secret_header = |name: &'static str, value: &SecretString| -> Result<(), Failure> {
        let mut v = reqwest::header::HeaderValue::from_str(value.expose())
            .map_err(|_| Failure::new(format!("invalid Datadog {name}")))?;
        v.set_sensitive(true);
        headers.insert(name, v);
        Ok(())
    };
    secret_header("DD-API-KEY", &credentials.api_key)?;
    secret_header("DD-APPLICATION-KEY", &credentials.app_key)?;
    match version {
        "v1" => {
            if config.query.is_empty() {
                return Err(Failure::new("query is required for the Datadog v1 API"));
            }
            let url = http::parse_url(&format!("{address}/api/v1/query"), "Datadog address")?;
            let response = client
                .get(url.clone())
                .headers(headers)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .query(&[
                    ("query", config.query.clone()),
                    ("from", (now - interval).to_string()),
                    ("to", now.to_string()),
                ])
                .send()
                .await
                .map_err(|e| http::request_error("GET", &url, e))?;
            let (status, body) = read(response).await?;
            let (result, value) = parse_v1(status, &body)?;
            Ok(judged(clock, metric, &result, value))
        }
        "v2" => {
            let url =
                http::parse_url(&format!("{address}/api/v2/query/scalar"), "Datadog address")?;
            let body = request_v2(config, now, interval)?;
            let response = client
                .post(url.clone())
                .headers(headers)
                .json(&body)
                .send()
                .await
                .map_err(|e| http::request_error("POST", &url, e))?;
            let (status, body) = read(response).await?;
            let parsed = parse_v2(status, &body)?;
            let mut measurement = judged(clock, metric, &parsed.result, parsed.value);
            measurement.metadata.extend(parsed.metadata);
            Ok(measurement)
        }
        other => Err(Failure::new(format!("Invalid API version: {other}"))),
    }
}

async fn read(response: reqwest::Response) -> Result<(u16, String), Failure> {
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| {
        Failure::new(format!(
            "Received no bytes in response: {}",
            http::chain(&e)
        ))
    })?;
    Ok((status, body))
}

fn check_status(status: u16, body: &str) -> Result<(), Failure> {
    match status {
        401 | 403 => Err(Failure::new(format!(
            "received authentication error response code: {status} {}",
            http::truncate(body, 1024)
        ))),
        200 => Ok(()),
        _ => Err(Failure::new(format!(
            "received non 2xx response code: {status} {}",
            http::truncate(body, 1024)
        ))),
    }
}

/// The v2 request body: each query named, Argo's default aggregator `last`, the formula if
/// any.
pub(crate) fn request_v2(
    config: &DatadogMetric,
    now: i64,
    interval: i64,
) -> Result<serde_json::Value, Failure> {
    let aggregator = if config.aggregator.is_empty() {
        "last"
    } else {
        config.aggregator.as_str()
    };
    let mut queries: BTreeMap<String, String> = config.queries.clone();
    if !config.query.is_empty() {
        if !queries.is_empty() {
            return Err(Failure::new("use either query or queries, not both"));
        }
        queries.insert("query".into(), config.query.clone());
    }
    if queries.is_empty() {
        return Err(Failure::new("query or queries is required"));
    }
    let queries: Vec<serde_json::Value> = queries
        .into_iter()
        .map(|(name, query)| {
            json!({"aggregator": aggregator, "data_source": "metrics", "name": name, "query": query})
        })
        .collect();
    let formulas: Vec<serde_json::Value> = if config.formula.is_empty() {
        Vec::new()
    } else {
        vec![json!({"formula": config.formula})]
    };
    Ok(json!({
        "data": {
            "type": "scalar_request",
            "attributes": {
                "from": (now - interval) * 1000,
                "to": now * 1000,
                "queries": queries,
                "formulas": formulas,
            }
        }
    }))
}

/// v1: the last point of the first series; no points is `nil` (Argo's `*float64`).
pub(crate) fn parse_v1(status: u16, body: &str) -> Result<(Value, String), Failure> {
    check_status(status, body)?;
    let json: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Failure::new(format!("Could not parse JSON body: {e}")))?;
    let series = json
        .get("series")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    if !series.is_array() && !series.is_null() {
        return Err(Failure::new(
            "Could not parse JSON body: series is not a list",
        ));
    }
    let last = series
        .get(0)
        .and_then(|s| s.get("pointlist"))
        .and_then(|p| p.as_array())
        .and_then(|points| points.last());
    let Some(point) = last else {
        return Ok((Value::Nil, go_json(&series)));
    };
    let pair = point
        .as_array()
        .filter(|p| p.len() == 2)
        .ok_or_else(|| Failure::new("Datapoint does not have 2 values"))?;
    match pair[1].as_f64() {
        Some(v) => Ok((Value::Float(v), format_float(v))),
        // A null point: no data (Argo would read 0).
        None => Ok((Value::Nil, "null".into())),
    }
}

pub(crate) struct ParsedV2 {
    pub(crate) result: Value,
    pub(crate) value: String,
    pub(crate) metadata: BTreeMap<String, String>,
}

/// v2: one number column per formula (or query). A single column gives its first value; a
/// `group` column makes `result` the list of every group's value.
pub(crate) fn parse_v2(status: u16, body: &str) -> Result<ParsedV2, Failure> {
    check_status(status, body)?;
    let json: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| Failure::new(format!("Could not parse JSON body: {e}")))?;
    if let Some(errors) = json
        .get("errors")
        .or_else(|| json.pointer("/data/errors"))
        .filter(|e| {
            !e.is_null() && e.as_str() != Some("") && e.as_array().is_none_or(|a| !a.is_empty())
        })
    {
        let text = errors
            .as_str()
            .map_or_else(|| errors.to_string(), str::to_string);
        return Err(Failure::new(format!(
            "There were errors in your query: {text}"
        )));
    }
    let columns: Vec<serde_json::Value> = json
        .pointer("/data/attributes/columns")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    let is_group = |c: &serde_json::Value| c.get("type").and_then(|t| t.as_str()) == Some("group");
    let numbers: Vec<&serde_json::Value> = columns.iter().filter(|c| !is_group(c)).collect();
    let number_values = |c: &serde_json::Value| -> Result<Vec<Option<f64>>, Failure> {
        match c.get("values") {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Array(values)) => {
                Ok(values.iter().map(|v| v.as_f64()).collect())
            }
            Some(_) => Err(Failure::new(
                "Could not parse JSON body: columns.values is not a list of numbers",
            )),
        }
    };
    let mut metadata = BTreeMap::new();
    if columns.iter().any(is_group) {
        // Grouped query: every group's value, labelled in metadata.groups.
        let groups: Vec<&serde_json::Value> = columns.iter().filter(|c| is_group(c)).collect();
        let values = numbers
            .first()
            .map(|c| number_values(c))
            .transpose()?
            .unwrap_or_default();
        let mut labelled: Vec<(String, f64)> = Vec::new();
        let mut result = Vec::new();
        for (row, value) in values.iter().enumerate() {
            let Some(value) = value else { continue };
            let name: Vec<String> = groups
                .iter()
                .map(|g| {
                    let cell = g.get("values").and_then(|v| v.get(row));
                    match cell {
                        Some(serde_json::Value::Array(parts)) => parts
                            .iter()
                            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(","),
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    }
                })
                .collect();
            labelled.push((name.join(","), *value));
            result.push(*value);
        }
        let mut ranked = labelled.clone();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        if ranked.len() > MAX_GROUPS {
            ranked.truncate(MAX_GROUPS);
            metadata.insert("groups_truncated".into(), "true".into());
        }
        let groups: Vec<serde_json::Value> = ranked
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        metadata.insert(
            "groups".into(),
            serde_json::Value::Array(groups).to_string(),
        );
        let text = format!(
            "[{}]",
            result
                .iter()
                .map(|v| format_float(*v))
                .collect::<Vec<_>>()
                .join(",")
        );
        return Ok(ParsedV2 {
            result: Value::Vector(result),
            value: text,
            metadata,
        });
    }
    let first: Vec<Option<f64>> = numbers
        .first()
        .map(|c| number_values(c))
        .transpose()?
        .unwrap_or_default();
    if numbers.len() > 1 {
        // Several formulas: one value each (nil when a formula has no data).
        let values: Vec<Option<f64>> = numbers
            .iter()
            .map(|c| number_values(c).map(|v| v.first().copied().flatten()))
            .collect::<Result<_, _>>()?;
        if values.iter().all(Option::is_none) {
            return Ok(ParsedV2 {
                result: Value::Nil,
                value: "[]".into(),
                metadata,
            });
        }
        let text = format!(
            "[{}]",
            values
                .iter()
                .map(|v| v.map_or_else(|| "null".to_string(), format_float))
                .collect::<Vec<_>>()
                .join(",")
        );
        let result = Value::Array(values.into_iter().map(Value::from).collect());
        return Ok(ParsedV2 {
            result,
            value: text,
            metadata,
        });
    }
    match first.first().copied().flatten() {
        Some(v) => Ok(ParsedV2 {
            result: Value::Float(v),
            value: format_float(v),
            metadata,
        }),
        None => Ok(ParsedV2 {
            result: Value::Nil,
            value: "[]".into(),
            metadata,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_takes_the_last_point_of_the_first_series() {
        let (result, value) = parse_v1(
            200,
            r#"{"status":"ok","series":[{"pointlist":[[1598867910000,0.0020008318672513122],[1598867925000,0.0003332881882246533]]}]}"#,
        )
        .unwrap();
        assert_eq!(value, "0.0003332881882246533");
        assert_eq!(result, Value::Float(0.0003332881882246533));
        let (empty, value) = parse_v1(200, r#"{"status":"ok","series":[]}"#).unwrap();
        assert_eq!((empty, value.as_str()), (Value::Nil, "[]"));
        assert_eq!(
            parse_v1(401, r#"{"errors": ["No authenticated user."]}"#)
                .unwrap_err()
                .0,
            r#"received authentication error response code: 401 {"errors": ["No authenticated user."]}"#
        );
        assert!(
            parse_v1(200, r#"{"series":"invalid"}"#)
                .unwrap_err()
                .0
                .starts_with("Could not parse JSON body")
        );
    }

    #[test]
    fn v2_scalar_formulas_and_groups() {
        let one = parse_v2(
            200,
            r#"{"data": {"attributes": {"columns": [ {"values": [0.0006332881882246533]}]}}}"#,
        )
        .unwrap();
        assert_eq!(one.value, "0.0006332881882246533");
        let none = parse_v2(
            200,
            r#"{"data": {"attributes": {"columns": [ {"values": []}]}}}"#,
        )
        .unwrap();
        assert_eq!((none.result, none.value.as_str()), (Value::Nil, "[]"));
        let two = parse_v2(200, r#"{"data": {"attributes": {"columns": [{"values": [0.0006444881882246533]}, {"values": [0.3]} ]}}}"#).unwrap();
        assert_eq!(two.value, "[0.0006444881882246533,0.3]");
        let grouped = parse_v2(
            200,
            r#"{"data":{"attributes":{"columns":[
                {"name":"resource_name","type":"group","values":[["GET /a"],["GET /b"]]},
                {"name":"query","type":"number","values":[0.01,0.2]}]}}}"#,
        )
        .unwrap();
        assert_eq!(grouped.result, Value::Vector(vec![0.01, 0.2]));
        assert_eq!(
            grouped.metadata["groups"],
            r#"[{"name":"GET /b","value":0.2},{"name":"GET /a","value":0.01}]"#
        );
    }

    #[test]
    fn v2_request_names_queries_and_defaults_the_aggregator() {
        let config = DatadogMetric {
            queries: BTreeMap::from([
                ("a".into(), "avg:x{*}".into()),
                ("b".into(), "avg:y{*}".into()),
            ]),
            formula: "a/b".into(),
            ..Default::default()
        };
        let body = request_v2(&config, 1599076435, 300).unwrap();
        assert_eq!(body["data"]["type"], "scalar_request");
        assert_eq!(body["data"]["attributes"]["from"], 1599076135000i64);
        assert_eq!(
            body["data"]["attributes"]["queries"][1]["aggregator"],
            "last"
        );
        assert_eq!(body["data"]["attributes"]["formulas"][0]["formula"], "a/b");
    }
}
