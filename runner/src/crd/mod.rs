//! The Argo Rollouts API (`argoproj.io/v1alpha1`): Rollout, AnalysisTemplate,
//! ClusterAnalysisTemplate, AnalysisRun and Experiment, with Argo's defaults.
//!
//! Plain data: serde and schema derives, accessors and defaults. No behaviour.

mod analysis;

pub use analysis::AnalysisPhase;
