//! Approvals from the forge: `/rollout promote|abort|retry` in a pull request comment (GitHub)
//! or merge request note (GitLab), and the record of who approved what on the Rollout.
//!
//! The record lives on the Rollout (the [`APPROVALS_ANNOTATION`]), not in the sticky comment:
//! the release's own reporter rewrites that comment at every update, so a line another job
//! wrote would be lost at the next one. [`crate::release::Release`] reads the annotation with
//! the status, and [`crate::markdown`] renders it in the check run and the comment, so the
//! record survives every rewrite. Entries for another pod template (an earlier release) are
//! not shown.
//!
//! The forge calls (GitHub REST `2022-11-28`, GitLab REST v4):
//! - GitHub: <https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user>,
//!   <https://docs.github.com/en/rest/reactions/reactions#create-reaction-for-an-issue-comment>,
//!   <https://docs.github.com/en/rest/issues/comments> (list, create, update)
//! - GitLab: <https://docs.gitlab.com/api/members/#get-a-member-of-a-group-or-project-including-inherited-and-invited-members>,
//!   <https://docs.gitlab.com/api/emoji_reactions/> (award on a note),
//!   <https://docs.gitlab.com/api/notes/> (list, create, update merge request notes)
//!
//! Owns parsing the command and the event, the permission check and the replies. Refuses to
//! touch the cluster: the binary runs the operation with the same code as `rollout-runner
//! promote`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use rollout_runner_api::crd::Rollout;

use super::delivery::{
    Answer, CallCounts, CallError, Counters, DeliveryOptions, Http, Log, Secret,
};
use super::markdown;

/// The annotation on a Rollout with the approvals of its current release: a JSON list of
/// [`Approval`].
pub const APPROVALS_ANNOTATION: &str = "rollout-runner.io/approvals";
/// Entries kept in the annotation (the newest).
const MAX_APPROVALS: usize = 20;
/// Pages of comments read when looking for the release comments.
const MAX_PAGES: u32 = 30;
/// GitLab's Developer role: can push to unprotected branches, GitLab's "write access".
pub const GITLAB_MIN_ACCESS_LEVEL: u64 = 30;

/// A command someone gave from the forge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// `promote`, `promote --full`, `abort`, `retry`.
    pub command: String,
    /// The forge user name.
    pub by: String,
    pub at: Timestamp,
    /// The pod-template hash of the release it was given for.
    pub pod_hash: String,
    /// The comment or note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The approvals recorded on a rollout for pod template `pod_hash` (an unreadable annotation
/// reads as none: it is a record, never an input to a decision).
pub fn approvals(rollout: &Rollout, pod_hash: &str) -> Vec<Approval> {
    let Some(text) = rollout
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPROVALS_ANNOTATION))
    else {
        return Vec::new();
    };
    serde_json::from_str::<Vec<Approval>>(text)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.pod_hash == pod_hash)
        .collect()
}

/// The annotation's value with `approval` added: entries of other releases dropped, the same
/// comment recorded once (a retried write), the newest [`MAX_APPROVALS`] kept.
pub fn with_approval(rollout: &Rollout, approval: &Approval) -> String {
    let mut list = approvals(rollout, &approval.pod_hash);
    list.retain(|a| a.url.is_none() || a.url != approval.url);
    list.push(approval.clone());
    let skip = list.len().saturating_sub(MAX_APPROVALS);
    serde_json::to_string(&list[skip..]).unwrap_or_else(|_| "[]".into())
}

/// What `/rollout` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Promote,
    PromoteFull,
    Abort,
    Retry,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::PromoteFull => "promote --full",
            Self::Abort => "abort",
            Self::Retry => "retry",
        }
    }

    /// The past tense, for records.
    pub fn done(self) -> &'static str {
        match self {
            Self::Promote => "promoted",
            Self::PromoteFull => "fully promoted",
            Self::Abort => "aborted",
            Self::Retry => "retried",
        }
    }
}

/// A parsed `/rollout` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub verb: Verb,
    /// `NAME` or `NAMESPACE/NAME`, when given.
    pub target: Option<String>,
}

