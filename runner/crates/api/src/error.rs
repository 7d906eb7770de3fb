//! Exit statuses: the contract between rollout-runner and the CI system that runs it.
//!
//! Every command ends in one [`ExitStatus`]; `main` turns it into the process exit code.
//! Modules keep their own error enums; this module only owns the mapping to exit codes.

use std::process::ExitCode;

/// How a command ended, as CI sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: promoted, healthy, or (with `--success-on-pause`) paused awaiting promotion.
    Success,
    /// 1: the rollout was aborted or is degraded (analysis failed, progress deadline exceeded,
    /// aborted by a person), or `lint` found problems.
    Failure,
    /// 2: invalid input or a runner error: bad YAML, lint errors before apply, template
    /// errors, no cluster access.
    Error,
    /// 3: `--timeout` elapsed while the rollout was still progressing; it keeps its state.
    TimedOut,
    /// 130: stopped by SIGINT or SIGTERM between two actions; the rollout keeps its state and
    /// the next runner resumes it.
    Interrupted,
}

impl ExitStatus {
    /// The process exit code for this status.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Error => 2,
            Self::TimedOut => 3,
            Self::Interrupted => 130,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}
