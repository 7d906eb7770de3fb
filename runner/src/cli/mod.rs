//! The command line: argument types and one file per subcommand.
//!
//! Subcommands wire the pipeline together; they make no rollout decisions and format no
//! reports themselves. Data goes to stdout, diagnostics to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod analysis;
mod analysis_backtest;
mod analysis_get;
mod check_queries;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::ExitStatus;

mod apply;
mod connection;
mod crds;
mod drive;
mod inputs;
mod lint;
mod plan;
mod simulate;

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
    /// Apply manifests to the cluster and, with `--wait`, drive each Rollout to its end.
    Apply(apply::ApplyArgs),
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
    let cli = Cli::parse();
    init_logging();
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
    match cli.command {
        Command::Crds(args) => crds::run(args),
        Command::Render(args) => render::run(args),
        Command::Analysis { command } => analysis::run(command),
        Command::Lint(args) => lint::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Apply(args) => apply::run(args),
    }
}

/// Environment variable with the log filter (`tracing` directives, e.g. `debug` or
/// `rollout_runner::driver=debug`); logs go to stderr. Default: warnings only.
pub const LOG_ENV: &str = "ROLLOUT_RUNNER_LOG";
/// `json` for one JSON object per log line.
pub const LOG_FORMAT_ENV: &str = "ROLLOUT_RUNNER_LOG_FORMAT";

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("warn"));
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
