//! The type checker: a port of expr-lang/expr's `checker` package (its "natures").
//!
//! Go compiles every condition against the environment it will run in, so the type of
//! `result` (a `float64`, a `[]float64`, a JSON object, or nil) decides whether
//! `result > 0.9` or `result[0] == "ok"` compiles at all. Compile errors make Argo's
//! measurement `Error`, never `Failed`; checking the same way is what keeps our phases equal
//! to Argo's. With an unknown `result` (lint) only errors that hold for every result remain:
//! syntax, unknown names, wrong arguments to helpers.

use super::ast::{BinOp, Node, NodeKind, UnOp};
use super::eval::{Elem, EnvFn};
use super::gotime;
use super::parser::BUILTINS;

/// A type as the checker sees it (Go's `Nature`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    /// No type information at all (Go's empty `Nature{}`).
    Unknown,
    /// The value nil.
    Nil,
    /// `interface {}`: anything, checked at run time.
    Any,
    Bool,
    Int,
    Int64,
    Float,
    String,
    Time,
    Duration,
    /// A slice: its Go element type and the nature of its elements.
    List(Elem, Box<Ty>),
    /// `map[string]interface {}`.
    Map,
    Func(FnTy),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FnTy {
    Env(EnvFn),
    Builtin(&'static str),
    Method(Sig),
    /// A predicate closure: `func(interface {}) out`, or no output when its body is nil.
    Predicate {
        out: Option<Box<Ty>>,
        body: Box<Ty>,
    },
}

/// Parameter and result types of functions with fixed signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum P {
    Any,
    Bool,
    Int,
    Int64,
    Float,
    String,
    Time,
    Duration,
    ListAny,
    ListString,
    ListFloat,
    ListInt,
}

/// A function signature: parameters and the one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sig {
    pub(crate) params: &'static [P],
    pub(crate) out: P,
}

impl P {
    fn ty(self) -> Ty {
        match self {
            P::Any => Ty::Any,
            P::Bool => Ty::Bool,
            P::Int => Ty::Int,
            P::Int64 => Ty::Int64,
            P::Float => Ty::Float,
            P::String => Ty::String,
            P::Time => Ty::Time,
            P::Duration => Ty::Duration,
            P::ListAny => Ty::List(Elem::Any, Box::new(Ty::Any)),
            P::ListString => Ty::List(Elem::String, Box::new(Ty::String)),
            P::ListFloat => Ty::List(Elem::Float64, Box::new(Ty::Float)),
            P::ListInt => Ty::List(Elem::Int, Box::new(Ty::Int)),
        }
    }
}

impl Sig {
    fn go_type(&self) -> String {
        let params: Vec<String> = self.params.iter().map(|p| p.ty().to_string()).collect();
        format!("func({}) {}", params.join(", "), self.out.ty())
    }
}

/// `reflect.Kind`, for the builtins whose validation looks at kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invalid,
    Interface,
    Bool,
    Int,
    Int64,
    Float64,
    String,
    Struct,
    Slice,
    Map,
    Func,
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s: String = match self {
            Ty::Unknown | Ty::Nil => "unknown".into(),
            Ty::Any => "interface {}".into(),
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Int64 => "int64".into(),
            Ty::Float => "float64".into(),
            Ty::String => "string".into(),
            Ty::Time => "time.Time".into(),
            Ty::Duration => "time.Duration".into(),
            Ty::List(Elem::Any, _) => "[]interface {}".into(),
            Ty::List(Elem::Float64, _) => "[]float64".into(),
            Ty::List(Elem::Int, _) => "[]int".into(),
            Ty::List(Elem::String, _) => "[]string".into(),
            Ty::Map => "map[string]interface {}".into(),
            Ty::Func(FnTy::Env(e)) => e.go_type().into(),
            Ty::Func(FnTy::Builtin(_)) => "func(...interface {}) (interface {}, error)".into(),
            Ty::Func(FnTy::Method(sig)) => sig.go_type(),
            Ty::Func(FnTy::Predicate { out, .. }) => match out {
                Some(o) => format!("func(interface {{}}) {o}"),
                None => "func(interface {})".into(),
            },
        };
        f.write_str(&s)
    }
}

impl Ty {
    fn kind(&self) -> Kind {
        match self {
            Ty::Unknown | Ty::Nil => Kind::Invalid,
            Ty::Any => Kind::Interface,
            Ty::Bool => Kind::Bool,
            Ty::Int => Kind::Int,
            Ty::Int64 | Ty::Duration => Kind::Int64,
            Ty::Float => Kind::Float64,
            Ty::String => Kind::String,
            Ty::Time => Kind::Struct,
            Ty::List(..) => Kind::Slice,
            Ty::Map => Kind::Map,
            Ty::Func(_) => Kind::Func,
        }
    }

    /// Go's `reflect.Type` printed with `%s`: a nil type prints as `%!s(<nil>)`.
    fn reflect_name(&self) -> String {
        match self {
            Ty::Nil => "%!s(<nil>)".into(),
            Ty::Unknown => "interface {}".into(),
            other => other.to_string(),
        }
    }

