//! Checks of a Rollout against what exists in the cluster, as Argo's controller makes them on
//! every reconcile: the Services and analysis templates it names must exist. A failure makes
//! the Rollout Degraded with an `InvalidSpec` condition carrying Argo's message, and nothing is
//! scaled or switched until it is fixed.

use rollout_runner_api::crd::{Rollout, RolloutAnalysis};
use rollout_runner_api::observed::Observed;

fn invalid(rollout: &Rollout, field: &str, value: &str, detail: String) -> String {
    format!(
        "The Rollout \"{}\" is invalid: {field}: Invalid value: \"{value}\": {detail}",
        rollout.name()
    )
}

/// The first reference of `rollout` that `observed` does not have, as Argo words it.
pub fn missing_reference(rollout: &Rollout, observed: &Observed) -> Option<String> {
    let strategy = &rollout.spec.strategy;
    let mut services: Vec<(String, &str)> = Vec::new();
    if let Some(canary) = &strategy.canary {
        services.push((
            "spec.strategy.canary.stableService".into(),
            &canary.stable_service,
        ));
        services.push((
            "spec.strategy.canary.canaryService".into(),
            &canary.canary_service,
        ));
        if let Some(ping_pong) = &canary.ping_pong {
            let at = "spec.strategy.canary.pingPong";
            services.push((format!("{at}.pingService"), &ping_pong.ping_service));
            services.push((format!("{at}.pongService"), &ping_pong.pong_service));
        }
    }
    if let Some(blue_green) = &strategy.blue_green {
        let at = "spec.strategy.blueGreen";
        services.push((format!("{at}.activeService"), &blue_green.active_service));
        services.push((format!("{at}.previewService"), &blue_green.preview_service));
    }
    for (field, name) in services {
        if !name.is_empty() && !observed.services.contains_key(name) {
            return Some(invalid(
                rollout,
                &field,
                name,
                format!("service \"{name}\" not found"),
            ));
        }
    }

    let mut analyses: Vec<(String, &RolloutAnalysis)> = Vec::new();
    if let Some(canary) = &strategy.canary {
        if let Some(background) = &canary.analysis {
            analyses.push(("spec.strategy.canary.analysis".into(), &background.analysis));
        }
        for (index, step) in canary.steps.iter().enumerate() {
            if let Some(analysis) = &step.analysis {
                analyses.push((
                    format!("spec.strategy.canary.steps[{index}].analysis"),
                    analysis,
                ));
            }
        }
    }
    if let Some(blue_green) = &strategy.blue_green {
        let at = "spec.strategy.blueGreen";
        if let Some(analysis) = &blue_green.pre_promotion_analysis {
            analyses.push((format!("{at}.prePromotionAnalysis"), analysis));
        }
        if let Some(analysis) = &blue_green.post_promotion_analysis {
            analyses.push((format!("{at}.postPromotionAnalysis"), analysis));
        }
    }
    let mut templates: Vec<(String, &str, bool)> = analyses
        .iter()
        .flat_map(|(at, analysis)| {
            analysis.templates.iter().enumerate().map(move |(i, t)| {
                (
                    format!("{at}.templates[{i}].templateName"),
                    t.template_name.as_str(),
                    t.cluster_scope,
                )
            })
        })
        .collect();
    if let Some(canary) = &strategy.canary {
        for (index, step) in canary.steps.iter().enumerate() {
            for (i, analysis) in step
                .experiment
                .iter()
                .flat_map(|e| e.analyses.iter())
                .enumerate()
            {
                templates.push((
                    format!(
                        "spec.strategy.canary.steps[{index}].experiment.analyses[{i}].templateName"
                    ),
                    &analysis.template_name,
                    analysis.cluster_scope,
                ));
            }
        }
    }
    for (field, name, cluster_scope) in templates {
        let (found, kind) = if cluster_scope {
            (
                observed.cluster_analysis_templates.contains_key(name),
                "ClusterAnalysisTemplate",
            )
        } else {
            (
                observed.analysis_templates.contains_key(name),
                "AnalysisTemplate",
            )
        };
        if !found {
            return Some(invalid(
                rollout,
                &field,
                name,
                format!("{kind} \"{name}\" not found"),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_runner_api::observed::ServiceState;

    fn rollout() -> Rollout {
        serde_saphyr::from_str(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}, spec: {containers: [{name: web, image: web}]}}
  strategy:
    canary:
      stableService: web-stable
      steps:
        - analysis: {templates: [{templateName: check}]}
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_missing_service_is_named_as_argo_names_it() {
        let message = missing_reference(&rollout(), &Observed::default()).unwrap();
        assert_eq!(
            message,
            "The Rollout \"web\" is invalid: spec.strategy.canary.stableService: Invalid value: \
             \"web-stable\": service \"web-stable\" not found"
        );
    }

    #[test]
    fn a_missing_template_is_found_once_services_exist() {
        let mut observed = Observed::default();
        observed
            .services
            .insert("web-stable".into(), ServiceState::default());
        let message = missing_reference(&rollout(), &observed).unwrap();
        assert!(
            message.contains("steps[0].analysis.templates[0].templateName"),
            "{message}"
        );
        assert!(
            message.ends_with("AnalysisTemplate \"check\" not found"),
            "{message}"
        );
        observed
            .analysis_templates
            .insert("check".into(), Default::default());
        assert_eq!(missing_reference(&rollout(), &observed), None);
    }
}
