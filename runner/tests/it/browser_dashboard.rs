//! `rollout-runner dashboard` in a real browser against the test control plane: headless
//! Chromium driven by `playwright-core` (both from `tests/platforms/build chromium npm`, passed
//! by `tests/run` in `ROLLOUT_RUNNER_CHROMIUM` and `ROLLOUT_RUNNER_NPM`). A canary released by
//! `apply --wait` waits at an indefinite pause; the browser sees it Paused in the list and on
//! its page, clicks Promote, and sees it become Healthy, with no console error and no request
//! outside the dashboard; the cluster shows it Healthy and the runner that waited exits 0. A
//! POST without the page's token or with another Host is refused and changes nothing. A
//! screenshot is kept in `target/tmp/browser/`.
//!
//! Without the browser variables the test says loudly that it skips (with `CI=true` it
//! fails); without the cluster it follows `support::cluster` (skip, or fail when required).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::Api;
use rollout_runner::crd::Rollout;
use serde_json::{Value, json};

use crate::support::cluster::{self, TestNamespace, wait_until};

fn platform(variable: &str) -> Option<PathBuf> {
    std::env::var_os(variable)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `web`, two pods of `image`: `setWeight: 50`, then a pause until someone promotes.
fn manifest(dir: &Path, file: &str, image: &str) -> PathBuf {
    let rollout = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            },
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
        }
    });
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_string_pretty(&rollout).unwrap()).unwrap();
    path
}

/// A child process, killed when the test ends.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn runner(kubeconfig: &Path, namespace: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollout-runner"));
    command
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", namespace])
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .stdin(Stdio::null());
    command
}

