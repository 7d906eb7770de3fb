use serde_json::{Value, json};

use crate::Resource;
use crate::testing::{self, Fixture};

/// Argo's plugin form, as Argo users write it.
fn plugin_form() -> String {
    testing::rollout(
        r#"        managedRoutes: [{name: beta}, {name: mirror}]
        plugins:
          argoproj-labs/gatewayAPI:
            httpRoute: web
            namespace: edge
"#,
    )
}

fn native_form() -> String {
    testing::rollout(
        r#"        managedRoutes: [{name: beta}]
        gatewayApi:
          httpRoutes: [{name: web, useHeaderRoutes: true}, {name: web-internal}]
          grpcRoute: web-grpc
"#,
    )
}

fn backend(name: &str, weight: i64) -> Value {
    json!({"group": "", "kind": "Service", "name": name, "port": 80, "weight": weight})
}

fn http_route(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "5"},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                 "backendRefs": [backend("web-stable", 1)]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                              "queryParams": [{"type": "Exact", "name": "v", "value": "1"}]}],
                 "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "X-Via", "value": "gw"}]}}],
                 "backendRefs": [backend("web-stable", 100), backend("web-canary", 0)]},
            ],
        },
    })
}

fn grpc_route(namespace: &str, name: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "5"},
        "spec": {"rules": [
            {"matches": [{"method": {"type": "Exact", "service": "shop.Cart"}}],
             "backendRefs": [backend("web-stable", 100), backend("web-canary", 0)]},
        ]},
    })
}

fn split(route: &Value) -> Vec<(String, i64)> {
    route["spec"]["rules"][1]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["weight"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn plugin_fixture() -> Fixture {
    let mut fixture = Fixture::new(&plugin_form());
    fixture.put(
        Resource::HttpRoute,
        "edge",
        "web",
        http_route("edge", "web"),
    );
    fixture
}

#[test]
fn the_plugin_form_weights_the_split_rule_and_leaves_stable_only_rules() {
    let mut fixture = plugin_fixture();
    assert_eq!(
        fixture.set_weight(100),
        [testing::patch(
            "HTTPRoute edge/web",
            json!({"metadata": {"resourceVersion": "5"}, "spec": {"rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                 "backendRefs": [backend("web-stable", 1)]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                              "queryParams": [{"type": "Exact", "name": "v", "value": "1"}]}],
                 "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "X-Via", "value": "gw"}]}}],
                 "backendRefs": [backend("web-stable", 0), backend("web-canary", 100)]},
            ]}})
        )]
    );
    assert!(fixture.set_weight(100).is_empty());
}

