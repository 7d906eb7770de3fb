//! Argo's own manifests, judged by Argo and by `lint`: every `*.yaml` under `examples/` and
//! `test/e2e/` of the tracked argo-rollouts module (read from the oracle's module directory)
//! goes to Argo's validators (the oracle's `validateManifestFile`: YAML, `kubectl argo rollouts
//! lint`, `ValidateRollout`, `ValidateMetrics`, `VerifyExperimentSpec`, the controller's
//! reference checks) and to `rollout-runner lint --allow-unsupported` (rollout-runner refuses
//! what it does not act on; here only Argo's verdict counts). The verdicts must agree file by
//! file. The one difference allowed: a file Argo accepts may fail here for a reference to an
//! object that is not among the inputs (Argo's controller reports the same reference as
//! "not found" when the object is not in the cluster).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value as Json, json};

use crate::support::oracle::Oracle;

/// Argo's reasons to reject a file (empty: Argo accepts it).
fn argo_rejections(answer: &Json) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(error) = answer["yamlError"].as_str() {
        reasons.push(format!("YAML: {error}"));
    }
    if let Some(error) = answer["lint"]["error"].as_str() {
        reasons.push(format!("kubectl argo rollouts lint: {error}"));
    }
    for document in answer["documents"].as_array().into_iter().flatten() {
        let what = format!(
            "{} {}",
            document["kind"].as_str().unwrap_or("?"),
            document["name"].as_str().unwrap_or("?")
        );
        if document["checked"] == true && document["accepted"] == false {
            reasons.push(format!("{what}: {}", evidence(document)));
        }
        if document["analysisRunsAccepted"] == false {
            reasons.push(format!(
                "{what}: its analysis runs: {}",
                document["controller"]["analysisRuns"]
            ));
        }
        if let Some(error) = document["controller"]["error"].as_str()
            && !is_missing_object(error)
        {
            reasons.push(format!("{what}: controller: {error}"));
        }
    }
    reasons
}

/// What Argo said against a document it does not accept.
fn evidence(document: &Json) -> String {
    let fields = [
        "decodeError",
        "errors",
        "analysis",
        "analysisRunCheck",
        "VerifyExperimentSpec",
    ];
    fields
        .iter()
        .filter(|f| !document[**f].is_null())
        .map(|f| format!("{f} {}", document[*f]))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The controller's errors for a referenced object that is not in the cluster (standing for
/// it: the file's own Services and templates).
fn is_missing_object(error: &str) -> bool {
    let service = (error.contains(": service \"")
        || error.contains(": ingress.networking.k8s.io \""))
        && error.ends_with("\" not found");
    let template = (error.contains(": AnalysisTemplate '")
        || error.contains(": ClusterAnalysisTemplate '"))
        && error.ends_with("' not found");
    service || template
}

/// `lint --allow-unsupported --output json FILE`: its errors, leaving out references to objects
/// that are not among the inputs.
fn our_rejections(file: &Path) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(["lint", "--allow-unsupported", "--output", "json"])
        .arg(file)
        .output()
        .expect("rollout-runner runs");
    let report: Json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "lint {} printed no JSON report ({e}): {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["severity"] == "error")
        .filter(|p| {
            !(p["rule"] == "reference"
                && p["message"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("is not among the inputs")))
        })
        .map(|p| {
            format!(
                "{}:{}: {}: {}",
                p["line"],
                p["column"],
                p["rule"].as_str().unwrap_or("?"),
                p["message"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("Argo's manifest directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

#[test]
fn argo_manifests_get_argo_verdicts() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let module = oracle.ask(&json!({"op": "moduleDir"}));
    let root = PathBuf::from(module["dir"].as_str().expect("moduleDir"));
    let mut files = Vec::new();
    yaml_files(&root.join("examples"), &mut files);
    yaml_files(&root.join("test/e2e"), &mut files);
    files.sort();
    assert!(files.len() >= 100, "Argo's manifests in {}", root.display());
    let mut disagreements = Vec::new();
    let (mut argo_rejects, mut agree) = (0, 0);
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap().display().to_string();
        let argo =
            argo_rejections(&oracle.ask(&json!({"op": "validateManifestFile", "path": file})));
        let ours = our_rejections(file);
        argo_rejects += usize::from(!argo.is_empty());
        if argo.is_empty() == ours.is_empty() {
            agree += 1;
            continue;
        }
        disagreements.push(if argo.is_empty() {
            format!(
                "{relative}: Argo accepts it, lint rejects it:\n  {}",
                ours.join("\n  ")
            )
        } else {
            format!(
                "{relative}: Argo rejects it, lint accepts it. Argo:\n  {}",
                argo.join("\n  ")
            )
        });
    }
    assert!(
        disagreements.is_empty(),
        "{agree} of {} of Argo's manifests ({argo_rejects} rejected by Argo) get Argo's verdict; \
         the others:\n{}",
        files.len(),
        disagreements.join("\n")
    );
}
