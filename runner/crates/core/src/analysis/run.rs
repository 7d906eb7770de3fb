//! The AnalysisRun lifecycle (Argo's `analysis/analysis.go`), pure: which measurements are due,
//! how a finished measurement updates the counters, how metrics and the run are assessed, and
//! when to look again. Taking a measurement is the caller's job (a metric provider).
//!
//! A reconcile is two calls: [`plan`] lists the [`MetricTask`]s due now; after running them,
//! [`record`] folds the results into the run's status.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use regex::Regex;

use rollout_runner_api::crd::{
    AnalysisPhase, AnalysisRun, AnalysisRunStatus, Argument, Measurement, MeasurementRetention,
    Metric, MetricResult, RunSummary, Time, duration::parse_go_duration,
};

/// Measurements kept per metric unless `measurementRetention` says otherwise.
pub const DEFAULT_MEASUREMENT_HISTORY_LIMIT: usize = 10;
/// Wait after an errored measurement, or between measurements without an interval.
pub const DEFAULT_ERROR_RETRY_SECONDS: i64 = 10;
/// The text that replaces secret values in messages.
pub const REDACTED: &str = "*****";
/// Stand-in for secret values while checking a run (Argo's `temp-for-secret`).
const SECRET_PLACEHOLDER: &str = "temp-for-secret";

/// What to do for one metric in this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    /// Take a new measurement.
    Run,
    /// Look at an in-flight measurement again (Job, Kayenta).
    Resume(Measurement),
    /// Stop an in-flight measurement: the run is terminating.
    Terminate(Measurement),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricTask {
    /// The metric as written in the run (arguments not yet substituted).
    pub metric: Metric,
    pub kind: TaskKind,
}

/// The outcome of [`plan`].
#[derive(Debug, Clone, PartialEq)]
pub enum RunPlan {
    /// The run is finished; nothing to do.
    Completed,
    /// The run cannot proceed: it ends with phase Error and this message.
    Invalid(String),
    /// Measurements due now (possibly none).
    Tasks(Vec<MetricTask>),
}

/// Rules of a run after validation, used by [`plan`] and [`record`].
struct RunRules {
    dry_run: BTreeMap<String, bool>,
    retention: BTreeMap<String, usize>,
}

fn status_of(run: &AnalysisRun) -> AnalysisRunStatus {
    run.status.clone().unwrap_or_default()
}

fn result<'a>(status: &'a AnalysisRunStatus, metric: &str) -> Option<&'a MetricResult> {
    status.metric_results.iter().find(|r| r.name == metric)
}

fn last_measurement<'a>(status: &'a AnalysisRunStatus, metric: &str) -> Option<&'a Measurement> {
    result(status, metric).and_then(|r| r.measurements.last())
}

fn parse_seconds(duration: &str) -> Option<SignedDuration> {
    parse_go_duration(duration).ok()
}

fn time_plus(time: &Time, duration: SignedDuration) -> Timestamp {
    time.0.checked_add(duration).unwrap_or(time.0)
}

/// Argo's `GetDryRunMetrics`: which metrics run dry (each rule is an unanchored regex and must
/// match at least one metric).
fn dry_run_metrics(run: &AnalysisRun) -> Result<BTreeMap<String, bool>, String> {
    let mut map = BTreeMap::new();
    for (index, rule) in run.spec.dry_run.iter().enumerate() {
        let pattern = Regex::new(&rule.metric_name)
            .map_err(|e| format!("dryRun[{index}]: invalid metricName regex: {e}"))?;
        let mut matched = false;
        for metric in &run.spec.metrics {
            if pattern.is_match(&metric.name) {
                map.insert(metric.name.clone(), true);
                matched = true;
            }
        }
        if !matched {
            return Err(format!(
                "dryRun[{index}]: Rule didn't match any metric name(s)"
            ));
        }
    }
    Ok(map)
}

/// Argo's `GetMeasurementRetentionMetrics`.
fn retention_metrics(
    rules: &[MeasurementRetention],
    metrics: &[Metric],
) -> Result<BTreeMap<String, usize>, String> {
    let mut map = BTreeMap::new();
    for (index, rule) in rules.iter().enumerate() {
        let pattern = Regex::new(&rule.metric_name)
            .map_err(|e| format!("measurementRetention[{index}]: invalid metricName regex: {e}"))?;
        let mut matched = false;
        for metric in metrics {
            if pattern.is_match(&metric.name) {
                if rule.limit > 0 {
                    map.insert(
                        metric.name.clone(),
                        usize::try_from(rule.limit).unwrap_or(0),
                    );
                }
                matched = true;
            }
        }
        if !matched {
            return Err(format!(
                "measurementRetention[{index}]: Rule didn't match any metric name(s)"
            ));
        }
    }
    Ok(map)
}

