//! Table tests of plans: per-step counts and weights for canaries with and without routing,
//! blue-green phases, durations, traffic objects, and the hash.

use super::*;
use rollout_runner_api::crd::AnalysisTemplate;

/// A Rollout with `replicas` and the given `strategy:` body (YAML, indented for `strategy:`).
fn rollout(replicas: i32, strategy: &str) -> Rollout {
    let yaml = format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web, namespace: shop}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "web:2"}}]
  strategy:
{strategy}
"#
    );
    serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn template(yaml: &str) -> AnalysisTemplate {
    serde_saphyr::from_str(yaml).unwrap()
}

fn plan_of(rollout: &Rollout) -> ReleasePlan {
    plan_rollout(rollout, &Templates::default()).unwrap()
}

fn plan_with(rollout: &Rollout, templates: &[&str]) -> ReleasePlan {
    let mut set = Templates::default();
    for yaml in templates {
        let t = template(yaml);
        set.templates.insert(t.metadata.name.clone().unwrap(), t);
    }
    plan_rollout(rollout, &set).unwrap()
}

/// (canary, stable, weight) per step, then the promotion.
fn counts(plan: &ReleasePlan) -> Vec<(i32, i32, i32)> {
    plan.steps
        .iter()
        .chain([&plan.promotion])
        .map(|s| (s.canary_replicas, s.stable_replicas, s.traffic_weight))
        .collect()
}

fn weights_steps(weights: &[i32]) -> String {
    weights
        .iter()
        .map(|w| format!("        - setWeight: {w}\n"))
        .collect()
}

#[test]
fn basic_canary_counts_follow_argos_approximation() {
    // (replicas, maxSurge, maxUnavailable, weights, expected (canary, stable, weight) per step).
    type Case = (
        i32,
        &'static str,
        &'static str,
        &'static [i32],
        &'static [(i32, i32, i32)],
    );
    let cases: &[Case] = &[
        (
            0,
            "25%",
            "25%",
            &[20, 50],
            &[(0, 0, 0), (0, 0, 0), (0, 0, 100)],
        ),
        // One pod: the surge pod carries the canary until the weight reaches 100.
        (
            1,
            "1",
            "0",
            &[10, 50, 90],
            &[(1, 1, 50), (1, 1, 50), (1, 1, 50), (1, 0, 100)],
        ),
        // One pod and no surge: zero is allowed, so 50% rounds to the single pod.
        (
            1,
            "0",
            "1",
            &[10, 50],
            &[(0, 1, 0), (1, 0, 100), (1, 0, 100)],
        ),
        // 3 pods, 33% and 67% round to whole pods; 50% takes the surge pod (2 of 4).
        (
            3,
            "25%",
            "25%",
            &[33, 50, 67],
            &[(1, 2, 33), (2, 2, 50), (2, 1, 66), (3, 0, 100)],
        ),
        (
            10,
            "25%",
            "0",
            &[10, 33, 55, 100],
            &[
                (1, 9, 10),
                (3, 7, 30),
                (6, 5, 54),
                (10, 0, 100),
                (10, 0, 100),
            ],
        ),
        (10, "0", "1", &[5], &[(1, 9, 10), (10, 0, 100)]),
    ];
    for (replicas, surge, unavailable, weights, expected) in cases {
        let strategy = format!(
            "    canary:\n      maxSurge: {surge:?}\n      maxUnavailable: {unavailable:?}\n      steps:\n{}",
            weights_steps(weights)
        );
        let plan = plan_of(&rollout(*replicas, &strategy));
        assert_eq!(
            counts(&plan),
            expected.to_vec(),
            "replicas {replicas}, maxSurge {surge}, maxUnavailable {unavailable}, weights {weights:?}"
        );
        assert_eq!(plan.duration, Span::ZERO);
    }
}

