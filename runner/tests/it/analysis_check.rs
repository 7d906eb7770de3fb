//! `rollout-runner analysis check`: output, JSON, exit codes and the `--result` syntax.

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::*;

fn check(args: &[&str]) -> assert_cmd::assert::Assert {
    cargo_bin_cmd!("rollout-runner")
        .arg("analysis")
        .arg("check")
        .args(args)
        .assert()
}

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn failed_prints_phase_then_reason() {
    let out = check(&["--result", "[0.91]", "--success", "result[0] >= 0.95"])
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        lines(&out),
        [
            "Failed",
            "result [0.91] did not satisfy successCondition `result[0] >= 0.95` (result[0] = 0.91); without a failureCondition that is Failed"
        ]
    );
}

#[test]
fn every_phase_exits_zero() {
    for (args, phase) in [
        (
            vec!["--result", "[0.97]", "--success", "result[0] >= 0.95"],
            "Successful",
        ),
        (
            vec!["--result", "0.5", "--failure", "result > 0.4"],
            "Failed",
        ),
        (
            vec![
                "--result",
                "NaN",
                "--success",
                "result >= 0.9",
                "--failure",
                "result < 0.9",
            ],
            "Inconclusive",
        ),
        (
            vec!["--result", "0.5", "--success", "result == 'x'"],
            "Error",
        ),
        (vec!["--result", "1"], "Successful"),
    ] {
        check(&args)
            .code(0)
            .stdout(predicate::str::starts_with(format!("{phase}\n")));
    }
}

#[test]
fn error_prints_argos_message() {
    let out = check(&["--result", "null", "--success", "result[0] >= 0.95"])
        .code(0)
        .get_output()
        .stdout
        .clone();
    let lines = lines(&out);
    assert_eq!(lines[0], "Error");
    assert_eq!(
        lines[1],
        r#"could not evaluate successCondition "result[0] >= 0.95": metric result is nil or empty: no data returned from the metric provider"#
    );
    assert!(lines[2].contains("no data"), "{}", lines[2]);
}

#[test]
fn json_output() {
    let out = check(&[
        "--result",
        r#"{"ok": true, "p95": 0.21}"#,
        "--success",
        "result.ok && result.p95 < 0.3",
        "--failure",
        "result.p95 > 1",
        "--output",
        "json",
    ])
    .success()
    .get_output()
    .stdout
    .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["phase"], "Successful");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("satisfied successCondition")
    );
    assert_eq!(json["message"], json["explanation"]);

    let out = check(&[
        "--result",
        "0.5",
        "--success",
        "reslt > 1",
        "--output",
        "json",
    ])
    .success()
    .get_output()
    .stdout
    .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["phase"], "Error");
    assert_eq!(
        json["message"],
        r#"could not evaluate successCondition "reslt > 1": unknown name reslt"#
    );
}

#[test]
fn negative_numbers_and_prometheus_words() {
    for args in [
        vec!["--result=-1.5", "--success", "result < 0"],
        vec!["--result", "-1.5", "--success", "result == -1.5"],
        vec!["--result", "NaN", "--success", "isNaN(result)"],
        vec![
            "--result",
            "+Inf",
            "--success",
            "isInf(result) && result > 0",
        ],
        vec!["--result=-Inf", "--success", "result < 0"],
        vec!["--result", "[1, NaN]", "--success", "isNaN(result[1])"],
        vec!["--result", "[]", "--success", "len(result) == 0"],
    ] {
        check(&args)
            .success()
            .stdout(predicate::str::starts_with("Successful\n"));
    }
}

#[test]
fn unusable_arguments_exit_two() {
    check(&["--result", "[1,", "--success", "true"])
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(
            predicate::str::starts_with("error: `--result [1,` is not a result")
                .and(predicate::str::contains("hint:")),
        );
    check(&["--result", "{'a': 1}"]).code(2);
    check(&["--success", "true"]).code(2);
    check(&["--result", "1", "--output", "yaml"]).code(2);
}

#[test]
fn help_has_an_example() {
    cargo_bin_cmd!("rollout-runner")
        .args(["analysis", "check", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("rollout-runner analysis check --result '[0.91]'")
                .and(predicate::str::contains("Inconclusive")),
        );
}

/// Splits a shell command line: bare words, single-quoted words and `\` line continuations.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The examples in docs/conditions.md run and print what the page says (`...` ends a
/// comparison early).
#[test]
fn documented_examples_are_true() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/conditions.md"),
    )
    .unwrap();
    let mut examples: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_console = false;
    let mut continuing = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_console = line == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            examples.push((cmd.to_string(), Vec::new()));
            continuing = cmd.ends_with('\\');
        } else if continuing {
            let last = examples.last_mut().unwrap();
            last.0.push('\n');
            last.0.push_str(line);
            continuing = line.ends_with('\\');
        } else if let Some(last) = examples.last_mut() {
            last.1.push(line.to_string());
        }
    }
    assert!(examples.len() >= 4, "found {} examples", examples.len());
    for (command, mut expected) in examples {
        while expected.last().is_some_and(String::is_empty) {
            expected.pop();
        }
        let words = shell_words(&command);
        assert_eq!(words[0], "rollout-runner");
        let out = cargo_bin_cmd!("rollout-runner")
            .args(&words[1..])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let actual = lines(&out);
        for (i, want) in expected.iter().enumerate() {
            if want == "..." {
                break;
            }
            assert_eq!(actual.get(i), Some(want), "line {i} of `{command}`");
        }
    }
}

/// `analysis get -f`: every metric's counters, a sparkline of its values and, per measurement,
/// why it was judged so.
#[test]
fn get_shows_measurements_sparklines_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.yaml");
    std::fs::write(
        &run,
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisRun
metadata:
  name: web-6d4f9-3
spec:
  metrics: []
status:
  phase: Failed
  message: 'Metric "success-rate" assessed Failed due to failed (2) > failureLimit (1)'
  metricResults:
  - name: success-rate
    phase: Failed
    count: 3
    successful: 1
    failed: 2
    measurements:
    - phase: Successful
      value: "[0.99]"
      finishedAt: "2026-01-01T00:00:00Z"
      metadata:
        explanation: result [0.99] satisfied successCondition result[0] >= 0.95
    - phase: Failed
      value: "[0.91]"
      finishedAt: "2026-01-01T00:01:00Z"
      metadata:
        explanation: result [0.91] did not satisfy successCondition result[0] >= 0.95
    - phase: Failed
      value: "[0.5]"
      finishedAt: "2026-01-01T00:02:00Z"
  - name: judge
    phase: Inconclusive
    count: 1
    inconclusive: 1
    measurements:
    - phase: Inconclusive
      value: "50"
      message: "judge: score 50 is below pass 95 but >= marginal 50"
      metadata:
        explanation: "judge: Marginal (score 50 is below pass 95 but >= marginal 50)"
        judge.latency: "High: canary median 155 vs baseline 105"
"#,
    )
    .unwrap();
    let out = cargo_bin_cmd!("rollout-runner")
        .args(["analysis", "get", "-f"])
        .arg(&run)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    for expected in [
        "AnalysisRun web-6d4f9-3: Failed",
        "Metric success-rate: Failed (count 3, successful 1, failed 2",
        "█▇▁  min 0.5 max 0.99",
        "result [0.91] did not satisfy successCondition result[0] >= 0.95",
        "Metric judge: Inconclusive",
        "latency: High: canary median 155 vs baseline 105",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
