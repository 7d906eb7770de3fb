//! The metric families of Argo Rollouts' controller that dashboards and the Datadog
//! integration read, computed as Argo computes them (argo-rollouts `controller/metrics/`:
//! `prommetrics.go` for names and labels, `rollouts.go`, `analysis.go`, `experiments.go` for
//! values, `client.go` and argoproj/pkg `kubeclientmetrics` for the request counter).
//!
//! Hand-written because the values are Argo's rules (its "phase" of a Rollout is read from the
//! Progressing condition's reason, not from `status.phase`), not something a library knows.
//! `FAMILIES` is the list a test compares with Argo's source.

use std::sync::LazyLock;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use regex::Regex;

use crate::crd::{AnalysisPhase, AnalysisRun, Experiment, Rollout};

/// The request counter, registered without the `_total` suffix the encoder appends.
pub const K8S_REQUEST_COUNTER: &str = "controller_clientset_k8s_request";
pub const K8S_REQUEST_HELP: &str =
    "Number of kubernetes requests executed during application reconciliation.";

/// Every Argo family exposed here: name as scraped, and its labels in Argo's order.
pub const FAMILIES: &[(&str, &[&str])] = &[
    (
        "rollout_info",
        &["namespace", "name", "strategy", "traffic_router", "phase"],
    ),
    ("rollout_info_replicas_available", &["namespace", "name"]),
    ("rollout_info_replicas_unavailable", &["namespace", "name"]),
    ("rollout_info_replicas_desired", &["namespace", "name"]),
    ("rollout_info_replicas_updated", &["namespace", "name"]),
    ("analysis_run_info", &["namespace", "name", "phase"]),
    (
        "analysis_run_metric_phase",
        &["namespace", "name", "metric", "type", "dry_run", "phase"],
    ),
    ("experiment_info", &["namespace", "name", "phase"]),
    (
        "controller_clientset_k8s_request_total",
        &["kind", "namespace", "name", "verb", "status_code"],
    ),
];

/// The phases `analysis_run_metric_phase` has a series for, in Argo's order.
const METRIC_PHASES: [AnalysisPhase; 6] = [
    AnalysisPhase::Pending,
    AnalysisPhase::Error,
    AnalysisPhase::Failed,
    AnalysisPhase::Successful,
    AnalysisPhase::Running,
    AnalysisPhase::Inconclusive,
];

struct Gauges<'e, 'a> {
    encoder: &'e mut DescriptorEncoder<'a>,
}

