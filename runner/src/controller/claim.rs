//! The controller's hold on a Rollout's Lease (the same `rollout-runner-<rollout>` Lease the
//! CI runner takes, see [`crate::cluster::lease`]).
//!
//! A runner keeps a background task per Lease; the controller may be responsible for
//! thousands of Rollouts, so it takes and renews a Lease inside the reconcile instead, as a
//! compare-and-swap on the Lease's `resourceVersion`, and gives it up when the Rollout
//! settles. Its writes use their own field manager, so a runner's server-side apply of
//! `holderIdentity` conflicts instead of silently overwriting the controller's hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use kube::{Client, Resource};

use crate::cluster::caches::{CacheSet, Caches};
use crate::cluster::lease::lease_name;
use crate::crd::Rollout;

/// The field manager of the controller's Lease writes (see the module doc for why it differs
/// from the runner's).
pub const LEASE_FIELD_MANAGER: &str = "rollout-runner-controller";

/// Who may drive a Rollout now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This controller holds the Lease until at least `duration` from now; `took_from` names
    /// the previous holder when it just took over an expired Lease (a runner that died).
    Held { took_from: Option<String> },
    /// Someone else holds it; look again at `until` (when it expires unless renewed).
    Elsewhere { holder: String, until: Timestamp },
}

/// The controller's Leases on Rollouts.
pub struct Claims {
    client: Client,
    identity: String,
    duration: Duration,
    /// When this process last wrote each Lease it holds, by `namespace/name`.
    held: Mutex<HashMap<String, Timestamp>>,
    /// Watch caches holding the Leases: read instead of the API server, and told of writes.
    caches: Mutex<Option<CacheSet>>,
}

impl Claims {
    pub fn new(client: Client, identity: String, duration: Duration) -> Self {
        Self {
            client,
            identity,
            duration: duration.max(Duration::from_secs(1)),
            held: Mutex::new(HashMap::new()),
            caches: Mutex::new(None),
        }
    }

    /// Read Leases from `caches` (fed by watches) rather than from the API server.
    pub fn with_caches(self, caches: CacheSet) -> Self {
        self.set_caches(Some(caches));
        self
    }

    /// Read Leases from `caches` from now on (`None`: from the API server).
    pub fn set_caches(&self, caches: Option<CacheSet>) {
        *self.caches.lock().unwrap_or_else(|e| e.into_inner()) = caches;
    }

    /// The caches of `namespace`'s Leases.
    fn caches_of(&self, namespace: &str) -> Option<Arc<Caches>> {
        let caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        caches.as_ref()?.of(namespace).ok().cloned()
    }

    /// The caches of `namespace`'s Leases, once listed.
    async fn cache(&self, namespace: &str) -> Option<Arc<Caches>> {
        let caches = self.caches_of(namespace)?;
        caches.synced().await.ok()?;
        Some(caches)
    }

