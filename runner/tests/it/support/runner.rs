//! Running the `rollout-runner` binary against the e2e control plane, as a user would, and
//! watching the cluster while it drives: invariants checked at every change, the step history
//! recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use rollout_runner::crd::{POD_TEMPLATE_HASH_LABEL, Rollout};
use rollout_runner::operate::{self, Operation};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::cluster;

/// A directory of manifests for one release.
pub(crate) struct Manifests {
    dir: tempfile::TempDir,
}

impl Manifests {
    pub(crate) fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("writing a manifest");
        }
        Self { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What a finished runner printed and how it exited.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rollout-runner"))
}

/// `rollout-runner ARGS...` against the e2e cluster, in namespace `ns`, with a short Lease so
/// that a killed runner is replaced quickly. Actions and status writes are logged to stderr.
pub(crate) fn command(ns: &str, args: &[&str]) -> Command {
    let kubeconfig = cluster::kubeconfig_path().expect("the e2e kubeconfig");
    command_for(&kubeconfig, ns, args)
}

/// [`command`] against the cluster of `kubeconfig`.
pub(crate) fn command_for(kubeconfig: &Path, ns: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .args(["-n", ns])
        .env("KUBECONFIG", kubeconfig)
        .env("ROLLOUT_RUNNER_LOG", "rollout_runner::driver=debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `apply DIR --wait` with a short Lease and a timeout.
pub(crate) fn apply_wait(ns: &str, dir: &Path, extra: &[&str]) -> Command {
    apply_wait_leased(ns, dir, "2s", extra)
}

/// `apply DIR --wait` with a Lease of `lease` and a timeout.
pub(crate) fn apply_wait_leased(ns: &str, dir: &Path, lease: &str, extra: &[&str]) -> Command {
    let dir = dir.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "apply",
        dir,
        "--wait",
        "--timeout",
        "150s",
        "--lease-duration",
        lease,
    ];
    args.extend_from_slice(extra);
    command(ns, &args)
}

/// Run to the end.
pub(crate) async fn finish(mut command: Command) -> Finished {
    let output = tokio::time::timeout(Duration::from_secs(200), command.output())
        .await
        .expect("the runner finishes within 200s")
        .expect("the runner starts");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A runner in the background, its stderr collected line by line.
pub(crate) struct Running {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    lines: tokio::sync::watch::Receiver<usize>,
}

impl Running {
    pub(crate) fn start(mut command: Command) -> Self {
        let mut child = command.spawn().expect("the runner starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let collected = Arc::new(Mutex::new(Vec::new()));
        let (sender, lines) = tokio::sync::watch::channel(0);
        let sink = Arc::clone(&collected);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let mut all = sink.lock().unwrap();
                all.push(line);
                let _ = sender.send(all.len());
            }
        });
        Self {
            child,
            stderr: collected,
            lines,
        }
    }

    /// Stderr so far.
    pub(crate) fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `count` stderr lines satisfy `matches` (or the runner exits); returns
    /// whether they did.
    pub(crate) async fn wait_for_lines(
        &mut self,
        count: usize,
        matches: impl Fn(&str) -> bool,
    ) -> bool {
        let found = |lines: &[String]| lines.iter().filter(|l| matches(l)).count() >= count;
        loop {
            if found(&self.stderr()) {
                return true;
            }
            tokio::select! {
                changed = self.lines.changed() => if changed.is_err() {
                    return found(&self.stderr());
                },
                _ = self.child.wait() => return found(&self.stderr()),
            }
        }
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL: no clean-up, no Lease release.
    pub(crate) async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    pub(crate) async fn finish(mut self) -> Finished {
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            use tokio::io::AsyncReadExt;
            let _ = out.read_to_string(&mut stdout).await;
        }
        let status = tokio::time::timeout(Duration::from_secs(200), self.child.wait())
            .await
            .expect("the runner finishes within 200s")
            .expect("the runner runs");
        // Let the reader drain the last lines.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Finished {
            code: status.code(),
            stdout,
            stderr: self.stderr().join("\n"),
        }
    }
}

/// A line the driver logs for each action it performs.
pub(crate) fn is_action(line: &str) -> bool {
    line.contains("performing")
}

/// A line the driver logs once an action's write has been answered.
pub(crate) fn is_action_done(line: &str) -> bool {
    line.contains("\"performed\"") || line.contains(" performed ")
}

