//! The API fault proxy (`tests/faultproxy`) in front of the e2e control plane: one per test,
//! with a fixed seed, so a runner given [`FaultProxy::kubeconfig`] meets 5xx, 429, conflicts,
//! resets, slow answers, watches that end early or expire, and partitions.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::cluster;

/// Path of the `api-fault-proxy` binary (`tests/run` builds it).
pub(crate) const FAULT_PROXY_ENV: &str = "ROLLOUT_RUNNER_E2E_FAULT_PROXY";

/// A running proxy; SIGTERM when dropped.
pub(crate) struct FaultProxy {
    child: Child,
    dir: tempfile::TempDir,
    admin: String,
}

impl FaultProxy {
    /// Starts a proxy in front of the e2e cluster with `seed` and `args` (`--profile ...`,
    /// `--rules ...`). `None` (the test skips) when there is no cluster; panics when the
    /// cluster is there but the proxy is not and `ROLLOUT_RUNNER_E2E_REQUIRED=1`.
    #[allow(clippy::print_stderr, reason = "a skipped test says why")]
    pub(crate) async fn start(seed: u64, args: &[&str]) -> Option<Self> {
        let kubeconfig = cluster::kubeconfig_path()?;
        let Some(binary) = std::env::var_os(FAULT_PROXY_ENV).filter(|v| !v.is_empty()) else {
            assert!(
                !std::env::var(cluster::REQUIRED_ENV)
                    .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
                "{FAULT_PROXY_ENV} is not set but {}=1: build it with tests/faultproxy/build",
                cluster::REQUIRED_ENV
            );
            eprintln!("SKIPPED: {FAULT_PROXY_ENV} is not set (tests/run sets it)");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = std::fs::File::create(dir.path().join("proxy.log")).expect("the proxy log");
        let ready = dir.path().join("ready.json");
        let child = Command::new(binary)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--out-kubeconfig")
            .arg(dir.path().join("kubeconfig"))
            .arg("--ready-file")
            .arg(&ready)
            .arg("--stats-file")
            .arg(dir.path().join("stats.json"))
            .args(["--seed", &seed.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the fault proxy starts");
        let mut proxy = Self {
            child,
            dir,
            admin: String::new(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let info: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&ready)
                && let Ok(info) = serde_json::from_str(&text)
            {
                break info;
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("the fault proxy exited ({status}): {}", proxy.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the fault proxy was not ready after 30s: {}",
                proxy.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        proxy.admin = info["admin"].as_str().expect("the admin URL").to_owned();
        Some(proxy)
    }

    /// The kubeconfig that goes through the proxy.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The decision log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    /// `METHOD path` on the admin API; the body of a 2xx answer.
    pub(crate) async fn admin(&self, method: &str, path: &str, body: &str) -> String {
        let address = self.admin.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("the proxy's admin API");
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
        assert!(
            head.split(' ').nth(1).is_some_and(|c| c.starts_with('2')),
            "{method} {path}: {reply}"
        );
        body.to_owned()
    }

    /// `GET /stats`.
    pub(crate) async fn stats(&self) -> Value {
        serde_json::from_str(&self.admin("GET", "/stats", "").await).expect("stats are JSON")
    }

    /// Stops the proxy (SIGTERM) and returns its last stats.
    pub(crate) async fn stop(mut self) -> Value {
        let stats = self.stats().await;
        if let Some(pid) = self.child.id() {
            // SIGTERM: the proxy heals partitions and closes watches.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        stats
    }
}

/// How many faults of `kind` the stats count.
pub(crate) fn faults(stats: &Value, kind: &str) -> u64 {
    stats["faults"][kind].as_u64().unwrap_or(0)
}

/// Writes (create, update, patch, delete) in the stats, by `verb resource`, without those on
/// resources `except` (e.g. `leases`).
#[allow(dead_code, reason = "the API for every e2e test module")]
pub(crate) fn writes(stats: &Value, except: &[&str]) -> Vec<(String, u64)> {
    let Some(all) = stats["byVerbResource"].as_object() else {
        return Vec::new();
    };
    all.iter()
        .filter_map(|(key, count)| {
            let (verb, resource) = key.split_once(' ')?;
            let write = matches!(
                verb,
                "create" | "update" | "patch" | "delete" | "deletecollection"
            );
            let excepted = except.iter().any(|e| resource.starts_with(e));
            (write && !excepted).then(|| (key.clone(), count.as_u64().unwrap_or(0)))
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}
