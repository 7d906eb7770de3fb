use super::*;
use rollout_runner_api::crd::{
    EffectMeasure, EffectSizeConfig, JudgeDirection, JudgeMetricSpec, JudgeThresholds, NanStrategy,
    OutlierConfig, OutlierStrategy,
};

fn spec(name: &str, direction: JudgeDirection) -> JudgeMetricSpec {
    JudgeMetricSpec {
        name: name.into(),
        direction,
        ..Default::default()
    }
}

fn config(metrics: Vec<JudgeMetricSpec>) -> JudgeMetric {
    JudgeMetric {
        metrics,
        ..Default::default()
    }
}

/// Points around `center`, spread `spread`, deterministic.
fn series(center: f64, spread: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut random = stats::Random::new(seed);
    (0..n).map(|_| center + spread * random.normal()).collect()
}

#[derive(serde::Deserialize)]
struct KayentaCases {
    samples: BTreeMap<String, Vec<f64>>,
    cases: Vec<KayentaCase>,
}

#[derive(serde::Deserialize)]
struct KayentaCase {
    name: String,
    canary: String,
    baseline: String,
    direction: JudgeDirection,
    expected: String,
}

/// Kayenta's published classifier cases (`ClassifierSuite.scala`), with its suite's
/// parameters (tolerance 0.10, 95 %) and with the judge's defaults (0.25, 98 %).
#[test]
fn kayenta_published_classifications() {
    let fixture: KayentaCases =
        serde_json::from_str(include_str!("../tests/data/kayenta_cases.json")).unwrap();
    let suite = Settings {
        confidence: 0.95,
        tolerance: 0.10,
        ..Settings::default()
    };
    for settings in [suite, Settings::default()] {
        for case in &fixture.cases {
            let result = classify(
                &spec(&case.name, case.direction),
                &fixture.samples[&case.canary],
                &fixture.samples[&case.baseline],
                &settings,
            );
            assert_eq!(
                result.classification.as_str(),
                case.expected,
                "{} ({settings:?}): {}",
                case.name,
                result.reason
            );
        }
    }
}

#[test]
fn high_metric_reason_names_the_interval() {
    let result = classify(
        &spec("latency", JudgeDirection::Increase),
        &series(20.0, 1.0, 50, 1),
        &series(10.0, 1.0, 50, 2),
        &Settings::default(),
    );
    assert_eq!(result.classification, Classification::High);
    assert!(
        result
            .reason
            .contains("98% interval of canary - baseline ["),
        "{}",
        result.reason
    );
    assert!(result.reason.contains("lies above"), "{}", result.reason);
    let test = result.test.unwrap();
    assert!(test.lower > 8.0 && test.upper < 12.0, "{test:?}");
}

#[test]
fn too_little_data_is_no_data_and_the_judgement_inconclusive() {
    let config = config(vec![spec("errors", JudgeDirection::Increase)]);
    let judgement = judge(&config, &[(vec![1.0, 2.0, 3.0], series(2.0, 1.0, 30, 3))]);
    assert_eq!(judgement.metrics[0].classification, Classification::NoData);
    assert!(
        judgement.metrics[0]
            .reason
            .starts_with("too little data to conclude: 3 canary and 30 baseline points"),
        "{}",
        judgement.metrics[0].reason
    );
    assert_eq!(judgement.verdict, Verdict::Inconclusive);
    assert!(judgement.reason.starts_with("too little data to conclude"));
}

/// Kayenta answers Pass when a side is empty under `nanStrategy: replace`.
#[test]
fn an_empty_side_never_passes_even_when_nans_are_replaced() {
    let mut s = spec("rate", JudgeDirection::Either);
    s.nan_strategy = NanStrategy::Replace;
    let result = classify(&s, &[], &series(1.0, 0.1, 20, 4), &Settings::default());
    assert_eq!(result.classification, Classification::NoData);
    // NaNs replaced by 0 are data: a canary that reports nothing is Low.
    let result = classify(
        &s,
        &[f64::NAN; 20],
        &series(1.0, 0.1, 20, 4),
        &Settings::default(),
    );
    assert_eq!(
        result.classification,
        Classification::Low,
        "{}",
        result.reason
    );
}

