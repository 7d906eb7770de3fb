//! Traffic routers: the objects of NGINX, Istio, SMI, Gateway API, Traefik and ALB that split
//! requests between the stable and canary versions (`argo-semantics.md` §3).
//!
//! The engine plans router actions ([`Action::SetTrafficWeight`] and friends) as data; this
//! module performs them on the real API server for the routers a Rollout's
//! `spec.strategy.canary.trafficRouting` names. The in-memory cluster records them instead.
//!
//! Each router is one file and one implementation of the narrow [`Router`] trait. A router is
//! pure: it turns the objects it reads into the objects it wants ([`Objects`]), so every
//! transformation is a table or snapshot test. [`Traffic`] does the thin I/O around it: read
//! the objects, let the router transform them, then write only what changed (a JSON merge
//! patch carrying the `resourceVersion` it was computed from, or a create), so an unchanged
//! object costs no write and a concurrent change is a conflict, not a lost update.
//!
//! Routers do not decide weights; they refuse nothing the engine asks for except what their
//! objects cannot express (an error names the object and, when the user can fix it, ends with
//! a `hint:`).

mod alb;
mod gateway;
mod istio;
mod nginx;
mod smi;
mod traefik;

use std::collections::{BTreeMap, BTreeSet};

use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use rollout_runner_api::crd::{Rollout, SetHeaderRoute, SetMirrorRoute};
use rollout_runner_api::plan::{Action, TrafficWeights, WeightedDestination};

/// The field manager of router writes (the same as every other write of rollout-runner).
use rollout_runner_api::FIELD_MANAGER;

/// A failed router operation.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The router's objects cannot express what was asked, or are not what the Rollout says.
    #[error("{router}: {message}")]
    Router {
        router: &'static str,
        message: String,
    },
    /// An object the router needs does not exist.
    #[error(
        "{kind} `{namespace}/{name}` not found\nhint: create it before the release, as the Rollout's trafficRouting names it"
    )]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// The API server does not serve the router's API.
    #[error(
        "the API server does not serve {group} ({kind})\nhint: install the CRDs of the traffic router the Rollout names"
    )]
    NotServed {
        group: &'static str,
        kind: &'static str,
    },
    /// A request about an object failed.
    #[error("{kind} `{name}`")]
    Api {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
}

pub(crate) type Result<T, E = TrafficError> = std::result::Result<T, E>;

/// The kinds of objects routers read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Resource {
    Ingress,
    VirtualService,
    DestinationRule,
    TrafficSplit,
    HttpRoute,
    GrpcRoute,
    TraefikService,
}

impl Resource {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Resource::Ingress => "Ingress",
            Resource::VirtualService => "VirtualService",
            Resource::DestinationRule => "DestinationRule",
            Resource::TrafficSplit => "TrafficSplit",
            Resource::HttpRoute => "HTTPRoute",
            Resource::GrpcRoute => "GRPCRoute",
            Resource::TraefikService => "TraefikService",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Resource::Ingress => "ingresses",
            Resource::VirtualService => "virtualservices",
            Resource::DestinationRule => "destinationrules",
            Resource::TrafficSplit => "trafficsplits",
            Resource::HttpRoute => "httproutes",
            Resource::GrpcRoute => "grpcroutes",
            Resource::TraefikService => "traefikservices",
        }
    }

    /// API groups to look for, preferred first (Traefik moved from `traefik.containo.us`).
    fn groups(self) -> &'static [&'static str] {
        match self {
            Resource::Ingress => &["networking.k8s.io"],
            Resource::VirtualService | Resource::DestinationRule => &["networking.istio.io"],
            Resource::TrafficSplit => &["split.smi-spec.io"],
            Resource::HttpRoute | Resource::GrpcRoute => &["gateway.networking.k8s.io"],
            Resource::TraefikService => &["traefik.io", "traefik.containo.us"],
        }
    }

    /// Versions whose schema the routers write, most preferred first. SMI stops at v1alpha3
    /// as Argo does (later versions serve the same schema, but Argo never wrote them).
    fn versions(self) -> &'static [&'static str] {
        match self {
            Resource::Ingress => &["v1"],
            Resource::VirtualService | Resource::DestinationRule => &["v1", "v1beta1", "v1alpha3"],
            Resource::TrafficSplit => &["v1alpha3", "v1alpha2", "v1alpha1"],
            Resource::HttpRoute | Resource::GrpcRoute => &["v1", "v1beta1"],
            Resource::TraefikService => &["v1alpha1"],
        }
    }
}

