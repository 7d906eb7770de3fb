//! End to end: the project's own image in the test cluster. As root, `tests/run` has the fake
//! kubelet run `ghcr.io/rollout-runner/rollout-runner` as process pods of the binary under
//! test, with the root Dockerfile's image config (tests/cluster/README.md, "Process pods").
//!
//! `rollout-runner install` is applied the way `kubectl apply --server-side` applies it, and the
//! Helm chart is installed then upgraded; the Deployment's pods become Ready through their real probes, one of them leads, the leader
//! promotes a canary and aborts a release on a failing analysis, and when the leader pod is
//! deleted another replica takes over and drives the next release. The kubelet's
//! `runAsNonRoot` check is run against the image's USER.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams,
};
use kube::core::GroupVersionKind;
use kube::discovery::pinned_kind;
use rollout_runner::crd::{AnalysisPhase, AnalysisRun, RolloutPhase};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::controller_e2e::{apply_only, healthy_at};
use crate::drive_e2e::{FAILING_JOB_TEMPLATE, FIVE_STEPS, canary, replica_sets};
use crate::support::cluster::{self, TestNamespace};
use crate::support::runner::{Manifests, SERVICES, wait_rollout};

/// `1` when the test cluster runs the images below as process pods (root only).
const PROCESS_PODS_ENV: &str = "ROLLOUT_RUNNER_E2E_PROCESS_PODS";
/// The project's image, run with the Dockerfile's image config.
const IMAGE_ENV: &str = "ROLLOUT_RUNNER_E2E_IMAGE";
/// The same binary with an image config whose USER is root.
const ROOT_IMAGE_ENV: &str = "ROLLOUT_RUNNER_E2E_ROOT_IMAGE";
/// The image config JSON `tests/cluster/image-config` printed for the root Dockerfile.
const IMAGE_CONFIG_ENV: &str = "ROLLOUT_RUNNER_E2E_IMAGE_CONFIG";

/// The name of the controller's objects in `rollout-runner install`.
const CONTROLLER: &str = "rollout-runner-controller";
const LEADER_LEASE: &str = "rollout-runner.controller";
const METRICS_PORT: u16 = 8090;

/// Process pods start real processes and probe them every 10 s (the Deployment's probes):
/// generous for a loaded 2-core machine, still bounded.
const POD_TIMEOUT: Duration = Duration::from_secs(180);

/// `(image, root image)` when the cluster runs process pods, else `None` after a message.
#[allow(clippy::print_stderr, reason = "a skipped test says why on stderr")]
fn process_pod_images() -> Option<(String, String)> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    if var(PROCESS_PODS_ENV).as_deref() != Some("1") {
        eprintln!(
            "SKIPPED: {PROCESS_PODS_ENV} is not 1: the test cluster does not run the project's \
             image as process pods (tests/run sets it up when run as root; CI requires it)"
        );
        return None;
    }
    match (var(IMAGE_ENV), var(ROOT_IMAGE_ENV)) {
        (Some(image), Some(root)) => Some((image, root)),
        _ => panic!("{PROCESS_PODS_ENV}=1 needs {IMAGE_ENV} and {ROOT_IMAGE_ENV}"),
    }
}

/// The container logs of the process pods in `namespace`, from the fake kubelet's files.
fn pod_logs(namespace: &str) -> String {
    let Some(work) = std::env::var_os(cluster::WORKDIR_ENV) else {
        return String::new();
    };
    let dir = PathBuf::from(work).join("cluster/pods");
    let prefix = format!("{namespace}_");
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    let mut pods: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    pods.sort();
    for pod in pods {
        let Ok(files) = std::fs::read_dir(&pod) else {
            continue;
        };
        for file in files.filter_map(Result::ok).map(|f| f.path()) {
            if file.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(60)..];
                out.push_str(&format!(
                    "\n--- {} (last {} lines) ---\n{}\n",
                    file.strip_prefix(&dir).unwrap_or(&file).display(),
                    tail.len(),
                    tail.join("\n")
                ));
            }
        }
    }
    out
}

/// Prints the controller pods' logs when the test fails (panics) while it is alive.
struct LogsOnFailure(String);

