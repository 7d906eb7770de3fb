//! The controller's notifications: Argo's `notifications.argoproj.io/subscribe.<trigger>.<service>`
//! annotations, delivered to the services the controller is configured with.
//!
//! As in Argo Rollouts, triggers are Kubernetes event reasons (`RolloutCompleted` is
//! `on-rollout-completed`, `translateReasonToTrigger` in argo-rollouts `utils/record`), and a
//! Rollout subscribes a service to a trigger with an annotation whose value lists recipients
//! (`;`-separated). Services:
//! - **webhooks** by name: a minijinja template renders the JSON body (Slack and Microsoft Teams
//!   templates ship in `templates/notifications/` and are built in as `slack` and `teams`);
//! - **`cdevents`**: a [CDEvent](https://cdevents.dev) (the v0.4.1 vocabulary of the webhook
//!   reporter) sent with the CloudEvents HTTP binding (binary mode: `ce-*` headers), built with
//!   the `cloudevents-sdk` crate;
//! - **GitHub Deployment statuses**, not by subscription: for every Rollout that carries the
//!   commit annotation `rollout-runner.io/commit` (and a repository), on the events that start,
//!   pause, complete or abort a release.
//!
//! Owns parsing subscriptions, rendering bodies and queueing deliveries; the HTTP calls run on
//! the delivery workers ([`super::delivery`]), which scrub every secret (webhook URLs, tokens)
//! from what they log. Refuses to change anything in the cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde_json::{Value, json};

use rollout_runner_api::crd::Rollout;
use rollout_runner_api::plan::{Event, EventType};

use super::delivery::{
    CallCounts, CallError, Counters, DeliveryOptions, Executor, Http, Job, Log, Secret, Worker,
};
use super::webhook::{CDEVENTS_VERSION, image_purl};

pub use rollout_runner_core::notifications::{
    REASONS, SUBSCRIBE_PREFIX, SUBSCRIPTIONS_ANNOTATION, Subscription, UNSUPPORTED_SERVICES,
    subscriptions, trigger_of, unsupported,
};
/// The commit a Rollout releases (written by the starter templates from the CI context).
pub const COMMIT_ANNOTATION: &str = "rollout-runner.io/commit";
/// `owner/name` of the commit's GitHub repository.
pub const REPOSITORY_ANNOTATION: &str = "rollout-runner.io/repository";
/// The GitHub Deployment environment; default: the controller's, then the namespace.
pub const ENVIRONMENT_ANNOTATION: &str = "rollout-runner.io/environment";
/// The service name of the CDEvents sink in subscriptions.
pub const CDEVENTS_SERVICE: &str = "cdevents";

/// The built-in body templates: name, template.
pub const BUILTIN_TEMPLATES: [(&str, &str); 2] = [
    (
        "slack",
        include_str!("../../../../templates/notifications/slack.json.j2"),
    ),
    (
        "teams",
        include_str!("../../../../templates/notifications/teams.json.j2"),
    ),
];

/// Why a notifier cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum NotifyConfigError {
    #[error("{0}")]
    Template(String),
}

/// A webhook service: its name in subscriptions, where it POSTs and its body template.
#[derive(Debug, Clone)]
pub struct WebhookService {
    pub name: String,
    pub url: Secret,
    /// Where the template came from (a path, or `builtin:NAME`), for error messages.
    pub origin: String,
    pub template: String,
}

impl WebhookService {
    /// A webhook whose template is `spec`: a built-in name (`slack`, `teams`) or a file.
    pub fn new(name: &str, spec: &str, url: Secret) -> Result<Self, NotifyConfigError> {
        let (origin, template) = match BUILTIN_TEMPLATES.iter().find(|(n, _)| *n == spec) {
            Some((builtin, text)) => (format!("builtin:{builtin}"), text.to_string()),
            None => {
                let text = std::fs::read_to_string(Path::new(spec)).map_err(|e| {
                    NotifyConfigError::Template(format!(
                        "--notify-webhook {name}={spec}: cannot read the template: {e}\n\
                         hint: give a file, or a built-in template: slack, teams"
                    ))
                })?;
                (spec.to_string(), text)
            }
        };
        let service = Self {
            name: name.to_string(),
            url,
            origin,
            template,
        };
        // A template that cannot render a sample event fails now, not at the first release.
        service.render(&sample_context(name))?;
        Ok(service)
    }

