//! End to end: `rollout-runner apply --wait` drives releases on the real control plane, as a
//! user runs it, while a monitor checks the safety invariants at every change the API server
//! sees.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, ListParams};
use rollout_runner::crd::{
    AnalysisPhase, AnalysisRun, POD_TEMPLATE_HASH_LABEL, PauseReason, Rollout, RolloutPhase,
};
use rollout_runner::operate::Operation;

use crate::support::cluster::{self, TestNamespace, fault};
use crate::support::runner::{
    self, Finished, Manifests, Monitor, Running, SERVICES, apply_wait, apply_wait_leased, finish,
    is_action, is_action_done, operate, selected_hash, wait_rollout,
};

/// A 5-replica canary without traffic routing, with `steps` and pod-template `annotations`.
pub(crate) fn canary(image: &str, steps: &str, annotations: &str, extra_spec: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 5
  revisionHistoryLimit: 2
{extra_spec}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web}}
      annotations: {{{annotations}}}
    spec:
      containers: [{{name: web, image: "{image}", ports: [{{name: http, containerPort: 8080}}]}}]
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      maxSurge: 1
      maxUnavailable: 0
      steps:
{steps}
"#
    )
}

/// The Services of a basic canary that must select available pods at every moment. Not the
/// stable Service: as in Argo, once the steps are done the old stable ReplicaSet is scaled down
/// before `status.stableRS` moves, so for a moment it selects a ReplicaSet without pods.
const ALWAYS_SERVING: &[&str] = &["web-canary"];

pub(crate) const FIVE_STEPS: &str = r#"
        - setWeight: 20
        - pause: {duration: 1s}
        - setWeight: 60
        - pause: {duration: 1s}
        - setWeight: 80"#;

fn replica_set_hash(rs: &ReplicaSet) -> String {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
        .cloned()
        .unwrap_or_default()
}

/// `(hash, spec.replicas, availableReplicas)` of every ReplicaSet.
pub(crate) async fn replica_sets(client: &Client, ns: &str) -> Vec<(String, i32, i32)> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let mut sets: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|rs| {
            (
                replica_set_hash(rs),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
                rs.status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0),
            )
        })
        .collect();
    sets.sort();
    sets
}

pub(crate) async fn rollout(client: &Client, ns: &str) -> Rollout {
    Api::<Rollout>::namespaced(client.clone(), ns)
        .get("web")
        .await
        .unwrap()
}

pub(crate) fn assert_exit(run: &Finished, code: i32, what: &str) {
    assert_eq!(
        run.code,
        Some(code),
        "{what}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

/// Deploys version 1 and waits for it; returns its pod-template hash.
async fn deploy_first(client: &Client, ns: &str, rollout_yaml: &str) -> String {
    let manifests = Manifests::new(&[("services.yaml", SERVICES), ("rollout.yaml", rollout_yaml)]);
    let run = finish(apply_wait(ns, manifests.path(), &[])).await;
    assert_exit(&run, 0, "the first deploy");
    rollout(client, ns).await.status.unwrap().stable_rs
}

#[tokio::test]
async fn e2e_canary_is_promoted_step_by_step_within_the_invariants() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-canary").await;
    let old = deploy_first(&client, ns.name(), &canary("web:1", FIVE_STEPS, "", "")).await;

    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &canary("web:2", FIVE_STEPS, "", "")),
    ]);
    let run = finish(apply_wait(ns.name(), v2.path(), &[])).await;
    let seen = monitor.stop();
    assert_exit(&run, 0, "the release");
    assert!(
        run.stdout.contains("rollout.argoproj.io/web configured"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("promoted: revision 2 is stable"),
        "{}",
        run.stdout
    );

    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_ne!(status.stable_rs, old);
    assert_eq!(status.current_step_index, Some(5));
    assert_eq!(replica_sets(&client, ns.name()).await, {
        let mut expected = vec![(old.clone(), 0, 0), (status.stable_rs.clone(), 5, 5)];
        expected.sort();
        expected
    });
    for service in ["web-stable", "web-canary"] {
        assert_eq!(
            selected_hash(&client, ns.name(), service).await,
            status.stable_rs
        );
    }
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(seen.min_available, Some(5));
    assert_eq!(
        seen.step_indexes,
        [0, 1, 2, 3, 4, 5],
        "every step once, in order"
    );

    // The same manifests again: nothing changes, and the wait ends at once.
    let again = finish(apply_wait(ns.name(), v2.path(), &[])).await;
    assert_exit(&again, 0, "the same release again");
    assert!(
        again.stdout.contains("rollout.argoproj.io/web unchanged"),
        "{}",
        again.stdout
    );
}

