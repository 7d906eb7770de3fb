//! End to end, one test per traffic router: `rollout-runner apply --wait` drives a canary on
//! the real control plane (with the upstream CRDs of Istio, Gateway API, SMI and Traefik), and
//! the test reads the router's objects at every pause, after the promotion, after a second
//! apply of the same manifests and after an abort.
//!
//! The API server validates every object the runner writes against the upstream schema, so a
//! run that gets through its steps also proves that what the routers write is accepted.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use rollout_runner::crd::{POD_TEMPLATE_HASH_LABEL, Rollout};
use rollout_runner::operate::Operation;
use serde_json::Value;

use crate::support::cluster::{self, TestNamespace};
use crate::support::runner::{
    Finished, Manifests, Running, SERVICES, apply_wait, command, finish, operate, selected_hash,
    wait_rollout,
};

/// A traffic object the test reads: `apiVersion`, kind, plural and name.
#[derive(Clone, Copy)]
struct Object {
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    name: &'static str,
}

/// What the router's objects say: the canary and stable weights, the managed routes present
/// and, for routers that point subsets at pod hashes, the `(canary, stable)` hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Routing {
    canary: i64,
    stable: i64,
    routes: Vec<String>,
    hashes: Option<(String, String)>,
}

/// One router under test.
struct Case {
    /// Namespace prefix.
    prefix: &'static str,
    /// The router's objects as the user writes them (empty for routers that create theirs).
    objects: &'static str,
    /// The `trafficRouting` block, indented for `strategy.canary`.
    routing: &'static str,
    /// Steps, indented for `strategy.canary.steps`; every stop is an indefinite pause.
    steps: &'static str,
    /// At each pause (its step index), the canary weight and the managed routes expected.
    stops: &'static [(i32, i64, &'static [&'static str])],
    /// The objects to read.
    read: &'static [Object],
    /// Turns the objects (in `read` order, `Null` when missing) into what they route.
    routing_of: fn(&[Value]) -> Routing,
}

fn rollout_yaml(image: &str, case: &Case) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 2
  revisionHistoryLimit: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "{image}", ports: [{{name: http, containerPort: 8080}}]}}]
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      abortScaleDownDelaySeconds: 0
      trafficRouting:
{routing}
      steps:
{steps}
"#,
        routing = case.routing,
        steps = case.steps,
    )
}

fn manifests(image: &str, case: &Case) -> Manifests {
    let rollout = rollout_yaml(image, case);
    let mut files = vec![
        ("services.yaml", SERVICES),
        ("rollout.yaml", rollout.as_str()),
    ];
    if !case.objects.is_empty() {
        files.push(("traffic.yaml", case.objects));
    }
    Manifests::new(&files)
}

async fn read(client: &Client, ns: &str, object: &Object) -> Value {
    let (group, version) = object
        .api_version
        .split_once('/')
        .unwrap_or(("", object.api_version));
    let gvk = GroupVersionKind::gvk(group, version, object.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, object.plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    match api.get_opt(object.name).await.unwrap() {
        Some(found) => serde_json::to_value(found).unwrap(),
        None => Value::Null,
    }
}

async fn read_all(client: &Client, ns: &str, case: &Case) -> Vec<Value> {
    let mut out = Vec::new();
    for object in case.read {
        out.push(read(client, ns, object).await);
    }
    out
}

async fn routing(client: &Client, ns: &str, case: &Case) -> Routing {
    (case.routing_of)(&read_all(client, ns, case).await)
}

fn resource_versions(objects: &[Value]) -> Vec<Value> {
    objects
        .iter()
        .map(|o| {
            o.pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null)
        })
        .collect()
}

