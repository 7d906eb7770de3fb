//! Is this set of manifests something Argo Rollouts (and rollout-runner) would accept?
//!
//! [`validate`] checks every object of a [`ManifestSet`]: Argo's validation rules for Rollouts
//! (`validation.go`), AnalysisTemplates, ClusterAnalysisTemplates, AnalysisRuns (`ValidateMetric`)
//! and Experiments, then the references between objects (templates, arguments, Services,
//! Ingresses, Istio and Gateway API routes). It returns every problem, each with a field path
//! and the `file:line:column` where the field is written. Messages are Argo's where Argo has
//! one ([`messages`]).
//!
//! Pure logic: it does no I/O and never mutates its input. Parsing and decoding belong to
//! [`crate::manifest`]; reporting to the CLI.

mod analysis;
pub mod cluster;
mod experiment;
pub mod messages;
mod quantity;
mod references;
mod rollout;
pub mod support;

use std::collections::BTreeSet;

use crate::manifest::{Document, FieldPath, ManifestSet, Object};

pub use crate::manifest::{Problem, Rule, Severity};
pub use analysis::validate_metrics;
pub use experiment::validate_experiment;
pub use rollout::validate_rollout;

/// A problem inside one object, before it is located in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub rule: Rule,
    pub path: FieldPath,
    pub message: String,
    pub hint: Option<String>,
}

impl Finding {
    /// Locate the finding in the document it was found in.
    pub fn locate(&self, document: &Document) -> Problem {
        document.problem(
            self.severity,
            self.rule,
            &self.path,
            self.message.clone(),
            self.hint.clone(),
        )
    }
}

/// Findings, collected in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Findings(Vec<Finding>);

impl Findings {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        rule: Rule,
        path: FieldPath,
        message: impl Into<String>,
        hint: Option<&str>,
    ) {
        self.0.push(Finding {
            severity,
            rule,
            path,
            message: message.into(),
            hint: hint.map(str::to_string),
        });
    }

    /// An error against one of Argo's spec rules.
    pub(crate) fn spec(&mut self, path: FieldPath, message: impl Into<String>, hint: &str) {
        self.push(Severity::Error, Rule::Spec, path, message, Some(hint));
    }

    /// A rollout-runner check that Argo's validation does not make: a warning, so that what
    /// Argo accepts lints clean (`argo_manifests` holds lint to Argo's verdicts).
    pub(crate) fn beyond_argo(&mut self, path: FieldPath, message: impl Into<String>, hint: &str) {
        self.push(Severity::Warning, Rule::Spec, path, message, Some(hint));
    }

    pub(crate) fn extend(&mut self, other: Findings) {
        self.0.extend(other.0);
    }

    pub(crate) fn into_vec(self) -> Vec<Finding> {
        self.0
    }
}

/// An AnalysisTemplate (or, with `cluster`, a ClusterAnalysisTemplate) that lives in the cluster
/// rather than among the inputs (`--external-template NAME`, `--external-template cluster:NAME`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalTemplate {
    pub cluster: bool,
    pub name: String,
}

impl std::str::FromStr for ExternalTemplate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (cluster, name) = match text.strip_prefix("cluster:") {
            Some(name) => (true, name),
            None => (false, text),
        };
        if name.is_empty() {
            return Err("expected NAME or cluster:NAME".to_string());
        }
        Ok(Self {
            cluster,
            name: name.to_string(),
        })
    }
}

/// Another object that lives in the cluster rather than among the inputs (`--external
/// KIND/NAME`, e.g. `service/web-stable`, `ingress/web`, `virtualservice/web`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalObject {
    /// The kind, lowercase (`service`, `ingress`, `virtualservice`, `destinationrule`,
    /// `httproute`, `grpcroute`, `traefikservice`, `deployment`, ...).
    pub kind: String,
    pub name: String,
}

impl std::str::FromStr for ExternalObject {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('/') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(Self {
                kind: kind.to_lowercase(),
                name: name.to_string(),
            }),
            _ => Err("expected KIND/NAME, such as service/web-stable".to_string()),
        }
    }
}

/// What the validator may assume about objects that are not among the inputs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub external_templates: BTreeSet<ExternalTemplate>,
    pub external_objects: BTreeSet<ExternalObject>,
    /// Report fields rollout-runner does not act on as warnings, not errors
    /// (`--allow-unsupported`).
    pub allow_unsupported: bool,
    /// What this run provides that makes some of those fields supported.
    pub capabilities: BTreeSet<support::Capability>,
}

impl Options {
    pub(crate) fn is_external_template(&self, cluster: bool, name: &str) -> bool {
        self.external_templates.contains(&ExternalTemplate {
            cluster,
            name: name.to_string(),
        })
    }

    pub(crate) fn is_external(&self, kind: &str, name: &str) -> bool {
        self.external_objects.contains(&ExternalObject {
            kind: kind.to_lowercase(),
            name: name.to_string(),
        })
    }
}

