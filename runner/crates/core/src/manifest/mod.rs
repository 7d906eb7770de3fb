//! Manifests in, typed objects out: the loader every command (lint, plan, simulate, apply) uses.
//!
//! [`load`] takes `(name, text)` [`Source`]s (files the CLI read, or templates `render`
//! produced), splits every YAML or JSON stream into documents, classifies each document by
//! `apiVersion`/`kind`, decodes the Argo Rollouts kinds into [`rollout_runner_api::crd`] types, and keeps the
//! rest as Kubernetes objects in raw JSON. Every document remembers its file, its index and
//! where each of its fields is written, so any problem can be reported as `file:line:column`
//! with a field path.
//!
//! It owns parsing, classification, typed decoding and unknown-field detection. It refuses to do
//! I/O (the caller reads files) and to judge whether a spec makes sense ([`crate::validate`]
//! does); it never stops at the first problem.

mod data_file;
mod path;
mod problem;
mod schema;
mod yaml;

use serde::de::DeserializeOwned;
use serde_json::Value;

use rollout_runner_api::crd::{
    AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment, Rollout,
};

pub use data_file::DataFile;
pub use path::{FieldPath, Position, Segment, Span, SpanMap};
pub use problem::{Problem, Rule, Severity};

pub use problem::sort_problems;

