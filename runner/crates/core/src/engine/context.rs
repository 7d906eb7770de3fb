//! The reconcile context (Argo's `rolloutContext`): the rollout, its classified ReplicaSets,
//! current and other AnalysisRuns/Experiments, the status being built, and the plan being
//! written. Operations here decide an action and append it; nothing is executed.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use rollout_runner_api::crd::{
    AnalysisRun, DESIRED_REPLICAS_ANNOTATION, Experiment, POD_TEMPLATE_HASH_LABEL,
    REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION, Rollout, RolloutSpec, RolloutStatus,
};
use rollout_runner_api::observed::{Observed, ReplicaSetState, ServiceState};
use rollout_runner_api::plan::{Action, Event, EventType, NewReplicaSet, Plan};

use super::Input;
use super::conditions::{self, Reason, messages, types};
use super::hash::pod_template_hash;
use super::pause::PauseContext;
use super::replicas;

/// The AnalysisRuns the rollout's status names as current.
#[derive(Debug, Default, Clone)]
pub(crate) struct CurrentRuns {
    pub(crate) canary_step: Option<AnalysisRun>,
    pub(crate) canary_background: Option<AnalysisRun>,
    pub(crate) pre_promotion: Option<AnalysisRun>,
    pub(crate) post_promotion: Option<AnalysisRun>,
}

impl CurrentRuns {
    pub(crate) fn all(&self) -> impl Iterator<Item = &AnalysisRun> {
        [
            &self.canary_step,
            &self.canary_background,
            &self.pre_promotion,
            &self.post_promotion,
        ]
        .into_iter()
        .flatten()
    }
}

