//! The helper filters and functions Helm users expect, written for minijinja.
//!
//! | name | kind | what it does |
//! | --- | --- | --- |
//! | `toyaml`, `to_yaml` | filter | the value as block YAML, without a trailing newline |
//! | `indent(n)` | filter | indent every line by `n` spaces, the first included (Helm's `indent`; `first=false` gives Jinja's) |
//! | `nindent(n)` | filter | a newline, then `indent(n)` |
//! | `quote`, `squote` | filter | the value as a double-quoted (JSON-escaped) or single-quoted YAML string |
//! | `b64enc`, `b64dec` | filter | standard base64 with padding |
//! | `sha256sum` | filter | lowercase hex SHA-256 of the text |
//! | `trunc(n)` | filter | the first `n` characters; a negative `n` keeps the last `-n` |
//! | `trimSuffix(s)`, `trimPrefix(s)` (also `trim_suffix`, `trim_prefix`) | filter | drop `s` once at the end / start |
//! | `required(message)` | filter | fail with `message` when the value is undefined, `none` or `""` |
//! | `required(message, value)`, `fail(message)` | function | the same as a function; always fail |
//!
//! minijinja's builtins (`default`, `tojson`, `lower`, `upper`, `replace`, `join`, ...) stay
//! available.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use minijinja::value::{Kwargs, StringInput, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use sha2::{Digest, Sha256};

/// Marks an error raised on purpose by `required` or `fail`: its message is the user's own.
#[derive(Debug)]
pub(super) struct UserFailure;

impl fmt::Display for UserFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed on purpose")
    }
}

impl std::error::Error for UserFailure {}

/// The names of the filters and functions this module adds, for hints.
pub(super) const NAMES: &[&str] = &[
    "toyaml",
    "indent",
    "nindent",
    "quote",
    "squote",
    "b64enc",
    "b64dec",
    "sha256sum",
    "trunc",
    "trimSuffix",
    "trimPrefix",
    "required",
    "fail",
];

/// Register every helper on `env`.
pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("toyaml", toyaml);
    env.add_filter("to_yaml", toyaml);
    env.add_filter("indent", indent);
    env.add_filter("nindent", nindent);
    env.add_filter("quote", quote);
    env.add_filter("squote", squote);
    env.add_filter("b64enc", b64enc);
    env.add_filter("b64dec", b64dec);
    env.add_filter("sha256sum", sha256sum);
    env.add_filter("trunc", trunc);
    env.add_filter("trimSuffix", trim_suffix);
    env.add_filter("trim_suffix", trim_suffix);
    env.add_filter("trimPrefix", trim_prefix);
    env.add_filter("trim_prefix", trim_prefix);
    env.add_filter("required", required_filter);
    env.add_function("required", required_function);
    env.add_function("fail", fail);
}

/// Reject an undefined value the way the engine does (strict mode names the expression).
fn defined(state: &State<'_, '_>, value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        StringInput::new(state, value)?;
    }
    Ok(())
}

fn toyaml(state: &State<'_, '_>, value: Value) -> Result<String, Error> {
    defined(state, &value)?;
    let options = serde_saphyr::ser_options! {
        // Never fold long single-line strings; multi-line strings still use `|`.
        folded_wrap_chars: usize::MAX,
    };
    let yaml = serde_saphyr::to_string_with_options(&value, options).map_err(|error| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot write the value as YAML: {error}"),
        )
    })?;
    // Drop only the document's final line break: the ones before it may belong to a `|+`
    // block scalar that keeps trailing newlines.
    Ok(yaml.strip_suffix('\n').unwrap_or(&yaml).to_owned())
}

/// The widest indentation `indent` and `nindent` accept.
const MAX_INDENT: usize = 1024;

/// The largest text `indent` and `nindent` produce: a rendered file is capped at 8 MiB
/// anyway, and a huge width would otherwise allocate until the process aborts.
const MAX_INDENTED_BYTES: usize = 16 * 1024 * 1024;

fn indent_lines(text: &str, width: usize, first: bool, blank: bool) -> Result<String, Error> {
    if width > MAX_INDENT {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("indentation width {width} is larger than {MAX_INDENT}"),
        ));
    }
    let lines = text.bytes().filter(|b| *b == b'\n').count() + 1;
    if lines
        .checked_mul(width)
        .and_then(|pad| pad.checked_add(text.len()))
        .is_none_or(|total| total > MAX_INDENTED_BYTES)
    {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "indenting {lines} lines by {width} would produce more than {} MiB",
                MAX_INDENTED_BYTES / (1024 * 1024)
            ),
        ));
    }
    let pad = " ".repeat(width);
    let mut out = String::with_capacity(text.len() + width * 4);
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let wanted = (index > 0 || first) && (blank || !line.is_empty());
        if wanted {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(out)
}

