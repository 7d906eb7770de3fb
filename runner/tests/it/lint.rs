//! `rollout-runner lint` against corpora of manifests with their expected output.
//!
//! Each case is a manifest file `NAME.yaml` (or `.yml`, `.json`) next to `NAME.expected`, which
//! holds what `lint` prints for it (paths relative to the case's directory) followed by the line
//! `[exit N]`. A case may add `NAME.args` with extra arguments, one per line. A new case is a new
//! pair of files. Run with `UPDATE_EXPECT=1` to rewrite the expected files after a deliberate
//! change, and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn lint(dir: &Path, args: &[String]) -> (String, i32) {
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .arg("lint")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("rollout-runner runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.is_empty(), "lint wrote to stderr: {stderr}");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        output.status.code().unwrap_or(-1),
    )
}

fn manifest_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus directory exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["yaml", "yml", "json"].contains(&e))
        })
        .collect();
    files.sort();
    files
}

/// Run every case of a corpus directory and compare with its `.expected` file.
fn check_corpus(relative: &str) {
    let dir = repo_dir(relative);
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    let files = manifest_files(&dir);
    assert!(!files.is_empty(), "no cases in {relative}");
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let mut args: Vec<String> = std::fs::read_to_string(dir.join(format!("{stem}.args")))
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        args.push(name.clone());
        let (stdout, code) = lint(&dir, &args);
        let actual = format!("{stdout}[exit {code}]\n");
        let expected_path = dir.join(format!("{stem}.expected"));
        if update {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "--- {relative}/{name}\n--- expected ({})\n{expected}\n--- actual\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ (UPDATE_EXPECT=1 rewrites the expected files):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn bad_input_corpus() {
    check_corpus("tests/invalid");
}

#[test]
fn argo_lint_testdata() {
    check_corpus("tests/fixtures/argo/lint");
}

#[test]
fn argo_examples_lint_without_errors() {
    let dir = repo_dir("tests/fixtures/argo/examples");
    let shared = ["analysis-templates.yaml", "cluster-analysis-templates.yaml"];
    let mut failures = Vec::new();
    for file in manifest_files(&dir) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        // Features rollout-runner does not act on (step plugins, ...) are errors by default; they
        // have their own cases in tests/invalid.
        let mut args = vec!["--allow-unsupported".to_string(), name.clone()];
        if !shared.contains(&name.as_str()) {
            args.extend(shared.iter().map(|s| s.to_string()));
        }
        let (stdout, code) = lint(&dir, &args);
        if code != 0 || stdout.contains(": error: ") {
            failures.push(format!("{name} (exit {code}):\n{stdout}"));
        }
    }
    assert!(
        failures.is_empty(),
        "examples with errors:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_project_examples_lint_clean_with_their_scenarios_left_out() {
    let dir = repo_dir("examples");
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let example = entry.unwrap().path();
        if !example.join("scenario.yaml").is_file() {
            continue;
        }
        let name = example.file_name().unwrap().to_string_lossy().into_owned();
        let (stdout, code) = lint(&dir, std::slice::from_ref(&name));
        if code != 0 || !stdout.starts_with("no problems") {
            failures.push(format!("{name} (exit {code}):\n{stdout}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn directories_are_walked_and_json_output_is_structured() {
    let dir = repo_dir("tests/invalid");
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(["lint", "--output", "json", "."])
        .current_dir(&dir)
        .output()
        .expect("rollout-runner runs");
    // not-utf8.yaml and malformed-yaml.yaml are unreadable.
    assert_eq!(output.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    let problems = report["problems"].as_array().expect("problems");
    let errors = problems.iter().filter(|p| p["severity"] == "error").count();
    assert_eq!(report["errors"], errors);
    assert_eq!(report["warnings"], problems.len() - errors);
    for problem in problems {
        for key in [
            "severity", "file", "line", "column", "path", "message", "hint",
        ] {
            assert!(problem.get(key).is_some(), "{key} missing in {problem}");
        }
        let file = problem["file"].as_str().unwrap();
        assert!(
            file.starts_with("./"),
            "{file} should be under the walked directory"
        );
    }
    let files: std::collections::BTreeSet<&str> =
        problems.iter().filter_map(|p| p["file"].as_str()).collect();
    assert!(files.contains("./not-utf8.yaml"), "{files:?}");
    assert!(files.contains("./json-wrong-type.json"), "{files:?}");
}

#[test]
fn missing_files_are_unreadable() {
    let (stdout, code) = lint(
        &repo_dir("tests/invalid"),
        &["no-such-file.yaml".to_string()],
    );
    assert_eq!(code, 2);
    assert!(
        stdout.starts_with(
            "no-such-file.yaml: error: cannot read `no-such-file.yaml`: no such file or directory\n"
        ),
        "{stdout}"
    );
}

/// A directory of templates is linted as `plan` and `apply` read it: `.j2` files are rendered
/// with `--values` and checked, the `values.yaml` beside them is not a manifest, and a template
/// error is exit 2 with the template's place.
#[test]
fn templates_in_a_directory_are_rendered_then_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chart = dir.path().join("chart");
    std::fs::create_dir_all(chart.join("sub")).unwrap();
    std::fs::write(chart.join("values.yaml"), "replicas: -3\nname: web\n").unwrap();
    let template = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: {{ values.name }}\n\
                    spec:\n  replicas: {{ values.replicas }}\n  selector:\n    matchLabels: {app: web}\n\
                    \x20 template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n\
                    \x20       - {name: web, image: web:1}\n  strategy:\n    canary:\n      steps: [{setWeight: 50}]\n";
    std::fs::write(chart.join("rollout.yaml.j2"), template).unwrap();
    // The same file name in a subdirectory is a second template, not a clash.
    std::fs::write(
        chart.join("sub/rollout.yaml.j2"),
        template.replace("{{ values.name }}", "{{ values.name }}-b"),
    )
    .unwrap();

    // Without values, the undefined value is named, with its template and line: exit 2.
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(["lint", "chart"])
        .current_dir(dir.path())
        .output()
        .expect("rollout-runner runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("rollout.yaml.j2:4: undefined value `values.name`"),
        "{stderr}"
    );

    // With them, the rendered Rollouts are checked (the negative replicas is found in both)
    // and values.yaml is not reported as a manifest without `kind`.
    let (stdout, code) = lint(
        dir.path(),
        &[
            "chart".to_string(),
            "--values".to_string(),
            "chart/values.yaml".to_string(),
        ],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(!stdout.contains("values.yaml"), "{stdout}");
    for file in [
        "chart/rollout.yaml.j2 (rendered)",
        "chart/sub/rollout.yaml.j2 (rendered)",
    ] {
        assert!(
            stdout.contains(&format!("{file}:6:3: error")),
            "{file} in {stdout}"
        );
    }
}

#[test]
fn notification_subscriptions_the_controller_cannot_deliver_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rollout.yaml"),
        r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  annotations:
    notifications.argoproj.io/subscribe.on-rollout-completed.slack: deploys
    notifications.argoproj.io/subscribe.on-rollout-aborted.cdevents: ""
    notifications.argoproj.io/subscribe.on-rollout-completed.pagerduty: svc
    notifications.argoproj.io/subscribe.on-my-custom-trigger.slack: deploys
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "web:1"}]}
  strategy: {canary: {steps: [{setWeight: 50}]}}
"#,
    )
    .unwrap();
    let (stdout, code) = lint(dir.path(), &["--output".into(), "json".into(), ".".into()]);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    let problems = report["problems"].as_array().expect("problems");
    let messages: Vec<(&str, &str, i64)> = problems
        .iter()
        .map(|p| {
            (
                p["severity"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or(""),
                p["line"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(code, 0, "warnings only: {messages:#?}");
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages
            .iter()
            .any(|(s, m, line)| *s == "warning" && m.contains("`pagerduty`") && *line == 8),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|(s, m, line)| *s == "warning"
            && m.contains("on-my-custom-trigger")
            && *line == 9),
        "{messages:#?}"
    );
}

/// `simulate` and `apply` refuse a manifest that uses a feature rollout-runner does not act on
/// before doing anything: exit 2, the problem with its place, field and hint. `apply` is given a
/// kubeconfig that does not exist, so reaching the cluster would fail differently.
#[test]
fn unsupported_features_stop_simulate_and_apply_before_anything() {
    let dir = repo_dir("tests/invalid");
    for command in [&["simulate"][..], &["apply", "--wait"][..], &["plan"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
            .args(command)
            .arg("unsupported-routers.yaml")
            .current_dir(&dir)
            .env("KUBECONFIG", dir.join("no-such-kubeconfig"))
            .output()
            .expect("rollout-runner runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(
            stderr.contains(
                "unsupported-routers.yaml:52:9: error: AWS App Mesh is not supported: AWS ended support for App Mesh in 2026\n  --> Rollout/appmesh: spec.strategy.canary.trafficRouting.appMesh\n  hint: "
            ),
            "{command:?}: {stderr}"
        );
        assert!(
            stderr.contains("error: the inputs have problems; nothing was done"),
            "{command:?}: {stderr}"
        );
        assert!(!stderr.contains("kubeconfig"), "{command:?}: {stderr}");
    }
    // With the opt-out, the same step plugin is a warning and the release is simulated.
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(["simulate", "--allow-unsupported", "--success-on-pause"])
        .arg("unsupported-allowed.yaml")
        .current_dir(&dir)
        .output()
        .expect("rollout-runner runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: step plugins are not supported by rollout-runner"),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
