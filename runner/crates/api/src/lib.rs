//! The vocabulary of rollout-runner: the Argo Rollouts API types (`argoproj.io/v1alpha1`
//! Rollout, AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun, Experiment), what a driver
//! observes of a Rollout, the actions an engine plans, and the exit statuses CI sees.
//!
//! Plain data: every other crate of the workspace speaks these types. It must not depend on
//! any other crate of the workspace, nor on a Kubernetes client, an async runtime, HTTP, the
//! filesystem or the clock (kube's data types and derive come from `kube-core` and
//! `kube-derive`, not `kube`).

pub mod crd;
pub mod error;
pub mod observed;
pub mod owner;
pub mod plan;

/// The field manager of every write rollout-runner makes to the API server (server-side apply
/// and patches), so `kubectl` and Argo CD show who owns a field.
pub const FIELD_MANAGER: &str = "rollout-runner";