/// Perform an operation (promote, abort, ...) as a person would with the CLI: merge patches on
/// the Rollout and its status subresource.
pub(crate) async fn operate(
    client: &Client,
    ns: &str,
    name: &str,
    operation: &Operation,
) -> String {
    let api: Api<Rollout> = Api::namespaced(client.clone(), ns);
    let rollout = api.get(name).await.expect("the rollout exists");
    let (patches, message) = operate::patches(&rollout, operation)
        .unwrap_or_else(|e| panic!("{} {name}: {e}", operation.verb()));
    let params = PatchParams::default();
    if let Some(spec) = &patches.spec {
        api.patch(name, &params, &Patch::Merge(spec))
            .await
            .expect("patching the rollout");
    }
    if let Some(status) = &patches.status {
        api.patch_status(name, &params, &Patch::Merge(status))
            .await
            .expect("patching the rollout status");
    }
    message
}

/// Waits until the Rollout satisfies `cond`.
pub(crate) async fn wait_rollout(
    client: &Client,
    ns: &str,
    name: &str,
    what: &str,
    cond: impl Fn(&Rollout) -> bool,
) -> Rollout {
    let api: Api<Rollout> = Api::namespaced(client.clone(), ns);
    cluster::wait_until(&api, name, Duration::from_secs(120), what, cond).await
}

/// What the monitor saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    /// Invariant violations, with the state at that moment.
    pub(crate) violations: Vec<String>,
    /// `status.currentStepIndex` each time it changed.
    pub(crate) step_indexes: Vec<i32>,
    /// Lowest number of available pods over all the rollout's ReplicaSets.
    pub(crate) min_available: Option<i32>,
}

/// Watches a namespace while a rollout is driven and checks, at every change, that no
/// Service selects a ReplicaSet without available pods and (when `min_available` is set) that
/// the available pods never drop below it.
///
/// The three watches deliver their events independently, so one may lag behind another: a
/// ReplicaSet scaled down can arrive before the Service switch that preceded it. The monitor
/// therefore logs every event and replays the log in resourceVersion order (one etcd: one
/// global order) to see the states as they happened.
pub(crate) struct Monitor {
    log: Arc<Mutex<EventLog>>,
    services: Vec<String>,
    min_available: Option<i32>,
    task: tokio::task::JoinHandle<()>,
}

/// Retries a failed watch every 200 ms: the monitor must be back as soon as the API server
/// is (after a restart), or it could miss a step taken in between.
struct Retry;

impl Iterator for Retry {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(200))
    }
}

impl kube::runtime::utils::Backoff for Retry {
    fn reset(&mut self) {}
}

enum Change {
    ReplicaSet(watcher::Event<ReplicaSet>),
    Service(watcher::Event<Service>),
    Rollout(watcher::Event<Rollout>),
}

enum Logged {
    ReplicaSet(ReplicaSet),
    ReplicaSetGone(String),
    Selector(String, String),
    Step(Option<i32>),
}

#[derive(Default)]
struct EventLog {
    /// The resourceVersion the initial lists reached: states up to it predate the monitor.
    start: u64,
    entries: Vec<(u64, Logged)>,
}