/// How many measurements (and Job provider Jobs) of `metric` the run keeps.
pub fn retention_limit(run: &AnalysisRun, metric: &str) -> usize {
    retention_metrics(&run.spec.measurement_retention, &run.spec.metrics)
        .ok()
        .and_then(|limits| limits.get(metric).copied())
        .unwrap_or(DEFAULT_MEASUREMENT_HISTORY_LIMIT)
}

fn rules(run: &AnalysisRun) -> Result<RunRules, String> {
    let resolved = resolve_without_secrets(run)
        .map_err(|e| format!("Unable to resolve metric arguments: {e}"))?;
    let dry_run = dry_run_metrics(run).map_err(|e| format!("Analysis spec invalid: {e}"))?;
    let retention = retention_metrics(&run.spec.measurement_retention, &resolved)
        .map_err(|e| format!("Analysis spec invalid: {e}"))?;
    Ok(RunRules { dry_run, retention })
}

/// Metrics with arguments substituted, secrets replaced by a placeholder.
fn resolve_without_secrets(run: &AnalysisRun) -> Result<Vec<Metric>, String> {
    let values: BTreeMap<String, String> = run
        .spec
        .args
        .iter()
        .map(|arg| {
            let value = match (&arg.value, &arg.value_from) {
                (_, Some(from)) if from.secret_key_ref.is_some() => SECRET_PLACEHOLDER.to_string(),
                (Some(value), _) => value.clone(),
                _ => String::new(),
            };
            (arg.name.clone(), value)
        })
        .collect();
    run.spec
        .metrics
        .iter()
        .map(|m| resolve_metric_args(m, &values))
        .collect()
}

/// Argo's `ResolveMetricArgs`: replace every `{{ args.NAME }}` anywhere in the metric with the
/// argument's value, escaped for JSON strings (so quotes in values cannot break the spec).
pub fn resolve_metric_args(
    metric: &Metric,
    values: &BTreeMap<String, String>,
) -> Result<Metric, String> {
    let json = serde_json::to_string(metric).map_err(|e| e.to_string())?;
    let resolved = substitute_args(&json, values)?;
    serde_json::from_str(&resolved).map_err(|e| e.to_string())
}

/// Substitute `{{ args.NAME }}` tags in JSON text.
pub fn substitute_args(json: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let tag = rest[start + 2..start + end].trim();
        out.push_str(&rest[..start]);
        match tag.strip_prefix("args.") {
            Some(name) => {
                let value = values
                    .get(name)
                    .ok_or_else(|| format!("failed to resolve {{{{{tag}}}}}"))?;
                let escaped = serde_json::to_string(value).map_err(|e| e.to_string())?;
                out.push_str(&escaped[1..escaped.len() - 1]);
            }
            // Not ours (e.g. a Go template in a web body): keep it as written.
            None => out.push_str(&rest[start..start + end + 2]),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Argo's `IsTerminating`: asked to stop, or a counted metric already failed.
fn is_terminating(
    run: &AnalysisRun,
    status: &AnalysisRunStatus,
    dry_run: &BTreeMap<String, bool>,
) -> bool {
    if run.spec.terminate {
        return true;
    }
    status.metric_results.iter().any(|r| {
        !dry_run.get(&r.name).copied().unwrap_or(false)
            && matches!(
                r.phase,
                AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
            )
    })
}

/// Argo's `generateMetricTasks`: what to measure now.
pub fn plan(run: &AnalysisRun, now: Timestamp) -> RunPlan {
    let status = status_of(run);
    if status.phase.is_completed() {
        return RunPlan::Completed;
    }
    let rules = match rules(run) {
        Ok(rules) => rules,
        Err(message) => return RunPlan::Invalid(message),
    };
    let terminating = is_terminating(run, &status, &rules.dry_run);
    let mut tasks = Vec::new();
    for metric in &run.spec.metrics {
        let result = result(&status, &metric.name);
        if result.is_some_and(|r| r.phase.is_completed()) {
            continue;
        }
        let last = last_measurement(&status, &metric.name);
        if let Some(last) = last.filter(|m| m.finished_at.is_none()) {
            if last.resume_at.as_ref().is_some_and(|at| at.0 > now) && !terminating {
                continue;
            }
            let kind = if terminating {
                TaskKind::Terminate(last.clone())
            } else {
                TaskKind::Resume(last.clone())
            };
            tasks.push(MetricTask {
                metric: metric.clone(),
                kind,
            });
            continue;
        }
        if terminating {
            continue;
        }
        let Some(last) = last else {
            if !metric.initial_delay.is_empty() {
                let (Some(started), Some(delay)) = (
                    status.started_at.as_ref(),
                    parse_seconds(&metric.initial_delay),
                ) else {
                    continue;
                };
                if time_plus(started, delay) > now {
                    continue;
                }
            }
            tasks.push(MetricTask {
                metric: metric.clone(),
                kind: TaskKind::Run,
            });
            continue;
        };
        let count = result.map_or(0, |r| r.count);
        if metric.effective_count().is_some_and(|n| count >= n) {
            continue;
        }
        let interval = if last.phase == AnalysisPhase::Error || metric.interval.is_empty() {
            SignedDuration::from_secs(DEFAULT_ERROR_RETRY_SECONDS)
        } else {
            match parse_seconds(&metric.interval) {
                Some(interval) => interval,
                None => continue,
            }
        };
        if let Some(finished) = &last.finished_at
            && now > time_plus(finished, interval)
        {
            tasks.push(MetricTask {
                metric: metric.clone(),
                kind: TaskKind::Run,
            });
        }
    }
    RunPlan::Tasks(tasks)
}

/// A finished task: the metric's name and the measurement as the provider left it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskResult {
    pub metric: String,
    /// Whether the task resumed or terminated an in-flight measurement (it replaces the last
    /// one) rather than starting a new one.
    pub replaces_last: bool,
    pub measurement: Measurement,
}

/// An event about a run, in Argo's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// The new status of a run after [`record`], and when to look at it again.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub status: AnalysisRunStatus,
    pub next_at: Option<Timestamp>,
    pub events: Vec<RunEvent>,
}

