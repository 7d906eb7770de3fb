//! Whole rollouts through the real driver on the in-memory cluster: promotion, analysis
//! verdicts, pauses, blue-green, deadlines, safety invariants, and crash-and-resume.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use rollout_runner::analysis::run::TaskKind;
use rollout_runner::cluster::memory::{Hooks, MemoryCluster, PodBehaviour};
use rollout_runner::cluster::{Cluster, ClusterError};
use rollout_runner::crd::{
    AnalysisPhase, AnalysisTemplate, Measurement, Metric, PauseReason, Rollout, RolloutPhase,
    RolloutStatus,
};
use rollout_runner::driver::{Driver, RunOptions};
use rollout_runner::metrics::{MeasureContext, Metrics};
use rollout_runner::observed::ServiceState;
use rollout_runner::operate::Operation;
use rollout_runner::plan::Action;
use rollout_runner::report::{Outcome, Reporter, Silent, Update};

fn start() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

fn rollout(yaml: &str) -> Rollout {
    serde_saphyr::from_str(yaml).expect("test rollout parses")
}

const CANARY: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      maxSurge: 1
      maxUnavailable: 0
      steps:
        - setWeight: 25
        - pause: {duration: 30s}
        - setWeight: 50
        - pause: {duration: 30s}
        - setWeight: 75
"#;

/// Metric values by metric name, judged like any provider would.
struct Fixed(BTreeMap<String, AnalysisPhase>);

impl Metrics for Fixed {
    async fn measure(
        &self,
        context: MeasureContext<'_>,
        metric: &Metric,
        _: &TaskKind,
    ) -> Measurement {
        let at = rollout_runner::engine::conditions::meta_time(context.now);
        Measurement {
            phase: self
                .0
                .get(&metric.name)
                .copied()
                .unwrap_or(AnalysisPhase::Error),
            value: "1".into(),
            started_at: Some(at.clone()),
            finished_at: Some(at),
            ..Default::default()
        }
    }
}

fn no_metrics() -> Fixed {
    Fixed(BTreeMap::new())
}

fn cluster_with_services(names: &[&str]) -> MemoryCluster {
    let cluster = MemoryCluster::new(start(), PodBehaviour::default());
    for name in names {
        cluster.add_service(
            "shop",
            ServiceState {
                name: (*name).into(),
                selector: BTreeMap::from([("app".to_string(), "web".to_string())]),
                annotations: BTreeMap::new(),
            },
        );
    }
    cluster
}

async fn drive(cluster: &MemoryCluster, metrics: &Fixed, reporter: &mut dyn Reporter) -> Outcome {
    Driver::new(cluster, metrics, reporter)
        .run(
            "shop",
            "web",
            &RunOptions {
                timeout: Some(SignedDuration::from_hours(2)),
                ..Default::default()
            },
        )
        .await
        .expect("the driver runs")
}

/// Deploy version 1 (an initial deploy: no steps), then release version 2.
async fn deployed_then_updated(cluster: &MemoryCluster, yaml: &str) -> Rollout {
    let mut ro = rollout(yaml);
    cluster.apply_rollout(&ro);
    let outcome = drive(cluster, &no_metrics(), &mut Silent).await;
    assert!(
        matches!(outcome, Outcome::Promoted { .. }),
        "initial deploy: {outcome:?}"
    );
    ro.spec
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("web:2".into());
    cluster.apply_rollout(&ro);
    ro
}

async fn status(cluster: &MemoryCluster) -> RolloutStatus {
    cluster
        .get_rollout("shop", "web")
        .await
        .unwrap()
        .unwrap()
        .status
        .unwrap()
}

/// Records every status the driver wrote, with the replica sets at that moment.
#[derive(Default)]
struct History {
    statuses: Vec<RolloutStatus>,
    events: Vec<String>,
    actions: Vec<String>,
}

