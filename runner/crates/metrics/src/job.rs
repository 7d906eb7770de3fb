//! The Job metric provider: a Kubernetes Job per measurement; it succeeds or fails with the Job.
//!
//! As Argo's: the Job is named `<run uid>.<metric>.<n>`, labelled with the run's uid, annotated
//! with the run and metric, and owned by the AnalysisRun (same namespace). A measurement is
//! `Running` until the Job completes (Successful) or fails (Failed); a pod that cannot pull its
//! image makes it Inconclusive. Terminating a run deletes its running Jobs. Only the last
//! `measurementRetention` (default 10) Jobs of a metric are kept.
//!
//! Unlike Argo, which watches Jobs, the measurement is looked at again after
//! `sqrt(2 * elapsed)` seconds (at least one): the runner is watch-driven on the objects it
//! owns, and a Job is the provider's, not the engine's.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};

use rollout_runner_api::crd::{
    API_VERSION, AnalysisPhase, AnalysisRun, JobMetric, Measurement, Metric, Time,
};
use rollout_runner_core::engine::conditions::meta_time;

use super::error_measurement;

/// Label on every Job: the uid of its AnalysisRun.
pub const RUN_UID_LABEL: &str = "analysisrun.argoproj.io/uid";
const RUN_NAME_ANNOTATION: &str = "analysisrun.argoproj.io/name";
const RUN_NAMESPACE_ANNOTATION: &str = "analysisrun.argoproj.io/namespace";
const METRIC_NAME_ANNOTATION: &str = "analysisrun.argoproj.io/metric-name";
/// Measurement metadata naming the Job.
pub const JOB_NAME_KEY: &str = "job-name";
pub const JOB_NAMESPACE_KEY: &str = "job-namespace";
/// Argo's override of the namespace Jobs run in.
pub const JOB_NAMESPACE_ENV: &str = "ARGO_ROLLOUTS_ANALYSIS_JOB_NAMESPACE";
/// Pod waiting reasons that mean the Job will never run.
const IMAGE_FAILURES: [&str; 3] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

/// Runs Job metrics on one cluster.
#[derive(Clone)]
pub struct JobProvider {
    client: Client,
    /// Where Jobs run when not in the run's namespace.
    namespace_override: Option<String>,
}

/// `<uid>.<metric>.<n>`, with the metric name cut so the whole fits in 63 characters.
pub fn job_name(run_uid: &str, metric: &str, n: i32) -> String {
    let suffix = format!(".{n}");
    let room = 63usize.saturating_sub(run_uid.len() + 1 + suffix.len());
    let metric: String = metric.chars().take(room).collect();
    format!("{run_uid}.{metric}{suffix}")
}

/// Seconds until a running Job is looked at again: `sqrt(2 * elapsed)`, at least 1.
fn recheck_after(elapsed: SignedDuration) -> SignedDuration {
    let seconds = (2.0 * elapsed.as_secs_f64().max(0.0)).sqrt().max(1.0);
    SignedDuration::from_secs_f64(seconds)
}

fn running(
    now: Timestamp,
    started: Option<Time>,
    metadata: BTreeMap<String, String>,
) -> Measurement {
    let started_at = started.unwrap_or_else(|| meta_time(now));
    let elapsed = now.duration_since(started_at.0);
    Measurement {
        phase: AnalysisPhase::Running,
        started_at: Some(started_at),
        metadata,
        resume_at: Some(Time(now + recheck_after(elapsed))),
        ..Default::default()
    }
}

fn finished(
    previous: &Measurement,
    now: Timestamp,
    phase: AnalysisPhase,
    message: String,
) -> Measurement {
    Measurement {
        phase,
        message,
        finished_at: Some(meta_time(now)),
        resume_at: None,
        ..previous.clone()
    }
}