const CHECK: &str = r#"
import { chromium } from 'PLAYWRIGHT';
const [executablePath, profile, base, rollout, screenshot] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(profile, {
  executablePath, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const page = await context.newPage();
const errors = [];
const foreign = [];
page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
page.on('pageerror', e => errors.push(String(e)));
page.on('request', r => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
await page.goto(base, { waitUntil: 'load' });
const row = page.locator(`tr[data-rollout="${rollout}"]`);
const listed = (await row.locator('.phase').textContent()).trim();
await row.locator('a').click();
await page.waitForSelector('#phase');
const before = (await page.textContent('#phase')).trim();
const steps = await page.$$eval('#steps tbody tr', rows => rows.length);
const charts = await page.$$eval('svg.chart', svgs => svgs.map(s => s.dataset.chart));
await page.click('button.promote');
await page.waitForFunction(() => document.querySelector('#phase')?.textContent.trim() === 'Healthy',
  null, { timeout: 90000 });
const result = (await page.textContent('#action-result')).trim();
const after = (await page.textContent('#phase')).trim();
const verdict = (await page.textContent('#outcome .verdict')).trim();
await page.screenshot({ path: screenshot, fullPage: true });
console.log(JSON.stringify({ listed, before, steps, charts, result, after, verdict, errors, foreign }));
await context.close();
"#;

#[tokio::test]
#[allow(clippy::print_stderr, reason = "a skipped test says why on stderr")]
async fn the_dashboard_promotes_a_paused_canary_in_chromium() {
    let (Some(chromium), Some(npm)) = (
        platform("ROLLOUT_RUNNER_CHROMIUM"),
        platform("ROLLOUT_RUNNER_NPM"),
    ) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: the browser test is mandatory; tests/run sets ROLLOUT_RUNNER_CHROMIUM and \
             ROLLOUT_RUNNER_NPM from `tests/platforms/build chromium npm`"
        );
        eprintln!(
            "\n*** SKIPPED the_dashboard_promotes_a_paused_canary_in_chromium: \
             ROLLOUT_RUNNER_CHROMIUM and ROLLOUT_RUNNER_NPM are not set \
             (tests/run sets them from `tests/platforms/build chromium npm`) ***\n"
        );
        return;
    };
    let Some(client) = cluster::client().await else {
        return;
    };
    let kubeconfig = cluster::kubeconfig_path().unwrap();
    let namespace = TestNamespace::create(&client, "dashboard").await;
    let ns = namespace.name().to_string();
    let dir = tempfile::tempdir().unwrap();

    let v1 = manifest(dir.path(), "v1.yaml", "registry.example/web:1");
    let mut first = runner(&kubeconfig, &ns, &["apply", v1.to_str().unwrap(), "--wait"]);
    first.args(["--timeout", "120s"]);
    let first = tokio::task::spawn_blocking(move || first.output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let v2 = manifest(dir.path(), "v2.yaml", "registry.example/web:2");
    let waiting = Background(
        runner(
            &kubeconfig,
            &ns,
            &["apply", v2.to_str().unwrap(), "--wait", "--timeout", "240s"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
    wait_until(&rollouts, "web", cluster::TIMEOUT, "paused", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| !s.pause_conditions.is_empty())
    })
    .await;

    let mut dashboard = Background(
        runner(&kubeconfig, &ns, &["dashboard", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = dashboard.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(60), line)
        .await
        .expect("the dashboard prints its URL within a minute")
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in `{line}`"))
        .to_string();

    // A write without the page's token, or through another host name, is refused.
    let http = reqwest::Client::new();
    let promote = format!("{base}api/rollouts/{ns}/web/promote");
    let refused = http.post(&promote).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let port = base.trim_end_matches('/').rsplit(':').next().unwrap();
    let rebound = http
        .post(&promote)
        .header("Host", format!("attacker.example:{port}"))
        .header("X-Rollout-Runner-Token", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 421);
    let get = http.get(&promote).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let still = rollouts.get("web").await.unwrap();
    assert!(
        !still.status.unwrap().pause_conditions.is_empty(),
        "a refused request changed nothing"
    );

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard-after-promote.png");
    let _ = std::fs::remove_file(&screenshot);
    let playwright = npm.join("node_modules/playwright-core/index.mjs");
    let script = dir.path().join("check.mjs");
    std::fs::write(
        &script,
        CHECK.replace("PLAYWRIGHT", &format!("file://{}", playwright.display())),
    )
    .unwrap();
    let mut node = Command::new(npm.join("bin/node"));
    node.arg(&script)
        .arg(&chromium)
        .arg(dir.path().join("profile"))
        .arg(&base)
        .arg(format!("{ns}/web"))
        .arg(&screenshot);
    let output = tokio::task::spawn_blocking(move || node.output().expect("node runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "playwright failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("the check's JSON");
    assert_eq!(seen["errors"], json!([]), "console errors: {seen:#}");
    assert_eq!(seen["foreign"], json!([]), "requests elsewhere: {seen:#}");
    assert_eq!(seen["listed"], "Paused", "{seen:#}");
    assert_eq!(seen["before"], "Paused", "{seen:#}");
    assert_eq!(seen["steps"], 2, "{seen:#}");
    assert!(
        seen["charts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "traffic"),
        "{seen:#}"
    );
    assert_eq!(seen["result"], "rollout 'web' promoted", "{seen:#}");
    assert_eq!(seen["after"], "Healthy", "{seen:#}");
    assert!(
        seen["verdict"].as_str().unwrap().starts_with("promoted"),
        "{seen:#}"
    );

    // The cluster agrees, and the runner that waited at the pause saw the promotion through.
    wait_until(&rollouts, "web", cluster::TIMEOUT, "healthy", |r| {
        r.status.as_ref().is_some_and(|s| {
            s.phase.map(|p| p.to_string()).as_deref() == Some("Healthy")
                && s.stable_rs == s.current_pod_hash
        })
    })
    .await;
    let mut waiting = waiting;
    let waited = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + cluster::TIMEOUT;
        loop {
            if let Some(status) = waiting.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "apply --wait did not end after the promotion"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    assert_eq!(waited, Some(0));
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "a screenshot of the dashboard ({size} bytes)"
    );
}
