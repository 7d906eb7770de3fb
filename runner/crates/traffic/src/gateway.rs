//! Gateway API, natively (what Argo does through the `argoproj-labs/gatewayAPI` plugin, whose
//! configuration is accepted unchanged): the weights of the canary and stable `backendRefs`
//! of HTTPRoutes and GRPCRoutes.
//!
//! Every rule whose backendRefs name both the canary and the stable Service carries the split:
//! the canary gets the canary weight, the stable the rest, experiment Services their own
//! weight (added next to them, and dropped when the experiment ends). Rules that name only one
//! of the two are left alone, so a stable-only path is never weighted to 0.
//!
//! Header and mirror routes are rules of their own, named after the managed route (Gateway API
//! rule names), so they are found again without the plugin's ConfigMap. A header rule copies
//! the first split rule's matches (path and query parameters, or the gRPC method) and filters,
//! adds the header matches, and sends everything to the canary. A mirror rule matches what the
//! step says, keeps the split rule's backends (and follows later weights), and mirrors to the
//! canary with a `RequestMirror` filter. For the `httpRoutes`/`grpcRoutes` lists, only routes
//! with `useHeaderRoutes: true` get them, as with the plugin.

use serde_json::{Map, Value, json};

use rollout_runner_api::crd::{
    GatewayApiTrafficRouting, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use rollout_runner_api::plan::TrafficWeights;

use super::{
    ObjectKey, Objects, Op, Resource, Result, Router, Target, TrafficError, existing, existing_mut,
};

/// Gateway API allows this many rules per route.
const MAX_RULES: usize = 16;

fn error(message: impl Into<String>) -> TrafficError {
    TrafficError::Router {
        router: "gatewayAPI",
        message: message.into(),
    }
}

/// One route the configuration names, and whether header and mirror routes go there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RouteRef {
    resource: Resource,
    name: String,
    header_routes: bool,
}

fn routes(config: &GatewayApiTrafficRouting) -> Vec<RouteRef> {
    config
        .routes()
        .into_iter()
        .map(|r| RouteRef {
            resource: if r.kind == "GRPCRoute" {
                Resource::GrpcRoute
            } else {
                Resource::HttpRoute
            },
            name: r.name,
            header_routes: r.header_routes,
        })
        .collect()
}

