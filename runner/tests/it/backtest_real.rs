//! `analysis backtest` against the real Prometheus of [`crate::prometheus_real`]: a success
//! rate with a known five-minute incident is caught over the hour that holds it, and passes
//! over the half hour after it.

use assert_cmd::cargo::cargo_bin_cmd;
use jiff::Timestamp;

use crate::prometheus_real::prometheus_or_skip;

const TEMPLATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service
  metrics:
  - name: success-rate
    interval: 1m
    failureLimit: 1
    successCondition: result[0] >= 0.95
    provider:
      prometheus:
        query: rr_backtest_success{service="{{args.service}}"}
"#;

fn backtest(url: &str, template: &std::path::Path, from: i64, to: i64) -> serde_json::Value {
    let time = |s: i64| Timestamp::from_second(s).unwrap().to_string();
    let out = cargo_bin_cmd!("rollout-runner")
        .args(["analysis", "backtest"])
        .arg(template)
        .args([
            "--args",
            "service=web",
            "--from",
            &time(from),
            "--to",
            &time(to),
        ])
        .args([
            "--step",
            "1m",
            "--prometheus-address",
            url,
            "--output",
            "json",
        ])
        .env_remove("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn backtest_catches_a_known_incident_and_passes_a_good_window() {
    let Some(p) = prometheus_or_skip("backtest_catches_a_known_incident") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.yaml");
    std::fs::write(&template, TEMPLATE).unwrap();
    let start = p.now - 3600;

    let report = backtest(&p.url, &template, start, p.now);
    let intervals = report["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 61);
    let failed: Vec<usize> = intervals
        .iter()
        .enumerate()
        .filter(|(_, i)| i["verdict"] == "Failed")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(failed, vec![40, 41, 42, 43, 44]);
    let incident = &intervals[40]["measurements"]["success-rate"];
    assert_eq!(incident["value"], "[0.8]");
    assert!(
        incident["why"]
            .as_str()
            .unwrap()
            .contains("did not satisfy"),
        "{incident}"
    );
    assert_eq!(report["metrics"]["success-rate"]["failed"], 5);
    assert_eq!(report["metrics"]["success-rate"]["phase"], "Failed");
    assert_eq!(report["verdict"], "Failed");

    // The half hour after the incident would have passed.
    let report = backtest(&p.url, &template, start + 45 * 60, p.now);
    assert_eq!(report["intervals"].as_array().unwrap().len(), 16);
    assert_eq!(report["verdict"], "Successful");
    assert_eq!(report["metrics"]["success-rate"]["successful"], 16);
}
