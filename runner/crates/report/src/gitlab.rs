//! GitLab: a commit status per Rollout, a sticky merge request note edited in place, and a
//! collapsible summary section in the job log.
//!
//! REST endpoints used (GitLab REST API v4):
//! - commit status: <https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit>
//!   (`POST /projects/:id/statuses/:sha`; `state` is `pending`, `running`, `success`, `failed`
//!   or `canceled`; GitLab refuses a "transition" to the state a status already has, so a
//!   status is only posted when its state changes)
//! - merge request notes: <https://docs.gitlab.com/api/notes/#list-all-merge-request-notes>,
//!   `#create-new-merge-request-note`, `#modify-existing-merge-request-note`
//!   (pagination with the `x-next-page` header)
//! - job log sections: <https://docs.gitlab.com/ci/jobs/job_logs/#custom-collapsible-sections>
//!
//! Auth is `PRIVATE-TOKEN` (a project, group or personal access token with the `api` scope).
//! `CI_JOB_TOKEN` cannot post statuses or notes (the job token's API allowlist excludes them):
//! with only a job token the reporter warns and writes the job log section alone.

use std::io::Write;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use super::delivery::{
    CallCounts, CallError, Counters, DeliveryOptions, Executor, Http, Job, Log, Pacer, Secret,
    Weight, Worker,
};
use super::github::{shorten, update_at};
use super::markdown::{self, CHECK_URL_PLACEHOLDER, Links, Verdict};
use super::release::Release;
use super::reporters::significance;
use super::{Reporter, Update};

/// GitLab's limit on a commit status description.
const DESCRIPTION_MAX: usize = 255;
const MAX_NOTE_PAGES: u32 = 30;

