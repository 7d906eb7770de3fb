//! Istio (Argo's `rollout/trafficrouting/istio`): route weights in one or more
//! VirtualServices, and with a DestinationRule the subsets' pod-template hashes.
//!
//! - Host-level split: the routes' destinations are the canary and stable Services (a host
//!   matches a Service by its first DNS label, so `web-canary.shop.svc.cluster.local` is
//!   `web-canary`).
//! - Subset-level split: the destinations are the DestinationRule's canary and stable subsets,
//!   whose `rollouts-pod-template-hash` labels follow the ReplicaSets.
//!
//! The routes weighted are the named HTTP `routes`, the TLS routes matching `tlsRoutes` (port
//! and SNI hosts), the TCP routes matching `tcpRoutes` (port), or, when none are named, the
//! single unnamed HTTP route and the first TLS and TCP route. Mirror routes listed in
//! `managedRoutes` are weighted too. In each weighted route the canary gets the canary weight,
//! the stable the rest, experiment Services their own weight, `additionalSubsetNames` keep
//! theirs, and any other destination is dropped. Header and mirror routes are added on top,
//! in `managedRoutes` order, and removed at the end.

use serde_json::{Map, Value, json};

use rollout_runner_api::crd::{
    IstioDestinationRule, IstioTrafficRouting, IstioVirtualService, MANAGED_BY_ROLLOUTS_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL, SetHeaderRoute, SetMirrorRoute, StringMatch,
};
use rollout_runner_api::plan::{TrafficWeights, WeightedDestination};

use super::{
    ObjectKey, Objects, Op, Resource, Result, Router, Target, TrafficError, existing, existing_mut,
    namespaced,
};

fn error(message: impl Into<String>) -> TrafficError {
    TrafficError::Router {
        router: "istio",
        message: message.into(),
    }
}

/// The first DNS label of a destination host: the Service name.
fn host_service(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// A StringMatch as Istio writes it: the one key that is set.
fn istio_string_match(m: &StringMatch) -> Value {
    let mut out = Map::new();
    for (key, value) in [
        ("exact", &m.exact),
        ("prefix", &m.prefix),
        ("regex", &m.regex),
    ] {
        if !value.is_empty() {
            out.insert(key.into(), Value::String(value.clone()));
        }
    }
    Value::Object(out)
}

pub(crate) struct Istio<'a> {
    target: Target<'a>,
    config: &'a IstioTrafficRouting,
}

/// Which routes of a VirtualService carry the canary split.
#[derive(Debug, Default, PartialEq)]
struct Selected {
    http: Vec<usize>,
    tls: Vec<usize>,
    tcp: Vec<usize>,
}

impl<'a> Istio<'a> {
    pub(crate) fn new(target: Target<'a>, config: &'a IstioTrafficRouting) -> Self {
        Self { target, config }
    }

