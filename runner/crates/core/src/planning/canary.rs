//! Canary plans: each step's replica counts and weight from the engine's own arithmetic, fed
//! with the status the rollout has at that step.
//!
//! A basic canary (no traffic routing) moves one ReplicaSet at a time within maxSurge and
//! maxUnavailable; the plan replays those moves with the engine's `basic_canary_counts` until
//! nothing moves, which is exactly where the engine considers a step done. With traffic
//! routing the counts come from `traffic_routed_canary_counts` with the weights the routers
//! hold once the step's traffic has moved.

use crate::engine::replicas;
use crate::engine::step_string;
use rollout_runner_api::crd::{
    CanaryStep, CanaryStrategy, Rollout, RolloutSpec, RolloutStatus, WeightDestination,
};
use rollout_runner_api::observed::ReplicaSetState;

use super::analysis::Context;
use super::traffic::Tracker;
use super::{PausePlan, PlanStep, ReleasePlan, Span, TrafficRoutingPlan};

/// Pods of the new (canary) and the old (stable) version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pods {
    pub(super) canary: i32,
    pub(super) stable: i32,
}

/// A step with nothing filled in yet.
pub(super) fn empty_step(index: usize, kind: &str) -> PlanStep {
    PlanStep {
        index,
        kind: kind.to_string(),
        description: kind.to_string(),
        canary_replicas: 0,
        stable_replicas: 0,
        traffic_weight: 0,
        start: Span::ZERO,
        duration: Span::ZERO,
        waits_for_promotion: false,
        pause: None,
        analysis: None,
        experiment: None,
        header_route: None,
        mirror_route: None,
        background_analysis: false,
        traffic: Vec::new(),
        notes: Vec::new(),
    }
}

/// The status a rollout has while it is at `index`, releasing over a stable version.
pub(super) fn status_at(index: Option<usize>) -> RolloutStatus {
    RolloutStatus {
        stable_rs: "stable".into(),
        current_pod_hash: "canary".into(),
        current_step_index: index.map(|i| i32::try_from(i).unwrap_or(i32::MAX)),
        ..Default::default()
    }
}

