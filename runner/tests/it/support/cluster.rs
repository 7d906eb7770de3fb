//! Access to the end-to-end test control plane (etcd + kube-apiserver +
//! kube-controller-manager + kube-scheduler + a fake kubelet, see `tests/cluster/README.md`)
//! and the Prometheus server that `tests/run` starts next to it.
//!
//! It owns: finding the cluster through the environment, the skip-or-fail decision when there
//! is none, per-test namespaces that clean up after themselves, and polling helpers with
//! useful timeout messages. It does not start anything: `tests/run` (or `tests/cluster/up`)
//! does.
//!
//! Typical use:
//!
//! ```ignore
//! let Some(client) = cluster::client().await else { return };
//! let ns = cluster::TestNamespace::create(&client, "my-test").await;
//! let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, Resource};
use serde::de::DeserializeOwned;

/// Path of the control plane's kubeconfig (client certificate in `system:masters`).
pub(crate) const KUBECONFIG_ENV: &str = "ROLLOUT_RUNNER_E2E_KUBECONFIG";
/// Base URL of the Prometheus server, e.g. `http://127.0.0.1:41234`.
pub(crate) const PROMETHEUS_ENV: &str = "ROLLOUT_RUNNER_E2E_PROMETHEUS";
/// Work directory of the run: component logs, the `ready` file, Prometheus' data.
pub(crate) const WORKDIR_ENV: &str = "ROLLOUT_RUNNER_E2E_WORKDIR";
/// `1`: a missing cluster fails the e2e tests instead of skipping them.
pub(crate) const REQUIRED_ENV: &str = "ROLLOUT_RUNNER_E2E_REQUIRED";

/// Fault-injection annotations the fake kubelet honours. Put them on a pod template (the
/// controllers copy them to every pod) or on a bare pod. Durations use Go syntax (`1.5s`).
#[allow(
    dead_code,
    reason = "the API for every e2e test module, not all use every item"
)]
pub(crate) mod fault {
    /// Ready after this delay (counted from the pod starting to run) instead of the default.
    pub(crate) const READY_DELAY: &str = "test.rollout-runner.io/ready-delay";
    /// `"true"`: the pod runs but never becomes Ready.
    pub(crate) const NEVER_READY: &str = "test.rollout-runner.io/never-ready";
    /// The pod becomes Ready, then NotReady this long after becoming Ready.
    pub(crate) const UNREADY_AFTER: &str = "test.rollout-runner.io/unready-after";
    /// Exit code of a pod that terminates (restartPolicy Never/OnFailure, e.g. Job pods);
    /// non-zero makes the pod Failed.
    pub(crate) const EXIT_CODE: &str = "test.rollout-runner.io/exit-code";
    /// How long a terminating pod runs before it exits (default 1s).
    pub(crate) const RUN_DURATION: &str = "test.rollout-runner.io/run-duration";
}

/// Default timeout for waiting on the cluster: generous, the CI machine is small and busy.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