impl Drop for LogsOnFailure {
    #[allow(clippy::print_stderr, reason = "the failure output of a test")]
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "logs of the process pods in {}:{}",
                self.0,
                pod_logs(&self.0)
            );
        }
    }
}

/// `rollout-runner install ARGS`, one JSON value per document.
fn install(args: &[&str]) -> Vec<Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .arg("install")
        .args(args)
        .output()
        .expect("rollout-runner install runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 manifests");
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Server-side apply of each object in order, as `kubectl apply --server-side -f -` does
/// (its field manager, no force).
async fn server_side_apply(client: &Client, objects: &[Value]) {
    for object in objects {
        let api_version = object["apiVersion"].as_str().expect("apiVersion");
        let kind = object["kind"].as_str().expect("kind");
        let name = object["metadata"]["name"].as_str().expect("metadata.name");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, _) = pinned_kind(client, &gvk)
            .await
            .unwrap_or_else(|e| panic!("discovering {api_version} {kind}: {e}"));
        let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        api.patch(name, &PatchParams::apply("kubectl"), &Patch::Apply(object))
            .await
            .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
    }
}

/// Process pods share the host's network (no network namespace), so two replicas cannot both
/// listen on `0.0.0.0:8090`: each binds its pod IP instead, the harness's rule for servers.
/// (In a real pod the default is right: binding only the pod IP would break port-forward.)
fn bind_pod_ip(objects: &mut [Value]) {
    let deployment = objects
        .iter_mut()
        .find(|o| o["kind"] == "Deployment")
        .expect("install prints a Deployment");
    let container = &mut deployment["spec"]["template"]["spec"]["containers"][0];
    container["env"]
        .as_array_mut()
        .expect("env")
        .push(json!({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}));
    container["args"]
        .as_array_mut()
        .expect("args")
        .push(json!(format!("--metrics-addr=$(POD_IP):{METRICS_PORT}")));
}

/// `GET path` over HTTP/1.1: status line and body.
async fn http_get(addr: SocketAddr, path: &str) -> Option<(String, String)> {
    let connect = tokio::net::TcpStream::connect(addr);
    let mut stream = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .ok()?
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: controller\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// One sample of a controller pod's `/metrics`.
async fn metric(pod: &Pod, series: &str) -> Option<f64> {
    let (_, body) = http_get(metrics_addr(pod), "/metrics").await?;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn metrics_addr(pod: &Pod) -> SocketAddr {
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .expect("a pod IP");
    SocketAddr::new(ip.parse().expect("an IP"), METRICS_PORT)
}

fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |c| c.iter().map(|c| c.restart_count).sum())
}

/// Waits until the controller's Deployment runs its current template on 2 available pods and
/// no other (after an install or an upgrade).
async fn rolled_out(client: &Client, ns: &str) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    cluster::wait_until(
        &deployments,
        CONTROLLER,
        POD_TIMEOUT,
        "2 updated, available replicas and no others",
        |d| {
            let generation = d.metadata.generation.unwrap_or(0);
            d.status.as_ref().is_some_and(|s| {
                s.observed_generation.unwrap_or(0) >= generation
                    && s.replicas == Some(2)
                    && s.updated_replicas == Some(2)
                    && s.available_replicas == Some(2)
            })
        },
    )
    .await;
}

/// The controller's pods once `replicas` of them are Ready.
async fn ready_pods(client: &Client, ns: &str, replicas: usize) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = ListParams::default().labels(&format!("app.kubernetes.io/name={CONTROLLER}"));
    let what = format!("{replicas} Ready controller pods in {ns}");
    cluster::wait_for(&what, POD_TIMEOUT, || async {
        let ready: Vec<Pod> = pods
            .list(&selector)
            .await
            .ok()?
            .items
            .into_iter()
            .filter(is_ready)
            .collect();
        (ready.len() == replicas).then_some(ready)
    })
    .await
}

