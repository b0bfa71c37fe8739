//! `1ctl org`: organizations, the profile's current one, and members.

use satusky_types::orgs::CreateOrgRequest;

use crate::cli::{OrgCommand, TeamArgs, TeamCommand};
use crate::context::Context;
use crate::error::CliError;
use crate::output::note;
use crate::prompt;
use crate::views::Done;

pub async fn run(ctx: &mut Context, cmd: OrgCommand) -> Result<(), CliError> {
    match cmd {
        OrgCommand::List => list(ctx).await,
        OrgCommand::Current => current(ctx).await,
        OrgCommand::Switch { slug } => switch(ctx, &slug).await,
        OrgCommand::Create { slug, name } => create(ctx, slug, name).await,
        OrgCommand::Rename { slug, name } => {
            let org = ctx.client()?.rename_org(&slug, &name).await?;
            note(&format!(
                "Renamed organization `{slug}` to \"{}\".",
                org.name
            ));
            Ok(ctx.printer.one(&org)?)
        }
        OrgCommand::Delete { slug, yes } => delete(ctx, &slug, yes).await,
        OrgCommand::Team(args) => team(ctx, args).await,
    }
}

async fn list(ctx: &Context) -> Result<(), CliError> {
    let orgs = ctx.client()?.list_all_orgs().await?;
    let empty = format!(
        "No organizations yet: `{} org create SLUG` makes one.",
        ctx.prefix()
    );
    ctx.printer.list(&orgs, &empty)?;
    if ctx.printer.is_table()
        && let Some(current) = ctx.profile().and_then(|p| p.org.as_deref())
    {
        note(&format!("Current organization: {current}"));
    }
    Ok(())
}

async fn current(ctx: &Context) -> Result<(), CliError> {
    let client = ctx.client()?;
    let slug = ctx.org(None)?;
    let org = client.get_org(&slug).await?;
    ctx.printer.one(&org)?;
    Ok(())
}

async fn switch(ctx: &mut Context, slug: &str) -> Result<(), CliError> {
    let org = ctx.client()?.get_org(slug).await?;
    ctx.profile_mut()?.org = Some(org.slug.clone());
    ctx.save()?;
    note(&format!(
        "Using organization `{}` in profile `{}`.",
        org.slug, ctx.profile_name
    ));
    ctx.printer.one(&org)?;
    Ok(())
}

async fn create(ctx: &mut Context, slug: String, name: Option<String>) -> Result<(), CliError> {
    let org = ctx
        .client()?
        .create_org(&CreateOrgRequest { slug, name })
        .await?;
    note(&format!(
        "Created organization `{}`; you are its owner.",
        org.slug
    ));
    if ctx.profile().is_some_and(|p| p.org.is_none()) {
        ctx.profile_mut()?.org = Some(org.slug.clone());
        ctx.save()?;
        note(&format!(
            "Using organization `{}` in profile `{}`.",
            org.slug, ctx.profile_name
        ));
    }
    ctx.printer.one(&org)?;
    Ok(())
}

async fn delete(ctx: &mut Context, slug: &str, yes: bool) -> Result<(), CliError> {
    let client = ctx.client()?;
    if !yes {
        if !prompt::interactive() {
            return Err(CliError::usage(format!(
                "refusing to delete organization `{slug}`, with its apps, volumes and namespace in every cluster, without confirmation"
            ))
            .hint("pass --yes to delete it without being asked"));
        }
        note(&format!(
            "Deleting organization `{slug}` deletes everything in it, for good: its apps, their volumes (with their data) and its namespace in every cluster."
        ));
        let answer = prompt::line(&format!("Type `{slug}` to confirm: "))?;
        if answer != slug {
            return Err(CliError::refused(
                "the confirmation did not match; nothing was deleted",
            ));
        }
    }
    client.delete_org(slug, slug).await?;
    if let Some(profile) = ctx.config.profiles.get_mut(&ctx.profile_name)
        && profile.org.as_deref() == Some(slug)
    {
        profile.org = None;
        ctx.save()?;
    }
    note(&format!(
        "Deleted organization `{slug}`; its namespace is being deleted in every cluster."
    ));
    ctx.printer.data(&Done {
        kind: "org",
        id: slug.to_owned(),
        action: "deleted",
    })?;
    Ok(())
}

async fn team(ctx: &Context, args: TeamArgs) -> Result<(), CliError> {
    let TeamArgs { org, command } = args;
    let client = ctx.client()?;
    let org = ctx.org(org)?;
    match command {
        TeamCommand::List => {
            let members = client.list_all_members(&org).await?;
            ctx.printer.list(&members, "No members.")?;
        }
        TeamCommand::Add { email, role } => {
            let member = client.add_member(&org, &email, role).await?;
            note(&format!(
                "Added {} to `{org}` as {}.",
                member.email, member.role
            ));
            ctx.printer.one(&member)?;
        }
        TeamCommand::Role { user, role } => {
            let member = client.change_member_role(&org, &user, role).await?;
            note(&format!(
                "{} is now {} of `{org}`.",
                member.email, member.role
            ));
            ctx.printer.one(&member)?;
        }
        TeamCommand::Remove { user } => {
            client.remove_member(&org, &user).await?;
            note(&format!("Removed {user} from `{org}`."));
            ctx.printer.data(&Done {
                kind: "member",
                id: user,
                action: "removed",
            })?;
        }
    }
    Ok(())
}