/// Whether a backendRef points at the Service `name` (group `""` and kind `Service` are the
/// defaults).
fn refers_to(backend: &Value, name: &str) -> bool {
    backend.get("name").and_then(Value::as_str) == Some(name)
        && backend
            .get("group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        && backend
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("Service")
            == "Service"
}

fn backends(rule: &Value) -> impl Iterator<Item = &Value> {
    rule.get("backendRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A header match: `Exact`, or `RegularExpression` for regexes and prefixes.
fn header_match(name: &str, value: &StringMatch) -> Value {
    if !value.exact.is_empty() {
        json!({"type": "Exact", "name": name, "value": value.exact})
    } else {
        json!({"type": "RegularExpression", "name": name, "value": value.as_regex()})
    }
}

pub(crate) struct GatewayApi<'a> {
    target: Target<'a>,
    config: GatewayApiTrafficRouting,
}

impl<'a> GatewayApi<'a> {
    pub(crate) fn new(target: Target<'a>, config: GatewayApiTrafficRouting) -> Self {
        Self { target, config }
    }

    fn key(&self, route: &RouteRef) -> ObjectKey {
        let namespace = if self.config.namespace.is_empty() {
            self.target.namespace()
        } else {
            &self.config.namespace
        };
        ObjectKey::new(route.resource, namespace, &route.name)
    }

    /// Whether a rule carries the canary split.
    fn is_split(&self, rule: &Value) -> bool {
        backends(rule).any(|b| refers_to(b, &self.target.canary_service))
            && backends(rule).any(|b| refers_to(b, &self.target.stable_service))
    }

    /// The first rule with the split, or an error naming the route.
    fn split_rule<'v>(&self, route: &RouteRef, object: &'v Value) -> Result<&'v Value> {
        object
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|rule| self.is_split(rule))
            .ok_or_else(|| self.no_split(route))
    }

    fn no_split(&self, route: &RouteRef) -> TrafficError {
        error(format!(
            "{} `{}` has no rule with backendRefs to both `{}` and `{}`\nhint: give a rule of the route the stable and the canary Service as backendRefs",
            route.resource.kind(),
            route.name,
            self.target.stable_service,
            self.target.canary_service
        ))
    }

    /// A backendRef to the canary on the port the split rule uses.
    fn canary_backend(&self, split: &Value) -> Value {
        let mut backend =
            json!({"group": "", "kind": "Service", "name": self.target.canary_service});
        if let Some(port) = backends(split)
            .find(|b| refers_to(b, &self.target.canary_service))
            .and_then(|b| b.get("port"))
        {
            backend["port"] = port.clone();
        }
        backend
    }

    /// Replace the rule named `name` (or remove it when `rule` is `None`).
    fn put_rule(
        route: &RouteRef,
        object: &mut Value,
        name: &str,
        rule: Option<Value>,
    ) -> Result<()> {
        let rules = object
            .pointer_mut("/spec/rules")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| {
                error(format!(
                    "{} `{}` has no rules",
                    route.resource.kind(),
                    route.name
                ))
            })?;
        rules.retain(|r| r.get("name").and_then(Value::as_str) != Some(name));
        if let Some(rule) = rule {
            if rules.len() >= MAX_RULES {
                return Err(error(format!(
                    "{} `{}` already has {MAX_RULES} rules, the most Gateway API allows\nhint: merge rules of the route to make room for the managed route `{name}`",
                    route.resource.kind(),
                    route.name
                )));
            }
            rules.push(rule);
        }
        Ok(())
    }

    fn check_name(name: &str) -> Result<()> {
        if rollout_runner_core::validate::is_dns_label(name) {
            Ok(())
        } else {
            Err(error(format!(
                "managed route name `{name}` is not a valid Gateway API rule name\nhint: use lowercase letters, digits and '-' (at most 63 characters)"
            )))
        }
    }

    fn header_rule(&self, route: &RouteRef, split: &Value, header: &SetHeaderRoute) -> Value {
        let headers: Vec<Value> = header
            .r#match
            .iter()
            .flatten()
            .map(|m| {
                let value = m.header_value.clone().unwrap_or_default();
                header_match(&m.header_name, &value)
            })
            .collect();
        let copied: &[&str] = match route.resource {
            Resource::GrpcRoute => &["method"],
            _ => &["path", "queryParams"],
        };
        let mut matches: Vec<Value> = split
            .get("matches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| {
                let mut out = Map::new();
                for field in copied {
                    if let Some(value) = m.get(*field) {
                        out.insert((*field).to_string(), value.clone());
                    }
                }
                out.insert("headers".into(), Value::Array(headers.clone()));
                Value::Object(out)
            })
            .collect();
        if matches.is_empty() {
            matches.push(json!({"headers": headers}));
        }
        let mut backend = self.canary_backend(split);
        backend["weight"] = json!(1);
        let mut rule = json!({"name": header.name, "matches": matches, "backendRefs": [backend]});
        if let Some(filters) = split.get("filters") {
            rule["filters"] = filters.clone();
        }
        rule
    }

    fn mirror_rule(
        &self,
        route: &RouteRef,
        split: &Value,
        mirror: &SetMirrorRoute,
    ) -> Result<Value> {
        let grpc = route.resource == Resource::GrpcRoute;
        let mut matches = Vec::new();
        for m in mirror.r#match.iter().flatten() {
            let mut out = Map::new();
            if let Some(method) = &m.method {
                if grpc || method.exact.is_empty() {
                    return Err(error(format!(
                        "mirror route `{}`: {} `{}` can match only an exact HTTP method\nhint: use method.exact{}",
                        mirror.name,
                        route.resource.kind(),
                        route.name,
                        if grpc { " on an HTTPRoute" } else { "" }
                    )));
                }
                out.insert("method".into(), json!(method.exact.to_ascii_uppercase()));
            }
            if let Some(path) = &m.path {
                if grpc {
                    return Err(error(format!(
                        "mirror route `{}`: GRPCRoute `{}` cannot match a path\nhint: match headers only",
                        mirror.name, route.name
                    )));
                }
                let (kind, value) = if !path.exact.is_empty() {
                    ("Exact", path.exact.clone())
                } else if !path.prefix.is_empty() {
                    ("PathPrefix", path.prefix.clone())
                } else {
                    ("RegularExpression", path.regex.clone())
                };
                out.insert("path".into(), json!({"type": kind, "value": value}));
            }
            if !m.headers.is_empty() {
                let headers: Vec<Value> =
                    m.headers.iter().map(|(k, v)| header_match(k, v)).collect();
                out.insert("headers".into(), Value::Array(headers));
            }
            // Written as the API server would default it, so setting it again changes nothing.
            if !grpc && !out.contains_key("path") {
                out.insert("path".into(), json!({"type": "PathPrefix", "value": "/"}));
            }
            matches.push(Value::Object(out));
        }
        let mut mirror_filter = json!({"backendRef": self.canary_backend(split)});
        if let Some(percentage) = mirror.percentage {
            mirror_filter["percent"] = json!(percentage);
        }
        let mut filters: Vec<Value> = split
            .get("filters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        filters.retain(|f| f.get("type").and_then(Value::as_str) != Some("RequestMirror"));
        filters.push(json!({"type": "RequestMirror", "requestMirror": mirror_filter}));
        Ok(json!({
            "name": mirror.name,
            "matches": matches,
            "filters": filters,
            "backendRefs": split.get("backendRefs").cloned().unwrap_or_else(|| json!([])),
        }))
    }
}

