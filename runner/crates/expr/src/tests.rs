//! Table tests: Argo's own cases (`utils/evaluate/evaluate_test.go`, the Prometheus and
//! Datadog provider tests), then expr-lang's operators and builtins as Argo users write them.

use super::*;

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

fn v(text: &str) -> Value {
    Value::parse(text).unwrap()
}

fn eval(result: &Value, condition: &str) -> Result<bool, String> {
    evaluate_condition(result, condition, now()).map_err(|e| e.to_string())
}

fn phase(result: &Value, success: &str, failure: &str) -> AnalysisPhase {
    evaluate_result(result, Some(success), Some(failure), now()).phase
}

use AnalysisPhase::{Error, Failed, Inconclusive, Successful};

/// `TestEvaluateResult*` in evaluate_test.go: the truth table, with `result = true`.
#[test]
fn argo_truth_table() {
    let t = Value::Bool(true);
    let cases = [
        ("true", "false", Successful),
        ("true", "true", Failed),
        ("false", "false", Inconclusive),
        ("", "false", Successful),
        ("false", "", Failed),
        ("", "", Successful),
        ("a == true", "true", Error),
        ("true", "a == true", Error),
        // Beyond Argo's table: the other half of each single-condition case.
        ("true", "", Successful),
        ("", "true", Failed),
        ("false", "true", Failed),
    ];
    for (s, f, want) in cases {
        assert_eq!(phase(&t, s, f), want, "success {s:?}, failure {f:?}");
    }
    let none = evaluate_result(&t, None, None, now());
    assert_eq!(none.phase, Successful);
    assert_eq!(none.message, None);
}

