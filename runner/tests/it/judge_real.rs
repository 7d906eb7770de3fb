//! The `judge` provider against the real Prometheus of [`crate::prometheus_real`]: canary and
//! baseline come from range queries over known series, and the measurement explains its
//! verdict metric by metric.

use rollout_runner::crd::{AnalysisPhase, Metric};
use serde_json::json;

use crate::prometheus_real::{measure, prometheus_or_skip};

fn range(track: &str) -> serde_json::Value {
    json!({"prometheus": {
        "query": format!("rr_judge_latency_ms{{track=\"{track}\"}}"),
        "rangeQuery": {"start": "now() - duration(\"1h\")", "end": "now()", "step": "1m"},
    }})
}

fn judge_metric(canary: &str, extra: serde_json::Value) -> Metric {
    let mut latency = json!({
        "name": "latency",
        "groups": ["latency"],
        "direction": "increase",
        "canary": range(canary),
        "baseline": range("baseline"),
    });
    if let (Some(target), Some(extra)) = (latency.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "name": "judge",
        "provider": {"judge": {
            "thresholds": {"pass": 95, "marginal": 75},
            "metrics": [latency],
        }},
    }))
    .unwrap()
}

#[tokio::test]
async fn judge_on_real_prometheus_passes_fails_and_says_too_little_data() {
    let Some(p) = prometheus_or_skip("judge_on_real_prometheus") else {
        return;
    };
    // Same spread of values as the baseline: Pass, score 100.
    let m = measure(&p, &judge_metric("good", json!({}))).await;
    assert_eq!(
        (m.phase, m.value.as_str()),
        (AnalysisPhase::Successful, "100"),
        "{m:#?}"
    );
    assert!(
        m.metadata["judge.latency"].starts_with("Pass: canary median"),
        "{m:#?}"
    );
    assert_eq!(
        m.metadata["explanation"],
        "judge: Pass (score 100 >= pass 95)"
    );

    // 50 % slower: High, score 0, Failed, and the reason gives the interval.
    let m = measure(&p, &judge_metric("bad", json!({}))).await;
    assert_eq!(
        (m.phase, m.value.as_str()),
        (AnalysisPhase::Failed, "0"),
        "{m:#?}"
    );
    let line = &m.metadata["judge.latency"];
    assert!(
        line.starts_with(
            "High: canary median 155 vs baseline 105: 98% interval of canary - baseline ["
        ),
        "{line}"
    );
    assert!(line.contains("lies above"), "{line}");
    assert_eq!(m.message, "judge: score 0 < marginal 75");

    // A critical metric: the whole judgement fails on it.
    let m = measure(&p, &judge_metric("bad", json!({"critical": true}))).await;
    assert_eq!(m.message, "judge: critical metric failed: latency (High)");

    // No canary series at all: too little data to conclude, so Inconclusive (pause), never Pass.
    let m = measure(&p, &judge_metric("absent", json!({}))).await;
    assert_eq!(m.phase, AnalysisPhase::Inconclusive, "{m:#?}");
    assert!(
        m.metadata["judge.latency"]
            .starts_with("NoData: too little data to conclude: 0 canary and 61 baseline points"),
        "{m:#?}"
    );

    // A query that fails is an Error naming the metric and the side.
    let mut broken = judge_metric("good", json!({}));
    if let Some(judge) = broken.provider.judge.as_mut() {
        judge.metrics[0].baseline.prometheus.as_mut().unwrap().query =
            "rr_judge_latency_ms{".into();
    }
    let m = measure(&p, &broken).await;
    assert_eq!(m.phase, AnalysisPhase::Error, "{m:#?}");
    assert!(
        m.message.starts_with("judge metric `latency`: baseline: "),
        "{}",
        m.message
    );
}
