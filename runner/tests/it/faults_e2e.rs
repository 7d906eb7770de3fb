//! End to end under API faults: `rollout-runner apply --wait` drives releases through the API
//! fault proxy (`tests/faultproxy`): 5xx, 429 with Retry-After, conflicts, resets, slow
//! answers, watches that end early or expire. The end state, the invariants and the step
//! sequence must be those of a release without faults. And a runner cut off from the API
//! server for longer than its Lease must never write again once it is back.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use rollout_runner::crd::{AnalysisPhase, AnalysisRun, RolloutPhase};

use crate::drive_e2e::{FIVE_STEPS, assert_exit, blue_green, canary, replica_sets, rollout};
use crate::support::cluster::{self, TestNamespace};
use crate::support::faultproxy::{FaultProxy, faults, writes};
use crate::support::runner::{
    Finished, Manifests, Monitor, Running, SERVICES, apply_wait, apply_wait_leased, command,
    finish, is_action, selected_hash, wait_rollout,
};

/// The seed of every test here: the same faults in the same request order.
const SEED: u64 = 42;

/// The Services that must select available pods at every moment (see drive_e2e).
const ALWAYS_SERVING: &[&str] = &["web-canary"];

/// Deploys `yaml` (version 1) without faults; returns its pod-template hash.
async fn deploy_first(client: &kube::Client, ns: &str, files: &[(&str, &str)]) -> String {
    let manifests = Manifests::new(files);
    assert_exit(
        &finish(apply_wait(ns, manifests.path(), &[])).await,
        0,
        "the first deploy",
    );
    rollout(client, ns).await.status.unwrap().stable_rs
}

/// Deploys the five-step canary at `web:1` without faults; returns its pod-template hash.
async fn deploy_canary_v1(client: &kube::Client, ns: &str) -> String {
    deploy_first(
        client,
        ns,
        &[
            ("services.yaml", SERVICES),
            ("rollout.yaml", &canary("web:1", FIVE_STEPS, "", "")),
        ],
    )
    .await
}

#[tokio::test]
async fn e2e_faults_a_canary_under_ten_percent_api_faults_ends_as_without_them() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some(proxy) = FaultProxy::start(SEED, &["--profile", "ten-percent"]).await else {
        return;
    };
    let ns = TestNamespace::create(&client, "faults-canary").await;
    let old = deploy_canary_v1(&client, ns.name()).await;
    proxy.admin("POST", "/stats/reset", "").await;

    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &canary("web:2", FIVE_STEPS, "", "")),
    ]);
    // A Lease long enough that renewals slowed by faults do not let it lapse.
    let mut command = apply_wait_leased(ns.name(), v2.path(), "8s", &[]);
    command.env("KUBECONFIG", proxy.kubeconfig());
    let run = finish(command).await;
    let seen = monitor.stop();
    let stats = proxy.stop().await;
    assert_exit(&run, 0, "the release under faults");
    assert!(
        run.stdout.contains("promoted: revision 2 is stable"),
        "{}",
        run.stdout
    );
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(status.current_step_index, Some(5));
    let mut expected = vec![(old.clone(), 0, 0), (status.stable_rs.clone(), 5, 5)];
    expected.sort();
    assert_eq!(replica_sets(&client, ns.name()).await, expected);
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(seen.min_available, Some(5));
    assert_eq!(
        seen.step_indexes,
        [0, 1, 2, 3, 4, 5],
        "every step once, in order, as without faults"
    );
    for kind in ["status", "throttle", "delay", "reset"] {
        assert!(
            faults(&stats, kind) > 0,
            "no `{kind}` fault was injected: {stats:#}"
        );
    }
}
/// Whether the Lease `rollout-runner-web` has expired (or is free).
async fn lease_expired(client: &kube::Client, ns: &str) -> bool {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let Some(spec) = leases
        .get_opt("rollout-runner-web")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
    else {
        return false;
    };
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    spec.holder_identity.is_none_or(|h| h.is_empty())
        || spec.renew_time.is_some_and(|t| {
            t.0 + jiff::SignedDuration::from_secs(seconds) < jiff::Timestamp::now()
        })
}

