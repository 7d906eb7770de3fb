//! The analysis side of a plan: which AnalysisRuns a release creates, their metrics with the
//! arguments substituted (Argo's `{{args.x}}`), and how long each takes when it passes.
//!
//! Measurements follow Argo's schedule: the first at `initialDelay` after the run starts, then
//! one every `interval`. A metric that needs `n` measurements is done after
//! `initialDelay + (n - 1) * interval`: `count` of them at the most, `consecutiveSuccessLimit`
//! at the least. A metric with an interval and no count measures until the run is stopped.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::analysis::build::{self, TemplateRef};
use crate::analysis::run::resolve_metric_args;
use rollout_runner_api::crd::duration::parse_go_duration;
use rollout_runner_api::crd::{
    AnalysisRunArgument, Argument, Metric, MetricProvider, Rollout, RolloutAnalysis,
    RolloutExperimentStep,
};

use super::{
    AnalysisPlan, ExperimentAnalysisPlan, ExperimentPlan, ExperimentTemplatePlan, MetricPlan,
    NEW_POD_HASH_PLACEHOLDER, PlanArgument, STABLE_POD_HASH_PLACEHOLDER, Span, Templates,
};

/// What the analysis side needs: the rollout (for `fieldRef` arguments), its templates, and a
/// place for warnings.
pub(super) struct Context<'a> {
    rollout: &'a Rollout,
    templates: &'a Templates,
    warnings: RefCell<Vec<String>>,
}

impl<'a> Context<'a> {
    pub(super) fn new(rollout: &'a Rollout, templates: &'a Templates) -> Self {
        Self {
            rollout,
            templates,
            warnings: RefCell::new(Vec::new()),
        }
    }

    pub(super) fn warn(&self, message: String) {
        let mut warnings = self.warnings.borrow_mut();
        if !warnings.contains(&message) {
            warnings.push(message);
        }
    }

    pub(super) fn into_warnings(self) -> Vec<String> {
        self.warnings.into_inner()
    }

    /// The run a `RolloutAnalysis` creates.
    pub(super) fn analysis(&self, analysis: &RolloutAnalysis, what: &str) -> AnalysisPlan {
        let references: Vec<TemplateRef> = analysis
            .templates
            .iter()
            .map(|t| TemplateRef {
                name: t.template_name.clone(),
                cluster_scope: t.cluster_scope,
            })
            .collect();
        self.run(&references, &analysis.args, &analysis.dry_run, what)
    }

    fn run(
        &self,
        references: &[TemplateRef],
        rollout_args: &[AnalysisRunArgument],
        dry_run: &[rollout_runner_api::crd::DryRun],
        what: &str,
    ) -> AnalysisPlan {
        let mut plan = AnalysisPlan {
            templates: references
                .iter()
                .map(|r| {
                    if r.cluster_scope {
                        format!("cluster:{}", r.name)
                    } else {
                        r.name.clone()
                    }
                })
                .collect(),
            args: Vec::new(),
            starting_step: None,
            metrics: Vec::new(),
            duration: Span::unbounded(0),
            runs_until_stopped: false,
            error: None,
        };
        let built = build::rollout_arguments(
            rollout_args,
            Some(STABLE_POD_HASH_PLACEHOLDER),
            Some(NEW_POD_HASH_PLACEHOLDER),
            self.rollout,
        )
        .and_then(|args| {
            let flat = build::flatten_templates(references, &self.templates.source())?;
            build::run_spec(flat, &args, dry_run, &[])
        });
        let spec = match built {
            Ok(spec) => spec,
            Err(error) => {
                let message = match &error {
                    build::BuildError::TemplateNotFound(_)
                    | build::BuildError::ClusterTemplateNotFound(_) => {
                        format!("{error}: it is not among the inputs, so its metrics are unknown")
                    }
                    _ => error.to_string(),
                };
                self.warn(format!("{what}: {message}"));
                plan.error = Some(message);
                return plan;
            }
        };
        plan.args = spec
            .args
            .iter()
            .map(|arg| PlanArgument {
                name: arg.name.clone(),
                value: argument_value(arg),
            })
            .collect();
        let values: BTreeMap<String, String> = plan
            .args
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect();
        let dry_run_rules: Vec<regex::Regex> = spec
            .dry_run
            .iter()
            .filter_map(|rule| regex::Regex::new(&rule.metric_name).ok())
            .collect();
        let mut duration = Span::ZERO;
        for metric in &spec.metrics {
            let resolved = match resolve_metric_args(metric, &values) {
                Ok(resolved) => resolved,
                Err(message) => {
                    self.warn(format!("{what}: metric `{}`: {message}", metric.name));
                    metric.clone()
                }
            };
            let dry = dry_run_rules.iter().any(|r| r.is_match(&metric.name));
            let metric_plan = self.metric(&resolved, dry, what);
            duration = duration.alongside(metric_plan.duration);
            if metric_plan.count.is_none() && metric_plan.consecutive_success_limit.is_none() {
                plan.runs_until_stopped = true;
            }
            plan.metrics.push(metric_plan);
        }
        plan.duration = if plan.runs_until_stopped {
            Span::unbounded(0)
        } else {
            duration
        };
        plan
    }

