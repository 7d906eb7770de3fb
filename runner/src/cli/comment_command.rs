//! `rollout-runner comment-command`: carry out a `/rollout promote|abort|retry` comment on a
//! pull request (GitHub `issue_comment` event) or merge request (GitLab note event).
//!
//! The order is the safety argument: the event is read, the command parsed, the commenter's
//! write access checked through the forge's API, the Rollout found among the releases this
//! pull request's sticky comments name, and only then is the cluster touched, with the same
//! code as `rollout-runner promote|abort|retry`. The approval is recorded on the Rollout
//! ([`APPROVALS_ANNOTATION`], in the same write as the operation's spec patch), where the
//! release's reporter reads it, and in the sticky comment at once.
//!
//! Exit codes: 0 carried out, or nothing to do (no command, not a new comment on a pull
//! request); 1 refused (no write access, or a rollout this pull request did not release);
//! 2 invalid input (a malformed command or event, a missing token) or an error (the forge or
//! the cluster could not be reached).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::error::ExitStatus;
use crate::operate::{Operation, patches};
use crate::report::approval::{
    self, APPROVALS_ANNOTATION, Approval, CommentEvent, EventProblem, Forge, ForgeConfig, Reaction,
    Verb,
};
use crate::report::delivery::{DeliveryOptions, Secret};

use super::connection::ConnectionArgs;
use super::operations::operate_on;

/// Which forge the event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ForgeKind {
    Github,
    Gitlab,
}

#[derive(Debug, Args)]
pub(crate) struct CommentCommandArgs {
    /// The forge [default: `gitlab` in GitLab CI (`GITLAB_CI`), else `github`].
    #[arg(long, value_enum)]
    forge: Option<ForgeKind>,

    /// The event payload (JSON). [default: `$GITHUB_EVENT_PATH` on GitHub, the file in
    /// `$TRIGGER_PAYLOAD` on GitLab (a pipeline triggered by a project webhook)]
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,

    /// GitHub token: reads permissions and comments, reacts and comments. [env: GITHUB_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    github_token: Option<String>,

    /// GitHub API root. [env: GITHUB_API_URL] [default: https://api.github.com]
    #[arg(long, value_name = "URL")]
    github_api_url: Option<String>,

    /// The repository, `owner/name`. [env: GITHUB_REPOSITORY]
    #[arg(long, value_name = "OWNER/NAME")]
    repository: Option<String>,

    /// GitLab token with the `api` scope. [env: GITLAB_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    gitlab_token: Option<String>,

    /// GitLab API root. [env: CI_API_V4_URL] [default: https://gitlab.com/api/v4]
    #[arg(long, value_name = "URL")]
    gitlab_api_url: Option<String>,

    /// GitLab project id or `group/project`. [default: the event's project, then
    /// `$CI_PROJECT_ID`]
    #[arg(long, value_name = "ID")]
    gitlab_project: Option<String>,

    #[command(flatten)]
    connection: ConnectionArgs,
}

fn env(name: &str) -> Option<String> {
    crate::ci::process_env(name).filter(|v| !v.is_empty())
}

/// Read and parse the event file; `source` names where its path came from.
fn read_event(path: &PathBuf, source: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{source}: cannot read `{}`", path.display()))?;
    serde_json::from_str(&text).map_err(|error| {
        anyhow::anyhow!(
            "{source}: `{}`:{}:{}: not JSON: {error}\n\nhint: pass the comment event's payload",
            path.display(),
            error.line(),
            error.column()
        )
    })
}