#[tokio::test]
async fn e2e_faults_a_runner_partitioned_past_its_lease_never_writes_again() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some(proxy) = FaultProxy::start(SEED, &[]).await else {
        return;
    };
    let ns = TestNamespace::create(&client, "faults-partition").await;
    let steps = r#"
        - setWeight: 20
        - pause: {duration: 4s}
        - setWeight: 40
        - pause: {duration: 12s}
        - setWeight: 80"#;
    deploy_first(
        &client,
        ns.name(),
        &[
            ("services.yaml", SERVICES),
            ("rollout.yaml", &canary("web:1", steps, "", "")),
        ],
    )
    .await;
    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &canary("web:2", steps, "", "")),
    ]);

    // The first runner goes through the proxy; cut it off once it paused at step 2.
    let mut command = apply_wait_leased(ns.name(), v2.path(), "3s", &[]);
    command.env("KUBECONFIG", proxy.kubeconfig());
    let first = Running::start(command);
    wait_rollout(&client, ns.name(), "web", "the pause of step 2", |ro| {
        ro.status
            .as_ref()
            .is_some_and(|s| s.current_step_index == Some(1) && !s.pause_conditions.is_empty())
    })
    .await;
    proxy.admin("POST", "/partition?mode=hang", "").await;
    let actions_before = first.stderr().iter().filter(|l| is_action(l)).count();
    assert!(
        actions_before > 0,
        "the first runner drove before the partition"
    );

    // Once its Lease expired, a second runner (no proxy) takes over and drives on.
    cluster::wait_for(
        "the first runner's Lease to expire",
        cluster::TIMEOUT,
        || {
            let client = client.clone();
            let ns = ns.name().to_owned();
            async move { lease_expired(&client, &ns).await.then_some(()) }
        },
    )
    .await;
    let second = Running::start(apply_wait_leased(ns.name(), v2.path(), "3s", &[]));
    wait_rollout(
        &client,
        ns.name(),
        "web",
        "the second runner at step 4",
        |ro| {
            ro.status
                .as_ref()
                .is_some_and(|s| s.current_step_index == Some(3))
        },
    )
    .await;

    // Back on the network, the first runner must not write any more (its Lease renewals,
    // held during the partition, aside).
    proxy.admin("POST", "/stats/reset", "").await;
    proxy.admin("POST", "/heal", "").await;
    let (first, second) = tokio::join!(first.finish(), second.finish());
    let seen = monitor.stop();
    let stats = proxy.stop().await;
    assert_exit(&second, 0, "the second runner");
    assert!(second.stderr.lines().any(is_action), "{}", second.stderr);
    assert_exit(&first, 0, "the first runner, following to the end");
    let after = writes(&stats, &["leases"]);
    assert!(
        after.is_empty(),
        "the first runner wrote after it lost its Lease: {after:?}\nfirst:\n{}\nsecond:\n{}",
        first.stderr,
        second.stderr
    );
    let actions_after = first.stderr.lines().filter(|l| is_action(l)).count();
    assert_eq!(
        actions_after, actions_before,
        "no action after the partition:\n{}",
        first.stderr
    );
    assert!(
        stats["requests"].as_u64().unwrap_or(0) > 0,
        "the first runner did talk to the API server after the heal: {stats:#}"
    );
    assert!(
        first.stderr.contains("following instead") || first.stderr.contains("following it"),
        "{}",
        first.stderr
    );
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(
        seen.step_indexes,
        [0, 1, 2, 3, 4, 5],
        "no step skipped or repeated"
    );
}

/// `apply --wait` of `files` through `proxy` with a Lease long enough for slowed renewals.
async fn release_through(proxy: &FaultProxy, ns: &str, files: &[(&str, &str)]) -> Finished {
    let manifests = Manifests::new(files);
    let mut command = apply_wait_leased(ns, manifests.path(), "8s", &[]);
    command.env("KUBECONFIG", proxy.kubeconfig());
    finish(command).await
}

