//! What the commands that change a Rollout (`promote`, `abort`, `retry`, `pause`, `resume`,
//! `restart`, `set image`, `undo`) share: the rollout argument, and read, compute, send.
//!
//! None of them takes the Rollout's Lease: they write a person's intent (a spec field, a status
//! field) as `kubectl argo rollouts` does, and whoever drives the rollout reacts on its next
//! pass. Each patch carries the `resourceVersion` it was computed from; when the rollout changed
//! in between (a driver wrote its status), the command reads it again and recomputes.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use jiff::SignedDuration;

use crate::cluster::ClusterError;
use crate::cluster::rollouts::{self, get_rollout, replica_set_states};
use crate::crd::Rollout;
use crate::error::ExitStatus;
use crate::observed::ReplicaSetState;
use crate::operate::Patches;

use super::connection::{Connection, ConnectionArgs};

/// The Rollout a command works on.
#[derive(Debug, Clone, Args)]
pub(crate) struct RolloutArg {
    /// The Rollout's name.
    #[arg(value_name = "ROLLOUT")]
    pub(crate) name: String,

    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
}

/// Times an operation is computed and sent before a rollout that keeps changing wins (Argo's
/// `set image` retries as often).
const ATTEMPTS: u32 = 5;

/// A duration flag in Go's syntax, read as `apply` reads its own.
pub(crate) fn duration_flag(text: &str, flag: &str) -> anyhow::Result<SignedDuration> {
    let duration = super::apply::parse_duration(text, flag)?;
    SignedDuration::try_from(duration).with_context(|| format!("{flag} `{text}` is too long"))
}

/// A runtime for one command (the machine may be small: two workers are plenty).
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// An error reading the rollout `namespace/name`, with a hint when it does not exist.
pub(crate) fn rollout_error(error: ClusterError, namespace: &str, name: &str) -> anyhow::Error {
    match error {
        ClusterError::NotFound {
            kind: "Rollout", ..
        } => anyhow::anyhow!(
            "rollout `{namespace}/{name}` not found\n\nhint: check the name and the namespace \
             (`-n`); `rollout-runner list -n {namespace}` lists the rollouts there"
        ),
        error => {
            anyhow::Error::new(error).context(format!("cannot read rollout `{namespace}/{name}`"))
        }
    }
}

/// Read the Rollout `name` in the connection's namespace.
pub(crate) async fn read_rollout(connection: &Connection, name: &str) -> anyhow::Result<Rollout> {
    get_rollout(&connection.client, &connection.namespace, name)
        .await
        .map_err(|error| rollout_error(error, &connection.namespace, name))
}

/// Read the rollout (and, with `with_replica_sets`, its ReplicaSets), compute the patches and
/// the message with `compute`, send them, and print the message. An error of `compute` is the
/// user's (exit 2).
pub(crate) fn operate(
    target: &RolloutArg,
    verb: &str,
    with_replica_sets: bool,
    compute: impl Fn(&Rollout, &[ReplicaSetState]) -> Result<(Patches, String), String>,
) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let connection = target.connection.connect().await?;
        let message = operate_on(
            &connection.client,
            &connection.namespace,
            &target.name,
            verb,
            with_replica_sets,
            compute,
        )
        .await?;
        println!("{message}");
        Ok(ExitStatus::Success)
    })
}

/// What [`operate`] does, without printing: the message on success. The dashboard's buttons
/// call this too.
pub(crate) async fn operate_on(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    verb: &str,
    with_replica_sets: bool,
    compute: impl Fn(&Rollout, &[ReplicaSetState]) -> Result<(Patches, String), String>,
) -> anyhow::Result<String> {
    let mut attempt = 1;
    loop {
        let rollout = get_rollout(client, namespace, name)
            .await
            .map_err(|error| rollout_error(error, namespace, name))?;
        let replica_sets = if with_replica_sets {
            replica_set_states(client, &rollout)
                .await
                .with_context(|| {
                    format!("cannot list the ReplicaSets of rollout `{namespace}/{name}`")
                })?
        } else {
            Vec::new()
        };
        let (patches, message) = compute(&rollout, &replica_sets).map_err(anyhow::Error::msg)?;
        match rollouts::send(client, &rollout, &patches, true).await {
            Ok(()) => return Ok(message),
            Err(ClusterError::Conflict { .. }) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, "rollout changed while writing; trying again");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot {verb} rollout `{namespace}/{name}`"));
            }
        }
    }
}
