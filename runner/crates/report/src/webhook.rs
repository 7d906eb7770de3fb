//! A generic webhook: each milestone of a release is POSTed as a JSON [CDEvent], signed with
//! HMAC-SHA256 over the body when a shared secret is set. For chat bridges, incident tooling
//! and event buses.
//!
//! Event types (CDEvents v0.4.1 vocabulary, <https://github.com/cdevents/spec/blob/v0.4.1/continuous-deployment.md>):
//! - a promoted release: `dev.cdevents.service.upgraded.0.2.0` (`service.deployed` when
//!   nothing was running before);
//! - an aborted release: `dev.cdevents.service.rolledback.0.2.0`;
//! - everything else (started, step started, paused, resumed, analysis verdicts, other
//!   endings) has no CDEvents type, and is sent as a custom event
//!   `dev.cdeventsx.rolloutrunner-release.<predicate>.0.1.0` (the spec's custom event format).
//!
//! Every event carries the release in `customData` (`customDataContentType:
//! application/json`). Headers: `X-Rollout-Runner-Event` (the type), `X-Rollout-Runner-Delivery`
//! (the event id), and `X-Rollout-Runner-Signature-256: sha256=<hex HMAC-SHA256 of the body>`
//! when a secret is configured (verify it like GitHub's `X-Hub-Signature-256`).
//!
//! [CDEvent]: https://cdevents.dev

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::delivery::{
    CallCounts, CallError, Counters, DeliveryOptions, Executor, Http, Job, Log, Secret, Worker,
};
use super::github::update_at;
use super::markdown::Verdict;
use super::release::Release;
use super::{Change, Outcome, Reporter, Update, changes};

/// The CDEvents spec version of the envelope.
pub const CDEVENTS_VERSION: &str = "0.4.1";
pub const SIGNATURE_HEADER: &str = "X-Rollout-Runner-Signature-256";
pub const EVENT_HEADER: &str = "X-Rollout-Runner-Event";
pub const DELIVERY_HEADER: &str = "X-Rollout-Runner-Delivery";

/// What the webhook reporter needs.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where to POST. Treated as a secret (chat webhook URLs are credentials): never printed.
    pub url: Secret,
    /// Key of the HMAC-SHA256 signature.
    pub secret: Option<Secret>,
    /// The CDEvents `source` (a URI reference), e.g. the repository URL.
    pub source: String,
    pub environment: Option<String>,
    pub repository: Option<String>,
    pub commit: Option<String>,
    pub run_url: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    event_type: String,
    id: String,
    body: String,
}

impl Job for Delivery {
    fn supersedes(&self, _older: &Self) -> bool {
        false
    }
}

pub(crate) struct WebhookExecutor {
    http: Http,
    url: Secret,
    secret: Option<Secret>,
}

