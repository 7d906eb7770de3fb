//! The interpreter: runs a checked tree with expr-lang's Go runtime semantics (`vm/runtime`):
//! integer and float arithmetic, `==` across numeric types, NaN comparisons that are simply
//! false, index and fetch rules, and Go's panic messages as errors.

use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexMap;

use super::ast::{BinOp, Node, NodeKind, UnOp};
use super::builtins;
use super::gofmt;
use super::gotime::{self, GoTime};
use super::value::Value;

/// A runtime value. Unlike [`Value`], it also holds what only exists during evaluation:
/// times, durations, Go `int64`s (from `asInt`) and function values.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Nil,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `int64` (what `asInt` returns); arithmetic on it yields `int`, as in Go.
    Int64(i64),
    Float(f64),
    Str(Rc<str>),
    List(Rc<Vec<Val>>, Elem),
    Map(Rc<IndexMap<String, Val>>),
    Time(GoTime),
    /// Go `time.Duration`, in nanoseconds.
    Duration(i64),
    Func(Func),
}

/// The Go element type of a list, which `%T` and equality can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem {
    Any,
    Float64,
    Int,
    String,
}

/// A function used as a value (`isNaN` without calling it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Env(EnvFn),
    Builtin(&'static str),
}

/// Argo's condition helpers (`utils/evaluate/evaluate.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvFn {
    AsInt,
    AsFloat,
    IsNaN,
    IsInf,
    IsNil,
    Default,
}

impl EnvFn {
    pub(crate) fn lookup(name: &str) -> Option<EnvFn> {
        Some(match name {
            "asInt" => EnvFn::AsInt,
            "asFloat" => EnvFn::AsFloat,
            "isNaN" => EnvFn::IsNaN,
            "isInf" => EnvFn::IsInf,
            "isNil" => EnvFn::IsNil,
            "default" => EnvFn::Default,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            EnvFn::AsInt => "asInt",
            EnvFn::AsFloat => "asFloat",
            EnvFn::IsNaN => "isNaN",
            EnvFn::IsInf => "isInf",
            EnvFn::IsNil => "isNil",
            EnvFn::Default => "default",
        }
    }

    /// The Go signature, as `%T` prints it.
    pub(crate) fn go_type(self) -> &'static str {
        match self {
            EnvFn::AsInt => "func(interface {}) int64",
            EnvFn::AsFloat => "func(interface {}) float64",
            EnvFn::IsNaN | EnvFn::IsInf => "func(float64) bool",
            EnvFn::IsNil => "func(interface {}) bool",
            EnvFn::Default => "func(interface {}, interface {}) interface {}",
        }
    }
}

impl Val {
    pub(crate) fn str(s: &str) -> Val {
        Val::Str(Rc::from(s))
    }

    pub(crate) fn list(items: Vec<Val>) -> Val {
        Val::List(Rc::new(items), Elem::Any)
    }

