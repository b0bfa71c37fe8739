//! `satusky-bench`: performance figures, each printed beside floors measured
//! in the same run, so that the ratios mean something on any machine.
//!
//! Scenario `api-list`: an authenticated list of 1,000 audit entries through
//! the API, against two floors — the same query straight on the store, and a
//! no-op handler over loopback HTTP — on SQLite and, when a PostgreSQL URL is
//! given, on PostgreSQL.

mod api_list;
mod deploy;
mod fixture;
mod machines;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "satusky-bench",
    about = "Satusky benchmarks (run with --release)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Authenticated list of 1,000 items through the API, beside its floors.
    ApiList(api_list::Args),
    /// Deploy-accepted latency and deploy-to-Ready time against kube-sim.
    Deploy(deploy::DeployArgs),
    /// Time and memory for a restarted control plane to resync many apps.
    Resync(deploy::ResyncArgs),
    /// Selector queries over many registered machines, and label-to-node sync latency.
    Machines(machines::Args),
    /// (internal) The restarted control plane of `resync`, run as a child process.
    #[command(hide = true)]
    ResyncChild(deploy::ResyncChildArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.scenario {
        Scenario::ApiList(args) => api_list::run(args).await,
        Scenario::Deploy(args) => deploy::run_deploy(args).await,
        Scenario::Resync(args) => deploy::run_resync(args).await,
        Scenario::Machines(args) => machines::run(args).await,
        Scenario::ResyncChild(args) => deploy::run_resync_child(args).await,
    }
}
