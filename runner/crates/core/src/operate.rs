//! Operations a person performs on a Rollout (`promote`, `abort`, `retry`, `pause`, ...), as
//! pure changes to the object, with the patches and messages of `kubectl argo rollouts`.
//!
//! The CLI sends these changes to the API server; the in-memory cluster applies them directly.
//! Either way the engine reacts on its next reconcile.
//!
//! [`undo`] is not an [`Operation`]: it needs the rollout's ReplicaSets, where the earlier
//! templates live.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use serde::{Deserialize, Serialize};

use crate::engine::template_matches;
use rollout_runner_api::crd::{
    AnalysisPhase, AnalysisRun, EPHEMERAL_METADATA_ANNOTATION, Experiment, POD_TEMPLATE_HASH_LABEL,
    PodTemplateMetadata, Rollout, Time,
};
use rollout_runner_api::observed::ReplicaSetState;

/// An operation on a Rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum Operation {
    /// Resume a pause, or skip the current step (Argo's `promote`).
    Promote,
    /// Skip every remaining step, pause and analysis (`promote --full`).
    PromoteFull,
    /// Abort the update: traffic and pods go back to the stable version.
    Abort,
    /// Retry an aborted update from the first step.
    Retry,
    /// Pause (`spec.paused: true`).
    Pause,
    /// Resume a manual pause (`spec.paused: false`).
    Resume,
    /// Restart every pod created before `at`.
    Restart { at: Timestamp },
    /// Set a container's image (`*` for every container): a new revision.
    SetImage { container: String, image: String },
}

impl Operation {
    /// The verb, as commands and timelines name it.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::PromoteFull => "promote --full",
            Self::Abort => "abort",
            Self::Retry => "retry",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Restart { .. } => "restart",
            Self::SetImage { .. } => "set image",
        }
    }
}

/// A change to write: a JSON merge patch for the spec (or metadata) and one for the status
/// subresource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patches {
    pub spec: Option<serde_json::Value>,
    pub status: Option<serde_json::Value>,
}

/// The patches for an operation on this rollout, and the message to print (Argo's wording).
pub fn patches(rollout: &Rollout, operation: &Operation) -> Result<(Patches, String), String> {
    let name = rollout.name();
    let status = rollout.status_or_default();
    let steps = rollout.spec.steps().len();
    let mut patches = Patches::default();
    let message = match operation {
        Operation::Promote => {
            if rollout.spec.paused {
                patches.spec = Some(serde_json::json!({"spec": {"paused": false}}));
            }
            let step_inconclusive = status
                .canary
                .current_step_analysis_run_status
                .as_ref()
                .is_some_and(|s| s.status == AnalysisPhase::Inconclusive);
            let index = status.current_step_index.unwrap_or(0);
            let next_index = if usize::try_from(index).is_ok_and(|i| i < steps) {
                index + 1
            } else {
                index
            };
            if rollout.spec.canary().is_some()
                && steps > 0
                && step_inconclusive
                && !status.pause_conditions.is_empty()
                && status.controller_pause
            {
                patches.status = Some(serde_json::json!({"status": {
                    "pauseConditions": null, "controllerPause": false, "currentStepIndex": next_index
                }}));
            } else if !status.pause_conditions.is_empty() {
                patches.status = Some(serde_json::json!({"status": {"pauseConditions": null}}));
            } else if rollout.spec.canary().is_some() && steps > 0 {
                patches.status =
                    Some(serde_json::json!({"status": {"currentStepIndex": next_index}}));
            }
            format!("rollout '{name}' promoted")
        }
        Operation::PromoteFull => {
            if rollout.spec.paused {
                patches.spec = Some(serde_json::json!({"spec": {"paused": false}}));
            }
            if status.current_pod_hash != status.stable_rs {
                patches.status = Some(serde_json::json!({"status": {"promoteFull": true}}));
            }
            format!("rollout '{name}' fully promoted")
        }
        Operation::Abort => {
            patches.status = Some(serde_json::json!({"status": {"abort": true}}));
            format!("rollout '{name}' aborted")
        }
        Operation::Retry => {
            patches.status = Some(serde_json::json!({"status": {"abort": false}}));
            format!("rollout '{name}' retried")
        }
        Operation::Pause => {
            patches.spec = Some(serde_json::json!({"spec": {"paused": true}}));
            format!("rollout '{name}' paused")
        }
        Operation::Resume => {
            patches.spec = Some(serde_json::json!({"spec": {"paused": false}}));
            format!("rollout '{name}' resumed")
        }
        Operation::Restart { at } => {
            let at = Timestamp::from_second(at.as_second()).unwrap_or(*at);
            patches.spec = Some(serde_json::json!({"spec": {"restartAt": at.to_string()}}));
            format!("rollout '{name}' restarts at {at}")
        }
        Operation::SetImage { container, image } => {
            if rollout.spec.template.is_none() && rollout.spec.workload_ref.is_some() {
                return Err(format!(
                    "rollout '{name}' takes its pod template from a `workloadRef`\n\n\
                     hint: set the image on the referenced workload instead"
                ));
            }
            let mut template =
                serde_json::to_value(rollout.spec.template.clone().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
            let mut found = false;
            for list in ["initContainers", "containers", "ephemeralContainers"] {
                if let Some(items) = template
                    .pointer_mut(&format!("/spec/{list}"))
                    .and_then(|v| v.as_array_mut())
                {
                    for item in items {
                        if container == "*" || item["name"] == container.as_str() {
                            item["image"] = serde_json::Value::String(image.clone());
                            found = true;
                        }
                    }
                }
            }
            if !found {
                let names: Vec<&str> = template
                    .pointer("/spec/containers")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str())
                    .collect();
                return Err(format!(
                    "unable to find container named \"{container}\" in rollout '{name}'\n\n\
                     hint: its containers are: {}; `*` sets every container",
                    names.join(", ")
                ));
            }
            patches.spec = Some(serde_json::json!({"spec": {"template": template}}));
            format!("rollout \"{name}\" image updated")
        }
    };
    Ok((patches, message))
}

