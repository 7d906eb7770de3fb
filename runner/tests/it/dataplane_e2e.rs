//! Where requests really go while rollout-runner releases: Traefik reads the test control
//! plane (its CRD, Ingress and Gateway API providers), the test HTTP server runs as the pods of
//! the releases and answers with its version and pod name, and the tests count.
//!
//! - Measured split: at every pause of a canary, `SPLIT_REQUESTS` requests through Traefik;
//!   the canary's share must be within the binomial tolerance of the step's weight
//!   ([`dataplane::BINOMIAL_Z`]: 99.99 % two-sided per check). Header routes (Gateway API):
//!   every matching request reaches the canary, non-matching ones follow the split.
//! - Zero failed requests: a steady stream (through Traefik, or for a basic canary without a
//!   router, a client that picks ready endpoints from the Service's EndpointSlices) runs during
//!   a canary promotion, an abort, a blue-green switch and the scale-down delays after them;
//!   failed requests and requests that reached a pod after it stopped being Ready are counted
//!   and must not exceed the thresholds below (the figures are in docs/benchmarks.md).
//!
//! The runner's part is the order: through a router, traffic moves first and pods go after the
//! scale-down delay (`scaleDownDelaySeconds`, `abortScaleDownDelaySeconds`), which is longer
//! than Traefik's propagation (a watch event, then its providers' 2 s throttle), so no request
//! reaches a pod that is not Ready. With an abort delay of 0, requests did reach exited canary
//! pods (502s). The servers also keep serving for `DRAIN` after SIGTERM (failing readiness), as
//! servers behind a load balancer should: a basic canary has no router, its old pods go as soon
//! as they leave the endpoints, and a Service-level client learns that a moment later.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use rollout_runner::crd::Rollout;
use rollout_runner::operate::Operation;
use serde_json::json;

use crate::support::cluster::{self, TestNamespace};
use crate::support::dataplane::{
    self, Figures, Readiness, Setup, SteadyStream, Target, Traefik, measure, within_binomial,
};
use crate::support::runner::{
    Finished, Manifests, Running, SERVICES, apply_wait, finish, operate, wait_rollout,
};

/// Requests per measured split.
const SPLIT_REQUESTS: usize = 400;
/// How long the servers keep serving after SIGTERM.
const DRAIN: &str = "5s";
/// Scale-down delays of the releases (`scaleDownDelaySeconds`, `abortScaleDownDelaySeconds`):
/// longer than Traefik's propagation (watch + 2 s throttle). Not 0: with a traffic router or
/// blue-green, 0 left the old ReplicaSet up after the release (the runner ports Argo's
/// scaleDownDelayHelper, which sets no deadline for a delay of 0).
const SCALE_DOWN_DELAY_SECONDS: u32 = 5;
const ABORT_SCALE_DOWN_DELAY_SECONDS: u32 = 5;
/// Interval between the requests of a steady stream (one request at a time).
const STREAM_INTERVAL: Duration = Duration::from_millis(20);
/// Thresholds per scenario (documented in docs/benchmarks.md): failed requests, requests that
/// reached a pod after it stopped being Ready, and how late such a request may be.
struct Thresholds {
    failed: usize,
    after_not_ready: usize,
    late: Duration,
}

/// Through Traefik, the runner moves traffic before pods go (scale-down delays): zero.
const THROUGH_PROXY: Thresholds = Thresholds {
    failed: 0,
    after_not_ready: 0,
    late: Duration::ZERO,
};

/// A basic canary has no router: the old pods go as the new ones become available, and a
/// Service-level client learns it from the EndpointSlices (the pod is deleted, then the
/// EndpointSlice controller writes, then the watch delivers). Requests sent in that window
/// still reach the old pod, which the drain serves: none may fail, a few may be late, none by
/// more than the propagation (1 s).
const ENDPOINT_SLICE_CLIENT: Thresholds = Thresholds {
    failed: 0,
    after_not_ready: 10,
    late: Duration::from_secs(1),
};

