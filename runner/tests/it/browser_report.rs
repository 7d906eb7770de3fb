//! The HTML report in a real browser: headless Chromium (Debian's `chromium`) driven by
//! Playwright (`playwright-core`, launched with `executablePath`), both provided by
//! `tests/platforms/build chromium npm`, whose paths `tests/run` passes in
//! `ROLLOUT_RUNNER_CHROMIUM` and `ROLLOUT_RUNNER_NPM`. The report of a recorded abort renders
//! with no console error and no request, its charts have one point per recorded sample, and a
//! screenshot is kept in `target/tmp/browser/`.
//!
//! Without those variables the test says loudly that it skips; with `CI=true` it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

fn platform(variable: &str) -> Option<PathBuf> {
    std::env::var_os(variable)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn rollout_runner(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rollout-runner"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .output()
        .expect("the binary runs")
}

const CHECK: &str = r#"
import { chromium } from 'PLAYWRIGHT';
const [executablePath, profile, page_url, screenshot] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(profile, {
  executablePath, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const page = await context.newPage();
const errors = [];
const requests = [];
page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
page.on('pageerror', e => errors.push(String(e)));
page.on('request', r => { if (r.url() !== page_url) requests.push(r.url()); });
await page.goto(page_url, { waitUntil: 'load' });
const charts = await page.$$eval('svg.chart', svgs => svgs.map(svg => {
  const box = svg.getBoundingClientRect();
  return {
    id: svg.dataset.chart,
    declared: Number(svg.dataset.points),
    points: svg.querySelectorAll('circle.point').length,
    failed: svg.querySelectorAll('circle.point.failed').length,
    width: box.width, height: box.height,
  };
}));
const verdict = await page.textContent('#outcome .verdict');
const steps = await page.$$eval('#steps tbody tr', rows => rows.map(r => r.className));
await page.screenshot({ path: screenshot, fullPage: true });
console.log(JSON.stringify({ title: await page.title(), verdict, charts, steps, errors, requests }));
await context.close();
"#;

#[test]
#[allow(clippy::print_stderr, reason = "a skipped test says why on stderr")]
fn the_report_of_a_recorded_abort_renders_in_chromium() {
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
            "\n*** SKIPPED the_report_of_a_recorded_abort_renders_in_chromium: \
             ROLLOUT_RUNNER_CHROMIUM and ROLLOUT_RUNNER_NPM are not set \
             (tests/run sets them from `tests/platforms/build chromium npm`) ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/canary-analysis-fails");
    let recorded = rollout_runner(
        dir.path(),
        &[
            "simulate",
            example.to_str().unwrap(),
            "--record",
            "record.json",
        ],
    );
    assert_eq!(recorded.status.code(), Some(1), "the example aborts");
    let rendered = rollout_runner(
        dir.path(),
        &["report", "record.json", "--html", "report.html"],
    );
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let record = crate::records::read_json(&dir.path().join("record.json"));
    let count = |key: &str| record[key].as_array().unwrap().len();

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("report-of-an-abort.png");
    let _ = std::fs::remove_file(&screenshot);
    let playwright = npm.join("node_modules/playwright-core/index.mjs");
    let script = dir.path().join("check.mjs");
    std::fs::write(
        &script,
        CHECK.replace("PLAYWRIGHT", &format!("file://{}", playwright.display())),
    )
    .unwrap();
    let page = format!("file://{}", dir.path().join("report.html").display());
    let output = Command::new(npm.join("bin/node"))
        .arg(&script)
        .arg(&chromium)
        .arg(dir.path().join("profile"))
        .arg(&page)
        .arg(&screenshot)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "playwright failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("the check's JSON");
    assert_eq!(
        seen["errors"],
        serde_json::json!([]),
        "console errors: {seen:#}"
    );
    assert_eq!(
        seen["requests"],
        serde_json::json!([]),
        "the report fetched: {seen:#}"
    );
    assert!(
        seen["verdict"].as_str().unwrap().starts_with("aborted"),
        "{seen:#}"
    );
    let chart = |id: &str| {
        seen["charts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no chart `{id}`: {seen:#}"))
            .clone()
    };
    let metric = chart("metric-success-rate");
    assert_eq!(metric["points"], count("measurements"), "{metric:#}");
    assert_eq!(
        metric["failed"], 2,
        "the two failed measurements: {metric:#}"
    );
    assert_eq!(chart("traffic")["points"], count("traffic"));
    // Updated and available pods: one point each per sample.
    assert_eq!(chart("replicas")["points"], 2 * count("pods"));
    for chart in seen["charts"].as_array().unwrap() {
        assert!(
            chart["width"].as_f64().unwrap() > 300.0 && chart["height"].as_f64().unwrap() > 50.0,
            "chart laid out: {chart:#}"
        );
    }
    let steps: Vec<&str> = seen["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 8);
    assert_eq!(steps.iter().filter(|s| s.contains("failed")).count(), 1);
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "a screenshot of the report ({size} bytes)");
}
