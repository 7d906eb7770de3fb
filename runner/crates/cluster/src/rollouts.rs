//! What the operate commands (`get`, `list`, `status`, `promote`, `undo`, ...) read from the API
//! server and write to it: a Rollout with everything it owns, for people to look at, and the
//! patches of a person's operation.
//!
//! It decides nothing: the patches come from [`rollout_runner_core::operate`], the pictures from
//! the report crate's `info` module. Writes are JSON merge patches with field manager
//! [`FIELD_MANAGER`], the spec on the Rollout and the status through its status subresource,
//! as `kubectl argo rollouts` sends them; a runner driving the rollout sees them through its
//! watch and reacts on its next pass.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

use rollout_runner_api::crd::{Experiment, POD_TEMPLATE_HASH_LABEL, Rollout};
use rollout_runner_api::observed::ReplicaSetState;
use rollout_runner_core::operate::{Patches, merge};

use super::ClusterError;
use super::kube::{FIELD_MANAGER, owned_by, replica_set_state};

pub use rollout_runner_core::operate::RolloutView;

fn not_found(namespace: &str, name: &str) -> ClusterError {
    ClusterError::NotFound {
        kind: "Rollout",
        name: format!("{namespace}/{name}"),
    }
}

/// The Rollout `namespace/name`; [`ClusterError::NotFound`] when it does not exist.
pub async fn get_rollout(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Rollout, ClusterError> {
    Api::<Rollout>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .ok_or_else(|| not_found(namespace, name))
}

/// The Rollouts of a namespace, or of every namespace, sorted by namespace and name.
pub async fn list_rollouts(
    client: &Client,
    namespace: Option<&str>,
) -> Result<Vec<Rollout>, ClusterError> {
    let api = match namespace {
        Some(namespace) => Api::<Rollout>::namespaced(client.clone(), namespace),
        None => Api::<Rollout>::all(client.clone()),
    };
    let mut rollouts = api.list(&ListParams::default()).await?.items;
    rollouts.sort_by_key(|r| (r.namespace(), r.name_any()));
    Ok(rollouts)
}

/// The objects of kind `K` in `namespace` that one of `owners` (UIDs) controls.
async fn list_owned<K>(
    client: &Client,
    namespace: &str,
    owners: &[&str],
) -> Result<Vec<K>, ClusterError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Ok(Api::<K>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|object| owners.iter().any(|uid| owned_by(object.meta(), Some(uid))))
        .collect())
}

/// The ReplicaSets the rollout owns, as the engine sees them (`undo` picks a template there).
pub async fn replica_set_states(
    client: &Client,
    rollout: &Rollout,
) -> Result<Vec<ReplicaSetState>, ClusterError> {
    let uid = rollout.metadata.uid.as_deref().unwrap_or_default();
    let owned: Vec<ReplicaSet> = list_owned(client, rollout.namespace_or_default(), &[uid]).await?;
    Ok(owned.iter().map(replica_set_state).collect())
}

/// The Rollout `namespace/name` with its ReplicaSets, pods, AnalysisRuns and Experiments (and
/// theirs). Pods are listed by the `rollouts-pod-template-hash` labels of those ReplicaSets.
pub async fn view(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<RolloutView, ClusterError> {
    let rollout = get_rollout(client, namespace, name).await?;
    let uid = rollout.metadata.uid.as_deref().unwrap_or_default();
    let experiments: Vec<Experiment> = list_owned(client, namespace, &[uid]).await?;
    let owners: Vec<&str> = std::iter::once(uid)
        .chain(
            experiments
                .iter()
                .filter_map(|ex| ex.metadata.uid.as_deref()),
        )
        .collect();
    let replica_sets: Vec<ReplicaSet> = list_owned(client, namespace, &owners).await?;
    let analysis_runs = list_owned(client, namespace, &owners).await?;
    let pods = pods_of(client, namespace, &replica_sets).await?;
    Ok(RolloutView {
        rollout,
        replica_sets,
        pods,
        analysis_runs,
        experiments,
    })
}

/// The pods of these ReplicaSets: selected by their pod-template hashes, kept when one of the
/// ReplicaSets controls them.
async fn pods_of(
    client: &Client,
    namespace: &str,
    replica_sets: &[ReplicaSet],
) -> Result<Vec<Pod>, ClusterError> {
    let mut hashes: Vec<&str> = replica_sets
        .iter()
        .filter_map(|rs| rs.labels().get(POD_TEMPLATE_HASH_LABEL).map(String::as_str))
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let selector = format!("{POD_TEMPLATE_HASH_LABEL} in ({})", hashes.join(","));
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    Ok(pods
        .into_iter()
        .filter(|pod| {
            replica_sets
                .iter()
                .any(|rs| owned_by(&pod.metadata, rs.metadata.uid.as_deref()))
        })
        .collect())
}

/// Send an operation's patches to `rollout`: the spec as a merge patch on the Rollout, then
/// the status through the status subresource.
///
/// With `precondition`, each patch carries the `resourceVersion` the patches were computed
/// from (the second one that of the first's result), so the API server refuses it with a
/// conflict when the rollout changed in between; the caller reads again and recomputes.
pub async fn send(
    client: &Client,
    rollout: &Rollout,
    patches: &Patches,
    precondition: bool,
) -> Result<(), ClusterError> {
    let api = Api::<Rollout>::namespaced(client.clone(), rollout.namespace_or_default());
    let name = rollout.name();
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let mut version = rollout.metadata.resource_version.clone();
    let with_version = |patch: &Value, version: &Option<String>| {
        let mut patch = patch.clone();
        if let (true, Some(version)) = (precondition, version) {
            merge(
                &mut patch,
                &serde_json::json!({"metadata": {"resourceVersion": version}}),
            );
        }
        patch
    };
    let conflict = |error: kube::Error| match error {
        kube::Error::Api(status) if status.is_conflict() => ClusterError::Conflict {
            kind: "Rollout",
            name: name.to_string(),
        },
        kube::Error::Api(status) if status.is_not_found() => {
            not_found(rollout.namespace_or_default(), name)
        }
        other => other.into(),
    };
    if let Some(spec) = &patches.spec {
        let patched = api
            .patch(name, &params, &Patch::Merge(with_version(spec, &version)))
            .await
            .map_err(conflict)?;
        version = patched.metadata.resource_version;
    }
    if let Some(status) = &patches.status {
        api.patch_status(name, &params, &Patch::Merge(with_version(status, &version)))
            .await
            .map_err(conflict)?;
    }
    Ok(())
}
