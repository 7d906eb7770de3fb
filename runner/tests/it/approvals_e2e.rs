//! Approvals from the forge, end to end: a release paused for a person (`apply --wait --report
//! github`, as a pull request's job) is promoted by `rollout-runner comment-command` reading
//! `/rollout promote` comment events, as an `issue_comment` workflow runs it. Against the test
//! control plane and the GitHub API server that validates every request against GitHub's
//! OpenAPI description.
//!
//! A comment from a user with read access is refused (a `-1` reaction, a reply, the Rollout
//! untouched, exit 1); one from a maintainer is acknowledged (`+1`), promotes the release to
//! Healthy, and the approval shows in the final check run and the sticky comment, written by
//! the release's own reporter from the Rollout's annotation.

use std::path::Path;
use std::time::Duration;

use kube::Api;
use serde_json::json;

use rollout_runner::crd::Rollout;
use rollout_runner::report::approval::APPROVALS_ANNOTATION;

use crate::forge_github::{Fake, Mode, SHA, TOKEN};
use crate::support::cluster::{self, TestNamespace};
use crate::support::runner::{Manifests, Running, apply_wait, command, finish, wait_rollout};

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: shop-stable}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: shop-canary}
spec:
  selector: {app: shop}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

fn rollout(image: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: shop}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: shop}}}}
  template:
    metadata:
      labels: {{app: shop}}
    spec:
      containers: [{{name: shop, image: "{image}", ports: [{{name: http, containerPort: 8080}}]}}]
  strategy:
    canary:
      stableService: shop-stable
      canaryService: shop-canary
      steps:
        - setWeight: 50
        - pause: {{}}
"#
    )
}

/// The environment of a GitHub Actions job in repository `o/r`, with the fake as the API.
/// Drop the CI variables of the machine running the tests, so only what a test sets is seen.
fn without_forge_env(command: &mut std::process::Command) {
    for (name, _) in std::env::vars() {
        if name.starts_with("GITHUB_") || name.starts_with("CI_") || name.starts_with("GITLAB") {
            command.env_remove(name);
        }
    }
}

/// A `comment-command` run that carried the command out on rollout `shop`.
fn assert_promoted(accepted: &crate::support::runner::Finished) {
    assert_eq!(
        accepted.code,
        Some(0),
        "{}\n{}",
        accepted.stdout,
        accepted.stderr
    );
    assert!(
        accepted.stdout.contains("rollout 'shop' promoted"),
        "{}",
        accepted.stdout
    );
}

fn as_github_job(command: &mut tokio::process::Command, dir: &Path, event: &str) {
    without_forge_env(command.as_std_mut());
    command
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_RUN_ID", "77")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_EVENT_NAME", event)
        .env("GITHUB_OUTPUT", dir.join("output"))
        .env("GITHUB_STEP_SUMMARY", dir.join("summary"));
}

/// GitHub's `issue_comment` payload for a new comment on pull request 5 (the fields the
/// command reads, as GitHub sends them).
fn comment_event(dir: &Path, id: u64, login: &str, body: &str) -> std::path::PathBuf {
    let event = json!({
        "action": "created",
        "issue": {
            "number": 5,
            "title": "Release shop v2",
            "pull_request": {"url": "https://api.github.com/repos/o/r/pulls/5"}
        },
        "comment": {
            "id": id,
            "body": body,
            "html_url": format!("https://github.com/o/r/pull/5#issuecomment-{id}"),
            "user": {"login": login, "type": "User"}
        },
        "repository": {"full_name": "o/r"},
        "sender": {"login": login}
    });
    let path = dir.join(format!("event-{id}.json"));
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

/// The Rollout at `image` with its Services.
fn release(image: &str) -> Manifests {
    Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &rollout(image)),
    ])
}

/// A new namespace where `shop:1` is deployed (a first revision: no steps).
async fn with_first_version(client: &kube::Client, prefix: &str) -> TestNamespace {
    let ns = TestNamespace::create(client, prefix).await;
    let first = finish(apply_wait(ns.name(), release("shop:1").path(), &[])).await;
    assert_eq!(first.code, Some(0), "the first deploy\n{}", first.stderr);
    ns
}