/// Fold measurement results into a run's status (Argo's `runMeasurements` bookkeeping,
/// `assessRunStatus`, measurement trimming and `calculateNextReconcileTime`). `secrets` are
/// replaced by `*****` in every message.
pub fn record(
    run: &AnalysisRun,
    results: Vec<TaskResult>,
    secrets: &[String],
    now: Timestamp,
) -> Recorded {
    let mut status = status_of(run);
    let mut events = Vec::new();
    let rules = match rules(run) {
        Ok(rules) => rules,
        Err(message) => {
            return error_status(status, message, now);
        }
    };
    let terminating_before = is_terminating(run, &status, &rules.dry_run);
    let stamp = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    for task in results {
        let mut measurement = task.measurement;
        let index = match status
            .metric_results
            .iter()
            .position(|r| r.name == task.metric)
        {
            Some(index) => index,
            None => {
                status.metric_results.push(MetricResult {
                    name: task.metric.clone(),
                    phase: AnalysisPhase::Running,
                    dry_run: rules.dry_run.get(&task.metric).copied().unwrap_or(false),
                    ..Default::default()
                });
                status.metric_results.len() - 1
            }
        };
        let entry = &mut status.metric_results[index];
        if task.replaces_last
            && terminating_before
            && measurement.phase == AnalysisPhase::Successful
        {
            measurement.message = "Metric Terminated".into();
        }
        if measurement.phase.is_completed() {
            if measurement.finished_at.is_none() {
                measurement.finished_at = Some(stamp.clone());
            }
            count(entry, measurement.phase);
        }
        redact_measurement(&mut measurement, secrets);
        if task.replaces_last && !entry.measurements.is_empty() {
            let last = entry.measurements.len() - 1;
            entry.measurements[last] = measurement;
        } else {
            entry.measurements.push(measurement);
        }
    }

    let (phase, message) = assess_run(run, &mut status, &rules, now, &mut events);
    if phase != status.phase {
        status.phase = phase;
        status.message = message;
        if phase.is_completed() {
            status.completed_at = Some(stamp);
            events.push(RunEvent {
                warning: matches!(phase, AnalysisPhase::Error | AnalysisPhase::Failed),
                reason: format!("AnalysisRun{phase}"),
                message: format!("Analysis Completed. Result: {phase}"),
            });
        }
    }
    for entry in &mut status.metric_results {
        let limit = rules
            .retention
            .get(&entry.name)
            .copied()
            .unwrap_or(DEFAULT_MEASUREMENT_HISTORY_LIMIT);
        if entry.measurements.len() > limit {
            let excess = entry.measurements.len() - limit;
            entry.measurements.drain(..excess);
        }
    }
    let next_at = if status.phase.is_completed() {
        None
    } else {
        next_reconcile_time(run, &status, now)
    };
    Recorded {
        status,
        next_at,
        events,
    }
}

