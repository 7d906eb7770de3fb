//! AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun: Argo's `ValidateMetrics` and
//! `ValidateMetric` (`utils/analysis/factory.go`), argument declarations, dry-run and
//! measurement-retention rules, and conditions that must compile.

use std::collections::HashSet;

use super::messages as m;
use super::{Finding, Findings, check_condition, check_duration, is_templated};
use crate::manifest::{FieldPath, Rule, Severity};
use rollout_runner_api::crd::{
    AnalysisRunSpec, AnalysisTemplateSpec, Argument, DryRun, IntOrString, MeasurementRetention,
    Metric, int_value,
};

/// The spec of an AnalysisTemplate or ClusterAnalysisTemplate (at `spec`).
pub(crate) fn validate_template_spec(spec: &AnalysisTemplateSpec, _run: bool) -> Vec<Finding> {
    let mut f = Findings::default();
    let path = FieldPath::parse("spec");
    if spec.metrics.is_empty() && spec.templates.is_empty() {
        f.spec(
            path.key("metrics"),
            m::NO_METRICS,
            "add at least one metric, or include other templates under `templates`",
        );
    }
    f.extend(metrics(&spec.metrics, &path.key("metrics")));
    template_arguments(&mut f, &spec.args, &path.key("args"));
    placeholders(&mut f, &spec.metrics, &spec.args, &path.key("metrics"));
    if spec.templates.is_empty() {
        let names: Vec<&str> = spec.metrics.iter().map(|m| m.name.as_str()).collect();
        metric_rules(
            &mut f,
            &spec.dry_run,
            &spec.measurement_retention,
            &names,
            &path,
        );
    }
    for (i, template) in spec.templates.iter().enumerate() {
        if template.template_name.is_empty() {
            f.spec(
                path.key("templates").index(i).key("templateName"),
                "template reference has no templateName",
                "name the AnalysisTemplate to include",
            );
        }
    }
    f.into_vec()
}

/// The spec of an AnalysisRun (at `spec`): like a template's, but every argument must have a
/// value.
pub(crate) fn validate_run_spec(spec: &AnalysisRunSpec) -> Vec<Finding> {
    let mut f = Findings::default();
    let path = FieldPath::parse("spec");
    if spec.metrics.is_empty() {
        f.spec(
            path.key("metrics"),
            m::NO_METRICS,
            "add at least one metric",
        );
    }
    f.extend(metrics(&spec.metrics, &path.key("metrics")));
    template_arguments(&mut f, &spec.args, &path.key("args"));
    for (i, arg) in spec.args.iter().enumerate() {
        if arg.value.is_none() && arg.value_from.is_none() {
            f.spec(
                path.key("args").index(i),
                m::arg_not_resolved(&arg.name),
                "an AnalysisRun's arguments need a `value` or `valueFrom`",
            );
        }
    }
    placeholders(&mut f, &spec.metrics, &spec.args, &path.key("metrics"));
    let names: Vec<&str> = spec.metrics.iter().map(|m| m.name.as_str()).collect();
    metric_rules(
        &mut f,
        &spec.dry_run,
        &spec.measurement_retention,
        &names,
        &path,
    );
    f.into_vec()
}

/// Argo's `ValidateMetrics` for a list of metrics at `path` (`spec.metrics`): unique names and
/// every metric valid on its own.
pub fn validate_metrics(list: &[Metric], path: &FieldPath) -> Vec<Finding> {
    metrics(list, path).into_vec()
}

fn metrics(list: &[Metric], path: &FieldPath) -> Findings {
    let mut f = Findings::default();
    let mut names = HashSet::new();
    for (i, metric) in list.iter().enumerate() {
        let at = path.index(i);
        if metric.name.is_empty() {
            f.spec(at.key("name"), "metric has no name", "name every metric");
        } else if !names.insert(metric.name.as_str()) {
            f.spec(
                at.key("name"),
                m::duplicate_metric(i, &metric.name),
                "metric names must be unique within an analysis",
            );
        }
        validate_metric(&mut f, metric, &at);
    }
    f
}

