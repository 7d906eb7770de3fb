//! The pure core of rollout-runner: given a Rollout, what exists and `now`, what Argo Rollouts
//! would do next ([`engine`]); analysis runs and their verdicts ([`analysis`]); the release
//! step by step ([`planning`]); manifests with their source positions ([`manifest`]) and every
//! problem lint reports ([`validate`]); the patches of a person's operation ([`operate`]).
//!
//! Pure functions of their inputs: no Kubernetes client, no async runtime, no HTTP, no
//! filesystem and no clock (time arrives as `now`). A test (`tests/purity.rs`) checks that no
//! such crate is in its dependency tree and that its sources call none of them. It depends on
//! `rollout-runner-api` and `rollout-runner-expr` only.

pub mod analysis;
pub mod engine;
pub mod manifest;
pub mod notifications;
pub mod operate;
pub mod planning;
pub mod validate;
