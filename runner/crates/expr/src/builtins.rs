//! expr's builtin functions at run time (`builtin/builtin.go`, `builtin/lib.go` and the
//! compiler's loops for `all`, `filter`, `map`, ...), with Go's results and messages.

use std::rc::Rc;

use indexmap::IndexMap;

use super::ast::{Node, NodeKind};
use super::eval::{
    self, Elem, Eval, Interp, Val, assert_bool, assert_str, equal, fail, fetch, float_to_int,
};
use super::gofmt;
use super::gotime;

/// Evaluates the builtin `name` applied to the argument nodes.
pub(crate) fn call(interp: &mut Interp<'_>, name: &str, args: &[Node], at: usize) -> Eval<Val> {
    match name {
        "all" | "none" | "any" | "one" | "filter" | "map" | "count" | "sum" | "find"
        | "findIndex" | "findLast" | "findLastIndex" | "sortBy" | "reduce" => {
            predicate_builtin(interp, name, args, at)
        }
        _ => {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                values.push(interp.eval(a)?);
            }
            call_values(interp, name, values, at)
        }
    }
}

/// The elements a predicate builtin iterates over (Go's `OpBegin` over `reflect.Value`).
fn elements(v: &Val, at: usize) -> Eval<Rc<Vec<Val>>> {
    match v {
        Val::List(items, _) => Ok(items.clone()),
        Val::Str(s) => Ok(Rc::new(s.bytes().map(|b| Val::Int(i64::from(b))).collect())),
        Val::Map(m) if m.is_empty() => Ok(Rc::new(Vec::new())),
        Val::Map(_) => fail(at, "reflect: call of reflect.Value.Index on map Value"),
        Val::Nil => fail(at, "reflect: call of reflect.Value.Len on zero Value"),
        other => fail(
            at,
            format!(
                "reflect: call of reflect.Value.Len on {} Value",
                other.go_kind()
            ),
        ),
    }
}

fn body(node: &Node) -> &Node {
    match &node.kind {
        NodeKind::Predicate(b) => b,
        _ => node,
    }
}

