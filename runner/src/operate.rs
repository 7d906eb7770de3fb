//! Operations a person performs on a Rollout (`promote`, `abort`, `retry`, `pause`, ...), as
//! pure changes to the object, with the patches and messages of `kubectl argo rollouts`.
//!
//! The CLI sends these changes to the API server; the in-memory cluster applies them directly.
//! Either way the engine reacts on its next reconcile.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::crd::{AnalysisPhase, Rollout, Time};

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
                return Err(format!(
                    "unable to find container named \"{container}\" in rollout '{name}'"
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

/// Perform an operation on a copy of the rollout: the changed rollout and the message.
pub fn perform(rollout: &Rollout, operation: &Operation) -> Result<(Rollout, String), String> {
    let (patches, message) = patches(rollout, operation)?;
    Ok((apply_patches(rollout, &patches)?, message))
}

/// `restart --in D`: the restart time.
pub fn restart_at(now: Timestamp, delay: SignedDuration) -> Time {
    Time(now.checked_add(delay).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
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
}
