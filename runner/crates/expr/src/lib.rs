//! The condition language of analysis metrics: `successCondition`, `failureCondition` and
//! Prometheus `rangeQuery` times, evaluated the way Argo Rollouts evaluates them.
//!
//! Argo compiles each condition with [expr-lang/expr] (Go) against an environment holding the
//! measurement `result` and six helpers (`asInt`, `asFloat`, `isNaN`, `isInf`, `isNil`,
//! `default`), then runs it; see `utils/evaluate/evaluate.go`. This module is a Rust port of
//! the parts of expr that conditions use: its lexer and parser, its type checker (so that
//! what fails to compile in Argo is an `Error` here too, not `Failed`), its runtime semantics
//! (Go's number, NaN and comparison rules) and its builtins, with Go's error messages.
//!
//! This module owns:
//! - [`Value`], the measurement result as conditions see it, and its `--result` syntax;
//! - [`evaluate_result`], Argo's truth table from a result and two conditions to a phase,
//!   with Argo's messages and an explanation for people;
//! - [`Condition`], [`check_condition`] and [`evaluate_condition`] for single conditions;
//! - [`evaluate_time`], Argo's `EvalTime` for Prometheus range queries.
//!
//! It refuses I/O of any kind and reading the clock: what `now()` returns in a condition is
//! the `now` the caller passes.
//! Time zone names other than `UTC` are not resolved, since that would need the system time
//! zone database. `groupBy` and `timezone()` are not implemented.
//!
//! [expr-lang/expr]: https://expr-lang.org/docs/language-definition

mod ast;
mod builtins;
mod check;
mod eval;
mod fold;
mod gofmt;
mod gotime;
mod lexer;
mod parser;
mod value;

use std::collections::HashMap;

use jiff::Timestamp;

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, as Argo prints measured values.
pub use gofmt::format_float as go_format_float;
pub use value::{ParseValueError, Value};

use ast::{BinOp, Node, NodeKind, UnOp};
use check::{CheckEnv, Ty};
use eval::{Env, Interp, Val};
use gotime::GoTime;

/// Where in a condition an error is: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a condition could not be evaluated. `Display` is exactly the text Argo reports after
/// `could not evaluate successCondition "...": `.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConditionError {
    /// The condition does not parse (`unexpected token EOF`).
    #[error("{message}")]
    Syntax { message: String, position: Position },
    /// The condition parses but does not compile: an unknown name, mismatched types,
    /// wrong arguments. Argo reports these when it compiles the condition for a result.
    #[error("{message}")]
    Compile { message: String, position: Position },
    /// Running the condition failed: an index out of range, a failed conversion, ...
    #[error("{message}")]
    Runtime { message: String, position: Position },
    /// The condition ran but did not produce a bool.
    #[error("expected bool, but got {go_type}")]
    NotBool { go_type: String },
    /// A time expression ran but did not produce a time.
    #[error("expected time.Time, but got {go_type}")]
    NotTime { go_type: String },
}

impl ConditionError {
    /// Where the error is, when it points at a place in the condition.
    pub fn position(&self) -> Option<Position> {
        match self {
            ConditionError::Syntax { position, .. }
            | ConditionError::Compile { position, .. }
            | ConditionError::Runtime { position, .. } => Some(*position),
            _ => None,
        }
    }

    /// Whether the condition failed to parse or compile, as opposed to failing while it ran.
    /// [`check_condition`] only returns such errors.
    pub fn is_compile_error(&self) -> bool {
        matches!(
            self,
            ConditionError::Syntax { .. } | ConditionError::Compile { .. }
        )
    }
}

fn position(src: &str, offset: usize) -> Position {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line,
        column: before[line_start..].chars().count() + 1,
    }
}

/// A parsed condition. Parse once, evaluate against many results.
#[derive(Debug, Clone)]
pub struct Condition {
    source: String,
    ast: Node,
    /// `matches` patterns written as literals, compiled once.
    regexes: HashMap<String, regex::Regex>,
}

