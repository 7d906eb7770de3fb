//! `rollout-runner dashboard`: the HTML report of each Rollout's release, live.
//!
//! The Rollouts and AnalysisRuns come from the watch caches the runner and the controller use
//! ([`Caches`]); every change the watches deliver updates one [`Recorder`] per Rollout, fed
//! the updates the driver would report (status changes, measurements, analysis verdicts, the
//! outcome), so the page is the report of `rollout-runner report` (same renderer) with the
//! Rollout's state now and promote / abort / retry buttons on top. A release starts over when
//! the Rollout's pod template changes or an aborted update is retried; what happened before
//! the dashboard started is known only from the AnalysisRuns and the status.
//!
//! Served with hyper, already the controller's HTTP server: the dashboard has five routes, so
//! a router library would add a dependency for a `match`. Pages follow changes through
//! server-sent events (`/events`) and fetch themselves again.
//!
//! The buttons write to the cluster with this process's credentials, so they only answer a
//! POST carrying the page's token in the `X-Rollout-Runner-Token` header: a page of another
//! origin can neither read the token nor send that header without a CORS preflight, which is
//! never granted. On a loopback address the `Host` header must name the address too (a DNS
//! rebinding page has another host name). Measurement values go through the same redaction as
//! the driver's, with the Secrets the AnalysisRun's arguments name; when those cannot be read
//! the values are hidden.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cluster::caches::Caches;
use crate::crd::{AnalysisRun, POD_TEMPLATE_HASH_LABEL, Rollout, RolloutStatus};
use crate::driver::{RunOptions, evaluate};
use crate::engine::phase::observed_phase;
use crate::operate::{Operation, patches};
use crate::report::html::{LiveAction, LiveView, RolloutRow, dashboard_html, to_live_html};
use crate::report::record::{Recorder, ReleaseRecord};
use crate::report::{Outcome, Reporter, Update};

type Body = BoxBody<Bytes, Infallible>;

/// The header the buttons send their token in.
pub const TOKEN_HEADER: &str = "x-rollout-runner-token";

/// The release of one Rollout as the dashboard saw it.
struct Release {
    pod_hash: String,
    recorder: Recorder,
    status: Option<RolloutStatus>,
    /// Measurements reported: (run, metric, index).
    measured: HashSet<(String, String, usize)>,
    completed_runs: HashSet<String>,
}

/// The dashboard's state: the caches, one release per Rollout, and a counter of changes.
pub struct Dashboard {
    client: Client,
    caches: Arc<Caches>,
    /// The namespace shown; `None`: every namespace.
    scope: Option<String>,
    releases: Mutex<HashMap<(String, String), Release>>,
    /// The values of the Secrets each AnalysisRun names (by uid); `None`: unreadable, hide.
    secrets: tokio::sync::Mutex<HashMap<String, Option<Vec<String>>>>,
    version: watch::Sender<u64>,
    token: String,
    /// The `Host` values accepted (empty: any).
    hosts: Vec<String>,
}

fn random_hex(bytes: usize) -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut buffer = vec![0u8; bytes];
    // The system's generator; failing means the machine has no entropy source at all.
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut buffer)
        .expect("the system random generator works");
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(rollout: &Rollout) -> (String, String) {
    (
        rollout.namespace_or_default().to_string(),
        rollout.name().to_string(),
    )
}

fn time_of(
    time: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) -> Option<Timestamp> {
    time.map(|t| t.0)
}

impl Dashboard {
    /// A dashboard over `caches` (already fed), answering on `address`.
    pub fn new(
        client: Client,
        caches: Arc<Caches>,
        scope: Option<String>,
        address: SocketAddr,
    ) -> Arc<Self> {
        let hosts = if address.ip().is_loopback() {
            let port = address.port();
            let mut hosts = vec![format!("{address}"), format!("localhost:{port}")];
            if address.is_ipv4() {
                hosts.push(format!("[::1]:{port}"));
            } else {
                hosts.push(format!("127.0.0.1:{port}"));
            }
            hosts
        } else {
            Vec::new()
        };
        Arc::new(Self {
            client,
            caches,
            scope,
            releases: Mutex::new(HashMap::new()),
            secrets: tokio::sync::Mutex::new(HashMap::new()),
            version: watch::channel(0).0,
            token: random_hex(32),
            hosts,
        })
    }

