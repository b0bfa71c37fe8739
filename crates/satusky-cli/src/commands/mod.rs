//! One module per command group. Each command resolves what it needs from
//! the [`Context`], calls the API, prints its data on stdout and its notes on
//! stderr.

mod app;
mod audit;
mod auth;
mod cluster;
mod deploy;
mod init;
mod logs;
mod machine;
mod machine_usage;
mod org;
mod profile;
mod token;
mod user;
mod wait;

use crate::cli::Command;
use crate::context::Context;
use crate::error::CliError;

/// Runs a command; `matches` are clap's, for asking which flags were given.
pub async fn run(
    ctx: &mut Context,
    command: Command,
    matches: &clap::ArgMatches,
) -> Result<(), CliError> {
    match command {
        Command::Auth(cmd) => auth::run(ctx, cmd).await,
        Command::Profile(cmd) => profile::run(ctx, cmd),
        Command::Org(cmd) => org::run(ctx, cmd).await,
        Command::User(cmd) => user::run(ctx, cmd).await,
        Command::Token(cmd) => token::run(ctx, cmd).await,
        Command::Audit(args) => audit::run(ctx, args).await,
        Command::Init(args) => init::run(ctx, args),
        Command::Deploy(args) => {
            let given = deploy::Given(matches.subcommand_matches("deploy"));
            Box::pin(deploy::run(ctx, *args, &given)).await
        }
        Command::App(args) => app::run(ctx, args).await,
        Command::Config(args) => app::config(ctx, args).await,
        Command::Secret(args) => app::secret(ctx, args).await,
        Command::Volumes(args) => app::volumes(ctx, args).await,
        Command::Logs(args) => logs::run(ctx, args).await,
        Command::Machine(args) => Box::pin(machine::run(ctx, args)).await,
        Command::Cluster(cmd) => cluster::run(ctx, cmd).await,
    }
}
