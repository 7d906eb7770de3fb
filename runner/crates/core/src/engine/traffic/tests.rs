//! The engine's traffic rules with a router (argo-semantics §3.0), on hand-made worlds: one
//! reconcile at a time, looking at the router actions planned and the weights recorded.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::engine::hash::{pod_template_hash, step_hash};
use crate::engine::{Input, reconcile};
use rollout_runner_api::crd::{
    AnalysisPhase, DESIRED_REPLICAS_ANNOTATION, Experiment, ExperimentStatus,
    POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, Rollout, TemplateStatus, TrafficWeights,
    WeightDestination,
};
use rollout_runner_api::observed::{Observed, ReplicaSetState, ServiceState};
use rollout_runner_api::plan::{Action, Plan};

const STABLE: &str = "stable1";

fn rollout(replicas: i32, routing: &str, steps: &str) -> Rollout {
    serde_saphyr::from_str(&format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: shop
  generation: 2
  annotations: {{rollout.argoproj.io/revision: "2"}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: "web:2"}}]}}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
{routing}
      steps: {steps}
"#
    ))
    .expect("test rollout parses")
}

const NGINX: &str = "        managedRoutes: [{name: beta}]\n        nginx: {stableIngress: web}";

/// A rollout mid-release: the stable and the new ReplicaSet with these (spec, available)
/// counts, at step `index`, the routers holding `weights`.
struct World {
    rollout: Rollout,
    observed: Observed,
}

fn replica_set(
    hash: &str,
    revision: &str,
    spec: i32,
    available: i32,
    desired: i32,
) -> ReplicaSetState {
    ReplicaSetState {
        name: format!("web-{hash}"),
        labels: BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            (POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string()),
        ]),
        annotations: BTreeMap::from([
            (REVISION_ANNOTATION.to_string(), revision.to_string()),
            (DESIRED_REPLICAS_ANNOTATION.to_string(), desired.to_string()),
        ]),
        created_at: Timestamp::UNIX_EPOCH,
        spec_replicas: spec,
        replicas: spec,
        ready_replicas: available,
        available_replicas: available,
        min_ready_seconds: 0,
        template: Default::default(),
        deleting: false,
        replica_failure: None,
    }
}

fn weights(canary: i32, stable: i32, canary_hash: &str) -> TrafficWeights {
    TrafficWeights {
        canary: WeightDestination {
            weight: canary,
            service_name: "web-canary".into(),
            pod_template_hash: canary_hash.into(),
        },
        stable: WeightDestination {
            weight: stable,
            service_name: "web-stable".into(),
            pod_template_hash: STABLE.into(),
        },
        additional: Vec::new(),
        verified: None,
    }
}

impl World {
    fn new(mut rollout: Rollout, index: i32, stable: (i32, i32), canary: (i32, i32)) -> Self {
        let replicas = rollout.spec.replicas_or_default();
        let template = rollout.spec.template.clone().unwrap();
        let mut canary_rs = replica_set("", "2", canary.0, canary.1, replicas);
        let hash = pod_template_hash(&template, None);
        canary_rs
            .labels
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        canary_rs.name = format!("web-{hash}");
        canary_rs.template = template;
        let stable_rs = replica_set(STABLE, "1", stable.0, stable.1, replicas);
        let mut status = rollout.status_or_default();
        status.stable_rs = STABLE.into();
        status.current_pod_hash = hash.clone();
        status.current_step_hash = step_hash(rollout.spec.steps());
        status.current_step_index = Some(index);
        status.observed_generation = "2".into();
        status.canary.weights = Some(weights(0, 100, &hash));
        rollout.status = Some(status);
        let service = |name: &str, hash: &str| ServiceState {
            name: name.into(),
            selector: BTreeMap::from([
                ("app".to_string(), "web".to_string()),
                (POD_TEMPLATE_HASH_LABEL.to_string(), hash.to_string()),
            ]),
            annotations: BTreeMap::from([(
                rollout_runner_api::crd::MANAGED_BY_ROLLOUTS_ANNOTATION.to_string(),
                "web".to_string(),
            )]),
        };
        let observed = Observed {
            replica_sets: vec![stable_rs, canary_rs],
            services: BTreeMap::from([
                ("web-stable".to_string(), service("web-stable", STABLE)),
                ("web-canary".to_string(), service("web-canary", &hash)),
            ]),
            ..Default::default()
        };
        Self { rollout, observed }
    }