/// What the GitLab reporter needs.
#[derive(Debug, Clone)]
pub struct GitlabConfig {
    /// `CI_API_V4_URL`, e.g. `https://gitlab.com/api/v4`.
    pub api_url: String,
    /// `CI_PROJECT_ID`, or the `group/project` path (URL-encoded here).
    pub project: String,
    /// A token with the `api` scope; `None` with only `CI_JOB_TOKEN` (no API calls).
    pub token: Option<Secret>,
    pub sha: String,
    /// The branch or tag (`ref` of the status).
    pub ref_name: Option<String>,
    /// `CI_PIPELINE_ID`: attaches the status to this pipeline.
    pub pipeline_id: Option<u64>,
    /// The merge request IID to comment on.
    pub mr_iid: Option<u64>,
    /// `CI_JOB_URL`.
    pub run_url: Option<String>,
    /// The release's HTML report and JUnit (CI artifacts), linked from the note.
    pub report_url: Option<String>,
    pub environment: Option<String>,
    /// Post the merge request note.
    pub note: bool,
    /// Write the collapsible summary to the job log (stderr) at the end.
    pub job_log: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum GitlabJob {
    Names {
        status_name: String,
        key: String,
    },
    Status {
        state: &'static str,
        description: String,
    },
    Note(String),
    /// The hidden marker that finds the sticky note, for notes that are not a release's
    /// (`plan --comment`).
    Marker(String),
}

impl Job for GitlabJob {
    fn supersedes(&self, older: &Self) -> bool {
        matches!(
            (self, older),
            (Self::Status { .. }, Self::Status { .. }) | (Self::Note(_), Self::Note(_))
        )
    }
}

pub(crate) struct GitlabExecutor {
    http: Http,
    api: String,
    project: String,
    token: Option<Secret>,
    sha: String,
    ref_name: Option<String>,
    pipeline_id: Option<u64>,
    mr_iid: Option<u64>,
    run_url: Option<String>,
    status_name: String,
    marker: String,
    last_state: Option<&'static str>,
    note_id: Option<u64>,
    note_searched: bool,
}

impl GitlabExecutor {
    async fn call(
        &self,
        route: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<super::delivery::Answer, CallError> {
        let Some(token) = &self.token else {
            return Ok(super::delivery::Answer {
                json: serde_json::Value::Null,
                headers: Default::default(),
            });
        };
        let url = format!("{}/projects/{}{path}", self.api, self.project);
        let mut request = self
            .http
            .client()
            .request(method, url)
            .header("PRIVATE-TOKEN", token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        self.http.send(route, request).await
    }

    async fn status(&mut self, state: &'static str, description: &str) -> Result<(), CallError> {
        if self.last_state == Some(state) {
            return Ok(());
        }
        let mut body = json!({
            "state": state,
            "name": self.status_name,
            "description": shorten(description, DESCRIPTION_MAX),
        });
        if let Some(reference) = &self.ref_name {
            body["ref"] = json!(reference);
        }
        if let Some(url) = &self.run_url {
            body["target_url"] = json!(url);
        }
        if let Some(id) = self.pipeline_id {
            body["pipeline_id"] = json!(id);
        }
        self.call(
            "POST /projects/:id/statuses/:sha",
            reqwest::Method::POST,
            &format!("/statuses/{}", self.sha),
            Some(&body),
        )
        .await?;
        self.last_state = Some(state);
        Ok(())
    }

    async fn note(&mut self, body: &str) -> Result<(), CallError> {
        let Some(iid) = self.mr_iid else {
            return Ok(());
        };
        let body = body.replace(CHECK_URL_PLACEHOLDER, self.run_url.as_deref().unwrap_or(""));
        if self.note_id.is_none() && !self.note_searched {
            self.note_id = self.find_note(iid).await?;
            self.note_searched = true;
        }
        if let Some(id) = self.note_id {
            let result = self
                .call(
                    "PUT /projects/:id/merge_requests/:merge_request_iid/notes/:note_id",
                    reqwest::Method::PUT,
                    &format!("/merge_requests/{iid}/notes/{id}"),
                    Some(&json!({ "body": body })),
                )
                .await;
            match result {
                Err(CallError::Status { code: 404, .. }) => self.note_id = None,
                other => return other.map(|_| ()),
            }
        }
        match self
            .call(
                "POST /projects/:id/merge_requests/:merge_request_iid/notes",
                reqwest::Method::POST,
                &format!("/merge_requests/{iid}/notes"),
                Some(&json!({ "body": body })),
            )
            .await
        {
            Ok(answer) => {
                self.note_id = answer.json["id"].as_u64();
                Ok(())
            }
            Err(error) => {
                self.note_searched = false;
                Err(error)
            }
        }
    }

    async fn find_note(&self, iid: u64) -> Result<Option<u64>, CallError> {
        let mut page = 1;
        for _ in 0..MAX_NOTE_PAGES {
            let answer = self
                .call(
                    "GET /projects/:id/merge_requests/:merge_request_iid/notes",
                    reqwest::Method::GET,
                    &format!("/merge_requests/{iid}/notes?per_page=100&page={page}"),
                    None,
                )
                .await?;
            let notes = answer.json.as_array().cloned().unwrap_or_default();
            if let Some(found) = notes.iter().find(|n| {
                n["body"]
                    .as_str()
                    .is_some_and(|body| body.contains(self.marker.as_str()))
            }) {
                return Ok(found["id"].as_u64());
            }
            match answer
                .headers
                .get("x-next-page")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok())
            {
                Some(next) if next > page && !notes.is_empty() => page = next,
                _ => break,
            }
        }
        Ok(None)
    }
}

impl Executor<GitlabJob> for GitlabExecutor {
    async fn execute(&mut self, job: &GitlabJob) -> Result<(), CallError> {
        match job {
            GitlabJob::Names { status_name, key } => {
                self.status_name = status_name.clone();
                self.marker = markdown::marker(key);
                Ok(())
            }
            GitlabJob::Status { state, description } => self.status(state, description).await,
            GitlabJob::Note(body) => self.note(body).await,
            GitlabJob::Marker(marker) => {
                self.marker = marker.clone();
                Ok(())
            }
        }
    }
}

/// The GitLab reporter. Create it inside a tokio runtime; call [`GitlabReporter::finish`]
/// before exiting.
pub struct GitlabReporter {
    release: Release,
    pacer: Pacer,
    worker: Worker<GitlabJob, GitlabExecutor>,
    counters: Counters,
    links: Links,
    key: String,
    note: bool,
    job_log: bool,
    last_note: Option<String>,
    flush_timeout: Duration,
    finished: bool,
}

impl GitlabReporter {
    pub fn start(config: GitlabConfig, options: &DeliveryOptions) -> Self {
        let secrets: Vec<&Secret> = config.token.iter().collect();
        let log = Log::new("gitlab", &secrets);
        if config.token.is_none() {
            log.warn(
                "only CI_JOB_TOKEN is available, and job tokens cannot post commit statuses or \
                 merge request notes; set GITLAB_TOKEN (a project access token with the `api` \
                 scope) to report on the commit and the merge request",
            );
        }
        let counters = Counters::default();
        let http = Http::new(options, counters.clone(), log.clone());
        let project = if config.project.chars().all(|c| c.is_ascii_digit()) {
            config.project.clone()
        } else {
            config.project.replace('/', "%2F")
        };
        let executor = GitlabExecutor {
            http,
            api: config.api_url.trim_end_matches('/').to_string(),
            project,
            token: config.token.clone(),
            sha: config.sha.clone(),
            ref_name: config.ref_name.clone(),
            pipeline_id: config.pipeline_id,
            mr_iid: config.mr_iid,
            run_url: config.run_url.clone(),
            status_name: String::new(),
            marker: String::new(),
            last_state: None,
            note_id: None,
            note_searched: false,
        };
        let worker = Worker::spawn(executor, options, counters.clone(), log);
        Self {
            release: Release::default(),
            pacer: Pacer::new(options.interval),
            worker,
            counters,
            links: Links {
                check_url: None,
                run_url: config.run_url.clone(),
                report_url: config.report_url.clone(),
                commit: Some(config.sha.clone()),
                commit_url: None,
                environment: config.environment.clone(),
            },
            key: String::new(),
            note: config.note && config.mr_iid.is_some() && config.token.is_some(),
            job_log: config.job_log,
            last_note: None,
            flush_timeout: options.flush_timeout,
            finished: false,
        }
    }

