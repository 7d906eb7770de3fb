//! Unknown fields: the ones the API server would silently drop.
//!
//! A field is unknown when the schema of its parent object lists `properties` and the field is
//! not among them, outside any `x-kubernetes-preserve-unknown-fields` subtree: the rule the API
//! server uses to prune custom resources. The schemas are those of our CRDs
//! ([`rollout_runner_api::crd::all_crds`]); where a CRD keeps a subtree as given (pod templates, Job specs,
//! object metadata), the subtree is checked against k8s-openapi's schema for the Kubernetes type
//! instead, so a typo such as `containres` is caught too.

use std::sync::OnceLock;

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

use super::path::FieldPath;

/// The Kubernetes schema for a subtree our CRDs keep as given.
fn kubernetes_schema_at(kind: &str, path: &FieldPath) -> Option<&'static Value> {
    match (kind, path.keys_only().as_slice()) {
        (_, ["metadata"]) => Some(object_meta_schema()),
        ("Rollout", ["spec", "template"]) => Some(pod_template_schema()),
        ("Experiment", ["spec", "templates", "template"]) => Some(pod_template_schema()),
        (_, ["spec", "metrics", "provider", "job", "spec"]) => Some(job_spec_schema()),
        (_, ["spec", "metrics", "provider", "job", "metadata"]) => Some(object_meta_schema()),
        _ => None,
    }
}

/// A field the schema does not know, and the closest known field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownField {
    pub(crate) path: FieldPath,
    pub(crate) suggestion: Option<String>,
}

/// The openAPIV3Schema of one of our CRDs, generated the first time it is needed.
fn crd_schema(kind: &str) -> Option<&'static Value> {
    use kube_core::CustomResourceExt;
    use rollout_runner_api::crd::{
        AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout,
    };

    fn schema_of(crd: CustomResourceDefinition) -> Value {
        crd.spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Bool(true))
    }
    static SCHEMAS: [OnceLock<Value>; 5] = [const { OnceLock::new() }; 5];
    let (slot, make): (usize, fn() -> CustomResourceDefinition) = match kind {
        "Rollout" => (0, Rollout::crd),
        "AnalysisTemplate" => (1, AnalysisTemplate::crd),
        "ClusterAnalysisTemplate" => (2, ClusterAnalysisTemplate::crd),
        "AnalysisRun" => (3, AnalysisRun::crd),
        "Experiment" => (4, Experiment::crd),
        _ => return None,
    };
    Some(SCHEMAS.get(slot)?.get_or_init(|| schema_of(make())))
}

fn to_value(schema: schemars::Schema) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Bool(true))
}

/// Kubernetes schemas, each generated the first time it is needed.
fn pod_template_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| to_value(schemars::schema_for!(PodTemplateSpec)))
}

fn job_spec_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| to_value(schemars::schema_for!(JobSpec)))
}

fn object_meta_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| to_value(schemars::schema_for!(ObjectMeta)))
}

/// The unknown fields of an `argoproj.io` document of the given kind. Kinds without a CRD
/// schema have none.
pub(crate) fn unknown_fields(kind: &str, document: &Value) -> Vec<UnknownField> {
    let Some(schema) = crd_schema(kind) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    Walker {
        root: schema,
        kind,
        crd: true,
        out: &mut out,
    }
    .walk(schema, document, &FieldPath::root(), 0);
    out
}

struct Walker<'a> {
    /// The schema `$ref`s resolve against.
    root: &'a Value,
    kind: &'a str,
    /// Whether `root` is a CRD schema (as opposed to a Kubernetes type's).
    crd: bool,
    out: &'a mut Vec<UnknownField>,
}

const MAX_DEPTH: usize = 96;

