//! Real CI runners, locally: the example GitHub workflows run by nektos/act (host mode, an
//! independent implementation of the Actions runner) with the action itself, and the GitLab
//! example run by gitlab-ci-local (shell executor), both against the test control plane and
//! the tests' forge servers: the GitHub one validates every request against GitHub's OpenAPI
//! description (`forge_github`), the GitLab one holds GitLab's contract (`forge_gitlab`).
//!
//! The workflows and the pipeline are the files in `examples/`, copied as a user would (the
//! only edits: the GitLab component is included at the commit under test, and the
//! namespaces are the tests'). Nothing comes from the internet: act takes the action from
//! this checkout (`--local-repository`), and the action installs the binary under test from a
//! local release mirror (`ROLLOUT_RUNNER_RELEASE_URL`) in the release archive layout, checksum
//! checked, as it would install a release.
//!
//! The tools come from `tests/platforms/build act npm` (`ROLLOUT_RUNNER_E2E_ACT`, and
//! `ROLLOUT_RUNNER_NPM` for gitlab-ci-local); without them the tests skip with a message, or
//! fail when `ROLLOUT_RUNNER_E2E_REQUIRED=1` or `CI=true`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Api;
use rollout_runner::crd::{Rollout, RolloutPhase};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::forge_github::{Call, Fake, Mode, TOKEN, repo_root};
use crate::forge_gitlab::{self, FakeGitlab};
use crate::support::cluster::{self, TestNamespace};
use crate::support::npm;

/// act's path (`tests/platforms/build act` prints it).
const ACT_ENV: &str = "ROLLOUT_RUNNER_E2E_ACT";
/// The pull request's head commit, in the payload: where the check run must go (the job's own
/// `GITHUB_SHA` is a merge commit on GitHub, the local HEAD under act).
const HEAD_SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// The merge commit the push event carries (`after`).
const MERGE_SHA: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
/// The version the local release mirror serves: the action's checkout names it.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Every run ends well before this on an idle machine (a few seconds each).
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn required() -> bool {
    std::env::var(cluster::REQUIRED_ENV).is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| matches!(v.as_str(), "true" | "1"))
}

/// act: from `ROLLOUT_RUNNER_E2E_ACT`, else asked of `tests/platforms/build --cached act`.
#[allow(clippy::print_stderr, reason = "a skipped test says why on stderr")]
fn act() -> Option<PathBuf> {
    let found = std::env::var_os(ACT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let output = std::process::Command::new(repo_root().join("tests/platforms/build"))
                .args(["--cached", "act"])
                .output()
                .ok()?;
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .find_map(|line| line.strip_prefix("act="))
                .map(PathBuf::from)
        });
    if found.is_none() {
        assert!(
            !required(),
            "act is missing (run `tests/platforms/build act`, or set {ACT_ENV})"
        );
        eprintln!(
            "SKIPPED: act is not cached (tests/platforms/build act builds it; CI runs this test)"
        );
    }
    found
}