impl Gauges<'_, '_> {
    /// One gauge family with its series: `(label values, value)`.
    fn family(
        &mut self,
        name: &str,
        help: &str,
        series: &[(Vec<String>, f64)],
    ) -> Result<(), std::fmt::Error> {
        if series.is_empty() {
            return Ok(());
        }
        let keys = FAMILIES
            .iter()
            .find(|(family, _)| *family == name)
            .map(|(_, labels)| *labels)
            .unwrap_or(&[]);
        let mut family = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (values, value) in series {
            let labels: Vec<(&str, &str)> = keys
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            ConstGauge::new(*value).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Argo's phase of a Rollout for `rollout_info` (`calculatePhase`): from the Progressing
/// condition's reason, InvalidSpec overriding everything.
pub fn rollout_phase(rollout: &Rollout) -> &'static str {
    let conditions = rollout
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    if conditions.iter().any(|c| c.type_ == "InvalidSpec") {
        return "InvalidSpec";
    }
    let reason = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .map(|c| c.reason.as_str());
    match reason {
        Some("NewReplicaSetAvailable") => "Completed",
        Some("RolloutPaused") => "Paused",
        Some("ReplicaSetCreateError") => "Error",
        Some("ProgressDeadlineExceeded") => "Timeout",
        Some("RolloutAborted") => "Abort",
        _ => "Progressing",
    }
}

/// Argo's `strategy` and `traffic_router` labels (`getStrategyAndTrafficRouter`): only the
/// routers Argo names there; the others (Traefik, Gateway API, ...) leave it empty, as in Argo.
pub fn strategy_and_router(rollout: &Rollout) -> (&'static str, &'static str) {
    let strategy = &rollout.spec.strategy;
    if strategy.blue_green.is_some() {
        return ("blueGreen", "");
    }
    let Some(canary) = &strategy.canary else {
        return ("none", "");
    };
    let mut router = "";
    if let Some(routing) = &canary.traffic_routing {
        // Argo checks in this order and the last one set wins.
        for (set, name) in [
            (routing.alb.is_some(), "ALB"),
            (routing.ambassador.is_some(), "Ambassador"),
            (routing.istio.is_some(), "Istio"),
            (routing.nginx.is_some(), "Nginx"),
            (routing.smi.is_some(), "SMI"),
            (routing.app_mesh.is_some(), "AppMesh"),
        ] {
            if set {
                router = name;
            }
        }
    }
    ("canary", router)
}

/// Argo's provider type of a metric (`metricproviders.Type`).
fn metric_type(metric: &crate::crd::Metric) -> &'static str {
    let p = &metric.provider;
    if p.prometheus.is_some() {
        "Prometheus"
    } else if p.job.is_some() {
        "Job"
    } else if p.kayenta.is_some() {
        "Kayenta"
    } else if p.web.is_some() {
        "Web"
    } else if p.datadog.is_some() {
        "Datadog"
    } else if p.wavefront.is_some() {
        "Wavefront"
    } else if p.new_relic.is_some() {
        "NewRelic"
    } else if p.cloud_watch.is_some() {
        "CloudWatch"
    } else if p.graphite.is_some() {
        "Graphite"
    } else if p.influxdb.is_some() {
        "Influxdb"
    } else if p.skywalking.is_some() {
        "skywalking"
    } else if !p.plugin.is_empty() {
        "RPCPlugin"
    } else if p.judge.is_some() {
        // rollout-runner's own provider; Argo has no name for it.
        "Judge"
    } else {
        "Unknown Provider"
    }
}

fn key(object: &impl kube::ResourceExt) -> Vec<String> {
    vec![object.namespace().unwrap_or_default(), object.name_any()]
}

fn with(mut labels: Vec<String>, more: &[&str]) -> Vec<String> {
    labels.extend(more.iter().map(|s| s.to_string()));
    labels
}

/// Encode the object gauges of these Rollouts, AnalysisRuns and Experiments.
pub fn encode(
    encoder: &mut DescriptorEncoder,
    rollouts: &[std::sync::Arc<Rollout>],
    runs: &[std::sync::Arc<AnalysisRun>],
    experiments: &[std::sync::Arc<Experiment>],
) -> Result<(), std::fmt::Error> {
    let mut gauges = Gauges { encoder };
    let mut info = Vec::new();
    let (mut available, mut unavailable, mut desired, mut updated) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rollout in rollouts {
        let (strategy, router) = strategy_and_router(rollout);
        let labels = key(rollout.as_ref());
        info.push((
            with(labels.clone(), &[strategy, router, rollout_phase(rollout)]),
            1.0,
        ));
        let status = rollout.status.clone().unwrap_or_default();
        available.push((labels.clone(), f64::from(status.available_replicas)));
        unavailable.push((
            labels.clone(),
            f64::from(status.replicas - status.available_replicas),
        ));
        desired.push((
            labels.clone(),
            f64::from(rollout.spec.replicas.unwrap_or(1)),
        ));
        updated.push((labels, f64::from(status.updated_replicas)));
    }
    gauges.family("rollout_info", "Information about rollout.", &info)?;
    gauges.family(
        "rollout_info_replicas_available",
        "The number of available replicas per rollout.",
        &available,
    )?;
    gauges.family(
        "rollout_info_replicas_unavailable",
        "The number of unavailable replicas per rollout.",
        &unavailable,
    )?;
    gauges.family(
        "rollout_info_replicas_desired",
        "The number of desired replicas per rollout.",
        &desired,
    )?;
    gauges.family(
        "rollout_info_replicas_updated",
        "The number of updated replicas per rollout.",
        &updated,
    )?;

    let mut run_info = Vec::new();
    let mut metric_phase = Vec::new();
    for run in runs {
        let labels = key(run.as_ref());
        let phase = run.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
        run_info.push((with(labels.clone(), &[phase]), 1.0));
        let dry_run: Vec<Regex> = run
            .spec
            .dry_run
            .iter()
            .filter_map(|d| Regex::new(&d.metric_name).ok())
            .collect();
        for metric in &run.spec.metrics {
            let kind = metric_type(metric);
            let result = run
                .status
                .as_ref()
                .and_then(|s| s.metric_results.iter().find(|r| r.name == metric.name))
                .map(|r| r.phase);
            // Argo's `regexp.MatchString`: unanchored.
            let dry = dry_run.iter().any(|r| r.is_match(&metric.name)).to_string();
            for phase in METRIC_PHASES {
                let on = result.unwrap_or(AnalysisPhase::Pending) == phase;
                metric_phase.push((
                    with(labels.clone(), &[&metric.name, kind, &dry, phase.as_str()]),
                    if on { 1.0 } else { 0.0 },
                ));
            }
        }
    }
    gauges.family(
        "analysis_run_info",
        "Information about analysis run.",
        &run_info,
    )?;
    gauges.family(
        "analysis_run_metric_phase",
        "Information on the duration of a specific metric in the Analysis Run",
        &metric_phase,
    )?;

    let experiment_info: Vec<_> = experiments
        .iter()
        .map(|experiment| {
            let phase = experiment
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .map_or("", AnalysisPhase::as_str);
            (with(key(experiment.as_ref()), &[phase]), 1.0)
        })
        .collect();
    gauges.family(
        "experiment_info",
        "Information about Experiment.",
        &experiment_info,
    )
}

/// What `controller_clientset_k8s_request_total` says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub verb: &'static str,
}

