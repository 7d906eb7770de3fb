//! `rollout-runner apply`: render, lint, server-side apply, and (with `--wait`) drive each
//! Rollout to its end.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::cluster::Cluster;
use crate::cluster::kube::KubeCluster;
use crate::cluster::lease::LeaseSettings;
use crate::cluster::manifests::{Applied, Applier, ApplyOptions};
use crate::crd::duration::parse_go_duration;
use crate::driver::RunOptions;
use crate::error::ExitStatus;
use crate::metrics::Metrics;
use crate::report::reporters::ReportSummary;
use crate::report::terminal::Terminal;
use crate::report::{Fanout, Outcome, Reporter};

use super::OutputFormat;
use super::connection::ConnectionArgs;
use super::drive::{DriveSettings, drive};
use super::inputs::{Inputs, load_inputs};
use super::record_args::{RecordArgs, recorder};
use super::report_args::{ReportArgs, finish_reports, sources_of, start_reporters_each};

/// Apply manifests to the cluster, then (with `--wait`) see each Rollout through.
///
/// The inputs are rendered and linted first; any problem stops the command before the cluster
/// is touched (exit 2). Every object is then sent as a server-side dry run, and only when the
/// API server accepts them all are they applied, with field manager `rollout-runner`: CRDs,
/// namespaces, configuration, Services, traffic objects, analysis templates, then Rollouts.
///
/// With `--wait`, each Rollout is driven to its end by this process: ReplicaSets scaled,
/// Services switched, analyses run, steps taken, exactly as the Argo Rollouts controller
/// would. Progress lives in the cluster, so a runner stopped half-way (Ctrl-C, a cancelled CI
/// job) is resumed by the next `apply --wait`. A Lease per Rollout makes sure only one process
/// drives it; another runner follows and reports instead.
///
/// With `--report`, each driven Rollout is reported as `simulate` reports it (a check run and a
/// sticky comment per Rollout, commit statuses, webhooks); a reporting failure never changes
/// the exit code.
///
/// With `--expect-plan HASH` (the hash `plan` printed for the same inputs), the command
/// refuses to start, before it connects to the cluster, when what it would apply plans
/// differently.
///
/// Exit codes: 0 promoted (or paused, with `--success-on-pause`), 1 aborted or degraded, or
/// superseded by a newer release, 2 invalid input, runner error or a plan that differs from
/// `--expect-plan`, 3 timed out while still progressing, 130 interrupted (the rollout keeps
/// its state).
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    inputs: Inputs,

    #[command(flatten)]
    connection: ConnectionArgs,

    /// Drive each Rollout until it is promoted, aborted, degraded or superseded.
    #[arg(long)]
    wait: bool,

    /// With `--wait`: give up after this long (exit 3); the rollout keeps its state.
    #[arg(long, value_name = "DURATION", requires = "wait")]
    timeout: Option<String>,

    /// With `--wait`: a pause waiting for promotion counts as success (exit 0).
    #[arg(long, requires = "wait")]
    success_on_pause: bool,

    /// Take over fields another field manager owns, as `kubectl apply --server-side
    /// --force-conflicts`.
    #[arg(long)]
    force_conflicts: bool,

    /// Validate everything with a server-side dry run and write nothing.
    #[arg(long, conflicts_with = "wait")]
    dry_run: bool,

    /// `text`: progress on stderr, applied objects and the outcome on stdout. `json`: one JSON
    /// document on stdout at the end.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,

    /// Also print each event (scaling, service switches, traffic) while driving.
    #[arg(long, short)]
    verbose: bool,

    /// How long a runner's claim on a Rollout lasts without renewal: another runner takes over
    /// this long after this one dies.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    lease_duration: String,

    /// Refuse to start (exit 2) unless the plan of the inputs has this hash: the `sha256:...`
    /// that `rollout-runner plan` printed for the same inputs (without `--rollout`), e.g. on
    /// the reviewed pull request.
    #[arg(long, value_name = "HASH")]
    expect_plan: Option<String>,

    #[command(flatten)]
    records: RecordArgs,

    #[command(flatten)]
    report: ReportArgs,
}

/// The result of one Rollout's drive.
struct Driven {
    namespace: String,
    name: String,
    outcome: Result<Outcome, String>,
    /// What the reporters of this Rollout did, when any ran.
    reports: Option<ReportSummary>,
}

impl Driven {
    fn exit_status(&self) -> ExitStatus {
        match &self.outcome {
            Ok(outcome) => outcome.exit_status(),
            Err(_) => ExitStatus::Error,
        }
    }
}

