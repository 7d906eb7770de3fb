//! Argo's replica arithmetic, as small pure functions (`utils/replicaset/canary.go` and
//! `replicaset.go`): which step is current, what weight it asks for, and how many pods the
//! canary and stable ReplicaSets should have while honouring maxSurge and maxUnavailable.
//!
//! Worked examples (basic canary, from Argo's doc comment):
//!
//! | replicas | weight | canary | stable | maxUnavailable | maxSurge | result (canary, stable) |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | 10 | 10 | 0 | 10 | 1 | 1 | (1, 9) |
//! | 10 | 30 | 0 | 10 | 0 | 3 | (3, 10) |
//! | 10 | 30 | 0 | 10 | 5 | 0 | (0, 7) |
//! | 1 | 5 | 0 | 1 | 0 | 1 | (1, 1) |

use rollout_runner_api::crd::{
    CanaryStep, IntOrString, RolloutSpec, RolloutStatus, SetCanaryScale, TrafficWeights,
    scaled_value,
};
use rollout_runner_api::observed::ReplicaSetState;

/// Resolve maxSurge (rounded up) and maxUnavailable (rounded down) against the desired count;
/// when both come out 0, maxUnavailable becomes 1 so a rollout can always make progress.
pub fn resolve_fenceposts(
    max_surge: &IntOrString,
    max_unavailable: &IntOrString,
    desired: i32,
) -> (i32, i32) {
    let surge = scaled_value(max_surge, desired, true).unwrap_or(0);
    let mut unavailable = scaled_value(max_unavailable, desired, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// maxSurge in pods (0 for blue-green).
pub fn max_surge(spec: &RolloutSpec) -> i32 {
    let Some(canary) = spec.canary() else {
        return 0;
    };
    resolve_fenceposts(
        &canary.max_surge_or_default(),
        &canary.max_unavailable_or_default(),
        spec.replicas_or_default(),
    )
    .0
}

/// maxUnavailable in pods, capped at `spec.replicas`.
pub fn max_unavailable(spec: &RolloutSpec) -> i32 {
    let replicas = spec.replicas_or_default();
    if replicas == 0 {
        return 0;
    }
    let unavailable = if let Some(canary) = spec.canary() {
        resolve_fenceposts(
            &canary.max_surge_or_default(),
            &canary.max_unavailable_or_default(),
            replicas,
        )
        .1
    } else {
        let value = spec
            .blue_green()
            .and_then(|bg| bg.max_unavailable.clone())
            .unwrap_or_else(|| IntOrString::String("25".into()));
        scaled_value(&value, replicas, false).unwrap_or(0)
    };
    unavailable.min(replicas)
}

/// The current canary step and its index. The index is `None` without steps; the step is
/// `None` once every step has run (index == number of steps).
pub fn current_step<'a>(
    spec: &'a RolloutSpec,
    status: &RolloutStatus,
) -> (Option<&'a CanaryStep>, Option<i32>) {
    let steps = spec.steps();
    if spec.canary().is_none() || steps.is_empty() {
        return (None, None);
    }
    let index = status.current_step_index.unwrap_or(0);
    let step = usize::try_from(index).ok().and_then(|i| steps.get(i));
    (step, Some(index))
}

/// Argo's `GetCurrentSetWeight`: 0 when aborted; the max weight after the last step; else the
/// most recent `setWeight` at or before the current step (0 if none).
pub fn current_set_weight(spec: &RolloutSpec, status: &RolloutStatus) -> i32 {
    if status.abort {
        return 0;
    }
    let (step, index) = current_step(spec, status);
    let (Some(_), Some(index)) = (step, index) else {
        return spec.max_traffic_weight();
    };
    steps_up_to(spec, index)
        .rev()
        .find_map(|step| step.set_weight)
        .unwrap_or(0)
}

/// Steps 0..=index, in order.
fn steps_up_to(spec: &RolloutSpec, index: i32) -> impl DoubleEndedIterator<Item = &CanaryStep> {
    let end = usize::try_from(index).map(|i| i + 1).unwrap_or(0);
    spec.steps().iter().take(end)
}

/// The `setCanaryScale` in effect, if any (traffic routing only; a later
/// `matchTrafficWeight: true` cancels it; ignored on abort unless the canary is kept up with
/// `abortScaleDownDelaySeconds: 0`).
pub fn set_canary_scale_in_effect<'a>(
    spec: &'a RolloutSpec,
    status: &RolloutStatus,
) -> Option<&'a SetCanaryScale> {
    spec.traffic_routing()?;
    if status.abort && abort_scale_down_delay(spec).0.is_some() {
        return None;
    }
    let (Some(_), Some(index)) = current_step(spec, status) else {
        return None;
    };
    for step in steps_up_to(spec, index).rev() {
        if let Some(scale) = &step.set_canary_scale {
            if scale.match_traffic_weight {
                return None;
            }
            return Some(scale);
        }
    }
    None
}

