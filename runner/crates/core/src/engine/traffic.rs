//! Traffic weights for a canary with a traffic router (Argo's `rollout/trafficrouting.go`):
//! which weight the canary should get now, and the router actions that set it.
//!
//! Traffic moves only once the canary pods for the step are available; an abort or the end of
//! the rollout sends every request back to the stable (or to the new stable) first. Actions are
//! planned only when the weights or hashes change (or managed routes are left to remove); the
//! routers themselves are idempotent.

use rollout_runner_api::crd::{AnalysisPhase, TrafficWeights as StatusWeights, WeightDestination};
use rollout_runner_api::observed::ReplicaSetState;
use rollout_runner_api::plan::{Action, TrafficWeights, WeightedDestination};

use super::conditions::Reason;
use super::context::Ctx;
use super::replicas;

impl Ctx<'_> {
    /// `reconcileTrafficRouting`.
    pub(crate) fn reconcile_traffic_routing(&mut self) {
        let Some(routing) = self.spec.traffic_routing() else {
            return;
        };
        let has_managed_routes = !routing.managed_routes.is_empty();
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
        let mut additional: Vec<WeightedDestination> = Vec::new();

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
            // Never route to a canary without pods (header routes included); experiment pods
            // may already take traffic.
            remove_managed_routes = true;
            additional = self.experiment_destinations();
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
                additional = self.experiment_destinations();
                let end = usize::try_from(index).unwrap_or(0).min(steps.len());
                steps[..end]
                    .iter()
                    .rev()
                    .find_map(|s| s.set_weight)
                    .unwrap_or(0)
            } else if usize::try_from(index).ok() != Some(steps.len()) {
                additional = self.experiment_destinations();
                replicas::current_set_weight(self.spec, &self.old)
            } else {
                max
            }
        } else {
            // No steps: the canary gets no traffic until it is promoted, when the stable
            // Service switches to it (Argo leaves the weight at 0 here too).
            0
        };
        let additional_total: i32 = additional.iter().map(|d| d.weight).sum();

        // The stable must be able to take the traffic left to it.
        if let Some(stable) = &self.stable_rs {
            let needed = (i64::from(max - desired) * i64::from(self.replicas())
                / i64::from(max.max(1))) as i32;
            if !fully_promoted && stable.available_replicas < needed {
                return;
            }
        }

        // The routers report which managed routes they hold, so leftovers (a crash between
        // writes, an abort at weight 0) are removed even when no weight changes.
        if remove_managed_routes
            && has_managed_routes
            && !self.observed.traffic_managed_routes.is_empty()
        {
            self.plan.actions.push(Action::RemoveManagedRoutes);
        }
        // After the removal, as Argo orders them: a route step sets its route on top. Not on
        // abort or once promoted (Argo would put a step-0 route back right after removing it).
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

        let destination = |d: &WeightedDestination| WeightDestination {
            weight: d.weight,
            service_name: d.service_name.clone(),
            pod_template_hash: d.pod_template_hash.clone(),
        };
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
            additional: additional.iter().map(destination).collect(),
            verified: None,
        };
        let previous = self.old.canary.weights.clone();
        let changed = previous.as_ref().is_none_or(|p| {
            p.canary != new_weights.canary
                || p.stable != new_weights.stable
                || p.additional != new_weights.additional
        });
        if changed {
            let set_weight = Action::SetTrafficWeight(TrafficWeights {
                canary: WeightedDestination {
                    service_name: canary_service,
                    pod_template_hash: canary_hash.clone(),
                    weight: desired,
                },
                stable: WeightedDestination {
                    service_name: stable_service,
                    pod_template_hash: stable_hash.clone(),
                    weight: max - desired - additional_total,
                },
                additional: additional.clone(),
            });
            // Take traffic off a canary without pods before its subsets move to them.
            let drain_first =
                new_available == 0 && previous.as_ref().is_some_and(|p| p.canary.weight > 0);
            if drain_first {
                self.plan.actions.push(set_weight.clone());
            }
            self.plan.actions.push(Action::UpdateTrafficHash {
                canary_hash,
                stable_hash,
                additional,
            });
            if !drain_first {
                self.plan.actions.push(set_weight);
            }
            let message = match &previous {
                None => Some(format!("Traffic weight updated to {desired}")),
                Some(p) if p.canary.weight != desired => Some(format!(
                    "Traffic weight updated from {} to {desired}",
                    p.canary.weight
                )),
                Some(p) if p.additional != new_weights.additional => {
                    Some(format!("Traffic weight updated additional: {}", {
                        let parts: Vec<String> = new_weights
                            .additional
                            .iter()
                            .map(|d| format!("{} {}", d.service_name, d.weight))
                            .collect();
                        parts.join(", ")
                    }))
                }
                Some(_) => None,
            };
            if let Some(message) = message {
                self.event(Reason::TrafficWeightUpdated, message);
            }
        }
        let mut weights = new_weights;
        weights.verified = self.observed.traffic_weight_verified;
        self.new_status.canary.weights = Some(weights);
    }

    /// Argo's `calculateWeightDestinationsFromExperiment`: while the experiment of the current
    /// (or latest) experiment step runs, every template with a `weight` takes that share of
    /// the traffic through its Service, away from the stable.
    fn experiment_destinations(&self) -> Vec<WeightedDestination> {
        let (Some(_), Some(index)) = replicas::current_step(self.spec, &self.old) else {
            return Vec::new();
        };
        let end = usize::try_from(index).map_or(0, |i| i + 1);
        let Some(step) = self
            .spec
            .steps()
            .iter()
            .take(end)
            .rev()
            .find_map(|s| s.experiment.as_ref())
        else {
            return Vec::new();
        };
        let Some(status) = self.current_ex.as_ref().and_then(|ex| ex.status.as_ref()) else {
            return Vec::new();
        };
        if status.phase != Some(AnalysisPhase::Running) {
            return Vec::new();
        }
        status
            .template_statuses
            .iter()
            // A template without a Service (no container ports) has nothing to route to.
            .filter(|t| !t.service_name.is_empty())
            .filter_map(|t| {
                let weight = step
                    .templates
                    .iter()
                    .find(|template| template.name == t.name)?
                    .weight?;
                Some(WeightedDestination {
                    service_name: t.service_name.clone(),
                    pod_template_hash: t.pod_template_hash.clone(),
                    weight,
                })
            })
            .collect()
    }

    /// Argo's `calculateDesiredWeightOnAbortOrStableRollback`: 0, or with dynamic stable
    /// scaling, the largest setWeight the stable can already absorb, walking the steps back.
    fn desired_weight_on_abort_or_stable_rollback(&self) -> i32 {
        if !self.spec.canary().is_some_and(|c| c.dynamic_stable_scale) {
            return 0;
        }
        let replicas = self.replicas();
        let max = self.spec.max_traffic_weight();
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
            .find(|w| replicas::traffic_weight_to_replicas(replicas, *w, max) < threshold)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
