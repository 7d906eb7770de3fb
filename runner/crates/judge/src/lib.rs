//! The built-in statistical judge: compares a canary's series with a baseline's, metric by
//! metric, and scores the result (Kayenta's NetflixACAJudge, `peers.md` §2.2-2.3).
//!
//! Pure: it gets the series already fetched (see [`rollout_runner_metrics::judge`]) and returns a
//! [`Judgement`] that explains itself. It never queries, never reads a clock, and its only
//! randomness is seeded.
//!
//! Quirks of Kayenta fixed here (each is tested, and listed in `docs/analysis.md`):
//! - too little data is Inconclusive ("too little data to conclude"), not a Pass or a 0 score;
//! - a critical metric that errs fails the judgement (Kayenta ignored it);
//! - a score equal to `marginal` is Marginal in every place (the Spinnaker stage failed it);
//! - the Hodges-Lehmann estimate is R's (no continuity correction);
//! - the noise added to constant series is seeded.

pub mod classify;
pub mod mann_whitney;
pub mod stats;

use std::collections::BTreeMap;

use rollout_runner_api::crd::JudgeMetric;

pub use classify::{Classification, MetricResult, Settings, classify};

/// The judgement's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Verdict {
    /// Score at or above `pass`.
    Pass,
    /// Score at or above `marginal`, below `pass`.
    Marginal,
    /// Below `marginal`, or a critical metric failed.
    Fail,
    /// Too little data to conclude.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::Marginal => "Marginal",
            Self::Fail => "Fail",
            Self::Inconclusive => "Inconclusive",
        }
    }
}

/// One group's part of the score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupScore {
    pub name: String,
    /// Percent of the group's counted metrics that passed; `None` when none was counted.
    pub score: Option<f64>,
    pub weight: f64,
}

/// What the judge decided and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Judgement {
    pub score: f64,
    pub verdict: Verdict,
    pub reason: String,
    pub groups: Vec<GroupScore>,
    pub metrics: Vec<MetricResult>,
}

/// Group of the metrics that name none.
pub const DEFAULT_GROUP: &str = "default";

/// The judge's settings from its YAML.
pub fn settings(config: &JudgeMetric) -> Settings {
    let defaults = Settings::default();
    Settings {
        confidence: config.confidence_level.unwrap_or(defaults.confidence),
        tolerance: config.tolerance.unwrap_or(defaults.tolerance),
        min_points: config
            .min_points
            .map_or(defaults.min_points, |n| n as usize),
        seed: config.seed,
    }
}

/// Classify each metric (`series[i]` is `(canary, baseline)` of `config.metrics[i]`) and score.
pub fn judge(config: &JudgeMetric, series: &[(Vec<f64>, Vec<f64>)]) -> Judgement {
    let settings = settings(config);
    let metrics: Vec<MetricResult> = config
        .metrics
        .iter()
        .zip(series)
        .map(|(spec, (canary, baseline))| classify(spec, canary, baseline, &settings))
        .collect();
    score(config, metrics)
}

