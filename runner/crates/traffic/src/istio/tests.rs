use serde_json::{Value, json};

use crate::Resource;
use crate::testing::{self, Fixture};

fn host_level() -> String {
    testing::rollout(
        r#"        managedRoutes: [{name: mirror}, {name: beta}]
        istio:
          virtualService: {name: web, routes: [primary]}
"#,
    )
}

fn subset_level() -> String {
    testing::rollout(
        r#"        managedRoutes: [{name: beta}]
        istio:
          virtualServices:
            - {name: web}
            - {name: edge/web-gateway, routes: [web]}
          destinationRule:
            name: web
            canarySubsetName: canary
            stableSubsetName: stable
            additionalSubsetNames: [legacy]
"#,
    )
}

fn host_vs() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "100"},
        "spec": {
            "hosts": ["web.example.com"],
            "http": [
                {"name": "admin", "match": [{"uri": {"prefix": "/admin"}}],
                 "route": [{"destination": {"host": "admin"}}]},
                {"name": "primary", "route": [
                    {"destination": {"host": "web-stable.shop.svc.cluster.local", "port": {"number": 8080}}, "weight": 100},
                    {"destination": {"host": "web-canary", "port": {"number": 8080}}, "weight": 0},
                ]},
            ],
        },
    })
}

fn subset_vs(namespace: &str, name: &str, route_name: Option<&str>) -> Value {
    let mut route = json!({"route": [
        {"destination": {"host": "web", "subset": "stable"}, "weight": 90},
        {"destination": {"host": "web", "subset": "canary"}, "weight": 10},
        {"destination": {"host": "web", "subset": "legacy"}, "weight": 0},
    ]});
    if let Some(route_name) = route_name {
        route["name"] = json!(route_name);
    }
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "100"},
        "spec": {"hosts": ["web"], "http": [route]},
    })
}

fn destination_rule() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "100"},
        "spec": {
            "host": "web",
            "subsets": [
                {"name": "canary", "labels": {"app": "web"}},
                {"name": "stable", "labels": {"app": "web"}, "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
                {"name": "legacy", "labels": {"app": "web-legacy"}},
            ],
        },
    })
}

fn host_fixture() -> Fixture {
    let mut fixture = Fixture::new(&host_level());
    fixture.put(Resource::VirtualService, "shop", "web", host_vs());
    fixture
}

fn subset_fixture() -> Fixture {
    let mut fixture = Fixture::new(&subset_level());
    fixture.put(
        Resource::VirtualService,
        "shop",
        "web",
        subset_vs("shop", "web", None),
    );
    fixture.put(
        Resource::VirtualService,
        "edge",
        "web-gateway",
        subset_vs("edge", "web-gateway", Some("web")),
    );
    fixture.put(Resource::DestinationRule, "shop", "web", destination_rule());
    fixture
}