    fn releases(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Release>> {
        self.releases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Update the releases after every change the watches deliver, until the caches stop.
    pub async fn follow(self: Arc<Self>) {
        let mut changes = self.caches.changes();
        loop {
            self.observe().await;
            if changes.changed().await.is_err() {
                return;
            }
            // A burst of events (a pass writes several objects) makes one update.
            tokio::time::sleep(Duration::from_millis(100)).await;
            changes.borrow_and_update();
        }
    }

    /// The values to redact from a run's measurements; `None` when a Secret it names cannot
    /// be read (its values are then hidden).
    async fn redaction(&self, run: &AnalysisRun) -> Option<Vec<String>> {
        let references: Vec<_> = run
            .spec
            .args
            .iter()
            .filter_map(|a| a.value_from.as_ref()?.secret_key_ref.as_ref())
            .collect();
        if references.is_empty() {
            return Some(Vec::new());
        }
        let uid = run.metadata.uid.clone().unwrap_or_default();
        let mut known = self.secrets.lock().await;
        if let Some(values) = known.get(&uid) {
            return values.clone();
        }
        let api = Api::<Secret>::namespaced(
            self.client.clone(),
            run.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let mut values = Some(Vec::new());
        for reference in references {
            let value = api.get(&reference.name).await.ok().and_then(|secret| {
                let bytes = secret.data?.get(&reference.key)?.0.clone();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            });
            match (value, values.as_mut()) {
                (Some(value), Some(all)) => all.push(value),
                _ => values = None,
            }
        }
        known.insert(uid, values.clone());
        values
    }

    /// Bring every Rollout's release up to date with the caches.
    async fn observe(&self) {
        let now = Timestamp::now();
        let scope = self.scope.as_deref();
        let rollouts = self.caches.rollouts.list(scope, |_| true);
        let runs = self.caches.analysis_runs.list(scope, |_| true);
        // Redaction values first: reading a Secret awaits, the releases' lock must not.
        let mut redactions = HashMap::new();
        for run in &runs {
            redactions.insert(run.metadata.uid.clone(), self.redaction(run).await);
        }
        let mut changed = false;
        {
            let mut releases = self.releases();
            let seen: HashSet<_> = rollouts.iter().map(|r| key(r)).collect();
            let before = releases.len();
            releases.retain(|k, _| seen.contains(k));
            changed |= releases.len() != before;
            for rollout in &rollouts {
                let uid = rollout.metadata.uid.clone();
                let own: Vec<&Arc<AnalysisRun>> = runs
                    .iter()
                    .filter(|run| {
                        run.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|o| Some(&o.uid) == uid.as_ref())
                    })
                    .collect();
                changed |= observe_rollout(&mut releases, rollout, &own, &redactions, now);
            }
        }
        if changed {
            self.version.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

/// Feed one Rollout's release what changed; whether anything did.
fn observe_rollout(
    releases: &mut HashMap<(String, String), Release>,
    rollout: &Rollout,
    runs: &[&Arc<AnalysisRun>],
    redactions: &HashMap<Option<String>, Option<Vec<String>>>,
    now: Timestamp,
) -> bool {
    let status = rollout.status_or_default();
    let pod_hash = status.current_pod_hash.clone();
    let key = key(rollout);
    let retried = releases
        .get(&key)
        .and_then(|r| r.status.as_ref())
        .is_some_and(|before| before.abort && !status.abort);
    let new_release = retried || releases.get(&key).is_none_or(|r| r.pod_hash != pod_hash);
    let of_release: Vec<&&Arc<AnalysisRun>> = runs
        .iter()
        .filter(|run| {
            !pod_hash.is_empty()
                && run
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
                    == Some(&pod_hash)
        })
        .collect();
    if new_release {
        // It started when its first AnalysisRun or measurement did, if before now.
        let started = of_release
            .iter()
            .filter_map(|run| time_of(run.metadata.creation_timestamp.as_ref()))
            .chain(if retried { None } else { Some(now) })
            .min()
            .unwrap_or(now);
        let mut record = ReleaseRecord::new("dashboard");
        record.started_at = Some(started);
        let mut recorder = Recorder::new(record);
        recorder.report(&Update::Started {
            at: started,
            rollout,
        });
        releases.insert(
            key.clone(),
            Release {
                pod_hash: pod_hash.clone(),
                recorder,
                status: None,
                measured: HashSet::new(),
                completed_runs: HashSet::new(),
            },
        );
    }
    let Some(release) = releases.get_mut(&key) else {
        return new_release;
    };
    let mut changed = new_release;
    if release.status.as_ref() != Some(&status) {
        release.recorder.report(&Update::Status {
            at: now,
            rollout,
            previous: release.status.as_ref(),
        });
        release.status = Some(status);
        changed = true;
    }
    let mut measurements = Vec::new();
    let mut completed = Vec::new();
    for run in &of_release {
        let run_name = run.metadata.name.clone().unwrap_or_default();
        let Some(run_status) = run.status.as_ref() else {
            continue;
        };
        let secrets = redactions.get(&run.metadata.uid).cloned().flatten();
        for result in &run_status.metric_results {
            for (index, measurement) in result.measurements.iter().enumerate() {
                let id = (run_name.clone(), result.name.clone(), index);
                if !measurement.phase.is_completed() || release.measured.contains(&id) {
                    continue;
                }
                release.measured.insert(id);
                let mut shown = measurement.clone();
                match &secrets {
                    Some(secrets) => crate::analysis::run::redact_measurement(&mut shown, secrets),
                    None => {
                        shown.value = "(hidden: a Secret of this run cannot be read)".into();
                        shown.message = String::new();
                        shown.metadata.clear();
                    }
                }
                let at = time_of(measurement.finished_at.as_ref()).unwrap_or(now);
                measurements.push((at, Arc::clone(run), result.name.clone(), shown));
            }
        }
        if run_status.phase.is_completed() && release.completed_runs.insert(run_name) {
            let at = time_of(run_status.completed_at.as_ref()).unwrap_or(now);
            completed.push((at, Arc::clone(run)));
        }
    }
    measurements.sort_by_key(|(at, ..)| *at);
    for (at, run, metric, measurement) in &measurements {
        release.recorder.report(&Update::Measurement {
            at: *at,
            run,
            metric,
            measurement,
        });
        changed = true;
    }
    for (at, run) in &completed {
        if let Some(status) = run.status.as_ref() {
            release.recorder.report(&Update::AnalysisRunCompleted {
                at: *at,
                run,
                status,
            });
            changed = true;
        }
    }
    let outcome = evaluate(rollout, &RunOptions::default()).filter(|outcome| {
        matches!(
            outcome,
            Outcome::Promoted { .. }
                | Outcome::Aborted { .. }
                | Outcome::Degraded { .. }
                | Outcome::Invalid { .. }
        )
    });
    if let Some(outcome) = outcome
        && release.recorder.record.finished_at.is_none()
    {
        release.recorder.report(&Update::Finished {
            at: now,
            outcome: &outcome,
        });
        changed = true;
    }
    changed
}

/// A response with a body and the headers every answer carries.
fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

const TEXT: &str = "text/plain; charset=utf-8";

fn plain(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    let mut text = text.into();
    text.push('\n');
    answer(status, TEXT, text)
}

/// An HTML page whose only script is the one carrying `nonce`.
fn page(html: Result<String, String>, nonce: &str) -> Response<Body> {
    match html {
        Ok(html) => {
            let mut response = answer(StatusCode::OK, "text/html; charset=utf-8", html);
            let policy = format!(
                "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'"
            );
            if let Ok(value) = HeaderValue::from_str(&policy) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, value);
            }
            response
        }
        Err(error) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the page: {error}"),
        ),
    }
}

/// The state of a Rollout as the list and its page show it.
struct Shown {
    phase: String,
    message: String,
    step: String,
    weight: Option<i32>,
}

fn shown(rollout: &Rollout, record: Option<&ReleaseRecord>) -> Shown {
    let status = rollout.status_or_default();
    let (phase, message) = observed_phase(rollout.metadata.generation, &rollout.spec, &status);
    let steps = rollout.spec.steps().len();
    let step = match status.current_step_index {
        Some(index) if steps > 0 => format!("{}/{steps}", (index as usize + 1).min(steps)),
        _ => String::new(),
    };
    Shown {
        phase: phase.to_string(),
        message,
        step,
        weight: record
            .and_then(|r| r.traffic.last())
            .map(|t| t.canary_weight),
    }
}

impl Dashboard {
    fn live(&self, nonce: &str, rollout: Option<(&Rollout, &Shown)>) -> LiveView {
        let (phase, message, step, weight, actions, action_path) = match rollout {
            Some((rollout, shown)) => {
                let status = rollout.status_or_default();
                let paused = shown.phase == "Paused";
                let going = !status.abort && shown.phase != "Healthy";
                let action = |name: &str, label: &str, enabled: bool| LiveAction {
                    name: name.into(),
                    label: label.into(),
                    enabled,
                };
                (
                    shown.phase.clone(),
                    shown.message.clone(),
                    shown.step.clone(),
                    shown.weight,
                    vec![
                        action("promote", "Promote", paused && !status.abort),
                        action("abort", "Abort", going),
                        action("retry", "Retry", status.abort),
                    ],
                    format!(
                        "/api/rollouts/{}/{}/",
                        rollout.namespace_or_default(),
                        rollout.name()
                    ),
                )
            }
            None => Default::default(),
        };
        LiveView {
            phase,
            message,
            step,
            weight,
            actions,
            action_path,
            token: self.token.clone(),
            nonce: nonce.to_string(),
        }
    }

    #[cfg(test)]
    fn live_view_for_tests() -> LiveView {
        LiveView {
            phase: "Paused".into(),
            message: String::new(),
            step: "2/2".into(),
            weight: Some(50),
            actions: Vec::new(),
            action_path: "/api/rollouts/shop/web/".into(),
            token: "t".into(),
            nonce: "n".into(),
        }
    }

    fn list_page(&self) -> Response<Body> {
        let nonce = random_hex(16);
        let mut rollouts = self.caches.rollouts.list(self.scope.as_deref(), |_| true);
        rollouts.sort_by_key(|r| key(r));
        let releases = self.releases();
        let rows: Vec<RolloutRow> = rollouts
            .iter()
            .map(|rollout| {
                let shown = shown(
                    rollout,
                    releases.get(&key(rollout)).map(|r| &r.recorder.record),
                );
                RolloutRow {
                    namespace: rollout.namespace_or_default().to_string(),
                    name: rollout.name().to_string(),
                    phase: shown.phase,
                    message: shown.message,
                    step: shown.step,
                    weight: shown.weight,
                    path: format!(
                        "/rollouts/{}/{}",
                        rollout.namespace_or_default(),
                        rollout.name()
                    ),
                }
            })
            .collect();
        let scope = match &self.scope {
            Some(namespace) => format!("namespace {namespace}"),
            None => "all namespaces".into(),
        };
        page(
            dashboard_html(&scope, &rows, &self.live(&nonce, None)),
            &nonce,
        )
    }

    fn rollout_page(&self, namespace: &str, name: &str) -> Response<Body> {
        let Some(rollout) = self
            .in_scope(namespace)
            .then(|| self.caches.rollouts.get(namespace, name))
            .flatten()
        else {
            return plain(
                StatusCode::NOT_FOUND,
                format!("no rollout `{namespace}/{name}` here"),
            );
        };
        let nonce = random_hex(16);
        let mut record = self
            .releases()
            .get(&(namespace.to_string(), name.to_string()))
            .map(|r| r.recorder.record.clone())
            .unwrap_or_else(|| ReleaseRecord::new("dashboard"));
        let shown = shown(&rollout, Some(&record));
        // A release going on is charted up to now.
        if record.finished_at.is_none() {
            record.finished_at = Some(Timestamp::now());
        }
        page(
            to_live_html(&record, &self.live(&nonce, Some((&rollout, &shown)))),
            &nonce,
        )
    }

    fn in_scope(&self, namespace: &str) -> bool {
        self.scope.as_deref().is_none_or(|s| s == namespace)
    }

    /// A button: check that it came from a page of this dashboard, then run the operation as
    /// the `promote` / `abort` / `retry` commands do.
    async fn operate(
        &self,
        request: &Request<Incoming>,
        namespace: &str,
        name: &str,
        verb: &str,
    ) -> Response<Body> {
        let token = request
            .headers()
            .get(TOKEN_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if aws_lc_rs::constant_time::verify_slices_are_equal(token, self.token.as_bytes()).is_err()
        {
            return plain(
                StatusCode::FORBIDDEN,
                format!(
                    "refused: the operation needs the `{TOKEN_HEADER}` header of this dashboard's \
                     pages (use the buttons)"
                ),
            );
        }
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let host = request
                .headers()
                .get(header::HOST)
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            if origin.as_bytes() != [b"http://".as_slice(), host].concat().as_slice() {
                return plain(
                    StatusCode::FORBIDDEN,
                    "refused: the request comes from a page of another origin",
                );
            }
        }
        let operation = match verb {
            "promote" => Operation::Promote,
            "abort" => Operation::Abort,
            "retry" => Operation::Retry,
            _ => return plain(StatusCode::NOT_FOUND, format!("no operation `{verb}`")),
        };
        if !self.in_scope(namespace) {
            return plain(
                StatusCode::NOT_FOUND,
                format!("namespace `{namespace}` is not shown by this dashboard"),
            );
        }
        let done = crate::cli::operations::operate_on(
            &self.client,
            namespace,
            name,
            verb,
            false,
            |rollout, _| patches(rollout, &operation),
        )
        .await;
        match done {
            Ok(message) => {
                tracing::info!(%namespace, %name, verb, "operation from the dashboard");
                plain(StatusCode::OK, message)
            }
            Err(error) => plain(StatusCode::CONFLICT, format!("{error:#}")),
        }
    }

    /// Server-sent events: `change` each time a release changed, a comment now and then so
    /// that proxies keep the connection.
    fn events(&self) -> Response<Body> {
        let receiver = self.version.subscribe();
        let stream = futures::stream::unfold(
            (receiver, true),
            |(mut receiver, first)| async move {
                if first {
                    return Some((Bytes::from_static(b"retry: 2000\n\n"), (receiver, false)));
                }
                let chunk = tokio::select! {
                    changed = receiver.changed() => {
                        changed.ok()?;
                        let version = *receiver.borrow_and_update();
                        Bytes::from(format!("event: change\ndata: {version}\n\n"))
                    }
                    () = tokio::time::sleep(Duration::from_secs(20)) => Bytes::from_static(b": alive\n\n"),
                };
                Some((chunk, (receiver, false)))
            },
        )
        .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
        let mut response = answer(StatusCode::OK, "text/event-stream", Bytes::new());
        *response.body_mut() = BodyExt::boxed(StreamBody::new(stream));
        response
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Body> {
        if !self.hosts.is_empty() {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            if !self.hosts.iter().any(|h| h == host) {
                return plain(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "this dashboard answers to {} only, not to `{host}`",
                        self.hosts.join(", ")
                    ),
                );
            }
        }
        let path = request.uri().path().to_string();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (request.method(), segments.as_slice()) {
            (&Method::GET, [""]) => self.list_page(),
            (&Method::GET, ["rollouts", namespace, name]) => self.rollout_page(namespace, name),
            (&Method::GET, ["events"]) => self.events(),
            (&Method::GET, ["favicon.ico"]) => answer(StatusCode::NO_CONTENT, TEXT, Bytes::new()),
            (&Method::POST, ["api", "rollouts", namespace, name, verb]) => {
                self.operate(&request, namespace, name, verb).await
            }
            (_, ["api", "rollouts", _, _, _]) => plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "operations are POST requests (the page's buttons send them)",
            ),
            _ => plain(StatusCode::NOT_FOUND, "not found"),
        }
    }
}

/// Serve the dashboard on `listener` until the process ends.
pub async fn serve(listener: TcpListener, dashboard: Arc<Dashboard>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let dashboard = Arc::clone(&dashboard);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let dashboard = Arc::clone(&dashboard);
                async move { Ok::<_, Infallible>(dashboard.route(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout() -> Rollout {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "uid": "r-1", "generation": 2},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
                "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
            },
            "status": {"currentPodHash": "abc", "currentStepIndex": 1, "observedGeneration": "2"}
        }))
        .unwrap()
    }

    fn run(uid: &str, value: &str) -> Arc<AnalysisRun> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AnalysisRun",
                "metadata": {"name": format!("web-{uid}"), "namespace": "shop", "uid": uid,
                             "labels": {"rollouts-pod-template-hash": "abc"},
                             "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1",
                                                  "kind": "Rollout", "name": "web", "uid": "r-1"}]},
                "spec": {"metrics": [{"name": "rate", "provider": {"web": {"url": "http://x"}}}]},
                "status": {"phase": "Running", "metricResults": [{"name": "rate", "phase": "Running",
                    "measurements": [{"phase": "Successful", "value": value,
                                      "message": format!("got {value}"),
                                      "finishedAt": "2026-01-01T00:00:10Z"}]}]}
            }))
            .unwrap(),
        )
    }

    /// Measurement values reach the page redacted with the run's Secrets, or hidden when those
    /// cannot be read; each is reported once however often the watches fire.
    #[test]
    fn measurements_are_redacted_or_hidden_and_reported_once() {
        let rollout = rollout();
        let readable = run("a", "[0.9] token=s3cret");
        let unreadable = run("b", "hunter2");
        let redactions = HashMap::from([
            (Some("a".to_string()), Some(vec!["s3cret".to_string()])),
            (Some("b".to_string()), None),
        ]);
        let runs = [&readable, &unreadable];
        let mut releases = HashMap::new();
        let now = Timestamp::now();
        assert!(observe_rollout(
            &mut releases,
            &rollout,
            &runs,
            &redactions,
            now
        ));
        assert!(!observe_rollout(
            &mut releases,
            &rollout,
            &runs,
            &redactions,
            now
        ));
        let record = &releases[&("shop".to_string(), "web".to_string())]
            .recorder
            .record;
        assert_eq!(record.measurements.len(), 2);
        let html = to_live_html(record, &Dashboard::live_view_for_tests()).unwrap();
        let json = serde_json::to_string(record).unwrap();
        for text in [&html, &json] {
            assert!(
                !text.contains("s3cret") && !text.contains("hunter2"),
                "{text}"
            );
        }
        assert!(json.contains("[0.9] token="), "{json}");
        assert!(
            json.contains("(hidden: a Secret of this run cannot be read)"),
            "{json}"
        );
        // A new pod template is a new release.
        let mut next = rollout.clone();
        next.status.as_mut().unwrap().current_pod_hash = "def".into();
        assert!(observe_rollout(&mut releases, &next, &[], &redactions, now));
        let record = &releases[&("shop".to_string(), "web".to_string())]
            .recorder
            .record;
        assert!(record.measurements.is_empty());
    }
}
