//! Integration tests of rollout-runner: one test binary (`[[test]] name = "it"`), one module per
//! area. `support` holds helpers shared by the modules.

mod e2e_smoke;
mod support;