/// Waits (briefly: the runner sets traffic before it records the pause) until the objects
/// route as `expected` says; panics with what they hold otherwise.
async fn assert_routing(
    client: &Client,
    ns: &str,
    case: &Case,
    what: &str,
    expected: impl Fn(&Routing) -> bool,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let now = routing(client, ns, case).await;
        if expected(&now) {
            return;
        }
        if std::time::Instant::now() > deadline {
            let objects = read_all(client, ns, case).await;
            panic!(
                "{}: {what}: the traffic objects route {now:?}\n{}",
                case.prefix,
                serde_json::to_string_pretty(&objects).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status(client: &Client, ns: &str) -> rollout_runner::crd::RolloutStatus {
    Api::<Rollout>::namespaced(client.clone(), ns)
        .get("web")
        .await
        .unwrap()
        .status
        .unwrap()
}

fn assert_exit(case: &Case, run: &Finished, code: i32, what: &str) {
    assert_eq!(
        run.code,
        Some(code),
        "{}: {what}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        case.prefix,
        run.stdout,
        run.stderr
    );
}

/// Waits for the pause at `index` of a release that is not aborted.
async fn paused_at(client: &Client, ns: &str, index: i32) -> Rollout {
    wait_rollout(
        client,
        ns,
        "web",
        &format!("a pause at step {index}"),
        |ro| {
            ro.status.as_ref().is_some_and(|s| {
                s.current_step_index == Some(index) && !s.pause_conditions.is_empty() && !s.abort
            })
        },
    )
    .await
}

/// `apply` (without `--wait`) of the manifests being released, mid-release: the weights,
/// subset hashes and managed routes the routers set stay, and no traffic object is written.
async fn reapply_changes_no_traffic_object(
    client: &Client,
    ns: &str,
    case: &Case,
    manifests: &Manifests,
) {
    let before = read_all(client, ns, case).await;
    let dir = manifests.path().to_str().unwrap();
    let run = finish(command(ns, &["apply", dir])).await;
    assert_exit(
        case,
        &run,
        0,
        "applying the release's manifests again mid-release",
    );
    let after = read_all(client, ns, case).await;
    assert_eq!(
        resource_versions(&before),
        resource_versions(&after),
        "{}: a traffic object was written\n{}",
        case.prefix,
        run.stdout
    );
}

/// The traffic writes of each weight change the runner logged: `(action, objects written)`,
/// one entry per change (a weight planned again unchanged writes nothing and logs nothing).
fn weight_change_writes(stderr: &str) -> Vec<(String, usize)> {
    let mut changes: Vec<(String, usize)> = Vec::new();
    for line in stderr
        .lines()
        .filter(|l| l.contains("writing a traffic object"))
    {
        let Some((_, rest)) = line.split_once("action=") else {
            continue;
        };
        let action = rest.split(" object=").next().unwrap_or(rest).to_string();
        if !action.starts_with("set traffic weight") {
            continue;
        }
        match changes.last_mut() {
            Some((last, count)) if *last == action => *count += 1,
            _ => changes.push((action, 1)),
        }
    }
    changes
}

/// The whole story for one router: deploy, a release through every pause, promotion, the
/// same apply again, then a release aborted at its first pause.
async fn drive(case: Case) {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, case.prefix).await;
    let ns = ns.name();

    // Version 1: no canary, everything on the stable Service.
    let first = finish(apply_wait(ns, manifests("web:1", &case).path(), &[])).await;
    assert_exit(&case, &first, 0, "the first deploy");
    let v1 = status(&client, ns).await.stable_rs;

    // Version 2 through every stop.
    let v2 = manifests("web:2", &case);
    let mut release = apply_wait(ns, v2.path(), &[]);
    release.env(
        "ROLLOUT_RUNNER_LOG",
        "rollout_runner::driver=debug,rollout_runner_traffic=debug",
    );
    let running = Running::start(release);
    for (index, weight, routes) in case.stops {
        let paused = paused_at(&client, ns, *index).await;
        let new = paused.status.unwrap().current_pod_hash;
        let what = format!("paused at step {index}");
        assert_routing(&client, ns, &case, &what, |r| {
            r.canary == *weight
                && r.stable == 100 - weight
                && r.routes == *routes
                && r.hashes
                    .as_ref()
                    .is_none_or(|h| *h == (new.clone(), v1.clone()))
        })
        .await;
        if (*index, *weight, *routes) == *case.stops.last().unwrap() {
            reapply_changes_no_traffic_object(&client, ns, &case, &v2).await;
        }
        operate(&client, ns, "web", &Operation::Promote).await;
    }
    let promoted = running.finish().await;
    assert_exit(&case, &promoted, 0, "the promoted release");
    let writes = weight_change_writes(&promoted.stderr);
    // 0 -> each stop's weight -> 100 after the steps -> 0 on promotion, at least.
    assert!(
        writes.len() > case.stops.len(),
        "{}: {writes:?}",
        case.prefix
    );
    assert!(
        writes.iter().all(|(_, objects)| *objects == 1),
        "{}: one write per weight change: {writes:?}",
        case.prefix
    );
    let v2_hash = status(&client, ns).await.stable_rs;
    assert_ne!(v2_hash, v1);
    assert_routing(&client, ns, &case, "after the promotion", |r| {
        r.canary == 0
            && r.stable == 100
            && r.routes.is_empty()
            && r.hashes
                .as_ref()
                .is_none_or(|h| *h == (v2_hash.clone(), v2_hash.clone()))
    })
    .await;
    for service in ["web-stable", "web-canary"] {
        assert_eq!(
            selected_hash(&client, ns, service).await,
            v2_hash,
            "{service}"
        );
    }

    // The same manifests again: no write, to a traffic object or a Service.
    let before = resource_versions(&read_all(&client, ns, &case).await);
    let again = finish(apply_wait(ns, v2.path(), &[])).await;
    assert_exit(&case, &again, 0, "the same release again");
    assert!(
        !again.stdout.contains(" configured"),
        "{}: {}",
        case.prefix,
        again.stdout
    );
    let after = resource_versions(&read_all(&client, ns, &case).await);
    assert_eq!(
        before, after,
        "{}: a second apply writes no traffic object",
        case.prefix
    );

    // Version 3, aborted at its first stop: all traffic back to the stable version.
    let v3 = manifests("web:3", &case);
    let running = Running::start(apply_wait(ns, v3.path(), &[]));
    let (index, weight, _) = case.stops[0];
    paused_at(&client, ns, index).await;
    assert_routing(&client, ns, &case, "at the first stop of version 3", |r| {
        r.canary == weight
    })
    .await;
    operate(&client, ns, "web", &Operation::Abort).await;
    let aborted = running.finish().await;
    assert_exit(&case, &aborted, 1, "the aborted release");
    let after_abort = status(&client, ns).await;
    assert!(after_abort.abort);
    assert_eq!(after_abort.stable_rs, v2_hash);
    assert_routing(&client, ns, &case, "after the abort", |r| {
        r.canary == 0 && r.stable == 100 && r.routes.is_empty()
    })
    .await;
    for service in ["web-stable", "web-canary"] {
        assert_eq!(
            selected_hash(&client, ns, service).await,
            v2_hash,
            "{service} after the abort"
        );
    }
}

fn int(value: &Value) -> i64 {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn names(items: Option<&Value>, managed: &[&str]) -> Vec<String> {
    items
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("name").and_then(Value::as_str))
        .filter(|name| managed.contains(name))
        .map(str::to_string)
        .collect()
}

// NGINX: a canary Ingress cloned from the stable one, with weight and header annotations.

const NGINX_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  ingressClassName: nginx
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web-stable, port: {name: http}}}
"#;

