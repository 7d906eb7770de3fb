//! NGINX Ingress (Argo's `rollout/trafficrouting/nginx`): a canary Ingress per stable Ingress,
//! `<rollout>-<stable ingress>-canary`, cloned from the stable one and owned by the Rollout,
//! whose `canary-weight` annotation sets the canary's share.
//!
//! Only the rules with a path to the stable Service are copied, rewritten to the canary
//! Service; TLS, the class and `kubernetes.io/ingress.class` come along. Annotations use the
//! configured prefix: `additionalIngressAnnotations` (prefixed), `canaryIngressAnnotations`
//! (verbatim, winning on collision), then `canary`, `canary-weight` and, with
//! `maxTrafficWeight`, `canary-weight-total`. Annotations someone else put on the canary
//! Ingress stay.
//!
//! Header routes (an extension: Argo's NGINX router has none) use ingress-nginx's
//! `canary-by-header`, `-header-value` (exact) and `-header-pattern` (regex or prefix): one
//! header per route, as ingress-nginx can match only one. The route's name is kept in
//! [`MANAGED_HEADER_ROUTE_ANNOTATION`] so it can be removed.

use serde_json::{Value, json};

use rollout_runner_api::crd::{NginxTrafficRouting, Rollout, SetHeaderRoute};
use rollout_runner_api::owner::Owner;
use rollout_runner_api::plan::TrafficWeights;

use super::{ObjectKey, Objects, Op, Resource, Result, Router, Target, TrafficError, existing};

/// The managed header route a canary Ingress carries, by name.
pub(crate) const MANAGED_HEADER_ROUTE_ANNOTATION: &str = "rollout-runner.io/managed-header-route";

pub(crate) struct Nginx<'a> {
    target: Target<'a>,
    config: &'a NginxTrafficRouting,
    /// `maxTrafficWeight`, when set (written as `canary-weight-total`).
    max_weight: Option<i32>,
}

impl<'a> Nginx<'a> {
    pub(crate) fn new(
        target: Target<'a>,
        max_weight: Option<i32>,
        config: &'a NginxTrafficRouting,
    ) -> Self {
        Self {
            target,
            config,
            max_weight,
        }
    }

    fn namespace(&self) -> &str {
        self.target.namespace()
    }

    fn stable_key(&self, stable: &str) -> ObjectKey {
        ObjectKey::new(Resource::Ingress, self.namespace(), stable)
    }

    fn canary_key(&self, stable: &str) -> ObjectKey {
        ObjectKey::new(
            Resource::Ingress,
            self.namespace(),
            &NginxTrafficRouting::canary_ingress_name(self.target.rollout.name(), stable),
        )
    }

    fn prefixed(&self, key: &str) -> String {
        format!("{}/{key}", self.config.annotation_prefix_or_default())
    }

