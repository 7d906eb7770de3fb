//! What rollout-runner does not act on, in one table, so support can grow in one place.
//!
//! Every field of Argo's types that the engine, the traffic routers or the metric providers
//! would leave unread is listed in [`UNSUPPORTED`]. A manifest that sets one is an `unsupported`
//! error (a warning with `--allow-unsupported`, which goes on without acting on it), so `apply` and `simulate` refuse it before
//! touching anything instead of reporting an outcome for a release they did not carry out.
//! Supporting a feature means removing its row; a feature that depends on how the runner is set
//! up (a metric provider compiled in, a configured notifier) names that [`Capability`].
//!
//! The check walks the document as written (not the decoded types), so a field rollout-runner's
//! types do not even know is caught as well as one they decode and ignore.

use serde_json::Value;

use super::Findings;
use crate::manifest::{FieldPath, Rule, Severity};

/// Something the run provides that makes a row supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// The binary was built with the CloudWatch provider (cargo feature `provider-cloudwatch`).
    CloudWatch,
    /// A notifier is configured that acts on `notifications.argoproj.io` annotations.
    Notifications,
}

/// One step of a [`Row`]'s field pattern.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// This key.
    Key(&'static str),
    /// Every item of a list.
    Items,
    /// Every key of a map except the ones listed (the supported ones).
    KeysExcept(&'static [&'static str]),
    /// Every key of a map that starts with this text.
    KeysStartingWith(&'static str),
}

/// A field rollout-runner does not act on.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The kinds the field belongs to.
    pub kinds: &'static [&'static str],
    /// Where the field is. A field set to `null` counts as not set.
    pub path: &'static [Step],
    /// What the run may provide to make the field supported.
    pub unless: Option<Capability>,
    /// What is not supported; `{key}` is replaced by the map key a pattern step matched.
    pub message: &'static str,
    pub hint: &'static str,
}

const ROLLOUT: &[&str] = &["Rollout"];
const ANALYSIS: &[&str] = &["AnalysisTemplate", "ClusterAnalysisTemplate", "AnalysisRun"];

use Step::{Items, Key, KeysExcept, KeysStartingWith};