/// Argo's `GetCanaryReplicasOrWeight`: an explicit canary replica count, or a weight.
pub fn canary_replicas_or_weight(spec: &RolloutSpec, status: &RolloutStatus) -> (Option<i32>, i32) {
    let max = spec.max_traffic_weight();
    if status.promote_full
        || status.stable_rs.is_empty()
        || status.current_pod_hash == status.stable_rs
    {
        return (None, max);
    }
    if let Some(scale) = set_canary_scale_in_effect(spec, status) {
        if let Some(replicas) = scale.replicas {
            return (Some(replicas), 0);
        }
        if let Some(weight) = scale.weight {
            return (None, weight);
        }
    }
    (None, current_set_weight(spec, status))
}

/// The canary and stable counts that best approximate `weight` percent of `replicas`, allowing
/// one extra pod when maxSurge permits. A weight strictly between 0 and 100 never rounds the
/// canary or the stable to 0 pods when there is more than one pod to share.
pub fn approximate_weighted_counts(replicas: i32, weight: i32, max_surge: i32) -> (i32, i32) {
    if replicas == 0 {
        return (0, 0);
    }
    let product = i64::from(replicas) * i64::from(weight);
    let ceil = i32::try_from((product + 99).div_euclid(100)).unwrap_or(i32::MAX);
    let floor = i32::try_from(product.div_euclid(100)).unwrap_or(i32::MAX);
    let tied = |total: i32| (i64::from(total) * i64::from(weight)).rem_euclid(100) == 50;
    let zero_allowed = weight == 100 || weight == 0 || (replicas == 1 && max_surge == 0);

    let mut options: Vec<(i32, i32)> = Vec::new();
    if ceil < replicas || zero_allowed {
        options.push((ceil, replicas));
    }
    if !tied(replicas) && (floor != 0 || zero_allowed) {
        options.push((floor, replicas));
    }
    if max_surge > 0 {
        options.push((ceil, replicas + 1));
        if !tied(replicas + 1) && (floor != 0 || zero_allowed) {
            options.push((floor, replicas + 1));
        }
    }
    let delta = |(canary, total): (i32, i32)| {
        (f64::from(canary) * 100.0 / f64::from(total) - f64::from(weight)).abs()
    };
    let Some(mut best) = options.first().copied() else {
        return (0, replicas);
    };
    for option in options.into_iter().skip(1) {
        if delta(option) < delta(best) {
            best = option;
        }
    }
    (best.0, best.1 - best.0)
}

/// `spec.replicas` scaled to `weight` out of `max_weight` (`maxTrafficWeight`), rounding up:
/// Argo's `trafficWeightToReplicas`.
pub fn traffic_weight_to_replicas(replicas: i32, weight: i32, max_weight: i32) -> i32 {
    let max_weight = i64::from(max_weight.max(1));
    let product = i64::from(replicas) * i64::from(weight);
    i32::try_from((product + max_weight - 1).div_euclid(max_weight)).unwrap_or(i32::MAX)
}

/// Argo's `CheckMinPodsPerReplicaSet`: raise a non-zero desired count to
/// `minPodsPerReplicaSet` (traffic routing only), capped at `spec.replicas` so that a minimum
/// above the Rollout's size cannot make the controller loop.
pub fn check_min_pods_per_replica_set(spec: &RolloutSpec, count: i32) -> i32 {
    if count == 0 {
        return 0;
    }
    match spec.canary() {
        Some(canary) if canary.traffic_routing.is_some() => canary
            .min_pods_per_replica_set
            .map_or(count, |min| count.max(min.min(spec.replicas_or_default()))),
        _ => count,
    }
}

fn stable_exists(new_rs: Option<&ReplicaSetState>, stable_rs: Option<&ReplicaSetState>) -> bool {
    match (new_rs, stable_rs) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(new), Some(stable)) => new.name != stable.name,
    }
}

fn spec_total(sets: &[&ReplicaSetState]) -> i32 {
    sets.iter().map(|rs| rs.spec_replicas).sum()
}

/// Replicas to count as "there" for a scale-down decision: its spec when it is already above
/// availability would suggest, or when availability may be ignored.
fn replicas_for_scale_down(rs: Option<&ReplicaSetState>, ignore_availability: bool) -> i32 {
    match rs {
        None => 0,
        Some(rs) if rs.spec_replicas < rs.available_replicas => rs.spec_replicas,
        Some(rs) if ignore_availability => rs.spec_replicas,
        Some(rs) => rs.available_replicas,
    }
}

fn scale_down_count_for(
    drain: Option<&ReplicaSetState>,
    desired: i32,
    scale_down: i32,
    current: i32,
) -> i32 {
    match drain {
        Some(rs) if rs.spec_replicas > desired => desired.max(rs.spec_replicas - scale_down),
        _ => current,
    }
}

