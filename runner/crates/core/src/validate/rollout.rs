//! Argo's rules for a Rollout on its own (`ValidateRollout` in `validation.go`), plus durations
//! that must parse and features rollout-runner does not drive.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::messages as m;
use super::{Finding, Findings, check_duration};
use crate::manifest::FieldPath;
use crate::manifest::{Rule, Severity};
use rollout_runner_api::crd::{
    AnalysisRunArgument, AntiAffinity, BlueGreenStrategy, CanaryStep, CanaryStrategy,
    GATEWAY_API_PLUGIN, IntOrString, Rollout, RolloutAnalysis, RolloutTrafficRouting, StringMatch,
};

/// Every rule that concerns the Rollout alone. Paths are real field paths
/// (`spec.strategy.canary.steps[1]`), even where Argo prints `spec.strategy.steps[1]`.
pub fn validate_rollout(rollout: &Rollout) -> Vec<Finding> {
    let mut f = Findings::default();
    let spec = &rollout.spec;
    let path = FieldPath::parse("spec");

    non_negative(&mut f, &path.key("replicas"), spec.replicas);
    if spec.workload_ref.is_none() {
        match &spec.selector {
            None => f.spec(
                path.key("selector"),
                m::missing_field(".spec.selector"),
                "add `selector.matchLabels` matching the pod template's labels",
            ),
            Some(selector) => {
                let labels = selector.match_labels.as_ref().map_or(0, BTreeMap::len);
                let expressions = selector.match_expressions.as_ref().map_or(0, Vec::len);
                if labels + expressions == 0 {
                    f.spec(
                        path.key("selector"),
                        m::EMPTY_SELECTOR,
                        "add `matchLabels` matching the pod template's labels",
                    );
                }
            }
        }
        pod_template(
            &mut f,
            &path.key("template"),
            spec.template.as_ref(),
            spec.selector.as_ref(),
        );
    } else if let Some(template) = &spec.template {
        // Argo's `EmptyTemplate` looks only at the template's labels and annotations; anything
        // else in it is replaced by the workload's template on every reconcile.
        let metadata = template.metadata.as_ref();
        let labelled = metadata.is_some_and(|m| {
            m.labels.as_ref().is_some_and(|l| !l.is_empty())
                || m.annotations.as_ref().is_some_and(|a| !a.is_empty())
        });
        if labelled {
            f.spec(
                path.key("template"),
                m::TEMPLATE_WITH_WORKLOAD_REF,
                "remove `template`: the pods come from the workload `workloadRef` names",
            );
        } else if template != &PodTemplateSpec::default() {
            f.push(
                Severity::Warning,
                Rule::Spec,
                path.key("template"),
                "`template` is ignored: the pods come from the workload `workloadRef` names",
                Some("remove `template`, or change the workload's pod template instead"),
            );
        }
    }
    if let Some(workload) = &spec.workload_ref {
        let group = workload.api_version.split_once('/').map_or("", |(g, _)| g);
        let known = matches!(
            (group, workload.kind.as_str()),
            ("apps", "Deployment") | ("apps", "ReplicaSet") | ("", "PodTemplate")
        );
        if !known {
            f.spec(
                path.keys("workloadRef.kind"),
                format!("workloadRef kind `{}` is not supported", workload.kind),
                "reference a Deployment, ReplicaSet (apps/v1) or PodTemplate (v1)",
            );
        }
        if !["", "never", "onsuccess", "progressively"].contains(&workload.scale_down.as_str()) {
            f.spec(
                path.keys("workloadRef.scaleDown"),
                format!("unknown workloadRef scaleDown `{}`", workload.scale_down),
                "use `never`, `onsuccess` or `progressively`",
            );
        }
    }
    non_negative(&mut f, &path.key("minReadySeconds"), spec.min_ready_seconds);
    non_negative(
        &mut f,
        &path.key("revisionHistoryLimit"),
        spec.revision_history_limit,
    );
    non_negative(
        &mut f,
        &path.key("progressDeadlineSeconds"),
        spec.progress_deadline_seconds,
    );
    if spec.progress_deadline_seconds_or_default() <= spec.min_ready_seconds_or_default() {
        f.spec(
            path.key("progressDeadlineSeconds"),
            m::PROGRESS_DEADLINE,
            "raise progressDeadlineSeconds (default 600) above minReadySeconds",
        );
    }

    let strategy = path.key("strategy");
    match (&spec.strategy.canary, &spec.strategy.blue_green) {
        (None, None) => f.spec(
            strategy.clone(),
            m::missing_field(".spec.strategy.canary or .spec.strategy.blueGreen"),
            "add `strategy.canary` or `strategy.blueGreen`",
        ),
        (Some(_), Some(_)) => f.spec(
            strategy.clone(),
            m::MULTIPLE_STRATEGIES,
            "keep either `canary` or `blueGreen`",
        ),
        (None, Some(blue_green)) => {
            validate_blue_green(&mut f, rollout, blue_green, &strategy.key("blueGreen"))
        }
        (Some(canary), None) => validate_canary(&mut f, rollout, canary, &strategy.key("canary")),
    }
    notification_subscriptions(&mut f, rollout);
    f.into_vec()
}