    /// The annotations the configuration puts on every canary Ingress.
    fn configured_annotations(&self) -> Vec<(String, String)> {
        let prefix = self.config.annotation_prefix_or_default();
        let mut out: Vec<(String, String)> = self
            .config
            .additional_ingress_annotations
            .iter()
            .map(|(key, value)| {
                let key = if key.starts_with(prefix) {
                    key.clone()
                } else {
                    format!("{prefix}/{key}")
                };
                (key, value.clone())
            })
            .collect();
        out.extend(
            self.config
                .canary_ingress_annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out
    }

    /// The canary Ingress as the stable one and the configuration make it, with `weight`
    /// (Argo's `canaryIngress`).
    fn desired_canary(&self, stable: &Value, name: &str, weight: i32) -> Result<Value> {
        let stable_name = stable
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut rules = Vec::new();
        for rule in stable
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut rule = rule.clone();
            let mut uses_stable = false;
            for path in rule
                .pointer_mut("/http/paths")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(service) = path.pointer_mut("/backend/service/name")
                    && service.as_str() == Some(self.target.stable_service.as_str())
                {
                    *service = Value::String(self.target.canary_service.clone());
                    uses_stable = true;
                }
            }
            if uses_stable {
                rules.push(rule);
            }
        }
        if rules.is_empty() {
            return Err(TrafficError::Router {
                router: "nginx",
                message: format!(
                    "ingress `{stable_name}` has no rules using service {} backend\nhint: route a path of the Ingress to the stable Service `{}`",
                    self.target.stable_service, self.target.stable_service
                ),
            });
        }
        let mut annotations = serde_json::Map::new();
        if let Some(class) = stable.pointer("/metadata/annotations/kubernetes.io~1ingress.class") {
            annotations.insert("kubernetes.io/ingress.class".into(), class.clone());
        }
        for (key, value) in self.configured_annotations() {
            annotations.insert(key, Value::String(value));
        }
        annotations.insert(self.prefixed("canary"), json!("true"));
        annotations.insert(self.prefixed("canary-weight"), json!(weight.to_string()));
        if let Some(max) = self.max_weight {
            annotations.insert(self.prefixed("canary-weight-total"), json!(max.to_string()));
        }
        let mut spec = json!({ "rules": rules });
        for field in ["ingressClassName", "tls"] {
            if let Some(value) = stable.pointer(&format!("/spec/{field}")) {
                spec[field] = value.clone();
            }
        }
        Ok(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": name,
                "namespace": self.namespace(),
                "annotations": annotations,
                "ownerReferences": [Owner::Rollout(self.target.rollout).reference()],
            },
            "spec": spec,
        }))
    }

    /// Merge the desired canary Ingress into the existing one: its spec and our annotations
    /// win, other annotations stay. Refuses an Ingress this Rollout does not control.
    fn merge_into(&self, existing: &Value, desired: &Value) -> Result<Value> {
        let name = desired
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !controlled_by(existing, self.target.rollout) {
            return Err(TrafficError::Router {
                router: "nginx",
                message: format!(
                    "canary ingress `{name}` already exists and is not owned by this rollout\nhint: delete it, or pick another stable Ingress"
                ),
            });
        }
        let mut merged = existing.clone();
        merged["spec"] = desired["spec"].clone();
        let annotations = merged["metadata"]
            .as_object_mut()
            .map(|m| m.entry("annotations").or_insert_with(|| json!({})));
        if let Some(Value::Object(annotations)) = annotations
            && let Some(wanted) = desired
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
        {
            for (key, value) in wanted {
                annotations.insert(key.clone(), value.clone());
            }
        }
        Ok(merged)
    }

    /// The header route annotations for `route`, or an error when ingress-nginx cannot
    /// express it.
    fn header_annotations(&self, route: &SetHeaderRoute) -> Result<Vec<(String, String)>> {
        let matches = route.r#match.as_deref().unwrap_or_default();
        let [only] = matches else {
            return Err(TrafficError::Router {
                router: "nginx",
                message: format!(
                    "header route `{}` has {} matches; ingress-nginx matches one header\nhint: give the setHeaderRoute step exactly one match",
                    route.name,
                    matches.len()
                ),
            });
        };
        let Some(value) = &only.header_value else {
            return Err(TrafficError::Router {
                router: "nginx",
                message: format!(
                    "header route `{}` has no headerValue\nhint: set headerValue.exact, .prefix or .regex",
                    route.name
                ),
            });
        };
        let mut out = vec![
            (self.prefixed("canary-by-header"), only.header_name.clone()),
            (
                MANAGED_HEADER_ROUTE_ANNOTATION.to_string(),
                route.name.clone(),
            ),
        ];
        if !value.exact.is_empty() {
            out.push((self.prefixed("canary-by-header-value"), value.exact.clone()));
        } else {
            out.push((self.prefixed("canary-by-header-pattern"), value.as_regex()));
        }
        Ok(out)
    }

    /// Drop the header route annotations, then put back what the configuration says (it may
    /// itself set `canary-by-header`).
    fn clear_header_route(&self, canary: &mut Value) {
        let configured = self.configured_annotations();
        if let Some(annotations) = canary
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            for key in [
                self.prefixed("canary-by-header"),
                self.prefixed("canary-by-header-value"),
                self.prefixed("canary-by-header-pattern"),
                MANAGED_HEADER_ROUTE_ANNOTATION.to_string(),
            ] {
                annotations.remove(&key);
            }
            for (key, value) in configured {
                annotations.insert(key, Value::String(value));
            }
        }
    }
}

