//! The metrics of a real cluster: the Job provider, which needs the cluster, and every other
//! provider through [`Providers`].

use std::collections::BTreeMap;

use kube::Client;

use rollout_runner_api::crd::{Measurement, Metric};
use rollout_runner_core::analysis::run::TaskKind;

use super::job::JobProvider;
use super::{MeasureContext, Metrics, Providers};

/// [`Providers`] plus Jobs.
#[derive(Clone)]
pub struct ClusterMetrics {
    providers: Providers,
    jobs: JobProvider,
}

impl ClusterMetrics {
    pub fn new(client: Client, providers: Providers) -> Self {
        Self {
            providers,
            jobs: JobProvider::new(client),
        }
    }
}

impl Metrics for ClusterMetrics {
    async fn measure(
        &self,
        context: MeasureContext<'_>,
        metric: &Metric,
        task: &TaskKind,
    ) -> Measurement {
        let Some(job) = &metric.provider.job else {
            return self.providers.measure(context, metric, task).await;
        };
        match task {
            TaskKind::Run => self.jobs.run(context.run, metric, job, context.now).await,
            TaskKind::Resume(previous) => self.jobs.resume(previous, context.now).await,
            TaskKind::Terminate(previous) => self.jobs.terminate(previous, context.now).await,
        }
    }

    fn result_metadata(&self, metric: &Metric) -> BTreeMap<String, String> {
        self.providers.result_metadata(metric)
    }
}