impl JobProvider {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            namespace_override: std::env::var(JOB_NAMESPACE_ENV)
                .ok()
                .filter(|ns| !ns.is_empty()),
        }
    }

    fn run_namespace(run: &AnalysisRun) -> String {
        run.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into())
    }

    /// Start a measurement: create its Job.
    pub async fn run(
        &self,
        run: &AnalysisRun,
        metric: &Metric,
        config: &JobMetric,
        now: Timestamp,
    ) -> Measurement {
        let run_namespace = Self::run_namespace(run);
        let namespace = self
            .namespace_override
            .clone()
            .unwrap_or_else(|| run_namespace.clone());
        let uid = run.metadata.uid.clone().unwrap_or_default();
        let run_name = run.metadata.name.clone().unwrap_or_default();
        let result = run
            .status
            .as_ref()
            .and_then(|s| s.metric_results.iter().find(|r| r.name == metric.name));
        let n = result.map_or(0, |r| r.count + r.error) + 1;
        let name = job_name(&uid, &metric.name, n);
        let mut metadata: ObjectMeta = config.metadata.clone();
        metadata.name = Some(name.clone());
        metadata.namespace = Some(namespace.clone());
        metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(RUN_UID_LABEL.into(), uid.clone());
        metadata
            .annotations
            .get_or_insert_with(Default::default)
            .extend([
                (RUN_NAME_ANNOTATION.to_string(), run_name.clone()),
                (RUN_NAMESPACE_ANNOTATION.to_string(), run_namespace.clone()),
                (METRIC_NAME_ANNOTATION.to_string(), metric.name.clone()),
            ]);
        // Owner references cannot cross namespaces.
        if namespace == run_namespace {
            metadata.owner_references = Some(vec![OwnerReference {
                api_version: API_VERSION.into(),
                kind: "AnalysisRun".into(),
                name: run_name,
                uid: uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]);
        }
        let job = Job {
            metadata,
            spec: Some(config.spec.clone()),
            status: None,
        };
        let api: Api<Job> = Api::namespaced(self.client.clone(), &namespace);
        let params = PostParams {
            field_manager: Some(rollout_runner_api::FIELD_MANAGER.into()),
            ..Default::default()
        };
        match api.create(&params, &job).await {
            Ok(_) => {}
            // Created by a runner that stopped before recording the measurement.
            Err(kube::Error::Api(status)) if status.is_already_exists() => {}
            Err(error) => {
                return error_measurement(now, format!("cannot create Job `{name}`: {error}"));
            }
        }
        self.collect_garbage(&api, &uid, metric, run).await;
        running(
            now,
            None,
            BTreeMap::from([
                (JOB_NAME_KEY.to_string(), name),
                (JOB_NAMESPACE_KEY.to_string(), namespace),
            ]),
        )
    }

    /// Look at a running measurement's Job again.
    pub async fn resume(&self, previous: &Measurement, now: Timestamp) -> Measurement {
        let (Some(name), Some(namespace)) = (
            previous.metadata.get(JOB_NAME_KEY),
            previous.metadata.get(JOB_NAMESPACE_KEY),
        ) else {
            return finished(
                previous,
                now,
                AnalysisPhase::Error,
                "the measurement does not name its Job".into(),
            );
        };
        let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let job = match api.get_opt(name).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                return finished(
                    previous,
                    now,
                    AnalysisPhase::Error,
                    format!("Job `{name}` not found"),
                );
            }
            // Try again at the next look.
            Err(error) => {
                tracing::debug!(%error, job = %name, "cannot read the Job");
                return running(now, previous.started_at.clone(), previous.metadata.clone());
            }
        };
        let conditions = job
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        for condition in conditions.iter().filter(|c| c.status == "True") {
            match condition.type_.as_str() {
                "Complete" => {
                    return finished(previous, now, AnalysisPhase::Successful, String::new());
                }
                "Failed" => {
                    let message = condition.message.clone().unwrap_or_default();
                    return finished(previous, now, AnalysisPhase::Failed, message);
                }
                _ => {}
            }
        }
        if let Some(reason) = self.image_failure(namespace, name).await {
            return finished(
                previous,
                now,
                AnalysisPhase::Inconclusive,
                format!("Job `{name}` cannot start its pod: {reason}"),
            );
        }
        running(now, previous.started_at.clone(), previous.metadata.clone())
    }

    /// Stop a running measurement: delete its Job (and its pods).
    pub async fn terminate(&self, previous: &Measurement, now: Timestamp) -> Measurement {
        if let (Some(name), Some(namespace)) = (
            previous.metadata.get(JOB_NAME_KEY),
            previous.metadata.get(JOB_NAMESPACE_KEY),
        ) {
            let api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..Default::default()
            };
            if let Err(error) = api.delete(name, &params).await {
                tracing::debug!(%error, job = %name, "cannot delete the Job");
            }
        }
        finished(
            previous,
            now,
            AnalysisPhase::Inconclusive,
            "Metric Terminated".into(),
        )
    }

    /// The waiting reason of a pod of the Job that cannot pull its image, if any.
    async fn image_failure(&self, namespace: &str, job: &str) -> Option<String> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().labels(&format!("job-name={job}"));
        let list = pods.list(&params).await.ok()?;
        list.items.iter().find_map(|pod| {
            pod.status
                .as_ref()?
                .container_statuses
                .iter()
                .flatten()
                .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                .find(|reason| IMAGE_FAILURES.contains(&reason.as_str()))
        })
    }

    /// Delete the metric's Jobs beyond the retention limit, oldest first.
    async fn collect_garbage(&self, api: &Api<Job>, uid: &str, metric: &Metric, run: &AnalysisRun) {
        let keep = rollout_runner_core::analysis::run::retention_limit(run, &metric.name);
        let params = ListParams::default().labels(&format!("{RUN_UID_LABEL}={uid}"));
        let Ok(list) = api.list(&params).await else {
            return;
        };
        let mut jobs: Vec<&Job> = list
            .items
            .iter()
            .filter(|job| {
                job.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(METRIC_NAME_ANNOTATION))
                    == Some(&metric.name)
            })
            .collect();
        if jobs.len() <= keep {
            return;
        }
        jobs.sort_by_key(|job| job.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let background = DeleteParams::background();
        for job in &jobs[..jobs.len() - keep] {
            if let Some(name) = &job.metadata.name
                && let Err(error) = api.delete(name, &background).await
            {
                tracing::debug!(%error, job = %name, "cannot delete an old Job");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_fit_in_63_characters() {
        let uid = "6f1d2b1c-0e8a-4b6e-9b7a-2f0b7f3c9d11";
        assert_eq!(job_name(uid, "smoke", 1), format!("{uid}.smoke.1"));
        let long = job_name(uid, &"x".repeat(80), 12);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with(".12"));
    }

    #[test]
    fn a_running_job_is_looked_at_again_sooner_early_on() {
        assert_eq!(recheck_after(SignedDuration::ZERO).as_secs(), 1);
        assert_eq!(recheck_after(SignedDuration::from_secs(50)).as_secs(), 10);
        assert_eq!(recheck_after(SignedDuration::from_secs(200)).as_secs(), 20);
    }
}