pub(crate) struct Ctx<'a> {
    pub(crate) rollout: &'a Rollout,
    pub(crate) spec: &'a RolloutSpec,
    pub(crate) old: RolloutStatus,
    pub(crate) observed: &'a Observed,
    pub(crate) now: Timestamp,
    pub(crate) generation: i64,
    /// The revision annotation on the Rollout, as updated during this reconcile.
    pub(crate) revision: String,
    pub(crate) all_rss: Vec<ReplicaSetState>,
    pub(crate) new_rs: Option<ReplicaSetState>,
    pub(crate) stable_rs: Option<ReplicaSetState>,
    /// Every ReplicaSet that is not the new one (includes the stable one mid-update).
    pub(crate) older_rss: Vec<ReplicaSetState>,
    /// Neither new nor stable.
    pub(crate) other_rss: Vec<ReplicaSetState>,
    pub(crate) current_ars: CurrentRuns,
    pub(crate) other_ars: Vec<AnalysisRun>,
    pub(crate) current_ex: Option<Experiment>,
    pub(crate) other_exs: Vec<Experiment>,
    pub(crate) new_status: RolloutStatus,
    pub(crate) pause: PauseContext,
    pub(crate) plan: Plan,
    /// Set when the reconcile cannot continue (Argo returns an error and persists nothing).
    pub(crate) error: Option<String>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(input: &'a Input<'a>) -> Self {
        let rollout = input.rollout;
        let spec = &rollout.spec;
        let old = rollout.status_or_default();
        let all_rss: Vec<ReplicaSetState> = input.observed.replica_sets.clone();
        let new_rs = find_new_replica_set(spec, &old, &all_rss);
        let older_rss: Vec<ReplicaSetState> = all_rss
            .iter()
            .filter(|rs| new_rs.as_ref().is_none_or(|n| n.name != rs.name))
            .cloned()
            .collect();
        let stable_rs = if old.stable_rs.is_empty() {
            None
        } else if new_rs
            .as_ref()
            .is_some_and(|rs| rs.pod_hash() == old.stable_rs)
        {
            new_rs.clone()
        } else {
            older_rss
                .iter()
                .find(|rs| rs.pod_hash() == old.stable_rs)
                .cloned()
        };
        let other_rss = all_rss
            .iter()
            .filter(|rs| {
                new_rs.as_ref().is_none_or(|n| n.name != rs.name)
                    && stable_rs.as_ref().is_none_or(|s| s.name != rs.name)
            })
            .cloned()
            .collect();

        let named = |status: &Option<rollout_runner_api::crd::RolloutAnalysisRunStatus>| {
            status
                .as_ref()
                .and_then(|s| input.observed.analysis_run(&s.name))
                .cloned()
        };
        let current_ars = CurrentRuns {
            canary_step: named(&old.canary.current_step_analysis_run_status),
            canary_background: named(&old.canary.current_background_analysis_run_status),
            pre_promotion: named(&old.blue_green.pre_promotion_analysis_run_status),
            post_promotion: named(&old.blue_green.post_promotion_analysis_run_status),
        };
        let other_ars = input
            .observed
            .analysis_runs
            .iter()
            .filter(|ar| {
                current_ars
                    .all()
                    .all(|c| c.metadata.name != ar.metadata.name)
            })
            .cloned()
            .collect();
        let current_ex = if old.canary.current_experiment.is_empty() {
            None
        } else {
            input
                .observed
                .experiment(&old.canary.current_experiment)
                .cloned()
        };
        let other_exs = input
            .observed
            .experiments
            .iter()
            .filter(|ex| {
                current_ex
                    .as_ref()
                    .is_none_or(|c| c.metadata.name != ex.metadata.name)
            })
            .cloned()
            .collect();
        let new_status = RolloutStatus {
            restarted_at: old.restarted_at.clone(),
            observed_generation: old.observed_generation.clone(),
            ..Default::default()
        };
        let revision = rollout
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .cloned()
            .unwrap_or_default();
        Ctx {
            rollout,
            spec,
            old,
            observed: input.observed,
            now: input.now,
            generation: rollout.metadata.generation.unwrap_or(0),
            revision,
            all_rss,
            new_rs,
            stable_rs,
            older_rss,
            other_rss,
            current_ars,
            other_ars,
            current_ex,
            other_exs,
            new_status,
            pause: PauseContext::default(),
            plan: Plan::default(),
            error: None,
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.rollout.name()
    }

    pub(crate) fn namespace(&self) -> &str {
        self.rollout.namespace_or_default()
    }

    pub(crate) fn replicas(&self) -> i32 {
        self.spec.replicas_or_default()
    }

    pub(crate) fn revision_number(&self) -> i64 {
        self.revision.parse().unwrap_or(0)
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.pause.is_aborted(&self.old)
    }

    /// The hash of the desired pod template.
    pub(crate) fn desired_hash(&self) -> String {
        match &self.new_rs {
            Some(rs) => rs.pod_hash().to_string(),
            None => pod_template_hash(&self.template(), self.old.collision_count),
        }
    }

    pub(crate) fn template(&self) -> PodTemplateSpec {
        self.spec.template.clone().unwrap_or_default()
    }

    /// Stop this reconcile: the actions planned so far stand, no status is written, and the
    /// driver retries later.
    pub(crate) fn fail(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(message);
        }
    }

    pub(crate) fn event(&mut self, reason: Reason, message: impl Into<String>) {
        self.plan.events.push(Event {
            event_type: EventType::Normal,
            reason: reason.as_str().to_string(),
            message: message.into(),
        });
    }

    pub(crate) fn warning(&mut self, reason: &str, message: impl Into<String>) {
        self.plan.events.push(Event {
            event_type: EventType::Warning,
            reason: reason.to_string(),
            message: message.into(),
        });
    }

    pub(crate) fn requeue_after_seconds(&mut self, seconds: f64) {
        let at = self
            .now
            .checked_add(SignedDuration::from_secs_f64(seconds.max(0.0)))
            .unwrap_or(self.now);
        self.plan.requeue_no_later_than(at);
    }

    /// Wake just after `at`: Argo's deadlines compare with "now is after".
    pub(crate) fn requeue_after_deadline(&mut self, at: Timestamp) {
        let just_after = at.checked_add(SignedDuration::from_millis(1)).unwrap_or(at);
        if just_after > self.now {
            self.plan.requeue_no_later_than(just_after);
        }
    }

    /// `haltProgress`: a manual pause or an inconclusive analysis stops all scaling.
    pub(crate) fn halt_progress(&self) -> Option<&'static str> {
        if self.spec.paused {
            return Some("user paused");
        }
        let inconclusive = self
            .old
            .pause_conditions
            .iter()
            .any(|c| c.reason == rollout_runner_api::crd::PauseReason::InconclusiveAnalysis);
        inconclusive.then_some("inconclusive analysis")
    }

    pub(crate) fn service(&self, name: &str) -> Option<&'a ServiceState> {
        if name.is_empty() {
            return None;
        }
        self.observed.services.get(name)
    }

    // --- ReplicaSets ------------------------------------------------------------------------

    /// `scaleReplicaSetAndRecordEvent`: scale and refresh `desired-replicas`. Returns whether the
    /// size changed.
    pub(crate) fn scale_replica_set(&mut self, rs: &ReplicaSetState, to: i32) -> bool {
        let replicas = self.replicas();
        let annotation_stale = rs
            .annotations
            .get(DESIRED_REPLICAS_ANNOTATION)
            .and_then(|v| v.parse::<i32>().ok())
            != Some(replicas);
        if rs.spec_replicas == to && !annotation_stale {
            return false;
        }
        let full_scale_down = to == 0;
        let remove_deadline = full_scale_down
            && !self.should_delay_scale_down_on_abort()
            && rs.scale_down_deadline().is_some();
        self.plan.actions.push(Action::ScaleReplicaSet {
            name: rs.name.clone(),
            from: rs.spec_replicas,
            to,
            desired_replicas_annotation: replicas,
            remove_scale_down_deadline: remove_deadline,
        });
        if rs.spec_replicas == to {
            return false;
        }
        let direction = if rs.spec_replicas < to { "up" } else { "down" };
        self.event(
            Reason::ScalingReplicaSet,
            messages::scaling(direction, &rs.name, rs.revision(), rs.spec_replicas, to),
        );
        true
    }

    pub(crate) fn add_scale_down_delay(&mut self, rs: &ReplicaSetState, seconds: i64) {
        if seconds == 0 {
            self.remove_scale_down_delay(rs);
            return;
        }
        let deadline = Timestamp::from_second(self.now.as_second() + seconds).unwrap_or(self.now);
        self.plan.actions.push(Action::SetScaleDownDeadline {
            name: rs.name.clone(),
            deadline: Some(deadline),
        });
    }

    pub(crate) fn remove_scale_down_delay(&mut self, rs: &ReplicaSetState) {
        if rs.scale_down_deadline().is_some() {
            self.plan.actions.push(Action::SetScaleDownDeadline {
                name: rs.name.clone(),
                deadline: None,
            });
        }
    }

    /// Time left before a ReplicaSet's scale-down deadline (`None` when absent or passed).
    pub(crate) fn time_before_scale_down(&self, rs: &ReplicaSetState) -> Option<Timestamp> {
        let deadline: Timestamp = rs.scale_down_deadline()?.parse().ok()?;
        (deadline > self.now).then_some(deadline)
    }

    /// `shouldDelayScaleDownOnAbort`: aborted with traffic routing or blue-green, a stable to
    /// fall back to, and an abort scale-down delay.
    pub(crate) fn should_delay_scale_down_on_abort(&self) -> bool {
        if !self.is_aborted() || self.stable_rs.is_none() {
            return false;
        }
        if self.spec.canary().is_some() && self.spec.traffic_routing().is_none() {
            return false;
        }
        let (delay, was_set) = replicas::abort_scale_down_delay(self.spec);
        if delay.is_none() {
            return false;
        }
        let dynamic = self.spec.canary().is_some_and(|c| c.dynamic_stable_scale);
        // Dynamic scaling shifts pods back gradually unless a delay was asked for.
        !dynamic || was_set
    }

    /// `removeScaleDownDeadlines`: moving back to a ReplicaSet that was waiting for its
    /// scale-down deadline cancels the deadline.
    pub(crate) fn remove_scale_down_deadlines(&mut self) {
        let mut targets = Vec::new();
        if let Some(new) = &self.new_rs
            && !self.should_delay_scale_down_on_abort()
        {
            targets.push(new.clone());
        }
        if let Some(stable) = &self.stable_rs
            && (targets.is_empty() || self.new_rs.as_ref().is_some_and(|n| n.name != stable.name))
        {
            targets.push(stable.clone());
        }
        for rs in targets {
            self.remove_scale_down_delay(&rs);
        }
    }

    /// `isReplicaSetReferenced`: status hashes or service selectors still point at it.
    pub(crate) fn is_replica_set_referenced(&self, rs: &ReplicaSetState) -> bool {
        let hash = rs.pod_hash();
        if hash.is_empty() {
            return false;
        }
        let old = &self.old;
        let mut references = vec![
            old.stable_rs.as_str(),
            old.current_pod_hash.as_str(),
            old.blue_green.active_selector.as_str(),
            old.blue_green.preview_selector.as_str(),
        ];
        if let Some(weights) = &old.canary.weights {
            references.push(&weights.canary.pod_template_hash);
            references.push(&weights.stable.pod_template_hash);
        }
        if references.contains(&hash) {
            return true;
        }
        let services: Vec<&str> = if let Some(canary) = self.spec.canary() {
            vec![&canary.canary_service, &canary.stable_service]
        } else if let Some(bg) = self.spec.blue_green() {
            vec![&bg.active_service, &bg.preview_service]
        } else {
            vec![]
        };
        services
            .into_iter()
            .filter_map(|name| self.service(name))
            .any(|svc| svc.selected_hash() == hash)
    }

    /// `getAllReplicaSetsAndSyncRevision`: bring the new ReplicaSet's revision up to date.
    pub(crate) fn sync_new_replica_set(&mut self) {
        if self.new_rs.is_some() {
            self.sync_replica_set_revision();
        }
    }

    /// The end of `newRolloutContext`: create the new ReplicaSet when it does not exist yet,
    /// before any strategy runs, so that the first status of a release already names it.
    pub(crate) fn create_missing_replica_set(&mut self) {
        if self.new_rs.is_some() {
            return;
        }
        self.create_desired_replica_set();
        if let Some(new) = &self.new_rs
            && self.stable_rs.is_none()
            && !self.old.stable_rs.is_empty()
            && new.pod_hash() == self.old.stable_rs
        {
            self.stable_rs = Some(new.clone());
        }
    }

    fn max_old_revision(&self) -> i64 {
        self.older_rss
            .iter()
            .filter_map(ReplicaSetState::parsed_revision)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    /// Annotations from the Rollout that ReplicaSets inherit.
    fn inherited_annotations(&self) -> BTreeMap<String, String> {
        const SKIP: &[&str] = &[
            "kubectl.kubernetes.io/last-applied-configuration",
            REVISION_ANNOTATION,
            REVISION_HISTORY_ANNOTATION,
            DESIRED_REPLICAS_ANNOTATION,
            rollout_runner_api::crd::WORKLOAD_GENERATION_ANNOTATION,
        ];
        self.rollout
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !SKIP.contains(&k.as_str()))
            .collect()
    }

    fn sync_replica_set_revision(&mut self) {
        let Some(new) = self.new_rs.clone() else {
            return;
        };
        let new_revision = self.max_old_revision() + 1;
        let mut changes: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (key, value) in self.inherited_annotations() {
            if new.annotations.get(&key) != Some(&value) {
                changes.insert(key, Some(value));
            }
        }
        let old_revision = new.annotations.get(REVISION_ANNOTATION).cloned();
        let old_revision_number = old_revision
            .as_deref()
            .map_or(Some(0), |r| r.parse::<i64>().ok());
        if let Some(old_number) = old_revision_number
            && old_number < new_revision
        {
            changes.insert(REVISION_ANNOTATION.into(), Some(new_revision.to_string()));
            // Re-using an older ReplicaSet (a rollback): remember its earlier revisions.
            if let Some(previous) = &old_revision {
                let history = match new.annotations.get(REVISION_HISTORY_ANNOTATION) {
                    Some(h) if !h.is_empty() => format!("{h},{previous}"),
                    _ => previous.clone(),
                };
                changes.insert(REVISION_HISTORY_ANNOTATION.into(), Some(history));
            }
        }
        let min_ready = self.spec.min_ready_seconds_or_default();
        if !changes.is_empty() || new.min_ready_seconds != min_ready {
            self.plan.actions.push(Action::UpdateReplicaSetMetadata {
                name: new.name.clone(),
                annotations: changes.clone(),
                min_ready_seconds: min_ready,
            });
            if let Some(rs) = self.new_rs.as_mut() {
                for (key, value) in changes {
                    match value {
                        Some(v) => rs.annotations.insert(key, v),
                        None => rs.annotations.remove(&key),
                    };
                }
                rs.min_ready_seconds = min_ready;
            }
            // Argo returns here and writes the Rollout's revision on the next reconcile.
            return;
        }
        let revision = new
            .annotations
            .get(REVISION_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        self.set_rollout_revision(&revision);
        if self.old.condition(types::PROGRESSING).is_none() {
            let condition = conditions::new_condition(
                types::PROGRESSING,
                rollout_runner_api::crd::condition_status::TRUE,
                Reason::FoundNewReplicaSet,
                messages::found_new_replica_set(&new.name),
                self.now,
            );
            conditions::set_condition(&mut self.old, condition);
        }
    }

    fn set_rollout_revision(&mut self, revision: &str) {
        if !revision.is_empty() && self.revision != revision {
            self.revision = revision.to_string();
            self.plan.actions.push(Action::SetRolloutRevision {
                revision: revision.to_string(),
            });
            self.event(Reason::RolloutUpdated, messages::rollout_updated(revision));
        }
    }

    fn create_desired_replica_set(&mut self) {
        let new_revision = self.max_old_revision() + 1;
        let hash = pod_template_hash(&self.template(), self.old.collision_count);
        let name = format!("{}-{}", self.name(), hash);
        if self.all_rss.iter().any(|rs| rs.name == name) {
            // A ReplicaSet with our name but another template: a hash collision. Argo bumps
            // collisionCount and tries again on the next reconcile.
            let count = self.old.collision_count.unwrap_or(0) + 1;
            self.old.collision_count = Some(count);
            self.new_status.collision_count = Some(count);
            self.plan.requeue_no_later_than(self.now);
            return;
        }
        let mut template = self.template();
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.clone());
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels = Some(labels.clone());
        self.inject_anti_affinity(&mut template);
        let mut selector = self.spec.selector.clone().unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH_LABEL.to_string(), hash.clone());
        let mut annotations = self.inherited_annotations();
        annotations.insert(REVISION_ANNOTATION.into(), new_revision.to_string());
        annotations.insert(
            DESIRED_REPLICAS_ANNOTATION.into(),
            self.replicas().to_string(),
        );
        let ephemeral = self.ephemeral_metadata_for_new();
        if let Some(metadata) = ephemeral.filter(|m| !m.is_empty()) {
            let pod_meta = template.metadata.get_or_insert_with(Default::default);
            let pod_labels = pod_meta.labels.get_or_insert_with(Default::default);
            pod_labels.extend(metadata.labels.clone());
            if !metadata.annotations.is_empty() {
                pod_meta
                    .annotations
                    .get_or_insert_with(Default::default)
                    .extend(metadata.annotations.clone());
            }
            if let Ok(json) = serde_json::to_string(&metadata) {
                annotations.insert(
                    rollout_runner_api::crd::EPHEMERAL_METADATA_ANNOTATION.into(),
                    json,
                );
            }
        }
        let min_ready_seconds = self.spec.min_ready_seconds_or_default();
        self.plan
            .actions
            .push(Action::CreateReplicaSet(NewReplicaSet {
                name: name.clone(),
                labels: labels.clone(),
                annotations: annotations.clone(),
                selector,
                template: template.clone(),
                min_ready_seconds,
            }));
        self.set_rollout_revision(&new_revision.to_string());
        self.event(
            Reason::NewReplicaSetCreated,
            messages::new_replica_set_detailed(&name, new_revision),
        );
        let condition = conditions::new_condition(
            types::PROGRESSING,
            rollout_runner_api::crd::condition_status::TRUE,
            Reason::NewReplicaSetCreated,
            messages::new_replica_set(&name),
            self.now,
        );
        conditions::set_condition(&mut self.old, condition);
        self.new_rs = Some(ReplicaSetState {
            name,
            labels,
            annotations,
            created_at: self.now,
            spec_replicas: 0,
            replicas: 0,
            ready_replicas: 0,
            available_replicas: 0,
            min_ready_seconds,
            template,
            deleting: false,
            replica_failure: None,
        });
    }

    /// Canary/preview metadata for a new ReplicaSet when a stable exists; stable/active
    /// metadata for the first one (it will become the stable).
    fn ephemeral_metadata_for_new(&self) -> Option<rollout_runner_api::crd::PodTemplateMetadata> {
        let has_stable = self.stable_rs.is_some();
        if let Some(canary) = self.spec.canary() {
            if has_stable {
                canary.canary_metadata.clone()
            } else {
                canary.stable_metadata.clone()
            }
        } else if let Some(bg) = self.spec.blue_green() {
            if has_stable {
                bg.preview_metadata.clone()
            } else {
                bg.active_metadata.clone()
            }
        } else {
            None
        }
    }

    /// Anti-affinity against the stable pods (`GenerateReplicaSetAffinity`).
    fn inject_anti_affinity(&self, template: &mut PodTemplateSpec) {
        use k8s_openapi::api::core::v1::{
            Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm,
        };
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
            LabelSelector, LabelSelectorRequirement,
        };
        let strategy = self
            .spec
            .canary()
            .and_then(|c| c.anti_affinity.as_ref())
            .or_else(|| {
                self.spec
                    .blue_green()
                    .and_then(|b| b.anti_affinity.as_ref())
            });
        let Some(strategy) = strategy else {
            return;
        };
        if self.old.stable_rs.is_empty() {
            return;
        }
        let term = PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: POD_TEMPLATE_HASH_LABEL.into(),
                    operator: "In".into(),
                    values: Some(vec![self.old.stable_rs.clone()]),
                }]),
                ..Default::default()
            }),
            namespaces: Some(vec![self.namespace().to_string()]),
            topology_key: "kubernetes.io/hostname".into(),
            ..Default::default()
        };
        let spec = template.spec.get_or_insert_with(Default::default);
        let affinity = spec.affinity.get_or_insert_with(Affinity::default);
        let anti = affinity
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default);
        if let Some(preferred) = &strategy.preferred_during_scheduling_ignored_during_execution {
            anti.preferred_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .push(WeightedPodAffinityTerm {
                    weight: preferred.weight,
                    pod_affinity_term: term,
                });
        } else if strategy
            .required_during_scheduling_ignored_during_execution
            .is_some()
        {
            anti.required_during_scheduling_ignored_during_execution
                .get_or_insert_with(Vec::new)
                .push(term);
        }
    }

    /// `reconcileRevisionHistoryLimit`: delete the oldest scaled-down ReplicaSets beyond the
    /// limit, with the AnalysisRuns and Experiments of their revision.
    pub(crate) fn reconcile_revision_history_limit(&mut self) {
        let limit = usize::try_from(self.spec.revision_history_limit_or_default()).unwrap_or(0);
        let mut cleanable: Vec<ReplicaSetState> = self
            .other_rss
            .iter()
            .filter(|rs| !rs.deleting)
            .cloned()
            .collect();
        if cleanable.len() <= limit {
            return;
        }
        let excess = cleanable.len() - limit;
        cleanable.sort_by_key(|rs| rs.created_at);
        for rs in cleanable.into_iter().take(excess) {
            if rs.replicas != 0 || rs.spec_replicas != 0 {
                continue;
            }
            self.plan.actions.push(Action::DeleteReplicaSet {
                name: rs.name.clone(),
            });
            let hash = rs.pod_hash().to_string();
            let runs: Vec<String> = self
                .other_ars
                .iter()
                .filter(|ar| pod_hash_label(&ar.metadata) == hash)
                .filter_map(|ar| ar.metadata.name.clone())
                .collect();
            for name in runs {
                self.plan.actions.push(Action::DeleteAnalysisRun { name });
            }
            let experiments: Vec<String> = self
                .other_exs
                .iter()
                .filter(|ex| pod_hash_label(&ex.metadata) == hash)
                .filter_map(|ex| ex.metadata.name.clone())
                .collect();
            for name in experiments {
                self.plan.actions.push(Action::DeleteExperiment { name });
            }
        }
    }

    /// `switchServiceSelector`.
    pub(crate) fn switch_service_selector(&mut self, service: &ServiceState, hash: &str) {
        let managed = service
            .annotations
            .contains_key(rollout_runner_api::crd::MANAGED_BY_ROLLOUTS_ANNOTATION);
        let current = service.selected_hash();
        if current == hash && managed {
            return;
        }
        self.plan.actions.push(Action::SwitchServiceSelector {
            service: service.name.clone(),
            from: current.to_string(),
            to: hash.to_string(),
            add_managed_by: (!managed).then(|| self.name().to_string()),
        });
        self.event(
            Reason::SwitchService,
            messages::switch_service(&service.name, current, hash),
        );
    }

    /// `ensureSVCTargets`: point a service at a ReplicaSet once it can take traffic.
    pub(crate) fn ensure_service_targets(
        &mut self,
        service_name: &str,
        rs: Option<&ReplicaSetState>,
        check_availability: bool,
    ) {
        let (Some(rs), Some(service)) = (rs, self.service(service_name)) else {
            return;
        };
        let desired = rs.pod_hash();
        if service.selected_hash() == desired {
            return;
        }
        let managed = service
            .annotations
            .contains_key(rollout_runner_api::crd::MANAGED_BY_ROLLOUTS_ANNOTATION);
        if !managed && check_availability && !is_fully_available(rs) {
            // Adopting a live service: wait until the ReplicaSet can take all its traffic.
            return;
        }
        if check_availability && rs.available_replicas == 0 {
            return;
        }
        let desired = desired.to_string();
        self.switch_service_selector(service, &desired);
    }

    /// `isRollbackWithinWindow`.
    pub(crate) fn is_rollback_within_window(&self) -> bool {
        let (Some(new), Some(stable)) = (&self.new_rs, &self.stable_rs) else {
            return false;
        };
        if new.created_at >= stable.created_at {
            return false;
        }
        let Some(revisions) = self.spec.rollback_window.as_ref().and_then(|w| w.revisions) else {
            return false;
        };
        if revisions <= 0 {
            return false;
        }
        let window = self
            .all_rss
            .iter()
            .filter(|rs| !rs.is_experiment())
            .filter(|rs| rs.created_at < stable.created_at && new.created_at < rs.created_at)
            .count();
        i32::try_from(window).unwrap_or(i32::MAX) < revisions
    }

    /// Whether the desired-replicas annotation of an active ReplicaSet disagrees with
    /// `spec.replicas`: an HPA or a person scaled the rollout.
    pub(crate) fn is_scaling_event(&self) -> bool {
        let replicas = self.replicas();
        self.all_rss
            .iter()
            .chain(self.new_rs.iter())
            .filter(|rs| rs.is_active())
            .filter_map(|rs| rs.annotations.get(DESIRED_REPLICAS_ANNOTATION))
            .filter_map(|v| v.parse::<i32>().ok())
            .any(|desired| desired != replicas)
    }
}

