//! The pure crates stay pure: no Kubernetes client, async runtime, HTTP, filesystem or clock,
//! neither in their dependency tree nor in their own code. The layers are a fact the build
//! checks, not a comment.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates that must stay pure, and their source directories (from this crate's directory).
const PURE: &[(&str, &str)] = &[
    ("rollout-runner-api", "../api/src"),
    ("rollout-runner-expr", "../expr/src"),
    ("rollout-runner-judge", "../judge/src"),
    ("rollout-runner-core", "src"),
];

/// Crates that do I/O: a client, a runtime, a network stack, TLS, a filesystem walker.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "kube",
    "kube-client",
    "kube-runtime",
    "reqwest",
    "hyper",
    "hyper-util",
    "h2",
    "tower",
    "rustls",
    "native-tls",
    "openssl",
    "git2",
    "tempfile",
    "walkdir",
    "ignore",
    "notify",
    "aws-config",
    "aws-smithy-runtime",
    "tracing-subscriber",
];

/// Calls that reach outside the inputs: the filesystem, the environment, processes, the
/// network, the clock, sleeping.
const IMPURE_CALLS: &[&str] = &[
    "std::fs",
    "std::env",
    "std::process::Command",
    "process::exit",
    "std::net",
    "std::thread::sleep",
    "Timestamp::now",
    "Zoned::now",
    "SystemTime",
    "Instant::now",
    "tokio::",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_pure_crates_depend_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (name, _) in PURE {
        let output = Command::new(&cargo)
            .current_dir(crate_dir())
            .args([
                "tree",
                "--offline",
                "--locked",
                "-e",
                "normal",
                "--prefix",
                "none",
            ])
            .args(["--format", "{p}", "-p", name])
            .output()
            .expect("cargo tree runs");
        assert!(
            output.status.success(),
            "cargo tree -p {name} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
        let crates: Vec<&str> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(
            crates.len() > 3,
            "{name}: cargo tree printed too little:\n{tree}"
        );
        let io: Vec<&&str> = IO_CRATES.iter().filter(|c| crates.contains(c)).collect();
        assert!(
            io.is_empty(),
            "{name} depends on I/O crates {io:?}:\n{tree}"
        );
    }
}

/// Every `.rs` file under `dir`, with the test code cut off (everything from the first
/// `#[cfg(test)]`, and files named `tests.rs`).
fn non_test_sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).expect("source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            non_test_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            let text = std::fs::read_to_string(&path).expect("source file");
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            out.push((path, code));
        }
    }
}

#[test]
fn the_pure_crates_call_no_clock_filesystem_or_network() {
    for (name, dir) in PURE {
        let mut files = Vec::new();
        non_test_sources(&crate_dir().join(dir), &mut files);
        assert!(!files.is_empty(), "{name}: no sources found in {dir}");
        for (path, code) in files {
            for (number, line) in code.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                for call in IMPURE_CALLS {
                    assert!(
                        !line.contains(call),
                        "{}:{}: `{call}` in a pure crate ({name}): {line}",
                        path.display(),
                        number + 1
                    );
                }
            }
        }
    }
}
