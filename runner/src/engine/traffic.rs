//! Traffic weights for a canary with a traffic router (Argo's `rollout/trafficrouting.go`):
//! which weight the canary should get now, and the router actions that set it.
//!
//! Traffic moves only once the canary pods for the step are available; an abort or the end of
//! the rollout sends every request back to the stable (or to the new stable) first. Actions are
//! planned only when the weights or hashes change; the routers themselves are idempotent.

use crate::crd::{TrafficWeights as StatusWeights, WeightDestination};
use crate::observed::ReplicaSetState;
use crate::plan::{Action, TrafficWeights, WeightedDestination};

use super::conditions::Reason;
use super::context::Ctx;
use super::replicas;

impl Ctx<'_> {
    /// `reconcileTrafficRouting`.
    pub(crate) fn reconcile_traffic_routing(&mut self) {
        if self.spec.traffic_routing().is_none() {
            return;
        }
        // Until the routers are touched again, the recorded weights stand.
        self.new_status.canary.weights = self.old.canary.weights.clone();
        let max = self.spec.max_traffic_weight();
        let canary_service = self
            .spec
            .canary()
            .map(|c| c.canary_service.clone())
            .unwrap_or_default();
        let stable_service = self
            .spec
            .canary()
            .map(|c| c.stable_service.clone())
            .unwrap_or_default();
        let mut canary_hash = self
            .new_rs
            .as_ref()
            .map(|rs| rs.pod_hash().to_string())
            .unwrap_or_default();
        let stable_hash = self
            .stable_rs
            .as_ref()
            .map(|rs| rs.pod_hash().to_string())
            .unwrap_or_default();
        let fully_promoted =
            !self.old.stable_rs.is_empty() && self.old.stable_rs == self.old.current_pod_hash;
        let new_available = self.new_rs.as_ref().map_or(0, |rs| rs.available_replicas);
        let dynamic = self.spec.canary().is_some_and(|c| c.dynamic_stable_scale);
        let (step, index) = replicas::current_step(self.spec, &self.old);
        let mut remove_managed_routes = false;

        let desired = if let Some(previous) = self.is_dynamically_rolling_back_to_stable() {
            canary_hash = previous;
            self.desired_weight_on_abort_or_stable_rollback()
        } else if fully_promoted {
            remove_managed_routes = true;
            0
        } else if self.is_aborted() {
            let weight = self.desired_weight_on_abort_or_stable_rollback();
            if !dynamic || weight == 0 {
                let stable = self.stable_rs.clone();
                self.ensure_service_targets(&canary_service, stable.as_ref(), true);
            }
            remove_managed_routes = true;
            weight
        } else if self.new_rs.is_none() || new_available == 0 {
            remove_managed_routes = true;
            0
        } else if self.old.promote_full {
            remove_managed_routes = true;
            if dynamic {
                (i64::from(max) * i64::from(new_available) / i64::from(self.replicas().max(1)))
                    as i32
            } else {
                self.old
                    .canary
                    .weights
                    .as_ref()
                    .map_or(0, |w| w.canary.weight)
            }
        } else if let Some(index) = index {
            let others: Vec<&ReplicaSetState> = self.other_rss.iter().collect();
            let at_desired = replicas::at_desired_replica_counts(
                self.spec,
                &self.old,
                self.new_rs.as_ref(),
                self.stable_rs.as_ref(),
                &others,
                None,
            );
            let steps = self.spec.steps();
            if !at_desired {
                // The canary is not ready for this step's weight: keep the previous one.
                let end = usize::try_from(index).unwrap_or(0).min(steps.len());
                steps[..end]
                    .iter()
                    .rev()
                    .find_map(|s| s.set_weight)
                    .unwrap_or(0)
            } else if usize::try_from(index).ok() != Some(steps.len()) {
                replicas::current_set_weight(self.spec, &self.old)
            } else {
                max
            }
        } else {
            max
        };

        // The stable must be able to take the traffic left to it.
        if let Some(stable) = &self.stable_rs {
            let needed = (i64::from(max - desired) * i64::from(self.replicas())
                / i64::from(max.max(1))) as i32;
            if !fully_promoted && stable.available_replicas < needed && !dynamic {
                return;
            }
        }

        let revision_over_one = self.revision_number() > 1;
        if let Some(step) = step
            && revision_over_one
            && !self.is_aborted()
            && !fully_promoted
        {
            if let Some(route) = &step.set_header_route {
                self.plan
                    .actions
                    .push(Action::SetHeaderRoute(route.clone()));
            }
            if let Some(route) = &step.set_mirror_route {
                self.plan
                    .actions
                    .push(Action::SetMirrorRoute(route.clone()));
            }
        }

        let additional: Vec<WeightedDestination> = Vec::new();
        let additional_total: i32 = additional.iter().map(|d| d.weight).sum();
        let new_weights = StatusWeights {
            canary: WeightDestination {
                weight: desired,
                service_name: canary_service.clone(),
                pod_template_hash: canary_hash.clone(),
            },
            stable: WeightDestination {
                weight: max - desired - additional_total,
                service_name: stable_service.clone(),
                pod_template_hash: stable_hash.clone(),
            },
            additional: Vec::new(),
            verified: None,
        };
        let previous = self.old.canary.weights.clone();
        let changed = previous.as_ref().is_none_or(|p| {
            p.canary.weight != new_weights.canary.weight
                || p.stable.weight != new_weights.stable.weight
                || p.canary.pod_template_hash != new_weights.canary.pod_template_hash
                || p.stable.pod_template_hash != new_weights.stable.pod_template_hash
        });
        if changed {
            if remove_managed_routes
                && self
                    .spec
                    .traffic_routing()
                    .is_some_and(|t| !t.managed_routes.is_empty())
            {
                self.plan.actions.push(Action::RemoveManagedRoutes);
            }
            self.plan.actions.push(Action::UpdateTrafficHash {
                canary_hash: canary_hash.clone(),
                stable_hash: stable_hash.clone(),
                additional: additional.clone(),
            });
            self.plan
                .actions
                .push(Action::SetTrafficWeight(TrafficWeights {
                    canary: WeightedDestination {
                        service_name: canary_service,
                        pod_template_hash: canary_hash,
                        weight: desired,
                    },
                    stable: WeightedDestination {
                        service_name: stable_service,
                        pod_template_hash: stable_hash,
                        weight: max - desired - additional_total,
                    },
                    additional,
                }));
            let old_weight = previous.as_ref().map_or(0, |p| p.canary.weight);
            if old_weight != desired || previous.is_none() {
                self.event(
                    Reason::TrafficWeightUpdated,
                    format!("Traffic weight updated from {old_weight} to {desired}"),
                );
            }
        }
        let mut weights = new_weights;
        weights.verified = self.observed.traffic_weight_verified;
        self.new_status.canary.weights = Some(weights);
    }

    /// Argo's `calculateDesiredWeightOnAbortOrStableRollback`: 0, or with dynamic stable
    /// scaling, the largest setWeight the stable can already absorb, walking the steps back.
    fn desired_weight_on_abort_or_stable_rollback(&self) -> i32 {
        if !self.spec.canary().is_some_and(|c| c.dynamic_stable_scale) {
            return 0;
        }
        let replicas = self.replicas();
        let stable_available = self
            .stable_rs
            .as_ref()
            .map_or(0, |rs| rs.available_replicas);
        let canary_available = self.new_rs.as_ref().map_or(0, |rs| rs.available_replicas);
        let (_, delay_set) = replicas::abort_scale_down_delay(self.spec);
        let threshold = if delay_set {
            replicas - stable_available
        } else {
            (replicas - stable_available).max(canary_available)
        };
        self.spec
            .steps()
            .iter()
            .rev()
            .filter_map(|s| s.set_weight)
            .find(|w| replicas::traffic_weight_to_replicas(replicas, *w) < threshold)
            .unwrap_or(0)
    }
}