/// How to write the command, for replies.
pub const USAGE: &str = "`/rollout promote [--full] [ROLLOUT]`, `/rollout abort [ROLLOUT]` or \
                         `/rollout retry [ROLLOUT]` (ROLLOUT: `NAME` or `NAMESPACE/NAME`, needed \
                         when the pull request released more than one)";

/// The command in a comment: its first line that starts with `/rollout`. `Ok(None)` when there
/// is none; an error (for a reply) when the line is not a valid command.
pub fn parse_command(body: &str) -> Result<Option<Command>, String> {
    let Some(line) = body.lines().map(str::trim).find(|line| {
        line.strip_prefix("/rollout")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    }) else {
        return Ok(None);
    };
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let (verb, rest) = match words.as_slice() {
        ["promote", "--full", rest @ ..] => (Verb::PromoteFull, rest),
        ["promote", rest @ ..] => (Verb::Promote, rest),
        ["abort", rest @ ..] => (Verb::Abort, rest),
        ["retry", rest @ ..] => (Verb::Retry, rest),
        [] => return Err(format!("`{line}` names no command; write {USAGE}")),
        [other, ..] => {
            return Err(format!(
                "`/rollout {other}` is not a command here; write {USAGE}"
            ));
        }
    };
    let target = match rest {
        [] => None,
        [name] if valid_target(name) => Some((*name).to_string()),
        _ => return Err(format!("`{line}` is not a command; write {USAGE}")),
    };
    Ok(Some(Command { verb, target }))
}

/// A Kubernetes name, optionally after a namespace and `/`.
fn valid_target(text: &str) -> bool {
    let name = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    match text.split_once('/') {
        Some((namespace, rest)) => name(namespace) && name(rest),
        None => name(text),
    }
}

/// A release the pull request's comments name (their hidden markers): namespace, name and
/// environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRef {
    pub namespace: String,
    pub name: String,
    pub environment: Option<String>,
    /// The sticky comment's id and body.
    pub comment_id: u64,
    pub comment_body: String,
}

