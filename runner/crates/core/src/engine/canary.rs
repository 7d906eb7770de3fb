//! The canary strategy (Argo's `rollout/canary.go`): scale the stable and canary ReplicaSets
//! step by step, pause, run analysis and experiments, and advance or abort.

use rollout_runner_api::crd::{AnalysisPhase, CanaryStep, IntOrString, PauseReason};
use rollout_runner_api::observed::ReplicaSetState;

use super::conditions::{Reason, messages};
use super::context::Ctx;
use super::hash::step_hash;
use super::pause::{completed_canary_pause, pause_condition, pause_expiry};
use super::replicas;

/// Argo's `CanaryStepString`, for step-completed messages.
pub fn step_string(step: &CanaryStep) -> String {
    if let Some(weight) = step.set_weight {
        return format!("setWeight: {weight}");
    }
    if let Some(pause) = &step.pause {
        return match &pause.duration {
            Some(IntOrString::Int(seconds)) => format!("pause: {seconds}"),
            Some(IntOrString::String(text)) => format!("pause: {text}"),
            None => "pause".into(),
        };
    }
    if step.experiment.is_some() {
        return "experiment".into();
    }
    if step.analysis.is_some() {
        return "analysis".into();
    }
    if let Some(scale) = &step.set_canary_scale {
        if let Some(weight) = scale.weight {
            return format!("setCanaryScale{{weight: {weight}}}");
        } else if scale.match_traffic_weight {
            return "setCanaryScale{matchTrafficWeight: true}".into();
        } else if let Some(replicas) = scale.replicas {
            return format!("setCanaryScale{{replicas: {replicas}}}");
        }
    }
    if let Some(route) = &step.set_header_route {
        return format!("setHeaderRoute: {}", route.name);
    }
    if let Some(route) = &step.set_mirror_route {
        return format!("setMirrorRoute: {}", route.name);
    }
    "invalid".into()
}