impl Reporter for History {
    fn report(&mut self, update: &Update<'_>) {
        match *update {
            Update::Status { rollout, .. } => self.statuses.push(rollout.status_or_default()),
            Update::Events { events, .. } => {
                self.events.extend(events.iter().map(|e| e.reason.clone()))
            }
            Update::Actions { actions, .. } => {
                self.actions.extend(actions.iter().map(Action::describe))
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_basic_canary_is_promoted_step_by_step() {
    let cluster = cluster_with_services(&["web-stable", "web-canary"]);
    deployed_then_updated(&cluster, CANARY).await;
    let mut history = History::default();
    let outcome = drive(&cluster, &no_metrics(), &mut history).await;
    assert_eq!(
        outcome,
        Outcome::Promoted {
            revision: "2".into()
        }
    );

    let status = status(&cluster).await;
    assert_eq!(status.phase, Some(RolloutPhase::Healthy));
    assert_eq!(status.stable_rs, status.current_pod_hash);
    assert_eq!(status.current_step_index, Some(5));
    let sets = cluster.replica_sets("shop", "web");
    let new = sets
        .iter()
        .find(|rs| rs.pod_hash() == status.stable_rs)
        .unwrap();
    assert_eq!((new.spec_replicas, new.available_replicas), (4, 4));
    assert!(
        sets.iter()
            .filter(|rs| rs.pod_hash() != status.stable_rs)
            .all(|rs| rs.spec_replicas == 0)
    );
    // Both services end on the new version.
    for name in ["web-stable", "web-canary"] {
        assert_eq!(
            cluster.service("shop", name).unwrap().selected_hash(),
            status.stable_rs
        );
    }
    // Every step completed, in order, with Argo's events.
    let completed = history
        .events
        .iter()
        .filter(|e| *e == "RolloutStepCompleted")
        .count();
    assert_eq!(completed, 5);
    assert!(history.events.contains(&"RolloutCompleted".to_string()));
    // Step indexes only ever move forward.
    let indexes: Vec<i32> = history
        .statuses
        .iter()
        .filter_map(|s| s.current_step_index)
        .collect();
    assert!(indexes.windows(2).all(|w| w[0] <= w[1]), "{indexes:?}");
}

#[tokio::test]
async fn a_basic_canary_never_drops_below_min_available() {
    let cluster = cluster_with_services(&["web-stable", "web-canary"]);
    deployed_then_updated(&cluster, CANARY).await;
    let mut history = History::default();
    drive(&cluster, &no_metrics(), &mut history).await;
    // replicas 4, maxUnavailable 0: never fewer than 4 available pods.
    let min = history
        .statuses
        .iter()
        .map(|s| s.available_replicas)
        .min()
        .unwrap();
    assert!(min >= 4, "available dropped to {min}");
    // maxSurge 1: never more than 5 pods.
    let max = history.statuses.iter().map(|s| s.replicas).max().unwrap();
    assert!(max <= 5, "surged to {max}");
}

#[tokio::test]
async fn services_never_select_a_replica_set_without_available_pods() {
    let cluster = cluster_with_services(&["web-stable", "web-canary"]);
    deployed_then_updated(&cluster, CANARY).await;
    // Check at every wait: the canary service may only point at pods that are available.
    cluster.set_hooks(Hooks {
        before_wait: Some(Arc::new(check_services_select_available_pods)),
        ..Hooks::default()
    });
    let mut silent = Silent;
    let outcome = Driver::new(&cluster, &no_metrics(), &mut silent)
        .run("shop", "web", &RunOptions::default())
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Promoted { .. }));
}

/// Asserts, every time the driver waits, that no service selects pods that are not available.
fn check_services_select_available_pods(cluster: &MemoryCluster) {
    for name in ["web-stable", "web-canary"] {
        let service = cluster.service("shop", name).unwrap();
        let hash = service.selected_hash();
        if hash.is_empty() {
            continue;
        }
        let sets = cluster.replica_sets("shop", "web");
        let target = sets.iter().find(|rs| rs.pod_hash() == hash).unwrap();
        assert!(
            target.available_replicas > 0,
            "service {name} selects {} which has no available pods",
            target.name
        );
    }
}

const WITH_ANALYSIS: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  strategy:
    canary:
      steps:
        - setWeight: 50
        - analysis:
            templates: [{templateName: check}]
        - setWeight: 100
"#;

fn check_template() -> AnalysisTemplate {
    serde_saphyr::from_str(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: check, namespace: shop}
spec:
  metrics:
    - name: check
      successCondition: "result == 1"
      provider: {web: {url: "http://example.invalid"}}
"#,
    )
    .unwrap()
}

async fn analysed(phase: AnalysisPhase) -> (MemoryCluster, Outcome) {
    let cluster = cluster_with_services(&[]);
    cluster.add_analysis_template(check_template());
    deployed_then_updated(&cluster, WITH_ANALYSIS).await;
    let metrics = Fixed(BTreeMap::from([("check".to_string(), phase)]));
    let outcome = drive(&cluster, &metrics, &mut Silent).await;
    (cluster, outcome)
}

#[tokio::test]
async fn a_failed_analysis_aborts_and_returns_everything_to_stable() {
    let (cluster, outcome) = analysed(AnalysisPhase::Failed).await;
    let Outcome::Aborted { message } = &outcome else {
        panic!("expected an abort, got {outcome:?}");
    };
    assert!(
        message.contains("Metric \"check\" assessed Failed due to failed (1) > failureLimit (0)"),
        "{message}"
    );
    let status = status(&cluster).await;
    assert_eq!(status.phase, Some(RolloutPhase::Degraded));
    assert!(status.abort);
    assert_eq!(status.current_step_index, Some(0));
    // Drive on past the abort: the canary is scaled away, the stable is at full size.
    let mut silent = Silent;
    let metrics = no_metrics();
    let mut driver = Driver::new(&cluster, &metrics, &mut silent);
    for _ in 0..20 {
        driver.reconcile("shop", "web").await.unwrap();
        cluster
            .wait(Some(cluster.now() + SignedDuration::from_secs(10)), None)
            .await;
    }
    let sets = cluster.replica_sets("shop", "web");
    let stable = sets
        .iter()
        .find(|rs| rs.pod_hash() == status.stable_rs)
        .unwrap();
    assert_eq!(stable.available_replicas, 2);
    assert!(
        sets.iter()
            .filter(|rs| rs.pod_hash() != status.stable_rs)
            .all(|rs| rs.spec_replicas == 0)
    );
    let run = cluster.analysis_runs().pop().unwrap();
    assert_eq!(run.status.unwrap().phase, AnalysisPhase::Failed);
}

#[tokio::test]
async fn an_inconclusive_analysis_pauses() {
    let cluster = cluster_with_services(&[]);
    cluster.add_analysis_template(check_template());
    deployed_then_updated(&cluster, WITH_ANALYSIS).await;
    let metrics = Fixed(BTreeMap::from([(
        "check".to_string(),
        AnalysisPhase::Inconclusive,
    )]));
    let outcome = Driver::new(&cluster, &metrics, &mut Silent)
        .run(
            "shop",
            "web",
            &RunOptions {
                success_on_pause: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Paused { .. }), "{outcome:?}");
    let status = status(&cluster).await;
    assert_eq!(
        status.pause_conditions[0].reason,
        PauseReason::InconclusiveAnalysis
    );
    assert_eq!(status.message, "InconclusiveAnalysisRun");

    // A person promotes: the step is skipped and the release completes.
    cluster.operate("shop", "web", &Operation::Promote).unwrap();
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_successful_analysis_step_lets_the_release_through() {
    let (cluster, outcome) = analysed(AnalysisPhase::Successful).await;
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");
    assert_eq!(status(&cluster).await.current_step_index, Some(3));
}

const PAUSE_FOREVER: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {}
"#;

#[tokio::test]
async fn an_indefinite_pause_waits_for_a_promotion() {
    let cluster = cluster_with_services(&[]);
    deployed_then_updated(&cluster, PAUSE_FOREVER).await;
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Idle { .. }), "{outcome:?}");
    assert_eq!(status(&cluster).await.phase, Some(RolloutPhase::Paused));