impl Condition {
    /// Parses a condition. Only syntax is checked here; see [`Condition::check`].
    pub fn parse(source: &str) -> Result<Condition, ConditionError> {
        let ast = parser::parse(source).map_err(|e| ConditionError::Syntax {
            message: e.message,
            position: position(source, e.offset),
        })?;
        let mut regexes = HashMap::new();
        collect_patterns(&ast, &mut regexes);
        Ok(Condition {
            source: source.to_string(),
            ast,
            regexes,
        })
    }

    /// The condition's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Checks the condition for any result: unknown names, wrong arguments to helpers and
    /// type errors that do not depend on the result. What lint reports.
    pub fn check(&self) -> Result<(), ConditionError> {
        self.checked(&CheckEnv::Condition(Ty::Any)).map(|_| ())
    }

    /// Argo's `EvalCondition`: evaluates the condition against a result; `now()` in the
    /// condition returns `now`.
    pub fn evaluate(&self, result: &Value, now: Timestamp) -> Result<bool, ConditionError> {
        let result = Val::from(result);
        let (mut ast, _) = self.checked(&CheckEnv::Condition(result_type(&result)))?;
        // expr's optimizer folds constants after type checking, before running: `x || true`
        // is true without evaluating `x` (fold.go).
        fold::fold(&mut ast);
        let env = Env {
            result: Some(result),
            now: GoTime::utc(now),
            regexes: &self.regexes,
        };
        match self.run(&ast, &env)? {
            Val::Bool(b) => Ok(b),
            other => Err(ConditionError::NotBool {
                go_type: other.go_type().to_string(),
            }),
        }
    }

    fn checked(&self, env: &CheckEnv) -> Result<(Node, Ty), ConditionError> {
        let mut ast = self.ast.clone();
        match check::check(&mut ast, env) {
            Ok(ty) => Ok((ast, ty)),
            Err(e) => Err(ConditionError::Compile {
                message: e.message,
                position: position(&self.source, e.offset),
            }),
        }
    }

    fn run(&self, ast: &Node, env: &Env<'_>) -> Result<Val, ConditionError> {
        Interp::new(env)
            .run(ast)
            .map_err(|e| ConditionError::Runtime {
                message: e.message,
                position: position(&self.source, e.at),
            })
    }

    /// The values of the operands of the condition's top-level comparisons, for
    /// explanations: `result[0] = 0.91`. Operands that fail to evaluate are left out.
    fn operand_values(&self, result: &Value, now: Timestamp) -> Vec<(String, String)> {
        let mut nodes = Vec::new();
        comparison_operands(&self.ast, &mut nodes);
        let result_val = Val::from(result);
        let env = Env {
            result: Some(result_val),
            now: GoTime::utc(now),
            regexes: &self.regexes,
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for node in nodes {
            let text = self.source[node.span.0..node.span.1].trim().to_string();
            // The whole condition's value is the verdict itself; `result` is shown already.
            if text == "result" || text == self.source.trim() || out.iter().any(|(t, _)| *t == text)
            {
                continue;
            }
            let mut ast = node.clone();
            let ty = result_type(env.result.as_ref().unwrap_or(&Val::Nil));
            if check::check(&mut ast, &CheckEnv::Condition(ty)).is_err() {
                continue;
            }
            if let Ok(v) = Interp::new(&env).run(&ast) {
                out.push((text, v.render()));
            }
            if out.len() == 4 {
                break;
            }
        }
        out
    }
}

fn collect_patterns(node: &Node, out: &mut HashMap<String, regex::Regex>) {
    if let NodeKind::Binary {
        op: BinOp::Matches,
        right,
        ..
    } = &node.kind
        && let NodeKind::Str(p) = &right.kind
        && let Ok(re) = regex::Regex::new(p)
    {
        out.insert(p.clone(), re);
    }
    for child in node.children() {
        collect_patterns(child, out);
    }
}

/// Non-literal operands of comparisons reachable through `and`, `or` and `not`.
fn comparison_operands<'a>(node: &'a Node, out: &mut Vec<&'a Node>) {
    match &node.kind {
        NodeKind::Binary {
            op: BinOp::And | BinOp::Or,
            left,
            right,
            ..
        } => {
            comparison_operands(left, out);
            comparison_operands(right, out);
        }
        NodeKind::Unary {
            op: UnOp::Not,
            node,
            ..
        } => comparison_operands(node, out),
        NodeKind::Binary {
            op, left, right, ..
        } if op.is_comparison() || *op == BinOp::In => {
            for side in [left, right] {
                if !is_literal(side) {
                    out.push(side);
                }
            }
        }
        NodeKind::Call { .. } | NodeKind::Builtin { .. } => out.push(node),
        _ => {}
    }
}