fn indent(
    value: String,
    width: Option<usize>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let width = match width {
        Some(width) => width,
        None => kwargs.get::<Option<usize>>("width")?.unwrap_or(4),
    };
    let first = match first {
        Some(first) => first,
        None => kwargs.get::<Option<bool>>("first")?.unwrap_or(true),
    };
    let blank = match blank {
        Some(blank) => blank,
        None => kwargs.get::<Option<bool>>("blank")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    indent_lines(&value, width, first, blank)
}

fn nindent(value: String, width: usize) -> Result<String, Error> {
    Ok(format!("\n{}", indent_lines(&value, width, true, false)?))
}

fn scalar_text(state: &State<'_, '_>, value: &Value) -> Result<String, Error> {
    defined(state, value)?;
    Ok(match value.kind() {
        ValueKind::None => String::new(),
        ValueKind::Bool => value.is_true().to_string(),
        _ => value.to_string(),
    })
}

fn quote(state: &State<'_, '_>, value: Value) -> Result<String, Error> {
    let text = scalar_text(state, &value)?;
    Ok(serde_json::to_string(&text).expect("a string always serializes"))
}

fn squote(state: &State<'_, '_>, value: Value) -> Result<String, Error> {
    let text = scalar_text(state, &value)?;
    if text.contains(['\n', '\r']) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "squote cannot hold a line break; use quote",
        ));
    }
    Ok(format!("'{}'", text.replace('\'', "''")))
}

fn b64enc(value: String) -> String {
    BASE64.encode(value.as_bytes())
}

fn b64dec(value: String) -> Result<String, Error> {
    let bytes = BASE64.decode(value.trim().as_bytes()).map_err(|error| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("b64dec: not valid base64: {error}"),
        )
    })?;
    String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "b64dec: the decoded bytes are not UTF-8 text",
        )
    })
}

fn sha256sum(value: String) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn trunc(value: String, length: i64) -> String {
    let count = value.chars().count();
    let keep = usize::try_from(length.unsigned_abs()).unwrap_or(usize::MAX);
    if keep >= count {
        return value;
    }
    if length >= 0 {
        value.chars().take(keep).collect()
    } else {
        value.chars().skip(count - keep).collect()
    }
}

fn trim_suffix(value: String, suffix: String) -> String {
    match value.strip_suffix(suffix.as_str()) {
        Some(trimmed) => trimmed.to_owned(),
        None => value,
    }
}

fn trim_prefix(value: String, prefix: String) -> String {
    match value.strip_prefix(prefix.as_str()) {
        Some(trimmed) => trimmed.to_owned(),
        None => value,
    }
}

fn user_failure(message: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.to_owned()).with_source(UserFailure)
}

fn is_missing(value: &Value) -> bool {
    value.is_undefined() || value.is_none() || value.as_str() == Some("")
}

fn required_filter(value: Value, message: String) -> Result<Value, Error> {
    if is_missing(&value) {
        return Err(user_failure(&message));
    }
    Ok(value)
}

fn required_function(message: String, value: Value) -> Result<Value, Error> {
    required_filter(value, message)
}

fn fail(message: String) -> Result<Value, Error> {
    Err(user_failure(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_keeps_blank_lines_empty() {
        assert_eq!(
            indent_lines("a\n\nb", 2, true, false).unwrap(),
            "  a\n\n  b"
        );
        assert_eq!(indent_lines("a\n\nb", 2, false, false).unwrap(), "a\n\n  b");
        assert_eq!(
            indent_lines("a\n\nb", 2, true, true).unwrap(),
            "  a\n  \n  b"
        );
    }

    #[test]
    fn trunc_counts_characters_from_either_end() {
        assert_eq!(trunc("hello world".into(), 5), "hello");
        assert_eq!(trunc("hello world".into(), -5), "world");
        assert_eq!(trunc("héllo".into(), 2), "hé");
        assert_eq!(trunc("abc".into(), 10), "abc");
        assert_eq!(trunc("abc".into(), -10), "abc");
        assert_eq!(trunc("abc".into(), 0), "");
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256sum("abc".into()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
