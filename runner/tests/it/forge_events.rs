//! The right commit from real payloads: GitHub's published example payloads
//! (`@octokit/webhooks-examples`, read from the npm cache at test time) for `push`,
//! `pull_request`, `pull_request_target`, `merge_group`, `workflow_dispatch`, `issue_comment`
//! and `deployment` go through the CI context and the reporter settings as in a GitHub Actions
//! job; then through the binary against the GitHub API server that checks every request
//! against GitHub's OpenAPI description: a pull request's check run lands on its head commit
//! (not `GITHUB_SHA`, the merge commit), a push finds the pull request merged as its commit
//! (list pull requests associated with a commit), and a comment on a pull request finds the
//! pull request's head commit.

use std::path::Path;

use rollout_runner::ci::{CiContext, GitInfo};
use rollout_runner::cli::report_args::ReportArgs;
use rollout_runner::report::github::Lookup;
use rollout_runner::settings::resolve_reports;
use serde_json::{Value, json};

use crate::forge_github::{Fake, Mode, simulate_github_with};
use crate::support::npm;

/// The merge commit GitHub checks out on pull requests: never where the reports go.
const MERGE_SHA: &str = "9999999999999999999999999999999999999999";

/// Every example payload of `event`, in the package's order.
fn examples(event: &str) -> Option<Vec<Value>> {
    let prefix = npm::prefix()?;
    let index = npm::read_json(
        &prefix,
        "@octokit/webhooks-examples/api.github.com/index.json",
    );
    let found = index
        .as_array()
        .expect("the index is a list")
        .iter()
        .find(|entry| entry["name"] == event)
        .unwrap_or_else(|| panic!("no `{event}` in @octokit/webhooks-examples"));
    let list = found["examples"].as_array().unwrap().clone();
    assert!(!list.is_empty(), "`{event}` has examples");
    Some(list)
}

fn text<'a>(payload: &'a Value, pointer: &str) -> &'a str {
    payload
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("the payload has no {pointer}"))
}

/// The environment of an Actions job for `event` with `payload` written to `dir`.
fn job_env(dir: &Path, event: &str, payload: &Value) -> Vec<(String, String)> {
    let path = dir.join(format!("{event}.json"));
    std::fs::write(&path, serde_json::to_vec(payload).unwrap()).unwrap();
    // What Actions sets `GITHUB_REF` to for the event.
    let reference = match event {
        "pull_request" => format!("refs/pull/{}/merge", payload["pull_request"]["number"]),
        // The base branch: the pull request is known from the payload alone.
        "pull_request_target" => format!("refs/heads/{}", text(payload, "/pull_request/base/ref")),
        "push" | "workflow_dispatch" => text(payload, "/ref").to_string(),
        "merge_group" => text(payload, "/merge_group/head_ref").to_string(),
        _ => "refs/heads/main".to_string(),
    };
    vec![
        ("GITHUB_REF".into(), reference),
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("GITHUB_REPOSITORY".into(), "o/r".into()),
        ("GITHUB_SHA".into(), MERGE_SHA.into()),
        ("GITHUB_EVENT_NAME".into(), event.into()),
        ("GITHUB_EVENT_PATH".into(), path.display().to_string()),
        ("GITHUB_TOKEN".into(), "t".into()),
    ]
}

fn context(env: &[(String, String)]) -> CiContext {
    let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    CiContext::from_parts(lookup, GitInfo::default())
}

/// The GitHub reporter's configuration for `ci` (`--report github`, no flags).
fn github_config(
    env: &[(String, String)],
    ci: &CiContext,
) -> rollout_runner::report::github::GithubConfig {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        report: ReportArgs,
    }
    let args = Cli::parse_from(["x", "--report", "github"]).report;
    let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    resolve_reports(&args, lookup, ci)
        .unwrap()
        .config
        .github
        .expect("the GitHub reporter is configured")
}

#[test]
fn pull_request_events_report_on_the_head_commit() {
    let Some(examples) = examples("pull_request") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // `pull_request_target` sends the same payload (GitHub: "the same as the pull_request
    // event"); it has no examples of its own in the package.
    for event in ["pull_request", "pull_request_target"] {
        for payload in &examples {
            let env = job_env(dir.path(), event, payload);
            let ci = context(&env);
            let what = format!("{event} {}", payload["action"]);
            let head = text(payload, "/pull_request/head/sha");
            assert_eq!(ci.head_sha.as_deref(), Some(head), "{what}");
            assert_eq!(
                ci.commit.as_deref(),
                Some(MERGE_SHA),
                "{what}: the checkout"
            );
            assert_ne!(head, MERGE_SHA);
            assert_eq!(ci.pr, payload["pull_request"]["number"].as_u64(), "{what}");
            assert_eq!(
                ci.branch.as_deref(),
                Some(text(payload, "/pull_request/head/ref")),
                "{what}"
            );
            assert_eq!(
                ci.base_branch.as_deref(),
                Some(text(payload, "/pull_request/base/ref")),
                "{what}"
            );
            let config = github_config(&env, &ci);
            assert_eq!(config.sha, head, "{what}: the check run's commit");
            assert_eq!(config.pr, ci.pr, "{what}");
            assert_eq!(config.lookup, Lookup::None, "{what}");
        }
    }
}