pub(crate) const FAILING_JOB_TEMPLATE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke}
spec:
  metrics:
    - name: smoke
      provider:
        job:
          spec:
            backoffLimit: 0
            template:
              metadata:
                annotations: {"test.rollout-runner.io/exit-code": "1", "test.rollout-runner.io/run-duration": "1s"}
              spec:
                restartPolicy: Never
                containers: [{name: smoke, image: "smoke:1"}]
"#;

#[tokio::test]
async fn e2e_a_failing_job_analysis_aborts_and_returns_everything_to_stable() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-abort").await;
    let steps = r#"
        - setWeight: 20
        - analysis: {templates: [{templateName: smoke}]}
        - setWeight: 60"#;
    let v1 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("analysis.yaml", FAILING_JOB_TEMPLATE),
        ("rollout.yaml", &canary("web:1", steps, "", "")),
    ]);
    assert_exit(
        &finish(apply_wait(ns.name(), v1.path(), &[])).await,
        0,
        "the first deploy",
    );
    let old = rollout(&client, ns.name()).await.status.unwrap().stable_rs;

    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("analysis.yaml", FAILING_JOB_TEMPLATE),
        ("rollout.yaml", &canary("web:2", steps, "", "")),
    ]);
    let run = finish(apply_wait(ns.name(), v2.path(), &[])).await;
    let seen = monitor.stop();
    assert_exit(&run, 1, "an aborted release");
    assert!(run.stdout.contains("aborted"), "{}", run.stdout);

    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert!(status.abort);
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert_eq!(status.stable_rs, old);
    let sets = replica_sets(&client, ns.name()).await;
    assert!(sets.contains(&(old.clone(), 5, 5)), "{sets:?}");
    assert!(
        sets.iter().filter(|s| s.0 != old).all(|s| s.1 == 0),
        "{sets:?}"
    );
    for service in ["web-stable", "web-canary"] {
        assert_eq!(selected_hash(&client, ns.name(), service).await, old);
    }
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), ns.name());
    let run = runs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .pop()
        .unwrap();
    assert_eq!(run.status.unwrap().phase, AnalysisPhase::Failed);
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
}

#[tokio::test]
async fn e2e_an_indefinite_pause_waits_for_a_promotion_and_abort_retry_start_over() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-pause").await;
    let steps = r#"
        - setWeight: 20
        - pause: {}
        - setWeight: 60"#;
    let old = deploy_first(&client, ns.name(), &canary("web:1", steps, "", "")).await;
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &canary("web:2", steps, "", "")),
    ]);

    // With --success-on-pause the runner stops at the pause with exit 0.
    let paused = finish(apply_wait(ns.name(), v2.path(), &["--success-on-pause"])).await;
    assert_exit(&paused, 0, "a release waiting for promotion");
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(
        status.pause_conditions[0].reason,
        PauseReason::CanaryPauseStep
    );

    // Abort while a runner waits: it ends with exit 1, everything back on the old version.
    let mut waiting = Running::start(apply_wait(ns.name(), v2.path(), &[]));
    assert!(waiting.wait_for_lines(1, |l| l.contains("rollout")).await);
    operate(&client, ns.name(), "web", &Operation::Abort).await;
    let aborted = waiting.finish().await;
    assert_exit(&aborted, 1, "an aborted release");
    let sets = replica_sets(&client, ns.name()).await;
    assert!(sets.contains(&(old.clone(), 5, 5)), "{sets:?}");

    // Retry: the steps run again from the first; a promotion at the pause completes it.
    operate(&client, ns.name(), "web", &Operation::Retry).await;
    let running = Running::start(apply_wait(ns.name(), v2.path(), &[]));
    wait_rollout(&client, ns.name(), "web", "paused at step 2 again", |ro| {
        ro.status.as_ref().is_some_and(|s| {
            s.current_step_index == Some(1) && !s.pause_conditions.is_empty() && !s.abort
        })
    })
    .await;
    operate(&client, ns.name(), "web", &Operation::Promote).await;
    let promoted = running.finish().await;
    assert_exit(&promoted, 0, "a promoted release");
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.current_step_index, Some(3));
    assert_ne!(status.stable_rs, old);
}