    fn virtual_services(&self) -> impl Iterator<Item = &'a IstioVirtualService> {
        self.config.all_virtual_services()
    }

    fn vs_key(&self, vs: &IstioVirtualService) -> ObjectKey {
        let (namespace, name) = namespaced(&vs.name, self.target.namespace());
        ObjectKey::new(Resource::VirtualService, namespace, name)
    }

    fn dr_key(&self, rule: &IstioDestinationRule) -> ObjectKey {
        ObjectKey::new(
            Resource::DestinationRule,
            self.target.namespace(),
            &rule.name,
        )
    }

    fn subsets(&self) -> (Option<&str>, Option<&str>) {
        match &self.config.destination_rule {
            Some(rule) => (
                Some(rule.canary_subset_name.as_str()),
                Some(rule.stable_subset_name.as_str()),
            ),
            None => (None, None),
        }
    }

    fn is_canary(&self, destination: &Value) -> bool {
        is_destination(destination, self.subsets().0, &self.target.canary_service)
    }

    fn is_stable(&self, destination: &Value) -> bool {
        is_destination(destination, self.subsets().1, &self.target.stable_service)
    }

    /// The routes to weight, checked as Argo's `ValidateHTTPRoutes` does.
    fn select(&self, vs: &IstioVirtualService, object: &Value) -> Result<Selected> {
        let name = &vs.name;
        let mut selected = Selected::default();
        let routes = |kind: &str| -> Vec<Value> {
            object
                .pointer(&format!("/spec/{kind}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let http = routes("http");
        let route_name = |r: &Value| {
            r.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if !http.is_empty() {
            if vs.routes.is_empty() {
                let unmanaged = http
                    .iter()
                    .filter(|r| !self.target.is_managed_route(&route_name(r)))
                    .count();
                if unmanaged > 1 {
                    return Err(error(format!(
                        "VirtualService `{name}`: spec.http[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes\nhint: name the route to weight under `routes`"
                    )));
                }
                if let Some(index) = http.iter().position(|r| route_name(r).is_empty()) {
                    selected.http.push(index);
                }
            } else {
                for wanted in &vs.routes {
                    let index = http
                        .iter()
                        .position(|r| route_name(r) == *wanted)
                        .ok_or_else(|| {
                            error(format!(
                                "VirtualService `{name}`: HTTP Route '{wanted}' is not found in the defined Virtual Service."
                            ))
                        })?;
                    selected.http.push(index);
                }
            }
            for index in selected.http.clone() {
                self.validate_destinations(name, "HTTP", &http[index])?;
            }
            // Managed mirror routes copy the split, so they follow it.
            for (index, route) in http.iter().enumerate() {
                if route.get("mirror").is_some()
                    && self.target.is_managed_route(&route_name(route))
                    && !selected.http.contains(&index)
                {
                    selected.http.push(index);
                }
            }
        } else if !vs.routes.is_empty() {
            return Err(error(format!(
                "VirtualService `{name}` has no HTTP routes (spec.http)"
            )));
        }

        // TLS routes match by port and SNI hosts, TCP routes by port.
        let tls_wanted: Vec<(i64, Vec<String>)> = vs
            .tls_routes
            .iter()
            .map(|t| {
                let mut sni = t.sni_hosts.clone();
                sni.sort();
                (t.port.unwrap_or(0), sni)
            })
            .collect();
        let tcp_wanted: Vec<(i64, Vec<String>)> = vs
            .tcp_routes
            .iter()
            .map(|t| (t.port.unwrap_or(0), Vec::new()))
            .collect();
        for (kind, label, wanted, out) in [
            ("tls", "TLS", tls_wanted, &mut selected.tls),
            ("tcp", "TCP", tcp_wanted, &mut selected.tcp),
        ] {
            let found = routes(kind);
            if found.is_empty() {
                if !wanted.is_empty() {
                    return Err(error(format!(
                        "VirtualService `{name}` has no {label} routes (spec.{kind})"
                    )));
                }
                continue;
            }
            if wanted.is_empty() {
                if found.len() > 1 {
                    return Err(error(format!(
                        "VirtualService `{name}`: spec.{kind}[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.{kind}Routes"
                    )));
                }
                out.push(0);
            }
            for (port, sni) in &wanted {
                let matching: Vec<usize> = found
                    .iter()
                    .enumerate()
                    .filter(|(_, route)| {
                        let (route_port, route_sni) = route_port_and_sni(route);
                        route_port == *port && (kind == "tcp" || route_sni == *sni)
                    })
                    .map(|(i, _)| i)
                    .collect();
                if matching.is_empty() {
                    return Err(error(format!(
                        "VirtualService `{name}`: No matching {label} routes found in the defined Virtual Service."
                    )));
                }
                out.extend(matching);
            }
            for index in out.iter() {
                self.validate_destinations(name, label, &found[*index])?;
            }
        }
        if selected == Selected::default() {
            return Err(error(format!(
                "Unable to get any of the HTTP, TCP or TLS routes for the Istio VirtualService `{name}`"
            )));
        }
        Ok(selected)
    }

    /// Argo's `validateVirtualServiceRouteDestinations`: both canary and stable are there.
    fn validate_destinations(&self, vs: &str, kind: &str, route: &Value) -> Result<()> {
        let destinations: Vec<&Value> = route
            .get("route")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let has_canary = destinations.iter().any(|d| self.is_canary(d));
        let has_stable = destinations.iter().any(|d| self.is_stable(d));
        let missing = match (&self.config.destination_rule, has_canary, has_stable) {
            (Some(rule), false, _) => Some(format!(
                "Canary DestinationRule subset '{}' not found in route",
                rule.canary_subset_name
            )),
            (Some(rule), true, false) => Some(format!(
                "Stable DestinationRule subset '{}' not found in route",
                rule.stable_subset_name
            )),
            (None, false, _) => Some(format!(
                "Canary Service '{}' not found in route",
                self.target.canary_service
            )),
            (None, true, false) => Some(format!(
                "Stable Service '{}' not found in route",
                self.target.stable_service
            )),
            _ => None,
        };
        match missing {
            Some(message) => Err(error(format!(
                "VirtualService `{vs}` has invalid {kind} routes. Error: {message}"
            ))),
            None => Ok(()),
        }
    }

    /// Weight one route's destinations (Argo's `processRoutes`).
    fn weight_route(&self, route: &mut Value, weights: &TrafficWeights) {
        let additional_subsets: &[String] = self
            .config
            .destination_rule
            .as_ref()
            .map_or(&[], |r| r.additional_subset_names.as_slice());
        let stable_weight = weights.stable.weight.max(0);
        let mut pending: Vec<&WeightedDestination> = weights.additional.iter().collect();
        let destinations = route
            .get("route")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut kept = Vec::new();
        for mut destination in destinations {
            let host = destination
                .pointer("/destination/host")
                .and_then(Value::as_str)
                .map(host_service)
                .unwrap_or("")
                .to_string();
            let subset = destination
                .pointer("/destination/subset")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let weight = if self.is_canary(&destination) {
                weights.canary.weight
            } else if self.is_stable(&destination) {
                stable_weight
            } else if let Some(position) = pending.iter().position(|d| d.service_name == host) {
                pending.remove(position).weight
            } else if !subset.is_empty() && additional_subsets.contains(&subset) {
                kept.push(destination);
                continue;
            } else {
                // Anything else (a finished experiment's Service) is dropped.
                continue;
            };
            destination["weight"] = json!(weight);
            kept.push(destination);
        }
        pending.sort_by(|a, b| a.service_name.cmp(&b.service_name));
        for destination in pending {
            kept.push(json!({
                "destination": {"host": destination.service_name},
                "weight": destination.weight,
            }));
        }
        route["route"] = Value::Array(kept);
    }

    /// Managed routes first, in `managedRoutes` order, then the others as they were (Argo's
    /// `orderRoutes`).
    fn order_routes(&self, object: &mut Value) {
        let Some(http) = object
            .pointer_mut("/spec/http")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        let name_of = |r: &Value| r.get("name").and_then(Value::as_str).map(str::to_string);
        let mut ordered: Vec<Value> = Vec::new();
        for managed in &self.target.managed_routes {
            ordered.extend(
                http.iter()
                    .filter(|r| name_of(r).as_deref() == Some(managed))
                    .cloned(),
            );
        }
        ordered.extend(
            http.iter()
                .filter(|r| name_of(r).is_none_or(|n| !self.target.is_managed_route(&n)))
                .cloned(),
        );
        *http = ordered;
    }

    fn remove_route(object: &mut Value, name: &str) {
        if let Some(http) = object
            .pointer_mut("/spec/http")
            .and_then(Value::as_array_mut)
        {
            http.retain(|r| r.get("name").and_then(Value::as_str) != Some(name));
        }
    }

    /// The destination of the canary for header and mirror routes: the DestinationRule's
    /// host and canary subset, or the canary Service, on the port of the weighted route.
    fn canary_destination(
        &self,
        objects: &Objects,
        vs: &IstioVirtualService,
        object: &Value,
    ) -> Result<Value> {
        let mut destination = Map::new();
        match &self.config.destination_rule {
            Some(rule) => {
                let host = existing(objects, &self.dr_key(rule))?
                    .pointer("/spec/host")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.target.canary_service)
                    .to_string();
                destination.insert("host".into(), json!(host));
                destination.insert("subset".into(), json!(rule.canary_subset_name));
            }
            None => {
                destination.insert("host".into(), json!(self.target.canary_service));
            }
        }
        if let Some(port) = self
            .weighted_http_route(vs, object)?
            .and_then(|r| r.pointer("/route/0/destination/port/number"))
        {
            destination.insert("port".into(), json!({"number": port}));
        }
        Ok(Value::Object(destination))
    }

    /// The first HTTP route the split is set on.
    fn weighted_http_route<'v>(
        &self,
        vs: &IstioVirtualService,
        object: &'v Value,
    ) -> Result<Option<&'v Value>> {
        let selected = self.select(vs, object)?;
        Ok(selected
            .http
            .first()
            .and_then(|i| object.pointer(&format!("/spec/http/{i}"))))
    }
}