fn nginx_routing(objects: &[Value]) -> Routing {
    let canary = &objects[0];
    let annotation = |key: &str| {
        canary
            .pointer(&format!(
                "/metadata/annotations/nginx.ingress.kubernetes.io~1{key}"
            ))
            .cloned()
    };
    let weight = if canary.is_null() {
        0
    } else {
        assert_eq!(annotation("canary"), Some(Value::from("true")));
        let backend = canary.pointer("/spec/rules/0/http/paths/0/backend/service/name");
        assert_eq!(backend, Some(&Value::from("web-canary")), "{canary}");
        assert_eq!(
            canary.pointer("/spec/tls/0/secretName"),
            Some(&Value::from("shop-tls"))
        );
        annotation("canary-weight").map_or(0, |w| int(&w))
    };
    let routes = match (
        annotation("canary-by-header"),
        annotation("canary-by-header-value"),
    ) {
        (Some(h), Some(v)) if h == "X-Beta" && v == "1" => vec!["beta".to_string()],
        (None, None) => Vec::new(),
        other => panic!("unexpected header annotations {other:?}"),
    };
    Routing {
        canary: weight,
        stable: 100 - weight,
        routes,
        hashes: None,
    }
}

#[tokio::test]
async fn e2e_traffic_nginx_weights_and_header_route() {
    drive(Case {
        prefix: "traffic-nginx",
        objects: NGINX_INGRESS,
        routing: "        managedRoutes: [{name: beta}]\n        nginx: {stableIngress: web}",
        steps: r#"
        - setWeight: 20
        - pause: {}
        - setHeaderRoute: {name: beta, match: [{headerName: X-Beta, headerValue: {exact: "1"}}]}
        - pause: {}
        - setWeight: 60
        - pause: {}"#,
        stops: &[(1, 20, &[]), (3, 20, &["beta"]), (5, 60, &["beta"])],
        read: &[Object {
            api_version: "networking.k8s.io/v1",
            kind: "Ingress",
            plural: "ingresses",
            name: "web-web-canary",
        }],
        routing_of: nginx_routing,
    })
    .await;
}

