//! The GitHub reporter against a local server that plays the GitHub REST API (testing layer 5):
//! every request is checked against the published contract (method, path, auth and API
//! headers, required body fields and their allowed values) and recorded; whole simulated
//! releases must produce exactly the expected calls, and a failing API must never change the
//! exit code or leak the token.
//!
//! Contract sources (GitHub REST API, version 2022-11-28):
//! - <https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api>
//!   (`Accept: application/vnd.github+json`, `X-GitHub-Api-Version`, a `User-Agent` is
//!   required, `Authorization: Bearer TOKEN`)
//! - <https://docs.github.com/en/rest/checks/runs#create-a-check-run> (`name`, `head_sha`
//!   required; `status`, `conclusion` enums; `output.title` and `output.summary` required with
//!   `output`; summary at most 65535 characters; at most 50 annotations per request, each with
//!   `path`, `start_line`, `end_line`, `annotation_level`, `message`)
//! - <https://docs.github.com/en/rest/checks/runs#update-a-check-run>
//! - <https://docs.github.com/en/rest/checks/runs#list-check-runs-for-a-git-reference>
//! - <https://docs.github.com/en/rest/commits/statuses#create-a-commit-status> (`state`
//!   required: `error`, `failure`, `pending`, `success`)
//! - <https://docs.github.com/en/rest/issues/comments#list-issue-comments>,
//!   <https://docs.github.com/en/rest/issues/comments#create-an-issue-comment>,
//!   <https://docs.github.com/en/rest/issues/comments#update-an-issue-comment> (`body` required)
//! - <https://docs.github.com/en/rest/deployments/deployments#create-a-deployment> (`ref`
//!   required)
//! - <https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status>
//!   (`state` required: `error`, `failure`, `inactive`, `in_progress`, `queued`, `pending`,
//!   `success`)

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

use crate::support::github_openapi::GithubOpenApi;

pub(crate) const TOKEN: &str = "ghs_TOPSECRETtoken0123456789";
pub(crate) const SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Normal,
    ServerError,
    Slow,
    Unauthorized,
    /// Check runs are forbidden (a token without `checks: write`).
    NoChecks,
}

/// One recorded request.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: String,
    /// The route template it matched.
    pub(crate) route: String,
    pub(crate) path: String,
    pub(crate) body: Value,
    pub(crate) raw_body: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) calls: Vec<Call>,
    pub(crate) violations: Vec<String>,
    next_id: u64,
    /// Comments on the pull request: (id, body).
    pub(crate) comments: Vec<(u64, String)>,
    check_runs: Vec<(u64, Value)>,
    /// Pull requests merged: (number, merge commit, head commit).
    pub(crate) merged_pulls: Vec<(u64, String, String)>,
    /// Open pull requests: (number, head commit).
    pub(crate) pulls: Vec<(u64, String)>,
    /// Repository permissions by login (`admin`, `maintain`, `write`, `triage`, `read`);
    /// other users are no collaborators (404).
    pub(crate) permissions: Vec<(String, String)>,
    /// Reactions created: (comment id, content).
    pub(crate) reactions: Vec<(u64, String)>,
}

pub(crate) struct FakeGithub {
    pub(crate) state: Arc<Mutex<State>>,
    mode: Arc<Mutex<Mode>>,
}

struct Route {
    method: &'static str,
    template: &'static str,
    pattern: Regex,
}