fn annotation(rollout: &Rollout) -> Option<String> {
    rollout
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPROVALS_ANNOTATION))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_rollout_promote_comment_needs_write_access_and_promotes_a_paused_release() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = with_first_version(&client, "approvals").await;

    let fake = Fake::start(Mode::Normal).await;
    {
        let mut state = fake.state.lock().unwrap();
        state.permissions = vec![
            ("reader-rob".into(), "read".into()),
            ("maintainer-mona".into(), "maintain".into()),
        ];
    }
    let api = fake.server.uri();
    let files = tempfile::tempdir().unwrap();
    let fast = [
        "--report-backoff",
        "10ms",
        "--report-timeout",
        "2s",
        "--report-flush-timeout",
        "10s",
    ];

    // The pull request's release: pauses at `pause: {}` and waits for a person.
    let v2 = release("shop:2");
    let mut extra = vec!["--report", "github", "--github-api-url", &api];
    extra.extend_from_slice(&fast);
    let mut release = apply_wait(ns.name(), v2.path(), &extra);
    as_github_job(&mut release, files.path(), "pull_request");
    release.env("GITHUB_REF", "refs/pull/5/merge");
    let release = Running::start(release);

    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), ns.name());
    wait_rollout(
        &client,
        ns.name(),
        "shop",
        "paused at the pause step",
        |r| {
            r.status
                .as_ref()
                .is_some_and(|s| !s.pause_conditions.is_empty())
        },
    )
    .await;
    let marker = format!("<!-- rollout-runner:release {}/shop -->", ns.name());
    cluster::wait_for(
        "the release's sticky comment",
        Duration::from_secs(60),
        || {
            let found = fake
                .state
                .lock()
                .unwrap()
                .comments
                .iter()
                .any(|(_, body)| body.contains(&marker));
            async move { found.then_some(()) }
        },
    )
    .await;
    let paused = rollouts.get("shop").await.unwrap();

    let comment_command = |event: &Path| {
        let mut run = command(
            ns.name(),
            &[
                "comment-command",
                "--github-api-url",
                &api,
                "--event",
                event.to_str().unwrap(),
            ],
        );
        as_github_job(&mut run, files.path(), "issue_comment");
        run
    };

    // A reader may not promote: refused, told so, and the Rollout is not touched.
    let event = comment_event(files.path(), 9001, "reader-rob", "/rollout promote");
    let refused = finish(comment_command(&event)).await;
    assert_eq!(
        refused.code,
        Some(1),
        "{}\n{}",
        refused.stdout,
        refused.stderr
    );
    assert!(
        refused.stderr.contains("needs write access"),
        "{}",
        refused.stderr
    );
    let after = rollouts.get("shop").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, paused.metadata.resource_version,
        "a refused command changes nothing on the Rollout"
    );
    assert_eq!(annotation(&after), None);
    {
        let state = fake.state.lock().unwrap();
        assert!(
            state.reactions.contains(&(9001, "-1".into())),
            "{:?}",
            state.reactions
        );
        assert!(
            state
                .comments
                .iter()
                .any(|(_, body)| body.contains("@reader-rob has `read`")),
            "a reply says why"
        );
    }

    // A maintainer may: acknowledged, promoted, recorded.
    let event = comment_event(
        files.path(),
        9002,
        "maintainer-mona",
        "Canary looks good.\n/rollout promote shop\n",
    );
    let accepted = finish(comment_command(&event)).await;
    assert_promoted(&accepted);
    assert!(
        fake.state
            .lock()
            .unwrap()
            .reactions
            .contains(&(9002, "+1".into()))
    );
    let recorded =
        annotation(&rollouts.get("shop").await.unwrap()).expect("the approval annotation");
    assert!(
        recorded.contains("\"by\":\"maintainer-mona\""),
        "{recorded}"
    );

    let finished = release.finish().await;
    assert_eq!(
        finished.code,
        Some(0),
        "the release is promoted\n{}",
        finished.stderr
    );
    let healthy = rollouts.get("shop").await.unwrap();
    let status = healthy.status.clone().unwrap_or_default();
    assert_eq!(
        status.phase.map(|p| p.to_string()).as_deref(),
        Some("Healthy")
    );
    assert_eq!(status.stable_rs, status.current_pod_hash);

    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let calls = fake.take_calls();
    let record = "`/rollout promote` by @maintainer-mona";
    let last_check = calls
        .iter()
        .rfind(|c| c.route == "/repos/{owner}/{repo}/check-runs/{id}")
        .expect("the check run is updated");
    assert_eq!(last_check.body["conclusion"], "success");
    let summary = last_check.body["output"]["summary"]
        .as_str()
        .unwrap_or_default();
    assert!(
        summary.contains(record),
        "the check run records the approval:\n{summary}"
    );
    let comments = fake.state.lock().unwrap().comments.clone();
    let sticky: Vec<&String> = comments
        .iter()
        .map(|(_, body)| body)
        .filter(|body| body.contains(&marker))
        .collect();
    assert_eq!(sticky.len(), 1, "one sticky comment");
    assert_eq!(
        sticky[0].matches(record).count(),
        1,
        "the sticky comment records the approval once:\n{}",
        sticky[0]
    );
    for (_, body) in &comments {
        assert!(!body.contains(TOKEN), "the token leaked into a comment");
    }
    for run in [&refused, &accepted, &finished] {
        assert!(!run.stderr.contains(TOKEN) && !run.stdout.contains(TOKEN));
    }
}