/// Whether a route destination is the subset (subset-level split) or the Service (host-level).
fn is_destination(destination: &Value, subset: Option<&str>, service: &str) -> bool {
    match subset {
        Some(wanted) => {
            destination
                .pointer("/destination/subset")
                .and_then(Value::as_str)
                == Some(wanted)
        }
        None => {
            let host = destination
                .pointer("/destination/host")
                .and_then(Value::as_str)
                .unwrap_or("");
            host_service(host) == service
        }
    }
}

/// The single port and the sorted SNI hosts a TLS/TCP route matches on (port 0 when several).
fn route_port_and_sni(route: &Value) -> (i64, Vec<String>) {
    let mut ports = std::collections::BTreeSet::new();
    let mut sni = std::collections::BTreeSet::new();
    for m in route
        .get("match")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        ports.insert(m.get("port").and_then(Value::as_i64).unwrap_or(0));
        for host in m
            .get("sniHosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(host) = host.as_str() {
                sni.insert(host.to_string());
            }
        }
    }
    let port = if ports.len() == 1 {
        ports.into_iter().next().unwrap_or(0)
    } else {
        0
    };
    (port, sni.into_iter().collect())
}

impl Router for Istio<'_> {
    fn name(&self) -> &'static str {
        "istio"
    }

    fn objects(&self, op: Op) -> Vec<ObjectKey> {
        let vss: Vec<ObjectKey> = self.virtual_services().map(|vs| self.vs_key(vs)).collect();
        let dr: Vec<ObjectKey> = self
            .config
            .destination_rule
            .iter()
            .map(|r| self.dr_key(r))
            .collect();
        match op {
            Op::Weight | Op::Observe => vss,
            Op::Hash => dr,
            Op::Routes => vss.into_iter().chain(dr).collect(),
        }
    }

    fn set_weight(&self, objects: &mut Objects, weights: &TrafficWeights) -> Result<()> {
        for vs in self.virtual_services() {
            let key = self.vs_key(vs);
            let object = existing_mut(objects, &key)?;
            let selected = self.select(vs, object)?;
            for (kind, indices) in [
                ("http", &selected.http),
                ("tls", &selected.tls),
                ("tcp", &selected.tcp),
            ] {
                for index in indices {
                    if let Some(route) = object.pointer_mut(&format!("/spec/{kind}/{index}")) {
                        self.weight_route(route, weights);
                    }
                }
            }
            self.order_routes(object);
        }
        Ok(())
    }

    fn update_hash(
        &self,
        objects: &mut Objects,
        canary_hash: &str,
        stable_hash: &str,
        additional: &[WeightedDestination],
    ) -> Result<()> {
        let Some(rule) = &self.config.destination_rule else {
            return Ok(());
        };
        let object = existing_mut(objects, &self.dr_key(rule))?;
        let mut pending: Vec<&WeightedDestination> = additional.iter().collect();
        let set_hash = |subset: &mut Value, hash: &str| {
            if !subset.get("labels").is_some_and(Value::is_object) {
                subset["labels"] = json!({});
            }
            let labels = subset["labels"]
                .as_object_mut()
                .expect("labels made an object");
            if hash.is_empty() {
                labels.remove(POD_TEMPLATE_HASH_LABEL);
            } else {
                labels.insert(POD_TEMPLATE_HASH_LABEL.into(), json!(hash));
            }
        };
        let subsets = object
            .pointer_mut("/spec/subsets")
            .and_then(Value::as_array_mut);
        let mut found = (false, false);
        let mut subsets_out = Vec::new();
        for mut subset in subsets.map(std::mem::take).unwrap_or_default() {
            let name = subset
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if name == rule.canary_subset_name {
                set_hash(&mut subset, canary_hash);
                found.0 = true;
            } else if name == rule.stable_subset_name {
                set_hash(&mut subset, stable_hash);
                found.1 = true;
            } else if let Some(position) = pending.iter().position(|d| d.service_name == name) {
                set_hash(&mut subset, &pending.remove(position).pod_template_hash);
            }
            subsets_out.push(subset);
        }
        if !found.0 || !found.1 {
            let missing = if found.0 {
                &rule.stable_subset_name
            } else {
                &rule.canary_subset_name
            };
            return Err(error(format!(
                "DestinationRule `{}` has no subset `{missing}`\nhint: add the canary and stable subsets to the DestinationRule",
                rule.name
            )));
        }
        for destination in pending {
            subsets_out.push(json!({
                "name": destination.service_name,
                "labels": {POD_TEMPLATE_HASH_LABEL: destination.pod_template_hash},
            }));
        }
        object["spec"]["subsets"] = Value::Array(subsets_out);
        if !object["metadata"]
            .get("annotations")
            .is_some_and(Value::is_object)
        {
            object["metadata"]["annotations"] = json!({});
        }
        object["metadata"]["annotations"][MANAGED_BY_ROLLOUTS_ANNOTATION] =
            json!(self.target.rollout.name());
        Ok(())
    }

    fn set_header_route(&self, objects: &mut Objects, route: &SetHeaderRoute) -> Result<()> {
        for vs in self.virtual_services() {
            let key = self.vs_key(vs);
            let destination = match &route.r#match {
                Some(_) => Some(self.canary_destination(objects, vs, existing(objects, &key)?)?),
                None => None,
            };
            let object = existing_mut(objects, &key)?;
            Self::remove_route(object, &route.name);
            if let (Some(matches), Some(mut destination)) = (&route.r#match, destination) {
                let matches: Vec<Value> = matches
                    .iter()
                    .map(|m| {
                        let value = m
                            .header_value
                            .as_ref()
                            .map(istio_string_match)
                            .unwrap_or(json!({}));
                        json!({"headers": {m.header_name.clone(): value}})
                    })
                    .collect();
                destination = json!({"destination": destination, "weight": 100});
                let http = object["spec"]
                    .as_object_mut()
                    .map(|s| s.entry("http").or_insert_with(|| json!([])))
                    .and_then(Value::as_array_mut)
                    .ok_or_else(|| error(format!("VirtualService `{}` has no spec", vs.name)))?;
                http.push(json!({"name": route.name, "match": matches, "route": [destination]}));
            }
            self.order_routes(object);
        }
        Ok(())
    }

    fn set_mirror_route(&self, objects: &mut Objects, route: &SetMirrorRoute) -> Result<()> {
        for vs in self.virtual_services() {
            let key = self.vs_key(vs);
            let prepared = match &route.r#match {
                Some(_) => {
                    let object = existing(objects, &key)?;
                    let split = self
                        .weighted_http_route(vs, object)?
                        .and_then(|r| r.get("route"))
                        .cloned()
                        .ok_or_else(|| {
                            error(format!(
                                "VirtualService `{}` has no HTTP route to mirror\nhint: mirror routes need an HTTP route with the canary split",
                                vs.name
                            ))
                        })?;
                    Some((split, self.canary_destination(objects, vs, object)?))
                }
                None => None,
            };
            let object = existing_mut(objects, &key)?;
            Self::remove_route(object, &route.name);
            if let (Some(matches), Some((split, mirror))) = (&route.r#match, prepared) {
                let matches: Vec<Value> = matches
                    .iter()
                    .map(|m| {
                        let mut out = Map::new();
                        if let Some(method) = &m.method {
                            out.insert("method".into(), istio_string_match(method));
                        }
                        if let Some(path) = &m.path {
                            out.insert("uri".into(), istio_string_match(path));
                        }
                        if !m.headers.is_empty() {
                            let headers: Map<String, Value> = m
                                .headers
                                .iter()
                                .map(|(k, v)| (k.clone(), istio_string_match(v)))
                                .collect();
                            out.insert("headers".into(), Value::Object(headers));
                        }
                        Value::Object(out)
                    })
                    .collect();
                let mirror_route = json!({
                    "name": route.name,
                    "match": matches,
                    "route": split,
                    "mirror": mirror,
                    "mirrorPercentage": {"value": route.percentage.unwrap_or(100)},
                });
                if let Some(http) = object
                    .pointer_mut("/spec/http")
                    .and_then(Value::as_array_mut)
                {
                    http.insert(0, mirror_route);
                }
            }
            self.order_routes(object);
        }
        Ok(())
    }

    fn remove_managed_routes(&self, objects: &mut Objects) -> Result<()> {
        if self.target.managed_routes.is_empty() {
            return Ok(());
        }
        for vs in self.virtual_services() {
            let object = existing_mut(objects, &self.vs_key(vs))?;
            for name in &self.target.managed_routes {
                Self::remove_route(object, name);
            }
        }
        Ok(())
    }

    fn managed_routes(&self, objects: &Objects) -> Vec<String> {
        objects
            .values()
            .flatten()
            .filter_map(|o| o.pointer("/spec/http").and_then(Value::as_array))
            .flatten()
            .filter_map(|r| r.get("name").and_then(Value::as_str))
            .filter(|name| self.target.is_managed_route(name))
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests;
