//! Rollout conditions: Argo's reasons and messages in one place, and the rules that decide when
//! a rollout is progressing, healthy, completed or timed out (`utils/conditions`).

use jiff::Timestamp;

use rollout_runner_api::crd::{
    RolloutCondition, RolloutSpec, RolloutStatus, Time, condition_status,
};

/// Condition types.
pub mod types {
    pub const AVAILABLE: &str = "Available";
    pub const PROGRESSING: &str = "Progressing";
    pub const PAUSED: &str = "Paused";
    pub const HEALTHY: &str = "Healthy";
    pub const COMPLETED: &str = "Completed";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
}

/// Argo's condition and event reasons. Reporters match on these, so they are one enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidSpec,
    Available,
    ReplicaSetUpdated,
    ReplicaSetCreateError,
    NewReplicaSetCreated,
    FoundNewReplicaSet,
    RolloutUpdated,
    RolloutCompleted,
    RolloutNotCompleted,
    RolloutHealthy,
    RolloutAborted,
    RolloutRetry,
    RolloutPaused,
    RolloutResumed,
    ReplicaSetNotAvailable,
    RolloutStepCompleted,
    TrafficWeightUpdated,
    NewReplicaSetAvailable,
    ProgressDeadlineExceeded,
    ScalingReplicaSet,
    SwitchService,
    SkipSteps,
    AnalysisRunRunning,
    AnalysisRunSuccessful,
    AnalysisRunFailed,
    AnalysisRunError,
    AnalysisRunInconclusive,
    AnalysisRunPending,
    ExperimentCreated,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSpec => "InvalidSpec",
            Self::Available => "AvailableReason",
            Self::ReplicaSetUpdated => "ReplicaSetUpdated",
            Self::ReplicaSetCreateError => "ReplicaSetCreateError",
            Self::NewReplicaSetCreated => "NewReplicaSetCreated",
            Self::FoundNewReplicaSet => "FoundNewReplicaSet",
            Self::RolloutUpdated => "RolloutUpdated",
            Self::RolloutCompleted => "RolloutCompleted",
            Self::RolloutNotCompleted => "RolloutNotCompleted",
            Self::RolloutHealthy => "RolloutHealthy",
            Self::RolloutAborted => "RolloutAborted",
            Self::RolloutRetry => "RolloutRetry",
            Self::RolloutPaused => "RolloutPaused",
            Self::RolloutResumed => "RolloutResumed",
            Self::ReplicaSetNotAvailable => "ReplicaSetNotAvailable",
            Self::RolloutStepCompleted => "RolloutStepCompleted",
            Self::TrafficWeightUpdated => "TrafficWeightUpdated",
            Self::NewReplicaSetAvailable => "NewReplicaSetAvailable",
            Self::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            Self::ScalingReplicaSet => "ScalingReplicaSet",
            Self::SwitchService => "SwitchService",
            Self::SkipSteps => "SkipSteps",
            Self::AnalysisRunRunning => "AnalysisRunRunning",
            Self::AnalysisRunSuccessful => "AnalysisRunSuccessful",
            Self::AnalysisRunFailed => "AnalysisRunFailed",
            Self::AnalysisRunError => "AnalysisRunError",
            Self::AnalysisRunInconclusive => "AnalysisRunInconclusive",
            Self::AnalysisRunPending => "AnalysisRunPending",
            Self::ExperimentCreated => "ExperimentCreated",
        }
    }
}

/// Messages, with Argo's wording.
pub mod messages {
    pub const AVAILABLE: &str = "Rollout has minimum availability";
    pub const NOT_AVAILABLE: &str = "Rollout does not have minimum availability";
    pub const HEALTHY: &str = "Rollout is healthy";
    pub const NOT_HEALTHY: &str = "Rollout is not healthy";
    pub const PAUSED: &str = "Rollout is paused";
    pub const RESUMED: &str = "Rollout is resumed";
    pub const RETRY: &str = "Retrying Rollout after abort";

    pub fn replica_set_progressing(rs: &str) -> String {
        format!("ReplicaSet {rs:?} is progressing.")
    }
    pub fn rollout_progressing(rollout: &str) -> String {
        format!("Rollout {rollout:?} is progressing.")
    }
    pub fn new_replica_set(rs: &str) -> String {
        format!("Created new replica set {rs:?}")
    }
    pub fn new_replica_set_detailed(rs: &str, revision: i64) -> String {
        format!("Created ReplicaSet {rs} (revision {revision})")
    }
    pub fn found_new_replica_set(rs: &str) -> String {
        format!("Found new replica set {rs:?}")
    }
    pub fn rollout_updated(revision: &str) -> String {
        format!("Rollout updated to revision {revision}")
    }
    pub fn rollout_completed(revision: i64, hash: &str, reason: &str) -> String {
        format!("Rollout completed update to revision {revision} ({hash}): {reason}")
    }
    pub fn rollout_not_completed(revision: i64, hash: &str) -> String {
        format!("Rollout not completed, started update to revision {revision} ({hash})")
    }
    pub fn rollout_aborted(revision: i64) -> String {
        format!("Rollout aborted update to revision {revision}")
    }
    pub fn step_completed(index: i32, count: usize, step: &str) -> String {
        format!("Rollout step {index}/{count} completed ({step})")
    }
    pub fn replica_set_timed_out(rs: &str) -> String {
        format!("ReplicaSet {rs:?} has timed out progressing.")
    }
    pub fn rollout_timed_out(rollout: &str) -> String {
        format!("Rollout {rollout:?} has timed out progressing.")
    }
    pub fn replica_set_completed(rs: &str) -> String {
        format!("ReplicaSet {rs:?} has successfully progressed.")
    }
    pub fn scaling(direction: &str, rs: &str, revision: i64, from: i32, to: i32) -> String {
        format!("Scaled {direction} ReplicaSet {rs} (revision {revision}) from {from} to {to}")
    }
    pub fn switch_service(service: &str, from: &str, to: &str) -> String {
        format!("Switched selector for service '{service}' from '{from}' to '{to}'")
    }
}

