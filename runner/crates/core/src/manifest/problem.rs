//! Problems found in manifests: what is wrong, how bad it is, where, and how to fix it.
//!
//! The loader ([`crate::manifest`]) and the validator ([`crate::validate`]) both report
//! [`Problem`]s; `lint` prints them and the other commands refuse to go on while there is an
//! error.

use serde::Serialize;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The manifests cannot be applied as they are.
    Error,
    /// Probably a mistake, or something rollout-runner cannot check; the manifests still work.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// The family of a problem: a stable identifier for scripts and for the rule list in
/// `docs/lint.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The input could not be read at all (missing file, not UTF-8).
    Unreadable,
    /// The text is not well-formed YAML or JSON (including duplicate keys and tab indentation).
    Syntax,
    /// A document that is not an object, or lacks `apiVersion`, `kind` or `metadata.name`.
    Document,
    /// An `argoproj.io` kind or version that does not exist.
    UnknownKind,
    /// A field whose value has the wrong type, or a required field that is missing.
    InvalidType,
    /// A field the schema does not know; the API server would drop it.
    UnknownField,
    /// The same object defined twice.
    Duplicate,
    /// One of Argo Rollouts' validation rules for the object's spec.
    Spec,
    /// A reference to another object (template, Service, Ingress, route) that does not hold.
    Reference,
    /// A success or failure condition that does not compile.
    Condition,
    /// A feature rollout-runner does not drive.
    Unsupported,
    /// What a metric's query returned cannot be what its conditions expect (`--check-queries`).
    Query,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreadable => "unreadable",
            Self::Syntax => "syntax",
            Self::Document => "document",
            Self::UnknownKind => "unknown-kind",
            Self::InvalidType => "invalid-type",
            Self::UnknownField => "unknown-field",
            Self::Duplicate => "duplicate",
            Self::Spec => "spec",
            Self::Reference => "reference",
            Self::Condition => "condition",
            Self::Unsupported => "unsupported",
            Self::Query => "query",
        }
    }

    /// Problems of this family mean an input could not be read (exit code 2 for `lint`).
    pub fn is_unreadable(self) -> bool {
        matches!(self, Self::Unreadable | Self::Syntax)
    }
}

/// One problem, located in a source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub rule: Rule,
    /// The file as the user named it; rendered templates carry a ` (rendered)` suffix, and
    /// their lines are those of the rendered text.
    pub file: String,
    /// 1-based; 0 when the problem has no position (an unreadable file).
    pub line: u32,
    /// 1-based; 0 when the problem has no position.
    pub column: u32,
    /// The object the problem is in, as `Kind/name` ("" when not known).
    pub object: String,
    /// The field path inside the object ("" for the whole document or file).
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sort problems by file (in input order), then position, then message.
pub fn sort_problems(problems: &mut [Problem], file_order: &[String]) {
    let rank = |file: &str| {
        file_order
            .iter()
            .position(|f| f == file)
            .unwrap_or(usize::MAX)
    };
    problems.sort_by(|a, b| {
        (rank(&a.file), a.line, a.column, a.severity, &a.message).cmp(&(
            rank(&b.file),
            b.line,
            b.column,
            b.severity,
            &b.message,
        ))
    });
}