fn predicate_builtin(interp: &mut Interp<'_>, name: &str, args: &[Node], at: usize) -> Eval<Val> {
    let collection = interp.eval(&args[0])?;
    let items = elements(&collection, args[0].at)?;
    // Every iteration counts against the budget, so nested loops over big ranges end.
    interp.spend(at, items.len())?;
    let pred = args.get(1).map(body);
    let extra = args.get(2);
    let extra = match extra {
        Some(n) => Some(interp.eval(n)?),
        None => None,
    };
    interp.with_scope(|interp| {
        let apply = |interp: &mut Interp<'_>, i: usize, item: &Val| apply(interp, pred, i, item);
        match name {
            "all" | "none" | "any" => {
                for (i, item) in items.iter().enumerate() {
                    let v = apply(interp, i, item)?;
                    let b = assert_bool(&v, at)?;
                    match (name, b) {
                        ("all", false) => return Ok(Val::Bool(false)),
                        ("any", true) => return Ok(Val::Bool(true)),
                        ("none", true) => return Ok(Val::Bool(false)),
                        _ => {}
                    }
                }
                Ok(Val::Bool(name != "any"))
            }
            "one" | "count" => {
                let mut n = 0i64;
                for (i, item) in items.iter().enumerate() {
                    let v = apply(interp, i, item)?;
                    if assert_bool(&v, at)? {
                        n += 1;
                    }
                }
                Ok(if name == "one" {
                    Val::Bool(n == 1)
                } else {
                    Val::Int(n)
                })
            }
            "filter" => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let v = apply(interp, i, item)?;
                    if assert_bool(&v, at)? {
                        out.push(item.clone());
                    }
                }
                Ok(Val::list(out))
            }
            "map" => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(apply(interp, i, item)?);
                }
                Ok(Val::list(out))
            }
            "sum" => {
                let mut acc = Val::Int(0);
                for (i, item) in items.iter().enumerate() {
                    let v = apply(interp, i, item)?;
                    acc = eval::add(&v, &acc, at)?;
                }
                Ok(acc)
            }
            "find" | "findIndex" => {
                for (i, item) in items.iter().enumerate() {
                    let v = apply(interp, i, item)?;
                    if assert_bool(&v, at)? {
                        return Ok(if name == "find" {
                            item.clone()
                        } else {
                            Val::Int(i as i64)
                        });
                    }
                }
                Ok(if name == "find" {
                    Val::Nil
                } else {
                    Val::Int(-1)
                })
            }
            "findLast" | "findLastIndex" => {
                for (i, item) in items.iter().enumerate().rev() {
                    let v = apply(interp, i, item)?;
                    if assert_bool(&v, at)? {
                        return Ok(if name == "findLast" {
                            item.clone()
                        } else {
                            Val::Int(i as i64)
                        });
                    }
                }
                Ok(if name == "findLast" {
                    Val::Nil
                } else {
                    Val::Int(-1)
                })
            }
            "sortBy" => {
                let mut keyed = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    keyed.push((apply(interp, i, item)?, item.clone()));
                }
                let desc = match &extra {
                    None => false,
                    Some(Val::Str(s)) if s.as_ref() == "asc" => false,
                    Some(Val::Str(s)) if s.as_ref() == "desc" => true,
                    Some(other) => {
                        return fail(
                            at,
                            format!("invalid order {}, expected asc or desc", other.go_string()),
                        );
                    }
                };
                sort_vals(&mut keyed, desc, at)?;
                Ok(Val::list(keyed.into_iter().map(|(_, v)| v).collect()))
            }
            _ => {
                // reduce
                let mut start = 0;
                let acc = match extra {
                    Some(init) => init,
                    None => {
                        let Some(first) = items.first() else {
                            return fail(at, "index out of range: 0 (array length is 0)");
                        };
                        start = 1;
                        first.clone()
                    }
                };
                interp.set_acc(acc);
                for (i, item) in items.iter().enumerate().skip(start) {
                    let v = apply(interp, i, item)?;
                    interp.set_acc(v);
                }
                Ok(interp.acc())
            }
        }
    })
}

/// The value of the predicate for element `i`, or the element itself without a predicate.
fn apply(interp: &mut Interp<'_>, pred: Option<&Node>, i: usize, item: &Val) -> Eval<Val> {
    interp.set_elem(i, item.clone());
    match pred {
        Some(p) => interp.eval(p),
        None => Ok(item.clone()),
    }
}

/// Sorts (key, value) pairs by key with Go's ordering (`runtime.Less`), which fails on keys
/// of different kinds. Rust's sort needs a total order, so NaN sorts last.
fn sort_vals(pairs: &mut [(Val, Val)], desc: bool, at: usize) -> Eval<()> {
    use std::cmp::Ordering;
    // Go fails on the first pair it cannot compare; find such a pair before sorting.
    if let Some((first, _)) = pairs.first() {
        for (key, _) in pairs.iter().skip(1) {
            eval::compare(super::ast::BinOp::Lt, first, key, at)?;
        }
    }
    let order = |a: &Val, b: &Val| -> Ordering {
        match (a, b) {
            (Val::Int(x) | Val::Int64(x), Val::Int(y) | Val::Int64(y)) => x.cmp(y),
            (Val::Str(x), Val::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
            (Val::Time(x), Val::Time(y)) => x.ts.cmp(&y.ts),
            (Val::Duration(x), Val::Duration(y)) => x.cmp(y),
            _ => match (eval::to_float(a, 0), eval::to_float(b, 0)) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => Ordering::Equal,
            },
        }
    };
    pairs.sort_by(|a, b| {
        if desc {
            order(&b.0, &a.0)
        } else {
            order(&a.0, &b.0)
        }
    });
    Ok(())
}