/// A GitLab API server for the note commands: members with their access levels (anyone else
/// is no member: 404), the merge request's notes (one release note), emoji and replies; every
/// request needs the token.
struct FakeGitlabNotes {
    calls: std::sync::Arc<std::sync::Mutex<Vec<(String, String, serde_json::Value)>>>,
    /// The release the merge request's note is about: `NAMESPACE/NAME ENVIRONMENT`.
    released: String,
}

impl wiremock::Respond for FakeGitlabNotes {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        use wiremock::ResponseTemplate;
        let method = request.method.to_string();
        let path = request.url.path().to_string();
        let body: serde_json::Value =
            serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
        self.calls
            .lock()
            .unwrap()
            .push((method.clone(), path.clone(), body));
        let token = request
            .headers
            .get("private-token")
            .and_then(|v| v.to_str().ok());
        if token != Some(crate::forge_gitlab::TOKEN) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"message": "401 Unauthorized"}));
        }
        let base = "/api/v4/projects/7";
        match (method.as_str(), path.strip_prefix(base).unwrap_or("?")) {
            // Reporter (20) and Developer (30); anyone else is no member.
            ("GET", "/members/all/20") => {
                ResponseTemplate::new(200).set_body_json(json!({"id": 20, "username": "rita", "access_level": 20}))
            }
            ("GET", "/members/all/30") => {
                ResponseTemplate::new(200).set_body_json(json!({"id": 30, "username": "dev", "access_level": 30}))
            }
            ("GET", "/merge_requests/3/notes") => ResponseTemplate::new(200).set_body_json(json!([
                {"id": 500, "body": format!("<!-- rollout-runner:release {} -->\n### Release", self.released)}
            ])),
            ("PUT", "/merge_requests/3/notes/500") => {
                ResponseTemplate::new(200).set_body_json(json!({"id": 500}))
            }
            ("POST", "/merge_requests/3/notes/1244/award_emoji") => {
                ResponseTemplate::new(201).set_body_json(json!({"id": 1, "name": "x"}))
            }
            ("POST", "/merge_requests/3/notes") => {
                ResponseTemplate::new(201).set_body_json(json!({"id": 501}))
            }
            _ => ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not found"})),
        }
    }
}

