//! Driving one Rollout on a real cluster from a short-lived process: take the Rollout's Lease
//! and drive it, or follow whoever holds it (another runner, the in-cluster controller) and
//! take over if it stops renewing. A Rollout that an Argo Rollouts controller handles is only
//! followed.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::cluster::Cluster;
use crate::cluster::kube::KubeCluster;
use crate::cluster::lease::{self, LeaseSettings, RolloutLease};
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
    let mut driver = Driver::new(cluster, metrics, reporter).with_spec_check(&check);
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
    let mut lease =
        RolloutLease::start(cluster.client().clone(), &rollout, &settings.lease).await?;
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
                break outcome;
            }
            () = lease.lost() => {
                note(&format!("lost the lease of {namespace}/{name}; following instead"));
            }
        }
    };
    lease.release().await;
    outcome
}
