//! The GitLab and webhook reporters against local servers (testing layer 5).
//!
//! GitLab contract (REST API v4):
//! - <https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit>:
//!   `POST /projects/:id/statuses/:sha`, `state` required, one of `pending`, `running`,
//!   `success`, `failed`, `canceled`; `description` at most 255 characters; a status cannot
//!   "transition" to the state it already has (GitLab answers 400).
//! - <https://docs.gitlab.com/api/notes/#list-all-merge-request-notes>,
//!   `#create-new-merge-request-note`, `#modify-existing-merge-request-note`: `body` required.
//! - <https://docs.gitlab.com/api/rest/authentication/>: `PRIVATE-TOKEN` header.
//!
//! Webhook: CDEvents v0.4.1 (<https://github.com/cdevents/spec/blob/v0.4.1/spec.md>) with an
//! HMAC-SHA256 signature of the body.

use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

use super::forge_github::repo_root;

pub(crate) const TOKEN: &str = "glpat-TOPSECRET0123456789";
pub(crate) const SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

#[derive(Default)]
pub(crate) struct State {
    pub(crate) calls: Vec<(String, String, Value)>,
    pub(crate) violations: Vec<String>,
    pub(crate) notes: Vec<(u64, String)>,
    status_states: std::collections::BTreeMap<String, String>,
    next: u64,
}

pub(crate) struct FakeGitlab(pub(crate) Arc<Mutex<State>>);

impl Respond for FakeGitlab {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let method = request.method.to_string();
        let path = request.url.path().to_string();
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        state
            .calls
            .push((method.clone(), path.clone(), body.clone()));
        let token = request
            .headers
            .get("private-token")
            .and_then(|v| v.to_str().ok());
        if token != Some(TOKEN) {
            state
                .violations
                .push(format!("{method} {path}: PRIVATE-TOKEN missing"));
            return ResponseTemplate::new(401)
                .set_body_json(json!({"message": "401 Unauthorized"}));
        }
        state.next += 1;
        let id = state.next;
        let statuses = regex::Regex::new(r"^/api/v4/projects/42/statuses/[0-9a-f]{40}$").unwrap();
        let notes = regex::Regex::new(r"^/api/v4/projects/42/merge_requests/9/notes$").unwrap();
        let note =
            regex::Regex::new(r"^/api/v4/projects/42/merge_requests/9/notes/(\d+)$").unwrap();
        if method == "POST" && statuses.is_match(&path) {
            let new = body["state"].as_str().unwrap_or_default().to_string();
            if !["pending", "running", "success", "failed", "canceled"].contains(&new.as_str()) {
                state.violations.push(format!("bad state `{new}`"));
            }
            if body["description"]
                .as_str()
                .is_some_and(|d| d.chars().count() > 255)
            {
                state.violations.push("description longer than 255".into());
            }
            let name = body["name"].as_str().unwrap_or_default().to_string();
            if state.status_states.get(&name) == Some(&new) {
                state
                    .violations
                    .push(format!("same-state transition to `{new}`"));
                return ResponseTemplate::new(400).set_body_json(
                    json!({"message": format!("Cannot transition status via :{new} from :{new}")}),
                );
            }
            state.status_states.insert(name, new);
            return ResponseTemplate::new(201).set_body_json(json!({"id": id}));
        }
        if method == "GET" && notes.is_match(&path) {
            let list: Vec<Value> = state
                .notes
                .iter()
                .map(|(id, body)| json!({"id": id, "body": body}))
                .collect();
            return ResponseTemplate::new(200).set_body_json(Value::Array(list));
        }
        if method == "POST" && notes.is_match(&path) {
            if !body["body"].is_string() {
                state.violations.push("note without body".into());
            }
            let text = body["body"].as_str().unwrap_or_default().to_string();
            state.notes.push((id, text));
            return ResponseTemplate::new(201).set_body_json(json!({"id": id}));
        }
        if method == "PUT"
            && let Some(captures) = note.captures(&path)
        {
            let target: u64 = captures[1].parse().unwrap();
            let text = body["body"].as_str().unwrap_or_default().to_string();
            if let Some(existing) = state.notes.iter_mut().find(|(id, _)| *id == target) {
                existing.1 = text;
                return ResponseTemplate::new(200).set_body_json(json!({"id": target}));
            }
            return ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not found"}));
        }
        state
            .violations
            .push(format!("no such endpoint: {method} {path}"));
        ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not found"}))
    }
}

