//! `rollout-runner install`: print everything the in-cluster controller needs.

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

use crate::cluster::lease::ARGO_INSTANCE_ID_LABEL;
use crate::error::ExitStatus;

/// Print the manifests of the in-cluster controller as one YAML stream: the CRDs, a
/// Namespace, a ServiceAccount, least-privilege RBAC and a Deployment (plus a Service for
/// `/metrics`).
///
/// Install with `rollout-runner install | kubectl apply --server-side -f -`. With
/// `--watch-namespace` the controller gets Roles in those namespaces only, not a ClusterRole
/// over the whole cluster.
#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    /// The namespace the controller runs in.
    #[arg(
        long,
        short = 'n',
        value_name = "NAMESPACE",
        default_value = "rollout-runner"
    )]
    namespace: String,

    /// The controller's image.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
    image: String,

    /// Drive Rollouts in this namespace only (repeatable). Default: every namespace.
    #[arg(long, value_name = "NAMESPACE")]
    watch_namespace: Vec<String>,

    /// Handle only Rollouts labelled with this Argo instance id.
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,

    /// Controller replicas (one leads, the others stand by).
    #[arg(long, default_value_t = 2)]
    replicas: u32,

    /// Leave the CRDs out (they are installed already, e.g. by `rollout-runner crds`).
    #[arg(long)]
    skip_crds: bool,
}

const DEFAULT_IMAGE: &str = concat!(
    "ghcr.io/rollout-runner/rollout-runner:",
    env!("CARGO_PKG_VERSION")
);

/// The name of every object the install creates (ServiceAccount, roles, Deployment).
const NAME: &str = "rollout-runner-controller";

/// What the controller does with each kind of object, and nothing more. Namespaced rules
/// only; cluster-scoped ones are in [`cluster_rules`].
fn namespaced_rules() -> Value {
    json!([
        // Rollouts are driven: read, annotate, scale, write status.
        {"apiGroups": ["argoproj.io"], "resources": ["rollouts"],
         "verbs": ["get", "list", "watch", "update", "patch"]},
        {"apiGroups": ["argoproj.io"],
         "resources": ["rollouts/status", "analysisruns/status", "experiments/status"],
         "verbs": ["get", "update", "patch"]},
        // Created, measured and cleaned up for each step.
        {"apiGroups": ["argoproj.io"], "resources": ["analysisruns", "experiments"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        {"apiGroups": ["argoproj.io"], "resources": ["analysistemplates"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["apps"], "resources": ["replicasets"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        // Selectors of stable/canary/active/preview Services; Experiments create their own.
        {"apiGroups": [""], "resources": ["services"],
         "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
        // `valueFrom.secretKeyRef` arguments and provider credentials: read one by name.
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        // The Job metric provider.
        {"apiGroups": ["batch"], "resources": ["jobs"],
         "verbs": ["get", "list", "watch", "create", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
        // One Event per decision.
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
         "verbs": ["create", "patch"]},
        // The per-Rollout Leases shared with CI runners (watched: passes read them from the
        // watch cache).
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "verbs": ["get", "list", "watch", "create", "update", "patch"]},
        // Traffic routers: weights are patched on objects the user owns.
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"],
         "verbs": ["get", "list", "watch", "update", "patch"]},
        {"apiGroups": ["networking.istio.io"], "resources": ["virtualservices", "destinationrules"],
         "verbs": ["get", "list", "watch", "update", "patch"]},
        {"apiGroups": ["split.smi-spec.io"], "resources": ["trafficsplits"],
         "verbs": ["get", "create", "update", "patch"]},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"],
         "verbs": ["get", "list", "watch", "update", "patch"]},
        // The NGINX router creates its canary Ingress from the stable one.
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["create"]},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["grpcroutes"],
         "verbs": ["get", "list", "watch", "update", "patch"]},
        // Traefik moved its CRDs from traefik.containo.us; the router uses whichever is served.
        {"apiGroups": ["traefik.io", "traefik.containo.us"], "resources": ["traefikservices"],
         "verbs": ["get", "list", "watch", "update", "patch"]},
    ])
}

/// Cluster-scoped objects the controller reads whatever its scope.
fn cluster_rules() -> Value {
    json!([
        {"apiGroups": ["argoproj.io"], "resources": ["clusteranalysistemplates"],
         "verbs": ["get", "list", "watch"]},
    ])
}

fn labels() -> Value {
    json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "rollout-runner"})
}

