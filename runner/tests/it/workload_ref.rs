//! `spec.workloadRef`: a Rollout takes its pod template from a Deployment and migrates it.
//!
//! `simulate` runs the migration on the in-memory cluster for each `scaleDown` mode; on the
//! real control plane, `apply --wait` migrates a running Deployment while a monitor checks that
//! the available pods across the Deployment's and the Rollout's ReplicaSets never drop below
//! the desired count.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::drive_e2e::{assert_exit, replica_sets, rollout};
use crate::support::cluster::{self, TestNamespace};
use crate::support::runner::{Manifests, Monitor, apply_wait, finish};

const REPLICAS: i32 = 3;

/// The Deployment to migrate, as JSON (which is also YAML).
fn deployment() -> String {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "web:1",
                    "ports": [{"name": "http", "containerPort": 8080}]
                }]}
            }
        }
    })
    .to_string()
}

fn rollout_with_ref(scale_down: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: {REPLICAS}
  workloadRef: {{apiVersion: apps/v1, kind: Deployment, name: web, scaleDown: {scale_down}}}
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {{duration: 1s}}
"#
    )
}

/// What a `scaleDown` mode leaves of the Deployment once the Rollout is Healthy.
fn replicas_left(scale_down: &str) -> i32 {
    match scale_down {
        "never" => REPLICAS,
        _ => 0,
    }
}

fn simulate(scale_down: &str) -> serde_json::Value {
    let manifests = Manifests::new(&[
        ("deployment.yaml", &deployment()),
        ("rollout.yaml", &rollout_with_ref(scale_down)),
    ]);
    let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(["simulate", "--output", "json"])
        .arg(manifests.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("rollout-runner runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "simulate {scale_down}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).expect("simulate prints JSON")
}

#[test]
fn simulate_migrates_a_deployment_as_each_scale_down_mode_says() {
    for mode in ["never", "onsuccess", "progressively"] {
        let report = simulate(mode);
        assert_eq!(
            report["outcome"]["outcome"], "promoted",
            "{mode}: {report:#}"
        );
        let workload = &report["workload"];
        assert_eq!(workload["kind"], "Deployment", "{mode}: {report:#}");
        assert_eq!(
            workload["replicas"],
            replicas_left(mode),
            "{mode}: the Deployment's replicas at the end: {report:#}"
        );
    }
}

#[test]
fn plan_and_simulate_show_the_deployment_template_and_refuse_a_missing_one() {
    let manifests = Manifests::new(&[
        ("deployment.yaml", &deployment()),
        ("rollout.yaml", &rollout_with_ref("onsuccess")),
    ]);
    let plan = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(["plan", "--output", "json"])
        .arg(manifests.path())
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["images"], serde_json::json!(["web:1"]), "{plan:#}");
    assert_eq!(plan["workload"]["scaleDown"], "onsuccess", "{plan:#}");

    let alone = Manifests::new(&[("rollout.yaml", &rollout_with_ref("onsuccess"))]);
    for command in ["plan", "simulate"] {
        let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
            .arg(command)
            .arg(alone.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("takes its pod template from Deployment `web`")
                && stderr.contains("hint: pass the Deployment's manifest"),
            "{command}: {stderr}"
        );
    }
}

/// A running Deployment, all its pods available.
async fn running_deployment(client: &Client, ns: &str) -> Api<Deployment> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let deployment: Deployment = serde_json::from_str(&deployment()).unwrap();
    api.create(&PostParams::default(), &deployment)
        .await
        .expect("creating the Deployment");
    cluster::wait_until(
        &api,
        "web",
        Duration::from_secs(120),
        "the Deployment is available",
        |d| {
            d.status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0)
                == REPLICAS
        },
    )
    .await;
    api
}

async fn migrate(scale_down: &str) {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, &format!("workload-ref-{scale_down}")).await;
    let deployments = running_deployment(&client, ns.name()).await;

    // Every ReplicaSet of the namespace counts: the Deployment's and the Rollout's.
    let monitor = Monitor::start(&client, ns.name(), &[], Some(REPLICAS));
    let manifests = Manifests::new(&[("rollout.yaml", &rollout_with_ref(scale_down))]);
    let run = finish(apply_wait(ns.name(), manifests.path(), &[])).await;
    let seen = monitor.stop();
    assert_exit(&run, 0, &format!("the migration ({scale_down})"));
    assert!(
        seen.violations.is_empty(),
        "{scale_down}: {:#?}",
        seen.violations
    );
    assert!(
        seen.min_available.is_some_and(|m| m >= REPLICAS),
        "{scale_down}: available pods dropped to {:?}",
        seen.min_available
    );

    let status = rollout(&client, ns.name()).await.status.unwrap();
    assert_eq!(status.available_replicas, REPLICAS, "{status:?}");
    let deployment = deployments.get("web").await.unwrap();
    assert_eq!(
        deployment.spec.unwrap().replicas,
        Some(replicas_left(scale_down)),
        "{scale_down}: the Deployment's replicas after the migration; ReplicaSets: {:?}",
        replica_sets(&client, ns.name()).await
    );
}

#[tokio::test]
async fn e2e_workload_ref_never_leaves_the_deployment_running() {
    migrate("never").await;
}

#[tokio::test]
async fn e2e_workload_ref_onsuccess_scales_the_deployment_down_once_healthy() {
    migrate("onsuccess").await;
}

#[tokio::test]
async fn e2e_workload_ref_progressively_hands_pods_over_without_downtime() {
    migrate("progressively").await;
}

/// Argo refuses a `workloadRef` Rollout whose template has labels or annotations, and accepts
/// one whose template has anything else (the workload's template replaces it); lint agrees.
#[test]
fn a_template_beside_workload_ref_is_refused_exactly_when_argo_refuses_it() {
    let Some(mut oracle) = crate::support::oracle::Oracle::start() else {
        return;
    };
    let templates = [
        serde_json::json!({"metadata": {"labels": {"app": "web"}}}),
        serde_json::json!({"metadata": {"annotations": {"team": "shop"}}}),
        serde_json::json!({"spec": {"containers": [{"name": "web", "image": "web:2"}]}}),
        serde_json::json!({}),
    ];
    for template in templates {
        let rollout = serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web"},
            "spec": {
                "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "template": template,
                "strategy": {"canary": {}}
            }
        });
        let argo = oracle.ask(&serde_json::json!({"op": "validateRollout", "rollout": rollout}));
        let argo_refuses = argo["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e["field"] == "spec.template");
        let manifests = Manifests::new(&[("rollout.yaml", &rollout.to_string())]);
        let output = Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
            .arg("lint")
            .arg(manifests.path().join("rollout.yaml"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let we_refuse = stdout.contains("error: template must be empty");
        assert_eq!(
            we_refuse, argo_refuses,
            "template {template}: Argo {argo}; lint:\n{stdout}"
        );
    }
}