/// A hashable stand-in for values that `runtime.Equal` compares by value, so that `uniq`
/// stays linear. `None` for values compared structurally (and NaN, which equals nothing).
#[derive(PartialEq, Eq, Hash)]
enum UniqKey {
    Nil,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(Rc<str>),
}

fn uniq_key(v: &Val) -> Option<UniqKey> {
    Some(match v {
        Val::Nil => UniqKey::Nil,
        Val::Bool(b) => UniqKey::Bool(*b),
        Val::Int(i) | Val::Int64(i) => UniqKey::Int(*i),
        Val::Float(f) if f.is_nan() => return None,
        // 1.0 must meet 1: integral floats share the integer's key.
        Val::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => UniqKey::Int(*f as i64),
        Val::Float(f) => UniqKey::Float((f + 0.0).to_bits()),
        Val::Str(s) => UniqKey::Str(s.clone()),
        _ => return None,
    })
}

fn arg(args: &[Val], i: usize) -> Val {
    args.get(i).cloned().unwrap_or(Val::Nil)
}

fn string_arg(args: &[Val], i: usize, at: usize) -> Eval<String> {
    Ok(assert_str(&arg(args, i), at)?.to_string())
}

fn int_arg(args: &[Val], i: usize, at: usize) -> Eval<i64> {
    eval::to_int(&arg(args, i), at)
}

fn strings(items: Vec<String>) -> Val {
    Val::List(
        Rc::new(items.into_iter().map(|s| Val::str(&s)).collect()),
        Elem::String,
    )
}

