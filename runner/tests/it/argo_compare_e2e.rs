//! The runner's status transitions beside Argo's own controller (v1.10.2, built from its Go
//! module by `tests/platforms/build argo-rollouts`, run as a host process for its own
//! namespace): the same canary and blue-green releases, from the same manifests, once under
//! Argo's controller and once under `apply --wait`, each recorded as the sequence of states the
//! controller wrote, and compared.
//!
//! A state is `(phase, message, ReplicaSets that exist)` of every status written for the
//! Rollout's current generation; repeats are collapsed. ReplicaSets are counted by
//! `resourceVersion` (etcd orders every write), so "the ReplicaSet was created before the
//! status said the release started" is exact, not a race between two watches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::Client;
use kube::api::Api;
use kube::runtime::watcher;
use rollout_runner::crd::{Rollout, RolloutPhase};
use rollout_runner::operate::Operation;

use crate::drive_e2e::{assert_exit, blue_green, canary};
use crate::support::argo_controller::{self, ArgoController, INSTANCE_ID, INSTANCE_ID_LABEL};
use crate::support::cluster::{self, TestNamespace, fault};
use crate::support::runner::{
    Manifests, Running, SERVICES, apply_wait, command, finish, operate, wait_rollout,
};

/// One state a controller wrote: phase, message, how many ReplicaSets existed.
type State = (String, String, usize);

#[derive(Default)]
struct Recorded {
    /// `(resourceVersion, generation, observedGeneration, phase, message)` of each Rollout
    /// event.
    rollouts: Vec<(u64, i64, String, String, String)>,
    /// The resourceVersion at which each ReplicaSet was first seen (0: before the recording).
    replica_sets: BTreeMap<String, u64>,
}

fn version(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Records every Rollout status and ReplicaSet creation of a namespace.
struct Recorder {
    recorded: Arc<Mutex<Recorded>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Recorder {
    async fn start(client: &Client, ns: &str) -> Self {
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let (listed, mut ready) = tokio::sync::mpsc::channel::<()>(2);
        let rollouts: Api<Rollout> = Api::namespaced(client.clone(), ns);
        let sink = Arc::clone(&recorded);
        let first = listed.clone();
        let watch_rollouts = tokio::spawn(async move {
            let mut events = watcher(rollouts, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = events.next().await {
                match event {
                    watcher::Event::InitDone => {
                        let _ = first.send(()).await;
                    }
                    watcher::Event::Apply(ro) => {
                        let status = ro.status.clone().unwrap_or_default();
                        sink.lock().unwrap().rollouts.push((
                            version(&ro.metadata),
                            ro.metadata.generation.unwrap_or(0),
                            status.observed_generation.clone(),
                            status.phase.map(|p| p.to_string()).unwrap_or_default(),
                            status.message.clone(),
                        ));
                    }
                    _ => {}
                }
            }
        });
        let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
        let sink = Arc::clone(&recorded);
        let watch_sets = tokio::spawn(async move {
            let mut events = watcher(sets, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = events.next().await {
                match event {
                    watcher::Event::InitApply(rs) => {
                        let name = rs.metadata.name.clone().unwrap_or_default();
                        sink.lock().unwrap().replica_sets.insert(name, 0);
                    }
                    watcher::Event::InitDone => {
                        let _ = listed.send(()).await;
                    }
                    watcher::Event::Apply(rs) => {
                        let name = rs.metadata.name.clone().unwrap_or_default();
                        let at = version(&rs.metadata);
                        sink.lock().unwrap().replica_sets.entry(name).or_insert(at);
                    }
                    _ => {}
                }
            }
        });
        for _ in 0..2 {
            tokio::time::timeout(cluster::TIMEOUT, ready.recv())
                .await
                .expect("the recorder's watches list within the timeout");
        }
        Self {
            recorded,
            tasks: vec![watch_rollouts, watch_sets],
        }
    }

    /// The states written for the current generation, repeats collapsed.
    fn stop(self) -> Vec<State> {
        for task in &self.tasks {
            task.abort();
        }
        let recorded = self.recorded.lock().unwrap();
        let mut states: Vec<State> = Vec::new();
        for (at, generation, observed, phase, message) in &recorded.rollouts {
            if observed != &generation.to_string() || phase.is_empty() {
                continue;
            }
            let sets = recorded
                .replica_sets
                .values()
                .filter(|created| **created < *at)
                .count();
            let state = (phase.clone(), message.clone(), sets);
            if states.last() != Some(&state) {
                states.push(state);
            }
        }
        states
    }
}

/// How a release is driven: by Argo's controller (its Rollouts labelled for it) or by
/// `apply --wait`.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Driver {
    Argo,
    Runner,
}

/// The Rollout manifest with Argo's instance-id label when Argo drives it.
fn labelled(rollout: &str, driver: Driver) -> String {
    match driver {
        Driver::Argo => rollout.replace(
            "metadata: {name: web}",
            &format!("metadata: {{name: web, labels: {{{INSTANCE_ID_LABEL}: {INSTANCE_ID}}}}}"),
        ),
        Driver::Runner => rollout.to_string(),
    }
}

fn is_healthy(ro: &Rollout) -> bool {
    ro.status.as_ref().is_some_and(|s| {
        s.phase == Some(RolloutPhase::Healthy)
            && ro
                .metadata
                .generation
                .is_some_and(|g| s.observed_generation == g.to_string())
    })
}

fn is_paused(ro: &Rollout) -> bool {
    ro.status
        .as_ref()
        .is_some_and(|s| !s.pause_conditions.is_empty())
}

/// Apply `rollout` (with the Services) and see it to Healthy under `driver`, promoting once
/// when `promote` is set; returns the states written from the apply on.
async fn release(
    client: &Client,
    ns: &str,
    driver: Driver,
    rollout: &str,
    promote: bool,
) -> Vec<State> {
    let manifests = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &labelled(rollout, driver)),
    ]);
    let recorder = Recorder::start(client, ns).await;
    match driver {
        Driver::Argo => {
            // Argo's controller writes the Rollout with updates, which own every field: the
            // second server-side apply takes them back.
            let path = manifests.path().to_str().expect("a UTF-8 path");
            let applied = finish(command(ns, &["apply", path, "--force-conflicts"])).await;
            assert_exit(&applied, 0, "apply for Argo's controller");
            if promote {
                wait_rollout(client, ns, "web", "Argo's pause", is_paused).await;
                operate(client, ns, "web", &Operation::Promote).await;
            }
            wait_rollout(client, ns, "web", "Argo's release", is_healthy).await;
        }
        Driver::Runner => {
            let running = Running::start(apply_wait(ns, manifests.path(), &[]));
            if promote {
                wait_rollout(client, ns, "web", "the runner's pause", is_paused).await;
                operate(client, ns, "web", &Operation::Promote).await;
            }
            assert_exit(&running.finish().await, 0, "apply --wait");
        }
    }
    // Late status writes of the release (the scale-down of the old version) land too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    recorder.stop()
}