/// A count or limit as an integer, `None` when absent or templated (`{{args.n}}`).
fn limit(value: Option<&IntOrString>) -> Option<i32> {
    value.and_then(int_value)
}

fn limit_written(value: Option<&IntOrString>) -> bool {
    match value {
        Some(IntOrString::String(s)) => !is_templated(s),
        Some(IntOrString::Int(_)) => true,
        None => false,
    }
}

fn validate_metric(f: &mut Findings, metric: &Metric, path: &FieldPath) {
    for (value, name) in [
        (metric.count.as_ref(), "count"),
        (metric.failure_limit.as_ref(), "failureLimit"),
        (metric.inconclusive_limit.as_ref(), "inconclusiveLimit"),
        (
            metric.consecutive_error_limit.as_ref(),
            "consecutiveErrorLimit",
        ),
        (
            metric.consecutive_success_limit.as_ref(),
            "consecutiveSuccessLimit",
        ),
    ] {
        if limit_written(value) && limit(value).is_none() {
            f.spec(
                path.key(name),
                format!("`{name}` must be an integer"),
                "use a number, or an argument placeholder such as `{{args.count}}`",
            );
        }
    }
    let count = limit(metric.count.as_ref()).unwrap_or(0);
    let failure = limit(metric.failure_limit.as_ref()).unwrap_or(0);
    let inconclusive = limit(metric.inconclusive_limit.as_ref()).unwrap_or(0);
    let consecutive_success = limit(metric.consecutive_success_limit.as_ref()).unwrap_or(0);
    let consecutive_error = limit(metric.consecutive_error_limit.as_ref()).unwrap_or(4);
    if consecutive_success < 0 {
        f.spec(
            path.key("consecutiveSuccessLimit"),
            m::CONSECUTIVE_SUCCESS_LIMIT_NEGATIVE,
            "use 0 (disabled) or a positive number",
        );
    }
    if failure < -1 {
        f.spec(
            path.key("failureLimit"),
            m::FAILURE_LIMIT_NEGATIVE,
            "use -1 (disabled), 0 or a positive number",
        );
    }
    if failure == -1 && consecutive_success == 0 {
        f.spec(
            path.key("failureLimit"),
            m::LIMITS_BOTH_DISABLED,
            "with failureLimit -1, set consecutiveSuccessLimit above 0",
        );
    }
    if inconclusive < 0 {
        f.spec(
            path.key("inconclusiveLimit"),
            m::INCONCLUSIVE_LIMIT_NEGATIVE,
            "use 0 or a positive number",
        );
    }
    if consecutive_error < 0 {
        f.spec(
            path.key("consecutiveErrorLimit"),
            m::CONSECUTIVE_ERROR_LIMIT_NEGATIVE,
            "use 0 or a positive number (default 4)",
        );
    }
    if count > 0 {
        let hint = "raise count, or lower the limits";
        if consecutive_success > 0 {
            if failure >= 0 && count < failure + consecutive_success {
                f.spec(path.key("count"), m::COUNT_LESS_THAN_LIMITS, hint);
            } else if failure < 0 && count < consecutive_success {
                f.spec(
                    path.key("count"),
                    m::COUNT_LESS_THAN_CONSECUTIVE_SUCCESS_LIMIT,
                    hint,
                );
            }
        } else if count < failure {
            f.spec(path.key("count"), m::COUNT_LESS_THAN_FAILURE_LIMIT, hint);
        }
        if count < inconclusive {
            f.spec(
                path.key("count"),
                m::COUNT_LESS_THAN_INCONCLUSIVE_LIMIT,
                hint,
            );
        }
    }
    if count > 1 && metric.interval.is_empty() {
        f.spec(
            path.key("count"),
            m::INTERVAL_REQUIRED,
            "add `interval` (such as `1m`): the time between measurements",
        );
    }
    if !metric.interval.is_empty()
        && !is_templated(&metric.interval)
        && let Err(error) = check_duration(&metric.interval)
    {
        f.spec(
            path.key("interval"),
            m::invalid_interval(&error),
            "use a Go duration such as `30s`, `5m` or `1h`",
        );
    }
    if !metric.initial_delay.is_empty()
        && !is_templated(&metric.initial_delay)
        && let Err(error) = check_duration(&metric.initial_delay)
    {
        f.spec(
            path.key("initialDelay"),
            m::invalid_initial_delay(&error),
            "use a Go duration such as `30s`, `5m` or `1h`",
        );
    }

    let provider = &metric.provider;
    let count = provider.kinds().len() + provider.plugin.len().saturating_sub(1);
    match count {
        0 => f.spec(
            path.key("provider"),
            m::NO_PROVIDER,
            "add one provider, such as `prometheus`, `web` or `job`",
        ),
        1 => {}
        _ => f.spec(
            path.key("provider"),
            m::MULTIPLE_PROVIDERS,
            "a metric has exactly one provider: split it into several metrics",
        ),
    }
    let pp = path.key("provider");
    if let Some(web) = &provider.web {
        let method = if web.method.is_empty() {
            "GET"
        } else {
            web.method.as_str()
        };
        let has_body = !web.body.is_empty() || web.json_body.is_some();
        if has_body && !["POST", "PUT"].contains(&method) {
            f.spec(
                pp.key("web").key("method"),
                m::WEB_BODY_METHOD,
                "set `method: POST` or `method: PUT`, or remove the body",
            );
        }
        if !web.body.is_empty() && web.json_body.is_some() {
            f.spec(
                pp.key("web").key("jsonBody"),
                m::WEB_BODY_AND_JSON_BODY,
                "keep either `body` or `jsonBody`",
            );
        }
        if web.url.is_empty() {
            f.spec(
                pp.key("web").key("url"),
                "web metric has no url",
                "set `url`",
            );
        }
    }
    if let Some(prometheus) = &provider.prometheus {
        if prometheus.query.trim().is_empty() {
            f.beyond_argo(
                pp.key("prometheus").key("query"),
                "prometheus metric has no query",
                "set `query` to a PromQL expression: Prometheus has nothing to evaluate without one",
            );
        }
        let address = &prometheus.address;
        let checkable = !address.is_empty() && !is_templated(address);
        if checkable && !address.starts_with("http://") && !address.starts_with("https://") {
            f.spec(
                pp.key("prometheus").key("address"),
                format!("prometheus address `{address}` is not an http(s) URL"),
                "use a URL such as `http://prometheus.monitoring:9090`",
            );
        }
    }
    if let Some(job) = &provider.job {
        let spec = job.spec.template.spec.as_ref();
        match spec.and_then(|s| s.restart_policy.as_deref()) {
            Some("Never") | Some("OnFailure") => {}
            other => f.spec(
                pp.keys("job.spec.template.spec.restartPolicy"),
                match other {
                    Some(policy) => format!(
                        "Unsupported value: \"{policy}\": supported values: \"OnFailure\", \"Never\""
                    ),
                    None => "Required value: valid values: \"OnFailure\", \"Never\"".to_string(),
                },
                "Jobs need `restartPolicy: Never` or `OnFailure`",
            ),
        }
        if spec.is_none_or(|s| s.containers.is_empty()) {
            f.spec(
                pp.keys("job.spec.template.spec.containers"),
                "the job's pod template has no containers",
                "add the container that runs the check",
            );
        }
    }
    for (condition, name) in [
        (&metric.success_condition, "successCondition"),
        (&metric.failure_condition, "failureCondition"),
    ] {
        if condition.is_empty() {
            continue;
        }
        if let Err(error) = check_condition(condition) {
            f.push(
                Severity::Error,
                Rule::Condition,
                path.key(name),
                format!("invalid {name} \"{condition}\": {error}"),
                Some("conditions are expr-lang expressions over `result`, such as `result[0] >= 0.95`"),
            );
        }
    }
}

