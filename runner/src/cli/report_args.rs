//! The reporting flags, shared by every command that drives or watches a release (`simulate`,
//! `apply --wait`, `status --watch`) and by `plan --comment`, which all flatten the same
//! [`ReportArgs`]; the functions that turn them into running reporters
//! ([`start_reporters`], [`start_reporters_each`]) and finish them ([`finish_reports`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::ci::{self, CiContext};
use crate::manifest::ManifestSet;
use crate::report::reporters::{ReportSummary, Reporters};
use crate::report::sources::Sources;

/// A reporter to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportTarget {
    /// Check run, sticky PR comment, deployment, Actions outputs.
    Github,
    /// Commit status, sticky MR note, job log section.
    Gitlab,
    /// CDEvents POSTed to `--webhook-url`.
    Webhook,
    /// `github` in GitHub Actions, `gitlab` in GitLab CI, plus `webhook` when a URL is set.
    Auto,
}

/// Where the verdict of a release is reported. Tokens are better passed in the environment
/// (`GITHUB_TOKEN`, `GITLAB_TOKEN`) than on the command line. A reporting failure never changes
/// the exit code.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Reporting")]
pub struct ReportArgs {
    /// Report to these (repeatable or comma-separated). [env: ROLLOUT_RUNNER_REPORT]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "TARGET")]
    pub report: Vec<ReportTarget>,

    /// GitHub token. [env: GITHUB_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub github_token: Option<String>,

    /// GitHub App id, to authenticate as an App instead of with a token.
    /// [env: ROLLOUT_RUNNER_GITHUB_APP_ID]
    #[arg(long, value_name = "ID")]
    pub github_app_id: Option<u64>,

    /// The GitHub App's private key (PEM file). [env: ROLLOUT_RUNNER_GITHUB_APP_PRIVATE_KEY
    /// holds the PEM text]
    #[arg(long, value_name = "FILE")]
    pub github_app_key: Option<PathBuf>,

    /// The App's installation id (default: the installation on the repository).
    /// [env: ROLLOUT_RUNNER_GITHUB_APP_INSTALLATION_ID]
    #[arg(long, value_name = "ID")]
    pub github_app_installation_id: Option<u64>,

    /// GitHub API root, for GitHub Enterprise Server (`https://HOST/api/v3`).
    /// [env: GITHUB_API_URL] [default: https://api.github.com]
    #[arg(long, value_name = "URL")]
    pub github_api_url: Option<String>,

    /// The repository to report on, `owner/name` (default: from the CI context).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repository: Option<String>,

    /// The commit to report on (default: from the CI context). [env: ROLLOUT_RUNNER_COMMIT]
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,

    /// The pull request (GitHub) or merge request IID (GitLab) to comment on (default: from
    /// the CI context).
    #[arg(long, value_name = "NUMBER")]
    pub pr: Option<u64>,

    /// The target environment: creates a GitHub Deployment and names checks and comments.
    /// [env: ROLLOUT_RUNNER_ENVIRONMENT]
    #[arg(long, value_name = "NAME")]
    pub environment: Option<String>,

    /// Where the environment can be seen (GitHub deployment status `environment_url`).
    #[arg(long, value_name = "URL")]
    pub environment_url: Option<String>,

    /// Where the release's HTML report and JUnit XML can be downloaded (the CI artifacts),
    /// linked from the check run, the comment and the job summary. The GitHub Action and the
    /// GitLab template set it. [env: ROLLOUT_RUNNER_REPORT_URL]
    #[arg(long, value_name = "URL")]
    pub report_url: Option<String>,

    /// GitHub: post a commit status instead of a check run.
    #[arg(long)]
    pub no_checks: bool,

    /// Do not post the sticky pull/merge request comment.
    #[arg(long)]
    pub no_comment: bool,

    /// GitLab token with the `api` scope. [env: GITLAB_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub gitlab_token: Option<String>,

    /// GitLab API root. [env: CI_API_V4_URL] [default: https://gitlab.com/api/v4]
    #[arg(long, value_name = "URL")]
    pub gitlab_api_url: Option<String>,

    /// GitLab project id or `group/project`. [env: CI_PROJECT_ID]
    #[arg(long, value_name = "ID")]
    pub gitlab_project: Option<String>,

    /// Where the webhook reporter POSTs. [env: ROLLOUT_RUNNER_WEBHOOK_URL]
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,

