//! A port of expr-lang/expr's recursive-descent parser: the same precedence table, the same
//! handling of `not in`, chained comparisons (`1 < x < 3`), pipes, predicates and optional
//! chaining, and the same error messages.

use super::ast::{BinOp, Node, NodeKind, UnOp};
use super::gofmt;
use super::lexer::{Kind, Token, lex};

/// A syntax error: Go's message and the byte offset of the token it points at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub(crate) message: String,
    pub(crate) offset: usize,
}

type Result<T> = std::result::Result<T, ParseError>;

/// Functions whose arguments include a predicate, and the shape of their arguments.
const PREDICATES: &[(&str, &[Arg])] = &[
    ("all", &[Arg::Expr, Arg::Predicate]),
    ("none", &[Arg::Expr, Arg::Predicate]),
    ("any", &[Arg::Expr, Arg::Predicate]),
    ("one", &[Arg::Expr, Arg::Predicate]),
    ("filter", &[Arg::Expr, Arg::Predicate]),
    ("map", &[Arg::Expr, Arg::Predicate]),
    ("count", &[Arg::Expr, Arg::OptionalPredicate]),
    ("sum", &[Arg::Expr, Arg::OptionalPredicate]),
    ("find", &[Arg::Expr, Arg::Predicate]),
    ("findIndex", &[Arg::Expr, Arg::Predicate]),
    ("findLast", &[Arg::Expr, Arg::Predicate]),
    ("findLastIndex", &[Arg::Expr, Arg::Predicate]),
    ("groupBy", &[Arg::Expr, Arg::Predicate]),
    ("sortBy", &[Arg::Expr, Arg::Predicate, Arg::OptionalExpr]),
    ("reduce", &[Arg::Expr, Arg::Predicate, Arg::OptionalExpr]),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    Expr,
    Predicate,
    OptionalPredicate,
    OptionalExpr,
}

/// Every builtin expr knows, predicate or not (`builtin.Builtins` in Go).
pub(crate) const BUILTINS: &[&str] = &[
    "all",
    "none",
    "any",
    "one",
    "filter",
    "map",
    "find",
    "findIndex",
    "findLast",
    "findLastIndex",
    "count",
    "sum",
    "groupBy",
    "sortBy",
    "reduce",
    "len",
    "type",
    "abs",
    "ceil",
    "floor",
    "round",
    "int",
    "float",
    "string",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "upper",
    "lower",
    "split",
    "splitAfter",
    "replace",
    "repeat",
    "join",
    "indexOf",
    "lastIndexOf",
    "hasPrefix",
    "hasSuffix",
    "max",
    "min",
    "mean",
    "median",
    "toJSON",
    "fromJSON",
    "toBase64",
    "fromBase64",
    "now",
    "duration",
    "date",
    "timezone",
    "first",
    "last",
    "get",
    "take",
    "keys",
    "values",
    "toPairs",
    "fromPairs",
    "reverse",
    "uniq",
    "concat",
    "flatten",
    "sort",
    "bitand",
    "bitor",
    "bitxor",
    "bitnand",
    "bitshl",
    "bitshr",
    "bitushr",
    "bitnot",
];

fn unary(op: &str) -> Option<(UnOp, &'static str, u8)> {
    Some(match op {
        "not" => (UnOp::Not, "not", 50),
        "!" => (UnOp::Not, "!", 50),
        "-" => (UnOp::Neg, "-", 90),
        "+" => (UnOp::Plus, "+", 90),
        _ => return None,
    })
}