#[tokio::test]
async fn e2e_faults_a_blue_green_release_under_ten_percent_api_faults_ends_as_without_them() {
    let Some(client) = cluster::client().await else {
        return;
    };
    // A runner that reads from its watches makes few requests in a blue-green release (about
    // 55): at ten percent, a given kind of fault may not come up. These rules make sure the
    // kinds asserted below do, once or twice, on top of the profile.
    let sure = r#"[{"verbs":["patch","update"],"resources":["rollouts/status"],"fault":"status","code":503,"rate":0.8,"times":1},
                   {"verbs":["patch","update"],"resources":["replicasets","services"],"fault":"throttle","retryAfter":1,"rate":0.8,"times":1},
                   {"verbs":["create"],"fault":"delay","delay":"200ms","rate":0.8,"times":2}]"#;
    let Some(proxy) = FaultProxy::start(SEED, &["--profile", "ten-percent", "--rules", sure]).await
    else {
        return;
    };
    let ns = TestNamespace::create(&client, "faults-bluegreen").await;
    let auto = "      autoPromotionSeconds: 2";
    let old = deploy_first(
        &client,
        ns.name(),
        &[
            ("services.yaml", SERVICES),
            ("rollout.yaml", &blue_green("web:1", auto)),
        ],
    )
    .await;
    proxy.admin("POST", "/stats/reset", "").await;
    let monitor = Monitor::start(&client, ns.name(), &["web-stable"], None);
    let run = release_through(
        &proxy,
        ns.name(),
        &[
            ("services.yaml", SERVICES),
            ("rollout.yaml", &blue_green("web:2", auto)),
        ],
    )
    .await;
    let seen = monitor.stop();
    let stats = proxy.stop().await;
    assert_exit(&run, 0, "the blue-green release under faults");
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
    assert_eq!(replica_sets(&client, ns.name()).await, expected);
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert!(stats["faulted"].as_u64().unwrap_or(0) > 0, "{stats:#}");
    for kind in ["status", "throttle", "delay"] {
        assert!(faults(&stats, kind) > 0, "no `{kind}` fault: {stats:#}");
    }
}

/// A step analysis on a web metric the test serves: 0.95 succeeds.
fn passing_web_template(url: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: score}}
spec:
  metrics:
    - name: score
      count: 2
      interval: 1s
      successCondition: result >= 0.9
      consecutiveErrorLimit: 1
      provider:
        web: {{url: "{url}/score", jsonPath: "{{$.value}}"}}
"#
    )
}

const ANALYSIS_STEPS: &str = r#"
        - setWeight: 20
        - analysis: {templates: [{templateName: score}]}
        - setWeight: 60"#;

#[tokio::test]
async fn e2e_faults_an_analysis_release_under_ten_percent_api_faults_ends_as_without_them() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some(proxy) = FaultProxy::start(SEED, &["--profile", "ten-percent"]).await else {
        return;
    };
    let server = crate::contract_server::Server::start(|_| {
        crate::contract_server::Reply::json(200, r#"{"value": 0.95}"#)
    })
    .await;
    let template = passing_web_template(&server.url());
    let ns = TestNamespace::create(&client, "faults-analysis").await;
    let old = deploy_first(
        &client,
        ns.name(),
        &[
            ("services.yaml", SERVICES),
            ("analysis.yaml", &template),
            ("rollout.yaml", &canary("web:1", ANALYSIS_STEPS, "", "")),
        ],
    )
    .await;
    proxy.admin("POST", "/stats/reset", "").await;
    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let run = release_through(
        &proxy,
        ns.name(),
        &[
            ("services.yaml", SERVICES),
            ("analysis.yaml", &template),
            ("rollout.yaml", &canary("web:2", ANALYSIS_STEPS, "", "")),
        ],
    )
    .await;
    let seen = monitor.stop();
    let stats = proxy.stop().await;
    assert_exit(&run, 0, "the analysis release under faults");
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_ne!(status.stable_rs, old);
    assert_eq!(status.current_step_index, Some(3));
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(seen.step_indexes, [0, 1, 2, 3], "every step once, in order");
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), ns.name());
    let runs = runs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(runs.len(), 1, "one AnalysisRun, not one per retry");
    let run_status = runs[0].status.clone().unwrap();
    assert_eq!(run_status.phase, AnalysisPhase::Successful);
    assert_eq!(run_status.metric_results[0].count, 2, "{run_status:?}");
    for kind in ["status", "throttle", "delay"] {
        assert!(faults(&stats, kind) > 0, "no `{kind}` fault: {stats:#}");
    }
}