fn error_status(mut status: AnalysisRunStatus, message: String, now: Timestamp) -> Recorded {
    status.phase = AnalysisPhase::Error;
    status.message = message;
    status.completed_at = Some(Time(Timestamp::from_second(now.as_second()).unwrap_or(now)));
    Recorded {
        status,
        next_at: None,
        events: vec![RunEvent {
            warning: true,
            reason: "AnalysisRunError".into(),
            message: "Analysis Completed. Result: Error".into(),
        }],
    }
}

/// The status of a run that could not start (invalid arguments or spec).
pub fn invalid(run: &AnalysisRun, message: String, now: Timestamp) -> Recorded {
    error_status(status_of(run), message, now)
}

/// Replace every secret value in every text a reporter may show of a measurement (the
/// explanation quotes the condition with its arguments substituted), whatever provider took it.
pub fn redact_measurement(measurement: &mut Measurement, secrets: &[String]) {
    if secrets.iter().all(String::is_empty) {
        return;
    }
    measurement.message = redact(&measurement.message, secrets);
    measurement.value = redact(&measurement.value, secrets);
    measurement.metadata = std::mem::take(&mut measurement.metadata)
        .into_iter()
        .map(|(k, v)| (redact(&k, secrets), redact(&v, secrets)))
        .collect();
}

/// Replace every secret value in `text` by `*****`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_string();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret.as_str(), REDACTED);
    }
    text
}

/// `assessMetricFailureInconclusiveOrError`: later checks win.
fn failure_inconclusive_or_error(
    metric: &Metric,
    result: &MetricResult,
) -> Option<(AnalysisPhase, String)> {
    let mut outcome = None;
    let failure_limit = metric.failure_limit_or_default();
    if failure_limit >= 0 && result.failed > failure_limit {
        outcome = Some((
            AnalysisPhase::Failed,
            format!(
                "failed ({}) > failureLimit ({failure_limit})",
                result.failed
            ),
        ));
    }
    let inconclusive_limit = metric.inconclusive_limit_or_default();
    if result.inconclusive > inconclusive_limit {
        outcome = Some((
            AnalysisPhase::Inconclusive,
            format!(
                "inconclusive ({}) > inconclusiveLimit ({inconclusive_limit})",
                result.inconclusive
            ),
        ));
    }
    let error_limit = metric.consecutive_error_limit_or_default();
    if result.consecutive_error > error_limit {
        outcome = Some((
            AnalysisPhase::Error,
            format!(
                "consecutiveErrors ({}) > consecutiveErrorLimit ({error_limit})",
                result.consecutive_error
            ),
        ));
    }
    outcome
}

/// Count a completed measurement in its metric's counters (errors do not count towards
/// `count`).
pub fn count(entry: &mut MetricResult, phase: AnalysisPhase) {
    match phase {
        AnalysisPhase::Successful => {
            entry.successful += 1;
            entry.count += 1;
            entry.consecutive_error = 0;
            entry.consecutive_success += 1;
        }
        AnalysisPhase::Failed => {
            entry.failed += 1;
            entry.count += 1;
            entry.consecutive_error = 0;
            entry.consecutive_success = 0;
        }
        AnalysisPhase::Inconclusive => {
            entry.inconclusive += 1;
            entry.count += 1;
            entry.consecutive_error = 0;
            entry.consecutive_success = 0;
        }
        AnalysisPhase::Error => {
            entry.error += 1;
            entry.consecutive_error += 1;
            entry.consecutive_success = 0;
        }
        AnalysisPhase::Pending | AnalysisPhase::Running => {}
    }
}

/// `assessMetricStatus`.
pub fn assess_metric(metric: &Metric, result: &MetricResult, terminating: bool) -> AnalysisPhase {
    if result.phase.is_completed() {
        return result.phase;
    }
    let Some(last) = result.measurements.last() else {
        return if terminating {
            AnalysisPhase::Successful
        } else {
            AnalysisPhase::Pending
        };
    };
    if !last.phase.is_completed() {
        return AnalysisPhase::Running;
    }
    if let Some((phase, _)) = failure_inconclusive_or_error(metric, result) {
        return phase;
    }
    let success_limit = metric.consecutive_success_limit_or_default();
    if success_limit > 0 && result.consecutive_success >= success_limit {
        return AnalysisPhase::Successful;
    }
    if let Some(count) = metric.effective_count()
        && result.count >= count
    {
        let failure_limit_applies = metric.failure_limit_or_default() >= 0;
        return match (failure_limit_applies, success_limit > 0) {
            (true, true) => AnalysisPhase::Inconclusive,
            (false, true) => AnalysisPhase::Failed,
            _ => AnalysisPhase::Successful,
        };
    }
    if terminating {
        AnalysisPhase::Successful
    } else {
        AnalysisPhase::Running
    }
}

