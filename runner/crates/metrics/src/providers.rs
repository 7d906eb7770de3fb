//! The factory: [`Providers`] takes a measurement with whichever provider the metric names
//! (Prometheus, web, Datadog, New Relic, Graphite, InfluxDB, Kayenta, CloudWatch with the
//! `provider-cloudwatch` feature), and answers an Error measurement with a clear message for
//! the ones rollout-runner cannot run (Job until the cluster driver has it, plugins, Wavefront,
//! SkyWalking).
//!
//! Every measurement leaves here scrubbed: header values that look like credentials, basic-auth
//! and OAuth2 secrets, URL passwords, provider credentials and the run's secret arguments are
//! replaced by `*****` in the message, the value and the metadata.

use std::collections::BTreeMap;

use rollout_runner_api::crd::{
    AnalysisPhase, Authentication, Measurement, Metric, WebMetricHeader,
};
use rollout_runner_core::analysis::run::TaskKind;
use rollout_runner_core::engine::conditions::meta_time;

use super::common::{Clock, Failure, conditions_metadata, failed, scrub};
use super::settings::ProviderSettings;
use super::{MeasureContext, Metrics};

/// The metric providers, configured once.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    settings: ProviderSettings,
}

impl Providers {
    pub fn new(settings: ProviderSettings) -> Self {
        Self { settings }
    }

    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    async fn run(
        &self,
        clock: &Clock,
        metric: &Metric,
        namespace: &str,
        credentials: &mut Vec<String>,
    ) -> Result<Measurement, Failure> {
        let provider = &metric.provider;
        match provider.kinds().as_slice() {
            [] => return Err(Failure::new("no provider specified")),
            [_] => {}
            _ => return Err(Failure::new("multiple providers specified")),
        }
        if let Some(config) = &provider.prometheus {
            return super::prometheus::measure(
                clock,
                metric,
                config,
                self.settings.prometheus_address.as_deref(),
            )
            .await;
        }
        if let Some(config) = &provider.web {
            return super::web::measure(clock, metric, config).await;
        }
        if let Some(config) = &provider.datadog {
            let found = super::datadog::credentials(config, &self.settings, namespace).await?;
            credentials.extend([
                found.api_key.expose().to_string(),
                found.app_key.expose().to_string(),
            ]);
            return super::datadog::measure(clock, metric, config, &found).await;
        }
        if let Some(config) = &provider.new_relic {
            let found = super::newrelic::credentials(config, &self.settings).await?;
            credentials.push(found.personal_api_key.expose().to_string());
            return super::newrelic::measure(clock, metric, config, &found).await;
        }
        if let Some(config) = &provider.graphite {
            return super::graphite::measure(clock, metric, config).await;
        }
        if let Some(config) = &provider.influxdb {
            let found = super::influxdb::credentials(config, &self.settings).await?;
            credentials.push(found.token.expose().to_string());
            return super::influxdb::measure(clock, metric, config, &found).await;
        }
        if let Some(config) = &provider.kayenta {
            return super::kayenta::run(clock, config).await;
        }
        if let Some(config) = &provider.judge {
            return super::judge::measure(self, clock, config, namespace, credentials).await;
        }
        if provider.cloud_watch.is_some() {
            #[cfg(feature = "provider-cloudwatch")]
            if let Some(config) = &provider.cloud_watch {
                return super::cloudwatch::measure(clock, metric, config).await;
            }
            return Err(Failure::new(
                "metric provider `cloudWatch` needs rollout-runner built with the `provider-cloudwatch` feature",
            ));
        }
        if provider.job.is_some() {
            return Err(Failure::new(
                "metric provider `job` runs Kubernetes Jobs, so it needs a cluster: it works with `apply --wait` and the controller",
            ));
        }
        if let Some(name) = provider.plugin.keys().next() {
            return Err(Failure::new(format!(
                "metric provider plugins are not supported by rollout-runner (plugin `{name}`)"
            )));
        }
        let kind = provider.kinds().first().copied().unwrap_or("unknown");
        Err(Failure::new(format!(
            "metric provider `{kind}` is not supported by rollout-runner yet"
        )))
    }

    /// [`Providers::run`] boxed, for the judge's queries (a future cannot contain itself).
    pub(crate) fn run_boxed<'a>(
        &'a self,
        clock: &'a Clock,
        metric: &'a Metric,
        namespace: &'a str,
        credentials: &'a mut Vec<String>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Measurement, Failure>> + Send + 'a>,
    > {
        Box::pin(self.run(clock, metric, namespace, credentials))
    }