#[tokio::test]
async fn e2e_a_canary_that_never_becomes_ready_exceeds_its_progress_deadline() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-deadline").await;
    let extra = "  progressDeadlineSeconds: 5\n  progressDeadlineAbort: true";
    let old = deploy_first(&client, ns.name(), &canary("web:1", FIVE_STEPS, "", extra)).await;
    let never_ready = format!("\"{}\": \"true\"", fault::NEVER_READY);
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        (
            "rollout.yaml",
            &canary("web:2", FIVE_STEPS, &never_ready, extra),
        ),
    ]);
    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let run = finish(apply_wait(ns.name(), v2.path(), &[])).await;
    let seen = monitor.stop();
    assert_exit(&run, 1, "a release past its progress deadline");
    assert!(
        run.stdout.contains("ProgressDeadlineExceeded") || run.stdout.contains("progress deadline"),
        "{}",
        run.stdout
    );
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert!(status.abort, "progressDeadlineAbort aborts");
    assert_eq!(status.stable_rs, old);
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
}

pub(crate) fn blue_green(image: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "{image}"}}]
  strategy:
    blueGreen:
      activeService: web-stable
      previewService: web-canary
      scaleDownDelaySeconds: 3
{extra}
"#
    )
}

#[tokio::test]
async fn e2e_blue_green_switches_on_promotion_then_scales_the_old_version_down() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-bluegreen").await;
    let manual = "      autoPromotionEnabled: false";
    let old = deploy_first(&client, ns.name(), &blue_green("web:1", manual)).await;

    // The active Service must always serve; the preview Service selects the new pods at once,
    // before they are ready, as Argo's does.
    let monitor = Monitor::start(&client, ns.name(), &["web-stable"], None);
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &blue_green("web:2", manual)),
    ]);
    let running = Running::start(apply_wait(ns.name(), v2.path(), &[]));
    let paused = wait_rollout(
        &client,
        ns.name(),
        "web",
        "the preview to be ready and paused",
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
    let run = running.finish().await;
    let seen = monitor.stop();
    assert_exit(&run, 0, "a promoted blue-green release");
    assert_eq!(selected_hash(&client, ns.name(), "web-stable").await, new);
    // The runner saw the old version's scale-down delay through before exiting.
    let sets = replica_sets(&client, ns.name()).await;
    assert!(sets.contains(&(old.clone(), 0, 0)), "{sets:?}");
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);

    // Automatic promotion after autoPromotionSeconds.
    let auto = "      autoPromotionSeconds: 2";
    let v3 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &blue_green("web:3", auto)),
    ]);
    let started = std::time::Instant::now();
    let run = finish(apply_wait(ns.name(), v3.path(), &[])).await;
    assert_exit(&run, 0, "an automatically promoted release");
    assert!(started.elapsed() >= Duration::from_secs(2));
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(
        selected_hash(&client, ns.name(), "web-stable").await,
        status.stable_rs
    );
    assert_ne!(status.stable_rs, new);
}

#[tokio::test]
async fn e2e_a_runner_killed_after_every_action_is_resumed_to_the_same_end() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-crash").await;
    let old = deploy_first(&client, ns.name(), &canary("web:1", FIVE_STEPS, "", "")).await;
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &canary("web:2", FIVE_STEPS, "", "")),
    ]);
    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let (kills, finished) = kill_after_every_action(ns.name(), v2.path()).await;
    let seen = monitor.stop();
    assert_exit(&finished, 0, "the last runner");
    assert!(kills >= 10, "only {kills} actions were interrupted");
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(status.current_step_index, Some(5));
    let mut expected = vec![(old.clone(), 0, 0), (status.stable_rs.clone(), 5, 5)];
    expected.sort();
    assert_eq!(replica_sets(&client, ns.name()).await, expected);
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(
        seen.step_indexes,
        [0, 1, 2, 3, 4, 5],
        "no step skipped or repeated"
    );
}