/// Every object, in the order `kubectl apply` needs them (CRDs and Namespace first).
pub(crate) fn manifests(args: &InstallArgs) -> anyhow::Result<Vec<String>> {
    let mut documents = Vec::new();
    if !args.skip_crds {
        documents.extend(super::crd_files()?.into_iter().map(|(_, yaml)| yaml));
    }
    let ns = args.namespace.as_str();
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": NAME, "namespace": ns, "labels": labels()}}),
    ];
    let subject = json!([{"kind": "ServiceAccount", "name": NAME, "namespace": ns}]);
    let cluster_wide = args.watch_namespace.is_empty();
    let mut cluster_rules = cluster_rules();
    if cluster_wide {
        let all = cluster_rules.as_array_mut().context("rules are a list")?;
        all.extend(namespaced_rules().as_array().cloned().unwrap_or_default());
    }
    objects.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": NAME, "labels": labels()}, "rules": cluster_rules,
    }));
    objects.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": NAME, "labels": labels()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
        "subjects": subject,
    }));
    for watched in &args.watch_namespace {
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": NAME, "namespace": watched, "labels": labels()},
            "rules": namespaced_rules(),
        }));
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": NAME, "namespace": watched, "labels": labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
            "subjects": subject,
        }));
    }
    if !cluster_wide && !args.watch_namespace.iter().any(|w| w == ns) {
        // Leader election happens in the controller's own namespace.
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": format!("{NAME}-leader-election"), "namespace": ns,
                         "labels": labels()},
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                       "verbs": ["get", "create", "update", "patch"]},
                      {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}],
        }));
        objects.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("{NAME}-leader-election"), "namespace": ns,
                         "labels": labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": format!("{NAME}-leader-election")},
            "subjects": subject,
        }));
    }
    let mut arguments = vec!["controller".to_string()];
    for watched in &args.watch_namespace {
        arguments.extend(["--namespace".to_string(), watched.clone()]);
    }
    if let Some(id) = &args.instance_id {
        arguments.extend(["--instance-id".to_string(), id.clone()]);
    }
    let mut deployment_labels = labels();
    if let Some(id) = &args.instance_id {
        deployment_labels[ARGO_INSTANCE_ID_LABEL] = json!(id);
    }
    objects.push(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": ns, "labels": deployment_labels},
        "spec": {
            "replicas": args.replicas,
            "selector": {"matchLabels": labels()},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "serviceAccountName": NAME,
                    // Leave time to finish the reconciles in flight and give the Leases up.
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "controller",
                        "image": args.image,
                        "args": arguments,
                        "env": [
                            {"name": "POD_NAMESPACE",
                             "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "ROLLOUT_RUNNER_LOG", "value": "info"},
                            {"name": "ROLLOUT_RUNNER_LOG_FORMAT", "value": "json"},
                        ],
                        "ports": [{"name": "metrics", "containerPort": 8090}],
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}},
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                      "limits": {"memory": "256Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false,
                                            "readOnlyRootFilesystem": true,
                                            "capabilities": {"drop": ["ALL"]}},
                    }],
                },
            },
        },
    }));
    objects.push(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("{NAME}-metrics"), "namespace": ns, "labels": labels()},
        "spec": {"selector": labels(),
                 "ports": [{"name": "metrics", "port": 8090, "targetPort": "metrics"}]},
    }));
    for object in objects {
        documents.push(serde_saphyr::to_string(&object).context("cannot serialize a manifest")?);
    }
    Ok(documents)
}

pub(crate) fn run(args: InstallArgs) -> anyhow::Result<ExitStatus> {
    print!("{}", manifests(&args)?.join("---\n"));
    Ok(ExitStatus::Success)
}