    async fn measure_task(
        &self,
        clock: &Clock,
        metric: &Metric,
        task: &TaskKind,
        namespace: &str,
        credentials: &mut Vec<String>,
    ) -> Measurement {
        match task {
            TaskKind::Run => self
                .run(clock, metric, namespace, credentials)
                .await
                .unwrap_or_else(|failure| failed(clock, failure)),
            TaskKind::Resume(previous) | TaskKind::Terminate(previous) => {
                let terminating = matches!(task, TaskKind::Terminate(_));
                if let Some(config) = &metric.provider.kayenta {
                    return super::kayenta::resume(clock, config, previous, terminating)
                        .await
                        .unwrap_or_else(|failure| {
                            // Keep the judgement's id and start time, as Argo's
                            // `MarkMeasurementError` on the previous measurement.
                            let mut m = previous.clone();
                            let error = failed(clock, failure);
                            m.phase = error.phase;
                            m.message = error.message;
                            m.finished_at = error.finished_at;
                            m.resume_at = None;
                            m
                        });
                }
                // Synchronous providers finish in Run; Argo hands the measurement back.
                let mut m = previous.clone();
                if terminating && !m.phase.is_completed() {
                    m.phase = AnalysisPhase::Successful;
                    m.message = "Metric Terminated".into();
                    m.finished_at = Some(meta_time(clock.finished()));
                }
                m
            }
        }
    }
}

impl Metrics for Providers {
    async fn measure(
        &self,
        context: MeasureContext<'_>,
        metric: &Metric,
        task: &TaskKind,
    ) -> Measurement {
        let clock = Clock::start(context.now);
        let namespace = context
            .run
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let mut credentials = Vec::new();
        let mut measurement = self
            .measure_task(&clock, metric, task, &namespace, &mut credentials)
            .await;
        if measurement.phase == AnalysisPhase::Error
            && !measurement.metadata.contains_key("explanation")
        {
            measurement.metadata.extend(conditions_metadata(metric));
            measurement.metadata.insert(
                "explanation".into(),
                format!(
                    "the measurement produced no value, so the conditions were not evaluated: {}. An Error counts against consecutiveErrorLimit (default 4), not failureLimit",
                    measurement.message
                ),
            );
        }
        let mut secrets = metric_secrets(metric);
        secrets.extend(credentials);
        secrets.extend(self.settings.secret_values());
        secrets.extend(context.secrets.iter().cloned());
        // Longest first, so a secret that contains another is replaced whole.
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        scrub(&mut measurement, &secrets);
        if measurement.phase == AnalysisPhase::Error {
            tracing::debug!(
                metric = %metric.name,
                message = %measurement.message,
                "measurement error"
            );
        }
        measurement
    }

    fn result_metadata(&self, metric: &Metric) -> BTreeMap<String, String> {
        result_metadata(metric)
    }
}

/// Argo's `GetMetadata`: what a metric's result keeps besides its measurements (Prometheus:
/// `ResolvedPrometheusQuery`).
pub fn result_metadata(metric: &Metric) -> BTreeMap<String, String> {
    match &metric.provider.prometheus {
        Some(config) => super::prometheus::metadata(config),
        None => BTreeMap::new(),
    }
}

/// Header names whose values are credentials.
fn sensitive_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "token",
        "key",
        "secret",
        "password",
        "passwd",
        "cookie",
        "session",
        "credential",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// The secrets written in a metric (after argument substitution): credential-like header
