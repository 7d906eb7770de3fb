//! A real data plane for the e2e tests: Traefik (built by `tests/platforms/build traefik`) as
//! a host process reading the test control plane with its Kubernetes CRD, Ingress and Gateway
//! API providers, the test HTTP server (`tests/cluster/e2e/testserver`) as the pods of the
//! releases (process pods), and clients that count where requests go and which fail.
//!
//! Traefik authenticates as a ServiceAccount of the test's namespace, with a token from the
//! TokenRequest API and exactly the ClusterRoles its documentation ships
//! (`kubernetes-crd-rbac.yml`, `kubernetes-gateway-rbac.yml`, copied from its module by the
//! build recipe); its providers watch only that namespace, so tests run side by side.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use futures::StreamExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, ListParams, PostParams};
use kube::config::Kubeconfig;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::cluster;

/// The Traefik binary (`tests/platforms/build traefik`); its RBAC files are in `../rbac`.
pub(crate) const TRAEFIK_ENV: &str = "ROLLOUT_RUNNER_E2E_TRAEFIK";
/// The image name the cluster runs as the test HTTP server (`--run-image NAME=testserver`).
pub(crate) const TESTSERVER_IMAGE_ENV: &str = "ROLLOUT_RUNNER_E2E_TESTSERVER_IMAGE";

/// Two-sided 99.99 % normal quantile: a measured share outside `z` standard deviations of the
/// binomial has a 1 in 10,000 chance per check when the proxy splits at random as configured.
pub(crate) const BINOMIAL_Z: f64 = 3.89;

/// Whether `canary` of `n` requests is within the binomial tolerance of a `weight` % share:
/// |canary - n p| <= z sqrt(n p (1-p)) + 1 (the +1 allows for rounding of a deterministic
/// weighted round robin, which is what Traefik does; 0 % and 100 % must be exact).
pub(crate) fn within_binomial(n: usize, canary: usize, weight: i64) -> bool {
    let p = weight as f64 / 100.0;
    let n = n as f64;
    let sd = (n * p * (1.0 - p)).sqrt();
    let slack = if weight == 0 || weight == 100 {
        0.0
    } else {
        1.0
    };
    (canary as f64 - n * p).abs() <= BINOMIAL_Z * sd + slack
}

/// What the data plane tests need, or `None` (after a loud message) when they cannot run.
pub(crate) struct Setup {
    pub(crate) traefik: PathBuf,
    pub(crate) image: String,
}

#[allow(clippy::print_stderr, reason = "a skipped test says why on stderr")]
pub(crate) fn setup() -> Option<Setup> {
    let traefik = std::env::var_os(TRAEFIK_ENV).filter(|v| !v.is_empty());
    let image = std::env::var(TESTSERVER_IMAGE_ENV)
        .ok()
        .filter(|v| !v.is_empty());
    match (traefik, image) {
        (Some(traefik), Some(image)) => Some(Setup {
            traefik: PathBuf::from(traefik),
            image,
        }),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
            assert!(
                !ci,
                "CI=true but {TRAEFIK_ENV} or {TESTSERVER_IMAGE_ENV} is not set: the data plane \
                 tests are mandatory in CI (tests/run sets them)"
            );
            eprintln!(
                "SKIPPED: {TRAEFIK_ENV} and {TESTSERVER_IMAGE_ENV} are not both set, so the data \
                 plane test did not run (tests/run sets them when Traefik is cached and process \
                 pods run; `tests/platforms/build traefik` builds it)"
            );
            None
        }
    }
}

/// The pod template of a release of the test server: it binds its pod IP, answers with
/// `version`, is Ready only once its readiness probe passes, and on SIGTERM keeps serving for
/// `drain` (failing readiness) before it exits.
pub(crate) fn pod_template(image: &str, version: &str, drain: &str) -> String {
    format!(
        r#"
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 20
      containers:
        - name: web
          image: "{image}"
          env:
            - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
            - {{name: VERSION, value: "{version}"}}
            - {{name: DRAIN_AFTER_TERM, value: "{drain}"}}
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe:
            httpGet: {{path: /healthz, port: 8080}}
            periodSeconds: 1
            failureThreshold: 1"#
    )
}