/// Validate every object of the set and the references between them. Problems are sorted by
/// file (input order) and position.
pub fn validate(set: &ManifestSet, options: &Options) -> Vec<Problem> {
    let mut problems = Vec::new();
    for document in set.documents() {
        let findings = match &document.object {
            Object::Rollout(rollout) => validate_rollout(rollout),
            Object::AnalysisTemplate(template) => {
                analysis::validate_template_spec(&template.spec, false)
            }
            Object::ClusterAnalysisTemplate(template) => {
                analysis::validate_template_spec(&template.spec.template, false)
            }
            Object::AnalysisRun(run) => analysis::validate_run_spec(&run.spec),
            Object::Experiment(experiment) => validate_experiment(experiment),
            Object::Kubernetes | Object::Invalid => Vec::new(),
        };
        problems.extend(findings.iter().map(|f| f.locate(document)));
        if document.group() == rollout_runner_api::crd::GROUP {
            let quantities = quantity::check(&document.kind, &document.raw);
            problems.extend(quantities.into_vec().iter().map(|f| f.locate(document)));
        }
        // Also for an Argo object that does not decode: the field is still written there.
        if !matches!(document.object, Object::Kubernetes) {
            let unsupported = support::check(
                &document.kind,
                &document.raw,
                &options.capabilities,
                options.allow_unsupported,
            );
            problems.extend(unsupported.into_vec().iter().map(|f| f.locate(document)));
        }
        problems.extend(check_names(document));
    }
    problems.extend(references::validate_references(set, options));
    crate::manifest::sort_problems(&mut problems, set.files());
    problems.dedup();
    problems
}

/// Check that a success or failure condition compiles: syntax, unknown names, and type errors
/// that hold whatever the result is. Argument placeholders (`{{args.x}}`) are replaced by a
/// number first, as Argo resolves them before compiling.
pub fn check_condition(expression: &str) -> Result<(), String> {
    let original_len = expression.len();
    let expression = substitute_placeholders(expression);
    if expression.trim().is_empty() {
        return Err("the condition is empty".to_string());
    }
    rollout_runner_expr::check_condition(&expression).map_err(|error| {
        // Columns are only meaningful when no placeholder shifted the text.
        match error.position() {
            Some(position) if expression.len() == original_len => {
                format!("{error} (column {})", position.column)
            }
            _ => error.to_string(),
        }
    })
}

/// Replace `{{ ... }}` placeholders with a neutral value.
fn substitute_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => {
                out.push('0');
                rest = &rest[start + end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Go's `time.ParseDuration`, as a validation message on failure.
pub(crate) fn check_duration(text: &str) -> Result<(), String> {
    rollout_runner_api::crd::duration::parse_go_duration(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether a text contains an argument placeholder (`{{args.x}}`), resolved only at run time.
pub(crate) fn is_templated(text: &str) -> bool {
    text.contains("{{")
}

/// Kubernetes' own messages (k8s.io/apimachinery `pkg/util/validation`).
const DNS1123_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// `IsDNS1123Subdomain`: what the API server says of a bad name, or nothing.
pub fn dns1123_subdomain_errors(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > 253 {
        errors.push("must be no more than 253 characters".to_string());
    }
    if !name.split('.').all(is_dns_label_pattern) {
        errors.push(DNS1123_SUBDOMAIN_MESSAGE.to_string());
    }
    errors
}

/// `IsDNS1123Label`.
pub fn dns1123_label_errors(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > 63 {
        errors.push("must be no more than 63 characters".to_string());
    }
    if !is_dns_label_pattern(name) {
        if name.split('.').all(is_dns_label_pattern) {
            errors.push("must not contain dots".to_string());
        } else {
            errors.push(DNS1123_LABEL_MESSAGE.to_string());
        }
    }
    errors
}

fn is_dns_label_pattern(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// `metadata.name` as a DNS subdomain (a label for a Namespace), `metadata.namespace` as a
/// label, as the API server checks them: a bad one would be refused at apply time.
fn check_names(document: &crate::manifest::Document) -> Vec<Problem> {
    use crate::manifest::{FieldPath, Rule, Severity, printable};
    let mut problems = Vec::new();
    let mut check = |field: &str, value: &str, errors: Vec<String>| {
        if errors.is_empty() {
            return;
        }
        problems.push(document.problem(
            Severity::Error,
            Rule::Document,
            &FieldPath::parse(field),
            format!(
                "{field}: Invalid value: \"{}\": {}",
                printable(value),
                errors.join(", ")
            ),
            Some("Kubernetes names are lowercase letters, digits, '-' and '.', such as `web-canary`".into()),
        ));
    };
    if !document.name.is_empty() {
        let errors = if document.kind == "Namespace" && document.group().is_empty() {
            dns1123_label_errors(&document.name)
        } else {
            dns1123_subdomain_errors(&document.name)
        };
        check("metadata.name", &document.name, errors);
    }
    if let Some(namespace) = &document.namespace {
        check(
            "metadata.namespace",
            namespace,
            dns1123_label_errors(namespace),
        );
    }
    problems
}

/// A DNS label (RFC 1123): at most 63 lowercase letters, digits and '-', not starting or
/// ending with '-' (Gateway API rule names, among others).
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        assert_eq!(check_condition("result[0] >= 0.95"), Ok(()));
        assert_eq!(
            check_condition("len(result) > 0 && all(result, {# < 5})"),
            Ok(())
        );
        assert_eq!(check_condition("result == \"a)\""), Ok(()));
        assert_eq!(check_condition("result[0] >= {{args.threshold}}"), Ok(()));
        assert!(check_condition("").is_err());
        assert!(check_condition("   ").is_err());
        assert!(check_condition("result[0 >= 1").is_err());
        assert!(check_condition("result) > 1").is_err());
        assert!(check_condition("result == \"x").is_err());
        assert!(check_condition("(result]").is_err());
    }

    #[test]
    fn external_flags_parse() {
        let t: ExternalTemplate = "cluster:always-pass".parse().unwrap();
        assert!(t.cluster);
        assert_eq!(t.name, "always-pass");
        let o: ExternalObject = "Service/web".parse().unwrap();
        assert_eq!((o.kind.as_str(), o.name.as_str()), ("service", "web"));
        assert!("service".parse::<ExternalObject>().is_err());
        assert!("cluster:".parse::<ExternalTemplate>().is_err());
    }
}
