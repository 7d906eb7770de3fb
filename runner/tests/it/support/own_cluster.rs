//! A control plane of its own (`k8s-harness up`, see `tests/cluster/README.md`) for tests that
//! disturb it: restarting its apiserver or etcd would fail the tests that share the one
//! `tests/run` starts. `tests/run` passes the harness build in `ROLLOUT_RUNNER_E2E_HARNESS`
//! (the directory `tests/cluster/build` prints: `bin/k8s-harness` and `crds/`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;
use tokio::process::{Child, Command};

use super::cluster;

/// The harness build directory (`tests/cluster/build` prints it).
pub(crate) const HARNESS_ENV: &str = "ROLLOUT_RUNNER_E2E_HARNESS";

/// A running `k8s-harness up`; stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct OwnCluster {
    child: Child,
    harness: PathBuf,
    dir: tempfile::TempDir,
    /// Seconds from start until `DIR/ready`.
    pub(crate) startup: Duration,
}

impl OwnCluster {
    /// Starts a control plane with the pinned upstream CRDs and the project's; `None` (the
    /// test skips) without `ROLLOUT_RUNNER_E2E_HARNESS`, which is a failure when
    /// `ROLLOUT_RUNNER_E2E_REQUIRED=1`.
    #[allow(clippy::print_stderr, reason = "a skipped test says why")]
    pub(crate) async fn start() -> Option<Self> {
        let Some(build) = std::env::var_os(HARNESS_ENV).filter(|v| !v.is_empty()) else {
            assert!(
                !std::env::var(cluster::REQUIRED_ENV)
                    .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
                "{HARNESS_ENV} is not set but {}=1: tests/run sets it to tests/cluster/build's output",
                cluster::REQUIRED_ENV
            );
            eprintln!("SKIPPED: {HARNESS_ENV} is not set (tests/run sets it)");
            return None;
        };
        let build = PathBuf::from(build);
        let harness = build.join("bin/k8s-harness");
        let dir = tempfile::Builder::new()
            .prefix("own-cluster")
            .tempdir()
            .expect("a temporary directory");
        let log = std::fs::File::create(dir.path().join("harness.log")).expect("the harness log");
        let repo_crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds");
        let started = Instant::now();
        let child = Command::new(&harness)
            .arg("up")
            .arg("--dir")
            .arg(dir.path().join("cluster"))
            .arg("--crds")
            .arg(build.join("crds"))
            .arg("--crds")
            .arg(repo_crds)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the harness log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("k8s-harness up starts");
        let mut own = Self {
            child,
            harness,
            dir,
            startup: Duration::ZERO,
        };
        let ready = own.dir.path().join("cluster/ready");
        let deadline = Instant::now() + Duration::from_secs(300);
        while !ready.exists() {
            if let Ok(Some(status)) = own.child.try_wait() {
                panic!("k8s-harness up exited ({status}):\n{}", own.log());
            }
            assert!(
                Instant::now() < deadline,
                "the own control plane was not ready after 300s:\n{}",
                own.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        own.startup = started.elapsed();
        Some(own)
    }

    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("cluster/kubeconfig")
    }

    /// The supervisor's log (`k8s-harness up` output, restarts included).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("harness.log")).unwrap_or_default()
    }

    pub(crate) async fn client(&self) -> Client {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig()).expect("the kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("a client config");
        Client::try_from(config).expect("a client")
    }

    /// A namespace in which pods can be created (no clean-up: the control plane goes away).
    pub(crate) async fn namespace(&self, client: &Client, prefix: &str) -> String {
        let name = cluster::unique_name(prefix);
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("creating the namespace");
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        cluster::wait_for(
            "the namespace's default ServiceAccount",
            cluster::TIMEOUT,
            || async { accounts.get_opt("default").await.ok().flatten() },
        )
        .await;
        name
    }

    /// `k8s-harness restart COMPONENT`: stops it (SIGKILL when `kill`), keeps it down for
    /// `down`, starts it again and returns once the apiserver is ready; what the harness
    /// measured (`stoppedSeconds`, `downSeconds`, `readySeconds`).
    pub(crate) async fn restart(&self, component: &str, down: &str, kill: bool) -> Value {
        let mut command = Command::new(&self.harness);
        command
            .arg("restart")
            .arg("--dir")
            .arg(self.dir.path().join("cluster"))
            .args(["--down", down]);
        if kill {
            command.arg("--kill");
        }
        let output = command
            .arg(component)
            .output()
            .await
            .expect("k8s-harness restart runs");
        assert!(
            output.status.success(),
            "k8s-harness restart {component}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        serde_json::from_slice(&output.stdout).expect("the restart's answer is JSON")
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        // SIGTERM: the supervisor stops its components in order (they die with it anyway).
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}