fn routes() -> Vec<Route> {
    [
        (
            "POST",
            "/repos/{owner}/{repo}/check-runs",
            r"^/repos/[^/]+/[^/]+/check-runs$",
        ),
        (
            "PATCH",
            "/repos/{owner}/{repo}/check-runs/{id}",
            r"^/repos/[^/]+/[^/]+/check-runs/\d+$",
        ),
        (
            "GET",
            "/repos/{owner}/{repo}/commits/{ref}/check-runs",
            r"^/repos/[^/]+/[^/]+/commits/[^/]+/check-runs$",
        ),
        (
            "POST",
            "/repos/{owner}/{repo}/statuses/{sha}",
            r"^/repos/[^/]+/[^/]+/statuses/[0-9a-f]{40}$",
        ),
        (
            "GET",
            "/repos/{owner}/{repo}/issues/{n}/comments",
            r"^/repos/[^/]+/[^/]+/issues/\d+/comments$",
        ),
        (
            "POST",
            "/repos/{owner}/{repo}/issues/{n}/comments",
            r"^/repos/[^/]+/[^/]+/issues/\d+/comments$",
        ),
        (
            "PATCH",
            "/repos/{owner}/{repo}/issues/comments/{id}",
            r"^/repos/[^/]+/[^/]+/issues/comments/\d+$",
        ),
        (
            "POST",
            "/repos/{owner}/{repo}/deployments",
            r"^/repos/[^/]+/[^/]+/deployments$",
        ),
        (
            "POST",
            "/repos/{owner}/{repo}/deployments/{id}/statuses",
            r"^/repos/[^/]+/[^/]+/deployments/\d+/statuses$",
        ),
        (
            "GET",
            "/repos/{owner}/{repo}/commits/{sha}/pulls",
            r"^/repos/[^/]+/[^/]+/commits/[^/]+/pulls$",
        ),
        (
            "GET",
            "/repos/{owner}/{repo}/pulls/{n}",
            r"^/repos/[^/]+/[^/]+/pulls/\d+$",
        ),
        (
            "GET",
            "/repos/{owner}/{repo}/collaborators/{username}/permission",
            r"^/repos/[^/]+/[^/]+/collaborators/[^/]+/permission$",
        ),
        (
            "POST",
            "/repos/{owner}/{repo}/issues/comments/{id}/reactions",
            r"^/repos/[^/]+/[^/]+/issues/comments/\d+/reactions$",
        ),
        (
            "GET",
            "/repos/{owner}/{repo}/installation",
            r"^/repos/[^/]+/[^/]+/installation$",
        ),
        (
            "POST",
            "/app/installations/{id}/access_tokens",
            r"^/app/installations/\d+/access_tokens$",
        ),
    ]
    .into_iter()
    .map(|(method, template, pattern)| Route {
        method,
        template,
        pattern: Regex::new(pattern).unwrap(),
    })
    .collect()
}

fn check_output(output: &Value, problems: &mut Vec<String>) {
    if output.is_null() {
        return;
    }
    for field in ["title", "summary"] {
        if !output[field].is_string() {
            problems.push(format!("output.{field} is required with output"));
        }
    }
    for field in ["summary", "text"] {
        if output[field]
            .as_str()
            .is_some_and(|s| s.chars().count() > 65_535)
        {
            problems.push(format!("output.{field} is longer than 65535 characters"));
        }
    }
    if let Some(annotations) = output["annotations"].as_array() {
        if annotations.len() > 50 {
            problems.push("more than 50 annotations in one request".into());
        }
        for annotation in annotations {
            for field in [
                "path",
                "start_line",
                "end_line",
                "annotation_level",
                "message",
            ] {
                if annotation[field].is_null() {
                    problems.push(format!("annotation without `{field}`"));
                }
            }
            if !matches!(
                annotation["annotation_level"].as_str(),
                Some("notice" | "warning" | "failure")
            ) {
                problems.push("bad annotation_level".into());
            }
        }
    }
}

fn one_of(body: &Value, field: &str, allowed: &[&str], required: bool, problems: &mut Vec<String>) {
    match body[field].as_str() {
        Some(value) if !allowed.contains(&value) => {
            problems.push(format!("`{field}` = `{value}` is not one of {allowed:?}"))
        }
        None if required => problems.push(format!("`{field}` is required")),
        _ => {}
    }
}