const ALL_RESOURCES: [Resource; 7] = [
    Resource::Ingress,
    Resource::VirtualService,
    Resource::DestinationRule,
    Resource::TrafficSplit,
    Resource::HttpRoute,
    Resource::GrpcRoute,
    Resource::TraefikService,
];

/// `(API groups, resource, verbs)` of every kind of object a router reads and writes, for
/// the controller's RBAC: objects are read with `get`, changed with a merge `patch`, and
/// created where a router creates them (NGINX's canary Ingress, SMI's TrafficSplit).
pub fn rbac_resources() -> Vec<(
    &'static [&'static str],
    &'static str,
    &'static [&'static str],
)> {
    ALL_RESOURCES
        .iter()
        .map(|&r| {
            let verbs: &'static [&'static str] =
                if matches!(r, Resource::Ingress | Resource::TrafficSplit) {
                    &["get", "patch", "create"]
                } else {
                    &["get", "patch"]
                };
            (r.groups(), r.plural(), verbs)
        })
        .collect()
}

/// One object a router reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjectKey {
    pub(crate) resource: Resource,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl ObjectKey {
    pub(crate) fn new(resource: Resource, namespace: &str, name: &str) -> Self {
        Self {
            resource,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// The objects a router works on, as JSON; `None`: the object does not exist (a router may
/// create it by putting one there).
pub(crate) type Objects = BTreeMap<ObjectKey, Option<Value>>;

/// Which operation a router prepares to perform, to know what to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Weight,
    Hash,
    Routes,
    Observe,
}

/// `apiVersion` (group/version) of each resource on this API server.
pub(crate) type Versions = BTreeMap<Resource, String>;

/// One traffic router, as a pure transformation of its objects. Default methods are what a
/// router without the feature does: nothing (Argo's routers return no error either; `lint`
/// rejects steps a router cannot perform).
pub(crate) trait Router {
    /// The router's name in messages (`nginx`, `istio`, ...).
    fn name(&self) -> &'static str;

    /// The objects to read before `op` (the router may write any of them).
    fn objects(&self, op: Op) -> Vec<ObjectKey>;

    /// Give the canary `weights.canary`, the stable `weights.stable` and each additional
    /// (experiment) destination its weight.
    fn set_weight(&self, objects: &mut Objects, weights: &TrafficWeights) -> Result<()>;

    /// Point subsets at pod-template hashes (Istio DestinationRule).
    fn update_hash(
        &self,
        _objects: &mut Objects,
        _canary_hash: &str,
        _stable_hash: &str,
        _additional: &[WeightedDestination],
    ) -> Result<()> {
        Ok(())
    }

    /// Add (or, without `match`, remove) a route sending matching requests to the canary.
    fn set_header_route(&self, _objects: &mut Objects, _route: &SetHeaderRoute) -> Result<()> {
        Ok(())
    }

    /// Add (or, without `match`, remove) a route mirroring matching requests to the canary.
    fn set_mirror_route(&self, _objects: &mut Objects, _route: &SetMirrorRoute) -> Result<()> {
        Ok(())
    }

    /// Remove every route named in `managedRoutes`.
    fn remove_managed_routes(&self, _objects: &mut Objects) -> Result<()> {
        Ok(())
    }

    /// The managed routes the objects hold now.
    fn managed_routes(&self, _objects: &Objects) -> Vec<String> {
        Vec::new()
    }
}

/// The object `key` from `objects`, or a not-found error.
pub(crate) fn existing<'a>(objects: &'a Objects, key: &ObjectKey) -> Result<&'a Value> {
    objects
        .get(key)
        .and_then(Option::as_ref)
        .ok_or_else(|| TrafficError::NotFound {
            kind: key.resource.kind(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        })
}

/// Mutable access to the object `key`, or a not-found error.
pub(crate) fn existing_mut<'a>(objects: &'a mut Objects, key: &ObjectKey) -> Result<&'a mut Value> {
    objects
        .get_mut(key)
        .and_then(Option::as_mut)
        .ok_or_else(|| TrafficError::NotFound {
            kind: key.resource.kind(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        })
}

/// A `ns/name` reference (Istio VirtualServices may live in another namespace).
pub(crate) fn namespaced<'a>(reference: &'a str, default_namespace: &'a str) -> (&'a str, &'a str) {
    match reference.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() => (namespace, name),
        _ => (default_namespace, reference),
    }
}