fn weights_of(vs: &Value, route: usize) -> Vec<(String, i64)> {
    vs["spec"]["http"][route]["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let host = d["destination"]["host"].as_str().unwrap().to_string();
            let subset = d["destination"]["subset"]
                .as_str()
                .map(|s| format!("/{s}"))
                .unwrap_or_default();
            (
                format!("{host}{subset}"),
                d["weight"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

#[test]
fn host_level_weights_touch_only_the_named_route() {
    let mut fixture = host_fixture();
    let writes = fixture.set_weight(10);
    assert_eq!(
        writes,
        [testing::patch(
            "VirtualService shop/web",
            json!({"metadata": {"resourceVersion": "100"}, "spec": {"http": [
                {"name": "admin", "match": [{"uri": {"prefix": "/admin"}}],
                 "route": [{"destination": {"host": "admin"}}]},
                {"name": "primary", "route": [
                    {"destination": {"host": "web-stable.shop.svc.cluster.local", "port": {"number": 8080}}, "weight": 90},
                    {"destination": {"host": "web-canary", "port": {"number": 8080}}, "weight": 10},
                ]},
            ]}})
        )]
    );
    assert!(fixture.set_weight(10).is_empty());
    fixture.set_weight(0);
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    assert_eq!(
        weights_of(&vs, 1),
        [
            ("web-stable.shop.svc.cluster.local".to_string(), 100),
            ("web-canary".to_string(), 0)
        ]
    );
}

#[test]
fn subset_level_weights_every_virtual_service_and_keeps_additional_subsets() {
    let mut fixture = subset_fixture();
    let writes = fixture.set_weight(30);
    let names: Vec<&str> = writes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["VirtualService edge/web-gateway", "VirtualService shop/web"]
    );
    for (namespace, name) in [("shop", "web"), ("edge", "web-gateway")] {
        let vs = fixture.object(Resource::VirtualService, namespace, name);
        assert_eq!(
            weights_of(&vs, 0),
            [
                ("web/stable".to_string(), 70),
                ("web/canary".to_string(), 30),
                ("web/legacy".to_string(), 0)
            ],
            "{namespace}/{name}"
        );
    }
}

#[test]
fn update_hash_points_the_subsets_and_leaves_others_alone() {
    let mut fixture = subset_fixture();
    let writes = fixture.update_hash("abc", "def");
    insta::assert_yaml_snapshot!(writes);
    assert!(fixture.update_hash("abc", "def").is_empty());
    // Promotion: both subsets select the new pods.
    fixture.update_hash("abc", "abc");
    let rule = fixture.object(Resource::DestinationRule, "shop", "web");
    assert_eq!(
        rule["spec"]["subsets"][1]["labels"]["rollouts-pod-template-hash"],
        "abc"
    );
    assert_eq!(
        rule["spec"]["subsets"][2]["labels"],
        json!({"app": "web-legacy"})
    );
}

#[test]
fn experiment_destinations_are_added_weighted_and_dropped() {
    let mut fixture = host_fixture();
    fixture.set_weight_with(10, &[("web-exp-b", 5), ("web-exp-a", 5)]);
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    assert_eq!(
        weights_of(&vs, 1),
        [
            ("web-stable.shop.svc.cluster.local".to_string(), 80),
            ("web-canary".to_string(), 10),
            ("web-exp-a".to_string(), 5),
            ("web-exp-b".to_string(), 5),
        ]
    );
    fixture.set_weight_with(20, &[("web-exp-a", 10)]);
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    assert_eq!(
        weights_of(&vs, 1),
        [
            ("web-stable.shop.svc.cluster.local".to_string(), 70),
            ("web-canary".to_string(), 20),
            ("web-exp-a".to_string(), 10),
        ]
    );
    fixture.set_weight(20);
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    assert_eq!(weights_of(&vs, 1).len(), 2);
}

#[test]
fn experiment_subsets_are_added_to_the_destination_rule() {
    let mut fixture = subset_fixture();
    fixture.act(&rollout_runner_api::plan::Action::UpdateTrafficHash {
        canary_hash: "abc".into(),
        stable_hash: "def".into(),
        additional: vec![rollout_runner_api::plan::WeightedDestination {
            service_name: "web-exp".into(),
            pod_template_hash: "xyz".into(),
            weight: 10,
        }],
    });
    let rule = fixture.object(Resource::DestinationRule, "shop", "web");
    assert_eq!(
        rule["spec"]["subsets"][3],
        json!({"name": "web-exp", "labels": {"rollouts-pod-template-hash": "xyz"}})
    );
}

#[test]
fn tls_and_tcp_routes_are_found_by_port_and_sni_hosts() {
    let rollout = host_level().replace(
        "virtualService: {name: web, routes: [primary]}",
        "virtualService:\n            name: web\n            tlsRoutes: [{port: 443, sniHosts: [b.example.com, a.example.com]}]\n            tcpRoutes: [{port: 5432}]",
    );
    let mut fixture = Fixture::new(&rollout);
    let split = |stable: i64, canary: i64| {
        json!([
            {"destination": {"host": "web-stable"}, "weight": stable},
            {"destination": {"host": "web-canary"}, "weight": canary},
        ])
    };
    fixture.put(
        Resource::VirtualService,
        "shop",
        "web",
        json!({
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"},
            "spec": {
                "tls": [
                    {"match": [{"port": 443, "sniHosts": ["other.example.com"]}], "route": split(100, 0)},
                    {"match": [{"port": 443, "sniHosts": ["a.example.com", "b.example.com"]}], "route": split(100, 0)},
                ],
                "tcp": [
                    {"match": [{"port": 5432}], "route": split(100, 0)},
                    {"match": [{"port": 6379}], "route": split(100, 0)},
                ],
            },
        }),
    );
    fixture.set_weight(40);
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    let weight = |kind: &str, route: usize, destination: usize| {
        vs["spec"][kind][route]["route"][destination]["weight"]
            .as_i64()
            .unwrap()
    };
    assert_eq!((weight("tls", 0, 0), weight("tls", 0, 1)), (100, 0));
    assert_eq!((weight("tls", 1, 0), weight("tls", 1, 1)), (60, 40));
    assert_eq!((weight("tcp", 0, 0), weight("tcp", 0, 1)), (60, 40));
    assert_eq!((weight("tcp", 1, 0), weight("tcp", 1, 1)), (100, 0));
}

#[test]
fn routes_that_do_not_match_the_rollout_are_errors() {
    let cases = [
        (
            host_level().replace("routes: [primary]", "routes: [missing]"),
            host_vs(),
            "istio: VirtualService `web`: HTTP Route 'missing' is not found in the defined Virtual Service.",
        ),
        (
            host_level().replace("routes: [primary]", "routes: [admin]"),
            host_vs(),
            "istio: VirtualService `web` has invalid HTTP routes. Error: Canary Service 'web-canary' not found in route",
        ),
        (
            host_level().replace("{name: web, routes: [primary]}", "{name: web}"),
            host_vs(),
            "istio: VirtualService `web`: spec.http[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes\nhint: name the route to weight under `routes`",
        ),
    ];
    for (rollout, vs, expected) in cases {
        let mut fixture = Fixture::new(&rollout);
        fixture.put(Resource::VirtualService, "shop", "web", vs);
        let error = fixture.try_set_weight(10).unwrap_err().to_string();
        assert_eq!(error, expected);
    }
    let mut fixture = Fixture::new(&host_level());
    let error = fixture.try_set_weight(10).unwrap_err().to_string();
    assert!(
        error.starts_with("VirtualService `shop/web` not found"),
        "{error}"
    );
}

#[test]
fn header_routes_go_on_top_to_the_canary_and_are_removed_at_the_end() {
    let mut fixture = host_fixture();
    fixture.set_weight(10);
    fixture.header_route(testing::header_route(
        "beta",
        &[
            ("X-Beta", "exact", "1"),
            ("User-Agent", "regex", ".*Mobile.*"),
        ],
    ));
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    insta::assert_yaml_snapshot!(vs["spec"]["http"]);
    assert_eq!(fixture.managed_routes(), ["beta"]);
    // Setting it again replaces it; weights leave it alone.
    assert!(
        fixture
            .header_route(testing::header_route(
                "beta",
                &[
                    ("X-Beta", "exact", "1"),
                    ("User-Agent", "regex", ".*Mobile.*")
                ],
            ))
            .is_empty()
    );
    fixture.set_weight(50);
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    assert_eq!(vs["spec"]["http"][0]["route"][0]["weight"], 100);
    fixture.remove_managed_routes();
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    assert_eq!(vs["spec"]["http"], host_vs_weighted(50));
    assert!(fixture.managed_routes().is_empty());
}

fn host_vs_weighted(canary: i64) -> Value {
    let mut vs = host_vs();
    vs["spec"]["http"][1]["route"][0]["weight"] = json!(100 - canary);
    vs["spec"]["http"][1]["route"][1]["weight"] = json!(canary);
    vs["spec"]["http"].clone()
}

#[test]
fn subset_level_header_routes_target_the_destination_rule_host_and_canary_subset() {
    let mut fixture = subset_fixture();
    fixture.header_route(testing::header_route("beta", &[("X-Beta", "prefix", "v2")]));
    let vs = fixture.object(Resource::VirtualService, "edge", "web-gateway");
    assert_eq!(
        vs["spec"]["http"][0],
        json!({
            "name": "beta",
            "match": [{"headers": {"X-Beta": {"prefix": "v2"}}}],
            "route": [{"destination": {"host": "web", "subset": "canary"}, "weight": 100}],
        })
    );
    assert_eq!(vs["spec"]["http"][1]["name"], "web");
}

#[test]
fn mirror_routes_copy_the_split_and_follow_later_weights() {
    let mut fixture = host_fixture();
    fixture.set_weight(20);
    fixture.header_route(testing::header_route("beta", &[("X-Beta", "exact", "1")]));
    fixture.mirror_route(testing::mirror_route(
        "mirror",
        Some("GET"),
        Some("/api"),
        &[("X-Debug", "exact", "on")],
        Some(25),
    ));
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    insta::assert_yaml_snapshot!(vs["spec"]["http"]);
    let names: Vec<&str> = vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // managedRoutes order (mirror before beta), then the user's routes.
    assert_eq!(names, ["mirror", "beta", "admin", "primary"]);

    fixture.set_weight(60);
    let vs = fixture.object(Resource::VirtualService, "shop", "web");
    assert_eq!(
        weights_of(&vs, 0),
        [
            ("web-stable.shop.svc.cluster.local".to_string(), 40),
            ("web-canary".to_string(), 60)
        ]
    );
    let mut removed = testing::mirror_route("mirror", None, None, &[], None);
    removed.r#match = None;
    fixture.mirror_route(removed);
    assert_eq!(fixture.managed_routes(), ["beta"]);
}
