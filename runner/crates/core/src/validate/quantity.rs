//! Resource quantities (`cpu: 500m`, `memory: 128Mi`) in the pod templates of Argo objects.
//!
//! Argo decodes a Rollout, an Experiment or an analysis Job into Kubernetes' Go types, and a
//! quantity that `resource.ParseQuantity` refuses makes the whole object undecodable
//! (`kubectl argo rollouts lint` and the controller refuse it). rollout-runner keeps pod
//! templates as written, so the quantities are checked here. Hand-written because no
//! maintained crate reproduces apimachinery's parser exactly (it accepts `+`, `.5`, `1.G` and
//! refuses what its regular expression would allow, such as `1e`); this follows
//! `parseQuantityString` and `suffixer.interpret` of k8s.io/apimachinery v0.34 step by step.

use serde_json::Value;

use super::Findings;
use crate::manifest::{FieldPath, Rule, Severity};

/// apimachinery's `ErrFormatWrong` and `ErrSuffix`.
const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const SUFFIX_WRONG: &str = "unable to parse quantity's suffix";

/// `resource.ParseQuantity`'s verdict on a string.
pub(crate) fn parse_quantity(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err(FORMAT_WRONG);
    }
    if text == "0" {
        return Ok(());
    }
    let suffix = quantity_suffix(text.as_bytes())?;
    if ["", "n", "u", "m", "k", "M", "G", "T", "P", "E"].contains(&suffix)
        || ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].contains(&suffix)
    {
        return Ok(());
    }
    match suffix.as_bytes() {
        [b'e' | b'E', exponent @ ..] if !exponent.is_empty() => {
            // strconv.ParseInt(_, 10, 64): an optional sign, then decimal digits (as Rust's).
            std::str::from_utf8(exponent)
                .ok()
                .and_then(|d| d.parse::<i64>().ok())
                .map(|_| ())
                .ok_or(SUFFIX_WRONG)
        }
        _ => Err(SUFFIX_WRONG),
    }
}

/// `parseQuantityString`: the suffix, or the format error.
fn quantity_suffix(text: &[u8]) -> Result<&str, &'static str> {
    let end = text.len();
    let mut pos = 0;
    if matches!(text.first(), Some(b'-' | b'+')) {
        pos += 1;
    }
    while pos < end && text[pos] == b'0' {
        pos += 1;
    }
    while pos < end && text[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end && text[pos] == b'.' {
        pos += 1;
        while pos < end && text[pos].is_ascii_digit() {
            pos += 1;
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&text[pos]) {
        pos += 1;
    }
    if pos < end && matches!(text[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && text[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(FORMAT_WRONG);
    }
    // Every byte so far is ASCII.
    Ok(std::str::from_utf8(&text[suffix_start..]).unwrap_or_default())
}

/// Where pod templates sit in the Argo kinds that hold them.
pub(crate) fn check(kind: &str, raw: &Value) -> Findings {
    let mut f = Findings::default();
    let spec = FieldPath::root().key("spec");
    match kind {
        "Rollout" => pod_template(&mut f, &raw["spec"]["template"], &spec.key("template")),
        "Experiment" => {
            for (i, template) in array(&raw["spec"]["templates"]) {
                let at = spec.key("templates").index(i).key("template");
                pod_template(&mut f, &template["template"], &at);
            }
        }
        "AnalysisTemplate" | "ClusterAnalysisTemplate" | "AnalysisRun" => {
            for (i, metric) in array(&raw["spec"]["metrics"]) {
                let at = spec
                    .key("metrics")
                    .index(i)
                    .keys("provider.job.spec.template");
                pod_template(&mut f, &metric["provider"]["job"]["spec"]["template"], &at);
            }
        }
        _ => {}
    }
    f
}

fn array(value: &Value) -> impl Iterator<Item = (usize, &Value)> {
    value.as_array().into_iter().flatten().enumerate()
}

/// Every quantity field of a PodSpec (containers of each kind, pod-level resources and
/// overhead, emptyDir size limits, generic ephemeral volume claims).
fn pod_template(f: &mut Findings, template: &Value, at: &FieldPath) {
    let spec = &template["spec"];
    let at = at.key("spec");
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for (i, container) in array(&spec[list]) {
            resources(
                f,
                &container["resources"],
                &at.key(list).index(i).key("resources"),
            );
        }
    }
    resources(f, &spec["resources"], &at.key("resources"));
    quantity_map(f, &spec["overhead"], &at.key("overhead"));
    for (i, volume) in array(&spec["volumes"]) {
        let volume_at = at.key("volumes").index(i);
        let size = &volume["emptyDir"]["sizeLimit"];
        if !size.is_null() {
            quantity(f, size, &volume_at.keys("emptyDir.sizeLimit"));
        }
        resources(
            f,
            &volume["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"],
            &volume_at.keys("ephemeral.volumeClaimTemplate.spec.resources"),
        );
    }
}

fn resources(f: &mut Findings, resources: &Value, at: &FieldPath) {
    for key in ["limits", "requests"] {
        quantity_map(f, &resources[key], &at.key(key));
    }
}

fn quantity_map(f: &mut Findings, map: &Value, at: &FieldPath) {
    for (name, value) in map.as_object().into_iter().flatten() {
        quantity(f, value, &at.key(name.clone()));
    }
}

fn quantity(f: &mut Findings, value: &Value, at: &FieldPath) {
    // Quantity.UnmarshalJSON: a JSON string without its quotes, anything else as written;
    // `null` is no quantity at all.
    let text = match value {
        Value::Null => return,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Err(error) = parse_quantity(text.trim()) {
        f.push(
            Severity::Error,
            Rule::InvalidType,
            at.clone(),
            format!(
                "`{}` is not a resource quantity: {error}",
                crate::manifest::printable(&text)
            ),
            Some("write a number with an optional suffix, such as `500m`, `0.5`, `128Mi` or `1G`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_quantity;

    /// Each case's verdict is what `resource.ParseQuantity` (k8s.io/apimachinery v0.34.5)
    /// answered for it.
    #[test]
    fn quantities_as_apimachinery_parses_them() {
        for good in [
            "0",
            "1",
            "500m",
            "0.5",
            ".5",
            "1.",
            "1.G",
            "128Mi",
            "1Ki",
            "+1",
            "-1",
            "+",
            "-",
            "1e3",
            "1E3",
            "1e+3",
            "1e-3",
            "1E",
            "007",
            "1n",
            "1u",
            "2Ei",
            "Mi",
            ".",
            "e5",
            "12345678901234567890123",
        ] {
            assert_eq!(parse_quantity(good), Ok(()), "{good}");
        }
        for bad in [
            "", "invalid", "1Kb", "1 Mi", "1.2.3", "1e3.5", "1MiB", "0x10", "1e++3", "1e-+3",
        ] {
            assert_eq!(parse_quantity(bad), Err(super::FORMAT_WRONG), "{bad}");
        }
        for bad in [
            "1e",
            "1mi",
            "1ee3",
            "--1",
            "1e99999999999999999999",
            "1e+",
            "1k3",
            "1i",
        ] {
            assert_eq!(parse_quantity(bad), Err(super::SUFFIX_WRONG), "{bad}");
        }
    }
}
