//! Server-side apply of manifest documents, as `kubectl apply --server-side` does it, in an
//! order that lets each object find what it needs: CRDs, namespaces, configuration, Services,
//! traffic objects, analysis templates, then Rollouts.
//!
//! Everything is first sent as a server-side dry run, so an object the API server would reject
//! (schema, admission, a field another manager owns) stops the release before anything is
//! written. Objects that cannot be dry-run yet (their CRD or namespace is created by the same
//! apply) are checked when they are applied.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope, pinned_kind};
use serde::Serialize;
use serde_json::Value;

use rollout_runner_core::manifest::FieldPath;
use rollout_runner_core::manifest::{Document, kinds};

use super::kube::FIELD_MANAGER;
use rollout_runner_api::crd::POD_TEMPLATE_HASH_LABEL;

/// Why a document could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {id}: {message}")]
pub struct ApplyError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// `Kind/name`.
    pub id: String,
    pub message: String,
    /// Nothing was written when the error was found.
    pub before_any_write: bool,
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    Created,
    Configured,
    Unchanged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Configured => "configured",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One applied object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub change: Change,
}

/// How to apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Take over fields another field manager owns (kubectl's `--force-conflicts`).
    pub force_conflicts: bool,
    /// Only the server-side dry run: validate everything, write nothing.
    pub dry_run: bool,
}

/// How long to wait for an applied CRD to be served.
const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a kind goes in the apply order.
fn rank(doc: &Document) -> u8 {
    let traffic = [
        kinds::INGRESS,
        kinds::VIRTUAL_SERVICE,
        kinds::DESTINATION_RULE,
        kinds::HTTP_ROUTE,
        kinds::GRPC_ROUTE,
        kinds::TRAFFIC_SPLIT,
        kinds::TRAEFIK_SERVICE,
    ];
    if doc.is(&kinds::CUSTOM_RESOURCE_DEFINITION) {
        0
    } else if doc.is(&kinds::NAMESPACE) {
        1
    } else if doc.is(&kinds::SERVICE) {
        3
    } else if traffic.iter().any(|kind| doc.is(kind)) {
        4
    } else if doc.group() == "argoproj.io"
        && matches!(
            doc.kind.as_str(),
            "AnalysisTemplate" | "ClusterAnalysisTemplate"
        )
    {
        5
    } else if doc.group() == "argoproj.io" {
        6
    } else {
        2
    }
}

/// Applies documents to one cluster.
pub struct Applier {
    client: Client,
    default_namespace: String,
    options: ApplyOptions,
    kinds: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)>,
    /// Objects the routers of the Rollouts being applied write, as `(kind, namespace, name)`.
    routed: BTreeSet<(String, String, String)>,
    /// Names of those Rollouts' managed routes.
    managed_routes: BTreeSet<String>,
}

impl Applier {
    pub fn new(client: Client, default_namespace: &str, options: ApplyOptions) -> Self {
        Self {
            client,
            default_namespace: default_namespace.to_string(),
            options,
            kinds: HashMap::new(),
            routed: BTreeSet::new(),
            managed_routes: BTreeSet::new(),
        }
    }

    /// Dry-run every document, then (unless `dry_run`) apply them in order.
    pub async fn apply(&mut self, documents: &[&Document]) -> Result<Vec<Applied>, ApplyError> {
        for doc in documents {
            if doc.api_version.is_empty() || doc.kind.is_empty() || doc.name.is_empty() {
                return Err(self.error(
                    doc,
                    None,
                    "not a Kubernetes object: it needs apiVersion, kind and metadata.name"
                        .to_string(),
                ));
            }
        }
        let mut ordered: Vec<&Document> = documents.to_vec();
        ordered.sort_by_key(|doc| rank(doc));
        self.find_routed(&ordered);
        let new_namespaces = self.new_namespaces(&ordered).await;
        for doc in &ordered {
            let namespace = self.namespace_of(doc, None);
            if namespace
                .as_ref()
                .is_some_and(|ns| new_namespaces.contains(ns))
            {
                continue;
            }
            let resource = match self.resource(doc).await {
                Ok(resource) => resource,
                // A kind whose CRD is in this apply: checked when it is applied.
                Err(_) if self.crd_in(&ordered, doc) => continue,
                Err(error) => return Err(error),
            };
            self.send(doc, &resource, true).await?;
        }
        if self.options.dry_run {
            return Ok(ordered
                .iter()
                .map(|doc| self.applied(doc, Change::Unchanged))
                .collect());
        }
        let mut applied = Vec::with_capacity(ordered.len());
        for doc in &ordered {
            let resource = self.resource(doc).await.map_err(|mut e| {
                e.before_any_write = applied.is_empty();
                e
            })?;
            let change = self.send(doc, &resource, false).await.map_err(|mut e| {
                e.before_any_write = applied.is_empty();
                e
            })?;
            if doc.is(&kinds::CUSTOM_RESOURCE_DEFINITION) {
                self.wait_established(doc).await?;
            }
            applied.push(self.applied(doc, change));
        }
        Ok(applied)
    }

