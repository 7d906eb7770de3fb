//! Differential tests on generated Rollouts against Argo's own code (`support::oracle`):
//! - the rollout phase: `rolloututil.GetRolloutPhase` and `CalculateRolloutPhase` against
//!   `engine::phase::observed_phase` and `rollout_phase` (phase and message);
//! - the canary helpers the engine reproduces (`canaryHelpers`): the current step, the
//!   `setWeight` and `setCanaryScale` in force (steps that combine kinds, aborts,
//!   `abortScaleDownDelaySeconds`), canary replicas or weight, `maxTrafficWeight`, maxSurge and
//!   maxUnavailable, the scale-down delays and the step strings.
//!
//! `ORACLE_CASES` and `ORACLE_SEED` widen a run (the long run is `tests/bench/oracle`).

use rollout_runner::crd::Rollout;
use rollout_runner::engine::phase::{observed_phase, rollout_phase};
use rollout_runner::engine::replicas;
use rollout_runner::engine::step_string;
use serde_json::{Value as Json, json};

use crate::support::oracle::{Oracle, Rng};

/// How many cases and which seed: 3,000 and 7 unless `ORACLE_CASES` and `ORACLE_SEED` say.
fn run_size() -> (usize, u64) {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    (
        var("ORACLE_CASES").map_or(3000, |v: u64| v as usize),
        var("ORACLE_SEED").unwrap_or(7),
    )
}

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

fn chance(rng: &mut Rng, one_in: usize) -> bool {
    rng.below(one_in) == 0
}

fn condition(rng: &mut Rng) -> Json {
    let (type_, reason) = [
        ("InvalidSpec", "InvalidSpec"),
        ("Progressing", "RolloutAborted"),
        ("Progressing", "ProgressDeadlineExceeded"),
        ("Progressing", "ReplicaSetUpdated"),
        ("Available", "AvailableReason"),
        ("Paused", "RolloutPaused"),
    ][rng.below(6)];
    json!({
        "type": type_, "status": if chance(rng, 2) { "True" } else { "False" },
        "reason": reason, "message": format!("m{}", rng.below(3)),
        "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z",
    })
}

/// A step of any kind, sometimes two kinds at once (Argo accepts setCanaryScale,
/// setHeaderRoute and setMirrorRoute beside the others).
fn step(rng: &mut Rng, max_weight: usize) -> Json {
    let mut step = match rng.below(6) {
        0 | 1 => json!({"setWeight": rng.below(max_weight / 5 + 1) * 5}),
        2 => {
            json!({"pause": if chance(rng, 2) { json!({}) } else { json!({"duration": rng.pick(&["10s", "1m", "30"])}) }})
        }
        3 => json!({"analysis": {"templates": [{"templateName": "t"}]}}),
        4 => json!({"experiment": {"templates": [{"name": "e", "specRef": "canary"}]}}),
        _ => json!({"setHeaderRoute": {"name": "h"}}),
    };
    if chance(rng, 3) {
        step["setCanaryScale"] = match rng.below(3) {
            0 => json!({"replicas": rng.below(6)}),
            1 => json!({"weight": rng.below(21) * 5}),
            _ => json!({"matchTrafficWeight": true}),
        };
    }
    if chance(rng, 8) {
        step["setMirrorRoute"] = json!({"name": "m"});
    }
    step
}

fn int_or_percent(rng: &mut Rng) -> Json {
    if chance(rng, 2) {
        json!(rng.below(4))
    } else {
        json!(format!("{}%", rng.below(11) * 10))
    }
}