/// Whether `object` has a controller owner reference to `rollout`.
pub(crate) fn controlled_by(object: &Value, rollout: &Rollout) -> bool {
    let uid = rollout.metadata.uid.as_deref().unwrap_or("");
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|owner| {
            owner.get("controller").and_then(Value::as_bool) == Some(true)
                && owner.get("kind").and_then(Value::as_str) == Some("Rollout")
                && owner.get("uid").and_then(Value::as_str) == Some(uid)
        })
}

impl Router for Nginx<'_> {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn objects(&self, op: Op) -> Vec<ObjectKey> {
        let stables = self.config.stable_ingress_names();
        match op {
            Op::Hash => Vec::new(),
            Op::Observe => stables.iter().map(|s| self.canary_key(s)).collect(),
            Op::Weight | Op::Routes => stables
                .iter()
                .flat_map(|s| [self.stable_key(s), self.canary_key(s)])
                .collect(),
        }
    }

    fn set_weight(&self, objects: &mut Objects, weights: &TrafficWeights) -> Result<()> {
        for stable in self.config.stable_ingress_names() {
            let canary_key = self.canary_key(stable);
            let source = existing(objects, &self.stable_key(stable))?;
            let desired = self.desired_canary(source, &canary_key.name, weights.canary.weight)?;
            let next = match objects.get(&canary_key).and_then(Option::as_ref) {
                Some(current) => self.merge_into(current, &desired)?,
                None => desired,
            };
            objects.insert(canary_key, Some(next));
        }
        Ok(())
    }

    fn set_header_route(&self, objects: &mut Objects, route: &SetHeaderRoute) -> Result<()> {
        let wanted = match route.r#match {
            Some(_) => Some(self.header_annotations(route)?),
            None => None,
        };
        for stable in self.config.stable_ingress_names() {
            let canary_key = self.canary_key(stable);
            let mut canary = match objects.get(&canary_key).and_then(Option::as_ref) {
                Some(current) => current.clone(),
                // Not created yet (no weight set): start it at weight 0.
                None => self.desired_canary(
                    existing(objects, &self.stable_key(stable))?,
                    &canary_key.name,
                    0,
                )?,
            };
            let current_route = canary
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(MANAGED_HEADER_ROUTE_ANNOTATION))
                .and_then(Value::as_str);
            // Removing a route removes only that route.
            if wanted.is_none() && current_route != Some(route.name.as_str()) {
                continue;
            }
            self.clear_header_route(&mut canary);
            if let Some(wanted) = &wanted
                && let Some(annotations) = canary["metadata"]
                    .as_object_mut()
                    .map(|m| m.entry("annotations").or_insert_with(|| json!({})))
                    .and_then(Value::as_object_mut)
            {
                for (key, value) in wanted {
                    annotations.insert(key.clone(), Value::String(value.clone()));
                }
            }
            objects.insert(canary_key, Some(canary));
        }
        Ok(())
    }

    fn remove_managed_routes(&self, objects: &mut Objects) -> Result<()> {
        for stable in self.config.stable_ingress_names() {
            let canary_key = self.canary_key(stable);
            if let Some(Some(canary)) = objects.get_mut(&canary_key)
                && canary
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(MANAGED_HEADER_ROUTE_ANNOTATION))
                    .is_some()
            {
                self.clear_header_route(canary);
            }
        }
        Ok(())
    }

    fn managed_routes(&self, objects: &Objects) -> Vec<String> {
        objects
            .values()
            .flatten()
            .filter_map(|o| {
                o.pointer("/metadata/annotations")?
                    .get(MANAGED_HEADER_ROUTE_ANNOTATION)?
                    .as_str()
                    .map(str::to_string)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{self, Fixture};

    fn rollout() -> String {
        testing::rollout(
            r#"        managedRoutes: [{name: beta}]
        nginx:
          stableIngress: web
          additionalIngressAnnotations: {canary-by-cookie: beta-user}
          canaryIngressAnnotations: {example.com/team: shop}
"#,
        )
    }

    fn stable_ingress() -> Value {
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "resourceVersion": "7",
                "annotations": {
                    "kubernetes.io/ingress.class": "nginx",
                    "nginx.ingress.kubernetes.io/rewrite-target": "/",
                },
            },
            "spec": {
                "ingressClassName": "nginx",
                "tls": [{"hosts": ["web.example.com"], "secretName": "web-tls"}],
                "rules": [
                    {"host": "web.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web-stable", "port": {"number": 80}}}},
                        {"path": "/static", "pathType": "Prefix", "backend": {"service": {"name": "cdn", "port": {"number": 80}}}},
                    ]}},
                    {"host": "admin.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "admin", "port": {"number": 80}}}},
                    ]}},
                ],
            },
        })
    }

    fn fixture(rollout: &str) -> Fixture {
        let mut fixture = Fixture::new(rollout);
        fixture.put(Resource::Ingress, "shop", "web", stable_ingress());
        fixture
    }

    #[test]
    fn the_first_weight_creates_the_canary_ingress_from_the_stable_one() {
        let mut fixture = fixture(&rollout());
        let writes = fixture.set_weight(0);
        insta::assert_yaml_snapshot!(writes);
    }

    #[test]
    fn later_weights_patch_only_the_weight_annotation() {
        let mut fixture = fixture(&rollout());
        fixture.set_weight(0);
        assert_eq!(
            fixture.set_weight(25),
            [testing::patch(
                "Ingress shop/web-web-canary",
                json!({"metadata": {
                    "annotations": {"nginx.ingress.kubernetes.io/canary-weight": "25"},
                    "resourceVersion": "1",
                }})
            )]
        );
        assert!(
            fixture.set_weight(25).is_empty(),
            "an unchanged weight writes nothing"
        );
    }

    #[test]
    fn max_traffic_weight_and_prefix_are_honoured() {
        let rollout = rollout().replace(
            "        nginx:\n",
            "        maxTrafficWeight: 1000\n        nginx:\n          annotationPrefix: custom.io\n",
        );
        let mut fixture = fixture(&rollout);
        fixture.set_weight(5);
        let canary = fixture.object(Resource::Ingress, "shop", "web-web-canary");
        let annotations = canary.pointer("/metadata/annotations").unwrap();
        assert_eq!(annotations["custom.io/canary"], "true");
        assert_eq!(annotations["custom.io/canary-weight"], "5");
        assert_eq!(annotations["custom.io/canary-weight-total"], "1000");
        assert_eq!(annotations["custom.io/canary-by-cookie"], "beta-user");
        assert_eq!(annotations["example.com/team"], "shop");
    }

    #[test]
    fn foreign_annotations_stay_and_a_foreign_ingress_is_refused() {
        let mut fixture = fixture(&rollout());
        fixture.set_weight(0);
        fixture.edit(Resource::Ingress, "shop", "web-web-canary", |o| {
            o["metadata"]["annotations"]["other.io/keep"] = json!("yes");
        });
        fixture.set_weight(50);
        let canary = fixture.object(Resource::Ingress, "shop", "web-web-canary");
        assert_eq!(canary["metadata"]["annotations"]["other.io/keep"], "yes");
        assert_eq!(
            canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"],
            "50"
        );

        fixture.edit(Resource::Ingress, "shop", "web-web-canary", |o| {
            o["metadata"]["ownerReferences"] = json!([]);
        });
        let error = fixture.try_set_weight(60).unwrap_err().to_string();
        assert!(error.contains("not owned by this rollout"), "{error}");
    }

    #[test]
    fn a_stable_ingress_without_the_stable_service_is_an_error() {
        let mut fixture =
            fixture(&rollout().replace("stableService: web-stable", "stableService: other"));
        let error = fixture.try_set_weight(10).unwrap_err().to_string();
        assert_eq!(
            error,
            "nginx: ingress `web` has no rules using service other backend\nhint: route a path of the Ingress to the stable Service `other`"
        );
    }

    #[test]
    fn canary_ingress_names_fit_in_253_characters() {
        let name = NginxTrafficRouting::canary_ingress_name;
        assert_eq!(name("web", "main"), "web-main-canary");
        let long = name(&"r".repeat(200), &"i".repeat(100));
        assert_eq!(long.len(), 253);
        assert!(long.ends_with("-canary"));
    }

    #[test]
    fn header_routes_use_canary_by_header_and_are_removed_by_name() {
        let mut fixture = fixture(&rollout());
        fixture.set_weight(10);
        let writes =
            fixture.header_route(testing::header_route("beta", &[("X-Beta", "exact", "1")]));
        assert_eq!(
            writes,
            [testing::patch(
                "Ingress shop/web-web-canary",
                json!({"metadata": {
                    "annotations": {
                        "nginx.ingress.kubernetes.io/canary-by-header": "X-Beta",
                        "nginx.ingress.kubernetes.io/canary-by-header-value": "1",
                        "rollout-runner.io/managed-header-route": "beta",
                    },
                    "resourceVersion": "1",
                }})
            )]
        );
        assert_eq!(fixture.managed_routes(), ["beta"]);
        // A weight change keeps the header route.
        fixture.set_weight(20);
        assert_eq!(fixture.managed_routes(), ["beta"]);

        // Removing another route leaves it; removing all managed routes removes it.
        assert!(
            fixture
                .header_route(testing::remove_header_route("other"))
                .is_empty()
        );
        assert_eq!(
            fixture.remove_managed_routes(),
            [testing::patch(
                "Ingress shop/web-web-canary",
                json!({"metadata": {
                    "annotations": {
                        "nginx.ingress.kubernetes.io/canary-by-header": null,
                        "nginx.ingress.kubernetes.io/canary-by-header-value": null,
                        "rollout-runner.io/managed-header-route": null,
                    },
                    "resourceVersion": "3",
                }})
            )]
        );
        assert!(fixture.managed_routes().is_empty());
        assert!(fixture.remove_managed_routes().is_empty());
    }

    #[test]
    fn removing_a_header_route_restores_a_configured_canary_by_header() {
        let rollout = rollout().replace(
            "{canary-by-cookie: beta-user}",
            "{canary-by-header: X-Team}",
        );
        let mut fixture = fixture(&rollout);
        fixture.set_weight(10);
        fixture.header_route(testing::header_route("beta", &[("X-Beta", "exact", "1")]));
        fixture.header_route(testing::remove_header_route("beta"));
        let canary = fixture.object(Resource::Ingress, "shop", "web-web-canary");
        let annotations = &canary["metadata"]["annotations"];
        assert_eq!(
            annotations["nginx.ingress.kubernetes.io/canary-by-header"],
            "X-Team"
        );
        assert!(
            annotations
                .get("nginx.ingress.kubernetes.io/canary-by-header-value")
                .is_none()
        );
    }

    #[test]
    fn header_prefixes_and_regexes_become_patterns() {
        let mut fixture = fixture(&rollout());
        fixture.set_weight(10);
        fixture.header_route(testing::header_route(
            "beta",
            &[("X-Beta", "prefix", "v2.")],
        ));
        let canary = fixture.object(Resource::Ingress, "shop", "web-web-canary");
        assert_eq!(
            canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-by-header-pattern"],
            "^v2\\..*"
        );
        fixture.header_route(testing::header_route(
            "beta",
            &[("X-Beta", "regex", "v[23]")],
        ));
        let canary = fixture.object(Resource::Ingress, "shop", "web-web-canary");
        let annotations = &canary["metadata"]["annotations"];
        assert_eq!(
            annotations["nginx.ingress.kubernetes.io/canary-by-header-pattern"],
            "v[23]"
        );
        assert!(
            annotations
                .get("nginx.ingress.kubernetes.io/canary-by-header-value")
                .is_none()
        );
    }

    #[test]
    fn two_header_matches_cannot_be_expressed() {
        let mut fixture = fixture(&rollout());
        fixture.set_weight(10);
        let error = fixture
            .try_header_route(testing::header_route(
                "beta",
                &[("X-A", "exact", "1"), ("X-B", "exact", "2")],
            ))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("ingress-nginx matches one header"),
            "{error}"
        );
    }
}
