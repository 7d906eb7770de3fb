//! Release records, JUnit and the HTML report, through the commands a user runs: `simulate
//! --record/--junit`, `simulate --replay`, `report --html`. The records are checked against
//! the published JSON Schema; the JUnit XML against the structure test-report readers take.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn runner(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", dir.join("no-kubeconfig"))
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .env_remove("GITHUB_EVENT_PATH")
        .env_remove("ROLLOUT_RUNNER_REPORT")
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The failing example copied into `dir/in`, its analysis transformed by `edit`.
fn failing_release(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let example = repo_dir("examples/canary-analysis-fails");
    for name in ["rollout.yaml", "service.yaml", "scenario.yaml"] {
        std::fs::copy(example.join(name), input.join(name)).unwrap();
    }
    let analysis = std::fs::read_to_string(example.join("analysis.yaml")).unwrap();
    std::fs::write(input.join("analysis.yaml"), edit(analysis)).unwrap();
    input
}

/// A JSON file the runner wrote.
pub(crate) fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading `{}`: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("`{}`: {e}", path.display()))
}

/// Validate `record` against the published schema; the errors, if any.
pub(crate) fn schema_errors(record: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_dir("docs/schema/release-record.v1.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator
        .iter_errors(record)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The JUnit XML as (classname, name, result) per test case, checking the structure GitHub's
/// and GitLab's readers take: `testsuites > testsuite > testcase`, counts matching.
pub(crate) fn junit_cases(xml: &str) -> Vec<(String, String, String)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases: Vec<(String, String, String)> = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut declared: Vec<(String, usize, usize)> = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart<'_>, key: &str| -> String {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == key.as_bytes())
            .map(|a| a.unescape_value().unwrap().into_owned())
            .unwrap_or_default()
    };
    loop {
        let event = reader.read_event().expect("well-formed XML");
        let (element, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(_) => {
                path.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let Some(e) = element else { continue };
        let tag = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
        match tag.as_str() {
            "testsuites" => assert!(path.is_empty(), "testsuites is the root"),
            "testsuite" => {
                assert_eq!(path, ["testsuites"], "a testsuite sits in testsuites");
                declared.push((
                    "suite".into(),
                    attr(&e, "tests").parse().unwrap(),
                    attr(&e, "failures").parse().unwrap(),
                ));
                assert!(!attr(&e, "name").is_empty());
            }
            "testcase" => {
                assert_eq!(path, ["testsuites", "testsuite"]);
                assert!(attr(&e, "time").parse::<f64>().is_ok(), "time in seconds");
                cases.push((attr(&e, "classname"), attr(&e, "name"), "passed".into()));
            }
            "failure" | "error" | "skipped" => {
                assert_eq!(path.last().map(String::as_str), Some("testcase"));
                if let Some(last) = cases.last_mut() {
                    last.2 = tag.clone();
                }
            }
            other => panic!("unexpected element `{other}`"),
        }
        if !empty {
            path.push(tag);
        }
    }
    for (_, tests, failures) in declared {
        assert_eq!(tests, cases.len(), "declared test count");
        assert_eq!(
            failures,
            cases.iter().filter(|c| c.2 == "failure").count(),
            "declared failure count"
        );
    }
    cases
}

#[test]
fn a_simulated_release_is_recorded_to_the_schema_with_junit() {
    let dir = tempfile::tempdir().unwrap();
    let input = failing_release(dir.path(), |a| a);
    let run = runner(
        dir.path(),
        &[
            "simulate",
            "in",
            "--record",
            "record.json",
            "--junit",
            "junit.xml",
        ],
    );
    assert_eq!(
        run.code, 1,
        "the example aborts: {}{}",
        run.stdout, run.stderr
    );
    let record = read_json(&dir.path().join("record.json"));
    let errors = schema_errors(&record);
    assert!(
        errors.is_empty(),
        "the record breaks its schema: {errors:#?}"
    );
    // The release as the example describes it: aborted at the 6th step (the pause after
    // setWeight 60), on the second failed measurement.
    let decision = &record["decision"];
    assert_eq!(decision["verdict"], "aborted");
    assert_eq!(decision["step"], 5);
    assert_eq!(decision["steps"], 8);
    let measurements = record["measurements"].as_array().unwrap();
    let failed: Vec<_> = measurements
        .iter()
        .filter(|m| m["phase"] == "Failed")
        .collect();
    assert_eq!(failed.len(), 2, "{measurements:#?}");
    assert_eq!(failed[0]["value"], "[0.92]");
    assert_eq!(
        failed[0]["successCondition"],
        "len(result) > 0 && result[0] >= 0.99"
    );
    assert_eq!(record["manifests"].as_array().unwrap().len(), 3);
    assert!(record["plan"].is_object());
    assert!(record["apiWrites"]["total"].as_u64().unwrap() > 0);
    let weights: Vec<i64> = record["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["canaryWeight"].as_i64().unwrap())
        .collect();
    assert_eq!(
        weights,
        [20, 40, 60, 0],
        "the weights the steps set, then the abort"
    );
    assert!(!record["pods"].as_array().unwrap().is_empty());
    let _ = input;

    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let cases = junit_cases(&xml);
    let result = |name: &str| {
        cases
            .iter()
            .find(|c| c.1 == name)
            .map(|c| c.2.as_str())
            .unwrap_or_else(|| panic!("no case `{name}` in {cases:#?}"))
    };
    assert_eq!(result("step 1/8: setWeight 20"), "passed");
    assert_eq!(result("step 6/8: pause 2m"), "failure");
    assert_eq!(result("step 7/8: setWeight 80"), "skipped");
    assert_eq!(result("success-rate"), "failure");
    assert_eq!(result("outcome"), "failure");
}

#[test]
fn a_secret_argument_never_reaches_the_record_the_junit_or_the_report() {
    const SECRET: &str = "0.98765";
    let dir = tempfile::tempdir().unwrap();
    let input = failing_release(dir.path(), |analysis| {
        analysis
            .replace(
                "    - name: prometheus-address\n",
                "    - name: threshold\n      valueFrom:\n        secretKeyRef: {name: creds, key: threshold}\n    - name: prometheus-address\n",
            )
            .replace("result[0] >= 0.99", "result[0] >= {{args.threshold}}")
    });
    let mut scenario = std::fs::read_to_string(input.join("scenario.yaml")).unwrap();
    scenario.push_str(&format!(
        "secrets:\n  creds:\n    threshold: \"{SECRET}\"\n"
    ));
    // The value measured is the secret itself, so the measurement channel must redact it.
    scenario = scenario.replace("after: 0.92", &format!("after: {SECRET}"));
    std::fs::write(input.join("scenario.yaml"), scenario).unwrap();
    let run = runner(
        dir.path(),
        &[
            "simulate",
            "in",
            "--record",
            "record.json",
            "--junit",
            "junit.xml",
        ],
    );
    assert_ne!(run.code, 2, "{}", run.stderr);
    let report = runner(
        dir.path(),
        &["report", "record.json", "--html", "report.html"],
    );
    assert_eq!(report.code, 0, "{}", report.stderr);
    for file in ["record.json", "junit.xml", "report.html"] {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert!(!text.contains(SECRET), "{file}: the secret leaked");
        assert!(!text.contains("98765"), "{file}: the secret leaked");
    }
    let record = std::fs::read_to_string(dir.path().join("record.json")).unwrap();
    assert!(
        record.contains("*****"),
        "the redacted value is recorded as such"
    );
}

#[test]
fn a_replay_reaches_the_recorded_decision_and_a_tightened_template_aborts_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let input = failing_release(dir.path(), |a| a);
    let recorded = runner(dir.path(), &["simulate", "in", "--record", "record.json"]);
    assert_eq!(recorded.code, 1, "{}", recorded.stderr);
    // The manifests alone (the scenario's metrics must not be used).
    std::fs::remove_file(input.join("scenario.yaml")).unwrap();

    let same = runner(
        dir.path(),
        &[
            "simulate",
            "in",
            "--replay",
            "record.json",
            "--output",
            "json",
        ],
    );
    assert_eq!(same.code, 1, "{}{}", same.stdout, same.stderr);
    let report: serde_json::Value = serde_json::from_str(&same.stdout).unwrap();
    let replay = &report["replay"];
    assert_eq!(replay["same"], true, "{replay:#}");
    assert_eq!(replay["replayed"]["step"], replay["recorded"]["step"]);
    assert_eq!(replay["replayed"]["verdict"], "aborted");

    let analysis = std::fs::read_to_string(input.join("analysis.yaml")).unwrap();
    std::fs::write(
        input.join("analysis.yaml"),
        analysis.replace("result[0] >= 0.99", "result[0] >= 0.998"),
    )
    .unwrap();
    let tightened = runner(dir.path(), &["simulate", "in", "--replay", "record.json"]);
    assert_eq!(
        tightened.code, 1,
        "{}{}",
        tightened.stdout, tightened.stderr
    );
    let line = tightened
        .stdout
        .lines()
        .find(|l| l.starts_with("replay: "))
        .unwrap_or_else(|| panic!("no replay line: {}", tightened.stdout));
    assert!(
        line.contains("the new template would have aborted at 00:01:")
            && line.contains("step 2/8")
            && line.contains("earlier (recorded: aborted at 00:06:"),
        "{line}"
    );
}

#[test]
fn the_html_report_is_self_contained_with_a_point_per_measurement() {
    let dir = tempfile::tempdir().unwrap();
    failing_release(dir.path(), |a| a);
    runner(dir.path(), &["simulate", "in", "--record", "record.json"]);
    let run = runner(
        dir.path(),
        &["report", "record.json", "--html", "report.html"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let record = read_json(&dir.path().join("record.json"));
    let measured = record["measurements"].as_array().unwrap().len();
    assert!(
        html.contains(&format!(
            "data-chart=\"metric-success-rate\" data-points=\"{measured}\""
        )),
        "the metric chart has one point per measurement"
    );
    for external in ["src=", "href=", "@import", "url(", "<script"] {
        assert!(
            !html.contains(external),
            "the report refers to `{external}`"
        );
    }
    assert!(html.contains("aborted"));
}

#[test]
fn a_file_that_is_not_a_record_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.json"), "{\"kind\": \"Rollout\"}").unwrap();
    let run = runner(dir.path(), &["report", "x.json", "--html", "r.html"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("x.json"), "{}", run.stderr);
    assert!(
        run.stderr.contains("not a release record"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    let run = runner(dir.path(), &["simulate", ".", "--replay", "missing.json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("missing.json"), "{}", run.stderr);
}

#[test]
fn a_record_is_a_data_source_for_backtests() {
    let dir = tempfile::tempdir().unwrap();
    let input = failing_release(dir.path(), |a| a);
    runner(dir.path(), &["simulate", "in", "--record", "record.json"]);
    let template = input.join("analysis.yaml");
    let run = runner(
        dir.path(),
        &[
            "analysis",
            "backtest",
            template.to_str().unwrap(),
            "--record",
            "record.json",
            "--args",
            "service-name=checkout",
            "canary-hash=x",
            "--step",
            "1m",
            "--output",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let phases: Vec<&str> = report["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["measurements"]["success-rate"]["phase"].as_str().unwrap())
        .collect();
    assert!(phases.starts_with(&["Successful"]), "{phases:?}");
    assert!(phases.ends_with(&["Failed"]), "{phases:?}");
    assert_eq!(
        report["metrics"]["success-rate"]["phase"], "Failed",
        "{report:#}"
    );
}
