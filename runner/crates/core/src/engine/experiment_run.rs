//! The Experiment lifecycle (Argo's `experiments/experiment.go`), pure: one ReplicaSet (and
//! optionally a Service) per template, brought up and kept for the duration, AnalysisRuns once
//! every template is available, and the experiment's phase from its templates and analyses.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::analysis::build::{self, TemplateRef, TemplateSource};
use rollout_runner_api::crd::{
    AnalysisPhase, AnalysisRun, DEFAULT_EXPERIMENT_PROGRESS_DEADLINE_SECONDS,
    DEFAULT_EXPERIMENT_SCALE_DOWN_DELAY_SECONDS, DESIRED_REPLICAS_ANNOTATION,
    EXPERIMENT_NAME_ANNOTATION, EXPERIMENT_TEMPLATE_NAME_ANNOTATION, Experiment,
    ExperimentAnalysisRunStatus, ExperimentStatus, POD_TEMPLATE_HASH_LABEL, TemplateSpec,
    TemplateStatus, duration::parse_go_duration,
};
use rollout_runner_api::observed::ExperimentObserved;
use rollout_runner_api::plan::{Action, Event, EventType, NewReplicaSet, ServicePort};

use super::conditions::meta_time;
use super::hash::pod_template_hash;

/// The engine's answer for one Experiment reconcile.
#[derive(Debug, Clone, Default)]
pub struct ExperimentPlan {
    pub actions: Vec<Action>,
    pub status: ExperimentStatus,
    pub events: Vec<Event>,
    pub requeue_at: Option<Timestamp>,
}

mod template_status {
    pub(super) const PROGRESSING: &str = "Progressing";
    pub(super) const RUNNING: &str = "Running";
    pub(super) const SUCCESSFUL: &str = "Successful";
    pub(super) const FAILED: &str = "Failed";
    pub(super) const ERROR: &str = "Error";
}

fn template_completed(status: &str) -> bool {
    matches!(
        status,
        template_status::SUCCESSFUL | template_status::FAILED | template_status::ERROR
    )
}

/// Argo's `TemplateIsWorse` order: Successful < Running < Progressing < Error < Failed.
fn template_severity(status: &str) -> u8 {
    match status {
        template_status::SUCCESSFUL => 0,
        template_status::RUNNING => 1,
        template_status::PROGRESSING | "" => 2,
        template_status::ERROR => 3,
        _ => 4,
    }
}

fn phase(status: &ExperimentStatus) -> Option<AnalysisPhase> {
    status.phase
}

/// Argo's `PassedDurations`: the duration has run out since all templates were available.
fn passed_duration(
    ex: &Experiment,
    status: &ExperimentStatus,
    now: Timestamp,
) -> (bool, Option<Timestamp>) {
    let (Some(available), Ok(duration)) = (
        status.available_at.as_ref(),
        parse_go_duration(&ex.spec.duration),
    ) else {
        return (false, None);
    };
    let end = available.0.checked_add(duration).unwrap_or(available.0);
    (now >= end, Some(end))
}

fn required_runs_successful(ex: &Experiment, status: &ExperimentStatus) -> bool {
    let required: Vec<&str> = ex
        .spec
        .analyses
        .iter()
        .filter(|a| a.required_for_completion)
        .map(|a| a.name.as_str())
        .collect();
    !required.is_empty()
        && required.iter().all(|name| {
            status
                .analysis_runs
                .iter()
                .any(|r| r.name == *name && r.phase == AnalysisPhase::Successful)
        })
}

/// Argo's `IsTerminating`.
fn is_terminating(ex: &Experiment, status: &ExperimentStatus, now: Timestamp) -> bool {
    if ex.spec.terminate || phase(status).is_some_and(AnalysisPhase::is_completed) {
        return true;
    }
    if status.analysis_runs.iter().any(|r| {
        matches!(
            r.phase,
            AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
        )
    }) {
        return true;
    }
    if required_runs_successful(ex, status) {
        return true;
    }
    if status
        .template_statuses
        .iter()
        .any(|t| t.status == template_status::FAILED || t.status == template_status::ERROR)
    {
        return true;
    }
    passed_duration(ex, status, now).0
}

