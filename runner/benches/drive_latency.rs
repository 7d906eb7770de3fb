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

fn rollout(image: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
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
    /// Writes and non-watch reads from the first action on; `None` without a request log.
    requests: Option<(usize, usize)>,
}

/// Writes and non-watch reads in the request log, from the first action on.
fn count_requests(log: &[serde_json::Value]) -> Option<(usize, usize)> {
    let first = log
        .iter()
        .position(|entry| entry["fields"]["message"] == "performing")?;
    let verbs: Vec<&str> = log[first..]
        .iter()
        .filter(|entry| entry["target"] == "rollout_runner::api")
        .filter_map(|entry| entry["fields"]["verb"].as_str())
        .collect();
    if verbs.is_empty() {
        return None;
    }
    let writes = verbs
        .iter()
        .filter(|v| matches!(**v, "create" | "update" | "patch" | "delete"))
        .count();
    let reads = verbs
        .iter()
        .filter(|v| matches!(**v, "get" | "list"))
        .count();
    Some((writes, reads))
}

async fn apply_wait(kubeconfig: &Path, ns: &str, dir: &Path) -> Run {
    let start = Instant::now();
    let binary = std::env::var_os("ROLLOUT_RUNNER_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rollout-runner").into());
    let output = tokio::process::Command::new(binary)
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
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("a namespace");

    let dir = tempfile::tempdir().unwrap();
    let write =
        |image: &str| std::fs::write(dir.path().join("rollout.yaml"), rollout(image)).unwrap();
    write("web:0");
    apply_wait(&kubeconfig, &ns, dir.path()).await;

    let (ready, watch) = watch_ready(&client, &ns);
    let mut latencies = Vec::new();
    let mut totals = Vec::new();
    let mut waits = Vec::new();
    let mut requests = Vec::new();
    for release in 1..=RELEASES {
        write(&format!("web:{release}"));
        ready.lock().unwrap().clear();
        let run = apply_wait(&kubeconfig, &ns, dir.path()).await;
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
        let per_release = |pick: fn(&(usize, usize)) -> usize| {
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
