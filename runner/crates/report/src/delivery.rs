//! Delivery for the forge and webhook reporters: a background task per reporter that makes the
//! HTTP calls, so that [`crate::Reporter::report`] only enqueues and the driver never
//! waits on the network.
//!
//! Owns the HTTP client (timeouts, the auth header, counting calls), retries with bounded
//! exponential backoff, dropping a failed job when a newer one of the same kind is already queued
//! (the newer one carries the latest state), giving up on a bad token, the pacing that keeps a
//! long rollout from burning the rate limit ([`Pacer`]), and the bounded wait at the end
//! ([`Worker::close`]). Refuses to decide anything about a release: reporters turn updates into
//! jobs; this module only delivers them. Nothing here can fail the drive: every error ends as a
//! warning on stderr, with secrets scrubbed.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A credential. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it (an auth header or a signature key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How reporters deliver: timeouts, retries and pacing.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Time limit of one HTTP call.
    pub request_timeout: Duration,
    /// Retries of a failed call (5xx, 429, timeout, connection error) before the job is dropped.
    pub retries: u32,
    /// The first retry waits this long; each next one twice as long.
    pub backoff: Duration,
    /// How long `finish` waits for queued calls before giving up on them.
    pub flush_timeout: Duration,
    /// Between milestones, send intermediate updates (pod counts, measurements) at most this
    /// often, in the driver's time.
    pub interval: SignedDuration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_secs(1),
            flush_timeout: Duration::from_secs(30),
            interval: SignedDuration::from_secs(30),
        }
    }
}

/// Calls made by one reporter, by route (`POST /repos/{owner}/{repo}/check-runs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallCounts {
    /// HTTP requests sent, retries included.
    pub calls: u64,
    /// Requests that failed (an error status or no answer).
    pub failed: u64,
    /// Jobs given up on: out of retries, superseded after a failure, a bad token, or still
    /// queued when the flush timeout passed.
    pub dropped: u64,
    pub by_route: BTreeMap<String, u64>,
}

/// Shared counters, readable after the worker is gone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters(Arc<Mutex<CallCounts>>);

impl Counters {
    fn call(&self, route: &str) {
        if let Ok(mut counts) = self.0.lock() {
            counts.calls += 1;
            *counts.by_route.entry(route.to_string()).or_default() += 1;
        }
    }

    fn failed(&self) {
        if let Ok(mut counts) = self.0.lock() {
            counts.failed += 1;
        }
    }

    pub(crate) fn dropped(&self, jobs: u64) {
        if let Ok(mut counts) = self.0.lock() {
            counts.dropped += jobs;
        }
    }