/// Argo's notification subscriptions that the controller will not deliver.
fn notification_subscriptions(f: &mut Findings, rollout: &Rollout) {
    use crate::notifications::{SUBSCRIPTIONS_ANNOTATION, subscriptions, unsupported};
    let Some(annotations) = rollout.metadata.annotations.as_ref() else {
        return;
    };
    let path = FieldPath::parse("metadata").key("annotations");
    if annotations.contains_key(SUBSCRIPTIONS_ANNOTATION) {
        f.push(
            Severity::Warning,
            Rule::Unsupported,
            path.key(SUBSCRIPTIONS_ANNOTATION),
            format!("the `{SUBSCRIPTIONS_ANNOTATION}` annotation is not supported by rollout-runner"),
            Some("write one `notifications.argoproj.io/subscribe.<trigger>.<service>` annotation per subscription"),
        );
    }
    for subscription in subscriptions(annotations) {
        if let Some(why) = unsupported(&subscription) {
            f.push(
                Severity::Warning,
                Rule::Unsupported,
                path.key(subscription.key.clone()),
                why,
                Some("the manifest is valid for Argo Rollouts; rollout-runner's controller will not send this notification"),
            );
        }
    }
}

fn non_negative(f: &mut Findings, path: &FieldPath, value: Option<i32>) {
    if value.is_some_and(|v| v < 0) {
        f.spec(path.clone(), m::NON_NEGATIVE, "use 0 or a positive number");
    }
}

/// The strategy's counts and delays: Argo's validation takes any number (the generated
/// differential shows it), so a negative one is only a warning here.
fn non_negative_beyond_argo(f: &mut Findings, path: &FieldPath, value: Option<i32>) {
    if value.is_some_and(|v| v < 0) {
        f.beyond_argo(
            path.clone(),
            m::NON_NEGATIVE,
            "use 0 or a positive number: no count of pods or delay is below 0",
        );
    }
}

/// The parts of Kubernetes' pod template validation that matter most for a rollout: a
/// container, names and images, `restartPolicy: Always`, labels matching the selector.
fn pod_template(
    f: &mut Findings,
    path: &FieldPath,
    template: Option<&PodTemplateSpec>,
    selector: Option<&LabelSelector>,
) {
    let empty = BTreeMap::new();
    let labels = template
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .unwrap_or(&empty);
    if let Some(selector) = selector {
        match selector_matches(selector, labels) {
            Err(()) => f.spec(
                FieldPath::parse("spec.selector"),
                m::INVALID_SELECTOR,
                "matchExpressions operators are In, NotIn, Exists and DoesNotExist",
            ),
            Ok(false) => f.spec(
                path.keys("metadata.labels"),
                m::SELECTOR_DOES_NOT_MATCH,
                "give the pod template every label `spec.selector` requires",
            ),
            Ok(true) => {}
        }
    }
    let containers = template
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or(&[]);
    if containers.is_empty() {
        f.spec(
            path.keys("spec.containers"),
            "the pod template has no containers",
            "add at least one container under `spec.template.spec.containers`",
        );
    }
    let mut names = HashSet::new();
    for (i, container) in containers.iter().enumerate() {
        let at = path.keys("spec.containers").index(i);
        if container.name.is_empty() {
            f.spec(
                at.key("name"),
                "container has no name",
                "give every container a name",
            );
        } else if !names.insert(container.name.as_str()) {
            f.spec(
                at.key("name"),
                format!("duplicate container name `{}`", container.name),
                "container names must be unique within a pod",
            );
        }
        if container.image.as_deref().unwrap_or("").is_empty() {
            f.spec(
                at.key("image"),
                format!("container `{}` has no image", container.name),
                "set `image`",
            );
        }
    }
    if let Some(policy) = template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref())
        .filter(|p| *p != "Always")
    {
        f.spec(
            path.keys("spec.restartPolicy"),
            format!("Unsupported value: \"{policy}\": supported values: \"Always\""),
            "ReplicaSet pods must restart: remove `restartPolicy` or set it to `Always`",
        );
    }
}