    fn metric(&self, metric: &Metric, dry_run: bool, what: &str) -> MetricPlan {
        let seconds = |text: &str, field: &str| -> Option<i64> {
            if text.is_empty() {
                return Some(0);
            }
            match parse_go_duration(text) {
                Ok(duration) => Some(duration.as_secs()),
                Err(error) => {
                    self.warn(format!("{what}: metric `{}`: {field} {error}", metric.name));
                    None
                }
            }
        };
        let initial_delay = seconds(&metric.initial_delay, "initialDelay");
        let interval = seconds(&metric.interval, "interval");
        let count = metric.effective_count();
        let success_limit = Some(metric.consecutive_success_limit_or_default()).filter(|n| *n > 0);
        let after = |measurements: i32| -> Option<i64> {
            let (delay, interval) = (initial_delay?, interval?);
            Some(delay + i64::from(measurements.max(1) - 1) * interval)
        };
        let duration = match (count, success_limit) {
            (Some(count), None) => match after(count) {
                Some(seconds) => Span::exact(seconds),
                None => Span::unbounded(0),
            },
            (Some(count), Some(limit)) => Span {
                min_seconds: after(limit.min(count)).unwrap_or(0),
                max_seconds: after(count),
            },
            (None, Some(limit)) => Span::unbounded(after(limit).unwrap_or(0)),
            (None, None) => Span::unbounded(0),
        };
        let (provider, address, query) = describe_provider(&metric.provider);
        let text = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        MetricPlan {
            name: metric.name.clone(),
            provider,
            address,
            query,
            success_condition: text(&metric.success_condition),
            failure_condition: text(&metric.failure_condition),
            interval: text(&metric.interval),
            initial_delay: text(&metric.initial_delay),
            count,
            failure_limit: metric.failure_limit_or_default(),
            consecutive_success_limit: success_limit,
            dry_run,
            duration,
        }
    }

    /// An experiment step: its templates, its analyses, and how long it runs.
    pub(super) fn experiment(
        &self,
        step: &RolloutExperimentStep,
        what: &str,
    ) -> (ExperimentPlan, Span) {
        let analyses: Vec<ExperimentAnalysisPlan> = step
            .analyses
            .iter()
            .map(|a| ExperimentAnalysisPlan {
                name: a.name.clone(),
                required_for_completion: a.required_for_completion,
                analysis: self.run(
                    &[TemplateRef {
                        name: a.template_name.clone(),
                        cluster_scope: a.cluster_scope,
                    }],
                    &a.args,
                    &step.dry_run,
                    &format!("{what}, analysis `{}`", a.name),
                ),
            })
            .collect();
        let duration = if step.duration.is_empty() {
            None
        } else {
            match parse_go_duration(&step.duration) {
                Ok(d) => Some(d.as_secs()),
                Err(error) => {
                    self.warn(format!("{what}: experiment duration {error}"));
                    None
                }
            }
        };
        // Argo's experiment phase: with analyses required for completion it ends when they
        // succeed (or, once the templates are done, when every analysis is); otherwise after
        // its duration, or never on its own.
        let required: Vec<&ExperimentAnalysisPlan> = analyses
            .iter()
            .filter(|a| a.required_for_completion)
            .collect();
        let span = if required.is_empty() {
            match duration {
                Some(seconds) => Span::exact(seconds),
                None => Span::unbounded(0),
            }
        } else {
            let required_span = required
                .iter()
                .fold(Span::ZERO, |s, a| s.alongside(a.analysis.duration));
            let all_span = analyses
                .iter()
                .fold(Span::ZERO, |s, a| s.alongside(a.analysis.duration));
            match duration {
                Some(d) => Span {
                    min_seconds: if required_span.min_seconds <= d {
                        required_span.min_seconds
                    } else {
                        all_span.min_seconds
                    },
                    max_seconds: required_span.max_seconds.and_then(|max| {
                        if max <= d {
                            Some(max)
                        } else {
                            all_span.max_seconds
                        }
                    }),
                },
                None => required_span,
            }
        };
        let plan = ExperimentPlan {
            duration: Some(step.duration.clone()).filter(|d| !d.is_empty()),
            templates: step
                .templates
                .iter()
                .map(|t| ExperimentTemplatePlan {
                    name: t.name.clone(),
                    spec_ref: t.spec_ref.clone(),
                    replicas: t.replicas.unwrap_or(1),
                    weight: t.weight,
                })
                .collect(),
            analyses,
        };
        (plan, span)
    }
}

