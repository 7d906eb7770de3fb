//! `rollout-runner restart`: restart every pod of a rollout, now or after `--in`
//! (`spec.restartAt`).

use clap::Args;
use jiff::{SignedDuration, Timestamp};

use crate::error::ExitStatus;
use crate::operate::{Operation, patches, restart_at};

use super::operations::{RolloutArg, duration_flag, operate};

#[derive(Debug, Args)]
pub(crate) struct RestartArgs {
    #[command(flatten)]
    target: RolloutArg,

    /// Restart this long from now instead of now (`30s`, `5m`, `1h`).
    #[arg(long = "in", short = 'i', value_name = "DURATION")]
    delay: Option<String>,
}

pub(crate) fn run(args: RestartArgs) -> anyhow::Result<ExitStatus> {
    let delay = args
        .delay
        .as_deref()
        .map(|text| duration_flag(text, "--in"))
        .transpose()?
        .unwrap_or(SignedDuration::ZERO);
    let at = restart_at(Timestamp::now(), delay).0;
    let delay_text = args.delay.as_deref().unwrap_or("0s");
    operate(&args.target, "restart", false, |rollout, _| {
        let (patches, _) = patches(rollout, &Operation::Restart { at })?;
        // Argo's wording names the delay, not the time.
        Ok((
            patches,
            format!("rollout '{}' restarts in {delay_text}", rollout.name()),
        ))
    })
}