/// Keep the pair within maxSurge and above maxUnavailable after a scale-down decision.
fn adjust_within_limits(
    drain: Option<&ReplicaSetState>,
    adjust: Option<&ReplicaSetState>,
    mut drain_count: i32,
    mut adjust_count: i32,
    max_total: i32,
    min_available: i32,
) -> (i32, i32) {
    let mut over_limit = (adjust_count + drain_count - max_total).max(0);
    let mut total_available = 0;
    if let Some(drain) = drain {
        total_available += drain.available_replicas.min(drain_count);
    }
    if let Some(adjust) = adjust {
        adjust_count -= over_limit;
        total_available += adjust.available_replicas.min(adjust_count);
        let extra_available = (adjust.available_replicas - adjust_count).max(0);
        let still_needed = (min_available - total_available).max(0);
        adjust_count += extra_available.min(still_needed);
        over_limit = (adjust_count + drain_count - max_total).max(0);
        drain_count -= over_limit;
    }
    (drain_count, adjust_count)
}

/// Argo's `CalculateReplicaCountsForBasicCanary`: (canary, stable) replicas for the next
/// scaling move of a canary without traffic routing. Scales the stable up before the canary,
/// scales older ReplicaSets down before either, and never goes above `replicas + maxSurge` or
/// below `replicas - maxUnavailable` available.
pub fn basic_canary_counts(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    new_rs: Option<&ReplicaSetState>,
    stable_rs: Option<&ReplicaSetState>,
    other_rss: &[&ReplicaSetState],
) -> (i32, i32) {
    let replicas = spec.replicas_or_default();
    let (_, weight) = canary_replicas_or_weight(spec, status);
    let surge = max_surge(spec);
    let (mut desired_new, mut desired_stable) =
        approximate_weighted_counts(replicas, weight, surge);

    let mut new_count = new_rs.map_or(0, |rs| rs.spec_replicas);
    let scale_stable = stable_exists(new_rs, stable_rs);
    let mut stable_count = 0;
    let stable = if scale_stable { stable_rs } else { None };
    if let Some(stable) = stable {
        stable_count = stable.spec_replicas;
    } else {
        desired_new = replicas;
        desired_stable = 0;
    }

    let max_total = replicas + surge;
    let mut all: Vec<&ReplicaSetState> = other_rss.to_vec();
    all.extend(new_rs);
    all.extend(stable);
    let mut scale_up = max_total - spec_total(&all);

    if let Some(stable) = stable
        && stable.spec_replicas < desired_stable
        && scale_up > 0
    {
        if stable.spec_replicas + scale_up < desired_stable {
            stable_count = stable.spec_replicas + scale_up;
            scale_up = 0;
        } else {
            stable_count = desired_stable;
            scale_up -= desired_stable - stable.spec_replicas;
        }
    }
    if let Some(new) = new_rs
        && new.spec_replicas < desired_new
        && scale_up > 0
    {
        new_count = (new.spec_replicas + scale_up).min(desired_new);
    }

    if spec_total(other_rss) > 0 {
        // Older ReplicaSets are scaled down first.
        return (new_count, stable_count);
    }

    let min_available = replicas - max_unavailable(spec);
    let increasing = new_rs.is_none_or(|rs| desired_new >= rs.spec_replicas);
    let to_scale_down = replicas_for_scale_down(new_rs, !increasing)
        + replicas_for_scale_down(stable_rs, increasing);
    if to_scale_down <= min_available {
        return (new_count, stable_count);
    }
    let scale_down = to_scale_down - min_available;
    if !increasing {
        new_count = scale_down_count_for(new_rs, desired_new, scale_down, new_count);
        (new_count, stable_count) = adjust_within_limits(
            new_rs,
            stable_rs,
            new_count,
            stable_count,
            max_total,
            min_available,
        );
    } else if scale_stable {
        stable_count = scale_down_count_for(stable_rs, desired_stable, scale_down, stable_count);
        (stable_count, new_count) = adjust_within_limits(
            stable_rs,
            new_rs,
            stable_count,
            new_count,
            max_total,
            min_available,
        );
    }
    (new_count, stable_count)
}