    /// A Lease as the watch cache shows it (with this process's own last write), or as the
    /// API server does when nothing caches it.
    async fn read(
        &self,
        api: &Api<Lease>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Lease>, kube::Error> {
        match self.cache(namespace).await {
            Some(caches) => Ok(caches.leases.get(namespace, name).map(|l| (*l).clone())),
            None => api.get_opt(name).await,
        }
    }

    /// Remember a Lease as written, for the next read.
    fn wrote(&self, namespace: &str, lease: Lease) {
        if let Some(caches) = self.caches_of(namespace) {
            caches.leases.wrote(lease);
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Renew a held Lease once a third of its duration has passed, as runners do.
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    fn key(rollout: &Rollout) -> String {
        format!("{}/{}", rollout.namespace_or_default(), rollout.name())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Timestamp>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Take or renew the Lease of `rollout`.
    pub async fn claim(&self, rollout: &Rollout) -> Result<Claim, kube::Error> {
        let key = Self::key(rollout);
        let now = Timestamp::now();
        let renew_after = SignedDuration::try_from(self.renew_every()).unwrap_or_default();
        if self
            .held()
            .get(&key)
            .is_some_and(|written| now < *written + renew_after)
        {
            return Ok(Claim::Held { took_from: None });
        }
        let api: Api<Lease> = Api::namespaced(self.client.clone(), rollout.namespace_or_default());
        let name = lease_name(rollout.name());
        let params = PostParams {
            field_manager: Some(LEASE_FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let namespace = rollout.namespace_or_default();
        let outcome = match self.read(&api, namespace, &name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        // The Lease goes away with its Rollout.
                        owner_references: Some(vec![owner(rollout)]),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now, None)),
                };
                api.create(&params, &lease).await.map(|written| {
                    self.wrote(namespace, written);
                    Claim::Held { took_from: None }
                })
            }
            Some(mut lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
                let until = spec.renew_time.as_ref().map(|t| {
                    t.0 + SignedDuration::from_secs(i64::from(
                        spec.lease_duration_seconds.unwrap_or(15),
                    ))
                });
                match (holder, until) {
                    (Some(holder), Some(until)) if holder != self.identity && until > now => {
                        self.held().remove(&key);
                        return Ok(Claim::Elsewhere { holder, until });
                    }
                    (holder, _) => {
                        let taken = holder.as_deref() == Some(self.identity.as_str());
                        let mut next = self.spec(now, Some(&spec));
                        if taken {
                            next.acquire_time = spec.acquire_time.clone();
                            next.lease_transitions = spec.lease_transitions;
                        }
                        lease.spec = Some(next);
                        let took_from = holder.filter(|_| !taken);
                        // `resourceVersion` from the read: fails if anyone wrote in between.
                        api.replace(&name, &params, &lease).await.map(|written| {
                            self.wrote(namespace, written);
                            Claim::Held { took_from }
                        })
                    }
                }
            }
        };
        match outcome {
            Ok(claim) => {
                self.held().insert(key, now);
                Ok(claim)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                // Someone else wrote it first: they hold it now; look again shortly.
                self.held().remove(&key);
                Ok(Claim::Elsewhere {
                    holder: "another process".into(),
                    until: now + SignedDuration::from_secs(1),
                })
            }
            Err(error) => {
                self.held().remove(&key);
                Err(error)
            }
        }
    }

    fn spec(&self, now: Timestamp, previous: Option<&LeaseSpec>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(self.seconds()),
            lease_transitions: Some(
                previous
                    .and_then(|p| p.lease_transitions)
                    .map_or(0, |t| t.saturating_add(1)),
            ),
            ..LeaseSpec::default()
        }
    }

    /// Whether this process holds (as far as it knows) the Lease of `rollout`.
    pub fn holds(&self, rollout: &Rollout) -> bool {
        self.held().contains_key(&Self::key(rollout))
    }

    /// Give up the Lease of `rollout` if this process holds it, so a runner need not wait
    /// for it to expire.
    pub async fn release(&self, rollout: &Rollout) {
        if self.held().remove(&Self::key(rollout)).is_none() {
            return;
        }
        self.release_lease(rollout.namespace_or_default(), rollout.name())
            .await;
    }

    /// Give up every Lease this process holds (on shutdown).
    pub async fn release_all(&self) {
        let keys: Vec<String> = self.held().drain().map(|(k, _)| k).collect();
        for key in keys {
            if let Some((namespace, name)) = key.split_once('/') {
                self.release_lease(namespace, name).await;
            }
        }
    }

    async fn release_lease(&self, namespace: &str, rollout: &str) {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        let name = lease_name(rollout);
        let Ok(Some(mut lease)) = self.read(&api, namespace, &name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        // Cleared the way kube-lease-manager clears a released Lease, so runners see it free.
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = None;
        spec.lease_duration_seconds = None;
        let params = PostParams {
            field_manager: Some(LEASE_FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        match api.replace(&name, &params, &lease).await {
            Ok(written) => self.wrote(namespace, written),
            // It expires on its own.
            Err(error) => tracing::debug!(%error, lease = %name, "could not release a lease"),
        }
    }
}

fn owner(rollout: &Rollout) -> OwnerReference {
    OwnerReference {
        api_version: Rollout::api_version(&()).into_owned(),
        kind: Rollout::kind(&()).into_owned(),
        name: rollout.name().to_string(),
        uid: rollout.metadata.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}
