//! `satusky-bench`: performance figures, each printed beside floors measured
//! in the same run, so that the ratios mean something on any machine.
//!
//! Scenario `api-list`: an authenticated list of 1,000 audit entries through
//! the API, against two floors — the same query straight on the store, and a
//! no-op handler over loopback HTTP — on SQLite and, when a PostgreSQL URL is
//! given, on PostgreSQL.

mod api_list;
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.scenario {
        Scenario::ApiList(args) => api_list::run(args).await,
    }
}
