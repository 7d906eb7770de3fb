//! Validation messages, worded as Argo Rollouts words them (`validation.go`,
//! `utils/analysis/factory.go`) so that people and tools that know Argo recognise them. Messages
//! of checks Argo does not have are ours, in the project's style: lowercase, naming the object.

/// `Rollout has missing field '<field>'`.
pub fn missing_field(field: &str) -> String {
    format!("Rollout has missing field '{field}'")
}

/// `SetWeight needs to be between 0 and <max>`.
pub fn invalid_set_weight(max: i32) -> String {
    format!("SetWeight needs to be between 0 and {max}")
}

pub const EXPERIMENT_WEIGHT_WITHOUT_TRAFFIC_ROUTING: &str =
    "Experiment template weight cannot be set unless TrafficRouting is enabled";
pub const EXPERIMENT_WEIGHT_ROUTERS: &str = "Experiment template weight is only available for TrafficRouting with SMI, ALB, Istio and Plugins at this time";
pub const SET_CANARY_SCALE_TRAFFIC_POLICY: &str =
    "SetCanaryScale requires TrafficRouting to be set";
pub const SET_HEADER_ROUTE_TRAFFIC_POLICY: &str =
    "SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix";
pub const SET_MIRROR_ROUTE_TRAFFIC_POLICY: &str =
    "SetMirrorRoute requires TrafficRouting, supports Istio and Plugins";
pub const STRING_MATCH_MULTIPLE_VALUES: &str =
    "StringMatch match value must have exactly one of the following: exact, regex, prefix";
pub const STRING_MATCH_MISSING_VALUE: &str =
    "StringMatch value missed, match value must have one of the following: exact, regex, prefix";
/// Ours: ingress-nginx matches a single header per canary Ingress.
pub const NGINX_HEADER_ROUTE_ONE_MATCH: &str =
    "SetHeaderRoute with NGINX needs exactly one match: ingress-nginx routes by one header";
/// Ours: Gateway API header and mirror routes are rules named after the managed route.
pub const GATEWAY_API_ROUTE_NAME: &str =
    "managed route name must be a valid Gateway API rule name (a DNS label)";
pub const SET_HEADER_ROUTE_ALB_VALUE: &str =
    "SetHeaderRoute match value invalid. ALB supports 'exact' value only";
pub const INVALID_DURATION: &str = "Duration needs to be greater than 0";
pub const MAX_SURGE_MAX_UNAVAILABLE: &str = "MaxSurge and MaxUnavailable both can not be zero";
pub const INVALID_STEP: &str = "Step must have one of the following set: experiment, setWeight, setCanaryScale, plugin or pause";
pub const MULTIPLE_STRATEGIES: &str = "Multiple Strategies can not be listed";
pub const DUPLICATED_SERVICES_BLUE_GREEN: &str = "This rollout uses the same service for the active and preview services, but two different services are required.";
pub const DUPLICATED_SERVICES_CANARY: &str = "This rollout uses the same service for the stable and canary services, but two different services are required.";
pub const ANTI_AFFINITY_STRATEGY: &str = "AntiAffinity must have exactly one strategy listed";
pub const ANTI_AFFINITY_WEIGHT: &str = "AntiAffinity weight must be between 1-100";
pub const SCALE_DOWN_LIMIT_LARGER_THAN_REVISION_LIMIT: &str =
    "This rollout's revision history limit can not be smaller than the rollout's scale down limit";
pub const TRAFFIC_ROUTING_SERVICES: &str =
    "Canary service and Stable service must to be set to use Traffic Routing";
pub const ANALYSIS_ARGS_DOWNWARD_API: &str =
    "Analyses arguments must refer to valid object metadata supported by downwardAPI";
pub const CANARY_SCALE_DOWN_DELAY: &str =
    "Canary scaleDownDelaySeconds can only be used with traffic routing";
pub const CANARY_DYNAMIC_STABLE_SCALE: &str =
    "Canary dynamicStableScale can only be used with traffic routing";
pub const CANARY_DYNAMIC_STABLE_SCALE_WITH_DELAY: &str =
    "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds";
pub const CANARY_MAX_WEIGHT_ROUTERS: &str =
    "Canary maxTrafficWeight in traffic routing only supported in Nginx and Plugins";
pub const PING_PONG_SERVICES: &str =
    "Ping service and Pong service must to be set to use Ping-Pong feature";
pub const DUPLICATED_PING_PONG_SERVICES: &str = "This rollout uses the same service for the ping and pong services, but two different services are required.";
pub const ALB_ROOT_SERVICE_FOR_PING_PONG: &str =
    "Root service field is required for the configuration with ALB and ping-pong feature enabled";