impl Router for GatewayApi<'_> {
    fn name(&self) -> &'static str {
        "gatewayAPI"
    }

    fn objects(&self, op: Op) -> Vec<ObjectKey> {
        match op {
            Op::Hash => Vec::new(),
            Op::Weight | Op::Routes | Op::Observe => {
                routes(&self.config).iter().map(|r| self.key(r)).collect()
            }
        }
    }

    fn set_weight(&self, objects: &mut Objects, weights: &TrafficWeights) -> Result<()> {
        for route in routes(&self.config) {
            let object = existing_mut(objects, &self.key(&route))?;
            let mut split_found = false;
            for rule in object
                .pointer_mut("/spec/rules")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if !self.is_split(rule) {
                    continue;
                }
                split_found = true;
                let port = backends(rule)
                    .find(|b| refers_to(b, &self.target.canary_service))
                    .and_then(|b| b.get("port"))
                    .cloned();
                let refs = rule["backendRefs"]
                    .as_array_mut()
                    .expect("a split rule has backendRefs");
                // The split belongs to the rollout: experiment Services that ended go.
                refs.retain(|b| {
                    refers_to(b, &self.target.canary_service)
                        || refers_to(b, &self.target.stable_service)
                        || weights
                            .additional
                            .iter()
                            .any(|d| refers_to(b, &d.service_name))
                });
                for backend in refs.iter_mut() {
                    let weight = if refers_to(backend, &self.target.canary_service) {
                        weights.canary.weight
                    } else if refers_to(backend, &self.target.stable_service) {
                        weights.stable.weight.max(0)
                    } else {
                        weights
                            .additional
                            .iter()
                            .find(|d| refers_to(backend, &d.service_name))
                            .map_or(0, |d| d.weight)
                    };
                    backend["weight"] = json!(weight);
                }
                for destination in &weights.additional {
                    if !refs.iter().any(|b| refers_to(b, &destination.service_name)) {
                        let mut backend = json!({
                            "group": "",
                            "kind": "Service",
                            "name": destination.service_name,
                            "weight": destination.weight,
                        });
                        if let Some(port) = &port {
                            backend["port"] = port.clone();
                        }
                        refs.push(backend);
                    }
                }
            }
            if !split_found {
                return Err(self.no_split(&route));
            }
        }
        Ok(())
    }

    fn set_header_route(&self, objects: &mut Objects, header: &SetHeaderRoute) -> Result<()> {
        Self::check_name(&header.name)?;
        for route in routes(&self.config).into_iter().filter(|r| r.header_routes) {
            let key = self.key(&route);
            let rule = match header.r#match {
                Some(_) => {
                    let object = existing(objects, &key)?;
                    Some(self.header_rule(&route, self.split_rule(&route, object)?, header))
                }
                None => None,
            };
            Self::put_rule(&route, existing_mut(objects, &key)?, &header.name, rule)?;
        }
        Ok(())
    }

    fn set_mirror_route(&self, objects: &mut Objects, mirror: &SetMirrorRoute) -> Result<()> {
        Self::check_name(&mirror.name)?;
        for route in routes(&self.config).into_iter().filter(|r| r.header_routes) {
            let key = self.key(&route);
            let rule = match mirror.r#match {
                Some(_) => {
                    let object = existing(objects, &key)?;
                    Some(self.mirror_rule(&route, self.split_rule(&route, object)?, mirror)?)
                }
                None => None,
            };
            Self::put_rule(&route, existing_mut(objects, &key)?, &mirror.name, rule)?;
        }
        Ok(())
    }

    fn remove_managed_routes(&self, objects: &mut Objects) -> Result<()> {
        for route in routes(&self.config) {
            let object = existing_mut(objects, &self.key(&route))?;
            if let Some(rules) = object
                .pointer_mut("/spec/rules")
                .and_then(Value::as_array_mut)
            {
                rules.retain(|r| {
                    r.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(|n| !self.target.is_managed_route(n))
                });
            }
        }
        Ok(())
    }

    fn managed_routes(&self, objects: &Objects) -> Vec<String> {
        let mut out: Vec<String> = objects
            .values()
            .flatten()
            .filter_map(|o| o.pointer("/spec/rules").and_then(Value::as_array))
            .flatten()
            .filter_map(|r| r.get("name").and_then(Value::as_str))
            .filter(|n| self.target.is_managed_route(n))
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests;
