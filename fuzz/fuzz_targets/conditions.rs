//! The condition language: a success condition, a failure condition and a measurement's
//! result, all arbitrary. Split on NUL bytes: `success\0failure\0result-json`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollout_runner_expr::{Value, check_condition, evaluate_result, evaluate_time};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let success = parts.next().unwrap_or("");
    let failure = parts.next();
    let result = parts
        .next()
        .and_then(|json| Value::parse(json).ok())
        .unwrap_or_else(|| Value::parse("[0.5]").expect("a literal value"));
    let now: jiff::Timestamp = "2024-05-01T12:00:00Z".parse().expect("a timestamp");
    let _ = evaluate_result(&result, Some(success), failure, now);
    let _ = check_condition(success);
    let _ = evaluate_time(success, now);
});
