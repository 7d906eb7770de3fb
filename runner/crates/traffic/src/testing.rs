//! Test fixtures for the routers: a tiny object store that applies the writes a router asks
//! for (merge patches and creates, with resource versions), so tests can run a sequence of
//! actions and look at both the writes and the objects that result.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use rollout_runner_api::crd::{
    HeaderRoutingMatch, Rollout, RouteMatch, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use rollout_runner_api::plan::{Action, TrafficWeights, WeightedDestination};

use super::{ObjectKey, Objects, Op, Resource, Result, Versions, Write, perform, routers, writes};

/// The writes of one action, named `Kind namespace/name`.
pub(crate) type Writes = Vec<(String, Write)>;

pub(crate) fn patch(name: &str, value: Value) -> (String, Write) {
    (name.to_string(), Write::Patch(value))
}

/// A Rollout and the objects of its routers, as an API server would hold them.
pub(crate) struct Fixture {
    pub(crate) rollout: Rollout,
    pub(crate) versions: Versions,
    store: BTreeMap<ObjectKey, Value>,
    resource_version: u64,
}

/// A Rollout `shop/web` (uid `uid-web`) splitting traffic between the Services `web-canary`
/// and `web-stable` with `traffic_routing`: the YAML under `trafficRouting:`, indented by 8.
pub(crate) fn rollout(traffic_routing: &str) -> String {
    format!(
        "metadata: {{name: web, namespace: shop, uid: uid-web}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  strategy:\n    canary:\n      canaryService: web-canary\n      stableService: web-stable\n      trafficRouting:\n{traffic_routing}"
    )
}

/// API versions as a current cluster serves them.
pub(crate) fn default_versions() -> Versions {
    Versions::from([
        (Resource::Ingress, "networking.k8s.io/v1".to_string()),
        (
            Resource::VirtualService,
            "networking.istio.io/v1".to_string(),
        ),
        (
            Resource::DestinationRule,
            "networking.istio.io/v1".to_string(),
        ),
        (
            Resource::TrafficSplit,
            "split.smi-spec.io/v1alpha3".to_string(),
        ),
        (
            Resource::HttpRoute,
            "gateway.networking.k8s.io/v1".to_string(),
        ),
        (
            Resource::GrpcRoute,
            "gateway.networking.k8s.io/v1".to_string(),
        ),
        (Resource::TraefikService, "traefik.io/v1alpha1".to_string()),
    ])
}

impl Fixture {
    /// A fixture for the Rollout in `yaml` (apiVersion and kind may be left out).
    pub(crate) fn new(yaml: &str) -> Self {
        let mut value: Value = serde_saphyr::from_str(yaml).expect("test rollout parses");
        value["apiVersion"] = json!("argoproj.io/v1alpha1");
        value["kind"] = json!("Rollout");
        Self {
            rollout: serde_json::from_value(value).expect("test rollout is a Rollout"),
            versions: default_versions(),
            store: BTreeMap::new(),
            resource_version: 0,
        }
    }

    fn next_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// Put an object into the store as it is (keeps its resourceVersion).
    pub(crate) fn put(&mut self, resource: Resource, namespace: &str, name: &str, value: Value) {
        self.store
            .insert(ObjectKey::new(resource, namespace, name), value);
    }

    pub(crate) fn object(&self, resource: Resource, namespace: &str, name: &str) -> Value {
        self.store
            .get(&ObjectKey::new(resource, namespace, name))
            .cloned()
            .unwrap_or_else(|| panic!("no {} {namespace}/{name}", resource.kind()))
    }

    /// Change an object as someone else would (bumps its resourceVersion).
    pub(crate) fn edit(
        &mut self,
        resource: Resource,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) {
        let version = self.next_version();
        let object = self
            .store
            .get_mut(&ObjectKey::new(resource, namespace, name))
            .expect("object to edit exists");
        change(object);
        object["metadata"]["resourceVersion"] = json!(version);
    }

    fn read(&self, keys: &[ObjectKey]) -> Objects {
        keys.iter()
            .map(|key| (key.clone(), self.store.get(key).cloned()))
            .collect()
    }

    /// Perform `action` with every router, applying the writes as the API server would.
    pub(crate) fn try_act(&mut self, action: &Action) -> Result<Writes> {
        let op = match action {
            Action::SetTrafficWeight(_) => Op::Weight,
            Action::UpdateTrafficHash { .. } => Op::Hash,
            _ => Op::Routes,
        };
        let rollout = self.rollout.clone();
        let versions = self.versions.clone();
        let mut out = Vec::new();
        for router in routers(&rollout, &versions)? {
            let before = self.read(&router.objects(op));
            let mut after = before.clone();
            perform(router.as_ref(), &mut after, action)?;
            for (key, write) in writes(&before, &after) {
                self.apply_write(&key, &write);
                let name = format!("{} {}/{}", key.resource.kind(), key.namespace, key.name);
                out.push((name, write));
            }
        }
        Ok(out)
    }

