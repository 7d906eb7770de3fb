//! Render: turn minijinja templates into manifests, with values and the CI context.
//!
//! Owns which files are templates, the template context (`values`, `ci`, `release`, Argo's own
//! placeholders), the helper filters, values merging and `--set` parsing, and turning template
//! errors into messages that name the file, the line and the missing value.
//!
//! Refuses to do I/O: it never reads a file, the environment or git. The caller hands over the
//! sources as text ([`SourceFile`]), the values ([`Values`]) and the CI context (any
//! serializable value, in practice `crate::ci::CiContext`), and gets the rendered files back as
//! data ([`RenderedFile`]) to print, write, lint, plan or apply.
//!
//! Which files are templates: a file whose name ends in `.j2` is a minijinja template and its
//! output name drops the `.j2` (`rollout.yaml.j2` → `rollout.yaml`). Every other file is a
//! plain manifest and passes through byte for byte, so an Argo AnalysisTemplate with its own
//! `{{ args.x }}` placeholders is never touched. Inside templates, Argo's placeholders survive
//! too: `{{ args.x }}` renders back as `{{ args.x }}`.
//!
//! Template syntax: minijinja (Jinja2) with `trim_blocks` and `lstrip_blocks` on, so a line
//! holding only a `{% ... %}` tag leaves nothing behind, and the final newline kept. Nothing
//! is escaped; booleans print as `true`/`false` and `none` as `null`, as YAML spells them. A value
//! that is not defined is an error (strict undefined): test optional values with
//! `is defined` or give them a `default(...)`.

mod argo;
pub mod ci;
mod filters;
pub mod input;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use minijinja::value::{Serde, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use regex::Regex;
use serde::Serialize;

pub use values::Values;

/// One input file, as the caller read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user gave it or as found under a directory they gave; used in messages
    /// and in `# Source:` comments.
    pub path: PathBuf,
    /// The path relative to the directory it was found in (the file name for a file given
    /// directly); the output name is derived from it.
    pub relative: PathBuf,
    /// The file's text.
    pub text: String,
}

impl SourceFile {
    /// A source whose relative path is its file name.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let path = path.into();
        let relative = path.file_name().map_or_else(|| path.clone(), PathBuf::from);
        Self {
            path,
            relative,
            text: text.into(),
        }
    }
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedFile {
    /// The template or manifest path, as in [`SourceFile::path`].
    pub source: PathBuf,
    /// The output path relative to the output directory: [`SourceFile::relative`] without a
    /// trailing `.j2`.
    pub name: PathBuf,
    /// The rendered text (the source text itself for plain manifests).
    pub text: String,
    /// True when the file was a `.j2` template.
    pub templated: bool,
}

impl RenderedFile {
    /// True when the output holds nothing but whitespace, comments and document markers
    /// (for example a template wrapped in `{% if ... %}` whose condition was false).
    pub fn is_blank(&self) -> bool {
        self.text.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
        })
    }
}

/// What `release` holds in templates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Release {
    /// `release.name`: the `--release-name` given, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Everything a template can refer to.
#[derive(Debug, Clone)]
pub struct Context {
    values: Values,
    ci: Value,
    release: Release,
}

impl Context {
    /// A context with these values, an empty `ci` and an empty `release`.
    pub fn new(values: Values) -> Self {
        Self {
            values,
            ci: Value::from(BTreeMap::<String, Value>::new()),
            release: Release::default(),
        }
    }

    /// Set what templates see as `ci` (in practice a `crate::ci::CiContext`). Fields that
    /// serialize as absent stay undefined in templates.
    #[must_use]
    pub fn with_ci<T: Serialize>(mut self, ci: &T) -> Self {
        self.ci = Value::from(Serde(ci));
        self
    }

    /// Set what templates see as `release`.
    #[must_use]
    pub fn with_release(mut self, release: Release) -> Self {
        self.release = release;
        self
    }

    /// The values templates see as `values`.
    pub fn values(&self) -> &Values {
        &self.values
    }