pub(super) fn plan(
    rollout: &Rollout,
    canary: &CanaryStrategy,
    context: &Context<'_>,
    plan: &mut ReleasePlan,
) {
    let spec = &rollout.spec;
    let replica_count = spec.replicas_or_default();
    let routing = canary.traffic_routing.as_ref();
    let routed = routing.is_some();
    let dynamic = routed && canary.dynamic_stable_scale;
    let max = spec.max_traffic_weight();
    let min_ready = i64::from(spec.min_ready_seconds_or_default().max(0));
    let steps = spec.steps();

    if let Some(routing) = routing {
        let (canary_service, stable_service) = super::traffic::services(canary);
        plan.traffic_routing = Some(TrafficRoutingPlan {
            routers: routing
                .router_names()
                .iter()
                .map(|s| s.to_string())
                .chain(
                    routing
                        .plugins
                        .keys()
                        .filter(|k| k.as_str() != rollout_runner_api::crd::GATEWAY_API_PLUGIN)
                        .cloned(),
                )
                .collect(),
            max_traffic_weight: max,
            canary_service,
            stable_service,
            managed_routes: routing
                .managed_routes
                .iter()
                .map(|r| r.name.clone())
                .collect(),
            dynamic_stable_scale: dynamic,
        });
    } else {
        plan.max_surge = Some(replicas::max_surge(spec));
        plan.max_unavailable = Some(replicas::max_unavailable(spec));
    }
    if let Some(background) = &canary.analysis {
        let mut analysis = context.analysis(&background.analysis, "background analysis");
        analysis.starting_step =
            Some(usize::try_from(background.starting_step.unwrap_or(0)).unwrap_or(0));
        plan.background_analysis = Some(analysis);
    }
    let background_from = plan
        .background_analysis
        .as_ref()
        .and_then(|a| a.starting_step);

    let mut tracker = Tracker::new(rollout, canary);
    let mut previous = Pods {
        canary: 0,
        stable: replica_count,
    };
    let mut clock = Span::ZERO;
    for (index, step) in steps.iter().enumerate() {
        let what = format!("step {}", index + 1);
        let mut out = empty_step(index, step.kind());
        out.description = step_string(step);
        let status = status_at(Some(index));

        let experiment = step
            .experiment
            .as_ref()
            .map(|e| context.experiment(e, &what));
        // Experiment templates with a weight get their share while the experiment runs.
        let additional: Vec<(String, i32)> = match (&step.experiment, routed) {
            (Some(experiment), true) => experiment
                .templates
                .iter()
                .filter_map(|t| {
                    t.weight
                        .map(|w| (super::traffic::experiment_service(rollout, index, t), w))
                })
                .collect(),
            _ => Vec::new(),
        };
        let (pods, weight, waits) = if routed {
            let (pods, weight) = routed_counts(spec, &status, &additional);
            let waits = i64::from(pods.canary > previous.canary || pods.stable > previous.stable);
            (pods, weight, waits)
        } else {
            let (pods, waits) = settle_basic(spec, &status, previous, min_ready > 0);
            (pods, actual_weight(pods), waits)
        };
        out.canary_replicas = pods.canary;
        out.stable_replicas = pods.stable;
        out.traffic_weight = weight;
        let scaling = Span::exact(waits * min_ready);

        let (own, waits_for_promotion) = if let Some(pause) = &step.pause {
            let seconds = pause.duration_seconds().map(|s| s.max(0));
            out.pause = Some(PausePlan {
                duration_seconds: seconds,
            });
            match seconds {
                Some(seconds) => (Span::exact(seconds), false),
                None => (Span::unbounded(0), true),
            }
        } else if let Some(analysis) = &step.analysis {
            let run = context.analysis(analysis, &what);
            let result = (run.duration, run.runs_until_stopped);
            out.analysis = Some(run);
            result
        } else if let Some((experiment, span)) = experiment {
            out.notes.push(format!(
                "runs {} more pod(s) beside the canary and the stable",
                experiment.templates.iter().map(|t| t.replicas).sum::<i32>()
            ));
            out.experiment = Some(experiment);
            (span, !span.is_bounded())
        } else {
            if step.plugin.is_some() {
                context.warn(format!(
                    "{what}: step plugins are not supported; the plan counts the step as instant"
                ));
            }
            (Span::ZERO, false)
        };
        out.header_route = step.set_header_route.clone();
        out.mirror_route = step.set_mirror_route.clone();
        out.waits_for_promotion = waits_for_promotion;
        out.duration = scaling.then(if waits_for_promotion {
            Span::unbounded(own.min_seconds)
        } else {
            own
        });
        out.background_analysis = background_from.is_some_and(|from| index >= from);
        notes_for(step, &mut out, routed, previous, pods, &status, spec);
        out.traffic = tracker.step(pods, weight, &additional, step);
        out.start = clock;
        clock = clock.then(out.duration);
        previous = pods;
        plan.steps.push(out);
    }

    // Every step done: the canary takes everything, then becomes the stable.
    let index = steps.len();
    let status = status_at((!steps.is_empty()).then_some(index));
    let mut promotion = empty_step(index, "promote");
    promotion.description = "promote".into();
    let (waits, delay) = if routed {
        let (pods, _) = routed_counts(spec, &status, &[]);
        let waits = i64::from(pods.canary > previous.canary);
        promotion.canary_replicas = pods.canary;
        promotion.traffic_weight = max;
        promotion.traffic = tracker.promotion(pods, !steps.is_empty());
        // Only a previous stable with pods waits for its scale-down deadline.
        let delay = if dynamic || replica_count == 0 {
            0
        } else {
            replicas::scale_down_delay_seconds(spec).max(0)
        };
        if delay > 0 {
            promotion.notes.push(format!(
                "the previous stable keeps its {} pod(s) for {} (scaleDownDelaySeconds) after the promotion",
                pods.stable,
                super::format_seconds(delay)
            ));
        }
        (waits, delay)
    } else {
        let (pods, waits) = settle_basic(spec, &status, previous, min_ready > 0);
        promotion.canary_replicas = pods.canary;
        promotion.traffic_weight = 100;
        promotion.traffic = tracker.promotion(pods, !steps.is_empty());
        (waits, 0)
    };
    promotion.stable_replicas = 0;
    promotion.duration = Span::exact(waits * min_ready + delay);
    promotion.start = clock;
    plan.duration = clock.then(promotion.duration);
    plan.promotion = promotion;
}