    fn hash(&self) -> String {
        self.rollout.status_or_default().current_pod_hash
    }

    fn status(
        &mut self,
        change: impl FnOnce(&mut rollout_runner_api::crd::RolloutStatus),
    ) -> &mut Self {
        change(self.rollout.status.as_mut().unwrap());
        self
    }

    fn plan(&self) -> Plan {
        reconcile(&Input {
            rollout: &self.rollout,
            observed: &self.observed,
            now: "2030-01-01T00:00:00Z".parse().unwrap(),
            invalid_spec: None,
        })
    }
}

/// The router actions of a plan, described, in order.
fn traffic_actions(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::SetTrafficWeight(_)
                    | Action::UpdateTrafficHash { .. }
                    | Action::SetHeaderRoute(_)
                    | Action::SetMirrorRoute(_)
                    | Action::RemoveManagedRoutes
            )
        })
        .map(Action::describe)
        .collect()
}

fn recorded(plan: &Plan) -> (i32, i32) {
    let weights = plan
        .status
        .as_ref()
        .and_then(|s| s.canary.weights.as_ref())
        .expect("weights recorded");
    (weights.canary.weight, weights.stable.weight)
}

#[test]
fn traffic_moves_only_once_the_canary_pods_are_available() {
    let steps = "[{setWeight: 25}, {pause: {}}]";
    // The canary pod of the step is not available yet: all traffic stays on the stable.
    let world = World::new(rollout(4, NGINX, steps), 0, (4, 4), (1, 0));
    let plan = world.plan();
    assert!(
        traffic_actions(&plan).is_empty(),
        "{:?}",
        traffic_actions(&plan)
    );
    assert_eq!(recorded(&plan), (0, 100));
    // Available: the weight moves, the stable keeps its four pods.
    let world = World::new(rollout(4, NGINX, steps), 0, (4, 4), (1, 1));
    let plan = world.plan();
    assert_eq!(
        traffic_actions(&plan),
        [
            format!(
                "point traffic subsets at canary {}, stable {STABLE}",
                world.hash()
            ),
            "set traffic weight: canary 25, stable 75".to_string(),
        ]
    );
    assert_eq!(recorded(&plan), (25, 75));
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::ScaleReplicaSet { name, .. } if name.ends_with(STABLE))),
        "the stable stays at 100% of its pods"
    );
}

#[test]
fn the_previous_weight_holds_while_the_next_step_scales_the_canary() {
    let steps = "[{setWeight: 25}, {setWeight: 75}]";
    let mut world = World::new(rollout(4, NGINX, steps), 1, (4, 4), (3, 1));
    world.status(|s| s.canary.weights = Some(weights(25, 75, &s.current_pod_hash)));
    let plan = world.plan();
    assert!(traffic_actions(&plan).is_empty());
    assert_eq!(recorded(&plan), (25, 75));
}

#[test]
fn the_stable_must_be_able_to_take_its_share_before_the_weight_moves() {
    // Back from 75 to 0 on abort, but the stable has one pod of four: Argo's gate
    // (available >= (max - weight) * replicas / max) keeps the routers as they are.
    let steps = "[{setWeight: 75}, {pause: {}}]";
    let mut world = World::new(rollout(4, NGINX, steps), 1, (4, 1), (3, 3));
    world.status(|s| {
        s.abort = true;
        s.canary.weights = Some(weights(75, 25, &s.current_pod_hash));
    });
    assert!(traffic_actions(&world.plan()).is_empty());
    world.observed.replica_sets[0].available_replicas = 4;
    assert_eq!(
        traffic_actions(&world.plan()),
        [
            format!(
                "point traffic subsets at canary {}, stable {STABLE}",
                world.hash()
            ),
            "set traffic weight: canary 0, stable 100".to_string(),
        ]
    );
}

