//! End to end: a failing release driven by `apply --wait` on the test control plane is
//! recorded (`--record`), and the record replays through `simulate --replay` to the same
//! outcome at the same step; a tightened template replays to an earlier abort.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::contract_server::{Reply, Server};
use crate::support::cluster::{self, TestNamespace};
use crate::support::runner::{Manifests, SERVICES, apply_wait, command, finish};

fn rollout(image: &str) -> String {
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
      containers: [{{name: web, image: "{image}", ports: [{{name: http, containerPort: 8080}}]}}]
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      maxSurge: 1
      maxUnavailable: 0
      analysis: {{templates: [{{templateName: score}}]}}
      steps:
        - setWeight: 20
        - pause: {{duration: 12s}}
        - setWeight: 60
        - pause: {{duration: 12s}}
"#
    )
}

fn template(url: &str, threshold: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: score}}
spec:
  metrics:
    - name: score
      interval: 3s
      successCondition: result >= {threshold}
      provider:
        web: {{url: "{url}/score", jsonPath: "{{$.value}}"}}
"#
    )
}

#[tokio::test]
async fn e2e_a_recorded_failing_release_replays_to_the_same_step_and_a_tighter_template_earlier() {
    let Some(client) = cluster::client().await else {
        return;
    };
    // Good for the first two measurements (0s, 3s), bad from the third (6s): the abort comes
    // in the middle of the first 12s pause, far from any step boundary.
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let server = Server::start(move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let value = if n < 2 { "0.97" } else { "0.91" };
        Reply::json(200, format!(r#"{{"value": {value}}}"#))
    })
    .await;
    let ns = TestNamespace::create(&client, "records").await;
    let release = |image: &str, threshold: &str| {
        Manifests::new(&[
            ("services.yaml", SERVICES),
            ("analysis.yaml", &template(&server.url(), threshold)),
            ("rollout.yaml", &rollout(image)),
        ])
    };
    let v1 = release("web:1", "0.95");
    let first = finish(apply_wait(ns.name(), v1.path(), &[])).await;
    assert_eq!(first.code, Some(0), "the first deploy: {}", first.stderr);

    let v2 = release("web:2", "0.95");
    let out = tempfile::tempdir().unwrap();
    let record_path = out.path().join("record.json");
    let junit_path = out.path().join("junit.xml");
    let record_arg = record_path.to_str().unwrap();
    let junit_arg = junit_path.to_str().unwrap();
    let run = finish(apply_wait(
        ns.name(),
        v2.path(),
        &["--record", record_arg, "--junit", junit_arg],
    ))
    .await;
    assert_eq!(
        run.code,
        Some(1),
        "the failing release aborts: {}",
        run.stderr
    );
    let record = crate::records::read_json(&record_path);
    let errors = crate::records::schema_errors(&record);
    assert!(
        errors.is_empty(),
        "the record breaks its schema: {errors:#?}"
    );
    assert_eq!(record["source"], "apply");
    assert_eq!(
        record["decision"]["verdict"], "aborted",
        "{:#}",
        record["decision"]
    );
    assert_eq!(record["decision"]["step"], 1, "{:#}", record["decision"]);
    let values: Vec<&str> = record["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["0.97", "0.97", "0.91"], "{record:#}");
    assert!(record["apiWrites"]["actions"].as_u64().unwrap() > 0);
    let cases = crate::records::junit_cases(&std::fs::read_to_string(&junit_path).unwrap());
    assert!(
        cases.iter().any(|c| c.1 == "score" && c.2 == "failure"),
        "{cases:#?}"
    );

    // A watcher records what it sees: here the aborted rollout, at once.
    let status_path = out.path().join("status.json");
    let watched = finish(command(
        ns.name(),
        &[
            "status",
            "web",
            "--watch",
            "--record",
            status_path.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(watched.code, Some(1), "{}", watched.stderr);
    let status_record = crate::records::read_json(&status_path);
    let errors = crate::records::schema_errors(&status_record);
    assert!(
        errors.is_empty(),
        "the watch record breaks its schema: {errors:#?}"
    );
    assert_eq!(status_record["source"], "status");
    assert_eq!(status_record["outcome"]["outcome"], "aborted");

    // The same manifests replay to the same decision, without the server.
    let requests = served.load(Ordering::SeqCst);
    let replay = |dir: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
            .args(["simulate", dir.to_str().unwrap(), "--replay", record_arg])
            .args(["--output", "json"])
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .output()
            .expect("simulate runs")
    };
    let same = replay(v2.path());
    let text = String::from_utf8_lossy(&same.stdout);
    assert_eq!(
        same.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&same.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["replay"]["same"], true, "{:#}", report["replay"]);
    assert_eq!(report["replay"]["replayed"]["step"], 1);
    assert_eq!(
        served.load(Ordering::SeqCst),
        requests,
        "a replay measures nothing"
    );

    // A template that wants 0.98 fails the first measurement: an earlier abort, at step 1.
    let tightened = release("web:2", "0.98");
    let earlier = replay(tightened.path());
    let text = String::from_utf8_lossy(&earlier.stdout);
    assert_eq!(earlier.status.code(), Some(1), "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let comparison = &report["replay"];
    assert_eq!(comparison["same"], false, "{comparison:#}");
    assert_eq!(comparison["replayed"]["verdict"], "aborted");
    assert_eq!(comparison["replayed"]["step"], 0, "{comparison:#}");
    assert!(
        comparison["shiftSeconds"].as_f64().unwrap() < -3.0,
        "{comparison:#}"
    );
    let words = comparison["text"].as_str().unwrap();
    assert!(
        words.starts_with("the new template would have aborted at 00:00:0")
            && words.contains("step 1/4")
            && words.contains("earlier (recorded: aborted at 00:00:"),
        "{words}"
    );
}
