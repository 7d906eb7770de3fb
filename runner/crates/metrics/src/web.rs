//! Web: one HTTP request; `result` is the first match of the Kubernetes-style `jsonPath` in a
//! JSON body (default `{$}`, the whole body), or the body as a string when it is not JSON, as
//! Argo's `webmetric` provider.

use reqwest::Method;
use serde_json_path::JsonPath;

use rollout_runner_api::crd::{AnalysisPhase, Measurement, Metric, WebMetric};
use rollout_runner_core::engine::conditions::meta_time;
use rollout_runner_expr::Value;

use super::common::{Clock, Failure, conditions_metadata, go_json, judged};
use super::http;

/// Default request timeout in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

pub(crate) async fn measure(
    clock: &Clock,
    metric: &Metric,
    config: &WebMetric,
) -> Result<Measurement, Failure> {
    let method = match config.method.as_str() {
        "" | "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        other => {
            return Err(Failure::new(format!(
                "unsupported WebMetric method {other:?}: use GET, POST or PUT"
            )));
        }
    };
    let has_body = !config.body.is_empty();
    let has_json_body = config.json_body.is_some();
    if has_body && has_json_body {
        return Err(Failure::new(
            "use either Body or JSONBody; both cannot exists for WebMetric payload",
        ));
    }
    if (has_body || has_json_body) && method == Method::GET {
        return Err(Failure::new(
            "Body/JSONBody can only be used with POST or PUT WebMetric Method types",
        ));
    }
    let path = compile_json_path(&config.json_path)?;
    let url = http::parse_url(&config.url, "web url")?;
    let timeout = http::seconds(config.timeout_seconds, DEFAULT_TIMEOUT_SECONDS);
    let client = http::client(timeout, config.insecure)?;
    let mut headers = http::headers(&config.headers)?;
    if let Some(auth) =
        http::authorization(config.authentication.as_ref(), timeout, config.insecure).await?
    {
        headers.insert(reqwest::header::AUTHORIZATION, auth);
    }
    if has_json_body {
        // Go's `Header.Set`: replaces a Content-Type given in `headers`.
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
    }
    let mut request = client.request(method.clone(), url.clone()).headers(headers);
    if has_body {
        request = request.body(config.body.clone());
    } else if let Some(json) = &config.json_body {
        request = request.body(serde_json::to_vec(json).unwrap_or_default());
    }
    let response = request
        .send()
        .await
        .map_err(|e| http::request_error(method.as_str(), &url, e))?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(Failure::new(format!(
            "received non 2xx response code: {status}"
        )));
    }
    let body = response.bytes().await.map_err(|e| {
        Failure::new(format!(
            "Received no bytes in response: {}",
            http::chain(&e)
        ))
    })?;
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        // Argo: a body that is not JSON is the value, and the measurement is Successful
        // without looking at the conditions.
        let text = String::from_utf8_lossy(&body).into_owned();
        let mut metadata = conditions_metadata(metric);
        metadata.insert(
            "explanation".into(),
            "the response body is not JSON: Argo takes it as the value and marks the measurement Successful without evaluating the conditions".into(),
        );
        return Ok(Measurement {
            phase: AnalysisPhase::Successful,
            started_at: Some(meta_time(clock.now)),
            finished_at: Some(meta_time(clock.finished())),
            value: text,
            metadata,
            ..Default::default()
        });
    };
    let found = path.find(&json)?;
    Ok(judged(clock, metric, &Value::from(found), go_json(found)))
}

/// A Kubernetes JSONPath template (`{$.data.ok}`, `{.items[0].v}`, `{$}`) as an RFC 9535 path.
pub(crate) struct WebJsonPath {
    path: JsonPath,
    source: String,
}

pub(crate) fn compile_json_path(template: &str) -> Result<WebJsonPath, Failure> {
    let template = if template.trim().is_empty() {
        "{$}"
    } else {
        template.trim()
    };
    let inner = template
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .filter(|t| !t.contains('{') && !t.contains('}'))
        .ok_or_else(|| {
            Failure::new(format!(
                "unsupported jsonPath {template:?}: rollout-runner takes one `{{...}}` expression, without text around it or `range`"
            ))
        })?
        .trim();
    if inner.starts_with("range") || inner == "end" {
        return Err(Failure::new(format!(
            "unsupported jsonPath {template:?}: `range` templates are not supported"
        )));
    }
    let rfc = if inner.starts_with('$') {
        inner.to_string()
    } else if inner.starts_with('.') || inner.starts_with('[') {
        format!("${inner}")
    } else {
        format!("$.{inner}")
    };
    let path = JsonPath::parse(&rfc)
        .map_err(|e| Failure::new(format!("invalid jsonPath {template:?}: {e}")))?;
    Ok(WebJsonPath {
        path,
        source: inner.to_string(),
    })
}

impl WebJsonPath {
    /// The first match, or Argo's error when there is none.
    pub(crate) fn find<'v>(
        &self,
        json: &'v serde_json::Value,
    ) -> Result<&'v serde_json::Value, Failure> {
        if let Some(found) = self.path.query(json).first() {
            return Ok(found);
        }
        // client-go names the missing field: `novalue is not found`.
        let last = self
            .source
            .rsplit(['.', '['])
            .next()
            .unwrap_or(&self.source)
            .trim_end_matches(']');
        if !last.is_empty()
            && last
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            Err(Failure::new(format!(
                "Could not find JSONPath in body: {last} is not found"
            )))
        } else {
            Err(Failure::new("result of web metric produced no value"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_paths_become_rfc_paths() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"key":[{"key2":{"value":"1"}}],"items":[{"n":"a","v":1},{"n":"b","v":2}]}"#,
        )
        .unwrap();
        let find = |p: &str| compile_json_path(p).unwrap().find(&json).map(go_json);
        assert_eq!(find("{$.key[0].key2.value}").unwrap(), "\"1\"");
        assert_eq!(find("{.key[0].key2.value}").unwrap(), "\"1\"");
        assert_eq!(find("{$.items[?(@.n == 'b')].v}").unwrap(), "2");
        assert_eq!(find("{$.items[*].v}").unwrap(), "1");
        assert!(find("{$}").unwrap().starts_with("{\"items\""));
        assert_eq!(
            find("{$.key[0].key2.novalue}").unwrap_err().0,
            "Could not find JSONPath in body: novalue is not found"
        );
        assert!(compile_json_path("value: {.a}").is_err());
        assert!(compile_json_path("{range .items[*]}{.v}{end}").is_err());
    }
}
