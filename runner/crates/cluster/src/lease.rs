//! One driver per Rollout: a `coordination.k8s.io` Lease named after the Rollout, held by the
//! process that drives it and renewed while it does. Runners and the in-cluster controller take
//! the same Lease, so they never drive one Rollout at once; a process that cannot take it
//! follows the rollout instead, and takes over when the holder stops renewing.
//!
//! Also finds an Argo Rollouts controller that would drive the same Rollouts.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, ListParams};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// The field manager of one process's Lease writes. It must differ between processes: a free
/// Lease is taken with a server-side apply, and only a different field manager makes a second
/// taker's apply conflict instead of silently overwriting the holder.
fn lease_field_manager(identity: &str) -> String {
    let mut manager = format!("{}/{identity}", super::kube::FIELD_MANAGER);
    // The API server limits field managers to 128 characters.
    while manager.len() > 128 {
        manager.pop();
    }
    manager
}

/// The name of a Rollout's Lease (at most 253 characters, as object names must be).
pub fn lease_name(rollout: &str) -> String {
    let mut name = format!("{LEASE_PREFIX}{rollout}");
    name.truncate(253);
    name
}

/// A Rollout's Lease, taken (or waited for) in the background.
pub struct RolloutLease {
    held: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, kube_lease_manager::LeaseManagerError>>,
    api: Api<Lease>,
    name: String,
}

impl RolloutLease {
    /// Start competing for the Lease of `rollout` (created if missing).
    pub async fn start(
        client: Client,
        rollout: &Rollout,
        settings: &LeaseSettings,
    ) -> Result<Self, ClusterError> {
        let namespace = rollout.namespace_or_default();
        let name = lease_name(rollout.name());
        let manager = LeaseManagerBuilder::new(client.clone(), &name)
            .with_namespace(namespace)
            .with_identity(&settings.identity)
            .with_duration(settings.duration.as_secs().max(1))
            .with_grace(settings.grace.as_secs().max(1))
            .with_field_manager(lease_field_manager(&settings.identity))
            .build()
            .await
            .map_err(|e| ClusterError::Api(format!("Lease `{name}`: {e}")))?;
        let (held, task) = manager.watch().await;
        Ok(Self {
            held,
            task,
            api: Api::namespaced(client, namespace),
            name,
        })
    }

    /// Whether this process holds the Lease now.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Resolves once this process holds the Lease.
    pub async fn acquired(&mut self) {
        if self.held.wait_for(|held| *held).await.is_err() {
            // The manager stopped: it will never be ours.
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once this process no longer holds the Lease.
    pub async fn lost(&mut self) {
        let _ = self.held.wait_for(|held| !*held).await;
    }

    /// Who holds the Lease now, if anyone holds it unexpired.
    pub async fn holder(&self) -> Option<String> {
        live_holder(self.api.get_opt(&self.name).await.ok().flatten()?)
    }

    /// Give the Lease up (if held) so the next runner need not wait for it to expire.
    pub async fn release(self) {
        drop(self.held);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(error))) => tracing::debug!(%error, "could not release the lease"),
            Ok(Err(error)) => tracing::debug!(%error, "the lease task failed"),
            Err(_) => tracing::debug!("releasing the lease timed out; it will expire"),
        }
    }
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
fn live_holder(lease: Lease) -> Option<String> {
    let spec = lease.spec?;
    let holder = spec.holder_identity.filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.map(|t| t.0)?;
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    (renewed + jiff::SignedDuration::from_secs(seconds) > Timestamp::now()).then_some(holder)
}
