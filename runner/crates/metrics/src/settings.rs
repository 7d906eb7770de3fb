//! Provider configuration that is not in the metric: SaaS credentials, default addresses, and
//! where to read Kubernetes Secrets from. Resolved once by the caller (from the environment,
//! see [`ENV_VARS`]) and handed to [`super::providers::Providers`].
//!
//! Credentials that Argo reads from Secrets in its own namespace (`datadog`, `newrelic`,
//! `influxdb`) are read through a [`SecretSource`], a narrow trait the cluster implements; this
//! module never talks to a cluster itself.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

/// Every environment variable the metric providers read, with what it is for. `docs/providers.md`
/// shows the same table.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "ARGO_ROLLOUTS_PROMETHEUS_ADDRESS",
        "Prometheus address for metrics that leave `address` empty (as Argo)",
    ),
    ("DD_API_KEY", "Datadog API key (header `DD-API-KEY`)"),
    (
        "DD_APP_KEY",
        "Datadog application key (header `DD-APPLICATION-KEY`)",
    ),
    (
        "DD_ADDRESS",
        "Datadog API address; default `https://api.datadoghq.com`",
    ),
    (
        "NEWRELIC_PERSONAL_API_KEY",
        "New Relic user key for NerdGraph",
    ),
    (
        "NEWRELIC_ACCOUNT_ID",
        "New Relic account id the NRQL runs in",
    ),
    ("NEWRELIC_REGION", "`us` (default) or `eu`"),
    (
        "NEWRELIC_BASE_URL_NERDGRAPH",
        "NerdGraph endpoint; overrides the region's",
    ),
    (
        "INFLUXDB_ADDRESS",
        "InfluxDB 2 address, e.g. `http://influxdb:8086`",
    ),
    ("INFLUXDB_ORG", "InfluxDB organization"),
    ("INFLUXDB_TOKEN", "InfluxDB API token"),
    (
        "ROLLOUT_RUNNER_NAMESPACE",
        "namespace of the provider Secrets (`datadog`, `newrelic`, `influxdb`); default `argo-rollouts`",
    ),
];

/// Secret text that must never be shown: `Debug` prints `*****`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, to put in a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(rollout_runner_core::analysis::run::REDACTED)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

/// Datadog credentials (`DD_*`, or the keys `api-key`, `app-key`, `address` of a Secret).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatadogSettings {
    pub api_key: SecretString,
    pub app_key: SecretString,
    /// Empty: `https://api.datadoghq.com`.
    pub address: String,
}

/// New Relic credentials (`NEWRELIC_*`, or the keys `personal-api-key`, `account-id`,
/// `region`, `base-url-nerdgraph` of a Secret).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewRelicSettings {
    pub personal_api_key: SecretString,
    pub account_id: String,
    /// `us` or `eu`; empty is `us`.
    pub region: String,
    /// Overrides the region's NerdGraph endpoint.
    pub nerdgraph_url: String,
}

/// InfluxDB 2 credentials (`INFLUXDB_*`, or the keys `authToken`, `org`, `address` of a
/// Secret).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InfluxdbSettings {
    pub token: SecretString,
    pub org: String,
    pub address: String,
}

/// Why a Secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

/// Reads keys of Kubernetes Secrets. The cluster implements it; tests use [`MemorySecrets`].
pub trait SecretSource: Send + Sync {
    /// The value of `key` in Secret `namespace/name`; `Ok(None)` when the Secret or the key
    /// does not exist.
    fn read<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, SecretError>>;
}

/// Secrets held in memory: `(namespace, name) -> {key: value}`.
#[derive(Debug, Clone, Default)]
pub struct MemorySecrets(pub BTreeMap<(String, String), BTreeMap<String, String>>);

impl MemorySecrets {
    pub fn with(mut self, namespace: &str, name: &str, data: &[(&str, &str)]) -> Self {
        self.0.insert(
            (namespace.to_string(), name.to_string()),
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }
}

impl SecretSource for MemorySecrets {
    fn read<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, SecretError>> {
        let value = self
            .0
            .get(&(namespace.to_string(), name.to_string()))
            .and_then(|data| data.get(key).cloned());
        Box::pin(async move { Ok(value) })
    }
}

/// Default namespace of the provider Secrets, as Argo's controller namespace.
pub const DEFAULT_NAMESPACE: &str = "argo-rollouts";

/// Everything the providers need besides the metric.
#[derive(Clone, Default)]
pub struct ProviderSettings {
    /// Used when a Prometheus metric has no `address` (`ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`).
    pub prometheus_address: Option<String>,
    pub datadog: Option<DatadogSettings>,
    pub newrelic: Option<NewRelicSettings>,
    pub influxdb: Option<InfluxdbSettings>,
    /// Namespace of the provider Secrets (`datadog`, `newrelic`, `influxdb`, and New Relic or
    /// InfluxDB `profile`s). Empty: [`DEFAULT_NAMESPACE`].
    pub namespace: String,
    /// Where provider Secrets are read; `None`: only settings and the environment.
    pub secrets: Option<Arc<dyn SecretSource>>,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("prometheus_address", &self.prometheus_address)
            .field("datadog", &self.datadog)
            .field("newrelic", &self.newrelic)
            .field("influxdb", &self.influxdb)
            .field("namespace", &self.namespace)
            .field("secrets", &self.secrets.as_ref().map(|_| "SecretSource"))
            .finish()
    }
}

