//! The traffic objects a canary writes, router by router, with the values they will hold
//! (`argo-semantics.md` §3.4-3.8): NGINX canary Ingress annotations, Istio VirtualService
//! route weights and DestinationRule subsets, SMI TrafficSplit backends, ALB forward actions,
//! Gateway API backendRef weights, Traefik weighted services, Ambassador canary Mappings, App
//! Mesh weighted targets, APISIX backends, and the Service selectors.
//!
//! A router is written only when its weights change, as the engine does; the first write of a
//! release points subsets at the new pods, the last one returns the routes to the stable
//! Service, which by then selects the new pods too.

use rollout_runner_api::crd::{
    CanaryStep, CanaryStrategy, GATEWAY_API_PLUGIN, HeaderRoutingMatch, NginxTrafficRouting,
    POD_TEMPLATE_HASH_LABEL, Rollout, RolloutExperimentTemplate, RolloutTrafficRouting, RouteMatch,
    SetHeaderRoute, SetMirrorRoute, StringMatch,
};

use super::canary::Pods;
use super::{NEW_POD_HASH_PLACEHOLDER, TrafficField, TrafficObject};

/// When the last writes of a release happen.
const WHEN_PROMOTED: &str = "promoted";
const WHEN_ALL_STEPS_DONE: &str = "all steps done";

/// The canary and stable Service names (ping-pong: shown for a stable `ping`).
pub(super) fn services(canary: &CanaryStrategy) -> (String, String) {
    match &canary.ping_pong {
        Some(pp) if canary.canary_service.is_empty() => {
            (pp.pong_service.clone(), pp.ping_service.clone())
        }
        _ => (canary.canary_service.clone(), canary.stable_service.clone()),
    }
}

/// The Service an experiment creates for a template with a weight (Argo names it after the
/// experiment's ReplicaSet: `<rollout>-<hash>-<revision>-<step>-<template>`).
pub(super) fn experiment_service(
    rollout: &Rollout,
    index: usize,
    template: &RolloutExperimentTemplate,
) -> String {
    match template.service.as_ref().filter(|s| !s.name.is_empty()) {
        Some(service) => service.name.clone(),
        None => format!(
            "{}-{NEW_POD_HASH_PLACEHOLDER}-<revision>-{index}-{}",
            rollout.name(),
            template.name
        ),
    }
}

/// Weights as the routers hold them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Weights {
    canary: i32,
    additional: Vec<(String, i32)>,
}

/// Follows what the routers hold from step to step and reports the writes.
pub(super) struct Tracker<'a> {
    rollout: &'a Rollout,
    routing: Option<&'a RolloutTrafficRouting>,
    max: i32,
    canary_service: String,
    stable_service: String,
    last: Weights,
    subsets_pointed: bool,
    canary_service_pointed: bool,
    /// Managed routes set so far, with whether each is a mirror route.
    routes_set: Vec<(String, bool)>,
}

fn field(path: impl Into<String>, value: impl Into<String>) -> TrafficField {
    TrafficField {
        path: path.into(),
        value: value.into(),
    }
}

fn object(
    router: &str,
    kind: &str,
    name: &str,
    when: &str,
    fields: Vec<TrafficField>,
) -> TrafficObject {
    TrafficObject {
        router: router.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        when: when.to_string(),
        fields,
    }
}

fn service_selector(name: &str, when: &str) -> TrafficObject {
    object(
        "service",
        "Service",
        name,
        when,
        vec![field(
            format!("spec.selector.{POD_TEMPLATE_HASH_LABEL}"),
            NEW_POD_HASH_PLACEHOLDER,
        )],
    )
}

impl<'a> Tracker<'a> {
    pub(super) fn new(rollout: &'a Rollout, canary: &'a CanaryStrategy) -> Self {
        let (canary_service, stable_service) = services(canary);
        Self {
            rollout,
            routing: canary.traffic_routing.as_ref(),
            max: rollout.spec.max_traffic_weight(),
            canary_service,
            stable_service,
            last: Weights {
                canary: 0,
                additional: Vec::new(),
            },
            subsets_pointed: false,
            canary_service_pointed: false,
            routes_set: Vec::new(),
        }
    }