/// The Host the IngressRoutes match.
const HOST: &str = "web.test";

async fn start(prefix: &str) -> Option<(Client, Setup, TestNamespace)> {
    let client = cluster::client().await?;
    let setup = dataplane::setup()?;
    let ns = TestNamespace::create(&client, prefix).await;
    Some((client, setup, ns))
}

/// A test namespace with Traefik reading it, a pod readiness watch and an HTTP client.
struct Plane {
    client: Client,
    setup: Setup,
    ns: TestNamespace,
    traefik: Traefik,
    readiness: Readiness,
    http: reqwest::Client,
    /// `/` on Traefik's web entry point.
    url: String,
}

async fn with_traefik(prefix: &str) -> Option<Plane> {
    let (client, setup, ns) = start(prefix).await?;
    let traefik = Traefik::start(&client, &setup, ns.name()).await;
    let readiness = Readiness::watch(&client, ns.name());
    let url = traefik.url("/");
    Some(Plane {
        client,
        setup,
        ns,
        traefik,
        readiness,
        http: reqwest::Client::new(),
        url,
    })
}

fn manifests(files: &[(&str, &str)]) -> Manifests {
    Manifests::new(files)
}

async fn stable_hash(client: &Client, ns: &str) -> String {
    Api::<Rollout>::namespaced(client.clone(), ns)
        .get("web")
        .await
        .unwrap()
        .status
        .map(|s| s.stable_rs)
        .unwrap_or_default()
}

/// Waits for the pause at `index`; returns the canary's pod hash.
async fn paused_at(client: &Client, ns: &str, index: i32) -> String {
    let rollout = wait_rollout(
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
    .await;
    rollout.status.unwrap().current_pod_hash
}

/// Waits until every request through `url` reaches `version` (Traefik has the routes and the
/// endpoints), then checks it over `SPLIT_REQUESTS` requests.
async fn serving_only(
    traefik: &Traefik,
    http: &reqwest::Client,
    url: &str,
    host: Option<&str>,
    version: &str,
) {
    cluster::wait_for(
        &format!("Traefik to serve version {version} at {url}"),
        Duration::from_secs(60),
        || async {
            let sample = dataplane::get(http, url, host, &[]).await;
            sample
                .outcome
                .ok()
                .filter(|r| r.version == version)
                .map(|_| ())
        },
    )
    .await;
    let counts = measure(http, url, host, &[], SPLIT_REQUESTS).await;
    assert_eq!(
        counts.get(version).copied(),
        Some(SPLIT_REQUESTS),
        "only version {version} should answer: {counts:?}\n{}",
        traefik.log()
    );
}

/// Measures the split at a weight: the canary version's share within the binomial tolerance.
async fn assert_split(
    http: &reqwest::Client,
    url: &str,
    host: Option<&str>,
    headers: &[(&str, &str)],
    canary: &str,
    weight: i64,
    what: &str,
) {
    let counts = measure(http, url, host, headers, SPLIT_REQUESTS).await;
    let served = counts.get(canary).copied().unwrap_or(0);
    report_split(what, headers, weight, served);
    assert!(
        within_binomial(SPLIT_REQUESTS, served, weight),
        "{what}: version {canary} served {served} of {SPLIT_REQUESTS} requests, expected {weight} % \
         within {}σ: {counts:?}",
        dataplane::BINOMIAL_Z
    );
}

#[allow(
    clippy::print_stderr,
    reason = "the figures docs/benchmarks.md reports"
)]
fn report_split(what: &str, headers: &[(&str, &str)], weight: i64, served: usize) {
    eprintln!("SPLIT {what} headers={headers:?} weight={weight} canary={served}/{SPLIT_REQUESTS}");
}

/// `apply DIR --wait` of a release that must succeed.
async fn apply_ok(ns: &str, release: &Manifests) {
    assert_exit(&finish(apply_wait(ns, release.path(), &[])).await, 0);
}

