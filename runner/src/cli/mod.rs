//! The command line: argument types and one file per subcommand.
//!
//! Subcommands wire the pipeline together; they make no rollout decisions and format no
//! reports themselves. Data goes to stdout, diagnostics to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod analysis;
mod analysis_backtest;
mod analysis_get;
mod check_queries;
mod comment_command;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::ExitStatus;

mod apply;
mod connection;
mod controller;
mod crds;
mod dashboard;
mod drive;
mod drive_existing;
mod inputs;
mod install;
mod lint;
mod plan;
mod record_args;
mod report;
pub mod report_args;
mod simulate;

mod abort;
mod get;
mod list;
pub(crate) mod operations;
mod pause;
mod promote;
mod restart;
mod resume;
mod retry;
mod set;
mod status;
mod undo;

pub use crds::crd_files;
pub mod render;

/// CI-native progressive delivery for Kubernetes, speaking the Argo Rollouts API.
///
/// Exit codes: 0 promoted or healthy, 1 aborted or degraded (or lint problems found),
/// 2 invalid input or runner error, 3 timed out while still progressing, 130 interrupted
/// (SIGINT or SIGTERM; the rollout keeps its state).
#[derive(Debug, Parser)]
#[command(name = "rollout-runner", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CRDs of the Argo Rollouts API that rollout-runner serves.
    Crds(crds::CrdsArgs),
    /// Render templates into manifests, with values and the CI context.
    ///
    /// Prints a multi-document YAML stream (each document preceded by a `# Source:` comment),
    /// or writes one file per input with `--out`. Exit 2 on any template error.
    Render(render::RenderArgs),
    /// Work with analysis: check conditions, show a run's measurements, backtest a template.
    Analysis {
        #[command(subcommand)]
        command: analysis::AnalysisCommand,
    },
    /// Check manifests and report every problem with file, line, column, field path and hint.
    Lint(lint::LintArgs),
    /// Run a release on an in-memory cluster with scripted metrics: no cluster needed.
    Simulate(simulate::SimulateArgs),
    Plan(plan::PlanArgs),
    /// Render a release record (`--record FILE`) as a self-contained HTML report or JUnit XML.
    Report(report::ReportArgs),
    /// Serve a live view of the cluster's Rollouts in the browser, with promote, abort and
    /// retry buttons.
    Dashboard(dashboard::DashboardArgs),
    /// Apply manifests to the cluster and, with `--wait`, drive each Rollout to its end.
    Apply(apply::ApplyArgs),
    /// Show a rollout's phase (`Phase - message`); with `--watch`, follow it until it ends.
    ///
    /// Without `--watch`: exit 1 when the rollout is degraded, else 0. With `--watch`: exit 0
    /// when it becomes Healthy (or pauses, with `--success-on-pause`), 1 when it is degraded or
    /// aborted, 3 when `--timeout` passes first, 130 on Ctrl-C. Either way 2 when its spec is
    /// invalid or the cluster cannot be read. A pause is waited through, as `kubectl argo
    /// rollouts status` does. Reads only: it can watch a rollout another process drives.
    Status(status::StatusArgs),
    /// Drive Rollouts someone else applied (an Argo CD sync hook, Flux, kubectl) to their end.
    ///
    /// Picks the updating Rollouts by name, `--selector`, `--all` or `--argocd-app`; exit 0 when
    /// every one is promoted (or none is updating), 1 when one is aborted or degraded.
    Drive(drive_existing::DriveArgs),
    /// Show a rollout with its revisions, ReplicaSets, pods, AnalysisRuns and Experiments.
    Get(get::GetArgs),
    /// List rollouts with their strategy, phase, step, weight and replica counts.
    List(list::ListArgs),
    /// Promote a rollout: resume its pause, or skip its current step; `--full` skips them all.
    ///
    /// Prints `rollout 'NAME' promoted` (`fully promoted`). Whoever drives the rollout reacts
    /// on its next pass; this command takes no Lease.
    Promote(promote::PromoteArgs),
    /// Abort an update: the rollout goes back to its stable version and becomes Degraded.
    Abort(operations::RolloutArg),
    /// Retry an aborted update from its first step.
    Retry(operations::RolloutArg),
    /// Pause a rollout (`spec.paused`): nothing scales or switches until `resume`.
    Pause(operations::RolloutArg),
    /// Resume a rollout paused with `pause`.
    Resume(operations::RolloutArg),
    /// Restart the pods of a rollout (`spec.restartAt`), now or `--in` a while.
    Restart(restart::RestartArgs),
    /// Change a rollout: `set image ROLLOUT CONTAINER=IMAGE`.
    Set {
        #[command(subcommand)]
        command: set::SetCommand,
    },
    /// Roll back to the pod template of the previous revision (or `--to-revision N`).
    ///
    /// The rollout then releases that template again: at once when it is the stable version
    /// or within `rollbackWindow`, else through its steps and analysis, as Argo does.
    Undo(undo::UndoArgs),
    /// Carry out a `/rollout promote|abort|retry` pull request comment (or merge request note).
    ///
    /// Reads the comment event (`GITHUB_EVENT_PATH`, GitLab's `TRIGGER_PAYLOAD`, or `--event`),
    /// checks the commenter's write access through the forge's API, reacts to the comment, and
    /// runs the operation on the rollout this pull request's release comment names, recording
    /// who approved it on the Rollout and in that comment. Exit 0 done (or no command), 1
    /// refused, 2 invalid input or error.
    #[command(name = "comment-command")]
    ForgeComment(comment_command::CommentCommandArgs),
    /// Run in the cluster: drive every Rollout in scope, with leader election.
    Controller(controller::ControllerArgs),
    /// Print the in-cluster controller's manifests: CRDs, RBAC, Deployment.
    Install(install::InstallArgs),
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// For people.
    Text,
    /// For scripts.
    Json,
}