/// The status of several drives: the most serious one (an error, then a failure, then a
/// timeout).
pub(crate) fn combined(statuses: impl IntoIterator<Item = ExitStatus>) -> ExitStatus {
    let rank = |status: &ExitStatus| match status {
        ExitStatus::Success => 0,
        ExitStatus::TimedOut => 1,
        ExitStatus::Failure => 2,
        ExitStatus::Interrupted => 3,
        ExitStatus::Error => 4,
    };
    statuses
        .into_iter()
        .max_by_key(rank)
        .unwrap_or(ExitStatus::Success)
}

pub(crate) fn parse_duration(text: &str, flag: &str) -> anyhow::Result<Duration> {
    let duration = parse_go_duration(text).map_err(|e| {
        anyhow::anyhow!("{flag} `{text}`: {e}\nhint: use a duration like 90s, 10m or 1h30m")
    })?;
    Duration::try_from(duration).with_context(|| format!("{flag} `{text}` must not be negative"))
}

pub(crate) fn run(args: ApplyArgs) -> anyhow::Result<ExitStatus> {
    let timeout = args
        .timeout
        .as_deref()
        .map(|t| parse_duration(t, "--timeout"))
        .transpose()?;
    let lease_duration = parse_duration(&args.lease_duration, "--lease-duration")?;
    let set = match load_inputs(&args.inputs, &args.inputs.scenario_files())? {
        Ok(set) => set,
        Err(status) => return Ok(status),
    };
    if let Some(expected) = &args.expect_plan
        && let Err(message) = check_plan(&set, expected)
    {
        eprintln!("error: {message}");
        return Ok(ExitStatus::Error);
    }
    if !args.wait && (args.records.record.is_some() || args.records.junit.is_some()) {
        eprintln!("warning: --record and --junit record a release while it is driven: add --wait");
    }
    if !args.wait && !args.report.report.is_empty() {
        eprintln!("warning: --report reports a release while it is driven: add --wait");
    }
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let connection = args.connection.connect().await?;
        let documents: Vec<_> = set.documents().iter().collect();
        let mut applier = Applier::new(
            connection.client.clone(),
            &connection.namespace,
            ApplyOptions {
                force_conflicts: args.force_conflicts,
                dry_run: args.dry_run,
            },
        );
        let applied = match applier.apply(&documents).await {
            Ok(applied) => applied,
            Err(error) => {
                eprintln!("error: {error}");
                if error.before_any_write {
                    eprintln!("error: the cluster rejected the release; nothing was written");
                } else {
                    eprintln!(
                        "error: the objects before this one were applied; fix it and apply again"
                    );
                }
                return Ok(ExitStatus::Error);
            }
        };
        if args.output == OutputFormat::Text {
            print_applied(&applied, args.dry_run);
        }
        if !args.wait {
            if args.output == OutputFormat::Json {
                print_json(&applied, &[]);
            }
            return Ok(ExitStatus::Success);
        }
        let settings = DriveSettings {
            run: RunOptions {
                timeout: timeout.and_then(|t| jiff::SignedDuration::try_from(t).ok()),
                success_on_pause: args.success_on_pause,
                target_template: None,
            },
            lease: LeaseSettings {
                duration: lease_duration,
                grace: (lease_duration / 3).max(Duration::from_secs(1)),
                ..LeaseSettings::default()
            },
            follow_only: false,
        };
        let metrics = cluster_metrics(&connection.client);
        let rollouts: Vec<(String, String)> = set
            .rollouts()
            .map(|(doc, rollout)| {
                (
                    doc.namespace
                        .clone()
                        .unwrap_or_else(|| connection.namespace.clone()),
                    rollout.name().to_string(),
                )
            })
            .collect();
        let ci = crate::ci::CiContext::detect(crate::ci::process_env, &std::env::current_dir()?);
        let mut reporters =
            start_reporters_each(&args.report, &ci, &sources_of(&set), rollouts.len())?;
        let mut recorders: Vec<_> = rollouts
            .iter()
            .map(|(_, name)| recorder("apply", Some(&set), Some(name)))
            .collect();
        let driving = rollouts
            .iter()
            .zip(reporters.iter_mut())
            .zip(recorders.iter_mut())
            .map(|(((namespace, name), reporters), recorder)| {
                let cluster = KubeCluster::new(connection.client.clone(), namespace);
                let settings = settings.clone();
                let metrics = &metrics;
                let verbose = args.verbose;
                async move {
                    // The forge reporters and the recorder, behind the terminal.
                    let listeners = Fanout(vec![reporters as &mut dyn Reporter, recorder]);
                    let outcome = drive_applied(
                        &cluster, metrics, listeners, namespace, name, settings, verbose,
                    )
                    .await;
                    Driven {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        outcome,
                        reports: None,
                    }
                }
            });
        let all = futures::future::join_all(driving);
        let driven = tokio::select! {
            driven = all => Some(driven),
            signal = super::interrupted() => {
                eprintln!(
                    "\n{signal}: stopped between actions; the rollouts keep their state and the \
                     next `apply --wait` resumes them"
                );
                None
            }
        };
        // Records are written even when interrupted: they end where the drive stopped.
        for recorder in &recorders {
            args.records.write(&recorder.record, recorders.len() > 1)?;
        }
        // Reports are sent (within their flush timeout) even when interrupted.
        let summaries = futures::future::join_all(reporters.into_iter().map(finish_reports)).await;
        let Some(mut driven) = driven else {
            return Ok(ExitStatus::Interrupted);
        };
        for (result, summary) in driven.iter_mut().zip(summaries) {
            result.reports = summary;
        }
        match args.output {
            OutputFormat::Text => {
                let mut out = std::io::stdout().lock();
                for result in &driven {
                    let line = match &result.outcome {
                        Ok(outcome) => outcome.describe(),
                        Err(error) => format!("error: {error}"),
                    };
                    let _ = writeln!(out, "rollout {}/{}: {line}", result.namespace, result.name);
                }
            }
            OutputFormat::Json => print_json(&applied, &driven),
        }
        Ok(combined(driven.iter().map(Driven::exit_status)))
    })
}

