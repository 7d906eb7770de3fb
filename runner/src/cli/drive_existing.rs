//! `rollout-runner drive`: see through the Rollouts that something else applied (an Argo CD
//! sync, Flux, `kubectl apply`), chosen by name, label selector, Argo CD Application or all of
//! a namespace. Made for an Argo CD `Sync` hook: the hook runs while Argo CD applies, Argo CD
//! waits for it, and its exit code and one-line verdict become the sync's result.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Args};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

use crate::cluster::kube::KubeCluster;
use crate::cluster::lease::LeaseSettings;
use crate::crd::{Rollout, RolloutPhase};
use crate::driver::RunOptions;
use crate::engine::phase::observed_phase;
use crate::error::ExitStatus;
use crate::report::sources::Sources;
use crate::report::terminal::Terminal;
use crate::report::{Fanout, Reporter};

use super::apply::{cluster_metrics, parse_duration};
use super::connection::ConnectionArgs;
use super::drive::{DriveSettings, drive};
use super::report_args::{ReportArgs, finish_reports, start_reporters_each};

/// The annotation Argo CD's default (annotation) resource tracking writes on every object of
/// an Application: `APP:GROUP/KIND:NAMESPACE/NAME`.
const TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
/// The label of Argo CD's label resource tracking.
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Drive the Rollouts already in the cluster that are updating, until each is promoted,
/// aborted or degraded.
///
/// A Rollout is updating when it is not Healthy: its spec is not yet observed, a release is in
/// progress or paused, or its current release was aborted (then reported as aborted again).
/// Healthy Rollouts (after a commit that changed no Rollout) are left alone: the command says
/// so and exits 0. Each updating Rollout is driven as `apply --wait` drives it (Lease,
/// take-over), or only followed with `--follow` (when the in-cluster controller drives).
///
/// With `--argocd-app`, as a hook of that Application's sync: it waits until Argo CD has applied
/// the hook's sync wave (the running hook is in the Application's sync result), takes the
/// Rollouts Argo CD tracks for the Application, and reports on the synced revision.
///
/// Exit codes: 0 every Rollout promoted (or nothing updating), 1 one aborted or degraded, 2
/// invalid input or runner error, 3 timed out, 130 interrupted.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["rollout", "selector", "all", "argocd_app"])))]
pub(crate) struct DriveArgs {
    /// The Rollout's name.
    #[arg(value_name = "ROLLOUT")]
    rollout: Option<String>,

    /// The Rollouts with these labels (`key=value,key2!=value`, as kubectl's `-l`).
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    selector: Option<String>,

    /// Every Rollout of the namespace.
    #[arg(long)]
    all: bool,

    /// The Rollouts of this Argo CD Application (by its resource tracking annotation or label):
    /// `NAME`, or the hook's own `argocd.argoproj.io/tracking-id` annotation (the downward API
    /// can pass it). Implies waiting for the hook's sync wave and reporting the synced
    /// revision. [env: ROLLOUT_RUNNER_ARGOCD_APP]
    #[arg(long, value_name = "NAME", env = "ROLLOUT_RUNNER_ARGOCD_APP")]
    argocd_app: Option<String>,

    /// The namespace of the Argo CD Application.
    #[arg(long, value_name = "NAMESPACE", default_value = "argocd")]
    argocd_namespace: String,

    /// Never drive: follow whoever drives (the in-cluster controller) and report.
    #[arg(long)]
    follow: bool,

    /// Give up after this long (exit 3); the rollouts keep their state.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,

    /// How long this runner's claim on a Rollout lasts without renewal.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    lease_duration: String,

    /// Also write the one-line verdict to this file: the container's `terminationMessagePath`
    /// (`/dev/termination-log`), which Argo CD shows as the hook's message.
    #[arg(long, value_name = "FILE")]
    verdict_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    connection: ConnectionArgs,

    #[command(flatten)]
    report: ReportArgs,
}

/// An Argo CD Application as the hook names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Application {
    namespace: String,
    name: String,
    /// The application part of tracking ids: `NAME`, or `NAMESPACE_NAME` for an Application
    /// outside Argo CD's own namespace.
    tracking_key: String,
}

/// `NAME`, or a tracking id `KEY:GROUP/KIND:NS/NAME` whose key is `NAME` or `NS_NAME`.
fn application(text: &str, default_namespace: &str) -> anyhow::Result<Application> {
    let key = text.split(':').next().unwrap_or_default().trim();
    anyhow::ensure!(
        !key.is_empty(),
        "--argocd-app `{text}` names no Application\nhint: pass the Application's name, or the \
         hook's `argocd.argoproj.io/tracking-id` annotation through the downward API"
    );
    let (namespace, name) = match key.split_once('_') {
        Some((namespace, name)) if text.contains(':') => (namespace, name),
        _ => (default_namespace, key),
    };
    Ok(Application {
        namespace: namespace.into(),
        name: name.into(),
        tracking_key: key.into(),
    })
}