    cluster.schedule(
        cluster.now() + SignedDuration::from_mins(5),
        "shop",
        "web",
        Operation::Promote,
    );
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");
}

#[tokio::test]
async fn abort_then_retry_runs_the_steps_again() {
    let cluster = cluster_with_services(&[]);
    deployed_then_updated(&cluster, PAUSE_FOREVER).await;
    drive(&cluster, &no_metrics(), &mut Silent).await;
    cluster.operate("shop", "web", &Operation::Abort).unwrap();
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Aborted { .. }), "{outcome:?}");
    cluster.operate("shop", "web", &Operation::Retry).unwrap();
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(
        matches!(outcome, Outcome::Idle { .. }),
        "retried rollout pauses again: {outcome:?}"
    );
    assert_eq!(status(&cluster).await.current_step_index, Some(1));
    cluster
        .operate("shop", "web", &Operation::PromoteFull)
        .unwrap();
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");
}

const BLUE_GREEN: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  strategy:
    blueGreen:
      activeService: web-active
      previewService: web-preview
      autoPromotionEnabled: false
      scaleDownDelaySeconds: 30
"#;

#[tokio::test]
async fn blue_green_waits_for_manual_promotion_then_switches() {
    let cluster = cluster_with_services(&["web-active", "web-preview"]);
    deployed_then_updated(&cluster, BLUE_GREEN).await;
    let before = status(&cluster).await.stable_rs;
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Idle { .. }), "{outcome:?}");
    let paused = status(&cluster).await;
    assert_eq!(paused.message, "BlueGreenPause");
    assert_eq!(
        cluster
            .service("shop", "web-active")
            .unwrap()
            .selected_hash(),
        before
    );
    assert_eq!(
        cluster
            .service("shop", "web-preview")
            .unwrap()
            .selected_hash(),
        paused.current_pod_hash
    );

    cluster.operate("shop", "web", &Operation::Promote).unwrap();
    let promoted_at = cluster.now();
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");
    let done = status(&cluster).await;
    assert_eq!(
        cluster
            .service("shop", "web-active")
            .unwrap()
            .selected_hash(),
        done.current_pod_hash
    );
    // The runner saw the release through: the old version stayed up for scaleDownDelaySeconds,
    // then went.
    let old = cluster
        .replica_sets("shop", "web")
        .into_iter()
        .find(|rs| rs.pod_hash() == before)
        .unwrap();
    assert_eq!(old.spec_replicas, 0);
    assert!(cluster.now().duration_since(promoted_at) >= SignedDuration::from_secs(30));
    let events = cluster.events();
    let switched = events
        .iter()
        .find(|(_, _, e)| e.reason == "SwitchService" && e.message.contains("web-active"))
        .map(|(at, ..)| *at)
        .unwrap();
    let scaled_down = events
        .iter()
        .find(|(_, _, e)| {
            e.reason == "ScalingReplicaSet"
                && e.message.contains(&format!("web-{before}"))
                && e.message.ends_with("to 0")
        })
        .map(|(at, ..)| *at)
        .unwrap();
    assert!(scaled_down.duration_since(switched) >= SignedDuration::from_secs(30));
}

