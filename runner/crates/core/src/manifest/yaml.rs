//! YAML (and JSON, which is YAML) streams into JSON values, keeping where every field is
//! written.
//!
//! Parsing goes through serde-saphyr, so the YAML rules are kubectl's: YAML 1.1 booleans
//! (`yes`, `on`), merge keys and anchors, duplicate keys rejected, tabs rejected in block
//! indentation. Empty documents (`---` alone, comments only, `null`) are skipped.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use super::path::{FieldPath, Position, Span, SpanMap};

/// One non-empty document of a stream.
#[derive(Debug, Clone)]
pub(crate) struct ParsedDocument {
    pub(crate) value: Value,
    pub(crate) spans: SpanMap,
}

/// Why a stream could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) position: Position,
}

/// The most documents one stream may hold. serde-saphyr's default (1,024) refuses real
/// `helm template` output; the stream's size is what bounds the work (inputs are capped at
/// 8 MiB a file), so this only stops `---` storms in a file of that size.
pub(crate) const MAX_DOCUMENTS: usize = 100_000;

/// The most YAML nodes (mappings, sequences, scalars) in one stream, serde-saphyr's default:
/// alias expansion counts, so a "billion laughs" stream stops here.
pub(crate) const MAX_NODES: usize = 250_000;

/// Parse every document of a YAML or JSON stream.
pub(crate) fn parse_stream(text: &str) -> Result<Vec<ParsedDocument>, SyntaxError> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = MAX_DOCUMENTS;
    budget.max_nodes = MAX_NODES;
    budget.max_events = 4 * MAX_NODES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    let nodes: Vec<Node> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(syntax_error)?;
    Ok(nodes
        .into_iter()
        .map(|node| {
            let mut spans = SpanMap::default();
            let value = into_json(node, None, FieldPath::root(), &mut spans);
            ParsedDocument { value, spans }
        })
        .collect())
}

fn syntax_error(error: serde_saphyr::Error) -> SyntaxError {
    let position = error
        .location()
        .map(|l| Position {
            line: l.line() as u32,
            column: l.column() as u32,
        })
        .unwrap_or_default();
    // A breach may come wrapped (in an alias's or a snippet's error), or flattened into a
    // message when it happens under an alias: its text is then serde-saphyr's debug form.
    let mut inner = &error;
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = inner
    {
        inner = error;
    }
    let breach = match inner {
        serde_saphyr::Error::Budget { breach, .. } => Some(format!("{breach:?}")),
        other => other
            .to_string()
            .split_once("budget breached: ")
            .map(|(_, rest)| rest.to_string()),
    };
    if let Some(breach) = breach {
        return SyntaxError {
            message: format!("invalid YAML: {}", budget_reason(&breach)),
            hint: Some(
                "split the stream into smaller files, or expand the anchors it repeats".to_string(),
            ),
            position,
        };
    }
    let rendered = error.render_with_options(serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    });
    // The plain rendering ends with " at line L, column C", which the caller prints itself.
    let message = match rendered.rsplit_once(" at line ") {
        Some((message, _)) => message.to_string(),
        None => rendered,
    };
    let (message, hint) = if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        (
            format!("duplicate key `{key}`"),
            Some("a key may appear once per mapping: remove or merge the repeated one".to_string()),
        )
    } else if message.starts_with("tabs disallowed") {
        (
            message,
            Some("indent YAML with spaces, not tabs".to_string()),
        )
    } else {
        (
            message,
            Some("fix the YAML syntax at this position".to_string()),
        )
    };
    SyntaxError {
        message: format!("invalid YAML: {message}"),
        hint,
        position,
    }
}

