//! `rollout-runner pause`: pause a rollout (`spec.paused: true`); it scales nothing and switches
//! no service until resumed.

use crate::error::ExitStatus;
use crate::operate::{Operation, patches};

use super::operations::{RolloutArg, operate};

pub(crate) fn run(target: RolloutArg) -> anyhow::Result<ExitStatus> {
    operate(&target, "pause", false, |rollout, _| {
        patches(rollout, &Operation::Pause)
    })
}
