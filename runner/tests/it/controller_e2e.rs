//! End to end: `rollout-runner controller` runs as a process against the real control plane
//! and drives releases that `apply` (without `--wait`) only wrote; leader election between two
//! replicas; a CI runner and the controller on one Rollout.
//!
//! The monitors check the pods available and the step order. Which Service selects what,
//! and when, is the engine's decision, the same for a runner and the controller, and is
//! checked by `drive_e2e` (the active Service only for blue-green, whose preview Service may
//! select a preview that is still starting).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};
use rollout_runner::crd::{AnalysisPhase, AnalysisRun, Rollout, RolloutPhase};
use rollout_runner::operate::Operation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::drive_e2e::{
    FAILING_JOB_TEMPLATE, FIVE_STEPS, api_requests, assert_exit, blue_green, canary, replica_sets,
    rollout,
};
use crate::support::cluster::{self, TestNamespace};
use crate::support::runner::{
    Manifests, Monitor, Running, SERVICES, Seen, apply_wait, command, finish, is_action, operate,
    selected_hash, wait_rollout,
};

/// Lease duration of the controllers under test: short, so take-overs are quick.
const LEASE_SECONDS: u64 = 3;

/// A controller process scoped to `ns` (its leader Lease there too).
pub(crate) struct Controller {
    pub(crate) running: Running,
    metrics: SocketAddr,
    identity: String,
}

fn free_port() -> SocketAddr {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    socket.local_addr().expect("its address")
}

impl Controller {
    fn start(ns: &str, identity: &str) -> Self {
        Self::start_with(ns, identity, &[], &[])
    }

    /// A controller with more arguments and environment variables.
    pub(crate) fn start_with(
        ns: &str,
        identity: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let metrics = free_port();
        let lease = format!("{LEASE_SECONDS}s");
        let metrics_addr = metrics.to_string();
        let mut process = command(
            ns,
            &[
                "controller",
                "--lease-duration",
                &lease,
                "--lease-namespace",
                ns,
                "--metrics-addr",
                &metrics_addr,
                "--identity",
                identity,
            ],
        );
        process
            .env(
                "ROLLOUT_RUNNER_LOG",
                "info,rollout_runner::driver=debug,rollout_runner::api=debug",
            )
            .env("ROLLOUT_RUNNER_LOG_FORMAT", "json")
            .args(args)
            .envs(env.iter().copied());
        Self {
            running: Running::start(process),
            metrics,
            identity: identity.to_string(),
        }
    }

    pub(crate) async fn wait_for_leadership(&mut self) -> bool {
        self.running
            .wait_for_lines(1, |l| l.contains("elected leader"))
            .await
    }

    /// `GET path` on the controller's HTTP port: status line and body.
    pub(crate) async fn get(&self, path: &str) -> (String, String) {
        let mut stream = tokio::net::TcpStream::connect(self.metrics)
            .await
            .expect("the metrics port answers");
        let request = format!("GET {path} HTTP/1.1\r\nHost: controller\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (
            head.lines().next().unwrap_or("").to_string(),
            body.to_string(),
        )
    }

    /// The value of one sample of `/metrics`.
    async fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Waits (up to 20 s) until a sample of `/metrics` has `value`: the gauges follow the
    /// reconcile that wrote the status.
    pub(crate) async fn wait_for_metric(&self, series: &str, value: f64) {
        for _ in 0..200 {
            if self.metric(series).await == Some(value) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{series} never became {value}:\n{}",
            self.get("/metrics").await.1
        );
    }

