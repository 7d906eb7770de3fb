//! How quickly the runner reacts on a real cluster: the time from "the canary's pods are
//! ready" to the runner's next action, and the total time of a 5-step canary without pauses
//! compared with the time its pods take to become ready.
//!
//! Needs a control plane: `tests/bench/drive` starts one (or set
//! `ROLLOUT_RUNNER_E2E_KUBECONFIG` and run `cargo bench --bench drive_latency`). Each release
//! runs `rollout-runner apply --wait` as a user would; a watch records when each ReplicaSet
//! becomes fully available, and the runner's debug log when it performs each action and each
//! API request it makes (writes, and reads besides the watches, from the first action on).
//!
//! `ROLLOUT_RUNNER_BENCH_BIN=PATH` runs another build of the runner (an older one, to compare).
//!
//! With `ROLLOUT_RUNNER_E2E_ARGO_CONTROLLER=PATH` (Argo Rollouts' `rollouts-controller`,
//! `tests/platforms/build argo-rollouts`; `tests/bench/drive` sets it), the same releases also
//! run under Argo's controller in a second namespace, alternating with the runner's, and both
//! are measured the same way from watches: release time from the new spec's first event to the
//! first Healthy status of that generation, and ReplicaSet fully available to the next change of
//! any ReplicaSet's `spec.replicas` (the next scale). Requests: the runner's request log (from
//! `apply`'s first write on, so its start-up lists are left out), Argo's
//! `controller_clientset_k8s_request_total` counter read before the apply and after Healthy.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark prints its figures"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, Config};

const READY_DELAY_SECONDS: u64 = 2;
const RELEASES: usize = 5;
/// setWeight steps, each waiting for one pod to become ready: the floor of a release.
const RELEASE_STEPS: u64 = 5;

/// Argo's instance-id label: the Rollouts Argo's controller drives carry it.
const ARGO_INSTANCE: &str = "argo-rollouts.argoproj.io/controller-instance-id: bench";

fn rollout(image: &str, labels: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web, labels: {{{labels}}}}}
spec:
  replicas: 5
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web}}
      annotations: {{"test.rollout-runner.io/ready-delay": "{READY_DELAY_SECONDS}s"}}
    spec:
      containers: [{{name: web, image: "{image}"}}]
  strategy:
    canary:
      maxSurge: 1
      maxUnavailable: 0
      steps:
        - setWeight: 20
        - setWeight: 40
        - setWeight: 60
        - setWeight: 80
        - setWeight: 100
"#
    )
}

/// When each ReplicaSet became fully available (spec replicas > 0, all available).
type ReadyLog = Arc<Mutex<Vec<(Timestamp, String)>>>;

fn watch_ready(client: &Client, ns: &str) -> (ReadyLog, tokio::task::JoinHandle<()>) {
    let log = ReadyLog::default();
    let sink = Arc::clone(&log);
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let task = tokio::spawn(async move {
        let mut last: BTreeMap<String, i32> = BTreeMap::new();
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(event)) = events.next().await {
            let (watcher::Event::Apply(rs) | watcher::Event::InitApply(rs)) = event else {
                continue;
            };
            let name = rs.metadata.name.clone().unwrap_or_default();
            let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let available = rs
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            let before = last.insert(name.clone(), available).unwrap_or(0);
            if spec > 0 && available == spec && available > before {
                sink.lock().unwrap().push((Timestamp::now(), name));
            }
        }
    });
    (log, task)
}

struct Run {
    took: Duration,
    /// When the runner performed each action (from its debug log).
    actions: Vec<Timestamp>,
    /// Writes, non-watch reads and Event writes from the first action on; `None` without a
    /// request log.
    requests: Option<Requests>,
}

/// Writes and non-watch reads in the request log, from the first action on.
/// Writes (Events included), reads that are not watches, and writes of Events.
type Requests = (usize, usize, usize);