/// Every field rollout-runner does not act on. Keep rows in the order of Argo's types.
pub const UNSUPPORTED: &[Row] = &[
    Row {
        kinds: ROLLOUT,
        path: &[
            Key("spec"),
            Key("strategy"),
            Key("canary"),
            Key("steps"),
            Items,
            Key("plugin"),
        ],
        unless: None,
        message: "step plugins are not supported by rollout-runner",
        hint: "rollout-runner cannot load Argo's Go plugins: replace the step with a built-in one",
    },
    Row {
        kinds: ROLLOUT,
        path: &[
            Key("spec"),
            Key("strategy"),
            Key("canary"),
            Key("trafficRouting"),
            Key("ambassador"),
        ],
        unless: None,
        message: "rollout-runner does not drive Ambassador traffic routing yet",
        hint: "use a router rollout-runner drives: Istio, NGINX, ALB, SMI, Traefik or Gateway API",
    },
    Row {
        kinds: ROLLOUT,
        path: &[
            Key("spec"),
            Key("strategy"),
            Key("canary"),
            Key("trafficRouting"),
            Key("appMesh"),
        ],
        unless: None,
        message: "AWS App Mesh is not supported: AWS ended support for App Mesh in 2026",
        hint: "move the mesh to a router rollout-runner drives, such as Istio or Gateway API",
    },
    Row {
        kinds: ROLLOUT,
        path: &[
            Key("spec"),
            Key("strategy"),
            Key("canary"),
            Key("trafficRouting"),
            Key("apisix"),
        ],
        unless: None,
        message: "rollout-runner does not drive Apache APISIX traffic routing yet",
        hint: "use a router rollout-runner drives: Istio, NGINX, ALB, SMI, Traefik or Gateway API",
    },
    Row {
        kinds: ROLLOUT,
        path: &[
            Key("spec"),
            Key("strategy"),
            Key("canary"),
            Key("trafficRouting"),
            Key("plugins"),
            KeysExcept(&[rollout_runner_api::crd::GATEWAY_API_PLUGIN]),
        ],
        unless: None,
        message: "traffic router plugin `{key}` is not supported by rollout-runner",
        hint: "rollout-runner cannot load Argo's Go plugins; it drives Gateway API (`argoproj-labs/gatewayAPI`) natively",
    },
    Row {
        kinds: ROLLOUT,
        path: &[
            Key("metadata"),
            Key("annotations"),
            KeysStartingWith("notifications.argoproj.io/"),
        ],
        unless: Some(Capability::Notifications),
        message: "notification annotation `{key}`: no notifier is configured, so nobody would be notified",
        hint: "rollout-runner reports to commits, pull requests and webhooks instead (`--report`); remove the annotation",
    },
    Row {
        kinds: ANALYSIS,
        path: &[
            Key("spec"),
            Key("metrics"),
            Items,
            Key("provider"),
            Key("prometheus"),
            Key("authentication"),
            Key("sigv4"),
        ],
        unless: None,
        message: "Prometheus SigV4 authentication (Amazon Managed Prometheus) is not supported by rollout-runner",
        hint: "use `authentication.basicAuth` or `authentication.oauth2`, or a Prometheus that does not need SigV4",
    },
    Row {
        kinds: ANALYSIS,
        path: &[
            Key("spec"),
            Key("metrics"),
            Items,
            Key("provider"),
            Key("datadog"),
            Key("requestTimeout"),
        ],
        unless: None,
        message: "Datadog `requestTimeout` is not supported by rollout-runner",
        hint: "remove it: rollout-runner's Datadog requests time out after 10 seconds, Argo's default",
    },
    Row {
        kinds: ANALYSIS,
        path: &[
            Key("spec"),
            Key("metrics"),
            Items,
            Key("provider"),
            Key("wavefront"),
        ],
        unless: None,
        message: "metric provider `wavefront` is not supported by rollout-runner yet",
        hint: "use a provider rollout-runner runs: prometheus, datadog, newRelic, graphite, influxdb, web, job, kayenta",
    },
    Row {
        kinds: ANALYSIS,
        path: &[
            Key("spec"),
            Key("metrics"),
            Items,
            Key("provider"),
            Key("skywalking"),
        ],
        unless: None,
        message: "metric provider `skywalking` is not supported by rollout-runner yet",
        hint: "use a provider rollout-runner runs: prometheus, datadog, newRelic, graphite, influxdb, web, job, kayenta",
    },
    Row {
        kinds: ANALYSIS,
        path: &[
            Key("spec"),
            Key("metrics"),
            Items,
            Key("provider"),
            Key("cloudWatch"),
        ],
        unless: Some(Capability::CloudWatch),
        message: "metric provider `cloudWatch` is not built into this rollout-runner",
        hint: "use a build with the `provider-cloudwatch` feature (`cargo build --features provider-cloudwatch`)",
    },
    Row {
        kinds: ANALYSIS,
        path: &[
            Key("spec"),
            Key("metrics"),
            Items,
            Key("provider"),
            Key("kayenta"),
            Key("lookback"),
        ],
        unless: None,
        message: "Kayenta `lookback` is not supported by rollout-runner",
        hint: "remove it: rollout-runner sends Kayenta the scopes' start and end times without a lookback",
    },
    Row {
        kinds: ANALYSIS,
        path: &[
            Key("spec"),
            Key("metrics"),
            Items,
            Key("provider"),
            Key("plugin"),
            KeysExcept(&[]),
        ],
        unless: None,
        message: "metric provider plugin `{key}` is not supported by rollout-runner",
        hint: "rollout-runner cannot load Argo's Go plugins: use a built-in provider such as `prometheus` or `web`",
    },
];

/// The findings of [`UNSUPPORTED`] for one document: errors, or warnings when `as_warnings`.
pub(crate) fn check(
    kind: &str,
    raw: &Value,
    capabilities: &std::collections::BTreeSet<Capability>,
    as_warnings: bool,
) -> Findings {
    let severity = if as_warnings {
        Severity::Warning
    } else {
        Severity::Error
    };
    let mut findings = Findings::default();
    for row in UNSUPPORTED {
        if !row.kinds.contains(&kind) || row.unless.is_some_and(|c| capabilities.contains(&c)) {
            continue;
        }
        let mut found = Vec::new();
        walk(raw, row.path, FieldPath::root(), None, &mut found);
        for (path, key) in found {
            let message = row.message.replace("{key}", key.as_deref().unwrap_or(""));
            let hint = if as_warnings {
                format!(
                    "{}; allowed by --allow-unsupported: rollout-runner does not act on it",
                    row.hint
                )
            } else {
                format!(
                    "{}; or pass --allow-unsupported to go on without it",
                    row.hint
                )
            };
            findings.push(severity, Rule::Unsupported, path, message, Some(&hint));
        }
    }
    findings
}