/// Argo's `CalculateReplicaCountsForTrafficRoutedCanary`: (canary, stable) replicas with a
/// traffic router. The stable stays at 100% unless `dynamicStableScale`, which uses the larger
/// of the desired and the current (recorded) weights so pods never drop before traffic does.
pub fn traffic_routed_canary_counts(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    weights: Option<&TrafficWeights>,
) -> (i32, i32) {
    let replicas = spec.replicas_or_default();
    let max = spec.max_traffic_weight();
    let (explicit, weight) = canary_replicas_or_weight(spec, status);
    let mut canary = match explicit {
        Some(count) => count,
        None => {
            check_min_pods_per_replica_set(spec, traffic_weight_to_replicas(replicas, weight, max))
        }
    };
    let dynamic = spec.canary().is_some_and(|c| c.dynamic_stable_scale);
    if !dynamic {
        return (canary, replicas);
    }
    let mut stable = traffic_weight_to_replicas(replicas, max - weight, max);
    if let Some(weights) = weights {
        stable = stable.max(traffic_weight_to_replicas(
            replicas,
            weights.stable.weight,
            max,
        ));
        if status.abort {
            canary = canary.max(traffic_weight_to_replicas(
                replicas,
                weights.canary.weight,
                max,
            ));
        }
    }
    (
        check_min_pods_per_replica_set(spec, canary),
        check_min_pods_per_replica_set(spec, stable),
    )
}

/// Whether the canary meets the replica progress threshold (default: all desired available).
fn canary_replicas_sufficient(spec: &RolloutSpec, rs: &ReplicaSetState, desired: i32) -> bool {
    let threshold = spec
        .canary()
        .and_then(|c| c.replica_progress_threshold.as_ref());
    match threshold {
        Some(t) if desired > 0 => {
            let needed =
                if t.type_.eq_ignore_ascii_case("pods") || t.type_.eq_ignore_ascii_case("pod") {
                    t.value.min(desired)
                } else {
                    traffic_weight_to_replicas(desired, t.value, 100)
                };
            rs.spec_replicas == desired && rs.available_replicas >= needed
        }
        _ => rs.spec_replicas == desired && rs.available_replicas == desired,
    }
}

/// Argo's `AtDesiredReplicaCountsForCanary`: the canary has its desired pods available, the
/// stable has exactly its desired pods (unless dynamic scaling), and for a basic canary no
/// older ReplicaSet still has available pods.
pub fn at_desired_replica_counts(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    new_rs: Option<&ReplicaSetState>,
    stable_rs: Option<&ReplicaSetState>,
    other_rss: &[&ReplicaSetState],
    weights: Option<&TrafficWeights>,
) -> bool {
    let routed = spec.traffic_routing().is_some();
    let (desired_new, desired_stable) = if routed {
        traffic_routed_canary_counts(spec, status, weights)
    } else {
        basic_canary_counts(spec, status, new_rs, stable_rs, other_rss)
    };
    let Some(new) = new_rs else {
        return false;
    };
    if !canary_replicas_sufficient(spec, new, desired_new) {
        return false;
    }
    let dynamic = spec.canary().is_some_and(|c| c.dynamic_stable_scale);
    if !routed || !dynamic {
        let created = stable_rs
            .is_some_and(|rs| rs.spec_replicas == desired_stable && rs.replicas == desired_stable);
        if !created {
            return false;
        }
    }
    if !routed
        && other_rss
            .iter()
            .map(|rs| rs.available_replicas)
            .sum::<i32>()
            != 0
    {
        return false;
    }
    true
}

/// The abort scale-down delay in seconds (`None`: never scale down) and whether the user set it.
/// Basic canaries get `Some(0)`: no delay, scale down right away within the surge budget.
pub fn abort_scale_down_delay(spec: &RolloutSpec) -> (Option<i64>, bool) {
    if let Some(bg) = spec.blue_green() {
        return match bg.abort_scale_down_delay_seconds {
            Some(0) => (None, true),
            Some(seconds) => (Some(i64::from(seconds)), true),
            None => (
                Some(i64::from(
                    rollout_runner_api::crd::DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS,
                )),
                false,
            ),
        };
    }
    if let Some(canary) = spec.canary()
        && canary.traffic_routing.is_some()
    {
        return match canary.abort_scale_down_delay_seconds {
            Some(0) => (None, true),
            Some(seconds) => (Some(i64::from(seconds)), true),
            None => (
                Some(i64::from(
                    rollout_runner_api::crd::DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS,
                )),
                false,
            ),
        };
    }
    (Some(0), false)
}

/// The scale-down delay after a switch: blue-green (default 30 s) and routed canaries
/// (default 30 s); 0 for a basic canary.
pub fn scale_down_delay_seconds(spec: &RolloutSpec) -> i64 {
    if let Some(bg) = spec.blue_green() {
        return i64::from(bg.scale_down_delay_seconds_or_default());
    }
    spec.canary()
        .map_or(0, |c| i64::from(c.scale_down_delay_seconds_or_default()))
}