/// Apply JSON merge patches (RFC 7386) to a rollout.
pub fn apply_patches(rollout: &Rollout, patches: &Patches) -> Result<Rollout, String> {
    let mut json = serde_json::to_value(rollout).map_err(|e| e.to_string())?;
    for patch in [&patches.spec, &patches.status].into_iter().flatten() {
        merge(&mut json, patch);
    }
    serde_json::from_value(json).map_err(|e| e.to_string())
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(map) = target {
                for (key, value) in fields {
                    if value.is_null() {
                        map.remove(key);
                    } else {
                        merge(map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`, or `None` when they are equal.
/// Removed keys become `null`; arrays and scalars are replaced whole.
pub fn merge_diff(old: &serde_json::Value, new: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) => {
                        if let Some(change) = merge_diff(previous, value) {
                            patch.insert(key.clone(), change);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            Some(Value::Object(patch))
        }
        // A null inside a merge patch means "delete", so a value that became an object is
        // written whole, and anything else replaces the old value.
        _ => Some(new.clone()),
    }
}

/// Perform an operation on a copy of the rollout: the changed rollout and the message.
pub fn perform(rollout: &Rollout, operation: &Operation) -> Result<(Rollout, String), String> {
    let (patches, message) = patches(rollout, operation)?;
    Ok((apply_patches(rollout, &patches)?, message))
}

/// `restart --in D`: the restart time.
pub fn restart_at(now: Timestamp, delay: SignedDuration) -> Time {
    Time(now.checked_add(delay).unwrap_or(now))
}

/// `undo [--to-revision N]`: put the pod template of an earlier revision back into the rollout
/// (Argo's `kubectl argo rollouts undo`). The engine then finds that revision's ReplicaSet again
/// and rolls back to it: with steps and analysis, or at once when Argo's rules allow (back to
/// the stable ReplicaSet, or within `rollbackWindow`).
///
/// `replica_sets` are the ReplicaSets the rollout owns. `to_revision` 0 means the previous
/// revision: the second highest `rollout.argoproj.io/revision` (a ReplicaSet without the
/// annotation counts as revision 0; one with an unreadable value is ignored, as in Argo).
///
/// Returns no patch (and Argo's "skipped rollback" message) when the rollout already has that
/// template. The template is restored without the pod-template hash label and without what the
/// engine injected into it (the ephemeral metadata recorded on the ReplicaSet, anti-affinity
/// against the stable pods), so the rollout gets back the template it had, and its hash.
pub fn undo(
    rollout: &Rollout,
    replica_sets: &[ReplicaSetState],
    to_revision: i64,
) -> Result<(Patches, String), String> {
    let name = rollout.name();
    let Some(current) = &rollout.spec.template else {
        return Err(format!(
            "rollout '{name}' has no `spec.template` to roll back (it uses a `workloadRef`)\n\n\
             hint: roll back the referenced workload instead"
        ));
    };
    let target = revision_replica_set(name, replica_sets, to_revision)?;
    let revision = target.revision();
    if template_matches(current, &target.template) {
        return Ok((
            Patches::default(),
            format!("skipped rollback (current template already matches revision {revision})"),
        ));
    }
    let restored = restorable_template(target);
    let (Ok(current), Ok(restored)) = (
        serde_json::to_value(current),
        serde_json::to_value(&restored),
    ) else {
        return Err(format!(
            "failed restoring revision {revision}: the template cannot be serialized"
        ));
    };
    let patches = Patches {
        spec: merge_diff(&current, &restored)
            .map(|template| serde_json::json!({"spec": {"template": template}})),
        status: None,
    };
    Ok((patches, format!("rollout '{name}' undo")))
}

/// The ReplicaSet of revision `to_revision`, or of the previous revision when it is 0.
fn revision_replica_set<'a>(
    name: &str,
    replica_sets: &'a [ReplicaSetState],
    to_revision: i64,
) -> Result<&'a ReplicaSetState, String> {
    let mut numbered: Vec<(i64, &ReplicaSetState)> = replica_sets
        .iter()
        .filter_map(|rs| {
            match rs
                .annotations
                .get(rollout_runner_api::crd::REVISION_ANNOTATION)
            {
                None => Some((0, rs)),
                Some(value) => value.parse().ok().map(|revision| (revision, rs)),
            }
        })
        .collect();
    if to_revision != 0 {
        return numbered
            .into_iter()
            .find(|(revision, _)| *revision == to_revision)
            .map(|(_, rs)| rs)
            .ok_or_else(|| {
                format!(
                    "unable to find specified revision {to_revision} in history of rollout \
                     '{name}'\n\nhint: `rollout-runner get {name}` lists the revisions it keeps"
                )
            });
    }
    numbered.sort_by_key(|(revision, _)| std::cmp::Reverse(*revision));
    numbered.get(1).map(|(_, rs)| *rs).ok_or_else(|| {
        format!(
            "no revision found for rollout \"{name}\"\n\nhint: undo needs an earlier revision; \
             this rollout has {} ReplicaSet(s)",
            numbered.len()
        )
    })
}

/// A ReplicaSet's template as the rollout had it: without the hash label, the ephemeral
/// metadata recorded in its annotation, and injected anti-affinity against a pod-template hash.
fn restorable_template(rs: &ReplicaSetState) -> PodTemplateSpec {
    let mut template = rs.template.clone();
    let ephemeral: PodTemplateMetadata = rs
        .annotations
        .get(EPHEMERAL_METADATA_ANNOTATION)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    if let Some(meta) = template.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
            labels.retain(|key, value| ephemeral.labels.get(key) != Some(value));
            if labels.is_empty() {
                meta.labels = None;
            }
        }
        if let Some(annotations) = meta.annotations.as_mut() {
            annotations.retain(|key, value| ephemeral.annotations.get(key) != Some(value));
            if annotations.is_empty() {
                meta.annotations = None;
            }
        }
    }
    if let Some(spec) = template.spec.as_mut() {
        remove_injected_anti_affinity(&mut spec.affinity);
    }
    template
}

/// Drop the anti-affinity terms the engine adds (`GenerateReplicaSetAffinity`): those that
/// select pods by pod-template hash, which a person never writes.
fn remove_injected_anti_affinity(affinity: &mut Option<k8s_openapi::api::core::v1::Affinity>) {
    use k8s_openapi::api::core::v1::PodAffinityTerm;
    let injected = |term: &PodAffinityTerm| {
        term.label_selector
            .as_ref()
            .and_then(|s| s.match_expressions.as_ref())
            .is_some_and(|e| e.iter().any(|r| r.key == POD_TEMPLATE_HASH_LABEL))
    };
    let Some(anti) = affinity.as_mut().and_then(|a| a.pod_anti_affinity.as_mut()) else {
        return;
    };
    if let Some(preferred) = anti
        .preferred_during_scheduling_ignored_during_execution
        .as_mut()
    {
        preferred.retain(|weighted| !injected(&weighted.pod_affinity_term));
        if preferred.is_empty() {
            anti.preferred_during_scheduling_ignored_during_execution = None;
        }
    }
    if let Some(required) = anti
        .required_during_scheduling_ignored_during_execution
        .as_mut()
    {
        required.retain(|term| !injected(term));
        if required.is_empty() {
            anti.required_during_scheduling_ignored_during_execution = None;
        }
    }
    if anti == &Default::default()
        && let Some(a) = affinity.as_mut()
    {
        a.pod_anti_affinity = None;
        if a == &Default::default() {
            *affinity = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollout_runner_api::crd::{
        CanaryStep, CanaryStrategy, PauseCondition, PauseReason, RolloutStatus, RolloutStrategy,
    };

    fn canary(steps: usize) -> Rollout {
        let mut rollout = Rollout::new("web", Default::default());
        rollout.spec.strategy = RolloutStrategy {
            canary: Some(CanaryStrategy {
                steps: vec![
                    CanaryStep {
                        pause: Some(Default::default()),
                        ..Default::default()
                    };
                    steps
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        rollout
    }

    #[test]
    fn promote_clears_pause_conditions() {
        let mut rollout = canary(2);
        rollout.status = Some(RolloutStatus {
            current_step_index: Some(1),
            controller_pause: true,
            pause_conditions: vec![PauseCondition {
                reason: PauseReason::CanaryPauseStep,
                start_time: Time(Timestamp::UNIX_EPOCH),
            }],
            ..Default::default()
        });
        let (patches, message) = patches(&rollout, &Operation::Promote).unwrap();
        assert_eq!(message, "rollout 'web' promoted");
        assert_eq!(
            patches.status,
            Some(serde_json::json!({"status": {"pauseConditions": null}}))
        );
        let (promoted, _) = perform(&rollout, &Operation::Promote).unwrap();
        let status = promoted.status.unwrap();
        assert!(status.pause_conditions.is_empty());
        assert!(status.controller_pause);
        assert_eq!(status.current_step_index, Some(1));
    }

    #[test]
    fn promote_mid_step_skips_it() {
        let mut rollout = canary(2);
        rollout.status = Some(RolloutStatus {
            current_step_index: Some(1),
            ..Default::default()
        });
        let (promoted, _) = perform(&rollout, &Operation::Promote).unwrap();
        assert_eq!(promoted.status.unwrap().current_step_index, Some(2));
        rollout.spec.paused = true;
        let (resumed, _) = perform(&rollout, &Operation::Promote).unwrap();
        assert!(!resumed.spec.paused);
    }

    #[test]
    fn abort_retry_and_full_promotion() {
        let mut rollout = canary(1);
        rollout.status = Some(RolloutStatus {
            current_pod_hash: "new".into(),
            stable_rs: "old".into(),
            ..Default::default()
        });
        let (aborted, message) = perform(&rollout, &Operation::Abort).unwrap();
        assert!(aborted.status.as_ref().unwrap().abort);
        assert_eq!(message, "rollout 'web' aborted");
        let (retried, _) = perform(&aborted, &Operation::Retry).unwrap();
        assert!(!retried.status.unwrap().abort);
        let (full, _) = perform(&rollout, &Operation::PromoteFull).unwrap();
        assert!(full.status.unwrap().promote_full);
    }

    #[test]
    fn set_image_changes_the_named_container() {
        let mut rollout = canary(1);
        rollout.spec.template = Some(
            serde_json::from_value(serde_json::json!({
                "spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}]}
            }))
            .unwrap(),
        );
        let (updated, _) = perform(
            &rollout,
            &Operation::SetImage {
                container: "app".into(),
                image: "a:2".into(),
            },
        )
        .unwrap();
        let containers = updated.spec.template.unwrap().spec.unwrap().containers;
        assert_eq!(containers[0].image.as_deref(), Some("a:2"));
        assert_eq!(containers[1].image.as_deref(), Some("s:1"));
        assert!(
            perform(
                &rollout,
                &Operation::SetImage {
                    container: "nope".into(),
                    image: "x".into()
                }
            )
            .is_err()
        );
    }

    fn template(image: &str, extra_labels: &[(&str, &str)]) -> PodTemplateSpec {
        let mut labels = serde_json::json!({"app": "web"});
        for (key, value) in extra_labels {
            labels[*key] = serde_json::Value::String((*value).to_string());
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": image}]}
        }))
        .unwrap()
    }

    /// A ReplicaSet of `web` as the engine creates it: the hash label on its template.
    fn replica_set(revision: Option<&str>, image: &str, hash: &str) -> ReplicaSetState {
        let mut annotations = std::collections::BTreeMap::new();
        if let Some(revision) = revision {
            annotations.insert(
                rollout_runner_api::crd::REVISION_ANNOTATION.to_string(),
                revision.into(),
            );
        }
        ReplicaSetState {
            name: format!("web-{hash}"),
            labels: [("app".to_string(), "web".to_string())].into(),
            annotations,
            created_at: Timestamp::UNIX_EPOCH,
            spec_replicas: 0,
            replicas: 0,
            ready_replicas: 0,
            available_replicas: 0,
            min_ready_seconds: 0,
            template: template(image, &[(POD_TEMPLATE_HASH_LABEL, hash)]),
            deleting: false,
            replica_failure: None,
        }
    }

    fn web_at(image: &str) -> Rollout {
        let mut rollout = canary(1);
        rollout.spec.template = Some(template(image, &[]));
        rollout
    }

    fn image_after(rollout: &Rollout, patches: &Patches) -> String {
        let undone = apply_patches(rollout, patches).unwrap();
        let template = undone.spec.template.unwrap();
        template.spec.unwrap().containers[0].image.clone().unwrap()
    }

    fn history() -> Vec<ReplicaSetState> {
        vec![
            replica_set(Some("1"), "web:1", "h1"),
            replica_set(Some("3"), "web:3", "h3"),
            replica_set(Some("2"), "web:2", "h2"),
        ]
    }

    #[test]
    fn undo_restores_the_previous_revision_without_the_hash_label() {
        let rollout = web_at("web:3");
        let (patches, message) = undo(&rollout, &history(), 0).unwrap();
        assert_eq!(message, "rollout 'web' undo");
        assert_eq!(
            patches.spec,
            Some(
                serde_json::json!({"spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": "web:2"}
                ]}}}})
            )
        );
        assert_eq!(patches.status, None);
        let undone = apply_patches(&rollout, &patches).unwrap();
        assert_eq!(undone.spec.template, Some(template("web:2", &[])));
    }

    #[test]
    fn undo_to_a_named_revision() {
        let rollout = web_at("web:3");
        let (patches, _) = undo(&rollout, &history(), 1).unwrap();
        assert_eq!(image_after(&rollout, &patches), "web:1");
        let error = undo(&rollout, &history(), 7).unwrap_err();
        assert!(
            error.starts_with("unable to find specified revision 7 in history of rollout 'web'"),
            "{error}"
        );
        assert!(error.contains("hint: `rollout-runner get web`"), "{error}");
    }

    #[test]
    fn undo_skips_when_the_template_already_matches() {
        let rollout = web_at("web:2");
        let (patches, message) = undo(&rollout, &history(), 2).unwrap();
        assert_eq!(patches, Patches::default());
        assert_eq!(
            message,
            "skipped rollback (current template already matches revision 2)"
        );
    }

    #[test]
    fn undo_needs_an_earlier_revision() {
        let rollout = web_at("web:1");
        let error = undo(&rollout, &[replica_set(Some("1"), "web:1", "h1")], 0).unwrap_err();
        assert!(
            error.starts_with("no revision found for rollout \"web\""),
            "{error}"
        );
        let error = undo(&rollout, &[], 0).unwrap_err();
        assert!(error.starts_with("no revision found"), "{error}");
    }

    #[test]
    fn undo_counts_a_missing_revision_as_zero_and_ignores_unreadable_ones() {
        let rollout = web_at("web:5");
        let replica_sets = vec![
            replica_set(Some("5"), "web:5", "h5"),
            replica_set(None, "web:0", "h0"),
            replica_set(Some("four"), "web:4", "h4"),
        ];
        let (patches, _) = undo(&rollout, &replica_sets, 0).unwrap();
        assert_eq!(image_after(&rollout, &patches), "web:0");
        assert!(undo(&rollout, &replica_sets, 4).is_err());
    }

    #[test]
    fn undo_removes_what_the_engine_injected_and_fields_the_old_revision_lacks() {
        let mut rollout = web_at("web:3");
        rollout
            .spec
            .template
            .as_mut()
            .and_then(|t| t.spec.as_mut())
            .unwrap()
            .containers[0]
            .args = Some(vec!["--new-flag".into()]);
        let mut old = replica_set(Some("2"), "web:2", "h2");
        old.annotations.insert(
            EPHEMERAL_METADATA_ANNOTATION.into(),
            r#"{"labels":{"role":"canary"}}"#.into(),
        );
        old.template = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web", "role": "canary", POD_TEMPLATE_HASH_LABEL: "h2"}},
            "spec": {
                "containers": [{"name": "app", "image": "web:2"}],
                "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 1,
                    "podAffinityTerm": {
                        "labelSelector": {"matchExpressions": [{
                            "key": POD_TEMPLATE_HASH_LABEL, "operator": "In", "values": ["h1"]
                        }]},
                        "topologyKey": "kubernetes.io/hostname"
                    }
                }]}}
            }
        }))
        .unwrap();
        let replica_sets = vec![replica_set(Some("3"), "web:3", "h3"), old];
        let (patches, _) = undo(&rollout, &replica_sets, 0).unwrap();
        let undone = apply_patches(&rollout, &patches).unwrap();
        assert_eq!(undone.spec.template, Some(template("web:2", &[])));
    }

    #[test]
    fn undo_refuses_a_workload_ref_rollout() {
        let rollout = canary(1);
        let error = undo(&rollout, &history(), 0).unwrap_err();
        assert!(error.contains("workloadRef"), "{error}");
        assert!(error.contains("hint:"), "{error}");
    }

    #[test]
    fn merge_of_merge_diff_gives_the_new_value() {
        let cases = [
            (
                serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}}),
                serde_json::json!({"b": {"c": 4}}),
            ),
            (
                serde_json::json!({"a": [1, 2], "g": {"h": 1}}),
                serde_json::json!({"a": [2], "e": {"f": "x"}, "g": {"h": 1}}),
            ),
            (
                serde_json::json!({"a": "x"}),
                serde_json::json!({"a": {"nested": true}}),
            ),
        ];
        for (old, new) in cases {
            let diff = merge_diff(&old, &new).unwrap();
            assert!(diff.get("g").is_none(), "unchanged keys stay out: {diff}");
            let mut merged = old.clone();
            merge(&mut merged, &diff);
            assert_eq!(merged, new, "{old} -> {new} via {diff}");
        }
        let same = serde_json::json!({"a": 1});
        assert_eq!(merge_diff(&same, &same), None);
    }
}

/// A Rollout and what it owns, as `get` shows it.
#[derive(Debug, Clone, Default)]
pub struct RolloutView {
    pub rollout: Rollout,
    /// ReplicaSets owned by the rollout or by one of its Experiments.
    pub replica_sets: Vec<ReplicaSet>,
    /// Pods of those ReplicaSets.
    pub pods: Vec<Pod>,
    /// AnalysisRuns owned by the rollout or by one of its Experiments.
    pub analysis_runs: Vec<AnalysisRun>,
    /// Experiments owned by the rollout.
    pub experiments: Vec<Experiment>,
}
