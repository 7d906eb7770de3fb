//! New Relic: an NRQL query through NerdGraph (`POST /graphql` with the `API-Key` header), as
//! Argo's provider (which uses newrelic-client-go's `nrdb.Query`): one result row is a map,
//! several are a list of maps, none is an Error "no results returned from NRQL query".
//!
//! API reference: <https://docs.newrelic.com/docs/apis/nerdgraph/examples/nerdgraph-nrql-tutorial/>.

use serde_json::json;

use rollout_runner_api::crd::{Measurement, Metric, NewRelicMetric};
use rollout_runner_expr::Value;

use super::common::{Clock, Failure, go_json, judged};
use super::http;
use super::settings::{NewRelicSettings, ProviderSettings, SecretString};

/// The Secret Argo reads credentials from when the metric names no `profile`.
pub const DEFAULT_PROFILE: &str = "newrelic";
const US_NERDGRAPH: &str = "https://api.newrelic.com/graphql";
const EU_NERDGRAPH: &str = "https://api.eu.newrelic.com/graphql";
/// HTTP timeout when the metric sets no `timeout` (newrelic-client-go's default).
const DEFAULT_HTTP_TIMEOUT_SECONDS: u64 = 60;

/// The NerdGraph query (newrelic-client-go's `nrdb.Query`, `results` only).
const QUERY: &str = "query($query: Nrql!, $accountId: Int!) { actor { account(id: $accountId) { nrql(query: $query) { results } } } }";
const QUERY_WITH_TIMEOUT: &str = "query($query: Nrql!, $accountId: Int!, $timeout: Seconds) { actor { account(id: $accountId) { nrql(query: $query, timeout: $timeout) { results } } } }";

pub(crate) async fn credentials(
    config: &NewRelicMetric,
    settings: &ProviderSettings,
) -> Result<NewRelicSettings, Failure> {
    let keys = [
        "personal-api-key",
        "account-id",
        "region",
        "base-url-nerdgraph",
    ];
    let found = if config.profile.is_empty() && settings.newrelic.is_some() {
        settings.newrelic.clone()
    } else {
        let profile = if config.profile.is_empty() {
            DEFAULT_PROFILE
        } else {
            config.profile.as_str()
        };
        settings
            .read_secret(settings.namespace(), profile, &keys)
            .await?
            .map(|data| NewRelicSettings {
                personal_api_key: SecretString::new(
                    data.get("personal-api-key").cloned().unwrap_or_default(),
                ),
                account_id: data.get("account-id").cloned().unwrap_or_default(),
                region: data.get("region").cloned().unwrap_or_default(),
                nerdgraph_url: data.get("base-url-nerdgraph").cloned().unwrap_or_default(),
            })
    };
    match found {
        Some(c) if !c.personal_api_key.is_empty() && !c.account_id.is_empty() => Ok(c),
        _ => Err(Failure::new(
            "account ID or personal API key not found: set NEWRELIC_PERSONAL_API_KEY and NEWRELIC_ACCOUNT_ID, or the Secret `newrelic` (keys `personal-api-key`, `account-id`)",
        )),
    }
}