    fn to_value(&self) -> Value {
        let mut map: BTreeMap<&str, Value> = BTreeMap::new();
        for (name, value) in argo::globals() {
            map.insert(name, value);
        }
        map.insert("values", Value::from(Serde(self.values.as_map())));
        map.insert("ci", self.ci.clone());
        map.insert("release", Value::from(Serde(&self.release)));
        Value::from(map)
    }
}

/// Why rendering failed. Every variant names the file, and the line when there is one.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template used a value that is not defined.
    #[error("{file}:{line}: undefined value `{expr}`\n\nhint: {hint}")]
    Undefined {
        /// The template path.
        file: String,
        /// The line (1-based).
        line: usize,
        /// The expression that was undefined, such as `values.image.tag`.
        expr: String,
        /// How to define it.
        hint: String,
    },
    /// A template does not parse.
    #[error("{file}:{line}: syntax error: {message}")]
    Syntax {
        /// The template path.
        file: String,
        /// The line (1-based).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A template called `required` or `fail`; the message is the template author's.
    #[error("{file}:{line}: {message}")]
    Failed {
        /// The template path.
        file: String,
        /// The line (1-based).
        line: usize,
        /// The template author's message.
        message: String,
    },
    /// Any other error while rendering a template (unknown filter, wrong argument, ...).
    #[error("{file}:{line}: {message}{}", hint_suffix(.hint.as_deref()))]
    Template {
        /// The template path.
        file: String,
        /// The line (1-based).
        line: usize,
        /// What went wrong.
        message: String,
        /// How to fix it, when we know.
        hint: Option<String>,
    },
    /// A template rendered to text that is not YAML.
    #[error(
        "{file}: the rendered output is not valid YAML: {message}\n{excerpt}\n\
         hint: check the indentation around the lines above; `toyaml | nindent(N)` \
         places a block value at the right depth"
    )]
    InvalidOutput {
        /// The template path.
        file: String,
        /// The YAML parser's message.
        message: String,
        /// The rendered lines around the problem, numbered.
        excerpt: String,
    },
    /// A values file is not YAML or not a mapping.
    #[error("{file}: invalid values file: {message}")]
    ValuesFile {
        /// The values file path.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A `--set` or `--set-string` argument is malformed.
    #[error("invalid `{flag} {arg}`: {message}\n\nhint: {hint}")]
    SetArg {
        /// `--set` or `--set-string`.
        flag: &'static str,
        /// The argument as given.
        arg: String,
        /// What is wrong.
        message: String,
        /// How to write it.
        hint: String,
    },
    /// Two inputs would be written to the same output path.
    #[error(
        "`{first}` and `{second}` both render to `{name}`\n\n\
         hint: render them in separate runs, or rename one of them"
    )]
    DuplicateOutput {
        /// The output name.
        name: String,
        /// The first source.
        first: String,
        /// The second source.
        second: String,
    },
}

fn hint_suffix(hint: Option<&str>) -> String {
    hint.map(|hint| format!("\n\nhint: {hint}"))
        .unwrap_or_default()
}

/// True when `path` names a minijinja template (its file name ends in `.j2`).
pub fn is_template(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.ends_with(".j2") && name.len() > ".j2".len())
}

/// The output name for a source's relative path: `.j2` dropped from templates.
pub fn output_name(relative: &Path) -> PathBuf {
    match relative.to_str().and_then(|name| name.strip_suffix(".j2")) {
        Some(stripped) if is_template(relative) => PathBuf::from(stripped),
        _ => relative.to_path_buf(),
    }
}