    fn applied(&self, doc: &Document, change: Change) -> Applied {
        Applied {
            api_version: doc.api_version.clone(),
            kind: doc.kind.clone(),
            name: doc.name.clone(),
            namespace: self.namespace_of(doc, None),
            change,
        }
    }

    /// Namespaces the documents create that do not exist yet.
    async fn new_namespaces(&self, docs: &[&Document]) -> BTreeSet<String> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut missing = BTreeSet::new();
        for doc in docs.iter().filter(|d| d.is(&kinds::NAMESPACE)) {
            if !matches!(api.get_opt(&doc.name).await, Ok(Some(_))) {
                missing.insert(doc.name.clone());
            }
        }
        missing
    }

    /// Whether the CRD of `doc`'s kind is among `docs`.
    fn crd_in(&self, docs: &[&Document], doc: &Document) -> bool {
        docs.iter()
            .filter(|d| d.is(&kinds::CUSTOM_RESOURCE_DEFINITION))
            .any(|crd| {
                crd.field("spec.group").and_then(Value::as_str) == Some(doc.group())
                    && crd.field("spec.names.kind").and_then(Value::as_str)
                        == Some(doc.kind.as_str())
            })
    }

    /// The namespace an object goes to (`None` for cluster-scoped kinds).
    fn namespace_of(&self, doc: &Document, scope: Option<&Scope>) -> Option<String> {
        let cluster_scoped = match scope {
            Some(scope) => matches!(scope, Scope::Cluster),
            None => {
                doc.is(&kinds::NAMESPACE)
                    || doc.is(&kinds::CUSTOM_RESOURCE_DEFINITION)
                    || (doc.group() == "argoproj.io" && doc.kind == "ClusterAnalysisTemplate")
                    || (doc.group() == "rbac.authorization.k8s.io"
                        && doc.kind.starts_with("Cluster"))
            }
        };
        (!cluster_scoped).then(|| {
            doc.namespace
                .clone()
                .unwrap_or_else(|| self.default_namespace.clone())
        })
    }

    fn error(&self, doc: &Document, path: Option<&FieldPath>, message: String) -> ApplyError {
        let position = doc.locate(path.unwrap_or(&FieldPath::root()));
        ApplyError {
            file: doc.file.clone(),
            line: position.line,
            column: position.column,
            id: doc.id(),
            message,
            before_any_write: true,
        }
    }

    async fn resource(
        &mut self,
        doc: &Document,
    ) -> Result<(ApiResource, ApiCapabilities), ApplyError> {
        let (group, version) = match doc.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", doc.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &doc.kind);
        if let Some(found) = self.kinds.get(&gvk) {
            return Ok(found.clone());
        }
        match retrying(|| pinned_kind(&self.client, &gvk)).await {
            Ok(found) => {
                self.kinds.insert(gvk, found.clone());
                Ok(found)
            }
            Err(error) => Err(self.error(
                doc,
                Some(&FieldPath::parse("kind")),
                format!(
                    "the cluster does not serve {} {}: {error}\nhint: install its CRD first, or \
                     check apiVersion and kind",
                    doc.api_version, doc.kind
                ),
            )),
        }
    }

    /// Server-side apply one document (or dry-run it).
    async fn send(
        &self,
        doc: &Document,
        (resource, capabilities): &(ApiResource, ApiCapabilities),
        dry_run: bool,
    ) -> Result<Change, ApplyError> {
        let namespace = self.namespace_of(doc, Some(&capabilities.scope));
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        };
        let mut body = doc.raw.clone();
        if let Some(object) = body.as_object_mut() {
            // Status belongs to controllers; kubectl leaves it out of apply too.
            object.remove("status");
            if let Some(ns) = &namespace {
                object
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(Default::default()))
                    .as_object_mut()
                    .map(|m| m.insert("namespace".into(), Value::String(ns.clone())));
            }
        }
        let before = retrying(|| api.get_opt(&doc.name))
            .await
            .map_err(|e| self.error(doc, None, e.to_string()))?;
        let routed = namespace.as_ref().is_some_and(|ns| {
            self.routed
                .contains(&(doc.kind.clone(), ns.clone(), doc.name.clone()))
        });
        if let Some(live) = &before {
            // A Service whose selector a Rollout set, or an object its routers write.
            let changed_by_rollout = routed || has_rollout_selector(live);
            keep_rollout_managed_fields(doc, live, &mut body);
            let live =
                serde_json::to_value(live).map_err(|e| self.error(doc, None, e.to_string()))?;
            if routed {
                keep_router_fields(&live, &mut body, &self.managed_routes);
            }
            // Nothing the manifest says differs: no write. Sent anyway, the apply would take
            // co-ownership of the fields the runner patched, which is a write (a new
            // resourceVersion) on every apply after a release.
            if changed_by_rollout && contains(&live, &body) {
                return Ok(Change::Unchanged);
            }
        }
        let mut params = PatchParams::apply(FIELD_MANAGER);
        // The router changed fields of a routed object with merge patches; with them carried
        // over from the live object, taking them back is safe and avoids a conflict with the
        // runner's own earlier writes.
        params.force = self.options.force_conflicts || routed;
        params.dry_run = dry_run;
        // A server-side apply is idempotent: one whose answer was lost is safely sent again.
        let patch = Patch::Apply(&body);
        let after = retrying(|| api.patch(&doc.name, &params, &patch))
            .await
            .map_err(|error| self.rejected(doc, error))?;
        Ok(match before {
            None => Change::Created,
            Some(before) if before.metadata.resource_version == after.metadata.resource_version => {
                Change::Unchanged
            }
            Some(_) => Change::Configured,
        })
    }
}