#[test]
fn push_events_report_on_the_pushed_commit_and_look_up_the_merged_pull_request() {
    let Some(examples) = examples("push") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for payload in &examples {
        let env = job_env(dir.path(), "push", payload);
        let ci = context(&env);
        let after = text(payload, "/after");
        let reference = text(payload, "/ref");
        let what = format!("push to {reference} ({after})");
        if after.bytes().all(|b| b == b'0') {
            // The ref was deleted: no new commit; the checkout's stands.
            assert_eq!(ci.head_sha.as_deref(), Some(MERGE_SHA), "{what}");
        } else {
            assert_eq!(ci.head_sha.as_deref(), Some(after), "{what}");
        }
        if let Some(branch) = reference.strip_prefix("refs/heads/") {
            assert_eq!(ci.branch.as_deref(), Some(branch), "{what}");
            assert_eq!(ci.tag, None, "{what}");
            assert_eq!(github_config(&env, &ci).lookup, Lookup::MergedPullRequest);
        } else {
            let tag = reference.strip_prefix("refs/tags/").unwrap();
            assert_eq!(ci.tag.as_deref(), Some(tag), "{what}");
            assert_eq!(ci.branch, None, "{what}");
            assert_eq!(github_config(&env, &ci).lookup, Lookup::None, "{what}");
        }
        assert_eq!(ci.pr, None, "{what}");
    }
}

#[test]
fn merge_group_workflow_dispatch_and_deployment_events() {
    let Some(merge_groups) = examples("merge_group") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for payload in &merge_groups {
        let env = job_env(dir.path(), "merge_group", payload);
        let ci = context(&env);
        let head = text(payload, "/merge_group/head_sha");
        assert_eq!(ci.head_sha.as_deref(), Some(head));
        assert_eq!(github_config(&env, &ci).sha, head);
        let head_ref = text(payload, "/merge_group/head_ref");
        assert_eq!(
            ci.branch.as_deref(),
            head_ref.strip_prefix("refs/heads/"),
            "the merge queue's branch"
        );
        assert_eq!(
            ci.base_branch.as_deref(),
            text(payload, "/merge_group/base_ref").strip_prefix("refs/heads/")
        );
        assert_eq!(ci.pr, None);
    }
    for payload in &examples("workflow_dispatch").unwrap() {
        let env = job_env(dir.path(), "workflow_dispatch", payload);
        let ci = context(&env);
        let reference = text(payload, "/ref");
        assert_eq!(ci.branch.as_deref(), reference.strip_prefix("refs/heads/"));
        // The payload names no commit: the one the run checked out.
        assert_eq!(github_config(&env, &ci).sha, MERGE_SHA);
        assert_eq!(github_config(&env, &ci).lookup, Lookup::None);
    }
    for payload in &examples("deployment").unwrap() {
        let env = job_env(dir.path(), "deployment", payload);
        let ci = context(&env);
        let sha = text(payload, "/deployment/sha");
        assert_eq!(ci.head_sha.as_deref(), Some(sha));
        assert_eq!(github_config(&env, &ci).sha, sha);
    }
}

#[test]
fn issue_comments_name_the_pull_request_only_when_on_one() {
    let Some(examples) = examples("issue_comment") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for payload in &examples {
        // The published examples are comments on an issue: no pull request.
        assert!(payload["issue"].get("pull_request").is_none());
        let env = job_env(dir.path(), "issue_comment", payload);
        let ci = context(&env);
        assert_eq!(ci.pr, None, "a comment on an issue");
        assert_eq!(github_config(&env, &ci).lookup, Lookup::None);

        // The same comment on a pull request: GitHub adds `issue.pull_request`.
        let on_pr = on_pull_request(payload);
        let env = job_env(dir.path(), "issue_comment", &on_pr);
        let ci = context(&env);
        assert_eq!(ci.pr, payload["issue"]["number"].as_u64());
        let config = github_config(&env, &ci);
        assert_eq!(
            config.lookup,
            Lookup::PullRequestHead,
            "the head is asked of the API"
        );
    }
}

