//! Argo Rollouts' own code as a test oracle: `argo-oracle` (tests/oracle, built from the
//! `github.com/argoproj/argo-rollouts` module at the tracked release) answers JSON-line
//! requests with Argo's functions. `ROLLOUT_RUNNER_ARGO_ORACLE` names the binary (tests/run
//! builds it); without it a differential test says so and passes, unless
//! `ROLLOUT_RUNNER_E2E_REQUIRED=1` (CI).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value as Json;

/// The oracle process, one request and one answer per line.
pub(crate) struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    #[allow(clippy::print_stderr, reason = "a skipped test says why on stderr")]
    pub(crate) fn start() -> Option<Oracle> {
        let Ok(path) = std::env::var("ROLLOUT_RUNNER_ARGO_ORACLE") else {
            let required = std::env::var("ROLLOUT_RUNNER_E2E_REQUIRED").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "ROLLOUT_RUNNER_ARGO_ORACLE is not set (tests/oracle/build)"
            );
            eprintln!(
                "SKIPPED: ROLLOUT_RUNNER_ARGO_ORACLE is not set; build it with tests/oracle/build"
            );
            return None;
        };
        let mut child = Command::new(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the oracle {path}: {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Some(Oracle {
            child,
            stdin,
            stdout,
        })
    }

    pub(crate) fn ask(&mut self, request: &Json) -> Json {
        writeln!(self.stdin, "{request}").expect("oracle stdin");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("oracle stdout");
        let answer: Json = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("oracle answered {line:?} to {request}: {e}"));
        assert_eq!(answer["ok"], true, "oracle refused {request}: {answer}");
        answer
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small deterministic generator (xorshift64*), so a failing case is reproducible by seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}
