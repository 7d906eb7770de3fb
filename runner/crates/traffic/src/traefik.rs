//! Traefik (Argo's `rollout/trafficrouting/traefik`): the weights of the canary and stable
//! Services in a TraefikService's `spec.weighted.services`. No header or mirror routes.

use serde_json::{Value, json};

use rollout_runner_api::crd::{Rollout, TraefikTrafficRouting};
use rollout_runner_api::plan::TrafficWeights;

use super::{ObjectKey, Objects, Op, Resource, Result, Router, TrafficError, existing_mut};

pub(crate) struct Traefik<'a> {
    rollout: &'a Rollout,
    config: &'a TraefikTrafficRouting,
}

impl<'a> Traefik<'a> {
    pub(crate) fn new(rollout: &'a Rollout, config: &'a TraefikTrafficRouting) -> Self {
        Self { rollout, config }
    }

    fn key(&self) -> ObjectKey {
        ObjectKey::new(
            Resource::TraefikService,
            self.rollout.namespace_or_default(),
            &self.config.weighted_traefik_service_name,
        )
    }
}

impl Router for Traefik<'_> {
    fn name(&self) -> &'static str {
        "traefik"
    }

    fn objects(&self, op: Op) -> Vec<ObjectKey> {
        match op {
            Op::Weight => vec![self.key()],
            Op::Hash | Op::Routes | Op::Observe => Vec::new(),
        }
    }

    fn set_weight(&self, objects: &mut Objects, weights: &TrafficWeights) -> Result<()> {
        let key = self.key();
        let object = existing_mut(objects, &key)?;
        let services = object
            .pointer_mut("/spec/weighted/services")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| TrafficError::Router {
                router: "traefik",
                message: format!(
                    "TraefikService `{}` has no spec.weighted.services\nhint: make it a weighted TraefikService of the stable and canary Services",
                    key.name
                ),
            })?;
        for (service, weight) in [
            (&weights.canary.service_name, weights.canary.weight),
            (&weights.stable.service_name, weights.stable.weight.max(0)),
        ] {
            let entry = services
                .iter_mut()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(service.as_str()))
                .ok_or_else(|| TrafficError::Router {
                    router: "traefik",
                    message: format!(
                        "TraefikService `{}` has no weighted service `{service}`\nhint: list the stable and canary Services under spec.weighted.services",
                        key.name
                    ),
                })?;
            entry["weight"] = json!(weight);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Resource;
    use crate::testing::{self, Fixture};

    fn rollout() -> String {
        testing::rollout(
            r#"        traefik: {weightedTraefikServiceName: web}
"#,
        )
    }

    fn fixture() -> Fixture {
        let mut fixture = Fixture::new(&rollout());
        fixture.put(
            Resource::TraefikService,
            "shop",
            "web",
            json!({
                "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "9"},
                "spec": {"weighted": {"services": [
                    {"name": "web-stable", "port": 80, "weight": 100},
                    {"name": "web-canary", "port": 80, "weight": 0},
                ], "sticky": {"cookie": {"name": "lvl"}}}},
            }),
        );
        fixture
    }

    #[test]
    fn weights_set_the_weighted_services() {
        let mut fixture = fixture();
        assert_eq!(
            fixture.set_weight(30),
            [testing::patch(
                "TraefikService shop/web",
                json!({"metadata": {"resourceVersion": "9"}, "spec": {"weighted": {"services": [
                    {"name": "web-stable", "port": 80, "weight": 70},
                    {"name": "web-canary", "port": 80, "weight": 30},
                ]}}})
            )]
        );
        assert!(fixture.set_weight(30).is_empty());
    }

    #[test]
    fn a_missing_weighted_service_is_an_error() {
        let mut fixture =
            Fixture::new(&rollout().replace("canaryService: web-canary", "canaryService: other"));
        fixture.put(
            Resource::TraefikService,
            "shop",
            "web",
            json!({"metadata": {"name": "web"}, "spec": {"weighted": {"services": [{"name": "web-stable"}]}}}),
        );
        let error = fixture.try_set_weight(10).unwrap_err().to_string();
        assert_eq!(
            error,
            "traefik: TraefikService `web` has no weighted service `other`\nhint: list the stable and canary Services under spec.weighted.services"
        );
    }
}
