//! rollout-runner's integration tests: one test binary (`autotests = false`), one module per
//! area.

mod analysis_check;
mod contract_server;
mod crds;
mod driver;
mod expr_props;
mod lint;
mod lint_props;
mod prometheus_real;
mod provider_secrets;
mod providers;
mod render;