/// GitLab: a note from a Reporter is refused, and a Developer naming a rollout the merge
/// request did not release is refused too; neither touches a cluster (none is configured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_note_commands_are_refused_without_developer_access_or_for_other_rollouts() {
    let server = wiremock::MockServer::start().await;
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(FakeGitlabNotes {
            calls: calls.clone(),
            released: "shop/web production".into(),
        })
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let run = |user_id: u64, username: &str, note: &str| {
        let path = gitlab_note_event(dir.path(), user_id, username, note);
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rollout-runner"));
        without_forge_env(&mut command);
        command
            .args(["comment-command", "--forge", "gitlab", "--event"])
            .arg(&path)
            .args(["--gitlab-api-url", &format!("{}/api/v4", server.uri())])
            .env("GITLAB_TOKEN", crate::forge_gitlab::TOKEN)
            // No cluster: a command that got as far as the cluster would fail with exit 2.
            .env("KUBECONFIG", dir.path().join("no-kubeconfig"));
        command
    };
    let output = tokio::task::spawn_blocking({
        let mut command = run(20, "rita", "/rollout promote");
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("@rita has `access level 20`"), "{stderr}");
    {
        let calls = calls.lock().unwrap();
        assert!(calls.iter().any(|(m, p, b)| m == "POST"
            && p.ends_with("/notes/1244/award_emoji")
            && b["name"] == "thumbsdown"));
        assert!(calls.iter().any(|(m, p, b)| {
            m == "POST"
                && p.ends_with("/merge_requests/3/notes")
                && b["body"]
                    .as_str()
                    .is_some_and(|t| t.contains("needs write access"))
        }));
    }
    calls.lock().unwrap().clear();

    let output = tokio::task::spawn_blocking({
        let mut command = run(30, "dev", "/rollout abort shop/api");
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`shop/api` was not released from here (released: `shop/web`)"),
        "{stderr}"
    );
    let calls = calls.lock().unwrap();
    assert!(
        calls
            .iter()
            .any(|(_, p, b)| p.ends_with("/award_emoji") && b["name"] == "thumbsdown")
    );
    for (_, _, body) in calls.iter() {
        assert!(!body.to_string().contains(crate::forge_gitlab::TOKEN));
    }
}

/// The note event GitLab sends for a new note on merge request 3 of project 7.
fn gitlab_note_event(dir: &Path, user_id: u64, username: &str, note: &str) -> std::path::PathBuf {
    let event = json!({
        "object_kind": "note",
        "user": {"id": user_id, "username": username},
        "project": {"id": 7},
        "object_attributes": {"id": 1244, "note": note, "noteable_type": "MergeRequest",
                              "action": "create",
                              "url": "https://gitlab.example.com/g/p/-/merge_requests/3#note_1244"},
        "merge_request": {"iid": 3}
    });
    let path = dir.join(format!("note-{user_id}.json"));
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

/// GitLab, end to end: a Developer's `/rollout promote` note is acknowledged, promotes the
/// merge request's release paused at `pause: {}` on the test control plane, records who gave it
/// on the Rollout and in the release note; `drive` then takes the release to Healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_gitlab_developer_note_promotes_the_paused_release() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = with_first_version(&client, "approvals-gitlab").await;
    let v2 = release("shop:2");
    let paused = finish(apply_wait(ns.name(), v2.path(), &["--success-on-pause"])).await;
    assert_eq!(
        paused.code,
        Some(0),
        "paused for a person\n{}",
        paused.stderr
    );

    let server = wiremock::MockServer::start().await;
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(FakeGitlabNotes {
            calls: calls.clone(),
            released: format!("{}/shop production", ns.name()),
        })
        .mount(&server)
        .await;
    let files = tempfile::tempdir().unwrap();
    let event = gitlab_note_event(files.path(), 30, "dev", "LGTM\n/rollout promote\n");
    let api = format!("{}/api/v4", server.uri());
    let mut run = command(
        ns.name(),
        &[
            "comment-command",
            "--forge",
            "gitlab",
            "--event",
            event.to_str().unwrap(),
            "--gitlab-api-url",
            &api,
        ],
    );
    without_forge_env(run.as_std_mut());
    run.env("GITLAB_TOKEN", crate::forge_gitlab::TOKEN);
    let accepted = finish(run).await;
    assert_promoted(&accepted);
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), ns.name());
    let promoted = rollouts.get("shop").await.unwrap();
    let recorded = annotation(&promoted).expect("the approval annotation");
    assert!(recorded.contains("\"by\":\"dev\""), "{recorded}");
    assert!(
        promoted
            .status
            .as_ref()
            .is_none_or(|s| s.pause_conditions.is_empty()),
        "the pause is lifted"
    );
    {
        let calls = calls.lock().unwrap();
        assert!(calls.iter().any(|(m, p, b)| m == "POST"
            && p.ends_with("/notes/1244/award_emoji")
            && b["name"] == "thumbsup"));
        let note = calls
            .iter()
            .find(|(m, p, _)| m == "PUT" && p.ends_with("/merge_requests/3/notes/500"))
            .expect("the release note is updated");
        let body = note.2["body"].as_str().unwrap_or_default();
        assert!(body.contains("`/rollout promote` by @dev"), "{body}");
        for (_, _, body) in calls.iter() {
            assert!(!body.to_string().contains(crate::forge_gitlab::TOKEN));
        }
    }
    assert!(!accepted.stderr.contains(crate::forge_gitlab::TOKEN));

    let driven = finish(command(
        ns.name(),
        &[
            "drive",
            "shop",
            "--timeout",
            "150s",
            "--lease-duration",
            "2s",
        ],
    ))
    .await;
    assert_eq!(driven.code, Some(0), "{}\n{}", driven.stdout, driven.stderr);
    let healthy = rollouts.get("shop").await.unwrap();
    let status = healthy.status.unwrap_or_default();
    assert_eq!(
        status.phase.map(|p| p.to_string()).as_deref(),
        Some("Healthy")
    );
    assert_eq!(status.stable_rs, status.current_pod_hash);
}