// Istio: a subset-level split (DestinationRule subsets follow the pod hashes) with header and
// mirror routes on top of the weighted route.

const ISTIO_OBJECTS: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
    - name: primary
      route:
        - destination: {host: web, subset: stable, port: {number: 80}}
          weight: 100
        - destination: {host: web, subset: canary, port: {number: 80}}
          weight: 0
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
  subsets:
    - name: stable
      labels: {app: web}
    - name: canary
      labels: {app: web}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

fn istio_routing(objects: &[Value]) -> Routing {
    let (vs, dr) = (&objects[0], &objects[1]);
    let http = vs.pointer("/spec/http").and_then(Value::as_array).unwrap();
    let primary = http
        .iter()
        .find(|r| r["name"] == "primary")
        .unwrap_or_else(|| panic!("no primary route: {vs}"));
    let weight = |subset: &str| {
        primary["route"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["destination"]["subset"] == subset)
            .map_or(0, |d| int(&d["weight"]))
    };
    // Managed routes are on top, in managedRoutes order.
    let routes = names(vs.pointer("/spec/http"), &["header", "mirror"]);
    let on_top: Vec<&str> = http
        .iter()
        .take(routes.len())
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(on_top, routes, "managed routes precede the others: {vs}");
    let hash = |subset: &str| {
        dr.pointer("/spec/subsets")
            .and_then(Value::as_array)
            .and_then(|s| s.iter().find(|s| s["name"] == subset))
            .and_then(|s| s["labels"][POD_TEMPLATE_HASH_LABEL].as_str())
            .unwrap_or_default()
            .to_string()
    };
    Routing {
        canary: weight("canary"),
        stable: weight("stable"),
        routes,
        hashes: Some((hash("canary"), hash("stable"))),
    }
}

#[tokio::test]
async fn e2e_traffic_istio_subsets_header_and_mirror_routes() {
    drive(Case {
        prefix: "traffic-istio",
        objects: ISTIO_OBJECTS,
        routing: r#"        managedRoutes: [{name: header}, {name: mirror}]
        istio:
          virtualService: {name: web, routes: [primary]}
          destinationRule: {name: web, canarySubsetName: canary, stableSubsetName: stable}"#,
        steps: r#"
        - setWeight: 10
        - pause: {}
        - setHeaderRoute: {name: header, match: [{headerName: X-Beta, headerValue: {exact: "1"}}]}
        - setMirrorRoute: {name: mirror, percentage: 50, match: [{method: {exact: GET}}]}
        - pause: {}
        - setWeight: 50
        - pause: {}"#,
        stops: &[
            (1, 10, &[]),
            (4, 10, &["header", "mirror"]),
            (6, 50, &["header", "mirror"]),
        ],
        read: &[
            Object {
                api_version: "networking.istio.io/v1",
                kind: "VirtualService",
                plural: "virtualservices",
                name: "web",
            },
            Object {
                api_version: "networking.istio.io/v1",
                kind: "DestinationRule",
                plural: "destinationrules",
                name: "web",
            },
        ],
        routing_of: istio_routing,
    })
    .await;
}