fn command(example: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollout-runner"));
    command.current_dir(repo_root());
    for (name, _) in std::env::vars() {
        if name.starts_with("GITHUB_")
            || name.starts_with("CI_")
            || name.starts_with("GITLAB")
            || name.starts_with("ROLLOUT_RUNNER_")
        {
            command.env_remove(name);
        }
    }
    command.arg("simulate").arg(example).args([
        "--report-backoff",
        "10ms",
        "--report-timeout",
        "500ms",
        "--report-flush-timeout",
        "4s",
    ]);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_gets_one_status_per_state_and_one_sticky_note() {
    let server = MockServer::start().await;
    let state = Arc::new(Mutex::new(State::default()));
    Mock::given(any())
        .respond_with(FakeGitlab(state.clone()))
        .mount(&server)
        .await;
    for _ in 0..2 {
        let mut run = command("examples/canary-analysis-fails");
        run.env("GITLAB_CI", "true")
            .env("CI_COMMIT_SHA", SHA)
            .env("CI_MERGE_REQUEST_IID", "9")
            .env("CI_PROJECT_ID", "42")
            .env("CI_PIPELINE_ID", "1234")
            .env("CI_JOB_URL", "https://gitlab.example/g/p/-/jobs/5")
            .env("CI_API_V4_URL", format!("{}/api/v4", server.uri()))
            .env("GITLAB_TOKEN", TOKEN)
            .args(["--report", "auto"]);
        let output = tokio::task::spawn_blocking(move || run.output().unwrap())
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("section_start:"),
            "job log section\n{stderr}"
        );
        assert!(stderr.contains("[collapsed=true]"));
        assert!(!stderr.contains(TOKEN));
        assert!(!String::from_utf8_lossy(&output.stdout).contains(TOKEN));
    }
    let state = state.lock().unwrap();
    assert!(state.violations.is_empty(), "{:#?}", state.violations);
    let states: Vec<&str> = state
        .calls
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.contains("/statuses/"))
        .map(|(_, _, b)| b["state"].as_str().unwrap())
        .collect();
    // Each run: running, then failed. The second run starts a new status cycle.
    assert_eq!(states, ["running", "failed", "running", "failed"]);
    for (_, _, body) in state
        .calls
        .iter()
        .filter(|(_, p, _)| p.contains("/statuses/"))
    {
        assert_eq!(body["name"], "rollout default/checkout");
        assert_eq!(body["pipeline_id"], 1234);
        assert_eq!(body["target_url"], "https://gitlab.example/g/p/-/jobs/5");
    }
    assert_eq!(state.notes.len(), 1, "one sticky note across both runs");
    assert!(
        state.notes[0]
            .1
            .contains("<!-- rollout-runner:release default/checkout -->")
    );
    assert!(state.notes[0].1.contains("aborted"));
    for (_, _, body) in &state.calls {
        assert!(!body.to_string().contains(TOKEN));
    }
}

#[test]
fn a_job_token_alone_only_warns() {
    let output = command("examples/canary-basic")
        .env("GITLAB_CI", "true")
        .env("CI_COMMIT_SHA", SHA)
        .env("CI_PROJECT_ID", "42")
        .env("CI_API_V4_URL", "http://127.0.0.1:9/api/v4")
        .env("CI_JOB_TOKEN", TOKEN)
        .args(["--report", "gitlab"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("job tokens cannot post"), "{stderr}");
    assert!(
        stderr.contains("reported to gitlab: 0 API calls"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_cdevents() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let secret = "hook-SECRET-42";
    let mut run = command("examples/canary-analysis-fails");
    run.args(["--report", "webhook", "--environment", "staging"])
        .env(
            "ROLLOUT_RUNNER_WEBHOOK_URL",
            format!("{}/hooks/T0KEN", server.uri()),
        )
        .env("ROLLOUT_RUNNER_WEBHOOK_SECRET", secret)
        .env("ROLLOUT_RUNNER_COMMIT", SHA);
    let output = tokio::task::spawn_blocking(move || run.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains(secret) && !stderr.contains("T0KEN"),
        "{stderr}"
    );
    let requests = server.received_requests().await.unwrap();
    let mut types = Vec::new();
    for request in &requests {
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(request.url.path(), "/hooks/T0KEN");
        let signature = request.headers["x-rollout-runner-signature-256"]
            .to_str()
            .unwrap();
        let expected = rollout_runner::report::webhook::signature(
            &rollout_runner::report::delivery::Secret::new(secret),
            &request.body,
        );
        assert_eq!(signature, expected);
        let event: Value = serde_json::from_slice(&request.body).unwrap();
        for field in ["version", "id", "source", "type", "timestamp"] {
            assert!(
                event["context"][field].is_string(),
                "context.{field}: {event}"
            );
        }
        assert_eq!(event["context"]["version"], "0.4.1");
        assert!(event["subject"]["id"].is_string());
        assert_eq!(event["subject"]["content"]["environment"]["id"], "staging");
        assert!(
            event["subject"]["content"]["artifactId"]
                .as_str()
                .unwrap()
                .starts_with("pkg:oci/checkout")
        );
        assert_eq!(event["customData"]["commit"], SHA);
        types.push(event["context"]["type"].as_str().unwrap().to_string());
    }
    assert_eq!(
        types.first().unwrap(),
        "dev.cdeventsx.rolloutrunner-release.started.0.1.0"
    );
    assert_eq!(
        types.last().unwrap(),
        "dev.cdevents.service.rolledback.0.2.0"
    );
    assert!(types.iter().any(|t| t.ends_with(".stepstarted.0.1.0")));
    assert!(types.iter().any(|t| t.ends_with(".analyzed.0.1.0")));
}