/// Kubernetes condition timestamps have second precision; stamp with `now` truncated to match
/// what the API server stores, so an in-memory run and a real one see the same times.
pub fn meta_time(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: Reason,
    message: impl Into<String>,
    now: Timestamp,
) -> RolloutCondition {
    RolloutCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        last_update_time: meta_time(now),
        last_transition_time: meta_time(now),
        reason: reason.as_str().to_string(),
        message: message.into(),
    }
}

/// Argo's `SetRolloutCondition`: replace the condition of the same type unless status and
/// reason are unchanged; keep the transition time when only the reason changes. Returns whether
/// anything changed.
pub fn set_condition(status: &mut RolloutStatus, mut condition: RolloutCondition) -> bool {
    if let Some(current) = status.condition(&condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return false;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &condition.type_);
    status.conditions.push(condition);
    true
}

pub fn remove_condition(status: &mut RolloutStatus, type_: &str) {
    status.conditions.retain(|c| c.type_ != type_);
}

/// Argo's `RolloutProgressing`: did anything move since the last status?
pub fn is_progressing(spec: &RolloutSpec, old: &RolloutStatus, new: &RolloutStatus) -> bool {
    let strategy_progress = if spec.blue_green().is_some() {
        old.blue_green.active_selector != new.blue_green.active_selector
            || old.blue_green.preview_selector != new.blue_green.preview_selector
    } else if spec.canary().is_some() {
        let step_moved = matches!(
            (new.current_step_index, old.current_step_index),
            (Some(a), Some(b)) if a != b
        );
        new.stable_rs != old.stable_rs
            || step_moved
            || new.current_step_hash != old.current_step_hash
    } else {
        false
    };
    let old_pods_before = old.replicas - old.updated_replicas;
    let old_pods_now = new.replicas - new.updated_replicas;
    new.updated_replicas != old.updated_replicas
        || old_pods_now < old_pods_before
        || new.ready_replicas > old.ready_replicas
        || new.available_replicas > old.available_replicas
        || strategy_progress
}

/// Argo's `RolloutHealthy`: every desired pod updated and available, the generation observed,
/// and the strategy finished (blue-green: services switched; canary: all steps run, stable is
/// current and no old pods remain).
pub fn is_healthy(
    spec: &RolloutSpec,
    observed_generation_matches: bool,
    new: &RolloutStatus,
) -> bool {
    let replicas = spec.replicas_or_default();
    let completed_strategy = if let Some(bg) = spec.blue_green() {
        let active_done = new.blue_green.active_selector == new.current_pod_hash;
        let preview_done = bg.preview_service.is_empty()
            || new.blue_green.preview_selector == new.current_pod_hash;
        active_done && preview_done
    } else if spec.canary().is_some() {
        let steps = spec.steps().len();
        let all_steps = match new.current_step_index {
            Some(index) if steps > 0 => usize::try_from(index).ok() == Some(steps),
            _ => true,
        };
        let stable_is_current = !new.stable_rs.is_empty() && new.stable_rs == new.current_pod_hash;
        all_steps && stable_is_current && new.replicas == replicas
    } else {
        true
    };
    new.updated_replicas == replicas
        && new.available_replicas == replicas
        && observed_generation_matches
        && completed_strategy
}

/// Argo's `RolloutCompleted`: the desired ReplicaSet is the stable one.
pub fn is_completed(new: &RolloutStatus) -> bool {
    !new.stable_rs.is_empty() && new.stable_rs == new.current_pod_hash
}

/// Argo's `RolloutTimedOut`: no progress recorded for `progressDeadlineSeconds`.
pub fn is_timed_out(spec: &RolloutSpec, new: &RolloutStatus, now: Timestamp) -> bool {
    let Some(condition) = new.condition(types::PROGRESSING) else {
        return false;
    };
    if condition.reason == Reason::RolloutAborted.as_str()
        || condition.reason == Reason::RolloutPaused.as_str()
    {
        return false;
    }
    if condition.reason == Reason::ProgressDeadlineExceeded.as_str() {
        return true;
    }
    let deadline = i64::from(spec.progress_deadline_seconds_or_default());
    condition.last_update_time.0.as_second() + deadline < now.as_second()
        || (condition.last_update_time.0.as_second() + deadline == now.as_second()
            && now.subsec_nanosecond() > 0)
}

/// `True`/`False` as a condition status.
pub fn bool_status(value: bool) -> &'static str {
    if value {
        condition_status::TRUE
    } else {
        condition_status::FALSE
    }
}