    /// `%T`.
    pub(crate) fn go_type(&self) -> &'static str {
        match self {
            Val::Nil => "<nil>",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Int64(_) => "int64",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::List(_, Elem::Any) => "[]interface {}",
            Val::List(_, Elem::Float64) => "[]float64",
            Val::List(_, Elem::Int) => "[]int",
            Val::List(_, Elem::String) => "[]string",
            Val::Map(_) => "map[string]interface {}",
            Val::Time(_) => "time.Time",
            Val::Duration(_) => "time.Duration",
            Val::Func(Func::Env(f)) => f.go_type(),
            Val::Func(Func::Builtin(_)) => "func(...interface {}) (interface {}, error)",
        }
    }

    /// The dynamic type as Go's `interface conversion` panics name it.
    pub(crate) fn iface_type(&self) -> &'static str {
        match self {
            Val::Nil => "nil",
            other => other.go_type(),
        }
    }

    /// The `reflect.Kind` name, as reflect's panics print it.
    pub(crate) fn go_kind(&self) -> &'static str {
        match self {
            Val::Nil => "zero",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Int64(_) | Val::Duration(_) => "int64",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::List(..) => "slice",
            Val::Map(_) => "map",
            Val::Time(_) => "struct",
            Val::Func(_) => "func",
        }
    }

    /// `fmt`'s `%v`.
    pub(crate) fn go_string(&self) -> String {
        match self {
            Val::Nil => "<nil>".into(),
            Val::Bool(b) => b.to_string(),
            Val::Int(i) | Val::Int64(i) => i.to_string(),
            Val::Float(f) => gofmt::format_float(*f),
            Val::Str(s) => s.to_string(),
            Val::List(items, _) => {
                let parts: Vec<String> = items.iter().map(Val::go_string).collect();
                format!("[{}]", parts.join(" "))
            }
            Val::Map(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let parts: Vec<String> = keys
                    .into_iter()
                    .map(|k| format!("{k}:{}", m[k].go_string()))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
            Val::Time(t) => t.go_string(),
            Val::Duration(d) => gofmt::format_duration(*d),
            Val::Func(_) => "0x0".into(),
        }
    }

    /// For people: JSON with `NaN`/`+Inf`, times in RFC 3339, durations in Go's spelling.
    pub(crate) fn render(&self) -> String {
        match self {
            Val::Nil => "null".into(),
            Val::Bool(b) => b.to_string(),
            Val::Int(i) | Val::Int64(i) => i.to_string(),
            Val::Float(f) => super::value::render_float(*f),
            Val::Str(s) => super::value::render_string(s),
            Val::List(items, _) => {
                let parts: Vec<String> = items.iter().map(Val::render).collect();
                format!("[{}]", parts.join(", "))
            }
            Val::Map(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{}: {}", super::value::render_string(k), v.render()))
                    .collect();
                format!("{{{}}}", parts.join(", "))
            }
            Val::Time(t) => t.rfc3339(),
            Val::Duration(d) => gofmt::format_duration(*d),
            Val::Func(Func::Env(f)) => f.name().to_string(),
            Val::Func(Func::Builtin(name)) => (*name).to_string(),
        }
    }

    pub(crate) fn is_nil(&self) -> bool {
        matches!(self, Val::Nil)
    }
}

impl From<&Value> for Val {
    fn from(v: &Value) -> Self {
        match v {
            Value::Nil => Val::Nil,
            Value::Bool(b) => Val::Bool(*b),
            Value::Int(i) => Val::Int(*i),
            Value::Float(f) => Val::Float(*f),
            Value::String(s) => Val::str(s),
            Value::Array(items) => Val::list(items.iter().map(Val::from).collect()),
            Value::Vector(items) => Val::List(
                Rc::new(items.iter().map(|f| Val::Float(*f)).collect()),
                Elem::Float64,
            ),
            Value::Map(m) => Val::Map(Rc::new(
                m.iter().map(|(k, v)| (k.clone(), Val::from(v))).collect(),
            )),
        }
    }
}

/// A run-time error: Go's panic message and the node it happened at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RuntimeError {
    pub(crate) message: String,
    pub(crate) at: usize,
}

/// Evaluation stops for an error, or unwinds an optional chain that met nil.
#[derive(Debug)]
pub(crate) enum Stop {
    Error(RuntimeError),
    ChainNil,
}

pub(crate) type Eval<T> = Result<T, Stop>;

pub(crate) fn fail<T>(at: usize, message: impl Into<String>) -> Eval<T> {
    Err(Stop::Error(RuntimeError {
        message: message.into(),
        at,
    }))
}

/// What the expression can see besides the language itself.
pub(crate) struct Env<'a> {
    /// `result` and Argo's helpers; `None` for time expressions (`EvalTime` has neither).
    pub(crate) result: Option<Val>,
    /// What `now()` returns.
    pub(crate) now: GoTime,
    /// Compiled `matches` patterns that were literals in the source.
    pub(crate) regexes: &'a HashMap<String, regex::Regex>,
}

/// One level of predicate scope: the element `#`, `#index` and `#acc`.
struct Scope {
    elem: Val,
    index: usize,
    acc: Val,
}

pub(crate) struct Interp<'a> {
    pub(crate) env: &'a Env<'a>,
    scopes: Vec<Scope>,
    vars: Vec<(String, Val)>,
    /// Values allocated by `..`, `repeat` and friends, against Go's memory budget.
    pub(crate) budget: usize,
}

/// expr's default `MemoryBudget`.
pub(crate) const MEMORY_BUDGET: usize = 1_000_000;

impl<'a> Interp<'a> {
    pub(crate) fn new(env: &'a Env<'a>) -> Self {
        Interp {
            env,
            scopes: Vec::new(),
            vars: Vec::new(),
            budget: 0,
        }
    }