/// Settled counts and weight with a router: the canary from the step's weight (or
/// setCanaryScale), the routers at the step's weight once canary pods exist, and the stable
/// from that (all of it unless `dynamicStableScale`).
pub(super) fn routed_counts(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    additional: &[(String, i32)],
) -> (Pods, i32) {
    let max = spec.max_traffic_weight();
    let (canary, _) = replicas::traffic_routed_canary_counts(spec, status, None);
    // Argo keeps all traffic on the stable while the canary has no available pod.
    let weight = if canary == 0 {
        0
    } else {
        replicas::current_set_weight(spec, status)
    };
    let extra: i32 = additional.iter().map(|(_, w)| w).sum();
    let weights = rollout_runner_api::crd::TrafficWeights {
        canary: WeightDestination {
            weight,
            ..Default::default()
        },
        stable: WeightDestination {
            weight: max - weight - extra,
            ..Default::default()
        },
        additional: Vec::new(),
        verified: None,
    };
    let (_, stable) = replicas::traffic_routed_canary_counts(spec, status, Some(&weights));
    (Pods { canary, stable }, weight)
}

/// Argo's `ActualWeight` for a canary without routing: the canary's share of available pods.
pub(super) fn actual_weight(pods: Pods) -> i32 {
    let total = pods.canary + pods.stable;
    if total > 0 {
        pods.canary * 100 / total
    } else {
        0
    }
}

fn replica_set(name: &str, count: i32) -> ReplicaSetState {
    ReplicaSetState {
        name: name.into(),
        labels: [(
            rollout_runner_api::crd::POD_TEMPLATE_HASH_LABEL.to_string(),
            name.to_string(),
        )]
        .into(),
        annotations: Default::default(),
        created_at: jiff::Timestamp::UNIX_EPOCH,
        spec_replicas: count,
        replicas: count,
        ready_replicas: count,
        available_replicas: count,
        min_ready_seconds: 0,
        template: Default::default(),
        deleting: false,
        replica_failure: None,
    }
}

fn scale(rs: &mut ReplicaSetState, to: i32, pods_wait: bool) {
    if to < rs.spec_replicas {
        rs.available_replicas = rs.available_replicas.min(to);
        rs.ready_replicas = rs.ready_replicas.min(to);
    } else if !pods_wait {
        rs.available_replicas = to;
        rs.ready_replicas = to;
    }
    rs.spec_replicas = to;
    rs.replicas = to;
}

/// Replay the engine's basic-canary moves at `status` from `from` until nothing moves: one
/// ReplicaSet per reconcile, the stable first. Returns the counts and how many times the moves
/// had to wait for new pods to become available (`pods_wait`: they take `minReadySeconds`).
pub(super) fn settle_basic(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    from: Pods,
    pods_wait: bool,
) -> (Pods, i64) {
    let mut canary = replica_set("canary", from.canary);
    let mut stable = replica_set("stable", from.stable);
    let mut waits = 0;
    // Each move changes a count by at least one pod; this bound is never reached.
    let limit = 8 * (usize::try_from(spec.replicas_or_default()).unwrap_or(0) + 8);
    for _ in 0..limit {
        let (want_canary, want_stable) =
            replicas::basic_canary_counts(spec, status, Some(&canary), Some(&stable), &[]);
        if want_stable != stable.spec_replicas {
            scale(&mut stable, want_stable, pods_wait);
        } else if want_canary != canary.spec_replicas {
            scale(&mut canary, want_canary, pods_wait);
        } else if canary.available_replicas < canary.spec_replicas
            || stable.available_replicas < stable.spec_replicas
        {
            waits += 1;
            canary.available_replicas = canary.spec_replicas;
            stable.available_replicas = stable.spec_replicas;
        } else {
            break;
        }
    }
    (
        Pods {
            canary: canary.spec_replicas,
            stable: stable.spec_replicas,
        },
        waits,
    )
}

fn notes_for(
    step: &CanaryStep,
    out: &mut PlanStep,
    routed: bool,
    previous: Pods,
    pods: Pods,
    status: &RolloutStatus,
    spec: &RolloutSpec,
) {
    if routed {
        let asked = replicas::current_set_weight(spec, status);
        if pods.canary == 0 && asked > 0 {
            out.notes
                .push("no canary pods: the routers keep all traffic on the stable".into());
        }
        if step.set_canary_scale.is_some() {
            out.notes
                .push("scales the canary without changing its traffic weight".into());
        }
        if pods.stable < previous.stable {
            out.notes.push(format!(
                "the stable scales down to {} once the traffic has moved (dynamicStableScale)",
                pods.stable
            ));
        }
    } else if let Some(asked) = step.set_weight {
        let replica_count = spec.replicas_or_default();
        let total = pods.canary + pods.stable;
        if total > 0 && (out.traffic_weight != asked || total != replica_count) {
            out.notes.push(format!(
                "{asked}% of {replica_count} pod(s) rounds to {} canary and {} stable ({}% of the pods)",
                pods.canary, pods.stable, out.traffic_weight
            ));
        }
    }
}
