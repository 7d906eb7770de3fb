//! `rollout-runner install` and the Helm chart under `templates/helm/rollout-runner`: the
//! manifests are complete, the RBAC is scoped as asked, and the chart grants exactly what
//! `install` grants and uses only values it documents. (Helm itself is not needed: the
//! chart's rules are a plain YAML block, its values a plain YAML file.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn install(args: &[&str]) -> Vec<Value> {
    let output = Command::cargo_bin("rollout-runner")
        .unwrap()
        .arg("install")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn find<'a>(objects: &'a [Value], kind: &str, namespace: Option<&str>) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .filter(|o| namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns))
        .collect()
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/helm/rollout-runner")
}

#[test]
fn install_prints_crds_rbac_and_a_deployment_for_the_whole_cluster() {
    let objects = install(&["--namespace", "delivery", "--image", "example.com/rr:1"]);
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    let expected: BTreeSet<&str> = [
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds, expected);
    assert_eq!(find(&objects, "CustomResourceDefinition", None).len(), 5);
    let role = find(&objects, "ClusterRole", None)[0];
    let rules = role["rules"].as_array().unwrap();
    let grants = |resource: &str, verb: &str| {
        rules.iter().any(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == resource)
                && r["verbs"].as_array().unwrap().iter().any(|x| x == verb)
        })
    };
    assert!(grants("rollouts", "patch") && grants("rollouts/status", "patch"));
    assert!(grants("leases", "update") && grants("replicasets", "create"));
    // Least privilege: nothing is granted everything, Secrets are read one by one.
    assert!(!grants("*", "get") && !grants("rollouts", "*"));
    assert!(grants("secrets", "get") && !grants("secrets", "list"));
    let deployment = find(&objects, "Deployment", Some("delivery"))[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "example.com/rr:1");
    assert_eq!(container["args"], serde_json::json!(["controller"]));
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
}

#[test]
fn install_with_watched_namespaces_grants_roles_there_only() {
    let objects = install(&[
        "-n",
        "delivery",
        "--watch-namespace",
        "shop",
        "--watch-namespace",
        "blog",
        "--instance-id",
        "ci",
        "--skip-crds",
    ]);
    assert!(find(&objects, "CustomResourceDefinition", None).is_empty());
    let cluster_role = find(&objects, "ClusterRole", None)[0];
    assert_eq!(
        cluster_role["rules"],
        serde_json::json!([{"apiGroups": ["argoproj.io"], "resources": ["clusteranalysistemplates"],
                            "verbs": ["get", "list", "watch"]}]),
        "only cluster-scoped reads cluster-wide"
    );
    for ns in ["shop", "blog"] {
        assert_eq!(find(&objects, "Role", Some(ns)).len(), 1, "{ns}");
        assert_eq!(find(&objects, "RoleBinding", Some(ns)).len(), 1, "{ns}");
    }
    let election = find(&objects, "Role", Some("delivery"));
    assert_eq!(
        election.len(),
        1,
        "leader election in the controller's namespace"
    );
    let deployment = find(&objects, "Deployment", Some("delivery"))[0];
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["args"],
        serde_json::json!([
            "controller",
            "--namespace",
            "shop",
            "--namespace",
            "blog",
            "--instance-id",
            "ci"
        ])
    );
}

/// Whether `rules` grant `verb` on `resource` in `group`.
fn grants(rules: &Value, group: &str, resource: &str, verb: &str) -> bool {
    let has =
        |list: &Value, item: &str| list.as_array().is_some_and(|l| l.iter().any(|x| x == item));
    rules.as_array().is_some_and(|rules| {
        rules.iter().any(|r| {
            has(&r["apiGroups"], group) && has(&r["resources"], resource) && has(&r["verbs"], verb)
        })
    })
}

#[test]
fn install_grants_every_object_the_traffic_routers_write() {
    let cluster_wide = install(&["--skip-crds"]);
    let scoped = install(&["--watch-namespace", "shop", "--skip-crds"]);
    let rule_sets = [
        &find(&cluster_wide, "ClusterRole", None)[0]["rules"],
        &find(&scoped, "Role", Some("shop"))[0]["rules"],
    ];
    for (groups, resource, verbs) in rollout_runner::traffic::rbac_resources() {
        for group in groups {
            for &verb in verbs {
                for rules in rule_sets {
                    assert!(
                        grants(rules, group, resource, verb),
                        "{verb} {resource}.{group} is not granted:\n{rules:#}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_helm_chart_grants_what_install_grants() {
    let helpers = std::fs::read_to_string(chart().join("templates/_helpers.tpl")).unwrap();
    let start = helpers
        .find(r#"{{- define "rollout-runner.rules" }}"#)
        .expect("the rules block");
    let block = &helpers[start..];
    let block = &block[block.find('\n').unwrap()..block.find("{{- end }}").unwrap()];
    let chart_rules: Value = serde_saphyr::from_str(block).unwrap();
    let objects = install(&["--watch-namespace", "shop", "--skip-crds"]);
    let role = find(&objects, "Role", Some("shop"))[0];
    assert_eq!(chart_rules, role["rules"]);
}

/// Paths of a YAML mapping's leaves and inner nodes, dotted (`image.tag`).
fn value_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            out.insert(path.clone());
            value_paths(child, &path, out);
        }
    }
}

#[test]
fn the_helm_chart_uses_only_documented_values() {
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap())
            .unwrap();
    let mut known = BTreeSet::new();
    value_paths(&values, "", &mut known);
    for key in [
        "image.repository",
        "image.tag",
        "replicas",
        "watchNamespaces",
        "resources",
    ] {
        assert!(known.contains(key), "values.yaml documents {key}");
    }
    let reference = regex::Regex::new(r"\.Values\.([A-Za-z0-9_.]+)").unwrap();
    let mut used = 0;
    for entry in std::fs::read_dir(chart().join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for capture in reference.captures_iter(&text) {
            used += 1;
            let key = capture[1].trim_end_matches('.');
            assert!(
                known.contains(key),
                "{} uses undocumented value {key}",
                path.display()
            );
        }
        // Every Go-template action is closed on its line (a cheap guard against typos; YAML
        // flow mappings may end in `}}` on lines without actions).
        for (number, line) in text.lines().enumerate().filter(|(_, l)| l.contains("{{")) {
            assert_eq!(
                line.matches("{{").count(),
                line.matches("}}").count(),
                "{}:{}: unbalanced template action",
                path.display(),
                number + 1
            );
        }
    }
    assert!(used > 5);
    assert!(
        chart()
            .join("templates/crd-rollouts.argoproj.io.yaml")
            .exists(),
        "the chart ships the CRDs"
    );
}