fn resource_version(meta: &kube::api::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Monitor {
    pub(crate) fn start(
        client: &Client,
        ns: &str,
        services: &[&str],
        min_available: Option<i32>,
    ) -> Self {
        let log = Arc::new(Mutex::new(EventLog::default()));
        let sink = Arc::clone(&log);
        let config = watcher::Config::default;
        let sets = watcher(Api::<ReplicaSet>::namespaced(client.clone(), ns), config())
            .backoff(Retry)
            .map(|e| e.map(Change::ReplicaSet));
        let svcs = watcher(Api::<Service>::namespaced(client.clone(), ns), config())
            .backoff(Retry)
            .map(|e| e.map(Change::Service));
        let rollouts = watcher(Api::<Rollout>::namespaced(client.clone(), ns), config())
            .backoff(Retry)
            .map(|e| e.map(Change::Rollout));
        let task = tokio::spawn(async move {
            let mut changes =
                futures::stream::select_all([sets.boxed(), svcs.boxed(), rollouts.boxed()]);
            // Which watches have listed once: a later list (after the API server or etcd went
            // away, or a 410) logs the objects as changes, and must not move `start`.
            let mut listed = [false; 3];
            while let Some(change) = changes.next().await {
                // An error (the API server is down) is retried by the watcher's back-off.
                let Ok(change) = change else { continue };
                let (kind, init_done) = match &change {
                    Change::ReplicaSet(e) => (0, matches!(e, watcher::Event::InitDone)),
                    Change::Service(e) => (1, matches!(e, watcher::Event::InitDone)),
                    Change::Rollout(e) => (2, matches!(e, watcher::Event::InitDone)),
                };
                if init_done {
                    listed[kind] = true;
                }
                let initial = !listed[kind]
                    && matches!(
                        change,
                        Change::ReplicaSet(watcher::Event::InitApply(_))
                            | Change::Service(watcher::Event::InitApply(_))
                            | Change::Rollout(watcher::Event::InitApply(_))
                    );
                let entry = match change {
                    Change::ReplicaSet(
                        watcher::Event::Apply(rs) | watcher::Event::InitApply(rs),
                    ) => (resource_version(&rs.metadata), Logged::ReplicaSet(rs)),
                    Change::ReplicaSet(watcher::Event::Delete(rs)) => (
                        resource_version(&rs.metadata),
                        Logged::ReplicaSetGone(rs.metadata.name.unwrap_or_default()),
                    ),
                    Change::Service(
                        watcher::Event::Apply(svc) | watcher::Event::InitApply(svc),
                    ) => {
                        let rv = resource_version(&svc.metadata);
                        let name = svc.metadata.name.clone().unwrap_or_default();
                        let hash = svc
                            .spec
                            .and_then(|s| s.selector)
                            .and_then(|s| s.get(POD_TEMPLATE_HASH_LABEL).cloned())
                            .unwrap_or_default();
                        (rv, Logged::Selector(name, hash))
                    }
                    Change::Rollout(watcher::Event::Apply(ro) | watcher::Event::InitApply(ro)) => {
                        let step = ro.status.as_ref().and_then(|s| s.current_step_index);
                        (resource_version(&ro.metadata), Logged::Step(step))
                    }
                    _ => continue,
                };
                let mut log = sink.lock().unwrap();
                if initial {
                    log.start = log.start.max(entry.0);
                }
                log.entries.push(entry);
            }
        });
        Self {
            log,
            services: services.iter().map(|s| s.to_string()).collect(),
            min_available,
            task,
        }
    }

    /// What happened so far, replayed in resourceVersion order.
    pub(crate) fn seen(&self) -> Seen {
        let log = self.log.lock().unwrap();
        let mut order: Vec<&(u64, Logged)> = log.entries.iter().collect();
        order.sort_by_key(|(rv, _)| *rv);
        let mut seen = Seen::default();
        let mut replica_sets: BTreeMap<String, &ReplicaSet> = BTreeMap::new();
        let mut selectors: BTreeMap<&str, &str> = BTreeMap::new();
        let mut last_step = None;
        let mut index = 0;
        while index < order.len() {
            // Apply every event of one resourceVersion (or all that predate the monitor) first.
            let at = order[index].0.max(log.start);
            while index < order.len() && order[index].0 <= at {
                match &order[index].1 {
                    Logged::ReplicaSet(rs) => {
                        replica_sets.insert(rs.metadata.name.clone().unwrap_or_default(), rs);
                    }
                    Logged::ReplicaSetGone(name) => {
                        replica_sets.remove(name);
                    }
                    Logged::Selector(service, hash) => {
                        selectors.insert(service, hash);
                    }
                    Logged::Step(step) => {
                        // Only changes the monitor saw happen, not the state it started from.
                        if *step != last_step && order[index].0 > log.start {
                            seen.step_indexes.extend(*step);
                        }
                        last_step = *step;
                    }
                }
                index += 1;
            }
            self.check(&replica_sets, &selectors, &mut seen);
        }
        seen
    }

    fn check(
        &self,
        replica_sets: &BTreeMap<String, &ReplicaSet>,
        selectors: &BTreeMap<&str, &str>,
        seen: &mut Seen,
    ) {
        let available = |rs: &ReplicaSet| {
            rs.status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0)
        };
        let total: i32 = replica_sets.values().map(|rs| available(rs)).sum();
        seen.min_available = Some(seen.min_available.map_or(total, |m| m.min(total)));
        let state = || {
            replica_sets
                .values()
                .map(|rs| {
                    format!(
                        "{}={}",
                        rs.metadata.name.as_deref().unwrap_or(""),
                        available(rs)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(floor) = self.min_available
            && total < floor
        {
            seen.violations
                .push(format!("{total} available pods < {floor}: {}", state()));
        }
        for service in &self.services {
            let Some(hash) = selectors.get(service.as_str()).filter(|h| !h.is_empty()) else {
                continue;
            };
            let selected = replica_sets.values().find(|rs| {
                rs.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
                    == Some(&hash.to_string())
            });
            if selected.is_none_or(|rs| available(rs) == 0) {
                seen.violations.push(format!(
                    "service {service} selects {hash}, which has no available pods: {}",
                    state()
                ));
            }
        }
    }

    pub(crate) fn stop(self) -> Seen {
        self.task.abort();
        self.seen()
    }
}

/// The stable and canary Services the e2e Rollouts name (`app: web`, port 80 to `http`).
pub(crate) const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web-stable}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-canary}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

/// The pod-template hash a Service selects ("" when none).
pub(crate) async fn selected_hash(client: &Client, ns: &str, service: &str) -> String {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    api.get(service)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get(POD_TEMPLATE_HASH_LABEL).cloned())
        .unwrap_or_default()
}
