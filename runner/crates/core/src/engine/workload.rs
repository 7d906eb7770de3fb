//! `spec.workloadRef`: the pod template comes from another workload (a Deployment, ReplicaSet
//! or PodTemplate), and `scaleDown` retires a Deployment the Rollout replaces.
//!
//! Ports Argo's `templateref.go` (`Resolve`: the workload's template, and its selector when the
//! Rollout has none, stand in for the Rollout's own for the whole reconcile) and the two
//! places its controller scales the Deployment (`reconcileNewReplicaSet` for `progressively`,
//! `promoteStable` for `onsuccess`). Both act only while the Rollout is at revision 1: they
//! migrate a Deployment once, they are not a way to keep it in step.
//!
//! `scaleDown` acts only on a workload of kind Deployment here; Argo reads the Deployment with
//! the workload's name whatever the kind says.

use rollout_runner_api::crd::{Rollout, RolloutPhase};
use rollout_runner_api::observed::WorkloadState;
use rollout_runner_api::plan::Action;

use super::context::Ctx;

/// `workloadRef.scaleDown` values (Argo's `ScaleDown*` constants).
pub const SCALE_DOWN_NEVER: &str = "never";
pub const SCALE_DOWN_ON_SUCCESS: &str = "onsuccess";
pub const SCALE_DOWN_PROGRESSIVELY: &str = "progressively";

/// The Rollout as the reconcile sees it: the workload's pod template, and its selector when the
/// Rollout has none.
pub fn resolve(rollout: &Rollout, workload: &WorkloadState) -> Rollout {
    let mut resolved = rollout.clone();
    if let Some(template) = &workload.template {
        resolved.spec.template = Some(template.clone());
    }
    if resolved.spec.selector.is_none() {
        resolved.spec.selector.clone_from(&workload.selector);
    }
    resolved
}

/// Why a Rollout whose workload does not exist is invalid.
pub fn missing_workload(rollout: &Rollout) -> Option<String> {
    let reference = rollout.spec.workload_ref.as_ref()?;
    Some(format!(
        "spec.workloadRef: {} \"{}\" not found in namespace \"{}\"",
        reference.kind,
        reference.name,
        rollout.namespace_or_default()
    ))
}

impl Ctx<'_> {
    /// The Deployment `scaleDown` may change, when the Rollout migrates one (revision 1) with
    /// the given mode.
    fn migrated_deployment(&self, mode: &str, revision: i64) -> Option<&WorkloadState> {
        let reference = self.spec.workload_ref.as_ref()?;
        let workload = self.observed.workload.as_ref()?;
        (revision == 1 && reference.scale_down == mode && workload.kind == "Deployment")
            .then_some(workload)
    }

    /// `scaleDeployment`: a negative target counts as 0; an unchanged count writes nothing.
    fn scale_deployment(&mut self, workload: &WorkloadState, target: i32) {
        let to = target.max(0);
        let from = workload.replicas.unwrap_or(1);
        if to != from {
            self.plan.actions.push(Action::ScaleDeployment {
                name: workload.name.clone(),
                from,
                to,
            });
        }
    }

    /// `scaleDown: progressively`, after the new ReplicaSet was scaled from `old_scale` to
    /// `new_count`: the Deployment keeps what the Rollout's ready pods do not cover yet, and goes
    /// to 0 once the Rollout was Healthy.
    pub(crate) fn scale_deployment_progressively(
        &mut self,
        revision: i64,
        old_scale: i32,
        new_count: i32,
    ) {
        let Some(workload) = self
            .migrated_deployment(SCALE_DOWN_PROGRESSIVELY, revision)
            .cloned()
        else {
            return;
        };
        if self.old.phase == Some(RolloutPhase::Healthy) {
            self.scale_deployment(&workload, 0);
        } else if self.old.ready_replicas > 0 || old_scale > new_count {
            // Argo also requires `spec.replicas` to be set; its controller writes the default
            // before any reconcile gets here, and this engine reads a missing value as 1.
            let target = self.replicas() - self.old.ready_replicas;
            self.scale_deployment(&workload, target);
        }
    }

    /// `scaleDown: onsuccess`, when the stable ReplicaSet is promoted: the Deployment goes to 0
    /// once the Rollout was Healthy.
    pub(crate) fn scale_deployment_on_success(&mut self) {
        let revision = self.revision_number();
        let Some(workload) = self
            .migrated_deployment(SCALE_DOWN_ON_SUCCESS, revision)
            .cloned()
        else {
            return;
        };
        if self.old.phase == Some(RolloutPhase::Healthy) {
            self.scale_deployment(&workload, 0);
        }
    }
}