/// One input: a file's name as the user gave it, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The name shown in problems (a path relative to where the user ran the command).
    pub name: String,
    pub text: String,
    /// The text was rendered from a template (`.j2`); problems say `(rendered)` after the name,
    /// and their lines are those of the rendered text.
    pub rendered: bool,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            rendered: false,
        }
    }

    /// A source rendered from a template.
    pub fn rendered(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            rendered: true,
            ..Self::new(name, text)
        }
    }

    /// The name problems use: `name`, or `name (rendered)`.
    pub fn display_name(&self) -> String {
        if self.rendered {
            format!("{} (rendered)", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// A decoded document.
#[derive(Debug, Clone)]
pub enum Object {
    Rollout(Box<Rollout>),
    AnalysisTemplate(Box<AnalysisTemplate>),
    ClusterAnalysisTemplate(Box<ClusterAnalysisTemplate>),
    AnalysisRun(Box<AnalysisRun>),
    Experiment(Box<Experiment>),
    /// Any other Kubernetes object (Service, Ingress, VirtualService, ...), kept as raw JSON.
    Kubernetes,
    /// An Argo Rollouts object that could not be decoded; its problems were reported.
    Invalid,
}

/// One document of one source.
#[derive(Debug, Clone)]
pub struct Document {
    /// The source's display name (see [`Source::display_name`]).
    pub file: String,
    /// Position of the document among the non-empty documents of its source, from 0.
    pub index: usize,
    pub api_version: String,
    pub kind: String,
    /// `metadata.name` ("" when missing).
    pub name: String,
    pub namespace: Option<String>,
    /// The document as JSON, exactly as written (apply sends this).
    pub raw: Value,
    pub spans: SpanMap,
    pub object: Object,
}

impl Document {
    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }

    /// `Kind/name` (or `Kind` for an unnamed object), as problems name objects.
    pub fn id(&self) -> String {
        if self.name.is_empty() {
            self.kind.clone()
        } else {
            format!("{}/{}", self.kind, self.name)
        }
    }

    /// Whether this document is of `kind` in one of `kind`'s groups.
    pub fn is(&self, kind: &KindRef) -> bool {
        self.kind == kind.kind && kind.groups.contains(&self.group())
    }

    /// Where the field at `path` is written (or its nearest written ancestor).
    pub fn locate(&self, path: &FieldPath) -> Position {
        self.spans.locate(path)
    }

    /// A problem at `path` in this document.
    pub fn problem(
        &self,
        severity: Severity,
        rule: Rule,
        path: &FieldPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Problem {
        let position = self.locate(path);
        Problem {
            severity,
            rule,
            file: self.file.clone(),
            line: position.line,
            column: position.column,
            object: if self.kind.is_empty() {
                String::new()
            } else {
                printable(&self.id())
            },
            path: path.to_string(),
            message: message.into(),
            hint,
        }
    }

    /// A field of the raw document, by dotted path.
    pub fn field(&self, path: &str) -> Option<&Value> {
        let mut current = &self.raw;
        for segment in FieldPath::parse(path).segments() {
            current = match segment {
                Segment::Key(key) => current.get(key)?,
                Segment::Index(i) => current.get(i)?,
            };
        }
        Some(current)
    }
}

/// A Kubernetes kind that may live in one of several API groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindRef {
    pub groups: &'static [&'static str],
    pub kind: &'static str,
}

/// Kinds the validator cross-checks against rollouts.
pub mod kinds {
    use super::KindRef;

    pub const SERVICE: KindRef = KindRef {
        groups: &[""],
        kind: "Service",
    };
    pub const INGRESS: KindRef = KindRef {
        groups: &["networking.k8s.io", "extensions"],
        kind: "Ingress",
    };
    pub const VIRTUAL_SERVICE: KindRef = KindRef {
        groups: &["networking.istio.io"],
        kind: "VirtualService",
    };
    pub const DESTINATION_RULE: KindRef = KindRef {
        groups: &["networking.istio.io"],
        kind: "DestinationRule",
    };
    pub const HTTP_ROUTE: KindRef = KindRef {
        groups: &["gateway.networking.k8s.io"],
        kind: "HTTPRoute",
    };
    pub const GRPC_ROUTE: KindRef = KindRef {
        groups: &["gateway.networking.k8s.io"],
        kind: "GRPCRoute",
    };
    pub const TRAFFIC_SPLIT: KindRef = KindRef {
        groups: &["split.smi-spec.io"],
        kind: "TrafficSplit",
    };
    pub const TRAEFIK_SERVICE: KindRef = KindRef {
        groups: &["traefik.io", "traefik.containo.us"],
        kind: "TraefikService",
    };
    pub const DEPLOYMENT: KindRef = KindRef {
        groups: &["apps"],
        kind: "Deployment",
    };
    pub const REPLICA_SET: KindRef = KindRef {
        groups: &["apps"],
        kind: "ReplicaSet",
    };
    pub const POD_TEMPLATE: KindRef = KindRef {
        groups: &[""],
        kind: "PodTemplate",
    };
    pub const NAMESPACE: KindRef = KindRef {
        groups: &[""],
        kind: "Namespace",
    };
    pub const CONFIG_MAP: KindRef = KindRef {
        groups: &[""],
        kind: "ConfigMap",
    };
    pub const SECRET: KindRef = KindRef {
        groups: &[""],
        kind: "Secret",
    };
    pub const CUSTOM_RESOURCE_DEFINITION: KindRef = KindRef {
        groups: &["apiextensions.k8s.io"],
        kind: "CustomResourceDefinition",
    };
}

/// Every document of every source, in input order.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    files: Vec<String>,
    documents: Vec<Document>,
}