    pub(crate) fn spend(&mut self, at: usize, n: usize) -> Eval<()> {
        self.budget = self.budget.saturating_add(n);
        if self.budget > MEMORY_BUDGET {
            return fail(at, "memory budget exceeded");
        }
        Ok(())
    }

    pub(crate) fn run(&mut self, node: &Node) -> Result<Val, RuntimeError> {
        match self.eval(node) {
            Ok(v) => Ok(v),
            Err(Stop::ChainNil) => Ok(Val::Nil),
            Err(Stop::Error(e)) => Err(e),
        }
    }

    /// Runs `body` once per element of a predicate's collection, in a fresh scope.
    pub(crate) fn with_scope<T>(&mut self, f: impl FnOnce(&mut Self) -> Eval<T>) -> Eval<T> {
        self.scopes.push(Scope {
            elem: Val::Nil,
            index: 0,
            acc: Val::Nil,
        });
        let out = f(self);
        self.scopes.pop();
        out
    }

    pub(crate) fn set_elem(&mut self, index: usize, elem: Val) {
        if let Some(s) = self.scopes.last_mut() {
            s.index = index;
            s.elem = elem;
        }
    }

    pub(crate) fn set_acc(&mut self, acc: Val) {
        if let Some(s) = self.scopes.last_mut() {
            s.acc = acc;
        }
    }

    pub(crate) fn acc(&self) -> Val {
        self.scopes.last().map_or(Val::Nil, |s| s.acc.clone())
    }