/// A template's or run's argument declarations.
fn template_arguments(f: &mut Findings, args: &[Argument], path: &FieldPath) {
    let mut names = HashSet::new();
    for (i, arg) in args.iter().enumerate() {
        let at = path.index(i);
        if arg.name.is_empty() {
            f.spec(
                at.key("name"),
                "argument has no name",
                "name every argument",
            );
        } else if !names.insert(arg.name.as_str()) {
            f.spec(
                at.key("name"),
                format!("duplicate argument `{}`", arg.name),
                "declare each argument once",
            );
        }
        if let Some(from) = &arg.value_from {
            if arg.value.is_some() {
                f.spec(
                    at.clone(),
                    format!("arg '{}' has both Value and ValueFrom fields", arg.name),
                    "keep either `value` or `valueFrom`",
                );
            }
            if from.secret_key_ref.is_none() && from.field_ref.is_none() {
                f.spec(
                    at.key("valueFrom"),
                    "valueFrom has neither secretKeyRef nor fieldRef",
                    "set `secretKeyRef` (name, key) or `fieldRef` (fieldPath)",
                );
            }
        }
    }
}

/// The `{{args.NAME}}` placeholders used in a text.
pub(crate) fn arg_placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let inner = after[..end].trim();
        if let Some(name) = inner.strip_prefix("args.") {
            out.push(name.trim().to_string());
        }
        rest = &after[end + 2..];
    }
    out
}