fn run_git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.email=ci@example.invalid", "-c", "user.name=ci"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A git repository at `dir` with what is there committed, and `origin` set to `remote`.
fn commit_all(dir: &Path, remote: &str) -> String {
    run_git(dir, &["init", "-q", "-b", "main"]);
    run_git(dir, &["add", "-A"]);
    run_git(dir, &["commit", "-qm", "deploy"]);
    run_git(dir, &["remote", "add", "origin", remote]);
    run_git(dir, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    run_git(dir, &["rev-parse", "HEAD"])
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success(), "cp {} {}", from.display(), to.display());
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `deploy/` as a user copies it from `templates/canary-basic`, with one values file per
/// environment (`values-ENV.yaml`, beside the templates; every value the templates read) and
/// a `simulate` scenario.
fn deploy_dir(dir: &Path, environments: &[(&str, &str)]) {
    let deploy = dir.join("deploy");
    for file in ["rollout.yaml.j2", "service.yaml.j2"] {
        copy(
            &repo_root().join("templates/canary-basic").join(file),
            &deploy.join(file),
        );
    }
    for (environment, namespace) in environments {
        write(
            &deploy.join(format!("values-{environment}.yaml")),
            &format!(
                "name: web\nnamespace: {namespace}\nreplicas: 2\n\
                 image: {{repository: example/web, pullPolicy: IfNotPresent}}\n\
                 containerPort: 8080\nservice: {{port: 80}}\nresources: {{requests: {{cpu: 10m}}}}\n\
                 steps:\n  - setWeight: 50\n  - pause: {{duration: 1s}}\n"
            ),
        );
    }
    write(
        &deploy.join("scenario.yaml"),
        "previousImage: example/web:1\npods:\n  readyDelay: 1s\n",
    );
}

/// What one run of a CI tool left.
struct Ran {
    code: Option<i32>,
    log: String,
    elapsed: Duration,
}

/// Run `command` with the test process's CI and cluster variables removed (host-mode steps
/// inherit the environment), `HOME` set to `home`.
async fn run_tool(mut command: tokio::process::Command, home: &Path) -> Ran {
    for (name, _) in std::env::vars() {
        if name.starts_with("GITHUB_")
            || name.starts_with("CI_")
            || name.starts_with("GITLAB")
            || name.starts_with("ROLLOUT_RUNNER_")
            || name.starts_with("RUNNER_")
            || name == "KUBECONFIG"
            || name == "CI"
        {
            command.env_remove(name);
        }
    }
    command.env("HOME", home).kill_on_drop(true);
    let started = Instant::now();
    let output = tokio::time::timeout(RUN_TIMEOUT, command.output())
        .await
        .expect("the CI run ends")
        .expect("the CI tool starts");
    Ran {
        code: output.status.code(),
        log: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        elapsed: started.elapsed(),
    }
}

/// A release mirror for the action's install step: `v{VERSION}/SHA256SUMS` and the archive
/// `rollout-runner-VERSION-x86_64-unknown-linux-musl.tar.gz` with the binary under test, laid
/// out as the release workflow lays them out.
async fn release_mirror(work: &Path) -> MockServer {
    let target = "x86_64-unknown-linux-musl";
    let name = format!("rollout-runner-{VERSION}-{target}");
    let stage = work.join("release");
    std::fs::create_dir_all(stage.join(&name)).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_rollout-runner"),
        stage.join(&name).join("rollout-runner"),
    )
    .unwrap();
    let archive = format!("{name}.tar.gz");
    let status = std::process::Command::new("tar")
        .current_dir(&stage)
        .args(["--use-compress-program=gzip -1", "-cf", &archive, &name])
        .status()
        .unwrap();
    assert!(status.success(), "tar");
    let bytes = std::fs::read(stage.join(&archive)).unwrap();
    let sums = std::process::Command::new("sha256sum")
        .current_dir(&stage)
        .arg(&archive)
        .output()
        .unwrap();
    assert!(sums.status.success(), "sha256sum");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v{VERSION}/SHA256SUMS")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(sums.stdout))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v{VERSION}/{archive}")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes))
        .mount(&server)
        .await;
    server
}

/// The action as `rollout-runner/rollout-runner/actions/github@v0` resolves: its directory and
/// the manifests that name the version (what install.sh reads), nothing else of the checkout.
fn action_checkout(dir: &Path) {
    copy(
        &repo_root().join("actions/github"),
        &dir.join("actions/github"),
    );
    copy(&repo_root().join("Cargo.toml"), &dir.join("Cargo.toml"));
    copy(
        &repo_root().join("runner/Cargo.toml"),
        &dir.join("runner/Cargo.toml"),
    );
}

/// The first example payload of `event` from `@octokit/webhooks-examples` matching `pick`.
fn payload(prefix: &Path, event: &str, pick: impl Fn(&Value) -> bool) -> Value {
    let index = npm::read_json(
        prefix,
        "@octokit/webhooks-examples/api.github.com/index.json",
    );
    index
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == event)
        .and_then(|entry| entry["examples"].as_array())
        .and_then(|list| list.iter().find(|example| pick(example)).cloned())
        .unwrap_or_else(|| panic!("no matching `{event}` example"))
}

fn count(calls: &[Call], method: &str, route: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.method == method && c.route == route)
        .count()
}

async fn phase(client: &kube::Client, ns: &str) -> Option<RolloutPhase> {
    Api::<Rollout>::namespaced(client.clone(), ns)
        .get("web")
        .await
        .ok()
        .and_then(|rollout| rollout.status)
        .and_then(|status| status.phase)
}