#[test]
fn basic_canary_fenceposts_are_resolved_against_replicas() {
    let plan = plan_of(&rollout(
        10,
        "    canary:\n      maxSurge: 3\n      maxUnavailable: \"15%\"\n      steps: [{setWeight: 50}]",
    ));
    assert_eq!((plan.max_surge, plan.max_unavailable), (Some(3), Some(1)));
    let plan = plan_of(&rollout(4, "    canary:\n      steps: [{setWeight: 50}]"));
    // The defaults: 25% each, surge rounded up, unavailable down.
    assert_eq!((plan.max_surge, plan.max_unavailable), (Some(1), Some(1)));
}

proptest::proptest! {
    /// The basic canary settles where Argo's weight approximation says, whatever the move
    /// sequence maxSurge and maxUnavailable allow.
    #[test]
    fn basic_canary_settles_at_the_approximation(
        replicas in 0i32..25,
        weight in 0i32..=100,
        surge in 0i32..4,
        unavailable in 0i32..4,
    ) {
        let strategy = format!(
            "    canary:\n      maxSurge: {surge}\n      maxUnavailable: {unavailable}\n      steps: [{{setWeight: {weight}}}]"
        );
        let spec = rollout(replicas, &strategy);
        let plan = plan_of(&spec);
        let resolved_surge = crate::engine::replicas::max_surge(&spec.spec);
        let (canary, stable) =
            crate::engine::replicas::approximate_weighted_counts(replicas, weight, resolved_surge);
        proptest::prop_assert_eq!(
            (plan.steps[0].canary_replicas, plan.steps[0].stable_replicas),
            (canary, stable)
        );
        proptest::prop_assert_eq!(
            (plan.promotion.canary_replicas, plan.promotion.stable_replicas),
            (replicas, 0)
        );
    }
}

const NGINX: &str = "      canaryService: web-canary\n      stableService: web-stable\n      trafficRouting:\n        nginx: {stableIngress: web}\n";

#[test]
fn routed_canary_counts_keep_the_stable_and_round_the_canary_up() {
    type Case = (i32, &'static str, &'static [(i32, i32, i32)]);
    let cases: &[Case] = &[
        (
            0,
            "[{setWeight: 20}, {pause: {}}]",
            &[(0, 0, 0), (0, 0, 0), (0, 0, 100)],
        ),
        (
            1,
            "[{setWeight: 1}, {setWeight: 99}]",
            &[(1, 1, 1), (1, 1, 99), (1, 0, 100)],
        ),
        (
            3,
            "[{setWeight: 10}, {setWeight: 34}, {setWeight: 67}]",
            &[(1, 3, 10), (2, 3, 34), (3, 3, 67), (3, 0, 100)],
        ),
        // A pause before any weight keeps everything on the stable.
        (
            10,
            "[{pause: {duration: 10}}, {setWeight: 5}]",
            &[(0, 10, 0), (1, 10, 5), (10, 0, 100)],
        ),
        // setCanaryScale: explicit replicas, a weight of pods, and back to the traffic weight.
        (
            10,
            "[{setCanaryScale: {replicas: 4}}, {setWeight: 10}, {setCanaryScale: {weight: 55}}, {setCanaryScale: {matchTrafficWeight: true}}, {setWeight: 0}]",
            &[
                (4, 10, 0),
                (4, 10, 10),
                (6, 10, 10),
                (1, 10, 10),
                (0, 10, 0),
                (10, 0, 100),
            ],
        ),
    ];
    for (replicas, steps, expected) in cases {
        let strategy = format!("    canary:\n{NGINX}      steps: {steps}");
        let plan = plan_of(&rollout(*replicas, &strategy));
        assert_eq!(
            counts(&plan),
            expected.to_vec(),
            "replicas {replicas}, steps {steps}"
        );
    }
}

