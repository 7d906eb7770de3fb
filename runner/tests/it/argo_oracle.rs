//! Differential tests against Argo Rollouts' own code (`support::oracle`): generated inputs go
//! to Argo's functions and to rollout-runner's, and the answers must agree.
//! - conditions: `EvaluateResult`; the phase, and for an `Error` the measurement message;
//! - canary replica counts: `CalculateReplicaCountsForBasicCanary` and
//!   `CalculateReplicaCountsForTrafficRoutedCanary` (setCanaryScale, dynamicStableScale, aborts).
//!
//! `ORACLE_CASES` and `ORACLE_SEED` widen a run (the long run is `tests/bench/oracle`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use rollout_runner::crd::{Rollout, TrafficWeights};
use rollout_runner::engine::replicas::{basic_canary_counts, traffic_routed_canary_counts};
use rollout_runner::expr::{Value, evaluate_result};
use rollout_runner::observed::ReplicaSetState;
use serde_json::{Value as Json, json};

use crate::support::oracle::{Oracle, Rng};

/// A result as a provider hands it to Argo: its JSON, the oracle's `resultType`, and ours.
fn results() -> Vec<(Json, &'static str, Value)> {
    let mut out = Vec::new();
    let json_results = [
        json!([]),
        json!([0.5]),
        json!([1.0, 2.0, 3.0]),
        json!(0.97),
        json!(0.0),
        json!(2.0),
        json!("2"),
        json!("abc"),
        json!(true),
        json!(null),
        json!({"x": 1.0}),
        json!({"x": "a"}),
        json!([{"x": 1.0}]),
    ];
    for r in json_results {
        let ours = json_value(&r);
        out.push((r, "json", ours));
    }
    let prometheus = [
        (json!([]), Value::Vector(vec![])),
        (json!([0.5]), Value::Vector(vec![0.5])),
        (json!([0.99, 0.2]), Value::Vector(vec![0.99, 0.2])),
        (json!(0.97), Value::Float(0.97)),
        (json!("NaN"), Value::Float(f64::NAN)),
        (json!("+Inf"), Value::Float(f64::INFINITY)),
    ];
    for (r, ours) in prometheus {
        out.push((r, "prometheus", ours));
    }
    out.push((json!(null), "datadog", Value::Nil));
    out.push((json!(0.97), "datadog", Value::Float(0.97)));
    out
}

/// What `encoding/json` gives for `any`: every number a float64.
fn json_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Float(n.as_f64().expect("number")),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(json_value).collect()),
        Json::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), json_value(v))).collect()),
    }
}

const OPERANDS: &[&str] = &[
    "result",
    "result[0]",
    "result[1]",
    "result[-1]",
    "len(result)",
    "asInt(result)",
    "asFloat(result)",
    "default(result, 0)",
    "result.x",
    "0",
    "1",
    "0.5",
    "0.95",
    "-1",
    "nil",
    "\"2\"",
    "true",
];
const PREDICATES: &[&str] = &[
    "isNaN(result)",
    "isInf(result)",
    "isNil(result)",
    "result",
    "true",
    "false",
    "len(result) == 0",
    "len(result) > 0",
    "all(result, {# > 0.5})",
    "any(result, {# > 0.5})",
];
const COMPARISONS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

fn condition(rng: &mut Rng, depth: u32) -> String {
    match rng.below(if depth == 0 { 2 } else { 5 }) {
        0 => format!(
            "{} {} {}",
            rng.pick(OPERANDS),
            rng.pick(COMPARISONS),
            rng.pick(OPERANDS)
        ),
        1 => rng.pick(PREDICATES).to_string(),
        2 => format!("!({})", condition(rng, depth - 1)),
        3 => format!(
            "{} && {}",
            condition(rng, depth - 1),
            condition(rng, depth - 1)
        ),
        _ => format!(
            "{} || {}",
            condition(rng, depth - 1),
            condition(rng, depth - 1)
        ),
    }
}