#[test]
fn an_abort_sends_all_traffic_back_before_anything_scales_down() {
    let steps = "[{setWeight: 50}, {pause: {}}]";
    let mut world = World::new(rollout(4, NGINX, steps), 1, (4, 4), (2, 2));
    world.status(|s| {
        s.abort = true;
        s.canary.weights = Some(weights(50, 50, &s.current_pod_hash));
    });
    world.observed.traffic_managed_routes = vec!["beta".into()];
    let plan = world.plan();
    let described: Vec<String> = plan.actions.iter().map(Action::describe).collect();
    let weight_at = described
        .iter()
        .position(|a| a == "set traffic weight: canary 0, stable 100")
        .unwrap_or_else(|| panic!("{described:?}"));
    let routes_at = described
        .iter()
        .position(|a| a == "remove managed routes")
        .unwrap_or_else(|| panic!("{described:?}"));
    assert!(routes_at < weight_at);
    // The canary Service goes back to the stable pods with the weight; the canary
    // ReplicaSet waits for its abort scale-down deadline.
    for (i, action) in plan.actions.iter().enumerate() {
        if let Action::ScaleReplicaSet { name, to, from, .. } = action
            && to < from
        {
            assert!(
                i > weight_at,
                "{name} scaled down before the traffic moved: {described:?}"
            );
        }
    }
    assert!(
        described.contains(&format!(
            "switch service web-canary from '{}' to '{STABLE}'",
            world.hash()
        )),
        "{described:?}"
    );
}

#[test]
fn after_promotion_routes_return_to_the_stable_service_selecting_the_new_pods() {
    let steps = "[{setWeight: 50}]";
    let mut world = World::new(rollout(4, NGINX, steps), 1, (4, 4), (4, 4));
    let hash = world.hash();
    world.status(|s| {
        s.stable_rs = s.current_pod_hash.clone();
        s.canary.weights = Some(weights(100, 0, &s.current_pod_hash));
    });
    world.observed.traffic_managed_routes = vec!["beta".into()];
    world
        .observed
        .services
        .get_mut("web-stable")
        .unwrap()
        .selector
        .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
    let plan = world.plan();
    assert_eq!(
        traffic_actions(&plan),
        [
            "remove managed routes".to_string(),
            format!("point traffic subsets at canary {hash}, stable {hash}"),
            "set traffic weight: canary 0, stable 100".to_string(),
        ]
    );
    // Nothing left to do on the next look.
    world.status(|s| s.canary.weights = plan.status.as_ref().unwrap().canary.weights.clone());
    world.observed.traffic_managed_routes.clear();
    assert!(traffic_actions(&world.plan()).is_empty());
}

#[test]
fn all_steps_done_gives_the_canary_the_max_weight() {
    let routing = "        maxTrafficWeight: 1000\n        nginx: {stableIngress: web}";
    let steps = "[{setWeight: 5}, {setWeight: 500}]";
    let mut world = World::new(rollout(10, routing, steps), 2, (10, 10), (10, 10));
    world.status(|s| s.canary.weights = Some(weights(500, 500, &s.current_pod_hash)));
    let plan = world.plan();
    assert!(
        traffic_actions(&plan).contains(&"set traffic weight: canary 1000, stable 0".to_string()),
        "{:?}",
        traffic_actions(&plan)
    );
}

