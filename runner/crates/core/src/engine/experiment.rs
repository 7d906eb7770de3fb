//! The rollout side of experiment steps (Argo's `rollout/experiment.go`): create the step's
//! Experiment from the canary and stable templates, turn its phase into a pause or an abort,
//! and cancel or clean up the others. The Experiment's own lifecycle lives in
//! [`crate::engine::experiment_run`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::analysis::build;
use rollout_runner_api::crd::{
    AnalysisPhase, Argument, Experiment, ExperimentAnalysisTemplateRef, ExperimentSpec,
    POD_TEMPLATE_HASH_LABEL, PauseReason, REVISION_ANNOTATION, RolloutExperimentStep,
    TemplateService, TemplateSpec,
};
use rollout_runner_api::plan::Action;

use super::conditions::Reason;
use super::context::Ctx;
use super::replicas;

fn experiment_phase(ex: &Experiment) -> Option<AnalysisPhase> {
    ex.status.as_ref().and_then(|s| s.phase)
}

fn name_of(ex: &Experiment) -> String {
    ex.metadata.name.clone().unwrap_or_default()
}

impl Ctx<'_> {
    /// `reconcileExperiments`.
    pub(crate) fn reconcile_experiments(&mut self) {
        if self.is_aborted() || self.old.promote_full {
            let all: Vec<Experiment> = self
                .other_exs
                .iter()
                .chain(self.current_ex.iter())
                .cloned()
                .collect();
            self.cancel_experiments(&all);
            return;
        }
        if self.new_rs.is_none() || self.stable_rs.is_none() {
            return;
        }
        let (step, index) = replicas::current_step(self.spec, &self.old);
        let mut current = self.current_ex.clone();
        let experiment_step = step.and_then(|s| s.experiment.clone());
        match (experiment_step, index) {
            (Some(step), Some(index)) => {
                if current.is_none() {
                    current = self.create_experiment(&step, index);
                }
            }
            _ => {
                if let Some(ex) = current.take() {
                    self.other_exs.push(ex);
                }
            }
        }
        if let Some(ex) = &current {
            match experiment_phase(ex) {
                Some(AnalysisPhase::Inconclusive) => {
                    self.pause.add_pause(PauseReason::InconclusiveExperiment)
                }
                Some(phase @ (AnalysisPhase::Error | AnalysisPhase::Failed)) => {
                    let message = ex
                        .status
                        .as_ref()
                        .map(|s| s.message.clone())
                        .unwrap_or_default();
                    let verb = if phase == AnalysisPhase::Error {
                        "error"
                    } else {
                        "failed"
                    };
                    self.pause
                        .add_abort(format!("Experiment analysis phase is {verb}: {message}"));
                }
                _ => {}
            }
            self.new_status.canary.current_experiment = name_of(ex);
        }
        self.current_ex = current.clone();
        let current_name = current.as_ref().map(name_of);
        let others: Vec<Experiment> = self
            .other_exs
            .iter()
            .filter(|ex| Some(name_of(ex)) != current_name)
            .cloned()
            .collect();
        self.cancel_experiments(&others);
    }

    fn cancel_experiments(&mut self, experiments: &[Experiment]) {
        for ex in experiments {
            let completed = experiment_phase(ex).is_some_and(AnalysisPhase::is_completed);
            if !ex.spec.terminate && !completed {
                self.plan
                    .actions
                    .push(Action::TerminateExperiment { name: name_of(ex) });
            }
        }
    }

    fn create_experiment(
        &mut self,
        step: &RolloutExperimentStep,
        index: i32,
    ) -> Option<Experiment> {
        let experiment = match self.experiment_from_step(step, index) {
            Ok(experiment) => experiment,
            Err(message) => {
                self.fail(format!(
                    "cannot create the experiment of step {index}: {message}"
                ));
                return None;
            }
        };
        let base = name_of(&experiment);
        let mut name = base.clone();
        let mut counter = 0;
        while let Some(existing) = self.observed.experiment(&name) {
            let completed = experiment_phase(existing).is_some_and(AnalysisPhase::is_completed);
            if !completed && existing.spec == experiment.spec {
                return Some(existing.clone());
            }
            counter += 1;
            name = format!("{base}-{counter}");
        }
        let mut experiment = experiment;
        experiment.metadata.name = Some(name.clone());
        self.plan
            .actions
            .push(Action::CreateExperiment(Box::new(experiment.clone())));
        self.event(
            Reason::ExperimentCreated,
            format!("Created Experiment '{name}'"),
        );
        Some(experiment)
    }

    /// Argo's `GetExperimentFromTemplate`.
    fn experiment_from_step(
        &self,
        step: &RolloutExperimentStep,
        index: i32,
    ) -> Result<Experiment, String> {
        let (Some(new), Some(stable)) = (&self.new_rs, &self.stable_rs) else {
            return Err("no stable ReplicaSet yet".into());
        };
        let pod_hash = new.pod_hash().to_string();
        let mut templates = Vec::new();
        for template in &step.templates {
            let source = if template.spec_ref == "stable" {
                stable
            } else {
                new
            };
            let mut pod_template = source.template.clone();
            let mut selector = template
                .selector
                .clone()
                .or_else(|| self.spec.selector.clone())
                .unwrap_or_default();
            // The ReplicaSet's own hash label would collide with the rollout's: drop it; the
            // experiment computes a hash of its own.
            if let Some(labels) = pod_template
                .metadata
                .as_mut()
                .and_then(|m| m.labels.as_mut())
            {
                labels.remove(POD_TEMPLATE_HASH_LABEL);
                labels.extend(template.metadata.labels.clone());
            }
            if !template.metadata.annotations.is_empty() {
                pod_template
                    .metadata
                    .get_or_insert_with(Default::default)
                    .annotations
                    .get_or_insert_with(Default::default)
                    .extend(template.metadata.annotations.clone());
            }
            if !template.metadata.labels.is_empty() {
                selector
                    .match_labels
                    .get_or_insert_with(Default::default)
                    .extend(template.metadata.labels.clone());
            }
            let service = match (&template.service, template.weight) {
                (Some(service), _) => Some(service.clone()),
                (None, Some(_)) => Some(TemplateService::default()),
                (None, None) => None,
            };
            templates.push(TemplateSpec {
                name: template.name.clone(),
                replicas: template.replicas,
                min_ready_seconds: Some(self.spec.min_ready_seconds_or_default()),
                selector: Some(selector),
                template: pod_template,
                service,
            });
        }
        let stable_hash = stable.pod_hash().to_string();
        let mut analyses = Vec::new();
        for analysis in &step.analyses {
            let args: Vec<Argument> = build::rollout_arguments(
                &analysis.args,
                Some(&stable_hash),
                Some(&pod_hash),
                self.rollout,
            )
            .map_err(|e| e.to_string())?;
            analyses.push(ExperimentAnalysisTemplateRef {
                name: analysis.name.clone(),
                template_name: analysis.template_name.clone(),
                cluster_scope: analysis.cluster_scope,
                args,
                required_for_completion: analysis.required_for_completion,
            });
        }
        let mut labels: BTreeMap<String, String> =
            self.rollout.metadata.labels.clone().unwrap_or_default();
        labels.insert(POD_TEMPLATE_HASH_LABEL.to_string(), pod_hash.clone());
        let name = format!("{}-{}-{}-{}", self.name(), pod_hash, self.revision, index);
        Ok(Experiment {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(self.namespace().to_string()),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    REVISION_ANNOTATION.to_string(),
                    self.revision.clone(),
                )])),
                ..Default::default()
            },
            spec: ExperimentSpec {
                templates,
                duration: step.duration.clone(),
                progress_deadline_seconds: Some(self.spec.progress_deadline_seconds_or_default()),
                terminate: false,
                analyses,
                scale_down_delay_seconds: step.scale_down_delay_seconds,
                dry_run: step.dry_run.clone(),
                measurement_retention: Vec::new(),
                analysis_run_metadata: step.analysis_run_metadata.clone(),
            },
            status: None,
        })
    }
}
