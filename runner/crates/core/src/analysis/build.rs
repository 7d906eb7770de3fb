//! Building AnalysisRuns from templates (Argo's `utils/analysis/helpers.go`): flatten nested
//! templates and cluster templates, merge their arguments with the caller's, and resolve the
//! arguments a Rollout supplies (`podTemplateHashValue`, `fieldRef`).
//!
//! Secret arguments stay references (`valueFrom.secretKeyRef`): they are read at measurement
//! time and never copied into a run's spec.

use std::collections::BTreeMap;

use rollout_runner_api::crd::{
    AnalysisRunArgument, AnalysisRunSpec, AnalysisTemplate, AnalysisTemplateSpec, Argument,
    ClusterAnalysisTemplate, DryRun, MeasurementRetention, Metric, Rollout,
};

/// Why a run could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("AnalysisTemplate '{0}' not found")]
    TemplateNotFound(String),
    #[error("ClusterAnalysisTemplate '{0}' not found")]
    ClusterTemplateNotFound(String),
    #[error("two metrics have the same name '{0}'")]
    DuplicateMetric(String),
    #[error(
        "Argument `{name}` specified multiple times with different values: '{first}', '{second}'"
    )]
    ConflictingArgument {
        name: String,
        first: String,
        second: String,
    },
    #[error("two dry-run metrics have the same name '{0}'")]
    DuplicateDryRun(String),
    #[error("two measurement retention metrics have the same name '{0}'")]
    DuplicateRetention(String),
    #[error("args.{0} was not resolved")]
    UnresolvedArgument(String),
    #[error("template nesting is too deep or cyclic at '{0}'")]
    TooDeep(String),
    #[error("{0}")]
    FieldRef(String),
}

/// A template reference: name and whether it is a ClusterAnalysisTemplate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    pub name: String,
    pub cluster_scope: bool,
}

/// The templates a run may draw from.
#[derive(Debug, Default, Clone)]
pub struct TemplateSource<'a> {
    pub templates: Option<&'a BTreeMap<String, AnalysisTemplate>>,
    pub cluster_templates: Option<&'a BTreeMap<String, ClusterAnalysisTemplate>>,
}

impl<'a> TemplateSource<'a> {
    fn get(&self, reference: &TemplateRef) -> Result<&'a AnalysisTemplateSpec, BuildError> {
        if reference.cluster_scope {
            self.cluster_templates
                .and_then(|t| t.get(&reference.name))
                .map(|t| &t.spec.template)
                .ok_or_else(|| BuildError::ClusterTemplateNotFound(reference.name.clone()))
        } else {
            self.templates
                .and_then(|t| t.get(&reference.name))
                .map(|t| &t.spec)
                .ok_or_else(|| BuildError::TemplateNotFound(reference.name.clone()))
        }
    }
}

/// Metrics, args, dry-run and retention rules of several templates merged into one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlatTemplate {
    pub metrics: Vec<Metric>,
    pub args: Vec<Argument>,
    pub dry_run: Vec<DryRun>,
    pub measurement_retention: Vec<MeasurementRetention>,
}

/// Argo's `FlattenTemplates`, following nested `spec.templates` (namespaced templates first,
/// then cluster templates, as Argo concatenates them).
pub fn flatten_templates(
    references: &[TemplateRef],
    source: &TemplateSource<'_>,
) -> Result<FlatTemplate, BuildError> {
    let mut specs = Vec::new();
    let (namespaced, cluster): (Vec<&TemplateRef>, Vec<&TemplateRef>) =
        references.iter().partition(|r| !r.cluster_scope);
    for reference in namespaced.into_iter().chain(cluster) {
        collect_specs(reference, source, 0, &mut specs)?;
    }
    let mut flat = FlatTemplate::default();
    for spec in specs {
        for metric in &spec.metrics {
            if flat.metrics.iter().any(|m| m.name == metric.name) {
                return Err(BuildError::DuplicateMetric(metric.name.clone()));
            }
            flat.metrics.push(metric.clone());
        }
        for arg in &spec.args {
            merge_template_arg(&mut flat.args, arg)?;
        }
        for rule in &spec.dry_run {
            if flat
                .dry_run
                .iter()
                .any(|d| d.metric_name == rule.metric_name)
            {
                return Err(BuildError::DuplicateDryRun(rule.metric_name.clone()));
            }
            flat.dry_run.push(rule.clone());
        }
        for rule in &spec.measurement_retention {
            if flat
                .measurement_retention
                .iter()
                .any(|r| r.metric_name == rule.metric_name)
            {
                return Err(BuildError::DuplicateRetention(rule.metric_name.clone()));
            }
            flat.measurement_retention.push(rule.clone());
        }
    }
    Ok(flat)
}

