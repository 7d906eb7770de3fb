//! `rollout-runner abort`: abort an update; traffic and pods go back to the stable version (`status.abort: true`).

use crate::error::ExitStatus;
use crate::operate::{Operation, patches};

use super::operations::{RolloutArg, operate};

pub(crate) fn run(target: RolloutArg) -> anyhow::Result<ExitStatus> {
    operate(&target, "abort", false, |rollout, _| {
        patches(rollout, &Operation::Abort)
    })
}
