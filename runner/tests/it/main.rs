//! rollout-runner's integration tests: one test binary (`autotests = false`), one module per
//! area. `support` holds helpers shared by the modules; `*_e2e` modules run against the test
//! control plane that `tests/run` starts, and skip without it.

mod analysis_check;
mod crds;
mod driver;
mod e2e_smoke;
mod expr_props;
mod lint;
mod lint_props;
mod plan;
mod render;
mod support;