// SMI: a TrafficSplit the runner creates and owns.

fn smi_routing(objects: &[Value]) -> Routing {
    let split = &objects[0];
    if split.is_null() {
        return Routing {
            canary: 0,
            stable: 100,
            routes: Vec::new(),
            hashes: None,
        };
    }
    assert_eq!(
        split.pointer("/spec/service"),
        Some(&Value::from("web-stable")),
        "{split}"
    );
    assert_eq!(
        split.pointer("/metadata/ownerReferences/0/kind"),
        Some(&Value::from("Rollout")),
        "{split}"
    );
    let weight = |service: &str| {
        split["spec"]["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["service"] == service)
            .map_or(0, |b| int(&b["weight"]))
    };
    Routing {
        canary: weight("web-canary"),
        stable: weight("web-stable"),
        routes: Vec::new(),
        hashes: None,
    }
}

#[tokio::test]
async fn e2e_traffic_smi_traffic_split() {
    drive(Case {
        prefix: "traffic-smi",
        objects: "",
        routing: "        smi: {trafficSplitName: web}",
        steps: r#"
        - setWeight: 5
        - pause: {}
        - setWeight: 50
        - pause: {}"#,
        stops: &[(1, 5, &[]), (3, 50, &[])],
        read: &[Object {
            api_version: "split.smi-spec.io/v1alpha3",
            kind: "TrafficSplit",
            plural: "trafficsplits",
            name: "web",
        }],
        routing_of: smi_routing,
    })
    .await;
}

// Gateway API: an HTTPRoute, configured natively and in the Argo plugin's form.

const HTTP_ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: shop-gateway}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs:
        - {name: web-stable, port: 80, weight: 100}
        - {name: web-canary, port: 80, weight: 0}
"#;

fn gateway_routing(objects: &[Value]) -> Routing {
    let route = &objects[0];
    let rules = route
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .unwrap();
    let named = |rule: &Value, name: &str| rule.get("name").and_then(Value::as_str) == Some(name);
    let weights = |rule: &Value| {
        let weight = |service: &str| {
            rule["backendRefs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["name"] == service)
                .map_or(0, |b| int(&b["weight"]))
        };
        (weight("web-canary"), weight("web-stable"))
    };
    let split = rules
        .iter()
        .find(|r| r.get("name").is_none())
        .unwrap_or_else(|| panic!("no split rule: {route}"));
    for rule in rules {
        if named(rule, "beta") {
            // The header rule sends everything to the canary.
            assert_eq!(rule["backendRefs"][0]["name"], "web-canary", "{route}");
            assert_eq!(
                rule["matches"][0]["headers"][0]["name"], "X-Beta",
                "{route}"
            );
        } else if named(rule, "mirror") {
            // The mirror rule keeps the split and mirrors to the canary.
            assert_eq!(weights(rule), weights(split), "{route}");
            let filter = &rule["filters"][0];
            assert_eq!(filter["type"], "RequestMirror", "{route}");
            assert_eq!(
                filter["requestMirror"]["backendRef"]["name"], "web-canary",
                "{route}"
            );
        }
    }
    let (canary, stable) = weights(split);
    Routing {
        canary,
        stable,
        routes: names(route.pointer("/spec/rules"), &["beta", "mirror"]),
        hashes: None,
    }
}

const GATEWAY_STEPS: &str = r#"
        - setWeight: 30
        - pause: {}
        - setHeaderRoute: {name: beta, match: [{headerName: X-Beta, headerValue: {exact: "1"}}]}
        - setMirrorRoute: {name: mirror, percentage: 50, match: [{method: {exact: GET}}]}
        - pause: {}
        - setWeight: 70
        - pause: {}"#;

const GATEWAY_STOPS: &[(i32, i64, &[&str])] = &[
    (1, 30, &[]),
    (4, 30, &["beta", "mirror"]),
    (6, 70, &["beta", "mirror"]),
];

const HTTP_ROUTE_OBJECT: Object = Object {
    api_version: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    plural: "httproutes",
    name: "web",
};

#[tokio::test]
async fn e2e_traffic_gateway_api_native_http_route() {
    drive(Case {
        prefix: "traffic-gateway",
        objects: HTTP_ROUTE,
        routing: "        managedRoutes: [{name: beta}, {name: mirror}]\n        gatewayApi: {httpRoute: web}",
        steps: GATEWAY_STEPS,
        stops: GATEWAY_STOPS,
        read: &[HTTP_ROUTE_OBJECT],
        routing_of: gateway_routing,
    })
    .await;
}

#[tokio::test]
async fn e2e_traffic_gateway_api_argo_plugin_config() {
    drive(Case {
        prefix: "traffic-gateway-plugin",
        objects: HTTP_ROUTE,
        routing: r#"        managedRoutes: [{name: beta}, {name: mirror}]
        plugins:
          argoproj-labs/gatewayAPI:
            httpRoute: web"#,
        steps: GATEWAY_STEPS,
        stops: GATEWAY_STOPS,
        read: &[HTTP_ROUTE_OBJECT],
        routing_of: gateway_routing,
    })
    .await;
}

// Traefik: the weighted services of a TraefikService.

const TRAEFIK_SERVICE: &str = r#"
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: web}
spec:
  weighted:
    services:
      - {name: web-stable, port: 80, weight: 100}
      - {name: web-canary, port: 80, weight: 0}