pub(crate) fn run(args: CommentCommandArgs) -> anyhow::Result<ExitStatus> {
    let kind = args.forge.unwrap_or(if env("GITLAB_CI").is_some() {
        ForgeKind::Gitlab
    } else {
        ForgeKind::Github
    });
    let (path, source) = match (&args.event, kind) {
        (Some(path), _) => (path.clone(), "--event".to_string()),
        (None, ForgeKind::Github) => match env("GITHUB_EVENT_PATH") {
            Some(path) => (PathBuf::from(path), "GITHUB_EVENT_PATH".into()),
            None => anyhow::bail!(
                "no event to read\n\nhint: run in a workflow `on: issue_comment` (GitHub sets \
                 GITHUB_EVENT_PATH) or pass --event FILE"
            ),
        },
        (None, ForgeKind::Gitlab) => match env("TRIGGER_PAYLOAD") {
            Some(path) => (PathBuf::from(path), "TRIGGER_PAYLOAD".into()),
            None => anyhow::bail!(
                "no event to read\n\nhint: trigger the pipeline from a project webhook for \
                 comments (GitLab then sets TRIGGER_PAYLOAD) or pass --event FILE"
            ),
        },
    };
    if kind == ForgeKind::Github
        && args.event.is_none()
        && let Some(name) = env("GITHUB_EVENT_NAME")
        && name != "issue_comment"
    {
        anyhow::bail!(
            "GITHUB_EVENT_NAME: this run is a `{name}` event; comment-command reads \
             `issue_comment` events\n\nhint: run it in a workflow `on: issue_comment: types: \
             [created]`"
        );
    }
    let payload = read_event(&path, &source)?;
    let parsed = match kind {
        ForgeKind::Github => approval::github_event(&payload),
        ForgeKind::Gitlab => approval::gitlab_event(&payload),
    };
    let event = match parsed {
        Ok(event) => event,
        Err(EventProblem::Ignored(why)) => {
            eprintln!("nothing to do: {why}");
            return Ok(ExitStatus::Success);
        }
        Err(EventProblem::Invalid(why)) => {
            anyhow::bail!("{source}: {why}\n\nhint: pass a comment event's payload")
        }
    };
    let command = approval::parse_command(&event.body);
    if let Ok(None) = command {
        eprintln!("nothing to do: the comment has no `/rollout` command");
        return Ok(ExitStatus::Success);
    }
    let config = forge_config(&args, kind, &event)?;
    super::runtime()?.block_on(carry_out(args.connection, config, event, command))
}

fn forge_config(
    args: &CommentCommandArgs,
    kind: ForgeKind,
    event: &CommentEvent,
) -> anyhow::Result<ForgeConfig> {
    Ok(match kind {
        ForgeKind::Github => ForgeConfig::Github {
            api_url: args
                .github_api_url
                .clone()
                .or_else(|| env("GITHUB_API_URL"))
                .unwrap_or_else(|| "https://api.github.com".into()),
            token: Secret::new(
                args.github_token
                    .clone()
                    .or_else(|| env("GITHUB_TOKEN"))
                    .context(
                        "no GitHub token\n\nhint: set GITHUB_TOKEN (`${{ github.token }}` with \
                         `pull-requests: write`) or pass --github-token",
                    )?,
            ),
            repository: args
                .repository
                .clone()
                .or_else(|| env("GITHUB_REPOSITORY"))
                .context("no repository\n\nhint: set GITHUB_REPOSITORY or pass --repository")?,
        },
        ForgeKind::Gitlab => ForgeConfig::Gitlab {
            api_url: args
                .gitlab_api_url
                .clone()
                .or_else(|| env("CI_API_V4_URL"))
                .unwrap_or_else(|| "https://gitlab.com/api/v4".into()),
            token: Secret::new(
                args.gitlab_token
                    .clone()
                    .or_else(|| env("GITLAB_TOKEN"))
                    .context(
                        "no GitLab token\n\nhint: set GITLAB_TOKEN (a project access token with \
                         the `api` scope) or pass --gitlab-token",
                    )?,
            ),
            project: args
                .gitlab_project
                .clone()
                .or_else(|| event.project.clone())
                .or_else(|| env("CI_PROJECT_ID"))
                .context("no project\n\nhint: pass --gitlab-project")?,
        },
    })
}

/// The link to this CI run, for replies that say where the details are.
fn run_link() -> String {
    let ci = crate::ci::CiContext::detect(
        crate::ci::process_env,
        &std::env::current_dir().unwrap_or_default(),
    );
    ci.run_url
        .map(|url| format!(" ([run]({url}))"))
        .unwrap_or_default()
}