#[test]
fn max_traffic_weight_scales_the_canary_replicas() {
    let routing = "        maxTrafficWeight: 1000\n        nginx: {stableIngress: web}";
    let steps = "[{setWeight: 5}, {setWeight: 500}]";
    // At 500 of 1000 the canary wants 5 of 10 pods (not 50).
    let world = World::new(rollout(10, routing, steps), 1, (10, 10), (1, 1));
    let plan = world.plan();
    let scaled: Vec<(i32, i32)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ScaleReplicaSet { name, from, to, .. } if !name.ends_with(STABLE) => {
                Some((*from, *to))
            }
            _ => None,
        })
        .collect();
    assert_eq!(scaled, [(1, 5)]);
    // Once available, the routers get 500 and the stable the other 500.
    let mut world = World::new(rollout(10, routing, steps), 1, (10, 10), (5, 5));
    world.status(|s| s.canary.weights = Some(weights(5, 995, &s.current_pod_hash)));
    assert_eq!(recorded(&world.plan()), (500, 500));
}

#[test]
fn without_steps_the_canary_gets_no_traffic_before_promotion() {
    let world = World::new(rollout(4, NGINX, "[]"), 0, (4, 4), (2, 2));
    let mut world = world;
    world.status(|s| s.current_step_index = None);
    let plan = world.plan();
    assert!(
        traffic_actions(&plan).is_empty(),
        "{:?}",
        traffic_actions(&plan)
    );
    assert_eq!(recorded(&plan), (0, 100));
}

#[test]
fn a_canary_without_pods_is_drained_before_its_subsets_move() {
    // A newer release replaced the canary the routers send 30% to; its pods are not up yet.
    let steps = "[{setWeight: 30}, {pause: {}}]";
    let mut world = World::new(rollout(4, NGINX, steps), 0, (4, 4), (2, 0));
    world.status(|s| s.canary.weights = Some(weights(30, 70, "older")));
    assert_eq!(
        traffic_actions(&world.plan()),
        [
            "set traffic weight: canary 0, stable 100".to_string(),
            format!(
                "point traffic subsets at canary {}, stable {STABLE}",
                world.hash()
            ),
        ]
    );
}

#[test]
fn experiment_templates_with_a_weight_take_their_share_off_the_stable() {
    let steps = r#"
        - setWeight: 10
        - experiment:
            duration: 1h
            templates:
              - {name: baseline, specRef: stable, weight: 5}
              - {name: canary, specRef: canary, weight: 5}
              - {name: quiet, specRef: canary}
        - setWeight: 20"#;
    let mut world = World::new(rollout(10, NGINX, steps), 1, (10, 10), (1, 1));
    world.status(|s| {
        s.canary.weights = Some(weights(10, 90, &s.current_pod_hash));
        s.canary.current_experiment = "web-exp".into();
    });
    let template = |name: &str, service: &str| TemplateStatus {
        name: name.into(),
        service_name: service.into(),
        pod_template_hash: format!("{name}-hash"),
        status: "Running".into(),
        ..Default::default()
    };
    let mut experiment = Experiment {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("web-exp".into()),
            namespace: Some("shop".into()),
            ..Default::default()
        },
        spec: Default::default(),
        status: Some(ExperimentStatus {
            phase: Some(AnalysisPhase::Running),
            template_statuses: vec![
                template("baseline", "web-exp-baseline"),
                template("canary", "web-exp-canary"),
                template("quiet", "web-exp-quiet"),
            ],
            ..Default::default()
        }),
    };
    world.observed.experiments = vec![experiment.clone()];
    let plan = world.plan();
    let set = plan
        .actions
        .iter()
        .find_map(|a| match a {
            Action::SetTrafficWeight(w) => Some(w.clone()),
            _ => None,
        })
        .expect("weights change while the experiment runs");
    let additional: Vec<(&str, &str, i32)> = set
        .additional
        .iter()
        .map(|d| {
            (
                d.service_name.as_str(),
                d.pod_template_hash.as_str(),
                d.weight,
            )
        })
        .collect();
    assert_eq!(
        additional,
        [
            ("web-exp-baseline", "baseline-hash", 5),
            ("web-exp-canary", "canary-hash", 5)
        ]
    );
    assert_eq!((set.canary.weight, set.stable.weight), (10, 80));
    let status_weights = plan.status.unwrap().canary.weights.unwrap();
    assert_eq!(status_weights.additional.len(), 2);
    assert_eq!(status_weights.stable.weight, 80);

    // Once the experiment is over, its destinations go and the stable gets them back.
    experiment.status.as_mut().unwrap().phase = Some(AnalysisPhase::Successful);
    world.observed.experiments = vec![experiment];
    world.status(|s| s.canary.weights = Some(status_weights.clone()));
    let plan = world.plan();
    let set = plan
        .actions
        .iter()
        .find_map(|a| match a {
            Action::SetTrafficWeight(w) => Some(w.clone()),
            _ => None,
        })
        .expect("weights change when the experiment ends");
    assert!(set.additional.is_empty());
    assert_eq!((set.canary.weight, set.stable.weight), (10, 90));
}