    fn render(&self, context: &Value) -> Result<String, NotifyConfigError> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        let error = |e: minijinja::Error| {
            let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
            NotifyConfigError::Template(format!(
                "{}{line}: the template of webhook `{}`: {}\nhint: the context has rollout, \
                 event (reason, message, type), trigger, recipient, service, namespace, name, \
                 phase, message, revision, image, commit, repository, run_url",
                self.origin,
                self.name,
                e.detail().unwrap_or(&e.kind().to_string())
            ))
        };
        env.add_template("body", &self.template).map_err(error)?;
        let body = env
            .get_template("body")
            .and_then(|t| t.render(minijinja::value::Serde(context)))
            .map_err(error)?;
        if let Err(e) = serde_json::from_str::<Value>(&body) {
            return Err(NotifyConfigError::Template(format!(
                "{}: the template of webhook `{}` does not render JSON ({e}):\n{body}\nhint: \
                 quote values with `| tojson`",
                self.origin, self.name
            )));
        }
        Ok(body)
    }
}

/// The CDEvents sink.
#[derive(Debug, Clone)]
pub struct CdeventsService {
    pub url: Secret,
    /// The CDEvents (and CloudEvents) `source`.
    pub source: String,
}

/// GitHub Deployment statuses.
#[derive(Debug, Clone)]
pub struct GithubDeployments {
    pub api_url: String,
    pub token: Secret,
    /// For Rollouts without the repository annotation.
    pub repository: Option<String>,
    /// For Rollouts without the environment annotation; else the namespace.
    pub environment: Option<String>,
}

/// What the controller notifies.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    pub webhooks: Vec<WebhookService>,
    pub cdevents: Option<CdeventsService>,
    pub github: Option<GithubDeployments>,
    pub delivery: DeliveryOptions,
}

impl NotifyConfig {
    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty() && self.cdevents.is_none() && self.github.is_none()
    }
}

/// The template context of an event on a Rollout.
fn context(
    rollout: &Rollout,
    event: &Event,
    trigger: &str,
    service: &str,
    recipient: &str,
) -> Value {
    let status = rollout.status_or_default();
    let annotation = |key: &str| rollout.metadata.annotations.as_ref()?.get(key).cloned();
    let image = rollout
        .spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    json!({
        "rollout": serde_json::to_value(rollout).unwrap_or_default(),
        "event": {
            "reason": event.reason,
            "message": event.message,
            "type": match event.event_type {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            },
        },
        "trigger": trigger,
        "service": service,
        "recipient": recipient,
        "namespace": rollout.metadata.namespace.clone().unwrap_or_default(),
        "name": rollout.metadata.name.clone().unwrap_or_default(),
        "phase": status.phase.map(|p| p.to_string()).unwrap_or_default(),
        "message": status.message,
        "revision": annotation("rollout.argoproj.io/revision").unwrap_or_default(),
        "image": image,
        "commit": annotation(COMMIT_ANNOTATION),
        "repository": annotation(REPOSITORY_ANNOTATION),
        "run_url": annotation("rollout-runner.io/run-url"),
    })
}

fn sample_context(service: &str) -> Value {
    let rollout: Rollout = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "shop",
            "annotations": {COMMIT_ANNOTATION: "0123456789abcdef0123456789abcdef01234567"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "example/web:1"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}]}}},
    }))
    .unwrap_or_default();
    let event = Event {
        event_type: EventType::Normal,
        reason: "RolloutCompleted".into(),
        message: "Rollout completed update to revision 2".into(),
    };
    context(&rollout, &event, "on-rollout-completed", service, "")
}