/// The pod named in the leader Lease's holder (`controller/<hostname>/<pid>`; a process pod's
/// hostname is its name), once that pod is one of `pods` and not `not`.
async fn leader_among(client: &Client, ns: &str, pods: &[Pod], not: Option<&str>) -> Pod {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    cluster::wait_for("a leader among the pods", POD_TIMEOUT, || async {
        let holder = leases
            .get_opt(LEADER_LEASE)
            .await
            .ok()??
            .spec?
            .holder_identity?;
        let name = holder.split('/').nth(1)?;
        if Some(name) == not {
            return None;
        }
        pods.iter().find(|p| pod_name(p) == name).cloned()
    })
    .await
}

/// Whether the apiserver lets the controller's ServiceAccount do `verb` on `resource`.
async fn allowed(
    client: &Client,
    sa_ns: &str,
    ns: &str,
    group: &str,
    resource: &str,
    verb: &str,
) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{sa_ns}:{CONTROLLER}")),
            groups: Some(vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{sa_ns}"),
            ]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.to_string()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                verb: Some(verb.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let reviewed = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap_or_else(|e| panic!("SubjectAccessReview: {e}"));
    reviewed.status.is_some_and(|s| s.allowed)
}

/// The applied RBAC, as the apiserver authorizes it: the traffic routers' objects in the
/// watched namespace, nothing cluster-wide beyond reads of ClusterAnalysisTemplates.
async fn assert_rbac(client: &Client, controller_ns: &str, app_ns: &str) {
    for (groups, resource, verbs) in rollout_runner::traffic::rbac_resources() {
        for group in groups {
            for &verb in verbs {
                assert!(
                    allowed(client, controller_ns, app_ns, group, resource, verb).await,
                    "the controller may not {verb} {resource}.{group} in {app_ns}"
                );
            }
        }
    }
    let elsewhere = "default";
    assert!(
        !allowed(
            client,
            controller_ns,
            elsewhere,
            "argoproj.io",
            "rollouts",
            "patch"
        )
        .await
    );
    assert!(!allowed(client, controller_ns, app_ns, "", "secrets", "list").await);
}

/// Everything the controller pods must do, whoever installed them: one leader, a canary
/// promoted, a release aborted by its analysis, a take-over when the leader pod is deleted.
async fn lead_promote_abort_take_over(client: &Client, controller_ns: &str, app_ns: &str) {
    rolled_out(client, controller_ns).await;
    let pods = ready_pods(client, controller_ns, 2).await;
    for pod in &pods {
        let ip = metrics_addr(pod).ip().to_string();
        assert!(ip.starts_with("10.250."), "a process pod's IP: {ip}");
        let (status, _) = http_get(metrics_addr(pod), "/healthz")
            .await
            .unwrap_or_default();
        assert!(
            status.contains(" 200 "),
            "{}: /healthz {status}",
            pod_name(pod)
        );
    }
    let leader = leader_among(client, controller_ns, &pods, None).await;
    // Exactly one leads, and each says so in /metrics.
    for pod in &pods {
        let expected = if pod_name(pod) == pod_name(&leader) {
            1.0
        } else {
            0.0
        };
        let what = format!("{}: leader gauge {expected}", pod_name(pod));
        cluster::wait_for(&what, Duration::from_secs(30), || async {
            (metric(pod, "rollout_runner_controller_leader").await == Some(expected)).then_some(())
        })
        .await;
    }

    let release = |image: &str, steps: &str| {
        Manifests::new(&[
            ("services.yaml", SERVICES),
            ("analysis.yaml", FAILING_JOB_TEMPLATE),
            ("rollout.yaml", &canary(image, steps, "", "")),
        ])
    };
    apply_only(app_ns, &release("web:1", FIVE_STEPS)).await;
    let first = healthy_at(client, app_ns, "web:1").await.status.unwrap();

    // A canary driven to promotion.
    apply_only(app_ns, &release("web:2", FIVE_STEPS)).await;
    let promoted = healthy_at(client, app_ns, "web:2").await.status.unwrap();
    assert_ne!(promoted.stable_rs, first.stable_rs);
    assert_eq!(promoted.current_step_index, Some(5));

    // A release aborted by a failing analysis: everything back on the stable version.
    let analysed = r#"
        - setWeight: 20
        - analysis: {templates: [{templateName: smoke}]}
        - setWeight: 60"#;
    apply_only(app_ns, &release("web:3", analysed)).await;
    let aborted = wait_rollout(client, app_ns, "web", "aborted by the analysis", |ro| {
        ro.status
            .as_ref()
            .is_some_and(|s| s.abort && s.phase == Some(RolloutPhase::Degraded))
    })
    .await;
    assert_eq!(aborted.status.unwrap().stable_rs, promoted.stable_rs);
    let stable = promoted.stable_rs.clone();
    cluster::wait_for("everything back on stable", POD_TIMEOUT, || async {
        let sets = replica_sets(client, app_ns).await;
        (sets.contains(&(stable.clone(), 5, 5))
            && sets.iter().filter(|s| s.0 != stable).all(|s| s.1 == 0))
        .then_some(())
    })
    .await;
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), app_ns);
    let phases: Vec<AnalysisPhase> = runs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.status.map(|s| s.phase))
        .collect();
    assert_eq!(phases, [AnalysisPhase::Failed]);
    assert!(metric(&leader, "rollout_runner_reconcile_total{result=\"driven\"}").await > Some(0.0));

    // The leader pod is deleted (SIGTERM, its Leases given up): another replica takes over.
    let api: Api<Pod> = Api::namespaced(client.clone(), controller_ns);
    api.delete(pod_name(&leader), &DeleteParams::default())
        .await
        .unwrap();
    let others = ready_pods(client, controller_ns, 2).await;
    let successor = leader_among(client, controller_ns, &others, Some(pod_name(&leader))).await;
    cluster::wait_for(
        "the successor's leader gauge",
        Duration::from_secs(30),
        || async {
            (metric(&successor, "rollout_runner_controller_leader").await == Some(1.0))
                .then_some(())
        },
    )
    .await;
    apply_only(app_ns, &release("web:4", FIVE_STEPS)).await;
    let next = healthy_at(client, app_ns, "web:4").await.status.unwrap();
    assert_ne!(next.stable_rs, promoted.stable_rs);
    assert!(
        metric(
            &successor,
            "rollout_runner_reconcile_total{result=\"driven\"}"
        )
        .await
            > Some(0.0),
        "the successor drove the release"
    );
    // Liveness probes never failed and nothing crashed.
    for pod in ready_pods(client, controller_ns, 2).await {
        assert_eq!(restarts(&pod), 0, "{} restarted", pod_name(&pod));
    }
}