/// Evaluates a non-predicate builtin on evaluated arguments.
pub(crate) fn call_values(
    interp: &mut Interp<'_>,
    name: &str,
    args: Vec<Val>,
    at: usize,
) -> Eval<Val> {
    let a0 = arg(&args, 0);
    match name {
        "len" => match &a0 {
            Val::List(items, _) => Ok(Val::Int(items.len() as i64)),
            Val::Str(s) => Ok(Val::Int(s.len() as i64)),
            Val::Map(m) => Ok(Val::Int(m.len() as i64)),
            other => fail(
                at,
                format!("invalid argument for len (type {})", other.go_type()),
            ),
        },
        "type" => Ok(Val::str(match &a0 {
            Val::Nil => "nil",
            Val::Bool(_) => "bool",
            Val::Int(_) | Val::Int64(_) => "int",
            Val::Float(_) => "float",
            Val::Str(_) => "string",
            Val::List(..) => "array",
            Val::Map(_) => "map",
            Val::Time(_) => "time.Time",
            Val::Duration(_) => "time.Duration",
            Val::Func(_) => "func",
        })),
        "abs" => match a0 {
            Val::Int(i) => Ok(Val::Int(i.wrapping_abs())),
            Val::Int64(i) => Ok(Val::Int64(i.wrapping_abs())),
            Val::Float(f) => Ok(Val::Float(if f < 0.0 { -f } else { f })),
            other => fail(
                at,
                format!("invalid argument for abs (type {})", other.go_type()),
            ),
        },
        "ceil" | "floor" | "round" => match a0 {
            Val::Float(f) => Ok(Val::Float(match name {
                "ceil" => f.ceil(),
                "floor" => f.floor(),
                _ => f.round(),
            })),
            Val::Int(i) | Val::Int64(i) => Ok(Val::Float(i as f64)),
            other => fail(
                at,
                format!("invalid argument for {name} (type {})", other.go_type()),
            ),
        },
        "int" => match a0 {
            Val::Float(f) => Ok(Val::Int(float_to_int(f))),
            Val::Int(i) | Val::Int64(i) | Val::Duration(i) => Ok(Val::Int(i)),
            Val::Str(s) => s
                .parse::<i64>()
                .map(Val::Int)
                .or_else(|_| fail(at, format!("invalid operation: int({s})"))),
            other => fail(at, format!("invalid operation: int({})", other.go_type())),
        },
        "float" => match a0 {
            Val::Float(f) => Ok(Val::Float(f)),
            Val::Int(i) | Val::Int64(i) => Ok(Val::Float(i as f64)),
            Val::Str(s) => gofmt::parse_float(&s)
                .map(Val::Float)
                .or_else(|_| fail(at, format!("invalid operation: float({s})"))),
            other => fail(at, format!("invalid operation: float({})", other.go_type())),
        },
        "string" => Ok(Val::str(&a0.go_string())),
        "trim" => {
            let s = string_arg(&args, 0, at)?;
            if args.len() == 2 {
                let cut = string_arg(&args, 1, at)?;
                Ok(Val::str(s.trim_matches(|c| cut.contains(c))))
            } else {
                Ok(Val::str(s.trim()))
            }
        }
        "trimPrefix" | "trimSuffix" => {
            let s = string_arg(&args, 0, at)?;
            let p = if args.len() == 2 {
                string_arg(&args, 1, at)?
            } else {
                " ".to_string()
            };
            let out = if name == "trimPrefix" {
                s.strip_prefix(p.as_str()).unwrap_or(&s)
            } else {
                s.strip_suffix(p.as_str()).unwrap_or(&s)
            };
            Ok(Val::str(out))
        }
        "upper" => Ok(Val::str(&string_arg(&args, 0, at)?.to_uppercase())),
        "lower" => Ok(Val::str(&string_arg(&args, 0, at)?.to_lowercase())),
        "split" | "splitAfter" => {
            let s = string_arg(&args, 0, at)?;
            let sep = string_arg(&args, 1, at)?;
            let n = if args.len() == 3 {
                int_arg(&args, 2, at)?
            } else {
                -1
            };
            Ok(strings(go_split(&s, &sep, n, name == "splitAfter")))
        }
        "replace" => {
            let s = string_arg(&args, 0, at)?;
            let old = string_arg(&args, 1, at)?;
            let new = string_arg(&args, 2, at)?;
            let n = if args.len() == 4 {
                int_arg(&args, 3, at)?
            } else {
                -1
            };
            Ok(Val::str(&if n < 0 {
                s.replace(&old, &new)
            } else {
                s.replacen(&old, &new, n as usize)
            }))
        }
        "repeat" => {
            let s = string_arg(&args, 0, at)?;
            let n = int_arg(&args, 1, at)?;
            if n < 0 {
                return fail(
                    at,
                    format!("invalid argument for repeat (expected positive integer, got {n})"),
                );
            }
            if n > 1_000_000 {
                return fail(at, "memory budget exceeded");
            }
            interp.spend(at, s.len().saturating_mul(n as usize))?;
            Ok(Val::str(&s.repeat(n as usize)))
        }
        "join" => {
            let glue = if args.len() == 2 {
                string_arg(&args, 1, at)?
            } else {
                String::new()
            };
            match &a0 {
                Val::List(items, _) => {
                    let mut parts = Vec::with_capacity(items.len());
                    for item in items.iter() {
                        parts.push(assert_str(item, at)?.to_string());
                    }
                    Ok(Val::str(&parts.join(&glue)))
                }
                other => fail(
                    at,
                    format!("invalid argument for join (type {})", other.go_type()),
                ),
            }
        }
        "indexOf" | "lastIndexOf" => {
            let s = string_arg(&args, 0, at)?;
            let sub = string_arg(&args, 1, at)?;
            let i = if name == "indexOf" {
                s.find(&sub)
            } else {
                s.rfind(&sub)
            };
            Ok(Val::Int(i.map_or(-1, |i| i as i64)))
        }
        "hasPrefix" => Ok(Val::Bool(
            string_arg(&args, 0, at)?.starts_with(&string_arg(&args, 1, at)?),
        )),
        "hasSuffix" => Ok(Val::Bool(
            string_arg(&args, 0, at)?.ends_with(&string_arg(&args, 1, at)?),
        )),
        "max" | "min" => min_max(name, &args, at),
        "mean" => {
            let mut values = Vec::new();
            collect_numbers(name, &args, &mut values, at)?;
            if values.is_empty() {
                return Ok(Val::Float(0.0));
            }
            Ok(Val::Float(values.iter().sum::<f64>() / values.len() as f64))
        }
        "median" => {
            let mut values = Vec::new();
            collect_numbers(name, &args, &mut values, at)?;
            if values.is_empty() {
                return Ok(Val::Float(0.0));
            }
            values.sort_by(f64::total_cmp);
            let n = values.len();
            Ok(Val::Float(if n % 2 == 1 {
                values[n / 2]
            } else {
                (values[n / 2 - 1] + values[n / 2]) / 2.0
            }))
        }
        "toJSON" => {
            let mut out = String::new();
            to_json(&a0, 0, &mut out).or_else(|e| fail(at, e))?;
            Ok(Val::str(&out))
        }
        "fromJSON" => {
            let s = string_arg(&args, 0, at)?;
            match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(v) => Ok(Val::from(&super::Value::from(&v))),
                Err(e) => fail(at, json_error(&s, &e)),
            }
        }
        "toBase64" => Ok(Val::str(&base64_encode(
            string_arg(&args, 0, at)?.as_bytes(),
        ))),
        "fromBase64" => {
            let s = string_arg(&args, 0, at)?;
            match base64_decode(&s) {
                Ok(bytes) => Ok(Val::str(&String::from_utf8_lossy(&bytes))),
                Err(i) => fail(at, format!("illegal base64 data at input byte {i}")),
            }
        }
        "now" => Ok(Val::Time(interp.env.now.clone())),
        "duration" => {
            let s = string_arg(&args, 0, at)?;
            gofmt::parse_duration(&s)
                .map(Val::Duration)
                .or_else(|e| fail(at, e))
        }
        "date" => gotime::date(&args, at),
        "first" => Ok(fetch(&a0, &Val::Int(0), at).unwrap_or(Val::Nil)),
        "last" => Ok(fetch(&a0, &Val::Int(-1), at).unwrap_or(Val::Nil)),
        "get" => Ok(fetch(&a0, &arg(&args, 1), at).unwrap_or(Val::Nil)),
        "take" => {
            let Val::List(items, elem) = &a0 else {
                return fail(at, format!("cannot take from {}", a0.go_kind()));
            };
            let n = match arg(&args, 1) {
                Val::Int(n) | Val::Int64(n) => n,
                other => return fail(at, format!("cannot take {} elements", other.go_kind())),
            };
            if n > items.len() as i64 {
                return Ok(a0.clone());
            }
            if n < 0 {
                return fail(at, "reflect: slice index out of range");
            }
            Ok(Val::List(Rc::new(items[..n as usize].to_vec()), *elem))
        }
        "keys" | "values" | "toPairs" => {
            let Val::Map(m) = &a0 else {
                let what = match name {
                    "keys" => "cannot get keys from",
                    "values" => "cannot get values from",
                    _ => "cannot transform",
                };
                let suffix = if name == "toPairs" { " to pairs" } else { "" };
                return fail(at, format!("{what} {}{suffix}", a0.go_kind()));
            };
            Ok(Val::list(match name {
                "keys" => m.keys().map(|k| Val::str(k)).collect(),
                "values" => m.values().cloned().collect(),
                _ => m
                    .iter()
                    .map(|(k, v)| Val::list(vec![Val::str(k), v.clone()]))
                    .collect(),
            }))
        }
        "fromPairs" => {
            let Val::List(items, _) = &a0 else {
                return fail(
                    at,
                    format!("cannot transform {} from pairs", a0.go_string()),
                );
            };
            let mut map = IndexMap::new();
            for pair in items.iter() {
                let Val::List(kv, _) = pair else {
                    return fail(at, format!("invalid pair {}", pair.go_string()));
                };
                if kv.len() != 2 {
                    return fail(at, format!("invalid pair length {}", pair.go_string()));
                }
                let key = match &kv[0] {
                    Val::Str(s) => s.to_string(),
                    other => other.go_string(),
                };
                map.insert(key, kv[1].clone());
            }
            Ok(Val::Map(Rc::new(map)))
        }
        "reverse" => match &a0 {
            Val::List(items, _) => Ok(Val::list(items.iter().rev().cloned().collect())),
            other => fail(at, format!("cannot reverse {}", other.go_kind())),
        },
        "uniq" => match &a0 {
            Val::List(items, _) => {
                let mut seen = std::collections::HashSet::new();
                let mut structural: Vec<Val> = Vec::new();
                let mut out: Vec<Val> = Vec::new();
                for item in items.iter() {
                    let fresh = match uniq_key(item) {
                        Some(key) => seen.insert(key),
                        None if matches!(item, Val::Float(_)) => true,
                        None => {
                            let fresh = !structural.iter().any(|o| equal(item, o));
                            if fresh {
                                structural.push(item.clone());
                            }
                            fresh
                        }
                    };
                    if fresh {
                        out.push(item.clone());
                    }
                }
                Ok(Val::list(out))
            }
            other => fail(at, format!("cannot uniq {}", other.go_kind())),
        },
        "concat" => {
            let mut out = Vec::new();
            for a in &args {
                match a {
                    Val::List(items, _) => out.extend(items.iter().cloned()),
                    other => return fail(at, format!("cannot concat {}", other.go_kind())),
                }
            }
            interp.spend(at, out.len())?;
            Ok(Val::list(out))
        }
        "flatten" => match &a0 {
            Val::List(..) => {
                let mut out = Vec::new();
                flatten(&a0, &mut out);
                interp.spend(at, out.len())?;
                Ok(Val::list(out))
            }
            other => fail(at, format!("cannot flatten {}", other.go_kind())),
        },
        "sort" => {
            let Val::List(items, _) = &a0 else {
                return fail(at, format!("cannot sort {}", a0.go_kind()));
            };
            let desc = match args.get(1) {
                None => false,
                Some(Val::Str(s)) if s.as_ref() == "asc" => false,
                Some(Val::Str(s)) if s.as_ref() == "desc" => true,
                Some(other) => {
                    return fail(
                        at,
                        format!("invalid order {}, expected asc or desc", other.go_string()),
                    );
                }
            };
            let mut pairs: Vec<(Val, Val)> = items.iter().map(|v| (v.clone(), v.clone())).collect();
            sort_vals(&mut pairs, desc, at)?;
            Ok(Val::list(pairs.into_iter().map(|(_, v)| v).collect()))
        }
        "bitand" | "bitor" | "bitxor" | "bitnand" | "bitshl" | "bitshr" | "bitushr" => {
            let x = int_arg(&args, 0, at)?;
            let y = int_arg(&args, 1, at)?;
            if matches!(name, "bitshl" | "bitshr" | "bitushr") && y < 0 {
                return fail(
                    at,
                    format!("invalid operation: negative shift count {y} (type int)"),
                );
            }
            let shift = y.min(63) as u32;
            Ok(Val::Int(match name {
                "bitand" => x & y,
                "bitor" => x | y,
                "bitxor" => x ^ y,
                "bitnand" => x & !y,
                "bitshl" => {
                    if y > 63 {
                        0
                    } else {
                        x.wrapping_shl(shift)
                    }
                }
                "bitshr" => {
                    if y > 63 {
                        if x < 0 { -1 } else { 0 }
                    } else {
                        x >> shift
                    }
                }
                _ => {
                    if y > 63 {
                        0
                    } else {
                        ((x as u64) >> shift) as i64
                    }
                }
            }))
        }
        "bitnot" => Ok(Val::Int(!int_arg(&args, 0, at)?)),
        _ => fail(
            at,
            format!("builtin {name} is not supported by rollout-runner"),
        ),
    }
}