    pub(crate) fn snapshot(&self) -> CallCounts {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Where warnings go: stderr, prefixed with the reporter's name, with every secret replaced by
/// `***`.
#[derive(Clone)]
pub(crate) struct Log {
    name: &'static str,
    secrets: Arc<Mutex<Vec<String>>>,
    /// Failed calls shown so far: past [`MAX_CALL_WARNINGS`] they are only counted.
    shown: Arc<Mutex<u32>>,
}

/// Failed calls shown one by one; the rest only count (the summary line gives the total).
const MAX_CALL_WARNINGS: u32 = 5;

impl Log {
    pub(crate) fn new(name: &'static str, secrets: &[&Secret]) -> Self {
        let log = Self {
            name,
            secrets: Arc::default(),
            shown: Arc::default(),
        };
        for secret in secrets {
            log.add_secret(secret);
        }
        log
    }

    /// Also scrub this secret (a token obtained at run time).
    pub(crate) fn add_secret(&self, secret: &Secret) {
        if secret.expose().len() >= 4
            && let Ok(mut secrets) = self.secrets.lock()
        {
            secrets.push(secret.expose().to_string());
        }
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Ok(secrets) = self.secrets.lock() {
            for secret in secrets.iter() {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    pub(crate) fn warn(&self, message: &str) {
        let message = self.scrub(message);
        tracing::warn!(reporter = self.name, "{message}");
        let _ = writeln!(std::io::stderr(), "warning: {}: {message}", self.name);
    }

    /// A failed call: shown for the first few, then only counted.
    pub(crate) fn call_failed(&self, message: &str) {
        let shown = self
            .shown
            .lock()
            .map(|mut shown| {
                *shown += 1;
                *shown
            })
            .unwrap_or(0);
        if shown <= MAX_CALL_WARNINGS {
            self.warn(message);
        }
        if shown == MAX_CALL_WARNINGS {
            self.note("further failed calls are counted, not shown");
        }
    }

    pub(crate) fn note(&self, message: &str) {
        let message = self.scrub(message);
        tracing::info!(reporter = self.name, "{message}");
        let _ = writeln!(std::io::stderr(), "note: {}: {message}", self.name);
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// No answer: timeout, connection refused, TLS.
    Transport(String),
    /// An answer with an error status.
    Status { code: u16, message: String },
}

impl CallError {
    /// Worth trying again: no answer, a server error, or rate limiting.
    pub(crate) fn retryable(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Status { code, .. } => *code >= 500 || *code == 429,
        }
    }

    /// The credentials are bad: no further call can succeed.
    pub(crate) fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Status { code: 401, .. })
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Status { code, .. } => Some(*code),
            Self::Transport(_) => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(message) => write!(f, "no answer: {message}"),
            Self::Status { code, message } if message.is_empty() => write!(f, "HTTP {code}"),
            Self::Status { code, message } => write!(f, "HTTP {code}: {message}"),
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) json: serde_json::Value,
    pub(crate) headers: reqwest::header::HeaderMap,
}

/// The HTTP client of one reporter: counts every call under its route name.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    counters: Counters,
    log: Log,
}

impl Http {
    pub(crate) fn new(options: &DeliveryOptions, counters: Counters, log: Log) -> Self {
        let client = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout)
            .user_agent(concat!("rollout-runner/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            client,
            counters,
            log,
        }
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub(crate) fn log(&self) -> &Log {
        &self.log
    }

    /// Send a request; `route` names it in the call counts.
    pub(crate) async fn send(
        &self,
        route: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, CallError> {
        self.counters.call(route);
        let result = async {
            let response = request
                .send()
                .await
                .map_err(|e| CallError::Transport(transport_message(&e)))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .text()
                .await
                .map_err(|e| CallError::Transport(transport_message(&e)))?;
            if !status.is_success() {
                return Err(CallError::Status {
                    code: status.as_u16(),
                    message: error_message(&body),
                });
            }
            let json = if body.trim().is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
            };
            Ok(Answer { json, headers })
        }
        .await;
        if let Err(error) = &result {
            self.counters.failed();
            self.log.call_failed(&format!("{route}: {error}"));
        }
        result
    }
}

/// A transport error without the URL's query (which could carry a secret) and without the
/// request: reqwest's `Display` includes the URL, which is fine for APIs whose credentials
/// travel in headers; the path of a webhook URL is redacted by the webhook reporter.
fn transport_message(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "bad response body"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// The message of an error body: GitHub's and GitLab's `message`, GitLab's `error`, or the
/// start of the text.
fn error_message(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let text = match json.get("message").or_else(|| json.get("error")) {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => body.trim().to_string(),
    };
    text.chars().take(300).collect()
}

/// One unit of work for a worker.
pub(crate) trait Job: Send + 'static {
    /// Whether this job makes `older` pointless (it carries a later state of the same thing).
    fn supersedes(&self, older: &Self) -> bool;
}

/// Carries out jobs: one per reporter, owning the remote state (ids of what it created).
pub(crate) trait Executor<J: Job>: Send + 'static {
    fn execute(&mut self, job: &J) -> impl Future<Output = Result<(), CallError>> + Send;

    /// A call failed with an error that is not worth retrying; return `true` when the job
    /// should be tried again anyway (the executor changed its way, e.g. to a fallback).
    fn fallback(&mut self, _error: &CallError) -> bool {
        false
    }
}

/// A running worker: the sending end of its queue and its task.
pub(crate) struct Worker<J, E> {
    sender: Option<mpsc::UnboundedSender<J>>,
    handle: JoinHandle<E>,
    counters: Counters,
    log: Log,
    pending: Arc<Mutex<u64>>,
}

impl<J: Job, E: Executor<J>> Worker<J, E> {
    /// Start a worker on the current tokio runtime.
    pub(crate) fn spawn(
        executor: E,
        options: &DeliveryOptions,
        counters: Counters,
        log: Log,
    ) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let pending = Arc::new(Mutex::new(0));
        let handle = tokio::spawn(run(
            executor,
            receiver,
            options.clone(),
            counters.clone(),
            log.clone(),
            pending.clone(),
        ));
        Self {
            sender: Some(sender),
            handle,
            counters,
            log,
            pending,
        }
    }

    /// Queue a job; never blocks, never fails.
    pub(crate) fn send(&self, job: J) {
        if let Some(sender) = &self.sender {
            if let Ok(mut pending) = self.pending.lock() {
                *pending += 1;
            }
            if sender.send(job).is_err() {
                self.counters.dropped(1);
            }
        }
    }

    /// Stop taking jobs and wait (at most `timeout`) for the queued ones. Returns the executor
    /// (for what it learned, such as the URL of a check run) unless the time ran out.
    pub(crate) async fn close(mut self, timeout: Duration) -> Option<E> {
        self.sender = None;
        match tokio::time::timeout(timeout, &mut self.handle).await {
            Ok(Ok(executor)) => Some(executor),
            Ok(Err(_)) => None,
            Err(_) => {
                self.handle.abort();
                let left = self.pending.lock().map(|p| *p).unwrap_or(0);
                self.counters.dropped(left);
                self.log.warn(&format!(
                    "gave up after {}: {left} report(s) not delivered",
                    humantime::format_duration(timeout)
                ));
                None
            }
        }
    }
}

async fn run<J: Job, E: Executor<J>>(
    mut executor: E,
    mut receiver: mpsc::UnboundedReceiver<J>,
    options: DeliveryOptions,
    counters: Counters,
    log: Log,
    pending: Arc<Mutex<u64>>,
) -> E {
    let mut queue: VecDeque<J> = VecDeque::new();
    let mut disabled = false;
    let done = |n: u64| {
        if let Ok(mut p) = pending.lock() {
            *p = p.saturating_sub(n);
        }
    };
    loop {
        let job = match queue.pop_front() {
            Some(job) => job,
            None => match receiver.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        if disabled {
            counters.dropped(1);
            done(1);
            continue;
        }
        let mut attempt = 0;
        loop {
            match executor.execute(&job).await {
                Ok(()) => break,
                Err(error) if error.is_unauthorized() => {
                    log.warn(
                        "the token was refused (401): no further reports will be sent; \
                         check the token and its permissions",
                    );
                    disabled = true;
                    counters.dropped(1);
                    break;
                }
                Err(error) if !error.retryable() => {
                    if executor.fallback(&error) {
                        continue;
                    }
                    counters.dropped(1);
                    break;
                }
                Err(_) => {
                    while let Ok(newer) = receiver.try_recv() {
                        queue.push_back(newer);
                    }
                    if queue.iter().any(|newer| newer.supersedes(&job)) {
                        counters.dropped(1);
                        break;
                    }
                    if attempt >= options.retries {
                        log.warn(&format!(
                            "giving up on this report after {} attempts",
                            attempt + 1
                        ));
                        counters.dropped(1);
                        break;
                    }
                    tokio::time::sleep(options.backoff.saturating_mul(1 << attempt.min(16))).await;
                    attempt += 1;
                }
            }
        }
        done(1);
    }
    executor
}

/// How much a change matters for pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Weight {
    /// Pod counts, a measurement: sent at most every `interval`.
    Minor,
    /// A weight change, a resume, a phase change: sent at the next flush point.
    Milestone,
    /// A step started, a pause, an analysis verdict, promoted, aborted: also worth editing the
    /// pull request comment for.
    Major,
}

/// Decides when accumulated changes are sent. Time is the driver's (`Update::at`), so a
/// simulation makes exactly the calls the real release would make.
///
/// Changes accumulate during a burst (updates with the same `at`); the burst is flushed when
/// the driver waits ([`crate::Reporter::waiting`]), when a later update arrives, or at
/// the end. A flush sends when a milestone happened, or when minor changes are older than the
/// interval since the last send.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    interval: SignedDuration,
    burst_at: Option<Timestamp>,
    pending: Option<Weight>,
    last_sent: Option<Timestamp>,
}