#[allow(
    clippy::print_stderr,
    reason = "the cost of each run, for docs/benchmarks.md"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn act_runs_the_example_workflows_with_the_action() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some(act) = act() else { return };
    let Some(prefix) = npm::prefix() else { return };
    let ns = TestNamespace::create(&client, "act").await;
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let home = work.path().join("home");
    let action = work.path().join("action");
    std::fs::create_dir_all(&home).unwrap();

    // The user's repository: the two example workflows, unchanged, and deploy/.
    for workflow in ["plan-on-pr.yml", "apply-on-merge.yml"] {
        copy(
            &repo_root().join("examples/github-workflows").join(workflow),
            &repo.join(".github/workflows").join(workflow),
        );
    }
    deploy_dir(&repo, &[("production", ns.name())]);
    commit_all(&repo, "https://github.com/o/r.git");
    action_checkout(&action);
    let mirror = release_mirror(work.path()).await;
    let github = Fake::start(Mode::Normal).await;
    let kubeconfig = std::fs::read_to_string(cluster::kubeconfig_path().unwrap()).unwrap();

    // GitHub's own example payloads, with the commits this test follows.
    let mut pull_request = payload(&prefix, "pull_request", |e| e["action"] == "opened");
    pull_request["pull_request"]["head"]["sha"] = json!(HEAD_SHA);
    let number = pull_request["number"].as_u64().unwrap();
    let mut push = payload(&prefix, "push", |e| {
        e["ref"]
            .as_str()
            .is_some_and(|r| r.starts_with("refs/heads/"))
    });
    push["ref"] = json!("refs/heads/main");
    push["after"] = json!(MERGE_SHA);
    github
        .state
        .lock()
        .unwrap()
        .merged_pulls
        .push((number, MERGE_SHA.into(), HEAD_SHA.into()));

    let uploads = work.path().join("uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let act_run = |event: &str, workflow: &str, payload: &Value| {
        let file = work.path().join(format!("{event}.json"));
        std::fs::write(&file, payload.to_string()).unwrap();
        let mut command = tokio::process::Command::new(&act);
        command.current_dir(&repo).args([event, "-W"]);
        command.arg(format!(".github/workflows/{workflow}"));
        command.arg("-e").arg(&file);
        command.args(["-P", "ubuntu-latest=-self-hosted", "--local-repository"]);
        command.arg(format!(
            "rollout-runner/rollout-runner@v0={}",
            action.display()
        ));
        // act would clone actions/upload-artifact from GitHub (no network here, and the real
        // one needs GitHub's artifact service): the stand-in keeps what it was given.
        command.arg("--local-repository").arg(format!(
            "actions/upload-artifact@v4={}/../tests/actions/upload-artifact",
            env!("CARGO_MANIFEST_DIR")
        ));
        command
            .arg("--env")
            .arg(format!("FAKE_DIR={}", uploads.display()));
        command
            .arg("--env")
            .arg(format!("GITHUB_API_URL={}", github.server.uri()));
        command.arg("--env").arg(format!(
            "ROLLOUT_RUNNER_RELEASE_URL={}/v{{version}}",
            mirror.uri()
        ));
        command.arg("-s").arg(format!("GITHUB_TOKEN={TOKEN}"));
        command.arg("-s").arg(format!("KUBECONFIG={kubeconfig}"));
        run_tool(command, &home)
    };

    // A pull request: lint, the plan as a sticky comment, the rehearsal as a check run on the
    // pull request's head commit.
    let planned = act_run("pull_request", "plan-on-pr.yml", &pull_request).await;
    eprintln!("act pull_request: {:.1?}", planned.elapsed);
    assert_eq!(planned.code, Some(0), "act pull_request\n{}", planned.log);
    assert!(planned.log.contains("Job succeeded"), "{}", planned.log);
    assert!(
        planned.log.contains("rollout-runner: sha256 ") && planned.log.contains(" ok"),
        "installed from the mirror, checksum checked\n{}",
        planned.log
    );
    assert!(
        !planned.log.contains(TOKEN),
        "the token leaked into act's log"
    );
    assert!(github.violations().is_empty(), "{:#?}", github.violations());
    let calls = github.take_calls();
    // Two sticky comments on the pull request: the plan, and the rehearsal's verdict.
    let comments: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.route == "/repos/{owner}/{repo}/issues/{n}/comments")
        .collect();
    assert_eq!(comments.len(), 2, "{calls:#?}");
    for comment in &comments {
        assert!(
            comment
                .path
                .ends_with(&format!("/issues/{number}/comments")),
            "{}",
            comment.path
        );
    }
    assert!(
        comments
            .iter()
            .any(|c| c.raw_body.contains("rollout-runner plan sha256:")),
        "a plan comment: {comments:#?}"
    );
    assert!(
        comments
            .iter()
            .any(|c| c.raw_body.contains("<!-- rollout-runner:release ")),
        "a rehearsal comment: {comments:#?}"
    );
    let checks: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.route == "/repos/{owner}/{repo}/check-runs")
        .collect();
    assert_eq!(checks.len(), 1, "one check run: {calls:#?}");
    assert_eq!(checks[0].body["head_sha"], HEAD_SHA, "on the PR's head");
    let last = calls
        .iter()
        .rfind(|c| c.route == "/repos/{owner}/{repo}/check-runs/{id}")
        .expect("the check run is completed");
    assert_eq!(last.body["conclusion"], "success", "{:#}", last.body);
    assert_eq!(
        phase(&client, ns.name()).await,
        None,
        "a pull request touches no cluster"
    );

    // The merge: the release applied and driven to its end, reported on the merge commit,
    // the merged pull request and the production environment.
    let applied = act_run("push", "apply-on-merge.yml", &push).await;
    eprintln!("act push: {:.1?}", applied.elapsed);
    assert_eq!(applied.code, Some(0), "act push\n{}", applied.log);
    assert!(applied.log.contains("Job succeeded"), "{}", applied.log);
    assert!(
        applied.log.contains("from the tool cache"),
        "the second job reuses the installed binary\n{}",
        applied.log
    );
    assert!(
        !applied.log.contains(TOKEN),
        "the token leaked into act's log"
    );
    assert!(
        !applied.log.contains("client-key-data: LS0"),
        "the kubeconfig leaked into act's log"
    );
    assert_eq!(phase(&client, ns.name()).await, Some(RolloutPhase::Healthy));
    // The release's record, JUnit and HTML report were uploaded as an artifact.
    let uploaded: Vec<std::path::PathBuf> = std::fs::read_dir(uploads.join("artifacts"))
        .map(|dirs| dirs.flatten().map(|d| d.path()).collect())
        .unwrap_or_default();
    let html = uploaded
        .iter()
        .map(|dir| dir.join("report.html"))
        .find(|file| file.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no HTML report among the uploads {uploaded:?}\n{}",
                applied.log
            )
        });
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("<svg"), "the report has its charts");
    assert!(!html.contains(TOKEN), "the token leaked into the report");
    assert!(github.violations().is_empty(), "{:#?}", github.violations());
    let calls = github.take_calls();
    let checks: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.route == "/repos/{owner}/{repo}/check-runs")
        .collect();
    assert_eq!(checks.len(), 1, "one check run: {calls:#?}");
    assert_eq!(checks[0].body["head_sha"], MERGE_SHA);
    let last = calls
        .iter()
        .rfind(|c| c.route == "/repos/{owner}/{repo}/check-runs/{id}")
        .expect("the check run is completed");
    assert_eq!(last.body["status"], "completed");
    assert_eq!(last.body["conclusion"], "success", "{:#}", last.body);
    assert_eq!(
        count(&calls, "GET", "/repos/{owner}/{repo}/commits/{sha}/pulls"),
        1,
        "the merged pull request is looked up"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.method == "POST" && c.path.ends_with(&format!("/issues/{number}/comments"))),
        "the release is reported on the merged pull request: {calls:#?}"
    );
    assert_eq!(
        count(&calls, "POST", "/repos/{owner}/{repo}/deployments"),
        1
    );
    let deployment = calls
        .iter()
        .find(|c| c.route == "/repos/{owner}/{repo}/deployments")
        .unwrap();
    assert_eq!(deployment.body["environment"], "production");
    let statuses: Vec<&Value> = calls
        .iter()
        .filter(|c| c.route == "/repos/{owner}/{repo}/deployments/{id}/statuses")
        .map(|c| &c.body["state"])
        .collect();
    assert_eq!(
        statuses.last().copied(),
        Some(&json!("success")),
        "{statuses:?}"
    );
}

