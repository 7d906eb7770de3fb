//! End to end with a forge: the real binary runs `apply --wait --report github` against the
//! test control plane and the local GitHub contract server, as in a GitHub Actions job on a
//! pull request; then `status --watch --report github` follows the finished release. The
//! token must never show in any output, file or comment.

use std::path::Path;
use std::time::Duration;

use crate::forge_github::{Call, Fake, Mode, SHA, TOKEN};
use crate::support::cluster::{self, TestNamespace};
use crate::support::runner::{Finished, Manifests, apply_wait, command, finish};

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web-stable}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-canary}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

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
    metadata:
      labels: {{app: web}}
    spec:
      containers: [{{name: web, image: "{image}", ports: [{{name: http, containerPort: 8080}}]}}]
  strategy:
    canary:
      stableService: web-stable
      canaryService: web-canary
      steps:
        - setWeight: 50
        - pause: {{duration: 1s}}
"#
    )
}

/// The GitHub Actions environment of a pull request job, with the fake as the API.
fn as_github_job(command: &mut tokio::process::Command, dir: &Path) {
    for (name, _) in std::env::vars() {
        if name.starts_with("GITHUB_") || name.starts_with("CI_") || name.starts_with("GITLAB") {
            command.env_remove(name);
        }
    }
    command
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REF", "refs/pull/5/merge")
        .env("GITHUB_RUN_ID", "77")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_STEP_SUMMARY", dir.join("summary"));
}

const FAST_REPORTS: [&str; 6] = [
    "--report-backoff",
    "10ms",
    "--report-timeout",
    "2s",
    "--report-flush-timeout",
    "10s",
];

fn count(calls: &[Call], method: &str, route: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.method == method && c.route == route)
        .count()
}

fn assert_no_token(run: &Finished, files: &Path, calls: &[Call], comments: &[(u64, String)]) {
    assert!(!run.stdout.contains(TOKEN), "the token leaked into stdout");
    assert!(!run.stderr.contains(TOKEN), "the token leaked into stderr");
    for file in ["output", "summary"] {
        let text = std::fs::read_to_string(files.join(file)).unwrap_or_default();
        assert!(!text.contains(TOKEN), "the token leaked into {file}");
    }
    for call in calls {
        assert!(
            !call.raw_body.contains(TOKEN),
            "the token leaked: {}",
            call.path
        );
    }
    for (_, body) in comments {
        assert!(!body.contains(TOKEN), "the token leaked into a comment");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_apply_wait_reports_one_check_run_and_one_sticky_comment() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "forge-apply").await;
    let v1 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &rollout("web:1")),
    ]);
    let first = finish(apply_wait(ns.name(), v1.path(), &[])).await;
    assert_eq!(first.code, Some(0), "the first deploy\n{}", first.stderr);

    let fake = Fake::start(Mode::Normal).await;
    let files = tempfile::tempdir().unwrap();
    let v2 = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &rollout("web:2")),
    ]);
    let api = fake.server.uri();
    let mut extra = vec!["--report", "github", "--github-api-url", &api];
    extra.extend_from_slice(&FAST_REPORTS);
    let mut release = apply_wait(ns.name(), v2.path(), &extra);
    as_github_job(&mut release, files.path());
    let run = finish(release).await;
    assert_eq!(run.code, Some(0), "the release\n{}", run.stderr);
    assert!(run.stderr.contains("reported to github:"), "{}", run.stderr);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());

    let calls = fake.take_calls();
    assert_eq!(count(&calls, "POST", "/repos/{owner}/{repo}/check-runs"), 1);
    let patches: Vec<&Call> = calls
        .iter()
        .filter(|c| c.route == "/repos/{owner}/{repo}/check-runs/{id}")
        .collect();
    let last = patches.last().expect("the check run is updated");
    assert_eq!(last.body["status"], "completed");
    assert_eq!(last.body["conclusion"], "success");
    assert_eq!(
        count(&calls, "POST", "/repos/{owner}/{repo}/issues/{n}/comments"),
        1
    );
    let comments = fake.state.lock().unwrap().comments.clone();
    assert_eq!(comments.len(), 1, "one sticky comment");
    assert!(
        comments[0].1.contains(&format!(
            "<!-- rollout-runner:release {}/web -->",
            ns.name()
        )),
        "{}",
        comments[0].1
    );
    let output = std::fs::read_to_string(files.path().join("output")).unwrap_or_default();
    assert!(output.contains("verdict=promoted"), "{output}");
    assert_no_token(&run, files.path(), &calls, &comments);

    // `status --watch` on the promoted release reports to the same comment.
    let mut args = vec![
        "status",
        "web",
        "--watch",
        "--timeout",
        "60s",
        "--report",
        "github",
        "--github-api-url",
        &api,
    ];
    args.extend_from_slice(&FAST_REPORTS);
    let mut watch = command(ns.name(), &args);
    as_github_job(&mut watch, files.path());
    let watched = tokio::time::timeout(Duration::from_secs(120), finish(watch))
        .await
        .expect("status --watch ends");
    assert_eq!(watched.code, Some(0), "{}", watched.stderr);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let calls = fake.take_calls();
    assert_eq!(
        count(&calls, "POST", "/repos/{owner}/{repo}/issues/{n}/comments"),
        0,
        "no second comment"
    );
    let comments = fake.state.lock().unwrap().comments.clone();
    assert_eq!(comments.len(), 1);
    assert_no_token(&watched, files.path(), &calls, &comments);
}