impl Ctx<'_> {
    /// Argo's `PodTemplateOrStepsChanged`.
    pub(crate) fn template_or_steps_changed(&self) -> bool {
        if self.old.current_step_hash.is_empty()
            || self.old.current_step_hash != step_hash(self.spec.steps())
        {
            return true;
        }
        self.pod_template_changed()
    }

    /// Argo's `CheckPodSpecChange`.
    pub(crate) fn pod_template_changed(&self) -> bool {
        !self.old.current_pod_hash.is_empty() && self.old.current_pod_hash != self.desired_hash()
    }

    /// `rolloutCanary`.
    pub(crate) fn rollout_canary(&mut self) {
        if self.template_or_steps_changed() {
            self.sync_new_replica_set();
            self.sync_canary_status();
            return;
        }
        self.sync_new_replica_set();
        self.reconcile_revision_history_limit();
        self.reconcile_ping_pong_service();
        self.reconcile_stable_and_canary_service();
        self.reconcile_traffic_routing();
        self.reconcile_experiments();
        self.reconcile_analysis_runs();
        if self.pause.has_add_pause() {
            self.sync_canary_status();
            return;
        }
        if self.reconcile_canary_replica_sets() {
            self.sync_canary_status();
            return;
        }
        self.reconcile_canary_pause();
        self.sync_canary_status();
    }

    /// `reconcileCanaryReplicaSets`: one scaling move at a time, stable first. Returns whether
    /// anything was scaled.
    pub(crate) fn reconcile_canary_replica_sets(&mut self) -> bool {
        if self.halt_progress().is_some() {
            return false;
        }
        self.remove_scale_down_deadlines();
        if self.reconcile_canary_stable_replica_set() {
            return true;
        }
        if self.new_rs.is_none() && self.old.current_pod_hash != self.old.stable_rs {
            self.new_rs = self
                .all_rss
                .iter()
                .find(|rs| rs.pod_hash() == self.old.current_pod_hash)
                .cloned();
        }
        if self.reconcile_new_replica_set() {
            return true;
        }
        self.reconcile_other_replica_sets()
    }

    fn reconcile_canary_stable_replica_set(&mut self) -> bool {
        let (Some(stable), new) = (self.stable_rs.clone(), self.new_rs.as_ref()) else {
            return false;
        };
        if new.is_some_and(|n| n.name == stable.name) {
            return false;
        }
        let desired = if self.spec.traffic_routing().is_none() {
            let others: Vec<&ReplicaSetState> = self.other_rss.iter().collect();
            replicas::basic_canary_counts(
                self.spec,
                &self.old,
                self.new_rs.as_ref(),
                Some(&stable),
                &others,
            )
            .1
        } else {
            // The recorded weights, not this reconcile's: stable scaling lags the weight change
            // by one reconcile so the stable never drops before its traffic does.
            replicas::traffic_routed_canary_counts(
                self.spec,
                &self.old,
                self.old.canary.weights.as_ref(),
            )
            .1
        };
        self.scale_replica_set(&stable, desired)
    }

    /// `reconcileCanaryPause`.
    fn reconcile_canary_pause(&mut self) {
        if self.spec.paused || self.old.promote_full {
            return;
        }
        let (Some(step), Some(_)) = replicas::current_step(self.spec, &self.old) else {
            return;
        };
        let Some(pause) = step.pause.clone() else {
            return;
        };
        match pause_condition(self.rollout, PauseReason::CanaryPauseStep) {
            None => {
                if !self.old.controller_pause {
                    self.pause.add_pause(PauseReason::CanaryPauseStep);
                    if let Some(seconds) = pause.duration_seconds() {
                        let start = super::conditions::meta_time(self.now);
                        if let Ok(at) = start
                            .0
                            .checked_add(jiff::SignedDuration::from_secs(seconds))
                        {
                            self.requeue_after_deadline(at);
                        }
                    }
                }
            }
            Some(condition) => {
                if let Some(expiry) = pause_expiry(&condition.start_time, &pause) {
                    self.requeue_after_deadline(expiry);
                }
            }
        }
    }

    /// `completedCurrentCanaryStep`.
    fn completed_current_step(&self) -> bool {
        if self.spec.paused {
            return false;
        }
        let (Some(step), _) = replicas::current_step(self.spec, &self.old) else {
            return false;
        };
        let others: Vec<&ReplicaSetState> = self.other_rss.iter().collect();
        let at_desired = || {
            replicas::at_desired_replica_counts(
                self.spec,
                &self.old,
                self.new_rs.as_ref(),
                self.stable_rs.as_ref(),
                &others,
                self.new_status.canary.weights.as_ref(),
            )
        };
        if let Some(pause) = &step.pause {
            return completed_canary_pause(self.rollout, pause, self.now);
        }
        if step.set_canary_scale.is_some() {
            return at_desired();
        }
        if step.set_weight.is_some() {
            if !at_desired() {
                return false;
            }
            let unverified = self
                .new_status
                .canary
                .weights
                .as_ref()
                .is_some_and(|w| w.verified == Some(false));
            return !unverified;
        }
        if step.experiment.is_some() {
            return self.current_ex.as_ref().is_some_and(|ex| {
                ex.status.as_ref().and_then(|s| s.phase) == Some(AnalysisPhase::Successful)
            });
        }
        if step.analysis.is_some() {
            return self.current_ars.canary_step.as_ref().is_some_and(|ar| {
                ar.status.as_ref().map(|s| s.phase) == Some(AnalysisPhase::Successful)
            });
        }
        step.set_header_route.is_some() || step.set_mirror_route.is_some()
    }

    /// `syncRolloutStatusCanary`.
    pub(crate) fn sync_canary_status(&mut self) {
        let mut status = self.base_status();
        status.available_replicas = self.all_rss.iter().map(|rs| rs.available_replicas).sum();
        status.hpa_replicas = self.all_rss.iter().map(|rs| rs.replicas).sum();
        status.selector = format_selector(self.spec.selector.as_ref());
        status.canary.stable_ping_pong = self.old.canary.stable_ping_pong.clone();
        status.stable_rs = self.old.stable_rs.clone();
        status.current_step_hash = step_hash(self.spec.steps());
        let step_count = self.spec.steps().len();
        let step_count_i32 = i32::try_from(step_count).unwrap_or(i32::MAX);
        let (current_step, mut current_index) = replicas::current_step(self.spec, &self.old);

        if self.template_or_steps_changed() {
            self.reset_status(&mut status);
            if let Some(new) = &self.new_rs
                && step_count > 0
            {
                if self.old.stable_rs == new.pod_hash() {
                    self.event(Reason::SkipSteps, "Rollback to stable ReplicaSets");
                    status.current_step_index = Some(step_count_i32);
                } else if self.is_rollback_within_window() && new.is_active() {
                    self.event(
                        Reason::SkipSteps,
                        "Rollback to active ReplicaSets within RollbackWindow",
                    );
                    status.current_step_index = Some(step_count_i32);
                }
            }
            let status = self.calculate_conditions(status);
            self.persist(status);
            return;
        }

        if self.old.promote_full || self.is_rollback_within_window() {
            self.pause.clear_pauses();
            self.pause.remove_abort();
            if step_count > 0 {
                current_index = Some(step_count_i32);
            }
        }

        if let Some(reason) = self.should_full_promote(&status) {
            self.promote_stable(&mut status, &reason);
            let status = self.calculate_conditions(status);
            self.persist(status);
            return;
        }

        if self.is_aborted() {
            if step_count > 0 {
                status.current_step_index = Some(if status.stable_rs == status.current_pod_hash {
                    step_count_i32
                } else {
                    0
                });
            }
            let status = self.calculate_conditions(status);
            self.persist(status);
            return;
        }

        if self.completed_current_step()
            && let (Some(step), Some(index)) = (current_step, current_index.as_mut())
        {
            let description = step_string(step);
            *index += 1;
            status.canary.current_step_analysis_run_status = None;
            let index_now = *index;
            self.event(
                Reason::RolloutStepCompleted,
                messages::step_completed(index_now, step_count, &description),
            );
            self.pause.remove_pause(PauseReason::CanaryPauseStep);
            // The next step starts now: look again right away.
            self.plan.requeue_no_later_than(self.now);
        }
        status.current_step_index = current_index;
        let status = self.calculate_conditions(status);
        self.persist(status);
    }

    /// `reconcilePingAndPongService`.
    fn reconcile_ping_pong_service(&mut self) {
        let Some(ping_pong) = self.spec.canary().and_then(|c| c.ping_pong.clone()) else {
            return;
        };
        let fully_promoted =
            !self.old.stable_rs.is_empty() && self.old.stable_rs == self.old.current_pod_hash;
        if fully_promoted {
            return;
        }
        let canary_service = if self.old.canary.stable_ping_pong == "pong" {
            ping_pong.ping_service
        } else {
            ping_pong.pong_service
        };
        let new = self.new_rs.clone();
        self.ensure_service_targets(&canary_service, new.as_ref(), false);
    }

    /// `reconcileStableAndCanaryService`.
    fn reconcile_stable_and_canary_service(&mut self) {
        let Some(canary) = self.spec.canary() else {
            return;
        };
        let (stable_service, canary_service) =
            (canary.stable_service.clone(), canary.canary_service.clone());
        let stable = self.stable_rs.clone();
        self.ensure_service_targets(&stable_service, stable.as_ref(), true);
        if self.is_aborted() {
            // With a router, `reconcile_traffic_routing` points the canary Service back at the
            // stable once no traffic goes to the canary. Argo also points it at the new pods
            // here first, flipping the selector twice per reconcile.
            if self.spec.traffic_routing().is_none() {
                self.ensure_service_targets(&canary_service, stable.as_ref(), true);
            }
            return;
        }
        if self.is_dynamically_rolling_back_to_stable().is_some() {
            return;
        }
        let new = self.new_rs.clone();
        self.ensure_service_targets(&canary_service, new.as_ref(), true);
    }

    /// `isDynamicallyRollingBackToStable`: back on the stable after an interrupted update with
    /// dynamic stable scaling, while the stable is still below full size. Returns the hash the
    /// canary weight still points at.
    pub(crate) fn is_dynamically_rolling_back_to_stable(&self) -> Option<String> {
        let fully_promoted =
            !self.old.stable_rs.is_empty() && self.old.stable_rs == self.old.current_pod_hash;
        let dynamic = self.spec.canary().is_some_and(|c| c.dynamic_stable_scale);
        if !fully_promoted || self.spec.traffic_routing().is_none() || !dynamic {
            return None;
        }
        let weights = self.old.canary.weights.as_ref()?;
        let desired = self.new_rs.as_ref()?;
        let current = &weights.canary.pod_template_hash;
        (current != desired.pod_hash() && desired.available_replicas < self.replicas())
            .then(|| current.clone())
    }
}

/// `metav1.FormatLabelSelector` for the common `matchLabels` case.
pub(crate) fn format_selector(
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> String {
    let Some(selector) = selector else {
        return String::new();
    };
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expression in selector.match_expressions.iter().flatten() {
        let values = expression.values.clone().unwrap_or_default().join(",");
        parts.push(match expression.operator.as_str() {
            "In" => format!("{} in ({values})", expression.key),
            "NotIn" => format!("{} notin ({values})", expression.key),
            "Exists" => expression.key.clone(),
            "DoesNotExist" => format!("!{}", expression.key),
            other => format!("{} {other} ({values})", expression.key),
        });
    }
    if parts.is_empty() {
        return "<none>".into();
    }
    parts.join(",")
}
