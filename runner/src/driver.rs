//! The driver: observe, plan, act, record status, wait. One loop for every world: the in-memory
//! cluster (`simulate`), the real API server (`apply --wait`) and the controller's reconcile.
//!
//! Each pass also runs the rollout's AnalysisRuns (Argo's separate analysis controller): due
//! measurements are taken through the [`Metrics`] provider and folded into the run's status, so
//! a run is resumable by any process.
//!
//! The driver sees traits only; it holds no progress of its own. Everything it needs to resume
//! is in the cluster.

use jiff::{SignedDuration, Timestamp};

use crate::analysis::run::{self as analysis_run, RunPlan, TaskKind, TaskResult};
use crate::cluster::{Cluster, ClusterError, Wake};
use crate::crd::{AnalysisRun, Rollout, RolloutPhase, RolloutStatus};
use crate::engine::{self, conditions::types, phase::observed_phase};
use crate::metrics::{MeasureContext, Metrics, error_measurement};
use crate::observed::Observed;
use crate::plan::{Event, EventType, Plan};
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
    /// The pod-template hash being released; a different one means a newer release superseded
    /// it. `None`: whatever the rollout currently wants.
    pub target_hash: Option<String>,
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
}

/// Passes in a row that may change the cluster without time passing before the driver assumes
/// the engine is oscillating.
const MAX_PASSES_WITHOUT_TIME: usize = 200;

pub struct Driver<'a, C, M> {
    cluster: &'a C,
    metrics: &'a M,
    reporter: &'a mut dyn Reporter,
    spec_check: Option<&'a SpecCheck>,
}

impl<'a, C: Cluster, M: Metrics> Driver<'a, C, M> {
    pub fn new(cluster: &'a C, metrics: &'a M, reporter: &'a mut dyn Reporter) -> Self {
        Self {
            cluster,
            metrics,
            reporter,
            spec_check: None,
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
        let (analysis_changed, analysis_next) = self.reconcile_analysis_runs(&observed).await?;
        let observed = if analysis_changed {
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
        for action in &plan.actions {
            if let Err(error) = self.cluster.apply(&rollout, action).await {
                let events = [Event {
                    event_type: EventType::Warning,
                    reason: "ReconciliationError".into(),
                    message: format!("{}: {error}", action.describe()),
                }];
                self.cluster.record_events(&rollout, &events).await;
                self.reporter.report(&Update::Events {
                    at: now,
                    rollout: &rollout,
                    events: &events,
                });
                return Err(error.into());
            }
        }
        if !plan.actions.is_empty() {
            self.reporter.report(&Update::Actions {
                at: now,
                rollout: &rollout,
                actions: &plan.actions,
            });
        }
        let mut status_changed = false;
        if let Some(status) = &plan.status
            && rollout.status.as_ref() != Some(status)
        {
            self.cluster.write_status(&rollout, status).await?;
            status_changed = true;
        }
        if !plan.events.is_empty() {
            self.cluster.record_events(&rollout, &plan.events).await;
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
        let next_at = [plan.requeue_at, analysis_next].into_iter().flatten().min();
        Ok(Some(Pass {
            rollout: after,
            changed: !plan.actions.is_empty() || status_changed || analysis_changed,
            plan,
            next_at,
        }))
    }

    /// Take the measurements that are due for every unfinished run. Returns whether anything
    /// changed and when the next measurement is due.
    async fn reconcile_analysis_runs(
        &mut self,
        observed: &Observed,
    ) -> Result<(bool, Option<Timestamp>), DriverError> {
        let mut changed = false;
        let mut next: Option<Timestamp> = None;
        for run in &observed.analysis_runs {
            let now = self.cluster.now();
            let recorded = match analysis_run::plan(run, now) {
                RunPlan::Completed => continue,
                RunPlan::Invalid(message) => analysis_run::invalid(run, message, now),
                RunPlan::Tasks(tasks) => {
                    let (results, secrets) = match self.measure(run, tasks, now).await {
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
                    analysis_run::record(run, results, &secrets, now)
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
    async fn measure(
        &self,
        run: &AnalysisRun,
        tasks: Vec<analysis_run::MetricTask>,
        now: Timestamp,
    ) -> Result<(Vec<TaskResult>, Vec<String>), String> {
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
                let value = self
                    .cluster
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
        for task in tasks {
            let replaces_last = !matches!(task.kind, TaskKind::Run);
            let measurement = match analysis_run::resolve_metric_args(&task.metric, &values) {
                Ok(metric) => {
                    self.metrics
                        .measure(MeasureContext { run, now }, &metric, &task.kind)
                        .await
                }
                Err(message) => error_measurement(now, message),
            };
            results.push(TaskResult {
                metric: task.metric.name.clone(),
                replaces_last,
                measurement,
            });
        }
        Ok((results, secrets))
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
        self.reporter.report(&Update::Started {
            at: start,
            rollout: &initial,
        });
        let mut passes_without_time = 0;
        let mut last_now = start;
        // Once the outcome is known the driver keeps going until the rollout settles: with no
        // controller in the cluster, nobody else would finish an abort's rollback or scale the
        // old version down after its delay.
        let mut decided: Option<Outcome> = None;
        loop {
            let Some(pass) = self.reconcile(namespace, name).await? else {
                return Ok(self.finish(decided.unwrap_or(Outcome::Deleted)));
            };
            let now = self.cluster.now();
            if now != last_now {
                passes_without_time = 0;
                last_now = now;
            }
            if decided.is_none() {
                match evaluate(&pass.rollout, options) {
                    Some(outcome) if outcome.needs_settling() => decided = Some(outcome),
                    Some(outcome) => return Ok(self.finish(outcome)),
                    None => {}
                }
            }
            let timed_out = deadline.is_some_and(|d| now >= d);
            if let Some(outcome) = &decided {
                let settled = !pass.changed && pass.next_at.is_none();
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
            self.reporter.waiting(now, pass.next_at);
            if self.cluster.wait(pass.next_at, deadline).await == Wake::Idle {
                // Nothing more will ever happen on its own.
                return Ok(self.finish(decided.unwrap_or_else(|| Outcome::Idle {
                    phase: phase_line(&pass.rollout),
                })));
            }
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
    if let Some(target) = &options.target_hash
        && !status.current_pod_hash.is_empty()
        && status.current_pod_hash != *target
    {
        return Some(Outcome::Superseded {
            by: status.current_pod_hash.clone(),
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