#[tokio::test]
async fn e2e_faults_a_metric_provider_down_past_its_error_limit_aborts_and_never_promotes() {
    let Some(client) = cluster::client().await else {
        return;
    };
    // A port nobody listens on: every measurement is an Error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let template = passing_web_template(&format!("http://{closed}"));
    let ns = TestNamespace::create(&client, "faults-metric-down").await;
    let old = deploy_first(
        &client,
        ns.name(),
        &[
            ("services.yaml", SERVICES),
            ("analysis.yaml", &template),
            ("rollout.yaml", &canary("web:1", ANALYSIS_STEPS, "", "")),
        ],
    )
    .await;
    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("analysis.yaml", &template),
        ("rollout.yaml", &canary("web:2", ANALYSIS_STEPS, "", "")),
    ]);
    let run = finish(apply_wait(ns.name(), v2.path(), &[])).await;
    let seen = monitor.stop();
    // consecutiveErrorLimit 1: the second error in a row makes the run Error, which aborts
    // the rollout as a Failed run does (docs/conditions.md).
    assert_exit(&run, 1, "a release whose metric provider is down");
    assert!(run.stdout.contains("aborted"), "{}", run.stdout);
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert!(status.abort);
    assert_eq!(status.stable_rs, old, "never promoted on missing data");
    let sets = replica_sets(&client, ns.name()).await;
    assert!(sets.contains(&(old.clone(), 5, 5)), "{sets:?}");
    assert!(
        seen.step_indexes.iter().all(|&i| i <= 1),
        "{:?}",
        seen.step_indexes
    );
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), ns.name());
    let run = runs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .pop()
        .unwrap();
    let run_status = run.status.unwrap();
    assert_eq!(run_status.phase, AnalysisPhase::Error, "{run_status:?}");
    let metric = &run_status.metric_results[0];
    assert_eq!(metric.consecutive_error, 2, "{metric:?}");
    assert_eq!(metric.successful, 0);
}

#[tokio::test]
async fn e2e_faults_the_controller_under_ten_percent_api_faults_releases_a_canary() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some(proxy) = FaultProxy::start(SEED, &["--profile", "ten-percent"]).await else {
        return;
    };
    let ns = TestNamespace::create(&client, "faults-controller").await;
    let old = deploy_canary_v1(&client, ns.name()).await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let mut process = command(
        ns.name(),
        &[
            "controller",
            "--lease-duration",
            "8s",
            "--lease-namespace",
            ns.name(),
            "--metrics-addr",
            &metrics_port,
            "--identity",
            "controller-faulty",
        ],
    );
    process
        .env("KUBECONFIG", proxy.kubeconfig())
        .env("ROLLOUT_RUNNER_LOG", "info,rollout_runner::driver=debug");
    let mut controller = Running::start(process);
    let elected = tokio::time::timeout(
        cluster::TIMEOUT,
        controller.wait_for_lines(1, |l| l.contains("elected leader")),
    )
    .await;
    assert!(
        matches!(elected, Ok(true)),
        "the controller was not elected:\n{:#?}",
        controller.stderr()
    );
    proxy.admin("POST", "/stats/reset", "").await;
    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &canary("web:2", FIVE_STEPS, "", "")),
    ]);
    let dir = v2.path().to_str().unwrap();
    assert_exit(
        &finish(command(ns.name(), &["apply", dir])).await,
        0,
        "apply without --wait",
    );
    let done = wait_rollout(
        &client,
        ns.name(),
        "web",
        "web:2 promoted by the controller",
        |ro| {
            ro.status.as_ref().is_some_and(|s| {
                s.phase == Some(RolloutPhase::Healthy)
                    && s.current_step_index == Some(5)
                    && s.stable_rs == s.current_pod_hash
                    && s.stable_rs != old
            })
        },
    )
    .await;
    let seen = monitor.stop();
    let stats = proxy.stats().await;
    controller.kill().await;
    proxy.stop().await;
    let stable = done.status.unwrap().stable_rs;
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(
        seen.step_indexes,
        [0, 1, 2, 3, 4, 5],
        "every step once, in order"
    );
    cluster::wait_for("the old version scaled down", cluster::TIMEOUT, || async {
        let sets = replica_sets(&client, ns.name()).await;
        sets.contains(&(old.clone(), 0, 0))
            .then_some(())
            .filter(|()| sets.contains(&(stable.clone(), 5, 5)))
    })
    .await;
    assert!(stats["faulted"].as_u64().unwrap_or(0) > 0, "{stats:#}");
    for kind in ["status", "throttle"] {
        assert!(faults(&stats, kind) > 0, "no `{kind}` fault: {stats:#}");
    }
}

