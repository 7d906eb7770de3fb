//! What rollout-runner drives, in one list, so support can grow in one place.
//!
//! Argo Rollouts features that rollout-runner does not drive are reported by `lint`: plugins
//! (step, metric and traffic-router plugins other than Gateway API) are errors, because
//! rollout-runner cannot load Argo's Go plugins; traffic routers it does not drive yet are
//! warnings, because the manifests are still valid Argo manifests.

use crate::manifest::Severity;

/// How well rollout-runner supports a traffic router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterSupport {
    Supported,
    /// Valid Argo configuration that rollout-runner does not drive yet (a warning).
    NotYet,
}

/// Traffic routers by the name [`rollout_runner_api::crd::RolloutTrafficRouting::router_names`] gives them.
pub const ROUTERS: &[(&str, RouterSupport)] = &[
    ("istio", RouterSupport::Supported),
    ("nginx", RouterSupport::Supported),
    ("alb", RouterSupport::Supported),
    ("smi", RouterSupport::Supported),
    ("traefik", RouterSupport::Supported),
    ("gatewayAPI", RouterSupport::Supported),
    ("ambassador", RouterSupport::NotYet),
    ("appMesh", RouterSupport::NotYet),
    ("apisix", RouterSupport::NotYet),
];

/// Traffic router plugins rollout-runner implements natively (by Argo plugin name).
pub const TRAFFIC_ROUTER_PLUGINS: &[&str] = &[rollout_runner_api::crd::GATEWAY_API_PLUGIN];

/// Support for a router name; unknown names are not supported yet.
pub fn router_support(name: &str) -> RouterSupport {
    ROUTERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or(RouterSupport::NotYet)
}

/// Severity of using a plugin (step plugin, metric provider plugin, unknown router plugin).
pub const PLUGIN_SEVERITY: Severity = Severity::Error;
