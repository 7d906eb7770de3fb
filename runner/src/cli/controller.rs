//! `rollout-runner controller`: run the driver in the cluster, for every Rollout in scope.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::cluster::lease::default_identity;
use crate::controller::{self, Settings, serve::Health};
use crate::error::ExitStatus;
use crate::report::delivery::Secret;
use crate::report::notify::{
    CdeventsService, GithubDeployments, Notifier, NotifyConfig, WebhookService,
};

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

    /// Notify a webhook named NAME (in `notifications.argoproj.io/subscribe.<trigger>.NAME`
    /// annotations) with a body rendered from TEMPLATE: `slack` or `teams` (built in) or a
    /// minijinja file that renders JSON. Its URL is read from `ROLLOUT_RUNNER_NOTIFY_<NAME>_URL`
    /// (NAME upper-cased, `-` as `_`) and never printed. Repeatable.
    #[arg(long, value_name = "NAME=TEMPLATE", help_heading = "Notifications")]
    notify_webhook: Vec<String>,

    /// Send CDEvents (CloudEvents HTTP binding) to `ROLLOUT_RUNNER_NOTIFY_CDEVENTS_URL` for the
    /// Rollouts subscribed with `notifications.argoproj.io/subscribe.<trigger>.cdevents`.
    #[arg(long, help_heading = "Notifications")]
    notify_cdevents: bool,

    /// The CDEvents `source` of the events.
    #[arg(
        long,
        value_name = "URI",
        default_value = "rollout-runner/controller",
        help_heading = "Notifications"
    )]
    notify_cdevents_source: String,

    /// Post GitHub Deployment statuses for Rollouts annotated `rollout-runner.io/commit` (and
    /// `rollout-runner.io/repository`), with the token in `ROLLOUT_RUNNER_NOTIFY_GITHUB_TOKEN`.
    #[arg(long, help_heading = "Notifications")]
    notify_github: bool,

    /// The GitHub API (`https://HOST/api/v3` for GitHub Enterprise Server).
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://api.github.com",
        help_heading = "Notifications"
    )]
    notify_github_api_url: String,

    /// The repository (`owner/name`) of Rollouts without `rollout-runner.io/repository`.
    #[arg(long, value_name = "OWNER/NAME", help_heading = "Notifications")]
    notify_github_repository: Option<String>,

    /// The Deployment environment of Rollouts without `rollout-runner.io/environment`.
    /// Default: the Rollout's namespace.
    #[arg(long, value_name = "NAME", help_heading = "Notifications")]
    notify_github_environment: Option<String>,

    /// This replica's `holderIdentity` in Leases. Default: `controller/<hostname>/<pid>`.
    #[arg(long, value_name = "NAME")]
    identity: Option<String>,
}

pub(crate) fn run(args: ControllerArgs) -> anyhow::Result<ExitStatus> {
    let lease_duration = parse_duration(&args.lease_duration, "--lease-duration")?;
    let stuck_after = parse_duration(&args.stuck_reconcile_after, "--stuck-reconcile-after")?;
    let notify = notify_config(&args)?;
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
            notifier: (!notify.is_empty()).then(|| Notifier::start(notify)),
        };
        let providers = super::apply::cluster_metrics(&client);
        controller::run(client, providers, settings, health, super::interrupted()).await?;
        Ok(ExitStatus::Success)
    })
}

/// The environment variable holding the URL of the webhook `name`.
pub(crate) fn webhook_url_env(name: &str) -> String {
    format!(
        "ROLLOUT_RUNNER_NOTIFY_{}_URL",
        name.to_uppercase().replace('-', "_")
    )
}

/// A secret from the environment, or a usage error naming the variable.
fn secret_env(variable: &str, what: &str) -> anyhow::Result<Secret> {
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
        _ => Err(anyhow::anyhow!(
            "{what} needs `{variable}` in the environment (kept secret: never printed)\n\
             hint: in the Helm chart, set it from a Secret (notifications values)"
        )),
    }
}

/// The notification services of the flags, checked before the cluster is touched.
fn notify_config(args: &ControllerArgs) -> anyhow::Result<NotifyConfig> {
    let mut config = NotifyConfig::default();
    for spec in &args.notify_webhook {
        let Some((name, template)) = spec.split_once('=').filter(|(n, t)| {
            !t.is_empty()
                && !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }) else {
            return Err(anyhow::anyhow!(
                "--notify-webhook `{spec}`: expected NAME=TEMPLATE\n\
                 hint: such as --notify-webhook slack=slack (built-in templates: slack, teams) \
                 or --notify-webhook chat=/etc/rollout-runner/chat.json.j2"
            ));
        };
        if name == crate::report::notify::CDEVENTS_SERVICE
            || config.webhooks.iter().any(|w| w.name == name)
        {
            return Err(anyhow::anyhow!(
                "--notify-webhook `{spec}`: the name `{name}` is already taken\n\
                 hint: give every webhook its own name (`cdevents` is the CDEvents sink)"
            ));
        }
        let url = secret_env(&webhook_url_env(name), &format!("--notify-webhook {name}"))?;
        let service =
            WebhookService::new(name, template, url).map_err(|e| anyhow::anyhow!("{e}"))?;
        config.webhooks.push(service);
    }
    if args.notify_cdevents {
        config.cdevents = Some(CdeventsService {
            url: secret_env("ROLLOUT_RUNNER_NOTIFY_CDEVENTS_URL", "--notify-cdevents")?,
            source: args.notify_cdevents_source.clone(),
        });
    }
    if args.notify_github {
        config.github = Some(GithubDeployments {
            api_url: args.notify_github_api_url.clone(),
            token: secret_env("ROLLOUT_RUNNER_NOTIFY_GITHUB_TOKEN", "--notify-github")?,
            repository: args.notify_github_repository.clone(),
            environment: args.notify_github_environment.clone(),
        });
    }
    Ok(config)
}
