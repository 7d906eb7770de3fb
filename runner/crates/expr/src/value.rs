//! The measurement result a condition sees as `result`, and the `--result` syntax.

use indexmap::IndexMap;

/// A measurement result, as conditions see it in `result`.
///
/// The variants follow the Go values Argo's providers hand to conditions, because the type of
/// `result` decides which expressions type-check:
///
/// | variant | Go type | from |
/// | --- | --- | --- |
/// | [`Value::Nil`] | `nil` | no data (Datadog without points, `null`) |
/// | [`Value::Float`] | `float64` | a Prometheus scalar, any JSON number |
/// | [`Value::Vector`] | `[]float64` | a Prometheus vector or matrix (NaN and ±Inf kept) |
/// | [`Value::Array`] | `[]interface {}` | a JSON array from the web provider |
/// | [`Value::Map`] | `map[string]interface {}` | a JSON object (key order kept) |
/// | [`Value::String`], [`Value::Bool`], [`Value::Int`] | `string`, `bool`, `int` | |
///
/// Never round-trip a value through `serde_json::Value`: it cannot hold NaN or ±Inf.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    /// A list of values of any type (Go `[]interface {}`).
    Array(Vec<Value>),
    /// A list of samples (Go `[]float64`), what Prometheus vectors become.
    Vector(Vec<f64>),
    /// An object with string keys (Go `map[string]interface {}`), in insertion order.
    Map(IndexMap<String, Value>),
}

impl Value {
    /// The Go type Argo would hold for this value, as `%T` prints it.
    pub fn go_type(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Array(_) => "[]interface {}",
            Value::Vector(_) => "[]float64",
            Value::Map(_) => "map[string]interface {}",
        }
    }

    /// Argo's "no data": nil, or an empty array. Conditions that fail on such a result get
    /// the message `metric result is nil or empty: no data returned from the metric provider`.
    pub fn is_nil_or_empty(&self) -> bool {
        match self {
            Value::Nil => true,
            Value::Array(a) => a.is_empty(),
            Value::Vector(v) => v.is_empty(),
            _ => false,
        }
    }

    /// Parses the `--result` syntax: any JSON value, plus the bare words `NaN`, `Inf`, `+Inf`
    /// and `-Inf` (case-insensitive, also inside arrays and objects), which Prometheus returns
    /// and JSON cannot spell. JSON numbers become floats, as Go's `encoding/json` makes them;
    /// a top-level array of numbers becomes a [`Value::Vector`] (a Prometheus vector), any
    /// other array a [`Value::Array`]. `null` is [`Value::Nil`], "no data".
    pub fn parse(text: &str) -> Result<Value, ParseValueError> {
        let mut p = JsonParser {
            src: text,
            pos: 0,
            depth: 0,
        };
        p.skip_ws();
        let value = p.value()?;
        p.skip_ws();
        if p.pos < text.len() {
            return Err(p.error("unexpected text after the value"));
        }
        Ok(match value {
            Value::Array(items) if items.iter().all(|v| matches!(v, Value::Float(_))) => {
                Value::Vector(
                    items
                        .into_iter()
                        .map(|v| match v {
                            Value::Float(f) => f,
                            _ => f64::NAN,
                        })
                        .collect(),
                )
            }
            other => other,
        })
    }
}

/// `--result` text that is neither JSON nor one of the bare words `NaN`, `Inf`, `+Inf`, `-Inf`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid result at column {column}: {message}")]
pub struct ParseValueError {
    /// What was wrong.
    pub message: String,
    /// 1-based character column in the text.
    pub column: usize,
}

struct JsonParser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 256;