fn is_literal(node: &Node) -> bool {
    match &node.kind {
        NodeKind::Nil
        | NodeKind::Bool(_)
        | NodeKind::Int(_)
        | NodeKind::Float(_)
        | NodeKind::Str(_) => true,
        NodeKind::Unary { node, .. } => is_literal(node),
        NodeKind::Array(items) => items.iter().all(is_literal),
        _ => false,
    }
}

/// The type `result` has for the checker: Go's type of the provider's value.
fn result_type(v: &Val) -> Ty {
    use eval::Elem;
    match v {
        Val::Nil => Ty::Nil,
        Val::Bool(_) => Ty::Bool,
        Val::Int(_) => Ty::Int,
        Val::Int64(_) => Ty::Int64,
        Val::Float(_) => Ty::Float,
        Val::Str(_) => Ty::String,
        Val::List(_, Elem::Float64) => Ty::List(Elem::Float64, Box::new(Ty::Float)),
        Val::List(_, Elem::Int) => Ty::List(Elem::Int, Box::new(Ty::Int)),
        Val::List(_, Elem::String) => Ty::List(Elem::String, Box::new(Ty::String)),
        Val::List(_, Elem::Any) => Ty::List(Elem::Any, Box::new(Ty::Any)),
        Val::Map(_) => Ty::Map,
        Val::Time(_) => Ty::Time,
        Val::Duration(_) => Ty::Duration,
        Val::Func(_) => Ty::Any,
    }
}

/// Checks a condition without a result: syntax errors, unknown names and type errors that
/// hold whatever the result is. The error's [`ConditionError::position`] gives the place.
pub fn check_condition(source: &str) -> Result<(), ConditionError> {
    Condition::parse(source)?.check()
}

/// Argo's `EvalCondition`: the bool a condition yields for a result, or why it has none.
/// `now()` in the condition returns `now`.
pub fn evaluate_condition(
    result: &Value,
    source: &str,
    now: Timestamp,
) -> Result<bool, ConditionError> {
    Condition::parse(source)?.evaluate(result, now)
}

/// Which of a metric's two conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionKind {
    Success,
    Failure,
}

impl ConditionKind {
    /// The field name, as Argo's messages spell it.
    pub fn field(self) -> &'static str {
        match self {
            ConditionKind::Success => "successCondition",
            ConditionKind::Failure => "failureCondition",
        }
    }
}

/// The phase of one measurement, as Argo spells it in an AnalysisRun's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnalysisPhase {
    Successful,
    Failed,
    Inconclusive,
    /// The conditions could not be evaluated (Argo's `Error` phase).
    Error,
}

impl AnalysisPhase {
    /// Argo's spelling, as stored in status fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Successful => "Successful",
            Self::Failed => "Failed",
            Self::Inconclusive => "Inconclusive",
            Self::Error => "Error",
        }
    }
}

impl std::fmt::Display for AnalysisPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// `Successful`, `Failed`, `Inconclusive` or `Error`.
    pub phase: AnalysisPhase,
    /// What Argo stores in the measurement's `message`: set for `Error` only, word for word
    /// (`could not evaluate successCondition "...": ...`).
    pub message: Option<String>,
    /// Why the phase is what it is, for people. Not Argo's: ours, and free to improve.
    pub explanation: String,
    /// The error behind an `Error` phase, and which condition it came from.
    pub error: Option<(ConditionKind, ConditionError)>,
}