impl ReleaseRef {
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The releases named by `comments` (id, body), in order, each rollout once.
pub fn releases_in(comments: &[(u64, String)]) -> Vec<ReleaseRef> {
    let prefix = "<!-- rollout-runner:release ";
    let mut out: Vec<ReleaseRef> = Vec::new();
    for (id, body) in comments {
        let Some(start) = body.find(prefix) else {
            continue;
        };
        let rest = &body[start + prefix.len()..];
        let Some(end) = rest.find(" -->") else {
            continue;
        };
        let key = &rest[..end];
        let (id_part, environment) = match key.split_once(' ') {
            Some((id, env)) => (id, Some(env.to_string())),
            None => (key, None),
        };
        let Some((namespace, name)) = id_part.split_once('/') else {
            continue;
        };
        if out
            .iter()
            .any(|r| r.namespace == namespace && r.name == name && r.environment == environment)
        {
            continue;
        }
        out.push(ReleaseRef {
            namespace: namespace.into(),
            name: name.into(),
            environment,
            comment_id: *id,
            comment_body: body.clone(),
        });
    }
    out
}

/// The release a command is for: the one named (by `NAME` or `NAMESPACE/NAME`), or the only one
/// the pull request released. An error for a reply otherwise.
pub fn choose_release<'a>(
    releases: &'a [ReleaseRef],
    target: Option<&str>,
) -> Result<&'a ReleaseRef, String> {
    let list = || {
        releases
            .iter()
            .map(|r| format!("`{}`", r.id()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match target {
        None => match releases {
            [] => Err(
                "no release of rollout-runner has commented here, so there is no rollout \
                       to act on"
                    .into(),
            ),
            [only] => Ok(only),
            _ => Err(format!(
                "this pull request released several rollouts ({}); name one: \
                 `/rollout promote NAMESPACE/NAME`",
                list()
            )),
        },
        Some(target) => {
            let matches: Vec<&ReleaseRef> = releases
                .iter()
                .filter(|r| match target.split_once('/') {
                    Some((namespace, name)) => r.namespace == namespace && r.name == name,
                    None => r.name == target,
                })
                .collect();
            match matches.as_slice() {
                [one] => Ok(one),
                [] => Err(format!(
                    "`{target}` was not released from here (released: {}); a comment command \
                     acts only on rollouts this pull request's releases reported on",
                    if releases.is_empty() {
                        "none".to_string()
                    } else {
                        list()
                    }
                )),
                _ => Err(format!(
                    "`{target}` is released in several namespaces ({}); name it as \
                     `NAMESPACE/NAME`",
                    list()
                )),
            }
        }
    }
}

/// The approvals section of the sticky comment and the check run (empty without approvals).
pub fn section(approvals: &[Approval]) -> String {
    if approvals.is_empty() {
        return String::new();
    }
    let mut out = String::from("**Approvals**\n\n");
    for approval in approvals {
        let by = markdown::cell(&approval.by);
        let command = format!("`/rollout {}`", approval.command);
        let at = approval.at.strftime("%Y-%m-%d %H:%M:%S UTC");
        match &approval.url {
            Some(url) => out.push_str(&format!("- {command} by @{by} at [{at}]({url})\n")),
            None => out.push_str(&format!("- {command} by @{by} at {at}\n")),
        }
    }
    out
}

const SECTION_START: &str = "<!-- rollout-runner:approvals -->";
const SECTION_END: &str = "<!-- /rollout-runner:approvals -->";

/// `section` between its markers, for a comment body.
pub fn marked_section(approvals: &[Approval]) -> String {
    let section = section(approvals);
    if section.is_empty() {
        return String::new();
    }
    format!("{SECTION_START}\n{section}{SECTION_END}\n")
}

/// `body` (a release comment) with its approvals section replaced by (or, the first time,
/// followed by) the one for `approvals`.
pub fn replace_section(body: &str, approvals: &[Approval]) -> String {
    let new = marked_section(approvals);
    if let (Some(start), Some(end)) = (body.find(SECTION_START), body.find(SECTION_END))
        && start < end
    {
        let after = &body[end + SECTION_END.len()..];
        let after = after.strip_prefix('\n').unwrap_or(after);
        return format!("{}{new}{after}", &body[..start]);
    }
    format!("{}\n\n{new}", body.trim_end())
}

/// The comment event, as both forges give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentEvent {
    /// The pull request number or merge request IID.
    pub number: u64,
    pub comment_id: u64,
    pub body: String,
    /// The user name (GitHub login, GitLab username).
    pub user: String,
    /// GitLab's numeric user id (the members API wants it).
    pub user_id: Option<u64>,
    pub url: Option<String>,
    /// GitLab: the project id in the payload.
    pub project: Option<String>,
}

/// Why an event is not a command to act on (exit 0 with a note), or unreadable (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventProblem {
    /// Not a new comment on a pull/merge request: nothing to do.
    Ignored(String),
    /// The payload lacks what a comment event has.
    Invalid(String),
}

fn field<'a>(event: &'a Value, pointer: &str) -> Result<&'a Value, EventProblem> {
    event
        .pointer(pointer)
        .filter(|v| !v.is_null())
        .ok_or_else(|| {
            EventProblem::Invalid(format!(
                "the event has no `{}`",
                &pointer[1..].replace('/', ".")
            ))
        })
}

/// A GitHub `issue_comment` payload.
pub fn github_event(event: &Value) -> Result<CommentEvent, EventProblem> {
    let action = event["action"].as_str().unwrap_or_default();
    if action != "created" {
        return Err(EventProblem::Ignored(format!(
            "the comment was {action}, not created: commands run only from new comments"
        )));
    }
    if event
        .pointer("/issue/pull_request")
        .is_none_or(Value::is_null)
    {
        return Err(EventProblem::Ignored(
            "the comment is on an issue, not a pull request".into(),
        ));
    }
    let text = |pointer: &str| -> Result<String, EventProblem> {
        field(event, pointer)?
            .as_str()
            .map(String::from)
            .ok_or_else(|| EventProblem::Invalid(format!("`{pointer}` is not text")))
    };
    let number = |pointer: &str| -> Result<u64, EventProblem> {
        field(event, pointer)?
            .as_u64()
            .ok_or_else(|| EventProblem::Invalid(format!("`{pointer}` is not a number")))
    };
    Ok(CommentEvent {
        number: number("/issue/number")?,
        comment_id: number("/comment/id")?,
        body: text("/comment/body")?,
        user: text("/comment/user/login")?,
        user_id: None,
        url: event
            .pointer("/comment/html_url")
            .and_then(Value::as_str)
            .map(String::from),
        project: None,
    })
}