fn collect_specs<'a>(
    reference: &TemplateRef,
    source: &TemplateSource<'a>,
    depth: usize,
    out: &mut Vec<&'a AnalysisTemplateSpec>,
) -> Result<(), BuildError> {
    if depth > 10 {
        return Err(BuildError::TooDeep(reference.name.clone()));
    }
    let spec = source.get(reference)?;
    for nested in &spec.templates {
        let nested = TemplateRef {
            name: nested.template_name.clone(),
            cluster_scope: nested.cluster_scope,
        };
        collect_specs(&nested, source, depth + 1, out)?;
    }
    out.push(spec);
    Ok(())
}

/// Merge one template argument: the same name with two different values is an error; a
/// missing value is filled by a present one.
fn merge_template_arg(args: &mut Vec<Argument>, arg: &Argument) -> Result<(), BuildError> {
    match args.iter_mut().find(|a| a.name == arg.name) {
        None => args.push(arg.clone()),
        Some(existing) => match (&existing.value, &arg.value) {
            (Some(first), Some(second)) if first != second => {
                return Err(BuildError::ConflictingArgument {
                    name: arg.name.clone(),
                    first: first.clone(),
                    second: second.clone(),
                });
            }
            (None, Some(_)) => *existing = arg.clone(),
            _ => {}
        },
    }
    Ok(())
}

/// Argo's `MergeArgs`: the caller's value or valueFrom wins over the template's; every argument
/// must end with one or the other.
pub fn merge_args(
    incoming: &[Argument],
    template_args: &[Argument],
) -> Result<Vec<Argument>, BuildError> {
    let mut merged = Vec::with_capacity(template_args.len());
    for template_arg in template_args {
        let mut arg = template_arg.clone();
        if let Some(given) = incoming.iter().find(|a| a.name == arg.name) {
            if given.value.is_some() {
                arg.value = given.value.clone();
                arg.value_from = None;
            } else if given.value_from.is_some() {
                arg.value_from = given.value_from.clone();
                arg.value = None;
            }
        }
        if arg.value.is_none() && arg.value_from.is_none() {
            return Err(BuildError::UnresolvedArgument(arg.name));
        }
        merged.push(arg);
    }
    Ok(merged)
}

/// Argo's `BuildArgumentsForRolloutAnalysisRun`: a Rollout's analysis args as run arguments.
pub fn rollout_arguments(
    args: &[AnalysisRunArgument],
    stable_hash: Option<&str>,
    latest_hash: Option<&str>,
    rollout: &Rollout,
) -> Result<Vec<Argument>, BuildError> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let mut value = arg.value.clone();
        if let Some(from) = &arg.value_from {
            if let Some(which) = &from.pod_template_hash_value {
                match which.as_str() {
                    "Stable" => value = stable_hash.unwrap_or_default().to_string(),
                    "Latest" => value = latest_hash.unwrap_or_default().to_string(),
                    _ => {}
                }
            } else if let Some(field_ref) = &from.field_ref {
                value =
                    field_value(rollout, &field_ref.field_path).map_err(BuildError::FieldRef)?;
            }
        }
        out.push(Argument {
            name: arg.name.clone(),
            value: Some(value),
            value_from: None,
        });
    }
    Ok(out)
}