/// Argo's `EvaluateResult`: the phase of a measurement from its result and the metric's
/// conditions (an empty string is the same as no condition).
///
/// | success | failure | phase |
/// | --- | --- | --- |
/// | none | none | Successful |
/// | S | none | S true: Successful, else Failed |
/// | none | F | F true: Failed, else Successful |
/// | S | F | F true: Failed (even if S is true); S true: Successful; else Inconclusive |
///
/// The success condition is evaluated first; an error in either makes the phase `Error`.
/// `now()` in a condition returns `now`: this module does not read the clock.
pub fn evaluate_result(
    result: &Value,
    success: Option<&str>,
    failure: Option<&str>,
    now: Timestamp,
) -> Assessment {
    let success = success.filter(|s| !s.is_empty());
    let failure = failure.filter(|s| !s.is_empty());
    let conditions = |kind: ConditionKind, src: &str| match Condition::parse(src) {
        Ok(c) => Ok(c),
        Err(e) => Err((kind, e)),
    };
    let mut parsed = Vec::new();
    for (kind, src) in [
        (ConditionKind::Success, success),
        (ConditionKind::Failure, failure),
    ] {
        let Some(src) = src else { continue };
        let outcome = conditions(kind, src).and_then(|c| {
            c.evaluate(result, now)
                .map(|b| (c, b))
                .map_err(|e| (kind, e))
        });
        match outcome {
            Ok((c, b)) => parsed.push((kind, c, b)),
            Err((kind, e)) => return error_assessment(result, kind, src, e),
        }
    }
    let s = parsed.iter().find(|(k, ..)| *k == ConditionKind::Success);
    let f = parsed.iter().find(|(k, ..)| *k == ConditionKind::Failure);
    let shown = result.to_string();
    let detail = |c: &Condition| {
        let values = c.operand_values(result, now);
        if values.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = values.iter().map(|(t, v)| format!("{t} = {v}")).collect();
            format!(" ({})", parts.join(", "))
        }
    };
    let (phase, explanation) = match (s, f) {
        (None, None) => (
            AnalysisPhase::Successful,
            "no successCondition or failureCondition is set, so every measurement is Successful"
                .to_string(),
        ),
        (Some((_, sc, true)), None) => (
            AnalysisPhase::Successful,
            format!(
                "result {shown} satisfied successCondition `{}`{}",
                sc.source(),
                detail(sc)
            ),
        ),
        (Some((_, sc, false)), None) => (
            AnalysisPhase::Failed,
            format!(
                "result {shown} did not satisfy successCondition `{}`{}; without a failureCondition that is Failed",
                sc.source(),
                detail(sc)
            ),
        ),
        (None, Some((_, fc, true))) => (
            AnalysisPhase::Failed,
            format!(
                "result {shown} satisfied failureCondition `{}`{}",
                fc.source(),
                detail(fc)
            ),
        ),
        (None, Some((_, fc, false))) => (
            AnalysisPhase::Successful,
            format!(
                "result {shown} did not satisfy failureCondition `{}`{}; without a successCondition that is Successful",
                fc.source(),
                detail(fc)
            ),
        ),
        (Some((_, sc, s_ok)), Some((_, fc, true))) => (
            AnalysisPhase::Failed,
            if *s_ok {
                format!(
                    "result {shown} satisfied failureCondition `{}`{}; a failure wins even though successCondition `{}` was satisfied too",
                    fc.source(),
                    detail(fc),
                    sc.source()
                )
            } else {
                format!(
                    "result {shown} satisfied failureCondition `{}`{}",
                    fc.source(),
                    detail(fc)
                )
            },
        ),
        (Some((_, sc, true)), Some((_, fc, false))) => (
            AnalysisPhase::Successful,
            format!(
                "result {shown} satisfied successCondition `{}`{} and not failureCondition `{}`",
                sc.source(),
                detail(sc),
                fc.source()
            ),
        ),
        (Some((_, sc, false)), Some((_, fc, false))) => (
            AnalysisPhase::Inconclusive,
            format!(
                "result {shown} satisfied neither successCondition `{}`{} nor failureCondition `{}`{}, so the measurement is Inconclusive",
                sc.source(),
                detail(sc),
                fc.source(),
                detail(fc)
            ),
        ),
    };
    Assessment {
        phase,
        message: None,
        explanation,
        error: None,
    }
}