    /// Parsed JSON log lines.
    fn log(&self) -> Vec<serde_json::Value> {
        self.running
            .stderr()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The actions it performed, one a line, for failure messages.
    fn actions(&self) -> String {
        self.log()
            .iter()
            .filter(|l| l["fields"]["message"] == "performing")
            .map(|l| format!("{} {}", l["timestamp"], l["fields"]["action"]))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Timestamps of the actions it performed.
    fn action_times(&self) -> Vec<String> {
        self.log()
            .iter()
            .filter(|l| l["fields"]["message"] == "performing")
            .filter_map(|l| l["timestamp"].as_str().map(str::to_string))
            .collect()
    }
}

/// The monitor's violations, less those it records before it has seen any ReplicaSet (a
/// Service event may arrive first, and then no pods are known, rather than none available).
fn violations(seen: &Seen) -> Vec<&String> {
    seen.violations
        .iter()
        .filter(|v| !v.ends_with(": "))
        .collect()
}

/// The step indexes a release went through: the monitor may first see the previous
/// release's last step.
fn steps_of_the_release(seen: &[i32]) -> &[i32] {
    seen.strip_prefix(&[5]).unwrap_or(seen)
}

/// No pods lost, every one of `FIVE_STEPS` once and in order.
fn assert_safe_release(seen: &Seen, controller: &Controller) {
    assert!(
        violations(seen).is_empty(),
        "{:#?}\n{}",
        seen.violations,
        controller.actions()
    );
    assert_eq!(
        steps_of_the_release(&seen.step_indexes),
        [0, 1, 2, 3, 4, 5],
        "every step once, in order"
    );
}

/// The Services and one Rollout.
fn manifests(rollout_yaml: &str) -> Manifests {
    Manifests::new(&[("services.yaml", SERVICES), ("rollout.yaml", rollout_yaml)])
}

/// A namespace of its own with a controller that leads in it; `None` without a cluster.
async fn leading_controller(prefix: &str) -> Option<(Client, TestNamespace, Controller)> {
    let client = cluster::client().await?;
    let ns = TestNamespace::create(&client, prefix).await;
    let mut controller = Controller::start(ns.name(), "controller-a");
    assert!(
        controller.wait_for_leadership().await,
        "{:#?}",
        controller.running.stderr()
    );
    Some((client, ns, controller))
}

/// `apply DIR` without `--wait`: the controller is to finish it.
pub(crate) async fn apply_only(ns: &str, manifests: &Manifests) {
    let dir = manifests.path().to_str().expect("a UTF-8 path");
    let run = finish(command(ns, &["apply", dir])).await;
    assert_exit(&run, 0, "apply without --wait");
}

/// `apply` (without `--wait`) the Services and `rollout_yaml`.
pub(crate) async fn release(ns: &str, rollout_yaml: &str) {
    apply_only(ns, &manifests(rollout_yaml)).await;
}

pub(crate) async fn healthy_at(client: &Client, ns: &str, image: &str) -> Rollout {
    wait_rollout(client, ns, "web", &format!("{image} healthy"), |ro| {
        let image_now = ro
            .spec
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers[0].image.clone().unwrap_or_default());
        image_now.as_deref() == Some(image)
            && ro.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy)
                    && s.stable_rs == s.current_pod_hash
                    && ro.metadata.generation.map(|g| g.to_string()).as_ref()
                        == Some(&s.observed_generation)
            })
    })
    .await
}

/// Waits until the ReplicaSet `hash` is scaled to zero (after the scale-down delay).
async fn scaled_down(client: &Client, ns: &str, hash: &str) {
    let what = format!("ReplicaSet {hash} scaled down");
    cluster::wait_for(&what, Duration::from_secs(60), || async {
        let zero = (hash.to_string(), 0, 0);
        replica_sets(client, ns).await.contains(&zero).then_some(())
    })
    .await;
}