fn replica_set_name(ex: &Experiment, template: &TemplateSpec) -> String {
    format!(
        "{}-{}",
        ex.metadata.name.as_deref().unwrap_or(""),
        template.name
    )
}

/// Reconcile one Experiment.
pub fn reconcile(ex: &Experiment, observed: &ExperimentObserved, now: Timestamp) -> ExperimentPlan {
    let old = ex.status.clone().unwrap_or_default();
    let mut plan = ExperimentPlan {
        status: old.clone(),
        ..Default::default()
    };
    let terminating = is_terminating(ex, &old, now);
    let stamp = meta_time(now);
    for template in &ex.spec.templates {
        reconcile_template(ex, template, observed, terminating, now, &mut plan);
    }
    for analysis in &ex.spec.analyses {
        reconcile_analysis(ex, analysis, observed, terminating, &mut plan);
    }
    calculate_status(ex, now, &mut plan);
    if plan.status.available_at.is_none() && phase(&plan.status) == Some(AnalysisPhase::Running) {
        plan.status.available_at = Some(stamp);
    }
    // Look again at the end of the duration, or when a template's deadline would pass.
    if !is_terminating(ex, &plan.status, now) {
        if let (false, Some(end)) = passed_duration(ex, &plan.status, now) {
            requeue(&mut plan, end);
        }
        let deadline = i64::from(
            ex.spec
                .progress_deadline_seconds
                .unwrap_or(DEFAULT_EXPERIMENT_PROGRESS_DEADLINE_SECONDS),
        );
        let template_deadlines: Vec<Timestamp> = plan
            .status
            .template_statuses
            .iter()
            .filter(|status| status.status == template_status::PROGRESSING)
            .filter_map(|status| status.last_transition_time.as_ref())
            .filter_map(|since| {
                since
                    .0
                    .checked_add(SignedDuration::from_secs(deadline))
                    .ok()
            })
            .collect();
        for at in template_deadlines {
            requeue(&mut plan, at);
        }
    }
    plan
}

fn requeue(plan: &mut ExperimentPlan, at: Timestamp) {
    let at = at.checked_add(SignedDuration::from_millis(1)).unwrap_or(at);
    plan.requeue_at = Some(plan.requeue_at.map_or(at, |current| current.min(at)));
}

fn event(plan: &mut ExperimentPlan, warning: bool, reason: String, message: String) {
    plan.events.push(Event {
        event_type: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason,
        message,
    });
}