impl Walker<'_> {
    fn walk(&mut self, schema: &Value, value: &Value, path: &FieldPath, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        // Where a CRD keeps a Kubernetes type as given, check it against that type's schema.
        if self.crd
            && let Some(k8s) = kubernetes_schema_at(self.kind, path)
        {
            let mut walker = Walker {
                root: k8s,
                kind: self.kind,
                crd: false,
                out: &mut *self.out,
            };
            walker.walk(k8s, value, path, depth + 1);
            return;
        }
        let root = self.root;
        let schema = resolve(root, schema, 0);
        if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
            return;
        }
        match value {
            Value::Object(map) => self.walk_object(schema, map, path, depth),
            Value::Array(items) => {
                let item_schemas: Vec<&Value> = branches(root, schema)
                    .into_iter()
                    .filter_map(|branch| branch.get("items"))
                    .collect();
                for (i, item) in items.iter().enumerate() {
                    for item_schema in &item_schemas {
                        self.walk(item_schema, item, &path.index(i), depth + 1);
                    }
                }
            }
            _ => {}
        }
    }

    fn walk_object(
        &mut self,
        schema: &Value,
        map: &Map<String, Value>,
        path: &FieldPath,
        depth: usize,
    ) {
        let root = self.root;
        let mut properties: Vec<(&str, &Value)> = Vec::new();
        for branch in branches(root, schema) {
            if let Some(Value::Object(props)) = branch.get("properties") {
                properties.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
            }
        }
        let additional: Vec<&Value> = branches(root, schema)
            .into_iter()
            .filter_map(|branch| branch.get("additionalProperties"))
            .filter(|ap| !matches!(ap, Value::Bool(false)))
            .collect();
        if properties.is_empty() && additional.is_empty() {
            // A free-form object: nothing to check against.
            return;
        }
        for (key, child) in map {
            let child_path = path.key(key.clone());
            if path.is_root() && ["apiVersion", "kind", "metadata"].contains(&key.as_str()) {
                // Served by the API machinery, not the CRD schema; metadata is checked against
                // ObjectMeta.
                self.walk(&Value::Bool(true), child, &child_path, depth + 1);
                continue;
            }
            let known: Vec<&Value> = properties
                .iter()
                .filter(|(name, _)| name == key)
                .map(|(_, s)| *s)
                .collect();
            if !known.is_empty() {
                for s in known {
                    self.walk(s, child, &child_path, depth + 1);
                }
            } else if !additional.is_empty() {
                for s in &additional {
                    self.walk(s, child, &child_path, depth + 1);
                }
            } else {
                let names: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
                self.out.push(UnknownField {
                    path: child_path,
                    suggestion: closest(key, &names),
                });
            }
        }
    }
}

/// Follow `$ref`s (`#/$defs/Name` or `#/definitions/Name`) against the root schema.
fn resolve<'s>(root: &'s Value, schema: &'s Value, depth: usize) -> &'s Value {
    const ANYTHING: &Value = &Value::Bool(true);
    if depth > 16 {
        return schema;
    }
    let Some(Value::String(reference)) = schema.get("$ref") else {
        return schema;
    };
    let target = reference
        .strip_prefix("#/$defs/")
        .and_then(|name| root.get("$defs")?.get(name))
        .or_else(|| {
            reference
                .strip_prefix("#/definitions/")
                .and_then(|name| root.get("definitions")?.get(name))
        });
    match target {
        Some(target) => resolve(root, target, depth + 1),
        None => ANYTHING,
    }
}

/// The schema and the branches of its `allOf`/`anyOf`/`oneOf`, resolved.
fn branches<'s>(root: &'s Value, schema: &'s Value) -> Vec<&'s Value> {
    let schema = resolve(root, schema, 0);
    let mut out = vec![schema];
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = schema.get(combinator) {
            for branch in list {
                let branch = resolve(root, branch, 0);
                if branch.get("type") == Some(&Value::String("null".into())) {
                    continue;
                }
                out.extend(branches(root, branch));
            }
        }
    }
    out
}

/// The known name closest to `name`, if it is close enough to be a typo.
fn closest(name: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (levenshtein(&name.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let value = (previous[j] + cost)
                .min(previous[j + 1] + 1)
                .min(current[j] + 1);
            current.push(value);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_in_the_spec_and_the_pod_template() {
        let rollout = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "x", "lables": {}},
            "spec": {
                "strategy": {"canary": {"steps": [{"setWeigth": 10}]}, "unknown-strategy": {}},
                "template": {"metadata": {"labels": {"app": "x"}},
                             "spec": {"containres": [], "containers": [{"name": "a", "imagee": "b"}]}},
            }
        });
        let found: Vec<String> = unknown_fields("Rollout", &rollout)
            .into_iter()
            .map(|u| format!("{} {:?}", u.path, u.suggestion))
            .collect();
        assert_eq!(
            found,
            [
                "metadata.lables Some(\"labels\")",
                "spec.strategy.canary.steps[0].setWeigth Some(\"setWeight\")",
                "spec.strategy.unknown-strategy None",
                "spec.template.spec.containres Some(\"containers\")",
                "spec.template.spec.containers[0].imagee Some(\"image\")",
            ]
        );
    }

    #[test]
    fn maps_and_preserved_fields_are_not_unknown() {
        let template = json!({
            "metadata": {"name": "t", "annotations": {"a.b/c": "d"}},
            "spec": {"metrics": [{"name": "m", "provider": {
                "plugin": {"my/plugin": {"anything": 1}},
                "job": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}}}
            }}]}
        });
        assert_eq!(unknown_fields("AnalysisTemplate", &template), []);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("containres", &["containers", "volumes"]).as_deref(),
            Some("containers")
        );
        assert_eq!(closest("zzz", &["containers"]), None);
    }
}