/// Choose, from the files found under one directory (paths relative to it), the ones to
/// render, sorted by path.
///
/// Kept: `.yaml`, `.yml`, `.json` and `.j2` files. Skipped: hidden files and anything under
/// a hidden directory, and the values files that sit in the same directory as a `.j2`
/// template: `values.yaml` and `values-NAME.yaml` (or `.yml`), such as the
/// `values-staging.yaml` and `values-production.yaml` of two environments (they hold values,
/// not manifests; pass one with `--values`).
pub fn select_files(found: &[PathBuf]) -> Vec<PathBuf> {
    let template_dirs: Vec<&Path> = found
        .iter()
        .filter(|path| is_template(path))
        .map(|path| path.parent().unwrap_or(Path::new("")))
        .collect();
    let mut selected: Vec<PathBuf> = found
        .iter()
        .filter(|path| {
            let hidden = path.components().any(|component| {
                component
                    .as_os_str()
                    .to_str()
                    .is_some_and(|name| name.starts_with('.') && name != "." && name != "..")
            });
            if hidden {
                return false;
            }
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                return false;
            };
            let wanted = [".yaml", ".yml", ".json", ".j2"]
                .iter()
                .any(|extension| name.ends_with(extension));
            let stem = name
                .strip_suffix(".yaml")
                .or_else(|| name.strip_suffix(".yml"))
                .unwrap_or_default();
            let values_file = (stem == "values" || stem.starts_with("values-"))
                && template_dirs.contains(&path.parent().unwrap_or(Path::new("")));
            wanted && !values_file
        })
        .cloned()
        .collect();
    selected.sort();
    selected.dedup();
    selected
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Never escape: a `.yaml` name would otherwise JSON-escape every value (`"web"`).
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    // YAML spellings: `true`/`false` and `null`, not Python's `True`/`False` and `none`.
    env.set_formatter(|out, state, value| match value.kind() {
        ValueKind::Bool => out
            .write_str(if value.is_true() { "true" } else { "false" })
            .map_err(minijinja::Error::from),
        ValueKind::None => out.write_str("null").map_err(minijinja::Error::from),
        _ => minijinja::escape_formatter(out, state, value),
    });
    filters::register(&mut env);
    env
}

/// Render every source: templates through minijinja, plain manifests unchanged.
///
/// Stops at the first error. The output of every template must parse as YAML (one or more
/// documents); plain manifests are not checked here (that is `lint`'s job).
pub fn render(files: &[SourceFile], context: &Context) -> Result<Vec<RenderedFile>, RenderError> {
    let mut env = environment();
    let ctx = context.to_value();
    let mut outputs: Vec<RenderedFile> = Vec::with_capacity(files.len());
    let mut names: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for file in files {
        let name = output_name(&file.relative);
        if let Some(first) = names.insert(name.clone(), file.path.clone()) {
            return Err(RenderError::DuplicateOutput {
                name: name.display().to_string(),
                first: first.display().to_string(),
                second: file.path.display().to_string(),
            });
        }
        let templated = is_template(&file.relative);
        let text = if templated {
            render_one(&mut env, file, &ctx)?
        } else {
            file.text.clone()
        };
        outputs.push(RenderedFile {
            source: file.path.clone(),
            name,
            text,
            templated,
        });
    }
    Ok(outputs)
}

fn render_one(
    env: &mut Environment<'static>,
    file: &SourceFile,
    ctx: &Value,
) -> Result<String, RenderError> {
    let display = file.path.display().to_string();
    env.add_template_owned(display.clone(), file.text.clone())
        .map_err(|error| template_error(&error, &display, &file.text))?;
    let template = env
        .get_template(&display)
        .map_err(|error| template_error(&error, &display, &file.text))?;
    let text = template
        .render(ctx)
        .map_err(|error| template_error(&error, &display, &file.text))?;
    env.remove_template(&display);
    check_yaml(&display, &text)?;
    Ok(text)
}

/// Check that a rendered template is YAML (any number of documents).
fn check_yaml(file: &str, text: &str) -> Result<(), RenderError> {
    let Err(error) = serde_saphyr::from_multiple::<serde_json::Value>(text) else {
        return Ok(());
    };
    let message = error.to_string();
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let line = LINE_IN_MESSAGE
        .captures(message)
        .and_then(|captures| captures[1].parse::<usize>().ok());
    Err(RenderError::InvalidOutput {
        file: file.to_owned(),
        message: message.lines().next().unwrap_or_default().to_owned(),
        excerpt: excerpt(text, line),
    })
}

static LINE_IN_MESSAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"line (\d+)").expect("valid regex"));