/// The contract of one route: problems with the body.
fn check_body(route: &str, body: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let statuses = [
        "queued",
        "in_progress",
        "completed",
        "waiting",
        "requested",
        "pending",
    ];
    let conclusions = [
        "action_required",
        "cancelled",
        "failure",
        "neutral",
        "success",
        "skipped",
        "stale",
        "timed_out",
    ];
    match route {
        "/repos/{owner}/{repo}/check-runs" => {
            for field in ["name", "head_sha"] {
                if !body[field].is_string() {
                    problems.push(format!("`{field}` is required"));
                }
            }
            one_of(body, "status", &statuses, false, &mut problems);
            one_of(body, "conclusion", &conclusions, false, &mut problems);
            check_output(&body["output"], &mut problems);
        }
        "/repos/{owner}/{repo}/check-runs/{id}" => {
            one_of(body, "status", &statuses, false, &mut problems);
            one_of(body, "conclusion", &conclusions, false, &mut problems);
            if body["status"] == "completed" && body["conclusion"].is_null() {
                problems.push("a completed check run needs a conclusion".into());
            }
            check_output(&body["output"], &mut problems);
        }
        "/repos/{owner}/{repo}/statuses/{sha}" => {
            one_of(
                body,
                "state",
                &["error", "failure", "pending", "success"],
                true,
                &mut problems,
            );
        }
        "/repos/{owner}/{repo}/issues/{n}/comments"
        | "/repos/{owner}/{repo}/issues/comments/{id}"
            if !body["body"].is_string() =>
        {
            problems.push("`body` is required".into());
        }
        "/repos/{owner}/{repo}/deployments" if !body["ref"].is_string() => {
            problems.push("`ref` is required".into());
        }
        "/repos/{owner}/{repo}/deployments/{id}/statuses" => {
            one_of(
                body,
                "state",
                &[
                    "error",
                    "failure",
                    "inactive",
                    "in_progress",
                    "queued",
                    "pending",
                    "success",
                ],
                true,
                &mut problems,
            );
        }
        _ => {}
    }
    problems
}

