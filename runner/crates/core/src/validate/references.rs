//! References between objects: analysis templates and their arguments, Services, Ingresses,
//! Istio VirtualServices and DestinationRules, Gateway API routes, TraefikServices and
//! referenced workloads (`ValidateRolloutReferencedResources` in Argo, extended to the whole
//! input set).
//!
//! A referenced object of a kind that appears among the inputs must be there too (or be named
//! with `--external`). When no object of that kind is among the inputs, the objects are assumed
//! to live in the cluster, and one warning per kind says so.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::analysis::arg_placeholders;
use super::messages as m;
use super::{Options, is_templated};
use crate::manifest::{Document, FieldPath, KindRef, ManifestSet, Problem, Rule, Severity, kinds};
use rollout_runner_api::crd::{
    AnalysisRunArgument, Argument, CanaryStrategy, GATEWAY_API_PLUGIN, IntOrString,
    MANAGED_BY_ROLLOUTS_ANNOTATION, Metric, POD_TEMPLATE_HASH_LABEL, Rollout, RolloutAnalysis,
};

pub(crate) fn validate_references(set: &ManifestSet, options: &Options) -> Vec<Problem> {
    let mut context = Context {
        set,
        options,
        problems: Vec::new(),
        assumed: HashSet::new(),
    };
    for (document, rollout) in set.rollouts() {
        context.rollout(document, rollout);
    }
    for (document, experiment) in set.experiments() {
        for (i, analysis) in experiment.spec.analyses.iter().enumerate() {
            let at = FieldPath::parse("spec.analyses").index(i);
            let args: Vec<CallerArg> = analysis
                .args
                .iter()
                .map(|a| CallerArg {
                    name: a.name.clone(),
                    supplied: a.value.is_some() || a.value_from.is_some(),
                    value: a.value.clone(),
                })
                .collect();
            context.analysis(
                document,
                AnalysisUse::Experiment,
                &[TemplateUse {
                    cluster: analysis.cluster_scope,
                    name: analysis.template_name.clone(),
                    path: at.key("templateName"),
                }],
                &args,
                &at.key("args"),
                None,
            );
        }
    }
    let nested: Vec<(&Document, Vec<(bool, String)>)> = set
        .analysis_templates()
        .map(|(d, t)| (d, &t.spec))
        .chain(
            set.cluster_analysis_templates()
                .map(|(d, t)| (d, &t.spec.template)),
        )
        .map(|(d, spec)| {
            (
                d,
                spec.templates
                    .iter()
                    .map(|t| (t.cluster_scope, t.template_name.clone()))
                    .collect(),
            )
        })
        .collect();
    for (document, refs) in nested {
        for (i, (cluster, name)) in refs.into_iter().enumerate() {
            let path = FieldPath::parse("spec.templates")
                .index(i)
                .key("templateName");
            if !name.is_empty() && context.template(document, cluster, &name).is_none() {
                context.missing_template(document, cluster, &name, &path);
            } else if let Some(chain) = context.cycle_through(document, cluster, &name) {
                context.problems.push(document.problem(
                    Severity::Error,
                    Rule::Reference,
                    &path,
                    format!(
                        "{} `{}` nests itself: {}",
                        document.kind,
                        crate::manifest::printable(&document.name),
                        chain.join(" → ")
                    ),
                    Some(
                        "a template cannot nest itself, directly or through others: remove one of the nested references"
                            .into(),
                    ),
                ));
            }
        }
    }
    context.problems
}

struct Context<'a> {
    set: &'a ManifestSet,
    options: &'a Options,
    problems: Vec<Problem>,
    /// Kinds already reported as "assumed to live in the cluster".
    assumed: HashSet<&'static str>,
}

/// Which kind of analysis references the templates (Argo checks some rules for some only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnalysisUse {
    Background,
    Step,
    PrePromotion,
    PostPromotion,
    Experiment,
}

/// One `templateName` a rollout or experiment references.
struct TemplateUse {
    cluster: bool,
    name: String,
    path: FieldPath,
}

/// An argument the caller passes.
struct CallerArg {
    name: String,
    /// It has a value or a valueFrom (podTemplateHashValue, fieldRef, secretKeyRef).
    supplied: bool,
    value: Option<String>,
}

/// The AnalysisTemplate spec a name resolves to, with the object's name.
struct ResolvedTemplate<'a> {
    name: String,
    kind: &'static str,
    metrics: &'a [Metric],
    args: &'a [Argument],
}

/// A Service a rollout names, and in which role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServiceRole {
    Canary,
    Stable,
    Active,
    Preview,
    Ping,
    Pong,
    /// SMI and ALB root Services: must exist; their selectors are not the rollout's business.
    Root,
}

