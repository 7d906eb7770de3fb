//! Settings: flags, then environment variables, then CI defaults, resolved once into the
//! configuration the reporters start from.
//!
//! Owns precedence (CLI > env > defaults) and the table of every environment variable read
//! here ([`ENV_VARS`]; the CI context's own are in [`crate::ci::ENV_VARS`]). Reads go through an
//! environment function passed in, so tests hand in a fake one. Refuses to do network I/O and to
//! fail a run because reporting is misconfigured: a reporter that lacks what it needs is left
//! out with a warning, and the release goes on.

use std::path::PathBuf;
use std::time::Duration;

use crate::ci::{CiContext, Provider};
use crate::cli::report_args::{ReportArgs, ReportTarget};
use crate::crd::duration::parse_go_duration;
use crate::report::delivery::{DeliveryOptions, Secret};
use crate::report::github::{ActionsFiles, GithubAuth, GithubConfig, Lookup};
use crate::report::gitlab::GitlabConfig;
use crate::report::reporters::ReportConfig;
use crate::report::webhook::WebhookConfig;

/// An environment variable read by the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    pub name: &'static str,
    /// The flag it stands in for, if any.
    pub flag: Option<&'static str>,
    pub meaning: &'static str,
}

/// Every environment variable the settings read. Empty values count as unset.
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "ROLLOUT_RUNNER_REPORT",
        flag: Some("--report"),
        meaning: "reporters to start, comma-separated: `github`, `gitlab`, `webhook`, `auto`",
    },
    EnvVar {
        name: "GITHUB_TOKEN",
        flag: Some("--github-token"),
        meaning: "GitHub token (Actions' `GITHUB_TOKEN`, a PAT or an installation token)",
    },
    EnvVar {
        name: "ROLLOUT_RUNNER_GITHUB_APP_ID",
        flag: Some("--github-app-id"),
        meaning: "GitHub App id (instead of a token)",
    },
    EnvVar {
        name: "ROLLOUT_RUNNER_GITHUB_APP_PRIVATE_KEY",
        flag: Some("--github-app-key"),
        meaning: "the GitHub App's private key, PEM text (the flag takes a file)",
    },
    EnvVar {
        name: "ROLLOUT_RUNNER_GITHUB_APP_INSTALLATION_ID",
        flag: Some("--github-app-installation-id"),
        meaning: "the App's installation; looked up from the repository when unset",
    },
    EnvVar {
        name: "GITHUB_API_URL",
        flag: Some("--github-api-url"),
        meaning: "GitHub API root (set by Actions; GitHub Enterprise Server: `https://HOST/api/v3`); default `https://api.github.com`",
    },
    EnvVar {
        name: "GITHUB_SERVER_URL",
        flag: None,
        meaning: "GitHub web root, for commit links; default `https://github.com`",
    },
    EnvVar {
        name: "GITHUB_OUTPUT",
        flag: None,
        meaning: "set by Actions: step outputs `phase`, `revision`, `verdict`, `check-url` are appended",
    },
    EnvVar {
        name: "GITHUB_STEP_SUMMARY",
        flag: None,
        meaning: "set by Actions: the release summary (markdown) is appended",
    },
    EnvVar {
        name: "GITLAB_TOKEN",
        flag: Some("--gitlab-token"),
        meaning: "GitLab token with the `api` scope (project, group or personal access token)",
    },
    EnvVar {
        name: "CI_JOB_TOKEN",
        flag: None,
        meaning: "GitLab job token: noticed only to warn that it cannot post statuses or notes",
    },
    EnvVar {
        name: "CI_API_V4_URL",
        flag: Some("--gitlab-api-url"),
        meaning: "GitLab API root (set by GitLab CI); default `https://gitlab.com/api/v4`",
    },
    EnvVar {
        name: "CI_PROJECT_ID",
        flag: Some("--gitlab-project"),
        meaning: "GitLab project id (set by GitLab CI); else the CI context's `group/project`",
    },
    EnvVar {
        name: "CI_PIPELINE_ID",
        flag: None,
        meaning: "attaches the GitLab commit status to this pipeline",
    },
    EnvVar {
        name: "ROLLOUT_RUNNER_WEBHOOK_URL",
        flag: Some("--webhook-url"),
        meaning: "where the webhook reporter POSTs events (kept secret: never printed)",
    },
    EnvVar {
        name: "ROLLOUT_RUNNER_WEBHOOK_SECRET",
        flag: Some("--webhook-secret"),
        meaning: "key of the webhook's HMAC-SHA256 signature header",
    },
    EnvVar {
        name: "ROLLOUT_RUNNER_ENVIRONMENT",
        flag: Some("--environment"),
        meaning: "the target environment (GitHub Deployment, names, events)",
    },
    EnvVar {
        name: "ROLLOUT_RUNNER_REPORT_URL",
        flag: Some("--report-url"),
        meaning: "where the HTML report and JUnit XML are (CI artifacts), linked from checks, comments and summaries",
    },
    EnvVar {
        name: "ROLLOUT_RUNNER_COMMIT",
        flag: Some("--commit"),
        meaning: "the commit to report on (e.g. Argo CD's synced revision); default: the CI context's",
    },
];