#[tokio::test]
async fn e2e_two_runners_on_one_rollout_exactly_one_drives() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-two").await;
    deploy_first(&client, ns.name(), &canary("web:1", FIVE_STEPS, "", "")).await;
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &canary("web:2", FIVE_STEPS, "", "")),
    ]);
    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    // A Lease long enough that a loaded machine never lets it lapse between renewals: this
    // test is about two runners starting together, not about takeovers.
    let first = Running::start(apply_wait_leased(ns.name(), v2.path(), "8s", &[]));
    let second = Running::start(apply_wait_leased(ns.name(), v2.path(), "8s", &[]));
    let (first, second) = tokio::join!(first.finish(), second.finish());
    let seen = monitor.stop();
    assert_exit(&first, 0, "the first runner");
    assert_exit(&second, 0, "the second runner");
    let drove = |run: &Finished| run.stderr.lines().any(is_action);
    let followed = |run: &Finished| run.stderr.contains("following it");
    assert!(
        drove(&first) != drove(&second),
        "exactly one runner acts\nfirst:\n{}\nsecond:\n{}",
        first.stderr,
        second.stderr
    );
    let follower = if drove(&first) { &second } else { &first };
    assert!(followed(follower), "{}", follower.stderr);
    assert!(follower.stdout.contains("promoted"), "{}", follower.stdout);
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(seen.step_indexes, [0, 1, 2, 3, 4, 5]);
    // Both released the Lease on exit.
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns.name());
    let lease = leases.get("rollout-runner-web").await.unwrap();
    assert!(
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .is_none_or(|h| h.is_empty()),
        "the Lease is free after both runners exit"
    );
    let _ = runner::command;
}

/// Runs `apply --wait` on `dir` again and again, killing each runner (SIGKILL: no clean-up, the
/// Lease stays until it expires) as soon as it performs an action, until one finishes the
/// release. Returns how many were killed and how the last one ended.
async fn kill_after_every_action(ns: &str, dir: &std::path::Path) -> (usize, Finished) {
    let mut kills = 0;
    loop {
        let mut running = Running::start(apply_wait(ns, dir, &[]));
        // Killed once the action's write is answered: killed during the write, a runner may
        // never get an action through.
        if running.wait_for_lines(1, is_action_done).await {
            running.kill().await;
            kills += 1;
            assert!(kills < 200, "the release never finished");
        } else {
            return (kills, running.finish().await);
        }
    }
}

#[tokio::test]
async fn e2e_a_blue_green_runner_killed_after_every_action_is_resumed_to_the_same_end() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-bg-crash").await;
    let old = deploy_first(&client, ns.name(), &blue_green("web:1", "")).await;
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &blue_green("web:2", "")),
    ]);
    let monitor = Monitor::start(&client, ns.name(), &["web-stable"], None);
    let (kills, finished) = kill_after_every_action(ns.name(), v2.path()).await;
    let seen = monitor.stop();
    assert_exit(&finished, 0, "the last runner");
    // Create the ReplicaSet, set the revision, switch the preview, promote, switch the active
    // Service, scale the old one down: at least these, each by its own runner.
    assert!(kills >= 5, "only {kills} actions were interrupted");
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_ne!(status.stable_rs, old);
    for service in ["web-stable", "web-canary"] {
        assert_eq!(
            selected_hash(&client, ns.name(), service).await,
            status.stable_rs
        );
    }
    let mut expected = vec![(old.clone(), 0, 0), (status.stable_rs.clone(), 3, 3)];
    expected.sort();
    assert_eq!(
        replica_sets(&client, ns.name()).await,
        expected,
        "{status:#?}\n{}",
        finished.stderr
    );
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
}

/// An AnalysisTemplate with two web metrics served by the test: `score` is neither good nor
/// bad (Inconclusive), `flaky` fails but is a dry run.
fn web_template(url: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: score}}
spec:
  dryRun: [{{metricName: flaky}}]
  metrics:
    - name: score
      successCondition: result >= 0.9
      failureCondition: result < 0.1
      provider:
        web: {{url: "{url}/score", jsonPath: "{{$.value}}"}}
    - name: flaky
      successCondition: result >= 0.9
      provider:
        web: {{url: "{url}/flaky", jsonPath: "{{$.value}}"}}
"#
    )
}

