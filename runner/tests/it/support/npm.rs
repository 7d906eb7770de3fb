//! The npm prefix `tests/platforms/build npm` fills (GitHub's OpenAPI description and example
//! webhook payloads, `gitlab-ci-local`, Node 22): from `ROLLOUT_RUNNER_NPM`, else asked of
//! `tests/platforms/build --cached npm` (which only looks). Missing: the calling test skips
//! with a message, or fails when `ROLLOUT_RUNNER_E2E_REQUIRED=1` or `CI=true`.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The npm prefix (it holds `node_modules/` and `bin/`).
pub(crate) const NPM_ENV: &str = "ROLLOUT_RUNNER_NPM";

fn required() -> bool {
    std::env::var(super::cluster::REQUIRED_ENV).is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| matches!(v.as_str(), "true" | "1"))
}

/// The prefix, or `None` after a message (the test returns early). Panics when required.
#[allow(clippy::print_stderr, reason = "a skipped test says why on stderr")]
pub(crate) fn prefix() -> Option<PathBuf> {
    static PREFIX: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = PREFIX.get_or_init(|| {
        if let Some(dir) = std::env::var_os(NPM_ENV).filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let output = std::process::Command::new(root.join("tests/platforms/build"))
            .args(["--cached", "npm"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .find_map(|line| line.strip_prefix("npm="))
            .map(PathBuf::from)
    });
    if found.is_none() {
        assert!(
            !required(),
            "the npm packages are missing (run `tests/platforms/build npm`, or set {NPM_ENV})"
        );
        eprintln!(
            "SKIPPED: the npm packages are not cached (tests/platforms/build npm builds them; \
             CI runs this test)"
        );
    }
    found.clone()
}

/// A file inside `node_modules/`, read as JSON.
pub(crate) fn read_json(prefix: &std::path::Path, path: &str) -> serde_json::Value {
    let file = prefix.join("node_modules").join(path);
    let text = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}
