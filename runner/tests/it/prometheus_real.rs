//! The Prometheus provider (and `lint --check-queries`) against a real Prometheus serving known
//! series: a TSDB built with `promtool tsdb create-blocks-from openmetrics`, so values, NaN and
//! +Inf are exact.
//!
//! The test starts its own `prometheus` on a free loopback port when `prometheus` and `promtool`
//! are on PATH (Debian's `prometheus` package). Without them it skips with a message, unless
//! `ROLLOUT_RUNNER_E2E_REQUIRED=1`, when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rollout_runner::analysis::run::TaskKind;
use rollout_runner::crd::{AnalysisPhase, AnalysisRun, Measurement, Metric};
use rollout_runner::metrics::{MeasureContext, Metrics, ProviderSettings, Providers};
use serde_json::json;

/// A Prometheus process over a temporary TSDB; killed (by its pid) when dropped.
pub(crate) struct RealPrometheus {
    child: Child,
    pub(crate) url: String,
    /// The time of the newest samples (unix seconds).
    pub(crate) now: i64,
    _dir: tempfile::TempDir,
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// The series every test reads: 11 samples a minute apart, the last at `now`.
fn openmetrics(now: i64) -> String {
    let mut out = String::new();
    let series: [(&str, &str, &str); 6] = [
        ("rr_success_rate", "service=\"web\"", "0.99"),
        ("rr_success_rate", "service=\"api\"", "0.91"),
        ("rr_latency_ms", "service=\"web\"", "1250"),
        ("rr_nan", "service=\"web\"", "NaN"),
        ("rr_inf", "service=\"web\"", "+Inf"),
        ("rr_errors", "service=\"web\"", "3"),
    ];
    let mut last = "";
    for (name, labels, value) in series {
        if name != last {
            out.push_str(&format!("# TYPE {name} gauge\n"));
            last = name;
        }
        for i in 0..11 {
            let t = now - 600 + 60 * i;
            out.push_str(&format!("{name}{{{labels}}} {value} {t}\n"));
        }
    }
    out.push_str(&judge_series(now));
    out.push_str("# EOF\n");
    out
}

/// Latency of a baseline and two canaries, one point a minute for an hour before `now`: the
/// good canary has the baseline's spread of values, the bad one is 50 % slower (the judge's
/// tests). And a success rate with an incident (the backtest's).
fn judge_series(now: i64) -> String {
    let mut out = String::from("# TYPE rr_judge_latency_ms gauge\n");
    for (track, base, stride) in [("baseline", 100, 37), ("good", 100, 53), ("bad", 150, 29)] {
        for i in 0..61 {
            let t = now - 3600 + 60 * i;
            let value = base + (i * stride) % 11;
            out.push_str(&format!(
                "rr_judge_latency_ms{{track=\"{track}\"}} {value} {t}\n"
            ));
        }
    }
    // A success rate with a known incident: 0.80 for the five minutes 40..=44 of the hour.
    out.push_str("# TYPE rr_backtest_success gauge\n");
    for i in 0..61 {
        let t = now - 3600 + 60 * i;
        let value = if (40..45).contains(&i) {
            "0.80"
        } else {
            "0.99"
        };
        out.push_str(&format!(
            "rr_backtest_success{{service=\"web\"}} {value} {t}\n"
        ));
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Start Prometheus, or explain why not (`Err`).
pub(crate) fn start() -> Result<RealPrometheus, String> {
    let (Some(prometheus), Some(promtool)) = (on_path("prometheus"), on_path("promtool")) else {
        return Err(
            "`prometheus` and `promtool` are not on PATH (apt-get install prometheus)".into(),
        );
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let now = Timestamp::now().as_second();
    let data = dir.path().join("series.om");
    std::fs::write(&data, openmetrics(now)).map_err(|e| e.to_string())?;
    let tsdb = dir.path().join("tsdb");
    let status = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&data)
        .arg(&tsdb)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("promtool: {e}"))?;
    if !status.success() {
        return Err(format!("promtool failed: {status}"));
    }
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").map_err(|e| e.to_string())?;
    let port = free_port();
    let log =
        std::fs::File::create(dir.path().join("prometheus.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("prometheus: {e}"))?;
    let server = RealPrometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        now,
        _dir: dir,
    };
    wait_ready(&server, &server._dir.path().join("prometheus.log"))?;
    Ok(server)
}

fn wait_ready(server: &RealPrometheus, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(8);
    let addr = server.url.trim_start_matches("http://").to_string();
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            let _ = stream
                .write_all(format!("GET /-/ready HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes());
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "prometheus did not become ready: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    ))
}

/// Prometheus for a test, or `None` (skip) when it cannot run here.
pub(crate) fn prometheus_or_skip(test: &str) -> Option<RealPrometheus> {
    match start() {
        Ok(p) => Some(p),
        Err(why) => {
            let required = std::env::var("ROLLOUT_RUNNER_E2E_REQUIRED").is_ok_and(|v| v == "1");
            assert!(!required, "{test}: a real Prometheus is required: {why}");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipping {test}: {why}");
            }
            None
        }
    }
}

fn metric(query: &str, success: &str) -> Metric {
    serde_json::from_value(json!({
        "name": "m",
        "successCondition": success,
        "provider": {"prometheus": {"query": query}},
    }))
    .unwrap()
}

pub(crate) async fn measure(p: &RealPrometheus, metric: &Metric) -> Measurement {
    let providers = Providers::new(ProviderSettings {
        prometheus_address: Some(p.url.clone()),
        ..Default::default()
    });
    let run = AnalysisRun::new("run", Default::default());
    let context = MeasureContext {
        run: &run,
        now: Timestamp::from_second(p.now).unwrap(),
        secrets: &[],
    };
    providers.measure(context, metric, &TaskKind::Run).await
}

#[tokio::test]
async fn real_prometheus_instant_range_nan_inf_and_empty() {
    let Some(p) = prometheus_or_skip("real_prometheus_instant_range_nan_inf_and_empty") else {
        return;
    };
    // A vector of one series.
    let m = measure(
        &p,
        &metric("rr_success_rate{service=\"web\"}", "result[0] >= 0.95"),
    )
    .await;
    assert_eq!(
        (m.phase, m.value.as_str()),
        (AnalysisPhase::Successful, "[0.99]"),
        "{m:?}"
    );
    assert!(m.metadata["explanation"].contains("result[0] >= 0.95"));
    // Two series, in Prometheus' order (sorted by labels).
    let m = measure(&p, &metric("rr_success_rate", "all(result, # >= 0.95)")).await;
    assert_eq!(
        (m.phase, m.value.as_str()),
        (AnalysisPhase::Failed, "[0.91,0.99]"),
        "{m:?}"
    );
    // A scalar is a float.
    let m = measure(
        &p,
        &metric("scalar(rr_success_rate{service=\"web\"})", "result == 0.99"),
    )
    .await;
    assert_eq!(
        (m.phase, m.value.as_str()),
        (AnalysisPhase::Successful, "0.99"),
        "{m:?}"
    );
    // NaN and +Inf are kept.
    let m = measure(&p, &metric("rr_nan", "isNaN(result[0])")).await;
    assert_eq!(
        (m.phase, m.value.as_str()),
        (AnalysisPhase::Successful, "[NaN]"),
        "{m:?}"
    );
    let m = measure(&p, &metric("rr_inf", "isInf(result[0])")).await;
    assert_eq!(
        (m.phase, m.value.as_str()),
        (AnalysisPhase::Successful, "[+Inf]"),
        "{m:?}"
    );
    // No series: `[]`, and indexing it is an Error with Argo's message.
    let m = measure(&p, &metric("rr_missing", "result[0] >= 0.95")).await;
    assert_eq!(
        (m.phase, m.value.as_str()),
        (AnalysisPhase::Error, "[]"),
        "{m:?}"
    );
    assert!(
        m.message.contains("metric result is nil or empty"),
        "{}",
        m.message
    );
    // A range query is flattened: 6 samples over the last 5 minutes at 1m steps.
    let range: Metric = serde_json::from_value(json!({
        "name": "m", "successCondition": "len(result) == 6 && all(result, # == 3)",
        "provider": {"prometheus": {"query": "rr_errors", "rangeQuery": {
            "start": "now() - duration(\"5m\")", "end": "now()", "step": "1m"}}},
    }))
    .unwrap();
    let m = measure(&p, &range).await;
    assert_eq!(
        (m.phase, m.value.as_str()),
        (AnalysisPhase::Successful, "[3,3,3,3,3,3]"),
        "{m:?}"
    );
    // A syntax error is Prometheus' own message.
    let m = measure(&p, &metric("sum(", "true")).await;
    assert_eq!(m.phase, AnalysisPhase::Error);
    assert!(m.message.starts_with("bad_data: "), "{}", m.message);
}

const TEMPLATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: checks
spec:
  args:
    - name: service
    - name: pod
  metrics:
    - name: rate
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          query: rr_success_rate{service="{{args.service}}"}
    - name: all-services
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          query: rr_success_rate
    - name: latency
      successCondition: result[0] < 0.5
      provider:
        prometheus:
          query: rr_latency_ms{service="web"}
    - name: missing
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          query: rr_missing
    - name: needs-arg
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          query: rr_success_rate{pod="{{args.pod}}"}
"#;

#[test]
fn lint_check_queries_warns_about_what_the_conditions_cannot_expect() {
    let Some(p) =
        prometheus_or_skip("lint_check_queries_warns_about_what_the_conditions_cannot_expect")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("template.yaml"), TEMPLATE).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .current_dir(dir.path())
        .args([
            "lint",
            "template.yaml",
            "--check-queries",
            "--prometheus-address",
        ])
        .arg(&p.url)
        .args(["--query-arg", "service=web"])
        .env("NO_COLOR", "1")
        .env_remove("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).replace(&p.url, "PROMETHEUS");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let expected = r#"template.yaml:19:11: warning: query of metric `all-services` returned 2 series ({service="api"}, {service="web"}) but the condition reads only `result[0]`
  --> AnalysisTemplate/checks: spec.metrics[1].provider.prometheus.query
  hint: the order of series is not guaranteed: aggregate the query to one series (`sum(...)`, `max(...)`), or judge every series with `all(result, ...)`
template.yaml:24:11: warning: values of metric `latency` (up to 1250) are about 2500 times larger than every number the condition compares with (up to 0.5)
  --> AnalysisTemplate/checks: spec.metrics[2].provider.prometheus.query
  hint: the condition may always or never match: check the units (a ratio against a percentage, seconds against milliseconds)
template.yaml:29:11: warning: query of metric `missing` returned no series
  --> AnalysisTemplate/checks: spec.metrics[3].provider.prometheus.query
  hint: with no data `result` is `[]`: a condition that reads `result[0]` is an Error, and `all(result, ...)` is true; check the labels, or handle no data explicitly
template.yaml:34:11: warning: query of metric `needs-arg` not checked: argument `pod` has no value
  --> AnalysisTemplate/checks: spec.metrics[4].provider.prometheus.query
  hint: give the argument a value with `--query-arg NAME=VALUE`
0 errors, 4 warnings in 1 file
"#;
    assert_eq!(stdout, expected);
}
