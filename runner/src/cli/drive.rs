//! Driving one Rollout on a real cluster from a short-lived process: take the Rollout's Lease
//! and drive it, or follow whoever holds it (another runner, the in-cluster controller) and
//! take over if it stops renewing. A Rollout that an Argo Rollouts controller handles is only
//! followed.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::cluster::Cluster;
use crate::cluster::ClusterError;
use crate::cluster::kube::KubeCluster;
use crate::cluster::lease::{self, LeaseFence, LeaseSettings};
use crate::controller::claim::{Claim, Claims};
use crate::driver::{Driver, DriverError, RunOptions};
use crate::metrics::Metrics;
use crate::report::{Outcome, Reporter};

/// How to drive.
#[derive(Debug, Clone, Default)]
pub(crate) struct DriveSettings {
    pub(crate) run: RunOptions,
    pub(crate) lease: LeaseSettings,
    /// Never drive: follow and report only.
    pub(crate) follow_only: bool,
}

/// Say something to the person watching (progress goes to stderr, data to stdout).
#[allow(
    clippy::print_stderr,
    reason = "notes for the person running the command"
)]
fn note(text: &str) {
    eprintln!("note: {text}");
}

/// The options for the time left before `deadline`.
fn remaining(options: &RunOptions, deadline: Option<Timestamp>) -> RunOptions {
    let mut options = options.clone();
    if let Some(deadline) = deadline {
        let left = deadline.duration_since(Timestamp::now());
        options.timeout = Some(left.max(SignedDuration::ZERO));
    }
    options
}

/// Drive (or follow) `namespace/name` until it reaches an outcome or the timeout passes.
pub(crate) async fn drive<M: Metrics>(
    cluster: &KubeCluster,
    metrics: &M,
    reporter: &mut dyn Reporter,
    namespace: &str,
    name: &str,
    settings: &DriveSettings,
) -> Result<Outcome, DriverError> {
    let deadline = settings
        .run
        .timeout
        .and_then(|t| Timestamp::now().checked_add(t).ok());
    let Some(rollout) = cluster.get_rollout(namespace, name).await? else {
        return Err(DriverError::RolloutNotFound {
            namespace: namespace.into(),
            name: name.into(),
        });
    };
    let check = |rollout: &crate::crd::Rollout, observed: &crate::observed::Observed| {
        crate::validate::cluster::missing_reference(rollout, observed)
    };
    // Every write checks the Lease first: a runner that was cut off from the API server for
    // longer than the Lease must not write once it is back, even before its Lease manager
    // notices that someone else took over.
    let fenced = cluster.with_fence(LeaseFence::new(
        cluster.client().clone(),
        namespace,
        name,
        &settings.lease,
    ));
    let mut driver = Driver::new(&fenced, metrics, reporter).with_spec_check(&check);
    if settings.follow_only {
        return driver
            .follow(namespace, name, &remaining(&settings.run, deadline))
            .await;
    }
    if let Some(holder) = lease::argo_controller(cluster.client(), &rollout).await {
        note(&format!(
            "an Argo Rollouts controller ({holder}) handles {namespace}/{name}; following it"
        ));
        return driver
            .follow(namespace, name, &remaining(&settings.run, deadline))
            .await;
    }
    let mut lease = RunnerLease::start(cluster, &rollout, &settings.lease);
    let outcome = loop {
        if !lease.is_held() {
            // The Lease manager may need a moment to take a free Lease: give it that before
            // telling anyone that someone else drives.
            let _ = tokio::time::timeout(Duration::from_millis(500), lease.acquired()).await;
        }
        if !lease.is_held() {
            let holder = lease
                .holder()
                .await
                .unwrap_or_else(|| "another process".into());
            note(&format!(
                "{holder} is driving {namespace}/{name}; following it until it finishes or stops"
            ));
            let options = remaining(&settings.run, deadline);
            tokio::select! {
                outcome = driver.follow(namespace, name, &options) => {
                    let Ok(decided) = &outcome else { break outcome };
                    if !decided.needs_settling() {
                        break outcome;
                    }
                    // The driver may have died between the decision and the end of its work
                    // (a rollback, the old version's scale-down): once the Lease is free, see
                    // it through. A live driver releases the Lease when it is done.
                    let wait = deadline.map(|d| {
                        let left = d.duration_since(Timestamp::now());
                        Duration::try_from(left).unwrap_or(Duration::ZERO)
                    });
                    let acquired = match wait {
                        Some(wait) => tokio::time::timeout(wait, lease.acquired()).await.is_ok(),
                        None => {
                            lease.acquired().await;
                            true
                        }
                    };
                    if !acquired {
                        break outcome;
                    }
                }
                () = lease.acquired() => {
                    note(&format!("took over {namespace}/{name}"));
                }
            }
        }
        let options = remaining(&settings.run, deadline);
        tokio::select! {
            outcome = driver.run(namespace, name, &options) => {
                let Err(DriverError::Cluster(ClusterError::Fenced(reason))) = &outcome else {
                    break outcome;
                };
                note(&format!("stopped driving {namespace}/{name}: {reason}; following instead"));
                // Give the Lease manager the time to see it too, so the loop follows rather
                // than driving again at once.
                let _ = tokio::time::timeout(settings.lease.duration, lease.lost()).await;
            }
            () = lease.lost() => {
                note(&format!("lost the lease of {namespace}/{name}; following instead"));
            }
        }
    };
    lease.release().await;
    fenced.flush_events().await;
    outcome
}