/// Whether a label selector matches a set of labels; `Err` for an invalid operator.
pub(crate) fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, ()> {
    for (key, value) in selector.match_labels.iter().flatten() {
        if labels.get(key) != Some(value) {
            return Ok(false);
        }
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_deref().unwrap_or(&[]);
        let label = labels.get(&requirement.key);
        let matches = match requirement.operator.as_str() {
            "In" => label.is_some_and(|l| values.contains(l)),
            "NotIn" => label.is_none_or(|l| !values.contains(l)),
            "Exists" => label.is_some(),
            "DoesNotExist" => label.is_none(),
            _ => return Err(()),
        };
        if !matches {
            return Ok(false);
        }
    }
    Ok(true)
}

fn validate_blue_green(
    f: &mut Findings,
    rollout: &Rollout,
    blue_green: &BlueGreenStrategy,
    path: &FieldPath,
) {
    if blue_green.active_service.is_empty() {
        f.spec(
            path.key("activeService"),
            m::missing_field(".spec.strategy.blueGreen.activeService"),
            "name the Service that receives production traffic",
        );
    } else if blue_green.active_service == blue_green.preview_service {
        f.spec(
            path.key("activeService"),
            m::DUPLICATED_SERVICES_BLUE_GREEN,
            "use two different Services for `activeService` and `previewService`",
        );
    }
    if let Some(limit) = blue_green.scale_down_delay_revision_limit
        && rollout.spec.revision_history_limit_or_default() < limit
    {
        f.spec(
            path.key("scaleDownDelayRevisionLimit"),
            m::SCALE_DOWN_LIMIT_LARGER_THAN_REVISION_LIMIT,
            "lower scaleDownDelayRevisionLimit or raise revisionHistoryLimit (default 10)",
        );
    }
    for (value, name) in [
        (blue_green.preview_replica_count, "previewReplicaCount"),
        (blue_green.auto_promotion_seconds, "autoPromotionSeconds"),
        (blue_green.scale_down_delay_seconds, "scaleDownDelaySeconds"),
        (
            blue_green.abort_scale_down_delay_seconds,
            "abortScaleDownDelaySeconds",
        ),
    ] {
        non_negative_beyond_argo(f, &path.key(name), value);
    }
    int_or_percent(
        f,
        &path.key("maxUnavailable"),
        blue_green.max_unavailable.as_ref(),
    );
    anti_affinity(
        f,
        blue_green.anti_affinity.as_ref(),
        &path.key("antiAffinity"),
    );
    for (analysis, name) in [
        (&blue_green.pre_promotion_analysis, "prePromotionAnalysis"),
        (&blue_green.post_promotion_analysis, "postPromotionAnalysis"),
    ] {
        if let Some(analysis) = analysis {
            rollout_analysis(f, analysis, &path.key(name));
        }
    }
}

/// Whether Argo requires `canaryService` and `stableService` with these routers.
fn requires_canary_stable_services(canary: &CanaryStrategy) -> bool {
    let Some(routing) = &canary.traffic_routing else {
        return false;
    };
    (routing.alb.is_some() && canary.ping_pong.is_none())
        || routing
            .istio
            .as_ref()
            .is_some_and(|istio| istio.destination_rule.is_none() && canary.ping_pong.is_none())
        || routing.smi.is_some()
        || routing.apisix.is_some()
        || routing.ambassador.is_some()
        || routing.nginx.is_some()
        || routing.app_mesh.is_some()
        || routing.traefik.is_some()
}

fn has_plugins(routing: &RolloutTrafficRouting) -> bool {
    !routing.plugins.is_empty() || routing.gateway_api.is_some()
}

