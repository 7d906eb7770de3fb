//! One driver per Rollout: a `coordination.k8s.io` Lease named after the Rollout, held by the
//! process that drives it and renewed while it does (taken and renewed as a compare-and-swap,
//! see the binary's `controller::claim`), and a fence that every write of a driver checks. Runners and the in-cluster controller take
//! the same Lease, so they never drive one Rollout at once; a process that cannot take it
//! follows the rollout instead, and takes over when the holder stops renewing.
//!
//! Also finds an Argo Rollouts controller that would drive the same Rollouts.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, ListParams};

use super::ClusterError;
use rollout_runner_api::crd::Rollout;

/// Prefix of the Lease of each Rollout.
pub const LEASE_PREFIX: &str = "rollout-runner-";

/// Argo Rollouts' leader-election Lease (suffixed with `-<instance id>` when it has one).
const ARGO_CONTROLLER_LEASE: &str = "argo-rollouts-controller-lock";

/// Argo Rollouts' instance-id label on the objects a controller instance handles.
pub const ARGO_INSTANCE_ID_LABEL: &str = "argo-rollouts.argoproj.io/controller-instance-id";

/// How long a Lease lives without renewal, and how early its holder renews it.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// A holder that stops renewing loses the Lease after this long.
    pub duration: Duration,
    /// The holder renews this long before the Lease would expire.
    pub grace: Duration,
    /// Who holds it, as written in `holderIdentity`.
    pub identity: String,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(15),
            grace: Duration::from_secs(5),
            identity: default_identity(),
        }
    }
}

/// `host/pid`, so a person reading the Lease knows which runner holds it.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}/{}", std::process::id())
}

/// The name of a Rollout's Lease (at most 253 characters, as object names must be).
pub fn lease_name(rollout: &str) -> String {
    let mut name = format!("{LEASE_PREFIX}{rollout}");
    name.truncate(253);
    name
}

/// The holder of a live Argo Rollouts controller Lease that would handle `rollout` (same
/// instance id), if there is one and the runner may see it.
pub async fn argo_controller(client: &Client, rollout: &Rollout) -> Option<String> {
    let instance_id = rollout
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(ARGO_INSTANCE_ID_LABEL))
        .filter(|id| !id.is_empty());
    let name = match instance_id {
        Some(id) => format!("{ARGO_CONTROLLER_LEASE}-{id}"),
        None => ARGO_CONTROLLER_LEASE.to_string(),
    };
    let api: Api<Lease> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("metadata.name={name}"));
    // Without the right to list Leases cluster-wide there is nothing to see: not an error.
    let leases = api.list(&params).await.ok()?;
    leases.items.into_iter().find_map(live_holder)
}

/// The holder of a Lease that has not expired.
pub fn live_holder(lease: Lease) -> Option<String> {
    let spec = lease.spec?;
    let holder = spec.holder_identity.filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.map(|t| t.0)?;
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    (renewed + jiff::SignedDuration::from_secs(seconds) > Timestamp::now()).then_some(holder)
}

/// Fences a driver's writes with its Rollout's Lease. The Lease manager only learns that the
/// Lease is gone when a renewal gets through; a runner cut off from the API server keeps
/// believing it holds it, and its writes, held by the network, may land after another runner
/// took over. So before each write the cluster reads the Lease and writes only if this process
/// holds it with a renewal that has not expired, and the write must finish before it would.
#[derive(Clone)]
pub struct LeaseFence {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
}

impl LeaseFence {
    /// The fence of `rollout`'s Lease for the process `settings.identity`.
    pub fn new(client: Client, namespace: &str, rollout: &str, settings: &LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            name: lease_name(rollout),
            identity: settings.identity.clone(),
        }
    }

    /// How long the Lease is still this process's, as written in the Lease now; an error when
    /// it is not (or no longer) held by it.
    pub async fn remaining(&self) -> Result<Duration, ClusterError> {
        let lease = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(ClusterError::from)?
            .ok_or_else(|| ClusterError::Fenced(format!("the Lease `{}` is gone", self.name)))?;
        self.left(&lease)
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long `lease` (this fence's Lease, as read somewhere) is still this process's.
    pub fn left(&self, lease: &Lease) -> Result<Duration, ClusterError> {
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        if holder != self.identity {
            let holder = if holder.is_empty() { "nobody" } else { &holder };
            return Err(ClusterError::Fenced(format!(
                "the Lease `{}` is held by {holder}, not by this process",
                self.name
            )));
        }
        let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(15));
        let expires = spec
            .renew_time
            .as_ref()
            .map(|t| t.0 + jiff::SignedDuration::from_secs(seconds));
        let left = expires
            .map(|e| e.duration_since(Timestamp::now()))
            .and_then(|left| Duration::try_from(left).ok())
            .filter(|left| !left.is_zero());
        left.ok_or_else(|| {
            ClusterError::Fenced(format!(
                "the Lease `{}` was not renewed in time (renewed at {})",
                self.name,
                spec.renew_time
                    .map_or_else(|| "never".to_string(), |t| t.0.to_string())
            ))
        })
    }
}