/// A 429 with `Retry-After: 2` holds the runner back for those two seconds: two throttled
/// reads of the Rollout cost at least four seconds (its own back-off alone is 0.4 s, then
/// 0.8 s), and the command still succeeds. Both kinds of answer are covered: the apiserver's
/// own text body, and a `Status` with `retryAfterSeconds`.
#[tokio::test]
async fn e2e_faults_retry_after_is_waited_out() {
    let Some(client) = cluster::client().await else {
        return;
    };
    for body in ["text", "status"] {
        let rules = format!(
            r#"[{{"verbs":["get"],"resources":["rollouts"],"fault":"throttle","retryAfter":2,"times":2,"body":"{body}"}}]"#
        );
        let Some(proxy) = FaultProxy::start(SEED, &["--rules", &rules]).await else {
            return;
        };
        let ns = TestNamespace::create(&client, "retry-after").await;
        deploy_canary_v1(&client, ns.name()).await;
        // deploy_first ran without the proxy; only the status below goes through it.
        let mut status = command(ns.name(), &["status", "web"]);
        status.env("KUBECONFIG", proxy.kubeconfig());
        let started = std::time::Instant::now();
        let finished = finish(status).await;
        let took = started.elapsed();
        assert_exit(&finished, 0, "status through throttled reads");
        let stats = proxy.stop().await;
        assert_eq!(faults(&stats, "throttle"), 2, "{body}: {stats}");
        assert!(
            took >= std::time::Duration::from_secs(4),
            "{body}: two Retry-After: 2 answers were waited out in {took:?}"
        );
    }
}

/// Watches that end early and then meet `410 Gone` when they resume (the apiserver's answer
/// to a resourceVersion its watch cache no longer holds): the runner lists again and the
/// release ends as without faults, every step once.
#[tokio::test]
async fn e2e_faults_watches_expired_on_resume_are_recovered() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let rules = r#"[{"verbs":["watch"],"fault":"gone","rate":0.5,"times":6},
                    {"verbs":["watch"],"fault":"close-early","after":"2s","rate":0.5}]"#;
    let Some(proxy) = FaultProxy::start(SEED, &["--rules", rules]).await else {
        return;
    };
    let ns = TestNamespace::create(&client, "faults-gone").await;
    deploy_canary_v1(&client, ns.name()).await;
    proxy.admin("POST", "/stats/reset", "").await;
    let monitor = Monitor::start(&client, ns.name(), ALWAYS_SERVING, Some(5));
    let run = release_through(
        &proxy,
        ns.name(),
        &[
            ("services.yaml", SERVICES),
            ("rollout.yaml", &canary("web:2", FIVE_STEPS, "", "")),
        ],
    )
    .await;
    let seen = monitor.stop();
    let stats = proxy.stop().await;
    assert_exit(&run, 0, "the release with expiring watches");
    assert!(faults(&stats, "gone") > 0, "no watch expired: {stats:#}");
    assert!(
        faults(&stats, "close-early") > 0,
        "no watch ended: {stats:#}"
    );
    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert!(seen.violations.is_empty(), "{:#?}", seen.violations);
    assert_eq!(
        seen.step_indexes,
        [0, 1, 2, 3, 4, 5],
        "every step once, in order"
    );
}