/// A budget breach (serde-saphyr's debug form, `Nodes { nodes: 250001 }`) in the user's words.
fn budget_reason(breach: &str) -> String {
    let kind = breach.split([' ', '{']).next().unwrap_or("");
    match kind {
        "Documents" => format!("the stream holds more than {MAX_DOCUMENTS} documents"),
        "Nodes" | "Events" => format!(
            "the stream expands to more than {MAX_NODES} values (counting what aliases repeat)"
        ),
        "Aliases" | "AliasAnchorRatio" => "the stream uses too many aliases (`*name`)".to_string(),
        "Anchors" => "the stream defines too many anchors (`&name`)".to_string(),
        "Depth" => "mappings and sequences are nested too deeply".to_string(),
        "ScalarBytes" => "the stream's text values are too large in all".to_string(),
        "MergeKeys" => "the stream uses too many merge keys (`<<`)".to_string(),
        _ => "the stream is too large or too complex to read".to_string(),
    }
}

/// A YAML node with the position of its value.
#[derive(Debug)]
struct Node {
    position: Position,
    kind: NodeKind,
}

#[derive(Debug)]
enum NodeKind {
    Null,
    Bool(bool),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<(Spanned<String>, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeKind>::deserialize(deserializer)?;
        Ok(Node {
            position: Position {
                line: spanned.referenced.line() as u32,
                column: spanned.referenced.column() as u32,
            },
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Signed(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeKind, E> {
        Ok(NodeKind::Unsigned(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<NodeKind, E> {
        Ok(NodeKind::String(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeKind::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeKind::Mapping(entries))
    }
}

/// Convert a node to JSON as sigs.k8s.io/yaml does (integral floats become integers), and
/// record the position of every field.
fn into_json(node: Node, key: Option<Position>, path: FieldPath, spans: &mut SpanMap) -> Value {
    spans.insert(
        path.clone(),
        Span {
            key,
            value: node.position,
        },
    );
    match node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(b),
        NodeKind::Signed(i) => Value::Number(i.into()),
        NodeKind::Unsigned(u) => Value::Number(u.into()),
        NodeKind::Float(f) => float_to_json(f),
        NodeKind::String(s) => Value::String(s),
        NodeKind::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| into_json(item, None, path.index(i), spans))
                .collect(),
        ),
        NodeKind::Mapping(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let key_position = Position {
                    line: key.referenced.line() as u32,
                    column: key.referenced.column() as u32,
                };
                let child = path.key(key.value.clone());
                let json = into_json(value, Some(key_position), child, spans);
                map.insert(key.value, json);
            }
            Value::Object(map)
        }
    }
}

fn float_to_json(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Value::Number((f as i64).into());
    }
    Number::from_f64(f)
        .map(Value::Number)
        // NaN and infinities have no JSON form; keep their YAML spelling.
        .unwrap_or_else(|| Value::String(f.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_positions() {
        let text = "a: 1\nb:\n  - x\n  - 2.0\n---\n# only a comment\n---\nc: yes\n";
        let docs = parse_stream(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].value, serde_json::json!({"a": 1, "b": ["x", 2]}));
        assert_eq!(
            docs[0].spans.locate(&FieldPath::parse("b[1]")),
            Position { line: 4, column: 5 }
        );
        assert_eq!(
            docs[0].spans.locate(&FieldPath::parse("b")),
            Position { line: 2, column: 1 }
        );
        assert_eq!(docs[1].value, serde_json::json!({"c": true}));
    }

    #[test]
    fn budget_breaches_are_explained() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 0..9u8 {
            let (name, previous) = ((b'b' + level) as char, (b'a' + level) as char);
            bomb.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{previous}"); 10].join(", ")
            ));
        }
        let err = parse_stream(&bomb).unwrap_err();
        assert!(
            err.message
                .starts_with("invalid YAML: the stream expands to more than 250000 values"),
            "{}",
            err.message
        );
        assert!(err.position.line > 0);
        let deep = format!("x: {}{}", "[".repeat(300), "]".repeat(300));
        let err = parse_stream(&deep).unwrap_err();
        assert!(!err.message.contains('{'), "{}", err.message);
        // `helm template` output runs to thousands of documents.
        let many = "---\na: 1\n".repeat(5000);
        assert_eq!(parse_stream(&many).unwrap().len(), 5000);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse_stream("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.message, "invalid YAML: duplicate key `a`");
        assert_eq!(err.position, Position { line: 2, column: 1 });
        let err = parse_stream("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(err.position.line, 2);
        assert!(err.message.contains("tabs"), "{}", err.message);
    }
}