impl Executor<Delivery> for WebhookExecutor {
    async fn execute(&mut self, job: &Delivery) -> Result<(), CallError> {
        let mut request = self
            .http
            .client()
            .post(self.url.expose())
            .header("Content-Type", "application/json")
            .header(EVENT_HEADER, &job.event_type)
            .header(DELIVERY_HEADER, &job.id)
            .body(job.body.clone());
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, job.body.as_bytes()));
        }
        self.http.send("POST webhook", request).await.map(|_| ())
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose().as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A random UUID (version 4).
fn uuid() -> String {
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

/// A package URL for an image: `pkg:oci/checkout@sha256%3A...?repository_url=ghcr.io/example/checkout`
/// or, with only a tag, `pkg:oci/checkout?repository_url=...&tag=1.4.0`.
pub fn image_purl(image: &str) -> String {
    let (without_digest, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match without_digest[last_slash..].find(':') {
        Some(i) => (
            &without_digest[..last_slash + i],
            Some(&without_digest[last_slash + i + 1..]),
        ),
        None => (without_digest, None),
    };
    let name = repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .to_lowercase();
    let mut purl = format!("pkg:oci/{name}");
    if let Some(digest) = digest {
        purl.push('@');
        purl.push_str(&digest.replace(':', "%3A"));
    }
    purl.push_str(&format!("?repository_url={repository}"));
    if let Some(tag) = tag {
        purl.push_str(&format!("&tag={tag}"));
    }
    purl
}

/// The webhook reporter. Create it inside a tokio runtime; call [`WebhookReporter::finish`]
/// before exiting.
pub struct WebhookReporter {
    release: Release,
    config: WebhookConfig,
    worker: Worker<Delivery, WebhookExecutor>,
    counters: Counters,
    flush_timeout: Duration,
    had_stable: bool,
}

impl WebhookReporter {
    pub fn start(config: WebhookConfig, options: &DeliveryOptions) -> Self {
        let mut secrets = vec![&config.url];
        if let Some(secret) = &config.secret {
            secrets.push(secret);
        }
        let log = Log::new("webhook", &secrets);
        let counters = Counters::default();
        let http = Http::new(options, counters.clone(), log.clone());
        let executor = WebhookExecutor {
            http,
            url: config.url.clone(),
            secret: config.secret.clone(),
        };
        let worker = Worker::spawn(executor, options, counters.clone(), log);
        Self {
            release: Release::default(),
            config,
            worker,
            counters,
            flush_timeout: options.flush_timeout,
            had_stable: false,
        }
    }

    pub fn calls(&self) -> CallCounts {
        self.counters.snapshot()
    }

    /// Wait (bounded) for the queued deliveries.
    pub async fn finish(self) -> CallCounts {
        self.worker.close(self.flush_timeout).await;
        self.counters.snapshot()
    }

    /// The CDEvent for `predicate` (or a vocabulary type) at `at`.
    pub fn event(&self, event_type: &str, at: Timestamp, change: Value) -> (String, Value) {
        let release = &self.release;
        let id = uuid();
        let step = release.step_in_focus();
        let mut environment = json!({ "id": self.config.environment.clone().unwrap_or_else(|| release.namespace.clone()) });
        if !self.config.source.is_empty() {
            environment["source"] = json!(self.config.source);
        }
        let event = json!({
            "context": {
                "version": CDEVENTS_VERSION,
                "id": id,
                "source": self.config.source,
                "type": event_type,
                "timestamp": at.to_string(),
            },
            "subject": {
                "id": format!("rollout/{}", release.id()),
                "source": self.config.source,
                "type": "service",
                "content": {
                    "environment": environment,
                    "artifactId": image_purl(&release.image),
                },
            },
            "customDataContentType": "application/json",
            "customData": {
                "rollout": release.id(),
                "revision": release.revision,
                "podTemplateHash": release.pod_hash,
                "image": release.image,
                "strategy": release.strategy,
                "step": step.map(|(i, _)| i + 1),
                "steps": release.steps.len(),
                "stepText": step.map(|(_, s)| s.text.clone()),
                "weight": release.weight,
                "phase": release.phase,
                "message": release.message,
                "verdict": Verdict::of(release).as_str(),
                "outcome": release.outcome,
                "change": change,
                "repository": self.config.repository,
                "commit": self.config.commit,
                "runUrl": self.config.run_url,
                "environment": self.config.environment,
            },
        });
        (id, event)
    }

    fn post(&self, event_type: &str, at: Timestamp, change: Value) {
        let (id, event) = self.event(event_type, at, change);
        self.worker.send(Delivery {
            event_type: event_type.to_string(),
            id,
            body: event.to_string(),
        });
    }
}

fn custom(predicate: &str) -> String {
    format!("dev.cdeventsx.rolloutrunner-release.{predicate}.0.1.0")
}

impl Reporter for WebhookReporter {
    fn report(&mut self, update: &Update<'_>) {
        let at = update_at(update);
        let status_changes = match update {
            Update::Status {
                rollout, previous, ..
            } => changes(rollout, *previous),
            _ => Vec::new(),
        };
        self.release.report(update);
        match update {
            Update::Started { rollout, .. } => {
                self.had_stable = !rollout.status_or_default().stable_rs.is_empty();
                self.post(&custom("started"), at, json!({ "change": "started" }));
            }
            Update::Status { .. } => {
                for change in status_changes {
                    let predicate = match &change {
                        Change::StepStarted { .. } => "stepstarted",
                        Change::Paused { .. } => "paused",
                        Change::Resumed => "resumed",
                        Change::Aborted { .. } => "aborting",
                        Change::ServiceSwitched { .. } => "serviceswitched",
                        Change::StepsCompleted => "stepscompleted",
                        Change::UpdateStarted { .. }
                        | Change::WeightChanged { .. }
                        | Change::Promoted { .. }
                        | Change::Phase { .. } => continue,
                    };
                    let value = serde_json::to_value(&change).unwrap_or_default();
                    self.post(&custom(predicate), at, value);
                }
            }
            Update::AnalysisRunCompleted { run, status, .. } => {
                self.post(
                    &custom("analyzed"),
                    at,
                    json!({
                        "change": "analysisRunCompleted",
                        "run": run.metadata.name,
                        "phase": status.phase.to_string(),
                        "message": status.message,
                    }),
                );
            }
            Update::Finished { outcome, .. } => {
                let event_type = match outcome {
                    Outcome::Promoted { .. } if self.had_stable => {
                        "dev.cdevents.service.upgraded.0.2.0".to_string()
                    }
                    Outcome::Promoted { .. } => "dev.cdevents.service.deployed.0.2.0".to_string(),
                    Outcome::Aborted { .. } => "dev.cdevents.service.rolledback.0.2.0".to_string(),
                    _ => custom("finished"),
                };
                self.post(&event_type, at, json!({ "change": "finished" }));
            }
            Update::Actions { .. } | Update::Events { .. } | Update::Measurement { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        assert_eq!(
            image_purl("ghcr.io/example/checkout:1.4.0"),
            "pkg:oci/checkout?repository_url=ghcr.io/example/checkout&tag=1.4.0"
        );
        assert_eq!(
            image_purl("localhost:5000/app@sha256:abc"),
            "pkg:oci/app@sha256%3Aabc?repository_url=localhost:5000/app"
        );
        assert_eq!(image_purl("nginx"), "pkg:oci/nginx?repository_url=nginx");
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        let secret = Secret::new("Jefe");
        assert_eq!(
            signature(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn uuids_are_version_4() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
