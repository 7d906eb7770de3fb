//! Metric providers: take one measurement of one metric (Prometheus, web, Job, ... or scripted
//! values in a simulation), behind one narrow trait.
//!
//! A provider measures and judges a single value with the metric's conditions; it never decides
//! the fate of a run (that is [`rollout_runner_core::analysis::run`]). [`providers::Providers`] is the factory
//! over the real providers, one file each; [`scripted`] is the simulation's.

#[cfg(feature = "provider-cloudwatch")]
pub mod cloudwatch;
pub mod cluster;
mod common;
pub mod datadog;
pub mod graphite;
mod http;
pub mod influxdb;
pub mod job;
pub mod judge;
pub mod kayenta;
pub mod newrelic;
pub mod prometheus;
pub mod providers;
pub mod recorded;
pub mod scripted;
pub mod settings;
pub mod web;

use std::collections::BTreeMap;
use std::future::Future;

use jiff::Timestamp;

use rollout_runner_api::crd::{AnalysisRun, Measurement, Metric};
use rollout_runner_core::analysis::run::TaskKind;

/// What a provider knows about the measurement it takes.
#[derive(Debug, Clone, Copy)]
pub struct MeasureContext<'a> {
    /// The run the measurement belongs to.
    pub run: &'a AnalysisRun,
    pub now: Timestamp,
    /// Values of the run's secret arguments: never shown in a measurement.
    pub secrets: &'a [String],
}

/// Takes measurements. `metric` has its arguments (secrets included) already substituted, so
/// implementations must never log it whole.
pub trait Metrics: Send + Sync {
    fn measure(
        &self,
        context: MeasureContext<'_>,
        metric: &Metric,
        task: &TaskKind,
    ) -> impl Future<Output = Measurement> + Send;

    /// What the metric's result keeps besides its measurements (Argo's `GetMetadata`), from the
    /// metric with its arguments substituted: the Prometheus provider's
    /// `ResolvedPrometheusQuery`.
    fn result_metadata(&self, _metric: &Metric) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// A measurement that failed before producing a value (provider unavailable, bad config).
pub fn error_measurement(now: Timestamp, message: impl Into<String>) -> Measurement {
    let at = rollout_runner_core::engine::conditions::meta_time(now);
    Measurement {
        phase: rollout_runner_api::crd::AnalysisPhase::Error,
        message: message.into(),
        started_at: Some(at.clone()),
        finished_at: Some(at),
        ..Default::default()
    }
}

pub use common::Failure;
pub use providers::Providers;
pub use settings::{ProviderSettings, SecretSource};
