//! `rollout-runner resume`: resume a rollout paused with `pause` (`spec.paused: false`).

use crate::error::ExitStatus;
use crate::operate::{Operation, patches};

use super::operations::{RolloutArg, operate};

pub(crate) fn run(target: RolloutArg) -> anyhow::Result<ExitStatus> {
    operate(&target, "resume", false, |rollout, _| {
        patches(rollout, &Operation::Resume)
    })
}
