//! Traffic routers: the objects of NGINX, Istio, SMI, Gateway API, Traefik and ALB that split
//! requests between the stable and canary versions.
//!
//! The engine plans router actions ([`Action::SetTrafficWeight`] and friends) as data; this
//! module performs them on the real API server for the routers a Rollout's
//! `spec.strategy.canary.trafficRouting` names. The in-memory cluster records them instead.

use kube::Client;

use crate::crd::Rollout;
use crate::plan::Action;

/// A failed router operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrafficError {
    #[error(
        "traffic router {router} is not supported yet\nhint: remove trafficRouting to split traffic by replica count"
    )]
    Unsupported { router: String },
    #[error("{router}: {message}")]
    Router { router: String, message: String },
}

/// Perform one router action ([`Action::SetTrafficWeight`], [`Action::UpdateTrafficHash`],
/// header and mirror routes, [`Action::RemoveManagedRoutes`]) on every router the rollout
/// configures.
pub async fn apply(
    _client: &Client,
    rollout: &Rollout,
    _action: &Action,
) -> Result<(), TrafficError> {
    Err(TrafficError::Unsupported {
        router: configured_router(rollout),
    })
}

/// Whether the routers confirm the weight last set (`None`: no router can verify).
pub async fn verify_weight(
    _client: &Client,
    _rollout: &Rollout,
) -> Result<Option<bool>, TrafficError> {
    Ok(None)
}

fn configured_router(rollout: &Rollout) -> String {
    let routing = rollout
        .spec
        .strategy
        .canary
        .as_ref()
        .and_then(|c| c.traffic_routing.as_ref());
    routing
        .and_then(|r| serde_json::to_value(r).ok())
        .and_then(|v| v.as_object().and_then(|o| o.keys().next().cloned()))
        .unwrap_or_else(|| "(none)".into())
}