fn reconcile_template(
    ex: &Experiment,
    template: &TemplateSpec,
    observed: &ExperimentObserved,
    terminating: bool,
    now: Timestamp,
    plan: &mut ExperimentPlan,
) {
    let name = replica_set_name(ex, template);
    let previous = plan
        .status
        .template_statuses
        .iter()
        .find(|t| t.name == template.name)
        .cloned();
    let mut status = previous.clone().unwrap_or(TemplateStatus {
        name: template.name.clone(),
        ..Default::default()
    });
    let replicas = template.replicas.unwrap_or(1);
    let desired = if terminating { 0 } else { replicas };
    let stamp = meta_time(now);
    let rs = observed.replica_sets.iter().find(|rs| rs.name == name);
    match rs {
        None => {
            if !terminating {
                let mut pod_template = template.template.clone();
                let mut labels = pod_template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                labels.remove(POD_TEMPLATE_HASH_LABEL);
                pod_template
                    .metadata
                    .get_or_insert_with(Default::default)
                    .labels = Some(labels.clone());
                let hash = pod_template_hash(&pod_template, status.collision_count);
                labels.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
                pod_template
                    .metadata
                    .get_or_insert_with(Default::default)
                    .labels = Some(labels.clone());
                let mut selector = template.selector.clone().unwrap_or_default();
                selector
                    .match_labels
                    .get_or_insert_with(Default::default)
                    .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
                let annotations = BTreeMap::from([
                    (
                        EXPERIMENT_NAME_ANNOTATION.to_string(),
                        ex.metadata.name.clone().unwrap_or_default(),
                    ),
                    (
                        EXPERIMENT_TEMPLATE_NAME_ANNOTATION.to_string(),
                        template.name.clone(),
                    ),
                    (
                        DESIRED_REPLICAS_ANNOTATION.to_string(),
                        replicas.to_string(),
                    ),
                ]);
                plan.actions.push(Action::CreateReplicaSet(NewReplicaSet {
                    name: name.clone(),
                    labels,
                    annotations,
                    selector,
                    template: pod_template,
                    min_ready_seconds: template.min_ready_seconds.unwrap_or(0),
                }));
                status.last_transition_time = Some(stamp.clone());
                status.pod_template_hash = hash;
            }
        }
        Some(rs) => {
            if template.service.is_some() && desired != 0 && status.service_name.is_empty() {
                let service_name = template
                    .service
                    .as_ref()
                    .map(|s| s.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| name.clone());
                let ports: Vec<ServicePort> = rs
                    .template
                    .spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .flat_map(|c| c.ports.iter().flatten())
                    .map(|p| ServicePort {
                        name: p.name.clone(),
                        port: p.container_port,
                        protocol: p.protocol.clone(),
                    })
                    .collect();
                if !ports.is_empty() {
                    plan.actions.push(Action::CreateService {
                        name: service_name.clone(),
                        selector: rs.labels.clone(),
                        ports,
                    });
                    status.service_name = service_name;
                    status.pod_template_hash = rs.pod_hash().to_string();
                }
            }
            let mut target = desired;
            if desired == 0 && rs.spec_replicas != 0 {
                // Keep the pods for scaleDownDelaySeconds after the experiment ends.
                let delay = i64::from(
                    ex.spec
                        .scale_down_delay_seconds
                        .unwrap_or(DEFAULT_EXPERIMENT_SCALE_DOWN_DELAY_SECONDS),
                );
                match rs
                    .scale_down_deadline()
                    .and_then(|d| d.parse::<Timestamp>().ok())
                {
                    None if delay > 0 => {
                        let at = Timestamp::from_second(now.as_second() + delay).unwrap_or(now);
                        plan.actions.push(Action::SetScaleDownDeadline {
                            name: rs.name.clone(),
                            deadline: Some(at),
                        });
                        requeue(plan, at);
                        target = rs.spec_replicas;
                    }
                    Some(at) if at > now => {
                        requeue(plan, at);
                        target = rs.spec_replicas;
                    }
                    _ => {}
                }
            }
            if rs.spec_replicas != target {
                plan.actions.push(Action::ScaleReplicaSet {
                    name: rs.name.clone(),
                    from: rs.spec_replicas,
                    to: target,
                    desired_replicas_annotation: replicas,
                    remove_scale_down_deadline: false,
                });
                status.last_transition_time = Some(stamp.clone());
                if target == 0 && !status.service_name.is_empty() {
                    plan.actions.push(Action::DeleteService {
                        name: status.service_name.clone(),
                    });
                    status.service_name = String::new();
                }
            }
            status.replicas = rs.replicas;
            status.updated_replicas = rs.replicas;
            status.ready_replicas = rs.ready_replicas;
            status.available_replicas = rs.available_replicas;
        }
    }
    let counts_changed = previous.as_ref().is_none_or(|p| {
        (
            p.replicas,
            p.updated_replicas,
            p.ready_replicas,
            p.available_replicas,
        ) != (
            status.replicas,
            status.updated_replicas,
            status.ready_replicas,
            status.available_replicas,
        )
    });
    if counts_changed {
        status.last_transition_time = Some(stamp.clone());
    }
    if !template_completed(&status.status) {
        if desired == status.available_replicas {
            status.status = if passed_duration(ex, &plan.status, now).0 || terminating {
                template_status::SUCCESSFUL
            } else {
                template_status::RUNNING
            }
            .into();
        } else {
            let deadline = i64::from(
                ex.spec
                    .progress_deadline_seconds
                    .unwrap_or(DEFAULT_EXPERIMENT_PROGRESS_DEADLINE_SECONDS),
            );
            let from = status.last_transition_time.clone().unwrap_or(stamp.clone());
            if now
                > from
                    .0
                    .checked_add(SignedDuration::from_secs(deadline))
                    .unwrap_or(from.0)
            {
                status.status = template_status::FAILED.into();
                status.message = format!(
                    "Template '{}' exceeded its progressDeadlineSeconds ({deadline})",
                    template.name
                );
            } else if terminating {
                status.status = template_status::SUCCESSFUL.into();
            } else {
                status.status = template_status::PROGRESSING.into();
            }
        }
    }
    let previous_status = previous.map(|p| p.status).unwrap_or_default();
    if previous_status != status.status {
        let mut message = format!(
            "Template '{}' transitioned from {} -> {}",
            template.name, previous_status, status.status
        );
        if !status.message.is_empty() {
            message.push_str(&format!(": {}", status.message));
        }
        let warning =
            status.status == template_status::FAILED || status.status == template_status::ERROR;
        event(plan, warning, format!("Template{}", status.status), message);
    }
    upsert(&mut plan.status.template_statuses, status, |t| {
        t.name == template.name
    });
}

