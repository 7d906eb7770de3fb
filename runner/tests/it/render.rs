//! `rollout-runner render`: the starter templates, values layering, the CI context and errors.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rollout_runner::ci::ENV_VARS;

/// The workspace root: the starter templates and docs live there.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

/// The binary, run from `dir`, with every CI variable removed from its environment.
fn runner_in(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("rollout-runner").unwrap();
    command.current_dir(dir);
    for var in ENV_VARS {
        command.env_remove(var.name);
    }
    command
}

const SHA: &str = "3f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39";

/// The binary in the workspace, as a GitHub Actions pull request run with fixed variables, so
/// snapshots do not depend on the checkout or the machine.
fn runner_github_pr() -> Command {
    let mut command = runner_in(&workspace());
    command.envs([
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", SHA),
        ("GITHUB_REF", "refs/pull/42/merge"),
        ("GITHUB_REF_NAME", "42/merge"),
        ("GITHUB_REF_TYPE", "branch"),
        ("GITHUB_HEAD_REF", "feature/checkout"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_RUN_ID", "987654321"),
        ("GITHUB_ACTOR", "octocat"),
    ]);
    command
}

fn stdout_of(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Parse a stream into its documents, failing the test if it is not YAML.
fn documents(stream: &str) -> Vec<serde_json::Value> {
    serde_saphyr::from_multiple::<serde_json::Value>(stream)
        .unwrap_or_else(|error| panic!("not YAML: {error}\n{stream}"))
}

fn kinds(documents: &[serde_json::Value]) -> Vec<String> {
    documents
        .iter()
        .map(|doc| {
            format!(
                "{}/{}",
                doc["kind"].as_str().unwrap_or("?"),
                doc["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn render_starter(name: &str) -> String {
    let values = format!("templates/{name}/values.yaml");
    stdout_of(runner_github_pr().args([
        "render",
        &format!("templates/{name}"),
        "templates/analysis",
        "--values",
        &values,
        "--set",
        "image.tag=yellow",
    ]))
}

fn rollout(documents: &[serde_json::Value]) -> &serde_json::Value {
    documents
        .iter()
        .find(|doc| doc["kind"] == "Rollout")
        .expect("a Rollout")
}

/// What every starter Rollout must satisfy to be a Rollout an Argo user would write.
fn check_rollout_basics(documents: &[serde_json::Value]) {
    let rollout = rollout(documents);
    assert_eq!(rollout["apiVersion"], "argoproj.io/v1alpha1");
    let labels = &rollout["spec"]["template"]["metadata"]["labels"];
    let selector = &rollout["spec"]["selector"]["matchLabels"];
    assert_eq!(labels, selector, "the selector matches the pod labels");
    assert_eq!(
        rollout["spec"]["template"]["spec"]["containers"][0]["image"],
        "argoproj/rollouts-demo:yellow"
    );
    let annotations = &rollout["metadata"]["annotations"];
    assert_eq!(annotations["rollout-runner.io/commit"], SHA);
    assert_eq!(annotations["rollout-runner.io/pr"], "42");
    assert_eq!(
        annotations["rollout-runner.io/run-url"],
        "https://github.com/acme/shop/actions/runs/987654321"
    );
    for service in documents.iter().filter(|doc| doc["kind"] == "Service") {
        assert_eq!(
            service["spec"]["selector"]["app"], labels["app"],
            "services select the app"
        );
    }
    let services: Vec<&str> = documents
        .iter()
        .filter(|doc| doc["kind"] == "Service")
        .filter_map(|doc| doc["metadata"]["name"].as_str())
        .collect();
    let strategy = &rollout["spec"]["strategy"];
    for field in [
        &strategy["canary"]["canaryService"],
        &strategy["canary"]["stableService"],
        &strategy["blueGreen"]["activeService"],
        &strategy["blueGreen"]["previewService"],
    ] {
        if let Some(name) = field.as_str() {
            assert!(services.contains(&name), "the Service `{name}` is rendered");
        }
    }
    let analysis_templates: Vec<&str> = documents
        .iter()
        .filter(|doc| doc["kind"] == "AnalysisTemplate")
        .filter_map(|doc| doc["metadata"]["name"].as_str())
        .collect();
    for analysis in [
        &strategy["canary"]["analysis"],
        &strategy["blueGreen"]["prePromotionAnalysis"],
    ] {
        if let Some(templates) = analysis["templates"].as_array() {
            for template in templates {
                let name = template["templateName"].as_str().unwrap();
                assert!(analysis_templates.contains(&name), "`{name}` is rendered");
            }
        }
    }
}

#[test]
fn canary_basic() {
    let stream = render_starter("canary-basic");
    let docs = documents(&stream);
    check_rollout_basics(&docs);
    let canary = &rollout(&docs)["spec"]["strategy"]["canary"];
    assert!(canary.get("trafficRouting").is_none());
    assert_eq!(canary["steps"][0]["setWeight"], 20);
    insta::assert_snapshot!(stream);
}

#[test]
fn canary_nginx() {
    let stream = render_starter("canary-nginx");
    let docs = documents(&stream);
    check_rollout_basics(&docs);
    let canary = &rollout(&docs)["spec"]["strategy"]["canary"];
    assert_eq!(canary["trafficRouting"]["nginx"]["stableIngress"], "web");
    let ingress = docs.iter().find(|doc| doc["kind"] == "Ingress").unwrap();
    assert_eq!(ingress["metadata"]["name"], "web");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        canary["stableService"]
    );
    insta::assert_snapshot!(stream);
}

#[test]
fn canary_istio() {
    let stream = render_starter("canary-istio");
    let docs = documents(&stream);
    check_rollout_basics(&docs);
    let canary = &rollout(&docs)["spec"]["strategy"]["canary"];
    let virtual_service = &canary["trafficRouting"]["istio"]["virtualService"];
    let vs = docs
        .iter()
        .find(|doc| doc["kind"] == "VirtualService")
        .unwrap();
    assert_eq!(vs["metadata"]["name"], virtual_service["name"]);
    let route = &vs["spec"]["http"][0];
    assert_eq!(route["name"], virtual_service["routes"][0]);
    let hosts: Vec<&serde_json::Value> = route["route"]
        .as_array()
        .unwrap()
        .iter()
        .map(|destination| &destination["destination"]["host"])
        .collect();
    assert_eq!(hosts, [&canary["stableService"], &canary["canaryService"]]);
    insta::assert_snapshot!(stream);
}

#[test]
fn canary_gateway_api() {
    let stream = render_starter("canary-gateway-api");
    let docs = documents(&stream);
    check_rollout_basics(&docs);
    let canary = &rollout(&docs)["spec"]["strategy"]["canary"];
    let plugin = &canary["trafficRouting"]["plugins"]["argoproj-labs/gatewayAPI"];
    assert_eq!(plugin["httpRoute"], "web");
    assert_eq!(plugin["namespace"], "default");
    let route = docs.iter().find(|doc| doc["kind"] == "HTTPRoute").unwrap();
    let backends: Vec<&serde_json::Value> = route["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|backend| &backend["name"])
        .collect();
    assert_eq!(
        backends,
        [&canary["stableService"], &canary["canaryService"]]
    );
    insta::assert_snapshot!(stream);
}

#[test]
fn blue_green() {
    let stream = render_starter("blue-green");
    let docs = documents(&stream);
    check_rollout_basics(&docs);
    let blue_green = &rollout(&docs)["spec"]["strategy"]["blueGreen"];
    assert_eq!(blue_green["autoPromotionEnabled"], false);
    assert_eq!(
        blue_green["prePromotionAnalysis"]["templates"][0]["templateName"],
        "success-rate"
    );
    insta::assert_snapshot!(stream);
}

#[test]
fn starter_values_can_be_overridden() {
    let stream = stdout_of(runner_github_pr().args([
        "render",
        "templates/blue-green",
        "--values",
        "templates/blue-green/values.yaml",
        "--set",
        "image.tag=yellow",
        "--set",
        "blueGreen.autoPromotionEnabled=true",
        "--set",
        "blueGreen.previewReplicaCount=1",
        "--set",
        "analysis.enabled=false",
        "--set",
        "replicas=7",
        "--set",
        "analysis.prometheusAddress=http://prom:9090",
    ]));
    let docs = documents(&stream);
    let blue_green = &rollout(&docs)["spec"]["strategy"]["blueGreen"];
    assert_eq!(blue_green["autoPromotionEnabled"], true);
    assert_eq!(blue_green["previewReplicaCount"], 1);
    assert!(blue_green.get("prePromotionAnalysis").is_none());
    assert_eq!(rollout(&docs)["spec"]["replicas"], 7);

    let stream = stdout_of(runner_github_pr().args([
        "render",
        "templates/canary-nginx",
        "--values",
        "templates/canary-nginx/values.yaml",
        "--set",
        "image.tag=yellow",
        "--set",
        "analysis.prometheusAddress=http://prom:9090",
    ]));
    let docs = documents(&stream);
    let args = &rollout(&docs)["spec"]["strategy"]["canary"]["analysis"]["args"];
    assert_eq!(args[1]["name"], "prometheus-address");
    assert_eq!(args[1]["value"], "http://prom:9090");
}

#[test]
fn analysis_templates_pass_through_byte_for_byte() {
    let stream = stdout_of(runner_github_pr().args(["render", "templates/analysis"]));
    let root = workspace();
    for name in ["latency-p95.yaml", "success-rate.yaml"] {
        let original = std::fs::read_to_string(root.join("templates/analysis").join(name)).unwrap();
        assert!(stream.contains(&original), "`{name}` is unchanged");
    }
    let docs = documents(&stream);
    assert_eq!(
        kinds(&docs),
        [
            "AnalysisTemplate/latency-p95",
            "AnalysisTemplate/success-rate"
        ]
    );
    for doc in &docs {
        let condition = doc["spec"]["metrics"][0]["successCondition"]
            .as_str()
            .unwrap();
        assert!(
            condition.starts_with("len(result) > 0 && result[0]"),
            "{condition}"
        );
        let query = doc["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
            .as_str()
            .unwrap();
        assert!(query.contains("{{args.service-name}}"), "{query}");
    }
}

#[test]
fn a_missing_value_names_file_line_and_variable() {
    let output = runner_github_pr()
        .args([
            "render",
            "templates/canary-basic",
            "--values",
            "templates/canary-basic/values.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    insta::assert_snapshot!(String::from_utf8(output.stderr).unwrap(), @r"
    error: templates/canary-basic/rollout.yaml.j2:31: undefined value `values.image.tag`

    hint: pass it with `--set image.tag=...` or in a values file (`--values FILE`)
    ");
}

#[test]
fn template_errors_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yaml.j2"), "a: 1\nb: {{ values.x \n").unwrap();
    std::fs::write(
        dir.path().join("needs.yaml.j2"),
        "a: {{ values.host | required('values.host is required: the public host name') }}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("ci.yaml.j2"), "pr: {{ ci.pr }}\n").unwrap();

    let output = runner_in(dir.path())
        .args(["render", "broken.yaml.j2", "--set", "x=1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: broken.yaml.j2:2: syntax error: "),
        "{stderr}"
    );

    let output = runner_in(dir.path())
        .args(["render", "needs.yaml.j2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "error: needs.yaml.j2:1: values.host is required: the public host name\n"
    );

    let output = runner_in(dir.path())
        .args(["render", "ci.yaml.j2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: ci.yaml.j2:1: undefined value `ci.pr`"),
        "{stderr}"
    );
    assert!(stderr.contains("{% if ci.pr is defined %}"), "{stderr}");
}

#[test]
fn bad_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "a: 1\n").unwrap();
    std::fs::write(dir.path().join("list.yaml"), "- 1\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/a.yaml"), "a: 2\n").unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["render", "missing.yaml"],
            "error: cannot read `missing.yaml`: ",
        ),
        (
            &["render", "a.yaml", "--set", "novalue"],
            "error: invalid `--set novalue`: ",
        ),
        (
            &["render", "a.yaml", "--values", "list.yaml"],
            "error: list.yaml: invalid values file: ",
        ),
        (
            &["render", "a.yaml", "--values", "nope.yaml"],
            "error: --values: cannot read `nope.yaml`: no such file or directory",
        ),
        (
            &["render", "a.yaml", "sub"],
            "error: `a.yaml` and `sub/a.yaml` both render to `a.yaml`",
        ),
        (
            &["render", "empty"],
            "error: `empty` holds no manifests or templates",
        ),
    ];
    for (args, expected) in cases {
        let output = runner_in(dir.path()).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn values_layer_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml.j2"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ release.name }}\ndata: {{- values | toyaml | nindent(2) }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("base.yaml"),
        "a: base\nb: base\nnested: {x: 1, y: 1}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("prod.yaml"), "b: prod\nnested: {y: 2}\n").unwrap();
    let stream = stdout_of(runner_in(dir.path()).args([
        "render",
        "config.yaml.j2",
        "--values",
        "base.yaml",
        "--values",
        "prod.yaml",
        "--set",
        "c=3",
        "--set",
        "nested.x=10",
        "--set-string",
        "c=3",
        "--set-string",
        "version=1.10",
        "--release-name",
        "shop",
    ]));
    assert_eq!(
        stream,
        "---\n# Source: config.yaml.j2\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop\n\
         data:\n  a: base\n  b: prod\n  c: \"3\"\n  nested:\n    x: 10\n    \"y\": 2\n  version: \"1.10\"\n"
    );
}

#[test]
fn out_writes_one_file_per_input() {
    let out = tempfile::tempdir().unwrap();
    let output = runner_github_pr()
        .args([
            "render",
            "templates/canary-nginx",
            "templates/analysis/success-rate.yaml",
            "--values",
            "templates/canary-nginx/values.yaml",
            "--set",
            "image.tag=yellow",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
    let mut written: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "ingress.yaml",
            "rollout.yaml",
            "services.yaml",
            "success-rate.yaml"
        ]
    );
    let original = std::fs::read(workspace().join("templates/analysis/success-rate.yaml")).unwrap();
    assert_eq!(
        std::fs::read(out.path().join("success-rate.yaml")).unwrap(),
        original
    );
    let rollout = std::fs::read_to_string(out.path().join("rollout.yaml")).unwrap();
    assert!(rollout.starts_with("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\n"));
}

const CI_DUMP: &str = "{{ ci | toyaml }}\n";

#[test]
fn the_ci_context_in_github_gitlab_and_local_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ci.yaml.j2"), CI_DUMP).unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"pull_request": {"number": 7}}"#).unwrap();

    let github = stdout_of(runner_in(dir.path()).args(["render", "ci.yaml.j2"]).envs([
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", SHA),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_REF_TYPE", "branch"),
        ("GITHUB_HEAD_REF", "fix/typo"),
        ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_RUN_ID", "1"),
        ("GITHUB_ACTOR", "octocat"),
    ]));
    insta::assert_snapshot!(github, @r"
    ---
    # Source: ci.yaml.j2
    provider: github
    commit: 3f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39
    head_sha: 3f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39
    short_sha: 3f2c1a9
    branch: fix/typo
    remote_url: https://github.com/acme/shop
    pr: 7
    run_url: https://github.com/acme/shop/actions/runs/1
    actor: octocat
    repository: acme/shop
    ");

    let gitlab = stdout_of(runner_in(dir.path()).args(["render", "ci.yaml.j2"]).envs([
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_SHA", SHA),
        ("CI_COMMIT_SHORT_SHA", "3f2c1a9e"),
        ("CI_COMMIT_REF_NAME", "feature/x"),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature/x"),
        ("CI_MERGE_REQUEST_IID", "12"),
        ("CI_JOB_URL", "https://gitlab.com/acme/shop/-/jobs/5"),
        ("GITLAB_USER_LOGIN", "alice"),
        ("CI_PROJECT_PATH", "acme/shop"),
        ("CI_PROJECT_URL", "https://gitlab.com/acme/shop"),
        ("CI_COMMIT_MESSAGE", "Fix the thing\n\nBecause.\n"),
    ]));
    insta::assert_snapshot!(gitlab, @r"
    ---
    # Source: ci.yaml.j2
    provider: gitlab
    commit: 3f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39
    head_sha: 3f2c1a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39
    short_sha: 3f2c1a9e
    branch: feature/x
    remote_url: https://gitlab.com/acme/shop
    commit_message: |-
      Fix the thing

      Because.
    commit_subject: Fix the thing
    pr: 12
    run_url: https://gitlab.com/acme/shop/-/jobs/5
    actor: alice
    repository: acme/shop
    ");

    if git2::Repository::discover(dir.path()).is_err() {
        let local = stdout_of(runner_in(dir.path()).args(["render", "ci.yaml.j2"]));
        assert_eq!(local, "---\n# Source: ci.yaml.j2\nprovider: local\n");
    }
}

#[test]
fn a_local_run_outside_git_renders_the_starters_without_ci_annotations() {
    let dir = tempfile::tempdir().unwrap();
    if git2::Repository::discover(dir.path()).is_ok() {
        return;
    }
    let root = workspace();
    let stream = stdout_of(
        runner_in(dir.path())
            .arg("render")
            .arg(root.join("templates/canary-basic"))
            .arg("--values")
            .arg(root.join("templates/canary-basic/values.yaml"))
            .args(["--set", "image.tag=yellow"]),
    );
    let docs = documents(&stream);
    assert!(rollout(&docs)["metadata"].get("annotations").is_none());
}

#[test]
fn the_docs_list_every_environment_variable() {
    let docs = std::fs::read_to_string(workspace().join("docs/templates.md")).unwrap();
    for var in ENV_VARS {
        assert!(
            docs.contains(&format!("| `{}` |", var.name)),
            "docs/templates.md does not list `{}`",
            var.name
        );
    }
}