/// values, basic-auth passwords, OAuth2 client secrets, URL passwords and credential-like URL
/// query values.
pub(crate) fn metric_secrets(metric: &Metric) -> Vec<String> {
    let mut out = Vec::new();
    let headers = |out: &mut Vec<String>, headers: &[WebMetricHeader]| {
        for h in headers {
            if sensitive_name(&h.key) {
                out.push(h.value.clone());
                // `Bearer xyz`: the token alone may appear elsewhere too.
                if let Some((_, token)) = h.value.split_once(' ') {
                    out.push(token.trim().to_string());
                }
            }
        }
    };
    let auth = |out: &mut Vec<String>, auth: Option<&Authentication>| {
        if let Some(auth) = auth {
            if let Some(basic) = &auth.basic_auth {
                out.push(basic.password.clone());
            }
            if let Some(oauth) = &auth.oauth2 {
                out.push(oauth.client_secret.clone());
            }
        }
    };
    let url_secrets = |out: &mut Vec<String>, text: &str| {
        if let Ok(url) = url::Url::parse(text) {
            if let Some(password) = url.password() {
                out.push(password.to_string());
                if let Some(decoded) = percent_decode(password) {
                    out.push(decoded);
                }
            }
            for (key, value) in url.query_pairs() {
                if sensitive_name(&key) {
                    out.push(value.into_owned());
                }
            }
        }
    };
    if let Some(p) = &metric.provider.prometheus {
        headers(&mut out, &p.headers);
        auth(&mut out, p.authentication.as_ref());
        url_secrets(&mut out, &p.address);
    }
    if let Some(w) = &metric.provider.web {
        headers(&mut out, &w.headers);
        auth(&mut out, w.authentication.as_ref());
        url_secrets(&mut out, &w.url);
    }
    for text in [
        metric
            .provider
            .graphite
            .as_ref()
            .map(|g| g.address.as_str()),
        metric.provider.kayenta.as_ref().map(|k| k.address.as_str()),
    ]
    .into_iter()
    .flatten()
    {
        url_secrets(&mut out, text);
    }
    // The judge's queries carry their own headers and addresses.
    for spec in metric.provider.judge.iter().flat_map(|j| &j.metrics) {
        for query in [&spec.canary, &spec.baseline] {
            out.extend(metric_secrets(&Metric {
                provider: query.provider(),
                ..Default::default()
            }));
        }
    }
    out.retain(|s| s.len() >= 3);
    out
}

fn percent_decode(text: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use rollout_runner_api::crd::{
        AnalysisRun, BasicAuth, MetricProvider, PrometheusMetric, WebMetric,
    };

    fn measure(metric: &Metric) -> Measurement {
        let run = AnalysisRun::new("run", Default::default());
        let context = MeasureContext {
            run: &run,
            now: Timestamp::from_second(1_700_000_000).unwrap(),
            secrets: &[],
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(Providers::default().measure(context, metric, &TaskKind::Run))
    }

    #[test]
    fn providers_without_an_implementation_say_so() {
        let job: Metric = serde_saphyr::from_str(
            "name: j\nprovider:\n  job:\n    spec:\n      template:\n        spec:\n          containers: []\n",
        )
        .unwrap();
        let m = measure(&job);
        assert_eq!(m.phase, AnalysisPhase::Error);
        assert!(
            m.message
                .starts_with("metric provider `job` runs Kubernetes Jobs"),
            "{}",
            m.message
        );
        let plugin: Metric =
            serde_saphyr::from_str("name: p\nprovider:\n  plugin:\n    argoproj-labs/sample: {}\n")
                .unwrap();
        assert!(
            measure(&plugin)
                .message
                .contains("plugins are not supported")
        );
        let none = Metric {
            name: "n".into(),
            ..Default::default()
        };
        assert_eq!(measure(&none).message, "no provider specified");
        let prometheus = Metric {
            name: "p".into(),
            provider: MetricProvider {
                prometheus: Some(PrometheusMetric {
                    query: "up".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            measure(&prometheus).message,
            "prometheus address is not configured"
        );
        assert_eq!(
            result_metadata(&prometheus)["ResolvedPrometheusQuery"],
            "up"
        );
    }

    #[test]
    fn secrets_of_a_metric() {
        let metric = Metric {
            name: "w".into(),
            provider: MetricProvider {
                web: Some(WebMetric {
                    url: "https://u:pa%24%24word@example.com/?api_key=k3y&x=1".into(),
                    headers: vec![
                        WebMetricHeader {
                            key: "Authorization".into(),
                            value: "Bearer t0ken".into(),
                        },
                        WebMetricHeader {
                            key: "Accept".into(),
                            value: "application/json".into(),
                        },
                    ],
                    authentication: Some(Authentication {
                        basic_auth: Some(BasicAuth {
                            username: "u".into(),
                            password: "hunter2".into(),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let secrets = metric_secrets(&metric);
        for s in [
            "Bearer t0ken",
            "t0ken",
            "hunter2",
            "pa%24%24word",
            "pa$$word",
            "k3y",
        ] {
            assert!(
                secrets.contains(&s.to_string()),
                "{s} missing from {secrets:?}"
            );
        }
        assert!(!secrets.contains(&"application/json".to_string()));
    }
}
