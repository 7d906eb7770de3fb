//! SMI TrafficSplit (Argo's `rollout/trafficrouting/smi`): one TrafficSplit, created and owned
//! by the Rollout, named `trafficSplitName` (default: the Rollout's name), for the root Service
//! (`rootService`, default the stable Service), with backends canary, experiment Services,
//! stable.
//!
//! `v1alpha1` weights are Kubernetes quantities (written as strings, as Argo does); `v1alpha2`
//! and `v1alpha3` weights are integers. The version is the newest of those the API server
//! serves. Only the spec is written: labels and annotations others put there stay.

use serde_json::{Value, json};

use rollout_runner_api::crd::{Rollout, SmiTrafficRouting};
use rollout_runner_api::owner::Owner;
use rollout_runner_api::plan::TrafficWeights;

use super::nginx::controlled_by;
use super::{ObjectKey, Objects, Op, Resource, Result, Router, TrafficError};

pub(crate) struct Smi<'a> {
    rollout: &'a Rollout,
    config: &'a SmiTrafficRouting,
    /// `split.smi-spec.io/<version>`.
    api_version: String,
}

/// The TrafficSplit's name.
pub(crate) fn traffic_split_name<'a>(
    rollout: &'a Rollout,
    config: &'a SmiTrafficRouting,
) -> &'a str {
    if config.traffic_split_name.is_empty() {
        rollout.name()
    } else {
        &config.traffic_split_name
    }
}

impl<'a> Smi<'a> {
    pub(crate) fn new(
        rollout: &'a Rollout,
        config: &'a SmiTrafficRouting,
        api_version: String,
    ) -> Self {
        Self {
            rollout,
            config,
            api_version,
        }
    }

    fn key(&self) -> ObjectKey {
        ObjectKey::new(
            Resource::TrafficSplit,
            self.rollout.namespace_or_default(),
            traffic_split_name(self.rollout, self.config),
        )
    }

    fn weight(&self, weight: i32) -> Value {
        if self.api_version.ends_with("/v1alpha1") {
            json!(weight.to_string())
        } else {
            json!(weight)
        }
    }

    /// The spec for `weights` (Argo's `generateTrafficSplits`).
    fn spec(&self, weights: &TrafficWeights) -> Value {
        let root = if self.config.root_service.is_empty() {
            &weights.stable.service_name
        } else {
            &self.config.root_service
        };
        let mut backends = vec![json!({
            "service": weights.canary.service_name,
            "weight": self.weight(weights.canary.weight),
        })];
        backends.extend(
            weights
                .additional
                .iter()
                .map(|d| json!({"service": d.service_name, "weight": self.weight(d.weight)})),
        );
        backends.push(json!({
            "service": weights.stable.service_name,
            "weight": self.weight(weights.stable.weight.max(0)),
        }));
        json!({"service": root, "backends": backends})
    }
}

impl Router for Smi<'_> {
    fn name(&self) -> &'static str {
        "smi"
    }

    fn objects(&self, op: Op) -> Vec<ObjectKey> {
        match op {
            Op::Weight => vec![self.key()],
            Op::Hash | Op::Routes | Op::Observe => Vec::new(),
        }
    }

    fn set_weight(&self, objects: &mut Objects, weights: &TrafficWeights) -> Result<()> {
        let key = self.key();
        let spec = self.spec(weights);
        let next = match objects.get(&key).and_then(Option::as_ref) {
            Some(current) => {
                if !controlled_by(current, self.rollout) {
                    return Err(TrafficError::Router {
                        router: "smi",
                        message: format!(
                            "Rollout does not own TrafficSplit `{}`\nhint: delete the TrafficSplit or set trafficRouting.smi.trafficSplitName to another name",
                            key.name
                        ),
                    });
                }
                let mut next = current.clone();
                next["spec"] = spec;
                next
            }
            None => json!({
                "apiVersion": self.api_version,
                "kind": "TrafficSplit",
                "metadata": {
                    "name": key.name,
                    "namespace": key.namespace,
                    "ownerReferences": [Owner::Rollout(self.rollout).reference()],
                },
                "spec": spec,
            }),
        };
        objects.insert(key, Some(next));
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
            r#"        smi: {rootService: web}
"#,
        )
    }

    #[test]
    fn the_first_weight_creates_an_owned_traffic_split() {
        let mut fixture = Fixture::new(&rollout());
        let writes = fixture.set_weight(0);
        insta::assert_yaml_snapshot!(writes);
    }

    #[test]
    fn weights_patch_the_backends_of_the_spec() {
        let mut fixture = Fixture::new(&rollout());
        fixture.set_weight(0);
        fixture.edit(Resource::TrafficSplit, "shop", "web", |o| {
            o["metadata"]["labels"] = json!({"team": "shop"});
        });
        assert_eq!(
            fixture.set_weight(5),
            [testing::patch(
                "TrafficSplit shop/web",
                json!({"metadata": {"resourceVersion": "2"}, "spec": {"backends": [
                    {"service": "web-canary", "weight": 5},
                    {"service": "web-stable", "weight": 95},
                ]}})
            )]
        );
        let split = fixture.object(Resource::TrafficSplit, "shop", "web");
        assert_eq!(split["metadata"]["labels"]["team"], "shop");
        assert!(fixture.set_weight(5).is_empty());
    }

    #[test]
    fn experiment_services_get_backends_between_canary_and_stable() {
        let mut fixture =
            Fixture::new(&rollout().replace("{rootService: web}", "{trafficSplitName: split}"));
        fixture.set_weight_with(10, &[("web-exp", 20)]);
        let split = fixture.object(Resource::TrafficSplit, "shop", "split");
        assert_eq!(
            split["spec"],
            json!({"service": "web-stable", "backends": [
                {"service": "web-canary", "weight": 10},
                {"service": "web-exp", "weight": 20},
                {"service": "web-stable", "weight": 70},
            ]})
        );
    }

    #[test]
    fn v1alpha1_weights_are_quantities() {
        let mut fixture = Fixture::new(&rollout());
        fixture
            .versions
            .insert(Resource::TrafficSplit, "split.smi-spec.io/v1alpha1".into());
        fixture.set_weight(25);
        let split = fixture.object(Resource::TrafficSplit, "shop", "web");
        assert_eq!(split["apiVersion"], "split.smi-spec.io/v1alpha1");
        assert_eq!(split["spec"]["backends"][0]["weight"], "25");
        assert_eq!(split["spec"]["backends"][1]["weight"], "75");
    }

    #[test]
    fn a_traffic_split_of_someone_else_is_refused() {
        let mut fixture = Fixture::new(&rollout());
        fixture.put(
            Resource::TrafficSplit,
            "shop",
            "web",
            json!({"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"}, "spec": {}}),
        );
        let error = fixture.try_set_weight(10).unwrap_err().to_string();
        assert!(
            error.starts_with("smi: Rollout does not own TrafficSplit `web`"),
            "{error}"
        );
    }
}
