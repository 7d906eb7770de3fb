//! The forge and webhook reporters of one run, started together from a [`ReportConfig`] and
//! finished together. `simulate`, `apply --wait` and `status --watch` hand a [`Reporters`] to
//! the driver next to their terminal reporter, and await [`Reporters::finish`] before exiting.
//!
//! Owns starting, fanning out and finishing. Refuses to read flags or the environment (the
//! `settings` module resolves them into a [`ReportConfig`]) and to change any outcome.

use jiff::Timestamp;
use serde::Serialize;

use super::delivery::{CallCounts, DeliveryOptions, Weight};
use super::github::{GithubConfig, GithubReporter};
use super::gitlab::{GitlabConfig, GitlabReporter};
use super::sources::Sources;
use super::webhook::{WebhookConfig, WebhookReporter};
use super::{Change, Reporter, Update, changes};

/// Which reporters to start, resolved from flags and the environment.
#[derive(Debug, Clone, Default)]
pub struct ReportConfig {
    pub github: Option<GithubConfig>,
    pub gitlab: Option<GitlabConfig>,
    pub webhook: Option<WebhookConfig>,
    pub delivery: DeliveryOptions,
}

/// What the reporters did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportSummary {
    /// The GitHub check run, when one was created.
    pub check_url: Option<String>,
    pub github: Option<CallCounts>,
    pub gitlab: Option<CallCounts>,
    pub webhook: Option<CallCounts>,
}

/// The running reporters.
#[derive(Default)]
pub struct Reporters {
    pub github: Option<GithubReporter>,
    pub gitlab: Option<GitlabReporter>,
    pub webhook: Option<WebhookReporter>,
}

impl Reporters {
    /// Start the configured reporters. Must run inside a tokio runtime with I/O and time
    /// enabled: each reporter spawns its delivery task.
    pub fn start(config: ReportConfig, sources: Sources) -> Self {
        Self {
            github: config
                .github
                .map(|c| GithubReporter::start(c, sources.clone(), &config.delivery)),
            gitlab: config
                .gitlab
                .map(|c| GitlabReporter::start(c, &config.delivery)),
            webhook: config
                .webhook
                .map(|c| WebhookReporter::start(c, &config.delivery)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.github.is_none() && self.gitlab.is_none() && self.webhook.is_none()
    }

    /// Wait for every reporter's queued calls (each bounded by its flush timeout) and write
    /// what CI reads back (GitHub Actions outputs, the GitLab job log section).
    pub async fn finish(self) -> ReportSummary {
        let github = async {
            match self.github {
                Some(reporter) => Some(reporter.finish().await),
                None => None,
            }
        };
        let gitlab = async {
            match self.gitlab {
                Some(reporter) => Some(reporter.finish().await),
                None => None,
            }
        };
        let webhook = async {
            match self.webhook {
                Some(reporter) => Some(reporter.finish().await),
                None => None,
            }
        };
        let (github, gitlab, webhook) = futures::join!(github, gitlab, webhook);
        ReportSummary {
            check_url: github.as_ref().and_then(|g| g.check_url.clone()),
            github: github.map(|g| g.calls),
            gitlab,
            webhook,
        }
    }
}

impl Reporter for Reporters {
    fn report(&mut self, update: &Update<'_>) {
        if let Some(reporter) = &mut self.github {
            reporter.report(update);
        }
        if let Some(reporter) = &mut self.gitlab {
            reporter.report(update);
        }
        if let Some(reporter) = &mut self.webhook {
            reporter.report(update);
        }
    }

    fn waiting(&mut self, at: Timestamp, until: Option<Timestamp>) {
        if let Some(reporter) = &mut self.github {
            reporter.waiting(at, until);
        }
        if let Some(reporter) = &mut self.gitlab {
            reporter.waiting(at, until);
        }
        if let Some(reporter) = &mut self.webhook {
            reporter.waiting(at, until);
        }
    }
}

/// How much an update matters for pacing; `None` for updates reporters do not show.
pub(crate) fn significance(update: &Update<'_>) -> Option<Weight> {
    match update {
        Update::Started { .. } | Update::AnalysisRunCompleted { .. } | Update::Finished { .. } => {
            Some(Weight::Major)
        }
        Update::Measurement { measurement, .. } => Some(
            if measurement.phase == rollout_runner_api::crd::AnalysisPhase::Successful {
                Weight::Minor
            } else {
                Weight::Milestone
            },
        ),
        Update::Status {
            rollout, previous, ..
        } => {
            let found = changes(rollout, *previous);
            let weight = found
                .iter()
                .map(|change| match change {
                    Change::UpdateStarted { .. }
                    | Change::StepStarted { .. }
                    | Change::StepsCompleted
                    | Change::Paused { .. }
                    | Change::ServiceSwitched { .. }
                    | Change::Promoted { .. }
                    | Change::Aborted { .. } => Weight::Major,
                    Change::WeightChanged { .. } | Change::Resumed | Change::Phase { .. } => {
                        Weight::Milestone
                    }
                })
                .max();
            Some(weight.unwrap_or(Weight::Minor))
        }
        Update::Actions { .. } | Update::Events { .. } => None,
    }
}
