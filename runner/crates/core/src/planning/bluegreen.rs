//! Blue-green plans (Argo's flow, `argo-semantics.md` §2.6): the new version comes up behind
//! the preview Service, pre-promotion analysis runs once it is fully available, then the pause
//! (until promoted, or `autoPromotionSeconds`), the preview grows to full size if
//! `previewReplicaCount` kept it small, the active Service switches, post-promotion analysis
//! runs, and the old version goes `scaleDownDelaySeconds` after the new one became stable.

use rollout_runner_api::crd::{BlueGreenStrategy, Rollout};

use super::analysis::Context;
use super::canary::empty_step;
use super::{
    NEW_POD_HASH_PLACEHOLDER, PausePlan, PlanStep, ReleasePlan, Span, TrafficField, TrafficObject,
};

fn service_switch(name: &str) -> TrafficObject {
    TrafficObject {
        router: "service".into(),
        kind: "Service".into(),
        name: name.to_string(),
        when: String::new(),
        fields: vec![TrafficField {
            path: format!(
                "spec.selector.{}",
                rollout_runner_api::crd::POD_TEMPLATE_HASH_LABEL
            ),
            value: NEW_POD_HASH_PLACEHOLDER.into(),
        }],
    }
}

pub(super) fn plan(
    rollout: &Rollout,
    bg: &BlueGreenStrategy,
    context: &Context<'_>,
    plan: &mut ReleasePlan,
) {
    let spec = &rollout.spec;
    let replicas = spec.replicas_or_default();
    let min_ready = i64::from(spec.min_ready_seconds_or_default().max(0));
    let preview_count = bg.preview_replica_count.unwrap_or(replicas);
    let pods_wait = |count: i32| Span::exact(if count > 0 { min_ready } else { 0 });

    let mut steps: Vec<PlanStep> = Vec::new();
    let phase = |kind: &str, description: String, canary: i32, weight: i32| {
        let mut step = empty_step(0, kind);
        step.description = description;
        step.canary_replicas = canary;
        step.stable_replicas = replicas;
        step.traffic_weight = weight;
        step
    };

    let mut preview = phase(
        "preview",
        format!("bring up {preview_count} preview pod(s)"),
        preview_count,
        0,
    );
    preview.duration = pods_wait(preview_count);
    if bg.preview_service.is_empty() {
        preview
            .notes
            .push("no preview Service: the new pods get no traffic until the switch".into());
    } else {
        preview.traffic.push(service_switch(&bg.preview_service));
    }
    steps.push(preview);

    if let Some(analysis) = &bg.pre_promotion_analysis {
        let mut step = phase(
            "prePromotionAnalysis",
            "pre-promotion analysis".into(),
            preview_count,
            0,
        );
        let run = context.analysis(analysis, "pre-promotion analysis");
        step.waits_for_promotion = run.runs_until_stopped;
        step.duration = run.duration;
        step.analysis = Some(run);
        steps.push(step);
    }

    let auto = bg.auto_promotion_enabled_or_default();
    let auto_seconds = i64::from(bg.auto_promotion_seconds.unwrap_or(0).max(0));
    if !auto || auto_seconds > 0 {
        let (description, seconds) = if auto {
            (
                format!(
                    "pause: {} (autoPromotionSeconds)",
                    super::format_seconds(auto_seconds)
                ),
                Some(auto_seconds),
            )
        } else {
            ("pause until promoted".to_string(), None)
        };
        let mut step = phase("pause", description, preview_count, 0);
        step.pause = Some(PausePlan {
            duration_seconds: seconds,
        });
        match seconds {
            Some(seconds) => step.duration = Span::exact(seconds),
            None => {
                step.duration = Span::unbounded(0);
                step.waits_for_promotion = true;
            }
        }
        steps.push(step);
    }

    if preview_count != replicas {
        let mut step = phase(
            "scaleUpPreview",
            format!("scale the preview to {replicas} pod(s)"),
            replicas,
            0,
        );
        step.duration = if replicas > preview_count {
            pods_wait(replicas)
        } else {
            Span::ZERO
        };
        steps.push(step);
    }

    let mut switch = phase(
        "switch",
        format!("switch {} to the new version", bg.active_service),
        replicas,
        100,
    );
    switch.traffic.push(service_switch(&bg.active_service));
    steps.push(switch);

    if let Some(analysis) = &bg.post_promotion_analysis {
        let mut step = phase(
            "postPromotionAnalysis",
            "post-promotion analysis".into(),
            replicas,
            100,
        );
        let run = context.analysis(analysis, "post-promotion analysis");
        step.waits_for_promotion = run.runs_until_stopped;
        step.duration = run.duration;
        step.analysis = Some(run);
        steps.push(step);
    }

    let mut clock = Span::ZERO;
    for (index, step) in steps.iter_mut().enumerate() {
        step.index = index;
        step.start = clock;
        clock = clock.then(step.duration);
    }

    // Only a previous version with pods waits for its scale-down deadline.
    let delay = if replicas > 0 {
        i64::from(bg.scale_down_delay_seconds_or_default().max(0))
    } else {
        0
    };
    let mut promotion = empty_step(steps.len(), "promote");
    promotion.description = "promote".into();
    promotion.canary_replicas = replicas;
    promotion.stable_replicas = 0;
    promotion.traffic_weight = 100;
    promotion.duration = Span::exact(delay);
    promotion.start = clock;
    if delay > 0 {
        promotion.notes.push(format!(
            "the previous version keeps its {replicas} pod(s) for {} (scaleDownDelaySeconds) after the promotion",
            super::format_seconds(delay)
        ));
    }
    plan.duration = clock.then(promotion.duration);
    plan.steps = steps;
    plan.promotion = promotion;
}