    pub(crate) fn eval(&mut self, node: &Node) -> Eval<Val> {
        let at = node.at;
        match &node.kind {
            NodeKind::Nil => Ok(Val::Nil),
            NodeKind::Bool(b) => Ok(Val::Bool(*b)),
            NodeKind::Int(i) => Ok(Val::Int(*i)),
            NodeKind::Float(f) => Ok(Val::Float(*f)),
            NodeKind::Str(s) => Ok(Val::str(s)),
            NodeKind::Ident(name) => self.ident(name, at),
            NodeKind::Pointer(name) => {
                let Some(scope) = self.scopes.last() else {
                    return fail(at, "cannot use pointer accessor outside predicate");
                };
                match name.as_str() {
                    "" => Ok(scope.elem.clone()),
                    "index" => Ok(Val::Int(scope.index as i64)),
                    "acc" => Ok(scope.acc.clone()),
                    _ => fail(at, format!("unknown pointer #{name}")),
                }
            }
            NodeKind::Unary { op, text, node } => {
                let v = self.eval(node)?;
                match op {
                    UnOp::Not => Ok(Val::Bool(!assert_bool(&v, at)?)),
                    UnOp::Plus => Ok(v),
                    UnOp::Neg => match v {
                        Val::Int(i) => Ok(Val::Int(i.wrapping_neg())),
                        Val::Int64(i) => Ok(Val::Int64(i.wrapping_neg())),
                        Val::Float(f) => Ok(Val::Float(-f)),
                        other => fail(at, format!("invalid operation: {text} {}", other.go_type())),
                    },
                }
            }
            NodeKind::Binary {
                op, left, right, ..
            } => self.binary(*op, left, right, at),
            NodeKind::Member {
                node,
                property,
                optional,
                ..
            } => {
                let base = self.eval(node)?;
                if *optional && base.is_nil() {
                    return Err(Stop::ChainNil);
                }
                let prop = self.eval(property)?;
                fetch(&base, &prop, at)
            }
            NodeKind::Slice { node, from, to } => {
                let base = self.eval(node)?;
                let from = match from {
                    Some(n) => Some(self.eval(n)?),
                    None => None,
                };
                let to = match to {
                    Some(n) => Some(self.eval(n)?),
                    None => None,
                };
                slice(&base, from.as_ref(), to.as_ref(), at)
            }
            NodeKind::Call { callee, args } => self.call(callee, args, at),
            NodeKind::Builtin { name, args } => builtins::call(self, name, args, at),
            NodeKind::Predicate(body) => self.eval(body),
            NodeKind::Chain(inner) => match self.eval(inner) {
                Err(Stop::ChainNil) => Ok(Val::Nil),
                other => other,
            },
            NodeKind::Conditional { cond, yes, no } => {
                let c = self.eval(cond)?;
                if assert_bool(&c, at)? {
                    self.eval(yes)
                } else {
                    self.eval(no)
                }
            }
            NodeKind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?);
                }
                Ok(Val::list(out))
            }
            NodeKind::Map(pairs) => {
                let mut map = IndexMap::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let key = match self.eval(k)? {
                        Val::Str(s) => s.to_string(),
                        other => {
                            return fail(
                                k.at,
                                format!(
                                    "interface conversion: interface {{}} is {}, not string",
                                    other.iface_type()
                                ),
                            );
                        }
                    };
                    let value = self.eval(v)?;
                    map.insert(key, value);
                }
                Ok(Val::Map(Rc::new(map)))
            }
            NodeKind::Let { name, value, body } => {
                let v = self.eval(value)?;
                self.vars.push((name.clone(), v));
                let out = self.eval(body);
                self.vars.pop();
                out
            }
        }
    }

    fn ident(&mut self, name: &str, at: usize) -> Eval<Val> {
        if let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        if name == "$env" {
            let mut map = IndexMap::new();
            if let Some(result) = &self.env.result {
                map.insert("result".to_string(), result.clone());
                for f in [
                    EnvFn::AsInt,
                    EnvFn::AsFloat,
                    EnvFn::IsNaN,
                    EnvFn::IsInf,
                    EnvFn::IsNil,
                    EnvFn::Default,
                ] {
                    map.insert(f.name().to_string(), Val::Func(Func::Env(f)));
                }
            } else {
                for f in [EnvFn::IsNaN, EnvFn::IsInf] {
                    map.insert(f.name().to_string(), Val::Func(Func::Env(f)));
                }
            }
            return Ok(Val::Map(Rc::new(map)));
        }
        if let Some(result) = &self.env.result {
            if name == "result" {
                return Ok(result.clone());
            }
            if let Some(f) = EnvFn::lookup(name) {
                return Ok(Val::Func(Func::Env(f)));
            }
        } else if let Some(f @ (EnvFn::IsNaN | EnvFn::IsInf)) = EnvFn::lookup(name) {
            return Ok(Val::Func(Func::Env(f)));
        }
        if let Some(b) = super::parser::BUILTINS.iter().find(|b| **b == name) {
            return Ok(Val::Func(Func::Builtin(b)));
        }
        fail(at, format!("unknown name {name}"))
    }

    fn binary(&mut self, op: BinOp, left: &Node, right: &Node, at: usize) -> Eval<Val> {
        match op {
            BinOp::And => {
                let l = self.eval(left)?;
                if !assert_bool(&l, at)? {
                    return Ok(Val::Bool(false));
                }
                return self.eval(right);
            }
            BinOp::Or => {
                let l = self.eval(left)?;
                if assert_bool(&l, at)? {
                    return Ok(Val::Bool(true));
                }
                return self.eval(right);
            }
            BinOp::Coalesce => {
                let l = self.eval(left)?;
                if !l.is_nil() {
                    return Ok(l);
                }
                return self.eval(right);
            }
            _ => {}
        }
        let l = self.eval(left)?;
        let r = self.eval(right)?;
        match op {
            BinOp::Eq => Ok(Val::Bool(equal(&l, &r))),
            BinOp::Ne => Ok(Val::Bool(!equal(&l, &r))),
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => compare(op, &l, &r, at).map(Val::Bool),
            BinOp::In => contains_in(&l, &r, at).map(Val::Bool),
            BinOp::Contains | BinOp::StartsWith | BinOp::EndsWith => {
                let a = assert_str(&l, at)?;
                let b = assert_str(&r, at)?;
                Ok(Val::Bool(match op {
                    BinOp::Contains => a.contains(b),
                    BinOp::StartsWith => a.starts_with(b),
                    _ => a.ends_with(b),
                }))
            }
            BinOp::Matches => {
                let pattern = assert_str(&r, at)?;
                let text = assert_str(&l, at)?;
                if let Some(re) = self.env.regexes.get(pattern) {
                    return Ok(Val::Bool(re.is_match(text)));
                }
                match regex::Regex::new(pattern) {
                    Ok(re) => Ok(Val::Bool(re.is_match(text))),
                    Err(e) => fail(at, regex_error(&e)),
                }
            }
            BinOp::Range => {
                let from = to_int(&l, at)?;
                let to = to_int(&r, at)?;
                let size = to.saturating_sub(from).saturating_add(1).max(0) as usize;
                self.spend(at, size)?;
                Ok(Val::List(
                    Rc::new((from..=to).map(Val::Int).collect()),
                    Elem::Int,
                ))
            }
            BinOp::Add => add(&l, &r, at),
            BinOp::Sub => sub(&l, &r, at),
            BinOp::Mul => mul(&l, &r, at),
            BinOp::Div => div(&l, &r, at),
            BinOp::Mod => modulo(&l, &r, at),
            BinOp::Pow => Ok(Val::Float(to_float(&l, at)?.powf(to_float(&r, at)?))),
            BinOp::And | BinOp::Or | BinOp::Coalesce => unreachable_binop(at),
        }
    }

    fn call(&mut self, callee: &Node, args: &[Node], at: usize) -> Eval<Val> {
        // A method: `now().Unix()`, `duration("1h").Hours()`.
        if let NodeKind::Member {
            node,
            property,
            optional,
            ..
        } = &callee.kind
        {
            let base = self.eval(node)?;
            if *optional && base.is_nil() {
                return Err(Stop::ChainNil);
            }
            let name = match &property.kind {
                NodeKind::Str(s) => s.clone(),
                _ => String::new(),
            };
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                values.push(self.eval(a)?);
            }
            if let Val::Time(_) | Val::Duration(_) = base {
                return gotime::call_method(&base, &name, &values, callee.at);
            }
            let f = fetch(&base, &Val::str(&name), callee.at)?;
            return self.call_value(&f, values, at);
        }
        if let NodeKind::Ident(name) = &callee.kind
            && !self.vars.iter().any(|(n, _)| n == name)
            && let Some(f) = EnvFn::lookup(name)
        {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                values.push(self.eval(a)?);
            }
            return self.call_env(f, values, at);
        }
        let f = self.eval(callee)?;
        let mut values = Vec::with_capacity(args.len());
        for a in args {
            values.push(self.eval(a)?);
        }
        self.call_value(&f, values, at)
    }

    fn call_value(&mut self, f: &Val, args: Vec<Val>, at: usize) -> Eval<Val> {
        match f {
            Val::Func(Func::Env(e)) => self.call_env(*e, args, at),
            Val::Func(Func::Builtin(name)) => builtins::call_values(self, name, args, at),
            Val::Nil => fail(at, "reflect: call of reflect.Value.Call on zero Value"),
            other => fail(
                at,
                format!(
                    "reflect: call of reflect.Value.Call on {} Value",
                    other.go_kind()
                ),
            ),
        }
    }

    /// Argo's helpers. `isNil` and `default` look at the whole raw result, not their first
    /// argument: that is what Argo does.
    fn call_env(&mut self, f: EnvFn, args: Vec<Val>, at: usize) -> Eval<Val> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Val::Nil);
        match f {
            EnvFn::AsInt => as_int(&arg(0), at).map(Val::Int64),
            EnvFn::AsFloat => as_float(&arg(0), at).map(Val::Float),
            EnvFn::IsNaN => Ok(Val::Bool(assert_float(&arg(0), at)?.is_nan())),
            EnvFn::IsInf => Ok(Val::Bool(assert_float(&arg(0), at)?.is_infinite())),
            EnvFn::IsNil => Ok(Val::Bool(self.env.result.as_ref().is_none_or(Val::is_nil))),
            EnvFn::Default => match &self.env.result {
                Some(r) if !r.is_nil() => Ok(r.clone()),
                _ => Ok(arg(1)),
            },
        }
    }
}

