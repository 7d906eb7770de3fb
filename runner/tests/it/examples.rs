//! Each example under `examples/` gives, through `simulate`, the outcome its README promises.

use std::path::PathBuf;
use std::process::Command;

fn simulate(example: &str) -> serde_json::Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join(example);
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(["simulate", dir.to_str().unwrap(), "--output", "json"])
        .output()
        .expect("rollout-runner runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{example}: {e}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(
        output.status.code(),
        report["exitCode"].as_i64().map(|c| c as i32),
        "{example}: the exit code is the one reported"
    );
    report
}

/// `(example, outcome, exit code, simulated minutes from, to)` as the READMEs say.
const PROMISES: &[(&str, &str, i64, f64, f64)] = &[
    ("canary-basic", "promoted", 0, 4.5, 5.5),
    ("canary-analysis-passes", "promoted", 0, 8.0, 10.0),
    ("canary-analysis-fails", "aborted", 1, 5.5, 7.0),
    ("blue-green-pre-promotion", "promoted", 0, 0.5, 1.5),
];

#[test]
fn examples_give_the_outcomes_their_readmes_promise() {
    for (example, outcome, code, from, to) in PROMISES {
        let report = simulate(example);
        assert_eq!(
            report["outcome"]["outcome"], *outcome,
            "{example}: {report:#}"
        );
        assert_eq!(report["exitCode"], *code, "{example}");
        let minutes = report["simulatedSeconds"].as_f64().unwrap() / 60.0;
        assert!(
            (*from..=*to).contains(&minutes),
            "{example}: {minutes:.1} simulated minutes, the README says {from}-{to}"
        );
        let readme = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../examples")
                .join(example)
                .join("README.md"),
        )
        .unwrap();
        assert!(
            readme.contains(&format!("exit code {code}")),
            "{example}: README names the exit code"
        );
    }
}

#[test]
fn the_failing_example_is_aborted_by_its_analysis_and_every_measurement_passes_in_the_other() {
    let fails = simulate("canary-analysis-fails");
    let message = fails["outcome"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            r#"Metric "success-rate" assessed Failed due to failed (2) > failureLimit (1)"#
        ),
        "{message}"
    );
    let passes = simulate("canary-analysis-passes");
    let phases: Vec<&str> = passes["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["type"] == "measurement")
        .filter_map(|entry| entry["phase"].as_str())
        .collect();
    assert!(!phases.is_empty(), "measurements are in the timeline");
    assert!(phases.iter().all(|p| *p == "Successful"), "{phases:?}");
}
