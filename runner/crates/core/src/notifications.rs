//! Argo's notification subscriptions (`notifications.argoproj.io/subscribe.<trigger>.<service>`
//! annotations, parsed as argoproj/notifications-engine `pkg/subscriptions` parses them) and the
//! triggers of event reasons (argo-rollouts `translateReasonToTrigger`), shared by `lint` and the
//! controller's notifier.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

pub const SUBSCRIBE_PREFIX: &str = "notifications.argoproj.io/subscribe.";
/// Argo's other subscription form (a YAML list), not honoured.
pub const SUBSCRIPTIONS_ANNOTATION: &str = "notifications.argoproj.io/subscriptions";
/// Event reasons the engine emits on a Rollout: the triggers a subscription can name.
pub const REASONS: &[&str] = &[
    "RolloutUpdated",
    "NewReplicaSetCreated",
    "ScalingReplicaSet",
    "RolloutNotCompleted",
    "RolloutCompleted",
    "RolloutStepCompleted",
    "RolloutPaused",
    "RolloutResumed",
    "RolloutAborted",
    "RolloutRetry",
    "SwitchService",
    "TrafficWeightUpdated",
    "ExperimentCreated",
    "AnalysisRunPending",
    "AnalysisRunRunning",
    "AnalysisRunSuccessful",
    "AnalysisRunFailed",
    "AnalysisRunError",
    "AnalysisRunInconclusive",
    "ReconciliationError",
];

/// Argo's notification service types (notifications-engine `pkg/services`) that rollout-runner
/// does not deliver to natively. `slack`, `teams` and `webhook` are not here: a webhook of that
/// name (`--notify-webhook slack=slack`) serves them.
pub const UNSUPPORTED_SERVICES: &[&str] = &[
    "alertmanager",
    "awssqs",
    "email",
    "gcppubsub",
    "github",
    "googlechat",
    "grafana",
    "mattermost",
    "nats",
    "newrelic",
    "opsgenie",
    "pagerduty",
    "pagerdutyv2",
    "pushover",
    "rocketchat",
    "teams-workflows",
    "telegram",
    "webex",
];

/// One `subscribe.<trigger>.<service>` annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The annotation key.
    pub key: String,
    /// Empty when the key names only a service.
    pub trigger: String,
    pub service: String,
    /// `[""]` for an empty value, as in notifications-engine.
    pub recipients: Vec<String>,
}

/// The subscriptions of these annotations, parsed as notifications-engine parses them.
pub fn subscriptions(annotations: &BTreeMap<String, String>) -> Vec<Subscription> {
    annotations
        .iter()
        .filter_map(|(key, value)| {
            let rest = key.strip_prefix(SUBSCRIBE_PREFIX)?;
            let parts: Vec<&str> = rest.split('.').collect();
            let (trigger, service) = match parts.as_slice() {
                [only] => ("", *only),
                [trigger, service, ..] => (*trigger, *service),
                [] => ("", ""),
            };
            let recipients = if value.is_empty() {
                vec![String::new()]
            } else {
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(String::from)
                    .collect()
            };
            Some(Subscription {
                key: key.clone(),
                trigger: trigger.to_string(),
                service: service.to_string(),
                recipients,
            })
        })
        .collect()
}

static FIRST_CAP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("(.)([A-Z][a-z]+)").expect("a valid regex"));
static ALL_CAP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("([a-z0-9])([A-Z])").expect("a valid regex"));

/// The trigger of an event reason (Argo's `translateReasonToTrigger`).
pub fn trigger_of(reason: &str) -> String {
    let trigger = FIRST_CAP.replace_all(reason, "${1}-${2}");
    let trigger = ALL_CAP.replace_all(&trigger, "${1}-${2}");
    format!("on-{}", trigger.to_lowercase())
}

/// Why a subscription will not be delivered by rollout-runner, for `lint`.
pub fn unsupported(subscription: &Subscription) -> Option<String> {
    if subscription.trigger.is_empty() {
        return Some(format!(
            "`{}` names no trigger: rollout-runner delivers only `subscribe.<trigger>.<service>` \
             subscriptions",
            subscription.key
        ));
    }
    if !REASONS
        .iter()
        .any(|r| trigger_of(r) == subscription.trigger)
    {
        return Some(format!(
            "trigger `{}` is not one rollout-runner fires (custom triggers with `when` conditions \
             are not supported); it fires `on-<event reason>` for its Rollout events, such as \
             `on-rollout-completed`, `on-rollout-aborted`, `on-rollout-paused`",
            subscription.trigger
        ));
    }
    if subscription.service == "github" {
        return Some(
            "the `github` notification service is not supported: the controller posts GitHub \
             Deployment statuses for Rollouts with the `rollout-runner.io/commit` annotation \
             instead (`controller --notify-github`)"
                .to_string(),
        );
    }
    if UNSUPPORTED_SERVICES.contains(&subscription.service.as_str()) {
        return Some(format!(
            "the `{}` notification service is not supported: rollout-runner delivers to \
             webhooks (`--notify-webhook NAME=TEMPLATE`, with Slack and Teams templates) and \
             to a CDEvents sink (`cdevents`)",
            subscription.service
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_are_argos_kebab_case_reasons() {
        assert_eq!(trigger_of("RolloutCompleted"), "on-rollout-completed");
        assert_eq!(trigger_of("AnalysisRunFailed"), "on-analysis-run-failed");
        assert_eq!(trigger_of("ScalingReplicaSet"), "on-scaling-replica-set");
        assert_eq!(
            trigger_of("RolloutStepCompleted"),
            "on-rollout-step-completed"
        );
    }

    #[test]
    fn subscriptions_parse_as_notifications_engine_parses_them() {
        let annotations: BTreeMap<String, String> = [
            (
                "notifications.argoproj.io/subscribe.on-rollout-completed.slack",
                "deploys; ops ;",
            ),
            (
                "notifications.argoproj.io/subscribe.on-rollout-aborted.cdevents",
                "",
            ),
            ("notifications.argoproj.io/subscribe.email", "a@example.com"),
            ("notifications.argoproj.io/subscribe.on-custom.chat", ""),
            ("other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let found = subscriptions(&annotations);
        assert_eq!(found.len(), 4);
        let slack = found.iter().find(|s| s.service == "slack").unwrap();
        assert_eq!(slack.trigger, "on-rollout-completed");
        assert_eq!(slack.recipients, ["deploys", "ops"]);
        let cdevents = found.iter().find(|s| s.service == "cdevents").unwrap();
        assert_eq!(cdevents.recipients, [""]);
        let email = found.iter().find(|s| s.service == "email").unwrap();
        assert_eq!(email.trigger, "");
        assert!(unsupported(slack).is_none());
        assert!(unsupported(cdevents).is_none());
        assert!(unsupported(email).unwrap().contains("names no trigger"));
        let custom = found.iter().find(|s| s.service == "chat").unwrap();
        assert!(unsupported(custom).unwrap().contains("on-custom"));
    }
}