#[test]
fn must_have_data_counts_as_a_failure() {
    let mut a = spec("a", JudgeDirection::Either);
    a.must_have_data = true;
    let b = spec("b", JudgeDirection::Either);
    let c = spec("c", JudgeDirection::Either);
    let same = series(5.0, 1.0, 30, 5);
    let judgement = judge(
        &config(vec![a, b, c]),
        &[
            (vec![], same.clone()),
            (same.clone(), series(5.0, 1.0, 30, 6)),
            (series(5.0, 1.0, 30, 7), same),
        ],
    );
    assert_eq!(
        judgement.metrics[0].classification,
        Classification::NoDataFail
    );
    // 2 of 3 passed in the one group.
    assert_eq!(judgement.score, 66.67);
    assert_eq!(judgement.verdict, Verdict::Fail);
}

/// Kayenta drops `critical` from a metric whose test errs; here it fails the judgement.
#[test]
fn a_critical_metric_that_errs_fails_the_judgement() {
    let mut s = spec("p99", JudgeDirection::Increase);
    s.critical = true;
    let judgement = judge(
        &config(vec![s]),
        &[(
            [vec![f64::INFINITY], series(1.0, 0.1, 20, 8)].concat(),
            series(1.0, 0.1, 20, 9),
        )],
    );
    assert_eq!(judgement.metrics[0].classification, Classification::Error);
    assert_eq!(judgement.verdict, Verdict::Fail);
    assert_eq!(judgement.reason, "critical metric failed: p99 (Error)");
}

#[test]
fn critical_effect_size_decides_criticality() {
    let mut s = spec("latency", JudgeDirection::Increase);
    s.critical = true;
    s.effect_size = EffectSizeConfig {
        critical_increase: Some(3.0),
        ..Default::default()
    };
    let baseline = series(10.0, 1.0, 40, 10);
    // Twice the baseline: High, not critical (ratio 2 < 3), so it is scored.
    let high = classify(
        &s,
        &series(20.0, 1.0, 40, 11),
        &baseline,
        &Settings::default(),
    );
    assert_eq!(high.classification, Classification::High);
    assert!(!high.critical);
    let worse = classify(
        &s,
        &series(40.0, 1.0, 40, 12),
        &baseline,
        &Settings::default(),
    );
    assert!(worse.critical, "{}", worse.reason);
    let judgement = score(&config(vec![s]), vec![worse]);
    assert_eq!(judgement.verdict, Verdict::Fail);
    assert_eq!(judgement.score, 0.0);
}

#[test]
fn allowed_increase_gates_small_significant_shifts() {
    let mut s = spec("cpu", JudgeDirection::Increase);
    let canary = series(10.5, 0.1, 500, 13);
    let baseline = series(10.0, 0.1, 500, 14);
    assert_eq!(
        classify(&s, &canary, &baseline, &Settings::default()).classification,
        Classification::High
    );
    s.effect_size.allowed_increase = Some(1.1);
    let result = classify(&s, &canary, &baseline, &Settings::default());
    assert_eq!(result.classification, Classification::Pass);
    assert!(
        result.reason.contains("below allowedIncrease 1.1"),
        "{}",
        result.reason
    );
}

#[test]
fn cles_effect_size() {
    let mut s = spec("cpu", JudgeDirection::Either);
    s.effect_size = EffectSizeConfig {
        measure: EffectMeasure::Cles,
        allowed_increase: Some(0.8),
        ..Default::default()
    };
    let result = classify(
        &s,
        &series(12.0, 1.0, 60, 15),
        &series(10.0, 1.0, 60, 16),
        &Settings::default(),
    );
    assert!(result.effect_size > 0.8, "{}", result.effect_size);
    assert_eq!(result.classification, Classification::High);
}

#[test]
fn identical_and_single_valued_data_pass() {
    let s = spec("x", JudgeDirection::Either);
    let data = series(3.0, 1.0, 20, 17);
    let mut shuffled = data.clone();
    shuffled.reverse();
    let result = classify(&s, &data, &shuffled, &Settings::default());
    assert_eq!(result.classification, Classification::Pass);
    assert_eq!(result.reason, "canary and baseline data are identical");
    let result = classify(&s, &[0.0; 20], &[0.0; 15], &Settings::default());
    assert_eq!(result.reason, "every point of both series is 0");
}

