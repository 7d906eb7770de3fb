//! Values: the data a template sees as `values`.
//!
//! Values files are deep-merged in the order given (mappings merge key by key, everything else,
//! lists included, is replaced by the later value), then every `--set`, then every
//! `--set-string`, each in the order given. This module parses and merges; it never reads a
//! file: the caller hands over the text.

use std::path::Path;

use serde_json::{Map, Value};

use super::RenderError;

/// The merged values a template sees as `values`: always a mapping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values(Map<String, Value>);

impl Values {
    /// Empty values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merge a values file (YAML) over the values so far.
    ///
    /// `source` names the file in messages. An empty file (or one holding only comments or
    /// `null`) adds nothing; anything but a mapping at the top level is an error.
    pub fn merge_yaml(&mut self, source: &Path, text: &str) -> Result<(), RenderError> {
        let file = source.display().to_string();
        let parsed: Value =
            serde_saphyr::from_str(text).map_err(|error| RenderError::ValuesFile {
                file: file.clone(),
                message: first_line(&error.to_string()),
            })?;
        match parsed {
            Value::Null => Ok(()),
            Value::Object(map) => {
                merge_maps(&mut self.0, map);
                Ok(())
            }
            other => Err(RenderError::ValuesFile {
                file,
                message: format!(
                    "the top level must be a mapping of names to values, found {}",
                    kind_name(&other)
                ),
            }),
        }
    }

    /// Merge a mapping over the values so far (the same rules as a values file).
    pub fn merge(&mut self, overlay: Map<String, Value>) {
        merge_maps(&mut self.0, overlay);
    }

    /// Apply one `--set key.path=value`: the value is typed as a YAML scalar (see
    /// [`parse_scalar`]).
    pub fn set(&mut self, arg: &str) -> Result<(), RenderError> {
        let (path, raw) = split_assignment("--set", arg)?;
        let value = parse_scalar(raw);
        self.insert(&path, value);
        Ok(())
    }

    /// Apply one `--set-string key.path=value`: the value is always a string.
    pub fn set_string(&mut self, arg: &str) -> Result<(), RenderError> {
        let (path, raw) = split_assignment("--set-string", arg)?;
        self.insert(&path, Value::String(raw.to_owned()));
        Ok(())
    }

    /// The values as a JSON mapping.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The values as a JSON value (always an object).
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    fn insert(&mut self, path: &[String], value: Value) {
        let (last, parents) = path.split_last().expect("a parsed path is never empty");
        let mut map = &mut self.0;
        for key in parents {
            let entry = map
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                // A later assignment wins, as in a values file: `image=x` then
                // `image.tag=y` leaves `image: {tag: y}`.
                *entry = Value::Object(Map::new());
            }
            map = entry.as_object_mut().expect("just made an object");
        }
        map.insert(last.clone(), value);
    }
}

impl From<Map<String, Value>> for Values {
    fn from(map: Map<String, Value>) -> Self {
        Self(map)
    }
}

/// Deep-merge `overlay` into `base`: mappings merge key by key; any other value (scalars,
/// lists, `null`) replaces what was there.
pub fn merge_maps(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_maps(existing, incoming);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Type a `--set` value as a YAML 1.2 core-schema scalar.
///
/// | input | value |
/// | --- | --- |
/// | `null`, `Null`, `NULL`, `~` | null |
/// | `true`, `True`, `TRUE`, `false`, `False`, `FALSE` | boolean |
/// | `3`, `-12`, `+7` (no leading zeros) | integer |
/// | `0.5`, `1e3`, `-2.5E-3` | float |
/// | `"quoted"`, `'quoted'` | the string inside the quotes |
/// | anything else, including the empty string | that string |
///
/// YAML 1.1 spellings (`yes`, `on`, `010`) stay strings, so `--set flag=yes` does not turn
/// into `true`. Versions such as `1.10` are floats (`1.1`): use `--set-string` for them.
pub fn parse_scalar(raw: &str) -> Value {
    match raw {
        "null" | "Null" | "NULL" | "~" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if is_yaml_int(raw) {
        if let Ok(int) = raw.parse::<i64>() {
            return Value::from(int);
        }
        if let Ok(int) = raw.parse::<u64>() {
            return Value::from(int);
        }
    }
    if is_yaml_float(raw)
        && let Some(number) = raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
    {
        return Value::Number(number);
    }
    let quoted = raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"'))
            || (raw.starts_with('\'') && raw.ends_with('\'')));
    if quoted && let Ok(Value::String(inner)) = serde_saphyr::from_str::<Value>(raw) {
        return Value::String(inner);
    }
    Value::String(raw.to_owned())
}

fn is_yaml_int(raw: &str) -> bool {
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

fn is_yaml_float(raw: &str) -> bool {
    // YAML 1.2 core schema: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let rest = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        None => !int.is_empty() && all_digits(int),
        Some(frac) => all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty()),
    };
    let exponent_ok = match exponent {
        None => frac.is_some(),
        Some(exp) => {
            let exp = exp.strip_prefix(['-', '+']).unwrap_or(exp);
            !exp.is_empty() && all_digits(exp)
        }
    };
    mantissa_ok && exponent_ok
}