/// Whether two namespaces may be the same: a missing namespace is the one the objects are
/// applied to, so it matches any.
pub fn namespaces_match(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

impl ManifestSet {
    /// The display names of the sources, in input order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    pub fn rollouts(&self) -> impl Iterator<Item = (&Document, &Rollout)> {
        self.documents.iter().filter_map(|d| match &d.object {
            Object::Rollout(r) => Some((d, r.as_ref())),
            _ => None,
        })
    }

    pub fn analysis_templates(&self) -> impl Iterator<Item = (&Document, &AnalysisTemplate)> {
        self.documents.iter().filter_map(|d| match &d.object {
            Object::AnalysisTemplate(t) => Some((d, t.as_ref())),
            _ => None,
        })
    }

    pub fn cluster_analysis_templates(
        &self,
    ) -> impl Iterator<Item = (&Document, &ClusterAnalysisTemplate)> {
        self.documents.iter().filter_map(|d| match &d.object {
            Object::ClusterAnalysisTemplate(t) => Some((d, t.as_ref())),
            _ => None,
        })
    }

    pub fn analysis_runs(&self) -> impl Iterator<Item = (&Document, &AnalysisRun)> {
        self.documents.iter().filter_map(|d| match &d.object {
            Object::AnalysisRun(r) => Some((d, r.as_ref())),
            _ => None,
        })
    }

    pub fn experiments(&self) -> impl Iterator<Item = (&Document, &Experiment)> {
        self.documents.iter().filter_map(|d| match &d.object {
            Object::Experiment(e) => Some((d, e.as_ref())),
            _ => None,
        })
    }

    /// Documents of a kind (Services, Ingresses, ...).
    pub fn of_kind(&self, kind: &KindRef) -> impl Iterator<Item = &Document> {
        let kind = *kind;
        self.documents.iter().filter(move |d| d.is(&kind))
    }

    /// Services, in input order.
    pub fn services(&self) -> impl Iterator<Item = &Document> {
        self.of_kind(&kinds::SERVICE)
    }

    /// Ingresses (`networking.k8s.io` and the legacy `extensions` group), in input order.
    pub fn ingresses(&self) -> impl Iterator<Item = &Document> {
        self.of_kind(&kinds::INGRESS)
    }

    /// Istio VirtualServices, in input order.
    pub fn virtual_services(&self) -> impl Iterator<Item = &Document> {
        self.of_kind(&kinds::VIRTUAL_SERVICE)
    }

    /// Gateway API HTTPRoutes, in input order.
    pub fn http_routes(&self) -> impl Iterator<Item = &Document> {
        self.of_kind(&kinds::HTTP_ROUTE)
    }

    /// The Rollout with this name, in a namespace compatible with `namespace`.
    pub fn rollout(&self, namespace: Option<&str>, name: &str) -> Option<(&Document, &Rollout)> {
        self.rollouts()
            .find(|(d, _)| d.name == name && namespaces_match(d.namespace.as_deref(), namespace))
    }

    /// Whether any document of the kind is among the inputs.
    pub fn has_kind(&self, kind: &KindRef) -> bool {
        self.of_kind(kind).next().is_some()
    }

    /// The workload a Rollout's `workloadRef` names, when it is among the inputs (a Rollout
    /// without one, or with an unknown kind, has none).
    pub fn workload(
        &self,
        rollout_document: &Document,
        rollout: &Rollout,
    ) -> Option<rollout_runner_api::observed::WorkloadState> {
        let reference = rollout.spec.workload_ref.as_ref()?;
        let kind = match reference.kind.as_str() {
            "Deployment" => &kinds::DEPLOYMENT,
            "ReplicaSet" => &kinds::REPLICA_SET,
            "PodTemplate" => &kinds::POD_TEMPLATE,
            _ => return None,
        };
        let namespace = rollout_document
            .namespace
            .as_deref()
            .or(rollout.metadata.namespace.as_deref());
        let document = self.find(kind, namespace, &reference.name)?;
        Some(rollout_runner_api::observed::WorkloadState::from_object(
            &reference.kind,
            &document.raw,
        ))
    }

    /// The object of a kind with this name, in a namespace compatible with `namespace`.
    pub fn find(&self, kind: &KindRef, namespace: Option<&str>, name: &str) -> Option<&Document> {
        self.of_kind(kind)
            .find(|d| d.name == name && namespaces_match(d.namespace.as_deref(), namespace))
    }

    /// The AnalysisTemplate with this name, in a namespace compatible with `namespace`.
    pub fn analysis_template(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<(&Document, &AnalysisTemplate)> {
        self.analysis_templates()
            .find(|(d, _)| d.name == name && namespaces_match(d.namespace.as_deref(), namespace))
    }

    pub fn cluster_analysis_template(
        &self,
        name: &str,
    ) -> Option<(&Document, &ClusterAnalysisTemplate)> {
        self.cluster_analysis_templates()
            .find(|(d, _)| d.name == name)
    }
}

/// The result of [`load`]: the documents that could be read, and the problems found on the way.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub set: ManifestSet,
    pub problems: Vec<Problem>,
}