/// `IsReplicaSetAvailable`: scaled up and every desired pod available.
pub(crate) fn is_fully_available(rs: &ReplicaSetState) -> bool {
    rs.spec_replicas != 0 && rs.available_replicas != 0 && rs.spec_replicas <= rs.available_replicas
}

/// Argo's `IsSaturated`: at full size (spec, annotation and availability all equal replicas).
pub(crate) fn is_saturated(spec: &RolloutSpec, rs: Option<&ReplicaSetState>) -> bool {
    let Some(rs) = rs else {
        return false;
    };
    let replicas = spec.replicas_or_default();
    let desired = rs
        .annotations
        .get(DESIRED_REPLICAS_ANNOTATION)
        .and_then(|v| v.parse::<i32>().ok());
    rs.spec_replicas == replicas && desired == Some(replicas) && rs.available_replicas == replicas
}

fn pod_hash_label(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
        .cloned()
        .unwrap_or_default()
}

/// `FindNewReplicaSet`: by our hash, then by template equality ignoring the hash label and
/// injected metadata (so ReplicaSets created by Argo, whose hashes differ, are adopted).
fn find_new_replica_set(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    all: &[ReplicaSetState],
) -> Option<ReplicaSetState> {
    let template = spec.template.clone().unwrap_or_default();
    let hash = pod_template_hash(&template, status.collision_count);
    let mut sorted: Vec<&ReplicaSetState> = all.iter().collect();
    sorted.sort_by_key(|rs| rs.created_at);
    if let Some(rs) = sorted.iter().find(|rs| rs.pod_hash() == hash) {
        return Some((*rs).clone());
    }
    sorted
        .into_iter()
        .find(|rs| template_matches(&template, &rs.template))
        .cloned()
}