/// gitlab-ci-local (Node 22 and its bundle) from the npm prefix of `tests/platforms/build npm`.
fn gitlab_ci_local() -> Option<PathBuf> {
    let tool = npm::prefix()?.join("bin/gitlab-ci-local");
    assert!(
        tool.exists(),
        "{} is missing: run tests/platforms/build npm",
        tool.display()
    );
    Some(tool)
}

/// A `HOME` for the runner and a directory with `rollout-runner` (the binary under test) to
/// put first on its `PATH`.
fn job_host(work: &Path) -> (PathBuf, PathBuf) {
    let home = work.join("home");
    let bin = work.join("bin");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_rollout-runner"),
        bin.join("rollout-runner"),
    )
    .unwrap();
    (home, bin)
}

/// The tests' GitLab API server (`forge_gitlab`: project 42, merge request 9).
async fn gitlab_server() -> (MockServer, Arc<Mutex<forge_gitlab::State>>) {
    let server = MockServer::start().await;
    let state = Arc::new(Mutex::new(forge_gitlab::State::default()));
    Mock::given(wiremock::matchers::any())
        .respond_with(FakeGitlab(state.clone()))
        .mount(&server)
        .await;
    (server, state)
}

/// gitlab-ci-local on a repository, its jobs on the shell executor (the jobs' `image:` is the
/// project's image; here the binary is on `PATH` instead), reporting to the GitLab server.
struct GitlabCi {
    tool: PathBuf,
    repo: PathBuf,
    home: PathBuf,
    bin: PathBuf,
    api: String,
}

