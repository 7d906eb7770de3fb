//! The rollout's AnalysisRuns (Argo's `rollout/analysis.go`): create the step, background and
//! blue-green pre/post-promotion runs, turn their phases into pauses and aborts, cancel the runs
//! no longer wanted, and keep a bounded history.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::analysis::build::{self, TemplateRef, TemplateSource};
use rollout_runner_api::crd::{
    AnalysisPhase, AnalysisRun, POD_TEMPLATE_HASH_LABEL, PauseReason, REVISION_ANNOTATION,
    ROLLOUT_TYPE_LABEL, RolloutAnalysis, RolloutAnalysisRunStatus, STEP_INDEX_LABEL,
};
use rollout_runner_api::plan::Action;

use super::context::{Ctx, CurrentRuns};
use super::pause::pause_condition;
use super::replicas;

/// How a rollout uses a run, as its `rollout-type` label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunKind {
    Background,
    Step,
    PrePromotion,
    PostPromotion,
}

impl RunKind {
    fn label(self) -> &'static str {
        match self {
            Self::Background => "Background",
            Self::Step => "Step",
            Self::PrePromotion => "PrePromotion",
            Self::PostPromotion => "PostPromotion",
        }
    }
}

fn phase(run: &AnalysisRun) -> AnalysisPhase {
    run.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

fn is_completed(run: &AnalysisRun) -> bool {
    run.status.as_ref().is_some_and(|s| s.phase.is_completed())
}

fn name_of(run: &AnalysisRun) -> String {
    run.metadata.name.clone().unwrap_or_default()
}

impl Ctx<'_> {
    /// `reconcileAnalysisRuns`.
    pub(crate) fn reconcile_analysis_runs(&mut self) {
        let rollback_in_delay = self
            .new_rs
            .as_ref()
            .is_some_and(|rs| rs.scale_down_deadline().is_some());
        let initial_deploy = self.old.stable_rs.is_empty();
        if self.is_aborted() || self.old.promote_full || rollback_in_delay || initial_deploy {
            let all: Vec<AnalysisRun> = self
                .current_ars
                .all()
                .chain(self.other_ars.iter())
                .cloned()
                .collect();
            let current = self.current_ars.clone();
            self.set_current_analysis_runs(&current);
            self.cancel_analysis_runs(&all);
            return;
        }
        let mut current = CurrentRuns::default();
        if self.spec.canary().is_some() {
            current.canary_step = self.reconcile_step_analysis_run();
            current.canary_background = self.reconcile_background_analysis_run();
        }
        if self.spec.blue_green().is_some() {
            let pre = self.reconcile_pre_promotion_analysis_run();
            if let Some(run) = &pre {
                self.set_pause_or_abort(run);
            }
            current.pre_promotion = pre;
            let post = self.reconcile_post_promotion_analysis_run();
            if let Some(run) = &post {
                self.set_pause_or_abort(run);
            }
            current.post_promotion = post;
        }
        self.set_current_analysis_runs(&current);

        let current_names: Vec<String> = current.all().map(name_of).collect();
        let others: Vec<AnalysisRun> = self
            .other_ars
            .iter()
            .filter(|run| !current_names.contains(&name_of(run)))
            .cloned()
            .collect();
        self.cancel_analysis_runs(&others);
        self.delete_old_analysis_runs(&others);
        self.emit_analysis_run_changes(&current);
    }

    /// Record the current runs' names and phases in the status being built.
    fn set_current_analysis_runs(&mut self, current: &CurrentRuns) {
        let status_of = |run: &Option<AnalysisRun>| {
            run.as_ref().map(|run| RolloutAnalysisRunStatus {
                name: name_of(run),
                status: phase(run),
                message: run
                    .status
                    .as_ref()
                    .map(|s| s.message.clone())
                    .unwrap_or_default(),
            })
        };
        if self.spec.canary().is_some() {
            self.new_status
                .canary
                .current_background_analysis_run_status = status_of(&current.canary_background);
            self.new_status.canary.current_step_analysis_run_status =
                status_of(&current.canary_step);
        } else if self.spec.blue_green().is_some() {
            self.new_status.blue_green.pre_promotion_analysis_run_status =
                status_of(&current.pre_promotion);
            self.new_status
                .blue_green
                .post_promotion_analysis_run_status = status_of(&current.post_promotion);
        }
        self.current_ars = current.clone();
    }

    /// Inconclusive pauses; Failed or Error aborts with the run's message (which names the
    /// metric and why, e.g. `Metric "error-rate" assessed Failed due to failed (1) >
    /// failureLimit (0)`).
    fn set_pause_or_abort(&mut self, run: &AnalysisRun) {
        match phase(run) {
            AnalysisPhase::Inconclusive => self.pause.add_pause(PauseReason::InconclusiveAnalysis),
            AnalysisPhase::Error | AnalysisPhase::Failed => {
                let message = run
                    .status
                    .as_ref()
                    .map(|s| s.message.clone())
                    .unwrap_or_default();
                self.pause.add_abort(message);
            }
            _ => {}
        }
    }

    /// `needsNewAnalysisRun`: none yet, a retry after an abort, or a resume after an
    /// inconclusive pause.
    fn needs_new_analysis_run(&self, current: Option<&AnalysisRun>) -> bool {
        let Some(current) = current else {
            return true;
        };
        if self.old.controller_pause
            && pause_condition(self.rollout, PauseReason::BlueGreenPause).is_none()
        {
            return phase(current) == AnalysisPhase::Inconclusive;
        }
        self.old.aborted_at.is_some()
    }

    fn inconclusive_pause(&self) -> bool {
        pause_condition(self.rollout, PauseReason::InconclusiveAnalysis).is_some()
    }

    fn reconcile_step_analysis_run(&mut self) -> Option<AnalysisRun> {
        let current = self.current_ars.canary_step.clone();
        if !self.old.pause_conditions.is_empty() || self.old.abort {
            return current;
        }
        let (step, index) = replicas::current_step(self.spec, &self.old);
        let (Some(analysis), Some(index)) = (step.and_then(|s| s.analysis.clone()), index) else {
            self.cancel_analysis_runs(current.as_slice());
            return None;
        };
        if self.needs_new_analysis_run(current.as_ref()) {
            return self.create_analysis_run(
                &analysis,
                &index.to_string(),
                RunKind::Step,
                Some(index),
            );
        }
        let run = current?;
        self.set_pause_or_abort(&run);
        Some(run)
    }

    fn reconcile_background_analysis_run(&mut self) -> Option<AnalysisRun> {
        let current = self.current_ars.canary_background.clone();
        let Some(background) = self.spec.canary().and_then(|c| c.analysis.clone()) else {
            self.cancel_analysis_runs(current.as_slice());
            return None;
        };
        let fully_promoted =
            !self.old.stable_rs.is_empty() && self.old.stable_rs == self.old.current_pod_hash;
        let before_start = background.starting_step.is_some_and(|start| {
            replicas::current_step(self.spec, &self.old)
                .1
                .is_some_and(|index| index < start)
        });
        if fully_promoted
            || self.old.stable_rs.is_empty()
            || self.old.current_pod_hash.is_empty()
            || before_start
        {
            return None;
        }
        if self.inconclusive_pause() {
            return current;
        }
        if self.needs_new_analysis_run(current.as_ref()) {
            return self.create_analysis_run(&background.analysis, "", RunKind::Background, None);
        }
        let run = current?;
        self.set_pause_or_abort(&run);
        Some(run)
    }

    fn reconcile_pre_promotion_analysis_run(&mut self) -> Option<AnalysisRun> {
        let current = self.current_ars.pre_promotion.clone();
        let Some(analysis) = self
            .spec
            .blue_green()
            .and_then(|b| b.pre_promotion_analysis.clone())
        else {
            self.cancel_analysis_runs(current.as_slice());
            return None;
        };
        if self.skip_pre_promotion_analysis() {
            self.cancel_analysis_runs(current.as_slice());
            return current;
        }
        if self.inconclusive_pause() {
            return current;
        }
        if self.needs_new_analysis_run(current.as_ref()) {
            return self.create_analysis_run(&analysis, "pre", RunKind::PrePromotion, None);
        }
        current
    }

    fn reconcile_post_promotion_analysis_run(&mut self) -> Option<AnalysisRun> {
        let current = self.current_ars.post_promotion.clone();
        let Some(analysis) = self
            .spec
            .blue_green()
            .and_then(|b| b.post_promotion_analysis.clone())
        else {
            self.cancel_analysis_runs(current.as_slice());
            return None;
        };
        if self.skip_post_promotion_analysis() {
            self.cancel_analysis_runs(current.as_slice());
            return current;
        }
        if self.inconclusive_pause() {
            return current;
        }
        if self.needs_new_analysis_run(current.as_ref()) {
            return self.create_analysis_run(&analysis, "post", RunKind::PostPromotion, None);
        }
        current
    }

    /// `createAnalysisRun` with Argo's collision handling: an existing run with the same name,
    /// not completed and built from the same spec, is re-used; otherwise `.1`, `.2`, ...
    fn create_analysis_run(
        &mut self,
        analysis: &RolloutAnalysis,
        infix: &str,
        kind: RunKind,
        step_index: Option<i32>,
    ) -> Option<AnalysisRun> {
        let run = match self.new_analysis_run(analysis, infix, kind, step_index) {
            Ok(run) => run,
            Err(message) => {
                self.fail(format!(
                    "cannot create {} AnalysisRun: {message}",
                    kind.label()
                ));
                return None;
            }
        };
        let base = name_of(&run);
        let mut name = base.clone();
        let mut counter = 0;
        loop {
            match self.observed.analysis_run(&name) {
                None => break,
                Some(existing) => {
                    if !is_completed(existing) && existing.spec == run.spec {
                        return Some(existing.clone());
                    }
                    counter += 1;
                    name = format!("{base}.{counter}");
                }
            }
        }
        let mut run = run;
        run.metadata.name = Some(name);
        self.plan
            .actions
            .push(Action::CreateAnalysisRun(Box::new(run.clone())));
        Some(run)
    }

    fn new_analysis_run(
        &self,
        analysis: &RolloutAnalysis,
        infix: &str,
        kind: RunKind,
        step_index: Option<i32>,
    ) -> Result<AnalysisRun, String> {
        let new_hash = self.new_rs.as_ref().map(|rs| rs.pod_hash().to_string());
        let pod_hash = new_hash.clone().filter(|h| !h.is_empty()).ok_or_else(|| {
            format!(
                "latest ReplicaSet '{}' has no pod hash in the labels",
                self.new_rs
                    .as_ref()
                    .map(|rs| rs.name.as_str())
                    .unwrap_or("")
            )
        })?;
        let stable_hash = self.stable_rs.as_ref().map(|rs| rs.pod_hash().to_string());
        let args = build::rollout_arguments(
            &analysis.args,
            stable_hash.as_deref(),
            new_hash.as_deref(),
            self.rollout,
        )
        .map_err(|e| e.to_string())?;
        let references: Vec<TemplateRef> = analysis
            .templates
            .iter()
            .map(|t| TemplateRef {
                name: t.template_name.clone(),
                cluster_scope: t.cluster_scope,
            })
            .collect();
        let source = TemplateSource {
            templates: Some(&self.observed.analysis_templates),
            cluster_templates: Some(&self.observed.cluster_analysis_templates),
        };
        let flat = build::flatten_templates(&references, &source).map_err(|e| e.to_string())?;
        let spec = build::run_spec(
            flat,
            &args,
            &analysis.dry_run,
            &analysis.measurement_retention,
        )
        .map_err(|e| e.to_string())?;

        let mut name_parts = vec![
            self.name().to_string(),
            pod_hash.clone(),
            self.revision.clone(),
        ];
        if !infix.is_empty() {
            name_parts.push(infix.to_string());
        }
        let mut labels = BTreeMap::from([
            (POD_TEMPLATE_HASH_LABEL.to_string(), pod_hash),
            (ROLLOUT_TYPE_LABEL.to_string(), kind.label().to_string()),
        ]);
        if let Some(index) = step_index {
            labels.insert(STEP_INDEX_LABEL.to_string(), index.to_string());
        }
        labels.extend(analysis.analysis_run_metadata.labels.clone());
        if let Some(selector) = self
            .spec
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
        {
            labels.extend(selector);
        }
        let mut annotations =
            BTreeMap::from([(REVISION_ANNOTATION.to_string(), self.revision.clone())]);
        annotations.extend(analysis.analysis_run_metadata.annotations.clone());
        Ok(AnalysisRun {
            metadata: ObjectMeta {
                name: Some(name_parts.join("-")),
                namespace: Some(self.namespace().to_string()),
                labels: Some(labels),
                annotations: Some(annotations),
                ..Default::default()
            },
            spec,
            status: None,
        })
    }

    /// `cancelAnalysisRuns`: terminate runs that are still going.
    pub(crate) fn cancel_analysis_runs(&mut self, runs: &[AnalysisRun]) {
        for run in runs {
            if !run.spec.terminate && !is_completed(run) {
                let name = name_of(run);
                let already =
                    self.plan.actions.iter().any(
                        |a| matches!(a, Action::TerminateAnalysisRun { name: n } if *n == name),
                    );
                if !already {
                    self.plan
                        .actions
                        .push(Action::TerminateAnalysisRun { name });
                }
            }
        }
    }

    /// `FilterAnalysisRunsToDelete`: keep the newest successful and unsuccessful runs up to the
    /// history limits; never delete runs of a live revision.
    fn delete_old_analysis_runs(&mut self, others: &[AnalysisRun]) {
        let live_hashes: Vec<String> = self
            .all_rss
            .iter()
            .chain(self.new_rs.iter())
            .filter(|rs| rs.spec_replicas > 0 || rs.replicas > 0)
            .map(|rs| rs.pod_hash().to_string())
            .collect();
        let mut candidates: Vec<&AnalysisRun> = others
            .iter()
            .filter(|run| is_completed(run))
            .filter(|run| {
                let hash = run
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
                    .cloned()
                    .unwrap_or_default();
                !live_hashes.contains(&hash)
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.metadata
                .creation_timestamp
                .cmp(&a.metadata.creation_timestamp)
        });
        let successful_limit =
            usize::try_from(self.spec.successful_run_history_limit()).unwrap_or(0);
        let unsuccessful_limit =
            usize::try_from(self.spec.unsuccessful_run_history_limit()).unwrap_or(0);
        let (mut successful, mut unsuccessful) = (0, 0);
        let mut deletions = Vec::new();
        for run in candidates {
            let counter = if phase(run) == AnalysisPhase::Successful {
                &mut successful
            } else {
                &mut unsuccessful
            };
            *counter += 1;
            let limit = if phase(run) == AnalysisPhase::Successful {
                successful_limit
            } else {
                unsuccessful_limit
            };
            if *counter > limit {
                deletions.push(name_of(run));
            }
        }
        for name in deletions {
            self.plan.actions.push(Action::DeleteAnalysisRun { name });
        }
    }

    /// Events when a current run's phase changes (`AnalysisRun<Phase>`).
    fn emit_analysis_run_changes(&mut self, current: &CurrentRuns) {
        let old = self.old.clone();
        let pairs = [
            (
                old.blue_green.post_promotion_analysis_run_status.as_ref(),
                current.post_promotion.as_ref(),
                RunKind::PostPromotion,
            ),
            (
                old.blue_green.pre_promotion_analysis_run_status.as_ref(),
                current.pre_promotion.as_ref(),
                RunKind::PrePromotion,
            ),
            (
                old.canary.current_step_analysis_run_status.as_ref(),
                current.canary_step.as_ref(),
                RunKind::Step,
            ),
            (
                old.canary.current_background_analysis_run_status.as_ref(),
                current.canary_background.as_ref(),
                RunKind::Background,
            ),
        ];
        for (previous, run, kind) in pairs {
            let Some(run) = run else { continue };
            let Some(status) = run.status.as_ref() else {
                continue;
            };
            let changed = match previous {
                None => true,
                Some(prev) => prev.name == name_of(run) && prev.status != status.phase,
            };
            if !changed {
                continue;
            }
            let previous_phase = previous.map_or("NoPreviousStatus", |p| p.status.as_str());
            let message = format!(
                "{} Analysis Run '{}' Status New: '{}' Previous: '{}'",
                kind.label(),
                name_of(run),
                status.phase,
                previous_phase
            );
            let reason = format!("AnalysisRun{}", status.phase);
            if matches!(status.phase, AnalysisPhase::Failed | AnalysisPhase::Error) {
                self.warning(&reason, message);
            } else {
                self.plan.events.push(rollout_runner_api::plan::Event {
                    event_type: rollout_runner_api::plan::EventType::Normal,
                    reason,
                    message,
                });
            }
        }
    }
}