fn required() -> bool {
    std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

#[allow(clippy::print_stderr, reason = "a skipped test says why on stderr")]
fn skip(what: &str) {
    eprintln!(
        "SKIPPED: {what} is not set, so this end-to-end test did not run (tests/run sets it; \
         set {REQUIRED_ENV}=1 to make this a failure)"
    );
}

fn install_crypto_provider() {
    // kube with rustls needs a process-wide crypto provider; a second install is harmless.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Builds a client for the control plane from `ROLLOUT_RUNNER_E2E_KUBECONFIG`.
///
/// Returns `None` (after a message on stderr) when the variable is unset, so the calling test
/// can `return` early: `let Some(client) = cluster::client().await else { return };`.
/// Panics when the variable is unset but `ROLLOUT_RUNNER_E2E_REQUIRED=1`, and when it is set
/// but the cluster cannot be reached: a configured cluster that does not answer is a failure.
pub(crate) async fn client() -> Option<Client> {
    let Some(path) = kubeconfig_path() else {
        assert!(
            !required(),
            "{KUBECONFIG_ENV} is not set but {REQUIRED_ENV}=1: the e2e control plane is missing"
        );
        skip(KUBECONFIG_ENV);
        return None;
    };
    let client = client_from(&path).await;
    // Fail here, with a clear message, rather than in the middle of a test.
    if let Err(e) = client.apiserver_version().await {
        panic!(
            "the e2e control plane at {} does not answer: {e}",
            path.display()
        );
    }
    Some(client)
}

/// The kubeconfig path from the environment, if any.
pub(crate) fn kubeconfig_path() -> Option<PathBuf> {
    std::env::var_os(KUBECONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

async fn client_from(path: &std::path::Path) -> Client {
    install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {}: {e}", path.display()));
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", path.display()));
    Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a kube client: {e}"))
}

/// The Prometheus base URL (no trailing slash), with the same skip/fail rules as [`client`].
#[allow(dead_code, reason = "the API for every e2e test module")]
pub(crate) fn prometheus_url() -> Option<String> {
    match std::env::var(PROMETHEUS_ENV) {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_owned()),
        _ => {
            assert!(
                !required(),
                "{PROMETHEUS_ENV} is not set but {REQUIRED_ENV}=1: the e2e Prometheus is missing"
            );
            skip(PROMETHEUS_ENV);
            None
        }
    }
}

/// The work directory of the run (logs of every component are in it), if any.
#[allow(dead_code, reason = "the API for every e2e test module")]
pub(crate) fn workdir() -> Option<PathBuf> {
    std::env::var_os(WORKDIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// A DNS-1123 name unique across tests, processes and runs: `{prefix}-{suffix}`.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    if prefix.is_empty() {
        prefix.push('t');
    }
    format!(
        "{}-{:x}{:x}{n:x}",
        prefix.trim_end_matches('-'),
        std::process::id(),
        nanos % 0xfff_fff
    )
}

/// A namespace of its own for one test, deleted when dropped (also when the test panics), so
/// tests can run in parallel against one shared control plane.
pub(crate) struct TestNamespace {
    name: String,
}

impl TestNamespace {
    /// Creates a namespace named `{prefix}-{unique suffix}` and waits until pods can be created
    /// in it (its `default` ServiceAccount exists).
    pub(crate) async fn create(client: &Client, prefix: &str) -> Self {
        let name = unique_name(prefix);
        let api: Api<Namespace> = Api::all(client.clone());
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        ns.metadata.labels = Some(
            [("test.rollout-runner.io/e2e".to_owned(), "true".to_owned())]
                .into_iter()
                .collect(),
        );
        api.create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        let guard = Self { name };
        let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), &guard.name);
        wait_for(
            &format!("ServiceAccount {}/default", guard.name),
            TIMEOUT,
            || async { sas.get_opt("default").await.ok().flatten() },
        )
        .await;
        guard
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let Some(path) = kubeconfig_path() else {
            return;
        };
        let name = self.name.clone();
        // Drop cannot await, and the test's runtime is blocked in this very call: delete
        // from a thread with its own runtime and its own client.
        let deleted = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let api: Api<Namespace> = Api::all(client_from(&path).await);
                tokio::time::timeout(
                    Duration::from_secs(10),
                    api.delete(&name, &DeleteParams::background()),
                )
                .await
                .ok()?
                .ok()
            })
        })
        .join();
        if !matches!(deleted, Ok(Some(_))) && !std::thread::panicking() {
            panic!("could not delete test namespace {}", self.name);
        }
    }
}

/// Polls `probe` every 100 ms until it yields `Some`, and returns that. Panics after
/// `timeout` with `what` in the message.
pub(crate) async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the object `name` exists and satisfies `cond`, and returns it. On timeout
/// the panic message shows the object as last seen, which usually tells what is wrong.
pub(crate) async fn wait_until<K, F>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    cond: F,
) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug + serde::Serialize,
    F: Fn(&K) -> bool,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match api.get_opt(name).await {
            Ok(Some(obj)) if cond(&obj) => return obj,
            Ok(obj) => obj,
            Err(e) => panic!("reading {name} while waiting for {what}: {e}"),
        };
        if Instant::now() >= deadline {
            let shown = last.map_or_else(
                || "<not found>".to_owned(),
                |o| serde_json::to_string_pretty(&o).unwrap_or_default(),
            );
            panic!("timed out after {timeout:?} waiting for {name}: {what}; last seen:\n{shown}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