"#;

fn traefik_routing(objects: &[Value]) -> Routing {
    let service = &objects[0];
    let weight = |name: &str| {
        service
            .pointer("/spec/weighted/services")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map_or(0, |s| int(&s["weight"]))
    };
    Routing {
        canary: weight("web-canary"),
        stable: weight("web-stable"),
        routes: Vec::new(),
        hashes: None,
    }
}

#[tokio::test]
async fn e2e_traffic_traefik_weighted_service() {
    drive(Case {
        prefix: "traffic-traefik",
        objects: TRAEFIK_SERVICE,
        routing: "        traefik: {weightedTraefikServiceName: web}",
        steps: r#"
        - setWeight: 25
        - pause: {}
        - setWeight: 75
        - pause: {}"#,
        stops: &[(1, 25, &[]), (3, 75, &[])],
        read: &[Object {
            api_version: "traefik.io/v1alpha1",
            kind: "TraefikService",
            plural: "traefikservices",
            name: "web",
        }],
        routing_of: traefik_routing,
    })
    .await;
}

// ALB: the forward action annotation on the user's Ingress. Only what the runner writes is
// checked; no AWS Load Balancer Controller reads it here, so weights are not verified.

const ALB_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations: {alb.ingress.kubernetes.io/scheme: internet-facing}
spec:
  ingressClassName: alb
  rules:
    - http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web-stable, port: {name: use-annotation}}}
"#;