#[test]
fn header_route_steps_set_their_route_after_managed_routes_are_cleared() {
    let steps = "[{setWeight: 10}, {setHeaderRoute: {name: beta, match: [{headerName: X-Beta, headerValue: {exact: '1'}}]}}, {pause: {}}]";
    let mut world = World::new(rollout(4, NGINX, steps), 1, (4, 4), (1, 1));
    world.status(|s| s.canary.weights = Some(weights(10, 90, &s.current_pod_hash)));
    let plan = world.plan();
    assert_eq!(traffic_actions(&plan), ["set header route beta"]);
    // The step completes at once.
    assert_eq!(plan.status.unwrap().current_step_index, Some(2));
    // Revision 1 (the first deploy) never sets header routes.
    let mut first = World::new(rollout(4, NGINX, steps), 1, (4, 4), (1, 1));
    first
        .rollout
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(REVISION_ANNOTATION.into(), "1".into());
    for rs in &mut first.observed.replica_sets {
        rs.annotations
            .insert(REVISION_ANNOTATION.into(), "1".into());
    }
    first.status(|s| s.canary.weights = Some(weights(10, 90, &s.current_pod_hash)));
    assert!(!traffic_actions(&first.plan()).contains(&"set header route beta".to_string()));
}

#[test]
fn a_step_with_set_canary_scale_and_set_header_route_does_both() {
    // Argo allows setCanaryScale and setHeaderRoute in one step (only setWeight, pause,
    // experiment and analysis exclude each other); each part takes effect.
    let steps = "[{setWeight: 10}, {setCanaryScale: {replicas: 2}, setHeaderRoute: {name: beta, match: [{headerName: X-Beta, headerValue: {exact: '1'}}]}}, {pause: {}}]";
    let mut world = World::new(rollout(4, NGINX, steps), 1, (4, 4), (1, 1));
    world.status(|s| s.canary.weights = Some(weights(10, 90, &s.current_pod_hash)));
    let plan = world.plan();
    assert!(traffic_actions(&plan).contains(&"set header route beta".to_string()));
    let canary_scaled: Vec<(i32, i32)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ScaleReplicaSet { name, from, to, .. } if !name.ends_with(STABLE) => {
                Some((*from, *to))
            }
            _ => None,
        })
        .collect();
    assert_eq!(canary_scaled, [(1, 2)]);
    // Not complete until the canary has its two pods (setCanaryScale decides, as in Argo's
    // completedCurrentCanaryStep); then it moves on.
    assert_eq!(plan.status.unwrap().current_step_index, Some(1));
    let mut scaled = World::new(rollout(4, NGINX, steps), 1, (4, 4), (2, 2));
    scaled.status(|s| s.canary.weights = Some(weights(10, 90, &s.current_pod_hash)));
    let plan = scaled.plan();
    assert!(traffic_actions(&plan).contains(&"set header route beta".to_string()));
    assert_eq!(plan.status.unwrap().current_step_index, Some(2));
}