fn validate_canary(f: &mut Findings, rollout: &Rollout, canary: &CanaryStrategy, path: &FieldPath) {
    int_or_percent(f, &path.key("maxSurge"), canary.max_surge.as_ref());
    int_or_percent(
        f,
        &path.key("maxUnavailable"),
        canary.max_unavailable.as_ref(),
    );
    if int_or_percent_value(&canary.max_surge_or_default()) == 0
        && int_or_percent_value(&canary.max_unavailable_or_default()) == 0
    {
        f.spec(
            path.key("maxSurge"),
            m::MAX_SURGE_MAX_UNAVAILABLE,
            "let at least one of maxSurge and maxUnavailable be above 0",
        );
    }
    if !canary.canary_service.is_empty() && canary.canary_service == canary.stable_service {
        f.spec(
            path.key("stableService"),
            m::DUPLICATED_SERVICES_CANARY,
            "use two different Services for `stableService` and `canaryService`",
        );
    }
    let routing = canary.traffic_routing.as_ref();
    if let Some(ping_pong) = &canary.ping_pong {
        let pp = path.key("pingPong");
        if let Some(routing) = routing
            && routing.alb.is_none()
            && routing.istio.is_none()
            && !has_plugins(routing)
        {
            f.spec(
                path.key("trafficRouting"),
                m::PING_PONG_ROUTERS,
                "use ping-pong with ALB, Istio or a plugin router, or use canaryService and stableService",
            );
        }
        if ping_pong.ping_service.is_empty() {
            f.spec(
                pp.key("pingService"),
                m::PING_PONG_SERVICES,
                "name the ping Service",
            );
        }
        if ping_pong.pong_service.is_empty() {
            f.spec(
                pp.key("pongService"),
                m::PING_PONG_SERVICES,
                "name the pong Service",
            );
        }
        if ping_pong.ping_service == ping_pong.pong_service {
            f.spec(
                pp.key("pingService"),
                m::DUPLICATED_PING_PONG_SERVICES,
                "use two different Services for ping and pong",
            );
        }
        if let Some(alb) = routing.and_then(|r| r.alb.as_ref())
            && alb.root_service.is_empty()
        {
            f.spec(
                path.keys("trafficRouting.alb.rootService"),
                m::ALB_ROOT_SERVICE_FOR_PING_PONG,
                "set `rootService` to the Service the Ingress routes to",
            );
        }
    }
    if requires_canary_stable_services(canary) {
        if canary.stable_service.is_empty() {
            f.spec(
                path.key("stableService"),
                m::TRAFFIC_ROUTING_SERVICES,
                "name the Service that selects the stable pods",
            );
        }
        if canary.canary_service.is_empty() {
            f.spec(
                path.key("canaryService"),
                m::TRAFFIC_ROUTING_SERVICES,
                "name the Service that selects the canary pods",
            );
        }
    }
    match routing {
        None => {
            if canary.scale_down_delay_seconds.is_some() {
                f.spec(
                    path.key("scaleDownDelaySeconds"),
                    m::CANARY_SCALE_DOWN_DELAY,
                    "remove scaleDownDelaySeconds, or configure trafficRouting",
                );
            }
            if canary.dynamic_stable_scale {
                f.spec(
                    path.key("dynamicStableScale"),
                    m::CANARY_DYNAMIC_STABLE_SCALE,
                    "remove dynamicStableScale, or configure trafficRouting",
                );
            }
        }
        Some(routing) => {
            if canary.scale_down_delay_seconds.is_some() && canary.dynamic_stable_scale {
                f.spec(
                    path.key("dynamicStableScale"),
                    m::CANARY_DYNAMIC_STABLE_SCALE_WITH_DELAY,
                    "keep either dynamicStableScale or scaleDownDelaySeconds",
                );
            }
            if routing.max_traffic_weight.is_some()
                && routing.nginx.is_none()
                && !has_plugins(routing)
            {
                f.spec(
                    path.keys("trafficRouting.maxTrafficWeight"),
                    m::CANARY_MAX_WEIGHT_ROUTERS,
                    "remove maxTrafficWeight: other routers always use 100",
                );
            }
            traffic_routing(f, routing, &path.key("trafficRouting"));
        }
    }
    for (value, name) in [
        (canary.scale_down_delay_seconds, "scaleDownDelaySeconds"),
        (
            canary.abort_scale_down_delay_seconds,
            "abortScaleDownDelaySeconds",
        ),
        (
            canary.scale_down_delay_revision_limit,
            "scaleDownDelayRevisionLimit",
        ),
        (canary.min_pods_per_replica_set, "minPodsPerReplicaSet"),
    ] {
        non_negative_beyond_argo(f, &path.key(name), value);
    }
    if let Some(threshold) = &canary.replica_progress_threshold
        && !["Percent", "Pods"].contains(&threshold.type_.as_str())
    {
        f.spec(
            path.keys("replicaProgressThreshold.type"),
            format!(
                "unknown replicaProgressThreshold type `{}`",
                threshold.type_
            ),
            "use `Percent` or `Pods`",
        );
    }

    let max_weight = rollout.spec.max_traffic_weight();
    let steps = path.key("steps");
    let mut managed_routes_reported = false;
    for (i, step) in canary.steps.iter().enumerate() {
        let at = steps.index(i);
        canary_step(
            f,
            canary,
            step,
            &at,
            max_weight,
            &mut managed_routes_reported,
        );
    }
    if let Some(background) = &canary.analysis {
        rollout_analysis(f, &background.analysis, &path.key("analysis"));
        if let Some(start) = background.starting_step
            && (start < 0 || start as usize > canary.steps.len())
        {
            f.spec(
                path.keys("analysis.startingStep"),
                format!(
                    "startingStep {start} is not a step index (the rollout has {} steps)",
                    canary.steps.len()
                ),
                "use an index between 0 and the number of steps",
            );
        }
    }
    anti_affinity(f, canary.anti_affinity.as_ref(), &path.key("antiAffinity"));
}