#[tokio::test]
async fn blue_green_with_auto_promotion_seconds() {
    let cluster = cluster_with_services(&["web-active", "web-preview"]);
    let yaml = BLUE_GREEN.replace("autoPromotionEnabled: false", "autoPromotionSeconds: 60");
    deployed_then_updated(&cluster, &yaml).await;
    let begun = cluster.now();
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");
    assert!(cluster.now().duration_since(begun) >= SignedDuration::from_secs(60));
}

#[tokio::test]
async fn a_never_ready_canary_exceeds_the_progress_deadline() {
    let cluster = cluster_with_services(&[]);
    let yaml = PAUSE_FOREVER.replace("replicas: 2", "replicas: 2\n  progressDeadlineSeconds: 120");
    let mut ro = deployed_then_updated(&cluster, &yaml).await;
    ro.spec
        .template
        .as_mut()
        .unwrap()
        .metadata
        .as_mut()
        .unwrap()
        .annotations = Some(BTreeMap::from([(
        "test.rollout-runner.io/never-ready".to_string(),
        "true".to_string(),
    )]));
    cluster.apply_rollout(&ro);
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    let Outcome::Degraded { message } = &outcome else {
        panic!("expected Degraded, got {outcome:?}");
    };
    assert!(
        message.starts_with("ProgressDeadlineExceeded: ReplicaSet"),
        "{message}"
    );

    // With progressDeadlineAbort the update is aborted instead.
    ro.spec.progress_deadline_abort = true;
    cluster.apply_rollout(&ro);
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Aborted { .. }), "{outcome:?}");
}

/// Hooks that fail every write after `writes` of them, as a runner killed at that point.
fn killed_after(writes: i64) -> Hooks {
    let left = Arc::new(std::sync::atomic::AtomicI64::new(writes));
    Hooks {
        before_write: Some(Arc::new(move || {
            if left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) <= 0 {
                return Err(ClusterError::Api("killed".into()));
            }
            Ok(())
        })),
        ..Hooks::default()
    }
}

/// The end state a release reaches, for comparing runs.
async fn end_state(cluster: &MemoryCluster) -> (String, Option<i32>, Vec<(String, i32)>) {
    let status = status(cluster).await;
    let mut sets: Vec<(String, i32)> = cluster
        .replica_sets("shop", "web")
        .into_iter()
        .map(|rs| (rs.name, rs.spec_replicas))
        .collect();
    sets.sort();
    (status.stable_rs, status.current_step_index, sets)
}

#[tokio::test]
async fn a_runner_killed_after_any_write_is_resumed_by_the_next_one() {
    // The uninterrupted run, for reference.
    let reference = cluster_with_services(&["web-stable", "web-canary"]);
    deployed_then_updated(&reference, CANARY).await;
    let before = reference.api_writes();
    drive(&reference, &no_metrics(), &mut Silent).await;
    let expected = end_state(&reference).await;
    let update_writes = i64::try_from(reference.api_writes() - before).unwrap();

    // Kill the runner after each of its writes in turn; a fresh runner takes over each time.
    for kill_after in 1..update_writes {
        let cluster = cluster_with_services(&["web-stable", "web-canary"]);
        deployed_then_updated(&cluster, CANARY).await;
        cluster.set_hooks(killed_after(kill_after));
        let first = Driver::new(&cluster, &no_metrics(), &mut Silent)
            .run("shop", "web", &RunOptions::default())
            .await;
        assert!(
            first.is_err(),
            "the first runner is killed after {kill_after} writes"
        );
        cluster.set_hooks(Hooks::default());
        let mut history = History::default();
        let outcome = drive(&cluster, &no_metrics(), &mut history).await;
        assert!(
            matches!(outcome, Outcome::Promoted { .. }),
            "kill after {kill_after}: {outcome:?}"
        );
        assert_eq!(
            end_state(&cluster).await,
            expected,
            "kill after {kill_after}"
        );
        // No step is repeated: indexes never go backwards after the resume.
        let indexes: Vec<i32> = history
            .statuses
            .iter()
            .filter_map(|s| s.current_step_index)
            .collect();
        assert!(
            indexes.windows(2).all(|w| w[0] <= w[1]),
            "kill after {kill_after}: {indexes:?}"
        );
    }
    assert!(
        update_writes > 20,
        "the reference run makes {update_writes} writes"
    );
}