/// `TestEvaluateCondition*`, `TestErrorWith*`, `TestEvaluate*` in evaluate_test.go.
#[test]
fn argo_eval_condition() {
    let apdex = Value::from(serde_json::json!({
        "service_apdex": {"label": null, "values": {"values": [2, 2]}}
    }));
    let cases: Vec<(Value, &str, Result<bool, &str>)> = vec![
        (Value::Bool(true), "result == true", Ok(true)),
        (Value::Bool(true), "result == false", Ok(false)),
        (Value::Bool(true), "1", Err("expected bool, but got int")),
        (
            Value::Bool(true),
            "invalidVariable",
            Err("unknown name invalidVariable"),
        ),
        (
            apdex,
            "all(result.service_apdex.values.values, {# > 1})",
            Ok(true),
        ),
        (Value::Vector(vec![2.0, 2.0]), "2 in result", Ok(true)),
        (Value::Float(5.0), "result > 1", Ok(true)),
        (
            Value::Bool(true),
            "result.Name() == 'hi'",
            Err("type bool has no method Name"),
        ),
        (
            Value::from("1.1"),
            "asInt(result) == 1.1",
            Err(r#"strconv.ParseInt: parsing "1.1": invalid syntax"#),
        ),
        (Value::from("1"), "asInt(result) == 1", Ok(true)),
        (Value::Int(1), "asInt(result) == 1", Ok(true)),
        (Value::Float(1.123), "asInt(result) == 1", Ok(true)),
        (
            Value::from("NotANum"),
            "asFloat(result) == 1.1",
            Err(r#"strconv.ParseFloat: parsing "NotANum": invalid syntax"#),
        ),
        (
            Value::from("1.1"),
            r#"asFloat(result) == "1.1""#,
            Err("invalid operation: == (mismatched types float64 and string)"),
        ),
        (Value::from("1.1"), "asFloat(result) == 1.1", Ok(true)),
        (Value::from("1.1"), "asFloat(result) >= 1.1", Ok(true)),
        (Value::from("1.1"), "asFloat(result) <= 1.1", Ok(true)),
        (Value::Float(1.1), "asFloat(result) == 1.1", Ok(true)),
        (Value::Int(1), "asFloat(result) == 1", Ok(true)),
        (Value::Int(1), "asFloat(result) >= 1", Ok(true)),
        // TestAsInt / TestAsFloat: the panicking inputs become evaluation errors.
        (
            Value::from("notint"),
            "asInt(result) == 1",
            Err(r#"strconv.ParseInt: parsing "notint": invalid syntax"#),
        ),
        (
            Value::from("notfloat"),
            "asFloat(result) == 1",
            Err(r#"strconv.ParseFloat: parsing "notfloat": invalid syntax"#),
        ),
        // TestIsInf.
        (Value::Float(f64::INFINITY), "isInf(result)", Ok(true)),
        (Value::Float(0.0), "isInf(result)", Ok(false)),
        // TestDefaultFunc and TestIsNilFunc: both look at the raw result.
        (Value::Nil, "default(result, 0) == 0", Ok(true)),
        (Value::Nil, "default(result, 1) == 1", Ok(true)),
        (Value::Nil, "default(result, 2) == 2", Ok(true)),
        (Value::Float(1.0), "default(result, 0) == 1", Ok(true)),
        (Value::Nil, "isNil(result)", Ok(true)),
        (Value::Float(1.0), "isNil(result)", Ok(false)),
        (v(r#"["hi", "hello"]"#), "isNil(result)", Ok(false)),
        (Value::Int(1), "isNil(result)", Ok(false)),
        (Value::Bool(false), "isNil(result)", Ok(false)),
    ];
    for (result, condition, want) in cases {
        let got = eval(&result, condition);
        assert_eq!(
            got.as_ref().map(|b| *b).map_err(String::as_str),
            want,
            "{condition} with {result}"
        );
    }
}

/// `metricproviders/prometheus/prometheus_test.go`: scalars, NaN, +Inf and vectors.
#[test]
fn argo_prometheus_cases() {
    let cases = [
        ("10", "result == 10", "result != 10", Successful),
        ("NaN", "result >= 0.9", "result < 0.9", Inconclusive),
        ("NaN", "result >= 0.9 || isNaN(result)", "", Successful),
        ("NaN", "result >= 0.9", "", Failed),
        ("+Inf", "result >= 0.9", "", Successful),
        ("+Inf", "", "isInf(result)", Failed),
        ("[10, 11]", "10 in result", "len(result) != 2", Successful),
    ];
    for (result, s, f, want) in cases {
        assert_eq!(phase(&v(result), s, f), want, "{s:?}/{f:?} with {result}");
    }
}

/// `metricproviders/datadog/datadog_test.go`: `default()` when there is no data.
#[test]
fn argo_datadog_default_cases() {
    let data = Value::Float(0.006_121_378_742_186_943);
    assert_eq!(phase(&data, "default(result, 0) < 0.05", ""), Successful);
    let a = evaluate_result(&Value::Nil, Some("result < 0.05"), None, now());
    assert_eq!(a.phase, Error);
    assert_eq!(
        a.message.as_deref(),
        Some(
            r#"could not evaluate successCondition "result < 0.05": metric result is nil or empty: no data returned from the metric provider"#
        )
    );
    assert_eq!(
        phase(&Value::Nil, "default(result, 0) < 0.05", ""),
        Successful
    );
    assert_eq!(phase(&Value::Nil, "default(result, 1) < 0.05", ""), Failed);
}

/// `metricproviders/webmetric/webmetric_test.go`: the condition cases (JSON decoded as Go
/// decodes it: numbers are float64, arrays `[]interface {}`); New Relic's `result.count`;
/// and a Datadog metric plugin's parity test, which runs Argo's `EvaluateResult` itself.
#[test]
fn argo_web_and_other_provider_cases() {
    let body = serde_json::json!({"a": 1, "b": true, "c": [1, 2, 3, 4], "d": null});
    let map = serde_json::json!({"num": 1.2, "bool": true, "mapfield": {"foo": "bar"}});
    let map_s = r#"result.num > 1.1 && result.bool && result.mapfield.foo == "bar""#;
    let cases: Vec<(serde_json::Value, &str, &str, AnalysisPhase)> = vec![
        (
            body.clone(),
            "result.a > 0 && result.b && all(result.c, {# < 5}) && result.d == nil",
            "",
            Successful,
        ),
        (
            body,
            "result.a >= 2 && result.b && all(result.c, {# < 5}) && result.d == nil",
            "result.a <= 0 && result.b && all(result.c, {# < 5}) && result.d == nil",
            Inconclusive,
        ),
        (
            "1".into(),
            "asInt(result) > 0",
            "asInt(result) <= 0",
            Successful,
        ),
        (
            "0".into(),
            "asInt(result) > 0",
            "asInt(result) <= 0",
            Failed,
        ),
        (
            "1.2".into(),
            "asFloat(result) > 1.1",
            "asFloat(result) <= 0",
            Successful,
        ),
        (
            "1.2".into(),
            "asFloat(result) > 1.1",
            "asFloat(result) < 1.3",
            Failed,
        ),
        (1.into(), "result > 0", "result <= 0", Successful),
        (0.into(), "result > 0", "result <= 0", Failed),
        (1.1.into(), "result > 0", "result <= 0", Successful),
        ((-1.1).into(), "result > 0", "result <= 0", Failed),
        (
            "true".into(),
            r#"result == "true""#,
            r#"result == "false""#,
            Successful,
        ),
        (
            "true".into(),
            r#"result == "true""#,
            r#"result == "true""#,
            Failed,
        ),
        (true.into(), "result == true", "result == false", Successful),
        (false.into(), "result == true", "result == false", Failed),
        (
            serde_json::json!([1, 2, 3, 4, 5, 6]),
            "any(result, {# > 5})",
            "",
            Successful,
        ),
        (
            serde_json::json!([1, 2, 3, 4, 5, 6]),
            "any(result, {# > 6})",
            "",
            Failed,
        ),
        (map.clone(), map_s, "", Successful),
        (map, map_s, map_s, Failed),
        (serde_json::json!({}), "true", "", Successful),
        (
            serde_json::json!({
                "counts": {"status": [{"name": "Alert", "count": 0}, {"name": "OK", "count": 3}]},
                "groups": [],
                "metadata": {"total_count": 3}
            }),
            "result.counts.status == nil || any(result.counts.status, {.name != 'Alert'})",
            "any(result.counts.status, {.name == 'Alert' && .count > 0})",
            Successful,
        ),
    ];
    for (json, s, f, want) in cases {
        let result = Value::from(&json);
        assert_eq!(phase(&result, s, f), want, "{s:?}/{f:?} with {json}");
    }
    // New Relic hands over Go maps with `int` values.
    let nr = Value::Map(
        [("count".to_string(), Value::Int(10))]
            .into_iter()
            .collect(),
    );
    assert_eq!(
        phase(&nr, "result.count == 10", "result.count != 10"),
        Successful
    );
}

#[test]
fn empty_results() {
    let empty = Value::Vector(vec![]);
    let a = evaluate_result(&empty, Some("result[0] >= 0.95"), None, now());
    assert_eq!(a.phase, Error);
    assert_eq!(
        a.message.as_deref(),
        Some(
            r#"could not evaluate successCondition "result[0] >= 0.95": metric result is nil or empty: no data returned from the metric provider"#
        )
    );
    // `&&` and `||` short-circuit left to right, so a guard works (Argo v1.10.2, tests/oracle).
    assert_eq!(
        phase(&empty, "len(result) > 0 && result[0] >= 0.95", ""),
        Failed
    );
    assert_eq!(
        phase(&empty, "len(result) == 0 || result[0] >= 0.95", ""),
        Successful
    );
    assert_eq!(
        phase(&empty, "result[0] >= 0.95 || len(result) == 0", ""),
        Error
    );
    assert_eq!(
        eval(&empty, "result[0] >= 0.95"),
        Err("index out of range: 0 (array length is 0)".to_string())
    );
    // expr folds constants before running: the left side is never evaluated.
    assert_eq!(phase(&empty, "result[0] >= 0.95 || true", ""), Successful);
    assert_eq!(phase(&empty, "result[0] >= 0.95 && false", ""), Failed);
    assert_eq!(
        phase(&empty, "result[0] >= 0.95 && !(1 + 1 == 3)", ""),
        Error
    );
    // Conditions that do not index are fine.
    assert_eq!(phase(&empty, "len(result) == 0", ""), Successful);
    assert_eq!(phase(&empty, "all(result, # < 1)", ""), Successful);
    assert_eq!(phase(&empty, "any(result, # < 1)", ""), Failed);
    // A failing failureCondition on no data: Error, with the failureCondition named.
    let a = evaluate_result(&Value::Nil, Some("true"), Some("result > 1"), now());
    assert_eq!(a.phase, Error);
    assert!(a.message.as_deref().unwrap().starts_with(
        r#"could not evaluate failureCondition "result > 1": metric result is nil or empty"#
    ));
    // An empty string is not "nil or empty": the expression's own error (Argo v1.10.2).
    let a = evaluate_result(&Value::from(""), Some("result[0] == 'a'"), None, now());
    assert_eq!(
        a.message.as_deref(),
        Some(
            r#"could not evaluate successCondition "result[0] == 'a'": type string[int] is undefined"#
        )
    );
    // Syntax errors on no data get the no-data message, as in Argo.
    let a = evaluate_result(&Value::Nil, Some("result >"), None, now());
    assert!(
        a.message
            .unwrap()
            .ends_with("no data returned from the metric provider")
    );
}

#[test]
fn nan_and_infinity_stay_floats() {
    let nan = v("NaN");
    for (condition, want) in [
        ("isNaN(result)", true),
        ("result == result", false),
        ("result != result", true),
        ("result > 0", false),
        ("result < 0", false),
        ("result >= 0 || result <= 0", false),
        ("!(result > 0.9)", true),
        ("isInf(result)", false),
    ] {
        assert_eq!(eval(&nan, condition), Ok(want), "{condition}");
    }
    let vec = v("[1, NaN, -Inf]");
    for (condition, want) in [
        ("isNaN(result[1])", true),
        ("isInf(result[2])", true),
        ("result[2] < -1e308", true),
        ("any(result, isNaN(#))", true),
        ("all(result, {# > 0})", false),
        ("len(filter(result, !isNaN(#))) == 2", true),
        ("count(result, # == #) == 2", true),
        ("isNaN(sum(result))", true),
        ("isInf(min(result))", true),
    ] {
        assert_eq!(eval(&vec, condition), Ok(want), "{condition}");
    }
    assert_eq!(eval(&v("+Inf"), "result > 1e308"), Ok(true));
    assert_eq!(eval(&v("-Inf"), "result < 0 && isInf(result)"), Ok(true));
}

#[test]
fn closures_in_both_forms() {
    let r = v("[0.91, 0.97, 0.99]");
    for (condition, want) in [
        ("all(result, {# > 0.9})", true),
        ("all(result, # > 0.9)", true),
        ("any(result, # > 0.98)", true),
        ("none(result, # < 0.5)", true),
        ("one(result, # > 0.98)", true),
        ("one(result, # > 0.9)", false),
        ("len(filter(result, # > 0.95)) == 2", true),
        ("map(result, # * 2)[0] == 1.82", true),
        ("count(result, {# >= 0.97}) == 2", true),
        ("sum(result) > 2.8", true),
        ("find(result, # > 0.95) == 0.97", true),
        ("findIndex(result, # > 0.95) == 1", true),
        ("findLast(result, # > 0.95) == 0.99", true),
        ("findLastIndex(result, # > 0.95) == 2", true),
        ("result | all(# > 0.9)", true),
        ("map(result, #index)[2] == 2", true),
        ("reduce(result, #acc + #, 0) > 2.8", true),
        ("sortBy(result, -#)[0] == 0.99", true),
    ] {
        assert_eq!(eval(&r, condition), Ok(want), "{condition}");
    }
    let web = v(r#"{"pods": [{"name": "a", "ready": true}, {"name": "b", "ready": false}]}"#);
    assert_eq!(eval(&web, "all(result.pods, .ready)"), Ok(false));
    assert_eq!(eval(&web, "any(result.pods, {.name == 'b'})"), Ok(true));
    assert_eq!(
        eval(&web, "filter(result.pods, .ready)[0].name == 'a'"),
        Ok(true)
    );
}

#[test]
fn membership() {
    let vec = v("[1, 2, 3]");
    assert_eq!(eval(&vec, "2 in result"), Ok(true));
    assert_eq!(eval(&vec, "4 not in result"), Ok(true));
    assert_eq!(eval(&vec, "not (2 in result)"), Ok(false));
    let map = v(r#"{"status": "ok", "code": 200}"#);
    assert_eq!(eval(&map, "'status' in result"), Ok(true));
    assert_eq!(eval(&map, "'missing' not in result"), Ok(true));
    assert_eq!(eval(&map, "result.status in ['ok', 'ready']"), Ok(true));
    assert_eq!(
        eval(&vec, "'a' in result"),
        Err("cannot use string as type float64 in array".into())
    );
    assert_eq!(
        eval(&map, "1 in result"),
        Err("cannot use int as type string in map key".into())
    );
    assert_eq!(eval(&v("\"a-b\""), "result contains '-'"), Ok(true));
    assert_eq!(eval(&v("\"a-b\""), "result not contains 'x'"), Ok(true));
}

#[test]
fn default_and_is_nil_ignore_their_argument() {
    // Argo's helpers test the raw result, whatever they are given.
    assert_eq!(eval(&Value::Float(3.0), "default(7, 0) == 3"), Ok(true));
    assert_eq!(eval(&Value::Nil, "default(7, 0) == 0"), Ok(true));
    assert_eq!(eval(&Value::Nil, "isNil(5)"), Ok(true));
    assert_eq!(eval(&Value::Float(1.0), "isNil(nil)"), Ok(false));
    let map = v(r#"{"a": null}"#);
    assert_eq!(eval(&map, "isNil(result.a)"), Ok(false));
    assert_eq!(eval(&map, "result.a == nil"), Ok(true));
    assert_eq!(eval(&map, "(result.a ?? 5) == 5"), Ok(true));
    assert_eq!(
        eval(&Value::Float(1.0), "isNil()"),
        Err("not enough arguments to call isNil".into())
    );
    assert_eq!(
        eval(&Value::Float(1.0), "default(result)"),
        Err("not enough arguments to call default".into())
    );
}

#[test]
fn type_errors_are_error_not_failed() {
    let cases = [
        (
            "0.5",
            "result == 'x'",
            "invalid operation: == (mismatched types float64 and string)",
        ),
        (
            "0.5",
            "result > 'x'",
            "invalid operation: > (mismatched types float64 and string)",
        ),
        (
            "[0.5]",
            "result > 0.1",
            "invalid operation: > (mismatched types []float64 and float64)",
        ),
        (
            "[0.5]",
            "isNaN(result)",
            "cannot use []float64 as argument (type float64) to call isNaN ",
        ),
        (
            "0.5",
            "len(result) > 0",
            "invalid argument for len (type float64)",
        ),
        ("0.5", "result[0] > 0.1", "type float64[int] is undefined"),
        (
            "\"x\"",
            "result % 2 == 0",
            "invalid operation: % (mismatched types string and int)",
        ),
        ("0.5", "foo(result)", "unknown name foo"),
        ("0.5", "result.ok", "type float64 has no field ok"),
        ("[0.5]", "result", "expected bool, but got []float64"),
        (
            r#"{"a": 1}"#,
            "result",
            "expected bool, but got map[string]interface {}",
        ),
        ("0.5", "result + 1", "expected bool, but got float64"),
        ("\"x\"", "upper(result)", "expected bool, but got string"),
    ];
    for (result, condition, message) in cases {
        let a = evaluate_result(&v(result), Some(condition), None, now());
        assert_eq!(a.phase, Error, "{condition} with {result}");
        assert_eq!(
            a.message.as_deref(),
            Some(
                format!("could not evaluate successCondition \"{condition}\": {message}").as_str()
            ),
        );
    }
}

#[test]
fn runtime_errors() {
    let cases = [
        (
            "[1, 2]",
            "result[5] > 1",
            "index out of range: 5 (array length is 2)",
        ),
        (
            r#"{"a": null}"#,
            "result.a.b > 1",
            "cannot fetch b from <nil>",
        ),
        (
            r#"{"a": "x"}"#,
            "result.a > 1",
            "invalid operation: string > int",
        ),
        (
            r#"{"a": null}"#,
            "result.a && result.a",
            "interface conversion: interface {} is nil, not bool",
        ),
        // `x && true` folds to `x` before running (Argo v1.10.2, tests/oracle).
        (
            r#"{"a": null}"#,
            "result.a && true",
            "expected bool, but got <nil>",
        ),
        (
            "7",
            "asInt(result) % 0 == 1",
            "runtime error: integer divide by zero",
        ),
        (
            r#"{"a": "x"}"#,
            "isNaN(result.a)",
            "interface conversion: interface {} is string, not float64",
        ),
        (
            "true",
            "asInt(result) > 0",
            "asInt() not supported on bool true",
        ),
        (
            "\"1h\"",
            "duration(result + 'x') > duration('1m')",
            r#"time: unknown unit "hx" in duration "1hx""#,
        ),
        ("\"x\"", "int(result) > 0", "invalid operation: int(x)"),
    ];
    for (result, condition, message) in cases {
        assert_eq!(
            eval(&v(result), condition),
            Err(message.into()),
            "{condition}"
        );
    }
}

#[test]
fn web_provider_shapes() {
    let r = v(r#"{"ok": true, "successPercent": 0.93, "status": "healthy", "n": 3}"#);
    for (condition, want) in [
        ("result.ok && result.successPercent >= 0.90", true),
        ("result['status'] == 'healthy'", true),
        ("result.status startsWith 'heal'", true),
        ("result.status matches '^h.*y$'", true),
        ("result.n == 3", true),
        ("asInt(result.n) == 3", true),
        ("result.missing == nil", true),
        ("result?.missing?.deeper == nil", true),
        ("result.ok ? result.n > 2 : false", true),
        ("keys(result)[0] == 'ok'", true),
        ("len(result) == 4", true),
    ] {
        assert_eq!(eval(&r, condition), Ok(want), "{condition}");
    }
    // Raw, non-JSON bodies reach conditions as strings.
    let body = Value::from("200 OK");
    assert_eq!(eval(&body, "result startsWith '200'"), Ok(true));
    assert_eq!(eval(&body, "asInt(split(result, ' ')[0]) == 200"), Ok(true));
}

/// Operators and builtins from expr-lang's language definition, as Argo users write them.
#[test]
fn expr_language_definition() {
    let r = Value::Nil;
    let cases = [
        "1 + 2 * 3 == 7",
        "(1 + 2) * 3 == 9",
        "10 / 4 == 2.5",
        "7 % 3 == 1",
        "2 ** 3 == 8.0",
        "2 ^ 3 == 8",
        "2 ** 3 ** 2 == 512",
        "-2 ** 2 == -4",
        "1 == 1.0",
        "1 < 2 < 3",
        "!(1 > 2) && not false",
        "true and true or false",
        "true || 1 / 0 > 1",
        "'a' + 'b' == 'ab'",
        "'abc' contains 'b' && 'abc' startsWith 'a' && 'abc' endsWith 'c'",
        "'abc' matches '^a.c$'",
        "1 in [1, 2] && 3 not in [1, 2]",
        "[1, 2, 3][0] == 1 && [1, 2, 3][-1] == 3",
        "[1, 2, 3][1:] == [2, 3] && [1, 2, 3][:1] == [1]",
        "'hello'[1:3] == 'el'",
        "1..3 == [1, 2, 3]",
        "len(1..3) == 3",
        "{'a': 1, b: 2}.b == 2",
        "{'a': 1}?.c == nil",
        "(nil ?? 3) == 3",
        "(true ? 1 : 2) == 1",
        "(false ?: 5) == 5",
        "let x = 2; x * 3 == 6",
        "if 1 > 2 { false } else { true }",
        "abs(-5) == 5 && abs(-1.5) == 1.5",
        "ceil(1.2) == 2.0 && floor(1.8) == 1.0 && round(1.5) == 2.0",
        "int('42') == 42 && int(3.9) == 3 && float('1.5') == 1.5",
        "string(123) == '123' && string(1.5) == '1.5' && string(1000000.0) == '1e+06'",
        "trim('  a  ') == 'a' && trim('xxaxx', 'x') == 'a'",
        "trimPrefix('abc', 'a') == 'bc' && trimSuffix('abc', 'c') == 'ab'",
        "upper('a') == 'A' && lower('A') == 'a'",
        "split('a,b,c', ',') == ['a', 'b', 'c'] && split('a,b,c', ',', 2)[1] == 'b,c'",
        "splitAfter('a,b', ',')[0] == 'a,'",
        "replace('aaa', 'a', 'b') == 'bbb' && replace('aaa', 'a', 'b', 1) == 'baa'",
        "repeat('ab', 2) == 'abab'",
        "join(['a', 'b'], '-') == 'a-b' && join(['a', 'b']) == 'ab'",
        "indexOf('abc', 'c') == 2 && lastIndexOf('abcc', 'c') == 3",
        "hasPrefix('abc', 'ab') && hasSuffix('abc', 'bc')",
        "max(1, 2, 3) == 3 && min([4, 2, 8]) == 2 && max([1.5, 2]) == 2",
        "mean([1, 2, 3]) == 2.0 && median([1, 2, 3, 4]) == 2.5",
        "first([1, 2]) == 1 && last([1, 2]) == 2 && first([]) == nil",
        "get([1, 2], 5) == nil && get({'a': 1}, 'a') == 1",
        "take([1, 2, 3], 2) == [1, 2]",
        "keys({'a': 1}) == ['a'] && values({'a': 1}) == [1]",
        "len({'a': 1, 'b': 2}) == 2 && len('héllo') == 6",
        "toPairs({'a': 1})[0] == ['a', 1] && fromPairs([['a', 1]]).a == 1",
        "reverse([1, 2]) == [2, 1] && uniq([1, 1, 2]) == [1, 2]",
        "concat([1], [2]) == [1, 2] && flatten([1, [2, [3]]]) == [1, 2, 3]",
        "sort([3, 1, 2]) == [1, 2, 3] && sort([3, 1, 2], 'desc') == [3, 2, 1]",
        "toJSON([1, 2]) == '[\\n  1,\\n  2\\n]' && fromJSON('{\"a\": [1]}').a[0] == 1",
        "toBase64('hi') == 'aGk=' && fromBase64('aGk=') == 'hi'",
        "type(1) == 'int' && type(1.5) == 'float' && type('') == 'string' && type(nil) == 'nil'",
        "type([]) == 'array' && type({}) == 'map' && type(true) == 'bool'",
        "bitand(6, 3) == 2 && bitor(6, 3) == 7 && bitxor(6, 3) == 5 && bitshl(1, 4) == 16",
        "duration('1h30m').Minutes() == 90.0 && duration('1500ms') == duration('1.5s')",
        "string(duration('90s')) == '1m30s'",
        "now() - duration('1h') < now()",
        "now().Sub(now()) == duration('0s')",
        "date('2024-01-02').Year() == 2024 && date('2024-01-02') < now()",
        "date('2024-01-02T03:04:05Z').Hour() == 3",
        "date('02/01/2024', '02/01/2006').Day() == 2",
        "now().Format('2006-01-02') == '2024-05-01'",
        "(now() - date('2024-04-30')).Hours() == 36.0",
        "now().Unix() == 1714564800",
        "1_000 == 1000 && 0x1F == 31 && 0b101 == 5 && 0o17 == 15 && 1e3 == 1000.0 && .5 == 0.5",
        "'\\u00e9' == 'é' && \"tab\\t\" != 'tab'",
        "/* comment */ true // trailing",
    ];
    for condition in cases {
        assert_eq!(eval(&r, condition), Ok(true), "{condition}");
    }
}

#[test]
fn syntax_and_check_errors_have_positions() {
    let e = check_condition("result[0] >= ").unwrap_err();
    assert_eq!(e.to_string(), "unexpected token EOF");
    assert!(matches!(e, ConditionError::Syntax { .. }));
    let e = check_condition("len(result) > 0 && reslt[0] > 1").unwrap_err();
    assert_eq!(e.to_string(), "unknown name reslt");
    assert_eq!(
        e.position(),
        Some(Position {
            line: 1,
            column: 20
        })
    );
    let e = check_condition("result > 1 &&\n  isNaN(result, 2)").unwrap_err();
    assert_eq!(e.to_string(), "too many arguments to call isNaN");
    assert_eq!(e.position(), Some(Position { line: 2, column: 3 }));
    let e = check_condition("asFloat(result) == '1'").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid operation: == (mismatched types float64 and string)"
    );
    assert!(e.is_compile_error());
    // What depends on the result is not a lint error.
    assert_eq!(check_condition("result[0] > 0.9 && result.ok"), Ok(()));
    assert_eq!(check_condition("all(result, {# > 1})"), Ok(()));
    assert!(check_condition("all(result, 1)").is_err());
    assert!(check_condition("# > 1").is_err());
}

#[test]
fn explanations() {
    let r = v("[0.91]");
    let a = evaluate_result(&r, Some("result[0] >= 0.95"), None, now());
    assert_eq!(a.phase, Failed);
    assert_eq!(a.message, None);
    assert_eq!(
        a.explanation,
        "result [0.91] did not satisfy successCondition `result[0] >= 0.95` (result[0] = 0.91); without a failureCondition that is Failed"
    );
    let a = evaluate_result(
        &r,
        Some("result[0] >= 0.9"),
        Some("result[0] < 0.92"),
        now(),
    );
    assert_eq!(a.phase, Failed);
    assert!(
        a.explanation.contains("a failure wins"),
        "{}",
        a.explanation
    );
    let a = evaluate_result(
        &v("NaN"),
        Some("result >= 0.9"),
        Some("result < 0.9"),
        now(),
    );
    assert_eq!(a.phase, Inconclusive);
    assert!(a.explanation.starts_with("result NaN satisfied neither"));
    let a = evaluate_result(&Value::Nil, Some("result[0] > 1"), None, now());
    assert!(a.explanation.contains("no data"), "{}", a.explanation);
    let a = evaluate_result(&v("0.5"), Some("reslt > 1"), None, now());
    assert!(
        a.explanation.ends_with("Did you mean `result`?"),
        "{}",
        a.explanation
    );
    let a = evaluate_result(&v("[0.5]"), Some("result > 0.1"), None, now());
    assert!(
        a.explanation.contains("compare an element"),
        "{}",
        a.explanation
    );
    let a = evaluate_result(&v("[0.97]"), Some("all(result, # > 0.9)"), None, now());
    assert_eq!(
        a.explanation,
        "result [0.97] satisfied successCondition `all(result, # > 0.9)`"
    );
    let a = evaluate_result(
        &v("[]"),
        Some("len(result) > 0 && all(result, # > 0.9)"),
        None,
        now(),
    );
    assert_eq!(a.phase, Failed);
    assert!(
        a.explanation
            .contains("(len(result) = 0, all(result, # > 0.9) = true)"),
        "{}",
        a.explanation
    );
    let a = evaluate_result(&v("[0.5]"), Some("isnan(result[0])"), None, now());
    assert!(
        a.explanation.ends_with("Did you mean `isNaN`?"),
        "{}",
        a.explanation
    );
}

#[test]
fn time_expressions() {
    assert_eq!(evaluate_time("now()", now()), Ok(now()));
    assert_eq!(
        evaluate_time("now() - duration(\"1h\")", now()),
        Ok("2024-05-01T11:00:00Z".parse().unwrap())
    );
    assert_eq!(
        evaluate_time("now() + duration('-5m30s')", now()),
        Ok("2024-05-01T11:54:30Z".parse().unwrap())
    );
    assert_eq!(
        evaluate_time("date('2024-04-30T00:00:00Z')", now()),
        Ok("2024-04-30T00:00:00Z".parse().unwrap())
    );
    assert_eq!(
        evaluate_time("1", now()).unwrap_err().to_string(),
        "expected time.Time, but got int"
    );
    assert_eq!(
        evaluate_time("now() - 1", now()).unwrap_err().to_string(),
        "invalid operation: - (mismatched types time.Time and int)"
    );
    assert_eq!(
        evaluate_time("result", now()).unwrap_err().to_string(),
        "unknown name result"
    );
    assert_eq!(
        evaluate_time("duration('1d')", now())
            .unwrap_err()
            .to_string(),
        r#"time: unknown unit "d" in duration "1d""#
    );
}

#[test]
fn values_convert_like_providers() {
    assert_eq!(Value::from(0.5).go_type(), "float64");
    assert_eq!(Value::from(vec![1.0, f64::NAN]).go_type(), "[]float64");
    assert_eq!(Value::from(None::<f64>), Value::Nil);
    assert!(Value::from(Vec::<f64>::new()).is_nil_or_empty());
    assert!(!Value::from("").is_nil_or_empty());
}

#[test]
fn deep_but_allowed_expressions_do_not_overflow_the_stack() {
    let r = v("[1, 2]");
    let parens = format!("{}true{}", "(".repeat(190), ")".repeat(190));
    assert_eq!(eval(&r, &parens), Ok(true));
    let nots = format!("{}true", "!".repeat(190));
    assert_eq!(eval(&r, &nots), Ok(true));
    let sum = format!("{} == 190", vec!["1"; 190].join(" + "));
    assert_eq!(eval(&r, &sum), Ok(true));
    let nested = format!("{}true{}", "all(result, ".repeat(15), ")".repeat(15));
    assert_eq!(eval(&r, &nested), Ok(true));
}

#[test]
fn sorting_and_uniq_handle_nan_and_mixed_kinds() {
    let r = v("[3, NaN, 1, 2]");
    assert_eq!(eval(&r, "sort(result)[0] == 1"), Ok(true));
    assert_eq!(eval(&r, "len(uniq(result)) == 4"), Ok(true));
    assert_eq!(eval(&v("[NaN, NaN]"), "len(uniq(result)) == 2"), Ok(true));
    assert_eq!(
        eval(
            &Value::Nil,
            "uniq([1, 1.0, '1', [1], [1]]) == [1, '1', [1]]"
        ),
        Ok(true)
    );
    assert_eq!(
        eval(&Value::Nil, "sort([1, 'a']) == []"),
        Err("invalid operation: int < string".into())
    );
    assert_eq!(
        eval(&Value::Nil, "now().AddDate(2147483647, 0, 0) > now()"),
        Ok(true)
    );
    assert_eq!(
        eval(&Value::Nil, "len(uniq(1..100000)) == 100000"),
        Ok(true)
    );
}