impl ProviderSettings {
    /// Settings from environment variables ([`ENV_VARS`]), read through `env` so tests can pass
    /// a map. A provider is configured only when its required variables are all set.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        let datadog = match (get("DD_API_KEY"), get("DD_APP_KEY")) {
            (Some(api), Some(app)) => Some(DatadogSettings {
                api_key: SecretString::new(api),
                app_key: SecretString::new(app),
                address: get("DD_ADDRESS").unwrap_or_default(),
            }),
            _ => None,
        };
        let newrelic = match (get("NEWRELIC_PERSONAL_API_KEY"), get("NEWRELIC_ACCOUNT_ID")) {
            (Some(key), Some(account)) => Some(NewRelicSettings {
                personal_api_key: SecretString::new(key),
                account_id: account,
                region: get("NEWRELIC_REGION").unwrap_or_default(),
                nerdgraph_url: get("NEWRELIC_BASE_URL_NERDGRAPH").unwrap_or_default(),
            }),
            _ => None,
        };
        let influxdb = match (
            get("INFLUXDB_ADDRESS"),
            get("INFLUXDB_ORG"),
            get("INFLUXDB_TOKEN"),
        ) {
            (Some(address), Some(org), Some(token)) => Some(InfluxdbSettings {
                token: SecretString::new(token),
                org,
                address,
            }),
            _ => None,
        };
        Self {
            prometheus_address: get("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS"),
            datadog,
            newrelic,
            influxdb,
            namespace: get("ROLLOUT_RUNNER_NAMESPACE").unwrap_or_default(),
            secrets: None,
        }
    }

    /// Settings from the process environment.
    pub fn from_process_env() -> Self {
        Self::from_env(|name| std::env::var(name).ok())
    }

    /// Read provider Secrets through `source`.
    pub fn with_secrets(mut self, source: Arc<dyn SecretSource>) -> Self {
        self.secrets = Some(source);
        self
    }

    /// The namespace of the provider Secrets.
    pub fn namespace(&self) -> &str {
        if self.namespace.is_empty() {
            DEFAULT_NAMESPACE
        } else {
            &self.namespace
        }
    }

    /// Every credential in these settings, for redaction.
    pub(crate) fn secret_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(dd) = &self.datadog {
            out.push(dd.api_key.expose().to_string());
            out.push(dd.app_key.expose().to_string());
        }
        if let Some(nr) = &self.newrelic {
            out.push(nr.personal_api_key.expose().to_string());
        }
        if let Some(influx) = &self.influxdb {
            out.push(influx.token.expose().to_string());
        }
        out
    }

    /// Read `keys` of Secret `namespace/name`: `Ok(None)` when there is no source, or the
    /// Secret has none of the keys.
    pub(crate) async fn read_secret(
        &self,
        namespace: &str,
        name: &str,
        keys: &[&str],
    ) -> Result<Option<BTreeMap<String, String>>, SecretError> {
        let Some(source) = &self.secrets else {
            return Ok(None);
        };
        let mut data = BTreeMap::new();
        for key in keys {
            if let Some(value) = source.read(namespace, name, key).await? {
                data.insert(key.to_string(), value);
            }
        }
        Ok((!data.is_empty()).then_some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment() {
        let env: BTreeMap<&str, &str> = [
            ("DD_API_KEY", "api"),
            ("DD_APP_KEY", "app"),
            ("INFLUXDB_ADDRESS", "http://influx:8086"),
            ("INFLUXDB_ORG", "org"),
            ("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS", "http://prom:9090"),
        ]
        .into_iter()
        .collect();
        let settings = ProviderSettings::from_env(|k| env.get(k).map(|v| v.to_string()));
        let dd = settings.datadog.as_ref().unwrap();
        assert_eq!(dd.api_key.expose(), "api");
        assert_eq!(dd.address, "");
        // The token is missing: no InfluxDB settings.
        assert!(settings.influxdb.is_none());
        assert!(settings.newrelic.is_none());
        assert_eq!(
            settings.prometheus_address.as_deref(),
            Some("http://prom:9090")
        );
        assert_eq!(settings.namespace(), DEFAULT_NAMESPACE);
        // Debug never shows a credential.
        let debug = format!("{settings:?}");
        assert!(
            !debug.contains("api\"") && !debug.contains("\"app"),
            "{debug}"
        );
    }

    #[test]
    fn every_documented_variable_is_read() {
        let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let _ = ProviderSettings::from_env(|k| {
            seen.borrow_mut().insert(k.to_string());
            Some("x".into())
        });
        for (name, _) in ENV_VARS {
            assert!(
                seen.borrow().contains(*name),
                "{name} is documented but not read"
            );
        }
    }
}
