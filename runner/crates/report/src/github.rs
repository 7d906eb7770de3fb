//! GitHub: a check run per Rollout (a commit status when the token cannot write checks), a
//! sticky pull request comment, a Deployment with its statuses, and inside GitHub Actions the
//! job summary, step outputs and error annotations.
//!
//! REST endpoints used (GitHub REST API, version `2022-11-28`):
//! - check runs: <https://docs.github.com/en/rest/checks/runs#create-a-check-run>,
//!   <https://docs.github.com/en/rest/checks/runs#update-a-check-run>,
//!   <https://docs.github.com/en/rest/checks/runs#list-check-runs-for-a-git-reference>
//! - commit statuses: <https://docs.github.com/en/rest/commits/statuses#create-a-commit-status>
//! - comments: <https://docs.github.com/en/rest/issues/comments#list-issue-comments>,
//!   `#create-an-issue-comment`, `#update-an-issue-comment`
//! - deployments: <https://docs.github.com/en/rest/deployments/deployments#create-a-deployment>,
//!   <https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status>
//! - GitHub App tokens: <https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app>,
//!   <https://docs.github.com/en/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app>
//!
//! Owns turning a [`Release`] into those calls. Refuses to block or fail the drive: calls run on
//! the delivery worker, and every failure is a warning.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::delivery::{
    CallCounts, CallError, Counters, DeliveryOptions, Executor, Http, Job, Log, Pacer, Secret,
    Weight, Worker,
};
use super::markdown::{self, CHECK_URL_PLACEHOLDER, Links, Verdict};
use super::release::Release;
use super::reporters::significance;
use super::sources::{Annotation, Level, Sources};
use super::{Reporter, Update};

/// GitHub accepts at most 50 annotations per request.
const ANNOTATIONS_PER_REQUEST: usize = 50;
/// Commit status descriptions are short.
const STATUS_DESCRIPTION_MAX: usize = 140;
/// Pages of comments read when looking for our sticky comment.
const MAX_COMMENT_PAGES: u32 = 30;

/// How to authenticate.
#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// A token: Actions' `GITHUB_TOKEN`, a personal access token, an installation token.
    Token(Secret),
    /// A GitHub App: its id and private key (PEM); the installation is looked up from the
    /// repository when not given.
    App {
        app_id: u64,
        private_key: Secret,
        installation_id: Option<u64>,
    },
}

/// Files GitHub Actions reads back from a step.
#[derive(Debug, Clone, Default)]
pub struct ActionsFiles {
    /// `$GITHUB_OUTPUT`.
    pub output: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY`.
    pub step_summary: Option<PathBuf>,
    /// Print `::error` workflow commands (on stderr).
    pub commands: bool,
}

/// What the reporter asks the API before its first report, when the CI context cannot say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lookup {
    #[default]
    None,
    /// A push: the pull request merged as this commit gets the sticky comment
    /// (<https://docs.github.com/en/rest/commits/commits#list-pull-requests-associated-with-a-commit>).
    MergedPullRequest,
    /// A comment on a pull request: the check run goes on the pull request's head commit
    /// (<https://docs.github.com/en/rest/pulls/pulls#get-a-pull-request>).
    PullRequestHead,
}

/// What the GitHub reporter needs.
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise Server.
    pub api_url: String,
    /// `https://github.com`, for links to commits.
    pub server_url: Option<String>,
    pub auth: GithubAuth,
    /// `owner/name`.
    pub repository: String,
    /// The commit the release is reported on.
    pub sha: String,
    /// The pull request to comment on.
    pub pr: Option<u64>,
    /// What to look up before the first report.
    pub lookup: Lookup,
    /// The deployment environment; no Deployment without one.
    pub environment: Option<String>,
    /// Where the environment can be seen (a deployment status's `environment_url`).
    pub environment_url: Option<String>,
    /// The CI run (details and log links).
    pub run_url: Option<String>,
    /// The release's HTML report and JUnit (CI artifacts), linked from the check run and the
    /// comment.
    pub report_url: Option<String>,
    /// Post a check run (else only a commit status).
    pub checks: bool,
    /// Post the sticky comment.
    pub comment: bool,
    pub actions: ActionsFiles,
}