fn count_requests(log: &[serde_json::Value]) -> Option<Requests> {
    let first = log
        .iter()
        .position(|entry| entry["fields"]["message"] == "performing")?;
    let requests: Vec<(&str, &str)> = log[first..]
        .iter()
        .filter(|entry| entry["target"] == "rollout_runner::api")
        .filter_map(|entry| {
            let fields = &entry["fields"];
            Some((
                fields["verb"].as_str()?,
                fields["resource"].as_str().unwrap_or(""),
            ))
        })
        .collect();
    if requests.is_empty() {
        return None;
    }
    let is_write = |verb: &str| matches!(verb, "create" | "update" | "patch" | "delete");
    let writes = requests.iter().filter(|(v, _)| is_write(v)).count();
    let reads = requests
        .iter()
        .filter(|(v, _)| matches!(*v, "get" | "list"))
        .count();
    let events = requests
        .iter()
        .filter(|(v, resource)| is_write(v) && *resource == "events")
        .count();
    Some((writes, reads, events))
}

fn runner_binary() -> std::ffi::OsString {
    std::env::var_os("ROLLOUT_RUNNER_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rollout-runner").into())
}

async fn apply_wait(kubeconfig: &Path, ns: &str, dir: &Path) -> Run {
    let start = Instant::now();
    let output = tokio::process::Command::new(runner_binary())
        .args([
            "apply",
            dir.to_str().unwrap(),
            "--wait",
            "--timeout",
            "5m",
            "-n",
            ns,
        ])
        .env("KUBECONFIG", kubeconfig)
        .env(
            "ROLLOUT_RUNNER_LOG",
            "rollout_runner::driver=debug,rollout_runner::api=debug",
        )
        .env("ROLLOUT_RUNNER_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("rollout-runner runs");
    let took = start.elapsed();
    assert!(
        output.status.success(),
        "apply --wait failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .collect();
    let actions = log
        .iter()
        .filter(|entry| entry["fields"]["message"] == "performing")
        .filter_map(|entry| entry["timestamp"].as_str()?.parse().ok())
        .collect();
    Run {
        took,
        actions,
        requests: count_requests(&log),
    }
}

/// Create namespace `name`; returns the namespaces' API, to delete it again.
async fn create_namespace(client: &Client, name: &str) -> Api<Namespace> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("a namespace");
    namespaces
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let Some(kubeconfig) = std::env::var_os("ROLLOUT_RUNNER_E2E_KUBECONFIG") else {
        eprintln!("drive_latency: set ROLLOUT_RUNNER_E2E_KUBECONFIG (tests/bench/drive does)");
        return;
    };
    let kubeconfig = Path::new(&kubeconfig).to_path_buf();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let options = kube::config::KubeConfigOptions::default();
    let config = Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).expect("a kubeconfig"),
        &options,
    )
    .await
    .expect("a usable kubeconfig");
    let client = Client::try_from(config).expect("a client");
    let ns = format!("bench-latency-{}", std::process::id());
    let namespaces = create_namespace(&client, &ns).await;

    let dir = tempfile::tempdir().unwrap();
    let write =
        |image: &str| std::fs::write(dir.path().join("rollout.yaml"), rollout(image, "")).unwrap();
    write("web:0");
    apply_wait(&kubeconfig, &ns, dir.path()).await;

    let argo = match std::env::var_os(ARGO_ENV).filter(|v| !v.is_empty()) {
        Some(binary) => Some(ArgoSide::start(&client, &kubeconfig, Path::new(&binary)).await),
        None => None,
    };
    let runner_timeline = Timeline::watch(&client, &ns);
    let mut runner_figures = Figures::default();
    let (ready, watch) = watch_ready(&client, &ns);
    let mut latencies = Vec::new();
    let mut totals = Vec::new();
    let mut waits = Vec::new();
    let mut requests = Vec::new();
    for release in 1..=RELEASES {
        if let Some(argo) = &argo {
            argo.release(&kubeconfig, release).await;
        }
        write(&format!("web:{release}"));
        ready.lock().unwrap().clear();
        runner_timeline.clear();
        let run = apply_wait(&kubeconfig, &ns, dir.path()).await;
        runner_figures.add(&runner_timeline.events(), run.requests);
        let ready_at = ready.lock().unwrap().clone();
        // Each time a ReplicaSet became fully available and the runner acted after it: the
        // time to its first action after that moment.
        let mut reacted = 0;
        for (at, _) in &ready_at {
            if let Some(next) = run.actions.iter().filter(|a| *a >= at).min() {
                let ms = next.duration_since(*at).as_secs_f64() * 1000.0;
                if ms < 10_000.0 {
                    latencies.push(ms);
                    reacted += 1;
                }
            }
        }
        totals.push(run.took.as_secs_f64());
        requests.extend(run.requests);
        waits.push(reacted);
    }
    watch.abort();
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    if let Some(argo) = argo {
        let argo_figures = argo.finish().await;
        print_comparison(&runner_figures, &argo_figures);
    }

    let pod_waits = median(&mut waits.iter().map(|w| f64::from(*w)).collect::<Vec<_>>());
    let sum_of_ready = pod_waits * READY_DELAY_SECONDS as f64;
    let total = median(&mut totals);
    let n = latencies.len();
    let mut sorted = latencies.clone();
    let median_ms = median(&mut latencies);
    sorted.sort_by(f64::total_cmp);
    let p90 = sorted[(n * 9 / 10).min(n - 1)];
    println!(
        "releases: {RELEASES} (5 setWeight steps, no pauses, 5 replicas, maxSurge 1, pods ready after {READY_DELAY_SECONDS}s)"
    );
    println!(
        "pods ready -> next action: median {median_ms:.0} ms, p90 {p90:.0} ms, max {:.0} ms ({n} samples)",
        sorted[n - 1]
    );
    if requests.is_empty() {
        println!("requests per release: no request log (a build without one)");
    } else {
        let per_release = |pick: fn(&Requests) -> usize| {
            median(&mut requests.iter().map(|r| pick(r) as f64).collect::<Vec<_>>())
        };
        println!(
            "requests per release, from the first action on: median {:.0} writes, {:.0} non-watch reads",
            per_release(|r| r.0),
            per_release(|r| r.1)
        );
    }
    println!(
        "release total: median {total:.1} s; waits for pods: {pod_waits} x {READY_DELAY_SECONDS}s = {sum_of_ready:.0} s; \
         overhead {:.1} s ({:.0}%)",
        total - sum_of_ready,
        (total - sum_of_ready) / sum_of_ready * 100.0
    );
}

