//! The I/O-free parts of the router plumbing: merge diffs, writes and API version choice.

use std::collections::BTreeMap;

use serde_json::json;

use super::testing::apply_merge_patch;
use super::*;

#[test]
fn merge_diffs_are_minimal_and_round_trip() {
    let cases = [
        (
            json!({"a": 1, "b": {"c": 2}}),
            json!({"a": 1, "b": {"c": 2}}),
            None,
        ),
        (json!({"a": 1}), json!({"a": 2}), Some(json!({"a": 2}))),
        (
            json!({"a": 1, "b": 2}),
            json!({"a": 1}),
            Some(json!({"b": null})),
        ),
        (
            json!({"m": {"x": "1", "y": "2"}}),
            json!({"m": {"x": "1", "y": "3", "z": "4"}}),
            Some(json!({"m": {"y": "3", "z": "4"}})),
        ),
        (
            json!({"l": [1, 2]}),
            json!({"l": [1, 2, 3]}),
            Some(json!({"l": [1, 2, 3]})),
        ),
        (
            json!({"o": {"p": 1}}),
            json!({"o": "text"}),
            Some(json!({"o": "text"})),
        ),
    ];
    for (old, new, expected) in cases {
        let diff = merge_diff(&old, &new);
        assert_eq!(diff, expected, "{old} -> {new}");
        let mut patched = old.clone();
        if let Some(diff) = &diff {
            apply_merge_patch(&mut patched, diff);
        }
        assert_eq!(patched, new, "applying the diff of {old} -> {new}");
    }
}

#[test]
fn writes_create_missing_objects_and_patch_with_the_resource_version() {
    let key = |name: &str| ObjectKey::new(Resource::Ingress, "shop", name);
    let before = Objects::from([
        (
            key("same"),
            Some(json!({"metadata": {"resourceVersion": "1"}, "spec": 1})),
        ),
        (
            key("changed"),
            Some(json!({"metadata": {"resourceVersion": "2"}, "spec": 1})),
        ),
        (key("missing"), None),
        (key("still-missing"), None),
    ]);
    let mut after = before.clone();
    after.insert(
        key("changed"),
        Some(json!({"metadata": {"resourceVersion": "2"}, "spec": 2})),
    );
    after.insert(key("missing"), Some(json!({"spec": 3})));
    assert_eq!(
        writes(&before, &after),
        [
            (
                key("changed"),
                Write::Patch(json!({"spec": 2, "metadata": {"resourceVersion": "2"}}))
            ),
            (key("missing"), Write::Create(json!({"spec": 3}))),
        ]
    );
}

#[test]
fn api_versions_follow_what_the_server_serves() {
    let served =
        |groups: &[(&str, &[&str], &str)]| -> BTreeMap<String, (Vec<String>, Option<String>)> {
            groups
                .iter()
                .map(|(group, versions, preferred)| {
                    (
                        group.to_string(),
                        (
                            versions.iter().map(|v| v.to_string()).collect(),
                            Some(preferred.to_string()),
                        ),
                    )
                })
                .collect()
        };
    let versions = resolve_versions(&served(&[
        ("networking.k8s.io", &["v1"], "v1"),
        ("networking.istio.io", &["v1", "v1beta1", "v1alpha3"], "v1"),
        // The test control plane: SMI's CRD prefers v1alpha4, which Argo never wrote.
        (
            "split.smi-spec.io",
            &["v1alpha4", "v1alpha3", "v1alpha2"],
            "v1alpha4",
        ),
        ("gateway.networking.k8s.io", &["v1", "v1beta1"], "v1"),
        ("traefik.containo.us", &["v1alpha1"], "v1alpha1"),
    ]));
    assert_eq!(
        versions,
        Versions::from([
            (Resource::Ingress, "networking.k8s.io/v1".into()),
            (Resource::VirtualService, "networking.istio.io/v1".into()),
            (Resource::DestinationRule, "networking.istio.io/v1".into()),
            (Resource::TrafficSplit, "split.smi-spec.io/v1alpha3".into()),
            (Resource::HttpRoute, "gateway.networking.k8s.io/v1".into()),
            (Resource::GrpcRoute, "gateway.networking.k8s.io/v1".into()),
            (
                Resource::TraefikService,
                "traefik.containo.us/v1alpha1".into()
            ),
        ])
    );
    let old_istio = resolve_versions(&served(&[(
        "networking.istio.io",
        &["v1alpha3"],
        "v1alpha3",
    )]));
    assert_eq!(
        old_istio[&Resource::VirtualService],
        "networking.istio.io/v1alpha3"
    );
    assert!(!old_istio.contains_key(&Resource::TrafficSplit));
}

#[test]
fn unsupported_routers_and_bad_plugin_config_are_refused() {
    let rollout = |routing: &str| -> Rollout {
        serde_saphyr::from_str(&format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: web}}\nspec:\n  strategy:\n    canary:\n      trafficRouting: {routing}\n"
        ))
        .unwrap()
    };
    let versions = testing::default_versions();
    let ambassador = rollout("{ambassador: {mappings: [web]}}");
    let error = routers(&ambassador, &versions).err().unwrap().to_string();
    assert!(
        error.contains("traffic router `ambassador` is not supported"),
        "{error}"
    );
    let plugin = rollout("{plugins: {example/other: {}}}");
    let error = routers(&plugin, &versions).err().unwrap().to_string();
    assert!(
        error.contains("traffic router `example/other` is not supported"),
        "{error}"
    );
    let bad = rollout("{plugins: {argoproj-labs/gatewayAPI: {httpRoute: [1]}}}");
    let error = routers(&bad, &versions).err().unwrap().to_string();
    assert!(
        error.starts_with("gatewayAPI: invalid configuration"),
        "{error}"
    );
    let several = rollout("{nginx: {stableIngress: web}, smi: {}}");
    let names: Vec<&str> = routers(&several, &versions)
        .unwrap()
        .iter()
        .map(|r| r.name())
        .collect();
    assert_eq!(names, ["nginx", "smi"]);
}
