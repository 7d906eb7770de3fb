//! `plan`: the plan against the real engine (the driver on the in-memory cluster, pods ready
//! at once, every metric passing), snapshots of every example and starter template in each
//! output format, and the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use assert_cmd::Command;
use jiff::{SignedDuration, Timestamp};
use rollout_runner::analysis::run::TaskKind;
use rollout_runner::ci::ENV_VARS;
use rollout_runner::cluster::Cluster;
use rollout_runner::cluster::memory::{Hooks, MemoryCluster, PodBehaviour};
use rollout_runner::crd::{
    AnalysisPhase, AnalysisTemplate, Measurement, Metric, Rollout, RolloutStatus,
};
use rollout_runner::driver::{Driver, RunOptions};
use rollout_runner::metrics::{MeasureContext, Metrics};
use rollout_runner::observed::{Observed, ServiceState};
use rollout_runner::planning::{self, ReleasePlan, Templates};
use rollout_runner::report::{Outcome, Silent};

// ---------------------------------------------------------------------------------------------
// The plan against the engine.

fn start() -> Timestamp {
    "2030-01-01T00:00:00Z".parse().unwrap()
}

/// Every measurement passes.
struct Passing;

impl Metrics for Passing {
    async fn measure(&self, context: MeasureContext<'_>, _: &Metric, _: &TaskKind) -> Measurement {
        let at = rollout_runner::engine::conditions::meta_time(context.now);
        Measurement {
            phase: AnalysisPhase::Successful,
            value: "1".into(),
            started_at: Some(at.clone()),
            finished_at: Some(at),
            ..Default::default()
        }
    }
}

/// What the driver saw at the start of a pass.
#[derive(Debug, Clone)]
struct Seen {
    at: Timestamp,
    status: RolloutStatus,
    /// (pod hash, spec replicas) of every ReplicaSet.
    sets: Vec<(String, i32)>,
    /// The pod hash each Service selects.
    services: BTreeMap<String, String>,
}

/// Hooks that remember every observation the engine made.
fn recording(seen: Arc<Mutex<Vec<Seen>>>) -> Hooks {
    Hooks {
        after_observe: Some(Arc::new(
            move |at, rollout: &Rollout, observed: &Observed| {
                seen.lock().unwrap().push(Seen {
                    at,
                    status: rollout.status_or_default(),
                    sets: observed
                        .replica_sets
                        .iter()
                        .map(|rs| (rs.pod_hash().to_string(), rs.spec_replicas))
                        .collect(),
                    services: observed
                        .services
                        .iter()
                        .map(|(name, s)| (name.clone(), s.selected_hash().to_string()))
                        .collect(),
                });
            },
        )),
        ..Hooks::default()
    }
}

/// A release as the engine ran it.
struct Release {
    plan: ReleasePlan,
    rollout: Rollout,
    /// The stable version's pod hash.
    old: String,
    released_at: Timestamp,
    finished_at: Timestamp,
    seen: Vec<Seen>,
}

impl Release {
    fn new_pods(&self, seen: &Seen) -> i32 {
        seen.sets
            .iter()
            .filter(|(hash, _)| *hash != self.old)
            .map(|(_, n)| n)
            .sum()
    }

    fn old_pods(&self, seen: &Seen) -> i32 {
        seen.sets
            .iter()
            .filter(|(hash, _)| *hash == self.old)
            .map(|(_, n)| n)
            .sum()
    }

    fn elapsed(&self, seen: &Seen) -> i64 {
        seen.at.duration_since(self.released_at).as_secs()
    }
}

fn parse_rollout(yaml: &str) -> Rollout {
    serde_saphyr::from_str(yaml).expect("test rollout parses")
}

fn parse_template(yaml: &str) -> AnalysisTemplate {
    serde_saphyr::from_str(yaml).expect("test template parses")
}

fn with_image(rollout: &Rollout, image: &str) -> Rollout {
    let mut rollout = rollout.clone();
    rollout
        .spec
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some(image.into());
    rollout
}