impl Respond for FakeGithub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mode = *self.mode.lock().unwrap();
        let mut state = self.state.lock().unwrap();
        let method = request.method.to_string();
        let path = request.url.path().to_string();
        let raw_body = String::from_utf8_lossy(&request.body).into_owned();
        let body: Value = serde_json::from_str(&raw_body).unwrap_or(Value::Null);
        let route = routes()
            .into_iter()
            .find(|r| r.method == method && r.pattern.is_match(&path));
        let mut problems = Vec::new();
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        if header("accept") != "application/vnd.github+json" {
            problems.push("Accept must be application/vnd.github+json".to_string());
        }
        if header("x-github-api-version") != "2022-11-28" {
            problems.push("X-GitHub-Api-Version must be 2022-11-28".into());
        }
        if header("user-agent").is_empty() {
            problems.push("a User-Agent is required".into());
        }
        let template = route.as_ref().map(|r| r.template).unwrap_or("?");
        if route.is_none() {
            problems.push(format!("no such endpoint: {method} {path}"));
        }
        let app_route = template.starts_with("/app/") || template.ends_with("/installation");
        if !app_route && header("authorization") != format!("Bearer {TOKEN}") {
            problems.push("Authorization must be `Bearer <token>`".into());
        }
        if matches!(method.as_str(), "POST" | "PATCH") && !app_route {
            if !header("content-type").starts_with("application/json") {
                problems.push("a JSON body needs Content-Type: application/json".into());
            }
            problems.extend(check_body(template, &body));
        }
        // GitHub's own description: operation, parameters, body.
        let openapi = GithubOpenApi::get();
        let mut described = None;
        if let Some(api) = openapi {
            let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
            let sent = (!request.body.is_empty()).then_some(&body);
            match api.check(&method, &path, &query, sent) {
                Ok(matched) => described = Some(matched.template),
                Err(found) => problems.extend(found.into_iter().map(|p| format!("OpenAPI: {p}"))),
            }
        }
        state.calls.push(Call {
            method: method.clone(),
            route: template.to_string(),
            path: path.clone(),
            body: body.clone(),
            raw_body,
        });
        if !problems.is_empty() {
            state
                .violations
                .extend(problems.iter().map(|p| format!("{method} {path}: {p}")));
            return ResponseTemplate::new(422)
                .set_body_json(json!({ "message": problems.join("; ") }));
        }
        match mode {
            Mode::ServerError => {
                return ResponseTemplate::new(500)
                    .set_body_json(json!({ "message": "Server Error" }));
            }
            Mode::Unauthorized => {
                return ResponseTemplate::new(401).set_body_json(json!({
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest"
                }));
            }
            Mode::Slow => {
                return ResponseTemplate::new(200)
                    .set_body_json(json!({}))
                    .set_delay(Duration::from_secs(3));
            }
            Mode::NoChecks if template == "/repos/{owner}/{repo}/check-runs" => {
                return ResponseTemplate::new(403).set_body_json(json!({
                    "message": "Resource not accessible by integration"
                }));
            }
            _ => {}
        }
        state.next_id += 1;
        let id = state.next_id;
        // Answers start from GitHub's example for the operation and status, with the fields
        // the fake keeps state for laid over; the result is checked against the response schema.
        let answer = |status: u16, overlay: Value| -> (u16, Value) {
            let mut value = match (openapi, &described) {
                (Some(api), Some(template)) => api
                    .example(&method, template, status)
                    .unwrap_or_else(|| json!({})),
                _ => json!({}),
            };
            overlay_json(&mut value, overlay);
            (status, value)
        };
        let example_item = |status: u16| -> Value {
            match (openapi, &described) {
                (Some(api), Some(template)) => api
                    .example(&method, template, status)
                    .and_then(|list| list.get(0).cloned())
                    .unwrap_or_else(|| json!({})),
                _ => json!({}),
            }
        };
        let mut link = None;
        let (status, value) = match (method.as_str(), template) {
            ("POST", "/repos/{owner}/{repo}/check-runs") => {
                state.check_runs.push((id, body.clone()));
                answer(
                    201,
                    json!({
                        "id": id,
                        "html_url": format!("https://github.com/o/r/runs/{id}"),
                        "external_id": body["external_id"],
                        "head_sha": body["head_sha"],
                        "name": body["name"],
                    }),
                )
            }
            ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs") => {
                let runs: Vec<Value> = state
                    .check_runs
                    .iter()
                    .map(|(id, run)| {
                        let mut item = match (openapi, &described) {
                            (Some(api), Some(template)) => api
                                .example(&method, template, 200)
                                .and_then(|list| list.pointer("/check_runs/0").cloned())
                                .unwrap_or_else(|| json!({})),
                            _ => json!({}),
                        };
                        overlay_json(
                            &mut item,
                            json!({"id": id, "external_id": run["external_id"], "head_sha": run["head_sha"], "html_url": format!("https://github.com/o/r/runs/{id}")}),
                        );
                        item
                    })
                    .collect();
                answer(
                    200,
                    json!({ "total_count": runs.len(), "check_runs": runs }),
                )
            }
            ("GET", "/repos/{owner}/{repo}/issues/{n}/comments") => {
                let page: usize = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "page")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(1);
                // Two comments per page, so the search has to follow `Link: rel="next"`.
                let all: Vec<Value> = state
                    .comments
                    .iter()
                    .map(|(id, body)| {
                        let mut item = example_item(200);
                        overlay_json(&mut item, json!({"id": id, "body": body}));
                        item
                    })
                    .collect();
                let chunk: Vec<Value> = all.iter().skip((page - 1) * 2).take(2).cloned().collect();
                if page * 2 < all.len() {
                    link = Some(format!("<{}?page={}>; rel=\"next\"", path, page + 1));
                }
                (200, Value::Array(chunk))
            }
            ("POST", "/repos/{owner}/{repo}/issues/{n}/comments") => {
                let text = body["body"].as_str().unwrap_or_default().to_string();
                state.comments.push((id, text.clone()));
                answer(201, json!({ "id": id, "body": text }))
            }
            ("PATCH", "/repos/{owner}/{repo}/issues/comments/{id}") => {
                let target: u64 = path.rsplit('/').next().unwrap().parse().unwrap();
                let text = body["body"].as_str().unwrap_or_default().to_string();
                match state.comments.iter_mut().find(|(id, _)| *id == target) {
                    Some(comment) => {
                        comment.1 = text.clone();
                        answer(200, json!({ "id": target, "body": text }))
                    }
                    None => (404, json!({"message": "Not Found"})),
                }
            }
            ("GET", "/repos/{owner}/{repo}/commits/{sha}/pulls") => {
                let sha = path.split('/').nth(5).unwrap_or_default().to_string();
                let merged: Vec<Value> = state
                    .merged_pulls
                    .iter()
                    .filter(|(_, merge_sha, _)| *merge_sha == sha)
                    .map(|(number, merge_sha, head)| {
                        let mut item = example_item(200);
                        overlay_json(
                            &mut item,
                            json!({"number": number, "merge_commit_sha": merge_sha, "merged_at": "2026-01-01T00:00:00Z", "state": "closed"}),
                        );
                        item["head"]["sha"] = json!(head);
                        item
                    })
                    .collect();
                (200, Value::Array(merged))
            }
            ("GET", "/repos/{owner}/{repo}/pulls/{n}") => {
                let number: u64 = path.rsplit('/').next().unwrap().parse().unwrap();
                match state.pulls.iter().find(|(n, _)| *n == number) {
                    Some((_, head)) => {
                        let (status, mut value) = answer(200, json!({ "number": number }));
                        value["head"]["sha"] = json!(head);
                        (status, value)
                    }
                    None => (404, json!({"message": "Not Found"})),
                }
            }
            ("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission") => {
                let login = path.split('/').nth(5).unwrap_or_default().to_string();
                match state.permissions.iter().find(|(user, _)| *user == login) {
                    Some((_, role)) => {
                        // The endpoint's `permission` folds `maintain` into `write` and
                        // `triage` into `read`; `role_name` keeps them.
                        let permission = match role.as_str() {
                            "maintain" => "write",
                            "triage" => "read",
                            other => other,
                        };
                        let (status, mut value) =
                            answer(200, json!({ "permission": permission, "role_name": role }));
                        value["user"]["login"] = json!(login);
                        (status, value)
                    }
                    None => (404, json!({"message": "Not Found"})),
                }
            }
            ("POST", "/repos/{owner}/{repo}/issues/comments/{id}/reactions") => {
                let comment: u64 = path.split('/').nth(6).unwrap().parse().unwrap();
                let content = body["content"].as_str().unwrap_or_default().to_string();
                state.reactions.push((comment, content.clone()));
                answer(201, json!({ "id": id, "content": content }))
            }
            ("GET", "/repos/{owner}/{repo}/installation") => answer(200, json!({ "id": 99 })),
            ("POST", "/app/installations/{id}/access_tokens") => answer(
                201,
                json!({ "token": TOKEN, "expires_at": "2099-01-01T00:00:00Z" }),
            ),
            _ => answer(
                if method == "PATCH" { 200 } else { 201 },
                json!({ "id": id }),
            ),
        };
        if let (Some(api), Some(template)) = (openapi, &described)
            && status < 300
        {
            for problem in api.check_answer(&method, template, status, &value) {
                state
                    .violations
                    .push(format!("the fake's answer to {method} {path}: {problem}"));
            }
        }
        let mut response = ResponseTemplate::new(status).set_body_json(value);
        if let Some(link) = link {
            response = response.insert_header("link", link.as_str());
        }
        response
    }
}