fn tracked_by(rollout: &Rollout, app: &Application) -> bool {
    let by_annotation = rollout
        .annotations()
        .get(TRACKING_ID)
        .and_then(|id| id.split_once(':'))
        .is_some_and(|(key, _)| key == app.tracking_key);
    by_annotation || rollout.labels().get(INSTANCE_LABEL) == Some(&app.name)
}

/// Not Healthy: its spec is not observed yet, a release is in progress or paused, or the
/// release of its current spec was aborted or is degraded (reported again, not retried: the
/// sync of a revision whose release was rolled back fails again, as Argo CD's health says).
fn updating(rollout: &Rollout) -> bool {
    let status = rollout.status_or_default();
    let (phase, _) = observed_phase(rollout.metadata.generation, &rollout.spec, &status);
    phase != RolloutPhase::Healthy
}

/// What Argo CD's running sync operation says: its revision, once the hook's wave is applied.
struct SyncOperation {
    revision: Option<String>,
}

fn applications(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "argoproj.io",
        "v1alpha1",
        "Application",
    ));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Wait until the Application's running operation lists this hook (the pod `hostname`, or its
/// Job) as running: Argo CD records the results of a sync wave after applying all of it, so
/// the Rollouts of the wave are in the cluster by then.
async fn wait_for_wave(
    client: &kube::Client,
    app: &Application,
    hostname: &str,
    patience: Duration,
) -> anyhow::Result<SyncOperation> {
    let api = applications(client, &app.namespace);
    let started = std::time::Instant::now();
    loop {
        let object = api.get(&app.name).await.with_context(|| {
            format!(
                "cannot read the Argo CD Application `{}/{}`\nhint: the hook's ServiceAccount \
                 needs `get` on applications.argoproj.io in `{}`",
                app.namespace, app.name, app.namespace
            )
        })?;
        let operation = &object.data["status"]["operationState"];
        let running = operation["phase"].as_str() == Some("Running");
        let ours = operation["syncResult"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|resource| hook_of(resource, hostname));
        if running && ours {
            let revision = operation["syncResult"]["revision"]
                .as_str()
                .or_else(|| operation["operation"]["sync"]["revision"].as_str())
                .map(str::to_string);
            return Ok(SyncOperation { revision });
        }
        anyhow::ensure!(
            started.elapsed() < patience,
            "Argo CD's sync of `{}/{}` did not list this hook (`{hostname}`) as running within \
             {}s\nhint: run `drive --argocd-app` as a hook (argocd.argoproj.io/hook: Sync) of \
             that Application",
            app.namespace,
            app.name,
            patience.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A running hook of the sync result that is this pod, or the Job that made it.
fn hook_of(resource: &Value, hostname: &str) -> bool {
    let Some(name) = resource["name"].as_str() else {
        return false;
    };
    let running = resource["hookPhase"].as_str() == Some("Running");
    let this = match resource["kind"].as_str() {
        Some("Pod") => name == hostname,
        Some("Job") => hostname
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('-')),
        _ => false,
    };
    running && this
}

pub(crate) fn run(mut args: DriveArgs) -> anyhow::Result<ExitStatus> {
    let timeout = args
        .timeout
        .as_deref()
        .map(|t| parse_duration(t, "--timeout"))
        .transpose()?;
    let lease_duration = parse_duration(&args.lease_duration, "--lease-duration")?;
    let app = args
        .argocd_app
        .as_deref()
        .map(|text| application(text, &args.argocd_namespace))
        .transpose()?;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let connection = args.connection.connect().await?;
        let namespace = connection.namespace.clone();
        if let Some(app) = &app {
            let hostname = std::env::var("HOSTNAME").unwrap_or_default();
            let operation =
                wait_for_wave(&connection.client, app, &hostname, Duration::from_secs(120)).await?;
            if args.report.commit.is_none() {
                args.report.commit = operation.revision.clone();
            }
            eprintln!(
                "note: Argo CD is syncing Application `{}/{}` to {}",
                app.namespace,
                app.name,
                operation
                    .revision
                    .as_deref()
                    .unwrap_or("an unknown revision")
            );
        }
        let api = Api::<Rollout>::namespaced(connection.client.clone(), &namespace);
        let mut params = ListParams::default();
        if let Some(selector) = &args.selector {
            params = params.labels(selector);
        }
        let listed = api
            .list(&params)
            .await
            .with_context(|| format!("cannot list the Rollouts of namespace `{namespace}`"))?
            .items;
        let chosen: Vec<Rollout> = listed
            .into_iter()
            .filter(|r| {
                args.rollout
                    .as_deref()
                    .is_none_or(|name| r.name_any() == name)
            })
            .filter(|r| app.as_ref().is_none_or(|app| tracked_by(r, app)))
            .collect();
        if let Some(name) = &args.rollout
            && chosen.is_empty()
        {
            anyhow::bail!("rollout `{namespace}/{name}` not found");
        }
        let updating: Vec<Rollout> = chosen.into_iter().filter(updating).collect();
        if updating.is_empty() {
            let line = "no Rollout is updating: nothing to release".to_string();
            println!("{line}");
            write_verdict(args.verdict_file.as_deref(), &line);
            return Ok(ExitStatus::Success);
        }
        let settings = DriveSettings {
            run: RunOptions {
                timeout: timeout.and_then(|t| jiff::SignedDuration::try_from(t).ok()),
                success_on_pause: false,
                target_template: None,
            },
            lease: LeaseSettings {
                duration: lease_duration,
                grace: (lease_duration / 3).max(Duration::from_secs(1)),
                ..LeaseSettings::default()
            },
            follow_only: args.follow,
        };
        let metrics = cluster_metrics(&connection.client);
        let ci = crate::ci::CiContext::detect(crate::ci::process_env, &std::env::current_dir()?);
        let mut reporters =
            start_reporters_each(&args.report, &ci, &Sources::default(), updating.len())?;
        let driving = updating
            .iter()
            .zip(reporters.iter_mut())
            .map(|(rollout, reporters)| {
                let name = rollout.name_any();
                let cluster = KubeCluster::new(connection.client.clone(), &namespace);
                let mut settings = settings.clone();
                settings.run.target_template = rollout.spec.template.clone();
                let metrics = &metrics;
                let namespace = &namespace;
                async move {
                    let mut terminal = Terminal::new(std::io::stderr());
                    let mut fanout = Fanout(vec![&mut terminal as &mut dyn Reporter, reporters]);
                    let outcome =
                        drive(&cluster, metrics, &mut fanout, namespace, &name, &settings).await;
                    (name, outcome.map_err(|e| e.to_string()))
                }
            });
        let driven = tokio::select! {
            driven = futures::future::join_all(driving) => Some(driven),
            signal = super::interrupted() => {
                eprintln!("\n{signal}: stopped between actions; the rollouts keep their state");
                None
            }
        };
        futures::future::join_all(reporters.into_iter().map(finish_reports)).await;
        let Some(driven) = driven else {
            return Ok(ExitStatus::Interrupted);
        };
        let mut lines = Vec::new();
        let mut statuses = Vec::new();
        let mut out = std::io::stdout().lock();
        for (name, outcome) in &driven {
            let (line, status) = match outcome {
                Ok(outcome) => (outcome.describe(), outcome.exit_status()),
                Err(error) => (format!("error: {error}"), ExitStatus::Error),
            };
            let line = format!("rollout {namespace}/{name}: {line}");
            let _ = writeln!(out, "{line}");
            lines.push(line);
            statuses.push(status);
        }
        write_verdict(args.verdict_file.as_deref(), &lines.join("; "));
        Ok(super::apply::combined(statuses))
    })
}

