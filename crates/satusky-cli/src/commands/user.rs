//! `1ctl user`: the caller's account.

use satusky_types::identity::{ChangePasswordRequest, UpdateUserRequest};

use crate::cli::UserCommand;
use crate::context::Context;
use crate::error::CliError;
use crate::output::note;
use crate::prompt;
use crate::views::Done;

pub async fn run(ctx: &mut Context, cmd: UserCommand) -> Result<(), CliError> {
    let client = ctx.client()?;
    match cmd {
        UserCommand::Me => {
            let me = client.me().await?;
            ctx.printer.one(&me)?;
        }
        UserCommand::Update { name } => {
            let user = client.update_me(&UpdateUserRequest { name }).await?;
            note("Updated your account.");
            ctx.printer.one(&user)?;
        }
        UserCommand::Password { password_stdin } => {
            let (current_password, new_password) = if password_stdin {
                let mut lines = prompt::stdin_lines(2)?;
                let new = lines.remove(1);
                (lines.remove(0), new)
            } else {
                let current = prompt::password("Current password: ", "--password-stdin")?;
                (
                    current,
                    prompt::new_password("New password: ", "--password-stdin")?,
                )
            };
            client
                .change_password(&ChangePasswordRequest {
                    current_password,
                    new_password,
                })
                .await?;
            note("Password changed.");
            ctx.printer.data(&Done {
                kind: "user",
                id: "me".to_owned(),
                action: "password_changed",
            })?;
        }
    }
    Ok(())
}