/// A Rollout mid-release: a canary (basic or routed) or a blue-green, with a status anywhere
/// in its life.
fn generated_rollout(rng: &mut Rng) -> Json {
    let replicas = rng.below(6);
    let max_weight = [100, 100, 1000, 50][rng.below(4)];
    let blue_green = chance(rng, 3);
    let mut strategy = if blue_green {
        let mut bg = json!({"activeService": "web", "previewService": "web-preview"});
        if chance(rng, 2) {
            bg["postPromotionAnalysis"] = json!({"templates": [{"templateName": "t"}]});
        }
        for (key, one_in) in [
            ("scaleDownDelaySeconds", 3),
            ("abortScaleDownDelaySeconds", 3),
        ] {
            if chance(rng, one_in) {
                bg[key] = json!(rng.below(3) * 15);
            }
        }
        json!({"blueGreen": bg})
    } else {
        let steps: Vec<Json> = (0..rng.below(5)).map(|_| step(rng, max_weight)).collect();
        let mut canary = json!({"steps": steps, "maxSurge": int_or_percent(rng), "maxUnavailable": int_or_percent(rng)});
        if chance(rng, 2) {
            canary["trafficRouting"] =
                json!({"nginx": {"stableIngress": "web"}, "maxTrafficWeight": max_weight});
            canary["canaryService"] = json!("web-canary");
            canary["stableService"] = json!("web");
            canary["dynamicStableScale"] = json!(chance(rng, 3));
        }
        for key in ["scaleDownDelaySeconds", "abortScaleDownDelaySeconds"] {
            if chance(rng, 3) {
                canary[key] = json!(rng.below(3) * 15);
            }
        }
        json!({"canary": canary})
    };
    if chance(rng, 10) {
        strategy = json!({"canary": {}});
    }
    let hashes = ["abc", "def", ""];
    let stable = hashes[rng.below(3)];
    let current = hashes[rng.below(2)];
    let mut status = json!({
        "stableRS": stable,
        "currentPodHash": current,
        "currentStepIndex": rng.below(6),
        "abort": chance(rng, 4),
        "promoteFull": chance(rng, 8),
        "controllerPause": chance(rng, 4),
        "replicas": rng.below(8),
        "updatedReplicas": rng.below(7),
        "availableReplicas": rng.below(7),
        "conditions": (0..rng.below(3)).map(|_| condition(rng)).collect::<Vec<_>>(),
        "observedGeneration": rng.pick(&["3", "2", "4", "7d5c9", ""]),
        "blueGreen": {"activeSelector": rng.pick(&hashes)},
    });
    if chance(rng, 3) {
        status["pauseConditions"] = json!([{"reason": rng.pick(&["CanaryPauseStep", "BlueGreenPause", "InconclusiveAnalysisRun"]), "startTime": "2024-01-01T00:00:00Z"}]);
    }
    if chance(rng, 4) {
        status["phase"] = json!(rng.pick(&["Healthy", "Progressing", "Paused", "Degraded"]));
        status["message"] = json!("stored");
    }
    if chance(rng, 5) {
        status["restartedAt"] = json!("2024-01-01T00:00:00Z");
    }
    if chance(rng, 4) {
        status["blueGreen"]["postPromotionAnalysisRunStatus"] = json!({"name": "r", "status": rng.pick(&["Successful", "Running", "Failed", "Pending"])});
    }
    let mut spec = json!({"replicas": replicas, "strategy": strategy, "paused": chance(rng, 6)});
    if chance(rng, 5) {
        spec["restartAt"] = json!(rng.pick(&["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"]));
    }
    let mut metadata = json!({"name": "web", "namespace": "default"});
    if !chance(rng, 6) {
        metadata["generation"] = json!(rng.below(3) + 2);
    }
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": metadata, "spec": spec, "status": status})
}

#[test]
fn rollout_phases_agree_with_argo() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let (cases, seed) = run_size();
    let mut rng = Rng(seed.max(1));
    let mut disagreements = Vec::new();
    for _ in 0..cases {
        let rollout = generated_rollout(&mut rng);
        let argo = oracle.ask(&json!({"op": "rolloutPhase", "rollout": rollout}));
        let parsed: Rollout = serde_json::from_value(rollout.clone()).expect("the Rollout parses");
        let status = parsed.status.clone().unwrap_or_default();
        let (phase, message) = observed_phase(parsed.metadata.generation, &parsed.spec, &status);
        let (calculated, calculated_message) = rollout_phase(&parsed.spec, &status);
        let ours = json!({
            "phase": phase.as_str(), "message": message,
            "CalculateRolloutPhase": {"phase": calculated.as_str(), "message": calculated_message},
        });
        let theirs = json!({
            "phase": argo["phase"], "message": argo["message"],
            "CalculateRolloutPhase": argo["CalculateRolloutPhase"],
        });
        if ours != theirs {
            disagreements.push(format!("{rollout}: ours {ours}, Argo {theirs}"));
        }
    }
    assert_agree("rollout phases", cases, seed, disagreements);
}