    /// The writes of canary step `index`.
    pub(super) fn step(
        &mut self,
        pods: Pods,
        weight: i32,
        additional: &[(String, i32)],
        step: &CanaryStep,
    ) -> Vec<TrafficObject> {
        let mut out = self.release_start(pods);
        let Some(routing) = self.routing else {
            return out;
        };
        let weights = Weights {
            canary: weight,
            additional: additional.to_vec(),
        };
        if weights != self.last {
            out.extend(self.weight_objects(routing, &weights, ""));
            self.last = weights;
        }
        if let Some(route) = &step.set_header_route {
            out.extend(header_route_objects(
                self.rollout,
                routing,
                route,
                &self.canary_service,
            ));
            self.routes_set.retain(|(name, _)| *name != route.name);
            if route.r#match.is_some() {
                self.routes_set.push((route.name.clone(), false));
            }
        }
        if let Some(route) = &step.set_mirror_route {
            out.extend(mirror_route_objects(routing, route, &self.canary_service));
            self.routes_set.retain(|(name, _)| *name != route.name);
            if route.r#match.is_some() {
                self.routes_set.push((route.name.clone(), true));
            }
        }
        out
    }

    /// The writes of the promotion: everything to the canary (after the last step; a canary
    /// without steps gets no traffic before it is promoted), then back to the stable Service
    /// once it selects the new pods.
    pub(super) fn promotion(&mut self, pods: Pods, has_steps: bool) -> Vec<TrafficObject> {
        let mut out = self.release_start(pods);
        if let Some(routing) = self.routing {
            let full = Weights {
                canary: self.max,
                additional: Vec::new(),
            };
            if has_steps && pods.canary > 0 && self.last != full {
                out.extend(self.weight_objects(routing, &full, WHEN_ALL_STEPS_DONE));
                self.last = full;
            }
            let mut routes = std::mem::take(&mut self.routes_set);
            routes.sort();
            for (name, mirror) in routes {
                out.extend(remove_route_objects(self.rollout, routing, &name, mirror));
            }
        }
        if !self.stable_service.is_empty() {
            out.push(service_selector(&self.stable_service, WHEN_PROMOTED));
        }
        if let Some(routing) = self.routing {
            out.extend(subset_objects(routing, false));
            let back = Weights {
                canary: 0,
                additional: Vec::new(),
            };
            if self.last != back {
                out.extend(self.weight_objects(routing, &back, WHEN_PROMOTED));
                self.last = back;
            }
        }
        out
    }

    /// Subsets follow the new pods from the start; the canary Service once it has pods.
    fn release_start(&mut self, pods: Pods) -> Vec<TrafficObject> {
        let mut out = Vec::new();
        if !self.subsets_pointed {
            self.subsets_pointed = true;
            if let Some(routing) = self.routing {
                out.extend(subset_objects(routing, true));
            }
        }
        if pods.canary > 0 && !self.canary_service_pointed && !self.canary_service.is_empty() {
            self.canary_service_pointed = true;
            out.push(service_selector(&self.canary_service, ""));
        }
        out
    }

    fn weight_objects(
        &self,
        routing: &RolloutTrafficRouting,
        weights: &Weights,
        when: &str,
    ) -> Vec<TrafficObject> {
        let canary = weights.canary;
        let extra: i32 = weights.additional.iter().map(|(_, w)| w).sum();
        // Experiment destinations of the previous write that this one drops.
        let dropped: Vec<&String> = self
            .last
            .additional
            .iter()
            .map(|(service, _)| service)
            .filter(|service| !weights.additional.iter().any(|(s, _)| s == *service))
            .collect();
        let stable = (self.max - canary - extra).max(0);
        let (canary_svc, stable_svc) = (self.canary_service.as_str(), self.stable_service.as_str());
        let mut out = Vec::new();

        if let Some(istio) = &routing.istio {
            let subsets = istio.destination_rule.as_ref();
            let destination = |host: &str, subset: Option<&str>| match subset {
                Some(subset) => format!("route[subset={subset}]"),
                None => format!("route[host={host}]"),
            };
            for vs in istio.all_virtual_services() {
                let mut routes: Vec<String> = vs
                    .routes
                    .iter()
                    .map(|r| format!("spec.http[name={r}]"))
                    .collect();
                for tls in &vs.tls_routes {
                    let mut selector = Vec::new();
                    if let Some(port) = tls.port {
                        selector.push(format!("port={port}"));
                    }
                    if !tls.sni_hosts.is_empty() {
                        selector.push(format!("sniHosts={}", tls.sni_hosts.join(",")));
                    }
                    routes.push(format!("spec.tls[{}]", selector.join(",")));
                }
                for tcp in &vs.tcp_routes {
                    routes.push(match tcp.port {
                        Some(port) => format!("spec.tcp[port={port}]"),
                        None => "spec.tcp[0]".to_string(),
                    });
                }
                if routes.is_empty() {
                    routes.push("spec.http[0]".to_string());
                }
                // Managed mirror routes copy the split and follow it.
                routes.extend(
                    self.routes_set
                        .iter()
                        .filter(|(_, mirror)| *mirror)
                        .map(|(name, _)| format!("spec.http[name={name}]")),
                );
                let mut fields = Vec::new();
                for route in &routes {
                    let canary_dest =
                        destination(canary_svc, subsets.map(|d| d.canary_subset_name.as_str()));
                    let stable_dest =
                        destination(stable_svc, subsets.map(|d| d.stable_subset_name.as_str()));
                    fields.push(field(
                        format!("{route}.{canary_dest}.weight"),
                        canary.to_string(),
                    ));
                    fields.push(field(
                        format!("{route}.{stable_dest}.weight"),
                        stable.to_string(),
                    ));
                    for (host, w) in &weights.additional {
                        fields.push(field(
                            format!("{route}.route[host={host}].weight"),
                            w.to_string(),
                        ));
                    }
                    for host in &dropped {
                        fields.push(field(format!("{route}.route[host={host}]"), "removed"));
                    }
                }
                out.push(object("istio", "VirtualService", &vs.name, when, fields));
            }
        }

        if let Some(nginx) = &routing.nginx {
            let prefix = nginx.annotation_prefix_or_default();
            for ingress in nginx.stable_ingress_names() {
                let mut fields = vec![field(
                    format!("metadata.annotations[{prefix}/canary-weight]"),
                    canary.to_string(),
                )];
                if routing.max_traffic_weight.is_some() {
                    fields.push(field(
                        format!("metadata.annotations[{prefix}/canary-weight-total]"),
                        self.max.to_string(),
                    ));
                }
                let name = NginxTrafficRouting::canary_ingress_name(self.rollout.name(), ingress);
                out.push(object("nginx", "Ingress", &name, when, fields));
            }
        }

        if let Some(alb) = &routing.alb {
            let prefix = alb.annotation_prefix_or_default();
            let action_service = if alb.root_service.is_empty() {
                stable_svc
            } else {
                alb.root_service.as_str()
            };
            let port = alb.service_port.to_string();
            let mut groups = vec![serde_json::json!({
                "ServiceName": canary_svc, "ServicePort": port, "Weight": canary,
            })];
            for (service, w) in &weights.additional {
                groups.push(serde_json::json!({
                    "ServiceName": service, "ServicePort": port, "Weight": w,
                }));
            }
            groups.push(serde_json::json!({
                "ServiceName": stable_svc, "ServicePort": port, "Weight": stable,
            }));
            let mut forward = serde_json::json!({"TargetGroups": groups});
            if let Some(sticky) = alb.stickiness_config.as_ref().filter(|s| s.enabled) {
                forward["TargetGroupStickinessConfig"] = serde_json::json!({
                    "Enabled": true, "DurationSeconds": sticky.duration_seconds,
                });
            }
            let action = serde_json::json!({"Type": "forward", "ForwardConfig": forward});
            for ingress in alb.ingress_names() {
                out.push(object(
                    "alb",
                    "Ingress",
                    ingress,
                    when,
                    vec![field(
                        format!("metadata.annotations[{prefix}/actions.{action_service}]"),
                        action.to_string(),
                    )],
                ));
            }
        }

        if let Some(smi) = &routing.smi {
            let name = if smi.traffic_split_name.is_empty() {
                self.rollout.name()
            } else {
                smi.traffic_split_name.as_str()
            };
            let mut fields = vec![field(
                format!("spec.backends[service={canary_svc}].weight"),
                canary.to_string(),
            )];
            for (service, w) in &weights.additional {
                fields.push(field(
                    format!("spec.backends[service={service}].weight"),
                    w.to_string(),
                ));
            }
            for service in &dropped {
                fields.push(field(
                    format!("spec.backends[service={service}]"),
                    "removed",
                ));
            }
            fields.push(field(
                format!("spec.backends[service={stable_svc}].weight"),
                stable.to_string(),
            ));
            out.push(object("smi", "TrafficSplit", name, when, fields));
        }

        if let Some(ambassador) = &routing.ambassador {
            for mapping in &ambassador.mappings {
                let value = if canary == 0 {
                    "0 (then deleted)".to_string()
                } else {
                    canary.to_string()
                };
                out.push(object(
                    "ambassador",
                    "Mapping",
                    &format!("{mapping}-canary"),
                    when,
                    vec![field("spec.weight", value)],
                ));
            }
        }

        if let Some(app_mesh) = &routing.app_mesh
            && let Some(vs) = &app_mesh.virtual_service
        {
            let node = |r: &Option<rollout_runner_api::crd::NameRef>| {
                r.as_ref().map(|n| n.name.clone()).unwrap_or_default()
            };
            let group = app_mesh.virtual_node_group.clone().unwrap_or_default();
            let routes: Vec<String> = if vs.routes.is_empty() {
                vec!["*".to_string()]
            } else {
                vs.routes.clone()
            };
            let mut fields = Vec::new();
            for route in routes {
                let base = format!("spec.routes[name={route}].httpRoute.action.weightedTargets");
                fields.push(field(
                    format!(
                        "{base}[virtualNodeRef.name={}].weight",
                        node(&group.canary_virtual_node_ref)
                    ),
                    canary.to_string(),
                ));
                fields.push(field(
                    format!(
                        "{base}[virtualNodeRef.name={}].weight",
                        node(&group.stable_virtual_node_ref)
                    ),
                    stable.to_string(),
                ));
            }
            out.push(object(
                "appMesh",
                "VirtualRouter",
                &format!("<router of VirtualService {}>", vs.name),
                when,
                fields,
            ));
        }

        if let Some(traefik) = &routing.traefik {
            out.push(object(
                "traefik",
                "TraefikService",
                &traefik.weighted_traefik_service_name,
                when,
                vec![
                    field(
                        format!("spec.weighted.services[name={canary_svc}].weight"),
                        canary.to_string(),
                    ),
                    field(
                        format!("spec.weighted.services[name={stable_svc}].weight"),
                        stable.to_string(),
                    ),
                ],
            ));
        }

        if let Some(route) = routing.apisix.as_ref().and_then(|a| a.route.as_ref()) {
            let rules: Vec<String> = if route.rules.is_empty() {
                vec!["*".to_string()]
            } else {
                route.rules.clone()
            };
            let mut fields = Vec::new();
            for rule in rules {
                fields.push(field(
                    format!("spec.http[name={rule}].backends[serviceName={canary_svc}].weight"),
                    canary.to_string(),
                ));
                fields.push(field(
                    format!("spec.http[name={rule}].backends[serviceName={stable_svc}].weight"),
                    stable.to_string(),
                ));
            }
            out.push(object("apisix", "ApisixRoute", &route.name, when, fields));
        }

        if let Some(Ok(gateway)) = routing.gateway_api_config() {
            for (kind, name, _) in gateway_routes(&gateway) {
                let mut fields = vec![
                    field(
                        format!("spec.rules[*].backendRefs[name={canary_svc}].weight"),
                        canary.to_string(),
                    ),
                    field(
                        format!("spec.rules[*].backendRefs[name={stable_svc}].weight"),
                        stable.to_string(),
                    ),
                ];
                for (service, w) in &weights.additional {
                    fields.push(field(
                        format!("spec.rules[*].backendRefs[name={service}].weight"),
                        w.to_string(),
                    ));
                }
                for service in &dropped {
                    fields.push(field(
                        format!("spec.rules[*].backendRefs[name={service}]"),
                        "removed",
                    ));
                }
                out.push(object("gatewayAPI", kind, &name, when, fields));
            }
        }

        for plugin in routing.plugins.keys().filter(|k| *k != GATEWAY_API_PLUGIN) {
            out.push(object(
                plugin,
                "plugin",
                plugin,
                when,
                vec![field("weight", canary.to_string())],
            ));
        }
        out
    }
}