pub(crate) async fn events(client: &Client, ns: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn e2e_controller_promotes_a_canary_that_apply_only_wrote() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "ctl-canary").await;
    let mut controller = Controller::start(ns.name(), "controller-a");
    assert!(
        controller.wait_for_leadership().await,
        "{:#?}",
        controller.running.stderr()
    );
    let (ready, _) = controller.get("/readyz").await;
    assert!(ready.contains("200"), "{ready}");

    release(ns.name(), &canary("web:1", FIVE_STEPS, "", "")).await;
    let old = healthy_at(&client, ns.name(), "web:1")
        .await
        .status
        .unwrap()
        .stable_rs;

    let monitor = Monitor::start(&client, ns.name(), &[], Some(5));
    release(ns.name(), &canary("web:2", FIVE_STEPS, "", "")).await;
    let status = healthy_at(&client, ns.name(), "web:2")
        .await
        .status
        .unwrap();
    // The old version is scaled down after the promotion.
    scaled_down(&client, ns.name(), &old).await;
    let seen = monitor.stop();
    assert_ne!(status.stable_rs, old);
    assert_eq!(status.current_step_index, Some(5));
    for service in ["web-stable", "web-canary"] {
        assert_eq!(
            selected_hash(&client, ns.name(), service).await,
            status.stable_rs
        );
    }
    assert_safe_release(&seen, &controller);

    // Operability: metrics, JSON logs, Events with the reporting controller.
    assert_eq!(
        controller.metric("rollout_runner_controller_leader").await,
        Some(1.0)
    );
    controller
        .wait_for_metric("rollout_runner_rollouts{phase=\"Healthy\"}", 1.0)
        .await;
    assert!(
        controller
            .metric("rollout_runner_reconcile_total{result=\"driven\"}")
            .await
            > Some(5.0)
    );
    assert!(
        controller
            .metric("rollout_runner_reconcile_duration_seconds_count")
            .await
            > Some(5.0)
    );
    assert!(
        controller
            .metric("rollout_runner_kube_requests_total{method=\"GET\"}")
            .await
            > Some(0.0)
    );
    let log = controller.log();
    assert!(
        log.iter().any(|l| l["fields"]["message"] == "decision"
            && l["fields"]["rollout"] == format!("{}/web", ns.name())),
        "{:#?}",
        controller.running.stderr()
    );
    let recorded = events(&client, ns.name()).await;
    assert!(
        recorded.iter().any(
            |e| e.reporting_component.as_deref() == Some("rollout-runner")
                && e.involved_object.kind.as_deref() == Some("Rollout")
        ),
        "{recorded:#?}"
    );
    // The Lease is given back once the Rollout settled, so a runner can take the next one.
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns.name());
    cluster::wait_until(
        &leases,
        "rollout-runner-web",
        Duration::from_secs(20),
        "the Rollout's Lease released",
        |lease| {
            let holder = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref());
            holder.is_none_or(str::is_empty)
        },
    )
    .await;

    // A deleted Rollout leaves the gauge.
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), ns.name());
    rollouts
        .delete("web", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    controller
        .wait_for_metric("rollout_runner_rollouts{phase=\"Healthy\"}", 0.0)
        .await;
}

#[tokio::test]
async fn e2e_controller_drives_blue_green_and_an_abort() {
    let Some((client, ns, controller)) = leading_controller("ctl-bluegreen").await else {
        return;
    };
    let manual = "      autoPromotionEnabled: false";
    release(ns.name(), &blue_green("web:1", manual)).await;
    let old = healthy_at(&client, ns.name(), "web:1")
        .await
        .status
        .unwrap()
        .stable_rs;

    // Blue-green: preview up, paused for promotion, switched on promotion.
    let monitor = Monitor::start(&client, ns.name(), &["web-stable"], None);
    release(ns.name(), &blue_green("web:2", manual)).await;
    let paused = wait_rollout(
        &client,
        ns.name(),
        "web",
        "the preview ready and paused",
        |ro| {
            ro.status
                .as_ref()
                .is_some_and(|s| !s.pause_conditions.is_empty())
        },
    )
    .await;
    let new = paused.status.unwrap().current_pod_hash;
    assert_eq!(selected_hash(&client, ns.name(), "web-stable").await, old);
    assert_eq!(selected_hash(&client, ns.name(), "web-canary").await, new);
    operate(&client, ns.name(), "web", &Operation::Promote).await;
    healthy_at(&client, ns.name(), "web:2").await;
    assert_eq!(selected_hash(&client, ns.name(), "web-stable").await, new);
    scaled_down(&client, ns.name(), &old).await;

    // Abort at the pause: everything back on the active version.
    release(ns.name(), &blue_green("web:3", manual)).await;
    wait_rollout(&client, ns.name(), "web", "v3's preview paused", |ro| {
        ro.status
            .as_ref()
            .is_some_and(|s| !s.pause_conditions.is_empty() && s.current_pod_hash != new)
    })
    .await;
    operate(&client, ns.name(), "web", &Operation::Abort).await;
    let aborted = wait_rollout(&client, ns.name(), "web", "aborted and degraded", |ro| {
        ro.status
            .as_ref()
            .is_some_and(|s| s.abort && s.phase == Some(RolloutPhase::Degraded))
    })
    .await;
    let seen = monitor.stop();
    assert_eq!(aborted.status.unwrap().stable_rs, new);
    assert_eq!(selected_hash(&client, ns.name(), "web-stable").await, new);
    assert!(
        violations(&seen).is_empty(),
        "{:#?}\n{}",
        seen.violations,
        controller.actions()
    );
    controller
        .wait_for_metric("rollout_runner_rollouts{phase=\"Degraded\"}", 1.0)
        .await;
}