#[test]
fn routed_canary_honours_min_pods_per_replica_set_and_max_traffic_weight() {
    let strategy = format!(
        "    canary:\n{NGINX}      minPodsPerReplicaSet: 2\n      steps: [{{setWeight: 5}}, {{setCanaryScale: {{replicas: 1}}}}]"
    );
    let plan = plan_of(&rollout(10, &strategy));
    // 5% of 10 is lifted to 2; an explicit replica count is taken as written (as Argo does).
    assert_eq!(counts(&plan), [(2, 10, 5), (1, 10, 5), (10, 0, 100)]);

    let plan = plan_of(&rollout(10, MAX_WEIGHT_1000));
    assert_eq!(plan.steps[0].traffic_weight, 5);
    assert_eq!(plan.promotion.traffic_weight, 1000);
    let annotations: Vec<(&str, &str)> = plan.steps[0].traffic[1]
        .fields
        .iter()
        .map(|f| (f.path.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(
        annotations,
        [
            (
                "metadata.annotations[nginx.ingress.kubernetes.io/canary-weight]",
                "5"
            ),
            (
                "metadata.annotations[nginx.ingress.kubernetes.io/canary-weight-total]",
                "1000"
            ),
        ]
    );
}

const MAX_WEIGHT_1000: &str = "    canary:\n      canaryService: web-canary\n      stableService: web-stable\n      trafficRouting:\n        maxTrafficWeight: 1000\n        nginx: {stableIngress: web}\n      steps: [{setWeight: 5}, {setWeight: 500}]";

/// Argo scales replicas against `maxTrafficWeight` (`trafficWeightToReplicas(replicas, weight,
/// maxWeight)`): 500 of 1000 is 5 of 10 pods. The plan uses the engine's arithmetic.
#[test]
fn routed_canary_replicas_scale_against_max_traffic_weight() {
    let plan = plan_of(&rollout(10, MAX_WEIGHT_1000));
    assert_eq!(counts(&plan), [(1, 10, 5), (5, 10, 500), (10, 0, 1000)]);
}

#[test]
fn dynamic_stable_scale_shrinks_the_stable_with_the_traffic() {
    let strategy = format!(
        "    canary:\n{NGINX}      dynamicStableScale: true\n      steps: [{{setWeight: 25}}, {{setWeight: 75}}, {{setCanaryScale: {{replicas: 2}}}}, {{setWeight: 90}}, {{setCanaryScale: {{matchTrafficWeight: true}}}}]"
    );
    let plan = plan_of(&rollout(10, &strategy));
    // The stable is ceil(10 * (100 - w) / 100). An explicit canary scale counts as weight 0
    // for the stable, so it grows back to 10 and stays there, while the canary keeps its 2
    // pods through the next setWeight, until matchTrafficWeight.
    assert_eq!(
        counts(&plan),
        [
            (3, 8, 25),
            (8, 3, 75),
            (2, 10, 75),
            (2, 10, 90),
            (9, 1, 90),
            (10, 0, 100)
        ]
    );
    // No scale-down delay with dynamic scaling: the old stable is already gone.
    assert_eq!(plan.promotion.duration, Span::ZERO);
}

#[test]
fn canary_durations_add_pauses_analysis_and_scale_down_delays() {
    const CHECK: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: check}
spec:
  args: [{name: svc}]
  metrics:
    - name: errors
      interval: 30s
      initialDelay: 1m
      count: 4
      successCondition: result < 1
      provider: {prometheus: {address: "http://prom", query: "errors{svc=\"{{args.svc}}\"}"}}
    - name: quick
      interval: 10s
      count: 10
      consecutiveSuccessLimit: 3
      provider: {web: {url: "http://{{args.svc}}/health"}}
    - name: forever
      interval: 1m
      provider: {prometheus: {query: "up"}}
"#;
    let strategy = format!(
        "    canary:\n{NGINX}      scaleDownDelaySeconds: 45\n      steps:\n        - setWeight: 10\n        - pause: {{duration: 1h}}\n        - analysis:\n            templates: [{{templateName: check}}]\n            args: [{{name: svc, value: web}}]\n            dryRun: [{{metricName: forever}}]\n        - pause: {{}}\n        - pause: {{duration: \"90\"}}"
    );
    let mut ro = rollout(4, &strategy);
    // The third metric measures until stopped: drop it for the bounded case first.
    let check_bounded = CHECK.replace(
        "    - name: forever\n      interval: 1m\n      provider: {prometheus: {query: \"up\"}}\n",
        "",
    );
    let plan = plan_with(&ro, &[&check_bounded]);
    let analysis = plan.steps[2].analysis.as_ref().unwrap();
    assert_eq!(analysis.metrics[0].duration, Span::exact(60 + 3 * 30));
    assert_eq!(
        analysis.metrics[1].duration,
        Span {
            min_seconds: 20,
            max_seconds: Some(90)
        }
    );
    assert_eq!(analysis.duration, Span::exact(150));
    assert_eq!(
        analysis.metrics[0].query.as_deref(),
        Some("errors{svc=\"web\"}")
    );
    assert_eq!(
        analysis.metrics[1].query.as_deref(),
        Some("GET http://web/health")
    );
    let durations: Vec<Span> = plan.steps.iter().map(|s| s.duration).collect();
    assert_eq!(
        durations,
        [
            Span::ZERO,
            Span::exact(3600),
            Span::exact(150),
            Span::unbounded(0),
            Span::exact(90),
        ]
    );
    assert!(plan.steps[3].waits_for_promotion);
    assert_eq!(plan.steps[4].start, Span::unbounded(3750));
    assert_eq!(plan.promotion.duration, Span::exact(45));
    assert_eq!(plan.duration, Span::unbounded(3600 + 150 + 90 + 45));

    // A metric that measures until stopped holds the step until someone promotes.
    ro.spec.strategy.canary.as_mut().unwrap().steps.truncate(3);
    let plan = plan_with(&ro, &[CHECK]);
    let analysis = plan.steps[2].analysis.as_ref().unwrap();
    assert!(analysis.runs_until_stopped);
    assert!(analysis.metrics[2].dry_run);
    assert!(plan.steps[2].waits_for_promotion);
    assert_eq!(plan.duration.max_seconds, None);
}

#[test]
fn min_ready_seconds_count_once_per_round_of_new_pods() {
    let mut ro = rollout(
        10,
        "    canary:\n      maxSurge: 1\n      maxUnavailable: 0\n      steps: [{setWeight: 30}]",
    );
    ro.spec.min_ready_seconds = Some(20);
    let plan = plan_of(&ro);
    // One surge pod at a time: three rounds to 3 canary pods, seven more to promote.
    assert_eq!(plan.steps[0].duration, Span::exact(3 * 20));
    assert_eq!(plan.promotion.duration, Span::exact(7 * 20));
}

#[test]
fn a_canary_without_steps_goes_straight_to_promotion() {
    let plan = plan_of(&rollout(3, "    canary: {}"));
    assert!(plan.steps.is_empty());
    assert_eq!(counts(&plan), [(3, 0, 100)]);
    assert_eq!(plan.promotion.index, 0);
}

#[test]
fn blue_green_phases() {
    let plan = plan_of(&rollout(
        4,
        "    blueGreen:\n      activeService: web-active\n      previewService: web-preview\n      autoPromotionEnabled: false\n      previewReplicaCount: 1\n      scaleDownDelaySeconds: 120",
    ));
    let phases: Vec<(&str, i32, i32, i32)> = plan
        .steps
        .iter()
        .chain([&plan.promotion])
        .map(|s| {
            (
                s.kind.as_str(),
                s.canary_replicas,
                s.stable_replicas,
                s.traffic_weight,
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            ("preview", 1, 4, 0),
            ("pause", 1, 4, 0),
            ("scaleUpPreview", 4, 4, 0),
            ("switch", 4, 4, 100),
            ("promote", 4, 0, 100),
        ]
    );
    assert!(plan.steps[1].waits_for_promotion);
    assert_eq!(plan.duration, Span::unbounded(120));
    assert_eq!(plan.steps[0].traffic[0].name, "web-preview");
    assert_eq!(plan.steps[3].traffic[0].name, "web-active");

    let mut ro = rollout(
        0,
        "    blueGreen:\n      activeService: web-active\n      autoPromotionSeconds: 300",
    );
    ro.spec.min_ready_seconds = Some(7);
    let plan = plan_of(&ro);
    let phases: Vec<(&str, Span)> = plan
        .steps
        .iter()
        .chain([&plan.promotion])
        .map(|s| (s.kind.as_str(), s.duration))
        .collect();
    // No pods: nothing to wait for, nothing to scale down.
    assert_eq!(
        phases,
        [
            ("preview", Span::ZERO),
            ("pause", Span::exact(300)),
            ("switch", Span::ZERO),
            ("promote", Span::ZERO),
        ]
    );
}

#[test]
fn missing_templates_are_warnings_not_errors() {
    let plan = plan_of(&rollout(
        2,
        "    canary:\n      analysis:\n        templates: [{templateName: elsewhere, clusterScope: true}]\n      steps: [{setWeight: 50}]",
    ));
    let background = plan.background_analysis.as_ref().unwrap();
    assert_eq!(background.templates, ["cluster:elsewhere"]);
    assert!(background.error.is_some());
    assert_eq!(
        plan.warnings,
        [
            "background analysis: ClusterAnalysisTemplate 'elsewhere' not found: it is not among the inputs, so its metrics are unknown"
        ]
    );
}

#[test]
fn experiments_add_destinations_while_they_run() {
    let strategy = "    canary:\n      canaryService: web-canary\n      stableService: web-stable\n      trafficRouting:\n        smi: {trafficSplitName: split}\n      steps:\n        - setWeight: 20\n        - experiment:\n            duration: 10m\n            templates:\n              - {name: base, specRef: stable, weight: 10, service: {name: web-base}}\n        - setWeight: 40";
    let plan = plan_of(&rollout(5, strategy));
    assert_eq!(plan.steps[1].duration, Span::exact(600));
    let backends = |step: usize| -> Vec<(String, String)> {
        plan.steps[step].traffic[0]
            .fields
            .iter()
            .map(|f| (f.path.clone(), f.value.clone()))
            .collect()
    };
    assert_eq!(
        backends(1),
        [
            (
                "spec.backends[service=web-canary].weight".into(),
                "20".into()
            ),
            ("spec.backends[service=web-base].weight".into(), "10".into()),
            (
                "spec.backends[service=web-stable].weight".into(),
                "70".into()
            ),
        ]
    );
    assert_eq!(
        backends(2),
        [
            (
                "spec.backends[service=web-canary].weight".into(),
                "40".into()
            ),
            ("spec.backends[service=web-base]".into(), "removed".into()),
            (
                "spec.backends[service=web-stable].weight".into(),
                "60".into()
            ),
        ]
    );
}

/// Every router's objects at one weight.
#[test]
fn each_router_writes_its_own_objects() {
    let routers = r#"
        istio:
          virtualServices:
            - {name: web-vs, routes: [primary]}
            - {name: web-tls, tlsRoutes: [{port: 443, sniHosts: [web.example.com]}]}
        alb: {ingress: web-alb, servicePort: 80, stickinessConfig: {enabled: true, durationSeconds: 60}}
        traefik: {weightedTraefikServiceName: web-traefik}
        ambassador: {mappings: [web-mapping]}
        appMesh:
          virtualService: {name: web-mesh, routes: [main]}
          virtualNodeGroup: {canaryVirtualNodeRef: {name: web-canary-node}, stableVirtualNodeRef: {name: web-stable-node}}
        apisix: {route: {name: web-apisix, rules: [main]}}
        plugins:
          argoproj-labs/gatewayAPI: {httpRoute: web-route, namespace: shop}
"#;
    let strategy = format!(
        "    canary:\n      canaryService: web-canary\n      stableService: web-stable\n      trafficRouting:{routers}      steps: [{{setWeight: 30}}]"
    );
    let plan = plan_of(&rollout(3, &strategy));
    let writes: Vec<String> = plan.steps[0]
        .traffic
        .iter()
        .flat_map(|o| {
            o.fields.iter().map(move |f| {
                format!(
                    "{} {} {}: {} = {}",
                    o.router, o.kind, o.name, f.path, f.value
                )
            })
        })
        .collect();
    insta::assert_snapshot!(writes.join("\n"), @r#"
    appMesh VirtualNode web-canary-node: spec.podSelector.matchLabels.rollouts-pod-template-hash = <new pod-template-hash>
    service Service web-canary: spec.selector.rollouts-pod-template-hash = <new pod-template-hash>
    istio VirtualService web-vs: spec.http[name=primary].route[host=web-canary].weight = 30
    istio VirtualService web-vs: spec.http[name=primary].route[host=web-stable].weight = 70
    istio VirtualService web-tls: spec.tls[port=443,sniHosts=web.example.com].route[host=web-canary].weight = 30
    istio VirtualService web-tls: spec.tls[port=443,sniHosts=web.example.com].route[host=web-stable].weight = 70
    alb Ingress web-alb: metadata.annotations[alb.ingress.kubernetes.io/actions.web-stable] = {"Type":"forward","ForwardConfig":{"TargetGroups":[{"ServiceName":"web-canary","ServicePort":"80","Weight":30},{"ServiceName":"web-stable","ServicePort":"80","Weight":70}],"TargetGroupStickinessConfig":{"Enabled":true,"DurationSeconds":60}}}
    ambassador Mapping web-mapping-canary: spec.weight = 30
    appMesh VirtualRouter <router of VirtualService web-mesh>: spec.routes[name=main].httpRoute.action.weightedTargets[virtualNodeRef.name=web-canary-node].weight = 30
    appMesh VirtualRouter <router of VirtualService web-mesh>: spec.routes[name=main].httpRoute.action.weightedTargets[virtualNodeRef.name=web-stable-node].weight = 70
    traefik TraefikService web-traefik: spec.weighted.services[name=web-canary].weight = 30
    traefik TraefikService web-traefik: spec.weighted.services[name=web-stable].weight = 70
    apisix ApisixRoute web-apisix: spec.http[name=main].backends[serviceName=web-canary].weight = 30
    apisix ApisixRoute web-apisix: spec.http[name=main].backends[serviceName=web-stable].weight = 70
    gatewayAPI HTTPRoute web-route: spec.rules[*].backendRefs[name=web-canary].weight = 30
    gatewayAPI HTTPRoute web-route: spec.rules[*].backendRefs[name=web-stable].weight = 70
    "#);
    let routing = plan.traffic_routing.as_ref().unwrap();
    assert_eq!(
        routing.routers,
        [
            "istio",
            "alb",
            "ambassador",
            "appMesh",
            "traefik",
            "apisix",
            "gatewayAPI"
        ]
    );
}

#[test]
fn the_hash_is_stable_ignores_images_and_follows_the_release() {
    let strategy = format!(
        "    canary:\n{NGINX}      steps: [{{setWeight: 20}}, {{pause: {{duration: 1m}}}}]"
    );
    let ro = rollout(5, &strategy);
    let plan = plan_of(&ro);
    assert_eq!(plan.hash, plan.compute_hash());
    assert_eq!(plan.hash, plan_of(&ro).hash);
    assert!(plan.hash.starts_with("sha256:") && plan.hash.len() == 7 + 64);

    let mut other_image = ro.clone();
    other_image
        .spec
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("web:3".into());
    assert_eq!(plan_of(&other_image).hash, plan.hash);

    let other_weight = rollout(5, &strategy.replace("setWeight: 20", "setWeight: 25"));
    assert_ne!(plan_of(&other_weight).hash, plan.hash);
    let other_pause = rollout(5, &strategy.replace("duration: 1m", "duration: 2m"));
    assert_ne!(plan_of(&other_pause).hash, plan.hash);

    let plans = vec![plan.clone(), plan_of(&other_weight)];
    assert_eq!(combined_hash(&plans[..1]), plan.hash);
    assert_ne!(combined_hash(&plans), plan.hash);
    let reversed: Vec<ReleasePlan> = plans.iter().rev().cloned().collect();
    assert_eq!(combined_hash(&reversed), combined_hash(&plans));
}

#[test]
fn durations_are_formatted_for_people() {
    assert_eq!(format_seconds(0), "0s");
    assert_eq!(format_seconds(90), "1m30s");
    assert_eq!(format_seconds(3600), "1h");
    assert_eq!(format_seconds(3725), "1h2m5s");
    assert_eq!(format_span(&Span::exact(60)), "1m");
    assert_eq!(
        format_span(&Span {
            min_seconds: 20,
            max_seconds: Some(90)
        }),
        "20s–1m30s"
    );
    assert_eq!(format_span(&Span::unbounded(120)), "≥ 2m");
}
