//! `rollout-runner promote`: resume a paused rollout or skip its current step; with `--full`,
//! skip every remaining step, pause and analysis.

use clap::Args;

use crate::error::ExitStatus;
use crate::operate::{Operation, patches};

use super::operations::{RolloutArg, operate};

#[derive(Debug, Args)]
pub(crate) struct PromoteArgs {
    #[command(flatten)]
    target: RolloutArg,

    /// Skip every remaining step, pause and analysis, and make the new version stable.
    #[arg(long)]
    full: bool,
}

pub(crate) fn run(args: PromoteArgs) -> anyhow::Result<ExitStatus> {
    let operation = if args.full {
        Operation::PromoteFull
    } else {
        Operation::Promote
    };
    operate(&args.target, "promote", false, |rollout, _| {
        patches(rollout, &operation)
    })
}
