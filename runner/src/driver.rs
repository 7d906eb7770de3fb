//! The driver: observe, plan, act, record status, wait. One loop for every world: the in-memory
//! cluster (`simulate`), the real API server (`apply --wait`) and the controller's reconcile.
//!
//! Each pass also runs the rollout's AnalysisRuns and Experiments (Argo's separate analysis and
//! experiment controllers): due measurements are taken through the [`Metrics`] provider and
//! folded into the run's status, experiments bring their ReplicaSets up and down, so both are
//! resumable by any process.
//!
//! The driver sees traits only; it holds no progress of its own. Everything it needs to resume
//! is in the cluster.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::analysis::run::{self as analysis_run, RunPlan, TaskKind, TaskResult};
use crate::cluster::{Cluster, ClusterError, Owner, Wake};
use crate::crd::{AnalysisRun, Rollout, RolloutPhase, RolloutStatus};
use crate::engine::hash::pod_template_hash;
use crate::engine::{self, conditions::types, experiment_run, phase::observed_phase};
use crate::metrics::{MeasureContext, Metrics, error_measurement};
use crate::observed::Observed;
use crate::plan::{Action, Event, EventType, Plan};
use crate::report::{Outcome, Reporter, Update};

/// Why the driver could not go on.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("rollout `{namespace}/{name}` not found")]
    RolloutNotFound { namespace: String, name: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(
        "rollout `{0}` did not settle: the engine kept changing the cluster without time passing \
         (this is a bug in rollout-runner; please report it)"
    )]
    NoConvergence(String),
}

/// Checks a rollout against the cluster before the engine runs: `Some(message)` makes the
/// rollout Degraded with InvalidSpec, as Argo's validation does.
pub type SpecCheck = dyn Fn(&Rollout, &Observed) -> Option<String> + Send + Sync;

/// How [`Driver::run`] decides it is done.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Give up (outcome TimedOut) when this much time has passed; the rollout keeps going.
    pub timeout: Option<SignedDuration>,
    /// A pause waiting for promotion counts as success.
    pub success_on_pause: bool,
    /// The pod template being released; a different one in the Rollout means a newer release
    /// (or a `set image`) superseded it. `None`: whatever the rollout currently wants.
    pub target_template: Option<PodTemplateSpec>,
}

/// The result of one reconcile pass.
#[derive(Debug, Clone)]
pub struct Pass {
    /// The rollout after the pass (status as written).
    pub rollout: Rollout,
    pub plan: Plan,
    /// Whether the pass changed anything (actions, status, analysis).
    pub changed: bool,
    /// The earliest time something is due (pause end, measurement, deadline).
    pub next_at: Option<Timestamp>,
    /// Whether every ReplicaSet had as many pods, all available, as its spec asks (as observed
    /// at the start of the pass).
    pub replicas_settled: bool,
}

/// Measurements taken, the secret values to redact, and each metric's result metadata.
type MeasuredTasks = (
    Vec<TaskResult>,
    Vec<String>,
    Vec<(String, std::collections::BTreeMap<String, String>)>,
);

/// Passes in a row that may change the cluster without time passing before the driver assumes
/// the engine is oscillating.
const MAX_PASSES_WITHOUT_TIME: usize = 200;

/// Failed passes in a row, on transient errors (conflicts, an unreachable API server), before
/// the driver gives up. With the backoff below that is about five minutes.
const MAX_TRANSIENT_FAILURES: u32 = 14;

/// Wait before retrying after the `failures`-th transient error in a row: 250 ms doubling up
/// to 30 s.
fn retry_backoff(failures: u32) -> SignedDuration {
    let millis = 250_i64.saturating_mul(1 << failures.min(7));
    SignedDuration::from_millis(millis.min(30_000))
}

pub struct Driver<'a, C, M> {
    cluster: &'a C,
    metrics: &'a M,
    reporter: &'a mut dyn Reporter,
    spec_check: Option<&'a SpecCheck>,
    /// Whether [`Update::Started`] went out (a runner may follow first, then drive).
    started: bool,
}