/// A Traefik process for one test namespace; killed when dropped.
pub(crate) struct Traefik {
    _child: Child,
    /// Port of the `web` entry point (HTTP routes, Gateway listeners).
    pub(crate) web_port: u16,
    api_port: u16,
    dir: tempfile::TempDir,
    token: String,
    http: reqwest::Client,
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The documented RBAC documents, renamed for this namespace and bound to its ServiceAccount.
async fn grant_documented_rbac(client: &Client, binary: &Path, ns: &str, sa: &str) {
    let rbac_dir = binary
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("rbac"))
        .expect("the Traefik binary is in a bin/ directory");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    for file in ["kubernetes-crd-rbac.yml", "kubernetes-gateway-rbac.yml"] {
        let path = rbac_dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (rebuild with tests/platforms/build traefik)",
                path.display()
            )
        });
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let role_name = format!("{ns}-{}", file.trim_end_matches(".yml"));
        for mut doc in docs {
            match doc["kind"].as_str() {
                Some("ClusterRole") => {
                    doc["metadata"]["name"] = json!(role_name);
                    let role: ClusterRole = serde_json::from_value(doc).unwrap();
                    roles.create(&PostParams::default(), &role).await.unwrap();
                }
                Some("ClusterRoleBinding") => {
                    doc["metadata"]["name"] = json!(role_name);
                    doc["roleRef"]["name"] = json!(role_name);
                    doc["subjects"] =
                        json!([{"kind": "ServiceAccount", "name": sa, "namespace": ns}]);
                    let binding: ClusterRoleBinding = serde_json::from_value(doc).unwrap();
                    bindings
                        .create(&PostParams::default(), &binding)
                        .await
                        .unwrap();
                }
                other => panic!("{}: unexpected document kind {other:?}", path.display()),
            }
        }
    }
}

