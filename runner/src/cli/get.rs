//! `rollout-runner get`: a rollout with its revisions, ReplicaSets, pods, AnalysisRuns and
//! Experiments, as `kubectl argo rollouts get rollout` shows it.
//!
//! Read only (no Lease), so it can watch a rollout someone else drives.

use std::io::{IsTerminal, Write};

use clap::Args;
use jiff::{SignedDuration, Timestamp};

use crate::cluster::kube::KubeCluster;
use crate::cluster::rollouts::view;
use crate::cluster::{Cluster, Wake};
use crate::error::ExitStatus;
use crate::report::info::{RolloutInfo, render};

use super::OutputFormat;
use super::connection::Connection;
use super::operations::{RolloutArg, duration_flag, rollout_error, runtime};

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    target: RolloutArg,

    /// Show the rollout again each time something changes, until Ctrl-C or `--timeout`. On a
    /// terminal the screen is redrawn; otherwise each change is printed after the last.
    #[arg(long, short = 'w')]
    watch: bool,

    /// With `--watch`: stop after this long.
    #[arg(long, value_name = "DURATION", requires = "watch")]
    timeout: Option<String>,

    /// Never colour the output (colour is on when stdout is a terminal and `NO_COLOR` is unset).
    #[arg(long)]
    no_color: bool,

    /// `text`: Argo's summary and tree. `json`: the same as one JSON document (with
    /// `--watch`, one line per change).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

/// How often a terminal is redrawn while nothing changes, so that ages and scale-down delays
/// move (Argo redraws every second).
const REDRAW: SignedDuration = SignedDuration::from_secs(1);

async fn read_info(connection: &Connection, name: &str) -> anyhow::Result<RolloutInfo> {
    view(&connection.client, &connection.namespace, name)
        .await
        .map(|view| RolloutInfo::new(&view))
        .map_err(|error| rollout_error(error, &connection.namespace, name))
}

pub(crate) fn run(args: GetArgs) -> anyhow::Result<ExitStatus> {
    let timeout = args
        .timeout
        .as_deref()
        .map(|text| duration_flag(text, "--timeout"))
        .transpose()?;
    let terminal = std::io::stdout().is_terminal();
    let color = terminal
        && !args.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let json = args.output == OutputFormat::Json;
    runtime()?.block_on(async {
        let connection = args.target.connection.connect().await?;
        let name = &args.target.name;
        let info = read_info(&connection, name).await?;
        if !args.watch {
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", render(&info, Timestamp::now(), color));
            }
            return Ok(ExitStatus::Success);
        }
        let cluster = KubeCluster::new(connection.client.clone(), &connection.namespace);
        let limit = timeout.and_then(|t| Timestamp::now().checked_add(t).ok());
        let watch = async {
            let mut shown: Option<RolloutInfo> = None;
            let mut info = info;
            loop {
                let changed = shown.as_ref() != Some(&info);
                let mut out = std::io::stdout().lock();
                if json {
                    if changed {
                        writeln!(out, "{}", serde_json::to_string(&info)?)?;
                    }
                } else if terminal {
                    // Clear the screen and go home, as Argo does.
                    write!(
                        out,
                        "\x1b[H\x1b[2J{}",
                        render(&info, Timestamp::now(), color)
                    )?;
                } else if changed {
                    if shown.is_some() {
                        writeln!(out)?;
                    }
                    write!(out, "{}", render(&info, Timestamp::now(), false))?;
                }
                out.flush()?;
                drop(out);
                shown = Some(info);
                let redraw = (terminal && !json).then(|| Timestamp::now() + REDRAW);
                if cluster.wait(redraw, limit).await == Wake::Limit {
                    return anyhow::Ok(());
                }
                info = read_info(&connection, name).await?;
            }
        };
        tokio::select! {
            watched = watch => watched?,
            // Ctrl-C is how a watch ends: not a failure.
            _ = super::interrupted() => {}
        }
        Ok(ExitStatus::Success)
    })
}
