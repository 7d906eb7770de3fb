//! `rollout-runner dashboard`: serve the live view of the Rollouts (see `crate::dashboard`).

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use clap::Args;

use crate::cluster::caches::Caches;
use crate::dashboard::{Dashboard, serve};
use crate::error::ExitStatus;

use super::connection::ConnectionArgs;
use super::operations::runtime;

/// Serve a live view of the Rollouts in the browser, like `kubectl argo rollouts dashboard`:
/// the list of Rollouts with their status, and for each one the report of its release (steps,
/// traffic and replicas over time, each measurement against its conditions) updated as the
/// cluster changes, with Promote, Abort and Retry buttons that do what the `promote`, `abort`
/// and `retry` commands do.
///
/// The buttons write to the cluster with this command's credentials: they only work from the
/// dashboard's own pages (each request carries the page's token), and the default address is
/// loopback. Runs until interrupted (exit 130).
///
/// Example: `rollout-runner dashboard -n shop` then open http://127.0.0.1:3100/
#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    #[command(flatten)]
    connection: ConnectionArgs,

    /// Show the Rollouts of every namespace, not only of `-n` (or the context's namespace).
    #[arg(long, short = 'A')]
    all_namespaces: bool,

    /// The address to listen on. Anything but loopback lets whoever reaches it see the
    /// Rollouts (the buttons still need a page of the dashboard).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    address: IpAddr,

    /// The port to listen on (0: any free port; the URL printed says which).
    #[arg(long, short = 'p', value_name = "PORT", default_value_t = 3100)]
    port: u16,
}

pub(crate) fn run(args: DashboardArgs) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let connection = args.connection.connect().await?;
        let scope = (!args.all_namespaces).then(|| connection.namespace.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.address, args.port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}\n\nhint: another process may use the port; pick \
                     another with --port (0: any free port)",
                    args.address, args.port
                )
            })?;
        let address = listener.local_addr()?;
        let (caches, feeds) = Caches::new(connection.client.clone(), scope.as_deref(), None);
        caches.drain_all(feeds);
        caches.synced().await.context(
            "cannot watch the Rollouts\n\nhint: check the connection (`rollout-runner list`)",
        )?;
        if !address.ip().is_loopback() {
            eprintln!(
                "warning: listening on {address}: anyone who can reach it sees the Rollouts of {}",
                scope.as_deref().unwrap_or("every namespace")
            );
        }
        let dashboard = Dashboard::new(connection.client.clone(), caches, scope, address);
        let host = if address.ip().is_unspecified() {
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), address.port())
        } else {
            address
        };
        println!("rollout-runner dashboard: http://{host}/ (Ctrl-C stops it)");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::select! {
            () = std::sync::Arc::clone(&dashboard).follow() => Ok(ExitStatus::Success),
            () = serve(listener, dashboard) => Ok(ExitStatus::Success),
            signal = super::interrupted() => {
                eprintln!("\n{signal}: the dashboard stopped");
                Ok(ExitStatus::Interrupted)
            }
        }
    })
}