/// Go's `strings.Split`/`SplitN`/`SplitAfter`/`SplitAfterN`.
fn go_split(s: &str, sep: &str, n: i64, after: bool) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let limit = if n < 0 { usize::MAX } else { n as usize };
    if sep.is_empty() {
        // Split into UTF-8 sequences, the last one holding the rest.
        let chars: Vec<&str> = s
            .char_indices()
            .map(|(i, c)| &s[i..i + c.len_utf8()])
            .collect();
        if chars.len() <= limit {
            return chars.into_iter().map(String::from).collect();
        }
        let mut out: Vec<String> = chars[..limit - 1].iter().map(|c| c.to_string()).collect();
        out.push(chars[limit - 1..].concat());
        return out;
    }
    let mut out = Vec::new();
    let mut rest = s;
    while out.len() + 1 < limit {
        let Some(i) = rest.find(sep) else { break };
        let end = if after { i + sep.len() } else { i };
        out.push(rest[..end].to_string());
        rest = &rest[i + sep.len()..];
    }
    out.push(rest.to_string());
    out
}

fn collect_numbers(name: &str, args: &[Val], out: &mut Vec<f64>, at: usize) -> Eval<()> {
    for a in args {
        match a {
            Val::List(items, _) => collect_numbers(name, items, out, at)?,
            Val::Int(i) | Val::Int64(i) => out.push(*i as f64),
            Val::Float(f) => out.push(*f),
            other => {
                return fail(
                    at,
                    format!("invalid argument for {name} (type {})", other.go_type()),
                );
            }
        }
    }
    Ok(())
}