/// The routes a Gateway API configuration names, as (kind, name, takes header and mirror
/// routes).
fn gateway_routes(
    gateway: &rollout_runner_api::crd::GatewayApiTrafficRouting,
) -> Vec<(&'static str, String, bool)> {
    gateway
        .routes()
        .into_iter()
        .map(|r| (r.kind, r.name, r.header_routes))
        .collect()
}

/// Istio DestinationRule subsets and App Mesh virtual nodes follow the pod-template hash: the
/// canary's at the start of the release, the stable's once promoted.
fn subset_objects(routing: &RolloutTrafficRouting, canary: bool) -> Vec<TrafficObject> {
    let when = if canary { "" } else { WHEN_PROMOTED };
    let mut out = Vec::new();
    if let Some(rule) = routing
        .istio
        .as_ref()
        .and_then(|i| i.destination_rule.as_ref())
    {
        let subset = if canary {
            &rule.canary_subset_name
        } else {
            &rule.stable_subset_name
        };
        out.push(object(
            "istio",
            "DestinationRule",
            &rule.name,
            when,
            vec![field(
                format!("spec.subsets[name={subset}].labels.{POD_TEMPLATE_HASH_LABEL}"),
                NEW_POD_HASH_PLACEHOLDER,
            )],
        ));
    }
    if let Some(group) = routing
        .app_mesh
        .as_ref()
        .and_then(|a| a.virtual_node_group.as_ref())
    {
        let node = if canary {
            &group.canary_virtual_node_ref
        } else {
            &group.stable_virtual_node_ref
        };
        if let Some(node) = node {
            out.push(object(
                "appMesh",
                "VirtualNode",
                &node.name,
                when,
                vec![field(
                    format!("spec.podSelector.matchLabels.{POD_TEMPLATE_HASH_LABEL}"),
                    NEW_POD_HASH_PLACEHOLDER,
                )],
            ));
        }
    }
    out
}

