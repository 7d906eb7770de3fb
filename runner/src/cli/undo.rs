//! `rollout-runner undo`: roll back to the pod template of the previous revision, or of
//! `--to-revision N`.

use clap::Args;

use crate::error::ExitStatus;
use crate::operate::undo;

use super::operations::{RolloutArg, operate};

#[derive(Debug, Args)]
pub(crate) struct UndoArgs {
    #[command(flatten)]
    target: RolloutArg,

    /// The revision to roll back to (`rollout.argoproj.io/revision` of its ReplicaSet; `get`
    /// lists them). 0: the previous one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    to_revision: u32,
}

pub(crate) fn run(args: UndoArgs) -> anyhow::Result<ExitStatus> {
    let revision = i64::from(args.to_revision);
    operate(&args.target, "undo", true, |rollout, replica_sets| {
        undo(rollout, replica_sets, revision)
    })
}