/// Lay `overlay`'s fields over `base` (objects; one level).
fn overlay_json(base: &mut Value, overlay: Value) {
    match (base.as_object_mut(), overlay) {
        (Some(base), Value::Object(fields)) => base.extend(fields),
        (_, overlay) => *base = overlay,
    }
}

pub(crate) struct Fake {
    pub(crate) server: MockServer,
    pub(crate) state: Arc<Mutex<State>>,
    mode: Arc<Mutex<Mode>>,
}

impl Fake {
    pub(crate) async fn start(mode: Mode) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let mode = Arc::new(Mutex::new(mode));
        Mock::given(any())
            .respond_with(FakeGithub {
                state: state.clone(),
                mode: mode.clone(),
            })
            .mount(&server)
            .await;
        Self {
            server,
            state,
            mode,
        }
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub(crate) fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state.lock().unwrap().calls)
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What a run of the binary left.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) output_file: String,
    pub(crate) summary_file: String,
    pub(crate) elapsed: Duration,
}

/// Run `rollout-runner simulate EXAMPLE --report github` as in a GitHub Actions job on a pull
/// request, against the fake at `api`.
pub(crate) async fn simulate_github(example: &str, api: &str, extra: &[&str]) -> Run {
    simulate_github_with(example, api, extra, &[]).await
}

