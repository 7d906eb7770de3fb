//! Graphite: the render API (`GET {address}/render?{query}&format=json`), as Argo's provider:
//! `result` is the non-null datapoints of the first target, `value` printed with `%f`
//! (`[10.000000]`). The query is the render API's query string (`target=...&from=-5min`), with
//! whitespace removed.
//!
//! API reference: <https://graphite.readthedocs.io/en/latest/render_api.html>.

use std::time::Duration;

use rollout_runner_api::crd::{GraphiteMetric, Measurement, Metric};
use rollout_runner_expr::Value;

use super::common::{Clock, Failure, format_float_6, judged};
use super::http;

/// Argo's fixed request timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn measure(
    clock: &Clock,
    metric: &Metric,
    config: &GraphiteMetric,
) -> Result<Measurement, Failure> {
    if config.address.is_empty() {
        return Err(Failure::new("Graphite address is not a valid URL"));
    }
    let base = http::parse_url(&config.address, "Graphite address")?;
    let url = render_url(&base, &config.query);
    let client = http::client(TIMEOUT, false)?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| http::request_error("GET", &url, e))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if status >= 400 {
        return Err(Failure::new(format!(
            "error response: {}",
            http::truncate(&body, 512)
        )));
    }
    let points = parse_response(&body)?;
    if points.is_empty() {
        return Err(Failure::new("no values found"));
    }
    let values: Vec<f64> = points.into_iter().flatten().collect();
    let text = format!(
        "[{}]",
        values
            .iter()
            .map(|v| format_float_6(*v))
            .collect::<Vec<_>>()
            .join(",")
    );
    Ok(judged(clock, metric, &Value::Vector(values), text))
}

/// `{address}/render` with the query's parameters (whitespace removed, as Argo) and
/// `format=json`.
pub(crate) fn render_url(base: &url::Url, query: &str) -> url::Url {
    let compact: String = query.chars().filter(|c| !c.is_whitespace()).collect();
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(compact.as_bytes())
        .into_owned()
        .filter(|(k, _)| k != "format")
        .collect();
    pairs.push(("format".into(), "json".into()));
    // Go's `url.Values.Encode` sorts by key.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut url = base.clone();
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}/render"));
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url
}

/// The datapoints of the first target (`[[value, timestamp], ...]`); a value may be null, a
/// number or a numeric string.
pub(crate) fn parse_response(body: &str) -> Result<Vec<Option<f64>>, Failure> {
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| Failure::new(e.to_string()))?;
    let targets = json
        .as_array()
        .ok_or_else(|| Failure::new("invalid Graphite response: not a list of targets"))?;
    let Some(first) = targets.first() else {
        return Ok(Vec::new());
    };
    let points = first
        .get("datapoints")
        .and_then(|d| d.as_array())
        .cloned()
        .unwrap_or_default();
    points
        .iter()
        .map(|point| {
            let pair = point
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| Failure::new(format!("error unmarshaling data point: {point}")))?;
            match &pair[0] {
                serde_json::Value::Null => Ok(None),
                serde_json::Value::Number(n) => Ok(n.as_f64()),
                serde_json::Value::String(s) => s
                    .parse()
                    .map(Some)
                    .map_err(|_| Failure::new(format!("error unmarshaling value: {s}"))),
                other => Err(Failure::new(format!("error unmarshaling value: {other}"))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_becomes_render_parameters() {
        let base = url::Url::parse("http://graphite:8080/prefix/").unwrap();
        let url = render_url(
            &base,
            "target=summarize(sumSeries(a.b), '5min', 'avg')\n&from=-5min",
        );
        assert_eq!(url.path(), "/prefix/render");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("format".to_string(), "json".to_string()),
                ("from".into(), "-5min".into()),
                (
                    "target".into(),
                    "summarize(sumSeries(a.b),'5min','avg')".into()
                ),
            ]
        );
    }

    #[test]
    fn datapoints_skip_nulls() {
        let points = parse_response(
            r#"[{"target":"a","datapoints":[[10,1621348400],[null,1621348410],["11.5",1621348420]]}]"#,
        )
        .unwrap();
        assert_eq!(points, vec![Some(10.0), None, Some(11.5)]);
        assert!(parse_response("[]").unwrap().is_empty());
    }
}
