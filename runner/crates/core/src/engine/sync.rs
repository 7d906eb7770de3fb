//! Status computation shared by both strategies (Argo's `sync.go`): the base status, the
//! conditions, full promotion, and the final status with phase and message.

use jiff::SignedDuration;

use rollout_runner_api::crd::{RolloutDuration, RolloutStatus, condition_status};

use super::conditions::{self, Reason, messages, types};
use super::context::Ctx;
use super::phase::rollout_phase;

impl Ctx<'_> {
    /// `calculateBaseStatus`: counts and hashes common to every strategy.
    pub(crate) fn base_status(&mut self) -> RolloutStatus {
        let mut prev_conditions = self.old.conditions.clone();
        if self.old.condition(types::INVALID_SPEC).is_some() {
            // Only reached with a valid spec: the caller handles invalid ones.
            prev_conditions.retain(|c| c.type_ != types::INVALID_SPEC);
        }
        let current_pod_hash = self.desired_hash();
        let mut status = std::mem::take(&mut self.new_status);
        status.current_pod_hash = current_pod_hash;
        status.replicas = self.all_rss.iter().map(|rs| rs.replicas).sum();
        status.updated_replicas = self.new_rs.as_ref().map_or(0, |rs| rs.replicas);
        status.ready_replicas = self.all_rss.iter().map(|rs| rs.ready_replicas).sum();
        status.collision_count = self.old.collision_count;
        status.conditions = prev_conditions;
        status.promote_full = status.current_pod_hash != status.stable_rs && self.old.promote_full;
        status.duration = self.old.duration.clone();
        status
    }

    /// `resetRolloutStatus`: a new pod template or new steps start the update over.
    pub(crate) fn reset_status(&mut self, status: &mut RolloutStatus) {
        self.pause.clear_pauses();
        self.pause.remove_abort();
        status.restarted_at = self.spec.restart_at.clone();
        status.promote_full = false;
        status.blue_green.pre_promotion_analysis_run_status = None;
        status.blue_green.post_promotion_analysis_run_status = None;
        status.blue_green.scale_up_preview_check_point = false;
        status.canary.current_step_analysis_run_status = None;
        status.canary.current_background_analysis_run_status = None;
        status.current_step_index = (!self.spec.steps().is_empty()).then_some(0);
        if self.old.current_pod_hash != status.current_pod_hash {
            status.duration = Some(RolloutDuration {
                rollout_started_at: Some(conditions::meta_time(self.now)),
                ..Default::default()
            });
        }
    }

    /// `shouldFullPromote`: why the desired ReplicaSet may become stable now ("" = not yet).
    pub(crate) fn should_full_promote(&self, status: &RolloutStatus) -> Option<String> {
        if self.stable_rs.is_none() {
            return Some("Initial deploy".into());
        }
        if self.spec.canary().is_some() {
            if self.is_aborted() {
                return None;
            }
            let new_available = self.new_rs.as_ref().map(|rs| rs.available_replicas);
            if new_available != Some(self.replicas()) {
                return None;
            }
            if self.old.promote_full {
                return Some("Full promotion requested".into());
            }
            if self.is_rollback_within_window() {
                return Some("Rollback within window".into());
            }
            let steps = self.spec.steps().len();
            let index = super::replicas::current_step(self.spec, &self.old).1;
            let completed =
                steps == 0 || index.and_then(|i| usize::try_from(i).ok()) == Some(steps);
            return completed.then(|| format!("Completed all {steps} canary steps"));
        }
        if let Some(bg) = self.spec.blue_green() {
            if status.blue_green.active_selector.is_empty() {
                return Some("Initial deploy".into());
            }
            if status.blue_green.active_selector != status.current_pod_hash {
                return None;
            }
            if self.old.promote_full {
                return Some("Full promotion requested".into());
            }
            if self.is_rollback_within_window() {
                return Some("Rollback within window".into());
            }
            if self.is_aborted() {
                return None;
            }
            if bg.post_promotion_analysis.is_some() {
                if let Some(new) = &self.new_rs
                    && new.scale_down_deadline().is_some()
                {
                    return Some(format!("Rollback to '{}' within scaleDownDelay", new.name));
                }
                let succeeded = self.current_ars.post_promotion.as_ref().is_some_and(|ar| {
                    ar.status.as_ref().map(|s| s.phase)
                        == Some(rollout_runner_api::crd::AnalysisPhase::Successful)
                });
                if !succeeded {
                    return None;
                }
            }
            return Some("Completed blue-green update".into());
        }
        None
    }

    /// `promoteStable`: the desired ReplicaSet becomes the stable one.
    pub(crate) fn promote_stable(&mut self, status: &mut RolloutStatus, reason: &str) {
        self.pause.clear_pauses();
        self.pause.remove_abort();
        status.promote_full = false;
        status.blue_green.scale_up_preview_check_point = false;
        if self.spec.canary().is_some() {
            let steps = self.spec.steps().len();
            status.current_step_index = (steps > 0).then(|| i32::try_from(steps).unwrap_or(0));
        }
        if status.stable_rs != status.current_pod_hash {
            if let Some(ping_pong) = self.spec.canary().and_then(|c| c.ping_pong.as_ref()) {
                let _ = ping_pong;
                status.canary.stable_ping_pong = if self.old.canary.stable_ping_pong == "ping" {
                    "pong".into()
                } else {
                    "ping".into()
                };
            }
            let first_deploy = status.stable_rs.is_empty();
            status.stable_rs = status.current_pod_hash.clone();
            let revision = self.revision_number();
            let hash = status.current_pod_hash.clone();
            self.event(
                Reason::RolloutCompleted,
                messages::rollout_completed(revision, &hash, reason),
            );
            if !first_deploy {
                let duration = status.duration.get_or_insert_with(Default::default);
                duration.finished_at = Some(conditions::meta_time(self.now));
                duration.completion_status = if self.old.promote_full {
                    "FastPromoted".into()
                } else {
                    "Promoted".into()
                };
            }
        }
        self.scale_deployment_on_success();
    }

    /// `calculateRolloutConditions`.
    pub(crate) fn calculate_conditions(&mut self, mut status: RolloutStatus) -> RolloutStatus {
        let now = self.now;
        let is_paused = !self.old.pause_conditions.is_empty() || self.spec.paused;
        let aborted = self.is_aborted();
        let generation_observed = self.old.observed_generation == self.generation.to_string();

        let mut became_unhealthy = false;
        let had_healthy = self.old.condition(types::HEALTHY).is_some();
        if !is_paused && conditions::is_healthy(self.spec, generation_observed, &status) {
            conditions::set_condition(
                &mut status,
                conditions::new_condition(
                    types::HEALTHY,
                    condition_status::TRUE,
                    Reason::RolloutHealthy,
                    messages::HEALTHY,
                    now,
                ),
            );
        } else if had_healthy {
            became_unhealthy = conditions::set_condition(
                &mut status,
                conditions::new_condition(
                    types::HEALTHY,
                    condition_status::FALSE,
                    Reason::RolloutHealthy,
                    messages::NOT_HEALTHY,
                    now,
                ),
            );
        }

        if aborted {
            let mut message = messages::rollout_aborted(self.revision_number());
            if !self.pause.abort_message.is_empty() {
                message = format!("{message}: {}", self.pause.abort_message);
            }
            let condition = conditions::new_condition(
                types::PROGRESSING,
                condition_status::FALSE,
                Reason::RolloutAborted,
                message.clone(),
                now,
            );
            if conditions::set_condition(&mut status, condition) {
                self.warning(Reason::RolloutAborted.as_str(), message);
                let duration = status.duration.get_or_insert_with(Default::default);
                if duration.completion_status.is_empty() {
                    duration.finished_at = Some(conditions::meta_time(now));
                    duration.completion_status = "Aborted".into();
                }
            }
        }

        let current = self.old.condition(types::PROGRESSING).cloned();
        let healthy_rollout = status.replicas == status.available_replicas
            && current
                .as_ref()
                .is_some_and(|c| c.reason == Reason::NewReplicaSetAvailable.as_str())
            && current
                .as_ref()
                .is_some_and(|c| c.type_ != types::PROGRESSING);
        if !healthy_rollout && !aborted {
            let rs_name = self.new_rs.as_ref().map(|rs| rs.name.clone());
            if conditions::is_healthy(self.spec, generation_observed, &status) {
                let message = messages::replica_set_completed(rs_name.as_deref().unwrap_or(""));
                conditions::set_condition(
                    &mut status,
                    conditions::new_condition(
                        types::PROGRESSING,
                        condition_status::TRUE,
                        Reason::NewReplicaSetAvailable,
                        message,
                        now,
                    ),
                );
            } else if conditions::is_progressing(self.spec, &self.old, &status) || became_unhealthy
            {
                let mut message = match &rs_name {
                    Some(name) => messages::replica_set_progressing(name),
                    None => messages::rollout_progressing(self.name()),
                };
                let reason = if status.stable_rs == status.current_pod_hash && became_unhealthy {
                    message = messages::NOT_AVAILABLE.into();
                    Reason::ReplicaSetNotAvailable
                } else {
                    Reason::ReplicaSetUpdated
                };
                let mut condition = conditions::new_condition(
                    types::PROGRESSING,
                    condition_status::TRUE,
                    reason,
                    message,
                    now,
                );
                if let Some(current) = &current {
                    if current.status == condition_status::TRUE {
                        condition.last_transition_time = current.last_transition_time.clone();
                    }
                    conditions::remove_condition(&mut status, types::PROGRESSING);
                }
                conditions::set_condition(&mut status, condition);
            } else if !self.is_indefinite_step()
                && conditions::is_timed_out(self.spec, &status, now)
            {
                let message = match &rs_name {
                    Some(name) => messages::replica_set_timed_out(name),
                    None => messages::rollout_timed_out(self.name()),
                };
                let condition = conditions::new_condition(
                    types::PROGRESSING,
                    condition_status::FALSE,
                    Reason::ProgressDeadlineExceeded,
                    message.clone(),
                    now,
                );
                let changed = conditions::set_condition(&mut status, condition);
                if self.spec.progress_deadline_abort && (changed || !self.is_aborted()) {
                    self.pause.add_abort(message.clone());
                    self.warning(Reason::RolloutAborted.as_str(), message);
                }
            }
        }

        let available = if self.spec.blue_green().is_some() {
            let active = self.all_rss.iter().chain(self.new_rs.iter()).find(|rs| {
                !status.blue_green.active_selector.is_empty()
                    && rs.pod_hash() == status.blue_green.active_selector
            });
            super::context::is_saturated(self.spec, active)
        } else {
            self.all_rss
                .iter()
                .map(|rs| rs.available_replicas)
                .sum::<i32>()
                >= self.replicas()
        };
        let (message, status_value) = if available {
            (messages::AVAILABLE, condition_status::TRUE)
        } else {
            (messages::NOT_AVAILABLE, condition_status::FALSE)
        };
        conditions::set_condition(
            &mut status,
            conditions::new_condition(
                types::AVAILABLE,
                status_value,
                Reason::Available,
                message,
                now,
            ),
        );

        let failure = self
            .new_rs
            .iter()
            .chain(self.all_rss.iter())
            .find_map(|rs| rs.replica_failure.clone());
        match failure {
            Some((reason, message)) => {
                let condition = rollout_runner_api::crd::RolloutCondition {
                    type_: types::REPLICA_FAILURE.into(),
                    status: condition_status::TRUE.into(),
                    last_update_time: conditions::meta_time(now),
                    last_transition_time: conditions::meta_time(now),
                    reason,
                    message,
                };
                conditions::set_condition(&mut status, condition);
            }
            None => conditions::remove_condition(&mut status, types::REPLICA_FAILURE),
        }

        let completed_reason = Reason::RolloutCompleted.as_str();
        let completed = conditions::is_completed(&status);
        let mut condition = conditions::new_condition(
            types::COMPLETED,
            conditions::bool_status(completed),
            Reason::RolloutCompleted,
            completed_reason,
            now,
        );
        condition.message = completed_reason.into();
        if conditions::set_condition(&mut status, condition) && !completed {
            let revision = self.revision_number() + 1;
            let hash = status.current_pod_hash.clone();
            self.event(
                Reason::RolloutNotCompleted,
                messages::rollout_not_completed(revision, &hash),
            );
        }
        status
    }

    /// Argo's `isIndefiniteStep`: pause, analysis and experiment steps do not count against the
    /// progress deadline.
    fn is_indefinite_step(&self) -> bool {
        let (step, _) = super::replicas::current_step(self.spec, &self.old);
        step.is_some_and(|s| s.experiment.is_some() || s.analysis.is_some() || s.pause.is_some())
    }

    /// `checkPausedConditions`: keep the Paused condition and the Progressing pause/resume
    /// markers in step with the pause state. As Argo's `patchCondition`, a change is written on
    /// its own (with the phase it makes) and ends the reconcile: returns whether it did.
    pub(crate) fn check_paused_conditions(&mut self) -> bool {
        if self.old.observed_generation != self.generation.to_string() {
            return false;
        }
        let now = self.now;
        let progressing = self.old.condition(types::PROGRESSING).cloned();
        let progressing_paused = progressing
            .as_ref()
            .is_some_and(|c| c.reason == Reason::RolloutPaused.as_str());
        let is_paused = !self.old.pause_conditions.is_empty() || self.spec.paused;
        let abort_condition = progressing
            .as_ref()
            .is_some_and(|c| c.reason == Reason::RolloutAborted.as_str());
        let mut updates = Vec::new();
        if is_paused != progressing_paused && !abort_condition {
            updates.push(if is_paused {
                conditions::new_condition(
                    types::PROGRESSING,
                    condition_status::UNKNOWN,
                    Reason::RolloutPaused,
                    messages::PAUSED,
                    now,
                )
            } else {
                conditions::new_condition(
                    types::PROGRESSING,
                    condition_status::UNKNOWN,
                    Reason::RolloutResumed,
                    messages::RESUMED,
                    now,
                )
            });
        }
        if !self.old.abort && abort_condition {
            updates.push(conditions::new_condition(
                types::PROGRESSING,
                condition_status::UNKNOWN,
                Reason::RolloutRetry,
                messages::RETRY,
                now,
            ));
        }
        let paused_true = self
            .old
            .condition(types::PAUSED)
            .is_some_and(|c| c.status == condition_status::TRUE);
        if is_paused != paused_true && !abort_condition {
            updates.push(conditions::new_condition(
                types::PAUSED,
                conditions::bool_status(is_paused),
                Reason::RolloutPaused,
                messages::PAUSED,
                now,
            ));
        }
        let mut status = self.old.clone();
        for condition in updates {
            conditions::set_condition(&mut status, condition);
        }
        if status == self.old {
            return false;
        }
        status.observed_generation = self.generation.to_string();
        let (phase, message) = rollout_phase(self.spec, &status);
        status.phase = Some(phase);
        status.message = message;
        self.plan.status = Some(status);
        // The next reconcile goes on from the patched conditions.
        self.plan.requeue_no_later_than(self.now);
        true
    }

    /// `persistRolloutStatus`: fold in pause/abort, generation and phase; emit pause events;
    /// schedule the progress-deadline check.
    pub(crate) fn persist(&mut self, mut status: RolloutStatus) {
        self.pause.apply(&self.old, &mut status, self.now);
        if self.spec.workload_ref.is_none() {
            status.workload_observed_generation = String::new();
        }
        status.observed_generation = self.generation.to_string();
        let (phase, message) = rollout_phase(self.spec, &status);
        status.phase = Some(phase);
        status.message = message;

        let was_paused = !self.old.pause_conditions.is_empty();
        let now_paused = !status.pause_conditions.is_empty();
        if was_paused != now_paused {
            if now_paused {
                let reason = status.pause_conditions[0].reason.as_str();
                self.event(
                    Reason::RolloutPaused,
                    format!("{} ({reason})", messages::PAUSED),
                );
            } else if status.aborted_at.is_none() {
                self.event(Reason::RolloutResumed, messages::RESUMED);
            }
        }
        self.requeue_stuck_rollout(&status);
        self.plan.status = Some(status);
    }

    /// `requeueStuckRollout`: wake up when the progress deadline would pass.
    fn requeue_stuck_rollout(&mut self, status: &RolloutStatus) {
        let Some(current) = self.old.condition(types::PROGRESSING) else {
            return;
        };
        let is_paused = !self.old.pause_conditions.is_empty() || self.spec.paused;
        let generation_observed = self.old.observed_generation == self.generation.to_string();
        if conditions::is_healthy(self.spec, generation_observed, status)
            || current.reason == Reason::ProgressDeadlineExceeded.as_str()
            || is_paused
            || self.old.abort
            || self.is_indefinite_step()
        {
            return;
        }
        let deadline = i64::from(self.spec.progress_deadline_seconds_or_default());
        if let Ok(at) = current
            .last_update_time
            .0
            .checked_add(SignedDuration::from_secs(deadline + 1))
        {
            self.plan.requeue_no_later_than(at.max(self.now));
        }
    }
}
