//! Argo's types, field by field: every field of the tracked release's CRDs (read from the
//! oracle's argo-rollouts module) that rollout-runner's own CRDs lack must be reported by lint
//! as `unsupported` where it is written (even in an object that is otherwise incomplete), so a field that rollout-runner would drop is never
//! silently ignored. Fields rollout-runner knows but does not act on are rows of the same table
//! (`validate::support::UNSUPPORTED`), tested in `tests/invalid/unsupported-*.yaml`.

use std::collections::BTreeMap;

use rollout_runner::manifest::{self, Rule, Source};
use rollout_runner::validate::{self, Options};
use serde_json::{Value as Json, json};

use crate::support::oracle::Oracle;

/// The fields under `spec` of a CRD schema, by path (`spec.metrics[].provider.x`), with the
/// schema of each; a subtree kept as given (`x-kubernetes-preserve-unknown-fields`) is
/// marked `open` and not entered.
#[derive(Default)]
struct Fields {
    known: BTreeMap<String, Json>,
    open: Vec<String>,
}

fn fields(schema: &Json, path: &str, out: &mut Fields) {
    if schema["x-kubernetes-preserve-unknown-fields"] == true {
        out.open.push(path.to_string());
        return;
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, child) in properties {
            let at = format!("{path}.{name}");
            out.known.insert(at.clone(), child.clone());
            fields(child, &at, out);
        }
    }
    if schema["items"].is_object() {
        fields(&schema["items"], &format!("{path}[]"), out);
    }
}

fn spec_fields(crd: &Json) -> Fields {
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut out = Fields::default();
    fields(schema, "spec", &mut out);
    out
}

/// The path of the field that holds `path` (`spec.a[].b` → `spec.a[]`).
fn parent(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(p, _)| p)
}

/// A value of the field's type, so the field is "set".
fn sample(schema: &Json) -> Json {
    match schema["type"].as_str() {
        Some("boolean") => json!(true),
        Some("integer") | Some("number") => json!(1),
        Some("array") => json!([sample(&schema["items"])]),
        Some("object") => json!({}),
        _ => json!("1s"),
    }
}

/// A document of `kind` with only the field at `path` (`spec.metrics[].provider.x`) set.
fn document_with(kind: &str, path: &str, schema: &Json) -> (Json, String) {
    let mut value = sample(schema);
    let mut written = String::new();
    let keys: Vec<&str> = path.split('.').collect();
    for key in keys.iter().rev() {
        value = match key.strip_suffix("[]") {
            Some(key) => json!({ key: [value] }),
            None => json!({ *key: value }),
        };
    }
    for key in keys {
        if !written.is_empty() {
            written.push('.');
        }
        match key.strip_suffix("[]") {
            Some(key) => written.push_str(&format!("{key}[0]")),
            None => written.push_str(key),
        }
    }
    value["apiVersion"] = json!("argoproj.io/v1alpha1");
    value["kind"] = json!(kind);
    value["metadata"] = json!({"name": "argo-field"});
    (value, written)
}

#[test]
fn every_argo_field_rollout_runner_lacks_is_reported_as_unsupported() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let module = oracle.ask(&json!({"op": "moduleDir"}));
    let dir =
        std::path::Path::new(module["dir"].as_str().expect("moduleDir")).join("manifests/crds");
    let ours: BTreeMap<String, Fields> = rollout_runner::crd::all_crds()
        .into_iter()
        .map(|crd| {
            let crd = serde_json::to_value(crd).expect("CRD as JSON");
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
            (kind, spec_fields(&crd))
        })
        .collect();
    let mut silent = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("Argo's CRD directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with("-crd.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "Argo's CRDs in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("Argo's CRD");
        let loaded = manifest::load(&[Source::new(file.display().to_string(), text)]);
        for document in loaded.set.documents() {
            let kind = document.raw["spec"]["names"]["kind"].as_str().unwrap_or("");
            let Some(known) = ours.get(kind) else {
                silent.push(format!("{kind}: the whole kind"));
                continue;
            };
            let argo = spec_fields(&document.raw);
            for (path, schema) in argo.known {
                // Only the outermost field rollout-runner lacks, and none under a subtree it
                // keeps as given (pod templates: those are the API server's).
                let parent = parent(&path).trim_end_matches("[]");
                let outermost = parent == "spec" || known.known.contains_key(parent);
                let open = known.open.iter().any(|o| {
                    path == *o
                        || path.starts_with(&format!("{o}."))
                        || path.starts_with(&format!("{o}["))
                });
                if known.known.contains_key(&path) || !outermost || open {
                    continue;
                }
                let (object, written) = document_with(kind, &path, &schema);
                let text = serde_json::to_string_pretty(&object).unwrap();
                let set = manifest::load(&[Source::new("field.json", text)]).set;
                let problems = validate::validate(&set, &Options::default());
                if !problems
                    .iter()
                    .any(|p| p.rule == Rule::Unsupported && p.path == written)
                {
                    silent.push(format!("{kind}: {written}"));
                }
            }
        }
    }
    assert!(
        silent.is_empty(),
        "fields of Argo's CRDs that rollout-runner would drop without a word (add them to \
         the types or to validate::support::UNSUPPORTED):\n{}",
        silent.join("\n")
    );
}