impl JsonParser<'_> {
    fn error(&self, message: &str) -> ParseValueError {
        // `pos` may stop inside a character (a bad escape before a multi-byte one): count the
        // characters that start before it.
        let column = self
            .src
            .char_indices()
            .take_while(|(at, _)| *at < self.pos)
            .count()
            + 1;
        ParseValueError {
            message: message.to_string(),
            column,
        }
    }

    fn rest(&self) -> &str {
        // Past the end, or inside a character after an error: nothing left to read.
        self.src.get(self.pos..).unwrap_or("")
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start_matches([' ', '\t', '\n', '\r']);
        self.pos = self.src.len() - trimmed.len();
    }

    fn value(&mut self) -> Result<Value, ParseValueError> {
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return Err(self.error("expected a value, found the end"));
        };
        match c {
            '{' => self.object(),
            '[' => self.array(),
            '"' => Ok(Value::String(self.string()?)),
            't' if rest.starts_with("true") => {
                self.pos += 4;
                Ok(Value::Bool(true))
            }
            'f' if rest.starts_with("false") => {
                self.pos += 5;
                Ok(Value::Bool(false))
            }
            'n' if rest.starts_with("null") => {
                self.pos += 4;
                Ok(Value::Nil)
            }
            '-' | '+' | '0'..='9' | 'N' | 'n' | 'I' | 'i' => self.number(),
            _ => Err(self.error(&format!(
                "expected a value (JSON, `NaN`, `+Inf` or `-Inf`), found `{c}`"
            ))),
        }
    }

    fn enter(&mut self) -> Result<(), ParseValueError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        Ok(())
    }

    fn array(&mut self) -> Result<Value, ParseValueError> {
        self.enter()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.rest().starts_with(']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.rest().chars().next() {
                Some(',') => self.pos += 1,
                Some(']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn object(&mut self) -> Result<Value, ParseValueError> {
        self.enter()?;
        self.pos += 1;
        let mut map = IndexMap::new();
        self.skip_ws();
        if self.rest().starts_with('}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Map(map));
        }
        loop {
            self.skip_ws();
            if !self.rest().starts_with('"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            if !self.rest().starts_with(':') {
                return Err(self.error("expected `:`"));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value()?;
            map.insert(key, value);
            self.skip_ws();
            match self.rest().chars().next() {
                Some(',') => self.pos += 1,
                Some('}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
        self.depth -= 1;
        Ok(Value::Map(map))
    }

    fn string(&mut self) -> Result<String, ParseValueError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let Some(c) = self.rest().chars().next() else {
                return Err(self.error("unterminated string"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.rest().chars().next() else {
                        return Err(self.error("unterminated string"));
                    };
                    self.pos += 1;
                    out.push(match e {
                        '"' => '"',
                        '\\' => '\\',
                        '/' => '/',
                        'b' => '\x08',
                        'f' => '\x0c',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => self.unicode_escape()?,
                        _ => return Err(self.error("invalid escape in string")),
                    });
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.error("control character in string"));
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseValueError> {
        let digits = self.rest().get(..4).unwrap_or("");
        let v = u32::from_str_radix(digits, 16)
            .ok()
            .filter(|_| digits.len() == 4 && digits.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn unicode_escape(&mut self) -> Result<char, ParseValueError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.rest().starts_with("\\u") {
            self.pos += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
            }
            return Ok('\u{FFFD}');
        }
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }

    fn number(&mut self) -> Result<Value, ParseValueError> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        let unsigned = word.strip_prefix(['+', '-']).unwrap_or(word);
        let negative = word.starts_with('-');
        let value = match unsigned.to_ascii_lowercase().as_str() {
            "nan" => f64::NAN,
            "inf" | "infinity" => {
                if negative {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            }
            _ => {
                if !is_json_number(word) {
                    return Err(self.error(&format!("`{word}` is not a number")));
                }
                let f: f64 = word
                    .parse()
                    .map_err(|_| self.error(&format!("`{word}` is not a number")))?;
                if f.is_infinite() {
                    return Err(self.error(&format!("`{word}` is out of range for a float64")));
                }
                f
            }
        };
        self.pos += len;
        Ok(Value::Float(value))
    }
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let n = digits(&mut i);
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Renders a value for people: JSON, with `NaN`, `+Inf` and `-Inf` spelled out. The text
/// parses back with [`Value::parse`].
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Nil => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&render_float(*x)),
            Value::String(s) => f.write_str(&render_string(s)),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Vector(items) => {
                f.write_str("[")?;
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&render_float(*x))?;
                }
                f.write_str("]")
            }
            Value::Map(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {v}", render_string(k))?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A float for people: shortest digits, no exponent for ordinary magnitudes.
pub(crate) fn render_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if x != 0.0 && (x.abs() >= 1e21 || x.abs() < 1e-6) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A JSON string literal.
pub(crate) fn render_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}

/// `None` is "no data", as a nil pointer is in Argo's Datadog provider.
impl From<Option<f64>> for Value {
    fn from(x: Option<f64>) -> Self {
        x.map_or(Value::Nil, Value::Float)
    }
}

impl From<Vec<f64>> for Value {
    fn from(v: Vec<f64>) -> Self {
        Value::Vector(v)
    }
}

impl From<&[f64]> for Value {
    fn from(v: &[f64]) -> Self {
        Value::Vector(v.to_vec())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

/// JSON from the web provider: numbers become floats and arrays `[]interface {}`, as Go's
/// `encoding/json` decodes them into `interface{}`.
impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.iter().map(|(k, v)| (k.clone(), Value::from(v))).collect())
            }
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::from(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_escape_before_a_multibyte_character_is_an_error_not_a_panic() {
        // Found by the `conditions` fuzz target (tests/bench/fuzz).
        for text in ["\"a\\㽞\"", "\"aUut%l\\\\J\\㽞(reu[", "[\"\\φ"] {
            let error = Value::parse(text).expect_err(text);
            assert!(error.column >= 1, "{text}: {error}");
        }
    }

    #[test]
    fn parses_json_and_prometheus_words() {
        assert_eq!(Value::parse("null").unwrap(), Value::Nil);
        assert_eq!(Value::parse(" 0.95 ").unwrap(), Value::Float(0.95));
        assert_eq!(Value::parse("-1.5").unwrap(), Value::Float(-1.5));
        assert!(matches!(Value::parse("NaN").unwrap(), Value::Float(f) if f.is_nan()));
        assert_eq!(Value::parse("+Inf").unwrap(), Value::Float(f64::INFINITY));
        assert_eq!(
            Value::parse("-Inf").unwrap(),
            Value::Float(f64::NEG_INFINITY)
        );
        assert_eq!(Value::parse("Inf").unwrap(), Value::Float(f64::INFINITY));
        let Value::Vector(v) = Value::parse("[1, NaN, -Inf]").unwrap() else {
            panic!("expected a vector")
        };
        assert_eq!(v[0], 1.0);
        assert!(v[1].is_nan());
        assert_eq!(Value::parse("[]").unwrap(), Value::Vector(vec![]));
        assert_eq!(
            Value::parse(r#"[1, "a"]"#).unwrap(),
            Value::Array(vec![Value::Float(1.0), Value::String("a".into())])
        );
        let Value::Map(m) = Value::parse(r#"{"b": 1, "a": {"ok": true}}"#).unwrap() else {
            panic!("expected a map")
        };
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(
            Value::parse(r#""\u00e9\n""#).unwrap(),
            Value::String("é\n".into())
        );
    }

    #[test]
    fn rejects_bad_text_with_a_column() {
        let e = Value::parse("[1, 2").unwrap_err();
        assert_eq!(e.column, 6);
        assert!(Value::parse("01").is_err());
        assert!(Value::parse("1e400").is_err());
        assert!(Value::parse("{'a': 1}").is_err());
        assert!(Value::parse("").is_err());
        assert!(Value::parse("1 2").is_err());
        assert!(Value::parse(&"[".repeat(1000)).is_err());
    }

    #[test]
    fn displays_round_trip() {
        for text in [
            "[0.91, NaN, +Inf]",
            r#"{"a": [1, "x"], "b": null}"#,
            "-Inf",
            "true",
        ] {
            let v = Value::parse(text).unwrap();
            assert_eq!(v.to_string(), text);
        }
    }

    #[test]
    fn json_numbers_become_floats() {
        let v = Value::from(serde_json::json!({"n": 1, "a": [1, 2]}));
        let Value::Map(m) = v else { panic!() };
        assert_eq!(m["n"], Value::Float(1.0));
        assert_eq!(m["a"].go_type(), "[]interface {}");
    }
}