impl GitlabCi {
    /// One pipeline; `variables` are set (or, with an empty value, unset) for every job.
    async fn run(&self, variables: &[(&str, &str)]) -> Ran {
        let mut command = tokio::process::Command::new(&self.tool);
        command.current_dir(&self.repo).args([
            "--force-shell-executor",
            "--no-json-schema-validation",
            "--ignore-predefined-vars",
            "CI_API_V4_URL,CI_PROJECT_ID,CI_PIPELINE_SOURCE,CI_MERGE_REQUEST_IID,GITLAB_CI",
        ]);
        let kubeconfig = cluster::kubeconfig_path().unwrap();
        let kubeconfig = kubeconfig.display().to_string();
        let mut all: Vec<(&str, &str)> = vec![
            ("CI_API_V4_URL", &self.api),
            ("CI_PROJECT_ID", "42"),
            // gitlab-ci-local sets GITLAB_CI=false (scripts can tell it from GitLab); GitLab
            // sets true, which is how rollout-runner reads the rest of the job's variables.
            ("GITLAB_CI", "true"),
            ("GITLAB_TOKEN", forge_gitlab::TOKEN),
            ("KUBECONFIG", &kubeconfig),
        ];
        all.extend_from_slice(variables);
        for (name, value) in all {
            if value.is_empty() {
                command.arg("--unset-variable").arg(name);
            } else {
                command.arg("--variable").arg(format!("{name}={value}"));
            }
        }
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", self.bin.display()));
        run_tool(command, &self.home).await
    }
}

/// The user's own setup for every job: the template's jobs must not depend on theirs.
const USER_BEFORE_SCRIPT: &str = "\ndefault:\n  before_script:\n    - echo \"user before_script ran\"\n    - cd deploy && cd ..\n";

/// The commit statuses' states on `sha`, in order, of the statuses whose name has `name`.
fn status_states(state: &forge_gitlab::State, sha: &str, name: &str) -> Vec<String> {
    state
        .calls
        .iter()
        .filter(|(method, path, body)| {
            method == "POST"
                && path.ends_with(&format!("/statuses/{sha}"))
                && body["name"].as_str().is_some_and(|n| n.contains(name))
        })
        .filter_map(|(_, _, body)| body["state"].as_str().map(str::to_string))
        .collect()
}

/// The merge request pipeline's variables (GitLab sets no CI_COMMIT_BRANCH there).
const MERGE_REQUEST: &[(&str, &str)] = &[
    ("CI_PIPELINE_SOURCE", "merge_request_event"),
    ("CI_MERGE_REQUEST_IID", "9"),
    ("CI_COMMIT_BRANCH", ""),
];