#[test]
fn canary_helpers_agree_with_argo() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let (cases, seed) = run_size();
    let mut rng = Rng(seed.max(1));
    let mut disagreements = Vec::new();
    for _ in 0..cases {
        let rollout = generated_rollout(&mut rng);
        let argo = oracle.ask(&json!({"op": "canaryHelpers", "rollout": rollout}));
        let parsed: Rollout = serde_json::from_value(rollout.clone()).expect("the Rollout parses");
        let spec = &parsed.spec;
        let status = parsed.status.clone().unwrap_or_default();
        let (step, index) = replicas::current_step(spec, &status);
        let (canary_replicas, canary_weight) = replicas::canary_replicas_or_weight(spec, &status);
        let (abort_delay, abort_delay_set) = replicas::abort_scale_down_delay(spec);
        let mut ours = json!({
            "GetCurrentSetWeight": replicas::current_set_weight(spec, &status),
            "UseSetCanaryScale": replicas::set_canary_scale_in_effect(spec, &status),
            "GetCanaryReplicasOrWeight": {"replicas": canary_replicas, "weight": canary_weight},
            "MaxTrafficWeight": spec.max_traffic_weight(),
            "MaxSurge": replicas::max_surge(spec),
            "MaxUnavailable": replicas::max_unavailable(spec),
            "GetScaleDownDelaySecondsOrDefault": replicas::scale_down_delay_seconds(spec),
            "GetAbortScaleDownDelaySecondsOrDefault": {"seconds": abort_delay, "wasSet": abort_delay_set},
            "CanaryStepString": spec.steps().iter().map(step_string).collect::<Vec<_>>(),
        });
        let mut theirs = json!({});
        for key in ours.as_object().unwrap().keys() {
            theirs[key] = argo[key].clone();
        }
        // The step index (past the last step once they are all done; none without steps).
        let _ = step;
        ours["GetCurrentCanaryStep"] = json!(index);
        theirs["GetCurrentCanaryStep"] = argo["GetCurrentCanaryStep"]["index"].clone();
        // Only the canary strategy has these (Argo's GetCanaryReplicasOrWeight dereferences
        // the canary strategy on an aborted blue-green).
        if spec.canary().is_none() {
            for key in [
                "GetScaleDownDelaySecondsOrDefault",
                "MaxSurge",
                "MaxUnavailable",
                "GetCanaryReplicasOrWeight",
            ] {
                ours[key] = Json::Null;
                theirs[key] = Json::Null;
            }
        }
        if ours != theirs {
            disagreements.push(format!("{rollout}: ours {ours}, Argo {theirs}"));
        }
    }
    assert_agree("rollouts' canary helpers", cases, seed, disagreements);
}