/// `assessRunStatus`: each metric's phase, the run summary, and the worst completed phase.
fn assess_run(
    run: &AnalysisRun,
    status: &mut AnalysisRunStatus,
    rules: &RunRules,
    now: Timestamp,
    events: &mut Vec<RunEvent>,
) -> (AnalysisPhase, String) {
    if status.started_at.is_none() {
        status.started_at = Some(Time(Timestamp::from_second(now.as_second()).unwrap_or(now)));
    }
    let terminating = is_terminating(run, status, &rules.dry_run);
    let mut worst: Option<AnalysisPhase> = None;
    let mut worst_message = if run.spec.terminate {
        "Run Terminated".to_string()
    } else {
        String::new()
    };
    let mut everything_completed = true;
    let mut summary = RunSummary::default();
    let mut dry_summary = RunSummary::default();
    for metric in &run.spec.metrics {
        let dry = rules.dry_run.get(&metric.name).copied().unwrap_or(false);
        if dry {
            dry_summary.count += 1;
        } else {
            summary.count += 1;
        }
        let Some(index) = status
            .metric_results
            .iter()
            .position(|r| r.name == metric.name)
        else {
            everything_completed = false;
            continue;
        };
        let metric_phase = assess_metric(metric, &status.metric_results[index], terminating);
        let entry = &mut status.metric_results[index];
        if entry.phase != metric_phase {
            if metric_phase.is_completed() {
                events.push(RunEvent {
                    warning: matches!(metric_phase, AnalysisPhase::Error | AnalysisPhase::Failed),
                    reason: format!("Metric{metric_phase}"),
                    message: format!("Metric '{}' Completed. Result: {metric_phase}", metric.name),
                });
            }
            if let Some(last) = entry.measurements.last() {
                entry.message = last.message.clone();
            }
            entry.phase = metric_phase;
        }
        if !metric_phase.is_completed() {
            everything_completed = false;
            continue;
        }
        let reason = failure_inconclusive_or_error(metric, entry);
        let counted_phase = reason
            .as_ref()
            .map_or(AnalysisPhase::Successful, |(p, _)| *p);
        let target = if dry { &mut dry_summary } else { &mut summary };
        match counted_phase {
            AnalysisPhase::Error => target.error += 1,
            AnalysisPhase::Failed => target.failed += 1,
            AnalysisPhase::Inconclusive => target.inconclusive += 1,
            _ => target.successful += 1,
        }
        if dry {
            if worst.is_none() {
                worst = Some(AnalysisPhase::Successful);
            }
            if let Some((_, because)) = &reason {
                entry.message = format!("Metric assessed {metric_phase} due to {because}");
            }
        } else if worst.is_none_or(|w| metric_phase.severity() > w.severity()) {
            worst = Some(metric_phase);
            if let Some((_, because)) = &reason {
                worst_message = format!(
                    "Metric \"{}\" assessed {metric_phase} due to {because}",
                    metric.name
                );
                if !entry.message.is_empty() {
                    worst_message.push_str(&format!(": \"Error Message: {}\"", entry.message));
                }
            }
        }
    }
    status.run_summary = summary;
    status.dry_run_summary = Some(dry_summary);
    let worst_message = worst_message.trim().to_string();
    if terminating {
        return (worst.unwrap_or(AnalysisPhase::Successful), worst_message);
    }
    match worst {
        Some(worst) if everything_completed => (worst, worst_message),
        _ => (AnalysisPhase::Running, String::new()),
    }
}