/// Binary operators: the operator, its spelling, precedence and right-associativity.
/// `|` (the pipe) has no `BinOp`: it turns into a call.
fn binary(op: &str) -> Option<(Option<BinOp>, &'static str, u8, bool)> {
    Some(match op {
        "|" => (None, "|", 0, false),
        "or" => (Some(BinOp::Or), "or", 10, false),
        "||" => (Some(BinOp::Or), "||", 10, false),
        "and" => (Some(BinOp::And), "and", 15, false),
        "&&" => (Some(BinOp::And), "&&", 15, false),
        "==" => (Some(BinOp::Eq), "==", 20, false),
        "!=" => (Some(BinOp::Ne), "!=", 20, false),
        "<" => (Some(BinOp::Lt), "<", 20, false),
        ">" => (Some(BinOp::Gt), ">", 20, false),
        ">=" => (Some(BinOp::Ge), ">=", 20, false),
        "<=" => (Some(BinOp::Le), "<=", 20, false),
        "in" => (Some(BinOp::In), "in", 20, false),
        "matches" => (Some(BinOp::Matches), "matches", 20, false),
        "contains" => (Some(BinOp::Contains), "contains", 20, false),
        "startsWith" => (Some(BinOp::StartsWith), "startsWith", 20, false),
        "endsWith" => (Some(BinOp::EndsWith), "endsWith", 20, false),
        ".." => (Some(BinOp::Range), "..", 25, false),
        "+" => (Some(BinOp::Add), "+", 30, false),
        "-" => (Some(BinOp::Sub), "-", 30, false),
        "*" => (Some(BinOp::Mul), "*", 60, false),
        "/" => (Some(BinOp::Div), "/", 60, false),
        "%" => (Some(BinOp::Mod), "%", 60, false),
        "**" => (Some(BinOp::Pow), "**", 100, true),
        "^" => (Some(BinOp::Pow), "^", 100, true),
        "??" => (Some(BinOp::Coalesce), "??", 250, false),
        _ => return None,
    })
}

fn is_range_comparison(op: &str) -> bool {
    matches!(op, "<" | ">" | ">=" | "<=")
}

fn is_valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c == '$' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c == '$' || c.is_alphanumeric())
}

/// Parses a whole expression.
pub(crate) fn parse(src: &str) -> Result<Node> {
    let tokens = lex(src).map_err(|e| ParseError {
        message: e.message,
        offset: e.offset,
    })?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
        nesting: 0,
        prev_end: 0,
    };
    let node = p.expression(0)?;
    if p.current().kind != Kind::Eof {
        return Err(p.unexpected());
    }
    limit_size(&node)?;
    Ok(node)
}

/// expr's default `MaxNodes`.
const MAX_NODES: usize = 10_000;
/// How deep a tree may be. Go's stacks grow; ours do not, and the checker and interpreter
/// recurse once per level. Real conditions stay far below this.
pub(crate) const MAX_DEPTH: usize = 200;

fn too_deep(offset: usize) -> ParseError {
    ParseError {
        message: format!("expression is nested too deeply (more than {MAX_DEPTH} levels)"),
        offset,
    }
}

/// Rejects trees with too many nodes (Go's message) or too deep to evaluate safely.
fn limit_size(root: &Node) -> Result<()> {
    let mut stack = vec![(root, 1usize)];
    let mut count = 0;
    while let Some((node, depth)) = stack.pop() {
        count += 1;
        if count > MAX_NODES {
            return Err(ParseError {
                message: "compilation failed: expression exceeds maximum allowed nodes".into(),
                offset: root.at,
            });
        }
        if depth > MAX_DEPTH {
            return Err(too_deep(node.at));
        }
        stack.extend(node.children().into_iter().map(|c| (c, depth + 1)));
    }
    Ok(())
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Predicate depth: `#` is only valid inside one.
    depth: usize,
    /// Recursion depth of `expression`, bounded so that `((((...` cannot overflow the stack.
    nesting: usize,
    /// End of the last token consumed: the end of the span of the node being built.
    prev_end: usize,
}