/// Replace the entry `is_it` finds, or append.
fn upsert<T>(entries: &mut Vec<T>, entry: T, is_it: impl Fn(&T) -> bool) {
    match entries.iter_mut().find(|e| is_it(e)) {
        Some(existing) => *existing = entry,
        None => entries.push(entry),
    }
}

fn reconcile_analysis(
    ex: &Experiment,
    analysis: &rollout_runner_api::crd::ExperimentAnalysisTemplateRef,
    observed: &ExperimentObserved,
    terminating: bool,
    plan: &mut ExperimentPlan,
) {
    let ex_name = ex.metadata.name.clone().unwrap_or_default();
    let previous = plan
        .status
        .analysis_runs
        .iter()
        .find(|r| r.name == analysis.name)
        .cloned()
        .unwrap_or(ExperimentAnalysisRunStatus {
            name: analysis.name.clone(),
            ..Default::default()
        });
    let mut status = previous.clone();
    let source = TemplateSource {
        templates: Some(&observed.analysis_templates),
        cluster_templates: Some(&observed.cluster_analysis_templates),
    };
    let reference = TemplateRef {
        name: analysis.template_name.clone(),
        cluster_scope: analysis.cluster_scope,
    };
    if plan.status.available_at.is_none() {
        // Not available yet: only check the template exists.
        if let Err(error) = build::flatten_templates(std::slice::from_ref(&reference), &source) {
            let kind = if analysis.cluster_scope {
                "ClusterAnalysisTemplate"
            } else {
                "AnalysisTemplate"
            };
            status.phase = AnalysisPhase::Error;
            status.message = format!(
                "{kind} verification failed for analysis '{}': {error}",
                analysis.name
            );
        }
    } else if previous.analysis_run.is_empty() {
        if !terminating {
            let run_name = format!("{ex_name}-{}", analysis.name);
            let created = build::flatten_templates(std::slice::from_ref(&reference), &source)
                .and_then(|flat| {
                    build::run_spec(
                        flat,
                        &analysis.args,
                        &ex.spec.dry_run,
                        &ex.spec.measurement_retention,
                    )
                });
            match created {
                Ok(spec) => {
                    let existing = observed
                        .analysis_runs
                        .iter()
                        .any(|r| r.metadata.name.as_deref() == Some(run_name.as_str()));
                    if !existing {
                        let mut labels = BTreeMap::new();
                        labels.extend(ex.spec.analysis_run_metadata.labels.clone());
                        plan.actions
                            .push(Action::CreateAnalysisRun(Box::new(AnalysisRun {
                                metadata: ObjectMeta {
                                    name: Some(run_name.clone()),
                                    namespace: ex.metadata.namespace.clone(),
                                    labels: Some(labels),
                                    annotations: Some(
                                        ex.spec.analysis_run_metadata.annotations.clone(),
                                    ),
                                    ..Default::default()
                                },
                                spec,
                                status: None,
                            })));
                    }
                    status.phase = AnalysisPhase::Pending;
                    status.analysis_run = run_name;
                }
                Err(error) => {
                    status.phase = AnalysisPhase::Error;
                    status.message = format!(
                        "Failed to create AnalysisRun for analysis '{}': {error}",
                        analysis.name
                    );
                }
            }
        }
    } else if !previous.phase.is_completed() {
        match observed
            .analysis_runs
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(previous.analysis_run.as_str()))
        {
            None => {
                status.phase = AnalysisPhase::Error;
                status.message = format!("AnalysisRun '{}' not found", previous.analysis_run);
            }
            Some(run) => {
                let run_status = run.status.clone().unwrap_or_default();
                if terminating {
                    if !run_status.phase.is_completed() && !run.spec.terminate {
                        plan.actions.push(Action::TerminateAnalysisRun {
                            name: previous.analysis_run.clone(),
                        });
                    }
                } else {
                    status.phase = run_status.phase;
                    status.message = run_status.message;
                }
            }
        }
    }
    if previous.phase != status.phase {
        let mut message = format!(
            "AnalysisRun '{}' transitioned from {} -> {}",
            analysis.name, previous.phase, status.phase
        );
        if !status.message.is_empty() {
            message.push_str(&format!(": {}", status.message));
        }
        let warning = matches!(
            status.phase,
            AnalysisPhase::Failed | AnalysisPhase::Error | AnalysisPhase::Inconclusive
        );
        event(
            plan,
            warning,
            format!("AnalysisRun{}", status.phase),
            message,
        );
    }
    upsert(&mut plan.status.analysis_runs, status, |r| {
        r.name == analysis.name
    });
}

