//! Replaying a release record (`simulate --replay RECORD`): the recorded metric values drive
//! the providers ([`Recorded`]) and the recorded pod readiness drives the in-memory cluster,
//! under the Rollout and AnalysisTemplates given now; then the replay's decision is compared
//! with the recorded one.
//!
//! Pod readiness is replayed as the time the new version's pods took to become available
//! after each scale-up (the median over the record), or as never ready when they never did:
//! the record holds the rollout's replica counts over time, not each pod's history.

use std::collections::BTreeMap;

use crate::metrics::recorded::{Recorded, RecordedPoint};
use crate::report::record::{Decision, ReleaseRecord};
use crate::simulation::{Fault, Scenario};

/// How the new version's pods behaved in the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Readiness {
    /// Available this many seconds after a scale-up.
    After(f64),
    /// Scaled up and never all available before the release ended.
    Never,
}

/// Each metric's recorded measurements, in order.
pub fn recorded_series(record: &ReleaseRecord) -> BTreeMap<String, Vec<RecordedPoint>> {
    let mut series: BTreeMap<String, Vec<RecordedPoint>> = BTreeMap::new();
    for m in &record.measurements {
        let phase =
            serde_json::from_value(serde_json::Value::String(m.phase.clone())).unwrap_or_default();
        series
            .entry(m.metric.clone())
            .or_default()
            .push(RecordedPoint {
                elapsed_seconds: m.elapsed_seconds,
                value: m.value.clone(),
                phase,
                message: m.message.clone(),
                provider: m.provider.clone(),
            });
    }
    series
}

/// The provider of a replay whose release started at `start`.
pub fn recorded_metrics(record: &ReleaseRecord, start: jiff::Timestamp) -> Recorded {
    Recorded::new(start, recorded_series(record))
}

/// How long the new version's pods took to become available: for each scale-up of the new
/// ReplicaSet, the time until the rollout had every pod available with at least that many
/// new ones.
pub fn new_version_readiness(record: &ReleaseRecord) -> Option<Readiness> {
    let new_hash = record
        .statuses
        .iter()
        .map(|s| s.current_pod_hash.as_str())
        .find(|h| !h.is_empty())?;
    let mut delays = Vec::new();
    let mut unready = false;
    for action in &record.actions {
        let Some(scale) = action.action.get("scaleReplicaSet") else {
            continue;
        };
        let name = scale.get("name").and_then(|n| n.as_str()).unwrap_or("");
        let from = scale.get("from").and_then(|n| n.as_i64()).unwrap_or(0);
        let to = scale.get("to").and_then(|n| n.as_i64()).unwrap_or(0);
        if !name.ends_with(new_hash) || to <= from {
            continue;
        }
        let ready = record.pods.iter().find(|p| {
            p.elapsed_seconds >= action.elapsed_seconds
                && i64::from(p.updated_replicas) >= to
                && p.available_replicas >= p.replicas
        });
        match ready {
            Some(p) => delays.push(p.elapsed_seconds - action.elapsed_seconds),
            None => unready = true,
        }
    }
    if delays.is_empty() {
        return unready.then_some(Readiness::Never);
    }
    delays.sort_by(f64::total_cmp);
    Some(Readiness::After(delays[delays.len() / 2]))
}

/// The scenario of a replay: `base` (secrets, timeout, the stable version's image) with the
/// record's pod readiness. Metrics come from the record, not from the scenario.
pub fn replay_scenario(record: &ReleaseRecord, base: &Scenario, image: Option<&str>) -> Scenario {
    let mut scenario = base.clone();
    scenario.metrics = BTreeMap::new();
    scenario.interventions = Vec::new();
    // The stable version runs another image than the released one, as in the recorded release.
    if scenario.previous_image.is_none()
        && let Some(image) = image
    {
        scenario.previous_image = Some(format!("{image}-previous"));
    }
    match new_version_readiness(record) {
        Some(Readiness::After(seconds)) => {
            let millis = (seconds * 1000.0).round().max(0.0) as i64;
            scenario.pods.ready_delay = Some(format!("{millis}ms"));
        }
        Some(Readiness::Never) => {
            if let Some(image) = image {
                scenario.pods.faults.push(Fault {
                    image: image.to_string(),
                    never_ready: true,
                    ..Default::default()
                });
            }
        }
        None => {}
    }
    scenario
}

