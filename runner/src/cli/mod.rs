//! The command line: argument types and one file per subcommand.
//!
//! Subcommands wire the pipeline together; they make no rollout decisions and format no
//! reports themselves. Data goes to stdout, diagnostics to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::ExitStatus;

mod crds;
mod lint;

pub use crds::crd_files;

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
    /// Check manifests and report every problem with file, line, column, field path and hint.
    Lint(lint::LintArgs),
}

/// Parse the command line, run the command and map its outcome to an exit code.
pub fn main() -> ExitCode {
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
        Command::Lint(args) => lint::run(args),
    }
}
