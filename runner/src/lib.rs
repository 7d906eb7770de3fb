//! rollout-runner: progressive delivery for Kubernetes, run from CI.
//!
//! Layers (a module imports only from its own layer or lower ones; see
//! `architecture.md` in the design notes):
//!
//! | layer | modules |
//! | --- | --- |
//! | vocabulary | [`crd`], [`observed`], [`plan`], [`operate`], [`error`] |
//! | pure logic | [`engine`], [`analysis`], [`expr`], [`judge`], [`render`] |
//! | adapters | [`ci`], [`cluster`], [`metrics`], [`report`], [`traffic`] |
//! | orchestration | [`driver`], [`controller`], [`simulation`] |
//! | entry | [`cli`], [`settings`] |

pub mod analysis;
pub mod ci;
pub mod cli;
pub mod cluster;
pub mod controller;
pub mod crd;
pub mod driver;
pub mod engine;
pub mod error;
pub mod expr;
pub mod judge;
pub mod manifest;
pub mod metrics;
pub mod observed;
pub mod operate;
pub mod plan;
pub mod planning;
pub mod render;
pub mod report;
pub mod settings;
pub mod simulation;
pub mod traffic;
pub mod validate;
