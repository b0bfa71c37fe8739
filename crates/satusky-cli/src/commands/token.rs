//! `1ctl token`: personal API tokens. A secret is printed once, when the
//! token is created; listings never carry one.

use satusky_types::identity::CreateTokenRequest;

use crate::cli::TokenCommand;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{note, time};
use crate::views::Done;

pub async fn run(ctx: &mut Context, cmd: TokenCommand) -> Result<(), CliError> {
    let client = ctx.client()?;
    match cmd {
        TokenCommand::List => {
            let tokens = client.list_all_tokens().await?;
            let empty = format!(
                "No tokens yet: `{} token create NAME` makes one.",
                ctx.prefix()
            );
            ctx.printer.list(&tokens, &empty)?;
        }
        TokenCommand::Create { name, org, expires } => {
            let created = client
                .create_token(&CreateTokenRequest {
                    name,
                    org,
                    expires_in_days: expires,
                })
                .await?;
            if ctx.printer.is_table() {
                let t = &created.token;
                note(&format!(
                    "Created token `{}` ({}, org {}, expires {}).",
                    t.name,
                    t.id,
                    t.org.as_deref().unwrap_or("any"),
                    t.expires_at
                        .as_ref()
                        .map_or_else(|| "never".to_owned(), time)
                ));
                note("Copy the secret below now; it will not be shown again.");
                println!("{}", created.secret);
            } else {
                ctx.printer.data(&created)?;
            }
        }
        TokenCommand::Get { token } => {
            let t = client.get_token(&token).await?;
            ctx.printer.one(&t)?;
        }
        TokenCommand::Enable { token } => {
            let t = client.set_token_enabled(&token, true).await?;
            note(&format!("Enabled token `{}`.", t.name));
            ctx.printer.one(&t)?;
        }
        TokenCommand::Disable { token } => {
            let t = client.set_token_enabled(&token, false).await?;
            note(&format!("Disabled token `{}`.", t.name));
            ctx.printer.one(&t)?;
        }
        TokenCommand::Delete { token } => {
            client.delete_token(&token).await?;
            note(&format!("Deleted token `{token}`."));
            ctx.printer.data(&Done {
                kind: "token",
                id: token,
                action: "deleted",
            })?;
        }
    }
    Ok(())
}