impl Parser {
    fn current(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn error_at(&self, token: &Token, message: String) -> ParseError {
        ParseError {
            message,
            offset: token.from,
        }
    }

    fn error(&self, message: String) -> ParseError {
        self.error_at(self.current(), message)
    }

    fn unexpected(&self) -> ParseError {
        self.error(format!("unexpected token {}", self.current()))
    }

    fn next(&mut self) -> Result<()> {
        self.prev_end = self.current().to;
        self.pos += 1;
        if self.pos >= self.tokens.len() {
            return Err(self.error("unexpected end of expression".into()));
        }
        Ok(())
    }

    fn expect(&mut self, kind: Kind, value: Option<&str>) -> Result<()> {
        let t = self.current();
        if t.kind == kind && value.is_none_or(|v| t.value == v) {
            return self.next();
        }
        Err(self.unexpected())
    }

    fn node(&self, kind: NodeKind, at: usize, start: usize) -> Node {
        Node::new(kind, at, (start, self.prev_end.max(start)))
    }

    fn expression(&mut self, precedence: u8) -> Result<Node> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(too_deep(self.current().from));
        }
        let out = self.expression_inner(precedence);
        self.nesting -= 1;
        out
    }

    fn expression_inner(&mut self, precedence: u8) -> Result<Node> {
        let start = self.current().from;
        if precedence == 0 && self.current().is_op("let") {
            return self.let_declaration();
        }
        if precedence == 0 && self.current().is_op("if") {
            return self.conditional_if();
        }
        let mut left = self.primary()?;
        let mut prev_op = String::new();
        loop {
            let mut op_token = self.current().clone();
            if op_token.kind != Kind::Operator {
                break;
            }
            let negate = op_token.is_op("not");
            if negate {
                let saved = (self.pos, self.prev_end);
                self.next()?;
                let suffix = self.current().value.clone();
                if matches!(
                    suffix.as_str(),
                    "in" | "matches" | "contains" | "startsWith" | "endsWith"
                ) {
                    match binary(&suffix) {
                        Some((_, _, prec, _)) if prec >= precedence => {
                            op_token = self.current().clone();
                        }
                        _ => {
                            (self.pos, self.prev_end) = saved;
                            break;
                        }
                    }
                } else {
                    return Err(self.unexpected());
                }
            }
            let Some((op, text, prec, right_assoc)) = binary(&op_token.value) else {
                break;
            };
            if prec < precedence {
                break;
            }
            self.next()?;
            let Some(op) = op else {
                // The pipe: `x | f(a)` is `f(x, a)`.
                let ident = self.current().clone();
                self.expect(Kind::Identifier, None)?;
                left = self.call(&ident, vec![left], start)?;
                prev_op = op_token.value.clone();
                continue;
            };
            if prev_op == "??" && op_token.value != "??" {
                return Err(self.error_at(
                    &op_token,
                    format!(
                        "Operator ({}) and coalesce expressions (??) cannot be mixed. Wrap either by parentheses.",
                        op_token.value
                    ),
                ));
            }
            if is_range_comparison(&op_token.value) {
                left = self.comparison(left, op_token.clone(), op, text, prec, start)?;
            } else {
                let right = self.expression(if right_assoc { prec } else { prec + 1 })?;
                left = self.node(
                    NodeKind::Binary {
                        op,
                        text,
                        left: Box::new(left),
                        right: Box::new(right),
                    },
                    op_token.from,
                    start,
                );
                if negate {
                    left = self.node(
                        NodeKind::Unary {
                            op: UnOp::Not,
                            text: "not",
                            node: Box::new(left),
                        },
                        op_token.from,
                        start,
                    );
                }
            }
            prev_op = op_token.value.clone();
        }
        if precedence == 0 {
            left = self.conditional(left, start)?;
        }
        Ok(left)
    }

    /// `a < b < c` is `a < b && b < c`.
    fn comparison(
        &mut self,
        mut left: Node,
        mut token: Token,
        mut op: BinOp,
        mut text: &'static str,
        precedence: u8,
        start: usize,
    ) -> Result<Node> {
        let mut root: Option<Node> = None;
        loop {
            let right = self.expression(precedence + 1)?;
            let cmp = self.node(
                NodeKind::Binary {
                    op,
                    text,
                    left: Box::new(left),
                    right: Box::new(right.clone()),
                },
                token.from,
                start,
            );
            root = Some(match root {
                None => cmp,
                Some(r) => self.node(
                    NodeKind::Binary {
                        op: BinOp::And,
                        text: "&&",
                        left: Box::new(r),
                        right: Box::new(cmp),
                    },
                    token.from,
                    start,
                ),
            });
            left = right;
            token = self.current().clone();
            if !(token.kind == Kind::Operator && is_range_comparison(&token.value)) {
                break;
            }
            if let Some((Some(o), t, _, _)) = binary(&token.value) {
                op = o;
                text = t;
            }
            self.next()?;
        }
        Ok(root.unwrap_or_else(|| unreachable_node(start)))
    }

    fn let_declaration(&mut self) -> Result<Node> {
        let start = self.current().from;
        self.expect(Kind::Operator, Some("let"))?;
        let name = self.current().clone();
        self.expect(Kind::Identifier, None)?;
        self.expect(Kind::Operator, Some("="))?;
        let value = self.expression(0)?;
        self.expect(Kind::Operator, Some(";"))?;
        let body = self.expression(0)?;
        Ok(self.node(
            NodeKind::Let {
                name: name.value,
                value: Box::new(value),
                body: Box::new(body),
            },
            name.from,
            start,
        ))
    }

    /// `if c { a } else { b }` (expr 1.17).
    fn conditional_if(&mut self) -> Result<Node> {
        let start = self.current().from;
        self.next()?;
        let cond = self.expression(0)?;
        self.expect(Kind::Bracket, Some("{"))?;
        let yes = self.expression(0)?;
        self.expect(Kind::Bracket, Some("}"))?;
        self.expect(Kind::Operator, Some("else"))?;
        let no = if self.current().is_op("if") {
            self.conditional_if()?
        } else {
            self.expect(Kind::Bracket, Some("{"))?;
            let no = self.expression(0)?;
            self.expect(Kind::Bracket, Some("}"))?;
            no
        };
        Ok(self.node(
            NodeKind::Conditional {
                cond: Box::new(cond),
                yes: Box::new(yes),
                no: Box::new(no),
            },
            start,
            start,
        ))
    }

    fn conditional(&mut self, mut node: Node, start: usize) -> Result<Node> {
        while self.current().is_op("?") {
            self.next()?;
            let (yes, no) = if !self.current().is_op(":") {
                let yes = self.expression(0)?;
                self.expect(Kind::Operator, Some(":"))?;
                (yes, self.expression(0)?)
            } else {
                // `a ?: b`
                self.next()?;
                (node.clone(), self.expression(0)?)
            };
            // Go leaves the location of a ternary unset: it reports at the start.
            node = self.node(
                NodeKind::Conditional {
                    cond: Box::new(node),
                    yes: Box::new(yes),
                    no: Box::new(no),
                },
                0,
                start,
            );
        }
        Ok(node)
    }

    fn primary(&mut self) -> Result<Node> {
        let token = self.current().clone();
        let start = token.from;
        if token.kind == Kind::Operator
            && let Some((op, text, prec)) = unary(&token.value)
        {
            self.next()?;
            let operand = self.expression(prec)?;
            let node = self.node(
                NodeKind::Unary {
                    op,
                    text,
                    node: Box::new(operand),
                },
                token.from,
                start,
            );
            return self.postfix(node, start);
        }
        if token.is_bracket("(") {
            self.next()?;
            let mut inner = self.expression(0)?;
            self.expect(Kind::Bracket, Some(")"))?;
            inner.span = (start, self.prev_end);
            return self.postfix(inner, start);
        }
        if token.is_op("#") || token.is_op(".") {
            if self.depth == 0 {
                return Err(self.error("cannot use pointer accessor outside predicate".into()));
            }
            let mut name = String::new();
            if token.is_op("#") {
                self.next()?;
                if self.current().kind == Kind::Identifier {
                    name = self.current().value.clone();
                    self.next()?;
                }
            }
            let node = self.node(NodeKind::Pointer(name), token.from, start);
            return self.postfix(node, start);
        }
        if token.is_op("::") {
            self.next()?;
            let name = self.current().clone();
            self.expect(Kind::Identifier, None)?;
            let call = self.call(&name, vec![], start)?;
            return self.postfix(call, start);
        }
        self.secondary()
    }

    fn secondary(&mut self) -> Result<Node> {
        let token = self.current().clone();
        let start = token.from;
        let node = match token.kind {
            Kind::Identifier => {
                self.next()?;
                match token.value.as_str() {
                    "true" => return Ok(self.node(NodeKind::Bool(true), start, start)),
                    "false" => return Ok(self.node(NodeKind::Bool(false), start, start)),
                    "nil" => return Ok(self.node(NodeKind::Nil, start, start)),
                    _ => {
                        if self.current().is_bracket("(") {
                            self.call(&token, vec![], start)?
                        } else {
                            self.node(NodeKind::Ident(token.value.clone()), start, start)
                        }
                    }
                }
            }
            Kind::Number => {
                self.next()?;
                let kind = self.number(&token)?;
                // Go returns number literals without looking for postfix operators.
                return Ok(self.node(kind, start, start));
            }
            Kind::String => {
                self.next()?;
                self.node(NodeKind::Str(token.value.clone()), start, start)
            }
            _ if token.is_bracket("[") => self.array()?,
            _ if token.is_bracket("{") => self.map()?,
            _ => return Err(self.unexpected()),
        };
        self.postfix(node, start)
    }

    fn number(&self, token: &Token) -> Result<NodeKind> {
        let value = token.value.replace('_', "");
        let lower = value.to_ascii_lowercase();
        let int = |digits: &str, radix: u32, what: &str| {
            i64::from_str_radix(digits, radix).map_err(|e| {
                let why = if matches!(
                    e.kind(),
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
                ) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                self.error_at(
                    token,
                    format!(
                        "invalid {what} literal: strconv.ParseInt: parsing {}: {why}",
                        gofmt::quote(&value)
                    ),
                )
            })
        };
        if lower.starts_with("0x") {
            Ok(NodeKind::Int(int(&value[2..], 16, "hex")?))
        } else if lower.contains(['.', 'e']) {
            let f = gofmt::parse_float(&value)
                .map_err(|e| self.error_at(token, format!("invalid float literal: {e}")))?;
            Ok(NodeKind::Float(f))
        } else if lower.starts_with("0b") {
            Ok(NodeKind::Int(int(&value[2..], 2, "binary")?))
        } else if lower.starts_with("0o") {
            Ok(NodeKind::Int(int(&value[2..], 8, "octal")?))
        } else {
            Ok(NodeKind::Int(int(&value, 10, "integer")?))
        }
    }

    fn call(&mut self, token: &Token, mut args: Vec<Node>, start: usize) -> Result<Node> {
        let name = token.value.as_str();
        if let Some((_, shape)) = PREDICATES.iter().find(|(n, _)| *n == name) {
            self.expect(Kind::Bracket, Some("("))?;
            let shape = &shape[args.len().min(shape.len())..];
            for (i, arg) in shape.iter().enumerate() {
                let optional = matches!(arg, Arg::OptionalPredicate | Arg::OptionalExpr);
                if self.current().is_bracket(")") {
                    if optional {
                        break;
                    }
                    return Err(self.error(format!("expected at least {} arguments", shape.len())));
                }
                if i > 0 {
                    self.expect(Kind::Operator, Some(","))?;
                }
                let node = match arg {
                    Arg::Expr | Arg::OptionalExpr => self.expression(0)?,
                    Arg::Predicate | Arg::OptionalPredicate => self.predicate()?,
                };
                args.push(node);
            }
            if self.current().is_op(",") {
                self.next()?;
            }
            self.expect(Kind::Bracket, Some(")"))?;
            return Ok(self.node(
                NodeKind::Builtin {
                    name: name.to_string(),
                    args,
                },
                token.from,
                start,
            ));
        }
        let args = self.arguments(args)?;
        if BUILTINS.contains(&name) {
            return Ok(self.node(
                NodeKind::Builtin {
                    name: name.to_string(),
                    args,
                },
                token.from,
                start,
            ));
        }
        let callee = Node::new(
            NodeKind::Ident(name.to_string()),
            token.from,
            (token.from, token.to),
        );
        Ok(self.node(
            NodeKind::Call {
                callee: Box::new(callee),
                args,
            },
            token.from,
            start,
        ))
    }

    fn arguments(&mut self, mut args: Vec<Node>) -> Result<Vec<Node>> {
        let offset = args.len();
        self.expect(Kind::Bracket, Some("("))?;
        while !self.current().is_bracket(")") {
            if args.len() > offset {
                self.expect(Kind::Operator, Some(","))?;
            }
            if self.current().is_bracket(")") {
                break;
            }
            args.push(self.expression(0)?);
        }
        self.expect(Kind::Bracket, Some(")"))?;
        Ok(args)
    }

    fn predicate(&mut self) -> Result<Node> {
        let start = self.current().from;
        let braces = self.current().is_bracket("{");
        if braces {
            self.next()?;
        }
        self.depth += 1;
        let body = self.expression(0);
        self.depth -= 1;
        let body = body?;
        if braces {
            self.expect(Kind::Bracket, Some("}"))?;
        }
        Ok(self.node(NodeKind::Predicate(Box::new(body)), start, start))
    }

    fn array(&mut self) -> Result<Node> {
        let start = self.current().from;
        self.expect(Kind::Bracket, Some("["))?;
        let mut nodes = Vec::new();
        while !self.current().is_bracket("]") {
            if !nodes.is_empty() {
                self.expect(Kind::Operator, Some(","))?;
                if self.current().is_bracket("]") {
                    break;
                }
            }
            nodes.push(self.expression(0)?);
        }
        self.expect(Kind::Bracket, Some("]"))?;
        Ok(self.node(NodeKind::Array(nodes), start, start))
    }

    fn map(&mut self) -> Result<Node> {
        let start = self.current().from;
        self.expect(Kind::Bracket, Some("{"))?;
        let mut pairs = Vec::new();
        while !self.current().is_bracket("}") {
            if !pairs.is_empty() {
                self.expect(Kind::Operator, Some(","))?;
                if self.current().is_bracket("}") {
                    break;
                }
                if self.current().is_op(",") {
                    return Err(self.unexpected());
                }
            }
            let t = self.current().clone();
            let key = if matches!(t.kind, Kind::Number | Kind::String | Kind::Identifier) {
                self.next()?;
                Node::new(NodeKind::Str(t.value.clone()), start, (t.from, t.to))
            } else if t.is_bracket("(") {
                self.expression(0)?
            } else {
                return Err(self.error(format!(
                    "a map key must be a quoted string, a number, a identifier, or an expression enclosed in parentheses (unexpected token {t})"
                )));
            };
            self.expect(Kind::Operator, Some(":"))?;
            let value = self.expression(0)?;
            pairs.push((key, value));
        }
        self.expect(Kind::Bracket, Some("}"))?;
        Ok(self.node(NodeKind::Map(pairs), start, start))
    }

    fn postfix(&mut self, mut node: Node, start: usize) -> Result<Node> {
        loop {
            let token = self.current().clone();
            if !matches!(token.kind, Kind::Operator | Kind::Bracket) {
                break;
            }
            let mut optional = token.value == "?.";
            if token.value == "." || optional {
                self.next()?;
                let property = self.current().clone();
                if optional && property.is_bracket("[") {
                    node = self.index(node, &property, true, start)?;
                    continue;
                }
                self.next()?;
                if property.kind != Kind::Identifier
                    && (property.kind != Kind::Operator || !is_valid_identifier(&property.value))
                {
                    return Err(self.error("expected name".into()));
                }
                let (inner, was_chain) = match node.kind {
                    NodeKind::Chain(inner) => (*inner, true),
                    _ => (node, false),
                };
                let prop = Node::new(
                    NodeKind::Str(property.value.clone()),
                    property.from,
                    (property.from, property.to),
                );
                let method = self.current().is_bracket("(");
                let member = self.node(
                    NodeKind::Member {
                        node: Box::new(inner),
                        property: Box::new(prop),
                        optional,
                        method,
                    },
                    property.from,
                    start,
                );
                node = if method {
                    let args = self.arguments(vec![])?;
                    self.node(
                        NodeKind::Call {
                            callee: Box::new(member),
                            args,
                        },
                        property.from,
                        start,
                    )
                } else {
                    member
                };
                if was_chain || optional {
                    node = self.node(NodeKind::Chain(Box::new(node)), property.from, start);
                }
            } else if token.is_bracket("[") {
                optional = false;
                node = self.index(node, &token, optional, start)?;
            } else {
                break;
            }
        }
        Ok(node)
    }

    /// `[i]`, `[a:b]`, `[:b]`, `[a:]` after `node`; `bracket` is the `[` token.
    fn index(&mut self, node: Node, bracket: &Token, optional: bool, start: usize) -> Result<Node> {
        self.next()?;
        if self.current().is_op(":") {
            self.next()?;
            let to = if self.current().is_bracket("]") {
                None
            } else {
                Some(Box::new(self.expression(0)?))
            };
            self.expect(Kind::Bracket, Some("]"))?;
            return Ok(self.node(
                NodeKind::Slice {
                    node: Box::new(node),
                    from: None,
                    to,
                },
                bracket.from,
                start,
            ));
        }
        let from = self.expression(0)?;
        if self.current().is_op(":") {
            self.next()?;
            let to = if self.current().is_bracket("]") {
                None
            } else {
                Some(Box::new(self.expression(0)?))
            };
            self.expect(Kind::Bracket, Some("]"))?;
            return Ok(self.node(
                NodeKind::Slice {
                    node: Box::new(node),
                    from: Some(Box::new(from)),
                    to,
                },
                bracket.from,
                start,
            ));
        }
        self.expect(Kind::Bracket, Some("]"))?;
        let member = self.node(
            NodeKind::Member {
                node: Box::new(node),
                property: Box::new(from),
                optional,
                method: false,
            },
            bracket.from,
            start,
        );
        Ok(if optional {
            self.node(NodeKind::Chain(Box::new(member)), bracket.from, start)
        } else {
            member
        })
    }
}

