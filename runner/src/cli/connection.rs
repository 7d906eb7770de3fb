//! How commands reach the cluster: kubeconfig, context and namespace, as kubectl takes them.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Where the cluster is (the same flags and defaults as kubectl).
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectionArgs {
    /// The kubeconfig file. Default: `$KUBECONFIG`, then `~/.kube/config`, then the in-cluster
    /// service account.
    #[arg(long, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use. Default: the current context.
    #[arg(long, value_name = "NAME")]
    pub(crate) context: Option<String>,

    /// The namespace of objects that name none. Default: the context's namespace, or
    /// `default`.
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    pub(crate) namespace: Option<String>,
}

/// A client and the namespace to use where none is given.
pub(crate) struct Connection {
    pub(crate) client: Client,
    pub(crate) namespace: String,
}

impl ConnectionArgs {
    /// Build a client (without contacting the cluster yet).
    pub(crate) async fn connect(&self) -> anyhow::Result<Connection> {
        let config = self.config().await?;
        let namespace = config.default_namespace.clone();
        // Every request is logged at debug level under `rollout_runner::api`; a throttled
        // answer is held for the time the API server asks.
        let client = crate::cluster::requests::RequestCounts::default()
            .client(config)
            .context("cannot build a Kubernetes client")?;
        Ok(Connection { client, namespace })
    }

    /// The client configuration, with the namespace resolved into `default_namespace`.
    pub(crate) async fn config(&self) -> anyhow::Result<Config> {
        // kube with rustls needs a process-wide crypto provider; a second install is harmless.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read the kubeconfig `{}`", path.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .with_context(|| format!("invalid kubeconfig `{}`", path.display()))?
            }
            None if self.context.is_some() => Config::from_kubeconfig(&options)
                .await
                .context("cannot load the kubeconfig")?,
            None => Config::infer().await.context(
                "no cluster configured\nhint: set KUBECONFIG, pass --kubeconfig, or run in a pod \
                 with a service account",
            )?,
        };
        let mut config = config;
        if let Some(namespace) = &self.namespace {
            config.default_namespace.clone_from(namespace);
        }
        Ok(config)
    }
}
