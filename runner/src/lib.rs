//! rollout-runner: progressive delivery for Kubernetes, run from CI.
//!
//! Layers (a module imports only from its own layer or lower ones; see
//! `architecture.md` in the design notes):
//!
//! | layer | modules |
//! | --- | --- |
//! | vocabulary | [`crd`], [`error`] |
//! | pure logic | (engine, analysis, expressions, render, validate) |
//! | adapters | (cluster, traffic, metrics, report) |
//! | orchestration | (driver, controller) |
//! | entry | [`cli`] |

pub mod cli;
pub mod crd;
pub mod error;
pub mod manifest;
pub mod validate;