/// Deploy version 1 (an initial deploy), release version 2 with pods ready at once and every
/// metric passing, and plan version 2.
async fn release(yaml: &str, templates: &[&str]) -> Release {
    let rollout = parse_rollout(yaml);
    let namespace = rollout.namespace_or_default().to_string();
    let cluster = MemoryCluster::new(
        start(),
        PodBehaviour {
            ready_delay: SignedDuration::ZERO,
            image_faults: BTreeMap::new(),
        },
    );
    let selector = rollout
        .spec
        .selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    let mut services = Vec::new();
    if let Some(canary) = rollout.spec.canary() {
        services.extend([canary.canary_service.clone(), canary.stable_service.clone()]);
    }
    if let Some(bg) = rollout.spec.blue_green() {
        services.extend([bg.active_service.clone(), bg.preview_service.clone()]);
    }
    for name in services.into_iter().filter(|s| !s.is_empty()) {
        cluster.add_service(
            &namespace,
            ServiceState {
                name,
                selector: selector.clone(),
                annotations: BTreeMap::new(),
            },
        );
    }
    let mut plan_templates = Templates::default();
    for yaml in templates {
        let template = parse_template(yaml);
        let name = template.metadata.name.clone().unwrap();
        cluster.add_analysis_template(template.clone());
        plan_templates.templates.insert(name, template);
    }
    let options = RunOptions {
        timeout: Some(SignedDuration::from_hours(24)),
        ..Default::default()
    };

    cluster.apply_rollout(&with_image(&rollout, "web:1"));
    let outcome = Driver::new(&cluster, &Passing, &mut Silent)
        .run(&namespace, rollout.name(), &options)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Promoted { .. }),
        "initial deploy: {outcome:?}"
    );
    let old = cluster
        .get_rollout(&namespace, rollout.name())
        .await
        .unwrap()
        .unwrap()
        .status
        .unwrap()
        .stable_rs;

    let new = with_image(&rollout, "web:2");
    cluster.apply_rollout(&new);
    let released_at = cluster.now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    cluster.set_hooks(recording(Arc::clone(&seen)));
    let outcome = Driver::new(&cluster, &Passing, &mut Silent)
        .run(&namespace, rollout.name(), &options)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Promoted { .. }),
        "release: {outcome:?}"
    );
    let finished_at = cluster.now();
    let plan = planning::plan_rollout(&new, &plan_templates).unwrap();
    Release {
        plan,
        rollout: new,
        old,
        released_at,
        finished_at,
        seen: std::mem::take(&mut *seen.lock().unwrap()),
    }
}

/// Times may differ by the engine's "just after the boundary" margins.
fn assert_close(actual: i64, expected: i64, what: &str) {
    assert!(
        (actual - expected).abs() <= 2,
        "{what}: the engine took {actual}s, the plan says {expected}s"
    );
}

/// Check every canary step against what the engine did. A step that takes time (a pause, an
/// analysis) is compared while the rollout rests in it; an instant step right after it
/// completed. With dynamicStableScale the stable follows the traffic one reconcile late, so
/// its count is only compared where the rollout rests.
fn check_canary(release: &Release) {
    let plan = &release.plan;
    let steps = release.rollout.spec.steps();
    let routed = release.rollout.spec.traffic_routing().is_some();
    let dynamic = release
        .rollout
        .spec
        .canary()
        .is_some_and(|c| c.dynamic_stable_scale);
    let index_of = |seen: &Seen| seen.status.current_step_index.unwrap_or(0) as usize;
    let in_release = |seen: &&Seen| seen.status.current_pod_hash != release.old;
    for (i, step) in plan.steps.iter().enumerate() {
        let rests = steps[i].pause.is_some() || steps[i].analysis.is_some();
        let seen = if rests {
            release
                .seen
                .iter()
                .filter(in_release)
                .rfind(|s| index_of(s) == i)
        } else {
            release
                .seen
                .iter()
                .filter(in_release)
                .find(|s| index_of(s) > i)
        };
        let seen = seen.unwrap_or_else(|| panic!("step {}: never observed", i + 1));
        let what = format!("step {} ({})", i + 1, step.description);
        assert_eq!(
            release.new_pods(seen),
            step.canary_replicas,
            "{what}: canary pods"
        );
        if !dynamic || rests {
            assert_eq!(
                release.old_pods(seen),
                step.stable_replicas,
                "{what}: stable pods"
            );
        }
        let weight = if routed {
            seen.status
                .canary
                .weights
                .as_ref()
                .map_or(0, |w| w.canary.weight)
        } else {
            let (canary, stable) = (release.new_pods(seen), release.old_pods(seen));
            if canary + stable == 0 {
                0
            } else {
                canary * 100 / (canary + stable)
            }
        };
        assert_eq!(weight, step.traffic_weight, "{what}: traffic weight");
        // When the step started: passing metrics succeed as early as they can, so the engine
        // takes the plan's shortest path.
        let started = release
            .seen
            .iter()
            .filter(in_release)
            .find(|s| index_of(s) >= i)
            .unwrap();
        assert_close(
            release.elapsed(started),
            step.start.min_seconds,
            &format!("{what}: start"),
        );
    }
    check_end(release);
}