/// `calculateNextReconcileTime`: the earliest initial-delay end, resume time or interval end.
fn next_reconcile_time(
    run: &AnalysisRun,
    status: &AnalysisRunStatus,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut earliest: Option<Timestamp> = None;
    let mut consider = |at: Timestamp| {
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    };
    for metric in &run.spec.metrics {
        let result = result(status, &metric.name);
        if result.is_some_and(|r| r.phase.is_completed()) {
            continue;
        }
        let Some(last) = result.and_then(|r| r.measurements.last()) else {
            if !metric.initial_delay.is_empty()
                && let Some(delay) = parse_seconds(&metric.initial_delay)
            {
                let start = status.started_at.clone().unwrap_or(Time(now));
                consider(time_plus(&start, delay));
            }
            continue;
        };
        let Some(finished) = &last.finished_at else {
            if let Some(resume) = &last.resume_at {
                consider(resume.0);
            }
            continue;
        };
        let count = result.map_or(0, |r| r.count);
        if metric.effective_count().is_some_and(|n| count >= n) {
            continue;
        }
        let interval = if last.phase == AnalysisPhase::Error {
            SignedDuration::from_secs(DEFAULT_ERROR_RETRY_SECONDS)
        } else if !metric.interval.is_empty() {
            match parse_seconds(&metric.interval) {
                Some(interval) => interval,
                None => continue,
            }
        } else {
            continue;
        };
        consider(time_plus(finished, interval));
    }
    // Argo compares "now is after": look a moment past the boundary.
    earliest.map(|at| at.checked_add(SignedDuration::from_millis(1)).unwrap_or(at))
}