pub const PING_PONG_ROUTERS: &str =
    "Ping-pong feature works with the ALB, Istio, and plugin-based traffic routers only";
pub const ROUTE_NOT_IN_MANAGED_ROUTES: &str =
    "Steps define a route that does not exist in spec.strategy.canary.trafficRouting.managedRoutes";
pub const EMPTY_SELECTOR: &str = "empty selector is invalid for deployment";
pub const INVALID_SELECTOR: &str = "invalid label selector";
pub const SELECTOR_DOES_NOT_MATCH: &str = "`selector` does not match template `labels`";
pub const TEMPLATE_WITH_WORKLOAD_REF: &str =
    "template must be empty for workload reference rollout";
pub const NON_NEGATIVE: &str = "must be greater than or equal to 0";
pub const PROGRESS_DEADLINE: &str = "must be greater than minReadySeconds";
pub const NGINX_INGRESS_BOTH: &str =
    "Either StableIngress or StableIngresses must be configured. Both are configured.";
pub const NGINX_INGRESS_NEITHER: &str =
    "Either StableIngress or StableIngresses must be configured. Neither are configured.";
pub const ALB_INGRESS_BOTH: &str =
    "Either Ingress or Ingresses must be configured. Both are configured.";
pub const ALB_INGRESS_NEITHER: &str =
    "Either Ingress or Ingresses must be configured. Neither are configured.";
pub const ISTIO_VIRTUAL_SERVICES: &str =
    "either VirtualService or VirtualServices must be configured";

// Metrics (`utils/analysis/factory.go` `ValidateMetric`).
pub const NO_METRICS: &str = "no metrics specified";
pub const NO_PROVIDER: &str = "no provider specified";
pub const MULTIPLE_PROVIDERS: &str = "multiple providers specified";
pub const COUNT_LESS_THAN_FAILURE_LIMIT: &str = "count must be >= failureLimit";
pub const COUNT_LESS_THAN_INCONCLUSIVE_LIMIT: &str = "count must be >= inconclusiveLimit";
pub const COUNT_LESS_THAN_LIMITS: &str = "count must be >= failureLimit + consecutiveSuccessLimit";
pub const COUNT_LESS_THAN_CONSECUTIVE_SUCCESS_LIMIT: &str =
    "count must be >= consecutiveSuccessLimit";
pub const INTERVAL_REQUIRED: &str = "interval must be specified when count > 1";
pub const FAILURE_LIMIT_NEGATIVE: &str = "failureLimit must be >= -1";
pub const INCONCLUSIVE_LIMIT_NEGATIVE: &str = "inconclusiveLimit must be >= 0";
pub const CONSECUTIVE_ERROR_LIMIT_NEGATIVE: &str = "consecutiveErrorLimit must be >= 0";
pub const CONSECUTIVE_SUCCESS_LIMIT_NEGATIVE: &str = "consecutiveSuccessLimit must be >= 0";
pub const LIMITS_BOTH_DISABLED: &str =
    "failureLimit and consecutiveSuccessLimit cannot both be disabled";
pub const WEB_BODY_METHOD: &str =
    "Body/JSONBody can only be used with POST or PUT WebMetric Method types";
pub const WEB_BODY_AND_JSON_BODY: &str =
    "use either Body or JSONBody; both cannot exists for WebMetric payload";

/// `metrics[<i>]: duplicate name '<name>'`.
pub fn duplicate_metric(index: usize, name: &str) -> String {
    format!("metrics[{index}]: duplicate name '{name}'")
}

/// `invalid interval string: <error>`.
pub fn invalid_interval(error: &str) -> String {
    format!("invalid interval string: {error}")
}

/// `invalid startDelay string: <error>` (Argo's wording for `initialDelay`).
pub fn invalid_initial_delay(error: &str) -> String {
    format!("invalid startDelay string: {error}")
}

/// `Service "<name>" has unmatch label "<key>" in rollout`.
pub fn service_label_mismatch(service: &str, key: &str) -> String {
    format!("Service \"{service}\" has unmatch label \"{key}\" in rollout")
}

/// `ingress `<name>` has no rules using service <service> backend`.
pub fn ingress_without_service(ingress: &str, service: &str) -> String {
    format!("ingress `{ingress}` has no rules using service {service} backend")
}

/// `args.<name> was not resolved`.
pub fn arg_not_resolved(name: &str) -> String {
    format!("args.{name} was not resolved")
}

/// `AnalysisTemplate <t> has metric <m> which runs indefinitely. Invalid value for count: <c>`.
pub fn runs_indefinitely(template: &str, metric: &str, count: &str) -> String {
    format!(
        "AnalysisTemplate {template} has metric {metric} which runs indefinitely. Invalid value for count: {count}"
    )
}