/// The end: the new version has every pod, the old none, at the time the plan says.
fn check_end(release: &Release) {
    let plan = &release.plan;
    let last = release.seen.last().unwrap();
    assert_eq!(
        release.new_pods(last),
        plan.promotion.canary_replicas,
        "promotion: new pods"
    );
    assert_eq!(
        release.old_pods(last),
        plan.promotion.stable_replicas,
        "promotion: old pods"
    );
    assert_close(
        release
            .finished_at
            .duration_since(release.released_at)
            .as_secs(),
        plan.duration.min_seconds,
        "the whole release",
    );
}

const BASIC: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  strategy:
    canary:
      maxSurge: "25%"
      maxUnavailable: 0
      steps:
        - setWeight: 20
        - pause: {duration: 1m}
        - setWeight: 40
        - pause: {duration: 1m}
        - setWeight: 60
        - pause: {duration: 1m}
        - setWeight: 80
        - pause: {duration: 1m}
"#;

#[tokio::test]
async fn a_basic_canary_matches_the_engine() {
    let release = release(BASIC, &[]).await;
    check_canary(&release);
}

#[tokio::test]
async fn a_basic_canary_with_rounding_weights_and_min_ready_seconds_matches_the_engine() {
    // maxSurge 0: the stable makes room one pod at a time, and each new pod takes
    // minReadySeconds to count.
    let yaml = BASIC
        .replace("replicas: 5", "replicas: 10\n  minReadySeconds: 10")
        .replace("maxSurge: \"25%\"", "maxSurge: 0")
        .replace("maxUnavailable: 0", "maxUnavailable: 1")
        .replace("setWeight: 20", "setWeight: 33")
        .replace("setWeight: 60", "setWeight: 55");
    let release = release(&yaml, &[]).await;
    assert!(
        release.plan.duration.min_seconds > 4 * 60,
        "minReadySeconds counts"
    );
    check_canary(&release);
}

#[tokio::test]
async fn a_basic_canary_of_one_pod_matches_the_engine() {
    let yaml = BASIC
        .replace("replicas: 5", "replicas: 1")
        .replace("maxSurge: \"25%\"", "maxSurge: 1");
    check_canary(&release(&yaml, &[]).await);
}

#[tokio::test]
async fn a_basic_canary_of_three_pods_with_default_surge_matches_the_engine() {
    let yaml = BASIC
        .replace("replicas: 5", "replicas: 3")
        .replace("      maxSurge: \"25%\"\n      maxUnavailable: 0\n", "");
    check_canary(&release(&yaml, &[]).await);
}

#[tokio::test]
async fn a_basic_canary_of_zero_pods_matches_the_engine() {
    let yaml = BASIC.replace("replicas: 5", "replicas: 0");
    check_canary(&release(&yaml, &[]).await);
}