    /// Shared secret for the webhook's HMAC-SHA256 signature.
    /// [env: ROLLOUT_RUNNER_WEBHOOK_SECRET]
    #[arg(long, value_name = "SECRET")]
    pub webhook_secret: Option<String>,

    /// Between milestones, update check runs and statuses at most this often (release time).
    #[arg(long, value_name = "DURATION", help_heading = "Reporting delivery")]
    pub report_interval: Option<String>,

    /// Time limit of one API call [default: 10s].
    #[arg(long, value_name = "DURATION", help_heading = "Reporting delivery")]
    pub report_timeout: Option<String>,

    /// Retries of a failed call (5xx, 429, timeout) [default: 3].
    #[arg(long, value_name = "N", help_heading = "Reporting delivery")]
    pub report_retries: Option<u32>,

    /// Wait before the first retry; doubles each time [default: 1s].
    #[arg(long, value_name = "DURATION", help_heading = "Reporting delivery")]
    pub report_backoff: Option<String>,

    /// At the end, wait at most this long for reports still being sent [default: 30s].
    #[arg(long, value_name = "DURATION", help_heading = "Reporting delivery")]
    pub report_flush_timeout: Option<String>,
}

/// The path of `name` (a file name as the user gave it, relative to `cwd`) inside the
/// repository at `root`, with `/` separators.
pub fn repository_path(root: &Path, cwd: &Path, name: &str) -> Option<String> {
    let path = cwd.join(name);
    let path = path.canonicalize().unwrap_or(path);
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let relative = path.strip_prefix(&root).ok()?;
    Some(
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// The source files of `set`, with paths relative to the git repository around the working
/// directory (none outside a repository).
pub fn sources_of(set: &ManifestSet) -> Sources {
    let Ok(cwd) = std::env::current_dir() else {
        return Sources::default();
    };
    let root = git2::Repository::discover(&cwd)
        .ok()
        .and_then(|repo| repo.workdir().map(Path::to_path_buf));
    match root {
        Some(root) => Sources::from_set(set, |name| repository_path(&root, &cwd, name)),
        None => Sources::default(),
    }
}

/// Resolve the flags against the process environment and start the reporters they ask for.
/// Warnings (a missing token, a missing repository) go to stderr; the reporter is left out.
/// Must run inside a tokio runtime with I/O and time enabled.
pub fn start_reporters(
    args: &ReportArgs,
    ci: &CiContext,
    sources: Sources,
) -> anyhow::Result<Reporters> {
    let mut started = start_reporters_each(args, ci, &sources, 1)?;
    Ok(started.pop().unwrap_or_default())
}

/// [`start_reporters`] for `count` Rollouts driven side by side (`apply --wait`): the flags are
/// resolved (and their warnings printed) once, and each Rollout gets its own reporters, so its
/// own check run and comment.
pub fn start_reporters_each(
    args: &ReportArgs,
    ci: &CiContext,
    sources: &Sources,
    count: usize,
) -> anyhow::Result<Vec<Reporters>> {
    let resolved = crate::settings::resolve_reports(args, ci::process_env, ci)?;
    let mut stderr = std::io::stderr();
    for warning in &resolved.warnings {
        let _ = writeln!(stderr, "warning: {warning}");
    }
    // reqwest (aws-lc-rs) and kube (ring) both bring a rustls provider: choose one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Ok((0..count)
        .map(|_| Reporters::start(resolved.config.clone(), sources.clone()))
        .collect())
}

/// Wait for the reporters and say on stderr how many calls they made. `None` when no reporter
/// ran.
pub async fn finish_reports(reporters: Reporters) -> Option<ReportSummary> {
    if reporters.is_empty() {
        return None;
    }
    let summary = reporters.finish().await;
    let mut stderr = std::io::stderr();
    for (name, counts) in [
        ("github", &summary.github),
        ("gitlab", &summary.gitlab),
        ("webhook", &summary.webhook),
    ] {
        if let Some(counts) = counts {
            let _ = writeln!(
                stderr,
                "reported to {name}: {} API calls ({} failed, {} reports dropped)",
                counts.calls, counts.failed, counts.dropped
            );
        }
    }
    if let Some(url) = &summary.check_url {
        let _ = writeln!(stderr, "check run: {url}");
    }
    Some(summary)
}