async fn carry_out(
    connection: ConnectionArgs,
    config: ForgeConfig,
    event: CommentEvent,
    command: Result<Option<approval::Command>, String>,
) -> anyhow::Result<ExitStatus> {
    let forge = Forge::new(config, &DeliveryOptions::default());
    let status = decide_and_act(connection, &forge, &event, command).await;
    let calls = forge.calls();
    eprintln!("forge: {} API calls ({} failed)", calls.calls, calls.failed);
    status
}

async fn decide_and_act(
    mut connection: ConnectionArgs,
    forge: &Forge,
    event: &CommentEvent,
    command: Result<Option<approval::Command>, String>,
) -> anyhow::Result<ExitStatus> {
    let user = &event.user;
    let command = match command {
        Ok(Some(command)) => command,
        Ok(None) => return Ok(ExitStatus::Success),
        Err(problem) => {
            forge.react(event, Reaction::Failed).await;
            forge.reply(event, &format!("@{user} {problem}")).await;
            anyhow::bail!("{problem}");
        }
    };
    let verb = command.verb.as_str();
    match forge.may_write(event).await {
        Ok(Ok(())) => {}
        Ok(Err(has)) => {
            let message = format!(
                "`/rollout {verb}` needs write access to the repository; @{user} has `{has}`. \
                 Nothing was changed."
            );
            forge.react(event, Reaction::Refused).await;
            forge.reply(event, &message).await;
            eprintln!("refused: {message}");
            return Ok(ExitStatus::Failure);
        }
        Err(problem) => {
            // Unverified is refused: nothing is touched.
            forge.react(event, Reaction::Failed).await;
            anyhow::bail!("{problem}; nothing was changed");
        }
    }
    let comments = forge
        .comments(event.number)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; nothing was changed"))?;
    let releases = approval::releases_in(&comments);
    let release = match approval::choose_release(&releases, command.target.as_deref()) {
        Ok(release) => release.clone(),
        Err(problem) => {
            forge.react(event, Reaction::Refused).await;
            forge
                .reply(event, &format!("@{user} {problem}. Nothing was changed."))
                .await;
            eprintln!("refused: {problem}");
            return Ok(ExitStatus::Failure);
        }
    };
    forge.react(event, Reaction::Accepted).await;

    let operation = match command.verb {
        Verb::Promote => Operation::Promote,
        Verb::PromoteFull => Operation::PromoteFull,
        Verb::Abort => Operation::Abort,
        Verb::Retry => Operation::Retry,
    };
    connection.namespace = Some(release.namespace.clone());
    let recorded: Mutex<Vec<Approval>> = Mutex::default();
    let result = async {
        let connection = connection.connect().await?;
        operate_on(
            &connection.client,
            &connection.namespace,
            &release.name,
            verb,
            false,
            |rollout, _| {
                let (mut patches, message) = patches(rollout, &operation)?;
                let approval = Approval {
                    command: verb.to_string(),
                    by: user.clone(),
                    at: jiff::Timestamp::now(),
                    pod_hash: rollout.status_or_default().current_pod_hash.clone(),
                    url: event.url.clone(),
                };
                let value = approval::with_approval(rollout, &approval);
                if let Ok(mut list) = recorded.lock() {
                    *list = serde_json::from_str(&value).unwrap_or_default();
                }
                // The record rides on the spec patch (sent first), so a driver that sees the
                // operation sees who gave it.
                let metadata = serde_json::json!({"metadata": {"annotations": {
                    APPROVALS_ANNOTATION: value
                }}});
                match &mut patches.spec {
                    Some(spec) => merge(spec, metadata),
                    None => patches.spec = Some(metadata),
                }
                Ok((patches, message))
            },
        )
        .await
    }
    .await;
    match result {
        Ok(message) => {
            let approvals = recorded.into_inner().unwrap_or_default();
            forge.record(event.number, &release, &approvals).await;
            println!("{message} (by @{user}, from comment {})", event.comment_id);
            Ok(ExitStatus::Success)
        }
        Err(error) => {
            forge.react(event, Reaction::Failed).await;
            forge
                .reply(
                    event,
                    &format!(
                        "@{user} `/rollout {verb}` on `{}` failed{}.",
                        release.id(),
                        run_link()
                    ),
                )
                .await;
            let _ = std::io::stderr().flush();
            Err(error)
        }
    }
}

/// Merge JSON object `patch` into `base` (both merge patches).
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}
