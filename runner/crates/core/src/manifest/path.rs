//! Field paths into a document (`spec.strategy.canary.steps[2].setWeight`), and the map from
//! field paths to where they are written in the source text.

use std::collections::HashMap;
use std::fmt;

/// One step of a [`FieldPath`]: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the root of a document to one of its fields, printed as Kubernetes prints field
/// paths: keys joined by `.`, indices in brackets, and keys that contain `.`, `[` or `]` (such as
/// annotation names) in brackets too: `metadata.annotations[nginx.ingress.kubernetes.io/canary]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The root of a document.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parse a dotted path such as `spec.strategy.canary.steps[2].setWeight`. Keys are split at
    /// `.`; `[N]` is an index and `[text]` a key.
    pub fn parse(text: &str) -> Self {
        let mut segments = Vec::new();
        let mut key = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    if !key.is_empty() {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    }
                }
                '[' => {
                    if !key.is_empty() {
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    }
                    let mut inner = String::new();
                    for c in chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                        inner.push(c);
                    }
                    match inner.parse::<usize>() {
                        Ok(index) => segments.push(Segment::Index(index)),
                        Err(_) => segments.push(Segment::Key(inner)),
                    }
                }
                _ => key.push(c),
            }
        }
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        }
        Self(segments)
    }

    /// This path with a key appended.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.into()));
        Self(segments)
    }

    /// This path with a dotted sub-path appended (`path.keys("trafficRouting.nginx")`).
    pub fn keys(&self, dotted: &str) -> Self {
        let mut segments = self.0.clone();
        segments.extend(Self::parse(dotted).0);
        Self(segments)
    }

    /// This path with a sequence index appended.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path without its last segment (the root stays the root).
    pub fn parent(&self) -> Self {
        let mut segments = self.0.clone();
        segments.pop();
        Self(segments)
    }

    /// The last key of the path, if it ends in a key.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// The keys of the path, indices left out (`spec.templates[0].template` gives
    /// `["spec", "templates", "template"]`).
    pub fn keys_only(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|segment| match segment {
                Segment::Key(key) => Some(key.as_str()),
                Segment::Index(_) => None,
            })
            .collect()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) if key.is_empty() || key.contains(['.', '[', ']']) => {
                    write!(f, "[{key}]")?
                }
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
            }
        }
        Ok(())
    }
}

/// A line and column in a source text, both starting at 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// Where a field is written: its key (for mapping entries) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub key: Option<Position>,
    pub value: Position,
}

/// Every field path of a document and where it is written.
#[derive(Debug, Clone, Default)]
pub struct SpanMap {
    spans: HashMap<FieldPath, Span>,
}

impl SpanMap {
    pub(crate) fn insert(&mut self, path: FieldPath, span: Span) {
        self.spans.insert(path, span);
    }

    /// Where the field is written, exactly.
    pub fn get(&self, path: &FieldPath) -> Option<Span> {
        self.spans.get(path).copied()
    }

    /// Where to point a reader for a problem at `path`: the field's key (or, for a sequence
    /// item, its value); for a field that is not written (a missing field), the nearest
    /// ancestor that is.
    pub fn locate(&self, path: &FieldPath) -> Position {
        let mut current = path.clone();
        loop {
            if let Some(span) = self.spans.get(&current) {
                return span.key.unwrap_or(span.value);
            }
            if current.is_root() {
                return Position::default();
            }
            current = current.parent();
        }
    }

    /// Whether the field is written in the source.
    pub fn contains(&self, path: &FieldPath) -> bool {
        self.spans.contains_key(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_paths() {
        for text in [
            "spec.strategy.canary.steps[2].setWeight",
            "metadata.annotations[nginx.ingress.kubernetes.io/canary]",
            "spec.templates[0].template",
        ] {
            assert_eq!(FieldPath::parse(text).to_string(), text);
        }
        assert_eq!(
            FieldPath::root().key("a").index(1).key("b").to_string(),
            "a[1].b"
        );
        assert_eq!(FieldPath::parse("").to_string(), "");
    }

    #[test]
    fn locate_falls_back_to_the_nearest_ancestor() {
        let mut map = SpanMap::default();
        let at = |line, column| Position { line, column };
        map.insert(
            FieldPath::root(),
            Span {
                key: None,
                value: at(1, 1),
            },
        );
        map.insert(
            FieldPath::parse("spec"),
            Span {
                key: Some(at(3, 1)),
                value: at(4, 3),
            },
        );
        assert_eq!(map.locate(&FieldPath::parse("spec.selector")), at(3, 1));
        assert_eq!(map.locate(&FieldPath::parse("status")), at(1, 1));
    }
}