/// The values of a run's arguments, reading secrets through `secret`; also returns the secret
/// values, for redaction.
pub fn resolve_args<E>(
    args: &[Argument],
    mut secret: impl FnMut(&str, &str) -> Result<String, E>,
) -> Result<(BTreeMap<String, String>, Vec<String>), E> {
    let mut values = BTreeMap::new();
    let mut secrets = Vec::new();
    for arg in args {
        let value = match arg
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref())
        {
            Some(reference) => {
                let value = secret(&reference.name, &reference.key)?;
                secrets.push(value.clone());
                value
            }
            None => arg.value.clone().unwrap_or_default(),
        };
        values.insert(arg.name.clone(), value);
    }
    Ok((values, secrets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_runner_api::crd::{AnalysisRunSpec, IntOrString};

    fn metric(name: &str) -> Metric {
        Metric {
            name: name.into(),
            ..Default::default()
        }
    }

    fn run(metrics: Vec<Metric>) -> AnalysisRun {
        AnalysisRun::new(
            "run",
            AnalysisRunSpec {
                metrics,
                ..Default::default()
            },
        )
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn measured(phase: AnalysisPhase, seconds: i64) -> Measurement {
        Measurement {
            phase,
            started_at: Some(Time(at(seconds))),
            finished_at: Some(Time(at(seconds))),
            value: "1".into(),
            ..Default::default()
        }
    }

    fn task(metric: &str, measurement: Measurement) -> TaskResult {
        TaskResult {
            metric: metric.into(),
            replaces_last: false,
            measurement,
        }
    }

    #[test]
    fn a_single_measurement_metric_completes_after_one_measurement() {
        let mut ar = run(vec![metric("m")]);
        assert_eq!(
            plan(&ar, at(0)),
            RunPlan::Tasks(vec![MetricTask {
                metric: metric("m"),
                kind: TaskKind::Run
            }])
        );
        let recorded = record(
            &ar,
            vec![task("m", measured(AnalysisPhase::Successful, 0))],
            &[],
            at(0),
        );
        assert_eq!(recorded.status.phase, AnalysisPhase::Successful);
        assert_eq!(recorded.status.run_summary.successful, 1);
        ar.status = Some(recorded.status);
        assert_eq!(plan(&ar, at(5)), RunPlan::Completed);
    }

    #[test]
    fn failure_limit_and_argo_message() {
        let mut m = metric("error-rate");
        m.interval = "1m".into();
        m.count = Some(IntOrString::Int(5));
        m.failure_limit = Some(IntOrString::Int(1));
        let mut ar = run(vec![m]);
        let mut now = 0;
        let mut recorded = None;
        for phase in [
            AnalysisPhase::Failed,
            AnalysisPhase::Successful,
            AnalysisPhase::Failed,
        ] {
            assert!(
                matches!(plan(&ar, at(now)), RunPlan::Tasks(t) if t.len() == 1),
                "due at {now}"
            );
            let r = record(
                &ar,
                vec![task("error-rate", measured(phase, now))],
                &[],
                at(now),
            );
            ar.status = Some(r.status.clone());
            recorded = Some(r);
            // nothing is due before the interval has passed
            assert!(!matches!(plan(&ar, at(now + 30)), RunPlan::Tasks(t) if !t.is_empty()));
            now += 61;
        }
        let recorded = recorded.unwrap();
        assert_eq!(recorded.status.phase, AnalysisPhase::Failed);
        assert_eq!(
            recorded.status.message,
            "Metric \"error-rate\" assessed Failed due to failed (2) > failureLimit (1)"
        );
        assert!(
            recorded
                .events
                .iter()
                .any(|e| e.reason == "AnalysisRunFailed")
        );
    }

    #[test]
    fn errors_do_not_count_and_retry_after_ten_seconds() {
        let mut m = metric("m");
        m.count = Some(IntOrString::Int(2));
        m.interval = "5m".into();
        let mut ar = run(vec![m]);
        let r = record(
            &ar,
            vec![task("m", measured(AnalysisPhase::Error, 0))],
            &[],
            at(0),
        );
        assert_eq!(r.status.metric_results[0].count, 0);
        assert_eq!(r.status.metric_results[0].consecutive_error, 1);
        assert_eq!(r.next_at, Some(at(10) + SignedDuration::from_millis(1)));
        ar.status = Some(r.status);
        assert!(matches!(plan(&ar, at(10)), RunPlan::Tasks(t) if t.is_empty()));
        assert!(matches!(plan(&ar, at(11)), RunPlan::Tasks(t) if t.len() == 1));
    }

    #[test]
    fn five_consecutive_errors_end_in_error() {
        let mut m = metric("m");
        m.interval = "1s".into();
        let mut ar = run(vec![m]);
        let mut last = None;
        for i in 0..5 {
            let r = record(
                &ar,
                vec![task("m", measured(AnalysisPhase::Error, i * 20))],
                &[],
                at(i * 20),
            );
            ar.status = Some(r.status.clone());
            last = Some(r);
        }
        let last = last.unwrap();
        assert_eq!(last.status.phase, AnalysisPhase::Error);
        assert!(
            last.status
                .message
                .contains("consecutiveErrors (5) > consecutiveErrorLimit (4)")
        );
    }

    #[test]
    fn inconclusive_when_both_conditions_miss() {
        let ar = run(vec![metric("m")]);
        let r = record(
            &ar,
            vec![task("m", measured(AnalysisPhase::Inconclusive, 0))],
            &[],
            at(0),
        );
        assert_eq!(r.status.phase, AnalysisPhase::Inconclusive);
        assert_eq!(
            r.status.message,
            "Metric \"m\" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)"
        );
    }

    #[test]
    fn dry_run_metrics_never_change_the_outcome() {
        let mut ar = run(vec![metric("real"), metric("dry")]);
        ar.spec.dry_run = vec![rollout_runner_api::crd::DryRun {
            metric_name: "dry".into(),
        }];
        let r = record(
            &ar,
            vec![
                task("real", measured(AnalysisPhase::Successful, 0)),
                task("dry", measured(AnalysisPhase::Failed, 0)),
            ],
            &[],
            at(0),
        );
        assert_eq!(r.status.phase, AnalysisPhase::Successful);
        assert_eq!(r.status.dry_run_summary.as_ref().unwrap().failed, 1);
        let dry = r
            .status
            .metric_results
            .iter()
            .find(|m| m.name == "dry")
            .unwrap();
        assert_eq!(
            dry.message,
            "Metric assessed Failed due to failed (1) > failureLimit (0)"
        );
        assert!(dry.dry_run);
    }

    #[test]
    fn terminating_an_unfinished_run_is_successful() {
        let mut m = metric("m");
        m.interval = "1m".into();
        let mut ar = run(vec![m]);
        let r = record(
            &ar,
            vec![task("m", measured(AnalysisPhase::Successful, 0))],
            &[],
            at(0),
        );
        assert_eq!(r.status.phase, AnalysisPhase::Running);
        ar.status = Some(r.status);
        ar.spec.terminate = true;
        assert!(matches!(plan(&ar, at(120)), RunPlan::Tasks(t) if t.is_empty()));
        let r = record(&ar, vec![], &[], at(120));
        assert_eq!(r.status.phase, AnalysisPhase::Successful);
        assert_eq!(r.status.message, "Run Terminated");
    }

    #[test]
    fn initial_delay_waits_from_the_start() {
        let mut m = metric("m");
        m.initial_delay = "30s".into();
        let mut ar = run(vec![m]);
        assert!(matches!(plan(&ar, at(0)), RunPlan::Tasks(t) if t.is_empty()));
        let r = record(&ar, vec![], &[], at(0));
        assert_eq!(r.next_at, Some(at(30) + SignedDuration::from_millis(1)));
        ar.status = Some(r.status);
        // Argo measures once `startedAt + initialDelay` is no longer after now.
        assert!(matches!(plan(&ar, at(29)), RunPlan::Tasks(t) if t.is_empty()));
        assert!(matches!(plan(&ar, at(30)), RunPlan::Tasks(t) if t.len() == 1));
    }

    #[test]
    fn consecutive_success_limit() {
        let mut m = metric("m");
        m.interval = "1s".into();
        m.count = Some(IntOrString::Int(4));
        m.consecutive_success_limit = Some(IntOrString::Int(2));
        let mut ar = run(vec![m.clone()]);
        let mut r = record(
            &ar,
            vec![task("m", measured(AnalysisPhase::Successful, 0))],
            &[],
            at(0),
        );
        ar.status = Some(r.status.clone());
        assert_eq!(r.status.phase, AnalysisPhase::Running);
        r = record(
            &ar,
            vec![task("m", measured(AnalysisPhase::Successful, 2))],
            &[],
            at(2),
        );
        assert_eq!(r.status.phase, AnalysisPhase::Successful);

        // Count reached without the streak, with failureLimit in force: Inconclusive.
        let mut ar = run(vec![m.clone()]);
        ar.spec.metrics[0].failure_limit = Some(IntOrString::Int(3));
        for (i, phase) in [
            AnalysisPhase::Successful,
            AnalysisPhase::Failed,
            AnalysisPhase::Successful,
            AnalysisPhase::Failed,
        ]
        .into_iter()
        .enumerate()
        {
            let r = record(
                &ar,
                vec![task("m", measured(phase, i as i64 * 2))],
                &[],
                at(i as i64 * 2),
            );
            ar.status = Some(r.status);
        }
        assert_eq!(ar.status.unwrap().phase, AnalysisPhase::Inconclusive);
    }

    #[test]
    fn args_are_substituted_and_escaped() {
        let mut m = metric("m");
        m.success_condition = "result[0] >= {{ args.threshold }}".into();
        m.provider.prometheus = Some(rollout_runner_api::crd::PrometheusMetric {
            query: "rate(x{service=\"{{args.service}}\"}[1m])".into(),
            ..Default::default()
        });
        let values = BTreeMap::from([
            ("threshold".to_string(), "0.95".to_string()),
            ("service".to_string(), "we\"b".to_string()),
        ]);
        let resolved = resolve_metric_args(&m, &values).unwrap();
        assert_eq!(resolved.success_condition, "result[0] >= 0.95");
        assert_eq!(
            resolved.provider.prometheus.unwrap().query,
            "rate(x{service=\"we\"b\"}[1m])"
        );
        let missing = resolve_metric_args(&m, &BTreeMap::new()).unwrap_err();
        assert_eq!(missing, "failed to resolve {{args.threshold}}");
    }

    #[test]
    fn unresolvable_args_make_the_run_error() {
        let mut m = metric("m");
        m.success_condition = "result > {{args.nope}}".into();
        let ar = run(vec![m]);
        assert_eq!(
            plan(&ar, at(0)),
            RunPlan::Invalid(
                "Unable to resolve metric arguments: failed to resolve {{args.nope}}".into()
            )
        );
    }

    #[test]
    fn secrets_are_redacted_from_messages() {
        let ar = run(vec![metric("m")]);
        let mut measurement = measured(AnalysisPhase::Error, 0);
        measurement.message = "401 for token s3cr3t".into();
        measurement.value = "[s3cr3t]".into();
        measurement
            .metadata
            .insert("explanation".into(), "result[0] (1) < s3cr3t: false".into());
        let r = record(&ar, vec![task("m", measurement)], &["s3cr3t".into()], at(0));
        let recorded = &r.status.metric_results[0].measurements[0];
        assert_eq!(recorded.message, "401 for token *****");
        assert_eq!(recorded.value, "[*****]");
        assert_eq!(
            recorded.metadata["explanation"],
            "result[0] (1) < *****: false"
        );
    }

    #[test]
    fn measurements_are_trimmed_to_the_retention_limit() {
        let mut m = metric("m");
        m.interval = "1s".into();
        let mut ar = run(vec![m]);
        for i in 0..12 {
            let r = record(
                &ar,
                vec![task("m", measured(AnalysisPhase::Successful, i * 2))],
                &[],
                at(i * 2),
            );
            ar.status = Some(r.status);
        }
        let status = ar.status.unwrap();
        assert_eq!(
            status.metric_results[0].measurements.len(),
            DEFAULT_MEASUREMENT_HISTORY_LIMIT
        );
        assert_eq!(status.metric_results[0].count, 12);
    }
}