    fn apply_write(&mut self, key: &ObjectKey, write: &Write) {
        let version = self.next_version();
        match write {
            Write::Create(value) => {
                let mut value = value.clone();
                value["metadata"]["resourceVersion"] = json!(version);
                self.store.insert(key.clone(), value);
            }
            Write::Patch(patch) => {
                let object = self.store.get_mut(key).expect("patched object exists");
                assert_eq!(
                    patch.pointer("/metadata/resourceVersion"),
                    object.pointer("/metadata/resourceVersion"),
                    "a patch carries the resourceVersion it was computed from"
                );
                apply_merge_patch(object, patch);
                object["metadata"]["resourceVersion"] = json!(version);
            }
        }
    }

    pub(crate) fn act(&mut self, action: &Action) -> Writes {
        self.try_act(action).expect("router action succeeds")
    }

    /// The weights the engine would plan for canary `weight` out of 100.
    pub(crate) fn weights(&self, weight: i32, additional: &[(&str, i32)]) -> TrafficWeights {
        let target = super::Target::new(&self.rollout);
        let (canary, stable) = (target.canary_service, target.stable_service);
        let max = self.rollout.spec.max_traffic_weight();
        let extra: i32 = additional.iter().map(|(_, w)| w).sum();
        TrafficWeights {
            canary: WeightedDestination {
                service_name: canary,
                pod_template_hash: "canary-hash".into(),
                weight,
            },
            stable: WeightedDestination {
                service_name: stable,
                pod_template_hash: "stable-hash".into(),
                weight: max - weight - extra,
            },
            additional: additional
                .iter()
                .map(|(service, w)| WeightedDestination {
                    service_name: (*service).to_string(),
                    pod_template_hash: format!("{service}-hash"),
                    weight: *w,
                })
                .collect(),
        }
    }

    pub(crate) fn try_set_weight(&mut self, weight: i32) -> Result<Writes> {
        let weights = self.weights(weight, &[]);
        self.try_act(&Action::SetTrafficWeight(weights))
    }

    pub(crate) fn set_weight(&mut self, weight: i32) -> Writes {
        self.try_set_weight(weight).expect("set weight succeeds")
    }

    pub(crate) fn set_weight_with(&mut self, weight: i32, additional: &[(&str, i32)]) -> Writes {
        let weights = self.weights(weight, additional);
        self.act(&Action::SetTrafficWeight(weights))
    }

    pub(crate) fn update_hash(&mut self, canary: &str, stable: &str) -> Writes {
        self.act(&Action::UpdateTrafficHash {
            canary_hash: canary.into(),
            stable_hash: stable.into(),
            additional: Vec::new(),
        })
    }

    pub(crate) fn try_header_route(&mut self, route: SetHeaderRoute) -> Result<Writes> {
        self.try_act(&Action::SetHeaderRoute(route))
    }

    pub(crate) fn header_route(&mut self, route: SetHeaderRoute) -> Writes {
        self.act(&Action::SetHeaderRoute(route))
    }

    pub(crate) fn try_mirror_route(&mut self, route: SetMirrorRoute) -> Result<Writes> {
        self.try_act(&Action::SetMirrorRoute(route))
    }

    pub(crate) fn mirror_route(&mut self, route: SetMirrorRoute) -> Writes {
        self.act(&Action::SetMirrorRoute(route))
    }

    pub(crate) fn remove_managed_routes(&mut self) -> Writes {
        self.act(&Action::RemoveManagedRoutes)
    }

    /// The managed routes the routers report, as `observe` would.
    pub(crate) fn managed_routes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for router in routers(&self.rollout, &self.versions).expect("routers") {
            let objects = self.read(&router.objects(Op::Observe));
            out.extend(router.managed_routes(&objects));
        }
        out
    }
}

/// RFC 7386: apply a JSON merge patch.
pub(crate) fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target = target.as_object_mut().expect("made an object");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            apply_merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn string_match(kind: &str, value: &str) -> StringMatch {
    let mut m = StringMatch::default();
    match kind {
        "exact" => m.exact = value.into(),
        "prefix" => m.prefix = value.into(),
        "regex" => m.regex = value.into(),
        other => panic!("unknown match kind {other}"),
    }
    m
}

/// A header route matching every `(header, kind, value)`.
pub(crate) fn header_route(name: &str, matches: &[(&str, &str, &str)]) -> SetHeaderRoute {
    SetHeaderRoute {
        name: name.into(),
        r#match: Some(
            matches
                .iter()
                .map(|(header, kind, value)| HeaderRoutingMatch {
                    header_name: (*header).into(),
                    header_value: Some(string_match(kind, value)),
                })
                .collect(),
        ),
    }
}

/// A header route step without match: removes the route.
pub(crate) fn remove_header_route(name: &str) -> SetHeaderRoute {
    SetHeaderRoute {
        name: name.into(),
        r#match: None,
    }
}

/// A mirror route of `percentage`% of requests with `method` (exact) and a path prefix.
pub(crate) fn mirror_route(
    name: &str,
    method: Option<&str>,
    path_prefix: Option<&str>,
    headers: &[(&str, &str, &str)],
    percentage: Option<i32>,
) -> SetMirrorRoute {
    SetMirrorRoute {
        name: name.into(),
        r#match: Some(vec![RouteMatch {
            method: method.map(|m| string_match("exact", m)),
            path: path_prefix.map(|p| string_match("prefix", p)),
            headers: headers
                .iter()
                .map(|(h, kind, v)| ((*h).to_string(), string_match(kind, v)))
                .collect(),
        }]),
        percentage,
    }
}