#[allow(
    clippy::print_stderr,
    reason = "the cost of each run, for docs/benchmarks.md"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_ci_local_runs_the_example_pipeline_with_the_component() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some(gitlab_ci_local) = gitlab_ci_local() else {
        return;
    };
    let staging = TestNamespace::create(&client, "glci-staging").await;
    let production = TestNamespace::create(&client, "glci-production").await;
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let (home, bin) = job_host(work.path());

    // The component project and the user's project in one repository: gitlab-ci-local reads a
    // component from the working tree when it names this project at this commit.
    copy(
        &repo_root().join("actions/gitlab/templates"),
        &repo.join("templates"),
    );
    deploy_dir(
        &repo,
        &[
            ("staging", staging.name()),
            ("production", production.name()),
        ],
    );
    write(&repo.join(".gitlab-ci.yml"), "stages: [check]\n");
    let sha = commit_all(
        &repo,
        "https://gitlab.example.com/rollout-runner/rollout-runner.git",
    );
    let example =
        std::fs::read_to_string(repo_root().join("examples/gitlab/.gitlab-ci.yml")).unwrap();
    assert!(example.contains("rollout-runner@0.1.0"), "{example}");
    let pipeline = example
        .replace("rollout-runner@0.1.0", &format!("rollout-runner@{sha}"))
        .replace(
            "namespace: shop-staging",
            &format!("namespace: {}", staging.name()),
        )
        .replace(
            "namespace: shop\n",
            &format!("namespace: {}\n", production.name()),
        )
        + USER_BEFORE_SCRIPT;
    write(&repo.join(".gitlab-ci.yml"), &pipeline);

    let (server, state) = gitlab_server().await;
    let ci = GitlabCi {
        tool: gitlab_ci_local,
        repo: repo.clone(),
        home,
        bin,
        api: format!("{}/api/v4", server.uri()),
    };
    // A merge request pipeline: lint, and the plan of each environment as a sticky note.
    run_git(&repo, &["checkout", "-q", "-b", "feature"]);
    let planned = ci.run(MERGE_REQUEST).await;
    eprintln!(
        "gitlab-ci-local merge request pipeline: {:.1?}",
        planned.elapsed
    );
    assert_eq!(planned.code, Some(0), "the MR pipeline\n{}", planned.log);
    for job in [
        "lint",
        "rollout-runner:plan:staging",
        "rollout-runner:plan:production",
    ] {
        assert!(
            planned.log.contains(&format!("PASS  {job}")),
            "{job} passed\n{}",
            planned.log
        );
    }
    assert!(
        !planned.log.contains("rollout-runner:apply:"),
        "no release from a merge request\n{}",
        planned.log
    );
    assert!(
        !planned.log.contains(forge_gitlab::TOKEN),
        "the token leaked"
    );
    {
        let state = state.lock().unwrap();
        assert!(state.violations.is_empty(), "{:#?}", state.violations);
        assert_eq!(
            state.notes.len(),
            2,
            "one note per environment: {:#?}\n{}",
            state.notes,
            planned.log
        );
        for environment in ["staging", "production"] {
            assert!(
                state
                    .notes
                    .iter()
                    .any(|(_, body)| body.contains(environment)),
                "the {environment} plan: {:#?}",
                state.notes
            );
        }
    }
    assert_eq!(phase(&client, staging.name()).await, None);

    // The default branch: staging, then production, each released and driven to its end,
    // reported as commit statuses.
    run_git(&repo, &["checkout", "-q", "main"]);
    let released = ci.run(&[]).await;
    eprintln!(
        "gitlab-ci-local default branch pipeline: {:.1?}",
        released.elapsed
    );
    assert_eq!(
        released.code,
        Some(0),
        "the main pipeline\n{}",
        released.log
    );
    for job in [
        "lint",
        "rollout-runner:apply:staging",
        "rollout-runner:apply:production",
    ] {
        assert!(
            released.log.contains(&format!("PASS  {job}")),
            "{job} passed\n{}",
            released.log
        );
        assert!(
            released
                .log
                .lines()
                .any(|line| line.starts_with(job) && line.contains("user before_script ran")),
            "the user's before_script ran in {job}\n{}",
            released.log
        );
    }
    assert!(
        !released.log.contains(forge_gitlab::TOKEN),
        "the token leaked"
    );
    for ns in [&staging, &production] {
        assert_eq!(
            phase(&client, ns.name()).await,
            Some(RolloutPhase::Healthy),
            "{}",
            ns.name()
        );
    }
    let state = state.lock().unwrap();
    assert!(state.violations.is_empty(), "{:#?}", state.violations);
    for environment in ["staging", "production"] {
        let states = status_states(&state, &sha, environment);
        assert_eq!(
            states.last().map(String::as_str),
            Some("success"),
            "the {environment} commit status: {states:?}"
        );
    }
}