fn canary_step(
    f: &mut Findings,
    canary: &CanaryStrategy,
    step: &CanaryStep,
    at: &FieldPath,
    max_weight: i32,
    managed_routes_reported: &mut bool,
) {
    let routing = canary.traffic_routing.as_ref();
    // Argo's two rules: a step sets something, and at most one of setWeight, pause,
    // experiment and analysis (`hasMultipleStepsType`); setCanaryScale, setHeaderRoute and
    // setMirrorRoute may ride along with them, and the engine carries out each part.
    if step.kinds_set() == 0 {
        f.spec(
            at.clone(),
            m::INVALID_STEP,
            "give the step one of setWeight, pause, analysis, experiment, setCanaryScale, setHeaderRoute, setMirrorRoute",
        );
    } else if step.exclusive_kinds_set() > 1 {
        f.spec(
            at.clone(),
            m::INVALID_STEP,
            "split the step: setWeight, pause, analysis and experiment each need a step of their own",
        );
    }
    if let Some(weight) = step.set_weight
        && !(0..=max_weight).contains(&weight)
    {
        f.spec(
            at.key("setWeight"),
            m::invalid_set_weight(max_weight),
            "setWeight is a percentage of traffic (of maxTrafficWeight, when set)",
        );
    }
    if let Some(pause) = &step.pause
        && pause.duration_seconds().is_some_and(|s| s < 0)
    {
        // Argo's message fits a negative duration; text that is no duration at all (`1y`)
        // is said as what it is.
        let message = match &pause.duration {
            Some(IntOrString::String(text)) if text.parse::<i64>().is_err() => {
                match rollout_runner_api::crd::duration::parse_go_duration(text) {
                    Err(_) => format!("`{}` is not a duration", crate::manifest::printable(text)),
                    Ok(_) => m::INVALID_DURATION.to_string(),
                }
            }
            _ => m::INVALID_DURATION.to_string(),
        };
        f.spec(
            at.keys("pause.duration"),
            message,
            "use seconds (`30`) or a Go duration (`30s`, `5m`, `1h`; the units are ns, us, ms, s, m and h); leave it out to pause until promoted",
        );
    }
    if step.set_canary_scale.is_some() && routing.is_none() {
        f.spec(
            at.key("setCanaryScale"),
            m::SET_CANARY_SCALE_TRAFFIC_POLICY,
            "setCanaryScale needs trafficRouting; without it, setWeight already scales the canary",
        );
    }
    if let Some(header) = &step.set_header_route {
        let hp = at.key("setHeaderRoute");
        match routing {
            // NGINX header routes are ours (canary-by-header); Argo's NGINX router has none.
            Some(r)
                if r.istio.is_some()
                    || r.alb.is_some()
                    || r.apisix.is_some()
                    || r.nginx.is_some()
                    || has_plugins(r) =>
            {
                for (j, route_match) in header.r#match.iter().flatten().enumerate() {
                    let mp = hp.key("match").index(j);
                    if r.alb.is_some() {
                        alb_match(f, route_match.header_value.as_ref(), &mp);
                    } else {
                        string_match(f, route_match.header_value.as_ref(), &mp);
                    }
                }
                if r.nginx.is_some()
                    && let Some(matches) = &header.r#match
                    && matches.len() != 1
                {
                    f.spec(
                        hp.key("match"),
                        m::NGINX_HEADER_ROUTE_ONE_MATCH,
                        "ingress-nginx routes by one header (canary-by-header): give the step exactly one match",
                    );
                }
            }
            _ => f.spec(
                hp.clone(),
                m::SET_HEADER_ROUTE_TRAFFIC_POLICY,
                "header routes need Istio, ALB, APISIX, NGINX or Gateway API traffic routing",
            ),
        }
    }
    if let Some(mirror) = &step.set_mirror_route {
        let mp = at.key("setMirrorRoute");
        if !routing.is_some_and(|r| r.istio.is_some() || has_plugins(r)) {
            f.spec(
                mp.clone(),
                m::SET_MIRROR_ROUTE_TRAFFIC_POLICY,
                "mirror routes need Istio or Gateway API traffic routing",
            );
        }
        for (j, route_match) in mirror.r#match.iter().flatten().enumerate() {
            let at = mp.key("match").index(j);
            if let Some(method) = &route_match.method {
                string_match(f, Some(method), &at.key("method"));
            }
            if let Some(path) = &route_match.path {
                string_match(f, Some(path), &at.key("path"));
            }
            for (name, value) in &route_match.headers {
                string_match(f, Some(value), &at.key("headers").key(name.clone()));
            }
        }
        if let Some(percentage) = mirror.percentage
            && !(0..=100).contains(&percentage)
        {
            f.spec(
                mp.key("percentage"),
                "percentage must be between 0 and 100",
                "percentage is the share of matching requests to mirror",
            );
        }
    }
    if let Some(routing) = routing {
        let route_names: Vec<(&str, FieldPath)> = [
            step.set_header_route
                .as_ref()
                .map(|h| (h.name.as_str(), at.keys("setHeaderRoute.name"))),
            step.set_mirror_route
                .as_ref()
                .map(|m| (m.name.as_str(), at.keys("setMirrorRoute.name"))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !route_names.is_empty() {
            if routing.managed_routes.is_empty() {
                if !*managed_routes_reported {
                    *managed_routes_reported = true;
                    f.spec(
                        FieldPath::parse("spec.strategy.canary.trafficRouting.managedRoutes"),
                        m::missing_field("spec.strategy.canary.trafficRouting.managedRoutes"),
                        "list the routes that setHeaderRoute and setMirrorRoute steps name under `trafficRouting.managedRoutes`",
                    );
                }
            } else {
                for (name, path) in route_names {
                    if !routing.managed_routes.iter().any(|r| r.name == name) {
                        f.spec(
                            path,
                            m::ROUTE_NOT_IN_MANAGED_ROUTES,
                            "add the route's name to `trafficRouting.managedRoutes`",
                        );
                    } else if routing.gateway_api_config().is_some() && !super::is_dns_label(name) {
                        // Gateway API managed routes are rules named after the route.
                        f.spec(
                            path,
                            m::GATEWAY_API_ROUTE_NAME,
                            "use lowercase letters, digits and '-' (at most 63 characters)",
                        );
                    }
                }
            }
        }
    }
    if let Some(experiment) = &step.experiment {
        let ep = at.key("experiment");
        let mut names = HashSet::new();
        for (j, template) in experiment.templates.iter().enumerate() {
            let tp = ep.key("templates").index(j);
            if template.name.is_empty() {
                f.spec(
                    tp.key("name"),
                    "experiment template has no name",
                    "name every template",
                );
            } else if !names.insert(template.name.as_str()) {
                f.spec(
                    tp.key("name"),
                    format!("duplicate experiment template name `{}`", template.name),
                    "template names must be unique within the experiment",
                );
            }
            if !["canary", "stable"].contains(&template.spec_ref.as_str()) {
                f.spec(
                    tp.key("specRef"),
                    format!("unknown specRef `{}`", template.spec_ref),
                    "use `canary` or `stable`: the ReplicaSet whose pod template to copy",
                );
            }
            non_negative(f, &tp.key("replicas"), template.replicas);
            if template.weight.is_some() {
                match routing {
                    None => f.spec(
                        tp.key("weight"),
                        m::EXPERIMENT_WEIGHT_WITHOUT_TRAFFIC_ROUTING,
                        "remove `weight`, or configure trafficRouting",
                    ),
                    Some(r)
                        if r.alb.is_none()
                            && r.smi.is_none()
                            && r.istio.is_none()
                            && !has_plugins(r) =>
                    {
                        f.spec(
                            tp.key("weight"),
                            m::EXPERIMENT_WEIGHT_ROUTERS,
                            "remove `weight`: this router cannot send traffic to experiment pods",
                        )
                    }
                    Some(_) => {}
                }
            }
        }
        if experiment.templates.is_empty() {
            f.spec(
                ep.key("templates"),
                "experiment step has no templates",
                "list at least one template (`name`, `specRef: canary` or `stable`)",
            );
        }
        if !experiment.duration.is_empty()
            && let Err(error) = check_duration(&experiment.duration)
        {
            f.spec(
                ep.key("duration"),
                error,
                "use a Go duration such as `30s`, `5m` or `1h`",
            );
        }
        let mut analysis_names = HashSet::new();
        for (j, analysis) in experiment.analyses.iter().enumerate() {
            let ap = ep.key("analyses").index(j);
            if analysis.name.is_empty() {
                f.spec(
                    ap.key("name"),
                    "experiment analysis has no name",
                    "name every analysis",
                );
            } else if !analysis_names.insert(analysis.name.as_str()) {
                f.spec(
                    ap.key("name"),
                    format!("duplicate experiment analysis name `{}`", analysis.name),
                    "analysis names must be unique within the experiment",
                );
            }
            arguments(f, &analysis.args, &ap.key("args"));
        }
    }
    if let Some(analysis) = &step.analysis {
        rollout_analysis(f, analysis, &at.key("analysis"));
    }
}

fn string_match(f: &mut Findings, value: Option<&StringMatch>, path: &FieldPath) {
    match value.map(StringMatch::kinds_set) {
        None | Some(0) => f.spec(
            path.clone(),
            m::STRING_MATCH_MISSING_VALUE,
            "set one of `exact`, `prefix` or `regex`",
        ),
        Some(1) => {}
        Some(_) => f.spec(
            path.clone(),
            m::STRING_MATCH_MULTIPLE_VALUES,
            "keep only one of `exact`, `prefix` and `regex`",
        ),
    }
}

fn alb_match(f: &mut Findings, value: Option<&StringMatch>, path: &FieldPath) {
    match value {
        None => f.spec(
            path.clone(),
            m::STRING_MATCH_MISSING_VALUE,
            "set `headerValue.exact`",
        ),
        Some(v) if v.exact.is_empty() || !v.regex.is_empty() || !v.prefix.is_empty() => f.spec(
            path.clone(),
            m::SET_HEADER_ROUTE_ALB_VALUE,
            "ALB matches header values exactly: use `exact` only",
        ),
        Some(_) => {}
    }
}

fn traffic_routing(f: &mut Findings, routing: &RolloutTrafficRouting, path: &FieldPath) {
    if let Some(nginx) = &routing.nginx {
        match (
            nginx.stable_ingress.is_empty(),
            nginx.stable_ingresses.is_empty(),
        ) {
            (false, false) => f.spec(
                path.key("nginx"),
                m::NGINX_INGRESS_BOTH,
                "keep either `stableIngress` or `stableIngresses`",
            ),
            (true, true) => f.spec(
                path.key("nginx"),
                m::NGINX_INGRESS_NEITHER,
                "name the Ingress that routes to the stable Service",
            ),
            _ => {}
        }
    }
    if let Some(alb) = &routing.alb {
        match (alb.ingress.is_empty(), alb.ingresses.is_empty()) {
            (false, false) => f.spec(
                path.key("alb"),
                m::ALB_INGRESS_BOTH,
                "keep either `ingress` or `ingresses`",
            ),
            (true, true) => f.spec(
                path.key("alb"),
                m::ALB_INGRESS_NEITHER,
                "name the Ingress whose actions annotation carries the weights",
            ),
            _ => {}
        }
        if alb.service_port <= 0 {
            f.spec(
                path.keys("alb.servicePort"),
                m::missing_field("spec.strategy.canary.trafficRouting.alb.servicePort"),
                "set `servicePort` to the Service port the Ingress uses",
            );
        }
        if let Some(stickiness) = &alb.stickiness_config
            && stickiness.enabled
            && !(1..=604_800).contains(&stickiness.duration_seconds)
        {
            f.spec(
                path.keys("alb.stickinessConfig.durationSeconds"),
                "stickiness durationSeconds must be between 1 and 604800",
                "use a duration between 1 second and 7 days",
            );
        }
    }
    if let Some(istio) = &routing.istio
        && istio.virtual_service.is_some() != istio.virtual_services.is_empty()
    {
        f.spec(
            path.key("istio"),
            m::ISTIO_VIRTUAL_SERVICES,
            "keep either `virtualService` or `virtualServices`",
        );
    }
    if let Some(Err(error)) = routing.gateway_api_config() {
        f.spec(
            path.key("plugins").key(GATEWAY_API_PLUGIN),
            format!("invalid Gateway API configuration: {error}"),
            "use `httpRoute`/`httpRoutes`, `grpcRoute`/`grpcRoutes` and `namespace`",
        );
    }
}

/// A `RolloutAnalysis` (background, step, pre/post-promotion): arguments and templates.
fn rollout_analysis(f: &mut Findings, analysis: &RolloutAnalysis, path: &FieldPath) {
    if analysis.templates.is_empty() {
        f.spec(
            path.key("templates"),
            "analysis has no templates",
            "list the AnalysisTemplates to run under `templates` (`templateName: ...`)",
        );
    }
    for (i, template) in analysis.templates.iter().enumerate() {
        if template.template_name.is_empty() {
            f.spec(
                path.key("templates").index(i).key("templateName"),
                "analysis template reference has no templateName",
                "name the AnalysisTemplate (or ClusterAnalysisTemplate with `clusterScope: true`)",
            );
        }
    }
    arguments(f, &analysis.args, &path.key("args"));
}

/// Arguments a rollout passes to its analyses.
fn arguments(f: &mut Findings, args: &[AnalysisRunArgument], path: &FieldPath) {
    let mut names = HashSet::new();
    for (i, arg) in args.iter().enumerate() {
        let at = path.index(i);
        if arg.name.is_empty() {
            f.spec(
                at.key("name"),
                "argument has no name",
                "name every argument",
            );
        } else if !names.insert(arg.name.as_str()) {
            f.spec(
                at.key("name"),
                format!("duplicate argument `{}`", arg.name),
                "pass each argument once",
            );
        }
        let Some(from) = &arg.value_from else {
            continue;
        };
        if let Some(hash) = &from.pod_template_hash_value
            && !["Stable", "Latest"].contains(&hash.as_str())
        {
            f.spec(
                at.keys("valueFrom.podTemplateHashValue"),
                format!("unknown podTemplateHashValue `{hash}`"),
                "use `Stable` or `Latest`",
            );
        }
        if let Some(field) = &from.field_ref
            && field.field_path.starts_with("metadata")
            && !is_downward_api_path(&field.field_path)
        {
            f.spec(
                at.keys("valueFrom.fieldRef.fieldPath"),
                m::ANALYSIS_ARGS_DOWNWARD_API,
                "use metadata.name, metadata.namespace, metadata.uid, metadata.labels['KEY'] or metadata.annotations['KEY']",
            );
        }
    }
}

/// Paths Kubernetes' downward API can read from object metadata.
fn is_downward_api_path(path: &str) -> bool {
    if [
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "metadata.labels",
        "metadata.annotations",
    ]
    .contains(&path)
    {
        return true;
    }
    ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.len() > 2 && rest.ends_with("']"))
        })
}