/// One delivery.
#[derive(Debug, Clone)]
pub(crate) enum Delivery {
    Webhook {
        service: usize,
        body: String,
    },
    CloudEvent(Box<cloudevents::Event>),
    DeploymentStatus {
        repository: String,
        sha: String,
        environment: String,
        state: &'static str,
        description: String,
    },
}

impl Job for Delivery {
    fn supersedes(&self, _older: &Self) -> bool {
        false
    }
}

struct NotifyExecutor {
    http: Http,
    webhooks: Vec<Secret>,
    cdevents: Option<Secret>,
    github: Option<(String, Secret)>,
}

impl NotifyExecutor {
    async fn deployment_status(
        &self,
        repository: &str,
        sha: &str,
        environment: &str,
        state: &str,
        description: &str,
    ) -> Result<(), CallError> {
        let Some((api, token)) = &self.github else {
            return Ok(());
        };
        let client = self.http.client();
        let headers = |request: reqwest::RequestBuilder| {
            request
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .bearer_auth(token.expose())
        };
        // One Deployment per commit and environment: found again after a restart.
        let found = self
            .http
            .send(
                "GET /repos/{owner}/{repo}/deployments",
                headers(
                    client
                        .get(format!("{api}/repos/{repository}/deployments"))
                        .query(&[("sha", sha), ("environment", environment)]),
                ),
            )
            .await?;
        let id = match found
            .json
            .as_array()
            .and_then(|d| d.first()?["id"].as_u64())
        {
            Some(id) => id,
            None => {
                let created = self
                    .http
                    .send(
                        "POST /repos/{owner}/{repo}/deployments",
                        headers(
                            client
                                .post(format!("{api}/repos/{repository}/deployments"))
                                .json(&json!({
                                    "ref": sha,
                                    "environment": environment,
                                    "auto_merge": false,
                                    "required_contexts": [],
                                    "description": "rollout-runner controller",
                                })),
                        ),
                    )
                    .await?;
                created.json["id"].as_u64().ok_or(CallError::Status {
                    code: 422,
                    message: "no deployment id in the answer".into(),
                })?
            }
        };
        self.http
            .send(
                "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
                headers(
                    client
                        .post(format!(
                            "{api}/repos/{repository}/deployments/{id}/statuses"
                        ))
                        .json(&json!({
                            "state": state,
                            "description": description.chars().take(140).collect::<String>(),
                            "environment": environment,
                        })),
                ),
            )
            .await
            .map(|_| ())
    }
}

impl Executor<Delivery> for NotifyExecutor {
    async fn execute(&mut self, job: &Delivery) -> Result<(), CallError> {
        match job {
            Delivery::Webhook { service, body } => {
                let Some(url) = self.webhooks.get(*service) else {
                    return Ok(());
                };
                let request = self
                    .http
                    .client()
                    .post(url.expose())
                    .header("Content-Type", "application/json")
                    .body(body.clone());
                self.http.send("POST webhook", request).await.map(|_| ())
            }
            Delivery::CloudEvent(event) => {
                let Some(url) = &self.cdevents else {
                    return Ok(());
                };
                // The SDK's HTTP binding, binary mode: attributes as `ce-*` headers.
                let request: http::Request<Option<Vec<u8>>> =
                    http::Request::try_from(event.as_ref().clone())
                        .map_err(|e| CallError::Transport(format!("cannot encode: {e}")))?;
                let (parts, body) = request.into_parts();
                let request = self
                    .http
                    .client()
                    .post(url.expose())
                    .headers(parts.headers)
                    .body(body.unwrap_or_default());
                self.http.send("POST cdevents", request).await.map(|_| ())
            }
            Delivery::DeploymentStatus {
                repository,
                sha,
                environment,
                state,
                description,
            } => {
                self.deployment_status(repository, sha, environment, state, description)
                    .await
            }
        }
    }
}