fn error_assessment(
    result: &Value,
    kind: ConditionKind,
    source: &str,
    error: ConditionError,
) -> Assessment {
    let field = kind.field();
    let message = if result.is_nil_or_empty() {
        format!(
            "could not evaluate {field} \"{source}\": metric result is nil or empty: no data returned from the metric provider"
        )
    } else {
        format!("could not evaluate {field} \"{source}\": {error}")
    };
    let explanation = if result.is_nil_or_empty() {
        let mut e = format!(
            "{field} `{source}` could not be evaluated: the metric returned no data (result {result})."
        );
        e.push_str(&format!(" The underlying error: {error}."));
        e.push_str(
            " Argo counts this as an Error (against consecutiveErrorLimit), not as Failed; to judge no data instead, guard the condition (`len(result) > 0 && result[0] >= 0.95`: `&&` and `||` short-circuit) or write it without indexing, e.g. with `any(result, ...)` (false on no data) or `all(result, ...)` (true).",
        );
        e
    } else {
        let mut e = format!(
            "{field} `{source}` could not be evaluated for result {result} ({}): {error}",
            result.go_type()
        );
        if let Some(p) = error.position() {
            e.push_str(&format!(" (at {p})"));
        }
        e.push('.');
        if let Some(name) = error.to_string().strip_prefix("unknown name ") {
            e.push_str(
                " Argo checks names when it compiles a condition, so this is an Error, not Failed.",
            );
            if let Some(known) = closest_name(name) {
                e.push_str(&format!(" Did you mean `{known}`?"));
            }
        } else if matches!(error, ConditionError::Compile { .. }) {
            e.push_str(&format!(
                " Argo compiles conditions against the result's type ({}), so this is an Error, not Failed.",
                result.go_type()
            ));
            if matches!(result, Value::Vector(_) | Value::Array(_))
                && error.to_string().contains("mismatched types []")
            {
                e.push_str(
                    " The result is a list (a Prometheus vector): compare an element, as in `result[0] >= 0.95`, or every element, as in `all(result, # >= 0.95)`.",
                );
            }
        }
        e
    };
    Assessment {
        phase: AnalysisPhase::Error,
        message: Some(message),
        explanation,
        error: Some((kind, error)),
    }
}

/// The known name closest to a misspelt one, if any is close.
fn closest_name(name: &str) -> Option<&'static str> {
    const ENV: [&str; 7] = [
        "result", "asInt", "asFloat", "isNaN", "isInf", "isNil", "default",
    ];
    ENV.iter()
        .chain(parser::BUILTINS)
        .map(|known| (edit_distance(name, known), *known))
        .filter(|(d, known)| *d <= 2 && *d < known.len().min(name.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

/// Levenshtein distance, case-insensitive.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Argo's `EvalTime`: evaluates a Prometheus `rangeQuery.start`/`end` expression such as
/// `now() - duration("1h")`. Only `isNaN`, `isInf` and the builtins are in scope; the
/// result must be a time.
pub fn evaluate_time(source: &str, now: Timestamp) -> Result<Timestamp, ConditionError> {
    let condition = Condition::parse(source)?;
    let (ast, _) = condition.checked(&CheckEnv::Time)?;
    let env = Env {
        result: None,
        now: GoTime::utc(now),
        regexes: &condition.regexes,
    };
    match condition.run(&ast, &env)? {
        Val::Time(t) => Ok(t.ts),
        other => Err(ConditionError::NotTime {
            go_type: other.go_type().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;
