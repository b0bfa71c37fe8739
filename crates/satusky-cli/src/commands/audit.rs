//! `1ctl audit`: an organization's audit log.

use satusky_client::collect_pages;
use satusky_types::orgs::AuditQuery;

use crate::cli::{AuditArgs, AuditCommand, AuditListArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::output::note;

pub async fn run(ctx: &mut Context, args: AuditArgs) -> Result<(), CliError> {
    let AuditArgs { org, command } = args;
    let client = ctx.client()?;
    let org = ctx.org(org)?;
    match command {
        AuditCommand::List(list) => {
            let AuditListArgs {
                actor,
                action,
                outcome,
                since,
                until,
                limit,
                cursor,
                all,
            } = list;
            let query = AuditQuery {
                limit: Some(limit),
                cursor,
                actor,
                action,
                outcome,
                since,
                until,
            };
            let (entries, next) = if all {
                let entries = collect_pages(|cursor| {
                    let query = AuditQuery {
                        cursor,
                        ..query.clone()
                    };
                    let (client, org) = (&client, &org);
                    async move { client.list_audit(org, &query).await }
                })
                .await?;
                (entries, None)
            } else {
                let page = client.list_audit(&org, &query).await?;
                (page.items, page.next_cursor)
            };
            ctx.printer.list(&entries, "No audit entries match.")?;
            if let Some(next) = next {
                note(&format!(
                    "More entries: pass --cursor {next} for the next page, or --all for every page."
                ));
            }
        }
        AuditCommand::Get { id } => {
            let entry = client.get_audit_entry(&org, &id).await?;
            ctx.printer.one(&entry)?;
        }
    }
    Ok(())
}
