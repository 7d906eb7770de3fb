//! `lint --check-queries`: run each Prometheus metric's query once, read-only, and warn when
//! what comes back cannot be what the conditions expect: no series, several series where a
//! condition reads `result[0]`, or values far outside every number the conditions compare with.
//!
//! Arguments are filled from the template's `value`s and `--query-arg`; a metric whose query
//! still needs an argument (or a Secret) is skipped, with a warning that says so.

use std::collections::BTreeMap;

use jiff::Timestamp;
use regex::Regex;

use crate::analysis::run::resolve_metric_args;
use crate::crd::{Argument, Metric};
use crate::manifest::{Document, FieldPath, ManifestSet, Problem, Rule, Severity};
use crate::metrics::prometheus::{self, QueryResult};

/// What the checks need besides the manifests.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryCheck {
    /// For metrics without `address`.
    pub(crate) prometheus_address: Option<String>,
    /// Values for template arguments, overriding their `value`.
    pub(crate) args: BTreeMap<String, String>,
}

/// Run the queries of every AnalysisTemplate and ClusterAnalysisTemplate and return warnings.
pub(crate) fn check(set: &ManifestSet, options: &QueryCheck) -> Vec<Problem> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return vec![Problem {
                severity: Severity::Warning,
                rule: Rule::Query,
                file: String::new(),
                line: 0,
                column: 0,
                object: String::new(),
                path: String::new(),
                message: format!("queries not checked: cannot start an async runtime: {e}"),
                hint: None,
            }];
        }
    };
    let mut templates: Vec<(&Document, &[Metric], &[Argument])> = Vec::new();
    for (doc, t) in set.analysis_templates() {
        templates.push((doc, &t.spec.metrics, &t.spec.args));
    }
    for (doc, t) in set.cluster_analysis_templates() {
        templates.push((doc, &t.spec.template.metrics, &t.spec.template.args));
    }
    let now = Timestamp::now();
    let mut problems = Vec::new();
    for (doc, metrics, args) in templates {
        for (index, metric) in metrics.iter().enumerate() {
            if metric.provider.prometheus.is_none() {
                continue;
            }
            let path =
                FieldPath::parse(&format!("spec.metrics[{index}].provider.prometheus.query"));
            let warn = |message: String, hint: Option<String>| {
                doc.problem(Severity::Warning, Rule::Query, &path, message, hint)
            };
            let resolved = match resolve(metric, args, &options.args) {
                Ok(m) => m,
                Err(why) => {
                    problems.push(warn(
                        format!("query of metric `{}` not checked: {why}", metric.name),
                        Some("give the argument a value with `--query-arg NAME=VALUE`".into()),
                    ));
                    continue;
                }
            };
            let Some(config) = &resolved.provider.prometheus else {
                continue;
            };
            let result = runtime.block_on(prometheus::query(
                config,
                options.prometheus_address.as_deref(),
                now,
            ));
            match result {
                Err(failure) => problems.push(warn(
                    format!("query of metric `{}` failed: {failure}", metric.name),
                    Some(
                        "check the query in the Prometheus UI, and the address (`--prometheus-address`)"
                            .into(),
                    ),
                )),
                Ok(result) => problems.extend(
                    findings(&resolved, &result)
                        .into_iter()
                        .map(|(message, hint)| warn(message, Some(hint))),
                ),
            }
        }
    }
    problems
}

/// The metric with its arguments: `--query-arg` first, then the template's values. Secrets
/// and arguments without a value make it uncheckable.
fn resolve(
    metric: &Metric,
    args: &[Argument],
    given: &BTreeMap<String, String>,
) -> Result<Metric, String> {
    let mut values = BTreeMap::new();
    let mut missing = BTreeMap::new();
    for arg in args {
        if let Some(value) = given.get(&arg.name) {
            values.insert(arg.name.clone(), value.clone());
        } else if arg
            .value_from
            .as_ref()
            .is_some_and(|f| f.secret_key_ref.is_some())
        {
            missing.insert(arg.name.clone(), "comes from a Secret");
        } else if arg.value_from.is_some() {
            missing.insert(arg.name.clone(), "is set by the cluster (`valueFrom`)");
        } else if let Some(value) = &arg.value {
            values.insert(arg.name.clone(), value.clone());
        } else {
            missing.insert(arg.name.clone(), "has no value");
        }
    }
    for (name, value) in given {
        values.entry(name.clone()).or_insert_with(|| value.clone());
    }
    resolve_metric_args(metric, &values).map_err(|e| {
        // `failed to resolve {{args.x}}`: name the argument and why it has no value.
        let name = e
            .split("args.")
            .nth(1)
            .and_then(|rest| rest.split("}}").next())
            .unwrap_or("")
            .trim()
            .to_string();
        match missing.get(&name) {
            Some(why) => format!("argument `{name}` {why}"),
            None => e,
        }
    })
}

