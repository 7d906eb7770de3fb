//! The engine: a pure function from a Rollout, the observed world and the time to a [`Plan`].
//!
//! It ports Argo Rollouts' controller decisions (canary and blue-green, replica arithmetic,
//! pauses, analysis and experiment steps, promotion, abort, progress deadlines, phases) without
//! its I/O: no client, no clock, no filesystem. The same engine drives `simulate`, `apply
//! --wait` and the in-cluster controller.
//!
//! Deliberate differences from Argo, each documented where it happens:
//! - pod-template hashes come from our own JSON serialization, so ReplicaSet names differ from
//!   the ones Argo would pick; existing ReplicaSets are still matched by template;
//! - a missing `spec.replicas` is treated as 1 without writing it back into the object;
//! - router actions are planned when weights or hashes change, not on every reconcile.

mod analysis;
mod bluegreen;
mod canary;
pub mod conditions;
mod context;
mod experiment;
pub mod experiment_run;
pub mod hash;
mod pause;
pub mod phase;
pub mod replicas;
mod replicaset;
mod sync;
mod traffic;
pub mod workload;

use jiff::Timestamp;

use rollout_runner_api::crd::{Rollout, condition_status};
use rollout_runner_api::observed::Observed;
use rollout_runner_api::plan::{Event, EventType, Plan};

pub use canary::step_string;
use conditions::{Reason, types};
use context::Ctx;
pub(crate) use context::template_matches;

/// Everything the engine reads.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The Rollout with its current status.
    pub rollout: &'a Rollout,
    pub observed: &'a Observed,
    pub now: Timestamp,
    /// The validation error when the spec (or a resource it references) is invalid; computed
    /// by the caller with the same rules as `lint`.
    pub invalid_spec: Option<&'a str>,
}

/// Seconds before a rollout with an invalid spec is looked at again (Argo's value).
const INVALID_SPEC_RETRY_SECONDS: f64 = 20.0;
/// Seconds before a reconcile that hit an error is retried.
const ERROR_RETRY_SECONDS: f64 = 10.0;

/// Decide the next step for one Rollout.
pub fn reconcile(input: &Input<'_>) -> Plan {
    // Like Argo's `Resolve`: the workload's template stands in for the Rollout's own, and a
    // workload that does not exist makes the spec invalid before anything else is checked.
    let resolved;
    let missing;
    let mut input = *input;
    if input.rollout.spec.workload_ref.is_some() {
        match &input.observed.workload {
            Some(workload) => {
                resolved = workload::resolve(input.rollout, workload);
                input.rollout = &resolved;
            }
            None => {
                missing = workload::missing_workload(input.rollout);
                input.invalid_spec = missing.as_deref();
            }
        }
    }
    let input = &input;
    let mut ctx = Ctx::new(input);
    if let Some(message) = input.invalid_spec {
        ctx.invalid_spec(message);
        return ctx.plan;
    }
    ctx.create_missing_replica_set();
    if ctx.check_paused_conditions() {
        return ctx.finish();
    }
    if ctx.is_scaling_event() {
        ctx.sync_replicas_only();
    } else if ctx.spec.blue_green().is_some() {
        ctx.rollout_blue_green();
    } else if ctx.spec.canary().is_some() {
        ctx.rollout_canary();
    }
    ctx.finish()
}

impl Ctx<'_> {
    fn finish(mut self) -> Plan {
        if let Some(message) = self.error.take() {
            self.plan.status = None;
            self.plan.events.push(Event {
                event_type: EventType::Warning,
                reason: "ReconciliationError".into(),
                message,
            });
            self.requeue_after_seconds(ERROR_RETRY_SECONDS);
        }
        self.plan
    }

    /// `createInvalidRolloutCondition`.
    fn invalid_spec(&mut self, error: &str) {
        let message = format!("The Rollout \"{}\" is invalid: {error}", self.name());
        let previous = self.old.condition(types::INVALID_SPEC).cloned();
        let unchanged = previous.as_ref().is_some_and(|c| c.message == message);
        let generation_observed = self.old.observed_generation == self.generation.to_string();
        self.requeue_after_seconds(INVALID_SPEC_RETRY_SECONDS);
        if unchanged && generation_observed {
            return;
        }
        let mut status = self.base_status();
        status.stable_rs = self.old.stable_rs.clone();
        status.current_step_index = self.old.current_step_index;
        status.current_step_hash = self.old.current_step_hash.clone();
        status.canary = self.old.canary.clone();
        status.blue_green = self.old.blue_green.clone();
        status.available_replicas = self.old.available_replicas;
        status.hpa_replicas = self.old.hpa_replicas;
        status.selector = self.old.selector.clone();
        conditions::remove_condition(&mut status, types::INVALID_SPEC);
        conditions::set_condition(
            &mut status,
            conditions::new_condition(
                types::INVALID_SPEC,
                condition_status::TRUE,
                Reason::InvalidSpec,
                message.clone(),
                self.now,
            ),
        );
        // Like Argo's `patchCondition`: keep pause and abort state as they are.
        status.abort = self.old.abort;
        status.aborted_at = self.old.aborted_at.clone();
        status.pause_conditions = self.old.pause_conditions.clone();
        status.controller_pause = self.old.controller_pause;
        status.observed_generation = self.generation.to_string();
        let (phase, phase_message) = phase::rollout_phase(self.spec, &status);
        status.phase = Some(phase);
        status.message = phase_message;
        self.warning(Reason::InvalidSpec.as_str(), message);
        self.plan.status = Some(status);
    }

    /// `syncReplicasOnly`: the rollout was scaled (HPA or a person); resize without stepping.
    fn sync_replicas_only(&mut self) {
        self.sync_new_replica_set();
        let mut status = self.old.clone();
        if let Some(bg) = self.spec.blue_green() {
            if let Some(active) = self.service(&bg.active_service).cloned() {
                self.remove_scale_down_deadlines();
                let hash = active.selected_hash().to_string();
                if let Some(active_rs) = self
                    .all_rss
                    .iter()
                    .find(|rs| !hash.is_empty() && rs.pod_hash() == hash)
                    .cloned()
                {
                    let replicas = self.replicas();
                    self.scale_replica_set(&active_rs, replicas);
                }
                self.reconcile_new_replica_set();
            }
            let active_rs = self.all_rss.iter().find(|rs| {
                !status.blue_green.active_selector.is_empty()
                    && rs.pod_hash() == status.blue_green.active_selector
            });
            match active_rs {
                Some(rs) => {
                    status.hpa_replicas = rs.replicas;
                    status.available_replicas = rs.available_replicas;
                }
                None => {
                    status.hpa_replicas = self.all_rss.iter().map(|rs| rs.replicas).sum();
                    status.available_replicas =
                        self.all_rss.iter().map(|rs| rs.available_replicas).sum();
                }
            }
        } else {
            self.reconcile_canary_replica_sets();
            status.available_replicas = self.all_rss.iter().map(|rs| rs.available_replicas).sum();
            status.hpa_replicas = self.all_rss.iter().map(|rs| rs.replicas).sum();
        }
        self.persist(status);
    }
}