/// Fields of a live object that a Rollout manages and the manifest does not say: applying the
/// manifest must neither take them back nor fight over them (server-side apply would report a
/// conflict, since the runner changed them with another operation). They are sent with their
/// live values, which leaves them as they are.
///
/// A Service's selector is an atomic map, so the `rollouts-pod-template-hash` key the rollout
/// added would otherwise make every later apply of the Service conflict.
pub fn keep_rollout_managed_fields(doc: &Document, live: &DynamicObject, body: &mut Value) {
    if doc.is(&kinds::SERVICE)
        && let Some(hash) = live
            .data
            .pointer("/spec/selector")
            .and_then(|s| s.get(POD_TEMPLATE_HASH_LABEL))
            .cloned()
        && let Some(selector) = body
            .pointer_mut("/spec/selector")
            .and_then(Value::as_object_mut)
    {
        selector.entry(POD_TEMPLATE_HASH_LABEL).or_insert(hash);
    }
}

/// Whether a Rollout put its pod-template hash into this object's (a Service's) selector.
fn has_rollout_selector(live: &DynamicObject) -> bool {
    live.data
        .pointer("/spec/selector")
        .and_then(|s| s.get(POD_TEMPLATE_HASH_LABEL))
        .is_some()
}

/// Carry the fields a traffic router writes from the live object into `body`: every `weight`
/// and `rollouts-pod-template-hash` label the live object holds at a place the manifest also
/// has, and the managed routes (list items named in `managedRoutes`) at their live positions.
/// Applying the manifest mid-release then neither resets the split nor drops header routes.
/// Other list items are paired with the live ones by position, the managed ones left out.
pub fn keep_router_fields(live: &Value, body: &mut Value, managed_routes: &BTreeSet<String>) {
    match (live, body) {
        (Value::Object(live), Value::Object(body)) => {
            for (key, value) in live {
                if key == "weight" || key == POD_TEMPLATE_HASH_LABEL {
                    body.insert(key.clone(), value.clone());
                } else if let Some(inner) = body.get_mut(key) {
                    keep_router_fields(value, inner, managed_routes);
                }
            }
        }
        (Value::Array(live), Value::Array(body)) => {
            let managed = |item: &Value| {
                item.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| managed_routes.contains(name))
            };
            let mut others = live.iter().filter(|item| !managed(item));
            for item in body.iter_mut() {
                if let Some(live_item) = others.next() {
                    keep_router_fields(live_item, item, managed_routes);
                }
            }
            for (index, item) in live.iter().enumerate().filter(|(_, item)| managed(item)) {
                body.insert(index.min(body.len()), item.clone());
            }
        }
        _ => {}
    }
}

/// Whether `live` already holds everything `body` says (lists compared whole).
pub fn contains(live: &Value, body: &Value) -> bool {
    match (live, body) {
        (Value::Object(live), Value::Object(body)) => body
            .iter()
            .all(|(key, value)| live.get(key).is_some_and(|l| contains(l, value))),
        (Value::Array(live), Value::Array(body)) => {
            live.len() == body.len() && live.iter().zip(body).all(|(l, b)| contains(l, b))
        }
        _ => live == body,
    }
}