#[test]
fn the_native_form_weights_http_and_grpc_routes() {
    let mut fixture = Fixture::new(&native_form());
    fixture.put(
        Resource::HttpRoute,
        "shop",
        "web",
        http_route("shop", "web"),
    );
    fixture.put(
        Resource::HttpRoute,
        "shop",
        "web-internal",
        http_route("shop", "web-internal"),
    );
    fixture.put(
        Resource::GrpcRoute,
        "shop",
        "web-grpc",
        grpc_route("shop", "web-grpc"),
    );
    let writes = fixture.set_weight(40);
    let names: Vec<&str> = writes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "HTTPRoute shop/web",
            "HTTPRoute shop/web-internal",
            "GRPCRoute shop/web-grpc"
        ]
    );
    let grpc = fixture.object(Resource::GrpcRoute, "shop", "web-grpc");
    assert_eq!(
        grpc["spec"]["rules"][0]["backendRefs"],
        json!([backend("web-stable", 60), backend("web-canary", 40)])
    );

    // Header routes go only where useHeaderRoutes is set.
    fixture.header_route(testing::header_route("beta", &[("X-Beta", "exact", "1")]));
    let rules = |name: &str| {
        fixture.object(Resource::HttpRoute, "shop", name)["spec"]["rules"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!((rules("web"), rules("web-internal")), (3, 2));
}

#[test]
fn experiment_backends_join_the_split_and_leave_with_it() {
    let mut fixture = plugin_fixture();
    fixture.set_weight_with(10, &[("web-exp", 20)]);
    let route = fixture.object(Resource::HttpRoute, "edge", "web");
    assert_eq!(
        split(&route),
        [
            ("web-stable".to_string(), 70),
            ("web-canary".to_string(), 10),
            ("web-exp".to_string(), 20)
        ]
    );
    assert_eq!(route["spec"]["rules"][1]["backendRefs"][2]["port"], 80);
    fixture.set_weight(10);
    let route = fixture.object(Resource::HttpRoute, "edge", "web");
    assert_eq!(
        split(&route),
        [
            ("web-stable".to_string(), 90),
            ("web-canary".to_string(), 10)
        ]
    );
}

#[test]
fn header_routes_are_named_rules_sending_matches_to_the_canary() {
    let mut fixture = plugin_fixture();
    fixture.set_weight(0);
    fixture.header_route(testing::header_route(
        "beta",
        &[
            ("X-Beta", "exact", "1"),
            ("User-Agent", "prefix", "Mobile/"),
        ],
    ));
    let route = fixture.object(Resource::HttpRoute, "edge", "web");
    insta::assert_yaml_snapshot!(route["spec"]["rules"][2]);
    assert_eq!(fixture.managed_routes(), ["beta"]);
    // Weights do not touch it (it has the canary only), not even at 0.
    fixture.set_weight(0);
    let route = fixture.object(Resource::HttpRoute, "edge", "web");
    assert_eq!(route["spec"]["rules"][2]["backendRefs"][0]["weight"], 1);
    // Setting it again writes nothing; removing it restores the route.
    assert!(
        fixture
            .header_route(testing::header_route(
                "beta",
                &[
                    ("X-Beta", "exact", "1"),
                    ("User-Agent", "prefix", "Mobile/")
                ],
            ))
            .is_empty()
    );
    fixture.header_route(testing::remove_header_route("beta"));
    let route = fixture.object(Resource::HttpRoute, "edge", "web");
    assert_eq!(route["spec"]["rules"].as_array().unwrap().len(), 2);
}

#[test]
fn mirror_routes_keep_the_split_and_mirror_to_the_canary() {
    let mut fixture = plugin_fixture();
    fixture.set_weight(20);
    fixture.mirror_route(testing::mirror_route(
        "mirror",
        Some("post"),
        Some("/api"),
        &[("X-Debug", "regex", "on|yes")],
        Some(30),
    ));
    let route = fixture.object(Resource::HttpRoute, "edge", "web");
    insta::assert_yaml_snapshot!(route["spec"]["rules"][2]);
    fixture.set_weight(50);
    let route = fixture.object(Resource::HttpRoute, "edge", "web");
    let weights: Vec<i64> = route["spec"]["rules"][2]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["weight"].as_i64().unwrap())
        .collect();
    assert_eq!(weights, [50, 50], "the mirror rule follows the split");
    assert_eq!(fixture.managed_routes(), ["mirror"]);
    fixture.remove_managed_routes();
    assert!(fixture.managed_routes().is_empty());
}

#[test]
fn what_gateway_api_cannot_express_is_an_error() {
    let mut fixture = plugin_fixture();
    let mut mirror = testing::mirror_route("mirror", None, None, &[], None);
    mirror.r#match.as_mut().unwrap()[0].method = Some(rollout_runner_api::crd::StringMatch {
        prefix: "GE".into(),
        ..Default::default()
    });
    let error = fixture.try_mirror_route(mirror).unwrap_err().to_string();
    assert!(
        error.contains("can match only an exact HTTP method"),
        "{error}"
    );

    let error = fixture
        .try_header_route(testing::header_route(
            "Beta_Route",
            &[("X-Beta", "exact", "1")],
        ))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("not a valid Gateway API rule name"),
        "{error}"
    );

    let mut fixture =
        Fixture::new(&plugin_form().replace("canaryService: web-canary", "canaryService: other"));
    fixture.put(
        Resource::HttpRoute,
        "edge",
        "web",
        http_route("edge", "web"),
    );
    let error = fixture.try_set_weight(10).unwrap_err().to_string();
    assert_eq!(
        error,
        "gatewayAPI: HTTPRoute `web` has no rule with backendRefs to both `web-stable` and `other`\nhint: give a rule of the route the stable and the canary Service as backendRefs"
    );
}