/// A GitLab note event (a project webhook's "Comments" payload, `object_kind: note`).
pub fn gitlab_event(event: &Value) -> Result<CommentEvent, EventProblem> {
    if event["object_kind"].as_str() != Some("note") {
        return Err(EventProblem::Ignored(format!(
            "the event is `{}`, not a note",
            event["object_kind"].as_str().unwrap_or("?")
        )));
    }
    if event
        .pointer("/object_attributes/noteable_type")
        .and_then(Value::as_str)
        != Some("MergeRequest")
    {
        return Err(EventProblem::Ignored(
            "the note is not on a merge request".into(),
        ));
    }
    let action = event
        .pointer("/object_attributes/action")
        .and_then(Value::as_str)
        .unwrap_or("create");
    if action != "create" {
        return Err(EventProblem::Ignored(format!(
            "the note was {action}d, not created: commands run only from new notes"
        )));
    }
    let number = |pointer: &str| -> Result<u64, EventProblem> {
        field(event, pointer)?
            .as_u64()
            .ok_or_else(|| EventProblem::Invalid(format!("`{pointer}` is not a number")))
    };
    let text = |pointer: &str| -> Result<String, EventProblem> {
        field(event, pointer)?
            .as_str()
            .map(String::from)
            .ok_or_else(|| EventProblem::Invalid(format!("`{pointer}` is not text")))
    };
    Ok(CommentEvent {
        number: number("/merge_request/iid")?,
        comment_id: number("/object_attributes/id")?,
        body: text("/object_attributes/note")?,
        user: text("/user/username")?,
        user_id: Some(
            event
                .pointer("/user/id")
                .or_else(|| event.pointer("/object_attributes/author_id"))
                .and_then(Value::as_u64)
                .ok_or_else(|| EventProblem::Invalid("the event has no `user.id`".into()))?,
        ),
        url: event
            .pointer("/object_attributes/url")
            .and_then(Value::as_str)
            .map(String::from),
        project: event
            .pointer("/project/id")
            .and_then(Value::as_u64)
            .map(|id| id.to_string()),
    })
}

/// Where and how to call the forge.
#[derive(Debug, Clone)]
pub enum ForgeConfig {
    Github {
        /// `https://api.github.com`.
        api_url: String,
        token: Secret,
        /// `owner/name`.
        repository: String,
    },
    Gitlab {
        /// `https://gitlab.com/api/v4`.
        api_url: String,
        token: Secret,
        /// Id or `group/project`.
        project: String,
    },
}

/// A reaction to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// Accepted: it is being carried out.
    Accepted,
    /// Refused: no permission, or not a release of this pull request.
    Refused,
    /// Could not be carried out, or not understood.
    Failed,
}

/// The forge calls of one command.
pub struct Forge {
    config: ForgeConfig,
    http: Http,
    counters: Counters,
}

impl Forge {
    pub fn new(config: ForgeConfig, options: &DeliveryOptions) -> Self {
        let token = match &config {
            ForgeConfig::Github { token, .. } | ForgeConfig::Gitlab { token, .. } => token,
        };
        let log = Log::new(
            match config {
                ForgeConfig::Github { .. } => "github",
                ForgeConfig::Gitlab { .. } => "gitlab",
            },
            &[token],
        );
        let counters = Counters::default();
        let http = Http::new(options, counters.clone(), log);
        Self {
            config,
            http,
            counters,
        }
    }

    /// The calls made so far.
    pub fn calls(&self) -> CallCounts {
        self.counters.snapshot()
    }

