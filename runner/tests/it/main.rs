//! rollout-runner's integration tests: one test binary, one module per area.

mod crds;
mod lint;
mod lint_props;