fn assert_exit(run: &Finished, code: i32) {
    assert_eq!(run.code, Some(code), "{}\n{}", run.stdout, run.stderr);
}

fn through(url: &str, host: Option<&str>) -> Target {
    Target::Proxy {
        url: url.to_string(),
        host: host.map(str::to_string),
    }
}

/// Ends a scenario: once the pods of `gone` are gone and 3 s more, stops the stream and
/// checks its figures against `max`.
async fn settle(
    client: &Client,
    ns: &str,
    stream: SteadyStream,
    gone: &str,
    scenario: &str,
    readiness: &Readiness,
    max: &Thresholds,
) -> Figures {
    dataplane::wait_pods_gone(client, ns, gone).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let figures = stream.finish(scenario, readiness).await;
    assert_figures(&figures, max);
    figures
}

/// Applies `release` (version 2) to the end while `stream` runs, then settles the scenario:
/// the stream must have seen both versions.
#[allow(
    clippy::too_many_arguments,
    reason = "one scenario's parts, named at the call"
)]
async fn release_under_stream(
    client: &Client,
    ns: &str,
    release: &Manifests,
    stream: SteadyStream,
    old: &str,
    scenario: &str,
    readiness: &Readiness,
    max: &Thresholds,
) {
    apply_ok(ns, release).await;
    let figures = settle(client, ns, stream, old, scenario, readiness, max).await;
    assert!(
        figures.by_version.contains_key("1") && figures.by_version.contains_key("2"),
        "{scenario}: the stream saw both versions: {figures:?}"
    );
}

fn assert_figures(f: &Figures, max: &Thresholds) {
    assert!(
        f.failed <= max.failed
            && f.after_not_ready <= max.after_not_ready
            && f.max_late <= max.late,
        "{}: {} failed (at most {}) and {} reached a pod after it stopped being Ready (at most {}), \
         up to {:?} after (at most {:?}), of {} requests; first failures: {:?}",
        f.scenario,
        f.failed,
        max.failed,
        f.after_not_ready,
        max.after_not_ready,
        f.max_late,
        max.late,
        f.requests,
        f.failures
    );
    assert!(f.requests > 100, "{}: too few requests: {f:?}", f.scenario);
}

/// A canary release: the stable and canary Services, the router's objects, the Rollout.
fn canary_release(
    image: &str,
    version: &str,
    routing: &str,
    steps: &str,
    objects: &str,
) -> Manifests {
    let rollout = canary_rollout(image, version, routing, steps);
    manifests(&[
        ("services.yaml", SERVICES),
        ("traffic.yaml", objects),
        ("rollout.yaml", &rollout),
    ])
}

fn canary_rollout(image: &str, version: &str, routing: &str, steps: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 2
  revisionHistoryLimit: 2
  selector: {{matchLabels: {{app: web}}}}
  template:{template}
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      scaleDownDelaySeconds: {SCALE_DOWN_DELAY_SECONDS}
      abortScaleDownDelaySeconds: {ABORT_SCALE_DOWN_DELAY_SECONDS}
      trafficRouting:
{routing}
      steps:
{steps}
"#,
        template = dataplane::pod_template(image, version, DRAIN),
    )
}

// Traefik router: a TraefikService's weights, behind an IngressRoute.

const TRAEFIK_OBJECTS: &str = r#"
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: web}
spec:
  weighted:
    services:
      - {name: web-stable, port: 80, weight: 100}
      - {name: web-canary, port: 80, weight: 0}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web}
spec:
  entryPoints: [web]
  routes:
    - match: Host(`web.test`)
      kind: Rule
      services: [{name: web, kind: TraefikService}]
"#;

const TRAEFIK_STOPS: &[(i32, i64)] = &[(1, 25), (3, 75)];