/// What an argument shows: its value, or a placeholder for what is only known at run time.
fn argument_value(arg: &Argument) -> String {
    if let Some(value) = &arg.value {
        return value.clone();
    }
    match &arg.value_from {
        Some(from) => match (&from.secret_key_ref, &from.field_ref) {
            (Some(secret), _) => format!("<secret {}/{}>", secret.name, secret.key),
            (None, Some(field)) => format!("<{}>", field.field_path),
            (None, None) => "<unresolved>".to_string(),
        },
        None => "<unresolved>".to_string(),
    }
}

/// The provider's name, address and what it is asked.
fn describe_provider(provider: &MetricProvider) -> (String, Option<String>, Option<String>) {
    let text = |s: &str| Some(s.trim_end().to_string()).filter(|s| !s.is_empty());
    if let Some(p) = &provider.prometheus {
        return ("prometheus".into(), text(&p.address), text(&p.query));
    }
    if let Some(p) = &provider.web {
        let method = if p.method.is_empty() {
            "GET"
        } else {
            &p.method
        };
        let mut query = format!("{method} {}", p.url);
        if !p.json_path.is_empty() {
            query.push_str(&format!(" (jsonPath `{}`)", p.json_path));
        }
        return ("web".into(), text(&p.url), Some(query));
    }
    if let Some(p) = &provider.datadog {
        let query = if p.queries.is_empty() {
            p.query.clone()
        } else {
            let mut parts: Vec<String> =
                p.queries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            if !p.formula.is_empty() {
                parts.push(format!("formula: {}", p.formula));
            }
            parts.join("\n")
        };
        return ("datadog".into(), None, text(&query));
    }
    if let Some(p) = &provider.new_relic {
        return ("newRelic".into(), None, text(&p.query));
    }
    if let Some(p) = &provider.wavefront {
        return ("wavefront".into(), text(&p.address), text(&p.query));
    }
    if let Some(p) = &provider.graphite {
        return ("graphite".into(), text(&p.address), text(&p.query));
    }
    if let Some(p) = &provider.influxdb {
        return ("influxdb".into(), None, text(&p.query));
    }
    if let Some(p) = &provider.skywalking {
        return ("skywalking".into(), text(&p.address), text(&p.query));
    }
    if let Some(p) = &provider.cloud_watch {
        let queries = serde_json::to_string(&p.metric_data_queries).unwrap_or_default();
        return ("cloudWatch".into(), None, text(&queries));
    }
    if let Some(p) = &provider.kayenta {
        return (
            "kayenta".into(),
            text(&p.address),
            Some(format!(
                "canary config `{}` of `{}`",
                p.canary_config_name, p.application
            )),
        );
    }
    if let Some(p) = &provider.judge {
        let names: Vec<&str> = p.metrics.iter().map(|m| m.name.as_str()).collect();
        return (
            "judge".into(),
            None,
            Some(format!("canary vs baseline: {}", names.join(", "))),
        );
    }
    if let Some(p) = &provider.job {
        let commands: Vec<String> = p
            .spec
            .template
            .spec
            .iter()
            .flat_map(|pod| pod.containers.iter())
            .map(|c| {
                let mut words: Vec<String> = c.image.iter().cloned().collect();
                words.extend(c.command.iter().flatten().cloned());
                words.extend(c.args.iter().flatten().cloned());
                words.join(" ")
            })
            .collect();
        return ("job".into(), None, text(&commands.join("\n")));
    }
    if let Some((name, config)) = provider.plugin.iter().next() {
        return (
            format!("plugin {name}"),
            None,
            Some(serde_json::to_string(config).unwrap_or_default()),
        );
    }
    ("none".into(), None, None)
}