fn string_match(m: &StringMatch) -> String {
    if !m.exact.is_empty() {
        format!("= {:?}", m.exact)
    } else if !m.prefix.is_empty() {
        format!("starts with {:?}", m.prefix)
    } else {
        format!("~ /{}/", m.regex)
    }
}

fn header_matches(matches: &[HeaderRoutingMatch]) -> String {
    matches
        .iter()
        .map(|m| match &m.header_value {
            Some(value) => format!("header {} {}", m.header_name, string_match(value)),
            None => format!("header {}", m.header_name),
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

fn route_matches(matches: &[RouteMatch]) -> String {
    matches
        .iter()
        .map(|m| {
            let mut parts = Vec::new();
            if let Some(method) = &m.method {
                parts.push(format!("method {}", string_match(method)));
            }
            if let Some(path) = &m.path {
                parts.push(format!("path {}", string_match(path)));
            }
            for (name, value) in &m.headers {
                parts.push(format!("header {name} {}", string_match(value)));
            }
            if parts.is_empty() {
                "every request".to_string()
            } else {
                parts.join(" and ")
            }
        })
        .collect::<Vec<_>>()
        .join(", or ")
}

/// A managed route (header or mirror) in every Istio VirtualService of `routing`.
fn istio_managed_route(
    routing: &RolloutTrafficRouting,
    route: &str,
    value: &str,
    out: &mut Vec<TrafficObject>,
) {
    if let Some(istio) = &routing.istio {
        for vs in istio.all_virtual_services() {
            out.push(object(
                "istio",
                "VirtualService",
                &vs.name,
                "",
                vec![field(format!("spec.http[name={route}]"), value)],
            ));
        }
    }
}

/// A managed route (header or mirror) as a rule in every Gateway API route that takes them.
fn gateway_managed_route(
    routing: &RolloutTrafficRouting,
    route: &str,
    value: &str,
    out: &mut Vec<TrafficObject>,
) {
    if let Some(Ok(gateway)) = routing.gateway_api_config() {
        for (kind, name, _) in gateway_routes(&gateway)
            .into_iter()
            .filter(|(_, _, header_routes)| *header_routes)
        {
            out.push(object(
                "gatewayAPI",
                kind,
                &name,
                "",
                vec![field(format!("spec.rules[name={route}]"), value)],
            ));
        }
    }
}

fn header_route_objects(
    rollout: &Rollout,
    routing: &RolloutTrafficRouting,
    route: &SetHeaderRoute,
    canary_service: &str,
) -> Vec<TrafficObject> {
    let value = match &route.r#match {
        Some(matches) => format!(
            "requests with {} go to {canary_service} (100%)",
            header_matches(matches)
        ),
        None => "removed".to_string(),
    };
    let mut out = Vec::new();
    istio_managed_route(routing, &route.name, &value, &mut out);
    if let Some(alb) = &routing.alb {
        let prefix = alb.annotation_prefix_or_default();
        for ingress in alb.ingress_names() {
            out.push(object(
                "alb",
                "Ingress",
                ingress,
                "",
                vec![
                    field(
                        format!("metadata.annotations[{prefix}/actions.{}]", route.name),
                        value.clone(),
                    ),
                    field(
                        format!("metadata.annotations[{prefix}/conditions.{}]", route.name),
                        value.clone(),
                    ),
                ],
            ));
        }
    }
    if let Some(nginx) = &routing.nginx {
        let prefix = nginx.annotation_prefix_or_default();
        for ingress in nginx.stable_ingress_names() {
            let name = NginxTrafficRouting::canary_ingress_name(rollout.name(), ingress);
            let fields = match route.r#match.as_deref() {
                Some([only]) => {
                    let mut fields = vec![field(
                        format!("metadata.annotations[{prefix}/canary-by-header]"),
                        only.header_name.clone(),
                    )];
                    if let Some(value) = &only.header_value {
                        fields.push(if value.exact.is_empty() {
                            field(
                                format!("metadata.annotations[{prefix}/canary-by-header-pattern]"),
                                value.as_regex(),
                            )
                        } else {
                            field(
                                format!("metadata.annotations[{prefix}/canary-by-header-value]"),
                                value.exact.clone(),
                            )
                        });
                    }
                    fields
                }
                _ => vec![field(
                    format!("metadata.annotations[{prefix}/canary-by-header]"),
                    "removed",
                )],
            };
            out.push(object("nginx", "Ingress", &name, "", fields));
        }
    }
    if let Some(apisix) = routing.apisix.as_ref().and_then(|a| a.route.as_ref()) {
        out.push(object(
            "apisix",
            "ApisixRoute",
            &apisix.name,
            "",
            vec![field(
                format!("spec.http[name={}]", route.name),
                value.clone(),
            )],
        ));
    }
    gateway_managed_route(routing, &route.name, &value, &mut out);
    out
}

fn mirror_route_objects(
    routing: &RolloutTrafficRouting,
    route: &SetMirrorRoute,
    canary_service: &str,
) -> Vec<TrafficObject> {
    let value = match &route.r#match {
        Some(matches) => format!(
            "mirror {}% of {} to {canary_service}",
            route.percentage.unwrap_or(100),
            route_matches(matches)
        ),
        None => "removed".to_string(),
    };
    let mut out = Vec::new();
    istio_managed_route(routing, &route.name, &value, &mut out);
    gateway_managed_route(routing, &route.name, &value, &mut out);
    out
}

/// Managed routes go at the end of the release.
fn remove_route_objects(
    rollout: &Rollout,
    routing: &RolloutTrafficRouting,
    name: &str,
    mirror: bool,
) -> Vec<TrafficObject> {
    let mut out = if mirror {
        let removed = SetMirrorRoute {
            name: name.to_string(),
            r#match: None,
            percentage: None,
        };
        mirror_route_objects(routing, &removed, "")
    } else {
        let removed = SetHeaderRoute {
            name: name.to_string(),
            r#match: None,
        };
        header_route_objects(rollout, routing, &removed, "")
    };
    for object in &mut out {
        object.when = WHEN_PROMOTED.to_string();
    }
    out
}