#[tokio::test]
async fn e2e_dataplane_traefik_router_measured_split_and_zero_failures() {
    let Some(Plane {
        client,
        setup,
        ns,
        traefik,
        readiness,
        http,
        url,
    }) = with_traefik("dataplane-traefik").await
    else {
        return;
    };
    let ns = ns.name();
    let release = |version: &str| {
        canary_release(
            &setup.image,
            version,
            "        traefik: {weightedTraefikServiceName: web}",
            "        - setWeight: 25\n        - pause: {}\n        - setWeight: 75\n        - pause: {}",
            TRAEFIK_OBJECTS,
        )
    };

    apply_ok(ns, &release("1")).await;
    serving_only(&traefik, &http, &url, Some(HOST), "1").await;
    let v1 = stable_hash(&client, ns).await;

    // A canary through every weight, then promoted; the stream runs until the old pods are gone.
    let stream = SteadyStream::start(&client, ns, through(&url, Some(HOST)), STREAM_INTERVAL);
    let v2 = release("2");
    let running = Running::start(apply_wait(ns, v2.path(), &[]));
    for (index, weight) in TRAEFIK_STOPS {
        paused_at(&client, ns, *index).await;
        traefik.wait_for_weights(*weight).await;
        let what = format!("Traefik router, step {index}");
        assert_split(&http, &url, Some(HOST), &[], "2", *weight, &what).await;
        operate(&client, ns, "web", &Operation::Promote).await;
    }
    let promoted = running.finish().await;
    assert_exit(&promoted, 0);
    settle(
        &client,
        ns,
        stream,
        &v1,
        "Traefik router: canary 25 %, 75 %, promotion, scale-down delay",
        &readiness,
        &THROUGH_PROXY,
    )
    .await;
    serving_only(&traefik, &http, &url, Some(HOST), "2").await;

    // Version 3, aborted at its first pause: traffic back to version 2, then the canary goes.
    let stream = SteadyStream::start(&client, ns, through(&url, Some(HOST)), STREAM_INTERVAL);
    let v3 = release("3");
    let running = Running::start(apply_wait(ns, v3.path(), &[]));
    let v3_hash = paused_at(&client, ns, 1).await;
    traefik.wait_for_weights(25).await;
    assert_split(
        &http,
        &url,
        Some(HOST),
        &[],
        "3",
        25,
        "Traefik router, version 3",
    )
    .await;
    operate(&client, ns, "web", &Operation::Abort).await;
    let aborted = running.finish().await;
    assert_exit(&aborted, 1);
    traefik.wait_for_weights(0).await;
    settle(
        &client,
        ns,
        stream,
        &v3_hash,
        "Traefik router: canary 25 %, abort, abort scale-down delay",
        &readiness,
        &THROUGH_PROXY,
    )
    .await;
    serving_only(&traefik, &http, &url, Some(HOST), "2").await;
    assert!(!traefik.logged_its_token(), "Traefik printed its token");
}

// Gateway API through Traefik's Gateway provider: an HTTPRoute's backendRefs weights and a
// header route.

fn gateway_objects(class: &str, port: u16) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: shop-gateway}}
spec:
  gatewayClassName: {class}
  listeners: [{{name: web, port: {port}, protocol: HTTP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web}}
spec:
  parentRefs: [{{name: shop-gateway}}]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: /}}}}]
      backendRefs:
        - {{name: web-stable, port: 80, weight: 100}}
        - {{name: web-canary, port: 80, weight: 0}}
"#
    )
}

/// A GatewayClass of Traefik's controller (cluster-scoped, so uniquely named).
async fn gateway_class(client: &Client) -> String {
    let name = cluster::unique_name("traefik");
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "GatewayClass");
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "gatewayclasses"),
    );
    let class: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": "traefik.io/gateway-controller"},
    }))
    .unwrap();
    api.create(&PostParams::default(), &class).await.unwrap();
    name
}

/// (step index of the pause, weight, whether the header route is set)
const GATEWAY_STOPS: &[(i32, i64, bool)] = &[(1, 30, false), (3, 30, true), (5, 70, true)];

