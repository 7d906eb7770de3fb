//! The cluster: where Rollouts and the objects they own live, behind one narrow trait.
//!
//! Two implementations share every line of decision logic through the driver:
//! - [`memory::MemoryCluster`]: ReplicaSets whose pods become ready after a delay, faults,
//!   Services and traffic weights, on a virtual clock (`simulate`, driver tests);
//! - `kube`: the real API server.
//!
//! A cluster performs [`Action`]s exactly as planned and reports what it observes; it never
//! decides anything.

pub mod caches;
pub mod kube;
pub mod lease;
pub mod manifests;
pub mod memory;
pub mod requests;
pub mod retry_after;
pub mod rollouts;

use std::future::Future;

use jiff::Timestamp;

use rollout_runner_api::crd::{
    AnalysisRun, AnalysisRunStatus, Experiment, ExperimentStatus, Rollout, RolloutStatus,
};
use rollout_runner_api::observed::{ExperimentObserved, Observed};
use rollout_runner_api::plan::{Action, Event};

/// A failed cluster operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("{kind} `{name}` not found")]
    NotFound { kind: &'static str, name: String },
    #[error("conflict writing {kind} `{name}`: it changed since it was read")]
    Conflict { kind: &'static str, name: String },
    /// The API server could not be reached or is overloaded; trying again may work.
    #[error("the API server is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Api(String),
    /// This process no longer holds (or cannot show that it still holds) the Rollout's Lease:
    /// it must not write. Not transient: the driver stops and follows instead.
    #[error("not writing: {0}")]
    Fenced(String),
}

impl ClusterError {
    /// Whether the same operation may succeed if tried again after re-observing: the object
    /// changed under us, or the API server was briefly out of reach.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClusterError::Conflict { .. } | ClusterError::Unavailable(_)
        )
    }
}

pub use rollout_runner_api::owner::Owner;

/// Where Rollouts live. Every operation is idempotent with respect to the state it was planned
/// from, so a runner killed between two operations is resumed by the next one.
pub trait Cluster: Send + Sync {
    /// The current time (the wall clock, or the simulation's virtual clock).
    fn now(&self) -> Timestamp;

    /// The Rollout, or `None` when it does not exist.
    fn get_rollout(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Rollout>, ClusterError>> + Send;

    /// Everything the engine needs about this Rollout's world.
    fn observe(
        &self,
        rollout: &Rollout,
    ) -> impl Future<Output = Result<Observed, ClusterError>> + Send;

    /// Everything the experiment engine needs about this Experiment's world.
    fn observe_experiment(
        &self,
        experiment: &Experiment,
    ) -> impl Future<Output = Result<ExperimentObserved, ClusterError>> + Send;

    /// Perform one planned action for a Rollout or one of its Experiments.
    fn apply(
        &self,
        owner: Owner<'_>,
        action: &Action,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;

    /// Write the Rollout's status (status subresource).
    fn write_status(
        &self,
        rollout: &Rollout,
        status: &RolloutStatus,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;

    /// Write an Experiment's status (status subresource).
    fn write_experiment_status(
        &self,
        experiment: &Experiment,
        status: &ExperimentStatus,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;

    /// Write an AnalysisRun's status (status subresource).
    fn write_analysis_run_status(
        &self,
        run: &AnalysisRun,
        status: &AnalysisRunStatus,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;

    /// A key of a Secret, for `valueFrom.secretKeyRef` arguments.
    fn read_secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> impl Future<Output = Result<String, ClusterError>> + Send;

    /// Record events on a Rollout or Experiment (Kubernetes Events, or the simulation's
    /// timeline).
    fn record_events(&self, owner: Owner<'_>, events: &[Event]) -> impl Future<Output = ()> + Send;

    /// Whether this process may write now: a driver fenced by a Lease checks that the Lease is
    /// still its own. The driver asks before it announces each action. Clusters without a
    /// fence always may.
    fn may_write(&self) -> impl Future<Output = Result<(), ClusterError>> + Send {
        async { Ok(()) }
    }

    /// Wait until something may have changed or `deadline` (when the engine wants to look
    /// again) passes, but never past `limit` (the caller's timeout). The memory cluster advances
    /// its clock instead of sleeping, and answers [`Wake::Idle`] when nothing but the limit
    /// could ever wake it.
    fn wait(
        &self,
        deadline: Option<Timestamp>,
        limit: Option<Timestamp>,
    ) -> impl Future<Output = Wake> + Send;
}

/// Why [`Cluster::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The deadline passed.
    Deadline,
    /// The limit passed.
    Limit,
    /// Something changed (or may have).
    Change,
    /// Nothing will ever change again without outside help (the simulation is idle).
    Idle,
}
