//! InfluxDB 2: a Flux query (`POST /api/v2/query?org=...`, `Authorization: Token ...`),
//! answered as annotated CSV, as Argo's provider (influxdb-client-go): `result` is the list of
//! every record's `_value`, `value` is Go's `fmt.Sprint` of it (`[1 6.6]`).
//!
//! API reference: <https://docs.influxdata.com/influxdb/v2/api/#operation/PostQuery> and
//! <https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/>.

use std::time::Duration;

use serde_json::json;

use rollout_runner_api::crd::{InfluxdbMetric, Measurement, Metric};
use rollout_runner_expr::Value;

use super::common::{Clock, Failure, judged, sprint_list};
use super::http;
use super::settings::{InfluxdbSettings, ProviderSettings, SecretString};

/// The Secret Argo reads credentials from when the metric names no `profile`.
pub const DEFAULT_PROFILE: &str = "influxdb";
/// Argo's query timeout.
const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn credentials(
    config: &InfluxdbMetric,
    settings: &ProviderSettings,
) -> Result<InfluxdbSettings, Failure> {
    let found = if config.profile.is_empty() && settings.influxdb.is_some() {
        settings.influxdb.clone()
    } else {
        let profile = if config.profile.is_empty() {
            DEFAULT_PROFILE
        } else {
            config.profile.as_str()
        };
        settings
            .read_secret(
                settings.namespace(),
                profile,
                &["authToken", "org", "address"],
            )
            .await?
            .map(|data| InfluxdbSettings {
                token: SecretString::new(data.get("authToken").cloned().unwrap_or_default()),
                org: data.get("org").cloned().unwrap_or_default(),
                address: data.get("address").cloned().unwrap_or_default(),
            })
    };
    match found {
        Some(c) if !c.token.is_empty() && !c.org.is_empty() && !c.address.is_empty() => Ok(c),
        _ => Err(Failure::new(
            "authToken, org, or address not found: set INFLUXDB_ADDRESS, INFLUXDB_ORG and INFLUXDB_TOKEN, or the Secret `influxdb` (keys `authToken`, `org`, `address`)",
        )),
    }
}

pub(crate) async fn measure(
    clock: &Clock,
    metric: &Metric,
    config: &InfluxdbMetric,
    credentials: &InfluxdbSettings,
) -> Result<Measurement, Failure> {
    let mut url = http::parse_url(&credentials.address, "InfluxDB address")?;
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}/api/v2/query"));
    url.query_pairs_mut().append_pair("org", &credentials.org);
    let client = http::client(TIMEOUT, false)?;
    let mut token =
        reqwest::header::HeaderValue::from_str(&format!("Token {}", credentials.token.expose()))
            .map_err(|_| Failure::new("invalid InfluxDB token"))?;
    token.set_sensitive(true);
    let response = client
        .post(url.clone())
        .header(reqwest::header::AUTHORIZATION, token)
        .header(reqwest::header::ACCEPT, "text/csv")
        .json(&json!({
            "query": config.query,
            "type": "flux",
            "dialect": {
                "header": true,
                "delimiter": ",",
                "annotations": ["datatype", "group", "default"],
                "commentPrefix": "#",
                "dateTimeFormat": "RFC3339",
            },
        }))
        .send()
        .await
        .map_err(|e| http::request_error("POST", &url, e))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(api_error(status, &body));
    }
    let values = parse_csv(&body)?;
    if values.is_empty() {
        return Err(Failure::new("no results returned from flux query"));
    }
    let text = sprint_list(&values);
    Ok(judged(clock, metric, &Value::Array(values), text))
}

/// influxdb-client-go's error text: `code: message`.
fn api_error(status: u16, body: &str) -> Failure {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (code, message) = (field("code"), field("message"));
    match (code.is_empty(), message.is_empty()) {
        (false, false) => Failure::new(format!("{code}: {message}")),
        (_, false) => Failure::new(message),
        _ => Failure::new(format!("Unexpected status code {status}")),
    }
}

/// Every record's `_value` in annotated CSV, typed by the `#datatype` annotation. An `error`
/// table (a query that failed while streaming) is an error.
pub(crate) fn parse_csv(body: &str) -> Result<Vec<Value>, Failure> {
    let mut values = Vec::new();
    let mut datatypes: Vec<String> = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            // A new table follows.
            header = None;
            datatypes.clear();
            continue;
        }
        let fields = split_csv(line);
        if fields.first().is_some_and(|f| f.starts_with('#')) {
            if fields[0] == "#datatype" {
                datatypes = fields.clone();
                header = None;
            }
            continue;
        }
        let Some(columns) = &header else {
            header = Some(fields);
            continue;
        };
        let column = |name: &str| columns.iter().position(|c| c == name);
        if let (Some(error), None) = (column("error"), column("_value")) {
            let message = fields.get(error).cloned().unwrap_or_default();
            return Err(Failure::new(message));
        }
        let Some(index) = column("_value") else {
            continue;
        };
        let text = fields.get(index).cloned().unwrap_or_default();
        let datatype = datatypes.get(index).map(String::as_str).unwrap_or("string");
        values.push(typed(&text, datatype)?);
    }
    Ok(values)
}

fn typed(text: &str, datatype: &str) -> Result<Value, Failure> {
    if text.is_empty() && datatype != "string" {
        return Ok(Value::Nil);
    }
    let bad = |e: &dyn std::fmt::Display| Failure::new(format!("{datatype} value {text:?}: {e}"));
    Ok(match datatype {
        "double" => Value::Float(match text {
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => text.parse().map_err(|e| bad(&e))?,
        }),
        "long" => Value::Int(text.parse().map_err(|e| bad(&e))?),
        "unsignedLong" => Value::Int(text.parse().map_err(|e| bad(&e))?),
        "boolean" => Value::Bool(text == "true"),
        _ => Value::String(text.to_string()),
    })
}

/// One CSV line (RFC 4180 quoting).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    fields.push(current);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
#group,false,false,true,true,false,false,true,true,true,true
#default,_result,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,a,b
,,0,2020-02-17T22:19:49.747562847Z,2020-02-18T22:19:49.747562847Z,2020-02-18T10:34:08.135814545Z,1.0,f,test,1,adsfasdf
,,0,2020-02-17T22:19:49.747562847Z,2020-02-18T22:19:49.747562847Z,2020-02-18T22:08:44.850214724Z,6.6,f,test,1,adsfasdf
";

    #[test]
    fn values_of_every_record() {
        let values = parse_csv(TABLE).unwrap();
        assert_eq!(sprint_list(&values), "[1 6.6]");
        let empty = TABLE.lines().take(4).collect::<Vec<_>>().join("\n");
        assert!(parse_csv(&empty).unwrap().is_empty());
    }

    #[test]
    fn error_tables_are_errors() {
        let body = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,\"failed to execute query: bad\",897\n";
        assert_eq!(
            parse_csv(body).unwrap_err().0,
            "failed to execute query: bad"
        );
        assert_eq!(
            api_error(
                401,
                r#"{"code":"unauthorized","message":"unauthorized access"}"#
            )
            .0,
            "unauthorized: unauthorized access"
        );
    }
}
