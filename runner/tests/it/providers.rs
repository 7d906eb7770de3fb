//! Metric providers against local servers that check each request against the provider's
//! published API and answer with responses shaped like the ones recorded in Argo's tests.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rollout_runner::analysis::run::TaskKind;
use rollout_runner::crd::{AnalysisPhase, AnalysisRun, Measurement, Metric};
use rollout_runner::metrics::settings::{
    DatadogSettings, InfluxdbSettings, MemorySecrets, NewRelicSettings, SecretString,
};
use rollout_runner::metrics::{MeasureContext, Metrics, ProviderSettings, Providers};
use serde_json::json;

use crate::contract_server::{Reply, Request, Server};

/// Argo's tests' clock (`unixNow`).
const NOW: i64 = 1_599_076_435;

fn metric(value: serde_json::Value) -> Metric {
    serde_json::from_value(value).expect("a valid metric")
}

fn run() -> AnalysisRun {
    let mut run = AnalysisRun::new("run", Default::default());
    run.metadata.namespace = Some("team".into());
    run
}

async fn measure_with(
    providers: &Providers,
    metric: &Metric,
    task: TaskKind,
    secrets: &[String],
) -> Measurement {
    let run = run();
    let context = MeasureContext {
        run: &run,
        now: Timestamp::from_second(NOW).unwrap(),
        secrets,
    };
    providers.measure(context, metric, &task).await
}

async fn measure(providers: &Providers, metric: &Metric) -> Measurement {
    measure_with(providers, metric, TaskKind::Run, &[]).await
}

fn plain() -> Providers {
    Providers::new(ProviderSettings::default())
}

// ---------------------------------------------------------------------------------------------
// Web (Argo's `webmetric_test.go` cases).