#[test]
fn conditions_agree_with_argo() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let (cases, seed) = run_size();
    let mut rng = Rng(seed.max(1));
    let results = results();
    let now = Timestamp::from_second(1_700_000_000).expect("timestamp");
    // Disagreements by class (our phase, Argo's phase), with the shortest example of each.
    let mut classes: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    for _ in 0..cases {
        let (result, result_type, ours) = &results[rng.below(results.len())];
        let success = condition(&mut rng, 2);
        let failure = if rng.below(3) == 0 {
            condition(&mut rng, 1)
        } else {
            String::new()
        };
        let argo = oracle.ask(&json!({
            "op": "evaluate",
            "result": result,
            "resultType": result_type,
            "successCondition": success,
            "failureCondition": failure,
        }));
        let assessment = evaluate_result(ours, Some(&success), Some(&failure), now);
        let argo_phase = argo["phase"].as_str().unwrap_or("?").to_string();
        let our_phase = assessment.phase.as_str().to_string();
        let agree = our_phase == argo_phase
            && (our_phase != "Error" || assessment.message.as_deref() == argo["error"].as_str());
        if !agree {
            let example = format!(
                "result {result} ({result_type}), success `{success}`, failure `{failure}`: \
                 ours {our_phase} {:?}, Argo {argo_phase} {}",
                assessment.message, argo["error"]
            );
            let entry = classes
                .entry((our_phase, argo_phase))
                .or_insert((0, example.clone()));
            entry.0 += 1;
            if example.len() < entry.1.len() {
                entry.1 = example;
            }
        }
    }
    let total: usize = classes.values().map(|(n, _)| n).sum();
    let report: Vec<String> = classes
        .iter()
        .map(|((ours, argo), (n, example))| format!("{n} × ours {ours} / Argo {argo}: {example}"))
        .collect();
    assert!(
        total == 0,
        "{total} of {cases} generated cases disagree with Argo (seed {seed}):\n{}",
        report.join("\n")
    );
}

/// How many cases and which seed: 3,000 and 7 unless `ORACLE_CASES` and `ORACLE_SEED` say.
fn run_size() -> (usize, u64) {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    (
        var("ORACLE_CASES").map_or(3000, |v: u64| v as usize),
        var("ORACLE_SEED").unwrap_or(7),
    )
}

/// Fails with the five shortest disagreements, if there are any.
fn assert_agree(what: &str, cases: usize, seed: u64, mut disagreements: Vec<String>) {
    disagreements.sort_by_key(String::len);
    assert!(
        disagreements.is_empty(),
        "{} of {cases} generated {what} disagree with Argo (seed {seed}); the shortest:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A ReplicaSet as both sides see it: Argo's JSON, and the engine's state.
fn replica_set(name: &str, spec: i32, available: i32) -> (Json, ReplicaSetState) {
    let json = json!({
        "metadata": {"name": name, "labels": {"rollouts-pod-template-hash": name}},
        "spec": {"replicas": spec},
        "status": {"replicas": spec, "readyReplicas": available, "availableReplicas": available},
    });
    let state = ReplicaSetState {
        name: name.to_string(),
        labels: [("rollouts-pod-template-hash".to_string(), name.to_string())].into(),
        annotations: BTreeMap::new(),
        created_at: Timestamp::UNIX_EPOCH,
        spec_replicas: spec,
        replicas: spec,
        ready_replicas: available,
        available_replicas: available,
        min_ready_seconds: 0,
        template: Default::default(),
        deleting: false,
        replica_failure: None,
    };
    (json, state)
}

/// An int-or-percent as a Rollout may spell maxSurge or maxUnavailable.
fn int_or_percent(rng: &mut Rng) -> Json {
    if rng.below(2) == 0 {
        json!(rng.below(4))
    } else {
        json!(format!("{}%", rng.below(11) * 10))
    }
}

#[test]
fn basic_canary_counts_agree_with_argo() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let (cases, seed) = run_size();
    let mut rng = Rng(seed.max(1));
    let mut disagreements = Vec::new();
    for _ in 0..cases {
        let replicas = rng.below(12) as i32;
        let (surge, unavailable) = loop {
            let (s, u) = (int_or_percent(&mut rng), int_or_percent(&mut rng));
            // Argo's validation refuses both zero; the counts are undefined there.
            let zero = |v: &Json| v == &json!(0) || v == &json!("0%");
            if !(zero(&s) && zero(&u)) {
                break (s, u);
            }
        };
        let steps: Vec<Json> = (0..1 + rng.below(3))
            .map(|_| json!({"setWeight": rng.below(21) * 5}))
            .collect();
        let step_index = rng.below(steps.len() + 1);
        let upper = replicas as usize + 3;
        let (new_json, new_state) = {
            let spec = rng.below(upper) as i32;
            replica_set("new", spec, rng.below(spec as usize + 1) as i32)
        };
        let with_stable = rng.below(5) != 0;
        let (stable_json, stable_state) = {
            let spec = rng.below(upper) as i32;
            replica_set("stable", spec, rng.below(spec as usize + 1) as i32)
        };
        let others: Vec<(Json, ReplicaSetState)> = (0..rng.below(3))
            .map(|i| {
                let spec = rng.below(4) as i32;
                replica_set(
                    &format!("old{i}"),
                    spec,
                    rng.below(spec as usize + 1) as i32,
                )
            })
            .collect();
        let rollout = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "r", "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "strategy": {"canary": {"maxSurge": surge, "maxUnavailable": unavailable, "steps": steps}},
            },
            "status": {
                "stableRS": if with_stable { "stable" } else { "" },
                "currentPodHash": "new",
                "currentStepIndex": step_index,
            },
        });
        let argo = oracle.ask(&json!({
            "op": "basicCanaryCounts",
            "rollout": rollout,
            "newRS": new_json,
            "stableRS": if with_stable { stable_json.clone() } else { Json::Null },
            "otherRSs": others.iter().map(|(j, _)| j.clone()).collect::<Vec<_>>(),
        }));
        let parsed: Rollout = serde_json::from_value(rollout.clone()).expect("the Rollout parses");
        let other_states: Vec<&ReplicaSetState> = others.iter().map(|(_, s)| s).collect();
        let (new, stable) = basic_canary_counts(
            &parsed.spec,
            parsed.status.as_ref().expect("status"),
            Some(&new_state),
            with_stable.then_some(&stable_state),
            &other_states,
        );
        let theirs = (argo["new"].as_i64(), argo["stable"].as_i64());
        if theirs != (Some(new.into()), Some(stable.into())) {
            disagreements.push(format!(
                "{rollout} new {new_json} stable {} others {}: ours (new {new}, stable {stable}), Argo {argo}",
                if with_stable { stable_json.to_string() } else { "none".into() },
                others.len()
            ));
        }
    }
    assert_agree("canaries", cases, seed, disagreements);
}

