//! `rollout-runner controller`: run the driver in the cluster, for every Rollout in scope.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::cluster::lease::default_identity;
use crate::controller::{self, Settings, serve::Health};
use crate::error::ExitStatus;

use super::apply::parse_duration;
use super::connection::ConnectionArgs;

/// The namespace the controller runs in, set by the Deployment from the downward API.
const POD_NAMESPACE_ENV: &str = "POD_NAMESPACE";

/// Keep driving Rollouts from inside the cluster: long pauses, GitOps flows, and releases
/// whose CI job stopped waiting (`apply` without `--wait`, or a killed runner).
///
/// Replicas elect a leader with a Lease; only the leader drives. A Rollout is driven only
/// while the controller holds its `rollout-runner-<rollout>` Lease, so a CI runner and the
/// controller never drive it at once. Logs decisions at `info` (set `ROLLOUT_RUNNER_LOG`;
/// `ROLLOUT_RUNNER_LOG_FORMAT=json` for one JSON object per line). Stops on SIGTERM after
/// the reconciles in flight, giving its Leases up.
#[derive(Debug, Args)]
pub(crate) struct ControllerArgs {
    /// The kubeconfig file. Default: `$KUBECONFIG`, then `~/.kube/config`, then the in-cluster
    /// service account.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use. Default: the current context.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,

    /// Handle Rollouts in this namespace only (repeatable). Default: every namespace.
    #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE")]
    namespaces: Vec<String>,

    /// Handle only Rollouts labelled `argo-rollouts.argoproj.io/controller-instance-id=ID`.
    /// Default: only Rollouts without that label (as Argo Rollouts does).
    #[arg(long, value_name = "ID", env = "ROLLOUT_RUNNER_INSTANCE_ID")]
    instance_id: Option<String>,

    /// Where to serve `/metrics`, `/healthz` and `/readyz`. Given twice, the last wins (so the
    /// Helm chart's `extraArgs` can change the address the chart sets).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:8090",
        overrides_with = "metrics_addr"
    )]
    metrics_addr: SocketAddr,

    /// How long a Lease (leader election, and each Rollout's) lives without renewal: a
    /// replica that dies is replaced within this time.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    lease_duration: String,

    /// The namespace of the leader-election Lease. Default: `$POD_NAMESPACE`, then the first
    /// `--namespace`, then the kubeconfig's namespace.
    #[arg(long, value_name = "NAMESPACE")]
    lease_namespace: Option<String>,

    /// Reconciles running at once per namespace in scope (Argo's `--rollout-threads`); 0: no
    /// limit. More workers shorten queues but multiply the API requests in flight.
    #[arg(long, value_name = "N", default_value_t = 10)]
    workers: u16,

    /// `/healthz` fails (so the kubelet restarts the replica) while one reconcile has been
    /// running longer than this: the reconcile loop is stuck.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    stuck_reconcile_after: String,

    /// This replica's `holderIdentity` in Leases. Default: `controller/<hostname>/<pid>`.
    #[arg(long, value_name = "NAME")]
    identity: Option<String>,
}

pub(crate) fn run(args: ControllerArgs) -> anyhow::Result<ExitStatus> {
    let lease_duration = parse_duration(&args.lease_duration, "--lease-duration")?;
    let stuck_after = parse_duration(&args.stuck_reconcile_after, "--stuck-reconcile-after")?;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let connection = ConnectionArgs {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            namespace: None,
        };
        let config = connection.config().await?;
        let lease_namespace = args
            .lease_namespace
            .clone()
            .or_else(|| {
                std::env::var(POD_NAMESPACE_ENV)
                    .ok()
                    .filter(|n| !n.is_empty())
            })
            .or_else(|| args.namespaces.first().cloned())
            .unwrap_or_else(|| config.default_namespace.clone());
        let health = Arc::new(Health::new(stuck_after));
        let client = controller::counted_client(config, &health)
            .context("cannot build a Kubernetes client")?;
        let settings = Settings {
            namespaces: args.namespaces,
            instance_id: args.instance_id.filter(|id| !id.is_empty()),
            lease_namespace,
            lease_duration,
            identity: args
                .identity
                .unwrap_or_else(|| format!("controller/{}", default_identity())),
            metrics_addr: Some(args.metrics_addr),
            workers: args.workers,
        };
        let providers = super::apply::cluster_metrics(&client);
        controller::run(client, providers, settings, health, super::interrupted()).await?;
        Ok(ExitStatus::Success)
    })
}
