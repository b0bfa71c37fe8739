//! One module per command group. Each command resolves what it needs from
//! the [`Context`], calls the API, prints its data on stdout and its notes on
//! stderr.

mod audit;
mod auth;
mod org;
mod profile;
mod token;
mod user;

use crate::cli::Command;
use crate::context::Context;
use crate::error::CliError;

pub async fn run(ctx: &mut Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Auth(cmd) => auth::run(ctx, cmd).await,
        Command::Profile(cmd) => profile::run(ctx, cmd),
        Command::Org(cmd) => org::run(ctx, cmd).await,
        Command::User(cmd) => user::run(ctx, cmd).await,
        Command::Token(cmd) => token::run(ctx, cmd).await,
        Command::Audit(args) => audit::run(ctx, args).await,
    }
}
