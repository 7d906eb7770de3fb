//! The rollout phase (`Healthy`, `Progressing`, `Paused`, `Degraded`) and its message, in Argo's
//! exact order of checks (`utils/rollout/rolloututil.go`).

use rollout_runner_api::crd::{RolloutPhase, RolloutSpec, RolloutStatus};

use super::conditions::{Reason, types};

/// Argo's `CalculateRolloutPhase`: the first matching rule wins.
pub fn rollout_phase(spec: &RolloutSpec, status: &RolloutStatus) -> (RolloutPhase, String) {
    // One pass, as Argo's: the first InvalidSpec, aborted or timed-out condition decides.
    for condition in &status.conditions {
        if condition.type_ == types::INVALID_SPEC {
            return (
                RolloutPhase::Degraded,
                format!("{}: {}", Reason::InvalidSpec.as_str(), condition.message),
            );
        }
        if condition.reason == Reason::RolloutAborted.as_str()
            || condition.reason == Reason::ProgressDeadlineExceeded.as_str()
        {
            return (
                RolloutPhase::Degraded,
                format!("{}: {}", condition.reason, condition.message),
            );
        }
    }
    if spec.paused {
        return (RolloutPhase::Paused, "manually paused".into());
    }
    if let Some(pause) = status.pause_conditions.first() {
        return (RolloutPhase::Paused, pause.reason.as_str().into());
    }
    if spec.restart_at.is_some() && spec.restart_at != status.restarted_at {
        return (RolloutPhase::Progressing, "rollout is restarting".into());
    }
    if status.updated_replicas < spec.replicas_or_default() {
        return (
            RolloutPhase::Progressing,
            "more replicas need to be updated".into(),
        );
    }
    if status.available_replicas < status.updated_replicas {
        return (
            RolloutPhase::Progressing,
            "updated replicas are still becoming available".into(),
        );
    }
    let fully_promoted =
        !status.stable_rs.is_empty() && status.stable_rs == status.current_pod_hash;
    if let Some(bg) = spec.blue_green() {
        if status.blue_green.active_selector.is_empty()
            || status.blue_green.active_selector != status.current_pod_hash
        {
            return (
                RolloutPhase::Progressing,
                "active service cutover pending".into(),
            );
        }
        if !fully_promoted {
            let waiting_for_analysis = bg.post_promotion_analysis.is_some()
                && status
                    .blue_green
                    .post_promotion_analysis_run_status
                    .as_ref()
                    .is_none_or(|s| !s.status.is_completed());
            let message = if waiting_for_analysis {
                "waiting for analysis to complete"
            } else {
                "waiting for post-promotion verification to complete"
            };
            return (RolloutPhase::Progressing, message.into());
        }
    } else if let Some(canary) = spec.canary() {
        if canary.traffic_routing.is_none() && status.replicas > status.updated_replicas {
            return (
                RolloutPhase::Progressing,
                "old replicas are pending termination".into(),
            );
        }
        if !fully_promoted {
            return (
                RolloutPhase::Progressing,
                "waiting for all steps to complete".into(),
            );
        }
    }
    (RolloutPhase::Healthy, String::new())
}