/// The Argo Rollouts kinds, and how to decode each.
const ARGO_KINDS: &[&str] = &[
    "Rollout",
    "AnalysisTemplate",
    "ClusterAnalysisTemplate",
    "AnalysisRun",
    "Experiment",
];

/// Read every source into a [`ManifestSet`], reporting every problem met: syntax errors (the
/// source is skipped), documents without `apiVersion`/`kind`/`metadata.name`, unknown
/// `argoproj.io` kinds, values of the wrong type, unknown fields (warnings) and objects defined
/// twice.
pub fn load(sources: &[Source]) -> Loaded {
    let mut loaded = Loaded::default();
    for source in sources {
        let file = source.display_name();
        loaded.set.files.push(file.clone());
        let documents = match yaml::parse_stream(&source.text) {
            Ok(documents) => documents,
            Err(error) => {
                loaded.problems.push(Problem {
                    severity: Severity::Error,
                    rule: Rule::Syntax,
                    file: file.clone(),
                    line: error.position.line,
                    column: error.position.column,
                    object: String::new(),
                    path: String::new(),
                    message: error.message,
                    hint: error.hint,
                });
                continue;
            }
        };
        for (index, parsed) in documents.into_iter().enumerate() {
            let document = classify(&file, index, parsed, &mut loaded.problems);
            loaded.set.documents.push(document);
        }
    }
    report_duplicates(&loaded.set, &mut loaded.problems);
    loaded
}

fn string_at(value: &Value, keys: &[&str]) -> Option<String> {
    let mut current = value;
    for key in keys {
        current = current.get(key)?;
    }
    current.as_str().map(str::to_string)
}

fn classify(
    file: &str,
    index: usize,
    parsed: yaml::ParsedDocument,
    problems: &mut Vec<Problem>,
) -> Document {
    let raw = parsed.value;
    let mut document = Document {
        file: file.to_string(),
        index,
        api_version: string_at(&raw, &["apiVersion"]).unwrap_or_default(),
        kind: string_at(&raw, &["kind"]).unwrap_or_default(),
        name: string_at(&raw, &["metadata", "name"]).unwrap_or_default(),
        namespace: string_at(&raw, &["metadata", "namespace"]),
        raw,
        spans: parsed.spans,
        object: Object::Kubernetes,
    };
    let root = FieldPath::root();
    if !document.raw.is_object() {
        problems.push(
            document.problem(
                Severity::Error,
                Rule::Document,
                &root,
                format!("document {} is not an object", index + 1),
                Some(
                    "each YAML document must be a Kubernetes object with `apiVersion` and `kind`"
                        .into(),
                ),
            ),
        );
        document.object = Object::Invalid;
        return document;
    }
    let is_argo = document.group() == rollout_runner_api::crd::GROUP;
    if is_argo {
        document.object = decode_argo(&document, problems);
    } else {
        let mut missing = Vec::new();
        if document.api_version.is_empty() {
            missing.push("apiVersion");
        }
        if document.kind.is_empty() {
            missing.push("kind");
        }
        if document.name.is_empty() && document.field("metadata.generateName").is_none() {
            missing.push("metadata.name");
        }
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ");
            // Without a kind it is no object at all: `kubectl argo rollouts lint` refuses the
            // file (the oracle shows it on Argo's own Helm chart files). A missing apiVersion
            // or name only the API server refuses.
            let (severity, hint) = if document.kind.is_empty() {
                (
                    Severity::Error,
                    "kubectl and `kubectl argo rollouts lint` refuse a document without `kind`; if the file is not a manifest (a Helm values file, a Chart.yaml), leave it out of the inputs",
                )
            } else {
                (
                    Severity::Warning,
                    "kubectl and the API server reject objects without them",
                )
            };
            problems.push(document.problem(
                severity,
                Rule::Document,
                &root,
                format!("document {} has no {list}", index + 1),
                Some(hint.into()),
            ));
        }
    }
    document
}