    /// Post `body` as the sticky note of the configured merge request that holds `marker`
    /// (`body` must contain it): the note found by it is edited in place, else one is created.
    /// Retried as reports are; never fails (the counts tell). Nothing is posted without a
    /// merge request, a token with the `api` scope, or with `note` off.
    pub async fn sticky_note(
        config: GitlabConfig,
        options: &DeliveryOptions,
        marker: &str,
        body: &str,
    ) -> CallCounts {
        let reporter = Self::start(config, options);
        if reporter.note {
            reporter.worker.send(GitlabJob::Marker(marker.to_string()));
            reporter.worker.send(GitlabJob::Note(body.to_string()));
        }
        let counters = reporter.counters.clone();
        let _ = reporter.worker.close(reporter.flush_timeout).await;
        counters.snapshot()
    }

    pub fn release(&self) -> &Release {
        &self.release
    }

    fn send(&mut self, weight: Weight) {
        let verdict = Verdict::of(&self.release);
        let state = match verdict {
            Verdict::InProgress => "running",
            Verdict::Promoted | Verdict::Paused => "success",
            Verdict::Aborted | Verdict::Degraded | Verdict::Invalid => "failed",
            Verdict::TimedOut | Verdict::Superseded | Verdict::Deleted => "canceled",
        };
        self.worker.send(GitlabJob::Status {
            state,
            description: markdown::title(&self.release),
        });
        if self.note && (weight == Weight::Major || self.release.outcome.is_some()) {
            let body = markdown::comment(&self.release, &self.links, &self.key);
            if self.last_note.as_ref() != Some(&body) {
                self.last_note = Some(body.clone());
                self.worker.send(GitlabJob::Note(body));
            }
        }
    }

    fn flush(&mut self, at: Timestamp) {
        if let Some(weight) = self.pacer.flush(at) {
            self.send(weight);
        }
    }

    /// Wait (bounded) for the queued calls and write the job log section. Never fails.
    pub async fn finish(self) -> CallCounts {
        let Self {
            release,
            worker,
            counters,
            job_log,
            flush_timeout,
            ..
        } = self;
        worker.close(flush_timeout).await;
        if job_log && release.started_at.is_some() {
            let _ =
                std::io::stderr().write_all(job_log_section(&release, Timestamp::now()).as_bytes());
        }
        counters.snapshot()
    }

    pub fn calls(&self) -> CallCounts {
        self.counters.snapshot()
    }
}

/// A collapsed job log section with the plain-text summary.
pub fn job_log_section(release: &Release, now: Timestamp) -> String {
    let name: String = format!("rollout_runner_{}_{}", release.namespace, release.name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ts = now.as_second();
    let verdict = Verdict::of(release);
    format!(
        "\x1b[0Ksection_start:{ts}:{name}[collapsed=true]\r\x1b[0K{} release {}: {}\n{}\x1b[0Ksection_end:{ts}:{name}\r\x1b[0K\n",
        verdict.icon(),
        release.id(),
        verdict.as_str(),
        markdown::plain(release)
    )
}

impl Reporter for GitlabReporter {
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
                let mut status_name = format!("rollout {}", self.release.id());
                if let Some(environment) = &self.links.environment {
                    self.key = format!("{} {environment}", self.key);
                    status_name = format!("{status_name} ({environment})");
                }
                self.worker.send(GitlabJob::Names {
                    status_name,
                    key: self.key.clone(),
                });
                self.pacer.note(at, Weight::Major);
                self.flush(at);
            }
            Update::Finished { .. } => {
                self.pacer.note(at, Weight::Major);
                self.flush(at);
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