/// Split `key.path=value` into its path segments and the raw value.
///
/// Dots separate segments; `\.` is a literal dot (for keys such as
/// `annotations.example\.com/team`). List indexes (`a[0]`) are not supported.
fn split_assignment<'a>(
    flag: &'static str,
    arg: &'a str,
) -> Result<(Vec<String>, &'a str), RenderError> {
    let invalid = |message: &str, hint: &str| RenderError::SetArg {
        flag,
        arg: arg.to_owned(),
        message: message.to_owned(),
        hint: hint.to_owned(),
    };
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(invalid(
            "expected `key.path=value`",
            &format!("write it as `{flag} image.tag=1.2.3`"),
        ));
    };
    let mut path = Vec::new();
    let mut segment = String::new();
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                segment.push('.');
                chars.next();
            }
            '.' => path.push(std::mem::take(&mut segment)),
            '[' | ']' => {
                return Err(invalid(
                    "list indexes are not supported in key paths",
                    "set the whole list in a values file (`--values FILE`)",
                ));
            }
            c => segment.push(c),
        }
    }
    path.push(segment);
    if path.iter().any(|segment| segment.trim().is_empty()) {
        return Err(invalid(
            "the key path has an empty segment",
            &format!("write it as `{flag} image.tag=1.2.3`; escape a literal dot as `\\.`"),
        ));
    }
    Ok((path, raw))
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn values(yaml: &str) -> Values {
        let mut values = Values::new();
        values.merge_yaml(Path::new("values.yaml"), yaml).unwrap();
        values
    }

    #[test]
    fn maps_merge_and_everything_else_is_replaced() {
        let mut merged = values(
            "image: {repository: nginx, tag: '1.0', pullPolicy: IfNotPresent}\n\
             ports: [80, 443]\n\
             resources: {limits: {cpu: 1}}\n\
             keep: true\n",
        );
        merged
            .merge_yaml(
                Path::new("prod.yaml"),
                "image: {tag: '2.0'}\nports: [8080]\nresources: null\nextra: {a: 1}\n",
            )
            .unwrap();
        assert_eq!(
            merged.to_value(),
            json!({
                "image": {"repository": "nginx", "tag": "2.0", "pullPolicy": "IfNotPresent"},
                "ports": [8080],
                "resources": null,
                "keep": true,
                "extra": {"a": 1},
            })
        );
    }

    #[test]
    fn a_mapping_replaces_a_scalar_and_back() {
        let mut merged = values("a: 1\nb: {c: 2}\n");
        merged
            .merge_yaml(Path::new("x.yaml"), "a: {x: 1}\nb: 3\n")
            .unwrap();
        assert_eq!(merged.to_value(), json!({"a": {"x": 1}, "b": 3}));
    }

    #[test]
    fn empty_and_comment_only_files_add_nothing() {
        assert_eq!(values("").to_value(), json!({}));
        assert_eq!(values("# nothing here\n").to_value(), json!({}));
        assert_eq!(values("~\n").to_value(), json!({}));
    }

    #[test]
    fn a_values_file_must_be_a_mapping() {
        let mut values = Values::new();
        let error = values
            .merge_yaml(Path::new("values.yaml"), "- a\n- b\n")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "values.yaml: invalid values file: the top level must be a mapping of names to \
             values, found a list"
        );
        let error = values
            .merge_yaml(Path::new("bad.yaml"), "a: [1\n")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("bad.yaml: invalid values file: "),
            "{error}"
        );
    }

    #[test]
    fn set_types_values_as_yaml_scalars() {
        let cases = [
            ("true", json!(true)),
            ("False", json!(false)),
            ("null", json!(null)),
            ("~", json!(null)),
            ("3", json!(3)),
            ("-12", json!(-12)),
            ("+7", json!(7)),
            ("0", json!(0)),
            ("0.5", json!(0.5)),
            ("1e3", json!(1000.0)),
            (".5", json!(0.5)),
            ("1.10", json!(1.1)),
            ("18446744073709551615", json!(18446744073709551615u64)),
            ("010", json!("010")),
            ("yes", json!("yes")),
            ("on", json!("on")),
            ("", json!("")),
            ("1.2.3", json!("1.2.3")),
            ("e3", json!("e3")),
            ("1e", json!("1e")),
            (".", json!(".")),
            ("-", json!("-")),
            ("nginx:1.25", json!("nginx:1.25")),
            ("'3'", json!("3")),
            ("\"true\"", json!("true")),
            ("a=b", json!("a=b")),
            ("[1, 2]", json!("[1, 2]")),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_scalar(raw), expected, "--set x={raw}");
        }
    }

    #[test]
    fn set_creates_maps_along_dotted_paths() {
        let mut values = values("image: {repository: nginx}\nname: web\n");
        values.set("image.tag=1.25").unwrap();
        values.set("replicas=3").unwrap();
        values.set("a.b.c=true").unwrap();
        values.set("name.first=x").unwrap();
        values.set("url=http://x/?a=b").unwrap();
        values
            .set("annotations.example\\.com/team=payments")
            .unwrap();
        values.set_string("image.tag=1.10").unwrap();
        values.set_string("count=3").unwrap();
        assert_eq!(
            values.to_value(),
            json!({
                "image": {"repository": "nginx", "tag": "1.10"},
                "name": {"first": "x"},
                "replicas": 3,
                "a": {"b": {"c": true}},
                "url": "http://x/?a=b",
                "annotations": {"example.com/team": "payments"},
                "count": "3",
            })
        );
    }

    #[test]
    fn malformed_set_arguments_are_errors_with_a_hint() {
        let mut values = Values::new();
        let error = values.set("image.tag").unwrap_err().to_string();
        assert_eq!(
            error,
            "invalid `--set image.tag`: expected `key.path=value`\n\n\
             hint: write it as `--set image.tag=1.2.3`"
        );
        let error = values.set_string("a..b=1").unwrap_err().to_string();
        assert!(error.starts_with("invalid `--set-string a..b=1`: the key path has an empty"));
        let error = values.set("=1").unwrap_err().to_string();
        assert!(error.contains("empty segment"), "{error}");
        let error = values.set("ports[0]=80").unwrap_err().to_string();
        assert!(error.contains("list indexes are not supported"), "{error}");
    }
}
