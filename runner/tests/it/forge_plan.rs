//! `plan --comment` against the local GitHub and GitLab contract servers (one sticky comment,
//! created once and then edited in place), and `apply --expect-plan`, which refuses a release
//! whose plan differs before it connects to any cluster.

use std::process::Command;
use std::sync::{Arc, Mutex};

use wiremock::{Mock, MockServer, matchers::any};

use super::forge_github::{Fake, Mode, SHA, TOKEN, repo_root};
use super::forge_gitlab::{self, FakeGitlab};

const EXAMPLE: &str = "examples/canary-analysis-passes";

/// `rollout-runner ARGS` in the repository root, without any CI variables of the caller.
fn runner(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollout-runner"));
    command.current_dir(repo_root());
    for (name, _) in std::env::vars() {
        if name.starts_with("GITHUB_")
            || name.starts_with("CI_")
            || name.starts_with("GITLAB")
            || name.starts_with("ROLLOUT_RUNNER_")
            || name == "KUBECONFIG"
        {
            command.env_remove(name);
        }
    }
    command.args(args).args([
        "--report-backoff",
        "10ms",
        "--report-timeout",
        "500ms",
        "--report-flush-timeout",
        "4s",
    ]);
    command
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run(mut command: Command) -> Output {
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The hash `plan` prints last.
fn plan_hash(stdout: &str) -> String {
    let re = regex::Regex::new(r"sha256:[0-9a-f]{64}").unwrap();
    re.find_iter(stdout)
        .last()
        .expect("a hash in the plan")
        .as_str()
        .to_string()
}

fn github_plan(api: &str, extra: &[&str]) -> Command {
    let mut args = vec!["plan", EXAMPLE, "--comment", "--github-api-url", api];
    args.extend_from_slice(extra);
    let mut command = runner(&args);
    command
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_SHA", SHA)
        .env("GITHUB_REF", "refs/pull/5/merge")
        .env("GITHUB_TOKEN", TOKEN);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_comment_is_one_sticky_github_comment_edited_in_place() {
    let fake = Fake::start(Mode::Normal).await;
    fake.state
        .lock()
        .unwrap()
        .comments
        .push((900, "someone else's comment".into()));
    let first = run(github_plan(&fake.server.uri(), &[])).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let hash = plan_hash(&first.stdout);
    {
        let state = fake.state.lock().unwrap();
        assert!(state.violations.is_empty(), "{:#?}", state.violations);
        assert_eq!(state.comments.len(), 2, "one comment of ours");
        let body = &state.comments[1].1;
        assert!(body.starts_with("<!-- rollout-runner:plan -->"), "{body}");
        assert!(body.contains("### Release plan for `default/checkout`"));
        assert!(body.contains(&format!("--expect-plan {hash}")), "{body}");
        assert!(!body.contains(TOKEN));
    }
    let calls = fake.take_calls();
    let posts = calls
        .iter()
        .filter(|c| c.method == "POST" && c.route.ends_with("/comments"))
        .count();
    assert_eq!(posts, 1);

    // A second run (say, after a push) edits the same comment; no second one.
    let second = run(github_plan(&fake.server.uri(), &["--output", "markdown"])).await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let calls = fake.take_calls();
    assert!(calls.iter().all(|c| c.method != "POST"), "no new comment");
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.method == "PATCH" && c.route.contains("/issues/comments/"))
            .count(),
        1
    );
    {
        let state = fake.state.lock().unwrap();
        assert_eq!(state.comments.len(), 2, "still one comment of ours");
        assert_eq!(state.comments[0].1, "someone else's comment");
        assert!(state.violations.is_empty(), "{:#?}", state.violations);
    }
    for text in [&first.stdout, &first.stderr, &second.stdout, &second.stderr] {
        assert!(!text.contains(TOKEN), "the token leaked");
    }
    // An environment gets its own comment.
    let staging = run(github_plan(
        &fake.server.uri(),
        &["--environment", "staging"],
    ))
    .await;
    assert_eq!(staging.code, Some(0), "{}", staging.stderr);
    let state = fake.state.lock().unwrap();
    assert_eq!(state.comments.len(), 3);
    assert!(
        state.comments[2]
            .1
            .starts_with("<!-- rollout-runner:plan environment=staging -->")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_comment_failures_warn_and_keep_exit_code_0() {
    let fake = Fake::start(Mode::ServerError).await;
    let out = run(github_plan(&fake.server.uri(), &[])).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("plan comment on github"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("sha256:"));
    assert!(!out.stderr.contains(TOKEN) && !out.stdout.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_comment_is_one_sticky_gitlab_note_edited_in_place() {
    let server = MockServer::start().await;
    let state = Arc::new(Mutex::new(forge_gitlab::State::default()));
    Mock::given(any())
        .respond_with(FakeGitlab(state.clone()))
        .mount(&server)
        .await;
    for _ in 0..2 {
        let mut command = runner(&["plan", EXAMPLE, "--comment"]);
        command
            .env("GITLAB_CI", "true")
            .env("CI_COMMIT_SHA", forge_gitlab::SHA)
            .env("CI_MERGE_REQUEST_IID", "9")
            .env("CI_PROJECT_ID", "42")
            .env("CI_API_V4_URL", format!("{}/api/v4", server.uri()))
            .env("GITLAB_TOKEN", forge_gitlab::TOKEN);
        let out = run(command).await;
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(!out.stderr.contains(forge_gitlab::TOKEN));
    }
    let state = state.lock().unwrap();
    assert!(state.violations.is_empty(), "{:#?}", state.violations);
    assert_eq!(state.notes.len(), 1, "one sticky note across both runs");
    assert!(state.notes[0].1.starts_with("<!-- rollout-runner:plan -->"));
    assert!(state.notes[0].1.contains("sha256:"));
    let methods: Vec<&str> = state
        .calls
        .iter()
        .filter(|(_, p, _)| p.contains("/notes"))
        .map(|(m, _, _)| m.as_str())
        .collect();
    assert_eq!(methods, ["GET", "POST", "GET", "PUT"]);
    assert!(
        state
            .calls
            .iter()
            .all(|(_, p, _)| !p.contains("/statuses/"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refuses_a_plan_it_was_not_given_before_connecting() {
    let plan = run(runner(&["plan", EXAMPLE])).await;
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    let hash = plan_hash(&plan.stdout);
    let wrong = format!("sha256:{}", "0".repeat(64));
    // No cluster anywhere: a kubeconfig that does not exist would fail the connection, so
    // refusing with exit 2 and this message proves the check comes first.
    let mut apply = runner(&["apply", EXAMPLE, "--wait", "--expect-plan", &wrong]);
    apply.env("KUBECONFIG", "/nonexistent/kubeconfig");
    let out = run(apply).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains(&hash), "{}", out.stderr);
    assert!(out.stderr.contains(&wrong), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was applied"), "{}", out.stderr);
    assert!(!out.stderr.contains("kubeconfig"), "{}", out.stderr);

    // The matching hash passes the check and goes on to the cluster (which is missing here).
    let mut apply = runner(&["apply", EXAMPLE, "--wait", "--expect-plan", &hash]);
    apply.env("KUBECONFIG", "/nonexistent/kubeconfig");
    let out = run(apply).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        !out.stderr.contains("the plan of the inputs"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("cluster") || out.stderr.contains("kubeconfig"),
        "{}",
        out.stderr
    );
}
