//! The `judge` provider: fetch each judged metric's canary and baseline series with the
//! ordinary query providers, hand them to the pure [`rollout_runner_judge`], and turn its judgement
//! into a measurement that explains itself.
//!
//! Pass is Successful, Marginal and "too little data to conclude" are Inconclusive (the rollout
//! pauses), Fail is Failed. `value` is the score; `metadata` holds the verdict's reason and one
//! `judge.<metric>` line per metric (classification, interval, effect size). The metric's
//! success and failure conditions are not used: the judge's thresholds decide.

use rollout_runner_api::crd::{AnalysisPhase, JudgeMetric, JudgeQuery, Measurement, Metric};
use rollout_runner_core::engine::conditions::meta_time;
use rollout_runner_judge::{self as judge, Verdict};

use super::common::{Clock, Failure};
use super::providers::Providers;

pub(crate) async fn measure(
    providers: &Providers,
    clock: &Clock,
    config: &JudgeMetric,
    namespace: &str,
    credentials: &mut Vec<String>,
) -> Result<Measurement, Failure> {
    if config.metrics.is_empty() {
        return Err(Failure::new("judge: no metrics to judge"));
    }
    let mut series = Vec::with_capacity(config.metrics.len());
    for spec in &config.metrics {
        let canary = fetch(providers, clock, &spec.canary, namespace, credentials)
            .await
            .map_err(|e| Failure::new(format!("judge metric `{}`: canary: {e}", spec.name)))?;
        let baseline = fetch(providers, clock, &spec.baseline, namespace, credentials)
            .await
            .map_err(|e| Failure::new(format!("judge metric `{}`: baseline: {e}", spec.name)))?;
        series.push((canary, baseline));
    }
    let judgement = judge::judge(config, &series);
    Ok(measurement(clock, &judgement))
}

/// The measurement for a judgement.
pub(crate) fn measurement(clock: &Clock, judgement: &judge::Judgement) -> Measurement {
    let phase = match judgement.verdict {
        Verdict::Pass => AnalysisPhase::Successful,
        Verdict::Marginal | Verdict::Inconclusive => AnalysisPhase::Inconclusive,
        Verdict::Fail => AnalysisPhase::Failed,
    };
    let mut metadata = judge::explain(judgement);
    metadata.insert(
        "explanation".into(),
        format!(
            "judge: {} ({})",
            judgement.verdict.as_str(),
            judgement.reason
        ),
    );
    let groups: Vec<String> = judgement
        .groups
        .iter()
        .map(|g| {
            let score = g.score.map_or("no data".to_string(), |s| format!("{s:.2}"));
            format!("{} {score} (weight {})", g.name, g.weight)
        })
        .collect();
    metadata.insert("judge.groups".into(), groups.join("; "));
    Measurement {
        phase,
        message: if phase == AnalysisPhase::Successful {
            String::new()
        } else {
            format!("judge: {}", judgement.reason)
        },
        started_at: Some(meta_time(clock.now)),
        finished_at: Some(meta_time(clock.finished())),
        value: super::common::format_float(judgement.score),
        metadata,
        resume_at: None,
    }
}

/// One side's values: a Prometheus query's samples (every series, NaN kept), or the numbers in
/// another provider's `value` (a number or a list of numbers).
async fn fetch(
    providers: &Providers,
    clock: &Clock,
    query: &JudgeQuery,
    namespace: &str,
    credentials: &mut Vec<String>,
) -> Result<Vec<f64>, Failure> {
    let provider = query.provider();
    match provider.kinds().as_slice() {
        [] => return Err(Failure::new("no query provider specified")),
        [_] => {}
        _ => return Err(Failure::new("multiple query providers specified")),
    }
    if let Some(config) = &query.prometheus {
        let found = super::prometheus::query(
            config,
            providers.settings().prometheus_address.as_deref(),
            clock.now,
        )
        .await?;
        return Ok(found.samples());
    }
    let metric = Metric {
        name: "judge-query".into(),
        provider,
        ..Default::default()
    };
    let measured = providers
        .run_boxed(clock, &metric, namespace, credentials)
        .await?;
    numbers(&measured.value)
}

/// The numbers in a provider's `value`: `1.5`, `[1,2]`, `[{"x": 1}]` is refused.
fn numbers(value: &str) -> Result<Vec<f64>, Failure> {
    let parsed: serde_json::Value = serde_json::from_str(value)
        .map_err(|_| Failure::new(format!("the query returned {value}, not numbers")))?;
    let as_number = |v: &serde_json::Value| -> Result<f64, Failure> {
        match v {
            serde_json::Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::Null => Ok(f64::NAN),
            other => Err(Failure::new(format!(
                "the query returned {other}, not a number"
            ))),
        }
    };
    match &parsed {
        serde_json::Value::Array(items) => items.iter().map(as_number).collect(),
        other => Ok(vec![as_number(other)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_numbers() {
        assert_eq!(numbers("[1,2.5,null]").unwrap()[..2], [1.0, 2.5]);
        assert_eq!(numbers("3").unwrap(), vec![3.0]);
        assert!(numbers("\"up\"").is_err());
        assert!(numbers("{\"a\": 1}").is_err());
    }
}