/// The Rollout a router works for: it owns what the router creates, and names the canary and
/// stable Services and the managed routes.
pub(crate) struct Target<'a> {
    pub(crate) rollout: &'a Rollout,
    pub(crate) canary_service: String,
    pub(crate) stable_service: String,
    /// `managedRoutes`, in precedence order.
    pub(crate) managed_routes: Vec<String>,
}

impl<'a> Target<'a> {
    pub(crate) fn new(rollout: &'a Rollout) -> Self {
        let canary = rollout.spec.strategy.canary.as_ref();
        Self {
            rollout,
            canary_service: canary.map(|c| c.canary_service.clone()).unwrap_or_default(),
            stable_service: canary.map(|c| c.stable_service.clone()).unwrap_or_default(),
            managed_routes: rollout
                .spec
                .traffic_routing()
                .map(|r| r.managed_routes.iter().map(|m| m.name.clone()).collect())
                .unwrap_or_default(),
        }
    }

    pub(crate) fn namespace(&self) -> &'a str {
        self.rollout.namespace_or_default()
    }

    pub(crate) fn is_managed_route(&self, name: &str) -> bool {
        self.managed_routes.iter().any(|m| m == name)
    }
}

/// The routers a Rollout configures, in Argo's reconcile order.
pub(crate) fn routers<'a>(
    rollout: &'a Rollout,
    versions: &Versions,
) -> Result<Vec<Box<dyn Router + Send + Sync + 'a>>> {
    let Some(routing) = rollout.spec.traffic_routing() else {
        return Ok(Vec::new());
    };
    let version = |resource: Resource| versions.get(&resource).cloned().unwrap_or_default();
    let mut out: Vec<Box<dyn Router + Send + Sync + 'a>> = Vec::new();
    if let Some(istio) = &routing.istio {
        out.push(Box::new(istio::Istio::new(Target::new(rollout), istio)));
    }
    if let Some(nginx) = &routing.nginx {
        out.push(Box::new(nginx::Nginx::new(
            Target::new(rollout),
            routing.max_traffic_weight,
            nginx,
        )));
    }
    if let Some(alb) = &routing.alb {
        out.push(Box::new(alb::Alb::new(Target::new(rollout), alb)));
    }
    if let Some(smi) = &routing.smi {
        out.push(Box::new(smi::Smi::new(
            rollout,
            smi,
            version(Resource::TrafficSplit),
        )));
    }
    if let Some(traefik) = &routing.traefik {
        out.push(Box::new(traefik::Traefik::new(rollout, traefik)));
    }
    if let Some(config) = routing.gateway_api_config() {
        let config = config.map_err(|message| TrafficError::Router {
            router: "gatewayAPI",
            message: format!("invalid configuration: {message}"),
        })?;
        out.push(Box::new(gateway::GatewayApi::new(
            Target::new(rollout),
            config,
        )));
    }
    let unsupported: Vec<&str> = [
        (routing.ambassador.is_some(), "ambassador"),
        (routing.app_mesh.is_some(), "appMesh"),
        (routing.apisix.is_some(), "apisix"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .chain(
        routing
            .plugins
            .keys()
            .map(String::as_str)
            .filter(|name| *name != rollout_runner_api::crd::GATEWAY_API_PLUGIN),
    )
    .collect();
    if let Some(name) = unsupported.first() {
        return Err(TrafficError::Router {
            router: "trafficRouting",
            message: format!(
                "traffic router `{name}` is not supported by rollout-runner\nhint: use NGINX, Istio, SMI, Gateway API, Traefik or ALB, or remove trafficRouting to split traffic by replica count"
            ),
        });
    }
    Ok(out)
}

/// The objects the routers of `rollout` read or write, as `(kind, namespace, name)`, and the
/// names of its managed routes. `apply` uses them to leave what the routers changed alone.
pub fn routed_objects(rollout: &Rollout) -> (Vec<(&'static str, String, String)>, Vec<String>) {
    // The version only shapes what a router writes, not which objects it touches.
    let versions: Versions = ALL_RESOURCES
        .iter()
        .map(|r| (*r, format!("{}/{}", r.groups()[0], r.versions()[0])))
        .collect();
    let Ok(routers) = routers(rollout, &versions) else {
        return (Vec::new(), Vec::new());
    };
    let mut keys: Vec<ObjectKey> = routers
        .iter()
        .flat_map(|r| [Op::Weight, Op::Hash, Op::Routes].map(|op| r.objects(op)))
        .flatten()
        .collect();
    keys.sort();
    keys.dedup();
    let objects = keys
        .into_iter()
        .map(|k| (k.resource.kind(), k.namespace, k.name))
        .collect();
    (objects, Target::new(rollout).managed_routes)
}

/// Perform one action with one router on `objects` (pure).
pub(crate) fn perform(router: &dyn Router, objects: &mut Objects, action: &Action) -> Result<()> {
    match action {
        Action::SetTrafficWeight(weights) => router.set_weight(objects, weights),
        Action::UpdateTrafficHash {
            canary_hash,
            stable_hash,
            additional,
        } => router.update_hash(objects, canary_hash, stable_hash, additional),
        Action::SetHeaderRoute(route) => router.set_header_route(objects, route),
        Action::SetMirrorRoute(route) => router.set_mirror_route(objects, route),
        Action::RemoveManagedRoutes => router.remove_managed_routes(objects),
        _ => Ok(()),
    }
}

fn op_of(action: &Action) -> Option<Op> {
    match action {
        Action::SetTrafficWeight(_) => Some(Op::Weight),
        Action::UpdateTrafficHash { .. } => Some(Op::Hash),
        Action::SetHeaderRoute(_) | Action::SetMirrorRoute(_) | Action::RemoveManagedRoutes => {
            Some(Op::Routes)
        }
        _ => None,
    }
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`, or `None` when they are equal.
pub(crate) fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) => {
                        if let Some(diff) = merge_diff(previous, value) {
                            patch.insert(key.clone(), diff);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

/// A write the I/O layer makes to bring one object where a router wants it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) enum Write {
    Create(Value),
    /// A merge patch; it carries the `resourceVersion` it was computed from.
    Patch(Value),
}

/// The writes that turn `before` into `after`.
pub(crate) fn writes(before: &Objects, after: &Objects) -> Vec<(ObjectKey, Write)> {
    let mut out = Vec::new();
    for (key, wanted) in after {
        let Some(wanted) = wanted else { continue };
        match before.get(key).and_then(Option::as_ref) {
            None => out.push((key.clone(), Write::Create(wanted.clone()))),
            Some(current) => {
                if let Some(mut patch) = merge_diff(current, wanted) {
                    if let Some(version) = current.pointer("/metadata/resourceVersion") {
                        patch["metadata"]["resourceVersion"] = version.clone();
                    }
                    out.push((key.clone(), Write::Patch(patch)));
                }
            }
        }
    }
    out
}

/// The routers of a cluster: the I/O around the pure [`Router`]s.
pub struct Traffic {
    client: Client,
    versions: OnceCell<Versions>,
}

impl Traffic {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            versions: OnceCell::new(),
        }
    }

    /// Perform one router action ([`Action::SetTrafficWeight`], [`Action::UpdateTrafficHash`],
    /// header and mirror routes, [`Action::RemoveManagedRoutes`]) on every router the rollout
    /// configures, in Argo's order.
    pub async fn apply(&self, rollout: &Rollout, action: &Action) -> Result<()> {
        let Some(op) = op_of(action) else {
            return Ok(());
        };
        let versions = self.versions(rollout).await?;
        for router in routers(rollout, versions)? {
            let before = self.read(versions, &router.objects(op)).await?;
            let mut after = before.clone();
            perform(router.as_ref(), &mut after, action)?;
            for (key, write) in writes(&before, &after) {
                tracing::debug!(
                    router = router.name(),
                    action = %action.describe(),
                    object = %format!("{} {}/{}", key.resource.kind(), key.namespace, key.name),
                    "writing a traffic object"
                );
                self.write(versions, &key, write).await?;
            }
        }
        Ok(())
    }

    /// What the routers hold now: whether they confirm the weight (`None`: no router can
    /// verify; ALB would need AWS) and which managed routes exist. Reads nothing when the
    /// rollout manages no routes.
    pub async fn observe(&self, rollout: &Rollout) -> Result<(Option<bool>, Vec<String>)> {
        let managed = rollout
            .spec
            .traffic_routing()
            .is_some_and(|r| !r.managed_routes.is_empty());
        if !managed {
            return Ok((None, Vec::new()));
        }
        let versions = self.versions(rollout).await?;
        let mut present = BTreeSet::new();
        for router in routers(rollout, versions)? {
            let objects = self.read(versions, &router.objects(Op::Observe)).await?;
            present.extend(router.managed_routes(&objects));
        }
        Ok((None, present.into_iter().collect()))
    }

    /// The API versions of the resources this rollout's routers use, discovered once (one
    /// request) per process.
    async fn versions(&self, rollout: &Rollout) -> Result<&Versions> {
        let versions =
            self.versions
                .get_or_try_init(|| async {
                    let groups = self.client.list_api_groups().await.map_err(|source| {
                        TrafficError::Api {
                            kind: "APIGroupList",
                            name: "/apis".into(),
                            source,
                        }
                    })?;
                    let served: BTreeMap<String, (Vec<String>, Option<String>)> = groups
                        .groups
                        .into_iter()
                        .map(|g| {
                            let versions = g.versions.iter().map(|v| v.version.clone()).collect();
                            let preferred = g.preferred_version.map(|v| v.version);
                            (g.name, (versions, preferred))
                        })
                        .collect();
                    Ok::<_, TrafficError>(resolve_versions(&served))
                })
                .await?;
        // Only the resources this rollout uses must be served.
        let versions_needed: Vec<Resource> = routers(rollout, versions)?
            .iter()
            .flat_map(|r| [Op::Weight, Op::Hash, Op::Routes, Op::Observe].map(|op| r.objects(op)))
            .flatten()
            .map(|key| key.resource)
            .collect();
        for resource in versions_needed {
            if !versions.contains_key(&resource) {
                return Err(TrafficError::NotServed {
                    group: resource.groups()[0],
                    kind: resource.kind(),
                });
            }
        }
        Ok(versions)
    }

    fn api(&self, versions: &Versions, key: &ObjectKey) -> Result<Api<DynamicObject>> {
        let api_version = versions.get(&key.resource).ok_or(TrafficError::NotServed {
            group: key.resource.groups()[0],
            kind: key.resource.kind(),
        })?;
        let (group, version) = api_version
            .split_once('/')
            .unwrap_or(("", api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, key.resource.kind());
        let resource = ApiResource::from_gvk_with_plural(&gvk, key.resource.plural());
        Ok(Api::namespaced_with(
            self.client.clone(),
            &key.namespace,
            &resource,
        ))
    }

    async fn read(&self, versions: &Versions, keys: &[ObjectKey]) -> Result<Objects> {
        let mut objects = Objects::new();
        for key in keys {
            if objects.contains_key(key) {
                continue;
            }
            let found = self
                .api(versions, key)?
                .get_opt(&key.name)
                .await
                .map_err(|source| TrafficError::Api {
                    kind: key.resource.kind(),
                    name: key.name.clone(),
                    source,
                })?;
            let value = match found {
                Some(object) => {
                    Some(
                        serde_json::to_value(object).map_err(|e| TrafficError::Router {
                            router: "traffic",
                            message: format!("{} `{}`: {e}", key.resource.kind(), key.name),
                        })?,
                    )
                }
                None => None,
            };
            objects.insert(key.clone(), value);
        }
        Ok(objects)
    }

    async fn write(&self, versions: &Versions, key: &ObjectKey, write: Write) -> Result<()> {
        let api = self.api(versions, key)?;
        let failed = |source| TrafficError::Api {
            kind: key.resource.kind(),
            name: key.name.clone(),
            source,
        };
        match write {
            Write::Create(mut value) => {
                value["apiVersion"] = Value::String(versions[&key.resource].clone());
                value["kind"] = Value::String(key.resource.kind().to_string());
                let object: DynamicObject =
                    serde_json::from_value(value).map_err(|e| TrafficError::Router {
                        router: "traffic",
                        message: format!("{} `{}`: {e}", key.resource.kind(), key.name),
                    })?;
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                api.create(&params, &object).await.map_err(failed)?;
            }
            Write::Patch(patch) => {
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                api.patch(&key.name, &params, &Patch::Merge(&patch))
                    .await
                    .map_err(failed)?;
            }
        }
        Ok(())
    }
}

/// Pick, for each resource, the API version to use: the server's preferred version when the
/// routers write its schema, else the first version both sides know.
pub(crate) fn resolve_versions(
    served: &BTreeMap<String, (Vec<String>, Option<String>)>,
) -> Versions {
    let mut out = Versions::new();
    for resource in ALL_RESOURCES {
        let chosen = resource.groups().iter().find_map(|group| {
            let (versions, preferred) = served.get(*group)?;
            let known = |v: &String| resource.versions().contains(&v.as_str());
            let version = preferred.as_ref().filter(|p| known(p)).or_else(|| {
                resource
                    .versions()
                    .iter()
                    .find_map(|wanted| versions.iter().find(|v| v == wanted))
            })?;
            Some(format!("{group}/{version}"))
        });
        if let Some(api_version) = chosen {
            out.insert(resource, api_version);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