const WITH_EXPERIMENT: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1", ports: [{name: http, containerPort: 8080}]}]
  strategy:
    canary:
      steps:
        - experiment:
            duration: 1m
            templates:
              - {name: baseline, specRef: stable, service: {}}
              - {name: canary, specRef: canary}
            analyses:
              - {name: compare, templateName: check}
        - setWeight: 50
"#;

#[tokio::test]
async fn an_experiment_step_runs_both_versions_side_by_side_then_continues() {
    let cluster = cluster_with_services(&[]);
    cluster.add_analysis_template(check_template());
    deployed_then_updated(&cluster, WITH_EXPERIMENT).await;
    let metrics = Fixed(BTreeMap::from([(
        "check".to_string(),
        AnalysisPhase::Successful,
    )]));
    let mut history = History::default();
    let outcome = drive(&cluster, &metrics, &mut history).await;
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");

    let experiment = cluster
        .experiments()
        .pop()
        .expect("an experiment was created");
    let name = experiment.metadata.name.clone().unwrap();
    let status = experiment.status.unwrap();
    assert_eq!(status.phase, Some(AnalysisPhase::Successful));
    let templates: Vec<(&str, &str)> = status
        .template_statuses
        .iter()
        .map(|t| (t.name.as_str(), t.status.as_str()))
        .collect();
    assert_eq!(
        templates,
        [("baseline", "Successful"), ("canary", "Successful")]
    );
    assert_eq!(status.analysis_runs[0].phase, AnalysisPhase::Successful);
    // The experiment ran for its duration, measured from when both templates were available.
    let available = status.available_at.unwrap().0;
    let run = cluster
        .analysis_runs()
        .into_iter()
        .find(|r| r.metadata.name.as_deref() == Some(&format!("{name}-compare")))
        .expect("the experiment's AnalysisRun");
    assert_eq!(run.status.unwrap().phase, AnalysisPhase::Successful);
    // Its ReplicaSets ran web:1 and web:2, and are gone after the scale-down delay.
    let sets = cluster.experiment_replica_sets("shop", &name);
    let mut images: Vec<String> = sets
        .iter()
        .map(|rs| {
            rs.template.spec.as_ref().unwrap().containers[0]
                .image
                .clone()
                .unwrap()
        })
        .collect();
    images.sort();
    assert_eq!(images, ["web:1", "web:2"]);
    assert!(sets.iter().all(|rs| rs.spec_replicas == 0), "{sets:?}");
    // The baseline's Service was created, and removed with its pods.
    let service = format!("{name}-baseline");
    for expected in [
        format!("create Service {service}"),
        format!("delete Service {service}"),
    ] {
        assert!(history.actions.contains(&expected), "{:?}", history.actions);
    }
    assert!(cluster.service("shop", &service).is_none());
    let events = cluster.events();
    let succeeded_at = events
        .iter()
        .find(|(_, _, e)| e.reason == "ExperimentSuccessful")
        .map(|(at, ..)| *at)
        .unwrap();
    assert!(succeeded_at >= available + SignedDuration::from_mins(1));
}

#[tokio::test]
async fn a_failed_experiment_analysis_aborts_the_rollout() {
    let cluster = cluster_with_services(&[]);
    cluster.add_analysis_template(check_template());
    deployed_then_updated(&cluster, WITH_EXPERIMENT).await;
    let metrics = Fixed(BTreeMap::from([(
        "check".to_string(),
        AnalysisPhase::Failed,
    )]));
    let outcome = drive(&cluster, &metrics, &mut Silent).await;
    let Outcome::Aborted { message } = &outcome else {
        panic!("expected an abort, got {outcome:?}");
    };
    assert!(message.contains("Experiment"), "{message}");
    let experiment = cluster.experiments().pop().unwrap();
    assert_eq!(
        experiment.status.unwrap().phase,
        Some(AnalysisPhase::Failed)
    );
    let name = experiment.metadata.name.unwrap();
    assert!(
        cluster
            .experiment_replica_sets("shop", &name)
            .iter()
            .all(|rs| rs.spec_replicas == 0)
    );
}