/// Kayenta's `WeightedSumScorer` and `ThresholdScoreClassifier`, with the fixes above.
pub fn score(config: &JudgeMetric, metrics: Vec<MetricResult>) -> Judgement {
    let counted: Vec<&MetricResult> = metrics.iter().filter(|m| !m.muted).collect();
    let mut group_names: Vec<String> = Vec::new();
    for m in &counted {
        if m.groups.is_empty() {
            push_unique(&mut group_names, DEFAULT_GROUP);
        }
        for g in &m.groups {
            push_unique(&mut group_names, g);
        }
    }
    // Configured weights first; the rest share what is left.
    let configured: f64 = config.group_weights.values().sum();
    let unconfigured = group_names
        .iter()
        .filter(|g| !config.group_weights.contains_key(*g))
        .count();
    let mut groups = Vec::new();
    let mut summary = 0.0;
    for name in &group_names {
        let in_group: Vec<&&MetricResult> = counted
            .iter()
            .filter(|m| {
                m.groups.iter().any(|g| g == name) || (m.groups.is_empty() && name == DEFAULT_GROUP)
            })
            .collect();
        let count = |c: Classification| in_group.iter().filter(|m| m.classification == c).count();
        let passed = count(Classification::Pass);
        let total = passed
            + count(Classification::High)
            + count(Classification::Low)
            + count(Classification::NoDataFail);
        let score = (total > 0).then(|| 100.0 * passed as f64 / total as f64);
        let weight = config
            .group_weights
            .get(name)
            .copied()
            .unwrap_or_else(|| ((100.0 - configured) / unconfigured.max(1) as f64).max(0.0));
        // A group with nothing counted keeps its full share (Kayenta's `noData` = 100).
        summary += score.unwrap_or(100.0) * weight / 100.0;
        groups.push(GroupScore {
            name: name.clone(),
            score,
            weight,
        });
    }
    let summary = (summary * 100.0).round() / 100.0;
    let thresholds = &config.thresholds;
    let failed_critical: Vec<&&MetricResult> = counted
        .iter()
        .filter(|m| {
            m.critical
                && matches!(
                    m.classification,
                    Classification::High | Classification::Low | Classification::Error
                )
        })
        .collect();
    let no_data = counted
        .iter()
        .filter(|m| m.classification == Classification::NoData)
        .count();
    let critical_no_data: Vec<&&MetricResult> = counted
        .iter()
        .filter(|m| {
            m.critical
                && matches!(
                    m.classification,
                    Classification::NoData | Classification::NoDataFail
                )
        })
        .collect();
    let (score, verdict, reason) = if !failed_critical.is_empty() {
        let names: Vec<String> = failed_critical
            .iter()
            .map(|m| format!("{} ({})", m.name, m.classification.as_str()))
            .collect();
        (
            0.0,
            Verdict::Fail,
            format!("critical metric failed: {}", names.join(", ")),
        )
    } else if counted.is_empty() {
        (
            0.0,
            Verdict::Inconclusive,
            "too little data to conclude: no metric is scored (all are muted)".into(),
        )
    } else if !critical_no_data.is_empty() {
        let names: Vec<&str> = critical_no_data.iter().map(|m| m.name.as_str()).collect();
        (
            summary,
            Verdict::Inconclusive,
            format!(
                "too little data to conclude: critical metric without enough data: {}",
                names.join(", ")
            ),
        )
    } else if no_data * 2 >= counted.len() {
        (
            summary,
            Verdict::Inconclusive,
            format!(
                "too little data to conclude: {no_data} of {} metrics have too little data",
                counted.len()
            ),
        )
    } else if summary >= thresholds.pass {
        (
            summary,
            Verdict::Pass,
            format!("score {summary} >= pass {}", thresholds.pass),
        )
    } else if summary >= thresholds.marginal {
        (
            summary,
            Verdict::Marginal,
            format!(
                "score {summary} is below pass {} but >= marginal {}",
                thresholds.pass, thresholds.marginal
            ),
        )
    } else {
        (
            summary,
            Verdict::Fail,
            format!("score {summary} < marginal {}", thresholds.marginal),
        )
    };
    Judgement {
        score,
        verdict,
        reason,
        groups,
        metrics,
    }
}

fn push_unique(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
}

/// One line per metric: `name: Classification (critical) - reason`.
pub fn explain(judgement: &Judgement) -> BTreeMap<String, String> {
    judgement
        .metrics
        .iter()
        .map(|m| {
            let mut flags = Vec::new();
            if m.critical {
                flags.push("critical");
            }
            if m.muted {
                flags.push("muted");
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" ({})", flags.join(", "))
            };
            (
                format!("judge.{}", m.name),
                format!("{}{flags}: {}", m.classification.as_str(), m.reason),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