/// Argo's client-side `GetRolloutPhase`: what a watcher should believe. Before the controller
/// has observed the latest spec, or while a resume is pending, the stored phase is stale.
pub fn observed_phase(
    generation: Option<i64>,
    spec: &RolloutSpec,
    status: &RolloutStatus,
) -> (RolloutPhase, String) {
    // Argo's `isGenerationObserved`: a non-numeric observedGeneration (a pre-v0.10 hash) or
    // one ahead of the generation counts as observed; no generation is generation 0.
    let generation = generation.unwrap_or(0);
    let observed = status
        .observed_generation
        .parse::<i64>()
        .map_or(true, |observed| observed >= generation);
    if !observed {
        return (
            RolloutPhase::Progressing,
            "waiting for rollout spec update to be observed".into(),
        );
    }
    // Argo's `IsUnpausing` (also while `spec.paused` is set).
    if status.controller_pause && status.pause_conditions.is_empty() {
        return (
            RolloutPhase::Progressing,
            "waiting for rollout to unpause".into(),
        );
    }
    match status.phase {
        Some(phase) => (phase, status.message.clone()),
        None => rollout_phase(spec, status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_runner_api::crd::{
        BlueGreenStrategy, CanaryStrategy, PauseCondition, PauseReason, RolloutCondition,
        RolloutStrategy, Time,
    };

    fn canary(replicas: i32) -> RolloutSpec {
        RolloutSpec {
            replicas: Some(replicas),
            strategy: RolloutStrategy {
                canary: Some(CanaryStrategy::default()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn condition(type_: &str, reason: &str, message: &str) -> RolloutCondition {
        RolloutCondition {
            type_: type_.into(),
            status: "False".into(),
            last_update_time: Time(jiff::Timestamp::UNIX_EPOCH),
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
            reason: reason.into(),
            message: message.into(),
        }
    }

    #[test]
    fn phases_in_argo_order() {
        let spec = canary(3);
        let healthy = RolloutStatus {
            replicas: 3,
            updated_replicas: 3,
            available_replicas: 3,
            stable_rs: "a".into(),
            current_pod_hash: "a".into(),
            ..Default::default()
        };
        assert_eq!(
            rollout_phase(&spec, &healthy),
            (RolloutPhase::Healthy, "".into())
        );

        let mut invalid = healthy.clone();
        invalid
            .conditions
            .push(condition("InvalidSpec", "InvalidSpec", "bad"));
        invalid
            .conditions
            .push(condition("Progressing", "RolloutAborted", "x"));
        assert_eq!(
            rollout_phase(&spec, &invalid),
            (RolloutPhase::Degraded, "InvalidSpec: bad".into())
        );

        let mut aborted = healthy.clone();
        aborted.conditions.push(condition(
            "Progressing",
            "RolloutAborted",
            "Rollout aborted update to revision 2",
        ));
        aborted.pause_conditions.push(PauseCondition {
            reason: PauseReason::CanaryPauseStep,
            start_time: Time(jiff::Timestamp::UNIX_EPOCH),
        });
        assert_eq!(
            rollout_phase(&spec, &aborted),
            (
                RolloutPhase::Degraded,
                "RolloutAborted: Rollout aborted update to revision 2".into()
            )
        );

        let mut paused = healthy.clone();
        paused.pause_conditions.push(PauseCondition {
            reason: PauseReason::CanaryPauseStep,
            start_time: Time(jiff::Timestamp::UNIX_EPOCH),
        });
        assert_eq!(
            rollout_phase(&spec, &paused),
            (RolloutPhase::Paused, "CanaryPauseStep".into())
        );
        let mut manual = spec.clone();
        manual.paused = true;
        assert_eq!(
            rollout_phase(&manual, &paused),
            (RolloutPhase::Paused, "manually paused".into())
        );

        let mut updating = healthy.clone();
        updating.updated_replicas = 1;
        assert_eq!(
            rollout_phase(&spec, &updating).1,
            "more replicas need to be updated"
        );
        let mut becoming = healthy.clone();
        becoming.available_replicas = 2;
        assert_eq!(
            rollout_phase(&spec, &becoming).1,
            "updated replicas are still becoming available"
        );
        let mut old_pods = healthy.clone();
        old_pods.replicas = 4;
        assert_eq!(
            rollout_phase(&spec, &old_pods).1,
            "old replicas are pending termination"
        );
        let mut steps = healthy.clone();
        steps.current_pod_hash = "b".into();
        assert_eq!(
            rollout_phase(&spec, &steps).1,
            "waiting for all steps to complete"
        );
    }

    #[test]
    fn blue_green_cutover_pending() {
        let spec = RolloutSpec {
            replicas: Some(1),
            strategy: RolloutStrategy {
                blue_green: Some(BlueGreenStrategy {
                    active_service: "active".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut status = RolloutStatus {
            replicas: 2,
            updated_replicas: 1,
            available_replicas: 1,
            current_pod_hash: "b".into(),
            stable_rs: "a".into(),
            ..Default::default()
        };
        status.blue_green.active_selector = "a".into();
        assert_eq!(
            rollout_phase(&spec, &status),
            (
                RolloutPhase::Progressing,
                "active service cutover pending".into()
            )
        );
        status.blue_green.active_selector = "b".into();
        assert_eq!(
            rollout_phase(&spec, &status).1,
            "waiting for post-promotion verification to complete"
        );
    }
}