    async fn call(
        &self,
        route: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CallError> {
        let request = match &self.config {
            ForgeConfig::Github {
                api_url,
                token,
                repository,
            } => {
                let url = format!("{}/repos/{repository}{path}", api_url.trim_end_matches('/'));
                self.http
                    .client()
                    .request(method, url)
                    .header("Accept", "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", "2022-11-28")
                    .bearer_auth(token.expose())
            }
            ForgeConfig::Gitlab {
                api_url,
                token,
                project,
            } => {
                let url = format!(
                    "{}/projects/{}{path}",
                    api_url.trim_end_matches('/'),
                    project.replace('/', "%2F")
                );
                self.http
                    .client()
                    .request(method, url)
                    .header("PRIVATE-TOKEN", token.expose())
            }
        };
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        self.http.send(route, request).await
    }

    /// Whether `event`'s author may change rollouts: GitHub `admin`, `maintain` or `write`
    /// permission on the repository; GitLab Developer or higher on the project. `Ok(Err(what
    /// they have))` when not.
    pub async fn may_write(&self, event: &CommentEvent) -> Result<Result<(), String>, String> {
        match &self.config {
            ForgeConfig::Github { .. } => {
                let answer = self
                    .call(
                        "GET /repos/{owner}/{repo}/collaborators/{username}/permission",
                        reqwest::Method::GET,
                        &format!("/collaborators/{}/permission", path_segment(&event.user)),
                        None,
                    )
                    .await;
                let answer = match answer {
                    Ok(answer) => answer,
                    // Not a collaborator at all.
                    Err(CallError::Status { code: 404, .. }) => return Ok(Err("none".into())),
                    Err(error) => {
                        return Err(format!("cannot read @{}'s permission: {error}", event.user));
                    }
                };
                let permission = answer.json["permission"].as_str().unwrap_or("none");
                let role = answer.json["role_name"].as_str().unwrap_or(permission);
                if matches!(permission, "admin" | "write")
                    || matches!(role, "admin" | "maintain" | "write")
                {
                    Ok(Ok(()))
                } else {
                    Ok(Err(role.to_string()))
                }
            }
            ForgeConfig::Gitlab { .. } => {
                let Some(user_id) = event.user_id else {
                    return Err("the event has no user id".into());
                };
                let answer = self
                    .call(
                        "GET /projects/:id/members/all/:user_id",
                        reqwest::Method::GET,
                        &format!("/members/all/{user_id}"),
                        None,
                    )
                    .await;
                match answer {
                    Ok(answer) => {
                        let level = answer.json["access_level"].as_u64().unwrap_or(0);
                        if level >= GITLAB_MIN_ACCESS_LEVEL {
                            Ok(Ok(()))
                        } else {
                            Ok(Err(format!("access level {level}")))
                        }
                    }
                    Err(CallError::Status { code: 404, .. }) => Ok(Err("not a member".into())),
                    Err(error) => Err(format!(
                        "cannot read @{}'s access level: {error}",
                        event.user
                    )),
                }
            }
        }
    }

    /// React to the command's comment. A failure is a warning: the reaction only tells.
    pub async fn react(&self, event: &CommentEvent, reaction: Reaction) {
        let _ = match &self.config {
            ForgeConfig::Github { .. } => {
                let content = match reaction {
                    Reaction::Accepted => "+1",
                    Reaction::Refused => "-1",
                    Reaction::Failed => "confused",
                };
                self.call(
                    "POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
                    reqwest::Method::POST,
                    &format!("/issues/comments/{}/reactions", event.comment_id),
                    Some(&json!({ "content": content })),
                )
                .await
            }
            ForgeConfig::Gitlab { .. } => {
                let name = match reaction {
                    Reaction::Accepted => "thumbsup",
                    Reaction::Refused => "thumbsdown",
                    Reaction::Failed => "confused",
                };
                self.call(
                    "POST /projects/:id/merge_requests/:merge_request_iid/notes/:note_id/award_emoji",
                    reqwest::Method::POST,
                    &format!(
                        "/merge_requests/{}/notes/{}/award_emoji",
                        event.number, event.comment_id
                    ),
                    Some(&json!({ "name": name })),
                )
                .await
            }
        };
    }

    /// Reply on the pull/merge request. A failure is a warning.
    pub async fn reply(&self, event: &CommentEvent, text: &str) {
        let body = json!({ "body": text });
        let _ = match &self.config {
            ForgeConfig::Github { .. } => {
                self.call(
                    "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
                    reqwest::Method::POST,
                    &format!("/issues/{}/comments", event.number),
                    Some(&body),
                )
                .await
            }
            ForgeConfig::Gitlab { .. } => {
                self.call(
                    "POST /projects/:id/merge_requests/:merge_request_iid/notes",
                    reqwest::Method::POST,
                    &format!("/merge_requests/{}/notes", event.number),
                    Some(&body),
                )
                .await
            }
        };
    }

    /// The comments (id, body) of the pull/merge request, every page.
    pub async fn comments(&self, number: u64) -> Result<Vec<(u64, String)>, String> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let (route, path) = match &self.config {
                ForgeConfig::Github { .. } => (
                    "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
                    format!("/issues/{number}/comments?per_page=100&page={page}"),
                ),
                ForgeConfig::Gitlab { .. } => (
                    "GET /projects/:id/merge_requests/:merge_request_iid/notes",
                    format!("/merge_requests/{number}/notes?per_page=100&page={page}"),
                ),
            };
            let answer = self
                .call(route, reqwest::Method::GET, &path, None)
                .await
                .map_err(|error| format!("cannot read the comments of #{number}: {error}"))?;
            let items = answer.json.as_array().cloned().unwrap_or_default();
            out.extend(items.iter().filter_map(|item| {
                Some((item["id"].as_u64()?, item["body"].as_str()?.to_string()))
            }));
            let more = match &self.config {
                ForgeConfig::Github { .. } => answer
                    .headers
                    .get("link")
                    .and_then(|l| l.to_str().ok())
                    .is_some_and(|l| l.contains("rel=\"next\"")),
                ForgeConfig::Gitlab { .. } => answer
                    .headers
                    .get("x-next-page")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| !v.trim().is_empty()),
            };
            if !more || items.is_empty() {
                break;
            }
        }
        Ok(out)
    }

    /// Write the approvals section into the release's sticky comment, so the record shows at
    /// once (the release's reporter renders the same section from the annotation at its next
    /// update). A failure is a warning.
    pub async fn record(&self, number: u64, release: &ReleaseRef, approvals: &[Approval]) {
        let body = json!({ "body": replace_section(&release.comment_body, approvals) });
        let _ = match &self.config {
            ForgeConfig::Github { .. } => {
                self.call(
                    "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
                    reqwest::Method::PATCH,
                    &format!("/issues/comments/{}", release.comment_id),
                    Some(&body),
                )
                .await
            }
            ForgeConfig::Gitlab { .. } => {
                self.call(
                    "PUT /projects/:id/merge_requests/:merge_request_iid/notes/:note_id",
                    reqwest::Method::PUT,
                    &format!("/merge_requests/{number}/notes/{}", release.comment_id),
                    Some(&body),
                )
                .await
            }
        };
    }
}

