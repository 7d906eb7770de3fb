//! Properties of the condition language: evaluation never panics, whatever the expression
//! and the result; and a quick timing of evaluation (`--ignored`).

use proptest::prelude::*;
use rollout_runner_expr::{
    AnalysisPhase, Condition, Value, check_condition, evaluate_result, evaluate_time,
};

fn now() -> jiff::Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            -2.0..2.0f64
        ]
        .prop_map(Value::Float),
        "[a-z0-9 ]{0,6}".prop_map(Value::String),
        prop::collection::vec(any::<f64>(), 0..4).prop_map(Value::Vector),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..4)
                .prop_map(|kv| Value::Map(kv.into_iter().collect())),
        ]
    })
}

/// Tokens of the language, so that random expressions get past the lexer often.
const TOKENS: &[&str] = &[
    "result",
    "result[0]",
    "result.a",
    "#",
    "#index",
    ".a",
    "1",
    "0.5",
    "-1",
    "'x'",
    "nil",
    "true",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "?",
    "??",
    "?.",
    "+",
    "-",
    "*",
    "/",
    "%",
    "**",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "!",
    "not",
    "in",
    "not in",
    "contains",
    "matches",
    "..",
    "|",
    "len(",
    "all(",
    "any(",
    "filter(",
    "map(",
    "count(",
    "sum(",
    "reduce(",
    "sortBy(",
    "max(",
    "mean(",
    "first(",
    "last(",
    "keys(",
    "isNaN(",
    "isInf(",
    "isNil(",
    "default(",
    "asInt(",
    "asFloat(",
    "string(",
    "int(",
    "float(",
    "abs(",
    "split(",
    "join(",
    "upper(",
    "now()",
    "duration('1h')",
    "date('2024-01-01')",
    "let x = 1;",
    "x",
    "toJSON(",
    "fromJSON(",
    "repeat(",
    "1..5",
    "1..100000000",
    "sort(",
    "flatten(",
];

fn token_expr() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 1..14).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_token_soup(expr in token_expr(), failure in token_expr(), result in value()) {
        let a = evaluate_result(&result, Some(&expr), Some(&failure), now());
        prop_assert!(matches!(
            a.phase,
            AnalysisPhase::Successful
                | AnalysisPhase::Failed
                | AnalysisPhase::Inconclusive
                | AnalysisPhase::Error
        ));
        prop_assert_eq!(a.phase == AnalysisPhase::Error, a.message.is_some());
        let _ = check_condition(&expr);
        let _ = evaluate_time(&expr, now());
    }

    #[test]
    fn never_panics_on_arbitrary_text(expr in "\\PC{0,40}", result in value()) {
        let _ = evaluate_result(&result, Some(&expr), None, now());
        let _ = check_condition(&expr);
    }

    #[test]
    fn displayed_values_parse_back(result in value()) {
        let text = result.to_string();
        let back = Value::parse(&text);
        prop_assert!(back.is_ok(), "{} did not parse back", text);
    }
}

/// Times 100k evaluations of a typical Prometheus condition pair.
/// `cargo test --release --test it -- --ignored --nocapture evaluation_speed`
#[test]
#[ignore = "timing, not a check: run with --ignored --nocapture"]
#[allow(clippy::print_stdout)]
fn evaluation_speed() {
    let result = Value::Vector(vec![0.97]);
    let cases = [
        ("result[0] >= 0.95", "result[0] < 0.9"),
        (
            "len(result) > 0 && all(result, {# >= 0.95})",
            "any(result, isNaN(#) || # < 0.9)",
        ),
    ];
    for (success, failure) in cases {
        let n = 100_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            let a = evaluate_result(&result, Some(success), Some(failure), now());
            assert_eq!(a.phase, AnalysisPhase::Successful);
        }
        let elapsed = start.elapsed();
        println!(
            "evaluate_result x{n} ({success:?}, {failure:?}): {elapsed:?} ({:.2} µs each)",
            elapsed.as_secs_f64() * 1e6 / f64::from(n)
        );
        // The engine can parse once and evaluate many times, without explanations.
        let condition = Condition::parse(success).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..n {
            assert_eq!(condition.evaluate(&result, now()), Ok(true));
        }
        let elapsed = start.elapsed();
        println!(
            "Condition::evaluate x{n} ({success:?}): {elapsed:?} ({:.2} µs each)",
            elapsed.as_secs_f64() * 1e6 / f64::from(n)
        );
    }
}