/// Parse the command line, run the command and map its outcome to an exit code.
pub fn main() -> ExitCode {
    // reqwest (aws-lc-rs) and kube (ring) both bring a rustls provider: choose one before any
    // TLS client is built (see the design notes on crates).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    // A controller's log is its only report; a runner's report goes to the terminal.
    let default_level = match cli.command {
        Command::Controller(_) => "info",
        _ => "warn",
    };
    init_logging(default_level);
    let status = match run(cli) {
        Ok(status) => status,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitStatus::Error
        }
    };
    status.into()
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    // Commands that read the CI context refuse a broken event payload up front.
    if matches!(
        cli.command,
        Command::Render(_)
            | Command::Simulate(_)
            | Command::Plan(_)
            | Command::Apply(_)
            | Command::Status(_)
            | Command::Drive(_)
    ) {
        crate::ci::check_event(crate::ci::process_env).map_err(anyhow::Error::msg)?;
    }
    match cli.command {
        Command::Crds(args) => crds::run(args),
        Command::Render(args) => render::run(args),
        Command::Analysis { command } => analysis::run(command),
        Command::Lint(args) => lint::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Report(args) => report::run(args),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Status(args) => status::run(args),
        Command::Drive(args) => drive_existing::run(args),
        Command::Get(args) => get::run(args),
        Command::List(args) => list::run(args),
        Command::Promote(args) => promote::run(args),
        Command::Abort(target) => abort::run(target),
        Command::Retry(target) => retry::run(target),
        Command::Pause(target) => pause::run(target),
        Command::Resume(target) => resume::run(target),
        Command::Restart(args) => restart::run(args),
        Command::Set { command } => set::run(command),
        Command::Undo(args) => undo::run(args),
        Command::ForgeComment(args) => comment_command::run(args),
        Command::Controller(args) => controller::run(args),
        Command::Install(args) => install::run(args),
    }
}

/// Environment variable with the log filter (`tracing` directives, e.g. `debug` or
/// `rollout_runner::driver=debug`); logs go to stderr. Default: warnings only (`info` for
/// `controller`).
pub const LOG_ENV: &str = "ROLLOUT_RUNNER_LOG";
/// `json` for one JSON object per log line.
pub const LOG_FORMAT_ENV: &str = "ROLLOUT_RUNNER_LOG_FORMAT";

fn init_logging(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = if std::env::var(LOG_FORMAT_ENV).is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Only fails when a subscriber exists already (tests): keep that one.
    drop(installed);
}

/// The async runtime of the commands that talk to the cluster: two workers are plenty for
/// API calls, and CI machines are small.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves on SIGINT or SIGTERM, with the signal's name.
pub(crate) async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand's flags, flattened ones included (`ReportArgs` on `simulate`, `apply`,
    /// `status`, `plan`), are distinct: clap panics on a clash only when the command runs.
    #[test]
    fn flags_do_not_clash() {
        super::Cli::command().debug_assert();
    }
}