/// Where the replay decided, next to the record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub recorded: Option<Decision>,
    pub replayed: Option<Decision>,
    /// Same verdict at the same step.
    pub same: bool,
    /// Replayed minus recorded decision time, in seconds.
    pub shift_seconds: Option<f64>,
    pub text: String,
}

/// `3 minutes`, `1 minute 10 seconds`, `5 seconds`.
pub fn span_words(seconds: f64) -> String {
    let total = seconds.abs().round() as i64;
    let (minutes, seconds) = (total / 60, total % 60);
    let unit = |n: i64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (minutes, seconds) {
        (0, s) => unit(s, "second"),
        (m, 0) => unit(m, "minute"),
        (m, s) => format!("{} {}", unit(m, "minute"), unit(s, "second")),
    }
}

/// What changed between the recorded manifests and the replayed ones, for the wording.
pub fn changed_kinds(recorded: &ReleaseRecord, replayed: &ReleaseRecord) -> Vec<String> {
    let key = |m: &crate::report::record::ManifestHash| (m.kind.clone(), m.name.clone());
    let mut kinds: Vec<String> = Vec::new();
    for now in &replayed.manifests {
        let before = recorded.manifests.iter().find(|m| key(m) == key(now));
        if before.is_none_or(|b| b.sha256 != now.sha256) && !kinds.contains(&now.kind) {
            kinds.push(now.kind.clone());
        }
    }
    kinds
}

/// Compare the replay's decision with the record's.
pub fn compare(recorded: &ReleaseRecord, replayed: &ReleaseRecord) -> Comparison {
    let kinds = changed_kinds(recorded, replayed);
    let subject = match kinds.as_slice() {
        [] => "the same manifests".to_string(),
        [one] if one == "AnalysisTemplate" || one == "ClusterAnalysisTemplate" => {
            "the new template".to_string()
        }
        [one] => format!("the changed {one}"),
        many => format!("the changed {}", many.join(", ")),
    };
    let before = recorded.decision.clone();
    let after = replayed.decision.clone();
    let shift = before
        .as_ref()
        .zip(after.as_ref())
        .map(|(b, a)| a.elapsed_seconds - b.elapsed_seconds);
    let same = match (&before, &after) {
        (Some(b), Some(a)) => b.verdict == a.verdict && b.step == a.step,
        (None, None) => true,
        _ => false,
    };
    let text = match (&before, &after) {
        (Some(b), Some(a)) if same => {
            let drift = shift.filter(|s| s.abs() >= 1.0).map_or(String::new(), |s| {
                format!(
                    " ({} {})",
                    span_words(s),
                    if s < 0.0 { "earlier" } else { "later" }
                )
            });
            format!(
                "{subject} replay to the recorded decision: {}{drift}",
                a.describe()
            )
        }
        (Some(b), Some(a)) => {
            let when = shift.map_or(String::new(), |s| {
                if s.abs() < 1.0 {
                    String::new()
                } else {
                    format!(
                        ", {} {}",
                        span_words(s),
                        if s < 0.0 { "earlier" } else { "later" }
                    )
                }
            });
            format!(
                "{subject} would have {}{when} (recorded: {})",
                a.describe(),
                b.describe()
            )
        }
        (Some(b), None) => format!(
            "{subject} would have reached no decision ({}) where the recorded release {}",
            replayed.outcome_text.clone().unwrap_or_default(),
            b.describe()
        ),
        (None, Some(a)) => format!(
            "{subject} would have {} where the recorded release reached no decision",
            a.describe()
        ),
        (None, None) => format!("{subject}: neither the record nor the replay reached a decision"),
    };
    Comparison {
        recorded: before,
        replayed: after,
        same,
        shift_seconds: shift,
        text,
    }
}