#[tokio::test]
async fn e2e_an_inconclusive_analysis_pauses_and_a_dry_run_metric_changes_nothing() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let server = crate::contract_server::Server::start(|_| {
        crate::contract_server::Reply::json(200, r#"{"value": 0.5}"#)
    })
    .await;
    let ns = TestNamespace::create(&client, "drive-inconclusive").await;
    let steps = r#"
        - setWeight: 20
        - analysis: {templates: [{templateName: score}]}
        - setWeight: 60"#;
    let template = web_template(&server.url());
    let release = |image: &str| {
        Manifests::new(&[
            ("services.yaml", SERVICES),
            ("analysis.yaml", &template),
            ("rollout.yaml", &canary(image, steps, "", "")),
        ])
    };
    let v1 = release("web:1");
    assert_exit(
        &finish(apply_wait(ns.name(), v1.path(), &[])).await,
        0,
        "the first deploy",
    );
    let old = rollout(&client, ns.name()).await.status.unwrap().stable_rs;

    let v2 = release("web:2");
    let paused = finish(apply_wait(ns.name(), v2.path(), &["--success-on-pause"])).await;
    assert_exit(&paused, 0, "a release paused by an inconclusive analysis");
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.pause_conditions.len(), 1, "{status:?}");
    assert_eq!(
        status.pause_conditions[0].reason,
        PauseReason::InconclusiveAnalysis
    );
    assert!(
        !status.abort,
        "an inconclusive analysis pauses, it does not abort"
    );
    assert_eq!(status.stable_rs, old);
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), ns.name());
    let run = runs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .pop()
        .unwrap();
    let run_status = run.status.unwrap();
    assert_eq!(run_status.phase, AnalysisPhase::Inconclusive);
    let flaky = run_status
        .metric_results
        .iter()
        .find(|m| m.name == "flaky")
        .expect("the dry-run metric was measured");
    assert_eq!(flaky.phase, AnalysisPhase::Failed);
    assert!(flaky.dry_run, "{flaky:?}");
    assert!(server.requests().iter().any(|r| r.path == "/flaky"));

    // A promotion resumes the release past the analysis.
    let running = Running::start(apply_wait(ns.name(), v2.path(), &[]));
    operate(&client, ns.name(), "web", &Operation::Promote).await;
    let promoted = running.finish().await;
    assert_exit(&promoted, 0, "the promoted release");
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_ne!(status.stable_rs, old);
}

/// A step analysis on the real Prometheus of [`crate::prometheus_real`]: `rr_success_rate`
/// of `api` is 0.91. `failure_condition` empty: below 0.95 is Failed.
fn success_rate_template(url: &str, failure_condition: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: success-rate}}
spec:
  dryRun: [{{metricName: dry}}]
  metrics:
    - name: success-rate
      successCondition: result[0] >= 0.95
      failureCondition: "{failure_condition}"
      provider:
        prometheus: {{address: "{url}", query: 'rr_success_rate{{service="api"}}'}}
    - name: dry
      successCondition: result[0] >= 0.99
      provider:
        prometheus: {{address: "{url}", query: 'rr_success_rate{{service="api"}}'}}
"#
    )
}

/// [`deploy_first`] with an AnalysisTemplate among the inputs.
async fn deploy_first_with(
    client: &Client,
    ns: &str,
    rollout_yaml: &str,
    template: &str,
) -> String {
    let manifests = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("analysis.yaml", template),
        ("rollout.yaml", rollout_yaml),
    ]);
    let run = finish(apply_wait(ns, manifests.path(), &[])).await;
    assert_exit(&run, 0, "the first deploy");
    rollout(client, ns).await.status.unwrap().stable_rs
}

/// The status of the namespace's last AnalysisRun.
async fn last_analysis(client: &Client, ns: &str) -> rollout_runner::crd::AnalysisRunStatus {
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), ns);
    let run = runs.list(&ListParams::default()).await.unwrap().items.pop();
    run.and_then(|r| r.status)
        .expect("an AnalysisRun with a status")
}

