//! The operate commands (`status`, `get`, `list`, `promote`, `abort`, `retry`, `pause`,
//! `resume`, `restart`, `set image`, `undo`) against a real API server, on rollouts that a
//! separate runner drives: `rollout-runner apply --wait` in a child process, or the driver in
//! this process. They check what each command writes, what it prints, and that the driving
//! runner reacts as the Argo Rollouts controller would.
//!
//! Every test skips when `ROLLOUT_RUNNER_E2E_KUBECONFIG` is unset (see `support::cluster`) and
//! works in a namespace of its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::ListParams;
use kube::{Api, Client};
use rollout_runner::cluster::kube::KubeCluster;
use rollout_runner::crd::{POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, Rollout};
use rollout_runner::driver::{Driver, RunOptions};
use rollout_runner::metrics::scripted::Scripted;
use rollout_runner::report::{Outcome, Silent};
use serde_json::{Value, json};

use crate::support::cluster::{self, TIMEOUT, TestNamespace, wait_until};

const IMAGE_1: &str = "registry.example/web:1";
const IMAGE_2: &str = "registry.example/web:2";
const IMAGE_3: &str = "registry.example/web:3";

/// The Rollout `web`: two pods of `image`, released with `strategy`.
fn rollout(image: &str, strategy: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            },
            "strategy": strategy
        }
    })
}

