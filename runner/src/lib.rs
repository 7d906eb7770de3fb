//! rollout-runner: progressive delivery for Kubernetes, run from CI.
//!
//! This crate is the binary's: the command line ([`cli`], [`settings`]), the driver loop that
//! observes, plans and acts ([`driver`]), the in-cluster [`controller`] and the [`simulation`].
//! Everything below it lives in one crate per layer (`runner/crates/`), re-exported here under
//! the module names they had before the split, as the `kube` crate re-exports kube-core,
//! kube-client and kube-runtime:
//!
//! | layer | crate | modules |
//! | --- | --- | --- |
//! | vocabulary | `rollout-runner-api` | [`crd`], [`observed`], [`plan`], [`error`] |
//! | pure logic | `rollout-runner-expr`, `rollout-runner-judge` | [`expr`], [`judge`] |
//! | pure logic | `rollout-runner-core` | [`engine`], [`analysis`], [`planning`], [`validate`], [`manifest`], [`operate`] |
//! | inputs | `rollout-runner-render` | [`render`], [`ci`] |
//! | adapters | `rollout-runner-metrics`, `-traffic`, `-cluster`, `-report` | [`metrics`], [`traffic`], [`cluster`], [`report`] |
//! | orchestration | this crate | [`driver`], [`controller`], [`simulation`] |
//! | entry | this crate | [`cli`], [`settings`] |
//!
//! A crate imports only from its own layer or lower ones; Cargo enforces it.

pub use rollout_runner_api::{crd, error, observed, plan};
pub use rollout_runner_cluster as cluster;
pub use rollout_runner_core::{analysis, engine, manifest, operate, planning, validate};
pub use rollout_runner_expr as expr;
pub use rollout_runner_judge as judge;
pub use rollout_runner_metrics as metrics;
pub use rollout_runner_render as render;
pub use rollout_runner_render::ci;
pub use rollout_runner_report as report;
pub use rollout_runner_traffic as traffic;

pub mod cli;
pub mod controller;
pub mod dashboard;
pub mod driver;
pub mod replay;
pub mod settings;
pub mod simulation;
