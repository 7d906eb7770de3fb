//! Differential test: the condition language against Argo Rollouts' own `EvaluateResult`.
//!
//! Argo's Go code is the oracle (`tests/oracle`, `argo-oracle` built from the
//! `github.com/argoproj/argo-rollouts` module at the tracked release). Generated conditions and
//! results go to both; the phase must agree, and for an `Error` the measurement message too.
//! `ROLLOUT_RUNNER_ARGO_ORACLE` names the oracle binary (tests/run builds it); without it the
//! test says so and passes, unless `ROLLOUT_RUNNER_E2E_REQUIRED=1` (CI). `ORACLE_CASES` and
//! `ORACLE_SEED` widen the run (the long run is `tests/bench/oracle`).

#![allow(clippy::print_stderr)] // a skipped differential run says so on stderr

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use jiff::Timestamp;
use rollout_runner_expr::{Value, evaluate_result};
use serde_json::{Value as Json, json};

/// The oracle process, one request and one answer per line.
struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    fn start() -> Option<Oracle> {
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

    fn ask(&mut self, request: &Json) -> Json {
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
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A result as a provider hands it to Argo: its JSON, the oracle's `resultType`, and ours.
fn results() -> Vec<(Json, &'static str, Value)> {
    let mut out = Vec::new();
    let json_results = [
        json!([]),
        json!([0.5]),
        json!([1.0, 2.0, 3.0]),
        json!(0.97),
        json!(0.0),
        json!(2.0),
        json!("2"),
        json!("abc"),
        json!(true),
        json!(null),
        json!({"x": 1.0}),
        json!({"x": "a"}),
        json!([{"x": 1.0}]),
    ];
    for r in json_results {
        let ours = json_value(&r);
        out.push((r, "json", ours));
    }
    let prometheus = [
        (json!([]), Value::Vector(vec![])),
        (json!([0.5]), Value::Vector(vec![0.5])),
        (json!([0.99, 0.2]), Value::Vector(vec![0.99, 0.2])),
        (json!(0.97), Value::Float(0.97)),
        (json!("NaN"), Value::Float(f64::NAN)),
        (json!("+Inf"), Value::Float(f64::INFINITY)),
    ];
    for (r, ours) in prometheus {
        out.push((r, "prometheus", ours));
    }
    out.push((json!(null), "datadog", Value::Nil));
    out.push((json!(0.97), "datadog", Value::Float(0.97)));
    out
}

/// What `encoding/json` gives for `any`: every number a float64.
fn json_value(j: &Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Float(n.as_f64().expect("number")),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(json_value).collect()),
        Json::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), json_value(v))).collect()),
    }
}

const OPERANDS: &[&str] = &[
    "result",
    "result[0]",
    "result[1]",
    "result[-1]",
    "len(result)",
    "asInt(result)",
    "asFloat(result)",
    "default(result, 0)",
    "result.x",
    "0",
    "1",
    "0.5",
    "0.95",
    "-1",
    "nil",
    "\"2\"",
    "true",
];
const PREDICATES: &[&str] = &[
    "isNaN(result)",
    "isInf(result)",
    "isNil(result)",
    "result",
    "true",
    "false",
    "len(result) == 0",
    "len(result) > 0",
    "all(result, {# > 0.5})",
    "any(result, {# > 0.5})",
];
const COMPARISONS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

fn condition(rng: &mut Rng, depth: u32) -> String {
    match rng.below(if depth == 0 { 2 } else { 5 }) {
        0 => format!(
            "{} {} {}",
            rng.pick(OPERANDS),
            rng.pick(COMPARISONS),
            rng.pick(OPERANDS)
        ),
        1 => rng.pick(PREDICATES).to_string(),
        2 => format!("!({})", condition(rng, depth - 1)),
        3 => format!(
            "{} && {}",
            condition(rng, depth - 1),
            condition(rng, depth - 1)
        ),
        _ => format!(
            "{} || {}",
            condition(rng, depth - 1),
            condition(rng, depth - 1)
        ),
    }
}

#[test]
fn conditions_agree_with_argo() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let cases: usize = std::env::var("ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("ORACLE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut rng = Rng(seed.max(1));
    let results = results();
    let now = Timestamp::from_second(1_700_000_000).expect("timestamp");
    // Disagreements by class (our phase, Argo's phase), with the shortest example of each.
    let mut classes: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    for _ in 0..cases {
        let (result, result_type, ours) = &results[rng.below(results.len())];
        let success = condition(&mut rng, 2);
        let failure = if rng.below(3) == 0 {
            condition(&mut rng, 1)
        } else {
            String::new()
        };
        let argo = oracle.ask(&json!({
            "op": "evaluate",
            "result": result,
            "resultType": result_type,
            "successCondition": success,
            "failureCondition": failure,
        }));
        let assessment = evaluate_result(ours, Some(&success), Some(&failure), now);
        let argo_phase = argo["phase"].as_str().unwrap_or("?").to_string();
        let our_phase = assessment.phase.as_str().to_string();
        let agree = our_phase == argo_phase
            && (our_phase != "Error" || assessment.message.as_deref() == argo["error"].as_str());
        if !agree {
            let example = format!(
                "result {result} ({result_type}), success `{success}`, failure `{failure}`: \
                 ours {our_phase} {:?}, Argo {argo_phase} {}",
                assessment.message, argo["error"]
            );
            let entry = classes
                .entry((our_phase, argo_phase))
                .or_insert((0, example.clone()));
            entry.0 += 1;
            if example.len() < entry.1.len() {
                entry.1 = example;
            }
        }
    }
    let total: usize = classes.values().map(|(n, _)| n).sum();
    let report: Vec<String> = classes
        .iter()
        .map(|((ours, argo), (n, example))| format!("{n} × ours {ours} / Argo {argo}: {example}"))
        .collect();
    assert!(
        total == 0,
        "{total} of {cases} generated cases disagree with Argo (seed {seed}):\n{}",
        report.join("\n")
    );
}