impl<'a> Context<'a> {
    fn template(
        &self,
        referrer: &Document,
        cluster: bool,
        name: &str,
    ) -> Option<ResolvedTemplate<'a>> {
        if cluster {
            self.set
                .cluster_analysis_template(name)
                .map(|(_, t)| ResolvedTemplate {
                    name: name.to_string(),
                    kind: "ClusterAnalysisTemplate",
                    metrics: &t.spec.template.metrics,
                    args: &t.spec.template.args,
                })
        } else {
            self.set
                .analysis_template(referrer.namespace.as_deref(), name)
                .map(|(_, t)| ResolvedTemplate {
                    name: name.to_string(),
                    kind: "AnalysisTemplate",
                    metrics: &t.spec.metrics,
                    args: &t.spec.args,
                })
        }
    }

    /// When the template nested as (`cluster`, `name`) in `document` leads back to `document`,
    /// the chain of names from `document` back to itself.
    fn cycle_through(&self, document: &Document, cluster: bool, name: &str) -> Option<Vec<String>> {
        let own = (
            document.kind == "ClusterAnalysisTemplate",
            document.name.clone(),
        );
        let label = |(cluster, name): &(bool, String)| {
            let name = crate::manifest::printable(name);
            if *cluster {
                format!("cluster:{name}")
            } else {
                name
            }
        };
        // Depth-first, each template once: the set of templates is finite, so this ends.
        let mut seen = HashSet::new();
        let mut stack = vec![(vec![own.clone(), (cluster, name.to_string())])];
        while let Some(chain) = stack.pop() {
            let last = chain.last().cloned().unwrap_or_default();
            if last == own {
                return Some(chain.iter().map(label).collect());
            }
            if !seen.insert(last.clone()) {
                continue;
            }
            for next in self.nested_refs(document, last.0, &last.1) {
                let mut longer = chain.clone();
                longer.push(next);
                stack.push(longer);
            }
        }
        None
    }

    /// Nested `spec.templates` of a template, by (cluster, name).
    fn nested_refs(&self, referrer: &Document, cluster: bool, name: &str) -> Vec<(bool, String)> {
        let spec = if cluster {
            self.set
                .cluster_analysis_template(name)
                .map(|(_, t)| &t.spec.template)
        } else {
            self.set
                .analysis_template(referrer.namespace.as_deref(), name)
                .map(|(_, t)| &t.spec)
        };
        spec.map(|s| {
            s.templates
                .iter()
                .map(|t| (t.cluster_scope, t.template_name.clone()))
                .collect()
        })
        .unwrap_or_default()
    }

    fn missing_template(
        &mut self,
        document: &Document,
        cluster: bool,
        name: &str,
        path: &FieldPath,
    ) {
        if self.options.is_external_template(cluster, name) {
            return;
        }
        let (kind, flag) = if cluster {
            ("ClusterAnalysisTemplate", format!("cluster:{name}"))
        } else {
            ("AnalysisTemplate", name.to_string())
        };
        self.problems.push(document.problem(
            Severity::Error,
            Rule::Reference,
            path,
            format!("{kind} `{name}` is not among the inputs"),
            Some(format!(
                "pass the file that defines it, or use `--external-template {flag}` if it already exists in the cluster"
            )),
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn analysis(
        &mut self,
        document: &Document,
        usage: AnalysisUse,
        uses: &[TemplateUse],
        caller_args: &[CallerArg],
        args_path: &FieldPath,
        rollout_analysis: Option<(&RolloutAnalysis, &FieldPath)>,
    ) {
        // Resolve every template, following nested `templates`.
        let mut resolved: Vec<(ResolvedTemplate<'a>, FieldPath)> = Vec::new();
        let mut complete = true;
        let mut queue: Vec<(bool, String, FieldPath, bool)> = uses
            .iter()
            .map(|u| (u.cluster, u.name.clone(), u.path.clone(), true))
            .collect();
        let mut seen = HashSet::new();
        while let Some((cluster, name, path, direct)) = queue.pop() {
            if name.is_empty() || !seen.insert((cluster, name.clone())) {
                continue;
            }
            match self.template(document, cluster, &name) {
                Some(template) => {
                    for (c, n) in self.nested_refs(document, cluster, &name) {
                        queue.push((c, n, path.clone(), false));
                    }
                    resolved.push((template, path));
                }
                None => {
                    complete = false;
                    // Missing nested templates are reported at the template that nests them.
                    if direct {
                        self.missing_template(document, cluster, &name, &path);
                    }
                }
            }
        }
        resolved.reverse();

        // Arguments: merge the templates' declarations, then check what the caller supplies.
        let mut declared: BTreeMap<&str, (Option<&str>, bool, &str)> = BTreeMap::new();
        for (template, path) in &resolved {
            for arg in template.args {
                let value = arg.value.as_deref();
                match declared.get(arg.name.as_str()) {
                    Some((Some(previous), _, _)) if value.is_some_and(|v| v != *previous) => {
                        self.problems.push(document.problem(
                            Severity::Error,
                            Rule::Reference,
                            path,
                            format!(
                                "Argument `{}` specified multiple times with different values: '{}', '{}'",
                                arg.name,
                                previous,
                                value.unwrap_or_default()
                            ),
                            Some("give the argument the same default in every template, or none".into()),
                        ));
                    }
                    Some((Some(_), _, _)) => {}
                    _ => {
                        declared.insert(
                            arg.name.as_str(),
                            (value, arg.value_from.is_some(), template.name.as_str()),
                        );
                    }
                }
            }
        }
        let supplied: HashSet<&str> = caller_args
            .iter()
            .filter(|a| a.supplied)
            .map(|a| a.name.as_str())
            .collect();
        for (name, (value, from, template)) in &declared {
            if value.is_none() && !from && !supplied.contains(name) {
                let kind = resolved
                    .iter()
                    .find(|(t, _)| t.name == *template)
                    .map_or("AnalysisTemplate", |(t, _)| t.kind);
                self.problems.push(document.problem(
                    Severity::Error,
                    Rule::Reference,
                    args_path,
                    format!("argument `{name}` required by {kind} `{template}` is not supplied"),
                    Some(format!(
                        "add `- name: {name}` with a `value` or `valueFrom` to these `args`"
                    )),
                ));
            }
        }
        if complete {
            for (i, arg) in caller_args.iter().enumerate() {
                if !arg.name.is_empty() && !declared.contains_key(arg.name.as_str()) {
                    self.problems.push(document.problem(
                        Severity::Warning,
                        Rule::Reference,
                        &args_path.index(i).key("name"),
                        format!(
                            "argument `{}` is not declared by any of the templates",
                            arg.name
                        ),
                        Some("remove it, or declare it under the template's `spec.args`".into()),
                    ));
                }
            }
        }

        // Metrics: unique names across templates; step and promotion analyses must end.
        let mut names: HashMap<&str, &str> = HashMap::new();
        for (template, path) in &resolved {
            for metric in template.metrics {
                if names
                    .insert(metric.name.as_str(), template.name.as_str())
                    .is_some()
                {
                    self.problems.push(document.problem(
                        Severity::Error,
                        Rule::Reference,
                        path,
                        format!("two metrics have the same name '{}'", metric.name),
                        Some("rename one of the metrics: the templates' metrics are merged into one AnalysisRun".into()),
                    ));
                }
                let must_end = matches!(
                    usage,
                    AnalysisUse::Step | AnalysisUse::PrePromotion | AnalysisUse::PostPromotion
                );
                if must_end && runs_indefinitely(metric, template.args, caller_args) {
                    let count = match &metric.count {
                        None => "<nil>".to_string(),
                        Some(IntOrString::Int(i)) => i.to_string(),
                        Some(IntOrString::String(s)) => s.clone(),
                    };
                    self.problems.push(document.problem(
                        Severity::Error,
                        Rule::Reference,
                        path,
                        m::runs_indefinitely(&template.name, &metric.name, &count),
                        Some("give the metric a `count`: step and promotion analyses must end; only background analysis may run until the rollout completes".into()),
                    ));
                }
            }
        }
        if complete && let Some((analysis, path)) = rollout_analysis {
            let metric_names: Vec<&str> = names.keys().copied().collect();
            let mut findings = super::Findings::default();
            super::analysis::metric_rules(
                &mut findings,
                &analysis.dry_run,
                &analysis.measurement_retention,
                &metric_names,
                path,
            );
            self.problems
                .extend(findings.into_vec().iter().map(|f| f.locate(document)));
        }
    }

    fn rollout(&mut self, document: &Document, rollout: &Rollout) {
        let spec = &rollout.spec;
        let strategy = FieldPath::parse("spec.strategy");
        if let Some(canary) = spec.canary() {
            let path = strategy.key("canary");
            if let Some(background) = &canary.analysis {
                self.rollout_analysis(
                    document,
                    AnalysisUse::Background,
                    &background.analysis,
                    &path.key("analysis"),
                );
            }
            for (i, step) in canary.steps.iter().enumerate() {
                let at = path.key("steps").index(i);
                if let Some(analysis) = &step.analysis {
                    self.rollout_analysis(
                        document,
                        AnalysisUse::Step,
                        analysis,
                        &at.key("analysis"),
                    );
                }
                if let Some(experiment) = &step.experiment {
                    for (j, analysis) in experiment.analyses.iter().enumerate() {
                        let ap = at.key("experiment").key("analyses").index(j);
                        let args = caller_args(&analysis.args);
                        self.analysis(
                            document,
                            AnalysisUse::Experiment,
                            &[TemplateUse {
                                cluster: analysis.cluster_scope,
                                name: analysis.template_name.clone(),
                                path: ap.key("templateName"),
                            }],
                            &args,
                            &ap.key("args"),
                            None,
                        );
                    }
                }
            }
        }
        if let Some(blue_green) = spec.blue_green() {
            let path = strategy.key("blueGreen");
            if let Some(analysis) = &blue_green.pre_promotion_analysis {
                self.rollout_analysis(
                    document,
                    AnalysisUse::PrePromotion,
                    analysis,
                    &path.key("prePromotionAnalysis"),
                );
            }
            if let Some(analysis) = &blue_green.post_promotion_analysis {
                self.rollout_analysis(
                    document,
                    AnalysisUse::PostPromotion,
                    analysis,
                    &path.key("postPromotionAnalysis"),
                );
            }
        }
        for (at, arg) in all_rollout_args(rollout) {
            if let Some(field) = arg.value_from.as_ref().and_then(|v| v.field_ref.as_ref())
                && !field.field_path.starts_with("metadata")
                && let Err(error) = extract_value(&document.raw, &field.field_path)
            {
                self.problems.push(document.problem(
                    Severity::Warning,
                    Rule::Reference,
                    &at.keys("valueFrom.fieldRef.fieldPath"),
                    format!("fieldRef `{}` does not resolve in this Rollout: {error}", field.field_path),
                    Some("point fieldPath at a field of the Rollout that holds a string, number or boolean".into()),
                ));
            }
        }
        self.workload_and_services(document, rollout);
        if let Some(canary) = spec.canary() {
            self.traffic_objects(document, rollout, canary);
        }
    }

    fn rollout_analysis(
        &mut self,
        document: &Document,
        usage: AnalysisUse,
        analysis: &RolloutAnalysis,
        path: &FieldPath,
    ) {
        let uses: Vec<TemplateUse> = analysis
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| TemplateUse {
                cluster: t.cluster_scope,
                name: t.template_name.clone(),
                path: path.key("templates").index(i).key("templateName"),
            })
            .collect();
        let args = caller_args(&analysis.args);
        self.analysis(
            document,
            usage,
            &uses,
            &args,
            &path.key("args"),
            Some((analysis, path)),
        );
    }

    /// Report a referenced object of `kind` that is not among the inputs.
    fn not_found(
        &mut self,
        document: &Document,
        kind: &'static KindRef,
        name: &str,
        path: &FieldPath,
    ) {
        let flag_kind = kind.kind.to_lowercase();
        if self.options.is_external(&flag_kind, name) {
            return;
        }
        if self.set.has_kind(kind) {
            self.problems.push(document.problem(
                Severity::Error,
                Rule::Reference,
                path,
                format!("{} `{name}` is not among the inputs", kind.kind),
                Some(format!(
                    "pass its manifest, or use `--external {flag_kind}/{name}` if it already exists in the cluster"
                )),
            ));
        } else if self.assumed.insert(kind.kind) {
            self.problems.push(document.problem(
                Severity::Warning,
                Rule::Reference,
                path,
                format!(
                    "no {} is among the inputs: assuming `{name}` and the other referenced ones exist in the cluster",
                    kind.kind
                ),
                Some(format!(
                    "pass the {} manifests to check them, or name each with `--external {flag_kind}/NAME`",
                    kind.kind
                )),
            ));
        }
    }

    /// Look up a referenced object, reporting it when it is not there.
    fn lookup(
        &mut self,
        document: &Document,
        kind: &'static KindRef,
        namespace: Option<&str>,
        name: &str,
        path: &FieldPath,
    ) -> Option<&'a Document> {
        if name.is_empty() {
            return None;
        }
        let found = self
            .set
            .find(kind, namespace.or(document.namespace.as_deref()), name);
        if found.is_none() {
            self.not_found(document, kind, name, path);
        }
        found
    }

    fn workload_and_services(&mut self, document: &Document, rollout: &Rollout) {
        let spec = &rollout.spec;
        let mut template_labels: Option<BTreeMap<String, String>> = spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone());
        if let Some(workload) = &spec.workload_ref {
            let kind: &'static KindRef = match workload.kind.as_str() {
                "Deployment" => &kinds::DEPLOYMENT,
                "ReplicaSet" => &kinds::REPLICA_SET,
                "PodTemplate" => &kinds::POD_TEMPLATE,
                _ => return,
            };
            let path = FieldPath::parse("spec.workloadRef.name");
            template_labels = self
                .lookup(document, kind, None, &workload.name, &path)
                .and_then(|w| {
                    w.field("spec.template.metadata.labels")
                        .or_else(|| w.field("template.metadata.labels"))
                })
                .and_then(|labels| serde_json::from_value(labels.clone()).ok());
        }

        let strategy = FieldPath::parse("spec.strategy");
        let mut services: Vec<(ServiceRole, &str, FieldPath)> = Vec::new();
        if let Some(canary) = spec.canary() {
            let path = strategy.key("canary");
            services.push((
                ServiceRole::Canary,
                &canary.canary_service,
                path.key("canaryService"),
            ));
            services.push((
                ServiceRole::Stable,
                &canary.stable_service,
                path.key("stableService"),
            ));
            if let Some(ping_pong) = &canary.ping_pong {
                services.push((
                    ServiceRole::Ping,
                    &ping_pong.ping_service,
                    path.keys("pingPong.pingService"),
                ));
                services.push((
                    ServiceRole::Pong,
                    &ping_pong.pong_service,
                    path.keys("pingPong.pongService"),
                ));
            }
            if let Some(routing) = &canary.traffic_routing {
                if let Some(smi) = &routing.smi {
                    services.push((
                        ServiceRole::Root,
                        &smi.root_service,
                        path.keys("trafficRouting.smi.rootService"),
                    ));
                }
                if let Some(alb) = &routing.alb {
                    services.push((
                        ServiceRole::Root,
                        &alb.root_service,
                        path.keys("trafficRouting.alb.rootService"),
                    ));
                }
            }
        }
        if let Some(blue_green) = spec.blue_green() {
            let path = strategy.key("blueGreen");
            services.push((
                ServiceRole::Active,
                &blue_green.active_service,
                path.key("activeService"),
            ));
            services.push((
                ServiceRole::Preview,
                &blue_green.preview_service,
                path.key("previewService"),
            ));
        }
        let mut checked = HashSet::new();
        for (role, name, path) in services {
            if name.is_empty() || !checked.insert((name, role == ServiceRole::Root)) {
                continue;
            }
            let Some(service) = self.lookup(document, &kinds::SERVICE, None, name, &path) else {
                continue;
            };
            if role == ServiceRole::Root {
                continue;
            }
            if let Some(owner) = service
                .field("metadata.annotations")
                .and_then(|a| a.get(MANAGED_BY_ROLLOUTS_ANNOTATION))
                .and_then(Value::as_str)
                .filter(|owner| *owner != document.name)
            {
                self.problems.push(
                    document.problem(
                        Severity::Error,
                        Rule::Reference,
                        &path,
                        format!("Service \"{name}\" is managed by another Rollout (`{owner}`)"),
                        Some(
                            "each Service may be managed by one Rollout: use a Service of its own"
                                .into(),
                        ),
                    ),
                );
            }
            let Some(labels) = &template_labels else {
                continue;
            };
            let ephemeral = ephemeral_labels(rollout, role);
            let selector = service
                .field("spec.selector")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (key, value) in &selector {
                if key == POD_TEMPLATE_HASH_LABEL {
                    continue;
                }
                let value = value.as_str().unwrap_or_default();
                let in_template = labels.get(key).is_some_and(|v| v == value);
                let in_ephemeral =
                    ephemeral.is_some_and(|e| e.get(key).is_some_and(|v| v == value));
                if !in_template && !in_ephemeral {
                    self.problems.push(document.problem(
                        Severity::Error,
                        Rule::Reference,
                        &path,
                        m::service_label_mismatch(name, key),
                        Some(format!(
                            "the Service selects `{key}: {value}`, which the rollout's pods do not carry: fix the Service's selector or the pod template's labels"
                        )),
                    ));
                }
            }
        }
    }

    fn traffic_objects(&mut self, document: &Document, rollout: &Rollout, canary: &CanaryStrategy) {
        let Some(routing) = &canary.traffic_routing else {
            return;
        };
        let path = FieldPath::parse("spec.strategy.canary.trafficRouting");
        if let Some(nginx) = &routing.nginx {
            let mut ingresses = Vec::new();
            if !nginx.stable_ingress.is_empty() {
                ingresses.push((
                    nginx.stable_ingress.as_str(),
                    path.keys("nginx.stableIngress"),
                ));
            }
            for (i, name) in nginx.stable_ingresses.iter().enumerate() {
                ingresses.push((name.as_str(), path.keys("nginx.stableIngresses").index(i)));
            }
            for (name, at) in ingresses {
                self.ingress(document, name, &canary.stable_service, &at);
            }
        }
        if let Some(alb) = &routing.alb {
            let service = if alb.root_service.is_empty() {
                &canary.stable_service
            } else {
                &alb.root_service
            };
            let mut ingresses = Vec::new();
            if !alb.ingress.is_empty() {
                ingresses.push((alb.ingress.as_str(), path.keys("alb.ingress")));
            }
            for (i, name) in alb.ingresses.iter().enumerate() {
                ingresses.push((name.as_str(), path.keys("alb.ingresses").index(i)));
            }
            for (name, at) in ingresses {
                self.ingress(document, name, service, &at);
            }
        }
        if let Some(istio) = &routing.istio {
            let mut virtual_services = Vec::new();
            if let Some(vs) = &istio.virtual_service {
                virtual_services.push((vs, path.keys("istio.virtualService.name")));
            }
            for (i, vs) in istio.virtual_services.iter().enumerate() {
                virtual_services
                    .push((vs, path.keys("istio.virtualServices").index(i).key("name")));
            }
            for (vs, at) in virtual_services {
                let (namespace, name) = match vs.name.split_once('/') {
                    Some((ns, name)) => (Some(ns), name),
                    None => (None, vs.name.as_str()),
                };
                if let Some(found) =
                    self.lookup(document, &kinds::VIRTUAL_SERVICE, namespace, name, &at)
                {
                    for error in istio_routes(rollout, canary, vs, found) {
                        self.problems.push(document.problem(
                            Severity::Error,
                            Rule::Reference,
                            &at,
                            error,
                            Some("make the VirtualService route to both the stable and the canary (Services or DestinationRule subsets)".into()),
                        ));
                    }
                }
            }
            if let Some(rule) = &istio.destination_rule {
                let at = path.keys("istio.destinationRule.name");
                if let Some(found) =
                    self.lookup(document, &kinds::DESTINATION_RULE, None, &rule.name, &at)
                {
                    let subsets: Vec<&str> = found
                        .field("spec.subsets")
                        .and_then(Value::as_array)
                        .map(|s| s.iter().filter_map(|s| s.get("name")?.as_str()).collect())
                        .unwrap_or_default();
                    for (subset, field) in [
                        (&rule.canary_subset_name, "canarySubsetName"),
                        (&rule.stable_subset_name, "stableSubsetName"),
                    ] {
                        if !subsets.contains(&subset.as_str()) {
                            self.problems.push(document.problem(
                                Severity::Error,
                                Rule::Reference,
                                &path.keys("istio.destinationRule").key(field),
                                format!(
                                    "DestinationRule `{}` has no subset named `{subset}`",
                                    rule.name
                                ),
                                Some(
                                    "add the subset to the DestinationRule's `spec.subsets`".into(),
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if let Some(Ok(gateway)) = routing.gateway_api_config() {
            let base = if routing.plugins.contains_key(GATEWAY_API_PLUGIN) {
                path.key("plugins").key(GATEWAY_API_PLUGIN)
            } else {
                path.key("gatewayApi")
            };
            let namespace = (!gateway.namespace.is_empty()).then_some(gateway.namespace.as_str());
            let mut routes: Vec<(&'static KindRef, &str, FieldPath)> = Vec::new();
            if !gateway.http_route.is_empty() {
                routes.push((
                    &kinds::HTTP_ROUTE,
                    &gateway.http_route,
                    base.key("httpRoute"),
                ));
            }
            for (i, r) in gateway.http_routes.iter().enumerate() {
                routes.push((
                    &kinds::HTTP_ROUTE,
                    &r.name,
                    base.key("httpRoutes").index(i).key("name"),
                ));
            }
            if !gateway.grpc_route.is_empty() {
                routes.push((
                    &kinds::GRPC_ROUTE,
                    &gateway.grpc_route,
                    base.key("grpcRoute"),
                ));
            }
            for (i, r) in gateway.grpc_routes.iter().enumerate() {
                routes.push((
                    &kinds::GRPC_ROUTE,
                    &r.name,
                    base.key("grpcRoutes").index(i).key("name"),
                ));
            }
            for (kind, name, at) in routes {
                let Some(found) = self.lookup(document, kind, namespace, name, &at) else {
                    continue;
                };
                let backends: Vec<&str> = found
                    .field("spec.rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|rule| rule.get("backendRefs")?.as_array())
                    .flatten()
                    .filter_map(|b| b.get("name")?.as_str())
                    .collect();
                for (service, role) in [
                    (&canary.canary_service, "canary"),
                    (&canary.stable_service, "stable"),
                ] {
                    if !service.is_empty() && !backends.contains(&service.as_str()) {
                        self.problems.push(document.problem(
                            Severity::Error,
                            Rule::Reference,
                            &at,
                            format!("{} `{name}` has no backendRef to the {role} Service `{service}`", kind.kind),
                            Some("list both the stable and the canary Service under the route's `backendRefs`".into()),
                        ));
                    }
                }
            }
        }
        if let Some(traefik) = &routing.traefik {
            self.lookup(
                document,
                &kinds::TRAEFIK_SERVICE,
                None,
                &traefik.weighted_traefik_service_name,
                &path.keys("traefik.weightedTraefikServiceName"),
            );
        }
    }

    fn ingress(&mut self, document: &Document, name: &str, service: &str, path: &FieldPath) {
        let Some(ingress) = self.lookup(document, &kinds::INGRESS, None, name, path) else {
            return;
        };
        if service.is_empty() {
            return;
        }
        let has_rule = ingress
            .field("spec.rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|rule| rule.get("http")?.get("paths")?.as_array())
            .flatten()
            .filter_map(|p| p.get("backend"))
            .any(|backend| {
                backend
                    .get("service")
                    .and_then(|s| s.get("name"))
                    .and_then(Value::as_str)
                    == Some(service)
                    || backend.get("serviceName").and_then(Value::as_str) == Some(service)
            });
        if !has_rule {
            self.problems.push(document.problem(
                Severity::Error,
                Rule::Reference,
                path,
                m::ingress_without_service(name, service),
                Some(format!(
                    "the Ingress needs a rule whose backend is the Service `{service}`"
                )),
            ));
        }
    }
}

/// The arguments a rollout passes: a value, a pod-template hash or a field reference all count.
fn caller_args(args: &[AnalysisRunArgument]) -> Vec<CallerArg> {
    args.iter()
        .map(|a| CallerArg {
            name: a.name.clone(),
            supplied: !a.value.is_empty()
                || a.value_from
                    .as_ref()
                    .is_some_and(|v| v.pod_template_hash_value.is_some() || v.field_ref.is_some()),
            value: (!a.value.is_empty()).then(|| a.value.clone()),
        })
        .collect()
}

/// Every analysis argument of a rollout, with its path.
fn all_rollout_args(rollout: &Rollout) -> Vec<(FieldPath, &AnalysisRunArgument)> {
    let strategy = FieldPath::parse("spec.strategy");
    let mut lists: Vec<(&[AnalysisRunArgument], FieldPath)> = Vec::new();
    if let Some(canary) = rollout.spec.canary() {
        if let Some(background) = &canary.analysis {
            lists.push((
                &background.analysis.args,
                strategy.keys("canary.analysis.args"),
            ));
        }
        for (i, step) in canary.steps.iter().enumerate() {
            let at = strategy.keys("canary.steps").index(i);
            if let Some(analysis) = &step.analysis {
                lists.push((&analysis.args, at.keys("analysis.args")));
            }
            for (j, analysis) in step
                .experiment
                .iter()
                .flat_map(|e| e.analyses.iter().enumerate())
            {
                lists.push((
                    &analysis.args,
                    at.keys("experiment.analyses").index(j).key("args"),
                ));
            }
        }
    }
    if let Some(blue_green) = rollout.spec.blue_green() {
        if let Some(analysis) = &blue_green.pre_promotion_analysis {
            lists.push((
                &analysis.args,
                strategy.keys("blueGreen.prePromotionAnalysis.args"),
            ));
        }
        if let Some(analysis) = &blue_green.post_promotion_analysis {
            lists.push((
                &analysis.args,
                strategy.keys("blueGreen.postPromotionAnalysis.args"),
            ));
        }
    }
    lists
        .into_iter()
        .flat_map(|(args, path)| {
            args.iter()
                .enumerate()
                .map(move |(i, arg)| (path.index(i), arg))
        })
        .collect()
}

fn ephemeral_labels(rollout: &Rollout, role: ServiceRole) -> Option<&BTreeMap<String, String>> {
    let spec = &rollout.spec;
    let metadata = match role {
        ServiceRole::Canary => spec.canary()?.canary_metadata.as_ref(),
        ServiceRole::Stable => spec.canary()?.stable_metadata.as_ref(),
        ServiceRole::Active => spec.blue_green()?.active_metadata.as_ref(),
        ServiceRole::Preview => spec.blue_green()?.preview_metadata.as_ref(),
        _ => None,
    };
    metadata.map(|m| &m.labels)
}

/// Whether a metric would run until terminated: no count (or 0) and an interval. A templated
/// count is resolved with the caller's or the template's argument values when it can be.
fn runs_indefinitely(metric: &Metric, template_args: &[Argument], caller: &[CallerArg]) -> bool {
    let count = match &metric.count {
        None => 0,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) if is_templated(s) => {
            let Some(name) = arg_placeholders(s).into_iter().next() else {
                return false;
            };
            let value = caller
                .iter()
                .find(|a| a.name == name)
                .and_then(|a| a.value.clone())
                .or_else(|| {
                    template_args
                        .iter()
                        .find(|a| a.name == name)
                        .and_then(|a| a.value.clone())
                });
            match value.and_then(|v| v.trim().parse().ok()) {
                Some(count) => count,
                None => return false,
            }
        }
        Some(IntOrString::String(s)) => s.trim().parse().unwrap_or(0),
    };
    count == 0 && !metric.interval.is_empty()
}

/// Argo's `extractValueFromRollout`: a dotted/indexed path into the Rollout that must end in a
/// primitive value.
fn extract_value(rollout: &Value, path: &str) -> Result<String, String> {
    let mut current = rollout;
    for section in path.split(['.', '[', ']']).filter(|s| !s.is_empty()) {
        current = match current {
            Value::Array(items) => {
                let index: usize = section
                    .parse()
                    .map_err(|_| format!("invalid index '{section}'"))?;
                items
                    .get(index)
                    .ok_or_else(|| format!("index {index} out of range"))?
            }
            Value::Object(map) => map.get(section).unwrap_or(&Value::Null),
            _ => return Err(format!("invalid path {path} in rollout")),
        };
    }
    match current {
        Value::Null => Err(format!("invalid path {path} in rollout")),
        Value::Array(_) | Value::Object(_) => Err(format!(
            "path {path} in rollout must terminate in a primitive value"
        )),
        Value::String(s) => Ok(s.clone()),
        other => Ok(other.to_string()),
    }
}

/// Argo's Istio route checks for one VirtualService: the routes the rollout names exist, and
/// each routes to both the stable and the canary.
fn istio_routes(
    rollout: &Rollout,
    canary: &CanaryStrategy,
    vs: &rollout_runner_api::crd::IstioVirtualService,
    found: &Document,
) -> Vec<String> {
    let name = &found.name;
    let destination_rule = canary
        .traffic_routing
        .as_ref()
        .and_then(|r| r.istio.as_ref())
        .and_then(|i| i.destination_rule.as_ref());
    let managed: Vec<&str> = canary
        .traffic_routing
        .as_ref()
        .map(|r| r.managed_routes.iter().map(|m| m.name.as_str()).collect())
        .unwrap_or_default();
    // Argo's `GetStableAndCanaryServices(rollout, false)`: the ping-pong Services when neither
    // canaryService nor stableService is set (ping is the stable one once the status says so).
    let (stable_service, canary_service) = match &canary.ping_pong {
        Some(pp) if canary.stable_service.is_empty() && canary.canary_service.is_empty() => {
            if rollout
                .status
                .as_ref()
                .is_some_and(|s| s.canary.stable_ping_pong == "ping")
            {
                (pp.ping_service.as_str(), pp.pong_service.as_str())
            } else {
                (pp.pong_service.as_str(), pp.ping_service.as_str())
            }
        }
        _ => (
            canary.stable_service.as_str(),
            canary.canary_service.as_str(),
        ),
    };
    let check_destinations = |route: &Value| -> Result<(), String> {
        let destinations: Vec<(&str, &str)> = route
            .get("route")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|d| {
                let destination = d.get("destination");
                let host = destination
                    .and_then(|d| d.get("host"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let subset = destination
                    .and_then(|d| d.get("subset"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                (host.split('.').next().unwrap_or_default(), subset)
            })
            .collect();
        match destination_rule {
            Some(rule) => {
                if !destinations
                    .iter()
                    .any(|(_, s)| *s == rule.canary_subset_name)
                {
                    return Err(format!(
                        "Canary DestinationRule subset '{}' not found in route",
                        rule.canary_subset_name
                    ));
                }
                if !destinations
                    .iter()
                    .any(|(_, s)| *s == rule.stable_subset_name)
                {
                    return Err(format!(
                        "Stable DestinationRule subset '{}' not found in route",
                        rule.stable_subset_name
                    ));
                }
            }
            None => {
                if !destinations.iter().any(|(h, _)| *h == canary_service) {
                    return Err(format!(
                        "Canary Service '{canary_service}' not found in route"
                    ));
                }
                if !destinations.iter().any(|(h, _)| *h == stable_service) {
                    return Err(format!(
                        "Stable Service '{stable_service}' not found in route"
                    ));
                }
            }
        }
        Ok(())
    };
    let mut errors = Vec::new();
    let http: Vec<&Value> = found
        .field("spec.http")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let tls: Vec<&Value> = found
        .field("spec.tls")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let tcp: Vec<&Value> = found
        .field("spec.tcp")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let route_name = |r: &Value| {
        r.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let uses_http = !vs.routes.is_empty() || (vs.tls_routes.is_empty() && vs.tcp_routes.is_empty());
    // Argo checks only the kinds of routes the VirtualService has (`GetHttpRoutesI` and its
    // TLS and TCP twins fail when the list is absent, and that kind is skipped).
    let present = |kind: &str| found.field(kind).is_some_and(Value::is_array);
    if !present("spec.http") && !present("spec.tls") && !present("spec.tcp") {
        errors.push(format!(
            "Unable to get any of the HTTP, TCP or TLS routes for the Istio VirtualService `{name}`"
        ));
        return errors;
    }
    if uses_http && present("spec.http") {
        let mut selected = Vec::new();
        if vs.routes.is_empty() {
            let unmanaged: Vec<&&Value> = http
                .iter()
                .filter(|r| !managed.contains(&route_name(r).as_str()))
                .collect();
            if unmanaged.len() > 1 {
                errors.push(format!("Istio VirtualService `{name}` has invalid HTTP routes. Error: spec.http[] should be set in VirtualService and it must have exactly one route when omitting spec.strategy.canary.trafficRouting.istio.virtualService.routes"));
            } else if let Some(route) = unmanaged.first() {
                selected.push(**route);
            }
        } else {
            for wanted in &vs.routes {
                match http.iter().find(|r| route_name(r) == *wanted) {
                    Some(route) => selected.push(*route),
                    None => errors.push(format!(
                        "Istio VirtualService `{name}` has invalid HTTP routes. Error: HTTP Route '{wanted}' is not found in the defined Virtual Service."
                    )),
                }
            }
        }
        for route in selected {
            if let Err(error) = check_destinations(route) {
                errors.push(format!(
                    "Istio VirtualService `{name}` has invalid HTTP routes. Error: {error}"
                ));
            }
        }
    }
    let port_of = |m: &Value| m.get("port").and_then(Value::as_i64);
    let tls_routes = if present("spec.tls") {
        &vs.tls_routes[..]
    } else {
        &[]
    };
    for wanted in tls_routes {
        let matching: Vec<&&Value> = tls
            .iter()
            .filter(|route| {
                route
                    .get("match")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|m| {
                        let hosts: Vec<&str> = m
                            .get("sniHosts")
                            .and_then(Value::as_array)
                            .map(|h| h.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        wanted.port.is_none_or(|p| port_of(m) == Some(p))
                            && wanted.sni_hosts.iter().all(|h| hosts.contains(&h.as_str()))
                    })
            })
            .collect();
        if matching.is_empty() {
            errors.push(format!("Istio VirtualService `{name}` has invalid TLS routes. Error: no TLS route matches port {:?} and sniHosts {:?}", wanted.port, wanted.sni_hosts));
        }
        for route in matching {
            if let Err(error) = check_destinations(route) {
                errors.push(format!(
                    "Istio VirtualService `{name}` has invalid TLS routes. Error: {error}"
                ));
            }
        }
    }
    let tcp_routes = if present("spec.tcp") {
        &vs.tcp_routes[..]
    } else {
        &[]
    };
    for wanted in tcp_routes {
        let matching: Vec<&&Value> = tcp
            .iter()
            .filter(|route| {
                route
                    .get("match")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|m| wanted.port.is_none_or(|p| port_of(m) == Some(p)))
            })
            .collect();
        if matching.is_empty() {
            errors.push(format!("Istio VirtualService `{name}` has invalid TCP routes. Error: no TCP route matches port {:?}", wanted.port));
        }
        for route in matching {
            if let Err(error) = check_destinations(route) {
                errors.push(format!(
                    "Istio VirtualService `{name}` has invalid TCP routes. Error: {error}"
                ));
            }
        }
    }
    let _ = rollout;
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_values_like_argo() {
        let rollout = json!({"spec": {"template": {"spec": {"containers": [{"image": "a:1"}]}}, "replicas": 3}});
        assert_eq!(
            extract_value(&rollout, "spec.template.spec.containers[0].image"),
            Ok("a:1".into())
        );
        assert_eq!(extract_value(&rollout, "spec.replicas"), Ok("3".into()));
        assert!(extract_value(&rollout, "spec.template").is_err());
        assert!(extract_value(&rollout, "spec.missing").is_err());
        assert!(extract_value(&rollout, "spec.template.spec.containers[5].image").is_err());
    }
}
