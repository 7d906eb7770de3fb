//! AWS ALB (Argo's `rollout/trafficrouting/alb`): the AWS Load Balancer Controller reads a
//! forward action from the Ingress annotation `<prefix>/actions.<root or stable Service>`; the
//! canary, experiment and stable target groups get their weights there. Header routes are an
//! `actions.<route>` + `conditions.<route>` annotation pair and a `use-annotation` path on top
//! of each rule. Every key written is listed, per Rollout, in
//! `rollouts.argoproj.io/managed-alb-annotations`.
//!
//! The JSON is byte-for-byte what Argo writes, so switching controllers changes nothing.
//! Weight verification is not done: it needs the AWS API (target group weights), which
//! rollout-runner does not call; the weight counts as set once the annotation is written.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use rollout_runner_api::crd::{AlbTrafficRouting, SetHeaderRoute};
use rollout_runner_api::plan::TrafficWeights;

use super::{ObjectKey, Objects, Op, Resource, Result, Router, Target, TrafficError, existing_mut};

/// Argo's record of the annotations each Rollout manages on an Ingress.
pub(crate) const MANAGED_ALB_ANNOTATIONS: &str = "rollouts.argoproj.io/managed-alb-annotations";

fn error(message: impl Into<String>) -> TrafficError {
    TrafficError::Router {
        router: "alb",
        message: message.into(),
    }
}

/// One target group of a forward action, in Argo's field order.
fn target_group(service: &str, port: i32, weight: i32) -> String {
    format!(
        r#"{{"ServiceName":{},"ServicePort":"{port}","Weight":{weight}}}"#,
        json!(service)
    )
}

