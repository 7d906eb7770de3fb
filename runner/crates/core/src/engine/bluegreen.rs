//! The blue-green strategy (Argo's `rollout/bluegreen.go`): bring the new version up beside
//! the active one behind the preview Service, pause or analyse, then switch the active Service.

use rollout_runner_api::crd::{AnalysisPhase, PauseReason};
use rollout_runner_api::observed::ServiceState;

use super::canary::format_selector;
use super::context::{Ctx, is_saturated};
use super::pause::pause_condition;

impl Ctx<'_> {
    /// `rolloutBlueGreen`.
    pub(crate) fn rollout_blue_green(&mut self) {
        let Some(bg) = self.spec.blue_green() else {
            return;
        };
        let preview = self.service(&bg.preview_service).cloned();
        let Some(active) = self.service(&bg.active_service).cloned() else {
            // Validation reports a missing active service; nothing to do without it.
            return;
        };
        self.sync_new_replica_set();
        self.reconcile_preview_service(preview.as_ref());
        if self.pod_template_changed() {
            self.sync_blue_green_status(preview.as_ref(), &active);
            return;
        }
        self.reconcile_blue_green_replica_sets(&active);
        self.reconcile_blue_green_pause(&active);
        self.reconcile_active_service(&active);
        self.reconcile_analysis_runs();
        self.sync_blue_green_status(preview.as_ref(), &active);
    }

    fn reconcile_preview_service(&mut self, preview: Option<&ServiceState>) {
        let (Some(preview), Some(new)) = (preview, self.new_rs.clone()) else {
            return;
        };
        if self.halt_progress().is_some() {
            return;
        }
        self.switch_service_selector(preview, new.pod_hash());
    }

    fn reconcile_blue_green_replica_sets(&mut self, active: &ServiceState) {
        self.remove_scale_down_deadlines();
        // Keep whatever the active service points at at full size.
        let hash = active.selected_hash().to_string();
        if !hash.is_empty()
            && let Some(active_rs) = self
                .all_rss
                .iter()
                .chain(self.new_rs.iter())
                .find(|rs| rs.pod_hash() == hash)
                .cloned()
        {
            let replicas = self.replicas();
            self.scale_replica_set(&active_rs, replicas);
        }
        self.reconcile_new_replica_set();
        self.reconcile_other_replica_sets();
        self.reconcile_revision_history_limit();
    }

    /// `isBlueGreenFastTracked`: skip the pause when moving back within a scale-down delay,
    /// on full promotion, on the first deploy, or when the new version is already active.
    fn is_fast_tracked(&self, active: &ServiceState) -> bool {
        let Some(new) = &self.new_rs else {
            return false;
        };
        new.scale_down_deadline().is_some()
            || self.old.promote_full
            || active.selected_hash().is_empty()
            || active.selected_hash() == new.pod_hash()
    }

    /// Argo's `ReadyForPause`: the new ReplicaSet has exactly the pods it should, all available.
    fn ready_for_pause(&self) -> bool {
        let Some(new) = &self.new_rs else {
            return false;
        };
        let desired = self.new_rs_desired_replicas(new);
        new.spec_replicas == desired && new.available_replicas == desired
    }

    fn needs_controller_pause(&self) -> bool {
        let Some(bg) = self.spec.blue_green() else {
            return false;
        };
        !bg.auto_promotion_enabled_or_default() || bg.auto_promotion_seconds.unwrap_or(0) > 0
    }

    /// `completedPrePromotionAnalysis`.
    fn completed_pre_promotion_analysis(&self) -> bool {
        let Some(bg) = self.spec.blue_green() else {
            return true;
        };
        if bg.pre_promotion_analysis.is_none() {
            return true;
        }
        self.current_ars.pre_promotion.as_ref().is_some_and(|ar| {
            ar.status.as_ref().map(|s| s.phase) == Some(AnalysisPhase::Successful)
        })
    }

    /// `CompletedBlueGreenPause`: resumed by a person or past autoPromotionSeconds.
    fn completed_blue_green_pause(&self) -> bool {
        if self.pause.has_add_pause() {
            return false;
        }
        if self.old.blue_green.scale_up_preview_check_point || !self.needs_controller_pause() {
            return true;
        }
        let Some(bg) = self.spec.blue_green() else {
            return true;
        };
        let condition = pause_condition(self.rollout, PauseReason::BlueGreenPause);
        if bg.auto_promotion_enabled_or_default() {
            let seconds = bg.auto_promotion_seconds.unwrap_or(0);
            if seconds == 0 {
                return true;
            }
            match condition {
                Some(c) => c
                    .start_time
                    .0
                    .checked_add(jiff::SignedDuration::from_secs(i64::from(seconds)))
                    .is_ok_and(|deadline| self.now > deadline),
                None => false,
            }
        } else {
            self.old.controller_pause && condition.is_none()
        }
    }

    /// `reconcileBlueGreenPause`.
    fn reconcile_blue_green_pause(&mut self, active: &ServiceState) {
        if self.old.abort || !self.ready_for_pause() || self.halt_progress().is_some() {
            return;
        }
        if self.is_fast_tracked(active) {
            self.pause.remove_pause(PauseReason::BlueGreenPause);
            return;
        }
        let new_hash = self.new_rs.as_ref().map(|rs| rs.pod_hash().to_string());
        if new_hash.as_deref() == Some(active.selected_hash())
            || self.old.blue_green.scale_up_preview_check_point
            || !self.needs_controller_pause()
        {
            self.pause.remove_pause(PauseReason::BlueGreenPause);
            return;
        }
        if !self.completed_pre_promotion_analysis() {
            return;
        }
        match pause_condition(self.rollout, PauseReason::BlueGreenPause) {
            Some(condition) => {
                if self.completed_blue_green_pause() {
                    self.pause.remove_pause(PauseReason::BlueGreenPause);
                } else if let Some(bg) = self.spec.blue_green() {
                    let seconds = bg.auto_promotion_seconds.unwrap_or(0);
                    if bg.auto_promotion_enabled_or_default()
                        && seconds > 0
                        && let Ok(at) = condition
                            .start_time
                            .0
                            .checked_add(jiff::SignedDuration::from_secs(i64::from(seconds)))
                    {
                        self.requeue_after_deadline(at);
                    }
                }
            }
            None => {
                if !self.old.controller_pause {
                    self.pause.add_pause(PauseReason::BlueGreenPause);
                }
            }
        }
    }

    /// `reconcileActiveService`.
    fn reconcile_active_service(&mut self, active: &ServiceState) {
        if self.halt_progress().is_some() {
            return;
        }
        let Some(new) = self.new_rs.clone() else {
            return;
        };
        if !self.ready_for_pause() || !is_saturated(self.spec, Some(&new)) {
            return;
        }
        let mut hash = active.selected_hash().to_string();
        if self.is_fast_tracked(active) {
            hash = new.pod_hash().to_string();
        }
        if self.completed_blue_green_pause() && self.completed_pre_promotion_analysis() {
            hash = new.pod_hash().to_string();
        }
        if self.old.abort {
            hash = self.old.stable_rs.clone();
        }
        if hash.is_empty() {
            return;
        }
        self.switch_service_selector(active, &hash);
    }

    /// `skipPostPromotionAnalysisRun`.
    pub(crate) fn skip_post_promotion_analysis(&self) -> bool {
        let current = self.new_rs.as_ref().map(|rs| rs.pod_hash()).unwrap_or("");
        self.old.stable_rs == current
            || self.old.blue_green.active_selector != current
            || current.is_empty()
            || !is_saturated(self.spec, self.new_rs.as_ref())
    }

    /// `skipPrePromotionAnalysisRun`.
    pub(crate) fn skip_pre_promotion_analysis(&self) -> bool {
        let current = self.new_rs.as_ref().map(|rs| rs.pod_hash()).unwrap_or("");
        let active = self.old.blue_green.active_selector.as_str();
        if self.old.stable_rs == current
            || active.is_empty()
            || active == current
            || current.is_empty()
        {
            return true;
        }
        let preview_count = self
            .spec
            .blue_green()
            .and_then(|bg| bg.preview_replica_count);
        match (preview_count, &self.new_rs) {
            (Some(count), Some(new)) => {
                new.spec_replicas != count || new.available_replicas != count
            }
            _ => !is_saturated(self.spec, self.new_rs.as_ref()),
        }
    }

    /// `syncRolloutStatusBlueGreen`.
    fn sync_blue_green_status(&mut self, preview: Option<&ServiceState>, active: &ServiceState) {
        let mut status = self.base_status();
        status.stable_rs = self.old.stable_rs.clone();
        if self.pod_template_changed() {
            self.reset_status(&mut status);
        }
        if self.old.promote_full || self.is_rollback_within_window() {
            self.pause.clear_pauses();
            self.pause.remove_abort();
        }
        status.blue_green.preview_selector = preview
            .map(|svc| svc.selected_hash().to_string())
            .unwrap_or_default();
        status.blue_green.active_selector = active.selected_hash().to_string();
        // Account for the switches planned in this reconcile, as Argo's in-memory service does.
        for action in &self.plan.actions {
            if let rollout_runner_api::plan::Action::SwitchServiceSelector { service, to, .. } =
                action
            {
                if Some(service.as_str()) == preview.map(|p| p.name.as_str()) {
                    status.blue_green.preview_selector = to.clone();
                }
                if *service == active.name {
                    status.blue_green.active_selector = to.clone();
                }
            }
        }
        match self.should_full_promote(&status) {
            Some(reason) => self.promote_stable(&mut status, &reason),
            None => {
                status.blue_green.scale_up_preview_check_point = self.scale_up_preview_check_point()
            }
        }
        let active_rs = self
            .all_rss
            .iter()
            .chain(self.new_rs.iter())
            .find(|rs| {
                !status.blue_green.active_selector.is_empty()
                    && rs.pod_hash() == status.blue_green.active_selector
            })
            .cloned();
        match active_rs {
            Some(rs) => {
                status.hpa_replicas = rs.replicas;
                status.selector =
                    format_selector(Some(&selector_with_hash(self.spec, rs.pod_hash())));
                status.available_replicas = rs.available_replicas;
                status.ready_replicas = rs.ready_replicas;
            }
            None => {
                status.hpa_replicas = self.all_rss.iter().map(|rs| rs.replicas).sum();
                status.selector = format_selector(self.spec.selector.as_ref());
                status.available_replicas =
                    self.all_rss.iter().map(|rs| rs.available_replicas).sum();
            }
        }
        let status = self.calculate_conditions(status);
        self.persist(status);
    }

    /// `calculateScaleUpPreviewCheckPoint`: a one-way trip-wire for `previewReplicaCount`.
    fn scale_up_preview_check_point(&self) -> bool {
        let Some(count) = self
            .spec
            .blue_green()
            .and_then(|bg| bg.preview_replica_count)
        else {
            return false;
        };
        if self.old.blue_green.scale_up_preview_check_point {
            return true;
        }
        if !self.completed_pre_promotion_analysis() || !self.completed_blue_green_pause() {
            return false;
        }
        self.new_rs
            .as_ref()
            .is_some_and(|rs| rs.available_replicas == count)
    }
}

fn selector_with_hash(
    spec: &rollout_runner_api::crd::RolloutSpec,
    hash: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
    let mut selector = spec.selector.clone().unwrap_or_default();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(
            rollout_runner_api::crd::POD_TEMPLATE_HASH_LABEL.into(),
            hash.into(),
        );
    selector
}