/// Argo's `rollouts-controller` (`tests/platforms/build argo-rollouts`).
const ARGO_ENV: &str = "ROLLOUT_RUNNER_E2E_ARGO_CONTROLLER";

/// What a watch of one namespace saw.
#[derive(Debug, Clone)]
enum Seen {
    /// A Rollout event: generation, observedGeneration, phase.
    Rollout(Timestamp, i64, String, String),
    /// A ReplicaSet event: name, spec.replicas, availableReplicas.
    ReplicaSet(Timestamp, String, i32, i32),
}

/// Timestamped Rollout and ReplicaSet events of a namespace, as a controller-independent
/// record of a release.
struct Timeline {
    seen: Arc<Mutex<Vec<Seen>>>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Timeline {
    fn watch(client: &Client, ns: &str) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let sink = Arc::clone(&seen);
        let rollouts: Api<rollout_runner::crd::Rollout> = Api::namespaced(client.clone(), ns);
        let watch_rollouts = tokio::spawn(async move {
            let mut events = watcher(rollouts, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = events.next().await {
                if let watcher::Event::Apply(ro) | watcher::Event::InitApply(ro) = event {
                    let status = ro.status.clone().unwrap_or_default();
                    sink.lock().unwrap().push(Seen::Rollout(
                        Timestamp::now(),
                        ro.metadata.generation.unwrap_or(0),
                        status.observed_generation.clone(),
                        status.phase.map(|p| p.to_string()).unwrap_or_default(),
                    ));
                }
            }
        });
        let sink = Arc::clone(&seen);
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
        let watch_sets = tokio::spawn(async move {
            let mut events = watcher(sets, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = events.next().await {
                if let watcher::Event::Apply(rs) | watcher::Event::InitApply(rs) = event {
                    sink.lock().unwrap().push(Seen::ReplicaSet(
                        Timestamp::now(),
                        rs.metadata.name.clone().unwrap_or_default(),
                        rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
                        rs.status
                            .as_ref()
                            .and_then(|s| s.available_replicas)
                            .unwrap_or(0),
                    ));
                }
            }
        });
        Self {
            seen,
            tasks: [watch_rollouts, watch_sets],
        }
    }

    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }

    fn events(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Wait until the Rollout's newest generation is Healthy.
    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            if release_time(&self.events()).is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the release under Argo's controller did not become Healthy within 5 minutes");
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Seconds from the newest generation's first event to its first Healthy status.
fn release_time(events: &[Seen]) -> Option<f64> {
    let generation = events
        .iter()
        .filter_map(|e| match e {
            Seen::Rollout(_, generation, ..) => Some(*generation),
            Seen::ReplicaSet(..) => None,
        })
        .max()?;
    let mut started = None;
    for event in events {
        if let Seen::Rollout(at, g, observed, phase) = event {
            if *g != generation {
                continue;
            }
            let start = *started.get_or_insert(*at);
            if *observed == generation.to_string() && phase == "Healthy" {
                return Some(at.duration_since(start).as_secs_f64());
            }
        }
    }
    None
}

/// Milliseconds from each ReplicaSet becoming fully available to the next change of any
/// ReplicaSet's `spec.replicas`.
fn ready_to_next_scale(events: &[Seen]) -> Vec<f64> {
    let mut last: BTreeMap<&str, (i32, i32)> = BTreeMap::new();
    let mut pending: Vec<Timestamp> = Vec::new();
    let mut latencies = Vec::new();
    for event in events {
        let Seen::ReplicaSet(at, name, spec, available) = event else {
            continue;
        };
        let before = last.insert(name.as_str(), (*spec, *available));
        if let Some((spec_before, _)) = before
            && spec_before != *spec
        {
            latencies.extend(
                pending
                    .drain(..)
                    .map(|ready| at.duration_since(ready).as_secs_f64() * 1000.0),
            );
        }
        let available_before = before.map_or(0, |b| b.1);
        if *spec > 0 && available == spec && *available > available_before {
            pending.push(*at);
        }
    }
    latencies
}

/// The figures of every release of one controller.
#[derive(Default)]
struct Figures {
    releases: Vec<f64>,
    reactions: Vec<f64>,
    requests: Vec<Requests>,
}

impl Figures {
    fn add(&mut self, events: &[Seen], requests: Option<Requests>) {
        self.releases.extend(release_time(events));
        self.reactions.extend(ready_to_next_scale(events));
        self.requests.extend(requests);
    }
}

/// Argo's controller and its namespace.
struct ArgoSide {
    controller: tokio::process::Child,
    metrics: String,
    ns: String,
    dir: tempfile::TempDir,
    timeline: Timeline,
    figures: Mutex<Figures>,
    client: Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Argo's request counter: writes, reads that are not watches, writes of Events.
async fn argo_requests(metrics: &str) -> Requests {
    let text = reqwest::get(metrics)
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("Argo's metrics")
        .text()
        .await
        .expect("Argo's metrics text");
    let (mut writes, mut reads, mut events) = (0.0, 0.0, 0.0);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("controller_clientset_k8s_request_total{") else {
            continue;
        };
        let value: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if ["Create", "Update", "Patch", "Delete"]
            .iter()
            .any(|verb| rest.contains(&format!("verb=\"{verb}\"")))
        {
            writes += value;
            if rest.contains("kind=\"events\"") {
                events += value;
            }
        } else if ["Get", "List"]
            .iter()
            .any(|verb| rest.contains(&format!("verb=\"{verb}\"")))
        {
            reads += value;
        }
    }
    (writes as usize, reads as usize, events as usize)
}

impl ArgoSide {
    async fn start(client: &Client, kubeconfig: &Path, binary: &Path) -> Self {
        let ns = format!("bench-argo-{}", std::process::id());
        create_namespace(client, &ns).await;
        let port = free_port();
        let controller = tokio::process::Command::new(binary)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespaced", "--namespace", &ns])
            .args(["--instance-id", "bench", "--leader-elect=false"])
            .args(["--metricsPort", &port.to_string()])
            .args(["--healthzPort", &free_port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("Argo's controller starts");
        let side = Self {
            controller,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            timeline: Timeline::watch(client, &ns),
            ns,
            dir: tempfile::tempdir().unwrap(),
            figures: Mutex::default(),
            client: client.clone(),
        };
        // The first deploy, not measured.
        side.apply(kubeconfig, 0).await;
        side
    }

    /// Apply release `n` (server-side apply, nothing driven by the runner) and wait for Argo's
    /// controller to make it Healthy.
    async fn apply(&self, kubeconfig: &Path, n: usize) {
        std::fs::write(
            self.dir.path().join("rollout.yaml"),
            rollout(&format!("web:{n}"), ARGO_INSTANCE),
        )
        .unwrap();
        self.timeline.clear();
        let status = tokio::process::Command::new(runner_binary())
            // Argo's controller writes the Rollout with updates, which own every field: a
            // second server-side apply must take them back.
            .args(["apply", self.dir.path().to_str().unwrap(), "-n", &self.ns])
            .arg("--force-conflicts")
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .status()
            .await
            .expect("rollout-runner apply runs");
        assert!(status.success(), "apply for Argo's controller failed");
        self.timeline.wait_healthy().await;
    }

    async fn release(&self, kubeconfig: &Path, n: usize) {
        let before = argo_requests(&self.metrics).await;
        self.apply(kubeconfig, n).await;
        // As long as the runner's `apply --wait` settles after Healthy: the old version's
        // scale-down.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = argo_requests(&self.metrics).await;
        let requests = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
        self.figures
            .lock()
            .unwrap()
            .add(&self.timeline.events(), Some(requests));
    }

    async fn finish(mut self) -> Figures {
        let _ = self.controller.kill().await;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
        std::mem::take(&mut *self.figures.lock().unwrap())
    }
}

fn percentile(values: &[f64], p: usize) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

fn print_comparison(runner: &Figures, argo: &Figures) {
    let floor = (RELEASE_STEPS * READY_DELAY_SECONDS) as f64;
    let over = |f: &Figures| percentile(&f.releases, 50) - floor;
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}", a / b)
        } else {
            "-".into()
        }
    };
    let per_release = |f: &Figures, pick: fn(&Requests) -> usize| {
        percentile(
            &f.requests
                .iter()
                .map(|r| pick(r) as f64)
                .collect::<Vec<_>>(),
            50,
        )
    };
    println!();
    println!(
        "beside Argo's controller (same run, alternating releases, measured from watches; floor {floor:.0} s):"
    );
    println!("| | Argo v1.10.2 | rollout-runner | runner / Argo |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| release time over the floor (median of {}) | {:.2} s | {:.2} s | {} |",
        runner.releases.len().min(argo.releases.len()),
        over(argo),
        over(runner),
        ratio(over(runner), over(argo))
    );
    for (name, p) in [("p50", 50), ("p90", 90), ("max", 100)] {
        let (a, r) = (
            percentile(&argo.reactions, p),
            percentile(&runner.reactions, p),
        );
        println!(
            "| ReplicaSet available -> next scale, {name} ({} / {} samples) | {a:.0} ms | {r:.0} ms | {} |",
            argo.reactions.len(),
            runner.reactions.len(),
            ratio(r, a)
        );
    }
    let (aw, rw) = (
        per_release(argo, |r| r.0 - r.2),
        per_release(runner, |r| r.0 - r.2),
    );
    println!(
        "| writes per release, Events left out (median) | {aw:.0} | {rw:.0} | {} |",
        ratio(rw, aw)
    );
    let (ae, re) = (per_release(argo, |r| r.2), per_release(runner, |r| r.2));
    println!(
        "| Event writes per release (median) | {ae:.0} | {re:.0} | {} |",
        ratio(re, ae)
    );
    let (ar, rr) = (per_release(argo, |r| r.1), per_release(runner, |r| r.1));
    println!(
        "| non-watch reads per release (median) | {ar:.0} | {rr:.0} | {} |",
        ratio(rr, ar)
    );
}