impl<'a, C: Cluster, M: Metrics> Driver<'a, C, M> {
    pub fn new(cluster: &'a C, metrics: &'a M, reporter: &'a mut dyn Reporter) -> Self {
        Self {
            cluster,
            metrics,
            reporter,
            spec_check: None,
            started: false,
        }
    }

    /// Validate rollouts against what exists in the cluster before each pass.
    pub fn with_spec_check(mut self, check: &'a SpecCheck) -> Self {
        self.spec_check = Some(check);
        self
    }

    /// One pass: run due measurements, plan, act, write status. `None` when the rollout is gone.
    pub async fn reconcile(
        &mut self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Pass>, DriverError> {
        let Some(rollout) = self.cluster.get_rollout(namespace, name).await? else {
            return Ok(None);
        };
        let observed = self.cluster.observe(&rollout).await?;
        let (analysis_changed, analysis_next) = self
            .reconcile_analysis_runs(&observed.analysis_runs)
            .await?;
        let (experiments_changed, experiments_next) =
            self.reconcile_experiments(&rollout, &observed).await?;
        let observed = if analysis_changed || experiments_changed {
            self.cluster.observe(&rollout).await?
        } else {
            observed
        };
        let now = self.cluster.now();
        let invalid = self.spec_check.and_then(|check| check(&rollout, &observed));
        let plan = engine::reconcile(&engine::Input {
            rollout: &rollout,
            observed: &observed,
            now,
            invalid_spec: invalid.as_deref(),
        });
        let status = plan
            .status
            .as_ref()
            .filter(|status| rollout.status.as_ref() != Some(*status));
        let status_changed = status.is_some();
        match status {
            // Independent writes go out together: one round trip to the API server, not two.
            Some(status) if plan.actions.iter().all(status_is_independent_of) => {
                let cluster = self.cluster;
                let (applied, written) = futures::join!(
                    self.apply_all(Owner::Rollout(&rollout), &rollout, &plan.actions, now),
                    cluster.write_status(&rollout, status)
                );
                applied?;
                written?;
            }
            _ => {
                self.apply_all(Owner::Rollout(&rollout), &rollout, &plan.actions, now)
                    .await?;
                if let Some(status) = status {
                    self.cluster.write_status(&rollout, status).await?;
                }
            }
        }
        if !plan.events.is_empty() {
            self.cluster
                .record_events(Owner::Rollout(&rollout), &plan.events)
                .await;
            self.reporter.report(&Update::Events {
                at: now,
                rollout: &rollout,
                events: &plan.events,
            });
        }
        let after = self
            .cluster
            .get_rollout(namespace, name)
            .await?
            .ok_or_else(|| DriverError::RolloutNotFound {
                namespace: namespace.into(),
                name: name.into(),
            })?;
        if status_changed {
            self.reporter.report(&Update::Status {
                at: now,
                rollout: &after,
                previous: rollout.status.as_ref(),
            });
        }
        let next_at = [plan.requeue_at, analysis_next, experiments_next]
            .into_iter()
            .flatten()
            .min();
        let replicas_settled = observed
            .replica_sets
            .iter()
            .all(|rs| rs.replicas == rs.spec_replicas && rs.available_replicas == rs.spec_replicas);
        Ok(Some(Pass {
            rollout: after,
            replicas_settled,
            changed: !plan.actions.is_empty()
                || status_changed
                || analysis_changed
                || experiments_changed,
            plan,
            next_at,
        }))
    }

    /// Whether the rollout is settled: a pass would change nothing (no action, status, event,
    /// measurement or experiment work) and nothing is due. Only reads.
    pub async fn is_settled(&mut self, namespace: &str, name: &str) -> Result<bool, DriverError> {
        let Some(rollout) = self.cluster.get_rollout(namespace, name).await? else {
            return Ok(false);
        };
        let observed = self.cluster.observe(&rollout).await?;
        let now = self.cluster.now();
        if observed
            .analysis_runs
            .iter()
            .any(|run| !matches!(analysis_run::plan(run, now), RunPlan::Completed))
        {
            return Ok(false);
        }
        for experiment in &observed.experiments {
            let owned = self.cluster.observe_experiment(experiment).await?;
            if owned
                .analysis_runs
                .iter()
                .any(|run| !matches!(analysis_run::plan(run, now), RunPlan::Completed))
            {
                return Ok(false);
            }
            let plan = experiment_run::reconcile(experiment, &owned, now);
            if !plan.actions.is_empty()
                || !plan.events.is_empty()
                || plan.requeue_at.is_some()
                || experiment.status.as_ref() != Some(&plan.status)
            {
                return Ok(false);
            }
        }
        let invalid = self.spec_check.and_then(|check| check(&rollout, &observed));
        let plan = engine::reconcile(&engine::Input {
            rollout: &rollout,
            observed: &observed,
            now,
            invalid_spec: invalid.as_deref(),
        });
        Ok(plan.actions.is_empty()
            && plan.events.is_empty()
            && plan.requeue_at.is_none()
            && plan
                .status
                .as_ref()
                .is_none_or(|status| rollout.status.as_ref() == Some(status)))
    }

    /// Perform a plan's actions in order, reporting them; the first failure is recorded as a
    /// warning event and ends the pass (the next pass re-plans from what exists).
    async fn apply_all(
        &mut self,
        owner: Owner<'_>,
        rollout: &Rollout,
        actions: &[Action],
        now: Timestamp,
    ) -> Result<(), DriverError> {
        for action in actions {
            // A driver that lost its Lease stops here, before it announces the action.
            self.cluster.may_write().await?;
            tracing::debug!(
                owner = %format!("{}/{}", owner.kind(), owner.name()),
                action = %action.describe(),
                "performing"
            );
            let applied = self.cluster.apply(owner, action).await;
            if applied.is_ok() {
                // Said once the API server has answered: a process killed after this line
                // was killed after the action, not during it.
                tracing::debug!(
                    owner = %format!("{}/{}", owner.kind(), owner.name()),
                    action = %action.describe(),
                    "performed"
                );
            }
            if let Err(error) = applied {
                let events = [Event {
                    event_type: EventType::Warning,
                    reason: "ReconciliationError".into(),
                    message: format!("{}: {error}", action.describe()),
                }];
                self.cluster.record_events(owner, &events).await;
                self.reporter.report(&Update::Events {
                    at: now,
                    rollout,
                    events: &events,
                });
                return Err(error.into());
            }
        }
        if !actions.is_empty() {
            self.reporter.report(&Update::Actions {
                at: now,
                rollout,
                actions,
            });
        }
        Ok(())
    }

    /// Run the rollout's Experiments (Argo's experiment controller): their AnalysisRuns, then
    /// their ReplicaSets, Services and status. Returns whether anything changed and when an
    /// experiment wants to be looked at again.
    async fn reconcile_experiments(
        &mut self,
        rollout: &Rollout,
        observed: &Observed,
    ) -> Result<(bool, Option<Timestamp>), DriverError> {
        let mut changed = false;
        let mut next: Option<Timestamp> = None;
        for experiment in &observed.experiments {
            let owned = self.cluster.observe_experiment(experiment).await?;
            let (runs_changed, runs_next) =
                self.reconcile_analysis_runs(&owned.analysis_runs).await?;
            let owned = if runs_changed {
                self.cluster.observe_experiment(experiment).await?
            } else {
                owned
            };
            let now = self.cluster.now();
            let plan = experiment_run::reconcile(experiment, &owned, now);
            let owner = Owner::Experiment(experiment);
            self.apply_all(owner, rollout, &plan.actions, now).await?;
            if experiment.status.as_ref() != Some(&plan.status) {
                self.cluster
                    .write_experiment_status(experiment, &plan.status)
                    .await?;
                changed = true;
            }
            if !plan.events.is_empty() {
                self.cluster.record_events(owner, &plan.events).await;
                let name = experiment.metadata.name.as_deref().unwrap_or("");
                let events: Vec<Event> = plan
                    .events
                    .iter()
                    .map(|e| Event {
                        message: format!("Experiment {name}: {}", e.message),
                        ..e.clone()
                    })
                    .collect();
                self.reporter.report(&Update::Events {
                    at: now,
                    rollout,
                    events: &events,
                });
            }
            changed |= runs_changed || !plan.actions.is_empty();
            next = [next, runs_next, plan.requeue_at]
                .into_iter()
                .flatten()
                .min();
        }
        Ok((changed, next))
    }

    /// Take the measurements that are due for every unfinished run. Returns whether anything
    /// changed and when the next measurement is due.
    async fn reconcile_analysis_runs(
        &mut self,
        runs: &[AnalysisRun],
    ) -> Result<(bool, Option<Timestamp>), DriverError> {
        let mut changed = false;
        let mut next: Option<Timestamp> = None;
        for run in runs {
            let now = self.cluster.now();
            let recorded = match analysis_run::plan(run, now) {
                RunPlan::Completed => continue,
                RunPlan::Invalid(message) => analysis_run::invalid(run, message, now),
                RunPlan::Tasks(tasks) => {
                    let (results, secrets, metadata) =
                        match Self::measure(self.cluster, self.metrics, run, tasks, now).await {
                            Ok(done) => done,
                            Err(message) => {
                                let recorded = analysis_run::invalid(run, message, now);
                                self.cluster
                                    .write_analysis_run_status(run, &recorded.status)
                                    .await?;
                                changed = true;
                                continue;
                            }
                        };
                    // Redacted before anything shows them (reporters, then the status).
                    let mut results = results;
                    for result in &mut results {
                        analysis_run::redact_measurement(&mut result.measurement, &secrets);
                    }
                    for result in &results {
                        if result.measurement.phase.is_completed() {
                            self.reporter.report(&Update::Measurement {
                                at: now,
                                run,
                                metric: &result.metric,
                                measurement: &result.measurement,
                            });
                        }
                    }
                    let mut recorded = analysis_run::record(run, results, &secrets, now);
                    // Argo's `GetMetadata` (e.g. `ResolvedPrometheusQuery`), set once per metric.
                    for (name, data) in metadata {
                        if let Some(result) = recorded
                            .status
                            .metric_results
                            .iter_mut()
                            .find(|r| r.name == name)
                            && result.metadata.is_empty()
                        {
                            result.metadata = data;
                        }
                    }
                    recorded
                }
            };
            if run.status.as_ref() != Some(&recorded.status) {
                self.cluster
                    .write_analysis_run_status(run, &recorded.status)
                    .await?;
                changed = true;
                if recorded.status.phase.is_completed() {
                    self.reporter.report(&Update::AnalysisRunCompleted {
                        at: now,
                        run,
                        status: &recorded.status,
                    });
                }
            }
            if let Some(at) = recorded.next_at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok((changed, next))
    }

    /// Resolve arguments (reading secrets) and take each due measurement.
    ///
    /// Takes the cluster and provider rather than `&self`: a `&Driver` held across awaits
    /// would make the pass `Send` only for `Sync` reporters, and the controller's reconcile
    /// must be `Send`.
    async fn measure(
        cluster: &C,
        metrics: &M,
        run: &AnalysisRun,
        tasks: Vec<analysis_run::MetricTask>,
        now: Timestamp,
    ) -> Result<MeasuredTasks, String> {
        let namespace = run
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let mut secret_values = std::collections::BTreeMap::new();
        for arg in &run.spec.args {
            if let Some(reference) = arg
                .value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
            {
                let value = cluster
                    .read_secret(&namespace, &reference.name, &reference.key)
                    .await
                    .map_err(|e| format!("Unable to resolve metric arguments: {e}"))?;
                secret_values.insert((reference.name.clone(), reference.key.clone()), value);
            }
        }
        let (values, secrets) = analysis_run::resolve_args(&run.spec.args, |name, key| {
            secret_values
                .get(&(name.to_string(), key.to_string()))
                .cloned()
                .ok_or_else(|| format!("key '{key}' does not exist in secret '{name}'"))
        })?;
        let mut results = Vec::with_capacity(tasks.len());
        let mut metadata = Vec::new();
        for task in tasks {
            let replaces_last = !matches!(task.kind, TaskKind::Run);
            let measurement = match analysis_run::resolve_metric_args(&task.metric, &values) {
                Ok(metric) => {
                    let data: std::collections::BTreeMap<String, String> = metrics
                        .result_metadata(&metric)
                        .into_iter()
                        .map(|(k, v)| (k, analysis_run::redact(&v, &secrets)))
                        .collect();
                    metadata.push((task.metric.name.clone(), data));
                    let context = MeasureContext {
                        run,
                        now,
                        secrets: &secrets,
                    };
                    metrics.measure(context, &metric, &task.kind).await
                }
                Err(message) => error_measurement(now, message),
            };
            results.push(TaskResult {
                metric: task.metric.name.clone(),
                replaces_last,
                measurement,
            });
        }
        Ok((results, secrets, metadata))
    }

    /// Drive the rollout until it is promoted, aborted, degraded, paused (with
    /// `success_on_pause`), superseded, or the timeout passes.
    pub async fn run(
        &mut self,
        namespace: &str,
        name: &str,
        options: &RunOptions,
    ) -> Result<Outcome, DriverError> {
        let start = self.cluster.now();
        let deadline = options
            .timeout
            .and_then(|timeout| start.checked_add(timeout).ok());
        let Some(initial) = self.cluster.get_rollout(namespace, name).await? else {
            return Err(DriverError::RolloutNotFound {
                namespace: namespace.into(),
                name: name.into(),
            });
        };
        self.announce(start, &initial);
        let mut passes_without_time = 0;
        let mut last_now = start;
        // Once the outcome is known the driver keeps going until the rollout settles: with no
        // controller in the cluster, nobody else would finish an abort's rollback or scale the
        // old version down after its delay.
        let mut decided: Option<Outcome> = None;
        // An abort or a promotion also waits for the pods it scaled (the stable set back to full
        // strength before the canary goes), but no longer than a progress deadline.
        let mut settle_by: Option<Timestamp> = None;
        let mut failures = 0;
        loop {
            let pass = match self.reconcile(namespace, name).await {
                Ok(Some(pass)) => pass,
                Ok(None) => return Ok(self.finish(decided.unwrap_or(Outcome::Deleted))),
                Err(DriverError::Cluster(error))
                    if error.is_transient() && failures < MAX_TRANSIENT_FAILURES =>
                {
                    // Re-observe and re-plan: every action is idempotent with respect to the
                    // state it was planned from.
                    failures += 1;
                    tracing::debug!(%error, failures, "transient error; retrying");
                    let at = self.cluster.now() + retry_backoff(failures);
                    self.cluster.wait(Some(at), deadline).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            failures = 0;
            let now = self.cluster.now();
            if now != last_now {
                passes_without_time = 0;
                last_now = now;
            }
            if decided.is_none() {
                match evaluate(&pass.rollout, options) {
                    Some(outcome) if outcome.needs_settling() => {
                        if matches!(outcome, Outcome::Aborted { .. } | Outcome::Promoted { .. }) {
                            let limit = pass.rollout.spec.progress_deadline_seconds_or_default();
                            settle_by = now
                                .checked_add(SignedDuration::from_secs(i64::from(limit)))
                                .ok();
                        }
                        decided = Some(outcome);
                    }
                    Some(outcome) => return Ok(self.finish(outcome)),
                    None => {}
                }
            }
            let timed_out = deadline.is_some_and(|d| now >= d);
            if let Some(outcome) = &decided {
                let pods_settled = pass.replicas_settled || settle_by.is_none_or(|by| now >= by);
                let settled = !pass.changed && pass.next_at.is_none() && pods_settled;
                if settled || timed_out {
                    return Ok(self.finish(outcome.clone()));
                }
            } else if timed_out {
                return Ok(self.finish(Outcome::TimedOut {
                    phase: phase_line(&pass.rollout),
                }));
            }
            if pass.changed {
                passes_without_time += 1;
                if passes_without_time > MAX_PASSES_WITHOUT_TIME {
                    return Err(DriverError::NoConvergence(name.to_string()));
                }
                continue;
            }
            let wake_at = match (pass.next_at, decided.as_ref().and(settle_by)) {
                (Some(at), _) | (None, Some(at)) => Some(at),
                (None, None) => None,
            };
            self.reporter.waiting(now, pass.next_at);
            if self.cluster.wait(wake_at, deadline).await == Wake::Idle {
                // Nothing more will ever happen on its own.
                return Ok(self.finish(decided.unwrap_or_else(|| Outcome::Idle {
                    phase: phase_line(&pass.rollout),
                })));
            }
        }
    }

    /// Follow a rollout that someone else drives (another runner, a controller): report its
    /// progress until it reaches an outcome or the timeout passes. Writes nothing.
    pub async fn follow(
        &mut self,
        namespace: &str,
        name: &str,
        options: &RunOptions,
    ) -> Result<Outcome, DriverError> {
        let start = self.cluster.now();
        let deadline = options
            .timeout
            .and_then(|timeout| start.checked_add(timeout).ok());
        let mut last: Option<RolloutStatus> = None;
        let mut first = true;
        loop {
            let Some(rollout) = self.cluster.get_rollout(namespace, name).await? else {
                if first {
                    return Err(DriverError::RolloutNotFound {
                        namespace: namespace.into(),
                        name: name.into(),
                    });
                }
                return Ok(self.finish(Outcome::Deleted));
            };
            let now = self.cluster.now();
            if first {
                self.announce(now, &rollout);
                first = false;
            }
            if rollout.status != last {
                self.reporter.report(&Update::Status {
                    at: now,
                    rollout: &rollout,
                    previous: last.as_ref(),
                });
                last.clone_from(&rollout.status);
            }
            if let Some(outcome) = evaluate(&rollout, options) {
                return Ok(self.finish(outcome));
            }
            if deadline.is_some_and(|d| now >= d) {
                return Ok(self.finish(Outcome::TimedOut {
                    phase: phase_line(&rollout),
                }));
            }
            if self.cluster.wait(None, deadline).await == Wake::Idle {
                return Ok(self.finish(Outcome::Idle {
                    phase: phase_line(&rollout),
                }));
            }
        }
    }

    fn announce(&mut self, at: Timestamp, rollout: &Rollout) {
        if !self.started {
            self.started = true;
            self.reporter.report(&Update::Started { at, rollout });
        }
    }

    fn finish(&mut self, outcome: Outcome) -> Outcome {
        self.reporter.report(&Update::Finished {
            at: self.cluster.now(),
            outcome: &outcome,
        });
        outcome
    }
}

/// Whether the status planned beside `action` is true whatever the action's outcome, so both
/// may be written at once. The engine plans a scale from the ReplicaSets as observed (as Argo
/// does: its ReplicaSets in memory keep their old size), so a status never reports a scale or
/// a scale-down deadline as done; a step is complete only once a later pass sees the new size.
/// The status does report what the other actions do (a created ReplicaSet or run, a Service
/// selector, traffic weights): those are written first.
fn status_is_independent_of(action: &Action) -> bool {
    matches!(
        action,
        Action::ScaleReplicaSet { .. } | Action::SetScaleDownDeadline { .. }
    )
}

/// `Phase - message`, as `kubectl argo rollouts status` prints it.
pub fn phase_line(rollout: &Rollout) -> String {
    let status = rollout.status_or_default();
    let (phase, message) = observed_phase(rollout.metadata.generation, &rollout.spec, &status);
    if message.is_empty() {
        phase.to_string()
    } else {
        format!("{phase} - {message}")
    }
}

/// Whether a rollout has reached an end for a runner waiting on it.
pub fn evaluate(rollout: &Rollout, options: &RunOptions) -> Option<Outcome> {
    let status: RolloutStatus = rollout.status.clone()?;
    let (phase, message) = observed_phase(rollout.metadata.generation, &rollout.spec, &status);
    if let Some(target) = &options.target_template
        && rollout.spec.template.as_ref() != Some(target)
    {
        let template = rollout.spec.template.clone().unwrap_or_default();
        return Some(Outcome::Superseded {
            by: pod_template_hash(&template, status.collision_count),
        });
    }
    match phase {
        RolloutPhase::Healthy => Some(Outcome::Promoted {
            revision: rollout
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::crd::REVISION_ANNOTATION))
                .cloned()
                .unwrap_or_default(),
        }),
        RolloutPhase::Degraded => {
            if status.condition(types::INVALID_SPEC).is_some() {
                Some(Outcome::Invalid { message })
            } else if status.abort {
                Some(Outcome::Aborted { message })
            } else {
                Some(Outcome::Degraded { message })
            }
        }
        RolloutPhase::Paused if options.success_on_pause => Some(Outcome::Paused { message }),
        _ => None,
    }
}
