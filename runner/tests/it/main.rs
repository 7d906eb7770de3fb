//! rollout-runner's integration tests: one test binary (`autotests = false`), one module per
//! area.

mod analysis_check;
mod crds;
mod driver;
mod expr_props;
mod forge_github;
mod forge_gitlab;
mod lint;
mod lint_props;
mod render;