struct Env<E>(E);

impl<E: Fn(&str) -> Option<String>> Env<E> {
    fn var(&self, name: &str) -> Option<String> {
        debug_assert!(
            ENV_VARS.iter().any(|var| var.name == name),
            "`{name}` is read but not declared in settings::ENV_VARS"
        );
        (self.0)(name).filter(|value| !value.is_empty())
    }
}

fn duration(text: &str, flag: &str) -> anyhow::Result<Duration> {
    let parsed = parse_go_duration(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(Duration::from_millis(
        u64::try_from(parsed.as_millis()).unwrap_or(0),
    ))
}

/// What came out of resolving: the configuration and warnings for the user.
#[derive(Debug, Default)]
pub struct ResolvedReports {
    pub config: ReportConfig,
    pub warnings: Vec<String>,
}

/// Resolve the reporting flags against the environment `env` and the CI context.
///
/// Errors only on malformed values (a bad duration, an unreadable key file); missing tokens,
/// repositories or commits leave the reporter out with a warning.
pub fn resolve_reports<E: Fn(&str) -> Option<String>>(
    args: &ReportArgs,
    env: E,
    ci: &CiContext,
) -> anyhow::Result<ResolvedReports> {
    let env = Env(env);
    let mut out = ResolvedReports::default();
    let mut targets: Vec<ReportTarget> = args.report.clone();
    if targets.is_empty()
        && let Some(text) = env.var("ROLLOUT_RUNNER_REPORT")
    {
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            targets.push(
                <ReportTarget as clap::ValueEnum>::from_str(item, true).map_err(|_| {
                    anyhow::anyhow!("ROLLOUT_RUNNER_REPORT: unknown reporter `{item}`")
                })?,
            );
        }
    }
    let mut github = false;
    let mut gitlab = false;
    let mut webhook = false;
    for target in &targets {
        match target {
            ReportTarget::Github => github = true,
            ReportTarget::Gitlab => gitlab = true,
            ReportTarget::Webhook => webhook = true,
            ReportTarget::Auto => {
                match ci.provider {
                    Provider::Github => github = true,
                    Provider::Gitlab => gitlab = true,
                    Provider::Local => {}
                }
                if args.webhook_url.is_some() || env.var("ROLLOUT_RUNNER_WEBHOOK_URL").is_some() {
                    webhook = true;
                }
            }
        }
    }

    let delivery = &mut out.config.delivery;
    *delivery = DeliveryOptions::default();
    if let Some(text) = &args.report_timeout {
        delivery.request_timeout = duration(text, "--report-timeout")?;
    }
    if let Some(text) = &args.report_backoff {
        delivery.backoff = duration(text, "--report-backoff")?;
    }
    if let Some(text) = &args.report_flush_timeout {
        delivery.flush_timeout = duration(text, "--report-flush-timeout")?;
    }
    if let Some(text) = &args.report_interval {
        delivery.interval =
            parse_go_duration(text).map_err(|e| anyhow::anyhow!("--report-interval: {e}"))?;
    }
    if let Some(retries) = args.report_retries {
        delivery.retries = retries;
    }

    let environment = args
        .environment
        .clone()
        .or_else(|| env.var("ROLLOUT_RUNNER_ENVIRONMENT"));
    let commit = args
        .commit
        .clone()
        .or_else(|| env.var("ROLLOUT_RUNNER_COMMIT"))
        .or_else(|| ci.head_sha.clone())
        .or_else(|| ci.commit.clone());
    let pr = args.pr.or(ci.pr);

    if github {
        let auth = if let Some(app_id) = args.github_app_id.or_else(|| {
            env.var("ROLLOUT_RUNNER_GITHUB_APP_ID")
                .and_then(|v| v.parse().ok())
        }) {
            let private_key = match &args.github_app_key {
                Some(path) => Some(
                    crate::render::input::read_text(path)
                        .map_err(|e| anyhow::anyhow!("--github-app-key: {e}"))?,
                ),
                None => env.var("ROLLOUT_RUNNER_GITHUB_APP_PRIVATE_KEY"),
            };
            match private_key {
                Some(key) => Some(GithubAuth::App {
                    app_id,
                    private_key: Secret::new(key),
                    installation_id: args.github_app_installation_id.or_else(|| {
                        env.var("ROLLOUT_RUNNER_GITHUB_APP_INSTALLATION_ID")
                            .and_then(|v| v.parse().ok())
                    }),
                }),
                None => {
                    out.warnings.push(
                        "github: a GitHub App id was given without its private key \
                         (--github-app-key or ROLLOUT_RUNNER_GITHUB_APP_PRIVATE_KEY)"
                            .into(),
                    );
                    None
                }
            }
        } else {
            args.github_token
                .clone()
                .or_else(|| env.var("GITHUB_TOKEN"))
                .map(|token| GithubAuth::Token(Secret::new(token)))
        };
        let repository = args.repository.clone().or_else(|| match ci.provider {
            Provider::Github | Provider::Local => ci.repository.clone(),
            Provider::Gitlab => None,
        });
        match (auth, repository, commit.clone()) {
            (Some(auth), Some(repository), Some(sha)) => {
                out.config.github = Some(GithubConfig {
                    api_url: args
                        .github_api_url
                        .clone()
                        .or_else(|| env.var("GITHUB_API_URL"))
                        .unwrap_or_else(|| "https://api.github.com".into()),
                    server_url: Some(
                        env.var("GITHUB_SERVER_URL")
                            .unwrap_or_else(|| "https://github.com".into()),
                    ),
                    auth,
                    repository,
                    lookup: github_lookup(args, env.var("ROLLOUT_RUNNER_COMMIT").is_some(), ci, pr),
                    sha,
                    pr,
                    environment: environment.clone(),
                    environment_url: args.environment_url.clone(),
                    report_url: args
                        .report_url
                        .clone()
                        .or_else(|| env.var("ROLLOUT_RUNNER_REPORT_URL")),
                    run_url: ci.run_url.clone(),
                    checks: !args.no_checks,
                    comment: !args.no_comment,
                    actions: ActionsFiles {
                        output: env.var("GITHUB_OUTPUT").map(PathBuf::from),
                        step_summary: env.var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
                        commands: ci.provider == Provider::Github,
                    },
                });
            }
            (auth, repository, sha) => {
                let mut missing = Vec::new();
                if auth.is_none() {
                    missing.push("a token (GITHUB_TOKEN or --github-token) or a GitHub App");
                }
                if repository.is_none() {
                    missing.push("the repository (--repository OWNER/NAME)");
                }
                if sha.is_none() {
                    missing.push("the commit (--commit SHA)");
                }
                out.warnings.push(format!(
                    "github: not reporting to GitHub: missing {}",
                    missing.join(", ")
                ));
            }
        }
    }

    if gitlab {
        let token = args
            .gitlab_token
            .clone()
            .or_else(|| env.var("GITLAB_TOKEN"))
            .map(Secret::new);
        let job_token = env.var("CI_JOB_TOKEN").is_some();
        let project = args
            .gitlab_project
            .clone()
            .or_else(|| env.var("CI_PROJECT_ID"))
            .or_else(|| match ci.provider {
                Provider::Gitlab | Provider::Local => ci.repository.clone(),
                Provider::Github => None,
            });
        match (token.is_some() || job_token, project, commit.clone()) {
            (true, Some(project), Some(sha)) => {
                out.config.gitlab = Some(GitlabConfig {
                    api_url: args
                        .gitlab_api_url
                        .clone()
                        .or_else(|| env.var("CI_API_V4_URL"))
                        .unwrap_or_else(|| "https://gitlab.com/api/v4".into()),
                    project,
                    token,
                    sha,
                    ref_name: ci.tag.clone().or_else(|| ci.branch.clone()),
                    pipeline_id: env.var("CI_PIPELINE_ID").and_then(|v| v.parse().ok()),
                    mr_iid: pr,
                    run_url: ci.run_url.clone(),
                    report_url: args
                        .report_url
                        .clone()
                        .or_else(|| env.var("ROLLOUT_RUNNER_REPORT_URL")),
                    environment: environment.clone(),
                    note: !args.no_comment,
                    job_log: ci.provider == Provider::Gitlab,
                });
            }
            (has_token, project, sha) => {
                let mut missing = Vec::new();
                if !has_token {
                    missing.push("a token (GITLAB_TOKEN or --gitlab-token)");
                }
                if project.is_none() {
                    missing.push("the project (--gitlab-project or CI_PROJECT_ID)");
                }
                if sha.is_none() {
                    missing.push("the commit (--commit SHA)");
                }
                out.warnings.push(format!(
                    "gitlab: not reporting to GitLab: missing {}",
                    missing.join(", ")
                ));
            }
        }
    }

    if webhook {
        match args
            .webhook_url
            .clone()
            .or_else(|| env.var("ROLLOUT_RUNNER_WEBHOOK_URL"))
        {
            Some(url) => {
                // Checked here, so that a typo is an error at the start rather than a warning
                // per event; the URL is not echoed (it may carry a token).
                match url::Url::parse(&url) {
                    Ok(parsed)
                        if matches!(parsed.scheme(), "http" | "https")
                            && parsed.host().is_some() => {}
                    Ok(_) => anyhow::bail!(
                        "--webhook-url (or ROLLOUT_RUNNER_WEBHOOK_URL) must be an http or https URL with a host\n\nhint: such as https://hooks.example.com/cdevents"
                    ),
                    Err(error) => anyhow::bail!(
                        "--webhook-url (or ROLLOUT_RUNNER_WEBHOOK_URL) is not a URL: {error}\n\nhint: such as https://hooks.example.com/cdevents"
                    ),
                }
                let source = ci
                    .remote_url
                    .clone()
                    .unwrap_or_else(|| "/rollout-runner".into());
                out.config.webhook = Some(WebhookConfig {
                    url: Secret::new(url),
                    secret: args
                        .webhook_secret
                        .clone()
                        .or_else(|| env.var("ROLLOUT_RUNNER_WEBHOOK_SECRET"))
                        .map(Secret::new),
                    source,
                    environment: environment.clone(),
                    repository: ci.repository.clone(),
                    commit: commit.clone(),
                    run_url: ci.run_url.clone(),
                });
            }
            None => out.warnings.push(
                "webhook: not posting events: no URL (--webhook-url or ROLLOUT_RUNNER_WEBHOOK_URL)"
                    .into(),
            ),
        }
    }
    Ok(out)
}