/// Argo's `calculateStatus`.
fn calculate_status(ex: &Experiment, now: Timestamp, plan: &mut ExperimentPlan) {
    let previous = plan.status.phase;
    match plan.status.phase {
        None => plan.status.phase = Some(AnalysisPhase::Pending),
        Some(AnalysisPhase::Pending | AnalysisPhase::Running) => {
            let (template_phase, template_message) = assess_templates(ex, &plan.status);
            let (analyses_phase, analyses_message) = assess_analyses(ex, &plan.status);
            if template_phase == AnalysisPhase::Running && plan.status.available_at.is_none() {
                plan.status.available_at = Some(meta_time(now));
            }
            let (phase, message) = if template_phase.is_completed() {
                let analyses_done = analyses_phase.is_completed()
                    || ex.spec.analyses.iter().any(|a| a.required_for_completion);
                if template_phase == AnalysisPhase::Successful && analyses_done {
                    (analyses_phase, analyses_message)
                } else {
                    (template_phase, template_message)
                }
            } else if analyses_phase.is_completed() && analyses_phase != AnalysisPhase::Successful
                || required_runs_successful(ex, &plan.status)
            {
                (analyses_phase, analyses_message)
            } else {
                (template_phase, template_message)
            };
            plan.status.phase = Some(phase);
            plan.status.message = message;
        }
        Some(_) => {}
    }
    if previous != plan.status.phase
        && let Some(phase) = plan.status.phase
    {
        let warning = matches!(
            phase,
            AnalysisPhase::Error | AnalysisPhase::Failed | AnalysisPhase::Inconclusive
        );
        let from = previous.map(|p| p.to_string()).unwrap_or_default();
        event(
            plan,
            warning,
            format!("Experiment{phase}"),
            format!("Experiment transitioned from {from} -> {phase}"),
        );
    }
}

fn assess_templates(ex: &Experiment, status: &ExperimentStatus) -> (AnalysisPhase, String) {
    let mut worst = template_status::SUCCESSFUL.to_string();
    let mut message = String::new();
    for template in &ex.spec.templates {
        match status
            .template_statuses
            .iter()
            .find(|t| t.name == template.name)
        {
            None => {
                if template_severity(template_status::PROGRESSING) > template_severity(&worst) {
                    worst = template_status::PROGRESSING.into();
                }
            }
            Some(t) => {
                if template_severity(&t.status) > template_severity(&worst) {
                    worst = t.status.clone();
                    message = t.message.clone();
                }
            }
        }
    }
    let phase = match worst.as_str() {
        template_status::PROGRESSING | "" => AnalysisPhase::Pending,
        template_status::FAILED => AnalysisPhase::Failed,
        template_status::ERROR => AnalysisPhase::Error,
        template_status::SUCCESSFUL => AnalysisPhase::Successful,
        _ => AnalysisPhase::Running,
    };
    (phase, message)
}

