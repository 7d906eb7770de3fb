//! `helm template ... | rollout-runner apply - --wait`, end to end: real Helm renders a chart
//! and the binary reads the manifests from standard input, applies them to the test control
//! plane and drives the release to its end.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use kube::Api;
use tokio::io::AsyncWriteExt;

use rollout_runner::crd::Rollout;

use crate::support::cluster::{self, TestNamespace};
use crate::support::runner::command;

/// A Helm binary (`tests/platforms/build helm`), set by `tests/run`.
const HELM_ENV: &str = "ROLLOUT_RUNNER_E2E_HELM";

const CHART: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
const VALUES: &str = "image:\n  tag: \"1\"\nreplicas: 2\n";
const ROLLOUT: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {{ .Release.Name }}
  labels: {app: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
        - name: web
          image: "web:{{ .Values.image.tag }}"
          ports: [{name: http, containerPort: 8080}]
  strategy:
    canary:
      stableService: {{ .Release.Name }}-stable
      canaryService: {{ .Release.Name }}-canary
      steps:
        - setWeight: 50
        - pause: {duration: 1s}
"#;
const SERVICES: &str = r#"{{- range list "stable" "canary" }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $.Release.Name }}-{{ . }}
spec:
  selector: {app: {{ $.Release.Name }}}
  ports: [{name: http, port: 80, targetPort: 8080}]
{{- end }}
"#;

fn helm() -> Option<PathBuf> {
    std::env::var_os(HELM_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `helm template shop CHART --set image.tag=TAG`: the rendered manifests.
async fn helm_template(helm: &PathBuf, chart: &std::path::Path, tag: &str) -> Vec<u8> {
    let home = chart.join(".helm");
    let output = tokio::process::Command::new(helm)
        .args(["template", "shop"])
        .arg(chart)
        .args(["--set", &format!("image.tag={tag}")])
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .await
        .expect("helm runs");
    assert!(
        output.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `rollout-runner apply - --wait` with `manifests` on standard input.
async fn apply_stdin(ns: &str, manifests: &[u8]) -> (Option<i32>, String) {
    let mut apply = command(ns, &["apply", "-", "--wait", "--timeout", "150s"]);
    apply.stdin(Stdio::piped());
    let mut child = apply.spawn().expect("the runner starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(manifests).await.expect("writing stdin");
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(200), child.wait_with_output())
        .await
        .expect("apply finishes within 200s")
        .expect("apply runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_helm_template_output_piped_into_apply_is_released() {
    let Some(client) = cluster::client().await else {
        return;
    };
    // Helm comes with the process-pod platforms (`tests/run` as root); without them, no test.
    let Some(helm) = helm() else {
        assert!(
            std::env::var_os("ROLLOUT_RUNNER_E2E_PROCESS_PODS").is_none(),
            "{HELM_ENV} is not set"
        );
        return;
    };
    let ns = TestNamespace::create(&client, "helm-pipe").await;
    let chart = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(chart.path().join("templates")).unwrap();
    for (path, text) in [
        ("Chart.yaml", CHART),
        ("values.yaml", VALUES),
        ("templates/rollout.yaml", ROLLOUT),
        ("templates/services.yaml", SERVICES),
    ] {
        std::fs::write(chart.path().join(path), text).unwrap();
    }

    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), ns.name());
    for tag in ["1", "2"] {
        let manifests = helm_template(&helm, chart.path(), tag).await;
        let (code, stderr) = apply_stdin(ns.name(), &manifests).await;
        assert_eq!(code, Some(0), "release {tag} from stdin\n{stderr}");
        let rollout = rollouts.get("shop").await.unwrap();
        let image = rollout
            .spec
            .template
            .as_ref()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        assert_eq!(image.as_deref(), Some(format!("web:{tag}").as_str()));
        let status = rollout.status.unwrap_or_default();
        assert_eq!(
            status.phase.map(|p| p.to_string()).as_deref(),
            Some("Healthy"),
            "release {tag}"
        );
        assert_eq!(status.stable_rs, status.current_pod_hash);
    }
}