/// A runner's hold on its Rollout's Lease, taken (or waited for) and renewed in the
/// background with the controller's compare-and-swap claims: a Lease is taken only when it is
/// free or expired as read just before, never released by force on a stale view (which
/// kube-lease-manager's watcher does when it wakes at the expiry it last saw, stealing a Lease
/// its holder renewed meanwhile).
struct RunnerLease {
    held: tokio::sync::watch::Receiver<bool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    caches: crate::cluster::caches::CacheSet,
    namespace: String,
    name: String,
}

impl RunnerLease {
    fn start(
        cluster: &KubeCluster,
        rollout: &crate::crd::Rollout,
        settings: &LeaseSettings,
    ) -> Self {
        let client = cluster.client().clone();
        let claims = Claims::new(client.clone(), settings.identity.clone(), settings.duration)
            .with_caches(cluster.caches().clone());
        let duration = settings.duration.max(Duration::from_secs(1));
        let (sender, held) = tokio::sync::watch::channel(false);
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let owned = rollout.clone();
        let task = tokio::spawn(async move {
            let rollout = owned;
            // When the Lease was last written by this process: on an error it stays ours
            // until then plus its duration (the fence guards every write anyway).
            let mut last_written: Option<std::time::Instant> = None;
            loop {
                let next = match claims.claim(&rollout).await {
                    Ok(Claim::Held { .. }) => {
                        last_written = Some(std::time::Instant::now());
                        sender.send_replace(true);
                        claims.renew_every()
                    }
                    Ok(Claim::Elsewhere { until, .. }) => {
                        last_written = None;
                        sender.send_replace(false);
                        let left = until.duration_since(Timestamp::now());
                        Duration::try_from(left)
                            .unwrap_or_default()
                            .clamp(Duration::from_millis(100), duration)
                    }
                    Err(error) => {
                        tracing::debug!(%error, "could not renew the lease; retrying");
                        let ours = last_written.is_some_and(|at| at.elapsed() < duration);
                        sender.send_replace(ours);
                        Duration::from_millis(500)
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(next) => {}
                    _ = &mut stopped => break,
                }
            }
            claims.release(&rollout).await;
        });
        Self {
            held,
            stop: Some(stop),
            task,
            caches: cluster.caches().clone(),
            namespace: rollout.namespace_or_default().to_string(),
            name: rollout.name().to_string(),
        }
    }

    /// Whether this process holds the Lease now.
    fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Resolves once this process holds the Lease.
    async fn acquired(&mut self) {
        if self.held.wait_for(|held| *held).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once this process no longer holds the Lease.
    async fn lost(&mut self) {
        let _ = self.held.wait_for(|held| !*held).await;
    }

    /// Who holds the Lease now, if anyone holds it unexpired.
    async fn holder(&self) -> Option<String> {
        let caches = self.caches.of(&self.namespace).ok()?;
        let lease = caches
            .leases
            .get(&self.namespace, &lease::lease_name(&self.name))?;
        lease::live_holder((*lease).clone())
    }

    /// Give the Lease up (if held) so the next runner need not wait for it to expire.
    async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            tracing::debug!("releasing the lease timed out; it will expire");
            self.task.abort();
        }
    }
}
