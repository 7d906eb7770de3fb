//! rollout-runner's integration tests: one test binary (`autotests = false`), one module per
//! area.

mod analysis_check;
mod crds;
mod driver;
mod expr_props;
mod lint;
mod lint_props;
mod operate_cli;
mod operate_e2e;
mod plan;
mod render;
mod support;