/// What the GitHub reporter asks the API because the event payload does not say it: on a
/// push, the pull request merged as the commit (for its sticky comment); on a comment on a
/// pull request, the pull request's head commit (for the check run). Never when the user named
/// the pull request or the commit.
fn github_lookup(
    args: &ReportArgs,
    commit_from_env: bool,
    ci: &CiContext,
    pr: Option<u64>,
) -> Lookup {
    let commit_given = args.commit.is_some() || commit_from_env;
    match ci.event.as_deref() {
        Some("push") if pr.is_none() && !args.no_comment && ci.branch.is_some() => {
            Lookup::MergedPullRequest
        }
        Some("issue_comment") if pr.is_some() && !commit_given => Lookup::PullRequestHead,
        _ => Lookup::None,
    }
}

/// The environment-variable table as markdown (for `docs/reporting.md`; a test keeps the two
/// in step).
pub fn env_table() -> String {
    let mut out = String::from("| variable | flag | meaning |\n|---|---|---|\n");
    for var in ENV_VARS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            var.name,
            var.flag
                .map(|f| format!("`{f}`"))
                .unwrap_or_else(|| "-".into()),
            var.meaning
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        report: ReportArgs,
    }

    fn args(list: &[&str]) -> ReportArgs {
        let mut argv = vec!["x"];
        argv.extend_from_slice(list);
        Cli::parse_from(argv).report
    }

    fn github_ci() -> CiContext {
        CiContext {
            provider: Provider::Github,
            commit: Some("abc".into()),
            repository: Some("o/r".into()),
            pr: Some(7),
            ..Default::default()
        }
    }

    #[test]
    fn flags_win_over_the_environment() {
        let env = |name: &str| match name {
            "GITHUB_TOKEN" => Some("from-env".to_string()),
            _ => None,
        };
        let resolved = resolve_reports(
            &args(&["--report", "github", "--github-token", "from-flag"]),
            env,
            &github_ci(),
        )
        .unwrap();
        let github = resolved.config.github.unwrap();
        assert!(matches!(github.auth, GithubAuth::Token(t) if t.expose() == "from-flag"));
        assert_eq!(github.api_url, "https://api.github.com");
        assert_eq!(github.pr, Some(7));
    }

    #[test]
    fn the_report_url_reaches_the_forges_and_their_footer() {
        let env = |name: &str| match name {
            "GITHUB_TOKEN" => Some("t".to_string()),
            "ROLLOUT_RUNNER_REPORT_URL" => Some("https://ci.example/runs/1#artifacts".to_string()),
            _ => None,
        };
        let resolved = resolve_reports(&args(&["--report", "github"]), env, &github_ci()).unwrap();
        let github = resolved.config.github.unwrap();
        assert_eq!(
            github.report_url.as_deref(),
            Some("https://ci.example/runs/1#artifacts")
        );
        let links = crate::report::markdown::Links {
            report_url: github.report_url,
            ..Default::default()
        };
        let summary =
            crate::report::markdown::summary(&crate::report::release::Release::default(), &links);
        assert!(
            summary.contains("[HTML report and JUnit](https://ci.example/runs/1#artifacts)"),
            "{summary}"
        );
    }

    #[test]
    fn auto_follows_the_ci_provider_and_missing_tokens_only_warn() {
        let resolved =
            resolve_reports(&args(&["--report", "auto"]), |_| None, &github_ci()).unwrap();
        assert!(resolved.config.github.is_none());
        assert_eq!(resolved.warnings.len(), 1);
        assert!(
            resolved.warnings[0].contains("GITHUB_TOKEN"),
            "{:?}",
            resolved.warnings
        );
    }

    #[test]
    fn a_job_token_alone_keeps_gitlab_without_api_calls() {
        let ci = CiContext {
            provider: Provider::Gitlab,
            commit: Some("abc".into()),
            ..Default::default()
        };
        let env = |name: &str| match name {
            "CI_JOB_TOKEN" => Some("job".to_string()),
            "CI_PROJECT_ID" => Some("42".to_string()),
            _ => None,
        };
        let resolved = resolve_reports(&args(&["--report", "gitlab"]), env, &ci).unwrap();
        let gitlab = resolved.config.gitlab.unwrap();
        assert!(gitlab.token.is_none());
        assert_eq!(gitlab.project, "42");
    }

    #[test]
    fn every_variable_is_documented() {
        let doc = include_str!("../../docs/reporting.md");
        for var in ENV_VARS {
            assert!(
                doc.contains(var.name),
                "docs/reporting.md lacks `{}`",
                var.name
            );
        }
    }
}