/// Turns a Rollout's events into deliveries. Create it inside a tokio runtime.
pub struct Notifier {
    config: NotifyConfig,
    worker: Mutex<Option<Worker<Delivery, NotifyExecutor>>>,
    counters: Counters,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("webhooks", &self.config.webhooks.len())
            .field("cdevents", &self.config.cdevents.is_some())
            .field("github", &self.config.github.is_some())
            .finish()
    }
}

impl Notifier {
    pub fn start(config: NotifyConfig) -> Arc<Self> {
        let mut secrets: Vec<&Secret> = config.webhooks.iter().map(|w| &w.url).collect();
        secrets.extend(config.cdevents.iter().map(|c| &c.url));
        secrets.extend(config.github.iter().map(|g| &g.token));
        let log = Log::new("notifications", &secrets);
        let counters = Counters::default();
        let http = Http::new(&config.delivery, counters.clone(), log.clone());
        let executor = NotifyExecutor {
            http,
            webhooks: config.webhooks.iter().map(|w| w.url.clone()).collect(),
            cdevents: config.cdevents.as_ref().map(|c| c.url.clone()),
            github: config
                .github
                .as_ref()
                .map(|g| (g.api_url.trim_end_matches('/').to_string(), g.token.clone())),
        };
        let worker = (!config.is_empty())
            .then(|| Worker::spawn(executor, &config.delivery, counters.clone(), log));
        Arc::new(Self {
            config,
            worker: Mutex::new(worker),
            counters,
        })
    }

    fn send(&self, delivery: Delivery) {
        if let Some(worker) = self
            .worker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            worker.send(delivery);
        }
    }

    /// The calls made so far.
    pub fn calls(&self) -> CallCounts {
        self.counters.snapshot()
    }

    /// Queue the notifications of `events`, which happened on `rollout`. Never blocks.
    pub fn notify(&self, rollout: &Rollout, events: &[Event]) {
        if self.config.is_empty() {
            return;
        }
        let annotations = rollout.metadata.annotations.clone().unwrap_or_default();
        let subscribed = subscriptions(&annotations);
        for event in events {
            let trigger = trigger_of(&event.reason);
            for subscription in subscribed.iter().filter(|s| s.trigger == trigger) {
                for recipient in &subscription.recipients {
                    self.deliver(rollout, event, &trigger, &subscription.service, recipient);
                }
            }
            self.github(rollout, event, &annotations);
        }
    }

    fn deliver(
        &self,
        rollout: &Rollout,
        event: &Event,
        trigger: &str,
        service: &str,
        recipient: &str,
    ) {
        let context = context(rollout, event, trigger, service, recipient);
        if service == CDEVENTS_SERVICE
            && let Some(cdevents) = &self.config.cdevents
        {
            match cdevent(rollout, event, &cdevents.source, &context) {
                Ok(event) => self.send(Delivery::CloudEvent(Box::new(event))),
                Err(error) => tracing::warn!(%error, "cannot build a CloudEvent"),
            }
            return;
        }
        if let Some((index, webhook)) = self
            .config
            .webhooks
            .iter()
            .enumerate()
            .find(|(_, w)| w.name == service)
        {
            match webhook.render(&context) {
                Ok(body) => self.send(Delivery::Webhook {
                    service: index,
                    body,
                }),
                Err(error) => tracing::warn!(%error, "cannot render a notification"),
            }
        }
    }

    fn github(&self, rollout: &Rollout, event: &Event, annotations: &BTreeMap<String, String>) {
        let Some(github) = &self.config.github else {
            return;
        };
        let Some(sha) = annotations.get(COMMIT_ANNOTATION) else {
            return;
        };
        let Some(repository) = annotations
            .get(REPOSITORY_ANNOTATION)
            .or(github.repository.as_ref())
        else {
            return;
        };
        let state = match event.reason.as_str() {
            "RolloutUpdated" | "RolloutPaused" | "RolloutResumed" => "in_progress",
            "RolloutCompleted" => "success",
            "RolloutAborted" => "failure",
            _ => return,
        };
        let environment = annotations
            .get(ENVIRONMENT_ANNOTATION)
            .or(github.environment.as_ref())
            .cloned()
            .unwrap_or_else(|| rollout.metadata.namespace.clone().unwrap_or_default());
        self.send(Delivery::DeploymentStatus {
            repository: repository.clone(),
            sha: sha.clone(),
            environment,
            state,
            description: event.message.clone(),
        });
    }

    /// Wait (bounded by the flush timeout) for the queued deliveries.
    pub async fn finish(&self) -> CallCounts {
        let worker = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(worker) = worker {
            worker.close(self.config.delivery.flush_timeout).await;
        }
        self.counters.snapshot()
    }
}