/// Whether a live ReplicaSet template was made from `desired`: every field the desired template
/// sets has the same value in the live one, which may carry more (defaults filled in by the API
/// server, the hash label, ephemeral metadata, injected anti-affinity).
pub(crate) fn template_matches(desired: &PodTemplateSpec, live: &PodTemplateSpec) -> bool {
    let (Ok(mut desired), Ok(live)) = (serde_json::to_value(desired), serde_json::to_value(live))
    else {
        return false;
    };
    if let Some(labels) = desired.pointer_mut("/metadata/labels")
        && let Some(map) = labels.as_object_mut()
    {
        map.remove(POD_TEMPLATE_HASH_LABEL);
    }
    json_subset(&desired, &live)
}

fn json_subset(desired: &serde_json::Value, live: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(key, value)| match l.get(key) {
            Some(live_value) => json_subset(value, live_value),
            None => is_empty_json(value),
        }),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(a, b)| json_subset(a, b))
        }
        (d, l) => d == l,
    }
}

fn is_empty_json(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Object(map) => map.values().all(is_empty_json),
        serde_json::Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn templates_match_despite_server_defaults_and_hash_label() {
        let desired = template("nginx:1");
        let mut live = template("nginx:1");
        live.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH_LABEL.into(), "abc".into());
        let spec = live.spec.as_mut().unwrap();
        spec.restart_policy = Some("Always".into());
        spec.dns_policy = Some("ClusterFirst".into());
        spec.containers[0].image_pull_policy = Some("IfNotPresent".into());
        assert!(template_matches(&desired, &live));
        assert!(!template_matches(&template("nginx:2"), &live));
    }
}