fn anti_affinity(f: &mut Findings, anti_affinity: Option<&AntiAffinity>, path: &FieldPath) {
    let Some(anti_affinity) = anti_affinity else {
        return;
    };
    let preferred = anti_affinity
        .preferred_during_scheduling_ignored_during_execution
        .as_ref();
    let required = anti_affinity
        .required_during_scheduling_ignored_during_execution
        .as_ref();
    if preferred.is_some() == required.is_some() {
        f.spec(
            path.clone(),
            m::ANTI_AFFINITY_STRATEGY,
            "set either `preferredDuringSchedulingIgnoredDuringExecution` or `requiredDuringSchedulingIgnoredDuringExecution`",
        );
    }
    if let Some(preferred) = preferred
        && !(1..=100).contains(&preferred.weight)
    {
        f.spec(
            path.keys("preferredDuringSchedulingIgnoredDuringExecution.weight"),
            m::ANTI_AFFINITY_WEIGHT,
            "use a weight between 1 and 100",
        );
    }
}

/// An int-or-percent that is neither an integer nor `N%` (or `N`, read as a percentage).
fn int_or_percent(f: &mut Findings, path: &FieldPath, value: Option<&IntOrString>) {
    // Kubernetes' `ValidatePositiveIntOrPercent`: a count at least 0, or digits and `%`.
    if let Some(IntOrString::Int(count)) = value
        && *count < 0
    {
        f.spec(
            path.clone(),
            format!("invalid value {count}: must be greater than or equal to 0"),
            "use a number of pods (`1`) or a percentage (`25%`)",
        );
    }
    if let Some(IntOrString::String(text)) = value {
        let digits = text.strip_suffix('%').unwrap_or(text);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.parse::<u32>().is_err()
        {
            f.spec(
                path.clone(),
                format!(
                    "invalid value `{}`: must be an integer or a percentage",
                    crate::manifest::printable(text)
                ),
                "use a number of pods (`1`) or a percentage (`25%`)",
            );
        }
    }
}

