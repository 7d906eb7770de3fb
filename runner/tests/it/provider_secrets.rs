//! Secrets never leak: every provider, set up with credentials and secret arguments, driven
//! down its error paths by a hostile server that echoes whatever it was sent, leaves no secret in
//! any measurement (message, value, metadata, as JSON) nor in any log line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use rollout_runner::analysis::run::TaskKind;
use rollout_runner::crd::{AnalysisRun, Measurement, Metric};
use rollout_runner::metrics::settings::{
    DatadogSettings, InfluxdbSettings, MemorySecrets, NewRelicSettings, SecretString,
};
use rollout_runner::metrics::{MeasureContext, Metrics, ProviderSettings, Providers};
use serde_json::json;

use crate::contract_server::{Reply, Request, Server};

const SECRETS: &[&str] = &[
    "s3cr3t-header",
    "s3cr3t-password",
    "s3cr3t-client",
    "s3cr3t-url-pass",
    "s3cr3t-query-token",
    "s3cr3t-dd-api",
    "s3cr3t-dd-app",
    "s3cr3t-nr-key",
    "s3cr3t-influx",
    "s3cr3t-arg",
    "s3cr3t-ns-secret",
];

/// A server that echoes the request's headers and body in every answer.
fn echo(r: &Request, status: u16) -> Reply {
    let headers: Vec<String> = r
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
        .collect();
    let text = format!(
        "{} {}?{:?} {} {}",
        r.method,
        r.path,
        r.query,
        headers.join("; "),
        String::from_utf8_lossy(&r.body)
    );
    Reply::json(status, serde_json::to_string(&json!({"echo": text, "error": text, "errors": [{"message": text}], "message": text, "code": "x"})).unwrap())
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn metric(value: serde_json::Value) -> Metric {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn no_provider_shows_a_secret_in_measurements_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // 200 with an echo for `/ok...` paths (the value then holds the request), else 401/500.
    let server = Server::start(|r| {
        if r.path.starts_with("/ok") {
            echo(r, 200)
        } else if r.path.starts_with("/slow") {
            Reply {
                delay: std::time::Duration::from_secs(2),
                ..echo(r, 200)
            }
        } else if r.path.contains("canaryConfig") {
            Reply::json(200, "[]")
        } else if r.path.starts_with("/render") {
            Reply::text(500, format!("{:?}", r.headers))
        } else {
            echo(r, 401)
        }
    })
    .await;
    let base = server.url();
    let with_pass = base.replace("http://", "http://user:s3cr3t-url-pass@");
    let closed = "http://user:s3cr3t-url-pass@127.0.0.1:9";

    let secrets = MemorySecrets::default().with(
        "team",
        "dd",
        &[
            ("api-key", "s3cr3t-ns-secret"),
            ("app-key", "s3cr3t-ns-secret"),
            ("address", &base),
        ],
    );
    let settings = ProviderSettings {
        datadog: Some(DatadogSettings {
            api_key: SecretString::new("s3cr3t-dd-api"),
            app_key: SecretString::new("s3cr3t-dd-app"),
            address: base.clone(),
        }),
        newrelic: Some(NewRelicSettings {
            personal_api_key: SecretString::new("s3cr3t-nr-key"),
            account_id: "1".into(),
            region: String::new(),
            nerdgraph_url: format!("{base}/graphql"),
        }),
        influxdb: Some(InfluxdbSettings {
            token: SecretString::new("s3cr3t-influx"),
            org: "org".into(),
            address: base.clone(),
        }),
        ..Default::default()
    }
    .with_secrets(Arc::new(secrets));
    let providers = Providers::new(settings);
    let header = json!([{"key": "Authorization", "value": "Bearer s3cr3t-header"},
                        {"key": "X-Api-Key", "value": "s3cr3t-header"}]);
    let basic = json!({"basicAuth": {"username": "u", "password": "s3cr3t-password"}});
    let oauth = json!({"oauth2": {"tokenUrl": format!("{base}/token"), "clientId": "c",
                                  "clientSecret": "s3cr3t-client"}});
    let prometheus = |address: &str, extra: serde_json::Value| {
        let mut p =
            json!({"address": address, "query": "up{token=\"s3cr3t-arg\"}", "headers": header});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        metric(
            json!({"name": "p", "successCondition": "result[0] > 0", "provider": {"prometheus": p}}),
        )
    };
    let web = |url: &str, extra: serde_json::Value| {
        let mut w = json!({"url": url, "headers": header});
        w.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        metric(json!({"name": "w", "successCondition": "true", "provider": {"web": w}}))
    };
    let metrics = vec![
        // Prometheus: refused, rejected, echoed, timed out, bad token, bad URL.
        prometheus(closed, json!({"authentication": basic})),
        prometheus(&with_pass, json!({"authentication": basic})),
        prometheus(&format!("{with_pass}/ok"), json!({})),
        prometheus(&format!("{with_pass}/slow"), json!({"timeout": 1})),
        prometheus(&base, json!({"authentication": oauth})),
        prometheus("http://user:s3cr3t-url-pass@[::1", json!({})),
        // Web: refused, non-2xx, echoed body as the value, jsonPath miss, bad header, bad token.
        web(&format!("{closed}/x?api_key=s3cr3t-query-token"), json!({})),
        web(
            &format!("{with_pass}/no?token=s3cr3t-query-token"),
            json!({"authentication": basic}),
        ),
        web(
            &format!("{with_pass}/ok?token=s3cr3t-query-token"),
            json!({"method": "POST", "body": "s3cr3t-arg"}),
        ),
        web(&format!("{base}/ok"), json!({"jsonPath": "{$.missing}"})),
        web(
            &format!("{base}/ok"),
            json!({"headers": [{"key": "Authorization", "value": "s3cr3t-header\n"}]}),
        ),
        web(&format!("{base}/ok"), json!({"authentication": oauth})),
        web(&format!("{with_pass}/slow"), json!({"timeoutSeconds": 1})),
        // Datadog v1 and v2 rejected (the body echoes the keys), a namespaced secret, refused.
        metric(json!({"name": "d", "provider": {"datadog": {"query": "q{s3cr3t-arg}"}}})),
        metric(json!({"name": "d", "provider": {"datadog": {"apiVersion": "v2", "query": "q"}}})),
        metric(
            json!({"name": "d", "provider": {"datadog": {"query": "q", "secretRef": {"name": "dd", "namespaced": true}}}}),
        ),
        // New Relic: errors echo the request.
        metric(json!({"name": "n", "provider": {"newRelic": {"query": "SELECT s3cr3t-arg"}}})),
        // Graphite: the error body echoes headers.
        metric(
            json!({"name": "g", "provider": {"graphite": {"address": with_pass, "query": "target=a"}}}),
        ),
        metric(
            json!({"name": "g", "provider": {"graphite": {"address": closed, "query": "target=a"}}}),
        ),
        // InfluxDB: rejected with an echo.
        metric(
            json!({"name": "i", "provider": {"influxdb": {"query": "from(bucket: \"s3cr3t-arg\")"}}}),
        ),
        // Kayenta: refused, and a config that is not found.
        metric(
            json!({"name": "k", "provider": {"kayenta": {"address": closed, "application": "a",
            "canaryConfigName": "c", "threshold": {"pass": 1, "marginal": 0}}}}),
        ),
        metric(
            json!({"name": "k", "provider": {"kayenta": {"address": with_pass, "application": "a",
            "canaryConfigName": "c", "threshold": {"pass": 1, "marginal": 0}}}}),
        ),
    ];
    let mut run = AnalysisRun::new("run", Default::default());
    run.metadata.namespace = Some("team".into());
    let arg_secrets = vec!["s3cr3t-arg".to_string()];
    let mut measurements: Vec<Measurement> = Vec::new();
    for m in &metrics {
        let context = MeasureContext {
            run: &run,
            now: Timestamp::now(),
            secrets: &arg_secrets,
        };
        measurements.push(providers.measure(context, m, &TaskKind::Run).await);
    }
    // Kayenta resumes an execution whose poll is rejected with an echo.
    let running = Measurement {
        phase: rollout_runner::crd::AnalysisPhase::Running,
        metadata: [("canaryExecutionId".to_string(), "s3cr3t-arg".to_string())].into(),
        ..Default::default()
    };
    let context = MeasureContext {
        run: &run,
        now: Timestamp::now(),
        secrets: &arg_secrets,
    };
    measurements.push(
        providers
            .measure(
                context,
                &metrics[metrics.len() - 1],
                &TaskKind::Resume(running),
            )
            .await,
    );

    let errors = measurements
        .iter()
        .filter(|m| m.phase == rollout_runner::crd::AnalysisPhase::Error)
        .count();
    assert!(
        errors >= metrics.len() - 2,
        "most cases must take an error path: {measurements:#?}"
    );
    let json = serde_json::to_string_pretty(&measurements).unwrap();
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    for secret in SECRETS {
        assert!(
            !json.contains(secret),
            "`{secret}` leaked into a measurement:\n{json}"
        );
        assert!(
            !logs.contains(secret),
            "`{secret}` leaked into the logs:\n{logs}"
        );
    }
    // The server really was sent the credentials (so the echo could have leaked them).
    let sent: String = server
        .requests()
        .iter()
        .map(|r| format!("{:?}", r.headers))
        .collect();
    assert!(sent.contains("s3cr3t-dd-api") && sent.contains("s3cr3t-influx"));
    assert!(json.contains("*****"), "redaction marks where a secret was");
}
