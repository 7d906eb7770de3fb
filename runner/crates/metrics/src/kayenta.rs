//! Kayenta: an asynchronous canary judgement. Run looks the canary config up by name and
//! starts a judgement (`POST /canary/{configId}`); Resume polls it (`GET /canary/{executionId}`)
//! every 15 s until it is complete, then judges the score against `threshold`: at or above
//! `pass` Successful, at or above `marginal` Inconclusive, else Failed.
//!
//! Fixed on purpose (see `peers.md` §2.4): the config lookup sends `configurationAccountName`
//! (Argo sends the storage account), a config that is not found is an error (Argo starts a
//! judgement with an empty id), query parameters are URL-encoded, scopes send Kayenta's
//! `location` (Argo sends `region`, which Kayenta ignores), and the score is kept whole (Argo
//! truncates it to an integer; with integer thresholds the verdict is the same). The verdict's
//! classification is kept in the measurement's metadata.
//!
//! API reference: Kayenta's `CanaryController` (`/canary`, `/canaryConfig`), as described in
//! <https://github.com/spinnaker/kayenta/blob/master/docs/canary-config.md> and the Swagger UI
//! of a running Kayenta (`/swagger-ui.html`).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::SignedDuration;
use serde_json::json;

use rollout_runner_api::crd::{AnalysisPhase, KayentaMetric, Measurement};
use rollout_runner_core::engine::conditions::meta_time;

use super::common::{Clock, Failure, format_float};
use super::http;

/// Time between polls of a running judgement.
pub const RESUME_DELAY: SignedDuration = SignedDuration::from_secs(15);
/// Argo's HTTP timeout.
const TIMEOUT: Duration = Duration::from_secs(15);
/// The metadata key holding the judgement's id.
pub const EXECUTION_ID: &str = "canaryExecutionId";

fn endpoint(config: &KayentaMetric, path: &str) -> Result<url::Url, Failure> {
    let mut url = http::parse_url(&config.address, "kayenta address")?;
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}/{path}"));
    Ok(url)
}

async fn get_json(client: &reqwest::Client, url: url::Url) -> Result<serde_json::Value, Failure> {
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| http::request_error("GET", &url, e))?;
    json_body(response).await
}

async fn json_body(response: reqwest::Response) -> Result<serde_json::Value, Failure> {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.as_u16() != 200 {
        return Err(Failure::new(format!(
            "Invalid Response: {status}: {}",
            http::truncate(&body, 256)
        )));
    }
    serde_json::from_str(&body).map_err(|e| Failure::new(format!("invalid Kayenta response: {e}")))
}

/// Start a judgement: the measurement is Running with the execution id in its metadata.
pub(crate) async fn run(clock: &Clock, config: &KayentaMetric) -> Result<Measurement, Failure> {
    let client = http::client(TIMEOUT, false)?;
    let mut lookup = endpoint(config, "canaryConfig")?;
    lookup
        .query_pairs_mut()
        .append_pair("application", &config.application)
        .append_pair(
            "configurationAccountName",
            &config.configuration_account_name,
        );
    let configs = get_json(&client, lookup).await?;
    let id = configs
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| {
            c.get("name").and_then(|n| n.as_str()) == Some(config.canary_config_name.as_str())
        })
        .and_then(|c| c.get("id").and_then(|i| i.as_str()))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            Failure::new(format!(
                "canary config {:?} not found for application {:?}",
                config.canary_config_name, config.application
            ))
        })?
        .to_string();
    let mut start = endpoint(config, &format!("canary/{id}"))?;
    start
        .query_pairs_mut()
        .append_pair("application", &config.application)
        .append_pair("metricsAccountName", &config.metrics_account_name)
        .append_pair(
            "configurationAccountName",
            &config.configuration_account_name,
        )
        .append_pair("storageAccountName", &config.storage_account_name);
    let response = client
        .post(start.clone())
        .json(&execution_request(config))
        .send()
        .await
        .map_err(|e| http::request_error("POST", &start, e))?;
    let started = json_body(response).await?;
    let execution = match started.get(EXECUTION_ID) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(Failure::new("Invalid canaryExecutionId")),
    };
    Ok(Measurement {
        phase: AnalysisPhase::Running,
        started_at: Some(meta_time(clock.now)),
        metadata: BTreeMap::from([(EXECUTION_ID.to_string(), execution)]),
        resume_at: Some(meta_time(
            clock.now.checked_add(RESUME_DELAY).unwrap_or(clock.now),
        )),
        ..Default::default()
    })
}

