//! Argo Rollouts' own controller (`rollouts-controller` v1.10.2, built from its Go module by
//! `tests/platforms/build argo-rollouts`) as a host process against the test control plane,
//! for tests that compare the runner with Argo.
//!
//! Each instance handles one namespace (`--namespaced --namespace NS`) and only Rollouts
//! labelled with [`INSTANCE_ID`] (`--instance-id`): the runner's controllers, which handle only
//! unlabelled Rollouts, and other tests never see its Rollouts, nor it theirs. No leader
//! election; metrics and health on free loopback ports. Its log goes to a file kept in the
//! test's temporary directory and printed when a comparison fails.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::cluster;
use super::dataplane::free_port;

/// The `rollouts-controller` binary (`tests/platforms/build argo-rollouts`).
pub(crate) const ARGO_CONTROLLER_ENV: &str = "ROLLOUT_RUNNER_E2E_ARGO_CONTROLLER";
/// The instance id of Argo's controller: its Rollouts carry this label value.
pub(crate) const INSTANCE_ID: &str = "argo-compare";
/// Argo's instance-id label.
pub(crate) const INSTANCE_ID_LABEL: &str = "argo-rollouts.argoproj.io/controller-instance-id";

/// The binary, or `None` (after a loud message) when the comparison cannot run; with CI=true a
/// missing binary fails the test.
#[allow(clippy::print_stderr, reason = "a skipped test says why on stderr")]
pub(crate) fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(ARGO_CONTROLLER_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    assert!(
        !ci,
        "CI=true but {ARGO_CONTROLLER_ENV} is not set: the comparisons with Argo's controller are \
         mandatory in CI (tests/run builds it with tests/platforms/build argo-rollouts)"
    );
    eprintln!(
        "SKIPPED: {ARGO_CONTROLLER_ENV} is not set; build Argo's controller with \
         tests/platforms/build argo-rollouts"
    );
    None
}

/// A running Argo controller; stopped when dropped.
pub(crate) struct ArgoController {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ArgoController {
    /// Start Argo's controller (`binary`) for the Rollouts of `namespace` labelled with
    /// [`INSTANCE_ID`].
    pub(crate) fn start(binary: &std::path::Path, namespace: &str) -> Self {
        let kubeconfig = cluster::kubeconfig_path().expect("the e2e kubeconfig");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("rollouts-controller.log");
        let file = std::fs::File::create(&log).expect("the controller's log file");
        let child = Command::new(binary)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--namespaced", "--namespace", namespace])
            .args(["--instance-id", INSTANCE_ID, "--leader-elect=false"])
            .args(["--metricsPort", &free_port().to_string()])
            .args(["--healthzPort", &free_port().to_string()])
            .args(["--loglevel", "info"])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a second handle of the log"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("Argo's controller starts");
        Self {
            child,
            log,
            _dir: dir,
        }
    }

    /// What the controller logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stop it (SIGKILL: nothing of it outlives the test).
    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