/// Go's `minMax`: numbers and (nested) lists of numbers; a single other value is returned.
fn min_max(name: &str, args: &[Val], at: usize) -> Eval<Val> {
    fn walk(name: &str, args: &[Val], best: &mut Option<Val>, at: usize) -> Eval<()> {
        for a in args {
            match a {
                Val::List(items, _) => {
                    for item in items.iter() {
                        match item {
                            Val::List(..) => walk(name, std::slice::from_ref(item), best, at)?,
                            Val::Int(_) | Val::Int64(_) | Val::Float(_) => {
                                consider(name, item, best, at)?
                            }
                            other => {
                                return fail(
                                    at,
                                    format!(
                                        "invalid argument for {name} (type {})",
                                        other.go_type()
                                    ),
                                );
                            }
                        }
                    }
                }
                Val::Int(_) | Val::Int64(_) | Val::Float(_) => consider(name, a, best, at)?,
                other => {
                    return fail(
                        at,
                        format!("invalid argument for {name} (type {})", other.go_type()),
                    );
                }
            }
        }
        Ok(())
    }
    fn consider(name: &str, v: &Val, best: &mut Option<Val>, at: usize) -> Eval<()> {
        let replace = match best {
            None => true,
            Some(b) => {
                let op = if name == "max" {
                    super::ast::BinOp::Lt
                } else {
                    super::ast::BinOp::Gt
                };
                eval::compare(op, b, v, at)?
            }
        };
        if replace {
            *best = Some(v.clone());
        }
        Ok(())
    }
    if args.len() == 1
        && !matches!(
            args[0],
            Val::List(..) | Val::Int(_) | Val::Int64(_) | Val::Float(_)
        )
    {
        return Ok(args[0].clone());
    }
    let mut best = None;
    walk(name, args, &mut best, at)?;
    Ok(best.unwrap_or(Val::Nil))
}