/// Deletes the cluster-scoped objects `install` created.
async fn delete_cluster_scoped(client: &Client, objects: &[Value]) {
    for object in objects
        .iter()
        .filter(|o| o["metadata"]["namespace"].is_null())
    {
        let kind = object["kind"].as_str().unwrap_or_default();
        if !matches!(kind, "ClusterRole" | "ClusterRoleBinding") {
            continue; // Namespaces are the tests'; CRDs are shared.
        }
        let gvk = GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind);
        let (resource, _) = pinned_kind(client, &gvk).await.unwrap();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
}

#[tokio::test]
async fn e2e_installed_controller_pods_lead_promote_abort_and_take_over() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some((image, _)) = process_pod_images() else {
        return;
    };
    let controller_ns = TestNamespace::create(&client, "ctlpods").await;
    let app_ns = TestNamespace::create(&client, "ctlpods-app").await;
    let _logs = LogsOnFailure(controller_ns.name().to_string());
    // The CRDs are the harness's already (installed from the same crds/ at start-up).
    let image = format!("{image}:{}", env!("CARGO_PKG_VERSION"));
    let mut objects = install(&[
        "--namespace",
        controller_ns.name(),
        "--image",
        &image,
        "--watch-namespace",
        app_ns.name(),
        "--skip-crds",
    ]);
    bind_pod_ip(&mut objects);
    server_side_apply(&client, &objects).await;
    assert_rbac(&client, controller_ns.name(), app_ns.name()).await;
    lead_promote_abort_take_over(&client, controller_ns.name(), app_ns.name()).await;
    delete_cluster_scoped(&client, &objects).await;
}

/// A Helm binary (`tests/platforms/build helm`), set by `tests/run`.
const HELM_ENV: &str = "ROLLOUT_RUNNER_E2E_HELM";

