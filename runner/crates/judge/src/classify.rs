//! One metric's classification: is the canary higher, lower, or not different from the
//! baseline? Kayenta's `NetflixACAJudge.classifyMetric` with `MannWhitneyClassifier`
//! (`peers.md` §2.2), with its quirks fixed:
//!
//! - too few points (fewer than `minPoints` on a side, after NaN and outlier handling) is
//!   NoData, never Pass (Kayenta passed an empty side under `nanStrategy: replace`);
//! - the noise that breaks all-constant samples comes from a seeded source;
//! - a critical metric that errs or has no data stays critical (Kayenta dropped `critical`);
//! - the reason names the numbers that decided (kayenta#521).

use rollout_runner_api::crd::{
    EffectMeasure, JudgeDirection, JudgeMetricSpec, NanStrategy, OutlierStrategy,
};

use super::mann_whitney::{MannWhitney, mann_whitney};
use super::stats::{Random, Summary, cles, remove_outliers, summary};

/// How the canary compares with the baseline on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Classification {
    Pass,
    High,
    Low,
    /// Too little data to compare; left out of the score unless `mustHaveData`.
    NoData,
    /// `mustHaveData` and no data: counts as a failed metric.
    NoDataFail,
    Error,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::High => "High",
            Self::Low => "Low",
            Self::NoData => "NoData",
            Self::NoDataFail => "NoDataFail",
            Self::Error => "Error",
        }
    }
}

/// The judge's parameters shared by every metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub confidence: f64,
    pub tolerance: f64,
    pub min_points: usize,
    pub seed: u64,
}

impl Default for Settings {
    /// Kayenta's hard-coded 0.98 and 0.25; at least 10 points a side.
    fn default() -> Self {
        Self {
            confidence: 0.98,
            tolerance: 0.25,
            min_points: 10,
            seed: 0,
        }
    }
}

/// One metric's result, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricResult {
    pub name: String,
    pub groups: Vec<String>,
    pub classification: Classification,
    /// Fails the whole judgement.
    pub critical: bool,
    pub muted: bool,
    pub reason: String,
    pub canary: Summary,
    pub baseline: Summary,
    /// The Mann-Whitney interval of canary minus baseline, when computed.
    pub test: Option<MannWhitney>,
    /// The chosen effect size (mean ratio or CLES).
    pub effect_size: f64,
    /// mean(canary) / mean(baseline), Kayenta's reported "deviation".
    pub mean_ratio: f64,
}