    pub(crate) fn is_unknown(&self) -> bool {
        matches!(self, Ty::Unknown | Ty::Any)
    }
    fn is_nil(&self) -> bool {
        matches!(self, Ty::Nil)
    }
    fn is_number(&self) -> bool {
        matches!(self, Ty::Int | Ty::Int64 | Ty::Float)
    }
    fn is_integer(&self) -> bool {
        matches!(self, Ty::Int | Ty::Int64)
    }
    fn is_float(&self) -> bool {
        matches!(self, Ty::Float)
    }
    fn is_bool(&self) -> bool {
        matches!(self, Ty::Bool)
    }
    fn is_string(&self) -> bool {
        matches!(self, Ty::String)
    }
    fn is_time(&self) -> bool {
        matches!(self, Ty::Time)
    }
    fn is_duration(&self) -> bool {
        matches!(self, Ty::Duration)
    }
    fn is_array(&self) -> bool {
        matches!(self, Ty::List(..))
    }
    fn is_map(&self) -> bool {
        matches!(self, Ty::Map)
    }

    fn elem(&self) -> Ty {
        match self {
            Ty::List(_, e) => (**e).clone(),
            Ty::Map => Ty::Any,
            _ => Ty::Unknown,
        }
    }

    fn array_of(self) -> Ty {
        Ty::List(Elem::Any, Box::new(self))
    }