/// Write documents as a multi-document manifest file (JSON is YAML).
fn write_manifest(dir: &Path, file: &str, documents: &[Value]) -> PathBuf {
    let text = documents
        .iter()
        .map(|doc| serde_json::to_string_pretty(doc).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n");
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// A canary `web`, as a manifest file in `dir`.
fn manifest(dir: &Path, file: &str, image: &str, steps: Value) -> PathBuf {
    let strategy = json!({"canary": {"steps": steps}});
    write_manifest(dir, file, &[rollout(image, strategy)])
}

/// `setWeight: 50`, then an indefinite pause: someone has to promote.
fn pausing_steps() -> Value {
    json!([{"setWeight": 50}, {"pause": {}}])
}

fn command(kubeconfig: &Path, namespace: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollout-runner"));
    command
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", namespace])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// A finished `rollout-runner` run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The world of one test: a namespace, the kubeconfig, a directory for manifests.
struct World {
    client: Client,
    namespace: TestNamespace,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl World {
    async fn new(prefix: &str) -> Option<Self> {
        let client = cluster::client().await?;
        let namespace = TestNamespace::create(&client, prefix).await;
        Some(Self {
            client,
            namespace,
            kubeconfig: cluster::kubeconfig_path()?,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    /// A world where `web` at `IMAGE_1` with these canary steps is released and healthy.
    async fn released(prefix: &str, steps: Value) -> Option<Self> {
        let world = Self::new(prefix).await?;
        world
            .release(&world.manifest("v1.yaml", IMAGE_1, steps))
            .await;
        Some(world)
    }

    fn ns(&self) -> &str {
        self.namespace.name()
    }

    fn rollouts(&self) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), self.ns())
    }

    fn manifest(&self, file: &str, image: &str, steps: Value) -> PathBuf {
        manifest(self.dir.path(), file, image, steps)
    }

    /// Run `rollout-runner ARGS` to its end.
    async fn run(&self, args: &[&str]) -> Run {
        let mut command = command(&self.kubeconfig, self.ns(), args);
        tokio::task::spawn_blocking(move || command.output().unwrap().into())
            .await
            .unwrap()
    }

    /// Run `rollout-runner ARGS` and expect its exit code and its whole stdout.
    async fn expect(&self, args: &[&str], code: i32, stdout: &str) -> Run {
        let run = self.run(args).await;
        assert_eq!(
            (run.code, run.stdout.as_str()),
            (Some(code), stdout),
            "{args:?}: {run:?}"
        );
        run
    }

    /// The cells of the first rollout `list` shows.
    async fn list_row(&self) -> Vec<String> {
        let run = self.run(&["list"]).await;
        assert_eq!(run.code, Some(0), "{run:?}");
        let row = run
            .stdout
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("{run:?}"));
        row.split_whitespace().map(String::from).collect()
    }

    /// Start `rollout-runner ARGS` in the background.
    fn spawn(&self, args: &[&str]) -> Background {
        let child = command(&self.kubeconfig, self.ns(), args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Background(Some(child))
    }

    /// Start `rollout-runner ARGS` in the background, its stdout going to `file`.
    fn spawn_to(&self, args: &[&str], file: &Path) -> Background {
        let child = command(&self.kubeconfig, self.ns(), args)
            .stdout(std::fs::File::create(file).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Background(Some(child))
    }

    /// Release `IMAGE_2` with `pausing_steps` by `apply --wait` in the background: a runner
    /// that drives the update and waits at its pause.
    fn release_v2_in_background(&self) -> Background {
        let manifest = self.manifest("v2.yaml", IMAGE_2, pausing_steps());
        let manifest = manifest.to_str().unwrap();
        self.spawn(&["apply", manifest, "--wait", "--timeout", "120s"])
    }

    /// Release `manifest` with `apply --wait` and expect it promoted.
    async fn release(&self, manifest: &Path) {
        let run = self
            .run(&[
                "apply",
                manifest.to_str().unwrap(),
                "--wait",
                "--timeout",
                "120s",
            ])
            .await;
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(run.stdout.contains("promoted"), "{run:?}");
    }

    async fn rollout_until(&self, what: &str, cond: impl Fn(&Rollout) -> bool) -> Rollout {
        wait_until(&self.rollouts(), "web", TIMEOUT, what, cond).await
    }

    /// The ReplicaSets of the rollout, by pod-template hash.
    async fn replica_sets(&self) -> Vec<ReplicaSet> {
        Api::<ReplicaSet>::namespaced(self.client.clone(), self.ns())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    async fn replica_set(&self, hash: &str) -> ReplicaSet {
        self.replica_sets()
            .await
            .into_iter()
            .find(|rs| label(rs, POD_TEMPLATE_HASH_LABEL) == hash)
            .unwrap_or_else(|| panic!("no ReplicaSet with hash {hash}"))
    }

    /// Drive the rollout in this process to its end, as another runner would.
    async fn drive(&self) -> Outcome {
        drive(self.client.clone(), self.ns().to_string()).await
    }
}

/// Drive `namespace/web` to its end (at most two minutes), as a runner without a Lease would.
async fn drive(client: Client, namespace: String) -> Outcome {
    let cluster = KubeCluster::new(client, &namespace);
    let metrics = Scripted::new(jiff::Timestamp::now(), Default::default());
    let mut reporter = Silent;
    let options = RunOptions {
        timeout: Some(jiff::SignedDuration::from_secs(120)),
        ..Default::default()
    };
    Driver::new(&cluster, &metrics, &mut reporter)
        .run(&namespace, "web", &options)
        .await
        .unwrap()
}

/// A child process, killed if the test ends before it does.
struct Background(Option<Child>);

impl Background {
    /// Wait for the process to end (it must, within `TIMEOUT`).
    async fn finish(mut self) -> Run {
        let mut child = self.0.take().unwrap();
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + TIMEOUT;
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("the background runner did not finish within {TIMEOUT:?}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Run::from(child.wait_with_output().unwrap())
        })
        .await
        .unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The lines a process has finished writing to `file` so far.
fn complete_lines(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    match text.rfind('\n') {
        Some(end) => text[..=end].to_string(),
        None => String::new(),
    }
}

fn label(rs: &ReplicaSet, key: &str) -> String {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .cloned()
        .unwrap_or_default()
}

fn annotation(rs: &ReplicaSet, key: &str) -> String {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
        .unwrap_or_default()
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1)
}

fn image(rollout: &Rollout) -> String {
    let template = rollout.spec.template.as_ref().unwrap();
    template.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

fn paused_at_step(rollout: &Rollout) -> bool {
    rollout.status.as_ref().is_some_and(|s| {
        !s.pause_conditions.is_empty()
            && s.current_step_index == Some(1)
            && s.observed_generation == rollout.metadata.generation.unwrap_or(0).to_string()
    })
}

fn fully_promoted(rollout: &Rollout) -> bool {
    rollout.status.as_ref().is_some_and(|s| {
        !s.stable_rs.is_empty()
            && s.stable_rs == s.current_pod_hash
            && s.available_replicas == 2
            && s.replicas == 2
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_get_and_list_follow_a_canary_that_promote_resumes() {
    let Some(world) = World::released("operate-promote", pausing_steps()).await else {
        return;
    };
    world.expect(&["status", "web"], 0, "Healthy\n").await;

    let driving = world.release_v2_in_background();
    let paused = world
        .rollout_until("paused at the pause step", paused_at_step)
        .await;
    let status = paused.status.clone().unwrap();

    world
        .expect(&["status", "web"], 0, "Paused - CanaryPauseStep\n")
        .await;
    let run = world
        .run(&[
            "status",
            "web",
            "--watch",
            "--success-on-pause",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["phase"], "Paused", "{run:?}");
    assert_eq!(report["outcome"]["outcome"], "paused", "{run:?}");
    // Argo waits through a pause: only the timeout ends this watch.
    let run = world
        .run(&["status", "web", "--watch", "--timeout", "2s"])
        .await;
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_eq!(run.stdout, "Paused - CanaryPauseStep\n", "{run:?}");
    assert!(
        run.stderr.contains("status watch of rollout `")
            && run.stderr.contains("exceeded its timeout"),
        "{run:?}"
    );

    let run = world.run(&["get", "web"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let canary_rs = format!("web-{}", status.current_pod_hash);
    let stable_rs = format!("web-{}", status.stable_rs);
    for expected in [
        "Name:            web\n".to_string(),
        "Status:          ॥ Paused\n".into(),
        "Message:         CanaryPauseStep\n".into(),
        "  Step:          1/2\n".into(),
        "  SetWeight:     50\n".into(),
        "  ActualWeight:  50\n".into(),
        format!("Images:          {IMAGE_1} (stable)\n"),
        format!("                 {IMAGE_2} (canary)\n"),
        "├──# revision:2".into(),
        "└──# revision:1".into(),
        format!("⧉ {canary_rs}"),
        format!("⧉ {stable_rs}"),
        "Pod         ✔ Running".into(),
        "ready:1/1".into(),
    ] {
        assert!(
            run.stdout.contains(&expected),
            "missing {expected:?}:\n{run:?}"
        );
    }
    let canary_line = run.stdout.lines().find(|l| l.contains(&canary_rs)).unwrap();
    assert!(canary_line.ends_with("canary"), "{canary_line}");
    let run = world.run(&["get", "web", "--output", "json"]).await;
    let info: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(info["revisions"][0]["revision"], 2, "{run:?}");
    let canary = &info["revisions"][0]["replicaSets"][0];
    assert_eq!(canary["tags"], json!(["canary"]));
    assert_eq!(canary["pods"].as_array().unwrap().len(), 1, "{run:?}");
    assert_eq!(
        info["revisions"][1]["replicaSets"][0]["tags"],
        json!(["stable"])
    );

    assert_eq!(
        world.list_row().await,
        ["web", "Canary", "Paused", "1/2", "50", "2/2", "2", "1", "2"]
    );
    let run = world.run(&["list", "--all-namespaces"]).await;
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(world.ns()) && l.contains(" web ")),
        "{run:?}"
    );

    // Watchers started before the promotion see it through.
    let status_file = world.dir.path().join("status-watch.txt");
    let watching = world.spawn_to(
        &["status", "web", "--watch", "--timeout", "60s"],
        &status_file,
    );
    let tree_file = world.dir.path().join("get-watch.jsonl");
    let tree_watch = world.spawn_to(&["get", "web", "--watch", "--output", "json"], &tree_file);
    for (file, shown) in [
        (&status_file, "Paused - CanaryPauseStep\n"),
        (&tree_file, r#""status":"Paused""#),
    ] {
        cluster::wait_for("the watches to show the pause", TIMEOUT, || async {
            complete_lines(file).contains(shown).then_some(())
        })
        .await;
    }
    // The runner waiting at the pause goes on by itself once promoted.
    world
        .expect(&["promote", "web"], 0, "rollout 'web' promoted\n")
        .await;
    let driven = driving.finish().await;
    assert_eq!(driven.code, Some(0), "{driven:?}");
    let rollout = world.rollout_until("promoted", fully_promoted).await;
    assert_eq!(rollout.status.unwrap().stable_rs, status.current_pod_hash);
    let watched = watching.finish().await;
    assert_eq!(watched.code, Some(0), "{watched:?}");
    let printed = complete_lines(&status_file);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"Paused - CanaryPauseStep"),
        "{printed}"
    );
    assert_eq!(lines.last(), Some(&"Healthy"), "{printed}");
    assert!(
        lines[1..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("Progressing - ")),
        "{printed}"
    );
    cluster::wait_for("`get --watch` to show the promotion", TIMEOUT, || async {
        complete_lines(&tree_file)
            .contains(r#""status":"Healthy""#)
            .then_some(())
    })
    .await;
    drop(tree_watch);
    let pictures: Vec<Value> = complete_lines(&tree_file)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        pictures.windows(2).all(|w| w[0] != w[1]),
        "only changes are printed"
    );
    let run = world
        .run(&[
            "get",
            "web",
            "--watch",
            "--timeout",
            "1s",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "an unchanged rollout is shown once: {run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_sends_a_driven_canary_back_and_retry_starts_it_over() {
    let Some(world) = World::released("operate-abort", pausing_steps()).await else {
        return;
    };
    let driving = world.release_v2_in_background();
    let paused = world
        .rollout_until("paused at the pause step", paused_at_step)
        .await;
    let status = paused.status.unwrap();

    world
        .expect(&["abort", "web"], 0, "rollout 'web' aborted\n")
        .await;
    let driven = driving.finish().await;
    assert_eq!(driven.code, Some(1), "{driven:?}");
    assert!(driven.stdout.contains("aborted"), "{driven:?}");
    let aborted = world
        .rollout_until("aborted", |r| r.status.as_ref().is_some_and(|s| s.abort))
        .await;
    assert_eq!(aborted.status.unwrap().current_step_index, Some(0));
    let stable = world.replica_set(&status.stable_rs).await;
    assert_eq!(replicas(&stable), 2, "the stable version scales back up");
    // The canary goes to 0 once the stable pods are available (maxUnavailable 0). `apply
    // --wait` stops before that: the driver counts an aborted rollout as settled when a pass
    // changes nothing and no time is due, though the next step waits for a pod to become
    // ready. A second runner finishes the rollback.
    let replica_sets = Api::<ReplicaSet>::namespaced(world.client.clone(), world.ns());
    let stable_name = stable.metadata.name.clone().unwrap();
    wait_until(
        &replica_sets,
        &stable_name,
        TIMEOUT,
        "stable available",
        |rs| rs.status.as_ref().and_then(|s| s.available_replicas) == Some(2),
    )
    .await;
    assert!(matches!(world.drive().await, Outcome::Aborted { .. }));
    assert_eq!(
        replicas(&world.replica_set(&status.current_pod_hash).await),
        0
    );
    let run = world.run(&["status", "web"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout
            .starts_with("Degraded - RolloutAborted: Rollout aborted update to revision 2"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("is in a degraded state with message: RolloutAborted"),
        "{run:?}"
    );

    world
        .expect(&["retry", "web"], 0, "rollout 'web' retried\n")
        .await;
    let retried = world.rollouts().get("web").await.unwrap();
    assert!(!retried.status.unwrap().abort);
    // The next runner starts the update over, from the first step.
    let driving = world.release_v2_in_background();
    world
        .rollout_until("paused again after retry", paused_at_step)
        .await;
    world
        .expect(
            &["promote", "web", "--full"],
            0,
            "rollout 'web' fully promoted\n",
        )
        .await;
    let driven = driving.finish().await;
    assert_eq!(driven.code, Some(0), "{driven:?}");
    let rollout = world.rollout_until("promoted", fully_promoted).await;
    assert_eq!(rollout.status.unwrap().stable_rs, status.current_pod_hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_a_driven_update_until_resume() {
    let Some(world) = World::released("operate-pause", pausing_steps()).await else {
        return;
    };
    world
        .expect(&["pause", "web"], 0, "rollout 'web' paused\n")
        .await;
    assert!(world.rollouts().get("web").await.unwrap().spec.paused);

    // A new release while paused: the runner creates nothing new and waits.
    let driving = world.release_v2_in_background();
    let held = world
        .rollout_until("manually paused with the new template observed", |r| {
            r.status.as_ref().is_some_and(|s| {
                s.message == "manually paused"
                    && s.observed_generation == r.metadata.generation.unwrap_or(0).to_string()
            }) && image(r) == IMAGE_2
        })
        .await;
    assert_eq!(held.status.as_ref().unwrap().updated_replicas, 0);
    let run = world.run(&["status", "web"]).await;
    assert_eq!(run.stdout, "Paused - manually paused\n", "{run:?}");

    world
        .expect(&["resume", "web"], 0, "rollout 'web' resumed\n")
        .await;
    let paused = world
        .rollout_until("at the pause step", paused_at_step)
        .await;
    assert!(!paused.spec.paused);
    assert_eq!(paused.status.unwrap().updated_replicas, 1);
    let run = world.run(&["promote", "web"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let driven = driving.finish().await;
    assert_eq!(driven.code, Some(0), "{driven:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_puts_an_earlier_template_back_and_the_driver_rolls_back() {
    let Some(world) = World::new("operate-undo").await else {
        return;
    };
    let steps = json!([{"setWeight": 50}]);
    world
        .release(&world.manifest("v1.yaml", IMAGE_1, steps.clone()))
        .await;
    world
        .release(&world.manifest("v2.yaml", IMAGE_2, steps))
        .await;
    let before = world.rollouts().get("web").await.unwrap();
    let v1_hash = world
        .replica_sets()
        .await
        .iter()
        .find(|rs| annotation(rs, REVISION_ANNOTATION) == "1")
        .map(|rs| label(rs, POD_TEMPLATE_HASH_LABEL))
        .unwrap();

    world
        .expect(&["undo", "web"], 0, "rollout 'web' undo\n")
        .await;
    let undone = world.rollouts().get("web").await.unwrap();
    assert_eq!(image(&undone), IMAGE_1);
    let labels = undone
        .spec
        .template
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone();
    assert_eq!(labels.unwrap().len(), 1, "only `app`, no hash label");
    assert_eq!(
        undone.metadata.generation.unwrap(),
        before.metadata.generation.unwrap() + 1
    );
    // Undo again before anyone drove: revision 1 is already the template.
    let run = world.run(&["undo", "web"]).await;
    assert_eq!(
        run.stdout, "skipped rollback (current template already matches revision 1)\n",
        "{run:?}"
    );

    // A runner picks the old ReplicaSet up again as revision 3.
    assert!(matches!(world.drive().await, Outcome::Promoted { .. }));
    let rollout = world.rollout_until("rolled back", fully_promoted).await;
    assert_eq!(rollout.status.unwrap().stable_rs, v1_hash);
    let old = world.replica_set(&v1_hash).await;
    assert_eq!(annotation(&old, REVISION_ANNOTATION), "3");
    assert_eq!(replicas(&old), 2);
    assert_eq!(
        world.replica_sets().await.len(),
        2,
        "no new ReplicaSet for an old template"
    );

    let run = world.run(&["undo", "web", "--to-revision", "2"]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(image(&world.rollouts().get("web").await.unwrap()), IMAGE_2);
    let run = world.run(&["undo", "web", "--to-revision", "9"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("unable to find specified revision 9 in history of rollout 'web'"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_starts_a_release_and_restart_asks_for_new_pods() {
    let Some(world) = World::released("operate-set", json!([{"setWeight": 50}])).await else {
        return;
    };
    world
        .expect(
            &["set", "image", "web", &format!("app={IMAGE_3}")],
            0,
            "rollout \"web\" image updated\n",
        )
        .await;
    assert_eq!(image(&world.rollouts().get("web").await.unwrap()), IMAGE_3);
    assert!(matches!(world.drive().await, Outcome::Promoted { .. }));
    let rollout = world.rollout_until("promoted", fully_promoted).await;
    let stable = world.replica_set(&rollout.status.unwrap().stable_rs).await;
    let template = stable.spec.unwrap().template.unwrap();
    assert_eq!(
        template.spec.unwrap().containers[0].image.as_deref(),
        Some(IMAGE_3)
    );

    let run = world.run(&["set", "image", "web", "sidecar=x:1"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains("unable to find container named \"sidecar\" in rollout 'web'"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("hint: its containers are: app"),
        "{run:?}"
    );

    let before = jiff::Timestamp::now();
    world
        .expect(
            &["restart", "web", "--in", "1h"],
            0,
            "rollout 'web' restarts in 1h\n",
        )
        .await;
    let restart_at = world
        .rollouts()
        .get("web")
        .await
        .unwrap()
        .spec
        .restart_at
        .unwrap()
        .0;
    let delay = restart_at.duration_since(before).as_secs();
    assert!(
        (3598..=3610).contains(&delay),
        "restartAt {restart_at} is {delay}s away"
    );

    let run = world.run(&["promote", "nope"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("rollout `{}/nope` not found", world.ns())),
        "{run:?}"
    );
    assert!(run.stderr.contains("hint:"), "{run:?}");
}

/// A blue-green `web` that waits for promotion, with its two Services, as a manifest file.
fn blue_green_manifest(dir: &Path, image: &str) -> PathBuf {
    let service = |name: &str| {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
        })
    };
    let strategy = json!({"blueGreen": {
        "activeService": "web-active",
        "previewService": "web-preview",
        "autoPromotionEnabled": false,
        "scaleDownDelaySeconds": 1
    }});
    let documents = [
        service("web-active"),
        service("web-preview"),
        rollout(image, strategy),
    ];
    write_manifest(dir, "blue-green.yaml", &documents)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_switches_a_blue_green_rollout_waiting_for_it() {
    let Some(world) = World::new("operate-bg").await else {
        return;
    };
    world
        .release(&blue_green_manifest(world.dir.path(), IMAGE_1))
        .await;
    // Release with `set image` and drive in this process: a second `apply` is refused today,
    // its server-side apply of the Services conflicting with the runner's selector patches.
    let run = world
        .run(&["set", "image", "web", &format!("app={IMAGE_2}")])
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    // The driver's future is not `Send` (its reporter is not `Sync`): run it next to the
    // person's commands in this task instead of spawning it.
    let person = async {
        let paused = world
            .rollout_until("waiting for promotion", |r| {
                r.status.as_ref().is_some_and(|s| {
                    s.pause_conditions
                        .iter()
                        .any(|p| p.reason.as_str() == "BlueGreenPause")
                        && s.blue_green.preview_selector == s.current_pod_hash
                })
            })
            .await;
        let status = paused.status.unwrap();
        let run = world.run(&["status", "web"]).await;
        assert_eq!(run.stdout, "Paused - BlueGreenPause\n", "{run:?}");
        let run = world.run(&["get", "web"]).await;
        assert!(
            run.stdout.contains("Strategy:        BlueGreen\n"),
            "{run:?}"
        );
        assert!(!run.stdout.contains("Step:"), "{run:?}");
        for (hash, tags) in [
            (&status.current_pod_hash, "preview"),
            (&status.stable_rs, "stable,active"),
        ] {
            let line = run
                .stdout
                .lines()
                .find(|l| l.contains(&format!("⧉ web-{hash}")))
                .unwrap_or_else(|| panic!("no line for {hash}: {run:?}"));
            assert!(line.ends_with(tags), "{line}");
        }
        assert!(
            run.stdout
                .contains(&format!("{IMAGE_1} (active, stable)\n")),
            "{run:?}"
        );

        let run = world.run(&["promote", "web"]).await;
        assert_eq!(run.stdout, "rollout 'web' promoted\n", "{run:?}");
        status
    };
    let (outcome, status) =
        tokio::join!(drive(world.client.clone(), world.ns().to_string()), person);
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");
    let services =
        Api::<k8s_openapi::api::core::v1::Service>::namespaced(world.client.clone(), world.ns());
    let active = services.get("web-active").await.unwrap();
    let selector = active.spec.unwrap().selector.unwrap();
    assert_eq!(selector[POD_TEMPLATE_HASH_LABEL], status.current_pod_hash);
    assert_eq!(
        world.list_row().await[..5],
        ["web", "BlueGreen", "Healthy", "-", "-"]
    );
}
