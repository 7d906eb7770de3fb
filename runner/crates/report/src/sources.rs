//! Where the Rollout and its AnalysisTemplates are written, so that a failed release can point
//! at the lines that decided it: the failing metric's condition, the step the release was
//! aborted in, the progress deadline. Check-run annotations and `::error file=...` workflow
//! commands use it.
//!
//! Owns turning the loader's field spans into repository-relative file positions. Refuses to
//! read files or git (the caller maps file names to repository paths) and to point into
//! rendered templates, whose lines are not those of any file in the repository.

use rollout_runner_core::manifest::{FieldPath, ManifestSet, SpanMap};

use super::Outcome;
use super::release::Release;

/// A file in the repository and where its fields are written.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path relative to the repository root, with `/` separators.
    pub path: String,
    pub spans: SpanMap,
}

#[derive(Debug, Clone)]
struct TemplateSource {
    name: String,
    metrics: Vec<String>,
    file: SourceFile,
}

/// The source files of one release.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    rollouts: Vec<(String, SourceFile)>,
    templates: Vec<TemplateSource>,
}

/// How much an annotation matters (GitHub's `annotation_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Notice,
    Warning,
    Failure,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notice => "notice",
            Self::Warning => "warning",
            Self::Failure => "failure",
        }
    }
}

/// A remark on lines of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub level: Level,
    pub title: String,
    pub message: String,
}

impl Sources {
    /// The Rollouts and templates of `set`. `repo_path` maps a document's file name (as the user
    /// gave it) to its path in the repository, or `None` when it is outside it.
    pub fn from_set(set: &ManifestSet, repo_path: impl Fn(&str) -> Option<String>) -> Self {
        let mut sources = Self::default();
        let file = |name: &str, spans: &SpanMap| -> Option<SourceFile> {
            if name.ends_with(" (rendered)") {
                return None;
            }
            Some(SourceFile {
                path: repo_path(name)?,
                spans: spans.clone(),
            })
        };
        for (document, rollout) in set.rollouts() {
            if let Some(source) = file(&document.file, &document.spans) {
                sources.rollouts.push((rollout.name().to_string(), source));
            }
        }
        for (document, template) in set.analysis_templates() {
            if let Some(source) = file(&document.file, &document.spans) {
                sources.templates.push(TemplateSource {
                    name: document.name.clone(),
                    metrics: template
                        .spec
                        .metrics
                        .iter()
                        .map(|m| m.name.clone())
                        .collect(),
                    file: source,
                });
            }
        }
        for (document, template) in set.cluster_analysis_templates() {
            if let Some(source) = file(&document.file, &document.spans) {
                sources.templates.push(TemplateSource {
                    name: document.name.clone(),
                    metrics: template
                        .spec
                        .template
                        .metrics
                        .iter()
                        .map(|m| m.name.clone())
                        .collect(),
                    file: source,
                });
            }
        }
        sources
    }

    fn rollout(&self, name: &str) -> Option<&SourceFile> {
        self.rollouts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, file)| file)
    }

    /// The annotations for a release that ended badly; none for one that did not.
    pub fn annotations(&self, release: &Release) -> Vec<Annotation> {
        let mut out = Vec::new();
        let failed = matches!(
            release.outcome,
            Some(Outcome::Aborted { .. } | Outcome::Degraded { .. } | Outcome::Invalid { .. })
        );
        if !failed {
            return out;
        }
        for metric in release.failing_metrics() {
            let Some((template, index)) = self.templates.iter().find_map(|t| {
                t.metrics
                    .iter()
                    .position(|m| *m == metric.name)
                    .map(|i| (t, i))
            }) else {
                continue;
            };
            let base = FieldPath::root().keys("spec.metrics").index(index);
            let field = if !metric.success_condition.is_empty() {
                base.key("successCondition")
            } else if !metric.failure_condition.is_empty() {
                base.key("failureCondition")
            } else {
                base.key("name")
            };
            let line = template.file.spans.locate(&field).line.max(1);
            let mut message = format!(
                "{} of {} measurements failed",
                metric.count(rollout_runner_api::crd::AnalysisPhase::Failed),
                metric.measurements.len()
            );
            if let Some(limit) = &metric.failure_limit {
                message.push_str(&format!(" (failureLimit {limit})"));
            }
            if let Some(last) = metric.last_failure() {
                message.push_str(&format!(
                    "; last value {}: {}",
                    display_value(&last.value),
                    last.explanation
                ));
            }
            if !metric.message.is_empty() {
                message.push_str(&format!("\n{}", metric.message));
            }
            out.push(Annotation {
                path: template.file.path.clone(),
                start_line: line,
                end_line: line,
                level: Level::Failure,
                title: format!(
                    "metric `{}` of AnalysisTemplate `{}` failed",
                    metric.name, template.name
                ),
                message,
            });
        }
        if let Some(rollout) = self.rollout(&release.name) {
            match &release.outcome {
                Some(Outcome::Aborted { message }) => {
                    if let Some((index, step)) = release.step_in_focus() {
                        let path = FieldPath::root()
                            .keys("spec.strategy.canary.steps")
                            .index(index);
                        let line = rollout.spans.locate(&path).line.max(1);
                        out.push(Annotation {
                            path: rollout.path.clone(),
                            start_line: line,
                            end_line: line,
                            level: Level::Warning,
                            title: format!(
                                "rollout `{}` aborted at step {}/{}",
                                release.id(),
                                index + 1,
                                release.steps.len()
                            ),
                            message: format!("{}: {message}", step.text),
                        });
                    } else {
                        let line = rollout.spans.locate(&FieldPath::root().key("spec")).line;
                        out.push(Annotation {
                            path: rollout.path.clone(),
                            start_line: line.max(1),
                            end_line: line.max(1),
                            level: Level::Warning,
                            title: format!("rollout `{}` aborted", release.id()),
                            message: message.clone(),
                        });
                    }
                }
                Some(Outcome::Degraded { message }) => {
                    let deadline = FieldPath::root().keys("spec.progressDeadlineSeconds");
                    let path = if rollout.spans.contains(&deadline) {
                        deadline
                    } else {
                        FieldPath::root().keys("spec.template")
                    };
                    let line = rollout.spans.locate(&path).line.max(1);
                    out.push(Annotation {
                        path: rollout.path.clone(),
                        start_line: line,
                        end_line: line,
                        level: Level::Failure,
                        title: format!("rollout `{}` is degraded", release.id()),
                        message: message.clone(),
                    });
                }
                Some(Outcome::Invalid { message }) => {
                    let line = rollout.spans.locate(&FieldPath::root().key("spec")).line;
                    out.push(Annotation {
                        path: rollout.path.clone(),
                        start_line: line.max(1),
                        end_line: line.max(1),
                        level: Level::Failure,
                        title: format!("rollout `{}` has an invalid spec", release.id()),
                        message: message.clone(),
                    });
                }
                _ => {}
            }
        }
        out
    }
}

/// `[0.92]` as `0.92`.
pub(crate) fn display_value(value: &str) -> &str {
    if value.is_empty() {
        return "-";
    }
    let inner = value.strip_prefix('[').and_then(|v| v.strip_suffix(']'));
    match inner {
        Some(inner) if !inner.contains(',') => inner,
        _ => value,
    }
}