impl Traefik {
    /// Starts Traefik for namespace `ns` and waits until it answers its ping.
    pub(crate) async fn start(client: &Client, setup: &Setup, ns: &str) -> Self {
        let sa = "traefik";
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
        let mut account = ServiceAccount::default();
        account.metadata.name = Some(sa.to_string());
        sas.create(&PostParams::default(), &account).await.unwrap();
        grant_documented_rbac(client, &setup.traefik, ns, sa).await;
        let token = sas
            .create_token_request(
                sa,
                &PostParams::default(),
                &TokenRequest {
                    spec: TokenRequestSpec {
                        expiration_seconds: Some(3600),
                        ..TokenRequestSpec::default()
                    },
                    ..TokenRequest::default()
                },
            )
            .await
            .unwrap()
            .status
            .expect("a token")
            .token;

        let kubeconfig = Kubeconfig::read_from(cluster::kubeconfig_path().unwrap()).unwrap();
        let server = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        let endpoint = server.server.clone().expect("the apiserver URL");
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                server
                    .certificate_authority_data
                    .as_ref()
                    .expect("the kubeconfig embeds the CA"),
            )
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.crt");
        std::fs::write(&ca_path, ca).unwrap();
        let (web_port, api_port) = (free_port(), free_port());
        let kube = json!({
            "endpoint": endpoint,
            "token": token,
            "certAuthFilePath": ca_path,
            "namespaces": [ns],
        });
        // The token is only in this file (mode 0600 in a private directory), never on a
        // command line or in the test's output.
        let config = json!({
            "global": {"checkNewVersion": false, "sendAnonymousUsage": false},
            "log": {"level": "INFO", "noColor": true},
            "entryPoints": {
                "web": {"address": format!("127.0.0.1:{web_port}")},
                "traefik": {"address": format!("127.0.0.1:{api_port}")},
            },
            // The module zip has no web UI to serve: API only.
            "api": {"insecure": true, "dashboard": false},
            "ping": {},
            "providers": {
                "kubernetesCRD": kube,
                "kubernetesIngress": kube,
                "kubernetesGateway": kube,
            },
        });
        let config_path = dir.path().join("traefik.yml");
        std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let log = std::fs::File::create(dir.path().join("traefik.log")).unwrap();
        let child = Command::new(&setup.traefik)
            .arg(format!("--configFile={}", config_path.display()))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", setup.traefik.display()));
        let traefik = Self {
            _child: child,
            web_port,
            api_port,
            dir,
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        };
        let ping = format!("http://127.0.0.1:{api_port}/ping");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = traefik.http.get(&ping).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Traefik did not answer {ping} within 30s\n{}",
                traefik.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        traefik
    }

    fn raw_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("traefik.log")).unwrap_or_default()
    }

    /// Traefik's log so far (the token masked, should Traefik ever print it).
    pub(crate) fn log(&self) -> String {
        self.raw_log().replace(&self.token, "[token]")
    }

    /// Whether Traefik printed its ServiceAccount token.
    pub(crate) fn logged_its_token(&self) -> bool {
        self.raw_log().contains(&self.token)
    }

    /// The URL of `path` on the `web` entry point.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.web_port)
    }

    /// Traefik's HTTP services as its API reports them (the configuration it applied).
    pub(crate) async fn services(&self) -> Vec<Value> {
        let url = format!("http://127.0.0.1:{}/api/http/services", self.api_port);
        match self.http.get(&url).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Waits until Traefik applied a router whose rule contains `part` (e.g. a header match).
    pub(crate) async fn wait_for_router(&self, part: &str) {
        let url = format!("http://127.0.0.1:{}/api/http/routers", self.api_port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let routers: Vec<Value> = match self.http.get(&url).send().await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            if routers
                .iter()
                .any(|r| r["rule"].as_str().is_some_and(|rule| rule.contains(part)))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Traefik has no router matching {part:?}: its routers are\n{}\n{}",
                serde_json::to_string_pretty(&routers).unwrap(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until Traefik applied a weighted service whose children named after the canary
    /// and stable Services carry `canary` and `100 - canary` (the runner writes the weights
    /// first; Traefik applies them after its watch and its providers' throttle, 2 s).
    pub(crate) async fn wait_for_weights(&self, canary: i64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let services = self.services().await;
            let applied = services.iter().any(|s| {
                let Some(children) = s.pointer("/weighted/services").and_then(Value::as_array)
                else {
                    return false;
                };
                let weight = |part: &str| {
                    children
                        .iter()
                        .find(|c| c["name"].as_str().is_some_and(|n| n.contains(part)))
                        .map(|c| c["weight"].as_i64().unwrap_or(1))
                };
                weight("web-canary") == Some(canary) && weight("web-stable") == Some(100 - canary)
            });
            if applied {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Traefik did not apply the weights {canary}/{}: its services are\n{}\n{}",
                100 - canary,
                serde_json::to_string_pretty(&services).unwrap(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What the test server answered.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Reply {
    pub(crate) pod: String,
    pub(crate) version: String,
    /// The server had received SIGTERM (its pod was being deleted).
    pub(crate) terminating: bool,
}

/// One request: when it was sent, and the reply or why it failed.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) sent: SystemTime,
    pub(crate) outcome: Result<Reply, String>,
}

/// Sends one GET and classifies the outcome: anything but a 2xx test server reply fails.
pub(crate) async fn get(
    http: &reqwest::Client,
    url: &str,
    host: Option<&str>,
    headers: &[(&str, &str)],
) -> Sample {
    let sent = SystemTime::now();
    let mut request = http.get(url);
    if let Some(host) = host {
        request = request.header("Host", host);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let outcome = match request.send().await {
        Err(e) => Err(format!("{e}")),
        Ok(r) if !r.status().is_success() => {
            let status = r.status();
            Err(format!("{status}: {}", r.text().await.unwrap_or_default()))
        }
        Ok(r) => r
            .json::<Reply>()
            .await
            .map_err(|e| format!("not a test server reply: {e}")),
    };
    Sample { sent, outcome }
}

/// `n` sequential requests; replies per version, or a panic on the first failure.
pub(crate) async fn measure(
    http: &reqwest::Client,
    url: &str,
    host: Option<&str>,
    headers: &[(&str, &str)],
    n: usize,
) -> BTreeMap<String, usize> {
    let mut by_version = BTreeMap::new();
    for _ in 0..n {
        match get(http, url, host, headers).await.outcome {
            Ok(reply) => *by_version.entry(reply.version).or_insert(0) += 1,
            Err(e) => panic!("a measured request to {url} failed: {e}"),
        }
    }
    by_version
}

/// When each pod of a namespace was first seen not Ready (deleted, or its Ready condition
/// turned False after it had been True), from a watch that runs until dropped.
pub(crate) struct Readiness {
    not_ready_since: Arc<Mutex<HashMap<String, SystemTime>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Readiness {
    pub(crate) fn watch(client: &Client, ns: &str) -> Self {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let not_ready_since = Arc::new(Mutex::new(HashMap::new()));
        let seen = Arc::clone(&not_ready_since);
        let task = tokio::spawn(async move {
            let mut was_ready: HashMap<String, bool> = HashMap::new();
            let mut events = watcher(pods, watcher::Config::default())
                .default_backoff()
                .touched_objects()
                .boxed();
            while let Some(event) = events.next().await {
                let Ok(pod) = event else { continue };
                let now = SystemTime::now();
                let name = pod.name_any();
                let ready = pod.metadata.deletion_timestamp.is_none()
                    && pod
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                let before = was_ready.insert(name.clone(), ready).unwrap_or(false);
                if !ready && (before || pod.metadata.deletion_timestamp.is_some()) {
                    seen.lock().unwrap().entry(name).or_insert(now);
                }
            }
        });
        Self {
            not_ready_since,
            task,
        }
    }

    /// Whether `reply`, to a request sent at `sent`, reached its pod after the pod stopped
    /// being Ready, and how long after (as far as the watch tells): the server had got SIGTERM,
    /// or the request left after the watch saw the pod not Ready (the watch lags, so this
    /// undercounts by the watch latency only).
    pub(crate) fn after_not_ready(&self, sent: SystemTime, reply: &Reply) -> Option<Duration> {
        let since = self
            .not_ready_since
            .lock()
            .unwrap()
            .get(&reply.pod)
            .copied();
        let late = since.and_then(|since| sent.duration_since(since).ok());
        match late {
            Some(late) => Some(late),
            None if reply.terminating => Some(Duration::ZERO),
            None => None,
        }
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where a steady stream sends its requests.
#[derive(Clone)]
pub(crate) enum Target {
    /// Through a proxy: this URL, with this Host header.
    Proxy { url: String, host: Option<String> },
    /// Like a Service-level client (kube-proxy, a client-side load balancer): round robin
    /// over the ready addresses of the Service's EndpointSlices, as a watch reports them.
    EndpointSlices { service: String },
}

/// A steady stream of requests (one at a time, every `interval`) until stopped.
pub(crate) struct SteadyStream {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Sample>>,
}

/// The figures of one scenario.
#[derive(Debug)]
pub(crate) struct Figures {
    pub(crate) scenario: String,
    pub(crate) requests: usize,
    pub(crate) failed: usize,
    pub(crate) after_not_ready: usize,
    /// The longest time after a pod stopped being Ready that a request reached it.
    pub(crate) max_late: Duration,
    pub(crate) by_version: BTreeMap<String, usize>,
    pub(crate) seconds: f64,
    /// The first few failures, for the panic message.
    pub(crate) failures: Vec<String>,
}

impl SteadyStream {
    pub(crate) fn start(client: &Client, ns: &str, target: Target, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let endpoints: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        let mut slice_watch = None;
        if let Target::EndpointSlices { service } = &target {
            let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
            let config =
                watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
            let ready = Arc::clone(&endpoints);
            slice_watch = Some(tokio::spawn(async move {
                let mut current: BTreeMap<String, Vec<String>> = BTreeMap::new();
                let mut events = watcher(slices, config).default_backoff().boxed();
                while let Some(event) = events.next().await {
                    match event {
                        Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                            current.insert(s.name_any(), ready_addresses(&s));
                        }
                        Ok(watcher::Event::Delete(s)) => {
                            current.remove(&s.name_any());
                        }
                        Ok(watcher::Event::Init) => current.clear(),
                        Ok(watcher::Event::InitDone) | Err(_) => {}
                    }
                    *ready.lock().unwrap() = current.values().flatten().cloned().collect();
                }
            }));
        }
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut samples = Vec::new();
            let mut next = 0usize;
            let mut seen_endpoints = false;
            while !stopped.load(Ordering::Relaxed) {
                let sample = match &target {
                    Target::Proxy { url, host } => get(&http, url, host.as_deref(), &[]).await,
                    Target::EndpointSlices { .. } => {
                        let pick = {
                            let ready = endpoints.lock().unwrap();
                            next = next.wrapping_add(1);
                            (!ready.is_empty()).then(|| ready[next % ready.len()].clone())
                        };
                        match pick {
                            Some(ip) => {
                                seen_endpoints = true;
                                get(&http, &format!("http://{ip}:8080/"), None, &[]).await
                            }
                            // Until the watch first lists endpoints, there is nothing to count.
                            None if !seen_endpoints => {
                                tokio::time::sleep(interval).await;
                                continue;
                            }
                            None => Sample {
                                sent: SystemTime::now(),
                                outcome: Err("no ready endpoint".to_string()),
                            },
                        }
                    }
                };
                samples.push(sample);
                tokio::time::sleep(interval).await;
            }
            if let Some(watch) = slice_watch {
                watch.abort();
            }
            samples
        });
        Self { stop, task }
    }

    /// Stops the stream and counts.
    pub(crate) async fn finish(self, scenario: &str, readiness: &Readiness) -> Figures {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.task.await.unwrap();
        let seconds = match (samples.first(), samples.last()) {
            (Some(a), Some(b)) => b
                .sent
                .duration_since(a.sent)
                .unwrap_or_default()
                .as_secs_f64(),
            _ => 0.0,
        };
        let mut figures = Figures {
            scenario: scenario.to_string(),
            requests: samples.len(),
            failed: 0,
            after_not_ready: 0,
            max_late: Duration::ZERO,
            by_version: BTreeMap::new(),
            seconds,
            failures: Vec::new(),
        };
        for sample in &samples {
            match &sample.outcome {
                Ok(reply) => {
                    *figures.by_version.entry(reply.version.clone()).or_insert(0) += 1;
                    if let Some(late) = readiness.after_not_ready(sample.sent, reply) {
                        figures.after_not_ready += 1;
                        figures.max_late = figures.max_late.max(late);
                    }
                }
                Err(e) => {
                    figures.failed += 1;
                    if figures.failures.len() < 5 {
                        figures.failures.push(e.clone());
                    }
                }
            }
        }
        report(&figures);
        figures
    }
}

fn ready_addresses(slice: &EndpointSlice) -> Vec<String> {
    slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
        .flat_map(|e| e.addresses.iter().cloned())
        .collect()
}

#[allow(
    clippy::print_stderr,
    reason = "the figures docs/benchmarks.md reports"
)]
fn report(f: &Figures) {
    eprintln!(
        "DATAPLANE scenario={:?} requests={} failed={} after_not_ready={} max_late_ms={} seconds={:.1} by_version={:?}",
        f.scenario,
        f.requests,
        f.failed,
        f.after_not_ready,
        f.max_late.as_millis(),
        f.seconds,
        f.by_version
    );
}

/// Waits until no pod of the namespace has the pod-template hash `hash`, i.e. the
/// ReplicaSet's pods are gone.
pub(crate) async fn wait_pods_gone(client: &Client, ns: &str, hash: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("{}={hash}", rollout_runner::crd::POD_TEMPLATE_HASH_LABEL);
    cluster::wait_for(
        &format!("the pods of {hash} to be gone"),
        Duration::from_secs(90),
        || async {
            let list = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .ok()?;
            list.items.is_empty().then_some(())
        },
    )
    .await;
}