/// Helm against the test cluster, with its config, cache and data in a temporary directory.
struct Helm {
    binary: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    fn new() -> Self {
        let binary = std::env::var_os(HELM_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{PROCESS_PODS_ENV}=1 but {HELM_ENV} is not set"));
        Self {
            binary,
            home: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// `helm ARGS...`; panics with its output unless it succeeds.
    async fn run(&self, args: &[&str]) {
        let home = self.home.path();
        let kubeconfig = cluster::kubeconfig_path().expect("the e2e kubeconfig");
        let run = tokio::process::Command::new(&self.binary)
            .args(args)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("KUBECONFIG", kubeconfig)
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .unwrap_or_else(|_| panic!("helm {args:?} did not finish within 120s"))
            .expect("helm runs");
        assert!(
            output.status.success(),
            "helm {args:?}: {}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A values file: the process-pod image, the controller scoped to `app_ns`, the CRDs left
    /// to the harness (they exist, not owned by a release), and the metrics address on the
    /// pod IP as in [`bind_pod_ip`].
    fn values(&self, image: &str, app_ns: &str) -> PathBuf {
        let values = json!({
            "image": {"repository": image, "tag": env!("CARGO_PKG_VERSION")},
            "replicas": 2,
            "watchNamespaces": [app_ns],
            "crds": {"install": false},
            "extraEnv": [{"name": "POD_IP",
                          "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "extraArgs": [format!("--metrics-addr=$(POD_IP):{METRICS_PORT}")],
        });
        let path = self.home.path().join(format!("values-{app_ns}.json"));
        std::fs::write(&path, values.to_string()).expect("writing the values");
        path
    }
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/helm/rollout-runner")
}

#[tokio::test]
async fn e2e_helm_installed_and_upgraded_controller_pods_lead_promote_abort_and_take_over() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some((image, _)) = process_pod_images() else {
        return;
    };
    let helm = Helm::new();
    let controller_ns = TestNamespace::create(&client, "helmpods").await;
    let app_ns = TestNamespace::create(&client, "helmpods-app").await;
    let _logs = LogsOnFailure(controller_ns.name().to_string());
    let chart = chart();
    let chart = chart.to_str().expect("a UTF-8 path");
    let release = |verb: &'static str, values: PathBuf| {
        let ns = controller_ns.name().to_string();
        let helm = &helm;
        async move {
            let values = values.to_str().expect("a UTF-8 path").to_string();
            helm.run(&[verb, "rr", chart, "--namespace", &ns, "--values", &values])
                .await;
        }
    };

    release("install", helm.values(&image, app_ns.name())).await;
    assert_rbac(&client, controller_ns.name(), app_ns.name()).await;
    lead_promote_abort_take_over(&client, controller_ns.name(), app_ns.name()).await;

    // An upgrade that moves the controller to another namespace: new Roles, new pods.
    let next_ns = TestNamespace::create(&client, "helmpods-next").await;
    release("upgrade", helm.values(&image, next_ns.name())).await;
    assert_rbac(&client, controller_ns.name(), next_ns.name()).await;
    assert!(
        !allowed(
            &client,
            controller_ns.name(),
            app_ns.name(),
            "argoproj.io",
            "rollouts",
            "patch"
        )
        .await,
        "the upgrade removed the Role in the namespace no longer watched"
    );
    lead_promote_abort_take_over(&client, controller_ns.name(), next_ns.name()).await;
    helm.run(&["uninstall", "rr", "--namespace", controller_ns.name()])
        .await;
}

/// The waiting reason and message of `container` in `pod`.
fn waiting(pod: &Pod, container: &str) -> Option<(String, String)> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let status = statuses.iter().find(|s| s.name == container)?;
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    Some((
        waiting.reason.clone().unwrap_or_default(),
        waiting.message.clone().unwrap_or_default(),
    ))
}

fn non_root_pod(name: &str, containers: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": true},
            "containers": containers,
        },
    }))
    .expect("a Pod")
}

