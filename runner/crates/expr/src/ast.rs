//! The syntax tree, shaped like expr-lang/expr's `ast` package so that the checker and the
//! interpreter can follow Go's rules node by node.

/// A node, the byte offset Go reports errors at (`at`), and the source range it spans.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    /// Where Go's `file.Error` for this node points: the operator of a binary node, the
    /// property of a member access, the name of a call.
    pub(crate) at: usize,
    /// Byte range of the whole subtree in the source, for explanations.
    pub(crate) span: (usize, usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Ident(String),
    /// `#` (empty name), `#index` or `#acc` inside a predicate; `.field` is `#` + member.
    Pointer(String),
    Unary {
        op: UnOp,
        text: &'static str,
        node: Box<Node>,
    },
    Binary {
        op: BinOp,
        text: &'static str,
        left: Box<Node>,
        right: Box<Node>,
    },
    /// `a.b`, `a?.b`, `a[b]`; `method` when it is called (`a.b()`).
    Member {
        node: Box<Node>,
        property: Box<Node>,
        optional: bool,
        method: bool,
    },
    Slice {
        node: Box<Node>,
        from: Option<Box<Node>>,
        to: Option<Box<Node>>,
    },
    /// A call of an environment function (`asInt(x)`) or a method (`now().Unix()`).
    Call {
        callee: Box<Node>,
        args: Vec<Node>,
    },
    /// A call of one of expr's builtins (`len`, `all`, `filter`, ...).
    Builtin {
        name: String,
        args: Vec<Node>,
    },
    /// The closure argument of `all`, `map`, ...: `{# > 1}` or `# > 1`.
    Predicate(Box<Node>),
    /// Wraps an optional chain (`a?.b.c`) so that a nil anywhere ends it with nil.
    Chain(Box<Node>),
    Conditional {
        cond: Box<Node>,
        yes: Box<Node>,
        no: Box<Node>,
    },
    Array(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Let {
        name: String,
        value: Box<Node>,
        body: Box<Node>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnOp {
    Not,
    Neg,
    Plus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
    Matches,
    Contains,
    StartsWith,
    EndsWith,
    Range,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Coalesce,
}

impl BinOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge
        )
    }
}

impl Node {
    pub(crate) fn new(kind: NodeKind, at: usize, span: (usize, usize)) -> Self {
        Node { kind, at, span }
    }

    /// The direct children, in source order.
    pub(crate) fn children(&self) -> Vec<&Node> {
        match &self.kind {
            NodeKind::Nil
            | NodeKind::Bool(_)
            | NodeKind::Int(_)
            | NodeKind::Float(_)
            | NodeKind::Str(_)
            | NodeKind::Ident(_)
            | NodeKind::Pointer(_) => vec![],
            NodeKind::Unary { node, .. } | NodeKind::Predicate(node) | NodeKind::Chain(node) => {
                vec![node]
            }
            NodeKind::Binary { left, right, .. } => vec![left, right],
            NodeKind::Member { node, property, .. } => vec![node, property],
            NodeKind::Slice { node, from, to } => {
                let mut v = vec![node.as_ref()];
                v.extend(from.as_deref());
                v.extend(to.as_deref());
                v
            }
            NodeKind::Call { callee, args } => {
                let mut v = vec![callee.as_ref()];
                v.extend(args.iter());
                v
            }
            NodeKind::Builtin { args, .. } | NodeKind::Array(args) => args.iter().collect(),
            NodeKind::Conditional { cond, yes, no } => vec![cond, yes, no],
            NodeKind::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
            NodeKind::Let { value, body, .. } => vec![value, body],
        }
    }
}