#[test]
fn traffic_routed_canary_counts_agree_with_argo() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let (cases, seed) = run_size();
    let mut rng = Rng(seed.max(1));
    let mut disagreements = Vec::new();
    for _ in 0..cases {
        let replicas = rng.below(12) as i32;
        let max_weight = [100, 100, 1000, 50][rng.below(4)];
        let step = |rng: &mut Rng| match rng.below(4) {
            0 => json!({"setCanaryScale": {"replicas": rng.below(6)}}),
            1 => json!({"setCanaryScale": {"weight": rng.below(21) * 5}}),
            2 => json!({"setCanaryScale": {"matchTrafficWeight": true}}),
            _ => json!({"setWeight": rng.below(max_weight as usize / 5 + 1) * 5}),
        };
        let steps: Vec<Json> = (0..1 + rng.below(4)).map(|_| step(&mut rng)).collect();
        let mut canary = json!({
            "dynamicStableScale": rng.below(2) == 0,
            "trafficRouting": {"nginx": {"stableIngress": "web"}, "maxTrafficWeight": max_weight},
            "steps": steps,
        });
        if rng.below(3) == 0 {
            canary["minPodsPerReplicaSet"] = json!(1 + rng.below(3));
        }
        let abort = rng.below(4) == 0;
        let rollout = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "r", "namespace": "default"},
            "spec": {"replicas": replicas, "strategy": {"canary": canary}},
            "status": {
                "stableRS": if rng.below(5) == 0 { "" } else { "stable" },
                "currentPodHash": "new",
                "currentStepIndex": rng.below(5),
                "abort": abort,
            },
        });
        let weights = (rng.below(4) != 0).then(|| {
            let canary = rng.below(max_weight as usize + 1);
            json!({"canary": {"weight": canary}, "stable": {"weight": max_weight as usize - canary}})
        });
        let mut request = json!({"op": "trafficRoutedCanaryCounts", "rollout": rollout});
        if let Some(w) = &weights {
            request["weights"] = w.clone();
        }
        let argo = oracle.ask(&request);
        let parsed: Rollout = serde_json::from_value(rollout.clone()).expect("the Rollout parses");
        let parsed_weights: Option<TrafficWeights> = weights
            .as_ref()
            .map(|w| serde_json::from_value(w.clone()).expect("weights parse"));
        let (new, stable) = traffic_routed_canary_counts(
            &parsed.spec,
            parsed.status.as_ref().expect("status"),
            parsed_weights.as_ref(),
        );
        let theirs = (argo["new"].as_i64(), argo["stable"].as_i64());
        if theirs != (Some(new.into()), Some(stable.into())) {
            disagreements.push(format!(
                "{rollout} weights {weights:?}: ours (new {new}, stable {stable}), Argo {argo}"
            ));
        }
    }
    assert_agree("routed canaries", cases, seed, disagreements);
}