fn assess_analyses(ex: &Experiment, status: &ExperimentStatus) -> (AnalysisPhase, String) {
    let mut worst = AnalysisPhase::Successful;
    let mut message = String::new();
    for analysis in &ex.spec.analyses {
        let phase = status
            .analysis_runs
            .iter()
            .find(|r| r.name == analysis.name)
            .map(|r| (r.phase, r.message.clone()))
            .unwrap_or_default();
        if phase.0.severity() > worst.severity() {
            worst = phase.0;
            message = phase.1;
        }
    }
    if required_runs_successful(ex, status) && worst.severity() > AnalysisPhase::Running.severity()
    {
        return (
            AnalysisPhase::Successful,
            "Required AnalysisRuns completed".into(),
        );
    }
    if worst == AnalysisPhase::Pending {
        worst = AnalysisPhase::Running;
    }
    (worst, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_runner_api::crd::ExperimentSpec;
    use rollout_runner_api::observed::ReplicaSetState;

    fn experiment(duration: &str) -> Experiment {
        let mut ex =
            Experiment::new(
                "exp",
                ExperimentSpec {
                    duration: duration.into(),
                    templates: vec![serde_json::from_value(serde_json::json!({
                    "name": "canary",
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "web:2"}]}}
                }))
                .unwrap()],
                    ..Default::default()
                },
            );
        ex.metadata.namespace = Some("shop".into());
        ex
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn rs_from(plan: &ExperimentPlan, available: i32) -> ReplicaSetState {
        let Some(Action::CreateReplicaSet(new)) = plan.actions.first() else {
            panic!("expected a ReplicaSet to be created: {:?}", plan.actions);
        };
        ReplicaSetState {
            name: new.name.clone(),
            labels: new.labels.clone(),
            annotations: new.annotations.clone(),
            created_at: at(0),
            spec_replicas: 2,
            replicas: 2,
            ready_replicas: available,
            available_replicas: available,
            min_ready_seconds: 0,
            template: new.template.clone(),
            deleting: false,
            replica_failure: None,
        }
    }

    #[test]
    fn an_experiment_runs_for_its_duration_then_succeeds_and_scales_down() {
        let mut ex = experiment("1m");
        let plan = reconcile(&ex, &ExperimentObserved::default(), at(0));
        assert_eq!(plan.status.phase, Some(AnalysisPhase::Pending));
        let rs = rs_from(&plan, 2);
        ex.status = Some(plan.status);
        let observed = ExperimentObserved {
            replica_sets: vec![rs],
            ..Default::default()
        };
        let plan = reconcile(&ex, &observed, at(10));
        assert_eq!(plan.status.phase, Some(AnalysisPhase::Running));
        assert!(plan.status.available_at.is_some());
        ex.status = Some(plan.status);
        let plan = reconcile(&ex, &observed, at(100));
        assert_eq!(plan.status.phase, Some(AnalysisPhase::Successful));
        ex.status = Some(plan.status);
        // Once finished, the pods stay for the scale-down delay, then go.
        let plan = reconcile(&ex, &observed, at(101));
        assert!(
            plan.actions
                .iter()
                .any(|a| matches!(a, Action::SetScaleDownDeadline { .. }))
        );
    }

    #[test]
    fn a_template_that_never_becomes_available_fails_the_experiment() {
        let mut ex = experiment("");
        ex.spec.progress_deadline_seconds = Some(60);
        let plan = reconcile(&ex, &ExperimentObserved::default(), at(0));
        let rs = rs_from(&plan, 0);
        ex.status = Some(plan.status);
        let observed = ExperimentObserved {
            replica_sets: vec![rs],
            ..Default::default()
        };
        let plan = reconcile(&ex, &observed, at(5));
        ex.status = Some(plan.status);
        let plan = reconcile(&ex, &observed, at(120));
        assert_eq!(plan.status.phase, Some(AnalysisPhase::Failed));
        assert_eq!(
            plan.status.message,
            "Template 'canary' exceeded its progressDeadlineSeconds (60)"
        );
    }
}
