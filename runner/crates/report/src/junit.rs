//! JUnit XML from a release record (`--junit FILE`): each canary step and each metric of each
//! AnalysisRun is a test case, so GitHub's and GitLab's test reports list what passed, what
//! failed and what never ran. The format is the de-facto one those readers accept
//! (`testsuites > testsuite > testcase` with `failure`, `error` and `skipped`).

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::record::ReleaseRecord;

/// One test case before it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub classname: String,
    pub name: String,
    pub seconds: f64,
    pub result: CaseResult,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseResult {
    Passed,
    Failed { message: String, detail: String },
    Error { message: String },
    Skipped { message: String },
}

/// The test cases of a record: its steps, then each run's metrics, then the outcome.
pub fn cases(record: &ReleaseRecord) -> Vec<Case> {
    let rollout = format!("{}/{}", record.rollout.namespace, record.rollout.name);
    let end = record.duration_seconds();
    let mut out = Vec::new();
    let decision = record.decision.as_ref();
    let decided_step = decision.and_then(|d| d.step).map(i64::from);
    let failed_verdict = decision.is_some_and(|d| d.verdict != "promoted");
    let total = record.steps.len();
    for (index, label) in record.steps.iter().enumerate() {
        let index_i64 = i64::try_from(index).unwrap_or(i64::MAX);
        let started = record
            .statuses
            .iter()
            .find(|s| s.step.is_some_and(|s| i64::from(s) >= index_i64))
            .map(|s| s.elapsed_seconds);
        let ended = record
            .statuses
            .iter()
            .find(|s| s.step.is_some_and(|s| i64::from(s) > index_i64))
            .map(|s| s.elapsed_seconds)
            .or(decision.map(|d| d.elapsed_seconds))
            .unwrap_or(end);
        let name = format!("step {}/{total}: {label}", index + 1);
        let seconds = started.map_or(0.0, |s| (ended - s).max(0.0));
        let result = match started {
            None => CaseResult::Skipped {
                message: "not reached".into(),
            },
            Some(_) if failed_verdict && decided_step == Some(index_i64) => CaseResult::Failed {
                message: decision.map(|d| d.message.clone()).unwrap_or_default(),
                detail: record.outcome_text.clone().unwrap_or_default(),
            },
            Some(_) if failed_verdict && decided_step.is_some_and(|d| d < index_i64) => {
                CaseResult::Skipped {
                    message: "not reached".into(),
                }
            }
            Some(_)
                if decision.is_none()
                    && record
                        .statuses
                        .iter()
                        .all(|s| s.step.is_none_or(|s| i64::from(s) <= index_i64)) =>
            {
                CaseResult::Error {
                    message: record
                        .outcome_text
                        .clone()
                        .unwrap_or_else(|| "did not finish".into()),
                }
            }
            Some(_) => CaseResult::Passed,
        };
        out.push(Case {
            classname: format!("{rollout}.steps"),
            name,
            seconds,
            result,
        });
    }
    // One case per run and metric, in order of first measurement.
    let mut keys: Vec<(String, String)> = Vec::new();
    for m in &record.measurements {
        let key = (m.run.clone(), m.metric.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for (run, metric) in keys {
        let taken: Vec<_> = record
            .measurements
            .iter()
            .filter(|m| m.run == run && m.metric == metric)
            .collect();
        let first = taken.first().map_or(0.0, |m| m.elapsed_seconds);
        let last = taken.last().map_or(0.0, |m| m.elapsed_seconds);
        let failed: Vec<_> = taken
            .iter()
            .filter(|m| m.phase == "Failed" || m.phase == "Inconclusive")
            .collect();
        let errors: Vec<_> = taken.iter().filter(|m| m.phase == "Error").collect();
        let run_phase = record
            .analysis_runs
            .iter()
            .find(|r| r.run == run)
            .map(|r| r.phase.as_str());
        let line = |m: &&&super::record::RecordedMeasurement| {
            format!(
                "{} {}: {} ({}){}",
                ReleaseRecord::clock(m.elapsed_seconds),
                m.phase,
                m.value,
                m.success_condition,
                if m.message.is_empty() {
                    String::new()
                } else {
                    format!(" {}", m.message)
                }
            )
        };
        let result = if !failed.is_empty() && run_phase != Some("Successful") {
            CaseResult::Failed {
                message: format!("{} of {} measurements failed", failed.len(), taken.len()),
                detail: failed.iter().map(line).collect::<Vec<_>>().join("\n"),
            }
        } else if !errors.is_empty() && run_phase == Some("Error") {
            CaseResult::Error {
                message: errors.iter().map(line).collect::<Vec<_>>().join("\n"),
            }
        } else {
            CaseResult::Passed
        };
        out.push(Case {
            classname: format!("{rollout}.analysis.{run}"),
            name: metric,
            seconds: last - first,
            result,
        });
    }
    let promoted = record
        .outcome
        .as_ref()
        .and_then(|o| o.get("outcome"))
        .and_then(|o| o.as_str())
        .is_some_and(|o| o == "promoted" || o == "paused");
    let outcome_text = record.outcome_text.clone().unwrap_or_default();
    out.push(Case {
        classname: format!("{rollout}.release"),
        name: "outcome".into(),
        seconds: end,
        result: if promoted {
            CaseResult::Passed
        } else {
            CaseResult::Failed {
                message: outcome_text.clone(),
                detail: outcome_text,
            }
        },
    });
    out
}

/// The JUnit XML of a record.
pub fn to_xml(record: &ReleaseRecord) -> String {
    let cases = cases(record);
    let count = |f: fn(&CaseResult) -> bool| cases.iter().filter(|c| f(&c.result)).count();
    let failures = count(|r| matches!(r, CaseResult::Failed { .. })).to_string();
    let errors = count(|r| matches!(r, CaseResult::Error { .. })).to_string();
    let skipped = count(|r| matches!(r, CaseResult::Skipped { .. })).to_string();
    let tests = cases.len().to_string();
    let time = format!("{:.3}", record.duration_seconds());
    let suite_name = format!(
        "release {}/{}",
        record.rollout.namespace, record.rollout.name
    );
    let timestamp = record
        .started_at
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();

    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail; the results are ignored for that reason.
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let mut suites = BytesStart::new("testsuites");
    suites.push_attribute(("name", "rollout-runner"));
    suites.push_attribute(("tests", tests.as_str()));
    suites.push_attribute(("failures", failures.as_str()));
    suites.push_attribute(("errors", errors.as_str()));
    suites.push_attribute(("skipped", skipped.as_str()));
    suites.push_attribute(("time", time.as_str()));
    let _ = writer.write_event(Event::Start(suites));
    let mut suite = BytesStart::new("testsuite");
    suite.push_attribute(("name", suite_name.as_str()));
    suite.push_attribute(("tests", tests.as_str()));
    suite.push_attribute(("failures", failures.as_str()));
    suite.push_attribute(("errors", errors.as_str()));
    suite.push_attribute(("skipped", skipped.as_str()));
    suite.push_attribute(("time", time.as_str()));
    suite.push_attribute(("timestamp", timestamp.as_str()));
    let _ = writer.write_event(Event::Start(suite));
    for case in &cases {
        let seconds = format!("{:.3}", case.seconds);
        let mut start = BytesStart::new("testcase");
        start.push_attribute(("classname", case.classname.as_str()));
        start.push_attribute(("name", case.name.as_str()));
        start.push_attribute(("time", seconds.as_str()));
        let (tag, message, detail) = match &case.result {
            CaseResult::Passed => {
                let _ = writer.write_event(Event::Empty(start));
                continue;
            }
            CaseResult::Failed { message, detail } => ("failure", message, detail.as_str()),
            CaseResult::Error { message } => ("error", message, ""),
            CaseResult::Skipped { message } => ("skipped", message, ""),
        };
        let _ = writer.write_event(Event::Start(start));
        let mut inner = BytesStart::new(tag);
        inner.push_attribute(("message", message.as_str()));
        if detail.is_empty() {
            let _ = writer.write_event(Event::Empty(inner));
        } else {
            let _ = writer.write_event(Event::Start(inner));
            let _ = writer.write_event(Event::Text(BytesText::new(detail)));
            let _ = writer.write_event(Event::End(BytesEnd::new(tag)));
        }
        let _ = writer.write_event(Event::End(BytesEnd::new("testcase")));
    }
    let _ = writer.write_event(Event::End(BytesEnd::new("testsuite")));
    let _ = writer.write_event(Event::End(BytesEnd::new("testsuites")));
    let mut text = String::from_utf8(writer.into_inner()).unwrap_or_default();
    text.push('\n');
    text
}