fn unreachable_binop<T>(at: usize) -> Eval<T> {
    fail(
        at,
        "internal error: logical operator evaluated as arithmetic",
    )
}

/// A Go type assertion `v.(bool)`, with its panic message.
pub(crate) fn assert_bool(v: &Val, at: usize) -> Eval<bool> {
    match v {
        Val::Bool(b) => Ok(*b),
        other => fail(
            at,
            format!(
                "interface conversion: interface {{}} is {}, not bool",
                other.iface_type()
            ),
        ),
    }
}

pub(crate) fn assert_str(v: &Val, at: usize) -> Eval<&str> {
    match v {
        Val::Str(s) => Ok(s),
        other => fail(
            at,
            format!(
                "interface conversion: interface {{}} is {}, not string",
                other.iface_type()
            ),
        ),
    }
}

pub(crate) fn assert_float(v: &Val, at: usize) -> Eval<f64> {
    match v {
        Val::Float(f) => Ok(*f),
        other => fail(
            at,
            format!(
                "interface conversion: interface {{}} is {}, not float64",
                other.iface_type()
            ),
        ),
    }
}

/// Go's `int64(f)` on amd64: NaN and out-of-range values become the minimum int64.
pub(crate) fn float_to_int(f: f64) -> i64 {
    // 2^63 is exactly representable; i64::MAX is not.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-TWO_63..TWO_63).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// `runtime.ToInt`.
pub(crate) fn to_int(v: &Val, at: usize) -> Eval<i64> {
    match v {
        Val::Int(i) | Val::Int64(i) => Ok(*i),
        Val::Float(f) => Ok(float_to_int(*f)),
        other => fail(at, format!("invalid operation: int({})", other.go_type())),
    }
}

/// `runtime.ToFloat64`.
pub(crate) fn to_float(v: &Val, at: usize) -> Eval<f64> {
    match v {
        Val::Int(i) | Val::Int64(i) => Ok(*i as f64),
        Val::Float(f) => Ok(*f),
        other => fail(at, format!("invalid operation: float({})", other.go_type())),
    }
}

/// Argo's `asInt`.
fn as_int(v: &Val, at: usize) -> Eval<i64> {
    match v {
        Val::Float(f) => Ok(float_to_int(*f)),
        Val::Int(i) | Val::Int64(i) => Ok(*i),
        Val::Str(s) => gofmt::parse_int(s).or_else(|e| fail(at, e)),
        other => fail(
            at,
            format!(
                "asInt() not supported on {} {}",
                other.go_type(),
                other.go_string()
            ),
        ),
    }
}

/// Argo's `asFloat`.
fn as_float(v: &Val, at: usize) -> Eval<f64> {
    match v {
        Val::Float(f) => Ok(*f),
        Val::Int(i) | Val::Int64(i) => Ok(*i as f64),
        Val::Str(s) => gofmt::parse_float(s).or_else(|e| fail(at, e)),
        other => fail(
            at,
            format!(
                "asFloat() not supported on {} {}",
                other.go_type(),
                other.go_string()
            ),
        ),
    }
}

enum Num {
    Int(i64),
    Float(f64),
}

fn num(v: &Val) -> Option<Num> {
    match v {
        Val::Int(i) | Val::Int64(i) => Some(Num::Int(*i)),
        Val::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

/// `runtime.Equal`: numbers compare by value across int and float, lists element by
/// element, maps deeply; anything else of different types is unequal. NaN equals nothing.
pub(crate) fn equal(a: &Val, b: &Val) -> bool {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return match (x, y) {
            (Num::Int(x), Num::Int(y)) => x == y,
            (Num::Int(x), Num::Float(y)) => x as f64 == y,
            (Num::Float(x), Num::Int(y)) => x == y as f64,
            (Num::Float(x), Num::Float(y)) => x == y,
        };
    }
    match (a, b) {
        (Val::List(x, ex), Val::List(y, ey)) => {
            if *ex != Elem::Any && *ey != Elem::Any && ex != ey {
                return false;
            }
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equal(p, q))
        }
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Time(x), Val::Time(y)) => x.ts == y.ts,
        (Val::Duration(x), Val::Duration(y)) => x == y,
        (Val::Duration(x), Val::Int(y) | Val::Int64(y))
        | (Val::Int(x) | Val::Int64(x), Val::Duration(y)) => x == y,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Nil, Val::Nil) => true,
        (Val::Map(x), Val::Map(y)) => deep_equal(&Val::Map(x.clone()), &Val::Map(y.clone())),
        _ => false,
    }
}