/// The CDEvents type of an event: a release promoted or aborted has one in the vocabulary;
/// everything else is a custom event (`dev.cdeventsx.<tool>-<subject>.<predicate>.<version>`).
pub fn cdevent_type(rollout: &Rollout, reason: &str) -> String {
    let revision: u64 = rollout
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("rollout.argoproj.io/revision"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    match reason {
        "RolloutCompleted" if revision > 1 => "dev.cdevents.service.upgraded.0.2.0".into(),
        "RolloutCompleted" => "dev.cdevents.service.deployed.0.2.0".into(),
        "RolloutAborted" => "dev.cdevents.service.rolledback.0.2.0".into(),
        other => format!(
            "dev.cdeventsx.rolloutrunner-rollout.{}.0.1.0",
            other.to_lowercase()
        ),
    }
}

/// The CDEvent of `event` as a CloudEvent: CloudEvents attributes from the CDEvent context
/// (the CDEvents CloudEvents binding), the whole CDEvent as the data.
fn cdevent(
    rollout: &Rollout,
    event: &Event,
    source: &str,
    context: &Value,
) -> Result<cloudevents::Event, String> {
    use cloudevents::{EventBuilder, EventBuilderV10};
    let id = uuid_v4();
    let event_type = cdevent_type(rollout, &event.reason);
    let now = Timestamp::now();
    let subject = format!(
        "rollout/{}/{}",
        context["namespace"].as_str().unwrap_or_default(),
        context["name"].as_str().unwrap_or_default()
    );
    let cdevent = json!({
        "context": {
            "version": CDEVENTS_VERSION,
            "id": id,
            "source": source,
            "type": event_type,
            "timestamp": now.to_string(),
        },
        "subject": {
            "id": subject,
            "source": source,
            "type": "service",
            "content": {
                "environment": {"id": context["namespace"]},
                "artifactId": image_purl(context["image"].as_str().unwrap_or_default()),
            },
        },
        "customDataContentType": "application/json",
        "customData": {
            "rollout": subject.trim_start_matches("rollout/"),
            "reason": event.reason,
            "message": event.message,
            "trigger": context["trigger"],
            "phase": context["phase"],
            "revision": context["revision"],
            "image": context["image"],
            "commit": context["commit"],
            "repository": context["repository"],
        },
    });
    let time = chrono::DateTime::<chrono::Utc>::from_timestamp(
        now.as_second(),
        u32::try_from(now.subsec_nanosecond()).unwrap_or(0),
    )
    .ok_or("the time is out of range")?;
    EventBuilderV10::new()
        .id(id)
        .source(source)
        .ty(event_type)
        .subject(subject)
        .time(time)
        .data("application/json", cdevent)
        .build()
        .map_err(|e| e.to_string())
}

/// A random UUID (version 4).
fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        bytes = Timestamp::now().as_nanosecond().to_be_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_templates_render_json() {
        for (name, _) in BUILTIN_TEMPLATES {
            WebhookService::new(name, name, Secret::new("https://hooks.example.com/x"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let bad = tempfile_with("{\"text\": {{ nope }}}");
        let error = WebhookService::new("x", bad.to_str().unwrap(), Secret::new("u"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(":1:"), "{error}");
        assert!(
            error.contains("nope") || error.contains("undefined"),
            "{error}"
        );
    }

    fn tempfile_with(text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("notify-test-{}", uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("body.json.j2");
        std::fs::write(&path, text).unwrap();
        path
    }
}