fn alb_routing(objects: &[Value]) -> Routing {
    let ingress = &objects[0];
    let Some(action) = ingress
        .pointer("/metadata/annotations/alb.ingress.kubernetes.io~1actions.web-stable")
        .and_then(Value::as_str)
    else {
        return Routing {
            canary: 0,
            stable: 100,
            routes: Vec::new(),
            hashes: None,
        };
    };
    let action: Value = serde_json::from_str(action).unwrap();
    assert_eq!(action["Type"], "forward", "{action}");
    let weight = |service: &str| {
        action["ForwardConfig"]["TargetGroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["ServiceName"] == service)
            .map_or(0, |g| int(&g["Weight"]))
    };
    Routing {
        canary: weight("web-canary"),
        stable: weight("web-stable"),
        routes: Vec::new(),
        hashes: None,
    }
}

#[tokio::test]
async fn e2e_traffic_alb_forward_action_annotation() {
    drive(Case {
        prefix: "traffic-alb",
        objects: ALB_INGRESS,
        routing: "        alb: {ingress: web, servicePort: 80}",
        steps: r#"
        - setWeight: 10
        - pause: {}
        - setWeight: 40
        - pause: {}"#,
        stops: &[(1, 10, &[]), (3, 40, &[])],
        read: &[Object {
            api_version: "networking.k8s.io/v1",
            kind: "Ingress",
            plural: "ingresses",
            name: "web",
        }],
        routing_of: alb_routing,
    })
    .await;
}

// The examples, as Argo's documentation writes them: applied unchanged, then a new image
// stops at the first pause with the documented weight.

/// `(example, the object holding the split, its (canary, stable) weights at the first pause)`.
type ExampleCheck = (&'static str, Object, fn(&Value) -> (i64, i64));

fn backend_weights(items: &Value, key: &str, canary: &str, stable: &str) -> (i64, i64) {
    let weight = |name: &str| {
        items
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b[key] == name)
            .map_or(0, |b| int(&b["weight"]))
    };
    (weight(canary), weight(stable))
}

const EXAMPLES: [ExampleCheck; 4] = [
    (
        "canary-nginx",
        Object {
            api_version: "networking.k8s.io/v1",
            kind: "Ingress",
            plural: "ingresses",
            name: "rollouts-demo-rollouts-demo-stable-canary",
        },
        |ingress| {
            let weight = int(
                &ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"],
            );
            (weight, 100 - weight)
        },
    ),
    (
        "canary-istio",
        Object {
            api_version: "networking.istio.io/v1",
            kind: "VirtualService",
            plural: "virtualservices",
            name: "rollouts-demo-vsvc",
        },
        |vs| {
            let route: Vec<Value> = vs["spec"]["http"][0]["route"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| serde_json::json!({"host": d["destination"]["host"], "weight": d["weight"]}))
                .collect();
            backend_weights(
                &Value::from(route),
                "host",
                "rollouts-demo-canary",
                "rollouts-demo-stable",
            )
        },
    ),
    (
        "canary-smi",
        Object {
            api_version: "split.smi-spec.io/v1alpha3",
            kind: "TrafficSplit",
            plural: "trafficsplits",
            name: "rollouts-demo-traffic-split",
        },
        |split| {
            backend_weights(
                &split["spec"]["backends"],
                "service",
                "rollouts-demo-canary",
                "rollouts-demo-stable",
            )
        },
    ),
    (
        "canary-gateway-api",
        Object {
            api_version: "gateway.networking.k8s.io/v1",
            kind: "HTTPRoute",
            plural: "httproutes",
            name: "argo-rollouts-http-route",
        },
        |route| {
            backend_weights(
                &route["spec"]["rules"][0]["backendRefs"],
                "name",
                "argo-rollouts-canary-service",
                "argo-rollouts-stable-service",
            )
        },
    ),
];

fn example_files(example: &str, image: &str) -> Manifests {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(example);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && name != "scenario.yaml" {
            let text = std::fs::read_to_string(&path).unwrap();
            files.push((name, text.replace("argoproj/rollouts-demo:blue", image)));
        }
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    Manifests::new(&files)
}

#[tokio::test]
async fn e2e_traffic_examples_work_unchanged() {
    let Some(client) = cluster::client().await else {
        return;
    };
    for (example, object, weights) in EXAMPLES {
        let ns = TestNamespace::create(&client, example).await;
        let ns = ns.name();
        let first = finish(apply_wait(
            ns,
            example_files(example, "argoproj/rollouts-demo:blue").path(),
            &[],
        ))
        .await;
        assert_eq!(
            first.code,
            Some(0),
            "{example}: {}\n{}",
            first.stdout,
            first.stderr
        );
        let next = example_files(example, "argoproj/rollouts-demo:yellow");
        let paused = finish(apply_wait(ns, next.path(), &["--success-on-pause"])).await;
        assert_eq!(
            paused.code,
            Some(0),
            "{example}: {}\n{}",
            paused.stdout,
            paused.stderr
        );
        let split = read(&client, ns, &object).await;
        let expected = if example == "canary-gateway-api" {
            (30, 70)
        } else {
            (5, 95)
        };
        assert_eq!(weights(&split), expected, "{example}: {split}");
    }
}