// Traffic routing: the routers' weights through whole releases, with the invariants of
// argo-semantics §3.0 checked every time the driver waits.

const ROUTED: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1", ports: [{name: http, containerPort: 8080}]}]
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      scaleDownDelaySeconds: 20
      trafficRouting:
        managedRoutes: [{name: beta}]
        istio:
          virtualService: {name: web, routes: [primary]}
      steps:
        - setWeight: 25
        - pause: {duration: 30s}
        - setHeaderRoute:
            name: beta
            match: [{headerName: X-Beta, headerValue: {exact: "1"}}]
        - setWeight: 50
        - pause: {duration: 30s}
        - analysis:
            templates: [{templateName: check}]
        - setWeight: 75
        - pause: {duration: 30s}
"#;

/// Checks, every time the driver waits, what a router must never do: send traffic to canary
/// pods that are not there (the canary carries its weight with available pods), or leave the
/// stable more traffic than its available pods can take.
fn check_traffic_follows_available_pods(cluster: &MemoryCluster) {
    let Some(weights) = cluster.traffic("shop", "web").weights else {
        return;
    };
    let sets = cluster.replica_sets("shop", "web");
    let available = |hash: &str| {
        sets.iter()
            .find(|rs| rs.pod_hash() == hash)
            .map_or(0, |rs| rs.available_replicas)
    };
    let replicas = 4;
    let needed = |weight: i32| (weight * replicas + 99) / 100;
    let canary = &weights.canary;
    assert!(
        canary.weight == 0 || available(&canary.pod_template_hash) >= needed(canary.weight).max(1),
        "the canary ({}) has weight {} but only {} available pods",
        canary.pod_template_hash,
        canary.weight,
        available(&canary.pod_template_hash)
    );
    let stable = &weights.stable;
    assert!(
        available(&stable.pod_template_hash) >= stable.weight * replicas / 100,
        "the stable ({}) has weight {} but only {} available pods",
        stable.pod_template_hash,
        stable.weight,
        available(&stable.pod_template_hash)
    );
}

fn with_traffic_checks(cluster: &MemoryCluster) {
    cluster.set_hooks(Hooks {
        before_wait: Some(Arc::new(|cluster: &MemoryCluster| {
            check_traffic_follows_available_pods(cluster);
            check_services_select_available_pods(cluster);
        })),
        ..Hooks::default()
    });
}

fn canary_weights(cluster: &MemoryCluster, skip: usize) -> Vec<(i32, i32)> {
    cluster.traffic("shop", "web").history[skip..]
        .iter()
        .map(|w| (w.canary.weight, w.stable.weight))
        .collect()
}

#[tokio::test]
async fn a_routed_canary_moves_traffic_with_its_pods_and_hands_it_to_the_new_stable() {
    let cluster = cluster_with_services(&["web-stable", "web-canary"]);
    cluster.add_analysis_template(check_template());
    deployed_then_updated(&cluster, ROUTED).await;
    let before = cluster.traffic("shop", "web").history.len();
    with_traffic_checks(&cluster);
    let metrics = Fixed(BTreeMap::from([(
        "check".to_string(),
        AnalysisPhase::Successful,
    )]));
    let outcome = drive(&cluster, &metrics, &mut Silent).await;
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");

    // 0 while the first canary pod starts, then each step's weight, everything once the
    // steps are done, and back to the stable Service (now the new pods) after promotion.
    assert_eq!(
        canary_weights(&cluster, before),
        [(0, 100), (25, 75), (50, 50), (75, 25), (100, 0), (0, 100)]
    );
    let status = status(&cluster).await;
    assert_eq!(status.stable_rs, status.current_pod_hash);
    let traffic = cluster.traffic("shop", "web");
    let last = traffic.weights.unwrap();
    assert_eq!(last.stable.pod_template_hash, status.current_pod_hash);
    assert!(
        traffic.header_routes.is_empty(),
        "managed routes are removed"
    );
    for service in ["web-stable", "web-canary"] {
        assert_eq!(
            cluster.service("shop", service).unwrap().selected_hash(),
            status.current_pod_hash,
            "{service} selects the new pods"
        );
    }
}