/// Warnings about one query's result: `(message, hint)`.
pub(crate) fn findings(metric: &Metric, result: &QueryResult) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let name = &metric.name;
    let conditions = [
        metric.success_condition.as_str(),
        metric.failure_condition.as_str(),
    ];
    let series = result.series_count();
    if series == 0 {
        out.push((
            format!("query of metric `{name}` returned no series"),
            "with no data `result` is `[]`: a condition that reads `result[0]` is an Error, and `all(result, ...)` is true; check the labels, or handle no data explicitly".into(),
        ));
        return out;
    }
    let indexes_first = conditions.iter().any(|c| c.contains("result[0]"));
    if series > 1 && indexes_first {
        let labels: Vec<String> = distinct_labels(result).into_iter().take(3).collect();
        out.push((
            format!(
                "query of metric `{name}` returned {series} series ({}{}) but the condition reads only `result[0]`",
                labels.join(", "),
                if series > 3 { ", ..." } else { "" }
            ),
            "the order of series is not guaranteed: aggregate the query to one series (`sum(...)`, `max(...)`), or judge every series with `all(result, ...)`".into(),
        ));
    }
    let samples: Vec<f64> = result
        .samples()
        .into_iter()
        .filter(|v| v.is_finite())
        .collect();
    let thresholds: Vec<f64> = conditions
        .iter()
        .flat_map(|c| thresholds(c))
        .filter(|t| *t != 0.0)
        .collect();
    let largest = samples.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let biggest_threshold = thresholds.iter().map(|v| v.abs()).fold(0.0, f64::max);
    if largest > 0.0 && biggest_threshold > 0.0 {
        let ratio = largest / biggest_threshold;
        if !(0.01..=100.0).contains(&ratio) {
            let typical = samples
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(largest);
            let scale = if ratio > 1.0 {
                format!("about {:.0} times larger than", ratio)
            } else {
                format!("about {:.0} times smaller than", 1.0 / ratio)
            };
            out.push((
                format!(
                    "values of metric `{name}` (up to {}) are {scale} every number the condition compares with (up to {})",
                    crate::metrics::prometheus::QueryResult {
                        result: crate::expr::Value::Float(typical),
                        series: Vec::new(),
                        warnings: Vec::new(),
                    }
                    .value_text(),
                    trim_float(biggest_threshold)
                ),
                "the condition may always or never match: check the units (a ratio against a percentage, seconds against milliseconds)".into(),
            ));
        }
    }
    out
}

fn trim_float(f: f64) -> String {
    crate::metrics::scripted::format_value(f)
}

fn distinct_labels(result: &QueryResult) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for labels in &result.series {
        let text = format!(
            "{{{}}}",
            labels
                .iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        if !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

/// The numbers a condition compares `result` (or `#` in a predicate) with: `result[0] >= 0.95`,
/// `0.95 <= result`, `all(result, # < 1000)`.
pub(crate) fn thresholds(condition: &str) -> Vec<f64> {
    let number = r"(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)";
    let subject = r"(?:result(?:\[\d+\])?(?:\.\w+|\['[^']*'\])*|#)";
    let op = r"(?:<=|>=|==|!=|<|>)";
    let left = Regex::new(&format!(r"{subject}\s*{op}\s*{number}")).expect("a valid regex");
    let right = Regex::new(&format!(r"{number}\s*{op}\s*{subject}")).expect("a valid regex");
    left.captures_iter(condition)
        .chain(right.captures_iter(condition))
        .filter_map(|c| c.get(1).and_then(|m| m.as_str().parse().ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Value;

    fn result(values: &[f64], series: usize) -> QueryResult {
        QueryResult {
            result: Value::Vector(values.to_vec()),
            series: (0..series)
                .map(|i| BTreeMap::from([("pod".to_string(), format!("p{i}"))]))
                .collect(),
            warnings: Vec::new(),
        }
    }

    fn metric(success: &str) -> Metric {
        Metric {
            name: "m".into(),
            success_condition: success.into(),
            ..Default::default()
        }
    }

    #[test]
    fn thresholds_are_the_numbers_compared_with_the_result() {
        assert_eq!(thresholds("result[0] >= 0.95"), vec![0.95]);
        assert_eq!(
            thresholds("all(result, # < 1000) && 5 > result[1]"),
            vec![1000.0, 5.0]
        );
        assert_eq!(
            thresholds("result.count == 10 and result['a.b'] < 1.5e3"),
            vec![10.0, 1500.0]
        );
        assert!(thresholds("len(result) > 0").is_empty());
    }

    #[test]
    fn findings_name_the_problem() {
        assert!(
            findings(&metric("result[0] > 0.9"), &result(&[], 0))[0]
                .0
                .contains("no series")
        );
        let several = findings(&metric("result[0] > 0.9"), &result(&[0.99, 0.91], 2));
        assert!(
            several[0]
                .0
                .contains("returned 2 series ({pod=\"p0\"}, {pod=\"p1\"})"),
            "{several:?}"
        );
        assert!(findings(&metric("all(result, # > 0.9)"), &result(&[0.99, 0.91], 2)).is_empty());
        let scale = findings(&metric("result[0] >= 0.95"), &result(&[1250.0], 1));
        assert!(scale[0].0.contains("up to 1250"), "{scale:?}");
        assert!(scale[0].0.contains("up to 0.95"), "{scale:?}");
        assert!(findings(&metric("result[0] >= 0.95"), &result(&[0.99], 1)).is_empty());
    }
}