const ROUTED: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 10
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      minPodsPerReplicaSet: 2
      trafficRouting:
        nginx: {stableIngress: web}
      analysis:
        templates: [{templateName: rate}]
        startingStep: 2
      steps:
        - setCanaryScale: {replicas: 3}
        - pause: {duration: 10s}
        - setWeight: 5
        - pause: {duration: 10s}
        - setCanaryScale: {weight: 50}
        - pause: {duration: 10s}
        - setCanaryScale: {matchTrafficWeight: true}
        - setWeight: 25
        - analysis:
            templates: [{templateName: check}]
        - setWeight: 67
        - pause: {duration: 10s}
"#;

const CHECK: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: check, namespace: shop}
spec:
  metrics:
    - name: errors
      interval: 30s
      count: 3
      successCondition: result < 1
      provider:
        prometheus: {address: "http://prometheus", query: "errors"}
"#;

const RATE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: rate, namespace: shop}
spec:
  metrics:
    - name: rate
      interval: 1m
      successCondition: result > 0.9
      provider:
        prometheus: {address: "http://prometheus", query: "rate"}
"#;

#[tokio::test]
async fn a_routed_canary_with_set_canary_scale_matches_the_engine() {
    let release = release(ROUTED, &[CHECK, RATE]).await;
    check_canary(&release);
    let steps = &release.plan.steps;
    // The explicit scale keeps the traffic where it was; minPodsPerReplicaSet lifts 5% of 10.
    assert_eq!((steps[0].canary_replicas, steps[0].traffic_weight), (3, 0));
    assert_eq!((steps[2].canary_replicas, steps[2].traffic_weight), (3, 5));
    assert_eq!((steps[4].canary_replicas, steps[4].traffic_weight), (5, 5));
    assert_eq!((steps[6].canary_replicas, steps[6].traffic_weight), (2, 5));
    assert_eq!(steps[8].duration.max_seconds, Some(60));
}

#[tokio::test]
async fn analysis_that_succeeds_early_matches_the_engine() {
    // Ten measurements at most, done after three in a row; the first after 20s.
    let early = CHECK.replace(
        "      count: 3\n",
        "      count: 10\n      consecutiveSuccessLimit: 3\n      initialDelay: 20s\n",
    );
    let release = release(ROUTED, &[&early, RATE]).await;
    let analysis = &release.plan.steps[8];
    assert_eq!(analysis.duration.min_seconds, 20 + 2 * 30);
    assert_eq!(analysis.duration.max_seconds, Some(20 + 9 * 30));
    check_canary(&release);
}

#[tokio::test]
async fn a_routed_canary_with_dynamic_stable_scale_matches_the_engine() {
    let yaml = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 10
  minReadySeconds: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      dynamicStableScale: true
      trafficRouting:
        istio:
          virtualService: {name: web, routes: [primary]}
      steps:
        - setWeight: 20
        - pause: {duration: 10s}
        - setWeight: 45
        - setWeight: 55
        - pause: {duration: 10s}
        - setWeight: 95
        - pause: {duration: 10s}
"#;
    let release = release(yaml, &[]).await;
    check_canary(&release);
    let stable: Vec<i32> = release
        .plan
        .steps
        .iter()
        .map(|s| s.stable_replicas)
        .collect();
    assert_eq!(stable, [8, 8, 6, 5, 5, 1, 1]);
}

#[tokio::test]
async fn a_small_routed_canary_with_a_scale_down_delay_matches_the_engine() {
    let yaml = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  minReadySeconds: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      scaleDownDelaySeconds: 15
      trafficRouting:
        smi: {}
      steps:
        - setWeight: 33
        - pause: {duration: 20s}
        - setWeight: 67
        - pause: {duration: 20s}
"#;
    let release = release(yaml, &[]).await;
    check_canary(&release);
    // 5s for each of the two rounds of new pods (1, then 3), 40s of pauses, 15s of
    // scale-down delay.
    assert_eq!(release.plan.duration.min_seconds, 5 + 5 + 40 + 15);
}