fn flatten(v: &Val, out: &mut Vec<Val>) {
    match v {
        Val::List(items, _) => {
            for item in items.iter() {
                if let Val::List(..) = item {
                    flatten(item, out);
                } else {
                    out.push(item.clone());
                }
            }
        }
        other => out.push(other.clone()),
    }
}

/// `json.MarshalIndent(v, "", "  ")`.
fn to_json(v: &Val, depth: usize, out: &mut String) -> Result<(), String> {
    let indent = |out: &mut String, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str("  ");
        }
    };
    match v {
        Val::Nil => out.push_str("null"),
        Val::Bool(b) => out.push_str(&b.to_string()),
        Val::Int(i) | Val::Int64(i) | Val::Duration(i) => out.push_str(&i.to_string()),
        Val::Float(f) => {
            if !f.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    gofmt::format_float(*f)
                ));
            }
            out.push_str(&json_float(*f));
        }
        Val::Str(s) => json_string(s, out),
        Val::Time(t) => json_string(&t.rfc3339(), out),
        Val::List(items, _) => {
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                to_json(item, depth + 1, out)?;
            }
            indent(out, depth);
            out.push(']');
        }
        Val::Map(m) => {
            if m.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                json_string(k, out);
                out.push_str(": ");
                to_json(&m[k], depth + 1, out)?;
            }
            indent(out, depth);
            out.push('}');
        }
        Val::Func(_) => return Err(format!("json: unsupported type: {}", v.go_type())),
    }
    Ok(())
}