/// Constant series get seeded noise: the same seed gives the same numbers.
#[test]
fn constant_series_are_reproducible() {
    let s = spec("x", JudgeDirection::Either);
    let settings = Settings::default();
    let a = classify(&s, &[2.0; 20], &[1.0; 20], &settings);
    let b = classify(&s, &[2.0; 20], &[1.0; 20], &settings);
    assert_eq!(a, b);
    assert_eq!(a.classification, Classification::High);
}

#[test]
fn outliers_can_be_removed() {
    let mut s = spec("latency", JudgeDirection::Increase);
    let baseline = series(10.0, 1.0, 200, 18);
    // Kayenta's fences never drop more than the extreme percent: one point in 201.
    let mut canary = series(10.0, 1.0, 200, 19);
    canary.push(1e6);
    s.outliers = OutlierConfig {
        strategy: OutlierStrategy::Remove,
        outlier_factor: 3.0,
    };
    let result = classify(&s, &canary, &baseline, &Settings::default());
    assert_eq!(result.canary.count, 200);
    assert_eq!(result.classification, Classification::Pass);
}

#[test]
fn groups_are_weighted_and_unlisted_groups_share_the_rest() {
    let mut latency = spec("latency", JudgeDirection::Increase);
    latency.groups = vec!["latency".into()];
    let mut errors = spec("errors", JudgeDirection::Increase);
    errors.groups = vec!["errors".into()];
    let mut cpu = spec("cpu", JudgeDirection::Increase);
    cpu.groups = vec!["saturation".into()];
    let mut config = config(vec![latency, errors, cpu]);
    config.group_weights = BTreeMap::from([("latency".to_string(), 50.0)]);
    config.thresholds = JudgeThresholds {
        pass: 90.0,
        marginal: 70.0,
    };
    let same = series(10.0, 1.0, 40, 20);
    let judgement = judge(
        &config,
        &[
            (series(10.0, 1.0, 40, 21), same.clone()),
            (series(20.0, 1.0, 40, 22), same.clone()),
            (series(10.0, 1.0, 40, 23), same),
        ],
    );
    // latency passes (50), errors High (0 of its 25), saturation passes (25).
    assert_eq!(judgement.score, 75.0);
    assert_eq!(judgement.verdict, Verdict::Marginal);
    let weights: Vec<f64> = judgement.groups.iter().map(|g| g.weight).collect();
    assert_eq!(weights, vec![50.0, 25.0, 25.0]);
    let lines = explain(&judgement);
    assert!(lines["judge.errors"].starts_with("High: "), "{lines:?}");
}

/// A score equal to `marginal` is Marginal (the Spinnaker stage treated it as a failure).
#[test]
fn marginal_boundary_is_marginal() {
    let mut config = config(vec![
        spec("a", JudgeDirection::Either),
        spec("b", JudgeDirection::Either),
    ]);
    config.thresholds = JudgeThresholds {
        pass: 95.0,
        marginal: 50.0,
    };
    let same = series(10.0, 1.0, 40, 24);
    let judgement = judge(
        &config,
        &[
            (series(10.0, 1.0, 40, 25), same.clone()),
            (series(30.0, 1.0, 40, 26), same),
        ],
    );
    assert_eq!(judgement.score, 50.0);
    assert_eq!(judgement.verdict, Verdict::Marginal);
}

#[test]
fn muted_metrics_are_shown_but_not_scored() {
    let mut muted = spec("noisy", JudgeDirection::Either);
    muted.muted = true;
    let judgement = judge(
        &config(vec![muted, spec("ok", JudgeDirection::Either)]),
        &[
            (series(30.0, 1.0, 40, 27), series(10.0, 1.0, 40, 28)),
            (series(10.0, 1.0, 40, 29), series(10.0, 1.0, 40, 30)),
        ],
    );
    assert_eq!(judgement.metrics[0].classification, Classification::High);
    assert_eq!(judgement.verdict, Verdict::Pass);
    assert_eq!(judgement.score, 100.0);
}