/// A field of the Rollout: downward-API syntax for `metadata.*`, a dotted/indexed JSON path
/// ending in a primitive otherwise (`spec.template.spec.containers[0].image`).
pub fn field_value(rollout: &Rollout, path: &str) -> Result<String, String> {
    let json = serde_json::to_value(rollout).map_err(|e| e.to_string())?;
    if let Some(rest) = path.strip_prefix("metadata.") {
        for (prefix, key) in [("labels", "labels"), ("annotations", "annotations")] {
            if let Some(selector) = rest.strip_prefix(prefix) {
                let map = json["metadata"][key]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                if selector.is_empty() {
                    let mut pairs: Vec<String> = map
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or_default()))
                        .collect();
                    pairs.sort();
                    return Ok(pairs.join("\n"));
                }
                let name = selector
                    .strip_prefix("['")
                    .and_then(|s| s.strip_suffix("']"))
                    .ok_or_else(|| format!("unsupported fieldPath: {path}"))?;
                return Ok(map
                    .get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string());
            }
        }
        return match rest {
            "name" | "namespace" | "uid" => Ok(json["metadata"][rest]
                .as_str()
                .unwrap_or_default()
                .to_string()),
            _ => Err(format!("unsupported fieldPath: {path}")),
        };
    }
    let mut current = &json;
    for segment in path.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(pos) => (&segment[..pos], &segment[pos..]),
            None => (segment, ""),
        };
        current = current
            .get(key)
            .ok_or_else(|| format!("field {path} not found"))?;
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let index: usize = index
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("invalid index in fieldPath {path}"))?;
            current = current
                .get(index)
                .ok_or_else(|| format!("field {path} not found"))?;
        }
    }
    match current {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("field {path} is not a primitive value")),
    }
}