/// `payload` (an issue comment) as GitHub sends it for a comment on a pull request.
fn on_pull_request(payload: &Value) -> Value {
    let mut on_pr = payload.clone();
    let number = payload["issue"]["number"].as_u64().unwrap();
    let repo = text(payload, "/repository/full_name");
    on_pr["issue"]["pull_request"] = json!({
        "url": format!("https://api.github.com/repos/{repo}/pulls/{number}"),
        "html_url": format!("https://github.com/{repo}/pull/{number}"),
        "diff_url": format!("https://github.com/{repo}/pull/{number}.diff"),
        "patch_url": format!("https://github.com/{repo}/pull/{number}.patch"),
        "merged_at": null,
    });
    on_pr
}

fn env_pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter()
        .filter(|(k, _)| k != "GITHUB_TOKEN" && k != "GITHUB_REPOSITORY")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_each_event_on_the_right_commit_and_pull_request() {
    let (Some(pulls), Some(pushes), Some(comments)) = (
        examples("pull_request"),
        examples("push"),
        examples("issue_comment"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A fresh server per event: its comments are not kept per pull request.
    let fake = Fake::start(Mode::Normal).await;
    let api = fake.server.uri();

    // A pull request: the check run on its head, the comment on its number.
    let opened = pulls.iter().find(|p| p["action"] == "opened").unwrap();
    let env = job_env(dir.path(), "pull_request", opened);
    let run = simulate_github_with(
        "examples/canary-analysis-passes",
        &api,
        &[],
        &env_pairs(&env),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let calls = fake.take_calls();
    let create = calls
        .iter()
        .find(|c| c.method == "POST" && c.route == "/repos/{owner}/{repo}/check-runs")
        .expect("a check run");
    assert_eq!(
        create.body["head_sha"],
        opened["pull_request"]["head"]["sha"]
    );
    let number = opened["pull_request"]["number"].as_u64().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c.method == "POST" && c.path == format!("/repos/o/r/issues/{number}/comments")),
        "the comment goes to pull request #{number}"
    );

    // A push to a branch: the pull request merged as the pushed commit gets the comment.
    let push = pushes
        .iter()
        .find(|p| {
            p["ref"] == "refs/heads/master"
                && p["after"] != "0000000000000000000000000000000000000000"
        })
        .unwrap();
    let after = text(push, "/after").to_string();
    let fake = Fake::start(Mode::Normal).await;
    let api = fake.server.uri();
    fake.state.lock().unwrap().merged_pulls.push((
        42,
        after.clone(),
        "1111111111111111111111111111111111111111".into(),
    ));
    let env = job_env(dir.path(), "push", push);
    let run = simulate_github_with(
        "examples/canary-analysis-passes",
        &api,
        &[],
        &env_pairs(&env),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let calls = fake.take_calls();
    assert_eq!(calls[0].route, "/repos/{owner}/{repo}/commits/{sha}/pulls");
    assert_eq!(calls[0].path, format!("/repos/o/r/commits/{after}/pulls"));
    let create = calls
        .iter()
        .find(|c| c.method == "POST" && c.route == "/repos/{owner}/{repo}/check-runs")
        .unwrap();
    assert_eq!(create.body["head_sha"], after.as_str(), "the pushed commit");
    assert!(
        calls
            .iter()
            .any(|c| c.method == "POST" && c.path == "/repos/o/r/issues/42/comments"),
        "the merged pull request gets the comment: {:#?}",
        calls.iter().map(|c| &c.path).collect::<Vec<_>>()
    );

    // A push no pull request was merged as: no comment, and a note says why.
    let other = "2222222222222222222222222222222222222222";
    let mut lonely = push.clone();
    lonely["after"] = json!(other);
    let env = job_env(dir.path(), "push", &lonely);
    let run = simulate_github_with(
        "examples/canary-analysis-passes",
        &api,
        &[],
        &env_pairs(&env),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("no pull request was merged as commit"),
        "{}",
        run.stderr
    );
    let calls = fake.take_calls();
    assert!(!calls.iter().any(|c| c.route.contains("comments")));

    // A comment on a pull request: the check run goes on the pull request's head.
    let head = "3333333333333333333333333333333333333333";
    let comment = on_pull_request(&comments[0]);
    let fake = Fake::start(Mode::Normal).await;
    let api = fake.server.uri();
    let number = comment["issue"]["number"].as_u64().unwrap();
    fake.state.lock().unwrap().pulls.push((number, head.into()));
    let env = job_env(dir.path(), "issue_comment", &comment);
    let run = simulate_github_with(
        "examples/canary-analysis-passes",
        &api,
        &[],
        &env_pairs(&env),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    let calls = fake.take_calls();
    assert_eq!(calls[0].path, format!("/repos/o/r/pulls/{number}"));
    let create = calls
        .iter()
        .find(|c| c.method == "POST" && c.route == "/repos/{owner}/{repo}/check-runs")
        .unwrap();
    assert_eq!(create.body["head_sha"], head);
}
