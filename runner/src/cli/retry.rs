//! `rollout-runner retry`: retry an aborted update from its first step (`status.abort: false`).

use crate::error::ExitStatus;
use crate::operate::{Operation, patches};

use super::operations::{RolloutArg, operate};

pub(crate) fn run(target: RolloutArg) -> anyhow::Result<ExitStatus> {
    operate(&target, "retry", false, |rollout, _| {
        patches(rollout, &Operation::Retry)
    })
}