/// Argo's `NewAnalysisRunFromTemplates`, spec part.
pub fn run_spec(
    flat: FlatTemplate,
    args: &[Argument],
    dry_run: &[DryRun],
    measurement_retention: &[MeasurementRetention],
) -> Result<AnalysisRunSpec, BuildError> {
    let args = merge_args(args, &flat.args)?;
    let mut all_dry_run = flat.dry_run;
    all_dry_run.extend(dry_run.iter().cloned());
    let mut all_retention = flat.measurement_retention;
    all_retention.extend(measurement_retention.iter().cloned());
    Ok(AnalysisRunSpec {
        metrics: flat.metrics,
        args,
        terminate: false,
        dry_run: all_dry_run,
        measurement_retention: all_retention,
        ttl_strategy: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use rollout_runner_api::crd::{
        AnalysisTemplateRef, ArgumentValueFrom, FieldRef, SecretKeyRef, ValueFrom,
    };

    fn template(name: &str, metrics: &[&str], args: &[(&str, Option<&str>)]) -> AnalysisTemplate {
        AnalysisTemplate {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: AnalysisTemplateSpec {
                metrics: metrics
                    .iter()
                    .map(|m| Metric {
                        name: (*m).into(),
                        ..Default::default()
                    })
                    .collect(),
                args: args
                    .iter()
                    .map(|(n, v)| Argument {
                        name: (*n).into(),
                        value: v.map(String::from),
                        value_from: None,
                    })
                    .collect(),
                ..Default::default()
            },
        }
    }

    fn refs(names: &[&str]) -> Vec<TemplateRef> {
        names
            .iter()
            .map(|n| TemplateRef {
                name: (*n).into(),
                cluster_scope: false,
            })
            .collect()
    }

    #[test]
    fn flattens_and_merges_arguments() {
        let templates = BTreeMap::from([
            (
                "a".to_string(),
                template("a", &["m1"], &[("svc", None), ("ns", Some("x"))]),
            ),
            (
                "b".to_string(),
                template("b", &["m2"], &[("svc", Some("web"))]),
            ),
        ]);
        let source = TemplateSource {
            templates: Some(&templates),
            cluster_templates: None,
        };
        let flat = flatten_templates(&refs(&["a", "b"]), &source).unwrap();
        assert_eq!(
            flat.metrics
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["m1", "m2"]
        );
        assert_eq!(flat.args[0].value.as_deref(), Some("web"));
        let spec = run_spec(flat, &[], &[], &[]).unwrap();
        assert_eq!(spec.args.len(), 2);
    }

    #[test]
    fn conflicting_and_missing_arguments_are_errors() {
        let templates = BTreeMap::from([
            (
                "a".to_string(),
                template("a", &["m1"], &[("svc", Some("one"))]),
            ),
            (
                "b".to_string(),
                template("b", &["m2"], &[("svc", Some("two"))]),
            ),
            ("c".to_string(), template("c", &["m3"], &[("needed", None)])),
            ("d".to_string(), template("d", &["m1"], &[])),
        ]);
        let source = TemplateSource {
            templates: Some(&templates),
            cluster_templates: None,
        };
        assert_eq!(
            flatten_templates(&refs(&["a", "b"]), &source)
                .unwrap_err()
                .to_string(),
            "Argument `svc` specified multiple times with different values: 'one', 'two'"
        );
        assert_eq!(
            flatten_templates(&refs(&["a", "d"]), &source)
                .unwrap_err()
                .to_string(),
            "two metrics have the same name 'm1'"
        );
        let flat = flatten_templates(&refs(&["c"]), &source).unwrap();
        assert_eq!(
            run_spec(flat, &[], &[], &[]).unwrap_err().to_string(),
            "args.needed was not resolved"
        );
        assert_eq!(
            flatten_templates(&refs(&["zzz"]), &source)
                .unwrap_err()
                .to_string(),
            "AnalysisTemplate 'zzz' not found"
        );
    }

    #[test]
    fn secret_arguments_stay_references() {
        let templates =
            BTreeMap::from([("a".to_string(), template("a", &["m1"], &[("token", None)]))]);
        let source = TemplateSource {
            templates: Some(&templates),
            cluster_templates: None,
        };
        let flat = flatten_templates(&refs(&["a"]), &source).unwrap();
        let incoming = [Argument {
            name: "token".into(),
            value: None,
            value_from: Some(ValueFrom {
                secret_key_ref: Some(SecretKeyRef {
                    name: "s".into(),
                    key: "k".into(),
                }),
                field_ref: None,
            }),
        }];
        let spec = run_spec(flat, &incoming, &[], &[]).unwrap();
        assert!(spec.args[0].value.is_none());
        assert!(spec.args[0].value_from.is_some());
    }

    #[test]
    fn nested_templates_are_followed() {
        let mut outer = template("outer", &["m-outer"], &[]);
        outer.spec.templates = vec![AnalysisTemplateRef {
            template_name: "inner".into(),
            cluster_scope: false,
        }];
        let templates = BTreeMap::from([
            ("outer".to_string(), outer),
            ("inner".to_string(), template("inner", &["m-inner"], &[])),
        ]);
        let source = TemplateSource {
            templates: Some(&templates),
            cluster_templates: None,
        };
        let flat = flatten_templates(&refs(&["outer"]), &source).unwrap();
        assert_eq!(
            flat.metrics
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["m-inner", "m-outer"]
        );
    }

    #[test]
    fn rollout_arguments_resolve_hashes_and_fields() {
        let mut rollout = Rollout::new("web", Default::default());
        rollout.metadata.labels = Some(BTreeMap::from([("region".into(), "eu".into())]));
        rollout.spec.replicas = Some(3);
        let args = [
            AnalysisRunArgument {
                name: "stable".into(),
                value: String::new(),
                value_from: Some(ArgumentValueFrom {
                    pod_template_hash_value: Some("Stable".into()),
                    field_ref: None,
                }),
            },
            AnalysisRunArgument {
                name: "latest".into(),
                value: String::new(),
                value_from: Some(ArgumentValueFrom {
                    pod_template_hash_value: Some("Latest".into()),
                    field_ref: None,
                }),
            },
            AnalysisRunArgument {
                name: "region".into(),
                value: String::new(),
                value_from: Some(ArgumentValueFrom {
                    pod_template_hash_value: None,
                    field_ref: Some(FieldRef {
                        field_path: "metadata.labels['region']".into(),
                    }),
                }),
            },
            AnalysisRunArgument {
                name: "replicas".into(),
                value: String::new(),
                value_from: Some(ArgumentValueFrom {
                    pod_template_hash_value: None,
                    field_ref: Some(FieldRef {
                        field_path: "spec.replicas".into(),
                    }),
                }),
            },
            AnalysisRunArgument {
                name: "plain".into(),
                value: "v".into(),
                value_from: None,
            },
        ];
        let resolved = rollout_arguments(&args, Some("abc"), Some("def"), &rollout).unwrap();
        let values: Vec<&str> = resolved
            .iter()
            .map(|a| a.value.as_deref().unwrap())
            .collect();
        assert_eq!(values, ["abc", "def", "eu", "3", "v"]);
    }
}