/// [`simulate_github`] with more (or other) environment variables: an event's.
pub(crate) async fn simulate_github_with(
    example: &str,
    api: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let summary = dir.path().join("summary");
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
    command
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REF", "refs/pull/5/merge")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_ID", "77")
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .arg("simulate")
        .arg(example)
        .args(["--report", "github", "--github-api-url", api])
        .args([
            "--report-backoff",
            "10ms",
            "--report-timeout",
            "300ms",
            "--report-flush-timeout",
            "4s",
        ])
        .args(extra)
        .envs(env.iter().copied());
    let start = Instant::now();
    let result = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    Run {
        code: result.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&result.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&result.stderr).into_owned(),
        output_file: std::fs::read_to_string(&output).unwrap_or_default(),
        summary_file: std::fs::read_to_string(&summary).unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

/// `METHOD route` of each call.
fn sequence(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.route))
        .collect()
}

/// The sequence with runs of the same call collapsed to `call ×n`.
fn collapsed(calls: &[Call]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for call in sequence(calls) {
        match out.last_mut() {
            Some((last, n)) if *last == call => *n += 1,
            _ => out.push((call, 1)),
        }
    }
    out.into_iter()
        .map(|(call, n)| {
            if n == 1 {
                call
            } else {
                format!("{call} ×{n}")
            }
        })
        .collect()
}

fn assert_no_secret(run: &Run, calls: &[Call]) {
    for (what, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("$GITHUB_OUTPUT", &run.output_file),
        ("$GITHUB_STEP_SUMMARY", &run.summary_file),
    ] {
        assert!(!text.contains(TOKEN), "the token leaked into {what}");
    }
    for call in calls {
        assert!(
            !call.raw_body.contains(TOKEN),
            "the token leaked into a request body: {}",
            call.path
        );
    }
}