#[tokio::test]
async fn a_routed_canary_of_zero_pods_matches_the_engine() {
    let yaml = ROUTED
        .replace("replicas: 10", "replicas: 0")
        .replace("      minPodsPerReplicaSet: 2\n", "");
    let release = release(&yaml, &[CHECK, RATE]).await;
    check_canary(&release);
    // Only the explicit `setCanaryScale: {replicas: 3}` makes canary pods, and only those
    // get traffic.
    let weights: Vec<(i32, i32)> = release
        .plan
        .steps
        .iter()
        .map(|s| (s.canary_replicas, s.traffic_weight))
        .collect();
    assert_eq!(
        weights,
        [
            (3, 0),
            (3, 0),
            (3, 5),
            (3, 5),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0)
        ]
    );
}

const BLUE_GREEN: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  minReadySeconds: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1"}]
  strategy:
    blueGreen:
      activeService: web-active
      previewService: web-preview
      previewReplicaCount: 1
      autoPromotionSeconds: 20
      scaleDownDelaySeconds: 10
      prePromotionAnalysis:
        templates: [{templateName: check}]
      postPromotionAnalysis:
        templates: [{templateName: check}]
"#;

/// Blue-green: the preview size before the switch, the switch time, and the end.
fn check_blue_green(release: &Release) {
    let plan = &release.plan;
    let phase = |kind: &str| plan.steps.iter().find(|s| s.kind == kind);
    let switch = phase("switch").unwrap();
    let switched = |seen: &Seen| {
        seen.services
            .get("web-active")
            .is_some_and(|hash| !hash.is_empty() && *hash != release.old)
    };
    let before: Vec<&Seen> = release.seen.iter().take_while(|s| !switched(s)).collect();
    let preview = phase("preview").unwrap();
    // The preview size holds until the pause and the analysis are done.
    let grown = phase("scaleUpPreview").unwrap_or(switch).start.min_seconds;
    let preview_seen = before
        .iter()
        .filter(|s| grown == 0 || release.elapsed(s) < grown)
        .map(|s| release.new_pods(s))
        .max()
        .unwrap_or(0);
    assert_eq!(preview_seen, preview.canary_replicas, "preview pods");
    assert!(
        before
            .iter()
            .all(|s| release.old_pods(s) == preview.stable_replicas)
    );
    let first = release
        .seen
        .iter()
        .find(|s| switched(s))
        .expect("the active service switched");
    assert_eq!(
        release.new_pods(first),
        switch.canary_replicas,
        "pods at the switch"
    );
    assert_close(
        release.elapsed(first),
        switch.start.min_seconds,
        "the switch",
    );
    check_end(release);
}

#[tokio::test]
async fn a_blue_green_release_matches_the_engine() {
    let release = release(BLUE_GREEN, &[CHECK]).await;
    let kinds: Vec<&str> = release.plan.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "preview",
            "prePromotionAnalysis",
            "pause",
            "scaleUpPreview",
            "switch",
            "postPromotionAnalysis"
        ]
    );
    check_blue_green(&release);
}