/// The forward action JSON, exactly as Argo's `getForwardActionString` marshals it.
pub(crate) fn forward_action(config: &AlbTrafficRouting, groups: &[(&str, i32)]) -> Result<String> {
    let groups: Vec<String> = groups
        .iter()
        .map(|(service, weight)| target_group(service, config.service_port, *weight))
        .collect();
    let mut forward = format!(r#"{{"TargetGroups":[{}]"#, groups.join(","));
    if let Some(sticky) = config.stickiness_config.as_ref().filter(|s| s.enabled) {
        if !(1..=604_800).contains(&sticky.duration_seconds) {
            return Err(error(
                "TargetGroupStickinessConfig's duration must be between 1 and 604800 seconds (7 days)!",
            ));
        }
        forward.push_str(&format!(
            r#","TargetGroupStickinessConfig":{{"Enabled":true,"DurationSeconds":{}}}"#,
            sticky.duration_seconds
        ));
    }
    forward.push('}');
    Ok(format!(r#"{{"Type":"forward","ForwardConfig":{forward}}}"#))
}

pub(crate) struct Alb<'a> {
    target: Target<'a>,
    config: &'a AlbTrafficRouting,
}

impl<'a> Alb<'a> {
    pub(crate) fn new(target: Target<'a>, config: &'a AlbTrafficRouting) -> Self {
        Self { target, config }
    }

    fn key(&self, ingress: &str) -> ObjectKey {
        ObjectKey::new(Resource::Ingress, self.target.namespace(), ingress)
    }

    fn action_service(&self) -> &str {
        if self.config.root_service.is_empty() {
            &self.target.stable_service
        } else {
            &self.config.root_service
        }
    }

    fn key_for(&self, kind: &str, name: &str) -> String {
        format!(
            "{}/{kind}.{name}",
            self.config.annotation_prefix_or_default()
        )
    }

    /// Add or remove keys from this Rollout's entry of the managed-annotations record.
    fn record(
        &self,
        annotations: &mut serde_json::Map<String, Value>,
        add: bool,
        keys: &[String],
    ) -> Result<()> {
        let mut record: BTreeMap<String, Vec<String>> = match annotations
            .get(MANAGED_ALB_ANNOTATIONS)
            .and_then(Value::as_str)
        {
            Some(text) if !text.is_empty() => serde_json::from_str(text)
                .map_err(|e| error(format!("invalid {MANAGED_ALB_ANNOTATIONS} annotation: {e}")))?,
            _ => BTreeMap::new(),
        };
        let entry = record
            .entry(self.target.rollout.name().to_string())
            .or_default();
        for key in keys {
            if add {
                if !entry.contains(key) {
                    entry.push(key.clone());
                }
            } else {
                entry.retain(|k| k != key);
            }
        }
        annotations.insert(
            MANAGED_ALB_ANNOTATIONS.into(),
            Value::String(serde_json::to_string(&record).unwrap_or_default()),
        );
        Ok(())
    }

    /// Paths with a backend Service `name`, in every rule.
    fn has_path_to(ingress: &Value, service: &str) -> bool {
        paths(ingress)
            .any(|p| p.pointer("/backend/service/name").and_then(Value::as_str) == Some(service))
    }

    /// Managed `use-annotation` paths first, in `managedRoutes` order (Argo's `SortHttpPaths`).
    fn sort_paths(&self, ingress: &mut Value) {
        let rank = |p: &Value| {
            let service = p
                .pointer("/backend/service/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            self.target
                .managed_routes
                .iter()
                .position(|m| m == service)
                .unwrap_or(self.target.managed_routes.len())
        };
        for rule in rules_mut(ingress) {
            if let Some(paths) = rule
                .pointer_mut("/http/paths")
                .and_then(Value::as_array_mut)
            {
                paths.sort_by_key(|p| rank(p));
            }
        }
    }
}

fn paths(ingress: &Value) -> impl Iterator<Item = &Value> {
    ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.pointer("/http/paths").and_then(Value::as_array))
        .flatten()
}

fn rules_mut(ingress: &mut Value) -> impl Iterator<Item = &mut Value> {
    ingress
        .pointer_mut("/spec/rules")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn annotations_mut(ingress: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !ingress["metadata"]
        .get("annotations")
        .is_some_and(Value::is_object)
    {
        ingress["metadata"]["annotations"] = json!({});
    }
    ingress["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations made an object")
}

impl Router for Alb<'_> {
    fn name(&self) -> &'static str {
        "alb"
    }

    fn objects(&self, op: Op) -> Vec<ObjectKey> {
        match op {
            Op::Hash => Vec::new(),
            Op::Weight | Op::Routes | Op::Observe => self
                .config
                .ingress_names()
                .into_iter()
                .map(|i| self.key(i))
                .collect(),
        }
    }

    fn set_weight(&self, objects: &mut Objects, weights: &TrafficWeights) -> Result<()> {
        let mut groups = vec![(self.target.canary_service.as_str(), weights.canary.weight)];
        groups.extend(
            weights
                .additional
                .iter()
                .map(|d| (d.service_name.as_str(), d.weight)),
        );
        groups.push((self.target.stable_service.as_str(), weights.stable.weight));
        let action = forward_action(self.config, &groups)?;
        let key = self.key_for("actions", self.action_service());
        for ingress in self.config.ingress_names() {
            let object = existing_mut(objects, &self.key(ingress))?;
            if !Self::has_path_to(object, self.action_service()) {
                return Err(error(format!(
                    "ingress `{ingress}` does not have service `{}` in rules\nhint: route a path of the Ingress to `{}` with port `use-annotation`",
                    self.action_service(),
                    self.action_service()
                )));
            }
            let annotations = annotations_mut(object);
            annotations.insert(key.clone(), Value::String(action.clone()));
            self.record(annotations, true, std::slice::from_ref(&key))?;
        }
        Ok(())
    }

    fn set_header_route(&self, objects: &mut Objects, route: &SetHeaderRoute) -> Result<()> {
        let action_key = self.key_for("actions", &route.name);
        let condition_key = self.key_for("conditions", &route.name);
        let values = match &route.r#match {
            Some(matches) => {
                let action =
                    forward_action(self.config, &[(self.target.canary_service.as_str(), 100)])?;
                let mut conditions = Vec::new();
                for m in matches {
                    let exact = m
                        .header_value
                        .as_ref()
                        .map(|v| v.exact.as_str())
                        .unwrap_or("");
                    if exact.is_empty() {
                        return Err(error(format!(
                            "header route `{}`: ALB matches header values exactly\nhint: use headerValue.exact",
                            route.name
                        )));
                    }
                    conditions.push(format!(
                        r#"{{"Field":"http-header","HttpHeaderConfig":{{"HttpHeaderName":{},"Values":[{}]}}}}"#,
                        json!(m.header_name),
                        json!(exact)
                    ));
                }
                Some((action, format!("[{}]", conditions.join(","))))
            }
            None => None,
        };
        for ingress in self.config.ingress_names() {
            let object = existing_mut(objects, &self.key(ingress))?;
            let annotations = annotations_mut(object);
            let keys = [action_key.clone(), condition_key.clone()];
            match &values {
                Some((action, conditions)) => {
                    annotations.insert(action_key.clone(), Value::String(action.clone()));
                    annotations.insert(condition_key.clone(), Value::String(conditions.clone()));
                    self.record(annotations, true, &keys)?;
                }
                None => {
                    annotations.remove(&action_key);
                    annotations.remove(&condition_key);
                    self.record(annotations, false, &keys)?;
                }
            }
            let has_path = Self::has_path_to(object, &route.name);
            if values.is_some() && !has_path {
                // Argo's `CreateAnnotationBasedPath`: the action runs for every request; its
                // conditions pick the matching ones.
                for rule in rules_mut(object) {
                    if let Some(paths) = rule
                        .pointer_mut("/http/paths")
                        .and_then(Value::as_array_mut)
                    {
                        paths.insert(
                            0,
                            json!({
                                "path": "/*",
                                "pathType": "ImplementationSpecific",
                                "backend": {"service": {"name": route.name, "port": {"name": "use-annotation"}}},
                            }),
                        );
                    }
                }
            } else if values.is_none() && has_path {
                remove_paths_to(object, &route.name);
            }
            self.sort_paths(object);
        }
        Ok(())
    }

    fn remove_managed_routes(&self, objects: &mut Objects) -> Result<()> {
        if self.target.managed_routes.is_empty() {
            return Ok(());
        }
        for ingress in self.config.ingress_names() {
            let object = existing_mut(objects, &self.key(ingress))?;
            let mut keys = Vec::new();
            for name in &self.target.managed_routes {
                keys.push(self.key_for("actions", name));
                keys.push(self.key_for("conditions", name));
            }
            let annotations = annotations_mut(object);
            let present = keys.iter().any(|k| annotations.contains_key(k));
            for key in &keys {
                annotations.remove(key);
            }
            if present {
                self.record(annotations, false, &keys)?;
            }
            for name in &self.target.managed_routes {
                remove_paths_to(object, name);
            }
        }
        Ok(())
    }

    fn managed_routes(&self, objects: &Objects) -> Vec<String> {
        let mut out = Vec::new();
        for object in objects.values().flatten() {
            for name in &self.target.managed_routes {
                let key = self.key_for("actions", name);
                if object
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(&key))
                    .is_some()
                    && !out.contains(name)
                {
                    out.push(name.clone());
                }
            }
        }
        out
    }
}