/// `encoding/json`'s float spelling: like JavaScript, `%f` unless tiny or huge.
fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go writes `1e-07` and then strips the exponent's leading zero.
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        format!("{m}e{}{}", if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        format!("{f}")
    }
}

/// A JSON string as Go writes it, with HTML characters escaped.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's two most common `json.Unmarshal` messages.
fn json_error(src: &str, e: &serde_json::Error) -> String {
    if e.is_eof() {
        return "unexpected end of JSON input".into();
    }
    let offset: usize = src
        .lines()
        .take(e.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        + e.column().saturating_sub(1);
    match src.get(offset..).and_then(|r| r.chars().next()) {
        Some(c) => format!(
            "invalid character {} looking for beginning of value",
            gofmt::quote_rune(c)
        ),
        None => "unexpected end of JSON input".into(),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding; the error is the offset of the first bad byte.
fn base64_decode(s: &str) -> Result<Vec<u8>, usize> {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return Err(bytes.len() / 4 * 4);
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        let mut n = 0u32;
        let mut pad = 0;
        for (i, &c) in chunk.iter().enumerate() {
            let v = match c {
                b'=' if i >= 2 && ci * 4 + 4 == bytes.len() => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return Err(ci * 4 + i),
                _ => B64.iter().position(|&b| b == c).ok_or(ci * 4 + i)? as u32,
            };
            n = (n << 6) | v;
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_go() {
        assert_eq!(go_split("a,b,c", ",", -1, false), ["a", "b", "c"]);
        assert_eq!(go_split("a,b,c", ",", 2, false), ["a", "b,c"]);
        assert_eq!(go_split("a,b", ",", -1, true), ["a,", "b"]);
        assert_eq!(go_split("abc", "", -1, false), ["a", "b", "c"]);
        assert!(go_split("abc", ",", 0, false).is_empty());
        assert_eq!(go_split("", ",", -1, false), [""]);
    }

    #[test]
    fn base64_round_trip() {
        for s in ["", "f", "fo", "foo", "foobar", "héllo"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        assert_eq!(base64_decode("Zm9v!"), Err(4));
    }

    #[test]
    fn json_like_go() {
        let mut out = String::new();
        let v = Val::Map(Rc::new(
            [
                ("b".to_string(), Val::Float(1e21)),
                (
                    "a".to_string(),
                    Val::list(vec![Val::Int(1), Val::str("<x>")]),
                ),
            ]
            .into_iter()
            .collect(),
        ));
        to_json(&v, 0, &mut out).unwrap();
        assert_eq!(
            out,
            "{\n  \"a\": [\n    1,\n    \"\\u003cx\\u003e\"\n  ],\n  \"b\": 1e+21\n}"
        );
        assert_eq!(json_float(0.000_000_1), "1e-7");
        assert_eq!(json_float(0.5), "0.5");
    }
}
