//! Pause and abort bookkeeping for one reconcile (Argo's `pauseContext`): parts of the engine
//! record what they want (add a pause reason, abort, clear), and the status is computed once at
//! the end so the decisions never fight each other.

use jiff::Timestamp;

use rollout_runner_api::crd::{PauseCondition, PauseReason, Rollout, RolloutPause, RolloutStatus};

use super::conditions::meta_time;

#[derive(Debug, Default)]
pub(crate) struct PauseContext {
    add_reasons: Vec<PauseReason>,
    remove_reasons: Vec<PauseReason>,
    clear: bool,
    add_abort: bool,
    remove_abort: bool,
    pub(crate) abort_message: String,
}

impl PauseContext {
    pub(crate) fn has_add_pause(&self) -> bool {
        !self.add_reasons.is_empty()
    }

    /// Aborted, counting this reconcile's decisions.
    pub(crate) fn is_aborted(&self, old: &RolloutStatus) -> bool {
        if self.remove_abort {
            return false;
        }
        self.add_abort || old.abort
    }

    pub(crate) fn add_abort(&mut self, message: impl Into<String>) {
        self.add_abort = true;
        self.abort_message = message.into();
    }

    pub(crate) fn remove_abort(&mut self) {
        self.remove_abort = true;
    }

    pub(crate) fn add_pause(&mut self, reason: PauseReason) {
        self.add_reasons.push(reason);
    }

    pub(crate) fn remove_pause(&mut self, reason: PauseReason) {
        self.remove_reasons.push(reason);
    }

    pub(crate) fn clear_pauses(&mut self) {
        self.clear = true;
    }

    /// Argo's `CalculatePauseStatus`: fold the decisions into the status to persist.
    pub(crate) fn apply(&self, old: &RolloutStatus, new: &mut RolloutStatus, now: Timestamp) {
        let aborted_at = old.aborted_at.clone().unwrap_or_else(|| meta_time(now));
        if self.add_abort || (!self.remove_abort && old.abort) {
            new.abort = true;
            new.aborted_at = Some(aborted_at);
            return;
        }
        new.abort = false;
        new.aborted_at = None;
        if self.clear {
            return;
        }
        let mut controller_pause = old.controller_pause;
        let mut conditions: Vec<PauseCondition> = Vec::new();
        for condition in &old.pause_conditions {
            if !self.remove_reasons.contains(&condition.reason) {
                conditions.push(condition.clone());
            }
        }
        for reason in &self.add_reasons {
            let exists = old.pause_conditions.iter().any(|c| c.reason == *reason)
                || conditions.iter().any(|c| c.reason == *reason);
            if !exists {
                conditions.push(PauseCondition {
                    reason: *reason,
                    start_time: meta_time(now),
                });
                controller_pause = true;
            }
        }
        if conditions.is_empty() {
            return;
        }
        new.controller_pause = controller_pause;
        new.pause_conditions = conditions;
    }
}

/// The pause condition with this reason, if the rollout has one.
pub(crate) fn pause_condition(rollout: &Rollout, reason: PauseReason) -> Option<&PauseCondition> {
    rollout
        .status
        .as_ref()?
        .pause_conditions
        .iter()
        .find(|c| c.reason == reason)
}

/// When a timed pause started at `start` ends (Argo compares with "now after expiry").
pub(crate) fn pause_expiry(
    start: &rollout_runner_api::crd::Time,
    pause: &RolloutPause,
) -> Option<Timestamp> {
    let seconds = pause.duration_seconds()?;
    start
        .0
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .ok()
}

/// Argo's `CompletedCanaryPauseStep`: resumed by a person, or the duration has passed.
pub(crate) fn completed_canary_pause(
    rollout: &Rollout,
    pause: &RolloutPause,
    now: Timestamp,
) -> bool {
    let condition = pause_condition(rollout, PauseReason::CanaryPauseStep);
    let controller_pause = rollout.status.as_ref().is_some_and(|s| s.controller_pause);
    if controller_pause && condition.is_none() {
        return true;
    }
    match condition.and_then(|c| pause_expiry(&c.start_time, pause)) {
        Some(expiry) => now > expiry,
        None => false,
    }
}
