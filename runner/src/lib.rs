//! rollout-runner: progressive delivery for Kubernetes, run from CI.
//!
//! Layers (a module imports only from its own layer or lower ones; see
//! `architecture.md` in the design notes):
//!
//! | layer | modules |
//! | --- | --- |
//! | vocabulary | [`crd`], [`observed`], [`plan`], [`error`] |
//! | pure logic | [`engine`], [`analysis`] (and expressions, render, validate) |
//! | vocabulary | [`crd`], [`error`] |
//! | pure logic | [`expr`], (engine, analysis, render, validate) |
//! | adapters | (cluster, traffic, metrics, report) |
//! | orchestration | (driver, controller) |
//! | entry | [`cli`] |

pub mod analysis;
pub mod ci;
pub mod cli;
pub mod crd;
pub mod engine;
pub mod error;
pub mod expr;
pub mod observed;
pub mod plan;
pub mod render;