/// Classify `canary` against `baseline` for `spec`.
pub fn classify(
    spec: &JudgeMetricSpec,
    canary: &[f64],
    baseline: &[f64],
    settings: &Settings,
) -> MetricResult {
    let prepare = |values: &[f64]| -> Vec<f64> {
        let cleaned: Vec<f64> = match spec.nan_strategy {
            NanStrategy::Remove => values.iter().copied().filter(|v| !v.is_nan()).collect(),
            NanStrategy::Replace => values
                .iter()
                .map(|v| if v.is_nan() { 0.0 } else { *v })
                .collect(),
        };
        match spec.outliers.strategy {
            OutlierStrategy::Keep => cleaned,
            OutlierStrategy::Remove => remove_outliers(&cleaned, spec.outliers.outlier_factor),
        }
    };
    let mut x = prepare(canary);
    let mut y = prepare(baseline);
    let mut result = MetricResult {
        name: spec.name.clone(),
        groups: spec.groups.clone(),
        classification: Classification::Pass,
        critical: false,
        muted: spec.muted,
        reason: String::new(),
        canary: summary(&x),
        baseline: summary(&y),
        test: None,
        effect_size: f64::NAN,
        mean_ratio: f64::NAN,
    };
    let few = x.len().min(y.len());
    if few < settings.min_points.max(1) {
        result.classification = if spec.must_have_data {
            Classification::NoDataFail
        } else {
            Classification::NoData
        };
        result.critical = spec.critical;
        result.reason = format!(
            "too little data to conclude: {} canary and {} baseline points, at least {} needed on each side",
            x.len(),
            y.len(),
            settings.min_points.max(1)
        );
        return result;
    }
    if x.iter().any(|v| v.is_infinite()) || y.iter().any(|v| v.is_infinite()) {
        result.classification = Classification::Error;
        result.critical = spec.critical;
        result.reason = "a series holds an infinite value".into();
        return result;
    }
    let mean_ratio = {
        let (mx, my) = (result.canary.mean, result.baseline.mean);
        if mx == 0.0 || my == 0.0 {
            f64::NAN
        } else {
            mx / my
        }
    };
    result.mean_ratio = mean_ratio;
    let mut sorted_x = x.clone();
    let mut sorted_y = y.clone();
    sorted_x.sort_by(f64::total_cmp);
    sorted_y.sort_by(f64::total_cmp);
    if sorted_x == sorted_y {
        result.reason = "canary and baseline data are identical".into();
        return result;
    }
    let first = x[0];
    if x.iter().chain(&y).all(|v| *v == first) {
        result.reason = format!("every point of both series is {first}");
        return result;
    }
    // Two constant (and different) series: Kayenta perturbs them so that the rank test has a
    // spread to work with. Seeded, so a verdict can be reproduced.
    let constant = |v: &[f64]| v.iter().all(|p| *p == v[0]);
    if constant(&x) && constant(&y) {
        let mut random = Random::new(settings.seed);
        for side in [&mut x, &mut y] {
            for p in side.iter_mut() {
                *p += random.normal() * (*p * 1e-5);
            }
        }
    }
    let test = match mann_whitney(&x, &y, settings.confidence) {
        Ok(test) => test,
        Err(error) => {
            result.classification = Classification::Error;
            result.critical = spec.critical;
            result.reason = format!("the Mann-Whitney test failed: {error}");
            return result;
        }
    };
    result.test = Some(test);
    let effect = match spec.effect_size.measure {
        EffectMeasure::MeanRatio => mean_ratio,
        EffectMeasure::Cles => cles(&x, &y),
    };
    result.effect_size = effect;
    let no_gate = match spec.effect_size.measure {
        EffectMeasure::MeanRatio => 1.0,
        EffectMeasure::Cles => 0.5,
    };
    let e = &spec.effect_size;
    let allowed_increase = e.allowed_increase.unwrap_or(no_gate);
    let allowed_decrease = e.allowed_decrease.unwrap_or(no_gate);
    let critical_increase = e.critical_increase.unwrap_or(no_gate);
    let critical_decrease = e.critical_decrease.unwrap_or(no_gate);

    let bound = settings.tolerance * test.estimate.abs();
    let up = matches!(
        spec.direction,
        JudgeDirection::Increase | JudgeDirection::Either
    );
    let down = matches!(
        spec.direction,
        JudgeDirection::Decrease | JudgeDirection::Either
    );
    let is_high = up && test.lower > bound && (effect.is_nan() || effect >= allowed_increase);
    let is_low = down && test.upper < -bound && (effect.is_nan() || effect <= allowed_decrease);
    let measure = match spec.effect_size.measure {
        EffectMeasure::MeanRatio => "mean ratio",
        EffectMeasure::Cles => "CLES",
    };
    let interval = format!(
        "{:.0}% interval of canary - baseline [{}, {}], shift estimate {}",
        settings.confidence * 100.0,
        short(test.lower),
        short(test.upper),
        short(test.estimate)
    );
    let medians = format!(
        "canary median {} vs baseline {}",
        short(result.canary.median),
        short(result.baseline.median)
    );
    if is_high || is_low {
        result.classification = if is_high {
            Classification::High
        } else {
            Classification::Low
        };
        let (side, edge, threshold) = if is_high {
            ("above", bound, critical_increase)
        } else {
            ("below", -bound, critical_decrease)
        };
        result.critical = spec.critical
            && (effect.is_nan()
                || if is_high {
                    effect >= threshold
                } else {
                    effect <= threshold
                });
        result.reason = format!(
            "{}: {interval} lies {side} {} ({}% of the estimate); {measure} {}{}",
            medians,
            short(edge),
            settings.tolerance * 100.0,
            short(effect),
            if result.critical {
                " reaches the critical effect size"
            } else {
                ""
            }
        );
    } else {
        let why = if test.lower > bound && up {
            format!(
                "the increase is significant but its {measure} {} is below allowedIncrease {}",
                short(effect),
                short(allowed_increase)
            )
        } else if test.upper < -bound && down {
            format!(
                "the decrease is significant but its {measure} {} is above allowedDecrease {}",
                short(effect),
                short(allowed_decrease)
            )
        } else if test.lower > bound {
            "the canary is higher, but only a decrease counts".to_string()
        } else if test.upper < -bound {
            "the canary is lower, but only an increase counts".to_string()
        } else {
            format!("the interval overlaps ±{}", short(bound))
        };
        result.reason = format!("{medians}: {interval}; {why}");
    }
    result
}

/// A number as people read it: 4 significant digits.
pub(crate) fn short(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&magnitude) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}