/// The body of `POST /canary/{configId}`: scopes by name, and the thresholds.
pub(crate) fn execution_request(config: &KayentaMetric) -> serde_json::Value {
    let scope = |s: &rollout_runner_api::crd::ScopeDetail| {
        let mut scope = json!({"scope": s.scope, "step": s.step});
        if !s.region.is_empty() {
            scope["location"] = json!(s.region);
        }
        if !s.start.is_empty() {
            scope["start"] = json!(s.start);
        }
        if !s.end.is_empty() {
            scope["end"] = json!(s.end);
        }
        scope
    };
    let scopes: serde_json::Map<String, serde_json::Value> = config
        .scopes
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                json!({"controlScope": scope(&s.control_scope), "experimentScope": scope(&s.experiment_scope)}),
            )
        })
        .collect();
    json!({
        "scopes": scopes,
        "thresholds": {"pass": config.threshold.pass, "marginal": config.threshold.marginal},
    })
}

/// Poll a running judgement: Running again in 15 s while incomplete, else judged.
pub(crate) async fn resume(
    clock: &Clock,
    config: &KayentaMetric,
    previous: &Measurement,
    terminating: bool,
) -> Result<Measurement, Failure> {
    let mut measurement = previous.clone();
    let Some(execution) = previous
        .metadata
        .get(EXECUTION_ID)
        .filter(|e| !e.is_empty())
    else {
        return Err(Failure::new("Invalid canaryExecutionId"));
    };
    let client = http::client(TIMEOUT, false)?;
    let url = endpoint(config, &format!("canary/{execution}"))?;
    let status = get_json(&client, url).await?;
    let complete = status
        .get("complete")
        .and_then(|c| c.as_bool())
        .ok_or_else(|| Failure::new("Missing Complete Status"))?;
    if !complete {
        if terminating {
            // The run no longer needs the verdict (Argo leaves the measurement running).
            measurement.phase = AnalysisPhase::Successful;
            measurement.message = "Metric Terminated".into();
            measurement.resume_at = None;
            measurement.finished_at = Some(meta_time(clock.finished()));
            return Ok(measurement);
        }
        measurement.phase = AnalysisPhase::Running;
        measurement.resume_at = Some(meta_time(
            clock.now.checked_add(RESUME_DELAY).unwrap_or(clock.now),
        ));
        return Ok(measurement);
    }
    let score = status
        .pointer("/result/judgeResult/score/score")
        .and_then(|s| s.as_f64())
        .ok_or_else(|| Failure::new("Missing Score"))?;
    let (pass, marginal) = (
        config.threshold.pass as f64,
        config.threshold.marginal as f64,
    );
    let (phase, verdict) = if score >= pass {
        (
            AnalysisPhase::Successful,
            format!(
                "score {} >= pass threshold {}",
                format_float(score),
                config.threshold.pass
            ),
        )
    } else if score >= marginal {
        (
            AnalysisPhase::Inconclusive,
            format!(
                "score {} is below the pass threshold {} but at or above the marginal threshold {}",
                format_float(score),
                config.threshold.pass,
                config.threshold.marginal
            ),
        )
    } else {
        (
            AnalysisPhase::Failed,
            format!(
                "score {} is below the marginal threshold {}",
                format_float(score),
                config.threshold.marginal
            ),
        )
    };
    measurement.phase = phase;
    measurement.value = format_float(score);
    measurement.resume_at = None;
    measurement.finished_at = Some(meta_time(clock.finished()));
    measurement.metadata.insert("explanation".into(), verdict);
    if let Some(classification) = status
        .pointer("/result/judgeResult/score/classification")
        .and_then(|c| c.as_str())
    {
        measurement
            .metadata
            .insert("classification".into(), classification.to_string());
    }
    if let Some(reason) = status
        .pointer("/result/judgeResult/score/classificationReason")
        .and_then(|c| c.as_str())
        .filter(|r| !r.is_empty())
    {
        measurement
            .metadata
            .insert("classificationReason".into(), reason.to_string());
    }
    Ok(measurement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_runner_api::crd::{KayentaScope, KayentaThreshold, ScopeDetail};

    #[test]
    fn the_request_carries_scopes_and_thresholds() {
        let config = KayentaMetric {
            threshold: KayentaThreshold {
                pass: 90,
                marginal: 75,
            },
            scopes: vec![KayentaScope {
                name: "default".into(),
                control_scope: ScopeDetail {
                    scope: "app=guestbook and rollouts-pod-template-hash=a".into(),
                    region: "us-east-1".into(),
                    step: 60,
                    start: "2019-03-29T01:08:34Z".into(),
                    end: "2019-03-29T01:38:34Z".into(),
                },
                experiment_scope: ScopeDetail {
                    scope: "b".into(),
                    step: 60,
                    ..Default::default()
                },
            }],
            ..Default::default()
        };
        let body = execution_request(&config);
        assert_eq!(body["thresholds"]["pass"], 90);
        assert_eq!(
            body["scopes"]["default"]["controlScope"]["location"],
            "us-east-1"
        );
        assert_eq!(body["scopes"]["default"]["experimentScope"]["scope"], "b");
        assert!(
            body["scopes"]["default"]["experimentScope"]
                .get("start")
                .is_none()
        );
    }
}
