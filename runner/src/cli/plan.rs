//! `rollout-runner plan`: what a release will do, before it starts.

use std::io::Write;

use anyhow::Context;
use clap::Args;

use crate::error::ExitStatus;
use crate::planning::{self, ReleasePlan};

use super::inputs::{Inputs, load_inputs};
use super::report_args::{ReportArgs, ReportTarget};

/// Show what a release will do: replicas, traffic, analysis and durations, step by step.
///
/// Starting from a fully available stable version: per step the canary and stable replica
/// counts, the traffic weight and the traffic objects each router will write, pauses, analysis
/// runs with their queries, experiments, and the minimum and maximum total duration.
///
/// Times assume pods start at once (plus minReadySeconds) and every analysis passes; a step
/// that waits for a person adds nothing to the minimum and makes the maximum unbounded. Every
/// output ends with the plan's hash (`sha256:...`), which changes whenever what the release
/// does changes.
///
/// With `--comment`, the plan's markdown is also posted as a sticky pull request comment
/// (GitHub) or merge request note (GitLab), found by a hidden marker and edited in place on
/// each run; `--report` chooses the forge (default: the CI's). `apply --expect-plan HASH`
/// then refuses to apply anything that plans differently. A failed comment is a warning: it
/// does not change the exit code.
///
/// Exit codes: 0 planned, 2 invalid input.
///
/// Example: `rollout-runner plan examples/canary-analysis-passes --output markdown`
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// Plan only this Rollout (by default every Rollout among the inputs).
    #[arg(long, value_name = "NAME")]
    rollout: Option<String>,

    /// `table` for people, `json` for scripts (one plan: an object; several: an array),
    /// `markdown` for a pull-request comment.
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    output: PlanFormat,

    /// Also post the plan (as markdown, with its hash) as the sticky comment of the pull
    /// request (GitHub) or merge request (GitLab), edited in place on later runs. One comment
    /// per pull request, `--environment` and `--rollout`.
    #[arg(long)]
    comment: bool,

    #[command(flatten)]
    report: ReportArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PlanFormat {
    Table,
    Json,
    Markdown,
}

/// The plans in a format, as printed.
pub(crate) fn format_plans(plans: &[ReleasePlan], format: PlanFormat) -> anyhow::Result<String> {
    Ok(match format {
        PlanFormat::Table => plans
            .iter()
            .map(planning::table)
            .collect::<Vec<_>>()
            .join("\n"),
        PlanFormat::Json => {
            let mut text = match plans {
                [one] => serde_json::to_string_pretty(one)?,
                many => serde_json::to_string_pretty(many)?,
            };
            text.push('\n');
            text
        }
        PlanFormat::Markdown => planning::markdown(plans),
    })
}

pub(crate) fn run(args: PlanArgs) -> anyhow::Result<ExitStatus> {
    // A `scenario.yaml` in a directory is for `simulate`, not a manifest.
    let set = match load_inputs(&args.inputs, &args.inputs.scenario_files())? {
        Ok(set) => set,
        Err(status) => return Ok(status),
    };
    let plans = match planning::plan_set(&set, args.rollout.as_deref()) {
        Ok(plans) => plans,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitStatus::Error);
        }
    };
    let text = format_plans(&plans, args.output)?;
    {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
    }
    if args.comment {
        post_comment(&args, &plans)?;
    }
    Ok(ExitStatus::Success)
}

/// The hidden marker of the plan comment: one comment per pull request, environment and
/// `--rollout` (a release's own comment has another marker).
pub(crate) fn comment_marker(environment: Option<&str>, rollout: Option<&str>) -> String {
    let mut key = String::from("rollout-runner:plan");
    if let Some(environment) = environment.filter(|e| !e.is_empty()) {
        key.push_str(&format!(" environment={environment}"));
    }
    if let Some(rollout) = rollout {
        key.push_str(&format!(" rollout={rollout}"));
    }
    format!("<!-- {key} -->")
}

/// Post the plans' markdown as the sticky comment (`--comment`). Problems are warnings.
fn post_comment(args: &PlanArgs, plans: &[ReleasePlan]) -> anyhow::Result<()> {
    let mut report = args.report.clone();
    if report.report.is_empty() && std::env::var_os("ROLLOUT_RUNNER_REPORT").is_none() {
        report.report = vec![ReportTarget::Auto];
    }
    let ci = crate::ci::CiContext::detect(crate::ci::process_env, &std::env::current_dir()?);
    let resolved = crate::settings::resolve_reports(&report, crate::ci::process_env, &ci)?;
    for warning in &resolved.warnings {
        eprintln!("warning: {warning}");
    }
    let config = resolved.config;
    let environment = config
        .github
        .as_ref()
        .and_then(|g| g.environment.clone())
        .or_else(|| config.gitlab.as_ref().and_then(|g| g.environment.clone()));
    let marker = comment_marker(environment.as_deref(), args.rollout.as_deref());
    let hash = planning::combined_hash(plans);
    let body = format!(
        "{marker}\n{}\nApply exactly this plan with `rollout-runner apply --expect-plan {hash}`.\n",
        planning::markdown(plans)
    );
    if config.github.is_none() && config.gitlab.is_none() {
        eprintln!(
            "warning: --comment: no forge to comment on\nhint: run in GitHub Actions or GitLab \
             CI, or pass --report github (or gitlab) with a token, the repository and the \
             commit"
        );
        return Ok(());
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let options = &config.delivery;
        if let Some(github) = config.github.clone() {
            if github.pr.is_none() {
                eprintln!("warning: github: no pull request to comment on (--pr)");
            }
            let counts = crate::report::github::GithubReporter::sticky_comment(
                github, options, &marker, &body,
            )
            .await;
            say_counts("github", &counts);
        }
        if let Some(gitlab) = config.gitlab.clone() {
            if gitlab.mr_iid.is_none() {
                eprintln!("warning: gitlab: no merge request to comment on (--pr)");
            }
            let counts =
                crate::report::gitlab::GitlabReporter::sticky_note(gitlab, options, &marker, &body)
                    .await;
            say_counts("gitlab", &counts);
        }
    });
    Ok(())
}

fn say_counts(name: &str, counts: &crate::report::delivery::CallCounts) {
    eprintln!(
        "plan comment on {name}: {} API calls ({} failed, {} dropped)",
        counts.calls, counts.failed, counts.dropped
    );
}