/// Every `{{args.NAME}}` a metric uses must be declared (Argo: `failed to resolve`).
fn placeholders(f: &mut Findings, list: &[Metric], args: &[Argument], path: &FieldPath) {
    let declared: HashSet<&str> = args.iter().map(|a| a.name.as_str()).collect();
    for (i, metric) in list.iter().enumerate() {
        let text = serde_json::to_string(metric).unwrap_or_default();
        let mut seen = HashSet::new();
        for name in arg_placeholders(&text) {
            if !declared.contains(name.as_str()) && seen.insert(name.clone()) {
                f.push(
                    Severity::Error,
                    Rule::Spec,
                    path.index(i),
                    format!("failed to resolve {{{{args.{name}}}}}"),
                    Some(&format!("declare `{name}` under `spec.args`")),
                );
            }
        }
    }
}

/// `dryRun` and `measurementRetention` rules: Go regular expressions that must compile and
/// match some metric.
pub(crate) fn metric_rules(
    f: &mut Findings,
    dry_run: &[DryRun],
    retention: &[MeasurementRetention],
    metric_names: &[&str],
    path: &FieldPath,
) {
    let rules = dry_run
        .iter()
        .map(|d| (d.metric_name.as_str(), "dryRun"))
        .chain(
            retention
                .iter()
                .map(|r| (r.metric_name.as_str(), "measurementRetention")),
        );
    let mut index = std::collections::HashMap::<&str, usize>::new();
    for (pattern, field) in rules {
        let i = *index.entry(field).and_modify(|i| *i += 1).or_insert(0);
        let at = path.key(field).index(i).key("metricName");
        match regex::Regex::new(pattern) {
            Err(error) => f.spec(
                at,
                format!(
                    "{field}[{i}]: invalid metricName regular expression: {}",
                    regex_error(&error)
                ),
                "metricName is a regular expression matched against metric names (`.*` for all)",
            ),
            Ok(regex) => {
                if !metric_names.iter().any(|name| regex.is_match(name)) {
                    f.spec(
                        at,
                        format!("{field}[{i}]: Rule didn't match any metric name(s)"),
                        "fix the pattern, or remove the rule",
                    );
                }
            }
        }
    }
    for (i, rule) in retention.iter().enumerate() {
        if rule.limit <= 0 {
            f.spec(
                path.key("measurementRetention").index(i).key("limit"),
                "measurementRetention limit must be greater than 0",
                "keep at least one measurement",
            );
        }
    }
}

/// The last line of a regex error (its reason), without the multi-line caret display.
fn regex_error(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().last().unwrap_or_default().trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found() {
        assert_eq!(
            arg_placeholders(
                "a {{args.service-name}} b {{ args.x }} {{templates.t.podTemplateHash}}"
            ),
            ["service-name", "x"]
        );
    }
}