fn unreachable_node(at: usize) -> Node {
    Node::new(NodeKind::Nil, at, (at, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse(src).unwrap_err().message
    }

    #[test]
    fn precedence() {
        // `-2 ** 2` is -(2 ** 2); `not a == b` is (not a) == b.
        let n = parse("-2 ** 2").unwrap();
        assert!(matches!(n.kind, NodeKind::Unary { op: UnOp::Neg, .. }));
        let n = parse("not a == b").unwrap();
        assert!(matches!(n.kind, NodeKind::Binary { op: BinOp::Eq, .. }));
        let n = parse("a || b && c").unwrap();
        assert!(matches!(n.kind, NodeKind::Binary { op: BinOp::Or, .. }));
        let n = parse("1 < x < 3").unwrap();
        assert!(matches!(n.kind, NodeKind::Binary { op: BinOp::And, .. }));
    }

    #[test]
    fn go_messages() {
        assert_eq!(err("result >"), "unexpected token EOF");
        assert_eq!(err("result[0"), "unexpected token EOF");
        assert_eq!(err("(1 + 2"), "unexpected token EOF");
        assert_eq!(err("1 2"), "unexpected token Number(\"2\")");
        assert_eq!(
            err("a ?? b + c"),
            "Operator (+) and coalesce expressions (??) cannot be mixed. Wrap either by parentheses."
        );
        assert_eq!(
            err("# > 1"),
            "cannot use pointer accessor outside predicate"
        );
        assert_eq!(err("result."), "unexpected end of expression");
        assert_eq!(err("all(result)"), "expected at least 2 arguments");
        assert_eq!(
            err("99999999999999999999"),
            "invalid integer literal: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
        assert_eq!(err("a not b"), "unexpected token Identifier(\"b\")");
    }

    #[test]
    fn deep_or_huge_trees_are_errors_not_stack_overflows() {
        assert!(err(&"(".repeat(100_000)).contains("nested too deeply"));
        assert!(err(&"-".repeat(100_000)).contains("nested too deeply"));
        let chain = vec!["1"; 5_000].join(" + ");
        assert!(err(&chain).contains("nested too deeply"));
        let wide = format!("[{}]", vec!["1"; 20_000].join(", "));
        assert_eq!(
            err(&wide),
            "compilation failed: expression exceeds maximum allowed nodes"
        );
    }

    #[test]
    fn spans_cover_subtrees() {
        let src = "len(result) > 0 && result[0] >= 0.95";
        let n = parse(src).unwrap();
        let NodeKind::Binary { left, right, .. } = &n.kind else {
            panic!()
        };
        assert_eq!(&src[left.span.0..left.span.1], "len(result) > 0");
        assert_eq!(&src[right.span.0..right.span.1], "result[0] >= 0.95");
    }
}
