//! Constant folding, as expr-lang/expr's optimizer does it (`optimizer/fold.go`, v1.17) after
//! type checking and before running a condition.
//!
//! It is not an optimisation here but a matter of fidelity: folding decides what Argo never
//! evaluates. `result[0] >= 0.95 || true` is `true` without indexing an empty result, and
//! `asInt(result) > 0 && false` is `false` without calling `asInt`. Only the folds of fold.go
//! are done, in its order (children first, repeated until nothing changes): unary `-`, `+` and
//! `!` of constants; `+ - * / % **` of integer and float constants (`/` and `**` give floats,
//! integer arithmetic wraps as Go's does; `%` by zero is left to run time); string `+`; `&&`
//! and `||` with a constant operand; `==` of two integers, two strings or two booleans.

use crate::ast::{BinOp, Node, NodeKind, UnOp};

/// Folds `node` in place until no fold applies (fold.go repeats up to 1,000 times).
pub(crate) fn fold(node: &mut Node) {
    for _ in 0..1000 {
        if !fold_once(node) {
            break;
        }
    }
}

/// One post-order pass; whether anything changed.
fn fold_once(node: &mut Node) -> bool {
    let mut applied = false;
    for child in children(node) {
        applied |= fold_once(child);
    }
    if let Some(kind) = folded(&node.kind) {
        node.kind = kind;
        applied = true;
    }
    applied
}

fn children(node: &mut Node) -> Vec<&mut Node> {
    match &mut node.kind {
        NodeKind::Unary { node, .. } | NodeKind::Predicate(node) | NodeKind::Chain(node) => {
            vec![node.as_mut()]
        }
        NodeKind::Binary { left, right, .. } => vec![left.as_mut(), right.as_mut()],
        NodeKind::Member { node, property, .. } => vec![node.as_mut(), property.as_mut()],
        NodeKind::Slice { node, from, to } => {
            let mut out = vec![node.as_mut()];
            out.extend(from.as_deref_mut());
            out.extend(to.as_deref_mut());
            out
        }
        NodeKind::Call { callee, args } => {
            let mut out = vec![callee.as_mut()];
            out.extend(args.iter_mut());
            out
        }
        NodeKind::Builtin { args, .. } | NodeKind::Array(args) => args.iter_mut().collect(),
        NodeKind::Conditional { cond, yes, no } => vec![cond.as_mut(), yes.as_mut(), no.as_mut()],
        NodeKind::Map(pairs) => pairs.iter_mut().flat_map(|(k, v)| [k, v]).collect(),
        NodeKind::Let { value, body, .. } => vec![value.as_mut(), body.as_mut()],
        NodeKind::Nil
        | NodeKind::Bool(_)
        | NodeKind::Int(_)
        | NodeKind::Float(_)
        | NodeKind::Str(_)
        | NodeKind::Ident(_)
        | NodeKind::Pointer(_) => Vec::new(),
    }
}

/// A constant number, as fold.go's `toInteger`/`toFloat` see it.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num(kind: &NodeKind) -> Option<Num> {
    match kind {
        NodeKind::Int(i) => Some(Num::Int(*i)),
        NodeKind::Float(f) => Some(Num::Float(*f)),
        _ => None,
    }
}

fn float(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

fn boolean(kind: &NodeKind) -> Option<bool> {
    match kind {
        NodeKind::Bool(b) => Some(*b),
        _ => None,
    }
}

/// What `kind` folds to, if anything.
fn folded(kind: &NodeKind) -> Option<NodeKind> {
    match kind {
        NodeKind::Unary { op, node, .. } => match (op, &node.kind) {
            (UnOp::Neg, NodeKind::Int(i)) => Some(NodeKind::Int(i.wrapping_neg())),
            (UnOp::Neg, NodeKind::Float(f)) => Some(NodeKind::Float(-f)),
            (UnOp::Plus, NodeKind::Int(_) | NodeKind::Float(_)) => Some(node.kind.clone()),
            (UnOp::Not, NodeKind::Bool(b)) => Some(NodeKind::Bool(!b)),
            _ => None,
        },
        NodeKind::Binary {
            op, left, right, ..
        } => binary(*op, left, right),
        _ => None,
    }
}

fn binary(op: BinOp, left: &Node, right: &Node) -> Option<NodeKind> {
    let (l, r) = (&left.kind, &right.kind);
    match op {
        BinOp::And => match (boolean(l), boolean(r)) {
            (Some(true), _) => Some(r.clone()),
            (_, Some(true)) => Some(l.clone()),
            (Some(false), _) | (_, Some(false)) => Some(NodeKind::Bool(false)),
            _ => None,
        },
        BinOp::Or => match (boolean(l), boolean(r)) {
            (Some(false), _) => Some(r.clone()),
            (_, Some(false)) => Some(l.clone()),
            (Some(true), _) | (_, Some(true)) => Some(NodeKind::Bool(true)),
            _ => None,
        },
        BinOp::Eq => match (l, r) {
            (NodeKind::Int(a), NodeKind::Int(b)) => Some(NodeKind::Bool(a == b)),
            (NodeKind::Str(a), NodeKind::Str(b)) => Some(NodeKind::Bool(a == b)),
            (NodeKind::Bool(a), NodeKind::Bool(b)) => Some(NodeKind::Bool(a == b)),
            _ => None,
        },
        BinOp::Add => match (l, r) {
            (NodeKind::Str(a), NodeKind::Str(b)) => Some(NodeKind::Str(format!("{a}{b}"))),
            _ => arithmetic(l, r, i64::wrapping_add, |a, b| a + b),
        },
        BinOp::Sub => arithmetic(l, r, i64::wrapping_sub, |a, b| a - b),
        BinOp::Mul => arithmetic(l, r, i64::wrapping_mul, |a, b| a * b),
        BinOp::Div => {
            let (a, b) = (num(l)?, num(r)?);
            Some(NodeKind::Float(float(a) / float(b)))
        }
        BinOp::Mod => match (l, r) {
            (NodeKind::Int(a), NodeKind::Int(b)) if *b != 0 => {
                Some(NodeKind::Int(a.wrapping_rem(*b)))
            }
            _ => None,
        },
        BinOp::Pow => {
            let (a, b) = (num(l)?, num(r)?);
            Some(NodeKind::Float(float(a).powf(float(b))))
        }
        _ => None,
    }
}

/// `+ - *`: integer with integer stays an integer (wrapping like Go), anything with a float
/// is a float.
fn arithmetic(
    l: &NodeKind,
    r: &NodeKind,
    int: fn(i64, i64) -> i64,
    flt: fn(f64, f64) -> f64,
) -> Option<NodeKind> {
    match (num(l)?, num(r)?) {
        (Num::Int(a), Num::Int(b)) => Some(NodeKind::Int(int(a, b))),
        (a, b) => Some(NodeKind::Float(flt(float(a), float(b)))),
    }
}