#[tokio::test]
async fn e2e_dataplane_gateway_api_through_traefik_split_header_route_zero_failures() {
    let Some(Plane {
        client,
        setup,
        ns,
        traefik,
        readiness,
        http,
        url,
    }) = with_traefik("dataplane-gateway").await
    else {
        return;
    };
    let ns = ns.name();
    let class = gateway_class(&client).await;
    let objects = gateway_objects(&class, traefik.web_port);
    let release = |version: &str| {
        canary_release(
            &setup.image,
            version,
            "        managedRoutes: [{name: beta}]\n        gatewayApi: {httpRoute: web}",
            r#"        - setWeight: 30
        - pause: {}
        - setHeaderRoute: {name: beta, match: [{headerName: X-Beta, headerValue: {exact: "1"}}]}
        - pause: {}
        - setWeight: 70
        - pause: {}"#,
            &objects,
        )
    };

    apply_ok(ns, &release("1")).await;
    serving_only(&traefik, &http, &url, None, "1").await;
    let v1 = stable_hash(&client, ns).await;

    let stream = SteadyStream::start(&client, ns, through(&url, None), STREAM_INTERVAL);
    let v2 = release("2");
    let running = Running::start(apply_wait(ns, v2.path(), &[]));
    for (index, weight, header_route) in GATEWAY_STOPS {
        paused_at(&client, ns, *index).await;
        traefik.wait_for_weights(*weight).await;
        let what = format!("Gateway API, step {index}");
        if *header_route {
            // Every matching request reaches the canary...
            traefik.wait_for_router("X-Beta").await;
            assert_split(&http, &url, None, &[("X-Beta", "1")], "2", 100, &what).await;
            // ...and only those: another value follows the split.
            assert_split(&http, &url, None, &[("X-Beta", "0")], "2", *weight, &what).await;
        }
        assert_split(&http, &url, None, &[], "2", *weight, &what).await;
        operate(&client, ns, "web", &Operation::Promote).await;
    }
    let promoted = running.finish().await;
    assert_exit(&promoted, 0);
    settle(
        &client,
        ns,
        stream,
        &v1,
        "Gateway API via Traefik: canary 30 %, header route, 70 %, promotion, scale-down delay",
        &readiness,
        &THROUGH_PROXY,
    )
    .await;
    serving_only(&traefik, &http, &url, None, "2").await;
    // After the promotion the header route is gone: X-Beta reaches version 2 like the rest.
    assert_split(
        &http,
        &url,
        None,
        &[("X-Beta", "1")],
        "2",
        100,
        "after the promotion",
    )
    .await;
}

/// Traefik's Gateway provider has no `RequestMirror` filter: a mirror route makes every
/// request it matches fail with 500 (and Traefik logs why), while the others keep the split.
/// Mirroring through Traefik therefore cannot be measured; this pins the limitation so that a
/// Traefik that supports it shows here.
#[tokio::test]
async fn e2e_dataplane_gateway_mirror_route_is_unsupported_by_traefik() {
    let Some(Plane {
        client,
        setup,
        ns,
        traefik,
        readiness: _,
        http,
        url,
    }) = with_traefik("dataplane-mirror").await
    else {
        return;
    };
    let ns = ns.name();
    let class = gateway_class(&client).await;
    let objects = gateway_objects(&class, traefik.web_port);
    let release = |version: &str| {
        canary_release(
            &setup.image,
            version,
            "        managedRoutes: [{name: mirror}]\n        gatewayApi: {httpRoute: web}",
            r#"        - setWeight: 20
        - setMirrorRoute: {name: mirror, percentage: 50, match: [{method: {exact: GET}}]}
        - pause: {}"#,
            &objects,
        )
    };
    apply_ok(ns, &release("1")).await;
    serving_only(&traefik, &http, &url, None, "1").await;

    let v2 = release("2");
    let running = Running::start(apply_wait(ns, v2.path(), &[]));
    paused_at(&client, ns, 2).await;
    traefik.wait_for_router("Method(\"GET\")").await;
    for _ in 0..50 {
        let sample = dataplane::get(&http, &url, None, &[]).await;
        assert!(
            sample
                .outcome
                .as_ref()
                .is_err_and(|e| e.starts_with("500 Internal Server Error")),
            "a GET matched by the mirror route: {:?}",
            sample.outcome
        );
    }
    // Requests the mirror route does not match keep the split.
    let post = http.post(&url).send().await.unwrap();
    assert!(post.status().is_success(), "{post:?}");
    assert!(
        traefik.log().contains("unsupported filter RequestMirror"),
        "{}",
        traefik.log()
    );
    operate(&client, ns, "web", &Operation::Abort).await;
    let aborted = running.finish().await;
    assert_exit(&aborted, 1);
}