/// A user name as one path segment (GitHub logins are `[A-Za-z0-9-]`, but the payload is
/// input).
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_from_the_first_rollout_line() {
        let parsed = parse_command("LGTM\n/rollout promote checkout/web\n").unwrap();
        assert_eq!(
            parsed,
            Some(Command {
                verb: Verb::Promote,
                target: Some("checkout/web".into())
            })
        );
        assert_eq!(
            parse_command("/rollout promote --full")
                .unwrap()
                .unwrap()
                .verb,
            Verb::PromoteFull
        );
        assert_eq!(
            parse_command("/rollout abort").unwrap().unwrap().verb,
            Verb::Abort
        );
        assert_eq!(parse_command("no command").unwrap(), None);
        assert_eq!(parse_command("/rollouts promote").unwrap(), None);
        assert!(
            parse_command("/rollout deploy")
                .unwrap_err()
                .contains("not a command")
        );
        assert!(parse_command("/rollout promote a b").is_err());
        assert!(parse_command("/rollout promote Web!").is_err());
        assert!(
            parse_command("/rollout")
                .unwrap_err()
                .contains("names no command")
        );
    }

    fn release(namespace: &str, name: &str, id: u64) -> (u64, String) {
        (
            id,
            format!(
                "{}\n### Release",
                markdown::marker(&format!("{namespace}/{name}"))
            ),
        )
    }

    #[test]
    fn the_release_is_the_only_one_or_the_one_named() {
        let one = releases_in(&[(1, "hello".into()), release("shop", "web", 2)]);
        assert_eq!(choose_release(&one, None).unwrap().id(), "shop/web");
        assert_eq!(choose_release(&one, Some("web")).unwrap().comment_id, 2);
        assert!(
            choose_release(&one, Some("api"))
                .unwrap_err()
                .contains("not released from here")
        );
        let two = releases_in(&[release("shop", "web", 2), release("shop", "api", 3)]);
        assert!(choose_release(&two, None).unwrap_err().contains("name one"));
        assert_eq!(
            choose_release(&two, Some("shop/api")).unwrap().comment_id,
            3
        );
        assert!(
            choose_release(&[], None)
                .unwrap_err()
                .contains("no release")
        );
    }

    #[test]
    fn comment_events_of_both_forges() {
        let github = json!({
            "action": "created",
            "issue": {"number": 5, "pull_request": {"url": "u"}},
            "comment": {"id": 9, "body": "/rollout abort", "user": {"login": "mona"},
                        "html_url": "https://github.com/o/r/pull/5#issuecomment-9"}
        });
        let event = github_event(&github).unwrap();
        assert_eq!(
            (event.number, event.comment_id, event.user.as_str()),
            (5, 9, "mona")
        );
        let mut on_issue = github.clone();
        on_issue["issue"]["pull_request"] = Value::Null;
        assert!(matches!(
            github_event(&on_issue),
            Err(EventProblem::Ignored(_))
        ));
        let mut edited = github;
        edited["action"] = json!("edited");
        assert!(matches!(
            github_event(&edited),
            Err(EventProblem::Ignored(_))
        ));

        // GitLab's "Comments" webhook payload on a merge request.
        let gitlab = json!({
            "object_kind": "note",
            "user": {"id": 42, "username": "alex"},
            "project": {"id": 7},
            "object_attributes": {"id": 1244, "note": "/rollout promote", "noteable_type":
                "MergeRequest", "url": "https://gitlab.example.com/g/p/-/merge_requests/3#note_1244"},
            "merge_request": {"iid": 3}
        });
        let event = gitlab_event(&gitlab).unwrap();
        assert_eq!(
            (event.number, event.comment_id, event.user_id),
            (3, 1244, Some(42))
        );
        assert_eq!(event.project.as_deref(), Some("7"));
        let mut on_commit = gitlab.clone();
        on_commit["object_attributes"]["noteable_type"] = json!("Commit");
        assert!(matches!(
            gitlab_event(&on_commit),
            Err(EventProblem::Ignored(_))
        ));
        let mut broken = gitlab;
        broken["merge_request"] = Value::Null;
        assert!(matches!(
            gitlab_event(&broken),
            Err(EventProblem::Invalid(_))
        ));
    }

    #[test]
    fn the_section_is_replaced_not_repeated() {
        let approval = Approval {
            command: "promote".into(),
            by: "octocat".into(),
            at: "2026-01-02T03:04:05Z".parse().unwrap(),
            pod_hash: "abc".into(),
            url: Some("https://github.com/o/r/pull/1#issuecomment-9".into()),
        };
        let once = replace_section("<!-- m -->\nbody\n", std::slice::from_ref(&approval));
        assert!(once.contains("`/rollout promote` by @octocat at [2026-01-02 03:04:05 UTC]"));
        let twice = replace_section(&once, &[approval.clone(), approval]);
        assert_eq!(twice.matches(SECTION_START).count(), 1);
        assert_eq!(twice.matches("by @octocat").count(), 2);
    }
}