/// The verdict for whoever reads the termination message; a failure to write it only warns.
fn write_verdict(path: Option<&std::path::Path>, line: &str) {
    let Some(path) = path else { return };
    if let Err(error) = std::fs::write(path, format!("{line}\n")) {
        eprintln!(
            "warning: cannot write the verdict to `{}`: {error}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_application_is_named_or_taken_from_a_tracking_id() {
        let plain = application("shop", "argocd").unwrap();
        assert_eq!(
            (plain.namespace.as_str(), plain.name.as_str()),
            ("argocd", "shop")
        );
        let tracked = application("shop:/Pod:prod/rollout-runner-hook", "argocd").unwrap();
        assert_eq!(tracked.tracking_key, "shop");
        assert_eq!(tracked.name, "shop");
        let elsewhere = application("team_shop:batch/Job:prod/hook", "argocd").unwrap();
        assert_eq!(
            (elsewhere.namespace.as_str(), elsewhere.name.as_str()),
            ("team", "shop")
        );
        assert_eq!(elsewhere.tracking_key, "team_shop");
        assert!(application(":/Pod:prod/x", "argocd").is_err());
    }

    #[test]
    fn the_hook_is_found_as_a_pod_or_by_its_job() {
        let pod = serde_json::json!({"kind": "Pod", "name": "hook", "hookPhase": "Running"});
        assert!(hook_of(&pod, "hook"));
        assert!(!hook_of(&pod, "hook-x"));
        let job = serde_json::json!({"kind": "Job", "name": "hook", "hookPhase": "Running"});
        assert!(hook_of(&job, "hook-7xk2p"));
        let done = serde_json::json!({"kind": "Pod", "name": "hook", "hookPhase": "Succeeded"});
        assert!(!hook_of(&done, "hook"));
    }
}
