//! rollout-runner's integration tests: one test binary (`autotests = false`), one module per
//! area. `support` holds helpers shared by the modules; `*_e2e` modules run against the test
//! control plane that `tests/run` starts, and skip without it.

mod analysis_check;
mod argo_fields;
mod argo_oracle;
mod backtest_real;
mod browser_report;
mod contract_server;
mod controller_e2e;
mod controller_install;
mod controller_metrics;
mod controller_notify_e2e;
mod controller_pods_e2e;
mod crds;
mod dataplane_e2e;
mod drive_e2e;
mod drive_existing_e2e;
mod driver;
mod e2e_smoke;
mod examples;
mod faults_e2e;
mod forge_e2e;
mod forge_events;
mod forge_github;
mod forge_gitlab;
mod forge_plan;
mod hostile;
mod judge_real;
mod lint;
mod operate_cli;
mod operate_e2e;
mod plan;
mod prometheus_real;
mod provider_secrets;
mod providers;
mod records;
mod records_e2e;
mod render;
mod restarts_e2e;
mod support;
mod traffic_e2e;