impl Applier {
    /// Remember the objects the routers of the Rollouts among `docs` write.
    fn find_routed(&mut self, docs: &[&Document]) {
        for doc in docs
            .iter()
            .filter(|d| d.group() == "argoproj.io" && d.kind == "Rollout")
        {
            let Ok(mut rollout) =
                serde_json::from_value::<rollout_runner_api::crd::Rollout>(doc.raw.clone())
            else {
                continue;
            };
            rollout.metadata.namespace = self.namespace_of(doc, None);
            let (objects, managed) = rollout_runner_traffic::routed_objects(&rollout);
            self.routed.extend(
                objects
                    .into_iter()
                    .map(|(kind, ns, name)| (kind.to_string(), ns, name)),
            );
            self.managed_routes.extend(managed);
        }
    }

    /// An API server rejection, pointing at the field it names when it names one.
    fn rejected(&self, doc: &Document, error: kube::Error) -> ApplyError {
        let kube::Error::Api(status) = &error else {
            return self.error(doc, None, error.to_string());
        };
        let field = status
            .details
            .as_ref()
            .and_then(|d| {
                d.causes
                    .iter()
                    .map(|c| c.field.clone())
                    .find(|f| !f.is_empty())
            })
            .filter(|f| !f.is_empty());
        let mut message = status.message.clone();
        if status.is_conflict() {
            message.push_str(
                "\nhint: another field manager owns these fields; pass --force-conflicts to take \
                 them over",
            );
        }
        let path = field.as_deref().map(FieldPath::parse);
        self.error(doc, path.as_ref(), message)
    }

    async fn wait_established(&self, doc: &Document) -> Result<(), ApplyError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let established = kube::runtime::wait::await_condition(
            api,
            &doc.name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        match tokio::time::timeout(CRD_ESTABLISHED_TIMEOUT, established).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(self.error(doc, None, error.to_string())),
            Err(_) => Err(self.error(
                doc,
                None,
                format!(
                    "the CRD was not established within {}s",
                    CRD_ESTABLISHED_TIMEOUT.as_secs()
                ),
            )),
        }
    }
}

/// Whether a failed call may work when tried again: the API server was unreachable, overloaded
/// (429) or failing (5xx).
fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => true,
        _ => false,
    }
}

/// `call`, tried again on transient errors with back-off (0.4 s doubling, 5 retries: about
/// 12 s in all).
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut failures = 0u32;
    loop {
        match call().await {
            Err(error) if transient(&error) && failures < 5 => {
                failures += 1;
                tracing::debug!(%error, failures, "the API server failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 << failures)).await;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::{contains, keep_router_fields};

    /// A VirtualService and DestinationRule mid-release, and their manifests as first applied.
    #[test]
    fn router_fields_are_carried_over_and_an_unchanged_manifest_is_contained() {
        let managed = BTreeSet::from(["beta".to_string()]);
        let live = json!({
            "metadata": {"name": "web", "resourceVersion": "7"},
            "spec": {
                "http": [
                    {"name": "beta", "route": [{"destination": {"subset": "canary"}, "weight": 100}]},
                    {"name": "primary", "route": [
                        {"destination": {"subset": "stable"}, "weight": 80},
                        {"destination": {"subset": "canary"}, "weight": 20},
                    ]},
                ],
                "subsets": [{"name": "stable", "labels": {"app": "web", "rollouts-pod-template-hash": "abc"}}],
            },
        });
        let manifest = json!({
            "metadata": {"name": "web"},
            "spec": {
                "http": [{"name": "primary", "route": [
                    {"destination": {"subset": "stable"}, "weight": 100},
                    {"destination": {"subset": "canary"}, "weight": 0},
                ]}],
                "subsets": [{"name": "stable", "labels": {"app": "web"}}],
            },
        });
        let mut body = manifest.clone();
        keep_router_fields(&live, &mut body, &managed);
        assert_eq!(body["spec"]["http"], live["spec"]["http"]);
        assert_eq!(body["spec"]["subsets"], live["spec"]["subsets"]);
        assert!(contains(&live, &body));

        // A change of the user's own: kept, with the router's fields around it.
        let mut changed = manifest.clone();
        changed["spec"]["http"][0]["timeout"] = json!("5s");
        keep_router_fields(&live, &mut changed, &managed);
        assert!(!contains(&live, &changed));
        assert_eq!(changed["spec"]["http"][0]["name"], "beta");
        assert_eq!(changed["spec"]["http"][1]["timeout"], "5s");
        assert_eq!(changed["spec"]["http"][1]["route"][1]["weight"], 20);
    }

    #[test]
    fn containment_compares_lists_whole() {
        assert!(contains(
            &json!({"a": [1, 2], "b": 1}),
            &json!({"a": [1, 2]})
        ));
        assert!(!contains(&json!({"a": [1, 2]}), &json!({"a": [1]})));
        assert!(!contains(&json!({"a": 1}), &json!({"b": 1})));
    }
}