#[allow(
    clippy::print_stderr,
    reason = "the cost of each run, for docs/benchmarks.md"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_ci_local_runs_the_include_by_file_template() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let Some(gitlab_ci_local) = gitlab_ci_local() else {
        return;
    };
    let ns = TestNamespace::create(&client, "gltpl").await;
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let (home, bin) = job_host(work.path());

    // The template vendored where the example includes it from, the example it rehearses, and
    // plain manifests in deploy/ (the example passes no values).
    copy(
        &repo_root().join("actions/gitlab/rollout-runner.gitlab-ci.yml"),
        &repo.join("actions/gitlab/rollout-runner.gitlab-ci.yml"),
    );
    copy(
        &repo_root().join("examples/canary-analysis-passes"),
        &repo.join("examples/canary-analysis-passes"),
    );
    write(
        &repo.join("deploy/app.yaml"),
        &format!(
            r#"apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "example/web:2", ports: [{{name: http, containerPort: 8080}}]}}]
  strategy:
    canary:
      steps: [{{setWeight: 50}}, {{pause: {{duration: 1s}}}}]
"#,
            ns = ns.name()
        ),
    );
    let example =
        std::fs::read_to_string(repo_root().join("examples/gitlab/template.gitlab-ci.yml"))
            .unwrap();
    write(
        &repo.join(".gitlab-ci.yml"),
        &(example + USER_BEFORE_SCRIPT),
    );
    let sha = commit_all(&repo, "https://gitlab.example.com/group/project.git");

    let (server, state) = gitlab_server().await;
    let ci = GitlabCi {
        tool: gitlab_ci_local,
        repo: repo.clone(),
        home,
        bin,
        api: format!("{}/api/v4", server.uri()),
    };
    // A merge request pipeline: lint, and the rehearsal reported as a commit status and a note.
    run_git(&repo, &["checkout", "-q", "-b", "feature"]);
    let rehearsed = ci.run(MERGE_REQUEST).await;
    eprintln!(
        "gitlab-ci-local merge request pipeline (template): {:.1?}",
        rehearsed.elapsed
    );
    assert_eq!(rehearsed.code, Some(0), "{}", rehearsed.log);
    for job in ["lint", "rehearse"] {
        assert!(
            rehearsed.log.contains(&format!("PASS  {job}")),
            "{job} passed\n{}",
            rehearsed.log
        );
        assert!(
            rehearsed
                .log
                .lines()
                .any(|line| line.starts_with(job) && line.contains("user before_script ran")),
            "the user's before_script ran in {job}\n{}",
            rehearsed.log
        );
    }
    assert!(
        !rehearsed.log.contains("PASS  release"),
        "{}",
        rehearsed.log
    );
    {
        let state = state.lock().unwrap();
        assert!(state.violations.is_empty(), "{:#?}", state.violations);
        assert_eq!(
            state.notes.len(),
            1,
            "{:#?}\n{}",
            state.notes,
            rehearsed.log
        );
        let states = status_states(&state, &sha, "");
        assert_eq!(
            states.last().map(String::as_str),
            Some("success"),
            "{states:?}"
        );
    }

    // The default branch: the release applied and driven to its end.
    run_git(&repo, &["checkout", "-q", "main"]);
    let released = ci.run(&[]).await;
    eprintln!(
        "gitlab-ci-local default branch pipeline (template): {:.1?}",
        released.elapsed
    );
    assert_eq!(released.code, Some(0), "{}", released.log);
    assert!(released.log.contains("PASS  release"), "{}", released.log);
    assert!(
        released
            .log
            .lines()
            .any(|line| line.starts_with("release") && line.contains("user before_script ran")),
        "{}",
        released.log
    );
    assert!(
        !released.log.contains(forge_gitlab::TOKEN),
        "the token leaked"
    );
    assert_eq!(phase(&client, ns.name()).await, Some(RolloutPhase::Healthy));
    let state = state.lock().unwrap();
    assert!(state.violations.is_empty(), "{:#?}", state.violations);
    let states = status_states(&state, &sha, "production");
    assert_eq!(
        states.last().map(String::as_str),
        Some("success"),
        "{states:?}"
    );
}