impl Pacer {
    pub(crate) fn new(interval: SignedDuration) -> Self {
        Self {
            interval,
            burst_at: None,
            pending: None,
            last_sent: None,
        }
    }

    /// Whether an update at `at` ends the previous burst (flush before applying it).
    pub(crate) fn ends_burst(&self, at: Timestamp) -> bool {
        self.burst_at.is_some_and(|burst| at > burst)
    }

    /// Record a change of `weight` at `at`.
    pub(crate) fn note(&mut self, at: Timestamp, weight: Weight) {
        self.burst_at = Some(at);
        self.pending = Some(self.pending.map_or(weight, |w| w.max(weight)));
    }

    /// At a flush point: `Some(weight)` when something should be sent now.
    pub(crate) fn flush(&mut self, now: Timestamp) -> Option<Weight> {
        let weight = self.pending?;
        let due = weight >= Weight::Milestone
            || self
                .last_sent
                .is_none_or(|last| now.duration_since(last) >= self.interval);
        if !due {
            return None;
        }
        self.pending = None;
        self.last_sent = Some(now);
        Some(weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_900_000_000 + seconds).unwrap()
    }

    #[test]
    fn pacer_sends_milestones_and_spaces_minor_changes() {
        let mut pacer = Pacer::new(SignedDuration::from_secs(30));
        pacer.note(t(0), Weight::Major);
        assert_eq!(pacer.flush(t(0)), Some(Weight::Major));
        pacer.note(t(10), Weight::Minor);
        assert_eq!(pacer.flush(t(10)), None, "too soon after the last send");
        pacer.note(t(20), Weight::Minor);
        assert_eq!(pacer.flush(t(20)), None);
        pacer.note(t(40), Weight::Minor);
        assert_eq!(pacer.flush(t(40)), Some(Weight::Minor));
        assert_eq!(pacer.flush(t(41)), None, "nothing pending");
        pacer.note(t(42), Weight::Milestone);
        assert_eq!(pacer.flush(t(42)), Some(Weight::Milestone));
        assert!(pacer.ends_burst(t(43)));
        assert!(!pacer.ends_burst(t(42)));
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("ghp_abc");
        assert_eq!(format!("{secret:?} {secret}"), "Secret(***) ***");
        let log = Log::new("github", &[&secret]);
        assert_eq!(log.scrub("bad ghp_abc token"), "bad *** token");
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"message":"Bad credentials","documentation_url":"x"}"#),
            "Bad credentials"
        );
        assert_eq!(error_message("oops"), "oops");
    }
}