fn count(calls: &[Call], method: &str, route: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.method == method && c.route == route)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_release_makes_exactly_the_expected_calls() {
    let fake = Fake::start(Mode::Normal).await;
    let run = simulate_github(
        "examples/canary-analysis-fails",
        &fake.server.uri(),
        &["--environment", "staging"],
    )
    .await;
    assert_eq!(
        run.code, 1,
        "the release is aborted: exit 1\n{}",
        run.stderr
    );
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let calls = fake.take_calls();
    insta::assert_snapshot!("aborted_call_sequence", collapsed(&calls).join("\n"));

    assert_eq!(count(&calls, "POST", "/repos/{owner}/{repo}/check-runs"), 1);
    assert_eq!(
        count(&calls, "POST", "/repos/{owner}/{repo}/issues/{n}/comments"),
        1
    );
    assert_eq!(
        count(&calls, "POST", "/repos/{owner}/{repo}/deployments"),
        1
    );
    let patches: Vec<&Call> = calls
        .iter()
        .filter(|c| c.route == "/repos/{owner}/{repo}/check-runs/{id}")
        .collect();
    assert!(!patches.is_empty());
    for patch in &patches[..patches.len() - 1] {
        assert_eq!(patch.body["status"], "in_progress");
    }
    let last = patches.last().unwrap();
    assert_eq!(last.body["status"], "completed");
    assert_eq!(last.body["conclusion"], "failure");
    let annotations = last.body["output"]["annotations"].as_array().unwrap();
    assert_eq!(annotations.len(), 2, "{annotations:#?}");
    assert_eq!(
        annotations[0]["path"],
        "examples/canary-analysis-fails/analysis.yaml"
    );
    assert_eq!(
        annotations[0]["start_line"], 15,
        "the successCondition line"
    );
    assert_eq!(
        annotations[1]["path"],
        "examples/canary-analysis-fails/rollout.yaml"
    );
    let states: Vec<&str> = calls
        .iter()
        .filter(|c| c.route == "/repos/{owner}/{repo}/deployments/{id}/statuses")
        .map(|c| c.body["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["in_progress", "failure"]);
    insta::assert_snapshot!(
        "aborted_check_summary",
        last.body["output"]["summary"].as_str().unwrap()
    );
    let comments = fake.state.lock().unwrap().comments.clone();
    assert_eq!(comments.len(), 1);
    insta::assert_snapshot!("aborted_pr_comment", comments[0].1);

    // Actions integration: outputs, summary, error annotations.
    assert!(
        run.output_file.contains("verdict=aborted\n"),
        "{}",
        run.output_file
    );
    assert!(
        run.output_file
            .contains("check-url=https://github.com/o/r/runs/"),
        "{}",
        run.output_file
    );
    assert!(
        run.output_file.contains("phase=Degraded\n"),
        "{}",
        run.output_file
    );
    assert!(
        run.output_file.contains("revision=2\n"),
        "{}",
        run.output_file
    );
    assert!(
        run.summary_file
            .contains("## ❌ Release `default/checkout` aborted")
    );
    assert!(
        run.stderr
            .contains("::error file=examples/canary-analysis-fails/analysis.yaml,line=15"),
        "{}",
        run.stderr
    );
    assert_no_secret(&run, &calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_release_and_a_second_run_edit_the_same_comment() {
    let fake = Fake::start(Mode::Normal).await;
    // Someone else's comments come first, so the search has to page.
    {
        let mut state = fake.state.lock().unwrap();
        for i in 0..3 {
            state.comments.push((1000 + i, format!("LGTM {i}")));
        }
    }
    let run = simulate_github("examples/canary-analysis-passes", &fake.server.uri(), &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let first = fake.take_calls();
    assert_eq!(
        count(&first, "POST", "/repos/{owner}/{repo}/issues/{n}/comments"),
        1
    );
    let last = first
        .iter()
        .rfind(|c| c.route == "/repos/{owner}/{repo}/check-runs/{id}")
        .unwrap();
    assert_eq!(last.body["conclusion"], "success");
    assert!(
        last.body["output"]["annotations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    insta::assert_snapshot!(
        "promoted_check_summary",
        last.body["output"]["summary"].as_str().unwrap()
    );
    let comment = fake.state.lock().unwrap().comments[3].1.clone();
    insta::assert_snapshot!("promoted_pr_comment", comment);
    assert!(run.output_file.contains("verdict=promoted\n"));
    assert_no_secret(&run, &first);

    let second = simulate_github("examples/canary-analysis-passes", &fake.server.uri(), &[]).await;
    assert_eq!(second.code, 0);
    let calls = fake.take_calls();
    assert_eq!(
        count(&calls, "POST", "/repos/{owner}/{repo}/issues/{n}/comments"),
        0,
        "no second comment"
    );
    assert!(
        count(
            &calls,
            "PATCH",
            "/repos/{owner}/{repo}/issues/comments/{id}"
        ) >= 1
    );
    assert_eq!(
        fake.state.lock().unwrap().comments.len(),
        4,
        "still one comment of ours"
    );
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_failures_never_change_the_exit_code() {
    for (mode, label) in [
        (Mode::ServerError, "500"),
        (Mode::Unauthorized, "401"),
        (Mode::Slow, "timeout"),
    ] {
        let fake = Fake::start(mode).await;
        for (example, expected) in [
            ("examples/canary-analysis-fails", 1),
            ("examples/canary-analysis-passes", 0),
        ] {
            let run = simulate_github(example, &fake.server.uri(), &[]).await;
            assert_eq!(run.code, expected, "{label}: {example}\n{}", run.stderr);
            assert!(
                run.stderr.contains("warning: github:"),
                "{label}: the failure is reported\n{}",
                run.stderr
            );
            assert!(
                run.elapsed < Duration::from_secs(15),
                "{label}: bounded ({:?})",
                run.elapsed
            );
            let calls = fake.take_calls();
            assert_no_secret(&run, &calls);
            if mode == Mode::Unauthorized {
                assert!(
                    calls.len() <= 2,
                    "401: stop calling after a bad token ({} calls)",
                    calls.len()
                );
            }
            if mode == Mode::Slow {
                assert!(run.stderr.contains("timed out"), "{}", run.stderr);
            }
        }
        assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_checks_falls_back_to_a_commit_status() {
    let fake = Fake::start(Mode::NoChecks).await;
    let run = simulate_github("examples/canary-analysis-fails", &fake.server.uri(), &[]).await;
    assert_eq!(run.code, 1);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let calls = fake.take_calls();
    assert_eq!(count(&calls, "POST", "/repos/{owner}/{repo}/check-runs"), 1);
    assert_eq!(
        count(&calls, "PATCH", "/repos/{owner}/{repo}/check-runs/{id}"),
        0
    );
    let states: Vec<&str> = calls
        .iter()
        .filter(|c| c.route == "/repos/{owner}/{repo}/statuses/{sha}")
        .map(|c| c.body["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"pending"));
    assert_eq!(states.last(), Some(&"failure"));
    for call in calls
        .iter()
        .filter(|c| c.route == "/repos/{owner}/{repo}/statuses/{sha}")
    {
        assert!(call.body["description"].as_str().unwrap().chars().count() <= 140);
        assert_eq!(call.body["context"], "rollout default/checkout");
    }
    assert!(
        run.stderr.contains("commit status instead"),
        "{}",
        run.stderr
    );
    fake.set_mode(Mode::Normal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_step_canary_counts_its_calls() {
    let fake = Fake::start(Mode::Normal).await;
    let run = simulate_github(
        "tests/fixtures/report/canary-ten-steps",
        &fake.server.uri(),
        &["--environment", "production"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let calls = fake.take_calls();
    insta::assert_snapshot!("ten_step_call_sequence", collapsed(&calls).join("\n"));
    assert!(
        run.stderr
            .contains(&format!("reported to github: {} API calls", calls.len())),
        "{}",
        run.stderr
    );
}

#[test]
fn help_never_shows_tokens() {
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(["simulate", "--help"])
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITLAB_TOKEN", TOKEN)
        .env("ROLLOUT_RUNNER_WEBHOOK_SECRET", TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("--github-token"));
    assert!(!text.contains(TOKEN));
}

/// The GitHub API server's judge refuses what GitHub would: each request below breaks GitHub's
/// OpenAPI description in one way, and the request the reporter really sends passes.
#[test]
fn requests_github_would_reject_are_refused() {
    let Some(api) = GithubOpenApi::get() else {
        return;
    };
    let query = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let ok = api.check(
        "POST",
        "/repos/o/r/check-runs",
        &[],
        Some(
            &json!({"name": "rollout default/web", "head_sha": SHA, "status": "in_progress",
                     "output": {"title": "t", "summary": "s"}}),
        ),
    );
    assert_eq!(
        ok.unwrap().template,
        "/repos/{owner}/{repo}/check-runs",
        "a valid request passes"
    );
    /// Method, path, query, body, and words of the refusal.
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(String, String)>,
        Option<Value>,
        &'a str,
    );
    let cases: [Case; 8] = [
        (
            "POST",
            "/repos/o/r/check-runs",
            vec![],
            Some(json!({"name": "x"})),
            "\"head_sha\" is a required property",
        ),
        (
            "PATCH",
            "/repos/o/r/check-runs/1",
            vec![],
            Some(json!({"status": "completed"})),
            "body:",
        ),
        (
            "PATCH",
            "/repos/o/r/check-runs/1",
            vec![],
            Some(json!({"status": "in_progress", "conclusion": "passed"})),
            "\"passed\" is not one of",
        ),
        (
            "GET",
            "/repos/o/r/issues/5/comments",
            query(&[("per_page", "100"), ("pgae", "2")]),
            None,
            "query parameter `pgae` is not a parameter",
        ),
        (
            "GET",
            "/repos/o/r/issues/five/comments",
            vec![],
            None,
            "path parameter `issue_number`",
        ),
        (
            "GET",
            "/repos/o/r/issues/5/comments",
            query(&[("per_page", "many")]),
            None,
            "query parameter `per_page`",
        ),
        (
            "POST",
            "/repos/o/r/statuses/abc",
            vec![],
            Some(json!({"state": "ok"})),
            "\"ok\" is not one of",
        ),
        (
            "DELETE",
            "/repos/o/r/check-runs",
            vec![],
            None,
            "no operation `DELETE /repos/o/r/check-runs`",
        ),
    ];
    for (method, path, query, body, expected) in cases {
        let problems = api
            .check(method, path, &query, body.as_ref())
            .expect_err(&format!("{method} {path} {body:?} must be refused"));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{method} {path}: wanted `{expected}` in {problems:#?}"
        );
    }
}