/// Both drivers through a first deploy and a second release of `manifest(image)`, each in its
/// own namespace; returns the second release's states, Argo's first.
async fn both(
    client: &Client,
    argo: &std::path::Path,
    prefix: &str,
    manifest: impl Fn(&str) -> String,
    promote: bool,
) -> (Vec<State>, Vec<State>, String) {
    let mut sequences = Vec::new();
    let mut log = String::new();
    for driver in [Driver::Argo, Driver::Runner] {
        let ns = TestNamespace::create(client, prefix).await;
        let controller = (driver == Driver::Argo).then(|| ArgoController::start(argo, ns.name()));
        release(client, ns.name(), driver, &manifest("web:1"), false).await;
        let states = release(client, ns.name(), driver, &manifest("web:2"), promote).await;
        if let Some(controller) = controller {
            log = controller.log();
            controller.stop().await;
        }
        sequences.push(states);
    }
    let runner = sequences.pop().unwrap();
    let argo = sequences.pop().unwrap();
    (argo, runner, log)
}

fn show(states: &[State]) -> String {
    states
        .iter()
        .map(|(phase, message, sets)| format!("  {phase:<12} {sets} RS  {message}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Phases in order, repeats collapsed.
fn phases(states: &[State]) -> Vec<&str> {
    let mut phases: Vec<&str> = states.iter().map(|s| s.0.as_str()).collect();
    phases.dedup();
    phases
}

fn ready_after(seconds: u32) -> String {
    format!("\"{}\": \"{seconds}s\"", fault::READY_DELAY)
}

/// Run both drivers (see [`both`]) and compare: the same phases in the same order, the new
/// ReplicaSet counted from the first status of the release on, the same last state.
#[allow(
    clippy::print_stdout,
    reason = "the two sequences are the test's record"
)]
async fn compare(what: &str, manifest: impl Fn(&str) -> String, promote: bool) {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some(argo) = argo_controller::binary() else {
        return;
    };
    let prefix = format!("compare-{what}");
    let (argo_states, runner_states, log) = both(&client, &argo, &prefix, manifest, promote).await;
    let report = format!(
        "Argo's controller:\n{}\napply --wait:\n{}",
        show(&argo_states),
        show(&runner_states)
    );
    println!("{what} states\n{report}");
    assert!(!argo_states.is_empty(), "Argo wrote no status\n{log}");
    assert_eq!(phases(&argo_states), phases(&runner_states), "{report}");
    // The release starts with its new ReplicaSet: the first status of the new generation
    // already counts it, under both.
    assert_eq!(argo_states[0].2, 2, "{report}");
    assert_eq!(runner_states[0].2, 2, "{report}");
    assert_eq!(argo_states.last(), runner_states.last(), "{report}");
}

#[tokio::test]
async fn e2e_a_canary_release_goes_through_argos_states() {
    let steps = r#"
        - setWeight: 40
        - setWeight: 80"#;
    let annotations = ready_after(1);
    compare(
        "canary",
        |image| canary(image, steps, &annotations, ""),
        false,
    )
    .await;
}

/// Between the promotion and the switch of the active Service both write `Progressing`
/// (Argo patches the resumed conditions in a reconcile of their own).
#[tokio::test]
async fn e2e_a_blue_green_release_goes_through_argos_states() {
    compare(
        "blue-green",
        |image| blue_green(image, "      autoPromotionEnabled: false"),
        true,
    )
    .await;
}
