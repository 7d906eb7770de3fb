//! Scaling the new and the old ReplicaSets (Argo's `rollout/replicaset.go`).

use rollout_runner_api::observed::ReplicaSetState;

use super::context::Ctx;
use super::replicas;

impl Ctx<'_> {
    /// `NewRSNewReplicas`: the size the new ReplicaSet should have now.
    pub(crate) fn new_rs_desired_replicas(&self, new: &ReplicaSetState) -> i32 {
        let spec = self.spec;
        let replicas = self.replicas();
        if let Some(bg) = spec.blue_green() {
            let Some(preview_count) = bg.preview_replica_count else {
                return replicas;
            };
            let active = self.all_rss.iter().find(|rs| {
                !self.old.blue_green.active_selector.is_empty()
                    && rs.pod_hash() == self.old.blue_green.active_selector
            });
            if active.is_none_or(|rs| rs.name == new.name) {
                return replicas;
            }
            if self.old.promote_full {
                return replicas;
            }
            if new.pod_hash() != self.old.current_pod_hash {
                return preview_count;
            }
            let not_paused = !spec.paused && self.old.pause_conditions.is_empty();
            if not_paused && self.old.blue_green.scale_up_preview_check_point {
                return replicas;
            }
            return preview_count;
        }
        let others: Vec<&ReplicaSetState> = self.other_rss.iter().collect();
        if spec.traffic_routing().is_none() {
            replicas::basic_canary_counts(
                spec,
                &self.old,
                Some(new),
                self.stable_rs.as_ref(),
                &others,
            )
            .0
        } else {
            replicas::traffic_routed_canary_counts(
                spec,
                &self.old,
                self.new_status.canary.weights.as_ref(),
            )
            .0
        }
    }

    /// `reconcileNewReplicaSet`: scale the new ReplicaSet; on abort with a delay, keep it up
    /// until its scale-down deadline. Returns whether it was scaled.
    pub(crate) fn reconcile_new_replica_set(&mut self) -> bool {
        let Some(new) = self.new_rs.clone() else {
            return false;
        };
        let mut count = self.new_rs_desired_replicas(&new);
        if self.should_delay_scale_down_on_abort() {
            let (delay, _) = replicas::abort_scale_down_delay(self.spec);
            if new.scale_down_deadline().is_some() {
                match self.time_before_scale_down(&new) {
                    Some(deadline) => {
                        self.requeue_after_deadline(deadline);
                        return false;
                    }
                    None => count = 0,
                }
            } else if let Some(delay) = delay {
                // Start the countdown only once the stable can take all the traffic back.
                let stable_ready = self
                    .stable_rs
                    .as_ref()
                    .is_some_and(|rs| rs.available_replicas == self.replicas());
                if stable_ready {
                    self.add_scale_down_delay(&new, delay);
                    if let Ok(at) = jiff::Timestamp::from_second(self.now.as_second() + delay) {
                        self.requeue_after_deadline(at);
                    }
                }
                return false;
            }
        }
        let scaled = self.scale_replica_set(&new, count);
        self.scale_deployment_progressively(new.revision(), new.spec_replicas, count);
        scaled
    }

    /// `reconcileOtherReplicaSets`: scale down ReplicaSets that are neither new nor stable.
    pub(crate) fn reconcile_other_replica_sets(&mut self) -> bool {
        let active: Vec<ReplicaSetState> = self
            .other_rss
            .iter()
            .filter(|rs| rs.is_active())
            .cloned()
            .collect();
        if active.iter().map(|rs| rs.spec_replicas).sum::<i32>() == 0 {
            return false;
        }
        if self.spec.canary().is_some() {
            self.scale_down_old_replica_sets_for_canary(active) > 0
        } else {
            self.scale_down_old_replica_sets_for_blue_green(active)
        }
    }

    /// `cleanupUnhealthyReplicas`: first drop old pods that are not available; they only block
    /// progress. Returns the ReplicaSets as they will be and the pods removed.
    fn cleanup_unhealthy_replicas(
        &mut self,
        mut old: Vec<ReplicaSetState>,
    ) -> (Vec<ReplicaSetState>, i32) {
        old.sort_by_key(|rs| rs.created_at);
        let mut removed = 0;
        for rs in &mut old {
            if rs.spec_replicas == 0 || rs.spec_replicas == rs.available_replicas {
                continue;
            }
            if rs.available_replicas > rs.spec_replicas {
                continue;
            }
            removed += rs.spec_replicas - rs.available_replicas;
            let snapshot = rs.clone();
            self.scale_replica_set(&snapshot, rs.available_replicas);
            rs.spec_replicas = rs.available_replicas;
        }
        (old, removed)
    }

    /// `scaleDownOldReplicaSetsForCanary`. Returns the number of pods scaled away.
    fn scale_down_old_replica_sets_for_canary(&mut self, old: Vec<ReplicaSetState>) -> i32 {
        let (mut old, mut total) = self.cleanup_unhealthy_replicas(old);
        let available: i32 = self.all_rss.iter().map(|rs| rs.available_replicas).sum();
        let min_available = self.replicas() - replicas::max_unavailable(self.spec);
        let mut max_scale_down = available - min_available;
        if max_scale_down <= 0 {
            return total;
        }
        old.sort_by(|a, b| {
            b.revision()
                .cmp(&a.revision())
                .then(b.created_at.cmp(&a.created_at))
        });
        let routed = self.spec.traffic_routing().is_some();
        let dynamic = self.spec.canary().is_some_and(|c| c.dynamic_stable_scale);
        let fully_promoted =
            !self.old.stable_rs.is_empty() && self.old.stable_rs == self.old.current_pod_hash;
        let mut annotated = 0;
        for rs in old {
            if routed && self.is_replica_set_referenced(&rs) {
                continue;
            }
            if max_scale_down <= 0 {
                break;
            }
            if rs.spec_replicas == 0 {
                continue;
            }
            let mut desired = 0;
            if !routed {
                // Every pod of a basic canary serves traffic: scale old ones down within budget.
                if rs.spec_replicas > max_scale_down {
                    desired = rs.spec_replicas - max_scale_down;
                }
            } else if fully_promoted || rs.scale_down_deadline().is_some() {
                // Likely the previous stable: honour the scale-down delay.
                if !dynamic {
                    (annotated, desired) =
                        self.scale_down_delay_helper(&rs, annotated, rs.spec_replicas);
                }
            }
            if rs.spec_replicas == desired {
                continue;
            }
            self.scale_replica_set(&rs, desired);
            let scaled = rs.spec_replicas - desired;
            max_scale_down -= scaled;
            total += scaled;
        }
        total
    }

    /// `scaleDownOldReplicaSetsForBlueGreen`. Returns whether anything was scaled.
    fn scale_down_old_replica_sets_for_blue_green(
        &mut self,
        mut old: Vec<ReplicaSetState>,
    ) -> bool {
        let inconclusive = self
            .old
            .pause_conditions
            .iter()
            .any(|c| c.reason == rollout_runner_api::crd::PauseReason::InconclusiveAnalysis);
        if inconclusive {
            return false;
        }
        if let Some(bg) = self.spec.blue_green()
            && bg.post_promotion_analysis.is_some()
            && bg.scale_down_delay_seconds.is_none()
            && !self.skip_post_promotion_analysis()
        {
            let succeeded = self.current_ars.post_promotion.as_ref().is_some_and(|ar| {
                ar.status.as_ref().map(|s| s.phase)
                    == Some(rollout_runner_api::crd::AnalysisPhase::Successful)
            });
            if !succeeded {
                return false;
            }
        }
        old.sort_by(|a, b| {
            b.revision()
                .cmp(&a.revision())
                .then(b.created_at.cmp(&a.created_at))
        });
        let replicas = self.replicas();
        let mut annotated = 0;
        let mut scaled = false;
        for rs in old {
            if self.is_replica_set_referenced(&rs) || rs.spec_replicas == 0 {
                continue;
            }
            let desired;
            (annotated, desired) = self.scale_down_delay_helper(&rs, annotated, replicas);
            if rs.spec_replicas == desired {
                continue;
            }
            self.scale_replica_set(&rs, desired);
            scaled = true;
        }
        scaled
    }

    /// `scaleDownDelayHelper`: annotate with a deadline, keep up until it passes, and scale
    /// down beyond the revision limit. Returns (annotated so far, desired replicas).
    fn scale_down_delay_helper(
        &mut self,
        rs: &ReplicaSetState,
        mut annotated: i32,
        rollout_replicas: i32,
    ) -> (i32, i32) {
        let limit = replicas::scale_down_revision_limit(self.spec);
        let mut desired = 0;
        if rs.scale_down_deadline().is_none() && rs.spec_replicas > 0 {
            if annotated < limit {
                annotated += 1;
                desired = rs.spec_replicas;
                let delay = replicas::scale_down_delay_seconds(self.spec);
                self.add_scale_down_delay(rs, delay);
                if let Ok(at) = jiff::Timestamp::from_second(self.now.as_second() + delay) {
                    self.requeue_after_deadline(at);
                }
            }
        } else if rs.scale_down_deadline().is_some() {
            annotated += 1;
            if annotated <= limit
                && let Some(deadline) = self.time_before_scale_down(rs)
            {
                self.requeue_after_deadline(deadline);
                desired = rollout_replicas;
            }
        }
        (annotated, desired)
    }
}