// Blue-green through Traefik: an IngressRoute to the active Service.

const BLUE_GREEN_OBJECTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web-active}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-preview}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web}
spec:
  entryPoints: [web]
  routes:
    - match: Host(`web.test`)
      kind: Rule
      services: [{name: web-active, port: 80}]
"#;

#[tokio::test]
async fn e2e_dataplane_blue_green_switch_through_traefik_zero_failures() {
    let Some(Plane {
        client,
        setup,
        ns,
        traefik,
        readiness,
        http,
        url,
    }) = with_traefik("dataplane-bluegreen").await
    else {
        return;
    };
    let ns = ns.name();
    let release = |version: &str| {
        let rollout = format!(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 2
  revisionHistoryLimit: 2
  selector: {{matchLabels: {{app: web}}}}
  template:{template}
  strategy:
    blueGreen:
      activeService: web-active
      previewService: web-preview
      scaleDownDelaySeconds: {SCALE_DOWN_DELAY_SECONDS}
"#,
            template = dataplane::pod_template(&setup.image, version, DRAIN),
        );
        manifests(&[
            ("objects.yaml", BLUE_GREEN_OBJECTS),
            ("rollout.yaml", &rollout),
        ])
    };

    apply_ok(ns, &release("1")).await;
    serving_only(&traefik, &http, &url, Some(HOST), "1").await;
    let v1 = stable_hash(&client, ns).await;

    let scenario = "blue-green via Traefik: switch, scale-down delay";
    let stream = SteadyStream::start(&client, ns, through(&url, Some(HOST)), STREAM_INTERVAL);
    release_under_stream(
        &client,
        ns,
        &release("2"),
        stream,
        &v1,
        scenario,
        &readiness,
        &THROUGH_PROXY,
    )
    .await;
    serving_only(&traefik, &http, &url, Some(HOST), "2").await;
}

// A basic canary without a router: the split is the replica ratio, and clients reach pods
// through the Service's EndpointSlices.

const BASIC_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

#[tokio::test]
async fn e2e_dataplane_basic_canary_endpointslice_client_zero_failures() {
    let Some((client, setup, ns)) = start("dataplane-basic").await else {
        return;
    };
    let ns = ns.name();
    let readiness = Readiness::watch(&client, ns);
    let release = |version: &str| {
        let rollout = format!(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 4
  revisionHistoryLimit: 2
  selector: {{matchLabels: {{app: web}}}}
  template:{template}
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {{duration: 3}}
"#,
            template = dataplane::pod_template(&setup.image, version, DRAIN),
        );
        manifests(&[("service.yaml", BASIC_SERVICE), ("rollout.yaml", &rollout)])
    };

    apply_ok(ns, &release("1")).await;
    let v1 = stable_hash(&client, ns).await;
    let service = Target::EndpointSlices {
        service: "web".to_string(),
    };
    let stream = SteadyStream::start(&client, ns, service, STREAM_INTERVAL);
    let scenario = "basic canary, EndpointSlice client: 50 %, promotion";
    let max = &ENDPOINT_SLICE_CLIENT;
    release_under_stream(
        &client,
        ns,
        &release("2"),
        stream,
        &v1,
        scenario,
        &readiness,
        max,
    )
    .await;
}