/// One call (or short sequence of calls) to make.
#[derive(Debug, Clone)]
pub(crate) enum GithubJob {
    /// Names known once the Rollout is: the check run's name and the comment's key.
    Names {
        check_name: String,
        key: String,
    },
    Check(CheckJob),
    Comment(String),
    /// The hidden marker that finds the sticky comment, for comments that are not a release's
    /// (`plan --comment`).
    Marker(String),
    DeploymentCreate {
        description: String,
    },
    DeploymentStatus {
        state: &'static str,
        description: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct CheckJob {
    completed: bool,
    conclusion: Option<&'static str>,
    title: String,
    summary: String,
    text: String,
    annotations: Vec<Annotation>,
    /// For the commit-status fallback.
    status_state: &'static str,
}

impl Job for GithubJob {
    fn supersedes(&self, older: &Self) -> bool {
        matches!(
            (self, older),
            (Self::Check(_), Self::Check(_))
                | (Self::Comment(_), Self::Comment(_))
                | (Self::DeploymentStatus { .. }, Self::DeploymentStatus { .. })
        )
    }
}

/// A cached installation token.
struct InstallationToken {
    token: Secret,
    expires: Timestamp,
}

/// Makes the calls; keeps the ids of what it created.
pub(crate) struct GithubExecutor {
    http: Http,
    api: String,
    auth: GithubAuth,
    installation: Option<InstallationToken>,
    repository: String,
    sha: String,
    pr: Option<u64>,
    environment: Option<String>,
    environment_url: Option<String>,
    run_url: Option<String>,
    commit_url: Option<String>,
    check_name: String,
    external_id: String,
    marker: String,
    check_id: Option<u64>,
    check_url: Option<String>,
    /// A create call got no answer: look for the check run before creating another.
    check_uncertain: bool,
    /// The token cannot write checks: post commit statuses instead.
    use_statuses: bool,
    last_status: Option<(String, String)>,
    comment_id: Option<u64>,
    comment_searched: bool,
    deployment_id: Option<u64>,
    /// What the last call was (for the 403 fallback).
    creating_check: bool,
    /// Still to look up before the first report.
    lookup: Lookup,
}

impl GithubExecutor {
    async fn token(&mut self) -> Result<String, CallError> {
        match &self.auth {
            GithubAuth::Token(token) => Ok(token.expose().to_string()),
            GithubAuth::App {
                app_id,
                private_key,
                installation_id,
            } => {
                let now = Timestamp::now();
                if let Some(cached) = &self.installation
                    && cached.expires.duration_since(now).as_secs() > 300
                {
                    return Ok(cached.token.expose().to_string());
                }
                let jwt = app_jwt(*app_id, private_key, now).map_err(|e| CallError::Status {
                    code: 401,
                    message: format!("cannot sign the GitHub App token: {e}"),
                })?;
                let installation = match installation_id {
                    Some(id) => *id,
                    None => {
                        let url = format!("{}/repos/{}/installation", self.api, self.repository);
                        let answer = self
                            .http
                            .send(
                                "GET /repos/{owner}/{repo}/installation",
                                self.headers(self.http.client().get(url), &jwt),
                            )
                            .await?;
                        answer.json["id"]
                            .as_u64()
                            .ok_or_else(|| CallError::Status {
                                code: 401,
                                message: "no installation id in the answer".into(),
                            })?
                    }
                };
                let url = format!(
                    "{}/app/installations/{installation}/access_tokens",
                    self.api
                );
                let answer = self
                    .http
                    .send(
                        "POST /app/installations/{installation_id}/access_tokens",
                        self.headers(self.http.client().post(url), &jwt),
                    )
                    .await?;
                let token = answer.json["token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if token.is_empty() {
                    return Err(CallError::Status {
                        code: 401,
                        message: "no token in the answer".into(),
                    });
                }
                let expires = answer.json["expires_at"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_else(|| {
                        now.checked_add(jiff::SignedDuration::from_mins(50))
                            .unwrap_or(now)
                    });
                let secret = Secret::new(token.clone());
                self.http.log().add_secret(&secret);
                self.installation = Some(InstallationToken {
                    token: secret,
                    expires,
                });
                Ok(token)
            }
        }
    }

    fn headers(&self, request: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
        request
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .bearer_auth(token)
    }

    async fn call(
        &mut self,
        route: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<super::delivery::Answer, CallError> {
        let token = self.token().await?;
        let url = format!("{}{path}", self.api);
        let mut request = self.headers(self.http.client().request(method, url), &token);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.http.send(route, request).await
    }

    fn details_url(&self) -> Option<String> {
        self.check_url
            .clone()
            .or_else(|| self.run_url.clone())
            .or_else(|| self.commit_url.clone())
    }

    async fn check(&mut self, job: &CheckJob) -> Result<(), CallError> {
        if self.use_statuses {
            return self.status(job).await;
        }
        let output = |annotations: &[Annotation]| {
            json!({
                "title": job.title,
                "summary": job.summary,
                "text": job.text,
                "annotations": annotations.iter().map(annotation_json).collect::<Vec<_>>(),
            })
        };
        let mut batches: Vec<&[Annotation]> =
            job.annotations.chunks(ANNOTATIONS_PER_REQUEST).collect();
        if batches.is_empty() {
            batches.push(&[]);
        }
        if self.check_id.is_none() && self.check_uncertain {
            self.find_check().await?;
        }
        let mut first = true;
        for batch in batches {
            let mut body = json!({ "output": output(batch) });
            if first {
                body["status"] = json!(if job.completed {
                    "completed"
                } else {
                    "in_progress"
                });
                if let Some(conclusion) = job.conclusion {
                    body["conclusion"] = json!(conclusion);
                }
                if let Some(url) = &self.run_url {
                    body["details_url"] = json!(url);
                }
            }
            match self.check_id {
                None => {
                    body["name"] = json!(self.check_name);
                    body["head_sha"] = json!(self.sha);
                    body["external_id"] = json!(self.external_id);
                    self.creating_check = true;
                    let result = self
                        .call(
                            "POST /repos/{owner}/{repo}/check-runs",
                            reqwest::Method::POST,
                            &format!("/repos/{}/check-runs", self.repository),
                            Some(&body),
                        )
                        .await;
                    self.creating_check = false;
                    let answer = match result {
                        Ok(answer) => answer,
                        Err(error) => {
                            if matches!(error, CallError::Transport(_)) {
                                self.check_uncertain = true;
                            }
                            return Err(error);
                        }
                    };
                    self.check_id = answer.json["id"].as_u64();
                    self.check_url = answer.json["html_url"].as_str().map(String::from);
                }
                Some(id) => {
                    self.call(
                        "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
                        reqwest::Method::PATCH,
                        &format!("/repos/{}/check-runs/{id}", self.repository),
                        Some(&body),
                    )
                    .await?;
                }
            }
            first = false;
        }
        Ok(())
    }

    /// After a create call that got no answer: adopt the check run if it was created.
    async fn find_check(&mut self) -> Result<(), CallError> {
        let path = format!(
            "/repos/{}/commits/{}/check-runs?check_name={}&filter=latest",
            self.repository,
            self.sha,
            urlencode(&self.check_name)
        );
        let answer = self
            .call(
                "GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
                reqwest::Method::GET,
                &path,
                None,
            )
            .await?;
        self.check_uncertain = false;
        if let Some(run) = answer.json["check_runs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|run| run["external_id"].as_str() == Some(self.external_id.as_str()))
        {
            self.check_id = run["id"].as_u64();
            self.check_url = run["html_url"].as_str().map(String::from);
        }
        Ok(())
    }

    async fn status(&mut self, job: &CheckJob) -> Result<(), CallError> {
        let description = shorten(&job.title, STATUS_DESCRIPTION_MAX);
        let key = (job.status_state.to_string(), description.clone());
        if self.last_status.as_ref() == Some(&key) {
            return Ok(());
        }
        let mut body = json!({
            "state": job.status_state,
            "description": description,
            "context": self.check_name,
        });
        if let Some(url) = &self.run_url {
            body["target_url"] = json!(url);
        }
        self.call(
            "POST /repos/{owner}/{repo}/statuses/{sha}",
            reqwest::Method::POST,
            &format!("/repos/{}/statuses/{}", self.repository, self.sha),
            Some(&body),
        )
        .await?;
        self.last_status = Some(key);
        Ok(())
    }

    async fn comment(&mut self, body: &str) -> Result<(), CallError> {
        let Some(pr) = self.pr else {
            return Ok(());
        };
        let link = self.details_url().unwrap_or_default();
        let body = body.replace(CHECK_URL_PLACEHOLDER, &link);
        if self.comment_id.is_none() && !self.comment_searched {
            self.comment_id = self.find_comment(pr).await?;
            self.comment_searched = true;
        }
        if let Some(id) = self.comment_id {
            let result = self
                .call(
                    "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
                    reqwest::Method::PATCH,
                    &format!("/repos/{}/issues/comments/{id}", self.repository),
                    Some(&json!({ "body": body })),
                )
                .await;
            match result {
                Err(CallError::Status { code: 404, .. }) => {
                    // Someone deleted it: post a new one.
                    self.comment_id = None;
                }
                other => return other.map(|_| ()),
            }
        }
        let result = self
            .call(
                "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
                reqwest::Method::POST,
                &format!("/repos/{}/issues/{pr}/comments", self.repository),
                Some(&json!({ "body": body })),
            )
            .await;
        match result {
            Ok(answer) => {
                self.comment_id = answer.json["id"].as_u64();
                Ok(())
            }
            Err(error) => {
                // It may have been created: look again before posting another.
                self.comment_searched = false;
                Err(error)
            }
        }
    }

    async fn find_comment(&mut self, pr: u64) -> Result<Option<u64>, CallError> {
        for page in 1..=MAX_COMMENT_PAGES {
            let answer = self
                .call(
                    "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
                    reqwest::Method::GET,
                    &format!(
                        "/repos/{}/issues/{pr}/comments?per_page=100&page={page}",
                        self.repository
                    ),
                    None,
                )
                .await?;
            let comments = answer.json.as_array().cloned().unwrap_or_default();
            if let Some(found) = comments.iter().find(|c| {
                c["body"]
                    .as_str()
                    .is_some_and(|body| body.contains(self.marker.as_str()))
            }) {
                return Ok(found["id"].as_u64());
            }
            let more = answer
                .headers
                .get("link")
                .and_then(|l| l.to_str().ok())
                .is_some_and(|l| l.contains("rel=\"next\""));
            if !more || comments.is_empty() {
                break;
            }
        }
        Ok(None)
    }

    async fn deployment(&mut self, description: &str) -> Result<(), CallError> {
        let Some(environment) = self.environment.clone() else {
            return Ok(());
        };
        let body = json!({
            "ref": self.sha,
            "environment": environment,
            "description": shorten(description, STATUS_DESCRIPTION_MAX),
            "auto_merge": false,
            "required_contexts": [],
            "task": "deploy",
            "payload": { "tool": "rollout-runner" },
        });
        let answer = self
            .call(
                "POST /repos/{owner}/{repo}/deployments",
                reqwest::Method::POST,
                &format!("/repos/{}/deployments", self.repository),
                Some(&body),
            )
            .await?;
        self.deployment_id = answer.json["id"].as_u64();
        Ok(())
    }

    async fn deployment_status(&mut self, state: &str, description: &str) -> Result<(), CallError> {
        let Some(id) = self.deployment_id else {
            return Ok(());
        };
        let mut body = json!({
            "state": state,
            "description": shorten(description, STATUS_DESCRIPTION_MAX),
            "auto_inactive": true,
        });
        if let Some(url) = self.details_url() {
            body["log_url"] = json!(url);
        }
        if let Some(url) = &self.environment_url {
            body["environment_url"] = json!(url);
        }
        self.call(
            "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
            reqwest::Method::POST,
            &format!("/repos/{}/deployments/{id}/statuses", self.repository),
            Some(&body),
        )
        .await?;
        Ok(())
    }
}

impl GithubExecutor {
    /// Find what the event payload did not name (see [`Lookup`]); once. A failed lookup is a
    /// warning: the report goes on with what is known.
    async fn look_up(&mut self) {
        let lookup = std::mem::take(&mut self.lookup);
        match lookup {
            Lookup::None => {}
            Lookup::MergedPullRequest => {
                let path = format!("/repos/{}/commits/{}/pulls", self.repository, self.sha);
                match self
                    .call(
                        "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls",
                        reqwest::Method::GET,
                        &path,
                        None,
                    )
                    .await
                {
                    Ok(answer) => {
                        let merged = answer.json.as_array().into_iter().flatten().find(|pr| {
                            !pr["merged_at"].is_null()
                                && pr["merge_commit_sha"].as_str() == Some(self.sha.as_str())
                        });
                        match merged.and_then(|pr| pr["number"].as_u64()) {
                            Some(number) => self.pr = Some(number),
                            None => self.http.log().note(&format!(
                                "no pull request was merged as commit {}: no comment",
                                self.sha
                            )),
                        }
                    }
                    Err(error) => self.http.log().note(&format!(
                        "cannot find the pull request merged as commit {}: {error}",
                        self.sha
                    )),
                }
            }
            Lookup::PullRequestHead => {
                let Some(pr) = self.pr else { return };
                let path = format!("/repos/{}/pulls/{pr}", self.repository);
                match self
                    .call(
                        "GET /repos/{owner}/{repo}/pulls/{pull_number}",
                        reqwest::Method::GET,
                        &path,
                        None,
                    )
                    .await
                {
                    Ok(answer) => match answer.json.pointer("/head/sha").and_then(Value::as_str) {
                        Some(sha) => {
                            if let Some(url) = &mut self.commit_url {
                                *url = url.replace(&self.sha, sha);
                            }
                            self.sha = sha.to_string();
                        }
                        None => self.http.log().note(&format!(
                            "pull request #{pr} has no head commit in the answer"
                        )),
                    },
                    Err(error) => self.http.log().note(&format!(
                        "cannot read pull request #{pr}'s head commit: {error}"
                    )),
                }
            }
        }
    }
}

impl Executor<GithubJob> for GithubExecutor {
    async fn execute(&mut self, job: &GithubJob) -> Result<(), CallError> {
        if !matches!(job, GithubJob::Names { .. } | GithubJob::Marker(_)) {
            self.look_up().await;
        }
        match job {
            GithubJob::Names { check_name, key } => {
                self.check_name = check_name.clone();
                self.external_id = key.clone();
                self.marker = markdown::marker(key);
                Ok(())
            }
            GithubJob::Check(check) => self.check(check).await,
            GithubJob::Comment(body) => self.comment(body).await,
            GithubJob::Marker(marker) => {
                self.marker = marker.clone();
                Ok(())
            }
            GithubJob::DeploymentCreate { description } => self.deployment(description).await,
            GithubJob::DeploymentStatus { state, description } => {
                self.deployment_status(state, description).await
            }
        }
    }

    fn fallback(&mut self, error: &CallError) -> bool {
        if error.status() == Some(403) && self.check_id.is_none() && !self.use_statuses {
            // The create call is the only one made while no check run exists.
            self.use_statuses = true;
            self.http.log().note(
                "the token cannot create check runs (403); reporting with a commit status \
                 instead (needs `statuses: write`)",
            );
            return true;
        }
        false
    }
}

fn annotation_json(annotation: &Annotation) -> Value {
    json!({
        "path": annotation.path,
        "start_line": annotation.start_line,
        "end_line": annotation.end_line,
        "annotation_level": annotation.level.as_str(),
        "title": shorten(&annotation.title, 255),
        "message": shorten(&annotation.message, 64 * 1024),
    })
}

/// At most `max` characters, with `…` when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A GitHub App JWT (RS256), valid from a minute ago for nine minutes.
pub fn app_jwt(app_id: u64, private_key: &Secret, now: Timestamp) -> Result<String, String> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let pem = private_key.expose();
    let der = pem_body(pem).ok_or("the private key is not PEM")?;
    let key = if pem.contains("BEGIN RSA PRIVATE KEY") {
        RsaKeyPair::from_der(&der)
    } else {
        RsaKeyPair::from_pkcs8(&der)
    }
    .map_err(|_| "the private key is not an RSA key".to_string())?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64.encode(
        json!({
            "iat": now.as_second() - 60,
            "exp": now.as_second() + 540,
            "iss": app_id.to_string(),
        })
        .to_string(),
    );
    let message = format!("{header}.{claims}");
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing failed".to_string())?;
    Ok(format!("{message}.{}", b64.encode(signature)))
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("-----") && !line.is_empty())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// What the reporter did, after [`GithubReporter::finish`].
#[derive(Debug, Clone, Default)]
pub struct GithubSummary {
    pub check_url: Option<String>,
    pub calls: CallCounts,
}

/// The GitHub reporter. Create it inside a tokio runtime; call [`GithubReporter::finish`]
/// before exiting.
pub struct GithubReporter {
    release: Release,
    pacer: Pacer,
    worker: Worker<GithubJob, GithubExecutor>,
    counters: Counters,
    sources: Sources,
    links: Links,
    key: String,
    comment: bool,
    checks: bool,
    deployment: bool,
    last_comment: Option<String>,
    actions: ActionsFiles,
    flush_timeout: Duration,
    finished: bool,
}

impl GithubReporter {
    pub fn start(config: GithubConfig, sources: Sources, options: &DeliveryOptions) -> Self {
        let secrets: Vec<&Secret> = match &config.auth {
            GithubAuth::Token(token) => vec![token],
            GithubAuth::App { private_key, .. } => vec![private_key],
        };
        let log = Log::new("github", &secrets);
        let counters = Counters::default();
        let http = Http::new(options, counters.clone(), log.clone());
        let commit_url = config.server_url.as_ref().map(|server| {
            format!(
                "{}/{}/commit/{}",
                server.trim_end_matches('/'),
                config.repository,
                config.sha
            )
        });
        let links = Links {
            check_url: None,
            run_url: config.run_url.clone(),
            report_url: config.report_url.clone(),
            commit: Some(config.sha.clone()),
            commit_url: commit_url.clone(),
            environment: config.environment.clone(),
        };
        let executor = GithubExecutor {
            http,
            api: config.api_url.trim_end_matches('/').to_string(),
            auth: config.auth.clone(),
            installation: None,
            repository: config.repository.clone(),
            sha: config.sha.clone(),
            pr: config.pr,
            environment: config.environment.clone(),
            environment_url: config.environment_url.clone(),
            run_url: config.run_url.clone(),
            commit_url,
            check_name: String::new(),
            external_id: String::new(),
            marker: String::new(),
            check_id: None,
            check_url: None,
            check_uncertain: false,
            use_statuses: !config.checks,
            last_status: None,
            comment_id: None,
            comment_searched: false,
            deployment_id: None,
            creating_check: false,
            lookup: config.lookup,
        };
        let worker = Worker::spawn(executor, options, counters.clone(), log);
        Self {
            release: Release::default(),
            pacer: Pacer::new(options.interval),
            worker,
            counters,
            sources,
            links,
            key: String::new(),
            comment: config.comment
                && (config.pr.is_some() || config.lookup == Lookup::MergedPullRequest),
            checks: config.checks,
            deployment: config.environment.is_some(),
            last_comment: None,
            actions: config.actions,
            flush_timeout: options.flush_timeout,
            finished: false,
        }
    }

    /// The release as reported so far.
    pub fn release(&self) -> &Release {
        &self.release
    }

    fn check_job(&self) -> CheckJob {
        let verdict = Verdict::of(&self.release);
        let links = Links {
            check_url: None,
            ..self.links.clone()
        };
        let annotations = if self.release.outcome.is_some() {
            self.sources.annotations(&self.release)
        } else {
            Vec::new()
        };
        CheckJob {
            completed: verdict != Verdict::InProgress,
            conclusion: verdict.conclusion(),
            title: markdown::title(&self.release),
            summary: markdown::summary(&self.release, &links),
            text: markdown::timeline(&self.release),
            annotations,
            status_state: match verdict {
                Verdict::InProgress | Verdict::Paused => "pending",
                Verdict::Promoted => "success",
                Verdict::Aborted | Verdict::Degraded | Verdict::Invalid => "failure",
                Verdict::TimedOut | Verdict::Superseded | Verdict::Deleted => "error",
            },
        }
    }

    fn send(&mut self, weight: Weight) {
        self.worker.send(GithubJob::Check(self.check_job()));
        if self.comment && (weight == Weight::Major || self.release.outcome.is_some()) {
            let links = Links {
                check_url: Some(CHECK_URL_PLACEHOLDER.to_string()),
                ..self.links.clone()
            };
            let body = markdown::comment(&self.release, &links, &self.key);
            if self.last_comment.as_ref() != Some(&body) {
                self.last_comment = Some(body.clone());
                self.worker.send(GithubJob::Comment(body));
            }
        }
    }

    fn flush(&mut self, at: Timestamp) {
        if let Some(weight) = self.pacer.flush(at) {
            self.send(weight);
        }
    }

    /// Wait (bounded by the flush timeout) for the queued calls, then write the GitHub Actions
    /// outputs, job summary and error annotations. Never fails.
    pub async fn finish(self) -> GithubSummary {
        let Self {
            release,
            worker,
            counters,
            sources,
            links,
            actions,
            flush_timeout,
            ..
        } = self;
        let executor = worker.close(flush_timeout).await;
        let check_url = executor.as_ref().and_then(|e| e.check_url.clone());
        write_actions_files(&release, &sources, &links, &actions, check_url.as_deref());
        GithubSummary {
            check_url,
            calls: counters.snapshot(),
        }
    }

    /// The calls made so far.
    pub fn calls(&self) -> CallCounts {
        self.counters.snapshot()
    }

    /// Post `body` as the sticky comment of the configured pull request that holds `marker`
    /// (`body` must contain it): the comment found by it is edited in place, else one is
    /// created. Retried as reports are; never fails (the counts tell). Nothing is posted
    /// without a pull request or with `comment` off. Writes no GitHub Actions files.
    pub async fn sticky_comment(
        config: GithubConfig,
        options: &DeliveryOptions,
        marker: &str,
        body: &str,
    ) -> CallCounts {
        let post = config.comment && config.pr.is_some();
        let reporter = Self::start(config, Sources::default(), options);
        if post {
            reporter.worker.send(GithubJob::Marker(marker.to_string()));
            reporter.worker.send(GithubJob::Comment(body.to_string()));
        }
        let counters = reporter.counters.clone();
        let _ = reporter.worker.close(reporter.flush_timeout).await;
        counters.snapshot()
    }

    /// Whether a check run (not only a status) is requested.
    pub fn checks_enabled(&self) -> bool {
        self.checks
    }
}

impl Reporter for GithubReporter {
    fn report(&mut self, update: &Update<'_>) {
        if self.finished {
            return;
        }
        let at = update_at(update);
        if self.pacer.ends_burst(at) {
            self.flush(at);
        }
        self.release.report(update);
        match update {
            Update::Started { .. } => {
                self.key = self.release.id();
                if let Some(environment) = &self.links.environment {
                    self.key = format!("{} {environment}", self.key);
                }
                let name = match &self.links.environment {
                    Some(environment) => format!("rollout {} ({environment})", self.release.id()),
                    None => format!("rollout {}", self.release.id()),
                };
                self.worker.send(GithubJob::Names {
                    check_name: name,
                    key: self.key.clone(),
                });
                if self.deployment {
                    self.worker.send(GithubJob::DeploymentCreate {
                        description: format!("rollout-runner: {}", self.release.id()),
                    });
                    self.worker.send(GithubJob::DeploymentStatus {
                        state: "in_progress",
                        description: format!("releasing {}", self.release.id()),
                    });
                }
                self.pacer.note(at, Weight::Major);
                self.flush(at);
            }
            Update::Finished { outcome, .. } => {
                self.pacer.note(at, Weight::Major);
                self.flush(at);
                if self.deployment {
                    let verdict = Verdict::of(&self.release);
                    let state = match verdict {
                        Verdict::Promoted => "success",
                        Verdict::Aborted | Verdict::Degraded | Verdict::Invalid => "failure",
                        Verdict::Superseded | Verdict::Deleted => "inactive",
                        Verdict::InProgress | Verdict::Paused | Verdict::TimedOut => "in_progress",
                    };
                    self.worker.send(GithubJob::DeploymentStatus {
                        state,
                        description: outcome.describe(),
                    });
                }
                self.finished = true;
            }
            _ => {
                if let Some(weight) = significance(update) {
                    self.pacer.note(at, weight);
                }
            }
        }
    }

    fn waiting(&mut self, at: Timestamp, _until: Option<Timestamp>) {
        self.flush(at);
    }
}

/// The time of an update.
pub(crate) fn update_at(update: &Update<'_>) -> Timestamp {
    match *update {
        Update::Started { at, .. }
        | Update::Actions { at, .. }
        | Update::Events { at, .. }
        | Update::Status { at, .. }
        | Update::Measurement { at, .. }
        | Update::AnalysisRunCompleted { at, .. }
        | Update::Finished { at, .. } => at,
    }
}

/// Escape data of a workflow command.
fn command_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a property of a workflow command.
fn command_property(text: &str) -> String {
    command_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The `::error` / `::warning` workflow commands for a finished release.
pub fn workflow_commands(release: &Release, sources: &Sources) -> Vec<String> {
    let verdict = Verdict::of(release);
    let mut out = Vec::new();
    if !verdict.is_failure() {
        return out;
    }
    for annotation in sources.annotations(release) {
        let command = match annotation.level {
            Level::Failure => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        };
        out.push(format!(
            "::{command} file={},line={},endLine={},title={}::{}",
            command_property(&annotation.path),
            annotation.start_line,
            annotation.end_line,
            command_property(&annotation.title),
            command_data(&annotation.message)
        ));
    }
    let describe = release
        .outcome
        .as_ref()
        .map(super::Outcome::describe)
        .unwrap_or_default();
    out.push(format!(
        "::error title={}::{}",
        command_property(&format!("release {} {}", release.id(), verdict.as_str())),
        command_data(&describe)
    ));
    out
}

fn append(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

fn write_actions_files(
    release: &Release,
    sources: &Sources,
    links: &Links,
    actions: &ActionsFiles,
    check_url: Option<&str>,
) {
    if release.started_at.is_none() {
        return;
    }
    let verdict = Verdict::of(release);
    if let Some(path) = &actions.output {
        let text = format!(
            "phase={}\nrevision={}\nverdict={}\ncheck-url={}\n",
            release.phase,
            release.revision,
            verdict.as_str(),
            check_url.unwrap_or_default()
        );
        if let Err(error) = append(path, &text) {
            let _ = writeln!(
                std::io::stderr(),
                "warning: github: cannot write $GITHUB_OUTPUT: {error}"
            );
        }
    }
    if let Some(path) = &actions.step_summary {
        let links = Links {
            check_url: check_url.map(String::from),
            ..links.clone()
        };
        let text = markdown::summary(release, &links);
        if let Err(error) = append(path, &format!("{text}\n")) {
            let _ = writeln!(
                std::io::stderr(),
                "warning: github: cannot write $GITHUB_STEP_SUMMARY: {error}"
            );
        }
    }
    if actions.commands {
        let mut stderr = std::io::stderr().lock();
        for command in workflow_commands(release, sources) {
            let _ = writeln!(stderr, "{command}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(command_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(command_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn shorten_marks_the_cut() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