/// Every metric provider, with provider Secrets and Jobs in this cluster.
pub(crate) fn cluster_metrics(client: &kube::Client) -> crate::metrics::cluster::ClusterMetrics {
    let settings = crate::metrics::ProviderSettings::from_process_env().with_secrets(
        std::sync::Arc::new(crate::cluster::kube::KubeSecrets(client.clone())),
    );
    crate::metrics::cluster::ClusterMetrics::new(
        client.clone(),
        crate::metrics::Providers::new(settings),
    )
}

/// Drive one applied Rollout, releasing the template as it is now in the cluster, reporting
/// to the terminal and `listeners`.
async fn drive_applied<M: Metrics>(
    cluster: &KubeCluster,
    metrics: &M,
    mut listeners: Fanout<'_>,
    namespace: &str,
    name: &str,
    mut settings: DriveSettings,
    verbose: bool,
) -> Result<Outcome, String> {
    let rollout = cluster
        .get_rollout(namespace, name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("rollout `{namespace}/{name}` not found after apply"))?;
    settings.run.target_template = rollout.spec.template.clone();
    let mut terminal = Terminal::new(std::io::stderr());
    terminal.verbose = verbose;
    let mut fanout = Fanout(vec![&mut terminal as &mut dyn Reporter, &mut listeners]);
    let outcome = drive(cluster, metrics, &mut fanout, namespace, name, &settings).await;
    outcome.map_err(|e| e.to_string())
}

/// `Err` with a message naming both hashes when the plan of `set` is not `expected`.
fn check_plan(set: &crate::manifest::ManifestSet, expected: &str) -> Result<(), String> {
    let plans = crate::planning::plan_set(set, None)
        .map_err(|e| format!("--expect-plan: cannot plan the inputs: {e}; nothing was applied"))?;
    let actual = crate::planning::combined_hash(&plans);
    if actual == expected.trim() {
        return Ok(());
    }
    Err(format!(
        "the plan of the inputs is {actual}, not the expected {}; nothing was applied\n\
         hint: run `rollout-runner plan` on the same inputs (same values and --set) and review \
         what changed, then pass its hash",
        expected.trim()
    ))
}

fn print_applied(applied: &[Applied], dry_run: bool) {
    let mut out = std::io::stdout().lock();
    for object in applied {
        let group = object
            .api_version
            .split_once('/')
            .map(|(group, _)| format!(".{group}"))
            .unwrap_or_default();
        let change = if dry_run {
            "accepted (server dry run)"
        } else {
            object.change.as_str()
        };
        let _ = writeln!(
            out,
            "{}{group}/{} {change}",
            object.kind.to_lowercase(),
            object.name
        );
    }
}

fn print_json(applied: &[Applied], driven: &[Driven]) {
    let rollouts: Vec<_> = driven
        .iter()
        .map(|d| {
            json!({
                "rollout": format!("{}/{}", d.namespace, d.name),
                "outcome": d.outcome.as_ref().ok(),
                "error": d.outcome.as_ref().err(),
                "exitCode": d.exit_status().code(),
                "reports": d.reports,
            })
        })
        .collect();
    let report = json!({
        "applied": applied,
        "rollouts": rollouts,
        "exitCode": combined(driven.iter().map(Driven::exit_status)).code(),
    });
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, &report);
    let _ = writeln!(out);
}
