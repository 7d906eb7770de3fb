//! The command line: argument types and one file per subcommand.
//!
//! Subcommands wire the pipeline together; they make no rollout decisions and format no
//! reports themselves. Data goes to stdout, diagnostics to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod analysis;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::ExitStatus;

mod crds;
mod inputs;
mod lint;
pub mod report_args;
mod simulate;

pub use crds::crd_files;
pub mod render;

/// CI-native progressive delivery for Kubernetes, speaking the Argo Rollouts API.
///
/// Exit codes: 0 promoted or healthy, 1 aborted or degraded (or lint problems found),
/// 2 invalid input or runner error, 3 timed out while still progressing.
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
    /// Work with analysis metrics offline: check conditions against a result.
    Analysis {
        #[command(subcommand)]
        command: analysis::AnalysisCommand,
    },
    /// Check manifests and report every problem with file, line, column, field path and hint.
    Lint(lint::LintArgs),
    /// Run a release on an in-memory cluster with scripted metrics: no cluster needed.
    Simulate(simulate::SimulateArgs),
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
    }
}