/// A Rollout spec with a random mix of what Argo's `ValidateRollout` looks at, valid or not.
fn generated_spec(rng: &mut Rng) -> Json {
    let labels = json!({"app": "web"});
    let template_labels = match rng.below(8) {
        0 => json!({"app": "other"}),
        1 => json!({}),
        _ => labels.clone(),
    };
    let containers = if chance(rng, 10) {
        json!([])
    } else {
        json!([{"name": "web", "image": "web:1"}])
    };
    let max_weight = [100, 100, 1000, 50][rng.below(4)];
    let routed = chance(rng, 2);
    let canary = || -> Json { json!({}) };
    let mut strategy = json!({});
    match rng.below(10) {
        0 => {}
        1..=3 => {
            let mut bg = json!({"activeService": "web", "previewService": rng.pick(&["web-preview", "web", ""])});
            for key in [
                "scaleDownDelaySeconds",
                "abortScaleDownDelaySeconds",
                "previewReplicaCount",
                "autoPromotionSeconds",
            ] {
                if chance(rng, 4) {
                    bg[key] = json!(rng.below(40) as i64 - 5);
                }
            }
            if chance(rng, 6) {
                bg["scaleDownDelayRevisionLimit"] = json!(rng.below(4));
            }
            strategy["blueGreen"] = bg;
        }
        _ => {
            let mut c = canary();
            let steps: Vec<Json> = (0..rng.below(5))
                .map(|_| {
                    let mut s = step(rng, max_weight);
                    if chance(rng, 12) {
                        s = json!({});
                    }
                    if chance(rng, 12) {
                        s["setWeight"] = json!(rng.below(3) as i64 * 80 - 40);
                    }
                    if chance(rng, 12) {
                        s["pause"] = json!({"duration": rng.pick(&["-5s", "-1", "1y", "5"])});
                    }
                    s
                })
                .collect();
            c["steps"] = json!(steps);
            c["maxSurge"] = int_or_percent(rng);
            c["maxUnavailable"] = int_or_percent(rng);
            if routed {
                c["trafficRouting"] = match rng.below(3) {
                    0 => json!({"nginx": {"stableIngress": "web"}}),
                    1 => json!({"istio": {"virtualService": {"name": "vs"}}}),
                    _ => json!({"alb": {"ingress": "web", "servicePort": 80}}),
                };
                c["trafficRouting"]["maxTrafficWeight"] = json!(max_weight);
                if chance(rng, 3) {
                    c["trafficRouting"]["managedRoutes"] = json!([{"name": "h"}, {"name": "m"}]);
                }
            }
            if !chance(rng, 4) {
                c["canaryService"] = json!(rng.pick(&["web-canary", "web"]));
                c["stableService"] = json!("web");
            }
            for key in [
                "scaleDownDelaySeconds",
                "abortScaleDownDelaySeconds",
                "minPodsPerReplicaSet",
            ] {
                if chance(rng, 5) {
                    c[key] = json!(rng.below(40) as i64 - 5);
                }
            }
            if chance(rng, 5) {
                c["dynamicStableScale"] = json!(true);
            }
            strategy["canary"] = c;
            if chance(rng, 15) {
                strategy["blueGreen"] = json!({"activeService": "web"});
            }
        }
    }
    let mut spec = json!({
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": template_labels}, "spec": {"containers": containers}},
        "strategy": strategy,
    });
    for (key, one_in) in [
        ("replicas", 4),
        ("minReadySeconds", 5),
        ("progressDeadlineSeconds", 5),
        ("revisionHistoryLimit", 6),
    ] {
        if chance(rng, one_in) {
            spec[key] = json!(rng.below(700) as i64 - 10);
        }
    }
    if chance(rng, 12) {
        spec["selector"] = json!({});
    }
    spec
}

#[test]
fn rollout_validation_agrees_with_argo() {
    use rollout_runner::manifest::{self, Rule, Source};
    use rollout_runner::validate::{self, Options};
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let (cases, seed) = run_size();
    // Each case is a whole lint run; a tenth of the other tests' cases.
    let cases = cases.div_ceil(10);
    let mut rng = Rng(seed.max(1));
    let mut disagreements = Vec::new();
    let options = Options {
        allow_unsupported: true,
        ..Options::default()
    };
    for _ in 0..cases {
        let rollout = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": generated_spec(&mut rng),
        });
        let argo = oracle.ask(&json!({"op": "validateRollout", "rollout": rollout}));
        let theirs: Vec<String> = argo["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["error"].as_str().unwrap_or("?").to_string())
            .collect();
        let text = serde_json::to_string_pretty(&rollout).unwrap();
        let loaded = manifest::load(&[Source::new("rollout.json", text)]);
        let mut problems = loaded.problems;
        problems.extend(validate::validate(&loaded.set, &options));
        // References are to objects not passed in; Argo's ValidateRollout has none.
        let ours: Vec<String> = problems
            .iter()
            .filter(|p| p.is_error() && p.rule != Rule::Reference)
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        // The one deliberate difference (docs/traffic.md, "Differs from Argo"): setHeaderRoute
        // with NGINX, which rollout-runner carries out as a canary-by-header Ingress.
        let nginx = !rollout["spec"]["strategy"]["canary"]["trafficRouting"]["nginx"].is_null();
        let extension = nginx
            && ours.is_empty()
            && theirs.iter().all(|e| {
                e.ends_with(
                    "SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix",
                )
            });
        if ours.is_empty() != theirs.is_empty() && !extension {
            disagreements.push(format!("{rollout}: ours {ours:?}, Argo {theirs:?}"));
        }
    }
    assert_agree("rollouts' validation verdicts", cases, seed, disagreements);
}