#[tokio::test]
async fn e2e_a_failing_prometheus_analysis_aborts_and_an_inconclusive_one_pauses() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some(prometheus) = crate::prometheus_real::prometheus_or_skip(
        "e2e_a_failing_prometheus_analysis_aborts_and_an_inconclusive_one_pauses",
    ) else {
        return;
    };
    let steps = r#"
        - setWeight: 20
        - analysis: {templates: [{templateName: success-rate}]}
        - setWeight: 60"#;

    // 0.91 does not satisfy `result[0] >= 0.95`: Failed, the release is aborted.
    let ns = TestNamespace::create(&client, "drive-prometheus-fail").await;
    let old = deploy_first_with(
        &client,
        ns.name(),
        &canary("web:1", steps, "", ""),
        &success_rate_template(&prometheus.url, ""),
    )
    .await;
    let failing = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("analysis.yaml", &success_rate_template(&prometheus.url, "")),
        ("rollout.yaml", &canary("web:2", steps, "", "")),
    ]);
    let run = finish(apply_wait(ns.name(), failing.path(), &[])).await;
    assert_exit(&run, 1, "a release with a failing analysis");
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert!(status.abort);
    assert_eq!(status.stable_rs, old);
    let analysis = last_analysis(&client, ns.name()).await;
    assert_eq!(analysis.phase, AnalysisPhase::Failed);
    let measured = &analysis
        .metric_results
        .iter()
        .find(|r| r.name == "success-rate")
        .unwrap()
        .measurements[0];
    assert_eq!(measured.value, "[0.91]");
    assert!(
        measured.metadata["explanation"].contains("result[0] >= 0.95"),
        "{measured:?}"
    );

    // With a failureCondition that 0.91 does not meet either: Inconclusive, so the rollout
    // pauses (exit 0 with --success-on-pause). The failing dry-run metric changes nothing.
    let ns = TestNamespace::create(&client, "drive-prometheus-pause").await;
    deploy_first_with(
        &client,
        ns.name(),
        &canary("web:1", steps, "", ""),
        &success_rate_template(&prometheus.url, ""),
    )
    .await;
    let inconclusive = Manifests::new(&[
        ("services.yaml", SERVICES),
        (
            "analysis.yaml",
            &success_rate_template(&prometheus.url, "result[0] < 0.5"),
        ),
        ("rollout.yaml", &canary("web:2", steps, "", "")),
    ]);
    let run = finish(apply_wait(
        ns.name(),
        inconclusive.path(),
        &["--success-on-pause"],
    ))
    .await;
    assert_exit(&run, 0, "a release paused by an inconclusive analysis");
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert!(!status.abort);
    assert_eq!(
        status.pause_conditions[0].reason,
        PauseReason::InconclusiveAnalysis
    );
    let analysis = last_analysis(&client, ns.name()).await;
    assert_eq!(analysis.phase, AnalysisPhase::Inconclusive);
    let dry = analysis
        .metric_results
        .iter()
        .find(|r| r.name == "dry")
        .unwrap();
    assert_eq!(dry.phase, AnalysisPhase::Failed);
    assert!(dry.dry_run);
}

/// The API requests in a JSON log (the client logs each at debug level under
/// `rollout_runner::api`), as `verb resource/name`.
pub(crate) fn api_requests<'a>(
    log: impl IntoIterator<Item = &'a serde_json::Value>,
) -> Vec<String> {
    log.into_iter()
        .filter(|entry| entry["target"] == rollout_runner::cluster::requests::TARGET)
        .map(|entry| {
            let fields = &entry["fields"];
            format!(
                "{} {}/{}",
                fields["verb"].as_str().unwrap_or(""),
                fields["resource"].as_str().unwrap_or(""),
                fields["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn is_non_watch_read(request: &str) -> bool {
    request.starts_with("get ") || request.starts_with("list ")
}

#[tokio::test]
async fn e2e_a_release_reads_only_from_its_watches() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-reads").await;
    deploy_first(&client, ns.name(), &canary("web:1", FIVE_STEPS, "", "")).await;
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &canary("web:2", FIVE_STEPS, "", "")),
    ]);
    let mut command = apply_wait(ns.name(), v2.path(), &[]);
    command
        .env(
            "ROLLOUT_RUNNER_LOG",
            "rollout_runner::api=debug,rollout_runner::driver=debug",
        )
        .env("ROLLOUT_RUNNER_LOG_FORMAT", "json");
    let finished = finish(command).await;
    assert_exit(&finished, 0, "the runner");
    let log: Vec<serde_json::Value> = finished
        .stderr
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let first_action = log
        .iter()
        .position(|entry| entry["fields"]["message"] == "performing")
        .unwrap_or_else(|| panic!("the release performs actions:\n{}", finished.stderr));
    let during = api_requests(&log[first_action..]);
    let writes = during
        .iter()
        .filter(|r| {
            ["create ", "update ", "patch ", "delete "]
                .iter()
                .any(|v| r.starts_with(v))
        })
        .count();
    // Two ReplicaSet scales per step at least: the request log is on and complete.
    assert!(writes >= 10, "{during:#?}");
    let reads: Vec<&String> = during.iter().filter(|r| is_non_watch_read(r)).collect();
    assert!(reads.is_empty(), "reads besides the watches: {reads:#?}");
    // A Rollout without analysis watches no template.
    let all = api_requests(&log);
    assert!(
        !all.iter().any(|r| r.contains("analysistemplates")),
        "{all:#?}"
    );
}