fn remove_paths_to(ingress: &mut Value, service: &str) {
    for rule in rules_mut(ingress) {
        if let Some(paths) = rule
            .pointer_mut("/http/paths")
            .and_then(Value::as_array_mut)
        {
            paths.retain(|p| {
                p.pointer("/backend/service/name").and_then(Value::as_str) != Some(service)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::Resource;
    use crate::testing::{self, Fixture};

    fn rollout() -> String {
        testing::rollout(
            r#"        managedRoutes: [{name: beta}]
        alb:
          ingress: web
          servicePort: 80
          rootService: web-root
          stickinessConfig: {enabled: true, durationSeconds: 3600}
"#,
        )
    }

    fn fixture() -> Fixture {
        let mut fixture = Fixture::new(&rollout());
        fixture.put(
            Resource::Ingress,
            "shop",
            "web",
            json!({
                "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "3",
                              "annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing"}},
                "spec": {"ingressClassName": "alb", "rules": [{"http": {"paths": [
                    {"path": "/*", "pathType": "ImplementationSpecific",
                     "backend": {"service": {"name": "web-root", "port": {"name": "use-annotation"}}}},
                ]}}]},
            }),
        );
        fixture
    }

    fn annotation(fixture: &Fixture, key: &str) -> Value {
        fixture.object(Resource::Ingress, "shop", "web")["metadata"]["annotations"][key].clone()
    }

    #[test]
    fn the_forward_action_is_argos_json() {
        let mut fixture = fixture();
        fixture.set_weight_with(10, &[("web-exp", 5)]);
        assert_eq!(
            annotation(&fixture, "alb.ingress.kubernetes.io/actions.web-root"),
            r#"{"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"80","Weight":10},{"ServiceName":"web-exp","ServicePort":"80","Weight":5},{"ServiceName":"web-stable","ServicePort":"80","Weight":85}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":3600}}}"#
        );
        assert_eq!(
            annotation(&fixture, "rollouts.argoproj.io/managed-alb-annotations"),
            r#"{"web":["alb.ingress.kubernetes.io/actions.web-root"]}"#
        );
        // One annotation changes per weight.
        assert_eq!(fixture.set_weight(20).len(), 1);
    }

    #[test]
    fn header_routes_add_an_action_a_condition_and_a_path_on_top() {
        let mut fixture = fixture();
        fixture.set_weight(10);
        fixture.header_route(testing::header_route("beta", &[("X-Beta", "exact", "yes")]));
        let ingress = fixture.object(Resource::Ingress, "shop", "web");
        insta::assert_yaml_snapshot!(ingress);
        assert_eq!(fixture.managed_routes(), ["beta"]);
        fixture.remove_managed_routes();
        let ingress = fixture.object(Resource::Ingress, "shop", "web");
        assert_eq!(
            ingress["spec"]["rules"][0]["http"]["paths"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            annotation(&fixture, "rollouts.argoproj.io/managed-alb-annotations"),
            r#"{"web":["alb.ingress.kubernetes.io/actions.web-root"]}"#
        );
        assert!(fixture.managed_routes().is_empty());
    }

    #[test]
    fn header_routes_match_exact_values_only() {
        let mut fixture = fixture();
        let error = fixture
            .try_header_route(testing::header_route("beta", &[("X-Beta", "prefix", "y")]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("ALB matches header values exactly"),
            "{error}"
        );
    }

    #[test]
    fn the_action_service_must_be_in_the_rules() {
        let mut fixture =
            Fixture::new(&rollout().replace("rootService: web-root", "rootService: other"));
        fixture.put(Resource::Ingress, "shop", "web", fixture_ingress());
        let error = fixture.try_set_weight(10).unwrap_err().to_string();
        assert!(
            error.starts_with("alb: ingress `web` does not have service `other` in rules"),
            "{error}"
        );
    }

    fn fixture_ingress() -> Value {
        fixture().object(Resource::Ingress, "shop", "web")
    }
}