/// Argo's `getIntOrPercentValue`: `N%` is N, an integer is itself, anything else 0.
fn int_or_percent_value(value: &IntOrString) -> i32 {
    match value {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => s.strip_suffix('%').unwrap_or(s).parse().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        let selector = |op: &str, values: Option<Vec<String>>| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: op.into(),
                values,
            }]),
        };
        assert_eq!(
            selector_matches(&selector("In", Some(vec!["web".into()])), &labels),
            Ok(true)
        );
        assert_eq!(
            selector_matches(&selector("NotIn", Some(vec!["web".into()])), &labels),
            Ok(false)
        );
        assert_eq!(
            selector_matches(&selector("Exists", None), &labels),
            Ok(true)
        );
        assert_eq!(
            selector_matches(&selector("DoesNotExist", None), &labels),
            Ok(false)
        );
        assert_eq!(selector_matches(&selector("Bogus", None), &labels), Err(()));
    }

    #[test]
    fn downward_api_paths() {
        assert!(is_downward_api_path("metadata.labels['app']"));
        assert!(is_downward_api_path("metadata.name"));
        assert!(!is_downward_api_path("metadata.generation"));
        assert!(!is_downward_api_path("metadata.labels['']"));
    }

    #[test]
    fn percent_values() {
        assert_eq!(int_or_percent_value(&IntOrString::String("0%".into())), 0);
        assert_eq!(int_or_percent_value(&IntOrString::String("25".into())), 25);
        assert_eq!(int_or_percent_value(&IntOrString::Int(0)), 0);
    }
}