/// `findPathRegex` of argoproj/pkg `kubeclientmetrics`: the path segments after the version.
static PROCESS_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"/v\d\w*?(/[a-zA-Z0-9-]*)(/[a-zA-Z0-9-]*)?(/[a-zA-Z0-9-]*)?(/[a-zA-Z0-9-]*)?")
        .expect("a valid regex")
});
static NAMESPACED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"/.*/namespaces/[a-z0-9-]+/[a-z0-9-]+(/[a-z0-9-]+)?").expect("a valid regex")
});

/// The labels Argo gives a request (`kubeclientmetrics.parseRequest` and
/// `IncKubernetesRequest`), from its method and path. One difference: for a create, Argo reads
/// the object's name from the request body; here the body is not read, so `name` is empty.
pub fn request_info(method: &str, path_and_query: &str) -> RequestInfo {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let param = |key: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .collect::<Vec<_>>()
    };
    let verb = match method {
        "POST" => "Create",
        "DELETE" => "Delete",
        "PATCH" => "Patch",
        "PUT" => "Update",
        "GET" => {
            let unused = PROCESS_PATH.captures(path).map_or(0, |c| {
                (1..c.len())
                    .filter(|&i| c.get(i).is_none_or(|m| m.as_str().is_empty()))
                    .count()
            });
            if unused % 2 == 1 {
                if param("watch").first().is_some_and(|v| v == "true") {
                    "Watch"
                } else {
                    "List"
                }
            } else {
                "Get"
            }
        }
        _ => "Unknown",
    };
    let segments: Vec<&str> = path.split('/').collect();
    let from_end = |n: usize| {
        segments
            .len()
            .checked_sub(n)
            .and_then(|i| segments.get(i))
            .map_or(String::new(), |s| s.to_string())
    };
    let namespaced = NAMESPACED.is_match(path);
    let mut info = RequestInfo {
        kind: String::new(),
        namespace: String::new(),
        name: String::new(),
        verb,
    };
    match verb {
        "List" | "Watch" => {
            info.kind = from_end(1);
            if namespaced {
                info.namespace = from_end(2);
            }
            if verb == "Watch" {
                info.name = param("fieldSelector")
                    .iter()
                    .find_map(|v| v.strip_prefix("metadata.name=").map(str::to_string))
                    .unwrap_or_default();
            }
        }
        "Create" => {
            info.kind = from_end(1);
            if namespaced {
                info.namespace = from_end(2);
            }
        }
        "Get" | "Delete" | "Patch" | "Update" => {
            info.name = from_end(1);
            info.kind = from_end(2);
            if namespaced {
                info.namespace = from_end(3);
            }
        }
        _ => {}
    }
    if verb == "List" || info.kind == "events" || info.kind == "replicasets" {
        info.name = "N/A".into();
    }
    if verb == "Unknown" {
        info.namespace = "Unknown".into();
        info.name = "Unknown".into();
        info.kind = "Unknown".into();
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, path: &str) -> (String, String, String, &'static str) {
        let i = request_info(method, path);
        (i.kind, i.namespace, i.name, i.verb)
    }

    #[test]
    fn requests_are_labelled_as_argo_labels_them() {
        let ro = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts";
        assert_eq!(
            info("GET", &format!("{ro}/web")),
            ("rollouts".into(), "shop".into(), "web".into(), "Get")
        );
        assert_eq!(
            info("GET", ro),
            ("rollouts".into(), "shop".into(), "N/A".into(), "List")
        );
        assert_eq!(
            info(
                "GET",
                &format!("{ro}?watch=true&fieldSelector=metadata.name%3Dweb")
            ),
            ("rollouts".into(), "shop".into(), "web".into(), "Watch")
        );
        // As kubeclientmetrics counts from the end, a subresource shifts every label.
        assert_eq!(
            info("PATCH", &format!("{ro}/web/status")),
            ("web".into(), "rollouts".into(), "status".into(), "Patch")
        );
        assert_eq!(
            info("GET", "/apis/argoproj.io/v1alpha1/rollouts?watch=true"),
            ("rollouts".into(), String::new(), String::new(), "Watch")
        );
        assert_eq!(
            info("PUT", "/api/v1/namespaces/shop/replicasets/web-abc"),
            ("replicasets".into(), "shop".into(), "N/A".into(), "Update")
        );
        assert_eq!(
            info("POST", "/api/v1/namespaces/shop/events"),
            ("events".into(), "shop".into(), "N/A".into(), "Create")
        );
        assert_eq!(
            info("OPTIONS", "/api"),
            (
                "Unknown".into(),
                "Unknown".into(),
                "Unknown".into(),
                "Unknown"
            )
        );
    }
}