#[tokio::test]
async fn e2e_run_as_non_root_holds_for_the_image_user_only() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some((image, root_image)) = process_pod_images() else {
        return;
    };
    let ns = TestNamespace::create(&client, "nonroot").await;
    let _logs = LogsOnFailure(ns.name().to_string());
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());

    // An image whose USER is root: the kubelet refuses to start it, with its exact message.
    let as_root = non_root_pod(
        "as-root",
        json!([{"name": "app", "image": root_image, "args": ["--version"]}]),
    );
    let created = pods.create(&PostParams::default(), &as_root).await.unwrap();
    let uid = created.metadata.uid.unwrap();
    let refused = cluster::wait_until(
        &pods,
        "as-root",
        POD_TIMEOUT,
        "CreateContainerConfigError",
        |p| waiting(p, "app").is_some_and(|(reason, _)| reason == "CreateContainerConfigError"),
    )
    .await;
    assert_eq!(
        waiting(&refused, "app").unwrap().1,
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"as-root_{}({uid})\", \
             container: app)",
            ns.name()
        )
    );
    assert_eq!(refused.status.unwrap().phase.as_deref(), Some("Pending"));

    // The real image config (USER 65532:65532) starts, as that user.
    let nonroot = non_root_pod(
        "nonroot",
        json!([
            {"name": "version", "image": image, "args": ["--version"]},
            {"name": "user", "image": image, "command": ["sh", "-c", "id -u; id -g"]},
        ]),
    );
    pods.create(&PostParams::default(), &nonroot).await.unwrap();
    cluster::wait_until(&pods, "nonroot", POD_TIMEOUT, "Succeeded", |p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.phase.as_deref() == Some("Succeeded"))
    })
    .await;
    let log = |container: &str| LogParams {
        container: Some(container.to_string()),
        ..LogParams::default()
    };
    let version = pods.logs("nonroot", &log("version")).await.unwrap();
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")),
        "rollout-runner --version printed {version:?}"
    );
    assert_eq!(
        pods.logs("nonroot", &log("user")).await.unwrap(),
        "65532\n65532\n"
    );
}

/// `(USER, ENTRYPOINT)` of the root Dockerfile's final stage.
fn dockerfile_user_and_entrypoint(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let final_stage = text
        .rsplit_once("\nFROM ")
        .map_or(text.as_str(), |(_, stage)| stage);
    let instruction = |name: &str| {
        final_stage
            .lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .next_back()
            .unwrap_or_else(|| panic!("the final stage has no {name}"))
            .trim()
            .to_string()
    };
    let entrypoint: Vec<String> =
        serde_json::from_str(&instruction("ENTRYPOINT")).expect("ENTRYPOINT in exec (JSON) form");
    (instruction("USER"), entrypoint)
}

/// The image's USER satisfies what `install` asks of the pod: `runAsNonRoot` needs a numeric,
/// non-zero user the kubelet can verify without a passwd file; the Deployment sets no command,
/// so the image's ENTRYPOINT runs with `controller` as argument. When `tests/run` produced the
/// image config the process pods run with, it says the same.
#[test]
fn the_image_user_satisfies_the_installed_security_context() {
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile");
    let (user, entrypoint) = dockerfile_user_and_entrypoint(&dockerfile);
    let (uid, gid) = user.split_once(':').unwrap_or((&user, ""));
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user}: runAsNonRoot needs a numeric user"));
    assert_ne!(uid, 0, "USER {user} is root");
    assert!(gid.is_empty() || gid.parse::<u32>().is_ok(), "USER {user}");
    assert_eq!(entrypoint, ["/usr/local/bin/rollout-runner"]);

    let objects = install(&["--skip-crds"]);
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    for context in [
        &pod["securityContext"],
        &pod["containers"][0]["securityContext"],
    ] {
        if let Some(run_as) = context["runAsUser"].as_u64() {
            assert_eq!(run_as, u64::from(uid), "runAsUser and the image's USER");
        }
    }
    let container = &pod["containers"][0];
    assert!(
        container["command"].is_null(),
        "the image's ENTRYPOINT runs"
    );
    assert_eq!(container["args"][0], "controller");

    if let Some(config) = std::env::var_os(IMAGE_CONFIG_ENV).filter(|v| !v.is_empty()) {
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
        assert_eq!(config["User"], user.as_str());
        assert_eq!(config["Entrypoint"], json!(entrypoint));
    }
}