#[tokio::test]
async fn a_plain_blue_green_release_matches_the_engine() {
    let yaml = r#"
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
"#;
    let release = release(yaml, &[]).await;
    check_blue_green(&release);
    assert_eq!(
        release.plan.duration.min_seconds, 30,
        "the default scale-down delay"
    );
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// The workspace root: the examples and starter templates live there.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

/// The binary, run from the workspace, with every CI variable removed from its environment.
fn runner() -> Command {
    let mut command = Command::cargo_bin("rollout-runner").unwrap();
    command.current_dir(workspace());
    for var in ENV_VARS {
        command.env_remove(var.name);
    }
    command
}

fn plan_stdout(args: &[&str]) -> String {
    let output = runner().arg("plan").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

const FORMATS: [&str; 3] = ["table", "json", "markdown"];

#[test]
fn examples_are_planned_in_every_format() {
    for example in [
        "canary-basic",
        "canary-analysis-passes",
        "canary-analysis-fails",
        "blue-green-pre-promotion",
        "canary-nginx",
        "canary-istio",
        "canary-smi",
        "canary-gateway-api",
    ] {
        for format in FORMATS {
            let output = plan_stdout(&[&format!("examples/{example}"), "--output", format]);
            insta::assert_snapshot!(format!("example_{example}_{format}"), output);
        }
    }
}

#[test]
fn starter_templates_are_planned_in_every_format() {
    for starter in [
        "canary-basic",
        "canary-nginx",
        "canary-istio",
        "canary-gateway-api",
        "blue-green",
    ] {
        let dir = format!("templates/{starter}");
        let values = format!("{dir}/values.yaml");
        for format in FORMATS {
            let output = plan_stdout(&[
                &dir,
                "templates/analysis",
                "--values",
                &values,
                "--set",
                "image.tag=1.0.0",
                "--output",
                format,
            ]);
            insta::assert_snapshot!(format!("starter_{starter}_{format}"), output);
        }
    }
}

#[test]
fn every_format_carries_the_same_hash() {
    let json: serde_json::Value =
        serde_json::from_str(&plan_stdout(&["examples/canary-basic", "--output", "json"])).unwrap();
    let hash = json["hash"].as_str().unwrap().to_string();
    assert!(hash.starts_with("sha256:"));
    assert!(plan_stdout(&["examples/canary-basic"]).contains(&format!("Plan hash: {hash}")));
    let markdown = plan_stdout(&["examples/canary-basic", "--output", "markdown"]);
    assert!(markdown.starts_with(&format!("<!-- rollout-runner plan {hash} -->")));
    // The JSON has what scripts rely on.
    for step in json["steps"].as_array().unwrap() {
        for key in [
            "index",
            "kind",
            "canaryReplicas",
            "stableReplicas",
            "trafficWeight",
        ] {
            assert!(step.get(key).is_some(), "{key} missing from {step}");
        }
        assert!(step["duration"]["minSeconds"].is_i64());
        assert!(step["duration"].get("maxSeconds").is_some());
    }
}

const TWO_ROLLOUTS: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: one}
spec:
  replicas: 2
  selector: {matchLabels: {app: one}}
  template:
    metadata: {labels: {app: one}}
    spec:
      containers: [{name: one, image: "one:1"}]
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {}}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: two}
spec:
  replicas: 3
  selector: {matchLabels: {app: two}}
  template:
    metadata: {labels: {app: two}}
    spec:
      containers: [{name: two, image: "two:1"}]
  strategy:
    blueGreen: {activeService: two}
"#;

#[test]
fn several_rollouts_are_planned_each_or_one_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rollouts.yaml");
    std::fs::write(&file, TWO_ROLLOUTS).unwrap();
    let file = file.to_str().unwrap();

    let all: serde_json::Value =
        serde_json::from_str(&plan_stdout(&[file, "--output", "json"])).unwrap();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["one", "two"]);

    let one: serde_json::Value = serde_json::from_str(&plan_stdout(&[
        file,
        "--rollout",
        "two",
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(one["strategy"], "blueGreen");

    let table = plan_stdout(&[file]);
    assert_eq!(table.matches("Plan hash: sha256:").count(), 2);
    let markdown = plan_stdout(&[file, "--output", "markdown"]);
    assert!(markdown.contains("All plans: `sha256:"));

    runner()
        .args(["plan", file, "--rollout", "three"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "no Rollout named `three` among the inputs",
        ));
}

#[test]
fn invalid_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: [\n",
    )
    .unwrap();
    runner()
        .args(["plan", broken.to_str().unwrap()])
        .assert()
        .code(2)
        .stdout("");

    // Lint errors refuse to plan.
    let invalid = dir.path().join("invalid.yaml");
    std::fs::write(
        &invalid,
        TWO_ROLLOUTS.replace("[{setWeight: 50}, {pause: {}}]", "[{setWeight: 150}]"),
    )
    .unwrap();
    runner()
        .args(["plan", invalid.to_str().unwrap()])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicates::str::contains(
            "SetWeight needs to be between 0 and 100",
        ));

    // Nothing to plan.
    let empty = dir.path().join("service.yaml");
    std::fs::write(
        &empty,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {}\n",
    )
    .unwrap();
    runner()
        .args(["plan", empty.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no Rollout among the inputs"));
}
