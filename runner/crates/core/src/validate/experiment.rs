//! Experiments on their own: templates with unique names and matching selectors, durations
//! that parse, analyses with unique names.

use std::collections::{BTreeMap, HashSet};

use super::messages as m;
use super::rollout::selector_matches;
use super::{Finding, Findings, check_duration};
use crate::manifest::FieldPath;
use rollout_runner_api::crd::Experiment;

/// Every rule that concerns the Experiment alone.
pub fn validate_experiment(experiment: &Experiment) -> Vec<Finding> {
    let mut f = Findings::default();
    let spec = &experiment.spec;
    let path = FieldPath::parse("spec");
    if spec.templates.is_empty() {
        f.spec(
            path.key("templates"),
            "experiment has no templates",
            "add at least one template: a name, a selector and a pod template",
        );
    }
    let mut names = HashSet::new();
    let empty = BTreeMap::new();
    for (i, template) in spec.templates.iter().enumerate() {
        let at = path.key("templates").index(i);
        if template.name.is_empty() {
            f.spec(
                at.key("name"),
                "experiment template has no name",
                "name every template",
            );
        } else if !names.insert(template.name.as_str()) {
            f.spec(
                at.key("name"),
                format!("duplicate experiment template name `{}`", template.name),
                "template names must be unique within the experiment",
            );
        }
        for (value, name) in [
            (template.replicas, "replicas"),
            (template.min_ready_seconds, "minReadySeconds"),
        ] {
            if value.is_some_and(|v| v < 0) {
                f.spec(at.key(name), m::NON_NEGATIVE, "use 0 or a positive number");
            }
        }
        let labels = template
            .template
            .metadata
            .as_ref()
            .and_then(|meta| meta.labels.as_ref())
            .unwrap_or(&empty);
        match &template.selector {
            None => f.spec(
                at.key("selector"),
                format!("experiment template `{}` has no selector", template.name),
                "add `selector.matchLabels` matching the template's labels",
            ),
            Some(selector) => match selector_matches(selector, labels) {
                Err(()) => f.spec(
                    at.key("selector"),
                    m::INVALID_SELECTOR,
                    "matchExpressions operators are In, NotIn, Exists and DoesNotExist",
                ),
                Ok(false) => f.spec(
                    at.keys("template.metadata.labels"),
                    m::SELECTOR_DOES_NOT_MATCH,
                    "give the pod template every label the selector requires",
                ),
                Ok(true) => {}
            },
        }
        if template
            .template
            .spec
            .as_ref()
            .is_none_or(|s| s.containers.is_empty())
        {
            f.beyond_argo(
                at.keys("template.spec.containers"),
                "the pod template has no containers",
                "add at least one container: the API server refuses a ReplicaSet without one, so the template's pods never start",
            );
        }
    }
    if !spec.duration.is_empty()
        && let Err(error) = check_duration(&spec.duration)
    {
        f.spec(
            path.key("duration"),
            error,
            "use a Go duration such as `30s`, `5m` or `1h`; leave it out to run until terminated",
        );
    }
    for (value, name) in [
        (spec.progress_deadline_seconds, "progressDeadlineSeconds"),
        (spec.scale_down_delay_seconds, "scaleDownDelaySeconds"),
    ] {
        if value.is_some_and(|v| v < 0) {
            f.spec(
                path.key(name),
                m::NON_NEGATIVE,
                "use 0 or a positive number",
            );
        }
    }
    let mut analysis_names = HashSet::new();
    for (i, analysis) in spec.analyses.iter().enumerate() {
        let at = path.key("analyses").index(i);
        if analysis.name.is_empty() {
            f.spec(
                at.key("name"),
                "experiment analysis has no name",
                "name every analysis",
            );
        } else if !analysis_names.insert(analysis.name.as_str()) {
            f.spec(
                at.key("name"),
                format!("duplicate experiment analysis name `{}`", analysis.name),
                "analysis names must be unique within the experiment",
            );
        }
        if analysis.template_name.is_empty() {
            f.spec(
                at.key("templateName"),
                "experiment analysis has no templateName",
                "name the AnalysisTemplate to run",
            );
        }
        for (j, arg) in analysis.args.iter().enumerate() {
            if arg.value.is_some() && arg.value_from.is_some() {
                f.spec(
                    at.key("args").index(j),
                    format!("arg '{}' has both Value and ValueFrom fields", arg.name),
                    "keep either `value` or `valueFrom`",
                );
            }
        }
    }
    f.into_vec()
}