    fn same_type(&self, other: &Ty) -> bool {
        match (self, other) {
            (Ty::List(a, _), Ty::List(b, _)) => a == b,
            (Ty::Func(_), Ty::Func(_)) => self.to_string() == other.to_string(),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    /// `Nature.AssignableTo`.
    fn assignable_to(&self, to: &Ty) -> bool {
        if self.is_nil() && matches!(to, Ty::Any) {
            return true;
        }
        if matches!(self, Ty::Unknown | Ty::Nil) || matches!(to, Ty::Unknown | Ty::Nil) {
            return false;
        }
        if self.kind() != to.kind() && to.kind() != Kind::Interface {
            return false;
        }
        matches!(to, Ty::Any) || self.same_type(to)
    }

    /// `Nature.ComparableTo`: which operands `==` accepts.
    fn comparable_to(&self, other: &Ty) -> bool {
        self.is_unknown()
            || other.is_unknown()
            || self.is_nil()
            || other.is_nil()
            || (self.is_number() && other.is_number())
            || (self.is_duration() && other.is_duration())
            || (self.is_time() && other.is_time())
            || (self.is_array() && other.is_array())
            || self.assignable_to(other)
    }

    fn any_of(&self, checks: &[Check]) -> bool {
        checks.iter().any(|c| match c {
            Check::Bool => self.is_bool(),
            Check::String => self.is_string(),
            Check::Integer => self.is_integer(),
            Check::Number => self.is_number(),
            Check::Map => self.is_map(),
            Check::Array => self.is_array(),
            Check::Time => self.is_time(),
            Check::Duration => self.is_duration(),
        })
    }

    /// `Nature.MaybeCompatible`: one side unknown and the other of an acceptable kind.
    fn maybe_compatible(&self, other: &Ty, checks: &[Check]) -> bool {
        let (a, b) = (self.is_unknown(), other.is_unknown());
        (a && (b || other.any_of(checks))) || (b && self.any_of(checks))
    }

    fn promote(&self, other: &Ty) -> Ty {
        if self.is_unknown() || other.is_unknown() {
            Ty::Unknown
        } else if self.is_float() || other.is_float() {
            Ty::Float
        } else {
            Ty::Int
        }
    }
}

#[derive(Clone, Copy)]
enum Check {
    Bool,
    String,
    Integer,
    Number,
    Map,
    Array,
    Time,
    Duration,
}

/// What names exist: Argo's condition environment, or its time environment.
#[derive(Debug, Clone)]
pub(crate) enum CheckEnv {
    /// `EvalCondition`: `result` of this type, and Argo's six helpers.
    Condition(Ty),
    /// `EvalTime`: only `isNaN` and `isInf`.
    Time,
}

impl CheckEnv {
    fn get(&self, name: &str) -> Option<Ty> {
        match self {
            CheckEnv::Condition(result) => {
                if name == "result" {
                    return Some(result.clone());
                }
                EnvFn::lookup(name).map(|f| Ty::Func(FnTy::Env(f)))
            }
            CheckEnv::Time => match EnvFn::lookup(name) {
                Some(f @ (EnvFn::IsNaN | EnvFn::IsInf)) => Some(Ty::Func(FnTy::Env(f))),
                _ => None,
            },
        }
    }
}

/// A check error: Go's message and the byte offset it points at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckError {
    pub(crate) message: String,
    pub(crate) offset: usize,
}

/// Checks `node` (rewriting integer literals passed to float parameters into floats, as Go
/// does) and returns the type of the whole expression.
pub(crate) fn check(node: &mut Node, env: &CheckEnv) -> Result<Ty, CheckError> {
    let mut c = Checker {
        env,
        err: None,
        predicates: Vec::new(),
        vars: Vec::new(),
    };
    let ty = c.visit(node);
    match c.err {
        Some(e) => Err(e),
        None => Ok(ty),
    }
}

struct Checker<'a> {
    env: &'a CheckEnv,
    err: Option<CheckError>,
    /// Predicate scopes: the collection's type and the `#name` variables.
    predicates: Vec<(Ty, Vec<(&'static str, Ty)>)>,
    vars: Vec<(String, Ty)>,
}

impl Checker<'_> {
    /// Records the first error only, as Go does, and returns an unknown type.
    fn error(&mut self, at: usize, message: String) -> Ty {
        if self.err.is_none() {
            self.err = Some(CheckError {
                message,
                offset: at,
            });
        }
        Ty::Unknown
    }

    fn visit(&mut self, node: &mut Node) -> Ty {
        let at = node.at;
        match &mut node.kind {
            NodeKind::Nil => Ty::Nil,
            NodeKind::Bool(_) => Ty::Bool,
            NodeKind::Int(_) => Ty::Int,
            NodeKind::Float(_) => Ty::Float,
            NodeKind::Str(_) => Ty::String,
            NodeKind::Ident(name) => {
                let name = name.clone();
                self.ident(&name, at)
            }
            NodeKind::Pointer(name) => {
                let name = name.clone();
                self.pointer(&name, at)
            }
            NodeKind::Unary { op, text, node } => {
                let (op, text) = (*op, *text);
                let t = self.visit(node);
                match op {
                    UnOp::Not if t.is_bool() || t.is_unknown() => Ty::Bool,
                    UnOp::Neg | UnOp::Plus if t.is_number() => t,
                    UnOp::Neg | UnOp::Plus if t.is_unknown() => Ty::Unknown,
                    _ => self.error(
                        at,
                        format!("invalid operation: {text} (mismatched type {t})"),
                    ),
                }
            }
            NodeKind::Binary {
                op,
                text,
                left,
                right,
            } => {
                let (op, text) = (*op, *text);
                let l = self.visit(left);
                let r = self.visit(right);
                let literal_pattern = match &right.kind {
                    NodeKind::Str(s) => Some(s.clone()),
                    _ => None,
                };
                self.binary(op, text, &l, &r, literal_pattern, at)
            }
            NodeKind::Chain(inner) => self.visit(inner),
            NodeKind::Member {
                node: base,
                property,
                optional,
                method,
            } => {
                let (optional, method) = (*optional, *method);
                self.member(base, property, optional, method, at)
            }
            NodeKind::Slice { node, from, to } => {
                let t = self.visit(node);
                if t.is_unknown() {
                    return Ty::Unknown;
                }
                if !matches!(t, Ty::String | Ty::List(..)) {
                    return self.error(at, format!("cannot slice {t}"));
                }
                for bound in [from, to].into_iter().flatten() {
                    let b = self.visit(bound);
                    if !b.is_integer() && !b.is_unknown() {
                        return self.error(bound.at, format!("non-integer slice index {b}"));
                    }
                }
                t
            }
            NodeKind::Call { callee, args } => self.call(callee, args, at),
            NodeKind::Builtin { name, args } => {
                let name = name.clone();
                self.builtin(&name, args, at)
            }
            NodeKind::Predicate(body) => {
                let t = self.visit(body);
                let out = if t.is_unknown() {
                    Some(Box::new(Ty::Any))
                } else if t.is_nil() {
                    None
                } else {
                    Some(Box::new(t.clone()))
                };
                Ty::Func(FnTy::Predicate {
                    out,
                    body: Box::new(t),
                })
            }
            NodeKind::Conditional { cond, yes, no } => {
                let c = self.visit(cond);
                if !c.is_bool() && !c.is_unknown() {
                    return self.error(
                        cond.at,
                        format!("non-bool expression (type {c}) used as condition"),
                    );
                }
                let t1 = self.visit(yes);
                let t2 = self.visit(no);
                match (t1.is_nil(), t2.is_nil()) {
                    (true, false) => t2,
                    (false, true) => t1,
                    (true, true) => Ty::Nil,
                    _ if t1.assignable_to(&t2) => {
                        if t1.is_array() && t2.is_array() {
                            let (e1, e2) = (t1.elem(), t2.elem());
                            if !e1.assignable_to(&e2) || !e2.assignable_to(&e1) {
                                return Ty::Any.array_of();
                            }
                        }
                        t1
                    }
                    _ => Ty::Unknown,
                }
            }
            NodeKind::Array(items) => {
                let mut prev = Ty::Unknown;
                let mut same = true;
                for (i, item) in items.iter_mut().enumerate() {
                    let t = self.visit(item);
                    if i > 0 && t.kind() != prev.kind() {
                        same = false;
                    }
                    prev = t;
                }
                if same {
                    prev.array_of()
                } else {
                    Ty::Any.array_of()
                }
            }
            NodeKind::Map(pairs) => {
                for (k, v) in pairs.iter_mut() {
                    self.visit(k);
                    self.visit(v);
                }
                Ty::Map
            }
            NodeKind::Let { name, value, body } => {
                let name = name.clone();
                if self.env.get(&name).is_some() {
                    return self.error(at, format!("cannot redeclare {name}"));
                }
                if BUILTINS.contains(&name.as_str()) {
                    return self.error(at, format!("cannot redeclare builtin {name}"));
                }
                if self.vars.iter().any(|(n, _)| *n == name) {
                    return self.error(at, format!("cannot redeclare variable {name}"));
                }
                let t = self.visit(value);
                self.vars.push((name, t));
                let out = self.visit(body);
                self.vars.pop();
                out
            }
        }
    }

    fn ident(&mut self, name: &str, at: usize) -> Ty {
        if let Some((_, t)) = self.vars.iter().rev().find(|(n, _)| n == name) {
            return t.clone();
        }
        if name == "$env" {
            return Ty::Unknown;
        }
        if let Some(t) = self.env.get(name) {
            return t;
        }
        if let Some(b) = BUILTINS.iter().find(|b| **b == name) {
            return Ty::Func(FnTy::Builtin(b));
        }
        self.error(at, format!("unknown name {name}"))
    }

    fn pointer(&mut self, name: &str, at: usize) -> Ty {
        let Some((collection, vars)) = self.predicates.last() else {
            return self.error(at, "cannot use pointer accessor outside predicate".into());
        };
        if name.is_empty() {
            if collection.is_unknown() {
                return Ty::Unknown;
            }
            if collection.is_array() {
                return collection.elem();
            }
            let message = format!("cannot use {collection} as array");
            return self.error(at, message);
        }
        if let Some((_, t)) = vars.iter().find(|(n, _)| *n == name) {
            return t.clone();
        }
        self.error(at, format!("unknown pointer #{name}"))
    }

    fn binary(
        &mut self,
        op: BinOp,
        text: &str,
        l: &Ty,
        r: &Ty,
        literal_pattern: Option<String>,
        at: usize,
    ) -> Ty {
        use Check as C;
        let ok = match op {
            BinOp::Eq | BinOp::Ne => l.comparable_to(r).then_some(Ty::Bool),
            BinOp::Or | BinOp::And => ((l.is_bool() && r.is_bool())
                || l.maybe_compatible(r, &[C::Bool]))
            .then_some(Ty::Bool),
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => ((l.is_number() && r.is_number())
                || (l.is_string() && r.is_string())
                || (l.is_time() && r.is_time())
                || (l.is_duration() && r.is_duration())
                || l.maybe_compatible(r, &[C::Number, C::String, C::Time, C::Duration]))
            .then_some(Ty::Bool),
            BinOp::Sub => {
                if l.is_number() && r.is_number() {
                    Some(l.promote(r))
                } else if l.is_time() && r.is_time() {
                    Some(Ty::Duration)
                } else if l.is_time() && r.is_duration() {
                    Some(Ty::Time)
                } else if l.is_duration() && r.is_duration() {
                    Some(Ty::Duration)
                } else if l.maybe_compatible(r, &[C::Number, C::Time, C::Duration]) {
                    Some(Ty::Unknown)
                } else {
                    None
                }
            }
            BinOp::Mul => {
                if l.is_number() && r.is_number() {
                    Some(l.promote(r))
                } else if (l.is_number() && r.is_duration())
                    || (l.is_duration() && r.is_number())
                    || (l.is_duration() && r.is_duration())
                {
                    Some(Ty::Duration)
                } else if l.maybe_compatible(r, &[C::Number, C::Duration]) {
                    Some(Ty::Unknown)
                } else {
                    None
                }
            }
            BinOp::Div | BinOp::Pow => ((l.is_number() && r.is_number())
                || l.maybe_compatible(r, &[C::Number]))
            .then_some(Ty::Float),
            BinOp::Mod => ((l.is_integer() && r.is_integer())
                || l.maybe_compatible(r, &[C::Integer]))
            .then_some(Ty::Int),
            BinOp::Add => {
                if l.is_number() && r.is_number() {
                    Some(l.promote(r))
                } else if l.is_string() && r.is_string() {
                    Some(Ty::String)
                } else if (l.is_time() && r.is_duration()) || (l.is_duration() && r.is_time()) {
                    Some(Ty::Time)
                } else if l.is_duration() && r.is_duration() {
                    Some(Ty::Duration)
                } else if l.maybe_compatible(r, &[C::Number, C::String, C::Time, C::Duration]) {
                    Some(Ty::Unknown)
                } else {
                    None
                }
            }
            BinOp::In => {
                if r.is_map() {
                    if !l.is_unknown() && !l.assignable_to(&Ty::String) {
                        return self.error(at, format!("cannot use {l} as type string in map key"));
                    }
                    Some(Ty::Bool)
                } else if r.is_array() {
                    let elem = r.elem();
                    if !l.comparable_to(&elem) {
                        return self.error(at, format!("cannot use {l} as type {elem} in array"));
                    }
                    Some(Ty::Bool)
                } else if (l.is_unknown() && r.any_of(&[C::String, C::Array, C::Map]))
                    || r.is_unknown()
                {
                    Some(Ty::Bool)
                } else {
                    None
                }
            }
            BinOp::Matches => {
                if let Some(pattern) = literal_pattern
                    && let Err(e) = regex::Regex::new(&pattern)
                {
                    return self.error(at, super::eval::regex_error(&e));
                }
                ((l.is_string() && r.is_string()) || l.maybe_compatible(r, &[C::String]))
                    .then_some(Ty::Bool)
            }
            BinOp::Contains | BinOp::StartsWith | BinOp::EndsWith => {
                ((l.is_string() && r.is_string()) || l.maybe_compatible(r, &[C::String]))
                    .then_some(Ty::Bool)
            }
            BinOp::Range => ((l.is_integer() && r.is_integer())
                || l.maybe_compatible(r, &[C::Integer]))
            .then_some(Ty::Int.array_of()),
            BinOp::Coalesce => Some(match (l.is_nil(), r.is_nil()) {
                (true, false) => r.clone(),
                (false, true) => l.clone(),
                (true, true) => Ty::Nil,
                _ if r.assignable_to(l) => l.clone(),
                _ => Ty::Unknown,
            }),
        };
        match ok {
            Some(t) => t,
            None => self.error(
                at,
                format!("invalid operation: {text} (mismatched types {l} and {r})"),
            ),
        }
    }

    fn member(
        &mut self,
        base_node: &mut Node,
        property: &mut Node,
        optional: bool,
        method: bool,
        at: usize,
    ) -> Ty {
        let prop_name = match &property.kind {
            NodeKind::Str(s) => Some(s.clone()),
            _ => None,
        };
        if matches!(&base_node.kind, NodeKind::Ident(n) if n == "$env")
            && !self.vars.iter().any(|(n, _)| n == "$env")
        {
            let Some(name) = prop_name else {
                return Ty::Unknown;
            };
            return match self.env.get(&name) {
                Some(t) => t,
                None if optional => Ty::Unknown,
                None => self.error(at, format!("unknown name {name}")),
            };
        }
        let base = self.visit(base_node);
        let prop = self.visit(property);
        if base.is_unknown() {
            return Ty::Unknown;
        }
        if let Some(name) = &prop_name {
            if base.is_nil() {
                return self.error(at, format!("type nil has no field {name}"));
            }
            let receiver = match base {
                Ty::Time => Some(P::Time),
                Ty::Duration => Some(P::Duration),
                _ => None,
            };
            if let Some(sig) = receiver.and_then(|r| gotime::method_sig(r, name)) {
                return Ty::Func(FnTy::Method(sig));
            }
        }
        match &base {
            Ty::Map => {
                if !prop.assignable_to(&Ty::String) && !prop.is_unknown() {
                    return self.error(
                        property.at,
                        format!("cannot use {prop} to get an element from {base}"),
                    );
                }
                return Ty::Any;
            }
            Ty::List(..) => {
                if !prop.is_integer() && !prop.is_unknown() {
                    return self.error(
                        property.at,
                        format!(
                            "array elements can only be selected using an integer (got {prop})"
                        ),
                    );
                }
                return base.elem();
            }
            _ => {}
        }
        match prop_name {
            Some(name) if method => self.error(at, format!("type {base} has no method {name}")),
            Some(name) => self.error(at, format!("type {base} has no field {name}")),
            None => self.error(at, format!("type {base}[{prop}] is undefined")),
        }
    }

    fn call(&mut self, callee: &mut Node, args: &mut [Node], at: usize) -> Ty {
        let t = self.visit(callee);
        if t.is_unknown() {
            return Ty::Unknown;
        }
        let name = match &callee.kind {
            NodeKind::Ident(n) => n.clone(),
            NodeKind::Member { property, .. } => match &property.kind {
                NodeKind::Str(s) => s.clone(),
                _ => "function".into(),
            },
            _ => "function".into(),
        };
        match t {
            Ty::Func(FnTy::Env(f)) => self.call_sig(&name, &env_sig(f), args, at),
            Ty::Func(FnTy::Method(sig)) => self.call_sig(&name, &sig, args, at),
            Ty::Func(FnTy::Builtin(b)) => self.builtin(b, args, at),
            Ty::Func(FnTy::Predicate { .. }) => self.error(at, format!("{t} is not callable")),
            Ty::Nil => self.error(at, format!("{name} is nil; cannot call nil as function")),
            other => self.error(at, format!("{other} is not callable")),
        }
    }

    fn call_sig(&mut self, name: &str, sig: &Sig, args: &mut [Node], at: usize) -> Ty {
        match self.check_arguments(name, sig, args, at) {
            Ok(t) => t,
            Err((message, at)) => self.error(at, message),
        }
    }

    /// Go's `checkArguments`: argument count, then each argument against its parameter.
    /// Integer literals passed as floats are rewritten into float literals.
    fn check_arguments(
        &mut self,
        name: &str,
        sig: &Sig,
        args: &mut [Node],
        at: usize,
    ) -> Result<Ty, (String, usize)> {
        let count_error = if args.len() > sig.params.len() {
            Some(format!("too many arguments to call {name}"))
        } else if args.len() < sig.params.len() {
            Some(format!("not enough arguments to call {name}"))
        } else {
            None
        };
        if let Some(message) = count_error {
            for arg in args.iter_mut() {
                self.visit(arg);
            }
            return Err((message, at));
        }
        for (arg, param) in args.iter_mut().zip(sig.params) {
            let t = self.visit(arg);
            let want = param.ty();
            if want.is_float() && t.is_integer() {
                ints_to_floats(arg);
                continue;
            }
            if want.is_integer() && t.is_integer() {
                continue;
            }
            if t.is_nil() {
                if matches!(want, Ty::Any) {
                    continue;
                }
                return Err((
                    format!("cannot use nil as argument (type {want}) to call {name}"),
                    arg.at,
                ));
            }
            if !t.assignable_to(&want) && !t.is_unknown() {
                // Go's message ends with a space; Argo prints it as is.
                return Err((
                    format!("cannot use {t} as argument (type {want}) to call {name} "),
                    arg.at,
                ));
            }
        }
        Ok(sig.out.ty())
    }

    fn begin(&mut self, collection: Ty, vars: Vec<(&'static str, Ty)>) {
        self.predicates.push((collection, vars));
    }

    fn end(&mut self) {
        self.predicates.pop();
    }

    /// Checks the collection argument of a predicate builtin.
    fn collection(&mut self, name: &str, arg: &mut Node) -> Option<Ty> {
        let t = self.visit(arg);
        if !t.is_array() && !t.is_unknown() {
            self.error(arg.at, format!("builtin {name} takes only array (got {t})"));
            return None;
        }
        Some(t)
    }

    /// Visits a predicate in the scope of `collection` and returns (output, body) types.
    fn predicate(
        &mut self,
        collection: Ty,
        vars: Vec<(&'static str, Ty)>,
        arg: &mut Node,
    ) -> Option<(Option<Ty>, Ty)> {
        self.begin(collection, vars);
        let t = self.visit(arg);
        self.end();
        match t {
            Ty::Func(FnTy::Predicate { out, body }) => Some((out.map(|o| *o), *body)),
            _ => None,
        }
    }

    fn builtin(&mut self, name: &str, args: &mut [Node], at: usize) -> Ty {
        const ONE_IN_ONE_OUT: &str = "predicate should has one input and one output param";
        match name {
            "all" | "none" | "any" | "one" | "filter" | "count" | "find" | "findLast"
            | "findIndex" | "findLastIndex" | "map" | "sum" | "sortBy" | "reduce" => {
                let Some((first, rest)) = args.split_first_mut() else {
                    return self.error(at, "expected at least 2 arguments".into());
                };
                let Some(collection) = self.collection(name, first) else {
                    return Ty::Unknown;
                };
                if rest.is_empty() {
                    // `count(xs)` and `sum(xs)` take the elements themselves.
                    return match name {
                        "count" => Ty::Int,
                        "sum" if collection.is_unknown() => Ty::Unknown,
                        "sum" => collection.elem(),
                        _ => self.error(at, "expected at least 2 arguments".into()),
                    };
                }
                let vars = match name {
                    "map" => vec![("index", Ty::Int)],
                    "reduce" => vec![("index", Ty::Int), ("acc", Ty::Unknown)],
                    _ => vec![],
                };
                let (pred_node, extra) = rest.split_at_mut(1);
                let pred_at = pred_node[0].at;
                let predicate = self.predicate(collection.clone(), vars, &mut pred_node[0]);
                for e in extra.iter_mut() {
                    self.visit(e);
                }
                let Some((out, body)) = predicate else {
                    let message = if name == "reduce" {
                        "predicate should has two input and one output param"
                    } else {
                        ONE_IN_ONE_OUT
                    };
                    return self.error(pred_at, message.into());
                };
                let Some(out) = out else {
                    let message = if name == "reduce" {
                        "predicate should has two input and one output param"
                    } else {
                        ONE_IN_ONE_OUT
                    };
                    return self.error(pred_at, message.into());
                };
                let needs_bool = !matches!(name, "map" | "sum" | "sortBy" | "reduce");
                if needs_bool && !out.is_bool() && !out.is_unknown() {
                    return self.error(
                        pred_at,
                        format!("predicate should return boolean (got {out})"),
                    );
                }
                match name {
                    "all" | "none" | "any" | "one" => Ty::Bool,
                    "count" | "findIndex" | "findLastIndex" => Ty::Int,
                    "filter" if collection.is_unknown() => Ty::Any.array_of(),
                    "filter" => collection.elem().array_of(),
                    "find" | "findLast" if collection.is_unknown() => Ty::Unknown,
                    "find" | "findLast" => collection.elem(),
                    "map" => body.array_of(),
                    "sum" => out,
                    "sortBy" => collection,
                    _ => body, // reduce
                }
            }
            "groupBy" | "timezone" => self.error(
                at,
                format!("builtin {name} is not supported by rollout-runner"),
            ),
            "get" => self.builtin_get(args, at),
            _ => {
                if let Some(overloads) = overloads(name) {
                    let mut last = None;
                    for sig in overloads {
                        match self.check_arguments(name, sig, args, at) {
                            Ok(t) => return t,
                            Err(e) => last = Some(e),
                        }
                    }
                    return match last {
                        Some((message, at)) => self.error(at, message),
                        None => self.error(at, format!("no matching overload for {name}")),
                    };
                }
                let types: Vec<Ty> = args
                    .iter_mut()
                    .map(|a| {
                        let t = self.visit(a);
                        if t.is_unknown() { Ty::Any } else { t }
                    })
                    .collect();
                match validate(name, &types) {
                    Ok(t) => t,
                    Err(message) => self.error(at, message),
                }
            }
        }
    }

    fn builtin_get(&mut self, args: &mut [Node], at: usize) -> Ty {
        if args.len() != 2 {
            return self.error(
                at,
                format!(
                    "invalid number of arguments (expected 2, got {})",
                    args.len()
                ),
            );
        }
        let base = self.visit(&mut args[0]);
        let prop = self.visit(&mut args[1]);
        if base.is_unknown() {
            return Ty::Unknown;
        }
        match base {
            Ty::List(..) => {
                if !prop.is_integer() && !prop.is_unknown() {
                    return self.error(args[1].at, format!("non-integer slice index {prop}"));
                }
                base.elem()
            }
            Ty::Map => {
                if !prop.assignable_to(&Ty::String) && !prop.is_unknown() {
                    return self.error(
                        args[1].at,
                        format!("cannot use {prop} to get an element from {base}"),
                    );
                }
                Ty::Any
            }
            _ => self.error(args[0].at, format!("type {base} does not support indexing")),
        }
    }
}

/// Go's `traverseAndReplaceIntegerNodesWithFloatNodes`.
fn ints_to_floats(node: &mut Node) {
    match &mut node.kind {
        NodeKind::Int(i) => node.kind = NodeKind::Float(*i as f64),
        NodeKind::Unary { node, .. } => ints_to_floats(node),
        NodeKind::Binary {
            op: BinOp::Add | BinOp::Sub | BinOp::Mul,
            left,
            right,
            ..
        } => {
            ints_to_floats(left);
            ints_to_floats(right);
        }
        _ => {}
    }
}

fn env_sig(f: EnvFn) -> Sig {
    match f {
        EnvFn::AsInt => Sig {
            params: &[P::Any],
            out: P::Int64,
        },
        EnvFn::AsFloat => Sig {
            params: &[P::Any],
            out: P::Float,
        },
        EnvFn::IsNaN | EnvFn::IsInf => Sig {
            params: &[P::Float],
            out: P::Bool,
        },
        EnvFn::IsNil => Sig {
            params: &[P::Any],
            out: P::Bool,
        },
        EnvFn::Default => Sig {
            params: &[P::Any, P::Any],
            out: P::Any,
        },
    }
}

/// Builtins declared in Go with a list of typed overloads (`Types:`).
fn overloads(name: &str) -> Option<&'static [Sig]> {
    use P::*;
    macro_rules! s {
        ($params:expr, $out:expr) => {
            Sig {
                params: $params,
                out: $out,
            }
        };
    }
    Some(match name {
        "type" | "string" | "toJSON" => &[s!(&[Any], String)],
        "trim" => &[s!(&[String], String), s!(&[String, String], String)],
        "trimPrefix" | "trimSuffix" => &[s!(&[String, String], String), s!(&[String], String)],
        "upper" | "lower" | "toBase64" | "fromBase64" => &[s!(&[String], String)],
        "split" | "splitAfter" => &[
            s!(&[String, String], ListString),
            s!(&[String, String, Int], ListString),
        ],
        "replace" => &[
            s!(&[String, String, String, Int], String),
            s!(&[String, String, String], String),
        ],
        "repeat" => &[s!(&[String, Int], String)],
        "join" => &[
            s!(&[ListString, String], String),
            s!(&[ListAny, String], String),
            s!(&[ListAny], String),
            s!(&[ListString, String], String),
            s!(&[ListString], String),
        ],
        "indexOf" | "lastIndexOf" => &[s!(&[String, String], Int)],
        "hasPrefix" | "hasSuffix" => &[s!(&[String, String], Bool)],
        "fromJSON" => &[s!(&[String], Any)],
        "duration" => &[s!(&[String], Duration)],
        "sort" => &[
            s!(&[ListAny, String], ListAny),
            s!(&[ListInt, String], ListAny),
            s!(&[ListFloat, String], ListAny),
            s!(&[ListString, String], ListAny),
            s!(&[ListAny], ListAny),
            s!(&[ListFloat], ListAny),
            s!(&[ListString], ListAny),
            s!(&[ListInt], ListAny),
        ],
        "bitand" | "bitor" | "bitxor" | "bitnand" | "bitshl" | "bitshr" | "bitushr" => {
            &[s!(&[Int, Int], Int)]
        }
        "bitnot" => &[s!(&[Int], Int)],
        _ => return None,
    })
}

/// Builtins declared in Go with a `Validate` function over argument types.
fn validate(name: &str, args: &[Ty]) -> Result<Ty, String> {
    let one = || {
        if args.len() != 1 {
            Err(format!(
                "invalid number of arguments (expected 1, got {})",
                args.len()
            ))
        } else {
            Ok(&args[0])
        }
    };
    let numeric = |k: Kind| matches!(k, Kind::Int | Kind::Int64 | Kind::Float64);
    match name {
        "len" => {
            let a = one()?;
            match a.kind() {
                Kind::Slice | Kind::Map | Kind::String | Kind::Interface => Ok(Ty::Int),
                _ => Err(format!(
                    "invalid argument for len (type {})",
                    a.reflect_name()
                )),
            }
        }
        "abs" => {
            let a = one()?;
            if numeric(a.kind()) || a.kind() == Kind::Interface {
                Ok(a.clone())
            } else {
                Err(format!(
                    "invalid argument for abs (type {})",
                    a.reflect_name()
                ))
            }
        }
        "ceil" | "floor" | "round" => {
            let a = one()?;
            if numeric(a.kind()) || a.kind() == Kind::Interface {
                Ok(Ty::Float)
            } else {
                Err(format!(
                    "invalid argument for {name} (type {})",
                    a.reflect_name()
                ))
            }
        }
        "int" | "float" => {
            let a = one()?;
            if numeric(a.kind()) || matches!(a.kind(), Kind::Interface | Kind::String) {
                Ok(if name == "int" { Ty::Int } else { Ty::Float })
            } else {
                Err(format!(
                    "invalid argument for {name} (type {})",
                    a.reflect_name()
                ))
            }
        }
        "max" | "min" | "mean" | "median" => {
            if args.is_empty() {
                return Err(format!("not enough arguments to call {name}"));
            }
            for a in args {
                match a.kind() {
                    Kind::Interface | Kind::Slice => return Ok(Ty::Any),
                    k if numeric(k) => {}
                    _ => {
                        return Err(format!(
                            "invalid argument for {name} (type {})",
                            a.reflect_name()
                        ));
                    }
                }
            }
            Ok(args[0].clone())
        }
        "now" => {
            if args.is_empty() {
                Ok(Ty::Time)
            } else {
                Err(format!(
                    "invalid number of arguments (expected 0, got {})",
                    args.len()
                ))
            }
        }
        "date" => {
            if args.is_empty() {
                return Err("invalid number of arguments (expected at least 1, got 0)".into());
            }
            if args.len() > 3 {
                return Err(format!(
                    "invalid number of arguments (expected at most 3, got {})",
                    args.len()
                ));
            }
            Ok(Ty::Time)
        }
        "first" | "last" => {
            let a = one()?;
            match a {
                Ty::Any => Ok(Ty::Any),
                Ty::List(Elem::Any, _) => Ok(Ty::Any),
                Ty::List(Elem::Float64, _) => Ok(Ty::Float),
                Ty::List(Elem::Int, _) => Ok(Ty::Int),
                Ty::List(Elem::String, _) => Ok(Ty::String),
                _ => Err(format!(
                    "cannot get {name} element from {}",
                    a.reflect_name()
                )),
            }
        }
        "take" => {
            if args.len() != 2 {
                return Err(format!(
                    "invalid number of arguments (expected 2, got {})",
                    args.len()
                ));
            }
            if !matches!(args[0].kind(), Kind::Interface | Kind::Slice) {
                return Err(format!("cannot take from {}", args[0].reflect_name()));
            }
            if !matches!(args[1].kind(), Kind::Interface | Kind::Int | Kind::Int64) {
                return Err(format!("cannot take {} elements", args[1].reflect_name()));
            }
            Ok(args[0].clone())
        }
        "keys" | "values" | "toPairs" => {
            let a = one()?;
            if matches!(a.kind(), Kind::Interface | Kind::Map) {
                Ok(Ty::Any.array_of())
            } else {
                Err(match name {
                    "keys" => format!("cannot get keys from {}", a.reflect_name()),
                    "values" => format!("cannot get values from {}", a.reflect_name()),
                    _ => format!("cannot transform {} to pairs", a.reflect_name()),
                })
            }
        }
        "fromPairs" | "reverse" | "uniq" => {
            let a = one()?;
            if matches!(a.kind(), Kind::Interface | Kind::Slice) {
                Ok(if name == "fromPairs" {
                    Ty::Map
                } else {
                    Ty::Any.array_of()
                })
            } else {
                Err(match name {
                    "fromPairs" => format!("cannot transform {} from pairs", a.reflect_name()),
                    "reverse" => format!("cannot reverse {}", a.reflect_name()),
                    _ => format!("cannot uniq {}", a.reflect_name()),
                })
            }
        }
        "concat" | "flatten" => {
            if name == "concat" && args.is_empty() {
                return Err("invalid number of arguments (expected at least 1, got 0)".into());
            }
            if name == "flatten" {
                one()?;
            }
            for a in args {
                if !matches!(a.kind(), Kind::Interface | Kind::Slice) {
                    return Err(format!("cannot {name} {}", a.reflect_name()));
                }
            }
            Ok(Ty::Any.array_of())
        }
        _ => Err(format!("unknown builtin {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn check_src(src: &str, result: Ty) -> Result<Ty, String> {
        let mut node = parse(src).map_err(|e| e.message)?;
        check(&mut node, &CheckEnv::Condition(result)).map_err(|e| e.message)
    }

    fn vector() -> Ty {
        Ty::List(Elem::Float64, Box::new(Ty::Float))
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            check_src("invalidVariable", Ty::Bool).unwrap_err(),
            "unknown name invalidVariable"
        );
        assert_eq!(
            check_src("false && foo > 1", Ty::Unknown).unwrap_err(),
            "unknown name foo"
        );
        assert_eq!(check_src("len(result) > 0", Ty::Unknown), Ok(Ty::Bool));
    }

    #[test]
    fn types_follow_the_result() {
        assert_eq!(check_src("result[0] >= 0.95", vector()), Ok(Ty::Bool));
        assert_eq!(
            check_src("result[0] == 'ok'", vector()).unwrap_err(),
            "invalid operation: == (mismatched types float64 and string)"
        );
        assert_eq!(
            check_src("asFloat(result) == \"1.1\"", Ty::String).unwrap_err(),
            "invalid operation: == (mismatched types float64 and string)"
        );
        assert_eq!(
            check_src("isNaN(result)", vector()).unwrap_err(),
            "cannot use []float64 as argument (type float64) to call isNaN "
        );
        assert_eq!(
            check_src("result.Name() == 'hi'", Ty::Bool).unwrap_err(),
            "type bool has no method Name"
        );
        assert_eq!(
            check_src("all(result, # > 1)", Ty::Float).unwrap_err(),
            "builtin all takes only array (got float64)"
        );
        assert_eq!(
            check_src("'a' in result", vector()).unwrap_err(),
            "cannot use string as type float64 in array"
        );
        assert_eq!(check_src("isNaN(1)", Ty::Unknown), Ok(Ty::Bool));
    }
}