#[tokio::test]
async fn e2e_controller_aborts_on_a_failing_job_analysis() {
    let Some((client, ns, controller)) = leading_controller("ctl-analysis").await else {
        return;
    };
    let steps = r#"
        - setWeight: 20
        - analysis: {templates: [{templateName: smoke}]}
        - setWeight: 60"#;
    let v1 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("analysis.yaml", FAILING_JOB_TEMPLATE),
        ("rollout.yaml", &canary("web:1", steps, "", "")),
    ]);
    apply_only(ns.name(), &v1).await;
    let old = healthy_at(&client, ns.name(), "web:1")
        .await
        .status
        .unwrap()
        .stable_rs;

    let monitor = Monitor::start(&client, ns.name(), &[], Some(5));
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("analysis.yaml", FAILING_JOB_TEMPLATE),
        ("rollout.yaml", &canary("web:2", steps, "", "")),
    ]);
    apply_only(ns.name(), &v2).await;
    wait_rollout(&client, ns.name(), "web", "aborted by the analysis", |ro| {
        ro.status
            .as_ref()
            .is_some_and(|s| s.abort && s.phase == Some(RolloutPhase::Degraded))
    })
    .await;
    cluster::wait_for(
        "everything back on stable",
        Duration::from_secs(60),
        || async {
            let sets = replica_sets(&client, ns.name()).await;
            (sets.contains(&(old.clone(), 5, 5))
                && sets.iter().filter(|s| s.0 != old).all(|s| s.1 == 0))
            .then_some(())
        },
    )
    .await;
    let seen = monitor.stop();
    assert_eq!(
        rollout(&client, ns.name()).await.status.unwrap().stable_rs,
        old
    );
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), ns.name());
    let run = runs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .pop()
        .unwrap();
    assert_eq!(run.status.unwrap().phase, AnalysisPhase::Failed);
    assert!(
        violations(&seen).is_empty(),
        "{:#?}\n{}",
        seen.violations,
        controller.actions()
    );
    assert!(
        controller
            .metric("rollout_runner_analysis_measurements_total{verdict=\"Failed\"}")
            .await
            >= Some(1.0),
        "{}",
        controller.get("/metrics").await.1
    );
}

#[tokio::test]
async fn e2e_a_standby_controller_takes_over_within_the_lease_duration() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "ctl-failover").await;
    let mut a = Controller::start(ns.name(), "controller-a");
    let mut b = Controller::start(ns.name(), "controller-b");
    let (a_leads, b_leads) = tokio::select! {
        led = a.wait_for_leadership() => (led, false),
        led = b.wait_for_leadership() => (false, led),
    };
    assert!(a_leads || b_leads, "one replica leads");
    let (leader, mut standby) = if a_leads { (a, b) } else { (b, a) };
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns.name());
    let holder = leases
        .get("rollout-runner.controller")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some(leader.identity.as_str()));
    // Only the leader drives; the standby stays quiet and says so in /metrics.
    release(ns.name(), &canary("web:1", FIVE_STEPS, "", "")).await;
    healthy_at(&client, ns.name(), "web:1").await;
    assert!(!leader.action_times().is_empty());
    assert!(
        standby.action_times().is_empty(),
        "{:#?}",
        standby.running.stderr()
    );
    assert_eq!(
        standby.metric("rollout_runner_controller_leader").await,
        Some(0.0)
    );

    let killed = Instant::now();
    leader.running.kill().await;
    assert!(
        standby.wait_for_leadership().await,
        "{:#?}",
        standby.running.stderr()
    );
    let took = killed.elapsed();
    // The Lease expires at most its duration after the last renewal; allow the standby one
    // retry period on top to notice.
    assert!(
        took <= Duration::from_secs(LEASE_SECONDS + 2),
        "took over after {took:?}, lease duration {LEASE_SECONDS}s"
    );
    release(ns.name(), &canary("web:2", FIVE_STEPS, "", "")).await;
    healthy_at(&client, ns.name(), "web:2").await;
    assert!(!standby.action_times().is_empty(), "the new leader drives");
}

/// Whether two sets of RFC 3339 timestamps lie in disjoint intervals.
fn disjoint(a: &[String], b: &[String]) -> bool {
    let (Some(a_first), Some(a_last), Some(b_first), Some(b_last)) = (
        a.iter().min(),
        a.iter().max(),
        b.iter().min(),
        b.iter().max(),
    ) else {
        return true;
    };
    a_last < b_first || b_last < a_first
}