/// Up to three lines either side of `line` (1-based), numbered; the first lines when unknown.
fn excerpt(text: &str, line: Option<usize>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let center = line.unwrap_or(1).clamp(1, lines.len().max(1));
    let start = center.saturating_sub(4);
    let end = (center + 3).min(lines.len());
    let width = end.to_string().len();
    let mut out = String::new();
    for (index, content) in lines.iter().enumerate().take(end).skip(start) {
        let number = index + 1;
        let marker = if Some(number) == line { '>' } else { ' ' };
        out.push_str(&format!("{marker}{number:>width$} | {content}\n"));
    }
    out
}

static UNDEFINED_EXPR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"`([^`]+)` is undefined").expect("valid regex"));

/// Turn a minijinja error into a [`RenderError`] naming the file and line. `source` is the
/// template's text, to quote the failing expression.
fn template_error(error: &minijinja::Error, file: &str, source: &str) -> RenderError {
    let file = error.name().unwrap_or(file).to_owned();
    let line = error.line().unwrap_or(1);
    let detail = error.detail().unwrap_or_default();
    if is_user_failure(error) {
        return RenderError::Failed {
            file,
            line,
            message: detail.to_owned(),
        };
    }
    match error.kind() {
        ErrorKind::SyntaxError => {
            return RenderError::Syntax {
                file,
                line,
                message: detail.to_owned(),
            };
        }
        ErrorKind::UnknownFilter | ErrorKind::UnknownFunction | ErrorKind::UnknownTest => {
            return RenderError::Template {
                file,
                line,
                message: format!("{}: {detail}", error.kind()),
                hint: Some(format!(
                    "rollout-runner adds {} to minijinja's builtins",
                    filters::NAMES
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
        }
        _ => {}
    }
    if let Some(captures) = UNDEFINED_EXPR.captures(detail) {
        let mut expr = captures[1].to_owned();
        // `values.image.tag` with no `values.image` reports `values.image`; name the whole
        // lookup the template made, which is what the user has to define.
        let failing = error.range().and_then(|range| lookup_at(source, range));
        if let Some(failing) = failing
            && expr.starts_with("values.")
            && failing.len() > expr.len()
            && failing.starts_with(&format!("{expr}."))
        {
            expr = failing.to_owned();
        }
        let hint = undefined_hint(&expr);
        return RenderError::Undefined {
            file,
            line,
            expr,
            hint,
        };
    }
    let message = if detail.is_empty() {
        error.kind().to_string()
    } else {
        format!("{}: {detail}", error.kind())
    };
    RenderError::Template {
        file,
        line,
        message,
        hint: None,
    }
}

/// The dotted lookup (`values.image.tag`) whose attribute part the engine's span covers
/// (`.image.tag`): the span, extended left over the name it starts from.
fn lookup_at(source: &str, range: std::ops::Range<usize>) -> Option<&str> {
    let end = range.end.min(source.len());
    let before = source.get(..range.start)?;
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || matches!(c, '_' | '.'))
        .last()
        .map_or(range.start, |(index, _)| index);
    let lookup = source.get(start..end)?.trim();
    lookup
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.'))
        .then_some(lookup)
}

fn is_user_failure(error: &minijinja::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(current) = source {
        if current.is::<filters::UserFailure>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// How to define an undefined expression.
fn undefined_hint(expr: &str) -> String {
    if let Some(path) = expr.strip_prefix("values.") {
        if path
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return format!(
                "pass it with `--set {path}=...` or in a values file (`--values FILE`)"
            );
        }
        return "add it to a values file (`--values FILE`)".to_owned();
    }
    if expr == "release.name" || expr.starts_with("release.") {
        return "pass `--release-name NAME`".to_owned();
    }
    if let Some(field) = expr.strip_prefix("ci.") {
        return format!(
            "`ci.{field}` comes from GitHub Actions, GitLab CI or the git repository, and is \
             not known here (outside CI, outside a git repository, on a detached HEAD, or no \
             tag or pull request); guard it with `{{% if ci.{field} is defined %}}` or give \
             a fallback with `ci.{field} | default(\"...\")`"
        );
    }
    "templates see `values`, `ci`, `release` and Argo's `args`, `templates` and `experiment`; \
     check the spelling, or test it with `is defined`"
        .to_owned()
}

#[cfg(test)]
mod tests;