#[tokio::test]
async fn web_get_sends_headers_and_takes_the_first_json_path_match() {
    let server =
        Server::start(|_| Reply::json(200, r#"{"a": 1, "b": true, "c": [1, 2, 3, 4], "d": null}"#))
            .await;
    let m = metric(json!({
        "name": "web",
        "successCondition": "result.a > 0 && result.b && all(result.c, {# < 5}) && result.d == nil",
        "provider": {"web": {"url": format!("{}/status?x=1", server.url()),
                             "headers": [{"key": "key", "value": "value"}]}},
    }));
    let measurement = measure(&plain(), &m).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    assert_eq!(
        measurement.value,
        r#"{"a":1,"b":true,"c":[1,2,3,4],"d":null}"#
    );
    assert!(measurement.metadata["explanation"].contains("satisfied successCondition"));
    assert_eq!(
        measurement.metadata["successCondition"],
        m.success_condition
    );
    let request = &server.requests()[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/status");
    assert_eq!(request.param("x"), Some("1"));
    assert_eq!(request.header("key"), Some("value"));
    assert!(request.body.is_empty());

    // A string inside the body: the value keeps its quotes.
    let server =
        Server::start(|_| Reply::json(200, r#"{"key": [{"key2": {"value": "0"}}]}"#)).await;
    let m = metric(json!({
        "name": "web",
        "successCondition": "asInt(result) > 0",
        "failureCondition": "asInt(result) <= 0",
        "provider": {"web": {"url": server.url(), "jsonPath": "{$.key[0].key2.value}"}},
    }));
    let measurement = measure(&plain(), &m).await;
    assert_eq!(measurement.phase, AnalysisPhase::Failed);
    assert_eq!(measurement.value, "\"0\"");
}

#[tokio::test]
async fn web_post_and_put_send_the_body() {
    let server = Server::start(|_| Reply::json(200, r#"{"ok": true}"#)).await;
    let post = metric(json!({
        "name": "web", "successCondition": "result.ok",
        "provider": {"web": {"method": "POST", "url": server.url(), "body": "some body"}},
    }));
    assert_eq!(
        measure(&plain(), &post).await.phase,
        AnalysisPhase::Successful
    );
    let put = metric(json!({
        "name": "web", "successCondition": "result.ok",
        "provider": {"web": {"method": "PUT", "url": server.url(),
                             "headers": [{"key": "Content-Type", "value": "application/json"}],
                             "jsonBody": {"key1": "value1", "key2": {"key3": "value3"}}}},
    }));
    assert_eq!(
        measure(&plain(), &put).await.phase,
        AnalysisPhase::Successful
    );
    let requests = server.requests();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].body, b"some body");
    assert_eq!(requests[1].method, "PUT");
    assert_eq!(requests[1].header("content-type"), Some("application/json"));
    assert_eq!(
        requests[1].headers.get_all("content-type").iter().count(),
        1
    );
    assert_eq!(
        requests[1].json(),
        json!({"key1": "value1", "key2": {"key3": "value3"}})
    );
}

#[tokio::test]
async fn web_non_json_bodies_are_successful_strings() {
    let server = Server::start(|_| Reply::text(200, "test: notJson")).await;
    let m = metric(json!({
        "name": "web", "successCondition": "false",
        "provider": {"web": {"url": server.url(), "jsonPath": "{$.key}"}},
    }));
    let measurement = measure(&plain(), &m).await;
    assert_eq!(measurement.phase, AnalysisPhase::Successful);
    assert_eq!(measurement.value, "test: notJson");
    let empty = Server::start(|_| Reply::text(200, "")).await;
    let m = metric(json!({"name": "web", "provider": {"web": {"url": empty.url()}}}));
    let measurement = measure(&plain(), &m).await;
    assert_eq!(
        (measurement.phase, measurement.value.as_str()),
        (AnalysisPhase::Successful, "")
    );
}

#[tokio::test]
async fn web_errors_have_argo_messages() {
    let server = Server::start(|r| {
        if r.path == "/300" {
            Reply::json(300, "{}")
        } else {
            Reply::json(200, r#"{"key": [{"key2": {"value": "true"}}]}"#)
        }
    })
    .await;
    let cases = [
        (
            json!({"url": format!("{}/300", server.url())}),
            "received non 2xx response code: 300",
        ),
        (
            json!({"url": server.url(), "jsonPath": "{$.key[0].key2.novalue}"}),
            "Could not find JSONPath in body: novalue is not found",
        ),
        (
            json!({"url": server.url(), "body": "some body"}),
            "Body/JSONBody can only be used with POST or PUT WebMetric Method types",
        ),
        (
            json!({"url": server.url(), "method": "POST", "body": "b", "jsonBody": {"a": 1}}),
            "use either Body or JSONBody; both cannot exists for WebMetric payload",
        ),
        (
            json!({"url": "bad://url.com"}),
            "web url is not a valid URL: unsupported protocol scheme \"bad\"",
        ),
    ];
    for (web, expected) in cases {
        let m =
            metric(json!({"name": "web", "successCondition": "true", "provider": {"web": web}}));
        let measurement = measure(&plain(), &m).await;
        assert_eq!(measurement.phase, AnalysisPhase::Error);
        assert_eq!(measurement.message, expected);
        assert!(measurement.metadata["explanation"].contains(expected));
        assert_eq!(measurement.metadata["successCondition"], "true");
    }
}

#[tokio::test]
async fn web_timeouts_give_up() {
    let server = Server::start(|_| Reply {
        delay: Duration::from_secs(3),
        ..Reply::json(200, "{}")
    })
    .await;
    let m = metric(
        json!({"name": "web", "provider": {"web": {"url": server.url(), "timeoutSeconds": 1}}}),
    );
    let started = std::time::Instant::now();
    let measurement = measure(&plain(), &m).await;
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(measurement.phase, AnalysisPhase::Error);
    assert!(
        measurement.message.contains("Client.Timeout exceeded"),
        "{}",
        measurement.message
    );
}

/// RFC 6749 §4.4: the token request carries `grant_type=client_credentials`, the scopes and
/// the client's credentials as HTTP basic auth; the metric request carries the bearer token.
#[tokio::test]
async fn oauth2_client_credentials_then_bearer_token() {
    let server = Server::start(|r: &Request| {
        if r.path == "/token" {
            let form = r.form();
            let basic = format!("Basic {}", base64_encode("my-client:my-secret"));
            if r.method == "POST"
                && form.contains(&("grant_type".into(), "client_credentials".into()))
                && form.contains(&("scope".into(), "read metrics".into()))
                && r.header("authorization") == Some(basic.as_str())
            {
                Reply::json(
                    200,
                    r#"{"access_token":"tok-123","token_type":"bearer","expires_in":3600}"#,
                )
            } else {
                Reply::json(401, r#"{"error":"invalid_client"}"#)
            }
        } else if r.header("authorization") == Some("Bearer tok-123") {
            Reply::json(
                200,
                r#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#,
            )
        } else {
            Reply::json(401, "{}")
        }
    })
    .await;
    let auth = json!({"oauth2": {"tokenUrl": format!("{}/token", server.url()),
        "clientId": "my-client", "clientSecret": "my-secret", "scopes": ["read", "metrics"]}});
    let web = metric(
        json!({"name": "w", "provider": {"web": {"url": format!("{}/api", server.url()), "authentication": auth}}}),
    );
    let measurement = measure(&plain(), &web).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    let prometheus = metric(json!({"name": "p", "successCondition": "result == 1",
        "provider": {"prometheus": {"address": server.url(), "query": "up", "authentication": auth}}}));
    let measurement = measure(&plain(), &prometheus).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    assert_eq!(measurement.value, "1");
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

// ---------------------------------------------------------------------------------------------
// Prometheus request contract (the real server is in `prometheus_real.rs`).

/// <https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries>: `POST
/// /api/v1/query` with a form body `query=...&time=<unix seconds>`.
#[tokio::test]
async fn prometheus_posts_the_query_with_headers_and_basic_auth() {
    let server = Server::start(|_| {
        Reply::json(200, r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1599076435,"10"]},{"metric":{"a":"2"},"value":[1599076435,"11"]}]},
            "warnings":["warning","warning2"]}"#)
    })
    .await;
    let m = metric(json!({
        "name": "p", "successCondition": "10 in result", "failureCondition": "len(result) != 2",
        "provider": {"prometheus": {
            "address": format!("{}/prom/", server.url()), "query": "sum(rate(x[5m]))",
            "headers": [{"key": "X-Scope-OrgID", "value": "tenant_a"}],
            "authentication": {"basicAuth": {"username": "user", "password": "pass"}}}},
    }));
    let measurement = measure(&plain(), &m).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    assert_eq!(measurement.value, "[10,11]");
    assert_eq!(measurement.metadata["warnings"], r#""warning", "warning2""#);
    let request = &server.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/prom/api/v1/query")
    );
    assert_eq!(
        request.form(),
        vec![
            ("query".to_string(), "sum(rate(x[5m]))".to_string()),
            ("time".into(), NOW.to_string())
        ]
    );
    assert_eq!(request.header("x-scope-orgid"), Some("tenant_a"));
    assert_eq!(
        request.header("authorization").map(str::to_string),
        Some(format!("Basic {}", base64_encode("user:pass")))
    );
    assert_eq!(
        rollout_runner::metrics::providers::result_metadata(&m)["ResolvedPrometheusQuery"],
        "sum(rate(x[5m]))"
    );
}

/// <https://prometheus.io/docs/prometheus/latest/querying/api/#range-queries>.
#[tokio::test]
async fn prometheus_range_queries_send_start_end_and_step() {
    let server = Server::start(|_| {
        Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#,
        )
    })
    .await;
    let m = metric(json!({
        "name": "p", "successCondition": "all(result, # < 3)",
        "provider": {"prometheus": {"address": server.url(), "query": "x",
            "rangeQuery": {"start": "now() - duration(\"10m\")", "end": "now()", "step": "1m"}}},
    }));
    let measurement = measure(&plain(), &m).await;
    assert_eq!(
        (measurement.phase, measurement.value.as_str()),
        (AnalysisPhase::Successful, "[1,2]")
    );
    let request = &server.requests()[0];
    assert_eq!(request.path, "/api/v1/query_range");
    let form = request.form();
    assert!(
        form.contains(&("start".into(), (NOW - 600).to_string())),
        "{form:?}"
    );
    assert!(form.contains(&("end".into(), NOW.to_string())));
    assert!(form.contains(&("step".into(), "60".into())));
}

#[tokio::test]
async fn prometheus_errors_read_as_argo() {
    let server = Server::start(|_| {
        Reply::json(400, r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected end of input"}"#)
    })
    .await;
    let m = metric(
        json!({"name": "p", "provider": {"prometheus": {"address": server.url(), "query": "sum("}}}),
    );
    let measurement = measure(&plain(), &m).await;
    assert_eq!(measurement.phase, AnalysisPhase::Error);
    assert_eq!(
        measurement.message,
        "bad_data: invalid parameter \"query\": 1:5: parse error: unexpected end of input"
    );
    let negative = metric(
        json!({"name": "p", "provider": {"prometheus": {"address": server.url(), "query": "x", "timeout": -20}}}),
    );
    assert_eq!(
        measure(&plain(), &negative).await.message,
        "prometheus timeout should not be negative"
    );
    // The default address comes from the settings (ARGO_ROLLOUTS_PROMETHEUS_ADDRESS).
    let ok = Server::start(|_| {
        Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#,
        )
    })
    .await;
    let providers = Providers::new(ProviderSettings {
        prometheus_address: Some(ok.url()),
        ..Default::default()
    });
    let m = metric(
        json!({"name": "p", "successCondition": "isNaN(result)", "provider": {"prometheus": {"query": "x"}}}),
    );
    let measurement = measure(&providers, &m).await;
    assert_eq!(
        (measurement.phase, measurement.value.as_str()),
        (AnalysisPhase::Successful, "NaN")
    );
}

// ---------------------------------------------------------------------------------------------
// Datadog.

const DD_API: &str = "0123456789abcdef0123456789abcdef";
const DD_APP: &str = "0123456789abcdef0123456789abcdef01234567";

fn datadog(address: &str) -> Providers {
    Providers::new(ProviderSettings {
        datadog: Some(DatadogSettings {
            api_key: SecretString::new(DD_API),
            app_key: SecretString::new(DD_APP),
            address: address.to_string(),
        }),
        ..Default::default()
    })
}

fn dd_keys_ok(r: &Request) -> bool {
    r.header("dd-api-key") == Some(DD_API) && r.header("dd-application-key") == Some(DD_APP)
}

/// <https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points>: `GET
/// /api/v1/query?from=&to=&query=` with `DD-API-KEY` and `DD-APPLICATION-KEY`.
#[tokio::test]
async fn datadog_v1_queries_the_window_and_takes_the_last_point() {
    let server = Server::start(|r| {
        if r.path == "/api/v1/query" && r.method == "GET" && dd_keys_ok(r) {
            if r.param("query") == Some("avg:empty{*}") {
                return Reply::json(200, r#"{"status":"ok","series":[]}"#);
            }
            Reply::json(200, r#"{"status":"ok","series":[{"pointlist":[[1598867910000,0.0020008318672513122],[1598867925000,0.0003332881882246533]]}]}"#)
        } else {
            Reply::json(403, r#"{"errors": ["Forbidden"]}"#)
        }
    })
    .await;
    let m = metric(
        json!({"name": "dd", "successCondition": "result < 0.001", "failureCondition": "result >= 0.001",
        "provider": {"datadog": {"query": "avg:kubernetes.cpu.user.total{*}", "interval": "10m"}}}),
    );
    let measurement = measure(&datadog(&server.url()), &m).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    assert_eq!(measurement.value, "0.0003332881882246533");
    let request = &server.requests()[0];
    assert_eq!(
        request.param("query"),
        Some("avg:kubernetes.cpu.user.total{*}")
    );
    assert_eq!(
        request.param("from"),
        Some((NOW - 600).to_string().as_str())
    );
    assert_eq!(request.param("to"), Some(NOW.to_string().as_str()));
    // No data: nil, so `default(result, 0)` decides.
    let empty = metric(
        json!({"name": "dd", "successCondition": "default(result, 0) < 0.05",
        "provider": {"datadog": {"query": "avg:empty{*}"}}}),
    );
    let measurement = measure(&datadog(&server.url()), &empty).await;
    assert_eq!(
        (measurement.phase, measurement.value.as_str()),
        (AnalysisPhase::Successful, "[]")
    );
    // Wrong keys: Argo's authentication message, body included.
    let wrong = Providers::new(ProviderSettings {
        datadog: Some(DatadogSettings {
            api_key: "nope".into(),
            app_key: "nope".into(),
            address: server.url(),
        }),
        ..Default::default()
    });
    let measurement = measure(&wrong, &m).await;
    assert_eq!(
        measurement.message,
        r#"received authentication error response code: 403 {"errors": ["Forbidden"]}"#
    );
}

/// <https://docs.datadoghq.com/api/latest/metrics/#query-scalar-data-across-multiple-products>:
/// `POST /api/v2/query/scalar` with a `scalar_request` in milliseconds.
#[tokio::test]
async fn datadog_v2_posts_a_scalar_request() {
    let server = Server::start(|r| {
        let body = r.json();
        let ok = r.path == "/api/v2/query/scalar"
            && r.method == "POST"
            && dd_keys_ok(r)
            && r.header("content-type") == Some("application/json")
            && body["data"]["type"] == "scalar_request"
            && body["data"]["attributes"]["from"] == json!((NOW - 300) * 1000)
            && body["data"]["attributes"]["to"] == json!(NOW * 1000);
        if ok {
            Reply::json(200, r#"{"data": {"type": "scalar_response", "attributes": {"columns": [{"name": "a", "type": "number", "values": [0.0006444881882246533]}]}}}"#)
        } else {
            Reply::json(400, r#"{"errors":["bad request"]}"#)
        }
    })
    .await;
    let m = metric(
        json!({"name": "dd", "successCondition": "default(result, 0) < 0.05",
        "provider": {"datadog": {"apiVersion": "v2", "aggregator": "sum",
            "queries": {"a": "avg:error_requests{*}", "b": "avg:total_requests{*}"}, "formula": "a/b"}}}),
    );
    let measurement = measure(&datadog(&server.url()), &m).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    assert_eq!(measurement.value, "0.0006444881882246533");
    let body = server.requests()[0].json();
    assert_eq!(
        body["data"]["attributes"]["queries"],
        json!([
            {"aggregator": "sum", "data_source": "metrics", "name": "a", "query": "avg:error_requests{*}"},
            {"aggregator": "sum", "data_source": "metrics", "name": "b", "query": "avg:total_requests{*}"},
        ])
    );
    assert_eq!(
        body["data"]["attributes"]["formulas"],
        json!([{"formula": "a/b"}])
    );
}

#[tokio::test]
async fn datadog_credentials_come_from_a_namespaced_secret() {
    let server = Server::start(|r| {
        if dd_keys_ok(r) {
            Reply::json(200, r#"{"series":[{"pointlist":[[1,0.5]]}]}"#)
        } else {
            Reply::json(401, "{}")
        }
    })
    .await;
    let secrets = MemorySecrets::default().with(
        "team",
        "mysecret",
        &[
            ("api-key", DD_API),
            ("app-key", DD_APP),
            ("address", &server.url()),
        ],
    );
    let providers = Providers::new(ProviderSettings::default().with_secrets(Arc::new(secrets)));
    let m = metric(json!({"name": "dd", "successCondition": "result == 0.5",
        "provider": {"datadog": {"query": "q", "secretRef": {"name": "mysecret", "namespaced": true}}}}));
    let measurement = measure(&providers, &m).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    let none = metric(json!({"name": "dd", "provider": {"datadog": {"query": "q"}}}));
    assert!(
        measure(&plain(), &none)
            .await
            .message
            .starts_with("API or App token not found")
    );
}

// ---------------------------------------------------------------------------------------------
// New Relic.

/// <https://docs.newrelic.com/docs/apis/nerdgraph/examples/nerdgraph-nrql-tutorial/>: `POST
/// /graphql` with the `API-Key` header and an `nrql` query on the account.
#[tokio::test]
async fn newrelic_runs_nrql_through_nerdgraph() {
    let server = Server::start(|r| {
        let body = r.json();
        let ok = r.method == "POST"
            && r.path == "/graphql"
            && r.header("api-key") == Some("NRAK-KEY")
            && body["variables"]["accountId"] == json!(12345)
            && body["variables"]["query"] == json!("SELECT count(*) FROM Transaction")
            && body["query"].as_str().is_some_and(|q| q.contains("nrql(query: $query"));
        if ok {
            Reply::json(200, r#"{"data":{"actor":{"account":{"nrql":{"results":[{"count":10,"average.duration":12.34}]}}}}}"#)
        } else {
            Reply::json(200, r#"{"errors":[{"message":"bad request"}]}"#)
        }
    })
    .await;
    let providers = Providers::new(ProviderSettings {
        newrelic: Some(NewRelicSettings {
            personal_api_key: "NRAK-KEY".into(),
            account_id: "12345".into(),
            region: String::new(),
            nerdgraph_url: format!("{}/graphql", server.url()),
        }),
        ..Default::default()
    });
    let m = metric(json!({"name": "nr",
        "successCondition": "result.count == 10 and result['average.duration'] < 15.0",
        "provider": {"newRelic": {"query": "SELECT count(*) FROM Transaction"}}}));
    let measurement = measure(&providers, &m).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    assert_eq!(
        measurement.value,
        r#"{"average.duration":12.34,"count":10}"#
    );
    let bad = metric(json!({"name": "nr", "provider": {"newRelic": {"query": "SELECT nothing"}}}));
    assert_eq!(measure(&providers, &bad).await.message, "bad request");
}

// ---------------------------------------------------------------------------------------------
// Graphite.

/// <https://graphite.readthedocs.io/en/latest/render_api.html>: `GET /render?target=&from=&format=json`.
#[tokio::test]
async fn graphite_renders_the_target_as_json() {
    let server = Server::start(|r| {
        if r.path == "/render" && r.param("format") == Some("json") && r.param("target").is_some() {
            Reply::json(200, r#"[{"target":"a","datapoints":[[10,1621348400],[null,1621348410],[12.5,1621348420]]}]"#)
        } else {
            Reply::text(400, "bad render request")
        }
    })
    .await;
    let m = metric(json!({"name": "g", "successCondition": "result[0] == 10",
        "provider": {"graphite": {"address": server.url(), "query": "target=sumSeries(a.b)&from=-5min"}}}));
    let measurement = measure(&plain(), &m).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    assert_eq!(measurement.value, "[10.000000,12.500000]");
    let request = &server.requests()[0];
    assert_eq!(request.param("target"), Some("sumSeries(a.b)"));
    assert_eq!(request.param("from"), Some("-5min"));
    let bad = metric(
        json!({"name": "g", "provider": {"graphite": {"address": server.url(), "query": "from=-5min"}}}),
    );
    assert_eq!(
        measure(&plain(), &bad).await.message,
        "error response: bad render request"
    );
}

// ---------------------------------------------------------------------------------------------
// InfluxDB.

const INFLUX_CSV: &str = "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string\r
#group,false,false,true,true,false,false,true,true,true,true\r
#default,_result,,,,,,,,,\r
,result,table,_start,_stop,_time,_value,_field,_measurement,a,b\r
,,0,2020-02-17T22:19:49.747562847Z,2020-02-18T22:19:49.747562847Z,2020-02-18T10:34:08.135814545Z,1.0,f,test,1,adsfasdf\r
,,0,2020-02-17T22:19:49.747562847Z,2020-02-18T22:19:49.747562847Z,2020-02-18T22:08:44.850214724Z,6.6,f,test,1,adsfasdf\r
\r
";

/// <https://docs.influxdata.com/influxdb/v2/api/#operation/PostQuery>: `POST
/// /api/v2/query?org=` with `Authorization: Token ...` and a Flux query, answered as annotated
/// CSV.
#[tokio::test]
async fn influxdb_posts_flux_and_reads_annotated_csv() {
    let server = Server::start(|r| {
        let body = r.json();
        if r.path == "/api/v2/query"
            && r.param("org") == Some("my-org")
            && r.header("authorization") == Some("Token influx-token")
            && body["type"] == "flux"
            && body["query"]
                .as_str()
                .is_some_and(|q| q.starts_with("from("))
        {
            Reply {
                content_type: "text/csv; charset=utf-8",
                ..Reply::text(200, INFLUX_CSV)
            }
        } else {
            Reply::json(
                401,
                r#"{"code":"unauthorized","message":"unauthorized access"}"#,
            )
        }
    })
    .await;
    let settings = |token: &str| {
        Providers::new(ProviderSettings {
            influxdb: Some(InfluxdbSettings {
                token: SecretString::new(token),
                org: "my-org".into(),
                address: server.url(),
            }),
            ..Default::default()
        })
    };
    let m = metric(
        json!({"name": "i", "successCondition": "result[0] == 1", "failureCondition": "result[0] != 1",
        "provider": {"influxdb": {"query": "from(bucket: \"b\") |> range(start: -1h)"}}}),
    );
    let measurement = measure(&settings("influx-token"), &m).await;
    assert_eq!(
        measurement.phase,
        AnalysisPhase::Successful,
        "{measurement:?}"
    );
    assert_eq!(measurement.value, "[1 6.6]");
    assert_eq!(
        measure(&settings("wrong"), &m).await.message,
        "unauthorized: unauthorized access"
    );
}

// ---------------------------------------------------------------------------------------------
// Kayenta.

/// Kayenta's `CanaryController`: `GET /canaryConfig?application=&configurationAccountName=`,
/// `POST /canary/{configId}?application=&metricsAccountName=&configurationAccountName=&storageAccountName=`
/// with `{scopes, thresholds}`, then `GET /canary/{executionId}` until `complete`.
#[tokio::test]
async fn kayenta_starts_a_judgement_and_polls_it() {
    let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = polls.clone();
    let server = Server::start(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/canaryConfig")
            if r.param("application") == Some("guestbook")
                && r.param("configurationAccountName") == Some("config-account") =>
        {
            Reply::json(200, r#"[{"id":"other-id","name":"other"},{"id":"config-id","name":"my-config","applications":["guestbook"]}]"#)
        }
        ("POST", "/canary/config-id")
            if r.param("metricsAccountName") == Some("metrics-account")
                && r.param("storageAccountName") == Some("storage-account")
                && r.json()["thresholds"] == json!({"pass": 90, "marginal": 75})
                && r.json()["scopes"]["default"]["experimentScope"]["scope"] == "canary-hash" =>
        {
            Reply::json(200, r#"{"canaryExecutionId":"01DS50WVHAWSTAQACJKB1VKDQB"}"#)
        }
        ("GET", "/canary/01DS50WVHAWSTAQACJKB1VKDQB") => {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                Reply::json(200, r#"{"complete":false,"status":"running"}"#)
            } else {
                Reply::json(200, r#"{"complete":true,"status":"succeeded","result":{"judgeResult":{"score":{"score":80.5,"classification":"Marginal","classificationReason":""}}}}"#)
            }
        }
        _ => Reply::json(404, "{}"),
    })
    .await;
    let m = metric(json!({"name": "k", "provider": {"kayenta": {
        "address": server.url(), "application": "guestbook", "canaryConfigName": "my-config",
        "metricsAccountName": "metrics-account", "configurationAccountName": "config-account",
        "storageAccountName": "storage-account", "threshold": {"pass": 90, "marginal": 75},
        "scopes": [{"name": "default",
            "controlScope": {"scope": "stable-hash", "step": 60, "start": "2019-03-29T01:08:34Z", "end": "2019-03-29T01:38:34Z"},
            "experimentScope": {"scope": "canary-hash", "step": 60, "start": "2019-03-29T01:08:34Z", "end": "2019-03-29T01:38:34Z"}}]}}}));
    let started = measure(&plain(), &m).await;
    assert_eq!(started.phase, AnalysisPhase::Running, "{started:?}");
    assert_eq!(
        started.metadata["canaryExecutionId"],
        "01DS50WVHAWSTAQACJKB1VKDQB"
    );
    let resume_at = started.resume_at.clone().unwrap();
    assert_eq!(resume_at.0.as_second(), NOW + 15);
    let again = measure_with(&plain(), &m, TaskKind::Resume(started.clone()), &[]).await;
    assert_eq!(again.phase, AnalysisPhase::Running);
    let done = measure_with(&plain(), &m, TaskKind::Resume(again), &[]).await;
    assert_eq!(done.phase, AnalysisPhase::Inconclusive, "{done:?}");
    assert_eq!(done.value, "80.5");
    assert_eq!(done.metadata["classification"], "Marginal");
    assert!(done.metadata["explanation"].contains("marginal threshold 75"));
    assert!(done.finished_at.is_some());

    // The run stops while a judgement is still running: polled once, then Successful with
    // "Metric Terminated" (the run no longer needs the verdict).
    let pending = Server::start(|_| Reply::json(200, r#"{"complete":false}"#)).await;
    let mut unfinished = m.clone();
    unfinished.provider.kayenta.as_mut().unwrap().address = pending.url();
    let stopped = measure_with(&plain(), &unfinished, TaskKind::Terminate(started), &[]).await;
    assert_eq!(stopped.phase, AnalysisPhase::Successful, "{stopped:?}");
    assert_eq!(stopped.message, "Metric Terminated");
    assert!(stopped.finished_at.is_some() && stopped.resume_at.is_none());

    let missing = metric(json!({"name": "k", "provider": {"kayenta": {
        "address": server.url(), "application": "guestbook", "canaryConfigName": "nope",
        "configurationAccountName": "config-account", "threshold": {"pass": 90, "marginal": 75}}}}));
    assert_eq!(
        measure(&plain(), &missing).await.message,
        "canary config \"nope\" not found for application \"guestbook\""
    );
}