pub(crate) async fn measure(
    clock: &Clock,
    metric: &Metric,
    config: &NewRelicMetric,
    credentials: &NewRelicSettings,
) -> Result<Measurement, Failure> {
    let account: i64 = credentials
        .account_id
        .trim()
        .parse()
        .map_err(|_| Failure::new("could not parse account ID: it is not an integer"))?;
    let endpoint = if !credentials.nerdgraph_url.is_empty() {
        credentials.nerdgraph_url.as_str()
    } else if credentials.region.eq_ignore_ascii_case("eu") {
        EU_NERDGRAPH
    } else {
        US_NERDGRAPH
    };
    let url = http::parse_url(endpoint, "New Relic NerdGraph URL")?;
    let (query, variables) = match config.timeout {
        Some(timeout) if timeout > 0 => (
            QUERY_WITH_TIMEOUT,
            json!({"accountId": account, "query": config.query, "timeout": timeout}),
        ),
        _ => (QUERY, json!({"accountId": account, "query": config.query})),
    };
    let http_timeout = std::time::Duration::from_secs(
        config
            .timeout
            .filter(|t| *t > 0)
            .map_or(DEFAULT_HTTP_TIMEOUT_SECONDS, |t| t.unsigned_abs() + 5),
    );
    let client = http::client(http_timeout, false)?;
    let mut key = reqwest::header::HeaderValue::from_str(credentials.personal_api_key.expose())
        .map_err(|_| Failure::new("invalid New Relic personal API key"))?;
    key.set_sensitive(true);
    let response = client
        .post(url.clone())
        .header("API-Key", key)
        .header("Newrelic-Requesting-Services", "rollout-runner")
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .map_err(|e| http::request_error("POST", &url, e))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let rows = parse_response(status, &body)?;
    let (result, value) = shape(rows)?;
    Ok(judged(clock, metric, &result, value))
}

/// The `results` rows of a NerdGraph answer, or its errors.
pub(crate) fn parse_response(status: u16, body: &str) -> Result<Vec<serde_json::Value>, Failure> {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    if let Some(errors) = json
        .as_ref()
        .and_then(|j| j.get("errors"))
        .and_then(|e| e.as_array())
        .filter(|e| !e.is_empty())
    {
        let messages: Vec<String> = errors
            .iter()
            .map(|e| {
                e.get("message")
                    .and_then(|m| m.as_str())
                    .map_or_else(|| e.to_string(), str::to_string)
            })
            .collect();
        return Err(Failure::new(messages.join(", ")));
    }
    if !(200..300).contains(&status) {
        return Err(Failure::new(format!(
            "{status} response returned: {}",
            http::truncate(body, 512)
        )));
    }
    let json = json.ok_or_else(|| Failure::new("invalid NerdGraph response: not JSON"))?;
    Ok(json
        .pointer("/data/actor/account/nrql/results")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default())
}

/// Argo's shapes: one non-empty row is a map, several rows a list of maps.
pub(crate) fn shape(rows: Vec<serde_json::Value>) -> Result<(Value, String), Failure> {
    let no_results = || Failure::new("no results returned from NRQL query");
    match rows.len() {
        0 => Err(no_results()),
        1 => {
            let row = rows.into_iter().next().unwrap_or_default();
            if row.as_object().is_none_or(|o| o.is_empty()) {
                return Err(no_results());
            }
            Ok((Value::from(&row), go_json(&row)))
        }
        _ => {
            let list = serde_json::Value::Array(rows);
            Ok((Value::from(&list), go_json(&list)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_argo_shapes() {
        let rows = |s: &str| {
            parse_response(
                200,
                &format!(r#"{{"data":{{"actor":{{"account":{{"nrql":{{"results":{s}}}}}}}}}}}"#),
            )
            .unwrap()
        };
        let (one, value) = shape(rows(r#"[{"count":10,"average.duration":12.34}]"#)).unwrap();
        assert_eq!(value, r#"{"average.duration":12.34,"count":10}"#);
        assert!(matches!(one, Value::Map(_)));
        let (_, many) = shape(rows(r#"[{"count":10},{"count":20},{"count":30}]"#)).unwrap();
        assert_eq!(many, r#"[{"count":10},{"count":20},{"count":30}]"#);
        assert_eq!(
            shape(rows("[{}]")).unwrap_err().0,
            "no results returned from NRQL query"
        );
        assert_eq!(
            shape(rows("[]")).unwrap_err().0,
            "no results returned from NRQL query"
        );
        let error = parse_response(200, r#"{"errors":[{"message":"NRQL Syntax Error"}]}"#);
        assert_eq!(error.unwrap_err().0, "NRQL Syntax Error");
    }
}
