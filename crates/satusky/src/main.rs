//! `satusky`: the control-plane binary.
//!
//! - `satusky serve` runs the API over a store (SQLite by default, or PostgreSQL).
//! - `satusky dev` runs the whole platform on one machine for a newcomer.
//! - `satusky migrate` applies the store's migrations and exits.

mod bus;
mod config;
mod dev;
mod platform;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "satusky",
    version,
    about = "The Satusky control plane",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    log: config::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server.
    Serve(Box<config::ServeArgs>),
    /// Run the whole platform on this machine: API, SQLite, a dev admin.
    Dev(config::DevArgs),
    /// Apply pending database migrations and exit.
    Migrate(config::StoreArgs),
    /// Operator commands run on the server's store.
    Admin(config::AdminArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    config::init_tracing(&cli.log);
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Admin(args) => admin(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn admin(args: config::AdminArgs) -> anyhow::Result<()> {
    let url = args.store.database_url()?;
    let store = satusky_store::connect(&url).await?;
    let services = satusky_core::Services::new(
        store,
        std::sync::Arc::new(satusky_core::clock::SystemClock),
        satusky_core::ServicesConfig::default(),
    );
    match args.command {
        config::AdminCommand::Grant { email, revoke } => {
            services
                .grant_platform_admin(&email, !revoke)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let verb = if revoke { "is no longer" } else { "is now" };
            println!("{email} {verb} a platform administrator");
        }
    }
    Ok(())
}

async fn migrate(args: config::StoreArgs) -> anyhow::Result<()> {
    let url = args.database_url()?;
    let applied = satusky_store::migrate(&url).await?;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for m in applied {
        println!("applied {m:?}");
    }
    Ok(())
}