/// Every place `value` has a non-null field at `pattern`, with the last map key a pattern step
/// matched.
fn walk(
    value: &Value,
    pattern: &[Step],
    path: FieldPath,
    key: Option<String>,
    found: &mut Vec<(FieldPath, Option<String>)>,
) {
    let Some((step, rest)) = pattern.split_first() else {
        if !value.is_null() {
            found.push((path, key));
        }
        return;
    };
    match (step, value) {
        (Step::Key(name), Value::Object(map)) => {
            if let Some(child) = map.get(*name) {
                walk(child, rest, path.key(*name), key, found);
            }
        }
        (Step::Items, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, rest, path.index(i), key.clone(), found);
            }
        }
        (Step::KeysExcept(supported), Value::Object(map)) => {
            for (name, child) in map {
                if !supported.contains(&name.as_str()) {
                    walk(
                        child,
                        rest,
                        path.key(name.clone()),
                        Some(name.clone()),
                        found,
                    );
                }
            }
        }
        (Step::KeysStartingWith(prefix), Value::Object(map)) => {
            for (name, child) in map {
                if name.starts_with(prefix) {
                    walk(
                        child,
                        rest,
                        path.key(name.clone()),
                        Some(name.clone()),
                        found,
                    );
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(kind: &str, raw: Value, capabilities: &[Capability]) -> Vec<(String, String)> {
        check(kind, &raw, &capabilities.iter().copied().collect(), false)
            .into_vec()
            .into_iter()
            .map(|f| (f.path.to_string(), f.message))
            .collect()
    }

    #[test]
    fn every_row_is_found_where_it_points() {
        let rollout = json!({
            "metadata": {"annotations": {
                "notifications.argoproj.io/subscribe.on-rollout-completed.slack": "ch",
                "other": "x"
            }},
            "spec": {"strategy": {"canary": {
                "steps": [{"setWeight": 10}, {"plugin": {"name": "p"}}],
                "trafficRouting": {
                    "ambassador": {"mappings": ["m"]},
                    "plugins": {"argoproj-labs/gatewayAPI": {}, "acme/router": {}}
                }
            }}}
        });
        assert_eq!(
            messages("Rollout", rollout.clone(), &[]),
            [
                (
                    "spec.strategy.canary.steps[1].plugin".to_string(),
                    "step plugins are not supported by rollout-runner".to_string()
                ),
                (
                    "spec.strategy.canary.trafficRouting.ambassador".to_string(),
                    "rollout-runner does not drive Ambassador traffic routing yet".to_string()
                ),
                (
                    "spec.strategy.canary.trafficRouting.plugins.acme/router".to_string(),
                    "traffic router plugin `acme/router` is not supported by rollout-runner"
                        .to_string()
                ),
                (
                    "metadata.annotations[notifications.argoproj.io/subscribe.on-rollout-completed.slack]".to_string(),
                    "notification annotation `notifications.argoproj.io/subscribe.on-rollout-completed.slack`: no notifier is configured, so nobody would be notified".to_string()
                ),
            ]
        );
        assert_eq!(
            messages("Rollout", rollout, &[Capability::Notifications]).len(),
            3,
            "a configured notifier makes the annotation supported"
        );
    }

    #[test]
    fn null_fields_and_other_kinds_are_not_findings() {
        let raw = json!({"spec": {
            "strategy": {"canary": {"steps": [{"plugin": null}]}},
            "metrics": [{"provider": {"wavefront": {}}}]
        }});
        assert!(messages("Rollout", raw.clone(), &[]).is_empty());
        assert_eq!(
            messages("AnalysisRun", raw, &[]),
            [(
                "spec.metrics[0].provider.wavefront".to_string(),
                "metric provider `wavefront` is not supported by rollout-runner yet".to_string()
            )]
        );
    }

    #[test]
    fn allowed_findings_are_warnings() {
        let raw = json!({"spec": {"strategy": {"canary": {"steps": [{"plugin": {"name": "x"}}]}}}});
        let findings = check("Rollout", &raw, &Default::default(), true).into_vec();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(
            findings[0]
                .hint
                .as_deref()
                .unwrap()
                .contains("--allow-unsupported")
        );
    }
}