/// How many old ReplicaSets may wait for their scale-down deadline at once.
pub fn scale_down_revision_limit(spec: &RolloutSpec) -> i32 {
    spec.blue_green()
        .and_then(|bg| bg.scale_down_delay_revision_limit)
        .or_else(|| {
            spec.canary()
                .and_then(|c| c.scale_down_delay_revision_limit)
        })
        .unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use rollout_runner_api::crd::{
        CanaryStrategy, POD_TEMPLATE_HASH_LABEL, RolloutStrategy, RolloutTrafficRouting,
        WeightDestination,
    };

    fn rs(name: &str, spec: i32, available: i32) -> ReplicaSetState {
        ReplicaSetState {
            name: name.into(),
            labels: BTreeMap::from([(POD_TEMPLATE_HASH_LABEL.to_string(), name.to_string())]),
            annotations: BTreeMap::new(),
            created_at: jiff::Timestamp::UNIX_EPOCH,
            spec_replicas: spec,
            replicas: spec,
            ready_replicas: available,
            available_replicas: available,
            min_ready_seconds: 0,
            template: Default::default(),
            deleting: false,
            replica_failure: None,
        }
    }

    fn int(i: i32) -> IntOrString {
        IntOrString::Int(i)
    }

    /// Argo caps `minPodsPerReplicaSet` at `spec.replicas` (found by the differential test).
    #[test]
    fn min_pods_per_replica_set_is_capped_at_the_rollout_size() {
        let spec = |replicas: i32, min: i32| RolloutSpec {
            replicas: Some(replicas),
            strategy: RolloutStrategy {
                canary: Some(CanaryStrategy {
                    min_pods_per_replica_set: Some(min),
                    traffic_routing: Some(RolloutTrafficRouting::default()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        for (replicas, min, count, want) in [(1, 2, 1, 1), (5, 3, 1, 3), (2, 3, 1, 2), (4, 3, 0, 0)]
        {
            assert_eq!(
                check_min_pods_per_replica_set(&spec(replicas, min), count),
                want,
                "replicas {replicas}, minPodsPerReplicaSet {min}, count {count}"
            );
        }
    }

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    struct Setup {
        replicas: i32,
        weight: i32,
        surge: IntOrString,
        unavailable: IntOrString,
        scale: Option<SetCanaryScale>,
        routed: bool,
    }

    fn rollout(s: &Setup) -> (RolloutSpec, RolloutStatus) {
        let spec = RolloutSpec {
            replicas: Some(s.replicas),
            strategy: RolloutStrategy {
                canary: Some(CanaryStrategy {
                    max_surge: Some(s.surge.clone()),
                    max_unavailable: Some(s.unavailable.clone()),
                    steps: vec![CanaryStep {
                        set_weight: Some(s.weight),
                        set_canary_scale: s.scale.clone(),
                        ..Default::default()
                    }],
                    traffic_routing: s.routed.then(RolloutTrafficRouting::default),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let status = RolloutStatus {
            stable_rs: "stable".into(),
            current_pod_hash: "canary".into(),
            ..Default::default()
        };
        (spec, status)
    }

    fn scale(replicas: Option<i32>, weight: Option<i32>, match_traffic: bool) -> SetCanaryScale {
        SetCanaryScale {
            replicas,
            weight,
            match_traffic_weight: match_traffic,
        }
    }

    /// Argo's `TestCalculateReplicaCountsForCanary`, case by case.
    #[test]
    fn replica_counts_match_argo() {
        struct Case {
            name: &'static str,
            replicas: i32,
            weight: i32,
            surge: IntOrString,
            unavailable: IntOrString,
            promote_full: bool,
            stable: (i32, i32),
            canary: (i32, i32),
            expected: (i32, i32), // (stable, canary)
            older: Option<(i32, i32)>,
            scale: Option<SetCanaryScale>,
            routed: bool,
            abort_delay: Option<i32>,
            abort: bool,
            min_pods: Option<i32>,
        }
        let base = |name, replicas, weight, surge, unavailable, stable, canary, expected| Case {
            name,
            replicas,
            weight,
            surge,
            unavailable,
            promote_full: false,
            stable,
            canary,
            expected,
            older: None,
            scale: None,
            routed: false,
            abort_delay: None,
            abort: false,
            min_pods: None,
        };
        let cases = vec![
            base(
                "extra available ignored",
                10,
                100,
                int(3),
                int(0),
                (7, 8),
                (6, 3),
                (7, 6),
            ),
            base(
                "max surge int scales up canary",
                10,
                20,
                int(2),
                int(0),
                (10, 10),
                (0, 0),
                (10, 2),
            ),
            base(
                "max surge pct scales up canary",
                10,
                20,
                pct("20%"),
                int(0),
                (10, 10),
                (0, 0),
                (10, 2),
            ),
            base(
                "scale down extra stable",
                10,
                20,
                pct("20%"),
                int(0),
                (10, 10),
                (2, 2),
                (8, 2),
            ),
            base(
                "not past max surge",
                10,
                30,
                int(2),
                int(0),
                (10, 10),
                (0, 0),
                (10, 2),
            ),
            base(
                "max unavailable int",
                10,
                20,
                int(0),
                int(2),
                (10, 10),
                (0, 0),
                (8, 0),
            ),
            base(
                "max unavailable pct",
                10,
                20,
                int(0),
                pct("20%"),
                (10, 10),
                (0, 0),
                (8, 0),
            ),
            base(
                "not past max unavailable",
                10,
                30,
                int(0),
                int(2),
                (10, 10),
                (0, 0),
                (8, 0),
            ),
            base(
                "surge and unavailable",
                10,
                50,
                int(2),
                int(1),
                (10, 10),
                (0, 0),
                (9, 2),
            ),
            base(
                "weight 0 scales canary to 0",
                10,
                0,
                int(1),
                int(1),
                (10, 10),
                (1, 1),
                (10, 0),
            ),
            base(
                "weight 100 scales stable to 0",
                10,
                100,
                int(1),
                int(1),
                (1, 1),
                (10, 10),
                (0, 10),
            ),
            base(
                "no zero canary on non-zero weight",
                1,
                20,
                int(1),
                int(0),
                (1, 1),
                (0, 0),
                (1, 1),
            ),
            base(
                "no zero canary on non-100 weight",
                1,
                90,
                int(1),
                int(0),
                (1, 1),
                (0, 0),
                (1, 1),
            ),
            Case {
                older: Some((3, 3)),
                ..base(
                    "scale up stable before canary",
                    10,
                    30,
                    int(1),
                    int(0),
                    (1, 1),
                    (0, 0),
                    (7, 1),
                )
            },
            base(
                "scale down canary and stable",
                10,
                30,
                int(0),
                int(3),
                (8, 5),
                (4, 4),
                (7, 3),
            ),
            base(
                "scale down stable and canary available",
                10,
                100,
                int(1),
                int(0),
                (10, 2),
                (10, 8),
                (2, 9),
            ),
            Case {
                older: Some((3, 3)),
                ..base(
                    "older first",
                    10,
                    30,
                    int(0),
                    int(1),
                    (8, 6),
                    (4, 2),
                    (8, 4),
                )
            },
            base(
                "uneven divisor within surge",
                10,
                5,
                int(0),
                int(1),
                (10, 10),
                (0, 0),
                (9, 0),
            ),
            base(
                "uneven divisor within surge 2",
                10,
                5,
                int(0),
                int(1),
                (9, 9),
                (0, 0),
                (9, 1),
            ),
            base(
                "both zero percent gives unavailable 1",
                10,
                10,
                pct("0%"),
                pct("0%"),
                (10, 10),
                (0, 0),
                (9, 0),
            ),
            Case {
                scale: Some(scale(Some(9), None, false)),
                routed: true,
                ..base(
                    "setCanaryScale replicas",
                    1,
                    100,
                    pct("25"),
                    pct("25"),
                    (1, 1),
                    (0, 0),
                    (1, 9),
                )
            },
            Case {
                scale: Some(scale(None, Some(200), false)),
                routed: true,
                ..base(
                    "setCanaryScale weight",
                    4,
                    100,
                    pct("25"),
                    pct("25"),
                    (4, 4),
                    (0, 0),
                    (4, 8),
                )
            },
            Case {
                scale: Some(scale(Some(9), Some(100), true)),
                routed: true,
                ..base(
                    "matchTrafficWeight",
                    10,
                    20,
                    pct("20%"),
                    int(0),
                    (10, 10),
                    (0, 0),
                    (10, 2),
                )
            },
            Case {
                scale: Some(scale(Some(9), Some(100), false)),
                ..base(
                    "setCanaryScale ignored without routing",
                    10,
                    20,
                    pct("20%"),
                    int(0),
                    (10, 10),
                    (0, 0),
                    (10, 2),
                )
            },
            base(
                "surge when stable unavailable",
                4,
                100,
                int(1),
                int(0),
                (4, 1),
                (0, 0),
                (4, 1),
            ),
            base(
                "down to maxUnavailable within surge",
                3,
                99,
                int(0),
                int(2),
                (3, 3),
                (0, 0),
                (1, 0),
            ),
            base(
                "down to maxUnavailable within surge 2",
                3,
                99,
                int(0),
                int(2),
                (1, 1),
                (0, 0),
                (1, 2),
            ),
            base(
                "honor maxUnavailable, stable unavailable",
                4,
                100,
                int(1),
                int(0),
                (4, 1),
                (1, 1),
                (3, 1),
            ),
            base("abort part 1", 4, 0, int(1), int(0), (0, 0), (4, 4), (1, 4)),
            base("abort part 2", 4, 0, int(1), int(0), (1, 0), (4, 4), (1, 4)),
            base("abort part 3", 4, 0, int(1), int(0), (1, 1), (4, 4), (1, 3)),
            Case {
                promote_full: true,
                ..base(
                    "promote full ignores weight",
                    4,
                    1,
                    int(4),
                    int(4),
                    (4, 4),
                    (0, 0),
                    (0, 4),
                )
            },
            Case {
                promote_full: true,
                ..base(
                    "promote full honours surge",
                    4,
                    1,
                    int(3),
                    int(0),
                    (4, 4),
                    (0, 0),
                    (4, 3),
                )
            },
            Case {
                scale: Some(scale(Some(1), None, false)),
                routed: true,
                abort_delay: Some(0),
                abort: true,
                ..base(
                    "abort with delay 0 keeps scale",
                    1,
                    0,
                    pct("25"),
                    pct("25"),
                    (1, 1),
                    (1, 1),
                    (1, 1),
                )
            },
            Case {
                scale: Some(scale(Some(1), None, false)),
                routed: true,
                abort_delay: Some(30),
                abort: true,
                ..base(
                    "abort with delay scales down",
                    1,
                    0,
                    pct("25"),
                    pct("25"),
                    (1, 1),
                    (1, 1),
                    (1, 0),
                )
            },
            Case {
                routed: true,
                min_pods: Some(2),
                ..base(
                    "minPodsPerReplicaSet",
                    10,
                    5,
                    pct("25"),
                    pct("25"),
                    (10, 10),
                    (0, 0),
                    (10, 2),
                )
            },
        ];
        for case in cases {
            let (mut spec, mut status) = rollout(&Setup {
                replicas: case.replicas,
                weight: case.weight,
                surge: case.surge.clone(),
                unavailable: case.unavailable.clone(),
                scale: case.scale.clone(),
                routed: case.routed,
            });
            status.promote_full = case.promote_full;
            status.abort = case.abort;
            let canary_strategy = spec.strategy.canary.as_mut().unwrap();
            canary_strategy.abort_scale_down_delay_seconds = case.abort_delay;
            canary_strategy.min_pods_per_replica_set = case.min_pods;
            let stable = rs("stable", case.stable.0, case.stable.1);
            let canary = rs("canary", case.canary.0, case.canary.1);
            let older = case.older.map(|(s, a)| rs("older", s, a));
            let others: Vec<&ReplicaSetState> = older.iter().collect();
            let (new_count, stable_count) = if case.routed {
                traffic_routed_canary_counts(&spec, &status, None)
            } else {
                basic_canary_counts(&spec, &status, Some(&canary), Some(&stable), &others)
            };
            assert_eq!(
                (stable_count, new_count),
                case.expected,
                "{}: (stable, canary)",
                case.name
            );
        }
    }

    /// Argo's `TestApproximateWeightedNewStableReplicaCounts`.
    #[test]
    fn weight_approximation_matches_argo() {
        #[rustfmt::skip]
        let cases = [
            (0, 0, 0, 0, 0), (0, 50, 0, 0, 0), (0, 100, 0, 0, 0),
            (0, 0, 1, 0, 0), (0, 50, 1, 0, 0), (0, 100, 1, 0, 0),
            (1, 0, 0, 0, 1), (1, 1, 0, 0, 1), (1, 49, 0, 0, 1), (1, 50, 0, 1, 0), (1, 99, 0, 1, 0), (1, 100, 0, 1, 0),
            (1, 0, 1, 0, 1), (1, 1, 1, 1, 1), (1, 49, 1, 1, 1), (1, 50, 1, 1, 1), (1, 99, 1, 1, 1), (1, 100, 1, 1, 0),
            (2, 0, 0, 0, 2), (2, 1, 0, 1, 1), (2, 50, 0, 1, 1), (2, 99, 0, 1, 1), (2, 100, 0, 2, 0),
            (2, 0, 1, 0, 2), (2, 1, 1, 1, 2), (2, 50, 1, 1, 1), (2, 99, 1, 2, 1), (2, 100, 1, 2, 0),
            (3, 10, 0, 1, 2), (3, 25, 0, 1, 2), (3, 33, 0, 1, 2), (3, 34, 0, 1, 2), (3, 49, 0, 1, 2), (3, 50, 0, 2, 1),
            (3, 10, 1, 1, 3), (3, 25, 1, 1, 3), (3, 33, 1, 1, 2), (3, 34, 1, 1, 2), (3, 49, 1, 2, 2), (3, 50, 1, 2, 2),
            (10, 0, 1, 0, 10), (10, 1, 0, 1, 9), (10, 14, 0, 1, 9), (10, 15, 0, 2, 8), (10, 16, 0, 2, 8), (10, 99, 0, 9, 1), (10, 100, 1, 10, 0),
            (10, 0, 1, 0, 10), (10, 1, 1, 1, 10), (10, 18, 1, 2, 9), (10, 19, 1, 2, 9), (10, 20, 1, 2, 8),
            (10, 23, 1, 2, 8), (10, 24, 1, 3, 8), (10, 25, 1, 3, 8), (10, 99, 1, 10, 1), (10, 100, 1, 10, 0),
        ];
        for (replicas, weight, surge, canary, stable) in cases {
            assert_eq!(
                approximate_weighted_counts(replicas, weight, surge),
                (canary, stable),
                "replicas {replicas} weight {weight} surge {surge}"
            );
        }
    }

    #[test]
    fn new_deployment_goes_straight_to_full_scale() {
        let (spec, status) = rollout(&Setup {
            replicas: 10,
            weight: 10,
            surge: int(0),
            unavailable: int(1),
            scale: None,
            routed: false,
        });
        let stable = rs("stable", 10, 0);
        let same = rs("stable", 10, 0);
        assert_eq!(
            basic_canary_counts(&spec, &status, Some(&same), Some(&stable), &[]),
            (10, 0)
        );
        let new = rs("stable", 9, 9);
        assert_eq!(
            basic_canary_counts(&spec, &status, Some(&new), None, &[]),
            (10, 0)
        );
    }

    #[test]
    fn dynamic_stable_scale_matches_argo() {
        let weights = |canary, stable| TrafficWeights {
            canary: WeightDestination {
                weight: canary,
                ..Default::default()
            },
            stable: WeightDestination {
                weight: stable,
                ..Default::default()
            },
            ..Default::default()
        };
        let setup = |weight| {
            let (mut spec, status) = rollout(&Setup {
                replicas: 10,
                weight,
                surge: int(0),
                unavailable: int(1),
                scale: None,
                routed: true,
            });
            spec.strategy.canary.as_mut().unwrap().dynamic_stable_scale = true;
            (spec, status)
        };
        let (spec, status) = setup(10);
        assert_eq!(
            traffic_routed_canary_counts(&spec, &status, Some(&weights(10, 90))),
            (1, 9)
        );
        let (spec, status) = setup(20);
        assert_eq!(
            traffic_routed_canary_counts(&spec, &status, Some(&weights(10, 90))),
            (2, 9)
        );
        let (spec, mut status) = setup(20);
        status.abort = true;
        assert_eq!(
            traffic_routed_canary_counts(&spec, &status, Some(&weights(20, 80))),
            (2, 10)
        );
        assert_eq!(
            traffic_routed_canary_counts(&spec, &status, Some(&weights(10, 90))),
            (1, 10)
        );
        let (spec, status) = rollout(&Setup {
            replicas: 10,
            weight: 10,
            surge: int(0),
            unavailable: int(1),
            scale: None,
            routed: true,
        });
        assert_eq!(traffic_routed_canary_counts(&spec, &status, None), (1, 10));
    }

    #[test]
    fn traffic_weight_rounds_up_against_the_max_weight() {
        for (weight, max, expected) in [
            (0, 100, 0),
            (20, 100, 2),
            (25, 100, 3),
            (33, 100, 4),
            (99, 100, 10),
            (100, 100, 10),
            (5, 1000, 1),
            (250, 1000, 3),
            (500, 1000, 5),
            (1000, 1000, 10),
            (1, 3, 4),
        ] {
            assert_eq!(
                traffic_weight_to_replicas(10, weight, max),
                expected,
                "weight {weight} of {max}"
            );
        }
    }

    #[test]
    fn fenceposts_match_kubernetes() {
        // (surge, unavailable, desired) -> (surge, unavailable)
        assert_eq!(resolve_fenceposts(&pct("0%"), &pct("1%"), 2), (0, 1));
        assert_eq!(resolve_fenceposts(&pct("1%"), &pct("25%"), 2), (1, 0));
        assert_eq!(resolve_fenceposts(&pct("25"), &pct("25"), 4), (1, 1));
        assert_eq!(resolve_fenceposts(&pct("25"), &pct("25"), 10), (3, 2));
        assert_eq!(resolve_fenceposts(&int(0), &int(0), 10), (0, 1));
    }

    #[test]
    fn set_weight_walks_back_to_the_last_set_weight() {
        let spec = RolloutSpec {
            strategy: RolloutStrategy {
                canary: Some(CanaryStrategy {
                    steps: vec![
                        CanaryStep {
                            set_weight: Some(20),
                            ..Default::default()
                        },
                        CanaryStep {
                            pause: Some(Default::default()),
                            ..Default::default()
                        },
                        CanaryStep {
                            set_weight: Some(50),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let at = |index, abort| RolloutStatus {
            current_step_index: Some(index),
            abort,
            ..Default::default()
        };
        assert_eq!(current_set_weight(&spec, &at(0, false)), 20);
        assert_eq!(current_set_weight(&spec, &at(1, false)), 20);
        assert_eq!(current_set_weight(&spec, &at(2, false)), 50);
        assert_eq!(current_set_weight(&spec, &at(3, false)), 100);
        assert_eq!(current_set_weight(&spec, &at(2, true)), 0);
    }
}