fn decode_argo(document: &Document, problems: &mut Vec<Problem>) -> Object {
    let version = document
        .api_version
        .split_once('/')
        .map(|(_, v)| v)
        .unwrap_or("");
    if !ARGO_KINDS.contains(&document.kind.as_str()) {
        let message = if document.kind.is_empty() {
            format!("document {} has no `kind`", document.index + 1)
        } else {
            format!(
                "unknown kind `{}` in {}",
                document.kind, document.api_version
            )
        };
        problems.push(document.problem(
            Severity::Error,
            Rule::UnknownKind,
            &FieldPath::parse("kind"),
            message,
            Some(format!(
                "{} serves {}",
                rollout_runner_api::crd::API_VERSION,
                ARGO_KINDS.join(", ")
            )),
        ));
        return Object::Invalid;
    }
    if version != "v1alpha1" {
        problems.push(document.problem(
            Severity::Error,
            Rule::UnknownKind,
            &FieldPath::parse("apiVersion"),
            format!(
                "unknown version `{}` of {}",
                document.api_version, document.kind
            ),
            Some(format!(
                "use `apiVersion: {}`",
                rollout_runner_api::crd::API_VERSION
            )),
        ));
        return Object::Invalid;
    }
    if document.name.is_empty() && document.field("metadata.generateName").is_none() {
        problems.push(document.problem(
            Severity::Error,
            Rule::Document,
            &FieldPath::parse("metadata.name"),
            format!("{} has no `metadata.name`", document.kind),
            Some("every object needs a name".into()),
        ));
    }
    for unknown in schema::unknown_fields(&document.kind, &document.raw) {
        let field = unknown.path.last_key().unwrap_or_default().to_string();
        let hint = match unknown.suggestion {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None => "the API server drops unknown fields: remove it or fix its name".to_string(),
        };
        problems.push(document.problem(
            Severity::Warning,
            Rule::UnknownField,
            &unknown.path,
            format!("unknown field `{field}`"),
            Some(hint),
        ));
    }
    // Argo decodes into Go structs, where a missing `spec` or `metadata` is a zero value.
    let mut value = document.raw.clone();
    if let Some(map) = value.as_object_mut() {
        map.entry("spec")
            .or_insert_with(|| Value::Object(Default::default()));
        map.entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    let decoded = match document.kind.as_str() {
        "Rollout" => {
            decode::<Rollout>(document, &value, problems).map(|r| Object::Rollout(Box::new(r)))
        }
        "AnalysisTemplate" => decode::<AnalysisTemplate>(document, &value, problems)
            .map(|t| Object::AnalysisTemplate(Box::new(t))),
        "ClusterAnalysisTemplate" => decode::<ClusterAnalysisTemplate>(document, &value, problems)
            .map(|t| Object::ClusterAnalysisTemplate(Box::new(t))),
        "AnalysisRun" => decode::<AnalysisRun>(document, &value, problems)
            .map(|r| Object::AnalysisRun(Box::new(r))),
        "Experiment" => decode::<Experiment>(document, &value, problems)
            .map(|e| Object::Experiment(Box::new(e))),
        _ => None,
    };
    decoded.unwrap_or(Object::Invalid)
}

/// Decode a typed object, reporting a wrong type at its field path.
fn decode<T: DeserializeOwned>(
    document: &Document,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(object) => Some(object),
        Err(error) => {
            let path = field_path_of(error.path());
            let inner = error.into_inner().to_string();
            let (message, hint) = describe_type_error(&inner, path.last_key());
            problems.push(document.problem(
                Severity::Error,
                Rule::InvalidType,
                &path,
                message,
                hint,
            ));
            None
        }
    }
}

