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
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::Client;
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
    let dir = dir.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "apply",
        dir,
        "--wait",
        "--timeout",
        "150s",
        "--lease-duration",
        "2s",
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
    pub(crate) async fn wait_for_lines(&mut self, count: usize, matches: impl Fn(&str) -> bool) -> bool {
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

/// Perform an operation (promote, abort, ...) as a person would with the CLI: merge patches on
/// the Rollout and its status subresource.
pub(crate) async fn operate(client: &Client, ns: &str, name: &str, operation: &Operation) -> String {
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
pub(crate) async fn wait_rollout(client: &Client, ns: &str, name: &str, what: &str, cond: impl Fn(&Rollout) -> bool) -> Rollout {
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
pub(crate) struct Monitor {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

enum Change {
    ReplicaSet(watcher::Event<ReplicaSet>),
    Service(watcher::Event<Service>),
    Rollout(watcher::Event<Rollout>),
}

impl Monitor {
    pub(crate) fn start(client: &Client, ns: &str, services: &[&str], min_available: Option<i32>) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Arc::clone(&seen);
        let services: Vec<String> = services.iter().map(|s| s.to_string()).collect();
        let config = watcher::Config::default;
        let sets = watcher(Api::<ReplicaSet>::namespaced(client.clone(), ns), config())
            .default_backoff()
            .map(|e| e.map(Change::ReplicaSet));
        let svcs = watcher(Api::<Service>::namespaced(client.clone(), ns), config())
            .default_backoff()
            .map(|e| e.map(Change::Service));
        let rollouts = watcher(Api::<Rollout>::namespaced(client.clone(), ns), config())
            .default_backoff()
            .map(|e| e.map(Change::Rollout));
        let task = tokio::spawn(async move {
            let mut changes = futures::stream::select_all([sets.boxed(), svcs.boxed(), rollouts.boxed()]);
            let mut replica_sets: BTreeMap<String, ReplicaSet> = BTreeMap::new();
            let mut selectors: BTreeMap<String, String> = BTreeMap::new();
            let mut last_step: Option<i32> = None;
            while let Some(Ok(change)) = changes.next().await {
                match change {
                    Change::ReplicaSet(watcher::Event::Apply(rs) | watcher::Event::InitApply(rs)) => {
                        replica_sets.insert(rs.metadata.name.clone().unwrap_or_default(), rs);
                    }
                    Change::ReplicaSet(watcher::Event::Delete(rs)) => {
                        replica_sets.remove(rs.metadata.name.as_deref().unwrap_or(""));
                    }
                    Change::Service(watcher::Event::Apply(svc) | watcher::Event::InitApply(svc)) => {
                        let name = svc.metadata.name.clone().unwrap_or_default();
                        let hash = svc
                            .spec
                            .and_then(|s| s.selector)
                            .and_then(|s| s.get(POD_TEMPLATE_HASH_LABEL).cloned())
                            .unwrap_or_default();
                        selectors.insert(name, hash);
                    }
                    Change::Rollout(watcher::Event::Apply(ro) | watcher::Event::InitApply(ro)) => {
                        let step = ro.status.as_ref().and_then(|s| s.current_step_index);
                        if let Some(step) = step
                            && last_step != Some(step)
                        {
                            sink.lock().unwrap().step_indexes.push(step);
                            last_step = Some(step);
                        }
                        continue;
                    }
                    _ => continue,
                }
                let available = |rs: &ReplicaSet| rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
                let total: i32 = replica_sets.values().map(available).sum();
                let mut seen = sink.lock().unwrap();
                seen.min_available = Some(seen.min_available.map_or(total, |m| m.min(total)));
                let state = || {
                    replica_sets
                        .values()
                        .map(|rs| format!("{}={}", rs.metadata.name.as_deref().unwrap_or(""), available(rs)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                if let Some(floor) = min_available
                    && total < floor
                {
                    seen.violations.push(format!("{total} available pods < {floor}: {}", state()));
                }
                for service in &services {
                    let Some(hash) = selectors.get(service).filter(|h| !h.is_empty()) else {
                        continue;
                    };
                    let selected = replica_sets.values().find(|rs| {
                        rs.metadata.labels.as_ref().and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL)) == Some(hash)
                    });
                    if selected.is_none_or(|rs| available(rs) == 0) {
                        seen.violations.push(format!(
                            "service {service} selects {hash}, which has no available pods: {}",
                            state()
                        ));
                    }
                }
            }
        });
        Self { seen, task }
    }

    pub(crate) fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn stop(self) -> Seen {
        self.task.abort();
        self.seen()
    }
}