#[tokio::test]
async fn the_stable_keeps_all_its_pods_until_the_promotion() {
    let cluster = cluster_with_services(&["web-stable", "web-canary"]);
    cluster.add_analysis_template(check_template());
    deployed_then_updated(&cluster, ROUTED).await;
    let old_hash = status(&cluster).await.stable_rs;
    let stable_sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&stable_sizes);
    cluster.set_hooks(Hooks {
        before_wait: Some(Arc::new(move |cluster: &MemoryCluster| {
            let stable = cluster
                .replica_sets("shop", "web")
                .into_iter()
                .find(|rs| rs.pod_hash() == old_hash)
                .unwrap();
            let promoted = cluster
                .traffic("shop", "web")
                .weights
                .is_some_and(|w| w.stable.pod_template_hash != old_hash);
            seen.lock().unwrap().push((promoted, stable.spec_replicas));
        })),
        ..Hooks::default()
    });
    let metrics = Fixed(BTreeMap::from([(
        "check".to_string(),
        AnalysisPhase::Successful,
    )]));
    drive(&cluster, &metrics, &mut Silent).await;
    // Healthy with traffic routing does not wait for the old stable; it goes after its
    // scale-down delay (20 s).
    let mut silent = Silent;
    let metrics = no_metrics();
    let mut driver = Driver::new(&cluster, &metrics, &mut silent);
    for _ in 0..5 {
        driver.reconcile("shop", "web").await.unwrap();
        cluster
            .wait(Some(cluster.now() + SignedDuration::from_secs(10)), None)
            .await;
    }
    let sizes = stable_sizes.lock().unwrap();
    assert!(
        sizes
            .iter()
            .filter(|(promoted, _)| !promoted)
            .all(|(_, size)| *size == 4),
        "the stable scaled down before the promotion: {sizes:?}"
    );
    assert_eq!(sizes.last().map(|(_, size)| *size), Some(0), "{sizes:?}");
}

#[tokio::test]
async fn an_aborted_routed_canary_sends_all_traffic_back_before_scaling_down() {
    let cluster = cluster_with_services(&["web-stable", "web-canary"]);
    cluster.add_analysis_template(check_template());
    deployed_then_updated(&cluster, ROUTED).await;
    let before = cluster.traffic("shop", "web").history.len();
    with_traffic_checks(&cluster);
    let metrics = Fixed(BTreeMap::from([(
        "check".to_string(),
        AnalysisPhase::Failed,
    )]));
    let mut timed = Timed::default();
    let outcome = drive(&cluster, &metrics, &mut timed).await;
    assert!(matches!(outcome, Outcome::Aborted { .. }), "{outcome:?}");
    // The header route came with step 3; the abort takes it away with the weight.
    let traffic = cluster.traffic("shop", "web");
    assert!(traffic.header_routes.is_empty());
    assert_eq!(
        canary_weights(&cluster, before),
        [(0, 100), (25, 75), (50, 50), (0, 100)]
    );
    let status = status(&cluster).await;
    assert_eq!(
        cluster
            .service("shop", "web-canary")
            .unwrap()
            .selected_hash(),
        status.stable_rs,
        "the canary Service points back at the stable pods"
    );
    // The canary keeps its pods for abortScaleDownDelaySeconds (30 s) after the traffic left.
    let at = |wanted: &str| {
        timed
            .actions
            .iter()
            .find(|(_, action)| action.starts_with(wanted))
            .map(|(at, _)| *at)
            .unwrap_or_else(|| panic!("no `{wanted}` in {:?}", timed.actions))
    };
    let drained = at("set traffic weight: canary 0");
    let scaled_down = at(&format!(
        "scale down ReplicaSet web-{} from 2 to 0",
        status.current_pod_hash
    ));
    assert!(
        scaled_down >= drained + SignedDuration::from_secs(30),
        "the canary was scaled down {} after the traffic left",
        scaled_down - drained
    );
}

/// Records every action the driver performs, with its time.
#[derive(Default)]
struct Timed {
    actions: Vec<(jiff::Timestamp, String)>,
}

impl Reporter for Timed {
    fn report(&mut self, update: &Update<'_>) {
        if let Update::Actions { at, actions, .. } = *update {
            self.actions
                .extend(actions.iter().map(|a| (at, a.describe())));
        }
    }
}

const ROUTED_EXPERIMENT: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1", ports: [{name: http, containerPort: 8080}]}]
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      trafficRouting:
        smi: {}
      steps:
        - setWeight: 10
        - experiment:
            duration: 1m
            templates:
              - {name: baseline, specRef: stable, weight: 5}
              - {name: candidate, specRef: canary, weight: 5}
        - setWeight: 50
"#;