fn field_path_of(path: &serde_path_to_error::Path) -> FieldPath {
    let mut out = FieldPath::root();
    for segment in path.iter() {
        out = match segment {
            serde_path_to_error::Segment::Seq { index } => out.index(*index),
            serde_path_to_error::Segment::Map { key } => out.key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => out.key(variant.clone()),
            serde_path_to_error::Segment::Unknown => out,
        };
    }
    out
}

/// Say serde's type errors in words: `expected i32` becomes `expected an integer`.
fn describe_type_error(message: &str, field: Option<&str>) -> (String, Option<String>) {
    let mut message = message.to_string();
    for (rust, words) in [
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
        ("expected a string", "expected a string"),
        ("expected i8", "expected an integer"),
        ("expected i16", "expected an integer"),
        ("expected u8", "expected a non-negative integer"),
        ("expected u16", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected f32", "expected a number"),
        ("expected a map", "expected a mapping"),
        ("invalid type: map,", "invalid type: mapping,"),
        (
            "invalid type: null,",
            "invalid type: an empty value (null),",
        ),
    ] {
        message = message.replace(rust, words);
    }
    message = without_rust_type_names(&message);
    let quoted_number = message.starts_with("invalid type: string \"")
        && message
            .split('"')
            .nth(1)
            .is_some_and(|s| s.parse::<f64>().is_ok())
        && message.contains("integer");
    let hint = if quoted_number {
        Some("remove the quotes around the number".to_string())
    } else if let Some(field) = field.filter(|_| message.starts_with("invalid type")) {
        Some(format!(
            "check the type of `{field}` in the Argo Rollouts specification"
        ))
    } else if message.starts_with("missing field") {
        Some("add the missing field".to_string())
    } else {
        None
    };
    (message, hint)
}

/// Replace the Rust type names serde puts in its messages (`expected struct CanaryStep`,
/// `untagged enum IntOrString`) with what the user writes.
fn without_rust_type_names(message: &str) -> String {
    const UNTAGGED: &str = "data did not match any variant of untagged enum ";
    // k8s-openapi's own deserializers name the type bare: `expected IntOrString`.
    let message = message.replace(
        "expected IntOrString",
        "expected an integer or a percentage such as \"25%\"",
    );
    let message = message.as_str();
    if let Some(at) = message.find(UNTAGGED) {
        let name: String = message[at + UNTAGGED.len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        let words = if name == "IntOrString" {
            "expected an integer or a percentage such as \"25%\"".to_string()
        } else {
            "the value has none of the accepted forms".to_string()
        };
        return format!(
            "{}{words}{}",
            &message[..at],
            &message[at + UNTAGGED.len() + name.len()..]
        );
    }
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(['s', 'e']).filter(|_| !rest.is_empty()) {
        let (kind, words) = if rest[at..].starts_with("struct ") {
            ("struct ", "a mapping")
        } else if rest[at..].starts_with("enum ") {
            ("enum ", "one of the accepted values")
        } else {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            continue;
        };
        let after = &rest[at + kind.len()..];
        let name_len = after
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .unwrap_or(after.len());
        let is_type = name_len > 0 && after.starts_with(|c: char| c.is_ascii_uppercase());
        let word_start = at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric());
        if is_type && word_start {
            out.push_str(&rest[..at]);
            out.push_str(words);
            rest = &after[name_len..];
        } else {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// `text` safe to print in a message: control characters (newlines, ANSI escapes, NUL)
/// escaped, and cut after 100 characters.
pub fn printable(text: &str) -> String {
    const LIMIT: usize = 100;
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == LIMIT {
            out.push_str(&format!("... ({} bytes in all)", text.len()));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Warn about objects defined twice (same kind, namespace and name).
fn report_duplicates(set: &ManifestSet, problems: &mut Vec<Problem>) {
    for (i, later) in set.documents.iter().enumerate() {
        if later.kind.is_empty() || later.name.is_empty() {
            continue;
        }
        let earlier = set.documents[..i].iter().find(|d| {
            d.kind == later.kind
                && d.group() == later.group()
                && d.name == later.name
                && d.namespace == later.namespace
        });
        if let Some(earlier) = earlier {
            let at = earlier.locate(&FieldPath::root());
            problems.push(later.problem(
                Severity::Warning,
                Rule::Duplicate,
                &FieldPath::parse("metadata.name"),
                format!(
                    "{} `{}` is defined twice; the first definition is at {}:{}:{}",
                    later.kind, later.name, earlier.file, at.line, at.column
                ),
                Some("applying both keeps only the last one: remove one of them".into()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_say_no_rust_names() {
        let (message, _) =
            describe_type_error("invalid type: null, expected struct CanaryStep", None);
        assert_eq!(
            message,
            "invalid type: an empty value (null), expected a mapping"
        );
        let (message, _) = describe_type_error(
            "data did not match any variant of untagged enum IntOrString",
            None,
        );
        assert_eq!(
            message,
            "expected an integer or a percentage such as \"25%\""
        );
        let (message, _) =
            describe_type_error("invalid type: sequence, expected IntOrString", None);
        assert_eq!(
            message,
            "invalid type: sequence, expected an integer or a percentage such as \"25%\""
        );
        let (message, _) = describe_type_error("invalid type: map, expected enum Phase", None);
        assert_eq!(
            message,
            "invalid type: mapping, expected one of the accepted values"
        );
    }

    const STREAM: &str = "\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: prod
spec:
  strategy:
    canary:
      steps:
        - setWeight: 10
        - setWeight: \"ten\"
---
# a comment-only document is skipped
---
apiVersion: v1
kind: Service
metadata:
  name: web-stable
spec:
  selector: {app: web}
";

    #[test]
    fn classifies_documents_and_locates_type_errors() {
        let loaded = load(&[Source::rendered("templates/web.yaml.j2", STREAM)]);
        let set = &loaded.set;
        assert_eq!(set.files(), ["templates/web.yaml.j2 (rendered)"]);
        assert_eq!(set.documents().len(), 2);
        let rollout = &set.documents()[0];
        assert!(matches!(rollout.object, Object::Invalid));
        assert_eq!(rollout.namespace.as_deref(), Some("prod"));
        let service = set
            .find(&kinds::SERVICE, Some("prod"), "web-stable")
            .unwrap();
        assert_eq!(service.index, 1);
        assert!(matches!(service.object, Object::Kubernetes));
        assert_eq!(set.services().count(), 1);
        assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
        let problem = &loaded.problems[0];
        assert_eq!(problem.file, "templates/web.yaml.j2 (rendered)");
        assert_eq!((problem.line, problem.column), (11, 11));
        assert_eq!(problem.path, "spec.strategy.canary.steps[1].setWeight");
        assert_eq!(
            problem.message,
            "invalid type: string \"ten\", expected an integer"
        );
        assert_eq!(problem.rule, Rule::InvalidType);
    }

    #[test]
    fn decodes_argo_kinds_and_keeps_raw_json() {
        let text = STREAM.replace("\"ten\"", "20");
        let loaded = load(&[Source::new("web.yaml", text)]);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let (document, rollout) = loaded.set.rollout(Some("prod"), "web").unwrap();
        assert_eq!(rollout.spec.steps().len(), 2);
        assert_eq!(
            document.raw["spec"]["strategy"]["canary"]["steps"][1]["setWeight"],
            20
        );
        assert_eq!(document.id(), "Rollout/web");
    }

    #[test]
    fn syntax_errors_name_the_file_and_position() {
        let loaded = load(&[Source::new("bad.yaml", "a: [1\n")]);
        assert_eq!(loaded.problems.len(), 1);
        let problem = &loaded.problems[0];
        assert_eq!(problem.rule, Rule::Syntax);
        assert_eq!((problem.file.as_str(), problem.line), ("bad.yaml", 1));
        assert!(problem.rule.is_unreadable());
    }
}
