//! The Argo metric families the controller exposes keep Argo's names and labels: read from
//! Argo's own definitions (`controller/metrics/prommetrics.go` in the argo-rollouts module the
//! oracle is built from), so a rename on either side fails here.

use std::collections::BTreeMap;

use regex::Regex;
use rollout_runner::controller::stats::argo::FAMILIES;

use crate::support::oracle::Oracle;

/// `name -> labels` of every metric defined in `prommetrics.go`.
fn argo_families(source: &str) -> BTreeMap<String, Vec<String>> {
    let strings = Regex::new(r#""([a-z_]+)""#).unwrap();
    let labels_of = |expression: &str| -> Vec<String> {
        let mut labels = Vec::new();
        if expression.contains("namespaceNameLabels") {
            labels.extend(["namespace".to_string(), "name".to_string()]);
        }
        labels.extend(strings.captures_iter(expression).map(|c| c[1].to_string()));
        labels
    };
    let mut families = BTreeMap::new();
    // Descriptors: NewDesc("name", "help", LABELS, nil).
    let desc =
        Regex::new(r#"(?s)prometheus\.NewDesc\(\s*"([a-z_]+)",\s*"[^"]*",\s*(.*?),\s*nil,?\s*\)"#)
            .unwrap();
    for c in desc.captures_iter(source) {
        families.insert(c[1].to_string(), labels_of(&c[2]));
    }
    // Vectors: New...Vec(Opts{[Namespace: X,] Name: "name", ...}, LABELS).
    let vec = Regex::new(
        r#"(?s)prometheus\.New(?:Counter|Histogram|Gauge)Vec\(\s*prometheus\.\w+Opts\{(.*?)\},\s*(.*?),?\s*\)\n"#,
    )
    .unwrap();
    let name = Regex::new(r#"Name:\s*"([a-z0-9_]+)""#).unwrap();
    for c in vec.captures_iter(source) {
        let opts = &c[1];
        let Some(base) = name.captures(opts) else {
            continue;
        };
        let full = if opts.contains("clientsetMetricsNamespace") {
            format!("controller_clientset_{}", &base[1])
        } else {
            base[1].to_string()
        };
        families.insert(full, labels_of(&c[2]));
    }
    families
}

#[test]
fn argo_families_keep_argos_names_and_labels() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let answer = oracle.ask(&serde_json::json!({"op": "moduleDir"}));
    let dir = answer["dir"].as_str().expect("the module directory");
    let path = format!("{dir}/controller/metrics/prommetrics.go");
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The client counter's namespace, as defined in client.go.
    let client = std::fs::read_to_string(format!("{dir}/controller/metrics/client.go")).unwrap();
    assert!(
        client.contains(r#"clientsetMetricsNamespace = "controller_clientset""#),
        "{client}"
    );
    let argo = argo_families(&source);
    assert!(argo.len() >= 20, "the parser found too little: {argo:#?}");
    for (name, labels) in FAMILIES {
        let theirs = argo
            .get(*name)
            .unwrap_or_else(|| panic!("Argo defines no `{name}`: {argo:#?}"));
        assert_eq!(theirs, labels, "labels of `{name}`");
    }
}