#[tokio::test]
async fn experiment_templates_get_their_weight_while_the_experiment_runs() {
    let cluster = cluster_with_services(&["web-stable", "web-canary"]);
    deployed_then_updated(&cluster, ROUTED_EXPERIMENT).await;
    let before = cluster.traffic("shop", "web").history.len();
    // Traffic goes to an experiment's Service only while it exists.
    cluster.set_hooks(Hooks {
        before_wait: Some(Arc::new(|cluster: &MemoryCluster| {
            let weights = cluster.traffic("shop", "web").weights.unwrap();
            for destination in &weights.additional {
                assert!(
                    cluster.service("shop", &destination.service_name).is_some(),
                    "weight {} on {}, which does not exist",
                    destination.weight,
                    destination.service_name
                );
            }
        })),
        ..Hooks::default()
    });
    let outcome = drive(&cluster, &no_metrics(), &mut Silent).await;
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");
    let history = cluster.traffic("shop", "web").history;
    // (canary, stable, [(template, weight)]) for each weight set during the release.
    type Split = (i32, i32, Vec<(String, i32)>);
    let during: Vec<Split> = history[before..]
        .iter()
        .map(|w| {
            let additional = w
                .additional
                .iter()
                .map(|d| {
                    let template = d.service_name.rsplit('-').next().unwrap_or("").to_string();
                    (template, d.weight)
                })
                .collect();
            (w.canary.weight, w.stable.weight, additional)
        })
        .collect();
    let with_experiment = (
        10,
        80,
        vec![("baseline".to_string(), 5), ("candidate".to_string(), 5)],
    );
    assert!(
        during.contains(&with_experiment),
        "the experiment's templates took their share off the stable: {during:?}"
    );
    let after = during
        .iter()
        .position(|w| *w == with_experiment)
        .map(|i| &during[i + 1])
        .unwrap();
    assert_eq!(*after, (10, 90, Vec::new()), "{during:?}");
    // The traffic went to the Services the experiment made for its templates.
    let experiment = cluster.experiments().pop().unwrap();
    let name = experiment.metadata.name.unwrap();
    let mut weighted: Vec<String> = history
        .iter()
        .flat_map(|w| w.additional.iter().map(|d| d.service_name.clone()))
        .collect();
    weighted.sort();
    weighted.dedup();
    assert_eq!(
        weighted,
        [format!("{name}-baseline"), format!("{name}-candidate")]
    );
}

/// The driver with the real providers: the metric result keeps Argo's
/// `ResolvedPrometheusQuery`, each measurement its explanation, and the secret argument (in a
/// header and in the query) appears nowhere in the AnalysisRun's status.
#[tokio::test]
async fn real_providers_keep_the_resolved_query_and_never_a_secret() {
    use crate::contract_server::{Reply, Server};
    use rollout_runner::metrics::{ProviderSettings, Providers};

    let server = Server::start(|r| {
        if r.header("authorization") == Some("Bearer tok-s3cr3t") {
            Reply::json(
                200,
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}"#,
            )
        } else {
            Reply::json(401, "{}")
        }
    })
    .await;
    let cluster = cluster_with_services(&[]);
    cluster.add_secret(
        "shop",
        "creds",
        BTreeMap::from([("token".to_string(), "tok-s3cr3t".to_string())]),
    );
    let template: AnalysisTemplate = serde_json::from_value(serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "check", "namespace": "shop"},
        "spec": {
            "args": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
            "metrics": [{
                "name": "check",
                "successCondition": "result[0] == 1",
                "provider": {"prometheus": {
                    "address": server.url(),
                    "query": "up{job=\"{{args.token}}\"}",
                    "headers": [{"key": "Authorization", "value": "Bearer {{args.token}}"}],
                }},
            }],
        },
    }))
    .unwrap();
    cluster.add_analysis_template(template);
    deployed_then_updated(&cluster, WITH_ANALYSIS).await;
    let providers = Providers::new(ProviderSettings::default());
    let outcome = Driver::new(&cluster, &providers, &mut Silent)
        .run(
            "shop",
            "web",
            &RunOptions {
                timeout: Some(SignedDuration::from_hours(2)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Promoted { .. }), "{outcome:?}");
    let run = cluster.analysis_runs().pop().unwrap();
    let status = run.status.unwrap();
    let result = &status.metric_results[0];
    assert_eq!(result.phase, AnalysisPhase::Successful);
    assert_eq!(
        result.metadata["ResolvedPrometheusQuery"],
        "up{job=\"*****\"}"
    );
    let measurement = &result.measurements[0];
    assert_eq!(measurement.value, "[1]");
    assert!(
        measurement.metadata["explanation"].contains("satisfied successCondition"),
        "{measurement:?}"
    );
    let json = serde_json::to_string(&status).unwrap();
    assert!(!json.contains("tok-s3cr3t"), "{json}");
    assert!(
        server.requests()[0]
            .form()
            .contains(&("query".to_string(), "up{job=\"tok-s3cr3t\"}".to_string()))
    );
}