/// `reflect.DeepEqual`: same types all the way down.
fn deep_equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Map(x), Val::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        (Val::List(x, ex), Val::List(y, ey)) => {
            ex == ey && x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Val::Int(x), Val::Int(y)) | (Val::Int64(x), Val::Int64(y)) => x == y,
        (Val::Duration(x), Val::Duration(y)) => x == y,
        (Val::Float(x), Val::Float(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Nil, Val::Nil) => true,
        (Val::Time(x), Val::Time(y)) => x == y,
        _ => false,
    }
}

/// `runtime.Less`, `More`, `LessOrEqual`, `MoreOrEqual`.
pub(crate) fn compare(op: BinOp, a: &Val, b: &Val, at: usize) -> Eval<bool> {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (num(a), num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => Some(x.cmp(&y)),
        (Some(x), Some(y)) => {
            let f = |n: Num| match n {
                Num::Int(i) => i as f64,
                Num::Float(f) => f,
            };
            // NaN compares false every way, which `partial_cmp` returning None gives us.
            return Ok(cmp_floats(op, f(x), f(y)));
        }
        _ => match (a, b) {
            (Val::Str(x), Val::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
            (Val::Time(x), Val::Time(y)) => Some(x.ts.cmp(&y.ts)),
            (Val::Duration(x), Val::Duration(y)) => Some(x.cmp(y)),
            _ => None,
        },
    };
    let Some(ord) = ord else {
        let sym = match op {
            BinOp::Lt => "<",
            BinOp::Gt => ">",
            BinOp::Le => "<=",
            _ => ">=",
        };
        return fail(
            at,
            format!("invalid operation: {} {sym} {}", a.go_type(), b.go_type()),
        );
    };
    Ok(match op {
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Gt => ord == Ordering::Greater,
        BinOp::Le => ord != Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

fn cmp_floats(op: BinOp, x: f64, y: f64) -> bool {
    match op {
        BinOp::Lt => x < y,
        BinOp::Gt => x > y,
        BinOp::Le => x <= y,
        _ => x >= y,
    }
}

fn arith_error<T>(sym: &str, a: &Val, b: &Val, at: usize) -> Eval<T> {
    fail(
        at,
        format!("invalid operation: {} {sym} {}", a.go_type(), b.go_type()),
    )
}

/// `runtime.Add`.
pub(crate) fn add(a: &Val, b: &Val, at: usize) -> Eval<Val> {
    match (num(a), num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => Ok(Val::Int(x.wrapping_add(y))),
        (Some(x), Some(y)) => Ok(Val::Float(nf(x) + nf(y))),
        _ => match (a, b) {
            (Val::Str(x), Val::Str(y)) => Ok(Val::str(&format!("{x}{y}"))),
            (Val::Time(t), Val::Duration(d)) | (Val::Duration(d), Val::Time(t)) => {
                Ok(Val::Time(t.add(*d)))
            }
            (Val::Duration(x), Val::Duration(y)) => Ok(Val::Duration(x.wrapping_add(*y))),
            _ => arith_error("+", a, b, at),
        },
    }
}

fn nf(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

/// `runtime.Subtract`.
pub(crate) fn sub(a: &Val, b: &Val, at: usize) -> Eval<Val> {
    match (num(a), num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => Ok(Val::Int(x.wrapping_sub(y))),
        (Some(x), Some(y)) => Ok(Val::Float(nf(x) - nf(y))),
        _ => match (a, b) {
            (Val::Time(x), Val::Time(y)) => Ok(Val::Duration(x.sub(y))),
            (Val::Time(t), Val::Duration(d)) => Ok(Val::Time(t.add(d.wrapping_neg()))),
            (Val::Duration(x), Val::Duration(y)) => Ok(Val::Duration(x.wrapping_sub(*y))),
            _ => arith_error("-", a, b, at),
        },
    }
}

/// `runtime.Multiply`, durations included.
pub(crate) fn mul(a: &Val, b: &Val, at: usize) -> Eval<Val> {
    match (num(a), num(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => Ok(Val::Int(x.wrapping_mul(y))),
        (Some(x), Some(y)) => Ok(Val::Float(nf(x) * nf(y))),
        _ => match (a, b) {
            (Val::Duration(d), other) | (other, Val::Duration(d)) => match other {
                Val::Int(i) | Val::Int64(i) | Val::Duration(i) => {
                    Ok(Val::Duration(d.wrapping_mul(*i)))
                }
                Val::Float(f) => Ok(Val::Float(*d as f64 * f)),
                _ => arith_error("*", a, b, at),
            },
            _ => arith_error("*", a, b, at),
        },
    }
}

/// `runtime.Divide`: always float64.
pub(crate) fn div(a: &Val, b: &Val, at: usize) -> Eval<Val> {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => Ok(Val::Float(nf(x) / nf(y))),
        _ => arith_error("/", a, b, at),
    }
}

/// `runtime.Modulo`: integers only.
pub(crate) fn modulo(a: &Val, b: &Val, at: usize) -> Eval<Val> {
    match (num(a), num(b)) {
        (Some(Num::Int(_)), Some(Num::Int(0))) => fail(at, "runtime error: integer divide by zero"),
        (Some(Num::Int(x)), Some(Num::Int(y))) => Ok(Val::Int(x.wrapping_rem(y))),
        _ => arith_error("%", a, b, at),
    }
}

/// `runtime.In`.
pub(crate) fn contains_in(needle: &Val, haystack: &Val, at: usize) -> Eval<bool> {
    match haystack {
        Val::Nil => Ok(false),
        Val::List(items, _) => Ok(items.iter().any(|v| equal(v, needle))),
        Val::Map(m) => match needle {
            Val::Str(s) => Ok(m.contains_key(s.as_ref())),
            Val::Nil => Ok(m.contains_key("")),
            other => fail(
                at,
                format!(
                    "reflect.Value.MapIndex: value of type {} is not assignable to type string",
                    other.go_type()
                ),
            ),
        },
        other => fail(
            at,
            format!("operator \"in\" not defined on {}", other.go_type()),
        ),
    }
}

/// `runtime.Fetch`: `a[i]`, `a.b`.
pub(crate) fn fetch(from: &Val, key: &Val, at: usize) -> Eval<Val> {
    match from {
        Val::List(items, _) => {
            let i = to_int(key, at)?;
            let len = items.len() as i64;
            let index = if i < 0 { len + i } else { i };
            if index < 0 || index >= len {
                return fail(
                    at,
                    format!("index out of range: {index} (array length is {len})"),
                );
            }
            Ok(items[index as usize].clone())
        }
        Val::Str(s) => {
            let i = to_int(key, at)?;
            let bytes = s.as_bytes();
            let len = bytes.len() as i64;
            let index = if i < 0 { len + i } else { i };
            if index < 0 || index >= len {
                return fail(
                    at,
                    format!("index out of range: {index} (array length is {len})"),
                );
            }
            Ok(Val::Int(i64::from(bytes[index as usize])))
        }
        Val::Map(m) => match key {
            Val::Str(k) => Ok(m.get(k.as_ref()).cloned().unwrap_or(Val::Nil)),
            Val::Nil => Ok(m.get("").cloned().unwrap_or(Val::Nil)),
            other => fail(
                at,
                format!(
                    "reflect.Value.MapIndex: value of type {} is not assignable to type string",
                    other.go_type()
                ),
            ),
        },
        other => fail(
            at,
            format!("cannot fetch {} from {}", key.go_string(), other.go_type()),
        ),
    }
}

/// `runtime.Slice`: `a[i:j]` with negative and out-of-range bounds clamped.
pub(crate) fn slice(base: &Val, from: Option<&Val>, to: Option<&Val>, at: usize) -> Eval<Val> {
    let len = match base {
        Val::List(items, _) => items.len() as i64,
        Val::Str(s) => s.len() as i64,
        _ => {
            return fail(
                at,
                format!(
                    "cannot slice {}",
                    from.map_or_else(|| "<nil>".to_string(), Val::go_string)
                ),
            );
        }
    };
    let mut a = match from {
        Some(v) => to_int(v, at)?,
        None => 0,
    };
    let mut b = match to {
        Some(v) => to_int(v, at)?,
        None => len,
    };
    if a < 0 {
        a += len;
    }
    a = a.max(0);
    if b < 0 {
        b += len;
    }
    b = b.clamp(0, len);
    a = a.min(b);
    let (a, b) = (a as usize, b as usize);
    Ok(match base {
        Val::List(items, elem) => Val::List(Rc::new(items[a..b].to_vec()), *elem),
        Val::Str(s) => Val::str(&String::from_utf8_lossy(&s.as_bytes()[a..b])),
        _ => Val::Nil,
    })
}

/// Go's `regexp` error spelling, as close as Rust's `regex` lets us get.
pub(crate) fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text)
        .trim();
    let detail = last.strip_prefix("error: ").unwrap_or(last);
    format!("error parsing regexp: {detail}")
}