/// The timestamps of the actions in a runner's text log (the line starts with the time).
fn runner_action_times(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| is_action(l))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn e2e_a_runner_and_the_controller_never_drive_one_rollout_at_once() {
    let Some((client, ns, controller)) = leading_controller("ctl-runner").await else {
        return;
    };
    release(ns.name(), &canary("web:1", FIVE_STEPS, "", "")).await;
    healthy_at(&client, ns.name(), "web:1").await;
    let before = controller.action_times().len();

    // A CI runner releases v2 while the controller watches: whoever takes the Lease drives,
    // the other only observes; the runner reports the outcome either way.
    let monitor = Monitor::start(&client, ns.name(), &[], Some(5));
    let v2 = manifests(&canary("web:2", FIVE_STEPS, "", ""));
    let run = finish(apply_wait(ns.name(), v2.path(), &[])).await;
    assert_exit(&run, 0, "the runner");
    assert!(run.stdout.contains("promoted"), "{}", run.stdout);
    let seen = monitor.stop();
    assert_safe_release(&seen, &controller);
    let runner_times = runner_action_times(&run.stderr);
    let controller_times = controller.action_times()[before..].to_vec();
    assert!(
        disjoint(&runner_times, &controller_times),
        "runner acted at {runner_times:?}\ncontroller acted at {controller_times:?}"
    );
    if runner_times.is_empty() {
        assert!(
            run.stderr.contains("controller-a is driving"),
            "{}",
            run.stderr
        );
    }

    // Graceful shutdown on SIGTERM: the reconciles in flight finish, the Leases are given up.
    let pid = controller.running.pid().expect("the controller runs");
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    assert!(term.is_ok_and(|s| s.success()));
    let stopped = controller.running.finish().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("shutting down"),
        "{}",
        stopped.stderr
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns.name());
    let leader = leases.get("rollout-runner.controller").await.unwrap();
    assert!(
        leader
            .spec
            .and_then(|s| s.holder_identity)
            .is_none_or(|h| h.is_empty())
    );

    // Hand-off: a runner killed mid-release (its Lease left to expire) is finished by the
    // controller.
    let v3 = manifests(&canary("web:3", FIVE_STEPS, "", ""));
    let mut runner = Running::start(apply_wait(ns.name(), v3.path(), &[]));
    assert!(
        runner.wait_for_lines(2, is_action).await,
        "{:#?}",
        runner.stderr()
    );
    runner.kill().await;
    let mut successor = Controller::start(ns.name(), "controller-b");
    assert!(successor.wait_for_leadership().await);
    healthy_at(&client, ns.name(), "web:3").await;
    assert!(
        !successor.action_times().is_empty(),
        "the controller finished the release"
    );
    let recorded = events(&client, ns.name()).await;
    assert!(
        recorded
            .iter()
            .any(|e| e.reason.as_deref() == Some("TookOver")),
        "{:#?}",
        recorded
            .iter()
            .map(|e| (&e.reason, &e.message))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn e2e_an_idle_reconcile_makes_no_api_request() {
    let Some((client, ns, controller)) = leading_controller("ctl-idle").await else {
        return;
    };
    release(ns.name(), &canary("web:1", FIVE_STEPS, "", "")).await;
    healthy_at(&client, ns.name(), "web:1").await;
    let idle = "rollout_runner_reconcile_total{result=\"idle\"}";
    // Settled: the controller gave its Lease up and looks at the Rollout without acting.
    cluster::wait_for("an idle reconcile", Duration::from_secs(30), || async {
        (controller.metric(idle).await? >= 1.0).then_some(())
    })
    .await;
    let before = controller.metric(idle).await.unwrap_or(0.0);
    let mark = controller.log().len();
    // Any change to a Service the Rollout names wakes a reconcile of it.
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), ns.name());
    let touch =
        serde_json::json!({"metadata": {"annotations": {"test.rollout-runner.io/touched": "1"}}});
    services
        .patch(
            "web-stable",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&touch),
        )
        .await
        .unwrap();
    cluster::wait_for(
        "the reconcile of the touch",
        Duration::from_secs(30),
        || async { (controller.metric(idle).await? > before).then_some(()) },
    )
    .await;
    let log = controller.log();
    let leader = rollout_runner::controller::leader_lease_name(None);
    let requests: Vec<String> = api_requests(&log[mark..])
        .into_iter()
        // Watches only restart; the leader Lease is renewed on its own clock.
        .filter(|r| !r.starts_with("watch ") && !r.ends_with(&format!("leases/{leader}")))
        .collect();
    assert!(
        requests.is_empty(),
        "an idle reconcile asked: {requests:#?}"
    );
}
