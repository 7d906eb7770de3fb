//! `rollout-runner list`: the rollouts of a namespace (or of all), one line each, with the
//! columns of `kubectl argo rollouts list rollouts`.

use anyhow::Context;
use clap::Args;

use crate::cluster::rollouts::list_rollouts;
use crate::error::ExitStatus;
use crate::report::info::{ListRow, render_list};

use super::OutputFormat;
use super::connection::ConnectionArgs;
use super::operations::runtime;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    connection: ConnectionArgs,

    /// List the rollouts of every namespace (adds a NAMESPACE column).
    #[arg(long, short = 'A')]
    all_namespaces: bool,

    /// `text`: a table. `json`: an array with one object per rollout.
    #[arg(long, value_enum, default_value_t = super::OutputFormat::Text)]
    output: OutputFormat,
}

pub(crate) fn run(args: ListArgs) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let connection = args.connection.connect().await?;
        let namespace = (!args.all_namespaces).then_some(connection.namespace.as_str());
        let rollouts = list_rollouts(&connection.client, namespace)
            .await
            .with_context(|| match namespace {
                Some(namespace) => format!("cannot list the rollouts of namespace `{namespace}`"),
                None => "cannot list the rollouts of the cluster".to_string(),
            })?;
        let rows: Vec<ListRow> = rollouts.iter().map(ListRow::new).collect();
        match args.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
            OutputFormat::Text if rows.is_empty() => eprintln!("No resources found."),
            OutputFormat::Text => print!("{}", render_list(&rows, args.all_namespaces)),
        }
        Ok(ExitStatus::Success)
    })
}
